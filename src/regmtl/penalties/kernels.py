"""Numba kernels that penalties' proxes share with the solvers' block steps.

:func:`capped_l1_row` is the exact block step of the capped L1 norm of a row (the prox of
``CappedL1(group="l1")`` row by row, :func:`capped_l1_rows_prox`); block coordinate descent
calls it for every row it updates (``regmtl.solvers.parts._kernels``).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit

__all__ = ["FAST", "box_row", "box_rows_conjugate", "box_rows_prox", "capped_l1_row",
           "capped_l1_rows_prox"]

#: doublings that bracket a row's root, then bisections that find it (to 2**-60 of the
#: bracket)
_BRACKET, _BISECT = 200, 60

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


@njit(cache=True)
def box_row(a, L, l1, l2, lo, hi, v):
    """``argmin_w sum_t L_t/2 (w_t - a_t/L_t)^2 + l1 ||w|| + l2/2 ||w||^2`` over
    ``lo <= w <= hi`` into ``v``: ``w_t(mu) = clip(a_t / (L_t + l2 + mu), lo_t, hi_t)`` at the
    root of ``mu ||w(mu)|| = l1`` (bracketed by doubling, bisected), or 0 where 0 is in the
    box and ``a`` in ``l1 B + N_box(0)`` (the block step of ``regmtl.solvers.parts.box_descent``
    and, with ``L = 1``, the prox of ``regmtl.penalties.factored``)."""
    T = a.shape[0]
    if l1 == 0.0:
        for t in range(T):
            den = L[t] + l2
            x = a[t] / den if den > 0.0 else 0.0
            v[t] = min(max(x, lo[t]), hi[t])
        return
    zero_in = True
    na = 0.0
    for t in range(T):
        if lo[t] > 0.0 or hi[t] < 0.0:
            zero_in = False
        x = a[t]
        if (lo[t] == 0.0 and x < 0.0) or (hi[t] == 0.0 and x > 0.0):
            x = 0.0
        na += x * x
    if zero_in and np.sqrt(na) <= l1:
        for t in range(T):
            v[t] = 0.0
        return
    mu_lo, mu_hi = 0.0, 1.0
    for _ in range(_BRACKET):  # mu ||w(mu)|| increases: grow mu_hi past the root
        s = 0.0
        for t in range(T):
            den = L[t] + l2 + mu_hi
            x = min(max(a[t] / den, lo[t]), hi[t])
            s += x * x
        if mu_hi * np.sqrt(s) >= l1:
            break
        mu_lo = mu_hi
        mu_hi *= 2.0
    for _ in range(_BISECT):
        mu = 0.5 * (mu_lo + mu_hi)
        s = 0.0
        for t in range(T):
            den = L[t] + l2 + mu
            x = min(max(a[t] / den, lo[t]), hi[t])
            s += x * x
        if mu * np.sqrt(s) < l1:
            mu_lo = mu
        else:
            mu_hi = mu
    mu = 0.5 * (mu_lo + mu_hi)
    for t in range(T):
        den = L[t] + l2 + mu
        v[t] = min(max(a[t] / den if den > 0.0 else 0.0, lo[t]), hi[t])


@njit(cache=True)
def box_rows_prox(Z, a, c, lo, hi):
    """``argmin_v ||v - z||^2 / 2 + a ||v|| + (c_j - 1) / 2 ||v||^2`` over ``lo <= v <= hi``
    for every row z of Z (:func:`box_row` with unit curvature; ``c`` (p,), one per row)."""
    p, T = Z.shape
    out = np.empty((p, T))
    ones = np.ones(T)
    v = np.empty(T)
    for j in range(p):
        box_row(Z[j], ones, a, c[j] - 1.0, lo[j], hi[j], v)
        out[j] = v
    return out


@njit(cache=True)
def _clipped_norm(g, lam, lo, hi):
    s = 0.0
    for t in range(g.shape[0]):
        a = 0.0 if lo[t] == 0.0 else lam * lo[t]
        b = 0.0 if hi[t] == 0.0 else lam * hi[t]
        x = min(max(g[t], a), b)
        s += x * x
    return np.sqrt(s)


@njit(cache=True)
def box_rows_conjugate(G, l1, lo, hi):
    """``sup_{lo_j <= w <= hi_j} G_j . w - l1 ||w||`` of every row j: the support function of
    the box at ``u = G_j - clip(G_j, lam lo_j, lam hi_j)``, ``lam`` the root of
    ``||clip(G_j, lam lo_j, lam hi_j)|| = l1`` (0 where ``||G_j|| <= l1`` and 0 is in the
    box; ``u = 0`` where no root exists)."""
    p, T = G.shape
    out = np.zeros(p)
    for j in range(p):
        g, lj, hj = G[j], lo[j], hi[j]
        zero_in = True
        for t in range(T):
            if lj[t] > 0.0 or hj[t] < 0.0:
                zero_in = False
        if zero_in and np.sqrt(np.sum(g * g)) <= l1:
            continue
        lam_lo, lam_hi = 0.0, 1.0
        found = False
        for _ in range(_BRACKET):
            if _clipped_norm(g, lam_hi, lj, hj) >= l1:
                found = True
                break
            lam_lo = lam_hi
            lam_hi *= 2.0
        if not found:
            continue
        for _ in range(_BISECT):
            mid = 0.5 * (lam_lo + lam_hi)
            if _clipped_norm(g, mid, lj, hj) < l1:
                lam_lo = mid
            else:
                lam_hi = mid
        s = 0.0
        for t in range(T):
            a = 0.0 if lj[t] == 0.0 else lam_hi * lj[t]
            b = 0.0 if hj[t] == 0.0 else lam_hi * hj[t]
            u = g[t] - min(max(g[t], a), b)
            if u > 0.0:
                s += u * hj[t]
            elif u < 0.0:
                s += u * lj[t]
        out[j] = s
    return out
