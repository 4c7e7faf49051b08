r"""Gradient-conflict methods: FAMO, Nash-MTL, IMTL-G, MGDA, Aligned-MTL and UPGrad.

Notation of :mod:`regmtl.deep.weighting`: :math:`g_t` is task t's gradient of the shared
parameters, :math:`G` the (T, d) matrix of these rows, :math:`A = G G^\top` its Gram matrix,
:math:`b_t` the task's ``TaskSpec.weight`` and :math:`L_t` its loss.

==================  ====================================================  ======================
name                shared update                                         reference
==================  ====================================================  ======================
``"famo"``          gradient of :math:`\sum_t w_t L_t`,                    Liu et al. 2023
                    :math:`w_t \propto z_t / L_t`, :math:`z =`
                    softmax of logits learned from the observed
                    decrease of :math:`\log L_t` (one backward pass)
``"nash_mtl"``      :math:`\sum_t \alpha_t g_t` with                      Navon et al. 2022
                    :math:`\alpha_t (A\alpha)_t = b_t`: the Nash
                    bargaining solution
``"imtl"``          :math:`\sum_t \alpha_t g_t` whose projections on      Liu et al. 2021
                    the unit gradients :math:`u_t` are equal
                    (:math:`\propto b_t`)
``"mgda"``          the min-norm point of the convex hull of the          Sener & Koltun 2018
                    :math:`b_t g_t` (optionally of the gradients with
                    respect to the shared representation: MGDA-UB)
``"aligned_mtl"``   :math:`\sum_t b_t \hat g_t`, :math:`\hat G = B G`     Senushkin et al. 2023
                    with orthogonal rows of equal norms
``"upgrad"``        :math:`\sum_t b_t \pi(g_t)`, :math:`\pi` the          Quinton & Rey 2024
                    projection on the dual cone
                    :math:`\{x : G x \ge 0\}`
==================  ====================================================  ======================

FAMO is a loss weighting (one backward pass, O(1) in T beyond the T losses); the five others
form the (T, d) per-task gradient matrix of the shared parameters like
:class:`~regmtl.deep.PCGrad` and solve a T-dimensional problem on the Gram matrix :math:`A`
in float64 on the CPU (T backward passes through the trunk, memory T x d for :math:`G` and
T x T for the rest). The heads get the gradient of :math:`\sum_t b_t L_t` (FAMO: of its
weighted loss); the returned weights are the effective coefficients of the original task
gradients in the shared update. They sum to :math:`\sum_t b_t` for FAMO and IMTL-G (over the
tasks taking part; IMTL's can be negative) and to T for MGDA with unit base weights
(:math:`\sum_t w_t n_t / b_t = T` in general); Nash-MTL's
(like :math:`1 / \|g_t\|`), Aligned-MTL's (:math:`B b`, possibly negative) and UPGrad's
(:math:`w_t \ge b_t`) keep no sum.

Conventions shared by the gradient methods:

- A task whose gradient is zero (no label in the batch) or whose base weight is zero takes no
  part in the step (coefficient 0); when a single task is left (or T = 1) every method takes
  its plain gradient :math:`b_t g_t`.
- Where a paper's combination has weights summing to 1 (IMTL-G, UPGrad's average), it is
  multiplied by :math:`\sum_t b_t` (over the tasks taking part), so that T equal task gradients
  give exactly the update of equal weighting, as for :class:`~regmtl.deep.CAGrad`: learning
  rates carry over. MGDA's hull is that of the :math:`b_t g_t`, so it is multiplied by T:
  base weights all k give k times the unit update, as under equal weighting. The
  functions (:func:`mgda_weights`, :func:`imtl_weights`, :func:`upgrad_weights`, ...) return
  the papers' weights.
- A non-finite gradient raises a ValueError naming the task, except under loss scaling
  (``scale`` given: mixed precision), where the step falls back to the base weights so that the
  gradient scaler sees the overflow and skips the step.

References
----------
- Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.
- Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang (2021). Towards impartial multi-task learning.
  ICLR.
- Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning as
  a bargaining game. ICML.
- Liu, Feng, Stone & Liu (2023). FAMO: fast adaptive multitask optimization. NeurIPS.
- Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
  multi-task learning. CVPR.
- Quinton & Rey (2024). Jacobian descent for multi-objective optimization. arXiv:2406.16232.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._torch import torch
from .tasks import TaskSpec
from .weighting import (
    _F64,
    WEIGHTINGS,
    Weighting,
    _check_number,
    _GradientWeighting,
    _gram,
    _identity,
    _task_gradients,
)

__all__ = [
    "FAMO",
    "NashMTL",
    "IMTL",
    "MGDA",
    "AlignedMTL",
    "UPGrad",
    "mgda_weights",
    "nash_weights",
    "imtl_weights",
    "alignment_matrix",
    "upgrad_weights",
]

Tensor = torch.Tensor

#: A gradient whose squared norm is below this fraction of the largest one counts as zero.
_ZERO_GRAD = 1e-24
#: Pareto stationarity: the squared min-norm point below this fraction of the largest
#: squared gradient norm (of the normalized gradients for Nash-MTL).
_STATIONARY = 1e-12


# ----------------------------------------------------------------------------- T-dim solvers
def _as_gram(gram: Any, name: str = "gram") -> np.ndarray:
    """A finite, symmetric (T, T) float64 array."""
    if isinstance(gram, torch.Tensor):
        A = gram.detach().to("cpu", _F64).numpy()
    else:
        A = np.asarray(gram, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a square (T, T) matrix with T >= 1, got shape "
                         f"{A.shape}.")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} must be finite.")
    return 0.5 * (A + A.T)


def _as_weights(weights: Any, T: int, name: str = "weights") -> np.ndarray:
    """Finite weights >= 0, one per task (ones if None)."""
    if weights is None:
        return np.ones(T)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().to("cpu", _F64).numpy()
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (T,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be {T} finite numbers >= 0, got {weights!r}.")
    return w


def _nonneg_qp(Q: np.ndarray, c: np.ndarray, tol: float) -> np.ndarray:
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


def _min_norm(A: np.ndarray) -> np.ndarray:
    """The weights on the simplex of the min-norm point of the hull of the rows of G (A = GG^T).

    The nearest point to (0, 1) in the cone of the lifted rows (g_t, 1) is t (p, 1) with p the
    min-norm point: a non-negative least-squares problem (Gram ``A + s 11^T``, ``s`` the
    largest squared norm for conditioning) whose solution, normalized to sum 1, is the answer.
    """
    T = A.shape[0]
    s = float(np.max(np.diag(A))) if T else 0.0
    if T == 1 or s <= 0:
        return np.full(T, 1.0 / max(T, 1))
    An = A / s
    beta = _nonneg_qp(An + 1.0, np.ones(T), tol=1e-14 * T)
    total = beta.sum()
    if not (total > 0 and np.isfinite(total)):
        return np.full(T, 1.0 / T)
    return beta / total


def mgda_weights(gram: Any) -> Tensor:
    r"""MGDA's weights: the min-norm point of the convex hull of the task gradients.

    .. math::

        \alpha = \operatorname*{arg\,min}_{\alpha \ge 0,\ \sum_t \alpha_t = 1}
        \Bigl\|\sum_t \alpha_t g_t\Bigr\|_2^2
        = \operatorname*{arg\,min}_{\alpha \in \Delta} \alpha^\top A \alpha ,

    solved exactly (an active-set non-negative least-squares method on the Gram matrix, not
    Frank-Wolfe). At the solution the KKT conditions hold: :math:`(A\alpha)_t \ge
    \alpha^\top A \alpha` for every t, with equality where :math:`\alpha_t > 0`. The point
    :math:`\sum_t \alpha_t g_t` is zero exactly when the tasks are Pareto-stationary (0 in the
    hull); otherwise its negative decreases every task.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`, the Gram matrix of the task gradients (finite, symmetric PSD).

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` on the simplex (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix.

    See Also
    --------
    regmtl.deep.MGDA : The weighting that applies it at every step.

    References
    ----------
    Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import mgda_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> alpha = mgda_weights(G @ G.T)
    >>> [round(a, 6) for a in alpha.tolist()]
    [0.8, 0.2]
    >>> [round(x, 6) for x in (alpha @ G).tolist()]  # the point of the segment nearest to 0
    [0.8, 0.4]
    """
    return torch.as_tensor(_min_norm(_as_gram(gram)), dtype=_F64)


def _nash(A: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """alpha > 0 with ``alpha * (A alpha) = b``; None when the tasks are Pareto-stationary.

    Damped Newton on the strictly convex ``f(a) = a.C.a / 2 - sum_t b_t log a_t`` in the
    variables ``a = sqrt(diag A) * alpha`` (C the cosine matrix), whose stationary point is the
    solution; f is bounded below exactly when 0 is not in the convex hull of the gradients.
    """
    T = A.shape[0]
    norms = np.sqrt(np.diag(A))
    C = A / np.outer(norms, norms)
    np.fill_diagonal(C, 1.0)
    w = _min_norm(C)
    if float(w @ C @ w) <= _STATIONARY:
        return None

    def f(a: np.ndarray) -> float:
        return float(0.5 * a @ C @ a - b @ np.log(a))

    a = np.sqrt(b)  # the solution when the gradients are orthogonal
    for _ in range(200):
        Ca = C @ a
        if np.max(np.abs(a * Ca - b)) <= 1e-15 * T * float(b.max()):
            break
        grad = Ca - b / a
        step = -np.linalg.solve(C + np.diag(b / a**2), grad)
        shrink = step < 0
        tau = min(1.0, 0.99 * float(np.min(a[shrink] / -step[shrink]))) if shrink.any() else 1.0
        decrement = -float(grad @ step)  # the squared Newton decrement
        if decrement > 1e-10 * float(b.sum()):  # far from the solution: backtrack on f
            f0 = f(a)
            while f(a + tau * step) > f0 - 1e-4 * tau * decrement and tau > 1e-12:
                tau *= 0.5
        a = a + tau * step
    return a / norms


def nash_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""Nash-MTL's weights: the Nash bargaining solution of the tasks.

    The update :math:`d = \sum_t \alpha_t g_t` maximizes :math:`\sum_t b_t \log(d \cdot g_t)`
    over a ball; its weights solve

    .. math::

        \alpha_t\, (A \alpha)_t = b_t, \quad \alpha_t > 0,
        \qquad\text{i.e.}\qquad d \cdot g_t = b_t / \alpha_t ,

    (``b = 1``: the paper's :math:`G G^\top \alpha = 1 / \alpha`). :math:`\alpha` is the
    minimizer of the strictly convex :math:`\frac12 \alpha^\top A \alpha - \sum_t b_t \log
    \alpha_t`, found by damped Newton steps (the paper solves a sequence of convex programs
    with cvxpy). Scaling :math:`g_t` by k divides :math:`\alpha_t` by k: every task's
    contribution :math:`\alpha_t g_t` is unchanged. The solution exists exactly when 0 is not
    in the convex hull of the gradients (linearly dependent gradients are fine otherwise);
    at a Pareto-stationary point this returns zeros.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top` with a positive diagonal (no zero gradient).
    weights : array-like of shape (T,), optional
        The bargaining weights :math:`b` (> 0); ones by default.

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` (float64), zeros at a Pareto-stationary point.

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix with a positive diagonal, or ``weights``
        are not positive.

    See Also
    --------
    regmtl.deep.NashMTL : The weighting that applies it at every step.

    References
    ----------
    Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning
    as a bargaining game. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import nash_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> alpha = nash_weights(G @ G.T)
    >>> alpha.tolist()  # orthogonal gradients: alpha_t = 1 / |g_t|
    [1.0, 0.5]
    >>> (alpha @ G).tolist()  # each task contributes a unit vector
    [1.0, 1.0]
    """
    A = _as_gram(gram)
    b = _as_weights(weights, A.shape[0])
    if np.any(np.diag(A) <= 0) or np.any(b <= 0):
        raise ValueError("nash_weights needs nonzero gradients (a positive diagonal of gram) "
                         "and positive weights.")
    if A.shape[0] == 1:
        return torch.as_tensor(np.sqrt(b / np.diag(A)), dtype=_F64)
    alpha = _nash(A, b)
    return torch.as_tensor(np.zeros(A.shape[0]) if alpha is None else alpha, dtype=_F64)


def _imtl(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weights summing to 1 whose combination has projections ``c b_t`` on the unit gradients."""
    norms = np.sqrt(np.diag(A))
    C = A / np.outer(norms, norms)
    np.fill_diagonal(C, 1.0)
    # (A alpha)_t / |g_t| = c b_t  <=>  C (|g| * alpha) = c b
    v = np.linalg.lstsq(C, b, rcond=None)[0] / norms
    total = float(v.sum())
    if total > 1e-12 * float(np.abs(v).sum()):
        return v / total
    return v / float(np.abs(v).sum())  # the rare case sum(v) <= 0: keep the projections > 0


def imtl_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""IMTL-G's weights: the combination with equal projections on every unit gradient.

    With :math:`u_t = g_t / \|g_t\|_2`, the weights :math:`\alpha` (summing to 1) make
    :math:`g = \sum_t \alpha_t g_t` satisfy

    .. math::

        g \cdot u_t = c\, b_t \quad\text{for every } t

    (``b = 1``: the paper's equal projections, its closed form
    :math:`\alpha_{2:T} = g_1 U^\top (D U^\top)^{-1}`, :math:`\alpha_1 = 1 - \sum_{t \ge 2}
    \alpha_t`, with rows :math:`u_1 - u_t` of :math:`U` and :math:`g_1 - g_t` of :math:`D`).
    Computed from the Gram matrix: :math:`\alpha \propto A^{-1} (b \odot \|g\|)`. When the
    gradients are linearly dependent equal projections may not exist: the least-squares
    (pseudo-inverse) solution is used. In the rare case where the normalization would flip the
    sign of every projection, :math:`\alpha` is normalized by :math:`\sum_t |\alpha_t|`
    instead (projections stay positive).

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top` with a positive diagonal (no zero gradient).
    weights : array-like of shape (T,), optional
        The relative projections :math:`b` (> 0); ones by default.

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` (float64), summing to 1.

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
    A = _as_gram(gram)
    b = _as_weights(weights, A.shape[0])
    if np.any(np.diag(A) <= 0) or np.any(b <= 0):
        raise ValueError("imtl_weights needs nonzero gradients (a positive diagonal of gram) "
                         "and positive weights.")
    return torch.as_tensor(_imtl(A, b), dtype=_F64)


_ALIGN_SCALES = ("min", "median", "rmse")


def _alignment(A: np.ndarray, scale: str, rtol: float) -> np.ndarray:
    """B = sigma V_R L_R^(-1/2) V_R^T from the eigendecomposition of A (rank-R truncation)."""
    lam, V = np.linalg.eigh(A)
    top = float(lam.max()) if lam.size else 0.0
    if not top > 0:
        return np.zeros_like(A)
    keep = lam > rtol * top
    lam, V = lam[keep], V[:, keep]
    sigma2 = {"min": lam.min(), "median": np.median(lam), "rmse": lam.mean()}[scale]
    return math.sqrt(float(sigma2)) * (V / np.sqrt(lam)) @ V.T


def alignment_matrix(gram: Any, scale: str = "min", rtol: float | None = None) -> Tensor:
    r"""Aligned-MTL's T x T matrix B: the rows of :math:`\hat G = B G` are orthogonal, of equal
    norms.

    With the eigendecomposition :math:`A = G G^\top = V \Lambda V^\top` truncated to the R
    eigenvalues above ``rtol`` times the largest,

    .. math::

        B = \sigma\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
        \hat G \hat G^\top = B A B = \sigma^2\, V_R V_R^\top ,

    :math:`\sigma^2 I` (condition number 1) when G has full row rank. :math:`\sigma^2` is the
    smallest kept eigenvalue (``"min"``, the paper's choice), their median (``"median"``) or
    their mean (``"rmse"``). The rows of :math:`\hat G` span the same space as those of G.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    scale : {"min", "median", "rmse"}, default="min"
        The eigenvalue that sets :math:`\sigma^2`.
    rtol : float, optional
        Relative tolerance of the rank truncation (>= 0); default T times the float64
        machine epsilon.

    Returns
    -------
    Tensor of shape (T, T)
        B (float64, symmetric); zeros if A is zero.

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix, or an option is invalid.

    See Also
    --------
    regmtl.deep.AlignedMTL : The weighting that applies it at every step.

    References
    ----------
    Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
    multi-task learning. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import alignment_matrix
    >>> G = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    >>> B = alignment_matrix(G @ G.T)
    >>> G_hat = B @ G
    >>> [[round(v, 6) for v in row] for row in (G_hat @ G_hat.T).tolist()]  # sigma^2 I
    [[0.381966, 0.0], [0.0, 0.381966]]
    """
    A = _as_gram(gram)
    if scale not in _ALIGN_SCALES:
        raise ValueError(f"scale must be one of {list(_ALIGN_SCALES)}, got {scale!r}.")
    rtol = A.shape[0] * np.finfo(np.float64).eps if rtol is None else _check_number("rtol", rtol)
    return torch.as_tensor(_alignment(A, scale, rtol), dtype=_F64)


def _upgrad(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coefficients of ``sum_i w_i pi(g_i)``, pi the projection on {x : G x >= 0}."""
    T = A.shape[0]
    tol = 1e-14 * T * max(float(np.max(np.diag(A))), np.finfo(np.float64).tiny)
    coeffs = np.zeros(T)
    for i in np.flatnonzero(w > 0):
        # pi(g_i) = g_i + G^T lam, lam = argmin_{lam >= 0} lam.A.lam / 2 + lam.(A e_i)
        lam = _nonneg_qp(A, -A[:, i], tol)
        lam[i] += 1.0
        coeffs += w[i] * lam
    return coeffs


def upgrad_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""UPGrad's weights: the average of the projections of the gradients on their dual cone.

    Each gradient :math:`g_i` is projected on the cone :math:`\{x : G x \ge 0\}` of the
    updates that conflict with no task,

    .. math::

        \pi(g_i) = \operatorname*{arg\,min}_{x:\ G x \ge 0} \|x - g_i\|_2^2
        = g_i + G^\top \lambda^{(i)}, \qquad
        \lambda^{(i)} = \operatorname*{arg\,min}_{\lambda \ge 0}
        \tfrac12 \lambda^\top A \lambda + \lambda^\top A e_i

    (the dual, a non-negative quadratic program in T variables on the Gram matrix), and the
    update is :math:`\sum_i w_i \pi(g_i) = c^\top G` with :math:`w` the weights normalized to
    sum 1 (the mean by default). It conflicts with no task (:math:`G\, G^\top c \ge 0`), is
    linear in positive scalings of the rows, and is the weighted mean of the gradients when no
    two of them conflict.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    weights : array-like of shape (T,), optional
        Preferences :math:`w` (>= 0, not all 0), normalized to sum 1; uniform by default.

    Returns
    -------
    Tensor of shape (T,)
        The coefficients c of the update on the gradients (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix or the weights are invalid.

    See Also
    --------
    regmtl.deep.UPGrad : The weighting that applies it at every step.

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import upgrad_weights
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)  # they conflict
    >>> c = upgrad_weights(G @ G.T)
    >>> c.tolist()
    [1.0, 0.75]
    >>> (G @ (c @ G)).tolist()  # no task is made worse
    [0.25, 0.5]
    """
    A = _as_gram(gram)
    w = _as_weights(weights, A.shape[0])
    if not w.sum() > 0:
        raise ValueError("weights must not all be 0.")
    return torch.as_tensor(_upgrad(A, w / w.sum()), dtype=_F64)


# ----------------------------------------------------------------------------- base class
def _task_list(names: Sequence[str], mask: Tensor | np.ndarray) -> str:
    bad = [repr(names[i]) for i in np.flatnonzero(np.asarray(mask))]
    return ", ".join(bad)


def _loss_factor(scale: Callable[[Tensor], Tensor], like: Tensor) -> float:
    """The factor by which ``scale`` multiplies a loss (the AMP loss scale; 1 without)."""
    if scale is _identity:
        return 1.0
    factor = float(scale(like.detach().new_ones(())))
    return factor if math.isfinite(factor) and factor > 0 else 1.0


class _GramWeighting(_GradientWeighting):
    """Gradient methods that decide from the Gram matrix of the per-task gradients.

    The decision is taken on the gradients of the unscaled losses (the Gram matrix divided by
    the square of the AMP loss scale), so the coefficients do not depend on the loss scale
    and the scaled gradient matrix gives a scaled update, as the gradient scaler expects.
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
            if scale is not _identity:  # an overflowing mixed-precision step: the scaler skips
                return base.clone()
            # a NaN loss spreads NaN to every row through autograd: name it first
            bad_loss = ~torch.isfinite(losses.detach().to("cpu", _F64))
            what, bad = ("loss", bad_loss) if bad_loss.any() else ("gradient", bad)
            raise ValueError(f"{type(self).__name__}: the {what} of task(s) "
                             f"{_task_list(self.task_names, bad.numpy())} is not finite (NaN or "
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
        return torch.as_tensor(coeffs, dtype=_F64)

    def _combine(self, G, losses, scale, reduce):
        return self._coefficients(_gram(G), losses, scale, reduce), self._base()


# ----------------------------------------------------------------------------- FAMO
class FAMO(Weighting):
    r"""Fast adaptive multitask optimization (Liu, Feng, Stone & Liu, 2023).

    A loss weighting that decreases the task losses at balanced rates, with one backward pass
    per step (it never forms per-task gradients). With logits :math:`\xi` (a buffer, zero at
    the start), :math:`z = \mathrm{softmax}(\xi)` (with base weights
    :math:`z_t \propto b_t e^{\xi_t}`) and :math:`D_t = \max(L_t - L_t^*, 0) + \epsilon`
    (:math:`L^*` the ``min_losses``), the step follows

    .. math::

        d = c \sum_t z_t \nabla \log D_t = \sum_t w_t \nabla L_t, \qquad
        w_t = \frac{z_t / D_t}{\sum_k z_k / D_k}, \quad
        c = \Bigl(\sum_k z_k / D_k\Bigr)^{-1},

    times :math:`\sum_t b_t`: the weights sum to :math:`\sum_t b_t` over the tasks with a label
    in the batch (equal losses and logits give equal weighting's update), and are held fixed in
    the backward pass. After the optimizer step, with the losses :math:`D_t'` of the same batch
    at the new parameters, the logits take one step of their own optimizer (Adam by default,
    learning rate ``w_lr``, weight decay ``gamma``) along

    .. math::

        \delta = J_z(\xi)^\top \bigl(\log D - \log D'\bigr) + \gamma \xi, \qquad
        J_z(\xi)^\top v = z \odot (v - z^\top v) ,

    the paper's update :math:`\xi \leftarrow \xi - \beta\,\delta` with ``optimizer="sgd"``. A
    task whose log-loss fell faster than the z-weighted average loses weight. The logits settle
    where :math:`z_t (v_t - z^\top v) = -\gamma \xi_t` (:math:`v` the per-step log-loss
    decreases): with :math:`\gamma = 0` the tasks' log-losses fall at equal rates; the weight
    decay holds the logits near 0, so with slowly falling losses the weights stay close to the
    plain log-loss weighting :math:`1 / L_t`.
    :class:`~regmtl.deep.Trainer` provides :math:`D'` through :meth:`step_end` (an extra
    forward pass of the batch without gradients, as the authors' code does; the net's buffers,
    e.g. batch-norm statistics, are restored afterwards). Used by hand without
    :meth:`step_end`, the next call of :meth:`backward` takes its losses as :math:`D'` (those
    of the next batch, a noisier estimate).

    A task whose loss is exactly 0 in a batch (no label) gets weight 0 and leaves its logit to
    the weight decay; the others' logits move as if it were absent.

    Parameters
    ----------
    w_lr : float, default=0.025
        Learning rate :math:`\beta` of the logits (> 0).
    gamma : float, default=0.001
        Weight decay :math:`\gamma` of the logits (>= 0).
    optimizer : {"adam", "sgd"}, default="adam"
        The logits' optimizer: Adam (betas 0.9, 0.999, eps 1e-8, the authors' code) or plain
        gradient steps (the paper's algorithm).
    min_losses : float or sequence of float, default=0.0
        Lower bounds :math:`L_t^*` of the losses (0 for squared and cross-entropy losses).
    eps : float, default=1e-8
        :math:`\epsilon` (> 0), keeps :math:`\log D_t` finite.

    Attributes
    ----------
    logits : Tensor of shape (T,)
        :math:`\xi` (float64 buffer).
    task_weights : Tensor of shape (T,)
        The weights :math:`w` of the last step.

    References
    ----------
    Liu, Feng, Stone & Liu (2023). FAMO: fast adaptive multitask optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FAMO, TaskSpec
    >>> weighting = FAMO(w_lr=0.025, gamma=0.001)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0] ** 2, 100 * theta[1] ** 2])  # 1 and 100
    >>> [round(w, 4) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.9802, 0.0198]
    >>> [round(g, 4) for g in theta.grad.tolist()]  # grad log L_a + grad log L_b, times 1.98
    [3.9604, 3.9604]

    After the step, a's loss has halved and b's fallen by 10 %: a's logit goes down (one Adam
    step of 0.025), b's up.

    >>> weighting.step_end(torch.tensor([0.5, 90.0]))
    >>> [round(x, 4) for x in weighting.logits.tolist()]
    [-0.025, 0.025]
    """

    needs_step_losses = True

    def __init__(self, w_lr: float = 0.025, gamma: float = 0.001, optimizer: str = "adam",
                 min_losses: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.w_lr = _check_number("w_lr", w_lr, strict=True)
        self.gamma = _check_number("gamma", gamma)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}.")
        self.optimizer = optimizer
        if isinstance(min_losses, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
                min_losses, str):
            vals = np.asarray(min_losses, dtype=object).reshape(-1).tolist()
            self.min_losses = tuple(_check_number(f"min_losses[{i}]", v, low=-math.inf)
                                    for i, v in enumerate(vals))
        else:
            self.min_losses = _check_number("min_losses", min_losses, low=-math.inf)
        self.eps = _check_number("eps", eps, strict=True)
        for name in ("logits", "task_weights", "adam_m", "adam_v", "prev_losses"):
            self.register_buffer(name, torch.zeros(0, dtype=_F64))
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("pending", torch.zeros((), dtype=torch.bool))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        T = len(tasks)
        if isinstance(self.min_losses, tuple) and len(self.min_losses) != T:
            raise ValueError(f"min_losses: {len(self.min_losses)} values given for {T} tasks.")
        dev = self.logits.device
        for name in ("logits", "adam_m", "adam_v", "prev_losses"):
            setattr(self, name, torch.zeros(T, dtype=_F64, device=dev))
        self.task_weights = self.base_weights.to(dev, copy=True)
        self.n_updates = torch.zeros((), dtype=torch.long, device=dev)
        self.pending = torch.zeros((), dtype=torch.bool, device=dev)

    # ------------------------------------------------------------------ helpers
    def _values(self, losses: Tensor, reduce: Callable[[Tensor], Tensor] | None,
                scale: Callable[[Tensor], Tensor] | None, what: str) -> Tensor | None:
        """The (T,) detached losses (averaged over ranks) on the CPU; None to skip the step."""
        L = losses.detach()
        if reduce is not None:
            L = reduce(L)
        L = L.to("cpu", _F64).reshape(-1)
        if L.shape != (self.n_tasks,):
            raise ValueError(f"{what} must have {self.n_tasks} values, one per task, got shape "
                             f"{tuple(L.shape)}.")
        bad = ~torch.isfinite(L)
        if bad.any():
            if scale is not None and scale is not _identity:
                return None
            raise ValueError(f"FAMO: the loss of task(s) {_task_list(self.task_names, bad)} is "
                             "not finite (NaN or inf).")
        return L

    def _shifted(self, L: Tensor) -> Tensor:
        low = torch.as_tensor(self.min_losses, dtype=_F64)
        return (L - low).clamp(min=0.0) + self.eps

    def _softmax(self, observed: Tensor) -> Tensor:
        """z over the observed tasks with base weights (0 elsewhere)."""
        xi = self.logits.detach().to("cpu", _F64)
        b = self._base() * observed
        if not b.sum() > 0:
            return torch.zeros_like(xi)
        e = b * torch.exp(xi - xi[b > 0].max())
        return e / e.sum()

    def _update_logits(self, before: Tensor, after: Tensor) -> None:
        observed = (before != 0) & (after != 0)
        z = self._softmax(observed)
        v = torch.where(observed, torch.log(self._shifted(before)) -
                        torch.log(self._shifted(after)), 0.0)
        xi = self.logits.detach().to("cpu", _F64)
        grad = z * (v - (z * v).sum()) + self.gamma * xi
        if self.optimizer == "sgd":
            xi = xi - self.w_lr * grad
        else:
            step = int(self.n_updates) + 1
            m = 0.9 * self.adam_m.detach().to("cpu", _F64) + 0.1 * grad
            v2 = 0.999 * self.adam_v.detach().to("cpu", _F64) + 0.001 * grad**2
            m_hat, v_hat = m / (1 - 0.9**step), v2 / (1 - 0.999**step)
            xi = xi - self.w_lr * m_hat / (v_hat.sqrt() + 1e-8)
            self.adam_m.copy_(m)
            self.adam_v.copy_(v2)
        self.n_updates.add_(1)
        self.logits.copy_(xi)

    def _weights(self, L: Tensor) -> Tensor:
        observed = L != 0
        z = self._softmax(observed)
        ratio = torch.where(observed, z / self._shifted(L), 0.0)
        total = ratio.sum()
        if not (total > 0 and torch.isfinite(total)):
            return self._base() * observed
        return (self._base() * observed).sum() * ratio / total

    # ------------------------------------------------------------------ steps
    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`Weighting.backward`: backpropagates :math:`\\sum_t w_t L_t` (+ ``extra``).

        If the previous step's losses are still waiting for :meth:`step_end`, these losses
        take its place first (the logits are updated with them)."""
        self._check_losses(losses)
        L = self._values(losses, reduce, scale, "losses")
        if L is None:  # an overflowing mixed-precision step: the scaler skips it
            w = self._base().clone()
            self.pending.fill_(False)
        else:
            if bool(self.pending):
                self._update_logits(self.prev_losses.detach().to("cpu", _F64), L)
            w = self._weights(L)
            self.prev_losses.copy_(L)
            self.pending.fill_(True)
        self.task_weights.copy_(w)
        objective = (w.to(losses) * losses).sum()
        if extra is not None:
            objective = objective + extra
        if objective.requires_grad:
            (_identity if scale is None else scale)(objective).backward()
        return w.to(device=losses.device, dtype=losses.dtype)

    def step_end(self, losses: Tensor, *,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Update the logits from the losses of the same batch after the optimizer step.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The task losses of the batch of the last :meth:`backward`, at the new parameters.
        reduce : callable, optional
            Averages a tensor across distributed ranks (applied to the loss values).
        """
        if not self.task_names:
            raise RuntimeError("FAMO.setup(tasks) must be called before step_end().")
        if not bool(self.pending):
            return
        L = self._values(torch.as_tensor(losses), reduce, None, "step_end losses")
        self._update_logits(self.prev_losses.detach().to("cpu", _F64), L)
        self.pending.fill_(False)

    def extra_repr(self) -> str:
        return (f"w_lr={self.w_lr!r}, gamma={self.gamma!r}, optimizer={self.optimizer!r}, "
                f"min_losses={self.min_losses!r}, eps={self.eps!r}")


# ----------------------------------------------------------------------------- Nash-MTL
class NashMTL(_GramWeighting):
    r"""Multi-task learning as a bargaining game (Navon et al., 2022).

    The shared update :math:`d = \sum_t \alpha_t g_t` is the Nash bargaining solution: it
    maximizes :math:`\sum_t b_t \log(d \cdot g_t)` in a ball, i.e.

    .. math::

        \alpha_t\, (G G^\top \alpha)_t = b_t, \quad \alpha_t > 0

    (:func:`~regmtl.deep.conflict.nash_weights`, damped Newton on a strictly convex function;
    unit base weights give the paper's :math:`G G^\top \alpha = 1/\alpha`). It is invariant to
    the scale of each task's gradient: scaling :math:`g_t` by k divides :math:`\alpha_t` by k,
    so every contribution :math:`\alpha_t g_t` and the update stay the same, and the update's
    length does not grow with the losses. With base weights :math:`b` it is the asymmetric
    bargaining solution: :math:`d \cdot g_t = b_t / \alpha_t`, task t's share of the progress
    grows with :math:`b_t`. Linearly dependent gradients are fine; when 0 is in the convex hull
    of the gradients (Pareto stationarity) no bargaining solution exists and the shared update
    is zero. The returned weights are :math:`\alpha`: they keep no sum (they scale like
    :math:`1 / \|g_t\|`; positive for the tasks taking part, all 0 at a Pareto-stationary
    point). The heads get the gradient of :math:`\sum_t b_t L_t`; with a single task the
    update is the plain gradient. The paper's extras (solving every few steps, clipping the
    update norm) are left to the trainer (``grad_clip``).

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    References
    ----------
    Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning
    as a bargaining game. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import NashMTL, TaskSpec
    >>> weighting = NashMTL()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> weighting.backward(losses, [theta], []).tolist()  # alpha_t = 1 / |g_t|
    [1.0, 0.5]
    >>> theta.grad.tolist()
    [1.0, 1.0]
    """

    def _solve(self, A, b, idx, losses, reduce):
        alpha = _nash(A, b)
        return np.zeros(len(b)) if alpha is None else alpha


# ----------------------------------------------------------------------------- IMTL
class IMTL(_GramWeighting):
    r"""Impartial multi-task learning, IMTL-G (Liu et al., 2021), optionally with IMTL-L.

    The shared update :math:`g = \sum_t \alpha_t g_t` has equal projections on every unit
    task gradient :math:`u_t = g_t / \|g_t\|_2` (proportional to :math:`b_t` with base
    weights):

    .. math::

        g \cdot u_t = c\, b_t, \qquad \sum_t \alpha_t = 1

    (:func:`~regmtl.deep.conflict.imtl_weights`, the paper's closed form computed from the
    Gram matrix), times :math:`\sum_t b_t` so that equal gradients give equal weighting's
    update. No task is favoured because of its gradient's scale. With linearly dependent
    gradients the least-squares solution is used. The returned weights sum to
    :math:`\sum_t b_t` (over the tasks taking part; but see the rare case of
    :func:`~regmtl.deep.conflict.imtl_weights`) and can be negative.

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

    Attributes
    ----------
    log_scales : torch.nn.Parameter of shape (T,) or None
        :math:`s_t` (with ``loss_scale``; None otherwise).

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

    def __init__(self, loss_scale: bool = False) -> None:
        super().__init__()
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
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`Weighting.backward`; with ``loss_scale`` the weights are the effective
        coefficients of the original (unscaled) task gradients."""
        if not self.loss_scale:
            return super().backward(losses, shared, specific, extra=extra, scale=scale,
                                    reduce=reduce)
        self._check_losses(losses)
        s = self.log_scales.to(losses)
        factor = torch.exp(s.detach())
        out = super().backward(factor * losses, shared, specific, extra=extra, scale=scale,
                               reduce=reduce)
        observed = (losses.detach() != 0).to(losses.dtype)
        objective = (self.base_weights.to(losses) * observed
                     * (torch.exp(s) * losses.detach() - s)).sum()
        if objective.requires_grad:
            scaled = (_identity if scale is None else scale)(objective)
            torch.autograd.backward(scaled, inputs=[self.log_scales])
        return out * factor

    def extra_repr(self) -> str:
        return f"loss_scale={self.loss_scale!r}"


# ----------------------------------------------------------------------------- MGDA
_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(_GramWeighting):
    r"""Multiple-gradient descent (Sener & Koltun, 2018), optionally its upper bound MGDA-UB.

    The shared update is the min-norm point of the convex hull of the (normalized) task
    gradients :math:`\hat g_t = b_t g_t / n_t`:

    .. math::

        d = \sum_t \alpha_t \hat g_t, \qquad
        \alpha = \operatorname*{arg\,min}_{\alpha \in \Delta}
        \Bigl\|\sum_t \alpha_t \hat g_t\Bigr\|_2^2

    (:func:`~regmtl.deep.conflict.mgda_weights`, solved exactly), times T (the tasks taking part;
    the base weights are already in the hull); :math:`-d` decreases every task, and :math:`d = 0`
    (returned as is) when the tasks are Pareto-stationary, 0 in the hull. The normalizers
    :math:`n_t` are those of the authors' code: 1 (``"none"``), :math:`\|g_t\|_2` (``"l2"``),
    :math:`L_t` (``"loss"``) or :math:`L_t \|g_t\|_2` (``"loss+"``). The default ``"none"`` is the
    paper's algorithm (the min-norm point of the gradients themselves, with its guarantees); the
    released configuration of the authors uses ``"loss+"``. Unlike the authors' code, which applies
    :math:`\alpha` to the raw losses, the update here is the min-norm point of the normalized
    gradients: it stays a descent direction for every task, and its length follows the normalization
    (unit-free with ``"l2"``, growing like :math:`1/L` with ``"loss+"``). The returned weights are
    its coefficients on the original gradients, :math:`w_t = T \alpha_t b_t / n_t`: :math:`\sum_t
    w_t n_t / b_t = T`, so they sum to T with unit base weights and ``"none"``, and they are all 0
    at a Pareto-stationary point.

    With ``upper_bound=True`` (MGDA-UB) :math:`\alpha` comes instead from the gradients of
    the losses with respect to the shared representation Z (the trunk's output, T backward
    passes through the heads only), and the shared parameters get the gradient of
    :math:`\sum_t c_t L_t` in one backward pass. The representation is given to
    :meth:`backward` as ``representation=`` or captured by a forward hook: call
    :meth:`watch` with the trunk (e.g. ``MGDA(upper_bound=True).watch(net.trunk)``) before
    training with :class:`~regmtl.deep.Trainer`; this needs one forward pass per step (one
    training set for all tasks). Across distributed ranks the T x T Gram matrices are
    averaged.

    The heads get the gradient of :math:`\sum_t b_t L_t`; with a single task the update is
    the plain gradient.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters (of the
    representation's entries with ``upper_bound``); T backward passes through the trunk
    (through the heads with ``upper_bound``).

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}, default="none"
        The gradient normalizers :math:`n_t` (``"loss"`` and ``"loss+"`` need positive
        losses).
    upper_bound : bool, default=False
        MGDA-UB: decide from the gradients with respect to the shared representation.

    References
    ----------
    Sener & Koltun (2018). Multi-task learning as multi-objective optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MGDA, TaskSpec
    >>> weighting = MGDA()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> [round(w, 6) for w in weighting.backward(losses, [theta], []).tolist()]  # 2 (0.8, 0.2)
    [1.6, 0.4]
    >>> [round(g, 6) for g in theta.grad.tolist()]  # 2 x the min-norm point (0.8, 0.4)
    [1.6, 0.8]

    MGDA-UB on a trunk's output:

    >>> trunk, head = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)
    >>> weighting = MGDA(upper_bound=True).watch(trunk)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> out = head(trunk(torch.ones(4, 3)))
    >>> losses = torch.stack([out[:, 0].mean(), -out[:, 1].mean()])
    >>> w = weighting.backward(losses, list(trunk.parameters()), list(head.parameters()))
    >>> w.shape, trunk.weight.grad is not None
    (torch.Size([2]), True)
    """

    def __init__(self, normalization: str = "none", upper_bound: bool = False) -> None:
        super().__init__()
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(_NORMALIZATIONS)}, got "
                             f"{normalization!r}.")
        if not isinstance(upper_bound, (bool, np.bool_)):
            raise ValueError(f"upper_bound must be True or False, got {upper_bound!r}.")
        self.normalization = normalization
        self.upper_bound = bool(upper_bound)
        self._hook: Any = None
        self._representation: Tensor | None = None
        self._n_captured = 0

    # ------------------------------------------------------------------ representation
    def watch(self, module: torch.nn.Module) -> MGDA:
        """Capture the output of ``module`` (the shared representation) at every forward pass.

        Parameters
        ----------
        module : torch.nn.Module
            The module whose output is the representation Z, e.g. ``net.trunk`` of a
            :class:`~regmtl.deep.HardSharing` net. Replaces a previously watched module.

        Returns
        -------
        MGDA
            The weighting itself.
        """
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"watch needs a torch.nn.Module, got {type(module).__name__}.")
        self.unwatch()
        self._hook = module.register_forward_hook(self._capture)
        return self

    def unwatch(self) -> None:
        """Remove the hook of :meth:`watch` (if any) and drop the captured representation."""
        if self._hook is not None:
            self._hook.remove()
        self._hook, self._representation, self._n_captured = None, None, 0

    def _capture(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if self.upper_bound and isinstance(output, torch.Tensor) and output.requires_grad:
            self._representation = output
            self._n_captured += 1

    # ------------------------------------------------------------------ solve
    def _solve(self, A, b, idx, losses, reduce):
        d = np.sqrt(np.diag(A))
        if self.normalization in ("loss", "loss+"):
            L = losses.detach()
            if reduce is not None:
                L = reduce(L)
            L = L.to("cpu", _F64).numpy()[idx]
            if not np.all(np.isfinite(L) & (L > 0)):
                bad = [self.task_names[i] for i, v in zip(idx, L, strict=True)
                       if not (np.isfinite(v) and v > 0)]
                raise ValueError(f"MGDA(normalization={self.normalization!r}) needs positive "
                                 f"finite losses; task(s) {bad} have {L.tolist()}. Use "
                                 "normalization='l2' or 'none'.")
            n = L * d if self.normalization == "loss+" else L
        elif self.normalization == "l2":
            n = d
        else:
            n = np.ones(len(b))
        r = b / n  # rows r_t g_t
        An = A * np.outer(r, r)
        alpha = _min_norm(An)
        if float(alpha @ An @ alpha) <= _STATIONARY * float(np.max(np.diag(An))):
            return np.zeros(len(b))  # Pareto-stationary: 0 is in the hull
        return len(b) * alpha * r  # T (taking part): the hull already holds the b_t

    # ------------------------------------------------------------------ backward
    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None,
                 representation: Tensor | None = None) -> Tensor:
        """As :meth:`Weighting.backward`; with ``upper_bound`` the weights come from the
        gradients with respect to ``representation`` (default: the one captured by
        :meth:`watch`)."""
        if not self.upper_bound:
            return super().backward(losses, shared, specific, extra=extra, scale=scale,
                                    reduce=reduce)
        self._check_losses(losses)
        captured, n_captured = self._representation, self._n_captured
        self._representation, self._n_captured = None, 0
        Z = representation if representation is not None else captured
        scale = _identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        with_extra = extra is not None and extra.requires_grad
        if not losses.requires_grad:
            coeffs = torch.zeros(self.n_tasks, dtype=_F64)
        else:
            if Z is None or not Z.requires_grad:
                raise RuntimeError("MGDA(upper_bound=True) needs the shared representation: "
                                   "call weighting.watch(net.trunk) before training, or pass "
                                   "backward(..., representation=Z).")
            if representation is None and n_captured > 1:
                raise RuntimeError(f"MGDA(upper_bound=True): {n_captured} forward passes of the "
                                   "watched module since the last step; the upper bound needs "
                                   "one forward pass per step (one training set for all tasks).")
            GZ = _task_gradients(losses, [Z], scale)
            A = GZ @ GZ.T
            del GZ
            if reduce is not None:
                A = reduce(A)
            coeffs = self._coefficients(A.to("cpu", _F64), losses, scale, reduce)
            if shared:
                objective = scale((coeffs.to(losses) * losses).sum())
                torch.autograd.backward(objective, inputs=shared, retain_graph=True)
        if specific and losses.requires_grad:
            head_objective = scale((self._base().to(losses) * losses).sum())
            torch.autograd.backward(head_objective, inputs=specific, retain_graph=with_extra)
        if with_extra:
            scale(extra).backward()
        return coeffs.to(device=losses.device, dtype=losses.dtype)

    def extra_repr(self) -> str:
        return f"normalization={self.normalization!r}, upper_bound={self.upper_bound!r}"


# ----------------------------------------------------------------------------- Aligned-MTL
class AlignedMTL(_GramWeighting):
    r"""Aligned-MTL: independent component alignment (Senushkin et al., 2023).

    The task gradients are replaced by aligned ones, the rows of :math:`\hat G = B G` with

    .. math::

        G G^\top = V \Lambda V^\top, \qquad
        B = \sigma\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
        \hat G \hat G^\top = \sigma^2 I ,

    orthogonal with equal norms (condition number 1; rank-R truncation of the eigenvalues
    below ``rtol`` times the largest, :func:`~regmtl.deep.conflict.alignment_matrix`), and the
    shared update is :math:`\sum_t b_t \hat g_t` (coefficients :math:`B b` on the original
    gradients, the returned weights: they keep no sum and can be negative). The update makes
    equal progress :math:`b_t \sigma^2` along every aligned gradient and is a descent direction
    of :math:`\sum_t b_t L_t` (:math:`b^\top A B b = \sigma\, b^\top A^{1/2} b \ge 0`); it may
    still conflict with an individual original gradient. Orthogonal gradients of equal norms
    are left as they are (equal weighting). The heads get the gradient of
    :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    scale : {"min", "median", "rmse"}, default="min"
        :math:`\sigma^2`: the smallest kept eigenvalue (the paper), their median or mean.
    rtol : float, optional
        Relative tolerance of the rank truncation (>= 0); default T times the machine epsilon
        of the gradients' dtype.

    References
    ----------
    Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
    multi-task learning. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import AlignedMTL, TaskSpec
    >>> weighting = AlignedMTL()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> weighting.backward(losses, [theta], []).tolist()  # B = diag(1, 1/2)
    [1.0, 0.5]
    >>> theta.grad.tolist()  # the aligned gradients (1, 0) and (0, 1)
    [1.0, 1.0]
    """

    def __init__(self, scale: str = "min", rtol: float | None = None) -> None:
        super().__init__()
        if scale not in _ALIGN_SCALES:
            raise ValueError(f"scale must be one of {list(_ALIGN_SCALES)}, got {scale!r}.")
        self.scale = scale
        self.rtol = None if rtol is None else _check_number("rtol", rtol)
        self._dtype_eps = float(np.finfo(np.float64).eps)

    def _combine(self, G, losses, scale, reduce):
        self._dtype_eps = float(torch.finfo(G.dtype).eps) if G.is_floating_point() else \
            float(np.finfo(np.float64).eps)
        return super()._combine(G, losses, scale, reduce)

    def _solve(self, A, b, idx, losses, reduce):
        rtol = self.rtol if self.rtol is not None else len(b) * self._dtype_eps
        return _alignment(A, self.scale, rtol) @ b

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}, rtol={self.rtol!r}"


