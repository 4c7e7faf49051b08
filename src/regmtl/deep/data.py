"""Training data for the deep nets: one table with every task's target, or one set per task.

:class:`MultiTaskDataset` holds inputs of any kind (tables, images, token ids, sparse rows,
named inputs) and a target per task (NaN = missing), or one target per row for the row's own
task; it is checked against the task specs before training. :class:`Batches` walks it in batches
by indexing whole tensors (no per-sample collation), the same global order for one process
and for the ranks of a distributed run. A dict ``{task: data}`` trains each task on its own
data set, of its own size; the shorter ones are cycled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..ranges import check_column_scales, check_numeric_range
from ._torch import torch
from .conversion import find_stack_level
from .inputs import SparseRows, as_inputs, device_of, n_rows, take, tensor_of, to_device
from .tasks import TaskSpec, as_task_specs

__all__ = ["MultiTaskDataset", "Batches", "CheckedLoader", "Cycle", "as_dataset", "check_batch"]


def row_tasks(task: Any, tasks: list[TaskSpec], n: int) -> np.ndarray:
    """Each row's task as positions in ``tasks``: from names, or from int64 positions."""
    if isinstance(task, torch.Tensor):
        task = task.detach().cpu().numpy()
    arr = np.asarray(task)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"task must be 1-D with one entry per row ({n}), got shape "
                         f"{arr.shape}.")
    if arr.dtype.kind in "iu":
        if len(arr) and (arr.min() < 0 or arr.max() >= len(tasks)):
            raise ValueError(f"task: positions must be in 0..{len(tasks) - 1} (the tasks "
                             f"{[t.name for t in tasks][:5]}...), found {int(arr.min())}.."
                             f"{int(arr.max())}.")
        return arr.astype(np.int64)
    names = [t.name for t in tasks]
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    pos = {k: i for i, k in enumerate(names)}
    unknown = [u for u in uniq if u not in pos]
    if unknown:
        raise ValueError(f"task: unknown task(s) {unknown[:5]}; the model's tasks are "
                         f"{names[:10]}.")
    return np.array([pos[u] for u in uniq], dtype=np.int64)[inv]


def _check_input_range(X: Any, what: str) -> None:
    """The range check of every entry point (:func:`regmtl.ranges.check_numeric_range`)
    on float inputs as given, before the float32 cast flushes 1e-200 to 0 or 1e200 to inf;
    a dict is checked input by input."""
    if isinstance(X, Mapping):
        for k, v in X.items():
            _check_input_range(v, f"{what}[{k!r}]")
        return
    if isinstance(X, torch.Tensor):
        if X.dtype not in (torch.float32, torch.float64) or X.device.type != "cpu" or X.ndim > 2:
            return
        X = X.detach().numpy()
    if sp.issparse(X):
        check_numeric_range(X, what)
    elif isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim <= 2 and X.size:
        A = X if X.ndim == 2 else X[:, None]
        with warnings.catch_warnings():  # (an all-NaN column: refused by as_inputs)
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmin(A, axis=0), np.nanmax(A, axis=0)
        check_column_scales(np.nan_to_num(np.maximum(hi, -lo)), len(A), what)
        if X.dtype == np.float64 and X.ndim == 2:
            _warn_float32_loss(lo, hi, what)


def _warn_float32_loss(lo: np.ndarray, hi: np.ndarray, what: str) -> None:
    r"""Warn, naming the columns, where the float32 cast keeps too little of a column's
    variation (``lo``, ``hi``: each column's smallest and largest value): a column whose
    range is below :math:`2^{-13}` of its magnitude (1e9 + N(0, 1), a timestamp of one day
    in nanoseconds) spans fewer than about a thousand float32 values (relative spacing
    :math:`2^{-23}`), so the net sees it nearly constant."""
    mag = np.maximum(np.abs(lo), np.abs(hi))
    lost = np.flatnonzero((hi > lo) & (hi - lo < mag * 2.0 ** -13))
    if len(lost):
        j = int(lost[0])
        cols = ", ".join(map(str, lost[:5].tolist())) + (" ..." if len(lost) > 5 else "")
        warnings.warn(
            f"{what}: column(s) {cols} vary by little against their magnitude (column {j}: "
            f"values {lo[j]:.10g} to {hi[j]:.10g}); the net reads inputs in float32, which "
            f"keeps about {max((hi[j] - lo[j]) / (mag[j] * 2.0 ** -23), 1):.0f} distinct "
            "value(s) there. Subtract each column's mean (or standardize X) before training "
            "(the scikit-learn wrappers do it in float64).", UserWarning,
            stacklevel=find_stack_level())


