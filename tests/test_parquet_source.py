"""ParquetTasks: a Parquet data set read as runs of whole tasks, against the in-memory
TaskData of the same long-form rows (same X, y, row weights and task order, exactly)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from regmtl import as_task_data  # noqa: E402
from regmtl.parquet import ParquetTasks  # noqa: E402


def _frame(T=9, p=3, seed=0, labels=None):
    """Long-form columns, rows sorted by task (1 to 6 rows per task)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, T)
    ids = np.arange(T) * 3 + 5 if labels is None else np.asarray(labels)
    task = np.repeat(ids, sizes)
    N = len(task)
    cols = {f"x{j}": rng.standard_normal(N).astype(np.float32) for j in range(p)}
    cols["y"] = rng.standard_normal(N)
    cols["label"] = (rng.random(N) > 0.5).astype(np.int8)
    cols["task"] = task
    return cols


def _write(cols, path, row_group_size=None, metadata=None):
    table = pa.table(cols)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _design(cols, p=3):
    return np.column_stack([cols[f"x{j}"] for j in range(p)]).astype(np.float64)


def _stacked(source, **kw):
    parts = list(source.chunks(**kw))
    los = [lo for lo, _, _ in parts]
    his = [hi for _, hi, _ in parts]
    assert los[0] == 0 and his[-1] == source.n_tasks and los[1:] == his[:-1]
    X = np.vstack([b.X for _, _, b in parts])
    y = np.concatenate([b.y for _, _, b in parts])
    c = np.concatenate([b.c for _, _, b in parts])
    labels = np.concatenate([np.asarray(b.tasks)[b.task_index] for _, _, b in parts])
    sizes = np.concatenate([np.diff(b.indptr) for _, _, b in parts])
    return parts, X, y, c, labels, sizes


@pytest.mark.parametrize("row_group_size,chunk_rows", [(None, 10**6), (4, 5), (7, 1), (3, 11)])
@pytest.mark.parametrize("task_weight", ["equal", "samples", "array"])
def test_round_trip_matches_in_memory(tmp_path, row_group_size, chunk_rows, task_weight):
    cols = _frame()
    path = _write(cols, tmp_path / "d.parquet", row_group_size)
    source = ParquetTasks(path, features=["x0", "x1", "x2"], chunk_rows=chunk_rows)
    T = source.n_tasks
    tw = np.linspace(0.5, 2.0, T) if task_weight == "array" else task_weight
    ref = as_task_data(_design(cols), cols["y"], cols["task"], task_weight=tw)
    assert source.n_obs == ref.n_obs and source.n_features == 3 and T == ref.n_tasks
    assert source.tasks.tolist() == list(ref.tasks)
    assert source.task_rows.tolist() == np.diff(ref.indptr).tolist()
    parts, X, y, c, labels, sizes = _stacked(source, task_weight=tw)
    np.testing.assert_array_equal(X, ref.X)
    np.testing.assert_array_equal(y, ref.y)
    np.testing.assert_array_equal(c, ref.c)  # the GLOBAL problem's row weights
    assert labels.tolist() == list(ref.tasks)
    assert sizes.tolist() == np.diff(ref.indptr).tolist()
    for lo, hi, b in parts:
        assert b.X.dtype == np.float64 and b.X.flags.f_contiguous and b.form == "long"
        assert b.n_tasks == hi - lo and list(b.tasks) == list(source.tasks[lo:hi])
        assert b.indptr[0] == 0 and b.n_obs == source.task_rows[lo:hi].sum()
        # about chunk_rows rows: the chunk ends at the first task boundary past them
        assert b.n_obs - source.task_rows[hi - 1] < chunk_rows
        np.testing.assert_array_equal(b.effective_sizes(), ref.effective_sizes()[lo:hi])


def test_string_tasks_and_other_target(tmp_path):
    labels = ["a", "b", "ba", "c", "d"]
    cols = _frame(T=5, labels=labels)
    path = _write(cols, tmp_path / "s.parquet", row_group_size=3)
    source = ParquetTasks(path, features=["x0", "x1", "x2"], chunk_rows=4)
    assert source.tasks.tolist() == labels
    ref = as_task_data(_design(cols), cols["label"].astype(np.float64), cols["task"])
    _, X, y, c, got, _ = _stacked(source, target="label")
    np.testing.assert_array_equal(y, ref.y)
    np.testing.assert_array_equal(c, ref.c)
    assert got.tolist() == labels


