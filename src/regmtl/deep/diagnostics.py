r"""Gradient balance: how much of the shared parameters' gradient each task contributes.

With :math:`g_t = \nabla_\theta (w_t L_t)` the gradient of task t's loss times its static
weight :math:`w_t` (``TaskSpec(weight=...)``, a ``FixedWeighting``'s; 1 by default) with
respect to the shared parameters :math:`\theta` (the trunk, not the heads), a step's *share*
of task t and the pairwise *cosines* are

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

Its best of the run says nothing of a task that never learned: one whose metric stays flat
at a poor level is at its best at every epoch. So the trainer's rule
(:class:`DominanceRule`) has two more terms:

* **the share floor**: a task is suppressed only if its own share stayed under
  :math:`f\, w_t / \sum_k w_k` in each of the last epochs (default :math:`f = 0.1`; with the
  tasks' weights :math:`w` equal, under :math:`1/(10T)`: a tenth of an even share). The
  shares are those of the weighted losses :math:`w_t L_t` (``TaskSpec(weight=...)``, a
  ``FixedWeighting``'s weights), so a task the user weighs down on purpose has a lower share
  and a lower floor with it: it is not said to be dominated for its weight alone;
* **a measured reference**: when a task is under the floor, the net is trained from the
  state the fit started from (the initial weights of a new net) on that task alone (the
  other tasks weighted 0) for a few epochs (``DominanceRule.reference_epochs``, default 5,
  at most as many as the fit ran), with the fit's optimizer, learning rate, batch size,
  penalties, scaling and seed: deterministic, and the best value its judged quantity
  reaches there joins :math:`r_t` (the better of the three). A task that does better in
  five epochs alone than in the whole fit beside the dominant one is suppressed. It costs
  those epochs, once per task under the floor, only after a fit where one task dominated.

Measured on two regressions sharing a trunk (600 rows, 400 trained on, ``hidden=(32, 16)``,
40 epochs at ``lr=3e-3``, ``standardize=False, normalize_losses=False``; seeds 0 to 4,
``tests/deep/test_deep_dominance_reference.py``), one target's loss about 1,000 times the
other's: the large task writes 99.3 to 99.5 % of the trunk's gradient, the small one 0.55 to
0.77 %; the small task's :math:`R^2` ends at 0.27 to 0.54, 0.04 at most below its best of
the run (so that best alone says nothing; alone for 40 epochs it reaches 0.95 to 0.97),
against 0.55 to 0.74 alone for 5 epochs: 27 to 52 % below, every run warns (before: one
of the five). The same targets on comparable scales: the small task's share is 0.29 to 0.35,
its :math:`R^2` 0.93 to 0.96, no task dominates and no run warns.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
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
           "check_dominance", "warn_if_dominated", "solo_references", "static_weights",
           "fit_balance", "after_fit"]

#: the pairwise cosines are measured and logged up to this many tasks (120 pairs)
MAX_COSINE_TASKS = 16
#: a dominated task is *suppressed* when its best over the last epochs stays more than this
#: fraction (of its reference's size) below its reference
SUPPRESSION_GAP = 0.1
#: the metrics a task is judged by first, when it logs them (scores where 1 is perfect)
HEADLINE_METRICS = ("r2", "auc", "accuracy")
#: a dominated task is suppressed only while its share stays under this fraction of its
#: share by the tasks' weights (1/(10 T) with equal weights)
SHARE_FLOOR = 0.1
#: epochs of the measured reference: each task under the floor trained alone from the fit's
#: start
REFERENCE_EPOCHS = 5

Tensor = torch.Tensor


class GradientBalance:
    """Accumulates the shares and cosines of the sampled steps of one epoch.

    Parameters
    ----------
    names : sequence of str
        The tasks, in the order of the losses.
    weights : sequence of float, optional
        The tasks' static weights (``TaskSpec.weight``, a ``FixedWeighting``'s): the shares
        are those of the gradients of :math:`w_t L_t`, what the weighting starts from (a
        weight of 0 takes the task out, as a task without labels). None: all 1.
    """

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None = None):
        self.names = list(names)
        self.weights = None if weights is None or all(float(w) == 1.0 for w in weights) \
            else torch.tensor([float(w) for w in weights], dtype=torch.float32)
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
        if self.weights is not None:
            losses = losses * self.weights.to(losses)
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

    def column_names(self) -> list[str]:
        """The history's columns of the balance: ``grad_share/TASK``, ``grad_cos/A/B``."""
        return ([f"grad_share/{k}" for k in self.names]
                + [f"grad_cos/{self.names[a]}/{self.names[b]}" for a, b in self.pairs])

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
    floor : float or None, default=0.1
        A dominated task is suppressed only if its gradient share stayed under ``floor``
        times its share by the tasks' weights (1/T with equal weights: under 1/(10 T) by
        default) in each of the last ``epochs`` epochs; in (0, 1], None: no such condition.
    reference_epochs : int, default=5
        Epochs of the measured reference of a task under the floor: the net trained from
        the fit's start on that task alone (``regmtl.deep.diagnostics``), at most as many
        epochs as the fit ran; 0: none (its best of the run and ``levels`` only).

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
    floor: float | None = SHARE_FLOOR
    reference_epochs: int = REFERENCE_EPOCHS

    def __post_init__(self) -> None:
        object.__setattr__(self, "share", check_option(
            "DominanceRule.share", self.share, "real", low=0, low_open=True, high=1))
        object.__setattr__(self, "tol", check_option("DominanceRule.tol", self.tol, "real",
                                                     low=0))
        object.__setattr__(self, "epochs", check_option("DominanceRule.epochs", self.epochs,
                                                        "int", low=1))
        object.__setattr__(self, "levels", check_levels(self.levels, None,
                                                        "DominanceRule.levels"))
        object.__setattr__(self, "floor", check_option(
            "DominanceRule.floor", self.floor, "real", low=0, low_open=True, high=1, none=True))
        object.__setattr__(self, "reference_epochs", check_option(
            "DominanceRule.reference_epochs", self.reference_epochs, "int", low=0))


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
    ``reference``: what it is judged against, the best of its best over the run
    (``source="best"``), the single-task level (``source="level"``) and the measured
    reference (``source="reference"``: the task trained alone for ``alone_epochs`` epochs);
    ``gap``: the relative shortfall; ``share``: its largest gradient share over the last
    epochs; ``floor``: the share it stayed under to be suppressed (None: no condition);
    ``suppressed``: ``gap > tol`` and, with a floor, ``share < floor``. ``best``, ``level``
    and ``measured``: the three candidates (None where absent).
    """

    task: str
    column: str
    higher_is_better: bool
    recent: float
    reference: float
    source: str
    gap: float
    suppressed: bool
    share: float = math.nan
    floor: float | None = None
    best: float | None = None
    level: float | None = None
    measured: float | None = None
    alone_epochs: int | None = None

    @property
    def under_floor(self) -> bool:
        """Whether its share stayed under the floor (True without one)."""
        return self.floor is None or self.share < self.floor

    def describe(self) -> str:
        """One clause: the task's metric there against its references (it is judged against
        the best of them)."""
        metric = self.column.rsplit("/", 1)[-1] if self.column.startswith("val/") else \
            self.column.split("/", 1)[0].replace("_", " ")
        refs = {"level": f"its single-task level {_g(self.level)}",
                "best": f"its best {_g(self.best)}",
                "reference": f"{_g(self.measured)} {self._alone()}"}
        given = {"level": self.level, "best": self.best, "reference": self.measured}
        if self.best is None:  # (built by hand: the reference alone)
            refs[self.source] = ({"level": "its single-task level", "best": "its best"}[
                self.source] + f" {_g(self.reference)}") if self.source != "reference" else \
                f"{_g(self.reference)} {self._alone()}"
            given[self.source] = self.reference
        order = [k for k in ("level", "best", "reference") if given[k] is not None]
        return (f"{self.task}'s {metric} reached {_g(self.recent)} against "
                + " and ".join(refs[k] for k in order))


    def _alone(self) -> str:
        n = self.alone_epochs
        return "trained alone" + ("" if n is None else
                                  f" ({n} epoch{'s' if n != 1 else ''} from the same start)")


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


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


def _floors(names: Sequence[str], floor: float | None,
            weights: Mapping[str, float] | None) -> dict[str, float | None]:
    """Each task's share floor: ``floor`` times its share by the weights (1/T when equal)."""
    if floor is None:
        return dict.fromkeys(names)
    w = {t: float((weights or {}).get(t, 1.0)) for t in names}
    total = sum(v for v in w.values() if v > 0)
    return {t: floor * max(w[t], 0.0) / total if total > 0 else None for t in names}


