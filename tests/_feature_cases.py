"""Problems and reference objectives for ``tests/test_feature_terms.py`` (penalty factors,
excluded features and bounds), written from the math of :mod:`regmtl.feature_terms`:

    sum_t (1/n_t) sum_i loss(y_ti, x_ti . w_t + b_t) + alpha * Omega(D W),  l <= W <= u,

with ``D = diag(d)`` (``D o W`` for factors per task), rows of factor 0 unpenalized. Each
reference comes twice, in numpy (the objective at a given point) and in cvxpy (its minimum);
neither reads regmtl's internals.
"""

from __future__ import annotations

import warnings

import numpy as np

import regmtl as rm

#: Clarabel at tight tolerances (the cvxpy optimum is the reference to 1e-6 relative)
CLARABEL = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11, "max_iter": 500}
SIZES = (25, 35, 45)
P = 6
#: positive factors with one unpenalized feature (0), not rescaled
FACTORS = np.array([0.0, 0.5, 1.0, 2.0, 1.5, 0.7])
ALPHA = {"squared": 0.1, "logistic": 0.02, "poisson": 0.05, "multinomial": 0.02}
DIRTY_WEIGHT = 0.6
#: how many classes each task has under the multinomial loss
N_CLASSES = 3


def make_tasks(loss: str, sizes=SIZES, p=P, seed=0):
    """Per-task designs ``Xs`` (non-centred) and targets ``ys`` for ``loss``: real values,
    {0, 1} labels (not separable), counts, or labels 0..2 (multinomial)."""
    rng = np.random.default_rng(seed)
    T = len(sizes)
    W = np.zeros((p, T))
    W[:4] = 0.6 * (rng.standard_normal((4, T)) + 1.0)
    Xs, ys = [], []
    for t, n in enumerate(sizes):
        X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
        f = X @ W[:, t] + 0.3 * (t - 1.0)
        if loss == "squared":
            y = f + 1.5 + rng.standard_normal(n)
        elif loss == "logistic":
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(np.int64)
            y[0], y[1] = 0, 1
            X[-1], y[-1] = X[0], 1 - y[0]
        elif loss == "poisson":
            y = rng.poisson(np.exp(0.4 * f)).astype(float)
        elif loss == "gamma":
            y = rng.gamma(2.0, np.exp(0.3 * f) / 2.0)
        elif loss == "multinomial":
            S = np.column_stack([f, X[:, 1] - X[:, 2], -f]) + rng.standard_normal((n, 3))
            y = np.argmax(S, axis=1)
            y[:3] = [0, 1, 2]
        else:
            raise AssertionError(loss)
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def estimator(loss: str, penalty, **kw):
    """The regmtl estimator of ``loss`` (the classifier for logistic and multinomial)."""
    if loss in ("logistic", "multinomial"):
        return rm.MultiTaskClassifier(penalty, **kw)
    return rm.MultiTaskRegressor(penalty, loss=loss, **kw)


def penalty_object(name: str):
    return {"l1": "l1", "l21": "l21", "elasticnet": rm.ElasticNet(0.5), "l2": "l2",
            "trace": "trace", "mean": rm.MeanRegularized(ridge=0.3), "l1inf": rm.LInf1(),
            "dirty": rm.Dirty(own_weight=DIRTY_WEIGHT)}[name]


# ------------------------------------------------------------------ columns of W
def column_blocks(loss: str, n_tasks: int) -> list[slice]:
    """The columns of W (p x columns) of each task: one, or one per class."""
    k = N_CLASSES if loss == "multinomial" else 1
    return [slice(k * t, k * (t + 1)) for t in range(n_tasks)]


def matrix_of(est) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)``: the fit's W (p x columns) and intercepts, from coef_ / intercept_."""
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=float))
    return coef.T.copy(), np.atleast_1d(np.asarray(est.intercept_, dtype=float)).copy()


