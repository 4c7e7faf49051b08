"""Assemble a problem (TaskData, Datafit, Penalty) from user inputs.

Shared by the estimators, :func:`alpha_max` and the model-selection code, so that nothing below
the estimators needs to import them.
"""

from __future__ import annotations

from typing import Any

from .datafits import Datafit, Logistic, Quadratic
from .penalties import Penalty, make_penalty
from .solvers.certificates import reference
from .taskdata import TaskData, as_task_data

__all__ = ["LOSSES", "make_datafit", "make_data", "alpha_max"]

LOSSES = {"squared": Quadratic, "logistic": Logistic}


def make_datafit(loss: str | Datafit) -> Datafit:
    if isinstance(loss, Datafit):
        return loss
    if loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"loss={loss!r} is not one of {sorted(LOSSES)}.")


def make_data(X: Any, y: Any = None, task: Any = None, *, loss: str = "squared",
              sample_weight: Any = None, task_weight: Any = "equal") -> TaskData:
    """A :class:`~regmtl.taskdata.TaskData` from any input form (labels encoded to -1/+1 for
    the logistic loss); a TaskData is returned as it is."""
    if isinstance(X, TaskData):
        return X
    data = as_task_data(X, y, task, sample_weight=sample_weight, task_weight=task_weight,
                        numeric_y=loss == "squared")
    if loss == "logistic":
        data.encode_binary()
    return data


def alpha_max(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    penalty: str | Penalty = "l21",
    loss: str = "squared",
    fit_intercept: bool = True,
    sample_weight: Any = None,
    task_weight: Any = "equal",
) -> float:
    r"""Smallest ``alpha`` for which ``W = 0`` is optimal.

    With ``theta0 = -l'(f0)`` at ``W = 0`` (intercepts fitted) and ``G0 = X^T (c theta0)``,
    ``alpha_max = ||G0||_* / rho``: ``max_jt |G0_jt| / rho`` for L1/elastic net and
    ``max_j ||G0_j||_2 / rho`` for L2,1 (``rho`` = ``l1_ratio``).

    ``X``, ``y``, ``task`` take any input form of the estimators; ``X`` may also be a
    :class:`~regmtl.taskdata.TaskData`.
    """
    datafit = make_datafit(loss)
    pen = make_penalty(penalty)
    data = make_data(X, y, task, loss=loss, sample_weight=sample_weight,
                     task_weight=task_weight)
    pen.check(data.n_features, data.n_tasks)
    ref = reference(data, datafit, fit_intercept)
    return float(pen.alpha_max(ref.G0))
