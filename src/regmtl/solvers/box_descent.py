r"""Block coordinate descent under a box and per-row weights: the penalties of
:class:`~regmtl.penalties.factored.PartlyPenalized` (unpenalized rows beside penalized ones,
``lower <= W <= upper``) at the speed of coordinate descent.

The penalty declares its block step through ``boxed_step(alpha)``: per row j the weight
:math:`l_{1,j}` of its norm (0 on a free row), its ridge :math:`l_{2,j}`, whether the norm is
of the row or of each entry, and the box. Each epoch minimizes, row by row, the data term's
quadratic model in that row exactly (the squared loss: the data term itself), in centered
coordinates (intercepts decoupled as in :mod:`~regmtl.solvers.epochs`). With
:math:`a_t = L_{jt} W_{jt} + g_t` (``g`` minus the gradient):

- entries: :math:`w_t = \mathrm{clip}(S(a_t, l_1) / (L_{jt} + l_2), \ell, u)`, exact because
  each entry's problem is convex in one variable on an interval;
- rows: :math:`w_t(\mu) = \mathrm{clip}(a_t / (L_{jt} + l_2 + \mu), \ell_t, u_t)` at the root of
  :math:`\mu \|w(\mu)\| = l_1` (bracketed by doubling, then bisected), or 0 where 0 is in the
  box and :math:`a` lies in :math:`l_1 B + N_{box}(0)`.

Losses other than the squared one are solved by proximal Newton: each step's weighted
least-squares model (curvature ``c h``, working response) by these epochs, then a backtracking
line search on the objective. The certificate is the KKT residual of the proximal gradient
(:func:`~regmtl.solvers.certificates.certify`), checked every ``check_every`` epochs.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from ..datafits import Datafit
from ..penalties.kernels import box_row
from .anderson import Anderson
from .certificates import Reference, certify
from .moments import feature_moments
from .result import SolverResult

__all__ = ["box_descent", "box_epoch", "box_epoch_gram"]

@njit(cache=True)
def _box_entries(a, L, l1, l2, lo, hi, v):
    """Each entry's minimizer ``clip(S(a_t, l1) / (L_t + l2), lo_t, hi_t)`` into ``v``."""
    for t in range(a.shape[0]):
        den = L[t] + l2
        x = a[t]
        x = x - l1 if x > l1 else (x + l1 if x < -l1 else 0.0)
        x = x / den if den > 0.0 else 0.0
        v[t] = min(max(x, lo[t]), hi[t])


@njit(cache=True)
def box_epoch(X, c, indptr, offset, xm, R, W, L, l1, l2, rows, lo, hi, features, g, v):
    """One cyclic pass over the rows ``features`` of W (dense design, either layout); the
    residual ``R`` of the centered model is kept. Returns the largest coefficient change."""
    T = W.shape[1]
    change = 0.0
    for j in features:
        for t in range(T):
            a, b, o = indptr[t], indptr[t + 1], offset[t]
            m = xm[j, t]
            acc = 0.0
            for k in range(b - a):
                acc += (X[a - o + k, j] - m) * c[a + k] * R[a + k]
            g[t] = L[j, t] * W[j, t] + acc
        if rows:
            box_row(g, L[j], l1[j], l2[j], lo[j], hi[j], v)
        else:
            _box_entries(g, L[j], l1[j], l2[j], lo[j], hi[j], v)
        for t in range(T):
            d = v[t] - W[j, t]
            if d != 0.0:
                a, b, o = indptr[t], indptr[t + 1], offset[t]
                m = xm[j, t]
                for k in range(b - a):
                    R[a + k] -= (X[a - o + k, j] - m) * d
                W[j, t] = v[t]
                if abs(d) > change:
                    change = abs(d)
    return change


