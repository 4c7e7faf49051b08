r"""Task weighting: how the per-task losses of a batch become parameter gradients.

A multi-task net has shared parameters :math:`\theta` (the trunk) and task-specific ones (the
heads). Each step gives one loss :math:`L_t` per task; :math:`b_t` is the task's
``TaskSpec.weight`` (1 by default) and :math:`g_t = \nabla_\theta L_t`.

=================  ==================================================  =======================
name               weights :math:`w` of :math:`\sum_t w_t g_t`         reference
=================  ==================================================  =======================
``"equal"``        :math:`w_t = b_t`                                   --
``"fixed"``        given                                               --
``"random"``       :math:`w = T\,\mathrm{softmax}(z)`,                 Lin et al. 2022 (RLW)
                   :math:`z \sim N(0, I)` drawn every step
``"uncertainty"``  :math:`w_t = b_t e^{-s_t}`, minimizing              Kendall et al. 2018
                   :math:`\sum_t b_t (e^{-s_t} L_t + s_t)` over
                   :math:`s_t = \log \sigma_t^2` too
``"dwa"``          :math:`w = T\,\mathrm{softmax}(r / \tau)`,          Liu et al. 2019
                   :math:`r_t = L_t^{(e-1)} / L_t^{(e-2)}`
                   (mean losses of the last two epochs)
``"gradnorm"``     a step to :math:`w_t \|g_t\| \propto r_t^\alpha`,   Chen et al. 2018
                   :math:`r_t \propto L_t / L_t^{(0)}`
``"pcgrad"``       gradient :math:`\sum_t g_t'`, :math:`g_t` less its  Yu et al. 2020
                   parts that conflict with the other :math:`g_j`
``"cagrad"``       gradient :math:`T (g_0 + \lambda g_w) / (1 + c^2)`  Liu et al. 2021
                   (:math:`g_0` the mean :math:`g_t`): the update
                   within :math:`c \|g_0\|` of :math:`g_0` that does
                   the most for the worst task
``"famo"``         :math:`w_t \propto z_t / L_t`, :math:`z` a softmax    Liu et al. 2023
                   of logits learned from the observed decrease of
                   :math:`\log L_t` (one backward pass)
``"nash_mtl"``     gradient :math:`\sum_t \alpha_t g_t`,                 Navon et al. 2022
                   :math:`\alpha_t (G G^\top \alpha)_t = b_t`
                   (Nash bargaining)
``"imtl"``         gradient with equal projections on the unit         Liu et al. 2021
                   gradients :math:`g_t / \|g_t\|` (IMTL-G)
``"mgda"``         min-norm point of the convex hull of the            Sener & Koltun 2018
                   :math:`b_t g_t` (MGDA-UB with ``upper_bound``)
``"aligned_mtl"``  :math:`\sum_t b_t \hat g_t`, :math:`\hat G = B G`    Senushkin et al. 2023
                   with orthogonal rows of equal norms
``"upgrad"``       :math:`\sum_t b_t \pi(g_t)`, :math:`\pi` the          Quinton & Rey 2024
                   projection on :math:`\{x : G x \ge 0\}`
``"gradvac"``      :math:`\sum_t g_t'`, :math:`g_t` moved toward the   Wang et al. 2021
                   :math:`g_j` whose cosine is below an EMA target
``"graddrop"``     per coordinate, the positive or the negative        Chen et al. 2020
                   :math:`g_t` dropped at random (sign purity)
``"dualproj"``     :math:`\sum_t b_t g_t` projected on                 TorchJD (Quinton &
                   :math:`\{x : G x \ge 0\}`                           Rey 2024)
``"config"``       equal projections on the unit :math:`g_t`           Liu et al. 2024
                   (:math:`U^{+}\mathbf 1`), length their sum
``"fairgrad"``     :math:`w > 0`, :math:`G G^\top w = w^{-1/\alpha}`   Ban & Ji 2024
                   (:math:`\alpha`-fair improvements)
``"sdmgrad"``      :math:`T / (1 + \lambda)` times the min-norm point  Xiao et al. 2023
                   of the hull of the :math:`g_t + \lambda g_0`
``"modo"``         :math:`T \sum_t \lambda_t g_t`, :math:`\lambda`         Chen et al. 2023
                   moved by one projected gradient step per step
``"db_mtl"``       :math:`\sum_t \alpha_t \hat h_t`, :math:`\hat h_t`  Lin et al. 2023
                   an EMA of :math:`\nabla \log L_t`, rescaled to
                   the largest norm
``"stch"``         :math:`T \mu \log \sum_t e^{\log(L_t/n_t)/\mu}`     Lin et al. 2024
                   (nadir :math:`n` after a warm-up on
                   :math:`\sum_t \log L_t`)
``"gls"``          :math:`T (\prod_t L_t)^{1/T}`:                      Chennupati et al. 2019
                   :math:`w_t = \mathrm{GM} / L_t`
``"moco"``         :math:`T \sum_t \lambda_t y_t`, :math:`y_t` the     Fernando et al. 2023
                   tracked gradients, :math:`\lambda` one projected
                   step per step
``"excess_mtl"``   :math:`w_t \propto w_t e^{\eta E_t / E_t^{(0)}}`,   He et al. 2024
                   :math:`E_t` the excess risk (diagonal Hessian)
``"rgw"``          :math:`\sum_t w_t g_t`, :math:`w = T\,              Lin et al. 2022 (RLW)
                   \mathrm{softmax}(z)` drawn every step
=================  ==================================================  =======================

Loss weighting (equal, fixed, random, uncertainty, dwa; famo) costs one backward pass. Gradient
methods (gradnorm, pcgrad, cagrad, nash_mtl, imtl, mgda, aligned_mtl, upgrad) form the (T, d)
matrix of per-task gradients of the d shared parameters: T backward passes through the trunk per
step and T times the memory of the shared parameters (not of the heads, not of the activations).
The heads get the gradient of :math:`\sum_t b_t L_t` (of :math:`\sum_t w_t L_t` for gradnorm).

Each method is one module of this package, named for it (``pcgrad``, ``cagrad``, ``famo``,
``nash_mtl``, ...), its function and class together; ``base`` holds the :class:`Weighting`
contract and the gradient helpers the methods share, ``gram`` the base of the five methods that
decide from the Gram matrix :math:`G G^\top` (Nash-MTL, IMTL-G, MGDA, Aligned-MTL, UPGrad) and
their conventions (base weights, zero gradients, scale), ``loss_based`` the step of the methods
whose weights are a function of the loss values (GLS, STCH, FAMO), ``helpers`` the small checks.
``regmtl.deep.conflict`` keeps the old import path of the six gradient-conflict methods.
``WEIGHTINGS`` below is the one registry of the methods by name: a class that declares its
``name`` registers itself, and this package imports all its modules and exports each method
module's public names, so a new method is its module (plus a bank case in the tests and an
entry in the API reference).

The weights returned by :meth:`Weighting.backward` (the ``weight/TASK`` columns of the trainer's
history, averaged over each epoch) are the coefficients of the losses, or for gradient methods
of the original :math:`g_t` in the shared update. What they sum to:

- :math:`\sum_t b_t` (T by default): equal, random, dwa, gradnorm, famo and imtl (famo and imtl:
  over the tasks taking part in the step). With unequal :math:`b` the softmaxes are weighted,
  :math:`w_t \propto b_t e^{x_t}`. IMTL's weights can be negative.
- the given weights' sum: fixed.
- T with unit base weights: mgda (its hull of the :math:`b_t g_t` is scaled by T: in general,
  with its normalizers :math:`n_t`, :math:`\sum_t w_t n_t / b_t = T`; all 0 at a
  Pareto-stationary point); sdmgrad and modo (in general :math:`\sum_t w_t / b_t = T`:
  :math:`b_t (T c_t + \lambda) / (1 + \lambda)` with :math:`c` on the simplex, so
  :math:`w_t \ge b_t \lambda / (1 + \lambda)`, all 0 where the update is 0; and
  :math:`T \lambda_t b_t` with :math:`\lambda` on the simplex, :math:`w_t \ge 0`).
- no fixed sum: uncertainty (:math:`w_t = b_t e^{-s_t}` with the :math:`s_t` learned freely: the
  sum starts at :math:`\sum_t b_t` for ``init=0`` and drifts with the scale of the losses);
  pcgrad, upgrad and gradvac (:math:`w_t \ge b_t`, more where gradients conflict); dualproj
  (:math:`w = b + \lambda \ge b`, all 0 where the projection is 0); graddrop
  (:math:`0 \le w_t \le b_t`, the fraction of :math:`b_t g_t` the update keeps; :math:`b_t`
  where nothing conflicts); cagrad (:math:`w_t \ge b_t / (1 + c^2)`; :math:`\sum_t b_t` for
  ``c=0``); nash_mtl and fairgrad (:math:`w_t > 0`, scaling like :math:`1 / \|g_t\|` and
  :math:`\|g\|^{-2\alpha/(\alpha+1)}`; fairgrad's all 0 at a Pareto-stationary point); config
  (the coefficients of :math:`U^{+}\mathbf 1` scaled to the summed projections); aligned_mtl
  (:math:`B b`, entries can be negative).
- db_mtl, stch, gls, moco, excess_mtl, rgw: excess_mtl and rgw sum to :math:`\sum_t b_t`; gls
  (:math:`b_t \mathrm{GM} / L_t`) and stch (:math:`b_t / L_t` in the warm-up) have no fixed
  sum (loss weighting, one backward pass); db_mtl and moco return the coefficients of their
  tracked gradients (:math:`\alpha_t \ge 1`; :math:`T \lambda_t b_t`, summing to T with unit
  base weights), not of this step's :math:`g_t`.

References
----------
- Kendall, Gal & Cipolla (2018). Multi-task learning using uncertainty to weigh losses for scene
  geometry and semantics. CVPR.
- Chen, Badrinarayanan, Lee & Rabinovich (2018). GradNorm: gradient normalization for adaptive
  loss balancing in deep multitask networks. ICML.
- Liu, Johns & Davison (2019). End-to-end multi-task learning with attention. CVPR.
- Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
  NeurIPS.
- Liu, Liu, Jin, Stone & Liu (2021). Conflict-averse gradient descent for multi-task learning.
  NeurIPS.
- Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus test
  for multi-task learning. TMLR.
- Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.
- Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2021). Towards impartial multi-task learning.
  ICLR.
- Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning as
  a bargaining game. ICML.
- Liu, Feng, Stone & Liu (2023). FAMO: fast adaptive multitask optimization. NeurIPS.
- Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
  multi-task learning. CVPR.
- Quinton & Rey (2024). Jacobian descent for multi-objective optimization. arXiv:2406.16232.
- Wang, Tsvetkov, Firat & Cao (2021). Gradient vaccine: investigating and improving multi-task
  optimization in massively multilingual models. ICLR.
- Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov (2020). Just pick a sign: optimizing
  deep multitask models with gradient sign dropout. NeurIPS.
- Liu, Chen & Thuerey (2024). ConFIG: towards conflict-free training of physics informed neural
  networks. arXiv:2408.11104.
- Ban & Ji (2024). Fair resource allocation in multi-task learning. ICML.
- Xiao, Ban & Ji (2023). Direction-oriented multi-objective learning: simple and provable
  stochastic algorithms. NeurIPS.
- Chen, Fernando, Ying & Chen (2023). Three-way trade-off in multi-objective learning:
  optimization, generalization and conflict-avoidance. NeurIPS.
- Lin, Ye, Zhang & Kwok (2023). Dual-balancing for multi-task learning. arXiv:2308.12029.
- Lin, Zhang, Liu, Wang & Zhang (2024). Smooth Tchebycheff scalarization for multi-objective
  optimization. ICML.
- Chennupati, Sistu, Yogamani & Rawashdeh (2019). MultiNet++: multi-stream feature aggregation
  and geometric loss strategy for multi-task learning. CVPR Workshops.
- Fernando, Shen, Liu, Chaudhury, Murugesan & Chen (2023). Mitigating gradient bias in
  multi-objective learning: a provably convergent approach. ICLR.
- He, Zhou, Ye & Kwok (2024). Robust multi-task learning with excess risks. ICML.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .base import REGISTRY, GradientWeighting, Weighting
from .gram import GramWeighting, shared_representation

# every module of the package, so that every method class is defined (and so registered by
# its ``name``) whatever was imported first
_MODULES = [importlib.import_module(f"{__name__}.{info.name}")
            for info in pkgutil.iter_modules(__path__)]

#: Weighting classes by name, in alphabetical order (``make_weighting`` also takes the alias
#: ``"rlw"`` = ``"random"``): the classes that declare a ``name`` (the base class registers
#: them, :data:`~regmtl.deep.weighting.base.REGISTRY`), so a new method is its module alone.
#: Saved estimators name their weighting by these keys, so a key never changes.
WEIGHTINGS: dict[str, type[Weighting]] = dict(sorted(REGISTRY.items()))

# each method module's public names (its class and functional forms) are this package's
_METHOD_NAMES = {name: getattr(mod, name) for mod in _MODULES
                 if any(cls.__module__ == mod.__name__ for cls in WEIGHTINGS.values())
                 for name in mod.__all__}
globals().update(_METHOD_NAMES)

__all__ = ["Weighting", "GradientWeighting", "GramWeighting", "shared_representation",
           "WEIGHTINGS", "make_weighting", *_METHOD_NAMES]
_ALIASES = {"rlw": "random"}


def make_weighting(weighting: str | Weighting | None, **kwargs: Any) -> Weighting:
    """A task weighting from a name (options as keywords), an instance, or None (equal).

    Parameters
    ----------
    weighting : str, Weighting or None
        A name: ``"equal"``, ``"fixed"`` (needs ``weights=``), ``"random"`` (alias ``"rlw"``),
        ``"uncertainty"``, ``"dwa"``, ``"gradnorm"``, ``"pcgrad"``, ``"cagrad"``, ``"famo"``,
        ``"nash_mtl"``, ``"imtl"``, ``"mgda"``, ``"aligned_mtl"``, ``"upgrad"``,
        ``"gradvac"``, ``"graddrop"``, ``"dualproj"``, ``"config"``, ``"fairgrad"``,
        ``"sdmgrad"``, ``"modo"``, ``"db_mtl"``, ``"stch"``, ``"gls"``, ``"moco"``,
        ``"excess_mtl"``, ``"rgw"`` (case and
        surrounding spaces are ignored); an instance, returned as is; None, equal weighting.
    **kwargs
        Options of the named class (``weights``, ``init``, ``temperature``, ``alpha``,
        ``lr``, ``c``, ``rescale``; ``w_lr``, ``gamma``, ``optimizer``, ``min_losses``,
        ``eps`` of FAMO; ``loss_scale`` of IMTL; ``normalization``, ``upper_bound`` of MGDA;
        ``on_representation`` of the Gram methods (IMTL, MGDA, Nash-MTL, Aligned-MTL, ...);
        ``scale``, ``rtol`` of Aligned-MTL; ``beta`` of GradVac; ``leak`` of GradDrop;
        ``alpha`` of FairGrad; ``lam`` of SDMGrad; ``gamma``, ``rho`` of MoDo; ``beta``,
        ``beta_sigma``, ``eps`` of DB-MTL; ``mu``, ``warmup_epochs`` of STCH; ``beta``,
        ``beta_sigma``, ``gamma``, ``gamma_sigma``, ``rho`` of MoCo; ``step_size``, ``eps`` of
        ExcessMTL).

    Returns
    -------
    Weighting
        A new instance, or ``weighting`` itself.

    Raises
    ------
    ValueError
        If the name is unknown, ``"fixed"`` has no ``weights``, or options come with an
        instance.
    TypeError
        If ``weighting`` is neither a name, an instance nor None.

    See Also
    --------
    regmtl.deep.Weighting : The base class.

    Examples
    --------
    >>> from regmtl.deep import make_weighting
    >>> make_weighting("dwa", temperature=1.0)
    DWA(temperature=1.0)
    >>> make_weighting("rlw"), make_weighting(None)
    (RandomWeighting(), EqualWeighting())
    >>> make_weighting("mgda", normalization="l2")
    MGDA(normalization='l2', upper_bound=False)
    """
    if isinstance(weighting, Weighting):
        if kwargs:
            raise ValueError(f"weighting options {sorted(kwargs)} apply to a weighting name, "
                             f"not to the instance {weighting!r}.")
        return weighting
    if weighting is None:
        weighting = "equal"
    if not isinstance(weighting, str):
        raise TypeError(f"weighting must be a name, a Weighting instance or None, got "
                        f"{weighting!r}.")
    key = weighting.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; use one of {list(WEIGHTINGS)} "
                         f"(alias 'rlw' = 'random') or a Weighting instance.")
    if key == "fixed" and "weights" not in kwargs:
        raise ValueError("weighting 'fixed' needs weights=: a dict task name -> weight or "
                         "one weight per task.")
    return WEIGHTINGS[key](**kwargs)
