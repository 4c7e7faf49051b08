"""glmnet's convention for penalty factors (``factor_convention="glmnet"``: the ridge part
weighed by d_j, not d_j^2) and a factor 0 in some tasks only, against independent
implementations.

glum minimizes, per task, ``deviance / (2 sum w) + alpha (r ||P1 w||_1 + (1 - r) / 2
w' diag(P2) w)``: half the unit deviance is our loss (normal: (y - f)^2 / 2; binomial on
{0, 1}: the log loss; Poisson: exp(f) - y f), its weights normalized as ours, so with one
alpha a penalty separable over tasks is T glum fits: ``P1 = d``, ``P2 = d`` is glmnet's
``penalty.factor`` (``factor_convention="glmnet"``), ``P2 = d^2`` the change of unit
(``"unit"``); ``scale_predictors=True`` is glmnet's ``standardize`` (the factors on the
standardized coefficients). cvxpy (Clarabel) gives the minimum of the row penalties and the
classes' groups. Tolerances: coefficients 1e-6 against glum (fitted to a gradient of 1e-13),
objectives 1e-7 relative against cvxpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _feature_cases import CLARABEL, N_CLASSES, P, column_blocks, cvx_loss, make_tasks, np_loss
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm

T = 3
#: factors of the penalized features, none of them 1 (not rescaled)
D = np.array([0.5, 1.3, 2.0, 1.5, 0.7, 0.9])
FAMILY = {"squared": "normal", "logistic": "binomial", "poisson": "poisson"}
ALPHA = {"squared": 0.05, "logistic": 0.02, "poisson": 0.03}


def _glum():
    return pytest.importorskip("glum")


def _cp():
    return pytest.importorskip("cvxpy")


def _fit(loss, penalty, Xs, ys, **kw):
    kw = dict(alpha=ALPHA[loss], tol=1e-13, rescale_factors=False, **kw)
    if loss == "logistic":
        return rm.MultiTaskClassifier(penalty, **kw).fit(Xs, ys)
    return rm.MultiTaskRegressor(penalty, loss=loss, **kw).fit(Xs, ys)


def _glum_task(loss, X, y, alpha, l1_ratio, P1, P2, w=None, **kw):
    """glum's coefficients and intercept of one task (``w`` its sample weights)."""
    glum = _glum()
    with warnings.catch_warnings():  # (its line search near the optimum: the numbers tell)
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = glum.GeneralizedLinearRegressor(
            alpha=alpha, l1_ratio=l1_ratio, P1=P1, P2=P2, family=FAMILY[loss],
            gradient_tol=1e-13, max_iter=2000, **kw).fit(X, y, sample_weight=w)
    return g.coef_, g.intercept_


def _gap_certified(est, tol=1e-10):
    """A duality gap (not a KKT residual), within tol of the objective (at least 1)."""
    assert hasattr(est, "dual_gap_") and not hasattr(est, "kkt_residual_")
    assert 0.0 <= est.dual_gap_ <= tol * max(1.0, abs(est.objective_))


# =========================================================================== glmnet vs glum
@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
@pytest.mark.parametrize("l1_ratio", [0.5, 0.0])
def test_elastic_net_against_glum_task_by_task(loss, l1_ratio):
    """Factors (p,), glmnet's convention: each task's coefficients are glum's with
    ``P1 = P2 = d`` to 1e-6, certified by a duality gap; the change of unit (glum's
    ``P2 = d^2``) is another fit, by more than 1e-3."""
    Xs, ys = make_tasks(loss)
    pen = rm.ElasticNet(l1_ratio) if l1_ratio > 0 else rm.L2()
    ours = _fit(loss, pen, Xs, ys, penalty_factor=D, factor_convention="glmnet")
    unit = _fit(loss, pen, Xs, ys, penalty_factor=D)
    _gap_certified(ours)
    for t in range(T):
        coef, b = _glum_task(loss, Xs[t], ys[t], ALPHA[loss], l1_ratio, D, D)
        np.testing.assert_allclose(ours.coef_[t], coef, rtol=0, atol=1e-6)
        assert ours.intercept_[t] == pytest.approx(b, abs=1e-6)
        coef2, _ = _glum_task(loss, Xs[t], ys[t], ALPHA[loss], l1_ratio, D, D ** 2)
        np.testing.assert_allclose(unit.coef_[t], coef2, rtol=0, atol=1e-6)
    assert np.abs(ours.coef_ - unit.coef_).max() > 1e-3


