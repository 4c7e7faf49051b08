r"""Random gradient weighting, RGW (Lin, Ye, Xu, Shi & Zhang, 2022).

The shared parameters move along :math:`\sum_t w_t g_t` with random weights
:math:`w = T\,\mathrm{softmax}(z)`, :math:`z \sim N(0, I_T)` drawn every step from the
weighting's seeded generator, applied to the per-task gradients.

Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus test
for multi-task learning. TMLR.
"""

from __future__ import annotations

from typing import Any

from .._torch import torch
from .base import F64, GradientWeighting, identity, weighted_softmax
from .gram import as_weights
from .helpers import non_finite

__all__ = ["RGW", "rgw_direction"]

Tensor = torch.Tensor


def rgw_direction(G: Tensor, generator: torch.Generator,
                  base_weights: Any = None) -> tuple[Tensor, Tensor]:
    r"""One step of random gradient weighting on the (T, d) gradient matrix ``G``.

    Draws :math:`z \sim N(0, I_T)` (float64) from ``generator`` and returns
    :math:`d = w^\top G` with :math:`w_t = (\sum_k b_k)\, b_t e^{z_t} / \sum_k b_k e^{z_k}`.

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The task gradients (rows).
    generator : torch.Generator
        The source of the draw (advanced by T normal draws).
    base_weights : array-like of shape (T,), optional
        The base weights :math:`b \ge 0` (ones by default).

    Returns
    -------
    direction : Tensor of shape (d,)
        :math:`w^\top G`, in the dtype of ``G``.
    weights : Tensor of shape (T,)
        :math:`w` (float64, CPU).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import rgw_direction
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> d, w = rgw_direction(G, torch.Generator().manual_seed(0))
    >>> round(float(w.sum()), 6), torch.allclose(d, w.float())
    (2.0, True)
    """
    if not isinstance(G, torch.Tensor) or G.ndim != 2:
        raise ValueError(f"G must be a (T, d) tensor, got {getattr(G, 'shape', type(G))}.")
    T = G.shape[0]
    b = torch.as_tensor(as_weights(base_weights, T, "base_weights"))
    z = torch.randn(T, generator=generator, dtype=F64)
    w = weighted_softmax(z, b)
    return w.to(G) @ G, w


class RGW(GradientWeighting):
    r"""Random gradient weighting (RGW, Lin et al., 2022): random weights on the task gradients.

    Every step draws :math:`z \sim N(0, I_T)` from the generator seeded at
    :meth:`~regmtl.deep.Weighting.setup` and updates the shared parameters along

    .. math::

        d = \sum_t w_t g_t, \qquad w = T\,\mathrm{softmax}(z)

    (:func:`~regmtl.deep.weighting.rgw_direction`; with base weights :math:`b`,
    :math:`w_t = (\sum_k b_k)\, b_t e^{z_t} / \sum_k b_k e^{z_k}`); the heads get the gradient
    of :math:`\sum_t b_t L_t`. Random by design: a seed fixes the sequence of draws (the
    direction then does not depend on anything but the seed, the task order included, up to
    relabelling the draws). T backward passes through the trunk per step; the per-task
    gradients are averaged across ranks (data parallelism), and every rank draws the same
    weights from the same seed. Under mixed precision the scaled gradients give the scaled
    update (the weights do not depend on them).

    Notes
    -----
    **Degenerate gradients.** The weights do not look at the gradients: at a
    Pareto-stationary point, with dependent gradients and with a zero gradient (a task
    without labels in the batch), the update is :math:`\sum_t w_t g_t` with the drawn
    weights (a zero gradient adds nothing). A non-finite gradient raises a ValueError naming
    the task, except under loss scaling, where it passes to the gradient scaler, which skips
    the step.

    **Differences from the paper.** The paper's weights are :math:`\mathrm{softmax}(z)`
    summing to 1 (LibMTL's too); here they are multiplied by :math:`\sum_t b_t` (T) so that
    learning rates carry over from equal weighting. The paper compares several
    distributions; only the softmax of a standard normal draw is here (LibMTL's). As in
    LibMTL the heads are not randomly weighted (they get :math:`\sum_t b_t \nabla L_t`). On
    the shared parameters the update has the law of :class:`~regmtl.deep.RandomWeighting`'s
    (:math:`\sum_t w_t g_t` is the gradient of :math:`\sum_t w_t L_t`) at T times its cost.

    References
    ----------
    Lin, Ye, Xu, Shi & Zhang (2022). Reasonable effectiveness of random weighting: a litmus
    test for multi-task learning. TMLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import RGW, TaskSpec
    >>> weighting = RGW()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")], seed=0)
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> w = weighting.backward(torch.stack([theta[0], theta[1]]), [theta], [])
    >>> round(float(w.sum()), 6), torch.allclose(theta.grad, w)
    (2.0, True)
    """

    #: The name users pass (``weighting="rgw"``) and saved models carry.
    name = "rgw"

    def _combine(self, G, losses, scale, reduce):
        if not torch.isfinite(G).all() and scale is identity:
            bad = ~torch.isfinite(G).all(dim=1).cpu()
            raise non_finite("RGW", "gradient", self.task_names, bad.numpy())
        z = torch.randn(self.n_tasks, generator=self._generator, dtype=F64)
        return weighted_softmax(z, self._base()), self._base()
