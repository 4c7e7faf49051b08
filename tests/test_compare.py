"""regmtl.compare: baselines against multi-task models over repeated splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from regmtl.compare import compare
from regmtl.datasets import (
    apply_split,
    load_school,
    make_multitask_classification,
    make_multitask_regression,
    train_test_split_per_task,
)


@pytest.fixture(scope="module")
def school_result():
    return compare(load_school(), models=["ridge", "l21"], splits=2, n_alphas=6, cv=3, tol=1e-9)


def test_school_uses_the_fixed_splits_and_scores_match_an_independent_fit(school_result):
    res = school_result
    data = load_school()
    assert res.split_kind == "fixed" and res.n_splits == 2
    assert res.kind == "regression" and res.baseline == "ridge (independent)"
    # every task's test rows are those of the fixed split
    ridge = res.scores[(res.scores["model"] == "ridge (independent)")
                       & (res.scores["split"] == 0)]
    n_test = [len(te) for te in data.splits[0][1]]
    assert ridge["n"].tolist() == n_test
    # independent ridge = one sklearn Ridge per task at the chosen alpha (alpha_sk = n_t alpha)
    alpha = float(res.choices.query("model == 'ridge (independent)' and split == 0")["alpha"]
                  .iloc[0])
    Xtr, Xte, ytr, yte = apply_split(data.X, data.y, data.splits[0])
    sc = StandardScaler().fit(np.vstack(Xtr))
    ev = []
    for X, y, Xt, yt in zip(Xtr, ytr, Xte, yte, strict=True):
        f = Ridge(alpha=len(y) * alpha).fit(sc.transform(X), y).predict(sc.transform(Xt))
        ev.append(1 - np.sum((yt - f) ** 2) / np.sum((yt - yt.mean()) ** 2))
    # the fits stop at a relative duality gap of 1e-9: EV agrees to ~2e-5 (seen)
    np.testing.assert_allclose(ridge["explained_variance"], ev, rtol=0, atol=2e-4)


def test_summary_is_the_mean_over_splits(school_result):
    res = school_result
    for model in ("ridge (independent)", "MTL L2,1"):
        part = res.scores[res.scores["model"] == model]
        per_split = part.groupby("split")["explained_variance"].mean()
        row = res.summary.set_index("model").loc[model]
        assert row["explained_variance_task_mean"] == pytest.approx(per_split.mean(), rel=1e-12)
        assert row["explained_variance_task_sd"] == pytest.approx(per_split.std(ddof=1),
                                                                  rel=1e-12)
        assert 0.2 < row["explained_variance_mean"] < 0.5  # pooled EV, as published (~0.3)
    wins = res.summary.set_index("model").loc["MTL L2,1", "wins"]
    by_task = res.scores.groupby(["model", "task"])["explained_variance"].mean()
    expect = int(np.sum(by_task["MTL L2,1"] > by_task["ridge (independent)"]))
    assert wins == f"{expect}/139"


def test_sharing_helps_when_tasks_share_their_support():
    """Few rows per task, a common sparse support: L2,1 must beat independent ridge."""
    d = make_multitask_regression(12, 25, 60, n_informative=5, relatedness=0.9, noise=0.5,
                                  random_state=3)
    res = compare(d.X, d.y, models=["ridge", "pooled", "l21"], splits=3, n_alphas=8)
    ev = res.summary.set_index("model")["explained_variance_mean"]
    assert ev["MTL L2,1"] > ev["ridge (independent)"] + 0.1
    assert res.split_kind == "random"
    assert set(res.scores["n"]) == {7}  # ceil(0.25 * 25) test rows per task


def test_classification_reports_auc_and_accuracy():
    d = make_multitask_classification(5, 200, 10, n_informative=4, class_sep=2.0, flip_y=0.01,
                                      random_state=0)
    res = compare(d.X, d.y, models=["logistic", "l21"], splits=2, n_alphas=8)
    assert res.kind == "binary" and res.metric == "auc"
    row = res.summary.set_index("model").loc["MTL L2,1"]
    assert 0.6 < row["auc_mean"] <= 1.0 and 0.5 < row["accuracy_mean"] <= 1.0
    assert {"auc", "accuracy", "log_loss"} <= set(res.scores.columns)


def test_same_result_with_parallel_jobs():
    d = make_multitask_regression(4, 30, 8, n_informative=3, random_state=1)
    kw = dict(models=["ridge", "l21"], splits=2, n_alphas=5)
    a = compare(d.X, d.y, n_jobs=1, **kw)
    b = compare(d.X, d.y, n_jobs=2, **kw)
    cols = [c for c in a.scores.columns if c != "fit_time"]
    pd.testing.assert_frame_equal(a.scores[cols], b.scores[cols])


def test_bad_input_is_refused():
    d = make_multitask_regression(3, 20, 4, n_informative=2, random_state=0)
    with pytest.raises(ValueError, match="unknown model 'ridgee'"):
        compare(d.X, d.y, models=["ridgee"])
    with pytest.raises(ValueError, match="'logistic' is for binary"):
        compare(d.X, d.y, models=["logistic"])
    with pytest.raises(ValueError, match="at least two tasks"):
        compare(d.X[:1], d.y[:1])
    with pytest.raises(ValueError, match="10 fixed splits"):
        compare(load_school(), splits=11)


def test_a_one_row_task_is_named():
    """Not scikit-learn's train_test_split error: the task, its row count, what is needed."""
    d = make_multitask_regression(3, 20, 4, n_informative=2, random_state=0)
    Xs, ys = list(d.X), list(d.y)
    Xs[1], ys[1] = Xs[1][:1], ys[1][:1]
    with pytest.raises(ValueError, match=r"^task 1 has 1 row; a random train/test split needs "
                                         r"at least 2 rows in every task"):
        compare(Xs, ys, models=["ridge"], splits=1)
    d.X[2], d.y[2] = d.X[2][:1], d.y[2][:1]
    d.task_names = ["north", "south", "east"]
    with pytest.raises(ValueError, match=r"^task 'east' has 1 row"):
        compare(d, models=["ridge"], splits=1)


