"""make_parquet_tasks: a synthetic Parquet set written in chunks, with its planted truth; the
values do not depend on the file layout, and a fit of the planted structure beats per-task
least squares on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from regmtl import MultiTaskRegressor, ParquetTasks, alpha_max  # noqa: E402
from regmtl.datasets import make_parquet_tasks, parquet_tasks_truth  # noqa: E402


def _read(source, target=None):
    parts = list(source.chunks(target=target))
    X = np.vstack([b.X for *_, b in parts])
    y = np.concatenate([b.y for *_, b in parts])
    return X, y


def test_layout_columns_and_truth(tmp_path):
    T, n, p = 10_000, 25, 20
    data = make_parquet_tasks(tmp_path / "t", T, tasks_per_file=4000, row_group_tasks=1500,
                              random_state=3)
    assert [f.name for f in data.files] == [f"part-0000{k}.parquet" for k in range(3)]
    first = pq.ParquetFile(data.files[0])
    assert first.metadata.num_row_groups == 3  # 1500 + 1500 + 1000 tasks
    schema = first.schema_arrow
    assert schema.names == [*(f"x{j}" for j in range(p)), "y", "label", "task"]
    assert [str(schema.field(c).type) for c in ("x0", "y", "label", "task")] == \
        ["float", "float", "int8", "int64"]
    source = ParquetTasks(data.path)
    assert source.n_tasks == T and source.n_obs == T * n == data.n_obs
    assert source.tasks.tolist() == list(range(T))
    assert source.feature_names.tolist() == data.feature_names == [f"x{j}" for j in range(p)]
    X, y = _read(source)
    W = data.coef
    assert W.shape == (T, p)
    off = np.setdiff1d(np.arange(p), data.support)
    assert len(data.support) == 5 and not W[:, off].any()
    # the planted model: residuals of the truth are the noise (sigma = 1)
    f = np.einsum("ij,ij->i", X, W[np.repeat(np.arange(T), n)])
    resid = y - f
    assert abs(resid.mean()) < 0.01 and abs(resid.std() - 1.0) < 0.01
    # w_t = rho c + sqrt(1 - rho^2) e_t: the tasks' mean weight is rho c
    np.testing.assert_allclose(W[:, data.support].mean(axis=0), 0.8 * data.shared_coef,
                               atol=0.03)
    _, label = _read(source, target="label")
    per_task = label.reshape(T, n)
    assert set(np.unique(label)) == {0.0, 1.0}
    assert (per_task.min(axis=1) == 0).all() and (per_task.max(axis=1) == 1).all()
    # P(label = 1) = sigmoid(f): the labels follow the scores
    assert label[f > 2].mean() > 0.8 and label[f < -2].mean() < 0.2
    truth = parquet_tasks_truth(data.path)
    np.testing.assert_array_equal(truth.coef, W)
    np.testing.assert_array_equal(truth.coef_of(4090, 4200), W[4090:4200])


def test_same_values_whatever_the_layout_and_same_bytes(tmp_path):
    T = 9000
    a = make_parquet_tasks(tmp_path / "a", T, n_rows=6, n_features=5, random_state=7)
    b = make_parquet_tasks(tmp_path / "b", T, n_rows=6, n_features=5, random_state=7,
                           tasks_per_file=2500, row_group_tasks=999)
    Xa, ya = _read(ParquetTasks(a.path))
    Xb, yb = _read(ParquetTasks(b.path, chunk_rows=7000))
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(ya, yb)
    again = make_parquet_tasks(tmp_path / "c", T, n_rows=6, n_features=5, random_state=7)
    assert a.files[0].read_bytes() == again.files[0].read_bytes()
    other = make_parquet_tasks(tmp_path / "d", T, n_rows=6, n_features=5, random_state=8)
    assert a.files[0].read_bytes() != other.files[0].read_bytes()
    # a second write to the same folder replaces the set
    make_parquet_tasks(tmp_path / "b", 10, n_rows=6, n_features=5, random_state=7)
    assert ParquetTasks(tmp_path / "b").n_tasks == 10


def test_held_out_rows_share_the_truth_and_the_fit_beats_per_task_least_squares(tmp_path):
    T, p = 2000, 20
    train = make_parquet_tasks(tmp_path / "train", T, random_state=0)
    test = make_parquet_tasks(tmp_path / "test", T, n_rows=10, held_out=True, random_state=0)
    np.testing.assert_array_equal(train.coef, test.coef)
    X, y = _read(ParquetTasks(train.path))
    Xt, yt = _read(ParquetTasks(test.path))
    assert np.isin(Xt[:, 0], X[:, 0]).mean() < 0.01  # new rows (float32 ties aside)
    task, task_t = np.repeat(np.arange(T), 25), np.repeat(np.arange(T), 10)

    def mse(W, b):
        return float(np.mean((yt - np.einsum("ij,ij->i", Xt, W[task_t]) - b[task_t]) ** 2))

    truth = mse(train.coef, np.zeros(T))
    # per-task least squares (with an intercept): 21 parameters from 25 rows, a noisy fit
    Z = np.concatenate([X, np.ones((len(X), 1))], axis=1).reshape(T, 25, p + 1)
    coef = np.linalg.solve(np.einsum("tni,tnj->tij", Z, Z),
                           np.einsum("tni,tn->ti", Z, y.reshape(T, 25))[..., None])[..., 0]
    independent = mse(coef[:, :p], coef[:, p])
    model = MultiTaskRegressor(penalty="l21", alpha=0.1 * alpha_max(X, y, task))
    model.fit(X, y, task=task)
    shared = mse(model.coef_, model.intercept_)
    assert abs(truth - 1.0) < 0.05  # the noise variance
    assert independent > 3.0 * truth  # p / (n - p - 1) of extra variance
    assert truth < shared < 1.6 * truth  # the shared support, learned
    assert shared < 0.5 * independent
    found = np.flatnonzero(np.any(model.coef_ != 0, axis=0))
    assert set(train.support) <= set(found)


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="n_tasks must be an int >= 1"):
        make_parquet_tasks(tmp_path, 0)
    with pytest.raises(ValueError, match="n_rows must be an int >= 2"):
        make_parquet_tasks(tmp_path, 5, n_rows=1)
    with pytest.raises(ValueError, match="n_informative must be an int in"):
        make_parquet_tasks(tmp_path, 5, n_features=3, n_informative=4)
    with pytest.raises(ValueError, match="row_group_tasks must be an int in"):
        make_parquet_tasks(tmp_path, 5, tasks_per_file=10, row_group_tasks=11)
    with pytest.raises(ValueError, match="random_state must be an int >= 0"):
        make_parquet_tasks(tmp_path, 5, random_state=None)
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        make_parquet_tasks(tmp_path, 5, noise=-1.0)
