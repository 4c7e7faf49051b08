r"""A piecewise-linear loss with a penalty that is a linear program: solved exactly by HiGHS.

The pinball loss with the lasso, per task (``W >= 0`` where the penalty is sign-constrained;
rows left free by the per-feature terms unpenalized), is solved as the linear program of its
dual, with ``lambda_r = c_r theta_r``:

.. math::

    \max_\lambda\ \sum_r \lambda_r y_r \quad \text{s.t.}\quad
    c_r (\tau - 1) \le \lambda_r \le c_r \tau,\quad |X_t^\top \lambda| \le \alpha,\quad
    \textstyle\sum_r \lambda_r = 0 \ \text{(intercepts)},

whose multipliers are ``w_t`` (of the two sides of ``|X_t^T lambda| <= alpha``) and ``b_t``
(of the sum); a free column's row is the equality ``x_j^T lambda = 0``, its coefficient that
equality's multiplier: n variables and ``2p + 1`` constraints, about half the time of the primal
program on tall tasks. The L1,inf norm (``alpha sum_j max_t |W_jt|``) couples the tasks: one
primal program for all, scikit-learn's ``QuantileRegressor`` formulation with ``|W_jt| <=
m_j`` and the cost ``alpha sum_j m_j``,

.. math::

    \min\ \sum_r c_r (\tau u_r + (1 - \tau) v_r) + \alpha \sum_j m_j
    \quad \text{s.t.} \quad x_r^\top w_t + b_t + u_r - v_r = y_r,\quad u, v \ge 0,

whose equalities' multipliers are ``lambda``. Either way ``theta = lambda / c`` is the pinball
loss's dual point, and the fit is certified by the library's own duality gap at
``(W, b, theta)`` (:func:`~regmtl.solvers.certificates.saddle.saddle_certificate`). Rows of weight 0
are left out; the costs are scaled by ``1 / max c`` (the multipliers are not).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference
from ..certificates.saddle import dual_box, saddle_certificate
from ..result import SolverResult

__all__ = ["LP_FORMS", "linear_program"]

#: The penalty forms (``penalty.linear_program``) this solver writes as linear programs.
LP_FORMS = ("entrywise", "row_max")

#: HiGHS's feasibility tolerances: its simplex ends on a vertex, so these bound the rounding
#: of the final basis solve, well below what the certificate needs
_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _task_design(data: TaskBlocks, t: int, keep: np.ndarray):
    """The rows ``keep`` (indices within task t's segment) of task t's design (dense, or
    sparse CSR)."""
    a = int(data.indptr[t])
    X = data.X if data.shared else data.X[a:int(data.indptr[t + 1])]
    return sp.csr_array(X)[keep] if sp.issparse(X) else np.asarray(X)[keep]


def _lasso_task(X, y, c, lo, hi, alpha: float, positive: bool, fit_intercept: bool,
                options: dict, penalized: np.ndarray | None = None):
    """One task's lasso by its dual program: ``(w, b, lambda, ok, iterations)`` or None.
    The columns not ``penalized`` (bool, p; None: all are) are free: their rows of the
    dual are equalities ``x_j^T lambda = 0``, as the intercept's, and their coefficients
    those equalities' multipliers."""
    p = X.shape[1]
    if len(y) == 0:  # no weighted rows: nothing to fit
        return np.zeros(p), 0.0, np.zeros(0), True, 0
    pen = np.ones(p, dtype=bool) if penalized is None else penalized
    XT = X.T
    XP, XF = (XT, XT[:0]) if pen.all() else (XT[pen], XT[~pen])  # (no copy without free)
    stack = sp.vstack if sp.issparse(X) else np.vstack
    A_ub = XP if positive else stack([XP, -XP])
    ones = np.ones((1, len(y)))
    eq = ([sp.csr_array(ones) if sp.issparse(X) else ones] if fit_intercept else []) + \
        ([XF] if XF.shape[0] else [])
    A_eq = stack(eq) if eq else None
    res = linprog(-y, A_ub=A_ub if A_ub.shape[0] else None,
                  b_ub=np.full(A_ub.shape[0], alpha) if A_ub.shape[0] else None,
                  A_eq=A_eq, b_eq=np.zeros(A_eq.shape[0]) if eq else None,
                  bounds=np.column_stack([lo * c, hi * c]), method="highs",
                  options=options)
    if res.x is None or (A_ub.shape[0] and res.ineqlin is None):
        return None
    k = int(pen.sum())
    w = np.zeros(p)
    if k:
        m = np.asarray(res.ineqlin.marginals)  # d(-dual)/d(alpha-side): minus the multipliers
        w[pen] = -m[:k] if positive else m[k:] - m[:k]
    nu = np.asarray(res.eqlin.marginals) if eq else np.zeros(0)
    b = -float(nu[0]) if fit_intercept else 0.0
    w[~pen] = -nu[int(fit_intercept):]
    return w, b, res.x, res.status == 0, res.nit


def _row_max(blocks, alpha: float, fit_intercept: bool, options: dict,
             penalized: np.ndarray | None = None):
    """L1,inf: the primal program of all tasks, ``(W, b, lambda, ok, iterations)`` or None;
    the variables ``[W (task by task), b, m, u, v]``. A row not ``penalized`` costs nothing
    (its ``m_j`` is free to bound it)."""
    T, p = len(blocks), blocks[0][0].shape[1]
    n = np.array([len(block[1]) for block in blocks])
    N = int(n.sum())
    A = [sp.block_diag([sp.csr_array(block[0]) for block in blocks], format="csr")]
    cost = [np.zeros(p * T)]
    free = [(-np.inf, np.inf)] * (p * T)
    if fit_intercept:
        A.append(sp.csr_array((np.ones(N), (np.arange(N), np.repeat(np.arange(T), n))),
                              shape=(N, T)))
        cost.append(np.zeros(T))
        free += [(-np.inf, np.inf)] * T
    c, lo, hi = (np.concatenate([block[i] for block in blocks]) for i in (2, 3, 4))
    eye = sp.eye_array(N, format="csr")
    A += [sp.csr_array((N, p)), eye, -eye]
    cost += [alpha * (np.ones(p) if penalized is None else penalized.astype(float)),
             hi * c, -lo * c]  # the loss's slopes above and below
    bounds = free + [(0.0, np.inf)] * (p + 2 * N)
    # +-W_jt - m_j <= 0
    I = sp.eye_array(p * T, format="csr")
    E = sp.vstack([sp.eye_array(p, format="csr")] * T, format="csr")
    parts = [sp.vstack([I, -I])]
    if fit_intercept:
        parts.append(sp.csr_array((2 * p * T, T)))
    parts += [-sp.vstack([E, E]), sp.csr_array((2 * p * T, 2 * N))]
    A_ub = sp.hstack(parts, format="csc")
    res = linprog(np.concatenate(cost), A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]),
                  A_eq=sp.hstack(A, format="csc"),
                  b_eq=np.concatenate([block[1] for block in blocks]), bounds=bounds,
                  method="highs", options=options)
    if res.x is None or res.eqlin is None:
        return None
    W = res.x[:p * T].reshape(T, p).T
    b = res.x[p * T:p * T + T] if fit_intercept else np.zeros(T)
    return W, b, np.asarray(res.eqlin.marginals), res.status == 0, res.nit


