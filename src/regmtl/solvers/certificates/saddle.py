r"""The certificate of a loss whose conjugate is linear on a box (the pinball loss) at a
primal-dual pair: what the primal-dual and linear-programming solvers report.

The primal at ``(V, b)`` with its intercepts minimized exactly (the pinball loss's in closed
form, :func:`~regmtl.solvers.parts.intercepts.pinball_intercepts`), the dual at ``theta`` moved onto
``sum_{r in t} c_r theta_r = 0`` within the box (a shift per task, by bisection; a squared
task of a loss list has no box, its shift lies within its own values) and scaled
into the penalty's dual ball; for a penalty without a tractable dual (or ``alpha = 0``) the
fixed-point residual of the primal-dual iteration.
"""

from __future__ import annotations

import numpy as np

from ...datafits import Datafit
from ..parts.intercepts import pinball_intercepts
from .certify import Certificate, fit_intercepts

__all__ = ["CHECK", "centered_dual", "dual_box", "saddle_certificate"]

#: PDHG's iterations between two certificates (and the unit of the estimators' ``max_iter``
#: there), in memory and on task blocks
CHECK = 64


def dual_box(datafit: Datafit, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dual box ``[l, u]`` of each row (the projection's images of -inf and +inf)."""
    big = np.full(y.shape, 1e300)
    return datafit.feasible(y, -big), datafit.feasible(y, big)


def centered_dual(data, theta, lo, hi, fit_intercept: bool) -> np.ndarray:
    """``clip(theta - lambda_t, lo, hi)`` with each task's shift ``lambda_t`` chosen so that
    ``sum_{r in t} c_r theta_r = 0`` (bisection, all tasks at once)."""
    if not fit_intercept:
        return np.clip(theta, lo, hi)
    c = data.c
    # every shift that matters lies within the largest |theta| + finite box width of the task
    # (a task of a loss without a box, the squared loss in a loss list, is centred by a shift
    # within its own values)
    width = hi - lo
    span = float(np.max(np.abs(theta), initial=0.0)
                 + np.max(width[np.isfinite(width) & (width < 1e299)], initial=0.0)) + 1.0
    low, high = np.full(data.n_tasks, -span), np.full(data.n_tasks, span)
    for _ in range(80):
        mid = 0.5 * (low + high)
        s = np.asarray(data.task_sums(c * np.clip(theta - data.per_row(mid), lo, hi)))
        low = np.where(s > 0, mid, low)
        high = np.where(s > 0, high, mid)
    return np.clip(theta - data.per_row(0.5 * (low + high)), lo, hi)


def saddle_certificate(data, datafit, penalty, alpha, V, b, theta, lo, hi, fit_intercept,
                       ref, refit: bool = True):
    """(certificate, b with intercepts minimized) at the primal ``(V, b)`` and dual
    ``theta``: the duality gap, or for a penalty without a tractable dual (or ``alpha = 0``)
    the fixed-point residual of the iteration (zero exactly at a saddle point) relative to
    ``||G0||``. ``refit=False``: ``b`` is taken as it is (already optimal for W)."""
    W = penalty.compose(V)
    f = data.linear(W, b)
    b = b.copy()
    if fit_intercept and refit:
        S = datafit.state(data.y, f)
        if datafit.piecewise_linear:  # the pinball loss's intercepts in closed form
            pinball_intercepts(data, datafit.quantile, S, b)
        else:
            fit_intercepts(data, datafit, S, b)
        f = datafit.scores(data.y, S)
    primal = datafit.value(data.y, f, data.c) + penalty.value(V, alpha)
    if not penalty.has_dual or alpha <= 0:  # (alpha = 0: the dual needs X^T c theta = 0)
        u = data.c * theta
        D = V - penalty.prox(V + penalty.spread(data.adjoint(u)), 1.0, alpha)
        # theta a subgradient of the loss at the residual: the dual step's fixed point
        r = theta - datafit.dual_prox(data.y, theta + data.y - f, 1.0)
        res = float(np.vdot(D, D)) + float(np.dot(data.c, r * r))
        if fit_intercept:
            res += float(np.sum(np.asarray(data.task_sums(u)) ** 2))
        scale = float(np.linalg.norm(ref.G0))
        return Certificate("kkt_residual", np.sqrt(res) / (scale if scale > 0 else 1.0),
                           primal, None, ref.P0), b
    th = centered_dual(data, theta, lo, hi, fit_intercept)
    G = data.adjoint(data.c * th)
    s = penalty.dual_scaling(G, alpha)
    dual = (datafit.dual_value(data.y, data.per_row(s) * th, data.c)
            - penalty.scaled_conjugate(G, s, alpha))
    return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, ref.P0), b
