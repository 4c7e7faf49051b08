"""Early stopping: the rule (:class:`EarlyStopping`), the direction of a monitored column and
the columns a fit logs, and the record of the best epoch that the trainer keeps."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._options import check_option
from ._torch import torch
from .data import MultiTaskDataset

__all__ = ["EarlyStopping", "Monitor", "monitor_direction", "history_columns", "fit_monitor"]


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Pass it to :class:`~regmtl.deep.Trainer` (``early_stopping=``); the trainer keeps the
    weights of the best epoch by the same quantity (``restore_best``).

    Parameters
    ----------
    monitor : str, default="val_loss"
        A column of the trainer's history: ``"val_loss"`` (needs validation data; the
        spec-weighted sum of the task losses), ``"loss"`` (training), ``"val_loss/TASK"`` or
        ``"val/TASK/METRIC"``.
    patience : int, default=10
        Epochs without improvement before stopping (>= 1).
    min_delta : float, default=0.0
        The smallest change that counts as an improvement (finite, >= 0).
    mode : {"auto", "min", "max"}, default="auto"
        Minimize or maximize ``monitor``; "auto" takes the metric's direction (losses are
        minimized).

    Raises
    ------
    ValueError
        If ``monitor`` is not a string, ``patience`` not an int >= 1, ``min_delta`` not a
        finite number >= 0, or ``mode`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import EarlyStopping, HardSharing, Trainer, set_seed
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3))
    >>> data = (X, {"a": X[:, 0], "b": X[:, 0] - X[:, 1]})
    >>> stop = EarlyStopping(monitor="val/a/r2", patience=2)  # r2: maximized
    >>> stop
    EarlyStopping(monitor='val/a/r2', patience=2, min_delta=0.0, mode='auto')
    >>> set_seed(0)
    >>> net = HardSharing(3, ["a", "b"], hidden=(8,))
    >>> trainer = Trainer(net, max_epochs=5, batch_size=16, early_stopping=stop)
    >>> trainer = trainer.fit(data, val=data)
    >>> best = int(trainer.history["val/a/r2"].to_numpy().argmax()) + 1
    >>> trainer.best_epoch_ == best
    True
    """

    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "auto"

    def __post_init__(self) -> None:
        self.monitor = check_option(
            "EarlyStopping.monitor", self.monitor, "str",
            fix="Name a column of the trainer's history, e.g. 'val_loss' or 'val/TASK/r2'.")
        self.patience = check_option("EarlyStopping.patience", self.patience, "int", low=1,
                                     fix="Pass a whole number of epochs, e.g. patience=10.")
        self.min_delta = check_option("EarlyStopping.min_delta", self.min_delta, "real", low=0,
                                      fix="Pass the smallest change that counts, e.g. 0.0.")
        self.mode = check_option("EarlyStopping.mode", self.mode, "str",
                                 choices=("auto", "min", "max"))


def monitor_direction(tasks: list, monitor: str | None, stop: EarlyStopping | None) -> float:
    """+1 to minimize the monitor, -1 to maximize it."""
    if monitor is None:
        return 1.0
    if stop is not None and stop.mode != "auto":
        return 1.0 if stop.mode == "min" else -1.0
    parts = monitor.split("/")
    if len(parts) == 3 and parts[0] == "val":
        spec = {t.name: t for t in tasks}.get(parts[1])
        if spec is None:
            raise ValueError(f"early_stopping.monitor {monitor!r}: unknown task {parts[1]!r}.")
        return -1.0 if spec.higher_is_better(parts[2]) else 1.0
    return 1.0


def history_columns(tasks: list, val_tasks: set[str], balance: list[str]) -> set[str]:
    """The columns of the history, validating the tasks in ``val_tasks``; ``balance``: the
    gradient-balance columns (none when it is not measured)."""
    cols = {"epoch", "loss", "penalty", "lr", "time"} | set(balance)
    for t in tasks:
        cols |= {f"loss/{t.name}", f"weight/{t.name}"}
        if t.name in val_tasks:
            cols |= {f"val_loss/{t.name}"} | {f"val/{t.name}/{m}" for m in t.metrics}
    return cols | ({"val_loss"} if val_tasks else set())


