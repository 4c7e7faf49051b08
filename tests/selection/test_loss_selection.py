"""Model selection and comparison for the losses beyond squared and logistic: CV scored by each
loss's deviance, AIC/BIC from the Poisson and Gamma likelihoods, the per-loss scikit-learn
baselines of compare, and the refusals."""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import log_loss, make_scorer, mean_poisson_deviance

import regmtl as rm
from regmtl.baselines import Independent
from regmtl.selection import degrees_of_freedom, neg2_log_likelihood, task_folds


def _poisson_tasks(T=3, n=60, p=4, seed=0):
    rng = np.random.default_rng(seed)
    w = np.array([0.5, -0.4, 0.0, 0.0])[:p]
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [rng.poisson(np.exp(X @ w + 0.3)).astype(float) for X in Xs]
    return Xs, ys


def _fold_lists(Xs, ys, fold, extra=()):
    """The per-task training and validation rows of a flat fold, for lists input."""
    starts = np.concatenate([[0], np.cumsum([len(y) for y in ys])])
    out = []
    for idx in fold:
        parts = [idx[(idx >= a) & (idx < b)] - a
                 for a, b in zip(starts[:-1], starts[1:], strict=True)]

        def rows(arrays, parts=parts):
            return [v[r] for v, r in zip(arrays, parts, strict=True)]

        out.append((rows(Xs), rows(ys), [rows(ex) for ex in extra]))
    return out


@pytest.mark.parametrize("with_offset", [False, True])
def test_poisson_cv_scores_the_mean_poisson_deviance(with_offset):
    Xs, ys = _poisson_tasks()
    rng = np.random.default_rng(1)
    offset = [rng.uniform(-0.5, 0.5, len(y)) for y in ys] if with_offset else None
    search = rm.MultiTaskRegressorCV("l21", loss="poisson", alphas=4, eps=1e-2, cv=3,
                                     tol=1e-10).fit(Xs, ys, offset=offset)
    assert search.best_estimator_.loss == "poisson"
    assert search.alpha_ in search.cv_results_["param_alpha"].to_numpy()
    # fold 0 by hand: fit on its training rows, scikit-learn's mean Poisson deviance per task
    folds = task_folds(rm.as_task_data(Xs, ys), cv=3, random_state=0)
    extra = (offset,) if with_offset else ()
    (Xtr, ytr, otr), (Xva, yva, ova) = _fold_lists(Xs, ys, folds[0], extra)
    k = 1
    alpha = float(search.cv_results_["param_alpha"][k])
    model = rm.MultiTaskRegressor("l21", alpha=alpha, loss="poisson", tol=1e-10)
    model.fit(Xtr, ytr, offset=otr[0] if with_offset else None)
    pred = model.predict(Xva, offset=ova[0] if with_offset else None)
    by_hand = -np.mean([mean_poisson_deviance(y, mu) for y, mu in zip(yva, pred, strict=True)])
    assert search.cv_results_["split0_test_score"][k] == pytest.approx(by_hand, rel=1e-6)
    if with_offset:  # a scikit-learn scorer reads the predictions: the same numbers
        scorer = make_scorer(mean_poisson_deviance, greater_is_better=False)
        called = rm.MultiTaskRegressorCV("l21", loss="poisson", alphas=4, eps=1e-2, cv=3,
                                         tol=1e-10, scoring=scorer).fit(Xs, ys, offset=offset)
        np.testing.assert_allclose(called.cv_results_["mean_test_score"],
                                   search.cv_results_["mean_test_score"], rtol=1e-9)
    # the refit is the model at the chosen alpha, with the offset
    direct = rm.MultiTaskRegressor("l21", alpha=search.alpha_, loss="poisson", tol=1e-10)
    direct.fit(Xs, ys, offset=offset)
    np.testing.assert_allclose(search.coef_, direct.coef_, atol=1e-7)
    np.testing.assert_allclose(search.predict(Xs, offset=offset)[0],
                               direct.predict(Xs, offset=offset)[0], rtol=1e-7)
    assert search.score(Xs, ys, offset=offset) == pytest.approx(
        direct.score(Xs, ys, offset=offset), rel=1e-7)