def _standing(history, task: str, epochs: int, levels: Mapping[str, float],
              higher: Mapping[str, bool], tol: float, references: Mapping[str, float],
              floor: float | None, alone_epochs: int | None = None) -> TaskStanding | None:
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
    best = float(sign * np.nanmin(sign * values))
    reference, source = best, "best"
    level = levels.get(column, levels.get(task) if column.startswith("val/") else None)
    measured = references.get(column)
    if measured is not None and not math.isfinite(measured):
        measured = None
    for value, kind in ((level, "level"), (measured, "reference")):
        if value is not None and sign * value < sign * reference:
            reference, source = float(value), kind
    short = sign * (recent - reference)
    gap = short / abs(reference) if reference != 0 else (math.inf if short > 0 else 0.0)
    shares = history.get(f"grad_share/{task}")
    share = math.nan
    if shares is not None:
        last = shares.to_numpy(dtype=float)[-epochs:]
        share = float(np.nanmax(last)) if np.isfinite(last).any() else math.nan
    under = floor is None or share < floor  # (NaN: not measured, not under)
    return TaskStanding(task, column, up, recent, reference, source, float(gap),
                        bool(gap > tol and under), share, floor, best,
                        None if level is None else float(level), measured,
                        alone_epochs if measured is not None else None)


