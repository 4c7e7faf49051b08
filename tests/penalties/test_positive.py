"""Sign constraints: ``positive=True`` of L1, ElasticNet and L21 (Omega + indicator of W >= 0).

Checked against scikit-learn's ``Lasso`` / ``ElasticNet(positive=True)`` (one task, and one fit
per task on a shared design), against cvxpy (L2,1 with the squared and the logistic loss, the
proximal operators), by the exact ``alpha_max``, by the agreement of every solver and data form
on the objective, by the safety of gap-safe screening, on the School data, and through the
penalty's parameters (validation, ``get_params``, repr, equality, clone, save / load, degrees of
freedom, transfer).

Problems have true weights of both signs, so the constraint binds (each test that compares
with a reference also checks that the unconstrained answer has negative entries).
"""

from __future__ import annotations

import functools

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import nnls
from sklearn.base import clone
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso

import regmtl as rm
from regmtl.problem import make_data
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import reference, solve
from regmtl.solvers.certificates.certify import duality_gap_terms
from regmtl.solvers.certificates.screening import safe_radius, screen
from regmtl.solvers.parts.moments import feature_moments

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

POSITIVE = [rm.L1(positive=True), rm.ElasticNet(0.6, positive=True), rm.L21(positive=True),
            rm.L21(0.7, positive=True)]
POS_IDS = ["l1", "enet", "l21", "l21_ridge"]
SPARSE = pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
INTERCEPT = pytest.mark.parametrize("fit_intercept", [True, False],
                                    ids=["intercept", "no_intercept"])


# ----------------------------------------------------------------------------- problems
def _signed_weights(rng, p, T):
    """Half the features active, weights of both signs (so the sign constraint binds)."""
    return 2.0 * rng.standard_normal((p, T)) * (rng.random((p, 1)) < 0.5)


def _labels(rng, f):
    y = (rng.random(f.shape[0]) < 1.0 / (1.0 + np.exp(-f))).astype(np.int64)
    y[0], y[1] = 0, 1
    return y


def signed_single(seed=0, n=60, p=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
    y = X @ _signed_weights(rng, p, 1)[:, 0] + 2.0 + rng.standard_normal(n)
    X[rng.random(X.shape) < 0.3] = 0.0  # exact zeros: the sparse input holds the same numbers
    return X, y


def signed_shared(seed=0, n=50, p=12, T=4, loss="squared"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
    X[rng.random(X.shape) < 0.3] = 0.0
    F = X @ _signed_weights(rng, p, T) + np.arange(T)
    if loss == "squared":
        return X, F + rng.standard_normal((n, T))
    return X, np.column_stack([_labels(rng, 0.7 * F[:, t]) for t in range(T)])


def signed_lists(seed=0, ns=(30, 45, 60), p=10, loss="squared"):
    rng = np.random.default_rng(seed)
    W = _signed_weights(rng, p, len(ns))
    Xs, ys = [], []
    for t, n in enumerate(ns):
        X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
        f = X @ W[:, t] + t - 1.0
        Xs.append(X)
        ys.append(f + 1.0 + rng.standard_normal(n) if loss == "squared"
                  else _labels(rng, 0.7 * f))
    return Xs, ys


def assert_coef_equal(ours, ref, rtol=1e-6):
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-8 * max(np.abs(ref).max(), 1e-300))


# ----------------------------------------------------------------------------- scikit-learn
@SPARSE
@INTERCEPT
@pytest.mark.parametrize("frac", [3.0, 10.0], ids=["amax/3", "amax/10"])
def test_one_task_l1_positive_equals_sklearn_lasso(sparse, fit_intercept, frac):
    X, y = signed_single()
    alpha = rm.alpha_max(X, y, penalty=rm.L1(positive=True), fit_intercept=fit_intercept) / frac
    sk = Lasso(alpha=alpha, positive=True, fit_intercept=fit_intercept, tol=1e-14,
               max_iter=1_000_000).fit(X, y)
    free = Lasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-10).fit(X, y)
    assert free.coef_.min() < -1e-3  # the constraint binds
    model = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=alpha, tol=1e-14,
                                  fit_intercept=fit_intercept)
    model.fit(sp.csr_matrix(X) if sparse else X, y)
    assert model.coef_.min() >= 0.0
    assert_coef_equal(model.coef_, sk.coef_)
    assert abs(model.intercept_ - sk.intercept_) <= 1e-6 * max(1.0, abs(sk.intercept_))


