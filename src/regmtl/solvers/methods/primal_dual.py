r"""Restarted primal-dual hybrid gradient (PDHG) for a loss whose conjugate is linear on a box:
the pinball loss of quantile regression, exactly (no smoothing); and for a loss per task with
a pinball task whose every loss has a closed-form dual step (squared, Huber, pinball:
``datafit.dual_prox``).

With ``f = K(V, b)`` the scores (``W = compose(V)``) the problem is the saddle point

.. math::

    \min_{V, b} \max_{\theta \in [l, u]} \sum_r c_r \theta_r (y_r - f_r) + \alpha \Omega(V),

(``[l, u] = [tau - 1, tau]`` per row: :meth:`~regmtl.datafits.Datafit.feasible`). Each
iteration is one product with the design and one with its transpose (Chambolle & Pock 2011):
``V+ = prox(V + s_p K^T (c theta))``, ``b+ = b + s_p sum_t c theta``,
``theta+ = clip(theta + s_d (y - K(2 V+ - V, 2 b+ - b)))`` (``datafit.dual_prox``: for a
squared task ``(theta + s_d (y - f_bar)) / (1 + s_d)``), with ``s_p s_d ||K||^2 < 1`` in the
``c``-weighted metric. On such sharp (linear-programming-like) problems the restarted scheme of
Applegate et al. (2021, PDLP) converges linearly: every ``check`` iterations the current and the
averaged iterates are certified, and the iteration restarts from the better one when its gap has
fallen by half since the last restart, re-balancing the primal weight ``s_d / s_p``.

The certificate is the duality gap of the problem itself: the primal at ``(V, b)`` with its
intercepts minimized exactly, the dual at ``theta`` moved onto ``sum_{r in t} c_r theta_r = 0``
within the box (a shift per task, by bisection) and scaled into the penalty's dual ball; for a
penalty without a tractable dual the fixed-point residual of the iteration, whose dual part
``theta - dual_prox(theta + y - f, 1)`` vanishes exactly where ``theta`` is a subgradient of
each row's loss at its residual. The estimators' ``max_iter`` counts certified blocks of
:data:`CHECK` iterations, and so does ``n_iter_``.
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference
from ..certificates.saddle import CHECK, centered_dual, dual_box, saddle_certificate
from ..result import SolverResult

__all__ = ["CHECK", "primal_dual"]



def _operator_norm2(data, fit_intercept: bool, n_iter: int = 50) -> float:
    """Power-iteration estimate of ``||K||^2`` in the ``c``-weighted metric: the largest
    eigenvalue of ``(W, b) -> K^T C K (W, b)``."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((data.n_features, data.n_tasks))
    v = rng.standard_normal(data.n_tasks) if fit_intercept else np.zeros(data.n_tasks)
    lam = 0.0
    for _ in range(n_iter):
        nrm = np.sqrt(float(np.vdot(V, V)) + float(np.dot(v, v)))
        if nrm == 0 or not np.isfinite(nrm):
            break
        u = data.c * data.linear(V / nrm, v / nrm)
        V = data.adjoint(u)
        v = np.asarray(data.task_sums(u), dtype=np.float64) if fit_intercept else 0.0 * v
        lam = np.sqrt(float(np.vdot(V, V)) + float(np.dot(v, v)))
    return lam


def primal_dual(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                tol: float, max_iter: int, verbose: int = 0, theta: np.ndarray | None = None,
                check: int = CHECK) -> SolverResult:
    """Minimize ``datafit + alpha penalty`` from ``(W, b)`` (and the dual point ``theta``) by
    restarted PDHG; ``max_iter`` bounds the iterations, certified every ``check``."""
    y, c = data.y, data.c
    lo, hi = dual_box(datafit, y)
    V = penalty.lift(W)
    b = np.array(b, dtype=np.float64)
    f = data.linear(penalty.compose(V), b)
    th = np.clip(datafit.theta(y, f) if theta is None else theta, lo, hi)
    copies = penalty.spread(np.ones((1, 1))).size
    norm = np.sqrt(copies * _operator_norm2(data, fit_intercept)) * 1.01
    eta = 0.95 / max(norm, 1e-300)
    omega = 1.0  # the primal weight: s_p = eta / omega, s_d = eta * omega
    cert, b_cert = saddle_certificate(data, datafit, penalty, alpha, V, b, th, lo, hi,
                                      fit_intercept, ref)
    best = (cert, V, b_cert, th)
    restart_gap, anchor = cert.value, (V, b, th)
    sums = [np.zeros_like(V), np.zeros_like(b), np.zeros_like(th)]
    n_avg, since = 0, 0
    for it in range(1, max_iter + 1):
        sp, sd = eta / omega, eta * omega
        u = c * th
        GV = penalty.spread(data.adjoint(u))
        V_new = penalty.prox(V + sp * GV, sp, alpha)
        b_new = b + sp * np.asarray(data.task_sums(u)) if fit_intercept else b
        f_bar = data.linear(penalty.compose(2.0 * V_new - V), 2.0 * b_new - b)
        th = datafit.dual_prox(y, th + sd * (y - f_bar), sd)
        V, b = V_new, b_new
        for acc, x in zip(sums, (V, b, th), strict=True):
            acc += x
        n_avg += 1
        since += 1
        if it % check and it != max_iter:
            continue
        cur, b_cur = saddle_certificate(data, datafit, penalty, alpha, V, b, th, lo, hi,
                                        fit_intercept, ref)
        avg = tuple(acc / n_avg for acc in sums)
        mean, b_mean = saddle_certificate(data, datafit, penalty, alpha, avg[0], avg[1],
                                          avg[2], lo, hi, fit_intercept, ref)
        cand = (cur, (V, b, th), b_cur) if cur.value <= mean.value else (mean, avg, b_mean)
        if cand[0].value < best[0].value:
            best = (cand[0], cand[1][0], cand[2], cand[1][2])
        if verbose:
            print(f"[pdhg] iter {it:6d}  omega {omega:.2e}  duality_gap "
                  f"{best[0].relative:.3e}")
        if best[0].converged(tol):
            break
        if cand[0].value <= 0.5 * restart_gap or since >= 20 * check:
            # restart from the better iterate; re-balance the primal weight by how far each
            # side moved since the last restart (PDLP's update, smoothed in the log)
            V1, b1, t1 = cand[1]
            dp = np.sqrt(float(np.vdot(V1 - anchor[0], V1 - anchor[0]))
                         + float(np.dot(b1 - anchor[1], b1 - anchor[1])))
            dd = np.sqrt(float(np.dot(c, (t1 - anchor[2]) ** 2)))
            if dp > 1e-12 and dd > 1e-12:
                omega = float(np.exp(0.5 * np.log(dd / dp) + 0.5 * np.log(omega)))
            V, b, th = (np.array(x, copy=True) for x in cand[1])
            anchor, restart_gap = (V, b, th), cand[0].value
            sums = [np.zeros_like(V), np.zeros_like(b), np.zeros_like(th)]
            n_avg, since = 0, 0
    cert, V, b, th = best
    W = penalty.compose(V)
    if cert.kind == "duality_gap":  # the dual point certified (before its scaling)
        th = centered_dual(data, th, lo, hi, fit_intercept)
    return SolverResult(W, b, it, cert, cert.converged(tol), V, theta=th)
