"""Checkpoints: a folder with ``model.pt`` (the state_dict) and ``config.json`` (the net).

The weights are read with ``torch.load(weights_only=True)``: a checkpoint cannot run code. Nothing
in a checkpoint is trusted: the config is checked in full (names, types, ranges), the state dict
is read first (memory-mapped, so nothing is allocated from sizes the file declares) and its tensor
shapes are compared with those the config builds (on the ``meta`` device: no memory) before the
net is built. Every tensor must be dense inside its own bytes of the file (no stride 0, no
shared or overlapping storage), so the sizes the config may declare are bounded by the file's
size; both files must be regular files (not ``/dev/zero`` or a FIFO); every target scale must
be finite and > 0, and equal to the ``y_scale_`` a saved regressor's config records. Every
refusal is a ``ValueError`` that names the file.

Checkpoints of earlier releases, whose heads, towers and gates were one module per task (keys
``heads.<task>.<i>.weight``, ``gates.<task>.linear.weight``), load too: their tensors are
checked against that layout (names and shapes, before anything is built), then stacked into the
batched parameters of :mod:`regmtl.deep.heads` in the order of the net's task list. The gates
of MMoE, CGC and PLE had a bias before the ``gate_bias`` option existed (its default is now the
papers' gates, without one): a config that lacks the option rebuilds the net with
``gate_bias=True``, so such checkpoints load and predict as they were saved.
"""

from __future__ import annotations

import json
import math
import warnings
import zipfile
from pathlib import Path
from typing import Any

from .._version import __version__
from ..serialization import CONFIG_FILE, MAX_JSON_BYTES, read_json, regular_size
from ._torch import torch
from .conversion import find_stack_level
from .heads import ACTIVATIONS, TaskGates, TaskHeads
from .nets import NETS, MultiTaskNet, build_module
from .tasks import KINDS, TaskSpec

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = 1
WEIGHTS, CONFIG = "model.pt", CONFIG_FILE
_RESERVED = ("format", "regmtl_version", "net", "net_config")
_MAX_CONFIG_BYTES = MAX_JSON_BYTES

# the options of each net's config: "count" an int >= 1, "widths" a list of them ("widths+"
# non-empty), "activation" a name, "dropout" a number in [0, 1), "bool" a boolean
_COMMON = {"activation": "activation", "dropout": "dropout", "batch_norm": "bool",
           "encoder": "module"}
_EXPERTS = {"expert_hidden": "widths+", "tower_hidden": "widths", "gate_bias": "bool",
            **_COMMON}
_NET_OPTIONS = {
    "HardSharing": {"hidden": "widths", "head_hidden": "widths", "trunk": "module", **_COMMON},
    "MMoE": {"n_experts": "count", **_EXPERTS},
    "CGC": {"n_shared_experts": "count", "n_task_experts": "count", **_EXPERTS},
    "PLE": {"n_levels": "count", "n_shared_experts": "count", "n_task_experts": "count",
            **_EXPERTS},
    "ESMM": {"hidden": "widths", "tower_hidden": "widths", **_COMMON},
}
_DEFAULTS = {"hidden": [64, 32], "n_experts": 4, "n_levels": 2, "expert_hidden": [64],
             "tower_hidden": [32]}
_SPEC_KEYS = {"name", "kind", "n_outputs", "loss", "metrics", "weight", "missing_labels"}


