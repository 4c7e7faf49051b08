r"""Which modality each task leans on: the rise of a task's loss when a modality is masked.

For a wrapper fitted on :class:`~regmtl.deep.Modalities`, :func:`modality_importance` scores
each task t on held-out rows with nothing masked, :math:`L_t`, then once per modality j with
that modality set missing on every row (its mask column True, so the
:class:`~regmtl.deep.FusedTrunk` reads its learned missing vector :math:`m_j` instead),
:math:`L_{t,-j}`, and reports the *increase* :math:`L_{t,-j} - L_t` and the *relative
increase* :math:`(L_{t,-j} - L_t) / L_t`. A task that does not use modality j loses nothing
without it (an increase near 0); a task that reads only j falls back to what the missing
vector tells it. The net runs in evaluation mode (no dropout, no modality dropout), so the
table is deterministic.

The loss is the task's own, in the target's units: squared error for a regression task
(pinball loss for a quantile task), the mean Poisson deviance for a count task, log loss for
a classification task.

A fit on Modalities with a validation split (``early_stopping=True``) keeps the table on the
validation rows as ``modality_importance_``; :func:`~regmtl.report.training_report` shows it,
and ``save`` / :func:`regmtl.load` carry it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from .._options import check_option
from ..serialization import array_from_json, array_to_json
from ._torch import torch
from .inputs import as_inputs, chunks, to_device
from .modalities import MISSING_KEY
from .tasks import mean_poisson_deviance, pinball

__all__ = ["modality_importance", "importance_after_fit", "COLUMNS"]

#: the columns of the table
COLUMNS = ("task", "modality", "loss", "masked_loss", "increase", "relative_increase", "rows")


def modality_importance(estimator: Any, X: Any, y: Any, task: Any = None, *,
                        batch_size: int = 4096) -> pd.DataFrame:
    """For each task and each modality, how much the task's loss on ``X`` rises when that
    modality is masked on every row (the rule of the module's docstring).

    Parameters
    ----------
    estimator : DeepMultiTaskRegressor, DeepMultiTaskClassifier or DeepMultiTaskModel
        Fitted on a :class:`~regmtl.deep.Modalities`.
    X : Modalities, or list or dict of them
        Held-out rows, in the form of the fit.
    y : array-like, or list or dict of them
        Their targets, as ``score`` takes them.
    task : array-like of shape (n_samples,), optional
        The task of each row (long form).
    batch_size : int, default=4096
        Rows per forward pass.

    Returns
    -------
    DataFrame
        One row per (task, modality): ``task``, ``modality``, ``loss`` (nothing masked),
        ``masked_loss``, ``increase`` (their difference), ``relative_increase`` (the
        increase over ``loss``) and ``rows`` (the task's observed rows; a task without any
        has NaN losses).

    Raises
    ------
    ValueError
        If the estimator was not fitted on a Modalities, or ``X`` is not of the fit's
        modalities.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import DeepMultiTaskRegressor, Modalities
    >>> from regmtl.deep.modality_use import modality_importance
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
    >>> X, y = Modalities(a=a, b=b), np.column_stack([a[:, 0], b[:, 1]])
    >>> model = DeepMultiTaskRegressor(hidden=(16,), max_epochs=5).fit(X, y)
    >>> table = modality_importance(model, X, y)
    >>> list(table.columns)
    ['task', 'modality', 'loss', 'masked_loss', 'increase', 'relative_increase', 'rows']
    >>> table.shape
    (4, 7)
    """
    check_is_fitted(estimator)
    if getattr(estimator, "modalities_", None) is None:
        raise ValueError(f"modality_importance: {type(estimator).__name__} was not fitted on "
                         "a regmtl.deep.Modalities, so it has no modality to mask; fit it "
                         "on X=Modalities(name=input, ...).")
    batch_size = check_option("batch_size", batch_size, "int", low=1)
    data = estimator._predict_data(X, task, y)
    x = as_inputs(estimator._design(data))
    labels = _encoded(estimator, data)
    if data.shared or estimator.n_tasks_ == 1:
        return _table(estimator, x, estimator._targets(data, labels), None, batch_size)
    rows = np.asarray(data.task_index[data.task_of], dtype=np.int64)
    return _table(estimator, x, labels, rows, batch_size)


def importance_after_fit(estimator: Any, val: tuple) -> pd.DataFrame:
    """The table on the validation data of a fit, as the wrappers pack it: ``(X, {task:
    y})`` (a column per task) or ``(X, (task index, y))`` (per row)."""
    x, targets = val
    if isinstance(targets, dict):
        Y = np.column_stack([np.asarray(targets[s.name], dtype=np.float64)
                             for s in estimator.net_.tasks])
        return _table(estimator, as_inputs(x), Y, None, 4096)
    rows, Y = targets
    return _table(estimator, as_inputs(x), np.asarray(Y, dtype=np.float64),
                  np.asarray(rows, dtype=np.int64), 4096)


def _encoded(estimator: Any, data: Any) -> np.ndarray:
    """The targets of ``data`` as the fit encoded them: values, or class codes."""
    classes = getattr(estimator, "classes_", None)
    if classes is not None and estimator.input_form_ == "single":
        classes = [classes]
    y = np.full(data.n_obs, np.nan)
    for k, (s, _) in enumerate(data.segments()):
        t = data.task_index[k]
        cls = None if classes is None else classes[t]
        if cls is None:
            y[s] = np.asarray(data.y[s] if data.y is not None else data.raw_y[s],
                              dtype=np.float64)
            continue
        code = {c: i for i, c in enumerate(np.asarray(cls).tolist())}
        raw = np.asarray(data.raw_y[s], dtype=object).tolist()
        unknown = [v for v in raw if v not in code]
        if unknown:
            raise ValueError(f"y: task {data.tasks[t]!r} has the label {unknown[0]!r:.40}, "
                             "which is not one of the classes of the fit.")
        y[s] = [code[v] for v in raw]
    return y


def _outputs(net: Any, x: Any, rows: np.ndarray | None, batch_size: int) -> Any:
    """The net's outputs: {task: (n, width)} (a column per task), or (n, width) per row."""
    device = next(net.parameters()).device
    with torch.no_grad():
        if rows is None:
            outs = [net(to_device(xb, device)) for xb in chunks(x, batch_size)]
            return {s.name: torch.cat([o[s.name] for o in outs]).double().cpu().numpy()
                    .reshape(-1, s.n_outputs) for s in net.tasks}
        r = torch.from_numpy(rows)
        out = [net(to_device(xb, device), rows=r[i:i + batch_size].to(device))
               for i, xb in zip(range(0, len(rows), batch_size), chunks(x, batch_size),
                                strict=True)]
        return torch.cat([o.reshape(o.shape[0], -1) for o in out]).double().cpu().numpy()


def _loss(spec: Any, y: np.ndarray, f: np.ndarray) -> float:
    """The task's own loss of the outputs ``f`` (n, width) on the encoded targets ``y``."""
    if spec.kind == "binary":
        z = f[:, 0]
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    if spec.kind == "multiclass":
        f = f[:, :spec.n_outputs]
        return float(np.mean(logsumexp(f, axis=1) - f[np.arange(len(y)), y.astype(np.int64)]))
    if spec.kind == "count":
        mean = spec.transform(torch.from_numpy(np.ascontiguousarray(f[:, :1]))).numpy()
        return mean_poisson_deviance(y, mean.reshape(-1))
    if spec.quantile is not None:
        return pinball(spec.quantile, y, f[:, 0])
    return float(np.mean((y - f[:, 0]) ** 2))


def _losses(estimator: Any, x: Any, Y: np.ndarray, rows: np.ndarray | None,
            batch_size: int) -> tuple[list[float], list[int]]:
    """Each task's loss and observed rows."""
    net = estimator.net_
    out = _outputs(net, x, rows, batch_size)
    losses, counts = [], []
    for t, spec in enumerate(net.tasks):
        if rows is None:
            y, f = Y[:, t], out[spec.name]
        else:
            y, f = Y[rows == t], out[rows == t]
        seen = ~np.isnan(y)
        counts.append(int(seen.sum()))
        losses.append(_loss(spec, y[seen], f[seen]) if seen.any() else np.nan)
    return losses, counts


def _table(estimator: Any, x: Any, Y: np.ndarray, rows: np.ndarray | None,
           batch_size: int) -> pd.DataFrame:
    net = estimator.net_
    names = estimator.modalities_["names"]
    was_training = net.training
    net.eval()
    try:
        base, counts = _losses(estimator, x, Y, rows, batch_size)
        masked = []
        for j in range(len(names)):
            mask = torch.as_tensor(x[MISSING_KEY]).clone().bool()
            mask[:, j] = True
            masked.append(_losses(estimator, {**x, MISSING_KEY: mask}, Y, rows, batch_size)[0])
    finally:
        net.train(was_training)
    T, M = len(estimator.tasks_), len(names)
    return _frame(np.repeat(np.asarray(estimator.tasks_), M), np.tile(list(names), T),
                  np.repeat(np.asarray(base, dtype=np.float64), M),
                  np.asarray(masked, dtype=np.float64).T.reshape(-1),
                  np.repeat(np.asarray(counts), M))


def _frame(tasks: Any, modalities: Any, loss: np.ndarray, masked: np.ndarray,
           rows: Any) -> pd.DataFrame:
    """The table of :data:`COLUMNS` from each (task, modality)'s losses: the increase and
    the increase relative to the loss (NaN where the loss is 0)."""
    rise = masked - loss
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(loss > 0, rise / np.where(loss > 0, loss, 1.0), np.nan)
    return pd.DataFrame({"task": tasks, "modality": modalities, "loss": loss,
                         "masked_loss": masked, "increase": rise,
                         "relative_increase": relative, "rows": rows}, columns=list(COLUMNS))


def importance_to_json(table: pd.DataFrame) -> dict:
    """``modality_importance_`` as saved: its columns."""
    return {"task": array_to_json(np.asarray(table["task"])),
            "modality": [str(v) for v in table["modality"]],
            **{c: [float(v) for v in table[c]] for c in ("loss", "masked_loss")},
            "rows": [int(v) for v in table["rows"]]}


def importance_from_json(value: Any) -> pd.DataFrame:
    """The table :func:`importance_to_json` wrote, checked."""
    ok = isinstance(value, dict) and set(value) == {"task", "modality", "loss", "masked_loss",
                                                     "rows"}
    if ok:
        tasks = array_from_json(value["task"], "attribute 'modality_importance_'")
        n = len(tasks)
        ok = tasks.ndim == 1 and all(
            isinstance(value[c], list) and len(value[c]) == n
            for c in ("modality", "loss", "masked_loss", "rows")) \
            and all(isinstance(v, str) for v in value["modality"]) \
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    for c in ("loss", "masked_loss") for v in value[c]) \
            and all(type(v) is int and v >= 0 for v in value["rows"])
    if not ok:
        raise ValueError("attribute 'modality_importance_' is not a table of tasks, "
                         "modalities, losses and rows")
    loss, masked = (np.asarray(value[c], dtype=np.float64) for c in ("loss", "masked_loss"))
    return _frame(tasks, value["modality"], loss, masked, value["rows"])