#: the kinds of tasks as codes, for the per-row checks
_KIND_CODES = {"regression": 0, "binary": 1, "multiclass": 2, "count": 3}


def rows_ok(task: Any, n_tasks: int) -> bool:
    """Whether ``task`` is a 1-D int64 tensor of positions in 0..n_tasks-1 (one pass)."""
    if not isinstance(task, torch.Tensor) or task.dtype != torch.int64 or task.ndim != 1:
        return False
    if not len(task):
        return True
    lo, hi = torch.aminmax(task)
    return int(lo) >= 0 and int(hi) < n_tasks


def check_rows(task: Any, n_tasks: int) -> None:
    """Refuse a per-row batch (of a loader) whose task index is not int64 positions in
    0..n_tasks-1: one pass over the batch's index, where it is (before a transfer)."""
    if not rows_ok(task, n_tasks):
        got = (f"{task.dtype} {tuple(task.shape)}" if isinstance(task, torch.Tensor)
               else type(task).__name__)
        if isinstance(task, torch.Tensor) and task.ndim == 1 and len(task) and not (
                task.is_floating_point() or task.is_complex()):
            lo, hi = torch.aminmax(task.long())
            got += f" in {int(lo)}..{int(hi)}"
        raise ValueError(f"a batch's task index must be a 1-D int64 tensor of positions in "
                         f"0..{n_tasks - 1}; got {got}.")


