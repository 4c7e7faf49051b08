r"""The whole state of a fit at the end of an epoch, so that a fit resumed from it continues
as the uninterrupted one does (bit for bit on the CPU).

A :class:`TrainingState` holds the net's weights; the optimizer's moments and step counts; the
weighting's state (:meth:`~regmtl.deep.Weighting.training_state`: buffers, parameters, random
generator, declared attributes); the early-stopping record and the best weights held in
memory; the weights the divergence watch may restore; the history so far; every random stream
of each rank (Python's ``random``, NumPy's global state, torch's CPU generator, the CUDA
generator of the rank's device, a loader's sampler generator) and the position of each per-task
stream of the dict-of-tasks form (:class:`~regmtl.deep.data.Cycle`); the epochs and steps run;
the loss scales :math:`c_t` measured at the start; under float16 loss scaling the gradient
scaler's state. The target maps are in the net's weights. The order of a
:class:`~regmtl.deep.Batches` pass is fixed by its seed and the epoch, so it needs no state.

On disk it is two files in a folder: ``training_state.pt`` (named tensors only, written by
``torch.save``, read with ``torch.load(weights_only=True)`` memory-mapped: no pickle, nothing
executable; Python's and NumPy's random states are stored as integers) and
``training_state.json`` (counts, names, the history's columns, the optimizer's non-tensor
values and the SHA-256 digest of the tensor file). Reading checks, before any weight is loaded:
both are regular files, the JSON within its bound, the tensor file no larger than the net,
optimizer and weighting of the fit can need
(:func:`~regmtl.deep.training_state.state_bytes_limit`) and with the recorded digest, every
tensor dense in its own bytes; then every name, shape and count against the net, the optimizer
and the weighting resuming it. Every refusal is a ``ValueError`` naming the file and what
differs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._options import check_option
from .._version import __version__
from ..serialization import MAX_JSON_BYTES, read_json, regular_size
from ._torch import torch
from .checkpoint import read_state, save_checkpoint
from .conversion import find_stack_level

__all__ = ["TrainingState", "FitParts", "STATE_FILE", "STATE_META", "save_training_state",
           "read_training_state", "state_bytes_limit", "load_model_state", "open_state",
           "resume_source", "check_save_state", "recorded_options"]

Tensor = torch.Tensor

#: The tensor file and the JSON file of a training state, in its folder.
STATE_FILE, STATE_META = "training_state.pt", "training_state.json"
#: The format of the files this release writes.
STATE_FORMAT = 1
_KIND = "regmtl training state"
# the tensors of a training state, by the prefix of their names
_PREFIXES = ("net.", "best.", "watch.initial.", "watch.fallback.", "optim.", "weighting.",
             "rng.")
_SINGLE = ("history", "history_present", "loss_scale")


@dataclass
class TrainingState:
    """The whole state of a fit at the end of an epoch (see the module's docstring).

    Made by the trainer (``Trainer(save_state=...)``, kept as ``trainer.state_``) and taken by
    ``Trainer.fit(..., resume=...)``.

    Attributes
    ----------
    tensors : dict of str to Tensor
        The named tensors (CPU).
    meta : dict
        The JSON-able rest: counts, names, the history's columns, the records.
    """

    tensors: dict[str, Tensor]
    meta: dict

    @property
    def epoch(self) -> int:
        """The epochs run (the next one resumed is ``epoch + 1``, from 1)."""
        return int(self.meta["epoch"])

    @property
    def stopped(self) -> bool:
        """Whether early stopping ended the fit after :attr:`epoch`."""
        return bool(self.meta["stopped"])


def _own(v: Tensor) -> Tensor:
    """A detached CPU copy of ``v`` in its own dense storage."""
    return v.detach().cpu().clone(memory_format=torch.contiguous_format)


def _sampler_generators(loaders: dict) -> list[torch.Generator]:
    """The generators of the loaders' samplers (a DataLoader's ``generator`` or its
    sampler's), in the order of ``loaders``; absent ones are skipped."""
    out = []
    for loader in loaders.values():
        for holder in (loader, getattr(loader, "sampler", None)):
            gen = getattr(holder, "generator", None)
            if isinstance(gen, torch.Generator) and gen.device.type == "cpu":
                out.append(gen)
                break
    return out


def _rng_tensors(device: torch.device, samplers: list[torch.Generator]) -> dict[str, Tensor]:
    """This process's random streams as tensors (integers for Python's and NumPy's)."""
    version, keys, gauss = random.getstate()
    out = {"python": torch.tensor([version, *keys], dtype=torch.int64),
           "python_gauss": torch.tensor([float(gauss is not None), gauss or 0.0],
                                        dtype=torch.float64)}
    _, mt, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the global state
    out["numpy"] = torch.from_numpy(np.concatenate([np.asarray(mt, dtype=np.int64),
                                                    [int(pos), int(has_gauss)]]))
    out["numpy_gauss"] = torch.tensor([float(cached)], dtype=torch.float64)
    out["torch"] = torch.get_rng_state()
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    for i, gen in enumerate(samplers):
        out[f"sampler{i}"] = gen.get_state()
    return out


def _set_rng(t: dict[str, Tensor], device: torch.device, samplers: list[torch.Generator],
             where: str) -> None:
    """Restore the random streams of :func:`_rng_tensors`."""
    try:
        py = [int(x) for x in t["python"].tolist()]
        flag, gauss = t["python_gauss"].tolist()
        random.setstate((py[0], tuple(py[1:]), gauss if flag else None))
        mt = t["numpy"].tolist()
        np.random.set_state(("MT19937", np.asarray(mt[:-2], dtype=np.uint32),  # noqa: NPY002
                             int(mt[-2]), int(mt[-1]), float(t["numpy_gauss"][0])))
        torch.set_rng_state(t["torch"].to(torch.uint8))
        if device.type == "cuda" and "cuda" in t:
            torch.cuda.set_rng_state(t["cuda"].to(torch.uint8), device)
        for i, gen in enumerate(samplers):
            gen.set_state(t[f"sampler{i}"].to(torch.uint8))
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise ValueError(f"{where}: a random stream of the state cannot be restored "
                         f"({str(exc)[:200]}); the file was modified.") from None


@dataclass
class FitParts:
    """The objects of a fit whose state a :class:`TrainingState` holds.

    Attributes
    ----------
    net, optimizer, weighting, ctx
        The net, its optimizer, the weighting and where the fit runs.
    scaler : GradScaler or None
        Float16 loss scaling.
    monitor : Monitor or None
        The early-stopping record.
    watch : DivergenceWatch or None
        The divergence watch.
    streams : dict of str to Cycle
        The per-task streams of the dict-of-tasks form.
    loaders : dict
        The training loaders (their samplers' generators).
    options : dict
        The trainer's options recorded with the state (a resumed fit differing in one is
        warned about).
    folder : path or None
        The trainer's ``checkpoint_dir``: the best weights (and with ``save_state=True`` the
        training state) are written there.
    save_state : bool or "memory"
        The trainer's option.
    max_epochs : int
        The last epoch of the fit.
    state : TrainingState or None
        The last state kept (the one resumed from, until an epoch ends).
    steps : int
        Optimizer steps run so far.
    best_state : dict or None
        The best weights by the monitor (a state dict), kept in memory.
    """

    net: Any
    optimizer: Any
    weighting: Any
    ctx: Any
    scaler: Any = None
    monitor: Any = None
    watch: Any = None
    streams: dict = field(default_factory=dict)
    loaders: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    folder: Any = None
    save_state: Any = False
    max_epochs: int = 1
    state: TrainingState | None = None
    steps: int = 0
    best_state: dict | None = None

    def epoch_end(self, rows: list[dict], n_steps: int, loss_scale: Tensor) -> bool:
        """The end of an epoch that did not diverge (its row is ``rows[-1]``): the monitor's
        record (the best weights kept, and written to ``folder`` as a checkpoint), the
        training state kept or written; returns whether early stopping ends the fit."""
        self.steps += n_steps
        row, stop = rows[-1], False
        if self.monitor is not None:
            better, stop = self.monitor.update(row)
            if better:
                self.best_state = copy.deepcopy(self.net.state_dict())
                if self.folder is not None and self.ctx.main:
                    save_checkpoint(self.folder, self.net,
                                    {"epoch": row["epoch"], "monitor": self.monitor.column,
                                     "value": row[self.monitor.column]})
        last = stop or row["epoch"] >= self.max_epochs
        if self.save_state is True or (self.save_state and last):
            self.state = self.capture(rows, stop, loss_scale)
            if self.save_state is True:
                self.save(self.state)
        return stop

    # ------------------------------------------------------------------ capture
    def capture(self, rows: list[dict], stopped: bool, loss_scale: Tensor) -> TrainingState:
        """The state at the end of the epoch whose history row is ``rows[-1]``. Under DDP
        every rank calls it (each rank's random streams are gathered)."""
        net, opt, ctx, best_state = self.net, self.optimizer, self.ctx, self.best_state
        t = {f"net.{k}": _own(v) for k, v in net.state_dict().items()}
        if best_state is not None:
            t.update({f"best.{k}": _own(v) for k, v in best_state.items()})
        weights, record = self.watch.state() if self.watch is not None else ({}, None)
        for name, sd in weights.items():
            t.update({f"watch.{name}.{k}": _own(v) for k, v in sd.items()})
        osd = opt.state_dict()
        values: dict[str, dict] = {}
        for i, d in osd["state"].items():
            for name, v in d.items():
                if isinstance(v, torch.Tensor):
                    t[f"optim.{i}.{name}"] = _own(v)
                else:
                    values.setdefault(str(i), {})[name] = v
        wt, wv = self.weighting.training_state()
        t.update({f"weighting.{k}": v for k, v in wt.items()})
        samplers = _sampler_generators(self.loaders)
        for name, v in _rng_tensors(ctx.device, samplers).items():
            for r, part in enumerate(ctx.gather(v) if ctx.distributed else [v]):
                t[f"rng.{r}.{name}"] = _own(part)
        cols = list(dict.fromkeys(k for r in rows for k in r))
        hist = torch.full((len(rows), len(cols)), math.nan, dtype=torch.float64)
        present = torch.zeros(len(rows), len(cols), dtype=torch.bool)
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                if c in r:
                    hist[i, j], present[i, j] = float(r[c]), True
        t["history"], t["history_present"] = hist, present
        t["loss_scale"] = _own(loss_scale)
        meta = {
            "format": STATE_FORMAT, "kind": _KIND, "regmtl_version": __version__,
            "epoch": len(rows), "steps": int(self.steps), "stopped": bool(stopped),
            "net": type(net).__name__, "tasks": [s.name for s in net.tasks],
            "optimizer": type(opt).__qualname__, "optimizer_groups": len(osd["param_groups"]),
            "optimizer_params": sum(len(g["params"]) for g in osd["param_groups"]),
            "optimizer_values": values,
            "weighting": type(self.weighting).__qualname__, "weighting_values": wv,
            "world_size": ctx.world_size, "samplers": len(samplers),
            "history_columns": cols,
            "history_int_columns": [c for c in cols if all(type(r[c]) is int
                                                           for r in rows if c in r)],
            "monitor": None if self.monitor is None else self.monitor.state(),
            "watch": record, "watch_weights": sorted(weights), "best": best_state is not None,
            "streams": {k: c.state() for k, c in self.streams.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "options": self.options,
        }
        return TrainingState(t, meta)

    def save(self, state: TrainingState) -> None:
        """Write ``state`` into ``folder`` on the main rank; under DDP every rank then waits
        for the write (a fit resumed right after reads it on every rank)."""
        if self.ctx.main:
            save_training_state(self.folder, state)
        if self.ctx.distributed:
            self.ctx.sum(torch.zeros(1))  # a barrier on the process group's device

    # ------------------------------------------------------------------ restore
    def restore(self, state: TrainingState, rows: list[dict], where: Any) -> int:
        """Restore the loop's state (random streams, per-task streams, early-stopping record
        and best weights, divergence watch, gradient scaler) from ``state`` (checked by
        :func:`~regmtl.deep.training_state.load_model_state`), the history's rows into
        ``rows``; returns the epoch (from 0) to train next (``max_epochs`` after an early
        stop: none, with a warning)."""
        ctx, meta, t, where = self.ctx, state.meta, state.tensors, str(where)
        if (meta["monitor"] is None) != (self.monitor is None):
            saved = "with" if meta["monitor"] is not None else "without"
            raise ValueError(f"{where}: the state was saved by a fit {saved} a monitor "
                             "(validation data, early_stopping or restore_best); resume with "
                             "the same validation data and options.")
        if self.monitor is not None:
            self.monitor.load_state(meta["monitor"], where)
        streams = meta["streams"]
        if not isinstance(streams, dict) or sorted(streams) != sorted(self.streams):
            raise ValueError(f"{where}: the state's per-task streams {sorted(streams)[:5]} "
                             f"are not this fit's {sorted(self.streams)[:5]}; resume with the "
                             "training data of the saved fit.")
        for k, c in self.streams.items():
            pos = streams[k]
            if not (isinstance(pos, list) and len(pos) == 2
                    and all(type(x) is int and x >= 0 for x in pos)):
                raise ValueError(f"{where}: the position of stream {k!r} is {pos!r:.60}; the "
                                 "file was modified.")
            c.seek(*pos)
        if self.scaler is not None and meta["scaler"]:
            self.scaler.load_state_dict(meta["scaler"])
        if self.watch is not None:
            weights = {name: _part(t, f"watch.{name}.") for name in meta["watch_weights"]}
            self.watch.load_state(weights, meta["watch"], where)
        self.best_state = _part(t, "best.") if meta["best"] else None
        _set_rng(_part(t, f"rng.{ctx.rank}."), ctx.device,
                 _sampler_generators(self.loaders), where)
        self.steps = int(meta["steps"])
        cols, ints = meta["history_columns"], set(meta["history_int_columns"])
        for vals, have in zip(t["history"].tolist(), t["history_present"].tolist(),
                              strict=True):
            rows.append({c: (int(v) if c in ints else v)
                         for c, v, h in zip(cols, vals, have, strict=True) if h})
        start = self.max_epochs if state.stopped else state.epoch
        if start >= self.max_epochs:
            warnings.warn(f"Resuming {where}: the saved fit "
                          f"{'stopped early' if state.stopped else 'ran'} after epoch "
                          f"{state.epoch} (max_epochs={self.max_epochs}), so no epoch is "
                          "trained.", UserWarning, stacklevel=find_stack_level())
        return start


def _part(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix``, named without it."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------- files
def _digest(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_training_state(path: str | Path, state: TrainingState) -> Path:
    """Write ``state`` into the folder ``path`` (created if needed): ``training_state.pt``
    and ``training_state.json`` (with the tensor file's SHA-256 digest), each written to a
    temporary file first and then renamed over the old one.

    Parameters
    ----------
    path : str or path-like
        The folder.
    state : TrainingState
        The state.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp, tmp_meta = path / (STATE_FILE + ".tmp"), path / (STATE_META + ".tmp")
    torch.save(state.tensors, tmp)
    meta = {**state.meta, "digest": _digest(tmp)}
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp, path / STATE_FILE)
    os.replace(tmp_meta, path / STATE_META)
    return path


def _bytes(tensors: Any) -> int:
    return sum(v.numel() * v.element_size() for v in tensors if isinstance(v, Tensor))


def state_bytes_limit(net: Any, weighting: Any, meta: dict) -> int:
    """The largest tensor file a training state of ``net`` and ``weighting`` may be: the
    net's weights six times (the weights, the best and the watch's two copies, two optimizer
    moments), the weighting's state three times (with its moments), the per-task (T, d)
    gradient states sized at the first step (T times the net's weights, twice each), the
    history the JSON declares, each rank's random streams and the archive's overhead."""
    sd = net.state_dict()
    net_bytes = _bytes(sd.values())
    w_state = [v for k, v in weighting.state_dict().items() if not k.endswith("_extra_state")]
    lazily = sum(1 for v in w_state if v.numel() == 0)
    T = len(net.tasks)
    epochs, cols = meta.get("epoch"), meta.get("history_columns")
    n_hist = (epochs * len(cols)) if isinstance(epochs, int) and isinstance(cols, list) else 0
    world = meta.get("world_size") if isinstance(meta.get("world_size"), int) else 1
    n_tensors = 6 * len(sd) + 4 * len(w_state) + 16 * max(world, 1) + 8
    return (6 * net_bytes + 3 * _bytes(w_state) + 2 * lazily * T * net_bytes
            + 9 * max(n_hist, 0) + 65536 * max(world, 1) + 1024 * n_tensors + 2**20)


def read_training_state(path: str | Path, net: Any, weighting: Any) -> TrainingState:
    """The training state in the folder ``path``, read for a fit of ``net`` and
    ``weighting``: its files regular, the JSON within its bound and of a format this release
    reads, the tensor file within :func:`~regmtl.deep.training_state.state_bytes_limit` and
    with the recorded digest, read with ``torch.load(weights_only=True)``, its tensors dense
    in their own bytes.
    Names and shapes are checked by :func:`~regmtl.deep.training_state.load_model_state`.

    Parameters
    ----------
    path : str or path-like
        A folder written with ``Trainer(save_state=True, checkpoint_dir=path)``.
    net : MultiTaskNet
        The net of the fit resuming it.
    weighting : Weighting
        Its weighting, set up.

    Returns
    -------
    TrainingState
        The state (tensors copied out of the file).

    Raises
    ------
    FileNotFoundError
        If the folder holds no training state.
    ValueError
        If a file is not a regular file, too large, modified (its digest) or not a training
        state of a format this release reads, naming the file.
    """
    path = Path(path)
    file, meta_file = path / STATE_FILE, path / STATE_META
    if not file.exists() or not meta_file.exists():
        raise FileNotFoundError(f"{path} holds no training state ({STATE_FILE} and "
                                f"{STATE_META}); write one with Trainer(save_state=True, "
                                "checkpoint_dir=...).")
    meta = read_json(meta_file, "a training state's JSON", MAX_JSON_BYTES)
    if not isinstance(meta, dict) or meta.get("kind") != _KIND:
        raise ValueError(f"{meta_file} is not a regmtl training state.")
    fmt = meta.get("format")
    if type(fmt) is not int or not 1 <= fmt <= STATE_FORMAT:
        raise ValueError(f"{meta_file}: training state format {fmt!r:.20} is not one this "
                         f"regmtl reads ({STATE_FORMAT}); upgrade regmtl.")
    size, limit = regular_size(file), state_bytes_limit(net, weighting, meta)
    if size > limit:
        raise ValueError(f"{file} holds {size} bytes, more than a training state of this net, "
                         f"optimizer and weighting can ({limit} bytes); it is not the state of "
                         "this fit.")
    if _digest(file) != meta.get("digest"):
        raise ValueError(f"{file} does not have the SHA-256 digest {meta_file.name} records: "
                         "it was modified, or its save was interrupted; resume from an intact "
                         "state.")
    tensors = read_state(file, finite=False)
    return TrainingState({k: v.clone() for k, v in tensors.items()}, meta)


# ---------------------------------------------------------------------- checks and loading
def _compare(got: dict, want: dict, what: str, where: str, lazily: bool = False) -> None:
    """``got`` has the names and shapes of ``want`` (``lazily``: a tensor of ``want`` with no
    element is sized at the first step; then only its number of axes must agree)."""
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        raise ValueError(f"{where} was saved for another {what}: missing tensors "
                         f"{missing[:5]}, unexpected tensors {extra[:5]} ({what} has "
                         f"{len(want)} tensors, the state {len(got)}).")
    for k, w in want.items():
        g = got[k]
        same = tuple(g.shape) == tuple(w.shape) or (lazily and w.numel() == 0
                                                    and g.dim() == w.dim())
        if not same or g.is_floating_point() != w.is_floating_point():
            raise ValueError(f"{where} was saved for another {what}: tensor {k!r} has shape "
                             f"{tuple(g.shape)} ({g.dtype}); {what} has {tuple(w.shape)} "
                             f"({w.dtype}).")


def _finite(tensors: dict[str, Tensor], what: str, where: str) -> None:
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{where}: tensor {k!r} of {what} holds NaN or infinite values.")


def _check(state: TrainingState, net: Any, weighting: Any, opt: Any, ctx: Any,
           where: str) -> None:
    """Every name, shape and count of ``state`` against the fit's net, weighting, optimizer
    and processes, before anything is loaded."""
    t, meta = state.tensors, state.meta
    unknown = [k for k in t if not k.startswith(_PREFIXES) and k not in _SINGLE]
    if unknown:
        raise ValueError(f"{where}: unexpected tensors {unknown[:5]}; it is not a training "
                         "state written by regmtl.")
    try:
        epoch, steps = meta["epoch"], meta["steps"]
        cols, ints = meta["history_columns"], meta["history_int_columns"]
        wv, ov = meta["weighting_values"], meta["optimizer_values"]
        ok = (type(epoch) is int and epoch >= 1 and type(steps) is int and steps >= 0
              and isinstance(cols, list) and all(isinstance(c, str) for c in cols)
              and isinstance(ints, list) and set(ints) <= set(cols)
              and isinstance(meta["stopped"], bool) and isinstance(meta["best"], bool)
              and isinstance(meta["watch_weights"], list)
              and set(meta["watch_weights"]) <= {"initial", "fallback"}
              and isinstance(ov, dict) and all(isinstance(d, dict) for d in ov.values())
              and isinstance(wv, dict) and isinstance(wv.get("attributes", {}), dict)
              and isinstance(meta["streams"], dict)
              and all(isinstance(meta[k], dict | None) for k in ("monitor", "watch", "scaler")))
    except KeyError as exc:
        raise ValueError(f"{where}: the state's JSON lacks {exc}; the file was "
                         "modified.") from None
    if not ok:
        raise ValueError(f"{where}: the state's JSON has malformed counts or names; the file "
                         "was modified.")
    if meta.get("net") != type(net).__name__ or meta.get("tasks") != [s.name for s in
                                                                       net.tasks]:
        raise ValueError(f"{where} was saved for another net: a {meta.get('net')!r:.40} of "
                         f"tasks {str(meta.get('tasks'))[:80]}; this fit trains a "
                         f"{type(net).__name__} of tasks {[s.name for s in net.tasks][:10]}.")
    want = net.state_dict()
    _compare(_part(t, "net."), want, "net", where)
    if meta["best"]:
        _compare(_part(t, "best."), want, "net", where)
    for name in meta["watch_weights"]:
        _compare(_part(t, f"watch.{name}."), want, "net", where)
    for prefix in ("net.", "best.", "watch.", "optim."):
        _finite(_part(t, prefix), prefix.rstrip("."), where)
    # the weighting
    if meta.get("weighting") != type(weighting).__qualname__:
        raise ValueError(f"{where} was saved for another weighting "
                         f"({meta.get('weighting')!r:.40}); this fit uses "
                         f"{type(weighting).__qualname__}.")
    fresh, _ = weighting.training_state()
    got = _part(t, "weighting.")
    _compare(got, fresh, "weighting", where, lazily=True)
    n_params = sum(v.numel() for v in want.values())
    for k, v in got.items():
        if fresh[k].numel() == 0 and v.numel() > len(net.tasks) * max(n_params, 1):
            raise ValueError(f"{where}: weighting tensor {k!r} has shape {tuple(v.shape)}, "
                             f"more than the {len(net.tasks)} tasks x {n_params} weights of "
                             "the net.")
    wv = meta["weighting_values"]
    if wv.get("task_names") != [s.name for s in net.tasks] or sorted(
            wv.get("attributes", {})) != sorted(weighting.state_attributes):
        raise ValueError(f"{where} was saved for another weighting: its tasks or declared "
                         f"attributes {sorted(wv.get('attributes', {}))[:5]} differ from "
                         f"{type(weighting).__qualname__}'s.")
    # the optimizer
    groups = opt.state_dict()["param_groups"]
    params = [p for g in opt.param_groups for p in g["params"]]
    if (meta.get("optimizer") != type(opt).__qualname__
            or meta.get("optimizer_groups") != len(groups)
            or meta.get("optimizer_params") != len(params)):
        raise ValueError(f"{where} was saved for another optimizer: a "
                         f"{meta.get('optimizer')!r:.40} of {meta.get('optimizer_params')!r:.10} "
                         f"parameters in {meta.get('optimizer_groups')!r:.10} groups; this fit "
                         f"has a {type(opt).__qualname__} of {len(params)} in {len(groups)}.")
    keys = list(_part(t, "optim.")) + [f"{i}.{n}" for i, d in meta["optimizer_values"].items()
                                       for n in d]
    for key in keys:
        i, _, name = key.partition(".")
        if not (i.isdigit() and int(i) < len(params) and name):
            raise ValueError(f"{where}: optimizer state {key!r:.60} names no parameter of the "
                             f"optimizer ({len(params)} parameters).")
        v = t.get(f"optim.{key}")
        p = params[int(i)]
        if v is not None and tuple(v.shape) != tuple(p.shape) and v.numel() > 1:
            raise ValueError(f"{where} was saved for another optimizer: its state {name!r} of "
                             f"parameter {i} has shape {tuple(v.shape)}, the parameter "
                             f"{tuple(p.shape)}.")
    # the processes, the history, the loss scales
    if meta.get("world_size") != ctx.world_size:
        raise ValueError(f"{where} was saved by {meta.get('world_size')!r:.10} processes; this "
                         f"fit runs {ctx.world_size}: each rank resumes its own random streams, "
                         "so resume with as many.")
    ref = _rng_tensors(torch.device("cpu"), [])
    for r in range(ctx.world_size):
        mine = _part(t, f"rng.{r}.")
        for name, v in ref.items():
            if name not in mine or tuple(mine[name].shape) != tuple(v.shape):
                raise ValueError(f"{where}: the random stream {name!r} of rank {r} is "
                                 "missing or malformed; the file was modified.")
    hist, present = t.get("history", torch.zeros(0)), t.get("history_present", torch.zeros(0))
    if tuple(hist.shape) != (epoch, len(cols)) or tuple(present.shape) != (epoch, len(cols)):
        raise ValueError(f"{where}: the history tensor does not hold {epoch} epochs of "
                         f"{len(cols)} columns; the file was modified.")
    counts = [cols.index(c) for c in ints]  # epochs, steps: finite where logged
    if not bool(torch.isfinite(hist[:, counts])[present[:, counts].bool()].all()):
        raise ValueError(f"{where}: the history's integer columns {ints[:5]} hold NaN or "
                         "infinite values; the file was modified.")
    scale = t.get("loss_scale")
    if scale is None or tuple(scale.shape) != (len(net.tasks),) or not bool(
            (torch.isfinite(scale) & (scale > 0)).all()):
        raise ValueError(f"{where}: the loss scales are not {len(net.tasks)} finite positive "
                         "numbers; the file was modified.")


def load_model_state(state: TrainingState, net: Any, weighting: Any, opt: Any, ctx: Any,
                     options: dict, where: str) -> Tensor:
    """Check ``state`` against the fit's net, weighting, optimizer and processes (every name,
    shape and count: a ``ValueError`` naming ``where`` and what differs), then load the net's
    weights, the weighting's state and the optimizer's state; warn about the trainer's options
    that differ from the saved fit's. Returns the saved loss scales."""
    _check(state, net, weighting, opt, ctx, where)
    t, meta = state.tensors, state.meta
    differ = {k: (meta["options"].get(k), v) for k, v in options.items()
              if isinstance(meta.get("options"), dict) and meta["options"].get(k) != v}
    if differ:
        said = ", ".join(f"{k}={new!r} (saved: {old!r})" for k, (old, new) in differ.items())
        warnings.warn(f"Resuming {where} with other options: {said}; the run will not equal "
                      "the uninterrupted one.", UserWarning, stacklevel=find_stack_level())
    net.load_state_dict({k: v.clone() for k, v in _part(t, "net.").items()})
    weighting.load_training_state({k: v.clone() for k, v in _part(t, "weighting.").items()},
                                  meta["weighting_values"])
    sd = opt.state_dict()
    saved: dict[int, dict] = {}
    for key, v in _part(t, "optim.").items():
        i, _, name = key.partition(".")
        saved.setdefault(int(i), {})[name] = v.clone()
    for i, d in meta["optimizer_values"].items():
        saved.setdefault(int(i), {}).update(d)
    sd["state"] = saved
    try:
        opt.load_state_dict(sd)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{where}: the optimizer's state cannot be loaded "
                         f"({str(exc)[:200]}); the file was modified.") from None
    return t["loss_scale"].clone()


# ---------------------------------------------------------------------- the trainer's options
def check_save_state(save_state: Any, checkpoint_dir: Any) -> bool | str:
    """The trainer's ``save_state`` checked: True needs ``checkpoint_dir``."""
    save_state = check_option("save_state", save_state, "bool", also=("memory",),
                              fix="True writes it into checkpoint_dir each epoch; 'memory' "
                                  "keeps the last one as state_.")
    if save_state is True and checkpoint_dir is None:
        raise ValueError("save_state=True writes the training state into checkpoint_dir at "
                         "the end of every epoch; pass checkpoint_dir=..., or "
                         "save_state='memory' to keep it in memory only.")
    return save_state


def resume_source(resume: Any, checkpoint_dir: Path | None) -> Path | str | None:
    """The folder ``fit``'s ``resume`` names (or the words for a state given), None for a new
    fit; checked."""
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint_dir is None:
            raise ValueError("resume=True reads the training state from checkpoint_dir, "
                             "which is not set; pass resume=<folder>, or checkpoint_dir=... "
                             "with save_state=True.")
        return Path(checkpoint_dir)
    if isinstance(resume, TrainingState):
        if not (isinstance(resume.tensors, dict) and isinstance(resume.meta, dict)):
            raise ValueError("resume is a TrainingState without its dicts of tensors and "
                             "values; pass a trainer's state_ or the folder of "
                             "save_state=True.")
        return "the training state given"
    if isinstance(resume, (str, os.PathLike)):
        return Path(resume)
    raise ValueError(f"resume must be None, True, a folder or a TrainingState, got "
                     f"{type(resume).__name__}; pass the folder of save_state=True.")


def recorded_options(trainer: Any) -> dict:
    """The trainer's options a training state records (a resumed fit differing in one is
    warned about: it would not equal the uninterrupted fit)."""
    opt = trainer.optimizer
    return {"seed": trainer.seed, "batch_size": trainer.batch_size, "lr": trainer.lr,
            "weight_decay": trainer.weight_decay, "lazy_heads": trainer.lazy_heads,
            "grad_clip": trainer.grad_clip, "standardize": trainer.standardize,
            "normalize_losses": trainer.normalize_losses,
            "optimizer": opt if isinstance(opt, str) else "callable",
            "penalties": len(trainer.penalties)}


def open_state(resume: Any, where: Any, net: Any, weighting: Any, opt: Any, ctx: Any,
               options: dict) -> TrainingState:
    """The state ``resume`` names (read from the folder ``where``, or given), checked in full
    and loaded into the net, the weighting and the optimizer
    (:func:`~regmtl.deep.training_state.load_model_state`)."""
    state = resume if isinstance(resume, TrainingState) else read_training_state(
        where, net, weighting)
    load_model_state(state, net, weighting, opt, ctx, options, str(where))
    return state
