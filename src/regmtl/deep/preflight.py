"""What the trainer does before the first step: run the net on the first rows of every data
set (an input it cannot take is refused before any step, naming the data set), and let the
modules that learn input statistics (``needs_adapt()`` / ``adapt(inputs)``) take them in one
pass over the training inputs. Both leave the net's buffers and training mode as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._torch import torch
from .data import Batches, MultiTaskDataset, rows_ok
from .inputs import chunks, describe, take, to_device

__all__ = ["probe_inputs", "adapt_encoders", "buffers_to_keep"]


def probe_inputs(net: Any, data: Any, what: str, device: Any) -> None:
    """Run ``net`` on the first rows of ``data`` (no gradient, evaluation mode, buffers
    kept): an input the net cannot take is refused before any step, naming it."""
    if isinstance(data, Batches):
        data = data.dataset
    rows = None
    if isinstance(data, MultiTaskDataset):
        first = torch.arange(min(2, len(data)))
        x = take(data.X, first)
        if data.per_row:
            rows = data.task[first.to(data.task.device)]
    else:
        try:
            x, y = next(iter(data))
        except StopIteration:
            raise ValueError(f"{what}: the loader yields no batch.") from None
        if not isinstance(y, Mapping):  # per row: its own tasks' heads, if valid
            rows = y[0] if rows_ok(y[0], len(net.tasks)) else None
    saved = buffers_to_keep(net)
    was = net.training
    net.eval()
    try:
        with torch.no_grad(), net.standardized_outputs():
            if rows is None:
                net(to_device(x, device))
            else:
                net(to_device(x, device), rows=rows.to(device))
    except (ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise ValueError(f"{what}: the net cannot read its inputs ({describe(x)}): "
                         f"{str(exc)[:400]}") from None
    finally:
        net.train(was)
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)


def adapt_encoders(net: Any, loaders: dict, device: Any) -> None:
    """One pass over the training inputs for every module of the net that learns input
    statistics before training (``needs_adapt()`` / ``adapt(inputs)``: the numeric
    columns' means and deviations)."""
    mods = [m for c in (net, *_children(net))
            for m in (c.modules() if c is not net else (c,))
            if hasattr(m, "needs_adapt") and hasattr(m, "adapt") and m.needs_adapt()]
    if not mods:
        return
    sources = [v.dataset if isinstance(v, Batches) else v for v in loaders.values()]

    def inputs():
        for src in sources:
            if isinstance(src, MultiTaskDataset):
                yield from chunks(src.X, 65536)
            else:
                for x, _ in src:
                    yield x

    for m in mods:
        if m.needs_adapt():  # (a fused trunk adapts the encoders it holds)
            m.adapt(inputs())
    net.to(device)


def _children(net: Any) -> list:
    """The net's child modules but its target maps (which neither a forward pass nor the
    training mode changes; with many tasks, walking them costs more than the rest)."""
    maps = net._modules.get("target_scales")
    return [m for m in net._modules.values() if m is not None and m is not maps]


def buffers_to_keep(net: Any) -> list:
    """(buffer, copy) of the net's buffers that a forward pass may change (the target maps
    change only when set: not copied)."""
    bufs = [b for b in net._buffers.values() if b is not None]
    bufs += [b for m in _children(net) for b in m.buffers()]
    return [(b, b.detach().clone()) for b in bufs]
