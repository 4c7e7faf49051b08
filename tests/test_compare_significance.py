"""Is a model's gain beyond noise? ``Comparison.tests``, the verdict, and the figure."""

from __future__ import annotations

import html

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from scipy import stats  # noqa: E402

from regmtl.compare import (  # noqa: E402
    _TEST_COLUMNS,
    Comparison,
    _paired_tests,
    _significance,
    _summarize,
    compare,
)
from regmtl.datasets import make_multitask_regression  # noqa: E402
from regmtl.plotting import figure_to_png, plot_comparison  # noqa: E402
from regmtl.report import comparison_report, comparison_verdict  # noqa: E402

ROLES = {"base": "independent", "other": "independent", "mtl": "multi-task"}

# five splits (rows) of three models' headline scores, and four tasks' split averages
SPLITS = pd.DataFrame({"base": [0.71, 0.74, 0.70, 0.76, 0.73],
                       "other": [0.70, 0.73, 0.71, 0.74, 0.72],
                       "mtl": [0.73, 0.75, 0.74, 0.77, 0.76]})
TASKS = pd.DataFrame({"base": [0.60, 0.80, 0.75, 0.70],
                      "other": [0.61, 0.78, 0.75, 0.69],
                      "mtl": [0.66, 0.79, 0.80, 0.78]}, index=["a", "b", "c", "d"])


def test_corrected_t_and_interval_by_hand():
    """Nadeau & Bengio: the variance of the mean difference is (1/J + n2/n1) s^2, J - 1
    degrees of freedom; with n2/n1 = 0 it is scipy's paired t-test."""
    ratio = 1 / 3
    tests = _paired_tests(SPLITS, TASKS, "base", ROLES, ratio).set_index("model")
    d = SPLITS["mtl"].to_numpy() - SPLITS["base"].to_numpy()  # 0.02 0.01 0.04 0.01 0.03
    J = len(d)
    se = np.sqrt((1 / J + ratio) * d.var(ddof=1))
    t = d.mean() / se
    half = stats.t.ppf(0.975, J - 1) * se
    row = tests.loc["mtl"]
    assert row["difference"] == pytest.approx(0.022, abs=1e-12)
    assert row["t"] == pytest.approx(t, rel=1e-12)
    assert row["df"] == J - 1 and row["n_splits"] == J and row["test_train_ratio"] == ratio
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), J - 1), rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half),
                                                            rel=1e-12)
    # the correction widens the interval: sqrt((1/5 + 1/3) / (1/5)) = 1.63 times the paired t's
    naive = _paired_tests(SPLITS, TASKS, "base", ROLES, 0.0).set_index("model").loc["mtl"]
    assert (row["ci_high"] - row["ci_low"]) / (naive["ci_high"] - naive["ci_low"]) == \
        pytest.approx(np.sqrt((1 / 5 + 1 / 3) / (1 / 5)), rel=1e-12)
    paired = stats.ttest_rel(SPLITS["mtl"], SPLITS["base"])
    assert naive["t"] == pytest.approx(paired.statistic, rel=1e-10)
    assert naive["p_value"] == pytest.approx(paired.pvalue, rel=1e-10)
    ci = paired.confidence_interval(0.95)
    assert (naive["ci_low"], naive["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    # the model's own score interval: the same corrected t on its split scores
    s = SPLITS["mtl"].to_numpy()
    half = stats.t.ppf(0.975, J - 1) * np.sqrt((1 / J + ratio) * s.var(ddof=1))
    assert (row["score_low"], row["score"], row["score_high"]) == pytest.approx(
        (s.mean() - half, s.mean(), s.mean() + half), rel=1e-12)
    # the baseline against itself: no difference, p = 1
    base = tests.loc["base"]
    assert (base["difference"], base["ci_low"], base["ci_high"], base["p_value"]) == (0, 0, 0, 1)
    assert (base["tasks_better"], base["tasks_worse"], base["wilcoxon_p"]) == (0, 0, 1.0)
    assert tests.columns.tolist() == _TEST_COLUMNS[1:]
    assert tests["baseline"].eq("base").all() and tests.loc["mtl", "role"] == "multi-task"


def test_tasks_better_worse_and_wilcoxon_as_scipy():
    tests = _paired_tests(SPLITS, TASKS, "base", ROLES, 0.2).set_index("model")
    for name in ("mtl", "other"):
        e = TASKS[name] - TASKS["base"]
        row = tests.loc[name]
        assert row["tasks_better"] == int((e > 0).sum())
        assert row["tasks_worse"] == int((e < 0).sum())
        assert row["n_tasks"] == 4
        assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(e).pvalue, rel=1e-12)
    assert (tests.loc["mtl", "tasks_better"], tests.loc["mtl", "tasks_worse"]) == (3, 1)
    # "other" ties on task c: the zero is dropped, as scipy's default does
    assert (tests.loc["other", "tasks_better"], tests.loc["other", "tasks_worse"]) == (1, 2)


def test_nan_scores_leave_their_pairs_out():
    splits = SPLITS.copy()
    splits.loc[2, "mtl"] = np.nan
    tasks = TASKS.copy()
    tasks.loc["b", "mtl"] = np.nan
    row = _paired_tests(splits, tasks, "base", ROLES, 0.2).set_index("model").loc["mtl"]
    d = (SPLITS["mtl"] - SPLITS["base"]).drop(index=2).to_numpy()
    se = np.sqrt((1 / 4 + 0.2) * d.var(ddof=1))
    assert row["n_splits"] == 4 and row["df"] == 3
    assert row["t"] == pytest.approx(d.mean() / se, rel=1e-12)
    assert row["score"] == pytest.approx(SPLITS["mtl"].drop(index=2).mean(), rel=1e-12)
    e = (TASKS["mtl"] - TASKS["base"]).drop(index="b")
    assert row["n_tasks"] == 3
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(e).pvalue, rel=1e-12)
    # a model with no score at all: nothing is tested, nothing invented
    splits["mtl"] = np.nan
    tasks["mtl"] = np.nan
    row = _paired_tests(splits, tasks, "base", ROLES, 0.2).set_index("model").loc["mtl"]
    assert row["n_splits"] == 0 and row["n_tasks"] == 0
    assert row[["score", "difference", "t", "p_value", "wilcoxon_p"]].isna().all()


