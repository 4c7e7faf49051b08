r"""The KKT residual of a loss with kinks (the pinball loss, alone or in a loss list), taken
on the loss itself: what certifies a fit where no duality gap is at hand (a penalty without a
tractable dual, or a nonconvex one).

At ``(V, b)`` with scores ``f`` the subdifferential of the objective holds

.. math::

    \Big(-\sum_r c_r \theta_r x_r + \partial\Omega(V),\ -\textstyle\sum_{r \in t} c_r
    \theta_r\Big), \qquad \theta_r \in -\partial_f \ell(y_r, f_r),

with ``theta_r = -l'(f_r)`` fixed on the rows where the loss is smooth and free in its interval
``[tau - 1, tau]`` on the pinball rows at the kink ``r = 0`` (:func:`kink_rows`). Any choice of
the free ``theta_r`` gives an upper bound of the distance of 0 to that set (the Clarke
subdifferential for a nonconvex penalty): the residual of :func:`kink_certificate` is that
distance at the dual point ``hint`` on the free rows (clipped into their interval), moved
within the intervals by projected gradient on the squared distance where the penalty gives
its nearest subgradient (``penalty.subdiff_nearest``), relative to ``||G0||`` as every KKT
residual. It never reads a smoothing: a point of a smoothed problem
has its pinball rows off the kink, each with its fixed subgradient ``tau`` or ``tau - 1``.

Which rows count as on the kink: moving a row's target onto its score changes the loss, at
any score, by at most its cost ``c_r k_r`` (``datafit.kink_costs``: the pinball loss's
``max(tau, 1 - tau) |y_r - f_r|``). The rows are taken cheapest first while their costs add
up to at most ``slack``: the point is then stationary (to the residual) for a problem whose
objective differs from the given one by at most ``slack`` everywhere, and the solvers take
``slack`` a tenth of ``tol`` times the objective at W = 0. A budget over the rows, not a width
per row: a row left a little off the kink by the last iterations' rounding still counts, so
the verdict does not move with the machine's floating-point kernels.
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from .certify import Certificate, Reference, kkt_of_gradient
from .saddle import dual_box

__all__ = ["kink_certificate", "kink_dual", "kink_rows", "kink_slack"]

#: projected-gradient steps that move the dual point of the rows at a kink within their
#: intervals (any point there bounds the distance: the certificate only tightens)
REFINE_STEPS = 300
#: the most rows at a kink for which it is moved (about the number of coefficients)
MAX_REFINED_ROWS = 2000


def kink_slack(tol: float, ref: Reference) -> float:
    """How much the rows counted as on a kink may move the objective: ``0.1 tol P0``."""
    return max(0.1 * tol * ref.P0, 0.0)


def kink_rows(datafit: Datafit, y: np.ndarray, f: np.ndarray, c: np.ndarray,
              slack: float) -> np.ndarray:
    """The rows counted as on a kink (bool mask): cheapest first (cost ``c_r k_r``,
    ``datafit.kink_costs``) while the costs add up to at most ``slack``."""
    costs = c * datafit.kink_costs(y, f)
    out = np.zeros(np.shape(f), dtype=bool)
    # (only a row that fits the budget alone may be taken: those few are sorted, not all N;
    # inf, the rows of a smooth loss, never fits)
    near = np.flatnonzero(costs <= slack)
    order = near[np.argsort(costs[near], kind="stable")]
    out[order[np.cumsum(costs[order]) <= slack]] = True
    return out


def kink_dual(data: TaskBlocks, datafit: Datafit, f: np.ndarray, free: TaskBlocks,
              fit_intercept: bool, penalized: TaskBlocks | None = None,
              rows: bool = False) -> np.ndarray:
    r"""The dual point ``theta = -l'(f)`` at an exact, unpenalized fit ``f`` of the columns
    ``free`` (the same rows, a subset of the columns), with the rows at a kink given the
    subgradient that makes that fit's optimality exact.

    Where the loss is smooth, or a row is off its kink, ``theta_r`` is fixed. On the rows at a
    kink (a pinball row with ``r = 0``) any value in ``[tau - 1, tau]`` is a subgradient, and
    the fit's optimality pins them: per task t, with ``a_r = (x_{r,F}, 1)`` (the intercept's
    entry where it is fitted),

    .. math::

        \sum_{r \in K_t} c_r \theta_r a_r = -\sum_{r \in t \setminus K_t} c_r \theta_r a_r,

    a square system at a vertex of the linear program (as many rows at the kink as free
    coefficients), solved per task (least norm where the rows at the kink are more: a
    degenerate fit, whose solution is then clipped to the intervals and may not be the one
    of the smallest ``alpha_max``). The rows at the kink are a task's rows with
    ``|r| <= sqrt(eps) max |r|``. Leaving them at 0 (``datafit.theta``)
    would make ``X^T (c theta)`` over the penalized columns, and the ``alpha_max`` read from
    it, wrong by up to a few times. Rows held elsewhere (task blocks): ``datafit.theta``.

    ``penalized``: the penalized columns of an entrywise penalty (the lasso, the elastic net,
    whose ``alpha_max`` is the largest ``|X^T (c theta)|`` of a penalized column). Of the
    subgradients that keep the free fit optimal, each task then takes the one of the smallest
    such maximum: a linear program over its rows at the kink (HiGHS), exact where many rows
    tie at the kink (integer targets), where the least-norm solution clipped to the
    intervals is not. With ``rows`` (a penalty of rows, L2,1, whose ``alpha_max`` is the
    largest norm over tasks of a penalized column's gradient) the tasks are coupled: one
    cone program over every task's rows at the kink, :func:`_smallest_row_norm`."""
    y, c = data.y, data.c
    theta = datafit.theta(y, f)
    if datafit.smooth or not data.rows_local:
        return theta
    r = np.abs(y - f)
    costs = datafit.kink_costs(y, f)
    lo, hi = dual_box(datafit, y)
    m = free.n_features + int(fit_intercept)
    tol = np.sqrt(np.finfo(float).eps)
    coupled: list[tuple] = []  # (K, M, g0, E, rhs) per task with rows at the kink
    for t, (a, e) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
        if e == a or m == 0:
            continue
        rt = r[a:e]
        kinked = np.isfinite(costs[a:e]) & (c[a:e] > 0)
        scale = float(rt.max())
        near = np.flatnonzero(kinked & (rt <= tol * scale))
        if len(near) == 0:
            continue
        K = a + near
        A = _free_rows(data, free, t, a, e, fit_intercept)  # (n_t, m)
        u = c[a:e] * theta[a:e]
        u[K - a] = 0.0
        cK = c[K][:, None] * A[K - a]
        sol = None
        if penalized is not None:
            P = _free_rows(data, penalized, t, a, e, False)
            if rows:
                coupled.append((t, K, P[K - a] * c[K][:, None], P.T @ u, cK, -(A.T @ u)))
            else:
                sol = _smallest_max(P[K - a] * c[K][:, None], P.T @ u, cK, -(A.T @ u),
                                    lo[K], hi[K])
        if sol is None:
            sol = np.clip(np.linalg.lstsq(cK.T, -(A.T @ u), rcond=None)[0], lo[K], hi[K])
        theta[K] = sol
    if coupled:
        G = penalized.adjoint(c * theta)  # (the tasks without rows at the kink: fixed)
        best = _smallest_row_norm(coupled, G, theta, lo, hi)
        if best is not None:
            for (_, K, *_), v in zip(coupled, best, strict=True):
                theta[K] = v
    return theta


#: Rounds of cuts of :func:`_smallest_row_norm`, and the relative gap at which it stops.
ROW_NORM_ROUNDS = 100
ROW_NORM_GAP = 1e-6


def _smallest_row_norm(coupled: list[tuple], G: np.ndarray, theta: np.ndarray,
                       lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray] | None:
    r"""The kink rows' subgradients ``v_t`` in their boxes with ``E_t^T v_t = rhs_t`` (each
    task's free fit optimal) of the smallest :math:`\max_j \|G_j\|_2`, ``G_{jt} = (M_t^T
    v_t + g_{0t})_j`` (a penalized column's gradient, its norm over the tasks), a cone
    program solved by cuts (Kelley): the linear program in ``(v, s)`` that minimizes ``s``
    with :math:`u^\top G_j \le s` for the unit vectors ``u`` met so far (``G_j``'s direction
    at each point found, the rows whose norm exceeds ``s``); its ``s`` bounds the optimum from
    below and the norms at its point from above, and the rounds stop when they meet within
    :data:`ROW_NORM_GAP` (or after :data:`ROW_NORM_ROUNDS`, with the best point found).
    ``G``: the gradient at the current ``theta`` (p x T); ``coupled``: ``(t, K, M, g0, E,
    rhs)`` per task with rows at the kink. None where a program fails."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    sizes = [len(K) for _, K, *_ in coupled]
    starts = np.concatenate(([0], np.cumsum(sizes)))
    n = int(starts[-1])
    fixed = G.copy()
    for t, _, _, g0, *_ in coupled:
        fixed[:, t] = g0  # (the part of G_t that v_t does not move)
    A_eq = sp.block_diag([E.T for *_, E, _ in coupled], format="csr")
    A_eq = sp.hstack([A_eq, sp.csr_matrix((A_eq.shape[0], 1))], format="csr")
    b_eq = np.concatenate([rhs for *_, rhs in coupled])
    K_all = np.concatenate([K for _, K, *_ in coupled])
    bounds = [*zip(lo[K_all].tolist(), hi[K_all].tolist(), strict=True), (0.0, None)]
    cost = np.zeros(n + 1)
    cost[-1] = 1.0

    def gradient(v: np.ndarray) -> np.ndarray:
        out = fixed.copy()
        for (t, _, M, *_), a, b in zip(coupled, starts[:-1], starts[1:], strict=True):
            out[:, t] += M.T @ v[a:b]
        return out

    def cut(Gj: np.ndarray, j: int) -> tuple[np.ndarray, float]:
        u = Gj / np.linalg.norm(Gj)
        row = np.zeros(n + 1)
        for (t, _, M, *_), a, b in zip(coupled, starts[:-1], starts[1:], strict=True):
            row[a:b] = u[t] * M[:, j]
        row[-1] = -1.0
        return row, -float(u @ fixed[j])

    v0 = np.concatenate([theta[K] for _, K, *_ in coupled])
    cuts, rhs_ub = [], []
    Gp, lower = G, 0.0
    best_v, best = v0, float(np.linalg.norm(G, axis=1).max())
    for _ in range(ROW_NORM_ROUNDS):
        norms = np.linalg.norm(Gp, axis=1)
        for j in np.flatnonzero(norms > lower * (1.0 + 1e-12)):
            if norms[j] > 0.0:
                row, r = cut(Gp[j], j)
                cuts.append(row)
                rhs_ub.append(r)
        out = linprog(cost, A_ub=sp.csr_matrix(np.vstack(cuts)), b_ub=np.array(rhs_ub),
                      A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if out.status != 0:
            return None
        lower = float(out.x[-1])
        # the next cuts at the midpoint of the program's point and the best one (the
        # in-out stabilization of the cuts: Kelley's points alone jump from side to side)
        point = np.clip(0.5 * (out.x[:n] + best_v), lo[K_all], hi[K_all])
        Gp = gradient(point)
        upper = float(np.linalg.norm(Gp, axis=1).max())
        if upper < best:
            best_v, best = point, upper
        if best - lower <= ROW_NORM_GAP * max(best, 1e-300):
            break
    return [best_v[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def _smallest_max(M: np.ndarray, g0: np.ndarray, E: np.ndarray, rhs: np.ndarray,
                  lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    r"""The kink rows' subgradient ``v`` in ``[lo, hi]`` with ``E^T v = rhs`` (the free fit's
    optimality) of the smallest :math:`\max_j |(M^T v + g_0)_j|` (the penalized columns'
    gradient): a linear program in ``(v, s)``, minimize ``s`` with ``-s <= M^T v + g_0 <= s``
    (HiGHS); None where it finds no solution (the rows near the kink read too loosely)."""
    from scipy.optimize import linprog

    k, q = M.shape
    if q == 0:
        return None
    ones = np.ones((q, 1))
    A_ub = np.vstack([np.hstack([M.T, -ones]), np.hstack([-M.T, -ones])])
    b_ub = np.concatenate([-g0, g0])
    A_eq = np.hstack([E.T, np.zeros((E.shape[1], 1))])
    cost = np.zeros(k + 1)
    cost[-1] = 1.0
    bounds = [*zip(lo.tolist(), hi.tolist(), strict=True), (0.0, None)]
    out = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=rhs, bounds=bounds,
                  method="highs")
    if out.status != 0:
        return None
    return np.clip(out.x[:k], lo, hi)


def _free_rows(data: TaskBlocks, free: TaskBlocks, t: int, a: int, e: int,
               fit_intercept: bool) -> np.ndarray:
    """Task t's rows of the free columns (dense), with a column of ones for its intercept."""
    rows = np.arange(e - a) if data.shared else np.arange(a, e)
    Xf = free.X[rows]
    Xf = Xf.toarray() if hasattr(Xf, "toarray") else np.asarray(Xf, dtype=np.float64)
    return np.column_stack([Xf, np.ones(e - a)]) if fit_intercept else Xf


