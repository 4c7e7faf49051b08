"""The robust decompositions: ``RobustLowRank`` (Chen, Zhou & Ye 2011) and ``RobustFeatures``
(Gong, Ye & Zhang 2012), W = P + Q with Q column-sparse (the outlier tasks).

    RobustLowRank(g):   alpha (||P||_* + g sum_t ||Q_:t||_2)
    RobustFeatures(g):  alpha (sum_j ||P_j||_2 + g sum_t ||Q_:t||_2)

Everything below is checked against arguments independent of the implementation: the whole
problem and the prox written in cvxpy from these formulas (Clarabel, tightened), the dual norms
written here with NumPy, and problems whose outlier tasks are known.

Tolerances and why:

* cvxpy's interior-point optimum is accurate to about its stopping tolerance (1e-10 asked):
  objectives agree to ``1e-5`` relative (the tolerance asked of this comparison; measured
  1e-11 or better), coefficients W to ``1e-4`` absolute (measured 1e-5 or better; an
  objective error e allows a coefficient error of order sqrt(e / curvature)). W is unique
  (every task has more rows than features); the split into P and Q need not be, so only W and
  the objective are compared, with regmtl's objective evaluated here at its own ``P_``, ``Q_``.
* Evaluated by the same NumPy objective, regmtl's point may not be worse than cvxpy's point by
  more than its reported gap (plus 1e-12 relative rounding): the gap is a true bound.
* Prox against cvxpy: objective to ``1e-7`` relative, points to ``1e-4`` (the prox objective is
  ``1/step``-strongly convex); against cvxpy's point evaluated by NumPy, exact to ``1e-12``.
* ``alpha_max`` against the dual norm written here: ``1e-12`` relative (two orders of the same
  floating-point sums).
"""

from __future__ import annotations

import functools
import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import CLARABEL_OPTIONS
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.penalties import PENALTY_NAMES, make_penalty
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import reference
from regmtl.solvers.policy import choose_solver, penalty_solver
from regmtl.transfer import structure_priors

# every fit here must reach its tolerance: a ConvergenceWarning is a failure
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}
SIZES = (20, 28, 36, 24, 30)
P, T = 6, len(SIZES)
# both parts active: 1/sqrt(T) = 0.45 < 0.7 < 1 (RobustLowRank); 0.45 < 0.9 < sqrt(6)
PENALTIES = {"robust_lowrank": rm.RobustLowRank(0.7), "robust_features": rm.RobustFeatures(0.9)}
LOSSES = ("squared", "logistic")


# --------------------------------------------------------------------------- the formulas
def col_norms(M: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(M[:, t]) for t in range(M.shape[1])])


def row_norms(M: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(M[j]) for j in range(M.shape[0])])


def omega(name: str, g: float, alpha: float, Pm: np.ndarray, Qm: np.ndarray) -> float:
    """The penalty from its formula, at the parts P (shared) and Q (outlier tasks)."""
    shared = (np.linalg.svd(Pm, compute_uv=False).sum() if name == "robust_lowrank"
              else row_norms(Pm).sum())
    return float(alpha * (shared + g * col_norms(Qm).sum()))


def dual_norm(name: str, g: float, G: np.ndarray) -> float:
    """max(N*(G), max_t ||G_:t|| / g): the spectral norm, or the largest row norm."""
    shared = np.linalg.norm(G, 2) if name == "robust_lowrank" else row_norms(G).max()
    return float(max(shared, col_norms(G).max() / g))


def signed(ys, loss):
    """Targets of the objective (logistic labels 0/1 as -1/+1)."""
    if loss == "squared":
        return [np.asarray(y, dtype=float) for y in ys]
    return [np.where(np.asarray(y) == 1, 1.0, -1.0) for y in ys]


