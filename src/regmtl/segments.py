"""Numba segment kernels over the task-grouped design: the linear map and its adjoint.

Rows are grouped by task (``indptr``); observation ``r`` of task ``t`` reads row ``r - offset[t]``
of the design (offset 0 in the stacked layout). ``W`` is p x T. One compiled pass over the rows
serves every task, so the cost does not depend on how many tasks there are -- the operations a
block of tasks needs, in one process or on a worker.
"""

from __future__ import annotations

from ._jit import njit

__all__ = ["adjoint_dense", "adjoint_sparse", "linear_dense", "linear_sparse"]

# Reassociation lets LLVM vectorize the inner sums; NaN/inf semantics are kept (inputs are
# validated finite) and results are identical from run to run on a machine.
FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, fastmath=FAST)
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


@njit(cache=True, fastmath=FAST)
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