def dominance(history, threshold: float, epochs: int, *,
              levels: Mapping[str, float] | None = None,
              higher: Mapping[str, bool] | None = None,
              tol: float = SUPPRESSION_GAP,
              references: Mapping[str, float] | None = None,
              floor: float | None = None,
              weights: Mapping[str, float] | None = None,
              reference_epochs: int | None = None) -> Dominance | None:
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
    references : dict, optional
        Measured references by judged column (``solo_references``): the value each
        task reached trained alone from the fit's start.
    floor : float, optional
        A task is suppressed only if its share stayed under ``floor`` times its share by
        ``weights`` in each of the last ``epochs`` epochs (the trainer's rule: 0.1, under
        1/(10 T) with equal weights); None: no condition on its share.
    weights : dict, optional
        The tasks' static weights (``TaskSpec.weight``); default all 1.
    reference_epochs : int, optional
        The epochs of the runs alone that measured ``references`` (for the description).

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
    floors = _floors(names, floor, weights)
    standings = [_standing(history, t, epochs, levels, higher, tol, references or {},
                           floors[t], reference_epochs) for t in names if t != task]
    return Dominance(task, share, epochs, tol, tuple(s for s in standings if s is not None))


def warn_if_dominated(history, threshold: float, epochs: int, *,
                      levels: Mapping[str, float] | None = None,
                      higher: Mapping[str, bool] | None = None,
                      tol: float = SUPPRESSION_GAP,
                      references: Mapping[str, float] | None = None,
                      floor: float | None = None,
                      weights: Mapping[str, float] | None = None,
                      reference_epochs: int | None = None) -> Dominance | None:
    """A UserWarning when a task's gradient share stayed above ``threshold`` in the last
    ``epochs`` epochs *and* another task is suppressed there (its judged metric more than
    ``tol`` below its best, its single-task level or its measured reference, and with a
    ``floor`` its share under it; see :func:`dominance`). Returns the :class:`Dominance`
    found (None: no task dominated)."""
    found = dominance(history, threshold, epochs, levels=levels, higher=higher, tol=tol,
                      references=references, floor=floor, weights=weights,
                      reference_epochs=reference_epochs)
    if found is None or not found.suppressed:
        return found
    task = found.task
    which = "; ".join(_clause(s) for s in found.suppressed)
    warnings.warn(
        f"task {task!r} wrote {found.share:.0%} of the shared layers' gradient norm over the "
        f"last {epochs} epochs (grad_share/{task} > {threshold:g}) and suppressed "
        f"{', '.join(repr(s.task) for s in found.suppressed)}: {which} (more than "
        f"{tol:.0%} below the best of them even at its best of those epochs). Keep the "
        "trainer's standardize=True and normalize_losses=True (they put the losses on one "
        "scale), or use a weighting that balances gradients (weighting='imtl', 'nash_mtl', "
        "'upgrad').", UserWarning, stacklevel=find_stack_level())
    return found


def _clause(s: TaskStanding) -> str:
    """A suppressed task in the warning: its share (under its floor), metric, references."""
    if s.floor is None:
        return s.describe()
    return (f"{s.task} wrote {s.share:.1%} of it (under {s.floor:.1%}, a tenth of its share "
            f"by the tasks' weights) and {s.describe()}")


def static_weights(trainer: Any) -> dict[str, float]:
    """The tasks' static weights of ``trainer``: a ``FixedWeighting``'s once set up, else
    each ``TaskSpec.weight``."""
    from .weighting.fixed import FixedWeighting

    w = getattr(trainer.weighting, "task_weights", None)
    if isinstance(trainer.weighting, FixedWeighting) and w is not None \
            and len(w) == len(trainer.tasks):
        return {t.name: float(v) for t, v in zip(trainer.tasks, w.tolist(), strict=True)}
    return {t.name: float(t.weight) for t in trainer.tasks}


