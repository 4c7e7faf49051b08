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
=================  ==================================================  =======================

Loss weighting (equal, fixed, random, uncertainty, dwa; famo) costs one backward pass. Gradient
methods (gradnorm, pcgrad, cagrad, nash_mtl, imtl, mgda, aligned_mtl, upgrad) form the (T, d)
matrix of per-task gradients of the d shared parameters: T backward passes through the trunk per
step and T times the memory of the shared parameters (not of the heads, not of the activations).
The heads get the gradient of :math:`\sum_t b_t L_t` (of :math:`\sum_t w_t L_t` for gradnorm).
FAMO and the last five live in :mod:`regmtl.deep.conflict`, which describes them and their
conventions (base weights, zero gradients, scale) in detail.

The weights returned by :meth:`Weighting.backward` (the ``weight/TASK`` columns of the trainer's
history, averaged over each epoch) are the coefficients of the losses, or for gradient methods
of the original :math:`g_t` in the shared update. What they sum to:

- :math:`\sum_t b_t` (T by default): equal, random, dwa, gradnorm, famo and imtl (famo and imtl:
  over the tasks taking part in the step). With unequal :math:`b` the softmaxes are weighted,
  :math:`w_t \propto b_t e^{x_t}`. IMTL's weights can be negative.
- the given weights' sum: fixed.
- T with unit base weights: mgda (its hull of the :math:`b_t g_t` is scaled by T: in general,
  with its normalizers :math:`n_t`, :math:`\sum_t w_t n_t / b_t = T`; all 0 at a
  Pareto-stationary point).
- no fixed sum: uncertainty (:math:`w_t = b_t e^{-s_t}` with the :math:`s_t` learned freely: the
  sum starts at :math:`\sum_t b_t` for ``init=0`` and drifts with the scale of the losses);
  pcgrad and upgrad (:math:`w_t \ge b_t`, more where gradients conflict); cagrad
  (:math:`w_t \ge b_t / (1 + c^2)`; :math:`\sum_t b_t` for ``c=0``); nash_mtl (:math:`w_t`
  scales like :math:`1 / \|g_t\|`); aligned_mtl (:math:`B b`, entries can be negative).

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
- The references of :mod:`regmtl.deep.conflict` (FAMO, Nash-MTL, IMTL, MGDA, Aligned-MTL,
  UPGrad).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._torch import torch
from .tasks import TaskSpec

__all__ = [
    "Weighting",
    "EqualWeighting",
    "FixedWeighting",
    "RandomWeighting",
    "UncertaintyWeighting",
    "DWA",
    "GradNorm",
    "PCGrad",
    "CAGrad",
    "WEIGHTINGS",
    "make_weighting",
    "project_conflicting",
    "cagrad_direction",
]

Tensor = torch.Tensor
_F64 = torch.float64


def _identity(x: Tensor) -> Tensor:
    return x


def _check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (math.isfinite(v) and (v > low if strict else v >= low)):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {low:g}, got {value!r}.")
    return v


def _weighted_softmax(x: Tensor, base: Tensor) -> Tensor:
    """``sum(b) * b e^x / (b . e^x)``: T softmax(x) for unit ``b``; ``b`` where x is constant."""
    e = base * torch.exp(x - x.max())
    total = e.sum()
    if not (total > 0 and torch.isfinite(total)):
        return base.clone()
    return base.sum() * e / total


