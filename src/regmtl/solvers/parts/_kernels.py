"""Numba kernels of the solvers: feature moments, Grams and block coordinate descent epochs
(the linear maps of the task-grouped design are in :mod:`regmtl.segments`). The kernels a
small fit of a convex row-separable penalty runs have NumPy twins
(:mod:`regmtl.solvers.parts.small`) that run in their place until numba is worth loading
(:mod:`regmtl._jit`).

Conventions (see :mod:`regmtl.taskdata`): flat per-observation arrays are grouped by task
(``indptr``); observation ``r`` of task ``t`` reads row ``r - offset[t]`` of the design (offset is 0
in the stacked layout, ``indptr[t]`` in the shared one). ``W`` is p x T.

Intercept updates act on a state ``S``: the residual ``y - f`` for the quadratic loss
(``loss == 0``), the scores ``f`` for the logistic loss (``loss == 1``).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from ...penalties.base import (
    CAPPED_L1_ROWS,
    CAPPED_ROWS,
    DIRTY_ROWS,
    MCP_ENTRYWISE,
    MCP_ROWS,
    POSITIVE_ENTRYWISE,
    POSITIVE_ROWS,
    ROWS,
    SCAD_ROWS,
)
from ...penalties.kernels import FAST, capped_l1_row
from . import small

QUADRATIC = 0
LOGISTIC = 1


@njit(cache=True, fastmath=FAST, inline="always")
def _sigmoid(z):
    if z >= 0.0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


# ----------------------------------------------------------------------------- moments
@njit(cache=True, fastmath=FAST, twin=small.column_moments)
def column_moments(X, m, ss):
    """Column means ``m`` and centered sums of squares ``ss`` of a dense matrix (two passes)."""
    n, p = X.shape
    for j in range(p):
        xs = X[:, j]
        acc = 0.0
        for k in range(n):
            acc += xs[k]
        mj = acc / n if n > 0 else 0.0
        acc = 0.0
        for k in range(n):
            x = xs[k] - mj
            acc += x * x
        m[j] = mj
        ss[j] = acc if acc > 1e-10 * mj * mj * n else 0.0


@njit(cache=True, fastmath=FAST, twin=small.moments_dense)
def moments_dense(X, c, indptr, offset, csum, center, features, xm, L):
    """For j in ``features``: ``xm[j, t]`` the c-weighted mean of column j over task t (0 unless
    ``center``) and ``L[j, t] = sum_{r in t} c_r (x_rj - xm_jt)^2``, set to exactly 0 when it
    is at rounding level (a column constant within the task)."""
    T = xm.shape[1]
    for t in range(T):
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        cs = c[a:b]
        tot = csum[t]
        for j in features:
            xs = X[a - o : b - o, j]
            m = 0.0
            if center and tot > 0.0:
                for k in range(b - a):
                    m += cs[k] * xs[k]
                m /= tot
            acc = 0.0
            for k in range(b - a):
                x = xs[k] - m
                acc += cs[k] * x * x
            xm[j, t] = m
            L[j, t] = acc if acc > 1e-10 * m * m * tot else 0.0


@njit(cache=True, fastmath=FAST)
def moments_sparse(data, indices, colptr, shared, task_of, c, indptr, csum, center, features,
                   xm, L, s1, s2):
    """:func:`moments_dense` for a CSC design (``s1``, ``s2``: buffers of length T)."""
    T = xm.shape[1]
    for j in features:
        for t in range(T):
            s1[t] = 0.0
            s2[t] = 0.0
        if shared:
            for t in range(T):
                o = indptr[t]
                for k in range(colptr[j], colptr[j + 1]):
                    w = c[indices[k] + o] * data[k]
                    s1[t] += w
                    s2[t] += w * data[k]
        else:
            for k in range(colptr[j], colptr[j + 1]):
                r = indices[k]
                t = task_of[r]
                w = c[r] * data[k]
                s1[t] += w
                s2[t] += w * data[k]
        for t in range(T):
            m = s1[t] / csum[t] if center and csum[t] > 0.0 else 0.0
            acc = s2[t] - m * s1[t]
            xm[j, t] = m
            L[j, t] = acc if acc > 1e-10 * m * m * csum[t] else 0.0


# ----------------------------------------------------------------------------- restricted maps
@njit(cache=True, fastmath=FAST, twin=small.gradient_dense)
def gradient_dense(X, indptr, offset, xm, u, features, G):
    """``G[i, t] = sum_{r in t} (x_rj - xm_jt) u_r`` for ``j = features[i]``."""
    T = G.shape[1]
    for t in range(T):
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        us = u[a:b]
        for i in range(features.shape[0]):
            j = features[i]
            m = xm[j, t]
            xs = X[a - o : b - o, j]
            acc = 0.0
            for k in range(b - a):
                acc += (xs[k] - m) * us[k]
            G[i, t] = acc


@njit(cache=True, fastmath=FAST)
def gradient_shared(X, xm, U2, features, G):
    """:func:`gradient_dense` for a shared design, the vector viewed as ``U2`` (n x T,
    column-major): ``G[i, t] = sum_k (x_kj - xm_jt) U2[k, t]``, features outermost and tasks
    four at a time, so that each column of X is read once."""
    n, T = X.shape[0], U2.shape[1]
    for i in range(features.shape[0]):
        j = features[i]
        xs = X[:, j]
        t = 0
        while t + 4 <= T:
            m0, m1, m2, m3 = xm[j, t], xm[j, t + 1], xm[j, t + 2], xm[j, t + 3]
            u0, u1, u2, u3 = U2[:, t], U2[:, t + 1], U2[:, t + 2], U2[:, t + 3]
            a0 = a1 = a2 = a3 = 0.0
            for k in range(n):
                x = xs[k]
                a0 += (x - m0) * u0[k]
                a1 += (x - m1) * u1[k]
                a2 += (x - m2) * u2[k]
                a3 += (x - m3) * u3[k]
            G[i, t] = a0
            G[i, t + 1] = a1
            G[i, t + 2] = a2
            G[i, t + 3] = a3
            t += 4
        while t < T:
            m0 = xm[j, t]
            u0 = U2[:, t]
            a0 = 0.0
            for k in range(n):
                a0 += (xs[k] - m0) * u0[k]
            G[i, t] = a0
            t += 1


@njit(cache=True, fastmath=FAST)
def gradient_sparse(data, indices, colptr, shared, task_of, indptr, xm, u, usum, features, G):
    """:func:`gradient_dense` for a CSC design (``usum``: per-task sums of u)."""
    T = G.shape[1]
    for i in range(features.shape[0]):
        j = features[i]
        for t in range(T):
            G[i, t] = -xm[j, t] * usum[t]
        if shared:
            for t in range(T):
                o = indptr[t]
                acc = 0.0
                for k in range(colptr[j], colptr[j + 1]):
                    acc += data[k] * u[indices[k] + o]
                G[i, t] += acc
        else:
            for k in range(colptr[j], colptr[j + 1]):
                r = indices[k]
                G[i, task_of[r]] += data[k] * u[r]


@njit(cache=True, fastmath=FAST, twin=small.residual_dense)
def residual_dense(X, indptr, offset, xm, z, bc, W, features, R):
    """``R_r = z_r - bc_t - sum_{j in features} (x_rj - xm_jt) W_jt`` (other rows of W are 0)."""
    T = W.shape[1]
    for t in range(T):
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        rs = R[a:b]
        for k in range(b - a):
            rs[k] = z[a + k] - bc[t]
        for j in features:
            w = W[j, t]
            if w != 0.0:
                m = xm[j, t]
                xs = X[a - o : b - o, j]
                for k in range(b - a):
                    rs[k] -= (xs[k] - m) * w


@njit(cache=True, fastmath=FAST)
def residual_sparse(data, indices, colptr, shared, task_of, indptr, xm, z, bc, W, features, R,
                    shift):
    """:func:`residual_dense` for a CSC design (``shift``: a buffer of length T)."""
    T = W.shape[1]
    for t in range(T):
        shift[t] = bc[t]
    for j in features:
        for t in range(T):
            shift[t] -= xm[j, t] * W[j, t]
    for t in range(T):
        for r in range(indptr[t], indptr[t + 1]):
            R[r] = z[r] - shift[t]
    for j in features:
        if shared:
            for t in range(T):
                w = W[j, t]
                if w != 0.0:
                    o = indptr[t]
                    for k in range(colptr[j], colptr[j + 1]):
                        R[indices[k] + o] -= data[k] * w
        else:
            for k in range(colptr[j], colptr[j + 1]):
                r = indices[k]
                w = W[j, task_of[r]]
                if w != 0.0:
                    R[r] -= data[k] * w


# ----------------------------------------------------------------------------- block prox
@njit(cache=True, fastmath=FAST)
def _weighted_group_radius(a, L, l1, l2):
    """Norm s > 0 of the minimizer of ``sum_t L_t/2 (w_t - a_t/L_t)^2 + l1 ||w|| + l2/2 ||w||^2``.

    The minimizer is ``w_t = a_t s / ((L_t + l2) s + l1)``, where s solves ``h(s) = 0`` with
    ``h(s) = psi(s)^{-1/2} - 1`` and ``psi(s) = sum_t a_t^2 / ((L_t + l2) s + l1)^2`` (requires
    ``||a|| > l1``). h is increasing and concave (a power mean of exponent -2 of affine
    functions), so Newton's method started at s = 0, where h < 0, increases monotonically to
    the root whatever the spread of the L_t; it is exact in one step when they are all equal.
    """
    T = a.shape[0]
    s = 0.0
    for _ in range(200):
        psi = 0.0
        dpsi = 0.0
        for t in range(T):
            if a[t] != 0.0:  # (ratios first: a_t and q of 1e-150 would square to 0)
                q = (L[t] + l2) * s + l1
                r2 = (a[t] / q) * (a[t] / q)
                psi += r2
                dpsi -= 2.0 * r2 * ((L[t] + l2) / q)
        if psi == 0.0:
            return s
        root = np.sqrt(psi)
        h = 1.0 / root - 1.0
        dh = -0.5 * dpsi / (psi * root)
        if h >= 0.0 or dh <= 0.0:
            return s
        step = -h / dh
        s += step
        if step <= 1e-15 * s:
            return s
    return s


@njit(cache=True, fastmath=FAST)
def _dirty_mu(a, L, l1, l2):
    """The mu > 0 with ``||min(|a_t| mu / (L_t + mu), l2)|| = l1`` (the left side increases
    from 0 to ``||min(|a_t|, l2)|| > l1``): bracketed Newton on the squared norm."""
    T = a.shape[0]
    lo, hi = 0.0, 1.0
    for _ in range(2100):  # bracket: grow hi until F(hi) >= l1
        f = 0.0
        for t in range(T):
            if L[t] > 0.0:
                v = min(abs(a[t]) * hi / (L[t] + hi), l2)
                f += v * v
        if f >= l1 * l1:
            break
        lo, hi = hi, 2.0 * hi
    mu = 0.5 * (lo + hi)
    for _ in range(200):
        f, df = 0.0, 0.0
        for t in range(T):
            if L[t] > 0.0:
                u = abs(a[t]) * mu / (L[t] + mu)
                if u < l2:
                    f += u * u
                    df += 2.0 * u * abs(a[t]) * L[t] / ((L[t] + mu) * (L[t] + mu))
                else:
                    f += l2 * l2
        h = f - l1 * l1
        if h > 0.0:
            hi = mu
        else:
            lo = mu
        new = mu - h / df if df > 0.0 else 0.5 * (lo + hi)
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        if abs(new - mu) <= 1e-15 * mu or hi - lo <= 1e-15 * hi:
            return new
        mu = new
    return mu


@njit(cache=True, fastmath=FAST, inline="always")
def _dirty_block(j, W, g, Lrow, l1, l2, delta):
    """The change of block j (into ``delta``) for the dirty penalty
    ``min_{p+q=w} l1 ||p|| + l2 ||q||_1`` (an infimal convolution, row-separable in W): minimize
    ``sum_t L_t/2 (w_t - a_t/L_t)^2 + Omega(w)``.
    Eliminating q leaves a group lasso with Huber losses; its KKT conditions give
    ``p_t = sign(a_t) min(|a_t| / (L_t + mu), l2 / mu)`` with mu from :func:`_dirty_mu`, then
    ``q_t = soft(a_t/L_t - p_t, l2/L_t)``."""
    T = W.shape[1]
    na = 0.0
    for t in range(T):
        a_t = Lrow[t] * W[j, t] + g[t] if Lrow[t] > 0.0 else 0.0
        delta[t] = a_t
        v = min(abs(a_t), l2)
        na += v * v
    mu = _dirty_mu(delta, Lrow, l1, l2) if np.sqrt(na) > l1 else np.inf
    for t in range(T):
        Lt = Lrow[t]
        if Lt == 0.0:
            delta[t] = -W[j, t]
            continue
        a_t = delta[t]
        if mu == np.inf:
            p = 0.0
        else:
            p = min(abs(a_t) / (Lt + mu), l2 / mu)
            p = p if a_t >= 0.0 else -p
        z = a_t / Lt - p
        thr = l2 / Lt
        q = z - thr if z > thr else (z + thr if z < -thr else 0.0)
        delta[t] = p + q - W[j, t]


# ----------------------------------------------------------------------------- nonconvex blocks
# Families of the nonconvex kinds: rho(s) of a magnitude s >= 0 (an entry's |x|, or a row norm).
MCP_FAMILY = 0
SCAD_FAMILY = 1
CAPPED_FAMILY = 2


@njit(cache=True, fastmath=FAST)
def magnitude_penalty(s, a, shape, family):
    """``rho(s)`` for ``s >= 0``: MCP ``a s - s^2 / (2 gamma)`` up to ``gamma a``, then
    ``gamma a^2 / 2``; SCAD ``a s`` up to ``a``, ``(2 gamma a s - s^2 - a^2) / (2 (gamma - 1))``
    up to ``gamma a``, then ``a^2 (gamma + 1) / 2``; capped-L1 ``a min(s, cap)``
    (``shape`` is gamma, or the cap)."""
    if family == MCP_FAMILY:
        if s <= shape * a:
            return a * s - s * s / (2.0 * shape)
        return 0.5 * shape * a * a
    if family == SCAD_FAMILY:
        if s <= a:
            return a * s
        if s <= shape * a:
            return (2.0 * shape * a * s - s * s - a * a) / (2.0 * (shape - 1.0))
        return 0.5 * a * a * (shape + 1.0)
    return a * min(s, shape)


@njit(cache=True, fastmath=FAST)
def magnitude_min(u, L, a, shape, family):
    """The exact ``argmin_{s >= 0} L/2 (s - u)^2 + rho(s)`` for ``u >= 0``, ``L > 0``.

    Where the problem is convex (MCP: ``L gamma > 1``; SCAD: ``L (gamma - 1) > 1``) the closed
    forms: MCP's firm thresholding ``0``, ``(u - a/L) / (1 - 1/(gamma L))``, ``u``; SCAD's
    three pieces ``soft(u, a/L)``, ``((gamma - 1) L u - gamma a) / ((gamma - 1) L - 1)``,
    ``u``. Otherwise (and always for capped-L1, concave beyond 0) the global minimizer is the
    better of the minimizers of its pieces: on a piece where the model is concave the minimum
    sits at an end, which the neighbouring piece's candidate covers; ties go to the smaller
    magnitude."""
    if family == MCP_FAMILY:
        ga = shape * a
        if L * shape > 1.0:
            if u <= a / L:
                return 0.0
            if u <= ga:
                return (u - a / L) / (1.0 - 1.0 / (shape * L))
            return u
        s0, s1 = 0.0, max(u, ga)
    elif family == SCAD_FAMILY:
        ga = shape * a
        if L * (shape - 1.0) > 1.0:
            if u <= a / L:
                return 0.0
            if u <= a + a / L:
                return u - a / L
            if u <= ga:
                return ((shape - 1.0) * L * u - ga) / ((shape - 1.0) * L - 1.0)
            return u
        s0, s1 = min(max(u - a / L, 0.0), a), max(u, ga)
    else:
        s0, s1 = min(max(u - a / L, 0.0), shape), max(u, shape)
    q0 = 0.5 * L * (s0 - u) * (s0 - u) + magnitude_penalty(s0, a, shape, family)
    q1 = 0.5 * L * (s1 - u) * (s1 - u) + magnitude_penalty(s1, a, shape, family)
    return s1 if q1 < q0 else s0


@njit(cache=True, fastmath=FAST)
def _nonconvex_rows(j, W, g, Lrow, a, shape, family, delta):
    """The row step of a penalty ``rho(||w||)``: minimize
    ``sum_t L_t/2 (w_t - z_t)^2 + rho(||w||)``, ``z_t = a_t / L_t``, ``a_t = L_t W_jt + g_t``
    (tasks without curvature stay at 0); the change goes into ``delta``.

    - All ``L_t`` equal: the minimizer is ``z`` scaled to the norm :func:`magnitude_min` gives.
    - Capped (concave beyond 0, exact for any ``L_t``): the better of the group lasso point
      (norm ``s`` from :func:`_weighted_group_radius`), when ``s <= cap``, and ``z`` itself,
      when ``||z|| >= cap`` (one of the two always exists: the group lasso point is shorter
      than ``z``).
    - MCP / SCAD with ``min_t L_t > kappa`` (``1 / gamma``; ``1 / (gamma - 1)``): the model
      is strongly convex (``rho(s) + kappa s^2 / 2`` is convex and nondecreasing), its unique
      stationary point ``w_t = a_t s / (L_t s + rho'(s))`` with ``s`` the root of
      ``sum_t a_t^2 / (L_t s + rho'(s))^2 = 1``: ``z`` when ``||z|| >= gamma a``, 0 when
      ``||a|| <= a``, else on the piece where ``rho'`` is affine, ``L_t s + rho'(s) =
      (L_t - kappa) s + c``, the weighted group radius with ``l2 = -kappa``.
    - Otherwise (curvature below ``kappa`` in some task) the row model is not convex: the
      step minimizes exactly the model with the curvature ``max_t L_t`` in every task, which
      majorizes it (a descent step with the same fixed points)."""
    T = W.shape[1]
    na = 0.0
    nz = 0.0
    lo, hi = np.inf, 0.0
    for t in range(T):
        Lt = Lrow[t]
        if Lt > 0.0:
            a_t = Lt * W[j, t] + g[t]
            delta[t] = a_t
            na += a_t * a_t
            nz += (a_t / Lt) * (a_t / Lt)
            lo = min(lo, Lt)
            hi = max(hi, Lt)
        else:
            delta[t] = 0.0
    na, nz = np.sqrt(na), np.sqrt(nz)
    if hi == 0.0 or na == 0.0:
        for t in range(T):
            delta[t] = -W[j, t]
        return
    if a <= 0.0:  # alpha = 0: no penalty, the model's minimizer z itself
        for t in range(T):
            delta[t] = (delta[t] / Lrow[t] if Lrow[t] > 0.0 else 0.0) - W[j, t]
        return
    if lo == hi:  # one curvature: z scaled along its own direction
        s = magnitude_min(nz, hi, a, shape, family)
        for t in range(T):
            delta[t] = (delta[t] / hi) * (s / nz) - W[j, t]
        return
    if family == CAPPED_FAMILY:
        sa = _weighted_group_radius(delta, Lrow, a, 0.0) if na > a else 0.0
        use_z = nz >= shape
        if use_z and sa <= shape:  # both exist: compare the model's values
            qa = a * sa
            for t in range(T):
                if Lrow[t] > 0.0:
                    d = delta[t] * sa / (Lrow[t] * sa + a) - delta[t] / Lrow[t]
                    qa += 0.5 * Lrow[t] * d * d
            use_z = a * shape < qa
        for t in range(T):
            if Lrow[t] == 0.0:
                new = 0.0
            elif use_z:
                new = delta[t] / Lrow[t]
            else:
                new = delta[t] * sa / (Lrow[t] * sa + a)
            delta[t] = new - W[j, t]
        return
    kappa = 1.0 / shape if family == MCP_FAMILY else 1.0 / (shape - 1.0)
    if lo > kappa:
        if nz >= shape * a:
            for t in range(T):
                delta[t] = (delta[t] / Lrow[t] if Lrow[t] > 0.0 else 0.0) - W[j, t]
            return
        if na <= a:
            for t in range(T):
                delta[t] = -W[j, t]
            return
        if family == MCP_FAMILY:
            l1, l2 = a, -kappa
            s = _weighted_group_radius(delta, Lrow, l1, l2)
        else:  # SCAD: the L1 piece (s <= a), else the affine piece of rho'
            l1, l2 = a, 0.0
            s = _weighted_group_radius(delta, Lrow, l1, l2)
            if s > a:
                l1, l2 = shape * a / (shape - 1.0), -kappa
                s = _weighted_group_radius(delta, Lrow, l1, l2)
        for t in range(T):
            new = delta[t] * s / ((Lrow[t] + l2) * s + l1) if Lrow[t] > 0.0 else 0.0
            delta[t] = new - W[j, t]
        return
    # curvature below kappa somewhere: the majorizing model of curvature hi
    nv = 0.0
    for t in range(T):
        v = W[j, t] + g[t] / hi if Lrow[t] > 0.0 else 0.0
        delta[t] = v
        nv += v * v
    nv = np.sqrt(nv)
    s = magnitude_min(nv, hi, a, shape, family) if nv > 0.0 else 0.0
    for t in range(T):
        delta[t] = (delta[t] * (s / nv) if nv > 0.0 else 0.0) - W[j, t]


@njit(cache=True, fastmath=FAST)
def _nonconvex_block(j, W, g, Lrow, a, shape, group, delta):
    """The exact block step of the nonconvex kinds (``a`` is alpha, ``shape`` gamma or the
    cap): entry by entry, :func:`magnitude_min` of ``|W_jt + g_t / L_jt|`` with the entry's
    sign; by rows, :func:`_nonconvex_rows`."""
    if group == CAPPED_L1_ROWS:
        T = W.shape[1]
        z = np.empty(T)
        for t in range(T):
            z[t] = W[j, t] + g[t] / Lrow[t] if Lrow[t] > 0.0 else 0.0
        capped_l1_row(z, Lrow, a, shape, delta)
        for t in range(T):
            delta[t] -= W[j, t]
        return
    family = (group - MCP_ENTRYWISE) // 2
    if group == MCP_ROWS or group == SCAD_ROWS or group == CAPPED_ROWS:
        _nonconvex_rows(j, W, g, Lrow, a, shape, family, delta)
        return
    T = W.shape[1]
    for t in range(T):
        Lt = Lrow[t]
        if Lt == 0.0:
            delta[t] = -W[j, t]
            continue
        z = W[j, t] + g[t] / Lt
        s = magnitude_min(abs(z), Lt, a, shape, family)
        delta[t] = (s if z >= 0.0 else -s) - W[j, t]


@njit(cache=True, fastmath=FAST, inline="always")
def _block_update(j, W, g, Lrow, l1, l2, group, delta):
    """Minimize the separable quadratic model of block j; write the change into ``delta``.

    With ``a_t = L_jt W_jt + g_t`` the model is
    ``sum_t L_jt/2 (w_t - a_t/L_jt)^2 + penalty(w)``: exact block minimization for the quadratic
    loss (its Hessian in one row of W is diagonal, tasks having their own rows), a majorization
    step for the logistic loss. ``group`` is the penalty's block kind
    (:class:`~regmtl.penalties.base.BlockStep`), one branch each, in the order of
    :mod:`~regmtl.solvers.certificates.screening`'s rules: ``DIRTY_ROWS``, ``l2`` the weight of the
    entrywise part instead of a ridge (:func:`_dirty_block`); ``ROWS`` and ``POSITIVE_ROWS``, the
    weighted group prox (:func:`_weighted_group_radius`); ``ENTRYWISE`` and ``POSITIVE_ENTRYWISE``,
    soft-thresholding. Under the sign constraint ``w >= 0`` the model's linear term ``-a.w`` is at
    least ``-max(a, 0).w``, with equality at the unconstrained minimizer for ``max(a, 0)``, which is
    ``>= 0``: the positive kinds are the plain ones on ``max(a, 0)`` (a row's entries with ``a_t <=
    0`` stay at 0, an entry below ``thr`` goes to 0). The nonconvex kinds (MCP, SCAD, capped-L1 of
    entries or row norms; ``l1`` is alpha, ``l2`` their shape) take the exact minimizer of the same
    model plus the penalty (:func:`_nonconvex_block`; for the logistic loss it is the quadratic
    model of proximal Newton). Returns the largest absolute change.
    """
    T = W.shape[1]
    if group == DIRTY_ROWS:
        _dirty_block(j, W, g, Lrow, l1, l2, delta)
    elif group >= MCP_ENTRYWISE:
        _nonconvex_block(j, W, g, Lrow, l1, l2, group, delta)
    elif group == ROWS or group == POSITIVE_ROWS:
        positive = group == POSITIVE_ROWS
        na = 0.0
        same = True
        for t in range(T):
            # no curvature: the data term ignores this coefficient, which stays at 0
            a_t = Lrow[t] * W[j, t] + g[t] if Lrow[t] > 0.0 else 0.0
            if positive and a_t < 0.0:
                a_t = 0.0
            delta[t] = a_t
            na += a_t * a_t
            if Lrow[t] != Lrow[0]:
                same = False
        na = np.sqrt(na)
        if na <= l1 or na == 0.0:
            for t in range(T):
                delta[t] = -W[j, t]
        elif l1 == 0.0:
            for t in range(T):
                den = Lrow[t] + l2
                delta[t] = (delta[t] / den if den > 0.0 else 0.0) - W[j, t]
        else:
            if same:
                s = (na - l1) / (Lrow[0] + l2)
            else:
                s = _weighted_group_radius(delta, Lrow, l1, l2)
            for t in range(T):
                delta[t] = delta[t] * s / ((Lrow[t] + l2) * s + l1) - W[j, t]
    else:
        for t in range(T):
            Lt = Lrow[t]
            if Lt == 0.0:
                delta[t] = -W[j, t]
                continue
            z = W[j, t] + g[t] / Lt
            thr = l1 / Lt
            if z > thr:
                new = (z - thr) / (1.0 + l2 / Lt)
            elif z < -thr and group != POSITIVE_ENTRYWISE:
                new = (z + thr) / (1.0 + l2 / Lt)
            else:
                new = 0.0
            delta[t] = new - W[j, t]
    change = 0.0
    for t in range(T):
        if delta[t] != 0.0:
            W[j, t] += delta[t]
            a = abs(delta[t])
            if a > change:
                change = a
    return change


# ----------------------------------------------------------------------------- BCD epochs
# Epochs minimize a weighted least-squares problem  sum_r c_r (z_r - f_r)^2 / 2 + penalty,
# keeping the residual R = z - f. The squared loss is such a problem; the logistic loss is
# solved through a sequence of them (proximal Newton, see bcd.py).
# Centered coordinates: with intercepts, scores are written f_r = (x_r - xm_t) . w_t + b'_t,
# an exact reparametrization (b' = b + xm_t . w_t) that decouples W from the intercepts and keeps
# the coordinate-wise problems well conditioned, as centering does, without copying X.


@njit(cache=True, fastmath=FAST, twin=small.bcd_epoch_dense)
def bcd_epoch_dense(X, c, ct, uniform, indptr, offset, xm, R, W, L, l1, l2, group, features,
                    g, delta):
    """One pass of block coordinate descent over ``features`` (dense design, either layout).

    ``xm`` (p x T) are the centering means (zeros without intercepts). ``uniform``: every row of
    task t has weight ``ct[t]`` (no sample weights, no missing labels), which saves one
    multiplication per entry. Returns the largest coefficient change.
    """
    T = W.shape[1]
    max_change = 0.0
    for j in features:
        for t in range(T):
            a, b, o = indptr[t], indptr[t + 1], offset[t]
            m = xm[j, t]
            xs, rs = X[a - o : b - o, j], R[a:b]
            acc = 0.0
            if uniform:
                for k in range(b - a):
                    acc += (xs[k] - m) * rs[k]
                acc *= ct[t]
            else:
                cs = c[a:b]
                for k in range(b - a):
                    acc += (xs[k] - m) * cs[k] * rs[k]
            g[t] = acc
        ch = _block_update(j, W, g, L[j], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        if ch > 0.0:
            for t in range(T):
                d = delta[t]
                if d != 0.0:
                    a, b, o = indptr[t], indptr[t + 1], offset[t]
                    m = xm[j, t]
                    xs, rs = X[a - o : b - o, j], R[a:b]
                    for k in range(b - a):
                        rs[k] -= (xs[k] - m) * d
    return max_change


@njit(cache=True, fastmath=FAST)
def _shared_gradient(X, j, ct, xm, R2, g):
    """``g[t] = ct[t] sum_k (x_kj - xm_jt) R2[k, t]``, tasks four at a time."""
    n, T = X.shape[0], R2.shape[1]
    xs = X[:, j]
    t = 0
    while t + 4 <= T:
        m0, m1, m2, m3 = xm[j, t], xm[j, t + 1], xm[j, t + 2], xm[j, t + 3]
        r0, r1, r2, r3 = R2[:, t], R2[:, t + 1], R2[:, t + 2], R2[:, t + 3]
        a0 = a1 = a2 = a3 = 0.0
        for k in range(n):
            x = xs[k]
            a0 += (x - m0) * r0[k]
            a1 += (x - m1) * r1[k]
            a2 += (x - m2) * r2[k]
            a3 += (x - m3) * r3[k]
        g[t] = a0 * ct[t]
        g[t + 1] = a1 * ct[t + 1]
        g[t + 2] = a2 * ct[t + 2]
        g[t + 3] = a3 * ct[t + 3]
        t += 4
    while t < T:
        m0 = xm[j, t]
        r0 = R2[:, t]
        a0 = 0.0
        for k in range(n):
            a0 += (xs[k] - m0) * r0[k]
        g[t] = a0 * ct[t]
        t += 1


@njit(cache=True, fastmath=FAST)
def bcd_epoch_shared_fused(X, ct, xm, R2, W, L, l1, l2, group, features, g, delta):
    """One BCD epoch over ``features`` on a shared dense design, each residual update fused
    with the next feature's gradient.

    Task t's residual only moves by feature j's change ``d_t``, and the next feature's
    gradient in task t only reads that task's residual, so one pass over ``R2[:, t]`` does
    both: ``R_kt -= (x_kj - xm_jt) d_t``, then ``g_t += (x_kj' - xm_j't) R_kt``. The residual
    (n x T, larger than L1 for the shapes that matter) then crosses the cache once per changed
    feature instead of twice (the unfused epoch is the reference of its test).
    """
    n = X.shape[0]
    T = W.shape[1]
    nf = features.shape[0]
    max_change = 0.0
    if nf == 0:
        return max_change
    _shared_gradient(X, features[0], ct, xm, R2, g)
    for i in range(nf):
        j = features[i]
        ch = _block_update(j, W, g, L[j], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        last = i + 1 == nf
        if ch == 0.0:
            if not last:
                _shared_gradient(X, features[i + 1], ct, xm, R2, g)
            continue
        jn = j if last else features[i + 1]  # (last: the gradient computed is not used)
        xs, ys = X[:, j], X[:, jn]
        t = 0
        while t + 4 <= T:
            d0, d1, d2, d3 = delta[t], delta[t + 1], delta[t + 2], delta[t + 3]
            m0, m1, m2, m3 = xm[j, t], xm[j, t + 1], xm[j, t + 2], xm[j, t + 3]
            q0, q1, q2, q3 = xm[jn, t], xm[jn, t + 1], xm[jn, t + 2], xm[jn, t + 3]
            r0, r1, r2, r3 = R2[:, t], R2[:, t + 1], R2[:, t + 2], R2[:, t + 3]
            a0 = a1 = a2 = a3 = 0.0
            for k in range(n):
                x = xs[k]
                y = ys[k]
                v0 = r0[k] - (x - m0) * d0
                v1 = r1[k] - (x - m1) * d1
                v2 = r2[k] - (x - m2) * d2
                v3 = r3[k] - (x - m3) * d3
                r0[k] = v0
                r1[k] = v1
                r2[k] = v2
                r3[k] = v3
                a0 += (y - q0) * v0
                a1 += (y - q1) * v1
                a2 += (y - q2) * v2
                a3 += (y - q3) * v3
            g[t] = a0 * ct[t]
            g[t + 1] = a1 * ct[t + 1]
            g[t + 2] = a2 * ct[t + 2]
            g[t + 3] = a3 * ct[t + 3]
            t += 4
        while t < T:
            d0, m0, q0 = delta[t], xm[j, t], xm[jn, t]
            r0 = R2[:, t]
            a0 = 0.0
            for k in range(n):
                v0 = r0[k] - (xs[k] - m0) * d0
                r0[k] = v0
                a0 += (ys[k] - q0) * v0
            g[t] = a0 * ct[t]
            t += 1
    return max_change


@njit(cache=True, fastmath=FAST)
def bcd_epoch_sparse(data, indices, colptr, shared, task_of, c, indptr, xm, R, W, L, l1, l2,
                     group, features, g, delta, shift):
    """One pass of block coordinate descent over ``features`` for a CSC design, either layout.

    Centering stays sparse: a change ``d`` of ``W[j, t]`` moves the residual of task t by
    ``-x_rj d`` on the stored entries and by ``+xm_jt d`` on every row, kept in ``shift[t]`` and
    folded into R at the end. The gradient needs no correction term because the weighted
    residual of each task sums to zero (intercepts are optimal when an epoch starts).
    """
    T = W.shape[1]
    for t in range(T):
        shift[t] = 0.0
    max_change = 0.0
    for j in features:
        k0, k1 = colptr[j], colptr[j + 1]
        if shared:
            for t in range(T):
                o = indptr[t]
                sh = shift[t]
                acc = 0.0
                for k in range(k0, k1):
                    r = indices[k] + o
                    acc += data[k] * c[r] * (R[r] + sh)
                g[t] = acc
        else:
            for t in range(T):
                g[t] = 0.0
            for k in range(k0, k1):
                r = indices[k]
                t = task_of[r]
                g[t] += data[k] * c[r] * (R[r] + shift[t])
        ch = _block_update(j, W, g, L[j], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        if ch > 0.0:
            for t in range(T):
                shift[t] += xm[j, t] * delta[t]
            if shared:
                for t in range(T):
                    d = delta[t]
                    if d != 0.0:
                        o = indptr[t]
                        for k in range(k0, k1):
                            R[indices[k] + o] -= data[k] * d
            else:
                for k in range(k0, k1):
                    r = indices[k]
                    d = delta[task_of[r]]
                    if d != 0.0:
                        R[r] -= data[k] * d
    for t in range(T):
        if shift[t] != 0.0:
            for r in range(indptr[t], indptr[t + 1]):
                R[r] += shift[t]
    return max_change


@njit(cache=True, fastmath=FAST, twin=small.bcd_epoch_gram)
def bcd_epoch_gram(Q, Et, ct, W, L, l1, l2, group, g, delta):
    """One pass of block coordinate descent in Gram form, over every row of the local ``W``.

    ``Q`` (k x k) is the centered Gram matrix of the features, ``Et`` (T x k) holds
    ``X_c^T R`` per task (unweighted); task t's rows all weigh ``ct[t]``, so the negative
    gradient of block i is ``ct[t] * Et[t, i]`` and a change ``d_t`` of ``W[i, t]`` moves
    ``Et[t]`` by ``-d_t Q[i]``: O(k T) per changed block, independent of the sample count.
    """
    k, T = W.shape
    max_change = 0.0
    for i in range(k):
        for t in range(T):
            g[t] = ct[t] * Et[t, i]
        ch = _block_update(i, W, g, L[i], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        if ch > 0.0:
            qi = Q[i]
            for t in range(T):
                d = delta[t]
                if d != 0.0:
                    e = Et[t]
                    for m in range(k):
                        e[m] -= qi[m] * d
    return max_change


# ----------------------------------------------------------------------------- intercepts
@njit(cache=True, fastmath=FAST)
def _logistic_slope(y, c, S, a, b, delta):
    """``(g, h)`` of a task's logistic loss in its intercept at the shift ``delta``: minus the
    derivative ``g = sum c y sigmoid(-y (S + delta))`` and the curvature ``h = sum c s (1 - s)``."""
    g = 0.0
    h = 0.0
    for r in range(a, b):
        s = _sigmoid(-y[r] * (S[r] + delta))
        g += c[r] * y[r] * s
        h += c[r] * s * (1.0 - s)
    return g, h


@njit(cache=True, fastmath=FAST, twin=small.update_intercepts)
def update_intercepts(y, c, indptr, S, b, loss, max_newton, rtol):
    """Minimize the data term over each task's intercept, W fixed (S and b updated in place).

    Quadratic: one exact step. Logistic: Newton steps on the task's shift ``delta`` of the
    scores, safeguarded by a bracket of the minimizer from the derivative's signs (a step that
    leaves it is replaced by its midpoint; towards a side not bracketed yet, steps at most
    double the shift): one pass over the task's rows per step and no loss evaluations, until
    the derivative is below ``rtol`` times the task's total weight (then a last Newton step,
    exact to rounding there, takes it down to rounding level), or ``max_newton`` steps; the
    scores move once, by the final shift.
    """
    T = indptr.shape[0] - 1
    for t in range(T):
        a, e = indptr[t], indptr[t + 1]
        tot = 0.0
        for r in range(a, e):
            tot += c[r]
        if loss == QUADRATIC:
            num = 0.0
            for r in range(a, e):
                num += c[r] * S[r]
            d = num / tot
            if d != 0.0:
                for r in range(a, e):
                    S[r] -= d
                b[t] += d
            continue
        delta, lo, hi = 0.0, -np.inf, np.inf
        for _ in range(max_newton):
            grad, hess = _logistic_slope(y, c, S, a, e, delta)
            if grad > 0.0:  # the minimizer lies above delta
                lo = delta
            else:
                hi = delta
            if abs(grad) <= rtol * tot:
                # converged: a last, tiny Newton step (its quadratic model is exact to rounding
                # there) takes the derivative from up to rtol * tot down to rounding level;
                # without it the duality gap is floored near rtol * |scores| (seen: a relative
                # gap stuck at 4e-14 for 200000 epochs of BCD on a sparse design)
                if hess > 0.0 and abs(grad / hess) <= 1e-6:
                    delta += grad / hess
                break
            nxt = delta + grad / hess if hess > 0.0 else np.nan
            span = max(1.0, abs(delta))  # towards an open side, at most doubling
            if grad > 0.0 and hi == np.inf and not nxt <= delta + span:
                nxt = delta + span
            elif grad <= 0.0 and lo == -np.inf and not nxt >= delta - span:
                nxt = delta - span
            if not (lo < nxt < hi):  # outside the bracket (or no curvature): its midpoint
                nxt = 0.5 * (lo + hi)
            if nxt == delta:  # the bracket is down to one float
                break
            delta = nxt
        if delta != 0.0:
            for r in range(a, e):
                S[r] += delta
            b[t] += delta


# ----------------------------------------------------------------------------- active-set Grams
@njit(cache=True, fastmath=FAST, twin=small.active_gram)
def active_gram(XA, c, indptr, offset, xm, H):
    """``H[t] = sum_{r in t} c_r (x_rA - xm_t)(x_rA - xm_t)^T`` for the k columns of ``XA``
    (``xm`` k x T); ``H`` (T, k, k) is filled, both triangles."""
    T, k = H.shape[0], H.shape[1]
    v = np.empty(k)
    for t in range(T):
        o = offset[t]
        for r in range(indptr[t], indptr[t + 1]):
            cr = c[r]
            if cr == 0.0:
                continue
            for i in range(k):
                v[i] = XA[r - o, i] - xm[i, t]
            for i in range(k):
                a = cr * v[i]
                for j in range(i + 1):
                    H[t, i, j] += a * v[j]
        for i in range(k):
            for j in range(i):
                H[t, j, i] = H[t, i, j]


@njit(cache=True, fastmath=FAST, twin=small.bcd_epoch_task_gram)
def bcd_epoch_task_gram(Qs, Et, W, L, l1, l2, group, g, delta):
    """:func:`bcd_epoch_gram` with one Gram per task: ``Qs[t]`` (k x k) holds task t's
    weighted, centered Gram, ``Et[t]`` (k) minus the gradient of its data term; a change
    ``d_t`` of ``W[i, t]`` moves ``Et[t]`` by ``-d_t Qs[t, i]``: O(k T) per changed block."""
    k, T = W.shape
    max_change = 0.0
    for i in range(k):
        for t in range(T):
            g[t] = Et[t, i]
        ch = _block_update(i, W, g, L[i], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        if ch > 0.0:
            for t in range(T):
                d = delta[t]
                if d != 0.0:
                    e = Et[t]
                    qi = Qs[t, i]
                    for m in range(k):
                        e[m] -= qi[m] * d
    return max_change
