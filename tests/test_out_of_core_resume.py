"""Out-of-core fits that survive being killed: ``fit(source, checkpoint=folder)`` keeps the
statistics pass chunk by chunk and FISTA's state at each certificate; a fit killed with SIGKILL
in any stage (a process of its own, ``out_of_core_kill_worker.py``) and called again with the
folder ends where the uninterrupted fit does, bit for bit (coefficients, intercepts,
iterations, certificate). Other data or parameters are refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import regmtl as rm  # noqa: E402
from regmtl.datasets import make_parquet_tasks  # noqa: E402
from regmtl.parquet import ParquetTasks  # noqa: E402

HERE = Path(__file__).parent
#: 2,000 tasks of 20 rows, 12 features, in 8 chunks of 5,000 rows
T, CHUNKS = 2000, 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "data"
    make_parquet_tasks(path, T, n_rows=20, n_features=12, tasks_per_file=800,
                       row_group_tasks=200, random_state=1)
    source = ParquetTasks(path, chunk_rows=5000, progress=False)
    assert source.n_chunks == CHUNKS
    alpha = 0.05 * rm.alpha_max(source)
    return path, alpha, _fit(path, alpha, None)


def _fit(path, alpha, folder):
    model = rm.MultiTaskRegressor("l21", alpha=alpha, tol=1e-8, max_iter=5000)
    return model.fit(ParquetTasks(path, chunk_rows=5000, progress=False), checkpoint=folder)


def _killed(path, alpha, folder, where, at, loss="squared"):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(HERE / "out_of_core_kill_worker.py"), str(path),
                          str(folder), repr(alpha), where, str(at), loss], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]  # (killed, never finished)


def _same(a, b):
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
    assert a.n_iter_ == b.n_iter_ and a.dual_gap_ == b.dual_gap_


@pytest.mark.parametrize("where,at", [("chunk", 4), ("save", 5), ("chunk", CHUNKS + 3)],
                         ids=["statistics pass", "FISTA", "certificate on the rows"])
def test_a_fit_killed_in_any_stage_resumes_to_the_same_point(data, tmp_path, where, at):
    path, alpha, full = data
    folder = tmp_path / "state"
    _killed(path, alpha, folder, where, at)
    assert (folder / "checkpoint.json").exists()
    if where == "chunk" and at < CHUNKS:  # (the pass stopped midway: three records a task)
        kept = (folder / "moments.bin").stat().st_size // ((12 + 3) * 8)
        assert 0 < kept < T
    _same(_fit(path, alpha, folder), full)
    _same(_fit(path, alpha, folder), full)  # (a finished fit's folder: the same again)


def test_killed_twice_at_random_points(data, tmp_path):
    path, alpha, full = data
    rng = np.random.default_rng(0)
    folder = tmp_path / "state"
    _killed(path, alpha, folder, "chunk", int(rng.integers(2, CHUNKS)))
    _killed(path, alpha, folder, "save", int(rng.integers(2, 12)))
    _same(_fit(path, alpha, folder), full)


def test_other_data_or_parameters_are_refused_by_name(data, tmp_path):
    path, alpha, _ = data
    folder = tmp_path / "state"
    _fit(path, alpha, folder)
    with pytest.raises(ValueError, match=r"other parameters \(parameters\.alpha: "):
        _fit(path, 2 * alpha, folder)
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in sorted(Path(path).iterdir()):
        (changed / f.name).write_bytes(f.read_bytes())
    other = tmp_path / "state2"
    _fit(changed, alpha, other)
    first = sorted(changed.glob("*.parquet"))[0]
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match=r"other data \(data\.files\[0\]\.mtime_ns: "):
        _fit(changed, alpha, other)


def test_what_takes_no_checkpoint(data, tmp_path):
    path, alpha, _ = data
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    with pytest.raises(ValueError, match="checkpoint: a fit in memory is not resumed"):
        rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, y, checkpoint=tmp_path / "x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        _fit(path, alpha, tmp_path / "file")
    with pytest.raises(ValueError, match=r"checkpoint=True: give a folder's path"):
        _fit(path, alpha, True)


def test_a_pass_starts_at_any_task(data):
    """``chunks(start=t)``: the chunks of a whole pass from the one holding task t, equal."""
    path, _, _ = data
    source = ParquetTasks(path, chunk_rows=5000, progress=False)
    full = list(source.chunks())
    for t in (0, 1, 250, 1000, 1999):
        part = list(source.chunks(start=t))
        k = next(i for i, (lo, hi, _) in enumerate(full) if lo <= t < hi)
        assert [(lo, hi) for lo, hi, _ in part] == [(lo, hi) for lo, hi, _ in full[k:]]
        assert all(np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and
                   np.array_equal(a.c, b.c) for (_, _, a), (_, _, b) in
                   zip(part, full[k:], strict=True))


def test_the_logistic_fit_resumes_after_a_newton_step(data, tmp_path):
    """The classifier out of core keeps its state after each proximal Newton step: killed in
    a later step's passes (each step reads the rows three times), resumed to the same point."""
    path, _, _ = data

    def fit(folder):
        source = ParquetTasks(path, chunk_rows=5000, progress=False, target="label")
        return rm.MultiTaskClassifier("l21", alpha=alpha, tol=1e-8).fit(
            source, checkpoint=folder)

    source = ParquetTasks(path, chunk_rows=5000, progress=False, target="label")
    alpha = 0.05 * rm.alpha_max(source, penalty="l21", loss="logistic")
    full = fit(None)
    folder = tmp_path / "state"
    _killed(path, alpha, folder, "chunk", 3 * CHUNKS + 5, loss="logistic")
    assert (folder / "newton.npz").exists()  # (a step was saved before the kill)
    again = fit(folder)
    _same(again, full)
    assert [c.tolist() for c in again.classes_] == [c.tolist() for c in full.classes_]
