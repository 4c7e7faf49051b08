r"""Training loop of the multi-task nets.

Each step draws a batch, computes every task's loss on its observed labels, hands the (T,)
losses with the smooth penalties to the weighting method (which writes the gradients), takes an
optimizer step, then the proximal steps of the non-smooth penalties. Each epoch ends with the
validation losses and metrics, early stopping on a chosen quantity, and the best weights kept
(in memory, and on disk with ``checkpoint_dir``). Under ``torchrun`` the net is wrapped in
``DistributedDataParallel`` and each rank trains on its share of every global batch.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._options import check_option
from ._torch import torch
from .checkpoint import save_checkpoint
from .data import Batches, MultiTaskDataset, as_dataset, check_rows, cycle, rows_ok
from .diagnostics import MAX_COSINE_TASKS, GradientBalance, warn_if_dominated
from .distributed import Context, setup
from .heads import TaskGates, TaskHeads
from .inputs import as_inputs, chunks, describe, device_of, n_rows, take, to_device
from .nets import MultiTaskNet
from .optim import LazyAdam, LazyAdamW, clip_grad_norm
from .penalties import ParameterPenalty, make_penalties
from .scaling import (
    TargetScale,
    constant_losses,
    label_batches,
    loss_scales,
    moments_of,
    scales_of,
)
from .weighting import Weighting, make_weighting

__all__ = ["Trainer", "EarlyStopping", "set_seed"]

#: grad_balance="auto" measures the gradient balance up to this many tasks (as many as get
#: their pairwise cosines)
MAX_AUTO_TASKS = MAX_COSINE_TASKS


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices).

    Call it before building a net to fix its initial weights; :meth:`Trainer.fit` calls it
    with the trainer's ``seed`` to fix the batch order, dropout and random weighting.

    Parameters
    ----------
    seed : int
        The seed (NumPy gets it modulo 2**32).

    Returns
    -------
    None

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import set_seed
    >>> set_seed(0)
    >>> a = torch.rand(3)
    >>> set_seed(0)
    >>> torch.equal(a, torch.rand(3))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - user code may draw from the global state
    torch.manual_seed(seed)


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Pass it to :class:`~regmtl.deep.Trainer` (``early_stopping=``); the trainer keeps the
    weights of the best epoch by the same quantity (``restore_best``).

    Parameters
    ----------
    monitor : str, default="val_loss"
        A column of the trainer's history: ``"val_loss"`` (needs validation data; the
        spec-weighted sum of the task losses), ``"loss"`` (training), ``"val_loss/TASK"`` or
        ``"val/TASK/METRIC"``.
    patience : int, default=10
        Epochs without improvement before stopping (>= 1).
    min_delta : float, default=0.0
        The smallest change that counts as an improvement (finite, >= 0).
    mode : {"auto", "min", "max"}, default="auto"
        Minimize or maximize ``monitor``; "auto" takes the metric's direction (losses are
        minimized).

    Raises
    ------
    ValueError
        If ``monitor`` is not a string, ``patience`` not an int >= 1, ``min_delta`` not a
        finite number >= 0, or ``mode`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import EarlyStopping, HardSharing, Trainer, set_seed
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3))
    >>> data = (X, {"a": X[:, 0], "b": X[:, 0] - X[:, 1]})
    >>> stop = EarlyStopping(monitor="val/a/r2", patience=2)  # r2: maximized
    >>> stop
    EarlyStopping(monitor='val/a/r2', patience=2, min_delta=0.0, mode='auto')
    >>> set_seed(0)
    >>> net = HardSharing(3, ["a", "b"], hidden=(8,))
    >>> trainer = Trainer(net, max_epochs=5, batch_size=16, early_stopping=stop)
    >>> trainer = trainer.fit(data, val=data)
    >>> best = int(trainer.history["val/a/r2"].to_numpy().argmax()) + 1
    >>> trainer.best_epoch_ == best
    True
    """

    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 0.0
    mode: str = "auto"

    def __post_init__(self) -> None:
        self.monitor = check_option(
            "EarlyStopping.monitor", self.monitor, "str",
            fix="Name a column of the trainer's history, e.g. 'val_loss' or 'val/TASK/r2'.")
        self.patience = check_option("EarlyStopping.patience", self.patience, "int", low=1,
                                     fix="Pass a whole number of epochs, e.g. patience=10.")
        self.min_delta = check_option("EarlyStopping.min_delta", self.min_delta, "real", low=0,
                                      fix="Pass the smallest change that counts, e.g. 0.0.")
        self.mode = check_option("EarlyStopping.mode", self.mode, "str",
                                 choices=("auto", "min", "max"))


