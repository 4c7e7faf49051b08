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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .datafits import Datafit
from .fitted import fit_attributes, publish, publish_input
from .penalties import Penalty, make_penalty
from .progress import progress_bar
from .solvers.streamed.fit import (
    STREAMED_OPTIONS,
    check_streamed_penalty,
    is_task_source,
    solve_streamed,
    source_quadratic,
)
from .solvers.streamed.newton import solve_streamed_logistic, source_logistic_reference
from .taskdata import task_weights

__all__ = ["chunk_progress", "fit_source", "is_task_source", "source_alpha_max"]


def source_alpha_max(source: Any, penalty: str | Penalty, fit_intercept: bool = True,
                     task_weight: Any = "equal", loss: str = "squared") -> float:
    """``alpha_max`` on a task source: the penalty's dual norm of minus the gradient at
    W = 0 (intercepts fitted); for the squared loss ``g`` from the statistics pass (kept with
    the source: a fit that follows reuses it), for the logistic loss ``X^T (c theta_0)``
    from one pass over the rows (the source's target holding two labels per task)."""
    pen = make_penalty(penalty)
    pen.check(int(source.n_features), int(source.n_tasks))
    with chunk_progress(source, "alpha_max"):
        if loss == "logistic":
            G0, _ = source_logistic_reference(source, task_weight, fit_intercept)
            return float(pen.alpha_max(G0))
        return float(pen.alpha_max(source_quadratic(source, task_weight, fit_intercept).g))


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
def chunk_progress(source: Any, desc: str) -> Iterator[None]:
    """A progress bar over every chunk ``source`` reads meanwhile, as its ``progress`` says
    (:class:`~regmtl.ParquetTasks`; a source with no ``on_chunk`` hook, or one in use, gets
    none): the count of chunks read, the pass in the postfix (a pass starts at task 0). The
    number of passes is not known in advance (it is the solver's), so the bar has no
    total."""
    if getattr(source, "on_chunk", False) is not None:  # no hook, or one in use
        yield
        return
    with progress_bar(None, getattr(source, "progress", "auto"), desc, unit="chunk") as bar:
        passes = 0

        def tick(lo: int, hi: int, rows: int) -> None:
            nonlocal passes
            if lo == 0:
                passes += 1
                bar.set_postfix_str(f"pass {passes}", refresh=False)
            bar.update(1)

        source.on_chunk = tick
        try:
            yield
        finally:
            source.on_chunk = None


def fit_source(model: Any, source: Any, datafit: Datafit, y: Any = None, task: Any = None,
               sample_weight: Any = None, offset: Any = None, checkpoint: Any = None) -> Any:
    """Fit ``model`` (a MultiTaskRegressor, or a MultiTaskClassifier: the logistic loss)
    on ``source`` out of core and set its fitted
    attributes; ``ValueError`` naming what is supported for any other loss, alpha form,
    solver or option. A progress bar counts the chunks read (the source's ``progress``:
    ``chunk_progress``)."""
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
    if set(options) - set(STREAMED_OPTIONS):
        raise ValueError(f"solver_options {sorted(set(options) - set(STREAMED_OPTIONS))}: "
                         f"the out-of-core fit takes {list(STREAMED_OPTIONS)}.")
    penalty = check_streamed_penalty(make_penalty(model.penalty))
    alpha = float(model.alpha)
    p, T = int(source.n_features), int(source.n_tasks)
    W0 = None
    if model.warm_start and hasattr(model, "coef_") and np.shape(model.coef_) == (T, p):
        W0 = np.array(model.coef_.T, dtype=np.float64)
    classes = None
    with chunk_progress(source, "out-of-core fit"):
        if datafit.name == "logistic":
            res, low, high, _ = solve_streamed_logistic(
                source, penalty, alpha, fit_intercept=model.fit_intercept,
                task_weight=model.task_weight, tol=model.tol, max_iter=model.max_iter,
                W0=W0, verbose=model.verbose, options=options, checkpoint=checkpoint)
            classes = _labels(low, high)
        else:
            res = solve_streamed(source, penalty, alpha, fit_intercept=model.fit_intercept,
                                 task_weight=model.task_weight, tol=model.tol,
                                 max_iter=model.max_iter, W0=W0, verbose=model.verbose,
                                 options=options, checkpoint=checkpoint)
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
