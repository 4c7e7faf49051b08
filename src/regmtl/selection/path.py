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

from ..classes import class_penalty
from ..datafits import Datafit
from ..feature_terms import feature_terms
from ..penalties import Penalty, make_penalty
from ..problem import check_loss_targets, is_built, make_data, make_datafit
from ..progress import check_progress, progress_bar
from ..reductions import Point, Problem, chain_of
from ..solvers import reference
from ..solvers.certificates.certify import Reference
from ..solvers.parts.moments import feature_moments
from ..solvers.solve import solve_live
from ..taskdata import TaskData

__all__ = ["RegularizationPath", "regularization_path", "alpha_grid", "alpha_scale",
           "path_alphas"]


@dataclass
class RegularizationPath:
    """Solutions along a decreasing grid of ``alpha``, as :func:`~regmtl.regularization_path`
    returns them.

    Entry k of every array belongs to ``alphas[k]``. Users get one from
    :func:`~regmtl.regularization_path` rather than building it.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        The grid, decreasing.
    coefs : ndarray of shape (n_alphas, T, p)
        ``coefs[k]`` is W at ``alphas[k]`` as ``coef_`` stores it (row t = task t).
    intercepts : ndarray of shape (n_alphas, T)
        The intercepts (zeros with ``fit_intercept=False``).
    certificates : ndarray of shape (n_alphas,)
        The duality gap relative to the objective at W = 0, or the relative KKT residual.
    certificate_kind : {"duality_gap", "kkt_residual"}
        Which of the two ``certificates`` holds.
    n_iter : ndarray of int of shape (n_alphas,)
        Epochs or iterations of every fit.
    converged : ndarray of bool of shape (n_alphas,)
        Whether every fit met ``tol``.
    tasks : ndarray of shape (T,)
        Task labels, as an estimator's ``tasks_``.
    structure : list of dict, optional
        The penalty's fitted structure at every alpha (e.g. ``P_`` and ``Q_`` for
        ``Dirty``, ``rank_`` for ``Trace``; empty dicts for most penalties).

    Attributes
    ----------
    n_active : ndarray of int of shape (n_alphas,)
        Number of features with a nonzero coefficient in some task, per alpha.

    See Also
    --------
    regmtl.plotting.plot_path : Draw the coefficients along the path.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> path = rm.regularization_path(X, Y, penalty="l21", alphas=5)
    >>> path.coefs.shape, path.intercepts.shape
    ((5, 3, 8), (5, 3))
    >>> path.n_active.tolist(), path.certificate_kind, bool(path.converged.all())
    ([0, 7, 8, 8, 8], 'duality_gap', True)
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
        """Number of features with a nonzero coefficient in some task, per alpha."""
        return np.count_nonzero(np.any(self.coefs != 0.0, axis=1), axis=1)


def alpha_grid(alpha_max: float, n_alphas: int = 30, eps: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``alpha_max`` down to ``eps * alpha_max``.

    Parameters
    ----------
    alpha_max : float
        The largest value, > 0 and finite (:func:`~regmtl.alpha_max` where the penalty has
        one).
    n_alphas : int, default=30
        Number of values, >= 1.
    eps : float, default=1e-3
        Ratio of the smallest to the largest value, in (0, 1).

    Returns
    -------
    ndarray of shape (n_alphas,)
        The grid, decreasing, equally spaced on a log scale.

    Raises
    ------
    ValueError
        If an argument is out of range.

    See Also
    --------
    regmtl.selection.path_alphas : The grid of a path, from the data.

    Examples
    --------
    >>> from regmtl.selection import alpha_grid
    >>> alpha_grid(1.0, 4, eps=1e-3).tolist()
    [1.0, 0.1, 0.01, 0.001]
    """
    if not np.isfinite(alpha_max) or alpha_max <= 0:
        raise ValueError(f"alpha_max={alpha_max!r} must be positive and finite.")
    if n_alphas < 1:
        raise ValueError(f"n_alphas={n_alphas!r} must be at least 1.")
    if not 0 < eps < 1:
        raise ValueError(f"eps={eps!r} must be in (0, 1).")
    return alpha_max * np.logspace(0.0, np.log10(eps), n_alphas)


