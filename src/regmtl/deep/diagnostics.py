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
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np

from ._torch import torch
from .weighting.base import identity, task_gradients

__all__ = ["GradientBalance", "dominant_task", "warn_if_dominated"]

#: the pairwise cosines are measured and logged up to this many tasks (120 pairs)
MAX_COSINE_TASKS = 16

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


def warn_if_dominated(history, threshold: float, epochs: int) -> None:
    """A UserWarning naming the task whose gradient share stayed above ``threshold`` in the
    last ``epochs`` epochs (see :func:`dominant_task`)."""
    found = dominant_task(history, threshold, epochs)
    if found is None:
        return
    task, share = found
    warnings.warn(
        f"task {task!r} wrote {share:.0%} of the shared layers' gradient norm over the last "
        f"{epochs} epochs (grad_share/{task} > {threshold:g}): the other tasks are suppressed. "
        "Keep the trainer's standardize=True and normalize_losses=True (they put the "
        "losses on one scale), or use a weighting that balances gradients "
        "(weighting='imtl', 'nash_mtl', 'upgrad').",
        UserWarning, stacklevel=3)
