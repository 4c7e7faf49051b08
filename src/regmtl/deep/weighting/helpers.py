"""The small checks and helpers of the weighting methods: a number's range, the names of the
tasks in an error message, the error of a non-finite loss or gradient, a softmax weighted by
the base weights."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._torch import torch

__all__ = ["NonFiniteTask", "check_number", "non_finite", "task_list", "weighted_softmax"]

Tensor = torch.Tensor


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = False) -> float:
    """``value`` as a float, checked finite and ``>= low`` (``> low`` if ``strict``)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (math.isfinite(v) and (v > low if strict else v >= low)):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {low:g}, got {value!r}.")
    return v


def weighted_softmax(x: Tensor, base: Tensor) -> Tensor:
    """``sum(b) * b e^x / (b . e^x)``: T softmax(x) for unit ``b``; ``b`` where x is constant."""
    e = base * torch.exp(x - x.max())
    total = e.sum()
    if not (total > 0 and torch.isfinite(total)):
        return base.clone()
    return base.sum() * e / total


def task_list(names: Sequence[str], mask: Tensor | np.ndarray) -> str:
    """The names of the tasks where ``mask`` is true, quoted, for error messages."""
    bad = [repr(names[i]) for i in np.flatnonzero(np.asarray(mask))]
    return ", ".join(bad)


class NonFiniteTask(ValueError):
    """A weighting's step met a task loss or gradient that is NaN or infinite (outside loss
    scaling, where the gradient scaler skips such a step).

    Attributes
    ----------
    what : str
        ``"loss"`` or ``"gradient"``.
    tasks : list of str
        The tasks whose value is not finite.
    """

    def __init__(self, message: str, what: str, tasks: list[str]):
        super().__init__(message)
        self.what, self.tasks = what, tasks


def non_finite(method: str, what: str, names: Sequence[str], mask: Tensor | np.ndarray,
               advice: bool = True) -> NonFiniteTask:
    """The error of ``method`` for the tasks ``names`` where ``mask`` is true, whose
    ``what`` (loss or gradient) is not finite."""
    mask = np.asarray(mask)
    tasks = [names[i] for i in np.flatnonzero(mask)]
    tail = ("; check their losses and inputs, or lower the learning rate." if advice else ".")
    listed = task_list(names, mask) or "some"  # (products overflowing, no row alone)
    return NonFiniteTask(f"{method}: the {what} of task(s) {listed} is not "
                         f"finite (NaN or inf){tail}", what, tasks)
