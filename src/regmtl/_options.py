"""Checks of options by type and range, one rule for every public entry point: an int is never
a truncated float, a flag never a string, a number always finite; the message names the
option, what it must be, the value given and the fix."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["check_option"]


_KINDS = {"bool": "True or False", "int": "an int", "real": "a finite number",
          "str": "a string"}


def _describe(a: Any) -> str:
    """How an alternative of :func:`check_option` reads in a message."""
    if not isinstance(a, type):
        return repr(a)
    if a is Callable:
        return "a callable"
    mod = a.__module__.split(".")[0]
    name = a.__name__ if mod in ("regmtl", "builtins") else f"{mod}.{a.__name__}"
    return ("an " if name[0].lower() in "aeiou" else "a ") + name


def check_option(name: str, value: Any, kind: str, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 none: bool = False, also: tuple = (), choices: tuple = (),
                 fix: str = "") -> Any:
    """``value`` of the option ``name`` checked by type and range, as a plain Python value.

    ``kind`` is ``"bool"`` (``bool`` or ``numpy.bool_``), ``"int"`` (``int`` or a NumPy
    integer, never a bool or a float: 2.7 is refused, not truncated), ``"real"`` (an int or
    float, finite) or ``"str"``; ``low`` / ``high`` bound ints and reals (open with
    ``low_open`` / ``high_open``); ``none`` admits None and ``also`` a few literal values
    (``"auto"``) or classes whose instances pass as they are.

    Raises
    ------
    ValueError
        Naming ``name``, what it must be, the value given and ``fix``.
    """
    if (value is None and none) or any(
            (isinstance(a, type) and isinstance(value, a))
            or (isinstance(a, str) and isinstance(value, str) and value == a) for a in also):
        return value
    ok, out = False, value
    if kind == "bool":
        ok = isinstance(value, (bool, np.bool_))
        out = bool(value) if ok else value
    elif kind == "str":
        ok = isinstance(value, str) and (not choices or value in choices)
    elif kind in ("int", "real"):
        types = (int, np.integer) if kind == "int" else (int, float, np.integer, np.floating)
        ok = isinstance(value, types) and not isinstance(value, (bool, np.bool_))
        if ok:
            out = int(value) if kind == "int" else float(value)
            ok = (kind == "int" or math.isfinite(out)) and (
                low is None or (out > low if low_open else out >= low)) and (
                high is None or (out < high if high_open else out <= high))
    else:  # pragma: no cover - a programming error
        raise AssertionError(f"unknown option kind {kind!r}")
    if ok:
        return out
    want = _KINDS[kind] if not choices else "one of " + ", ".join(map(repr, choices))
    if low is not None and high is not None:  # an interval: (0, 1]
        interval = f"{'(' if low_open else '['}{low:g}, {high}{')' if high_open else ']'}"
        want = f"in {interval}" if kind == "real" else f"{want} in {interval}"
    elif low is not None:
        want += f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        want += f" {'<' if high_open else '<='} {high}"
    literal = [repr(a) for a in also if not isinstance(a, type)]  # 'auto' first
    alts = literal + (["True", "False"] if kind == "bool" else [want])
    alts += [_describe(a) for a in also if isinstance(a, type)] + (["None"] if none else [])
    want = alts[0] if len(alts) == 1 else ", ".join(alts[:-1]) + f" or {alts[-1]}"
    hint = ""
    if kind == "int" and isinstance(value, (float, np.floating)):
        hint = " (a float is not truncated: pass an int)"
    elif kind == "bool" and isinstance(value, str):
        hint = " (a string is not read as a flag)"
    raise ValueError(f"{name} must be {want}, got {value!r}{hint}." + (f" {fix}" if fix else ""))
