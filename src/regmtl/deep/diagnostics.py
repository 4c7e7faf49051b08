r"""Gradient balance: how much of the shared parameters' gradient each task contributes.

With :math:`g_t = \nabla_\theta L_t` the gradient of task t's loss with respect to the shared
parameters :math:`\theta` (the trunk, not the heads), a step's *share* of task t and the
pairwise *cosines* are

.. math::

    s_t = \frac{\|g_t\|}{\sum_k \|g_k\|}, \qquad
    \cos_{st} = \frac{g_s^\top g_t}{\|g_s\| \, \|g_t\|}.

A share near 1 means one task writes the shared layers alone (its loss scale or its
gradient dominates and the others are suppressed); a negative cosine means two tasks pull the
shared layers apart (a *conflict*, what PCGrad, CAGrad, Nash-MTL, UPGrad... act on). The
:class:`~regmtl.deep.Trainer` measures both on a few steps of every epoch (T backward passes
through the trunk on each of those steps, on the losses as the weighting sees them, before
it combines them) and logs their means as ``grad_share/TASK`` and ``grad_cos/A/B``.
A task with no label in the batch (zero gradient) takes no part in that step's numbers.
The T(T-1)/2 cosines are measured for at most :data:`MAX_COSINE_TASKS` tasks; with more,
only the T shares (nothing of size T x T).

A share alone does not say that a task is *suppressed*: a task that has learned all it can
has small gradients (at 0.999 accuracy the other task writes the shared layers alone), and a
weighting such as IMTL rescales the gradients after they are measured, so a task can be
restored while the shares stay where they were. :func:`dominance` therefore judges each
dominated task by its own results. With :math:`q_t(e)` the task's judged quantity at epoch
:math:`e` (its headline validation metric, see :func:`judged_column`; its training loss without
validation data), :math:`\sigma = +1` where lower is better and :math:`-1` where higher is, its
reference :math:`r_t` the better of its best over the run and the user's single-task level
(when given), and :math:`\hat q_t` its best over the last epochs judged,

.. math::

    \text{gap}_t = \frac{\sigma (\hat q_t - r_t)}{|r_t|}, \qquad
    \text{suppressed}_t \iff \text{gap}_t > \text{tol} \quad (\text{default }
    :data:`SUPPRESSION_GAP` = 0.1),

a task is suppressed when even its best of those epochs stays more than 10 % below its
reference (relative to the reference's size; :math:`r_t = 0` counts any shortfall). A task
restored in the last epochs is at its best there and is not suppressed.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._options import check_option
from ._torch import torch
from .conversion import find_stack_level
from .tasks import METRICS
from .weighting.base import identity, task_gradients

__all__ = ["GradientBalance", "dominant_task", "dominance", "Dominance", "DominanceRule",
           "TaskStanding", "judged_column", "metric_directions", "check_levels",
           "check_dominance", "warn_if_dominated", "after_fit"]

#: the pairwise cosines are measured and logged up to this many tasks (120 pairs)
MAX_COSINE_TASKS = 16
#: a dominated task is *suppressed* when its best over the last epochs stays more than this
#: fraction (of its reference's size) below its reference
SUPPRESSION_GAP = 0.1
#: the metrics a task is judged by first, when it logs them (scores where 1 is perfect)
HEADLINE_METRICS = ("r2", "auc", "accuracy")

Tensor = torch.Tensor


class GradientBalance:
    """Accumulates the shares and cosines of the sampled steps of one epoch.

    Parameters
    ----------
    names : sequence of str
        The tasks, in the order of the losses.
    """

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.pairs = (list(itertools.combinations(range(len(self.names)), 2))
                      if len(self.names) <= MAX_COSINE_TASKS else [])
        self._reset()

    def _reset(self) -> None:
        T, P = len(self.names), len(self.pairs)
        self._share, self._n_share = np.zeros(T), np.zeros(T)
        self._cos, self._n_cos = np.zeros(P), np.zeros(P)

    def add(self, losses: Tensor, shared: Sequence[torch.nn.Parameter]) -> None:
        """Measure one step: the per-task gradients of ``losses`` (T,) with respect to the
        ``shared`` parameters (the graph is kept for the step's own backward pass)."""
        params = [p for p in shared if p.requires_grad]
        if not params or not losses.requires_grad:
            return
        G = task_gradients(losses, params, identity).to("cpu", torch.float64).numpy()
        norms = np.linalg.norm(G, axis=1)
        live = (norms > 0) & np.isfinite(norms)
        if live.sum() >= 1:
            self._share[live] += norms[live] / norms[live].sum()
            self._n_share[live] += 1
        if not self.pairs:
            return
        gram = G @ G.T
        for i, (s, t) in enumerate(self.pairs):
            if live[s] and live[t]:
                self._cos[i] += gram[s, t] / (norms[s] * norms[t])
                self._n_cos[i] += 1

    def columns(self) -> dict[str, float]:
        """The epoch's means, ``grad_share/TASK`` and ``grad_cos/A/B`` (NaN where no sampled
        step had the task's labels); resets the sums for the next epoch."""
        with np.errstate(invalid="ignore", divide="ignore"):
            share = self._share / self._n_share
            cos = self._cos / self._n_cos
        out = {f"grad_share/{k}": float(v) for k, v in zip(self.names, share, strict=True)}
        out.update({f"grad_cos/{self.names[s]}/{self.names[t]}": float(c)
                    for (s, t), c in zip(self.pairs, cos, strict=True)})
        self._reset()
        return out


def dominant_task(history, threshold: float, epochs: int) -> tuple[str, float] | None:
    """The task whose gradient share was above ``threshold`` in each of the last ``epochs``
    epochs of ``history`` (a DataFrame with ``grad_share/TASK`` columns), with its mean share
    there; None if there is none (or fewer epochs, or fewer than two tasks)."""
    cols = [c for c in history.columns if c.startswith("grad_share/")]
    if len(cols) < 2 or len(history) < epochs:
        return None
    last = history[cols].iloc[-epochs:]
    for c in cols:
        values = last[c].to_numpy(dtype=float)
        if np.all(values > threshold):
            return c.split("/", 1)[1], float(values.mean())
    return None


def metric_directions(tasks: Sequence | None = None) -> dict[str, bool]:
    """{metric name: whether higher is better}: the built-in metrics, and those of ``tasks``
    (:class:`~regmtl.deep.TaskSpec` objects; their own metrics included)."""
    out = {name: m.higher_is_better for kind in METRICS.values() for name, m in kind.items()}
    for t in tasks or ():
        out.update({m: t.higher_is_better(m) for m in t.metrics})
    return out


def _logged(history, column: str) -> bool:
    return column in history.columns and bool(history[column].notna().any())


def judged_column(history, task: str,
                  higher: Mapping[str, bool] | None = None) -> tuple[str, bool]:
    """The column ``task`` is judged by, and whether higher is better there.

    The first logged of: its headline validation metric (``val/TASK/r2``, ``auc`` or
    ``accuracy``, in that order), its first validation metric of known direction
    (``higher``: metric name -> higher is better; default the built-in metrics), its
    validation loss ``val_loss/TASK``, its training loss ``loss/TASK``.
    """
    higher = metric_directions() if higher is None else higher
    prefix = f"val/{task}/"
    metrics = [str(c)[len(prefix):] for c in history.columns
               if str(c).startswith(prefix) and _logged(history, str(c))]
    for m in [m for m in HEADLINE_METRICS if m in metrics] + metrics:
        if m in higher:
            return prefix + m, bool(higher[m])
    for c in (f"val_loss/{task}", f"loss/{task}"):
        if _logged(history, c):
            return c, False
    return f"loss/{task}", False


def check_levels(levels: Mapping[str, float] | None, tasks: Sequence[str] | None,
                 what: str = "levels") -> dict[str, float] | None:
    """``levels`` checked: keys a task (its judged column) or a history column of a task
    (``val/TASK/METRIC``, ``val_loss/TASK``, ``loss/TASK``) of ``tasks`` (any task when
    None), values finite numbers."""
    if levels is None:
        return None
    if not isinstance(levels, Mapping):
        raise ValueError(f"{what} must be a dict {{task: level}} (the task's validation "
                         f"metric when trained alone) or None, got {type(levels).__name__}.")
    out = {}
    for key, value in levels.items():
        parts = str(key).split("/")
        task = parts[0] if len(parts) == 1 else parts[1] if len(parts) in (2, 3) else None
        ok_form = (len(parts) == 1 or (len(parts) == 2 and parts[0] in ("val_loss", "loss"))
                   or (len(parts) == 3 and parts[0] == "val"))
        if not isinstance(key, str) or not ok_form or (tasks is not None
                                                        and task not in tasks):
            known = "" if tasks is None else f" ({list(tasks)})"
            raise ValueError(f"{what}: unknown key {key!r}; name a task{known} or a history "
                             "column of one ('val/TASK/METRIC', 'val_loss/TASK').")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(float(value)):
            raise ValueError(f"{what}[{key!r}] must be a finite number (the task's level "
                             f"when trained alone), got {value!r}.")
        out[key] = float(value)
    return out


@dataclass(frozen=True)
class DominanceRule:
    """When the trainer (``Trainer(dominance=...)``) and the training report call a task
    dominant and another suppressed: the rule of ``regmtl.deep.diagnostics`` with its
    numbers. A float ``dominance=s`` is ``DominanceRule(share=s)``.

    Parameters
    ----------
    share : float, default=0.9
        The gradient share above which, in each of the last ``epochs`` epochs, a task
        dominates (in (0, 1]).
    levels : dict of str to float, optional
        Each task's level trained alone, in its judged validation metric
        (:func:`judged_column`: ``r2``, ``auc`` or ``accuracy`` when logged), or keyed by a
        column, ``{"val/TASK/METRIC": value}``: a dominated task more than ``tol`` below it
        is suppressed even at its own best.
    tol : float, default=0.1
        The relative shortfall beyond which a dominated task is suppressed (>= 0).
    epochs : int, default=3
        The last epochs judged (>= 1).

    Examples
    --------
    >>> from regmtl.deep.diagnostics import DominanceRule
    >>> DominanceRule(levels={"click": 0.78}).levels
    {'click': 0.78}
    """

    share: float = 0.9
    levels: Mapping[str, float] | None = None
    tol: float = SUPPRESSION_GAP
    epochs: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "share", check_option(
            "DominanceRule.share", self.share, "real", low=0, low_open=True, high=1))
        object.__setattr__(self, "tol", check_option("DominanceRule.tol", self.tol, "real",
                                                     low=0))
        object.__setattr__(self, "epochs", check_option("DominanceRule.epochs", self.epochs,
                                                        "int", low=1))
        object.__setattr__(self, "levels", check_levels(self.levels, None,
                                                        "DominanceRule.levels"))


