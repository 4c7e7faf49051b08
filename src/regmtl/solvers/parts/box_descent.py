r"""Block coordinate descent under a box and per-row weights: the penalties of
:class:`~regmtl.penalties.factored.PartlyPenalized` (unpenalized rows beside penalized ones,
``lower <= W <= upper``) at the speed of coordinate descent.

The penalty declares its block step through ``boxed_step(alpha)``: per entry the weight
:math:`l_{1,jt}` of its norm (0 on a free entry), its ridge :math:`l_{2,jt}` (both constant
along a row where the norm is of the row), whether the norm is of the row or of each entry,
and the box. Each epoch minimizes, row by row, the data term's
quadratic model in that row exactly (the squared loss: the data term itself), in centered
coordinates (intercepts decoupled as in :mod:`~regmtl.solvers.parts.epochs`). With
:math:`a_t = L_{jt} W_{jt} + g_t` (``g`` minus the gradient):

- entries: :math:`w_t = \mathrm{clip}(S(a_t, l_{1,jt}) / (L_{jt} + l_{2,jt}), \ell, u)`,
  exact because each entry's problem is convex in one variable on an interval;
- rows: :math:`w_t(\mu) = \mathrm{clip}(a_t / (L_{jt} + l_2 + \mu), \ell_t, u_t)` at the root of
  :math:`\mu \|w(\mu)\| = l_1` (bracketed by doubling, then bisected), or 0 where 0 is in the
  box and :math:`a` lies in :math:`l_1 B + N_{box}(0)`.

Losses other than the squared one are solved by proximal Newton: each step's weighted
least-squares model (curvature ``c h``, working response) by these epochs, then a backtracking
line search on the objective. Where the per-task Grams are small (:func:`gram_route`) the
epochs run on them (:class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`, built once; ``O(p^2 T)``
an epoch), Anderson-extrapolated, and their checks read the duality gap (or the KKT residual)
from the Gram sums (:func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`): the squared
loss until it meets ``tol``, a Newton step's model until its gap is below 0.3 times the
outer one (Lee, Sun & Saunders 2014). The returned certificate is formed on the data
(:func:`~regmtl.solvers.certificates.certify.certify`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..._jit import njit
from ...datafits import Datafit
from ...penalties.kernels import box_row
from ..certificates.certify import Reference, certify
from ..result import SolverResult
from .anderson import Anderson
from .moments import feature_moments
from .newton_loop import newton_loop
from .quadratic import TaskQuadratic, quadratic_of, task_quadratic
from .quadratic_fista import gram_certificate

__all__ = ["box_descent", "box_epoch", "box_epoch_gram"]

@njit(cache=True)
def _box_entries(a, L, l1, l2, lo, hi, v):
    """Each entry's minimizer ``clip(S(a_t, l1_t) / (L_t + l2_t), lo_t, hi_t)`` into ``v``."""
    for t in range(a.shape[0]):
        den = L[t] + l2[t]
        x = a[t]
        thr = l1[t]
        x = x - thr if x > thr else (x + thr if x < -thr else 0.0)
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
            box_row(g, L[j], l1[j, 0], l2[j, 0], lo[j], hi[j], v)
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
    """Epochs over the rows on the weighted least squares ``sum cw (z - f)^2 / 2``: from W
    (in place), returns the intercepts in input coordinates and the epochs run."""
    xm, L = feature_moments(data, cw, fit_intercept, None, False)
    tot = np.maximum(data.task_sums(cw), 1e-300)
    bc = data.task_sums(cw * z) / tot if fit_intercept else np.zeros(data.n_tasks)
    R = z - _centered_scores(data, X, xm, W) - data.per_row(bc)
    g, v = np.zeros(data.n_tasks), np.zeros(data.n_tasks)
    l1, l2, rows, lo, hi = step
    run = 0
    every = np.arange(W.shape[0], dtype=np.int64)
    for _ in range(n_epochs):
        run += 1
        ch = box_epoch(X, cw, data.indptr, data.offset, xm, R, W, L, l1, l2, rows, lo, hi,
                       every, g, v)
        if ch <= stop_change * max(1.0, float(np.abs(W).max(initial=0.0))):
            break
    b = bc - np.einsum("jt,jt->t", xm, W)
    return b, run