def test_standardize_sample_weights_and_rescaling_against_glum():
    """glmnet's ``standardize``: the factors on the coefficients of the columns divided by
    their weighted standard deviations, so the ridge sees ``d_j s_j^2``. One task: glum's
    own ``scale_predictors=True`` with ``P1 = P2 = d``. Three tasks (the deviations over the
    objective's rows: each task's weights normalized, the tasks equal): glum per task on the
    columns divided by those deviations by hand, its coefficients divided by them. Sample
    weights, columns of scales 0.2 to 5, the factors rescaled to sum to p (glmnet's rule, by
    hand for glum), a sparse design too: glum's coefficients to 1e-6."""
    glum = _glum()
    rng = np.random.default_rng(3)
    Xs, ys = make_tasks("squared", seed=3)
    Xs = [X * np.array([1.0, 3.0, 0.2, 1.0, 5.0, 0.5]) for X in Xs]
    ws = [rng.integers(1, 4, len(y)).astype(float) for y in ys]
    d = D * P / D.sum()
    kw = dict(penalty=rm.ElasticNet(0.3), alpha=0.05, tol=1e-12, penalty_factor=D,
              standardize=True, factor_convention="glmnet")
    one = rm.MultiTaskRegressor(**kw).fit(Xs[0], ys[0], sample_weight=ws[0])
    g = glum.GeneralizedLinearRegressor(
        alpha=0.05, l1_ratio=0.3, P1=d, P2=d, family="normal", scale_predictors=True,
        gradient_tol=1e-13, max_iter=2000).fit(Xs[0], ys[0], sample_weight=ws[0])
    np.testing.assert_allclose(one.coef_, g.coef_, rtol=0, atol=1e-6)
    ours = rm.MultiTaskRegressor(**kw).fit(Xs, ys, sample_weight=ws)
    sparse = rm.MultiTaskRegressor(**kw).fit([sp.csr_matrix(X) for X in Xs], ys,
                                             sample_weight=ws)
    _gap_certified(ours)
    c = np.concatenate([w / w.sum() for w in ws]) / T
    Xall = np.vstack(Xs)
    mean = c @ Xall
    s = np.sqrt(c @ (Xall - mean) ** 2)
    for t in range(T):
        coef, _ = _glum_task("squared", Xs[t] / s, ys[t], 0.05, 0.3, d, d, w=ws[t])
        np.testing.assert_allclose(ours.coef_[t], coef / s, rtol=0, atol=1e-6)
        np.testing.assert_allclose(sparse.coef_[t], coef / s, rtol=0, atol=1e-6)


def test_factors_per_task_unpenalized_and_bounded_features_against_glum():
    """(p, T) factors, a feature unpenalized (0 in every task) and a lower bound that binds:
    glum per task with that task's column of factors and ``lower_bounds``, to 1e-6."""
    Xs, ys = make_tasks("squared", seed=5)
    rng = np.random.default_rng(5)
    F = rng.uniform(0.4, 2.5, (P, T))
    F[0] = 0.0
    lo = np.array([-np.inf, -np.inf, -np.inf, -0.05, -np.inf, -np.inf])
    ours = rm.MultiTaskRegressor(rm.ElasticNet(0.5), alpha=0.05, tol=1e-12, penalty_factor=F,
                                 rescale_factors=False, factor_convention="glmnet",
                                 lower_bounds=lo).fit(Xs, ys)
    assert np.any(ours.coef_[:, 3] == -0.05)  # (the bound binds)
    for t in range(T):
        coef, _ = _glum_task("squared", Xs[t], ys[t], 0.05, 0.5, F[:, t], F[:, t],
                             lower_bounds=lo)
        np.testing.assert_allclose(ours.coef_[t], coef, rtol=0, atol=1e-6)


