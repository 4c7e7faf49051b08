r"""Multi-objective gradient correction, MoCo (Fernando et al., 2023).

A stochastic MGDA: each task's gradient is tracked by a moving average :math:`y_t` (the
correction of the stochastic gradients' bias), and the MGDA weights :math:`\lambda` take one
projected gradient step per step on :math:`\frac12 \|Y^\top \lambda\|^2`.

Fernando, Shen, Liu, Chaudhury, Murugesan & Chen (2023). Mitigating gradient bias in
multi-objective learning: a provably convergent approach. ICLR.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from ..tasks import TaskSpec
from .base import F64, GradientWeighting, check_number
from .db_mtl import TrackedGradients

__all__ = ["MoCo", "moco_step", "project_simplex"]

Tensor = torch.Tensor


def project_simplex(v: Any) -> np.ndarray:
    r"""The Euclidean projection of ``v`` onto the simplex :math:`\{x \ge 0, \sum_t x_t = 1\}`.

    Sort-based (Held, Wolfe & Crowder, 1974): :math:`x = \max(v - \tau, 0)` with the
    threshold :math:`\tau` that makes the sum 1: the support is the largest k with
    :math:`u_k > (\sum_{i \le k} u_i - 1) / k` for the sorted values :math:`u_1 \ge u_2 \ge
    \dots`. Where that test loses the 1 against entries of size :math:`10^{16}` or more (no k
    passes), the values are taken relative to the largest, :math:`w_k = u_k - u_1`, and the
    same test reads :math:`\sum_{i \le k} (w_i - w_k) < 1` (k = 1 always passes).

    Parameters
    ----------
    v : array-like of shape (T,)
        A finite vector.

    Returns
    -------
    ndarray of shape (T,)
        The closest point of the simplex to ``v``.

    Examples
    --------
    >>> from regmtl.deep.weighting import project_simplex
    >>> project_simplex([0.5, 0.5, -1.0]).tolist()
    [0.5, 0.5, 0.0]
    >>> project_simplex([2.0, 0.0]).tolist()
    [1.0, 0.0]
    """
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("project_simplex needs a non-empty finite vector.")
    u = np.sort(v)[::-1]
    k = np.arange(1, v.size + 1)
    with np.errstate(invalid="ignore", over="ignore"):  # entries 1e308 apart: -inf, left out
        css = np.cumsum(u) - 1.0
        support = np.flatnonzero(u - css / k > 0)
        if support.size:
            rho = int(support[-1])
            return np.maximum(v - css[rho] / (rho + 1), 0.0)
        # the 1 was lost against entries of 1e16 or more: relative to the largest
        top = u[0]
        w = u - top  # w[0] = 0 >= w[1] >= ...
        cw = np.cumsum(w)
        rho = int(np.flatnonzero(cw - k * w < 1.0)[-1])  # k = 1 always holds: 0 < 1
        return np.maximum((v - top) - (cw[rho] - 1.0) / (rho + 1), 0.0)


def moco_step(Y: Tensor, lam: Any, G: Tensor, *, beta: float, gamma: float,
              rho: float = 0.0) -> tuple[Tensor, np.ndarray, Tensor]:
    r"""One MoCo step: track the gradients, step the weights, return the direction.

    .. math::

        Y \leftarrow Y - \beta (Y - G), \qquad
        \lambda \leftarrow \Pi_\Delta\big(\lambda - \gamma (Y Y^\top + \rho I) \lambda\big),
        \qquad d = Y^\top \lambda,

    with :math:`\Pi_\Delta` the projection onto the simplex (:func:`project_simplex`) and the
    rows of :math:`Y` the tracked gradients.

    Parameters
    ----------
    Y : Tensor of shape (T, d)
        The tracked gradients before the step.
    lam : array-like of shape (T,)
        The weights :math:`\lambda` before the step.
    G : Tensor of shape (T, d)
        The gradients of the step.
    beta, gamma : float
        The step sizes of the tracking (in [0, 1]) and of the weights (>= 0) of this step.
    rho : float, default=0.0
        The regularization :math:`\rho \ge 0` of the weights' step.

    Returns
    -------
    Y : Tensor of shape (T, d)
        The tracked gradients after the step (a new tensor).
    lam : ndarray of shape (T,)
        The weights after the step (on the simplex).
    direction : Tensor of shape (d,)
        :math:`Y^\top \lambda`.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import moco_step
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> Y, lam, d = moco_step(torch.zeros(2, 2, dtype=torch.float64), [0.5, 0.5], G,
    ...                       beta=1.0, gamma=0.1)
    >>> lam.tolist(), d.tolist()
    ([0.575, 0.425], [0.575, 0.85])
    """
    beta = check_number("beta", beta)
    gamma = check_number("gamma", gamma)
    rho = check_number("rho", rho)
    if not (isinstance(Y, torch.Tensor) and isinstance(G, torch.Tensor)) or Y.shape != G.shape \
            or Y.ndim != 2:
        raise ValueError("Y and G must be (T, d) tensors of the same shape.")
    lam = np.asarray(lam, dtype=np.float64).reshape(-1)
    if lam.shape != (Y.shape[0],):
        raise ValueError(f"lam must have {Y.shape[0]} values, got {lam.shape}.")
    Y = Y - beta * (Y - G)
    A = (Y.detach().to(F64) @ Y.detach().to(F64).T).cpu().numpy()
    lam = project_simplex(lam - gamma * (A + rho * np.eye(len(lam))) @ lam)
    return Y, lam, torch.as_tensor(lam, dtype=Y.dtype, device=Y.device) @ Y


class MoCo(TrackedGradients, GradientWeighting):
    r"""Multi-objective gradient correction (MoCo, Fernando et al., 2023): stochastic MGDA.

    Every step (:func:`~regmtl.deep.weighting.moco_step` on the tasks taking part) tracks each
    task's gradient by a
    moving average and takes one projected gradient step on the MGDA weights:

    .. math::

        y_t \leftarrow y_t - \beta_k (y_t - g_t), \qquad
        \lambda \leftarrow \Pi_\Delta\big(\lambda - \gamma_k (Y Y^\top + \rho I) \lambda\big),
        \qquad d = T \sum_t \lambda_t b_t y_t,

    with :math:`\beta_k = \beta / k^{\sigma_\beta}`, :math:`\gamma_k = \gamma /
    k^{\sigma_\gamma}` at step k, :math:`y_t = 0` and :math:`\lambda` uniform at the start,
    and :math:`Y` the rows :math:`b_t y_t` (the hull of the :math:`b_t y_t`, times T as for
    :class:`~regmtl.deep.MGDA`: T equal gradients give the update of equal weighting once
    tracked). As :math:`k` grows the tracked gradients lose the noise of the batches and
    :math:`\lambda` approaches MGDA's min-norm weights. The heads get the gradient of
    :math:`\sum_t b_t L_t`. T backward passes through the trunk per step; memory 2 T times
    the shared parameters. Under data parallelism the gradients are averaged across ranks
    first (every rank keeps the same state); under mixed precision the tracked gradients are
    kept unscaled and the update is scaled for the gradient scaler (an overflowing step
    leaves the state alone).

    Parameters
    ----------
    beta : float, default=0.5
        The tracking step :math:`\beta \in (0, 1]`.
    beta_sigma : float, default=0.5
        Its decay :math:`\sigma_\beta \ge 0`.
    gamma : float, default=0.1
        The step :math:`\gamma \ge 0` of the weights.
    gamma_sigma : float, default=0.5
        Its decay :math:`\sigma_\gamma \ge 0`.
    rho : float, default=0.0
        The regularization :math:`\rho \ge 0` of the weights' step.

    Attributes
    ----------
    tracked : Tensor of shape (T, d)
        The tracked gradients :math:`y_t` (size 0 before the first step).
    lam : Tensor of shape (T,)
        The weights :math:`\lambda` (on the simplex over the tasks of the last step).
    n_steps : Tensor
        The steps taken, k.

    Notes
    -----
    **Degenerate gradients.** One projected gradient step per step, not the min-norm point:
    at a Pareto-stationary point the direction is not 0 in general (it tends to 0 as
    :math:`\lambda` converges to the min-norm weights of the tracked gradients); dependent
    gradients are tracked like any others. A task whose gradient is zero in the step (no
    label in the batch, or a zero base weight) keeps its tracked gradient and takes no part
    in the step (:math:`\lambda_t = 0`, the others projected on their simplex); when every
    gradient is zero the update is 0. A non-finite gradient raises a ValueError naming the
    task, except under loss scaling, where the overflowing step passes to the gradient
    scaler, which skips it. The returned weights are :math:`T \lambda_t b_t`, the
    coefficients of the tracked gradients :math:`y_t` (not of this step's :math:`g_t`).

    **Differences from the paper.** The update is the paper's Algorithm 1 with the simplex
    projection; the paper also projects :math:`y_t` onto a bounded set (for its analysis),
    not done here. LibMTL's code (from the authors) differs: it rescales each gradient to the
    norm of its loss (:math:`g_t L_t / \|g_t\|`) and replaces the projection by a softmax of
    :math:`\lambda - \gamma_k (Y Y^\top + \rho I)\lambda`; its defaults (the ones here) are
    LibMTL's. The update is multiplied by T (:math:`\lambda` sums to 1) so that learning rates
    carry over.

    References
    ----------
    Fernando, Shen, Liu, Chaudhury, Murugesan & Chen (2023). Mitigating gradient bias in
    multi-objective learning: a provably convergent approach. ICLR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MoCo, TaskSpec
    >>> weighting = MoCo(beta=1.0, gamma=0.1)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> weighting.backward(torch.stack([theta[0], 2 * theta[1]]), [theta], []).tolist()
    [1.15, 0.85]
    >>> theta.grad.tolist()
    [1.15, 1.7]
    """

    #: The name users pass (``weighting="moco"``) and saved models carry.
    name = "moco"

    _tracked = ("tracked",)

    def __init__(self, beta: float = 0.5, beta_sigma: float = 0.5, gamma: float = 0.1,
                 gamma_sigma: float = 0.5, rho: float = 0.0) -> None:
        super().__init__()
        self.beta = check_number("beta", beta, strict=True)
        if self.beta > 1:
            raise ValueError(f"beta must be a finite number in (0, 1], got {beta!r}.")
        self.beta_sigma = check_number("beta_sigma", beta_sigma)
        self.gamma = check_number("gamma", gamma)
        self.gamma_sigma = check_number("gamma_sigma", gamma_sigma)
        self.rho = check_number("rho", rho)
        self.register_buffer("tracked", torch.zeros(0, 0))
        self.register_buffer("lam", torch.zeros(0, dtype=F64))
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))

    def _setup(self, tasks: list[TaskSpec]) -> None:
        dev = self.tracked.device
        T = len(tasks)
        self.tracked = torch.zeros(T, 0, device=dev)
        self.lam = torch.full((T,), 1.0 / T, dtype=F64, device=dev)
        self.n_steps = torch.zeros((), dtype=torch.long, device=dev)

    def _step(self, G, L, active):
        T, d = G.shape
        Y = self._sized("tracked", T, d, G)
        k = int(self.n_steps) + 1
        self.n_steps.fill_(k)
        lam = torch.zeros(T, dtype=F64)
        direction = torch.zeros(d, dtype=G.dtype, device=G.device)
        if not active.any():
            self.lam.copy_(lam)
            return direction, lam, self._base()
        rows = active.to(G.device)
        b = self._base()[active]
        bt = b.to(G).unsqueeze(1)
        Yb, lam_a, _ = moco_step(Y[rows].to(G) * bt, self.lam.detach().cpu()[active].numpy(),
                                 G[rows] * bt, beta=self.beta / k ** self.beta_sigma,
                                 gamma=self.gamma / k ** self.gamma_sigma, rho=self.rho)
        Y[rows] = (Yb / bt).to(Y)
        lam[active] = torch.as_tensor(lam_a, dtype=F64)
        self.lam.copy_(lam)
        coeffs = T * lam * self._base()
        direction = (coeffs[active].to(G) @ Y[rows].to(G))
        return direction, coeffs, self._base()

    def extra_repr(self) -> str:
        return (f"beta={self.beta!r}, beta_sigma={self.beta_sigma!r}, gamma={self.gamma!r}, "
                f"gamma_sigma={self.gamma_sigma!r}, rho={self.rho!r}")
