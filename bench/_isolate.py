"""Run one call in a forked child process, killed past a wall-clock limit (benchmark helper).

A compiled solver (scikit-learn's Cython loop, skglm's numba loop) cannot be interrupted from
Python, so a peer that may run for minutes is timed in a child: the child times the call itself
and sends back its value; the parent waits at most ``limit`` seconds, then kills the child and
raises :class:`OverBudget`. The time reported is then only a lower bound (``> limit``), never an
extrapolation. The child is forked (Linux), so it inherits the data and the already compiled
numba functions: nothing is pickled on the way in, only the result on the way out.
"""

from __future__ import annotations

import multiprocessing as mp


class OverBudget(Exception):
    """The call did not return within ``limit`` seconds."""

    def __init__(self, limit: float):
        super().__init__(f"killed after {limit:g}s")
        self.limit = limit


def _child(fn, conn) -> None:
    try:
        msg = (True, fn())
    except BaseException as exc:  # sent to the parent, raised there
        msg = (False, exc)
    conn.send(msg)
    conn.close()


def call_with_limit(fn, limit: float):
    """``fn()`` in a forked child; its value, or :class:`OverBudget` past ``limit`` seconds."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, send), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(limit):
            raise OverBudget(limit)
        ok, value = recv.recv()
    finally:
        recv.close()
        proc.join(timeout=1.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if not ok:
        raise value
    return value
