r"""Distributed training under ``torchrun``: process group, device, the global batch's losses.

``torchrun --nproc_per_node N script.py`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`setup` then joins the process group (NCCL on CUDA, gloo on the CPU) and gives the rank's
device (``cuda:LOCAL_RANK``: nothing assumes ``cuda:0``). The group stays up for further fits;
``torch.distributed.destroy_process_group()`` ends it.

**One process's answer.** Rank r of W holds its share of a global batch: for task t the sum
:math:`s_{r,t}` of its rows' losses over their :math:`n_{r,t}` observed labels (a share may be
smaller than the others', or empty). One process on the global batch minimizes
:math:`L_t = S_t / N_t` with :math:`S_t = \sum_r s_{r,t}`, :math:`N_t = \sum_r n_{r,t}`, not
the mean of the ranks' means. :meth:`~regmtl.deep.distributed.Context.global_mean` gives every
rank the tensor

.. math:: \tilde L_t = S_t / N_t + W \,(s_{r,t} - \mathrm{sg}(s_{r,t})) / N_t

(sg: no gradient; one all-reduce of :math:`s` and :math:`n`): its value is the global
:math:`L_t` on every rank, its gradient W times the rank's share :math:`\nabla s_{r,t} / N_t`.
Any objective :math:`f(\tilde L)` a weighting builds (weights, regularizers, logarithms of the
losses) then has the gradient :math:`W f'(L) \nabla s_r / N` on rank r, and the average over
the ranks (DDP's, or :meth:`~regmtl.deep.distributed.Context.average_gradients`) is
:math:`\sum_r f'(L) \nabla s_r / N = \nabla f(L)`: one process's gradient. A term the ranks
share (a penalty, a regularizer of the loss values) has the same gradient on every rank, which
the average keeps. What a weighting averages with ``reduce``
(:class:`~regmtl.deep.distributed.RankMean`) is the global quantity too: loss values (equal on
every rank), and the (T, d) task-gradient matrix (the sum of the ranks' shares).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._torch import torch

dist = torch.distributed

__all__ = ["Context", "RankMean", "setup", "resolve_device", "rank_device"]


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The device to train on.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"``: the rank's CUDA device (``cuda:LOCAL_RANK`` modulo the number of GPUs)
        when CUDA is available, else the CPU; any device string torch knows (``"cpu"``,
        ``"cuda:1"``, ...); a ``torch.device`` is returned as is.
    local_rank : int, default=0
        The process's rank on its machine.

    Returns
    -------
    torch.device
        The device.

    Raises
    ------
    ValueError
        If the string is not a device, or names CUDA where CUDA is not available.

    Examples
    --------
    >>> from regmtl.deep.distributed import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    """
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


def rank_device(device: torch.device, local_rank: int, n_gpus: int) -> torch.device:
    """The GPU of a rank: ``cuda`` without an index means ``cuda:LOCAL_RANK`` (modulo the
    ``n_gpus`` of the machine), as ``"auto"`` does; a device with an index is kept.

    Every rank of a process group needs a GPU of its own index (NCCL binds the rank to it).

    Parameters
    ----------
    device : torch.device
        The device asked for.
    local_rank : int
        The process's rank on its machine.
    n_gpus : int
        The GPUs of the machine.

    Returns
    -------
    torch.device
        ``cuda:(local_rank mod n_gpus)`` for a bare ``cuda``, else ``device``.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.distributed import rank_device
    >>> rank_device(torch.device("cuda"), 3, 2)
    device(type='cuda', index=1)
    >>> rank_device(torch.device("cuda", 0), 3, 2)
    device(type='cuda', index=0)
    """
    if device.type != "cuda" or device.index is not None:
        return device
    return torch.device("cuda", local_rank % max(n_gpus, 1))


