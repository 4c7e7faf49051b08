r"""Accelerated proximal gradient (FISTA) with backtracking and adaptive restart.

Works with any penalty that has a ``prox``. The smooth part is the data term in ``(W, b)``; the
intercepts ``b`` take plain gradient steps (their prox is the identity) and are minimized exactly
before each certificate. With intercepts the iteration runs in centered coordinates,
``f_r = (x_r - xm_t) . w_t + b'_t`` with ``xm_t`` the task's weighted feature means (an exact
reparametrization, ``b = b' - xm_t . w_t``), which removes the coupling between intercepts and
uncentered features from the curvature. Step: ``1 / L`` with ``L`` started from a
power-iteration estimate of the data term's curvature and doubled until the quadratic upper
bound holds (Beck & Teboulle 2009); every :data:`LONGER_EVERY` steps one first tries ``L`` times
:data:`SHRINK`, with the momentum's ``t_k^2`` scaled by the ratio of the two ``L`` (Scheinberg,
Goldfarb & Bai 2014), so the step follows the local curvature: the multinomial loss's bound is
far above ``p (1 - p)`` once the classes are told apart (digits in 3 tasks with the trace norm
at alpha 1e-3: certified in 300 steps, where steps held at the first bound ran out at 1,000).
Momentum restarts when it points against the last step (O'Donoghue & Candes 2015).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Reference, certify, scores_intercepts
from ..parts.quadratic import quadratic_applies, task_quadratic
from ..parts.quadratic_fista import MAX_BACKTRACK, crawling, fista_quadratic
from ..result import SolverResult

__all__ = ["fista", "lipschitz_estimate", "SHRINK"]

#: Every :data:`LONGER_EVERY` steps, a step first tries ``L`` times this (a tenth longer); it
#: is kept only where it meets the quadratic bound itself, else the step takes ``L`` again
#: (each accepted one scales the momentum's ``t_k^2`` by 0.9: tried every step, the damping
#: held a SparseLowRank fit at tol 1e-10 short after 1,000 steps).
SHRINK = 0.9
LONGER_EVERY = 5
#: ... while the last certificate is above this (relative): to the accuracy a few fits ask for
#: (tol 1e-13, 1e-14) the momentum each longer step shortens costs more than the step gains
#: (logistic L2,1 fits stalled at 1e-8 to 1e-12 with the trials to the end).
LONGER_ABOVE = 1e-6


class _CenteredMaps:
    """``linear`` / ``adjoint`` of the design in centered coordinates (xm = 0: plain maps)."""

    def __init__(self, data: TaskBlocks, xm: np.ndarray):
        self.data, self.xm = data, xm

    def linear(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.data.linear(W, b - np.einsum("jt,jt->t", self.xm, W))

    def adjoint(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient pieces: (X_c^T u per task, per-task sums of u)."""
        sums = self.data.task_sums(u)
        return self.data.adjoint(u) - self.xm * sums, sums


def lipschitz_estimate(maps: _CenteredMaps, datafit: Datafit, fit_intercept: bool,
                       n_iter: int = 30, f: np.ndarray | None = None) -> float:
    """Power-iteration estimate of the largest eigenvalue of the data term's Hessian bound
    (the loss's curvature near the scores ``f`` where it has no global bound)."""
    data = maps.data
    rng = np.random.default_rng(0)
    V = rng.standard_normal((data.n_features, data.n_tasks))
    v = rng.standard_normal(data.n_tasks) if fit_intercept else np.zeros(data.n_tasks)
    lam = _norm(V, v, data)
    for _ in range(n_iter):
        if lam == 0:
            return 0.0
        V, v = V / lam, v / lam
        V, v = maps.adjoint(data.c * maps.linear(V, v))
        if not fit_intercept:
            v = np.zeros_like(v)
        V, v = data.settle(V, v)  # (task blocks elsewhere: computed, not a growing history)
        lam = _norm(V, v, data)  # (and the next step's normalization: one round trip a step)
    curvature = datafit.curvature
    if not np.isfinite(curvature):
        curvature = datafit.curvature_at(data.y, data.row_zeros() if f is None else f)
    return curvature * lam