def linear_program(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                   W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                   tol: float, time_limit: float | None = None) -> SolverResult:
    """Solve the pinball loss with a linear-program penalty (``penalty.linear_program`` in
    :data:`LP_FORMS`) by HiGHS, one program per task where the penalty separates over tasks;
    certified by the duality gap at the programs' multipliers. ``(W, b)`` is returned as
    given, unconverged, where HiGHS fails."""
    form = penalty.linear_program
    base = getattr(penalty, "base", penalty)  # (rows left free: PartlyPenalized's base)
    positive = bool(getattr(base, "positive", False))
    penalized = getattr(penalty, "penalized", None)
    y, c = data.y, data.c
    scale = 1.0 / max(float(np.max(c, initial=0.0)), 1e-300)  # costs of order one
    lo, hi = dual_box(datafit, y)  # the loss's slopes: theta in [lo, hi] per row
    blocks, keeps = [], []
    for t in range(data.n_tasks):
        a, e = int(data.indptr[t]), int(data.indptr[t + 1])
        keep = a + np.flatnonzero(c[a:e] > 0)
        keeps.append(keep)
        blocks.append((_task_design(data, t, keep - a), y[keep], scale * c[keep], lo[keep],
                       hi[keep]))
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64)
    theta = np.clip(datafit.theta(y, data.linear(W, b)), lo, hi)
    theta[c <= 0] = 0.0
    options = dict(_OPTIONS, time_limit=time_limit) if time_limit else dict(_OPTIONS)
    if form == "entrywise":
        groups = [[t] for t in range(data.n_tasks)]
        runs = (_lasso_task(*blocks[t], scale * alpha, positive, fit_intercept, options,
                            penalized) for t in range(data.n_tasks))
    else:
        groups = [list(range(data.n_tasks))]
        runs = iter([_row_max(blocks, scale * alpha, fit_intercept, options, penalized)])
    n_iter, ok = 0, True
    for group, out in zip(groups, runs, strict=True):
        if out is None:
            ok = False
            continue
        Wg, bg, lam, done, nit = out
        ok &= done
        n_iter += nit
        W[:, group], b[group] = np.reshape(Wg, (-1, len(group))), bg
        rows = np.concatenate([keeps[t] for t in group])
        theta[rows] = lam / (scale * c[rows])
    theta = np.clip(theta, lo, hi)
    # (the programs' intercepts are optimal for their W: no search for them again; where a
    # program failed its task's intercepts are those given, and the gap says so)
    cert, b = saddle_certificate(data, datafit, penalty, alpha, W, b, theta, lo, hi,
                                 fit_intercept, ref, refit=not ok)
    return SolverResult(W, b, max(n_iter, 1), cert, ok and cert.converged(tol), W,
                        theta=theta)
