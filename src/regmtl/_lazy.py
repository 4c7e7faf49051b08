"""A module imported on first use: ``pd = lazy_module("pandas")`` at the top of a module whose
functions build tables, so that importing regmtl does not import pandas (or scipy.stats) and
a call that needs it pays the import once, where it is made.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "lazy_module"]


class LazyModule:
    """Stands for the module ``name``: the first attribute read imports it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = sys.modules.get(self._name) or importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r} (imported on first use)>"


def lazy_module(name: str) -> ModuleType:
    """A stand-in for ``import name`` that imports ``name`` on its first attribute read."""
    return LazyModule(name)  # type: ignore[return-value]