# ----------------------------------------------------------------------------- base class
class Weighting(torch.nn.Module):
    r"""Base class of the task weightings: turns per-task losses into parameter gradients.

    A loss weighting backpropagates :math:`\sum_t w_t L_t` (plus an optional regularizer and
    the penalty) with the weights :math:`w` of the step. Subclasses of loss weighting implement
    ``_loss_weights(losses)``, the (T,) weights on the device and dtype of ``losses`` (and
    ``_regularizer(losses)``, a term added to the objective, or None); gradient methods
    (:class:`~regmtl.deep.GradNorm`, :class:`~regmtl.deep.PCGrad`,
    :class:`~regmtl.deep.CAGrad`) derive from an internal base that forms the per-task gradient
    matrix. The trainer calls :meth:`setup` once (before building its optimizer: some methods
    create parameters), :meth:`backward` every step, :meth:`step_end` after every optimizer
    step for methods with ``needs_step_losses`` (FAMO) and :meth:`epoch_end` after every epoch.
    State lives in buffers (and the random generator in the extra state), so ``state_dict``
    round-trips after :meth:`setup`; move the module with ``.to(device)`` like the net.

    Attributes
    ----------
    base_weights : Tensor of shape (T,)
        Each task's ``TaskSpec.weight`` :math:`b_t` (float64, CPU), set by :meth:`setup`.
    task_names : tuple of str
        The tasks, set by :meth:`setup`.
    needs_task_grads : bool
        Whether the method forms the per-task gradients of the shared parameters (T backward
        passes per step).
    needs_step_losses : bool
        Whether the method needs the losses of the batch after the optimizer step
        (:meth:`step_end`; the trainer then runs one more forward pass per step).

    See Also
    --------
    regmtl.deep.make_weighting : A weighting from its name.
    regmtl.deep.Trainer : Takes a weighting (``weighting=``).

    Examples
    --------
    A weighting of one's own, inversely proportional to each task's current loss:

    >>> import torch
    >>> from regmtl.deep import TaskSpec, Weighting
    >>> class InverseLoss(Weighting):
    ...     def _loss_weights(self, losses):
    ...         return self.base_weights.to(losses) / losses.detach().clamp(min=1e-8)
    >>> weighting = InverseLoss()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, theta[1] ** 2])  # 1 and 4
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 0.25]
    >>> theta.grad.tolist()  # the gradient of 1 * theta_0^2 + 0.25 * theta_1^2
    [2.0, 1.0]

    It can then be passed to :class:`~regmtl.deep.Trainer` as ``weighting=InverseLoss()``.
    """

    #: True where per-task gradients of the shared parameters are formed.
    needs_task_grads: bool = False
    #: True where :meth:`step_end` wants the losses of the batch after the optimizer step.
    needs_step_losses: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.base_weights: Tensor = torch.ones(0, dtype=_F64)  # CPU float64, from the specs
        self.task_names: tuple[str, ...] = ()
        self._generator: torch.Generator | None = None

    @property
    def n_tasks(self) -> int:
        """The number of tasks T (0 before :meth:`setup`)."""
        return len(self.task_names)

    # ------------------------------------------------------------------ life cycle
    def setup(self, tasks: list[TaskSpec], seed: int | None = None) -> None:
        """Size the state for ``tasks`` and seed the random draws.

        Calling it again resets every state.

        Parameters
        ----------
        tasks : list of TaskSpec
            The tasks, in the order of the losses given to :meth:`backward`.
        seed : int, optional
            Seed of the method's random draws (random weights, PCGrad's order). None draws it
            from torch's global generator, so ``torch.manual_seed`` makes a run reproducible.

        Raises
        ------
        ValueError
            If ``tasks`` is empty, or does not fit the method's options (unknown task names
            or a wrong number of fixed weights).
        """
        tasks = list(tasks)
        if not tasks:
            raise ValueError("setup: give at least one TaskSpec.")
        self.task_names = tuple(t.name for t in tasks)
        self.base_weights = torch.tensor([float(t.weight) for t in tasks], dtype=_F64)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self._generator = torch.Generator().manual_seed(int(seed))
        self._setup(tasks)

    def _setup(self, tasks: list[TaskSpec]) -> None:
        """Subclass hook: create the per-task state."""

    def epoch_end(self, train_losses: Tensor) -> None:
        """Record the mean training loss per task of the finished epoch (DWA uses it).

        Parameters
        ----------
        train_losses : Tensor of shape (T,)
            Each task's mean training loss over the epoch.
        """

    def step_end(self, losses: Tensor, *,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Take the losses of the last batch after the optimizer step (FAMO uses them).

        Called by the trainer after every optimizer step when ``needs_step_losses`` is True;
        nothing happens by default.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The detached task losses of the batch of the last :meth:`backward`, at the
            updated parameters.
        reduce : callable, optional
            Averages a tensor across distributed ranks.
        """

    def get_extra_state(self) -> dict:
        """The state outside the buffers, saved in ``state_dict``.

        Returns
        -------
        dict
            The random generator's state and the task names.
        """
        gen = None if self._generator is None else self._generator.get_state()
        return {"generator": gen, "task_names": list(self.task_names)}

    def set_extra_state(self, state: dict) -> None:
        """Restore the state of :meth:`get_extra_state` (called by ``load_state_dict``).

        Parameters
        ----------
        state : dict
            The random generator's state and the task names.
        """
        if not isinstance(state, dict):
            return
        if state.get("generator") is not None:
            self._generator = torch.Generator()
            self._generator.set_state(state["generator"])
        if state.get("task_names"):
            self.task_names = tuple(state["task_names"])

    # ------------------------------------------------------------------ helpers
    def _base(self) -> Tensor:
        """Base weights, float64 on the CPU."""
        return self.base_weights

    def _check_losses(self, losses: Tensor) -> None:
        if not self.task_names:
            raise RuntimeError(f"{type(self).__name__}.setup(tasks) must be called before "
                               "backward().")
        if not isinstance(losses, torch.Tensor) or losses.shape != (self.n_tasks,):
            shape = getattr(losses, "shape", type(losses).__name__)
            raise ValueError(f"losses must be a tensor of shape ({self.n_tasks},), one loss per "
                             f"task, got {shape}.")

    # ------------------------------------------------------------------ loss weighting
    def _loss_weights(self, losses: Tensor) -> Tensor:
        """The (T,) weights of this step, on the device and dtype of ``losses``."""
        return self.base_weights.to(losses)

    def _regularizer(self, losses: Tensor) -> Tensor | None:
        """A term added to the objective (uncertainty weighting's sum of log-variances)."""
        return None

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Accumulate the gradients of one step into ``.grad``; return the (T,) task weights.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The task losses of the batch, attached to the graph.
        shared, specific : sequence of Parameter
            The trunk's and the heads' parameters (only gradient methods tell them apart).
        extra : scalar Tensor, optional
            Added to the objective with weight 1 (the parameter penalty); its gradient reaches
            every parameter it depends on.
        scale : callable, optional
            Applied to every objective before differentiating (``GradScaler.scale``).
        reduce : callable, optional
            Averages a tensor across distributed ranks; gradient methods apply it to the (T, d)
            per-task gradient matrix (and gradnorm to the loss values) before deciding.

        Returns
        -------
        Tensor of shape (T,)
            The detached weights of this step: the effective coefficient of each task's loss.
        """
        self._check_losses(losses)
        scale = _identity if scale is None else scale
        w = self._loss_weights(losses)
        objective = (w * losses).sum()
        reg = self._regularizer(losses)
        if reg is not None:
            objective = objective + reg
        if extra is not None:
            objective = objective + extra
        if objective.requires_grad:
            scale(objective).backward()
        return w.detach()


# ----------------------------------------------------------------------------- loss weighting
class EqualWeighting(Weighting):
    r"""Equal weighting, the baseline: the gradient of :math:`\sum_t b_t L_t`.

    The weights are :math:`w_t = b_t`, each task's ``TaskSpec.weight`` (1 by default), at
    every step; they sum to :math:`\sum_t b_t` (T by default). The default of
    :class:`~regmtl.deep.Trainer`.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import EqualWeighting, TaskSpec
    >>> weighting = EqualWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b", weight=2.0)])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, theta[1] ** 2])
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 2.0]
    >>> theta.grad.tolist()
    [2.0, 8.0]
    """


class FixedWeighting(Weighting):
    r"""Fixed weights given by task name or in task order.

    The gradient of :math:`\sum_t w_t L_t` with the given weights :math:`w` at every step (they
    replace the specs' weights). They are used as given, not normalized: they sum to what the
    given weights (and, with a dict, the specs' weights of the tasks it leaves out) sum to.

    Parameters
    ----------
    weights : dict of str to float, or sequence of float
        Finite weights >= 0. A dict names tasks (the others keep their ``TaskSpec.weight``); a
        sequence has one weight per task, in order. Checked at
        :meth:`~regmtl.deep.Weighting.setup`.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The weights in task order, set by :meth:`~regmtl.deep.Weighting.setup`.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FixedWeighting, TaskSpec
    >>> weighting = FixedWeighting({"b": 0.5})
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> weighting.task_weights.tolist()
    [1.0, 0.5]
    """

    def __init__(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        super().__init__()
        self.weights = weights
        self.task_weights: Tensor = torch.ones(0, dtype=_F64)

    def _setup(self, tasks: list[TaskSpec]) -> None:
        names = [t.name for t in tasks]
        weights = self.weights
        if isinstance(weights, Mapping):
            unknown = sorted(str(k) for k in set(weights) - set(names))
            if unknown:
                raise ValueError(f"weights: unknown task name(s) {unknown}; the tasks are "
                                 f"{names}.")
            w = [_check_number(f"weights[{t.name!r}]", weights[t.name]) if t.name in weights
                 else float(t.weight) for t in tasks]
        elif isinstance(weights, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
                weights, str):
            if isinstance(weights, torch.Tensor):
                weights = weights.detach().cpu().numpy()
            vals = np.asarray(weights, dtype=object).reshape(-1).tolist()
            if len(vals) != len(tasks):
                raise ValueError(f"weights: {len(vals)} weights given for {len(tasks)} tasks "
                                 f"{names}.")
            w = [_check_number(f"weights[{i}]", v) for i, v in enumerate(vals)]
        else:
            raise ValueError("weights must be a dict task name -> weight or a sequence of "
                             f"weights, got {weights!r}.")
        self.task_weights = torch.tensor(w, dtype=_F64)

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.to(losses)

    def extra_repr(self) -> str:
        return f"weights={self.weights!r}"


class RandomWeighting(Weighting):
    r"""Random loss weighting (RLW): random weights drawn at every step.

    .. math::

        w = T\,\mathrm{softmax}(z), \qquad z \sim N(0, I_T),

    with base weights :math:`b`: :math:`w_t = (\sum_k b_k)\, b_t e^{z_t} / \sum_k b_k e^{z_k}`.
    The draws come from a generator seeded at :meth:`~regmtl.deep.Weighting.setup`, so a seed
    fixes the sequence. The weights sum to :math:`\sum_t b_t` (T by default) at every step; with
    unit base weights each averages 1 over steps. ``make_weighting`` also knows it as ``"rlw"``.

    References
    ----------
    Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus
    test for multi-task learning. TMLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import RandomWeighting, TaskSpec
    >>> weighting = RandomWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> w = weighting.backward(torch.stack([theta[0] ** 2, theta[1] ** 2]), [theta], [])
    >>> round(float(w.sum()), 6), bool((w > 0).all())
    (2.0, True)
    """

    def _loss_weights(self, losses: Tensor) -> Tensor:
        z = torch.randn(self.n_tasks, generator=self._generator, dtype=_F64)
        return _weighted_softmax(z, self._base()).to(losses)


class UncertaintyWeighting(Weighting):
    r"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, 2018).

    Learns one log-variance :math:`s_t = \log \sigma_t^2` per task (the parameter
    ``log_vars``, created at :meth:`~regmtl.deep.Weighting.setup`: give
    ``weighting.parameters()`` to the optimizer, as :class:`~regmtl.deep.Trainer` does) and
    minimizes, jointly with the net,

    .. math::

        \sum_t b_t \left(e^{-s_t} L_t + s_t\right);

    the task weight is :math:`w_t = b_t e^{-s_t}`. For a fixed loss the optimum is
    :math:`s_t = \log L_t`, so a task with 100 times the loss gets about 1/100 of the weight.
    A task whose loss is exactly 0 in a batch (no observed label) drops its :math:`s_t` term,
    so missing labels do not inflate its weight.

    The weights keep no sum: nothing ties the :math:`s_t` together, so
    :math:`\sum_t w_t` starts at :math:`e^{-\mathrm{init}} \sum_t b_t` and drifts, down when
    the losses are large, up as they fall below 1 (with losses of 100 and 0.1 the weights tend
    to :math:`b_t / L_t`, 0.01 and 10). Read them relative to one another.

    Parameters
    ----------
    init : float, default=0.0
        Starting value of every :math:`s_t` (weight :math:`e^{-\mathrm{init}}`).

    Attributes
    ----------
    log_vars : torch.nn.Parameter of shape (T,)
        The learned :math:`s_t`.

    References
    ----------
    Kendall, Gal & Cipolla (2018). Multi-task learning using uncertainty to weigh losses for
    scene geometry and semantics. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec, UncertaintyWeighting
    >>> weighting = UncertaintyWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, 4 * theta[1] ** 2])  # 1 and 16
    >>> weighting.backward(losses, [theta], []).tolist()  # e^{-s} with s = 0
    [1.0, 1.0]
    >>> weighting.log_vars.grad.tolist()  # d/ds (e^{-s} L + s) = 1 - L at s = 0
    [0.0, -15.0]
    """

    def __init__(self, init: float = 0.0) -> None:
        super().__init__()
        self.init = _check_number("init", init, low=-math.inf)
        self.log_vars = torch.nn.Parameter(torch.zeros(0))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        self.log_vars = torch.nn.Parameter(
            torch.full((len(tasks),), self.init, device=self.log_vars.device))

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.base_weights.to(losses) * torch.exp(-self.log_vars.to(losses))

    def _regularizer(self, losses: Tensor) -> Tensor:
        observed = (losses.detach() != 0).to(losses.dtype)
        return (self.base_weights.to(losses) * observed * self.log_vars.to(losses)).sum()

    def extra_repr(self) -> str:
        return f"init={self.init!r}"


class DWA(Weighting):
    r"""Dynamic weight average (Liu, Johns & Davison, 2019).

    The weights of epoch e follow the rate at which each task's loss fell over the last two
    epochs:

    .. math::

        w = T\,\mathrm{softmax}(r / \tau), \qquad
        r_t = \frac{L_t^{(e-1)}}{L_t^{(e-2)}},

    with :math:`L_t^{(e)}` the task's mean training loss of epoch e (from
    :meth:`~regmtl.deep.Weighting.epoch_end`) and :math:`\tau` the temperature: the task
    whose loss falls slowest gets the largest weight. The first two epochs use the base
    weights; the weights sum to T (to :math:`\sum_t b_t` with base weights :math:`b`,
    :math:`w_t` then proportional to :math:`b_t e^{r_t / \tau}`).

    Parameters
    ----------
    temperature : float, default=2.0
        Softness of the weights :math:`\tau` (> 0); large values give equal weights.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The weights of the current epoch.
    loss_history : Tensor of shape (2, T)
        The mean training losses of the last epoch (row 0) and of the one before.

    References
    ----------
    Liu, Johns & Davison (2019). End-to-end multi-task learning with attention. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import DWA, TaskSpec
    >>> weighting = DWA(temperature=2.0)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> weighting.epoch_end(torch.tensor([1.0, 1.0]))
    >>> weighting.epoch_end(torch.tensor([0.5, 1.0]))  # task a's loss halved
    >>> [round(w, 3) for w in weighting.task_weights.tolist()]
    [0.876, 1.124]
    """

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = _check_number("temperature", temperature, strict=True)
        self.register_buffer("loss_history", torch.zeros(2, 0))  # row 0: the last epoch
        self.register_buffer("n_epochs", torch.zeros((), dtype=torch.long))
        self.register_buffer("task_weights", torch.ones(0))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.task_weights.device
        self.loss_history = torch.zeros(2, len(tasks), device=dev)
        self.n_epochs = torch.zeros((), dtype=torch.long, device=dev)
        self.task_weights = self.base_weights.to(self.task_weights)

    def epoch_end(self, train_losses: Tensor) -> None:
        if not self.task_names:
            raise RuntimeError("DWA.setup(tasks) must be called before epoch_end().")
        last = torch.as_tensor(train_losses).detach().to("cpu", _F64).reshape(-1)
        if last.shape != (self.n_tasks,):
            raise ValueError(f"train_losses must have {self.n_tasks} values, one per task, "
                             f"got shape {tuple(last.shape)}.")
        prev = self.loss_history[0].detach().to("cpu", _F64)
        n = int(self.n_epochs) + 1
        if n >= 2:
            ok = torch.isfinite(last) & torch.isfinite(prev) & (prev > 0)
            ratio = torch.where(ok, last / torch.where(ok, prev, 1.0), torch.ones_like(last))
            w = _weighted_softmax(ratio / self.temperature, self._base())
        else:
            w = self._base()
        self.loss_history.copy_(torch.stack([last, prev]))
        self.n_epochs.fill_(n)
        self.task_weights.copy_(w)

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.to(losses)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature!r}"


# ----------------------------------------------------------------------------- gradient methods
def _task_gradients(losses: Tensor, params: list[torch.nn.Parameter],
                    scale: Callable[[Tensor], Tensor]) -> Tensor:
    """The (T, d) matrix of ``grad scale(L_t)`` with respect to the flattened ``params``."""
    sizes = [p.numel() for p in params]
    dtype = params[0].dtype if params else losses.dtype
    device = params[0].device if params else losses.device
    G = torch.zeros(losses.shape[0], sum(sizes), dtype=dtype, device=device)
    if not params or not losses.requires_grad:
        return G
    for t in range(losses.shape[0]):
        grads = torch.autograd.grad(scale(losses[t]), params, retain_graph=True,
                                    allow_unused=True)
        off = 0
        for g, n in zip(grads, sizes, strict=True):
            if g is not None:
                G[t, off:off + n] = g.reshape(-1)
            off += n
    return G


def _accumulate(params: list[torch.nn.Parameter], flat: Tensor) -> None:
    """Add the flat gradient vector ``flat`` into the ``.grad`` of ``params``."""
    off = 0
    for p in params:
        n = p.numel()
        g = flat[off:off + n].view_as(p).to(p.dtype)
        p.grad = g if p.grad is None else p.grad + g
        off += n


def _gram(G: Tensor) -> Tensor:
    """``G G^T`` as float64 on the CPU (the small T x T problem)."""
    return (G @ G.T).to("cpu", _F64)


class _GradientWeighting(Weighting):
    """Base of the methods that combine per-task gradients of the shared parameters."""

    needs_task_grads = True

    def _combine(self, G: Tensor, losses: Tensor, scale: Callable[[Tensor], Tensor],
                 reduce: Callable[[Tensor], Tensor] | None) -> tuple[Tensor, Tensor]:
        """(coefficients c with shared gradient c @ G, weights of the heads' losses), CPU f64."""
        raise NotImplementedError

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`Weighting.backward`; the weights are the effective coefficients of the
        original task gradients in the shared-parameter gradient."""
        self._check_losses(losses)
        scale = _identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        G = _task_gradients(losses, shared, scale)
        if reduce is not None:
            G = reduce(G)
        coeffs, head_weights = self._combine(G, losses, scale, reduce)
        if shared:
            _accumulate(shared, coeffs.to(G) @ G)
        del G
        with_extra = extra is not None and extra.requires_grad
        if specific and losses.requires_grad:
            head_objective = scale((head_weights.to(losses) * losses).sum())
            torch.autograd.backward(head_objective, inputs=specific, retain_graph=with_extra)
        if with_extra:
            scale(extra).backward()
        return coeffs.to(device=losses.device, dtype=losses.dtype)


class GradNorm(_GradientWeighting):
    r"""Gradient normalization (Chen, Badrinarayanan, Lee & Rabinovich, 2018).

    Adapts the weights so that each task's weighted gradient norm over all shared parameters
    follows its relative training rate:

    .. math::

        G_t = w_t \|g_t\|_2, \qquad
        \hat G_t = \bar G\, r_t^{\alpha}, \qquad
        r_t = \frac{L_t / L_t^{(0)}}{\frac{1}{T}\sum_k L_k / L_k^{(0)}},

    with :math:`g_t = \nabla_\theta L_t`, :math:`\bar G` the mean of :math:`G` and
    :math:`L_t^{(0)}` the task's first nonzero loss. Every step takes one Adam step (betas 0.9,
    0.999) of learning rate ``lr`` on :math:`\sum_t |G_t - \hat G_t|` over :math:`w` (target
    :math:`\hat G` held fixed), clamps :math:`w \ge 0` and rescales the weights to sum to T
    (:math:`\sum_t b_t`), then backpropagates :math:`\sum_t w_t L_t`. A task with a larger
    gradient norm (or a faster falling loss) has its weight lowered.
    The weights are a buffer, not a parameter: the trainer's optimizer does not touch them.
    Tasks without observed labels in the batch (zero gradient) are left out of the update.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters, T times the
    shared parameters (not the heads, not activations); T backward passes through the trunk.

    Parameters
    ----------
    alpha : float, default=1.5
        Strength of the pull towards equal training rates (>= 0).
    lr : float, default=0.025
        Learning rate of the weights' Adam step (> 0).

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The current weights :math:`w`.
    initial_losses : Tensor of shape (T,)
        :math:`L_t^{(0)}` (NaN until the task has a nonzero loss).

    References
    ----------
    Chen, Badrinarayanan, Lee & Rabinovich (2018). GradNorm: gradient normalization for
    adaptive loss balancing in deep multitask networks. ICML.

    Examples
    --------
    Task b's gradient is ten times task a's: its weight goes down.

    >>> import torch
    >>> from regmtl.deep import GradNorm, TaskSpec
    >>> weighting = GradNorm(alpha=1.5, lr=0.025)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0] ** 2, 10 * theta[1] ** 2])
    >>> [round(w, 3) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.025, 0.975]
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__()
        self.alpha = _check_number("alpha", alpha)
        self.lr = _check_number("lr", lr, strict=True)
        for name in ("task_weights", "initial_losses", "adam_m", "adam_v"):
            self.register_buffer(name, torch.ones(0))
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev, T = self.task_weights.device, len(tasks)
        self.task_weights = self.base_weights.to(self.task_weights)
        self.initial_losses = torch.full((T,), math.nan, device=dev)
        self.adam_m = torch.zeros(T, device=dev)
        self.adam_v = torch.zeros(T, device=dev)
        self.n_steps = torch.zeros((), dtype=torch.long, device=dev)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        w = self.task_weights.detach().to("cpu", _F64)
        L = losses.detach()
        if reduce is not None:
            L = reduce(L)
        L = L.to("cpu", _F64)
        factor = float(scale(losses.detach().new_ones(())))  # the AMP loss scale, 1 without
        factor = factor if math.isfinite(factor) and factor > 0 else 1.0
        norms = torch.linalg.vector_norm(G, dim=1).to("cpu", _F64) / factor
        if not (torch.isfinite(norms).all() and torch.isfinite(L).all()):
            return w, w  # an overflowing AMP step: the scaler skips it, keep the weights
        init = self.initial_losses.detach().to("cpu", _F64)
        init = torch.where(torch.isnan(init) & (L > 0), L, init)
        self.initial_losses.copy_(init)
        active = (norms > 0) & (init > 0) & (base > 0)
        if int(active.sum()) >= 2:
            Gw = w * norms
            rate = torch.where(active, L / torch.where(active, init, 1.0), 0.0)
            rate = rate / rate[active].mean()
            target = Gw[active].mean() * rate.clamp(min=0) ** self.alpha
            grad = torch.where(active, torch.sign(Gw - target) * norms, 0.0)
            step = int(self.n_steps) + 1
            m = self.adam_m.detach().to("cpu", _F64)
            v = self.adam_v.detach().to("cpu", _F64)
            m = torch.where(active, 0.9 * m + 0.1 * grad, m)
            v = torch.where(active, 0.999 * v + 0.001 * grad**2, v)
            m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
            w = w - torch.where(active, self.lr * m_hat / (v_hat.sqrt() + 1e-8), 0.0)
            w = torch.where(base > 0, w.clamp(min=0), 0.0)
            w = base.sum() * w / w.sum() if w.sum() > 0 else base.clone()
            self.adam_m.copy_(m)
            self.adam_v.copy_(v)
            self.n_steps.fill_(step)
            self.task_weights.copy_(w)
        return w, w

    def extra_repr(self) -> str:
        return f"alpha={self.alpha!r}, lr={self.lr!r}"


