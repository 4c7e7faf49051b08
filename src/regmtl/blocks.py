r"""The block protocol: the few operations the solvers call on a problem.

A problem is T tasks whose rows are grouped by task into **task blocks**. The solvers and the
certificates are written against :class:`TaskBlocks` only, so one solver stack serves the
in-memory :class:`~regmtl.taskdata.TaskData` (one block, in this process) and the Dask
:class:`~regmtl.dask.DaskTaskData` (blocks on the workers). Arrays per row (``n_obs``),
per task (T) and per coefficient (p x T) are what the operations take and give: NumPy arrays
in memory, arrays chunked by block elsewhere.

- the linear map and its adjoint: ``linear(W, b)`` (scores ``f_r = x_r . w_t + b_t``),
  ``adjoint(u)`` (``G[:, t] = X_t^T u_t``);
- reductions and broadcasts over the task segments: ``task_sums(u)``, ``per_row(v)``,
  ``row_zeros()``, ``feature_means()``;
- a function on every block, where the block's rows are: ``blockwise(fn, *args, out=...)``
  (how the per-task quadratics, the intercepts and the moments are formed);
- bringing summaries to the caller: ``settle`` (computed and kept where the blocks are),
  ``numbers`` (scalars as floats) and ``arrays`` (small arrays as NumPy arrays), each one
  round trip;
- objects kept where the blocks are, one per holder (a worker; this process in memory), that
  answer method calls: ``keep(cls, *args)`` and its handle :class:`Kept` (how FISTA's
  iterates stay beside the per-task quadratics, :mod:`~regmtl.solvers.blocks.fista_groups`);
- derived quantities kept with the problem: ``memo(key, make)`` (a Gram, a task quadratic,
  the live features: computed once, reused along a path and by warm starts);
- one capability, ``rows_local``: whether the rows are in this process, NumPy/SciPy arrays
  that a solver may read and update in place (epochs over the rows, a Gram formed from ``X``).
  Where it is False only the operations above reach the rows: the solvers run in Gram form
  (per-task quadratics formed on the blocks, :func:`~regmtl.solvers.parts.quadratic.quadratic_of`)
  and bring the fitted coefficients to the caller. Where it is True the in-memory part,
  :class:`LocalRows`, is defined too: the design ``X`` and the layout of its rows
  (``indptr``, ``offset``, ``task_of``), the rows' ``observed`` mask, ``sample_weight`` and
  ``x_shift``, and ``with_columns`` (the problem on some of its features).

This is the whole of what a solver module reads of a problem (``tests/test_architecture.py``
checks the attribute reads on ``data`` in ``regmtl.solvers``); where a problem lives, and
whether it is distributed, is asked only as ``rows_local``.

In memory every operation is trivial: ``blockwise`` runs the function on the data itself,
``settle``, ``numbers`` and ``arrays`` give their arguments back as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["TaskBlocks", "LocalRows", "Kept"]


@runtime_checkable
class TaskBlocks(Protocol):
    """A multi-task problem as the solvers see it: task blocks and the operations on them.

    Attributes
    ----------
    n_tasks, n_features, n_obs : int
        T, p and the number of flat rows.
    shared : bool
        One design for every task (in memory only).
    y, c : array of shape (n_obs,)
        Targets and row weights of the data term.
    rows_local : bool
        The rows are in this process (NumPy/SciPy arrays, ``X`` readable, arrays updated in
        place); False for blocks held elsewhere (then solvers run in Gram form).
    """

    rows_local: bool

    @property
    def n_tasks(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def n_obs(self) -> int: ...

    @property
    def shared(self) -> bool: ...

    @property
    def y(self) -> Any: ...

    @property
    def c(self) -> Any: ...

    def linear(self, W: Any, b: Any = None) -> Any:
        """Scores ``f_r = x_r . w_t + b_t`` per row."""

    def adjoint(self, u: Any) -> Any:
        """``G[:, t] = X_t^T u_t`` (p x T), the transpose of :meth:`linear` in W."""

    def task_sums(self, u: Any) -> Any:
        """Per-task sums of a per-row array (T)."""

    def per_row(self, v: Any) -> Any:
        """A value per task (or one number) as a value per row."""

    def row_zeros(self) -> Any:
        """Zeros per row, where the rows are."""

    def feature_means(self) -> Any:
        """Per-task weighted means of the features (p x T)."""

    def blockwise(self, fn: Callable[..., Any], *args: Any, out: Any = "rows") -> Any:
        """``fn(block, *pieces)`` on every block, each reading its own tasks' part of the
        arguments; ``out`` names each result's kind (``"rows"``, ``"tasks"``, ``("coef", m)``,
        ``"scalar"``, ``"object"``, or a list of them)."""

    def settle(self, *arrays: Any) -> tuple:
        """The arrays computed and kept where the blocks are."""

    def numbers(self, *values: Any) -> tuple[float, ...]:
        """Scalars as floats, in one round trip."""

    def arrays(self, *values: Any) -> tuple[np.ndarray, ...]:
        """Small arrays (per task, per coefficient) as NumPy arrays, in one round trip."""

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed at the first call with ``key`` and kept with the problem."""

    def keep(self, cls: type, *args: Any, several: bool = True) -> Kept | None:
        """``cls(*pieces)`` built and kept where the blocks are, one object per holder, each
        given its blocks' parts of the arguments (a list per argument held by blocks; others
        as they are); None where objects cannot be kept there, or where they would be several
        and ``several`` is False."""


