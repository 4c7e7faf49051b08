"""Assemble a problem (TaskData, Datafit, Penalty) from user inputs.

Shared by the estimators, :func:`alpha_max` and the model-selection code, so that nothing below
the estimators needs to import them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sklearn.utils import check_array

from .classes import check_classes, class_penalty, expand_classes, task_classes
from .datafits import LOSSES, Datafit, make_loss
from .feature_terms import feature_terms
from .penalties import Penalty, make_penalty
from .placements import placement_of
from .reductions import chain_of
from .solvers.certificates.certify import fit_intercepts
from .taskdata import TaskData

__all__ = ["LOSSES", "make_datafit", "make_data", "alpha_max", "check_loss_targets",
           "check_task_targets", "checked_targets", "deviance_explained", "encode_targets",
           "is_built", "task_deviance_explained"]

def make_datafit(loss: Any) -> Datafit:
    """A datafit from a registered loss name (``regmtl.datafits.LOSSES``), an instance, or a
    list of them, one per task (:func:`regmtl.datafits.make_loss`)."""
    return make_loss(loss)


def check_loss_targets(data: TaskData, datafit: Datafit) -> None:
    """Refuse targets outside the loss's domain (on the rows that carry weight); on task
    blocks held elsewhere (Dask), on every block, with the message of the rows in memory."""
    if type(datafit).check_targets is Datafit.check_targets:  # (no domain: nothing to check)
        return
    if not data.rows_local:
        data.numbers(data.blockwise(_checked_block, datafit, out="scalar").sum())
    elif data.y is not None and data.c is not None:
        check_task_targets(data, datafit, np.where(data.c > 0, data.y, 1.0))


def check_task_targets(data: TaskData, datafit: Datafit, y: np.ndarray) -> None:
    """The loss's check of the targets ``y`` of ``data``'s rows, its message naming the first
    task it refuses (with more than one task)."""
    try:
        datafit.bind(data).check_targets(y)
    except ValueError as exc:
        if data.n_tasks < 2:
            raise
        raise ValueError(f"task {_first_refused(data, datafit, y)!r}: {exc}") from None


def _first_refused(data: TaskData, datafit: Datafit, y: np.ndarray) -> Any:
    """The name of the first task whose targets its loss refuses (for the message)."""
    for k, (a, b) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
        loss = datafit.losses[data.task_index[k]] if datafit.kind == "mixed" else datafit
        try:
            loss.check_targets(y[a:b])
        except ValueError:
            return data.tasks[data.task_index[k]]
    return data.tasks[data.task_index[0]]


def _checked_block(block: TaskData, datafit: Datafit) -> float:
    """A task block's targets checked against the loss (:func:`check_loss_targets`)."""
    check_loss_targets(block, datafit)
    return 0.0


def encode_targets(data: TaskData, datafit: Datafit) -> TaskData:
    """Encode the labels of the binary tasks to -1/+1: every task for a binary loss, the
    tasks whose own loss is binary for one loss per task."""
    if datafit.kind == "binary":
        data.encode_binary()
    elif datafit.kind == "mixed":
        kinds = np.array([loss.kind for loss in datafit.task_losses(data)])
        if np.any(kinds == "binary"):
            data.encode_binary(tasks=np.flatnonzero(kinds == "binary"))
    return data


def checked_targets(data: TaskData, datafit: Datafit) -> TaskData:
    """A problem in this process (a task block of a problem held elsewhere) with its binary
    tasks' labels encoded (:func:`encode_targets`) and its targets checked against the loss
    (:func:`check_loss_targets`), ``datafit`` bound to its rows."""
    datafit = datafit.bind(data)
    encode_targets(data, datafit)
    check_loss_targets(data, datafit)
    return data


