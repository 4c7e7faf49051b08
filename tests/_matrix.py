"""The independent side of the support matrix (``regmtl.conformance``): each cell's objective
written out in NumPy from design.rst section 4 and the penalties' formulas, cvxpy's optimum
of the convex cells, and a bounded local search for the others.

Nothing here calls the library's losses, certificates or (except where a cell says so, see
``PENALTY_SIDE``) its penalty values: the loss terms are the formulas of ``_loss_cases.py``
(with the defaults of ``Huber()`` and ``Quantile()``), the penalties those of the docstrings.

    P(W, b) = sum_t (1 / sum_i c_ti) sum_i c_ti l_t(y_ti, x_ti . w_t + b_t + o_ti) + Omega(W)

(``c`` the sample weights, 1 without; ``o`` the offset, 0 without.) A lifted penalty
(Dirty, SparseLowRank, RobustLowRank, RobustFeatures) is an infimal convolution over
``W = P + Q``: the fit's ``P_``, ``Q_`` are evaluated, and cvxpy minimizes over both parts.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from _loss_cases import loss_terms as case_loss_terms
from conftest import CLARABEL_OPTIONS
from scipy.special import logsumexp

import regmtl as rm
from regmtl.conformance import HUBER_DELTA, CellProblem

HUBER = HUBER_DELTA
TAU = rm.Quantile().quantile

LIFTED = ("dirty", "sparse_lowrank", "robust_lowrank", "robust_features")
NONCONVEX = ("mcp", "scad", "capped_l1", "nonconvex_fused_group_lasso")
# the class forms of the multinomial loss written out below (the others: a local search on
# the library's value of the class form, whose own value tests are in the case bank)
MULTINOMIAL_WRITTEN = ("l1", "l2", "elasticnet", "l21", "trace", "l1inf")


# --------------------------------------------------------------------------- refusals
#: what a refusal may name: an argument of the estimator or of fit, or a placement
ARGUMENTS = ("alpha", "offset", "sample_weight", "loss", "penalty", "X", "y", "task", "Dask",
             "ParquetTasks", "out of core", "memory")


def names_its_cause(msg: str, penalty: str, loss: str) -> bool:
    """Whether a refusal's message names, as a whole word, an argument, the penalty (its
    name or class) or the loss."""
    from regmtl.penalties import PENALTY_CLASSES

    cls = next(c for c in PENALTY_CLASSES.values() if c.name == penalty)
    words = (*ARGUMENTS, cls.__name__, penalty, loss, "multinomial", "logistic")
    return any(re.search(rf"(?<![\w.]){re.escape(w)}(?![\w])", msg) for w in words)


# --------------------------------------------------------------------------- data
@dataclass
class Tasks:
    """A cell's problem task by task, as the objective reads it: dense designs, targets in
    the loss's units (+-1 for the logistic loss, class indices for the multinomial),
    weights, offsets, each task's loss and alpha (one per task or one for all)."""

    X: list[np.ndarray]
    y: list[np.ndarray]
    c: list[np.ndarray]
    o: list[np.ndarray]
    losses: tuple[str, ...]
    alpha: Any
    n_classes: tuple[int, ...]


def tasks_of(prob: CellProblem) -> Tasks:
    """The cell's problem task by task (the fit's classes read from its labels: sorted,
    the larger one +1)."""
    Xa, ya = prob.fit_args
    if not isinstance(Xa, list):  # shared design
        Xs = [np.asarray(Xa)] * ya.shape[1]
        ys = [ya[:, t] for t in range(ya.shape[1])]
    else:
        Xs = [X.toarray() if sp.issparse(X) else np.asarray(X) for X in Xa]
        ys = list(ya)
    T = len(Xs)
    c = prob.fit_kwargs.get("sample_weight") or [np.ones(len(y)) for y in ys]
    o = prob.fit_kwargs.get("offset") or [np.zeros(len(y)) for y in ys]
    yy, k = [], []
    for t in range(T):
        labels = np.unique(ys[t])
        if prob.losses[t] == "logistic":
            yy.append(np.where(ys[t] == labels.max(), 1.0, -1.0))
            k.append(1)
        elif prob.losses[t] == "multinomial":
            yy.append(np.searchsorted(labels, ys[t]))
            k.append(len(labels))
        else:
            yy.append(np.asarray(ys[t], dtype=float))
            k.append(1)
    return Tasks(Xs, yy, list(c), list(o), prob.losses, prob.estimator.alpha, tuple(k))


