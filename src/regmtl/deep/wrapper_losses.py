r"""The ``loss`` option of the scikit-learn wrappers: each task's loss, read and checked.

:class:`~regmtl.deep.DeepMultiTaskRegressor` and :class:`~regmtl.deep.DeepMultiTaskModel`
take ``loss`` as one loss for every task or a list with one per task; a loss is a name or a
pair ``(name, parameter)``:

=====================  =====================================  ==================================
``loss``               the task                               its :class:`~regmtl.deep.TaskSpec`
=====================  =====================================  ==================================
``"squared"``          regression, :math:`\tfrac12 r^2`        ``loss="mse"``
``"absolute"``         regression, :math:`|r|`                 ``loss="mae"``
``"huber"``,           regression, Huber; delta in the         ``loss=("huber", delta / sigma)``
``("huber", delta)``   target's units (alone: one standard
                       deviation of the task's labels)
``"quantile"``,        regression, pinball at level tau        ``loss=("quantile", tau)``
``("quantile", tau)``  (alone: 0.5, the median)
``"poisson"``          count (labels >= 0), log link: the      ``kind="count"``
                       prediction is the mean count
=====================  =====================================  ==================================

The wrappers standardize regression targets (sigma: the standard deviation of the task's
training labels), so a delta given in the target's units is divided by sigma for the loss on
standardized targets: the same Huber fit as on the raw target, in the target's units. The
pinball loss scales with the units, so its quantile is the same either way. Count targets are
never standardized (a log-link mean needs the counts themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .tasks import TaskSpec, check_loss_parameter

__all__ = ["WRAPPER_LOSSES", "TaskLoss", "task_losses", "target_scale"]

#: the names the wrappers' ``loss`` takes, with the TaskSpec loss each gives
WRAPPER_LOSSES: dict[str, str] = {"squared": "mse", "absolute": "mae", "huber": "huber",
                                  "quantile": "quantile", "poisson": "poisson"}
_PARAMETERS = {"huber": "delta", "quantile": "tau"}
_METRIC = {"quantile": "pinball", "poisson": "poisson_deviance"}


@dataclass(frozen=True)
class TaskLoss:
    """One task's loss as the wrappers take it: its name and parameter (or None).

    Parameters
    ----------
    name : str
        A key of :data:`WRAPPER_LOSSES`.
    param : float or None
        Huber's delta (in the target's units) or the quantile level tau.
    """

    name: str
    param: float | None = None

    @property
    def kind(self) -> str:
        """The task's kind: ``"count"`` for the Poisson loss, else ``"regression"``."""
        return "count" if self.name == "poisson" else "regression"

    @property
    def quantile(self) -> float | None:
        """The level tau of a quantile loss, else None."""
        if self.name != "quantile":
            return None
        return 0.5 if self.param is None else self.param

    @property
    def needs_scale(self) -> bool:
        """Whether the loss's parameter is in the target's units (Huber with a delta)."""
        return self.name == "huber" and self.param is not None

    def spec(self, name: str, scale: float = 1.0) -> TaskSpec:
        """The task's spec; ``scale``: the standard deviation its targets are divided by
        (a Huber delta in the target's units becomes ``delta / scale``)."""
        metric = _METRIC.get(self.name, "mse")
        if self.name == "poisson":
            return TaskSpec(name, kind="count", metrics=(metric,))
        loss: Any = WRAPPER_LOSSES[self.name]
        if self.name == "quantile" and self.param is not None:
            loss = ("quantile", self.param)
        elif self.needs_scale:
            loss = ("huber", self.param / scale)
        return TaskSpec(name, loss=loss, metrics=(metric,))


def _one(entry: Any, where: str) -> TaskLoss:
    """One loss entry (a name or a ``(name, parameter)`` pair), checked."""
    if isinstance(entry, str):
        if entry not in WRAPPER_LOSSES:
            raise ValueError(f"{where}={entry!r} is not a loss; use one of "
                             f"{sorted(WRAPPER_LOSSES)}, or ('huber', delta) or "
                             "('quantile', tau).")
        return TaskLoss(entry)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] in _PARAMETERS:
        return TaskLoss(entry[0], check_loss_parameter(entry[0], entry[1], f"{where}={entry!r}"))
    if isinstance(entry, tuple):
        raise ValueError(f"{where}={entry!r:.80}: a loss with a parameter is ('huber', delta) "
                         "or ('quantile', tau).")
    raise ValueError(f"{where}={entry!r:.80} is not a loss: give a name of "
                     f"{sorted(WRAPPER_LOSSES)} or a pair ('huber', delta) or "
                     "('quantile', tau); a list holds one of them per task.")


def task_losses(loss: Any, n_tasks: int, *, default: str | None = "squared"
                ) -> list[TaskLoss | None]:
    """Each task's loss from the wrappers' ``loss``: one for every task (a name or a pair) or
    a list with one per task (None: ``default``, or None where ``default`` is None).

    Raises
    ------
    ValueError
        On an unknown name, a parameter out of range (delta <= 0, tau outside (0, 1)), or a
        list whose length is not ``n_tasks``; the message names ``loss``.
    """
    if loss is None or isinstance(loss, (str, tuple)):
        one = None if loss is None else _one(loss, "loss")
        if one is None and default is not None:
            one = TaskLoss(default)
        return [one] * n_tasks
    if not isinstance(loss, list):
        raise ValueError(f"loss={loss!r:.80} is not a loss: give a name, a pair ('huber', "
                         "delta) or ('quantile', tau), or a list with one per task.")
    if len(loss) != n_tasks:
        raise ValueError(f"loss: a list needs one loss per task ({n_tasks}), got {len(loss)}; "
                         "a loss with a parameter for every task is a tuple, e.g. "
                         "('quantile', 0.9).")
    out: list[TaskLoss | None] = []
    for k, entry in enumerate(loss):
        if entry is None:
            out.append(None if default is None else TaskLoss(default))
        else:
            out.append(_one(entry, f"loss[{k}]"))
    return out


def target_scale(y: np.ndarray) -> tuple[float, float]:
    """The mean and standard deviation of a task's observed training labels, as the
    :class:`~regmtl.deep.Trainer` standardizes them (a deviation of 0, or of one label, is 1)."""
    y = np.asarray(y, dtype=np.float64)
    y = y[~np.isnan(y)]
    if not len(y):
        return 0.0, 1.0
    mean = float(y.mean())
    sd = float(np.sqrt(np.mean((y - mean) ** 2)))
    ok = len(y) > 1 and sd > 1e-12 * max(abs(mean), 1.0)
    return mean, sd if ok else 1.0
