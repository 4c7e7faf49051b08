r"""Cross-validation folds of a multi-task problem, and the sub-problems they define.

Folds split the rows *inside every task*, so each training part holds every task and each
validation part scores every task. A shared design (one X, a target matrix Y) splits the rows of
X, the same rows for every task, so the sub-problems keep the shared layout and its fast path.

A fold is a pair of arrays of *flat* observation indices (see :class:`~regmtl.TaskData`): the
training and the validation observations.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from ..taskdata import TaskData, _as_labels, _set_weights, _task_name

__all__ = ["task_folds", "take", "flat_groups"]


def _seeds(random_state: Any, n: int) -> list[int | None]:
    """One seed per task from ``random_state`` (None gives None: unshuffled folds)."""
    if random_state is None:
        return [None] * n
    rs = random_state if isinstance(random_state, Integral) else None
    if rs is None:
        from sklearn.utils import check_random_state

        rs = int(check_random_state(random_state).randint(2**31 - 1))
    return [int(s) for s in np.random.SeedSequence(int(rs)).generate_state(n)]


def _splitter(cv: Any, n_rows: int, labels: np.ndarray | None, groups: np.ndarray | None,
              seed: int | None, name: str):
    """An sklearn splitter for one block of rows."""
    if not isinstance(cv, Integral):
        return cv
    if n_rows < cv:
        raise ValueError(f"cv={cv}: task {name} has {n_rows} sample{'' if n_rows == 1 else 's'}, "
                         f"fewer than the {cv} folds. Lower cv or remove the task.")
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < cv:
            raise ValueError(f"cv={cv}: task {name} has {n_groups} distinct groups, fewer than "
                             "the folds. Lower cv.")
        return GroupKFold(cv, shuffle=seed is not None, random_state=seed)
    if labels is not None:
        cls, counts = np.unique(labels, return_counts=True)
        k = int(counts.argmin())
        if counts[k] < cv:
            rare = cls[k].item() if isinstance(cls[k], np.generic) else cls[k]
            raise ValueError(
                f"cv={cv}: task {name} has {counts[k]} sample{'' if counts[k] == 1 else 's'} "
                f"of class {rare!r}; stratified folds need at least {cv} of each class. "
                "Lower cv, or add samples of that class."
            )
        return StratifiedKFold(cv, shuffle=seed is not None, random_state=seed)
    return KFold(cv, shuffle=seed is not None, random_state=seed)


def _fold_count(cv: int, n_rows: int, labels: np.ndarray | None) -> tuple[int, str]:
    """(folds, why) of a block of rows under the fold rule: ``min(cv, m)`` with ``m`` its
    rows (those of its rarest class when stratified), 0 (never validated) when ``m < 2``;
    ``why`` says what ``m`` counts when it is below ``cv``."""
    m, of = n_rows, ""
    if labels is not None:
        cls, counts = np.unique(labels, return_counts=True)
        k = int(counts.argmin())
        rare = cls[k].item() if isinstance(cls[k], np.generic) else cls[k]
        m, of = int(counts[k]), f" of class {rare!r}"
    if m >= cv:
        return int(cv), ""
    return (m if m >= 2 else 0), f"{m} sample{'' if m == 1 else 's'}{of}"


def _warn_small(cv: int, small: list[tuple[str, str, int]]) -> None:
    """One warning naming the tasks that get fewer folds than ``cv``."""
    parts = [f"task {name} has {why}: " + (f"{k} folds" if k else "never validated")
             for name, why, k in small[:5]]
    more = f"; and {len(small) - 5} more" if len(small) > 5 else ""
    warnings.warn(
        f"cv={cv}: {len(small)} task(s) have fewer samples than folds ({'; '.join(parts)}"
        f"{more}). A task with m < cv samples (of its rarest class, when stratified) is split "
        "into m folds, used in turn by the cv folds (so some of its rows are validated "
        "twice); one with fewer than 2 is never validated: its rows train in every fold.",
        UserWarning, stacklevel=3)


def _per_task_folds(data: TaskData, cv: Any, groups: np.ndarray | None, stratify: bool,
                    random_state: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds inside every task, the fold rule applied to an integer ``cv``."""
    T = data.n_tasks
    seeds = _seeds(random_state, T)
    per_task, small = [], []
    for t in range(T):
        a, b = data.indptr[t], data.indptr[t + 1]
        labels = _as_labels(data.raw_y[a:b]) if stratify else None
        g = None if groups is None else groups[a:b]
        k_t = cv
        if isinstance(cv, Integral):
            k_t, why = _fold_count(cv, b - a, labels)
            if why:
                small.append((_task_name(data, t), why, k_t))
            if k_t == 0:
                per_task.append([(a + np.arange(b - a), a + np.arange(0))])
                continue
        split = _splitter(k_t, b - a, labels, g, seeds[t], _task_name(data, t))
        per_task.append([(a + np.sort(tr), a + np.sort(te))
                         for tr, te in split.split(np.zeros((b - a, 1)), labels, g)])
    if small and all(k == 0 for _, _, k in small) and len(small) == T:
        name, why, _ = small[0]
        raise ValueError(f"cv={cv}: no task has 2 samples{' of each class' if stratify else ''} "
                         f"to validate on (task {name} has {why}); cross-validation needs "
                         "them in some task.")
    if small:
        _warn_small(int(cv), small)
    K = int(cv) if isinstance(cv, Integral) else len(per_task[0])
    if not isinstance(cv, Integral) and any(len(f) != K for f in per_task):
        raise ValueError("cv: the splitter gave a different number of folds for some tasks.")
    pairs = [(np.concatenate([f[k % len(f)][0] for f in per_task]),
              np.concatenate([f[k % len(f)][1] for f in per_task])) for k in range(K)]
    _check_sides(data, pairs, "", sides=("training",) if small else
                 ("validation", "training"))
    return pairs


