r"""The squared loss with a quadratic task coupling on wide tasks, in row-space form.

With ``Omega(W) = alpha / 2 tr(W K W^T)`` the optimum of the squared loss solves
(:mod:`~regmtl.solvers.methods.linear`, centered coordinates, ``H_t = B_t' B_t`` with ``B_t`` the
task's centered rows weighted by ``sqrt(c)``, ``g_t = B_t' a_t``)::

    H_t w_t + alpha (W K)_t = g_t,    t = 1..T.

Where tasks have fewer rows than features, each ``(H_t + s I)^{-1}`` is exact and cheap from
the task's ``n_t x n_t`` kernel (:meth:`~regmtl.solvers.parts.kernel_quadratic.KernelQuadratic.
shifted_solve`: one pass over the rows each way, two triangular solves with the Cholesky
factor of ``K_t + s I``). Two uses:

* **The mean** (``K = (1 + r) I - 11^T / T``, ``beta = alpha (1 + r)``): the conditions read
  ``(H_t + beta I) w_t = g_t + alpha w_bar``, so every task is its ridge at ``beta`` plus the
  pull of the mean, ``w_t = R (g_t + alpha w_bar)`` with ``R = (H_t + beta I)^{-1}``. Averaging
  over the tasks leaves a system of ``p`` unknowns for the mean task alone,

  .. math::

      \Big(I - \frac{\alpha}{T} \sum_t (H_t + \beta I)^{-1}\Big) \bar w
      = \frac{1}{T} \sum_t (H_t + \beta I)^{-1} g_t,

  symmetric, its eigenvalues in ``[r / (1 + r), 1]`` (``(1/T) sum_t B_t' (K_t + beta I)^{-1}
  B_t`` scaled by ``1 / (1 + r)``, plus ``r / (1 + r)``): conjugate gradients on it need tens
  of steps where CG on all ``p T`` unknowns needs hundreds. W follows linearly from
  ``w_bar`` (kept along the iteration at no extra pass), and the KKT residual of every task is
  ``alpha (w_bar - mean_t w_t)``: the residual of the reduced system times ``alpha``.
* **Any other coupling** (the graph Laplacian ``K = 2 (diag(A 1) - A)``): the off-diagonal
  part of K has the rank of the graph, so no such reduction exists (a complete graph of equal
  weights is the mean). Conjugate gradients on all ``p T`` unknowns, preconditioned by the
  exact per-task solves ``(H_t + alpha kbar I)^{-1}`` (``kbar`` the mean of ``diag(K)``): the
  directions each task's data fix are solved exactly, and what is left is the coupling along
  the graph. The product with the system reuses the preconditioner's (``P p`` is carried:
  ``P z = r``), so an iteration still costs one pass over the rows each way.

Both stop on the certificate of :func:`~regmtl.solvers.certificates.certify.certify` (the duality
gap, or the KKT residual), checked when the recurrence's residual says it should hold.
Nothing of size T x T is formed; the row-space products run one BLAS call per task per pass,
so the path is declared for at most :data:`MAX_TASKS` tasks (:func:`row_space_applies`).
"""

from __future__ import annotations

import numpy as np

from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import inner
from ...taskdata import TaskData
from ..certificates.certify import Reference, certify
from ..result import SolverResult
from .kernel_quadratic import KernelQuadratic, kernel_applies, kernel_quadratic

__all__ = ["MAX_TASKS", "row_space_applies", "row_space_cg"]

#: Most tasks the row-space path is declared for: its passes run one product per task.
MAX_TASKS = 2000
#: How much closer than ``tol`` the recurrence's residual is asked to be after a certificate
#: that fell short (the recurrence drifts from the true residual; a gap is not a residual).
SHRINK = 0.1


def row_space_applies(data: TaskData, penalty: Penalty, alpha: float) -> bool:
    """The row-space path runs: ``alpha > 0``, wide tasks whose kernels fit in memory
    (:func:`~regmtl.solvers.parts.kernel_quadratic.kernel_applies`), at most :data:`MAX_TASKS`
    tasks, and a coupling of positive diagonal mean (a graph with edges)."""
    if not (alpha > 0 and data.n_tasks <= MAX_TASKS and kernel_applies(data)):
        return False
    if penalty.pulls_to_mean:
        return True
    return float(np.mean(penalty.kernel_diagonal(data.n_tasks))) > 0


def _finish(data, datafit, penalty, alpha, q, W, fit_intercept, ref):
    b = q.zm - np.einsum("jt,jt->t", q.xm, W) if fit_intercept else np.zeros(data.n_tasks)
    cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b), fit_intercept, ref)
    return b, cert


