r"""Placements: where the rows of a fit or of a prediction live, behind one interface.

======================  ===============================================  ======================
placement               holds                                            its rows are read
======================  ===============================================  ======================
:class:`ParquetStream`  a task source (:class:`~regmtl.ParquetTasks`)     chunk by chunk
:class:`DaskBlocks`     Dask arrays, DataFrames and Series                as task blocks on the
                                                                         workers
:class:`InMemory`       arrays, sparse matrices, DataFrames, lists and    as one TaskData
                        dicts of them
======================  ===============================================  ======================

A linear estimator asks :func:`placement_of` where its inputs live and calls that placement;
it holds no branch on it. A placement does what a model does with rows: :meth:`~Placement.fit`
(a checkpoint is the business of the placement that reads from disk, and refused by name by
the others), :meth:`~Placement.problem` (a fit's TaskData, which the CV and the support matrix
read), :meth:`~Placement.outputs` (a per-row output: in the input's form, its row order, or a
lazy array) and :meth:`~Placement.score` (a per-task score, averaged over tasks).
:func:`regmtl.alpha_max` and :func:`regmtl.problem.make_data` ask it for ``alpha_max`` and for
the data of the functional API.

An estimator declares each output once, in the forms the placements read
(:class:`RowOutput`, :class:`TaskMetric`): ``block(data, f)`` on rows held as a TaskData (in
memory, or a chunk of a source), ``lazy(f, codes)`` on a Dask partition's scores ``f`` and its
rows' task positions ``codes``. A new placement (Ray, Spark) is one class here, registered in
:data:`PLACEMENTS` before :class:`InMemory`, which takes whatever no other one holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .dask import is_dask_collection
from .fitted import publish_input
from .inputs import as_task_data, offset_column
from .parquet import is_parquet_tasks
from .solvers.streamed.fit import is_task_source
from .taskdata import TaskData

__all__ = ["DaskBlocks", "FitRows", "InMemory", "PLACEMENTS", "ParquetStream", "Placement",
           "RowOutput",
           "TaskMetric", "need_targets", "placement_of"]

#: ``block(data, f)``: per-row values of rows held as a TaskData, from their scores ``f``
Block = Callable[[TaskData, np.ndarray], np.ndarray]


class FitRows(NamedTuple):
    """The rows of a fit where they live (``MultiTaskLinear.fit_rows``): ``data`` (a TaskData
    or task blocks, labels encoded), ``layout`` the classes' layout of a multinomial fit or
    None, ``loss`` the loss with its parameters read from the rows."""

    data: Any
    layout: Any
    loss: Any


@dataclass(frozen=True)
class RowOutput:
    """One per-row output of a fitted linear model, in the forms the placements read.

    ``block(data, f)`` gives the rows' values from their scores ``f = x . w_t + b_t`` (in
    memory and on a chunk of a source); ``lazy(f, codes)`` the same on a Dask partition, from
    the scores and the rows' task positions (None: the scores as they are).
    ``form(data, values)`` puts the values of rows in memory in the form of ``X``
    (``data.to_form`` by default)."""

    block: Block
    lazy: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    form: Callable[[TaskData, np.ndarray], Any] | None = None


@dataclass(frozen=True)
class TaskMetric:
    """A per-task score of a fitted linear model (R^2, D^2, accuracy), averaged over tasks.

    ``per_task(data, f)``: each task's score from its rows' scores (in memory, on a chunk of
    a source); on Dask the ``kind`` of :func:`regmtl.dask.task_score` (``"r2"``,
    ``"accuracy"``) with its ``post(f, codes)``, or ``refusal`` where the score is not
    computed there."""

    per_task: Callable[[TaskData, np.ndarray], np.ndarray]
    kind: str | None = None
    post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    refusal: str | None = None


class Placement:
    """Where rows live; the interface the estimators call (see the module's docstring)."""

    name: str = ""

    def holds(self, X: Any, y: Any = None, task: Any = None) -> bool:
        """Whether the inputs live here."""
        raise NotImplementedError

    def fit(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
            checkpoint: Any) -> Any:
        """Fit ``model`` on the rows; returns it, its fitted attributes written."""
        if checkpoint is not None:
            raise ValueError(f"checkpoint: a fit {self.name} is not resumed from a folder; "
                             "checkpoint= is for the out-of-core fit of a task source "
                             "(ParquetTasks).")
        X, offset = offset_column(X, offset)
        return model._fit_data(self.problem(model, X, y, task, sample_weight), offset=offset)

    def problem(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any) -> Any:
        """The TaskData (or task blocks) a fit of ``model`` solves, its input facts
        (``n_features_in_``, ``feature_names_in_``) written on ``model``."""
        raise NotImplementedError

    def refit(self, model: Any, rows: FitRows, X: Any, y: Any, task: Any,
              sample_weight: Any, offset: Any) -> Any:
        """Fit ``model`` on rows already read for another fit (``rows``, of
        ``MultiTaskLinear.fit_rows``): the CV's refit at the alpha it chose."""
        return model.fit(X, y, task=task, sample_weight=sample_weight,
                         **({} if offset is None else {"offset": offset}))

    def task_data(self, X: Any, y: Any, task: Any, **how: Any) -> Any:
        """The rows as a TaskData (or task blocks) for the functional API (``how``: the
        keywords of :func:`regmtl.inputs.as_task_data`)."""
        raise NotImplementedError

    def alpha_max(self, X: Any, penalty: Any, loss: str, fit_intercept: bool,
                  task_weight: Any, given: dict[str, Any], of_rows: Callable[[], float]
                  ) -> float:
        """:func:`regmtl.alpha_max` of the rows: ``of_rows()`` computes it on the rows as a
        TaskData (in memory, or task blocks); a placement that reads its rows otherwise
        computes it itself (``given``: the other arguments, refused by name where it takes
        none of them)."""
        return of_rows()

    def outputs(self, model: Any, X: Any, task: Any, out: RowOutput, offset: Any = None
                ) -> Any:
        """``out`` for every row of ``X``."""
        raise NotImplementedError

    def score(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
              metric: TaskMetric) -> float:
        """``metric`` of every task of the rows, averaged over tasks."""
        raise NotImplementedError

    def in_memory(self, what: str) -> None:
        """Refuse, naming ``what``, an operation that only rows in memory take."""
        raise ValueError(f"{what} takes rows in memory, not {self.rows}; {self.advice}")

    rows = ""
    advice = ""


class InMemory(Placement):
    """Rows in memory, in any input form (:func:`regmtl.inputs.as_task_data`)."""

    name = "in memory"

    def holds(self, X: Any, y: Any = None, task: Any = None) -> bool:
        return True

    def problem(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any) -> TaskData:
        return model._rows(X, y, task, sample_weight, fitting=True)

    def task_data(self, X: Any, y: Any, task: Any, **how: Any) -> TaskData:
        return as_task_data(X, y, task, **how)

    def outputs(self, model: Any, X: Any, task: Any, out: RowOutput, offset: Any = None
                ) -> Any:
        X, offset = offset_column(X, offset)
        data, f = model._scores(X, task, offset=offset)
        values = out.block(data, f)
        return data.to_form(values) if out.form is None else out.form(data, values)

    def score(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
              metric: TaskMetric) -> float:
        need_targets(y)
        X, offset = offset_column(X, offset)
        data, f = model._scores(X, task, y, sample_weight, offset=offset)
        return float(np.mean(metric.per_task(data, f)))

    def in_memory(self, what: str) -> None:
        return None


class DaskBlocks(Placement):
    """Long-form Dask input: task blocks on the workers (:mod:`regmtl.dask`); the outputs are
    lazy arrays in the input's row order."""

    name = "on Dask input"
    rows = "Dask input"
    advice = ("compute the Dask input first (X.compute()), or, to predict, apply the model "
              "to each partition (X.map_partitions).")

    def holds(self, X: Any, y: Any = None, task: Any = None) -> bool:
        return any(is_dask_collection(o) for o in (X, y, task))

    def problem(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any) -> Any:
        data = self.task_data(X, y, task, sample_weight=sample_weight,
                              task_weight=model.task_weight, numeric_y=model._numeric_y,
                              blocks=model._blocks)
        publish_input(model, data.n_features, data.feature_names)
        return data

    def refit(self, model: Any, rows: FitRows, X: Any, y: Any, task: Any,
              sample_weight: Any, offset: Any) -> Any:
        """On the task blocks already on the workers: no second shuffle."""
        publish_input(model, rows.data.n_features, rows.data.feature_names)
        return model._fit_data(rows.data)

    def task_data(self, X: Any, y: Any, task: Any, **how: Any) -> Any:
        from .dask import as_dask_task_data

        return as_dask_task_data(X, y, task, sample_weight=how.get("sample_weight"),
                                 task_weight=how.get("task_weight", "equal"),
                                 numeric_y=how.get("numeric_y", True),
                                 blocks=how.get("blocks"))

    def outputs(self, model: Any, X: Any, task: Any, out: RowOutput, offset: Any = None
                ) -> Any:
        from .dask import predict_scores

        check_is_fitted(model)
        if offset is not None:
            raise ValueError("offset: Dask input is predicted without offsets; add them to "
                             "the linear predictor of the rows (decision_function of a "
                             "model fitted in memory), or compute the rows first.")
        return predict_scores(X, task, model.coef_matrix_, model._b, model.tasks_,
                              post=out.lazy, blocks=model._blocks)

    def score(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
              metric: TaskMetric) -> float:
        from .dask import task_score

        need_targets(y)
        check_is_fitted(model)
        if metric.kind is None:
            raise ValueError(metric.refusal)
        if offset is not None:
            raise ValueError("offset: Dask input is scored without offsets; compute the rows "
                             "first (X.compute(), y.compute()).")
        return task_score(X, y, task, model.coef_matrix_, model._b, model.tasks_, metric.kind,
                          sample_weight=sample_weight, post=metric.post)


class ParquetStream(Placement):
    """A task source read chunk by chunk (:class:`~regmtl.ParquetTasks`): fitted out of
    core (:mod:`regmtl.out_of_core`, resumed from a checkpoint folder), predicted and scored
    one chunk of whole tasks at a time (:mod:`regmtl.streaming`)."""

    name = "out of core"
    rows = "a task source read chunk by chunk"
    advice = ("read its rows into memory (pandas.read_parquet on its files) and pass them "
              "with task=.")

    def holds(self, X: Any, y: Any = None, task: Any = None) -> bool:
        return is_parquet_tasks(X) or is_task_source(X)

    def fit(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
            checkpoint: Any) -> Any:
        from .out_of_core import fit_source

        if model.standardize or any(v is not None for v in (
                model.penalty_factor, model.exclude, model.lower_bounds, model.upper_bounds)):
            raise ValueError("penalty_factor, exclude, lower_bounds, upper_bounds and "
                             "standardize take data in memory; an out-of-core fit (a task "
                             "source read chunk by chunk) takes none of them.")
        return fit_source(model, X, model._datafit(), y, task, sample_weight, offset,
                          checkpoint)

    def problem(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any) -> Any:
        self.in_memory("a fit's problem as a TaskData")

    def alpha_max(self, X: Any, penalty: Any, loss: str, fit_intercept: bool,
                  task_weight: Any, given: dict[str, Any], of_rows: Callable[[], float]
                  ) -> float:
        from .out_of_core import source_alpha_max

        named = [k for k, v in given.items() if v is not None and v is not False]
        if named or loss not in ("squared", "logistic"):
            raise ValueError(f"alpha_max of a task source (read chunk by chunk) takes the "
                             f"squared or the logistic loss and none of y, task, "
                             f"sample_weight, offset and the per-feature terms (loss="
                             f"{loss!r}{', given: ' + ', '.join(named) if named else ''}).")
        return source_alpha_max(X, penalty, fit_intercept, task_weight, loss)

    def task_data(self, X: Any, y: Any, task: Any, **how: Any) -> Any:
        self.in_memory("a TaskData of the rows")

    def outputs(self, model: Any, X: Any, task: Any, out: RowOutput, offset: Any = None
                ) -> Any:
        from .streaming import predict_rows

        if offset is not None:
            raise ValueError("offset: a ParquetTasks is predicted without offsets; add them "
                             "to the predictions of the rows afterwards.")
        return predict_rows(model, X, out.block, task=task)

    def score(self, model: Any, X: Any, y: Any, task: Any, sample_weight: Any, offset: Any,
              metric: TaskMetric) -> float:
        from .streaming import score_tasks

        given = [n for n, v in (("sample_weight", sample_weight), ("offset", offset))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: a ParquetTasks is scored without them; "
                             "leave them out.")
        return score_tasks(model, X, metric.per_task, task=task, y=y)


#: the placements, asked in this order; the last takes whatever no other one holds
PLACEMENTS: tuple[Placement, ...] = (ParquetStream(), DaskBlocks(), InMemory())


def placement_of(X: Any, y: Any = None, task: Any = None) -> Placement:
    """The placement of the inputs: the first of :data:`PLACEMENTS` that holds them."""
    return next(p for p in PLACEMENTS if p.holds(X, y, task))


def need_targets(y: Any) -> None:
    """Refuse a score without the true targets, naming ``y``."""
    if y is None:
        raise ValueError("y: score needs the true targets of the rows (in the form of X); "
                         "a ParquetTasks X carries its own.")
