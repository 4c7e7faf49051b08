"""The pinball loss's kernel sandwich against statsmodels QuantReg, its bootstrap, and the
Huber M-estimator's sandwich."""

import numpy as np
import statsmodels.api as sm

import regmtl as rm


def _quantile_data(seed, n=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = 1.0 + X @ [0.8, -0.4] + rng.standard_t(3, n)
    return X, y


def test_kernel_equals_quantreg():
    """At the median, fits that agree (coefficients first) give QuantReg's default standard
    errors (Epanechnikov kernel, Hall-Sheather bandwidth, robust) to 1e-5."""
    X, y = _quantile_data(0)
    model = rm.MultiTaskRegressor("l1", alpha=0.0, loss=rm.Quantile(0.5), tol=1e-12).fit(X, y)
    ref = sm.QuantReg(y, sm.add_constant(X, prepend=False)).fit(q=0.5, p_tol=1e-12,
                                                                max_iter=10000)
    coef = np.append(model.coef_, model.intercept_)
    np.testing.assert_allclose(coef, ref.params, rtol=1e-5, atol=1e-6)
    table = model.coef_table(X, y)
    assert (table["method"] == "kernel").all()
    np.testing.assert_allclose(table["std_error"], ref.bse, rtol=1e-5)


def test_kernel_with_an_offset_and_three_tasks():
    """Each task's kernel estimate is its own QuantReg's (the offset taken from y)."""
    parts = [_quantile_data(s, n) for s, n in ((1, 200), (2, 250), (3, 300))]
    Xs, ys = [p[0] for p in parts], [p[1] for p in parts]
    offs = [0.3 * np.arange(len(y)) / len(y) for y in ys]
    model = rm.MultiTaskRegressor("l21", alpha=0.0, loss=rm.Quantile(0.5),
                                  tol=1e-12).fit(Xs, ys, offset=offs)
    table = model.coef_table(Xs, ys, offset=offs)
    for t in range(3):
        ref = sm.QuantReg(ys[t] - offs[t], sm.add_constant(Xs[t], prepend=False)).fit(
            q=0.5, p_tol=1e-12, max_iter=10000)
        rows = table[table["task"] == t]
        np.testing.assert_allclose(rows["coef"], ref.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rows["std_error"], ref.bse, rtol=1e-5)


def test_bootstrap_is_reproducible_and_near_the_kernel():
    """The pairs bootstrap: the same seed, the same errors; within 35 % of the kernel's with
    100 resamples of 300 rows (the bootstrap's own error at that size is about 10 %, the
    kernel's bandwidth error as large)."""
    X, y = _quantile_data(4)
    model = rm.MultiTaskRegressor("l1", alpha=0.0, loss=rm.Quantile(0.5), tol=1e-10).fit(X, y)
    a = model.coef_table(X, y, method="bootstrap", n_boot=100, random_state=0)
    b = model.coef_table(X, y, method="bootstrap", n_boot=100, random_state=0)
    np.testing.assert_array_equal(a["std_error"], b["std_error"])
    assert (a["method"] == "bootstrap").all()
    kernel = model.coef_table(X, y)["std_error"].to_numpy()
    np.testing.assert_allclose(a["std_error"], kernel, rtol=0.35)


def test_huber_sandwich_is_the_m_estimators():
    """Huber: A^{-1} B A^{-1} with A = Z' diag(psi') Z, B = Z' diag(psi^2) Z at the fit's
    delta, and a score equation that holds at the fit."""
    X, y = _quantile_data(5)
    model = rm.MultiTaskRegressor("l1", alpha=0.0, loss=rm.Huber(delta=1.0),
                                  tol=1e-12).fit(X, y)
    Z = np.column_stack([X, np.ones(len(y))])
    r = y - Z @ np.append(model.coef_, model.intercept_)
    psi = np.clip(r, -1.0, 1.0)
    assert np.max(np.abs(Z.T @ psi)) < 1e-6
    Ai = np.linalg.inv(Z.T @ (Z * (np.abs(r) <= 1.0)[:, None]))
    V = Ai @ (Z.T @ (Z * psi[:, None] ** 2)) @ Ai
    table = model.coef_table(X, y)
    assert (table["method"] == "sandwich").all()
    np.testing.assert_allclose(table["std_error"], np.sqrt(np.diag(V)), rtol=1e-10)


def test_bootstrap_keeps_excluded_features_and_per_task_settings():
    """A model with a feature excluded by name, task weights and factors per task: each
    bootstrap refit is the task's own unpenalized fit, the excluded feature held at 0."""
    import pandas as pd

    rng = np.random.default_rng(6)
    X = pd.DataFrame(rng.standard_normal((160, 3)), columns=["a", "b", "c"])
    task = np.repeat([0, 1], 80)
    y = X["a"].to_numpy() + rng.standard_t(3, 160)
    model = rm.MultiTaskRegressor("l1", alpha=0.0, loss=rm.Quantile(0.5), tol=1e-10,
                                  exclude=["c"], task_weight=[1.0, 2.0],
                                  penalty_factor=np.ones((3, 2))).fit(X, y, task=task)
    table = model.coef_table(X, y, task=task, method="bootstrap", n_boot=30, random_state=1)
    assert np.isnan(table[table["feature"] == "c"]["std_error"]).all()
    assert np.isfinite(table[table["feature"] != "c"]["std_error"]).all()
