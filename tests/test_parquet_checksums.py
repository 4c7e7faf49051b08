"""Parquet pages are checked against their checksums where a file has them, and every Parquet
file regmtl writes has them: a damaged page is refused naming the file and the row group,
never read as numbers."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from regmtl.datasets import DataFileError, make_parquet_tasks, read_table  # noqa: E402
from regmtl.parquet import ParquetTasks  # noqa: E402


def _flip_middle(file, n=64):
    raw = bytearray(file.read_bytes())
    at = len(raw) // 2 - n // 2
    raw[at:at + n] = bytes(b ^ 0x5A for b in raw[at:at + n])
    file.write_bytes(bytes(raw))


def _table(n_tasks=40, rows=50, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({"x0": rng.standard_normal(n_tasks * rows),
                     "x1": rng.standard_normal(n_tasks * rows),
                     "y": rng.standard_normal(n_tasks * rows),
                     "task": np.repeat(np.arange(n_tasks), rows)})


def _chunks(path):
    return [block.X.copy() for _, _, block in
            ParquetTasks(path, target="y", task="task", progress=False).chunks()]


@pytest.mark.parametrize("checksums", [False, True])
def test_a_damaged_page_is_refused_where_the_file_has_checksums(tmp_path, checksums):
    """Uncompressed float pages: without checksums the damage reads as other numbers (what a
    file without them risks); with them it is refused by name."""
    path = tmp_path / "rows.parquet"
    pq.write_table(_table(), path, compression="NONE", write_page_checksum=checksums,
                   row_group_size=500)
    clean = _chunks(path)
    _flip_middle(path)
    if not checksums:
        damaged = _chunks(path)
        assert not all(np.array_equal(a, b) for a, b in zip(clean, damaged, strict=True))
        return
    with pytest.raises(ValueError, match=r"rows.parquet' is damaged in row group \d+ .*CRC"):
        _chunks(path)
    with pytest.raises(DataFileError, match="cannot read .*rows.parquet as Parquet"):
        read_table(path, task_col="task", target="y")


def test_the_files_regmtl_writes_carry_page_checksums(tmp_path):
    make_parquet_tasks(tmp_path / "data", 60, n_rows=20, n_features=5, tasks_per_file=60,
                       row_group_tasks=20, random_state=0)
    (file,) = sorted((tmp_path / "data").glob("*.parquet"))
    before = [b.copy() for b in _chunks(file)]
    assert sum(len(b) for b in before) == 60 * 20
    _flip_middle(file)
    with pytest.raises(ValueError, match="is damaged in row group"):
        _chunks(file)