def _indices(idx: Any, n: int, k: int, what: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.dtype.kind not in "iu" or idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"cv: fold {k} has {what} indices outside 0..{n - 1} (or none).")
    return np.unique(idx)


def _check_explicit(folds: list, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays; a train of None is the complement of test."""
    out = []
    for k, pair in enumerate(folds):
        try:
            train, test = pair
        except (TypeError, ValueError):
            raise ValueError(f"cv: fold {k} must be a (train, test) pair of row indices.") from None
        test = _indices(test, n, k, "test")
        if train is None:
            train = np.setdiff1d(np.arange(n), test)
        else:
            train = _indices(train, n, k, "train")
        if np.intersect1d(train, test).size:
            raise ValueError(f"cv: fold {k} has rows in both its train and test parts.")
        out.append((train, test))
    if len(out) < 2:
        raise ValueError("cv: give at least two (train, test) folds.")
    return out


def _check_sides(data: TaskData, folds: list[tuple[np.ndarray, np.ndarray]],
                 hint: str, sides: tuple[str, ...] = ("validation", "training")) -> None:
    T = data.n_tasks
    for k, (tr, te) in enumerate(folds):
        for what, idx in (("validation", te), ("training", tr)):
            if what not in sides:
                continue
            cnt = np.bincount(data.task_of[idx], minlength=T)
            if cnt.min() == 0:
                t = int(np.argmin(cnt))
                raise ValueError(f"cv: fold {k} has no {what} row of task "
                                 f"{_task_name(data, t)}; every fold needs rows of every "
                                 f"task on both sides. {hint}")


def task_folds(
    data: TaskData,
    cv: Any = 5,
    *,
    groups: np.ndarray | None = None,
    stratify: bool = False,
    random_state: Any = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds that split the rows inside every task.

    Each training part holds rows of every task and each validation part scores every task.
    A shared design splits the rows of X, the same rows for every task, so the sub-problems
    keep the shared layout.

    Parameters
    ----------
    data : TaskData
        The problem (:func:`~regmtl.as_task_data`).
    cv : int, splitter, or iterable of (train, test) pairs, default=5
        An integer K: K folds inside every task (``KFold``; ``StratifiedKFold`` on the labels
        when ``stratify``), shuffled with a per-task seed drawn from ``random_state`` (None:
        contiguous blocks). A task with m < K rows (m samples of its rarest class when
        stratified) is split into m folds, fold k validating its part k mod m (so some of
        its rows are validated twice); with m < 2 it is never validated, its rows train in
        every fold. A warning names such tasks. A shared design gets min(K, m) folds.
        A splitter (anything with ``split(X, y, groups)``) is applied to
        each task's rows, and its training rows are kept (``TimeSeriesSplit`` trains on the
        past only). Explicit pairs hold indices of the input rows (lists: the tasks' rows
        concatenated; long form: rows of X; shared design: rows of X, used for every task);
        a train part of None means all other rows.
    groups : ndarray of shape (n_obs,), optional
        Group of each flat observation (in flat order). With an integer ``cv`` the groups are
        dealt to K folds once for all tasks (``GroupKFold``), so a group that appears in
        several tasks (a patient, a user) is on one side of a fold in all of them.
    stratify : bool, default=False
        Keep the class proportions of each task in every fold (classification).
    random_state : int, RandomState or None, default=None
        Seeds the shuffling of every task's rows (None: contiguous folds, unshuffled).

    Returns
    -------
    list of (ndarray, ndarray)
        ``(train, validation)`` flat observation indices of each fold, sorted.

    Raises
    ------
    ValueError
        If no task has 2 samples (of each class, with ``stratify``) to validate on, the
        groups (with ``groups``) are fewer than the folds, or a fold would leave a task
        without training or validation rows (explicit folds, groups, a splitter).

    Warns
    -----
    UserWarning
        Naming the tasks with fewer rows than an integer ``cv``, and what they get.

    See Also
    --------
    regmtl.MultiTaskRegressorCV : Cross-validation on these folds.

    Examples
    --------
    Two tasks of 4 and 6 rows, two folds: every fold validates on both tasks.

    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection import task_folds
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((4, 2)), rng.standard_normal((6, 2))]
    >>> data = rm.as_task_data(Xs, [np.zeros(4), np.ones(6)])
    >>> for train, val in task_folds(data, cv=2):
    ...     print(val.tolist(), np.bincount(data.task_of[val]).tolist())
    [0, 1, 4, 5, 6] [2, 3]
    [2, 3, 7, 8, 9] [2, 3]
    """
    T = data.n_tasks
    if data.shared:
        n = data.indptr[1]
        if isinstance(cv, Iterable) and not hasattr(cv, "split"):
            pairs = _check_explicit(list(cv), n)
        else:
            labels = None
            if stratify:  # the task whose rarest class is rarest drives the strata
                obs = data.observed
                best, labels = np.inf, None
                for t in range(T):
                    if obs is not None and not obs[t * n:(t + 1) * n].all():
                        continue
                    lab = _as_labels(data.raw_y[t * n:(t + 1) * n])
                    m = np.unique(lab, return_counts=True)[1].min()
                    if m < best:
                        best, labels = m, lab
            g = None if groups is None else groups[:n]
            k = cv
            if isinstance(cv, Integral) and g is None:
                k, why = _fold_count(cv, n, labels)
                k = k if k else cv  # fewer than 2: refused below, as before
                if why and k < cv:
                    _warn_small(int(cv), [("(all rows, shared design)", why, k)])
            split = _splitter(k, n, labels, g, _seeds(random_state, 1)[0], "(all rows)")
            pairs = [(np.sort(tr), np.sort(te))
                     for tr, te in split.split(np.zeros((n, 1)), labels, g)]
        return [(np.concatenate([t * n + tr for t in range(T)]),
                 np.concatenate([t * n + te for t in range(T)])) for tr, te in pairs]

    if isinstance(cv, Iterable) and not hasattr(cv, "split"):
        pairs = _check_explicit(list(cv), data.n_obs)
        if data.order is not None:  # input rows -> flat observations
            flat_of = np.empty(data.n_obs, dtype=np.int64)
            flat_of[data.order] = np.arange(data.n_obs)
            pairs = [(np.sort(flat_of[tr]), np.sort(flat_of[te])) for tr, te in pairs]
        _check_sides(data, pairs, "")
        return pairs

    if groups is not None and isinstance(cv, Integral):
        split = _splitter(cv, data.n_obs, None, groups, _seeds(random_state, 1)[0],
                          "(all tasks)")
        pairs = [(np.sort(tr), np.sort(te))
                 for tr, te in split.split(np.zeros((data.n_obs, 1)), None, groups)]
        _check_sides(data, pairs, "Use fewer folds or check the groups.")
        return pairs

    return _per_task_folds(data, cv, groups, stratify, random_state)


def flat_groups(data: TaskData, groups: Any) -> np.ndarray:
    """Groups in flat observation order, from the input's form (one per input row, or a list per
    task for the lists form)."""
    if data.form in ("list", "dict"):
        parts = list(groups.values()) if isinstance(groups, dict) else list(groups)
        if len(parts) != data.n_tasks:
            raise ValueError(f"groups: give one array per task ({data.n_tasks}); got "
                             f"{len(parts)}.")
        g = np.concatenate([np.asarray(p).ravel() for p in parts])
    else:
        g = np.asarray(groups).ravel()
    n_in = data.n_obs if data.form in ("list", "dict") else data.n_input_rows
    if len(g) != n_in:
        raise ValueError(f"groups has {len(g)} entries but the data has {n_in} rows; give "
                         "one group per row.")
    if data.shared:
        return np.tile(g, data.n_tasks)
    return g if data.order is None else g[data.order]


def take(data: TaskData, flat: np.ndarray, task_weight: Any = "equal",
         encode: bool = False, fit: bool = True) -> TaskData:
    """The sub-problem on the flat observations ``flat`` (sorted, grouped by task).

    With a shared design ``flat`` must select the same rows of X in every task. For fitting
    (``fit``) the row weights are recomputed (``task_weight`` of the fit) and labels
    re-encoded when ``encode``; otherwise (scoring) the encoded targets are taken as they are.
    """
    flat = np.asarray(flat, dtype=np.int64)
    T = data.n_tasks
    if data.shared:
        n = data.indptr[1]
        rows = flat[flat < n]
        X = data.X[rows]
        indptr = np.arange(T + 1, dtype=np.int64) * len(rows)
    else:
        X = data.X[flat]
        counts = np.bincount(data.task_of[flat], minlength=T)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if not hasattr(X, "tocsc"):
        X = np.asfortranarray(X)
    else:
        X = X.tocsc()
    sub = TaskData(
        X=X, indptr=indptr, task_index=data.task_index.copy(), tasks=data.tasks,
        shared=data.shared, form=data.form,
        raw_y=None if data.raw_y is None else data.raw_y[flat],
        observed=None if data.observed is None else data.observed[flat],
        sample_weight=None if data.sample_weight is None else data.sample_weight[flat],
        classes=data.classes,
        n_input_rows=len(flat) if not data.shared else indptr[1],
    )
    if sub.observed is not None and sub.observed.all():
        sub.observed = None
    if not fit:
        sub.y = None if data.y is None else data.y[flat]
    elif sub.raw_y is not None:
        _set_weights(sub, task_weight)
        if encode:
            sub.encode_binary()
    return sub
