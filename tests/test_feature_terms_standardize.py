"""``standardize="task"`` (:mod:`regmtl.feature_terms`): each task's columns in units of that
task's own standard deviation, against the same problem written independently: the plain fit
on each task's columns standardized by hand (then mapped back), per-task glum and
scikit-learn lasso fits, cvxpy's minimum of the objective with the units as factors, and the
dual norm of alpha_max in numpy.

The objective is ``sum_t sum_i c_ti loss_ti + alpha Omega(V)``, ``v_jt = d_j s_jt w_jt``, with
``s_jt`` the deviation of column j over task t's rows weighted by ``c`` (about the task's
weighted mean with intercepts, about 0 without). Tolerances: 1e-8 on coefficients against the
same problem fitted another way (tol 1e-12), 1e-7 against glum and scikit-learn (their own
stopping rules), 1e-6 relative on objectives against cvxpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _feature_cases import cvx_minimum, make_tasks, matrix_of, np_objective, penalty_object
from sklearn.utils.estimator_checks import parametrize_with_checks

import regmtl as rm
from regmtl.feature_terms import column_deviations, task_deviations

REL = 1e-6


def _units(Xs, weights=None, intercept=True):
    """Each task's weighted mean and deviation of each column, (p, T), in numpy."""
    ms, ss = [], []
    for t, X in enumerate(Xs):
        w = np.ones(len(X)) if weights is None else weights[t]
        m = np.average(X, axis=0, weights=w) if intercept else np.zeros(X.shape[1])
        ms.append(m)
        ss.append(np.sqrt(np.average((X - m) ** 2, axis=0, weights=w)))
    return np.array(ms).T, np.array(ss).T


def _by_hand(Xs, M, S, flat=None):
    """Each task's columns centred and divided by its own deviation; a column constant in a
    task (``flat``) is 0 there, its unit 1."""
    Zs = []
    for t, X in enumerate(Xs):
        Z = (X - M[:, t]) / np.where(flat[:, t], 1.0, S[:, t]) if flat is not None else \
            (X - M[:, t]) / S[:, t]
        if flat is not None:
            Z[:, flat[:, t]] = 0.0
        Zs.append(Z)
    return Zs


def _mapped_back(fit, M, S, flat=None):
    """``(W, b)`` of a fit on :func:`_by_hand`'s columns, in the input's units."""
    V, b = matrix_of(fit)
    units = S if flat is None else np.where(flat, 1.0, S)
    W = V / units
    return W, b - np.einsum("jt,jt->t", M, W)


def _level_tasks(levels=(0.0, 10.0), n=(80, 120), seed=0):
    """A column of deviation 1 (exactly, population) inside each task, at the task's level;
    three more columns of other scales; targets from the within-task variation."""
    rng = np.random.default_rng(seed)
    Xs, ys = [], []
    for level, k in zip(levels, n, strict=True):
        x = rng.standard_normal(k)
        x = (x - x.mean()) / x.std() + level
        X = np.column_stack([x, rng.standard_normal((k, 3)) * [0.5, 2.0, 4.0] + level / 3])
        Xs.append(X)
        ys.append(0.4 * (x - level) + 0.3 * X[:, 2] + 0.5 * rng.standard_normal(k))
    return Xs, ys


