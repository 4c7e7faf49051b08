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
import pandas as pd
from scipy.stats import rankdata
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.utils.metadata_routing import MetadataRequest

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
        labels = list(ys.columns) if isinstance(ys, pd.DataFrame) else list(range(Y.shape[1]))
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
        y = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
        f = np.asarray(f.to_numpy() if isinstance(f, (pd.Series, pd.DataFrame)) else f)
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
    return isinstance(obj, pd.DataFrame) or (isinstance(obj, np.ndarray) and obj.ndim == 2)


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
    r"""Mean squared error :math:`\mathrm{MSE}_t = \frac1{n_t} \sum_i (y_{ti} - f_{ti})^2`.

    ``average``: ``None``, ``"tasks"``, ``"samples"`` or ``"pooled"`` (module docstring);
    ``"samples"`` and ``"pooled"`` both give :math:`\sum_{t,i} (y_{ti} - f_{ti})^2 / N`.
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds)
    vals = np.array([np.mean((y - f) ** 2) for y, f in zip(ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: np.mean((np.concatenate(ys_) - np.concatenate(fs)) ** 2))


def rmse(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Root mean squared error :math:`\mathrm{RMSE}_t = \sqrt{\mathrm{MSE}_t}`.

    ``"tasks"`` averages the per-task RMSEs (not the root of the mean MSE); ``"pooled"`` is
    :math:`\sqrt{\sum_{t,i} (y_{ti} - f_{ti})^2 / N}`.
    """
    _check_average(average)
    _, ys_, fs = _split(ys, preds)
    vals = np.array([np.sqrt(np.mean((y - f) ** 2)) for y, f in zip(ys_, fs, strict=True)])
    return _reduce(vals, _sizes(ys_), average,
                   lambda: np.sqrt(np.mean((np.concatenate(ys_) - np.concatenate(fs)) ** 2)))


def mae(ys: Tasks, preds: Tasks, *, average: str | None = "tasks") -> Result:
    r"""Mean absolute error :math:`\mathrm{MAE}_t = \frac1{n_t} \sum_i |y_{ti} - f_{ti}|`."""
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
    scikit-learn's ``r2_score`` per task (:func:`r2` is the same function). The School
    figures of Argyriou, Evgeniou & Pontil (2008) and later work (about 30-37 %) are the
    ``"pooled"`` value: the variance around the mean of all test targets, which also credits
    predicting the differences between schools.
    It differs from scikit-learn's ``explained_variance_score``, which uses the variance of
    the residuals, :math:`1 - \mathrm{Var}(y - f)/\mathrm{Var}(y)`, and so ignores a constant
    bias of the predictions. A task with constant targets gives NaN (with a warning).
    ``"pooled"`` measures the variance around the mean of all rows.
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

    Note the default differs from the other metrics' ``"tasks"``. Code written in MATLAB
    often divides by ``var(y_t)``, which uses :math:`n_t - 1`: per task, that value is this
    one times :math:`(n_t - 1)/n_t`. MALSAR's example ``eval_MTL_mse`` returns
    :math:`\sum_t n_t \sqrt{\mathrm{SSE}_t} / N`, a different quantity. A task with constant
    targets gives NaN.
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
    r"""Accuracy :math:`\frac1{n_t} \sum_i 1[\hat y_{ti} = y_{ti}]`; ``preds`` are labels.

    ``"samples"`` and ``"pooled"`` both give the fraction of all rows predicted right.
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
    ranks = rankdata(score)  # ties share the mean rank, i.e. count one half
    return float((ranks[pos == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(ys: Tasks, scores: Tasks, *, average: str | None = "tasks",
        pos_label: Any = None) -> Result:
    r"""Area under the ROC curve of each task.

    .. math::

        \mathrm{AUC}_t = \frac{1}{n_t^+ n_t^-} \sum_{i: y_{ti} = +} \sum_{j: y_{tj} = -}
        \left(1[s_{ti} > s_{tj}] + \tfrac12 1[s_{ti} = s_{tj}]\right),

    the probability that a random positive scores above a random negative. ``scores`` are any
    scores increasing with the positive class (probabilities, decision values, or the
    ``(n_t, 2)`` output of ``predict_proba``). The positive class is ``pos_label``, else 1 for
    labels in {0, 1} or {-1, +1}, else the larger of the task's two labels. A task with one
    class gets NaN and a warning; ``"tasks"`` and ``"samples"`` skip such tasks. ``"pooled"``
    ranks all rows together, so it also rewards scores that order the tasks' base rates.
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
    :math:`[\epsilon, 1 - \epsilon]` (machine epsilon) as scikit-learn does. ``proba`` holds
    1-D probabilities or the ``(n_t, 2)`` output of ``predict_proba``.
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
    ys, preds : per-task targets and predictions (labels for ``kind="binary"``; may be None
        when ``proba`` is given)
    kind : {"regression", "binary"}
        Regression: ``mse``, ``rmse``, ``mae``, ``explained_variance``, ``nmse``. Binary:
        ``accuracy`` (from ``preds``), and ``auc``, ``log_loss`` when ``proba`` is given.
    proba : per-task probabilities of the positive class (or ``predict_proba`` output)
    task_names : names for the ``task`` column; default the dict keys or 0..T-1
    pos_label : positive class for ``auc`` and ``log_loss`` (see :func:`auc`)

    Returns
    -------
    DataFrame
        Columns ``task``, ``n`` (rows scored) and one per metric.
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
    """Every metric of ``kind`` under the three averages: rows ``tasks``, ``samples``,
    ``pooled``; arguments as for :func:`task_scores`."""
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
        if isinstance(task, str) and isinstance(X, pd.DataFrame) and task in X.columns:
            task = X[task]  # the ids are a column of X
        ids = np.asarray(task.to_numpy() if isinstance(task, pd.Series) else task, dtype=object)
        codes, _ = pd.factorize(pd.Series(ids, dtype=object), sort=False)
        y_arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
        p_arr = np.asarray(pred)
        rows = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
        return [y_arr[r] for r in rows], [p_arr[r] for r in rows]
    y_arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
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

    Parameters
    ----------
    metric : str or callable
        A name of :data:`SCORERS` (``"neg_mse"``, ``"neg_rmse"``, ``"neg_mae"``, ``"neg_nmse"``,
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