def _pcgrad_coefficients(A: Tensor, order: torch.Generator | None) -> Tensor:
    """C (T x T) with PCGrad's projected gradients ``C @ G``, from the Gram matrix ``A``."""
    T = A.shape[0]
    C = torch.eye(T, dtype=_F64)
    for t in range(T):
        others = [j for j in range(T) if j != t]
        perm = (torch.randperm(T - 1, generator=order).tolist() if order is not None
                else range(T - 1))
        for k in perm:
            j = others[k]
            dot = float(C[t] @ A[:, j])  # g_t' . g_j
            if dot < 0 and A[j, j] > 0:
                C[t, j] -= dot / float(A[j, j])
    return C


def project_conflicting(G: Tensor, order: torch.Generator | None = None
                        ) -> tuple[Tensor, Tensor]:
    r"""PCGrad's projection of conflicting gradients, the rows of ``G``.

    Each task's gradient :math:`g_t` starts as :math:`g_t' = g_t`; then, for the other tasks j
    in a random order (task order if ``order`` is None), wherever the two conflict,

    .. math::

        g_t' \leftarrow g_t' - \frac{g_t' \cdot g_j}{\|g_j\|_2^2}\, g_j
        \quad \text{if } g_t' \cdot g_j < 0,

    always against the original :math:`g_j`. PCGrad updates along :math:`\sum_t g_t'`.

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The per-task gradients, one per row.
    order : torch.Generator, optional
        Draws the order of the other tasks for each task; None: task order.

    Returns
    -------
    G_proj : Tensor of shape (T, d)
        The projected gradients :math:`g_t'`.
    C : Tensor of shape (T, T)
        Their coefficients on the original gradients, ``G_proj = C @ G``.

    See Also
    --------
    regmtl.deep.PCGrad : The weighting that applies it at every step.

    References
    ----------
    Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
    NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import project_conflicting
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g_0 . g_1 = -1 < 0
    >>> G_proj, C = project_conflicting(G)
    >>> G_proj.tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    >>> C.tolist()
    [[1.0, 0.5], [1.0, 1.0]]
    """
    C = _pcgrad_coefficients(_gram(G), order)
    if torch.equal(C, torch.eye(C.shape[0], dtype=_F64)):
        return G.clone(), C.to(G)
    C = C.to(G)
    return C @ G, C


