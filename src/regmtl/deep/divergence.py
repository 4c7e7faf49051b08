r"""Divergence of a fit: a training loss, gradient, parameter or validation loss that turned
non-finite, found without a host synchronization per step.

Every step adds its (T,) task losses to the epoch's running sum :math:`S` (the trainer does
so anyway) and :class:`DivergenceGuard` counts, per task, the steps after which :math:`S_t`
was still finite: NaN and :math:`\pm\infty` never turn finite again under addition, so at the
end of the epoch the smallest count is the first step whose loss was not finite, and the
tasks holding it are those whose loss turned first. Gradients are counted from the norm of
each step's gradient where the step takes it anyway (with ``grad_clip``); the weights are
checked once per epoch, so a non-finite gradient is found at the latest at the end of its
epoch (and as a non-finite loss of the next step). Under float16 loss scaling an overflowing
step is the gradient scaler's to skip, not a divergence: there the weights, the validation
losses and an epoch whose every step overflowed are judged. The counts are read only at the
end of an epoch, where the trainer reads the epoch's losses anyway.

:class:`TrainingDiverged` is what a fit raises with ``on_divergence="raise"``; with
``"restore_best"`` the trainer restores the best weights seen and warns with the same words
(``divergence_message``).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._torch import torch
from .conversion import find_stack_level
from .stopping import Monitor
from .weighting.helpers import NonFiniteTask

__all__ = ["ON_DIVERGENCE", "TrainingDiverged", "Divergence", "DivergenceGuard",
           "DivergenceWatch", "divergence_message", "validation_divergence"]

Tensor = torch.Tensor

#: The choices of ``on_divergence``: raise, or restore the best weights seen and warn.
ON_DIVERGENCE = ("raise", "restore_best")


class TrainingDiverged(FloatingPointError, ValueError):
    """A fit whose training loss, gradient, weights or validation loss turned non-finite.

    Raised by :meth:`~regmtl.deep.Trainer.fit` (and the deep wrappers' ``fit``) with
    ``on_divergence="raise"``; the message names the task, the epoch, the step and the
    learning rate. The trainer's ``history_`` holds the epochs that ended, the diverged one
    last where it ended. A ``FloatingPointError`` and a ``ValueError`` (what a weighting's
    own check of its losses raised before).

    Parameters
    ----------
    message : str
        What diverged and where (``divergence_message``).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import HardSharing, Trainer, TrainingDiverged, set_seed
    >>> X = np.random.default_rng(0).standard_normal((32, 2))
    >>> set_seed(0)
    >>> trainer = Trainer(HardSharing(2, ["a"], hidden=(4,)), optimizer="sgd", lr=1e8,
    ...                   max_epochs=2, batch_size=8)
    >>> try:
    ...     trainer.fit((X, {"a": X[:, 0]}))
    ... except TrainingDiverged as e:
    ...     print(str(e).split(", with")[0])
    Training diverged: the training loss of task 'a' turned NaN at epoch 1, step 3
    """


@dataclass
class Divergence:
    """Where a fit diverged.

    Attributes
    ----------
    what : str
        ``"loss"`` (a training loss), ``"gradient"``, ``"weights"``, ``"validation"`` or
        ``"overflow"`` (every step of an epoch skipped by the float16 gradient scaler).
    epoch : int
        The epoch, from 1.
    step : int or None
        The step in the epoch, from 1 (None where not known: weights, validation).
    tasks : list of str
        The tasks whose value turned first (empty for gradients and weights).
    value : float
        The first non-finite value seen (NaN or ±inf).
    """

    what: str
    epoch: int
    step: int | None
    tasks: list[str]
    value: float


class DivergenceGuard:
    """Counts, without a host synchronization, the steps of an epoch whose running loss sum
    and gradient norm stayed finite.

    Parameters
    ----------
    names : sequence of str
        The tasks, in the order of the losses.
    device : torch.device
        Where the losses are.
    """

    def __init__(self, names: Sequence[str], device: torch.device):
        self.names = list(names)
        self.device = device
        self.start_epoch()

    def start_epoch(self) -> None:
        """Reset the counts."""
        self.loss_ok = torch.zeros(len(self.names), dtype=torch.int64, device=self.device)
        self.grad_ok = torch.zeros((), dtype=torch.int64, device=self.device)
        self.grad_steps = 0
        self.finite_steps = torch.zeros((), dtype=torch.int64, device=self.device)

    def losses(self, running: Tensor) -> None:
        """Count a step whose running sum of task losses is ``running`` (T,)."""
        self.loss_ok += torch.isfinite(running)

    def batch(self, losses: Tensor) -> None:
        """Count a step whose own task losses ``losses`` (T,) are all finite (under loss
        scaling, where a step that overflows is skipped, not a divergence)."""
        self.finite_steps += torch.isfinite(losses).all()

    def gradient(self, norm: Tensor) -> None:
        """Count a step whose gradient norm is ``norm`` (a scalar tensor), while every step
        before had a finite one."""
        self.grad_ok += torch.isfinite(norm.to(self.device)) & (self.grad_ok == self.grad_steps)
        self.grad_steps += 1

    def check(self, epoch: int, n_steps: int, train_losses: Sequence[float],
              params: Iterable[Tensor], scaled: bool = False) -> Divergence | None:
        """Where the epoch ``epoch`` (from 0) of ``n_steps`` steps diverged, or None.

        ``train_losses`` are the epoch's mean task losses (already on the host); the counts
        are read only when one is not finite. ``params`` are checked once. ``scaled``: under
        loss scaling, the losses diverged only if no step of the epoch had finite ones (each
        was skipped); the counts of :meth:`losses` are not read.
        """
        if scaled:
            if n_steps and not any(map(math.isfinite, train_losses)) \
                    and int(self.finite_steps) == 0:
                return Divergence("overflow", epoch + 1, None, [], math.inf)
            return None if parameters_finite(params) else \
                Divergence("weights", epoch + 1, n_steps, [], math.nan)
        bad_loss = [i for i, v in enumerate(train_losses) if not math.isfinite(v)]
        first_grad = None
        if self.grad_steps:
            ok = int(self.grad_ok)  # one read per epoch
            first_grad = ok + 1 if ok < self.grad_steps else None
        if bad_loss:
            counts = self.loss_ok.tolist()
            first = min(counts[i] for i in bad_loss)
            if first_grad is not None and first_grad <= first:  # the gradient went first
                return Divergence("gradient", epoch + 1, first_grad, [], math.nan)
            tasks = [self.names[i] for i in bad_loss if counts[i] == first]
            value = next(train_losses[i] for i in bad_loss if counts[i] == first)
            return Divergence("loss", epoch + 1, first + 1, tasks, value)
        if first_grad is not None:
            return Divergence("gradient", epoch + 1, first_grad, [], math.nan)
        if not parameters_finite(params):
            return Divergence("weights", epoch + 1, n_steps, [], math.nan)
        return None


def parameters_finite(params: Iterable[Tensor]) -> bool:
    """Whether every entry of ``params`` is finite (one host read)."""
    flags = [torch.isfinite(p.detach()).all() for p in params if p.numel()]
    return bool(torch.stack(flags).all()) if flags else True


def validation_divergence(row: dict, epoch: int) -> Divergence | None:
    """The tasks whose validation loss in the history row ``row`` is not finite, if any."""
    bad = [k.split("/", 1)[1] for k, v in row.items()
           if k.startswith("val_loss/") and not math.isfinite(v)]
    if not bad:
        return None
    value = row[f"val_loss/{bad[0]}"]
    return Divergence("validation", epoch + 1, None, bad, value)


def divergence_message(d: Divergence, lr: float, optimizer: str) -> str:
    """What happened and where, in words, with the likely fixes."""
    tasks = ", ".join(repr(t) for t in d.tasks)
    value = "NaN" if math.isnan(d.value) else f"{d.value:g}"
    where = f"epoch {d.epoch}" + ("" if d.step is None else f", step {d.step}")
    if d.what == "loss":
        head = (f"the training loss of task{'s' if len(d.tasks) > 1 else ''} {tasks} turned "
                f"{value} at {where}")
    elif d.what == "gradient":
        head = f"the gradient turned non-finite at {where} (the task losses were finite)"
    elif d.what == "overflow":
        head = (f"every step of {where} had a non-finite loss under float16 loss scaling (the "
                "gradient scaler skipped them all)")
    elif d.what == "weights":
        head = (f"the net's weights turned non-finite at the end of {where} (an update "
                "overflowed)")
    else:
        head = (f"the validation loss of task{'s' if len(d.tasks) > 1 else ''} {tasks} is "
                f"{value} after {where} (the training losses were finite)")
    name = optimizer if isinstance(optimizer, str) else "optimizer"
    return (f"Training diverged: {head}, with {name} at lr={lr:g}. Lower the learning rate, "
            "set grad_clip, keep standardize=True and normalize_losses=True, or check the "
            "task's loss for values it cannot take (a loss callable returning NaN).")


class DivergenceWatch:
    """What a fit does about divergence: the guard of its steps, the check of each epoch, and
    with ``on_divergence="restore_best"`` the weights to restore.

    Parameters
    ----------
    mode : {"raise", "restore_best"}
        The trainer's ``on_divergence``.
    net : MultiTaskNet
        The net being trained.
    kept_by_monitor : bool
        Whether the trainer keeps the best weights by its monitor (validation data or early
        stopping); else, restoring, they are kept here by the training loss.
    names : sequence of str
        The tasks.
    device : torch.device
        Where the losses are.
    scaled : bool
        Whether a gradient scaler skips overflowing steps (float16).
    """

    def __init__(self, mode: str, net: Any, kept_by_monitor: bool, names: Sequence[str],
                 device: torch.device, scaled: bool):
        self.mode, self.net, self.names, self.scaled = mode, net, list(names), scaled
        self.guard = DivergenceGuard(names, device)
        restoring = mode == "restore_best"
        self.fallback = Monitor("loss", 1.0, None) if restoring and not kept_by_monitor \
            else None
        self.fallback_state: dict | None = None
        self.initial = copy.deepcopy(net.state_dict()) if restoring else None
        self.found: Divergence | None = None

    def steps(self, train_step: Callable, setup: Any, batches: Iterable, epoch: int
              ) -> Iterator:
        """``train_step(setup, losses_of, n)`` of each batch of epoch ``epoch`` (from 0),
        with the counts reset; a weighting's own refusal of a non-finite loss or gradient
        (:class:`~regmtl.deep.weighting.helpers.NonFiniteTask`) ends the epoch with
        :attr:`found` naming its step."""
        self.guard.start_epoch()
        self.found = None
        for n, losses_of in enumerate(batches):
            try:
                out = train_step(setup, losses_of, n)
            except NonFiniteTask as e:
                self.found = Divergence(e.what, epoch + 1, n + 1, e.tasks, math.nan)
                return
            yield out

    def step(self, running: Tensor, losses: Tensor) -> None:
        """Count a step: ``running`` the epoch's sum of task losses so far, ``losses`` the
        step's own."""
        if self.scaled:
            self.guard.batch(losses)
        else:
            self.guard.losses(running)

    def check(self, epoch: int, n_steps: int, row: dict) -> Divergence | None:
        """Where epoch ``epoch`` (from 0), whose history row is ``row``, diverged, or None
        (then, restoring without a monitor, its weights are kept if its loss is the best)."""
        found = self.guard.check(epoch, n_steps, [row[f"loss/{k}"] for k in self.names],
                                 self.net.parameters(), scaled=self.scaled) \
            or validation_divergence(row, epoch)
        if found is None and self.fallback is not None and self.fallback.update(row)[0]:
            self.fallback_state = copy.deepcopy(self.net.state_dict())
        return found

    def state(self) -> tuple[dict[str, dict[str, Tensor]], dict | None]:
        """What the watch carries from epoch to epoch, for a training state: the weights it
        may restore (``"initial"``, ``"fallback"``: state dicts, absent where not kept) and the
        record of its fallback monitor (None without one)."""
        weights = {k: v for k, v in (("initial", self.initial),
                                     ("fallback", self.fallback_state)) if v is not None}
        return weights, None if self.fallback is None else self.fallback.state()

    def load_state(self, weights: dict[str, dict[str, Tensor]], record: dict | None,
                   where: str) -> None:
        """Restore :meth:`state` (weights already checked against the net)."""
        if "initial" in weights and self.initial is not None:
            self.initial = weights["initial"]
        self.fallback_state = weights.get("fallback")
        if self.fallback is not None and record is not None:
            self.fallback.load_state(record, where)

    def settle(self, found: Divergence, lr: float, optimizer: Any, best_state: dict | None,
               monitor: Monitor | None) -> int:
        """Raise :class:`TrainingDiverged` on ``found``, or restoring, load the best weights
        seen (``best_state`` of ``monitor``'s best epoch, else those kept here, else the
        initial ones), warn, and return their epoch (0: the initial weights)."""
        message = divergence_message(found, lr, optimizer)
        if self.mode == "raise":
            raise TrainingDiverged(message)
        state, keeper = ((best_state, monitor) if self.fallback is None
                         else (self.fallback_state, self.fallback))
        self.net.load_state_dict(self.initial if state is None else state)
        epoch = 0 if state is None or keeper is None else int(keeper.best_epoch)
        kept = "the initial weights are" if epoch == 0 else f"the weights of epoch {epoch} are"
        warnings.warn(f"{message} {kept} restored (on_divergence='restore_best').",
                      UserWarning, stacklevel=find_stack_level())
        return epoch
