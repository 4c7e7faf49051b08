r"""A smooth loss with a pure ridge, ``sum_r c_r l(y_r, f_r) + l2 / 2 ||W||_F^2``, or with a
task kernel ``alpha / 2 tr(W K W^T)`` (the multinomial loss with the mean or graph penalty on
its classes' layout): the whole objective is smooth, so a quasi-Newton method on ``(W, b)``
(L-BFGS, scipy's, as scikit-learn's ``PoissonRegressor`` and ``LogisticRegression`` use)
reaches it in tens of gradient evaluations, each one product with the design and one with its
transpose. Every round of L-BFGS is followed
by the duality gap of the problem. The first round stops at the gradient that the ridge's strong
convexity says meets ``tol``; a round that stops short of ``tol`` is followed by one with a ten
times smaller gradient tolerance, from its point.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference, certify, scores_intercepts
from ..result import SolverResult

__all__ = ["ridge_lbfgs"]


def ridge_lbfgs(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                tol: float, max_iter: int, verbose: int = 0) -> SolverResult:
    """Minimize ``datafit + alpha penalty`` (a pure ridge, ``penalty.ridge_strength``, or a
    task kernel given by ``penalty.apply``) from
    ``(W, b)`` by rounds of L-BFGS, each certified; ``max_iter`` bounds the gradient
    evaluations of all rounds."""
    y, c = data.y, data.c
    p, T = data.n_features, data.n_tasks
    l2 = penalty.ridge_strength(alpha)
    if l2 is None:  # a task kernel: alpha / 2 tr(W K W^T), its gradient alpha W K
        def pull(Wx):
            return float(alpha) * penalty.apply(Wx)
        # (strongly convex only through its ridge part, where it has one)
        mu = float(alpha) * float(getattr(penalty, "ridge", 0.0))
    else:
        def pull(Wx):
            return l2 * Wx
        mu = l2
    scale = max(ref.P0, np.finfo(float).tiny)  # the objective is divided by it (gtol in units)

    def unpack(x):
        return x[: p * T].reshape(p, T), (x[p * T:] if fit_intercept else np.zeros(T))

    def objective(x):
        Wx, bx = unpack(x)
        f = data.linear(Wx, bx)
        value, theta = datafit.value_theta(y, f, c)
        u = c * theta
        pulled = pull(Wx)
        value += 0.5 * float(np.vdot(Wx, pulled))
        grad_W = pulled - data.adjoint(u)
        parts = [grad_W.ravel()]
        if fit_intercept:
            parts.append(-np.asarray(data.task_sums(u), dtype=np.float64))
        with np.errstate(over="ignore"):  # a trial step far out: +inf, which the search backs from
            return value / scale, np.concatenate(parts) / scale

    x = np.concatenate([np.asarray(W, dtype=np.float64).ravel()]
                       + ([np.asarray(b, dtype=np.float64)] if fit_intercept else []))
    # the first gradient tolerance from the ridge's strong convexity mu (in units of P0): a
    # gradient g bounds the excess by ||g||^2 / (2 mu), so |g_i| <= sqrt(2 mu tol / dim)
    # meets tol; rounds ten times tighter while the certificate disagrees
    room = np.sqrt(2.0 * mu / scale * tol / x.size)
    used, gtol, cert = 0, max(room, tol * 1e-4, 1e-14), None
    while True:
        res = minimize(objective, x, jac=True, method="L-BFGS-B",
                       options={"maxiter": max(max_iter - used, 1), "gtol": gtol,
                                "ftol": 0.0, "maxcor": 20})
        used += int(res.nit)
        x = res.x
        Wx, bx = unpack(x)
        bx = np.array(bx, dtype=np.float64)
        f = data.linear(Wx, bx)
        if fit_intercept:  # the intercepts minimized exactly before the certificate
            f, bx = scores_intercepts(data, datafit, f, bx)
        cert = certify(data, datafit, penalty, alpha, penalty.lift(Wx), f, fit_intercept, ref)
        if verbose:
            print(f"[lbfgs] {used:5d} iterations  gtol {gtol:.1e}  {cert.kind} "
                  f"{cert.relative:.3e}")
        if cert.converged(tol) or used >= max_iter or gtol <= 1e-15 or res.nit == 0:
            return SolverResult(Wx, bx, max(used, 1), cert, cert.converged(tol),
                                stalled=used < max_iter and not cert.converged(tol))
        x = np.concatenate([Wx.ravel()] + ([bx] if fit_intercept else []))
        gtol *= 0.1
