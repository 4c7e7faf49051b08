"""Standard errors of unpenalized fits against statsmodels' GLM (frequency weights: regmtl's
sample_weight counts a row of weight 2 as two rows), task by task."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import norm

import regmtl as rm

RTOL = 1e-5


def _data(loss, n, rng, p=3):
    X = rng.standard_normal((n, p))
    eta = 0.3 + X @ np.linspace(0.4, -0.3, p)
    off = 0.5 * rng.standard_normal(n)
    if loss == "poisson":
        y = rng.poisson(np.exp(eta + off)).astype(float)
    elif loss == "gamma":
        y = rng.gamma(2.0, np.exp(eta + off) / 2.0)
    elif loss == "logistic":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        off = np.zeros(n)
    else:
        y = eta + off + rng.standard_normal(n)
    return X, y, off


FAMILIES = {"squared": sm.families.Gaussian(), "poisson": sm.families.Poisson(),
            "gamma": sm.families.Gamma(sm.families.links.Log()),
            "logistic": sm.families.Binomial()}


def _model(loss):
    if loss == "logistic":
        return rm.MultiTaskClassifier("l21", alpha=0.0, tol=1e-12, max_iter=5000)
    return rm.MultiTaskRegressor("l21", alpha=0.0, loss=loss, tol=1e-12, max_iter=5000)


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(b)))


def _glm(loss, X, y, off, w, cov_type):
    kw = {} if loss == "logistic" else {"offset": off}
    return sm.GLM(y, sm.add_constant(X, prepend=False), family=FAMILIES[loss],
                  freq_weights=w, **kw).fit(tol=1e-13, maxiter=200, cov_type=cov_type)


@pytest.mark.parametrize("loss", ["squared", "poisson", "gamma", "logistic"])
def test_three_tasks_equal_three_statsmodels_fits(loss):
    """Three tasks of their own rows, with an offset (exposure) and weights: each task's
    standard errors are its own GLM's (fisher) and HC0's (sandwich), to 1e-5."""
    rng = np.random.default_rng(1)
    parts = [_data(loss, n, rng) for n in (120, 150, 180)]
    Xs, ys, offs = zip(*parts, strict=True)
    ws = [rng.integers(1, 4, len(y)).astype(float) for y in ys]
    model = _model(loss)
    kw = {} if loss == "logistic" else {"offset": list(offs)}
    model.fit(list(Xs), list(ys), sample_weight=ws, **kw)
    for method, cov_type in (("fisher", "nonrobust"), ("sandwich", "HC0")):
        table = model.coef_table(list(Xs), list(ys), sample_weight=ws, method=method, **kw)
        assert (table["method"] == method).all() and not table["penalized"].any()
        for t in range(3):
            ref = _glm(loss, Xs[t], ys[t], offs[t], ws[t], cov_type)
            rows = table[table["task"] == t]
            assert _rel(rows["coef"], ref.params) < RTOL
            assert _rel(rows["std_error"], ref.bse) < RTOL, (method, t)


def test_p_values_and_intervals_from_z():
    rng = np.random.default_rng(2)
    X, y, off = _data("poisson", 200, rng)
    model = _model("poisson").fit(X, y, offset=off)
    table = model.coef_table(X, y, offset=off, level=0.9)
    z = table["coef"] / table["std_error"]
    np.testing.assert_allclose(table["z"], z)
    np.testing.assert_allclose(table["p_value"], 2 * norm.sf(np.abs(z)))
    half = norm.ppf(0.95) * table["std_error"]
    np.testing.assert_allclose(table["ci_lower"], table["coef"] - half)
    np.testing.assert_allclose(table["ci_upper"], table["coef"] + half)
    ref = sm.GLM(y, sm.add_constant(X, prepend=False), family=sm.families.Poisson(),
                 offset=off).fit(tol=1e-13)
    assert _rel(table["p_value"], ref.pvalues) < 1e-4
    assert _rel(table["ci_lower"], ref.conf_int(0.1)[:, 0]) < RTOL
    assert table["feature"].tolist() == ["x0", "x1", "x2", "intercept"]


def test_shared_design_equals_ols_per_column():
    """A shared design with a missing label: each column of Y is its own OLS on its rows."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 4))
    Y = X @ rng.standard_normal((4, 2)) + rng.standard_normal((90, 2))
    Y[5, 1] = np.nan
    model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-12).fit(X, Y)
    table = model.coef_table(X, Y)
    for t in range(2):
        keep = ~np.isnan(Y[:, t])
        ref = sm.OLS(Y[keep, t], sm.add_constant(X[keep], prepend=False)).fit()
        rows = table[table["task"] == t]
        assert _rel(rows["coef"], ref.params) < RTOL
        assert _rel(rows["std_error"], ref.bse) < RTOL


