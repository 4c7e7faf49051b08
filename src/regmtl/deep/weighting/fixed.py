r"""Fixed task weights: the gradient of :math:`\sum_t w_t L_t` with :math:`w` given by task
name or in task order, the same at every step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, Weighting, check_number

__all__ = ["FixedWeighting"]

Tensor = torch.Tensor


class FixedWeighting(Weighting):
    r"""Fixed weights given by task name or in task order.

    The gradient of :math:`\sum_t w_t L_t` with the given weights :math:`w` at every step (they
    replace the specs' weights). They are used as given, not normalized: they sum to what the
    given weights (and, with a dict, the specs' weights of the tasks it leaves out) sum to.

    Parameters
    ----------
    weights : dict of str to float, or sequence of float
        Finite weights >= 0. A dict names tasks (the others keep their ``TaskSpec.weight``); a
        sequence has one weight per task, in order. Checked at
        :meth:`~regmtl.deep.Weighting.setup`.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The weights in task order, set by :meth:`~regmtl.deep.Weighting.setup`.

    Notes
    -----
    **Degenerate gradients.** The weights do not depend on the gradients: at a
    Pareto-stationary point, with dependent or zero gradients, the update is
    :math:`\sum_t w_t g_t` as always.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FixedWeighting, TaskSpec
    >>> weighting = FixedWeighting({"b": 0.5})
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> weighting.task_weights.tolist()
    [1.0, 0.5]
    """

    #: The name users pass (``weighting="fixed"``) and saved models carry.
    name = "fixed"

    def __init__(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        super().__init__()
        self.weights = weights
        self.task_weights: Tensor = torch.ones(0, dtype=F64)

    def _setup(self, tasks: list[TaskSpec]) -> None:
        names = [t.name for t in tasks]
        weights = self.weights
        if isinstance(weights, Mapping):
            unknown = sorted(str(k) for k in set(weights) - set(names))
            if unknown:
                raise ValueError(f"weights: unknown task name(s) {unknown}; the tasks are "
                                 f"{names}.")
            w = [check_number(f"weights[{t.name!r}]", weights[t.name]) if t.name in weights
                 else float(t.weight) for t in tasks]
        elif isinstance(weights, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
                weights, str):
            if isinstance(weights, torch.Tensor):
                weights = weights.detach().cpu().numpy()
            vals = np.asarray(weights, dtype=object).reshape(-1).tolist()
            if len(vals) != len(tasks):
                raise ValueError(f"weights: {len(vals)} weights given for {len(tasks)} tasks "
                                 f"{names}.")
            w = [check_number(f"weights[{i}]", v) for i, v in enumerate(vals)]
        else:
            raise ValueError("weights must be a dict task name -> weight or a sequence of "
                             f"weights, got {weights!r}.")
        self.task_weights = torch.tensor(w, dtype=F64)

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.to(losses)

    def extra_repr(self) -> str:
        return f"weights={self.weights!r}"