def test_several_files_tasks_split_across_them(tmp_path):
    cols = _frame(T=12, seed=1)
    N = len(cols["y"])
    cut = [0, 5, 9, N // 2, N - 3, N]  # cuts inside tasks too
    folder = tmp_path / "parts"
    folder.mkdir()
    files = []
    for k, (a, b) in enumerate(zip(cut[:-1], cut[1:], strict=True)):
        # part.10 after part.9: read in the natural order of the names
        name = folder / f"part.{[1, 2, 9, 10, 11][k]}.parquet"
        files.append(_write({n: v[a:b] for n, v in cols.items()}, name, row_group_size=2))
    (folder / "_metadata").write_bytes(b"not read")
    ref = as_task_data(_design(cols), cols["y"], cols["task"])
    for path in (folder, files):
        source = ParquetTasks(path, features=["x0", "x1", "x2"], chunk_rows=6)
        assert source.tasks.tolist() == list(ref.tasks)
        _, X, y, c, _, sizes = _stacked(source)
        np.testing.assert_array_equal(X, ref.X)
        np.testing.assert_array_equal(y, ref.y)
        np.testing.assert_array_equal(c, ref.c)
        assert sizes.tolist() == np.diff(ref.indptr).tolist()


def test_construction_reads_the_task_column_only(tmp_path, monkeypatch):
    cols = _frame()
    path = _write(cols, tmp_path / "d.parquet", row_group_size=5)
    seen = []
    read = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kw):
        seen.append(tuple(columns))
        return read(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    source = ParquetTasks(path, features=["x0", "x2"])
    assert set(seen) == {("task",)}
    seen.clear()
    list(source.chunks())
    assert set(seen) == {("x0", "x2", "y")}  # the needed columns only
    assert len(seen) == pq.ParquetFile(path).metadata.num_row_groups  # each group read once


def test_default_features(tmp_path):
    cols = _frame()
    plain = ParquetTasks(_write(cols, tmp_path / "a.parquet"))
    assert plain.feature_names.tolist() == ["x0", "x1", "x2", "label"]
    meta = {b"regmtl.features": b'["x0", "x1", "x2"]'}
    named = ParquetTasks(_write(cols, tmp_path / "b.parquet", metadata=meta))
    assert named.feature_names.tolist() == ["x0", "x1", "x2"]


@pytest.mark.parametrize("where", ["row_group", "across_groups", "across_files"])
def test_unsorted_rows_are_refused(tmp_path, where):
    cols = _frame(T=6)
    if where == "row_group":
        cols["task"] = cols["task"][::-1].copy()
        path = _write(cols, tmp_path / "u.parquet")
    elif where == "across_groups":
        n = len(cols["y"])
        order = np.r_[np.arange(n // 2, n), np.arange(n // 2)]
        cols = {k: v[order] for k, v in cols.items()}
        path = _write(cols, tmp_path / "u.parquet", row_group_size=n // 2)
    else:
        n = len(cols["y"])
        path = tmp_path / "dir"
        path.mkdir()
        _write({k: v[: n // 2] for k, v in cols.items()}, path / "part.1.parquet")
        _write({k: v[n // 2:] for k, v in cols.items()}, path / "part.0.parquet")
    with pytest.raises(ValueError, match="not sorted by task.*Sort the rows by task"):
        ParquetTasks(path, features=["x0"])


def test_bad_columns_are_refused(tmp_path):
    cols = _frame()
    path = _write(cols, tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="task='id' is not a column"):
        ParquetTasks(path, task="id")
    with pytest.raises(ValueError, match="target='z' is not a column.*target=None"):
        ParquetTasks(path, target="z")
    with pytest.raises(ValueError, match="features='x9' is not a column"):
        ParquetTasks(path, features=["x0", "x9"])
    with pytest.raises(ValueError, match="features: 'y' is the task or target"):
        ParquetTasks(path, features=["x0", "y"])
    with pytest.raises(TypeError, match="features: expected a list"):
        ParquetTasks(path, features="x0")
    with pytest.raises(ValueError, match="chunk_rows"):
        ParquetTasks(path, chunk_rows=0)
    text = dict(cols, name=np.array(["u"] * len(cols["y"])))
    path2 = _write(text, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="features: column 'name' has type string"):
        ParquetTasks(path2)
    with pytest.raises(ValueError, match="target='name' has type string"):
        ParquetTasks(path2, target="name", features=["x0"])
    nulls = pa.table(dict(cols, task=pa.array([None] + cols["task"][1:].tolist())))
    pq.write_table(nulls, tmp_path / "n.parquet")
    with pytest.raises(ValueError, match="task: the column 'task' has missing ids"):
        ParquetTasks(tmp_path / "n.parquet", features=["x0"])
    pq.write_table(pa.table({k: v[:0] for k, v in cols.items()}), tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="path: .* holds no rows"):
        ParquetTasks(tmp_path / "e.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no Parquet file"):
        ParquetTasks(tmp_path / "empty")
    with pytest.raises(ValueError, match="neither a file nor a directory"):
        ParquetTasks(tmp_path / "nothing.parquet")
    other = _write({k: v for k, v in cols.items() if k != "x2"}, tmp_path / "o.parquet")
    with pytest.raises(ValueError, match="lacks the column 'x2'"):
        ParquetTasks([path, other])
    source = ParquetTasks(path, target=None)
    with pytest.raises(ValueError, match="target: this source has no target"):
        next(source.chunks())
    with pytest.raises(ValueError, match="target='x0' is a feature"):
        next(ParquetTasks(path).chunks(target="x0"))


def test_files_that_are_not_parquet_are_refused(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x0,y,task\n1,2,0\n")
    with pytest.raises(ValueError, match=r"path: '.*d\.csv' is not a readable Parquet file"):
        ParquetTasks(csv)
    whole = _write(_frame(), tmp_path / "d.parquet")
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[:40])  # a truncated file
    with pytest.raises(ValueError, match="is not a readable Parquet file"):
        ParquetTasks(cut)


@pytest.mark.parametrize("column,value", [("x1", np.nan), ("x0", np.inf), ("y", np.nan)])
def test_nan_and_inf_are_refused(tmp_path, column, value):
    cols = _frame()
    cols[column] = cols[column].copy()
    cols[column][13] = value
    path = _write(cols, tmp_path / "d.parquet", row_group_size=5)
    source = ParquetTasks(path, features=["x0", "x1", "x2"], chunk_rows=4)
    arg = "target" if column == "y" else "features"
    with pytest.raises(ValueError, match=rf"{arg}: column '{column}' holds .* at row 13 of .*"
                                         r"row group 2, task"):
        list(source.chunks())
    nulls = dict(cols, x2=pa.array([None] + cols["x2"][1:].tolist(), pa.float32()))
    _write(nulls, tmp_path / "n.parquet")
    with pytest.raises(ValueError, match="column 'x2' holds a missing value at row 0"):
        list(ParquetTasks(tmp_path / "n.parquet", features=["x2"]).chunks())


def test_without_pyarrow(tmp_path, monkeypatch):
    path = _write(_frame(), tmp_path / "d.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r'pip install "regmtl\[parquet\]"'):
        ParquetTasks(path)


def test_feature_scaling_and_standardized_reads(tmp_path):
    from regmtl.scaling import pooled_scaling

    cols = _frame(T=12)
    cols["x1"] = cols["x1"] * 100.0 + 1e4  # far from zero: the merged moments stay exact
    path = _write(cols, tmp_path / "d.parquet", row_group_size=4)
    source = ParquetTasks(path, features=["x0", "x1", "x2"], chunk_rows=7)
    X = _design(cols)
    mean, scale = source.feature_scaling()
    ref_mean, ref_scale = pooled_scaling([X])
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-13)
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-10)
    scaled = source.standardized(mean, scale)
    _, Xs, y, _, _, _ = _stacked(scaled)
    np.testing.assert_array_equal(Xs, (X - mean) / scale)
    np.testing.assert_array_equal(y, cols["y"])
    _, X0, *_ = _stacked(source)  # the source itself reads the raw features still
    np.testing.assert_array_equal(X0, X)
    with pytest.raises(ValueError, match="scale must hold 3 finite values"):
        source.standardized(mean, scale[:2])