def test_long_form_and_names():
    """Long form with string task ids and a DataFrame: the tasks' labels and the columns'
    names; a CV search answers through its refit."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.standard_normal((120, 2)), columns=["age", "dose"])
    task = np.repeat(["a", "b"], 60)
    y = X["age"].to_numpy() + rng.standard_normal(120)
    model = rm.MultiTaskRegressor("l1", alpha=0.0, tol=1e-12).fit(X, y, task=task)
    table = rm.coef_table(model, X, y, task=task)
    assert table["task"].tolist()[:3] == ["a", "a", "a"]
    assert table["feature"].tolist()[:3] == ["age", "dose", "intercept"]
    for t in ("a", "b"):
        ref = sm.OLS(y[task == t], sm.add_constant(X[task == t].to_numpy(), prepend=False)).fit()
        assert _rel(table[table["task"] == t]["std_error"], ref.bse) < RTOL


def _independent_columns(Xs):
    """Columns that, with the intercept, are linearly independent within every task."""
    keep = []
    for j in range(Xs[0].shape[1]):
        trial = keep + [j]
        if all(np.linalg.matrix_rank(np.column_stack([X[:, trial], np.ones(len(X))]))
               == len(trial) + 1 for X in Xs):
            keep = trial
    return np.array(keep)


def test_school_data_per_task():
    """The School data (four schools), unpenalized: the features constant within a school
    are excluded (held at 0, NaN statistics); the others' standard errors are each school's
    OLS's."""
    school = rm.datasets.load_school()
    Xs, ys = school.X[:4], school.y[:4]
    keep = _independent_columns(Xs)
    drop = np.setdiff1d(np.arange(Xs[0].shape[1]), keep)
    model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-12, exclude=drop).fit(Xs, ys)
    table = model.coef_table(Xs, ys)
    for t in range(4):
        ref = sm.OLS(ys[t], sm.add_constant(Xs[t][:, keep], prepend=False)).fit()
        rows = table[table["task"] == t]
        got = rows["std_error"].to_numpy()
        assert np.isnan(got[drop]).all()
        assert _rel(got[np.append(keep, len(got) - 1)], ref.bse) < RTOL
        assert _rel(rows["coef"].to_numpy()[np.append(keep, len(got) - 1)], ref.params) < RTOL


def test_one_loss_per_task():
    """A count, a label and a value in one fit: each task's errors are its own GLM's, and
    the bootstrap refits each task under its own loss."""
    rng = np.random.default_rng(5)
    parts = [_data(loss, 150, rng) for loss in ("poisson", "logistic", "squared")]
    Xs, ys = [p[0] for p in parts], [p[1] for p in parts]
    labels = [ys[0], np.where(ys[1] > 0, 5.0, 2.0), ys[2]]  # (two labels as numbers)
    model = rm.MultiTaskRegressor("l21", alpha=0.0, loss=["poisson", "logistic", "squared"],
                                  tol=1e-12, max_iter=5000).fit(Xs, labels)
    table = model.coef_table(Xs, labels)
    for t, loss in enumerate(("poisson", "logistic", "squared")):
        ref = _glm(loss, Xs[t], ys[t], np.zeros(150), np.ones(150), "nonrobust")
        assert _rel(table[table["task"] == t]["std_error"], ref.bse) < RTOL
    boot = model.coef_table(Xs, labels, method="bootstrap", n_boot=20, random_state=0)
    assert np.isfinite(boot["std_error"]).all()
    np.testing.assert_allclose(boot["std_error"], table["std_error"], rtol=0.6)


def test_a_search_answers_through_its_refit():
    rng = np.random.default_rng(6)
    X, y, _ = _data("squared", 100, rng)
    search = rm.MultiTaskRegressorCV("l1", alphas=[0.0], cv=3, tol=1e-12).fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X, prepend=False)).fit()
    assert _rel(rm.coef_table(search, X, y)["std_error"], ref.bse) < RTOL
    lazy = rm.MultiTaskRegressorCV("l1", alphas=[0.0], cv=3, refit=False).fit(X, y)
    with pytest.raises(ValueError, match="refit=False"):
        rm.coef_table(lazy, X, y)
