r"""Multi-task networks: a shared part, one head (tower) per task.

Every net maps a batch ``x`` (B x p) to ``{task: output}`` (B x ``n_outputs``: values or logits,
see :class:`~regmtl.deep.TaskSpec`) and says which of its parameters are shared by all tasks
(:meth:`MultiTaskNet.shared_parameters`) and which read the raw input
(:meth:`MultiTaskNet.input_layers`, the layers a group L2,1 penalty selects features on).

====================  ===================================================  ===============
net                   output of task t                                     reference
====================  ===================================================  ===============
:class:`HardSharing`  h_t(g(x)), g a shared trunk (MLP or any module)      Caruana 1997
:class:`MMoE`         h_t(Σ_k softmax(G_t x)_k e_k(x)), experts e_k        Ma et al. 2018
                      shared by all tasks
:class:`CGC`          the same over task t's own experts and the shared    Tang et al. 2020
                      ones
:class:`PLE`          CGC levels stacked; a shared gate feeds the shared   Tang et al. 2020
                      experts of the next level
====================  ===================================================  ===============
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._torch import torch
from .tasks import TaskSpec, as_task_specs

nn = torch.nn

__all__ = ["MultiTaskNet", "HardSharing", "MMoE", "CGC", "PLE", "mlp", "NETS"]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU,
               "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}


def mlp(in_features: int, hidden: Sequence[int], *, activation: str = "relu",
        dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """Linear -> [BatchNorm1d] -> activation -> [Dropout] for each width in ``hidden``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        if int(h) < 1:
            raise ValueError(f"hidden layer widths must be >= 1, got {tuple(hidden)}.")
        layers.append(nn.Linear(width, int(h)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(int(h)))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return nn.Sequential(*layers)


def _out_width(hidden: Sequence[int], default: int) -> int:
    return int(hidden[-1]) if len(hidden) else default


def _first_linear(module: nn.Module) -> nn.Linear | None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m
    return None


class MultiTaskNet(nn.Module):
    """Base of the nets: task specs, the head per task, parameter groups, config."""

    def __init__(self, n_features: int, tasks: Any):
        super().__init__()
        if int(n_features) < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features!r}.")
        self.n_features = int(n_features)
        self.tasks = as_task_specs(tasks)
        self.task_names = [t.name for t in self.tasks]

    def _head(self, in_features: int, spec: TaskSpec, hidden: Sequence[int], **kw) -> nn.Module:
        body = mlp(in_features, hidden, **kw)
        return nn.Sequential(*body, nn.Linear(_out_width(hidden, in_features), spec.n_outputs))

    def _selected(self, tasks: Iterable[str] | None) -> list[str]:
        if tasks is None:
            return self.task_names
        tasks = list(tasks)
        unknown = [t for t in tasks if t not in self.task_names]
        if unknown:
            raise ValueError(f"tasks: unknown task(s) {unknown}; the net has {self.task_names}.")
        return tasks

    # ------------------------------------------------------------------ parameter groups
    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's output depends on."""
        return [p for m in self._shared_modules() for p in m.parameters()]

    def task_parameters(self, task: str | None = None) -> list[nn.Parameter]:
        """Parameters of one task (or of all tasks): its head, gates, own experts."""
        shared = {id(p) for p in self.shared_parameters()}
        if task is None:
            return [p for p in self.parameters() if id(p) not in shared]
        return [p for m in self._task_modules(self._selected([task])[0]) for p in m.parameters()]

    def input_layers(self) -> list[nn.Linear]:
        """The linear layers that read the raw input ``x`` (weights: out x n_features)."""
        raise NotImplementedError

    def _shared_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def _task_modules(self, task: str) -> list[nn.Module]:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """JSON-able constructor arguments (:func:`regmtl.deep.load_checkpoint` rebuilds)."""
        return {"n_features": self.n_features,
                "tasks": [t.to_config() for t in self.tasks], **self._config}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x has shape {tuple(x.shape)}; the net expects (batch, "
                             f"{self.n_features}).")


