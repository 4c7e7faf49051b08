"""Complementary-pairs stability selection (``regmtl.stability_selection``).

The acceptance problem: 10 tasks of 60 rows share 5 of 60 features; the design is standard
Gaussian, the 5 shared rows of W are ``N(0, 1) + sign * 1`` (a random sign per entry), the
noise has standard deviation 1.
"""

from __future__ import annotations

import warnings

import joblib
import matplotlib
import numpy as np
import pytest

import regmtl as rm
from regmtl.selection.stability import (
    complementary_halves,
    mb_bound,
    selection_unit,
    unimodal_bound,
)

matplotlib.use("Agg")


def _shared_support(T=10, n=60, p=60, k=5, seed=0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    W = np.zeros((p, T))
    W[:k] = rng.standard_normal((k, T)) + np.sign(rng.standard_normal((k, T)))
    ys = [X @ W[:, t] + rng.standard_normal(n) for t, X in enumerate(Xs)]
    return Xs, ys


def _small(T=3, n=24, p=12, seed=1):
    return _shared_support(T=T, n=n, p=p, k=3, seed=seed)


# ---------------------------------------------------------------------------- acceptance
def test_l21_selects_the_shared_features_with_its_bound():
    Xs, ys = _shared_support()
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys,
                                 random_state=0)
    true = {f"x{j}" for j in range(5)}
    assert true <= set(res.selected_)
    assert len(set(res.selected_) - true) <= 2
    assert res.unit == "feature" and res.n_units == 60 and res.n_pairs == 50
    assert len(res.halves) == 100
    # the bounds, from the returned q, threshold and p
    assert np.isfinite(res.bound) and res.bound > 0
    assert res.bound == pytest.approx(res.q**2 / ((2 * res.threshold - 1) * 60))
    assert res.q <= np.sqrt(0.8 * 60) + 1e-12
    assert res.bound_unimodal == pytest.approx(
        res.q**2 / 60 / (2 * (2 * res.threshold - 1 - 1 / 100)))
    # q is the union's average size at alpha_min, the end of the range used
    k = int(np.flatnonzero(res.alphas == res.alpha_min)[0])
    assert res.q == res.n_selected_path[k]
    assert res.probabilities_.shape == (20, 60)
    top = res.probabilities_.iloc[:k + 1].max(axis=0)
    np.testing.assert_array_equal(top.to_numpy(), res.max_probabilities_.to_numpy())
    assert res.selected_ == [c for c in top.index if top[c] >= res.threshold]


def test_l1_selects_feature_task_entries():
    Xs, ys = _shared_support(T=4, n=50, p=20, k=3, seed=2)
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l1"), Xs, ys, n_pairs=10,
                                 random_state=0)
    assert res.unit == "feature_task" and res.n_units == 20 * 4
    assert res.support_.shape == (20, 4)
    assert res.max_probabilities_.shape == (20, 4)
    assert res.probabilities_.columns.names == ["task", "feature"]
    assert res.probabilities_.shape == (20, 80)
    assert all(isinstance(s, tuple) and s[1] in range(4) for s in res.selected_)
    assert {f for f, _ in res.selected_} <= {"x0", "x1", "x2"}
    # most of the 12 true entries, within q <= sqrt(0.8 * 80) selected per half-sample fit
    assert len(res.selected_) >= 6
    # the tables agree: column (task, feature) of the path, entry (feature, task) of the max
    for f, t in res.selected_:
        assert res.max_probabilities_.loc[f, t] >= res.threshold
        assert res.probabilities_[(t, f)].max() >= res.threshold
    assert res.q <= np.sqrt(64)
    assert res.bound == pytest.approx(res.q**2 / ((2 * res.threshold - 1) * 80))


# ---------------------------------------------------------------------------- independent check
def test_probabilities_match_a_direct_loop_of_fits_on_the_same_halves():
    Xs, ys = _small()
    est = rm.MultiTaskRegressor(penalty="l21", tol=1e-10, max_iter=5000)
    res = rm.stability_selection(est, Xs, ys, n_pairs=4, alphas=6, eps=0.1, random_state=3)
    indptr = np.concatenate([[0], np.cumsum([len(y) for y in ys])])
    for k in (1, 3, 5):
        alpha = float(res.alphas[k])
        counts = np.zeros(12)
        for half in res.halves:
            rows = [half[(half >= indptr[t]) & (half < indptr[t + 1])] - indptr[t]
                    for t in range(3)]
            assert all(len(r) == 12 for r in rows)
            fit = rm.MultiTaskRegressor(penalty="l21", alpha=alpha, tol=1e-10,
                                        max_iter=5000).fit(
                [X[r] for X, r in zip(Xs, rows, strict=True)],
                [y[r] for y, r in zip(ys, rows, strict=True)])
            counts += np.any(fit.coef_ != 0, axis=0)
        np.testing.assert_allclose(res.probabilities_.iloc[k].to_numpy(), counts / 8)


