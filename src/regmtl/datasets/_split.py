"""Per-task train/test splitting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["train_test_split_per_task", "apply_split"]


def train_test_split_per_task(
    Xs: Sequence[Any],
    ys: Sequence[Any],
    test_size: float | int = 0.25,
    random_state: int | None = 0,
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Split every task into train and test rows, so both parts hold every task.

    ``test_size`` is read per task as in ``sklearn.model_selection.train_test_split``
    (a fraction, rounded up, or a count). Each task gets its own seed drawn from
    ``random_state``, so the same ``random_state`` gives the same split.

    Parameters
    ----------
    Xs : sequence of array-like, sparse matrix or DataFrame
        The designs, one per task.
    ys : sequence of array-like
        The targets, one per task.
    test_size : float or int, default=0.25
        Fraction (in (0, 1)) or number of each task's rows that go to the test part.
    random_state : int or None, default=0
        Seeds the per-task draws.

    Returns
    -------
    Xs_train : list
        The training rows of each task's design.
    Xs_test : list
        The test rows of each task's design.
    ys_train : list
        The training targets of each task.
    ys_test : list
        The test targets of each task.

    Raises
    ------
    ValueError
        If ``Xs`` and ``ys`` differ in number of tasks, or a task is too small for
        ``test_size``.

    See Also
    --------
    apply_split : Cuts the tasks by a fixed split instead.

    Examples
    --------
    >>> from regmtl.datasets import make_multitask_regression, train_test_split_per_task
    >>> data = make_multitask_regression(2, [8, 5], 3, n_informative=2, random_state=0)
    >>> Xtr, Xte, ytr, yte = train_test_split_per_task(data.X, data.y, test_size=0.25)
    >>> [len(y) for y in ytr], [len(y) for y in yte]
    ([6, 3], [2, 2])
    """
    if len(Xs) != len(ys):
        raise ValueError(f"Xs has {len(Xs)} tasks but ys has {len(ys)}")
    seeds = np.random.SeedSequence(random_state).generate_state(len(Xs))
    Xtr, Xte, ytr, yte = [], [], [], []
    for X, y, seed in zip(Xs, ys, seeds, strict=True):
        a, b, c, d = train_test_split(X, y, test_size=test_size, random_state=int(seed))
        Xtr.append(a)
        Xte.append(b)
        ytr.append(c)
        yte.append(d)
    return Xtr, Xte, ytr, yte


def _take(a: Any, rows: np.ndarray) -> Any:
    return a.iloc[rows] if hasattr(a, "iloc") else a[rows]


def apply_split(
    Xs: Sequence[Any],
    ys: Sequence[Any],
    split: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Cut every task by a fixed split, such as one of a loader's ``splits``.

    Parameters
    ----------
    Xs : sequence of array-like, sparse matrix or pandas object
        The designs, one per task (rows are taken by position).
    ys : sequence of array-like or pandas.Series
        The targets, one per task.
    split : tuple of (train, test)
        ``train[t]`` and ``test[t]`` are integer positions into task ``t``'s rows.

    Returns
    -------
    Xs_train : list
        The training rows of each task's design.
    Xs_test : list
        The test rows of each task's design.
    ys_train : list
        The training targets of each task.
    ys_test : list
        The test targets of each task.

    Raises
    ------
    ValueError
        If ``Xs``, ``ys`` and the split differ in number of tasks.

    See Also
    --------
    train_test_split_per_task : Draws a random split instead.

    Examples
    --------
    >>> from regmtl.datasets import load_school, apply_split
    >>> data = load_school()
    >>> Xtr, Xte, ytr, yte = apply_split(data.X, data.y, data.splits[0])
    >>> sum(len(y) for y in ytr), sum(len(y) for y in yte)
    (11472, 3890)
    """
    train, test = split
    if not len(Xs) == len(ys) == len(train) == len(test):
        raise ValueError(f"Xs has {len(Xs)} tasks, ys {len(ys)} and the split "
                         f"{len(train)} train / {len(test)} test index arrays")
    Xtr = [_take(X, np.asarray(i)) for X, i in zip(Xs, train, strict=True)]
    Xte = [_take(X, np.asarray(i)) for X, i in zip(Xs, test, strict=True)]
    ytr = [_take(y, np.asarray(i)) for y, i in zip(ys, train, strict=True)]
    yte = [_take(y, np.asarray(i)) for y, i in zip(ys, test, strict=True)]
    return Xtr, Xte, ytr, yte
