r"""A nonsmooth loss solved through smoothed stages and certified on the loss itself: the pinball
loss where primal-dual iterations do not apply (a nonconvex penalty, a penalty without a prox,
a loss per task with a quantile task and a loss without a closed-form dual step, such as the
Poisson one; :mod:`~regmtl.solvers.methods.primal_dual` solves the others exactly, and
majorize-minimize penalties run their convex stages on the loss itself).

Stage k minimizes the loss's Moreau envelope of width ``delta_k`` (``datafit.smoothed``, a
smooth loss within ``delta_k max(tau, 1 - tau)^2 / 2`` per unit of row weight of it) by the
solver the table picks for it, warm-started at the previous stage; ``delta`` shrinks tenfold
per stage, each solved below its own smoothing error (not further), and all stages together
run at most ``max_iter`` iterations. Near the optimum the
band holds the rows the fit interpolates (a linear program's basis); while it does, the stage
solutions are affine in ``delta``, so each stage starts where the line through the last two
predicts, and the line's value at ``delta = 0`` is certified too (the exact optimum, or
stationary point, once the basis is found).

Every candidate is certified on the nonsmooth problem, never on a smoothed one: with a convex
penalty that has a dual, by the duality gap of the loss itself (the smoothed loss's dual point
``clip(r / delta, tau - 1, tau)`` lies in the pinball loss's dual interval); otherwise by the
KKT residual of the loss itself (:mod:`~regmtl.solvers.certificates.kinks`: the stage's dual
point on the rows at the kink, each other pinball row its own subgradient ``tau`` or
``tau - 1``; the Clarke subdifferential for a nonconvex penalty). The objective reported is
the loss's own at the point returned.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Certificate, Reference, curvature_bound, dual_point
from ..certificates.kinks import kink_certificate, kink_slack
from ..result import SolverResult

__all__ = ["smoothed_stages"]

#: the most stages (each ten times narrower than the last)
MAX_STAGES = 16


class _StageDual(Datafit):
    """The nonsmooth loss's value, conjugate and domain, with the dual points of its smoothed
    form: what certifies a stage on the loss itself."""

    def __init__(self, exact: Datafit, smooth: Datafit):
        self.exact, self.smooth_form = exact, smooth

    def value(self, y, f, c):
        return self.exact.value(y, f, c)

    def theta(self, y, f):
        return self.smooth_form.theta(y, f)

    def dual_value(self, y, theta, c):
        return self.exact.dual_value(y, theta, c)

    def feasible(self, y, theta):
        return self.exact.feasible(y, theta)


def _gap(data, exact, smooth, penalty, alpha, V, f, f_dual, fit_intercept,
         ref) -> Certificate:
    """The duality gap of the nonsmooth problem at ``(V, f)``, its dual point the smoothed
    loss's at the scores ``f_dual``."""
    both = _StageDual(exact, smooth)
    theta = dual_point(data, both, f_dual, fit_intercept)
    G = data.adjoint(data.c * theta)
    s = penalty.dual_scaling(G, alpha)
    dual = (exact.dual_value(data.y, data.per_row(s) * theta, data.c)
            - penalty.scaled_conjugate(G, s, alpha))
    primal = exact.value(data.y, f, data.c) + penalty.value(V, alpha)
    return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, ref.P0)


def _toward(new: tuple, old: tuple, d_new: float, d_old: float, d_to: float) -> tuple:
    """The stage solutions ``(W, b, V)`` extrapolated linearly in the width to ``d_to``: with
    the rows the fit interpolates unchanged, the solution is affine in the width, so the
    extrapolation to 0 is the exact optimum and to the next width the next stage's."""
    r = (d_to - d_new) / (d_new - d_old)
    return tuple(None if a is None else a + r * (a - z) for a, z in zip(new, old, strict=True))


def smoothed_stages(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                    W: np.ndarray, b: np.ndarray, *, ref: Reference,
                    solve: Callable[..., SolverResult], fit_intercept: bool, tol: float,
                    max_iter: int, verbose: int = 0) -> SolverResult:
    """Minimize ``datafit + alpha penalty`` (``datafit`` not smooth) from ``(W, b)`` by
    smoothed stages, each solved by ``solve`` (the table's own entry) and certified on the
    loss itself; ``max_iter`` bounds the iterations of all stages together."""
    y, c = data.y, data.c
    gap_cert = penalty.has_dual and alpha > 0 and not penalty.nonconvex
    total_weight = float(np.sum(c))
    # the first width: the spread of the targets about the start's scores
    f = data.linear(W, b)
    spread = float(np.sqrt(np.dot(c, (y - f) ** 2) / total_weight)) if total_weight > 0 else 1.0
    delta = max(spread, np.finfo(float).tiny)
    # the KKT residual on the loss itself: the rows counted as on a kink move the objective
    # by at most this slack (kink_rows), and the step of the proximal-gradient residual
    # (penalties without a subdifferential distance) is that of the first stage
    slack = kink_slack(tol, ref)
    step_constant = curvature_bound(data, datafit.smoothed(delta))
    project = getattr(penalty, "project", None)
    V, used, best, prev, stage_ok = None, 0, None, None, False
    for stage in range(MAX_STAGES):
        left = max_iter - used
        if left <= 0:
            stage_ok = False  # out of iterations
            break
        smooth = datafit.smoothed(delta)
        # each stage solved below its own smoothing error (``delta sum_r c_r / 2`` at most,
        # relative to P0), not further: the iterations go to the narrow stages
        stage_tol = max(0.3 * tol, 1e-13, min(1e-3, 0.05 * delta * total_weight / ref.P0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = solve(data, smooth, penalty, alpha, W0=W, b0=b, V0=V, tol=stage_tol,
                        fit_intercept=fit_intercept, max_iter=left)
        used += res.n_iter
        stage_ok = res.converged
        W, b, V = res.W, res.b, res.V
        f = data.linear(W, b)
        hint = smooth.theta(y, f)  # the stage's dual point: on the kink rows' interval
        points = [(W, b, V)]
        if prev is not None:  # the solution extrapolated to width 0
            points.append(_toward((W, b, V), prev[1:], delta, prev[0], 0.0))
        for Wc, bc, Vc in points:
            if project is not None:
                Wc = project(Wc)
            if gap_cert:
                cert = _gap(data, datafit, smooth, penalty, alpha,
                            Vc if Vc is not None else penalty.lift(Wc), data.linear(Wc, bc),
                            f, fit_intercept, ref)
            else:
                cert = kink_certificate(data, datafit, penalty, alpha,
                                        Vc if Vc is not None else penalty.lift(Wc), bc, hint,
                                        fit_intercept, ref, slack, step_constant)
            if best is None or cert.relative < best[0].relative:
                best = (cert, Wc, bc, Vc, hint)
        if verbose:
            print(f"[smoothing] stage {stage}  delta {delta:.3e}  {best[0].kind} "
                  f"{best[0].relative:.3e}  (stage solve {res.certificate.relative:.1e})")
        if best[0].converged(tol):
            cert, W, b, V, hint = best
            return SolverResult(W, b, max(used, 1), cert, True, V, theta=hint)
        nxt = delta / 10.0
        if prev is not None:  # start the next stage where the solution's line predicts it
            W, b, V = _toward((W, b, V), prev[1:], delta, prev[0], nxt)
            if project is not None:
                W = project(W)
        prev = (delta, res.W, res.b, res.V)
        delta = nxt
    else:  # every stage run, iterations left: more of them would not help
        stage_ok = True
    cert, W, b, V, hint = best
    return SolverResult(W, b, max(used, 1), cert, False, V, stalled=stage_ok, theta=hint)
