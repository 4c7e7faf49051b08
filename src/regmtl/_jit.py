"""Compiled kernels that load numba on their first call, not at import.

``njit(**options)`` decorates like :func:`numba.njit` but returns a :class:`LazyKernel`:
importing a module of kernels costs nothing, and numba (about 0.3 s to import, more to
rebuild its type registries) is loaded the first time a kernel runs. A kernel called from
another compiled function is typed through ``_numba_type_``, which builds the dispatcher on
demand, so kernels can call one another (and code compiled elsewhere can call them) as
plain numba dispatchers. Attributes (``signatures``, ``py_func``, ...) are the dispatcher's.

A kernel may have a NumPy ``twin`` (same arguments, same results up to rounding, buffers
written in place alike; ``NotImplemented`` for a call it does not cover). Twins run instead of
their kernels while no kernel has been compiled in the process and the twins have taken less
than :data:`rent_seconds` in all: a fresh process's first small fits do not load numba, and a
process that keeps fitting pays at most that much before it does (the rent-or-buy rule:
never more than twice the better choice known in hindsight).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["LazyKernel", "njit", "rent_seconds", "twins_active", "use_twins"]

#: seconds of NumPy twins a process runs before its kernels are compiled instead (about what
#: importing numba and loading its first cached kernels costs)
rent_seconds = 0.4


class _Rent:
    spent = 0.0  # seconds the twins have run
    bought = False  # a kernel has been compiled (numba loaded): twins no longer run
    forced: bool | None = None  # set by use_twins


def twins_active() -> bool:
    """Whether a kernel with a twin runs the twin now."""
    if _Rent.forced is not None:
        return _Rent.forced
    return not _Rent.bought and _Rent.spent < rent_seconds


@contextlib.contextmanager
def use_twins(enabled: bool) -> Iterator[None]:
    """Within the block, kernels with a twin run the twin (True) or the compiled kernel
    (False) whatever the rent; to compare the two paths."""
    before, _Rent.forced = _Rent.forced, bool(enabled)
    try:
        yield
    finally:
        _Rent.forced = before


class LazyKernel:
    """A numba-compiled function whose dispatcher is built on first use."""

    def __init__(self, func: Callable, options: dict[str, Any], twin: Callable | None = None):
        self.py_func = func
        self.twin = twin
        self._options = options
        self._dispatcher = None
        functools.update_wrapper(self, func)

    @property
    def dispatcher(self):
        """The numba dispatcher (numba is imported here, once)."""
        if self._dispatcher is None:
            import numba

            self._dispatcher = numba.njit(**self._options)(self.py_func)
            _Rent.bought = True
        return self._dispatcher

    def __call__(self, *args):
        if self.twin is not None and twins_active():
            start = time.perf_counter()
            out = self.twin(*args)
            _Rent.spent += time.perf_counter() - start
            if out is not NotImplemented:
                return out
        return self.dispatcher(*args)

    def __getattr__(self, name: str):
        # only reached for names the instance does not hold: the dispatcher's
        # (``signatures``, ``_numba_type_`` when numba types a call from compiled code, ...)
        if name.startswith("__") or name in ("_options", "_dispatcher", "twin", "py_func"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        state = "built" if self._dispatcher is not None else "not built"
        return f"<LazyKernel {self.py_func.__qualname__} ({state})>"


def njit(func: Callable | None = None, *, twin: Callable | None = None, **options: Any):
    """:func:`numba.njit` deferred to the first call: ``@njit`` or ``@njit(cache=True, ...)``;
    ``twin`` its NumPy version for small calls (see the module's docstring)."""
    if func is not None:
        return LazyKernel(func, options, twin)
    return lambda f: LazyKernel(f, options, twin)
