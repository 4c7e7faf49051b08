"""Per-feature terms where the rows are not in memory: an out-of-core fit and a fit on Dask
task blocks refuse them by name (they are not silently dropped), and the CV estimators refuse
them with AIC/BIC and leave-one-out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import regmtl as rm

TERMS = [dict(penalty_factor=np.array([0.0, 1.0, 1.0, 1.0])), dict(exclude=[1]),
         dict(lower_bounds=0.0), dict(standardize=True)]


@pytest.mark.parametrize("terms", TERMS)
def test_an_out_of_core_fit_refuses_them(tmp_path, terms):
    pytest.importorskip("pyarrow")
    from regmtl.datasets import make_parquet_tasks
    from regmtl.parquet import ParquetTasks

    make_parquet_tasks(tmp_path / "t", 6, n_features=4, n_informative=2)
    source = ParquetTasks(tmp_path / "t")
    with pytest.raises(ValueError, match="out-of-core fit"):
        rm.MultiTaskRegressor("l21", alpha=0.1, **terms).fit(source)


def test_a_fit_on_dask_task_blocks_refuses_them(dask_process_client):
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((120, 4)), columns=list("abcd"))
    df["store"], df["y"] = np.repeat(np.arange(4), 30), rng.standard_normal(120)
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match="data in memory"):
        rm.MultiTaskRegressor("l21", alpha=0.1, penalty_factor={"a": 0.0}).fit(
            ddf[list("abcd")], ddf["y"], task=ddf["store"])


@pytest.mark.parametrize("choice", [dict(criterion="aic"), dict(criterion="bic"),
                                    dict(cv="loo", penalty="l2")])
def test_information_criteria_and_leave_one_out_refuse_them(choice):
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((30, 4)) for _ in range(3)]
    ys = [X @ rng.standard_normal(4) for X in Xs]
    kw = {"penalty": "l21", **choice}
    with pytest.raises(ValueError, match="criterion='cv' with folds"):
        rm.MultiTaskRegressorCV(alphas=4, penalty_factor=np.array([0.0, 1, 1, 1]),
                                **kw).fit(Xs, ys)


def test_cv_with_factors_refits_the_alpha_it_chose_with_them():
    """The CV grid starts at alpha_max under the factors; the refit equals a plain fit with the
    same factors at the chosen alpha (1e-8)."""
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((40, 5)) for _ in range(4)]
    ys = [X @ rng.standard_normal(5) + rng.standard_normal(40) for X in Xs]
    d = np.array([0.0, 0.5, 1.0, 2.0, 1.0])
    cv = rm.MultiTaskRegressorCV("l21", alphas=6, cv=3, penalty_factor=d, tol=1e-10).fit(Xs, ys)
    assert cv.alphas_[0] == pytest.approx(rm.alpha_max(Xs, ys, penalty="l21",
                                                       penalty_factor=d), rel=1e-12)
    fit = rm.MultiTaskRegressor("l21", alpha=cv.alpha_, penalty_factor=d, tol=1e-10).fit(Xs, ys)
    np.testing.assert_allclose(cv.coef_, fit.coef_, atol=1e-8)
    path = rm.regularization_path(Xs, ys, penalty="l21", alphas=cv.alphas_, penalty_factor=d,
                                  tol=1e-10)
    k = int(np.argmin(np.abs(path.alphas - cv.alpha_)))
    np.testing.assert_allclose(path.coefs[k], fit.coef_, atol=1e-7)
    assert np.abs(path.coefs[0][:, 1:]).max() == 0.0  # at alpha_max the penalized rows are 0
    assert np.abs(path.coefs[0][:, 0]).max() > 0.0     # and the unpenalized one is fitted


def test_compare_gives_its_terms_to_the_models_it_names():
    """``compare(feature_terms=...)``: its L2,1 model scores exactly as the same CV estimator
    with the factors given as a model of the user's; refused keys are named."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 6)) for n in (30, 40, 50, 35)]
    w = rng.standard_normal(6)
    ys = [X @ (w + 0.1 * rng.standard_normal(6)) + rng.standard_normal(len(X)) for X in Xs]
    d = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    named = rm.compare(Xs, ys, models=["ridge", "l21"], splits=3, progress=False,
                       feature_terms={"penalty_factor": d})
    own = rm.compare(Xs, ys, splits=3, progress=False, models=[
        "ridge", ("l21", rm.MultiTaskRegressorCV("l21", alphas=12, cv=3, penalty_factor=d))])
    score = "explained_variance_mean"
    assert named.summary[score].iloc[1] == pytest.approx(own.summary[score].iloc[1], abs=1e-12)
    plain = rm.compare(Xs, ys, models=["ridge", "l21"], splits=3, progress=False)
    assert named.summary[score].iloc[1] != pytest.approx(plain.summary[score].iloc[1],
                                                         abs=1e-6)
    with pytest.raises(ValueError, match="feature_terms: \\['factor'\\]"):
        rm.compare(Xs, ys, models=["l21"], splits=2, progress=False,
                   feature_terms={"factor": d})


