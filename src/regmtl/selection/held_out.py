r"""``alpha`` chosen on held-out rows of a task source read chunk by chunk (out of core).

Cross-validation refits every fold on all but a part of the rows; out of core, where each fit
is a few passes over data larger than memory, one split is what is affordable. A fixed
fraction of each task's rows is held out (:func:`held_out_mask`: the rows with the smallest
values of a hash of their row number and a seed, so the split does not depend on how the
rows are read in chunks), and :func:`held_out_alpha` reads the rows once: each chunk gives the
statistics (:mod:`~regmtl.solvers.streamed.quadratic`) of all its rows (the refit's, kept with
the source), of its rows fitted and of its rows held out. The path of
:class:`~regmtl.MultiTaskRegressor` fits on the other rows is computed along a decreasing
grid, warm-started, each fit FISTA on their Grams on disk, and each fit is scored on the
held-out rows from their moments, with no pass over the rows:

.. math::

    \sum_{r \in H_t} (y_r - x_r^\top w_t - b_t)^2 = e_t - 2 g_t^\top w_t + w_t^\top H_t w_t
    + h_t (\bar y_t - \bar x_t^\top w_t - b_t)^2

(the held-out rows' centered moments and means, their Grams kept in float64). The path stops
``patience`` alphas past the best score. Memory: one chunk of rows, three sets of statistics
(``g`` of p x T numbers each, the Grams on disk) and three p x T coefficient arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..out_of_core import fit_phases
from ..penalties import Penalty, make_penalty
from ..progress import check_progress
from ..solvers.streamed.fista import streamed_fista
from ..solvers.streamed.fit import check_streamed_penalty, keep_statistics, streamed_options
from ..solvers.streamed.phases import chunks_from
from ..solvers.streamed.quadratic import GramPass, StreamedQuadratic, prefetched
from ..taskdata import TaskData, task_weights
from .path import alpha_grid, check_alphas

__all__ = ["HeldOutChoice", "held_out_alpha", "held_out_mask", "held_out_counts"]

#: Iterations between the certificates of the path's fits (where ``solver_options`` gives no
#: ``check_every``): each starts near its optimum, from the last alpha's fit, and most meet
#: ``tol`` within 10 to 20 iterations; a check costs a second product in its pass.
PATH_CHECK_EVERY = 5

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of the row numbers and the seed: a deterministic, well-mixed key per
    row (uint64 arithmetic wraps)."""
    z = rows.astype(np.uint64) + np.uint64((seed + 1) * _GOLDEN % (1 << 64))
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _check_split(fraction: float, seed: int) -> tuple[float, int]:
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, (int, float,
                                                                           np.floating)):
        raise ValueError(f"fraction={fraction!r} must be a number in (0, 1).")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1): the share of each task's "
                         "rows held out.")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0.")
    return float(fraction), int(seed)


def held_out_counts(task_rows: Any, fraction: float = 0.2) -> np.ndarray:
    """How many rows of each task are held out: ``fraction`` of its rows, rounded to the
    nearest integer, and at most all but one (a task of one row keeps it for the fit).

    Parameters
    ----------
    task_rows : array-like of int of shape (T,)
        The rows of each task.
    fraction : float, default=0.2
        The share of each task's rows held out, in (0, 1).

    Returns
    -------
    ndarray of int64 of shape (T,)

    Examples
    --------
    >>> from regmtl.selection.held_out import held_out_counts
    >>> held_out_counts([1, 2, 3, 10, 101], 0.2).tolist()
    [0, 0, 1, 2, 20]
    """
    fraction, _ = _check_split(fraction, 0)
    n = np.asarray(task_rows, dtype=np.int64)
    return np.clip(np.floor(fraction * n + 0.5).astype(np.int64), 0, np.maximum(n - 1, 0))


def _chunk_mask(start: int, sizes: np.ndarray, held: np.ndarray, seed: int) -> np.ndarray:
    """The held-out rows of a run of whole tasks (``sizes`` rows each, the first at row
    ``start`` of the source, ``held`` of each held out): per task, the rows of smallest
    hash. A sort of the run's rows, no loop."""
    n = int(sizes.sum())
    task = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    order = np.lexsort((_hash(np.arange(start, start + n, dtype=np.int64), seed), task))
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64) - first[task[order]]
    return rank < held[task]


