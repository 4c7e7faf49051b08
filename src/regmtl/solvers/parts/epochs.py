r"""Epochs of block coordinate descent on a weighted least-squares problem, and the inner loop
that runs them on a working set of features.

A block is one feature across all tasks: row ``W_j``. For ``sum_r c_r (z_r - f_r)^2 / 2 +
penalty`` each visit takes the negative gradient ``g_t = sum_{r in t} c_r x_rj R_r`` and
minimizes the block exactly: one row of W meets each task's rows separately, so its Hessian is
``diag(L_jt)`` with ``L_jt = sum_{r in t} c_r x_rj^2`` (the penalty's block step,
:class:`~regmtl.penalties.base.BlockStep`). With intercepts, coordinates are centered per task
(an exact reparametrization, see ``_kernels``) and the intercepts are minimized exactly after
every epoch. The squared loss is such a problem (block coordinate descent,
:mod:`~regmtl.solvers.methods.bcd`); each proximal Newton step of the logistic loss is another
(:mod:`~regmtl.solvers.methods.newton`). Both run :func:`run_inner`: Anderson-extrapolated epochs
until the restricted duality gap (:func:`quadratic_gap`) meets its target, with a search
along drifts (:func:`line_search`) and Newton steps on the active set where epochs crawl.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...penalties import Penalty
from ...penalties.base import ENTRYWISE, BlockStep
from ...taskdata import TaskData
from ..certificates.dual_projection import Ledger, projected_duals
from ..certificates.group_dual import GroupProjection
from ..certificates.polish import active_newton_step
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
from .moments import feature_moments
from .quadratic import weighted_rows
from .sign_search import searched
from .task_columns import task_grams

__all__ = ["LeastSquaresEpochs", "DataInner", "feature_gradient", "quadratic_gap",
           "line_search", "run_inner", "aligned", "PROJECT_WITHIN"]

#: The residual moved onto the dual ball's faces
#: (:mod:`~regmtl.solvers.certificates.dual_projection`) comes within a few times the primal's own
#: distance to the optimum, where the scaled residual can be ten times further: it is built at a
#: check whose scaled gap is within this factor of the target (further away it would not reach the
#: target, and costs a few passes).
PROJECT_WITHIN = 8.0


class LeastSquaresEpochs:
    """Epochs of block coordinate descent on ``sum_r c_r (z_r - f_r)^2 / 2 + penalty``.

    Holds what stays fixed while the weights do: centers and block constants (on ``features``
    only, all by default), buffers. The residual ``R = z - f`` and the centered intercepts
    ``bc`` are updated in place.
    """

    def __init__(self, data: TaskData, c: np.ndarray, uniform: bool, fit_intercept: bool,
                 step: BlockStep, features: np.ndarray | None = None):
        self.data, self.c, self.fit_intercept = data, c, fit_intercept
        p, T = data.n_features, data.n_tasks
        self.xm, self.L = feature_moments(data, c, fit_intercept, features, uniform)
        self.ct = c[data.indptr[:-1]].copy()
        self.offset = data.offset
        self.uniform = uniform
        self.params = BlockStep(*step)
        self.features = np.arange(p, dtype=np.int64) if features is None else features
        self.g, self.delta, self.shift = np.zeros(T), np.zeros(T), np.zeros(T)
        self.projection = GroupProjection()  # (the group dual point, kept between checks)
        self.ledger = Ledger(data)  # (the epochs' work, which pays for the projected dual points)

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
        self.ledger.epoch(len(self.features))
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
        dual = float(np.sum(s * YT - 0.5 * s * s * TT)) - penalty.scaled_conjugate(G, s, alpha)
        if best is None or dual > best[0]:
            best = (dual, s, G)
    dual, s, G = best
    return max(primal - dual, 0.0), primal, dual, s, G


class DataInner:
    """The problem restricted to the features ``ws``, solved by epochs over the data."""

    def __init__(self, ls: LeastSquaresEpochs, R, bc, z, W, ws, penalty, alpha,
                 project: bool = True):
        self.ls, self.R, self.bc, self.z, self.Wfull, self.ws = ls, R, bc, z, W, ws
        self.penalty, self.alpha = penalty, alpha
        ls.features = ws
        self.R_try = np.empty_like(R)
        self.residuals = Anderson(5)  # extrapolated residuals: a better dual point
        self.theta = None
        self.theta_won = True  # whether theta gave the best restricted gap at the last check
        self._candidates = None
        self.polished = None  # the dual candidate of the last Newton step (see ``newton``)
        self.project = project  # (False: no projected dual points, see ``projects``)

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

    @property
    def projects(self) -> bool:
        """Whether the inner checks build projected dual points: not for an entrywise
        penalty, whose search over sign patterns (:meth:`signs`) lands on the exact dual, nor
        where the solve is a proximal Newton model (solved to a tenth of the outer gap, its
        stop need not be certified early: the candidate's passes cost more than the epochs
        it saves, Huber + L2,1 cross-validation on School 15.6 s -> 7.1 s)."""
        return self.project and self.ls.params.kind != ENTRYWISE

    def projected(self, G: np.ndarray, crawling: bool = False) -> list:
        """Dual candidates from the residual moved onto the faces of the dual ball it leaves
        on ``ws`` (:mod:`~regmtl.solvers.certificates.dual_projection`; ``G`` its correlations
        there), and for a group norm its projection where the epochs crawl."""
        ls = self.ls
        return projected_duals(ls.data, ls.c, ls.xm, self.R, G, self.z, self.penalty,
                               self.alpha, self.ws, ls.gradient, ls.projection, crawling,
                               ls.ledger)

    def newton_cost(self) -> float:
        """What a Newton step on the active set costs, in epochs over the working set: forming
        the k active columns' Grams (``n k^2 / 2``) and solving them (``T k^3 / 3``) against
        an epoch's ``2 n |ws|``, n the rows counted by their weights over the smallest one
        (weighted, repeated and rescaled rows take the same path)."""
        data, ws = self.ls.data, self.ws
        k = int(np.count_nonzero(np.any(self.Wfull[ws] != 0.0, axis=1)))
        n = max(weighted_rows(data), 1.0)
        return 0.25 * k * k / len(ws) + data.n_tasks * k**3 / (6.0 * n * len(ws))

    def newton(self) -> bool:
        """One Newton step on the active set (:mod:`~regmtl.solvers.certificates.polish`): a search
        along it, and its residual a dual candidate from then on. False when there is none."""
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
            line_search(self, self.penalty, self.alpha, step[ws])
        return True

    def signs(self) -> bool:
        """For an entrywise penalty (:func:`~regmtl.solvers.parts.sign_search.sign_search`): the
        search over sign patterns on ``ws``, from the Grams of its columns; True when it
        lowered the objective."""
        ls, ws = self.ls, self.ws
        l1, l2, kind = ls.params
        data = ls.data
        if kind != ENTRYWISE or l1 <= 0.0:
            return False
        # at most the work of ~400 passes over the data, as the Newton step it replaces
        W = searched(self.W, ls.gradient(ls.c * self.R, ws),
                     lambda f: task_grams(data, ls.c, ls.xm, ws[f]), l1, l2,
                     pair_cost=float(data.n_obs),
                     budget=400.0 * data.n_obs * data.n_features + 1e9)
        return W is not None and self.try_point(W)

    def chose(self, G: np.ndarray) -> None:
        """Note which dual candidate (by its ``G``) gave the restricted gap."""
        self.theta_won = self._candidates is None or G is not self._candidates[0][0]


def line_search(inner, penalty, alpha, D) -> bool:
    """Minimize the objective along ``W + t D`` over t >= 0 (convex in t); move if it drops.

    Coordinate descent on (nearly) collinear columns slides along the valley of the data term
    by the same step every epoch, a drift no extrapolation of a converging sequence removes;
    one exact search along the drift jumps to where a coordinate meets its kink. The minimizer
    is the root of the right derivative ``-a + b t + d/dt Omega(W + t D)``, found by
    bisection to the last bits (not by comparing values, which are flat near the minimum).

    Under a sign constraint (``penalty.max_step``: how far the line stays feasible) the search
    follows the projected path ``max(W + t D, 0)``: where entries reach 0 with the objective
    still falling they stay there, and the search goes on along the others (at most 16 bends;
    each costs one more product with the working set's columns)."""
    max_step = getattr(penalty, "max_step", None)
    moved = False
    for _ in range(16):
        W0 = inner.W.copy()
        t_max = max_step(W0, D) if max_step is not None else np.inf
        t = _search_segment(inner, penalty, alpha, D, W0, t_max)
        if t == 0.0:
            return moved
        moved = True
        if t < t_max:
            return True
        # the entries that reached 0 stay there; the others go on
        hit = (D < 0) & (W0 <= -D * t_max * (1.0 + 1e-9))
        if not hit.any():
            return True
        D = np.where(hit, 0.0, D)
    return moved


def _search_segment(inner, penalty, alpha, D, W0, t_max) -> float:
    """The exact search of :func:`line_search` over ``0 <= t <= t_max``: the step taken (the
    move made when it lowers the objective), 0.0 when none."""
    a, b, u = inner.along(D)

    def slope(t):
        return -a + b * t + penalty.directional_derivative(W0 + t * D, D, alpha)

    if t_max <= 0.0 or slope(0.0) >= 0.0:
        return 0.0
    lo, hi = 0.0, min(1.0, t_max)
    while hi < t_max and slope(hi) < 0.0:
        lo, hi = hi, min(2.0 * hi, t_max)
        if hi > 1e12:
            return 0.0
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
        return t
    return 0.0


def aligned(a: np.ndarray, b: np.ndarray) -> bool:
    """Two successive epoch steps point the same way (cosine above 0.99) and are about as long
    (ratio above 0.9): a drift, not a geometric convergence, which Anderson handles."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return bool(na > 0.9 * nb > 0 and np.vdot(a, b) > 0.99 * na * nb)


def run_inner(inner, penalty, alpha, target, budget, anderson, check_every,
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
    searched, found = 0, True  # the epoch of the last sign search, and whether it landed
    projected = -np.inf  # the epoch of the last projected dual point
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
                x = x.reshape(inner.W.shape)
                # an extrapolation past a sign constraint: its nearest feasible point
                project = getattr(penalty, "project", None)
                inner.try_point(project(x) if project is not None else x)
        W = inner.W
        new = W - last
        # a search along the drift, once the gap has stopped closing for three checks (a
        # continuous path otherwise: the same data in another row order gives the same iterates)
        if (stalled >= 3 and step is not None and aligned(new, step)
                and line_search(inner, penalty, alpha, new)):
            W = inner.W
            new = None
        last, step = W.copy(), new
        if target is not None and (change == 0.0 or e % check_every == 0 or e == budget):
            RR, duals = inner.gap_terms()
            gap, *_, G = quadratic_gap(penalty, alpha, inner.W, RR, duals)
            if (target < gap <= PROJECT_WITHIN * target and e - projected >= 4 * check_every
                    and getattr(inner, "projects", False)):
                # the scaled residual falls short: the residual moved onto the ball's faces
                projected = e
                extra = inner.projected(duals[0][0], len(gaps) >= 3 and gap > 0.5 * gaps[-3])
                if extra:
                    gap, *_, G = quadratic_gap(penalty, alpha, inner.W, RR, [*duals, *extra])
            if hasattr(inner, "chose"):
                inner.chose(G)
            # at the rounding floor the gap stops improving: hand back to the outer loop
            stalled = 0 if gap < 0.99 * best else stalled + 1
            best = min(best, gap)
            if gap <= target or change == 0.0 or stalled >= 10:
                return e, gap
            gaps.append(gap)
            # epochs crawl (less than half the gap closed in three checks): the search over sign
            # patterns of an entrywise penalty, at once (on collinear columns at small alpha the
            # primal is far, not the dual point; the search bounds its own cost) and again while
            # it lands, else at most as often as it costs epochs; then a Newton step on the
            # active set, at most as often as it costs epochs
            if len(gaps) < 4 or gap <= 0.5 * gaps[-4]:
                continue
            moved = False
            if hasattr(inner, "signs") and e - searched >= (
                    3 * check_every if found else max(3 * check_every, inner.newton_cost())):
                searched, found = e, inner.signs()
                moved = found
            if (not moved and hasattr(inner, "newton")
                    and e - mark >= max(3 * check_every, inner.newton_cost())):
                mark = e
                moved = inner.newton()
            if moved:
                last, step, stalled = inner.W.copy(), None, 0
                if acc is not None:
                    acc.reset()
    return budget, gap