# ----------------------------------------------------------------------------- UPGrad
class UPGrad(_GramWeighting):
    r"""Unconflicting projection of gradients, UPGrad (Quinton & Rey, 2024).

    Each task gradient is projected on the dual cone of the gradients, the updates that
    conflict with no task (:func:`~regmtl.deep.conflict.upgrad_weights`),

    .. math::

        \pi(g_t) = \operatorname*{arg\,min}_{x:\ G x \ge 0} \|x - g_t\|_2^2 ,

    and the shared update is :math:`\sum_t b_t \pi(g_t)`: the paper's average with
    preferences :math:`b / \sum_t b_t`, times :math:`\sum_t b_t`. Each projection is a
    non-negative quadratic program in T variables on the Gram matrix, solved exactly. The
    update conflicts with no task (:math:`G d \ge 0`), is linear in positive scalings of the
    task gradients, and equals equal weighting's :math:`\sum_t b_t g_t` when no two gradients
    conflict. The returned weights keep no sum: a projection only adds non-negative multiples
    of the gradients, so each is at least :math:`b_t` (exactly :math:`b_t` when nothing
    conflicts). The heads get the gradient of :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec, UPGrad
    >>> weighting = UPGrad()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], theta[1] - theta[0]])  # gradients (1, 0), (-1, 1)
    >>> weighting.backward(losses, [theta], []).tolist()
    [2.0, 1.5]
    >>> theta.grad.tolist()  # (1, 1) + (0, 1/2): no task gets worse
    [0.5, 1.5]
    """

    def _solve(self, A, b, idx, losses, reduce):
        return _upgrad(A, b)


WEIGHTINGS.update({
    "famo": FAMO,
    "nash_mtl": NashMTL,
    "imtl": IMTL,
    "mgda": MGDA,
    "aligned_mtl": AlignedMTL,
    "upgrad": UPGrad,
})