def test_halves_are_complementary_and_stratified():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 4)) for n in (9, 12)]
    ys = [np.r_[np.zeros(n // 3), np.ones(n - n // 3)] for n in (9, 12)]
    data = rm.as_task_data(Xs, ys, numeric_y=False)
    halves = complementary_halves(data, 5, stratify=True, random_state=0)
    assert len(halves) == 10
    labels = np.concatenate(ys)
    for a, b in zip(halves[0::2], halves[1::2], strict=True):
        assert np.intersect1d(a, b).size == 0
        for h in (a, b):
            assert np.sum(h < 9) == 4 and np.sum(h >= 9) == 6  # floor(n_t / 2) per task
            for lo, hi in ((0, 9), (9, 21)):  # both classes in every task's half
                assert set(labels[h[(h >= lo) & (h < hi)]]) == {0.0, 1.0}
    again = complementary_halves(data, 5, stratify=True, random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(halves, again, strict=True))


def test_classifier_and_shared_design_run():
    Xs, ys = _small(n=40)
    labels = [np.where(y > np.median(y), "up", "down") for y in ys]
    res = rm.stability_selection(rm.MultiTaskClassifier(penalty="l21"), Xs, labels,
                                 n_pairs=3, alphas=5, eps=0.2, random_state=0)
    assert res.probabilities_.shape == (5, 12)
    # measured: x0 0.83, x1 1.0, x2 0.5 (the three informative ones), every other 0
    prob = res.max_probabilities_.to_numpy()
    assert prob[:3].min() >= 0.5 and prob[3:].max() == 0.0
    assert res.selected_ == ["x0", "x1"]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8))
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + 0.1 * rng.standard_normal((40, 3))
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), X, Y, n_pairs=3,
                                 random_state=0)
    for h in res.halves:  # the same shared rows in every task
        parts = [h[(h >= 40 * t) & (h < 40 * (t + 1))] - 40 * t for t in range(3)]
        assert all(np.array_equal(parts[0], q) for q in parts)
    assert {"x0", "x1"} <= set(res.selected_)


def test_long_form_gives_the_lists_result():
    pd = pytest.importorskip("pandas")
    Xs, ys = _small()
    df = pd.DataFrame(np.vstack(Xs), columns=[f"f{j}" for j in range(12)])
    task = np.repeat(["a", "b", "c"], 24)
    kw = dict(n_pairs=3, random_state=0)
    long = rm.stability_selection(rm.MultiTaskRegressor(penalty="l1"), df, np.concatenate(ys),
                                  task=task, **kw)
    lists = rm.stability_selection(rm.MultiTaskRegressor(penalty="l1"), Xs, ys, **kw)
    np.testing.assert_array_equal(long.probabilities_.to_numpy(),
                                  lists.probabilities_.to_numpy())
    assert long.tasks == ["a", "b", "c"] and long.feature_names[0] == "f0"
    assert [(f"f{f[1:]}", "abc"[t]) for f, t in lists.selected_] == long.selected_


# ---------------------------------------------------------------------------- bounds
def test_bound_formulas_and_threshold_from_a_target():
    assert mb_bound(5.0, 0.75, 50) == pytest.approx(25 / 25)
    # Shah and Samworth (unimodal): above 3/4 and at or below it
    assert unimodal_bound(5.0, 0.9, 50, 50) == pytest.approx(
        4 * (1 - 0.9 + 1 / 100) / (1 + 1 / 50) * 25 / 50)
    assert unimodal_bound(5.0, 0.7, 50, 50) == pytest.approx(
        1 / (2 * (2 * 0.7 - 1 - 1 / 100)) * 25 / 50)
    assert np.isnan(unimodal_bound(40.0, 0.55, 50, 50))  # theta = 0.8: below its range
    assert unimodal_bound(5.0, 0.9, 50, 50) < mb_bound(5.0, 0.9, 50)
    Xs, ys = _small()
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, n_pairs=3,
                                 expected_false=1.0, random_state=0)
    assert res.threshold == pytest.approx(0.5 * (1 + res.q**2 / 12))
    assert res.bound == pytest.approx(1.0)


