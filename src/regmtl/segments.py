"""Numba segment kernels over the task-grouped design: the linear map and its adjoint.

Rows are grouped by task (``indptr``); observation ``r`` of task ``t`` reads row ``r - offset[t]``
of the design (offset 0 in the stacked layout). ``W`` is p x T. One compiled pass over the rows
serves every task, so the cost does not depend on how many tasks there are -- the operations a
block of tasks needs, in one process or on a worker. The dense maps have NumPy twins (one
product per task) that a fresh process runs until numba is worth loading (:mod:`regmtl._jit`).
"""

from __future__ import annotations

from ._jit import njit

__all__ = ["adjoint_dense", "adjoint_sparse", "linear_dense", "linear_sparse"]

#: the most tasks the NumPy twins of the dense maps loop over (one BLAS call per task)
TWIN_TASKS = 64

# Reassociation lets LLVM vectorize the inner sums; NaN/inf semantics are kept (inputs are
# validated finite) and results are identical from run to run on a machine.
FAST = {"reassoc", "contract", "nsz", "arcp"}


def _linear_dense_twin(X, indptr, W, f):
    """:func:`linear_dense` by one matrix-vector product per task."""
    if W.shape[1] > TWIN_TASKS:
        return NotImplemented
    for t in range(W.shape[1]):
        a, b = indptr[t], indptr[t + 1]
        f[a:b] = X[a:b] @ W[:, t]
    return None


def _adjoint_dense_twin(X, indptr, u, G):
    """:func:`adjoint_dense` by one matrix-vector product per task."""
    if G.shape[1] > TWIN_TASKS:
        return NotImplemented
    for t in range(G.shape[1]):
        a, b = indptr[t], indptr[t + 1]
        G[:, t] = X[a:b].T @ u[a:b]
    return None


@njit(cache=True, fastmath=FAST, twin=_linear_dense_twin)
def linear_dense(X, indptr, W, f):
    """``f[r] = x_r . w_t`` for the stacked dense layout (``X`` Fortran-ordered): column by
    column, each task's rows a contiguous run of the column."""
    p, T = W.shape
    f[:] = 0.0
    for j in range(p):
        xj = X[:, j]
        for t in range(T):
            w = W[j, t]
            if w != 0.0:
                for r in range(indptr[t], indptr[t + 1]):
                    f[r] += xj[r] * w


@njit(cache=True, fastmath=FAST, twin=_adjoint_dense_twin)
def adjoint_dense(X, indptr, u, G):
    """``G[j, t] = sum_{r in t} x_rj u_r`` for the stacked dense layout."""
    p, T = G.shape
    for j in range(p):
        xj = X[:, j]
        for t in range(T):
            acc = 0.0
            for r in range(indptr[t], indptr[t + 1]):
                acc += xj[r] * u[r]
            G[j, t] = acc


@njit(cache=True, fastmath=FAST)
def linear_sparse(data, indices, colptr, task_of, W, f):
    """``f[r] += x_r . w_t`` for the stacked CSC layout."""
    p = W.shape[0]
    for j in range(p):
        for k in range(colptr[j], colptr[j + 1]):
            r = indices[k]
            f[r] += data[k] * W[j, task_of[r]]


@njit(cache=True, fastmath=FAST)
def adjoint_sparse(data, indices, colptr, task_of, u, G):
    """``G[j, t] = sum_{r in t} x_rj u_r`` for the stacked CSC layout."""
    p = G.shape[0]
    for j in range(p):
        for k in range(colptr[j], colptr[j + 1]):
            r = indices[k]
            G[j, task_of[r]] += data[k] * u[r]