def alpha_scale(data: TaskData, datafit: Datafit, fit_intercept: bool = True) -> float:
    r"""Data-driven scale of ``alpha`` for penalties with no ``alpha_max``.

    .. math::

        s = \frac{\kappa}{p T} \sum_{j,t} L_{jt}, \qquad
        L_{jt} = \sum_{r \in t} c_r (x_{rj} - \bar x_{jt})^2,

    the mean curvature of the data term in one coefficient: ``L_jt`` (features centered per
    task when intercepts are fitted) times the loss curvature ``kappa`` (1 squared, 1/4
    logistic; at the intercept-only fit for the losses without a bound,
    ``regmtl.selection.path.loss_curvature``). A quadratic penalty ``alpha/2 w^T K w`` with
    ``alpha = s`` weighs as much as the data in an average direction, so ``alpha >> s``
    enforces the penalty's structure (pooling for ``"mean"``) and ``alpha << s`` leaves the
    tasks nearly independent.

    Parameters
    ----------
    data : TaskData
        The problem (:func:`~regmtl.as_task_data`).
    datafit : Datafit
        The loss (any registered loss, or one per task).
    fit_intercept : bool, default=True
        Whether the features are centered per task.

    Returns
    -------
    float
        The scale ``s``, > 0.

    Raises
    ------
    ValueError
        If no feature varies within any task.

    See Also
    --------
    regmtl.selection.path_alphas : Uses it for the grids of smooth penalties.

    Examples
    --------
    With equal task weights and standardized features, ``s`` is about 1:

    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection import alpha_scale
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> s = alpha_scale(rm.as_task_data(X, Y), rm.Quadratic())
    >>> Xc = X - X.mean(axis=0)
    >>> bool(np.isclose(s, np.mean(np.sum(Xc**2, axis=0) / 50)))
    True
    """
    _, L = feature_moments(data, data.c, fit_intercept)
    s = float(loss_curvature(data, datafit, fit_intercept) * np.mean(L))
    if not np.isfinite(s) or s <= 0:
        raise ValueError("X has no variation within any task (every centered column is zero): "
                         "no alpha grid can be derived; pass alphas=[...].")
    return s


def loss_curvature(data: TaskData, datafit: Datafit, fit_intercept: bool = True) -> float:
    r"""The loss's curvature :math:`\kappa` in :func:`alpha_scale`: its declared bound
    (``curvature``: 1 squared and Huber, 1/4 logistic) where it has one; otherwise (the
    log-link losses, one loss per task) the mean of ``l''`` at the intercept-only fit,
    :math:`\sum_r c_r \ell''(y_r, f_{0r}) / \sum_r c_r` (the mean count for the Poisson
    loss, 1 for the Gamma loss); 1 where that is not positive (the pinball loss, piecewise
    linear).

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss.
    fit_intercept : bool, default=True
        Whether the intercepts are fitted at the reference point.

    Returns
    -------
    float
        :math:`\kappa > 0`.
    """
    if np.isfinite(datafit.curvature):
        return float(datafit.curvature)
    f0 = reference(data, datafit, fit_intercept).f0
    bound = datafit.bind(data)
    h = data.c * bound.hessian(data.y, f0)
    total = float(np.sum(data.c))
    kappa = float(np.sum(h)) / total if total > 0 else 0.0
    return kappa if np.isfinite(kappa) and kappa > 0 else 1.0


