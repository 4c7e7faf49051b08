r"""Robust multi-task learning with excess risks, ExcessMTL (He, Zhou, Ye & Kwok, 2024).

The task weights grow exponentially with each task's estimated excess risk (its distance to
its own optimum), estimated by a second-order expansion with a diagonal Hessian approximated
by accumulated squared gradients (as in AdaGrad).

He, Zhou, Ye & Kwok (2024). Robust multi-task learning with excess risks. ICML.
"""

from __future__ import annotations

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, GradientWeighting, check_number
from .db_mtl import TrackedGradients

__all__ = ["ExcessMTL", "excess_risks"]

Tensor = torch.Tensor


def excess_risks(G: Tensor, sq_sum: Tensor, eps: float = 1e-7) -> Tensor:
    r"""The excess risk estimates :math:`g_t^\top H_t^{-1} g_t` of ExcessMTL.

    .. math::

        E_t = \sum_j \frac{g_{tj}^2}{\sqrt{s_{tj} + \epsilon}}, \qquad
        H_t = \mathrm{diag}\big(\sqrt{s_t + \epsilon}\big),

    with :math:`s_t` the accumulated squared gradients of task t (this step's included): the
    excess risk :math:`L_t(\theta) - L_t(\theta_t^*) \approx \frac12 g_t^\top H_t^{-1} g_t`
    of a quadratic model, with AdaGrad's diagonal in place of the Hessian (the factor
    :math:`\frac12` cancels in ExcessMTL's ratios and is left out).

    Parameters
    ----------
    G : Tensor of shape (T, d)
        The task gradients of the step.
    sq_sum : Tensor of shape (T, d)
        :math:`s`, the squared gradients accumulated up to and including this step.
    eps : float, default=1e-7
        :math:`\epsilon > 0`.

    Returns
    -------
    Tensor of shape (T,)
        :math:`E` (float64, CPU).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import excess_risks
    >>> G = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    >>> [round(e, 6) for e in excess_risks(G, G ** 2).tolist()]  # 9/3 + 16/4
    [7.0]
    """
    eps = check_number("eps", eps, strict=True)
    if G.shape != sq_sum.shape or G.ndim != 2:
        raise ValueError("G and sq_sum must be (T, d) tensors of the same shape.")
    G64 = G.detach().to(F64)
    return ((G64 ** 2) / torch.sqrt(sq_sum.detach().to(F64) + eps)).sum(dim=1).cpu()


