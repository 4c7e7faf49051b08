"""One alpha per task (regmtl.task_alpha), its choice by CV and by ridge's efficient
leave-one-out (regmtl.selection.loo), and compare's per-task independent baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge, RidgeCV
from sklearn.preprocessing import StandardScaler

import regmtl as rm
from regmtl.selection.loo import ridge_loo_scores


def _tasks(seed=0, sizes=(30, 50, 40), p=8, noise=1.0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ws = [rng.standard_normal(p) * s for s in np.geomspace(0.1, 3.0, len(sizes))]
    ys = [X @ w + 0.5 + noise * rng.standard_normal(len(X)) for X, w in zip(Xs, ws, strict=True)]
    return Xs, ys


ALPHAS = np.array([0.01, 0.1, 0.05])


@pytest.mark.parametrize("pen,sk", [
    ("l1", lambda a, n: Lasso(alpha=a, tol=1e-13, max_iter=100_000)),
    ("l2", lambda a, n: Ridge(alpha=n * a)),
])
def test_one_alpha_per_task_is_one_sklearn_model_per_task(pen, sk):
    Xs, ys = _tasks()
    m = rm.MultiTaskRegressor(pen, alpha=ALPHAS, tol=1e-12).fit(Xs, ys)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        r = sk(ALPHAS[t], len(y)).fit(X, y)
        np.testing.assert_allclose(m.coef_[t], r.coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(m.intercept_[t], r.intercept_, rtol=0, atol=1e-8)
    assert m.dual_gap_ <= 1e-12 * m.objective_ * 10


@pytest.mark.parametrize("est,pen", [
    (rm.MultiTaskRegressor, rm.ElasticNet(0.5)),
    (rm.MultiTaskClassifier, "l1"),
    (rm.MultiTaskClassifier, "l2"),
])
@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_objective_and_gap_are_those_of_the_problem_asked(est, pen):
    """The sum of T one-task fits at their own alpha: same coefficients, same objective; the
    reported gap bounds the true suboptimality (>= 0, below tol)."""
    Xs, ys = _tasks(seed=1)
    if est is rm.MultiTaskClassifier:
        ys = [(y > np.median(y)).astype(int) for y in ys]
    alphas = ALPHAS * (0.1 if est is rm.MultiTaskClassifier else 1.0)
    m = est(pen, alpha=alphas, tol=1e-11).fit(Xs, ys)
    total = 0.0
    for t in range(len(Xs)):
        one = est(pen, alpha=alphas[t], tol=1e-12).fit(Xs[t], ys[t])
        # a relative gap of 1e-11 bounds ||dw|| by sqrt(2 gap / alpha): ~1e-4 at alpha 1e-3
        np.testing.assert_allclose(m.coef_[t], one.coef_, rtol=0, atol=1e-4)
        total += one.objective_
    np.testing.assert_allclose(m.objective_, total, rtol=1e-9)
    # tol is relative to the objective at W = 0 (here within 20x of the optimum's)
    assert 0.0 <= m.dual_gap_ <= 1e-11 * m.objective_ * 20


def test_equal_values_are_the_one_alpha_fit():
    Xs, ys = _tasks()
    a = rm.MultiTaskRegressor("l1", alpha=np.full(3, 0.05), tol=1e-10).fit(Xs, ys)
    b = rm.MultiTaskRegressor("l1", alpha=0.05, tol=1e-10).fit(Xs, ys)
    np.testing.assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("alpha,pen,msg", [
    (np.ones(2), "l1", r"shape \(2,\).*\(3,\)"),
    (np.array([0.1, -1.0, 0.1]), "l1", r"alpha\[1\]"),
    (np.array([0.1, np.nan, 0.1]), "l2", r"alpha\[1\]"),
    (np.array([0.1, 0.2, 0.1]), "l21", "separable over tasks"),
    (np.array([0.1, 0.2, 0.1]), "trace", "separable over tasks"),
    (np.array([0.1, 0.0, 0.1]), "l1", r"alpha\[1\] = 0"),
])
def test_bad_alpha_arrays_are_refused(alpha, pen, msg):
    Xs, ys = _tasks()
    with pytest.raises(ValueError, match=msg):
        rm.MultiTaskRegressor(pen, alpha=alpha).fit(Xs, ys)


def test_alpha_per_task_survives_save_and_load(tmp_path):
    Xs, ys = _tasks()
    m = rm.MultiTaskRegressor("l1", alpha=ALPHAS).fit(Xs, ys)
    m.save(tmp_path / "m.regmtl")
    back = rm.load(tmp_path / "m.regmtl")
    np.testing.assert_array_equal(back.alpha, ALPHAS)
    np.testing.assert_array_equal(back.coef_, m.coef_)


# ----------------------------------------------------------------- leave-one-out
def _brute_loo(X, y, w, alpha, fit_intercept):
    """Refit without each labeled row (weighted ridge, alpha / 2 ||w||^2 + sum c r^2 / 2)."""
    n = len(y)
    errs, weights = [], []
    for i in range(n):
        if w[i] == 0:
            continue
        keep = np.arange(n) != i
        # scikit-learn's Ridge minimizes sum s r^2 + a ||w||^2: s = c, a = alpha
        r = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[keep], y[keep],
                                                                sample_weight=w[keep])
        errs.append(y[i] - r.predict(X[i:i + 1])[0])
        weights.append(w[i])
    errs, weights = np.array(errs), np.array(weights)
    return -np.sum(weights * errs ** 2) / weights.sum()


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", ["long", "wide"])
def test_leave_one_out_equals_refitting_without_each_row(fit_intercept, shape):
    rng = np.random.default_rng(3)
    p = 6 if shape == "long" else 40
    Xs = [rng.standard_normal((n, p)) for n in (12, 25)]
    ys = [X @ rng.standard_normal(p) + 2.0 + rng.standard_normal(len(X)) for X in Xs]
    sw = [rng.uniform(0.5, 2.0, len(X)) for X in Xs]
    sw[1][3] = 0.0  # a row of weight 0 is neither fitted nor scored
    data = rm.as_task_data(Xs, ys, sample_weight=sw)
    alphas = np.array([1e-3, 0.1, 3.0])
    S = ridge_loo_scores(data, alphas, fit_intercept)
    for t in range(2):
        c = data.c[data.indptr[t]:data.indptr[t + 1]]
        for k, a in enumerate(alphas):
            want = _brute_loo(Xs[t], ys[t], c, a, fit_intercept)
            np.testing.assert_allclose(S[k, t], want, rtol=1e-9)


def test_shared_design_tasks_share_one_decomposition_exactly():
    """A shared design: tasks whose rows weigh alike reuse one decomposition, a task with a
    missing label gets its own; every score equals refitting without each row."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((25, 5))
    Y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((25, 3))
    Y[4, 2] = np.nan
    data = rm.as_task_data(X, Y)
    alphas = np.array([1e-3, 0.1, 3.0])
    S = ridge_loo_scores(data, alphas, True)
    for t in range(3):
        c = data.c[data.indptr[t]:data.indptr[t + 1]]
        y = np.nan_to_num(Y[:, t])
        for k, a in enumerate(alphas):
            np.testing.assert_allclose(S[k, t], _brute_loo(X, y, c, a, True), rtol=1e-9)


