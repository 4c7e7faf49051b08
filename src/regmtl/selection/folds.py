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
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from ..taskdata import TaskData, as_labels, set_weights, task_name, task_weights

__all__ = ["task_folds", "take", "flat_groups"]


def _stratified(stratify: Any, t: int) -> bool:
    """Whether task t is stratified (``stratify``: one bool, or one per task)."""
    return bool(stratify if np.ndim(stratify) == 0 else stratify[t])


def _check_cv(cv: Any) -> Any:
    """``cv`` as :func:`task_folds` reads it: None is 5 folds (as ``check_cv``); an integer
    must be at least 2; anything else must be a splitter or an iterable of pairs."""
    if cv is None:
        return 5
    if isinstance(cv, bool | str | bytes) or (
            not isinstance(cv, Integral) and not hasattr(cv, "split") and (
                isinstance(cv, Real) or not isinstance(cv, Iterable))):
        raise TypeError(f"cv={cv!r}: give an integer number of folds (>= 2), a splitter with "
                        "split(X, y, groups), or an iterable of (train, test) index pairs.")
    if isinstance(cv, Integral) and cv < 2:
        raise ValueError(f"cv={cv}: cross-validation needs at least 2 folds; give cv >= 2.")
    return int(cv) if isinstance(cv, Integral) else cv


def _too_many_folds(cv: int, m_t: np.ndarray, names, stratify: Any) -> None:
    """Refuse an integer ``cv`` larger than every task's count ``m_t`` (its rows; its rarest
    class's when stratified): no task could be split into cv folds, as ``KFold`` refuses
    ``n_splits > n_samples``. (With some task reaching cv, the smaller ones get the fold
    rule of :func:`task_folds`.)"""
    if len(m_t) == 0 or int(m_t.max()) >= cv:
        return
    t, big = int(np.argmin(m_t)), int(m_t.max())
    of = " of its rarest class" if np.any(stratify) else ""
    raise ValueError(
        f"cv={cv} is larger than every task's number of samples{of}: the smallest, task "
        f"{names(t)}, has {int(m_t[t])} and the largest has {big}, so no task can be split "
        f"into {cv} folds. Give cv <= {big}.")


def _seeds(random_state: Any, n: int) -> list[int | None]:
    """One seed per task from ``random_state`` (None gives None: unshuffled folds)."""
    seed = fold_seed(random_state)
    if seed is None:
        return [None] * n
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


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


def _warn_small(cv: int, small: list[tuple[str, str, int]], n_small: int | None = None,
                stacklevel: int = 3) -> None:
    """One warning naming the tasks that get fewer folds than ``cv`` (the first five of
    ``small``; ``n_small`` of them in all, ``len(small)`` when None)."""
    n_small = len(small) if n_small is None else n_small
    parts = [f"task {name} has {why}: " + (f"{k} folds" if k else "never validated")
             for name, why, k in small[:5]]
    more = f"; and {n_small - 5} more" if n_small > 5 else ""
    warnings.warn(
        f"cv={cv}: {n_small} task(s) have fewer samples than folds ({'; '.join(parts)}"
        f"{more}). A task with m < cv samples (of its rarest class, when stratified) is split "
        "into m folds, used in turn by the cv folds (so some of its rows are validated "
        "twice); one with fewer than 2 is never validated: its rows train in every fold.",
        UserWarning, stacklevel=stacklevel)


