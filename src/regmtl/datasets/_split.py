"""Per-task train/test splitting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["train_test_split_per_task"]


def train_test_split_per_task(
    Xs: Sequence[Any],
    ys: Sequence[Any],
    test_size: float | int = 0.25,
    random_state: int | None = 0,
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Split every task into train and test rows, so both parts hold every task.

    ``test_size`` is read per task as in :func:`sklearn.model_selection.train_test_split`
    (a fraction, rounded up, or a count). Each task gets its own seed drawn from
    ``random_state``, so the same ``random_state`` gives the same split.

    Returns
    -------
    Xs_train, Xs_test, ys_train, ys_test : lists with one entry per task
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
