"""The quantile loss with a penalty that is a linear program: the ``linear_program`` row
(HiGHS), against scikit-learn's QuantileRegressor(highs) and cvxpy, its certificate the
library's duality gap; and the primal-dual row's warm starts from a path's dual point."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers import reference, solve
from regmtl.solvers.policy import choose_row

TAU = 0.7


def _tasks(sizes=(40, 55, 70), p=6, seed=0):
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -0.8, 0.5, 0.0, 0.0, 0.0])[:p]
    Xs = [rng.standard_normal((n, p)) + 0.3 for n in sizes]
    ys = [X @ (w + 0.2 * rng.standard_normal(p)) + 0.5 + rng.standard_t(3, len(X))
          for X in Xs]
    return Xs, ys


def _pinball(r, tau=TAU):
    return np.maximum(tau * r, (tau - 1.0) * r)


def _objective(Xs, ys, sws, coef, intercept, alphas, penalty="l1"):
    """sum_t (sum_i s_i pinball_i / sum_i s_i) + alpha_t ||w_t||_1 (or alpha sum_j max_t)."""
    total = 0.0
    for t, (X, y, s) in enumerate(zip(Xs, ys, sws, strict=True)):
        total += float(np.dot(s, _pinball(y - X @ coef[t] - intercept[t])) / s.sum())
        if penalty == "l1":
            total += alphas[t] * np.abs(coef[t]).sum()
    if penalty == "l1inf":
        total += alphas[0] * np.abs(coef).max(axis=0).sum()
    return total


def _cvx_minimum(Xs, ys, sws, alphas, penalty="l1", positive=False):
    import cvxpy as cp

    p, T = Xs[0].shape[1], len(Xs)
    W = cp.Variable((p, T), nonneg=positive)
    b = cp.Variable(T)
    terms = []
    for t, (X, y, s) in enumerate(zip(Xs, ys, sws, strict=True)):
        r = y - X @ W[:, t] - b[t]
        terms.append(cp.sum(cp.multiply(s / s.sum(), cp.maximum(TAU * r, (TAU - 1) * r))))
        if penalty == "l1":
            terms.append(alphas[t] * cp.norm1(W[:, t]))
    if penalty == "l1inf":
        terms.append(alphas[0] * cp.sum(cp.max(cp.abs(W), axis=1)))
    prob = cp.Problem(cp.Minimize(cp.sum(terms)))
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return prob.value


def test_auto_picks_the_linear_program_for_l1_and_l1inf_not_for_l21():
    Xs, ys = _tasks()
    data = rm.as_task_data(Xs, ys)
    loss = rm.Quantile(TAU).bind(data)
    for pen in (rm.L1(), rm.L1(positive=True), rm.ElasticNet(l1_ratio=1.0)):
        assert choose_row(data, loss, pen, 0.01) == "linear_program", pen
    # L1,inf is a linear program too, and a cone program (bounds |W_jt| <= s_j): the interior
    # point runs it (40 schools: 0.08 s against HiGHS's 0.40 s)
    assert choose_row(data, loss, rm.LInf1(), 0.01) == "interior_point"
    for pen in (rm.ElasticNet(0.5), rm.L2()):
        assert choose_row(data, loss, pen, 0.01) == "primal_dual", pen
    # the trace norm: linear-matrix inequalities, the spectral barrier's
    assert choose_row(data, loss, rm.Trace(), 0.01) == "spectral_barrier"
    assert choose_row(data, loss, rm.Trace(), np.full(3, 0.01)) == "primal_dual"
    for pen in (rm.L21(), rm.L21(l1_ratio=0.5), rm.MeanRegularized()):  # cone programs
        assert choose_row(data, loss, pen, 0.01) == "interior_point", pen
    # one alpha per task is not a cone program's: the primal-dual row takes it
    assert choose_row(data, loss, rm.MeanRegularized(), np.full(3, 0.01)) == "primal_dual"
    # the declarations, not names: a smoothed pinball loss is not piecewise linear
    assert rm.Quantile(TAU).piecewise_linear and not rm.Quantile(TAU).smoothed(0.1) \
        .piecewise_linear
    assert rm.L1().linear_program == "entrywise" and rm.L21().linear_program is None


@pytest.mark.parametrize("n, p, alpha", [(60, 5, 0.02), (300, 20, 0.01), (150, 8, 0.0)])
def test_one_task_equals_quantile_regressor_highs(n, p, alpha):
    from sklearn.linear_model import QuantileRegressor

    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, p)) + 0.5
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(3, n)
    ref = QuantileRegressor(quantile=TAU, alpha=alpha, solver="highs").fit(X, y)
    model = rm.MultiTaskRegressor("l1", alpha=alpha, loss=rm.Quantile(TAU), tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X, y)
    ones = [np.ones(n)]
    ours = _objective([X], [y], ones, model.coef_[None], [model.intercept_], [alpha])
    theirs = _objective([X], [y], ones, ref.coef_[None], [ref.intercept_], [alpha])
    assert abs(ours - theirs) <= 1e-8 * theirs
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-8)
    assert abs(model.intercept_ - ref.intercept_) <= 1e-8
    if alpha > 0:
        assert abs(ours - _cvx_minimum([X], [y], ones, [alpha])) <= 1e-8 * ours
        assert model.dual_gap_ <= 1e-9 * model.objective_


def test_tasks_with_their_own_alpha_and_weights_equal_per_task_highs_and_cvxpy():
    from sklearn.linear_model import QuantileRegressor

    Xs, ys = _tasks()
    rng = np.random.default_rng(1)
    sws = [rng.uniform(0.2, 3.0, len(y)) for y in ys]
    alphas = np.array([0.01, 0.03, 0.002])
    model = rm.MultiTaskRegressor("l1", alpha=alphas, loss=rm.Quantile(TAU), tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(Xs, ys, sample_weight=sws)
    ours = _objective(Xs, ys, sws, model.coef_, model.intercept_, alphas)
    for t in range(3):
        ref = QuantileRegressor(quantile=TAU, alpha=alphas[t], solver="highs").fit(
            Xs[t], ys[t], sample_weight=sws[t])
        np.testing.assert_allclose(model.coef_[t], ref.coef_, atol=1e-8)
        assert abs(model.intercept_[t] - ref.intercept_) <= 1e-8
    best = _cvx_minimum(Xs, ys, sws, alphas)
    assert abs(ours - best) <= 1e-8 * best
    assert model.dual_gap_ <= 1e-9 * model.objective_


@pytest.mark.parametrize("penalty, kw", [("l1inf", {}), ("l1", {"positive": True})])
def test_other_linear_programs_equal_cvxpy(penalty, kw):
    Xs, ys = _tasks(seed=3)
    sws = [np.ones(len(y)) for y in ys]
    alpha = 0.02
    pen = rm.LInf1() if penalty == "l1inf" else rm.L1(**kw)
    model = rm.MultiTaskRegressor(pen, alpha=alpha, loss=rm.Quantile(TAU), tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(Xs, ys)
    if kw.get("positive"):
        assert np.all(model.coef_ >= 0)
    ours = _objective(Xs, ys, sws, model.coef_, model.intercept_, [alpha] * 3, penalty)
    best = _cvx_minimum(Xs, ys, sws, [alpha] * 3, penalty, kw.get("positive", False))
    assert abs(ours - best) <= 1e-8 * best
    assert model.dual_gap_ <= 1e-9 * model.objective_


def _cvx_free(Xs, ys, alpha, factor, penalty, positive=False):
    """The minimum with the penalty weighted by ``factor`` per feature (0: unpenalized, and
    not sign-constrained)."""
    import cvxpy as cp

    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    d = np.asarray(factor, dtype=float)
    terms = [cp.sum(cp.maximum(TAU * r, (TAU - 1) * r)) / len(y) for r, y in
             ((y - X @ W[:, t] - b[t], y) for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))]
    if penalty == "l1":
        terms.append(alpha * cp.sum(cp.multiply(d[:, None], cp.abs(W))))
    else:
        terms.append(alpha * cp.sum(cp.multiply(d, cp.max(cp.abs(W), axis=1))))
    cons = [W[d > 0] >= 0] if positive else []
    prob = cp.Problem(cp.Minimize(cp.sum(terms)), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return prob.value


@pytest.mark.parametrize("penalty, positive", [("l1", False), ("l1", True), ("l1inf", False)])
def test_free_columns_stay_in_the_linear_program(penalty, positive):
    """Unpenalized columns (penalty factor 0) enter the program as equalities of its dual
    (the lasso) or rows without cost (L1,inf): the fit is HiGHS's, certified to rounding by
    the KKT residual and equal to cvxpy's minimum. (They used to leave the program for the
    primal-dual iterations: 8 schools of School, L1, q = 0.3, 8 s and a KKT residual of
    1.4e-2 at max_iter.)"""
    Xs, ys = _tasks(seed=5)
    factor = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]  # (feature 1's effect is -0.8: free, it stays so)
    pen = rm.LInf1() if penalty == "l1inf" else rm.L1(positive=positive)
    alpha = 0.03
    model = rm.MultiTaskRegressor(pen, alpha=alpha, loss=rm.Quantile(TAU), tol=1e-10,
                                  penalty_factor=factor, rescale_factors=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(Xs, ys)
    assert model.kkt_residual_ <= 1e-12
    assert model.n_iter_ < 100  # (HiGHS's simplex iterations: the program's, not PDHG's)
    if positive:
        assert np.all(model.coef_[:, [0, 2, 4, 5]] >= 0) and np.all(model.coef_[:, 1] < 0)
    best = _cvx_free(Xs, ys, alpha, factor, penalty, positive)
    assert abs(model.objective_ - best) <= 1e-8 * best


def test_alpha_max_with_free_columns_on_school_is_exact():
    """School's scores are integers: many rows tie on the kink. With features 0 and 5
    unpenalized, every penalized coefficient is 0 at 1.001 alpha_max and one is not at 0.99
    alpha_max, both fits certified (the program's exact vertex)."""
    from regmtl.datasets import load_school

    data = load_school()
    Xs, ys = data["X"][:8], data["y"][:8]
    factor = np.ones(Xs[0].shape[1])
    factor[[0, 5]] = 0.0
    q = rm.Quantile(0.3)
    a_max = rm.alpha_max(Xs, ys, penalty="l1", loss=q, penalty_factor=factor)
    for frac, zero in ((1.001, True), (0.99, False)):
        model = rm.MultiTaskRegressor("l1", alpha=frac * a_max, loss=q, tol=1e-8,
                                      penalty_factor=factor).fit(Xs, ys)
        assert model.kkt_residual_ <= 1e-12
        penalized = np.delete(model.coef_, [0, 5], axis=1)
        assert bool(np.all(penalized == 0.0)) == zero, (frac, np.abs(penalized).max())


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_certificate_is_the_duality_gap_at_the_programs_multipliers(fit_intercept):
    """The reported gap is P(W, b) - D(theta) with theta = the programs' multipliers / c:
    recomputed here from the formulas (theta in [tau - 1, tau], centered per task, X^T c theta
    in the dual ball), and <= 1e-9 of the objective at W = 0."""
    Xs, ys = _tasks(seed=5)
    data = rm.as_task_data(Xs, ys)
    loss = rm.Quantile(TAU)
    alpha = 0.01
    res = solve(data, loss, rm.L1(), alpha, tol=1e-10, fit_intercept=fit_intercept)
    cert = res.certificate
    assert cert.kind == "duality_gap" and res.converged
    ref = reference(data, loss, fit_intercept)
    assert cert.relative <= 1e-9
    theta, c = res.theta, data.c
    assert np.all(theta >= TAU - 1 - 1e-12) and np.all(theta <= TAU + 1e-12)
    if fit_intercept:
        assert np.all(np.abs(data.task_sums(c * theta)) <= 1e-10)
    G = data.adjoint(c * theta)
    assert np.abs(G).max() <= alpha * (1 + 1e-9)
    f = data.linear(res.W, res.b)
    primal = loss.value(data.y, f, c) + alpha * np.abs(res.W).sum()
    dual = float(np.dot(c, theta * data.y))
    assert abs(cert.primal - primal) <= 1e-12 * ref.P0
    assert primal - dual <= 1e-9 * ref.P0
    assert abs((primal - dual) - cert.value) <= 1e-10 * ref.P0


def test_a_warm_path_from_the_dual_point_equals_cold_starts():
    """Quantile + L2,1: a path whose points start from the previous (W, theta) gives the
    solutions of cold starts at every alpha. (The objective is flat to second order along
    some moves of one task's row: the pinball loss is piecewise linear and a row norm curves
    as ``|d|^2 / ||W_j||``; so tol 1e-10 on the objective pins the coefficients to ~1e-5.)"""
    Xs, ys = _tasks(sizes=(30, 40, 50), p=5, seed=7)
    loss = rm.Quantile(TAU)
    tol = 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = rm.regularization_path(Xs, ys, penalty="l21", loss=loss, alphas=4, eps=0.05,
                                      tol=tol, max_iter=200000)
    assert np.all(path.converged)
    data = rm.as_task_data(Xs, ys)
    sws = [np.ones(len(y)) for y in ys]
    for k, alpha in enumerate(path.alphas):
        cold = rm.MultiTaskRegressor("l21", alpha=alpha, loss=loss, tol=tol, max_iter=200000)
        cold.fit(Xs, ys)
        pen = rm.L21()

        def objective(coef, intercept, alpha=alpha, pen=pen):
            data_term = sum(float(np.mean(_pinball(y - X @ w - b)))
                            for X, y, w, b in zip(Xs, ys, coef, intercept, strict=True))
            return data_term + pen.value(np.asarray(coef).T, alpha)

        warm_obj = objective(path.coefs[k], path.intercepts[k])
        cold_obj = objective(cold.coef_, cold.intercept_)
        assert abs(warm_obj - cold_obj) <= 1e-8 * cold_obj
        np.testing.assert_allclose(path.coefs[k], cold.coef_, atol=5e-5)
    assert data.n_tasks == 3 and len(sws) == 3


def test_the_primal_dual_row_keeps_its_dual_point_and_starts_from_it():
    Xs, ys = _tasks(seed=9)
    data = rm.as_task_data(Xs, ys)
    loss = rm.Quantile(TAU)
    first = solve(data, loss, rm.L21(), 0.05, tol=1e-8)
    assert first.theta is not None and first.theta.shape == data.y.shape
    cold = solve(data, loss, rm.L21(), 0.045, tol=1e-8)
    warm = solve(data, loss, rm.L21(), 0.045, tol=1e-8, W0=first.W, b0=first.b,
                 theta0=first.theta)
    assert warm.converged and cold.converged
    assert warm.n_iter < cold.n_iter


@pytest.mark.parametrize("penalty", ["l1", "l1inf"])
def test_input_forms_give_the_same_program(penalty):
    """Dense, sparse, and a shared design with missing labels (rows of weight 0 left out of
    the programs): the same fit, certified."""
    import scipy.sparse as sp

    rng = np.random.default_rng(11)
    X = rng.standard_normal((80, 6))
    X[rng.random(X.shape) < 0.5] = 0.0
    Y = X[:, :2] @ np.ones((2, 3)) + rng.standard_t(3, (80, 3))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    fits = [rm.MultiTaskRegressor(penalty, alpha=0.02, loss=rm.Quantile(TAU), tol=1e-10)
            .fit(design, Y) for design in (X, sp.csr_matrix(X))]
    np.testing.assert_allclose(fits[0].objective_, fits[1].objective_, rtol=1e-10)
    for fit in fits:
        assert fit.dual_gap_ <= 1e-9 * fit.objective_