# ------------------------------------------------------------------ numpy
def np_loss(loss: str, Xs, ys, W, b) -> float:
    """sum_t mean_i loss_i at (W, b)."""
    total = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        if loss == "multinomial":
            cols = column_blocks(loss, len(Xs))[t]
            F = X @ W[:, cols] + b[cols]
            m = F.max(axis=1)
            lse = m + np.log(np.exp(F - m[:, None]).sum(axis=1))
            total += float(np.mean(lse - F[np.arange(len(y)), y]))
            continue
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            total += float(np.mean(0.5 * (y - f) ** 2))
        elif loss == "logistic":
            s = 2.0 * y - 1.0
            total += float(np.mean(np.logaddexp(0.0, -s * f)))
        elif loss == "poisson":
            total += float(np.mean(np.exp(f) - y * f))
        elif loss == "gamma":
            total += float(np.mean(y * np.exp(-f) + f))
        else:
            raise AssertionError(loss)
    return total


def _dirty_rows(V: np.ndarray, g: float) -> float:
    """sum_j min_{P_j + Q_j = V_j} ||P_j||_2 + g ||Q_j||_1, by its dual: per row the largest
    <u, |v|> over ||u||_2 <= 1, 0 <= u_i <= g: u = g on the support of v when that lies in
    the ball, else u = min(|v| / lam, g) at the lam where ||u|| = 1 (bisection)."""
    total = 0.0
    for v in V:
        a = np.abs(v)
        if g * np.sqrt(np.count_nonzero(a)) <= 1.0:
            total += g * a.sum()
            continue
        lo, hi = 0.0, float(np.linalg.norm(a))
        for _ in range(200):
            lam = 0.5 * (lo + hi)
            if np.linalg.norm(np.minimum(a / lam, g)) > 1.0:
                lo = lam
            else:
                hi = lam
        total += float(np.minimum(a / (0.5 * (lo + hi)), g) @ a)
    return total