@SPARSE
@pytest.mark.parametrize("l1_ratio", [0.3, 0.8])
def test_one_task_elasticnet_positive_equals_sklearn(sparse, l1_ratio):
    X, y = signed_single(seed=1)
    pen = rm.ElasticNet(l1_ratio, positive=True)
    alpha = rm.alpha_max(X, y, penalty=pen) / 5.0
    sk = SkElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=True, tol=1e-14,
                      max_iter=1_000_000).fit(X, y)
    assert SkElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10).fit(X, y).coef_.min() < -1e-3
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-15)
    model.fit(sp.csr_matrix(X) if sparse else X, y)
    assert model.coef_.min() >= 0.0
    assert_coef_equal(model.coef_, sk.coef_)
    assert abs(model.intercept_ - sk.intercept_) <= 1e-6 * max(1.0, abs(sk.intercept_))


@SPARSE
def test_shared_design_l1_positive_equals_one_lasso_per_task(sparse):
    """With a shared design and equal task weights the data term is (1/2n)||Y - XW||^2, so L1
    with the sign constraint is one ``Lasso(positive=True)`` per column of Y."""
    X, Y = signed_shared(seed=3)
    alpha = rm.alpha_max(X, Y, penalty=rm.L1(positive=True)) / 6.0
    model = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=alpha, tol=1e-14)
    model.fit(sp.csc_matrix(X) if sparse else X, Y)
    assert model.coef_.min() >= 0.0
    for t in range(Y.shape[1]):
        sk = Lasso(alpha=alpha, positive=True, tol=1e-14, max_iter=1_000_000).fit(X, Y[:, t])
        assert_coef_equal(model.coef_[t], sk.coef_)
        assert abs(model.intercept_[t] - sk.intercept_) <= 1e-6 * max(1.0, abs(sk.intercept_))


# ----------------------------------------------------------------------------- cvxpy
#: Clarabel to its last digits (its defaults stop near 1e-4 on these small problems)
TIGHT = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)


def _objective(Xs, ys, W, b, alpha, loss, rho=1.0):
    """design.rst section 4:
    sum_t (1/n_t) sum_i l + alpha (rho sum_j ||W_j|| + (1-rho)/2 ||W||^2)."""
    total = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            total += 0.5 * float(np.mean((y - f) ** 2))
        else:
            total += float(np.mean(np.logaddexp(0.0, -(2.0 * y - 1.0) * f)))
    return total + alpha * (rho * np.linalg.norm(W, axis=1).sum()
                            + 0.5 * (1.0 - rho) * float(np.sum(W * W)))


def _cvxpy_l21_positive(Xs, ys, alpha, loss, rho):
    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    data = 0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            data += cp.sum_squares(y - f) / (2 * len(y))
        else:
            data += cp.sum(cp.logistic(cp.multiply(-(2.0 * y - 1.0), f))) / len(y)
    pen = rho * cp.sum(cp.norm(W, 2, axis=1)) + 0.5 * (1 - rho) * cp.sum_squares(W)
    cp.Problem(cp.Minimize(data + alpha * pen), [W >= 0]).solve(solver=cp.CLARABEL, **TIGHT)
    return np.maximum(W.value, 0.0), b.value


@pytest.mark.parametrize(("loss", "rho", "seed"), [
    ("squared", 1.0, 11), ("squared", 0.6, 12), ("logistic", 1.0, 13), ("logistic", 0.8, 14)])
