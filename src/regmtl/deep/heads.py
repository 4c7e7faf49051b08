r"""Per-task heads and gates held as batched parameters: a forward and backward pass cost the
same for 10 or 10,000 tasks.

Task t's head is the MLP

.. math::

    h_t(z) = W^{(L)}_t \phi\big(\cdots \phi(W^{(1)}_t z + b^{(1)}_t) \cdots\big) + b^{(L)}_t,

and the tasks of one output width form a *block* whose layer l is one parameter of shape
(T_b, in, out) (a task added later, by transfer, gets a block of its own). Three ways to run
them, none with a Python loop over tasks:

- every task on every row (:meth:`TaskHeads.forward`): one batched product per layer,
  ``einsum("bi,tio->bto")``;
- each row through its own task's head (:meth:`TaskHeads.rows`): the row's weights are
  gathered, ``einsum("bi,bio->bo", z, W[t])``, so the cost is that of one head;
- a subset of tasks (:meth:`TaskHeads.select`).

With ``sparse_grad`` set (``Trainer(lazy_heads=True)`` sets it for a fit), the per-row
gather returns a row-sparse gradient: only the rows of the tasks in the batch, so that a
lazy optimizer (:class:`~regmtl.deep.optim.LazyAdam`) touches those alone and a step
costs the same for 100 or 10,000 tasks.

The gates of a mixture of experts are the same idea with one linear layer:
:class:`TaskGates` holds every task's gate :math:`\mathrm{softmax}(G_t x + c_t)` as one
``Linear(in, T K)``, so a feature's column of its weight reads that feature for every gate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._options import check_option
from ._torch import quiet_sparse, torch

nn = torch.nn

__all__ = ["TaskHeads", "TaskGates", "gather_rows"]


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU,
               "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def activation_module(name: str) -> nn.Module:
    """The nonlinearity ``name`` (a key of ``ACTIVATIONS``) as a module."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.")
    return ACTIVATIONS[name]()


class _Index(nn.Module):
    """Task name -> (block, position in block), with the lookup tables as buffers."""

    def _index(self, names: list[str], block_of: list[int], local: list[int]) -> None:
        self.names = list(names)
        self._pos = {n: i for i, n in enumerate(self.names)}
        self._plans: dict = {}
        self.register_buffer("block_of", torch.tensor(block_of, dtype=torch.int64),
                             persistent=False)
        self.register_buffer("local", torch.tensor(local, dtype=torch.int64),
                             persistent=False)

    def position(self, name: str) -> int:
        return self._pos[name]

    def positions(self, names: Sequence[str]) -> torch.Tensor:
        """The positions of ``names`` in this module's task list (int64)."""
        return torch.tensor([self._pos[n] for n in names], dtype=torch.int64)


class _RowGather(torch.autograd.Function):
    """``w[idx]`` of each ``w`` (parameters of T rows), whose gradients are sparse COO tensors
    over the rows ``idx`` (repeated rows not yet summed: the optimizer coalesces), instead of
    dense tensors the size of ``w``."""

    @staticmethod
    def forward(ctx, idx: torch.Tensor, *ws: torch.Tensor):  # noqa: D102
        ctx.save_for_backward(idx)
        ctx.shapes = [w.shape for w in ws]
        return tuple(w[idx] for w in ws)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: torch.Tensor):  # noqa: D102
        (idx,) = ctx.saved_tensors
        at = idx[None]
        with quiet_sparse():
            return None, *(None if g is None else torch.sparse_coo_tensor(
                at, g, shape, check_invariants=False, is_coalesced=False)
                for g, shape in zip(grads, ctx.shapes, strict=True))


def gather_rows(idx: torch.Tensor, *ws: torch.Tensor, sparse: bool = False) -> tuple:
    """``w[idx]`` of each ``w`` along the first dimension; with ``sparse`` (and autograd on),
    the gradient reaching each ``w`` is row-sparse: a COO tensor over the rows ``idx``."""
    if sparse and torch.is_grad_enabled():
        return _RowGather.apply(idx, *ws)
    return tuple(w[idx] for w in ws)