def _norm(V: np.ndarray, v: np.ndarray, data: Any = None) -> float:
    """``sqrt(||V||^2 + ||v||^2)`` without overflow (entries past 1e154 square to inf); on
    task blocks held elsewhere (``data``) in one round trip unless the entries are that large."""
    numbers = (lambda *a: tuple(float(x) for x in a)) if data is None else data.numbers
    with np.errstate(over="ignore", invalid="ignore"):
        maxV, maxv, ss = numbers(np.max(np.abs(V)) if V.size else 0.0,
                                 np.max(np.abs(v)) if v.size else 0.0,
                                 np.vdot(V, V) + np.dot(v, v))
    big = max(maxV, maxv)
    if big == 0.0 or not np.isfinite(big):
        return big
    if big < 1e150 and np.isfinite(ss):
        return float(np.sqrt(ss))
    (scaled,) = numbers(np.vdot(V / big, V / big) + np.dot(v / big, v / big))
    return big * float(np.sqrt(scaled))


def fista(
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
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
    V0: np.ndarray | None = None,
    crawl_budget: int | None = None,
) -> SolverResult:
    """Accelerated proximal gradient (FISTA) with backtracking and adaptive restart, for any
    loss (in Gram form for the squared loss where it pays); the arguments and the iteration as
    in :func:`regmtl.solvers.fista`, which runs the logistic loss on tasks of more rows than
    features by proximal Newton in Gram form instead. With ``crawl_budget`` it stops early,
    short of ``tol``, once it has run that many iterations and its linear rate so far predicts
    more than as many again (the caller then changes method)."""
    V = penalty.lift(W) if V0 is None else np.array(V0, dtype=np.float64)
    done = 0
    # Gram form, unless tol is below the rounding floor of the Gram sums (about 2e-13 relative)
    if datafit.quadratic and quadratic_applies(data) and tol >= 1e-12:
        q = task_quadratic(data, fit_intercept)
        gram_tol = tol * ref.P0 if penalty.has_dual and alpha > 0 else tol  # gap: absolute
        V, done, stalled = fista_quadratic(q, penalty, alpha, V, tol=gram_tol,
                                           max_iter=max_iter, check_every=check_every,
                                           G0_norm=float(np.linalg.norm(ref.G0)),
                                           verbose=verbose)
        W = penalty.compose(V)
        b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
        f = data.linear(W, b)
        cert = certify(data, datafit, penalty, alpha, V, f, fit_intercept, ref,
                       None if penalty.has_dual and alpha > 0 else q.lipschitz())
        if cert.converged(tol) or done >= max_iter or stalled or not data.rows_local:
            return SolverResult(W, b, max(done, 1), cert, cert.converged(tol), V,
                                stalled=stalled and not cert.converged(tol))
        # the Gram sums met tol but the data do not (rounding): finish over the data
    y, c = data.y, data.c
    xm = data.feature_means() if fit_intercept else np.zeros((data.n_features, data.n_tasks))
    maps = _CenteredMaps(data, xm)
    copies = penalty.spread(np.ones((1, 1))).size  # ||compose||^2: W = P + Q doubles it
    b = b + np.einsum("jt,jt->t", xm, penalty.compose(V))  # intercepts, centered coordinates
    f = maps.linear(penalty.compose(V), b)
    L = max(copies * lipschitz_estimate(maps, datafit, fit_intercept, f=f), 1e-12)
    Z, zb, fz = V, b, f  # the extrapolated point and its scores (linear in the point)
    t = 1.0
    cert, best, stalled = None, None, False
    floor = 1e-13 * ref.P0  # the rounding floor of a data-term value
    it, best_rel, best_it, first_rel = done, np.inf, done, None
    for it in range(done + 1, max_iter + 1):
        if data.rows_local:
            val_z, theta_z = datafit.value_theta(y, fz, c)
            GW, Gb = maps.adjoint(c * theta_z)  # minus the gradient
        else:  # task blocks elsewhere: the value comes home with the step's test, the
            # gradient is kept on the workers for every trial step
            val_z = datafit.lazy_value(y, fz, c)
            GW, Gb = data.settle(*maps.adjoint(c * datafit.theta(y, fz)))
        GV = penalty.spread(GW)
        if not fit_intercept:
            Gb = np.zeros_like(zb)
        # every few steps a longer one is tried first (Scheinberg, Goldfarb & Bai 2014): a
        # bound from the start (or a steep region passed) would otherwise hold every later
        # step short
        longer = it % LONGER_EVERY == 0 and (cert is None or cert.relative > LONGER_ABOVE)
        L_prev, L = L, (L * SHRINK if longer else L)
        for _ in range(MAX_BACKTRACK):
            V_new = penalty.prox(Z + GV / L, 1.0 / L, alpha)
            b_new = zb + Gb / L
            dV, db = V_new - Z, b_new - zb
            f_new = maps.linear(penalty.compose(V_new), b_new)
            if not data.rows_local:  # the trial point kept where the blocks are (persist does
                # not wait): the test below, the momentum and the next step read it, not its
                # history again
                V_new, b_new, f_new = data.settle(V_new, b_new, f_new)
                dV, db = V_new - Z, b_new - zb
            bound = val_z - np.vdot(GV, dV) - np.dot(Gb, db)
            bound += 0.5 * L * (np.vdot(dV, dV) + np.dot(db, db))
            step_V, step_b = V_new - V, b_new - b
            turn = np.vdot(Z - V_new, step_V) + np.dot(zb - b_new, step_b)  # restart if > 0
            value, bound, turn, val = data.numbers(datafit.lazy_value(y, f_new, c), bound,
                                                   turn, val_z)  # (one round trip on blocks)
            # (the longer trial step must meet the bound itself; the slack for rounding
            # serves only the step length already known to hold)
            if value <= bound + (0.0 if L < L_prev else 1e-12 * abs(val) + floor):
                break
            L = L_prev if L < L_prev else 2.0 * L
        else:  # no step size passes: the loss sits at the rounding floor
            stalled = True
        if turn > 0:  # restart
            t = 1.0
            Z, zb, fz = V_new, b_new, f_new
        else:
            # (the momentum of a step whose length changed: t_k^2 scaled by L_{k+1} / L_k)
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t * L / L_prev))
            mom = (t - 1.0) / t_next
            Z, zb, fz = V_new + mom * step_V, b_new + mom * step_b, f_new + mom * (f_new - f)
            t = t_next
        V, b, f = V_new, b_new, f_new
        if not data.rows_local:  # the iterates computed where the blocks are, each step
            V, b, f, Z, zb, fz = data.settle(V, b, f, Z, zb, fz)
        if it % check_every == 0 or it == max_iter or it == done + 1 or stalled:
            # certify with the intercepts minimized exactly, on copies: the iterates (and
            # with them the momentum) stay untouched
            b_cert, f_cert = b.copy(), f
            if fit_intercept:
                f_cert, b_cert = scores_intercepts(data, datafit, f, b_cert)
            cert = certify(data, datafit, penalty, alpha, V, f_cert, fit_intercept, ref, L)
            best = (V, b_cert)
            if verbose:
                print(f"[fista] iter {it:5d}  L {L:.3e}  {cert.kind} {cert.relative:.3e}")
            if cert.relative < 0.99 * best_rel:
                best_rel, best_it = cert.relative, it
            # no progress for as long as it took to reach the best: the rounding floor
            stalled = stalled or it - best_it >= max(20 * check_every, best_it - done)
            if cert.converged(tol) or stalled:
                break
            first_rel = cert.relative if first_rel is None else first_rel
            if crawl_budget is not None and it >= crawl_budget and crawling(
                    first_rel, best_rel, it, tol, crawl_budget):
                break
    V, b = best
    W = penalty.compose(V)
    b = b - np.einsum("jt,jt->t", xm, W)
    converged = cert.converged(tol)
    return SolverResult(W, b, it, cert, converged, V, stalled=stalled and not converged)
