"""Per-task lists from any input form, and the kind of problem the targets pose.

The analyses that refit single tasks and subsets of tasks (:func:`regmtl.compare.compare`,
:func:`regmtl.relatedness.task_relatedness`, :func:`regmtl.transfer_curve.transfer_curve`) work
on one design and one target array per task; :func:`as_task_lists` makes them from a data set's
Bunch, lists, a long table with task ids, or a shared design with a target matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._frames import isna

__all__ = ["as_task_lists", "task_kind"]


def as_task_lists(X: Any, y: Any, task: Any) -> tuple[list, list, Any]:
    """(Xs, ys, source Bunch or None) from a Bunch, lists, a long table or a shared design."""
    if hasattr(X, "X") and hasattr(X, "y") and y is None:
        return list(X.X), list(X.y), X
    if isinstance(X, (list, tuple)):
        if y is None or len(X) != len(y):
            raise ValueError("y: give one target array per task (same length as the list X).")
        return list(X), list(y), None
    if task is not None:
        if isinstance(task, str) and not hasattr(X, "columns"):
            raise ValueError(f"task={task!r} names a column, but X is not a DataFrame; pass "
                             "the task ids themselves (one per row).")
        task_arr = X[task].to_numpy() if isinstance(task, str) else np.asarray(task)
        Xv = X.drop(columns=[task]) if isinstance(task, str) else X
        Xv = np.asarray(Xv, dtype=np.float64)
        yv = np.asarray(y)
        labels, inv = np.unique(task_arr, return_inverse=True)
        return ([Xv[inv == k] for k in range(len(labels))],
                [yv[inv == k] for k in range(len(labels))], None)
    Y = np.asarray(y)
    if Y.ndim != 2:
        raise ValueError("y: pass a target matrix (n, T), a list per task, or task=... ids.")
    Xv = np.asarray(X, dtype=np.float64)
    keep = [~isna(Y[:, t]) for t in range(Y.shape[1])]
    return [Xv[k] for k in keep], [Y[k, t] for t, k in enumerate(keep)], None


def task_kind(ys: Sequence[np.ndarray], kind: str) -> str:
    """``kind`` checked (``"regression"`` or ``"binary"``), or for ``"auto"`` guessed from the
    targets: binary when every task has at most two distinct values."""
    if kind != "auto":
        if kind not in ("regression", "binary"):
            raise ValueError(f"kind={kind!r} is not 'regression', 'binary' or 'auto'.")
        return kind
    two = all(len(np.unique(np.asarray(y))) <= 2 for y in ys)
    return "binary" if two else "regression"