def data_term(loss, Xs, ys, W, b, weights=None):
    """sum_t omega_t sum_i c_ti l(y_ti, x_ti . w_t + b_t), c_ti = s_ti / sum_i s_ti."""
    val = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        losses = 0.5 * (y - f) ** 2 if loss == "squared" else np.logaddexp(0.0, -y * f)
        om, s = (1.0, np.ones(len(y))) if weights is None else (weights[0][t], weights[1][t])
        val += om * float(s @ losses) / s.sum()
    return val


def g0(loss, Xs, ys):
    """Minus the gradient of the data term at W = 0, intercepts fitted (equal weights)."""
    cols = []
    for X, y in zip(Xs, ys, strict=True):
        if loss == "squared":
            theta = y - y.mean()
        else:
            pi = np.mean(y > 0)
            theta = y / (1.0 + np.exp(y * np.log(pi / (1 - pi))))
        cols.append(X.T @ theta / len(y))
    return np.column_stack(cols)


# --------------------------------------------------------------------------- problems
@functools.cache
def problem(name: str, loss: str, seed: int):
    """Task 'seed % T' is an outlier: a dense column of its own, while the others share a
    rank-one W (robust_lowrank) or two rows (robust_features). Logistic labels are 0/1 and
    not separable (the last row of every task repeats its first with the other label)."""
    rng = np.random.default_rng(seed)
    if name == "robust_lowrank":
        W = np.outer(rng.standard_normal(P), rng.uniform(0.5, 1.5, T))
    else:
        W = np.zeros((P, T))
        W[:2] = rng.uniform(0.5, 1.5, (2, T))
    W[:, seed % T] = 1.5 * rng.standard_normal(P)
    Xs, ys = [], []
    for t, n in enumerate(SIZES):
        X = rng.standard_normal((n, P)) + 0.3 * rng.standard_normal(P)
        f = X @ W[:, t] + 0.5 * (t - 2)
        if loss == "squared":
            y = f + 0.5 * rng.standard_normal(n)
        else:
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(int)
            y[0], y[1] = 0, 1
            X[-1], y[-1] = X[0], 1 - y[0]
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def estimator(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


def cvx_solve(name, g, loss, Xs, ys, alpha, weights=None):
    """The whole problem in cvxpy: (W, optimal value)."""
    Pv, Qv, b = cp.Variable((P, T)), cp.Variable((P, T)), cp.Variable(T)
    W = Pv + Qv
    data = 0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        om, s = (1.0, np.ones(len(y))) if weights is None else (weights[0][t], weights[1][t])
        c = om * s / s.sum()
        if loss == "squared":
            data += 0.5 * cp.sum(cp.multiply(c, cp.square(y - f)))
        else:
            data += cp.sum(cp.multiply(c, cp.logistic(-cp.multiply(y, f))))
    shared = cp.normNuc(Pv) if name == "robust_lowrank" else cp.sum(cp.norm(Pv, 2, axis=1))
    pen = alpha * (shared + g * cp.sum(cp.norm(Qv, 2, axis=0)))
    prob = cp.Problem(cp.Minimize(data + pen))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return W.value, b.value, float(prob.value), (Pv.value, Qv.value)


def p0(loss, Xs, ys, **kw):
    datafit = rm.Quadratic() if loss == "squared" else rm.Logistic()
    labels = ys if loss == "squared" else signed(ys, loss)
    return reference(rm.as_task_data(Xs, labels, **kw), datafit, True).P0


# --------------------------------------------------------------------------- whole problem
@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(PENALTIES))
def test_fit_matches_cvxpy(name, loss, seed):
    pen = PENALTIES[name]
    g = pen.outlier_weight
    Xs, ys = problem(name, loss, seed)
    alpha = 0.3 * rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    tol = 1e-10
    model = estimator(loss)(penalty=pen, alpha=alpha, tol=tol, max_iter=100_000).fit(Xs, ys)
    Pm, Qm = model.P_.T, model.Q_.T
    W = model.coef_.T
    np.testing.assert_allclose(Pm + Qm, W, rtol=0, atol=1e-14 * np.abs(W).max())
    yv = signed(ys, loss)
    obj = data_term(loss, Xs, yv, W, model.intercept_) + omega(name, g, alpha, Pm, Qm)
    W_cvx, b_cvx, val_cvx, (P_cvx, Q_cvx) = cvx_solve(name, g, loss, Xs, yv, alpha)
    # the optimum, to cvxpy's accuracy, and the point (W is unique here)
    assert obj == pytest.approx(val_cvx, rel=1e-5)
    np.testing.assert_allclose(W, W_cvx, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, b_cvx, atol=1e-4)
    # the certificate: within tol, the objective it reports is ours, and the gap bounds the
    # distance to cvxpy's point evaluated by the same NumPy objective
    assert 0.0 <= model.dual_gap_ <= tol * p0(loss, Xs, ys)
    assert model.objective_ == pytest.approx(obj, rel=1e-9)
    obj_cvx_point = data_term(loss, Xs, yv, W_cvx, b_cvx) + omega(name, g, alpha, P_cvx, Q_cvx)
    assert obj <= obj_cvx_point + model.dual_gap_ + 1e-12 * abs(obj)
    # both parts are in use: a nontrivial structure was certified, not a degenerate one
    assert 0 < model.outlier_tasks_.size and np.any(Pm != 0)
    np.testing.assert_array_equal(model.outlier_tasks_, np.flatnonzero(np.any(Qm != 0, axis=0)))