def check_dominance(dominance: Any, tasks: Sequence[str]) -> Any:
    """The trainer's ``dominance`` checked (a share in (0, 1], a :class:`DominanceRule`
    whose levels name ``tasks``, or None) and returned as given."""
    if isinstance(dominance, DominanceRule):
        check_levels(dominance.levels, tasks, "dominance.levels")
        return dominance
    return check_option("dominance", dominance, "real", low=0, low_open=True, high=1,
                        none=True)


def as_rule(dominance: float | DominanceRule) -> DominanceRule:
    """A share as the default rule with that share; a rule as it is."""
    return dominance if isinstance(dominance, DominanceRule) else DominanceRule(dominance)


@dataclass(frozen=True)
class TaskStanding:
    """Where a dominated task stands over the last epochs (see the module's rule).

    ``column``: the judged history column; ``recent``: its best over the last epochs;
    ``reference``: what it is judged against, its best over the run (``source="best"``) or
    the single-task level (``source="level"``); ``gap``: the relative shortfall;
    ``suppressed``: ``gap > tol``.
    """

    task: str
    column: str
    higher_is_better: bool
    recent: float
    reference: float
    source: str
    gap: float
    suppressed: bool

    def describe(self) -> str:
        """One clause: the task's metric there against its reference."""
        metric = self.column.rsplit("/", 1)[-1] if self.column.startswith("val/") else \
            self.column.split("/", 1)[0].replace("_", " ")
        ref = "its best" if self.source == "best" else "its single-task level"
        return (f"{self.task}'s {metric} reached {self.recent:.4g} against {ref} "
                f"{self.reference:.4g}")