def fit_balance(trainer: Any, net: Any, measured: bool) -> tuple[Any, Any]:
    """A fit's gradient balance (on the losses times the tasks' static weights; None where
    it is not ``measured``) and the net's state as the fit found it: the start of the
    dominance's measured references (:func:`solo_references`), a CPU copy kept only where
    the dominance is judged (else None)."""
    if not measured:
        return None, None
    balance = GradientBalance([t.name for t in trainer.tasks],
                              list(static_weights(trainer).values()))
    if trainer.dominance is None or as_rule(trainer.dominance).reference_epochs <= 0:
        return balance, None
    return balance, {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def solo_references(trainer: Any, start: Mapping[str, Tensor], train: Any, val: Any,
                    standings: Sequence[TaskStanding], epochs: int) -> dict[str, float]:
    """The measured references of a dominance: each task trained alone for a few epochs.

    For each standing's task, a copy of ``trainer.net`` from the state ``start`` (the net's
    when the fit began) is trained on ``train`` for ``epochs`` epochs with the other tasks
    weighted 0 (``FixedWeighting``): the shared layers learn that task alone, with the fit's
    optimizer, learning rate, batch size, penalties, target and loss scaling and seed (no
    early stopping). The random states of Python, NumPy and torch are left as they were.

    Parameters
    ----------
    trainer : Trainer
        The trainer after its fit.
    start : dict of str to Tensor
        The net's ``state_dict`` at the start of the fit.
    train, val : any
        The fit's training and validation data.
    standings : sequence of TaskStanding
        The tasks, with the history column each is judged by.
    epochs : int
        The epochs of each reference run (>= 1).

    Returns
    -------
    dict of str to float
        Each standing's column: its best value over the run alone (by its direction); a
        column the run does not log, or a run that fails (diverges), gives none.
    """
    from .divergence import TrainingDiverged
    from .weighting.fixed import FixedWeighting

    net0 = trainer.net
    device = trainer.context_.device
    cuda = [device.index or 0] if device.type == "cuda" else []
    out: dict[str, float] = {}
    for s in standings:
        # the specs are immutable and shared, not copied (as the net's config expects)
        net = copy.deepcopy(net0, memo={id(t): t for t in net0.tasks})
        net.load_state_dict(start)
        alone = FixedWeighting({t.name: float(t.name == s.task) for t in net0.tasks})
        solo = type(trainer)(net, weighting=alone, penalty=trainer.penalties,
                       optimizer=trainer.optimizer, lr=trainer.lr,
                       weight_decay=trainer.weight_decay, batch_size=trainer.batch_size,
                       max_epochs=epochs, restore_best=False, grad_clip=trainer.grad_clip,
                       device=str(device), amp=trainer.amp, distributed=False,
                       seed=trainer.seed, grad_balance=0, dominance=None,
                       lazy_heads=trainer.lazy_heads, standardize=trainer.standardize,
                       normalize_losses=trainer.normalize_losses)
        states = (random.getstate(), np.random.get_state())  # noqa: NPY002 - kept as they were
        try:
            with torch.random.fork_rng(devices=cuda), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (the other tasks, weighted 0, are not learned)
                solo.fit(train, val)
        except (TrainingDiverged, ValueError, RuntimeError):  # no reference: the rest judges
            continue
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])  # noqa: NPY002
        h = solo.history
        if _logged(h, s.column):
            v = h[s.column].to_numpy(dtype=float)
            out[s.column] = float(np.nanmax(v) if s.higher_is_better else np.nanmin(v))
    return out


def after_fit(trainer: Any, balanced: bool, val: Any, train: Mapping, main: bool,
              data: Any = None, start: Mapping[str, Tensor] | None = None) -> Any:
    """The diagnostics at the end of :meth:`~regmtl.deep.Trainer.fit`: the dominance warning
    (when the gradient balance was measured and ``trainer.dominance`` is not None; its
    finding in ``trainer.dominance_``) and the expert use of a mixture of experts (returned,
    None for other nets; warnings from the ``main`` process only). ``data``: the training
    data as the fit took them, ``start``: the net's state at its start (for the measured
    references; without them, none)."""
    from .expert_use import usage_after_fit

    trainer.dominance_ = None
    if balanced and trainer.dominance is not None:
        rule = as_rule(trainer.dominance)
        kw = dict(levels=rule.levels, higher=metric_directions(trainer.tasks), tol=rule.tol,
                  floor=rule.floor, weights=static_weights(trainer))
        found = dominance(trainer.history_, rule.share, rule.epochs, **kw)
        # a task under its floor: measured against itself trained alone for a few epochs (at
        # most as many as the fit ran)
        alone = [] if found is None else [s for s in found.others if s.under_floor]
        references: dict[str, float] = {}
        n = min(rule.reference_epochs, len(trainer.history_))
        if alone and n and start is not None and data is not None:
            references = solo_references(trainer, start, data, val, alone, n)
        trainer.dominance_ = warn_if_dominated(trainer.history_, rule.share, rule.epochs,
                                               references=references, reference_epochs=n,
                                               **kw)
    return usage_after_fit(trainer.net, val, train, warn=main)
