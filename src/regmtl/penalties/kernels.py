"""Numba kernels that penalties' proxes share with the solvers' block steps.

:func:`capped_l1_row` is the exact block step of the capped L1 norm of a row (the prox of
``CappedL1(group="l1")`` row by row, :func:`capped_l1_rows_prox`); block coordinate descent
calls it for every row it updates (``regmtl.solvers._kernels``).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["FAST", "capped_l1_row", "capped_l1_rows_prox"]

# Reassociation lets LLVM vectorize the inner sums; NaN/inf semantics are kept (inputs are
# validated finite) and results are identical from run to run on a machine.
FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, fastmath=FAST)
def capped_l1_row(z, L, a, cap, out):
    """The exact ``argmin_w sum_t L_t/2 (w_t - z_t)^2 + a min(||w||_1, cap)`` into ``out``
    (tasks with ``L_t = 0`` get 0); returns the minimum of the model.

    The better of two convex pieces: (A) below the cap, the weighted lasso on the L1 ball
    ``||w||_1 <= cap``, ``w_t = sign(z_t) max(|z_t| - (a + nu) / L_t, 0)`` with ``nu >= 0``
    the smallest that keeps the ball (bisection for the active set, then its exact value);
    (B) beyond it, the nearest point with ``||w||_1 >= cap`` plus ``a cap``: ``z`` itself when
    ``||z||_1 >= cap``, else ``w_t = z_t + sign(z_t) mu / L_t``, ``mu = (cap - ||z||_1) /
    sum_t 1/L_t`` (Cauchy-Schwarz: no point of the sphere is nearer). Ties go to (A)."""
    T = z.shape[0]
    n1 = 0.0
    inv = 0.0
    hi = 0.0
    for t in range(T):
        if L[t] > 0.0:
            n1 += abs(z[t])
            inv += 1.0 / L[t]
            hi = max(hi, L[t] * abs(z[t]) - a)
    if inv == 0.0:
        for t in range(T):
            out[t] = 0.0
        return 0.0
    # (A): the L1 mass of the soft-thresholded point at level a + nu
    nu = 0.0
    mass = 0.0
    for t in range(T):
        if L[t] > 0.0:
            mass += max(abs(z[t]) - a / L[t], 0.0)
    if mass > cap:
        lo_nu, hi_nu = 0.0, hi
        for _ in range(200):
            mid = 0.5 * (lo_nu + hi_nu)
            m = 0.0
            for t in range(T):
                if L[t] > 0.0:
                    m += max(abs(z[t]) - (a + mid) / L[t], 0.0)
            if m > cap:
                lo_nu = mid
            else:
                hi_nu = mid
            if hi_nu - lo_nu <= 1e-15 * (1.0 + hi_nu):
                break
        s1 = 0.0
        s2 = 0.0
        for t in range(T):  # the active set at the bracket; nu exactly on it
            if L[t] > 0.0 and L[t] * abs(z[t]) - a > 0.5 * (lo_nu + hi_nu):
                s1 += abs(z[t]) - a / L[t]
                s2 += 1.0 / L[t]
        nu = max((s1 - cap) / s2, 0.0) if s2 > 0.0 else 0.0
    qa = 0.0
    norm_a = 0.0
    for t in range(T):
        if L[t] > 0.0:
            m = max(abs(z[t]) - (a + nu) / L[t], 0.0)
            w = m if z[t] >= 0.0 else -m
            qa += 0.5 * L[t] * (w - z[t]) * (w - z[t])
            norm_a += m
    qa += a * min(norm_a, cap)
    # (B)
    mu = max(cap - n1, 0.0) / inv
    qb = 0.5 * mu * mu * inv + a * cap
    use_b = qb < qa
    for t in range(T):
        if L[t] == 0.0:
            out[t] = 0.0
        elif use_b:
            out[t] = z[t] + (mu / L[t] if z[t] >= 0.0 else -mu / L[t])
        else:
            m = max(abs(z[t]) - (a + nu) / L[t], 0.0)
            out[t] = m if z[t] >= 0.0 else -m
    return qb if use_b else qa


@njit(cache=True, fastmath=FAST)
def capped_l1_rows_prox(W, L, a, cap):
    """``capped_l1_row`` of every row of ``W`` with the curvature ``L`` in every task."""
    p, T = W.shape
    out = np.empty_like(W)
    Lrow = np.full(T, L)
    for j in range(p):
        capped_l1_row(W[j], Lrow, a, cap, out[j])
    return out
