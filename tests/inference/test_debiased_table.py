"""``coef_table`` and ``wald_test`` of penalized L1 / L2,1 fits: the debiased method, checked
against the numerical core it routes to, with refusals, the report and the command line."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.inference.debiased import TaskBlock, debiased_tasks, group_chi2

Z95 = 1.959963984540054


def _problem(seed=0, n=150, p=40, T=3, shared=False):
    rng = np.random.default_rng(seed)
    W = np.zeros((p, T))
    W[[0, 8, 16, 24, 32]] = rng.choice([-1.0, 1.0], (5, T)) * rng.uniform(0.5, 1.5, (5, T))
    Xs = [rng.standard_normal((n, p))] * T if shared else \
        [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [X @ W[:, t] + rng.standard_normal(n) for t, X in enumerate(Xs)]
    return Xs, ys, W


@pytest.fixture(scope="module")
def l21_fit():
    Xs, ys, W = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = rm.MultiTaskRegressorCV("l21", cv=5, alphas=20).fit(Xs, ys)
    return search, Xs, ys, W


def test_the_table_is_the_debiased_core(l21_fit):
    """The table's coefficients and standard errors equal ``debiased_tasks`` on the fit's own
    blocks (one nodewise precision per task, its dispersion estimated)."""
    search, Xs, ys, W = l21_fit
    table = rm.coef_table(search, Xs, ys)
    assert set(table["method"]) == {"debiased"}
    feats = table[table["feature"] != "intercept"]
    assert feats["penalized"].all() and not table[table["feature"] == "intercept"][
        "penalized"].any()
    model = search.best_estimator_
    blocks = [TaskBlock(X, np.ones(len(X)), X @ model.coef_[t] + model.intercept_[t] - ys[t],
                        model.coef_[t]) for t, X in enumerate(Xs)]
    B, SE = debiased_tasks(blocks, shared_design=False)
    np.testing.assert_allclose(feats["coef"].to_numpy().reshape(3, 40), B.T, rtol=1e-10)
    np.testing.assert_allclose(feats["std_error"].to_numpy().reshape(3, 40), SE.T, rtol=1e-10)
    # the interval is b +- z se, and the intercepts (partialled out) carry no interval
    np.testing.assert_allclose(feats["ci_upper"] - feats["coef"], Z95 * feats["std_error"],
                               rtol=1e-9)
    icpt = table[table["feature"] == "intercept"]
    np.testing.assert_allclose(icpt["coef"], model.intercept_)
    assert icpt["std_error"].isna().all()
    # on this data set: 115 of 120 intervals hold the truth
    covered = (feats["ci_lower"].to_numpy() <= W.T.ravel()) & (
        W.T.ravel() <= feats["ci_upper"].to_numpy())
    assert covered.mean() >= 0.9


def test_the_wald_test_of_a_row_is_the_group_test(l21_fit):
    """"Feature j is zero in every task" on separate rows: the sum over tasks of z^2
    (``group_chi2``), chi-square with T degrees of freedom."""
    search, Xs, ys, W = l21_fit
    table = rm.coef_table(search, Xs, ys)
    feats = table[table["feature"] != "intercept"]
    B = feats["coef"].to_numpy().reshape(3, 40).T
    SE = feats["std_error"].to_numpy().reshape(3, 40).T
    for j in (0, 1):
        wald = rm.wald_test(search, Xs, ys, features=[j], hypothesis="zero")
        group = group_chi2(B, SE, rows=[j])
        assert wald.df == 3 and wald.method == "debiased"
        np.testing.assert_allclose(wald.statistic, group.statistic, rtol=1e-8)
    assert rm.wald_test(search, Xs, ys, features=[0]).p_value < 1e-10  # in the support
    assert rm.wald_test(search, Xs, ys, features=[1]).p_value > 1e-3  # out of it


def test_a_shared_design_fits_one_precision(monkeypatch):
    """One design and the squared loss: one nodewise precision for every task."""
    from regmtl.inference import estimate

    Xs, ys, W = _problem(seed=1, shared=True)
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs[0], np.column_stack(ys))
    calls = []
    real = estimate.nodewise_precision
    monkeypatch.setattr(estimate, "nodewise_precision",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    table = model.coef_table(Xs[0], np.column_stack(ys))
    assert len(calls) == 1
    separate = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, ys).coef_table(Xs, ys)
    np.testing.assert_allclose(table["coef"], separate["coef"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(table["std_error"], separate["std_error"], rtol=1e-6)


def test_l1_logistic_is_debiased_with_dispersion_one():
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((300, 10)) for _ in range(2)]
    ys = [(rng.random(300) < 1 / (1 + np.exp(-(X[:, 0] - X[:, 1])))).astype(int) for X in Xs]
    model = rm.MultiTaskClassifier("l1", alpha=0.01).fit(Xs, ys)
    table = model.coef_table(Xs, ys)
    assert set(table["method"]) == {"debiased"} and np.isfinite(
        table[table["feature"] != "intercept"]["std_error"]).all()
    # the first two features' intervals leave out 0, with the right signs
    t0 = table[(table["task"] == 0) & table["feature"].isin(["x0", "x1"])]
    assert (t0["ci_lower"].iloc[0] > 0) and (t0["ci_upper"].iloc[1] < 0)


def test_refusals_name_the_way_out():
    rng = np.random.default_rng(3)
    Xs = [rng.standard_normal((60, 5)) for _ in range(2)]
    ys = [X[:, 0] + rng.standard_normal(60) for X in Xs]
    q = rm.MultiTaskRegressor("l1", alpha=0.05, loss="quantile").fit(Xs, ys)
    with pytest.raises(ValueError, match="pinball loss has no curvature.*stability_selection"):
        q.coef_table(Xs, ys)
    ridge = rm.MultiTaskRegressor("l2", alpha=0.1).fit(Xs, ys)
    with pytest.raises(ValueError, match="no valid confidence intervals.*stability_selection"):
        ridge.coef_table(Xs, ys)
    with pytest.raises(ValueError, match="method='fisher' applies to a fit with no active "
                                         "penalty"):
        rm.MultiTaskRegressor("l1", alpha=0.05).fit(Xs, ys).coef_table(Xs, ys,
                                                                        method="fisher")


def test_the_report_and_the_command_line(l21_fit, tmp_path, capsys):
    from regmtl.cli import main
    from regmtl.coefficients_report import coefficient_report

    search, Xs, ys, W = l21_fit
    stable = rm.stability_selection(rm.MultiTaskRegressor("l21"), Xs, ys, n_pairs=5,
                                    random_state=0)
    rep = coefficient_report(search.best_estimator_, Xs, ys, stability=stable,
                             data_name="toy", created="2026-11-30")
    html = rep.write(tmp_path / "coef.html").read_text(encoding="utf-8")
    assert "debiased" in html and "Stability selection" in html
    assert html.count("<img") == 2 and "x0" in html
    # the command line: a table file, --coef-table as CSV and as a report
    rows = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        frame = pd.DataFrame(X[:, :8], columns=[f"f{j}" for j in range(8)])
        frame["task"], frame["y"] = f"t{t}", y
        rows.append(frame)
    data = tmp_path / "data.csv"
    pd.concat(rows).to_csv(data, index=False)
    csv = tmp_path / "out" / "table.csv"
    code = main(["fit", str(data), "--task-col", "task", "--target", "y", "--cv", "3",
                 "--out", str(tmp_path / "m.npz"), "--coef-table", str(csv)])
    assert code == 0
    said = capsys.readouterr().out
    assert "coefficient table (debiased):" in said and "95% intervals leave out 0" in said
    table = pd.read_csv(csv)
    assert len(table) == 3 * 9 and set(table["task"]) == {"t0", "t1", "t2"}
    report = tmp_path / "out" / "table.html"
    assert main(["fit", str(data), "--task-col", "task", "--target", "y", "--cv", "3",
                 "--out", str(tmp_path / "m2.npz"), "--coef-table", str(report)]) == 0
    assert "Coefficients and their intervals" in report.read_text(encoding="utf-8")


def test_the_nodewise_penalty_is_chosen_by_the_user(l21_fit):
    """``nodewise="universal"`` (the fast rule for hundreds of features) and a number reach
    the precision; the default is cross-validation."""
    from regmtl.inference.debiased import nodewise_precision

    search, Xs, ys, W = l21_fit
    fast = search.coef_table(Xs, ys, nodewise="universal")
    model = search.best_estimator_
    X = Xs[0]
    s = X @ model.coef_[0] + model.intercept_[0] - ys[0]
    precision = nodewise_precision(X, np.ones(len(X)), True, lam="universal")
    from regmtl.inference.debiased import debias

    b, se, _ = debias(TaskBlock(X, np.ones(len(X)), s, model.coef_[0]), precision)
    got = fast[(fast["task"] == 0) & (fast["feature"] != "intercept")]
    np.testing.assert_allclose(got["coef"], b, rtol=1e-10)
    np.testing.assert_allclose(got["std_error"], se, rtol=1e-10)
    assert rm.wald_test(search, Xs, ys, features=[0], nodewise=0.05).df == 3
    with pytest.raises(ValueError, match="lam"):
        search.coef_table(Xs, ys, nodewise="often")


def test_a_feature_constant_within_a_task_has_no_interval_there():
    """A task-level feature (School's school-level columns) is absorbed by its task's
    intercept: NaN with a warning naming it, the other coefficients as without it."""
    rng = np.random.default_rng(4)
    Xs = [rng.standard_normal((120, 6)) for _ in range(3)]
    for t, X in enumerate(Xs):
        X[:, 5] = t + 1.0  # constant within each task
    ys = [X[:, 0] - X[:, 1] + rng.standard_normal(120) for X in Xs]
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, ys)
    with pytest.warns(UserWarning, match=r"3 coefficient\(s\) in 3 task\(s\) have no debiased "
                                         r"interval.*task 0: \['x5'\]"):
        table = model.coef_table(Xs, ys, nodewise="universal")
    x5 = table[table["feature"] == "x5"]
    assert x5["std_error"].isna().all()
    rest = table[~table["feature"].isin(["x5", "intercept"])]
    assert np.isfinite(rest["std_error"]).all()
    alone = rm.MultiTaskRegressor("l21", alpha=0.05).fit([X[:, :5] for X in Xs], ys)
    ref = alone.coef_table([X[:, :5] for X in Xs], ys, nodewise="universal")
    ref = ref[ref["feature"] != "intercept"]
    # the penalized fits differ slightly (x5 moves the intercept only), so 1e-6
    np.testing.assert_allclose(rest["std_error"], ref["std_error"], rtol=1e-6)
