r"""Exact path for the squared loss with a quadratic task-coupling penalty (mean, graph).

With ``Omega(W) = alpha / 2 tr(W K W^T)`` and the squared loss the optimum solves a linear
system. In centered coordinates (per-task weighted means ``xm_t`` removed from the features and
``ybar_t`` from the targets) the intercepts decouple, ``b'_t = ybar_t``, and W solves::

    H(W) + alpha W K = X_c^T (c * y_c),     H(W)[:, t] = X_{c,t}^T (c_t * X_{c,t} w_t)

a symmetric positive semi-definite system, solved by preconditioned conjugate gradients in
matrix form (Jacobi preconditioner ``diag(H) + alpha diag(K)``). K is never formed: the
penalty's ``apply`` gives ``W K`` (through the mean task, or one sparse product with the graph)
and ``kernel_diagonal`` its diagonal, so memory and time per iteration are O(pT + p nnz(A)).
Each iteration costs one product with the design and one with its transpose, or, when tasks
have more rows than features, one product with the per-task Grams. The result is certified
like every other fit. Wide tasks in memory go to :mod:`~regmtl.solvers.parts.row_space_cg` instead
(each task's system solved exactly from its kernel; the mean reduced to its mean task).
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import inner
from ..certificates.certify import Reference, certify
from ..parts.moments import feature_moments, uniform_within_tasks
from ..parts.quadratic import quadratic_applies, task_quadratic
from ..parts.wide_ridge import wide_ridge
from ..result import SolverResult

__all__ = ["conjugate_gradient", "has_linear_path", "ridge_solve"]


def has_linear_path(datafit: Datafit, penalty: Penalty) -> bool:
    """The squared loss with a penalty ``alpha / 2 tr(W K W^T)`` given as the operator
    ``W -> W K`` (``apply``) with its diagonal (``kernel_diagonal``)."""
    return (datafit.quadratic and callable(getattr(penalty, "apply", None))
            and callable(getattr(penalty, "kernel_diagonal", None)))


def conjugate_gradient(
    data: TaskBlocks,
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
    """Solve the linear optimality system from ``W`` (see the module docstring)."""
    c, T = data.c, data.n_tasks
    if quadratic_applies(data):  # Gram form: T p^2 per product instead of a pass over the rows
        q = task_quadratic(data, fit_intercept)
        xm, L, ybar = q.xm, q.diagonal(), q.zm

        def operator(V):
            return q.matvec(V) + alpha * penalty.apply(V)

        rhs = q.g
    else:
        # centers and block constants in one pass (xm = 0 without intercepts)
        xm, L = feature_moments(data, c, fit_intercept, uniform=uniform_within_tasks(data))
        ybar = data.task_sums(c * data.y) / data.task_sums(c) if fit_intercept else np.zeros(T)

        def linear(V):  # centered scores of V, no intercept
            return data.linear(V, -np.einsum("jt,jt->t", xm, V))

        def adjoint(u):
            return data.adjoint(u) - xm * data.task_sums(u)

        def operator(V):
            return adjoint(c * linear(V)) + alpha * penalty.apply(V)

        rhs = adjoint(c * (data.y - ybar[data.task_of]))
    W, kernel = data.settle(W, alpha * penalty.kernel_diagonal(T))  # (on blocks: placed)
    diag = L + kernel
    inv_diag = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 0.0)
    R = rhs - operator(W)
    Z = inv_diag * R
    P = Z.copy()
    R, Z, P, inv_diag = data.settle(R, Z, P, inv_diag)
    rz = float(inner(R, Z))
    cert, converged, it, stalled = None, False, 0, False
    for it in range(1, max_iter + 1):
        AP = data.settle(operator(P))[0]
        pAp = float(inner(P, AP))
        if pAp <= 0:
            stalled = True  # the residual left lies in the null space of the system
            break
        step = rz / pAp
        W, R = data.settle(W + step * P, R - step * AP)
        Z = inv_diag * R
        rz_new = float(inner(R, Z))
        P = data.settle(Z + (rz_new / rz) * P)[0]
        rz = rz_new
        if it % check_every == 0 or it == max_iter or rz == 0.0:
            b_cur = ybar - np.einsum("jt,jt->t", xm, W)
            cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b_cur),
                           fit_intercept, ref)
            if verbose:
                print(f"[cg] iter {it:5d}  {cert.kind} {cert.relative:.3e}")
            if cert.converged(tol):
                converged = True
                break
            if rz == 0.0:
                stalled = True
                break
    b_out = ybar - np.einsum("jt,jt->t", xm, W)
    if cert is None or not converged:
        cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b_out), fit_intercept,
                       ref)
        converged = cert.converged(tol)
    return SolverResult(W, b_out if fit_intercept else np.zeros(T), it, cert, converged,
                        stalled=stalled and not converged)


def ridge_solve(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float, *,
                ref: Reference, fit_intercept: bool = True, tol: float = 1e-4) -> SolverResult:
    """The squared loss with ``alpha/2 ||W||_F^2``: ``w_t = (H_t + alpha I)^+ g_t`` for every task
    from its Gram's eigendecomposition (computed once per problem and reused at every alpha;
    the minimum-norm solution at ``alpha = 0``), certified like every other fit. Tasks of
    fewer rows than features: the same in row-space form (:func:`~regmtl.solvers.parts.wide_ridge.
    wide_ridge`, from the kernels' eigendecompositions)."""
    if not quadratic_applies(data):
        W, b = wide_ridge(data, alpha, fit_intercept)
    else:
        q = task_quadratic(data, fit_intercept)
        W = data.settle(q.ridge(alpha))[0]  # (used three times below)
        b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
    cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b), fit_intercept, ref)
    return SolverResult(W, b, 1, cert, cert.converged(tol))
