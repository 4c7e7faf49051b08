r"""Progressive layered extraction, PLE, and its one-level form CGC (Tang et al., RecSys
2020)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..._options import check_option
from .._torch import torch
from ..heads import TaskHeads
from .base import MultiTaskNet, first_linear, mlp
from .experts import ExpertGate, Gate, expert_names, gate_bias_option, mix

nn = torch.nn

__all__ = ["PLE", "CGC"]


class PLE(MultiTaskNet):
    r"""Progressive layered extraction (Tang et al., RecSys 2020); ``n_levels=1`` is CGC.

    Each level l has ``n_shared_experts`` shared experts :math:`E^s_l` and ``n_task_experts``
    experts :math:`E^t_l` of each task t. Task t's gate mixes its own and the shared experts;
    below the last level a shared gate mixes all experts into the input of the next level's
    shared experts, and task t's mixture is the input of its next experts. With
    :math:`z^t_0 = z^s_0 = x`, the outputs :math:`u^t_l = (e(z^t_l))_{e \in E^t_l}` of task
    t's experts and :math:`u^s_l = (e(z^s_l))_{e \in E^s_l}` of the shared ones,

    .. math::

        z^t_{l+1} &= \mathrm{softmax}(G^t_l z^t_l)^\top (u^t_l, u^s_l), \\
        z^s_{l+1} &= \mathrm{softmax}(G^s_l z^s_l)^\top
            (u^1_l, \dots, u^T_l, u^s_l), \\
        f_t(x) &= h_t(z^t_L),

    each softmax weighting the listed expert outputs (the shared gate exists below the last
    level only; with ``gate_bias=True`` each gate's logits get a bias, :math:`G^t_l z^t_l +
    c^t_l` and :math:`G^s_l z^s_l + c^s_l`). Shared
    parameters: shared experts and shared gates; the task parameters are each task's experts,
    gates and tower (below the last level a task's experts also feed the shared gate, so they
    get gradient from every task). Input layers: the first linear layer of every first-level
    expert and gate.

    Parameters
    ----------
    n_features : int
        Width of the input.
    tasks : list of TaskSpec or str, or dict of str to str or TaskSpec
        The tasks (names alone are regression tasks).
    n_levels : int, default=2
        Number of extraction levels L (>= 1).
    n_shared_experts : int, default=2
        Shared experts per level (>= 1).
    n_task_experts : int, default=1
        Experts of each task per level (>= 1).
    expert_hidden : sequence of int, default=(64,)
        Widths of each expert's MLP (at least one); every level outputs the last width.
    tower_hidden : sequence of int, default=(32,)
        Hidden widths of each task's tower before its output layer.
    activation : str, default="relu"
        Nonlinearity of the experts and towers (see :func:`~regmtl.deep.mlp`).
    dropout : float, default=0.0
        Dropout after every hidden layer of the experts and towers.
    batch_norm : bool, default=False
        Batch normalization after every linear hidden layer of the experts and towers.
    gate_bias : bool, default=False
        Give every gate a bias (False: the paper's :math:`\mathrm{softmax}(W z)`). Nets saved
        before this option existed had the bias and load with it.

    Attributes
    ----------
    shared_experts : torch.nn.ModuleList
        The shared experts of each level.
    task_experts : torch.nn.ModuleList
        For each level, a ``ModuleDict`` task -> its experts.
    task_gates : torch.nn.ModuleList
        For each level, a ``ModuleDict`` task -> its gate.
    shared_gates : torch.nn.ModuleList
        The shared gate of each level but the last.
    towers : torch.nn.ModuleDict
        Each task's tower.

    See Also
    --------
    regmtl.deep.CGC : One level.
    regmtl.deep.MMoE : Shared experts only.

    Notes
    -----
    **Differences from the paper.** By default none in the gates: the paper's
    :math:`\mathrm{softmax}(W z)`, as DeepCTR's. ``gate_bias=True`` adds the biases
    :math:`c^t_l`, :math:`c^s_l` (as LibMTL's and torch-rechub's PLE, and this library's nets
    before the option), which let a gate learn a prior over its experts whatever the mean of
    its input (see :class:`~regmtl.deep.MMoE`). Each level's gates read the level's input
    (the previous level's mixtures), as in the paper. Every level's experts output the same
    width (the last of ``expert_hidden``) and have the same number of task experts; dropout
    and batch normalization are options of this library.

    References
    ----------
    Tang, Liu, Zhao & Gong (2020). Progressive layered extraction (PLE): a novel multi-task
    learning (MTL) model for personalized recommendations. RecSys.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import PLE
    >>> net = PLE(6, ["a", "b"], n_levels=2, expert_hidden=(8,), tower_hidden=(4,))
    >>> {k: tuple(v.shape) for k, v in net(torch.zeros(3, 6)).items()}
    {'a': (3, 1), 'b': (3, 1)}
    >>> len(net.input_layers())  # 2 shared + 2 task experts, 2 task gates, 1 shared gate
    7
    """

    architecture = "ple"
    estimator_options = {"n_shared_experts": "n_experts", "expert_hidden": "hidden",
                         "tower_hidden": "head_hidden"}

    def __init__(self, n_features: int | None = None, tasks: Any = None, n_levels: int = 2, *,
                 n_shared_experts: int = 2, n_task_experts: int = 1,
                 expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 gate_bias: bool = False, encoder: nn.Module | None = None):
        super().__init__(n_features, tasks, encoder)
        if self.in_width is None:
            raise ValueError(f"{type(self).__name__} needs n_features (the width of x) or an "
                             "encoder.")
        for name, v in (("n_levels", n_levels), ("n_shared_experts", n_shared_experts),
                        ("n_task_experts", n_task_experts)):
            check_option(name, v, "int", low=1)
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        gate_bias = gate_bias_option(gate_bias)
        width = int(expert_hidden[-1])
        T = len(self.tasks)
        self.shared_experts = nn.ModuleList()
        self.task_experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        for level in range(int(n_levels)):
            inp = self.in_width if level == 0 else width
            self.shared_experts.append(nn.ModuleList(
                mlp(inp, expert_hidden, **kw) for _ in range(int(n_shared_experts))))
            self.task_experts.append(nn.ModuleDict({t: nn.ModuleList(
                mlp(inp, expert_hidden, **kw) for _ in range(int(n_task_experts)))
                for t in self.task_names}))
            self.task_gates.append(nn.ModuleDict({
                t: Gate(inp, int(n_task_experts) + int(n_shared_experts), gate_bias)
                for t in self.task_names}))
            if level < int(n_levels) - 1:
                self.shared_gates.append(
                    Gate(inp, T * int(n_task_experts) + int(n_shared_experts), gate_bias))
        self.towers = TaskHeads(width, [(t.name, t.n_outputs) for t in self.tasks],
                                tower_hidden, activation=activation, dropout=dropout)
        self._config = {"n_levels": int(n_levels), "n_shared_experts": int(n_shared_experts),
                        "n_task_experts": int(n_task_experts),
                        "expert_hidden": list(expert_hidden), "tower_hidden": list(tower_hidden),
                        "activation": activation, "dropout": dropout, "batch_norm": batch_norm,
                        "gate_bias": gate_bias}

    def forward(self, x: Any, tasks: Iterable[str] | None = None,
                rows: torch.Tensor | None = None) -> Any:
        """The outputs of the tasks on a batch.

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder reads
            The batch.
        tasks : iterable of str, optional
            The tasks to compute (default: all).
        rows : Tensor of shape (B,), optional
            Each row's task (positions in ``task_names``); the output is then one tensor
            (B, max n_outputs) of each row's own task. Below the last level the shared gate
            reads every task's experts, so every task's experts run on every row.

        Returns
        -------
        dict of str to Tensor, or Tensor
            Each task's output, of shape (B, n_outputs): values or logits; with ``rows``,
            each row's own task's output.
        """
        x = self._encode(x)
        if rows is not None:
            return self._rows_of(self._levels(x, self.task_names), rows)
        return self._levels(x, self._selected(tasks))

    def _levels(self, x: torch.Tensor, selected: list[str],
                record: list[ExpertGate] | None = None) -> dict[str, torch.Tensor]:
        """The towers of ``selected`` on the encoded batch ``x``; every gate's weights are
        appended to ``record`` when one is given."""
        h_task = {t: x for t in self.task_names}
        h_shared = x
        n_levels = len(self.shared_experts)
        for level in range(n_levels):
            shared = [e(h_shared) for e in self.shared_experts[level]]
            own = {t: [e(h_task[t]) for e in self.task_experts[level][t]]
                   for t in self.task_names}
            last = level == n_levels - 1
            names = selected if last else self.task_names
            gates = {t: self.task_gates[level][t](h_task[t]) for t in names}
            h_task = {t: mix(gates[t], torch.stack(own[t] + shared, dim=1)) for t in names}
            if not last:
                every = [o for t in self.task_names for o in own[t]] + shared
                g = self.shared_gates[level](h_shared)
                h_shared = mix(g, torch.stack(every, dim=1))
            if record is not None:
                of_shared = expert_names("shared", len(shared))
                record.extend(ExpertGate(level, t, expert_names(t, len(own[t])) + of_shared,
                                         gates[t].detach()) for t in names)
                if not last:
                    record.append(ExpertGate(level, "shared", sum(
                        (expert_names(t, len(own[t])) for t in self.task_names), ())
                        + of_shared, g.detach()))
        z = torch.stack([h_task[t] for t in selected], dim=1)
        return self.towers.select(z, selected)

    def expert_gates(self, x: Any) -> list[ExpertGate]:
        """Every gate of every level on ``x`` as :class:`~regmtl.deep.nets.experts.ExpertGate`
        records, for :func:`~regmtl.deep.expert_use.expert_usage`: at each level, task t's
        gate over ``t[0]``, ... (its own experts) and ``shared[0]``, ... (the level's shared
        experts), then, below the last level, the ``"shared"`` gate over every task's experts
        and the shared ones.

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder reads
            The batch.

        Returns
        -------
        list of ExpertGate
            Level by level; the task gates in the net's task order, then the shared gate.
        """
        record: list[ExpertGate] = []
        with torch.no_grad():
            self._levels(self._encode(x), self.task_names, record)
        return record

    def gate_weights(self, x: Any) -> dict[str, torch.Tensor]:
        r"""Each task's gate weights at the last level over its own experts, then the
        shared ones (:meth:`expert_gates` gives every level's).

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder reads
            The batch.

        Returns
        -------
        dict of str to Tensor
            For each task, the (B, n_task_experts + n_shared_experts) softmax weights.
        """
        last = len(self.shared_experts) - 1
        return {g.gate: g.weights for g in self.expert_gates(x)
                if g.level == last and g.gate in self._task_pos}

    def input_layers(self) -> list[nn.Linear]:
        first = [first_linear(e) for e in self.shared_experts[0]]
        first += [first_linear(e) for t in self.task_names for e in self.task_experts[0][t]]
        first += [g.linear for g in self.task_gates[0].values()]
        if len(self.shared_gates):
            first.append(self.shared_gates[0].linear)
        return first

    def _shared_modules(self) -> list[nn.Module]:
        return [self.shared_experts, self.shared_gates]

    def _task_params(self, task: str) -> list[nn.Parameter]:
        mods = [lvl[task] for lvl in self.task_experts] + [g[task] for g in self.task_gates]
        return [p for m in mods for p in m.parameters()] + self.towers.task_parameters(task)


class CGC(PLE):
    r"""Customized gate control (Tang et al., RecSys 2020): one level of PLE.

    The :class:`~regmtl.deep.PLE` net with ``n_levels=1``. Each task t has ``n_task_experts``
    experts :math:`E^t` of its own next to ``n_shared_experts`` shared experts :math:`E^s`; its
    gate mixes the two sets, its tower reads the mixture:

    .. math::

        f_t(x) = h_t\Big(\sum_{e \in E^t \cup E^s}
            \mathrm{softmax}(G_t x)_e \, e(x)\Big)

    (:math:`G_t x + c_t` with ``gate_bias=True``).

    Shared parameters: the shared experts; the task parameters are each task's experts, gate
    and tower.

    Parameters
    ----------
    n_features : int
        Width of the input.
    tasks : list of TaskSpec or str, or dict of str to str or TaskSpec
        The tasks (names alone are regression tasks).
    n_shared_experts : int, default=2
        Shared experts (>= 1).
    n_task_experts : int, default=1
        Experts of each task (>= 1).
    expert_hidden : sequence of int, default=(64,)
        Widths of each expert's MLP (at least one).
    tower_hidden : sequence of int, default=(32,)
        Hidden widths of each task's tower before its output layer.
    activation : str, default="relu"
        Nonlinearity of the experts and towers (see :func:`~regmtl.deep.mlp`).
    dropout : float, default=0.0
        Dropout after every hidden layer of the experts and towers.
    batch_norm : bool, default=False
        Batch normalization after every linear hidden layer of the experts and towers.
    gate_bias : bool, default=False
        Give every gate a bias :math:`c_t` (False: the paper's form). Nets saved before this
        option existed had the bias and load with it.

    See Also
    --------
    regmtl.deep.PLE : Several levels.
    regmtl.deep.MMoE : Shared experts only.

    Notes
    -----
    **Differences from the paper.** By default none in the gates (the paper's
    :math:`\mathrm{softmax}(W x)`); ``gate_bias=True`` adds a bias, for the reason given in
    :class:`~regmtl.deep.MMoE`. Dropout and batch normalization are options of this
    library.

    References
    ----------
    Tang, Liu, Zhao & Gong (2020). Progressive layered extraction (PLE): a novel multi-task
    learning (MTL) model for personalized recommendations. RecSys.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import CGC
    >>> net = CGC(6, ["a", "b"], n_shared_experts=2, n_task_experts=1, expert_hidden=(8,))
    >>> tuple(net(torch.zeros(3, 6))["a"].shape)
    (3, 1)
    >>> len(net.shared_parameters()), len(net.task_parameters("a"))  # gates without bias
    (4, 7)
    """

    architecture = "cgc"

    def __init__(self, n_features: int | None = None, tasks: Any = None, *,
                 n_shared_experts: int = 2, n_task_experts: int = 1,
                 expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 gate_bias: bool = False, encoder: nn.Module | None = None):
        super().__init__(n_features, tasks, 1, n_shared_experts=n_shared_experts,
                         n_task_experts=n_task_experts, expert_hidden=expert_hidden,
                         tower_hidden=tower_hidden, activation=activation, dropout=dropout,
                         batch_norm=batch_norm, gate_bias=gate_bias, encoder=encoder)
        del self._config["n_levels"]
