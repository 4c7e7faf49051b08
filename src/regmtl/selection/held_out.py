r"""``alpha`` chosen on held-out rows of a task source read chunk by chunk (out of core).

Cross-validation refits every fold on all but a part of the rows; out of core, where each fit
is a few passes over data larger than memory, one split is what is affordable. A fixed
fraction of each task's rows is held out (:func:`held_out_mask`: the rows with the smallest
values of a hash of their row number and a seed, so the split does not depend on how the
rows are read in chunks), the path of :class:`~regmtl.MultiTaskRegressor` fits on the other
rows is computed out of core along a decreasing grid, warm-started, and each fit is scored on
the held-out rows, read chunk by chunk (:func:`held_out_alpha`). Memory: one chunk of rows,
the model's p x T coefficients, a few arrays of T numbers, and a batch of the path's
coefficients no larger than a chunk of rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..estimators import MultiTaskRegressor
from ..out_of_core import source_alpha_max
from ..penalties import Penalty, make_penalty
from ..progress import progress_bar
from ..solvers.streamed.fit import check_streamed_penalty, source_quadratic
from ..taskdata import TaskData, task_weights
from .path import alpha_grid, check_alphas

__all__ = ["HeldOutChoice", "held_out_alpha", "held_out_mask", "held_out_counts"]

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


def _rows(block: TaskData, keep: np.ndarray, sizes: np.ndarray) -> TaskData:
    """The rows ``keep`` (ascending) of a chunk, its tasks all kept (``sizes`` rows each)."""
    indptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    y = np.asarray(block.y)[keep]
    X = np.empty((len(keep), block.X.shape[1]), order="F")
    np.take(block.X, keep, axis=0, out=X)
    return TaskData(X=X, indptr=indptr,
                    task_index=np.arange(len(sizes), dtype=np.int64), tasks=block.tasks,
                    shared=False, form="long", y=y, raw_y=y,
                    order=np.arange(len(keep), dtype=np.int64), n_input_rows=len(keep))


class _TrainingRows:
    """A task source of the rows a split does not hold out: what the path is fitted on
    (the row weights those of the problem on these rows, ``omega_t / (n_t - h_t)``)."""

    def __init__(self, split: _Split):
        source = split.source
        self._split = split
        self.n_tasks, self.n_features = int(source.n_tasks), int(source.n_features)
        self.tasks = source.tasks
        self.task_rows = split.train_rows
        self.n_obs = int(self.task_rows.sum())
        self.target = getattr(source, "target", "y")
        self.feature_names = getattr(source, "feature_names", None)
        self.progress = False  # (no bar per fit: the path has one)

    def chunks(self, *, task_weight: Any = "equal", target: str | None = None
               ) -> Iterator[tuple[int, int, TaskData]]:
        omega = task_weights(task_weight, self.task_rows.astype(np.float64))
        for lo, hi, block, held in self._split.chunks(target=target):
            sizes = self.task_rows[lo:hi]
            data = _rows(block, np.flatnonzero(~held), sizes)
            data.c = np.repeat(omega[lo:hi] / sizes, sizes)
            yield lo, hi, data


@dataclass
class HeldOutChoice:
    """The path scored on held-out rows and the ``alpha`` it chooses, as
    :func:`held_out_alpha` returns them. Entry k of every path array belongs to
    ``alphas[k]``.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        The grid, decreasing.
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
        Whether every fit of the path met ``tol``.
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

    @property
    def alpha(self) -> float:
        """The chosen alpha."""
        return float(self.alphas[self.best_index])

    @property
    def better_than_constant(self) -> bool:
        """Whether the chosen fit uses a feature and scores above the constant model."""
        k = self.best_index
        return bool(self.n_active[k] > 0 and self.scores[k] > self.constant_score)


