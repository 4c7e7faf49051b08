"""Compiled kernels that load numba on their first call, not at import.

``njit(**options)`` decorates like :func:`numba.njit` but returns a :class:`LazyKernel`:
importing a module of kernels costs nothing, and numba (about 0.3 s to import, more to
rebuild its type registries) is loaded the first time a kernel runs. A kernel called from
another compiled function is typed through ``_numba_type_``, which builds the dispatcher on
demand, so kernels can call one another (and code compiled elsewhere can call them) as
plain numba dispatchers. Attributes (``signatures``, ``py_func``, ...) are the dispatcher's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["LazyKernel", "njit"]


class LazyKernel:
    """A numba-compiled function whose dispatcher is built on first use."""

    def __init__(self, func: Callable, options: dict[str, Any]):
        self.py_func = func
        self._options = options
        self._dispatcher = None
        functools.update_wrapper(self, func)

    @property
    def dispatcher(self):
        """The numba dispatcher (numba is imported here, once)."""
        if self._dispatcher is None:
            import numba

            self._dispatcher = numba.njit(**self._options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args, **kwargs):
        return self.dispatcher(*args, **kwargs)

    def __getattr__(self, name: str):
        # only reached for names the instance does not hold: the dispatcher's
        # (``signatures``, ``_numba_type_`` when numba types a call from compiled code, ...)
        if name.startswith("__") or name in ("_options", "_dispatcher"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        state = "built" if self._dispatcher is not None else "not built"
        return f"<LazyKernel {self.py_func.__qualname__} ({state})>"


def njit(func: Callable | None = None, **options: Any):
    """:func:`numba.njit` deferred to the first call: ``@njit`` or ``@njit(cache=True, ...)``."""
    if func is not None:
        return LazyKernel(func, options)
    return lambda f: LazyKernel(f, options)
