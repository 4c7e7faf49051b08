r"""NumPy twins of the dense solver kernels, for the first small fits of a process.

A fresh process pays numba's import and type registries (0.3-0.6 s) on its first compiled
call, and each further kernel a few milliseconds, while a small problem (hundreds of rows, tens
of features) is solved in a few milliseconds of NumPy. Each function here computes what the
kernel of :mod:`regmtl.solvers._kernels` of the same name computes, on the same buffers
(in place where the kernel writes), vectorized over a task's rows or over the tasks, so that
the solvers run unchanged -- the same iterates up to rounding, the same duality gap and the
same stopping test. :mod:`regmtl._jit` calls a twin instead of its kernel while the process
has spent less than ``regmtl._jit.rent_seconds`` in twins and no kernel has been compiled
(rent the NumPy path until it has cost what loading numba costs, then buy: at most twice the
better choice made in hindsight). A twin returns ``NotImplemented`` for what it does not
cover (a nonconvex or dirty block kind, many tasks or features); the kernel runs then.

Centered coordinates as in the kernels: ``x_rj - xm_jt`` for row r of task t, rows of task t
``indptr[t]:indptr[t+1]``, read at design row ``r - offset[t]``.
"""

from __future__ import annotations

import math

import numpy as np

from ..penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS

__all__ = ["MAX_FEATURES", "MAX_TASKS", "active_gram", "bcd_epoch_dense", "bcd_epoch_gram",
           "column_moments", "gradient_dense", "moments_dense", "residual_dense",
           "update_intercepts"]

#: the most tasks and features an epoch loops over in Python (beyond, the kernel runs)
MAX_TASKS = 64
MAX_FEATURES = 512

QUADRATIC = 0


def _rows(indptr: np.ndarray, offset: np.ndarray, n_rows: int):
    """``(task_of, design rows)`` of the flat rows; rows None where they are ``0..n-1``."""
    counts = np.diff(indptr)
    task_of = np.repeat(np.arange(len(counts)), counts)
    if not np.any(offset):
        return task_of, None
    return task_of, np.arange(n_rows) - np.repeat(np.asarray(offset), counts)


def _task_blocks(indptr: np.ndarray, offset: np.ndarray):
    """``(t, rows, design rows)`` of each task: its slice of the flat rows and of the design
    (the design's rows start ``offset[t]`` earlier where tasks share it)."""
    for t in range(len(indptr) - 1):
        a, b, o = int(indptr[t]), int(indptr[t + 1]), int(offset[t])
        yield t, slice(a, b), slice(a - o, b - o)


def moments_dense(X, c, indptr, offset, csum, center, features, xm, L):
    """:func:`regmtl.solvers._kernels.moments_dense`."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    feats = np.asarray(features)
    for t, rows, xrows in _task_blocks(indptr, offset):
        cs, tot = c[rows], csum[t]
        Xt = X[xrows][:, feats]
        m = (cs @ Xt) / tot if center and tot > 0.0 else np.zeros(len(feats))
        acc = cs @ ((Xt - m) ** 2)
        xm[feats, t] = m
        L[feats, t] = np.where(acc > 1e-10 * m * m * tot, acc, 0.0)
    return None


def column_moments(X, m, ss):
    """:func:`regmtl.solvers._kernels.column_moments`."""
    n = X.shape[0]
    m[:] = X.mean(axis=0) if n > 0 else 0.0
    acc = ((X - m) ** 2).sum(axis=0)
    ss[:] = np.where(acc > 1e-10 * m * m * n, acc, 0.0)
    return None


def gradient_dense(X, indptr, offset, xm, u, features, G):
    """:func:`regmtl.solvers._kernels.gradient_dense`."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    feats = np.asarray(features)
    for t, rows, xrows in _task_blocks(indptr, offset):
        G[:, t] = (X[xrows][:, feats] - xm[feats, t]).T @ u[rows]
    return None