def test_l21_positive_matches_cvxpy(loss, rho, seed):
    """Unseen random problems (per-task designs, intercepts): the objective agrees with cvxpy's
    to 1e-6 relative, every coefficient is >= 0 and the duality gap is below tol."""
    Xs, ys = signed_lists(seed=seed, loss=loss)
    pen = rm.L21(rho, positive=True)
    alpha = rm.alpha_max(Xs, ys, penalty=pen, loss=loss) / 6.0
    tol = 1e-10
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    model = est(pen, alpha=alpha, tol=tol).fit(Xs, ys)
    W, b = np.asarray(model.coef_).T, np.asarray(model.intercept_)
    if loss == "logistic":  # labels 0/1 -> scores of class 1
        assert list(model.classes_[0]) == [0, 1]
    ours = _objective(Xs, ys, W, b, alpha, loss, rho)
    Wc, bc = _cvxpy_l21_positive(Xs, ys, alpha, loss, rho)
    theirs = _objective(Xs, ys, Wc, bc, alpha, loss, rho)
    assert abs(ours - theirs) <= 1e-6 * abs(theirs)
    assert ours <= theirs + 1e-9 * abs(theirs)  # certified: no worse than cvxpy's point
    assert W.min() >= 0.0 and np.count_nonzero(W) > 0
    free = est(rm.L21(rho), alpha=alpha, tol=1e-6).fit(Xs, ys)
    assert np.min(free.coef_) < -1e-3  # the constraint binds
    P0 = reference(make_data(Xs, ys, loss=loss), _datafit(loss), True).P0
    assert model.dual_gap_ <= tol * P0
    assert abs(model.objective_ - ours) <= 1e-9 * abs(ours)


def _datafit(loss):
    return rm.Quadratic() if loss == "squared" else rm.Logistic()


# (Clarabel flags its second-order cones "inaccurate" at these tolerances; the comparison below
# is the judge: it agrees to about 1e-8)
@pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize(("pen", "kind"), [
    (rm.L1(positive=True), "entries"), (rm.ElasticNet(0.4, positive=True), "entries"),
    (rm.L21(positive=True), "rows"), (rm.L21(0.5, positive=True), "rows")],
    ids=["l1", "enet", "l21", "l21_ridge"])
def test_prox_matches_cvxpy(pen, kind):
    rng = np.random.default_rng(5)
    V = rng.standard_normal((7, 4)) * 1.5
    V[2] = -np.abs(V[2])  # a row all negative: its prox is 0
    V[3] = [2.0, -3.0, 0.1, 1.0]  # a row of both signs
    step, alpha = 0.7, 0.9
    U = cp.Variable(V.shape)
    rho = pen.rho
    norm = cp.sum(cp.abs(U)) if kind == "entries" else cp.sum(cp.norm(U, 2, axis=1))
    obj = cp.sum_squares(U - V) / (2 * step) + alpha * (rho * norm
                                                          + 0.5 * (1 - rho) * cp.sum_squares(U))
    cp.Problem(cp.Minimize(obj), [U >= 0]).solve(solver=cp.CLARABEL, **TIGHT)
    ours = pen.prox(V, step, alpha)
    np.testing.assert_allclose(ours, U.value, atol=1e-6)
    assert ours.min() >= 0.0 and np.all(ours[2] == 0.0)
    # the prox of the orthant-constrained norm is the unconstrained prox of the positive part
    free = type(pen)(pen.l1_ratio) if not isinstance(pen, rm.L1) else rm.L1()
    np.testing.assert_array_equal(ours, free.prox(np.maximum(V, 0.0), step, alpha))


@pytest.mark.parametrize("group", [True, False], ids=["rows", "entries"])
@pytest.mark.parametrize("l2", [0.0, 0.4])
def test_block_step_matches_cvxpy(group, l2):
    """The kernels' exact block step under the sign constraint (one feature, unequal
    curvatures across tasks: the weighted group prox), against cvxpy."""
    from regmtl.penalties.base import POSITIVE_ENTRYWISE, POSITIVE_ROWS
    from regmtl.solvers.parts._kernels import bcd_epoch_task_gram

    rng = np.random.default_rng(6)
    T = 6
    L = rng.uniform(0.2, 3.0, T)
    a = np.array([2.5, -1.0, 0.8, -3.0, 1.7, 0.05])  # a_t = L_t w_t + g_t, both signs
    W = np.abs(rng.standard_normal((1, T)))  # the current row (feasible)
    g = a - L * W[0]
    l1 = 1.1
    kind = POSITIVE_ROWS if group else POSITIVE_ENTRYWISE
    bcd_epoch_task_gram(L.reshape(T, 1, 1), g.reshape(T, 1).copy(), W, L.reshape(1, T), l1,
                        l2, kind, np.zeros(T), np.zeros(T))
    w = cp.Variable(T)
    norm = cp.norm(w, 2) if group else cp.norm(w, 1)
    obj = 0.5 * cp.sum(cp.multiply(L, cp.square(w))) - a @ w + l1 * norm \
        + 0.5 * l2 * cp.sum_squares(w)
    cp.Problem(cp.Minimize(obj), [w >= 0]).solve(solver=cp.CLARABEL, **TIGHT)
    np.testing.assert_allclose(W[0], np.maximum(w.value, 0.0), atol=1e-6)
    assert W.min() >= 0.0 and np.all(W[0][a <= 0] == 0.0)