def test_one_split_has_no_test_and_a_constant_shift_is_certain():
    one = _paired_tests(SPLITS.iloc[:1], TASKS, "base", ROLES, 0.3).set_index("model")
    row = one.loc["mtl"]
    assert row["difference"] == pytest.approx(0.02) and row["n_splits"] == 1
    assert row[["ci_low", "ci_high", "t", "df", "p_value", "score_low"]].isna().all()
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(TASKS["mtl"] - TASKS["base"])
                                              .pvalue)
    shifted = SPLITS.assign(mtl=SPLITS["base"] + 0.01)  # the same gain on every split
    row = _paired_tests(shifted, TASKS, "base", ROLES, 0.3).set_index("model").loc["mtl"]
    assert row["t"] == np.inf and row["p_value"] == 0.0
    assert row["ci_low"] == pytest.approx(0.01) and row["ci_high"] == pytest.approx(0.01)


# --------------------------------------------------------------------- synthetic comparisons
def _synthetic(gains: dict[str, np.ndarray], n_splits: int = 10, n_tasks: int = 12,
               seed: int = 0) -> Comparison:
    """A comparison whose models score the baseline's per-task scores plus ``gains[m]`` (per
    split, or per split and task), made by compare's own summary and tests."""
    rng = np.random.default_rng(seed)
    base = 0.7 + 0.03 * rng.standard_normal((n_splits, n_tasks))  # split-to-split noise
    names = ["ridge (independent)", "lasso (independent)", *gains]
    roles = {"ridge (independent)": "independent", "lasso (independent)": "independent",
             **{m: "multi-task" for m in gains}}
    offsets = {"ridge (independent)": -0.05, "lasso (independent)": 0.0, **gains}
    offsets = {m: np.broadcast_to(np.reshape(v, (n_splits, -1)) if np.ndim(v) == 1 else v,
                                  (n_splits, n_tasks)) for m, v in offsets.items()}
    rows = [{"model": m, "role": roles[m], "split": s, "task": f"t{t}", "n": 10,
             "explained_variance": base[s, t] + offsets[m][s, t]}
            for m in names for s in range(n_splits) for t in range(n_tasks)]
    scores = pd.DataFrame(rows)
    per_split = (scores.groupby(["model", "split"], sort=False)["explained_variance"].mean()
                 .reset_index().assign(fit_time=0.1))
    summary = _summarize(per_split, scores, pd.DataFrame({"model": names}), names, names[0],
                         "explained_variance", "regression")
    tests = _significance(per_split, scores, summary, roles, "explained_variance", 1 / 3)
    return Comparison(summary=summary, scores=scores, choices=pd.DataFrame({"model": names}),
                      kind="regression", baseline=names[0], metric="explained_variance",
                      n_splits=n_splits, split_kind="random",
                      task_names=[f"t{t}" for t in range(n_tasks)], feature_names=["x0"],
                      tests=tests)