@dataclass(frozen=True)
class Dominance:
    """A task that dominated the shared layers, and how the other tasks fared."""

    task: str
    share: float
    epochs: int
    tol: float
    others: tuple[TaskStanding, ...]

    @property
    def suppressed(self) -> list[TaskStanding]:
        """The other tasks clearly below their reference."""
        return [s for s in self.others if s.suppressed]


def _standing(history, task: str, epochs: int, levels: Mapping[str, float],
              higher: Mapping[str, bool], tol: float) -> TaskStanding | None:
    column, up = judged_column(history, task, higher)
    keyed = [k for k in levels if k.split("/")[1:2] == [task] and _logged(history, k)]
    if keyed:  # a level given for a column of the task: judged by that column
        column = keyed[0]
        metric = column.rsplit("/", 1)[1] if column.startswith("val/") else None
        up = bool(higher.get(metric, False))
    if column not in history.columns:
        return None
    values = history[column].to_numpy(dtype=float)
    sign = -1.0 if up else 1.0
    recent_all = values[-epochs:]
    if not np.isfinite(recent_all).any() or not np.isfinite(values).any():
        return None
    recent = float(sign * np.nanmin(sign * recent_all))
    reference, source = float(sign * np.nanmin(sign * values)), "best"
    level = levels.get(column, levels.get(task) if column.startswith("val/") else None)
    if level is not None and sign * level < sign * reference:
        reference, source = float(level), "level"
    short = sign * (recent - reference)
    gap = short / abs(reference) if reference != 0 else (math.inf if short > 0 else 0.0)
    return TaskStanding(task, column, up, recent, reference, source, float(gap),
                        bool(gap > tol))


