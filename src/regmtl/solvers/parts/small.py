r"""NumPy twins of the dense solver kernels, for the first small fits of a process.

A fresh process pays numba's import and type registries (0.3-0.6 s) on its first compiled
call, and each further kernel a few milliseconds, while a small problem (hundreds of rows, tens
of features) is solved in a few milliseconds of NumPy. Each function here computes what the
kernel of :mod:`regmtl.solvers.parts._kernels` of the same name computes, on the same buffers
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

from ...penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS

__all__ = ["MAX_FEATURES", "MAX_TASKS", "active_gram", "bcd_epoch_dense", "bcd_epoch_gram",
           "bcd_epoch_task_gram", "block_matvec_columns", "column_moments", "gradient_dense",
           "moments_dense", "residual_dense", "update_intercepts"]

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
    """:func:`regmtl.solvers.parts._kernels.moments_dense`."""
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


#: numbers of the centered copy :func:`column_moments` forms at a time (a block of columns
#: that stays in cache: a whole centered copy of a fresh 400 x 4000 design cost 32 ms of page
#: faults, the blocks 4 ms)
CHUNK = 1 << 15


def column_moments(X, m, ss):
    """:func:`regmtl.solvers.parts._kernels.column_moments`, a block of columns at a time."""
    n, p = X.shape
    m[:] = X.mean(axis=0) if n > 0 else 0.0
    step = max(1, CHUNK // max(n, 1))
    for j in range(0, p, step):
        D = X[:, j:j + step] - m[j:j + step]
        acc = np.einsum("ij,ij->j", D, D)
        mj = m[j:j + step]
        ss[j:j + step] = np.where(acc > 1e-10 * mj * mj * n, acc, 0.0)
    return None


def gradient_dense(X, indptr, offset, xm, u, features, G):
    """:func:`regmtl.solvers.parts._kernels.gradient_dense`."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    feats = np.asarray(features)
    for t, rows, xrows in _task_blocks(indptr, offset):
        G[:, t] = (X[xrows][:, feats] - xm[feats, t]).T @ u[rows]
    return None