def test_a_shift_far_above_noise_is_beyond_and_zero_mean_noise_is_within():
    rng = np.random.default_rng(1)
    comp = _synthetic({"MTL shifted": 0.02 + 0.002 * rng.standard_normal(10)})
    tests = comp.tests.set_index("model")
    # the strongest independent baseline is lasso (the best mean), not the first model
    assert comp.baseline == "ridge (independent)"
    assert set(tests["baseline"]) == {"lasso (independent)"}
    row = tests.loc["MTL shifted"]
    assert row["p_value"] < 1e-6 and row["ci_low"] > 0.015
    assert (row["tasks_better"], row["n_tasks"]) == (12, 12)
    # the differences are those of the summary's means
    means = comp.summary.set_index("model")["explained_variance_mean"]
    assert row["difference"] == pytest.approx(means["MTL shifted"]
                                              - means["lasso (independent)"], rel=1e-12)
    assert row["score"] == pytest.approx(means["MTL shifted"], rel=1e-12)
    verdict = comparison_verdict(comp)
    assert verdict.startswith(f"MTL shifted: EV {means['MTL shifted']:.4f} against "
                              f"{means['lasso (independent)']:.4f} for lasso (independent), "
                              f"the strongest independent baseline: {row['difference']:+.4f} "
                              f"(95% CI {row['ci_low']:+.4f} to {row['ci_high']:+.4f} over "
                              "10 splits, p < 0.001); better on 12 and worse on 0 of 12 tasks "
                              "(Wilcoxon p < 0.001). ")
    assert verdict.endswith("At the 0.05 level, the gain is beyond split-to-split noise "
                            "(p < 0.001).")

    # zero-mean noise on every split and task, as large as the shift above
    comp = _synthetic({"MTL noise": 0.02 * rng.standard_normal((10, 12))})
    row = comp.tests.set_index("model").loc["MTL noise"]
    assert row["p_value"] > 0.05 and row["ci_low"] < 0 < row["ci_high"]
    noun = "gain" if row["difference"] > 0 else "loss"
    verdict = comparison_verdict(comp)
    assert verdict.endswith(f"the strongest independent baseline: {row['difference']:+.4f} "
                            f"(95% CI {row['ci_low']:+.4f} to {row['ci_high']:+.4f} over 10 "
                            f"splits, p = {row['p_value']:.2g}); better on "
                            f"{row['tasks_better']} and worse on {row['tasks_worse']} of 12 "
                            f"tasks (Wilcoxon p = {row['wilcoxon_p']:.2g}). At the 0.05 "
                            f"level, the {noun} is within split-to-split noise.")


def test_a_loss_beyond_noise_and_the_best_model_being_the_baseline():
    comp = _synthetic({"MTL worse": np.full(10, -0.03) + 0.001 * np.arange(10)})
    verdict = comparison_verdict(comp)
    # lasso is the best model: the verdict is about the best of the others
    assert verdict.startswith("MTL worse: EV ") and ": -0.025" in verdict
    assert verdict.endswith("At the 0.05 level, the loss is beyond split-to-split noise "
                            "(p < 0.001).")


def test_a_difference_that_rounds_to_zero_is_neither_gain_nor_loss():
    comp = _synthetic({"MTL same": np.r_[-1e-6, np.zeros(9)]})
    verdict = comparison_verdict(comp)
    assert "the strongest independent baseline: +0.0000 (95% CI " in verdict
    assert verdict.endswith("At the 0.05 level, the difference is within split-to-split "
                            "noise.")


# --------------------------------------------------------------------- real comparisons
@pytest.fixture(scope="module")
def shared_support():
    """Few rows per task and a common sparse support: L2,1 far above independent ridge."""
    d = make_multitask_regression(12, 25, 60, n_informative=5, relatedness=0.9, noise=0.5,
                                  random_state=3)
    return compare(d.X, d.y, models=["ridge", "pooled", "l21"], splits=4, n_alphas=5, cv=2,
                   n_jobs=1, progress=False)


