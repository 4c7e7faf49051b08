r"""Intercepts of any smooth loss, all tasks at once: a safeguarded Newton iteration on each
task's shift of its scores, vectorized over tasks (the losses with a compiled kernel,
``datafit.code``, use :func:`~regmtl.solvers._kernels.update_intercepts` instead).

For task t the shift ``d_t`` minimizes ``sum_{r in t} c_r l(y_r, f_r + d_t)``: the derivative
``g_t = sum c theta(f + d_t)`` (minus the loss's) and curvature ``h_t = sum c l''(f + d_t)``
give the Newton step ``g_t / h_t``, kept inside the bracket of the minimizer that the
derivative's signs have shown (its midpoint otherwise; towards a side not bracketed yet, at
most doubling the shift), until ``|g_t|`` is below ``rtol`` times the task's weight.

A piecewise-linear loss (``datafit.piecewise_linear``: the pinball loss) has no curvature to
step with; its minimizing shift is exact instead: the ``c``-weighted ``tau``-quantile of the
task's residuals ``y - f`` (:func:`pinball_intercepts`, one sort for all tasks).
"""

from __future__ import annotations

import numpy as np

from ..datafits import Datafit

__all__ = ["newton_intercepts", "pinball_intercepts"]


def newton_intercepts(data, datafit: Datafit, S: np.ndarray, b: np.ndarray,
                      max_newton: int, rtol: float) -> None:
    """Minimize the data term over each task's intercept, in place on the scores ``S`` (the
    state of a loss without compiled kernel) and ``b``."""
    if datafit.coupled:  # a row's scores coupled (multinomial): the loss's own Newton
        datafit.fit_intercepts(data.y, data.c, S, b, max_newton, rtol)
        return
    if datafit.piecewise_linear:  # no curvature: the minimizer in closed form
        pinball_intercepts(data, datafit.quantile, S, b)
        return
    T = data.n_tasks
    y, c = data.y, data.c
    tot = np.asarray(data.task_sums(c), dtype=np.float64)
    delta = np.zeros(T)
    lo, hi = np.full(T, -np.inf), np.full(T, np.inf)
    done = np.zeros(T, dtype=bool)
    for _ in range(max_newton):
        f = S + data.per_row(delta)
        g = np.asarray(data.task_sums(c * datafit.theta(y, f)))
        h = np.asarray(data.task_sums(c * datafit.hessian(y, f)))
        lo = np.where(g > 0, delta, lo)
        hi = np.where(g <= 0, delta, hi)
        close = np.abs(g) <= rtol * tot
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(h > 0, g / np.where(h > 0, h, 1.0), np.nan)
        # converged: a last, tiny Newton step (exact to rounding there)
        last = close & ~done & (np.abs(step) <= 1e-6)
        delta = np.where(last, delta + np.nan_to_num(step), delta)
        done |= close
        if done.all():
            break
        with np.errstate(invalid="ignore", over="ignore"):
            nxt = delta + step
            span = np.maximum(1.0, np.abs(delta))
            # towards a side not bracketed yet: the Newton step, at most doubling the shift
            up, down = (g > 0) & np.isinf(hi), (g <= 0) & np.isinf(lo)
            nxt = np.where(up & ~((nxt > delta) & (nxt <= delta + span)), delta + span, nxt)
            nxt = np.where(down & ~((nxt < delta) & (nxt >= delta - span)), delta - span, nxt)
            # inside a bracket: the Newton step where it stays inside, else the midpoint
            closed = np.isfinite(lo) & np.isfinite(hi)
            nxt = np.where(closed & ~((lo < nxt) & (nxt < hi)), 0.5 * (lo + hi), nxt)
        stuck = nxt == delta  # the bracket is down to one float
        done |= stuck
        delta = np.where(done, delta, nxt)
    S += data.per_row(delta)
    b += delta



def pinball_intercepts(data, tau: float, S: np.ndarray, b: np.ndarray) -> None:
    r"""Minimize ``sum_{r in t} c_r rho_tau(y_r - f_r - d_t)`` over each task's shift ``d_t``,
    in place on the scores ``S`` and ``b``: ``d_t`` is the smallest residual ``y_r - f_r`` of
    the task at which the weights of the residuals up to it reach ``tau`` of the task's total
    (the subgradient ``(1 - tau) C_{<d} - tau C_{>d}`` changes sign there)."""
    T = data.n_tasks
    resid = data.y - S
    order = np.lexsort((resid, data.task_of))
    cum = np.cumsum(data.c[order])
    start, end = data.indptr[:-1], data.indptr[1:]
    before = np.concatenate([[0.0], cum])[start]
    total = np.concatenate([[0.0], cum])[end] - before
    k = np.searchsorted(cum, before + tau * total, side="left")
    k = np.clip(k, start, np.maximum(end - 1, start))
    has = (end > start) & (total > 0)
    delta = np.where(has, resid[order][np.minimum(k, len(order) - 1)] if len(order) else 0.0,
                     0.0) if T else np.zeros(0)
    S += data.per_row(delta)
    b += delta