# ----------------------------------------------------------------------------- alpha_max
def _g0(X, y):
    """Minus the gradient of (1/2n)||y - b - Xw||^2 at w = 0 with b fitted."""
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    return Xc.T @ yc / len(y)


def test_alpha_max_uses_the_positive_part_of_the_gradient():
    """The largest |G0| entry is negative: the positive alpha_max is the largest positive
    entry, smaller than the unconstrained one; W = 0 at it, W != 0 just below."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 5))
    y = -3.0 * X[:, 0] + 1.0 * X[:, 1] + 0.3 * rng.standard_normal(80)
    G0 = _g0(X, y)
    assert np.argmax(np.abs(G0)) == 0 and G0[0] < 0  # the largest |G0_j| is negative
    a_pos = rm.alpha_max(X, y, penalty=rm.L1(positive=True))
    a_free = rm.alpha_max(X, y, penalty=rm.L1())
    assert a_pos == pytest.approx(np.maximum(G0, 0.0).max(), rel=1e-12)
    assert a_free == pytest.approx(np.abs(G0).max(), rel=1e-12)
    assert a_pos < 0.9 * a_free
    at = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=a_pos, tol=1e-12).fit(X, y)
    below = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=0.99 * a_pos, tol=1e-12).fit(X, y)
    assert np.all(at.coef_ == 0.0)
    assert np.count_nonzero(below.coef_) > 0 and below.coef_.min() >= 0.0
    # ElasticNet divides by l1_ratio
    assert rm.alpha_max(X, y, penalty=rm.ElasticNet(0.25, positive=True)) == pytest.approx(
        a_pos / 0.25, rel=1e-12)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_alpha_max_l21_positive_exact(loss):
    X, Y = signed_shared(seed=8, loss=loss)
    if loss == "squared":  # a feature of large negative effect
        Y[:, 0] -= 5.0 * X[:, 0]
    pen = rm.L21(positive=True)
    data = make_data(X, Y, loss=loss)
    G0 = reference(data, _datafit(loss), True).G0
    expected = np.linalg.norm(np.maximum(G0, 0.0), axis=1).max()
    a_pos = rm.alpha_max(X, Y, penalty=pen, loss=loss)
    assert a_pos == pytest.approx(expected, rel=1e-12)
    assert a_pos <= rm.alpha_max(X, Y, penalty=rm.L21(), loss=loss)
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    at = est(pen, alpha=a_pos, tol=1e-10).fit(X, Y)
    below = est(pen, alpha=0.99 * a_pos, tol=1e-10).fit(X, Y)
    assert np.all(np.asarray(at.coef_) == 0.0)
    assert np.count_nonzero(below.coef_) > 0 and np.min(below.coef_) >= 0.0


def test_no_positive_correlation_means_zero_for_every_alpha():
    """Every entry of G0 <= 0: alpha_max is 0, and any alpha > 0 fits W = 0 exactly."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((60, 1))
    y = -2.0 * x[:, 0] + 0.1 * rng.standard_normal(60)
    assert rm.alpha_max(x, y, penalty=rm.L1(positive=True)) == 0.0
    model = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=1e-6, tol=1e-12).fit(x, y)
    assert np.all(model.coef_ == 0.0) and model.dual_gap_ <= 1e-12 * model.objective_