def _refined(data, penalty, alpha, V, theta, K, lo, hi, fit_intercept,
             n_steps: int = REFINE_STEPS) -> np.ndarray:
    """``theta`` with its entries ``K`` (rows at a kink) moved within their intervals to lower
    ``||G - P(G)||^2 + ||sums||^2`` (``P`` the penalty's nearest subgradient,
    ``penalty.subdiff_nearest``; ``sums`` the intercepts' gradient) by projected gradient;
    ``theta`` itself where the penalty gives no nearest subgradient, its variable is lifted
    or the rows at a kink are many."""
    nearest = getattr(penalty, "subdiff_nearest", None)
    W = penalty.compose(V)
    if nearest is None or np.shape(V) != np.shape(W) or len(K) > MAX_REFINED_ROWS:
        return theta
    c, T = data.c, data.n_tasks

    def parts(th):
        u = c * th
        G = data.adjoint(u)
        P = nearest(V, G, alpha)
        if P is None:
            return None
        s = np.asarray(data.task_sums(u)) if fit_intercept else np.zeros(T)
        return G - P, s

    def back(R, s):  # the gradient in theta_K: c_r (x_r . R_t + s_t)
        return (c * data.linear(R, s if fit_intercept else np.zeros(T)))[K]

    first = parts(theta)
    if first is None:
        return theta
    # the step: 1 / ||M||^2 (power iteration on theta_K -> (X^T c theta, sums), 20 steps)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(len(K))
    norm2 = 0.0
    for _ in range(20):
        z = np.zeros_like(theta)
        z[K] = v / max(np.linalg.norm(v), 1e-300)
        u = c * z
        v = back(data.adjoint(u), np.asarray(data.task_sums(u)) if fit_intercept
                 else np.zeros(T))
        norm2 = float(np.linalg.norm(v))
    if not norm2 > 0 or not np.isfinite(norm2):
        return theta
    step = 1.0 / norm2
    best, best_value = theta, np.inf
    x, x_old, t_old = theta[K].copy(), theta[K].copy(), 1.0
    for _ in range(n_steps):
        t = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t_old * t_old))
        z = theta.copy()
        z[K] = x + (t_old - 1.0) / t * (x - x_old)
        R, s = parts(z)
        value = float(np.vdot(R, R)) + float(np.dot(s, s))
        if value < best_value:
            best, best_value = z, value
        x_old, t_old = x, t
        x = np.clip(z[K] - step * back(R, s), lo[K], hi[K])
    return best