def test_school_elastic_net_against_glum():
    """The 139 schools, the elastic net with glmnet's factors (the exam years weighed 2, the
    VR bands 0.7), the columns collinear with the intercept within a school excluded (the
    school-level ones, the constant, one level of each dummy: there only the ridge curves a
    task's problem, which leaves its coefficients within ``sqrt(gap / ridge)``, about 1e-4
    at a float64 gap): every school's coefficients and intercept are glum's to 1e-6, the fit
    certified by its duality gap."""
    try:
        school = rm.datasets.load_school()
    except (rm.datasets.DataFileError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"School data not available: {exc}")
    Xs, ys, names = school.X, school.y, list(school.feature_names)
    drop = np.array([n.startswith(("pct_", "school_")) or n in (
        "bias", "male", "year_1987", "vr_band_3", "ethnic_other") for n in names])
    d = np.array([2.0 if n.startswith("year_") else 0.7 if n.startswith("vr_") else 1.0
                  for n in names])
    assert len(Xs) == 139 and drop.sum() == 13
    alpha = 0.2
    ours = rm.MultiTaskRegressor(rm.ElasticNet(0.5), alpha=alpha, tol=1e-12, penalty_factor=d,
                                 exclude=drop, rescale_factors=False,
                                 factor_convention="glmnet").fit(Xs, ys)
    _gap_certified(ours)
    assert np.all(ours.coef_[:, drop] == 0.0) and np.mean(ours.coef_[:, ~drop] == 0) > 0.3
    worst = 0.0
    for t in range(len(Xs)):
        coef, b = _glum_task("squared", Xs[t][:, ~drop], ys[t], alpha, 0.5, d[~drop],
                             d[~drop])
        worst = max(worst, float(np.abs(ours.coef_[t, ~drop] - coef).max()),
                    abs(float(ours.intercept_[t] - b)))
    assert worst <= 1e-6, worst