def _class_groups(V: np.ndarray) -> np.ndarray:
    """(p, T): the norm of each feature's coefficients over a task's classes."""
    blocks = column_blocks("multinomial", V.shape[1] // N_CLASSES)
    return np.column_stack([np.linalg.norm(V[:, c], axis=1) for c in blocks])


def np_penalty(name: str, W: np.ndarray, d: np.ndarray, alpha: float, loss: str = "squared"
               ) -> float:
    """alpha Omega(D W) (``d`` (p,) or (p, columns)). Under the multinomial loss an entrywise
    norm takes each feature's group over a task's classes, and ``mean`` pulls each class
    towards the same class of the other tasks (``Penalty.on_classes``)."""
    V = (d[:, None] if d.ndim == 1 else d) * W
    multi = loss == "multinomial"
    if name == "l1":
        return alpha * (_class_groups(V).sum() if multi else np.abs(V).sum())
    if name == "l21":
        return alpha * np.linalg.norm(V, axis=1).sum()
    if name == "elasticnet":
        l1 = _class_groups(V).sum() if multi else np.abs(V).sum()
        return alpha * (0.5 * l1 + 0.25 * np.sum(V * V))
    if name == "l2":
        return 0.5 * alpha * np.sum(V * V)
    if name == "trace":
        return alpha * np.linalg.svd(V, compute_uv=False).sum()
    if name == "mean":
        if multi:  # class c of every task: columns c, K + c, 2K + c, ...
            dev = sum(np.sum((V[:, c::N_CLASSES]
                              - V[:, c::N_CLASSES].mean(axis=1, keepdims=True)) ** 2)
                      for c in range(N_CLASSES))
        else:
            dev = np.sum((V - V.mean(axis=1, keepdims=True)) ** 2)
        return 0.5 * alpha * (dev + 0.3 * np.sum(V * V))
    if name == "l1inf":
        return alpha * np.abs(V).max(axis=1).sum()
    if name == "dirty":  # on the classes: exceptions grouped over a task's classes
        return alpha * _dirty_rows(_class_groups(V) if multi else V, DIRTY_WEIGHT)
    raise AssertionError(name)


def np_objective(loss, name, Xs, ys, W, b, d, alpha) -> float:
    return np_loss(loss, Xs, ys, W, b) + np_penalty(name, W, d, alpha, loss)


# ------------------------------------------------------------------ cvxpy
def cvx_loss(cp, loss: str, Xs, ys, W, b):
    terms = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        n = len(y)
        if loss == "multinomial":
            cols = column_blocks(loss, len(Xs))[t]
            K = cols.stop - cols.start
            F = X @ W[:, cols] + np.ones((n, 1)) @ cp.reshape(b[cols], (1, K), order="C")
            onehot = np.eye(K)[y]
            terms.append(cp.sum(cp.log_sum_exp(F, axis=1)
                                - cp.sum(cp.multiply(onehot, F), axis=1)) / n)
            continue
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            terms.append(cp.sum_squares(y - f) / (2 * n))
        elif loss == "logistic":
            terms.append(cp.sum(cp.logistic(cp.multiply(-(2.0 * y - 1.0), f))) / n)
        elif loss == "poisson":
            terms.append(cp.sum(cp.exp(f) - cp.multiply(y, f)) / n)
        elif loss == "gamma":
            terms.append(cp.sum(cp.multiply(y, cp.exp(-f)) + f) / n)
        else:
            raise AssertionError(loss)
    return sum(terms)


def cvx_penalty(cp, name: str, W, d: np.ndarray, alpha: float, loss: str = "squared"):
    """alpha Omega(D W) in cvxpy (the forms of :func:`np_penalty`)."""
    D = d[:, None] if d.ndim == 1 else d
    V = cp.multiply(np.broadcast_to(D, W.shape), W)
    multi = loss == "multinomial"
    blocks = column_blocks(loss, W.shape[1] // N_CLASSES) if multi else None

    def entries(M):
        if multi:
            return sum(cp.sum(cp.norm(M[:, c], 2, axis=1)) for c in blocks)
        return cp.sum(cp.abs(M))

    if name == "l1":
        return alpha * entries(V)
    if name == "l21":
        return alpha * cp.sum(cp.norm(V, 2, axis=1))
    if name == "elasticnet":
        return alpha * (0.5 * entries(V) + 0.25 * cp.sum_squares(V))
    if name == "l2":
        return 0.5 * alpha * cp.sum_squares(V)
    if name == "trace":
        return alpha * cp.normNuc(V)
    if name == "mean":
        groups = [V[:, c::N_CLASSES] for c in range(N_CLASSES)] if multi else [V]
        dev = 0
        for M in groups:
            k = M.shape[1]
            dev = dev + cp.sum_squares(M - cp.sum(M, axis=1, keepdims=True) @ np.ones((1, k))
                                       / k)
        return 0.5 * alpha * (dev + 0.3 * cp.sum_squares(V))
    if name == "l1inf":
        return alpha * cp.sum(cp.max(cp.abs(V), axis=1))
    if name == "dirty":
        Pv = cp.Variable(W.shape)
        return alpha * (cp.sum(cp.norm(Pv, 2, axis=1)) + DIRTY_WEIGHT * entries(V - Pv))
    raise AssertionError(name)


def cvx_minimum(loss, name, Xs, ys, d, alpha, lower=None, upper=None, n_cols=None,
                fit_intercept=True):
    """The minimum of the objective (cvxpy, Clarabel) and its solution ``(W, b)``."""
    import cvxpy as cp

    p = Xs[0].shape[1]
    cols = n_cols or (N_CLASSES * len(Xs) if loss == "multinomial" else len(Xs))
    W, b = cp.Variable((p, cols)), cp.Variable(cols)
    cons = []
    for bound, side in ((lower, 1.0), (upper, -1.0)):  # side (W - bound) >= 0 where finite
        if bound is not None:
            B = np.broadcast_to(_as_col(bound, p), (p, cols))
            live = np.isfinite(B)
            if live.any():
                cons.append(side * cp.multiply(live.astype(float), W - np.where(live, B, 0.0))
                            >= 0)
    if not fit_intercept:
        cons.append(b == 0)
    obj = cvx_loss(cp, loss, Xs, ys, W, b) + cvx_penalty(cp, name, W, d, alpha, loss)
    prob = cp.Problem(cp.Minimize(obj), cons)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return float(prob.value), W.value, b.value


def _as_col(v, p):
    v = np.asarray(v, dtype=float)
    return v if v.ndim == 2 else (np.full((p, 1), float(v)) if v.ndim == 0 else v[:, None])
