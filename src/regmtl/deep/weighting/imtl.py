r"""Impartial multi-task learning, IMTL-G and IMTL-L (Liu et al., 2021).

The update :math:`g = \sum_t \alpha_t g_t` has equal projections (:math:`\propto b_t`) on the
unit gradients :math:`u_t = g_t / \|g_t\|_2`: :math:`\alpha \propto A^{-1}(b \odot \|g\|)`,
summing to 1; IMTL-L adds learned loss scales :math:`e^{s_t}`.
:func:`~regmtl.deep.conflict.imtl_weights` gives :math:`\alpha`, :class:`~regmtl.deep.IMTL` is
the weighting.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2021). Towards impartial multi-task learning.
ICLR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, identity
from .gram import STATIONARY, GramWeighting, as_gram, as_weights
from .mgda import min_norm

__all__ = ["IMTL", "imtl_weights"]

Tensor = torch.Tensor


#: Eigenvalues of the cosine matrix below this fraction of the largest count as zero.
RANK_TOL = 1e-10


def _imtl(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weights whose combination has projections ``c b_t`` on the unit gradients (see
    :func:`imtl_weights`): 0 at a Pareto-stationary point."""
    norms = np.sqrt(np.diag(A))
    C = A / np.outer(norms, norms)
    np.fill_diagonal(C, 1.0)
    lam = min_norm(C)
    if float(lam @ C @ lam) <= STATIONARY:  # 0 in the hull: no update helps every task
        return np.zeros(len(b))
    evals, V = np.linalg.eigh(C)
    keep = evals > RANK_TOL * float(evals.max())
    beta = V[:, keep] @ ((V[:, keep].T @ b) / evals[keep])  # C^+ b, the min-norm solution
    v = beta / norms
    total = float(v.sum())
    if total > 1e-12 * float(np.abs(v).sum()):
        return v / total
    return v / float(np.abs(v).sum())  # sum(v) <= 0: keep the projections > 0