# --------------------------------------------------------------------------- losses
def loss_terms(name: str, y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per-row loss (``f`` of shape (n, K) for the multinomial; y in +-1 for the logistic):
    the formulas of ``_loss_cases.loss_terms`` at the defaults of ``Huber()`` and
    ``Quantile()``."""
    if name == "logistic":
        return np.logaddexp(0.0, -y * f)
    if name == "multinomial":
        return logsumexp(f, axis=1) - f[np.arange(len(y)), y]
    return case_loss_terms(name, y, f, delta=HUBER, tau=TAU)


def columns(d: Tasks) -> list[slice]:
    """Each task's columns of W (its classes side by side for the multinomial)."""
    first = np.concatenate([[0], np.cumsum(d.n_classes)])
    return [slice(int(a), int(b)) for a, b in zip(first[:-1], first[1:], strict=True)]


def data_term(d: Tasks, W: np.ndarray, b: np.ndarray) -> float:
    """sum_t (1 / sum c_t) sum_i c_ti l_t(y_ti, x_ti . W_t + b_t + o_ti), W (p, sum K_t)."""
    total = 0.0
    for t, cols in enumerate(columns(d)):
        f = d.X[t] @ W[:, cols] + b[cols]
        f = f[:, 0] + d.o[t] if d.losses[t] != "multinomial" else f
        total += float(np.sum(d.c[t] * loss_terms(d.losses[t], d.y[t], f)) / d.c[t].sum())
    return total


def loss_floor(d: Tasks) -> float:
    """sum_t (1 / sum c_t) sum_i c_ti inf_f l_t(y_ti, f): the floor of design.rst section 4."""
    total = 0.0
    for t in range(len(d.X)):
        y, name = d.y[t], d.losses[t]
        if name == "poisson":
            floor = np.where(y > 0, y - y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        elif name == "gamma":
            floor = 1.0 + np.log(y)
        elif name == "tweedie":  # (power 1.5: y^(1/2) / (1/4), the value at mu = y)
            floor = 4.0 * np.sqrt(y)
        else:
            floor = np.zeros_like(y, dtype=float)
        total += float(np.sum(d.c[t] * floor) / d.c[t].sum())
    return total


# --------------------------------------------------------------------------- penalties
def _rows(W):
    return np.linalg.norm(W, axis=1)


def _nuclear(W):
    return float(np.linalg.svd(W, compute_uv=False).sum())


def _tv(W):
    return np.abs(np.diff(W, axis=1)).sum(axis=1)


def _nonconvex_rho(kind: str, s: np.ndarray, alpha: float, shape: float) -> float:
    if kind == "mcp":
        return float(np.where(s <= shape * alpha, alpha * s - s * s / (2 * shape),
                              shape * alpha**2 / 2).sum())
    if kind == "scad":
        mid = (2 * shape * alpha * s - s * s - alpha**2) / (2 * (shape - 1))
        return float(np.where(s <= alpha, alpha * s,
                              np.where(s <= shape * alpha, mid, alpha**2 * (shape + 1) / 2)).sum())
    return float(alpha * np.minimum(s, shape).sum())


def _class_groups(W: np.ndarray, d: Tasks) -> np.ndarray:
    """||W_{j B_t}||_2 per feature and task (a feature's coefficients over a task's
    classes)."""
    return np.column_stack([np.linalg.norm(W[:, cols], axis=1) for cols in columns(d)])


def omega(pen: rm.Penalty, V: Any, alpha: Any, d: Tasks) -> float:
    """The penalty's value from its formula; ``V`` is W (p, sum K_t), or (P, Q) for the
    lifted penalties."""
    name = pen.name
    multi = any(k > 1 for k in d.n_classes)
    if name in ("l1", "l2", "elasticnet", "l21"):
        rho = float(pen.l1_ratio)
        W = V
        if name == "l21":
            groups = _rows(W)
        elif multi:
            groups = _class_groups(W, d)
        else:
            groups = np.abs(W)
        a = np.broadcast_to(np.asarray(alpha, dtype=float), (W.shape[1],))
        if name != "l21" and not multi and np.ndim(alpha) > 0:  # one alpha per task
            return float(np.sum(a * (rho * groups.sum(axis=0) + 0.5 * (1 - rho)
                                     * (W * W).sum(axis=0))))
        return float(a[0] * (rho * groups.sum() + 0.5 * (1 - rho) * np.sum(W * W)))
    if name == "multi_source":
        return float(alpha * _rows(V).sum())
    if name == "l1inf":
        return float(alpha * np.abs(V).max(axis=1).sum())
    if name == "trace":
        return float(alpha * _nuclear(V))
    if name == "mean":
        dev = V - V.mean(axis=1, keepdims=True)
        return float(0.5 * alpha * (np.sum(dev * dev) + pen.ridge * np.sum(V * V)))
    if name == "graph":
        A = np.asarray(pen.A.todense() if sp.issparse(pen.A) else pen.A)
        T = A.shape[0]
        return float(0.5 * alpha * sum(A[s, t] * np.sum((V[:, s] - V[:, t]) ** 2)
                                       for s in range(T) for t in range(T)))
    if name == "dirty":
        P, Q = V
        return float(alpha * (_rows(P).sum() + pen.own_weight * np.abs(Q).sum()))
    if name == "sparse_lowrank":
        P, Q = V
        return float(alpha * (_nuclear(Q) + pen.sparse_weight * np.abs(P).sum()))
    if name == "robust_lowrank":
        P, Q = V
        return float(alpha * (_nuclear(P) + pen.outlier_weight * np.linalg.norm(Q, axis=0).sum()))
    if name == "robust_features":
        P, Q = V
        return float(alpha * (_rows(P).sum() + pen.outlier_weight
                              * np.linalg.norm(Q, axis=0).sum()))
    if name == "temporal_group_lasso":
        smooth = np.sum(np.diff(V, axis=1) ** 2)
        return float(alpha * (_rows(V).sum() + 0.5 * pen.smooth_weight * smooth
                              + 0.5 * pen.ridge_weight * np.sum(V * V)))
    if name == "fused_group_lasso":
        return float(alpha * (_rows(V).sum() + pen.fused_weight * _tv(V).sum()
                              + pen.l1_weight * np.abs(V).sum()))
    if name in ("mcp", "scad", "capped_l1"):
        group = getattr(pen, "group", False)
        s = np.abs(V).ravel() if not group else (
            np.abs(V).sum(axis=1) if group == "l1" else _rows(V))
        return _nonconvex_rho(name, s, alpha, pen.cap if name == "capped_l1" else pen.gamma)
    if name == "nonconvex_fused_group_lasso":
        l1, tv = np.abs(V).sum(axis=1), _tv(V)
        if pen.fused_in_root:
            return float(alpha * np.sqrt(l1 + pen.fused_weight * tv).sum())
        return float(alpha * (np.sqrt(l1).sum() + pen.fused_weight * tv.sum()))
    if name in ("clustered", "shared_structure"):
        return float(cvx_structure_value(pen, V, alpha))
    raise KeyError(f"no formula for the penalty {name!r}: add it to tests/_matrix.py")


def written(pen: rm.Penalty, d: Tasks) -> bool:
    """Whether ``omega`` writes the penalty out for this problem (else the class form's
    value of the library is read)."""
    return not any(k > 1 for k in d.n_classes) or pen.name in MULTINOMIAL_WRITTEN


# --------------------------------------------------------------------------- cvxpy
def _cp():
    import cvxpy as cp

    return cp


def cvx_structure_value(pen: rm.Penalty, W: np.ndarray, alpha: float) -> float:
    """Clustered / SharedStructure at a fixed W: the SDP over M, by cvxpy."""
    cp = _cp()
    val = cvx_structure(pen, cp.Constant(W), alpha)
    prob = cp.Problem(cp.Minimize(val[0]), val[1])
    _solve(prob)
    return float(prob.value)


def cvx_structure(pen: rm.Penalty, W: Any, alpha: float) -> tuple[Any, list]:
    """alpha eta (1 + eta) tr(W (eta I + M)^-1 W^T) (M on the tasks: Clustered) or
    tr(W^T (eta I + M)^-1 W) (M on the features: SharedStructure), with its constraints."""
    cp = _cp()
    p, T = W.shape
    m = T if pen.name == "clustered" else p
    M = cp.Variable((m, m), symmetric=True)
    cons = [M >> 0, np.eye(m) - M >> 0, cp.trace(M) == pen.k]
    X = W.T if pen.name == "clustered" else W
    eta = float(pen.eta)
    return alpha * eta * (1 + eta) * cp.matrix_frac(X, eta * np.eye(m) + M), cons


def cvx_penalty(pen: rm.Penalty, W: Any, alpha: Any, d: Tasks) -> tuple[Any, list]:
    """(expression, constraints) of the penalty of the variable W, or KeyError."""
    cp = _cp()
    name = pen.name
    multi = any(k > 1 for k in d.n_classes)
    if name in ("l1", "l2", "elasticnet", "l21"):
        rho = float(pen.l1_ratio)
        if name == "l21":
            groups = cp.sum(cp.norm(W, 2, axis=1))
        elif multi:
            groups = sum(cp.sum(cp.norm(W[:, cols], 2, axis=1)) for cols in columns(d))
        elif np.ndim(alpha) > 0:
            return sum(float(a) * (rho * cp.norm(W[:, t], 1) + 0.5 * (1 - rho)
                                   * cp.sum_squares(W[:, t])) for t, a in enumerate(alpha)), []
        else:
            groups = cp.sum(cp.abs(W))
        return alpha * (rho * groups + 0.5 * (1 - rho) * cp.sum_squares(W)), []
    if name == "multi_source":
        return alpha * cp.sum(cp.norm(W, 2, axis=1)), []
    if name == "l1inf":
        return alpha * cp.sum(cp.max(cp.abs(W), axis=1)), []
    if name == "trace":
        return alpha * cp.normNuc(W), []
    if name == "mean" and not multi:
        T = W.shape[1]
        wbar = cp.sum(W, axis=1) / T
        dev = sum(cp.sum_squares(W[:, t] - wbar) for t in range(T))
        return 0.5 * alpha * (dev + pen.ridge * cp.sum_squares(W)), []
    if name == "graph" and not multi:
        A = np.asarray(pen.A.todense())
        T = A.shape[0]
        return 0.5 * alpha * sum(A[s, t] * cp.sum_squares(W[:, s] - W[:, t])
                                 for s in range(T) for t in range(T) if A[s, t] != 0), []
    if name in LIFTED and not multi:
        P = cp.Variable(W.shape)
        Q = W - P
        if name == "dirty":
            e = cp.sum(cp.norm(P, 2, axis=1)) + pen.own_weight * cp.sum(cp.abs(Q))
        elif name == "sparse_lowrank":
            e = cp.normNuc(Q) + pen.sparse_weight * cp.sum(cp.abs(P))
        elif name == "robust_lowrank":
            e = cp.normNuc(P) + pen.outlier_weight * cp.sum(cp.norm(Q, 2, axis=0))
        else:
            e = cp.sum(cp.norm(P, 2, axis=1)) + pen.outlier_weight * cp.sum(cp.norm(Q, 2,
                                                                                  axis=0))
        return alpha * e, []
    if name == "temporal_group_lasso":
        smooth = cp.sum_squares(W[:, 1:] - W[:, :-1])
        return alpha * (cp.sum(cp.norm(W, 2, axis=1)) + 0.5 * pen.smooth_weight * smooth
                        + 0.5 * pen.ridge_weight * cp.sum_squares(W)), []
    if name == "fused_group_lasso":
        return alpha * (cp.sum(cp.norm(W, 2, axis=1))
                        + pen.fused_weight * cp.sum(cp.abs(W[:, 1:] - W[:, :-1]))
                        + pen.l1_weight * cp.sum(cp.abs(W))), []
    if name in ("clustered", "shared_structure") and not multi:
        return cvx_structure(pen, W, alpha)
    raise KeyError(name)


def cvx_loss(name: str, y: np.ndarray, F: Any, c: np.ndarray) -> Any:
    """sum_i c_i l(y_i, f_i) as a cvxpy expression (F of shape (n, K) for the
    multinomial)."""
    cp = _cp()
    if name == "multinomial":
        onehot = np.eye(F.shape[1])[y]
        return cp.sum(cp.multiply(c, cp.log_sum_exp(F, axis=1)
                                  - cp.sum(cp.multiply(onehot, F), axis=1)))
    if name == "squared":
        return 0.5 * cp.sum(cp.multiply(c, cp.square(y - F)))
    if name == "logistic":
        return cp.sum(cp.multiply(c, cp.logistic(-cp.multiply(y, F))))
    if name == "poisson":
        return cp.sum(cp.multiply(c, cp.exp(F) - cp.multiply(y, F)))
    if name == "gamma":
        return cp.sum(cp.multiply(c, cp.multiply(y, cp.exp(-F)) + F))
    if name == "tweedie":  # (power 1.5)
        return cp.sum(cp.multiply(c, 2.0 * cp.exp(0.5 * F)
                                  + 2.0 * cp.multiply(y, cp.exp(-0.5 * F))))
    r = y - F
    if name == "huber":
        return 0.5 * cp.sum(cp.multiply(c, cp.huber(r, HUBER)))
    if name == "quantile":
        return cp.sum(cp.multiply(c, cp.maximum(TAU * r, (TAU - 1.0) * r)))
    raise AssertionError(f"no cvxpy reference for the loss {name!r}: write it here")


def _solve(prob: Any) -> None:
    cp = _cp()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status


def cvx_minimum(pen: rm.Penalty, d: Tasks, fit_intercept: bool = True) -> float:
    """min over (W, b) of the objective, by cvxpy/Clarabel (KeyError where the penalty has
    no cvxpy form here)."""
    cp = _cp()
    p, K = d.X[0].shape[1], sum(d.n_classes)
    W = cp.Variable((p, K))
    b = cp.Variable(K) if fit_intercept else np.zeros(K)
    expr, cons = cvx_penalty(pen, W, d.alpha, d)
    data = 0
    for t, cols in enumerate(columns(d)):
        n = len(d.y[t])
        if d.losses[t] == "multinomial":
            F = d.X[t] @ W[:, cols] + np.ones((n, 1)) @ cp.reshape(b[cols], (1, cols.stop
                                                                             - cols.start),
                                                                   order="C")
        else:
            F = d.X[t] @ W[:, cols.start] + b[cols.start] + d.o[t]
        data = data + cvx_loss(d.losses[t], d.y[t], F, d.c[t]) / d.c[t].sum()
    prob = cp.Problem(cp.Minimize(data + expr), cons)
    _solve(prob)
    return float(prob.value)


# --------------------------------------------------------------------------- the fit's side
def fitted_point(model: Any, d: Tasks) -> tuple[Any, np.ndarray, np.ndarray]:
    """(V, W, b) of a fitted model on the objective's layout: W (p, sum K_t), V = W or the
    lifted parts (P, Q)."""
    W = np.asarray(model.coef_, dtype=float).T
    b = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    if hasattr(model, "P_"):
        return (model.P_.T, model.Q_.T), W, b
    return W, W, b


def objective(pen: rm.Penalty, d: Tasks, V: Any, W: np.ndarray, b: np.ndarray,
              library_penalty: Any = None) -> float:
    """P(W, b) from the formulas (the library's class-form value where ``written`` is
    False: ``library_penalty``)."""
    if written(pen, d):
        return data_term(d, W, b) + omega(pen, V, d.alpha, d)
    # (Dirty's variable is W itself, its parts a minimizer of the infimal convolution)
    V = W if pen.name == "dirty" else V
    return data_term(d, W, b) + float(library_penalty.value(V, float(d.alpha)))


def reference_scale(d: Tasks) -> float:
    """The objective at W = 0 with the best intercepts, above the loss's floor: what a
    relative tolerance is relative to (by a cvxpy solve of the intercepts alone)."""
    cp = _cp()
    K = sum(d.n_classes)
    b = cp.Variable(K)
    data = 0
    for t, cols in enumerate(columns(d)):
        n = len(d.y[t])
        if d.losses[t] == "multinomial":
            F = np.ones((n, 1)) @ cp.reshape(b[cols], (1, cols.stop - cols.start), order="C")
        else:
            F = b[cols.start] + d.o[t] + np.zeros(n)
        data = data + cvx_loss(d.losses[t], d.y[t], F, d.c[t]) / d.c[t].sum()
    prob = cp.Problem(cp.Minimize(data))
    _solve(prob)
    return max(float(prob.value) - loss_floor(d), 1e-12)


def local_search(f, x0: np.ndarray, scale: float, seed: int = 0,
                 budget: int = 3000) -> float:
    """The lowest value of ``f`` found near ``x0``: coordinate moves of several sizes, random
    directions within 5 % of ``|x0|``, then Powell's method from ``x0`` (bounded by
    ``budget`` evaluations)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    best = f(x0)
    radius = 0.05 * max(np.linalg.norm(x0), 1e-3)
    for step in (1e-2, 1e-4, 1e-6):
        for i in range(x0.size):
            for sgn in (1.0, -1.0):
                x = x0.copy()
                x[i] += sgn * step * max(abs(x0[i]), radius / np.sqrt(x0.size))
                best = min(best, f(x))
    for _ in range(200):
        u = rng.standard_normal(x0.size)
        x = x0 + radius * rng.random() * u / np.linalg.norm(u)
        best = min(best, f(x))
    res = minimize(f, x0, method="Powell",
                   options={"maxfev": budget, "xtol": 1e-10, "ftol": 1e-14})
    return min(best, float(res.fun))