def deviance_explained(data: TaskData, datafit: Datafit, f: np.ndarray, w: np.ndarray,
                       classes: list | None = None) -> float:
    r"""The fraction of deviance explained, averaged over tasks:
    :math:`D^2_t = 1 - \sum_{r \in t} w_r d(y_r, f_r) / \sum_{r \in t} w_r d(y_r, b_t)`,
    ``d`` the loss's unit deviance and ``b_t`` the best constant score of task t on these
    rows (R^2 for the squared loss; scikit-learn's ``d2_tweedie_score``,
    ``d2_pinball_score``).

    Parameters
    ----------
    data : TaskData
        The rows scored, with their targets.
    datafit : Datafit
        The loss (one per task, or one for all).
    f : ndarray of shape (n_obs,)
        The model's scores.
    w : ndarray of shape (n_obs,)
        Row weights (0 where a label is missing).
    classes : list, optional
        Each task's two labels for the binary tasks of a fit with one loss per task.

    Returns
    -------
    float
        The mean of the tasks' D^2.
    """
    return float(np.mean(task_deviance_explained(data, datafit, f, w, classes)))


def task_deviance_explained(data: TaskData, datafit: Datafit, f: np.ndarray, w: np.ndarray,
                            classes: list | None = None) -> np.ndarray:
    """Each task's :math:`D^2_t` (:func:`deviance_explained` averages them): an array of
    shape (T,) in the order of ``data``'s segments."""
    datafit = datafit.bind(data)
    y = np.array(data.y, dtype=np.float64)
    if classes is not None:
        for k, t in enumerate(data.task_index):
            if classes[t] is not None:
                a, b = data.indptr[k], data.indptr[k + 1]
                y[a:b] = np.where(data.raw_y[a:b] == classes[t][1], 1.0, -1.0)
    y = np.where(w > 0, y, 1.0)
    data = dataclasses.replace(data, y=y, c=w, _cache={})
    S0 = datafit.state(y, data.row_zeros())
    b0 = np.zeros(data.n_tasks)
    S0, b0 = fit_intercepts(data, datafit, S0, b0)
    f0 = datafit.scores(y, S0)
    dev = data.task_sums(w * datafit.deviance(y, f))
    null = data.task_sums(w * datafit.deviance(y, f0))
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = np.where(null > 0, 1.0 - dev / null, np.where(dev <= 0, 1.0, 0.0))
    return d2


def make_data(X: Any, y: Any = None, task: Any = None, *, loss: str = "squared",
              sample_weight: Any = None, task_weight: Any = "equal",
              penalty: Penalty | None = None) -> TaskData:
    """A :class:`~regmtl.TaskData` from any input form (labels encoded to -1/+1 for
    the logistic loss; for the multinomial loss, the classes' layout of
    :func:`regmtl.classes.expand_classes`, each task's classes found among its weighted
    rows); a TaskData is returned as it is. With a penalty that declares
    feature blocks (:meth:`~regmtl.Penalty.feature_blocks`, e.g. :class:`~regmtl.MultiSource`),
    missing blocks (NaN) are filled with zeros (``regmtl.inputs.fill_missing_blocks``)."""
    if is_built(X):
        return X
    kind = make_datafit(loss).kind
    place = placement_of(X, y, task)
    if kind == "multiclass":
        place.in_memory("the multinomial loss (its classes' layout needs every task's labels)")
    blocks = source_blocks(penalty)
    data = place.task_data(X, y, task, sample_weight=sample_weight, task_weight=task_weight,
                           numeric_y=kind not in ("binary", "multiclass"), blocks=blocks,
                           check_x=None if blocks is None else _check_x_missing)
    if kind == "multiclass":  # one column of W per class of each task
        classes = task_classes(data)
        check_classes(data, classes)
        return expand_classes(data, classes)
    if not data.rows_local:  # (task blocks: their labels encoded as they were assembled)
        return data
    return encode_targets(data, make_datafit(loss))