@pytest.mark.parametrize("name", list(PENALTIES))
def test_sample_and_task_weights_match_cvxpy(name):
    """sample_weight and task_weight="samples" enter as c_ti = omega_t s_ti / sum_i s_ti with
    omega_t = T S_t / sum S (S_t a task's total sample weight)."""
    pen = PENALTIES[name]
    Xs, ys = problem(name, "squared", 21)
    rng = np.random.default_rng(5)
    sw = [rng.uniform(0.2, 2.0, len(y)) for y in ys]
    totals = np.array([s.sum() for s in sw])
    omega_t = T * totals / totals.sum()
    alpha = 0.3 * rm.alpha_max(Xs, ys, penalty=pen, sample_weight=sw, task_weight="samples")
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-10, task_weight="samples",
                                  max_iter=100_000).fit(Xs, ys, sample_weight=sw)
    W = model.coef_.T
    obj = (data_term("squared", Xs, ys, W, model.intercept_, (omega_t, sw))
           + omega(name, pen.outlier_weight, alpha, model.P_.T, model.Q_.T))
    W_cvx, _, val_cvx, _ = cvx_solve(name, pen.outlier_weight, "squared", Xs, ys, alpha,
                                     (omega_t, sw))
    assert obj == pytest.approx(val_cvx, rel=1e-5)
    np.testing.assert_allclose(W, W_cvx, atol=1e-4)
    assert model.dual_gap_ <= 1e-10 * p0("squared", Xs, ys, sample_weight=sw,
                                         task_weight="samples")
    # given task weights, logistic loss: certified
    Xl, yl = problem(name, "logistic", 22)
    clf = rm.MultiTaskClassifier(pen, alpha=0.3 * rm.alpha_max(Xl, yl, penalty=pen,
                                                               loss="logistic"),
                                 task_weight=np.linspace(0.5, 2.0, T), tol=1e-8).fit(
        Xl, yl, sample_weight=[np.linspace(1.0, 2.0, len(y)) for y in yl])
    assert clf.dual_gap_ >= 0.0 and hasattr(clf, "outlier_tasks_")


# --------------------------------------------------------------------------- prox
def cvx_prox(name, g, V, step, alpha):
    Pv, Qv = cp.Variable(V[0].shape), cp.Variable(V[1].shape)
    fit = (cp.sum_squares(Pv - V[0]) + cp.sum_squares(Qv - V[1])) / (2 * step)
    shared = cp.normNuc(Pv) if name == "robust_lowrank" else cp.sum(cp.norm(Pv, 2, axis=1))
    prob = cp.Problem(cp.Minimize(fit + alpha * (shared + g * cp.sum(cp.norm(Qv, 2, axis=0)))))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**CLARABEL)
    return np.stack([Pv.value, Qv.value]), float(prob.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(PENALTIES))
