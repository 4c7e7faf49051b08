r"""Dual-balancing multi-task learning, DB-MTL (Lin, Ye, Zhang & Kwok, 2023).

Loss-scale balancing: every task's loss is log-transformed, :math:`\log(L_t + \epsilon)`.
Gradient-magnitude balancing: the shared parameters move along the sum of the tracked
(exponential moving average) log-loss gradients, each rescaled to the largest norm.

Lin, Ye, Zhang & Kwok (2023). Dual-balancing for multi-task learning. arXiv:2308.12029.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._torch import torch
from ..tasks import TaskSpec
from .base import (
    F64,
    GradientWeighting,
    accumulate,
    check_number,
    finish_step,
    identity,
    task_gradients,
)
from .gram import ZERO_GRAD, loss_factor
from .helpers import non_finite
from .loss_based import loss_values, positive_losses

__all__ = ["DBMTL", "db_mtl_direction"]

Tensor = torch.Tensor


def db_mtl_direction(H: Tensor) -> tuple[Tensor, Tensor]:
    r"""DB-MTL's gradient-magnitude balancing of the (tracked) gradients ``H``.

    .. math::

        d = \sum_t \alpha_t h_t, \qquad \alpha_t = \frac{\max_s \|h_s\|}{\|h_t\|},

    every row rescaled to the largest norm; a zero row gets :math:`\alpha_t = 0`.

    Parameters
    ----------
    H : Tensor of shape (T, d)
        The rows :math:`h_t` (DB-MTL's tracked gradients of :math:`\log(L_t + \epsilon)`).

    Returns
    -------
    direction : Tensor of shape (d,)
        :math:`d`, in the dtype of ``H``.
    alpha : Tensor of shape (T,)
        :math:`\alpha` (float64, CPU).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import db_mtl_direction
    >>> d, alpha = db_mtl_direction(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
    >>> d.tolist(), alpha.tolist()
    ([3.0, 3.0], [1.0, 3.0])
    """
    if not isinstance(H, torch.Tensor) or H.ndim != 2:
        raise ValueError(f"H must be a (T, d) tensor, got {getattr(H, 'shape', type(H))}.")
    norms = torch.linalg.vector_norm(H.detach().to(F64), dim=1).cpu()
    if not torch.isfinite(norms).all():
        raise ValueError("H must be finite.")
    alpha = torch.zeros(H.shape[0], dtype=F64)
    pos = norms > 0
    if pos.any():
        alpha[pos] = norms.max() / norms[pos]
    return alpha.to(H) @ H, alpha


class TrackedGradients:
    """Mixin of the gradient methods keeping per-task (T, d) state of the shared parameters
    (DB-MTL, MoCo, ExcessMTL), placed before :class:`GradientWeighting` in their bases.

    The state's width d is only known at the first step: the buffers are resized there and
    when a state dict is loaded, so ``state_dict`` round-trips.
    """

    _tracked: tuple[str, ...] = ()

    def _sized(self, name: str, T: int, d: int, like: Tensor) -> Tensor:
        buf = getattr(self, name)
        if buf.shape != (T, d) or buf.device != like.device:
            buf = torch.zeros(T, d, dtype=like.dtype if like.is_floating_point() else F64,
                              device=like.device)
            setattr(self, name, buf)
        return buf

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self._tracked:
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                old = getattr(self, name)
                setattr(self, name, torch.empty_like(value, device=old.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _active(self, G: Tensor) -> Tensor:
        """(T,) bool CPU: base weight > 0 and a non-zero gradient (labels in the batch)."""
        sq = (G.detach().to(F64) ** 2).sum(dim=1).cpu()
        top = float(sq.max()) if sq.numel() else 0.0
        return (self._base() > 0) & (sq > ZERO_GRAD * max(top, 0.0)) & (sq > 0)

    def _nonfinite(self, G: Tensor, losses: Tensor, scale) -> bool:
        """True to skip an overflowing mixed-precision step; raises without loss scaling."""
        bad = ~torch.isfinite(G).all(dim=1).cpu() if G.numel() else torch.zeros(
            self.n_tasks, dtype=torch.bool)
        if not bad.any():
            return False
        if scale is not identity:
            return True
        raise non_finite(type(self).__name__, "gradient", self.task_names, bad.numpy())

    def _step(self, G: Tensor, L: Tensor, active: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(unscaled direction (d,), returned weights (T,), head weights (T,)) of one step."""
        raise NotImplementedError

    def backward(self, losses: Tensor, shared: Sequence[torch.nn.Parameter],
                 specific: Sequence[torch.nn.Parameter], *, extra: Tensor | None = None,
                 scale: Callable[[Tensor], Tensor] | None = None,
                 reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """As :meth:`~regmtl.deep.Weighting.backward`; the shared parameters get the
        method's direction from its tracked gradients (averaged across ranks by ``reduce``)."""
        self._check_losses(losses)
        scale = identity if scale is None else scale
        shared = [p for p in shared if p.requires_grad]
        specific = [p for p in specific if p.requires_grad]
        G = task_gradients(losses, shared, scale)
        if reduce is not None:
            G = reduce(G)
        L = loss_values(losses, self.n_tasks, self.task_names, type(self).__name__, reduce,
                        scale)
        if L is None or self._nonfinite(G, losses, scale):
            # an overflowing mixed-precision step: pass the overflow on, keep the state
            if shared:
                accumulate(shared, G.sum(dim=0))
            weights = heads = self._base().clone()
        else:
            factor = loss_factor(scale, losses)
            Gu = G / factor if factor != 1.0 else G
            direction, weights, heads = self._step(Gu, L, self._active(G))
            if shared:
                accumulate(shared, direction * factor if factor != 1.0 else direction)
        del G
        return finish_step(losses, specific, heads, weights, extra, scale)


class DBMTL(TrackedGradients, GradientWeighting):
    r"""Dual-balancing multi-task learning (DB-MTL, Lin et al., 2023).

    **Loss-scale balancing.** Each task's loss enters as :math:`\log(L_t + \epsilon)`, whose
    gradient is :math:`h_t = g_t / (L_t + \epsilon)`; the heads get the gradient of
    :math:`\sum_t b_t \log(L_t + \epsilon)`.
    **Gradient-magnitude balancing.** The shared parameters' log-loss gradients are tracked by
    an exponential moving average (zero at the start), and the update rescales each to the
    largest norm (:func:`~regmtl.deep.weighting.db_mtl_direction`):

    .. math::

        \hat h_t \leftarrow \beta_k \hat h_t + (1 - \beta_k)\, h_t,\quad
        \beta_k = \beta / k^{\sigma}, \qquad
        d = \sum_t \frac{\max_s \|\hat h_s\|}{\|\hat h_t\|}\, \hat h_t,

    k the step. T backward passes through the trunk per step; memory 2 T times the shared
    parameters (the gradients and their averages). Under data parallelism the gradients and
    the loss values are averaged across ranks first (so :math:`h_t` is the gradient of the
    log of the averaged loss, and every rank keeps the same averages); under mixed precision
    the averages are kept unscaled and the update is scaled for the gradient scaler (a step
    whose gradients overflow leaves the averages alone).

    Parameters
    ----------
    beta : float, default=0.9
        The averaging factor :math:`\beta \in [0, 1)` (0: no averaging). LibMTL's default.
    beta_sigma : float, default=0.0
        The decay :math:`\sigma \ge 0` of :math:`\beta_k = \beta / k^\sigma`. LibMTL's default.
    eps : float, default=1e-8
        :math:`\epsilon > 0` in :math:`\log(L_t + \epsilon)`.

    Attributes
    ----------
    grad_average : Tensor of shape (T, d)
        The tracked gradients :math:`\hat h_t` of the d shared parameters (size 0 before the
        first step).
    n_steps : Tensor
        The steps taken, k.

    Notes
    -----
    **Degenerate gradients.** The direction is a positive combination of the tracked
    log-loss gradients, every one rescaled to the largest norm; it is not a min-norm point:
    at a Pareto-stationary point it is not 0 in general (it is where the rescaled tracked
    gradients cancel, e.g. two opposite gradients at the first step), and dependent
    gradients are rescaled like any others. A task whose gradient is zero in the step (no
    label in the batch, or a zero base weight) takes no part in it (weight 0) and its average
    is left as it is; when every gradient is zero the update is 0. A negative loss raises a
    ValueError naming the task; a non-finite gradient or loss too, except under loss
    scaling, where the overflowing step passes to the gradient scaler, which skips it.

    The returned weights are :math:`\alpha_t`, the coefficients of the tracked gradients
    :math:`\hat h_t` (not of the :math:`g_t`: the update is not a combination of this step's
    gradients).

    **Differences from the paper.** None in the update (the paper's Algorithm 1 and LibMTL:
    averages started at 0 without bias correction, :math:`\alpha_t` to the largest norm).
    LibMTL adds :math:`10^{-8}` to the norms in :math:`\alpha_t`; here a zero tracked
    gradient gets :math:`\alpha_t = 0` instead, and a task without labels in the batch keeps
    its average (LibMTL decays it toward 0). Base weights :math:`b` weight the heads'
    log-losses; a task with :math:`b_t = 0` takes no part (the paper has none).

    References
    ----------
    Lin, Ye, Zhang & Kwok (2023). Dual-balancing for multi-task learning. arXiv:2308.12029.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import DBMTL, TaskSpec
    >>> weighting = DBMTL(beta=0.0)  # no averaging: the rescaled log-loss gradients
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([2 * theta[0], 8 * theta[1]])  # log-gradients (1, 0) and (0, 1)
    >>> [round(x, 6) for x in weighting.backward(losses, [theta], []).tolist()]
    [1.0, 1.0]
    >>> [round(x, 6) for x in theta.grad.tolist()]
    [1.0, 1.0]
    """

    #: The name users pass (``weighting="db_mtl"``) and saved models carry.
    name = "db_mtl"

    _tracked = ("grad_average",)

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.beta = check_number("beta", beta)
        if self.beta >= 1:
            raise ValueError(f"beta must be a finite number in [0, 1), got {beta!r}.")
        self.beta_sigma = check_number("beta_sigma", beta_sigma)
        self.eps = check_number("eps", eps, strict=True)
        self.register_buffer("grad_average", torch.zeros(0, 0))
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.grad_average.device
        self.grad_average = torch.zeros(len(tasks), 0, device=dev)
        self.n_steps = torch.zeros((), dtype=torch.long, device=dev)

    def _step(self, G, L, active):
        positive_losses(L, self.task_names, "DBMTL")
        T, d = G.shape
        avg = self._sized("grad_average", T, d, G)
        k = int(self.n_steps) + 1
        beta_k = self.beta / k ** self.beta_sigma
        inv = torch.where(L > 0, 1.0 / (L + self.eps), torch.zeros_like(L))
        rows = active.to(G.device)
        h = G * (1.0 / (L + self.eps)).to(G).unsqueeze(1)
        avg[rows] = beta_k * avg[rows] + (1.0 - beta_k) * h[rows].to(avg)
        self.n_steps.fill_(k)
        alpha = torch.zeros(T, dtype=F64)
        direction = torch.zeros(d, dtype=G.dtype, device=G.device)
        if active.any():
            direction, alpha_a = db_mtl_direction(avg[rows])
            alpha[active] = alpha_a
            direction = direction.to(G.dtype)
        return direction, alpha, self._base() * inv

    def extra_repr(self) -> str:
        return f"beta={self.beta!r}, beta_sigma={self.beta_sigma!r}, eps={self.eps!r}"
