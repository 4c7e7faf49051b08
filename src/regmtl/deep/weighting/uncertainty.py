r"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, 2018).

Learned log-variances :math:`s_t`: the net and :math:`s` minimize
:math:`\sum_t b_t (e^{-s_t} L_t + s_t)`, so the task weight is :math:`w_t = b_t e^{-s_t}`
(optimum :math:`e^{s_t} = L_t`).

Kendall, Gal & Cipolla (2018). Multi-task learning using uncertainty to weigh losses for scene
geometry and semantics. CVPR.
"""

from __future__ import annotations

import math

from .._torch import torch
from ..tasks import TaskSpec
from .base import Weighting, check_number

__all__ = ["UncertaintyWeighting"]

Tensor = torch.Tensor


class UncertaintyWeighting(Weighting):
    r"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, 2018).

    Learns one log-variance :math:`s_t = \log \sigma_t^2` per task (the parameter
    ``log_vars``, created at :meth:`~regmtl.deep.Weighting.setup`: give
    ``weighting.parameters()`` to the optimizer, as :class:`~regmtl.deep.Trainer` does) and
    minimizes, jointly with the net,

    .. math::

        \sum_t b_t \left(e^{-s_t} L_t + s_t\right);

    the task weight is :math:`w_t = b_t e^{-s_t}`. For a fixed loss the optimum is
    :math:`s_t = \log L_t`, so a task with 100 times the loss gets about 1/100 of the weight.
    A task whose loss is exactly 0 in a batch (no observed label) drops its :math:`s_t` term,
    so missing labels do not inflate its weight.

    The weights keep no sum: nothing ties the :math:`s_t` together, so
    :math:`\sum_t w_t` starts at :math:`e^{-\mathrm{init}} \sum_t b_t` and drifts, down when
    the losses are large, up as they fall below 1 (with losses of 100 and 0.1 the weights tend
    to :math:`b_t / L_t`, 0.01 and 10). Read them relative to one another.

    Parameters
    ----------
    init : float, default=0.0
        Starting value of every :math:`s_t` (weight :math:`e^{-\mathrm{init}}`).

    Attributes
    ----------
    log_vars : torch.nn.Parameter of shape (T,)
        The learned :math:`s_t`.

    Notes
    -----
    **Degenerate gradients.** The weights depend on the losses, not on the gradients' geometry:
    at a Pareto-stationary point the update is :math:`\sum_t w_t g_t` as always; a task whose
    loss is 0 in the batch (no label) drops its :math:`s_t` term.

    **Differences from the paper.** The paper writes
    :math:`\frac{1}{2\sigma^2} L + \log\sigma = \tfrac12 (e^{-s} L + s)` for a regression
    task and :math:`\frac{1}{\sigma^2} L + \log \sigma = e^{-s} L + \tfrac12 s` for a
    classification task; here every task takes :math:`e^{-s} L + s`, twice the paper's
    regression form. For a fixed loss both of the paper's forms settle at the weight
    :math:`1 / (2 L_t)` and this one at :math:`1 / L_t`: the same ratios between tasks, the
    step twice as long (for a classification task the log-variance also moves at another
    rate). LibMTL takes the paper's regression form for every task, with
    :math:`s_t = -0.5` at the start (weight :math:`e^{0.5}/2 \approx 0.82`); here
    ``init=0`` (weight 1, equal weighting's first step).

    References
    ----------
    Kendall, Gal & Cipolla (2018). Multi-task learning using uncertainty to weigh losses for
    scene geometry and semantics. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec, UncertaintyWeighting
    >>> weighting = UncertaintyWeighting()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> losses = torch.stack([theta[0] ** 2, 4 * theta[1] ** 2])  # 1 and 16
    >>> weighting.backward(losses, [theta], []).tolist()  # e^{-s} with s = 0
    [1.0, 1.0]
    >>> weighting.log_vars.grad.tolist()  # d/ds (e^{-s} L + s) = 1 - L at s = 0
    [0.0, -15.0]
    """

    #: The name users pass (``weighting="uncertainty"``) and saved models carry.
    name = "uncertainty"

    def __init__(self, init: float = 0.0) -> None:
        super().__init__()
        self.init = check_number("init", init, low=-math.inf)
        self.log_vars = torch.nn.Parameter(torch.zeros(0))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        self.log_vars = torch.nn.Parameter(
            torch.full((len(tasks),), self.init, device=self.log_vars.device))

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.base_weights.to(losses) * torch.exp(-self.log_vars.to(losses))

    def _regularizer(self, losses: Tensor) -> Tensor:
        observed = (losses.detach() != 0).to(losses.dtype)
        return (self.base_weights.to(losses) * observed * self.log_vars.to(losses)).sum()

    def extra_repr(self) -> str:
        return f"init={self.init!r}"
