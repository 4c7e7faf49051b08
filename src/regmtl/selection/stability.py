r"""Complementary-pairs stability selection for the sparse linear multi-task estimators.

Each of ``B`` pairs splits every task's rows into two disjoint halves of
:math:`\lfloor n_t / 2 \rfloor` rows (per task, by class for a classifier) and fits the
estimator's problem on each half along one warm-started grid of ``alpha``
(:func:`~regmtl.regularization_path`). A unit :math:`k` (a feature for the penalties that
select rows of W; a (feature, task) entry for those separable over tasks) has the selection
probability

.. math::

    \hat\pi_k(\alpha) = \frac{1}{2B} \sum_{b=1}^{B}
        \bigl(\mathbb 1\{k \in \hat S_\alpha(A_b)\} + \mathbb 1\{k \in \hat S_\alpha(\bar A_b)\}
        \bigr),

and the stable set is :math:`\{k : \max_{\alpha \in \Lambda} \hat\pi_k(\alpha) \ge
\pi_{thr}\}` over the range :math:`\Lambda` of the grid from its top down to where the
average number selected by a half-sample fit over the range,
:math:`q = \mathbb E |\cup_{\alpha \in \Lambda} \hat S_\alpha|`, stays at most
``n_selected``.

Error bounds on the expected number of false selections :math:`V` among the :math:`p`
units (Meinshausen and Bühlmann 2010, Theorem 1, exchangeable noise units and a procedure no
worse than random guessing; Shah and Samworth 2013, eq. (8), with the selection counts'
distribution unimodal, :math:`\theta = q / p`):

.. math::

    \mathbb E V \le \frac{q^2}{(2\pi_{thr} - 1) p}, \qquad
    \mathbb E V \le C(\pi_{thr}, B) \frac{q^2}{p}, \quad
    C = \begin{cases}
        \dfrac{1}{2(2\pi_{thr} - 1 - 1/(2B))} & \pi_{thr} \in
            (\min(\tfrac12 + \theta^2, \tfrac12 + \tfrac1{2B} + \tfrac34\theta^2), \tfrac34]\\
        \dfrac{4(1 - \pi_{thr} + 1/(2B))}{1 + 1/B} & \pi_{thr} \in (\tfrac34, 1].
    \end{cases}

References
----------
Meinshausen, N. and Bühlmann, P. (2010). Stability selection. *J. R. Statist. Soc. B*, 72,
417-473.

Shah, R. D. and Samworth, R. J. (2013). Variable selection with error control: another look
at stability selection. *J. R. Statist. Soc. B*, 75, 55-80.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np
from joblib import delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._lazy import lazy_module
from .._parallel import check_n_jobs, run_jobs
from ..datafits import Datafit
from ..estimators import MultiTaskLinear
from ..feature_terms import by_position
from ..penalties import Penalty, make_penalty
from ..problem import check_loss_targets, encode_targets
from ..progress import progress_bar
from ..taskdata import TaskData, task_name
from .folds import take
from .path import check_alphas, path_grid, regularization_path

pd = lazy_module("pandas")

__all__ = ["StabilitySelection", "stability_selection", "selection_unit",
           "complementary_halves", "mb_bound", "unimodal_bound"]

#: the per-feature terms of the estimators, handed to every half-sample path as they are
_TERMS = ("penalty_factor", "exclude", "lower_bounds", "upper_bounds", "rescale_factors",
          "standardize", "factor_convention")


# ----------------------------------------------------------------------------- the bounds
def mb_bound(q: float, threshold: float, n_units: int) -> float:
    r"""Meinshausen and Bühlmann's bound on the expected number of false selections,
    :math:`q^2 / ((2\pi_{thr} - 1) p)`.

    Parameters
    ----------
    q : float
        Average number of units a half-sample fit selects over the alpha range.
    threshold : float
        :math:`\pi_{thr}`, in (0.5, 1].
    n_units : int
        :math:`p`, the number of units (features, or (feature, task) entries).

    Returns
    -------
    float
        The bound.

    Examples
    --------
    >>> from regmtl.selection.stability import mb_bound
    >>> mb_bound(5.0, 0.75, 50)
    1.0
    """
    _check_threshold(threshold)
    return float(q) ** 2 / ((2.0 * float(threshold) - 1.0) * int(n_units))


def unimodal_bound(q: float, threshold: float, n_units: int, n_pairs: int) -> float:
    r"""Shah and Samworth's bound under unimodality (their eq. (8)), :math:`C(\pi_{thr}, B)
    q^2 / p` with :math:`\theta = q / p` and

    .. math::

        C = \frac{1}{2(2\pi_{thr} - 1 - 1/(2B))} \ \text{for}\ \pi_{thr} \le \tfrac34,
        \qquad C = \frac{4(1 - \pi_{thr} + 1/(2B))}{1 + 1/B} \ \text{for}\
        \pi_{thr} > \tfrac34.

    Parameters
    ----------
    q : float
        Average number of units a half-sample fit selects over the alpha range.
    threshold : float
        :math:`\pi_{thr}`, in (0.5, 1].
    n_units : int
        :math:`p`.
    n_pairs : int
        :math:`B`, the number of complementary pairs.

    Returns
    -------
    float
        The bound; NaN where ``threshold`` is below the range where it holds,
        :math:`\min(1/2 + \theta^2, 1/2 + 1/(2B) + 3\theta^2/4)` with :math:`\theta = q/p`.

    Examples
    --------
    >>> from regmtl.selection.stability import unimodal_bound
    >>> round(unimodal_bound(5.0, 0.9, 50, 50), 4)
    0.2157
    """
    _check_threshold(threshold)
    tau, B, p = float(threshold), int(n_pairs), int(n_units)
    theta = float(q) / p
    if tau > 0.75:
        const = 4.0 * (1.0 - tau + 1.0 / (2 * B)) / (1.0 + 1.0 / B)
    elif tau < 0.5 + min(theta**2, 1.0 / (2 * B) + 0.75 * theta**2) or (
            2 * tau - 1 - 1.0 / (2 * B)) <= 0:
        return float("nan")
    else:
        const = 1.0 / (2.0 * (2.0 * tau - 1.0 - 1.0 / (2 * B)))
    return const * float(q) ** 2 / p


def _check_threshold(threshold: Any) -> float:
    if (isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, Real)
            or not 0.5 < float(threshold) <= 1.0):
        raise ValueError(f"threshold={threshold!r} must be in (0.5, 1]: the error bounds hold "
                         "for a selection probability above one half only.")
    return float(threshold)


# ----------------------------------------------------------------------------- units
def selection_unit(penalty: Penalty) -> str:
    """What a penalty selects: ``"feature"`` (rows of W: a feature is selected where its
    row is nonzero in some task) or ``"feature_task"`` (entries: the penalty is separable
    over tasks, or an entrywise nonconvex penalty).

    A penalty declares a sparse support by ``transfer_strategy == "support"`` (what a new
    task borrows from it in :func:`~regmtl.transfer`); any other penalty is refused.

    Parameters
    ----------
    penalty : Penalty
        The penalty object.

    Returns
    -------
    {"feature", "feature_task"}

    Raises
    ------
    ValueError
        For a penalty that selects no features (ridge, low-rank, mean or cluster
        penalties), naming it and the alternative.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.selection.stability import selection_unit
    >>> selection_unit(rm.L21()), selection_unit(rm.L1())
    ('feature', 'feature_task')
    """
    if penalty.transfer_strategy != "support":
        shares = penalty.transfer_strategy or "nothing sparse"
        raise ValueError(
            f"stability_selection: penalty {penalty!r} selects no features (its solutions "
            f"are not sparse; what its tasks share is {shares}), so there is no selected set "
            "to count. Use a sparse penalty: 'l21' or 'l1inf' (features shared by the "
            "tasks), 'l1' or ElasticNet(l1_ratio > 0) (features per task), or a nonconvex "
            "one (MCP, SCAD, CappedL1); for a ridge or a low-rank model read the "
            "coefficients' uncertainty instead (regmtl.inference).")
    if penalty.separates_over_tasks or getattr(penalty, "group", True) is False:
        return "feature_task"
    return "feature"


# ----------------------------------------------------------------------------- the halves
def complementary_halves(data: TaskData, n_pairs: int, stratify: Any = False,
                         random_state: Any = None) -> list[np.ndarray]:
    r"""``2 * n_pairs`` halves of the rows: halves ``2b`` and ``2b + 1`` are disjoint, and each
    holds :math:`\lfloor n_t / 2 \rfloor` rows of every task t (flat observation indices,
    sorted, grouped by task, as the CV's folds take them).

    With a shared design the halves split the shared rows (the same in every task; not
    stratified, the rows being shared by tasks of different labels).
    ``stratify`` (True, or one bool per task) deals each class of a task's labels to the two
    halves in turn, so that both see every class (a row left over when a task has an odd
    count is left out of both halves of that pair).

    Parameters
    ----------
    data : TaskData
        The problem.
    n_pairs : int
        :math:`B`.
    stratify : bool or array-like of bool, default=False
        Which tasks are split class by class.
    random_state : int, RandomState or None
        The seed of the draws; every half is drawn here, up front.

    Returns
    -------
    list of ndarray
        The halves, pairs consecutive.

    Raises
    ------
    ValueError
        If a task has fewer than 4 rows, or (stratified) a class with fewer than 2 rows.
    """
    seed = check_random_state(random_state).randint(2**31 - 1) if not isinstance(
        random_state, Integral) else int(random_state)
    rng = np.random.default_rng(seed)
    T = data.n_tasks
    strat = np.broadcast_to(np.asarray(stratify, dtype=bool), (T,))
    if data.shared:
        n = int(data.indptr[1])
        _check_rows(data, n, None)
        halves = []
        for _ in range(n_pairs):
            order = rng.permutation(n)
            m = n // 2
            for part in (np.sort(order[:m]), np.sort(order[m:2 * m])):
                halves.append(np.concatenate([t * n + part for t in range(T)]))
        return halves
    per_task = []
    for t in range(T):
        lo, hi = int(data.indptr[t]), int(data.indptr[t + 1])
        codes = None
        if strat[t] and data.raw_y is not None:
            _, codes = np.unique(np.asarray(data.raw_y[lo:hi]), return_inverse=True)
            codes = codes.ravel()
        _check_rows(data, hi - lo, codes, t)
        per_task.append((lo, hi - lo, codes))
    halves = []
    for _ in range(n_pairs):
        a_parts, b_parts = [], []
        for lo, n_t, codes in per_task:
            a, b = _split(rng, n_t, codes)
            a_parts.append(lo + a)
            b_parts.append(lo + b)
        halves += [np.concatenate(a_parts), np.concatenate(b_parts)]
    return halves


def _split(rng: np.random.Generator, n: int, codes: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted halves of ``range(n)`` of ``n // 2`` rows each; by class (rows
    dealt in turn within each class, a class's order random) where ``codes`` are given."""
    key = rng.random(n)
    order = np.argsort(key) if codes is None else np.lexsort((key, codes))
    a, b = order[0::2], order[1::2]
    if len(a) > len(b):  # an odd count: one row of the first half, at random, left out
        a = np.delete(a, rng.integers(len(a)))
    return np.sort(a), np.sort(b)


def _check_rows(data: TaskData, n: int, codes: np.ndarray | None, t: int | None = None
                ) -> None:
    where = "the shared design" if t is None else f"task {task_name(data, t)}"
    if n < 4:
        raise ValueError(f"stability_selection: {where} has {n} rows; halving it needs at "
                         "least 4 (two rows in each half). Leave the task out, or merge it.")
    if codes is not None and np.bincount(codes).min() < 2:
        raise ValueError(f"stability_selection: {where} has a class with fewer than 2 rows, "
                         "so one half would lack it; leave the task out of the selection.")


# ----------------------------------------------------------------------------- one half
def _half_selection(data: TaskData, rows: np.ndarray, datafit: Datafit, penalty: Penalty,
                    grid: np.ndarray, task_weight: Any, kwargs: dict, unit: str
                    ) -> tuple[np.ndarray, int]:
    """The selected units at every alpha of ``grid`` ((n_alphas, p) or (n_alphas, p, T),
    bool) on the half ``rows``, and how many of its fits stopped short of ``tol``."""
    half = take(data, rows, task_weight, encode=datafit.kind == "binary")
    if datafit.kind == "mixed":
        encode_targets(half, datafit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = regularization_path(half, penalty=penalty, loss=datafit, alphas=grid,
                                   progress=False, **kwargs)
    nz = path.coefs != 0.0  # (n_alphas, T, p)
    sel = nz.any(axis=1) if unit == "feature" else np.transpose(nz, (0, 2, 1))
    return sel, int(np.count_nonzero(~path.converged))


def _batch(data: TaskData, halves: list, args: tuple) -> list:
    """:func:`_half_selection` on each of ``halves`` in turn."""
    return [_half_selection(data, rows, *args) for rows in halves]


# ----------------------------------------------------------------------------- the result
@dataclass
class StabilitySelection:
    r"""What :func:`stability_selection` returns (users get one from it rather than
    building it).

    Parameters
    ----------
    probabilities_ : DataFrame
        :math:`\hat\pi(\alpha)`: one row per alpha of the grid (index ``alpha``), one column
        per feature, or per (task, feature) pair (a column MultiIndex) for a penalty
        separable over tasks.
    max_probabilities_ : Series or DataFrame
        :math:`\max_{\alpha \in \Lambda} \hat\pi`: per feature (a Series), or features x
        tasks (a DataFrame).
    selected_ : list
        The stable set: feature names, or ``(feature, task)`` pairs.
    support_ : ndarray of bool of shape (p,) or (p, T)
        The stable set as a mask.
    threshold : float
        :math:`\pi_{thr}`.
    q : float
        Average number of units a half-sample fit selects over the range used.
    bound : float
        Meinshausen and Bühlmann's bound on the expected number of false selections,
        :math:`q^2 / ((2\pi_{thr} - 1) p)`.
    bound_unimodal : float
        Shah and Samworth's bound under unimodality
        (:func:`~regmtl.selection.stability.unimodal_bound`; NaN where ``threshold`` is below
        its range).
    alphas : ndarray
        The grid, decreasing.
    alpha_min : float
        The smallest alpha of the range :math:`\Lambda` used (the grid's top down to it).
    n_selected_path : ndarray
        The average size of the union of a half-sample fit's selected sets from the top of
        the grid down to each alpha (``q`` is its value at ``alpha_min``).
    unit : {"feature", "feature_task"}
        What is selected (:func:`~regmtl.selection.stability.selection_unit`).
    n_units : int
        :math:`p` of the bounds: the features, or the (feature, task) entries.
    n_pairs : int
        :math:`B`.
    feature_names : list of str
        The features' names (``x0, x1, ...`` without names in the input).
    tasks : list
        The task labels.
    halves : list of ndarray
        The ``2B`` halves (flat observation indices of :func:`~regmtl.as_task_data`'s
        layout), pairs consecutive.
    n_unconverged : int
        Fits (over all halves and alphas) that stopped short of ``tol``.

    See Also
    --------
    stability_selection : Computes it.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 6))
    >>> Y = X[:, :1] @ np.ones((1, 3)) + 0.5 * rng.standard_normal((40, 3))
    >>> res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), X, Y,
    ...                              n_pairs=5, alphas=5, random_state=0)
    >>> res.selected_, res.probabilities_.shape, len(res.halves)
    (['x0'], (5, 6), 10)
    """

    probabilities_: Any
    max_probabilities_: Any
    selected_: list
    support_: np.ndarray
    threshold: float
    q: float
    bound: float
    bound_unimodal: float
    alphas: np.ndarray
    alpha_min: float
    n_selected_path: np.ndarray
    unit: str
    n_units: int
    n_pairs: int
    feature_names: list = field(repr=False)
    tasks: list = field(repr=False)
    halves: list = field(default_factory=list, repr=False)
    n_unconverged: int = 0

    def plot(self, ax: Any = None) -> Any:
        """Selection probabilities along alpha: one line per unit, the stable set coloured,
        the threshold as a dashed line, the alphas outside the range used shaded
        (:func:`regmtl.plotting.plot_stability`).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure when omitted.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_stability

        probs = self.probabilities_.to_numpy()
        names = [str(c) if not isinstance(c, tuple) else f"{c[1]} ({c[0]})"
                 for c in self.probabilities_.columns]
        mask = (self.support_ if self.unit == "feature" else self.support_.T).ravel()
        return plot_stability(self.alphas, probs, threshold=self.threshold,
                              selected=mask, names=names, alpha_min=self.alpha_min, ax=ax)


# ----------------------------------------------------------------------------- the function
def stability_selection(
    estimator: Any,
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    sample_weight: Any = None,
    n_pairs: int = 50,
    alphas: int | Any = 20,
    eps: float | None = 0.05,
    threshold: float | None = None,
    expected_false: float | None = None,
    n_selected: float | None = None,
    random_state: Any = None,
    n_jobs: int | None = None,
    client: Any = None,
    progress: bool | str = False,
) -> StabilitySelection:
    r"""Complementary-pairs stability selection of a sparse linear multi-task estimator.

    ``n_pairs`` pairs of disjoint halves of every task's rows (class by class for a
    classifier) are drawn up front from ``random_state``; on each half the estimator's
    problem is solved along one warm-started grid of ``alpha`` (its own ``alpha`` is not
    used; every other parameter is). A unit (a feature for the row-sparse penalties, L2,1,
    L1,inf, ...; a (feature, task) entry for those separable over tasks, L1, ElasticNet) is
    stable where its selection probability reaches ``threshold`` somewhere in the range of
    the grid used (see Notes).

    Parameters
    ----------
    estimator : MultiTaskRegressor or MultiTaskClassifier
        Unfitted or fitted (it is cloned); its penalty must select features.
    X, y, task : inputs
        In any input form of the estimator (lists per task, long form with ``task``, a
        shared design with a 2-D ``y``), in memory.
    sample_weight : array-like, or list of them, optional
        One weight per row.
    n_pairs : int, default=50
        :math:`B`: ``2 B`` half-sample paths are fitted.
    alphas : int or array-like, default=20
        The grid: a size (geometric, from ``alpha_max`` of all rows down to
        ``eps * alpha_max``) or the values.
    eps : float, default=0.05
        Ratio of the smallest to the largest alpha of an integer grid.
    threshold : float, optional
        :math:`\pi_{thr}` in (0.5, 1]; default 0.75, or chosen from ``expected_false``.
    expected_false : float, optional
        A target for Meinshausen and Bühlmann's bound: the threshold is then the smallest
        that meets it, :math:`\pi_{thr} = (1 + q^2 / (p\,E V)) / 2` (an error where that
        exceeds 1). Give it instead of ``threshold``.
    n_selected : float, optional
        The largest average number of units a half-sample fit may select over the range used
        (the range stops at the last alpha where it holds); default
        :math:`\sqrt{0.8 p}`, where the bound at :math:`\pi_{thr} = 0.9` is 1.
    random_state : int, RandomState or None
        The halves' seed. The result depends on it alone, never on ``n_jobs`` or where the
        fits run.
    n_jobs : int, optional
        Half-sample paths run in parallel (joblib; under
        ``joblib.parallel_backend("dask")`` they run on a Dask cluster).
    client : dask.distributed.Client, optional
        Run the half-sample paths as Dask tasks on this client's cluster (the problem is
        scattered once).
    progress : {"auto", True, False}, default=False
        A progress bar over the half-sample paths.

    Returns
    -------
    StabilitySelection
        The probabilities, the stable set, ``q`` and the bounds.

    Raises
    ------
    TypeError
        If ``estimator`` is not a linear multi-task estimator.
    ValueError
        For a penalty that selects no features, a threshold outside (0.5, 1], a task too
        small to halve, Dask input, or tasks with more than two classes.

    Notes
    -----
    With halves :math:`A_b, \bar A_b` and :math:`\hat S_\alpha(A)` the units a fit on
    :math:`A` selects at :math:`\alpha`,

    .. math::

        \hat\pi_k(\alpha) = \frac{1}{2B} \sum_{b=1}^{B}
        \bigl(\mathbb 1\{k \in \hat S_\alpha(A_b)\} + \mathbb 1\{k \in \hat S_\alpha(\bar A_b)\}
        \bigr), \qquad
        \hat S = \{k : \max_{\alpha \in \Lambda} \hat\pi_k(\alpha) \ge \pi_{thr}\},

    :math:`\Lambda` the grid from its top down to the last alpha where
    :math:`q = \mathrm{mean}_A |\cup_{\alpha \in \Lambda} \hat S_\alpha(A)|` is at most
    ``n_selected``. ``bound`` is Meinshausen and Bühlmann's (2010, Theorem 1: exchangeable
    noise units, a selection no worse than random guessing)
    :math:`\mathbb E V \le q^2 / ((2\pi_{thr} - 1) p)`, ``bound_unimodal`` Shah and
    Samworth's under unimodality (2013, eq. (8);
    :func:`~regmtl.selection.stability.unimodal_bound`); their r-concave bound is not
    computed.

    References: Meinshausen, N. and Bühlmann, P. (2010). Stability selection. *J. R.
    Statist. Soc. B* 72, 417-473. Shah, R. D. and Samworth, R. J. (2013). Variable selection
    with error control: another look at stability selection. *J. R. Statist. Soc. B* 75,
    55-80.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((40, 10)) for _ in range(3)]
    >>> ys = [X[:, 0] * 2 - X[:, 1] * 2 + rng.standard_normal(40) for X in Xs]
    >>> res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys,
    ...                              n_pairs=10, random_state=0)
    >>> res.selected_
    ['x0', 'x1']
    >>> bool(np.isclose(res.bound, res.q**2 / ((2 * res.threshold - 1) * 10)))
    True
    """
    est, pen, unit = _check_estimator(estimator)
    check_n_jobs(n_jobs)
    if isinstance(n_pairs, (bool, np.bool_)) or not isinstance(n_pairs, Integral) \
            or n_pairs < 1:
        raise ValueError(f"n_pairs={n_pairs!r} must be a positive integer.")
    if threshold is None and expected_false is None:
        threshold = 0.75
    if threshold is not None and expected_false is not None:
        raise ValueError("give threshold or expected_false, not both: the threshold is "
                         "chosen from expected_false when no threshold is given.")
    if threshold is not None:
        _check_threshold(threshold)
    if expected_false is not None and not (isinstance(expected_false, Real)
                                           and expected_false > 0):
        raise ValueError(f"expected_false={expected_false!r} must be a positive number.")
    check_alphas(alphas)
    data, datafit, names = _rows(est, X, y, task, sample_weight)
    p, T = data.n_features, data.n_tasks
    n_units = p if unit == "feature" else p * T
    if n_selected is None:
        n_selected = float(np.sqrt(0.8 * n_units))
    elif not (isinstance(n_selected, Real) and n_selected > 0):
        raise ValueError(f"n_selected={n_selected!r} must be a positive number.")
    terms = by_position(_terms(est), names, p)
    grid = path_grid(data, datafit, pen, alphas, eps, est.fit_intercept, terms)
    kwargs = dict(fit_intercept=est.fit_intercept, solver=est.solver, tol=est.tol,
                  max_iter=est.max_iter, solver_options=est.solver_options, **terms)
    halves = complementary_halves(data, int(n_pairs), _strata(datafit, data), random_state)
    args = (datafit, pen, grid, est.task_weight, kwargs, unit)
    results = _run(data, halves, args, n_jobs, client, progress)
    sel = np.stack([r[0] for r in results])  # (2B, n_alphas, p[, T])
    n_bad = sum(r[1] for r in results)
    if n_bad:
        warnings.warn(f"{n_bad} of {len(halves) * len(grid)} half-sample fits stopped short "
                      f"of tol={est.tol:g}; raise max_iter or loosen tol.",
                      ConvergenceWarning, stacklevel=2)
    return _result(sel, grid, float(n_selected), threshold, expected_false, unit, n_units,
                   int(n_pairs), names or [f"x{j}" for j in range(p)],
                   list(data.tasks[data.task_index]), halves, n_bad)


def _check_estimator(estimator: Any) -> tuple[MultiTaskLinear, Penalty, str]:
    if not isinstance(estimator, MultiTaskLinear):
        kind = type(estimator).__name__
        hint = (" (a CV search: pass its base estimator, MultiTaskRegressor(penalty=...); "
                "the grid of alpha is stability selection's own)") if hasattr(
            estimator, "alphas") else ""
        raise TypeError(f"stability_selection takes a linear multi-task estimator "
                        f"(MultiTaskRegressor or MultiTaskClassifier), not {kind}{hint}.")
    est = clone(estimator)
    pen = make_penalty(est.penalty)
    return est, pen, selection_unit(pen)


def _terms(est: MultiTaskLinear) -> dict:
    given = {k: getattr(est, k) for k in _TERMS}
    plain = all(given[k] is None for k in _TERMS[:4]) and not given["standardize"]
    return {} if plain else given


def _rows(est: MultiTaskLinear, X: Any, y: Any, task: Any, sample_weight: Any
          ) -> tuple[TaskData, Datafit, list | None]:
    """The rows in memory, their loss, and the feature names (None without names)."""
    rows = est.fit_rows(X, y, task, sample_weight)
    data, layout, datafit = rows
    if not data.rows_local:
        raise ValueError("stability_selection takes rows in memory, not Dask input: compute "
                         "the Dask input first (X.compute()); to run the half-sample fits "
                         "on a Dask cluster, pass client= (or use "
                         "joblib.parallel_backend('dask') with n_jobs).")
    if layout is not None:
        raise ValueError("stability_selection: a task has more than two classes (the "
                         "multinomial loss); fit one-vs-rest tasks with two classes each, "
                         "or select on the binary tasks.")
    check_loss_targets(data, datafit.bind(data))
    names = getattr(est, "feature_names_in_", None)
    return data, datafit, None if names is None else [str(n) for n in names]


def _strata(datafit: Datafit, data: TaskData) -> bool | np.ndarray:
    if datafit.kind != "mixed":
        return datafit.kind == "binary"
    return np.array([loss.kind == "binary" for loss in datafit.task_losses(data)])


def _run(data: TaskData, halves: list, args: tuple, n_jobs: int | None, client: Any,
         progress: bool | str) -> list:
    """The half-sample results in the order of ``halves`` (on ``client``, or by joblib)."""
    out = []
    with progress_bar(len(halves), progress, "stability selection", unit="path") as bar:
        if client is not None:
            shared = client.scatter(data, broadcast=True, hash=False)  # (a key of its own)
            futures = [client.submit(_half_selection, shared, rows, *args, pure=False)
                       for rows in halves]
            for fut in futures:  # (in order: the result never depends on which ends first)
                out.append(fut.result())
                bar.update(1)
            return out
        # a few batches per process (the problem is sent once per batch, not once per half);
        # the calling process takes batches too while the workers start
        n = effective_n_jobs(n_jobs)
        size = 1 if n < 2 else max(1, -(-len(halves) // (4 * n)))
        batches = [halves[i:i + size] for i in range(0, len(halves), size)]
        done: dict[int, list] = {}
        for i, res in run_jobs([delayed(_batch)(data, batch, args) for batch in batches],
                               n_jobs):
            done[i] = res
            bar.update(len(res))
        out = [r for i in range(len(batches)) for r in done[i]]
    return out


def _result(sel: np.ndarray, grid: np.ndarray, n_selected: float, threshold: float | None,
            expected_false: float | None, unit: str, n_units: int, n_pairs: int,
            names: list, tasks: list, halves: list, n_bad: int) -> StabilitySelection:
    n_fits, K = sel.shape[0], sel.shape[1]
    flat = sel.reshape(n_fits, K, -1)
    probs = flat.mean(axis=0)  # (K, units)
    union = np.logical_or.accumulate(flat, axis=1).sum(axis=2).mean(axis=0)  # (K,)
    within = np.flatnonzero(union <= n_selected)
    k = int(within[-1]) if within.size else 0
    if not within.size:
        warnings.warn(f"the half-sample fits select {union[0]:.3g} units on average at the "
                      f"top of the grid, more than n_selected={n_selected:.3g}: the range is "
                      "that one alpha; raise n_selected or start the grid higher.",
                      UserWarning, stacklevel=3)
    q = float(union[k])
    if threshold is None:
        threshold = 0.5 * (1.0 + q**2 / (n_units * float(expected_false)))
        if threshold > 1.0:
            raise ValueError(f"expected_false={expected_false!r} cannot be met with q={q:.3g} "
                             f"of {n_units} units (the threshold would be {threshold:.3g} > "
                             "1); lower n_selected or raise expected_false.")
    top = probs[:k + 1].max(axis=0)
    support = top >= threshold - 1e-12
    p = len(names)
    if unit == "feature":
        columns = pd.Index(names, name="feature")
        top_table = pd.Series(top, index=columns, name="max_probability")
        selected = [names[j] for j in np.flatnonzero(support)]
    else:
        # units in (feature, task) order: column j * T + t; shown task by task
        T = len(tasks)
        by_task = probs.reshape(K, p, T).transpose(0, 2, 1).reshape(K, T * p)
        columns = pd.MultiIndex.from_product([tasks, names], names=["task", "feature"])
        top_table = pd.DataFrame(top.reshape(p, T), index=pd.Index(names, name="feature"),
                                 columns=pd.Index(tasks, name="task"))
        support = support.reshape(p, T)
        selected = [(names[j], tasks[t]) for j, t in zip(*np.nonzero(support), strict=True)]
        probs = by_task
    table = pd.DataFrame(probs, index=pd.Index(grid, name="alpha"), columns=columns)
    return StabilitySelection(
        probabilities_=table, max_probabilities_=top_table, selected_=selected,
        support_=support, threshold=float(threshold), q=q,
        bound=mb_bound(q, threshold, n_units),
        bound_unimodal=unimodal_bound(q, threshold, n_units, n_pairs), alphas=grid,
        alpha_min=float(grid[k]), n_selected_path=union, unit=unit, n_units=n_units,
        n_pairs=n_pairs, feature_names=names, tasks=tasks, halves=halves, n_unconverged=n_bad)