def _row_targets(y: Any, task: np.ndarray, tasks: list[TaskSpec]) -> np.ndarray:
    """Row i's target for its own task, checked by the tasks' kinds (vectorized): (n, W)
    float64, NaN where missing or beyond the task's width."""
    if isinstance(y, Mapping):
        raise ValueError("targets: with task= give one array of each row's own label, not a "
                         "dict {task: y} (that is the layout of a column per task, without "
                         "task=).")
    arr = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y,
                     dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    width = max(t.target_width for t in tasks)
    if arr.ndim != 2 or arr.shape[0] != len(task) or arr.shape[1] > width:
        raise ValueError(f"targets: with task= the target holds each row's own task's label, "
                         f"of shape (n,) or (n, {width}); got {arr.shape} for {len(task)} rows.")
    if np.isinf(arr).any():
        raise ValueError("targets contain infinity; use NaN for a missing label or drop the "
                         "row.")
    if arr.shape[1] < width:
        arr = np.pad(arr, ((0, 0), (0, width - arr.shape[1])), constant_values=np.nan)
    if any(t.target_width != width for t in tasks):  # NaN beyond each row's task's width
        widths = np.array([t.target_width for t in tasks])[task]
        arr = arr.copy()  # (not the caller's array)
        arr[np.arange(width)[None, :] >= widths[:, None]] = np.nan
    if all(t.kind == "regression" for t in tasks):
        return arr
    # the labels of the classification rows (kinds as small codes: one byte a row)
    kinds = np.array([_KIND_CODES[t.kind] for t in tasks], dtype=np.int8)[task]
    k_out = np.array([t.n_outputs for t in tasks])[task]
    first = arr[:, 0]
    obs = ~np.isnan(first)
    bad = obs & (kinds == _KIND_CODES["binary"]) & ~np.isin(first, (0.0, 1.0))
    bad |= obs & (kinds == _KIND_CODES["multiclass"]) & ((first != np.round(first))
                                                         | (first < 0) | (first >= k_out))
    bad |= obs & (kinds == _KIND_CODES["count"]) & (first < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        t = tasks[int(task[i])]
        want = {"binary": "0 or 1", "count": ">= 0"}.get(t.kind,
                                                         f"integers in 0..{t.n_outputs - 1}")
        raise ValueError(f"targets: row {i} of task {t.name!r} ({t.kind}) has label "
                         f"{float(first[i])!r}; its labels must be {want} (NaN = missing).")
    return arr


class MultiTaskDataset(torch.utils.data.Dataset):
    """Inputs of any kind and the targets of some or all tasks, checked against their specs.

    A ``torch.utils.data.Dataset`` held as whole tensors. The inputs are carried as the net
    will read them (``regmtl.deep.inputs``): floats as float32 of any shape (tables, images),
    integers as int64 (token ids, categorical codes: never cast to float), SciPy sparse rows
    (a batch is a sparse CSR tensor), or a dict of named inputs. Targets are kept in float64
    (the trainer takes each regression target's mean out before the net's float32).

    Two layouts of the targets:

    - **per task** (``task=None``): a dict ``{task: y}`` (or an (n, T) array), NaN where a
      row has no label; indexing returns ``(x, {task: y})``;
    - **per row** (``task=`` each row's task): ``targets`` holds row i's label for its own
      task; indexing returns ``(x, (task_index, y))`` and only that task's head runs on the
      row (the layout of many tasks: the cost of a batch does not grow with T).

    Parameters
    ----------
    X : array-like, tensor, SciPy sparse matrix, or dict of str to them
        The inputs (finite; a DataFrame is read as its numeric matrix).
    targets : dict of str to array-like, or array-like
        Each task's target (per task), or each row's own task's target (per row). NaN marks
        a missing label.
    tasks : list of TaskSpec, or names, or dict of name to kind
        The tasks the targets are checked against (names alone are regression tasks, as
        for the nets).
    task : array-like of shape (n_samples,), optional
        Each row's task: names, or int positions in ``tasks``.

    Attributes
    ----------
    X : Tensor, SparseRows or dict
        The inputs.
    targets : dict of str to Tensor, or None
        The targets per task (float64, NaN where missing); None per row.
    task : Tensor of shape (n_samples,) or None
        Each row's task (positions), per row.
    y : Tensor of shape (n_samples, W) or None
        Each row's target (float64), per row.

    Raises
    ------
    ValueError
        On unknown task names, a width other than the task's ``n_outputs``, labels outside
        0/1 (binary) or 0..K-1 (multiclass), a row count other than X's, strings or objects,
        or NaN or infinite inputs.

    See Also
    --------
    regmtl.deep.Batches : Walks a dataset in batches.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import MultiTaskDataset, TaskSpec
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((10, 3))
    >>> clicked = np.where(X[:, 1] > 0, 1.0, np.nan)  # label 1 where seen, else missing
    >>> ds = MultiTaskDataset(X, {"price": X[:, 0], "clicked": clicked},
    ...                       [TaskSpec("price"), TaskSpec("clicked", kind="binary")])
    >>> len(ds), ds.n_features
    (10, 3)
    >>> x, y = ds[[0, 1, 2]]
    >>> tuple(x.shape), {task: tuple(v.shape) for task, v in y.items()}
    ((3, 3), {'price': (3,), 'clicked': (3,)})

    Images and token ids keep their shape and dtype; per row, each row has one task:

    >>> images = rng.integers(0, 255, size=(6, 1, 8, 8), dtype=np.uint8)
    >>> ds = MultiTaskDataset(images, [0, 1, 0, 1, 1, 0], [TaskSpec("left"), TaskSpec("right")],
    ...                       task=["left", "right"] * 3)
    >>> x, (t, y) = ds[[0, 1]]
    >>> tuple(x.shape), x.dtype, t.tolist()
    ((2, 1, 8, 8), torch.int64, [0, 1])
    """

    def __init__(self, X: Any, targets: Any, tasks: Any, task: Any = None):
        _check_input_range(X, "X")
        x = as_inputs(X)
        n = n_rows(x)
        self.X = x
        self.tasks = tasks = as_task_specs(tasks)
        self.task = self.y = None
        self.targets: dict[str, torch.Tensor] | None = None
        if task is not None:
            pos = row_tasks(task, self.tasks, n)
            self.task = tensor_of(pos)  # (read-only arrays: copied, see tensor_of)
            self.y = tensor_of(_row_targets(targets, pos, self.tasks))
            check_numeric_range(self.y.numpy(), "targets")
            return
        specs = {t.name: t for t in tasks}
        if isinstance(targets, tuple) and len(targets) == 2:
            raise ValueError("targets: a pair (task, y) is the per-row layout; pass "
                             "MultiTaskDataset(X, y, tasks, task=task).")
        if not isinstance(targets, Mapping):
            Y = np.asarray(targets, dtype=np.float64)
            if Y.ndim == 1:
                Y = Y[:, None]
            if Y.ndim != 2 or Y.shape[1] != len(tasks) or any(t.target_width != 1
                                                             for t in tasks):
                raise ValueError(f"targets: an array must be (n, {len(tasks)}), one column per "
                                 f"task {list(specs)}; got {Y.shape}. Pass a dict task -> "
                                 "target for tasks with several outputs.")
            targets = {t.name: Y[:, j] for j, t in enumerate(tasks)}
        unknown = [k for k in targets if k not in specs]
        if unknown:
            raise ValueError(f"targets: unknown task(s) {unknown}; the model's tasks are "
                             f"{list(specs)}.")
        if not targets:
            raise ValueError("targets: no task has a target.")
        ys = {}
        for name, y in targets.items():
            if isinstance(y, torch.Tensor):
                y = y.detach().cpu().numpy()
            arr = specs[name].check_target(y)
            if specs[name].kind in ("regression", "count"):
                check_numeric_range(np.asarray(arr, dtype=np.float64), f"targets[{name!r}]")
            if arr.shape[0] != n:
                raise ValueError(f"targets[{name!r}] has {arr.shape[0]} rows, X has {n}.")
            ys[name] = tensor_of(np.asarray(arr, dtype=np.float64))  # (read-only: copied)
        self.targets = ys

    @property
    def per_row(self) -> bool:
        """Whether each row has one task (``task=`` given)."""
        return self.task is not None

    def __len__(self) -> int:
        return n_rows(self.X)

    @property
    def n_features(self) -> int | None:
        """The number of features of a 2-D float ``X`` (None for other inputs)."""
        x = self.X
        if isinstance(x, torch.Tensor) and x.ndim == 2 and x.is_floating_point():
            return int(x.shape[1])
        return None

    def __getitem__(self, idx):
        if not isinstance(idx, (int, slice)):
            idx = torch.as_tensor(idx, dtype=torch.int64)
        x = take(self.X, idx) if not isinstance(idx, (int, slice)) else _plain_take(self.X, idx)
        if self.task is not None:
            y = self.y[idx]
            return x, (self.task[idx], y[..., 0] if y.shape[-1] == 1 else y)
        return x, {k: v[idx] for k, v in self.targets.items()}

    def to(self, device) -> MultiTaskDataset:
        """Move the tensors (once) to ``device``.

        Parameters
        ----------
        device : str or torch.device
            The device.

        Returns
        -------
        MultiTaskDataset
            The dataset itself.
        """
        self.X = to_device(self.X, device)
        if self.task is not None:
            self.task, self.y = self.task.to(device), self.y.to(device)
        else:
            self.targets = {k: v.to(device) for k, v in self.targets.items()}
        return self


def _plain_take(x: Any, idx: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain_take(v, idx) for k, v in x.items()}
    if isinstance(x, SparseRows):
        return x[torch.arange(len(x))[idx]]
    return x[idx]


def _is_batch(first: Any) -> bool:
    """``(x, {task: y})`` or ``(x, (task_index, y))``."""
    if not (isinstance(first, (tuple, list)) and len(first) == 2):
        return False
    t = first[1]
    return isinstance(t, Mapping) or (isinstance(t, (tuple, list)) and len(t) == 2
                                      and isinstance(t[0], torch.Tensor))


def as_dataset(data: Any, tasks: list[TaskSpec], what: str = "train",
               check: Callable[[Any], None] | None = None) -> Any:
    """A MultiTaskDataset from the tuple ``(X, targets)`` (``(X, (task, y))`` per row);
    datasets pass through, and so do loaders: a DataLoader or any re-iterable sized
    collection of ``(x, {task: y})`` or ``(x, (task_index, y))`` batches, wrapped in a
    :class:`CheckedLoader` that checks the labels of every batch as it passes. ``check``:
    the net's own check of labels by task (``MultiTaskNet.check_targets``), run on a data
    set's targets here and on a loader's batches as they pass; its error is prefixed with
    ``what`` (and the batch)."""
    if isinstance(data, MultiTaskDataset):
        return _checked(data, check, what)
    if isinstance(data, tuple) and len(data) == 2:
        try:
            t = data[1]
            if isinstance(t, tuple) and len(t) == 2:
                return MultiTaskDataset(data[0], t[1], tasks, task=t[0])
            ds = MultiTaskDataset(data[0], data[1], tasks)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        return _checked(ds, check, what)
    if isinstance(data, CheckedLoader):
        return data
    if isinstance(data, torch.utils.data.DataLoader):
        return CheckedLoader(data, tasks, check, what)
    if (hasattr(data, "__iter__") and hasattr(data, "__len__") and len(data)
            and not isinstance(data, (str, np.ndarray, torch.Tensor, Mapping))
            and not hasattr(data, "columns")):
        if _is_batch(next(iter(data))):
            return CheckedLoader(data, tasks, check, what)
    raise ValueError(f"{what}: expected the tuple (X, targets), a MultiTaskDataset, a "
                     "DataLoader or a sized iterable of (x, {task: y}) or (x, (task_index, y)) "
                     "batches, or a dict task -> one of them; got "
                     f"{type(data).__name__}.")


def _checked(ds: MultiTaskDataset, check: Callable[[Any], None] | None,
             what: str) -> MultiTaskDataset:
    """``ds`` once the net's check of labels by task passed on its targets."""
    if check is not None and ds.targets is not None:
        try:
            check(ds.targets)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    return ds


def _refused(specs: list[TaskSpec], Y: torch.Tensor) -> torch.Tensor:
    """Which labels of ``Y`` (B, m), column j labels of task ``specs[j]``, the tasks' checks
    refuse (a bool per entry, on the labels' device): infinity, a missing label where
    refused, binary labels other than 0/1, class labels outside the integers 0..K-1,
    negative counts. A few operations whatever m, each rule applied by a column mask."""
    if not Y.is_floating_point():
        Y = Y.double()
    missing = torch.isnan(Y)
    bad = torch.isinf(Y)

    def cols(rule) -> torch.Tensor:
        return torch.tensor([rule(s) for s in specs], device=Y.device)

    bad |= missing & cols(lambda s: s.missing_labels == "refuse")
    bad |= ~missing & cols(lambda s: s.kind == "binary") & (Y != 0) & (Y != 1)
    bad |= cols(lambda s: s.kind == "count") & (Y < 0)
    k = torch.tensor([float(s.n_outputs) if s.kind == "multiclass" else math.inf
                      for s in specs], dtype=Y.dtype, device=Y.device)
    bad |= ~missing & cols(lambda s: s.kind == "multiclass") & (
        (torch.frac(Y) != 0) | (Y < 0) | (Y >= k))
    return bad


def _bad_rows(spec: TaskSpec, y: torch.Tensor) -> torch.Tensor:
    """Rows of the batch labels ``y`` of task ``spec`` that its checks refuse
    (:func:`_refused`), a bool per row."""
    y = y.reshape(len(y), -1) if y.ndim != 1 else y[:, None]
    return _refused([spec] * y.shape[1], y).any(1)


def _any_bad(found: list[tuple[TaskSpec, torch.Tensor]]) -> bool:
    """Whether a label of the batch is refused (:func:`_refused`): the one-output tasks'
    labels stacked as the columns of one (B, T) matrix, checked at once; task by task
    otherwise."""
    ys = [y for s, y in found if s.target_width == 1 and y.numel() == len(y)]
    try:
        if len(ys) < len(found):
            raise RuntimeError("a task of several outputs")
        Y = torch.stack([y.reshape(-1) for y in ys], 1)
    except RuntimeError:  # other widths, lengths or devices: task by task
        return bool(torch.stack([_bad_rows(s, y).any() for s, y in found]).any())
    return bool(_refused([s for s, _ in found], Y).any())


def check_batch(batch: Any, tasks: list[TaskSpec], check: Callable[[Any], None] | None,
                where: str) -> None:
    """Refuse a loader's batch whose labels the tasks' checks (as for a data set's targets,
    :meth:`TaskSpec.check_target`) or the net's own (``check``) refuse: one vectorized pass
    over the batch's labels, the message of the array path prefixed with ``where`` (the data
    set and the batch) and the first row of the batch that has it."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        return  # the trainer's own checks name a batch of another form
    ys = batch[1]
    if not isinstance(ys, Mapping):
        if not (isinstance(ys, (tuple, list)) and len(ys) == 2):
            return
        task, y = ys
        if not rows_ok(task, len(tasks)):
            try:
                check_rows(task, len(tasks))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if y.ndim and len(y) != len(task):
            raise ValueError(f"{where}: the batch has {len(task)} task indices and {len(y)} "
                             "labels; give one label (row) per task index.")
        try:  # each row for its own task (the data set's check, on the batch)
            _row_targets(y, task.detach().cpu().numpy(), tasks)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return
    specs = {t.name: t for t in tasks}
    found = [(specs[k], tensor_of(y) if isinstance(y, np.ndarray) else y)
             for k, y in ys.items() if k in specs and (
                 isinstance(y, torch.Tensor) or (isinstance(y, np.ndarray)
                                                 and y.dtype.kind in "biuf"))]
    if found and _any_bad(found):
        for spec, y in found:  # the first task with a refused label, as its arrays say it
            bad = torch.nonzero(_bad_rows(spec, y))
            if not len(bad):
                continue
            try:
                spec.check_target(y.detach().cpu().double().numpy(), "targets")
            except ValueError as exc:
                raise ValueError(f"{where} (first at row {int(bad[0, 0])} of the batch): "
                                 f"{exc}") from None
    if check is not None:
        try:
            check(ys)
        except ValueError as exc:
            raise ValueError(f"{where} (rows of the batch): {exc}") from None


class CheckedLoader:
    """A loader whose batches' labels are checked as they pass (:func:`check_batch`).

    Iterating gives the loader's batches unchanged, each once its labels are checked against
    the tasks' kinds and the net's own check (ESMM: no conversion without a click), so a
    loader is refused on the batch that holds a label its arrays would be refused for, with
    the same message, naming the batch and the row. Other attributes (``dataset``,
    ``sampler``, ``set_epoch``, ...) are the loader's.

    Parameters
    ----------
    loader : DataLoader or sized re-iterable
        Batches ``(x, {task: y})`` or ``(x, (task_index, y))``.
    tasks : list of TaskSpec
        The tasks the labels are checked against.
    check : callable, optional
        The net's check of labels by task (``MultiTaskNet.check_targets``).
    what : str, default="train"
        How errors name the data (``"train"``, ``"val"``, ``"train['ctr']"``).
    """

    def __init__(self, loader: Any, tasks: list[TaskSpec],
                 check: Callable[[Any], None] | None = None, what: str = "train"):
        self.loader, self.tasks, self.check, self.what = loader, tasks, check, what

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for b, batch in enumerate(self.loader):
            check_batch(batch, self.tasks, self.check, f"{self.what}: batch {b}")
            yield batch

    def __getattr__(self, name: str) -> Any:
        loader = self.__dict__.get("loader")
        if loader is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(loader, name)


class Batches:
    """Index batches of a MultiTaskDataset: one epoch = one pass in a seeded random order.

    The order of epoch e is ``randperm(n)`` from a generator seeded with ``seed + e``. With
    ``world_size`` ranks, global batch b is rows ``order[b*B*W:(b+1)*B*W]`` and rank r takes
    every W-th of them from the r-th: the ranks together see exactly the batch one process
    with ``batch_size = B * W`` sees. Every rank takes the same number of steps: a last global
    batch with fewer than W rows is dropped. Batches are made by indexing whole tensors (no
    per-sample collation).

    Parameters
    ----------
    dataset : MultiTaskDataset
        The data.
    batch_size : int
        Rows per batch and rank, B (>= 1).
    shuffle : bool, default=True
        A new random order every epoch; False: the row order.
    seed : int, default=0
        Seed of the orders.
    rank : int, default=0
        This process's rank r.
    world_size : int, default=1
        Number of ranks W.
    drop_last : bool, default=False
        Drop an incomplete last global batch.

    Attributes
    ----------
    epoch : int
        The epoch whose order iteration gives (see :meth:`set_epoch`).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import Batches, MultiTaskDataset, TaskSpec
    >>> X = np.arange(10.0).reshape(10, 1)
    >>> ds = MultiTaskDataset(X, {"a": X[:, 0]}, [TaskSpec("a")])
    >>> batches = Batches(ds, batch_size=4, seed=0)
    >>> len(batches), [tuple(x.shape) for x, y in batches]
    (3, [(4, 1), (4, 1), (2, 1)])

    Two ranks with batches of 2 see the batches of one process with batches of 4:

    >>> one = [x[:, 0].tolist() for x, _ in batches]
    >>> ranks = [[x[:, 0].tolist() for x, _ in Batches(ds, 2, seed=0, rank=r, world_size=2)]
    ...          for r in (0, 1)]
    >>> all(sorted(a + b) == sorted(o) for a, b, o in zip(*ranks, one))
    True
    """

    def __init__(self, dataset: MultiTaskDataset, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` from the next iteration on.

        Parameters
        ----------
        epoch : int
            The epoch (the trainer sets it before each pass).
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n, g = len(self.dataset), self.batch_size * self.world_size
        rest = n % g
        return n // g + int(rest >= self.world_size and not self.drop_last)

    def __iter__(self) -> Iterator:
        data = self.dataset
        for idx in self.indices():
            yield data[idx]

    def indices(self) -> list[torch.Tensor]:
        """This rank's row indices of every batch of the current epoch, in order (what
        iteration indexes the dataset with).

        Returns
        -------
        list of Tensor
            One int64 tensor per batch, on the device of the dataset's inputs.
        """
        n = len(self.dataset)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        order = order.to(device_of(self.dataset.X))
        parts = list(order.split(self.batch_size * self.world_size)[:len(self)])
        if self.world_size > 1:
            parts = [idx[self.rank::self.world_size] for idx in parts]
        return parts


class Cycle:
    """Endless iteration over a loader, a new epoch (and order) each pass, that can be resumed:
    its position is the pass ``epoch`` and the batches drawn in it, ``position``
    (``state()``); ``seek`` goes back to one, so a resumed fit draws the batches the
    uninterrupted one draws. A :class:`Batches` loader is resumed by its index batches (its
    order of each pass is fixed by its seed and the pass); another loader by drawing and
    dropping ``position`` batches of a new pass: the same ones where its order is fixed by
    ``set_epoch`` or has none, while a DataLoader shuffling from torch's global generator
    draws another order for the pass in progress (its seed was drawn when the pass began).

    Parameters
    ----------
    loader : Batches, DataLoader or re-iterable
        The loader (its ``set_epoch(epoch)`` is called before each pass where it has one).
    """

    def __init__(self, loader: Any):
        self.loader = loader
        self.epoch, self.position = 0, 0
        self._it: Iterator | None = None

    def __iter__(self) -> Cycle:
        return self

    def __next__(self) -> Any:
        while True:
            if self._it is None:
                self._it = self._start(0)
            try:
                out = next(self._it)
            except StopIteration:
                self._it, self.epoch, self.position = None, self.epoch + 1, 0
                continue
            self.position += 1
            return out

    def _start(self, skip: int) -> Iterator:
        loader = self.loader
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        if isinstance(loader, Batches):
            data = loader.dataset
            return (data[idx] for idx in loader.indices()[skip:])
        it = iter(loader)
        for _ in range(skip):
            next(it, None)
        return it

    def state(self) -> list[int]:
        """``[epoch, position]``: the pass and the batches drawn in it."""
        return [self.epoch, self.position]

    def seek(self, epoch: int, position: int) -> None:
        """Continue from batch ``position`` (from 0) of pass ``epoch`` (from 0)."""
        self.epoch, self.position = int(epoch), int(position)
        self._it = self._start(self.position)
