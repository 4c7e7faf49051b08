r"""Equal weighting, the baseline: the gradient of :math:`\sum_t b_t L_t`.

:math:`b_t` is each task's ``TaskSpec.weight`` (1 by default). Every other method of
:mod:`regmtl.deep.weighting` is read against it.
"""

from __future__ import annotations

from .._torch import torch
from .base import Weighting

__all__ = ["EqualWeighting"]

Tensor = torch.Tensor


class EqualWeighting(Weighting):
    r"""Equal weighting, the baseline: the gradient of :math:`\sum_t b_t L_t`.

    The weights are :math:`w_t = b_t`, each task's ``TaskSpec.weight`` (1 by default), at
    every step; they sum to :math:`\sum_t b_t` (T by default). The default of
    :class:`~regmtl.deep.Trainer`.

    Notes
    -----
    **Degenerate gradients.** Equal weighting does not look at the gradients: at a
    Pareto-stationary point, with dependent or zero gradients, the update is
    :math:`\sum_t b_t g_t` as always (a task without a label in the batch adds 0).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import EqualWeighting, TaskSpec
    >>> weighting = EqualWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b", weight=2.0)])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, theta[1] ** 2])
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 2.0]
    >>> theta.grad.tolist()
    [2.0, 8.0]
    """

    #: The name users pass (``weighting="equal"``) and saved models carry.
    name = "equal"
