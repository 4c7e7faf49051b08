r"""Geometric loss strategy, GLS (Chennupati, Sistu, Yogamani & Rawashdeh, 2019).

The objective is the geometric mean of the task losses, :math:`(\prod_t L_t)^{1/T}`; its
gradient weights task t by :math:`\mathrm{GM} / (T L_t)`. One backward pass.

Chennupati, Sistu, Yogamani & Rawashdeh (2019). MultiNet++: multi-stream feature aggregation
and geometric loss strategy for multi-task learning. CVPR Workshops.
"""

from __future__ import annotations

from typing import Any

from .._torch import torch
from .base import F64
from .loss_based import LossValueWeighting, loss_inputs, positive_losses

__all__ = ["GLS", "gls_weights"]

Tensor = torch.Tensor


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


class GLS(LossValueWeighting):
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

    #: The name users pass (``weighting="gls"``) and saved models carry.
    name = "gls"

    def _value_weights(self, L: Tensor | None) -> Tensor:
        if L is None:
            return self._base().clone()
        positive_losses(L, self.task_names, "GLS")
        return gls_weights(L, self._base())
