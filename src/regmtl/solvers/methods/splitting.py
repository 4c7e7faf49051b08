r"""The ADMM solver: the squared loss with a penalty of W itself, each task's quadratic solved
exactly at every step (:mod:`~regmtl.solvers.parts.admm`), in Gram form for tasks with more rows
than features (:mod:`~regmtl.solvers.parts.quadratic`) and in row-space form for tasks with fewer
(:mod:`~regmtl.solvers.parts.kernel_quadratic`). The result is certified on the data. In Gram form
FISTA runs first while it moves well (:func:`~regmtl.solvers.parts.admm.minimize_quadratic`)."""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference, certify
from ..parts.admm import minimize_quadratic
from ..parts.kernel_quadratic import exact_solves_apply, solve_form
from ..result import SolverResult

__all__ = ["admm", "exact_solves_apply", "solve_form"]


def admm(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,  # noqa: ARG001 - the intercepts are minimized out of the quadratic
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
) -> SolverResult:
    """ADMM with exact per-task solves for the squared loss and a penalty of W itself; the
    arguments as :func:`regmtl.solvers.admm`."""
    q = solve_form(data, fit_intercept)
    use_gap = penalty.has_dual and alpha > 0
    W, it, stalled = minimize_quadratic(q, penalty, alpha, W,
                                        tol=tol * ref.P0 if use_gap else tol,
                                        max_iter=max_iter, check_every=check_every,
                                        G0_norm=float(np.linalg.norm(ref.G0)), verbose=verbose)
    return _certified(data, datafit, penalty, alpha, q, W, it, stalled, ref, fit_intercept, tol,
                      None if use_gap else q.lipschitz())


def _certified(data, datafit, penalty, alpha, q, W, it, stalled, ref, fit_intercept, tol,
               L_cert) -> SolverResult:
    """The result at ``W``, its intercepts minimized and its certificate from the data."""
    b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
    f = data.linear(W, b)
    cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref, L_cert)
    converged = cert.converged(tol)
    return SolverResult(W, b, max(it, 1), cert, converged, W, stalled=stalled and not converged)
