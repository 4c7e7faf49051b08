r"""Hard parameter sharing (Caruana, 1997): a trunk shared by all tasks, a head per task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._torch import torch
from ..heads import TaskHeads
from .base import MultiTaskNet, first_linear, is_width, mlp, module_config, out_width

nn = torch.nn

__all__ = ["HardSharing"]

#: The modules that keep the width of their input (a custom trunk's width is read through them)
ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.ELU, nn.SiLU, nn.LeakyReLU, nn.Sigmoid, nn.Dropout,
                nn.BatchNorm1d, nn.LayerNorm, nn.Identity)


class HardSharing(MultiTaskNet):
    r"""Hard parameter sharing: a trunk shared by all tasks, a head per task.

    Task t's output is :math:`f_t(x) = h_t(g(x))`, with :math:`g` the shared trunk (an MLP of
    widths ``hidden``, or any module) and :math:`h_t` the task's head (an MLP of widths
    ``head_hidden`` followed by a linear layer with ``n_outputs`` outputs). Shared parameters:
    the trunk's; input layer: the trunk's first linear layer.

    Parameters
    ----------
    n_features : int
        Width of the input.
    tasks : list of TaskSpec or str, or dict of str to str or TaskSpec
        The tasks (names alone are regression tasks).
    hidden : sequence of int, default=(64, 32)
        Widths of the MLP trunk (ignored with ``trunk``); empty: the heads read ``x``.
    head_hidden : sequence of int, default=()
        Hidden widths of each head before its output layer.
    activation : str, default="relu"
        Nonlinearity of the trunk and heads (see :func:`~regmtl.deep.mlp`).
    dropout : float, default=0.0
        Dropout after every hidden layer of the trunk and heads.
    batch_norm : bool, default=False
        Batch normalization after every linear hidden layer of the trunk and heads.
    trunk : torch.nn.Module, optional
        Any module mapping (B, n_features) to (B, trunk_out) in place of the MLP; its
        parameters are the shared ones. Nets with a custom trunk save their weights, but
        their config can only be loaded by passing the net
        (``load_checkpoint(path, net=...)``).
    trunk_out : int, optional
        Output width of ``trunk`` (found by a forward pass of a zero batch when omitted).

    Attributes
    ----------
    trunk : torch.nn.Module
        The shared layers.
    heads : torch.nn.ModuleDict
        The head of each task, by name.
    custom_trunk : bool
        Whether ``trunk`` was given.

    See Also
    --------
    regmtl.deep.MMoE : Experts mixed by a gate per task.

    Notes
    -----
    **Differences from the paper.** Caruana's net is one shared hidden layer feeding a
    linear output per task (``hidden=(h,)``, ``head_hidden=()`` here); deeper trunks, hidden
    layers in the heads, dropout, batch normalization and custom trunks are extensions. The
    paper trains by backpropagation on the summed losses, which the
    :class:`~regmtl.deep.Trainer` does with equal weights and ``normalize_losses=False``.

    References
    ----------
    Caruana (1997). Multitask learning. Machine Learning 28, 41-75.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import HardSharing, TaskSpec
    >>> net = HardSharing(10, [TaskSpec("a"), TaskSpec("b", kind="binary")], hidden=(16,))
    >>> {k: tuple(v.shape) for k, v in net(torch.zeros(4, 10)).items()}
    {'a': (4, 1), 'b': (4, 1)}

    Any module can be the trunk:

    >>> trunk = torch.nn.Sequential(torch.nn.Linear(10, 6), torch.nn.Tanh())
    >>> net = HardSharing(10, ["a", "b"], trunk=trunk)
    >>> [tuple(w.shape) for w in net.heads.task_weights("a")]
    [(6, 1), (1,)]
    """

    architecture = "hard"
    estimator_options = {"hidden": "hidden", "head_hidden": "head_hidden"}

    def __init__(self, n_features: int | None = None, tasks: Any = None,
                 hidden: Sequence[int] = (64, 32), *, head_hidden: Sequence[int] = (),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 trunk: nn.Module | None = None, trunk_out: int | None = None,
                 encoder: nn.Module | None = None):
        super().__init__(n_features, tasks, encoder)
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        if trunk is None:
            if self.in_width is None:
                raise ValueError("HardSharing needs n_features (the width of x), an encoder, "
                                 "or a trunk.")
            self.trunk = mlp(self.in_width, hidden, **kw)
            width = out_width(hidden, self.in_width)
        else:
            if not isinstance(trunk, nn.Module):
                raise ValueError(f"trunk must be a torch.nn.Module, got {type(trunk).__name__}.")
            self.trunk = trunk
            width = self._trunk_width(trunk, trunk_out)
        self.heads = TaskHeads(width, [(t.name, t.n_outputs) for t in self.tasks], head_hidden,
                               activation=activation, dropout=dropout)
        self._config = {"hidden": list(hidden), "head_hidden": list(head_hidden),
                        "activation": activation, "dropout": dropout, "batch_norm": batch_norm}
        self.custom_trunk = trunk is not None
        self._trunk_entry = None
        if trunk is not None:
            try:
                self._trunk_entry = module_config(trunk, "trunk")
            except ValueError:
                self._trunk_entry = None

    def _trunk_width(self, trunk: nn.Module, trunk_out: int | None) -> int:
        """The width the trunk returns: ``trunk_out``, its ``out_features``, its last layer
        that sets a width (a Sequential ending in Linear and elementwise layers), or a forward
        pass of zeros when ``n_features`` is known."""
        if trunk_out is not None:
            if not is_width(trunk_out):
                raise ValueError(f"trunk_out must be an int >= 1, got {trunk_out!r}.")
            return int(trunk_out)
        if is_width(getattr(trunk, "out_features", None)):
            return int(trunk.out_features)
        if isinstance(trunk, nn.Sequential):
            for m in reversed(list(trunk)):
                if is_width(getattr(m, "out_features", None)):
                    return int(m.out_features)
                if not isinstance(m, ELEMENTWISE):
                    break
        if self.n_features is not None and self.encoder is None:
            was = trunk.training
            trunk.eval()
            with torch.no_grad():
                out = trunk(torch.zeros(2, self.n_features))
            trunk.train(was)
            if out.ndim != 2:
                raise ValueError(f"trunk must return (batch, width), got {tuple(out.shape)}.")
            return int(out.shape[1])
        raise ValueError("HardSharing cannot tell the width the trunk returns: pass "
                         "trunk_out=..., give the trunk an int attribute out_features, or end "
                         "it with a Linear layer.")

    def forward(self, x: Any, tasks: Iterable[str] | None = None,
                rows: torch.Tensor | None = None) -> Any:
        """The outputs of the tasks on a batch.

        Parameters
        ----------
        x : Tensor of shape (B, n_features), or what the encoder or trunk reads
            The batch.
        tasks : iterable of str, optional
            The tasks to compute (default: all).
        rows : Tensor of shape (B,), optional
            Each row's task (positions in ``task_names``): only that task's head runs on
            the row, and the output is one tensor (B, max n_outputs).

        Returns
        -------
        dict of str to Tensor, or Tensor
            Each task's output, of shape (B, n_outputs): values or logits; with ``rows``,
            each row's own task's output.

        Raises
        ------
        ValueError
            If ``x`` has the wrong shape or a task is unknown.
        """
        if self.encoder is not None:
            x = self.encoder(x)
        elif not self.custom_trunk:
            self._check_input(x)
        h = self.trunk(x)
        if rows is not None:
            return self.heads.rows(h, rows)
        return self.heads.select(h, self._selected(tasks))

    def input_layers(self) -> list[nn.Linear]:
        first = first_linear(self.trunk)
        return [] if first is None else [first]

    def shared_representation(self) -> nn.Module:
        """The trunk: every head reads its output and nothing else shared."""
        return self.trunk

    def _shared_modules(self) -> list[nn.Module]:
        return [self.trunk]

    def _task_params(self, task: str) -> list[nn.Parameter]:
        return self.heads.task_parameters(task)

    def config(self) -> dict:
        if self.custom_trunk:
            if self._trunk_entry is None:
                raise ValueError("A net with a custom trunk has no JSON config; save its "
                                 "state_dict and rebuild the net in code (load_checkpoint(path, "
                                 "net=...)).")
            return {**super().config(), "trunk": self._trunk_entry}
        return super().config()
