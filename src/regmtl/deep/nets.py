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

References
----------
- Caruana (1997). Multitask learning. Machine Learning 28, 41-75.
- Ma, Zhao, Yi, Chen, Hong & Chi (2018). Modeling task relationships in multi-task learning
  with multi-gate mixture-of-experts. KDD.
- Tang, Liu, Zhao & Gong (2020). Progressive layered extraction (PLE): a novel multi-task
  learning (MTL) model for personalized recommendations. RecSys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .._options import check_option
from ._torch import torch
from .heads import TaskGates, TaskHeads, activation_module
from .inputs import describe
from .scaling import TargetScale
from .tasks import TaskSpec, as_task_specs

nn = torch.nn

__all__ = ["MultiTaskNet", "HardSharing", "MMoE", "CGC", "PLE", "mlp", "NETS"]

def mlp(in_features: int, hidden: Sequence[int], *, activation: str = "relu",
        dropout: float = 0.0, batch_norm: bool = False) -> nn.Sequential:
    """A multilayer perceptron: the trunks, experts and heads of the nets.

    Each width ``h`` in ``hidden`` adds ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``;
    the output has the last width (``in_features`` when ``hidden`` is empty: an empty
    ``Sequential``, the identity).

    Parameters
    ----------
    in_features : int
        Width of the input.
    hidden : sequence of int
        Widths of the hidden layers (each >= 1), in order.
    activation : {"relu", "gelu", "tanh", "elu", "silu", "leaky_relu"}, default="relu"
        The nonlinearity after every linear layer.
    dropout : float, default=0.0
        Dropout probability after every hidden layer, in [0, 1); 0 adds no dropout layer.
    batch_norm : bool, default=False
        Add a ``BatchNorm1d`` after every linear layer.

    Returns
    -------
    torch.nn.Sequential
        The layers, mapping (B, in_features) to (B, hidden[-1]).

    Raises
    ------
    ValueError
        If ``activation`` is unknown, ``dropout`` is outside [0, 1) or a width is < 1.

    Examples
    --------
    >>> from regmtl.deep import mlp
    >>> body = mlp(5, (8, 4), dropout=0.1)
    >>> [type(m).__name__ for m in body]
    ['Linear', 'ReLU', 'Dropout', 'Linear', 'ReLU', 'Dropout']
    >>> import torch
    >>> tuple(body(torch.zeros(3, 5)).shape)
    (3, 4)
    """
    activation_module(activation)  # checks the name
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
        layers.append(activation_module(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return nn.Sequential(*layers)


def out_width(hidden: Sequence[int], default: int) -> int:
    """The width out of an MLP of ``hidden`` layer widths: the last one, else ``default``."""
    return int(hidden[-1]) if len(hidden) else default


def first_linear(module: nn.Module) -> nn.Linear | None:
    """The first ``nn.Linear`` of ``module`` (in ``modules()`` order), or None."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return m
    return None


def _is_width(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _to_target_units(net: MultiTaskNet, args: Any, kwargs: dict, out: Any) -> Any:
    """The forward hook of nets built before :meth:`MultiTaskNet.__call__` made the map
    itself: a net unpickled from then keeps the hook, which now leaves the output alone."""
    return None


def _target_units(net: MultiTaskNet, args: Any, kwargs: dict, out: Any) -> Any:
    """Regression outputs in the target's units (outside
    :meth:`MultiTaskNet.standardized_outputs`)."""
    if isinstance(out, torch.Tensor):  # each row's own task (``rows=``)
        rows = kwargs.get("rows", args[2] if len(args) > 2 else None)
        mean, scale = net.stacked_scales(out.device)
        dtype = torch.promote_types(out.dtype, mean.dtype)
        return out.to(dtype) * scale[rows].to(dtype) + mean[rows].to(dtype)
    if not isinstance(out, dict):
        return out
    scales = net.target_scales
    return {k: scales[k](v) if k in scales else v for k, v in out.items()}


class _Standardized:
    """The context of :meth:`MultiTaskNet.standardized_outputs` (a flag in the net's
    ``__dict__``: ``nn.Module.__setattr__`` costs more than the rest of it)."""

    __slots__ = ("net", "before")

    def __init__(self, net: MultiTaskNet):
        self.net = net

    def __enter__(self) -> None:
        d = self.net.__dict__
        self.before, d["_standardized"] = d["_standardized"], True

    def __exit__(self, *exc: Any) -> None:
        self.net.__dict__["_standardized"] = self.before


class MultiTaskNet(nn.Module):
    r"""Base class of the multi-task nets: task specs, parameter groups, config.

    A net maps a batch ``x`` of shape (B, n_features) to a dict ``{task: output}``, each output
    of shape (B, ``n_outputs``) (values for regression, logits for classification, see
    :class:`~regmtl.deep.TaskSpec`). It splits its parameters into the groups the penalties and
    the weighting methods work on: :meth:`shared_parameters` (every task's output depends on
    them), :meth:`task_parameters` (heads, gates, task experts) and the :meth:`input_layers`
    (the linear layers that read ``x``: the groups of :class:`~regmtl.deep.GroupL21`).

    Use one of :class:`~regmtl.deep.HardSharing`, :class:`~regmtl.deep.MMoE`,
    :class:`~regmtl.deep.CGC` or :class:`~regmtl.deep.PLE`. A subclass builds its modules in
    ``__init__`` after calling ``super().__init__(n_features, tasks)``, stores its constructor
    arguments in the dict ``self._config``, and implements ``forward(x, tasks=None)``,
    :meth:`input_layers`, ``_shared_modules()`` and ``_task_modules(task)`` (lists of
    modules).

    Parameters
    ----------
    n_features : int
        Width of the input (>= 1).
    tasks : list of TaskSpec or str, or dict of str to str or TaskSpec
        The tasks: specs, names (regression tasks), or a dict name -> kind (or spec). Names must
        be unique.

    Every regression output passes through its task's :class:`~regmtl.deep.scaling.TargetScale`
    (:math:`\sigma h + \mu`, the identity until the :class:`~regmtl.deep.Trainer` standardizes
    the targets), so the outputs are in the target's units; inside
    :meth:`standardized_outputs` they are the heads' own :math:`h`.

    Attributes
    ----------
    n_features : int
        Width of the input.
    tasks : list of TaskSpec
        The task specs, in order.
    task_names : list of str
        Their names.
    target_scales : ModuleDict of str to TargetScale
        The map of each regression task (buffers in the ``state_dict``).

    See Also
    --------
    regmtl.deep.Trainer : Trains a net.
    regmtl.deep.save_checkpoint : Saves its weights and config.

    Examples
    --------
    >>> from regmtl.deep import HardSharing, MultiTaskNet
    >>> net = HardSharing(4, ["a", "b"], hidden=(8,))
    >>> isinstance(net, MultiTaskNet), net.task_names
    (True, ['a', 'b'])
    >>> [tuple(p.shape) for p in net.shared_parameters()]
    [(8, 4), (8,)]
    >>> [tuple(p.shape) for p in net.task_parameters("a")]  # the heads' block: (task, in, out)
    [(2, 8, 1), (2, 1)]
    >>> [tuple(w.shape) for w in net.heads.task_weights("a")]  # task a's own slices
    [(8, 1), (1,)]
    >>> [tuple(m.weight.shape) for m in net.input_layers()]
    [(8, 4)]
    """

    def __init__(self, n_features: int | None, tasks: Any, encoder: nn.Module | None = None):
        super().__init__()
        if tasks is None:
            raise ValueError("tasks is required: a list of task names or specs, or a dict "
                             "name -> kind.")
        if encoder is not None:
            if not isinstance(encoder, nn.Module) or not _is_width(
                    getattr(encoder, "out_features", None)):
                raise ValueError("encoder must be a torch.nn.Module with an int attribute "
                                 "out_features (the width it returns), e.g. FeatureColumns, "
                                 f"ConvTrunk or TextTrunk; got {type(encoder).__name__}.")
        if n_features is not None and (isinstance(n_features, bool) or int(n_features) < 1):
            raise ValueError(f"n_features must be >= 1, got {n_features!r}.")
        self.n_features = None if n_features is None else int(n_features)
        self.encoder = encoder
        self.tasks = as_task_specs(tasks)
        self.task_names = [t.name for t in self.tasks]
        self._task_pos = {n: i for i, n in enumerate(self.task_names)}
        self.target_scales = nn.ModuleDict()
        for t in self.tasks:
            self._add_target_scale(t)
        self._standardized = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``forward`` (with the module's hooks, which see the heads' outputs), then the
        regression outputs in the target's units (outside :meth:`standardized_outputs`). Not
        a forward hook: a module with a hook takes torch's slower call path on every batch."""
        out = self._wrapped_call_impl(*args, **kwargs)
        if self.__dict__["_standardized"] or not len(self.target_scales._modules):
            return out
        return _target_units(self, args, kwargs, out)

    def set_tasks(self, tasks: list[TaskSpec]) -> None:
        """Replace the task list (specs whose heads the net already holds)."""
        self.__dict__.pop("_scales_cache", None)
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self._task_pos = {n: i for i, n in enumerate(self.task_names)}

    @property
    def in_width(self) -> int | None:
        """The width the shared layers read: the encoder's output, else ``n_features``."""
        return int(self.encoder.out_features) if self.encoder is not None else self.n_features

    def _encode(self, x: Any) -> torch.Tensor:
        """``x`` checked, through the encoder when there is one."""
        if self.encoder is not None:
            return self.encoder(x)
        self._check_input(x)
        return x

    def _add_target_scale(self, spec: TaskSpec) -> None:
        self.__dict__.pop("_scales_cache", None)
        if spec.kind == "regression":
            self.target_scales[spec.name] = TargetScale(spec.n_outputs)

    def train(self, mode: bool = True) -> MultiTaskNet:
        """``torch.nn.Module.train``: every module in training (or evaluation) mode; the
        target maps (one per task, without children) are set directly, not walked."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        maps = self._modules.get("target_scales")
        for m in self._modules.values():
            if m is maps:
                maps.training = mode
                for s in maps._modules.values():
                    s.__dict__["training"] = mode
            elif m is not None:
                m.train(mode)
        return self

    def standardized_outputs(self) -> AbstractContextManager:
        r"""Within this block, regression outputs are the heads' standardized :math:`h`
        (the trainer's losses), not :math:`\sigma h + \mu`."""
        return _Standardized(self)

    def standardize_target(self, task: str, y: torch.Tensor) -> torch.Tensor:
        r"""A target batch of ``task`` in the units of its head's :math:`h` (as is for
        classification tasks).

        Parameters
        ----------
        task : str
            The task.
        y : Tensor of shape (B,) or (B, n_outputs)
            Its labels.

        Returns
        -------
        Tensor
            :math:`(y - \mu) / \sigma`.
        """
        scale = self.target_scales[task] if task in self.target_scales else None
        return y if scale is None else scale.standardize(y)

    def stacked_scales(self, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Every task's map as two (T, max outputs) float64 tensors :math:`(\mu, \sigma)`
        (0 and 1 for classification tasks and unused outputs): the per-row form of
        ``target_scales``.

        Built once and kept until a map changes (``TargetScale.set``, ``load_state_dict``),
        the tasks change or the net moves: read them, do not modify them in place."""
        dev = None if device is None else torch.device(device)
        key = (TargetScale.changes, len(self.tasks), dev)
        cached = self.__dict__.get("_scales_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        width = max(t.n_outputs for t in self.tasks)
        mean = torch.zeros(len(self.tasks), width, dtype=torch.float64)
        scale = torch.ones(len(self.tasks), width, dtype=torch.float64)
        groups: dict[int, tuple[list[int], list, list]] = {}
        maps = self.target_scales._modules
        for i, t in enumerate(self.tasks):
            s = maps.get(t.name)
            if s is not None:
                g = groups.setdefault(t.n_outputs, ([], [], []))
                g[0].append(i)
                g[1].append(s._buffers["mean"])
                g[2].append(s._buffers["scale"])
        for w, (rows, means, scales) in groups.items():
            idx = torch.tensor(rows, dtype=torch.int64)
            mean[idx, :w] = torch.stack(means).detach().to("cpu", torch.float64)
            scale[idx, :w] = torch.stack(scales).detach().to("cpu", torch.float64)
        out = (mean.to(dev), scale.to(dev))
        self.__dict__["_scales_cache"] = (key, out)
        return out

    def _apply(self, fn, recurse=True):
        self.__dict__.pop("_scales_cache", None)
        return super()._apply(fn, recurse)

    def _rows_of(self, out: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        """Each row's own task's output from every task's (B, n_outputs): (B, max)."""
        width = max(t.n_outputs for t in self.tasks)
        stacked = torch.stack([nn.functional.pad(out[n], (0, width - out[n].shape[1]))
                               for n in self.task_names], dim=1)
        return stacked[torch.arange(len(rows), device=rows.device), rows]

    def _head(self, in_features: int, spec: TaskSpec, hidden: Sequence[int], **kw) -> nn.Module:
        body = mlp(in_features, hidden, **kw)
        return nn.Sequential(*body, nn.Linear(out_width(hidden, in_features), spec.n_outputs))

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
        """Parameters every task's output depends on.

        Returns
        -------
        list of torch.nn.Parameter
            The trunk's (hard sharing), or the shared experts' and shared gates' (mixtures of
            experts).
        """
        mods = ([self.encoder] if self.encoder is not None else []) + self._shared_modules()
        return [p for m in mods for p in m.parameters()]

    def shared_representation(self) -> nn.Module | None:
        """The module whose output is the net's single shared representation :math:`Z`, the
        one tensor every task's head reads and nothing else shared (the route of the
        weightings with ``on_representation``); None where the net has none.

        Returns
        -------
        torch.nn.Module or None
            None here: mixtures of experts mix their shared parts per task by gates, and ESMM
            feeds a task through another task's tower. :class:`~regmtl.deep.HardSharing`
            returns its trunk.
        """
        return None

    def task_parameters(self, task: str | None = None) -> list[nn.Parameter]:
        """Parameters of one task (or of all tasks): its head, gates, own experts.

        Parameters
        ----------
        task : str, optional
            A task name; None gives the parameters of every task (all that are not shared).

        Returns
        -------
        list of torch.nn.Parameter
            The task-specific parameters.

        Raises
        ------
        ValueError
            If ``task`` is not a task of the net.
        """
        shared = {id(p) for p in self.shared_parameters()}
        if task is None:
            return [p for p in self.parameters() if id(p) not in shared]
        return self._task_params(self._selected([task])[0])

    def _task_params(self, task: str) -> list[nn.Parameter]:
        """Task ``task``'s parameters (batched heads: the blocks that hold its head)."""
        return [p for m in self._task_modules(task) for p in m.parameters()]

    def check_targets(self, targets: Any) -> None:
        """Refuse training labels that the net's model cannot produce, before any step (the
        trainer calls it on every data set it is given by task; none here, see
        :meth:`regmtl.deep.ESMM.check_targets`).

        Parameters
        ----------
        targets : mapping of str to array-like or Tensor
            The labels by task name.
        """

    def input_layers(self) -> list[nn.Linear]:
        """The linear layers that read the raw input ``x``.

        Returns
        -------
        list of torch.nn.Linear
            Their weights have shape (out, n_features); column j reads feature j. Empty for a
            custom trunk without a linear layer.
        """
        raise NotImplementedError

    def _shared_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def _task_modules(self, task: str) -> list[nn.Module]:
        raise NotImplementedError

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """The constructor arguments, JSON-able: :func:`~regmtl.deep.load_checkpoint` rebuilds
        the net from them.

        Returns
        -------
        dict
            ``n_features``, ``tasks`` (each spec's config) and the net's own options.

        Raises
        ------
        ValueError
            If the net cannot be described in JSON (a custom trunk, a callable loss).
        """
        return {"n_features": self.n_features,
                "tasks": [t.to_config() for t in self.tasks], **self._config,
                **self._encoder_config()}

    def _check_input(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
            raise ValueError(f"x is {describe(x)}; the net expects a float tensor (batch, "
                             f"{self.n_features}). Give the net an encoder for images, token "
                             "ids, sparse rows or named inputs (FeatureColumns, ConvTrunk, "
                             "TextTrunk).")
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x has shape {tuple(x.shape)}; the net expects (batch, "
                             f"{self.n_features}). Images, token ids and named inputs need "
                             "an encoder (ConvTrunk, TextTrunk, FeatureColumns) or a trunk.")
        if not x.is_floating_point():
            raise ValueError(f"x has dtype {x.dtype}; the net's first layer reads floats. "
                             "Integer ids need an embedding (FeatureColumns or TextTrunk as "
                             "the encoder).")

    def _encoder_config(self) -> dict:
        """The encoder's entry of the config (``{}`` without one)."""
        if self.encoder is None:
            return {}
        return {"encoder": module_config(self.encoder, "encoder")}


def module_config(module: nn.Module, what: str) -> dict:
    """``{"class": name, "config": {...}}`` of a registered encoder or trunk; a ValueError
    for any other module (it cannot be described in JSON)."""
    from .trunks import ENCODERS

    name = type(module).__name__
    if ENCODERS.get(name) is not type(module):
        raise ValueError(f"A net with a custom {what} ({name}) has no JSON config; save its "
                         "state_dict and rebuild the net in code (load_checkpoint(path, "
                         "net=...)).")
    return {"class": name, "config": module.config()}


def build_module(entry: Any, what: str) -> nn.Module:
    """The encoder or trunk a config entry describes (checked by the class's
    ``from_config``)."""
    from .trunks import ENCODERS

    if (not isinstance(entry, dict) or set(entry) != {"class", "config"}
            or entry["class"] not in ENCODERS):
        raise ValueError(f"{what} = {entry!r:.80} is not one of {sorted(ENCODERS)} with its "
                         "config")
    return ENCODERS[entry["class"]].from_config(entry["config"])


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
            if not _is_width(trunk_out):
                raise ValueError(f"trunk_out must be an int >= 1, got {trunk_out!r}.")
            return int(trunk_out)
        if _is_width(getattr(trunk, "out_features", None)):
            return int(trunk.out_features)
        if isinstance(trunk, nn.Sequential):
            for m in reversed(list(trunk)):
                if _is_width(getattr(m, "out_features", None)):
                    return int(m.out_features)
                if not isinstance(m, _ELEMENTWISE):
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


_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.ELU, nn.SiLU, nn.LeakyReLU, nn.Sigmoid, nn.Dropout,
                nn.BatchNorm1d, nn.LayerNorm, nn.Identity)


class _Gate(nn.Module):
    """Softmax weights over experts from the input of the level: softmax(G x [+ c])."""

    def __init__(self, in_features: int, n_experts: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, n_experts, bias=bias)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=-1)


def _gate_bias(gate_bias: Any) -> bool:
    return check_option("gate_bias", gate_bias, "bool",
                        fix="True adds a bias c to every gate, False is the paper's form")


def _mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Σ_k gate_k e_k: gate (B, K), experts (B, K, d) -> (B, d)."""
    return torch.einsum("bk,bkd->bd", gate, experts)


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
    (a new task's head on a conv trunk, tests/test_deep_transfer.py, seeds 0-4: test
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

    def __init__(self, n_features: int | None = None, tasks: Any = None, n_experts: int = 4,
                 *, expert_hidden: Sequence[int] = (64,), tower_hidden: Sequence[int] = (32,),
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 gate_bias: bool = False, encoder: nn.Module | None = None):
        super().__init__(n_features, tasks, encoder)
        if self.in_width is None:
            raise ValueError("MMoE needs n_features (the width of x) or an encoder.")
        if int(n_experts) < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts!r}.")
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        self.experts = nn.ModuleList(mlp(self.in_width, expert_hidden, **kw)
                                     for _ in range(int(n_experts)))
        gate_bias = _gate_bias(gate_bias)
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
            return self.towers.rows(_mix(self.gates.rows(z, rows), e), rows)
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

    def input_layers(self) -> list[nn.Linear]:
        return [first_linear(e) for e in self.experts] + self.gates.linears()

    def _shared_modules(self) -> list[nn.Module]:
        return [self.experts]

    def _task_params(self, task: str) -> list[nn.Parameter]:
        i = self._task_pos[task]
        gate = self.gates.blocks[int(self.gates.block_of[i])]
        return list(gate.parameters()) + self.towers.task_parameters(task)


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
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v!r}.")
        if not len(expert_hidden):
            raise ValueError("expert_hidden needs at least one layer width.")
        kw = dict(activation=activation, dropout=dropout, batch_norm=batch_norm)
        gate_bias = _gate_bias(gate_bias)
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
                t: _Gate(inp, int(n_task_experts) + int(n_shared_experts), gate_bias)
                for t in self.task_names}))
            if level < int(n_levels) - 1:
                self.shared_gates.append(
                    _Gate(inp, T * int(n_task_experts) + int(n_shared_experts), gate_bias))
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

    def _levels(self, x: torch.Tensor, selected: list[str]) -> dict[str, torch.Tensor]:
        """The towers of ``selected`` on the encoded batch ``x``."""
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
        z = torch.stack([h_task[t] for t in selected], dim=1)
        return self.towers.select(z, selected)

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


#: Net classes by name (the ``net`` field of a saved config).
NETS: dict[str, type[MultiTaskNet]] = {"HardSharing": HardSharing, "MMoE": MMoE, "CGC": CGC,
                                       "PLE": PLE}
