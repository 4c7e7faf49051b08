"""What the deep estimators' inputs and outputs are converted with: labels, classes, rows.

Task labels as plain values, each task's labels as class codes, a head's logits as
probabilities or classes, the rows of a design, and per-segment predictions put back in the
form of the input (list, dict, or one array).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ..taskdata import TaskData, as_labels

__all__ = ["class_codes", "class_index", "plain_label", "probabilities", "segments_in_form",
           "take_rows"]


def plain_label(v: Any) -> Any:
    """A task label as a plain Python value (NumPy scalars compare and hash as Python's)."""
    return v.item() if isinstance(v, np.generic) else v


def segments_in_form(data: TaskData, out: list[np.ndarray]) -> Any:
    """Per-segment predictions in the form of the input: the list, a dict by task, or one
    array (of objects when the segments' types differ) in the input's row order."""
    if data.form == "list":
        return out
    if data.form == "dict":
        return {data.tasks[t]: v for t, v in zip(data.task_index, out, strict=True)}
    dtype = out[0].dtype if all(o.dtype == out[0].dtype for o in out) else object
    return data.to_form(np.concatenate([o.astype(dtype) for o in out]))


def class_codes(raw: np.ndarray, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class indices 0..K-1 of one task's labels and its classes (sorted), K >= 2."""
    labels = as_labels(raw)
    check_classification_targets(labels)
    cls, idx = np.unique(labels, return_inverse=True)
    if len(cls) < 2:
        raise ValueError(f"y: task {task!r} has one class ({cls[0]!r}); each task needs at "
                         "least two classes.")
    return idx, cls


def probabilities(r: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) from a head's logits: one (binary) or K."""
    if r.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-r[:, 0]))
        return np.column_stack([1.0 - p, p])
    e = np.exp(r - r.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def class_index(r: np.ndarray) -> np.ndarray:
    """The most probable class of each row from a head's logits."""
    return (r[:, 0] > 0).astype(int) if r.shape[1] == 1 else r.argmax(axis=1)


def take_rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of the design: an array or a dict of arrays."""
    return {k: v[idx] for k, v in X.items()} if isinstance(X, dict) else X[idx]
