r"""One ``alpha`` per task, for the penalties separable over tasks (L1, L2, elastic net).

With ``alpha`` of shape (T,) the objective is

.. math::

    \sum_t \Big[\omega_t \frac{1}{n_t} \sum_i \ell(y_{ti}, x_{ti} \cdot w_t + b_t)
    + \alpha_t \big(\rho \|w_t\|_1 + \tfrac{1 - \rho}{2} \|w_t\|_2^2\big)\Big],

T problems that share nothing (scikit-learn's ``Ridge(alpha=array)``, one lasso per task).
Multiplying task t's problem by :math:`\bar\alpha / \alpha_t` with
:math:`\bar\alpha = \max_t \alpha_t` leaves its minimizer unchanged, so it is solved as the
one-alpha problem at :math:`\bar\alpha` with task weights :math:`\omega_t \bar\alpha /
\alpha_t` (the same solvers, working sets and screening). The certificate is computed on the
problem asked for, with one dual scaling per task, and the solve resumes (warm, at a tighter
``tol``, at most :data:`ROUNDS` solves) until it meets ``tol``:

.. math::

    D(\theta) = -\sum_r c_r \ell^*(-s_{t(r)} \theta_r)
    - \sum_{t, j} \frac{(|G_{jt}| - \alpha_t \rho)_+^2}{2 \alpha_t (1 - \rho)},
    \qquad s_t = \min\Big(1, \frac{\alpha_t}{\max_j |G_{jt}|}\Big) \text{ when } \rho = 1,

with ``G = X^T (c theta)``; for ``positive=True`` penalties the positive part of G replaces
its absolute value. With the ridge weighted per feature (``factor_convention="glmnet"``:
:math:`r_{jt} w_{jt}^2` in the ridge) the conjugate's terms are divided by :math:`r_{jt}`.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .datafits import Datafit
from .penalties import Penalty
from .penalties.factored import PartlyPenalized
from .solvers.certificates.certify import Certificate, dual_point, reference
from .solvers.result import SolverResult
from .taskdata import TaskData

__all__ = ["resolve_alpha", "separable_over_tasks", "solve_task_alphas", "task_certificate",
           "ROUNDS"]

#: Solves at most, each with ``tol`` tightened by what the last one's certificate missed.
ROUNDS = 4


def separable_over_tasks(penalty: Penalty) -> bool:
    """Whether the penalty is a sum of one term per task (L1, L2, elastic net; L2,1 only
    with ``l1_ratio=0``, a ridge), so that one alpha per task is meaningful: its
    ``separates_over_tasks`` declaration."""
    return bool(penalty.separates_over_tasks)


def resolve_alpha(alpha: Any, penalty: Penalty, n_tasks: int) -> tuple[float, np.ndarray | None]:
    """``(alpha_bar, alphas)``: a number gives ``(alpha, None)``; an array of shape (T,)
    gives its largest value and the array (None when all values are equal).

    Raises
    ------
    ValueError
        For an array of another shape, non-finite or negative values, a penalty that couples
        the tasks (whether the values are equal or not: such a penalty takes one alpha for
        all), or zero next to positive values.
    """
    if np.ndim(alpha) == 0:
        return float(alpha), None
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number or an array of one value per task; got "
                         f"{alpha!r}.") from None
    if a.ndim != 1 or a.shape[0] != n_tasks:
        raise ValueError(f"alpha has shape {a.shape}; one alpha per task needs shape "
                         f"({n_tasks},), one value per task in the order of tasks_.")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        bad = int(np.flatnonzero(~np.isfinite(a) | (a < 0))[0])
        raise ValueError(f"alpha[{bad}] = {a[bad]:g}: every alpha must be finite and >= 0.")
    if not separable_over_tasks(penalty):  # equal values too: the form itself is refused
        same = (f" (the {a.size} values given are equal: alpha={a[0]:g})"
                if a.size and np.all(a == a[0]) else "")
        raise ValueError(
            f"alpha: one value per task needs a penalty separable over tasks whose alpha "
            f"scales each task's term (L1, L2, ElasticNet); {penalty!r} is not one, so give "
            f"one alpha for all{same}.")
    if np.all(a == a[0]):
        return float(a[0]), None
    if np.any(a == 0):
        t = int(np.flatnonzero(a == 0)[0])
        raise ValueError(
            f"alpha[{t}] = 0 next to positive values: a task without penalty cannot share "
            "the solve of the others. Give it a small positive alpha, or fit it alone.")
    return float(a.max()), a


def _penalty_terms(penalty: Penalty, shape: tuple[int, int]
                   ) -> tuple[float, bool, np.ndarray | float]:
    """``(rho, positive, r)``: the ratio, the sign constraint and the ridge's weights per
    entry (p x T; 1 where the penalty carries none, the ridge weighted per feature of
    ``factor_convention="glmnet"``)."""
    r = 1.0
    if isinstance(penalty, PartlyPenalized):
        r = penalty._weights(shape)
        r, penalty = (1.0 if r is None else r), penalty.base
    return penalty.rho, bool(getattr(penalty, "positive", False)), r


def task_certificate(data: TaskData, datafit: Datafit, penalty: Penalty, alphas: np.ndarray,
                     W: np.ndarray, b: np.ndarray, fit_intercept: bool,
                     scale: float, theta: np.ndarray | None = None) -> Certificate:
    """The duality gap of the problem with one ``alpha`` per task at ``(W, b)``, with one
    dual scaling per task (the formula of this module's docstring); ``scale`` is its
    objective at W = 0 with fitted intercepts. ``theta``: the solver's dual point (feasible,
    centered per task; the weighted problem's, which task by task is the same problem
    scaled), else built from the scores."""
    rho, positive, r = _penalty_terms(penalty, W.shape)
    f = data.linear(W, b if fit_intercept else None)
    if theta is None:
        theta = dual_point(data, datafit, f, fit_intercept)
    G = data.adjoint(data.c * theta)
    N = np.maximum(G, 0.0) if positive else np.abs(G)
    absW = np.abs(W)
    pen = alphas * (rho * absW.sum(axis=0) + 0.5 * (1.0 - rho) * (r * W * W).sum(axis=0))
    primal = datafit.value(data.y, f, data.c) + float(pen.sum())
    if rho == 1.0:
        m = N.max(axis=0) if N.shape[0] else np.zeros(len(alphas))
        s = np.where(m <= alphas, 1.0, alphas / np.maximum(m, alphas))
        conj = 0.0
    else:
        s = np.ones(len(alphas))
        excess = np.maximum(N - alphas * rho, 0.0)
        conj = float(((excess * excess / r).sum(axis=0) / (2.0 * alphas * (1.0 - rho))).sum())
    dual = datafit.dual_value(data.y, data.per_row(s) * theta, data.c) - conj
    return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, scale)


def solve_task_alphas(data: TaskData, datafit: Datafit, penalty: Penalty, alphas: np.ndarray,
                      *, tol: float, fit_intercept: bool = True, **kwargs: Any) -> SolverResult:
    """Solve with one alpha per task (``alphas`` of shape (T,), all > 0) and certify the
    problem asked for (see the module docstring); ``kwargs`` go to
    :func:`~regmtl.solvers.solve`."""
    if not data.rows_local:
        raise ValueError("alpha: one value per task is not available on Dask input; give one "
                         "alpha, or fit the tasks in memory.")
    abar = float(alphas.max())
    factor = abar / alphas
    weighted = dataclasses.replace(data, c=data.c * factor[data.task_of], _cache={})
    scale = reference(data, datafit, fit_intercept).P0
    # the weighted problem's gap is sum_t factor_t gap_t, the asked one's sum_t gap_t: where
    # the tasks with large factors dominate the first, tol is tightened by what is missing
    tol_w, n_iter = tol, 0
    from .solvers.solve import solve  # the solver modules load with the first solve

    for _ in range(ROUNDS):
        res = solve(weighted, datafit, penalty, abar, tol=tol_w, fit_intercept=fit_intercept,
                    **kwargs)
        n_iter += res.n_iter
        cert = task_certificate(data, datafit, penalty, alphas, res.W, res.b, fit_intercept,
                                scale, res.theta)
        if cert.converged(tol) or not res.converged:
            break
        tol_w *= 0.5 * tol / max(cert.relative, 1e-300)
        kwargs = {**kwargs, "W0": res.W, "b0": res.b}
    if res.converged and not cert.converged(tol):  # the solver met its tol: say it here
        warnings.warn(
            f"one alpha per task: after {ROUNDS} solves the relative duality gap is "
            f"{cert.relative:.3e} > tol={tol:g} (the tasks' alphas span "
            f"{alphas.min():.3g} to {abar:.3g}); loosen tol or narrow the alphas' range.",
            ConvergenceWarning, stacklevel=3)
    return dataclasses.replace(res, certificate=cert, n_iter=n_iter,
                               converged=cert.converged(tol))