class HolderLost(RuntimeError):
    """A holder of kept objects (a worker) is gone, and the objects' state with it: raised by
    :meth:`Kept.call` where the blocks live elsewhere; the solver makes its objects again
    (:meth:`TaskBlocks.keep`) from a state it has (the last certificate's iterate)."""

    def __init__(self, holders: list[str]):
        super().__init__(f"lost the holder(s) {', '.join(holders)} of kept objects")
        #: the holders lost (worker addresses)
        self.holders = list(holders)


class HolderLostWarning(UserWarning):
    """A fit went on after losing a holder of its kept objects: it cost time (the
    iterations since the last certificate, done again), not the result."""


class Kept:
    """Objects kept where their blocks are (:meth:`TaskBlocks.keep`), one per holder, each
    holding the blocks of :attr:`blocks` (a holder's blocks need not be consecutive):
    :meth:`call` runs a method of each and gives the results in one round trip (or raises
    :class:`HolderLost` where a holder is gone). This implementation holds them in this
    process, one block each."""

    def __init__(self, objects: list):
        self.objects = list(objects)
        #: the blocks each object holds, by index, in the order of its parts
        self.blocks = [[k] for k in range(len(self.objects))]

    def __len__(self) -> int:
        return len(self.objects)

    def call(self, name: str, *args: Any) -> list:
        """``obj.name(*args)`` of every object, in order."""
        return [getattr(obj, name)(*args) for obj in self.objects]

    def call_each(self, name: str, args: list) -> list:
        """``obj.name(*args[i])`` of the i-th object, in order (each its own arguments: the
        columns of its own tasks)."""
        return [getattr(obj, name)(*a) for obj, a in zip(self.objects, args, strict=True)]

    def call_alive(self, name: str, *args: Any) -> list:
        """:meth:`call` on the objects whose holder is alive, None for the others (after a
        :class:`HolderLost`: what the survivors hold)."""
        return self.call(name, *args)

    def close(self) -> None:
        """Let the objects go."""
        self.objects = []


@runtime_checkable
class LocalRows(TaskBlocks, Protocol):
    """The in-memory part of the protocol, defined where ``rows_local`` is True (the
    :class:`~regmtl.taskdata.TaskData` layout; a block of task blocks is one too).

    Attributes
    ----------
    X : ndarray of shape (n_obs, p) or (n, p), or sparse matrix
        The design: flat row r of task t reads row ``r - offset[t]`` (a shared design has n
        rows, one per observation of every task).
    indptr : ndarray of shape (T + 1,)
        Task t's rows are ``indptr[t] <= r < indptr[t + 1]``.
    offset : ndarray of shape (T,)
        Row of ``X`` = flat index - ``offset[t]`` (0 in the stacked layout).
    task_of : ndarray of shape (n_obs,)
        The task of each flat row.
    observed : ndarray of bool of shape (n_obs,) or None
        Rows whose label is present (None: all).
    sample_weight : ndarray of shape (n_obs,) or None
        The rows' sample weights (None: uniform).
    x_shift : ndarray of shape (p, T) or None
        The per-task shift of the columns (``regmtl.taskdata.shift_columns``).
    """

    X: Any
    indptr: np.ndarray
    observed: Any
    sample_weight: Any
    x_shift: Any

    @property
    def offset(self) -> np.ndarray: ...

    @property
    def task_of(self) -> np.ndarray: ...

    def with_columns(self, keep: np.ndarray) -> LocalRows:
        """The same problem on the columns ``keep`` of the design (a copy, with its own
        memo)."""