def save_checkpoint(path: str | Path, net: MultiTaskNet, extra: dict | None = None) -> Path:
    """Write ``net``'s weights and config into the folder ``path`` (created if needed).

    The folder gets ``model.pt`` (the ``state_dict``, on the CPU) and ``config.json`` (the
    checkpoint format, the regmtl version, the net's class and constructor arguments, and
    ``extra``). A net whose config cannot be written (a custom trunk, a callable loss) gets
    its weights saved and ``"net": null``; load it with ``load_checkpoint(path, net=...)``.
    Existing files are overwritten.

    Parameters
    ----------
    path : str or path-like
        The folder.
    net : MultiTaskNet
        The net to save.
    extra : dict, optional
        JSON-able entries stored in the config (epoch, metric, ...); they cannot be named
        ``format``, ``regmtl_version``, ``net`` or ``net_config``.

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    ValueError
        If ``extra`` uses one of the names the checkpoint itself writes.

    See Also
    --------
    regmtl.deep.load_checkpoint : Reads it back.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from regmtl.deep import HardSharing, save_checkpoint
    >>> net = HardSharing(4, ["a", "b"], hidden=(8,))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = save_checkpoint(Path(tmp) / "best", net, extra={"epoch": 3})
    ...     sorted(f.name for f in folder.iterdir())
    ['config.json', 'model.pt']
    """
    clash = sorted(set(extra or {}) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra: {clash} are written by the checkpoint itself; use other "
                         "names.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        net_config: Any = net.config()
    except ValueError:
        net_config = None
    config = {"format": FORMAT, "regmtl_version": __version__,
              "net": type(net).__name__ if net_config is not None else None,
              "net_config": net_config, **(extra or {})}
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(state, path / WEIGHTS)
    (path / CONFIG).write_text(json.dumps(config, indent=2))
    return path


def read_config(path: str | Path) -> dict:
    """The checked ``config.json`` of the checkpoint folder ``path`` (format and size)."""
    path = Path(path)
    if not (path / CONFIG).exists() or not (path / WEIGHTS).exists():
        raise FileNotFoundError(f"{path} is not a regmtl checkpoint (it needs {WEIGHTS} and "
                                f"{CONFIG}).")
    regular_size(path / WEIGHTS)
    config = read_json(path / CONFIG, "a checkpoint config", _MAX_CONFIG_BYTES)
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise ValueError(f"{path / CONFIG} is not a regmtl checkpoint config (no format).")
    if fmt > FORMAT:
        raise ValueError(f"{path / CONFIG}: checkpoint format {fmt} is newer "
                         f"than this regmtl reads ({FORMAT}); upgrade regmtl.")
    return config


# ---------------------------------------------------------------------- the weights
def read_state(file: Path, map_location: Any = "cpu",
               finite: bool = True) -> dict[str, torch.Tensor]:
    """The state dict in ``file``, read with ``weights_only=True`` and memory-mapped.

    The archive is checked first (a readable zip of stored members within the file's size), so
    a truncated, corrupt or inflated file is refused before torch reads it. ``finite``: refuse
    floating-point tensors holding NaN or infinite values (a training state holds such
    values by design: NaN metrics in its history, a weighting's unset losses).
    """
    size = regular_size(file)
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{file} is not a readable state_dict ({exc}); it may be truncated or "
                         "corrupted.") from None
    if (any(i.compress_type != zipfile.ZIP_STORED for i in infos)
            or sum(i.file_size for i in infos) > size):
        raise ValueError(f"{file} is not a state_dict written by torch.save: its members are "
                         "compressed or declare more bytes than the file holds.")
    try:
        state = torch.load(file, map_location=map_location, weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many kinds of errors on a corrupt file
        raise ValueError(f"{file} is not a readable state_dict ({type(exc).__name__}: "
                         f"{str(exc)[:300]}); it may be truncated or corrupted.") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{file} does not hold a state_dict (a dict of named tensors).")
    for k, v in state.items():
        if v.layout != torch.strided or v.is_quantized or v.is_complex():
            raise ValueError(f"{file}: tensor {k!r} is not a plain dense tensor.")
    _check_storage(state, file)
    for k, v in state.items():
        if finite and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{file}: tensor {k!r} holds NaN or infinite values; the net "
                             "would predict them.")
    return state


def _dense(v: torch.Tensor) -> bool:
    """Whether ``v`` is its ``numel`` elements laid out densely in some order of its axes (a
    contiguous tensor, or a permutation of one such as ``w.t()``): no stride 0, no overlap."""
    expected = 1
    for st, n in sorted((st, n) for st, n in zip(v.stride(), v.shape, strict=True) if n > 1):
        if st != expected:
            return False
        expected *= n
    return True