def dominance(history, threshold: float, epochs: int, *,
              levels: Mapping[str, float] | None = None,
              higher: Mapping[str, bool] | None = None,
              tol: float = SUPPRESSION_GAP) -> Dominance | None:
    """The task that dominated the shared layers
    (:func:`~regmtl.deep.diagnostics.dominant_task`) and the standing of every other task
    (suppressed or not, by the rule of the module's docstring).

    Parameters
    ----------
    history : DataFrame
        A trainer's history (``grad_share/TASK``, ``loss/TASK``, validation columns).
    threshold, epochs : float, int
        The share above which, in each of the last ``epochs`` epochs, a task dominates.
    levels : dict, optional
        Single-task levels: ``{task: value}`` in the task's judged validation metric
        (:func:`judged_column`), or ``{"val/TASK/METRIC": value}`` for a given one.
    higher : dict, optional
        Metric name -> higher is better (default: ``metric_directions``).
    tol : float, default=SUPPRESSION_GAP
        The relative shortfall beyond which a task is suppressed.

    Returns
    -------
    Dominance or None
        None when no task dominated.
    """
    found = dominant_task(history, threshold, epochs)
    if found is None:
        return None
    task, share = found
    names = [str(c).split("/", 1)[1] for c in history.columns
             if str(c).startswith("grad_share/")]
    levels = dict(levels or {})
    higher = metric_directions() if higher is None else higher
    standings = [_standing(history, t, epochs, levels, higher, tol) for t in names if t != task]
    return Dominance(task, share, epochs, tol, tuple(s for s in standings if s is not None))


def warn_if_dominated(history, threshold: float, epochs: int, *,
                      levels: Mapping[str, float] | None = None,
                      higher: Mapping[str, bool] | None = None,
                      tol: float = SUPPRESSION_GAP) -> Dominance | None:
    """A UserWarning when a task's gradient share stayed above ``threshold`` in the last
    ``epochs`` epochs *and* another task is suppressed there (its judged metric more than
    ``tol`` below its best or single-task level; see :func:`dominance`). Returns the
    :class:`Dominance` found (None: no task dominated)."""
    found = dominance(history, threshold, epochs, levels=levels, higher=higher, tol=tol)
    if found is None or not found.suppressed:
        return found
    task = found.task
    which = "; ".join(s.describe() for s in found.suppressed)
    warnings.warn(
        f"task {task!r} wrote {found.share:.0%} of the shared layers' gradient norm over the "
        f"last {epochs} epochs (grad_share/{task} > {threshold:g}) and suppressed "
        f"{', '.join(repr(s.task) for s in found.suppressed)}: {which} (more than "
        f"{tol:.0%} below it even at its best of those epochs). Keep the trainer's "
        "standardize=True and normalize_losses=True (they put the losses on one scale), or "
        "use a weighting that balances gradients (weighting='imtl', 'nash_mtl', 'upgrad').",
        UserWarning, stacklevel=find_stack_level())
    return found


def after_fit(trainer: Any, balanced: bool, val: Any, train: Mapping, main: bool) -> Any:
    """The diagnostics at the end of :meth:`~regmtl.deep.Trainer.fit`: the dominance warning
    (when the gradient balance was measured and ``trainer.dominance`` is not None) and the
    expert use of a mixture of experts (returned, None for other nets; warnings from the
    ``main`` process only)."""
    from .expert_use import usage_after_fit

    if balanced and trainer.dominance is not None:
        rule = as_rule(trainer.dominance)
        warn_if_dominated(trainer.history_, rule.share, rule.epochs, levels=rule.levels,
                          higher=metric_directions(trainer.tasks), tol=rule.tol)
    return usage_after_fit(trainer.net, val, train, warn=main)