def test_loo_choice_is_ridgecv_per_task():
    Xs, ys = _tasks(seed=4, sizes=(30, 60, 45, 25))
    cv = rm.MultiTaskRegressorCV("l2", cv="loo", alpha_per_task=True, alphas=25).fit(Xs, ys)
    assert cv.alpha_.shape == (4,)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        r = RidgeCV(alphas=len(y) * cv.alphas_).fit(X, y)
        assert r.alpha_ / len(y) == pytest.approx(cv.alpha_[t], rel=1e-12)
        np.testing.assert_allclose(cv.coef_[t], r.coef_, rtol=0, atol=1e-6)
    assert np.isnan(cv.cv_results_["std_test_score"]).all() and cv.n_splits_ == 0


def test_cv_chooses_each_task_by_its_own_curve():
    Xs, ys = _tasks(seed=5, sizes=(40, 60, 50))
    cv = rm.MultiTaskRegressorCV("l1", alpha_per_task=True, alphas=12, cv=4).fit(Xs, ys)
    curves = np.stack(cv.cv_results_["mean_task_scores"].to_numpy())  # (n_alphas, T)
    np.testing.assert_array_equal(cv.alpha_, cv.alphas_[np.argmax(curves, axis=0)])
    assert cv.best_score_ == pytest.approx(np.mean(curves.max(axis=0)), rel=1e-12)
    assert cv.best_score_ >= cv.cv_results_["mean_test_score"].max()
    one = rm.MultiTaskRegressorCV("l1", alpha_per_task=True, alphas=12, cv=4,
                                  one_se=True).fit(Xs, ys)
    assert np.all(one.alpha_ >= cv.alpha_)
    # the one-standard-error rule by hand, per task, from cv_results_
    sd = np.stack(one.cv_results_["std_task_scores"].to_numpy())
    best = np.argmax(curves, axis=0)
    cols = np.arange(curves.shape[1])
    # K = 4 folds: the sample standard deviation (ddof=1) over sqrt(K), from the reported
    # population one (ddof=0): sd sqrt(K / (K - 1)) / sqrt(K) = sd / sqrt(3)
    ok = curves >= (curves[best, cols] - sd[best, cols] / np.sqrt(3.0))[None, :]
    want = np.where(ok, one.alphas_[:, None], -np.inf).max(axis=0)
    np.testing.assert_array_equal(one.alpha_, want)
    np.testing.assert_array_equal(cv.best_estimator_.alpha, cv.alpha_)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(penalty="l21", alpha_per_task=True), "separable over tasks"),
    (dict(penalty="l1", alpha_per_task=True, criterion="bic"), "criterion='cv'"),
    (dict(penalty="l1", cv="loo"), "leave-one-out of ridge"),
    (dict(penalty="l2", cv="loo", one_se=True), "one_se=False"),
    (dict(penalty="l2", cv="loo", scoring="r2"), "scoring='r2'"),
])
def test_what_the_choice_cannot_serve_is_refused(kwargs, msg):
    Xs, ys = _tasks()
    with pytest.raises(ValueError, match=msg):
        rm.MultiTaskRegressorCV(alphas=5, **kwargs).fit(Xs, ys)