def is_built(X: Any) -> bool:
    """Whether ``X`` is a problem already built (a TaskData, or task blocks on Dask),
    its targets checked then."""
    return isinstance(X, TaskData) or getattr(X, "rows_local", True) is False


def source_blocks(penalty: Any) -> tuple[int, ...] | None:
    """The validated feature blocks a penalty object declares
    (:meth:`~regmtl.Penalty.feature_blocks`), None for the others and for a name."""
    return penalty.feature_blocks() if isinstance(penalty, Penalty) else None


def _check_x_missing(X: Any, reset: bool) -> Any:  # noqa: ARG001 - check_x's signature
    return check_array(X, accept_sparse=("csr", "csc"), dtype=np.float64, input_name="X",
                       ensure_all_finite="allow-nan")


def alpha_max(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    penalty: str | Penalty = "l21",
    loss: Any = "squared",
    fit_intercept: bool = True,
    sample_weight: Any = None,
    task_weight: Any = "equal",
    offset: Any = None,
    penalty_factor: Any = None,
    exclude: Any = None,
    lower_bounds: Any = None,
    upper_bounds: Any = None,
    rescale_factors: bool = True,
    standardize: bool | str = False,
    factor_convention: str = "unit",
) -> float:
    r"""Smallest ``alpha`` for which ``W = 0`` is optimal.

    At ``W = 0`` (intercepts fitted, unless ``fit_intercept=False``) let
    ``theta0 = -l'(f0)`` and ``G0 = X^T (c theta0)``, minus the gradient of the data term,
    with column t equal to :math:`\frac{\omega_t}{n_t} X_t^\top \theta_{0,t}`. W = 0 is
    optimal exactly when ``G0`` lies in the penalty's dual ball, so ``alpha_max`` is the dual
    norm of ``G0``:

    - ``max_jt |G0_jt| / rho`` for ``L1`` and ``ElasticNet`` (``rho = l1_ratio``);
    - ``max_j ||G0_j||_2 / rho`` for ``L21``;
    - with ``positive=True`` the same of the positive part ``max(G0, 0)`` (0 when no entry of
      ``G0`` is positive: then every ``alpha > 0`` gives W = 0);
    - ``||G0||_2`` (the largest singular value) for ``Trace``;
    - ``max(max_j ||G0_j||_2, max_jt |G0_jt| / own_weight)`` for ``Dirty`` and
      ``max(||G0||_2, max_jt |G0_jt| / sparse_weight)`` for ``SparseLowRank``;
    - ``max(||G0||_2, max_t ||G0_:t||_2 / outlier_weight)`` for ``RobustLowRank`` and
      ``max(max_j ||G0_j||_2, max_t ||G0_:t||_2 / outlier_weight)`` for ``RobustFeatures``
      (``G0_:t`` the column of task t);
    - ``max_j ||G0_j||_2`` for ``TemporalGroupLasso`` (its quadratic part has no gradient at
      0) and ``max_j N*(G0_j)`` for ``FusedGroupLasso``, the dual norm of
      ``||u||_2 + fused_weight TV(u) + l1_weight ||u||_1`` (its ``dual_norms``).

    Regularization paths and the CV estimators start their grids there. Smooth penalties
    (``L2``, ``MeanRegularized``, ``GraphLaplacian``, ``Clustered``) and ``l1_ratio=0`` have
    none: no finite alpha makes W exactly zero.

    Parameters
    ----------
    X : array-like, sparse matrix, DataFrame, list or dict of them, or TaskData
        The design(s), in any input form of the estimators; or a task source read chunk by
        chunk (a :class:`~regmtl.parquet.ParquetTasks`, squared loss only): then from the
        out-of-core statistics pass, kept with the source for the fit that follows.
    y : array-like, or list or dict of them, optional
        Targets, in the form matching ``X`` (not needed for a TaskData).
    task : array-like or str, optional
        Task id of every row (long form), or the name of a column of a DataFrame ``X``.
    penalty : str or Penalty, default="l21"
        The penalty's name or object.
    loss : str, Datafit or list of them, default="squared"
        The data term, as the estimators' ``loss=`` (``"logistic"`` encodes each task's two
        labels to -1/+1; ``"multinomial"`` lays each task's classes out as columns, one per
        class, so that ``G0`` has ``sum_t K_t`` columns; a list holds one loss per task).
    fit_intercept : bool, default=True
        Whether the intercepts are fitted (at W = 0 they then absorb the targets' means).
    sample_weight : array-like, or list of them, optional
        One weight per row.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        The task weights of the objective.
    offset : array-like, or list of them, optional
        A fixed term of each row's linear predictor, as for the estimators' ``fit``.
    penalty_factor, exclude, lower_bounds, upper_bounds, rescale_factors, standardize
        The per-feature terms of the estimators (``regmtl.feature_terms``): then
        ``alpha_max`` is the dual norm of ``G0`` over the penalized features in their units,
        with the unpenalized ones (and the intercepts) fitted first, and ``coef_ == 0`` means
        on the penalized features. With bounds it is that of the problem without them, an
        upper bound (the box only helps W = 0); bounds that exclude 0 have none.
    factor_convention : {"unit", "glmnet"}, default="unit"
        How a factor enters a ridge part, as for the estimators; a ridge has no gradient at
        W = 0, so ``alpha_max`` is the same under both (checked all the same).

    Returns
    -------
    float
        ``alpha_max``: every ``alpha >= alpha_max`` gives ``coef_ == 0``.

    Raises
    ------
    ValueError
        If the penalty has no ``alpha_max`` (see above), or the data are invalid.

    See Also
    --------
    regmtl.regularization_path : Solutions on a grid that starts at ``alpha_max``.
    regmtl.selection.alpha_scale : The scale of ``alpha`` for penalties without one.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> a_max = rm.alpha_max(X, Y, penalty="l21")
    >>> Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)  # the intercepts' effect
    >>> bool(np.isclose(a_max, np.linalg.norm(Xc.T @ Yc / 50, axis=1).max()))
    True
    >>> model = rm.MultiTaskRegressor("l21", alpha=a_max).fit(X, Y)
    >>> bool(np.all(model.coef_ == 0))
    True
    """
    datafit = make_datafit(loss)
    given = dict(y=y, task=task, sample_weight=sample_weight, offset=offset,
                 penalty_factor=penalty_factor, exclude=exclude, lower_bounds=lower_bounds,
                 upper_bounds=upper_bounds, standardize=standardize)
    return placement_of(X, y, task).alpha_max(
        X, penalty, datafit.name, fit_intercept, task_weight, given, lambda: _rows_alpha_max(
            X, y, task, penalty, datafit, fit_intercept, sample_weight, task_weight, offset,
            (penalty_factor, exclude, lower_bounds, upper_bounds, rescale_factors,
             standardize), factor_convention))


def _rows_alpha_max(X: Any, y: Any, task: Any, penalty: Any, datafit: Datafit,
                    fit_intercept: bool, sample_weight: Any, task_weight: Any, offset: Any,
                    per_feature: tuple, factor_convention: str = "unit") -> float:
    """:func:`alpha_max` of rows read as a TaskData (in memory, or task blocks)."""
    pen = make_penalty(penalty)
    data = make_data(X, y, task, loss=datafit, sample_weight=sample_weight,
                     task_weight=task_weight, penalty=pen)
    pen = class_penalty(pen, data)
    pen.check(data.n_features, data.n_tasks)
    if not is_built(X):
        check_loss_targets(data, datafit.bind(data))
    terms = feature_terms(*per_feature, data.n_features, data.n_tasks,
                          getattr(data, "feature_names", None), pen, factor_convention)
    return chain_of(data, datafit, pen, fit_intercept, offset=offset, terms=terms,
                    live=False).alpha_max()
