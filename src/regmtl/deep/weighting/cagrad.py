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

__all__ = ["CAGrad", "cagrad_direction"]

Tensor = torch.Tensor


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
        self.c = check_number("c", c)
        self.rescale = bool(rescale)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        A = (gram_matrix(G) * base[:, None] * base[None, :]).numpy()
        coeffs = torch.as_tensor(_cagrad_coefficients(A, self.c, self.rescale), dtype=F64)
        return coeffs * base, base

    def extra_repr(self) -> str:
        return f"c={self.c!r}, rescale={self.rescale!r}"
