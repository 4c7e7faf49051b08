r"""ADMM for the squared loss with a penalty of parts summing to W (``W = P + Q``:
:class:`~regmtl.SparseLowRank`, :class:`~regmtl.RobustLowRank`,
:class:`~regmtl.RobustFeatures`), each task's quadratic solved exactly at every step.

Over the variable ``V = (P, Q)`` it splits ``V = Z`` and iterates
:func:`~regmtl.solvers.parts.admm.admm_quadratic`; its first step,
``argmin_V q(P + Q) + rho/2 ||V - A||^2``, stays one exact solve per task: the sum
``W = P + Q`` solves ``(H_t + rho/2 I) w_t = g_t + rho/2 (a^P_t + a^Q_t)`` and both parts move
by ``(W - A^P - A^Q) / 2`` (:func:`~regmtl.solvers.parts.admm.exact_step`), and the prox separates
over the parts. Gram form for long tasks, row-space form for wide ones
(:func:`~regmtl.solvers.parts.kernel_quadratic.solve_form`); in Gram form FISTA runs first while it
moves well (:func:`~regmtl.solvers.parts.admm.minimize_quadratic`). Where proximal gradient
over ``(P, Q)`` needs hundreds of steps (wide tasks at small alpha), this needs about a
hundred. The result is certified on the data by the same duality gap.
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference, certify
from ..result import SolverResult
from .admm import eigen_budget, minimize_quadratic
from .kernel_quadratic import solve_form

__all__ = ["parts_admm", "RENT"]

#: In Gram form, FISTA runs this many times :func:`~regmtl.solvers.parts.admm.eigen_budget`
#: iterations before it may hand over to ADMM: over the parts ADMM gains less per step than on
#: W itself, and at 1 it took 25-50% more iterations than FISTA alone on the long benchmark
#: shapes (T = 30, p = 100, alpha_max / 10); at 3 as many or fewer, while the split penalties
#: on School at alpha_max / 10,000 still certify within the default max_iter (at 6 they do
#: not).
RENT = 3


def parts_admm(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
) -> SolverResult:
    """ADMM with exact per-task solves from the parts ``V`` (the penalty's variable, e.g.
    ``penalty.lift(W)``); the other arguments as :func:`regmtl.solvers.admm`. Returns the
    parts at the best certificate, certified on the data."""
    q = solve_form(data, fit_intercept)
    use_gap = penalty.has_dual and alpha > 0
    V, it, stalled = minimize_quadratic(q, penalty, alpha, np.array(V, dtype=np.float64),
                                        tol=tol * ref.P0 if use_gap else tol,
                                        max_iter=max_iter, check_every=check_every,
                                        G0_norm=float(np.linalg.norm(ref.G0)), verbose=verbose,
                                        budget=RENT * eigen_budget(q))
    W = penalty.compose(V)
    b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
    cert = certify(data, datafit, penalty, alpha, V, data.linear(W, b), fit_intercept, ref,
                   None if use_gap else q.lipschitz())
    converged = cert.converged(tol)
    return SolverResult(W, b, max(it, 1), cert, converged, V, stalled=stalled and not converged)