def _check_storage(state: dict[str, torch.Tensor], file: Path) -> None:
    """Every tensor is dense (contiguous up to the order of its axes) and lies inside its own
    storage, and no two overlap: the weights are exactly bytes the file holds, so
    ``sum(numel)`` (which bounds every size of the config) is at most the file's size. A
    stride-0 tensor (``torch.zeros(1).expand(n)``, saved as one number) or views over one
    shared storage are refused, before any value is read."""
    spans: dict[int, list[tuple[int, int, str]]] = {}
    for k, v in state.items():
        size = v.element_size()
        start = v.storage_offset() * size
        end = start + v.numel() * size
        if not _dense(v) or v.storage_offset() < 0 or end > v.untyped_storage().nbytes():
            raise ValueError(
                f"{file}: tensor {k!r} of shape {tuple(v.shape)} is not a dense tensor "
                f"inside its storage (strides {v.stride()}, storage of "
                f"{v.untyped_storage().nbytes()} bytes): its shape declares more weights than "
                "the file holds; save_checkpoint writes each tensor as its own bytes.")
        if v.numel():
            spans.setdefault(v.untyped_storage().data_ptr(), []).append((start, end, k))
    for parts in spans.values():
        parts.sort()
        for (_, end, a), (start, _, b) in zip(parts, parts[1:], strict=False):
            if start < end:
                raise ValueError(f"{file}: tensors {a!r} and {b!r} share the same bytes; "
                                 "each tensor of a state_dict holds its own weights.")


def _check_target_scales(state: dict, tasks: list[str], config: dict, file: Path) -> None:
    r"""The target maps :math:`y = \sigma h + \mu` of the state dict: every scale
    :math:`\sigma` finite and > 0, and equal to the ``y_scale_`` (and :math:`\mu` to the
    ``y_mean_``) a saved regressor's config records for its tasks, unless the net's maps are
    all the identity (a net saved before it held them: the estimator sets them from those)."""
    for k, v in state.items():
        if k.startswith("target_scales.") and k.endswith(".scale") and bool((v <= 0).any()):
            raise ValueError(f"{file}: tensor {k!r} holds the target scale "
                             f"{v.flatten().tolist()[:5]}; a target scale is finite and > 0 "
                             "(the standard deviation of the task's training targets).")
    est = config.get("estimator")
    attrs = est.get("attributes") if isinstance(est, dict) else None
    if not isinstance(attrs, dict):
        return
    maps = {}  # by task position: a count task has no map (its target is not standardized)
    for i, t in enumerate(tasks):
        mean, scale = (state.get(f"target_scales.{t}.{b}") for b in ("mean", "scale"))
        if mean is None and scale is None and any(k.startswith("target_scales.")
                                                  for k in state):
            continue
        if mean is None or scale is None or mean.numel() != 1 or scale.numel() != 1:
            return  # a classifier's or an older net's: the estimator's checks apply
        maps[i] = (float(mean.flatten()[0]), float(scale.flatten()[0]))
    if all(m == 0.0 and s == 1.0 for m, s in maps.values()):
        return
    for j, name in ((0, "y_mean_"), (1, "y_scale_")):
        spec = attrs.get(name)
        values = spec.get("values") if isinstance(spec, dict) else None
        if not (isinstance(values, list) and len(values) == len(tasks)
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        for x in values)):
            continue  # absent or malformed: the estimator's own check refuses the latter
        for t, got, rec in ((tasks[i], m[j], values[i]) for i, m in maps.items()):
            if not math.isclose(got, float(rec), rel_tol=1e-12, abs_tol=0.0):
                b = ("mean", "scale")[j]
                raise ValueError(
                    f"{file}: tensor 'target_scales.{t}.{b}' is {got!r}, but "
                    f"{file.parent / CONFIG} records {name} = {float(rec)!r} for task {t!r}; "
                    "the file was modified, so the net would not predict what was saved.")


def _compare(state: dict, want: dict, what: str, file: Path) -> None:
    """The tensors of ``state`` have the names, shapes and kinds of those of ``want``."""
    n_file = sum(v.numel() for v in state.values())
    n_want = sum(v.numel() for v in want.values())
    counts = f"{what} has {n_want} weights in {len(want)} tensors, the file {n_file} in " \
             f"{len(state)}"
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    # nets saved before they held their target scales load them as the identity
    missing = [k for k in missing if not k.startswith("target_scales.")]
    if missing or extra:
        raise ValueError(f"{file} does not fit {what}: missing tensors {missing[:5]}, "
                         f"unexpected tensors {extra[:5]} ({counts}).")
    for k, w in want.items():
        if k not in state:
            continue
        got = state[k]
        if tuple(got.shape) != tuple(w.shape) or got.is_floating_point() != w.is_floating_point():
            raise ValueError(f"{file} does not fit {what}: tensor {k!r} has shape "
                             f"{tuple(got.shape)} ({got.dtype}); {what} has {tuple(w.shape)} "
                             f"({w.dtype}) ({counts}).")


