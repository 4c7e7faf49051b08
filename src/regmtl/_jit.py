"""Compiled kernels that load numba on their first call, not at import.

``njit(**options)`` decorates like :func:`numba.njit` but returns a :class:`LazyKernel`:
importing a module of kernels costs nothing, and numba (about 0.3 s to import, more to
rebuild its type registries) is loaded the first time a kernel runs. A kernel called from
another compiled function is typed through ``_numba_type_``, which builds the dispatcher on
demand, so kernels can call one another (and code compiled elsewhere can call them) as
plain numba dispatchers. Attributes (``signatures``, ``py_func``, ...) are the dispatcher's.

A kernel may have a NumPy ``twin`` (same arguments, same results up to rounding, buffers
written in place alike; ``NotImplemented`` for a call it does not cover). Twins run instead of
their kernels while no kernel has been compiled in the process and the twins' estimated time
is below :data:`rent_seconds` in all: a fresh process's first small fits do not load numba, and
a process that keeps fitting pays about that much before it does (the rent-or-buy rule: never
more than twice the better choice known in hindsight).

The rent is counted in work, not measured in wall time (:data:`CALL_SECONDS` per call plus
:data:`ELEMENT_SECONDS` per element of the arrays passed), and a solve holds the choice it
started with (:func:`kernel_scope`): which path runs depends on the calls made before in the
process, never on the machine's load, so a script gives the same numbers on every run. Two
processes with different histories (``n_jobs`` workers) may still take different paths, whose
results agree to rounding; ``REGMTL_KERNELS=numba`` (or ``numpy``) fixes the path for all.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["LazyKernel", "kernel_scope", "njit", "rent_seconds", "twins_active", "use_twins"]

#: seconds of NumPy twins a process runs before its kernels are compiled instead (about what
#: importing numba and loading its first cached kernels costs)
rent_seconds = 0.4
#: estimated seconds of one twin call, and of each element of the arrays it is given (fitted
#: on small L2,1 and logistic fits: 0.06 s for 63 calls over 0.3 M elements, 0.53 s for 95
#: calls over 12 M)
CALL_SECONDS = 7.5e-4
ELEMENT_SECONDS = 3.7e-8
_ENV_PATH = {"numba": False, "numpy": True}


def _env_forced() -> bool | None:
    value = os.environ.get("REGMTL_KERNELS", "auto").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in _ENV_PATH:
        raise ValueError(f"REGMTL_KERNELS={value!r} is not one of 'auto', 'numba', 'numpy'; "
                         "unset it or pick one of those.")
    return _ENV_PATH[value]


class _Rent:
    spent = 0.0  # estimated seconds of the twins' calls so far
    bought = False  # a kernel has been compiled (numba loaded): twins no longer run
    forced: bool | None = None  # set by use_twins
    held: bool | None = None  # the choice of the solve under way (kernel_scope)


def twins_active() -> bool:
    """Whether a kernel with a twin runs the twin now."""
    if _Rent.forced is not None:
        return _Rent.forced
    if _Rent.held is not None:  # (within a solve: its choice on entry, the environment read)
        return _Rent.held
    env = _env_forced()
    if env is not None:
        return env
    return not _Rent.bought and _Rent.spent < rent_seconds


@contextlib.contextmanager
def kernel_scope() -> Iterator[None]:
    """Within the block (a solve), kernels keep the path chosen on entry: a fit runs on the
    twins or on the compiled kernels from its first iteration to its last."""
    if _Rent.held is not None:  # a solve within a solve: the outer one's choice
        yield
        return
    _Rent.held = twins_active()
    try:
        yield
    finally:
        _Rent.held = None


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
        # (the hot path of a solve's many small calls: its choice held, the dispatcher built)
        held = _Rent.held if _Rent.forced is None else None
        if self.twin is not None and (held if held is not None else twins_active()):
            out = self.twin(*args)
            if out is not NotImplemented:
                _Rent.spent += CALL_SECONDS + ELEMENT_SECONDS * sum(
                    getattr(a, "size", 0) for a in args)
                return out
        dispatcher = self._dispatcher
        return (dispatcher if dispatcher is not None else self.dispatcher)(*args)

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
