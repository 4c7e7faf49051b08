"""What the deep estimators' inputs and outputs are converted with: labels, classes, rows.

Task labels as plain values, each task's labels as class codes, a head's logits as
probabilities or classes, the rows of a design, and per-segment predictions put back in the
form of the input (list, dict, or one array).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ..taskdata import TaskData, as_labels

__all__ = ["class_codes", "class_count_message", "class_index", "many_classes", "numeric_text",
           "plain_label", "probabilities", "segments_in_form", "take_rows"]


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


#: scikit-learn's generic warning on many classes, replaced by :func:`class_count_message`
SKLEARN_MANY_CLASSES = "The number of unique classes is greater than 50%"


def class_codes(raw: np.ndarray, task: Any, declare: str | None = ""
                ) -> tuple[np.ndarray, np.ndarray]:
    """Class indices 0..K-1 of one task's labels and its classes (sorted), K >= 2; a
    warning where the task has many classes for its rows (:func:`many_classes`; ``declare``
    says how to declare the kind, see :func:`class_count_message`; None: the user declared
    the task a classification, no warning)."""
    labels = as_labels(raw)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SKLEARN_MANY_CLASSES)
        check_classification_targets(labels)
    cls, idx = np.unique(labels, return_inverse=True)
    if len(cls) < 2:
        raise ValueError(f"y: task {task!r} has one class ({cls[0]!r}); each task needs at "
                         "least two classes.")
    if declare is not None and many_classes(len(cls), len(labels)):
        warnings.warn(class_count_message(cls, len(labels), task, declare), UserWarning,
                      stacklevel=find_stack_level())
    return idx, cls


def many_classes(n_classes: int, n_rows: int) -> bool:
    """Whether a task has as many classes as half its rows (more than 2, above 20 rows): at
    about two rows a class, the labels are more likely values than classes (the rule of
    scikit-learn's ``type_of_target`` warning and of the linear estimators')."""
    return n_classes > 2 and n_rows > 20 and n_classes > 0.5 * n_rows


def numeric_text(classes: np.ndarray) -> bool:
    """Whether the classes are strings that all read as numbers (``"3.27"``, ``"1e3"``): the
    text ``np.column_stack`` makes of numbers stacked beside strings."""
    if not len(classes) or not all(isinstance(v, str | np.str_) for v in classes[:1000]):
        return False
    try:
        np.asarray(classes, dtype=str).astype(np.float64)
    except ValueError:
        return False
    return True


def class_count_message(classes: np.ndarray, n_rows: int, task: Any, declare: str,
                        auto: bool = False) -> str:
    """What :func:`class_codes` warns and the automatic kind refuses (``auto``): the task,
    its classes for its rows, numbers given as text, and how to declare the task's kind."""
    read = "kinds='auto' would read it" if auto else "it is read"
    msg = (f"y: task {plain_label(task)!r}: {read} as a classification with {len(classes)} "
           f"classes for {n_rows} rows: one output per class, each learned from about "
           f"{n_rows / len(classes):.1f} rows. ")
    if numeric_text(classes):
        shown = ", ".join(repr(str(v)) for v in classes[:3])
        msg += (f"Its labels are numbers given as text ({shown}, "
                "...), and text is read as class labels: np.column_stack of numbers and "
                "strings turns every column into text. Give each task's labels their own type "
                "(a DataFrame, an object array, or one array per task), or ")
    else:
        msg += "If the labels are quantities, "
    return msg + (declare or "declare the task a regression.")


def find_stack_level() -> int:
    """The stack level of the first frame outside regmtl (and scikit-learn's wrappers), for
    warnings raised deep in a fit."""
    import inspect

    frame, level = inspect.currentframe(), 0
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if level and not name.startswith(("regmtl", "sklearn")):
            return level
        frame, level = frame.f_back, level + 1
    return 1


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
    """Rows ``idx`` of the design: an array, sparse rows (``subset``) or a dict of them."""
    if isinstance(X, dict):
        return {k: take_rows(v, idx) for k, v in X.items()}
    return X.subset(idx) if hasattr(X, "subset") else X[idx]
