r"""The base class of the multi-task nets (:class:`MultiTaskNet`: task specs, parameter groups,
target maps, config) and the pieces every net builds with (:func:`mlp`, the JSON entries of
encoders and trunks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..._options import check_option
from .._torch import torch
from ..heads import activation_module
from ..inputs import describe
from ..scaling import TargetScale
from ..tasks import TaskSpec, as_task_specs

nn = torch.nn

__all__ = ["MultiTaskNet", "mlp", "out_width", "first_linear", "is_width", "module_config",
           "build_module"]


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
    for i, h in enumerate(hidden):
        check_option(f"hidden[{i}]", h, "int", fix="hidden lists the layer widths, e.g. (64, 32).")
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


def is_width(v: Any) -> bool:
    """Whether ``v`` is a width: an int >= 1 (not a bool)."""
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

    #: The ``architecture`` of the scikit-learn wrappers that builds this net (None: none).
    architecture: str | None = None
    #: The net's keyword for each option of the wrappers that it reads (``hidden``,
    #: ``head_hidden``, ``n_experts``).
    estimator_options: dict[str, str] = {}

    @classmethod
    def for_estimator(cls, n_features: int | None, specs: list[TaskSpec],
                      **kw: Any) -> MultiTaskNet:
        """The net the scikit-learn wrappers build from their options.

        Parameters
        ----------
        n_features : int or None
            Width of the input (None with an ``encoder``).
        specs : list of TaskSpec
            The tasks.
        **kw
            The wrappers' ``hidden``, ``head_hidden`` and ``n_experts`` (passed under the
            net's keywords, :attr:`estimator_options`; the others dropped), ``activation``,
            ``dropout``, ``batch_norm`` and ``encoder`` (passed as they are).

        Returns
        -------
        MultiTaskNet
            A new net.
        """
        if cls.architecture is None:
            raise NotImplementedError(f"{cls.__name__} is not built by the wrappers.")
        wrapper = {"hidden", "head_hidden", "n_experts"}
        options = {mine: kw[theirs] for mine, theirs in cls.estimator_options.items()}
        return cls(n_features, specs, **options,
                   **{k: v for k, v in kw.items() if k not in wrapper})

    def __init__(self, n_features: int | None, tasks: Any, encoder: nn.Module | None = None):
        super().__init__()
        if tasks is None:
            raise ValueError("tasks is required: a list of task names or specs, or a dict "
                             "name -> kind.")
        if encoder is not None:
            if not isinstance(encoder, nn.Module) or not is_width(
                    getattr(encoder, "out_features", None)):
                raise ValueError("encoder must be a torch.nn.Module with an int attribute "
                                 "out_features (the width it returns), e.g. FeatureColumns, "
                                 f"ConvTrunk or TextTrunk; got {type(encoder).__name__}.")
        check_option("n_features", n_features, "int", low=1, none=True,
                     fix="It is the width of x (None with an encoder).")
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
        # (a gather, not ``stacked[arange(B), rows]``: a traced graph keeps its batch axis free)
        return stacked.gather(1, rows.reshape(-1, 1, 1).expand(-1, 1, width)).squeeze(1)

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
    from ..trunks import ENCODERS

    name = type(module).__name__
    if ENCODERS.get(name) is not type(module):
        raise ValueError(f"A net with a custom {what} ({name}) has no JSON config; save its "
                         "state_dict and rebuild the net in code (load_checkpoint(path, "
                         "net=...)).")
    return {"class": name, "config": module.config()}


def build_module(entry: Any, what: str) -> nn.Module:
    """The encoder or trunk a config entry describes (checked by the class's
    ``from_config``)."""
    from ..trunks import ENCODERS

    if (not isinstance(entry, dict) or set(entry) != {"class", "config"}
            or entry["class"] not in ENCODERS):
        raise ValueError(f"{what} = {entry!r:.80} is not one of {sorted(ENCODERS)} with its "
                         "config")
    return ENCODERS[entry["class"]].from_config(entry["config"])