class HardSharing(MultiTaskNet):
    """Hard parameter sharing: a trunk shared by all tasks, a head per task.

    Parameters
    ----------
    n_features : int
    tasks : list of TaskSpec (or names: regression tasks)
    hidden : sequence of int, default=(64, 32)
        Widths of the MLP trunk (ignored with ``trunk``).
    head_hidden : sequence of int, default=()
        Hidden widths of each head before its output layer.
    activation, dropout, batch_norm
        Of the trunk and heads (dropout and batch norm after every hidden layer).
    trunk : torch.nn.Module, optional
        Any module mapping (B, n_features) to (B, trunk_out) in place of the MLP; its
        parameters are the shared ones. Nets with a custom trunk save their weights, but
        their config can only be loaded by passing the net (see ``load_checkpoint``).
    trunk_out : int, optional
        Output width of ``trunk`` (found by a forward pass of a zero batch when omitted).

    Examples
    --------
    >>> from regmtl.deep import HardSharing, TaskSpec
    >>> net = HardSharing(10, [TaskSpec("a"), TaskSpec("b", kind="binary")], hidden=(16,))
    >>> import torch
    >>> {k: tuple(v.shape) for k, v in net(torch.zeros(4, 10)).items()}
    {'a': (4, 1), 'b': (4, 1)}
    """

    def __init__(self, n_features: int, tasks: Any, hidden: Sequence[int] = (64, 32), *,
                 head_hidden: Sequence[int] = (), activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False,
                 trunk: nn.Module | None = None, trunk_out: int | None = None):
        super().__init__(n_features, tasks)
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        if trunk is None:
            self.trunk = mlp(self.n_features, hidden, **kw)
            width = _out_width(hidden, self.n_features)
        else:
            if not isinstance(trunk, nn.Module):
                raise ValueError(f"trunk must be a torch.nn.Module, got {type(trunk).__name__}.")
            self.trunk = trunk
            if trunk_out is None:
                was = trunk.training
                trunk.eval()
                with torch.no_grad():
                    out = trunk(torch.zeros(2, self.n_features))
                trunk.train(was)
                if out.ndim != 2:
                    raise ValueError(f"trunk must return (batch, width), got {tuple(out.shape)}.")
                trunk_out = out.shape[1]
            width = int(trunk_out)
        self.heads = nn.ModuleDict({t.name: self._head(width, t, head_hidden, **kw)
                                    for t in self.tasks})
        self._config = {"hidden": list(hidden), "head_hidden": list(head_hidden),
                        "activation": activation, "dropout": dropout, "batch_norm": batch_norm}
        self.custom_trunk = trunk is not None

    def forward(self, x: torch.Tensor, tasks: Iterable[str] | None = None
                ) -> dict[str, torch.Tensor]:
        self._check_input(x)
        h = self.trunk(x)
        return {t: self.heads[t](h) for t in self._selected(tasks)}

    def input_layers(self) -> list[nn.Linear]:
        first = _first_linear(self.trunk)
        return [] if first is None else [first]

    def _shared_modules(self) -> list[nn.Module]:
        return [self.trunk]

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.heads[task]]

    def config(self) -> dict:
        if self.custom_trunk:
            raise ValueError("A net with a custom trunk has no JSON config; save its "
                             "state_dict and rebuild the net in code (load_checkpoint(path, "
                             "net=...)).")
        return super().config()


class _Gate(nn.Module):
    """Softmax weights over experts from the raw input of the level."""

    def __init__(self, in_features: int, n_experts: int):
        super().__init__()
        self.linear = nn.Linear(in_features, n_experts)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=-1)


def _mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Σ_k gate_k e_k: gate (B, K), experts (B, K, d) -> (B, d)."""
    return torch.einsum("bk,bkd->bd", gate, experts)


class MMoE(MultiTaskNet):
    """Multi-gate mixture of experts (Ma et al., KDD 2018).

    ``n_experts`` MLP experts shared by all tasks; task t mixes them with its own softmax gate
    ``softmax(G_t x)`` and feeds the mixture to its tower. Shared parameters: the experts; the
    gates and towers are task-specific.

    Examples
    --------
    >>> from regmtl.deep import MMoE
    >>> import torch
    >>> net = MMoE(8, ["a", "b"], n_experts=3, expert_hidden=(16,), tower_hidden=(8,))
    >>> tuple(net(torch.zeros(5, 8))["b"].shape)
    (5, 1)
    """

    def __init__(self, n_features: int, tasks: Any, n_experts: int = 4, *,
                 expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False):
        super().__init__(n_features, tasks)
        if int(n_experts) < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts!r}.")
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.experts = nn.ModuleList(mlp(self.n_features, expert_hidden, **kw)
                                     for _ in range(int(n_experts)))
        self.gates = nn.ModuleDict({t: _Gate(self.n_features, int(n_experts))
                                    for t in self.task_names})
        width = int(expert_hidden[-1])
        self.towers = nn.ModuleDict({t.name: self._head(width, t, tower_hidden, **kw)
                                     for t in self.tasks})
        self._config = {"n_experts": int(n_experts), "expert_hidden": list(expert_hidden),
                        "tower_hidden": list(tower_hidden), "activation": activation,
                        "dropout": dropout, "batch_norm": batch_norm}

    def forward(self, x: torch.Tensor, tasks: Iterable[str] | None = None
                ) -> dict[str, torch.Tensor]:
        self._check_input(x)
        e = torch.stack([ex(x) for ex in self.experts], dim=1)
        return {t: self.towers[t](_mix(self.gates[t](x), e)) for t in self._selected(tasks)}

    def gate_weights(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's mixture weights over the experts, (B, n_experts)."""
        return {t: self.gates[t](x) for t in self.task_names}

    def input_layers(self) -> list[nn.Linear]:
        return [_first_linear(e) for e in self.experts] + [g.linear for g in self.gates.values()]

    def _shared_modules(self) -> list[nn.Module]:
        return [self.experts]

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.gates[task], self.towers[task]]