# ----------------------------------------------------------------------------- solvers, forms
def _forms_squared():
    """The same problem in every form (per-task lists made of the shared design), each with
    the options that send it down another kernel: (name, X, Y, fit kwargs)."""
    X, Y = signed_shared(seed=21, n=50, p=14, T=3)
    cols = [Y[:, t] for t in range(Y.shape[1])]
    Xsp = sp.csc_matrix(X)
    return [
        # (Gram forms serve tol >= 1e-12, the rounding floor of their sums)
        ("shared/gram", X, Y, dict(tol=1e-12)),
        ("shared/fused", X, Y, dict(solver_options=dict(gram=False))),
        ("shared/sparse", Xsp, Y, {}),
        ("lists/task_gram", [X] * 3, cols, dict(tol=1e-12)),
        ("lists/dense", [X] * 3, cols, dict(solver_options=dict(gram=False))),
        ("lists/sparse", [Xsp] * 3, cols, {}),
        ("no_working_set", X, Y, dict(solver_options=dict(working_set=False, gram=False))),
        ("no_screening", X, Y, dict(solver_options=dict(screening=False, anderson=0,
                                                        gram=False))),
        ("fista", X, Y, dict(solver="fista")),
        ("admm", [X] * 3, cols, dict(solver="admm", tol=1e-12)),  # (Gram sums: >= 1e-12)
    ]


@pytest.mark.parametrize("pen", POSITIVE, ids=POS_IDS)
def test_every_solver_and_form_reaches_the_same_objective(pen):
    alpha = rm.alpha_max(*signed_shared(seed=21, n=50, p=14, T=3), penalty=pen) / 8.0
    objectives = {}
    for name, X, Y, kw in _forms_squared():
        kw = dict(dict(tol=1e-13), **kw)
        model = rm.MultiTaskRegressor(pen, alpha=alpha, max_iter=20_000, **kw)
        model.fit(X, Y)
        assert np.min(model.coef_) >= 0.0, name
        objectives[name] = model.objective_
    ref = min(objectives.values())
    worst = {k: (v - ref) / ref for k, v in objectives.items()}
    assert max(worst.values()) <= 1e-8, worst


@pytest.mark.parametrize("pen", POSITIVE, ids=POS_IDS)
def test_weighted_rows_and_wide_designs(pen):
    """Sample weights (rows of unequal weight: the weighted epochs) equal repeated rows; a wide
    shared design (n < 2p: Gram form on the working sets) agrees with epochs over the data and
    with FISTA."""
    Xs, ys = signed_lists(seed=22, ns=(25, 35), p=8)
    k = 10
    dup_X = [np.vstack([X, X[:k]]) for X in Xs]
    dup_y = [np.concatenate([y, y[:k]]) for y in ys]
    weights = [np.r_[np.full(k, 2.0), np.ones(len(y) - k)] for y in ys]
    alpha = rm.alpha_max(dup_X, dup_y, penalty=pen) / 6.0
    kw = dict(alpha=alpha, tol=1e-13, max_iter=20_000, solver_options=dict(gram=False))
    a = rm.MultiTaskRegressor(pen, **kw).fit(dup_X, dup_y)
    b = rm.MultiTaskRegressor(pen, **kw).fit(Xs, ys, sample_weight=weights)
    assert abs(a.objective_ - b.objective_) <= 1e-8 * a.objective_
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-6)
    X, Y = signed_shared(seed=23, n=30, p=80, T=3)
    alpha = rm.alpha_max(X, Y, penalty=pen) / 5.0
    objs = [rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-13, max_iter=50_000, **opt)
            .fit(X, Y).objective_
            for opt in ({}, dict(solver_options=dict(gram=False)), dict(solver="fista"))]
    assert max(objs) - min(objs) <= 1e-8 * min(objs)


@pytest.mark.parametrize("pen", POSITIVE, ids=POS_IDS)
def test_logistic_newton_and_fista_agree(pen):
    X, Y = signed_shared(seed=24, n=60, p=10, T=3, loss="logistic")
    cols = [Y[:, t] for t in range(3)]
    alpha = rm.alpha_max(X, Y, penalty=pen, loss="logistic") / 8.0
    runs = [("newton/shared", X, Y, {}),
            ("newton/lists", [X] * 3, cols, {}),
            ("newton/sparse", sp.csc_matrix(X), Y, {}),
            ("newton/no_ws", X, Y, dict(solver_options=dict(working_set=False,
                                                            screening=False))),
            ("fista", X, Y, dict(solver="fista"))]
    objectives = {}
    for name, Xf, Yf, kw in runs:
        model = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-12, max_iter=20_000, **kw)
        model.fit(Xf, Yf)
        assert np.min(model.coef_) >= 0.0, name
        assert np.count_nonzero(model.coef_) > 0
        objectives[name] = model.objective_
    ref = min(objectives.values())
    worst = {k: (v - ref) / ref for k, v in objectives.items()}
    assert max(worst.values()) <= 1e-8, worst


