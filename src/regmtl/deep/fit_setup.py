r"""What a :class:`~regmtl.deep.Trainer` fit sets up before its first step: the training
loaders and the units of the targets.

- :func:`training_loaders`: one loader of every task's targets, or one per task (``train``
  given as a dict by task), each drawing its rank's share of every global batch.
- :func:`scale_targets`: each regression target standardized per task and output (the net
  keeps the map, ``regmtl.deep.scaling``), and each task's loss divided by :math:`c_t`, the
  loss of its best constant prediction on its training labels, so that :math:`L_t = 1` is the
  constant predictor whatever the task's kind and units; one pass over the training labels
  (a second for losses without a closed form), merged over the ranks when each holds a shard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ._torch import torch
from .data import Batches, MultiTaskDataset, as_dataset
from .distributed import Context
from .nets import MultiTaskNet
from .reach import TargetReach, target_reach
from .scaling import (
    TargetScale,
    constant_losses,
    label_batches,
    loss_scales,
    moments_of,
    scales_of,
)
from .tasks import TaskSpec

__all__ = ["TargetUnits", "scale_targets", "training_loaders"]


def training_loaders(train: Any, tasks: list[TaskSpec], check: Callable, batch_size: int,
                     seed: int, ctx: Context) -> dict:
    """``{task or None: loader}``: one loader of all targets (key None), or one per task where
    ``train`` is a dict by task name (a task's ``(X, y)`` pair read as its targets)."""
    kw = dict(seed=seed, rank=ctx.rank, world_size=ctx.world_size)

    def loader(ds: Any) -> Any:
        return Batches(ds, batch_size, shuffle=True, **kw) if isinstance(
            ds, MultiTaskDataset) else ds

    if not isinstance(train, Mapping):
        return {None: loader(as_dataset(train, tasks, check=check))}
    names = [t.name for t in tasks]
    unknown = [k for k in train if k not in names]
    if unknown:
        raise ValueError(f"train: unknown task(s) {unknown}; the net's tasks are {names}.")
    out = {}
    for k, v in train.items():
        if isinstance(v, tuple) and len(v) == 2 and not isinstance(v[1], Mapping):
            v = (v[0], {k: v[1]})
        out[k] = loader(as_dataset(v, tasks, what=f"train[{k!r}]", check=check))
    return out


class TargetUnits(NamedTuple):
    """The units :func:`scale_targets` set: the (T,) loss scales :math:`c_t` (as a tensor and
    by task name) and each task's reach (what its targets ask of the net's outputs)."""

    loss_scale: torch.Tensor
    by_task: dict[str, float]
    reach: dict[str, TargetReach]


def scale_targets(net: MultiTaskNet, tasks: list[TaskSpec], loaders: dict, ctx: Context,
                  standardize: bool, normalize_losses: bool, state: Any = None) -> TargetUnits:
    """Standardize the regression targets ``net`` has no map for yet (``standardize``) and
    measure each task's constant-predictor loss (``normalize_losses``); a resumed fit
    (``state``) takes the loss scales its state measured at its start."""
    names = [t.name for t in tasks]
    fit = []
    if standardize and len(net.target_scales):
        mean, scale = net.stacked_scales()
        identity = ((mean == 0) & (scale == 1)).all(1).tolist()
        fit = [t.name for t, i in zip(tasks, identity, strict=True)
               if i and t.name in net.target_scales]
    units = TargetUnits(torch.ones(len(names)), dict.fromkeys(names, 1.0), {})
    regression = [t for t in tasks if t.kind == "regression"]
    if not fit and not normalize_losses and not regression:
        return units
    sources = {k: v.dataset if isinstance(v, Batches) else v for k, v in loaders.items()}
    sharded = ctx.distributed and any(not isinstance(v, MultiTaskDataset)
                                      for v in sources.values())
    moments = moments_of(sources, tasks)
    if sharded:
        moments.merge_ranks(ctx.gather)
    maps = scales_of(moments, fit)  # all checked, then set
    modules = net.target_scales._modules
    TargetScale.set_many([modules[k] for k in maps], list(maps.values()))
    which = tasks if normalize_losses else [  # c_t of the history's losses
        t for t in regression if t.loss == "mse"]  # (closed forms only where raw)
    c = constant_losses(which, moments, dict(net.target_scales.items()),
                        lambda: label_batches(sources, which), ctx.sum if sharded else None)
    const = {t.name: 1.0 if normalize_losses else c[t.name] for t in which
             if t.kind == "regression"}
    if normalize_losses or state is not None:  # (resumed: those of its start)
        scale = loss_scales(tasks, c) if state is None else \
            state.tensors["loss_scale"].clone()
        units = units._replace(loss_scale=scale,
                               by_task=dict(zip(names, scale.tolist(), strict=True)))
    return units._replace(reach=target_reach(tasks, moments, net.stacked_scales(), const))
