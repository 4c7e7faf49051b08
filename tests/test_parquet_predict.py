"""predict, decision_function, predict_proba and score of a fitted model on a ParquetTasks,
chunk by chunk, against the in-memory methods on the same rows (a model fitted in memory)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from regmtl import MultiTaskClassifier, MultiTaskRegressor, ParquetTasks  # noqa: E402
from regmtl.datasets import make_parquet_tasks  # noqa: E402


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    train = make_parquet_tasks(root / "train", 300, n_rows=8, n_features=5, n_informative=2,
                               tasks_per_file=120, row_group_tasks=50, random_state=1)
    test = make_parquet_tasks(root / "test", 300, n_rows=4, n_features=5, n_informative=2,
                              held_out=True, tasks_per_file=120, row_group_tasks=50,
                              random_state=1)
    return train, test


def _long(path, target="y"):
    source = ParquetTasks(path, chunk_rows=10**9)
    (_, _, block), = source.chunks(target=target)
    return block.X, block.y, np.repeat(source.tasks, source.task_rows)


@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_regressor_predict_and_score_stream_as_in_memory(sets, loss):
    train, test = sets
    X, y, task = _long(train.path)
    model = MultiTaskRegressor(penalty="l21", alpha=0.02, loss=loss).fit(X, y, task=task)
    Xt, yt, tt = _long(test.path)
    source = ParquetTasks(test.path, chunk_rows=90)  # chunks of whole tasks, many of them
    assert len(source.bounds()) > 10
    np.testing.assert_array_equal(model.predict(source), model.predict(Xt, task=tt))
    np.testing.assert_allclose(model.score(source), model.score(Xt, yt, task=tt),
                               rtol=1e-13, atol=0)
    # a source of some of the fitted tasks
    part = ParquetTasks(test.files[1], chunk_rows=50)
    rows = np.isin(tt, part.tasks)
    np.testing.assert_array_equal(model.predict(part), model.predict(Xt[rows], task=tt[rows]))
    np.testing.assert_allclose(model.score(part), model.score(Xt[rows], yt[rows], task=tt[rows]),
                               rtol=1e-13, atol=0)


def test_classifier_predict_proba_and_score_stream_as_in_memory(sets):
    train, test = sets
    X, lab, task = _long(train.path, target="label")
    model = MultiTaskClassifier(penalty="l21", alpha=0.01).fit(X, lab.astype(int), task=task)
    Xt, lt, tt = _long(test.path, target="label")
    source = ParquetTasks(test.path, target="label", chunk_rows=70)
    pred = model.predict(source)
    assert pred.dtype == model.predict(Xt, task=tt).dtype
    np.testing.assert_array_equal(pred, model.predict(Xt, task=tt))
    np.testing.assert_array_equal(model.decision_function(source),
                                  model.decision_function(Xt, task=tt))
    np.testing.assert_array_equal(model.predict_proba(source), model.predict_proba(Xt, task=tt))
    np.testing.assert_allclose(model.score(source), model.score(Xt, lt.astype(int), task=tt),
                               rtol=1e-13, atol=0)


def test_errors(sets, tmp_path):
    train, test = sets
    X, y, task = _long(train.path)
    keep = task < 200
    model = MultiTaskRegressor(penalty="l21", alpha=0.02).fit(X[keep], y[keep], task=task[keep])
    source = ParquetTasks(test.path)
    with pytest.raises(ValueError, match="task: unknown task 200; the model was fitted on "
                                         "tasks 0, 1, .* Predict only for tasks"):
        model.predict(source)
    with pytest.raises(ValueError, match="task: unknown task 200"):
        model.score(source)
    full = MultiTaskRegressor(penalty="l21", alpha=0.02).fit(X, y, task=task)
    with pytest.raises(ValueError, match="task: X is a ParquetTasks, which carries its own"):
        full.predict(source, task=task)
    with pytest.raises(ValueError, match="y: X is a ParquetTasks"):
        full.score(source, y)
    with pytest.raises(ValueError, match="y: score needs the true targets"):
        full.score(X, task=task)
    with pytest.raises(ValueError, match="X has 4 features, but the model was fitted with 5"):
        full.predict(ParquetTasks(test.path, features=["x0", "x1", "x2", "x3"]))
    unfitted = MultiTaskRegressor()
    with pytest.raises(Exception, match="not fitted"):
        unfitted.predict(source)
    no_target = ParquetTasks(test.path, target=None)
    assert full.predict(no_target).shape == (test.n_obs,)
    with pytest.raises(ValueError, match="y: scoring needs the targets"):
        full.score(no_target)
