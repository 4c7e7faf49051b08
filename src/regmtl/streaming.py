"""Predictions and scores of a fitted linear multi-task model on a Parquet data set, chunk by
chunk (:class:`~regmtl.ParquetTasks`): one run of whole tasks in memory at a time.

The estimators' ``predict``, ``decision_function``, ``predict_proba`` and ``score`` come here
when given a ParquetTasks. Each chunk is put in the model's frame (its tasks' positions in
``tasks_``, found once for the whole source) and handed to the same per-block code as the
in-memory methods, so the results are those of the in-memory call on the same rows: the
predictions row for row, the score as the mean over tasks of the same per-task scores (a
chunk holds whole tasks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .parquet import ParquetTasks
from .progress import progress_bar
from .taskdata import TaskData

__all__ = ["predict_chunks", "predict_rows", "score_tasks", "task_positions"]

#: ``rows_of(block, scores)``: a chunk's per-row results from its scores x . w_t + b_t.
RowsOf = Callable[[TaskData, np.ndarray], np.ndarray]


def task_positions(fitted: np.ndarray, tasks: np.ndarray) -> np.ndarray:
    """The position in ``fitted`` (a model's ``tasks_``) of every label of ``tasks``; an
    unknown label is the ValueError of the in-memory ``predict``."""
    fitted = np.asarray(fitted)
    if len(fitted) == len(tasks) and np.array_equal(fitted, tasks):
        return np.arange(len(tasks), dtype=np.int64)
    import pandas as pd

    pos = pd.Index(fitted).get_indexer(pd.Index(tasks)).astype(np.int64)
    bad = np.flatnonzero(pos < 0)
    if len(bad):
        known = ", ".join(repr(t) for t in fitted[:10]) + (" ..." if len(fitted) > 10 else "")
        lab = tasks[bad[0]]
        raise ValueError(
            f"task: unknown task {lab.item() if isinstance(lab, np.generic) else lab!r}; the "
            f"model was fitted on tasks {known}. Predict only for tasks the model was fitted "
            "on."
        )
    return pos


def _check_source(model: Any, source: ParquetTasks, task: Any, y: Any = None) -> None:
    check_is_fitted(model)
    if task is not None or y is not None:
        raise ValueError(
            f"{'task' if task is not None else 'y'}: X is a ParquetTasks, which carries its "
            "own task and target columns; leave task and y out (name the columns when "
            "building it: ParquetTasks(path, target=..., task=...))."
        )
    if getattr(model, "_multi", False):
        raise ValueError(
            "a multinomial fit (a task of more than two classes) predicts and scores rows in "
            "memory: read the Parquet rows into memory first.")
    p = int(model.n_features_in_)
    if source.n_features != p:
        raise ValueError(f"X has {source.n_features} features, but the model was fitted "
                         f"with {p}.")
    names = getattr(model, "feature_names_in_", None)
    if names is not None and list(names) != list(source.feature_names):
        raise ValueError(
            f"X: the source's feature columns {list(source.feature_names)[:10]} are not the "
            f"model's ({list(names)[:10]}), in that order; pass features=[...] in the "
            "model's order.")


def _scored_chunks(model: Any, source: ParquetTasks, target: bool, desc: str = "predict"
                   ) -> Iterator[tuple[int, int, TaskData, np.ndarray]]:
    """Each chunk in the model's frame, with its scores ``x . w_t + b_t``; a progress bar
    ``desc`` over the chunks as the source's ``progress`` says."""
    pos = task_positions(model.tasks_, source.tasks)
    coef, b = np.atleast_2d(model.coef_), model._b  # (W = coef_.T, read chunk by chunk)
    if target and source.target is None:
        raise ValueError("y: scoring needs the targets; build the ParquetTasks with "
                         "target='column'.")
    with progress_bar(getattr(source, "n_chunks", None), getattr(source, "progress", "auto"),
                      desc, unit="chunk") as bar:
        for lo, hi, block in source._read(source.target if target else None, None):
            idx = pos[lo:hi]
            data = dataclasses.replace(block, tasks=model.tasks_, task_index=idx)
            if idx[-1] - idx[0] == hi - lo - 1 and np.all(np.diff(idx) == 1):
                cols = slice(int(idx[0]), int(idx[-1]) + 1)  # the usual case: a view
            else:
                cols = idx
            yield lo, hi, data, data.linear(coef[cols].T, b[cols])
            bar.update(1)


def predict_chunks(model: Any, source: ParquetTasks, rows_of: Callable[[TaskData, np.ndarray],
                                                                      Any],
                   *, task: Any = None, target: bool = False
                   ) -> Iterator[tuple[int, int, TaskData, Any]]:
    """``(lo, hi, block, values)`` for each chunk of ``source``: ``values = rows_of(block,
    scores)`` for its rows, in the source's row order (a writer of predictions takes them
    chunk by chunk); ``target``: the blocks hold the source's targets too."""
    _check_source(model, source, task)
    for lo, hi, data, f in _scored_chunks(model, source, target=target):
        yield lo, hi, data, rows_of(data, f)


def predict_rows(model: Any, source: ParquetTasks, rows_of: RowsOf, *, task: Any = None
                 ) -> np.ndarray:
    """Every row's ``rows_of`` value, in the source's row order (one array of n_obs rows;
    the chunks are read one at a time)."""
    out = None
    for lo, _, _, values in predict_chunks(model, source, rows_of, task=task):
        if out is None:
            out = np.empty((source.n_obs, *values.shape[1:]), dtype=values.dtype)
        start = int(source._row_starts[lo])
        out[start:start + len(values)] = values
    return out


def score_tasks(model: Any, source: ParquetTasks,
                task_scores: Callable[[TaskData, np.ndarray], np.ndarray], *,
                task: Any = None, y: Any = None) -> float:
    """The mean over the source's tasks of ``task_scores(block, scores)``, each task's score
    (R^2, D^2, accuracy) computed on its chunk as in memory."""
    _check_source(model, source, task, y)
    parts = [task_scores(data, f)
             for _, _, data, f in _scored_chunks(model, source, target=True, desc="score")]
    return float(np.mean(np.concatenate(parts)))