def _gram_descent(q: TaskQuadratic, H: np.ndarray, penalty, alpha: float, W: np.ndarray, step,
                  *, target: float, max_epochs: int, G0_norm: float, check_every: int = 5,
                  verbose: int = 0) -> tuple[int, float]:
    """Epochs of the boxed block step on the per-task Grams ``H`` (T, p, p) of ``q`` from W
    (in place), keeping ``E = g - H w`` (T, p); Anderson extrapolation of every 6 iterates
    (projected on the box, kept where it lowers the objective); every ``check_every`` epochs
    the certificate from the Gram sums (:func:`gram_certificate`: an absolute duality gap, or
    a relative KKT residual), then the working rows, and where it stalls (the valleys of
    collinear columns) a majorized step solved per task. Stops at ``target``, after ten
    checks without progress, or at ``max_epochs``. Returns the epochs run and the last
    certificate."""
    l1, l2, rows, lo, hi = step
    r = np.ascontiguousarray(q.g.T)
    E = r - q.matvec(W).T
    g, v = np.zeros(q.g.shape[1]), np.zeros(q.g.shape[1])
    L = None if penalty.has_dual and alpha > 0 else q.lipschitz()
    acc = Anderson(5)
    every = np.arange(W.shape[0], dtype=np.int64)
    features = every

    def objective(V, HV):
        return q.value(V, HV) + penalty.value(V, alpha)

    def try_point(We) -> bool:
        """Move to ``We`` where it lowers the objective."""
        HWe = q.matvec(We)
        if objective(We, HWe) < objective(W, r.T - E.T):
            W[...] = We
            E[...] = r - HWe.T
            return True
        return False

    cert, best, last, stalls, done = np.inf, np.inf, np.inf, 0, 0
    while done < max_epochs:
        done += 1
        change = box_epoch_gram(H, E, W, l1, l2, rows, lo, hi, features, g, v)
        ext = acc.push(W) if change > 0.0 else None
        if ext is not None:
            try_point(np.clip(ext.reshape(W.shape), lo, hi))
        if done % check_every and change > 0.0 and done < max_epochs:
            continue
        cert = gram_certificate(q, penalty, alpha, W, L, G0_norm, r.T - E.T)
        if verbose:
            print(f"box descent: epoch {done}, certificate {cert:.3e}")
        stalls = 0 if cert < 0.99 * best else stalls + 1
        best = min(best, cert)
        if cert <= target or stalls >= 10 or (change == 0.0 and features is every):
            break
        # the next epochs on the rows that move or may: nonzero, free, or whose gradient
        # comes near their threshold (every row at the next check)
        features = _working_rows(E.T, W, l1, lo, hi, rows, every)
        if cert > 0.8 * last:
            start = W.copy()
            We = _majorized_step((H, r), W, step)
            if We is not None and try_point(We):
                acc.reset()
                # the majorizer overstates a row norm's curvature along the row: the step's
                # direction is followed further while that lowers the objective
                D = We - start
                for k in (2.0, 4.0, 8.0, 16.0):
                    if not try_point(np.clip(start + k * D, lo, hi)):
                        break
        last = cert
    return done, cert


def gram_route(data) -> bool:
    """Whether the epochs run on per-task Grams: at most :data:`MAX_GRAM_FEATURES`
    features, at most :data:`MAX_GRAM_NUMBERS` numbers ``T p^2``, and no more numbers than
    the design holds."""
    T, p = data.n_tasks, data.n_features
    return p <= MAX_GRAM_FEATURES and T * p * p <= min(MAX_GRAM_NUMBERS, data.n_obs * p)


def _grams(q: TaskQuadratic) -> np.ndarray:
    """The Grams of ``q`` one per task (T, p, p) (a shared design's one Gram scaled)."""
    if q.scale is None:
        return np.ascontiguousarray(q.H)
    return np.ascontiguousarray(q.scale[:, None, None] * q.H[None])


def _target(penalty, alpha: float, ref: Reference, tol: float) -> float:
    """``tol`` in the units of :func:`gram_certificate`: times ``P0`` for a duality gap."""
    return tol * ref.P0 if penalty.has_dual and alpha > 0 else tol