# =========================================================================== 1. the units
def test_pooled_unit_measures_the_gap_between_tasks_the_task_units_do_not():
    """Deviation 1 inside each task, task means 10 apart: the pooled unit is sqrt(1 + 5^2)
    = 5.10 (equal task weights), each task's unit is 1; with the lasso the pooled fit's
    coefficients are about half of those in each task's own units."""
    Xs, ys = _level_tasks()
    data = rm.as_task_data(Xs, ys)
    assert column_deviations(data, True)[0] == pytest.approx(np.sqrt(26.0), rel=1e-12)
    S, M = task_deviations(data, True)
    np.testing.assert_allclose(S[0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(M[0], [0.0, 10.0], atol=1e-12)
    pooled = rm.MultiTaskRegressor("l1", alpha=0.05, tol=1e-12, standardize=True).fit(Xs, ys)
    own = rm.MultiTaskRegressor("l1", alpha=0.05, tol=1e-12, standardize="task").fit(Xs, ys)
    ratio = pooled.coef_[:, 0] / own.coef_[:, 0]
    assert np.all((ratio > 0.4) & (ratio < 0.6)), ratio
    assert np.all(own.coef_[:, 0] > 0.35)


@pytest.mark.parametrize("sparse", [False, True])
def test_task_deviations_against_numpy(sparse):
    """Weighted by the objective's row weights (sample weights within a task), about the
    task's weighted mean with intercepts and about 0 without; dense and sparse alike, 1e-12."""
    Xs, ys = make_tasks("squared")
    rng = np.random.default_rng(4)
    sw = [rng.uniform(0.2, 2.0, len(y)) for y in ys]
    Xs = [np.where(rng.random(X.shape) < 0.4, 0.0, X * [1, 3, 0.1, 10, 1, 1] + 5) for X in Xs]
    given = [sp.csr_matrix(X) for X in Xs] if sparse else Xs
    data = rm.as_task_data(given, ys, sample_weight=sw)
    for intercept in (True, False):
        S, M = task_deviations(data, intercept)
        M_np, S_np = _units(Xs, sw, intercept)
        np.testing.assert_allclose(M, M_np, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(S, S_np, rtol=1e-12)


# =========================================================================== 2. by hand
@pytest.mark.parametrize("name", ["l1", "l2", "elasticnet", "l21", "trace", "mean"])
def test_task_units_are_the_fit_on_each_task_standardized_by_hand(name):
    """The tasks at levels 0, 10 and -4: ``standardize="task"`` is the plain fit on each task's
    columns centred and divided by its own deviation, the coefficients divided back and the
    intercepts moved, to 1e-8; the objective the same number."""
    Xs, ys = _level_tasks((0.0, 10.0, -4.0), (60, 90, 75), seed=1)
    M, S = _units(Xs)
    pen = penalty_object(name)
    ours = rm.MultiTaskRegressor(pen, alpha=0.05, tol=1e-12, standardize="task").fit(Xs, ys)
    hand = rm.MultiTaskRegressor(pen, alpha=0.05, tol=1e-12).fit(_by_hand(Xs, M, S), ys)
    W, b = _mapped_back(hand, M, S)
    assert np.count_nonzero(np.abs(W) > 1e-6) >= 3
    np.testing.assert_allclose(ours.coef_.T, W, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, b, rtol=0, atol=1e-8)
    assert ours.objective_ == pytest.approx(hand.objective_, rel=1e-10)


@pytest.mark.parametrize("name", ["l21", "trace", "mean"])
def test_coupled_penalties_act_on_the_task_units_against_cvxpy(name):
    """For the penalties that couple the tasks the meaning is ``Omega(V)``, ``v_jt = s_jt
    w_jt``: cvxpy's minimum of that objective on the raw columns (the units as a p x T factor
    of the penalty) is our objective to 1e-6, and numpy's objective at our fit is the
    objective we report, to 1e-10."""
    pytest.importorskip("cvxpy")
    Xs, ys = _level_tasks((0.0, 10.0, -4.0), (60, 90, 75), seed=2)
    _, S = _units(Xs)
    pen = penalty_object(name)
    ours = rm.MultiTaskRegressor(pen, alpha=0.05, tol=1e-12, standardize="task").fit(Xs, ys)
    W, b = matrix_of(ours)
    mine = np_objective("squared", name, Xs, ys, W, b, S, 0.05)
    assert ours.objective_ == pytest.approx(mine, rel=1e-10)
    ref, _, _ = cvx_minimum("squared", name, Xs, ys, S, 0.05)
    assert abs(ours.objective_ - ref) <= REL * abs(ref)
    assert ours.objective_ >= ref - REL * abs(ref)


def test_l21_by_hand_with_weights_sparse_and_certified():
    """L2,1, tasks of 25 to 45 rows with sample weights and features at different levels per
    task: the fit equals the plain fit on the tasks standardized by hand (weighted), mapped
    back, to 1e-8, dense and sparse; its duality gap certifies it (<= 1e-10 of the
    objective)."""
    Xs, ys = make_tasks("squared")
    rng = np.random.default_rng(5)
    Xs = [X * [1, 3, 0.1, 10, 1, 1] + 4.0 * t for t, X in enumerate(Xs)]
    sw = [rng.uniform(0.2, 2.0, len(y)) for y in ys]
    M, S = _units(Xs, sw)
    kw = dict(alpha=0.4, tol=1e-12)
    hand = rm.MultiTaskRegressor("l21", **kw).fit(_by_hand(Xs, M, S), ys, sample_weight=sw)
    W, b = _mapped_back(hand, M, S)
    assert 0 < np.count_nonzero(np.all(W == 0, axis=1)) < W.shape[0]
    for given in (Xs, [sp.csc_matrix(X) for X in Xs]):
        ours = rm.MultiTaskRegressor("l21", standardize="task", **kw).fit(
            given, ys, sample_weight=sw)
        np.testing.assert_allclose(ours.coef_.T, W, rtol=0, atol=1e-8)
        np.testing.assert_allclose(ours.intercept_, b, rtol=0, atol=1e-8)
        assert 0.0 <= ours.dual_gap_ <= 1e-10 * ours.objective_


def test_without_intercepts_the_deviation_is_about_zero():
    """``fit_intercept=False``: each task's unit is its root mean square (about 0), as the
    plain fit on ``X_t / s_t`` without intercepts, to 1e-8."""
    Xs, ys = _level_tasks((1.0, 5.0), (70, 50), seed=3)
    M, S = _units(Xs, intercept=False)
    ours = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12, fit_intercept=False,
                                 standardize="task").fit(Xs, ys)
    hand = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12, fit_intercept=False).fit(
        _by_hand(Xs, M, S), ys)
    np.testing.assert_allclose(ours.coef_.T, matrix_of(hand)[0] / S, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(ours.intercept_, 0.0)


def test_logistic_by_hand():
    """A classifier: each task's columns in its own units, as the plain logistic L2,1 fit on
    them standardized by hand, to 1e-8."""
    Xs, ys = make_tasks("logistic")
    Xs = [X * [1, 3, 0.1, 10, 1, 1] + 3.0 * t for t, X in enumerate(Xs)]
    M, S = _units(Xs)
    ours = rm.MultiTaskClassifier("l21", alpha=0.02, tol=1e-12, standardize="task").fit(Xs, ys)
    hand = rm.MultiTaskClassifier("l21", alpha=0.02, tol=1e-12).fit(_by_hand(Xs, M, S), ys)
    W, b = _mapped_back(hand, M, S)
    np.testing.assert_allclose(ours.coef_.T, W, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, b, rtol=0, atol=1e-8)


# =========================================================================== 3. peers
def test_lasso_against_glum_per_task_and_sklearn_on_hand_standardized_columns():
    """The lasso separates over tasks: task t's fit is glum's on task t alone with
    ``P1 = s_t`` (its objective ``deviance / (2 sum w) + alpha ||P1 w||_1`` is ours for the
    squared loss), and scikit-learn's ``Lasso`` (``||y - Zv||^2 / (2 n) + alpha ||v||_1``,
    sample weights normalized alike) on the task's columns standardized by hand, ``w = v /
    s_t``; both with sample weights, to 1e-7."""
    glum = pytest.importorskip("glum")
    from sklearn.linear_model import Lasso

    Xs, ys = make_tasks("squared", sizes=(60, 80, 70), seed=6)
    rng = np.random.default_rng(6)
    Xs = [X * [1, 3, 0.1, 10, 1, 1] + [0, 5 * t, 0, -2 * t, 1, 0] for t, X in enumerate(Xs)]
    sw = [rng.uniform(0.2, 2.0, len(y)) for y in ys]
    M, S = _units(Xs, sw)
    alpha = 0.05
    ours = rm.MultiTaskRegressor("l1", alpha=alpha, tol=1e-13, standardize="task").fit(
        Xs, ys, sample_weight=sw)
    assert np.any(ours.coef_ == 0.0) and np.count_nonzero(ours.coef_) >= 6
    for t, (X, y, w) in enumerate(zip(Xs, ys, sw, strict=True)):
        g = glum.GeneralizedLinearRegressor(alpha=alpha, l1_ratio=1.0, P1=S[:, t],
                                            family="normal", gradient_tol=1e-13,
                                            max_iter=1000).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(ours.coef_[t], g.coef_, rtol=0, atol=1e-7)
        assert ours.intercept_[t] == pytest.approx(g.intercept_, abs=1e-7)
        sk = Lasso(alpha=alpha, tol=1e-14, max_iter=100000).fit(
            (X - M[:, t]) / S[:, t], y, sample_weight=w)
        np.testing.assert_allclose(ours.coef_[t], sk.coef_ / S[:, t], rtol=0, atol=1e-7)


# =========================================================================== 4. flat columns
def _flat_tasks(seed=7):
    """Column 2 constant (3.0) in task 1 only, column 3 constant in every task (at a level
    per task), column 4 zero in task 2: the rest varies."""
    rng = np.random.default_rng(seed)
    Xs, ys = [], []
    for t in range(3):
        X = rng.standard_normal((50, 5)) * [1, 2, 1, 1, 0.5] + t
        if t == 1:
            X[:, 2] = 3.0
        if t == 2:
            X[:, 4] = 0.0
        X[:, 3] = 5.0 + t
        Xs.append(X)
        ys.append(X[:, 0] - X[:, 2] + 0.5 * X[:, 4] + rng.standard_normal(50))
    return Xs, ys


@pytest.mark.parametrize("name", ["l1", "l21", "trace", "mean"])
def test_a_column_constant_within_a_task(name):
    """A column constant in one task keeps the unit 1 there, its values there 0 and its
    constant in the task's intercept: the fit equals the plain fit on the tasks standardized
    by hand with that column 0 in that task, mapped back, to 1e-8; a column constant in every
    task is left out (its row 0), as ``standardize=True`` leaves out a constant column. Under
    the penalties of entries and rows the constant column's coefficient is exactly 0 in its
    task; predictions on the raw columns are the hand fit's, to 1e-8."""
    Xs, ys = _flat_tasks()
    M, S = _units(Xs)
    flat = S <= 1e-12 * np.maximum(np.abs(M), 1.0)
    assert flat[2, 1] and flat[3].all() and flat[4, 2] and flat.sum() == 5
    pen = penalty_object(name)
    ours = rm.MultiTaskRegressor(pen, alpha=0.03, tol=1e-12, standardize="task").fit(Xs, ys)
    hand = rm.MultiTaskRegressor(pen, alpha=0.03, tol=1e-12).fit(
        _by_hand(Xs, M, S, flat), ys)
    W, b = _mapped_back(hand, M, S, flat)
    W[3] = 0.0  # (constant in every task: left out)
    b = b + M[3] * matrix_of(hand)[0][3]
    np.testing.assert_allclose(ours.coef_.T, W, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, b, rtol=0, atol=1e-8)
    assert np.all(ours.coef_[:, 3] == 0.0)
    if name in ("l1", "l21"):
        assert ours.coef_[1, 2] == 0.0 and ours.coef_[2, 4] == 0.0
        assert ours.coef_[0, 2] != 0.0 and ours.coef_[1, 4] != 0.0
    for t, X in enumerate(Xs):
        pred = _by_hand([X], M[:, [t]], S[:, [t]], flat[:, [t]])[0] @ matrix_of(hand)[0][:, t] \
            + matrix_of(hand)[1][t]
        np.testing.assert_allclose(ours.predict(Xs)[t], pred, rtol=0, atol=1e-8)


def test_constant_everywhere_is_the_pooled_exclusion():
    """A column constant within each task (a school-level covariate) is constant in every
    task: left out, as the fit that excludes it by name, to 1e-10."""
    Xs, ys = _flat_tasks()
    ours = rm.MultiTaskRegressor("l21", alpha=0.03, tol=1e-12, standardize="task").fit(Xs, ys)
    named = rm.MultiTaskRegressor("l21", alpha=0.03, tol=1e-12, standardize="task",
                                  exclude=[3]).fit(Xs, ys)
    np.testing.assert_allclose(ours.coef_, named.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, named.intercept_, rtol=0, atol=1e-10)


def test_pooled_flat_column_far_from_zero_is_left_out():
    """``standardize=True``: a constant column at 7 has deviation 0 to rounding (two passes),
    so it is left out with intercepts, not given a unit of 1e-7."""
    Xs, ys = _flat_tasks()
    Xs = [np.column_stack([X, np.full(len(X), 7.0)]) for X in Xs]
    sd = column_deviations(rm.as_task_data(Xs, ys), True)
    assert sd[5] <= 1e-12 * sd.max()
    with_it = rm.MultiTaskRegressor("l21", alpha=0.03, tol=1e-12, standardize=True).fit(Xs, ys)
    without = rm.MultiTaskRegressor("l21", alpha=0.03, tol=1e-12, standardize=True).fit(
        [X[:, :5] for X in Xs], ys)
    np.testing.assert_array_equal(with_it.coef_[:, 5], 0.0)
    np.testing.assert_allclose(with_it.coef_[:, :5], without.coef_, rtol=0, atol=1e-10)



def test_a_constant_column_of_a_sparse_design_has_deviation_zero():
    """A sparse column that stores every row of a task and is constant there has the
    deviation 0 to rounding (<= 1e-12 of its level), per task and pooled, as a dense one:
    the weight of the task's unstored zeros is none, not the rounding of a difference (which
    gave the constant 3.0 of task 1 the unit 2e-8, a column 1e8 times too large). Under a
    ridge weighted per feature (glmnet's convention), whose solver moves the intercepts and
    the coefficients together, the sparse fit is the dense one, its constant entry 0."""
    Xs, ys = _flat_tasks()
    rng = np.random.default_rng(2)
    sw = [rng.uniform(0.2, 2.0, len(y)) for y in ys]
    data = rm.as_task_data([sp.csr_matrix(X) for X in Xs], ys, sample_weight=sw)
    S, M = task_deviations(data, True)
    assert S[2, 1] <= 1e-12 * 3.0 and np.all(S[3] <= 1e-12 * 7.0)
    pooled = rm.as_task_data(sp.csr_matrix(np.full((40, 1), 7.0)), np.arange(40.0))
    assert column_deviations(pooled, True)[0] <= 1e-12 * 7.0
    kw = dict(alpha=0.03, tol=1e-12, standardize="task", penalty_factor=[1, 2, 0.5, 1, 1],
              factor_convention="glmnet")
    dense = rm.MultiTaskRegressor(rm.ElasticNet(0.5), **kw).fit(Xs, ys, sample_weight=sw)
    sparse = rm.MultiTaskRegressor(rm.ElasticNet(0.5), **kw).fit(
        [sp.csr_matrix(X) for X in Xs], ys, sample_weight=sw)
    assert dense.coef_[1, 2] == 0.0 and abs(sparse.coef_[1, 2]) <= 1e-12
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=0, atol=1e-7)

# =========================================================================== 5. School
def _school():
    try:
        return rm.datasets.load_school()
    except (rm.datasets.DataFileError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"School data not available: {exc}")


def test_school_l21_against_the_schools_standardized_by_hand():
    """139 schools, L2,1: each school's columns in its own units (the dummies absent from a
    school are constant there, the school-level columns constant in every school) is the plain
    fit on each school's columns standardized by hand, mapped back: predictions to 1e-8, the
    objective to 1e-12, both certified; coefficients to 1e-7 (measured 1.2e-8). The exam
    year 1985 is left out of both: the three year dummies sum to each school's intercept
    column, a direction along which the objective barely changes (with it the objectives
    and predictions still agree, the year coefficients only to 7e-4)."""
    data = _school()
    names = list(data.feature_names)
    cols = [j for j, n in enumerate(names) if n != "year_1985"]
    Xs, ys = [np.asarray(X, dtype=float)[:, cols] for X in data.X], data.y
    M, S = _units(Xs)
    flat = S <= 1e-12 * np.maximum(np.abs(M), S.max(axis=0))
    everywhere = flat.all(axis=1)
    assert everywhere.sum() >= 7 and (flat & ~everywhere[:, None]).sum() > 100
    kw = dict(alpha=0.5, tol=1e-12)
    ours = rm.MultiTaskRegressor("l21", standardize="task", **kw).fit(Xs, ys)
    keep = ~everywhere
    Zs = [Z[:, keep] for Z in _by_hand(Xs, M, S, flat)]
    hand = rm.MultiTaskRegressor("l21", **kw).fit(Zs, ys)
    W = np.zeros((len(keep), len(Xs)))
    W[keep], b = _mapped_back(hand, M[keep], S[keep], flat[keep])
    assert 0 < np.count_nonzero(np.any(W != 0, axis=1)) < keep.sum()
    for a, c in zip(ours.predict(Xs), hand.predict(Zs), strict=True):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-8)
    assert ours.objective_ == pytest.approx(hand.objective_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_.T, W, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, b, rtol=0, atol=1e-7)
    assert 0.0 <= ours.dual_gap_ <= 1e-10 * ours.objective_
    assert np.all(ours.coef_[:, everywhere] == 0.0)


