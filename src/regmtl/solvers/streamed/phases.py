"""What an out-of-core fit reports of its progress: one phase at a time, each with its total.

A fit read chunk by chunk runs in phases (the statistics pass, the iterations on the Grams,
the pass certifying the result on the rows); the caller passes an object with ``phase(desc,
total, unit)``, a context manager that yields a bar (``update(n)``, ``set_postfix_str(s)``:
tqdm's interface), and the fit opens one phase after the other. The bars themselves are the
caller's (``regmtl.progress.PhaseBars``): here only the interface and :data:`QUIET`, which
reports nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["Phases", "QUIET", "chunks_from"]


class Bar(Protocol):
    """A phase's bar: steps done and a note beside them."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...


class Phases(Protocol):
    """Opens the bar of each phase of a run (``total`` None: a count with no end)."""

    def phase(self, desc: str, total: int | None, unit: str) -> Any: ...


class _Silent:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None


class _Quiet:
    """Phases that report nothing."""

    @contextmanager
    def phase(self, desc: str, total: int | None, unit: str) -> Iterator[Bar]:
        yield _Silent()


#: The phases of a run that reports nothing.
QUIET: Phases = _Quiet()


def chunks_from(source: Any, start: int = 0) -> int | None:
    """The chunks a pass over ``source`` reads from the one holding task ``start`` (its
    ``bounds()``: the chunks' first tasks), None where the source does not say."""
    bounds = getattr(source, "bounds", None)
    if not callable(bounds):
        return getattr(source, "n_chunks", None) if start == 0 else None
    return int(sum(1 for hi in bounds()[1:] if hi > start))