def test_prox_matches_cvxpy(name, seed):
    pen = PENALTIES[name]
    g = pen.outlier_weight
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((2, 6, 4))
    V[1][:, rng.choice(4, 2, replace=False)] *= 0.1  # columns that the prox zeroes
    step, alpha = rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)

    def obj(U):
        return float(np.sum((U - V) ** 2) / (2 * step) + omega(name, g, alpha, U[0], U[1]))

    U = pen.prox(V, step, alpha)
    U_cvx, val_cvx = cvx_prox(name, g, V, step, alpha)
    assert obj(U) <= obj(U_cvx) + 1e-12 * abs(obj(U_cvx))
    assert obj(U) == pytest.approx(val_cvx, rel=1e-7)
    np.testing.assert_allclose(U, U_cvx, atol=1e-4)
    assert np.any(np.all(U[1] == 0.0, axis=0))  # the column groups were thresholded
    assert pen.value(U, alpha) == pytest.approx(omega(name, g, alpha, U[0], U[1]), rel=1e-12)


# --------------------------------------------------------------------------- alpha_max
@pytest.mark.parametrize("form", ["lists", "shared", "logistic"])
@pytest.mark.parametrize("name", list(PENALTIES))
def test_alpha_max_is_exact(name, form):
    pen = PENALTIES[name]
    loss = "logistic" if form == "logistic" else "squared"
    Xs, ys = problem(name, loss, 31)
    args = (Xs, ys)
    if form == "shared":  # one design (n x p) and a target matrix (n x T)
        args = (Xs[0][:20], np.column_stack([y[:20] for y in ys]))
        Xs, ys = [args[0]] * T, list(args[1].T)
    G = g0(loss, Xs, signed(ys, loss))
    a = rm.alpha_max(*args, penalty=pen, loss=loss)
    assert a == pytest.approx(dual_norm(name, pen.outlier_weight, G), rel=1e-12)
    at = estimator(loss)(penalty=pen, alpha=a, tol=1e-10).fit(*args)
    assert np.all(at.coef_ == 0.0) and at.outlier_tasks_.size == 0
    below = estimator(loss)(penalty=pen, alpha=0.98 * a, tol=1e-10, max_iter=50_000).fit(*args)
    assert np.any(below.coef_ != 0.0)
    # and the penalty's pieces agree: the prox of G0 vanishes exactly from alpha_max on
    assert pen.alpha_max(G) == pytest.approx(a, rel=1e-12)
    assert np.all(pen.prox(pen.spread(G), 1.0, a * (1 + 1e-12)) == 0.0)
    assert np.any(pen.prox(pen.spread(G), 1.0, 0.98 * a) != 0.0)
    assert pen.dual_scaling(3 * G, a) == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("name", list(PENALTIES))
def test_conjugate_is_the_indicator_of_both_dual_balls(name):
    """<G, P + Q> <= Omega(P, Q) for every split when G is in both balls (sup = 0), with
    equality approached along the maximizers of each part."""
    pen = PENALTIES[name]
    rng = np.random.default_rng(3)
    G = rng.standard_normal((6, 4))
    s = pen.dual_scaling(G, 1.0)
    Gs = s * G
    assert dual_norm(name, pen.outlier_weight, Gs) == pytest.approx(1.0, rel=1e-12)
    assert pen.conjugate(Gs, 1.0) == 0.0
    for _ in range(200):
        V = rng.standard_normal((2, 6, 4)) * 10.0 ** rng.uniform(-2, 1)
        assert np.sum(Gs * pen.compose(V)) <= pen.value(V, 1.0) * (1 + 1e-12)
    # the column that attains the outlier norm: Q = that column (times Gs's direction)
    t = int(np.argmax(col_norms(G)))
    Q = np.zeros_like(G)
    Q[:, t] = Gs[:, t]
    V = np.stack([np.zeros_like(G), Q])
    sup = np.sum(Gs * Q) / pen.value(V, 1.0)
    assert sup <= 1.0 + 1e-12
    assert sup == pytest.approx(col_norms(Gs)[t] / pen.outlier_weight, rel=1e-12)