def held_out_mask(task_rows: Any, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Which rows :func:`held_out_alpha` holds out, for rows sorted by task.

    Task t's :func:`held_out_counts` rows are held out: those whose row number (counted over
    all the rows, from 0) has the smallest hash (splitmix64 of the row number and ``seed``).
    The choice depends only on the row numbers, the tasks' sizes and the seed: reading the
    rows in other chunks leaves it as it is.

    Parameters
    ----------
    task_rows : array-like of int of shape (T,)
        The rows of each task, in the order of the rows (a source's ``task_rows``).
    fraction : float, default=0.2
        The share of each task's rows held out, in (0, 1).
    seed : int, default=0
        The seed of the hash (>= 0).

    Returns
    -------
    ndarray of bool of shape (sum(task_rows),)
        True on the held-out rows.

    Examples
    --------
    >>> from regmtl.selection.held_out import held_out_mask
    >>> mask = held_out_mask([5, 10], 0.2)
    >>> int(mask[:5].sum()), int(mask[5:].sum())
    (1, 2)
    """
    fraction, seed = _check_split(fraction, seed)
    sizes = np.asarray(task_rows, dtype=np.int64)
    return _chunk_mask(0, sizes, held_out_counts(sizes, fraction), seed)


class _Split:
    """The held-out rows of a source, chunk by chunk."""

    def __init__(self, source: Any, fraction: float, seed: int):
        self.source, self.seed = source, seed
        self.task_rows = np.asarray(source.task_rows, dtype=np.int64)
        self.held = held_out_counts(self.task_rows, fraction)
        self.train_rows = self.task_rows - self.held
        self.starts = np.concatenate(([0], np.cumsum(self.task_rows)))

    def chunks(self, task_weight: Any = "equal", target: str | None = None
               ) -> Iterator[tuple[int, int, TaskData, np.ndarray]]:
        """The source's chunks, each with its mask of held-out rows."""
        kwargs = {"task_weight": task_weight} if target is None else {
            "task_weight": task_weight, "target": target}
        for lo, hi, block in self.source.chunks(**kwargs):
            yield lo, hi, block, _chunk_mask(int(self.starts[lo]), self.task_rows[lo:hi],
                                             self.held[lo:hi], self.seed)


def _part(rows: np.ndarray, sizes: np.ndarray, c: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Some rows of a chunk for :meth:`~regmtl.solvers.streamed.quadratic.GramPass.add`:
    their positions (ascending, task by task, ``sizes`` of each task), ``indptr`` over them
    and the weights of the chunk's rows."""
    indptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    return rows.astype(np.int64, copy=False), indptr, c


class _Statistics:
    """The one pass over a source that a held-out path needs (:func:`_one_pass`): the
    statistics of all the rows (the refit's), of the rows fitted (the path's) and of the
    rows held out (the scores'), and each task's held-out count."""

    def __init__(self, full: StreamedQuadratic, train: StreamedQuadratic,
                 held: StreamedQuadratic, n_held: np.ndarray):
        self.full, self.train, self.held, self.n_held = full, train, held, n_held

    def squared_errors(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        r"""Each task's sum of squared errors of ``(W, b)`` on its held-out rows, from their
        moments (one pass over their Grams), with :math:`\bar x_t, \bar y_t` the held-out
        rows' means and :math:`H_t, g_t, e_t` their centered moments:

        .. math::

            \sum_{r \in H_t} (y_r - x_r^\top w_t - b_t)^2 = e_t - 2 g_t^\top w_t
            + w_t^\top H_t w_t + h_t (\bar y_t - \bar x_t^\top w_t - b_t)^2.
        """
        q = self.held
        HW = q.matvec(W)
        quad = np.einsum("jt,jt->t", W, HW) - 2.0 * np.einsum("jt,jt->t", q.g, W)
        return np.maximum(q.e + quad + self.n_held * (q.intercepts(W) - b) ** 2, 0.0)

    def constant_errors(self) -> np.ndarray:
        """The same of the constant model, each task's mean of its rows in the fit."""
        return self.held.e + self.n_held * (self.held.zm - self.train.zm) ** 2


def _one_pass(split: _Split, task_weight: Any, spill_dir: str | None, dtype: Any,
              phases: Any) -> _Statistics:
    """The statistics of :class:`_Statistics` in one pass over ``split``'s source: each
    chunk's rows as they are (the global problem's row weights), its rows fitted (weights
    ``omega_t / (n_t - h_t)``: the problem on those rows) and its rows held out (weight 1,
    their Grams in float64: the scores are differences of their moments)."""
    source = split.source
    T, p = int(source.n_tasks), int(source.n_features)
    omega = task_weights(task_weight, split.train_rows.astype(np.float64))
    passes: list[GramPass] = []
    try:
        for dt, bounds in ((dtype, True), (dtype, True), (np.float64, False)):
            passes.append(GramPass(T, p, True, spill_dir, dt, with_bounds=bounds))
        full, train, held = passes
        with phases.phase("statistics", chunks_from(source), "chunk"):
            for lo, hi, block, out in prefetched(split.chunks(task_weight=task_weight)):
                full.add(lo, hi, block)
                sizes = np.diff(np.asarray(block.indptr))
                weight = np.repeat(omega[lo:hi] / split.train_rows[lo:hi], sizes)
                train.add(lo, hi, block, _part(np.flatnonzero(~out), split.train_rows[lo:hi],
                                               weight))
                held.add(lo, hi, block, _part(np.flatnonzero(out), split.held[lo:hi],
                                              np.ones(len(out))))
        made = [one.finish() for one in passes]
    except BaseException:
        for one in passes:
            one.discard()
        raise
    return _Statistics(*made, split.held.astype(np.float64))


@dataclass
class HeldOutChoice:
    """The path scored on held-out rows and the ``alpha`` it chooses, as
    :func:`held_out_alpha` returns them. Entry k of every path array belongs to
    ``alphas[k]``.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        The alphas fitted, decreasing: the grid, or its start where the path stopped early
        (``patience``).
    scores : ndarray of shape (n_alphas,)
        The score chosen by: minus the held-out mean squared error, averaged over the tasks
        that hold rows out.
    task_scores : ndarray of shape (n_alphas, T)
        Minus each task's held-out mean squared error (NaN for a task with none held out).
    r2 : ndarray of shape (n_alphas,)
        The held-out R^2 (around the held-out rows' mean), averaged over the tasks with two
        held-out rows or more.
    n_active : ndarray of int of shape (n_alphas,)
        Features used by some task, per fit.
    converged : ndarray of bool of shape (n_alphas,)
        Whether each fit of the path met ``tol`` (its duality gap from the Grams' sums, or
        KKT residual, as the out-of-core iterations certify).
    best_index : int
        The position of the choice in ``alphas``.
    alpha_max : float or None
        The smallest alpha that gives W = 0 on all the rows (None for a penalty without
        one).
    constant_score, constant_r2 : float
        ``scores`` and ``r2`` of the constant model, each task's mean of its rows in the fit.
    held_out_rows : ndarray of int64 of shape (T,)
        The rows of each task held out (:func:`held_out_counts`).
    fraction : float
        The share of each task's rows held out.
    seed : int
        The seed of the hash that picks them.
    coef : ndarray of shape (T, p)
        The coefficients of the chosen fit (on the rows not held out), as ``coef_``.
    intercept : ndarray of shape (T,)
        Its intercepts.
    grid : ndarray of shape (n_grid,)
        The whole grid; ``alphas`` is its start.

    Attributes
    ----------
    alpha : float
        The chosen alpha, ``alphas[best_index]``.
    better_than_constant : bool
        Whether the chosen fit uses a feature and scores above the constant model.
    """

    alphas: np.ndarray
    scores: np.ndarray
    task_scores: np.ndarray
    r2: np.ndarray
    n_active: np.ndarray
    converged: np.ndarray
    best_index: int
    alpha_max: float | None
    constant_score: float
    constant_r2: float
    held_out_rows: np.ndarray
    fraction: float
    seed: int
    coef: np.ndarray
    intercept: np.ndarray
    grid: np.ndarray

    @property
    def alpha(self) -> float:
        """The chosen alpha."""
        return float(self.alphas[self.best_index])

    @property
    def stopped_early(self) -> bool:
        """Whether the path stopped before the end of the grid (``patience``)."""
        return len(self.alphas) < len(self.grid)

    @property
    def better_than_constant(self) -> bool:
        """Whether the chosen fit uses a feature and scores above the constant model."""
        k = self.best_index
        return bool(self.n_active[k] > 0 and self.scores[k] > self.constant_score)


class _Scores:
    """Per-task sums of squared errors on the held-out rows, from their moments."""

    def __init__(self, stats: _Statistics, n_alphas: int):
        T = len(stats.n_held)
        self.sse = np.zeros((n_alphas, T))
        self.n = stats.n_held
        self.sst = np.maximum(stats.held.e, 0.0)  # (about the held-out rows' mean)
        self.const = stats.constant_errors()

    def neg_mse(self, sse: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n > 0, -sse / np.where(self.n > 0, self.n, 1.0), np.nan)

    def r2(self, sse: np.ndarray) -> np.ndarray:
        """Task-averaged R^2 (as scikit-learn per task: undefined below two rows, 1 or 0 on
        a constant target)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(self.sst > 0, 1.0 - sse / np.where(self.sst > 0, self.sst, 1.0),
                          np.where(sse == 0, 1.0, 0.0))
        r2 = np.where(self.n < 2, np.nan, r2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(r2, axis=-1)


def _grid(q: StreamedQuadratic, penalty: Penalty, spec: Any, eps: float | None
          ) -> tuple[np.ndarray, float | None]:
    """The grid of :func:`~regmtl.selection.path_alphas` on all the source's rows: from
    ``alpha_max`` down to ``eps alpha_max`` (1e-3), or for a penalty without one from
    ``100 s`` down to ``eps 100 s`` (1e-6), ``s`` the mean centered curvature of the data
    term in one coefficient (:func:`~regmtl.selection.alpha_scale`, from the statistics);
    ``alpha_max`` too (None without one). ``q``: the statistics of all the rows."""
    try:
        amax: float | None = float(penalty.alpha_max(q.g))
    except ValueError:  # no finite alpha gives W = 0
        amax = None
    grid = check_alphas(spec)
    if grid is not None:
        return grid, amax
    if amax is not None and amax > 0:
        return alpha_grid(amax, int(spec), 1e-3 if eps is None else eps), amax
    s = float(np.mean(q.diagonal()))
    if not np.isfinite(s) or s <= 0:
        raise ValueError("X has no variation within any task (every centered column is "
                         "zero): no alpha grid can be derived; pass alphas=[...].")
    return alpha_grid(100.0 * s, int(spec), 1e-6 if eps is None else eps), amax


def held_out_alpha(source: Any, penalty: str | Penalty = "l21", *, alphas: int | Any = 30,
                   eps: float | None = None, fraction: float = 0.2, seed: int = 0,
                   task_weight: Any = "equal", tol: float = 1e-4, max_iter: int = 1000,
                   patience: int | None = 5, solver_options: dict | None = None,
                   progress: bool | str = "auto") -> HeldOutChoice:
    r"""Choose ``alpha`` of an out-of-core :class:`~regmtl.MultiTaskRegressor` fit by its
    error on held-out rows.

    ``fraction`` of each task's rows are held out (:func:`held_out_mask`: deterministic,
    from the row numbers and ``seed``). One pass over the rows gives the statistics of the
    rows fitted, of the rows held out and of all the rows (module docstring). For each
    ``alpha`` of a decreasing grid, the squared loss plus ``penalty`` is fitted on the other
    rows by the out-of-core iterations on their Grams (warm-started from the previous fit,
    certified to ``tol`` on the Grams' sums), and scored on the held-out rows from their
    moments; the path stops ``patience`` alphas past the best score. The choice maximizes
    the score of the in-memory cross-validation's default, minus the held-out mean squared
    error averaged over tasks:

    .. math::

        \hat\alpha = \arg\min_{\alpha} \frac{1}{|\mathcal T_h|} \sum_{t \in \mathcal T_h}
        \frac{1}{h_t} \sum_{r \in H_t} (y_r - x_r^\top \hat w_t(\alpha) - \hat b_t(\alpha))^2,

    with :math:`H_t` task t's :math:`h_t` held-out rows, :math:`\mathcal T_h` the tasks that
    hold rows out and :math:`(\hat W, \hat b)(\alpha)` the fit on the other rows; of equal
    scores, the largest alpha. Refit on all the rows at ``alpha`` afterwards: the fits of all
    the rows reuse the statistics made here (kept with ``source``), so the refit reads the
    rows once more, to certify its result.

    Parameters
    ----------
    source : ParquetTasks or task source
        The rows, sorted by task, read chunk by chunk (:class:`~regmtl.ParquetTasks`, e.g.
        its :meth:`~regmtl.ParquetTasks.standardized` copy).
    penalty : str or Penalty, default="l21"
        A penalty the out-of-core fit takes.
    alphas : int or array-like, default=30
        The grid size, or the values. An integer gives the grid of
        :func:`~regmtl.selection.path_alphas` on all the rows: geometric from ``alpha_max``
        down to ``eps * alpha_max`` (or from ``100 s``, ``s`` the data's scale of alpha, for
        a penalty without ``alpha_max``).
    eps : float, optional
        Ratio of the smallest to the largest alpha of an integer grid (default 1e-3, or 1e-6
        for a scale grid).
    fraction : float, default=0.2
        The share of each task's rows held out (:func:`held_out_counts`), in (0, 1).
    seed : int, default=0
        The seed of the hash that picks the held-out rows.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        The task weights of the objective.
    tol, max_iter : float, int
        Of each fit, as :class:`~regmtl.MultiTaskRegressor`'s.
    patience : int or None, default=5
        The path stops once this many alphas past the best have scored no better (the
        held-out error rises as alpha falls past its best, and the fits there are the
        costliest); None fits the whole grid.
    solver_options : dict, optional
        Of the out-of-core fits (``spill_dir``, ``gram_dtype``, ``check_every``).
    progress : {"auto", True, False}, default="auto"
        Progress bars on stderr (``regmtl.progress``): the pass over the rows (its chunks),
        then the path (its alphas).

    Returns
    -------
    HeldOutChoice
        The grid, the held-out scores, the constant model's, and the choice (``alpha``).

    Raises
    ------
    ValueError
        A penalty the out-of-core fit does not take, a fraction outside (0, 1), a patience
        below 1, or no task with two rows or more (none would be held out).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from regmtl import ParquetTasks
    >>> from regmtl.selection.held_out import held_out_alpha
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 4))
    >>> task = np.repeat([0, 1, 2], 100)
    >>> y = X[:, 0] - X[:, 1] + 0.5 * rng.standard_normal(300)
    >>> frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y, task=task)
    >>> frame.to_parquet("rows.parquet")
    >>> choice = held_out_alpha(ParquetTasks("rows.parquet"), "l21", alphas=10)
    >>> choice.held_out_rows.tolist(), bool(choice.alpha < choice.alpha_max)
    ([20, 20, 20], True)
    >>> choice.better_than_constant, bool(choice.r2[choice.best_index] > 0.5)
    (True, True)
    """
    fraction, seed = _check_split(fraction, seed)
    if patience is not None and (isinstance(patience, (bool, np.bool_)) or not isinstance(
            patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience={patience!r} must be an integer >= 1 (the alphas fitted "
                         "past the best before the path stops) or None (the whole grid).")
    progress = check_progress(progress)
    pen = check_streamed_penalty(make_penalty(penalty))
    pen.check(int(source.n_features), int(source.n_tasks))
    split = _Split(source, fraction, seed)
    if not split.held.any():
        raise ValueError(f"fraction={fraction:g}: no task has enough rows to hold "
                         f"{fraction:.0%} of them out; give a larger fraction, or alpha.")
    spill_dir, dtype, check_every = streamed_options(solver_options, PATH_CHECK_EVERY)
    with fit_phases(source, "held-out alpha", progress) as phases:
        stats = _one_pass(split, task_weight, spill_dir, dtype, phases)
        keep_statistics(source, task_weight, True, dtype, stats.full)  # (the refit's)
        grid, amax = _grid(stats.full, pen, alphas, eps)
        with phases.phase("path", len(grid), "alpha") as bar:
            path = _path(stats, pen, grid, tol, max_iter, check_every, patience, bar)
    K = len(path.alphas)
    if path.short:
        warnings.warn(f"{path.short} of {K} fits of the held-out path stopped short of "
                      f"tol={tol:g} on the Grams' sums after their iterations "
                      f"(max_iter={max_iter}: increase it, or loosen tol)", ConvergenceWarning,
                      stacklevel=2)
    sums = path.sums
    task_scores = sums.neg_mse(sums.sse[:K])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = np.nanmean(task_scores, axis=1)
        constant = float(np.nanmean(sums.neg_mse(sums.const)))
    if path.best is None or not np.isfinite(path.best[0]):
        raise ValueError("the held-out score is undefined (NaN) at every alpha of the grid.")
    if len(grid) > 1 and path.best[1] == len(grid) - 1:
        warnings.warn(f"alpha {grid[-1]:.4g}, the smallest of the grid, scores best on the "
                      "held-out rows: a smaller alpha may score better; extend the grid "
                      "downwards (a smaller eps, or alphas=[...] with smaller values).",
                      UserWarning, stacklevel=2)
    return HeldOutChoice(
        alphas=path.alphas, scores=scores, task_scores=task_scores, r2=sums.r2(sums.sse[:K]),
        n_active=path.n_active, converged=path.converged, best_index=path.best[1],
        alpha_max=amax, constant_score=constant, constant_r2=float(sums.r2(sums.const)),
        held_out_rows=split.held.copy(), fraction=fraction, seed=seed,
        coef=np.ascontiguousarray(path.best[2].T), intercept=path.best[3], grid=grid)


@dataclass
class _Path:
    """What :func:`_path` fitted and scored."""

    alphas: np.ndarray
    sums: _Scores
    n_active: np.ndarray
    converged: np.ndarray
    short: int
    best: tuple[float, int, np.ndarray, np.ndarray] | None  # (score, k, W, b)


def _path(stats: _Statistics, pen: Penalty, grid: np.ndarray, tol: float, max_iter: int,
          check_every: int, patience: int | None, bar: Any) -> _Path:
    """The fits of the rows not held out along ``grid`` (FISTA on their Grams, each started
    on the line through the last two fits, one step of log alpha on, certified on the
    Grams' sums to ``tol``: relative to the objective at W = 0 for a duality gap, as
    :func:`~regmtl.solvers.streamed.fit.solve_streamed`), each scored on the held-out rows
    from their moments; stopped ``patience`` alphas past the best."""
    q = stats.train
    p, T = q.g.shape
    K = len(grid)
    P0 = max(0.5 * float(q.e.sum()), np.finfo(float).tiny)
    G0_norm = float(np.linalg.norm(q.g))
    sums = _Scores(stats, K)
    n_active = np.zeros(K, dtype=np.int64)
    converged = np.ones(K, dtype=bool)
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    V, last = np.zeros((p, T)), None
    k = 0
    for k, alpha in enumerate(grid):
        use_gap = pen.has_dual and alpha > 0
        inner = tol * P0 if use_gap else tol
        start = V.copy()
        if last is not None:  # the last two fits' line, one step on (in log alpha)
            step = np.log(grid[k - 1] / alpha) / np.log(grid[k - 2] / grid[k - 1])
            start += min(max(step, 0.0), 1.0) * (V - last)
        last = V
        V, done, _, value = streamed_fista(q, pen, float(alpha), start, tol=inner,
                                           max_iter=max_iter, check_every=check_every,
                                           G0_norm=G0_norm, certify_start=k == 0)
        converged[k] = value <= inner
        b = q.intercepts(V)
        n_active[k] = int(np.count_nonzero(np.any(V != 0.0, axis=1)))
        sums.sse[k] = stats.squared_errors(V, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = float(np.nanmean(sums.neg_mse(sums.sse[k])))
        if best is None or got > best[0]:  # (ties: the larger alpha, met first)
            best = (got, k, V.copy(), b)
        bar.set_postfix_str(f"alpha {alpha:.3g}: held-out MSE {-got:.4g}, {done} "
                            "iterations", refresh=False)
        bar.update(1)
        if patience is not None and best is not None and k - best[1] >= patience:
            break
    K = k + 1
    return _Path(grid[:K].copy(), sums, n_active[:K], converged[:K],
                 int(np.count_nonzero(~converged[:K])), best)
