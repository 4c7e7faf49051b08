r"""Block coordinate descent over features for row-separable penalties.

A block is one feature across all tasks: row ``W_j``. Each visit takes the negative gradient
``g_t = sum_{r in t} c_r x_rj theta_r`` of the data term in ``W_j`` and a proximal step with the
block's coordinate-wise Lipschitz constants ``L_jt = curvature * sum_{r in t} c_r x_rj^2``
and, for L2,1, the exact weighted group prox: exact block minimization for the quadratic loss
(one row of W meets each task's rows separately, so that block's Hessian is diagonal), a
majorization step for the logistic loss. With intercepts, coordinates are centered per task
(an exact reparametrization, see :mod:`._kernels`) and the intercepts are minimized exactly after
every epoch. The duality gap is checked every ``check_every`` epochs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import Penalty
from ..taskdata import TaskData
from ._kernels import bcd_epoch_dense, bcd_epoch_sparse, lipschitz_dense, lipschitz_sparse
from .certificates import Reference, certify, fit_intercepts
from .result import SolverResult

__all__ = ["bcd", "block_lipschitz", "centering"]


def centering(data: TaskData, datafit: Datafit, fit_intercept: bool) -> np.ndarray:
    """Per-task weighted means of the features (p x T) used as centers, or zeros.

    Sparse designs are centered only for the quadratic loss (where it stays sparse)."""
    if not fit_intercept or (sp.issparse(data.X) and datafit.code != 0):
        return np.zeros((data.n_features, data.n_tasks))
    return data.feature_means()


def block_lipschitz(data: TaskData, datafit: Datafit, xm: np.ndarray) -> np.ndarray:
    """``L[j, t] = curvature * sum_{r in t} c_r (x_rj - xm_jt)^2`` (p x T).

    A feature that is constant within a task has a centered column of rounding-level entries;
    its ``L`` is set to exactly 0 so that the block update leaves its coefficient at 0 (a tiny
    ``L`` would turn rounding noise in the gradient into a huge step)."""
    L = np.zeros((data.n_features, data.n_tasks))
    X = data.X
    if sp.issparse(X):
        lipschitz_sparse(X.data, X.indices, X.indptr, data.shared, data.task_of, data.c,
                         data.indptr, datafit.curvature, L)
        L -= datafit.curvature * xm**2 * data.task_sums(data.c)
    else:
        lipschitz_dense(X, data.c, data.indptr, data.offset, xm, datafit.curvature, L)
    constant = L <= 1e-10 * datafit.curvature * xm**2 * data.task_sums(data.c)
    L[constant] = 0.0
    return L


def _uniform_weights(data: TaskData) -> tuple[np.ndarray, bool]:
    ct = data.c[data.indptr[:-1]].copy()
    uniform = data.sample_weight is None and data.observed is None
    return ct, uniform


def bcd(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    check_every: int = 5,
    verbose: int = 0,
) -> SolverResult:
    """Minimize ``datafit + alpha * penalty`` from ``(W, b)`` (modified in place)."""
    params = penalty.bcd_params(alpha)
    if params is None:
        raise ValueError(f"{penalty!r} is not row-separable: use solver='fista'.")
    l1, l2, group = params
    y, c = data.y, data.c
    S = datafit.state(y, data.linear(W, b))
    xm = centering(data, datafit, fit_intercept)
    L = block_lipschitz(data, datafit, xm)
    ct, uniform = _uniform_weights(data)
    T = data.n_tasks
    features = np.arange(data.n_features, dtype=np.int64)
    g, delta, shift = np.zeros(T), np.zeros(T), np.zeros(T)
    X = data.X
    if fit_intercept:
        fit_intercepts(data, datafit, S, b)
    bc = b + np.einsum("jt,jt->t", xm, W)  # intercepts in centered coordinates
    cert = None
    it = 0
    converged = False
    for it in range(1, max_iter + 1):
        if sp.issparse(X):
            change = bcd_epoch_sparse(
                X.data, X.indices, X.indptr, data.shared, data.task_of, y, c, data.indptr,
                xm, S, W, L, datafit.code, l1, l2, group, features, g, delta, shift,
            )
        else:
            change = bcd_epoch_dense(
                X, y, c, ct, uniform, data.indptr, data.offset, xm, S, W, L, datafit.code,
                l1, l2, group, features, g, delta,
            )
        if fit_intercept:
            fit_intercepts(data, datafit, S, bc)
        if it % check_every == 0 or it == max_iter or change == 0.0 or it == 1:
            cert = certify(data, datafit, penalty, alpha, W, datafit.scores(y, S),
                           fit_intercept, ref)
            if verbose:
                print(f"[bcd] epoch {it:5d}  {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                converged = True
                break
    b = bc - np.einsum("jt,jt->t", xm, W)
    return SolverResult(W, b, it, cert, converged)