def test_mixed_cv_keeps_each_task_loss_in_every_fold():
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((45, 3)) for _ in range(3)]
    ys = [(Xs[0][:, 0] + 0.5 * rng.standard_normal(45) > 0).astype(float),
          rng.poisson(np.exp(0.4 * Xs[1][:, 1])).astype(float),
          Xs[2][:, 2] + rng.standard_normal(45)]
    losses = ["logistic", "poisson", "squared"]
    search = rm.MultiTaskRegressorCV("l21", loss=losses, alphas=[0.05], cv=3,
                                     tol=1e-10).fit(Xs, ys)
    # the binary task's folds stratified, the others as without a classifier
    folds = task_folds(rm.as_task_data(Xs, ys), cv=3, random_state=0,
                       stratify=np.array([True, False, False]))
    (Xtr, ytr, _), (Xva, yva, _) = _fold_lists(Xs, ys, folds[0])
    model = rm.MultiTaskRegressor("l21", alpha=0.05, loss=losses, tol=1e-10).fit(Xtr, ytr)
    f = [X @ w + b for X, w, b in zip(Xva, model.coef_, model.intercept_, strict=True)]
    p = 1.0 / (1.0 + np.exp(-f[0]))
    by_hand = [2.0 * log_loss(yva[0], p, labels=[0.0, 1.0]),  # the logistic deviance
               mean_poisson_deviance(yva[1], np.exp(f[1])),
               np.mean((yva[2] - f[2]) ** 2)]
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(-np.mean(by_hand),
                                                                        rel=1e-6)


def test_poisson_aic_bic_by_hand():
    Xs, ys = _poisson_tasks(T=2, n=50)
    alphas = [0.2, 0.02]
    aic = rm.MultiTaskRegressorCV("l1", loss="poisson", alphas=alphas, criterion="aic",
                                  tol=1e-10).fit(Xs, ys)
    bic = rm.MultiTaskRegressorCV("l1", loss="poisson", alphas=alphas, criterion="bic",
                                  tol=1e-10).fit(Xs, ys)
    N = sum(len(y) for y in ys)
    for k, alpha in enumerate(aic.cv_results_["param_alpha"]):
        m = rm.MultiTaskRegressor("l1", alpha=alpha, loss="poisson", tol=1e-10).fit(Xs, ys)
        mu = m.predict(Xs)
        neg2 = 2.0 * sum(np.sum(m_ - y * np.log(m_) + gammaln(y + 1.0))
                         for m_, y in zip(mu, ys, strict=True))
        df = np.count_nonzero(np.abs(m.coef_) > 1e-4 * np.abs(m.coef_).max()) + 2
        row = aic.cv_results_.iloc[k]
        assert row["neg2_log_likelihood"] == pytest.approx(neg2, rel=1e-8)
        assert row["df"] == df
        assert row["aic"] == pytest.approx(neg2 + 2 * df, rel=1e-8)
        assert bic.cv_results_["bic"][k] == pytest.approx(neg2 + np.log(N) * df, rel=1e-8)


def test_gamma_likelihood_profiles_the_shape_per_task():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 3))
    mu = np.exp(X @ [0.3, -0.2, 0.0] + 1.0)
    Y = np.column_stack([rng.gamma(3.0, mu / 3.0), rng.gamma(0.7, mu / 0.7)])
    m = rm.MultiTaskRegressor("l2", alpha=0.01, loss="gamma", tol=1e-10).fit(X, Y)
    data = rm.as_task_data(X, Y)
    f = data.linear(m.coef_matrix_, m.intercept_)
    got = neg2_log_likelihood(data, rm.Gamma(), f)
    total = 0.0
    for t in range(2):  # scipy's Gamma log-density at each task's best shape
        y, mu_t = Y[:, t], np.exp(f[t * 80:(t + 1) * 80])

        def neg2_t(k, y=y, mu_t=mu_t):
            return -2.0 * np.sum(stats.gamma.logpdf(y, a=k, scale=mu_t / k))

        best = min(neg2_t(k) for k in np.linspace(0.2, 6.0, 2000))
        assert neg2_t(1.0) >= best
        k = rm.datafits.gamma.gamma_shape(np.array([np.mean(
            y / mu_t - np.log(y / mu_t) - 1.0)]))[0]
        assert neg2_t(k) <= best + 1e-9 and neg2_t(k) <= min(neg2_t(k * 1.001),
                                                           neg2_t(k / 1.001))
        total += neg2_t(k)
    assert got == pytest.approx(total, rel=1e-10)
    bic = rm.MultiTaskRegressorCV("l21", loss="gamma", alphas=4, criterion="bic").fit(X, Y)
    assert np.isfinite(bic.cv_results_["bic"]).all()


