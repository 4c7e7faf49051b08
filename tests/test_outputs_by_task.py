"""What a fit with one loss per task gives its user, task by task: class probabilities for the
tasks of two labels in every input form (and a refusal naming any other task), one meaning per
column of the long form's multiclass probabilities, offsets for some tasks only, and errors
that name the task whose targets are wrong."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import regmtl as rm

LOSSES = ["logistic", "poisson", "squared"]
NAMES = ["click", "count", "rating"]


def _recommender(n=150, seed=0):
    """A click, a purchase count (with an exposure) and a rating on the same features."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3 * n, 4))
    f = X @ np.array([1.0, -0.5, 0.3, 0.0])
    y = np.empty(3 * n)
    y[:n] = (rng.random(n) < 1 / (1 + np.exp(-f[:n]))).astype(float)
    exposure = rng.uniform(0.5, 2.0, n)
    y[n:2 * n] = rng.poisson(exposure * np.exp(0.3 * f[n:2 * n]))
    y[2 * n:] = f[2 * n:] + 0.1 * rng.standard_normal(n)
    return X, y, np.repeat(NAMES, n), np.log(exposure)


def _fit(penalty="l21", alpha=0.01, **kw):
    X, y, task, log_exposure = _recommender()
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=LOSSES, tol=1e-10, **kw)
    return model.fit(X, y, task=task, offset={"count": log_exposure}), X, y, task


# ------------------------------------------------------------------ probabilities
def test_probabilities_exist_only_with_a_task_of_two_labels():
    assert not hasattr(rm.MultiTaskRegressor(), "predict_proba")
    assert not hasattr(rm.MultiTaskRegressor(loss=["poisson", "squared"]), "decision_function")
    model = rm.MultiTaskRegressor(loss=LOSSES)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert hasattr(model, method)


def test_click_probabilities_equal_an_independent_logistic_fit():
    """Under the ridge the tasks are apart: the click task's probabilities are scikit-learn's
    LogisticRegression with C = 1 / (n alpha) (the mean loss plus alpha / 2 ||w||^2)."""
    alpha = 0.02
    model, X, y, task = _fit("l2", alpha)
    click = task == "click"
    ref = LogisticRegression(C=1 / (click.sum() * alpha), tol=1e-12, max_iter=10_000)
    ref.fit(X[click], y[click])
    proba = model.predict_proba(X[click], task=task[click])
    np.testing.assert_allclose(proba, ref.predict_proba(X[click]), atol=1e-7)
    np.testing.assert_allclose(model.decision_function(X[click], task=task[click]),
                               ref.decision_function(X[click]), atol=1e-6)
    np.testing.assert_allclose(model.predict_log_proba(X[click], task=task[click]),
                               np.log(proba), rtol=1e-10)
    assert model.classes_[0].tolist() == [0.0, 1.0]
    # predict: the click's label, the count's expected count, the rating's value
    count = task == "count"
    scores = X[count] @ model.coef_[1] + model.intercept_[1]
    np.testing.assert_allclose(model.predict(X[count], task=task[count]), np.exp(scores),
                               rtol=1e-12)
    labels = model.predict(X[click], task=task[click])
    np.testing.assert_array_equal(labels, (proba[:, 1] > 0.5).astype(float))


def test_probabilities_in_every_input_form():
    model, X, y, task = _fit()
    click = task == "click"
    expected = model.predict_proba(X[click], task=task[click])
    as_dict = model.predict_proba({"click": X[click]})
    np.testing.assert_allclose(as_dict["click"], expected, rtol=1e-12)
    lists = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.01, tol=1e-10).fit(
        [X[task == t] for t in NAMES], [y[task == t] for t in NAMES],
        offset=[None, _recommender()[3], None])
    np.testing.assert_allclose(lists.coef_, model.coef_, atol=1e-8)
    np.testing.assert_allclose(lists.predict_proba({0: X[click]})[0], expected, atol=1e-8)
    # a shared design: a list over the tasks, None where a task has no two labels
    rng = np.random.default_rng(3)
    Xs = rng.standard_normal((120, 3))
    Y = np.column_stack([(Xs[:, 0] > 0).astype(float), rng.poisson(2.0, 120),
                         Xs[:, 1] + rng.standard_normal(120)])
    shared = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.05).fit(Xs, Y)
    out = shared.predict_proba(Xs)
    assert out[1] is None and out[2] is None and out[0].shape == (120, 2)
    np.testing.assert_allclose(out[0][:, 1], 1 / (1 + np.exp(-shared.decision_function(
        Xs)[0])), rtol=1e-12)


