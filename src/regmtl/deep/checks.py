"""Checks of the options and saved configurations of feature columns and trunks: ints and
floats in a range, a choice among names, a config dict's keys.

With ``strict=True`` (a configuration read from a file) only plain Python ints and floats pass,
so a saved model cannot smuggle in other types. Every refusal is a ``ValueError`` naming the
option and the value given.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["check_choice", "check_float", "check_int", "check_keys"]


def check_int(value: Any, name: str, low: int, high: int, *, strict: bool = False) -> int:
    """``value`` as an int in [low, high]; ``strict`` (configs) accepts Python ints only."""
    ok = (type(value) is int) if strict else (isinstance(value, numbers.Integral)
                                             and not isinstance(value, (bool, np.bool_)))
    if not ok or not low <= int(value) <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r:.80}.")
    return int(value)


def check_float(value: Any, name: str, low: float, high: float, *, strict: bool = False
                ) -> float:
    """``value`` as a float in [low, high)."""
    kinds = (int, float) if strict else (numbers.Real,)
    ok = isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))
    if not ok or not low <= float(value) < high:
        raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r:.80}.")
    return float(value)


def check_choice(value: Any, name: str, choices: tuple) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r:.80}.")
    return value


def check_keys(config: Any, what: str, allowed: Iterable[str], required: Iterable[str] = ()
               ) -> dict:
    """``config`` if it is a dict whose keys are among ``allowed`` and include ``required``;
    ``what`` names it in the message."""
    if not isinstance(config, dict):
        raise ValueError(f"{what} must be a dict, got {type(config).__name__}.")
    unknown = sorted(str(k)[:40] for k in config if k not in allowed)
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown[:5]}; the keys are "
                         f"{sorted(allowed)}.")
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"{what}: missing key(s) {missing}.")
    return config