def _epochs(data, X, cw, z, W, step, fit_intercept, n_epochs, stop_change):
    """Epochs on the weighted least squares ``sum cw (z - f)^2 / 2``: from W (in place),
    returns the intercepts in input coordinates and the epochs run."""
    xm, L = feature_moments(data, cw, fit_intercept, None, False)
    tot = np.maximum(data.task_sums(cw), 1e-300)
    bc = data.task_sums(cw * z) / tot if fit_intercept else np.zeros(data.n_tasks)
    R = z - _centered_scores(data, X, xm, W) - data.per_row(bc)
    g, v = np.zeros(data.n_tasks), np.zeros(data.n_tasks)
    l1, l2, rows, lo, hi = step
    run = 0
    every = np.arange(W.shape[0], dtype=np.int64)
    grams = _task_grams(data, X, cw, xm, z - data.per_row(bc))
    if grams is not None:  # (the model's epochs on its per-task Grams)
        H, r = grams
        Gr = r - np.einsum("tjk,kt->tj", H, W)
    for _ in range(n_epochs):
        run += 1
        if grams is not None:
            ch = box_epoch_gram(H, Gr, W, l1, l2, rows, lo, hi, every, g, v)
        else:
            ch = box_epoch(X, cw, data.indptr, data.offset, xm, R, W, L, l1, l2, rows, lo, hi,
                           every, g, v)
        if ch <= stop_change * max(1.0, float(np.abs(W).max(initial=0.0))):
            break
    b = bc - np.einsum("jt,jt->t", xm, W)
    return b, run


