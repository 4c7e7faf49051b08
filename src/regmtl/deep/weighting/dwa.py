r"""Dynamic weight average, DWA (Liu, Johns & Davison, 2019).

The weights of an epoch follow how fast each task's mean training loss fell over the last two
epochs: :math:`w = T\,\mathrm{softmax}(r / \tau)`, :math:`r_t = L_t^{(e-1)} / L_t^{(e-2)}`.

Liu, Johns & Davison (2019). End-to-end multi-task learning with attention. CVPR.
"""

from __future__ import annotations

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, Weighting, check_number, weighted_softmax

__all__ = ["DWA"]

Tensor = torch.Tensor


class DWA(Weighting):
    r"""Dynamic weight average (Liu, Johns & Davison, 2019).

    The weights of epoch e follow the rate at which each task's loss fell over the last two
    epochs:

    .. math::

        w = T\,\mathrm{softmax}(r / \tau), \qquad
        r_t = \frac{L_t^{(e-1)}}{L_t^{(e-2)}},

    with :math:`L_t^{(e)}` the task's mean training loss of epoch e (from
    :meth:`~regmtl.deep.Weighting.epoch_end`) and :math:`\tau` the temperature: the task
    whose loss falls slowest gets the largest weight. The first two epochs use the base
    weights; the weights sum to T (to :math:`\sum_t b_t` with base weights :math:`b`,
    :math:`w_t` then proportional to :math:`b_t e^{r_t / \tau}`).

    Parameters
    ----------
    temperature : float, default=2.0
        Softness of the weights :math:`\tau` (> 0); large values give equal weights.

    Attributes
    ----------
    task_weights : Tensor of shape (T,)
        The weights of the current epoch.
    loss_history : Tensor of shape (2, T)
        The mean training losses of the last epoch (row 0) and of the one before.

    Notes
    -----
    **Degenerate gradients.** The weights depend on the epochs' losses only: at a
    Pareto-stationary point the update is :math:`\sum_t w_t g_t` as always.

    **Differences from the paper.** None in the formula: :math:`w = T\,\mathrm{softmax}(r /
    \tau)` on the ratio of the mean training losses of the last two epochs, and equal weights
    for the first two epochs (the paper's :math:`r_t = 1` there), as the authors' code and
    LibMTL's. With base weights :math:`b` the softmax is weighted,
    :math:`w_t \propto b_t e^{r_t/\tau}`, and the first two epochs take :math:`b`. A ratio
    that is not finite (a task without labels in an epoch, a loss of 0 the epoch before)
    counts as 1.

    References
    ----------
    Liu, Johns & Davison (2019). End-to-end multi-task learning with attention. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import DWA, TaskSpec
    >>> weighting = DWA(temperature=2.0)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> weighting.epoch_end(torch.tensor([1.0, 1.0]))
    >>> weighting.epoch_end(torch.tensor([0.5, 1.0]))  # task a's loss halved
    >>> [round(w, 3) for w in weighting.task_weights.tolist()]
    [0.876, 1.124]
    """

    #: The name users pass (``weighting="dwa"``) and saved models carry.
    name = "dwa"

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature, strict=True)
        self.register_buffer("loss_history", torch.zeros(2, 0))  # row 0: the last epoch
        self.register_buffer("n_epochs", torch.zeros((), dtype=torch.long))
        self.register_buffer("task_weights", torch.ones(0))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.task_weights.device
        self.loss_history = torch.zeros(2, len(tasks), device=dev)
        self.n_epochs = torch.zeros((), dtype=torch.long, device=dev)
        self.task_weights = self.base_weights.to(self.task_weights)

    def epoch_end(self, train_losses: Tensor) -> None:
        if not self.task_names:
            raise RuntimeError("DWA.setup(tasks) must be called before epoch_end().")
        last = torch.as_tensor(train_losses).detach().to("cpu", F64).reshape(-1)
        if last.shape != (self.n_tasks,):
            raise ValueError(f"train_losses must have {self.n_tasks} values, one per task, "
                             f"got shape {tuple(last.shape)}.")
        prev = self.loss_history[0].detach().to("cpu", F64)
        n = int(self.n_epochs) + 1
        if n >= 2:
            ok = torch.isfinite(last) & torch.isfinite(prev) & (prev > 0)
            ratio = torch.where(ok, last / torch.where(ok, prev, 1.0), torch.ones_like(last))
            w = weighted_softmax(ratio / self.temperature, self._base())
        else:
            w = self._base()
        self.loss_history.copy_(torch.stack([last, prev]))
        self.n_epochs.fill_(n)
        self.task_weights.copy_(w)

    def _loss_weights(self, losses: Tensor) -> Tensor:
        return self.task_weights.to(losses)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature!r}"