# =========================================================================== 6. the API
def test_predict_score_persistence_and_params(tmp_path):
    """Predictions and scores are in the raw columns' units (those of the hand fit on the
    standardized ones, 1e-10); the model saves and loads with ``standardize="task"``, the same
    coefficients and predictions; ``set_params`` switches the units and ``clone`` keeps them."""
    from sklearn.base import clone

    Xs, ys = _level_tasks((0.0, 10.0, -4.0), (60, 90, 75), seed=8)
    M, S = _units(Xs)
    ours = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12, standardize="task").fit(Xs, ys)
    hand = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12).fit(_by_hand(Xs, M, S), ys)
    Zs = _by_hand(Xs, M, S)
    for a, b in zip(ours.predict(Xs), hand.predict(Zs), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert ours.score(Xs, ys) == pytest.approx(hand.score(Zs, ys), abs=1e-10)
    path = tmp_path / "m.npz"
    ours.save(path)
    back = rm.load(path)
    assert back.get_params()["standardize"] == "task"
    np.testing.assert_array_equal(back.coef_, ours.coef_)
    for a, b in zip(back.predict(Xs), ours.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    est = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12, standardize=True)
    assert clone(est.set_params(standardize="task")).get_params()["standardize"] == "task"
    np.testing.assert_allclose(clone(est).fit(Xs, ys).coef_, ours.coef_, rtol=0, atol=1e-12)
    from regmtl.report import feature_terms_text

    assert feature_terms_text(ours) == \
        "standardize: penalized in each task's own standard deviations"


@pytest.mark.parametrize("value", ["pooled", "Task", 1.5, None])
def test_other_values_are_refused_by_name(value):
    """Anything but False, True and "task": a ValueError naming ``standardize`` and its
    values, from the estimators (their parameter check) and from the functions."""
    Xs, ys = _level_tasks()
    with pytest.raises(ValueError, match="standardize"):
        rm.MultiTaskRegressor(standardize=value).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"standardize must be False, True .* or 'task'"):
        rm.alpha_max(Xs, ys, penalty="l21", standardize=value)


