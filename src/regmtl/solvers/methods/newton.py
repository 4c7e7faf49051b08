r"""Proximal Newton for a smooth, non-quadratic loss, over working sets.

Each Newton step builds the weighted least-squares model of the loss at the current scores
(weights ``h_r = c_r s_r (1 - s_r)``, ``s_r = sigmoid(-y_r f_r)``, targets
``f_r + c_r theta_r / h_r``), minimizes it by block coordinate descent epochs on the working set,
and moves along the direction with a backtracking line search on the true objective (Lee, Sun
& Saunders 2014). The outer loop (duality gap, gap-safe screening, working set of the worst
violators, :mod:`~regmtl.solvers.parts.working_set`) is that of ``bcd``; the restricted problem is
solved (:mod:`~regmtl.solvers.parts.epochs`) until its own gap is below 0.3 times the outer one
(Massias, Vaiter, Gramfort & Salmon 2020).
"""

from __future__ import annotations

import numpy as np

from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import BlockStep
from ...taskdata import TaskData
from ..certificates.certify import (
    Certificate,
    Reference,
    certify,
    dual_point,
    duality_gap_terms,
    per_row,
    scores_intercepts,
)
from ..certificates.screening import safe_radius, screen
from ..parts.epochs import DataInner, LeastSquaresEpochs, feature_gradient, run_inner
from ..parts.moments import feature_moments
from ..parts.newton_model import armijo, newton_model
from ..parts.working_set import nonzero_rows, select_working_set
from ..result import SolverResult

__all__ = ["prox_newton"]


def _newton_step(data, datafit, penalty, alpha, W, b, f, value, params, ws, fit_intercept,
                 target, max_inner):
    """One proximal Newton step on the features ``ws``; returns (f, value, epochs).

    The quadratic model of the loss at the scores ``f`` is the weighted least-squares problem
    of IRLS, weights ``h_r = c_r s_r (1 - s_r)`` and working response ``f_r + c_r theta_r /
    h_r``; it is solved like the squared loss (Anderson-extrapolated epochs, searches along
    drifts) until its own duality gap is below ``target``, at most ``max_inner`` epochs."""
    y, c = data.y, data.c
    theta, h, z = newton_model(datafit, y, c, f)
    epochs = LeastSquaresEpochs(data, h, False, fit_intercept, params, features=ws)
    V, bc = W.copy(), epochs.centered(W, b)
    R = np.empty_like(z)
    epochs.residual(z, bc, V, ws, R)
    epochs.intercepts(R, bc)
    inner = DataInner(epochs, R, bc, z, V, ws, penalty, alpha, project=False)
    used, _ = run_inner(inner, penalty, alpha, target, max_inner, anderson=5, check_every=5)
    dW, db = V - W, epochs.uncentered(V, bc) - b
    # the direction's scores from the design, not as ``(z - R) - f``: where a row's curvature
    # is at its floor (a Gamma target of 1e-300: ``h_r = 1e-12 c_r``) its working response
    # ``z_r`` is ~1e12 away from its score and that difference keeps only ~1e-4 of it, so
    # the scores (and the objective and gap read from them) would drift from X W + b
    df = data.linear(dW, db)
    step = armijo(datafit, penalty, alpha, y, c, theta, W, f, dW, df, value, data.numbers)
    if step is None:  # no decrease along the direction: stay
        return f, value, used
    W += step * dW
    b += step * db
    f = f + step * df
    if fit_intercept:
        f, _ = scores_intercepts(data, datafit, f, b)
    return f, datafit.value(y, f, c) + penalty.value(W, alpha), used


def _restricted_gap(data, datafit, penalty, alpha, W, f, ws, fit_intercept, xm):
    """Duality gap of the problem restricted to the features ``ws`` (W is zero elsewhere)."""
    theta = dual_point(data, datafit, f, fit_intercept)
    G = feature_gradient(data, xm, data.c * theta, ws)
    s = penalty.dual_scaling(G, alpha)
    dual = (datafit.dual_value(data.y, per_row(s, data) * theta, data.c)
            - penalty.scaled_conjugate(G, s, alpha))
    primal = datafit.value(data.y, f, data.c) + penalty.value(W[ws], alpha)
    return max(primal - dual, 0.0)


