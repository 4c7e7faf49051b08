"""Independent jobs over worker processes, the calling process working too.

joblib's default backend starts its worker processes on the first call, and each pays for the
imports (regmtl, scikit-learn, SciPy, pandas: about two seconds) before its first job; the
calling process waits meanwhile. :func:`run_jobs` has the calling process take jobs from the
same queue as ``n_jobs - 1`` workers, so it works while they start, and the results do not
depend on which process ran a job. The processes share the cores as joblib's workers do
(``cores // n_jobs`` threads each in BLAS and OpenMP). Any other backend (a Dask cluster through
``joblib.parallel_backend("dask")``, threads) gets the jobs as they are.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from numbers import Integral
from typing import Any

from joblib import Parallel, cpu_count, delayed, effective_n_jobs
from joblib.parallel import get_active_backend

__all__ = ["run_jobs", "check_n_jobs"]

#: The thread counts of numerical libraries, set in the workers' environment (as joblib does).
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def _call(i: int, job: tuple) -> tuple[int, Any]:
    func, args, kwargs = job
    return i, func(*args, **kwargs)


def check_n_jobs(n_jobs: Any, what: str = "n_jobs") -> None:
    """``n_jobs`` as joblib takes it: None or a nonzero int (-1: one process per core); else a
    ValueError naming ``what``."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral)
                               or n_jobs == 0):
        raise ValueError(f"{what}={n_jobs!r:.40} must be None or a nonzero int (the processes "
                         "to use; -1: one per core).")


def run_jobs(jobs: Sequence[tuple], n_jobs: int | None) -> Iterator[tuple[int, Any]]:
    """``(index, result)`` of every job of ``jobs`` (``joblib.delayed`` calls), in the order
    they complete.

    Jobs are taken in the given order: put the longest first, so that the last ones to finish
    are short.
    """
    check_n_jobs(n_jobs)
    n = effective_n_jobs(n_jobs)
    backend, _ = get_active_backend()
    if n < 2 or len(jobs) < 2 or type(backend).__name__ != "LokyBackend":
        yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_call)(i, job) for i, job in enumerate(jobs))
        return
    from joblib.executor import get_memmapping_executor  # the pool joblib's backend reuses
    from threadpoolctl import threadpool_limits

    # n processes share the cores: as joblib does for its workers, each gets cores // n
    # threads in its numerical libraries (unless the environment says otherwise)
    inner = max(cpu_count() // n, 1)
    env = {var: os.environ.get(var, str(inner)) for var in _THREAD_VARS}
    executor = get_memmapping_executor(n - 1, env=env)
    order = iter(range(len(jobs)))
    lock = threading.Lock()
    stop = threading.Event()

    def take() -> int | None:
        with lock:
            return None if stop.is_set() else next(order, None)

    done: queue.Queue = queue.Queue()

    def slot() -> None:  # one worker process's share: a job at a time from the queue
        try:
            while (i := take()) is not None:
                done.put(executor.submit(_call, i, jobs[i]).result())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            stop.set()
            done.put(exc)
        done.put(None)

    threads = [threading.Thread(target=slot, name=f"regmtl-jobs-{k}", daemon=True)
               for k in range(n - 1)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while (i := take()) is not None:
            with threadpool_limits(limits=inner):
                out = _call(i, jobs[i])
            yield out
            while running and not done.empty():
                item = done.get()
                running -= item is None
                if item is not None:
                    yield _check(item)
        while running:
            item = done.get()
            running -= item is None
            if item is not None:
                yield _check(item)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _check(item: Any) -> tuple[int, Any]:
    if isinstance(item, BaseException):
        raise item
    return item
