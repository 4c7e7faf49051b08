r"""A piecewise-linear loss with a penalty that is a linear program: solved exactly by HiGHS.

The pinball loss ``c_r (tau r^+ + (1 - tau) r^-)`` with the lasso (``alpha sum_jt |W_jt|``,
``W >= 0`` where the penalty is sign-constrained) or the L1,inf norm
(``alpha sum_j max_t |W_jt|``) is the linear program

.. math::

    \min\ \sum_r c_r (\tau u_r + (1 - \tau) v_r) + \alpha\, \Omega
    \quad \text{s.t.} \quad x_r^\top w_t + b_t + u_r - v_r = y_r,\quad u, v \ge 0,

with ``w = w^+ - w^-`` and ``Omega = sum (w^+ + w^-)`` (entrywise), or ``|W_jt| <= m_j`` and
``Omega = sum_j m_j`` (rows), scikit-learn's ``QuantileRegressor`` formulation per task. The
entrywise lasso separates over tasks: one program per task; L1,inf is one program for all.
The multipliers ``lambda_r`` of the equalities are the derivatives of the optimum in ``y_r``,
so ``theta_r = lambda_r / c_r`` is the pinball loss's dual point (in ``[tau - 1, tau]``), and
the fit is certified by the library's own duality gap at ``(W, b, theta)``
(:func:`~regmtl.solvers.primal_dual.saddle_certificate`). Rows of weight 0 are left out.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates import Reference
from .primal_dual import dual_box, saddle_certificate
from .result import SolverResult

__all__ = ["LP_FORMS", "linear_program"]

#: The penalty forms (``penalty.linear_program``) this solver writes as linear programs.
LP_FORMS = ("entrywise", "row_max")

#: HiGHS's feasibility tolerances: its simplex ends on a vertex, so these bound the rounding
#: of the final basis solve, well below what the certificate needs
_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _task_design(data: TaskBlocks, t: int, keep: np.ndarray) -> sp.csr_array:
    """The rows ``keep`` (flat indices within task t's segment, from its start) of task t's
    design, sparse."""
    a = int(data.indptr[t])
    X = data.X if data.shared else data.X[a:int(data.indptr[t + 1])]
    X = X[keep] if sp.issparse(X) else np.asarray(X)[keep]
    return sp.csr_array(X)


def _program(blocks, tau: float, alpha: float, form: str, positive: bool,
             fit_intercept: bool):
    """The program's ``(cost, A_eq, b_eq, A_ub, bounds, where)`` for task blocks
    ``(X_t, y_t, c_t)``: ``where`` the slices of W's entries (``form="entrywise"``: their
    positive and negative parts) and the intercepts in the variables."""
    T = len(blocks)
    p = blocks[0][0].shape[1]
    n = np.array([len(y) for _, y, _ in blocks])
    N = int(n.sum())
    X = sp.block_diag([Xt for Xt, _, _ in blocks], format="csr")
    A, cost, bounds = [X], [], []
    if form == "entrywise":
        cost.append(np.full(p * T, alpha))
        bounds.append(np.tile([0.0, np.inf], (p * T, 1)))
        if not positive:
            A.append(-X)
            cost.append(np.full(p * T, alpha))
            bounds.append(np.tile([0.0, np.inf], (p * T, 1)))
    else:  # row_max: W free, m_j >= |W_jt|
        cost.append(np.zeros(p * T))
        bounds.append(np.tile([-np.inf, np.inf], (p * T, 1)))
    n_w = sum(len(x) for x in cost)
    rows_task = np.repeat(np.arange(T), n)
    if fit_intercept:
        A.append(sp.csr_array((np.ones(N), (np.arange(N), rows_task)), shape=(N, T)))
        cost.append(np.zeros(T))
        bounds.append(np.tile([-np.inf, np.inf], (T, 1)))
    if form == "row_max":
        A.append(sp.csr_array((N, p)))
        cost.append(np.full(p, alpha))
        bounds.append(np.tile([0.0, np.inf], (p, 1)))
    c = np.concatenate([ct for _, _, ct in blocks])
    eye = sp.eye_array(N, format="csr")
    A += [eye, -eye]
    cost += [tau * c, (1.0 - tau) * c]
    bounds += [np.tile([0.0, np.inf], (2 * N, 1))]
    A_eq = sp.hstack(A, format="csc")
    A_ub = None
    if form == "row_max":  # +-W_jt - m_j <= 0 (W ordered task by task), nothing else
        I = sp.eye_array(p * T, format="csr")
        E = sp.vstack([sp.eye_array(p, format="csr")] * T, format="csr")
        parts = [sp.vstack([I, -I])]
        if fit_intercept:
            parts.append(sp.csr_array((2 * p * T, T)))
        parts += [-sp.vstack([E, E]), sp.csr_array((2 * p * T, 2 * N))]
        A_ub = sp.hstack(parts, format="csc")
    y = np.concatenate([yt for _, yt, _ in blocks])
    return (np.concatenate(cost), A_eq, y, A_ub, np.vstack(bounds),
            (n_w, p * T))


def _solve_program(blocks, tau, alpha, form, positive, fit_intercept, time_limit):
    """Solve one program: ``(W (p, T), b (T,), lambda (N,), ok)``."""
    T, p = len(blocks), blocks[0][0].shape[1]
    cost, A_eq, y, A_ub, bounds, (n_w, pT) = _program(blocks, tau, alpha, form, positive,
                                                      fit_intercept)
    options = dict(_OPTIONS, time_limit=time_limit) if time_limit else dict(_OPTIONS)
    res = linprog(cost, A_ub=A_ub, b_ub=None if A_ub is None else np.zeros(A_ub.shape[0]),
                  A_eq=A_eq, b_eq=y, bounds=bounds, method="highs", options=options)
    if res.x is None or res.eqlin is None:
        return None
    x = res.x
    w = x[:pT] - (x[pT:2 * pT] if form == "entrywise" and not positive else 0.0)
    W = w.reshape(T, p).T
    b = x[n_w:n_w + T] if fit_intercept else np.zeros(T)
    return W, b, np.asarray(res.eqlin.marginals), res.status == 0, res.nit


def linear_program(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                   W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                   tol: float, time_limit: float | None = None) -> SolverResult:
    """Solve the pinball loss with a linear-program penalty (``penalty.linear_program`` in
    :data:`LP_FORMS`) by HiGHS, one program per task where the penalty separates over tasks;
    certified by the duality gap at the programs' multipliers. ``(W, b)`` is returned as
    given, unconverged, where HiGHS fails."""
    tau = float(datafit.quantile)
    form = penalty.linear_program
    positive = bool(getattr(penalty, "positive", False))
    y, c = data.y, data.c
    scale = 1.0 / max(float(np.max(c, initial=0.0)), 1e-300)  # costs of order one
    blocks, keeps = [], []
    for t in range(data.n_tasks):
        a, e = int(data.indptr[t]), int(data.indptr[t + 1])
        keep = np.flatnonzero(c[a:e] > 0)
        keeps.append(a + keep)
        blocks.append((_task_design(data, t, keep), y[a:e][keep], scale * c[a:e][keep]))
    groups = [[t] for t in range(data.n_tasks)] if form == "entrywise" \
        else [list(range(data.n_tasks))]
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64)
    lo, hi = dual_box(datafit, y)
    theta = np.clip(datafit.theta(y, data.linear(W, b)), lo, hi)
    theta[c <= 0] = 0.0
    n_iter, ok = 0, True
    for group in groups:
        out = _solve_program([blocks[t] for t in group], tau, scale * alpha, form, positive,
                             fit_intercept, time_limit)
        if out is None:
            ok = False
            continue
        Wg, bg, lam, done, nit = out
        ok &= done
        n_iter += nit
        W[:, group], b[group] = Wg, bg
        rows = np.concatenate([keeps[t] for t in group])
        theta[rows] = lam / (scale * c[rows])
    theta = np.clip(theta, lo, hi)
    cert, b = saddle_certificate(data, datafit, penalty, alpha, W, b, theta, lo, hi,
                                 fit_intercept, ref)
    return SolverResult(W, b, max(n_iter, 1), cert, ok and cert.converged(tol), W,
                        theta=theta)
