r"""Block coordinate descent over features for row-separable penalties, with working sets.

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
- Logistic loss: proximal Newton over the same working sets (``newton``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import Penalty
from ..taskdata import TaskData
from ._kernels import (
    QUADRATIC,
    bcd_epoch_dense,
    bcd_epoch_shared_fused,
    bcd_epoch_sparse,
    gradient_dense,
    gradient_shared,
    gradient_sparse,
    residual_dense,
    residual_sparse,
    update_intercepts,
)
from .anderson import Anderson
from .certificates import Certificate, Reference, certify
from .gram import GramInner, TaskGramInner, gram_stats
from .moments import feature_moments, uniform_within_tasks
from .polish import active_newton_step, solve_active
from .prox_grad import task_quadratic
from .quadratic import quadratic_applies
from .result import SolverResult
from .screening import safe_radius, screen

__all__ = ["bcd", "BCD_OPTIONS", "check_options"]

#: Options of :func:`bcd` a user may set (``solver_options`` of the estimators).
BCD_OPTIONS = ("working_set", "screening", "anderson", "gram", "p0")


class _LeastSquaresEpochs:
    """Epochs of block coordinate descent on ``sum_r c_r (z_r - f_r)^2 / 2 + penalty``.

    Holds what stays fixed while the weights do: centers and block constants (on ``features``
    only, all by default), buffers. The residual ``R = z - f`` and the centered intercepts
    ``bc`` are updated in place.
    """

    def __init__(self, data: TaskData, c: np.ndarray, uniform: bool, fit_intercept: bool,
                 l1: float, l2: float, group: int, features: np.ndarray | None = None):
        self.data, self.c, self.fit_intercept = data, c, fit_intercept
        p, T = data.n_features, data.n_tasks
        self.xm, self.L = feature_moments(data, c, fit_intercept, features, uniform)
        self.ct = c[data.indptr[:-1]].copy()
        self.offset = data.offset
        self.uniform = uniform
        self.params = (l1, l2, group)
        self.features = np.arange(p, dtype=np.int64) if features is None else features
        self.g, self.delta, self.shift = np.zeros(T), np.zeros(T), np.zeros(T)

    def centered(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Intercepts in centered coordinates, ``b' = b + xm_t . w_t``."""
        return b + np.einsum("jt,jt->t", self.xm, W)

    def uncentered(self, W: np.ndarray, bc: np.ndarray) -> np.ndarray:
        return bc - np.einsum("jt,jt->t", self.xm, W)

    def intercepts(self, R: np.ndarray, bc: np.ndarray) -> None:
        if self.fit_intercept:
            update_intercepts(R, self.c, self.data.indptr, R, bc, QUADRATIC, 1, 0.0)

    def run(self, R: np.ndarray, W: np.ndarray, bc: np.ndarray) -> float:
        """One epoch over ``features`` then the exact intercepts; the largest change."""
        data, X, (l1, l2, group) = self.data, self.data.X, self.params
        if sp.issparse(X):
            change = bcd_epoch_sparse(
                X.data, X.indices, X.indptr, data.shared, data.task_of, self.c, data.indptr,
                self.xm, R, W, self.L, l1, l2, group, self.features, self.g, self.delta,
                self.shift,
            )
        elif data.shared and self.uniform:
            change = bcd_epoch_shared_fused(
                X, self.ct, self.xm, R.reshape(data.n_tasks, -1).T, W, self.L, l1, l2, group,
                self.features, self.g, self.delta,
            )
        else:
            change = bcd_epoch_dense(
                X, self.c, self.ct, self.uniform, data.indptr, self.offset, self.xm, R, W,
                self.L, l1, l2, group, self.features, self.g, self.delta,
            )
        self.intercepts(R, bc)
        return change

    def residual(self, z: np.ndarray, bc: np.ndarray, W: np.ndarray, features: np.ndarray,
                 R: np.ndarray) -> None:
        """``R = z - f`` for coefficients W that are zero outside ``features``."""
        data, X = self.data, self.data.X
        if sp.issparse(X):
            residual_sparse(X.data, X.indices, X.indptr, data.shared, data.task_of, data.indptr,
                            self.xm, z, bc, W, features, R, self.shift)
        else:
            residual_dense(X, data.indptr, self.offset, self.xm, z, bc, W, features, R)

    def gradient(self, u: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``X_c^T u`` on ``features`` (k x T)."""
        return feature_gradient(self.data, self.xm, u, features)


def feature_gradient(data: TaskData, xm: np.ndarray, u: np.ndarray,
                     features: np.ndarray) -> np.ndarray:
    """``G[i, t] = sum_{r in t} (x_rj - xm_jt) u_r`` for ``j = features[i]`` (k x T)."""
    X = data.X
    G = np.zeros((len(features), data.n_tasks))
    if sp.issparse(X):
        gradient_sparse(X.data, X.indices, X.indptr, data.shared, data.task_of, data.indptr, xm,
                        u, data.task_sums(u), features, G)
    elif data.shared:
        gradient_shared(X, xm, u.reshape(data.n_tasks, -1).T, features, G)
    else:
        gradient_dense(X, data.indptr, data.offset, xm, u, features, G)
    return G


def quadratic_gap(penalty: Penalty, alpha: float, W: np.ndarray, RR: float,
                  duals: list) -> tuple[float, float, float, float, np.ndarray]:
    """``(gap, primal, dual, s, G)`` of the squared loss, the best of several dual points.

    ``RR = sum_r c_r R_r^2`` at the primal point. Each dual candidate ``theta`` (centered per
    task with intercepts) comes as ``(G, TT, YT)``: ``G = X^T (c theta)`` and per task
    ``TT_t = sum_{r in t} c_r theta_r^2``, ``YT_t = sum_{r in t} c_r y_r theta_r``; it is
    scaled by ``s`` (one number, or one per task) into the domain of the penalty's conjugate.
    The residual itself is the first candidate.
    """
    primal = 0.5 * RR + penalty.value(W, alpha)
    best = None
    for G, TT, YT in duals:
        s = penalty.dual_scaling(G, alpha)
        dual = float(np.sum(s * YT - 0.5 * s * s * TT)) - penalty.conjugate(s * G, alpha)
        if best is None or dual > best[0]:
            best = (dual, s, G)
    dual, s, G = best
    return max(primal - dual, 0.0), primal, dual, s, G


# ----------------------------------------------------------------------------- inner problems
class _DataInner:
    """The problem restricted to the features ``ws``, solved by epochs over the data."""

    def __init__(self, ls: _LeastSquaresEpochs, R, bc, z, W, ws, penalty, alpha):
        self.ls, self.R, self.bc, self.z, self.Wfull, self.ws = ls, R, bc, z, W, ws
        self.penalty, self.alpha = penalty, alpha
        ls.features = ws
        self.R_try = np.empty_like(R)
        self.residuals = Anderson(5)  # extrapolated residuals: a better dual point
        self.theta = None
        self.theta_won = True  # whether theta gave the best restricted gap at the last check
        self._candidates = None
        self.polished = None  # the dual candidate of the last Newton step (see ``newton``)

    def record(self) -> None:
        theta = self.residuals.push(self.R)
        if theta is not None:
            self.theta = theta

    @property
    def W(self) -> np.ndarray:
        return self.Wfull[self.ws]

    def epoch(self) -> float:
        """A sweep over the working set, then two over its nonzero rows when they are few
        (cheap passes where the work is, as glmnet's active-set cycling); the largest change of
        the full sweep."""
        ls, ws = self.ls, self.ws
        ls.features = ws
        change = ls.run(self.R, self.Wfull, self.bc)
        active = ws[np.any(self.Wfull[ws] != 0.0, axis=1)]
        if 0 < len(active) <= 0.7 * len(ws):
            ls.features = active
            ls.run(self.R, self.Wfull, self.bc)
            ls.run(self.R, self.Wfull, self.bc)
            ls.features = ws
        return change

    def _objective(self, R: np.ndarray, Wws: np.ndarray) -> float:
        return 0.5 * float(np.dot(self.ls.c, R * R)) + self.penalty.value(Wws, self.alpha)

    def try_point(self, Wws: np.ndarray) -> bool:
        W_try = self.Wfull.copy()
        W_try[self.ws] = Wws
        self.ls.residual(self.z, self.bc, W_try, self.ws, self.R_try)
        if self._objective(self.R_try, Wws) < self._objective(self.R, self.W):
            self.R[:] = self.R_try
            self.Wfull[self.ws] = Wws
            return True
        return False

    def along(self, D: np.ndarray) -> tuple[float, float, np.ndarray]:
        """The data term along ``W + t D`` (D on ``ws``): ``data(t) = data(0) - a t + b t^2/2``;
        returns ``(a, b, u)`` with ``u = X_c D`` (the residual moves by ``-t u``)."""
        Dfull = np.zeros_like(self.Wfull)
        Dfull[self.ws] = D
        u = np.empty_like(self.R)
        zero = np.zeros(len(self.bc))
        self.ls.residual(np.zeros_like(self.R), zero, Dfull, self.ws, u)  # -X_c D
        u = -u
        cu = self.ls.c * u
        return float(np.dot(cu, self.R)), float(np.dot(cu, u)), u

    def move(self, D: np.ndarray, t: float, u: np.ndarray) -> None:
        self.Wfull[self.ws] += t * D
        self.R -= t * u

    def gap_terms(self) -> tuple[float, list]:
        """``RR`` and the dual candidates (the residual, its extrapolation) on ``ws``."""
        c, ws, sums = self.ls.c, self.ws, self.ls.data.task_sums
        u = c * self.R
        RR = sums(u * self.R)
        duals = [(self.ls.gradient(u, ws), RR, sums(u * self.z))]
        if self.theta is not None:
            v = c * self.theta
            duals.append((self.ls.gradient(v, ws), sums(v * self.theta), sums(v * self.z)))
        if self.polished is not None:
            duals.append(self.polished)
        self._candidates = duals
        return float(RR.sum()), duals

    def newton_cost(self) -> float:
        """What a Newton step on the active set costs, in epochs over the working set: forming
        the k active columns' Grams (``n k^2 / 2``) and solving them (``T k^3 / 3``) against
        an epoch's ``2 n |ws|``, with rows counted by their weights (weighted and repeated
        rows take the same path)."""
        data, ws = self.ls.data, self.ws
        k = int(np.count_nonzero(np.any(self.Wfull[ws] != 0.0, axis=1)))
        n = max(_weighted_rows(data), 1.0)
        return 0.25 * k * k / len(ws) + data.n_tasks * k**3 / (6.0 * n * len(ws))

    def newton(self) -> bool:
        """One Newton step on the active set (:mod:`~regmtl.solvers.polish`): a search along it,
        and its residual a dual candidate from then on. False when there is none."""
        ls, ws, c = self.ls, self.ws, self.ls.c
        G = np.zeros_like(self.Wfull)
        G[ws] = ls.gradient(c * self.R, ws)
        out = active_newton_step(ls.data, c, ls.xm, self.R, self.Wfull, G, self.penalty,
                                 self.alpha)
        if out is None:
            return False
        step, u = out
        theta = self.R - u
        v, sums = c * theta, ls.data.task_sums
        self.polished = (ls.gradient(v, ws), sums(v * theta), sums(v * self.z))
        # the full step, entries that would change sign stopped at zero (the sign pattern it
        # was taken on); else the best point along it
        W0 = self.W
        full = W0 + step[ws]
        full[full * W0 < 0.0] = 0.0
        if not self.try_point(full):
            _line_search(self, self.penalty, self.alpha, step[ws])
        return True

    def chose(self, G: np.ndarray) -> None:
        """Note which dual candidate (by its ``G``) gave the restricted gap."""
        self.theta_won = self._candidates is None or G is not self._candidates[0][0]


def _line_search(inner, penalty, alpha, D) -> bool:
    """Minimize the objective along ``W + t D`` over t >= 0 (convex in t); move if it drops.

    Coordinate descent on (nearly) collinear columns slides along the valley of the data term
    by the same step every epoch, a drift no extrapolation of a converging sequence removes;
    one exact search along the drift jumps to where a coordinate meets its kink. The minimizer
    is the root of the right derivative ``-a + b t + d/dt Omega(W + t D)``, found by
    bisection to the last bits (not by comparing values, which are flat near the minimum)."""
    a, b, u = inner.along(D)
    W0 = inner.W.copy()

    def slope(t):
        return -a + b * t + penalty.directional_derivative(W0 + t * D, D, alpha)

    if slope(0.0) >= 0.0:
        return False
    lo, hi = 0.0, 1.0
    while slope(hi) < 0.0:
        lo, hi = hi, 2.0 * hi
        if hi > 1e12:
            return False
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if slope(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    t = hi
    value = -a * t + 0.5 * b * t * t + penalty.value(W0 + t * D, alpha) - penalty.value(W0, alpha)
    if value < 0.0:
        inner.move(D, t, u)
        return True
    return False


def _aligned(a: np.ndarray, b: np.ndarray) -> bool:
    """Two successive epoch steps point the same way (cosine above 0.99) and are about as long
    (ratio above 0.9): a drift, not a geometric convergence, which Anderson handles."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return bool(na > 0.9 * nb > 0 and np.vdot(a, b) > 0.99 * na * nb)


def _run_inner(inner, penalty, alpha, target, budget, anderson, check_every,
               from_start=False):
    """Epochs until the restricted gap is below ``target``; returns (epochs, last gap).

    ``from_start``: the starting point opens the extrapolation windows (see below).

    ``target=None`` (no dual: alpha = 0) stops instead when the largest change of an epoch is
    below 1e-4 times that of the first."""
    acc = Anderson(anderson) if anderson else None
    gap, best, stalled = np.inf, np.inf, 0
    last, step = inner.W.copy(), None
    first = None
    gaps, mark = [], 0  # the gaps checked, the epoch of the last Newton step
    if from_start:
        # the starting point opens both windows (primal iterates, residuals): with K + 1 = 6
        # iterates the first ones close after epoch 5, right before the first gap check,
        # which is where most working-set solves stop (else they close after epoch 6)
        if acc is not None:
            acc.push(inner.W)
        inner.record()
    for e in range(1, budget + 1):
        change = inner.epoch()
        if target is None:
            first = change if first is None else first
            if change <= 1e-4 * first:
                return e, gap
        inner.record()
        if acc is not None:
            x = acc.push(inner.W)
            if x is not None:
                inner.try_point(x.reshape(inner.W.shape))
        W = inner.W
        new = W - last
        # a search along the drift, once the gap has stopped closing for three checks (a
        # continuous path otherwise: the same data in another row order gives the same iterates)
        if (stalled >= 3 and step is not None and _aligned(new, step)
                and _line_search(inner, penalty, alpha, new)):
            W = inner.W
            new = None
        last, step = W.copy(), new
        if target is not None and (change == 0.0 or e % check_every == 0 or e == budget):
            gap, *_, G = quadratic_gap(penalty, alpha, inner.W, *inner.gap_terms())
            if hasattr(inner, "chose"):
                inner.chose(G)
            # at the rounding floor the gap stops improving: hand back to the outer loop
            stalled = 0 if gap < 0.99 * best else stalled + 1
            best = min(best, gap)
            if gap <= target or change == 0.0 or stalled >= 10:
                return e, gap
            gaps.append(gap)
            # epochs crawl (less than half the gap closed in three checks): a Newton step on the
            # active set, at most as often as it costs epochs
            if (hasattr(inner, "newton") and len(gaps) >= 4 and gap > 0.5 * gaps[-4]
                    and e - mark >= max(3 * check_every, inner.newton_cost())):
                mark = e
                if inner.newton():
                    last, step, stalled = inner.W.copy(), None, 0
                    if acc is not None:
                        acc.reset()
    return budget, gap


# ----------------------------------------------------------------------------- outer problems
class _DataProblem:
    """Squared loss over the data: the residual is kept; one ``X^T R`` per outer iteration."""

    def __init__(self, data: TaskData, fit_intercept: bool, params, W, b, gram_ws: bool):
        self.data, self.c, self.fit_intercept = data, data.c, fit_intercept
        self.uniform = uniform_within_tasks(data)
        self.ls = _LeastSquaresEpochs(data, self.c, self.uniform, fit_intercept, *params)
        self.L = self.ls.L
        self.gram_ws = gram_ws
        self.bc = self.ls.centered(W, b)
        self.R = np.empty(data.n_obs)
        self.ls.residual(data.y, self.bc, W, _rows(W), self.R)
        self.ls.intercepts(self.R, self.bc)
        self.theta = None
        # an outer iteration costs two X^T products (2 n p T); five epochs on k features
        # cost about 15 n k T: working sets below p / 16 leave the outer iterations to
        # dominate, so doubling starts there (small p: from p0)
        self.ws_floor = data.n_features // 16
        self.from_start = True  # (each round costs passes over the data: extrapolate early)

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
        """The Newton step on the active set (:mod:`~regmtl.solvers.polish`) and the dual
        candidate of its residual, or None."""
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

    def zero(self, W, rows):
        W[rows] = 0.0
        self.ls.residual(self.data.y, self.bc, W, _rows(W), self.R)
        self.ls.intercepts(self.R, self.bc)

    def inner(self, ws, W, penalty, alpha):
        data, T = self.data, self.data.n_tasks
        n = data.X.shape[0]
        if self.gram_ws and len(ws) <= n and 2 * len(ws) <= data.n_features:
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
        return _DataInner(self.ls, self.R, self.bc, data.y, W, ws, penalty, alpha)

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
        self.ct = data.c[data.indptr[:-1]].copy()
        self.L = st.ss[:, None] * self.ct[None, :]
        self.params = params
        self._last = None
        self.ws_floor = 0  # (outer iterations cost no pass over the data)
        self.from_start = False

    def _terms(self, W):
        rows = _rows(W)
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
        rows = _rows(W)
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
    features, :class:`~regmtl.solvers.quadratic.TaskQuadratic`): no pass over the rows while
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
        """The Newton step on the active set (:mod:`~regmtl.solvers.polish`) from the Grams,
        and the dual candidate of its residual in Gram sums."""
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


