r"""The task losses of a training batch, by the route its data take.

Every route gives the (T,) vector of the task losses :math:`L_t / c_t` (each divided by its
constant predictor's loss :math:`c_t`, ``Trainer.loss_scale_``) on standardized outputs and
targets:

- a batch ``(x, {task: y})`` of a table of targets (:meth:`TaskLosses.batch`): every head on
  every row, each task's loss over its observed labels;
- a batch ``(x, (task, y))`` of per-row data (:meth:`TaskLosses.rows`): each row through its
  own task's head, :math:`L_t = \sum_{i: t_i = t} \ell_i / n_t` by segment sums over the
  families of tasks that share a loss;
- one batch per task (:meth:`TaskLosses.per_task`).

A :class:`~regmtl.deep.MultiTaskDataset` is prepared once for training (targets checked and
standardized once, and whether a label is missing anywhere, so that the losses skip their
masks): :meth:`TaskLosses.of_indices` then gives the losses of the rows of a batch of indices,
the route the trainer's step takes on a data set.

Under DDP (``ctx`` of several ranks) every route reduces each task's summed loss and count of
observed labels over the ranks (:meth:`~regmtl.deep.distributed.Context.global_mean`): the
losses are those of the global batch, one process's, however unevenly its rows and labels
fall on the ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._torch import torch
from .data import MultiTaskDataset, check_rows
from .inputs import device_of, n_rows, take, to_device

__all__ = ["TaskLosses", "loss_families"]


def loss_families(tasks: list, device: Any) -> list[tuple[Any, torch.Tensor, Callable]]:
    """The families of tasks that share a loss (kind, loss, outputs): ``(spec, mask of the
    members (T,) on device, the family's loss of complete rows)``; a per-row batch is reduced
    family by family, never task by task."""
    fams: dict = {}
    for i, t in enumerate(tasks):
        key = (t.kind, t.loss if isinstance(t.loss, (str, tuple)) else id(t.loss),
               t.n_outputs)
        fams.setdefault(key, (t, []))[1].append(i)
    out = []
    for spec, members in fams.values():
        mask = torch.zeros(len(tasks), dtype=torch.bool)
        mask[members] = True
        out.append((spec, mask.to(device), spec.complete_row_loss()))
    return out


class TaskLosses:
    """The task losses of the batches of one fit (see the module's docstring).

    Parameters
    ----------
    net : MultiTaskNet
        The net (its target maps and standardized outputs).
    tasks : list of TaskSpec
        The tasks, in the order of the losses.
    loss_scale : Tensor of shape (T,)
        Each task's :math:`c_t`.
    device : torch.device
        Where the step runs.
    ctx : Context, optional
        The ranks of a distributed fit: each task's loss is then the global batch's (see the
        module's docstring).
    """

    def __init__(self, net: Any, tasks: list, loss_scale: torch.Tensor, device: Any,
                 ctx: Any = None):
        self.net, self.tasks, self.device = net, tasks, device
        self.ranks = ctx if ctx is not None and ctx.distributed else None
        self.names = {t.name for t in tasks}
        self.loss_scale = loss_scale.to(device)
        self.inv_scale = 1.0 / self.loss_scale
        self.row_mean, self.row_scale = net.stacked_scales(device)
        self.families = loss_families(self.tasks, device)

    def of_indices(self, data: Any) -> Callable[[Any, torch.Tensor], torch.Tensor]:
        """``losses(model, idx)``: the task losses of the rows ``data[idx]`` of a data set
        prepared by :meth:`ready_rows` or :meth:`ready_targets` (the one-family per-row data
        set without a missing label in one function whose choices are made once)."""
        fast = self._fast_rows(data) if data.per_row else None
        if fast is not None:
            return fast
        return lambda model, idx: self.batch(model, data[idx])

    def batch(self, model: Any, batch: tuple) -> torch.Tensor:
        """The task losses of one batch ``(x, {task: y})`` or ``(x, (task, y))``."""
        x, ys = batch
        if isinstance(ys, tuple) or not isinstance(ys, Mapping):
            return self.rows(model, x, ys)
        ready = isinstance(ys, _ReadyTargets)  # checked and standardized with the data set
        if not ready:
            unknown = ys.keys() - self.names
            if unknown:
                raise ValueError(f"a batch has targets of unknown task(s) {sorted(unknown)}; "
                                 f"the net's tasks are {sorted(self.names)}.")
        x = to_device(x, self.device, non_blocking=True)
        with self.net.standardized_outputs():
            out = model(x)
        terms = []
        for t in self.tasks:
            y = ys.get(t.name)
            if y is None:  # a data set without this task's target: no signal, zero gradient
                terms.append(None)
                continue
            y = y.to(self.device, non_blocking=True)
            if not ready:
                y = self.net.standardize_target(t.name, y)
            terms.append(self._term(t, out[t.name], y, ready and t.name in ys.complete))
        return self._stacked(terms, [out[t.name] for t in self.tasks])

    def _term(self, spec: Any, out: torch.Tensor, y: torch.Tensor, complete: bool) -> Any:
        """One task's mean loss on standardized targets (one process), or its summed loss and
        count of observed labels (``(sum, count)``, reduced over the ranks by
        :meth:`_stacked`)."""
        if self.ranks is None:
            return spec.task_loss(out, y, complete=complete)
        per, count = spec.row_losses(out, y, complete=complete and y.numel() > 0)
        n = count * len(per) if isinstance(count, int) else count.sum()
        return per.sum(), torch.as_tensor(n, dtype=torch.float64, device=per.device)

    def _stacked(self, terms: list, outs: list) -> torch.Tensor:
        """The (T,) losses divided by the :math:`c_t` from the terms of :meth:`_term` (None: a
        task without a batch or a target, 0 with a zero gradient through ``outs``)."""
        if self.ranks is None:
            losses = [out.sum() * 0.0 if v is None else v
                      for v, out in zip(terms, outs, strict=True)]
            stacked = torch.stack(losses)
            return stacked / self.loss_scale.to(stacked.dtype)
        sums = [out.sum() * 0.0 if v is None else v[0] for v, out in zip(terms, outs, strict=True)]
        counts = [torch.zeros((), dtype=torch.float64, device=sums[0].device) if v is None
                  else v[1] for v in terms]  # (float64: exact counts under mixed precision)
        total = torch.stack(sums)
        losses = self.ranks.global_mean(total, torch.stack(counts))
        return losses * self.inv_scale.to(total.dtype)

    def per_task(self, model: Any, batches: dict) -> torch.Tensor:
        """The task losses of one batch per task ``{task: (x, {task: y})}`` (each task's
        head alone on its own batch; 0 for a task without one)."""
        terms, outs = [], []
        for t in self.tasks:
            if t.name not in batches:
                terms.append(None)
                outs.append(None)
                continue
            x, ys = batches[t.name]
            with self.net.standardized_outputs():
                out = model(to_device(x, self.device), tasks=[t.name])[t.name]
            y = self.net.standardize_target(t.name, ys[t.name].to(self.device))
            terms.append(self._term(t, out, y, False))
            outs.append(out)
        ref = next(o for o in outs if o is not None)
        return self._stacked(terms, [ref if o is None else o for o in outs])

    def ready_rows(self, ds: MultiTaskDataset) -> _ReadyRows:
        """``ds`` for training: each row's target in its head's units (float32, once for the
        data set instead of on every batch), and whether a label is missing anywhere (else the
        losses skip their masks). Its task positions were checked when it was made."""
        task, y = ds.task, ds.y
        mean, scale = self.row_mean.to(task.device), self.row_scale.to(task.device)
        W = y.shape[1]
        ys = ((y.double() - mean[task, :W]) / scale[task, :W]).float()
        widths = torch.tensor([t.target_width for t in self.tasks], device=task.device)
        used = torch.arange(W, device=task.device)[None, :] < widths[task][:, None]
        complete = not bool((torch.isnan(ys) & used).any())
        return _ReadyRows(ds.X, task, ys[:, 0] if W == 1 else ys, complete)

    def ready_targets(self, ds: MultiTaskDataset) -> _ReadyColumns:
        """``ds`` for training: each task's target in its head's units (float32, once for
        the data set), and the tasks without a missing label (their losses skip the masks).
        The target names were checked when it was made."""
        targets, complete = {}, set()
        for name, y in ds.targets.items():
            targets[name] = self.net.standardize_target(name, y).float()
            if not bool(torch.isnan(targets[name]).any()):
                complete.add(name)
        return _ReadyColumns(ds.X, targets, complete)

    def _fast_rows(self, data: _ReadyRows) -> Callable | None:
        """The task losses of the batch ``data[idx]`` as :meth:`rows` computes them, in
        one function ``losses(model, idx)`` whose choices are made once (one loss family, no
        label missing): the trainer's per-step path on a per-row data set. None where they
        do not hold."""
        if not data.complete or len(self.families) != 1:
            return None
        spec, _, loss = self.families[0]
        width = spec.target_width
        flags, T, inv, dev = self.net.__dict__, len(self.tasks), self.inv_scale, self.device
        ranks = self.ranks
        local = device_of(data.X) == dev and data.task.device == dev
        X, tasks, ys, dense = data.X, data.task, data.y, isinstance(data.X, torch.Tensor)

        def losses(model, idx: torch.Tensor) -> torch.Tensor:
            x = X[idx] if dense else take(X, idx)
            task, y = tasks[idx], ys[idx]
            if not local:
                x = to_device(x, dev, non_blocking=True)
                task, y = task.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            before, flags["_standardized"] = flags["_standardized"], True
            try:
                out = model(x, rows=task)
            finally:
                flags["_standardized"] = before
            per = loss(out if out.dtype == torch.float32 else out.float(), y)
            if per.dtype != torch.float32:
                per = per.float()
            count = torch.bincount(task, minlength=T)
            if width != 1:
                count = count * width
            total = per.new_zeros(T).index_add_(0, task, per)
            if ranks is not None:
                return ranks.global_mean(total, count) * inv
            return total * (inv / count.clamp(min=1))

        return losses

    def rows(self, model: Any, x: Any, ys: tuple) -> torch.Tensor:
        r"""Per-row batch: each row through its own task's head, each task's mean loss over
        its rows by segment sums, :math:`L_t = \sum_{i: t_i = t} \ell_i / n_t` (0, with a
        zero gradient, for a task without rows in the batch)."""
        task, y = ys
        ready = isinstance(ys, _Ready)
        if not ready:  # a loader's batch: checked where it is, before the transfer
            check_rows(task, len(self.tasks))
        dev = self.device
        task, y = task.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if not ready:
            y = y[:, None] if y.ndim == 1 else y
            W = y.shape[1]
            y = ((y.double() - self.row_mean[task, :W]) / self.row_scale[task, :W]).float()
        with self.net.standardized_outputs():
            out = model(to_device(x, dev, non_blocking=True), rows=task)
        if out.dtype != torch.float32:
            out = out.float()
        T = len(self.tasks)
        complete = ready and ys.complete
        total = count = None
        families = self.families
        for spec, mask, complete_loss in families:
            if len(families) == 1:
                rows_t, f, yy = task, out, y
            else:
                rows = torch.nonzero(mask[task])[:, 0]
                rows_t, f, yy = task[rows], out[rows], y[rows]
            loss, n = ((complete_loss(f, yy), spec.target_width) if complete
                       else spec.row_losses(f, yy))
            if loss.dtype != torch.float32:
                loss = loss.float()
            if complete:  # every row counts n labels
                n_t = torch.bincount(rows_t, minlength=T)
                n_t = n_t if n == 1 else n_t * n
            else:
                n_t = loss.new_zeros(T).index_add_(0, rows_t, n.to(loss.dtype))
            if total is None:
                total, count = loss.new_zeros(T).index_add_(0, rows_t, loss), n_t
            else:
                total, count = total.index_add(0, rows_t, loss), count + n_t
        if self.ranks is not None:
            return self.ranks.global_mean(total, count) * self.inv_scale
        return total * (self.inv_scale / count.clamp(min=1))


class _Ready(tuple):
    """``(task, y)`` of a batch of :class:`_ReadyRows`: positions checked, targets in the
    heads' units (float32); ``complete``: no label missing."""

    complete = False


class _ReadyComplete(_Ready):
    complete = True


class _ReadyTargets(dict):
    """``{task: y}`` of a batch of :class:`_ReadyColumns`: names checked, targets in the heads'
    units (float32); ``complete``: the tasks without a missing label."""

    complete: frozenset = frozenset()


class _ReadyColumns:
    """A per-task data set prepared for training (see :meth:`TaskLosses.ready_targets`): what
    :class:`~regmtl.deep.Batches` indexes."""

    per_row = False

    def __init__(self, X: Any, targets: dict, complete: set):
        self.X, self.targets, self.complete = X, targets, frozenset(complete)
        self._dense = isinstance(X, torch.Tensor)

    def __len__(self) -> int:
        return n_rows(self.X)

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        x = self.X[idx] if self._dense else take(self.X, idx)
        ys = _ReadyTargets({k: v[idx] for k, v in self.targets.items()})
        ys.complete = self.complete
        return x, ys


class _ReadyRows:
    """A per-row data set prepared for training (see :meth:`TaskLosses.ready_rows`): what
    :class:`~regmtl.deep.Batches` indexes."""

    def __init__(self, X: Any, task: torch.Tensor, y: torch.Tensor, complete: bool):
        self.X, self.task, self.y, self.complete = X, task, y, complete
        self.per_row = True
        self._pair = _ReadyComplete if complete else _Ready
        self._dense = isinstance(X, torch.Tensor)

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        x = self.X[idx] if self._dense else take(self.X, idx)
        return x, self._pair((self.task[idx], self.y[idx]))