# ---------------------------------------------------------------------------- where it runs
def test_same_result_for_any_n_jobs():
    Xs, ys = _small()
    kw = dict(n_pairs=4, alphas=8, random_state=5)
    one = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, n_jobs=1, **kw)
    two = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, n_jobs=2, **kw)
    np.testing.assert_array_equal(one.probabilities_.to_numpy(), two.probabilities_.to_numpy())
    assert one.selected_ == two.selected_ and one.q == two.q
    other = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys,
                                   **{**kw, "random_state": 6})
    assert not all(np.array_equal(a, b) for a, b in zip(one.halves, other.halves,
                                                        strict=True))


def test_dask_cluster_gives_the_in_memory_result():
    distributed = pytest.importorskip("distributed")
    Xs, ys = _small()
    kw = dict(n_pairs=4, alphas=8, random_state=5)
    here = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=":0") as cluster,
              distributed.Client(cluster) as client):
            on_client = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys,
                                               client=client, **kw)
            with joblib.parallel_backend("dask"):
                on_backend = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs,
                                                    ys, n_jobs=-1, **kw)
    for res in (on_client, on_backend):
        np.testing.assert_array_equal(here.probabilities_.to_numpy(),
                                      res.probabilities_.to_numpy())
        assert res.selected_ == here.selected_ and res.bound == here.bound


# ---------------------------------------------------------------------------- plot
def test_plot_draws_a_line_per_feature_and_the_threshold():
    Xs, ys = _small()
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, n_pairs=3,
                                 random_state=0)
    ax = res.plot()
    assert len(ax.lines) == 12 + 1
    threshold = ax.lines[-1]
    assert np.allclose(threshold.get_ydata(), res.threshold)
    grey = matplotlib.colors.to_rgba("0.6")
    coloured = [ln for ln in ax.lines[:-1] if matplotlib.colors.to_rgba(ln.get_color()) != grey]
    assert len(coloured) == len(res.selected_)
    assert res.selected_
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        *res.selected_, f"threshold {res.threshold:g}"}
    np.testing.assert_allclose(ax.lines[0].get_xdata(), res.alphas)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("penalty, word", [("l2", "selects no features"),
                                           ("trace", "subspace")])
def test_penalties_without_a_support_are_refused(penalty, word):
    Xs, ys = _small()
    with pytest.raises(ValueError, match=word) as err:
        rm.stability_selection(rm.MultiTaskRegressor(penalty=penalty), Xs, ys)
    assert "'l21'" in str(err.value)  # the alternative


def test_clear_errors():
    Xs, ys = _small()
    est = rm.MultiTaskRegressor(penalty="l21")
    for bad in (0.5, 0.3, 1.2, True):
        with pytest.raises(ValueError, match=r"threshold.*\(0\.5, 1\]"):
            rm.stability_selection(est, Xs, ys, threshold=bad)
    with pytest.raises(ValueError, match="not both"):
        rm.stability_selection(est, Xs, ys, threshold=0.8, expected_false=1.0)
    with pytest.raises(ValueError, match="n_pairs"):
        rm.stability_selection(est, Xs, ys, n_pairs=0)
    with pytest.raises(ValueError, match="cannot be met"):
        rm.stability_selection(est, Xs, ys, n_pairs=2, expected_false=1e-6)
    tiny = [Xs[0][:3], Xs[1]]
    with pytest.raises(ValueError, match="task 0 has 3 rows"):
        rm.stability_selection(est, tiny, [ys[0][:3], ys[1]])
    with pytest.raises(TypeError, match="CV search"):
        rm.stability_selection(rm.MultiTaskRegressorCV(), Xs, ys)
    with pytest.raises(TypeError, match="not LinearRegression"):
        from sklearn.linear_model import LinearRegression

        rm.stability_selection(LinearRegression(), Xs, ys)


def test_selection_unit_reads_the_declarations():
    assert selection_unit(rm.L21()) == "feature"
    assert selection_unit(rm.LInf1()) == "feature"
    assert selection_unit(rm.L1()) == "feature_task"
    assert selection_unit(rm.ElasticNet(0.5)) == "feature_task"
    assert selection_unit(rm.MCP()) == "feature_task"
    assert selection_unit(rm.MCP(group=True)) == "feature"
    with pytest.raises(ValueError, match="selects no features"):
        selection_unit(rm.ElasticNet(0.0))


def test_n_jobs_is_checked():
    Xs, ys = _small()
    for bad in (0, "a", 1.5):
        with pytest.raises(ValueError, match="n_jobs=.* must be None or a nonzero int"):
            rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys, n_jobs=bad)