def residual_dense(X, indptr, offset, xm, z, bc, W, features, R):
    """:func:`regmtl.solvers._kernels.residual_dense`."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    feats = np.asarray(features)
    for t, rows, xrows in _task_blocks(indptr, offset):
        R[rows] = z[rows] - bc[t]
        if len(feats):
            R[rows] -= (X[xrows][:, feats] - xm[feats, t]) @ W[feats, t]
    return None


def active_gram(XA, c, indptr, offset, xm, H):
    """:func:`regmtl.solvers._kernels.active_gram` (``H`` accumulated, both triangles)."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    for t, rows, xrows in _task_blocks(indptr, offset):
        V = XA[xrows] - xm[:, t]
        H[t] += (V.T * c[rows]) @ V
    return None


def _radius(a: list, L: list, l1: float, l2: float) -> float:
    """:func:`regmtl.solvers._kernels._weighted_group_radius` on the nonzero ``a`` (Newton),
    in Python floats: a few tasks, where NumPy's per-call cost would dominate."""
    pairs = [(at, Lt + l2) for at, Lt in zip(a, L, strict=True)]
    # started at the root for every L_t at their largest, where h <= 0 still (psi >= 1 there):
    # Newton increases monotonically to the same root as from 0, in fewer steps
    s = max(0.0, (math.sqrt(sum(at * at for at, _ in pairs)) - l1) / max(Lt for _, Lt in pairs))
    for _ in range(200):
        psi = dpsi = 0.0
        for at, Lt in pairs:
            q = Lt * s + l1
            r2 = (at / q) * (at / q)
            psi += r2
            dpsi -= 2.0 * r2 * (Lt / q)
        if psi == 0.0:
            return s
        root = math.sqrt(psi)
        h = 1.0 / root - 1.0
        dh = -0.5 * dpsi / (psi * root)
        if h >= 0.0 or dh <= 0.0:
            return s
        step = -h / dh
        s += step
        if step <= 1e-15 * s:
            return s
    return s


def _block_delta(w: list, g: list, Lrow: list, l1: float, l2: float, group: int) -> list:
    """The change of row ``w`` that :func:`regmtl.solvers._kernels._block_update` makes, in
    Python floats (a few tasks: NumPy's per-call cost would dominate)."""
    T = len(w)
    if group in (ROWS, POSITIVE_ROWS):
        a = [Lt * wt + gt if Lt > 0.0 else 0.0 for wt, gt, Lt in zip(w, g, Lrow, strict=True)]
        if group == POSITIVE_ROWS:
            a = [max(at, 0.0) for at in a]
        na = math.sqrt(sum(at * at for at in a))
        if na <= l1 or na == 0.0:
            return [-wt for wt in w]
        if l1 == 0.0:
            return [(at / (Lt + l2) if Lt + l2 > 0.0 else 0.0) - wt
                    for at, Lt, wt in zip(a, Lrow, w, strict=True)]
        if all(Lt == Lrow[0] for Lt in Lrow):
            s = (na - l1) / (Lrow[0] + l2)
        else:
            nz = [t for t in range(T) if a[t] != 0.0]
            s = _radius([a[t] for t in nz], [Lrow[t] for t in nz], l1, l2)
        return [at * s / ((Lt + l2) * s + l1) - wt for at, Lt, wt in zip(a, Lrow, w, strict=True)]
    out = []
    for wt, gt, Lt in zip(w, g, Lrow, strict=True):
        if Lt == 0.0:
            out.append(-wt)
            continue
        z = wt + gt / Lt
        thr = l1 / Lt
        if z > thr:
            new = (z - thr) / (1.0 + l2 / Lt)
        elif z < -thr and group != POSITIVE_ENTRYWISE:
            new = (z + thr) / (1.0 + l2 / Lt)
        else:
            new = 0.0
        out.append(new - wt)
    return out


def _convex_kind(group: int) -> bool:
    return group in (ENTRYWISE, ROWS, POSITIVE_ENTRYWISE, POSITIVE_ROWS)