def test_poisson_degrees_of_freedom_are_the_divergence_of_the_means():
    # df = tr((D + H)^-1 D) equals sum_r d mu_r / d y_r (finite differences of refits)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 2))
    y = rng.poisson(np.exp(X @ [0.4, -0.3] + 0.5)).astype(float)
    alpha = 0.05
    fit = rm.MultiTaskRegressor("l2", alpha=alpha, loss="poisson", tol=1e-13)
    m = fit.fit(X, y)
    data = rm.as_task_data(X, y)
    df = degrees_of_freedom(data, rm.Poisson(), rm.L2(), alpha, m.coef_matrix_,
                            np.atleast_1d(m.intercept_))
    eps, div = 1e-5, 0.0
    for r in range(len(y)):
        up, down = y.copy(), y.copy()
        up[r] += eps
        down[r] -= eps if y[r] >= eps else 0.0
        h = up[r] - down[r]
        div += (fit.fit(X, up).predict(X[r:r + 1])[0]
                - fit.fit(X, down).predict(X[r:r + 1])[0]) / h
    assert df == pytest.approx(div, rel=1e-4)
    assert 1.0 < df < 3.0  # shrunk below the 3 parameters


def test_compare_on_poisson_uses_poisson_regressor_baselines():
    Xs, ys = _poisson_tasks(T=3, n=40, p=3)
    res = rm.compare(Xs, ys, loss="poisson", models=["independent", "l21"], splits=1, cv=2,
                     n_alphas=3, progress=False)
    assert res.metric == "d2" and res.baseline == "PoissonRegressor (independent)"
    base = res.models["PoissonRegressor (independent)"]
    Xtr, Xte, ytr, yte = res.data_first_split
    for t in range(3):  # each task's estimator is scikit-learn's, fitted on its rows alone
        assert isinstance(base.estimators_[t], PoissonRegressor)
        direct = PoissonRegressor(alpha=base.alpha_[t], tol=1e-4, max_iter=1000)
        direct.fit(Xtr[t], ytr[t])
        np.testing.assert_allclose(base.coef_[t], direct.coef_, rtol=1e-12)
        # against the task's constant model fitted on its training rows (its mean)
        null = np.full(len(yte[t]), np.mean(ytr[t]))
        d2 = 1 - (mean_poisson_deviance(yte[t], direct.predict(Xte[t]))
                  / mean_poisson_deviance(yte[t], null))
        mine = res.scores[res.scores["model"] == "PoissonRegressor (independent)"]
        row = mine[mine["task"] == t]
        assert float(row["d2"].iloc[0]) == pytest.approx(d2, rel=1e-6)
    assert set(res.tests["model"]) == {"PoissonRegressor (independent)", "MTL L2,1"}


def test_independent_tunes_alpha_per_task_on_the_deviance():
    Xs, ys = _poisson_tasks(T=2, n=50, p=3)
    m = Independent("poisson", alphas=[1.0, 0.1, 0.01], cv=3).fit(Xs, ys)
    assert m.alpha_.shape == (2,) and set(m.alpha_) <= {1.0, 0.1, 0.01}
    np.testing.assert_allclose(m.predict(Xs)[0], m.estimators_[0].predict(Xs[0]))
    q = Independent(rm.Quantile(0.8), alphas=[0.0]).fit(Xs, ys)
    assert type(q.estimators_[0]).__name__ == "QuantileRegressor"
    assert q.estimators_[0].quantile == 0.8


@pytest.mark.parametrize("loss", ["huber", rm.Quantile(0.7), ["huber", "squared"]])
def test_criteria_refuse_losses_without_a_likelihood(loss):
    Xs, ys = _poisson_tasks(T=2, n=30, p=3)
    with pytest.raises(ValueError, match="cross-validation"):
        rm.MultiTaskRegressorCV("l21", loss=loss, alphas=3, criterion="bic").fit(Xs, ys)


def test_refusals_name_the_loss():
    Xs, ys = _poisson_tasks(T=3, n=30, p=3)
    with pytest.raises(ValueError, match="cv='loo'.*squared loss"):
        rm.MultiTaskRegressorCV("l2", loss="poisson", cv="loo").fit(Xs, ys)
    with pytest.raises(ValueError, match="'ridge' is a baseline of the squared loss"):
        rm.compare(Xs, ys, loss="poisson", models=["ridge"], splits=1, progress=False)
    with pytest.raises(ValueError, match="'pooled' is a baseline of the squared loss"):
        rm.compare(Xs, ys, loss="poisson", models=["pooled"], splits=1, progress=False)
    model = rm.MultiTaskRegressor("l21", alpha=0.05, loss="poisson").fit(Xs, ys)
    assert rm.transfer(model, Xs[0], ys[0]).loss_ == "poisson"  # tests/test_transfer_losses.py
    with pytest.raises(ValueError, match="loss='poisson' is not supported"):
        rm.task_relatedness(Xs, ys, loss="poisson", method="residual")
    with pytest.raises(ValueError, match="negative entries"):
        rm.MultiTaskRegressorCV("l21", loss="poisson").fit(Xs, [-y for y in ys])


