r"""The rows of a fitted linear model, task by task: what every standard error is built from.

For task t with observed rows r (sample weights :math:`c_r`, a missing label of a shared Y
is no row), the design in the input's units :math:`Z_t = [X_t, 1]` (the intercept column
last, where one was fitted), the linear predictor :math:`f_r = x_r \cdot w_t + b_t + o_r`
(``o`` the offset), and the loss's first and second derivatives in the score, weighted:

.. math::

    s_r = c_r\, \ell_t'(y_r, f_r), \qquad h_r = c_r\, \ell_t''(y_r, f_r).

The gradient of task t's weighted data term :math:`\sum_r c_r \ell_t(y_r, f_r)` in
:math:`\beta_t = (w_t, b_t)` is :math:`Z_t^\top s`, its Hessian :math:`Z_t^\top
\mathrm{diag}(h) Z_t`. The task weights and the ``1 / n_t`` of the objective are not in
``c``: they scale a task's data term, not its likelihood.

The rows are read by the model's own input handling (every input form ``fit`` takes; the
checks of ``predict`` and ``score``: the fitted tasks, the number of features, y present);
a classifier's labels are coded -1 / +1 by its fitted ``classes_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..reductions import task_offsets

__all__ = ["TaskRows", "ModelRows", "model_rows"]


@dataclass(frozen=True)
class TaskRows:
    """One task's observed rows at a fit.

    Attributes
    ----------
    task : object
        The task's label (``model.tasks_``).
    index : int
        Its position in ``model.tasks_`` (the row of ``coef_``).
    X : ndarray of shape (n_t, q)
        The design in the input's units, the intercept column (ones) last where fitted.
    y : ndarray of shape (n_t,)
        Targets (-1 / +1 for a task of two labels).
    offset : ndarray of shape (n_t,)
        The offset of each row (0 without one).
    f : ndarray of shape (n_t,)
        The linear predictor ``X @ coef + offset``.
    weight : ndarray of shape (n_t,)
        Sample weights ``c_r`` (> 0).
    score : ndarray of shape (n_t,)
        ``c_r l'(y_r, f_r)``.
    curvature : ndarray of shape (n_t,)
        ``c_r l''(y_r, f_r)`` (0 for the pinball loss).
    coef : ndarray of shape (q,)
        The fitted ``(w_t, b_t)``.
    loss : Datafit
        The task's loss (with its fitted parameters).
    """

    task: Any
    index: int
    X: np.ndarray
    y: np.ndarray
    offset: np.ndarray
    f: np.ndarray
    weight: np.ndarray
    score: np.ndarray
    curvature: np.ndarray
    coef: np.ndarray
    loss: Datafit

    @property
    def n_rows(self) -> int:
        """The number of observed rows."""
        return len(self.y)


@dataclass(frozen=True)
class ModelRows:
    """Every task's :class:`~regmtl.inference.rows.TaskRows` and what names their coefficients.

    Attributes
    ----------
    tasks : list of TaskRows
        One per task present in the rows, in the model's task order.
    names : list of str
        The coefficients' names, ``q`` of them: the features, then ``"intercept"``.
    shared_design : bool
        Whether the rows came as one design for every task (``fit(X, Y)``): the tasks'
        rows are then the same units, and their errors may be correlated.
    fit_intercept : bool
        Whether the intercepts were fitted (the last column of each design).
    """

    tasks: list[TaskRows]
    names: list[str]
    shared_design: bool
    fit_intercept: bool

    def blocks(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """``(X_t, curvature_t, score_t, coef_t)`` of every task: the design (intercept
        column last where fitted), ``c l''(f)``, ``c l'(f)`` and ``(w_t, b_t)``, what an
        estimator built on the fit's local quadratic (a debiased lasso) takes."""
        return [(t.X, t.curvature, t.score, t.coef) for t in self.tasks]