class _Scores:
    """Per-task sums over the held-out rows, gathered chunk by chunk."""

    def __init__(self, T: int, n_alphas: int):
        self.sse = np.zeros((n_alphas, T))
        self.n = np.zeros(T)
        self.sst = np.zeros(T)
        self.const = np.zeros(T)

    def facts(self, lo: int, hi: int, block: TaskData, held: np.ndarray) -> None:
        """The held-out counts, sums of squares around their mean, and the constant
        model's squared errors (each task's mean of its rows in the fit)."""
        task = block.task_of
        y = np.asarray(block.y)
        k = hi - lo
        n_h = np.bincount(task[held], minlength=k).astype(np.float64)
        n_f = np.bincount(task[~held], minlength=k).astype(np.float64)
        mean_h = np.bincount(task[held], y[held], minlength=k) / np.maximum(n_h, 1.0)
        mean_f = np.bincount(task[~held], y[~held], minlength=k) / np.maximum(n_f, 1.0)
        self.n[lo:hi] = n_h
        self.sst[lo:hi] = np.bincount(task[held], (y[held] - mean_h[task[held]]) ** 2,
                                      minlength=k)
        self.const[lo:hi] = np.bincount(task[held], (y[held] - mean_f[task[held]]) ** 2,
                                        minlength=k)

    def add(self, k0: int, lo: int, hi: int, val: TaskData, W: list, b: list) -> None:
        """The squared errors of the fits ``k0, k0 + 1, ...`` on a chunk's held-out rows."""
        task = val.task_of
        for i, (Wk, bk) in enumerate(zip(W, b, strict=True)):
            f = val.linear(Wk[:, lo:hi], bk[lo:hi])
            self.sse[k0 + i, lo:hi] = np.bincount(task, (val.y - f) ** 2, minlength=hi - lo)

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