def fit_monitor(stop: EarlyStopping | None, restore_best: bool, tasks: list, val_ds: Any,
                columns: Callable[[set[str]], set[str]]) -> Monitor | None:
    """The monitor of a fit (None: none): the early-stopping rule's column, else
    ``"val_loss"`` with validation data ``val_ds`` and ``restore_best``; checked against the
    columns the fit logs, ``columns(validated tasks)``."""
    monitor = None
    if stop is not None:
        monitor = stop.monitor if val_ds is not None or not stop.monitor.startswith("val") \
            else None
        if monitor is None:
            raise ValueError(f"early_stopping monitors {stop.monitor!r}, which needs val data; "
                             "pass val=... or EarlyStopping(monitor='loss').")
    elif restore_best:
        monitor = "val_loss" if val_ds is not None else None
    sign = monitor_direction(tasks, monitor, stop)
    val_tasks = (set() if val_ds is None else _validated(val_ds, tasks)
                 if isinstance(val_ds, MultiTaskDataset) else {t.name for t in tasks})
    if monitor is not None and monitor not in columns(val_tasks):
        raise ValueError(f"early_stopping.monitor {monitor!r} is not logged; choose one of "
                         f"{sorted(columns(val_tasks))}.")
    return None if monitor is None else Monitor(monitor, sign, stop)


def _validated(ds: MultiTaskDataset, tasks: list) -> set[str]:
    """The tasks with labels in the data set ``ds``."""
    if ds.targets is not None:
        return set(ds.targets)
    return {tasks[i].name for i in torch.unique(ds.task).tolist()}


class Monitor:
    """The best value of a monitored column over the epochs and the epochs since.

    Parameters
    ----------
    column : str
        The monitored column of the history.
    sign : float
        +1 to minimize it, -1 to maximize it.
    stop : EarlyStopping or None
        The rule (its ``min_delta`` and ``patience``); None: the best epoch is kept, no stop.
    """

    def __init__(self, column: str, sign: float, stop: EarlyStopping | None):
        self.column, self.sign, self.stop = column, sign, stop
        self.best, self.wait = math.inf, 0
        self.best_epoch: int | None = None  # that of ``row["epoch"]`` when it was best

    def update(self, row: dict) -> tuple[bool, bool]:
        """(whether ``row`` improves on the best, whether training stops after it); a NaN
        never improves."""
        value = self.sign * row[self.column]
        delta = 0.0 if self.stop is None else self.stop.min_delta
        if value < self.best - delta:
            self.best, self.wait = value, 0
            self.best_epoch = row.get("epoch")
            return True, False
        self.wait += 1
        return False, self.stop is not None and self.wait >= self.stop.patience

    def state(self) -> dict:
        """The record as JSON-able values, for a training state: the best value (as
        ``float.hex``, exact), the epochs since it and its epoch."""
        return {"column": self.column, "best": float(self.best).hex(), "wait": int(self.wait),
                "best_epoch": self.best_epoch}

    def load_state(self, state: dict, where: str) -> None:
        """Restore :meth:`state`, checked (a ``ValueError`` naming ``where`` otherwise)."""
        try:
            ok = state["column"] == self.column
            best = float.fromhex(state["best"])
            wait, epoch = state["wait"], state["best_epoch"]
            ok = ok and type(wait) is int and wait >= 0 and (
                epoch is None or (type(epoch) is int and epoch >= 1))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{where}: the early-stopping record {str(state)[:200]} does not "
                             f"fit this fit's monitor {self.column!r}; resume with the "
                             "early_stopping and validation data of the saved fit.")
        self.best, self.wait, self.best_epoch = best, wait, epoch