def test_sparse_designs_are_scaled_not_centered():
    """Sparse tasks stay sparse: scaled by their root mean square (no centering), and the
    comparison equals one run on the dense arrays scaled by hand."""
    import scipy.sparse as sp

    from regmtl.scaling import pooled_scaling, standardize

    d = make_multitask_regression(3, 40, 12, n_informative=3, random_state=4)
    rng = np.random.default_rng(0)
    Xd = [X * (rng.random(X.shape) < 0.3) for X in d.X]
    Xs = [sp.csr_matrix(X) for X in Xd]
    mean, scale = pooled_scaling(Xs)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_allclose(scale, np.sqrt(np.mean(np.vstack(Xd) ** 2, axis=0)), rtol=1e-12)
    Z = standardize(Xs, mean, scale)
    assert all(sp.issparse(z) for z in Z)
    np.testing.assert_allclose(Z[1].toarray(), Xd[1] / scale, rtol=1e-12)
    # one split, given: the dense arrays scaled by hand with its training rows give the same
    # comparison as the sparse ones scaled inside compare
    idx = [np.arange(len(y)) for y in d.y]
    tr, te, _, _ = train_test_split_per_task(idx, d.y, random_state=1)
    split = [(tr, te)]
    _, s_tr = pooled_scaling([X[r] for X, r in zip(Xs, tr, strict=True)])
    kw = dict(models=["ridge", "pooled", "l21"], splits=split, n_alphas=5, tol=1e-10)
    sparse = compare(Xs, d.y, **kw)
    dense = compare([X / s_tr for X in Xd], d.y, standardize=False, **kw)
    cols = ["explained_variance", "nmse", "rmse"]
    np.testing.assert_allclose(sparse.scores[cols].to_numpy(), dense.scores[cols].to_numpy(),
                               rtol=1e-6)
    assert np.all(np.isfinite(sparse.scores[cols].to_numpy()))
