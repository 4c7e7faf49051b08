r"""The KKT residual of a loss with kinks (the pinball loss, alone or in a loss list), taken
on the loss itself: what certifies a fit where no duality gap is at hand (a penalty without a
tractable dual, or a nonconvex one).

At ``(V, b)`` with scores ``f`` the subdifferential of the objective holds

.. math::

    \Big(-\sum_r c_r \theta_r x_r + \partial\Omega(V),\ -\textstyle\sum_{r \in t} c_r
    \theta_r\Big), \qquad \theta_r \in -\partial_f \ell(y_r, f_r),

with ``theta_r = -l'(f_r)`` fixed on the rows where the loss is smooth and free in its interval
``[tau - 1, tau]`` on the pinball rows at the kink ``r = 0`` (``datafit.kinks``). Any choice of
the free ``theta_r`` gives an upper bound of the distance of 0 to that set (the Clarke
subdifferential for a nonconvex penalty): the residual of :func:`kink_certificate` is that
distance at the dual point ``hint`` on the free rows (clipped into their interval), relative to
``||G0||`` as every KKT residual. It never reads a smoothing: a point of a smoothed problem
has its pinball rows off the kink, each with its fixed subgradient ``tau`` or ``tau - 1``.

A row counts as on the kink when ``|y_r - f_r| <= width``: the point is then stationary (to the
residual) for targets moved by at most ``width`` on those rows, which changes the objective by
at most ``width sum_r c_r max(tau, 1 - tau)``; the solvers take ``width`` so that this is a
small fraction of ``tol`` times the objective at W = 0.
"""

from __future__ import annotations

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates import Certificate, Reference, kkt_of_gradient
from .saddle import dual_box

__all__ = ["kink_certificate", "kink_width"]


def kink_width(data: TaskBlocks, tol: float, ref: Reference) -> float:
    """How near to a kink a row counts as on it: ``0.1 tol P0 / sum_r c_r`` (the objective
    moves by at most a tenth of ``tol P0`` when those rows' targets move onto the fit)."""
    total = float(np.sum(data.c))
    return max(0.1 * tol * ref.P0 / max(total, np.finfo(float).tiny), 0.0)


def kink_certificate(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                     V: np.ndarray, b: np.ndarray, hint: np.ndarray | None,
                     fit_intercept: bool, ref: Reference, width: float,
                     lipschitz: float) -> Certificate:
    """The KKT residual of ``datafit + alpha penalty`` at ``(V, b)`` on the loss itself, the
    dual point ``hint`` on the rows within ``width`` of a kink (see the module's text);
    ``lipschitz`` is the step constant of the proximal-gradient residual for the penalties
    without a subdifferential distance."""
    y, c = data.y, data.c
    W = penalty.compose(V)
    f = data.linear(W, b)
    theta = datafit.theta(y, f)
    free = datafit.kinks(y, f, width)
    if hint is not None and np.any(free):
        lo, hi = dual_box(datafit, y)
        theta[free] = np.clip(hint[free], lo[free], hi[free])
    u = c * theta
    G = data.adjoint(u)
    value = kkt_of_gradient(penalty, alpha, V, G,
                            np.asarray(data.task_sums(u)) if fit_intercept else None,
                            float(np.linalg.norm(ref.G0)), lambda: lipschitz)
    primal = datafit.value(y, f, c) + penalty.value(V, alpha)
    return Certificate("kkt_residual", value, primal, None, ref.P0)