def _mean_cg(data, datafit, penalty, alpha, q: KernelQuadratic, W0, ref, fit_intercept, tol,
             max_iter, verbose):
    """Conjugate gradients on the mean task (module docstring); W kept beside it."""
    T = data.n_tasks
    beta = alpha * (float(penalty.kernel_diagonal(T)[0]) + 1.0 / T)  # alpha (1 + r)

    def pulled(v):  # (H_t + beta I)^{-1} v for every task, p x T
        return q.shifted_solve(np.repeat(v[:, None], T, axis=1), beta)

    x = np.asarray(W0, dtype=np.float64).mean(axis=1)  # (a warm start's mean task)
    W = q.shifted_solve(q.g, beta)
    if np.any(x):
        W += alpha * pulled(x)
    R = W.mean(axis=1) - x  # the reduced residual; each task's KKT residual is alpha R
    P = R.copy()
    rr = float(R @ R)
    scale = float(np.linalg.norm(ref.G0)) or 1.0
    factor = np.sqrt(T) * alpha / scale
    aim, cert, it, stalled = tol, None, 0, False
    for it in range(1, max_iter + 1):
        RP = pulled(P)
        AP = P - (alpha / T) * RP.sum(axis=1)
        pAp = float(P @ AP)
        if pAp <= 0 or rr == 0.0:
            stalled = True
            break
        step = rr / pAp
        x += step * P
        W += (step * alpha) * RP
        R -= step * AP
        rr_new = float(R @ R)
        if verbose:
            print(f"[cg mean] iter {it:5d}  kkt {factor * np.sqrt(rr_new):.3e}")
        if factor * np.sqrt(rr_new) <= aim or it == max_iter:
            b, cert = _finish(data, datafit, penalty, alpha, q, W, fit_intercept, ref)
            if cert.converged(tol):
                return W, b, it, cert, False
            aim *= SHRINK
            R = W.mean(axis=1) - x  # (the true residual: the recurrence drifts)
            rr_new = float(R @ R)
            P = R.copy()
            rr = rr_new
            continue
        P = R + (rr_new / rr) * P
        rr = rr_new
    b, cert = _finish(data, datafit, penalty, alpha, q, W, fit_intercept, ref)
    return W, b, it, cert, stalled


def _coupled_cg(data, datafit, penalty, alpha, q: KernelQuadratic, W0, ref, fit_intercept, tol,
                max_iter, verbose):
    """Conjugate gradients on all ``p T`` unknowns, preconditioned by exact per-task solves
    (module docstring)."""
    T = data.n_tasks
    beta = alpha * float(np.mean(penalty.kernel_diagonal(T)))
    W = np.array(W0, dtype=np.float64)

    def residual(W):
        return q.g - q.matvec(W) - alpha * penalty.apply(W)

    R = residual(W) if np.any(W) else q.g.copy()
    Z = q.shifted_solve(R, beta)
    P, PP = Z, R.copy()  # P and (H + beta I) P
    rz = float(inner(R, Z))
    scale = float(np.linalg.norm(ref.G0)) or 1.0
    aim, cert, it, stalled = tol, None, 0, False
    for it in range(1, max_iter + 1):
        AP = PP + alpha * penalty.apply(P) - beta * P
        pAp = float(inner(P, AP))
        if pAp <= 0 or rz <= 0:
            stalled = True
            break
        step = rz / pAp
        W += step * P
        R -= step * AP
        est = float(np.linalg.norm(R)) / scale
        if verbose:
            print(f"[cg row space] iter {it:5d}  kkt {est:.3e}")
        if est <= aim or it == max_iter:
            b, cert = _finish(data, datafit, penalty, alpha, q, W, fit_intercept, ref)
            if cert.converged(tol):
                return W, b, it, cert, False
            aim *= SHRINK
            R = residual(W)  # (the true residual: the recurrence drifts)
            Z = q.shifted_solve(R, beta)
            P, PP = Z, R.copy()
            rz = float(inner(R, Z))
            continue
        Z = q.shifted_solve(R, beta)
        rz_new = float(inner(R, Z))
        ratio = rz_new / rz
        P = Z + ratio * P
        PP = R + ratio * PP  # (H + beta I) Z = R
        rz = rz_new
    b, cert = _finish(data, datafit, penalty, alpha, q, W, fit_intercept, ref)
    return W, b, it, cert, stalled


def row_space_cg(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    verbose: int = 0,
) -> SolverResult:
    """Solve the squared loss with a quadratic task coupling on wide tasks from ``W`` (see the
    module docstring): the mean through its mean task, other couplings by conjugate
    gradients preconditioned with exact per-task solves; certified like every other fit.

    Parameters
    ----------
    data : TaskData
        The problem, tasks with fewer rows than features (:func:`row_space_applies`).
    datafit : Datafit
        The squared loss.
    penalty : Penalty
        ``alpha / 2 tr(W K W^T)`` given by ``apply`` and ``kernel_diagonal``.
    alpha : float
        Overall strength, > 0.
    W : ndarray of shape (p, T)
        The start.
    ref : Reference
        The problem at W = 0.
    fit_intercept : bool, default=True
        Whether the intercepts are fitted.
    tol : float, default=1e-4
        Tolerance on the certificate.
    max_iter : int, default=1000
        Most conjugate-gradient iterations.
    verbose : int, default=0
        Print the residual at each iteration.

    Returns
    -------
    SolverResult
        The solution, its certificate and the iterations run.
    """
    alpha = float(alpha)
    q = kernel_quadratic(data, fit_intercept)
    run = _mean_cg if penalty.pulls_to_mean else _coupled_cg
    W, b, it, cert, stalled = run(data, datafit, penalty, alpha, q, W, ref, fit_intercept,
                                  tol, max_iter, verbose)
    converged = cert.converged(tol)
    return SolverResult(W, b, it, cert, converged, stalled=stalled and not converged)