def test_compare_tests_every_model_against_the_strongest_independent(shared_support):
    comp = shared_support
    tests = comp.tests
    assert tests["model"].tolist() == comp.summary["model"].tolist()
    assert tests["role"].tolist() == ["independent", "pooled", "multi-task"]
    assert set(tests["baseline"]) == {"ridge (independent)"}
    # the split test pairs the splits' headline scores, whose means the summary shows
    means = comp.summary.set_index("model")["explained_variance_mean"]
    row = tests.set_index("model").loc["MTL L2,1"]
    assert row["difference"] == pytest.approx(means["MTL L2,1"] - means["ridge (independent)"],
                                              rel=1e-12)
    # 25 rows per task, 7 held out: n2/n1 = 7/18
    assert row["test_train_ratio"] == pytest.approx(7 / 18)
    by_task = comp.scores.groupby(["model", "task"])["explained_variance"].mean()
    e = by_task["MTL L2,1"] - by_task["ridge (independent)"]
    assert row["tasks_better"] == int((e > 0).sum()) == 12
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(e).pvalue, rel=1e-12)
    assert row["p_value"] < 0.05
    assert comparison_verdict(comp).endswith("the gain is beyond split-to-split noise "
                                             f"(p = {row['p_value']:.2g}).")


def test_report_shows_the_verdict_and_the_two_panel_figure(shared_support):
    comp = shared_support
    verdict = comparison_verdict(comp)
    rep = comparison_report(comp, created="2024-01-01")
    text = rep.to_html()
    body = text.split("<h2>Results</h2>", 1)[1].split("<table", 1)[0]
    assert "<strong>Best: MTL L2,1, EV " in body  # the headline stays, the verdict follows
    assert html.escape(verdict, quote=False) in body
    assert "0.05 level" in text.split("<h2>Results</h2>", 1)[0]  # the tests, said once
    captions = [b.caption for b in rep._blocks if b.kind == "figure"]
    assert any("difference to ridge (independent), the strongest independent baseline" in c
               for c in captions)


def test_figure_zoomed_scores_and_differences_around_zero(shared_support):
    comp = shared_support
    ax = plot_comparison(comp)
    fig = ax.figure
    assert len(fig.axes) == 2
    diff_ax = fig.axes[1]
    tests = comp.tests.set_index("model")
    # scores: the corrected intervals of the tests
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose([s[:, 0] for s in bars.lines[2][0].get_segments()],
                               tests[["score_low", "score_high"]].to_numpy())
    # differences: a line at 0, each model's interval, its p-value at the right
    assert 0.0 in [line.get_xdata()[0] for line in diff_ax.lines
                   if len(line.get_xdata()) == 2]
    lo, hi = diff_ax.get_xlim()
    assert lo < 0 < hi and hi > tests.loc["MTL L2,1", "ci_high"]
    labels = [t.get_text() for t in diff_ax.texts]
    assert labels == ["baseline", f"p = {tests.loc['pooled', 'p_value']:.2g}",
                      f"p = {tests.loc['MTL L2,1', 'p_value']:.2g}"]
    assert diff_ax.get_title() == "Difference to ridge (independent)"
    assert figure_to_png(ax, dpi=30).startswith(b"\x89PNG")


def test_figure_axis_zoomed_to_scores_in_a_tenth():
    summary = pd.DataFrame({"model": ["a (independent)", "b", "c"],
                            "auc_mean": [0.74, 0.77, 0.76], "auc_sd": [0.01, 0.012, 0.02]})
    tests = pd.DataFrame({"model": summary["model"], "baseline": "a (independent)",
                          "score_low": [0.72, 0.75, 0.71], "score_high": [0.76, 0.79, 0.80],
                          "difference": [0.0, 0.03, 0.02], "ci_low": [0.0, 0.02, -0.01],
                          "ci_high": [0.0, 0.04, 0.05], "p_value": [1.0, 0.001, 0.2]})
    ax = plot_comparison(summary, metric="auc", tests=tests, n_splits=10)
    assert not [c for c in ax.containers if isinstance(c, BarContainer)]
    lo, hi = ax.get_xlim()
    assert 0.69 < lo < 0.71 and 0.80 < hi < 0.82  # not from 0
    assert ax.get_xlabel() == "auc (mean, 95% interval over splits)"
    diff_ax = ax.figure.axes[1]
    (gain,) = [c for c in diff_ax.containers if isinstance(c, ErrorbarContainer)][:1]
    assert gain.lines[0].get_markerfacecolor() != "white"  # beyond noise: filled
    within = [c for c in diff_ax.containers if isinstance(c, ErrorbarContainer)][1]
    assert within.lines[0].get_markerfacecolor() == "white"
    # one Axes: the scores only; a pair: both panels
    from matplotlib.figure import Figure

    fig = Figure()
    one = fig.add_subplot()
    assert plot_comparison(summary, metric="auc", tests=tests, ax=one) is one
    assert len(fig.axes) == 1
    fig = Figure()
    pair = fig.subplots(1, 2)
    assert plot_comparison(summary, metric="auc", tests=tests, ax=pair) is pair[0]
    assert pair[1].get_title() == "Difference to a (independent)"
    with pytest.raises(ValueError, match="p_value"):
        plot_comparison(summary, metric="auc", tests=tests.drop(columns="p_value"))


