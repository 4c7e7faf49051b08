r"""Smooth Tchebycheff scalarization, STCH (Lin, Zhang, Liu, Wang & Zhang, 2024).

A smooth maximum of the normalized log-losses,
:math:`S \mu \log \sum_t \exp(b_t \log(L_t / n_t) / \mu)` (:math:`S = \sum_t b_t`), after a
warm-up on :math:`\sum_t \log L_t` that fixes the nadir point :math:`n`. One backward pass.

Lin, Zhang, Liu, Wang & Zhang (2024). Smooth Tchebycheff scalarization for multi-objective
optimization. ICML.
"""

from __future__ import annotations

from typing import Any

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, check_number
from .loss_based import LossValueWeighting, loss_inputs, positive_losses

__all__ = ["STCH", "stch_weights"]

Tensor = torch.Tensor


def stch_weights(losses: Any, nadir: Any = None, mu: float = 1.0,
                 base_weights: Any = None) -> Tensor:
    r"""The weights of the smooth Tchebycheff objective on the loss values ``losses``.

    With :math:`P` the tasks with :math:`L_t > 0` and base weights (preferences) :math:`b`, the
    objective :math:`S \mu \log \sum_{t \in P} \exp(b_t \log(L_t / n_t) / \mu)`,
    :math:`S = \sum_{t\in P} b_t`, has the gradient :math:`\sum_t w_t \nabla L_t` with

    .. math::

        w_t = S\, b_t\, \frac{p_t}{L_t}, \qquad
        p = \mathrm{softmax}_{t \in P}\big(b_t \log(L_t / n_t) / \mu\big),

    and :math:`w_t = 0` outside :math:`P`. Without ``nadir`` (the warm-up) the objective is
    :math:`\sum_t b_t \log L_t` and :math:`w_t = b_t / L_t`.

    Parameters
    ----------
    losses : array-like of shape (T,)
        The loss values, finite and >= 0.
    nadir : array-like of shape (T,), optional
        The nadir point :math:`n > 0`; None: the warm-up objective.
    mu : float, default=1.0
        The smoothing :math:`\mu > 0` (as :math:`\mu \to 0` the objective tends to the
        Tchebycheff maximum :math:`\max_t b_t \log(L_t / n_t)`).
    base_weights : array-like of shape (T,), optional
        The preferences :math:`b \ge 0` (ones by default).

    Returns
    -------
    Tensor of shape (T,)
        The weights (float64).

    Examples
    --------
    >>> from regmtl.deep.weighting import stch_weights
    >>> stch_weights([1.0, 4.0]).tolist()  # warm-up: 1 / L
    [1.0, 0.25]
    >>> [round(w, 4) for w in stch_weights([1.0, 4.0], nadir=[1.0, 2.0]).tolist()]
    [0.6667, 0.3333]
    """
    mu = check_number("mu", mu, strict=True)
    L, b, part = loss_inputs(losses, base_weights, "stch_weights")
    T = L.shape[0]
    w = torch.zeros(T, dtype=F64)
    if not part.any():
        return w
    if nadir is None:
        w[part] = b[part] / L[part]
        return w
    n = torch.as_tensor(nadir, dtype=F64).detach().cpu().reshape(-1)
    if n.shape != (T,) or not torch.isfinite(n).all() or (n <= 0).any():
        raise ValueError(f"nadir must be {T} finite numbers > 0, got {nadir!r}.")
    x = b[part] * torch.log(L[part] / n[part]) / mu
    p = torch.softmax(x, dim=0)
    w[part] = b[part].sum() * b[part] * p / L[part]
    return w