class ExcessMTL(TrackedGradients, GradientWeighting):
    r"""Robust multi-task learning with excess risks (ExcessMTL, He et al., 2024).

    Each step estimates every task's excess risk :math:`E_t`
    (:func:`~regmtl.deep.weighting.excess_risks`: the
    quadratic model :math:`g_t^\top H_t^{-1} g_t` with the diagonal Hessian approximated by
    AdaGrad's :math:`\sqrt{\sum_{k} g_{t,k}^2}`, the squared gradients accumulated over the
    steps), then updates the weights by exponentiated gradient ascent on the excess risks
    relative to their first values :math:`E_t^{(0)}`, and steps with them:

    .. math::

        w_t \leftarrow w_t \exp\big(\eta\, E_t / E_t^{(0)}\big), \quad
        w \leftarrow \frac{\sum_t b_t}{\sum_t w_t}\, w, \qquad
        \text{update } \sum_t w_t \nabla L_t

    (:math:`w = b` at the start; the first step only records :math:`E^{(0)}`). A task far
    from its own optimum (large excess risk, not merely a large loss, which may be label
    noise) gains weight. T backward passes through the trunk per step; memory 2 T times the
    shared parameters. Under data parallelism the gradients are averaged across ranks first;
    under mixed precision the squared gradients are accumulated unscaled (an overflowing
    step leaves the state alone and passes to the gradient scaler, which skips it).

    Parameters
    ----------
    step_size : float, default=0.01
        :math:`\eta \ge 0` (LibMTL's ``robust_step_size``).
    eps : float, default=1e-7
        :math:`\epsilon > 0` under the square root.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The weights :math:`w` of the last step.
    sq_sum : Tensor of shape (T, d)
        The accumulated squared gradients (size 0 before the first step).
    initial_risks : Tensor of shape (T,)
        :math:`E^{(0)}` (0 until the task's first step with a non-zero gradient).

    Notes
    -----
    **Degenerate gradients.** The weights are positive and the update is
    :math:`\sum_t w_t g_t`: at a Pareto-stationary point it is not 0 in general (the weights
    follow the excess risks, not the geometry of the gradients); dependent gradients are
    weighted like any others. A task whose gradient is zero in the step (no label in the
    batch) keeps its weight and its state (the others are renormalized among themselves, so
    the weights still sum to :math:`\sum_t b_t`); its :math:`E^{(0)}` is taken at its first
    step with a non-zero gradient. A non-finite gradient raises a ValueError naming the task,
    except under loss scaling (see above).

    **Differences from the paper.** The update is the paper's (and LibMTL's, from the
    authors): exponentiated ascent on :math:`E_t / E_t^{(0)}`, normalized to sum
    :math:`T` (:math:`\sum_t b_t` with base weights), the new weights used in the same step,
    the first step recording :math:`E^{(0)}` only. LibMTL's single initial vector becomes
    per-task here (a task absent from the first batch would divide by 0 there).

    References
    ----------
    He, Zhou, Ye & Kwok (2024). Robust multi-task learning with excess risks. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import ExcessMTL, TaskSpec
    >>> weighting = ExcessMTL(step_size=0.5)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> def losses():
    ...     return torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> weighting.backward(losses(), [theta], []).tolist()  # E(0) recorded
    [1.0, 1.0]
    >>> w = weighting.backward(losses(), [theta], [])  # E / E(0) = 1 / sqrt(2) for both
    >>> [round(x, 6) for x in w.tolist()]
    [1.0, 1.0]
    """

    #: The name users pass (``weighting="excess_mtl"``) and saved models carry.
    name = "excess_mtl"

    _tracked = ("sq_sum",)

    def __init__(self, step_size: float = 0.01, eps: float = 1e-7) -> None:
        super().__init__()
        self.step_size = check_number("step_size", step_size)
        self.eps = check_number("eps", eps, strict=True)
        self.register_buffer("sq_sum", torch.zeros(0, 0))
        self.register_buffer("initial_risks", torch.zeros(0, dtype=F64))
        self.register_buffer("task_weights", torch.zeros(0, dtype=F64))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.sq_sum.device
        T = len(tasks)
        self.sq_sum = torch.zeros(T, 0, device=dev)
        self.initial_risks = torch.zeros(T, dtype=F64, device=dev)
        self.task_weights = self.base_weights.to(dev, copy=True)

    def _step(self, G, L, active):
        T, d = G.shape
        S = self._sized("sq_sum", T, d, G)
        rows = active.to(G.device)
        S[rows] += (G[rows] ** 2).to(S)
        w = self.task_weights.detach().to("cpu", F64).clone()
        E0 = self.initial_risks.detach().to("cpu", F64).clone()
        if active.any():
            E = torch.zeros(T, dtype=F64)
            E[active] = excess_risks(G[rows], S[rows], self.eps)
            known = active & (E0 > 0)
            if known.any():
                total = w[known].sum()
                w[known] = w[known] * torch.exp(self.step_size * E[known] / E0[known])
                w[known] = total * w[known] / w[known].sum()
            first = active & (E0 == 0)
            E0[first] = E[first]
        self.initial_risks.copy_(E0)
        self.task_weights.copy_(w)
        return w.to(G) @ G, w, w

    def extra_repr(self) -> str:
        return f"step_size={self.step_size!r}, eps={self.eps!r}"
