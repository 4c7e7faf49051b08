r"""Multi-gate mixture of experts, MMoE (Ma et al., KDD 2018)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..._options import check_option
from .._torch import torch
from ..heads import TaskGates, TaskHeads
from .base import MultiTaskNet, first_linear, mlp
from .experts import ExpertGate, expert_names, gate_bias_option, mix

nn = torch.nn

__all__ = ["MMoE"]


class MMoE(MultiTaskNet):
    r"""Multi-gate mixture of experts (Ma et al., KDD 2018).

    ``n_experts`` MLP experts :math:`e_1, \dots, e_K` shared by all tasks; task t mixes them with
    its own softmax gate, a linear map :math:`G_t x` of the input, and feeds the mixture to
    its tower :math:`h_t`:

    .. math::

        f_t(x) = h_t\Big(\sum_{k=1}^K \pi_{tk}(x)\, e_k(x)\Big), \qquad
        \pi_t(x) = \mathrm{softmax}(G_t x)

    (:math:`\mathrm{softmax}(G_t x + c_t)` with ``gate_bias=True``).

    Shared parameters: the experts; the gates and towers are task-specific. Input layers: the
    first linear layer of every expert and every gate.

    Parameters
    ----------
    n_features : int
        Width of the input.
    tasks : list of TaskSpec or str, or dict of str to str or TaskSpec
        The tasks (names alone are regression tasks).
    n_experts : int, default=4
        Number of shared experts K (>= 1).
    expert_hidden : sequence of int, default=(64,)
        Widths of each expert's MLP (at least one); the mixture has the last width.
    tower_hidden : sequence of int, default=(32,)
        Hidden widths of each task's tower before its output layer.
    activation : str, default="relu"
        Nonlinearity of the experts and towers (see :func:`~regmtl.deep.mlp`).
    dropout : float, default=0.0
        Dropout after every hidden layer of the experts and towers.
    batch_norm : bool, default=False
        Batch normalization after every linear hidden layer of the experts and towers.
    gate_bias : bool, default=False
        Give every gate a bias :math:`c_t` (False: the paper's :math:`\mathrm{softmax}(G_t
        x)`). Nets saved before this option existed had the bias and load with it.

    Attributes
    ----------
    experts : torch.nn.ModuleList
        The shared experts.
    gates : TaskGates
        Every task's gate, batched (:class:`~regmtl.deep.TaskGates`).
    towers : TaskHeads
        Every task's tower, batched (:class:`~regmtl.deep.TaskHeads`).

    See Also
    --------
    regmtl.deep.CGC : Task-specific experts next to the shared ones.
    regmtl.deep.HardSharing : One shared trunk.

    Notes
    -----
    **Differences from the paper.** By default none in the gates: :math:`\mathrm{softmax}(W_{gt}
    x)` as in the paper and DeepCTR. ``gate_bias=True`` adds :math:`c_t` (as LibMTL's and
    torch-rechub's ``Linear`` gates, and this library's nets before the option): with
    standardized inputs, whose mean is 0, a gate without a bias has logits that average 0
    over the data, so a task cannot prefer an expert everywhere; the bias learns that prior
    (a new task's head on a conv trunk, tests/deep/test_deep_transfer.py, seeds 0-4: test
    :math:`R^2` 0.95 to 0.98 with the bias, 0.75 to 0.99 without). The experts and towers
    are MLPs of the chosen widths and activation (the paper's
    experiments use ReLU MLPs); dropout and batch normalization are options of this
    library.

    References
    ----------
    Ma, Zhao, Yi, Chen, Hong & Chi (2018). Modeling task relationships in multi-task learning
    with multi-gate mixture-of-experts. KDD.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MMoE
    >>> net = MMoE(8, ["a", "b"], n_experts=3, expert_hidden=(16,), tower_hidden=(8,))
    >>> tuple(net(torch.zeros(5, 8))["b"].shape)
    (5, 1)
    >>> pi = net.gate_weights(torch.zeros(5, 8))["a"]
    >>> tuple(pi.shape), bool(torch.allclose(pi.sum(dim=1), torch.ones(5)))
    ((5, 3), True)
    """

    architecture = "mmoe"
    estimator_options = {"n_experts": "n_experts", "expert_hidden": "hidden",
                         "tower_hidden": "head_hidden"}

    def __init__(self, n_features: int | None = None, tasks: Any = None, n_experts: int = 4,
                 *, expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 gate_bias: bool = False, encoder: nn.Module | None = None):
        super().__init__(n_features, tasks, encoder)
        if self.in_width is None:
            raise ValueError("MMoE needs n_features (the width of x) or an encoder.")
        n_experts = check_option("n_experts", n_experts, "int", low=1)
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.experts = nn.ModuleList(mlp(self.in_width, expert_hidden, **kw)
                                     for _ in range(int(n_experts)))
        gate_bias = gate_bias_option(gate_bias)
        self.gates = TaskGates(self.in_width, self.task_names, int(n_experts), bias=gate_bias)
        width = int(expert_hidden[-1])
        self.towers = TaskHeads(width, [(t.name, t.n_outputs) for t in self.tasks],
                                tower_hidden, activation=activation, dropout=dropout)
        self._config = {"n_experts": int(n_experts), "expert_hidden": list(expert_hidden),
                        "tower_hidden": list(tower_hidden), "activation": activation,
                        "dropout": dropout, "batch_norm": batch_norm, "gate_bias": gate_bias}

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
            Each row's task (positions in ``task_names``): only its gate and tower run on
            the row; the output is one tensor (B, max n_outputs).

        Returns
        -------
        dict of str to Tensor, or Tensor
            Each task's output, of shape (B, n_outputs): values or logits; with ``rows``,
            each row's own task's output.
        """
        z = self._encode(x)
        e = torch.stack([ex(z) for ex in self.experts], dim=1)  # (B, K, d)
        if rows is not None:
            return self.towers.rows(mix(self.gates.rows(z, rows), e), rows)
        names = self._selected(tasks)
        pi = self.gates(z)  # (B, T, K), in the gates' task order
        if list(names) != self.gates.names:
            pi = pi[:, self.gates.positions(names).to(pi.device)]
        return self.towers.select(torch.einsum("btk,bkd->btd", pi, e), names)

    def gate_weights(self, x: Any) -> dict[str, torch.Tensor]:
        r"""Each task's mixture weights :math:`\pi_t(x)` over the experts.

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder reads
            The batch.

        Returns
        -------
        dict of str to Tensor
            For each task, the (B, n_experts) softmax weights (rows sum to 1): detached
            tensors of the caller's own.
        """
        with torch.no_grad():
            pi = self.gates(self._encode(x))
        return {t: pi[:, self.gates.position(t)].clone() for t in self.task_names}

    def expert_gates(self, x: Any) -> list[ExpertGate]:
        """Every task's gate on ``x`` as :class:`~regmtl.deep.nets.experts.ExpertGate`
        records (level 0; experts ``shared[0]`` ... ``shared[K-1]``), for
        :func:`~regmtl.deep.expert_use.expert_usage`.

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder reads
            The batch.

        Returns
        -------
        list of ExpertGate
            One per task, in the net's task order.
        """
        names = expert_names("shared", len(self.experts))
        return [ExpertGate(0, t, names, w) for t, w in self.gate_weights(x).items()]

    def input_layers(self) -> list[nn.Linear]:
        return [first_linear(e) for e in self.experts] + self.gates.linears()

    def _shared_modules(self) -> list[nn.Module]:
        return [self.experts]

    def _task_params(self, task: str) -> list[nn.Parameter]:
        i = self._task_pos[task]
        gate = self.gates.blocks[int(self.gates.block_of[i])]
        return list(gate.parameters()) + self.towers.task_parameters(task)
