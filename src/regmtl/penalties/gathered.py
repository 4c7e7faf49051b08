r"""Row maps for the penalties whose prox couples a feature's row across all the tasks (L1,inf,
the temporal and fused penalties: a sort, a chain along the tasks' time order) on a variable
held in task blocks elsewhere.

Such a prox is separable over the rows ``W_j`` but not over the tasks, so on a Dask array
chunked by task blocks along the last axis it runs on the rows made whole: the array
rechunked to all its tasks in one chunk (the blocks' columns move worker to worker, never to
the client), the NumPy map applied there, and the result rechunked back to the blocks'
layout. A reduction over the rows (a dual norm of each row) stays a lazy array the same
way. On a NumPy array both are the map itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import is_blocked

__all__ = ["by_rows", "of_rows", "of_whole", "computed"]


def _whole(V: Any) -> Any:
    """V in one chunk along its last two axes (every row with all its tasks)."""
    return V.rechunk({V.ndim - 2: -1, V.ndim - 1: -1})


def by_rows(fn: Callable[..., np.ndarray], V: Any, *args: Any) -> Any:
    """``fn(V, *args)`` for a map ``fn`` of the rows ``V_j`` (each row's result depending on
    that row alone, the output V's shape): on a Dask array a lazy array in V's chunks, formed
    on the rows gathered whole (see the module); on a NumPy array ``fn(V, *args)``."""
    if not is_blocked(V):
        return fn(V, *args)
    out = _whole(V).map_blocks(
        lambda block: fn(np.ascontiguousarray(block, dtype=np.float64), *args),
        dtype=np.float64, meta=np.empty((0,) * V.ndim))
    return out.rechunk(V.chunks)


def of_rows(fn: Callable[..., np.ndarray], G: Any, *args: Any) -> Any:
    """``fn(G, *args)`` for a reduction ``fn`` of each row ``G_j`` (p x T to (p,)): on a Dask
    array a lazy (p,) array formed on the rows gathered whole; on a NumPy array the
    reduction itself."""
    if not is_blocked(G):
        return fn(G, *args)
    return _whole(G).map_blocks(
        lambda block: fn(np.ascontiguousarray(block, dtype=np.float64), *args),
        drop_axis=G.ndim - 1, dtype=np.float64, meta=np.empty((0,) * (G.ndim - 1)))


def of_whole(fn: Callable[..., float], G: Any, *args: Any) -> Any:
    """``fn(G, *args)`` for a scalar function of the rows together (a sum of per-row terms):
    on a Dask array a lazy 0-d array formed on G gathered in one chunk; else ``fn`` itself."""
    if not is_blocked(G):
        return fn(G, *args)
    one = (1,) * G.ndim
    return _whole(G).map_blocks(
        lambda block: np.full(one, fn(np.ascontiguousarray(block, dtype=np.float64), *args)),
        chunks=tuple((1,) for _ in one), dtype=np.float64).sum()


def computed(x: Any) -> float:
    """A lazy scalar brought home as a float (a number as it is)."""
    return float(x.compute()) if is_blocked(x) else float(x)