# =========================================================================== glmnet vs cvxpy
def _cvx_min(loss, Xs, ys, penalty_of, cols=None):
    cp = _cp()
    W, b = cp.Variable((P, cols or len(Xs))), cp.Variable(cols or len(Xs))
    prob = cp.Problem(cp.Minimize(cvx_loss(cp, loss, Xs, ys, W, b) + penalty_of(cp, W)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **CLARABEL)
    return float(prob.value)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_rows_with_a_ridge_against_cvxpy(loss):
    """L2,1 with a ridge part: ``alpha (rho sum_j d_j ||W_j|| + (1 - rho) / 2 sum_j d_j
    ||W_j||^2)``; cvxpy's minimum to 1e-7 relative, never beaten by more, certified by a
    duality gap (the rows' conjugate with their ridge weights)."""
    Xs, ys = make_tasks(loss)
    a, rho = ALPHA[loss], 0.6
    ours = _fit(loss, rm.L21(rho), Xs, ys, penalty_factor=D, factor_convention="glmnet")
    _gap_certified(ours)
    W, b = ours.coef_.T, ours.intercept_
    mine = np_loss(loss, Xs, ys, W, b) + a * (
        rho * D @ np.linalg.norm(W, axis=1) + 0.5 * (1 - rho) * D @ np.sum(W * W, axis=1))
    assert ours.objective_ == pytest.approx(mine, rel=1e-12)
    ref = _cvx_min(loss, Xs, ys, lambda cp, V: a * (
        rho * D @ cp.norm(V, 2, axis=1) + 0.5 * (1 - rho) * D @ cp.sum(cp.square(V), axis=1)))
    assert abs(mine - ref) <= 1e-7 * abs(ref) and mine >= ref - 1e-7 * abs(ref)


def test_elastic_net_on_the_classes_against_cvxpy():
    """The multinomial elastic net (a feature's classes grouped per task) with glmnet's
    factors: ``alpha (rho sum_tj d_j ||W_{j B_t}|| + (1 - rho) / 2 sum_j d_j ||W_j||^2)``,
    cvxpy's minimum to 1e-7 relative, certified by a duality gap (the groups' conjugate
    divided by each feature's weight)."""
    Xs, ys = make_tasks("multinomial")
    a, rho = 0.02, 0.5
    ours = rm.MultiTaskClassifier(rm.ElasticNet(rho), alpha=a, tol=1e-12, penalty_factor=D,
                                  rescale_factors=False, factor_convention="glmnet").fit(Xs, ys)
    _gap_certified(ours)
    W, b = ours.coef_.T, ours.intercept_
    blocks = column_blocks("multinomial", T)
    groups = np.column_stack([np.linalg.norm(W[:, c], axis=1) for c in blocks])
    mine = np_loss("multinomial", Xs, ys, W, b) + a * (
        rho * D @ groups.sum(axis=1) + 0.5 * (1 - rho) * D @ np.sum(W * W, axis=1))
    assert ours.objective_ == pytest.approx(mine, rel=1e-12)
    ref = _cvx_min("multinomial", Xs, ys, lambda cp, V: a * (
        rho * sum(D @ cp.norm(V[:, c], 2, axis=1) for c in blocks)
        + 0.5 * (1 - rho) * D @ cp.sum(cp.square(V), axis=1)), cols=N_CLASSES * T)
    assert abs(mine - ref) <= 1e-7 * abs(ref) and mine >= ref - 1e-7 * abs(ref)


# =========================================================================== where it is moot
@pytest.mark.parametrize("penalty", ["l1", "l21", "trace", "l1inf", "dirty", "mcp",
                                     rm.TemporalGroupLasso(0.0, 0.0)],
                         ids=lambda p: str(p))
def test_penalties_without_a_ridge_part_fit_the_same(penalty):
    """No ridge part: the two conventions are one fit, bit for bit."""
    Xs, ys = make_tasks("squared")
    fits = [rm.MultiTaskRegressor(penalty, alpha=0.05, tol=1e-8, penalty_factor=D,
                                  factor_convention=c).fit(Xs, ys) for c in ("unit", "glmnet")]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    np.testing.assert_array_equal(fits[0].intercept_, fits[1].intercept_)
    assert fits[1].certificate_relative_ <= 1e-8  # (the glmnet fit certified as it is)


@pytest.mark.parametrize("penalty", [rm.MeanRegularized(ridge=0.3), "clustered",
                                     rm.GraphLaplacian(rm.chain_graph(T)),
                                     rm.TemporalGroupLasso(1.0, 0.0)], ids=str)
def test_a_squared_term_in_the_feature_metric_refuses_glmnet_by_name(penalty):
    """A quadratic in the metric D has no glmnet counterpart: refused naming the parameter
    and the alternative; factors that are all 0 or 1 (weights all 1) coincide and fit."""
    Xs, ys = make_tasks("squared")
    with pytest.raises(ValueError, match=r"factor_convention='glmnet'.*use "
                                         r"factor_convention='unit'"):
        rm.MultiTaskRegressor(penalty, alpha=0.05, penalty_factor=D,
                              factor_convention="glmnet").fit(Xs, ys)
    ones = np.array([0.0, 1, 1, 1, 1, 1])
    fits = [rm.MultiTaskRegressor(penalty, alpha=0.05, tol=1e-8, penalty_factor=ones,
                                  rescale_factors=False, factor_convention=c).fit(Xs, ys)
            for c in ("unit", "glmnet")]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    assert fits[1].certificate_relative_ <= 1e-8


# =========================================================================== the parameter
def test_the_parameter_through_params_clone_cv_path_and_a_file(tmp_path):
    """``get_params`` / ``set_params`` / ``clone`` carry it; the CV estimator refits under
    it (the refit is the plain fit at ``alpha_``, 1e-8); ``regularization_path`` and
    ``alpha_max`` take it (a ridge has no gradient at 0: the same alpha_max); a saved
    model reads it back and predicts the same, bit for bit; ``transfer`` refuses it by
    name, a ridge having seen the factors otherwise than the norm."""
    from sklearn.base import clone

    Xs, ys = make_tasks("squared")
    est = rm.MultiTaskRegressor(rm.ElasticNet(0.5), alpha=0.05, penalty_factor=D, tol=1e-10)
    assert est.get_params()["factor_convention"] == "unit"
    glm = clone(est).set_params(factor_convention="glmnet")
    assert clone(glm).get_params()["factor_convention"] == "glmnet"
    a, b = est.fit(Xs, ys), glm.fit(Xs, ys)
    assert np.abs(a.coef_ - b.coef_).max() > 1e-3
    cv = rm.MultiTaskRegressorCV(rm.ElasticNet(0.5), alphas=6, cv=3, tol=1e-10,
                                 penalty_factor=D, factor_convention="glmnet").fit(Xs, ys)
    refit = clone(glm).set_params(alpha=cv.alpha_).fit(Xs, ys)
    np.testing.assert_allclose(cv.coef_, refit.coef_, rtol=0, atol=1e-8)
    path = rm.regularization_path(Xs, ys, penalty=rm.ElasticNet(0.5), alphas=[0.05],
                                  tol=1e-10, penalty_factor=D, factor_convention="glmnet")
    np.testing.assert_allclose(path.coefs[0], b.coef_, rtol=0, atol=1e-7)
    amax = [rm.alpha_max(Xs, ys, penalty=rm.ElasticNet(0.5), penalty_factor=D,
                         factor_convention=c) for c in ("unit", "glmnet")]
    assert amax[0] == amax[1]
    b.save(tmp_path / "m.npz")
    back = rm.load(tmp_path / "m.npz")
    assert back.get_params()["factor_convention"] == "glmnet"
    for mine, theirs in zip(back.predict(Xs), b.predict(Xs), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="factor_convention='glmnet' with a ridge part"):
        rm.transfer(b, Xs[0][:10], ys[0][:10])


@pytest.mark.parametrize("call", ["estimator", "path", "alpha_max"])
def test_an_unknown_convention_is_refused_naming_it(call):
    Xs, ys = make_tasks("squared")
    kw = dict(penalty_factor=D, factor_convention="glum")
    with pytest.raises(ValueError, match=r"factor_convention.*'glmnet'"):
        if call == "estimator":
            rm.MultiTaskRegressor("elasticnet", **kw).fit(Xs, ys)
        elif call == "path":
            rm.regularization_path(Xs, ys, penalty="elasticnet", alphas=3, **kw)
        else:
            rm.alpha_max(Xs, ys, penalty="elasticnet", **kw)


def test_the_input_forms_of_the_factors_agree():
    """A dict keyed by column name (the others 1), a list, and the same factors per task:
    one fit, 1e-10; one factor for all (rescaled to 1) is the fit without factors."""
    pd = pytest.importorskip("pandas")
    Xs, ys = make_tasks("squared")
    frame = pd.DataFrame(np.vstack(Xs), columns=[f"f{j}" for j in range(P)])
    task = np.repeat(np.arange(T), [len(y) for y in ys])
    y = np.concatenate(ys)
    kw = dict(alpha=0.05, tol=1e-12, factor_convention="glmnet")
    pen = rm.ElasticNet(0.5)
    by_name = rm.MultiTaskRegressor(pen, penalty_factor={"f0": 0.5, "f2": 2.0}, **kw).fit(
        frame, y, task=task)
    listed = rm.MultiTaskRegressor(pen, penalty_factor=[0.5, 1, 2, 1, 1, 1], **kw).fit(
        frame, y, task=task)
    wide = rm.MultiTaskRegressor(pen, penalty_factor=np.tile([[0.5], [1], [2], [1], [1], [1]],
                                                             T), **kw).fit(frame, y, task=task)
    np.testing.assert_allclose(by_name.coef_, listed.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(wide.coef_, listed.coef_, rtol=0, atol=1e-10)
    scalar = rm.MultiTaskRegressor(pen, penalty_factor=np.full(P, 3.0), **kw).fit(
        frame, y, task=task)
    plain = rm.MultiTaskRegressor(pen, alpha=0.05, tol=1e-12).fit(frame, y, task=task)
    np.testing.assert_allclose(scalar.coef_, plain.coef_, rtol=0, atol=1e-10)


# =========================================================================== 0 in some tasks
def _partly_free():
    """(p, T) factors: feature 1 unpenalized in task 0 only, feature 2 in tasks 1 and 2,
    the others weighed 0.6 to 2.2."""
    F = np.array([[1.0, 0.8, 1.4], [0.0, 1.2, 0.9], [1.1, 0.0, 0.0], [2.2, 1.0, 0.6],
                  [0.7, 1.5, 1.0], [1.3, 0.9, 2.0]])
    return F


@pytest.mark.parametrize("loss, sparse", [("squared", False), ("squared", True),
                                          ("logistic", False), ("poisson", False)])
@pytest.mark.parametrize("pen, convention", [("l1", "unit"), ("elasticnet", "unit"),
                                             ("elasticnet", "glmnet"), ("l2", "glmnet")])
def test_a_feature_unpenalized_in_some_tasks_is_glum_task_by_task(loss, sparse, pen,
                                                                  convention):
    """A separable penalty with factors per task is T independent problems: each task's
    coefficients are glum's with that task's factors (``P1 = d_t``; ``P2 = d_t^2`` or
    ``d_t``; a 0 leaves the entry unpenalized: exactly, never a small factor), to 1e-6.
    The squared loss on a dense design projects the free entries out per task and is
    certified by the duality gap; otherwise the KKT residual."""
    Xs, ys = make_tasks(loss, seed=7)
    F = _partly_free()
    penalty, l1_ratio = {"l1": ("l1", 1.0), "elasticnet": (rm.ElasticNet(0.5), 0.5),
                         "l2": ("l2", 0.0)}[pen]
    data = [sp.csr_matrix(X) for X in Xs] if sparse else Xs
    ours = _fit(loss, penalty, data, ys, penalty_factor=F, factor_convention=convention)
    if loss == "squared" and not sparse:
        _gap_certified(ours)
    else:
        assert 0.0 <= ours.kkt_residual_ <= 1e-9
    for t in range(T):
        d = F[:, t]
        coef, b = _glum_task(loss, Xs[t], ys[t], ALPHA[loss], l1_ratio, d,
                             d if convention == "glmnet" else d ** 2)
        np.testing.assert_allclose(ours.coef_[t], coef, rtol=0, atol=1e-6)
        assert ours.intercept_[t] == pytest.approx(b, abs=1e-6)


def test_a_feature_unpenalized_in_some_tasks_with_bounds_against_cvxpy():
    """Bounds beside entries unpenalized in some tasks (no projection: the entries free in
    the box's step): cvxpy's minimum to 1e-7 relative; the bound binds on a free entry."""
    _cp()
    from _feature_cases import cvx_minimum, np_objective

    Xs, ys = make_tasks("squared", seed=7)
    F = _partly_free()
    lo = np.array([-np.inf, 0.0, -np.inf, -np.inf, -np.inf, -np.inf])
    free = rm.MultiTaskRegressor("l1", alpha=0.05, tol=1e-12, penalty_factor=F,
                                 rescale_factors=False).fit(Xs, ys)
    ours = rm.MultiTaskRegressor("l1", alpha=0.05, tol=1e-12, penalty_factor=F,
                                 rescale_factors=False, lower_bounds=lo).fit(Xs, ys)
    assert free.coef_[0, 1] < -0.05 and ours.coef_[0, 1] == 0.0  # (the free entry bound)
    W, b = ours.coef_.T, ours.intercept_
    mine = np_objective("squared", "l1", Xs, ys, W, b, F, 0.05)
    ref, _, _ = cvx_minimum("squared", "l1", Xs, ys, F, 0.05, lower=lo)
    assert abs(mine - ref) <= 1e-7 * abs(ref) and mine >= ref - 1e-7 * abs(ref)


@pytest.mark.parametrize("loss", ["squared", "poisson"])
def test_alpha_max_with_a_feature_unpenalized_in_some_tasks(loss):
    """``alpha_max`` is the largest ``|G_jt|`` over the penalized entries with each task's
    free entries (and intercepts) fitted first: by hand per task (least squares, or glum's
    unpenalized Poisson fit) to 1e-8; at it the penalized entries are 0, just below not."""
    Xs, ys = make_tasks(loss, seed=7)
    F = _partly_free()
    am = rm.alpha_max(Xs, ys, penalty="l1", loss=loss, penalty_factor=F,
                      rescale_factors=False)
    G = []
    for t in range(T):
        free = F[:, t] == 0
        X, y = Xs[t], ys[t]
        A = np.column_stack([np.ones(len(y)), X[:, free]])
        if loss == "squared":
            beta = np.linalg.lstsq(A, y, rcond=None)[0]
            r = y - A @ beta
        else:
            ones = np.ones(int(free.sum()))
            coef, b = _glum_task(loss, X[:, free], y, 0.0, 0.0, ones, ones)
            r = y - np.exp(b + X[:, free] @ coef)
        G.append(np.abs(X[:, ~free].T @ r / len(y)) / F[~free, t])
    assert am == pytest.approx(max(g.max() for g in G), rel=1e-8)
    for scale, zero in ((1.0 + 1e-6, True), (0.99, False)):
        est = rm.MultiTaskRegressor("l1", loss=loss, alpha=am * scale, tol=1e-12,
                                    penalty_factor=F, rescale_factors=False).fit(Xs, ys)
        assert bool(np.all(est.coef_.T[F != 0] == 0.0)) == zero


@pytest.mark.parametrize("penalty", ["l21", "trace", rm.MeanRegularized()], ids=str)
def test_a_penalty_that_couples_the_tasks_refuses_a_zero_in_some_tasks(penalty):
    """Coupled tasks have no per-task term to drop: refused by name, saying why."""
    Xs, ys = make_tasks("squared")
    with pytest.raises(ValueError, match=r"penalty_factor of shape \(p, T\) needs a penalty "
                                         r"separable over tasks.*couples the tasks"):
        rm.MultiTaskRegressor(penalty, penalty_factor=_partly_free()).fit(Xs, ys)


def test_a_feature_unpenalized_in_some_tasks_round_trips_and_reports(tmp_path):
    """Saved and read back (predictions bit for bit); the report counts it."""
    from regmtl.report import feature_terms_text

    Xs, ys = make_tasks("squared", seed=7)
    est = rm.MultiTaskRegressor("l1", alpha=0.05, penalty_factor=_partly_free()).fit(Xs, ys)
    est.save(tmp_path / "m.npz")
    back = rm.load(tmp_path / "m.npz")
    for mine, theirs in zip(back.predict(Xs), est.predict(Xs), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert "2 features unpenalized in some tasks (factor 0)" in feature_terms_text(est)


# ====================================================================== standardize="task"
def _own_levels(loss, seed):
    """``make_tasks`` with each task's columns at their own scales (0.2 to 5) and levels
    (-10 to 10), so that the pooled deviations are far from each task's."""
    Xs, ys = make_tasks(loss, seed=seed)
    rng = np.random.default_rng(seed)
    return [X * rng.uniform(0.2, 5.0, P) + rng.uniform(-10.0, 10.0, P) for X in Xs], ys


def _own_deviations(X, w=None):
    """A task's weighted standard deviation of each column about its weighted mean, by hand."""
    c = np.full(len(X), 1.0 / len(X)) if w is None else w / w.sum()
    return np.sqrt(c @ (X - c @ X) ** 2)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("l1_ratio", [0.3, 0.0])
def test_standardize_task_with_the_glmnet_convention_against_glum(l1_ratio, sparse):
    """``standardize="task"`` with glmnet's convention: each task's columns in their own
    weighted deviations s_jt, the ridge ``d_j s_jt^2 w_jt^2``. Per task that is glmnet's
    ``standardize=TRUE`` on the task alone: glum on the task's columns divided by their
    deviations by hand (``P1 = P2 = d``, the factors rescaled to sum to p by hand), its
    coefficients divided by them, to 1e-6, intercepts too; glum's own
    ``scale_predictors=True`` on task 0's raw columns alike. A column constant in task 2
    (its deviation 0) has the coefficient 0 there, and glum fits that task without it.
    Sample weights, a sparse design too; the change of unit (``P2 = d^2``) is another fit,
    and so is the pooled ``standardize=True``."""
    glum = _glum()
    Xs, ys = _own_levels("squared", seed=11)
    Xs[2][:, 5] = 4.0
    rng = np.random.default_rng(11)
    ws = [rng.integers(1, 4, len(y)).astype(float) for y in ys]
    d = D * P / D.sum()
    pen = rm.ElasticNet(l1_ratio) if l1_ratio > 0 else rm.L2()
    data = [sp.csr_matrix(X) for X in Xs] if sparse else Xs
    # (tol 1e-14: the levels up to 10 leave a sparse design, which is not centred, badly
    # conditioned; at 1e-12 the pure ridge's coefficients are within sqrt(gap / curvature),
    # 4e-6 of the optimum)
    kw = dict(alpha=0.05, tol=1e-14, penalty_factor=D, standardize="task")
    ours = rm.MultiTaskRegressor(pen, factor_convention="glmnet", **kw).fit(
        data, ys, sample_weight=ws)
    unit = rm.MultiTaskRegressor(pen, **kw).fit(data, ys, sample_weight=ws)
    _gap_certified(ours)
    assert abs(ours.coef_[2, 5]) <= 1e-12
    worst = 0.0
    for t in range(T):
        s = _own_deviations(Xs[t], ws[t])
        keep = s > 1e-9
        assert keep.sum() == (P - 1 if t == 2 else P)
        coef, b = _glum_task("squared", Xs[t][:, keep] / s[keep], ys[t], 0.05, l1_ratio,
                             d[keep], d[keep], w=ws[t])
        worst = max(worst, float(np.abs(ours.coef_[t, keep] - coef / s[keep]).max()),
                    abs(float(ours.intercept_[t] - b)))
        coef2, _ = _glum_task("squared", Xs[t][:, keep] / s[keep], ys[t], 0.05, l1_ratio,
                              d[keep], d[keep] ** 2, w=ws[t])
        np.testing.assert_allclose(unit.coef_[t, keep], coef2 / s[keep], rtol=0, atol=1e-6)
    assert worst <= 1e-6, worst
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = glum.GeneralizedLinearRegressor(
            alpha=0.05, l1_ratio=l1_ratio, P1=d, P2=d, family="normal", scale_predictors=True,
            gradient_tol=1e-13, max_iter=2000).fit(Xs[0], ys[0], sample_weight=ws[0])
    np.testing.assert_allclose(ours.coef_[0], g.coef_, rtol=0, atol=1e-6)
    assert np.abs(ours.coef_ - unit.coef_).max() > 1e-3
    pooled = rm.MultiTaskRegressor(pen, factor_convention="glmnet", alpha=0.05, tol=1e-12,
                                   penalty_factor=D, standardize=True).fit(
        data, ys, sample_weight=ws)
    assert np.abs(ours.coef_ - pooled.coef_).max() > 1e-2  # (each task's units, not pooled)


@pytest.mark.parametrize("loss, sparse", [("squared", False), ("squared", True),
                                          ("logistic", False)])
@pytest.mark.parametrize("pen, convention", [("elasticnet", "glmnet"), ("l1", "unit")])
def test_a_feature_unpenalized_in_some_tasks_with_standardize_task_against_glum(
        loss, sparse, pen, convention):
    """Factors (p, T) with 0 in some tasks (features 1 and 2) and in all (feature 4), under
    ``standardize="task"``: T independent problems, each glum's on that task's columns
    divided by their own deviations (``P1 = d_t``, ``P2 = d_t`` or ``d_t^2``, 0 unpenalized)
    to 1e-6, intercepts too. Feature 2, free in task 1, is constant there, and feature 3,
    penalized in task 0, is constant there: both have the coefficient 0 in that task (glum
    fits the task without them). The squared loss on a dense design projects the free
    entries out and is certified by the duality gap, otherwise the KKT residual."""
    Xs, ys = _own_levels(loss, seed=13)
    Xs[1][:, 2] = -3.0
    Xs[0][:, 3] = 7.0
    F = _partly_free()
    F[4] = 0.0
    penalty, l1_ratio = {"l1": ("l1", 1.0), "elasticnet": (rm.ElasticNet(0.5), 0.5)}[pen]
    data = [sp.csr_matrix(X) for X in Xs] if sparse else Xs
    ours = _fit(loss, penalty, data, ys, penalty_factor=F, factor_convention=convention,
                standardize="task")
    if loss == "squared" and not sparse:
        _gap_certified(ours)
    else:
        assert 0.0 <= ours.kkt_residual_ <= 1e-9
    assert abs(ours.coef_[1, 2]) <= 1e-12 and abs(ours.coef_[0, 3]) <= 1e-12
    worst = 0.0
    for t in range(T):
        s = _own_deviations(Xs[t])
        keep = s > 1e-9
        f = F[keep, t]
        coef, b = _glum_task(loss, Xs[t][:, keep] / s[keep], ys[t], ALPHA[loss], l1_ratio, f,
                             f if convention == "glmnet" else f ** 2)
        worst = max(worst, float(np.abs(ours.coef_[t, keep] - coef / s[keep]).max()),
                    abs(float(ours.intercept_[t] - b)))
    assert worst <= 1e-6, worst


def test_rows_with_a_ridge_under_standardize_task_against_cvxpy():
    """L2,1 with a ridge part, glmnet's convention, ``standardize="task"``: ``alpha (rho
    sum_j d_j ||(s_jt w_jt)_t|| + (1 - rho) / 2 sum_jt d_j s_jt^2 w_jt^2)`` with each task's
    own deviations by hand; the fit's objective is that function at its point (1e-12),
    cvxpy's minimum to 1e-7 relative, never beaten by more; certified by a duality gap."""
    Xs, ys = _own_levels("squared", seed=17)
    a, rho = 0.05, 0.6
    S = np.column_stack([_own_deviations(X) for X in Xs])  # (p, T)
    ours = _fit("squared", rm.L21(rho), Xs, ys, penalty_factor=D, factor_convention="glmnet",
                standardize="task")
    _gap_certified(ours)
    W, b = ours.coef_.T, ours.intercept_
    V = S * W
    mine = np_loss("squared", Xs, ys, W, b) + a * (
        rho * D @ np.linalg.norm(V, axis=1) + 0.5 * (1 - rho) * D @ np.sum(V * V, axis=1))
    assert ours.objective_ == pytest.approx(mine, rel=1e-12)
    ref = _cvx_min("squared", Xs, ys, lambda cp, W_: a * (
        rho * D @ cp.norm(cp.multiply(S, W_), 2, axis=1)
        + 0.5 * (1 - rho) * D @ cp.sum(cp.square(cp.multiply(S, W_)), axis=1)))
    assert abs(mine - ref) <= 1e-7 * abs(ref) and mine >= ref - 1e-7 * abs(ref)
