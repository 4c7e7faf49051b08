"""A damaged checkpoint is never read: every file of an out-of-core fit's folder is checked
against the digest written with it. Bytes flipped in the Grams' spill file, a state file cut
short or flipped, an edited ``checkpoint.json`` or ``pass.log``: each is refused naming the
folder and the file, or with ``Checkpoint(folder, if_damaged="restart")`` the folder is
emptied with a warning naming the file and the fit ends where the uninterrupted fit does, bit
for bit."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from test_out_of_core_resume import _fit, _killed, _same  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datasets import make_parquet_tasks  # noqa: E402
from regmtl.parquet import ParquetTasks  # noqa: E402
from regmtl.solvers.streamed.checkpoint import (  # noqa: E402
    PASS_LOG,
    DamagedCheckpoint,
    log_chunk,
    logged_tasks,
)


@pytest.fixture(scope="module")
def killed(data, tmp_path_factory):
    """A folder of a fit killed after its third FISTA state (the statistics pass whole)."""
    path, alpha, full = data
    folder = tmp_path_factory.mktemp("integrity") / "state"
    _killed(path, alpha, folder, "save", 3)
    assert (folder / "fista.npz").exists() and (folder / PASS_LOG).exists()
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The resume tests' data: 2,000 tasks of 20 rows, 12 features, 8 chunks."""
    path = tmp_path_factory.mktemp("integrity-data") / "data"
    make_parquet_tasks(path, 2000, n_rows=20, n_features=12, tasks_per_file=800,
                       row_group_tasks=200, random_state=1)
    alpha = 0.05 * rm.alpha_max(ParquetTasks(path, chunk_rows=5000, progress=False))
    return path, alpha, _fit(path, alpha, None)


def _flip(file, where=0.5, n=64):
    raw = bytearray(file.read_bytes())
    at = int(where * (len(raw) - n))
    raw[at:at + n] = bytes(b ^ 0xFF for b in raw[at:at + n])
    file.write_bytes(bytes(raw))


def _truncate(file, keep=1 / 3):
    raw = file.read_bytes()
    file.write_bytes(raw[:int(keep * len(raw))])


def _edit_json(file):
    record = json.loads(file.read_text())
    record["parameters"]["tol"] = 0.5  # (still JSON: only the digest tells)
    file.write_text(json.dumps(record))


def _edit_log(file):
    """The second chunk's line made to start one task late (a digest edited instead reads as
    its file's records not matching it, which names that file)."""
    lines = file.read_text().splitlines()
    parts = lines[1].split()
    parts[0] = str(int(parts[0]) + 1)
    lines[1] = " ".join(parts)
    file.write_text("\n".join(lines) + "\n")


DAMAGE = {
    "grams.bin flipped": ("grams.bin", _flip),
    "fista.npz cut to a third": ("fista.npz", _truncate),
    "fista.npz flipped": ("fista.npz", _flip),
    "checkpoint.json edited": ("checkpoint.json", _edit_json),
    "pass.log edited": (PASS_LOG, _edit_log),
    "moments.bin flipped at its end": ("moments.bin", lambda f: _flip(f, 1.0, 8)),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_is_refused_by_name(data, killed, tmp_path, case):
    path, alpha, full = data
    name, damage = DAMAGE[case]
    folder = tmp_path / "state"
    shutil.copytree(killed, folder)
    damage(folder / name)
    with pytest.raises(DamagedCheckpoint, match=rf"checkpoint='{folder}': its file {name} is "
                                                r"damaged .*nothing in it was read") as err:
        _fit(path, alpha, folder)
    assert err.value.name == name
    assert "if_damaged='restart'" in str(err.value)


@pytest.mark.parametrize("case", ["grams.bin flipped", "fista.npz flipped"])
def test_restart_empties_the_folder_and_ends_where_a_fresh_fit_does(data, killed, tmp_path,
                                                                    case):
    path, alpha, full = data
    name, damage = DAMAGE[case]
    folder = tmp_path / "state"
    shutil.copytree(killed, folder)
    damage(folder / name)
    with pytest.warns(RuntimeWarning, match=rf"its file {name} is damaged .* starts over"):
        again = _fit(path, alpha, rm.Checkpoint(folder, if_damaged="restart"))
    _same(again, full)
    with warnings.catch_warnings():  # (the folder whole again: resumed, no warning)
        warnings.simplefilter("error", RuntimeWarning)
        _same(_fit(path, alpha, folder), full)


def test_an_undamaged_folder_resumes_bit_for_bit(data, killed, tmp_path):
    path, alpha, full = data
    folder = tmp_path / "state"
    shutil.copytree(killed, folder)
    _same(_fit(path, alpha, rm.Checkpoint(folder)), full)


def test_the_logistic_newton_state_is_checked(data, tmp_path):
    path, _, _ = data
    folder = tmp_path / "state"
    _killed(path, 0.01, folder, "chunk", 40, loss="logistic")
    state = folder / "newton.npz"
    if not state.exists():
        pytest.skip("killed before the first Newton step was kept")
    _flip(state)
    with pytest.raises(DamagedCheckpoint, match="its file newton.npz is damaged"):
        rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-8).fit(
            ParquetTasks(path, chunk_rows=5000, progress=False, target="label"),
            checkpoint=folder)


def test_the_log_counts_whole_checked_chunks(tmp_path):
    """A chunk's records are counted once its line is whole and its records match it; a line
    cut short by a kill, or records past the last line, are not."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    (tmp_path / "x.bin").write_bytes(a.tobytes() + b.tobytes())
    files = [("x.bin", 3 * 8)]
    assert logged_tasks(tmp_path, files) == 0
    log_chunk(tmp_path, 0, 5, [a])
    assert logged_tasks(tmp_path, files) == 5
    log_chunk(tmp_path, 5, 9, [b])
    assert logged_tasks(tmp_path, files) == 9
    log = tmp_path / PASS_LOG
    log.write_bytes(log.read_bytes()[:-7])  # (the last line cut short)
    assert logged_tasks(tmp_path, files) == 5
    with pytest.raises(ValueError, match="give 'raise'"):
        rm.Checkpoint(tmp_path, if_damaged="ignore")
    with pytest.raises(ValueError, match="folder=3: give a folder's path"):
        rm.Checkpoint(3)
    # a log line that is no chunk's (text edited by hand) names the log
    first = log.read_text().splitlines()[0]
    log.write_text(first + "\nnot a line\n")
    with pytest.raises(DamagedCheckpoint, match="its file pass.log is damaged"):
        logged_tasks(tmp_path, files)