# --------------------------------------------------------------------------- known truth
OUTLIERS = [3, 7]


@functools.cache
def truth(name: str):
    """Ten tasks; tasks 3 and 7 use six features of their own, the others share a rank-2 W
    (robust_lowrank) or four features (robust_features)."""
    rng = np.random.default_rng(0)
    Tn, p, n = 10, 15, 80
    if name == "robust_lowrank":
        W = rng.standard_normal((p, 2)) @ rng.uniform(0.5, 1.5, (2, Tn))
    else:
        W = np.zeros((p, Tn))
        W[:4] = rng.uniform(0.5, 1.5, (4, Tn)) * rng.choice([-1, 1], (4, 1))
    for t in OUTLIERS:
        W[:, t] = 0.0
        W[rng.choice(p, 6, replace=False), t] = 2.0 * rng.standard_normal(6)
    Xs = [rng.standard_normal((n, p)) for _ in range(Tn)]
    ys = [X @ W[:, t] + 1.0 + 0.1 * rng.standard_normal(n) for t, X in enumerate(Xs)]
    return Xs, ys, W


TRUTH_PENALTIES = {"robust_lowrank": rm.RobustLowRank(0.8),
                   "robust_features": rm.RobustFeatures(1.0)}


@pytest.mark.parametrize("name", list(TRUTH_PENALTIES))
def test_outlier_tasks_are_recovered(name):
    pen = TRUTH_PENALTIES[name]
    Xs, ys, W = truth(name)
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty=pen)
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-8).fit(Xs, ys)
    assert model.outlier_tasks_.tolist() == OUTLIERS
    assert np.flatnonzero(np.any(model.Q_ != 0, axis=1)).tolist() == OUTLIERS
    if name == "robust_lowrank":
        assert np.linalg.matrix_rank(model.P_, tol=1e-6) == 2
    else:
        assert np.flatnonzero(np.any(model.P_ != 0, axis=0)).tolist() == [0, 1, 2, 3]
    # the shared-only models cannot tell: a trace-norm or L2,1 fit spends its structure on them
    plain = rm.Trace() if name == "robust_lowrank" else rm.L21()
    other = rm.MultiTaskRegressor(plain, alpha=0.05 * rm.alpha_max(Xs, ys, penalty=plain),
                                  tol=1e-8).fit(Xs, ys)
    if name == "robust_lowrank":
        assert other.rank_ > 2
    else:
        assert np.count_nonzero(np.any(other.coef_ != 0, axis=0)) > 4
    # degrees of freedom: r (p + T_in - r) + p k with the T intercepts; nonzeros of W
    data = rm.as_task_data(Xs, ys)
    df = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, model.coef_matrix_,
                            model.intercept_, structure={"P_": model.P_, "Q_": model.Q_})
    p, Tn = 15, 10
    expected = (2 * (p + Tn - 2 - 2) + 2 * p if name == "robust_lowrank"
                else np.count_nonzero(model.coef_)) + Tn
    assert df == expected


