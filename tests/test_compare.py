"""regmtl.compare: baselines against multi-task models over repeated splits."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

import regmtl as rm
from regmtl.compare import PooledModel, _resolve_models, compare
from regmtl.datasets import (
    apply_split,
    load_school,
    make_multitask_classification,
    make_multitask_regression,
    train_test_split_per_task,
)
from regmtl.penalties import PENALTY_NAMES
from regmtl.progress import progress_enabled
from regmtl.selection import task_folds


@pytest.fixture(scope="module")
def school_result():
    return compare(load_school(), models=["ridge", "l21", "unregularized", "pooled"], splits=2,
                   n_alphas=6, cv=3, tol=1e-9, progress=False)


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
    # independent ridge = one sklearn Ridge per task at its chosen alpha (alpha_sk = n_t alpha)
    alphas = res.choices.query("model == 'ridge (independent)' and split == 0")["alphas"].iloc[0]
    Xtr, Xte, ytr, yte = apply_split(data.X, data.y, data.splits[0])
    sc = StandardScaler().fit(np.vstack(Xtr))
    ev = []
    for X, y, Xt, yt, alpha in zip(Xtr, ytr, Xte, yte, alphas, strict=True):
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
    kw = dict(models=["ridge", "unregularized", "pooled", "l21"], splits=2, n_alphas=5)
    a = compare(d.X, d.y, n_jobs=1, **kw)
    b = compare(d.X, d.y, n_jobs=2, **kw)
    cols = [c for c in a.scores.columns if c != "fit_time"]
    pd.testing.assert_frame_equal(a.scores[cols], b.scores[cols])


def test_bad_input_is_refused():
    d = make_multitask_regression(3, 20, 4, n_informative=2, random_state=0)
    with pytest.raises(ValueError, match="unknown model 'ridgee'. Accepted: \"default\", a "
                                         "model name"):
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


# ---------------------------------------------------------------------------- baselines
def _given_split(ys, seed=0, test_size=0.25):
    idx = [np.arange(len(y)) for y in ys]
    tr, te, _, _ = train_test_split_per_task(idx, ys, test_size=test_size, random_state=seed)
    return tr, te


def _ev(y, f):
    return 1 - np.sum((y - f) ** 2) / np.sum((y - y.mean()) ** 2)


def test_school_pooled_keeps_the_levels_of_the_schools(school_result):
    """One slope vector, one intercept per school: explained variance about 0.38 on the first
    two fixed splits (0.382 seen), well above the 0.33 of a pooled fit that ignored the
    levels, and above independent ridge's (0.360); unregularized least squares 0.351."""
    ev = school_result.summary.set_index("model")["explained_variance_mean"]
    assert ev["pooled"] > 0.37 and ev["pooled"] > ev["ridge (independent)"]
    assert 0.3 < ev["unregularized"] < ev["ridge (independent)"]
    pooled = school_result.models["pooled"]
    assert np.ptp(pooled.coef_, axis=0).max() == 0.0  # one slope vector for all schools
    assert np.std(pooled.intercept_) > 1.0  # the schools' levels differ
    assert school_result.choices.query("model == 'unregularized'")["alpha"].eq(0).all()


def test_unregularized_is_per_task_least_squares_minimum_norm_where_not_unique():
    """Tasks 0 and 2 have 9 and 6 training rows for 10 features: least squares is not unique;
    the model takes the minimum-norm solution (numpy's lstsq on the centered design), whose
    test predictions equal LinearRegression's to 1e-6, names those tasks in a warning, and
    the comparison's scores are those of these predictions."""
    d = make_multitask_regression(3, [12, 40, 9], 10, n_informative=4, noise=0.5,
                                  random_state=2)
    split = _given_split(d.y)
    with pytest.warns(UserWarning, match=r"^unregularized, split 0: least squares is not "
                                         r"unique on 2 of 3 task\(s\) \(0, 2: no more"):
        res = compare(d.X, d.y, models=["ridge", "unregularized"], splits=[split],
                      standardize=False)
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, split)
    model = res.models["unregularized"]
    pred = model.predict(Xte)
    scores = res.scores.query("model == 'unregularized'")
    for t in range(3):
        lr = LinearRegression().fit(Xtr[t], ytr[t])
        np.testing.assert_allclose(pred[t], lr.predict(Xte[t]), rtol=0, atol=1e-6)
        xm = Xtr[t].mean(axis=0)
        w = np.linalg.lstsq(Xtr[t] - xm, ytr[t] - ytr[t].mean(), rcond=None)[0]
        np.testing.assert_allclose(model.coef_[t], w, rtol=0, atol=1e-8)
        assert scores["explained_variance"].iloc[t] == pytest.approx(_ev(yte[t], pred[t]),
                                                                     abs=1e-12)
    assert model.not_unique_ == [0, 2]