# ---------------------------------------------------------------------- the config
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_option(name: str, value: Any, kind: str, cap: int) -> None:
    """One net option against its kind; every size at most ``cap`` (the weights in the file)."""
    ok = True
    if kind == "count":
        ok = _is_int(value) and 1 <= value <= cap
    elif kind.startswith("widths"):
        ok = (isinstance(value, list) and len(value) <= cap
              and all(_is_int(h) and 1 <= h <= cap for h in value)
              and (kind == "widths" or len(value) > 0))
    elif kind == "activation":
        ok = isinstance(value, str) and value in ACTIVATIONS
    elif kind == "dropout":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and 0.0 <= value < 1.0
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "module":  # an encoder or trunk: its class's from_config checks it in full
        with torch.device("meta"):
            build_module(value, name)
    if not ok:
        raise ValueError(f"{name} = {value!r:.80} is not a valid value ({kind}, sizes at most "
                         f"the {cap} weights of the state_dict)")


def checked_task_specs(tasks: Any, cap: int) -> list[TaskSpec]:
    """The task specs of a saved config (dicts of known keys), checked: at most ``cap``."""
    if not isinstance(tasks, list) or not 1 <= len(tasks) <= cap:
        raise ValueError("tasks must be a non-empty list of task specs")
    specs = []
    for t in tasks:
        if not isinstance(t, dict) or not set(t) <= _SPEC_KEYS or "name" not in t:
            raise ValueError(f"task {t!r:.80} is not a task spec (keys {sorted(_SPEC_KEYS)})")
        n = t.get("n_outputs")
        if (not isinstance(t["name"], str) or t.get("kind", "regression") not in KINDS
                or not (n is None or (_is_int(n) and 1 <= n <= cap))
                or not (isinstance(t.get("loss"), (str, type(None)))
                        or (isinstance(t["loss"], list) and len(t["loss"]) == 2
                            and isinstance(t["loss"][0], str)))
                or not (t.get("metrics") is None or (isinstance(t["metrics"], list)
                                                     and all(isinstance(m, str)
                                                             for m in t["metrics"])))
                or isinstance(t.get("weight", 1.0), bool)
                or not isinstance(t.get("weight", 1.0), (int, float))
                or t.get("missing_labels", "allow") not in ("allow", "refuse")):
            raise ValueError(f"task {t!r:.80} has a value of the wrong type or range")
        specs.append(TaskSpec.from_config(t))
    return specs


def _mlp_layers(widths: list, batch_norm: bool) -> int:
    return len(widths) * (2 if batch_norm else 1)


def _layers(name: str, kw: dict) -> int:
    """How many Linear and BatchNorm layers the config builds (each holds >= 1 tensor)."""
    T, bn = len(kw["tasks"]), kw.get("batch_norm", False)
    head_hidden = (kw.get("head_hidden", []) if name == "HardSharing"
                   else kw.get("tower_hidden", _DEFAULTS["tower_hidden"]))
    head = _mlp_layers(head_hidden, False) + 1  # batched: one block at least
    if name == "HardSharing":
        if "trunk" in kw:
            return head
        return _mlp_layers(kw.get("hidden", _DEFAULTS["hidden"]), bn) + head
    if name == "ESMM":  # a bottom and two towers
        return _mlp_layers(kw.get("hidden", [64]), bn) + head
    expert = _mlp_layers(kw.get("expert_hidden", _DEFAULTS["expert_hidden"]), bn)
    if name == "MMoE":
        return kw.get("n_experts", _DEFAULTS["n_experts"]) * expert + 1 + head
    levels = kw.get("n_levels", _DEFAULTS["n_levels"]) if name == "PLE" else 1
    per_level = (kw.get("n_shared_experts", 2) + T * kw.get("n_task_experts", 1)) * expert + T
    return levels * per_level + levels - 1 + head


