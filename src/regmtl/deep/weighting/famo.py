r"""Fast adaptive multitask optimization, FAMO (Liu, Feng, Stone & Liu, 2023).

A loss weighting (one backward pass per step) that decreases the task losses at balanced
rates: :math:`w_t \propto z_t / L_t`, :math:`z = \mathrm{softmax}(\xi)`, with logits
:math:`\xi` learned after each step from the observed decrease of :math:`\log L_t`.

Liu, Feng, Stone & Liu (2023). FAMO: fast adaptive multitask optimization. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, check_number, identity
from .helpers import non_finite
from .loss_based import LossValueWeighting

__all__ = ["FAMO"]

Tensor = torch.Tensor


class FAMO(LossValueWeighting):
    r"""Fast adaptive multitask optimization (Liu, Feng, Stone & Liu, 2023).

    A loss weighting that decreases the task losses at balanced rates, with one backward pass
    per step (it never forms per-task gradients). With logits :math:`\xi` (a buffer, zero at
    the start), :math:`z = \mathrm{softmax}(\xi)` (with base weights
    :math:`z_t \propto b_t e^{\xi_t}`) and :math:`D_t = \max(L_t - L_t^*, 0) + \epsilon`
    (:math:`L^*` the ``min_losses``), the step follows

    .. math::

        d = c \sum_t z_t \nabla \log D_t = \sum_t w_t \nabla L_t, \qquad
        w_t = \frac{z_t / D_t}{\sum_k z_k / D_k}, \quad
        c = \Bigl(\sum_k z_k / D_k\Bigr)^{-1},

    times :math:`\sum_t b_t`: the weights sum to :math:`\sum_t b_t` over the tasks with a label
    in the batch (equal losses and logits give equal weighting's update), and are held fixed in
    the backward pass. After the optimizer step, with the losses :math:`D_t'` of the same batch
    at the new parameters, the logits take one step of their own optimizer (Adam by default,
    learning rate ``w_lr``, weight decay ``gamma``) along

    .. math::

        \delta = J_z(\xi)^\top \bigl(\log D - \log D'\bigr) + \gamma \xi, \qquad
        J_z(\xi)^\top v = z \odot (v - z^\top v) ,

    the paper's update :math:`\xi \leftarrow \xi - \beta\,\delta` with ``optimizer="sgd"``. A
    task whose log-loss fell faster than the z-weighted average loses weight. The logits settle
    where :math:`z_t (v_t - z^\top v) = -\gamma \xi_t` (:math:`v` the per-step log-loss
    decreases): with :math:`\gamma = 0` the tasks' log-losses fall at equal rates; the weight
    decay holds the logits near 0, so with slowly falling losses the weights stay close to the
    plain log-loss weighting :math:`1 / L_t`.
    :class:`~regmtl.deep.Trainer` provides :math:`D'` through :meth:`step_end` (an extra
    forward pass of the batch without gradients, as the authors' code does; the net's buffers,
    e.g. batch-norm statistics, are restored afterwards). Used by hand without
    :meth:`step_end`, the next call of :meth:`backward` takes its losses as :math:`D'` (those
    of the next batch, a noisier estimate).

    A task whose loss is exactly 0 in a batch (no label) gets weight 0 and leaves its logit to
    the weight decay; the others' logits move as if it were absent.

    Parameters
    ----------
    w_lr : float, default=0.025
        Learning rate :math:`\beta` of the logits (> 0).
    gamma : float, default=0.001
        Weight decay :math:`\gamma` of the logits (>= 0).
    optimizer : {"adam", "sgd"}, default="adam"
        The logits' optimizer: Adam (betas 0.9, 0.999, eps 1e-8, the authors' code) or plain
        gradient steps (the paper's algorithm).
    min_losses : float or sequence of float, default=0.0
        Lower bounds :math:`L_t^*` of the losses (0 for squared and cross-entropy losses).
    eps : float, default=1e-8
        :math:`\epsilon` (> 0), keeps :math:`\log D_t` finite.

    Attributes
    ----------
    logits : Tensor of shape (T,)
        :math:`\xi` (float64 buffer).
    task_weights : Tensor of shape (T,)
        The weights :math:`w` of the last step.

    Notes
    -----
    **Degenerate gradients.** FAMO never forms per-task gradients: at a Pareto-stationary point
    the update is :math:`\sum_t w_t g_t` as always; a task without a label in the batch takes
    no part (weight 0) and its logit is left alone.

    **Differences from the paper.** The paper's weights are :math:`c\, z_t / L_t`, summing
    to 1; here they sum to :math:`\sum_t b_t` (T), so learning rates carry over from equal
    weighting. The logits' optimizer is Adam by default, as in the authors' code and LibMTL's
    (the paper writes plain gradient steps :math:`\xi \leftarrow \xi - \beta (J_z^\top v +
    \gamma \xi)`: ``optimizer="sgd"``); with Adam the regularization :math:`\gamma \xi` is
    added to the gradient before Adam's moments (``torch.optim.Adam``'s ``weight_decay``, as
    that code), not applied as a plain decay. :math:`L^*` (``min_losses``) and
    :math:`\epsilon` are that code's; :math:`L_t - L_t^*` is clamped at 0 here (a loss below
    its stated bound would give the log of a negative number there).

    References
    ----------
    Liu, Feng, Stone & Liu (2023). FAMO: fast adaptive multitask optimization. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FAMO, TaskSpec
    >>> weighting = FAMO(w_lr=0.025, gamma=0.001)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0] ** 2, 100 * theta[1] ** 2])  # 1 and 100
    >>> [round(w, 4) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.9802, 0.0198]
    >>> [round(g, 4) for g in theta.grad.tolist()]  # grad log L_a + grad log L_b, times 1.98
    [3.9604, 3.9604]

    After the step, a's loss has halved and b's fallen by 10 %: a's logit goes down (one Adam
    step of 0.025), b's up.

    >>> weighting.step_end(torch.tensor([0.5, 90.0]))
    >>> [round(x, 4) for x in weighting.logits.tolist()]
    [-0.025, 0.025]
    """

    #: The name users pass (``weighting="famo"``) and saved models carry.
    name = "famo"

    needs_step_losses = True

    def __init__(self, w_lr: float = 0.025, gamma: float = 0.001, optimizer: str = "adam",
                 min_losses: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.w_lr = check_number("w_lr", w_lr, strict=True)
        self.gamma = check_number("gamma", gamma)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}.")
        self.optimizer = optimizer
        if isinstance(min_losses, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
                min_losses, str):
            vals = np.asarray(min_losses, dtype=object).reshape(-1).tolist()
            self.min_losses = tuple(check_number(f"min_losses[{i}]", v, low=-math.inf)
                                    for i, v in enumerate(vals))
        else:
            self.min_losses = check_number("min_losses", min_losses, low=-math.inf)
        self.eps = check_number("eps", eps, strict=True)
        for name in ("logits", "task_weights", "adam_m", "adam_v", "prev_losses"):
            self.register_buffer(name, torch.zeros(0, dtype=F64))
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("pending", torch.zeros((), dtype=torch.bool))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        T = len(tasks)
        if isinstance(self.min_losses, tuple) and len(self.min_losses) != T:
            raise ValueError(f"min_losses: {len(self.min_losses)} values given for {T} tasks.")
        dev = self.logits.device
        for name in ("logits", "adam_m", "adam_v", "prev_losses"):
            setattr(self, name, torch.zeros(T, dtype=F64, device=dev))
        self.task_weights = self.base_weights.to(dev, copy=True)
        self.n_updates = torch.zeros((), dtype=torch.long, device=dev)
        self.pending = torch.zeros((), dtype=torch.bool, device=dev)

    # ------------------------------------------------------------------ helpers
    def _values(self, losses: Tensor, reduce: Callable[[Tensor], Tensor] | None,
                scale: Callable[[Tensor], Tensor] | None, what: str) -> Tensor | None:
        """The (T,) detached losses (averaged over ranks) on the CPU; None to skip the step."""
        L = losses.detach()
        if reduce is not None:
            L = reduce(L)
        L = L.to("cpu", F64).reshape(-1)
        if L.shape != (self.n_tasks,):
            raise ValueError(f"{what} must have {self.n_tasks} values, one per task, got shape "
                             f"{tuple(L.shape)}.")
        bad = ~torch.isfinite(L)
        if bad.any():
            if scale is not None and scale is not identity:
                return None
            raise non_finite("FAMO", "loss", self.task_names, bad.numpy(), advice=False)
        return L

    def _shifted(self, L: Tensor) -> Tensor:
        low = torch.as_tensor(self.min_losses, dtype=F64)
        return (L - low).clamp(min=0.0) + self.eps

    def _softmax(self, observed: Tensor) -> Tensor:
        """z over the observed tasks with base weights (0 elsewhere)."""
        xi = self.logits.detach().to("cpu", F64)
        b = self._base() * observed
        if not b.sum() > 0:
            return torch.zeros_like(xi)
        e = b * torch.exp(xi - xi[b > 0].max())
        return e / e.sum()

    def _update_logits(self, before: Tensor, after: Tensor) -> None:
        observed = (before != 0) & (after != 0)
        z = self._softmax(observed)
        v = torch.where(observed, torch.log(self._shifted(before)) -
                        torch.log(self._shifted(after)), 0.0)
        xi = self.logits.detach().to("cpu", F64)
        grad = z * (v - (z * v).sum()) + self.gamma * xi
        if self.optimizer == "sgd":
            xi = xi - self.w_lr * grad
        else:
            step = int(self.n_updates) + 1
            m = 0.9 * self.adam_m.detach().to("cpu", F64) + 0.1 * grad
            v2 = 0.999 * self.adam_v.detach().to("cpu", F64) + 0.001 * grad**2
            m_hat, v_hat = m / (1 - 0.9**step), v2 / (1 - 0.999**step)
            xi = xi - self.w_lr * m_hat / (v_hat.sqrt() + 1e-8)
            self.adam_m.copy_(m)
            self.adam_v.copy_(v2)
        self.n_updates.add_(1)
        self.logits.copy_(xi)

    def _weights(self, L: Tensor) -> Tensor:
        observed = L != 0
        z = self._softmax(observed)
        ratio = torch.where(observed, z / self._shifted(L), 0.0)
        total = ratio.sum()
        if not (total > 0 and torch.isfinite(total)):
            return self._base() * observed
        return (self._base() * observed).sum() * ratio / total

    # ------------------------------------------------------------------ steps
    def _loss_values(self, losses: Tensor, reduce: Callable[[Tensor], Tensor] | None,
                     scale: Callable[[Tensor], Tensor] | None) -> Tensor | None:
        return self._values(losses, reduce, scale, "losses")

    def _value_weights(self, L: Tensor | None) -> Tensor:
        """If the previous step's losses are still waiting for :meth:`step_end`, these losses
        take its place first (the logits are updated with them)."""
        if L is None:  # an overflowing mixed-precision step: the scaler skips it
            w = self._base().clone()
            self.pending.fill_(False)
        else:
            if bool(self.pending):
                self._update_logits(self.prev_losses.detach().to("cpu", F64), L)
            w = self._weights(L)
            self.prev_losses.copy_(L)
            self.pending.fill_(True)
        self.task_weights.copy_(w)
        return w

    def step_end(self, losses: Tensor, *,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Update the logits from the losses of the same batch after the optimizer step.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            The task losses of the batch of the last :meth:`backward`, at the new parameters.
        reduce : callable, optional
            Averages a tensor across distributed ranks (applied to the loss values).
        """
        if not self.task_names:
            raise RuntimeError("FAMO.setup(tasks) must be called before step_end().")
        if not bool(self.pending):
            return
        L = self._values(torch.as_tensor(losses), reduce, None, "step_end losses")
        self._update_logits(self.prev_losses.detach().to("cpu", F64), L)
        self.pending.fill_(False)

    def extra_repr(self) -> str:
        return (f"w_lr={self.w_lr!r}, gamma={self.gamma!r}, optimizer={self.optimizer!r}, "
                f"min_losses={self.min_losses!r}, eps={self.eps!r}")