def _rows(W: np.ndarray) -> np.ndarray:
    """Features with a nonzero coefficient in some task."""
    return np.flatnonzero(np.any(W != 0.0, axis=1)).astype(np.int64)


def _working_set(penalty, alpha, W, G, screened, p0, floor=0):
    """The support and the worst violators of the optimality conditions (ranked by the
    distance of ``G_j`` to the subdifferential), ``max(p0, floor, 2 |support|)`` in all."""
    support = _rows(W)
    d = penalty.subdiff_distance(W, G, alpha)
    score = d if d.ndim == 1 else np.sqrt(np.einsum("jt,jt->j", d, d))
    score[screened] = -1.0
    score[support] = np.inf
    k = min(max(p0, floor, 2 * len(support)), int((~screened).sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.argpartition(-score, k - 1)[:k]).astype(np.int64)


def _least_squares(problem, penalty, alpha, W, *, P0, tol, max_iter, verbose, working_set,
                   screening, anderson, p0, check_every=5, start=0):
    """The outer loop for the squared loss; returns (epochs, certificate, converged, stalled)."""
    p = W.shape[0]
    l1, l2, group = penalty.bcd_params(alpha)
    screened = np.zeros(p, dtype=bool)
    total, best, stalled, last_gap, crawled = start, np.inf, 0, np.inf, False
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
                gap, primal, dual, s, Gd = quadratic_gap(penalty, alpha, W, RR, [*duals, extra])
        last_gap = gap
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
            ws = _working_set(penalty, alpha, W, G, screened, p0, problem.ws_floor)
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
            _line_search(inner, penalty, alpha, newton[ws])
        used, inner_gap = _run_inner(inner, penalty, alpha, 0.3 * gap, max_iter - total,
                                     anderson, check_every, problem.from_start)
        crawled = inner_gap > 0.3 * gap
        problem.finish(inner, ws, W)
        total += used


def _weighted_rows(data: TaskData) -> float:
    """The number of rows, each counted by its sample weight (missing labels count 0)."""
    s = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight
    return float(s.sum() if data.observed is None else s[data.observed].sum())


def gram_applies(data: TaskData) -> bool:
    """Gram form is exact for a shared dense design whose rows weigh the same in each task."""
    return data.shared and not sp.issparse(data.X) and uniform_within_tasks(data)


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
    if gram is True and not (gram_applies(data) and datafit.code == QUADRATIC):
        raise ValueError(
            "solver_options['gram']=True needs the squared loss on a shared dense design "
            "(fit(X, Y) with 2-D Y) without sample weights or missing labels; use 'auto'."
        )
    return options


def _use_full_gram(data: TaskData, gram, tol: float) -> bool:
    """Full Gram form: asked for, or ('auto') n >= 2p, p <= 4000, and tol above the rounding
    floor of the Gram sums (about 2e-13 relative)."""
    if gram is True:
        return True
    if gram == "auto" and gram_applies(data):
        n, p = data.X.shape
        return n >= 2 * p and p <= 4000 and tol >= 1e-12
    return False


def bcd(
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
    """Block coordinate descent over features, for row-separable penalties.

    A block is one feature across all tasks (row ``W_j``), minimized exactly (soft-thresholding
    for entrywise penalties, the group prox for L2,1). An outer loop computes the duality gap,
    discards the features the gap-safe rules prove zero, and solves the problem restricted to
    a working set of the support plus the worst violators of the optimality conditions; inner
    epochs are Anderson-extrapolated. The logistic loss runs as proximal Newton over the same
    working sets. ``working_set``, ``screening``, ``anderson`` and ``gram`` change how the
    optimum is reached, not where it is.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        A row-separable penalty (``L1``, ``L2``, ``ElasticNet``, ``L21``).
    alpha : float
        Overall strength, >= 0.
    W : ndarray of shape (p, T)
        Starting coefficients, modified in place.
    b : ndarray of shape (T,)
        Starting intercepts, modified in place.
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Relative duality gap (or KKT residual at ``alpha = 0``) to reach.
    max_iter : int, default=1000
        Bound on the epochs (proximal Newton steps for the logistic loss).
    verbose : int, default=0
        Print the certificate at every check when > 0.
    working_set : bool, default=True
        Solve growing subproblems on working sets of features.
    screening : bool, default=True
        Discard features by the gap-safe rules.
    anderson : int, default=5
        Iterates per Anderson extrapolation (0 for none).
    gram : bool or "auto", default="auto"
        Run epochs on the Gram matrix (squared loss on a shared dense design without sample
        weights or missing labels); ``"auto"`` when it pays.
    p0 : int, default=10
        The smallest working set (over the data, at least ``p // 16``).

    Returns
    -------
    SolverResult
        The solution and its certificate.

    Raises
    ------
    ValueError
        If the penalty is not row-separable.

    See Also
    --------
    regmtl.solvers.solve : Picks the solver and checks the options.
    regmtl.solvers.fista : For the other penalties.

    References
    ----------
    Massias, Gramfort & Salmon (2018), "Celer: a fast solver for the lasso with dual
    extrapolation", ICML; Ndiaye, Fercoq, Gramfort & Salmon (2017), "Gap safe screening rules
    for sparsity enforcing penalties", JMLR 18.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import bcd, reference
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> W, b = np.zeros((8, 3)), ref.b0.copy()
    >>> res = bcd(data, rm.Quadratic(), rm.L21(), 0.1, W, b, ref=ref)
    >>> res.converged, res.certificate.kind
    (True, 'duality_gap')
    """
    params = penalty.bcd_params(alpha)
    if params is None:
        raise ValueError(f"{penalty!r} is not row-separable: use solver='fista'.")
    has_dual = penalty.has_dual and alpha > 0
    if datafit.code != QUADRATIC:
        from .newton import prox_newton

        return prox_newton(data, datafit, penalty, alpha, W, b, params, ref=ref,
                           fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                           verbose=verbose, working_set=working_set and has_dual,
                           screening=screening and has_dual, p0=p0)
    if not has_dual:
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
            and _weighted_rows(data) > 1.5 * data.n_tasks * data.n_features):
        # several tasks of well over as many rows as features (a Gram epoch costs p per row's
        # n_t); rows counted by their weights, so that weights and repeated rows take one path.
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
    epochs = _LeastSquaresEpochs(data, data.c, uniform, fit_intercept, *params)
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