@pytest.mark.parametrize("name", list(TRUTH_PENALTIES))
def test_a_new_task_inherits_the_shared_part(name):
    """transfer reads the shared part P only: a new inlier task gets the rank-2 subspace of P,
    or its four shared features, not the outlier tasks' directions."""
    pen = TRUTH_PENALTIES[name]
    Xs, ys, W = truth(name)
    model = rm.MultiTaskRegressor(pen, alpha=0.05 * rm.alpha_max(Xs, ys, penalty=pen),
                                  tol=1e-8).fit(Xs, ys)
    prior = structure_priors(model)[0]
    if name == "robust_lowrank":
        assert prior.strategy == "subspace" and prior.info["rank"] == 2
        U = prior.basis  # spans the inliers' columns of W
        inliers = np.delete(W, OUTLIERS, axis=1)
        assert np.linalg.norm(inliers - U @ (U.T @ inliers)) < 0.05 * np.linalg.norm(inliers)
    else:
        assert prior.strategy == "support" and prior.info["support"].tolist() == [0, 1, 2, 3]
    # a new inlier task with 8 rows (fewer than its 15 features) learns from it
    rng = np.random.default_rng(9)
    X_new, X_test = rng.standard_normal((8, 15)), rng.standard_normal((200, 15))
    y_new = X_new @ W[:, 0] + 1.0 + 0.1 * rng.standard_normal(8)
    new = rm.transfer(model, X_new, y_new)
    assert new.strategy_ == prior.strategy
    assert new.score(X_test, X_test @ W[:, 0] + 1.0) > 0.9


# --------------------------------------------------------------------------- around the fit
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(PENALTIES))
def test_save_load_round_trip(name, loss, tmp_path):
    pen = PENALTIES[name]
    Xs, ys = problem(name, loss, 41)
    model = estimator(loss)(penalty=pen, alpha=0.3 * rm.alpha_max(Xs, ys, penalty=pen,
                                                                   loss=loss),
                            tol=1e-8).fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert type(again) is type(model) and again.penalty == pen
    for attr in ("coef_", "intercept_", "P_", "Q_", "outlier_tasks_"):
        np.testing.assert_array_equal(getattr(again, attr), getattr(model, attr))
    assert again.outlier_tasks_.dtype.kind in "iu"
    for a, b in zip(again.predict(Xs), model.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    # a warm start restarts from the saved parts and stays at the optimum
    again.set_params(warm_start=True).fit(Xs, ys)
    np.testing.assert_allclose(again.coef_, model.coef_, atol=1e-6)
    assert again.n_iter_ <= model.n_iter_


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(PENALTIES))
def test_path_and_cv_are_certified(name, loss):
    pen = PENALTIES[name]
    Xs, ys = problem(name, loss, 51)
    path = rm.regularization_path(Xs, ys, penalty=pen, loss=loss, alphas=6, tol=1e-8)
    assert path.certificate_kind == "duality_gap"
    assert path.converged.all() and np.all(path.certificates <= 1e-8)
    assert np.all(path.coefs[0] == 0.0) and np.any(path.coefs[-1] != 0.0)
    assert all({"P_", "Q_", "outlier_tasks_"} <= set(s) for s in path.structure)
    cv_cls = rm.MultiTaskRegressorCV if loss == "squared" else rm.MultiTaskClassifierCV
    cv = cv_cls(penalty=name, alphas=5, cv=3, tol=1e-6).fit(Xs, ys)
    best = cv.best_estimator_
    assert make_penalty(best.penalty) == make_penalty(name)
    assert 0.0 <= best.dual_gap_ <= 1e-6 * p0(loss, Xs, ys)
    assert cv.alpha_ in set(cv.cv_results_["param_alpha"])
    # criterion AIC / BIC through the degrees of freedom
    ic = cv_cls(penalty=pen, alphas=5, criterion="bic", tol=1e-6).fit(Xs, ys)
    assert np.isfinite(ic.alpha_)


@pytest.mark.parametrize("name", list(PENALTIES))
def test_school_is_certified(name):
    """The shipped School data (139 schools, 28 features), both penalties at a tenth of
    alpha_max: certified by the duality gap."""
    from regmtl.datasets import load_school

    b = load_school()
    pen = PENALTY_NAMES[name]()
    alpha = 0.1 * rm.alpha_max(b["X"], b["y"], penalty=pen)
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-5, max_iter=20_000).fit(b["X"], b["y"])
    assert 0.0 <= model.dual_gap_ <= 1e-5 * p0("squared", b["X"], b["y"])
    assert np.any(model.P_ != 0)
    assert model.outlier_tasks_.size < len(b["X"])