def check_net_config(name: Any, kw: Any, state: dict, where: Path) -> tuple[type, dict]:
    """The net class and constructor arguments of a config, checked in full against the
    state dict it must fit: no size may exceed what the file holds."""
    if name not in NETS or not isinstance(kw, dict):
        raise ValueError(f"{where}: net {name!r:.80} is not one of {sorted(NETS)}")
    cap = max(1, sum(v.numel() for v in state.values()))
    options = _NET_OPTIONS[name]
    unknown = sorted(set(kw) - set(options) - {"n_features", "tasks"})
    try:
        if unknown:
            raise ValueError(f"unknown options {unknown[:5]} for {name}")
        reads = "encoder" in kw or "trunk" in kw  # then n_features may be None
        if not ((reads and kw.get("n_features") is None)
                or (_is_int(kw.get("n_features")) and 1 <= kw["n_features"] <= cap)):
            raise ValueError(f"n_features = {kw.get('n_features')!r:.40} is not an integer in "
                             f"1..{cap} (the weights of the state_dict)")
        for opt, value in kw.items():
            if opt in options:
                _check_option(opt, value, options[opt], cap)
        specs = checked_task_specs(kw.get("tasks"), cap)
        if _layers(name, kw) > len(state):
            raise ValueError(f"the config builds {_layers(name, kw)} layers, the state_dict "
                             f"holds {len(state)} tensors")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where / CONFIG} is not a valid net config: {exc}.") from None
    if "gate_bias" in options and "gate_bias" not in kw:
        kw = {**kw, "gate_bias": True}  # saved before the option: the gates had a bias
    return NETS[name], {**kw, "tasks": specs}


def _build(cls: type, kw: dict) -> MultiTaskNet:
    """``cls(**kw)`` with its encoder and trunk built from their config entries."""
    kw = {k: build_module(v, k) if k in ("encoder", "trunk") else v for k, v in kw.items()}
    return cls(**kw)


def _meta_net(cls: type, kw: dict, where: Path) -> MultiTaskNet:
    """``cls(**kw)`` built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            return _build(cls, kw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where / CONFIG} is not a valid net config: {exc}.") from None


# ---------------------------------------------------------------------- the per-task layout
# Earlier releases held each task's head (tower) as an ``nn.Sequential`` of the MLP layers
# ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` per hidden width, then a Linear, and
# each MMoE gate as a module with one ``linear``; their state dicts name every task.
_BN_BUFFERS = ("weight", "bias", "running_mean", "running_var")
_BN_EPS = 1e-5  # BatchNorm1d's default, which the per-task heads used


def _blocks(mod: TaskHeads | TaskGates) -> list[list[str]]:
    """The tasks of each block of ``mod``, in the order of their rows in the block."""
    if mod.block_of.device.type != "meta":
        pairs = sorted(zip(mod.block_of.tolist(), mod.local.tolist(), mod.names, strict=True))
        out: list[list[str]] = [[] for _ in mod.blocks]
        for b, _, name in pairs:
            out[b].append(name)
        return out
    # on the meta device the index cannot be read: a net just built from its config has the
    # gates in one block and the heads in one block per output width. This gives the shapes
    # the file must have; the order of the rows is read from the net built after the check.
    if isinstance(mod, TaskGates):
        return [list(mod.names)]
    widths = [blk.n_outputs for blk in mod.blocks]
    return [[n for n, k in zip(mod.names, mod.n_outputs, strict=True) if k == w] for w in widths]


def _batched(net: MultiTaskNet) -> list[tuple[str, TaskHeads | TaskGates]]:
    """The net's batched heads and gates with their state-dict prefixes."""
    return [(name + ".", m) for name, m in net.named_modules()
            if isinstance(m, (TaskHeads, TaskGates))]


def _is_per_task(state: dict, net: MultiTaskNet, want: dict) -> bool:
    """Whether ``state`` holds the net's heads in the per-task layout: none of the batched
    tensors, but tensors under their prefixes."""
    prefixes = tuple(p for p, _ in _batched(net))
    if not prefixes:
        return False
    batched = {k for k in want if k.startswith(prefixes)}
    return not (batched & set(state)) and any(k.startswith(prefixes) for k in state)


