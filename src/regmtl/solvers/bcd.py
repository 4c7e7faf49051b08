r"""Block coordinate descent over features for row-separable penalties.

A block is one feature across all tasks: row ``W_j``. For a weighted least-squares problem
``sum_r c_r (z_r - f_r)^2 / 2 + penalty`` each visit takes the negative gradient
``g_t = sum_{r in t} c_r x_rj R_r`` and minimizes the block exactly: one row of W meets each
task's rows separately, so its Hessian is ``diag(L_jt)`` with ``L_jt = sum_{r in t} c_r x_rj^2``
(soft-thresholding for entrywise penalties, the weighted group prox for L2,1). With intercepts,
coordinates are centered per task (an exact reparametrization, see :mod:`._kernels`) and the
intercepts are minimized exactly after every epoch.

- Squared loss: the problem itself (``z = y``, ``c`` the row weights).
- Logistic loss: proximal Newton. Each outer step builds the weighted least-squares model of the
  loss at the current scores (weights ``h_r = c_r s_r (1 - s_r)``, ``s_r = sigmoid(-y_r f_r)``,
  targets ``f_r + c_r theta_r / h_r``), minimizes it with the same epochs, and takes the
  direction with a backtracking line search on the true objective (Lee, Sun & Saunders 2014).

The duality gap is checked every ``check_every`` epochs, and whenever the largest coefficient
change falls below ``tol`` relative to the largest coefficient (squared loss), or after every
outer step (logistic loss).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import Penalty
from ..taskdata import TaskData
from ._kernels import (
    QUADRATIC,
    bcd_epoch_dense,
    bcd_epoch_sparse,
    lipschitz_dense,
    lipschitz_sparse,
    update_intercepts,
)
from .certificates import Reference, certify, fit_intercepts
from .result import SolverResult

__all__ = ["bcd", "block_lipschitz", "weighted_means"]


def weighted_means(data: TaskData, c: np.ndarray) -> np.ndarray:
    """Per-task means of the features under row weights ``c`` (p x T)."""
    return data.adjoint(c) / data.task_sums(c)


def block_lipschitz(data: TaskData, c: np.ndarray, xm: np.ndarray) -> np.ndarray:
    """``L[j, t] = sum_{r in t} c_r (x_rj - xm_jt)^2`` (p x T).

    A feature that is constant within a task has a centered column of rounding-level entries;
    its ``L`` is set to exactly 0 so that the block update leaves its coefficient at 0 (a tiny
    ``L`` would turn rounding noise in the gradient into a huge step)."""
    L = np.zeros((data.n_features, data.n_tasks))
    X = data.X
    csum = data.task_sums(c)
    if sp.issparse(X):
        lipschitz_sparse(X.data, X.indices, X.indptr, data.shared, data.task_of, c,
                         data.indptr, L)
        L -= xm**2 * csum
    else:
        lipschitz_dense(X, c, data.indptr, data.offset, xm, L)
    L[L <= 1e-10 * xm**2 * csum] = 0.0
    return L


class _LeastSquaresEpochs:
    """Epochs of block coordinate descent on ``sum_r c_r (z_r - f_r)^2 / 2 + penalty``.

    Holds what stays fixed while the weights do: centers, Lipschitz constants, buffers. The
    residual ``R = z - f`` and the centered intercepts ``bc`` are updated in place.
    """

    def __init__(self, data: TaskData, c: np.ndarray, uniform: bool, fit_intercept: bool,
                 l1: float, l2: float, group: bool):
        self.data, self.c, self.fit_intercept = data, c, fit_intercept
        p, T = data.n_features, data.n_tasks
        self.xm = weighted_means(data, c) if fit_intercept else np.zeros((p, T))
        self.L = block_lipschitz(data, c, self.xm)
        self.ct = c[data.indptr[:-1]].copy()
        self.offset = data.offset
        self.uniform = uniform
        self.params = (l1, l2, group)
        self.features = np.arange(p, dtype=np.int64)
        self.g, self.delta, self.shift = np.zeros(T), np.zeros(T), np.zeros(T)

    def centered(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Intercepts in centered coordinates, ``b' = b + xm_t . w_t``."""
        return b + np.einsum("jt,jt->t", self.xm, W)

    def uncentered(self, W: np.ndarray, bc: np.ndarray) -> np.ndarray:
        return bc - np.einsum("jt,jt->t", self.xm, W)

    def intercepts(self, R: np.ndarray, bc: np.ndarray) -> None:
        if self.fit_intercept:
            update_intercepts(R, self.c, self.data.indptr, R, bc, QUADRATIC, 1, 0.0)

    def run(self, R: np.ndarray, W: np.ndarray, bc: np.ndarray) -> float:
        """One epoch then the exact intercepts; returns the largest coefficient change."""
        data, X, (l1, l2, group) = self.data, self.data.X, self.params
        if sp.issparse(X):
            change = bcd_epoch_sparse(
                X.data, X.indices, X.indptr, data.shared, data.task_of, self.c, data.indptr,
                self.xm, R, W, self.L, l1, l2, group, self.features, self.g, self.delta,
                self.shift,
            )
        else:
            change = bcd_epoch_dense(
                X, self.c, self.ct, self.uniform, data.indptr, self.offset, self.xm, R, W,
                self.L, l1, l2, group, self.features, self.g, self.delta,
            )
        self.intercepts(R, bc)
        return change


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
    check_every: int = 10,
    verbose: int = 0,
) -> SolverResult:
    """Minimize ``datafit + alpha * penalty`` from ``(W, b)`` (modified in place)."""
    params = penalty.bcd_params(alpha)
    if params is None:
        raise ValueError(f"{penalty!r} is not row-separable: use solver='fista'.")
    if datafit.code != QUADRATIC:
        return _prox_newton(data, datafit, penalty, alpha, W, b, params, ref=ref,
                            fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                            verbose=verbose)
    uniform = data.sample_weight is None and data.observed is None
    epochs = _LeastSquaresEpochs(data, data.c, uniform, fit_intercept, *params)
    R = data.y - data.linear(W, b)
    bc = epochs.centered(W, b)
    epochs.intercepts(R, bc)
    cert, converged, it = None, False, 0
    for it in range(1, max_iter + 1):
        change = epochs.run(R, W, bc)
        small = change <= tol * np.abs(W).max(initial=0.0)  # steps stalled: worth a check
        if it % check_every == 0 or it == max_iter or small or it == 1:
            cert = certify(data, datafit, penalty, alpha, W, data.y - R, fit_intercept, ref)
            if verbose:
                print(f"[bcd] epoch {it:5d}  {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                converged = True
                break
    return SolverResult(W, epochs.uncentered(W, bc), it, cert, converged)


def _prox_newton(data, datafit, penalty, alpha, W, b, params, *, ref, fit_intercept, tol,
                 max_iter, verbose, max_inner=50) -> SolverResult:
    """Proximal Newton for a smooth, non-quadratic loss (see the module docstring)."""
    y, c = data.y, data.c
    f = data.linear(W, b)
    if fit_intercept:
        fit_intercepts(data, datafit, f, b)
    value = datafit.value(y, f, c) + penalty.value(W, alpha)
    cert, converged, it = None, False, 0
    inner_tol, stalled, best = 1e-3, 0, np.inf
    for it in range(1, max_iter + 1):
        theta = datafit.theta(y, f)
        s = y * theta  # sigmoid(-y f)
        h = np.maximum(c * s * (1.0 - s), 1e-12 * c)
        epochs = _LeastSquaresEpochs(data, h, False, fit_intercept, *params)
        z = np.divide(c * theta, h, out=np.zeros_like(h), where=h > 0)  # Newton step in f
        R = z.copy()  # the model's residual at the current point
        V, bc = W.copy(), epochs.centered(W, b)
        epochs.intercepts(R, bc)
        for _ in range(max_inner):
            if epochs.run(R, V, bc) <= inner_tol * np.abs(V).max(initial=0.0):
                break
        # direction in (W, b) and in the scores; line search on the true objective
        dW, db = V - W, epochs.uncentered(V, bc) - b
        df = z - R
        decrease = -np.dot(c * theta, df) + penalty.value(V, alpha) - penalty.value(W, alpha)
        step = 1.0
        for _ in range(40):
            W_try, f_try = W + step * dW, f + step * df
            new = datafit.value(y, f_try, c) + penalty.value(W_try, alpha)
            if new <= value + 1e-4 * step * decrease + 1e-15 * abs(value):
                break
            step *= 0.5
        W[:] = W_try
        b += step * db
        f = f_try
        if fit_intercept:
            fit_intercepts(data, datafit, f, b)
        value = datafit.value(y, f, c) + penalty.value(W, alpha)
        cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref)
        if verbose:
            print(f"[prox-newton] iter {it:4d}  step {step:.2g}  {cert.kind} "
                  f"{cert.relative:.3e}")
        if cert.converged(tol):
            converged = True
            break
        # at the rounding floor the certificate stops improving: give up after 20 steps
        stalled = 0 if cert.relative < 0.99 * best else stalled + 1
        best = min(best, cert.relative)
        if stalled >= 20:
            break
        inner_tol = max(min(inner_tol, 0.1 * np.sqrt(cert.relative)), 1e-10)
    return SolverResult(W, b, it, cert, converged)
