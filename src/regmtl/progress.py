"""Progress bars of the long runs: one switch and one look for all of them.

:func:`~regmtl.compare`, the cross-validated searches and AIC/BIC of
:mod:`regmtl.selection`, :func:`~regmtl.regularization_path` and the fits, predictions and
scores of a :class:`~regmtl.ParquetTasks` read chunk by chunk take ``progress``:

- ``True``: a bar on stderr from the start (also when stderr is not a terminal, e.g. a log);
- ``False``: nothing;
- ``"auto"`` (the default): a bar when stderr is a terminal and the run has lasted
  :data:`AUTO_DELAY` seconds (a shorter run prints nothing), in the main thread of the main
  process only (never from the workers of a parallel run).

The bar (tqdm's, notebook-aware) counts steps and shows the time left; it is cleared when the
run ends, after it has shown the final count (100 % where the total is known). It never changes
a result: the work is the same with and without it.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["AUTO_DELAY", "PhaseBars", "check_progress", "progress_enabled", "progress_bar"]

#: Seconds a run with ``progress="auto"`` lasts before its bar shows.
AUTO_DELAY = 2.0


def check_progress(progress: Any) -> bool | str:
    """``progress`` checked: ``True``, ``False`` (a NumPy bool too) or ``"auto"``.

    Raises
    ------
    ValueError
        For any other value.
    """
    if isinstance(progress, (bool, np.bool_)):
        return bool(progress)
    if isinstance(progress, str) and progress == "auto":
        return "auto"
    raise ValueError(f"progress={progress!r} must be 'auto', True or False.")


def progress_enabled(progress: Any) -> bool:
    """Whether a bar may show: ``True`` and ``False`` as given; ``"auto"`` when stderr is a
    terminal and the caller runs in the main thread of the main process."""
    progress = check_progress(progress)
    if progress != "auto":
        return progress
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and multiprocessing.parent_process() is None and (
        threading.current_thread() is threading.main_thread())


@functools.cache
def _bar_class() -> type:
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        """A tqdm bar that shows its final count before it is cleared (a log keeps it)."""

        def close(self) -> None:
            if (not self.disable and self.last_print_n != self.n
                    and self.last_print_t >= self.start_t + self.delay):  # shown before
                self.refresh()
            super().close()

    return Bar


def progress_bar(total: int | None, progress: Any, desc: str, *, unit: str = "fit") -> Any:
    """A progress bar of ``total`` steps (None: a count with no end), shown on stderr as
    ``progress`` says (see the module); use it as a context manager and ``update`` it.

    Parameters
    ----------
    total : int or None
        The number of steps of the run.
    progress : {"auto", True, False}
        The switch of the caller.
    desc : str
        What runs (``"cross-validation"``, ``"compare"``, ...).
    unit : str, default="fit"
        What a step is.

    Returns
    -------
    tqdm
        The bar (disabled, and silent, where it does not show).
    """
    shown = progress_enabled(progress)
    delay = AUTO_DELAY if check_progress(progress) == "auto" else 0.0
    return _bar_class()(total=total, disable=not shown, desc=desc, unit=unit, leave=False,
                        delay=delay, file=sys.stderr)


class PhaseBars:
    """The bars of a run in phases (an out-of-core fit: the statistics pass, the iterations,
    the certifying pass), one after the other, each with its total, shown as ``progress``
    says; ``chunk(lo, hi, rows)``, a source's ``on_chunk`` hook, moves the bar of the phase
    open when its unit is the chunk."""

    def __init__(self, progress: Any, prefix: str = ""):
        self.progress = check_progress(progress)
        self.prefix = prefix
        self.bar: Any = None
        self.unit = ""

    @contextmanager
    def phase(self, desc: str, total: int | None, unit: str) -> Iterator[Any]:
        """A bar of ``total`` steps of ``unit`` (None: no end) for the phase ``desc``."""
        name = f"{self.prefix}: {desc}" if self.prefix else desc
        with progress_bar(total, self.progress, name, unit=unit) as bar:
            outer, self.bar, self.unit = (self.bar, self.unit), bar, unit
            try:
                yield bar
            finally:
                self.bar, self.unit = outer

    def chunk(self, lo: int, hi: int, rows: int) -> None:
        """One chunk read: a step of the open phase counted in chunks."""
        if self.bar is not None and self.unit == "chunk":
            self.bar.update(1)
