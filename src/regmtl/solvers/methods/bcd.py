r"""Block coordinate descent over features for row-separable penalties and the squared loss, with
working sets (the epochs and the inner loop: :mod:`~regmtl.solvers.parts.epochs`; the sets:
:mod:`~regmtl.solvers.parts.working_set`).

A block is one feature across all tasks: row ``W_j``. For a weighted least-squares problem
``sum_r c_r (z_r - f_r)^2 / 2 + penalty`` each visit takes the negative gradient
``g_t = sum_{r in t} c_r x_rj R_r`` and minimizes the block exactly: one row of W meets each
task's rows separately, so its Hessian is ``diag(L_jt)`` with ``L_jt = sum_{r in t} c_r x_rj^2``
(soft-thresholding for entrywise penalties, the weighted group prox for L2,1). With intercepts,
coordinates are centered per task (an exact reparametrization, see ``_kernels``) and the
intercepts are minimized exactly after every epoch.

Outer loop (Johnson & Guestrin 2015; Massias, Gramfort & Salmon 2018): compute the duality gap
and ``G = X^T (c theta)`` over all features; discard the features the gap-safe rules prove zero
(``screening``); rank the rest by their distance to optimality (the distance of ``G_j`` to
the subdifferential) and keep the support plus the worst violators, ``max(p0, 2 |support|)`` in
all (at least p / 16 over the data, where smaller sets would leave the two ``X^T R`` products
of each outer iteration to dominate); solve the problem restricted to them until its own
duality gap is below 0.3 times the outer gap. Inner epochs are Anderson-extrapolated
(``anderson``), and run in Gram form (``gram``) on a shared design whose rows weigh the same
within each task. Where they crawl (collinear columns, p ~ n, small alpha: less than half the
gap closed in three checks), a Newton step on the active set (``polish``) gives both a
direction to search along and a dual point, at most as often as it costs epochs.

- Squared loss: the problem itself (``z = y``, ``c`` the row weights).
- Logistic loss: proximal Newton over the same working sets (``newton``; :func:`regmtl.solvers.bcd`
  picks it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...datafits import Datafit
from ...penalties import Penalty
from ...taskdata import TaskData
from ..certificates.certify import Certificate, Reference, certify
from ..certificates.dual_projection import projected_duals
from ..certificates.polish import active_newton_step, solve_active
from ..certificates.screening import safe_radius, screen
from ..parts.epochs import (
    DataInner,
    LeastSquaresEpochs,
    line_search,
    quadratic_gap,
    run_inner,
)
from ..parts.gram import GramInner, TaskGramInner, gram_stats, shared_row_weights, task_row_weight
from ..parts.moments import uniform_within_tasks
from ..parts.quadratic import TASK_GRAM_ROWS, quadratic_applies, task_quadratic, weighted_rows
from ..parts.working_set import nonzero_rows, select_working_set
from ..result import SolverResult

__all__ = ["least_squares_bcd", "BCD_OPTIONS", "check_options", "gram_applies"]

#: Options of :func:`bcd` a user may set (``solver_options`` of the estimators).
BCD_OPTIONS = ("working_set", "screening", "anderson", "gram", "p0")


# ----------------------------------------------------------------------------- outer problems
class _DataProblem:
    """Squared loss over the data: the residual is kept; one ``X^T R`` per outer iteration."""

    def __init__(self, data: TaskData, fit_intercept: bool, params, W, b, gram_ws: bool):
        self.data, self.c, self.fit_intercept = data, data.c, fit_intercept
        self.uniform = uniform_within_tasks(data)
        self.ls = LeastSquaresEpochs(data, self.c, self.uniform, fit_intercept, params)
        self.L = self.ls.L
        self.gram_ws = gram_ws
        self.bc = self.ls.centered(W, b)
        self.R = np.empty(data.n_obs)
        self.ls.residual(data.y, self.bc, W, nonzero_rows(W), self.R)
        self.ls.intercepts(self.R, self.bc)
        self.theta = None
        # an outer iteration costs two X^T products (2 n p T); five epochs on k features
        # cost about 15 n k T: working sets below p / 16 leave the outer iterations to
        # dominate, so doubling starts there (small p: from p0)
        self.ws_floor = data.n_features // 16
        self.from_start = True  # (each round costs passes over the data: extrapolate early)
        self.gram_inner = False  # (the last inner solve ran on its working set's Gram)

    def rounding(self, W) -> float:
        return 0.0

    def outer_terms(self, W):
        """``RR`` and the dual candidates: the residual, and the extrapolated residual of the
        last inner solve (its ``X^T (c theta)`` costs one more product)."""
        y, u, sums = self.data.y, self.c * self.R, self.data.task_sums
        RR = sums(u * self.R)
        duals = [(self.data.adjoint(u), RR, sums(u * y))]
        if self.theta is not None:
            v = self.c * self.theta
            duals.append((self.data.adjoint(v), sums(v * self.theta), sums(v * y)))
            self.theta = None
        return float(RR.sum()), duals

    def polished(self, W, G, penalty, alpha):
        """The Newton step on the active set (:mod:`~regmtl.solvers.certificates.polish`) and the
        dual candidate of its residual, or None."""
        grams = (task_quadratic(self.data, self.fit_intercept)
                 if quadratic_applies(self.data) else None)
        out = active_newton_step(self.data, self.c, self.ls.xm, self.R, W, G, penalty, alpha,
                                 grams)
        if out is None:
            return None
        step, u = out
        theta = self.R - u
        v, sums = self.c * theta, self.data.task_sums
        return step, (self.data.adjoint(v), sums(v * theta), sums(v * self.data.y))

    def projected(self, G, penalty, alpha):
        """Dual candidates from the residual moved onto the faces of the dual ball it leaves
        (:mod:`~regmtl.solvers.certificates.dual_projection`)."""
        return projected_duals(self.data, self.c, self.ls.xm, self.R, G, self.data.y, penalty,
                               alpha, np.arange(self.data.n_features), self.ls.gradient,
                               self.ls.projection, ledger=self.ls.ledger)

    def zero(self, W, rows):
        W[rows] = 0.0
        self.ls.residual(self.data.y, self.bc, W, nonzero_rows(W), self.R)
        self.ls.intercepts(self.R, self.bc)

    def inner(self, ws, W, penalty, alpha):
        data, T = self.data, self.data.n_tasks
        n = data.X.shape[0]
        self.gram_inner = bool(self.gram_ws and len(ws) <= n and 2 * len(ws) <= data.n_features)
        if self.gram_inner:
            # the working set's columns (at most half of X) live only while Q_S is formed
            Xw = data.X[:, ws]
            xbar = self.ls.xm[ws, 0].copy()
            Q = Xw.T @ Xw
            Q -= n * np.outer(xbar, xbar)
            Rmat = self.R.reshape(T, n).T
            E0 = Xw.T @ Rmat - np.outer(xbar, Rmat.sum(axis=0))
            del Xw
            rr0 = np.einsum("it,it->t", Rmat, Rmat)
            yR0 = np.einsum("it,it->t", data.y.reshape(T, n).T, Rmat)
            return GramInner(Q, E0, rr0, yR0, W[ws], self.ls.ct, self.L[ws], self.ls.params,
                             penalty, alpha)
        return DataInner(self.ls, self.R, self.bc, data.y, W, ws, penalty, alpha)

    def finish(self, inner, ws, W):
        if isinstance(inner, GramInner):  # R -= X_S,c (W_S - W0_S), no copy of X
            D = np.zeros_like(W)
            D[ws] = inner.W - inner.W0
            W[ws] = inner.W
            self.ls.residual(self.R.copy(), np.zeros(self.data.n_tasks), D, ws, self.R)
            self.ls.intercepts(self.R, self.bc)
        elif inner.theta_won:
            # the extrapolated residual is a dual candidate over all features (one more
            # X^T product) only where it beat the residual on the working set
            self.theta = inner.theta

    def intercepts(self, W):
        return self.ls.uncentered(W, self.bc)


class _GramProblem:
    """Squared loss in Gram form over all features: no pass over the data while iterating.

    Its certificate is the gap from the Gram sums plus a bound on their rounding error, so it
    stays an upper bound on the suboptimality; should it stall above ``tol`` the solve goes on
    over the data."""

    def __init__(self, data: TaskData, fit_intercept: bool, params):
        self.stats = st = gram_stats(data, fit_intercept)
        self.ct = task_row_weight(data)
        self.L = st.ss[:, None] * self.ct[None, :]
        self.params = params
        self._last = None
        self.ws_floor = 0  # (outer iterations cost no pass over the data)
        self.from_start = False

    def _terms(self, W):
        rows = nonzero_rows(W)
        E = self.stats.correlations(W, rows)
        Wr, Br, Er = W[rows], self.stats.B[rows], E[rows]
        wb = np.einsum("it,it->t", Wr, Br)
        rr = self.stats.yy - wb - np.einsum("it,it->t", Wr, Er)
        yR = self.stats.yy - wb
        return E, rr, yR

    def outer_terms(self, W):
        E, rr, yR = self._last = self._terms(W)
        return float(np.dot(self.ct, rr)), [(self.ct * E, self.ct * rr, self.ct * yR)]

    def polished(self, W, G, penalty, alpha):
        return None  # (Gram form: the data term is exact here; no valley to speak of)

    def rounding(self, W) -> float:
        """A bound on the rounding error of the gap computed from Gram sums: the residual's
        squared norm is a difference of terms as large as ``||y_c||^2`` and ``w.B``."""
        rows = nonzero_rows(W)
        wb = np.abs(np.einsum("it,it->t", W[rows], self.stats.B[rows]))
        return 1e-13 * float(np.dot(self.ct, self.stats.yy + 2.0 * wb))

    def zero(self, W, rows):
        W[rows] = 0.0
        self._last = None

    def inner(self, ws, W, penalty, alpha):
        E, rr, yR = self._last if self._last is not None else self._terms(W)
        Q = self.stats.Q[np.ix_(ws, ws)]
        return GramInner(Q, E[ws], rr, yR, W[ws], self.ct, self.L[ws], self.params, penalty,
                         alpha)

    def finish(self, inner, ws, W):
        W[ws] = inner.W
        self._last = None

    def intercepts(self, W):
        return self.stats.ybar - self.stats.xbar @ W


class _TaskGramProblem:
    """Squared loss over one Gram per task (lists or long form whose tasks have more rows than
    features, :class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`): no pass over the rows while
    iterating. Its certificate is the gap from the Gram sums plus a bound on their rounding;
    should it stall above ``tol`` the solve goes on over the data."""

    def __init__(self, q, params):
        self.q, self.params = q, params
        self.L = np.ascontiguousarray(np.einsum("tjj->jt", q.H))
        self._at = None  # (W, H W, gap terms) of the last outer iteration
        self.ws_floor = 0  # (outer iterations cost no pass over the rows)
        self.from_start = False

    def _terms(self, W):
        if self._at is None or not np.array_equal(self._at[0], W):
            HW = self.q.matvec(W)
            self._at = (W.copy(), HW, self.q.gap_terms(W, HW))
        return self._at

    def outer_terms(self, W):
        RR, G, TT, YT = self._terms(W)[2]
        return RR, [(G, TT, YT)]

    def rounding(self, W) -> float:
        _, HW, _ = self._terms(W)
        return self.q.rounding(W, HW)

    def polished(self, W, G, penalty, alpha):
        """The Newton step on the active set (:mod:`~regmtl.solvers.certificates.polish`) from the
        Grams, and the dual candidate of its residual in Gram sums."""
        grad = getattr(penalty, "active_gradient", None)
        if grad is None:
            return None
        D, mask = grad(W, alpha)
        A = np.flatnonzero(mask.any(axis=1))
        if len(A) == 0:
            return None
        delta = solve_active(self.q.H[:, A][:, :, A], mask[A].T, (G[A] - D[A]).T)  # T x k
        if delta is None:
            return None
        step = np.zeros_like(W)
        step[A] = delta.T
        Hstep = self.q.matvec(step)  # X_c^T (c X_c step) per task
        _, _, TT, YT = self._terms(W)[2]
        TT2 = TT - 2.0 * np.einsum("jt,jt->t", step, G) + np.einsum("jt,jt->t", step, Hstep)
        YT2 = YT - np.einsum("jt,jt->t", step, self.q.g)
        return step, (G - Hstep, TT2, YT2)

    def zero(self, W, rows):
        W[rows] = 0.0

    def inner(self, ws, W, penalty, alpha):
        Qs = self.q.H[:, ws][:, :, ws]
        return TaskGramInner(Qs, self.q.g[ws].T, self.q.e, W[ws], self.L[ws], self.params,
                             penalty, alpha)

    def finish(self, inner, ws, W):
        W[ws] = inner.W

    def intercepts(self, W):
        return self.q.intercepts(W)


#: The clipped dual candidate is tried where the plain gap is within this factor of tol (it
#: cuts the gap some 10 to 30 times on L2,1 of wide, shared and small tasks and iMSF: further
#: away it cannot certify, and the epochs that follow close the gap anyway), or where the
#: primal settled while the gap did not (collinear columns: there it certifies at once).
CLIP_REACH = 30.0


def _least_squares(problem, penalty, alpha, W, *, P0, tol, max_iter, verbose, working_set,
                   screening, anderson, p0, check_every=5, start=0):
    """The outer loop for the squared loss; returns (epochs, certificate, converged, stalled)."""
    p = W.shape[0]
    l1, l2, group = penalty.bcd_params(alpha)
    screened = np.zeros(p, dtype=bool)
    total, best, stalled, last_gap, crawled = start, np.inf, 0, np.inf, False
    last_primal = np.inf
    skip = idle = 0  # (the moved residual's checks: skipped, and the next skip's length)
    while True:
        RR, duals = problem.outer_terms(W)
        gap, primal, dual, s, Gd = quadratic_gap(penalty, alpha, W, RR, duals)
        G = duals[0][0]  # the gradient at W
        newton = None
        if gap + problem.rounding(W) > tol * P0 and (crawled or gap > 0.9 * last_gap):
            # the last round closed little of the gap, or its epochs stalled short of their
            # target: the dual point, or a valley coordinate descent crawls along, holds it
            # back; a Newton step on the active set helps both
            polished = problem.polished(W, G, penalty, alpha)
            if polished is not None:
                newton, extra = polished
                duals = [*duals, extra]
                gap, primal, dual, s, Gd = quadratic_gap(penalty, alpha, W, RR, duals)
        # (near tol, where inner solves pass over the rows: the working set's Gram makes
        # an outer iteration cheaper than the candidate's few passes)
        near = (gap + problem.rounding(W) <= CLIP_REACH * tol * P0
                and not getattr(problem, "gram_inner", False))
        lagging = last_primal - primal < 0.1 * gap  # (the primal settled, the gap did not)
        if (gap + problem.rounding(W) > tol * P0 and (near or lagging)
                and hasattr(problem, "projected") and np.any(W)):
            # the scaled residual falls short, by less than the moved one usually gains, or
            # it lags a primal that has settled (collinear columns): the residual moved onto
            # the ball's faces (not at W = 0, the start), at checks ever further apart while
            # it does not halve the gap (it costs a few passes); elsewhere the next epochs
            # close the gap anyway, and it would cost for nothing
            if skip > 0:
                skip -= 1
            else:
                extra = problem.projected(G, penalty, alpha)
                before = gap

                if extra:
                    gap, primal, dual, s, Gd = quadratic_gap(penalty, alpha, W, RR,
                                                             [*duals, *extra])
                idle = 0 if gap <= 0.5 * before else 2 * idle + 1
                skip = idle
        last_gap, last_primal = gap, primal
        cert = Certificate("duality_gap", gap + problem.rounding(W), primal, dual, P0)
        if verbose:
            print(f"[bcd] epoch {total:5d}  gap {cert.relative:.3e}  "
                  f"screened {int(screened.sum())}  primal {primal:.12e}")
        if cert.converged(tol):
            return total, cert, True, False
        stalled = 0 if gap < 0.99 * best else stalled + 1
        best = min(best, gap)
        if total >= max_iter or stalled >= 20:
            return total, cert, False, total < max_iter
        if screening and l1 > 0:
            new = screen(s * Gd, problem.L, safe_radius(gap, 1.0), l1, group, l2) & ~screened
            if new.any():
                screened |= new
                hit = new & np.any(W != 0.0, axis=1)
                if hit.any():
                    problem.zero(W, hit)
        if working_set:
            ws = select_working_set(penalty, alpha, W, G, screened, p0, problem.ws_floor)
        else:
            ws = np.flatnonzero(~screened).astype(np.int64)
        if len(ws) == 0:  # every feature is zero at the optimum, and W already is
            W[:] = 0.0
            RR, duals = problem.outer_terms(W)
            gap, primal, dual, _, _ = quadratic_gap(penalty, alpha, W, RR, duals)
            cert = Certificate("duality_gap", gap + problem.rounding(W), primal, dual, P0)
            return max(total, 1), cert, cert.converged(tol), False
        inner = problem.inner(ws, W, penalty, alpha)
        if newton is not None:
            line_search(inner, penalty, alpha, newton[ws])
        used, inner_gap = run_inner(inner, penalty, alpha, 0.3 * gap, max_iter - total,
                                     anderson, check_every, problem.from_start)
        crawled = inner_gap > 0.3 * gap
        problem.finish(inner, ws, W)
        total += used


def gram_applies(data: TaskData) -> bool:
    """Gram form is exact for a shared dense design whose rows weigh the same in each task."""
    return data.shared and not sp.issparse(data.X) and uniform_within_tasks(data)


def full_gram_applies(data: TaskData) -> bool:
    """The full Gram form (:class:`~regmtl.solvers.parts.gram.GramStats`) is exact for a shared
    design, dense or sparse, whose rows weigh alike in every task: uniform, or the same sample
    weights in each task (so that integer weights and repeated rows, and a sparse design and
    its dense copy, take this one path)."""
    return data.shared and data.observed is None and (
        data.sample_weight is None or shared_row_weights(data) is not None)


def check_options(options: dict | None, data: TaskData, datafit: Datafit) -> dict:
    """Validate ``solver_options`` (see :data:`BCD_OPTIONS`); returns a dict for :func:`bcd`."""
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"solver_options={options!r} must be a dict (or None), e.g. "
                         "dict(screening=False).")
    options = dict(options or {})
    unknown = sorted(set(options) - set(BCD_OPTIONS))
    if unknown:
        raise ValueError(
            f"solver_options has unknown keys {unknown}; the known ones are {list(BCD_OPTIONS)}."
        )
    for key in ("working_set", "screening"):
        if key in options and not isinstance(options[key], (bool, np.bool_)):
            raise ValueError(f"solver_options[{key!r}]={options[key]!r} must be True or False.")
    for key, low in (("anderson", 0), ("p0", 1)):
        if key in options:
            v = options[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"solver_options[{key!r}]={v!r} must be an integer >= {low}.")
    gram = options.get("gram", "auto")
    if not (gram is True or gram is False or (isinstance(gram, str) and gram == "auto")):
        raise ValueError(f"solver_options['gram']={gram!r} must be True, False or 'auto'.")
    if gram is True and not (full_gram_applies(data) and datafit.quadratic):
        raise ValueError(
            "solver_options['gram']=True needs the squared loss on a shared dense design "
            "(fit(X, Y) with 2-D Y) without missing labels, its sample weights the same in "
            "every task; use 'auto'."
        )
    return options


def _use_full_gram(data: TaskData, gram, tol: float) -> bool:
    """Full Gram form: asked for, or ('auto') n >= 2p, p <= 4000, and tol above the rounding
    floor of the Gram sums (about 2e-13 relative)."""
    if gram is True:
        return True
    if gram == "auto" and full_gram_applies(data):
        n, p = data.X.shape
        return n >= 2 * p and p <= 4000 and tol >= 1e-12
    return False


def least_squares_bcd(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    verbose: int = 0,
    working_set: bool = True,
    screening: bool = True,
    anderson: int = 5,
    gram: bool | str = "auto",
    p0: int = 10,
) -> SolverResult:
    """Block coordinate descent for the squared loss and a penalty with a block step
    (``penalty.bcd_params(alpha)``), from ``(W, b)`` in place; the arguments as in
    :func:`regmtl.solvers.bcd`, which also solves the logistic loss (by proximal Newton)."""
    params = penalty.bcd_params(alpha)
    if params is None or not datafit.quadratic:
        raise ValueError(f"least_squares_bcd solves the squared loss with a row-separable "
                         f"penalty, not {penalty!r} with the {datafit.name} loss.")
    if not (penalty.has_dual and alpha > 0):
        return _kkt_loop(data, datafit, penalty, alpha, W, b, params, ref=ref,
                         fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                         verbose=verbose)
    options = dict(P0=ref.P0, tol=tol, max_iter=max_iter, verbose=verbose,
                   working_set=working_set, screening=screening, anderson=anderson, p0=p0)
    gram_ws = gram is not False and gram_applies(data)
    total = 0
    full = None
    if _use_full_gram(data, gram, tol):
        full = _GramProblem(data, fit_intercept, params)
    elif gram is not False and not data.shared and data.n_tasks > 1 and tol >= 1e-12 and (
            quadratic_applies(data)
            and weighted_rows(data) > TASK_GRAM_ROWS * data.n_tasks * data.n_features):
        # several tasks of well over as many rows as features (a Gram epoch costs p per row's
        # n_t); rows counted by their weights over the smallest one: weights, rescaled weights and
        # repeated rows take one path.
        # A single task keeps its epochs over the rows (scikit-learn's iterates, to rounding)
        full = _TaskGramProblem(task_quadratic(data, fit_intercept), params)
    if full is not None:
        problem = full
        total, cert, converged, _ = _least_squares(problem, penalty, alpha, W, **options)
        b[:] = problem.intercepts(W) if fit_intercept else 0.0
        if converged or total >= max_iter:
            return SolverResult(W, b, max(total, 1), cert, converged)
        # stalled above tol (cancellation in the Gram formulas): go on over the data
    problem = _DataProblem(data, fit_intercept, params, W, b, gram_ws)
    total, cert, converged, stalled = _least_squares(problem, penalty, alpha, W, start=total,
                                                     **options)
    b[:] = problem.intercepts(W)
    return SolverResult(W, b, max(total, 1), cert, converged, stalled=stalled)


def _kkt_loop(data, datafit, penalty, alpha, W, b, params, *, ref, fit_intercept, tol,
              max_iter, verbose, check_every=10):
    """Plain epochs certified by the KKT residual (alpha = 0: no dual to screen with)."""
    uniform = uniform_within_tasks(data)
    epochs = LeastSquaresEpochs(data, data.c, uniform, fit_intercept, params)
    R = data.y - data.linear(W, b)
    bc = epochs.centered(W, b)
    epochs.intercepts(R, bc)
    cert, converged, it = None, False, 0
    for it in range(1, max_iter + 1):
        change = epochs.run(R, W, bc)
        small = change <= tol * np.abs(W).max(initial=0.0)
        if it % check_every == 0 or it == max_iter or small or it == 1:
            cert = certify(data, datafit, penalty, alpha, W, data.y - R, fit_intercept, ref)
            if verbose:
                print(f"[bcd] epoch {it:5d}  {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                converged = True
                break
    return SolverResult(W, epochs.uncentered(W, bc), it, cert, converged)