def test_identical_models_two_tasks_and_one_split():
    """Edge cases through compare itself: a model identical to the baseline differs by
    exactly 0 (p = 1, within noise); two tasks; one split (no test over splits)."""
    d = make_multitask_regression(2, 30, 5, n_informative=3, random_state=0)
    comp = compare(d.X, d.y, models=["ridge", ("ridge again", "ridge"), "l21"], splits=3,
                   n_alphas=4, cv=2, n_jobs=1, progress=False)
    tests = comp.tests.set_index("model")
    assert set(tests["baseline"]) == {"ridge (independent)"}  # a tie: the first
    row = tests.loc["ridge again"]
    assert row["difference"] == 0.0 and row["p_value"] == 1.0 and row["t"] == 0.0
    assert (row["tasks_better"], row["tasks_worse"], row["n_tasks"]) == (0, 0, 2)
    assert row["wilcoxon_p"] == 1.0
    e = (comp.scores.groupby(["model", "task"])["explained_variance"].mean()["MTL L2,1"]
         - comp.scores.groupby(["model", "task"])["explained_variance"].mean()
         ["ridge (independent)"])
    assert tests.loc["MTL L2,1", "wilcoxon_p"] == pytest.approx(stats.wilcoxon(e).pvalue)
    row = tests.loc["MTL L2,1"]
    noun = "gain" if row["difference"] > 0 else "loss"
    expected = (f"the {noun} is beyond split-to-split noise (p = {row['p_value']:.2g})."
                if row["p_value"] < 0.05 else f"the {noun} is within split-to-split noise.")
    assert comparison_verdict(comp).endswith(f"At the 0.05 level, {expected}")

    one = compare(d.X, d.y, models=["ridge", "l21"], splits=1, n_alphas=4, cv=2, n_jobs=1,
                  progress=False)
    row = one.tests.set_index("model").loc["MTL L2,1"]
    assert row["n_splits"] == 1 and np.isnan(row["p_value"]) and np.isnan(row["ci_low"])
    verdict = comparison_verdict(one)
    noun = "gain" if row["difference"] > 0 else "loss"
    assert f"{row['difference']:+.4f} (over 1 split: no test over splits)" in verdict
    assert verdict.endswith(f"With fewer than 2 splits, whether the {noun} is beyond "
                            "split-to-split noise cannot be tested; run more splits.")
    assert "over 1 split" in html.unescape(comparison_report(one, created="d").to_html())


def test_without_an_independent_model_there_is_no_verdict():
    d = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    comp = compare(d.X, d.y, models=["pooled", "l21"], splits=2, n_alphas=4, cv=2, n_jobs=1,
                   progress=False)
    assert comp.tests.empty and comp.tests.columns.tolist() == _TEST_COLUMNS
    assert comparison_verdict(comp) is None
    rep = comparison_report(comp, created="d")  # no differences panel, no verdict
    assert "strongest independent" not in rep.to_html()
    assert len(plot_comparison(comp).figure.axes) == 1


def test_cli_prints_the_verdict(tmp_path, capsys):
    from regmtl.cli import main

    d = make_multitask_regression(3, 30, 4, n_informative=2, random_state=0)
    rows = [{"task": f"t{t}", "y": y, **{f"x{j}": v for j, v in enumerate(x)}}
            for t, (X, ys) in enumerate(zip(d.X, d.y, strict=True))
            for x, y in zip(X, ys, strict=True)]
    path = tmp_path / "small.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["compare", str(path), "--task-col", "task", "--target", "y", "--splits", "2",
                 "--models", "ridge,l21", "--n-alphas", "4", "--n-jobs", "1",
                 "--no-report"]) == 0
    out = capsys.readouterr().out
    verdict = [ln for ln in out.splitlines() if "the strongest independent baseline" in ln]
    assert len(verdict) == 1 and verdict[0].startswith("verdict: MTL L2,1: EV ")
    assert "over 2 splits, p = " in verdict[0] and "At the 0.05 level" in verdict[0]
