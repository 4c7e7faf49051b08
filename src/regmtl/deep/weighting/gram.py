r"""The base of the gradient methods that decide from the Gram matrix, and their solvers.

Notation: :math:`g_t` is task t's gradient of the shared parameters, :math:`G` the (T, d)
matrix of these rows, :math:`A = G G^\top` its Gram matrix, :math:`b_t` the task's
``TaskSpec.weight`` and :math:`L_t` its loss. Nash-MTL, IMTL-G, MGDA, Aligned-MTL and UPGrad
(:class:`~regmtl.deep.weighting.GramWeighting`) solve a T-dimensional problem on :math:`A` in
float64 on the CPU (T backward passes through the trunk, memory T x d for :math:`G` and T x T
for the rest). The heads get the gradient of :math:`\sum_t b_t L_t`; the returned weights are
the effective coefficients of the original task gradients in the shared update.

Conventions shared by these methods:

- A task whose gradient is zero (no label in the batch) or whose base weight is zero takes no
  part in the step (coefficient 0); when a single task is left (or T = 1) every method takes
  its plain gradient :math:`b_t g_t`.
- Where a paper's combination has weights summing to 1 (IMTL-G, UPGrad's average), it is
  multiplied by :math:`\sum_t b_t` (over the tasks taking part), so that T equal task gradients
  give exactly the update of equal weighting, as for :class:`~regmtl.deep.CAGrad`: learning
  rates carry over. MGDA's hull is that of the :math:`b_t g_t`, so it is multiplied by T:
  base weights all k give k times the unit update, as under equal weighting. The functions
  (``mgda_weights``, ``imtl_weights``, ``upgrad_weights``, ...) return the papers' weights.
- A non-finite gradient raises a ValueError naming the task, except under loss scaling
  (``scale`` given: mixed precision), where the step falls back to the base weights so that the
  gradient scaler sees the overflow and skips the step.

``nonneg_qp`` (an exact active-set solver of
:math:`\min_{x \ge 0} \frac12 x^\top Q x - c^\top x`) serves MGDA's min-norm point
and UPGrad's projections.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, GradientWeighting, gram_matrix, identity, task_list

__all__ = ["GramWeighting", "STATIONARY", "as_gram", "as_weights", "nonneg_qp"]

Tensor = torch.Tensor


#: A gradient whose squared norm is below this fraction of the largest one counts as zero.
_ZERO_GRAD = 1e-24
#: Pareto stationarity: the squared min-norm point below this fraction of the largest
#: squared gradient norm (of the normalized gradients for Nash-MTL).
STATIONARY = 1e-12


def as_gram(gram: Any, name: str = "gram") -> np.ndarray:
    """A finite, symmetric (T, T) float64 array."""
    if isinstance(gram, torch.Tensor):
        A = gram.detach().to("cpu", F64).numpy()
    else:
        A = np.asarray(gram, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a square (T, T) matrix with T >= 1, got shape "
                         f"{A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must be finite.")
    return 0.5 * (A + A.T)


def as_weights(weights: Any, T: int, name: str = "weights") -> np.ndarray:
    """Finite weights >= 0, one per task (ones if None)."""
    if weights is None:
        return np.ones(T)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().to("cpu", F64).numpy()
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (T,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be {T} finite numbers >= 0, got {weights!r}.")
    return w


def nonneg_qp(Q: np.ndarray, c: np.ndarray, tol: float) -> np.ndarray:
    """argmin over x >= 0 of ``x.Q.x / 2 - c.x`` for a symmetric PSD Q.

    An active-set method in the manner of Lawson & Hanson's NNLS, on the normal equations: a
    variable whose partial derivative is below ``-tol`` enters the free set; the free
    variables solve their block of ``Q x = c`` (least squares when it is singular) and
    variables that would turn negative leave it. Exact up to rounding once the free set is
    right; T is small.
    """
    n = c.shape[0]
    x = np.zeros(n)
    free = np.zeros(n, dtype=bool)
    blocked = np.zeros(n, dtype=bool)  # entered without becoming positive; retried later
    for _ in range(10 * n + 20):
        descent = c - Q @ x  # minus the gradient
        candidates = ~free & ~blocked & (descent > tol)
        if not candidates.any():
            break
        j = int(np.argmax(np.where(candidates, descent, -np.inf)))
        free[j] = True
        for _ in range(10 * n + 20):
            idx = np.flatnonzero(free)
            z = np.zeros(n)
            z[idx] = np.linalg.lstsq(Q[np.ix_(idx, idx)], c[idx], rcond=None)[0]
            if np.all(z[idx] > 0):
                x = z
                blocked[:] = False
                break
            out = idx[z[idx] <= 0]
            gap = x[out] - z[out]
            ratio = np.where(gap > 0, x[out] / np.where(gap > 0, gap, 1.0), 0.0)
            k = int(np.argmin(ratio))
            x = x + ratio[k] * (z - x)
            x[out[k]] = 0.0
            free &= x > 0
            x[~free] = 0.0
            if not free.any():
                break
        if not free[j]:
            blocked[j] = True
    return x


def _loss_factor(scale: Callable[[Tensor], Tensor], like: Tensor) -> float:
    """The factor by which ``scale`` multiplies a loss (the AMP loss scale; 1 without)."""
    if scale is identity:
        return 1.0
    factor = float(scale(like.detach().new_ones(())))
    return factor if math.isfinite(factor) and factor > 0 else 1.0


class GramWeighting(GradientWeighting):
    r"""Gradient methods that decide from the Gram matrix of the per-task gradients.

    The base of :class:`~regmtl.deep.NashMTL`, :class:`~regmtl.deep.IMTL`,
    :class:`~regmtl.deep.MGDA`, :class:`~regmtl.deep.AlignedMTL` and
    :class:`~regmtl.deep.UPGrad`. A subclass implements ``_solve(A, b, idx, losses, reduce)``:
    the coefficients :math:`c` (a float64 array) of the update :math:`\sum_t c_t g_t` from the
    Gram matrix :math:`A = G G^\top` and the base weights :math:`b` of the tasks ``idx`` taking
    part (at least two: a task with a zero gradient or a zero base weight gets 0, a single one
    left its plain gradient :math:`b_t g_t`). The heads get the gradient of
    :math:`\sum_t b_t L_t`. A non-finite gradient raises a ValueError naming the task, except
    under loss scaling (mixed precision), where the step keeps the base weights so that the
    gradient scaler skips it.

    The decision is taken on the gradients of the unscaled losses (the Gram matrix divided by
    the square of the AMP loss scale), so the coefficients do not depend on the loss scale
    and the scaled gradient matrix gives a scaled update, as the gradient scaler expects.

    Examples
    --------
    A method of one's own: every task gradient scaled to unit length.

    >>> import numpy as np
    >>> import torch
    >>> from regmtl.deep import TaskSpec
    >>> from regmtl.deep.weighting import GramWeighting
    >>> class UnitGradients(GramWeighting):
    ...     def _solve(self, A, b, idx, losses, reduce):
    ...         return b / np.sqrt(np.diag(A))
    >>> weighting = UnitGradients()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 4 * theta[1]])  # gradients (1, 0) and (0, 4)
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 0.25]
    >>> theta.grad.tolist()
    [1.0, 1.0]
    """

    def _solve(self, A: np.ndarray, b: np.ndarray, idx: np.ndarray, losses: Tensor,
               reduce: Callable[[Tensor], Tensor] | None) -> np.ndarray:
        """Coefficients on the rows ``idx`` (>= 2 tasks taking part) from their Gram ``A``."""
        raise NotImplementedError

    def _coefficients(self, A: Tensor, losses: Tensor, scale: Callable[[Tensor], Tensor],
                      reduce: Callable[[Tensor], Tensor] | None) -> Tensor:
        """(T,) float64 coefficients from the Gram matrix of all tasks (CPU float64)."""
        base = self._base()
        diag = torch.diagonal(A)
        bad = ~torch.isfinite(diag)
        if bad.any() or not torch.isfinite(A).all():
            if scale is not identity:  # an overflowing mixed-precision step: the scaler skips
                return base.clone()
            # a NaN loss spreads NaN to every row through autograd: name it first
            bad_loss = ~torch.isfinite(losses.detach().to("cpu", F64))
            what, bad = ("loss", bad_loss) if bad_loss.any() else ("gradient", bad)
            raise ValueError(f"{type(self).__name__}: the {what} of task(s) "
                             f"{task_list(self.task_names, bad.numpy())} is not finite (NaN or "
                             "inf); check their losses and inputs, or lower the learning rate.")
        An = A.numpy() / _loss_factor(scale, losses) ** 2
        b = base.numpy()
        d = np.diag(An)
        active = (b > 0) & (d > _ZERO_GRAD * max(float(d.max()), 0.0))
        idx = np.flatnonzero(active)
        coeffs = np.zeros(len(b))
        if len(idx) == 1:
            coeffs[idx] = b[idx]
        elif len(idx) >= 2:
            coeffs[idx] = self._solve(An[np.ix_(idx, idx)], b[idx], idx, losses, reduce)
        return torch.as_tensor(coeffs, dtype=F64)

    def _combine(self, G, losses, scale, reduce):
        return self._coefficients(gram_matrix(G), losses, scale, reduce), self._base()
