r"""Multi-task metrics: one value per task, or an average over tasks.

Inputs are per-task: ``ys`` and ``preds`` are sequences (or dicts keyed by task) of 1-D arrays,
one per task, or 2-D arrays of shape (n, T) whose columns are the tasks (a shared design; NaN
in ``ys`` marks a missing label and drops that row for that task only).

Let task :math:`t` have :math:`n_t` rows, targets :math:`y_{ti}`, predictions :math:`f_{ti}`,
mean target :math:`\bar y_t` (of the rows scored) and :math:`N = \sum_t n_t`. Every metric
first gives one value :math:`m_t` per task, then ``average`` reduces them:

- ``None``: the array :math:`(m_1, \dots, m_T)`;
- ``"tasks"``: :math:`\frac1T \sum_t m_t` (every task counts the same);
- ``"samples"``: :math:`\sum_t n_t m_t / N` (every row counts the same);
- ``"pooled"``: the metric computed once on all rows stacked, as if one task (for ``mse``,
  ``mae``, ``accuracy`` and ``log_loss`` this equals ``"samples"``; for ``rmse`` it is
  :math:`\sqrt{\sum_{t,i} (y_{ti} - f_{ti})^2 / N}`; for ``explained_variance`` and ``nmse`` the
  variance is taken around the mean of all rows, so it credits predicting the differences
  between task means).

A task whose metric is undefined (one class for ``auc``, constant targets for
``explained_variance`` and ``nmse``) gets NaN with an ``UndefinedMetricWarning``; ``"tasks"``
and ``"samples"`` average over the other tasks (NaN if none is left).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils.metadata_routing import MetadataRequest

from ._frames import is_frame, is_pandas, is_series
from ._lazy import lazy_module

pd = lazy_module("pandas")

__all__ = [
    "AVERAGES",
    "mse",
    "rmse",
    "mae",
    "explained_variance",
    "r2",
    "nmse",
    "accuracy",
    "auc",
    "log_loss",
    "task_scores",
    "summarize",
    "make_task_scorer",
    "MultiTaskScorer",
    "SCORERS",
]

#: The accepted values of ``average``.
AVERAGES: tuple[str | None, ...] = (None, "tasks", "samples", "pooled")

Tasks = Sequence[Any] | Mapping[Any, Any] | np.ndarray
Result = float | np.ndarray


# --------------------------------------------------------------------- input handling
def _check_average(average: Any) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}; got {average!r}.")


def _split(ys: Tasks, preds: Tasks, *, proba: bool = False, numeric_y: bool = True
           ) -> tuple[list[Any], list[np.ndarray], list[np.ndarray]]:
    """(task labels, targets per task, predictions per task), validated.

    ``proba``: a task's predictions may be an (n_t, 2) array of class probabilities, of which
    the second column (the positive class) is kept.
    """
    if isinstance(ys, Mapping):
        if not isinstance(preds, Mapping) or set(preds) != set(ys):
            raise ValueError("ys is a dict, so preds must be a dict with the same task keys.")
        labels = list(ys)
        y_list, p_list = [ys[k] for k in labels], [preds[k] for k in labels]
    elif _is_matrix(ys):
        Y = np.asarray(ys)
        labels = list(ys.columns) if is_frame(ys) else list(range(Y.shape[1]))
        y_list = [Y[:, t] for t in range(Y.shape[1])]
        if _is_matrix(preds):
            P = np.asarray(preds)
            if P.shape != Y.shape:
                raise ValueError(f"ys has shape {Y.shape} but preds has shape {P.shape}; give "
                                 "one prediction per target (columns are tasks).")
            p_list = [P[:, t] for t in range(P.shape[1])]
        else:
            p_list = list(preds)
    else:
        if isinstance(ys, np.ndarray) or _is_matrix(preds):
            raise ValueError("ys and preds must both be sequences of per-task 1-D arrays, or "
                             "both be (n, T) arrays whose columns are tasks.")
        y_list, p_list = list(ys), list(preds)
        labels = list(range(len(y_list)))
    if len(y_list) != len(p_list):
        raise ValueError(f"ys has {len(y_list)} tasks but preds has {len(p_list)}; give one "
                         "prediction array per task.")
    if not y_list:
        raise ValueError("ys has no tasks.")
    shared = _is_matrix(ys)
    out_y, out_p = [], []
    for t, (y, f) in enumerate(zip(y_list, p_list, strict=True)):
        y = np.asarray(y.to_numpy() if is_series(y) else y)
        f = np.asarray(f.to_numpy() if is_pandas(f) else f)
        if y.ndim != 1:
            raise ValueError(f"ys[{t}] must be 1-D; got shape {y.shape}.")
        if proba and f.ndim == 2 and f.shape[1] == 2:
            f = f[:, 1]
        if f.ndim != 1:
            want = "1-D (or (n_t, 2) class probabilities)" if proba else "1-D"
            raise ValueError(f"preds[{t}] must be {want}; got shape {f.shape}.")
        if y.shape[0] != f.shape[0]:
            raise ValueError(f"task {labels[t]!r}: ys[{t}] has {y.shape[0]} values but "
                             f"preds[{t}] has {f.shape[0]}; give one prediction per target.")
        if f.dtype.kind in "fc" and not np.all(np.isfinite(f)):
            raise ValueError(f"preds[{t}] contains NaN or infinite values.")
        if numeric_y or y.dtype.kind == "f":
            if y.dtype.kind not in "biuf":
                raise ValueError(f"ys[{t}] must be numeric; got dtype {y.dtype}.")
            y = y.astype(np.float64)
            missing = np.isnan(y)
            if missing.any():
                if not shared:
                    raise ValueError(f"ys[{t}] contains NaN; missing labels are only read "
                                     "from an (n, T) ys (a shared design).")
                y, f = y[~missing], f[~missing]
            if np.isinf(y).any():
                raise ValueError(f"ys[{t}] contains infinite values.")
        if y.shape[0] == 0:
            raise ValueError(f"task {labels[t]!r} has no labelled rows to score.")
        if numeric_y:
            if f.dtype.kind not in "biuf":
                raise ValueError(f"preds[{t}] must be numeric; got dtype {f.dtype}.")
            f = f.astype(np.float64)
        out_y.append(y)
        out_p.append(f)
    return labels, out_y, out_p


def _is_matrix(obj: Any) -> bool:
    return is_frame(obj) or (isinstance(obj, np.ndarray) and obj.ndim == 2)


def _reduce(values: np.ndarray, n: np.ndarray, average: str | None,
            pooled: Callable[[], float]) -> Result:
    if average is None:
        return values
    if average == "pooled":
        return float(pooled())
    ok = ~np.isnan(values)
    if not ok.any():
        return float("nan")
    if average == "tasks":
        return float(np.mean(values[ok]))
    return float(np.sum(n[ok] * values[ok]) / np.sum(n[ok]))


def _undefined(msg: str) -> float:
    warnings.warn(msg, UndefinedMetricWarning, stacklevel=4)
    return float("nan")


def _sizes(ys: list[np.ndarray]) -> np.ndarray:
    return np.array([y.shape[0] for y in ys], dtype=np.float64)


# --------------------------------------------------------------------- regression
def _sse_sst(y: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    return float(np.sum((y - f) ** 2)), float(np.sum((y - y.mean()) ** 2))


def mse(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Mean squared error of each task, or their average.

    .. math::

        \mathrm{MSE}_t = \frac1{n_t} \sum_{i=1}^{n_t} (y_{ti} - f_{ti})^2.

    ``average="tasks"`` gives :math:`\frac1T \sum_t \mathrm{MSE}_t`; ``"samples"`` and
    ``"pooled"`` both give :math:`\sum_t n_t \mathrm{MSE}_t / N
    = \sum_{t,i} (y_{ti} - f_{ti})^2 / N`.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets per task: one 1-D array per task (a list, or a dict keyed by task), or an
        (n, T) matrix whose columns are the tasks (NaN = missing label, that row is skipped
        for that task).
    preds : same form as ``ys``
        Predictions, one per target.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined: ``None`` returns them all (see the module
        docstring).

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``.

    Raises
    ------
    ValueError
        If ``average`` is unknown, or ``ys`` and ``preds`` differ in tasks or lengths or hold
        non-finite predictions.

    See Also
    --------
    rmse : Its square root per task.
    mae : Mean absolute error.
    nmse : MSE divided by the variance of the targets.
    task_scores : Every regression metric, one row per task.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import mse
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> mse(ys, preds, average=None).round(4).tolist()
    [0.3333, 2.5]
    >>> round(mse(ys, preds), 4), round(mse(ys, preds, average="samples"), 4)
    (1.4167, 1.2)
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds)
    vals = np.array([np.mean((y - f) ** 2) for y, f in zip(ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: np.mean((np.concatenate(ys_) - np.concatenate(fs)) ** 2))


def rmse(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Root mean squared error of each task, or their average.

    .. math::

        \mathrm{RMSE}_t = \sqrt{\mathrm{MSE}_t}
        = \sqrt{\frac1{n_t} \sum_{i=1}^{n_t} (y_{ti} - f_{ti})^2}.

    ``"tasks"`` averages the per-task RMSEs, :math:`\frac1T \sum_t \mathrm{RMSE}_t` (not the
    root of the mean MSE); ``"samples"`` weights them by size,
    :math:`\sum_t n_t \mathrm{RMSE}_t / N`; ``"pooled"`` is
    :math:`\sqrt{\sum_{t,i} (y_{ti} - f_{ti})^2 / N}`.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets per task (as for :func:`mse`).
    preds : same form as ``ys``
        Predictions, one per target.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``.

    Raises
    ------
    ValueError
        If ``average`` is unknown or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    mse : Mean squared error.
    mae : Mean absolute error.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import rmse
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> rmse(ys, preds, average=None).round(4).tolist()
    [0.5774, 1.5811]
    >>> round(rmse(ys, preds), 4), round(rmse(ys, preds, average="pooled"), 4)
    (1.0792, 1.0954)
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds)
    vals = np.array([np.sqrt(np.mean((y - f) ** 2)) for y, f in zip(ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: np.sqrt(np.mean((np.concatenate(ys_) - np.concatenate(fs)) ** 2)))


def mae(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Mean absolute error of each task, or their average.

    .. math::

        \mathrm{MAE}_t = \frac1{n_t} \sum_{i=1}^{n_t} |y_{ti} - f_{ti}|.

    ``"tasks"`` gives :math:`\frac1T \sum_t \mathrm{MAE}_t`; ``"samples"`` and ``"pooled"``
    both give :math:`\sum_{t,i} |y_{ti} - f_{ti}| / N`.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets per task (as for :func:`mse`).
    preds : same form as ``ys``
        Predictions, one per target.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``.

    Raises
    ------
    ValueError
        If ``average`` is unknown or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    mse : Mean squared error.
    rmse : Root mean squared error.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import mae
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> mae(ys, preds, average=None).round(4).tolist()
    [0.3333, 1.5]
    >>> round(mae(ys, preds), 4), round(mae(ys, preds, average="samples"), 4)
    (0.9167, 0.8)
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds)
    vals = np.array([np.mean(np.abs(y - f)) for y, f in zip(ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: np.mean(np.abs(np.concatenate(ys_) - np.concatenate(fs))))


def _ev(y: np.ndarray, f: np.ndarray, where: str) -> float:
    sse, sst = _sse_sst(y, f)
    if sst == 0.0:
        return _undefined(f"{where}: the targets are constant, so explained variance and nMSE "
                          "are undefined (NaN).")
    return 1.0 - sse / sst


def explained_variance(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Explained variance as reported in the multi-task literature (= R² of each task).

    .. math::

        \mathrm{EV}_t = 1 - \frac{\sum_i (y_{ti} - f_{ti})^2}{\sum_i (y_{ti} - \bar y_t)^2},

    with :math:`\bar y_t` the mean of the scored (test) targets of task :math:`t`; it equals
    scikit-learn's ``r2_score`` per task (``r2`` is the same function). ``"tasks"`` gives
    :math:`\frac1T \sum_t \mathrm{EV}_t`, ``"samples"`` :math:`\sum_t n_t \mathrm{EV}_t / N`;
    ``"pooled"`` measures the variance around the mean :math:`\bar y` of all rows,
    :math:`1 - \sum_{t,i} (y_{ti} - f_{ti})^2 / \sum_{t,i} (y_{ti} - \bar y)^2`.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets per task (as for :func:`mse`).
    preds : same form as ``ys``
        Predictions, one per target.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``. Greater is better; 1 is a
        perfect fit, 0 predicting each task's mean.

    Raises
    ------
    ValueError
        If ``average`` is unknown or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    nmse : One minus this value per task.
    mse : Mean squared error.

    Notes
    -----
    The School figures of Argyriou, Evgeniou & Pontil (2008) and later work (about 30-37 %)
    are the ``"pooled"`` value: the variance around the mean of all test targets, which also
    credits predicting the differences between schools.

    It differs from scikit-learn's ``explained_variance_score``, which uses the variance of
    the residuals, :math:`1 - \mathrm{Var}(y - f)/\mathrm{Var}(y)`, and so ignores a constant
    bias of the predictions. A task with constant targets gives NaN (with an
    ``UndefinedMetricWarning``); ``"tasks"`` and ``"samples"`` average over the other tasks.

    References
    ----------
    Argyriou, A., Evgeniou, T. & Pontil, M. (2008). Convex multi-task feature learning.
    Machine Learning 73(3), 243-272.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import explained_variance
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> explained_variance(ys, preds, average=None).round(4).tolist()
    [0.5, 0.375]
    >>> round(explained_variance(ys, preds), 4)
    0.4375
    >>> round(explained_variance(ys, preds, average="pooled"), 4)
    0.4
    """
    _check_average(average)
    labels, ys_, fs = _split(ys, preds)
    vals = np.array([_ev(y, f, f"task {k!r}")
                     for k, y, f in zip(labels, ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: _ev(np.concatenate(ys_), np.concatenate(fs), "pooled rows"))


#: R² per task: the same function as :func:`explained_variance`.
r2 = explained_variance


def nmse(ys: Tasks, preds: Tasks, *, average: str | None = "samples") -> Result:
    r"""Normalized mean squared error, as reported on School in the studies built on MALSAR.

    Chen, Zhou & Ye (KDD 2011) and later MALSAR-based work define nMSE as the MSE divided by
    the variance of the targets; over tasks it is combined with weights :math:`n_t`.

    Per task :math:`\mathrm{nMSE}_t = \mathrm{MSE}_t / \mathrm{Var}(y_t)` with the population
    variance :math:`\mathrm{Var}(y_t) = \frac1{n_t} \sum_i (y_{ti} - \bar y_t)^2`, so
    :math:`\mathrm{nMSE}_t = 1 - \mathrm{EV}_t`. The default ``average="samples"`` is the
    published multi-task value

    .. math::

        \mathrm{nMSE} = \frac{\sum_t n_t\, \mathrm{MSE}_t / \mathrm{Var}(y_t)}{\sum_t n_t}.

    ``"tasks"`` gives :math:`\frac1T \sum_t \mathrm{nMSE}_t`; ``"pooled"`` divides the MSE of
    all rows by the variance of all rows around their common mean.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets per task (as for :func:`mse`).
    preds : same form as ``ys``
        Predictions, one per target.
    average : {"samples", "tasks", "pooled"} or None, default="samples"
        How the per-task values are combined; ``None`` returns them all. Note the default
        differs from the other metrics' ``"tasks"``.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``. Smaller is better; 1 is
        the error of predicting each task's mean.

    Raises
    ------
    ValueError
        If ``average`` is unknown or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    explained_variance : One minus this value per task.
    mse : Mean squared error.

    Notes
    -----
    Code written in MATLAB often divides by ``var(y_t)``, which uses :math:`n_t - 1`: per
    task, that value is this one times :math:`(n_t - 1)/n_t`. MALSAR's example
    ``eval_MTL_mse`` returns :math:`\sum_t n_t \sqrt{\mathrm{SSE}_t} / N`, a different
    quantity. A task with constant targets gives NaN (with an ``UndefinedMetricWarning``).

    References
    ----------
    Chen, J., Zhou, J. & Ye, J. (2011). Integrating low-rank and group-sparse structures for
    robust multi-task learning. KDD.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import nmse
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> nmse(ys, preds, average=None).round(4).tolist()
    [0.5, 0.625]
    >>> round(nmse(ys, preds), 4)  # (3 * 0.5 + 2 * 0.625) / 5
    0.55
    """
    _check_average(average)
    labels, ys_, fs = _split(ys, preds)
    vals = np.array([1.0 - _ev(y, f, f"task {k!r}")
                     for k, y, f in zip(labels, ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: 1.0 - _ev(np.concatenate(ys_), np.concatenate(fs), "pooled rows"))


# --------------------------------------------------------------------- binary classification
def _positive(y: np.ndarray, pos_label: Any, where: str) -> np.ndarray:
    """1.0 where ``y`` is the positive class, else 0.0."""
    classes = np.unique(y)
    if len(classes) > 2:
        raise ValueError(f"{where} has {len(classes)} classes; binary metrics need at most two.")
    if pos_label is None:
        numeric = y.dtype.kind in "biuf"
        if numeric and (set(classes.tolist()) <= {0, 1} or set(classes.tolist()) <= {-1, 1}):
            pos_label = 1
        elif len(classes) == 2:
            pos_label = classes[1]
        else:
            raise ValueError(
                f"{where} has the single class {classes[0]!r}, which is not 0/1 or -1/+1, so "
                "its positive class is unknown; pass pos_label."
            )
    return (y == pos_label).astype(np.float64)


def accuracy(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Accuracy of each task, or their average.

    .. math::

        \mathrm{Acc}_t = \frac1{n_t} \sum_{i=1}^{n_t} 1[\hat y_{ti} = y_{ti}].

    ``"tasks"`` gives :math:`\frac1T \sum_t \mathrm{Acc}_t`; ``"samples"`` and ``"pooled"``
    both give the fraction of all rows predicted right.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        True labels per task (any labels; as for :func:`mse`).
    preds : same form as ``ys``
        Predicted labels (the output of ``predict``), one per target.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``.

    Raises
    ------
    ValueError
        If ``average`` is unknown or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    auc : Area under the ROC curve, from scores.
    log_loss : Cross-entropy, from probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import accuracy
    >>> ys = [np.array([0, 1, 1, 0]), np.array([1, 0, 1])]
    >>> preds = [np.array([0, 1, 0, 0]), np.array([1, 1, 1])]
    >>> accuracy(ys, preds, average=None).round(4).tolist()
    [0.75, 0.6667]
    >>> round(accuracy(ys, preds), 4), round(accuracy(ys, preds, average="samples"), 4)
    (0.7083, 0.7143)
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds, numeric_y=False)
    hits = [np.asarray(y == f, dtype=np.float64) for y, f in zip(ys_, fs, strict=True)]
    vals = np.array([h.mean() for h in hits])
    return _reduce(vals, _sizes(ys_), average, lambda: np.concatenate(hits).mean())


def _auc(pos: np.ndarray, score: np.ndarray, where: str) -> float:
    n_pos = pos.sum()
    n_neg = pos.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return _undefined(f"{where} has one class only, so its ROC AUC is undefined (NaN).")
    from scipy.stats import rankdata

    ranks = rankdata(score)  # ties share the mean rank, i.e. count one half
    return float((ranks[pos == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(ys: Tasks, scores: Tasks, *, average: str | None = "tasks",
        pos_label: Any = None) -> Result:
    r"""Area under the ROC curve of each task.

    .. math::

        \mathrm{AUC}_t = \frac{1}{n_t^+ n_t^-} \sum_{i: y_{ti} = +} \sum_{j: y_{tj} = -}
        \left(1[s_{ti} > s_{tj}] + \tfrac12 1[s_{ti} = s_{tj}]\right),

    the probability that a random positive scores above a random negative (:math:`n_t^+` and
    :math:`n_t^-` count the task's positives and negatives). ``"tasks"`` gives
    :math:`\frac1T \sum_t \mathrm{AUC}_t`, ``"samples"`` :math:`\sum_t n_t \mathrm{AUC}_t / N`;
    ``"pooled"`` ranks all rows together, so it also rewards scores that order the tasks'
    base rates.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        True binary labels per task (as for :func:`mse`).
    scores : same form as ``ys``
        Scores increasing with the positive class: probabilities, decision values, or the
        ``(n_t, 2)`` output of ``predict_proba`` per task.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.
    pos_label : label, default=None
        The positive class. None means 1 for labels in {0, 1} or {-1, +1}, else the larger
        of the task's two labels.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``. A task with one class
        gets NaN and an ``UndefinedMetricWarning``; ``"tasks"`` and ``"samples"`` skip such
        tasks.

    Raises
    ------
    ValueError
        If a task has more than two classes, or a one-class task's positive class is unknown
        (pass ``pos_label``), or the inputs do not match (as for :func:`mse`).

    See Also
    --------
    log_loss : Cross-entropy, from probabilities.
    accuracy : Accuracy, from labels.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import auc
    >>> ys = [np.array([0, 1, 1, 0]), np.array([1, 0, 1])]
    >>> proba = [np.array([0.2, 0.9, 0.4, 0.3]), np.array([0.8, 0.6, 0.7])]
    >>> auc(ys, proba, average=None).tolist()
    [1.0, 1.0]
    >>> round(auc(ys, proba, average="pooled"), 4)  # a task-1 negative (0.6) > a task-0 positive
    0.9167
    """
    _check_average(average)
    labels, ys_, fs = _split(ys, scores, proba=True, numeric_y=False)
    fs = [f.astype(np.float64) for f in fs]
    pos = [_positive(y, pos_label, f"ys[{t}]") for t, y in enumerate(ys_)]
    vals = np.array([_auc(p, f, f"task {k!r}")
                     for k, p, f in zip(labels, pos, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: _auc(np.concatenate(pos), np.concatenate(fs), "pooled rows"))


def _log_losses(pos: np.ndarray, prob: np.ndarray) -> np.ndarray:
    eps = np.finfo(np.float64).eps
    p = np.clip(prob, eps, 1.0 - eps)
    return -(pos * np.log(p) + (1.0 - pos) * np.log(1.0 - p))


def log_loss(ys: Tasks, proba: Tasks, *, average: str | None = "tasks",
             pos_label: Any = None) -> Result:
    r"""Mean negative log-likelihood (cross-entropy) of each task.

    .. math::

        \mathrm{LogLoss}_t = -\frac1{n_t} \sum_i \left(y_{ti} \log p_{ti}
        + (1 - y_{ti}) \log(1 - p_{ti})\right),

    with :math:`y_{ti} \in \{0, 1\}` (1 = positive class, chosen as in :func:`auc`) and
    :math:`p_{ti}` the predicted probability of the positive class, clipped to
    :math:`[\epsilon, 1 - \epsilon]` (machine epsilon) as scikit-learn does. ``"tasks"``
    gives :math:`\frac1T \sum_t \mathrm{LogLoss}_t`; ``"samples"`` and ``"pooled"`` both give
    the mean over all rows.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        True binary labels per task (as for :func:`mse`).
    proba : same form as ``ys``
        Probabilities of the positive class in [0, 1], or the ``(n_t, 2)`` output of
        ``predict_proba`` per task.
    average : {"tasks", "samples", "pooled"} or None, default="tasks"
        How the per-task values are combined; ``None`` returns them all.
    pos_label : label, default=None
        The positive class, chosen as in :func:`auc`.

    Returns
    -------
    float or ndarray of shape (n_tasks,)
        The average, or the per-task values when ``average=None``. Smaller is better.

    Raises
    ------
    ValueError
        If a probability lies outside [0, 1], a task has more than two classes, or the
        inputs do not match (as for :func:`mse`).

    See Also
    --------
    auc : Area under the ROC curve, from scores.
    accuracy : Accuracy, from labels.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import log_loss
    >>> ys = [np.array([0, 1, 1, 0]), np.array([1, 0, 1])]
    >>> proba = [np.array([0.2, 0.9, 0.4, 0.3]), np.array([0.8, 0.6, 0.7])]
    >>> log_loss(ys, proba, average=None).round(4).tolist()
    [0.4004, 0.4987]
    >>> round(log_loss(ys, proba), 4), round(log_loss(ys, proba, average="samples"), 4)
    (0.4495, 0.4425)
    """
    _check_average(average)
    _, ys_, ps = _split(ys, proba, proba=True, numeric_y=False)
    for t, p in enumerate(ps):
        if p.dtype.kind not in "biuf" or p.min() < 0.0 or p.max() > 1.0:
            raise ValueError(f"proba[{t}] must hold probabilities in [0, 1].")
    losses = [_log_losses(_positive(y, pos_label, f"ys[{t}]"), p.astype(np.float64))
              for t, (y, p) in enumerate(zip(ys_, ps, strict=True))]
    vals = np.array([v.mean() for v in losses])
    return _reduce(vals, _sizes(ys_), average, lambda: np.concatenate(losses).mean())


# --------------------------------------------------------------------- tables
_REGRESSION = {"mse": mse, "rmse": rmse, "mae": mae, "explained_variance": explained_variance,
               "nmse": nmse}


def _table(ys, preds, kind, proba, pos_label, average) -> dict[str, Any]:
    if kind == "regression":
        return {name: fn(ys, preds, average=average) for name, fn in _REGRESSION.items()}
    if kind != "binary":
        raise ValueError(f"kind must be 'regression' or 'binary'; got {kind!r}.")
    if preds is None and proba is None:
        raise ValueError("give preds (labels), proba (probabilities), or both.")
    out = {}
    if preds is not None:
        out["accuracy"] = accuracy(ys, preds, average=average)
    if proba is not None:
        out["auc"] = auc(ys, proba, average=average, pos_label=pos_label)
        out["log_loss"] = log_loss(ys, proba, average=average, pos_label=pos_label)
    return out


def task_scores(
    ys: Tasks,
    preds: Tasks | None,
    *,
    kind: str = "regression",
    proba: Tasks | None = None,
    task_names: Sequence[Any] | None = None,
    pos_label: Any = None,
) -> pd.DataFrame:
    """Every metric of ``kind``, one row per task.

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets (or true labels) per task, in any form the metrics read (see :func:`mse`).
    preds : same form as ``ys``, or None
        Predictions (labels for ``kind="binary"``); may be None when ``proba`` is given.
    kind : {"regression", "binary"}, default="regression"
        Regression: ``mse``, ``rmse``, ``mae``, ``explained_variance``, ``nmse``. Binary:
        ``accuracy`` (from ``preds``), and ``auc``, ``log_loss`` when ``proba`` is given.
    proba : same form as ``ys``, default=None
        Probabilities of the positive class per task (or ``predict_proba`` output); binary
        only.
    task_names : sequence, default=None
        Names for the ``task`` column; default the dict keys, the DataFrame columns or
        0..T-1.
    pos_label : label, default=None
        Positive class for ``auc`` and ``log_loss`` (see :func:`auc`).

    Returns
    -------
    pandas.DataFrame
        Columns ``task``, ``n`` (rows scored) and one per metric, one row per task.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, neither ``preds`` nor ``proba`` is given for ``"binary"``,
        ``task_names`` has the wrong length, or the inputs do not match.

    See Also
    --------
    summarize : The same metrics averaged over tasks.
    regmtl.plotting.plot_task_scores : Draws one of these columns.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import task_scores
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> print(task_scores(ys, preds, task_names=["a", "b"]).round(3))
      task  n    mse   rmse    mae  explained_variance   nmse
    0    a  3  0.333  0.577  0.333               0.500  0.500
    1    b  2  2.500  1.581  1.500               0.375  0.625

    Binary tasks, from labels and probabilities:

    >>> yb = [np.array([0, 1, 1, 0]), np.array([1, 0, 1])]
    >>> labels = [np.array([0, 1, 0, 0]), np.array([1, 1, 1])]
    >>> proba = [np.array([0.2, 0.9, 0.4, 0.3]), np.array([0.8, 0.6, 0.7])]
    >>> print(task_scores(yb, labels, kind="binary", proba=proba).round(3))
       task  n  accuracy  auc  log_loss
    0     0  4     0.750  1.0     0.400
    1     1  3     0.667  1.0     0.499
    """
    table = _table(ys, preds, kind, proba, pos_label, None)
    labels, ys_, _ = _split(ys, preds if preds is not None else proba,
                            proba=preds is None, numeric_y=kind == "regression")
    if task_names is not None:
        if len(task_names) != len(labels):
            raise ValueError(f"task_names has {len(task_names)} names for {len(labels)} tasks.")
        labels = list(task_names)
    return pd.DataFrame({"task": labels, "n": [y.shape[0] for y in ys_], **table})


def summarize(
    ys: Tasks,
    preds: Tasks | None,
    *,
    kind: str = "regression",
    proba: Tasks | None = None,
    pos_label: Any = None,
) -> pd.DataFrame:
    """Every metric of ``kind`` under the three averages.

    One row per average, ``"tasks"``, ``"samples"`` and ``"pooled"`` (see the module
    docstring for what each computes).

    Parameters
    ----------
    ys : sequence or dict of array-like of shape (n_t,), or array-like of shape (n, T)
        Targets (or true labels) per task, in any form the metrics read (see :func:`mse`).
    preds : same form as ``ys``, or None
        Predictions (labels for ``kind="binary"``); may be None when ``proba`` is given.
    kind : {"regression", "binary"}, default="regression"
        Which metrics, as for :func:`task_scores`.
    proba : same form as ``ys``, default=None
        Probabilities of the positive class per task; binary only.
    pos_label : label, default=None
        Positive class for ``auc`` and ``log_loss`` (see :func:`auc`).

    Returns
    -------
    pandas.DataFrame
        Index ``average`` (``tasks``, ``samples``, ``pooled``), one column per metric.

    Raises
    ------
    ValueError
        As for :func:`task_scores`.

    See Also
    --------
    task_scores : The per-task values.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.metrics import summarize
    >>> ys = [np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])]
    >>> preds = [np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0])]
    >>> print(summarize(ys, preds).round(3))
               mse   rmse    mae  explained_variance   nmse
    average
    tasks    1.417  1.079  0.917               0.438  0.562
    samples  1.200  0.979  0.800               0.450  0.550
    pooled   1.200  1.095  0.800               0.400  0.600
    """
    rows = {a: _table(ys, preds, kind, proba, pos_label, a) for a in ("tasks", "samples",
                                                                      "pooled")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("average")


# --------------------------------------------------------------------- scikit-learn scorers
#: scorer name -> (metric, response method of the estimator, sign)
SCORERS: dict[str, tuple[Callable, str, float]] = {
    "neg_mse": (mse, "predict", -1.0),
    "neg_rmse": (rmse, "predict", -1.0),
    "neg_mae": (mae, "predict", -1.0),
    "neg_nmse": (nmse, "predict", -1.0),
    "explained_variance": (explained_variance, "predict", 1.0),
    "r2": (explained_variance, "predict", 1.0),
    "accuracy": (accuracy, "predict", 1.0),
    "roc_auc": (auc, "predict_proba", 1.0),
    "neg_log_loss": (log_loss, "predict_proba", -1.0),
}
_ALIASES = {
    "mse": "neg_mse", "neg_mean_squared_error": "neg_mse",
    "rmse": "neg_rmse", "neg_root_mean_squared_error": "neg_rmse",
    "mae": "neg_mae", "neg_mean_absolute_error": "neg_mae",
    "nmse": "neg_nmse", "auc": "roc_auc", "log_loss": "neg_log_loss",
}


class MultiTaskScorer:
    """A scikit-learn scorer ``scorer(estimator, X, y, task=None)`` for multi-task estimators.

    It calls the estimator's response method on ``X`` (and ``task``), splits targets and
    predictions by task, and returns ``sign * metric(ys, preds, average=average)``: losses
    come out negated, so greater is always better. It requests ``task`` through metadata
    routing, so ``cross_val_score(model, X, y, params={"task": ids}, scoring=scorer)`` passes
    each fold's task ids to it.

    Input forms: lists (or dicts) of per-task designs with lists of targets; the long form
    (``X``, 1-D ``y``, ``task`` ids); a shared design (2-D ``y`` of shape (n, T), NaN =
    missing); or a single task (2-D ``X``, 1-D ``y``, no ``task``).

    Build one with :func:`make_task_scorer`, which knows the metrics of this module by name.

    Parameters
    ----------
    metric : callable
        ``metric(ys, preds, average=..., **kwargs)``, such as :func:`mse`.
    response_method : {"predict", "predict_proba", "decision_function"}, default="predict"
        The estimator method whose output is scored.
    sign : float, default=1.0
        Multiplies the metric: -1 for a loss, so that greater is better.
    average : {"tasks", "samples", "pooled"}, default="tasks"
        How the per-task values are combined (a scorer returns one number).
    name : str, default=None
        Shown in the repr; default the metric's ``__name__``.
    **kwargs
        Passed to the metric (e.g. ``pos_label``).

    Attributes
    ----------
    metric, response_method, sign, average, name, kwargs
        The constructor arguments (``sign`` as a float).

    Raises
    ------
    ValueError
        If ``average`` is None or unknown.

    See Also
    --------
    make_task_scorer : The scorer of a metric name.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.metrics import MultiTaskScorer, mse
    >>> data = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    >>> model = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(data.X, data.y)
    >>> scorer = MultiTaskScorer(mse, sign=-1.0, name="neg_mse")
    >>> scorer
    make_task_scorer('neg_mse', average='tasks')
    >>> bool(scorer(model, data.X, data.y) == -mse(data.y, model.predict(data.X)))
    True
    """

    def __init__(self, metric: Callable, *, response_method: str = "predict",
                 sign: float = 1.0, average: str | None = "tasks", name: str | None = None,
                 **kwargs: Any):
        _check_average(average)
        if average is None:
            raise ValueError("a scorer returns one number: average must not be None.")
        self.metric = metric
        self.response_method = response_method
        self.sign = float(sign)
        self.average = average
        self.name = name or getattr(metric, "__name__", "score")
        self.kwargs = kwargs

    def __call__(self, estimator: Any, X: Any, y: Any, task: Any = None) -> float:
        method = getattr(estimator, self.response_method)
        pred = method(X) if task is None else method(X, task=task)
        ys, preds = _by_task(X, y, task, pred)
        return self.sign * float(self.metric(ys, preds, average=self.average, **self.kwargs))

    def get_metadata_routing(self) -> MetadataRequest:
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="task", alias=True)
        return request

    def __repr__(self) -> str:
        return f"make_task_scorer({self.name!r}, average={self.average!r})"


def _by_task(X: Any, y: Any, task: Any, pred: Any) -> tuple[Any, Any]:
    """Targets and predictions in one of the forms the metrics read."""
    if isinstance(X, (list, tuple, Mapping)):
        return y, pred
    if task is not None:
        if isinstance(task, str) and is_frame(X) and task in X.columns:
            task = X[task]  # the ids are a column of X
        ids = np.asarray(task.to_numpy() if is_series(task) else task, dtype=object)
        codes, _ = pd.factorize(pd.Series(ids, dtype=object), sort=False)
        y_arr = np.asarray(y.to_numpy() if is_series(y) else y)
        p_arr = np.asarray(pred)
        rows = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
        return [y_arr[r] for r in rows], [p_arr[r] for r in rows]
    y_arr = np.asarray(y.to_numpy() if is_pandas(y) else y)
    if y_arr.ndim == 2:
        if isinstance(pred, list):  # predict_proba of a shared design: one array per task
            pred = np.column_stack([np.asarray(p)[:, 1] for p in pred])
        return y_arr, np.asarray(pred)
    return [y_arr], [np.asarray(pred)]


def make_task_scorer(
    metric: str | Callable,
    *,
    average: str = "tasks",
    greater_is_better: bool = True,
    response_method: str = "predict",
    **kwargs: Any,
) -> MultiTaskScorer:
    """A scorer usable as ``scoring=`` in scikit-learn for the regmtl estimators.

    The scorer returns ``sign * metric(ys, preds, average=average)`` with the targets and
    predictions split by task; losses are negated so that greater is always better (as in
    scikit-learn's ``neg_mean_squared_error``).

    Parameters
    ----------
    metric : str or callable
        A name of ``SCORERS`` (``"neg_mse"``, ``"neg_rmse"``, ``"neg_mae"``, ``"neg_nmse"``,
        ``"explained_variance"``, ``"r2"``, ``"accuracy"``, ``"roc_auc"``,
        ``"neg_log_loss"``; ``"mse"``, ``"auc"``, ``"log_loss"`` and scikit-learn's
        ``"neg_mean_squared_error"`` style names are accepted too), or a function
        ``metric(ys, preds, average=...)`` such as those of this module.
    average : {"tasks", "samples", "pooled"}, default="tasks"
        How the per-task values are combined (see the module docstring).
    greater_is_better, response_method
        For a callable ``metric`` only: a loss gets ``greater_is_better=False`` and is
        negated; ``response_method`` names the estimator method giving its input
        (``"predict"``, ``"predict_proba"`` or ``"decision_function"``).
    **kwargs
        Passed to the metric (e.g. ``pos_label``).

    Returns
    -------
    MultiTaskScorer
        Called as ``scorer(estimator, X, y, task=None)``; it requests ``task`` through
        metadata routing.

    Raises
    ------
    ValueError
        If ``metric`` is an unknown name or neither a name nor a callable, or ``average`` is
        not one of the three averages.

    See Also
    --------
    MultiTaskScorer : The scorer class, for any metric function.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.metrics import make_task_scorer, mse
    >>> data = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    >>> model = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(data.X, data.y)
    >>> scorer = make_task_scorer("mse", average="samples")
    >>> scorer
    make_task_scorer('neg_mse', average='samples')
    >>> score = scorer(model, data.X, data.y)
    >>> bool(score == -mse(data.y, model.predict(data.X), average="samples"))
    True

    A callable metric that is a loss:

    >>> make_task_scorer(mse, greater_is_better=False).sign
    -1.0
    """
    if isinstance(metric, str):
        name = _ALIASES.get(metric, metric)
        if name not in SCORERS:
            raise ValueError(f"unknown metric {metric!r}; use one of {sorted(SCORERS)} or a "
                             "callable metric(ys, preds, average=...).")
        fn, response, sign = SCORERS[name]
        return MultiTaskScorer(fn, response_method=response, sign=sign, average=average,
                               name=name, **kwargs)
    if not callable(metric):
        raise ValueError(f"metric must be a name or a callable; got {metric!r}.")
    return MultiTaskScorer(metric, response_method=response_method,
                           sign=1.0 if greater_is_better else -1.0, average=average, **kwargs)