def test_classifier_loo_is_refused():
    Xs, ys = _tasks()
    yc = [(y > 0).astype(int) for y in ys]
    with pytest.raises(ValueError, match="regressor"):
        rm.MultiTaskClassifierCV("l2", cv="loo", alphas=5).fit(Xs, yc)


def test_school_per_task_ridge_is_a_ridgecv_loop():
    """On School's first fixed split: the per-task leave-one-out ridge predicts as a loop of
    scikit-learn RidgeCV over the same grid (the strongest independent baseline)."""
    from regmtl.datasets import apply_split, load_school

    d = load_school()
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, d.splits[0])
    sc = StandardScaler().fit(np.vstack(Xtr))
    Xtr, Xte = [sc.transform(x) for x in Xtr], [sc.transform(x) for x in Xte]
    cv = rm.MultiTaskRegressorCV("l2", cv="loo", alpha_per_task=True, alphas=30,
                                 tol=1e-10).fit(Xtr, ytr)
    mine = rm.metrics.explained_variance(yte, cv.predict(Xte), average="pooled")
    preds = [RidgeCV(alphas=len(y) * cv.alphas_).fit(X, y).predict(Xt)
             for X, y, Xt in zip(Xtr, ytr, Xte, strict=True)]
    theirs = rm.metrics.explained_variance(yte, preds, average="pooled")
    assert mine == pytest.approx(theirs, abs=1e-6)
    assert cv.dual_gap_ <= 1e-10 * cv.best_estimator_.objective_ * 10


def test_compare_defaults_to_per_task_baselines():
    d = rm.datasets.make_multitask_regression(4, 40, 6, n_informative=3, random_state=0)
    res = rm.compare(d, models="default", splits=1, cv=3, n_alphas=5, progress=False)
    names = res.summary["model"].tolist()
    assert names[:2] == ["ridge (independent)", "ridge (independent, one alpha)"]
    ridge = res.choices.query("model == 'ridge (independent)'").iloc[0]
    assert np.shape(ridge["alphas"]) == (4,)
    assert ridge["alpha"] == pytest.approx(np.median(ridge["alphas"]))
