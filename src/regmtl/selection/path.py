r"""Regularization paths.

A path solves the problem for a decreasing grid of ``alpha``, each fit starting from the
previous solution (warm start). With block coordinate descent the gap-safe rules then discard
most features at the first gap check of every fit, and on a shared design the Gram statistics
are computed once for the whole path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..datafits import Datafit
from ..penalties import Penalty, make_penalty
from ..problem import make_data, make_datafit
from ..solvers import reference, solve
from ..solvers.certificates import Reference
from ..solvers.moments import feature_moments
from ..taskdata import TaskData

__all__ = ["RegularizationPath", "regularization_path", "alpha_grid", "alpha_scale",
           "path_alphas"]


@dataclass
class RegularizationPath:
    """Solutions along ``alphas`` (decreasing).

    ``coefs[k]`` is ``W`` at ``alphas[k]`` as ``coef_`` stores it (T x p), ``intercepts[k]``
    the T intercepts; ``certificates[k]`` the duality gap relative to the objective at W = 0
    (or the relative KKT residual, ``certificate_kind`` says which); ``n_iter[k]`` epochs or
    iterations; ``converged[k]`` whether the fit met ``tol``.
    """

    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    certificates: np.ndarray
    certificate_kind: str
    n_iter: np.ndarray
    converged: np.ndarray
    tasks: np.ndarray
    structure: list[dict] = field(default_factory=list, repr=False)

    @property
    def n_active(self) -> np.ndarray:
        """Features with a nonzero coefficient in some task, per alpha."""
        return np.count_nonzero(np.any(self.coefs != 0.0, axis=1), axis=1)


def alpha_grid(alpha_max: float, n_alphas: int = 30, eps: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``alpha_max`` down to ``eps * alpha_max`` (``n_alphas`` values)."""
    if not np.isfinite(alpha_max) or alpha_max <= 0:
        raise ValueError(f"alpha_max={alpha_max!r} must be positive and finite.")
    if n_alphas < 1:
        raise ValueError(f"n_alphas={n_alphas!r} must be at least 1.")
    if not 0 < eps < 1:
        raise ValueError(f"eps={eps!r} must be in (0, 1).")
    return alpha_max * np.logspace(0.0, np.log10(eps), n_alphas)


def alpha_scale(data: TaskData, datafit: Datafit, fit_intercept: bool = True) -> float:
    r"""Data-driven scale of ``alpha`` for penalties with no ``alpha_max``.

    ``s = kappa / (p T) sum_jt L_jt``: the mean curvature of the data term in one coefficient,
    ``L_jt = sum_{r in t} c_r (x_rj - xbar_jt)^2`` (centered when intercepts are fitted) times the
    loss curvature ``kappa`` (1 squared, 1/4 logistic). A quadratic penalty ``alpha/2 w^T K w``
    with ``alpha = s`` weighs as much as the data in an average direction, so ``alpha >> s``
    enforces the penalty's structure (pooling for ``"mean"``) and ``alpha << s`` leaves the
    tasks nearly independent.
    """
    _, L = feature_moments(data, data.c, fit_intercept)
    s = float(datafit.curvature * np.mean(L))
    if not np.isfinite(s) or s <= 0:
        raise ValueError("X has no variation within any task (every centered column is zero): "
                         "no alpha grid can be derived; pass alphas=[...].")
    return s


def path_alphas(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    ref: Reference,
    alphas: int | Any = 30,
    eps: float | None = None,
    fit_intercept: bool = True,
) -> np.ndarray:
    """The decreasing grid of a path.

    An integer ``alphas`` gives a geometric grid of that size: from ``alpha_max`` down to
    ``eps * alpha_max`` (``eps`` = 1e-3 by default) where the penalty has one; otherwise from
    ``100 s`` down to ``eps * 100 s`` (``eps`` = 1e-6 by default) around the scale ``s`` of
    :func:`alpha_scale`. An array is used as given, sorted decreasing.
    """
    if isinstance(alphas, (bool, np.bool_)):
        raise ValueError(f"alphas={alphas!r}: give a number of alphas or a list of them.")
    if isinstance(alphas, (int, np.integer)):
        try:
            amax = penalty.alpha_max(ref.G0)
        except ValueError:  # no finite alpha gives W = 0: a grid around the data's scale
            amax = None
        if amax is not None and amax > 0:
            return alpha_grid(amax, int(alphas), 1e-3 if eps is None else eps)
        top = 100.0 * alpha_scale(data, datafit, fit_intercept)
        return alpha_grid(top, int(alphas), 1e-6 if eps is None else eps)
    try:
        grid = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    except (TypeError, ValueError):
        grid = np.zeros(0)
        bad = True
    else:
        bad = grid.size == 0 or not np.all(np.isfinite(grid)) or grid.min() < 0
    if bad:
        raise ValueError(f"alphas={alphas!r} must be an integer (the grid size) or a "
                         "non-empty list of finite values >= 0.")
    return grid


def regularization_path(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    penalty: str | Penalty = "l21",
    loss: str = "squared",
    alphas: int | Any = 30,
    eps: float | None = None,
    fit_intercept: bool = True,
    sample_weight: Any = None,
    task_weight: Any = "equal",
    solver: str = "auto",
    tol: float = 1e-4,
    max_iter: int = 1000,
    solver_options: dict | None = None,
    verbose: int = 0,
) -> RegularizationPath:
    """Warm-started solutions of ``loss + alpha * penalty`` along a grid of ``alpha``.

    ``structure[k]`` holds the penalty's fitted structure (e.g. ``P_``/``Q_`` for Dirty).
    ``X``, ``y``, ``task`` take any input form of the estimators (or a TaskData). ``alphas``:
    an integer gives a geometric grid (see :func:`path_alphas`: from :func:`~regmtl.alpha_max`
    down to ``eps * alpha_max``, or around a data-driven scale for penalties without one); an
    array is used as given, sorted decreasing (the order warm starts want). Each fit warns if it
    stops short of ``tol``.

    Examples
    --------
    >>> import numpy as np, regmtl
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> path = regmtl.regularization_path(X, Y, penalty="l21", alphas=5)
    >>> path.coefs.shape, path.n_active[0]
    ((5, 3, 8), 0)
    """
    datafit = make_datafit(loss)
    pen = make_penalty(penalty)
    data = make_data(X, y, task, loss=loss, sample_weight=sample_weight,
                     task_weight=task_weight)
    p, T = data.n_features, data.n_tasks
    pen.check(p, T)
    ref = reference(data, datafit, fit_intercept)
    grid = path_alphas(data, datafit, pen, ref, alphas, eps, fit_intercept)
    coefs = np.zeros((len(grid), T, p))
    intercepts = np.zeros((len(grid), T))
    certs, n_iter = np.zeros(len(grid)), np.zeros(len(grid), dtype=np.int64)
    converged = np.zeros(len(grid), dtype=bool)
    structure, kind = [], ""
    W = b = V = None
    for k, alpha in enumerate(grid):
        res = solve(data, datafit, pen, float(alpha), solver=solver, W0=W, b0=b, V0=V,
                    fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, ref=ref,
                    verbose=verbose, options=solver_options)
        W, b, V = res.W, res.b, res.V
        coefs[k] = res.W.T
        intercepts[k] = res.b if fit_intercept else 0.0
        certs[k], kind = res.certificate.relative, res.certificate.kind
        n_iter[k], converged[k] = res.n_iter, res.converged
        structure.append(pen.structure(res.V, float(alpha)))
    return RegularizationPath(grid, coefs, intercepts, certs, kind, n_iter, converged,
                              data.tasks, structure)