class PCGrad(_GradientWeighting):
    r"""Projecting conflicting gradients (Yu et al., 2020).

    Each task's gradient :math:`b_t g_t` of the shared parameters loses its component along
    every other task's gradient it conflicts with (negative inner product), the others taken in
    a random order drawn from the seeded generator
    (:func:`~regmtl.deep.weighting.project_conflicting`):

    .. math::

        g_t' \leftarrow g_t' - \frac{g_t' \cdot g_j}{\|g_j\|_2^2}\, g_j
        \quad \text{if } g_t' \cdot g_j < 0 .

    The shared gradient is :math:`\sum_t g_t'`. The heads get the gradient of
    :math:`\sum_t b_t L_t`. The returned weights are the effective coefficients of the
    original task gradients. They keep no sum: a projection adds a positive multiple of the
    gradient it conflicts with, so each weight is at least :math:`b_t` (exactly :math:`b_t`
    when nothing conflicts) and their sum grows with the conflicts.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters, T times the
    shared parameters (not the heads, not activations); T backward passes through the trunk.

    References
    ----------
    Yu, Kumar, Gupta, Levine, Hausman & Finn (2020). Gradient surgery for multi-task learning.
    NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import PCGrad, TaskSpec
    >>> weighting = PCGrad()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0], theta[1] - theta[0]])  # gradients (1, 0) and (-1, 1)
    >>> weighting.backward(losses, [theta], []).tolist()
    [2.0, 1.5]
    >>> theta.grad.tolist()  # (0.5, 0.5) + (0, 1), the projected gradients
    [0.5, 1.5]
    """

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = _gram(G) * base[:, None] * base[None, :]
        if not torch.isfinite(A).all():  # an overflowing AMP step: the scaler skips it
            return base, base
        C = _pcgrad_coefficients(A, self._generator)
        return C.sum(0) * base, base