def test_shared_design_is_pooled_or_refused():
    """One design with a target matrix: every task weighs its rows alike, so each task's
    deviations are the pooled ones and ``"task"`` is ``True`` (the same fit, bit for bit); a
    label missing in one task only makes them differ: refused by name, with the fix."""
    rng = np.random.default_rng(9)
    X = rng.standard_normal((80, 5)) * [1, 2, 3, 4, 5] + 2.0
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + rng.standard_normal((80, 3))
    task = rm.MultiTaskRegressor("l21", alpha=0.05, standardize="task").fit(X, Y)
    pooled = rm.MultiTaskRegressor("l21", alpha=0.05, standardize=True).fit(X, Y)
    np.testing.assert_array_equal(task.coef_, pooled.coef_)
    Y[:4, 1] = np.nan
    with pytest.raises(ValueError, match="Give the tasks one design each"):
        rm.MultiTaskRegressor("l21", alpha=0.05, standardize="task").fit(X, Y)


# ==================================================================== 7. alpha_max, paths, CV
@pytest.mark.parametrize("name", ["l1", "l21"])
def test_alpha_max_is_the_dual_norm_in_the_task_units(name):
    """``alpha_max`` under ``"task"``: the dual norm of ``G_jt = Z_tj . (y_t - ybar_t) / n_t``
    on each task's standardized columns (numpy: the largest ``|G_jt|`` for the lasso, the
    largest row norm for L2,1), to 1e-12; at 1.001 alpha_max every coefficient is 0, at 0.99
    some is not; the path starts there."""
    Xs, ys = _level_tasks((0.0, 10.0, -4.0), (60, 90, 75), seed=10)
    M, S = _units(Xs)
    G = np.column_stack([Z.T @ (y - y.mean()) / len(y)
                         for Z, y in zip(_by_hand(Xs, M, S), ys, strict=True)])
    ref = np.abs(G).max() if name == "l1" else np.linalg.norm(G, axis=1).max()
    amax = rm.alpha_max(Xs, ys, penalty=name, standardize="task")
    assert amax == pytest.approx(ref, rel=1e-12)
    assert amax != pytest.approx(rm.alpha_max(Xs, ys, penalty=name, standardize=True),
                                 rel=1e-3)
    above = rm.MultiTaskRegressor(name, alpha=1.001 * amax, tol=1e-10,
                                  standardize="task").fit(Xs, ys)
    below = rm.MultiTaskRegressor(name, alpha=0.99 * amax, tol=1e-10,
                                  standardize="task").fit(Xs, ys)
    assert np.all(above.coef_ == 0.0)
    assert np.any(below.coef_ != 0.0)
    path = rm.regularization_path(Xs, ys, penalty=name, alphas=4, standardize="task",
                                  tol=1e-10)
    assert path.alphas[0] == pytest.approx(amax, rel=1e-12)
    assert np.all(path.coefs[0] == 0.0)
    last = rm.MultiTaskRegressor(name, alpha=path.alphas[-1], tol=1e-10,
                                 standardize="task").fit(Xs, ys)
    np.testing.assert_allclose(path.coefs[-1], last.coef_, rtol=0, atol=1e-6)