class _HeadBlock(nn.Module):
    """The heads of T_b tasks of one output width: layer l is ``weight{l}`` (T_b, in, out) and
    ``bias{l}`` (T_b, out)."""

    def __init__(self, n_tasks: int, in_features: int, hidden: Sequence[int], n_outputs: int):
        super().__init__()
        widths = [int(in_features), *[int(h) for h in hidden], int(n_outputs)]
        self.n_layers = len(widths) - 1
        #: the parameters' names, layer by layer (read from ``_parameters`` on every batch)
        self.layer_names = [(f"weight{i}", f"bias{i}") for i in range(self.n_layers)]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            self.register_parameter(f"weight{i}", nn.Parameter(torch.empty(n_tasks, a, b)))
            self.register_parameter(f"bias{i}", nn.Parameter(torch.empty(n_tasks, b)))
        self.n_outputs = int(n_outputs)
        self.reset_parameters()

    @property
    def weights(self) -> list[nn.Parameter]:
        return [getattr(self, w) for w, _ in self.layer_names]

    @property
    def biases(self) -> list[nn.Parameter]:
        return [getattr(self, b) for _, b in self.layer_names]

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialization, head by head: U(-1/sqrt(in), 1/sqrt(in))."""
        for w, b in zip(self.weights, self.biases, strict=True):
            bound = 1.0 / math.sqrt(w.shape[1])
            with torch.no_grad():
                w.uniform_(-bound, bound)
                b.uniform_(-bound, bound)


class TaskHeads(_Index):
    """Every task's head (an MLP of widths ``hidden``, then ``n_outputs``) as batched weights.

    Parameters
    ----------
    in_features : int
        Width of what the heads read.
    tasks : list of (str, int)
        Each task's name and output width, in order.
    hidden : sequence of int, default=()
        Hidden widths of every head.
    activation : str, default="relu"
        Nonlinearity after every hidden layer.
    dropout : float, default=0.0
        Dropout after every hidden layer.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.heads import TaskHeads
    >>> heads = TaskHeads(4, [("a", 1), ("b", 1), ("c", 3)])
    >>> z = torch.randn(5, 4)
    >>> out = heads(z)
    >>> {k: tuple(v.shape) for k, v in out.items()}
    {'a': (5, 1), 'b': (5, 1), 'c': (5, 3)}
    >>> rows = heads.rows(z, torch.tensor([0, 1, 2, 0, 1]))  # each row its own task's head
    >>> tuple(rows.shape), torch.allclose(rows[1, :1], out["b"][1])
    ((5, 3), True)
    """

    def __init__(self, in_features: int, tasks: Sequence[tuple[str, int]],
                 hidden: Sequence[int] = (), *, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        self.in_features = int(in_features)
        self.hidden = tuple(check_option(f"hidden[{i}]", h, "int", low=1)
                            for i, h in enumerate(hidden))
        self.act = activation_module(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList()
        widths = sorted({int(k) for _, k in tasks}, key=[int(k) for _, k in tasks].index)
        block_of, local = [], []
        for k in widths:
            members = [n for n, w in tasks if int(w) == k]
            self.blocks.append(_HeadBlock(len(members), self.in_features, self.hidden, k))
        for _name, k in tasks:
            b = widths.index(int(k))
            block_of.append(b)
            local.append(sum(1 for j in block_of[:-1] if j == b))
        self._index([n for n, _ in tasks], block_of, local)
        self.n_outputs = [int(k) for _, k in tasks]
        self.max_outputs = max(self.n_outputs)
        #: whether the per-row gather gives row-sparse gradients (see the module's docstring)
        self.sparse_grad = False

    def _mlp(self, block: _HeadBlock, z: torch.Tensor, idx: torch.Tensor | None,
             per_row: bool) -> torch.Tensor:
        """Block ``block`` on ``z``: per row (z (B, in), idx (B,) local tasks) -> (B, out);
        else z (B, in) or (B, T_b', in) through the tasks ``idx`` (all: None) -> (B, T_b', out)."""
        params, names = block._parameters, block.layer_names
        last = len(names) - 1
        for i, (wn, bn) in enumerate(names):
            w, b = params[wn], params[bn]
            if per_row:
                if self.sparse_grad:
                    w, b = gather_rows(idx, w, b, sparse=True)
                    z = torch.einsum("bi,bio->bo", z, w) + b
                else:
                    z = torch.einsum("bi,bio->bo", z, w[idx]) + b[idx]
            else:
                w_, b_ = (w, b) if idx is None else (w[idx], b[idx])
                eq = "bi,tio->bto" if z.ndim == 2 else "bti,tio->bto"
                z = torch.einsum(eq, z, w_) + b_
            if i < last:
                z = self.drop(self.act(z))
        return z

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every task's head on every row.

        Parameters
        ----------
        z : Tensor of shape (B, in_features) or (B, T, in_features)
            What the heads read: the same for every task, or one input per task (in the
            order of the tasks).

        Returns
        -------
        dict of str to Tensor
            Each task's output, (B, n_outputs).
        """
        return self.select(z, self.names)

    def select(self, z: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The heads of ``names`` on every row (``z`` (B, in) or (B, len(names), in))."""
        out: dict[str, torch.Tensor] = {}
        for b, which, cols, idx in self._plan(names, z.device):
            zb = z if z.ndim == 2 or cols is None else z[:, cols]
            res = self._mlp(self.blocks[b], zb, idx, per_row=False)
            for j, w in enumerate(which):
                out[names[w]] = res[:, j]
        return {n: out[n] for n in names}

    def _plan(self, names: Sequence[str], device: torch.device) -> list:
        """How :meth:`select` runs ``names``: per block, the positions in ``names`` of its
        tasks, the same as a tensor on ``device`` (for a (B, T, in) input; None when they
        are all of them, in order), and their positions in the block (None for the whole
        block in order). Made once per selection
        and device, from the index lists (no tensor work, no device synchronization)."""
        key = (tuple(names), device)
        plans = self._plans
        plan = plans.get(key)
        if plan is not None:
            return plan
        pos = [self._pos[n] for n in names]
        block_of, local = self.block_of.tolist(), self.local.tolist()
        plan = []
        for b in sorted({block_of[p] for p in pos}):
            which = [j for j, p in enumerate(pos) if block_of[p] == b]
            idx = [local[pos[j]] for j in which]
            full = idx == list(range(self.blocks[b].weights[0].shape[0]))
            every = which == list(range(len(pos)))  # a (B, T, in) input is read whole
            plan.append((b, which,
                         None if every else torch.tensor(which, dtype=torch.int64,
                                                         device=device),
                         None if full else torch.tensor(idx, dtype=torch.int64,
                                                        device=device)))
        if len(plans) >= 64:  # many different selections: keep the latest
            plans.clear()
        plans[key] = plan
        return plan

    def rows(self, z: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Each row through its own task's head.

        Parameters
        ----------
        z : Tensor of shape (B, in_features)
            What the heads read.
        task : Tensor of shape (B,)
            Each row's task (positions in the task list).

        Returns
        -------
        Tensor of shape (B, max_outputs)
            Row i's output in its first ``n_outputs`` of its task (the rest 0).
        """
        blocks = self.blocks._modules
        if len(blocks) == 1:  # one block: a task's position in it is its position
            block = blocks["0"]
            if block.n_layers == 1:  # linear heads (the common case), without the loop
                p = block._parameters
                if self.sparse_grad:
                    w, b = gather_rows(task, p["weight0"], p["bias0"], sparse=True)
                    return torch.einsum("bi,bio->bo", z, w) + b
                return torch.einsum("bi,bio->bo", z, p["weight0"][task]) + p["bias0"][task]
            return self._mlp(block, z, task, per_row=True)
        block = self.block_of[task]
        local = self.local[task]
        out = z.new_zeros(z.shape[0], self.max_outputs)
        for b, blk in enumerate(self.blocks):
            rows = torch.nonzero(block == b)[:, 0]
            if len(rows) == 0:
                continue
            res = self._mlp(blk, z[rows], local[rows], per_row=True)
            res = nn.functional.pad(res, (0, self.max_outputs - res.shape[1]))
            out = out.index_copy(0, rows, res.to(out.dtype))
        return out

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        """The parameters that hold task ``name``'s head (its block's: shared storage with
        the other tasks of the block, but its gradient comes from its own rows only)."""
        return list(self.blocks[int(self.block_of[self._pos[name]])].parameters())

    def start_shared(self) -> None:
        """Start every task's head from the same weights (each block's first head's): the
        heads then differ only by what each task's rows teach them, instead of by their
        random draws (on School, 139 independently drawn heads cost 0.02 of explained
        variance that training never recovered)."""
        with torch.no_grad():
            for block in self.blocks:
                for p in block.parameters():
                    p.copy_(p[:1].expand_as(p))

    def set_output_bias(self, name: str, value: float) -> None:
        """Set the bias of task ``name``'s output layer to ``value`` (every output): a count
        task's head then starts at the log of its mean count, as a standardized regression
        starts at its mean."""
        i = self._pos[name]
        block, local = self.blocks[int(self.block_of[i])], int(self.local[i])
        with torch.no_grad():
            block.biases[-1][local] = float(value)

    def task_weights(self, name: str) -> list[torch.Tensor]:
        """Task ``name``'s own weights, layer by layer: weight (in, out), bias (out,); detached
        copies of its slices of its block's parameters (the caller's own: changing them
        leaves the net alone)."""
        i = self._pos[name]
        block, local = self.blocks[int(self.block_of[i])], int(self.local[i])
        return [p.detach()[local].clone() for p in block.parameters()]

    def add_task(self, name: str, n_outputs: int) -> list[nn.Parameter]:
        """Append a freshly initialized head in a block of its own; its parameters."""
        blk = _HeadBlock(1, self.in_features, self.hidden, n_outputs)
        blk.to(self.block_of.device)
        self.blocks.append(blk)
        self._index([*self.names, name],
                    [*self.block_of.tolist(), len(self.blocks) - 1], [*self.local.tolist(), 0])
        self.block_of = self.block_of.to(blk.weights[0].device)
        self.local = self.local.to(blk.weights[0].device)
        self.n_outputs.append(int(n_outputs))
        self.max_outputs = max(self.n_outputs)
        return list(blk.parameters())


class TaskGates(_Index):
    r"""Every task's softmax gate over K experts, :math:`\pi_t(x) = \mathrm{softmax}(G_t x +
    c_t)`, as ``Linear(in, T K)`` blocks (``blocks[0].weight`` row ``t K + k`` is
    :math:`G_{t,k}`); without ``bias`` :math:`c_t = 0` (no bias parameter).

    Parameters
    ----------
    in_features : int
        Width of the gate's input.
    names : list of str
        The tasks.
    n_experts : int
        K, the experts each gate weighs.
    bias : bool, default=True
        Whether the gates have a bias :math:`c_t`.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.heads import TaskGates
    >>> gates = TaskGates(3, ["a", "b"], 4)
    >>> pi = gates(torch.randn(5, 3))
    >>> tuple(pi.shape), torch.allclose(pi.sum(-1), torch.ones(5, 2))
    ((5, 2, 4), True)
    """

    def __init__(self, in_features: int, names: Sequence[str], n_experts: int,
                 bias: bool = True):
        super().__init__()
        self.in_features, self.n_experts = int(in_features), int(n_experts)
        self.blocks = nn.ModuleList([nn.Linear(self.in_features,
                                               len(names) * self.n_experts, bias=bool(bias))])
        self._index(list(names), [0] * len(names), list(range(len(names))))
        #: whether :meth:`rows` gives row-sparse gradients (see the module's docstring)
        self.sparse_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every task's gate on every row: (B, T, K), rows of each (B, ·, K) sum to 1."""
        parts = [blk(x).reshape(x.shape[0], -1, self.n_experts) for blk in self.blocks]
        return torch.softmax(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1), dim=-1)

    def rows(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Each row's own task's gate: (B, K)."""
        K = self.n_experts
        logits = x.new_zeros(x.shape[0], K)
        block, local = self.block_of[task], self.local[task]
        for b, blk in enumerate(self.blocks):
            rows = torch.arange(x.shape[0], device=x.device) if len(self.blocks) == 1 \
                else torch.nonzero(block == b)[:, 0]
            if len(rows) == 0:
                continue
            biased = blk.bias is not None
            if self.sparse_grad:  # the K rows of each row's gate, gathered from the weight
                at = (local[rows, None] * K + torch.arange(K, device=x.device)).reshape(-1)
                got = gather_rows(at, blk.weight, *((blk.bias,) if biased else ()),
                                  sparse=True)
                w = got[0].reshape(-1, K, self.in_features)
                c = got[1].reshape(-1, K) if biased else None
            else:
                w = blk.weight.reshape(-1, K, self.in_features)[local[rows]]  # (B, K, in)
                c = blk.bias.reshape(-1, K)[local[rows]] if biased else None
            val = torch.einsum("bi,bki->bk", x[rows], w)
            if c is not None:
                val = val + c
            logits = val if len(self.blocks) == 1 else logits.index_copy(0, rows, val)
        return torch.softmax(logits, dim=-1)

    def linears(self) -> list[nn.Linear]:
        """The linear layers (they read the gate's input)."""
        return list(self.blocks)

    def add_task(self, name: str) -> list[nn.Parameter]:
        """A freshly initialized gate for a new task, in a block of its own; its
        parameters."""
        blk = nn.Linear(self.in_features, self.n_experts,
                        bias=self.blocks[0].bias is not None).to(self.block_of.device)
        self.blocks.append(blk)
        self._index([*self.names, name], [*self.block_of.tolist(), len(self.blocks) - 1],
                    [*self.local.tolist(), 0])
        self.block_of = self.block_of.to(blk.weight.device)
        self.local = self.local.to(blk.weight.device)
        return list(blk.parameters())