def path_alphas(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    ref: Reference,
    alphas: int | Any = 30,
    eps: float | None = None,
    fit_intercept: bool = True,
) -> np.ndarray:
    """The decreasing grid of ``alpha`` of a path.

    An integer ``alphas`` gives a geometric grid of that size: from ``alpha_max`` down to
    ``eps * alpha_max`` (``eps`` = 1e-3 by default) where the penalty has one; otherwise from
    ``100 s`` down to ``eps * 100 s`` (``eps`` = 1e-6 by default) with ``s`` the scale of
    :func:`~regmtl.selection.alpha_scale`. An array is used as given, sorted decreasing.

    Parameters
    ----------
    data : TaskData
        The problem (:func:`~regmtl.as_task_data`).
    datafit : Datafit
        The loss (any registered loss, or one per task).
    penalty : Penalty
        The penalty object.
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`), whose ``G0`` gives
        ``alpha_max``.
    alphas : int or array-like, default=30
        Number of values, or the values (finite, >= 0).
    eps : float, optional
        Ratio of the smallest to the largest value of an integer grid.
    fit_intercept : bool, default=True
        Whether the intercepts are fitted (for the scale of smooth penalties).

    Returns
    -------
    ndarray of shape (n_alphas,)
        The grid, decreasing.

    Raises
    ------
    ValueError
        If ``alphas`` is neither a positive integer nor a non-empty 1-D list of finite
        values >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection import path_alphas
    >>> from regmtl.solvers import reference
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data, loss = rm.as_task_data(X, Y), rm.Quadratic()
    >>> ref = reference(data, loss, True)
    >>> grid = path_alphas(data, loss, rm.L21(), ref, 3)
    >>> bool(np.isclose(grid[0], rm.alpha_max(X, Y, penalty="l21"))), len(grid)
    (True, 3)
    >>> path_alphas(data, loss, rm.L21(), ref, [0.1, 1.0, 0.5]).tolist()
    [1.0, 0.5, 0.1]
    """
    grid = check_alphas(alphas)
    if grid is None:
        try:
            amax = class_penalty(penalty, data).alpha_max(ref.G0)
        except ValueError:  # no finite alpha gives W = 0: a grid around the data's scale
            amax = None
        if amax is not None and amax > 0:
            return alpha_grid(amax, int(alphas), 1e-3 if eps is None else eps)
        top = 100.0 * alpha_scale(data, datafit, fit_intercept)
        return alpha_grid(top, int(alphas), 1e-6 if eps is None else eps)
    return grid


def check_alphas(alphas: Any) -> np.ndarray | None:
    """None for an integer grid size, else the given values sorted decreasing; refuses
    anything else (a bool, text or booleans among the values, a 2-D array, an empty list,
    non-finite or negative values)."""
    if isinstance(alphas, (bool, np.bool_)):
        raise ValueError(f"alphas={alphas!r}: give a number of alphas or a list of them.")
    if isinstance(alphas, (int, np.integer)):
        return None
    try:  # text among the values is no number: ["1"] is refused, not read as 1.0
        raw = np.asarray(alphas)
        kind = raw.dtype.kind if raw.ndim else "O"
    except (TypeError, ValueError):
        kind = "O"
    if kind in "USb":
        raise ValueError(f"alphas={alphas!r} holds {'booleans' if kind == 'b' else 'text'}: "
                         "give numbers (finite, >= 0), or an integer grid size.")
    try:
        values = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.ndim > 1:
        raise ValueError(f"alphas has shape {values.shape}: give a 1-D list of values (or an "
                         "integer grid size); a 2-D grid is not flattened.")
    grid = np.sort(values.ravel())[::-1]
    if grid.size == 0 or not np.all(np.isfinite(grid)) or grid.min() < 0:
        raise ValueError(f"alphas={alphas!r} must be an integer (the grid size) or a "
                         "non-empty list of finite values >= 0.")
    return grid