# --------------------------------------------------------------------------- api
def test_names_defaults_and_solver_route():
    assert make_penalty("robust_lowrank") == rm.RobustLowRank(0.8)
    assert make_penalty("robust_features") == rm.RobustFeatures(1.0)
    assert "robust_lowrank" in PENALTY_NAMES and "robust_features" in PENALTY_NAMES
    Xs, ys = problem("robust_features", "squared", 11)
    data = rm.as_task_data(Xs, ys)
    for pen in PENALTIES.values():
        # as SparseLowRank: ADMM over (P, Q) with exact solves (Newton for logistic)
        assert choose_solver(data, rm.Quadratic(), pen, 0.1) == "admm"
        assert penalty_solver(rm.Logistic(), pen) == "fista"
        for solver in ("bcd", "cg"):
            with pytest.raises(ValueError, match=repr(solver)):
                choose_solver(data, rm.Quadratic(), pen, 0.1, solver=solver)
        assert pen.has_dual and pen.distributable  # (on Dask: tests/test_dask_penalties.py)
        V = np.random.default_rng(0).standard_normal((2, 6, 5))
        np.testing.assert_array_equal(pen.compose(V), V[0] + V[1])
        np.testing.assert_array_equal(pen.compose(pen.lift(V[0])), V[0])


def test_the_limits_of_outlier_weight():
    """outlier_weight >= 1 (RobustLowRank) / >= sqrt(p) (RobustFeatures): no outlier part,
    the trace-norm / L2,1 fit; <= 1/sqrt(T): every task its own (the column group lasso)."""
    Xs, ys = problem("robust_lowrank", "squared", 61)
    for pen, plain in ((rm.RobustLowRank(1.0), rm.Trace()),
                       (rm.RobustFeatures(np.sqrt(P)), rm.L21())):
        alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=plain)
        a = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-12, max_iter=100_000).fit(Xs, ys)
        b = rm.MultiTaskRegressor(plain, alpha=alpha, tol=1e-12, max_iter=100_000).fit(Xs, ys)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
        assert a.objective_ == pytest.approx(b.objective_, rel=1e-9)
    for pen in (rm.RobustLowRank(0.9 / np.sqrt(T)), rm.RobustFeatures(0.9 / np.sqrt(T))):
        m = rm.MultiTaskRegressor(pen, alpha=0.2 * rm.alpha_max(Xs, ys, penalty=pen),
                                  tol=1e-10).fit(Xs, ys)
        assert np.all(m.P_ == 0.0) and m.outlier_tasks_.size > 0


@pytest.mark.parametrize("cls", [rm.RobustLowRank, rm.RobustFeatures])
@pytest.mark.parametrize("bad", [0, -1.0, np.nan, np.inf, "1", None])
def test_bad_outlier_weight_is_named(cls, bad):
    Xs, ys = problem("robust_lowrank", "squared", 11)
    with pytest.raises(ValueError, match="outlier_weight"):
        rm.MultiTaskRegressor(cls(outlier_weight=bad), alpha=0.1).fit(Xs, ys)
    with pytest.raises(ValueError, match="outlier_weight"):
        rm.alpha_max(Xs, ys, penalty=cls(outlier_weight=bad))


def test_no_convergence_warning_is_hidden():
    """The fits above run with ConvergenceWarning as an error; a fit given too few
    iterations warns (so that filter is live)."""
    Xs, ys = problem("robust_lowrank", "squared", 11)
    pen = PENALTIES["robust_lowrank"]
    with pytest.warns(ConvergenceWarning):
        rm.MultiTaskRegressor(pen, alpha=0.01, tol=1e-14, max_iter=3).fit(Xs, ys)
