"""The placements (``regmtl.placements``): every per-row output and score of a fitted model is
declared once and read by each placement, so that rows in memory, rows of a Parquet source read
chunk by chunk and rows on a Dask cluster (a real ``LocalCluster``) give the same values; what a
placement does not take is refused by name, never dropped."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.datasets import make_parquet_tasks  # noqa: E402
from regmtl.placements import (  # noqa: E402
    PLACEMENTS,
    DaskBlocks,
    InMemory,
    ParquetStream,
    placement_of,
)

P = 5


@pytest.fixture(scope="module")
def client():
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Held-out rows of 60 tasks as a Parquet source and as the same rows in memory."""
    root = tmp_path_factory.mktemp("placements")
    train = make_parquet_tasks(root / "train", 60, n_rows=12, n_features=P, n_informative=2,
                               tasks_per_file=30, row_group_tasks=10, random_state=3)
    test = make_parquet_tasks(root / "test", 60, n_rows=6, n_features=P, n_informative=2,
                              held_out=True, tasks_per_file=30, row_group_tasks=10, random_state=3)
    out = {}
    for name, made in (("train", train), ("test", test)):
        source = rm.ParquetTasks(made.path, chunk_rows=10**9)
        (_, _, block), = source.chunks(target="label")
        (_, _, numbers), = source.chunks(target="y")
        out[name] = (block.X, numbers.y, block.y.astype(int),
                     np.repeat(source.tasks, source.task_rows))
    out["source"] = test.path
    return out


def _frame(X, y, task):
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(P)])
    df["t"], df["y"] = task, y
    return dd.from_pandas(df, npartitions=3)


def test_the_placement_of_each_input():
    X = np.zeros((4, 2))
    assert isinstance(placement_of(X, np.zeros(4)), InMemory)
    assert isinstance(placement_of([X, X], [np.zeros(4)] * 2), InMemory)
    assert isinstance(PLACEMENTS[-1], InMemory)  # (it takes whatever no other one holds)
    ddf = dd.from_pandas(pd.DataFrame(X), npartitions=1)
    assert isinstance(placement_of(ddf, None, None), DaskBlocks)
    assert isinstance(placement_of(X, None, ddf[0]), DaskBlocks)  # (any input on Dask)


def test_every_output_of_a_classifier_is_the_same_on_every_placement(rows, client):
    X, _, lab, task = rows["train"]
    model = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-10).fit(X, lab, task=task)
    Xt, _, lt, tt = rows["test"]
    source = rm.ParquetTasks(rows["source"], target="label", chunk_rows=40)
    assert isinstance(placement_of(source), ParquetStream)
    frame = _frame(Xt, lt, tt)
    feats = frame[[f"x{j}" for j in range(P)]]
    for method in ("predict", "decision_function", "predict_proba", "predict_log_proba"):
        memory = getattr(model, method)(Xt, task=tt)
        streamed = getattr(model, method)(source)
        lazy = getattr(model, method)(feats.to_dask_array(lengths=True), task=frame["t"])
        np.testing.assert_array_equal(streamed, memory, err_msg=method)
        np.testing.assert_allclose(lazy.compute(), memory, rtol=1e-13, atol=1e-15,
                                   err_msg=method)
    accuracy = model.score(Xt, lt, task=tt)
    assert model.score(source) == pytest.approx(accuracy, rel=1e-13)
    assert float(model.score(feats, frame["y"], task=frame["t"]).compute()) == \
        pytest.approx(accuracy, rel=1e-13)


def test_a_regressor_of_a_log_link_on_every_placement(rows, client):
    X, y, _, task = rows["train"]
    counts = np.round(np.exp(np.clip(y, -3, 3)))
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss="poisson", tol=1e-10).fit(
        X, counts, task=task)
    Xt, yt, _, tt = rows["test"]
    frame = _frame(Xt, yt, tt)
    feats = frame[[f"x{j}" for j in range(P)]]
    memory = model.predict(Xt, task=tt)
    assert np.all(memory > 0)  # (the mean of the model: exp of the linear predictor)
    np.testing.assert_allclose(model.predict(feats, task=frame["t"]).compute(), memory,
                               rtol=1e-13)
    # an offset enters in memory; on Dask it is refused by name, not dropped
    offset = np.full(len(tt), np.log(2.0))
    np.testing.assert_allclose(model.predict(Xt, task=tt, offset=offset), 2 * memory,
                               rtol=1e-13)
    with pytest.raises(ValueError, match="^offset: Dask input is predicted without offsets"):
        model.predict(feats, task=frame["t"], offset=offset)
    with pytest.raises(ValueError, match="takes the squared loss"):
        model.score(feats, frame["y"], task=frame["t"])


def test_what_a_placement_does_not_take_is_refused_by_name(rows):
    X, y, _, task = rows["train"]
    source = rm.ParquetTasks(rows["source"], chunk_rows=40)
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    with pytest.raises(ValueError, match="^checkpoint: a fit in memory is not resumed"):
        rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task, checkpoint="ck")
    with pytest.raises(ValueError, match="^offset: a ParquetTasks is predicted without"):
        model.predict(source, offset=np.zeros(3))
    with pytest.raises(ValueError, match="^sample_weight, offset: a ParquetTasks is scored"):
        model.score(source, sample_weight=np.ones(3), offset=np.zeros(3))
    # alpha_max of a source: the per-feature terms are named, not dropped
    with pytest.raises(ValueError, match="given: penalty_factor, standardize"):
        rm.alpha_max(source, penalty="l21", penalty_factor=[0, 1, 1, 1, 1], standardize=True)
    assert rm.alpha_max(source, penalty="l21") > 0
    # a multinomial fit predicts rows in memory only
    multi = rm.MultiTaskClassifier("l21", alpha=0.05).fit(X[:90], np.arange(90) % 3)
    with pytest.raises(ValueError, match="a multinomial fit .* rows in memory, not a task"):
        multi.predict(source)


def test_the_rows_of_a_fit_are_read_once_through_the_public_seam(rows):
    """``fit_rows`` reads the rows as ``fit`` does (labels encoded, the multinomial's layout,
    the loss's parameters from the rows); the CV reads them so and refits on them."""
    X, y, lab, task = rows["train"]
    reg = rm.MultiTaskRegressor("l21", alpha=0.05, loss=rm.Huber())
    data, layout, loss = reg.fit_rows(X, y, task=task)
    assert layout is None and data.n_obs == len(y) and reg.n_features_in_ == P
    assert rm.Huber().delta is None and loss.delta > 0  # (read from the rows)
    assert loss.delta == reg.fit(X, y, task=task).loss_.delta
    clf = rm.MultiTaskClassifier("l21", alpha=0.05)
    data, layout, _ = clf.fit_rows(X[:90], np.arange(90) % 3)
    assert layout is not None and layout.n_tasks == 3 and list(clf.classes_) == [0, 1, 2]
    data, layout, _ = clf.fit_rows(X, lab, task=task)
    assert layout is None and set(np.unique(data.y)) == {-1.0, 1.0}
    cv = rm.MultiTaskRegressorCV("l21", alphas=4, cv=3).fit(X, y, task=task)
    plain = rm.MultiTaskRegressor("l21", alpha=cv.alpha_).fit(X, y, task=task)
    np.testing.assert_allclose(cv.coef_, plain.coef_, rtol=1e-10, atol=1e-12)