def residual_dense(X, indptr, offset, xm, z, bc, W, features, R):
    """:func:`regmtl.solvers.parts._kernels.residual_dense`."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    feats = np.asarray(features)
    for t, rows, xrows in _task_blocks(indptr, offset):
        R[rows] = z[rows] - bc[t]
        if len(feats):
            R[rows] -= (X[xrows][:, feats] - xm[feats, t]) @ W[feats, t]
    return None


def active_gram(XA, c, indptr, offset, xm, H):
    """:func:`regmtl.solvers.parts._kernels.active_gram` (``H`` accumulated, both triangles)."""
    if len(indptr) - 1 > MAX_TASKS:
        return NotImplemented
    for t, rows, xrows in _task_blocks(indptr, offset):
        V = XA[xrows] - xm[:, t]
        H[t] += (V.T * c[rows]) @ V
    return None


def block_matvec_columns(H, W, out):
    """:func:`regmtl.solvers.parts.quadratic.block_matvec_columns`: ``out[:, t] = H[t] @ W[:, t]``,
    one batched product."""
    out[...] = np.matmul(H, W.T[:, :, None])[:, :, 0].T


def _radius(pairs: list, l1: float, s: float) -> float:
    """:func:`regmtl.solvers.parts._kernels._weighted_group_radius`: Newton on
    ``h(s) = psi(s)^{-1/2} - 1`` over ``pairs`` of ``(a_t, L_t + l2)``, in Python floats (a
    few tasks, where NumPy's per-call cost would dominate), from a start ``s`` where
    ``h(s) <= 0``. h is increasing and concave, so Newton increases monotonically from there
    to the kernel's root; it stops once a step is below :data:`RADIUS_STEP` of ``s``, where
    the next would be of the order of its square (quadratic convergence), i.e. rounding."""
    for _ in range(200):
        psi = slope = 0.0
        for at, lp in pairs:
            q = lp * s + l1
            r = at / q
            r2 = r * r
            psi += r2
            slope += r2 * lp / q  # -psi'(s) / 2
        if psi == 0.0:
            return s
        root = math.sqrt(psi)
        h = 1.0 / root - 1.0
        dh = slope / (psi * root)
        if h >= 0.0 or dh <= 0.0:
            return s
        step = -h / dh
        s += step
        if step <= RADIUS_STEP * s:
            return s
    return s


#: the relative Newton step below which :func:`_radius` stops (the next one would be about
#: its square: the kernel's root, which stops at 1e-15, to rounding)
RADIUS_STEP = 1e-8


class _BlockSteps:
    """:func:`regmtl.solvers.parts._kernels._block_update` for the convex kinds, row by row of a
    fixed ``L`` (k x T), in Python floats (a few tasks: NumPy's per-call cost would dominate).
    What depends on ``L`` alone (``L + l2``, whether a row's ``L_t`` are all equal or all
    positive) is computed once for all rows, vectorized."""

    def __init__(self, L: np.ndarray, l1: float, l2: float, group: int):
        self.l1, self.l2, self.group = float(l1), float(l2), group
        self.L = L.tolist()
        if group in (ROWS, POSITIVE_ROWS):
            self.Lp = (L + self.l2).tolist()
            self.same = (L == L[:, :1]).all(axis=1).tolist()
            self.curved = (L > 0.0).all(axis=1).tolist()
            self.delta = self._rows
        else:
            self.delta = self._entries

    def _rows(self, i: int, w: list, g: list) -> list:
        """The change of row ``w`` (negative gradient ``g``) that the kernel makes at row i:
        the weighted group prox of ``a_t = L_t w_t + g_t``."""
        l1, Lp = self.l1, self.Lp[i]
        if self.curved[i]:
            a = [Lt * wt + gt for wt, gt, Lt in zip(w, g, self.L[i], strict=True)]
        else:  # no curvature: the data term ignores the coefficient, which stays at 0
            a = [Lt * wt + gt if Lt > 0.0 else 0.0
                 for wt, gt, Lt in zip(w, g, self.L[i], strict=True)]
        if self.group == POSITIVE_ROWS:
            a = [at if at > 0.0 else 0.0 for at in a]
        na = math.hypot(*a)
        if na <= l1 or na == 0.0:
            return [-wt for wt in w]
        if l1 == 0.0:
            return [(at / lp if lp > 0.0 else 0.0) - wt
                    for at, lp, wt in zip(a, Lp, w, strict=True)]
        if self.same[i]:
            s = (na - l1) / Lp[0]
        else:
            # start at (||a|| - l1) / M with M the mean of L_t + l2 weighted by a_t^2: the
            # power mean of exponent -2 of q_t = (L_t + l2) s + l1 (weights a_t^2) is at most
            # their mean M s + l1 = ||a|| there, so psi >= 1 and h <= 0
            pairs = list(zip(a, Lp, strict=True))
            s = _radius(pairs, l1, (na - l1) * na * na / sum(at * at * lp for at, lp in pairs))
        return [at * s / (lp * s + l1) - wt for at, lp, wt in zip(a, Lp, w, strict=True)]

    def _entries(self, i: int, w: list, g: list) -> list:
        l1, l2, out = self.l1, self.l2, []
        negative = self.group != POSITIVE_ENTRYWISE
        for wt, gt, Lt in zip(w, g, self.L[i], strict=True):
            if Lt == 0.0:
                out.append(-wt)
                continue
            z = wt + gt / Lt
            thr = l1 / Lt
            if z > thr:
                new = (z - thr) / (1.0 + l2 / Lt)
            elif z < -thr and negative:
                new = (z + thr) / (1.0 + l2 / Lt)
            else:
                new = 0.0
            out.append(new - wt)
        return out


def _convex_kind(group: int) -> bool:
    return group in (ENTRYWISE, ROWS, POSITIVE_ENTRYWISE, POSITIVE_ROWS)


def _apply(steps: _BlockSteps, i: int, Wk: list, gi: list):
    """Row i's step: ``(d, largest |d_t|)``, ``Wk[i]`` moved as the kernel moves it
    (``w_t + d_t``)."""
    w = Wk[i]
    d = steps.delta(i, w, gi)
    change = max(map(abs, d))
    if change > 0.0:
        Wk[i] = [wt + dt for wt, dt in zip(w, d, strict=True)]
    return d, change


def _gram_pass(steps: _BlockSteps, Wk: list, G: np.ndarray, H: np.ndarray):
    """A BCD pass over the rows of ``Wk`` (lists, changed in place) in Gram form: ``G``
    (k x T, changed in place) is the negative gradient, and a change ``d`` of row i moves it
    by ``-H[i] * d`` (``H[i]``, k x T, column i of each task's weighted Gram). Returns
    ``(rows changed, their changes, largest change, last gradient, last change)``."""
    rows, changes = [], []
    max_change, gi, d = 0.0, [], []
    for i in range(len(Wk)):
        gi = G[i].tolist()
        d, change = _apply(steps, i, Wk, gi)
        if change > 0.0:
            G -= H[i] * d
            rows.append(i)
            changes.append(d)
            max_change = max(max_change, change)
    return rows, changes, max_change, gi, d


def _row_pass(steps: _BlockSteps, Wk: list, Xc: np.ndarray, weight: np.ndarray,
              task_of: np.ndarray, starts, R: np.ndarray, T: int):
    """The same pass on the rows, the residual ``R`` moved after each changed row (``starts``
    the first row of each task where no task is empty, else None)."""
    XcT = np.ascontiguousarray(Xc.T)
    XwT = XcT * weight
    max_change, gi, d = 0.0, [], []
    for i in range(len(Wk)):
        prod = XwT[i] * R
        sums = (np.add.reduceat(prod, starts) if starts is not None
                else np.bincount(task_of, weights=prod, minlength=T))
        gi = sums.tolist()
        d, change = _apply(steps, i, Wk, gi)
        if change > 0.0:
            R -= XcT[i] * np.asarray(d)[task_of]
            max_change = max(max_change, change)
    return max_change, gi, d


#: a dense epoch runs in Gram form while the tasks' k x k Grams over the epoch's features
#: hold at most this many entries in all (k^2 T; beyond, it runs feature by feature on the
#: rows, as the kernel does)
GRAM_ENTRIES = 1 << 14


def bcd_epoch_dense(X, c, ct, uniform, indptr, offset, xm, R, W, L, l1, l2, group, features,
                    g, delta):
    """:func:`regmtl.solvers.parts._kernels.bcd_epoch_dense` for the convex row-separable kinds
    (entrywise, rows, and their sign-constrained versions).

    The same pass, feature after feature. Where the features are few it runs in Gram form:
    each task's weighted Gram ``V_t = X_t,c^T diag(w_t) X_t,c`` over the features and the
    negative gradient ``X_t,c^T diag(w_t) R_t`` built once, then O(k T) per feature, and the
    residual moved once at the end (the kernel's iterates up to rounding)."""
    T = W.shape[1]
    if not _convex_kind(group) or T > MAX_TASKS or len(features) > MAX_FEATURES:
        return NotImplemented
    feats = np.asarray(features)
    k = len(feats)
    if k == 0:
        return 0.0
    task_of, rows = _rows(indptr, offset, len(R))
    Xf = X[:, feats] if rows is None else X[np.ix_(rows, feats)]
    weight = ct[task_of] if uniform else c  # each row's weight in the gradient
    steps = _BlockSteps(L[feats], l1, l2, group)
    Wk = W[feats].tolist()
    if k * k * T <= GRAM_ENTRIES:
        # each task's [V_t | X_t,c^T diag(w_t) R_t] from one product with [X_t,c | R_t]
        XR = np.empty((len(R), k + 1))
        np.subtract(Xf, xm[feats][:, task_of].T, out=XR[:, :k])
        XR[:, k] = R
        Xc = XR[:, :k]
        Xw = Xc * weight[:, None]
        VG = np.stack([Xw[a:b].T @ XR[a:b] for a, b in zip(indptr[:-1].tolist(),
                                                            indptr[1:].tolist(), strict=True)],
                      axis=-1)  # k x (k + 1) x T
        rows_changed, changes, max_change, gi, d = _gram_pass(steps, Wk, VG[:, k, :],
                                                              VG[:, :k, :])
        if rows_changed:
            D = np.zeros((k, T))
            D[rows_changed] = changes
            R -= np.einsum("rk,kr->r", Xc, D[:, task_of])
    else:
        Xc = np.subtract(Xf, xm[feats][:, task_of].T, dtype=np.float64)  # centered, N x k
        starts = indptr[:-1] if np.all(np.diff(indptr) > 0) else None
        max_change, gi, d = _row_pass(steps, Wk, Xc, weight, task_of, starts, R, T)
    W[feats] = Wk
    g[:], delta[:] = gi, d
    return max_change


def _gram_epoch_unsupported(W, group):
    """What a Gram-form twin epoch returns without running: ``NotImplemented`` for a kind or
    size the twins leave to the compiled kernel, ``0.0`` for no rows; None when it runs."""
    k, T = W.shape
    if not _convex_kind(group) or T > MAX_TASKS or k > MAX_FEATURES:
        return NotImplemented
    return 0.0 if k == 0 else None


def bcd_epoch_gram(Q, Et, ct, W, L, l1, l2, group, g, delta):
    """:func:`regmtl.solvers.parts._kernels.bcd_epoch_gram` for the convex row-separable kinds."""
    skip = _gram_epoch_unsupported(W, group)
    if skip is not None:
        return skip
    k = W.shape[0]
    steps = _BlockSteps(L, l1, l2, group)
    Wk = W.tolist()
    max_change, gi, d = 0.0, [], []
    for i in range(k):
        gi = (ct * Et[:, i]).tolist()
        d, change = _apply(steps, i, Wk, gi)
        if change > 0.0:
            Et -= np.outer(d, Q[i])
            max_change = max(max_change, change)
    W[:] = Wk
    g[:], delta[:] = gi, d
    return max_change


def bcd_epoch_task_gram(Qs, Et, W, L, l1, l2, group, g, delta):
    """:func:`regmtl.solvers.parts._kernels.bcd_epoch_task_gram` for the convex row-separable kinds:
    the pass of :func:`bcd_epoch_gram` with task t's own Gram ``Qs[t]``."""
    skip = _gram_epoch_unsupported(W, group)
    if skip is not None:
        return skip
    steps = _BlockSteps(L, l1, l2, group)
    Wk = W.tolist()
    # (Et.T and the Grams' (i, m, t) view: a change d of row i moves Et[t, m] by -d_t Qs[t, i, m])
    _, _, max_change, gi, d = _gram_pass(steps, Wk, Et.T, Qs.transpose(1, 2, 0))
    W[:] = Wk
    g[:], delta[:] = gi, d
    return max_change


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def update_intercepts(y, c, indptr, S, b, loss, max_newton, rtol):
    """:func:`regmtl.solvers.parts._kernels.update_intercepts`: the exact step of the squared loss,
    the safeguarded Newton steps of the logistic loss; the tasks side by side (each its own
    steps, bracket and stop, as the kernel takes them task after task)."""
    T = len(indptr) - 1
    if T > MAX_TASKS:
        return NotImplemented
    task_of = np.repeat(np.arange(T), np.diff(indptr))

    def sums(v):
        return np.bincount(task_of, weights=v, minlength=T)

    tot = sums(c)
    if loss == QUADRATIC:
        with np.errstate(divide="ignore", invalid="ignore"):  # (a task without weight)
            d = sums(c * S) / tot
        S -= d[task_of]
        b += d
        return None
    delta = np.zeros(T)
    lo, hi = np.full(T, -np.inf), np.full(T, np.inf)
    active = np.ones(T, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(max_newton):
            s = _sigmoid(-y * (S + delta[task_of]))
            grad, hess = sums(c * y * s), sums(c * s * (1.0 - s))
            up = grad > 0.0  # the minimizer lies above delta
            lo = np.where(active & up, delta, lo)
            hi = np.where(active & ~up, delta, hi)
            step = np.where(hess > 0.0, grad / hess, np.nan)
            done = active & (np.abs(grad) <= rtol * tot)
            # converged: a last, tiny Newton step (exact to rounding there)
            delta = np.where(done & (np.abs(step) <= 1e-6), delta + step, delta)
            active &= ~done
            if not active.any():
                break
            nxt = delta + step
            span = np.maximum(1.0, np.abs(delta))  # towards an open side, at most doubling
            nxt = np.where(up & (hi == np.inf) & ~(nxt <= delta + span), delta + span, nxt)
            nxt = np.where(~up & (lo == -np.inf) & ~(nxt >= delta - span), delta - span, nxt)
            nxt = np.where((lo < nxt) & (nxt < hi), nxt, 0.5 * (lo + hi))
            active &= nxt != delta  # the bracket is down to one float
            delta = np.where(active, nxt, delta)
            if not active.any():
                break
    S += delta[task_of]
    b += delta
    return None
