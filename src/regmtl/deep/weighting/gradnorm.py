r"""Gradient normalization, GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, 2018).

One Adam step per training step moves the weights towards
:math:`w_t \|g_t\|_2 = \overline{w \|g\|}\, r_t^\alpha`, with :math:`r_t` the task's
relative training rate :math:`L_t / L_t^{(0)}` over its mean; the weights sum to
:math:`\sum_t b_t`.

Chen, Badrinarayanan, Lee & Rabinovich (2018). GradNorm: gradient normalization for adaptive
loss balancing in deep multitask networks. ICML.
"""

from __future__ import annotations

import math

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, GradientWeighting, check_number

__all__ = ["GradNorm"]

Tensor = torch.Tensor


class GradNorm(GradientWeighting):
    r"""Gradient normalization (Chen, Badrinarayanan, Lee & Rabinovich, 2018).

    Adapts the weights so that each task's weighted gradient norm over all shared parameters
    follows its relative training rate:

    .. math::

        G_t = w_t \|g_t\|_2, \qquad
        \hat G_t = \bar G\, r_t^{\alpha}, \qquad
        r_t = \frac{L_t / L_t^{(0)}}{\frac{1}{T}\sum_k L_k / L_k^{(0)}},

    with :math:`g_t = \nabla_\theta L_t`, :math:`\bar G` the mean of :math:`G` and
    :math:`L_t^{(0)}` the task's first nonzero loss. Every step takes one Adam step (betas 0.9,
    0.999) of learning rate ``lr`` on :math:`\sum_t |G_t - \hat G_t|` over :math:`w` (target
    :math:`\hat G` held fixed), clamps :math:`w \ge 0` and rescales the weights to sum to T
    (:math:`\sum_t b_t`). As in the paper's Algorithm 1 the network's step of step t uses
    :math:`w(t)`, the weights before this update (``order="paper"``); ``order="updated"``
    steps with :math:`w(t+1)` instead, reacting one step earlier. A task with a larger
    gradient norm (or a faster falling loss) has its weight lowered.
    The weights are a buffer, not a parameter: the trainer's optimizer does not touch them.
    Tasks without observed labels in the batch (zero gradient) are left out of the update.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters, T times the
    shared parameters (not the heads, not activations); T backward passes through the trunk.

    Parameters
    ----------
    alpha : float, default=1.5
        Strength of the pull towards equal training rates (>= 0).
    lr : float, default=0.025
        Learning rate of the weights' Adam step (> 0).
    order : {"paper", "updated"}, default="paper"
        Which weights the network's step uses: those before this step's update (Algorithm 1)
        or after it.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The current weights :math:`w`.
    initial_losses : Tensor of shape (T,)
        :math:`L_t^{(0)}` (NaN until the task has a nonzero loss).

    Notes
    -----
    **Differences from the paper.** The order is Algorithm 1's: the network's step uses
    :math:`w(t)`, then the weights move to :math:`w(t+1)` (as LibMTL's code). The paper takes a
    gradient step on the weights (LibMTL: with the network's optimizer) on the L1 loss of the
    gradient norms of one chosen shared layer (the last); here the weights take an Adam step
    of their own (``lr``) on the norms over all shared parameters, are clamped at 0 and
    renormalized to :math:`\sum_t b_t` (the paper: to T). :math:`L_t^{(0)}` is the task's
    first nonzero batch loss (the paper: the loss at step 0). LibMTL parametrizes the weights as
    :math:`T\,\mathrm{softmax}(s)`, takes equal weights for the whole first epoch and that
    epoch's mean loss as :math:`L_t^{(0)}`, and computes the norms on all shared parameters
    or on the representation (``rep_grad``). ``order="updated"`` (the network steps with
    :math:`w(t+1)`) is kept because earlier releases of regmtl trained that way: it
    reproduces their runs; saved estimators of those releases, whose options have no
    ``order``, load with the paper's order.

    References
    ----------
    Chen, Badrinarayanan, Lee & Rabinovich (2018). GradNorm: gradient normalization for
    adaptive loss balancing in deep multitask networks. ICML.

    Examples
    --------
    Task b's gradient is ten times task a's: its weight goes down after the first step
    (which, as Algorithm 1, uses the initial weights).

    >>> import torch
    >>> from regmtl.deep import GradNorm, TaskSpec
    >>> weighting = GradNorm(alpha=1.5, lr=0.025)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    >>> losses = torch.stack([theta[0] ** 2, 10 * theta[1] ** 2])
    >>> weighting.backward(losses, [theta], []).tolist()
    [1.0, 1.0]
    >>> [round(w, 3) for w in weighting.task_weights.tolist()]
    [1.025, 0.975]
    """

    #: The name users pass (``weighting="gradnorm"``) and saved models carry.
    name = "gradnorm"

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, order: str = "paper") -> None:
        super().__init__()
        self.alpha = check_number("alpha", alpha)
        self.lr = check_number("lr", lr, strict=True)
        if order not in ("paper", "updated"):
            raise ValueError(f"order must be 'paper' (Algorithm 1: the network steps with the "
                             f"weights before their update) or 'updated', got {order!r}.")
        self.order = order
        for name in ("task_weights", "initial_losses", "adam_m", "adam_v"):
            self.register_buffer(name, torch.ones(0))
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev, T = self.task_weights.device, len(tasks)
        self.task_weights = self.base_weights.to(self.task_weights)
        self.initial_losses = torch.full((T,), math.nan, device=dev)
        self.adam_m = torch.zeros(T, device=dev)
        self.adam_v = torch.zeros(T, device=dev)
        self.n_steps = torch.zeros((), dtype=torch.long, device=dev)

    def _combine(self, G, losses, scale, reduce):
        base = self._base()
        w = self.task_weights.detach().to("cpu", F64)
        before = w.clone()
        L = losses.detach()
        if reduce is not None:
            L = reduce(L)
        L = L.to("cpu", F64)
        factor = float(scale(losses.detach().new_ones(())))  # the AMP loss scale, 1 without
        factor = factor if math.isfinite(factor) and factor > 0 else 1.0
        norms = torch.linalg.vector_norm(G, dim=1).to("cpu", F64) / factor
        if not (torch.isfinite(norms).all() and torch.isfinite(L).all()):
            return w, w  # an overflowing AMP step: the scaler skips it, keep the weights
        init = self.initial_losses.detach().to("cpu", F64)
        init = torch.where(torch.isnan(init) & (L > 0), L, init)
        self.initial_losses.copy_(init)
        active = (norms > 0) & (init > 0) & (base > 0)
        if int(active.sum()) >= 2:
            Gw = w * norms
            rate = torch.where(active, L / torch.where(active, init, 1.0), 0.0)
            rate = rate / rate[active].mean()
            target = Gw[active].mean() * rate.clamp(min=0) ** self.alpha
            grad = torch.where(active, torch.sign(Gw - target) * norms, 0.0)
            step = int(self.n_steps) + 1
            m = self.adam_m.detach().to("cpu", F64)
            v = self.adam_v.detach().to("cpu", F64)
            m = torch.where(active, 0.9 * m + 0.1 * grad, m)
            v = torch.where(active, 0.999 * v + 0.001 * grad**2, v)
            m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
            w = w - torch.where(active, self.lr * m_hat / (v_hat.sqrt() + 1e-8), 0.0)
            w = torch.where(base > 0, w.clamp(min=0), 0.0)
            w = base.sum() * w / w.sum() if w.sum() > 0 else base.clone()
            self.adam_m.copy_(m)
            self.adam_v.copy_(v)
            self.n_steps.fill_(step)
            self.task_weights.copy_(w)
        used = before if self.order == "paper" else w
        return used, used.clone()

    def extra_repr(self) -> str:
        return f"alpha={self.alpha!r}, lr={self.lr!r}, order={self.order!r}"
