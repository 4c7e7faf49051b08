r"""Whether a fit reached its regression targets: the warning after a fit whose training
loss never came near that of predicting the target's mean.

With :math:`c_t` the loss of the best constant prediction of task t on its training labels
(``regmtl.deep.scaling.constant_losses``) and :math:`L_t^{(e)}` the task's mean training loss
of epoch e, a fit that reached the target has :math:`L_t^{(e)} / c_t` near or below 1 at the
epoch e whose weights the net keeps (a net starting near 0 on standardized targets starts
there). A ratio above
:data:`REACH_RATIO` on a target left unstandardized (``standardize=False``) whose mean or
deviation is beyond :data:`REACH_SCALE` says that the outputs, which start near 0 and move
by about the learning rate per step, never got to the target's scale (its offset: a ratio
of :math:`1 + \mu^2 / \sigma^2`; its spread: a ratio near 1); a ratio above
:data:`DIVERGED_RATIO` otherwise says that training diverged without overflowing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._torch import torch
from .conversion import find_stack_level

__all__ = ["REACH_RATIO", "REACH_SCALE", "DIVERGED_RATIO", "GROWTH", "TargetReach",
           "target_reach", "warn_if_unreached"]

#: The training loss, in constant predictors, above which an unstandardized target far
#: from the outputs' scale is deemed out of their reach (the net explains less than half of
#: what the target's mean leaves).
REACH_RATIO = 0.5
#: The target's mean or standard deviation (in absolute value) beyond which it is far from
#: the outputs' initial scale (about 1).
REACH_SCALE = 10.0
#: The training loss, in constant predictors, above which training diverged (whatever
#: the target's scale), where it also grew :data:`GROWTH` times from its lowest epoch.
DIVERGED_RATIO = 1e3
#: See :data:`DIVERGED_RATIO`.
GROWTH = 10.0


@dataclass
class TargetReach:
    """What a regression task's training labels say of its reach.

    Attributes
    ----------
    mean, sd : float
        The largest absolute mean and standard deviation over the target's outputs.
    constant : float
        The divisor turning the history's ``loss/TASK`` into constant predictors (1 where
        the history holds them already, with ``normalize_losses=True``).
    standardized : bool
        Whether the net's map standardizes the target.
    """

    mean: float
    sd: float
    constant: float
    standardized: bool


def target_reach(tasks: list, moments: Any, maps: tuple[torch.Tensor, torch.Tensor],
                 constant: dict[str, float]) -> dict[str, TargetReach]:
    """The :class:`TargetReach` of each regression task of ``tasks`` (those in ``constant``,
    their divisors) from the label statistics ``moments`` (``TargetMoments``) and the net's
    maps ``maps`` (``stacked_scales()``, (T, width) each): stacked, one pass over thousands
    of tasks."""
    reg = [t.name for t in tasks if t.name in constant]
    if not reg:
        return {}
    n, m, m2 = moments.stacked(reg)
    sd = torch.sqrt(m2 / n.clamp(min=1))
    pos = {t.name: i for i, t in enumerate(tasks)}
    idx = [pos[k] for k in reg]
    mu, sigma = maps
    standardized = ((mu[idx] != 0) | (sigma[idx] != 1)).any(1)
    return {k: TargetReach(a, b, constant[k], c) for k, a, b, c in zip(
        reg, m.abs().amax(1).tolist(), sd.amax(1).tolist(), standardized.tolist(), strict=True)}


def warn_if_unreached(history: pd.DataFrame, tasks: list, reach: dict[str, TargetReach],
                      lr: float, epoch: int) -> None:
    """A UserWarning for each regression task of ``reach`` whose training loss at ``epoch``
    (from 1: the epoch whose weights the net keeps) in ``history`` is above
    :data:`REACH_RATIO` constant predictors with its target out of the outputs' scale, or
    above :data:`DIVERGED_RATIO` whatever the scale, having grown :data:`GROWTH` times from
    its lowest epoch (a diverging fit, not a loss high from the start)."""
    if not 1 <= epoch <= len(history):
        return
    for t in tasks:
        r = reach.get(t.name)
        col = f"loss/{t.name}"
        if r is None or col not in history or not (math.isfinite(r.constant)
                                                  and r.constant > 1e-12):
            continue
        ratios = history[col].to_numpy(dtype=np.float64)[:epoch] / r.constant
        ratio = float(ratios[-1])
        if not math.isfinite(ratio):
            continue
        head = (f"task {t.name!r}: its training loss at epoch {epoch}, whose weights the net "
                f"keeps, is {ratio:.3g} times that of predicting its mean")
        if ratio > REACH_RATIO and max(r.mean, r.sd) > REACH_SCALE and not r.standardized:
            warnings.warn(
                f"{head}: the target (mean {r.mean:.3g}, standard deviation {r.sd:.3g}) is far "
                "beyond the scale of the net's outputs at initialization (about 1), which move "
                f"by about lr={lr:g} per step: with standardize=False the net did not reach it. "
                "Pass standardize=True (the default: the net learns the standardized target "
                "and predicts in its units), or rescale the target.",
                UserWarning, stacklevel=find_stack_level())
        elif ratio > DIVERGED_RATIO and ratio > GROWTH * np.nanmin(ratios):
            warnings.warn(
                f"{head}: training diverged without overflowing at lr={lr:g}. Lower the "
                "learning rate or set grad_clip.",
                UserWarning, stacklevel=find_stack_level())