def _per_task_plan(net: MultiTaskNet) -> tuple[dict[str, torch.Tensor], list[tuple]]:
    """The per-task layout of ``net``'s heads and gates: the tensors an earlier release saved
    (empty, on the meta device: names, shapes, dtypes), and how they stack into the batched
    ones.

    Each plan entry is ``(gate, weight key, bias key, [(old weight, old bias, bn) by task])``:
    a gate's block concatenates its tasks' rows (row t K + k), a head's layer stacks its tasks'
    transposed weights (T_b, in, out) and biases; ``bn`` is the prefix of the batch norm that
    followed the layer (folded into it), or None.
    """
    bn = bool(getattr(net, "_config", {}).get("batch_norm", False))
    old: dict[str, torch.Tensor] = {}
    plan: list[tuple] = []

    def expect(key: str, shape: tuple, dtype: torch.dtype = torch.float32) -> None:
        old[key] = torch.empty(shape, dtype=dtype, device="meta")

    for prefix, mod in _batched(net):
        for b, (blk, members) in enumerate(zip(mod.blocks, _blocks(mod), strict=True)):
            if isinstance(mod, TaskGates):
                parts, biased = [], blk.bias is not None
                for t in members:
                    w, c = f"{prefix}{t}.linear.weight", f"{prefix}{t}.linear.bias"
                    expect(w, (mod.n_experts, blk.weight.shape[1]))
                    if biased:
                        expect(c, (mod.n_experts,))
                    parts.append((w, c if biased else None, None))
                plan.append((True, f"{prefix}blocks.{b}.weight",
                             f"{prefix}blocks.{b}.bias" if biased else None, parts))
                continue
            # the Sequential's layers per hidden width: Linear, [BatchNorm1d], act, [Dropout]
            stride = 2 + bn + isinstance(mod.drop, torch.nn.Dropout)
            for layer in range(blk.n_layers):
                n_in, n_out = blk.weights[layer].shape[1:]
                idx = layer * stride
                norm = bn and layer < blk.n_layers - 1
                parts = []
                for t in members:
                    w, c = f"{prefix}{t}.{idx}.weight", f"{prefix}{t}.{idx}.bias"
                    expect(w, (n_out, n_in))
                    expect(c, (n_out,))
                    if norm:
                        for name in _BN_BUFFERS:
                            expect(f"{prefix}{t}.{idx + 1}.{name}", (n_out,))
                        expect(f"{prefix}{t}.{idx + 1}.num_batches_tracked", (), torch.int64)
                    parts.append((w, c, f"{prefix}{t}.{idx + 1}." if norm else None))
                plan.append((False, f"{prefix}blocks.{b}.weight{layer}",
                             f"{prefix}blocks.{b}.bias{layer}", parts))
    return old, plan


