"""Argument checks the data generators share: bounded ints and reals, and the seed a
``random_state`` argument gives.

Each check raises a ``ValueError`` naming the argument, the bound it breaks and the value given.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

#: What a generator's ``random_state`` may be.
RandomState = int | np.random.Generator | np.random.RandomState | None


def as_rng(random_state: RandomState) -> np.random.Generator:
    """A numpy ``Generator`` from a seed, a Generator, a legacy RandomState (which supplies the
    seed) or None (fresh entropy)."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if random_state is None or isinstance(random_state, (Integral, np.random.Generator,
                                                         np.random.SeedSequence)):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be an int, a numpy Generator or RandomState, or None; "
        f"got {random_state!r}."
    )


def check_int(name: str, value: Any, low: int, high: int | None = None, why: str = "") -> None:
    """Refuse ``value`` unless it is an int (not a bool) in ``[low, high]`` (``high=None``: no
    upper bound); ``why`` is added to the message."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok and value >= low and (high is None or value <= high):
        return
    bound = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
    raise ValueError(f"{name} must be {bound}{f' ({why})' if why else ''}; got {value!r}.")


def check_real(name: str, value: Any, low: float, high: float | None = None) -> None:
    """Refuse ``value`` unless it is a finite real (not a bool) in ``[low, high]``."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and value >= low and (high is None or value <= high):
        return
    bound = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}]"
    raise ValueError(f"{name} must be a number {bound}; got {value!r}.")


def check_positive(name: str, value: Any) -> None:
    """Refuse ``value`` unless it is a finite real > 0."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if not (ok and value > 0):
        raise ValueError(f"{name} must be a number > 0; got {value!r}.")


def check_open_unit(name: str, value: Any) -> None:
    """Refuse ``value`` unless it is a finite real in the open interval (0, 1)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
    if not (ok and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be a number in (0, 1) (exclusive); got {value!r}.")
