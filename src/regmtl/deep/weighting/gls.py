r"""Geometric loss strategy, GLS (Chennupati, Sistu, Yogamani & Rawashdeh, 2019).

The objective is the geometric mean of the task losses, :math:`(\prod_t L_t)^{1/T}`; its
gradient weights task t by :math:`\mathrm{GM} / (T L_t)`. One backward pass.

Chennupati, Sistu, Yogamani & Rawashdeh (2019). MultiNet++: multi-stream feature aggregation
and geometric loss strategy for multi-task learning. CVPR Workshops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._torch import torch
from .base import F64, Weighting, identity, task_list, weighted_step
from .gram import as_weights

__all__ = ["GLS", "gls_weights"]

Tensor = torch.Tensor


def positive_losses(L: Tensor, names: Sequence[str], who: str) -> Tensor:
    """The mask of the tasks taking part (loss > 0); a negative loss raises a ValueError."""
    neg = L < 0
    if neg.any():
        raise ValueError(f"{who}: the loss of task(s) {task_list(names, neg.numpy())} is "
                         "negative; this weighting takes logarithms of the losses and needs "
                         "losses >= 0 (a loss of 0, e.g. a task without labels in the batch, "
                         "takes no part in the step). Use a non-negative loss or another "
                         "weighting.")
    return L > 0


def loss_inputs(losses: Any, base_weights: Any, who: str) -> tuple[Tensor, Tensor, Tensor]:
    """The functional forms' inputs: the (T,) finite losses (CPU float64), the base weights
    (default ones; finite, >= 0) and the mask of the tasks taking part (loss > 0 and base
    weight > 0); a negative loss raises a ValueError naming ``who``."""
    L = torch.as_tensor(losses, dtype=F64).detach().cpu().reshape(-1)
    T = L.shape[0]
    b = torch.as_tensor(as_weights(base_weights, T, "base_weights"))
    if not torch.isfinite(L).all():
        raise ValueError("losses must be finite.")
    return L, b, positive_losses(L, [str(i) for i in range(T)], who) & (b > 0)


def loss_values(losses: Tensor, n_tasks: int, names: Sequence[str], who: str,
                reduce: Callable[[Tensor], Tensor] | None,
                scale: Callable[[Tensor], Tensor] | None) -> Tensor | None:
    """The (T,) detached losses (averaged over ranks), CPU float64; None to skip the step.

    A non-finite loss raises a ValueError naming the task, except under loss scaling (mixed
    precision), where None tells the caller to keep the base weights so that the gradient
    scaler sees the overflow and skips the step.
    """
    L = losses.detach()
    if reduce is not None:
        L = reduce(L)
    L = L.to("cpu", F64).reshape(-1)
    bad = ~torch.isfinite(L)
    if bad.any():
        if scale is not None and scale is not identity:
            return None
        raise ValueError(f"{who}: the loss of task(s) {task_list(names, bad.numpy())} is not "
                         "finite (NaN or inf); check their losses and inputs, or lower the "
                         "learning rate.")
    return L


def gls_weights(losses: Any, base_weights: Any = None) -> Tensor:
    r"""The weights of the geometric loss strategy on the loss values ``losses``.

    With base weights :math:`b` (default ones) and :math:`P` the tasks with :math:`L_t > 0`,
    the objective is :math:`S\,\prod_{t \in P} L_t^{b_t / S}` with :math:`S = \sum_{t\in P} b_t`
    (:math:`T` times the paper's geometric mean for unit :math:`b`), and its gradient
    :math:`\sum_t w_t \nabla L_t` has

    .. math::

        w_t = b_t\,\frac{\mathrm{GM}}{L_t}, \qquad
        \mathrm{GM} = \exp\Big(\sum_{s \in P} \frac{b_s}{S} \log L_s\Big),

    and :math:`w_t = 0` outside :math:`P`.

    Parameters
    ----------
    losses : array-like of shape (T,)
        The loss values, finite and >= 0.
    base_weights : array-like of shape (T,), optional
        The base weights :math:`b \ge 0` (ones by default).

    Returns
    -------
    Tensor of shape (T,)
        The weights (float64); zeros where no loss is positive.

    Raises
    ------
    ValueError
        If a loss is negative or not finite, or the shapes differ.

    Examples
    --------
    >>> from regmtl.deep.weighting import gls_weights
    >>> gls_weights([1.0, 4.0]).tolist()  # GM = 2
    [2.0, 0.5]
    """
    L, b, part = loss_inputs(losses, base_weights, "gls_weights")
    w = torch.zeros(L.shape[0], dtype=F64)
    if not part.any():
        return w
    S = b[part].sum()
    log_gm = (b[part] * torch.log(L[part])).sum() / S
    w[part] = b[part] * torch.exp(log_gm - torch.log(L[part]))
    return w


class GLS(Weighting):
    r"""Geometric loss strategy (Chennupati et al., 2019): the geometric mean of the losses.

    The objective is :math:`T\,(\prod_t L_t)^{1/T}` (with base weights :math:`b`, the
    weighted form of :func:`~regmtl.deep.weighting.gls_weights`); its gradient is :math:`\sum_t
    w_t \nabla L_t` with

    .. math::

        w_t = b_t\,\frac{\mathrm{GM}}{L_t}, \qquad \mathrm{GM} = \Big(\prod_s L_s\Big)^{1/T},

    so a task whose loss is small relative to the others gets a large weight: the objective
    does not depend on the scale of each loss (:math:`L_t \to k_t L_t` multiplies it by a
    constant). One backward pass; the weights come from the loss values of the step (averaged
    across ranks under data parallelism, so every rank takes the same weights, and the
    averaged gradient is that of the geometric mean of the averaged losses). Under mixed
    precision the losses are those before scaling.

    Notes
    -----
    **Degenerate gradients.** The weights depend on the loss values only: at a
    Pareto-stationary point, with dependent gradients and with a zero gradient, the update is
    :math:`\sum_t w_t g_t` as always (zero where the weighted gradients cancel, in general
    not). A task with a loss of 0 (no label in the batch, or fitted exactly) takes no part
    (weight 0; the geometric mean is over the other tasks); a negative loss raises a
    ValueError naming the task; a non-finite loss too, except under loss scaling, where the
    step keeps the base weights so that the gradient scaler skips it.

    **Differences from the paper.** The paper's objective is the geometric mean
    :math:`(\prod_t L_t)^{1/T}` (LibMTL's too), whose weights sum to 1 when the losses are
    equal; here it is multiplied by :math:`T` (:math:`\sum_t b_t`), so that equal losses give
    the update of equal weighting and learning rates carry over. Tasks with a zero loss are
    left out rather than making the product 0. Base weights enter as exponents
    :math:`b_t / \sum_s b_s` (a weighted geometric mean; the paper has none).

    References
    ----------
    Chennupati, Sistu, Yogamani & Rawashdeh (2019). MultiNet++: multi-stream feature
    aggregation and geometric loss strategy for multi-task learning. CVPR Workshops.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import GLS, TaskSpec
    >>> weighting = GLS()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> weighting.backward(torch.stack([theta[0] ** 2, theta[1] ** 2]), [theta], []).tolist()
    [2.0, 0.5]
    >>> theta.grad.tolist()  # 2 * 2 theta_0 and 0.5 * 2 theta_1
    [4.0, 2.0]
    """

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; the weights come from the loss values
        averaged across ranks by ``reduce``."""
        self._check_losses(losses)
        L = loss_values(losses, self.n_tasks, self.task_names, "GLS", reduce, scale)
        if L is None:
            w = self._base().clone()
        else:
            positive_losses(L, self.task_names, "GLS")
            w = gls_weights(L, self._base())
        return weighted_step(losses, w, extra, scale)