def test_probabilities_on_dask_rows():
    da = pytest.importorskip("dask.array")
    model, X, y, task = _fit()
    click = np.flatnonzero(task == "click")
    lazy = model.predict_proba(da.from_array(X[click], chunks=50),
                               task=da.from_array(task[click], chunks=50))
    np.testing.assert_allclose(np.asarray(lazy.compute()),
                               model.predict_proba(X[click], task=task[click]), rtol=1e-12)


def test_rows_of_a_task_without_probabilities_are_refused_by_name():
    model, X, y, task = _fit()
    with pytest.raises(ValueError, match="task 'count' has the poisson loss: it has no class "
                                         "probabilities"):
        model.predict_proba(X, task=task)
    # per task (a dict, a list, a shared design): None for a task without two labels
    assert model.decision_function({"rating": X[:3]}) == {"rating": None}


def test_probabilities_survive_save_and_load(tmp_path):
    model, X, y, task = _fit()
    model.save(tmp_path / "m.npz")
    back = rm.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict_proba(X[:40], task=task[:40]),
                                  model.predict_proba(X[:40], task=task[:40]))


# ------------------------------------------------------------------ long-form multiclass
def test_long_form_multiclass_columns_mean_one_label_in_every_row():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    task = np.repeat(["t1", "t2"], 150)
    y = np.empty(300, dtype=object)
    y[:150] = rng.choice(["a", "b", "c"], 150)
    y[150:] = rng.choice(["b", "c"], 150)
    model = rm.MultiTaskClassifier("l21", alpha=0.01).fit(X, y, task=task)
    assert model.union_classes_.tolist() == ["a", "b", "c"]
    P = model.predict_proba(X, task=task)
    assert P.shape == (300, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(P[150:, 0] == 0.0)  # t2 has no 'a'
    per_task = model.predict_proba([X[:150], X[150:]])  # each task's own classes
    np.testing.assert_allclose(P[:150], per_task[0], rtol=1e-12)
    np.testing.assert_allclose(P[150:, 1:], per_task[1], rtol=1e-12)
    F = model.decision_function(X, task=task)
    assert np.all(F[150:, 0] == -np.inf) and np.all(np.isfinite(F[:, 1:]))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X, task=task)), P, atol=1e-15)
    # a true 'b' of either task is the same column
    labels = model.predict(X, task=task)
    cols = np.argmax(P, axis=1)
    np.testing.assert_array_equal(model.union_classes_[cols], labels)


# ------------------------------------------------------------------ offsets for some tasks
def test_offsets_of_some_tasks_in_every_form():
    X, y, task, log_exposure = _recommender()
    full = np.zeros(len(y))
    full[task == "count"] = log_exposure
    base = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.01, tol=1e-10).fit(X, y, task=task,
                                                                        offset=full)
    by_dict = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.01, tol=1e-10).fit(
        X, y, task=task, offset={"count": log_exposure, "click": None})
    np.testing.assert_array_equal(by_dict.coef_, base.coef_)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(task=task, log_exposure=full)
    by_column = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.01, tol=1e-10).fit(
        frame, y, task="task", offset="log_exposure")
    assert by_column.n_features_in_ == 4
    np.testing.assert_allclose(by_column.coef_, base.coef_, atol=1e-12)
    np.testing.assert_allclose(
        by_column.predict(frame, task="task", offset="log_exposure"),
        base.predict(X, task=task, offset=full), rtol=1e-10)
    # the counts' expected values move with the exposure, the others do not
    count = task == "count"
    moved = base.predict(X[count], task=task[count], offset={"count": log_exposure + 1.0})
    np.testing.assert_allclose(moved, np.e * base.predict(X[count], task=task[count],
                                                          offset={"count": log_exposure}),
                               rtol=1e-12)


