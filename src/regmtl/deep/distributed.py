"""Distributed training under ``torchrun``: process group, device, gradient averaging.

``torchrun --nproc_per_node N script.py`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`setup` then joins the process group (NCCL on CUDA, gloo on the CPU) and gives the rank's
device (``cuda:LOCAL_RANK``: nothing assumes ``cuda:0``). The group stays up for further fits;
``torch.distributed.destroy_process_group()`` ends it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._torch import torch

dist = torch.distributed

__all__ = ["Context", "setup", "resolve_device"]


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: the rank's CUDA device when CUDA is available, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='auto' or "
                         "'cpu'.")
    return dev


@dataclass
class Context:
    """Where this process trains: device, rank, world size."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The average of ``t`` over the ranks (``t`` itself in one process)."""
        if not self.distributed:
            return t
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t / self.world_size

    def average_gradients(self, params) -> None:
        """Average ``.grad`` of ``params`` over the ranks in one flat all-reduce."""
        if not self.distributed:
            return
        ps = [p for p in params if p.grad is not None]
        if not ps:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in ps])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        i = 0
        for p in ps:
            n = p.grad.numel()
            p.grad.copy_(flat[i:i + n].view_as(p.grad))
            i += n


def setup(device: str | torch.device = "auto", distributed: str | bool = "auto") -> Context:
    """The training context: joins the process group under ``torchrun`` (``distributed="auto"``
    and ``WORLD_SIZE > 1``, or True), else a single process on ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want = world > 1 if distributed == "auto" else bool(distributed)
    if not want:
        return Context(resolve_device(device))
    if not dist.is_available():  # pragma: no cover - builds without distributed support
        raise RuntimeError("torch.distributed is not available in this PyTorch build.")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise RuntimeError("distributed=True needs torchrun (or MASTER_ADDR, MASTER_PORT, "
                               "RANK and WORLD_SIZE in the environment).")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Context(dev, dist.get_rank(), dist.get_world_size())