def test_cv_in_the_task_units():
    """``MultiTaskRegressorCV(standardize="task")``: its grid starts at the task units'
    alpha_max and its refit is ``MultiTaskRegressor(alpha=alpha_, standardize="task")`` on all
    rows, to 1e-6; it differs from the pooled CV's choice on these tasks."""
    Xs, ys = _level_tasks((0.0, 10.0, -4.0), (60, 90, 75), seed=11)
    cv = rm.MultiTaskRegressorCV("l21", alphas=8, cv=3, tol=1e-10,
                                 standardize="task").fit(Xs, ys)
    amax = rm.alpha_max(Xs, ys, penalty="l21", standardize="task")
    assert cv.alphas_[0] == pytest.approx(amax, rel=1e-10)
    refit = rm.MultiTaskRegressor("l21", alpha=cv.alpha_, tol=1e-10,
                                  standardize="task").fit(Xs, ys)
    np.testing.assert_allclose(cv.coef_, refit.coef_, rtol=0, atol=1e-6)
    pooled = rm.MultiTaskRegressorCV("l21", alphas=8, cv=3, tol=1e-10,
                                     standardize=True).fit(Xs, ys)
    assert pooled.alphas_[0] != pytest.approx(cv.alphas_[0], rel=1e-3)


@parametrize_with_checks([rm.MultiTaskRegressor(standardize="task"),
                          rm.MultiTaskClassifier(standardize="task")])
def test_sklearn_checks_with_task_units(estimator, check):
    """scikit-learn's estimator checks pass with ``standardize="task"`` (one task: its
    deviations are the pooled ones)."""
    check(estimator)
