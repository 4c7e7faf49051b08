r"""Majorize-minimize stages for a penalty that declares ``majorized`` (its ``stage``: the
nonconvex fused group lasso, as MALSAR's DC programming of ``Least_NCFGLassoF1``).

Stage 0 solves the convex relaxation (the weighted fused lasso with ``c_j = 1``); stage k + 1
solves the weighted fused lasso majorizing the penalty at ``W^k`` (the tangent of
``sqrt(||W_j||_1)``, ``c_j = 1 / (2 sqrt(||W^k_j||_1))``, rows at zero held there), warm-started
at ``(W^k, b^k)`` and certified by its duality gap (relative to the objective at W = 0).
Since the majorizer touches the objective at ``W^k``,
``F(W^{k+1}) <= M_k(W^{k+1}) <= M_k(W^k) + gap_k = F(W^k) + gap_k``: the objective decreases,
up to the stage's certified gap. The stages are inexact while far from the fixed point: stage
k's gap is at most ``min(1e-4, d_{k-1}^2)`` with ``d_{k-1} = ||W^k - W^{k-1}||_F / ||W^k||_F``
(the relaxation, only a start, to 1e-4), and ``stage_tol`` near it. The stage map
converges linearly; **Anderson mixing** of its last four evaluations
(:class:`~regmtl.solvers.parts.anderson.AndersonMixing`) proposes the next point of tangency, kept
where it lowers F (a majorize-minimize step from any point descends), which cuts the stages
two- to three-fold. The stages stop at a fixed point of the stage map,
``||W^{k+1} - W^k||_F <= tol ||W^{k+1}||_F`` with the stage solved to ``stage_tol`` (or
W = 0), after ``max_stages``, or when **the stages together** have run ``max_iter``
iterations (one counter, one bound); the certificate returned is the Clarke KKT residual over
the nonzero rows (``NonconvexFusedGroupLasso.subdiff_distance``). For a loss that is not
smooth (the pinball loss) each stage is solved on the loss itself by its own row
(primal-dual iterations, exact) and the KKT residual is the loss's own
(:func:`~regmtl.solvers.certificates.kinks.kink_certificate`, the last stage's dual point on the
rows at the kink).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Certificate, Reference, kkt_residual
from ..certificates.kinks import kink_certificate, kink_slack
from ..parts.anderson import AndersonMixing
from ..result import SolverResult

__all__ = ["majorize_minimize"]


def majorize_minimize(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                      W: np.ndarray, b: np.ndarray, *, ref: Reference,
                      solve: Callable[..., SolverResult], fit_intercept: bool = True,
                      tol: float = 1e-4, max_iter: int = 1000, verbose: int = 0,
                      stage_tol: float | None = None, stage_solver: str = "fista",
                      extrapolate: int = 3) -> SolverResult:
    """Majorize-minimize stages from ``(W, b)`` (the first stage, the convex relaxation, is
    warm-started there) to a fixed point of the stage map to ``tol``, each stage solved by
    ``solve`` (:func:`regmtl.solvers.solve`, given by the table's row: the policy sits above
    this module).

    ``max_iter`` bounds the iterations of all stages together; ``penalty.max_stages`` the
    stages. ``stage_tol`` (default ``tol / 100``, at least ``1e-13``) is the stages' relative
    gap near the fixed point; ``stage_solver`` solves the stages first (FISTA by default);
    where it stops short within half the iterations left, ``solver="auto"`` (ADMM with exact
    per-task solves for the squared loss) goes on from its point with the rest, and comes
    first for the later stages. A stage that still stops short (ill-conditioned designs stall
    a little above ``stage_tol``) does not warn by itself: the fit is judged by its own KKT
    residual (``solve`` warns when that misses ``tol``); each stage's gap is in ``stages``.
    ``extrapolate`` is the Anderson window (0: none).
    The result carries ``stages``: per stage its objective, relative gap, relative change of
    W and iterations."""
    p = data.n_features
    stage_tol = max(0.01 * tol, 1e-13) if stage_tol is None else float(stage_tol)
    max_stages = penalty._stages()  # noqa: SLF001 - the penalty's own validated bound
    # a smooth loss: inexact stages far from the fixed point, each to its own tol (a warm
    # start that meets it is not tightened further); the pinball loss's stages are exact
    # (its certificate reads the last stage's dual point)
    inexact = datafit.smooth
    opts = dict(fit_intercept=fit_intercept, ref=ref, tighten_warm=not inexact)

    order = [stage_solver, "auto"] if stage_solver != "auto" else ["auto"]

    def run(pen, W0, b0, budget, stol=None):
        stol = stage_tol if stol is None else stol
        # the first solver of ``order``; where it stops short, the next from its point, and
        # that one first for the later stages (the problem suits it). A stage short of
        # stage_tol is no failure of the fit, whose own certificate is checked at the end:
        # the stages' warnings are kept for that verdict, not shown
        used = 0
        for i, name in enumerate(list(order)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                last = i == len(order) - 1  # (a solver with another after it: half)
                res = solve(data, datafit, pen, alpha, W0=W0, b0=b0, tol=stol, solver=name,
                            max_iter=budget - used if last else max(1, (budget - used) // 2),
                            **opts)
                if verbose:
                    print(f"[majorize]   {name}: {res.n_iter} iterations, relative gap "
                          f"{res.certificate.relative:.3e} (stage tol {stol:.1e})")
            used += res.n_iter
            if res.converged or used >= budget:
                break
            W0, b0 = res.W, res.b
            if i < len(order) - 1:
                order.reverse()
        res.n_iter = used
        f = data.linear(res.W, res.b)
        return res, f, float(datafit.value(data.y, f, data.c) + penalty.value(res.W, alpha))

    def objective(W, b):
        return float(datafit.value(data.y, data.linear(W, b), data.c) + penalty.value(W, alpha))

    res, f, value = run(penalty.stage(None, p), W, b, max_iter,
                        max(stage_tol, 1e-4) if inexact else stage_tol)
    history = [dict(objective=value, gap=res.certificate.relative, change=np.inf,
                    n_iter=res.n_iter)]
    total, fixed = res.n_iter, False
    W, b = res.W, res.b
    acc = AndersonMixing(extrapolate) if extrapolate and inexact else None
    for k in range(1, max_stages + 1):
        if not np.any(W):
            fixed = True  # W = 0 is a fixed point: every row's weight is inf
            break
        if total >= max_iter:  # out of iterations: the certificate says so
            break
        # inexact while far from the fixed point: the stage's gap within the square of the
        # last change (at most 1e-4), stage_tol near it
        stol = max(stage_tol, min(1e-4, history[-1]["change"] ** 2) if inexact else 0.0)
        W0, b0 = W, b
        res, f, new = run(penalty.stage(W, p), W, b, max_iter - total, stol)
        norm = float(np.linalg.norm(res.W))
        change = float(np.linalg.norm(res.W - W)) / norm if norm > 0 else 0.0
        total += res.n_iter
        history.append(dict(objective=new, gap=res.certificate.relative, change=change,
                            n_iter=res.n_iter))
        if verbose:
            print(f"[majorize] stage {k:3d}  iterations {res.n_iter:5d}  change {change:.3e}  "
                  f"objective {new:.12e}  gap {res.certificate.relative:.3e}")
        W, b, value = res.W, res.b, new
        if change <= tol and stol <= stage_tol:  # (an inexact stage may not have moved)
            if datafit.smooth and stage_tol > 1e-14 and not kkt_residual(
                    data, datafit, penalty, alpha, W, f, fit_intercept, ref.G0) <= tol:
                stage_tol = max(0.01 * stage_tol, 1e-15)  # a fixed point of stages too loose
                continue
            fixed = True
            break
        if acc is not None:  # Anderson mixing of the stage map, kept where it lowers F
            z = acc.push(np.concatenate([W0.ravel(), b0]), np.concatenate([W.ravel(), b]))
            if z is not None:
                Wz, bz = z[:W.size].reshape(W.shape), z[W.size:]
                Wz[~np.any(W, axis=1)] = 0.0  # rows the stages pruned stay pruned
                fz = objective(Wz, bz)
                if fz < value:
                    W, b, value = Wz, bz, fz
                    if verbose:
                        print(f"[majorize] extrapolated  objective {fz:.12e}")
                else:
                    acc.reset()
    out_of_iterations = total >= max_iter
    if not fixed and not out_of_iterations:
        warnings.warn(
            f"the majorize-minimize stages stopped at max_stages={max_stages} with a relative "
            f"change of W of {history[-1]['change']:.3e} > tol={tol:g} over the last stage: "
            "not yet a fixed point. Raise the penalty's max_stages or loosen tol.",
            ConvergenceWarning, stacklevel=4)
    if datafit.smooth:
        f = data.linear(W, b)  # (W may be a kept extrapolation)
        rel = kkt_residual(data, datafit, penalty, alpha, W, f, fit_intercept, ref.G0)
        cert = Certificate("kkt_residual", rel, value, None, ref.P0)
    else:  # on the loss itself: the last stage's dual point on the rows at a kink
        cert = kink_certificate(data, datafit, penalty, alpha, W, b, res.theta, fit_intercept,
                                ref, kink_slack(tol, ref), 1.0)
    out = SolverResult(W, b, max(total, 1), cert, fixed and cert.converged(tol),
                       stalled=not out_of_iterations)
    out.stages = history
    return out