def kink_certificate(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                     V: np.ndarray, b: np.ndarray, hint: np.ndarray | None,
                     fit_intercept: bool, ref: Reference, slack: float,
                     lipschitz: float) -> Certificate:
    """The KKT residual of ``datafit + alpha penalty`` at ``(V, b)`` on the loss itself, the
    dual point ``hint`` on the rows counted as on a kink within ``slack`` (see the module's
    text);
    ``lipschitz`` is the step constant of the proximal-gradient residual for the penalties
    without a subdifferential distance."""
    y, c = data.y, data.c
    W = penalty.compose(V)
    f = data.linear(W, b)
    theta = datafit.theta(y, f)
    free = kink_rows(datafit, y, f, c, slack)
    if hint is not None and np.any(free):
        lo, hi = dual_box(datafit, y)
        theta[free] = np.clip(hint[free], lo[free], hi[free])
        theta = _refined(data, penalty, alpha, V, theta, np.flatnonzero(free), lo, hi,
                         fit_intercept)
    u = c * theta
    G = data.adjoint(u)
    value = kkt_of_gradient(penalty, alpha, V, G,
                            np.asarray(data.task_sums(u)) if fit_intercept else None,
                            float(np.linalg.norm(ref.G0)), lambda: lipschitz)
    primal = datafit.value(y, f, c) + penalty.value(V, alpha)
    return Certificate("kkt_residual", value, primal, None, ref.P0)
