r"""How many distinct observations a problem holds: the size its solver route is chosen by.

An observation is (its task, its row of X, its target); one that carries no weight (a zero
sample weight, a missing label) is not counted, and one repeated, or weighted, counts once.
So the rows that integer weights repeat and the weights themselves, and weights multiplied
by any constant, are problems of one size (the objective is the same: each task's row
weights are normalized by their sum), and they take one route.

Each row of X is hashed from the bits of its entries (a dense row by Python's hash of its
bytes; a sparse row by 64-bit multiply-xorshift mixing of its ``(column, value)`` pairs,
summed), combined with its task and target, and the distinct hashes are counted: O(nnz)
work, once per problem (:meth:`~regmtl.TaskData.memo`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..taskdata import TaskData

__all__ = ["distinct_observations"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    h = h.copy()
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


def _bits(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64) + 0.0  # (-0.0 and 0.0 alike)
    return v.view(np.uint64)


def _row_hashes(X) -> np.ndarray:
    """One uint64 per row of X, equal for rows of equal entries."""
    with np.errstate(over="ignore"):
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            if not X.has_canonical_format:  # (on a copy: the problem's design is kept)
                X = X.copy()
                X.sum_duplicates()
            keep = X.data != 0
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[keep]
            cols = X.indices[keep].astype(np.uint64)
            h = _mix(_bits(X.data[keep]) ^ _mix(cols * _GOLD + _GOLD))
            out = np.zeros(X.shape[0], dtype=np.uint64)
            np.add.at(out, rows, h)
            return out
        X = np.asarray(X, dtype=np.float64)
        # (Python's hash of each row's bytes: its C loop runs at memory speed; the dense and
        # sparse hashes differ, but each tells distinct rows apart, so the counts agree;
        # + 0.0 makes -0.0 a 0.0)
        out = np.fromiter((hash((row + 0.0).tobytes()) for row in X), dtype=np.int64,
                          count=X.shape[0])
        return out.view(np.uint64)


def distinct_observations(data: TaskData) -> int:
    """The number of distinct (task, row of X, target) among the observations of positive
    weight (see the module's docstring)."""
    s = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight
    live = s > 0
    if data.observed is not None:
        live &= data.observed
    idx = np.flatnonzero(live)
    if idx.size == 0:
        return 0
    rows = _row_hashes(data.X)
    task = data.task_of[idx]
    x_row = idx - data.offset[task]
    with np.errstate(over="ignore"):
        h = _mix(rows[x_row] ^ _mix(task.astype(np.uint64) + _GOLD))
        h = _mix(h ^ _bits(data.y[idx]))
    return int(np.unique(h).size)