def _least_squares_gram(data, *, datafit, penalty, alpha, W, step, ref, fit_intercept, tol,
                        max_iter, check_every, verbose) -> SolverResult:
    """The squared loss on its per-task Grams (:func:`_gram_descent`) until the Gram sums'
    certificate meets ``tol``, then the certificate on the data (tightened tenfold, at most
    three times, where the two differ by rounding)."""
    q = task_quadratic(data, fit_intercept)
    H = _grams(q)
    G0_norm = float(np.linalg.norm(ref.G0))
    target, done = _target(penalty, alpha, ref, tol), 0
    for _ in range(4):
        run, _ = _gram_descent(q, H, penalty, alpha, W, step, target=target,
                               max_epochs=max_iter - done, G0_norm=G0_norm,
                               check_every=check_every, verbose=verbose)
        done += run
        b = q.zm - np.einsum("jt,jt->t", q.xm, W)
        cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b), fit_intercept, ref)
        if cert.converged(tol) or done >= max_iter:
            break
        target *= 0.1
    return SolverResult(W, b, done, cert, cert.converged(tol))


def _least_squares(data, *, X, datafit, penalty, alpha, W, step, ref, fit_intercept, tol,
                   max_iter, check_every, verbose) -> SolverResult:
    """The squared loss over the rows (where the Grams would be large, :func:`gram_route`):
    epochs in centered coordinates, Anderson extrapolation of every 6 iterates (projected on
    the box, kept where it lowers the objective), the certificate on the data every
    ``check_every`` epochs, then the working rows."""
    y, c = data.y, data.c
    xm, L = feature_moments(data, c, fit_intercept, None, False)
    tot = np.maximum(data.task_sums(c), 1e-300)
    bc = data.task_sums(c * y) / tot if fit_intercept else np.zeros(data.n_tasks)
    base = y - data.per_row(bc)
    g, v = np.zeros(data.n_tasks), np.zeros(data.n_tasks)
    l1, l2, rows, lo, hi = step
    acc = Anderson(5)
    R = base - _centered_scores(data, X, xm, W)

    def objective(W, R):
        return 0.5 * float(np.dot(c * R, R)) + penalty.value(W, alpha)

    every = np.arange(W.shape[0], dtype=np.int64)
    features = every
    cert, done = None, 0
    while done < max_iter:
        box_epoch(X, c, data.indptr, data.offset, xm, R, W, L, l1, l2, rows, lo, hi, features,
                  g, v)
        done += 1
        ext = acc.push(W)
        if ext is not None:
            We = np.clip(ext.reshape(W.shape), lo, hi)
            Re = base - _centered_scores(data, X, xm, We)
            if objective(We, Re) < objective(W, R):
                W[...], R = We, Re
        if done % check_every == 0 or done == max_iter:
            cert = certify(data, datafit, penalty, alpha, W, y - R, fit_intercept, ref)
            if verbose:
                print(f"box descent: epoch {done}, {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                break
            # the next epochs on the rows that move or may: nonzero, free, or whose
            # gradient comes near their threshold (every row at the next check)
            G = data.adjoint(c * R) - np.einsum("jt,t->jt", xm, data.task_sums(c * R))
            features = _working_rows(G, W, l1, lo, hi, rows, every)
    b = bc - np.einsum("jt,jt->t", xm, W)
    if cert is None:
        cert = certify(data, datafit, penalty, alpha, W, y - R, fit_intercept, ref)
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
            box_row(g, Ld, l1[j, 0], l2[j, 0], lo[j], hi[j], v)
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
    """The rows the epochs until the next check visit: nonzero, with a free entry
    (``l1 = 0``), outside the box's reach of 0, or whose gradient ``G`` (minus it, p x T) is
    above half their threshold (as a norm of the row, or entry by entry)."""
    near = np.linalg.norm(G, axis=1) > 0.5 * l1[:, 0] if rows else \
        np.any(np.abs(G) > 0.5 * l1, axis=1)
    keep = np.any(W != 0.0, axis=1) | np.any(l1 == 0.0, axis=1) | near | \
        np.any((lo > 0.0) | (hi < 0.0), axis=1)
    return every[keep] if not keep.all() else every


#: per-task Grams are kept (and majorized steps taken) up to this many numbers, T p^2
MAX_GRAM_NUMBERS = 20_000_000
#: and up to this many features
MAX_GRAM_FEATURES = 300


def _majorized_step(grams, W, step) -> np.ndarray | None:
    r"""The minimizer, task by task, of the data term plus the norm's quadratic majorizer
    at W (:math:`|w| \le w^2 / (2 |w_0|) + |w_0| / 2`, and the same for a row's norm) on the
    coordinates strictly inside the box and nonzero (or free), the others held: each
    task's system in one batched solve, least squares where it is singular (collinear
    columns), clipped into the box. The caller keeps it where it lowers the objective."""
    H, r = grams
    l1, l2, rows, lo, hi = step
    size = np.linalg.norm(W, axis=1, keepdims=True) if rows else np.abs(W)
    live = ((size > 0) | (l1 == 0.0)) & (W > lo) & (W < hi)
    if not live.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.broadcast_to(np.where(size > 0, l1 / size, 0.0) + l2, W.shape)  # (p, T)
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
    datafit = datafit.bind(data)
    gram = gram_route(data)
    if datafit.quadratic:
        solver = _least_squares_gram if gram else partial(_least_squares, X=np.asarray(data.X))
        return solver(data, datafit=datafit, penalty=penalty, alpha=alpha, W=W, step=step,
                      ref=ref, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                      check_every=check_every, verbose=verbose)
    method = _BoxNewton(data, datafit, penalty, alpha, W, b, step, ref, fit_intercept, gram)
    cert, progress, converged, stalled = newton_loop(
        method, tol=tol, max_iter=max_iter, label="box descent", verbose=verbose,
        patience=None)
    return SolverResult(method.W, method.b, progress.steps, cert, converged, stalled=stalled)


class _BoxNewton:
    """Proximal Newton under a box (the module's text), as a
    :class:`~regmtl.solvers.parts.newton_loop.NewtonMethod`: each model solved by the boxed
    epochs (on its Grams where the route takes them), a backtracking search on the objective,
    certified by the KKT residual. ``spent`` once three steps in a row stay within the
    objective's rounding without halving the certificate: as good as float64 makes it."""

    def __init__(self, data, datafit, penalty, alpha, W, b, step, ref, fit_intercept, gram):
        self.data, self.datafit, self.penalty, self.alpha = data, datafit, penalty, alpha
        self.W, self.b, self.box, self.ref = W, np.array(b, dtype=np.float64), step, ref
        self.fit_intercept, self.gram = fit_intercept, gram
        self.X = np.asarray(data.X)
        self.G0_norm = float(np.linalg.norm(ref.G0))
        self.f = data.linear(W, self.b)
        self.obj = self._objective(self.f, W)
        self.spent, self.still, self.flat, self.last, self.t = False, False, 0, None, 1.0

    def _objective(self, f, W) -> float:
        return (self.datafit.value(self.data.y, f, self.data.c)
                + self.penalty.value(W, self.alpha))

    def certify(self):
        cert = certify(self.data, self.datafit, self.penalty, self.alpha, self.W, self.f,
                       self.fit_intercept, self.ref)
        if self.last is not None:  # (after a step: is it flat?)
            self.flat = self.flat + 1 if self.still and cert.value > 0.5 * self.last else 0
            self.spent = self.flat >= 3
        self.last = cert.value
        return cert

    def status(self) -> str:
        return f"  (t={self.t:g})"

    def step(self, cert, progress, budget) -> int | None:
        data, datafit, y, c = self.data, self.datafit, self.data.y, self.data.c
        W, b, f = self.W, self.b, self.f
        h = np.maximum(datafit.hessian(y, f), 1e-12)
        cw = c * h
        z = f + datafit.theta(y, f) / h  # the working response of the Newton model
        W_new = W.copy()
        if self.gram:  # the model's Grams, solved to a gap below 0.3 times the outer one
            q = quadratic_of(data, cw, z, self.fit_intercept)
            model_target = 0.3 * (cert.value if cert.kind == "duality_gap" else cert.relative)
            _gram_descent(q, _grams(q), self.penalty, self.alpha, W_new, self.box,
                          target=model_target, max_epochs=200, G0_norm=self.G0_norm)
            b_new = q.zm - np.einsum("jt,jt->t", q.xm, W_new)
        else:
            b_new, _ = _epochs(data, self.X, cw, z, W_new, self.box, self.fit_intercept, 200,
                               1e-10)
        dW, db = W_new - W, b_new - b
        t = 1.0
        # backtracking on the objective (a descent direction); near the optimum its decrease
        # is below the objective's rounding, which the comparison allows
        slack = 8 * np.finfo(float).eps * max(1.0, abs(self.obj))
        for _ in range(30):
            W_try, b_try = W + t * dW, b + t * db
            f_try = data.linear(W_try, b_try)
            obj_try = self._objective(f_try, W_try)
            if np.isfinite(obj_try) and obj_try <= self.obj + slack:
                break
            t *= 0.5
        else:  # no step lowers the objective: the certificate is as good as it gets
            return None
        self.still = obj_try > self.obj - slack
        self.W, self.b, self.f, self.obj, self.t = W_try, b_try, f_try, obj_try, t
        return 1
