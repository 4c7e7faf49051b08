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
from ..parts.newton_loop import newton_loop
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


class _WorkingSetNewton:
    """Proximal Newton over working sets (the module's text), as a
    :class:`~regmtl.solvers.parts.newton_loop.NewtonMethod`: its state is the point (W, b,
    the scores f, the objective) and what the last certificate read (the gradient, the dual
    scaling, the gap-safe screen)."""

    spent = False

    def __init__(self, data, datafit, penalty, alpha, W, b, params, ref, fit_intercept,
                 working_set, screening, p0, max_inner):
        self.data, self.datafit, self.penalty, self.alpha = data, datafit, penalty, alpha
        self.W, self.b, self.params, self.ref = W, b, params, ref
        self.fit_intercept, self.working_set, self.p0 = fit_intercept, working_set, p0
        self.max_inner = max_inner
        p = data.n_features
        self.f = self._scores()
        self.value = datafit.value(data.y, self.f, data.c) + penalty.value(W, alpha)
        self.use_gap = penalty.has_dual and alpha > 0
        self.zero_means = np.zeros((p, data.n_tasks))  # centered dual points need no centering
        # centered block constants under the loss weights: the gap-safe bound uses them
        # (a dual without strong concavity, as the log links', bounds no ball: nothing to
        # screen)
        screening = screening and params[0] > 0 and datafit.dual_strong_concavity > 0
        self.L_screen = feature_moments(data, data.c, fit_intercept)[1] if screening else None
        self.screened = np.zeros(p, dtype=bool)
        self.s = self.G = None

    def _scores(self):
        f = self.data.linear(self.W, self.b)
        if self.fit_intercept:
            f, _ = scores_intercepts(self.data, self.datafit, f, self.b)
        return f

    def certify(self) -> Certificate:
        data, datafit, penalty, alpha = self.data, self.datafit, self.penalty, self.alpha
        if self.use_gap:
            gap, primal, dual, self.s, self.G = duality_gap_terms(
                data, datafit, penalty, alpha, self.W, self.f, self.fit_intercept)
            return Certificate("duality_gap", gap, primal, dual, self.ref.P0)
        return certify(data, datafit, penalty, alpha, self.W, self.f, self.fit_intercept,
                       self.ref)

    def status(self) -> str:
        return f"  screened {int(self.screened.sum())}"

    def _working_set(self, cert: Certificate) -> np.ndarray:
        """The features the next models run on: all but the screened, or the worst violators
        and the nonzero rows."""
        penalty, alpha, W = self.penalty, self.alpha, self.W
        ws = np.arange(self.data.n_features, dtype=np.int64)
        if not self.use_gap:
            return ws
        if self.L_screen is not None:
            radius = safe_radius(cert.value, self.datafit.dual_strong_concavity)
            new = screen(self.s * self.G, self.L_screen, radius, self.params[0],
                         self.params[2], self.params[1]) & ~self.screened
            if new.any():
                self.screened |= new
                if np.any(W[new] != 0.0):
                    W[new] = 0.0
                    self.f = self._scores()
                    self.value = (self.datafit.value(self.data.y, self.f, self.data.c)
                                  + penalty.value(W, alpha))
        if self.working_set:
            ws = select_working_set(penalty, alpha, W, self.G, self.screened, self.p0)
        else:
            ws = np.flatnonzero(~self.screened).astype(np.int64)
        return np.union1d(ws, nonzero_rows(W)).astype(np.int64)

    def step(self, cert, progress, budget) -> int:
        """Newton steps on one working set (at most ten), each model solved to a tenth of
        the gap it should close (Massias et al.), until the restricted gap is below 0.3
        times the outer one."""
        ws = self._working_set(cert)
        target = 0.3 * cert.value
        model_target = 0.1 * cert.value if self.use_gap else None
        taken = 0
        for _ in range(min(10, budget)):
            self.f, self.value, _ = _newton_step(
                self.data, self.datafit, self.penalty, self.alpha, self.W, self.b, self.f,
                self.value, self.params, ws, self.fit_intercept, model_target, self.max_inner)
            taken += 1
            if not self.use_gap:
                break
            inner = _restricted_gap(self.data, self.datafit, self.penalty, self.alpha,
                                    self.W, self.f, ws, self.fit_intercept, self.zero_means)
            model_target = min(model_target, 0.1 * inner)
            if inner <= target:
                break
        return taken


def prox_newton(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                W: np.ndarray, b: np.ndarray, params: BlockStep, *, ref: Reference,
                fit_intercept: bool,
                tol: float, max_iter: int, verbose: int, working_set: bool = True,
                screening: bool = True, p0: int = 10, max_inner: int = 50) -> SolverResult:
    """Minimize ``datafit + alpha * penalty`` from ``(W, b)`` (in place); ``max_iter`` bounds
    the Newton steps. Without a dual (alpha = 0) every step is certified by the KKT residual."""
    method = _WorkingSetNewton(data, datafit, penalty, alpha, W, b, params, ref,
                               fit_intercept, working_set, screening, p0, max_inner)
    cert, progress, converged, stalled = newton_loop(
        method, tol=tol, max_iter=max_iter, label="prox-newton", verbose=verbose)
    return SolverResult(method.W, method.b, max(progress.steps, 1), cert, converged,
                        stalled=stalled)
