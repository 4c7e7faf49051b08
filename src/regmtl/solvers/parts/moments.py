r"""Per-task feature moments: the centering means and the block constants of coordinate descent.

``xm[j, t] = sum_{r in t} c_r x_rj / sum_{r in t} c_r`` (zero without intercepts) and
``L[j, t] = sum_{r in t} c_r (x_rj - xm_jt)^2``, the curvature of the data term in ``W[j, t]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...taskdata import TaskData
from ._kernels import column_moments, moments_dense, moments_sparse

__all__ = ["feature_moments", "uniform_within_tasks"]


def uniform_within_tasks(data: TaskData) -> bool:
    """Every row of a task has the same weight (no sample weights, no missing labels)."""
    return data.sample_weight is None and data.observed is None


def feature_moments(
    data: TaskData,
    c: np.ndarray,
    center: bool,
    features: np.ndarray | None = None,
    uniform: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``(xm, L)``, both p x T; rows outside ``features`` (default: all) are left at 0.

    ``uniform`` (row weights constant within each task, shared dense design): one pass over the
    columns serves every task, ``L[j, t] = c_t * sum_r (x_rj - m_j)^2``.
    """
    p, T = data.n_features, data.n_tasks
    if not data.rows_local:  # task blocks elsewhere: each block's tasks where they are
        if features is not None:
            raise ValueError("feature_moments: a feature subset is not taken on task blocks.")
        return data.arrays(*data.blockwise(_block_moments, c, center, uniform,
                                           out=[("coef", p), ("coef", p)]))
    xm, L = np.zeros((p, T)), np.zeros((p, T))
    X = data.X
    csum = data.task_sums(c)
    if uniform and data.shared and not sp.issparse(X):
        if center:
            m, ss = np.zeros(p), np.zeros(p)
            column_moments(X, m, ss)
        else:
            m, ss = np.zeros(p), np.einsum("ij,ij->j", X, X)
        ct = c[data.indptr[:-1]]
        xm[:] = m[:, None]
        L[:] = ss[:, None] * ct[None, :]
        if features is not None:
            keep = np.zeros(p, dtype=bool)
            keep[features] = True
            xm[~keep] = 0.0
            L[~keep] = 0.0
        return xm, L
    feats = np.arange(p, dtype=np.int64) if features is None else np.asarray(features, np.int64)
    if sp.issparse(X):
        moments_sparse(X.data, X.indices, X.indptr, data.shared, data.task_of, c, data.indptr,
                       csum, center, feats, xm, L, np.zeros(T), np.zeros(T))
    else:
        moments_dense(X, c, data.indptr, data.offset, csum, center, feats, xm, L)
    return xm, L


def _block_moments(block: TaskData, c: np.ndarray, center: bool, uniform: bool):
    return feature_moments(block, np.asarray(c), center, uniform=uniform)
