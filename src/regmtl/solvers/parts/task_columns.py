r"""A few centered columns of every task at once: their Grams, the moves they span and the
small solves on them, with no Python step per task.

For columns ``J`` (k of them) the centered, weighted Gram of task t is

.. math::

    Q_t = (X_{t,J} - 1 m_{J,t}^\top)^\top \operatorname{diag}(c_t)\,
          (X_{t,J} - 1 m_{J,t}^\top),

and a move ``Lam`` (k x T) spans ``u_t = (X_{t,J} - 1 m_{J,t}^\top) Lam_t``. Both are formed
over consecutive tasks in chunks of rows (a chunk's centered columns dense, at most
:data:`CHUNK` numbers), the Grams by batched products of the tasks' rows (tasks bucketed by
their length, padded within a bucket to at most twice their rows; long tasks a BLAS product
each): O(n k^2) work and O(CHUNK) memory whatever the number of tasks, in the stacked and in
the shared layout (row ``r - offset[t]`` of ``X``), dense or sparse.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas

from ...taskdata import TaskData

__all__ = ["CHUNK", "LONG", "centered_sparse_gram", "held_solves", "spanned", "task_grams"]

#: At most this many numbers in a chunk's centered columns (32 MB of float64).
CHUNK = 1 << 22
#: Tasks of this many rows or more on average: a Gram product per task (BLAS) beats the
#: batched, padded products.
LONG = 64


def _chunks(data: TaskData, xm: np.ndarray, cols: np.ndarray, width: int
            ) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(t0, t1, Z)``: tasks ``t0 .. t1 - 1`` whole and ``Z`` their rows' columns ``cols``
    centered by ``xm`` (p x T), dense, at most ``CHUNK / width`` rows a chunk (or one task)."""
    T, indptr = data.n_tasks, data.indptr
    sparse = sp.issparse(data.X)
    X = sp.csr_matrix(data.X[:, cols]) if sparse else data.X  # (sparse: the columns once)
    limit = max(CHUNK // max(width, 1), 1)
    t0 = 0
    while t0 < T:
        t1 = int(np.searchsorted(indptr, indptr[t0] + limit, side="right")) - 1
        t1 = min(max(t1, t0 + 1), T)
        counts = np.diff(indptr[t0:t1 + 1])
        if not np.any(data.offset[t0:t1]) and not sparse:  # stacked: the rows in one run
            Z = np.array(X[indptr[t0]:indptr[t1]][:, cols], dtype=np.float64)
        else:
            rows = np.arange(indptr[t0], indptr[t1]) - np.repeat(data.offset[t0:t1], counts)
            Z = X[rows].toarray() if sparse else np.array(X[np.ix_(rows, cols)],
                                                          dtype=np.float64)
        Z -= np.repeat(xm[cols, t0:t1].T, counts, axis=0)
        yield t0, t1, Z
        t0 = t1


def _buckets(counts: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """The tasks by their number of rows, in buckets whose largest is at most twice their
    smallest: ``(tasks, rows)``, ``rows`` the bucket's largest (so padding at most doubles
    the work), a bucket per power of two."""
    level = np.ceil(np.log2(np.maximum(counts, 1))).astype(int)
    for lv in np.unique(level[counts > 0]):
        tasks = np.flatnonzero((level == lv) & (counts > 0))
        yield tasks, int(counts[tasks].max())


def task_grams(data: TaskData, c: np.ndarray, xm: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``Q`` (T, k, k): each task's centered, weighted Gram on the columns ``cols``: batched
    products of the tasks' rows, padded with zero rows to the longest of their bucket; tasks
    of :data:`LONG` rows or more on average one BLAS product each (the product outweighs the
    step)."""
    k = len(cols)
    Q = np.zeros((data.n_tasks, k, k))
    if data.n_obs >= LONG * data.n_tasks:
        return _long_grams(data, c, xm, cols, Q)
    for t0, t1, Z in _chunks(data, xm, cols, k):
        start = data.indptr[t0:t1] - data.indptr[t0]
        counts = np.diff(data.indptr[t0:t1 + 1])
        w = c[data.indptr[t0]:data.indptr[t1]]
        for tasks, n in _buckets(counts):
            # rows of each task padded to n (the pad's weight 0 and row 0)
            idx = start[tasks, None] + np.arange(n)
            pad = np.arange(n) >= counts[tasks, None]
            idx[pad] = 0
            Zb = Z[idx]  # m x n x k
            wb = np.where(pad, 0.0, w[idx])
            Q[t0 + tasks] = np.matmul(Zb.transpose(0, 2, 1), Zb * wb[:, :, None])
    return Q


def _long_grams(data: TaskData, c: np.ndarray, xm: np.ndarray, cols: np.ndarray,
                Q: np.ndarray) -> np.ndarray:
    """:func:`task_grams` a task at a time (a sparse design: its columns in CSR once, each
    task's Gram the sparse product and the centering's rank-one terms, rows never dense)."""
    sparse = sp.issparse(data.X)
    Xf = sp.csr_matrix(data.X[:, cols]) if sparse else None
    # every column, uncentred, of a float design: each task's rows read in place (no copy of
    # its block; the interior point's Newton matrices, 40 % less time a Gram)
    whole = (not sparse and data.X.dtype == np.float64 and len(cols) == data.n_features
             and np.array_equal(cols, np.arange(len(cols))) and not np.any(xm[cols]))
    for t in range(data.n_tasks):
        a, b, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
        if sparse:
            Q[t] = centered_sparse_gram(Xf[a - o:b - o], c[a:b], xm[cols, t])
            continue
        if whole:
            Z = data.X[a - o:b - o]
            Q[t] = (Z.T * c[a:b]) @ Z
            continue
        Z = np.array(data.X[a - o:b - o][:, cols], dtype=np.float64)
        Z -= xm[cols, t]
        Q[t] = (Z * c[a:b, None]).T @ Z
    return Q


def spanned(data: TaskData, xm: np.ndarray, cols: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``u`` (n_obs): each task's centered columns ``cols`` times its column of ``lam``
    (k x T)."""
    u = np.zeros(data.n_obs)
    for t0, t1, Z in _chunks(data, xm, cols, len(cols)):
        a, b = data.indptr[t0], data.indptr[t1]
        per_row = np.repeat(lam[:, t0:t1].T, np.diff(data.indptr[t0:t1 + 1]), axis=0)
        u[a:b] = np.einsum("rk,rk->r", Z, per_row)
    return u


def held_solves(Q: np.ndarray, held: np.ndarray, rhs: np.ndarray, ridge: float
                ) -> np.ndarray | None:
    """``lam`` (k x T): per task, ``Q_t[S, S] lam_S = rhs_S`` on its held entries ``S``
    (``held[:, t]``), zero elsewhere; ``ridge`` times the largest ``|Q_t[S, S]|`` on the
    diagonal. One batched solve (the entries not held an identity block); None where one is
    singular or not finite."""
    k, T = held.shape
    M = held.T  # T x k
    H = Q * (M[:, :, None] & M[:, None, :])
    scale = np.maximum(np.abs(H).max(axis=(1, 2)), 1e-300)
    eye = np.arange(k)
    H[:, eye, eye] += np.where(M, ridge * scale[:, None], 1.0)
    try:
        lam = np.linalg.solve(H, np.where(M, rhs.T, 0.0)[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return None
    return lam.T if np.all(np.isfinite(lam)) else None


def centered_sparse_gram(X: sp.spmatrix, c: np.ndarray, m: np.ndarray) -> np.ndarray:
    r"""``(X - 1 m^T)^T diag(c) (X - 1 m^T)`` (k x k) of a sparse ``X`` (n x k) with its
    column centers ``m``: the sparse product :math:`X^\top C X`, then the centering's rank-one
    terms :math:`- s m^\top - m s^\top + (1^\top c)\, m m^\top` with :math:`s = X^\top c`
    (the rows are never made dense: O(nnz) work for the products, O(k^2) for the terms)."""
    Xc = X.T.multiply(c).tocsr()  # X^T diag(c), k x n
    H = (Xc @ X).toarray()
    if np.any(m):
        u = np.asarray(Xc.sum(axis=1)).ravel() - 0.5 * c.sum() * m  # s - (1'c) m / 2
        m = np.asarray(m, dtype=np.float64)
        # two rank-one updates, in place on the (symmetric) Fortran-ordered view H^T
        Hf = blas.dger(-1.0, u, m, a=H.T, overwrite_a=True)
        H = blas.dger(-1.0, m, u, a=Hf, overwrite_a=True).T
    return H