def test_paths_and_alpha_max_take_the_new_losses():
    Xs, ys = _poisson_tasks(T=2, n=40, p=3)
    amax = rm.alpha_max(Xs, ys, penalty="l21", loss="poisson")
    at_max = rm.MultiTaskRegressor("l21", alpha=amax, loss="poisson").fit(Xs, ys)
    assert np.all(at_max.coef_ == 0)
    below = rm.MultiTaskRegressor("l21", alpha=0.9 * amax, loss="poisson").fit(Xs, ys)
    assert np.any(below.coef_ != 0)
    # a smooth penalty's grid from the loss's curvature at the intercept-only fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = rm.regularization_path(Xs, ys, penalty="l2", loss="poisson", alphas=3)
    assert np.all(np.isfinite(path.alphas)) and path.certificates.max() < 1e-4
    offset = [np.full(len(y), 0.3) for y in ys]
    shifted = rm.alpha_max(Xs, ys, penalty="l21", loss="poisson", offset=offset)
    assert shifted == pytest.approx(amax, rel=1e-8)  # a constant offset moves the intercepts


def test_folds_stratify_the_binary_tasks_of_a_loss_per_task_only():
    rng = np.random.default_rng(5)
    Xs = [rng.standard_normal((30, 2)), rng.standard_normal((31, 2))]
    ys = [np.r_[np.ones(6), np.zeros(24)], rng.poisson(2.0, 31).astype(float)]
    data = rm.as_task_data(Xs, ys)
    folds = task_folds(data, cv=3, stratify=np.array([True, False]), random_state=0)
    plain = task_folds(data, cv=3, random_state=0)
    for (_, te), (_, pte) in zip(folds, plain, strict=True):
        assert np.sum(data.y[te[te < 30]]) == 2  # every fold validates 2 of the 6 positives
        np.testing.assert_array_equal(te[te >= 30], pte[pte >= 30])  # the count task as before
    search = rm.MultiTaskRegressorCV("l21", loss=["logistic", "poisson"], alphas=3,
                                     cv=3).fit(Xs, ys)
    assert np.isfinite(search.best_score_)


def test_a_task_fitted_exactly_leaves_the_gamma_likelihood_unbounded():
    rng = np.random.default_rng(6)
    Xs = [rng.standard_normal((30, 2)), rng.standard_normal((1, 2))]
    ys = [rng.gamma(2.0, 1.0, 30), np.array([1.5])]
    with pytest.raises(ValueError, match="dispersion is 0 and the Gamma likelihood"):
        rm.MultiTaskRegressorCV("l21", loss="gamma", alphas=3, criterion="aic").fit(Xs, ys)
    counts = [np.round(y) for y in ys]  # Poisson has no scale: a one-row task is fine
    aic = rm.MultiTaskRegressorCV("l21", loss="poisson", alphas=3, criterion="aic")
    assert np.isfinite(aic.fit(Xs, counts).cv_results_["aic"]).all()


def test_mixed_losses_aic_is_the_sum_of_the_tasks_likelihoods():
    rng = np.random.default_rng(1)
    w = np.r_[0.5, -0.4, 0.0, 0.0]
    Xs = [rng.normal(size=(60, 4)) for _ in range(3)]
    ys = [(Xs[0] @ w + rng.logistic(size=60) > 0).astype(float),
          rng.poisson(np.exp(0.2 + Xs[1] @ w)).astype(float),
          Xs[2] @ w + 0.5 * rng.normal(size=60)]
    losses = ["logistic", "poisson", "squared"]
    aic = rm.MultiTaskRegressorCV("l21", loss=losses, alphas=[0.1, 0.01], criterion="aic",
                                  tol=1e-10).fit(Xs, ys)
    m = rm.MultiTaskRegressor("l21", alpha=0.01, loss=losses, tol=1e-10).fit(Xs, ys)
    f = [X @ m.coef_[t] + m.intercept_[t] for t, X in enumerate(Xs)]
    by_hand = (2 * np.sum(np.logaddexp(0, -(2 * ys[0] - 1) * f[0]))
               + 2 * np.sum(np.exp(f[1]) - ys[1] * f[1] + gammaln(ys[1] + 1))
               + 60 * (np.log(2 * np.pi * np.mean((ys[2] - f[2]) ** 2)) + 1))
    row = aic.cv_results_.iloc[1]
    assert row["neg2_log_likelihood"] == pytest.approx(by_hand, rel=1e-8)
    assert row["aic"] == pytest.approx(by_hand + 2 * row["df"], rel=1e-10)
    assert 3 < row["df"] < 3 + 3 * 4  # intercepts plus shrunk coefficients
    with pytest.raises(ValueError, match="not a log-likelihood"):
        rm.MultiTaskRegressorCV("l21", loss=["huber", "poisson", "squared"],
                                criterion="bic").fit(Xs, ys)