def _grid(source: Any, q: Any, penalty: Penalty, spec: Any, eps: float | None,
          task_weight: Any) -> tuple[np.ndarray, float | None]:
    """The grid of :func:`~regmtl.selection.path_alphas` on all the source's rows: from
    ``alpha_max`` down to ``eps alpha_max`` (1e-3), or for a penalty without one from
    ``100 s`` down to ``eps 100 s`` (1e-6), ``s`` the mean centered curvature of the data
    term in one coefficient (:func:`~regmtl.selection.alpha_scale`, from the statistics);
    ``alpha_max`` too (None without one)."""
    try:
        amax: float | None = source_alpha_max(source, penalty, True, task_weight)
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
                   solver_options: dict | None = None, progress: bool | str = "auto"
                   ) -> HeldOutChoice:
    r"""Choose ``alpha`` of an out-of-core :class:`~regmtl.MultiTaskRegressor` fit by its
    error on held-out rows.

    ``fraction`` of each task's rows are held out (:func:`held_out_mask`: deterministic,
    from the row numbers and ``seed``). For each ``alpha`` of a decreasing grid, the squared
    loss plus ``penalty`` is fitted out of core on the other rows (warm-started from the
    previous fit, certified to ``tol`` as every out-of-core fit), and scored on the held-out
    rows, read chunk by chunk. The choice maximizes the score of the in-memory
    cross-validation's default, minus the held-out mean squared error averaged over tasks:

    .. math::

        \hat\alpha = \arg\min_{\alpha} \frac{1}{|\mathcal T_h|} \sum_{t \in \mathcal T_h}
        \frac{1}{h_t} \sum_{r \in H_t} (y_r - x_r^\top \hat w_t(\alpha) - \hat b_t(\alpha))^2,

    with :math:`H_t` task t's :math:`h_t` held-out rows, :math:`\mathcal T_h` the tasks that
    hold rows out and :math:`(\hat W, \hat b)(\alpha)` the fit on the other rows; of equal
    scores, the largest alpha. Refit on all the rows at ``alpha`` afterwards (the fits of
    all the rows reuse the statistics pass made here for ``alpha_max``).

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
    solver_options : dict, optional
        Of the out-of-core fits (``spill_dir``, ``gram_dtype``, ``check_every``).
    progress : {"auto", True, False}, default="auto"
        A progress bar on stderr over the path's fits (``regmtl.progress``).

    Returns
    -------
    HeldOutChoice
        The grid, the held-out scores, the constant model's, and the choice (``alpha``).

    Raises
    ------
    ValueError
        A penalty the out-of-core fit does not take, a fraction outside (0, 1), or no task
        with two rows or more (none would be held out).

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
    pen = check_streamed_penalty(make_penalty(penalty))
    pen.check(int(source.n_features), int(source.n_tasks))
    split = _Split(source, fraction, seed)
    if not split.held.any():
        raise ValueError(f"fraction={fraction:g}: no task has enough rows to hold "
                         f"{fraction:.0%} of them out; give a larger fraction, or alpha.")
    options = dict(solver_options or {})
    # the statistics of all the rows (alpha_max, and the refit's), spilled where asked
    q = source_quadratic(source, task_weight, True, options.get("spill_dir"),
                         options.get("gram_dtype", np.float32))
    grid, amax = _grid(source, q, pen, alphas, eps, task_weight)
    train = _TrainingRows(split)
    model = MultiTaskRegressor(penalty=penalty, alpha=float(grid[0]), task_weight=task_weight,
                               tol=tol, max_iter=max_iter, warm_start=True,
                               solver_options=options or None)
    T, K = int(source.n_tasks), len(grid)
    # the path's coefficients scored a batch at a time, a batch no larger than a chunk
    batch = max(1, min(K, int(getattr(source, "chunk_rows", 2_000_000)) // max(T, 1)))
    sums = _Scores(T, K)
    n_active = np.zeros(K, dtype=np.int64)
    converged = np.ones(K, dtype=bool)
    short: list[str] = []
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None  # (score, k, W, b)

    def score(k0: int) -> None:
        """One pass over the held-out rows for the pending fits ``k0, k0 + 1, ...``."""
        nonlocal best
        Ws = [W for W, _ in pending]
        bs = [b for _, b in pending]
        for lo, hi, block, held in split.chunks(task_weight=task_weight):
            if k0 == 0:
                sums.facts(lo, hi, block, held)
            val = _rows(block, np.flatnonzero(held), split.held[lo:hi])
            sums.add(k0, lo, hi, val, Ws, bs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = np.nanmean(sums.neg_mse(sums.sse[k0:k0 + len(pending)]), axis=1)
        for i, (W, b) in enumerate(pending):
            if best is None or got[i] > best[0]:  # (ties: the larger alpha, met first)
                best = (float(got[i]), k0 + i, W, b)
        pending.clear()

    with progress_bar(K, progress, "held-out path", unit="alpha") as bar:
        for k, alpha in enumerate(grid):
            model.set_params(alpha=float(alpha))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model.fit(train)
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    converged[k] = False
                    short.append(str(w.message))
                else:
                    warnings.warn(w.message, w.category, stacklevel=2)
            W = np.ascontiguousarray(model.coef_.T)
            b = np.asarray(model.intercept_, dtype=np.float64).copy()
            n_active[k] = int(np.count_nonzero(np.any(W != 0.0, axis=1)))
            pending.append((W, b))
            if len(pending) == batch or k == K - 1:
                score(k + 1 - len(pending))
            bar.update(1)
    if short:
        warnings.warn(f"{len(short)} of {K} fits of the held-out path stopped short of "
                      f"tol={tol:g} (first: {short[0]})", ConvergenceWarning, stacklevel=2)
    task_scores = sums.neg_mse(sums.sse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scores = np.nanmean(task_scores, axis=1)
        constant = float(np.nanmean(sums.neg_mse(sums.const)))
    if best is None or not np.isfinite(best[0]):
        raise ValueError("the held-out score is undefined (NaN) at every alpha of the grid.")
    return HeldOutChoice(
        alphas=grid, scores=scores, task_scores=task_scores, r2=sums.r2(sums.sse),
        n_active=n_active, converged=converged, best_index=best[1], alpha_max=amax,
        constant_score=constant, constant_r2=float(sums.r2(sums.const)),
        held_out_rows=split.held.copy(), fraction=fraction, seed=seed,
        coef=np.ascontiguousarray(best[2].T), intercept=best[3])
