r"""Block coordinate descent to a stationary point, for the nonconvex penalties (``MCP``,
``SCAD``, ``CappedL1``), certified by the KKT residual of the Clarke subdifferential.

A nonconvex penalty has no duality gap, so nothing bounds the distance to a global minimum and
nothing proves a feature zero (no gap-safe screening). What holds: each block step is the exact
minimizer of the block's model plus the penalty (``_kernels._nonconvex_block``), so the
objective never increases and the fixed points are stationary points, where minus the gradient
lies in the Clarke subdifferential. The certificate is that inclusion's residual,

    sqrt(sum_g dist(-grad_g F, d_C Omega(W)_g)^2 + ||grad_b F||^2) / ||G0||,

per block g (entry or row), relative to the gradient at W = 0 as the other KKT residuals. It
certifies a stationary point, not a global minimum.

Squared loss: an outer loop computes the full gradient (one ``X^T`` product) and the residual,
then solves the problem restricted to a working set (the support plus the worst violators of
stationarity, :func:`~regmtl.solvers.parts.working_set.select_working_set`) by epochs over the data,
or in Gram form on a shared design (:class:`~regmtl.solvers.parts.gram.GramInner`), until the
working set's own residual is below 0.3 times the outer one; Anderson-extrapolated points, and steps
along a drift where the epochs crawl, are kept only where they lower the objective. Logistic
loss: proximal Newton over the same working sets, each quadratic model solved by the same epochs
(the same exact block step on the model). Where the model's curvature (the IRLS weights
``c s (1 - s)``, small on well-separated rows) is below the penalty's concavity
(``L_j <= 1 / gamma`` for MCP), the model's exact block minimizers may jump to another of its
basins, far from where it matches the loss: when the full step fails the Armijo test, the step
of the majorizing model of curvature ``c / 4`` (which lowers the objective at its full step,
whatever the jumps) is taken if it does better.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...datafits import Datafit
from ...penalties import Penalty
from ...taskdata import TaskData
from ..certificates.certify import Certificate, Reference, scores_intercepts
from ..parts.anderson import Anderson
from ..parts.epochs import DataInner, LeastSquaresEpochs, aligned, feature_gradient
from ..parts.gram import GramInner
from ..parts.moments import uniform_within_tasks
from ..parts.newton_loop import newton_loop
from ..parts.newton_model import armijo, newton_model
from ..parts.working_set import nonzero_rows, select_working_set
from ..result import SolverResult

__all__ = ["stationary_least_squares", "stationary_newton", "kkt_terms"]


def kkt_terms(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float, W: np.ndarray,
              f: np.ndarray, fit_intercept: bool, G0_norm: float) -> tuple[float, np.ndarray]:
    """``(relative KKT residual, G)`` at W with scores f: G is minus the gradient of the data
    term (p x T); the residual is that of :func:`~regmtl.solvers.certificates.certify.kkt_residual`
    (the same formula, the intercepts' gradient included)."""
    u = data.c * datafit.theta(data.y, f)
    G = data.adjoint(u)
    d = penalty.subdiff_distance(W, G, alpha)
    res = float(np.sum(d * d))
    if fit_intercept:
        res += float(np.sum(data.task_sums(u) ** 2))
    return float(np.sqrt(res)) / (G0_norm if G0_norm > 0 else 1.0), G


def _restricted(penalty: Penalty, alpha: float, W: np.ndarray, G: np.ndarray) -> float:
    """The (absolute) stationarity residual of a working set: ``||dist(G, d_C Omega(W))||``."""
    d = penalty.subdiff_distance(W, G, alpha)
    return float(np.sqrt(np.sum(d * d)))


def _inner_gradient(inner) -> np.ndarray:
    """Minus the gradient of the inner problem on its working set (k x T)."""
    if isinstance(inner, GramInner):
        return inner.ct * inner.Et.T
    ls = inner.ls
    return ls.gradient(ls.c * inner.R, inner.ws)


def _drift_search(inner, D: np.ndarray) -> bool:
    """Move along a drift ``D`` (the last epoch's step, repeated epoch after epoch) by
    doubling steps ``W + t D``, ``t = 1, 2, 4, ...``, as long as the objective falls (each
    point taken only where it is lower: a descent step whatever the penalty's curvature);
    whether it moved."""
    W0 = inner.W.copy()
    moved, t = False, 1.0
    for _ in range(30):
        if not inner.try_point(W0 + t * D):
            break
        moved, t = True, 2.0 * t
    return moved


def _run_inner(inner, penalty: Penalty, alpha: float, target: float, budget: int, anderson: int,
               check_every: int = 5) -> int:
    """Epochs on a working set until its stationarity residual is at most ``target``
    (absolute) or an epoch changes nothing; returns the epochs run. Anderson-extrapolated
    points are taken only where they lower the objective (``inner.try_point``); where the
    residual has stopped halving over three checks and successive epochs repeat one step (a
    valley coordinate descent crawls along: collinear columns, or coefficients past the
    penalty's flat point), a doubling search along that step (:func:`_drift_search`)."""
    acc = Anderson(anderson) if anderson else None
    if acc is not None:
        acc.push(inner.W)
    last, step, checks = inner.W.copy(), None, []
    for e in range(1, budget + 1):
        change = inner.epoch()
        if acc is not None:
            x = acc.push(inner.W)
            if x is not None:
                inner.try_point(x.reshape(inner.W.shape))
        W = inner.W
        new = W - last
        crawling = len(checks) >= 3 and checks[-1] > 0.5 * checks[-3]
        if crawling and step is not None and aligned(new, step) and _drift_search(inner, new):
            W, new = inner.W, None
        last, step = W.copy(), new
        if change == 0.0 or e % check_every == 0 or e == budget:
            res = _restricted(penalty, alpha, inner.W, _inner_gradient(inner))
            if change == 0.0 or res <= target:
                return e
            checks.append(res)
    return budget


# ----------------------------------------------------------------------------- squared loss
def _gram_inner(data: TaskData, ls: LeastSquaresEpochs, R: np.ndarray, W: np.ndarray,
                ws: np.ndarray, params, penalty: Penalty, alpha: float) -> GramInner:
    """The working set's problem in Gram form (shared dense design, rows of a task weighing
    alike): ``Q_S`` and ``X_S,c^T R`` from the columns of S."""
    T, n = data.n_tasks, data.X.shape[0]
    Xw = data.X[:, ws]
    xbar = ls.xm[ws, 0].copy()
    Q = Xw.T @ Xw
    Q -= n * np.outer(xbar, xbar)
    Rmat = R.reshape(T, n).T
    E0 = Xw.T @ Rmat - np.outer(xbar, Rmat.sum(axis=0))
    rr0 = np.einsum("it,it->t", Rmat, Rmat)
    yR0 = np.einsum("it,it->t", data.y.reshape(T, n).T, Rmat)
    return GramInner(Q, E0, rr0, yR0, W[ws], ls.ct, ls.L[ws], params, penalty, alpha)


def stationary_least_squares(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                             W: np.ndarray, b: np.ndarray, *, ref: Reference,
                             fit_intercept: bool = True, tol: float = 1e-4,
                             max_iter: int = 1000, verbose: int = 0, working_set: bool = True,
                             anderson: int = 5, gram: bool | str = "auto",
                             p0: int = 10) -> SolverResult:
    """Block coordinate descent to a stationary point of a nonconvex penalty with the squared
    loss, from ``(W, b)`` in place, certified by the relative KKT residual of the Clarke
    subdifferential. ``max_iter`` bounds the epochs; ``gram`` ("auto" or True: Gram form on
    the working sets of a shared dense design; False: never), ``working_set``, ``anderson``
    and ``p0`` as for :func:`regmtl.solvers.bcd`."""
    p, T = data.n_features, data.n_tasks
    params = penalty.bcd_params(alpha)
    c = data.c
    ls = LeastSquaresEpochs(data, c, uniform_within_tasks(data), fit_intercept, params)
    bc = ls.centered(W, b)
    R = np.empty(data.n_obs)
    ls.residual(data.y, bc, W, nonzero_rows(W), R)
    ls.intercepts(R, bc)
    scale = float(np.linalg.norm(ref.G0))
    shared_gram = (gram is not False and data.shared and not sp.issparse(data.X)
                   and uniform_within_tasks(data))
    floor = p // 16 if working_set else 0
    none = np.zeros(p, dtype=bool)
    total, best, stalled = 0, np.inf, 0
    while True:
        rel, G = kkt_terms(data, datafit, penalty, alpha, W, data.y - R, fit_intercept, scale)
        primal = 0.5 * float(np.dot(c, R * R)) + penalty.value(W, alpha)
        cert = Certificate("kkt_residual", rel, primal, None, ref.P0)
        if verbose:
            print(f"[bcd-kkt] epoch {total:5d}  kkt {rel:.3e}  primal {primal:.12e}")
        if cert.converged(tol):
            return SolverResult(W, ls.uncentered(W, bc), max(total, 1), cert, True)
        stalled = 0 if rel < 0.99 * best else stalled + 1
        best = min(best, rel)
        if total >= max_iter or stalled >= 20:
            return SolverResult(W, ls.uncentered(W, bc), max(total, 1), cert, False,
                                stalled=total < max_iter)
        if working_set:
            ws = select_working_set(penalty, alpha, W, G, none, p0, floor)
        else:
            ws = np.arange(p, dtype=np.int64)
        target = 0.3 * rel * scale
        n = data.X.shape[0]
        if shared_gram and len(ws) <= n and 2 * len(ws) <= p:
            inner = _gram_inner(data, ls, R, W, ws, params, penalty, alpha)
            total += _run_inner(inner, penalty, alpha, target, max_iter - total, anderson)
            D = np.zeros_like(W)
            D[ws] = inner.W - inner.W0
            W[ws] = inner.W
            ls.residual(R.copy(), np.zeros(T), D, ws, R)  # R -= X_S,c (W_S - W0_S)
            ls.intercepts(R, bc)
        else:
            inner = DataInner(ls, R, bc, data.y, W, ws, penalty, alpha)
            total += _run_inner(inner, penalty, alpha, target, max_iter - total, anderson)


# ----------------------------------------------------------------------------- logistic loss
def _model_step(data, penalty, alpha, W, b, f, params, ws, fit_intercept, theta, h, z, target,
                max_inner, anderson):
    """Minimize the weighted least-squares model ``(h, z)`` of the loss on ``ws`` from W;
    returns ``(dW, db, df)``, the move of the coefficients, intercepts and scores."""
    epochs = LeastSquaresEpochs(data, h, False, fit_intercept, params, features=ws)
    V, bc = W.copy(), epochs.centered(W, b)
    R = np.empty_like(z)
    epochs.residual(z, bc, V, ws, R)
    epochs.intercepts(R, bc)
    inner = DataInner(epochs, R, bc, z, V, ws, penalty, alpha)
    used = _run_inner(inner, penalty, alpha, target, max_inner, anderson)
    dW, db = V - W, epochs.uncentered(V, bc) - b
    # the scores' move from the design, not ``(z - R) - f``, which keeps ~1e-4 of it where a
    # row's working response lies ~1e12 away (its curvature at the floor of the weights)
    return dW, db, data.linear(dW, db), used


class _StationaryNewton:
    """Proximal Newton to a stationary point (the module's text), as a
    :class:`~regmtl.solvers.parts.newton_loop.NewtonMethod` certified by the KKT residual."""

    spent = False

    def __init__(self, data, datafit, penalty, alpha, W, b, ref, fit_intercept, working_set,
                 anderson, p0, max_inner):
        self.data, self.datafit, self.penalty, self.alpha = data, datafit, penalty, alpha
        self.W, self.b, self.ref, self.fit_intercept = W, b, ref, fit_intercept
        self.working_set, self.anderson, self.p0 = working_set, anderson, p0
        self.max_inner = max_inner
        self.params = penalty.bcd_params(alpha)
        f = data.linear(W, b)
        if fit_intercept:
            f, _ = scores_intercepts(data, datafit, f, b)
        self.f = f
        self.value = self._objective(f, W)
        self.scale = float(np.linalg.norm(ref.G0))
        self.zero_means = np.zeros((data.n_features, data.n_tasks))
        self.G = None

    def _objective(self, f, W) -> float:
        return (self.datafit.value(self.data.y, f, self.data.c)
                + self.penalty.value(W, self.alpha))

    def certify(self) -> Certificate:
        rel, self.G = kkt_terms(self.data, self.datafit, self.penalty, self.alpha, self.W,
                                self.f, self.fit_intercept, self.scale)
        return Certificate("kkt_residual", rel, self.value, None, self.ref.P0)

    def status(self) -> str:
        return f"  primal {self.value:.12e}"

    def _direction(self, theta, h, z, ws, target):
        """The model's move (dW, db, df) and its Armijo step; where the quadratic model
        misled (its curvature below the penalty's concavity, its exact block minimizers in
        another basin), the majorizing model's full step if it does better."""
        data, datafit, penalty, alpha = self.data, self.datafit, self.penalty, self.alpha
        y, c, W, b, f = data.y, data.c, self.W, self.b, self.f
        args = (data, penalty, alpha, W, b, f, self.params, ws, self.fit_intercept, theta)
        dW, db, df, _ = _model_step(*args, h, z, target, self.max_inner, self.anderson)
        step = armijo(datafit, penalty, alpha, y, c, theta, W, f, dW, df, self.value,
                      data.numbers)
        if step != 1.0 and np.isfinite(datafit.curvature):
            # the majorizing model (curvature c * datafit.curvature >= the loss's) lowers the
            # objective at its full step: the better of the two moves (a log-link loss, alone
            # or in a loss list, has no such bound: its Armijo step stands)
            new = np.inf if step is None else self._objective(f + step * df, W + step * dW)
            hm, zm = c * datafit.curvature, f + theta / datafit.curvature
            mW, mb, mf, _ = _model_step(*args, hm, zm, target, self.max_inner, self.anderson)
            major = self._objective(f + mf, W + mW)
            # (a descent step in exact arithmetic: taken within the rounding of the
            # objective, as Armijo's test allows)
            if major < new and major <= self.value + 1e-15 * abs(self.value):
                dW, db, df, step = mW, mb, mf, 1.0
        return dW, db, df, step

    def step(self, cert, progress, budget) -> int | None:
        """Newton steps on one working set (at most ten) until its own residual is below
        0.3 times the outer one; None where the first finds no decrease."""
        data, datafit, penalty, alpha = self.data, self.datafit, self.penalty, self.alpha
        p = data.n_features
        if self.working_set:
            ws = select_working_set(penalty, alpha, self.W, self.G, np.zeros(p, dtype=bool),
                                    self.p0)
            ws = np.union1d(ws, nonzero_rows(self.W)).astype(np.int64)
        else:
            ws = np.arange(p, dtype=np.int64)
        model_target = 0.1 * cert.relative * self.scale
        taken = 0
        for _ in range(min(10, budget)):
            theta, h, z = newton_model(datafit, data.y, data.c, self.f)
            dW, db, df, step = self._direction(theta, h, z, ws, model_target)
            if step is None:  # no decrease at all: the loss at its rounding floor
                return taken or None
            taken += 1
            self.W += step * dW
            self.b += step * db
            f = self.f + step * df
            if self.fit_intercept:
                f, _ = scores_intercepts(data, datafit, f, self.b)
            self.f = f
            self.value = self._objective(f, self.W)
            u = data.c * datafit.theta(data.y, f)
            inner = _restricted(penalty, alpha, self.W[ws],
                                feature_gradient(data, self.zero_means, u, ws))
            model_target = min(model_target, 0.1 * inner)
            if inner <= 0.3 * cert.relative * self.scale:
                break
        return taken


def stationary_newton(data: TaskData, datafit: Datafit, penalty: Penalty, alpha: float,
                      W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool = True,
                      tol: float = 1e-4, max_iter: int = 1000, verbose: int = 0,
                      working_set: bool = True, anderson: int = 5, p0: int = 10,
                      max_inner: int = 50) -> SolverResult:
    """Proximal Newton to a stationary point of a nonconvex penalty with a loss other than the
    squared one, from ``(W, b)`` in place, each model solved by the epochs of
    :func:`stationary_least_squares`; ``max_iter`` bounds the Newton steps. Certified by the
    relative KKT residual of the Clarke subdifferential."""
    method = _StationaryNewton(data, datafit, penalty, alpha, W, b, ref, fit_intercept,
                               working_set, anderson, p0, max_inner)
    cert, progress, converged, stalled = newton_loop(
        method, tol=tol, max_iter=max_iter, label="prox-newton-kkt", verbose=verbose)
    return SolverResult(method.W, method.b, max(progress.steps, 1), cert, converged,
                        stalled=stalled)
