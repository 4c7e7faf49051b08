r"""Training loop of the multi-task nets.

Each step draws a batch, computes every task's loss on its observed labels, hands the (T,)
losses with the smooth penalties to the weighting method (which writes the gradients), takes an
optimizer step, then the proximal steps of the non-smooth penalties. Each epoch ends with the
validation losses and metrics, early stopping on a chosen quantity, and the best weights kept
(in memory, and on disk with ``checkpoint_dir``). Under ``torchrun`` the net is wrapped in
``DistributedDataParallel`` and each rank trains on its share of every global batch.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._options import check_option
from ._torch import torch
from .batch_losses import TaskLosses, loss_families
from .checkpoint import save_checkpoint
from .data import Batches, Cycle, as_dataset
from .diagnostics import (
    MAX_COSINE_TASKS,
    GradientBalance,
    after_fit,
    check_dominance,
    fit_balance,
)
from .distributed import Context, setup
from .divergence import ON_DIVERGENCE, DivergenceWatch
from .fit_setup import scale_targets, training_loaders
from .heads import TaskGates, TaskHeads
from .nets import MultiTaskNet
from .optim import clip_grad_norm, make_optimizer
from .penalties import ParameterPenalty, make_penalties
from .preflight import adapt_encoders, probe_inputs
from .reach import TargetReach, warn_if_unreached
from .step import StepSetup, mixed_precision, owns_precision, train_step
from .stopping import EarlyStopping, fit_monitor, history_columns
from .training_state import (
    FitParts,
    TrainingState,
    check_save_state,
    open_state,
    recorded_options,
    resume_source,
)
from .validation import predict, validate
from .weighting import Weighting, make_weighting, shared_representation

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
        see :func:`~regmtl.deep.save_checkpoint`); without a monitor, the final weights. With
        ``save_state=True`` also the training state of every epoch.
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
        Each rank takes its share of every global batch; each task's loss is the global batch's
        (summed losses and label counts all-reduced): one process's result with W times larger
        batches, uneven or with missing labels; every rank validates on all of ``val``.
    seed : int, default=0
        Seeds the batch order, dropout and random weighting (the net's initial weights are
        drawn when it is built: seed before that, e.g. with :func:`~regmtl.deep.set_seed`);
        in [0, 2**62].
    progress : bool, default=False
        A tqdm bar over epochs with the latest losses.
    grad_balance : int or "auto", default="auto"
        Steps of every epoch (evenly spread) on which each task's share of the shared
        parameters' gradient norm and the pairwise gradient cosines are measured and logged
        (:class:`~regmtl.deep.diagnostics.GradientBalance`: T backward passes of the
        weighted losses; cosines up to 16 tasks); 0: off. "auto": 1 up to 16 tasks, else 0.
        Not measured with one task or under DDP.
    dominance : float, DominanceRule or None, default=0.9
        A UserWarning names the task whose gradient share stayed above this in each of the
        last three epochs if it suppressed another (share under a tenth of its weight's,
        metric 10 % below its best, its level, or itself trained alone from the fit's start:
        :class:`~regmtl.deep.diagnostics.DominanceRule`); None: none.
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
    on_divergence : {"raise", "restore_best"}, default="raise"
        When a training loss, the clipped gradient, the weights or a validation loss turns
        NaN or infinite (``regmtl.deep.divergence``; no host synchronization per step):
        ``"raise"`` stops with :class:`~regmtl.deep.TrainingDiverged` naming the task, epoch,
        step and learning rate; ``"restore_best"`` restores the best weights seen (by the
        monitor, else the training loss; else the initial ones) and warns. A step that the
        float16 gradient scaler skips is not a divergence.
    save_state : bool or "memory", default=False
        Keep the whole training state (:class:`~regmtl.deep.training_state.TrainingState`)
        for ``fit(..., resume=...)``: True writes it into ``checkpoint_dir`` at the end of
        every epoch, "memory" keeps the last epoch's in ``state_`` only.

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
    expert_usage_ : ExpertUsage or None
        MMoE, CGC, PLE: the experts' use by the gates (``regmtl.deep.expert_use``).
    dominance_ : Dominance or None
        The last fit's dominance (:class:`~regmtl.deep.diagnostics.Dominance`), or None.
    history_ : DataFrame
        One row per epoch (also :attr:`history`): ``epoch``, ``loss`` (training, the sum of
        the task losses), ``loss/TASK``, ``weight/TASK`` (the mean weight of the epoch),
        ``penalty`` (the penalties' value at the end of the epoch, 0 without one),
        ``grad_share/TASK`` and ``grad_cos/A/B`` (see ``grad_balance``), ``val_loss``,
        ``val_loss/TASK``, ``val/TASK/METRIC``, ``lr`` and ``time`` (seconds).
    best_epoch_ : int
        The epoch (from 1) whose weights the net has after :meth:`fit` with ``restore_best``
        (the last epoch without a monitor; after a divergence with
        ``on_divergence="restore_best"``, the restored epoch, 0 for the initial weights).
    context_ : Context
        Where the last fit ran (device, rank, world size).
    state_ : TrainingState or None
        With ``save_state``, the training state after the last epoch run (else None).

    Raises
    ------
    ValueError
        If an option is invalid, naming it (checked here by type and range: flags must be
        bools, counts ints, a float such as 2.7 is refused rather than truncated, numbers
        finite; the data are checked by :meth:`fit`).

    Warns
    -----
    UserWarning
        Naming a regression task whose kept training loss is far above its mean's
        (``regmtl.deep.reach``): a target out of the outputs' reach with
        ``standardize=False``, or training that diverged without overflowing.

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
                 normalize_losses: bool = True, on_divergence: str = "raise",
                 save_state: bool | str = False):
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
        dominance = check_dominance(dominance, [t.name for t in net.tasks])
        standardize = opt("standardize", standardize, "bool")
        normalize_losses = opt("normalize_losses", normalize_losses, "bool")
        lazy_heads = opt("lazy_heads", lazy_heads, "bool")
        on_divergence = opt("on_divergence", on_divergence, "str", choices=ON_DIVERGENCE)
        save_state = check_save_state(save_state, checkpoint_dir)
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
        self.on_divergence = on_divergence
        self.save_state = save_state
        self.state_: TrainingState | None = None
        self._loss_scale = torch.ones(len(self.tasks))
        self._reach: dict[str, TargetReach] = {}
        self.history_: pd.DataFrame | None = None
        self.dominance_: Any = None

    # ------------------------------------------------------------------ fit
    @owns_precision
    def fit(self, train: Any, val: Any = None,
            resume: bool | str | os.PathLike | TrainingState | None = None) -> Trainer:
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
        resume : bool, str, path-like or TrainingState, optional
            Continue a fit from its training state (a folder of ``save_state=True``, True for
            ``checkpoint_dir``, or ``state_``) up to ``max_epochs`` counted from its first
            epoch: with the same data and options it equals the uninterrupted fit (bit for
            bit on the CPU; see ``regmtl.deep.training_state``). None: a new fit.

        Returns
        -------
        Trainer
            The trainer itself, with ``history_`` and ``best_epoch_``; the net is trained in
            place and left in evaluation mode.

        Raises
        ------
        ValueError
            If the data do not fit the net's tasks and features, or early stopping monitors
            a quantity that is not logged (``val_...`` without ``val``); TrainingDiverged
            (a ValueError) when training diverges with ``on_divergence="raise"``; a
            ``resume`` state modified, or saved for another net, optimizer or weighting.
        """
        where = resume_source(resume, self.checkpoint_dir)
        set_seed(self.seed)
        ctx = setup(self.device, self.distributed)
        self.context_ = ctx
        if self.lazy_heads and ctx.distributed:
            raise ValueError("lazy_heads=True runs in one process: DDP averages dense "
                             "gradients only; pass lazy_heads=False under torchrun.")
        loaders = training_loaders(train, self.tasks, self.net.check_targets,
                                   self.batch_size, self.seed, ctx)
        val_ds = None if val is None else as_dataset(val, self.tasks, what="val",
                                                     check=self.net.check_targets)
        monitor = fit_monitor(self.early_stopping, self.restore_best, self.tasks, val_ds,
                              self._columns)
        net = self.net
        if any(t.device != ctx.device for t in (*net.parameters(), *net.buffers())):
            net.to(ctx.device)
        for k, v in loaders.items():
            probe_inputs(net, v, "train" if k is None else f"train[{k!r}]", ctx.device)
        if val_ds is not None:
            probe_inputs(net, val_ds, "val", ctx.device)
        adapt_encoders(net, loaders, ctx.device)
        model = net
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        self.weighting.setup(self.tasks, seed=self.seed)
        self.weighting.to(ctx.device)
        watching = self.weighting.on_representation
        if watching:  # the route of the shared representation: the module the net names
            if None not in loaders or len(loaders) > 1:
                raise ValueError(f"{type(self.weighting).__name__}(on_representation=True) "
                                 "needs one batch for all tasks per step; train on one data "
                                 "set, or use on_representation=False.")
            trunk = shared_representation(net, self.weighting)
        params = list(net.parameters()) + list(self.weighting.parameters())
        opt = make_optimizer(self.optimizer, params, self.lr, self.weight_decay,
                             self.lazy_heads)
        options = recorded_options(self)
        state = None if where is None else open_state(  # checked, then net, weighting, opt
            resume, where, net, self.weighting, opt, ctx, options)
        autocast, scaler = mixed_precision(ctx.device, self.amp)
        balance, initial = fit_balance(self, net, self._measures_balance(ctx))
        # everything checked: the net's map may be set
        units = scale_targets(self.net, self.tasks, loaders, ctx, self.standardize,
                              self.normalize_losses, state)
        self._loss_scale, self.loss_scale_, self._reach = units
        losses = TaskLosses(net, self.tasks, self._loss_scale, ctx.device, ctx)
        self._loss_scale, self._families = losses.loss_scale, losses.families
        loader = loaders.get(None)
        if isinstance(loader, Batches):  # targets checked once, standardized once
            ds = loader.dataset
            loader.dataset = losses.ready_rows(ds) if ds.per_row else losses.ready_targets(ds)
        steps = max(len(v) for v in loaders.values())
        lazy = [m for m in net.modules() if isinstance(m, (TaskHeads, TaskGates))] \
            if self.lazy_heads else []
        # DDP averages one backward pass; surgery and per-task batches average by hand
        step = StepSetup(
            net=net, model=model, weighting=self.weighting, optimizer=opt, params=params,
            shared=[p for p in net.shared_parameters() if p.requires_grad],
            specific=[p for p in net.task_parameters() if p.requires_grad],
            smooth=[p for p in self.penalties if not p.proximal],
            prox=[p for p in self.penalties if p.proximal], ctx=ctx, autocast=autocast,
            scaler=scaler, grad_clip=self.grad_clip,
            clip=clip_grad_norm if lazy else torch.nn.utils.clip_grad_norm_,
            manual=ctx.distributed and (self.weighting.needs_task_grads or None not in loaders),
            balance=balance,
            every=max(1, steps // max(self._balance_steps, 1)))
        watch = DivergenceWatch(self.on_divergence, net, monitor is not None,
                                [t.name for t in self.tasks], ctx.device, scaler is not None)
        step.guard = watch.guard
        streams = {k: Cycle(v) for k, v in loaders.items()} if None not in loaders else {}
        rows, restored = [], None
        keeper = FitParts(net, opt, self.weighting, ctx, scaler, monitor, watch, streams,
                          loaders, options, self.checkpoint_dir,
                          self.save_state, self.max_epochs,
                          state if self.save_state else None)  # state_: None without save_state
        start = 0 if state is None else keeper.restore(state, rows, where)
        bar = None
        if self.progress and ctx.main:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.max_epochs, desc="epochs", leave=False)
        if watching:
            self.weighting.watch(trunk)
        try:
            for m in lazy:  # row-sparse head gradients for this fit
                m.sparse_grad = True
            for epoch in range(start, self.max_epochs):
                t0 = time.perf_counter()
                if epoch == start or val_ds is not None:  # (validation leaves it in eval)
                    model.train()
                tot = torch.zeros(len(self.tasks), device=ctx.device)
                wsum = torch.zeros(len(self.tasks), device=ctx.device)
                n_steps = 0
                batches = _batches(loaders, streams, steps, losses, model, epoch)
                for batch_losses, w in watch.steps(train_step, step, batches, epoch):
                    tot += batch_losses
                    watch.step(tot, batch_losses)
                    wsum += w.to(ctx.device)
                    n_steps += 1
                if (found := watch.found) is None:
                    row = self._epoch_row(epoch, tot, wsum, n_steps, step, val_ds)
                    row["time"] = time.perf_counter() - t0
                    rows.append(row)
                    if bar is not None:
                        bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "val_loss")
                                         if k in row})
                        bar.update()
                    found = watch.check(epoch, n_steps, row)
                if found is not None:
                    self.history_ = _frame(rows)  # (the epochs run, where it raises)
                    restored = watch.settle(found, self.lr, self.optimizer, keeper.best_state,
                                            monitor)
                    break
                if keeper.epoch_end(rows, n_steps, self._loss_scale):  # the monitor: stop
                    break
        finally:
            for m in lazy:
                m.sparse_grad = False
            if watching:
                self.weighting.unwatch()
            if bar is not None:
                bar.close()
        best_state, self.state_ = keeper.best_state, keeper.state
        if self.restore_best and best_state is not None and restored is None:
            net.load_state_dict(best_state)
        if self.checkpoint_dir is not None and monitor is None and ctx.main:
            save_checkpoint(self.checkpoint_dir, net, {"epoch": len(rows)})
        self.history_ = _frame(rows)
        best = monitor.best_epoch if monitor is not None else None  # (not argmin: NaN, delta)
        self.best_epoch_ = restored if restored is not None else best or len(rows)
        kept = (self.best_epoch_ if restored is not None or (self.restore_best and best_state)
                else len(rows))  # the epoch of the net's weights
        warn_if_unreached(self.history_, self.tasks, self._reach, self.lr, kept)
        self.expert_usage_ = after_fit(self, balance is not None, val_ds, loaders, ctx.main,
                                       train, initial)  # dominance warning, expert use
        self.net.eval()
        return self

    def _epoch_row(self, epoch: int, tot: torch.Tensor, wsum: torch.Tensor, n_steps: int,
                   step: StepSetup, val_ds: Any) -> dict:
        """The history's row of an epoch (but its time): the mean task losses and weights of
        its steps, the penalty, the gradient balance, the validation, the learning rate."""
        n = max(n_steps, 1)
        train_losses = step.ctx.mean(tot / n)
        self.weighting.epoch_end(train_losses.detach())
        row = {"epoch": epoch + 1, "loss": float(train_losses.sum())}
        for t, loss, w in zip(self.tasks, train_losses.tolist(), (wsum / n).tolist(),
                              strict=True):
            row[f"loss/{t.name}"], row[f"weight/{t.name}"] = loss, w
        with torch.no_grad():  # (0 without penalties: the column is always there)
            row["penalty"] = float(sum(p.value(self.net) for p in self.penalties))
        if step.balance is not None:
            row.update(step.balance.columns())
        if val_ds is not None:
            row.update(self._validate(val_ds, step.ctx))
        row["lr"] = step.optimizer.param_groups[0]["lr"]
        return row

    def _measures_balance(self, ctx: Context | None = None) -> bool:
        """Whether the gradient balance is logged: asked for, two tasks or more, one
        process (under DDP each rank's own gradients would be measured)."""
        return (self._balance_steps > 0 and len(self.tasks) > 1
                and not (ctx is not None and ctx.distributed))

    def _columns(self, val_tasks: set[str]) -> set[str]:
        """The columns of the history, validating the tasks in ``val_tasks``."""
        balance = (GradientBalance([t.name for t in self.tasks]).column_names()
                   if self._measures_balance() else [])
        return history_columns(self.tasks, val_tasks, balance)

    # ------------------------------------------------------------------ evaluation
    def _cpu_families(self) -> list:
        """The per-row loss families with CPU masks (those of the last fit, else built)."""
        families = getattr(self, "_families", None)
        if families is None:
            families = self._families = loss_families(self.tasks, "cpu")
        return [(spec, mask.cpu()) for spec, mask, _ in families]

    def _validate(self, ds: Any, ctx: Context) -> dict:
        return validate(self.net, self.tasks, ds, ctx.device, self._loss_scale,
                        self._cpu_families())

    @owns_precision
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
        return predict(self.net, self.tasks, X, self._cpu_families(), tasks, batch_size, task)

    @owns_precision
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
        ds = as_dataset(data, self.tasks, what="data", check=self.net.check_targets)
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


def _batches(loaders: dict, streams: dict, steps: int, losses: TaskLosses, model: Any,
             epoch: int) -> Iterator[Callable[[], torch.Tensor]]:
    """The steps of an epoch, each as the function that computes its batch's task losses:
    a data set's batches of indices, a loader's batches, or one batch per task (drawn from
    ``streams``, ``steps`` of them)."""
    if streams:
        for _ in range(steps):
            drawn = {t.name: next(streams[t.name]) for t in losses.tasks if t.name in streams}
            yield functools.partial(losses.per_task, model, drawn)
        return
    loader = loaders[None]
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "sampler", None), "set_epoch"):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader, Batches):
        of = losses.of_indices(loader.dataset)
        for idx in loader.indices():
            yield functools.partial(of, model, idx)
    else:
        for batch in loader:
            yield functools.partial(losses.batch, model, batch)


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

