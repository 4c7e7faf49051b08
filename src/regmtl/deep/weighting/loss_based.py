r"""The step of the loss-based weightings whose weights are a function of the loss values.

GLS, STCH and FAMO decide the weights :math:`w` of a step from the detached loss values
:math:`L` (averaged across ranks), then backpropagate :math:`\sum_t w_t L_t` (plus the
penalty) in one backward pass: :class:`LossValueWeighting` is that step, written once; a
method gives ``_value_weights(L)``. The checks of the values (finite, non-negative) are here
too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._torch import torch
from .base import F64, Weighting, identity, task_list
from .gram import as_weights
from .helpers import non_finite

__all__ = ["LossValueWeighting", "loss_values", "positive_losses", "loss_inputs",
           "weighted_step"]

Tensor = torch.Tensor


def positive_losses(L: Tensor, names: Sequence[str], who: str) -> Tensor:
    """The mask of the tasks taking part (loss > 0); a negative loss raises a ValueError."""
    neg = L < 0
    if neg.any():
        raise ValueError(f"{who}: the loss of task(s) {task_list(names, neg.numpy())} is "
                         "negative; this weighting takes logarithms of the losses and needs "
                         "losses >= 0 (a loss of 0, e.g. a task without labels in the batch, "
                         "takes no part in the step). Use a non-negative loss or another "
                         "weighting.")
    return L > 0


def loss_inputs(losses: Any, base_weights: Any, who: str) -> tuple[Tensor, Tensor, Tensor]:
    """The functional forms' inputs: the (T,) finite losses (CPU float64), the base weights
    (default ones; finite, >= 0) and the mask of the tasks taking part (loss > 0 and base
    weight > 0); a negative loss raises a ValueError naming ``who``."""
    L = torch.as_tensor(losses, dtype=F64).detach().cpu().reshape(-1)
    T = L.shape[0]
    b = torch.as_tensor(as_weights(base_weights, T, "base_weights"))
    if not torch.isfinite(L).all():
        raise ValueError("losses must be finite.")
    return L, b, positive_losses(L, [str(i) for i in range(T)], who) & (b > 0)


def loss_values(losses: Tensor, n_tasks: int, names: Sequence[str], who: str,
                reduce: Callable[[Tensor], Tensor] | None,
                scale: Callable[[Tensor], Tensor] | None) -> Tensor | None:
    """The (T,) detached losses (averaged over ranks), CPU float64; None to skip the step.

    A non-finite loss raises a ValueError naming the task, except under loss scaling (mixed
    precision), where None tells the caller to keep the base weights so that the gradient
    scaler sees the overflow and skips the step.
    """
    L = losses.detach()
    if reduce is not None:
        L = reduce(L)
    L = L.to("cpu", F64).reshape(-1)
    bad = ~torch.isfinite(L)
    if bad.any():
        if scale is not None and scale is not identity:
            return None
        raise non_finite(who, "loss", names, bad.numpy())
    return L


def weighted_step(losses: Tensor, weights: Tensor, extra: Tensor | None,
                  scale: Callable[[Tensor], Tensor] | None) -> Tensor:
    """A loss-based method's step: differentiate ``scale(sum_t w_t L_t + extra)``; returns
    the caller's own copy of ``weights`` on the losses' device and dtype."""
    objective = (weights.to(losses) * losses).sum()
    if extra is not None:
        objective = objective + extra
    if objective.requires_grad:
        (identity if scale is None else scale)(objective).backward()
    return weights.to(device=losses.device, dtype=losses.dtype).clone()



class LossValueWeighting(Weighting):
    r"""Base of the loss-based methods whose weights are a function of the loss values.

    :meth:`backward` checks the losses, takes their detached values :math:`L` (CPU float64,
    averaged across ranks by ``reduce``; None where a loss overflows under mixed precision,
    so that the gradient scaler skips the step), asks ``_value_weights(L)`` for the (T,)
    weights :math:`w` and differentiates :math:`\sum_t w_t L_t` (+ ``extra``).
    """

    def _loss_values(self, losses: Tensor, reduce: Callable[[Tensor], Tensor] | None,
                     scale: Callable[[Tensor], Tensor] | None) -> Tensor | None:
        """The step's (T,) detached loss values; None to skip the step."""
        return loss_values(losses, self.n_tasks, self.task_names, type(self).__name__,
                           reduce, scale)

    def _value_weights(self, L: Tensor | None) -> Tensor:
        """The (T,) float64 weights from the loss values (None: a skipped step)."""
        raise NotImplementedError

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; the weights come from the loss values
        averaged across ranks by ``reduce``."""
        self._check_losses(losses)
        w = self._value_weights(self._loss_values(losses, reduce, scale))
        return weighted_step(losses, w, extra, scale)