def _fold(weight: torch.Tensor, bias: torch.Tensor, state: dict, bn: str, file: Path
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """A Linear (out, in) followed by a batch norm in evaluation mode, as one Linear."""
    d = torch.float64
    var = state[bn + "running_var"].to(d)
    if bool((var < 0).any()):
        raise ValueError(f"{file}: tensor {bn + 'running_var'!r} holds a negative variance.")
    s = state[bn + "weight"].to(d) / torch.sqrt(var + _BN_EPS)
    w = weight.to(d) * s[:, None]
    c = (bias.to(d) - state[bn + "running_mean"].to(d)) * s + state[bn + "bias"].to(d)
    return w.to(weight.dtype), c.to(bias.dtype)


def _check(state: dict, net: MultiTaskNet, want: dict, what: str, file: Path) -> bool:
    """The tensors of ``state`` have the names and shapes of ``net``'s (``want``), or of its
    per-task layout; whether they are in that layout."""
    if not _is_per_task(state, net, want):
        _compare(state, want, what, file)
        return False
    old, _ = _per_task_plan(net)
    prefixes = tuple(p for p, _ in _batched(net))
    others = {k: v for k, v in want.items() if not k.startswith(prefixes)}
    _compare(state, {**others, **old}, f"{what} (heads in the per-task layout of earlier "
             "releases)", file)
    return True


def _from_per_task(state: dict, net: MultiTaskNet, file: Path) -> dict[str, torch.Tensor]:
    """``state`` (checked by :func:`_check`) with the per-task heads and gates
    stacked into the batched ones of ``net``, in the order of its index."""
    old, plan = _per_task_plan(net)
    out = {k: v for k, v in state.items() if k not in old}
    folded = False
    for gate, weight_key, bias_key, parts in plan:
        if gate:
            out[weight_key] = torch.cat([state[w] for w, _, _ in parts])
            if bias_key is not None:
                out[bias_key] = torch.cat([state[c] for _, c, _ in parts])
            continue
        weights, biases = [], []
        for w, c, bn in parts:
            w, c = state[w], state[c]
            if bn is not None:
                w, c = _fold(w, c, state, bn, file)
                folded = True
            weights.append(w.t())
            biases.append(c)
        out[weight_key] = torch.stack(weights).contiguous()
        out[bias_key] = torch.stack(biases)
    if folded:
        warnings.warn(f"{file}: the heads of this checkpoint (an earlier release) had batch "
                      "normalization after their hidden layers; heads have none now, so each "
                      "was folded into the linear layer before it with its saved statistics. "
                      "The outputs are the saved net's in evaluation mode; training further "
                      "trains heads without batch normalization.", UserWarning,
                      stacklevel=find_stack_level())
    return out


def _fill(net: MultiTaskNet, state: dict, per_task: bool, want: dict, what: str,
          file: Path) -> MultiTaskNet:
    """``net`` with the weights of ``state`` (checked), converted from the per-task layout
    first when it is in it."""
    if per_task:
        state = _from_per_task(state, net, file)
        _compare(state, want, what, file)
    return _restore(net, state, file)


def _restore(net: MultiTaskNet, state: dict, file: Path) -> MultiTaskNet:
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{file} does not fit the net: {str(exc)[:300]}.") from None
    return net


def load_net(path: Path, config: dict, net: MultiTaskNet | None,
             map_location: Any = "cpu") -> MultiTaskNet:
    """The net of a checkpoint whose config was read by :func:`read_config`."""
    file = path / WEIGHTS
    if net is None:
        name = config.get("net")
        if name not in NETS:
            raise ValueError(f"{path}: the saved net ({name!r:.80}) cannot be rebuilt from its "
                             "config; pass the net: load_checkpoint(path, net=...).")
        state = read_state(file, map_location)
        cls, kw = check_net_config(name, config.get("net_config"), state, path)
        meta = _meta_net(cls, kw, path)
        want, what = meta.state_dict(), f"the net of {path / CONFIG}"
        per_task = _check(state, meta, want, what, file)
        _check_target_scales(state, [t.name for t in meta.tasks], config, file)
        return _fill(_build(cls, kw), state, per_task, want, what, file)
    state = read_state(file, map_location)
    want, what = net.state_dict(), "the net given"
    per_task = _check(state, net, want, what, file)
    _check_target_scales(state, [t.name for t in net.tasks], config, file)
    return _fill(net, state, per_task, want, what, file)


def load_checkpoint(path: str | Path, net: MultiTaskNet | None = None,
                    map_location: Any = "cpu") -> MultiTaskNet:
    """The net saved in ``path``: rebuilt from its config, or ``net`` with the saved weights.

    The weights are read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
    Nothing in it is trusted: the config is checked in full, and the tensors of ``model.pt``
    are compared, names and shapes, with those the config builds (or ``net`` holds) before any
    net is built or any weight copied.

    A checkpoint of an earlier release, whose heads, towers and gates were one module per task,
    loads too: its tensors are checked against that layout, then stacked into the batched
    heads and gates in the order of the task list (exactly: the outputs are the saved net's).
    Heads that had batch normalization get it folded into their linear layers, with its
    saved statistics (a ``UserWarning``; heads have no batch normalization now).

    Parameters
    ----------
    path : str or path-like
        A folder written by :func:`~regmtl.deep.save_checkpoint`.
    net : MultiTaskNet, optional
        A net of the saved architecture to load the weights into (required when the config
        could not be saved, e.g. a custom trunk).
    map_location : str or torch.device, default="cpu"
        Where the tensors are loaded (as in ``torch.load``).

    Returns
    -------
    MultiTaskNet
        The net with the saved weights (``net`` itself when given).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a checkpoint folder.
    ValueError
        If the config is invalid or of a newer format, the net cannot be rebuilt from it and
        ``net`` is not given, ``model.pt`` is truncated or corrupt, or its tensors do not fit
        the config (or ``net``), are not dense in their own bytes (stride 0, shared storage),
        or hold a target scale that is not finite and > 0 (or not the config's ``y_scale_``);
        or a file of the folder is not a regular file; the message names the file.

    Examples
    --------
    >>> import tempfile
    >>> import torch
    >>> from regmtl.deep import MMoE, load_checkpoint, save_checkpoint
    >>> net = MMoE(4, ["a", "b"], n_experts=2, expert_hidden=(8,))
    >>> x = torch.randn(3, 4)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_checkpoint(tmp, net)
    ...     loaded = load_checkpoint(tmp)
    >>> type(loaded).__name__, loaded.task_names
    ('MMoE', ['a', 'b'])
    >>> torch.equal(net(x)["a"], loaded(x)["a"])
    True
    """
    return load_net(Path(path), read_config(path), net, map_location)