def _clf_split(ys, seed=0):
    """Per-task train/test positions with both classes on both sides."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for y in ys:
        test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:max(1, (y == c).sum()
                                                                            // 4)]
                               for c in (0, 1)])
        te.append(np.sort(test))
        tr.append(np.setdiff1d(np.arange(len(y)), test))
    return tr, te


def test_unregularized_classification_is_unpenalized_logistic_regression():
    """Probabilities equal scikit-learn's unpenalized LogisticRegression (C=inf) to 1e-6 and
    the AUC scores are theirs. A task with as many training rows as parameters is separable:
    the warning names it and the comparison completes."""
    d = make_multitask_classification(3, [120, 100, 8], 5, n_informative=3, class_sep=1.5,
                                      flip_y=0.05, random_state=0)
    split = _clf_split(d.y)
    with pytest.warns(UserWarning, match=r"unregularized, split 0: unpenalized logistic "
                                         r"regression has no finite fit on 1 of 3 task\(s\) "
                                         r"\(2: their training classes are separable\)"):
        res = compare(d.X, d.y, models=["logistic", "unregularized"], splits=[split],
                      standardize=False, tol=1e-10)
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, split)
    proba = res.models["unregularized"].predict_proba(Xte)
    auc = res.scores.query("model == 'unregularized'")["auc"].to_numpy()
    for t in (0, 1):
        lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(Xtr[t], ytr[t])
        np.testing.assert_allclose(proba[t], lr.predict_proba(Xte[t]), rtol=0, atol=1e-6)
        assert auc[t] == pytest.approx(roc_auc_score(yte[t], lr.predict_proba(Xte[t])[:, 1]))
    assert np.isfinite(auc).all() and res.models["unregularized"].not_unique_ == [2]


def _one_hot_ridge(Xs, ys, alpha):
    """Pooled ridge by hand: [X, task one-hot] with the one-hot block unpenalized, rows
    weighted 1/n_t (the multi-task objective with equal task weights)."""
    X = np.vstack(Xs)
    E = np.vstack([np.tile(np.eye(len(Xs))[t], (len(y), 1)) for t, y in enumerate(ys)])
    c = np.concatenate([np.full(len(y), 1.0 / len(y)) for y in ys])
    A = np.hstack([X, E])
    P = np.diag(np.r_[np.full(X.shape[1], alpha), np.zeros(len(Xs))])
    theta = np.linalg.solve(A.T @ (c[:, None] * A) + P, A.T @ (c * np.concatenate(ys)))
    return theta[:X.shape[1]], theta[X.shape[1]:]


def test_pooled_equals_a_hand_built_fit_with_unpenalized_task_indicators():
    """Tasks differing in level: the pooled model equals ridge on [X, one-hot of the task]
    with the one-hot block unpenalized, to 1e-8 in its coefficients and 1e-6 in the test
    scores; its inner CV scores are the task-averaged validation MSEs of that hand fit on
    the folds of task_folds (those of the CV estimators), and it picks their best alpha."""
    d = make_multitask_regression(4, [30, 45, 25, 60], 6, n_informative=4, relatedness=0.95,
                                  bias=[0.0, 8.0, -5.0, 3.0], random_state=0)
    split = _given_split(d.y)
    res = compare(d.X, d.y, models=["pooled"], splits=[split], standardize=False)
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, split)
    model = res.models["pooled"]
    w, b = _one_hot_ridge(Xtr, ytr, model.alpha_)
    np.testing.assert_allclose(model.coef_, np.tile(w, (4, 1)), rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, b, rtol=0, atol=1e-8)
    ev = [_ev(y, X @ w + bt) for X, y, bt in zip(Xte, yte, b, strict=True)]
    np.testing.assert_allclose(res.scores["explained_variance"], ev, rtol=0, atol=1e-6)
    data = rm.as_task_data(Xtr, ytr)
    hand = np.zeros(len(model.alphas_))
    for tr, va in task_folds(data, 3, random_state=0):
        parts = [(data.X[tr][data.task_of[tr] == t], data.y[tr][data.task_of[tr] == t],
                  data.X[va][data.task_of[va] == t], data.y[va][data.task_of[va] == t])
                 for t in range(4)]
        for i, a in enumerate(model.alphas_):
            wf, bf = _one_hot_ridge([p[0] for p in parts], [p[1] for p in parts], a)
            hand[i] -= np.mean([np.mean((p[3] - p[2] @ wf - bt) ** 2)
                                for p, bt in zip(parts, bf, strict=True)]) / 3
    np.testing.assert_allclose(model.cv_results_["mean_test_score"], hand, rtol=1e-8)
    assert model.alpha_ == model.alphas_[np.argmax(hand)]


def test_pooled_classification_equals_a_hand_built_logistic_fit():
    """Pooled logistic regression (one slope vector, unpenalized task intercepts) equals a
    direct minimization of its objective to 1e-6 in the test probabilities."""
    d = make_multitask_classification(3, [80, 60, 70], 4, n_informative=3, class_sep=2.0,
                                      bias=[-1.0, 0.5, 1.5], random_state=1)
    split = _clf_split(d.y)
    res = compare(d.X, d.y, models=["pooled"], splits=[split], standardize=False, tol=1e-12)
    Xtr, Xte, ytr, _ = apply_split(d.X, d.y, split)
    model = res.models["pooled"]
    X, s = np.vstack(Xtr), np.concatenate(ytr) * 2.0 - 1.0
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ytr)])
    c = np.concatenate([np.full(len(y), 1.0 / len(y)) for y in ytr])
    a, p = model.alpha_, X.shape[1]

    def objective(theta):
        w, b = theta[:p], theta[p:]
        z = s * (X @ w + b[task])
        r = -c * s / (1.0 + np.exp(z))
        return (c @ np.logaddexp(0.0, -z) + 0.5 * a * w @ w,
                np.r_[X.T @ r + a * w, np.bincount(task, r, minlength=3)])

    theta = minimize(objective, np.zeros(p + 3), jac=True, method="L-BFGS-B",
                     options=dict(gtol=1e-13, ftol=1e-16, maxiter=10_000)).x
    for t, Xt in enumerate(Xte):
        expect = 1.0 / (1.0 + np.exp(-(Xt @ theta[:p] + theta[p + t])))
        np.testing.assert_allclose(model.predict_proba(Xte)[t][:, 1], expect, rtol=0,
                                   atol=1e-6)


# ---------------------------------------------------------------------------- models=
def test_models_in_every_form_give_the_same_rows():
    """Names (and the "l2" alias), a dict name -> name, (name, name) pairs, and the same
    models as estimators in pairs or a dict: the same scores, row for row."""
    d = make_multitask_regression(3, 30, 5, n_informative=3, random_state=0)
    kw = dict(splits=2, n_alphas=5, cv=3, progress=False)

    def ests():
        return {"ridge (independent)": rm.MultiTaskRegressorCV("l2", alphas=5, cv="loo",
                                                               alpha_per_task=True),
                "pooled": PooledModel(alphas=5, cv=3)}

    forms = [["l2", "pooled"], ["ridge", "pooled"],
             {"ridge (independent)": "ridge", "pooled": "pooled"},
             [("ridge (independent)", "ridge"), ("pooled", "pooled")],
             list(ests().items()), ests()]
    results = [compare(d.X, d.y, models=m, **kw) for m in forms]
    cols = [c for c in results[0].scores.columns if c != "role"]
    for res in results:
        assert res.summary["model"].tolist() == ["ridge (independent)", "pooled"]
        pd.testing.assert_frame_equal(res.scores[cols], results[0].scores[cols])
    assert set(results[-1].scores["role"]) == {"user"}
    assert results[0].scores["role"].unique().tolist() == ["independent", "pooled"]


def test_user_estimators_come_beside_the_baselines_and_every_penalty_is_a_model():
    """A dict of one's own estimators is compared with the default baselines (they used to be
    dropped); every penalty name is a model; {"ridge": "ridge"} works."""
    d = make_multitask_regression(3, 30, 5, n_informative=3, random_state=0)
    mine = rm.MultiTaskRegressorCV("l21", alphas=4, cv=3)
    res = compare(d.X, d.y, models={"mine": mine}, splits=1, n_alphas=4, progress=False)
    assert res.summary["model"].tolist() == ["ridge (independent)",
                                             "ridge (independent, one alpha)",
                                             "lasso (independent)", "unregularized", "pooled",
                                             "mine"]
    assert res.baseline == "ridge (independent)"
    mixed = compare(d.X, d.y, models=["ridge", "elasticnet", ("mine", mine)], splits=1,
                    n_alphas=4, progress=False)
    assert mixed.summary["model"].tolist() == ["ridge (independent)",
                                               "elastic net (independent)", "mine"]
    ridge = compare(d.X, d.y, models={"ridge": "ridge"}, splits=1, n_alphas=4, progress=False)
    assert ridge.summary["model"].tolist() == ["ridge"]
    for kind in ("regression", "binary"):
        for name in PENALTY_NAMES:
            assert len(_resolve_models([name], kind)) == 1
        assert list(_resolve_models("default", kind))[-5:-3] == ["unregularized", "pooled"]


@pytest.mark.parametrize("models, match", [
    ([42], r"the entry 42 is not accepted"),
    ({"a": 3}, r"'a' -> 3 is not accepted"),
    ([rm.MultiTaskRegressorCV], r"\(a class: pass an instance\)"),
    ([("a", "b", "c")], r"the entry \('a', 'b', 'c'\) is not accepted"),
    ([("x", "default")], r"'default' is a set of models and takes no name"),
    (["ridge", ("ridge (independent)", "lasso")], r"two models are named 'ridge \(independ"),
    (3.5, r"the value 3.5 is not accepted"),
    ({1: "ridge"}, r"the dict key 1 is not a name"),
])
def test_bad_model_entries_are_named(models, match):
    d = make_multitask_regression(3, 20, 4, n_informative=2, random_state=0)
    with pytest.raises(ValueError, match=match) as err:
        compare(d.X, d.y, models=models, splits=1)
    if "two models" not in match and "'default'" not in match:
        assert "Accepted: \"default\", a model name ('ridge'" in str(err.value)
        assert "a (name, model) pair" in str(err.value) and "a dict name ->" in str(err.value)


# ---------------------------------------------------------------------------- time, folds
def test_timings_and_the_progress_bar(capsys, monkeypatch):
    """timings: fit seconds per model, the sum over splits and its mean (the summary's
    fit_time); the bar shows on stderr when asked, "auto" follows stderr being a terminal."""
    d = make_multitask_regression(3, 30, 5, n_informative=3, random_state=0)
    res = compare(d.X, d.y, models=["ridge", "pooled"], splits=2, n_alphas=4, progress=True)
    err = capsys.readouterr().err
    assert "compare:" in err and "0/4" in err
    t = res.timings
    assert t.index.tolist() == res.summary["model"].tolist() and t.index.name == "model"
    np.testing.assert_allclose(t["seconds_per_split"], res.summary["fit_time"], rtol=1e-12)
    np.testing.assert_allclose(t["fit_seconds"], 2 * t["seconds_per_split"], rtol=1e-12)
    assert (t["fit_seconds"] > 0).all()
    compare(d.X, d.y, models=["ridge"], splits=1, n_alphas=4)  # "auto", not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys, "stderr", type("Tty", (), {"isatty": lambda self: True})())
    assert progress_enabled("auto") is True and progress_enabled(False) is False
    with pytest.raises(ValueError, match="progress='yes' must be 'auto', True or False"):
        progress_enabled("yes")


def test_a_task_with_fewer_rows_than_folds_is_named_and_the_comparison_completes():
    """Inner cv=3 on a task with 2 training rows: 2 folds for it, one warning per model
    naming the task and the splits, no abort."""
    d = make_multitask_regression(3, [30, 4, 30], 4, n_informative=2, random_state=0)
    d.task_names = ["north", "tiny", "south"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare(d, models=["ridge_one_alpha", "pooled"], splits=2, test_size=0.5,
                      n_alphas=4)
    msgs = [str(w.message) for w in caught if "fewer samples than folds" in str(w.message)]
    assert len(msgs) == 2 and msgs[0].startswith("ridge (independent, one alpha), splits 0, 1: "
                                                 "cv=3: 1 "
                                                 "task(s) have fewer samples than folds "
                                                 "(task 'tiny' has 2 samples: 2 folds)")
    assert msgs[1].startswith("pooled, splits 0, 1: cv=3:")
    assert np.isfinite(res.scores["explained_variance"]).all()