def regularization_path(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    penalty: str | Penalty = "l21",
    loss: Any = "squared",
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
    offset: Any = None,
    progress: bool | str = "auto",
    penalty_factor: Any = None,
    exclude: Any = None,
    lower_bounds: Any = None,
    upper_bounds: Any = None,
    rescale_factors: bool = True,
    standardize: bool | str = False,
    factor_convention: str = "unit",
) -> RegularizationPath:
    """Warm-started solutions of the multi-task objective along a grid of ``alpha``.

    Solves the problem of :class:`~regmtl.MultiTaskRegressor` (or, with
    ``loss="logistic"``, :class:`~regmtl.MultiTaskClassifier`) for every ``alpha`` of a
    decreasing grid, each fit starting from the previous solution. With block coordinate
    descent the gap-safe rules then discard most features at the first check of every fit,
    and on a shared design the Gram statistics are computed once for the whole path, so a
    path costs little more than its last fits.

    Parameters
    ----------
    X : array-like, sparse matrix or DataFrame, list or dict of them, or TaskData
        The design(s), in any input form of the estimators.
    y : array-like, or list or dict of them, optional
        Targets, in the form matching ``X`` (not needed for a TaskData).
    task : array-like of shape (n_samples,) or str, optional
        Task id of every row (long form), or the name of a column of a DataFrame ``X``.
    penalty : str or Penalty, default="l21"
        The penalty's name or object.
    loss : str, Datafit or list of them, default="squared"
        The data term, as the estimators' ``loss=``: ``"squared"``, ``"logistic"``,
        ``"poisson"``, ``"gamma"``, ``"huber"``, ``"quantile"``, a loss object
        (``regmtl.Huber(2.0)``, ``regmtl.Quantile(0.9)``), or a list with one per task.
        ``"multinomial"`` takes labels (any number of classes per task) and solves on the
        classes' layout (:func:`regmtl.classes.expand_classes`): the path's "tasks" are then
        the ``(task, class)`` pairs, ``coefs`` of shape (n_alphas, sum_t K_t, p), as the
        ``coef_`` of a multinomial :class:`~regmtl.MultiTaskClassifier`.
    alphas : int or array-like, default=30
        An integer gives a geometric grid of that size (see
        :func:`~regmtl.selection.path_alphas`: from :func:`~regmtl.alpha_max` down to
        ``eps * alpha_max``, or around a data-driven scale for penalties without one); an
        array is used as given, sorted decreasing (the order warm starts want).
    eps : float, optional
        Ratio of the smallest to the largest alpha of an integer grid (default 1e-3, or
        1e-6 for a scale grid).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    sample_weight : array-like, or list of them, optional
        One weight per row.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        The task weights of the objective.
    solver : {"auto", "bcd", "fista", "cg", "admm"}, default="auto"
        As for the estimators.
    tol : float, default=1e-4
        Relative certificate every fit must reach.
    max_iter : int, default=1000
        Epochs or iterations per fit.
    solver_options : dict, optional
        Options of block coordinate descent, as for the estimators.
    verbose : int, default=0
        Print the solver's progress when > 0.
    offset : array-like, or list of them, optional
        A fixed term of each row's linear predictor (the log exposure of a count), given as
        ``sample_weight`` is; the losses that take one are listed by
        ``MultiTaskRegressor.fit``.
    progress : {"auto", True, False}, default="auto"
        A progress bar on stderr over the alphas, with the time left: ``True`` from the
        start, ``False`` never, ``"auto"`` when stderr is a terminal and the path has lasted
        2 s (a shorter one prints nothing; ``regmtl.progress``). It never changes the
        result.
    penalty_factor, exclude, lower_bounds, upper_bounds, rescale_factors, standardize
        The per-feature terms of the estimators (``regmtl.feature_terms``); the grid
        then starts at :func:`~regmtl.alpha_max` under the same terms, and ``coefs`` are in
        the input's units.
    factor_convention : {"unit", "glmnet"}, default="unit"
        How a factor enters a ridge part, as for the estimators.

    Returns
    -------
    RegularizationPath
        ``alphas``, ``coefs`` (n_alphas, T, p), ``intercepts``, ``certificates``,
        ``n_iter``, ``converged``, and the penalty's ``structure`` at every alpha.

    Warns
    -----
    ConvergenceWarning
        For every fit that stops at ``max_iter`` short of ``tol``.

    See Also
    --------
    regmtl.MultiTaskRegressorCV : Chooses ``alpha`` on such paths by cross-validation.
    regmtl.plotting.plot_path : Draw a path.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> path = rm.regularization_path(X, Y, penalty="l21", alphas=5)
    >>> path.coefs.shape, int(path.n_active[0])
    ((5, 3, 8), 0)
    >>> bool(np.isclose(path.alphas[0], rm.alpha_max(X, Y, penalty="l21")))
    True
    """
    check_progress(progress)
    datafit = make_datafit(loss)
    pen = make_penalty(penalty)
    data = make_data(X, y, task, loss=loss, sample_weight=sample_weight,
                     task_weight=task_weight, penalty=pen)
    p, T = data.n_features, data.n_tasks
    pen = class_penalty(pen, data)
    pen.check(p, T)
    if not is_built(X):  # (a problem built comes checked)
        check_loss_targets(data, datafit.bind(data))
    terms = feature_terms(penalty_factor, exclude, lower_bounds, upper_bounds, rescale_factors,
                          standardize, p, T, getattr(data, "feature_names", None), pen,
                          factor_convention)
    chain = chain_of(data, datafit, pen, fit_intercept, offset=offset, terms=terms)
    bottom = chain.problem
    ref = chain.reference()
    grid = path_alphas(bottom.data, datafit, bottom.penalty, ref, alphas, eps,
                       bottom.fit_intercept)
    coefs = np.zeros((len(grid), T, p))
    intercepts = np.zeros((len(grid), T))
    structure: list[dict] = []

    def read(k, alpha, res):
        # point k in the input's units; the next start stays on the solver's live features
        W, V = res.W, res.V
        res.W = res.V = None  # (not held while the point is read back)
        point = chain.invert(Point(W, res.b if bottom.fit_intercept else np.zeros(T)))
        coefs[k], intercepts[k] = point.W.T, point.b
        point = None
        structure.append(chain.structure(V, alpha))
        return W, V

    kwargs = dict(solver=solver, tol=tol, max_iter=max_iter, verbose=verbose,
                  options=solver_options)
    ref = chain.on_live(ref)  # (the whole reference let go: its G0 is p x T)
    walked = walk_path(bottom, grid, ref, kwargs, read, progress)
    return RegularizationPath(grid, coefs, intercepts, *walked, data.tasks, structure)