def _cagrad_objective(w: np.ndarray, b: np.ndarray, A: np.ndarray, sqrt_phi: float) -> float:
    return float(b @ w + sqrt_phi * math.sqrt(max(float(w @ A @ w), 0.0)))


def _cagrad_weights(A: np.ndarray, sqrt_phi: float) -> np.ndarray:
    """argmin over the simplex of ``w . (A 1/T) + sqrt_phi sqrt(w^T A w)`` (A = G G^T)."""
    T = A.shape[0]
    uniform = np.full(T, 1.0 / T)
    if T == 1 or sqrt_phi == 0:
        return uniform
    s = float(np.max(np.diag(A)))  # the problem is invariant to scaling A (and sqrt_phi^2)
    A = A / s
    sqrt_phi = sqrt_phi / math.sqrt(s)
    b = A.mean(axis=1)
    candidates = [uniform, *np.eye(T)]
    if T == 2:  # a convex function of t = w_0 on [0, 1]: golden-section search
        def f(t: float) -> float:
            return _cagrad_objective(np.array([t, 1.0 - t]), b, A, sqrt_phi)
        inv = (math.sqrt(5.0) - 1.0) / 2.0
        lo, hi = 0.0, 1.0
        c, d = hi - inv * (hi - lo), lo + inv * (hi - lo)
        fc, fd = f(c), f(d)
        for _ in range(90):
            if fc < fd:
                hi, d, fd = d, c, fc
                c = hi - inv * (hi - lo)
                fc = f(c)
            else:
                lo, c, fc = c, d, fd
                d = lo + inv * (hi - lo)
                fd = f(d)
        t = 0.5 * (lo + hi)
        candidates.append(np.array([t, 1.0 - t]))
    else:
        from scipy.optimize import minimize

        def jac(w: np.ndarray, *_: object) -> np.ndarray:
            Aw = A @ w
            q = float(w @ Aw)
            return b + (sqrt_phi * Aw / math.sqrt(q) if q > 1e-300 else 0.0)

        res = minimize(_cagrad_objective, uniform, args=(b, A, sqrt_phi), jac=jac,
                       method="SLSQP", bounds=[(0.0, 1.0)] * T,
                       constraints=({"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                     "jac": lambda w: np.ones_like(w)},),
                       options={"ftol": 1e-15, "maxiter": 1000})
        w = np.clip(res.x, 0.0, None)
        if w.sum() > 0 and np.all(np.isfinite(w)):
            candidates.append(w / w.sum())
    values = [_cagrad_objective(w, b, A, sqrt_phi) for w in candidates]
    return candidates[int(np.argmin(values))]


def _cagrad_coefficients(A: np.ndarray, c: float, rescale: bool) -> np.ndarray:
    """Coefficients ``k`` of CAGrad's direction ``k @ G`` (times T), from ``A = G G^T``."""
    T = A.shape[0]
    if not np.all(np.isfinite(A)):
        return np.ones(T)
    g0_norm = math.sqrt(max(float(A.sum()), 0.0)) / T
    sqrt_phi = c * g0_norm
    lam = 0.0
    w = np.full(T, 1.0 / T)
    if sqrt_phi > 0:
        w = _cagrad_weights(A, sqrt_phi)
        gw_norm = math.sqrt(max(float(w @ A @ w), 0.0))
        lam = sqrt_phi / gw_norm if gw_norm > 0 else 0.0
    coeffs = 1.0 + T * lam * w  # T (1/T + lambda w)
    return coeffs / (1.0 + c * c) if rescale else coeffs


def cagrad_direction(G: Tensor, c: float = 0.5, rescale: bool = True) -> tuple[Tensor, Tensor]:
    r"""CAGrad's update direction from the per-task gradients, the rows of ``G``.

    .. math::

        d = \frac{T}{1 + c^2}\left(g_0 + \frac{\sqrt{\phi}}{\|g_w\|_2}\, g_w\right),
        \qquad g_0 = \frac{1}{T}\sum_t g_t, \quad \phi = c^2 \|g_0\|_2^2,

    (without the factor :math:`1/(1 + c^2)` if not ``rescale``), where
    :math:`g_w = \sum_t w_t g_t` and :math:`w` minimizes
    :math:`g_w \cdot g_0 + \sqrt{\phi}\, \|g_w\|_2` over the simplex: exactly by
    golden-section search for T = 2, by SLSQP from :math:`w = 1/T` otherwise. ``c = 0`` gives
    :math:`\sum_t g_t`.

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The per-task gradients, one per row.
    c : float, default=0.5
        Radius of the search ball around :math:`g_0`, relative to :math:`\|g_0\|_2` (>= 0).
    rescale : bool, default=True
        Divide the direction by :math:`1 + c^2`.

    Returns
    -------
    d : Tensor of shape (d,)
        The direction (a descent direction of the sum of losses when subtracted).
    coeffs : Tensor of shape (T,)
        Its coefficients on the original gradients, ``d = coeffs @ G``.

    Raises
    ------
    ValueError
        If ``c`` is negative or not finite.

    See Also
    --------
    regmtl.deep.CAGrad : The weighting that applies it at every step.

    References
    ----------
    Liu, Liu, Jin, Stone & Liu (2021). Conflict-averse gradient descent for multi-task
    learning. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import cagrad_direction
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    >>> d, coeffs = cagrad_direction(G, c=0.0)  # the sum of the gradients
    >>> d.tolist(), coeffs.tolist()
    ([1.0, 3.0], [1.0, 1.0])
    >>> d, coeffs = cagrad_direction(G, c=0.5)  # more weight on the smaller gradient
    >>> [round(v, 3) for v in coeffs.tolist()]
    [2.065, 0.8]
    """
    c = _check_number("c", c)
    coeffs = torch.as_tensor(_cagrad_coefficients(_gram(G).numpy(), c, bool(rescale)),
                             dtype=_F64).to(G)
    return coeffs @ G, coeffs


class CAGrad(_GradientWeighting):
    r"""Conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, 2021).

    Moves the shared parameters along

    .. math::

        d = \frac{T}{1 + c^2}\left(g_0 + \lambda g_w\right), \qquad
        \lambda = \frac{\sqrt{\phi}}{\|g_w\|_2}, \quad \phi = c^2 \|g_0\|_2^2,

    with :math:`g_0` the mean task gradient (of :math:`b_t L_t`) and
    :math:`g_w = \sum_t w_t g_t`, :math:`w` the minimizer over the simplex of
    :math:`g_w \cdot g_0 + \sqrt{\phi}\, \|g_w\|_2` (:math:`g_0 + \lambda g_w` is the
    update within :math:`c \|g_0\|_2` of :math:`g_0` that most improves the worst task);
    solved exactly by golden-section search for T = 2, by SLSQP from :math:`w = 1/T` otherwise
    (:func:`~regmtl.deep.weighting.cagrad_direction`). Without ``rescale`` the factor
    :math:`1/(1 + c^2)` is left out. The factor T makes ``c = 0`` give the SUM of the task
    gradients, exactly what equal weighting gives: learning rates stay comparable with equal
    weighting. The returned weights are the effective coefficients
    :math:`b_t T (1/T + \lambda w_t) / (1 + c^2)` of the original task gradients; the task
    with the smaller gradient gets the larger one. They keep no sum: each is at least
    :math:`b_t / (1 + c^2)`, and with unit base weights they sum to
    :math:`T (1 + \lambda) / (1 + c^2)`, which grows with :math:`\lambda` (T for ``c=0``).
    The heads get the gradient of :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters, T times the
    shared parameters (not the heads, not activations); T backward passes through the trunk.

    Parameters
    ----------
    c : float, default=0.5
        Radius of the search ball around :math:`g_0`, relative to :math:`\|g_0\|_2` (>= 0).
    rescale : bool, default=True
        Divide the direction by :math:`1 + c^2`.

    References
    ----------
    Liu, Liu, Jin, Stone & Liu (2021). Conflict-averse gradient descent for multi-task
    learning. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import CAGrad, TaskSpec
    >>> weighting = CAGrad(c=0.5)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0], 3 * theta[1]])  # gradients (1, 0) and (0, 3)
    >>> [round(w, 3) for w in weighting.backward(losses, [theta], []).tolist()]
    [2.065, 0.8]
    >>> [round(g, 3) for g in theta.grad.tolist()]
    [2.065, 2.4]
    """

    def __init__(self, c: float = 0.5, rescale: bool = True) -> None:
        super().__init__()
        self.c = _check_number("c", c)
        self.rescale = bool(rescale)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = (_gram(G) * base[:, None] * base[None, :]).numpy()
        coeffs = torch.as_tensor(_cagrad_coefficients(A, self.c, self.rescale), dtype=_F64)
        return coeffs * base, base

    def extra_repr(self) -> str:
        return f"c={self.c!r}, rescale={self.rescale!r}"


# ----------------------------------------------------------------------------- factory
#: Weighting classes by name (``make_weighting`` also takes the alias ``"rlw"`` = ``"random"``).
#: :mod:`regmtl.deep.conflict` adds its six (``"famo"``, ``"nash_mtl"``, ``"imtl"``,
#: ``"mgda"``, ``"aligned_mtl"``, ``"upgrad"``) when it is imported, which importing
#: ``regmtl.deep`` always does: it builds on the classes of this module.
WEIGHTINGS: dict[str, type] = {
    "equal": EqualWeighting,
    "fixed": FixedWeighting,
    "random": RandomWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DWA,
    "gradnorm": GradNorm,
    "pcgrad": PCGrad,
    "cagrad": CAGrad,
}
_ALIASES = {"rlw": "random"}


def make_weighting(weighting: str | Weighting | None, **kwargs: Any) -> Weighting:
    """A task weighting from a name (options as keywords), an instance, or None (equal).

    Parameters
    ----------
    weighting : str, Weighting or None
        A name: ``"equal"``, ``"fixed"`` (needs ``weights=``), ``"random"`` (alias ``"rlw"``),
        ``"uncertainty"``, ``"dwa"``, ``"gradnorm"``, ``"pcgrad"``, ``"cagrad"``, ``"famo"``,
        ``"nash_mtl"``, ``"imtl"``, ``"mgda"``, ``"aligned_mtl"``, ``"upgrad"`` (case and
        surrounding spaces are ignored); an instance, returned as is; None, equal weighting.
    **kwargs
        Options of the named class (``weights``, ``init``, ``temperature``, ``alpha``,
        ``lr``, ``c``, ``rescale``; ``w_lr``, ``gamma``, ``optimizer``, ``min_losses``,
        ``eps`` of FAMO; ``loss_scale`` of IMTL; ``normalization``, ``upper_bound`` of MGDA;
        ``scale``, ``rtol`` of Aligned-MTL).

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