class STCH(LossValueWeighting):
    r"""Smooth Tchebycheff scalarization (Lin et al., 2024), the variant of its MTL experiments.

    For the first ``warmup_epochs`` epochs the objective is :math:`\sum_t b_t \log L_t`
    (weights :math:`b_t / L_t`); the mean training loss of each task over the last warm-up
    epoch (from :meth:`~regmtl.deep.Weighting.epoch_end`) becomes its nadir value
    :math:`n_t`. From then on the objective is the smooth Tchebycheff scalarization of the
    log-losses normalized by the nadir point, the ideal point taken at 0 (:math:`\log` of a
    loss tending to 0 tends to :math:`-\infty`):

    .. math::

        S \mu \log \sum_t \exp\Big(\frac{b_t \log(L_t / n_t)}{\mu}\Big), \qquad
        w_t = S\, b_t\, \frac{p_t}{L_t},\quad p = \mathrm{softmax}\Big(\frac{b \odot
        \log(L / n)}{\mu}\Big)

    with :math:`S = \sum_t b_t` (T with unit base weights; see
    :func:`~regmtl.deep.weighting.stch_weights`): a
    smooth maximum, whose weight goes to the task furthest
    above its nadir value. One backward pass; the weights come from the loss values of the
    step (averaged across ranks under data parallelism; before loss scaling under mixed
    precision).

    Parameters
    ----------
    mu : float, default=1.0
        The smoothing :math:`\mu > 0` (LibMTL's default).
    warmup_epochs : int, default=4
        Epochs of the log-loss sum before the nadir point is fixed (>= 1; LibMTL's default).

    Attributes
    ----------
    nadir : Tensor of shape (T,)
        The nadir point :math:`n` (ones until fixed).
    n_epochs : Tensor
        The epochs finished.

    Notes
    -----
    **Degenerate gradients.** The weights depend on the loss values only: at a
    Pareto-stationary point, with dependent gradients and with a zero gradient, the update is
    :math:`\sum_t w_t g_t` as always. A task with a loss of 0 (no label in the batch) takes
    no part in the step (weight 0, left out of the softmax); a negative loss raises a
    ValueError naming the task; a non-finite loss too, except under loss scaling, where the
    step keeps the base weights so that the gradient scaler skips it. A task whose mean loss
    over the last warm-up epoch is not a positive number (no label in that epoch) keeps the
    nadir value 1.

    **Differences from the paper.** The paper defines STCH for any objectives with an ideal
    point :math:`z^*` and preferences :math:`\lambda` (here the base weights); the MTL
    variant here is that of the authors' code and LibMTL (log-losses normalized by a nadir
    point from a warm-up, the whole multiplied by :math:`T`). LibMTL averages the batch
    losses of the epoch after the warm-up (so it warms up for ``warmup_epochs + 1`` epochs);
    here the nadir point is the mean training loss of the last warm-up epoch as the trainer
    reports it. Tasks with a zero loss are left out rather than giving :math:`\log 0`.

    References
    ----------
    Lin, Zhang, Liu, Wang & Zhang (2024). Smooth Tchebycheff scalarization for
    multi-objective optimization. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import STCH, TaskSpec
    >>> weighting = STCH(mu=1.0, warmup_epochs=1)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> weighting.backward(torch.stack([theta[0] ** 2, theta[1] ** 2]), [theta], []).tolist()
    [1.0, 0.25]
    >>> weighting.epoch_end(torch.tensor([1.0, 2.0]))  # the nadir point
    >>> w = weighting.backward(torch.stack([theta[0] ** 2, theta[1] ** 2]), [theta], [])
    >>> [round(x, 4) for x in w.tolist()]
    [0.6667, 0.3333]
    """

    #: The name users pass (``weighting="stch"``) and saved models carry.
    name = "stch"

    def __init__(self, mu: float = 1.0, warmup_epochs: int = 4) -> None:
        super().__init__()
        self.mu = check_number("mu", mu, strict=True)
        if (not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool)
                or warmup_epochs < 1):
            raise ValueError(f"warmup_epochs must be an int >= 1 (the epochs that fix the "
                             f"nadir point), got {warmup_epochs!r}.")
        self.warmup_epochs = int(warmup_epochs)
        self.register_buffer("nadir", torch.ones(0, dtype=F64))
        self.register_buffer("n_epochs", torch.zeros((), dtype=torch.long))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.nadir.device
        self.nadir = torch.ones(len(tasks), dtype=F64, device=dev)
        self.n_epochs = torch.zeros((), dtype=torch.long, device=dev)

    @property
    def warming_up(self) -> bool:
        """Whether the nadir point is not fixed yet."""
        return int(self.n_epochs) < self.warmup_epochs

    def epoch_end(self, train_losses: Tensor) -> None:
        if not self.task_names:
            raise RuntimeError("STCH.setup(tasks) must be called before epoch_end().")
        last = torch.as_tensor(train_losses).detach().to("cpu", F64).reshape(-1)
        if last.shape != (self.n_tasks,):
            raise ValueError(f"train_losses must have {self.n_tasks} values, one per task, "
                             f"got shape {tuple(last.shape)}.")
        n = int(self.n_epochs) + 1
        if n == self.warmup_epochs:
            ok = torch.isfinite(last) & (last > 0)
            self.nadir.copy_(torch.where(ok, last, torch.ones_like(last)))
        self.n_epochs.fill_(n)

    def _value_weights(self, L: Tensor | None) -> Tensor:
        if L is None:
            return self._base().clone()
        positive_losses(L, self.task_names, "STCH")
        nadir = None if self.warming_up else self.nadir.detach().to("cpu", F64)
        return stch_weights(L, nadir, self.mu, self._base())

    def extra_repr(self) -> str:
        return f"mu={self.mu!r}, warmup_epochs={self.warmup_epochs!r}"