def imtl_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""IMTL-G's weights: the combination with equal projections on every unit gradient.

    With :math:`u_t = g_t / \|g_t\|_2`, the weights :math:`\alpha` (summing to 1) make
    :math:`g = \sum_t \alpha_t g_t` satisfy

    .. math::

        g \cdot u_t = c\, b_t \quad\text{for every } t

    (``b = 1``: the paper's equal projections, its closed form
    :math:`\alpha_{2:T} = g_1 U^\top (D U^\top)^{-1}`, :math:`\alpha_1 = 1 - \sum_{t \ge 2}
    \alpha_t`, with rows :math:`u_1 - u_t` of :math:`U` and :math:`g_1 - g_t` of :math:`D`).
    Computed from the Gram matrix :math:`A = G G^\top`: with :math:`D = \mathrm{diag}(\|g_t\|)`
    and the cosine matrix :math:`C = D^{-1} A D^{-1}`, the projections are
    :math:`C (D \alpha)`, so

    .. math::

        \alpha \propto D^{-1} C^{+} b,

    normalized to sum 1: :math:`A^{-1}(b \odot \|g\|)` when the gradients are linearly
    independent, and otherwise the minimum-norm least-squares solution in the coordinates of
    the unit gradients (:math:`C^{+}` with eigenvalues below ``RANK_TOL`` = 1e-10 of the largest
    taken as 0). Of the update :math:`g`, only the direction does not depend on which
    solution of the singular system is taken (the solutions differ by null vectors of
    :math:`C`, which :math:`G^\top D^{-1}` maps to 0); its length does, through the
    normalization to sum 1, and so do the weights :math:`\alpha`. Equal projections exist
    exactly when :math:`b` is in the range of :math:`C`
    (always with independent gradients; with dependent ones e.g. when only a direction
    repeats, ``[[1, 0], [2, 0], [0, 3]]``). Where they do not (more distinct directions than
    the rank, e.g. three in a plane, or two equal directions asked for different
    :math:`b_t`) the projections are the least-squares :math:`c P b`, :math:`P` the
    projector onto the range of :math:`C`: unequal, and not always positive even away from
    a Pareto-stationary point (``[[-3, -3], [-3, -2], [-3, 1], [2, 3]]`` gives projections
    about (0.51, 0.95, 2.30, -0.044)), so IMTL-G then promises no conflict-freeness.
    In the rare case where the normalization would flip the sign of every
    projection, :math:`\alpha` is normalized by :math:`\sum_t |\alpha_t|` instead
    (keeping the common factor :math:`c` positive).

    **Degenerate gradients.** At a Pareto-stationary point (0 in the convex hull of the
    gradients, e.g. two opposite gradients, or rank one with both signs) no update has
    positive projections on every gradient, and IMTL-G's equal projections can only be 0:
    :math:`\alpha = 0` (decided by the min-norm point of the hull of the unit gradients, its
    squared norm below ``STATIONARY`` = 1e-12, not by rounding). A zero gradient has no unit
    direction: it is refused here (the weighting gives such a task coefficient 0). The result
    does not depend on the order of the tasks.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top` with a positive diagonal (no zero gradient).
    weights : array-like of shape (T,), optional
        The relative projections :math:`b` (> 0); ones by default.

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` (float64), summing to 1 (all 0 at a Pareto-stationary point).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix with a positive diagonal, or ``weights``
        are not positive.

    See Also
    --------
    regmtl.deep.IMTL : The weighting that applies it at every step.

    References
    ----------
    Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2021). Towards impartial multi-task
    learning. ICLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import imtl_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    >>> alpha = imtl_weights(G @ G.T)
    >>> alpha.tolist()
    [0.8, 0.2]
    >>> g = alpha @ G
    >>> (G @ g / G.norm(dim=1)).tolist()  # equal projections on the unit gradients
    [0.8, 0.8]
    """
    A = as_gram(gram)
    b = as_weights(weights, A.shape[0])
    if np.any(np.diag(A) <= 0) or np.any(b <= 0):
        raise ValueError("imtl_weights needs nonzero gradients (a positive diagonal of gram) "
                         "and positive weights.")
    return torch.as_tensor(_imtl(A, b), dtype=F64)


class IMTL(GramWeighting):
    r"""Impartial multi-task learning, IMTL-G (Liu et al., 2021), optionally with IMTL-L.

    The shared update :math:`g = \sum_t \alpha_t g_t` has equal projections on every unit
    task gradient :math:`u_t = g_t / \|g_t\|_2` (proportional to :math:`b_t` with base
    weights):

    .. math::

        g \cdot u_t = c\, b_t, \qquad \sum_t \alpha_t = 1

    (:func:`~regmtl.deep.conflict.imtl_weights`, the paper's closed form computed from the
    Gram matrix), times :math:`\sum_t b_t` so that equal gradients give equal weighting's
    update. No task is favoured because of its gradient's scale. With linearly dependent
    gradients the minimum-norm least-squares solution in the unit gradients' coordinates is
    used; at a Pareto-stationary point (0 in the hull of the gradients) the update is 0 and
    so are the weights; a task with a zero gradient (or no label in the batch) takes no part.
    The returned weights sum to :math:`\sum_t b_t` over the tasks taking part (but see the
    rare case of :func:`~regmtl.deep.conflict.imtl_weights`), can be negative, and do not
    depend on the order of the tasks.

    With ``loss_scale=True`` (IMTL-L) every loss is first scaled by a learned
    :math:`e^{s_t}`: the net and :math:`s` (the parameter ``log_scales``, trained by the
    trainer's optimizer) minimize :math:`\sum_t b_t (e^{s_t} L_t - s_t)`, whose optimum is
    :math:`e^{s_t} = 1 / L_t`; IMTL-G then combines the gradients of the scaled losses (the
    heads get the gradient of :math:`\sum_t b_t e^{s_t} L_t`). The returned weights are then
    the coefficients of the unscaled gradients, IMTL-G's times :math:`e^{s_t}`: no fixed sum.
    A task whose loss is exactly 0 (no label) leaves its :math:`s_t` alone.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    loss_scale : bool, default=False
        Add IMTL-L's learned loss scales.
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (the paper's own
        choice for IMTL-G, its gradients of the shared feature z; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width), equal
        projections then on the representation's unit gradients.

    Attributes
    ----------
    log_scales : torch.nn.Parameter of shape (T,) or None
        :math:`s_t` (with ``loss_scale``; None otherwise).

    Notes
    -----
    **Differences from the paper.** The paper's weights sum to 1; here they sum to
    :math:`\sum_t b_t` (T with unit base weights), so that learning rates carry over from
    equal weighting. The paper's closed form inverts :math:`D U^\top` and fails on dependent
    gradients; LibMTL inverts it too (an error or rounding noise there), regmtl takes the
    pseudo-inverse with a stated rank tolerance and returns 0 at a Pareto-stationary point.
    IMTL-L here learns :math:`s_t` with the net's optimizer, on the objective
    :math:`\sum_t b_t (e^{s_t} L_t - s_t)` as in the paper. The paper takes IMTL-G's
    gradients with respect to the shared feature :math:`z`; the default here is the shared
    parameters, ``on_representation=True`` the paper's choice (LibMTL offers both with
    ``rep_grad``). TorchJD's IMTL-G takes a pseudo-inverse of the Gram matrix without a
    stationarity test.

    References
    ----------
    Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2021). Towards impartial multi-task
    learning. ICLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import IMTL, TaskSpec
    >>> weighting = IMTL()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 4 * theta[1]])  # gradients (1, 0) and (0, 4)
    >>> weighting.backward(losses, [theta], []).tolist()  # 2 x (0.8, 0.2)
    [1.6, 0.4]
    >>> theta.grad.tolist()  # equal projections on (1, 0) and (0, 1)
    [1.6, 1.6]
    """

    #: The name users pass (``weighting="imtl"``) and saved models carry.
    name = "imtl"

    def __init__(self, loss_scale: bool = False, on_representation: bool = False) -> None:
        super().__init__(on_representation=on_representation)
        if not isinstance(loss_scale, (bool, np.bool_)):
            raise ValueError(f"loss_scale must be True or False, got {loss_scale!r}.")
        self.loss_scale = bool(loss_scale)
        if self.loss_scale:
            self.log_scales = torch.nn.Parameter(torch.zeros(0))
        else:
            self.register_parameter("log_scales", None)

    def _setup(self, tasks: list[TaskSpec]) -> None:
        if self.loss_scale:
            self.log_scales = torch.nn.Parameter(torch.zeros(len(tasks),
                                                             device=self.log_scales.device))

    def _solve(self, A, b, idx, losses, reduce):
        return float(b.sum()) * _imtl(A, b)

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None,
                 representation: Tensor | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.weighting.GramWeighting.backward`; with ``loss_scale`` the
        weights are the
        effective coefficients of the original (unscaled) task gradients."""
        if not self.loss_scale:
            return super().backward(losses, shared, specific, extra=extra, scale=scale,
                                    reduce=reduce, representation=representation)
        self._check_losses(losses)
        s = self.log_scales.to(losses)
        factor = torch.exp(s.detach())
        out = super().backward(factor * losses, shared, specific, extra=extra, scale=scale,
                               reduce=reduce, representation=representation)
        observed = (losses.detach() != 0).to(losses.dtype)
        objective = (self.base_weights.to(losses) * observed
                     * (torch.exp(s) * losses.detach() - s)).sum()
        if objective.requires_grad:
            scaled = (identity if scale is None else scale)(objective)
            torch.autograd.backward(scaled, inputs=[self.log_scales])
        return out * factor

    def extra_repr(self) -> str:
        route = ", on_representation=True" if self.on_representation else ""
        return f"loss_scale={self.loss_scale!r}{route}"
