r"""Fits and ``alpha_max`` on a task source read chunk by chunk (``regmtl.parquet.ParquetTasks``).

``MultiTaskRegressor(...).fit(source)`` with the squared loss routes here: the statistics
pass, FISTA on the Grams spilled to disk and a last pass certifying the result on the rows
(:mod:`regmtl.solvers.streamed.fit`), one chunk of whole tasks in memory at a time. The fitted
attributes are those of an in-memory fit on the same rows in long form (``tasks_`` the
source's task labels, ``input_form_ = "long"``). ``MultiTaskClassifier(...).fit(source)``
(the logistic loss, two labels per task in the source's target column) runs proximal Newton
with each model streamed the same way (:mod:`regmtl.solvers.streamed.newton`), certified on
the rows by the in-memory duality gap (or KKT residual).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .datafits import Datafit
from .fitted import fit_attributes, publish, publish_input
from .penalties import Penalty, make_penalty
from .progress import PhaseBars
from .solvers.streamed.fit import (
    check_streamed_penalty,
    is_task_source,
    solve_streamed,
    source_quadratic,
    streamed_options,
)
from .solvers.streamed.newton import solve_streamed_logistic, source_logistic_reference
from .solvers.streamed.phases import QUIET, Phases, chunks_from
from .taskdata import task_weights

__all__ = ["NEAR_LEAST_SQUARES", "NearLeastSquaresWarning", "fit_phases", "fit_source",
           "is_task_source", "source_alpha_max", "warn_near_least_squares"]

#: Below this fraction of alpha_max (the end of the default grids) a fit of short tasks is
#: least squares on each task's own rows in all but name.
NEAR_LEAST_SQUARES = 1e-3


class NearLeastSquaresWarning(UserWarning):
    """An alpha so small, on tasks so short, that each task is fitted nearly alone."""


def source_alpha_max(source: Any, penalty: str | Penalty, fit_intercept: bool = True,
                     task_weight: Any = "equal", loss: str = "squared") -> float:
    """``alpha_max`` on a task source: the penalty's dual norm of minus the gradient at
    W = 0 (intercepts fitted); for the squared loss ``g`` from the statistics pass (kept with
    the source: a fit that follows reuses it), for the logistic loss ``X^T (c theta_0)``
    from one pass over the rows (the source's target holding two labels per task)."""
    pen = make_penalty(penalty)
    pen.check(int(source.n_features), int(source.n_tasks))
    with fit_phases(source, "alpha_max") as phases:
        if loss == "logistic":
            with phases.phase("pass", chunks_from(source), "chunk"):
                G0, _ = source_logistic_reference(source, task_weight, fit_intercept)
            return float(pen.alpha_max(G0))
        return float(pen.alpha_max(source_quadratic(source, task_weight, fit_intercept,
                                                    phases=phases).g))


def _labels(low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """Each task's two labels, sorted (integers where they all are), as ``classes_`` holds
    them in memory."""
    pairs = np.column_stack([low, high])
    if np.all(pairs == np.round(pairs)):
        pairs = pairs.astype(np.int64)
    return list(pairs)


def _refuse(what: str) -> None:
    raise ValueError(f"{what}: a task source (read chunk by chunk) carries its targets, task "
                     "ids and weights itself; fit(source) takes no other argument.")


@contextmanager
def fit_phases(source: Any, desc: str, progress: Any = None) -> Iterator[Phases]:
    """The progress bars of a run on ``source``, one per phase, each with its total (the
    chunks of a pass, the iterations), shown as ``progress`` says (None: the source's own
    ``progress``, :class:`~regmtl.ParquetTasks`'); ``desc`` names the run before each
    phase's name. A pass's bar counts the chunks through the source's ``on_chunk`` hook; a
    source without a free hook (none, or one in use) reports nothing
    (:data:`~regmtl.solvers.streamed.phases.QUIET`) unless ``progress`` is given."""
    free = getattr(source, "on_chunk", False) is None
    if not free and progress is None:
        yield QUIET
        return
    bars = PhaseBars(getattr(source, "progress", "auto") if progress is None else progress,
                     desc)
    if free:
        source.on_chunk = bars.chunk
    try:
        yield bars
    finally:
        if free:
            source.on_chunk = None


def warn_near_least_squares(alpha: float, alpha_max: float | None, task_rows: Any,
                            n_features: int, stacklevel: int = 3) -> None:
    """A :class:`NearLeastSquaresWarning` for an alpha given below
    :data:`NEAR_LEAST_SQUARES` alpha_max on tasks of a median of at most five rows per
    feature: each task is then fitted nearly by least squares on its own rows, and the
    training score says nothing of new rows."""
    if not alpha_max or alpha >= NEAR_LEAST_SQUARES * alpha_max:
        return
    rows = float(np.median(np.asarray(task_rows)))
    if rows > 5 * n_features:
        return
    warnings.warn(f"alpha {alpha:.4g} is {alpha / alpha_max:.2g} of alpha_max on tasks of a "
                  f"median {rows:.0f} rows for {n_features} features: each task is fitted "
                  "nearly by least squares on its own rows, and the training R^2 says nothing "
                  "of new rows (it may well overfit); choose alpha on held-out rows "
                  "(regmtl.selection.held_out.held_out_alpha, or regmtl fit --alpha auto).",
                  NearLeastSquaresWarning, stacklevel=stacklevel)


def fit_source(model: Any, source: Any, datafit: Datafit, y: Any = None, task: Any = None,
               sample_weight: Any = None, offset: Any = None, checkpoint: Any = None) -> Any:
    """Fit ``model`` (a MultiTaskRegressor, or a MultiTaskClassifier: the logistic loss)
    on ``source`` out of core and set its fitted
    attributes; ``ValueError`` naming what is supported for any other loss, alpha form,
    solver or option. Each phase of the fit shows a progress bar with its total (the
    source's ``progress``: :func:`fit_phases`). A squared-loss fit at an alpha below
    :data:`NEAR_LEAST_SQUARES` alpha_max on short tasks warns
    (:func:`warn_near_least_squares`)."""
    for name, value in (("y", y), ("task", task), ("sample_weight", sample_weight),
                        ("offset", offset)):
        if value is not None:
            _refuse(name)
    if getattr(source, "target", "y") is None:
        raise ValueError("source: it was opened without a target column (target=None); "
                         "open it with target='<the column of y>' to fit.")
    if datafit.name not in ("squared", "logistic"):
        raise ValueError(f"loss={model._loss!r}: the out-of-core fit of a task source takes "
                         "the squared loss (MultiTaskRegressor) and the logistic loss "
                         "(MultiTaskClassifier, two labels per task); fit other losses in "
                         "memory.")
    if np.ndim(model.alpha) != 0:
        raise ValueError("alpha: one alpha per task is not fitted out of core; give one "
                         "float.")
    if model.solver not in ("auto", "fista"):
        raise ValueError(f"solver={model.solver!r}: the out-of-core fit runs 'fista' (or "
                         "'auto').")
    options = dict(model.solver_options or {})
    streamed_options(options)  # (checked before any pass)
    penalty = check_streamed_penalty(make_penalty(model.penalty))
    alpha = float(model.alpha)
    p, T = int(source.n_features), int(source.n_tasks)
    W0 = None
    if model.warm_start and hasattr(model, "coef_") and np.shape(model.coef_) == (T, p):
        W0 = np.array(model.coef_.T, dtype=np.float64)
    classes = None
    reference: list[float | None] = []

    def statistics(q: Any) -> None:  # (alpha_max from the fit's own statistics)
        try:
            reference.append(float(penalty.alpha_max(q.g)))
        except ValueError:  # (a penalty without one)
            reference.append(None)

    with fit_phases(source, "out-of-core fit") as phases:
        if datafit.name == "logistic":
            res, low, high, _ = solve_streamed_logistic(
                source, penalty, alpha, fit_intercept=model.fit_intercept,
                task_weight=model.task_weight, tol=model.tol, max_iter=model.max_iter,
                W0=W0, verbose=model.verbose, options=options, checkpoint=checkpoint,
                phases=phases)
            classes = _labels(low, high)
        else:
            res = solve_streamed(source, penalty, alpha, fit_intercept=model.fit_intercept,
                                 task_weight=model.task_weight, tol=model.tol,
                                 max_iter=model.max_iter, W0=W0, verbose=model.verbose,
                                 options=options, checkpoint=checkpoint, phases=phases,
                                 on_statistics=statistics)
            warn_near_least_squares(alpha, reference[0], source.task_rows, p, stacklevel=5)
    if hasattr(model, "classes_"):  # (the input's: set from the source)
        del model.classes_
    if classes is not None:
        model._multiclass = False
        model.classes_ = classes
    names = getattr(source, "feature_names", None)
    publish_input(model, p, np.asarray(names, dtype=object) if names is not None and all(
        isinstance(n, str) for n in names) else None)
    rows = np.asarray(source.task_rows, dtype=np.float64)
    publish(model, fit_attributes(
        loss=datafit, tasks=np.asarray(source.tasks), form="long",
        coef=np.ascontiguousarray(res.W.T), intercept=res.b, single=False, n_iter=res.n_iter,
        certificate=res.certificate, task_sizes=rows / task_weights(model.task_weight, rows),
        structure=penalty.structure(res.W, alpha), variance=res.residual_variance))
    model._warm_problem = None
    return model