def prox_newton(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                W: np.ndarray, b: np.ndarray, params: BlockStep, *, ref: Reference,
                fit_intercept: bool,
                tol: float, max_iter: int, verbose: int, working_set: bool = True,
                screening: bool = True, p0: int = 10, max_inner: int = 50) -> SolverResult:
    """Minimize ``datafit + alpha * penalty`` from ``(W, b)`` (in place); ``max_iter`` bounds
    the Newton steps. Without a dual (alpha = 0) every step is certified by the KKT residual."""
    y, c = data.y, data.c
    p = data.n_features
    l1, l2, group = params
    f = data.linear(W, b)
    if fit_intercept:
        f, _ = scores_intercepts(data, datafit, f, b)
    value = datafit.value(y, f, c) + penalty.value(W, alpha)
    use_gap = penalty.has_dual and alpha > 0
    zero_means = np.zeros((p, data.n_tasks))  # centered dual points need no centering
    # centered block constants under the loss weights: the gap-safe bound uses them
    # (a dual without strong concavity, as the log links', bounds no ball: nothing to screen)
    screening = screening and l1 > 0 and datafit.dual_strong_concavity > 0
    L_screen = feature_moments(data, c, fit_intercept)[1] if screening else None
    screened = np.zeros(p, dtype=bool)
    total, best, stalled = 0, np.inf, 0
    cert = None
    while True:
        if use_gap:
            gap, primal, dual, s, G = duality_gap_terms(data, datafit, penalty, alpha, W, f,
                                                        fit_intercept)
            cert = Certificate("duality_gap", gap, primal, dual, ref.P0)
        else:
            cert = certify(data, datafit, penalty, alpha, W, f, fit_intercept, ref)
        if verbose:
            print(f"[prox-newton] step {total:4d}  {cert.kind} {cert.relative:.3e}  "
                  f"screened {int(screened.sum())}")
        if cert.converged(tol):
            return SolverResult(W, b, max(total, 1), cert, True)
        # at the rounding floor the certificate stops improving: give up after 20 rounds
        stalled = 0 if cert.relative < 0.99 * best else stalled + 1
        best = min(best, cert.relative)
        if total >= max_iter or stalled >= 20:
            return SolverResult(W, b, max(total, 1), cert, False, stalled=total < max_iter)
        ws = np.arange(p, dtype=np.int64)
        if use_gap:
            if L_screen is not None:
                radius = safe_radius(gap, datafit.dual_strong_concavity)
                new = screen(s * G, L_screen, radius, l1, group, l2) & ~screened
                if new.any():
                    screened |= new
                    if np.any(W[new] != 0.0):
                        W[new] = 0.0
                        f = data.linear(W, b)
                        if fit_intercept:
                            f, _ = scores_intercepts(data, datafit, f, b)
                        value = datafit.value(y, f, c) + penalty.value(W, alpha)
            if working_set:
                ws = select_working_set(penalty, alpha, W, G, screened, p0)
            else:
                ws = np.flatnonzero(~screened).astype(np.int64)
            ws = np.union1d(ws, nonzero_rows(W)).astype(np.int64)
        # each Newton model is solved to a tenth of the gap it should close (Massias et al.)
        target, model_target = 0.3 * cert.value, (0.1 * cert.value if use_gap else None)
        for _ in range(10):
            if total >= max_iter:
                break
            f, value, _ = _newton_step(data, datafit, penalty, alpha, W, b, f, value, params,
                                       ws, fit_intercept, model_target, max_inner)
            total += 1
            if not use_gap:
                break
            inner = _restricted_gap(data, datafit, penalty, alpha, W, f, ws, fit_intercept,
                                    zero_means)
            model_target = min(model_target, 0.1 * inner)
            if inner <= target:
                break