def walk_path(problem: Problem, grid: np.ndarray, ref: Reference, kwargs: dict, read: Any,
              progress: bool | str = False) -> tuple:
    """The one loop of a path: each alpha of ``grid`` solved on the live features of the
    solver's ``problem`` (``ref`` restricted to them, ``Chain.on_live``) from the previous
    point, its ``W``, ``b``, ``V`` and dual point ``theta``. ``read(k, alpha, res)`` writes
    point k in the input's units and returns the next start ``(W, V)`` on the live
    features. Returns ``(certificates, kind, n_iter, converged)``."""
    certs, n_iter = np.zeros(len(grid)), np.zeros(len(grid), dtype=np.int64)
    converged = np.zeros(len(grid), dtype=bool)
    kind = ""
    W = b = V = theta = None
    with progress_bar(len(grid), progress, "regularization path", unit="alpha") as bar:
        for k, alpha in enumerate(grid):
            res = solve_live(problem.data, problem.datafit, problem.penalty, float(alpha),
                             W0=W, b0=b, V0=V, fit_intercept=problem.fit_intercept, ref=ref,
                             theta0=theta, **kwargs)
            W = V = None  # (the last start, not held beside this fit's result)
            certs[k], kind = res.certificate.relative, res.certificate.kind
            n_iter[k], converged[k] = res.n_iter, res.converged
            b, theta = res.b, res.theta
            W, V = read(k, float(alpha), res)
            res = None
            bar.update(1)
    return certs, kind, n_iter, converged


def path_grid(data: TaskData, datafit: Datafit, pen: Penalty, alphas: Any,
              eps: float | None, fit_intercept: bool, terms: dict | None = None,
              feature_names: Any = None) -> np.ndarray:
    """:func:`path_alphas` of the problem's chain (``regmtl.reductions``; with per-feature
    ``terms``, the estimators' ``penalty_factor`` ... ``standardize`` by name, on the reduced
    problem), from its ``alpha_max``."""
    checked = None if not terms else feature_terms(
        terms["penalty_factor"], terms["exclude"], terms["lower_bounds"],
        terms["upper_bounds"], terms["rescale_factors"], terms["standardize"],
        data.n_features, data.n_tasks, feature_names, pen,
        terms.get("factor_convention", "unit"))
    chain = chain_of(data, datafit, pen, fit_intercept, terms=checked, live=False)
    bottom = chain.problem
    return path_alphas(bottom.data, datafit, bottom.penalty, chain.reference(), alphas, eps,
                       bottom.fit_intercept)