def test_offset_errors_name_the_task():
    X, y, task, log_exposure = _recommender()
    model = rm.MultiTaskRegressor(loss=LOSSES, alpha=0.01)
    with pytest.raises(ValueError, match="offset is keyed by 'clicks', which is not a task"):
        model.fit(X, y, task=task, offset={"clicks": log_exposure})
    with pytest.raises(ValueError, match="task 'click' has the logistic loss, which takes no "
                                         "offset"):
        model.fit(X, y, task=task, offset={"click": np.ones(150)})
    with pytest.raises(ValueError, match=r"offset\['count'\] has 3 values for the 150 rows"):
        model.fit(X, y, task=task, offset={"count": np.ones(3)})
    nan = np.zeros(len(y))
    nan[task == "rating"] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite entries in the rows of task "
                                         "'rating'.*dict keyed by task"):
        model.fit(X, y, task=task, offset=nan)
    with pytest.raises(ValueError, match="offset must hold numbers for task 'count'"):
        model.fit(X, y, task=task, offset={"count": ["a"] * 150})
    with pytest.raises(ValueError, match="offset='exposure' is not a column of X"):
        model.fit(pd.DataFrame(X).assign(task=task), y, task="task", offset="exposure")


# ------------------------------------------------------------------ errors naming the task
def test_target_errors_name_the_task():
    X, y, task, _ = _recommender()
    bad = y.copy()
    bad[np.flatnonzero(task == "count")[3]] = -1.0
    with pytest.raises(ValueError, match="task 'count': y of the poisson tasks has negative"):
        rm.MultiTaskRegressor(loss=LOSSES).fit(X, bad, task=task)
    bad = y.copy()
    bad[:2] = [0.25, 0.75]
    with pytest.raises(ValueError, match="Unknown label type: continuous.*Task 'click'.* "
                                         "include 0.25"):
        rm.MultiTaskRegressor(loss=LOSSES).fit(X, bad, task=task)
    click = task == "click"
    two = np.r_[y[click], bad[:150]]
    with pytest.raises(ValueError, match="Task 'b'.* include 0.25"):
        rm.MultiTaskClassifier().fit(np.vstack([X[click]] * 2), two,
                                     task=np.repeat(["a", "b"], 150))
    with pytest.raises(ValueError, match="task 'b': y has negative entries"):
        rm.MultiTaskRegressor(loss="poisson").fit(np.vstack([X[click]] * 2),
                                                  np.r_[np.ones(150), -np.ones(150)],
                                                  task=np.repeat(["a", "b"], 150))


def test_probabilities_of_rows_read_from_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    model, X, y, task = _fit()
    click = task == "click"
    frame = pd.DataFrame(X[click], columns=[f"x{j}" for j in range(4)]).assign(
        task=task[click], y=y[click])
    frame.to_parquet(tmp_path / "clicks.parquet")
    source = rm.ParquetTasks(tmp_path / "clicks.parquet", features=list(frame.columns[:4]),
                             chunk_rows=40)
    np.testing.assert_allclose(model.predict_proba(source),
                               model.predict_proba(X[click], task=task[click]), rtol=1e-12)
    frame.assign(task="count").to_parquet(tmp_path / "counts.parquet")
    with pytest.raises(ValueError, match="task 'count' has the poisson loss"):
        model.predict_proba(rm.ParquetTasks(tmp_path / "counts.parquet",
                                            features=list(frame.columns[:4])))