def test_alpha_zero_is_nonnegative_least_squares():
    """At alpha = 0 the sign constraint alone remains: scipy's NNLS."""
    X, y = signed_single(seed=4, n=40, p=8)
    model = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=0.0, fit_intercept=False,
                                  tol=1e-12, max_iter=100_000).fit(X, y)
    w, _ = nnls(X, y)
    assert np.count_nonzero(w == 0.0) > 0  # the constraint binds
    np.testing.assert_allclose(model.coef_, w, atol=1e-7)


def test_warm_start_from_negative_coefficients():
    """A warm start outside the constraint (an unconstrained fit's coefficients) is projected
    onto it and ends at the constrained optimum."""
    X, y = signed_single(seed=6)
    alpha = rm.alpha_max(X, y, penalty=rm.L1(positive=True)) / 10.0
    model = rm.MultiTaskRegressor(rm.L1(), alpha=alpha, tol=1e-12, warm_start=True).fit(X, y)
    assert model.coef_.min() < 0
    model.set_params(penalty=rm.L1(positive=True)).fit(X, y)
    cold = rm.MultiTaskRegressor(rm.L1(positive=True), alpha=alpha, tol=1e-12).fit(X, y)
    assert model.coef_.min() >= 0.0
    np.testing.assert_allclose(model.coef_, cold.coef_, atol=1e-6)


# ----------------------------------------------------------------------------- screening
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("pen", POSITIVE, ids=POS_IDS)
def test_screening_never_discards_an_active_feature(pen, loss):
    """The gap-safe rule with the positive-part dual norm, at points of every accuracy: no
    feature it discards is active at the optimum, and it discards some (among them features
    whose gradient is large and negative, which the unconstrained rule keeps)."""
    X, Y = signed_shared(seed=31, n=60, p=30, T=3, loss=loss)
    datafit = _datafit(loss)
    data = make_data(X, Y, loss=loss)
    ref = reference(data, datafit, True)
    alpha = pen.alpha_max(ref.G0) / 4.0
    opt = solve(data, datafit, pen, alpha, tol=1e-13, ref=ref,
                options=dict(screening=False))
    active = np.any(opt.W != 0.0, axis=1)
    assert 0 < active.sum() < len(active)
    L = feature_moments(data, data.c, True)[1]
    l1, l2, kind = pen.bcd_params(alpha)
    discarded_any = negative_kept = False
    for tol in (1e-1, 1e-2, 1e-4, 1e-8):
        res = solve(data, datafit, pen, alpha, tol=tol, ref=ref,
                        options=dict(screening=False))
        f = data.linear(res.W, res.b)
        gap, _, _, s, G = duality_gap_terms(data, datafit, pen, alpha, res.W, f, True)
        out = screen(s * G, L, safe_radius(gap, datafit.dual_strong_concavity), l1, kind, l2)
        assert not np.any(out & active), (tol, np.flatnonzero(out & active))
        discarded_any |= out.any()
        # discarded although |G_jt| >= l1 somewhere: a large negative correlation
        negative_kept |= np.any(out & (np.abs(s * G).max(axis=1) >= l1))
    assert discarded_any and negative_kept


# ----------------------------------------------------------------------------- real data
@functools.cache
def _school():
    from regmtl.datasets import load_school

    return load_school()


@pytest.mark.parametrize("pen", [rm.L21(positive=True), rm.L1(positive=True)],
                         ids=["l21", "l1"])
def test_school_fits_certified_and_nonnegative(pen):
    school = _school()
    Xs, ys = school.X, school.y
    alpha = rm.alpha_max(Xs, ys, penalty=pen) / 20.0
    tol = 1e-8
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=tol).fit(Xs, ys)  # no warning
    P0 = reference(make_data(Xs, ys), rm.Quadratic(), True).P0
    assert model.dual_gap_ <= tol * P0
    assert model.coef_.min() >= 0.0
    assert 0 < np.count_nonzero(model.coef_) < model.coef_.size
    free = rm.MultiTaskRegressor(type(pen)(), alpha=alpha, tol=1e-6).fit(Xs, ys)
    assert free.coef_.min() < 0.0  # the constraint binds on these data