def test_one_alpha_per_task_with_factors_matches_clarabel():
    """alpha of shape (T,) with factors (a 0 among them: projected out, squared loss): task
    t's lasso weighs its entries by alpha_t d_j; Clarabel's optimum to 1e-8 relative."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    T, p = 3, 6
    Xs = [rng.standard_normal((n, p)) for n in (30, 40, 50)]
    ys = [X @ rng.standard_normal(p) + rng.standard_normal(len(X)) for X in Xs]
    alphas, d = np.array([0.05, 0.1, 0.2]), np.array([0.0, 1.0, 2.0, 1.0, 0.5, 1.0])
    m = rm.MultiTaskRegressor("l1", alpha=alphas, tol=1e-10, penalty_factor=d,
                              rescale_factors=False).fit(Xs, ys)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    obj = sum(cp.sum_squares(ys[t] - Xs[t] @ W[:, t] - b[t]) / (2 * len(ys[t]))
              + alphas[t] * cp.sum(cp.multiply(d, cp.abs(W[:, t]))) for t in range(T))
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver="CLARABEL")
    assert m.objective_ == pytest.approx(prob.value, rel=1e-8)
    np.testing.assert_allclose(m.coef_.T, W.value, atol=1e-5)
    with pytest.raises(ValueError, match="one value per task"):
        rm.MultiTaskRegressor("l1", alpha=alphas, lower_bounds=0.0).fit(Xs, ys)


@pytest.mark.parametrize("alpha", ["model", 0.05])
def test_transfer_borrows_in_the_units_of_the_factors(alpha):
    """A model with penalty factors d transfers as the plain model fitted on the columns
    x / d (the penalty's units): the new task's coefficients are equal (to rounding); a model
    with an unpenalized feature, bounds or standardize is refused by name."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((60, 6)) for _ in range(5)]
    w = np.array([2.0, 1.0, 0.0, 0.0, 0.5, 0.0])
    ys = [X @ (w + 0.1 * rng.standard_normal(6)) + rng.standard_normal(60) for X in Xs]
    d = np.array([1.0, 2.0, 1.0, 0.5, 1.0, 1.0])
    with_factors = rm.MultiTaskRegressor("l21", alpha=0.1, penalty_factor=d,
                                         rescale_factors=False).fit(Xs[:4], ys[:4])
    by_hand = rm.MultiTaskRegressor("l21", alpha=0.1).fit([X / d for X in Xs[:4]], ys[:4])
    Xn, yn = Xs[4][:15], ys[4][:15]
    one = rm.transfer(with_factors, Xn, yn, alpha=alpha)
    two = rm.transfer(by_hand, Xn / d, yn, alpha=alpha)
    np.testing.assert_allclose(one.coef_, two.coef_ / d, atol=1e-10)
    for terms, words in ((dict(penalty_factor=[0.0, 1, 1, 1, 1, 1]), "unpenalized"),
                         (dict(lower_bounds=-1.0), "bounds"),
                         (dict(standardize=True), "standardize")):
        model = rm.MultiTaskRegressor("l21", alpha=0.1, **terms).fit(Xs[:4], ys[:4])
        with pytest.raises(ValueError, match=words):
            rm.transfer(model, Xn, yn)


def test_cv_takes_terms_keyed_by_column_name():
    """Dicts and names on a DataFrame reach every fold by position: the CV's refit equals the
    plain fit with the same terms at the chosen alpha."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((120, 4)), columns=list("abcd"))
    task, y = np.repeat([0, 1, 2], 40), df.sum(axis=1).to_numpy() + rng.standard_normal(120)
    terms = dict(penalty_factor={"a": 0.0}, exclude=["d"], upper_bounds={"b": 0.5})
    cv = rm.MultiTaskRegressorCV("l21", alphas=5, cv=3, **terms).fit(df, y, task=task)
    fit = rm.MultiTaskRegressor("l21", alpha=cv.alpha_, **terms).fit(df, y, task=task)
    np.testing.assert_allclose(cv.coef_, fit.coef_, atol=1e-10)
    assert np.all(cv.coef_[:, 3] == 0.0) and cv.coef_[:, 1].max() <= 0.5


def test_compare_refuses_bounds_for_the_per_task_baselines():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 4)) for _ in range(3)]
    ys = [X @ np.ones(4) + rng.standard_normal(40) for X in Xs]
    with pytest.raises(ValueError, match="one alpha per task takes no bounds"):
        rm.compare(Xs, ys, models=["ridge", "l21"], splits=2, progress=False,
                   feature_terms={"lower_bounds": 0.0})
    out = rm.compare(Xs, ys, models=["pooled", "l21"], splits=2, progress=False,
                     feature_terms={"lower_bounds": 0.0})
    assert out.models["MTL L2,1"].coef_.min() >= 0.0


@pytest.mark.parametrize("terms, words", [(dict(lower_bounds=np.inf), "lower_bounds holds inf"),
                                          (dict(upper_bounds=[1.0, -np.inf, 1.0, 1.0]),
                                           "upper_bounds holds -inf")])
def test_a_bound_no_coefficient_can_reach_is_refused_by_name(terms, words):
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((30, 4)) for _ in range(3)]
    ys = [X @ np.ones(4) for X in Xs]
    with pytest.raises(ValueError, match=words):
        rm.MultiTaskRegressor("l21", alpha=0.1, **terms).fit(Xs, ys)
