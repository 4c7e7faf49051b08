"""Training data for the deep nets: one table with every task's target, or one set per task.

:class:`MultiTaskDataset` holds features X (n x p) and a target per task (NaN = missing);
it is checked against the task specs before training. :class:`Batches` walks it in batches
by indexing whole tensors (no per-sample collation), the same global order for one process
and for the ranks of a distributed run. A dict ``{task: data}`` trains each task on its own
data set, of its own size; the shorter ones are cycled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ._torch import torch
from .tasks import TaskSpec

__all__ = ["MultiTaskDataset", "Batches", "as_dataset"]


def _features(X: Any, what: str = "X") -> np.ndarray:
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric array: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_samples, n_features), got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} has no rows.")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what} contains NaN or infinity (first at row {bad[0]}, column "
                         f"{bad[1]}); impute or drop those rows (NaN is a missing label only "
                         "in targets).")
    return arr


class MultiTaskDataset(torch.utils.data.Dataset):
    """Features and the targets of some or all tasks, checked against their specs.

    A ``torch.utils.data.Dataset`` held as whole float32 tensors: indexing with an integer or
    an index tensor returns ``(x, {task: y})``. Tasks without a target are left out of the
    dict (the trainer gives them no signal); NaN marks a missing label.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The features (finite; a DataFrame or a tensor is accepted).
    targets : dict of str to array-like, or array-like of shape (n_samples, T)
        Each task's target, of shape (n_samples,) or (n_samples, n_outputs); or one column per
        task in the order of ``tasks`` (single-output tasks only). NaN marks a missing label.
    tasks : list of TaskSpec
        The tasks the targets are checked against.

    Attributes
    ----------
    X : Tensor of shape (n_samples, n_features)
        The features (float32).
    targets : dict of str to Tensor
        The targets (float32, NaN where missing).

    Raises
    ------
    ValueError
        On unknown task names, a width other than the task's ``n_outputs``, labels outside
        0/1 (binary) or 0..K-1 (multiclass), a row count other than X's, or NaN or infinite
        features.

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
    """

    def __init__(self, X: Any, targets: Any, tasks: list[TaskSpec]):
        x = _features(X)
        specs = {t.name: t for t in tasks}
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
            arr = specs[name].check_target(y)
            if arr.shape[0] != x.shape[0]:
                raise ValueError(f"targets[{name!r}] has {arr.shape[0]} rows, X has "
                                 f"{x.shape[0]}.")
            finite = arr[~np.isnan(arr)]
            if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
                raise ValueError(f"targets[{name!r}] holds values beyond float32 (largest "
                                 f"{np.abs(finite).max():.3g}), the net's precision: divide "
                                 "them by a power of ten.")
            ys[name] = torch.from_numpy(arr.astype(np.float32))
        self.X = torch.from_numpy(x)
        self.targets = ys

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """The number of features (columns of ``X``)."""
        return self.X.shape[1]

    def __getitem__(self, idx):
        return self.X[idx], {k: v[idx] for k, v in self.targets.items()}

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
        self.X = self.X.to(device)
        self.targets = {k: v.to(device) for k, v in self.targets.items()}
        return self


def as_dataset(data: Any, tasks: list[TaskSpec], what: str = "train") -> Any:
    """A MultiTaskDataset from the tuple ``(X, targets)``; datasets pass through, and so do
    loaders: a DataLoader or any re-iterable sized collection of ``(x, {task: y})`` batches."""
    if isinstance(data, MultiTaskDataset):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        try:
            return MultiTaskDataset(data[0], data[1], tasks)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    if isinstance(data, torch.utils.data.DataLoader):
        return data
    if (hasattr(data, "__iter__") and hasattr(data, "__len__") and len(data)
            and not isinstance(data, (str, np.ndarray, torch.Tensor, Mapping))
            and not hasattr(data, "columns")):
        first = next(iter(data))
        if isinstance(first, (tuple, list)) and len(first) == 2 and isinstance(first[1],
                                                                              Mapping):
            return data
    raise ValueError(f"{what}: expected the tuple (X, targets), a MultiTaskDataset, a "
                     "DataLoader or a sized iterable of (x, {task: y}) batches, or a dict task "
                     f"-> one of them; got {type(data).__name__}.")


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
        n = len(self.dataset)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        order = order.to(self.dataset.X.device)
        g = self.batch_size * self.world_size
        for b in range(len(self)):
            yield self.dataset[order[b * g:(b + 1) * g][self.rank::self.world_size]]


def cycle(loader) -> Iterator:
    """Endless iteration over a loader, a new epoch (and order) each pass."""
    epoch = 0
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from loader
        epoch += 1