class PLE(MultiTaskNet):
    """Progressive layered extraction (Tang et al., RecSys 2020); ``n_levels=1`` is CGC.

    Each level has ``n_shared_experts`` shared experts and ``n_task_experts`` experts of each
    task. Task t's gate mixes its own and the shared experts; below the last level a shared gate
    mixes all experts into the input of the next level's shared experts, and task t's mixture
    is the input of its next experts. Shared parameters: shared experts and shared gates; the
    task parameters are each task's experts, gates and tower (below the last level a task's
    experts also feed the shared gate, so they get gradient from every task).
    """

    def __init__(self, n_features: int, tasks: Any, n_levels: int = 2, *,
                 n_shared_experts: int = 2, n_task_experts: int = 1,
                 expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False):
        super().__init__(n_features, tasks)
        for name, v in (("n_levels", n_levels), ("n_shared_experts", n_shared_experts),
                        ("n_task_experts", n_task_experts)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v!r}.")
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        width = int(expert_hidden[-1])
        T = len(self.tasks)
        self.shared_experts = nn.ModuleList()
        self.task_experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        for level in range(int(n_levels)):
            inp = self.n_features if level == 0 else width
            self.shared_experts.append(nn.ModuleList(
                mlp(inp, expert_hidden, **kw) for _ in range(int(n_shared_experts))))
            self.task_experts.append(nn.ModuleDict({t: nn.ModuleList(
                mlp(inp, expert_hidden, **kw) for _ in range(int(n_task_experts)))
                for t in self.task_names}))
            self.task_gates.append(nn.ModuleDict({
                t: _Gate(inp, int(n_task_experts) + int(n_shared_experts))
                for t in self.task_names}))
            if level < int(n_levels) - 1:
                self.shared_gates.append(
                    _Gate(inp, T * int(n_task_experts) + int(n_shared_experts)))
        self.towers = nn.ModuleDict({t.name: self._head(width, t, tower_hidden, **kw)
                                     for t in self.tasks})
        self._config = {"n_levels": int(n_levels), "n_shared_experts": int(n_shared_experts),
                        "n_task_experts": int(n_task_experts),
                        "expert_hidden": list(expert_hidden), "tower_hidden": list(tower_hidden),
                        "activation": activation, "dropout": dropout, "batch_norm": batch_norm}

    def forward(self, x: torch.Tensor, tasks: Iterable[str] | None = None
                ) -> dict[str, torch.Tensor]:
        self._check_input(x)
        selected = self._selected(tasks)
        h_task = {t: x for t in self.task_names}
        h_shared = x
        n_levels = len(self.shared_experts)
        for level in range(n_levels):
            shared = [e(h_shared) for e in self.shared_experts[level]]
            own = {t: [e(h_task[t]) for e in self.task_experts[level][t]]
                   for t in self.task_names}
            last = level == n_levels - 1
            names = selected if last else self.task_names
            h_task = {t: _mix(self.task_gates[level][t](h_task[t]),
                              torch.stack(own[t] + shared, dim=1)) for t in names}
            if not last:
                every = [o for t in self.task_names for o in own[t]] + shared
                h_shared = _mix(self.shared_gates[level](h_shared), torch.stack(every, dim=1))
        return {t: self.towers[t](h_task[t]) for t in selected}

    def input_layers(self) -> list[nn.Linear]:
        first = [_first_linear(e) for e in self.shared_experts[0]]
        first += [_first_linear(e) for t in self.task_names for e in self.task_experts[0][t]]
        first += [g.linear for g in self.task_gates[0].values()]
        if len(self.shared_gates):
            first.append(self.shared_gates[0].linear)
        return first

    def _shared_modules(self) -> list[nn.Module]:
        return [self.shared_experts, self.shared_gates]

    def _task_modules(self, task: str) -> list[nn.Module]:
        return ([lvl[task] for lvl in self.task_experts] + [g[task] for g in self.task_gates]
                + [self.towers[task]])


class CGC(PLE):
    """Customized gate control (Tang et al., RecSys 2020): one level of :class:`PLE`."""

    def __init__(self, n_features: int, tasks: Any, *, n_shared_experts: int = 2,
                 n_task_experts: int = 1, expert_hidden: Sequence[int] = (64,),
                 tower_hidden: Sequence[int] = (32,), activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False):
        super().__init__(n_features, tasks, 1, n_shared_experts=n_shared_experts,
                         n_task_experts=n_task_experts, expert_hidden=expert_hidden,
                         tower_hidden=tower_hidden, activation=activation, dropout=dropout,
                         batch_norm=batch_norm)
        del self._config["n_levels"]


#: Net classes by name (the ``net`` field of a saved config).
NETS: dict[str, type[MultiTaskNet]] = {"HardSharing": HardSharing, "MMoE": MMoE, "CGC": CGC,
                                       "PLE": PLE}