def bcd_epoch_dense(X, c, ct, uniform, indptr, offset, xm, R, W, L, l1, l2, group, features,
                    g, delta):
    """:func:`regmtl.solvers._kernels.bcd_epoch_dense` for the convex row-separable kinds
    (entrywise, rows, and their sign-constrained versions)."""
    T = W.shape[1]
    if not _convex_kind(group) or T > MAX_TASKS or len(features) > MAX_FEATURES:
        return NotImplemented
    task_of, rows = _rows(indptr, offset, len(R))
    feats = np.asarray(features)
    Xf = X[:, feats] if rows is None else X[np.ix_(rows, feats)]
    Xc = Xf - xm[feats][:, task_of].T  # centered columns, N x k
    starts = indptr[:-1]
    segments = bool(np.all(np.diff(indptr) > 0))
    l1, l2, max_change = float(l1), float(l2), 0.0
    for i, j in enumerate(feats.tolist()):
        xc = Xc[:, i]
        prod = xc * R if uniform else xc * c * R
        sums = np.add.reduceat(prod, starts) if segments else np.bincount(
            task_of, weights=prod, minlength=T)
        if uniform:
            sums = sums * ct
        g[:] = sums
        d = _block_delta(W[j].tolist(), sums.tolist(), L[j].tolist(), l1, l2, group)
        change = max((abs(v) for v in d), default=0.0)
        delta[:] = d
        if change > 0.0:
            W[j] += delta
            R -= xc * delta[task_of]
            max_change = max(max_change, change)
    return max_change


def bcd_epoch_gram(Q, Et, ct, W, L, l1, l2, group, g, delta):
    """:func:`regmtl.solvers._kernels.bcd_epoch_gram` for the convex row-separable kinds."""
    k, T = W.shape
    if not _convex_kind(group) or T > MAX_TASKS or k > MAX_FEATURES:
        return NotImplemented
    l1, l2, max_change = float(l1), float(l2), 0.0
    for i in range(k):
        g[:] = ct * Et[:, i]
        d = _block_delta(W[i].tolist(), g.tolist(), L[i].tolist(), l1, l2, group)
        change = max((abs(v) for v in d), default=0.0)
        delta[:] = d
        if change > 0.0:
            W[i] += delta
            Et -= np.outer(delta, Q[i])
            max_change = max(max_change, change)
    return max_change


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def update_intercepts(y, c, indptr, S, b, loss, max_newton, rtol):
    """:func:`regmtl.solvers._kernels.update_intercepts`: the exact step of the squared loss,
    the safeguarded Newton steps of the logistic loss, task by task."""
    T = len(indptr) - 1
    if T > MAX_TASKS:
        return NotImplemented
    for t in range(T):
        a, e = indptr[t], indptr[t + 1]
        cs, Ss = c[a:e], S[a:e]
        tot = cs.sum()
        if loss == QUADRATIC:
            d = (cs @ Ss) / tot
            if d != 0.0:
                Ss -= d
                b[t] += d
            continue
        ys = y[a:e]
        delta, lo, hi = 0.0, -np.inf, np.inf
        for _ in range(max_newton):
            s = _sigmoid(-ys * (Ss + delta))
            grad = float(cs @ (ys * s))
            hess = float(cs @ (s * (1.0 - s)))
            if grad > 0.0:
                lo = delta
            else:
                hi = delta
            if abs(grad) <= rtol * tot:
                if hess > 0.0 and abs(grad / hess) <= 1e-6:
                    delta += grad / hess
                break
            nxt = delta + grad / hess if hess > 0.0 else np.nan
            span = max(1.0, abs(delta))
            if grad > 0.0 and hi == np.inf and not nxt <= delta + span:
                nxt = delta + span
            elif grad <= 0.0 and lo == -np.inf and not nxt >= delta - span:
                nxt = delta - span
            if not (lo < nxt < hi):
                nxt = 0.5 * (lo + hi)
            if nxt == delta:
                break
            delta = nxt
        if delta != 0.0:
            Ss += delta
            b[t] += delta
    return None