@dataclass
class Context:
    """Where this process trains: device, rank, world size.

    Made by :func:`~regmtl.deep.distributed.setup`; the trainer uses it to average gradients
    and losses over the ranks.

    Parameters
    ----------
    device : torch.device
        The process's device.
    rank : int, default=0
        The process's rank.
    world_size : int, default=1
        Number of processes.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.distributed import Context
    >>> ctx = Context(torch.device("cpu"))
    >>> ctx.distributed, ctx.main
    (False, True)
    >>> ctx.mean(torch.tensor([1.0, 3.0])).tolist()  # one process: the tensor itself
    [1.0, 3.0]
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that logs and saves checkpoints)."""
        return self.rank == 0

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The average of ``t`` over the ranks (``t`` itself in one process).

        Parameters
        ----------
        t : Tensor
            The same shape on every rank.

        Returns
        -------
        Tensor
            The mean (a new tensor when distributed).
        """
        return self.sum(t) / self.world_size if self.distributed else t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The sum of ``t`` over the ranks (``t`` itself in one process), on ``t``'s device
        (reduced on the process's device: NCCL reduces CUDA tensors only).

        Parameters
        ----------
        t : Tensor
            The same shape on every rank.

        Returns
        -------
        Tensor
            The sum (a new tensor when distributed).
        """
        if not self.distributed:
            return t
        out = t.to(self.device, copy=True)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.to(t.device)

    def global_mean(self, total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        r"""Each task's mean loss over the labels of every rank's share of the global batch,
        for this rank's backward pass (see the module's docstring).

        Parameters
        ----------
        total : Tensor of shape (T,)
            Each task's summed loss :math:`s_r` over this rank's observed labels (attached to
            the graph).
        count : Tensor of shape (T,)
            Each task's number of observed labels :math:`n_r` on this rank.

        Returns
        -------
        Tensor of shape (T,)
            :math:`S / N + W (s_r - \mathrm{sg}(s_r)) / N` (N clamped to >= 1), in the dtype
            of ``total``: the global mean as value on every rank, W times this rank's share as
            gradient, so that averaging the ranks' gradients gives one process's; in one
            process ``total / count`` (clamped).

        Examples
        --------
        >>> import torch
        >>> from regmtl.deep.distributed import Context
        >>> ctx = Context(torch.device("cpu"))
        >>> ctx.global_mean(torch.tensor([3.0, 0.0]), torch.tensor([2, 0])).tolist()
        [1.5, 0.0]
        """
        if not self.distributed:
            return total / count.clamp(min=1).to(total.dtype)
        T = total.shape[0]
        both = self.sum(torch.cat([total.detach().double(), count.double()]))
        n = both[T:].clamp(min=1)
        value = (both[:T] / n).to(total.dtype)
        share = total / n.to(total.dtype)
        return value + self.world_size * (share - share.detach())

    def gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        """``t`` of every rank, in rank order (``[t]`` in one process).

        Parameters
        ----------
        t : Tensor
            The same shape on every rank.

        Returns
        -------
        list of Tensor
            One per rank, on the CPU.
        """
        if not self.distributed:
            return [t.cpu()]
        t = t.to(self.device)
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t)
        return [p.cpu() for p in parts]

    def average_gradients(self, params) -> None:
        """Average ``.grad`` of ``params`` over the ranks in one flat all-reduce, in place.

        Parameters
        ----------
        params : iterable of torch.nn.Parameter
            The parameters (those without a gradient are skipped); nothing happens in one
            process.
        """
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


@dataclass(frozen=True)
class RankMean:
    r"""The ``reduce`` a weighting gets under DDP: the mean over the ranks of what each rank
    computed from the losses of :meth:`~regmtl.deep.distributed.Context.global_mean`.

    For a loss value (the same on every rank) it is that value; for a (T, d) matrix of task
    gradients (each rank's W times its share) the global matrix, the sum of the shares. A Gram
    matrix of gradients with respect to the rank's own rows (the shared representation of its
    share of the batch) is quadratic in the factor W:
    :meth:`~regmtl.deep.distributed.RankMean.gram` gives the global one.

    Parameters
    ----------
    ctx : Context
        The ranks.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.distributed import Context, RankMean
    >>> RankMean(Context(torch.device("cpu")))(torch.tensor([2.0])).tolist()  # one process
    [2.0]
    """

    ctx: Context

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over the ranks (see :meth:`~regmtl.deep.distributed.Context.mean`)."""
        return self.ctx.mean(t)

    def gram(self, A: torch.Tensor) -> torch.Tensor:
        r"""The Gram matrix of the global batch from the ranks' :math:`A_r = W^2 G_r G_r^\top`
        (:math:`G_r`: the gradients with respect to rank r's rows of its share of the losses):
        :math:`\sum_r G_r G_r^\top = \sum_r A_r / W^2`, one process's :math:`G G^\top`
        (its rows are those of all ranks).

        Parameters
        ----------
        A : Tensor of shape (T, T)
            This rank's Gram matrix.

        Returns
        -------
        Tensor of shape (T, T)
            The global one.
        """
        return self.ctx.sum(A) / self.ctx.world_size ** 2


def setup(device: str | torch.device = "auto", distributed: str | bool = "auto") -> Context:
    """The training context: joins the process group under ``torchrun``, else one process.

    With ``distributed="auto"`` and ``WORLD_SIZE > 1`` in the environment (set by
    ``torchrun``), or ``distributed=True``, it joins the process group (NCCL on CUDA, gloo on
    the CPU; once: a second call reuses it) on the device of ``LOCAL_RANK``. Otherwise it
    returns a single-process context on ``device``, with no environment variable needed.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        See :func:`~regmtl.deep.distributed.resolve_device`.
    distributed : "auto" or bool, default="auto"
        Whether to join a process group.

    Returns
    -------
    Context
        The device, rank and world size.

    Raises
    ------
    RuntimeError
        If a process group is asked for without torchrun (no ``MASTER_ADDR``).
    ValueError
        If ``device`` is invalid.

    Examples
    --------
    In a plain Python process (no ``torchrun``):

    >>> from regmtl.deep.distributed import setup
    >>> ctx = setup(device="cpu")
    >>> ctx.device, ctx.rank, ctx.world_size, ctx.distributed
    (device(type='cpu'), 0, 1, False)

    Under ``torchrun --nproc_per_node 2 train.py`` the same call gives ranks 0 and 1 of a world
    of size 2; :class:`~regmtl.deep.Trainer` calls it in :meth:`~regmtl.deep.Trainer.fit`.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want = world > 1 if distributed == "auto" else bool(distributed)
    if not want:
        return Context(resolve_device(device))
    if not dist.is_available():  # pragma: no cover - builds without distributed support
        raise RuntimeError("torch.distributed is not available in this PyTorch build.")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if dev.type == "cuda":
        dev = rank_device(dev, local, torch.cuda.device_count())
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise RuntimeError("distributed=True needs torchrun (or MASTER_ADDR, MASTER_PORT, "
                               "RANK and WORLD_SIZE in the environment).")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Context(dev, dist.get_rank(), dist.get_world_size())