def _per_task_folds(data: TaskData, cv: Any, groups: np.ndarray | None, stratify: Any,
                    random_state: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds inside every task, the fold rule applied to an integer ``cv``."""
    if isinstance(cv, Integral) and groups is None:
        return _vectorized_folds(data, int(cv), stratify, random_state)
    T = data.n_tasks
    seeds = _seeds(random_state, T)
    per_task = []
    for t in range(T):  # a splitter object: applied to each task's rows in turn
        a, b = data.indptr[t], data.indptr[t + 1]
        labels = as_labels(data.raw_y[a:b]) if _stratified(stratify, t) else None
        g = None if groups is None else groups[a:b]
        split = _splitter(cv, b - a, labels, g, seeds[t], task_name(data, t))
        try:
            per_task.append([(a + np.sort(tr), a + np.sort(te))
                             for tr, te in split.split(np.zeros((b - a, 1)), labels, g)])
        except ValueError as e:  # e.g. KFold(n_splits) on a task with fewer rows
            raise ValueError(f"cv={cv!r} cannot split task {task_name(data, t)} ({b - a} "
                             f"row{'' if b - a == 1 else 's'}): {e} Use a splitter every "
                             "task can take, or an integer cv (the fold rule).") from None
    counts = np.array([len(f) for f in per_task])
    K = int(counts[0])
    if (counts != K).any() or K < 2:
        t = int(np.flatnonzero(counts != K)[0]) if (counts != K).any() else 0
        raise ValueError(f"cv={cv!r} gave {K} fold(s) on task {task_name(data, 0)} and "
                         f"{counts[t]} on task {task_name(data, t)}; every task needs the "
                         "same number of folds, at least 2.")
    pairs = [(np.concatenate([f[k][0] for f in per_task]),
              np.concatenate([f[k][1] for f in per_task])) for k in range(K)]
    _check_sides(data, pairs, "")
    return pairs


def _class_codes(data: TaskData) -> np.ndarray:
    """An integer class code per flat observation that tells each task's classes apart."""
    y = data.raw_y
    try:
        return np.unique(y, return_inverse=True)[1].ravel().astype(np.int64)
    except TypeError:  # labels of different types in different tasks: codes task by task
        codes = np.empty(data.n_obs, dtype=np.int64)
        for t in range(data.n_tasks):  # only for such mixed labels
            a, b = data.indptr[t], data.indptr[t + 1]
            codes[a:b] = np.unique(as_labels(y[a:b]), return_inverse=True)[1].ravel()
        return codes


def _rank_in_group(group: np.ndarray, key: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each entry within its group in the order of ``key`` (its position when None),
    group sizes); ``group`` holds integer ids 0..G-1."""
    n = len(group)
    order = np.argsort(group, kind="stable") if key is None else np.lexsort((key, group))
    size = np.bincount(group)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start[group[order]]
    return rank, size


def _vectorized_folds(data: TaskData, cv: int, stratify: Any,
                      random_state: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold inside every task for an integer ``cv``, all tasks at once (no loop over tasks).

    Task t gets ``K_t = min(cv, m_t)`` parts (the fold rule, :func:`_fold_count`). Its rows
    are ranked, in their order (``random_state=None``) or in the order of one random key per
    row drawn from ``random_state`` (a random permutation within every task), then dealt:

    - plain: contiguous runs of the ranks, the first ``n_t mod K_t`` parts one row longer
      (``KFold``'s sizes; unshuffled, exactly ``KFold``'s parts);
    - stratified: ranked by class (in order of first appearance) then key, position ``j`` is
      dealt to part ``j mod K_t`` (``StratifiedKFold``'s counts of every class in every part),
      and each class's rows take their parts in increasing order (unshuffled, exactly
      ``StratifiedKFold``'s parts).

    With a seed the parts differ from those of scikit-learn's splitters per task (one
    permutation per task from one generator, not one seeded splitter per task); every task
    still gets each part as evenly as possible. Fold k validates part ``k mod K_t``.
    """
    part, K_row, m_t, K_t = fold_parts(data, cv, stratify, fold_keys(
        fold_seed(random_state), data.n_obs))
    T = data.n_tasks
    small = np.flatnonzero(m_t < cv)
    if len(small) == T and not np.any(K_t):
        t = int(small[0])
        raise ValueError(f"cv={cv}: no task has 2 samples"
                         f"{' of each class' if np.any(stratify) else ''} "
                         f"to validate on (task {task_name(data, t)} has "
                         f"{_fold_count_why(data, t, m_t[t], _stratified(stratify, t))}); "
                         "cross-validation "
                         "needs them in some task.")
    _too_many_folds(cv, m_t, lambda t: task_name(data, t), stratify)
    if len(small):
        _warn_small(cv, [(task_name(data, t),
                          _fold_count_why(data, t, m_t[t], _stratified(stratify, t)),
                          int(K_t[t])) for t in small[:5]], len(small), stacklevel=5)
    pairs = []
    for k in range(cv):  # fold k validates part k mod K_t of every task with K_t > 0
        val = (K_row > 0) & (part == k % np.maximum(K_row, 1))
        pairs.append((np.flatnonzero(~val), np.flatnonzero(val)))
    _check_sides(data, pairs, "", sides=("training",) if len(small) else
                 ("validation", "training"))
    return pairs


def fold_seed(random_state: Any) -> int | None:
    """The integer seed of the rows' random keys (None: unshuffled folds)."""
    if random_state is None or isinstance(random_state, Integral):
        return random_state
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(2**31 - 1))


