"""The one Bunch form every loader returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

__all__ = ["task_bunch", "shared_bunch", "same_rows_split", "generic_names"]

Split = tuple[list[np.ndarray], list[np.ndarray]]


def generic_names(prefix: str, n: int) -> list[str]:
    """``prefix_1`` ... ``prefix_n``, zero-padded so that they sort in order."""
    width = len(str(n))
    return [f"{prefix}_{j + 1:0{width}d}" for j in range(n)]


def task_bunch(X: Sequence[Any], y: Sequence[np.ndarray], *, task_names: Sequence[Any],
               feature_names: Sequence[str], kind: str, descr: str, source: str,
               **extra: Any) -> Bunch:
    """Bunch of per-task data: float64 dense arrays or ``csr_matrix``, float64 targets."""
    if kind not in ("regression", "binary"):
        raise ValueError(f"kind must be 'regression' or 'binary', got {kind!r}")
    Xs = [sp.csr_matrix(x, dtype=np.float64) if sp.issparse(x)
          else np.asarray(x, dtype=np.float64) for x in X]
    ys = [np.asarray(v, dtype=np.float64).ravel() for v in y]
    if not len(Xs) == len(ys) == len(task_names):
        raise ValueError("X, y and task_names differ in length")
    for x, v in zip(Xs, ys, strict=True):
        if x.shape[0] != v.shape[0] or x.shape[1] != len(feature_names):
            raise ValueError("a task's X and y or feature_names do not match")
    return Bunch(X=Xs, y=ys, task_names=list(task_names), feature_names=list(feature_names),
                 kind=kind, DESCR=descr, source=source, **extra)


def shared_bunch(X_shared: np.ndarray, Y: np.ndarray, **kwargs: Any) -> Bunch:
    """Bunch for a shared design: ``X[t]`` holds the rows of ``X_shared`` labelled in ``Y[:, t]``.

    ``X_shared`` (n x p) and ``Y`` (n x T, NaN = no label) are kept in the Bunch as well.
    """
    X_shared = np.asarray(X_shared, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != X_shared.shape[0]:
        raise ValueError("Y must be n x T with the rows of X_shared")
    Xs, ys = [], []
    for t in range(Y.shape[1]):
        rows = ~np.isnan(Y[:, t])
        Xs.append(X_shared[rows].copy())
        ys.append(Y[rows, t].copy())
    return task_bunch(Xs, ys, X_shared=X_shared, Y=Y, **kwargs)


def same_rows_split(n_tasks: int, train: np.ndarray, test: np.ndarray) -> Split:
    """One ``(train, test)`` pair that takes the same rows from every task."""
    train = np.asarray(train, dtype=np.intp)
    test = np.asarray(test, dtype=np.intp)
    return [train.copy() for _ in range(n_tasks)], [test.copy() for _ in range(n_tasks)]
