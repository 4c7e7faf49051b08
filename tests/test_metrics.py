"""Multi-task metrics against scikit-learn per task and hand-computed averages; scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import KFold, cross_val_score

from regmtl import MultiTaskClassifier, MultiTaskRegressor
from regmtl import metrics as M

SIZES = (15, 40, 70)


def _regression(seed=0):
    rng = np.random.default_rng(seed)
    ys = [rng.normal(t, 1.0 + t, n) for t, n in enumerate(SIZES)]
    preds = [y + rng.normal(0.3 * t, 0.5, len(y)) for t, y in enumerate(ys)]
    return ys, preds


def _binary(seed=0):
    rng = np.random.default_rng(seed)
    ys, proba = [], []
    for n in SIZES:
        f = rng.normal(0.0, 2.0, n)
        y = (rng.random(n) < 1 / (1 + np.exp(-f))).astype(int)
        p = 1 / (1 + np.exp(-f + rng.normal(0, 0.5, n)))
        p[:2] = np.round(p[:2], 1)  # a few ties for the AUC
        ys.append(y)
        proba.append(p)
    labels = [(p > 0.5).astype(int) for p in proba]
    return ys, labels, proba


def _per_task(fn, ys, preds):
    return np.array([fn(y, f) for y, f in zip(ys, preds, strict=True)])


# --------------------------------------------------------------------- against scikit-learn
@pytest.mark.parametrize("ours, theirs", [
    (M.mse, skm.mean_squared_error),
    (M.rmse, skm.root_mean_squared_error),
    (M.mae, skm.mean_absolute_error),
    (M.explained_variance, skm.r2_score),
    (M.r2, skm.r2_score),
])
def test_regression_metrics_per_task_match_sklearn(ours, theirs):
    ys, preds = _regression()
    np.testing.assert_allclose(ours(ys, preds, average=None), _per_task(theirs, ys, preds),
                               rtol=0, atol=1e-12)


def test_binary_metrics_per_task_match_sklearn():
    ys, labels, proba = _binary()
    np.testing.assert_allclose(M.accuracy(ys, labels, average=None),
                               _per_task(skm.accuracy_score, ys, labels), rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.auc(ys, proba, average=None),
                               _per_task(skm.roc_auc_score, ys, proba), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        M.log_loss(ys, proba, average=None),
        _per_task(lambda y, p: skm.log_loss(y, p, labels=[0, 1]), ys, proba),
        rtol=0, atol=1e-12)
    # (n, 2) predict_proba output reads the positive column
    two = [np.column_stack([1 - p, p]) for p in proba]
    np.testing.assert_allclose(M.log_loss(ys, two, average=None),
                               M.log_loss(ys, proba, average=None), rtol=0, atol=0)


def test_explained_variance_is_not_sklearns_explained_variance_score():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    f = y + 1.0  # a constant bias: sklearn's EV score ignores it, R^2 does not
    assert skm.explained_variance_score(y, f) == 1.0
    assert M.explained_variance([y], [f], average=None)[0] == pytest.approx(1 - 4 / 5)


# --------------------------------------------------------------------- averages
def test_averages_by_hand():
    ys, preds = _regression()
    n = np.array(SIZES, dtype=float)
    sse = np.array([np.sum((y - f) ** 2) for y, f in zip(ys, preds, strict=True)])
    sst = np.array([np.sum((y - y.mean()) ** 2) for y in ys])
    y_all, f_all = np.concatenate(ys), np.concatenate(preds)
    mse_t, ev_t = sse / n, 1 - sse / sst

    assert M.mse(ys, preds) == pytest.approx(mse_t.mean(), abs=1e-12)
    assert M.mse(ys, preds, average="samples") == pytest.approx(sse.sum() / n.sum(), abs=1e-12)
    assert M.mse(ys, preds, average="pooled") == pytest.approx(sse.sum() / n.sum(), abs=1e-12)
    assert M.rmse(ys, preds) == pytest.approx(np.sqrt(mse_t).mean(), abs=1e-12)
    assert M.rmse(ys, preds, average="samples") == pytest.approx(
        np.sum(n * np.sqrt(mse_t)) / n.sum(), abs=1e-12)
    assert M.rmse(ys, preds, average="pooled") == pytest.approx(
        np.sqrt(sse.sum() / n.sum()), abs=1e-12)
    assert M.explained_variance(ys, preds) == pytest.approx(ev_t.mean(), abs=1e-12)
    assert M.explained_variance(ys, preds, average="samples") == pytest.approx(
        np.sum(n * ev_t) / n.sum(), abs=1e-12)
    assert M.explained_variance(ys, preds, average="pooled") == pytest.approx(
        1 - sse.sum() / np.sum((y_all - y_all.mean()) ** 2), abs=1e-12)
    assert M.mae(ys, preds, average="pooled") == pytest.approx(
        np.mean(np.abs(y_all - f_all)), abs=1e-12)

    yb, labels, proba = _binary()
    hits = [np.mean(y == f) for y, f in zip(yb, labels, strict=True)]
    assert M.accuracy(yb, labels) == pytest.approx(np.mean(hits), abs=1e-12)
    assert M.accuracy(yb, labels, average="samples") == pytest.approx(
        np.mean(np.concatenate(yb) == np.concatenate(labels)), abs=1e-12)
    assert M.auc(yb, proba, average="pooled") == pytest.approx(
        skm.roc_auc_score(np.concatenate(yb), np.concatenate(proba)), abs=1e-12)
    assert M.log_loss(yb, proba, average="pooled") == pytest.approx(
        skm.log_loss(np.concatenate(yb), np.concatenate(proba)), abs=1e-12)


def test_nmse_direct_formula():
    ys, preds = _regression()
    n = np.array(SIZES, dtype=float)
    mse_t = np.array([np.mean((y - f) ** 2) for y, f in zip(ys, preds, strict=True)])
    var_t = np.array([np.var(y) for y in ys])
    expected = np.sum(n * mse_t / var_t) / np.sum(n)
    assert M.nmse(ys, preds) == pytest.approx(expected, abs=1e-12)  # default: "samples"
    np.testing.assert_allclose(M.nmse(ys, preds, average=None), mse_t / var_t, atol=1e-12)
    np.testing.assert_allclose(M.nmse(ys, preds, average=None),
                               1 - M.explained_variance(ys, preds, average=None), atol=1e-12)
    assert M.nmse(ys, preds, average="tasks") == pytest.approx(np.mean(mse_t / var_t))


def test_perfect_and_mean_predictions():
    ys, _ = _regression()
    assert M.explained_variance(ys, ys) == 1.0 and M.nmse(ys, ys) == 0.0
    means = [np.full_like(y, y.mean()) for y in ys]
    np.testing.assert_allclose(M.explained_variance(ys, means, average=None), 0.0, atol=1e-12)


# --------------------------------------------------------------------- undefined values
def test_one_class_auc_is_nan_with_warning_and_averages_skip_it():
    ys, _, proba = _binary()
    ys[1] = np.ones_like(ys[1])
    with pytest.warns(UndefinedMetricWarning, match="one class"):
        per_task = M.auc(ys, proba, average=None)
    assert np.isnan(per_task[1]) and np.all(np.isfinite(per_task[[0, 2]]))
    with pytest.warns(UndefinedMetricWarning):
        assert M.auc(ys, proba) == pytest.approx(np.mean(per_task[[0, 2]]))
    with pytest.warns(UndefinedMetricWarning):
        assert M.auc(ys, proba, average="samples") == pytest.approx(
            (15 * per_task[0] + 70 * per_task[2]) / 85)
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(M.auc([np.zeros(3)], [np.arange(3.0)]))
    # log loss of a one-class task is defined: 1 is the positive class of 0/1 labels
    assert np.isfinite(M.log_loss(ys, proba, average=None)).all()


def test_constant_targets_give_nan_explained_variance():
    with pytest.warns(UndefinedMetricWarning, match="constant"):
        ev = M.explained_variance([np.ones(4), np.arange(4.0)], [np.zeros(4), np.arange(4.0)],
                                  average=None)
    assert np.isnan(ev[0]) and ev[1] == 1.0


def test_string_labels_and_pos_label():
    ys = [np.array(["ham", "spam", "spam", "ham"]), np.array(["no", "yes", "no", "yes"])]
    scores = [np.array([0.1, 0.8, 0.3, 0.4]), np.array([0.2, 0.9, 0.6, 0.7])]
    # positive: the larger label of each task ("spam", "yes")
    np.testing.assert_allclose(M.auc(ys, scores, average=None),
                               [skm.roc_auc_score(y == np.unique(y)[1], s)
                                for y, s in zip(ys, scores, strict=True)], atol=1e-12)
    assert M.accuracy(ys, [np.array(["ham", "spam", "ham", "ham"]), ys[1]],
                      average=None).tolist() == [0.75, 1.0]
    with pytest.raises(ValueError, match="pos_label"):
        M.log_loss([np.array(["a", "a"])], [np.array([0.2, 0.3])])
    assert M.log_loss([np.array(["a", "a"])], [np.array([0.2, 0.3])], pos_label="a") == \
        pytest.approx(-np.mean(np.log([0.2, 0.3])))


# --------------------------------------------------------------------- input forms, errors
def test_dict_and_shared_forms():
    ys, preds = _regression()
    as_dict = M.mse({"a": ys[0], "b": ys[1]}, {"b": preds[1], "a": preds[0]}, average=None)
    np.testing.assert_allclose(as_dict, M.mse(ys[:2], preds[:2], average=None))
    rng = np.random.default_rng(0)
    Y, F = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    Y[[1, 5], 0] = np.nan  # missing labels of task 0
    keep = ~np.isnan(Y[:, 0])
    expected = [skm.mean_squared_error(Y[keep, 0], F[keep, 0]),
                skm.mean_squared_error(Y[:, 1], F[:, 1]),
                skm.mean_squared_error(Y[:, 2], F[:, 2])]
    np.testing.assert_allclose(M.mse(Y, F, average=None), expected, atol=1e-12)


@pytest.mark.parametrize("ys, preds, match", [
    ([np.ones(3), np.ones(4)], [np.ones(3)], "ys has 2 tasks but preds has 1"),
    ([np.ones(3), np.ones(4)], [np.ones(3), np.ones(5)], r"ys\[1\] has 4 .* preds\[1\] has 5"),
    ([np.ones(3)], [np.array([1.0, np.nan, 2.0])], r"preds\[0\] contains NaN"),
    ([np.array([1.0, np.nan])], [np.ones(2)], r"ys\[0\] contains NaN"),
    ([np.ones((3, 2))], [np.ones(3)], "1-D"),
    (np.ones((3, 2)), np.ones((3, 3)), "shape"),
    ([], [], "no tasks"),
])
def test_mismatches_raise(ys, preds, match):
    with pytest.raises(ValueError, match=match):
        M.mse(ys, preds)


def test_bad_average_and_probabilities():
    ys, preds = _regression()
    with pytest.raises(ValueError, match="average"):
        M.mse(ys, preds, average="macro")
    with pytest.raises(ValueError, match="probabilities"):
        M.log_loss([np.array([0, 1])], [np.array([0.5, 1.5])])
    with pytest.raises(ValueError, match="classes"):
        M.auc([np.array([0, 1, 2])], [np.array([0.1, 0.2, 0.3])])


# --------------------------------------------------------------------- tables
def test_task_scores_and_summarize():
    ys, preds = _regression()
    table = M.task_scores(ys, preds, task_names=["a", "b", "c"])
    assert list(table.columns) == ["task", "n", "mse", "rmse", "mae", "explained_variance",
                                   "nmse"]
    assert table["task"].tolist() == ["a", "b", "c"] and table["n"].tolist() == list(SIZES)
    np.testing.assert_allclose(table["mse"], M.mse(ys, preds, average=None))
    summary = M.summarize(ys, preds)
    assert summary.index.tolist() == ["tasks", "samples", "pooled"]
    assert summary.loc["pooled", "rmse"] == pytest.approx(M.rmse(ys, preds, average="pooled"))

    yb, labels, proba = _binary()
    tb = M.task_scores(yb, labels, kind="binary", proba=proba)
    assert list(tb.columns) == ["task", "n", "accuracy", "auc", "log_loss"]
    np.testing.assert_allclose(tb["auc"], M.auc(yb, proba, average=None))
    assert list(M.task_scores(yb, labels, kind="binary").columns) == ["task", "n", "accuracy"]
    with pytest.raises(ValueError, match="kind"):
        M.task_scores(ys, preds, kind="multiclass")


# --------------------------------------------------------------------- scorers
@pytest.fixture(scope="module")
def regression_fit():
    ys, _ = _regression()
    rng = np.random.default_rng(1)
    Xs = [rng.normal(size=(n, 4)) for n in SIZES]
    ys = [X @ np.array([1.0, -1.0, 0.5, 0.0]) + y for X, y in zip(Xs, ys, strict=True)]
    return Xs, ys, MultiTaskRegressor(alpha=0.01).fit(Xs, ys)


def test_scorer_lists_and_long_form(regression_fit):
    Xs, ys, model = regression_fit
    preds = model.predict(Xs)
    scorer = M.make_task_scorer("neg_mse")
    assert scorer(model, Xs, ys) == pytest.approx(-M.mse(ys, preds), abs=1e-12)
    assert M.make_task_scorer("mse", average="samples")(model, Xs, ys) == pytest.approx(
        -M.mse(ys, preds, average="samples"), abs=1e-12)
    assert M.make_task_scorer("r2")(model, Xs, ys) == pytest.approx(model.score(Xs, ys))
    # the long form, rows interleaved across tasks, gives the same value
    task = np.concatenate([np.full(n, t) for t, n in enumerate(SIZES)])
    perm = np.random.default_rng(0).permutation(len(task))
    X, y, task = np.vstack(Xs)[perm], np.concatenate(ys)[perm], task[perm]
    assert scorer(model, X, y, task=task) == pytest.approx(-M.mse(ys, preds), abs=1e-12)
    # cross-validation routes each fold's task ids to the scorer
    folds = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        cv = cross_val_score(MultiTaskRegressor(alpha=0.01), X, y, params={"task": task},
                             scoring=M.make_task_scorer("explained_variance"), cv=folds)
    by_hand = []
    for tr, te in folds.split(X):
        fold = MultiTaskRegressor(alpha=0.01).fit(X[tr], y[tr], task=task[tr])
        f = fold.predict(X[te], task=task[te])
        by_hand.append(np.mean([skm.r2_score(y[te][task[te] == t], f[task[te] == t])
                                for t in range(3)]))
    np.testing.assert_allclose(cv, by_hand, rtol=0, atol=1e-12)


def test_scorer_classifier_and_shared_design():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = (X @ rng.normal(size=(3, 2)) + rng.normal(size=(60, 2)) > 0).astype(float)
    Y[[3, 7], 1] = np.nan
    model = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    proba = model.predict_proba(X)
    keep = [np.ones(60, bool), ~np.isnan(Y[:, 1])]
    ys = [Y[k, t] for t, k in enumerate(keep)]
    ps = [proba[t][k, 1] for t, k in enumerate(keep)]
    assert M.make_task_scorer("neg_log_loss")(model, X, Y) == pytest.approx(
        -np.mean([skm.log_loss(y, p) for y, p in zip(ys, ps, strict=True)]), abs=1e-12)
    assert M.make_task_scorer("roc_auc")(model, X, Y) == pytest.approx(
        np.mean([skm.roc_auc_score(y, p) for y, p in zip(ys, ps, strict=True)]), abs=1e-12)
    assert M.make_task_scorer("accuracy")(model, X, Y) == pytest.approx(model.score(X, Y))


def test_scorer_from_callable_and_bad_names(regression_fit):
    Xs, ys, model = regression_fit
    loss = M.make_task_scorer(M.mae, greater_is_better=False, average="pooled")
    assert loss(model, Xs, ys) == pytest.approx(-M.mae(ys, model.predict(Xs),
                                                       average="pooled"))
    with pytest.raises(ValueError, match="unknown metric"):
        M.make_task_scorer("f1")
    with pytest.raises(ValueError, match="average"):
        M.make_task_scorer("neg_mse", average=None)


def test_scorer_task_column_of_a_dataframe(regression_fit):
    Xs, ys, model = regression_fit
    frame = pd.DataFrame(np.vstack(Xs), columns=[f"x{j}" for j in range(4)])
    frame["school"] = np.concatenate([np.full(n, t) for t, n in enumerate(SIZES)])
    y = np.concatenate(ys)
    fitted = MultiTaskRegressor(alpha=0.01).fit(frame, y, task="school")
    assert M.make_task_scorer("neg_mae")(fitted, frame, y, task="school") == pytest.approx(
        -M.mae(ys, model.predict(Xs)), abs=1e-9)