def fold_keys(seed: int | None, n: int, offset: int = 0) -> np.ndarray | None:
    """The random keys of flat observations ``offset .. offset + n - 1`` (one uniform per
    observation from one PCG64 stream seeded by ``seed``, advanced to ``offset``: any run of
    observations gets its keys without drawing the others'); None without a seed."""
    if seed is None:
        return None
    bits = np.random.PCG64(int(seed))
    bits.advance(int(offset))
    return np.random.Generator(bits).random(n)


def fold_parts(data: TaskData, cv: int, stratify: Any, key: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fold rule on every task at once (see :func:`_vectorized_folds`): the part of every
    row, the parts ``K_t`` of its task (per row), and per task the count ``m_t`` the rule
    reads and ``K_t``. Task by task: a block of whole tasks gets the parts of its rows."""
    T = data.n_tasks
    task = data.task_of
    n_t = np.diff(data.indptr).astype(np.int64)
    if np.any(stratify):
        codes = _class_codes(data)
        if np.ndim(stratify):  # the tasks not stratified: one class each (plain K-fold)
            codes = np.where(np.asarray(stratify, dtype=bool)[task], codes, 0)
        # groups (task, class), numbered by task then first appearance of the class
        pair = task * (int(codes.max()) + 1 if len(codes) else 1) + codes
        uniq, first, inv = np.unique(pair, return_index=True, return_inverse=True)
        g_task = task[first]
        g_order = np.lexsort((first, g_task))
        g_id = np.empty(len(uniq), dtype=np.int64)
        g_id[g_order] = np.arange(len(uniq))
        group = g_id[inv.ravel()]
        g_task = g_task[g_order]
        rank, g_size = _rank_in_group(group, key)  # rank within the class of the task
        m_t = np.full(T, np.iinfo(np.int64).max)
        np.minimum.at(m_t, g_task, g_size)
        m_t[n_t == 0] = 0
    else:
        rank, _ = _rank_in_group(task, key)
        m_t = n_t
    K_t = np.where(m_t >= cv, cv, np.where(m_t >= 2, m_t, 0))
    K_row = K_t[task]
    if np.any(stratify):
        # class c of task t starts at position off (its earlier classes' rows): part i gets
        # q + [(i - off) mod K < rem] of its rows (q, rem = divmod(size, K)), taken in order
        g_K = np.maximum(K_t[g_task], 1)
        g_off = np.concatenate([[0], np.cumsum(g_size)[:-1]])
        g_off -= np.concatenate([[0], np.cumsum(n_t)[:-1]])[g_task]
        q, rem = np.divmod(g_size, g_K)
        i = np.arange(cv)
        count = q[:, None] + ((i[None, :] - g_off[:, None]) % g_K[:, None] < rem[:, None])
        count[i[None, :] >= g_K[:, None]] = 0
        ends = np.cumsum(count, axis=1)
        part = np.zeros(data.n_obs, dtype=np.int64)
        for j in range(cv - 1):  # cv columns: the parts whose run ends at or before the rank
            part += ends[group, j] <= rank
    else:
        K_safe = np.maximum(K_row, 1)
        size, extra = np.divmod(n_t[task], K_safe)
        long_rows = extra * (size + 1)
        part = np.where(rank < long_rows, rank // (size + 1),
                        extra + (rank - long_rows) // np.maximum(size, 1))
    return part, K_row, m_t, K_t


def _fold_count_why(data: TaskData, t: int, m: int, stratify: bool) -> str:
    """What ``m`` counts for task t (as :func:`_fold_count` says it), for the messages."""
    if not stratify:
        return f"{m} sample{'' if m == 1 else 's'}"
    a, b = data.indptr[t], data.indptr[t + 1]
    return _fold_count(np.iinfo(np.int64).max, b - a, as_labels(data.raw_y[a:b]))[1]


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
                                 f"{task_name(data, t)}; every fold needs rows of every "
                                 f"task on both sides. {hint}")


def task_folds(
    data: TaskData,
    cv: Any = 5,
    *,
    groups: np.ndarray | None = None,
    stratify: bool | np.ndarray = False,
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
    cv : int, splitter, iterable of (train, test) pairs, or None, default=5
        An integer K: K folds inside every task, built for all tasks at once: each task's
        rows are ranked (in order with ``random_state=None``, else by one random key per row
        from ``random_state``: a random permutation within every task) and dealt as
        ``KFold`` deals them (contiguous runs of ranks, sizes differing by at most one) or,
        with ``stratify``, as ``StratifiedKFold`` does (every class spread evenly over the
        folds). Unshuffled, the folds are exactly those of ``KFold`` / ``StratifiedKFold``
        per task; shuffled, they differ from those of earlier versions (which seeded one
        splitter per task) but are as even and deterministic for a fixed ``random_state``.
        A task with m < K rows (m samples of its rarest class when stratified) is split
        into m folds, fold k validating its part k mod m (so some of
        its rows are validated twice); with m < 2 it is never validated, its rows train in
        every fold. A warning names such tasks. Why not refuse such a task: dropping it
        would change the coupled problem being tuned (it still pulls on the shared
        structure), refusing would forbid CV on data with a few tiny tasks; so it trains in
        every fold, is never scored (NaN in the per-task scores) and is named. A K larger
        than every task's m is refused (no task could give K folds, as ``KFold`` refuses
        ``n_splits > n_samples``). A shared design gets min(K, m) folds. None means 5.
        A splitter (anything with ``split(X, y, groups)``) is applied to
        each task's rows, and its training rows are kept (``TimeSeriesSplit`` trains on the
        past only). Explicit pairs hold indices of the input rows (lists: the tasks' rows
        concatenated; long form: rows of X; shared design: rows of X, used for every task);
        a train part of None means all other rows.
    groups : ndarray of shape (n_obs,), optional
        Group of each flat observation (in flat order). With an integer ``cv`` the groups are
        dealt to K folds once for all tasks (``GroupKFold``), so a group that appears in
        several tasks (a patient, a user) is on one side of a fold in all of them.
    stratify : bool or array-like of bool of shape (T,), default=False
        Keep the class proportions of each task in every fold (classification); one bool
        per task stratifies those tasks only (the binary tasks of a fit with one loss per
        task), the others are split as without it.
    random_state : int, RandomState or None, default=None
        Seeds the shuffling of every task's rows (None: contiguous folds, unshuffled).

    Returns
    -------
    list of (ndarray, ndarray)
        ``(train, validation)`` flat observation indices of each fold, sorted.

    Raises
    ------
    ValueError
        If an integer ``cv`` is below 2 or larger than every task's number of samples (of its
        rarest class, with ``stratify``), no task has 2 samples to validate on, the groups
        (with ``groups``) are fewer than the folds, a splitter cannot split a task or gives
        tasks different numbers of folds, or a fold would leave a task without training or
        validation rows (explicit folds, groups, a splitter).
    TypeError
        If ``cv`` is not an integer, a splitter or an iterable of pairs (a float, a string).

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
    cv = _check_cv(cv)
    if np.ndim(stratify):
        stratify = np.asarray(stratify, dtype=bool).ravel()
        if len(stratify) != data.n_tasks:
            raise ValueError(f"stratify: give one bool per task ({data.n_tasks}); got "
                             f"{len(stratify)}.")
        stratify = bool(stratify[0]) if stratify.all() or not stratify.any() else stratify
    if not data.rows_local:
        return _block_folds(data, cv, groups, bool(np.any(stratify)), random_state)
    T = data.n_tasks
    if data.shared:
        n = data.indptr[1]
        if isinstance(cv, Iterable) and not hasattr(cv, "split"):
            pairs = _check_explicit(list(cv), n)
        else:
            labels = None
            if np.any(stratify):  # the task whose rarest class is rarest drives the strata
                obs = data.observed
                best, labels = np.inf, None
                for t in range(T):
                    if not _stratified(stratify, t) or (
                            obs is not None and not obs[t * n:(t + 1) * n].all()):
                        continue
                    lab = as_labels(data.raw_y[t * n:(t + 1) * n])
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
    if not data.rows_local:
        raise ValueError(_NO_GROUPS)
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
    if isinstance(flat, BlockSide):
        return flat.take(data, task_weight, encode, fit)
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
        set_weights(sub, task_weight)
        if encode:
            sub.encode_binary()
    return sub


# ----------------------------------------------------------------------------- task blocks
_NO_GROUPS = ("groups: group folds are not available on Dask input (a group may span task "
              "blocks); fit without groups, or in memory.")


class BlockFolds:
    """Integer-``cv`` folds of a problem held as task blocks (on Dask workers).

    The fold rule works task by task and every block knows the flat positions of its rows
    (``starts``: each task's first), so each block deals its own rows, with the keys the
    in-memory folds draw for them (:func:`fold_keys`): the folds are exactly those of the
    same rows in memory, and nothing per row is stored or sent. ``val_rows[k, t]``: rows of
    task t validated in fold k."""

    def __init__(self, cv: int, stratify: bool, seed: int | None, starts: np.ndarray,
                 task_rows: np.ndarray, val_rows: np.ndarray):
        self.cv, self.stratify, self.seed = cv, stratify, seed
        self.starts, self.task_rows, self.val_rows = starts, task_rows, val_rows

    def pairs(self) -> list[tuple[BlockSide, BlockSide]]:
        return [(BlockSide(self, k, True), BlockSide(self, k, False)) for k in range(self.cv)]


class BlockSide:
    """The training or validation side of fold ``k`` of :class:`BlockFolds`; :func:`take`
    builds its sub-problem on the blocks."""

    def __init__(self, folds: BlockFolds, k: int, train: bool):
        self.folds, self.k, self.train = folds, k, train

    def rows_per_task(self) -> np.ndarray:
        val = self.folds.val_rows[self.k]
        return self.folds.task_rows - val if self.train else val

    def take(self, data: Any, task_weight: Any, encode: bool, fit: bool) -> Any:
        f, n_t = self.folds, self.rows_per_task()
        # the task weights from the side's rows of every task (as in memory, not per block)
        omega = task_weights(task_weight, n_t.astype(np.float64)) if fit else np.ones(len(n_t))
        blocks = data.blockwise(_block_take, f.cv, f.stratify, f.seed, f.starts, self.k,
                                self.train, omega, encode, fit, out="object")
        return data.with_blocks(data.settle(blocks)[0].items, n_t)


def _block_folds(data: Any, cv: Any, groups: Any, stratify: bool,
                 random_state: Any) -> list[tuple[BlockSide, BlockSide]]:
    """:func:`task_folds` of a problem held as task blocks: integer ``cv`` inside every task,
    the folds of the same rows in memory (same seed, same parts), the same warnings."""
    if groups is not None:
        raise ValueError(_NO_GROUPS)
    if not isinstance(cv, Integral):
        raise ValueError(f"cv={cv!r}: on Dask input give an integer number of folds (a "
                         "splitter or explicit indices need the rows in one place).")
    cv = int(cv)
    if cv < 2:
        raise ValueError(f"cv={cv}: cross-validation needs at least 2 folds.")
    T = data.n_tasks
    n_t = np.asarray(data.task_rows, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n_t)[:-1]])
    seed = fold_seed(random_state)
    val, m_t = data.arrays(*data.blockwise(_block_fold_counts, cv, stratify, seed, starts,
                                           out=[("coef", cv), "tasks"]))
    m_t = m_t.astype(np.int64)
    K_t = np.where(m_t >= cv, cv, np.where(m_t >= 2, m_t, 0))
    small = np.flatnonzero(m_t < cv)

    def why(t: int) -> str:
        m = int(m_t[t])
        return f"{m} sample{'' if m == 1 else 's'}" + (" of a class" if stratify else "")

    if len(small) == T and not np.any(K_t):
        raise ValueError(f"cv={cv}: no task has 2 samples{' of each class' if stratify else ''} "
                         f"to validate on (task {data.tasks[small[0]]!r} has "
                         f"{why(int(small[0]))}); cross-validation needs them in some task.")
    _too_many_folds(cv, m_t, lambda t: repr(data.tasks[t]), stratify)
    if len(small):
        _warn_small(cv, [(repr(data.tasks[t]), why(int(t)), int(K_t[t])) for t in small[:5]],
                    len(small), stacklevel=5)
    return BlockFolds(cv, stratify, seed, starts, n_t,
                      np.rint(val).astype(np.int64)).pairs()


def _block_parts(block: TaskData, cv: int, stratify: bool, seed: int | None,
                 starts: np.ndarray):
    return fold_parts(block, cv, stratify, fold_keys(seed, block.n_obs, int(starts[0])))


def _block_fold_counts(block: TaskData, cv: int, stratify: bool, seed: int | None,
                       starts: np.ndarray):
    part, K_row, m_t, _ = _block_parts(block, cv, stratify, seed, starts)
    counts = np.zeros((cv, block.n_tasks))
    for k in range(cv):  # (cv passes over the block's rows)
        val = (K_row > 0) & (part == k % np.maximum(K_row, 1))
        counts[k] = np.bincount(block.task_of[val], minlength=block.n_tasks)
    return counts, m_t.astype(np.float64)


def _block_take(block: TaskData, cv: int, stratify: bool, seed: int | None,
                starts: np.ndarray, k: int, train: bool, omega: np.ndarray, encode: bool,
                fit: bool) -> TaskData:
    part, K_row, _, _ = _block_parts(block, cv, stratify, seed, starts)
    val = (K_row > 0) & (part == k % np.maximum(K_row, 1))
    return take(block, np.flatnonzero(~val if train else val), omega, encode=encode, fit=fit)
