"""Independent jobs over worker processes with the calling process working too
(``regmtl._parallel.run_jobs``): every job runs once, results do not depend on where."""

from __future__ import annotations

import os
import time

import joblib
import pytest
from joblib import delayed

from regmtl._parallel import run_jobs


def _square(i: int, pause: float) -> tuple[int, int]:
    time.sleep(pause)
    return os.getpid(), i * i


def _fails(i: int) -> int:
    if i == 3:
        raise ValueError(f"job {i} refused its input")
    time.sleep(0.01)
    return i


def test_the_calling_process_and_a_worker_share_the_jobs():
    jobs = [delayed(_square)(i, 0.05) for i in range(40)]
    out = dict(run_jobs(jobs, n_jobs=2))
    assert sorted(out) == list(range(40))
    assert [out[i][1] for i in range(40)] == [i * i for i in range(40)]
    pids = {pid for pid, _ in out.values()}
    assert os.getpid() in pids and len(pids) == 2  # the caller and one worker both worked


def test_one_job_runs_in_the_calling_process():
    out = list(run_jobs([delayed(_square)(i, 0.0) for i in range(5)], n_jobs=1))
    assert [i for i, _ in out] == list(range(5))
    assert {pid for _, (pid, _) in out} == {os.getpid()}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_failing_job_raises_its_error(n_jobs):
    with pytest.raises(ValueError, match="job 3 refused its input"):
        list(run_jobs([delayed(_fails)(i) for i in range(12)], n_jobs=n_jobs))


def test_another_backend_gets_the_jobs_as_they_are():
    with joblib.parallel_backend("threading", n_jobs=2):
        out = dict(run_jobs([delayed(_square)(i, 0.0) for i in range(8)], n_jobs=2))
    assert [out[i][1] for i in range(8)] == [i * i for i in range(8)]
    assert {pid for pid, _ in out.values()} == {os.getpid()}  # threads: one process
