r"""Conflict-averse gradient descent, CAGrad (Liu, Liu, Jin, Stone & Liu, 2021).

The update within :math:`c \|g_0\|_2` of the mean gradient :math:`g_0` that most improves the
worst task: :math:`d = T (g_0 + \lambda g_w) / (1 + c^2)`, :math:`g_w = \sum_t w_t g_t`,
:math:`w` minimizing :math:`g_w \cdot g_0 + \sqrt{\phi} \|g_w\|_2` over the simplex,
:math:`\phi = c^2 \|g_0\|_2^2`, :math:`\lambda = \sqrt{\phi} / \|g_w\|_2`.
:func:`~regmtl.deep.weighting.cagrad_direction` is the direction, :class:`~regmtl.deep.CAGrad`
the weighting.

Liu, Liu, Jin, Stone & Liu (2021). Conflict-averse gradient descent for multi-task learning.
NeurIPS.
"""

from __future__ import annotations

import math

import numpy as np

from .._torch import torch
from .base import F64, GradientWeighting, check_number, gram_matrix
from .gram import ZERO_GRAD, is_stationary, nonneg_qp
from .mgda import min_norm

__all__ = ["CAGrad", "cagrad_direction"]

Tensor = torch.Tensor


def _projection(A: np.ndarray, e: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
    """``lam >= 0`` with ``G^T (e + lam)`` the projection of ``g0 = G^T e`` onto
    ``{d : G d >= tau}``, and the squared distance ``lam^T A lam`` (the dual QP, exact).

    Solved in the variables ``mu = lam * |g_t|`` (the Gram matrix of the unit gradients),
    so that rows of very different norms do not spoil the conditioning."""
    n = np.sqrt(np.diag(A))
    C = A / np.outer(n, n)
    mu = nonneg_qp(C, (tau - A @ e) / n, tol=1e-15 * A.shape[0])
    lam = mu / n
    return lam, max(float(lam @ A @ lam), 0.0)


def _cagrad_point(A: np.ndarray, c: float) -> np.ndarray:
    r"""``x`` with ``d = G^T x`` CAGrad's update before the factor T / (1 + c^2), A = G G^T.

    The primal problem, :math:`\max_d \min_t g_t \cdot d` over
    :math:`\|d - g_0\| \le \sigma = c \|g_0\|`: the largest :math:`\tau` whose polyhedron
    :math:`\{d : G d \ge \tau\}` comes within :math:`\sigma` of :math:`g_0` (bisection on
    :math:`\tau`, each distance an exact non-negative QP), and :math:`d` its point nearest
    :math:`g_0`. Where the optimum is unique this is the paper's
    :math:`g_0 + \sigma g_w / \|g_w\|`; where it is not (a Pareto-stationary point with
    c >= 1, :math:`g_w = 0`) it is the optimal update nearest :math:`g_0`.
    """
    T = A.shape[0]
    e = np.full(T, 1.0 / T)
    s = float(np.max(np.diag(A)))
    if T == 1 or c == 0 or s <= 0:
        return e
    A = A / s  # the problem is invariant to the scale of G
    sigma2 = c * c * max(float(e @ A @ e), 0.0)
    if sigma2 <= 0:
        return e
    Ae = A @ e
    lo = float(Ae.min())  # d = g0
    hi = float(np.min(Ae + math.sqrt(sigma2) * np.sqrt(np.diag(A))))
    w = min_norm(A)
    if is_stationary(A, w):  # 0 in the hull: no update improves every task
        hi = min(hi, 0.0)
    lam = np.zeros(T)
    for _ in range(200):
        if hi - lo <= 1e-15 * (1.0 + abs(lo) + abs(hi)):
            break
        mid = 0.5 * (lo + hi)
        cand, dist2 = _projection(A, e, mid)
        # reachable, and the level really met (an empty polyhedron has no projection)
        if (dist2 <= sigma2 * (1.0 + 1e-12)
                and float((A @ (e + cand)).min()) >= mid - 1e-12 * (1.0 + abs(mid))):
            lo, lam = mid, cand
        else:
            hi = mid
    if lo > float(Ae.min()):
        lam = _projection(A, e, lo)[0]
    return e + lam


def _cagrad_coefficients(A: np.ndarray, c: float, rescale: bool) -> np.ndarray:
    """Coefficients ``k`` of CAGrad's direction ``k @ G`` (times T), from ``A = G G^T``."""
    T = A.shape[0]
    if not np.all(np.isfinite(A)):
        return np.ones(T)
    diag = np.diag(A)
    idx = np.flatnonzero(diag > ZERO_GRAD * max(float(diag.max()), 0.0))
    coeffs = np.zeros(T)
    if len(idx):  # a zero gradient (or a zero base weight) takes no part
        coeffs[idx] = len(idx) * _cagrad_point(A[np.ix_(idx, idx)], c)
    return coeffs / (1.0 + c * c) if rescale else coeffs


def cagrad_direction(G: Tensor, c: float = 0.5, rescale: bool = True) -> tuple[Tensor, Tensor]:
    r"""CAGrad's update direction from the per-task gradients, the rows of ``G``.

    .. math::

        d = \frac{T}{1 + c^2}\left(g_0 + \frac{\sqrt{\phi}}{\|g_w\|_2}\, g_w\right),
        \qquad g_0 = \frac{1}{T}\sum_t g_t, \quad \phi = c^2 \|g_0\|_2^2,

    (without the factor :math:`1/(1 + c^2)` if not ``rescale``), where
    :math:`g_w = \sum_t w_t g_t` and :math:`w` minimizes
    :math:`g_w \cdot g_0 + \sqrt{\phi}\, \|g_w\|_2` over the simplex: the update within
    :math:`c \|g_0\|_2` of :math:`g_0` that maximizes :math:`\min_t g_t \cdot d`. It is
    solved on the primal side, exactly: bisection on the level :math:`\tau` (to 1e-15
    relative) whose polyhedron :math:`\{d : G d \ge \tau\}` is within reach, each distance
    an exact non-negative QP. ``c = 0`` gives :math:`\sum_t g_t`.

    **Degenerate gradients.** At a Pareto-stationary point (0 in the convex hull of the
    :math:`g_t`) with :math:`c \ge 1` the best worst-task value is 0 and :math:`g_w = 0`, so the
    formula above is undefined; the update is then the optimal one nearest :math:`g_0`, the
    projection of :math:`g_0` onto :math:`\{d : G d \ge 0\}`: it harms no task (it is 0 when
    :math:`g_0` conflicts with every such direction, e.g. two opposite gradients). For
    :math:`c \ge 1` the update never conflicts with a task (:math:`d = 0` is in the ball); for
    :math:`c < 1` it may. Dependent gradients need nothing special. A zero gradient takes no
    part (coefficient 0; T, :math:`g_0` and :math:`\phi` are those of the other tasks), as in
    the Gram methods: kept, it would make every worst-task value 0 and, in the paper's dual,
    :math:`g_w = 0`, so a task without labels in the batch would turn CAGrad into the plain
    sum (LibMTL's code returns the mean then). The result does not depend on the order of
    the tasks.

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
    c = check_number("c", c)
    coeffs = torch.as_tensor(_cagrad_coefficients(gram_matrix(G).numpy(), c, bool(rescale)),
                             dtype=F64).to(G)
    return coeffs @ G, coeffs


class CAGrad(GradientWeighting):
    r"""Conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, 2021).

    Moves the shared parameters along

    .. math::

        d = \frac{T}{1 + c^2}\left(g_0 + \lambda g_w\right), \qquad
        \lambda = \frac{\sqrt{\phi}}{\|g_w\|_2}, \quad \phi = c^2 \|g_0\|_2^2,

    with :math:`g_0` the mean task gradient (of :math:`b_t L_t`) and
    :math:`g_w = \sum_t w_t g_t`, :math:`w` the minimizer over the simplex of
    :math:`g_w \cdot g_0 + \sqrt{\phi}\, \|g_w\|_2` (:math:`g_0 + \lambda g_w` is the
    update within :math:`c \|g_0\|_2` of :math:`g_0` that most improves the worst task),
    solved exactly (:func:`~regmtl.deep.weighting.cagrad_direction`, which states what it
    returns at a Pareto-stationary point: with :math:`c \ge 1` an update that harms no
    task). Without ``rescale`` the factor :math:`1/(1 + c^2)` is left out. The factor T makes
    ``c = 0`` give the SUM of the task
    gradients, exactly what equal weighting gives: learning rates stay comparable with equal
    weighting. The returned weights are the effective coefficients
    :math:`b_t T (1/T + \lambda w_t) / (1 + c^2)` of the original task gradients; the task
    with the smaller gradient gets the larger one. A task with a zero gradient (no label in
    the batch) or a zero base weight gets 0 and T counts the others. They keep no sum: each
    is at least :math:`b_t / (1 + c^2)`, and with unit base weights they sum to
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

    Notes
    -----
    **Differences from the paper.** The paper's update is :math:`g_0 + \lambda g_w` (the
    mean); regmtl multiplies it by T (the tasks taking part) so that ``c = 0`` is equal
    weighting's sum (LibMTL keeps the mean and divides by :math:`1 + c^2` with
    ``rescale=1``, as ``rescale=True`` does here). A task with a zero gradient or a zero
    base weight takes no part. The
    paper and LibMTL solve the dual over the simplex with a few iterations of a generic
    optimizer (SLSQP, or Adam in the authors' code); regmtl solves the primal exactly and,
    where the paper's formula divides by :math:`\|g_w\| = 0`, takes the optimal update
    nearest :math:`g_0`.

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

    #: The name users pass (``weighting="cagrad"``) and saved models carry.
    name = "cagrad"

    def __init__(self, c: float = 0.5, rescale: bool = True) -> None:
        super().__init__()
        self.c = check_number("c", c)
        self.rescale = bool(rescale)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = (gram_matrix(G) * base[:, None] * base[None, :]).numpy()
        coeffs = torch.as_tensor(_cagrad_coefficients(A, self.c, self.rescale), dtype=F64)
        return coeffs * base, base

    def extra_repr(self) -> str:
        return f"c={self.c!r}, rescale={self.rescale!r}"
