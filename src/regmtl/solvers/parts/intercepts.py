r"""Intercepts of any smooth loss, all tasks at once: a safeguarded Newton iteration on each
task's shift of its scores, vectorized over tasks (the losses with a compiled kernel,
``datafit.code``, use :func:`~regmtl.solvers.parts._kernels.update_intercepts` instead).

For task t the shift ``d_t`` minimizes ``sum_{r in t} c_r l(y_r, f_r + d_t)``: the derivative
``g_t = sum c theta(f + d_t)`` (minus the loss's) and curvature ``h_t = sum c l''(f + d_t)``
give the Newton step ``g_t / h_t``, kept inside the bracket of the minimizer that the
derivative's signs have shown (its midpoint otherwise; towards a side not bracketed yet, at
most doubling the shift), until ``|g_t|`` is below ``rtol`` times the task's weight. A loss
whose shift has a closed form (:meth:`~regmtl.datafits.Datafit.shift_terms`: the log-link
losses) starts there, and Newton's method only confirms it.

The pinball loss has no curvature to step with (its search bisects); its minimizing shift is
also had exactly, the ``c``-weighted ``tau``-quantile of the task's residuals ``y - f``
(:func:`pinball_intercepts`, one sort for all tasks), which the primal-dual solver's
certificates use.
"""

from __future__ import annotations

import numpy as np

from ...datafits import Datafit

__all__ = ["newton_intercepts", "pinball_intercepts"]


def newton_intercepts(data, datafit: Datafit, S: np.ndarray, b: np.ndarray,
                      max_newton: int, rtol: float) -> None:
    """Minimize the data term over each task's intercept, in place on the scores ``S`` (the
    state of a loss without compiled kernel) and ``b``."""
    if datafit.coupled:  # a row's scores coupled (multinomial): the loss's own Newton
        datafit.fit_intercepts(data.y, data.c, S, b, max_newton, rtol)
        return
    T = data.n_tasks
    y, c = data.y, data.c
    tot = np.asarray(data.task_sums(c), dtype=np.float64)
    delta = _closed_form(data, datafit, S)
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



def _log_task_sums(data, c: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``log sum_{r in t} c_r e^{A_r}`` per task, without overflow (-inf for a task whose
    terms all vanish)."""
    live = (c > 0) & np.isfinite(A)
    top = np.where(live, A, -np.inf)
    m = np.full(data.n_tasks, -np.inf)
    full = np.diff(data.indptr) > 0
    m[full] = np.maximum.reduceat(top, data.indptr[:-1][full])
    m_row = data.per_row(np.where(np.isfinite(m), m, 0.0))
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(data.task_sums(np.where(live, c * np.exp(top - m_row), 0.0)))) + \
            np.where(np.isfinite(m), m, 0.0)


def _closed_form(data, datafit: Datafit, S: np.ndarray) -> np.ndarray:
    """The shifts of :meth:`~regmtl.datafits.Datafit.shift_terms` where they are finite, 0
    elsewhere (a task of zero counts: its shift is sought by Newton's method)."""
    terms = datafit.shift_terms(data.y, S)
    if terms is None:
        return np.zeros(data.n_tasks)
    with np.errstate(invalid="ignore"):
        d = _log_task_sums(data, data.c, terms[0]) - _log_task_sums(data, data.c, terms[1])
    return np.where(np.isfinite(d), d, 0.0)


def pinball_intercepts(data, tau: float, S: np.ndarray, b: np.ndarray) -> None:
    r"""Minimize ``sum_{r in t} c_r rho_tau(y_r - f_r - d_t)`` over each task's shift ``d_t``,
    in place on the scores ``S`` and ``b``: with the task's residuals ``y - f`` sorted, ``d_t``
    is the first at which their weights reach ``tau`` of the task's total (the subgradient
    ``(1 - tau) C_{<d} - tau C_{>d}`` changes sign there). Where the weights up to it equal
    ``tau`` of the total (to ``1e-13``), every shift up to the next residual is a minimizer:
    the midpoint is taken, where no residual is zero (each row's dual value then has the sign
    of its residual, as at any point inside)."""
    if data.n_tasks == 0 or data.n_obs == 0:
        return
    resid = data.y - S
    order = np.lexsort((resid, data.task_of))
    sorted_r = resid[order]
    cum = np.concatenate([[0.0], np.cumsum(data.c[order])])  # cum[i]: weight of the first i
    start, end = data.indptr[:-1], data.indptr[1:]
    total = cum[end] - cum[start]
    target = cum[start] + tau * total
    last = np.maximum(end - 1, start)
    # k: the first row of the task at which the weights up to it (inclusive) reach the target
    k = np.clip(np.searchsorted(cum[1:], target, side="left"), start, last)
    k = np.minimum(k, data.n_obs - 1)
    delta = sorted_r[k]
    flat = (np.abs(cum[k + 1] - target) <= 1e-13 * total) & (k < last)
    nxt = sorted_r[np.minimum(k + 1, data.n_obs - 1)]
    delta = np.where(flat, 0.5 * (delta + nxt), delta)
    delta = np.where((end > start) & (total > 0), delta, 0.0)
    S += data.per_row(delta)
    b += delta
