r"""Proximal Newton for a smooth, non-quadratic loss, over working sets.

Each Newton step builds the weighted least-squares model of the loss at the current scores
(weights ``h_r = c_r s_r (1 - s_r)``, ``s_r = sigmoid(-y_r f_r)``, targets
``f_r + c_r theta_r / h_r``), minimizes it by block coordinate descent epochs on the working set,
and moves along the direction with a backtracking line search on the true objective (Lee, Sun
& Saunders 2014). The outer loop (duality gap, gap-safe screening, working set of the worst
violators) is that of ``bcd``; the restricted problem is solved until its own gap is below
0.3 times the outer one (Massias, Vaiter, Gramfort & Salmon 2020).
"""

from __future__ import annotations

import numpy as np

from ..datafits import Datafit
from ..penalties import Penalty
from ..taskdata import TaskData
from .bcd import _LeastSquaresEpochs, _rows, _working_set, feature_gradient
from .certificates import (
    Certificate,
    Reference,
    certify,
    dual_point,
    duality_gap_terms,
    fit_intercepts,
)
from .moments import feature_moments
from .result import SolverResult
from .screening import safe_radius, screen

__all__ = ["prox_newton"]


def _newton_step(data, datafit, penalty, alpha, W, b, f, value, params, ws, fit_intercept,
                 inner_tol, max_inner):
    """One proximal Newton step on the features ``ws``; returns the new (f, value)."""
    y, c = data.y, data.c
    theta = datafit.theta(y, f)
    s = y * theta  # sigmoid(-y f)
    h = np.maximum(c * s * (1.0 - s), 1e-12 * c)
    epochs = _LeastSquaresEpochs(data, h, False, fit_intercept, *params, features=ws)
    z = np.divide(c * theta, h, out=np.zeros_like(h), where=h > 0)  # Newton step in f
    R = z.copy()  # the model's residual at the current point
    V, bc = W.copy(), epochs.centered(W, b)
    epochs.intercepts(R, bc)
    for _ in range(max_inner):
        if epochs.run(R, V, bc) <= inner_tol * np.abs(V).max(initial=0.0):
            break
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
    return f, datafit.value(y, f, c) + penalty.value(W, alpha)


def _restricted_gap(data, datafit, penalty, alpha, W, f, ws, fit_intercept, xm):
    """Duality gap of the problem restricted to the features ``ws`` (W is zero elsewhere)."""
    theta = dual_point(data, datafit, f, fit_intercept)
    G = feature_gradient(data, xm, data.c * theta, ws)
    s = penalty.dual_scaling(G, alpha)
    dual = datafit.dual_value(data.y, s * theta, data.c) - penalty.conjugate(s * G, alpha)
    primal = datafit.value(data.y, f, data.c) + penalty.value(W[ws], alpha)
    return max(primal - dual, 0.0)


def prox_newton(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                W: np.ndarray, b: np.ndarray, params, *, ref: Reference, fit_intercept: bool,
                tol: float, max_iter: int, verbose: int, working_set: bool = True,
                screening: bool = True, p0: int = 10, max_inner: int = 50) -> SolverResult:
    """Minimize ``datafit + alpha * penalty`` from ``(W, b)`` (in place); ``max_iter`` bounds
    the Newton steps. Without a dual (alpha = 0) every step is certified by the KKT residual."""
    y, c = data.y, data.c
    p = data.n_features
    l1, _, group = params
    f = data.linear(W, b)
    if fit_intercept:
        fit_intercepts(data, datafit, f, b)
    value = datafit.value(y, f, c) + penalty.value(W, alpha)
    use_gap = penalty.has_dual and alpha > 0
    zero_means = np.zeros((p, data.n_tasks))  # centered dual points need no centering
    # centered block constants under the loss weights: the gap-safe bound uses them
    L_screen = feature_moments(data, c, fit_intercept)[1] if screening and l1 > 0 else None
    screened = np.zeros(p, dtype=bool)
    inner_tol, total, best, stalled = 1e-3, 0, np.inf, 0
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
            return SolverResult(W, b, max(total, 1), cert, False)
        ws = np.arange(p, dtype=np.int64)
        if use_gap:
            if L_screen is not None:
                radius = safe_radius(gap, datafit.dual_strong_concavity)
                new = screen(s * G, L_screen, radius, l1, group) & ~screened
                if new.any():
                    screened |= new
                    if np.any(W[new] != 0.0):
                        W[new] = 0.0
                        f = data.linear(W, b)
                        if fit_intercept:
                            fit_intercepts(data, datafit, f, b)
                        value = datafit.value(y, f, c) + penalty.value(W, alpha)
            if working_set:
                ws = _working_set(penalty, alpha, W, G, screened, p0)
            else:
                ws = np.flatnonzero(~screened).astype(np.int64)
            ws = np.union1d(ws, _rows(W)).astype(np.int64)
        target = 0.3 * cert.value
        for _ in range(10):
            if total >= max_iter:
                break
            f, value = _newton_step(data, datafit, penalty, alpha, W, b, f, value, params, ws,
                                    fit_intercept, inner_tol, max_inner)
            total += 1
            if not use_gap:
                break
            inner = _restricted_gap(data, datafit, penalty, alpha, W, f, ws, fit_intercept,
                                    zero_means)
            inner_tol = max(min(inner_tol, 0.1 * inner / ref.P0), 1e-12)
            if inner <= target:
                break
        if not use_gap:
            inner_tol = max(min(inner_tol, 0.1 * cert.relative), 1e-12)