class Trainer:
    r"""Trains a multi-task net: task weighting, penalties, validation, early stopping.

    Each step draws a batch, computes every task's loss :math:`L_t` on its observed labels,
    and hands the (T,) losses with the smooth penalties :math:`\Omega` to the weighting
    method, which writes the gradients (for loss weighting, of
    :math:`\sum_t w_t L_t + \Omega(\theta)`); then an optimizer step, then the proximal steps
    of the penalties with ``proximal=True``. Each epoch ends with the validation losses and
    metrics, early stopping on a chosen quantity, and the best weights kept (in memory, and
    on disk with ``checkpoint_dir``). Under ``torchrun`` the net is wrapped in
    ``DistributedDataParallel`` and each rank trains on its share of every global batch.

    No task dominates by its units (``regmtl.deep.scaling``): before the first step the
    regression targets are standardized per task and output (the net keeps the map and
    predicts in the target's units), and each task's loss is divided by :math:`c_t`, the loss
    of the best constant prediction on its training labels, so :math:`L_t = 1` is the constant
    predictor whatever the task's kind and units.

    Parameters
    ----------
    net : MultiTaskNet
        Its ``tasks`` define the losses and metrics. Trained in place.
    weighting : str or Weighting, default="equal"
        How task losses become gradients: ``"equal"``, ``"fixed"``, ``"random"``,
        ``"uncertainty"``, ``"dwa"``, ``"gradnorm"``, ``"pcgrad"``, ``"cagrad"``, ``"famo"``,
        ``"nash_mtl"``, ``"imtl"``, ``"mgda"``, ``"aligned_mtl"``, ``"upgrad"`` (see
        :func:`~regmtl.deep.make_weighting`), or an instance (for options). A weighting with
        ``needs_step_losses`` (FAMO) gets the batch's losses after every optimizer step
        (:meth:`~regmtl.deep.Weighting.step_end`), at the cost of one more forward pass.
    penalty : ParameterPenalty, list of ParameterPenalty, or None, default=None
        Penalties by parameter group (:class:`~regmtl.deep.L1Penalty`,
        :class:`~regmtl.deep.L2Penalty`, :class:`~regmtl.deep.GroupL21`).
    optimizer : {"adam", "adamw", "sgd"} or callable, default="adam"
        The optimizer, or a callable ``params -> torch.optim.Optimizer``.
    lr : float, default=1e-3
        Learning rate (> 0); also the step size of the proximal steps.
    weight_decay : float, default=0.0
        The optimizer's weight decay (>= 0), on every parameter.
    batch_size : int, default=256
        Per process (a run on W ranks has global batches of W x batch_size); >= 1.
    max_epochs : int, default=100
        Maximum number of passes over the training data (>= 1).
    early_stopping : EarlyStopping, int or None, default=None
        Stopping rule; an int (>= 1) is the patience on the default monitor
        (``"val_loss"``).
    restore_best : bool, default=True
        End with the weights of the best epoch (by the early-stopping monitor, else by
        ``"val_loss"`` when there is validation data).
    checkpoint_dir : str or path-like, optional
        Where the best weights are saved each time they improve (``model.pt`` + ``config.json``,
        see :func:`~regmtl.deep.save_checkpoint`); without a monitor, the final weights.
    grad_clip : float, optional
        Clip the joint gradient norm of all parameters to :math:`c` = ``grad_clip`` (finite,
        > 0) before each step, :math:`g \leftarrow g \min(1, c / (\|g\| + 10^{-6}))` as
        ``torch.nn.utils.clip_grad_norm_``; None: no clipping.
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; "auto" picks the rank's GPU when
        there is one (:func:`~regmtl.deep.distributed.resolve_device`).
    amp : {"auto", True, False}, default="auto"
        Mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling);
        never on the CPU.
    distributed : "auto" or bool, default="auto"
        "auto": DistributedDataParallel when launched by ``torchrun`` with several processes.
        Each rank takes its share of every global batch (the gradients are averaged: the
        result equals one process with batches W times larger when no labels are missing);
        every rank validates on the whole validation set, so all stop at the same epoch.
    seed : int, default=0
        Seeds the batch order, dropout and random weighting (the net's initial weights are
        drawn when it is built: seed before that, e.g. with :func:`~regmtl.deep.set_seed`);
        in [0, 2**62].
    progress : bool, default=False
        A tqdm bar over epochs with the latest losses.
    grad_balance : int or "auto", default="auto"
        Steps of every epoch (evenly spread) on which each task's share of the shared
        parameters' gradient norm and the pairwise gradient cosines are measured and logged
        (:class:`~regmtl.deep.diagnostics.GradientBalance`; T backward passes through the
        trunk on each of them; cosines up to 16 tasks); 0 turns it off. "auto": 1 up to 16
        tasks, else 0 (with more, pass an int to measure the shares). Not measured with one
        task or under DDP.
    dominance : float or None, default=0.9
        A UserWarning names the task whose gradient share stayed above this in each of the
        last three epochs (the other tasks are suppressed); None: no warning.
    lazy_heads : bool, default=False
        Update each task's head (and MMoE gate) only on the steps whose batch holds rows of
        that task: the per-row gather gives row-sparse gradients and a lazy Adam
        (:class:`~regmtl.deep.optim.LazyAdam`, ``LazyAdamW`` for "adamw") updates those rows
        alone, so the optimizer's cost no longer grows with T (measured: 1.2 ms a step at
        10,000 tasks against 1.5 with dense Adam, 0.9 against 0.6 at 100 tasks;
        ``bench/bench_deep_inputs.py --only many``). An absent task's head keeps its weights
        and moments (with dense Adam they drift along the old momentum); weight decay reaches
        the heads of the batch's tasks only. With every task in every batch, the steps are
        Adam's. Needs ``optimizer="adam"`` or ``"adamw"`` (or a callable returning an
        optimizer that takes row-sparse gradients) and one process (not DDP); heads run on
        every row (the column layout) get dense gradients and Adam's step.
    standardize : bool, default=True
        Standardize each regression output with the mean and standard deviation of its
        observed training labels (tasks whose map the net already holds, from an earlier fit
        or a checkpoint, keep it). The map is held by the net
        (:class:`~regmtl.deep.scaling.TargetScale`, saved in its ``state_dict``): outputs,
        predictions and metrics stay in the target's units.
    normalize_losses : bool, default=True
        Divide each task's loss by its constant predictor's loss :math:`c_t` (``loss_scale_``):
        1/2 for the squared loss on standardized targets, the entropy of the base rate
        (binary) or of the class frequencies (multiclass); other losses are evaluated at the
        constant. The training and validation losses in the history are these ratios.
        False: the losses as :class:`~regmtl.deep.TaskSpec` defines them.

    Attributes
    ----------
    net : MultiTaskNet
        The net (trained in place).
    weighting : Weighting
        The weighting instance.
    penalties : list of ParameterPenalty
        The penalties.
    loss_scale_ : dict of str to float
        :math:`c_t` of each task (1 with ``normalize_losses=False``, or for a task whose
        training labels are all alike or absent).
    history_ : DataFrame
        One row per epoch (also :attr:`history`): ``epoch``, ``loss`` (training, the sum of
        the task losses), ``loss/TASK``, ``weight/TASK`` (the mean weight of the epoch),
        ``penalty`` (the penalties' value at the end of the epoch, 0 without one),
        ``grad_share/TASK`` and ``grad_cos/A/B`` (see ``grad_balance``), ``val_loss``,
        ``val_loss/TASK``, ``val/TASK/METRIC``, ``lr`` and ``time`` (seconds).
    best_epoch_ : int
        The epoch (from 1) whose weights the net has after :meth:`fit` with ``restore_best``
        (the last epoch without a monitor).
    context_ : Context
        Where the last fit ran (device, rank, world size).

    Raises
    ------
    ValueError
        If an option is invalid, naming it (checked here by type and range: flags must be
        bools, counts ints, a float such as 2.7 is refused rather than truncated, numbers
        finite; the data are checked by :meth:`fit`).

    See Also
    --------
    regmtl.deep.DeepMultiTaskRegressor : The scikit-learn wrapper.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import HardSharing, Trainer, set_seed
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3))
    >>> targets = {"a": X[:, 0], "b": X[:, 0] - X[:, 1]}
    >>> targets["b"][:10] = np.nan  # missing labels of task b
    >>> set_seed(0)
    >>> net = HardSharing(3, ["a", "b"], hidden=(8,))
    >>> trainer = Trainer(net, weighting="uncertainty", max_epochs=2, batch_size=16, lr=1e-2)
    >>> trainer = trainer.fit((X, targets), val=(X, targets))
    >>> trainer.history.shape
    (2, 19)
    >>> list(trainer.history.columns[:6])
    ['epoch', 'loss', 'loss/a', 'weight/a', 'loss/b', 'weight/b']
    >>> {task: pred.shape for task, pred in trainer.predict(X[:5]).items()}
    {'a': (5,), 'b': (5,)}
    """

    def __init__(self, net: MultiTaskNet, *, weighting: str | Weighting = "equal",
                 penalty: Any = None, optimizer: str | Callable = "adam", lr: float = 1e-3,
                 weight_decay: float = 0.0, batch_size: int = 256, max_epochs: int = 100,
                 early_stopping: EarlyStopping | int | None = None, restore_best: bool = True,
                 checkpoint_dir: str | Path | None = None, grad_clip: float | None = None,
                 device: str = "auto", amp: str | bool = "auto",
                 distributed: str | bool = "auto", seed: int = 0, progress: bool = False,
                 grad_balance: int | str = "auto", dominance: float | None = 0.9,
                 lazy_heads: bool = False, standardize: bool = True,
                 normalize_losses: bool = True):
        if not isinstance(net, MultiTaskNet):
            raise ValueError(f"net must be a regmtl.deep MultiTaskNet, got {type(net).__name__}.")
        opt = check_option  # every option by type and range, with the same words
        lr = opt("lr", lr, "real", low=0, low_open=True)
        weight_decay = opt("weight_decay", weight_decay, "real", low=0)
        batch_size = opt("batch_size", batch_size, "int", low=1)
        max_epochs = opt("max_epochs", max_epochs, "int", low=1)
        early_stopping = opt("early_stopping", early_stopping, "int", low=1, none=True,
                             also=(EarlyStopping,),
                             fix="An int is the patience on 'val_loss'; pass "
                                 "EarlyStopping(...) for another rule, None for none.")
        restore_best = opt("restore_best", restore_best, "bool")
        checkpoint_dir = opt("checkpoint_dir", checkpoint_dir, "str", none=True,
                             also=(os.PathLike,))
        grad_clip = opt("grad_clip", grad_clip, "real", low=0, low_open=True, none=True,
                        fix="It is the largest gradient norm a step may take; None: no "
                            "clipping.")
        device = opt("device", device, "str", also=(torch.device,))
        amp = opt("amp", amp, "bool", also=("auto",))
        distributed = opt("distributed", distributed, "bool", also=("auto",),
                          fix="'auto' joins a process group under torchrun only.")
        seed = opt("seed", seed, "int", low=0, high=2**62)
        progress = opt("progress", progress, "bool")
        grad_balance = opt("grad_balance", grad_balance, "int", low=0, also=("auto",),
                           fix="It counts the steps measured per epoch; 0: none.")
        dominance = opt("dominance", dominance, "real", low=0, low_open=True, high=1,
                        none=True)
        standardize = opt("standardize", standardize, "bool")
        normalize_losses = opt("normalize_losses", normalize_losses, "bool")
        lazy_heads = opt("lazy_heads", lazy_heads, "bool")
        optimizer = opt("optimizer", optimizer, "str", choices=("adam", "adamw", "sgd"),
                        also=(Callable,))
        if lazy_heads and not callable(optimizer) and optimizer not in ("adam", "adamw"):
            raise ValueError(f"lazy_heads=True updates the heads with a lazy Adam: it needs "
                             f"optimizer='adam' or 'adamw' (or a callable returning an "
                             f"optimizer that takes row-sparse gradients), got {optimizer!r}.")
        if isinstance(early_stopping, int):
            early_stopping = EarlyStopping(patience=early_stopping)
        self.net = net
        self.tasks = net.tasks
        self._names = {t.name for t in net.tasks}
        self.weighting = make_weighting(weighting)
        self.penalties: list[ParameterPenalty] = make_penalties(penalty)
        self.optimizer = optimizer
        self.lr, self.weight_decay = lr, weight_decay
        self.batch_size, self.max_epochs = batch_size, max_epochs
        self.early_stopping = early_stopping
        self.restore_best = restore_best
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.grad_clip = grad_clip
        self.device, self.amp, self.distributed = device, amp, distributed
        self.seed = seed
        self.progress = progress
        self.grad_balance, self.dominance = grad_balance, dominance
        self.lazy_heads = lazy_heads
        # "auto": one step per epoch up to MAX_AUTO_TASKS tasks (T backward passes each)
        self._balance_steps = (int(len(net.tasks) <= MAX_AUTO_TASKS)
                               if grad_balance == "auto" else grad_balance)
        self.standardize, self.normalize_losses = standardize, normalize_losses
        self._loss_scale = self._inv_scale = torch.ones(len(self.tasks))
        self.history_: pd.DataFrame | None = None

    # ------------------------------------------------------------------ set-up
    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        if callable(self.optimizer):
            return self.optimizer(params)
        opts = ({"adam": LazyAdam, "adamw": LazyAdamW} if self.lazy_heads else
                {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD})
        if self.optimizer not in opts:
            raise ValueError(f"optimizer must be one of {sorted(opts)} or a callable params -> "
                             f"Optimizer, got {self.optimizer!r}.")
        kw: dict = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer != "sgd" and _fusable(params):
            # the same update in one kernel over all parameters (on the CPU too): the update
            # of 10,000 heads costs 0.3 ms a step instead of 1.5
            kw["fused"] = True
        return opts[self.optimizer](params, **kw)

    def _amp(self, ctx: Context):
        """(autocast context factory, GradScaler or None)."""
        on = ctx.device.type == "cuda" and self.amp in ("auto", True)
        if self.amp is True and ctx.device.type != "cuda":
            raise ValueError("amp=True needs a CUDA device; use amp='auto' (on for CUDA only).")
        if not on:
            return nullcontext, None
        bf16 = torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float16
        scaler = None if bf16 else torch.amp.GradScaler("cuda")
        return (lambda: torch.autocast("cuda", dtype=dtype)), scaler

    def _loaders(self, train: Any, ctx: Context):
        """{task or None: loader}: one loader of all targets (key None) or one per task."""
        kw = dict(seed=self.seed, rank=ctx.rank, world_size=ctx.world_size)
        if isinstance(train, Mapping):
            names = [t.name for t in self.tasks]
            unknown = [k for k in train if k not in names]
            if unknown:
                raise ValueError(f"train: unknown task(s) {unknown}; the net's tasks are {names}.")
            out = {}
            for k, v in train.items():
                if isinstance(v, tuple) and len(v) == 2 and not isinstance(v[1], Mapping):
                    v = (v[0], {k: v[1]})
                ds = as_dataset(v, self.tasks, what=f"train[{k!r}]")
                out[k] = self._loader(ds, kw)
            return out
        return {None: self._loader(as_dataset(train, self.tasks), kw)}

    def _loader(self, ds, kw):
        if isinstance(ds, MultiTaskDataset):
            return Batches(ds, self.batch_size, shuffle=True, **kw)
        return ds

    def _probe(self, data: Any, what: str, device) -> None:
        """Run the net on the first rows of ``data`` (no gradient, evaluation mode, buffers
        kept): an input the net cannot take is refused before any step, naming it."""
        if isinstance(data, Batches):
            data = data.dataset
        rows = None
        if isinstance(data, MultiTaskDataset):
            first = torch.arange(min(2, len(data)))
            x = take(data.X, first)
            if data.per_row:
                rows = data.task[first.to(data.task.device)]
        else:
            try:
                x, y = next(iter(data))
            except StopIteration:
                raise ValueError(f"{what}: the loader yields no batch.") from None
            if not isinstance(y, Mapping):  # per row: its own tasks' heads, if valid
                rows = y[0] if rows_ok(y[0], len(self.tasks)) else None
        net = self.net
        saved = _buffers_to_keep(net)
        was = net.training
        net.eval()
        try:
            with torch.no_grad(), net.standardized_outputs():
                if rows is None:
                    net(to_device(x, device))
                else:
                    net(to_device(x, device), rows=rows.to(device))
        except (ValueError, RuntimeError, TypeError, IndexError) as exc:
            raise ValueError(f"{what}: the net cannot read its inputs ({describe(x)}): "
                             f"{str(exc)[:400]}") from None
        finally:
            net.train(was)
            with torch.no_grad():
                for b, v in saved:
                    b.copy_(v)

    # ------------------------------------------------------------------ fit
    def fit(self, train: Any, val: Any = None) -> Trainer:
        """Train on ``train``; validate on ``val`` after every epoch.

        Everything is checked before the first step.

        Parameters
        ----------
        train : tuple, MultiTaskDataset, DataLoader or dict
            ``(X, targets)`` (targets: dict task -> array, NaN = missing, or an (n, T) array),
            a :class:`~regmtl.deep.MultiTaskDataset`, a DataLoader (or any sized re-iterable)
            yielding ``(x, {task: y})``, or a dict ``{task: (X_t, y_t) | dataset | loader}``
            to train each task on its own data (an epoch is one pass over the largest;
            smaller ones are cycled).
        val : tuple, MultiTaskDataset or DataLoader, optional
            Validation data, in the forms of one training set.

        Returns
        -------
        Trainer
            The trainer itself, with ``history_`` and ``best_epoch_``; the net is trained in
            place and left in evaluation mode.

        Raises
        ------
        ValueError
            If the data do not fit the net's tasks and features, or early stopping monitors
            a quantity that is not logged (``val_...`` without ``val``).
        """
        set_seed(self.seed)
        ctx = setup(self.device, self.distributed)
        self.context_ = ctx
        if self.lazy_heads and ctx.distributed:
            raise ValueError("lazy_heads=True runs in one process: DDP averages dense "
                             "gradients only; pass lazy_heads=False under torchrun.")
        loaders = self._loaders(train, ctx)
        val_ds = None if val is None else as_dataset(val, self.tasks, what="val")
        for ds in [*(getattr(v, "dataset", v) for v in loaders.values()), val_ds]:
            targets = getattr(ds, "targets", None)
            if targets is not None:  # labels by task (a loader's batches are not read here)
                self.net.check_targets(targets)
        stop = self.early_stopping
        monitor = None
        if stop is not None:
            monitor = stop.monitor if val_ds is not None or not stop.monitor.startswith("val") \
                else None
            if monitor is None:
                raise ValueError(f"early_stopping monitors {stop.monitor!r}, which needs val data; "
                                 "pass val=... or EarlyStopping(monitor='loss').")
        elif self.restore_best:
            monitor = "val_loss" if val_ds is not None else None
        sign = self._direction(monitor, stop)
        val_tasks = (set() if val_ds is None else self._tasks_in(val_ds)
                     if isinstance(val_ds, MultiTaskDataset) else self._names)
        if monitor is not None and monitor not in self._columns(val_tasks):
            raise ValueError(f"early_stopping.monitor {monitor!r} is not logged; choose one of "
                             f"{sorted(self._columns(val_tasks))}.")

        net = self.net
        if any(t.device != ctx.device for t in (*net.parameters(), *net.buffers())):
            net.to(ctx.device)
        for k, v in loaders.items():
            self._probe(v, "train" if k is None else f"train[{k!r}]", ctx.device)
        if val_ds is not None:
            self._probe(val_ds, "val", ctx.device)
        self._adapt_encoders(loaders, ctx)
        model = net
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.weighting.setup(self.tasks, seed=self.seed)
        self.weighting.to(ctx.device)
        watching = bool(getattr(self.weighting, "on_representation", False))
        if watching:  # the Gram methods' shared-representation route: the net's trunk
            from .weighting.gram import shared_representation
            if None not in loaders or len(loaders) > 1:
                raise ValueError(f"{type(self.weighting).__name__}(on_representation=True) "
                                 "needs one batch for all tasks per step; train on one data "
                                 "set, or use on_representation=False.")
            trunk = shared_representation(net, self.weighting)
        params = list(net.parameters()) + list(self.weighting.parameters())
        opt = self._make_optimizer(params)
        autocast, scaler = self._amp(ctx)
        self._scale_targets(loaders, ctx)  # everything checked: the net's map may be set
        self._loss_scale = self._loss_scale.to(ctx.device)
        self._inv_scale = 1.0 / self._loss_scale
        self._row_setup(ctx.device)
        loader = loaders.get(None)
        fast = None
        if isinstance(loader, Batches):  # targets checked once, standardized once
            if loader.dataset.per_row:
                loader.dataset = self._ready_rows(loader.dataset)
                fast = self._fast_rows(loader.dataset, ctx)
            else:
                loader.dataset = self._ready_targets(loader.dataset)
                fast = functools.partial(_batch_losses, self, loader.dataset, ctx=ctx)
        shared = [p for p in net.shared_parameters() if p.requires_grad]
        specific = [p for p in net.task_parameters() if p.requires_grad]
        smooth = [p for p in self.penalties if not p.proximal]
        prox = [p for p in self.penalties if p.proximal]
        scale = None if scaler is None else scaler.scale
        reduce = ctx.mean if ctx.distributed else None
        # DDP averages the gradients of one backward pass; gradient surgery (several passes)
        # and per-task batches (several forward passes) average them by hand instead
        per_task = None not in loaders
        manual = ctx.distributed and (self.weighting.needs_task_grads or per_task)

        names = [t.name for t in self.tasks]
        rows, best, best_state, wait = [], math.inf, None, 0
        bar = None
        if self.progress and ctx.main:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.max_epochs, desc="epochs", leave=False)
        streams = {k: cycle(v) for k, v in loaders.items()} if per_task else {}
        steps = max(len(v) for v in loaders.values())
        balance = GradientBalance(names) if self._measures_balance(ctx) else None
        every = max(1, steps // max(self._balance_steps, 1))
        simple = (fast is not None and not ctx.distributed and autocast is nullcontext
                  and scaler is None and balance is None and not smooth and not prox
                  and self.grad_clip is None and not self.weighting.needs_step_losses)
        backward = self.weighting.backward
        columns = [c for k in names for c in (f"loss/{k}", f"weight/{k}")]
        lazy = [m for m in net.modules() if isinstance(m, (TaskHeads, TaskGates))] \
            if self.lazy_heads else []
        clip = clip_grad_norm if lazy else torch.nn.utils.clip_grad_norm_
        if watching:
            self.weighting.watch(trunk)
        try:
            for m in lazy:  # row-sparse head gradients for this fit
                m.sparse_grad = True
            for epoch in range(self.max_epochs):
                t0 = time.perf_counter()
                if epoch == 0 or val_ds is not None:  # (validation leaves the net in eval)
                    model.train()
                tot = torch.zeros(len(names), device=ctx.device)
                wsum = torch.zeros(len(names), device=ctx.device)
                if not per_task:
                    loader = loaders[None]
                    if hasattr(loader, "set_epoch"):
                        loader.set_epoch(epoch)
                    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
                        loader.sampler.set_epoch(epoch)
                    batches = iter(loader)
                else:
                    batches = (None for _ in range(steps))
                n_steps = 0
                if simple:  # the same step as below, without the branches it does not take
                    for idx in loader.indices():
                        opt.zero_grad(set_to_none=True)
                        losses = fast(model, idx).float()
                        w = backward(losses, shared, specific)
                        opt.step()
                        tot += losses.detach()
                        wsum += w.detach().to(ctx.device)
                        n_steps += 1
                    batches = ()
                for batch in batches:
                    opt.zero_grad(set_to_none=True)
                    drawn = None if batch is not None else {
                        t.name: next(streams[t.name]) for t in self.tasks if t.name in streams}
                    with model.no_sync() if manual else nullcontext():
                        with autocast():
                            if batch is not None:
                                losses = self._losses(model, batch, ctx)
                            else:
                                losses = self._task_losses(model, drawn, ctx)
                        if balance is not None and n_steps % every == 0:
                            balance.add(losses.float(), shared)
                        extra = sum(p.value(net) for p in smooth) if smooth else None
                        w = self.weighting.backward(losses.float(), shared, specific,
                                                    extra=extra, scale=scale, reduce=reduce)
                    if manual:
                        ctx.average_gradients(net.parameters())
                    if ctx.distributed:
                        ctx.average_gradients(self.weighting.parameters())
                    if scaler is not None:
                        scaler.unscale_(opt)
                    if self.grad_clip is not None:
                        clip(params, self.grad_clip)
                    if scaler is not None:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    if prox:
                        step = opt.param_groups[0]["lr"]
                        for p in prox:
                            p.prox(net, step)
                    if self.weighting.needs_step_losses:
                        self._step_end(model, net, batch, drawn, ctx, autocast, reduce)
                    tot += losses.detach()
                    wsum += w.detach().to(ctx.device)
                    n_steps += 1
                n = max(n_steps, 1)
                train_losses = ctx.mean(tot / n)
                self.weighting.epoch_end(train_losses.detach())
                row = {"epoch": epoch + 1, "loss": float(train_losses.sum())}
                row.update(zip(columns, (v for pair in zip(
                    train_losses.tolist(), (wsum / n).tolist(), strict=True) for v in pair),
                    strict=True))
                with torch.no_grad():  # (0 without penalties: the column is always there)
                    row["penalty"] = float(sum(p.value(net) for p in self.penalties))
                if balance is not None:
                    row.update(balance.columns())
                if val_ds is not None:
                    row.update(self._validate(val_ds, ctx))
                row["lr"] = opt.param_groups[0]["lr"]
                row["time"] = time.perf_counter() - t0
                rows.append(row)
                if bar is not None:
                    bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "val_loss")
                                     if k in row})
                    bar.update()
                if monitor is not None:
                    value = sign * row[monitor]
                    delta = 0.0 if stop is None else stop.min_delta
                    if value < best - delta:
                        best, wait = value, 0
                        best_state = copy.deepcopy(net.state_dict())
                        if self.checkpoint_dir is not None and ctx.main:
                            save_checkpoint(self.checkpoint_dir, net,
                                            {"epoch": epoch + 1, "monitor": monitor,
                                             "value": row[monitor]})
                    else:
                        wait += 1
                        if stop is not None and wait >= stop.patience:
                            break
        finally:
            for m in lazy:
                m.sparse_grad = False
            if watching:
                self.weighting.unwatch()
            if bar is not None:
                bar.close()
        if self.restore_best and best_state is not None:
            net.load_state_dict(best_state)
        if self.checkpoint_dir is not None and monitor is None and ctx.main:
            save_checkpoint(self.checkpoint_dir, net, {"epoch": len(rows)})
        self.history_ = _frame(rows)
        self.best_epoch_ = (int(np.argmin(sign * self.history_[monitor].to_numpy())) + 1
                            if monitor is not None else len(rows))
        if balance is not None and self.dominance is not None:
            warn_if_dominated(self.history_, self.dominance, 3)
        self.net.eval()
        return self

    def _scale_targets(self, loaders: dict, ctx: Context) -> None:
        """Standardize the regression targets the net has no map for yet, and measure each
        task's constant-predictor loss: one pass over the training labels (a second for
        losses without a closed form); merged over the ranks when each holds a shard."""
        net, names = self.net, [t.name for t in self.tasks]
        fit = []
        if self.standardize and len(net.target_scales):
            mean, scale = net.stacked_scales()
            identity = ((mean == 0) & (scale == 1)).all(1).tolist()
            fit = [t.name for t, i in zip(self.tasks, identity, strict=True)
                   if i and t.name in net.target_scales]
        self.loss_scale_ = dict.fromkeys(names, 1.0)
        self._loss_scale = torch.ones(len(names))
        if not fit and not self.normalize_losses:
            return
        sources = {k: v.dataset if isinstance(v, Batches) else v for k, v in loaders.items()}
        sharded = ctx.distributed and any(not isinstance(v, MultiTaskDataset)
                                          for v in sources.values())
        moments = moments_of(sources, self.tasks)
        if sharded:
            moments.merge_ranks(ctx.gather)
        maps = scales_of(moments, fit)  # all checked, then set
        modules = net.target_scales._modules
        TargetScale.set_many([modules[k] for k in maps], list(maps.values()))
        if self.normalize_losses:
            const = constant_losses(self.tasks, moments, dict(net.target_scales.items()),
                                    lambda: label_batches(sources, self.tasks),
                                    ctx.sum if sharded else None)
            self._loss_scale = loss_scales(self.tasks, const)
            self.loss_scale_ = dict(zip(names, self._loss_scale.tolist(), strict=True))

    def _task_loss(self, spec, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss on standardized outputs and targets (no division by c_t)."""
        return spec.task_loss(out, self.net.standardize_target(spec.name, y))

    def _measures_balance(self, ctx: Context | None = None) -> bool:
        """Whether the gradient balance is logged: asked for, two tasks or more, one
        process (under DDP each rank's own gradients would be measured)."""
        return (self._balance_steps > 0 and len(self.tasks) > 1
                and not (ctx is not None and ctx.distributed))

    def _columns(self, val_tasks: set[str]) -> set[str]:
        """The columns of the history, validating the tasks in ``val_tasks``."""
        cols = {"epoch", "loss", "penalty", "lr", "time"}
        if self._measures_balance():
            names = [t.name for t in self.tasks]
            cols |= {f"grad_share/{k}" for k in names}
            cols |= {f"grad_cos/{names[a]}/{names[b]}" for a, b in GradientBalance(names).pairs}
        for t in self.tasks:
            cols |= {f"loss/{t.name}", f"weight/{t.name}"}
            if t.name in val_tasks:
                cols |= {f"val_loss/{t.name}"} | {f"val/{t.name}/{m}" for m in t.metrics}
        return cols | ({"val_loss"} if val_tasks else set())

    def _direction(self, monitor: str | None, stop: EarlyStopping | None) -> float:
        """+1 to minimize the monitor, -1 to maximize it."""
        if monitor is None:
            return 1.0
        if stop is not None and stop.mode != "auto":
            return 1.0 if stop.mode == "min" else -1.0
        parts = monitor.split("/")
        if len(parts) == 3 and parts[0] == "val":
            spec = {t.name: t for t in self.tasks}.get(parts[1])
            if spec is None:
                raise ValueError(f"early_stopping.monitor {monitor!r}: unknown task {parts[1]!r}.")
            return -1.0 if spec.higher_is_better(parts[2]) else 1.0
        return 1.0

    def _losses(self, model, batch, ctx: Context) -> torch.Tensor:
        x, ys = batch
        if isinstance(ys, tuple) or not isinstance(ys, Mapping):
            return self._row_losses(model, x, ys, ctx)
        ready = isinstance(ys, _ReadyTargets)  # checked and standardized with the data set
        if not ready:
            unknown = ys.keys() - self._names
            if unknown:
                raise ValueError(f"a batch has targets of unknown task(s) {sorted(unknown)}; "
                                 f"the net's tasks are {sorted(self._names)}.")
        x = to_device(x, ctx.device, non_blocking=True)
        with self.net.standardized_outputs():
            out = model(x)
        losses = []
        for t in self.tasks:
            y = ys.get(t.name)
            if y is None:  # a data set without this task's target: no signal, zero gradient
                losses.append(out[t.name].sum() * 0.0)
            elif ready:
                losses.append(t.task_loss(out[t.name], y.to(ctx.device, non_blocking=True),
                                          complete=t.name in ys.complete))
            else:
                losses.append(self._task_loss(t, out[t.name], y.to(ctx.device)))
        return torch.stack(losses) / self._loss_scale.to(losses[0].dtype)

    def _task_losses(self, model, batches, ctx: Context) -> torch.Tensor:
        losses = []
        for t in self.tasks:
            if t.name not in batches:
                losses.append(None)
                continue
            x, ys = batches[t.name]
            with self.net.standardized_outputs():
                out = model(to_device(x, ctx.device), tasks=[t.name])[t.name]
            losses.append(self._task_loss(t, out, ys[t.name].to(ctx.device)))
        ref = next(v for v in losses if v is not None)
        stacked = torch.stack([ref * 0.0 if v is None else v for v in losses])
        return stacked / self._loss_scale.to(stacked.dtype)

    def _row_setup(self, device) -> None:
        """The per-row forms of the targets' maps, and the families of tasks that share a
        loss (kind, loss, outputs): a per-row batch is reduced family by family, never task by
        task."""
        mean, scale = self.net.stacked_scales(device)
        self._row_mean, self._row_scale = mean, scale
        fams: dict = {}
        for i, t in enumerate(self.tasks):
            key = (t.kind, t.loss if isinstance(t.loss, str) else id(t.loss), t.n_outputs)
            fams.setdefault(key, (t, []))[1].append(i)
        T = len(self.tasks)
        self._families = []
        for spec, members in fams.values():
            mask = torch.zeros(T, dtype=torch.bool)
            mask[members] = True
            self._families.append((spec, mask.to(device), spec.complete_row_loss()))

    def _ready_rows(self, ds: MultiTaskDataset) -> _ReadyRows:
        """``ds`` for training: each row's target in its head's units (float32, once for the
        data set instead of on every batch), and whether a label is missing anywhere (else the
        losses skip their masks). Its task positions were checked when it was made."""
        task, y = ds.task, ds.y
        mean, scale = self._row_mean.to(task.device), self._row_scale.to(task.device)
        W = y.shape[1]
        ys = ((y.double() - mean[task, :W]) / scale[task, :W]).float()
        widths = torch.tensor([t.target_width for t in self.tasks], device=task.device)
        used = torch.arange(W, device=task.device)[None, :] < widths[task][:, None]
        complete = not bool((torch.isnan(ys) & used).any())
        return _ReadyRows(ds.X, task, ys[:, 0] if W == 1 else ys, complete)

    def _ready_targets(self, ds: MultiTaskDataset) -> _ReadyColumns:
        """``ds`` for training: each task's target in its head's units (float32, once for
        the data set), and the tasks without a missing label (their losses skip the masks).
        The target names were checked when it was made."""
        targets, complete = {}, set()
        for name, y in ds.targets.items():
            targets[name] = self.net.standardize_target(name, y).float()
            if not bool(torch.isnan(targets[name]).any()):
                complete.add(name)
        return _ReadyColumns(ds.X, targets, complete)

    def _fast_rows(self, data: _ReadyRows, ctx: Context) -> Callable | None:
        """The task losses of the batch ``data[idx]`` as :meth:`_row_losses` computes them, in
        one function ``losses(model, idx)`` whose choices are made once (one loss family, no
        label missing): the trainer's per-step path on a per-row data set. None where they
        do not hold."""
        if not data.complete or len(self._families) != 1:
            return None
        spec, _, loss = self._families[0]
        width = spec.target_width
        flags, T, inv, dev = self.net.__dict__, len(self.tasks), self._inv_scale, ctx.device
        local = device_of(data.X) == dev and data.task.device == dev
        X, tasks, ys, dense = data.X, data.task, data.y, isinstance(data.X, torch.Tensor)

        def losses(model, idx: torch.Tensor) -> torch.Tensor:
            x = X[idx] if dense else take(X, idx)
            task, y = tasks[idx], ys[idx]
            if not local:
                x = to_device(x, dev, non_blocking=True)
                task, y = task.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            before, flags["_standardized"] = flags["_standardized"], True
            try:
                out = model(x, rows=task)
            finally:
                flags["_standardized"] = before
            per = loss(out if out.dtype == torch.float32 else out.float(), y)
            if per.dtype != torch.float32:
                per = per.float()
            count = torch.bincount(task, minlength=T)
            if width != 1:
                count = count * width
            return per.new_zeros(T).index_add_(0, task, per) * (inv / count.clamp(min=1))

        return losses

    def _row_losses(self, model, x, ys, ctx: Context) -> torch.Tensor:
        r"""Per-row batch: each row through its own task's head, each task's mean loss over
        its rows by segment sums, :math:`L_t = \sum_{i: t_i = t} \ell_i / n_t` (0, with a
        zero gradient, for a task without rows in the batch)."""
        task, y = ys
        ready = isinstance(ys, _Ready)
        if not ready:  # a loader's batch: checked where it is, before the transfer
            check_rows(task, len(self.tasks))
        dev = ctx.device
        task, y = task.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if not ready:
            y = y[:, None] if y.ndim == 1 else y
            W = y.shape[1]
            y = ((y.double() - self._row_mean[task, :W]) / self._row_scale[task, :W]).float()
        with self.net.standardized_outputs():
            out = model(to_device(x, dev, non_blocking=True), rows=task)
        if out.dtype != torch.float32:
            out = out.float()
        T = len(self.tasks)
        complete = ready and ys.complete
        total = count = None
        families = self._families
        for spec, mask, complete_loss in families:
            if len(families) == 1:
                rows_t, f, yy = task, out, y
            else:
                rows = torch.nonzero(mask[task])[:, 0]
                rows_t, f, yy = task[rows], out[rows], y[rows]
            loss, n = ((complete_loss(f, yy), spec.target_width) if complete
                       else spec.row_losses(f, yy))
            if loss.dtype != torch.float32:
                loss = loss.float()
            if complete:  # every row counts n labels
                n_t = torch.bincount(rows_t, minlength=T)
                n_t = n_t if n == 1 else n_t * n
            else:
                n_t = loss.new_zeros(T).index_add_(0, rows_t, n.to(loss.dtype))
            if total is None:
                total, count = loss.new_zeros(T).index_add_(0, rows_t, loss), n_t
            else:
                total, count = total.index_add(0, rows_t, loss), count + n_t
        return total * (self._inv_scale / count.clamp(min=1))

    def _tasks_in(self, ds: MultiTaskDataset) -> set[str]:
        if ds.targets is not None:
            return set(ds.targets)
        return {self.tasks[i].name for i in torch.unique(ds.task).tolist()}

    def _adapt_encoders(self, loaders: dict, ctx: Context) -> None:
        """One pass over the training inputs for every module of the net that learns input
        statistics before training (``needs_adapt()`` / ``adapt(inputs)``: the numeric
        columns' means and deviations)."""
        mods = [m for c in (self.net, *_others(self.net))
                for m in (c.modules() if c is not self.net else (c,))
                if hasattr(m, "needs_adapt") and hasattr(m, "adapt") and m.needs_adapt()]
        if not mods:
            return
        sources = [v.dataset if isinstance(v, Batches) else v for v in loaders.values()]

        def inputs():
            for src in sources:
                if isinstance(src, MultiTaskDataset):
                    yield from chunks(src.X, 65536)
                else:
                    for x, _ in src:
                        yield x

        for m in mods:
            m.adapt(inputs())
        self.net.to(ctx.device)

    def _step_end(self, model, net, batch, drawn, ctx: Context, autocast, reduce) -> None:
        """Give the weighting the losses of the step's batch at the updated parameters (FAMO):
        one more forward pass without gradients, leaving the net's buffers as they were."""
        saved = _buffers_to_keep(net)
        with torch.no_grad(), autocast():
            if batch is not None:
                new = self._losses(model, batch, ctx)
            else:
                new = self._task_losses(model, drawn, ctx)
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)
        self.weighting.step_end(new.detach().float(), reduce=reduce)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def _outputs(self, X: Any, device, batch_size: int = 4096,
                 standardized: bool = False, rows: torch.Tensor | None = None) -> Any:
        """The net's outputs on X (regression: the heads' h when ``standardized``); with
        ``rows``, each row's own task's output (B, max n_outputs)."""
        self.net.eval()
        outs = []
        with self.net.standardized_outputs() if standardized else nullcontext():
            for i, x in enumerate(chunks(X, batch_size)):
                r = None if rows is None else rows[i * batch_size:(i + 1) * batch_size]
                outs.append(self.net(to_device(x, device)) if r is None
                            else self.net(to_device(x, device), rows=r.to(device)))
        if rows is not None:
            return _wide(torch.cat(outs))
        return {k: _wide(torch.cat([o[k] for o in outs])) for k in outs[0]}

    def _validate(self, ds: Any, ctx: Context) -> dict:
        if isinstance(ds, MultiTaskDataset) and ds.per_row:
            return self._validate_rows(ds.X, ds.task, ds.y, ctx)
        if isinstance(ds, MultiTaskDataset):
            X, Y = ds.X, ds.targets
        else:  # a loader: gather it
            xs, ys, rows = [], {}, []
            for x, y in ds:
                xs.append(x)
                if not isinstance(y, Mapping):  # per row: (task index, y)
                    rows.append(y)
                    continue
                for k, v in y.items():
                    ys.setdefault(k, []).append(v)
            if rows:
                return self._validate_rows(_cat_inputs(xs), torch.cat([r[0] for r in rows]),
                                           torch.cat([r[1] for r in rows]), ctx)
            X, Y = _cat_inputs(xs), {k: torch.cat(v) for k, v in ys.items()}
        out = self._outputs(X, ctx.device, standardized=True)
        scales = self.net.target_scales
        row, total = {}, 0.0
        for j, t in enumerate(self.tasks):
            if t.name not in Y:
                continue
            y = Y[t.name].to(ctx.device)
            h = out[t.name]
            if t.name in scales:  # the loss of training (standardized), metrics in units
                loss = t.task_loss(h.double(), scales[t.name].standardize(y.double()))
                f = scales[t.name](h)
            else:
                loss, f = t.task_loss(h, y), h
            loss = float(loss) / float(self._loss_scale[j])
            row[f"val_loss/{t.name}"] = loss
            total += t.weight * loss
            pred = t.transform(f).cpu().numpy()
            for m, v in t.scores(Y[t.name].cpu().numpy(), pred).items():
                row[f"val/{t.name}/{m}"] = v
        row["val_loss"] = total
        return row

    def _validate_rows(self, X: Any, task: torch.Tensor, y: torch.Tensor, ctx: Context) -> dict:
        """Validation on per-row data: losses by segment sums, metrics task by task."""
        h = self._outputs(X, ctx.device, standardized=True, rows=task.cpu())
        task = task.cpu()
        y = y.cpu()
        y2 = y[:, None] if y.ndim == 1 else y
        W = y2.shape[1]
        mean, scale = (v.cpu() for v in self.net.stacked_scales())
        ys = (y2.double() - mean[task, :W]) / scale[task, :W]
        units = h.double() * scale[task, :h.shape[1]] + mean[task, :h.shape[1]]
        T = len(self.tasks)
        total_t = torch.zeros(T, dtype=torch.float64)
        count_t = torch.zeros(T, dtype=torch.float64)
        for spec, mask in self._families_cpu():
            rows = torch.nonzero(mask[task])[:, 0]
            loss, n = spec.row_losses(h[rows].double(), ys[rows])
            total_t.index_add_(0, task[rows], loss.double())
            count_t.index_add_(0, task[rows], n.double())
        row, total = {}, 0.0
        order = torch.argsort(task, stable=True)
        bounds = torch.searchsorted(task[order], torch.arange(T + 1))
        for j, t in enumerate(self.tasks):
            a, b = int(bounds[j]), int(bounds[j + 1])
            if a == b:
                continue
            idx = order[a:b]
            loss = float(total_t[j] / count_t[j].clamp(min=1)) / float(self._loss_scale[j])
            row[f"val_loss/{t.name}"] = loss
            total += t.weight * loss
            f = units[idx] if t.kind == "regression" else h[idx]
            pred = t.transform(f[:, :t.n_outputs].float() if t.kind != "regression"
                               else f[:, :t.n_outputs]).cpu().numpy()
            yt = y2[idx, :t.target_width].numpy()
            yt = yt[:, 0] if t.target_width == 1 else yt
            for m, v in t.scores(yt, pred).items():
                row[f"val/{t.name}/{m}"] = v
        row["val_loss"] = total
        return row

    def _families_cpu(self):
        if not hasattr(self, "_families"):
            self._row_setup("cpu")
        return [(spec, mask.cpu()) for spec, mask, _ in self._families]

    def predict(self, X: Any, tasks: list[str] | None = None,
                batch_size: int = 4096, task: Any = None) -> Any:
        """The predictions of the net on ``X``.

        Parameters
        ----------
        X : array-like, tensor, SciPy sparse matrix or dict of them
            The inputs, in the form the net reads (see ``regmtl.deep.inputs``).
        tasks : list of str, optional
            The tasks to predict (default: all).
        batch_size : int, default=4096
            Rows per forward pass.
        task : array-like of shape (n_samples,), optional
            Each row's task (names or positions): predict each row for its own task only
            (only that task's head runs on it).

        Returns
        -------
        dict of str to ndarray, or ndarray
            For each task: values, P(y = 1) of shape (n,), or class probabilities (n, K).
            With ``task``: each row's prediction, (n,) when every task has one output, else
            (n, max) padded with NaN.
        """
        from .data import row_tasks

        x = as_inputs(X)
        device = next(self.net.parameters()).device
        if task is not None:
            pos = torch.from_numpy(row_tasks(task, self.tasks, n_rows(x)))
            out = self._outputs(x, device, batch_size, rows=pos)
            width = max(t.n_outputs if t.kind == "multiclass" else t.target_width
                        for t in self.tasks)
            res = torch.full((len(pos), width), float("nan"), dtype=torch.float64)
            for spec, mask in self._families_cpu():
                rows = torch.nonzero(mask[pos])[:, 0]
                p = spec.transform(out[rows, :spec.n_outputs].to(
                    torch.float64 if spec.kind == "regression" else torch.float32))
                p = p[:, None] if p.ndim == 1 else p
                res[rows, :p.shape[1]] = p.double()
            return (res[:, 0] if width == 1 else res).numpy()
        out = self._outputs(x, device, batch_size)
        specs = {t.name: t for t in self.tasks}
        names = self.net._selected(tasks)
        return {k: specs[k].transform(out[k]).cpu().numpy() for k in names}

    def evaluate(self, data: Any) -> dict[str, float]:
        """Validation losses and metrics of the current net.

        Parameters
        ----------
        data : tuple, MultiTaskDataset or DataLoader
            ``(X, targets)``, a dataset or a loader, as ``val`` of :meth:`fit`.

        Returns
        -------
        dict of str to float
            ``val_loss``, ``val_loss/TASK`` and ``val/TASK/METRIC`` of the tasks with
            targets.
        """
        ds = as_dataset(data, self.tasks, what="data")
        device = next(self.net.parameters()).device
        return self._validate(ds, Context(device))

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch: losses, weights, penalty, validation losses and metrics, time.

        A copy: changing it changes nothing in the trainer. Raises ``AttributeError``
        before :meth:`fit`.
        """
        if self.history_ is None:
            raise AttributeError("history: call fit first.")
        return self.history_.copy()


def _wide(t: torch.Tensor) -> torch.Tensor:
    """Outputs at least in float32 (float64 where the target map made them so)."""
    return t if t.dtype == torch.float64 else t.float()


def _cat_inputs(xs: list) -> Any:
    """Concatenate input batches (tensors, sparse CSR tensors or dicts of them)."""
    first = xs[0]
    if isinstance(first, dict):
        return {k: _cat_inputs([x[k] for x in xs]) for k in first}
    if isinstance(first, torch.Tensor) and first.layout == torch.sparse_csr:
        import scipy.sparse as sp

        from .inputs import SparseRows

        mats = [sp.csr_matrix((x.values().cpu().numpy(), x.col_indices().cpu().numpy(),
                               x.crow_indices().cpu().numpy()), shape=tuple(x.shape))
                for x in xs]
        return SparseRows(sp.vstack(mats).tocsr())
    return torch.cat(xs)


class _Ready(tuple):
    """``(task, y)`` of a batch of :class:`_ReadyRows`: positions checked, targets in the
    heads' units (float32); ``complete``: no label missing."""

    complete = False


class _ReadyComplete(_Ready):
    complete = True


class _ReadyTargets(dict):
    """``{task: y}`` of a batch of :class:`_ReadyColumns`: names checked, targets in the heads'
    units (float32); ``complete``: the tasks without a missing label."""

    complete: frozenset = frozenset()


class _ReadyColumns:
    """A per-task data set prepared for training (see :meth:`Trainer._ready_targets`): what
    :class:`~regmtl.deep.Batches` indexes."""

    per_row = False

    def __init__(self, X: Any, targets: dict, complete: set):
        self.X, self.targets, self.complete = X, targets, frozenset(complete)
        self._dense = isinstance(X, torch.Tensor)

    def __len__(self) -> int:
        return n_rows(self.X)

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        x = self.X[idx] if self._dense else take(self.X, idx)
        ys = _ReadyTargets({k: v[idx] for k, v in self.targets.items()})
        ys.complete = self.complete
        return x, ys


def _batch_losses(trainer: Trainer, data: Any, model: Any, idx: torch.Tensor,
                  ctx: Context) -> torch.Tensor:
    """The task losses of the batch ``data[idx]`` (the step loop's form of
    :meth:`Trainer._losses`)."""
    return trainer._losses(model, data[idx], ctx)


class _ReadyRows:
    """A per-row data set prepared for training (see :meth:`Trainer._ready_rows`): what
    :class:`~regmtl.deep.Batches` indexes."""

    def __init__(self, X: Any, task: torch.Tensor, y: torch.Tensor, complete: bool):
        self.X, self.task, self.y, self.complete = X, task, y, complete
        self.per_row = True
        self._pair = _ReadyComplete if complete else _Ready
        self._dense = isinstance(X, torch.Tensor)

    def __len__(self) -> int:
        return len(self.task)

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        x = self.X[idx] if self._dense else take(self.X, idx)
        return x, self._pair((self.task[idx], self.y[idx]))


def _fusable(params: list) -> bool:
    """Whether the fused Adam kernel takes these parameters: dense floating-point tensors on
    one CPU or CUDA device."""
    params = list(params)
    if not params:
        return False
    dev = params[0].device
    return dev.type in ("cpu", "cuda") and all(
        isinstance(p, torch.Tensor) and p.device == dev and p.is_floating_point()
        and p.layout == torch.strided for p in params)


def _others(net: MultiTaskNet) -> list:
    """The net's child modules but its target maps (which neither a forward pass nor the
    training mode changes; with many tasks, walking them costs more than the rest)."""
    maps = net._modules.get("target_scales")
    return [m for m in net._modules.values() if m is not None and m is not maps]


def _buffers_to_keep(net: MultiTaskNet) -> list:
    """(buffer, copy) of the net's buffers that a forward pass may change (the target maps
    change only when set: not copied)."""
    bufs = [b for b in net._buffers.values() if b is not None]
    bufs += [b for m in _others(net) for b in m.buffers()]
    return [(b, b.detach().clone()) for b in bufs]




def _frame(rows: list[dict]) -> pd.DataFrame:
    """The history from its rows: one float block when every row has the same columns and
    all of them are numbers (epoch as int), as ``pd.DataFrame(rows)`` gives it, at a tenth
    of its cost with thousands of columns."""
    keys = list(rows[0]) if rows else []
    if (not rows or any(list(r) != keys for r in rows[1:])
            or not {type(v) for r in rows for v in r.values()} <= {int, float, np.float64}):
        return pd.DataFrame(rows)
    frame = pd.DataFrame(np.array([list(r.values()) for r in rows], dtype=np.float64),
                         columns=keys)
    for k, v in rows[0].items():
        if type(v) is int and all(type(r[k]) is int for r in rows):
            frame[k] = frame[k].astype(np.int64)
    return frame