# ----------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("make", [lambda v: rm.L1(positive=v),
                                  lambda v: rm.ElasticNet(0.5, positive=v),
                                  lambda v: rm.L21(positive=v)], ids=["l1", "enet", "l21"])
@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
def test_positive_must_be_a_bool(make, value):
    X, y = signed_single()
    with pytest.raises(ValueError, match=r"positive must be True or False; got"):
        rm.MultiTaskRegressor(make(value), alpha=0.1).fit(X, y)
    with pytest.raises(ValueError, match=r"positive must be True or False"):
        make(value).check(3, 1)


def test_params_repr_equality_and_clone():
    assert rm.L1(positive=True).get_params() == {"positive": True}
    assert rm.L21(0.5, positive=True).get_params() == {"l1_ratio": 0.5, "positive": True}
    assert rm.ElasticNet().get_params() == {"l1_ratio": 0.5, "positive": False}
    assert rm.L2().get_params() == {}
    assert repr(rm.L1(positive=True)) == "L1(positive=True)"
    assert repr(rm.L21(0.5, positive=True)) == "L21(l1_ratio=0.5, positive=True)"
    assert repr(rm.L1()) == "L1()" and repr(rm.ElasticNet()) == "ElasticNet(l1_ratio=0.5)"
    assert rm.L1(positive=True) == rm.L1(positive=True) != rm.L1()
    assert rm.L21(positive=True) != rm.L21()
    est = rm.MultiTaskRegressor(rm.L21(positive=True), alpha=0.1)
    assert est.get_params()["penalty__positive"] is True
    assert clone(est).penalty == rm.L21(positive=True)
    est.set_params(penalty__positive=False)
    assert est.penalty == rm.L21()
    assert rm.L1().set_params(positive=True) == rm.L1(positive=True)


@pytest.mark.parametrize("pen", POSITIVE, ids=POS_IDS)
def test_save_load_round_trip_keeps_positive(pen, tmp_path):
    X, Y = signed_shared(seed=41)
    model = rm.MultiTaskRegressor(pen, alpha=0.05).fit(X, Y)
    model.save(tmp_path / "m.npz")
    loaded = rm.load(tmp_path / "m.npz")
    assert loaded.penalty == pen and loaded.penalty.positive is True
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    refit = clone(loaded).fit(X, Y)
    np.testing.assert_allclose(refit.coef_, model.coef_, atol=1e-10)


def test_degrees_of_freedom_count_the_free_entries():
    """A nonzero row's entries held at 0 by the constraint are not free: the trace runs over
    the positive entries (with the curvature of the row norm there), fewer than the rows'."""
    X, Y = signed_shared(seed=42, n=80, p=10, T=3)
    pen = rm.L21(0.5, positive=True)
    alpha = rm.alpha_max(X, Y, penalty=pen) / 10.0
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-10).fit(X, Y)
    W, b = model.coef_.T, model.intercept_
    rows = np.any(W != 0, axis=1)
    assert np.any(W[rows] == 0)  # a nonzero row with entries at 0
    data = rm.as_task_data(X, Y)
    df_pos = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, W, b)
    df_enet = degrees_of_freedom(data, rm.Quadratic(), rm.ElasticNet(0.5), alpha, W, b)
    df_rows = degrees_of_freedom(data, rm.Quadratic(), rm.L21(0.5), alpha, W, b)
    # the same entries as the elastic net's, shrunk further by the row norm's curvature
    assert df_pos < df_enet
    assert df_pos < df_rows
    # l1_ratio = 1: between the selected rows and the nonzero entries (plus the intercepts)
    lasso = rm.L21(positive=True)
    df = degrees_of_freedom(data, rm.Quadratic(), lasso, alpha, W, b)
    assert np.count_nonzero(rows) + 3 < df < np.count_nonzero(W) + 3


def test_transfer_refuses_a_sign_constrained_model():
    Xs, ys = signed_lists(seed=43)
    model = rm.MultiTaskRegressor(rm.L21(positive=True), alpha=0.05).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"constrains every coefficient to be >= 0"):
        rm.transfer(model, Xs[0][:10], ys[0][:10])