def _least_squares(data, X, datafit, penalty, alpha, W, step, *, ref, fit_intercept, tol,
                   max_iter, check_every, verbose) -> SolverResult:
    """The squared loss: epochs in centered coordinates (on the per-task Grams where they
    are kept, :func:`_task_grams`, else on the rows), Anderson extrapolation of every 6
    iterates (projected on the box, kept where it lowers the objective), the certificate
    every ``check_every`` epochs, then the working rows and a majorized step solved per
    task (kept where it lowers the objective)."""
    y, c = data.y, data.c
    xm, L = feature_moments(data, c, fit_intercept, None, False)
    tot = np.maximum(data.task_sums(c), 1e-300)
    bc = data.task_sums(c * y) / tot if fit_intercept else np.zeros(data.n_tasks)
    base = y - data.per_row(bc)
    g, v = np.zeros(data.n_tasks), np.zeros(data.n_tasks)
    l1, l2, rows, lo, hi = step
    acc = Anderson(5)
    grams = _task_grams(data, X, c, xm, base)
    floor = 0.5 * float(np.dot(c * base, base))

    if grams is not None:
        H, r = grams
        Gr = r - np.einsum("tjk,kt->tj", H, W)

        def quadratic(W):
            return 0.5 * float(np.einsum("tjk,jt,kt->", H, W, W)) - \
                float(np.einsum("tj,jt->", r, W)) + floor

        def residual(W):
            return base - _centered_scores(data, X, xm, W)

        def epoch(features):
            box_epoch_gram(H, Gr, W, l1, l2, rows, lo, hi, features, g, v)

        def moved(We):
            Gr[...] = r - np.einsum("tjk,kt->tj", H, We)
    else:
        state = {"R": base - _centered_scores(data, X, xm, W)}

        def quadratic(W, R=None):
            R = state["R"] if R is None else R
            return 0.5 * float(np.dot(c * R, R))

        def residual(W):
            return state["R"]

        def epoch(features):
            box_epoch(X, c, data.indptr, data.offset, xm, state["R"], W, L, l1, l2, rows, lo,
                      hi, features, g, v)

        def moved(We):
            state["R"] = base - _centered_scores(data, X, xm, We)

    def objective(W):
        return quadratic(W) + penalty.value(W, alpha)

    def try_point(We) -> bool:
        """Move to ``We`` where it lowers the objective."""
        if grams is None:
            Re = base - _centered_scores(data, X, xm, We)
            better = 0.5 * float(np.dot(c * Re, Re)) + penalty.value(We, alpha) < objective(W)
            if better:
                W[...], state["R"] = We, Re
            return better
        if objective(We) < objective(W):
            W[...] = We
            moved(We)
            return True
        return False

    every = np.arange(W.shape[0], dtype=np.int64)
    features = every
    cert, done, last = None, 0, np.inf
    while done < max_iter:
        epoch(features)
        done += 1
        ext = acc.push(W)
        if ext is not None:
            try_point(np.clip(ext.reshape(W.shape), lo, hi))
        if done % check_every == 0 or done == max_iter:
            R = residual(W)
            cert = certify(data, datafit, penalty, alpha, W, y - R, fit_intercept, ref)
            if verbose:
                print(f"box descent: epoch {done}, {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                break
            # the next epochs on the rows that move or may: nonzero, free, or whose
            # gradient comes near their threshold (every row at the next check)
            G = Gr.T if grams is not None else \
                data.adjoint(c * R) - np.einsum("jt,t->jt", xm, data.task_sums(c * R))
            features = _working_rows(G, W, l1, lo, hi, rows, every)
            if grams is not None and cert.value > 0.5 * last:
                start = W.copy()
                # the certificate stalls (the valleys of collinear columns): a step solved
                # per task
                We = _majorized_step(grams, W, step)
                if We is not None and try_point(We):
                    acc.reset()
                    # the majorizer overstates a row norm's curvature along the row: the
                    # step's direction is followed further while that lowers the objective
                    D = We - start
                    for k in (2.0, 4.0, 8.0, 16.0):
                        if not try_point(np.clip(start + k * D, lo, hi)):
                            break
            last = cert.value
    b = bc - np.einsum("jt,jt->t", xm, W)
    if cert is None:
        cert = certify(data, datafit, penalty, alpha, W, y - residual(W), fit_intercept, ref)
    return SolverResult(W, b, done, cert, cert.converged(tol))


@njit(cache=True)
def box_epoch_gram(H, Gr, W, l1, l2, rows, lo, hi, features, g, v):
    """:func:`box_epoch` on the per-task Grams ``H`` (T, p, p), keeping ``Gr = r - H w``
    (T, p), minus the gradient in every task."""
    T = W.shape[1]
    p = W.shape[0]
    Ld = np.empty(T)
    change = 0.0
    for j in features:
        for t in range(T):
            Ld[t] = H[t, j, j]
            g[t] = Ld[t] * W[j, t] + Gr[t, j]
        if rows:
            box_row(g, Ld, l1[j], l2[j], lo[j], hi[j], v)
        else:
            _box_entries(g, Ld, l1[j], l2[j], lo[j], hi[j], v)
        for t in range(T):
            d = v[t] - W[j, t]
            if d != 0.0:
                for k in range(p):
                    Gr[t, k] -= H[t, j, k] * d
                W[j, t] = v[t]
                if abs(d) > change:
                    change = abs(d)
    return change


def _working_rows(G, W, l1, lo, hi, rows, every):
    """The rows the epochs until the next check visit: nonzero, free (``l1 = 0``), outside
    the box's reach of 0, or whose gradient ``G`` (minus it, p x T) is above half their
    threshold (as a norm of the row, or entry by entry)."""
    size = np.linalg.norm(G, axis=1) if rows else np.abs(G).max(axis=1)
    keep = np.any(W != 0.0, axis=1) | (l1 == 0.0) | (size > 0.5 * l1) | \
        np.any((lo > 0.0) | (hi < 0.0), axis=1)
    return every[keep] if not keep.all() else every


#: per-task Grams are kept (and majorized steps taken) up to this many numbers, T p^2
MAX_GRAM_NUMBERS = 20_000_000
#: and up to this many features
MAX_GRAM_FEATURES = 300


def _task_grams(data, X, c, xm, base):
    """``(H, r)``: each task's centered weighted Gram ``H_t = sum c (x - xm)(x - xm)^T``
    (T, p, p) and ``r_t = sum c (x - xm) z`` (T, p) of the centered targets ``z``; None where
    they would exceed :data:`MAX_GRAM_NUMBERS` or :data:`MAX_GRAM_FEATURES`. Built once."""
    T, p = data.n_tasks, data.n_features
    if p > MAX_GRAM_FEATURES or T * p * p > MAX_GRAM_NUMBERS:
        return None
    H, r = np.zeros((T, p, p)), np.zeros((T, p))
    for t in range(T):  # (once per fit, not per iteration)
        a, e, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
        Xt = X[a - o:e - o] - xm[:, t]
        ct = c[a:e]
        H[t] = Xt.T @ (ct[:, None] * Xt)
        r[t] = Xt.T @ (ct * base[a:e])
    return H, r


def _majorized_step(grams, W, step) -> np.ndarray | None:
    r"""The minimizer, task by task, of the data term plus the norm's quadratic majorizer
    at W (:math:`|w| \le w^2 / (2 |w_0|) + |w_0| / 2`, and the same for a row's norm) on the
    coordinates strictly inside the box and nonzero (or free), the others held: each
    task's system in one batched solve, least squares where it is singular (collinear
    columns), clipped into the box. The caller keeps it where it lowers the objective."""
    H, r = grams
    l1, l2, rows, lo, hi = step
    size = np.linalg.norm(W, axis=1, keepdims=True) if rows else np.abs(W)
    live = ((size > 0) | (l1[:, None] == 0.0)) & (W > lo) & (W < hi)
    if not live.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.broadcast_to(np.where(size > 0, l1[:, None] / size, 0.0) + l2[:, None],
                            W.shape)  # (p, T)
    T, p = r.shape
    A = H.copy()
    idx = np.arange(p)
    A[:, idx, idx] += d.T
    held = ~live.T  # (T, p): held coordinates keep their value
    rhs = r - np.einsum("tjk,kt->tj", H, np.where(held.T, W, 0.0))
    A[np.broadcast_to(held[:, :, None], A.shape)] = 0.0
    A[np.broadcast_to(held[:, None, :], A.shape)] = 0.0
    A[:, idx, idx] = np.where(held, 1.0, A[:, idx, idx])
    rhs = np.where(held, W.T, rhs)
    try:
        sol = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        sol = np.stack([np.linalg.lstsq(A[t], rhs[t], rcond=None)[0] for t in range(T)])
    if not np.all(np.isfinite(sol)):
        return None
    return np.clip(sol.T, lo, hi)


def _centered_scores(data, X, xm, W):
    return data.linear(W) - data.per_row(np.einsum("jt,jt->t", xm, W))


def box_descent(data, datafit: Datafit, penalty, alpha: float, W: np.ndarray, b: np.ndarray, *,
                ref: Reference, fit_intercept: bool, tol: float, max_iter: int,
                check_every: int = 5, verbose: int = 0) -> SolverResult:
    """Minimize the objective with a boxed penalty (module docstring) from ``(W, b)``:
    epochs for the squared loss, proximal Newton otherwise; ``max_iter`` bounds the epochs
    (the Newton steps). Returns the result with its KKT certificate."""
    step = penalty.boxed_step(alpha)
    W = np.clip(np.array(W, dtype=np.float64, order="C"), step[3], step[4])
    X = np.asarray(data.X)
    y, c = data.y, data.c
    datafit = datafit.bind(data)
    lipschitz = None
    if datafit.quadratic:
        return _least_squares(data, X, datafit, penalty, alpha, W, step, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              check_every=check_every, verbose=verbose)
    b = np.array(b, dtype=np.float64)
    f = data.linear(W, b)
    obj = datafit.value(y, f, c) + penalty.value(W, alpha)
    cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref, lipschitz)
    n_iter, stalled, flat = 0, False, 0
    while not cert.converged(tol) and n_iter < max_iter:
        n_iter += 1
        h = np.maximum(datafit.hessian(y, f), 1e-12)
        cw = c * h
        z = f + datafit.theta(y, f) / h  # the working response of the Newton model
        W_new = W.copy()
        b_new, _ = _epochs(data, X, cw, z, W_new, step, fit_intercept, 200, 1e-10)
        dW, db = W_new - W, b_new - b
        t = 1.0
        # backtracking on the objective (a descent direction); near the optimum its decrease
        # is below the objective's rounding, which the comparison allows
        slack = 8 * np.finfo(float).eps * max(1.0, abs(obj))
        for _ in range(30):
            W_try, b_try = W + t * dW, b + t * db
            f_try = data.linear(W_try, b_try)
            obj_try = datafit.value(y, f_try, c) + penalty.value(W_try, alpha)
            if np.isfinite(obj_try) and obj_try <= obj + slack:
                break
            t *= 0.5
        else:  # no step lowers the objective: the certificate is as good as it gets
            stalled = True
            break
        still = obj_try > obj - slack
        W, b, f, obj = W_try, b_try, f_try, obj_try
        last = cert.value
        cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref, lipschitz)
        # steps within the objective's rounding that no longer cut the certificate: it is as
        # good as float64 makes it (three in a row)
        flat = flat + 1 if still and cert.value > 0.5 * last else 0
        if verbose:
            print(f"box descent: Newton step {n_iter} (t={t:g}), {cert.kind} "
                  f"{cert.relative:.3e}")
        if flat >= 3:
            stalled = True
            break
    return SolverResult(W, b, n_iter, cert, cert.converged(tol), stalled=stalled)