def _labels_coded(model: Any, data: Any, k: int, y: np.ndarray) -> np.ndarray:
    """Task k's labels as -1 / +1 by the model's fitted classes of that task."""
    t = int(data.task_index[k])
    cls = model.classes_[t] if isinstance(model.classes_, list) else model.classes_
    unknown = ~np.isin(y, cls)
    if unknown.any():
        raise ValueError(f"y: task {data.tasks[t]!r} has the label {y[unknown][0]!r}, not one "
                         f"of the classes it was fitted on, {list(cls)}.")
    return np.where(y == cls[1], 1.0, -1.0)


def _task_losses(model: Any, data: Any) -> list[Datafit]:
    """The loss of every task of ``data`` (a loss per task: each its own), as fitted."""
    loss = model._fitted_loss()
    if loss.kind == "mixed":
        return [loss.losses[int(t)] for t in data.task_index]
    return [loss] * data.n_tasks


def model_rows(model: Any, X: Any, y: Any, task: Any = None, offset: Any = None,
               sample_weight: Any = None) -> ModelRows:
    r"""The rows of a fitted linear model, task by task (:class:`~regmtl.inference.rows.TaskRows`).

    Parameters
    ----------
    model : MultiTaskRegressor or MultiTaskClassifier
        A fitted model.
    X, y, task, offset, sample_weight
        The rows, in any input form of ``model.fit`` (the training rows, for standard errors
        of the fit).

    Returns
    -------
    ModelRows
        Per task the design ``[X_t, 1]``, targets, offset, linear predictor, weights,
        ``c l'(f)`` and ``c l''(f)`` at the fitted coefficients.

    Raises
    ------
    ValueError
        Where ``y`` is missing, the rows do not match the fit (features, tasks, shapes), or
        the model is multinomial (a row is scored once per class).
    """
    if y is None:
        raise ValueError("y is required: standard errors and tests are computed on the rows "
                         "and targets of the fit.")
    if getattr(model, "_multi", False):
        raise ValueError(
            "the multinomial fit (a task of more than two classes) is refused: its symmetric "
            "parameterization is not identified without a penalty, so its coefficients have "
            "no covariance. Fit each class against the rest (MultiTaskClassifier on binary "
            "labels) or use regmtl.stability_selection.")
    data, f = model._scores(X, task, y, sample_weight)
    o_flat = (np.zeros(data.n_obs) if offset is None else
              task_offsets(data, model._fitted_loss(), offset))
    f = f + o_flat
    W, b = model.coef_matrix_, model._b
    fi = bool(model.fit_intercept)
    weights = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight
    observed = np.ones(data.n_obs, dtype=bool) if data.observed is None else data.observed
    y_flat = data.y if data.y is not None else np.asarray(data.raw_y)
    names = list(getattr(model, "feature_names_in_", [f"x{j}" for j in range(W.shape[0])]))
    if fi:
        names.append("intercept")
    tasks, designs = [], {}
    for k, loss in enumerate(_task_losses(model, data)):
        a, e = int(data.indptr[k]), int(data.indptr[k + 1])
        keep = np.flatnonzero(observed[a:e] & (weights[a:e] > 0))
        flat = a + keep
        key = keep.tobytes() if data.shared else None  # (a shared design: one array per
        Xt = designs.get(key)                          # pattern of rows, not one per task)
        if Xt is None:
            Xt = data.X[keep if data.shared else flat]
            Xt = Xt.toarray() if sp.issparse(Xt) else np.asarray(Xt, dtype=np.float64)
            if fi:
                Xt = np.column_stack([Xt, np.ones(len(keep))])
            if key is not None:
                designs[key] = Xt
        yt = y_flat[flat]
        if loss.kind == "binary":
            yt = _labels_coded(model, data, k, yt)
        yt = np.asarray(yt, dtype=np.float64)
        loss.check_targets(yt)
        t = int(data.task_index[k])
        ft, ct = f[flat], np.asarray(weights[flat], dtype=np.float64)
        coef = np.concatenate([W[:, t], [b[t]]]) if fi else W[:, t].copy()
        tasks.append(TaskRows(
            task=data.tasks[t], index=t, X=Xt, y=yt, offset=o_flat[flat], f=ft, weight=ct,
            score=-ct * loss.theta(yt, ft), curvature=ct * loss.hessian(yt, ft), coef=coef,
            loss=loss))
    return ModelRows(tasks, names, bool(data.shared), fi)
