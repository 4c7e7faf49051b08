r"""Multi-objective gradient with double sampling, MoDo (Chen, Fernando, Ying & Chen, 2023).

Weights :math:`\lambda` on the simplex follow one projected gradient step per step on
:math:`\tfrac12 \|G^\top \lambda\|^2 + \tfrac\rho2 \|\lambda\|^2`, and the parameters move
along :math:`G^\top \lambda`. :func:`~regmtl.deep.weighting.modo_step` is the step,
:class:`~regmtl.deep.MoDo` the weighting.

Chen, Fernando, Ying & Chen (2023). Three-way trade-off in multi-objective learning:
optimization, generalization and conflict-avoidance. NeurIPS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, check_number
from .gram import GramWeighting, as_gram
from .moco import project_simplex

__all__ = ["MoDo", "modo_step"]

Tensor = torch.Tensor


def _modo(A: np.ndarray, lam: np.ndarray, gamma: float, rho: float) -> np.ndarray:
    return project_simplex(lam - gamma * (A @ lam + rho * lam))


def modo_step(gram: Any, lam: Any, gamma: float = 1e-3, rho: float = 0.1) -> Tensor:
    r"""One MoDo step of the weights: :math:`\Pi_\Delta(\lambda - \gamma (A\lambda +
    \rho\lambda))`.

    With one batch :math:`A = G G^\top` stands for the paper's
    :math:`G(z_1) G(z_2)^\top` of two independent batches. The parameters then move along
    :math:`G^\top \lambda_{+}` (the returned weights). The projection on the simplex is
    exact; the step does not depend on the order of the tasks.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    lam : array-like of shape (T,)
        The current weights (on the simplex).
    gamma : float, default=1e-3
        Step size :math:`\gamma > 0` of the weights.
    rho : float, default=0.1
        Regularization :math:`\rho \ge 0` of the weights.

    Returns
    -------
    Tensor of shape (T,)
        The new weights :math:`\lambda_{+}` (float64, on the simplex).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix, ``lam`` has not T finite entries, or an
        option is out of range.

    See Also
    --------
    regmtl.deep.MoDo : The weighting that applies it at every step.

    References
    ----------
    Chen, Fernando, Ying & Chen (2023). Three-way trade-off in multi-objective learning:
    optimization, generalization and conflict-avoidance. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import modo_step
    >>> A = torch.tensor([[4.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> [round(v, 6) for v in modo_step(A, [0.5, 0.5], gamma=0.1, rho=0.0).tolist()]
    [0.425, 0.575]
    """
    gamma = check_number("gamma", gamma, strict=True)
    rho = check_number("rho", rho)
    A = as_gram(gram)
    v = np.asarray(lam.detach().cpu() if isinstance(lam, torch.Tensor) else lam,
                   dtype=np.float64).reshape(-1)
    if v.shape != (A.shape[0],) or not np.all(np.isfinite(v)):
        raise ValueError(f"lam must be {A.shape[0]} finite numbers, got {lam!r}.")
    return torch.as_tensor(_modo(A, v, gamma, rho), dtype=F64)


class MoDo(GramWeighting):
    r"""Multi-objective gradient with double sampling, MoDo (Chen et al., 2023).

    Weights :math:`\lambda` on the simplex (state, :math:`\mathbf 1/T` at the start) take one
    projected gradient step every step, then the shared parameters move along
    :math:`T \sum_t \lambda_t b_t g_t` (:func:`~regmtl.deep.weighting.modo_step`):

    .. math::

        \lambda \leftarrow \Pi_\Delta\bigl(\lambda - \gamma (\tilde G \tilde G^\top \lambda
        + \rho \lambda)\bigr), \qquad d = T\, \tilde G^\top \lambda,
        \quad \tilde g_t = b_t g_t .

    The factor T makes :math:`\lambda = \mathbf 1 / T` give equal weighting's update. The
    returned weights are :math:`T \lambda_t b_t` (summing to T for unit base weights). The
    heads get the gradient of :math:`\sum_t b_t L_t`.

    **Double sampling with one batch.** The paper estimates
    :math:`\nabla_\lambda \tfrac12 \|G^\top \lambda\|^2` without bias by the product
    :math:`G(z_1) G(z_2)^\top` of two independent batches and updates the parameters with a
    third. The trainer gives one batch, so regmtl uses the batch's Gram matrix for the
    weights' step and its gradients for the update: the weights' step is biased by the
    batch's gradient variance (it is the deterministic MoDo of the paper on the batch).

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    gamma : float, default=1e-3
        Step size :math:`\gamma > 0` of the weights (LibMTL's default). The step depends on
        the gradients' scale, as in the paper.
    rho : float, default=0.1
        Regularization :math:`\rho \ge 0` of the weights (LibMTL's default).
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (no paper's
        variant; a cheaper approximation: the promises above then hold for the
        representation's gradients, not in general for the parameters'; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters; a hard-sharing net only.

    Attributes
    ----------
    lambd : Tensor of shape (T,)
        The weights :math:`\lambda` (float64 buffer, saved in ``state_dict``).

    Notes
    -----
    **Degenerate gradients.** MoDo does not stop at a Pareto-stationary point: the update is
    :math:`T \tilde G^\top \lambda` with the current :math:`\lambda` (0 for two opposite
    gradients of equal norm only once :math:`\lambda` is uniform, as at the start), and it may
    harm a task. Dependent gradients need nothing special. A zero gradient (no label in the
    batch) takes no part (weight 0): the step moves the weights of the tasks taking part
    within their share of the simplex, and the absent task keeps its :math:`\lambda`. The
    step does not depend on the order of the tasks. Under mixed precision the step is taken
    on the unscaled Gram matrix.

    **Differences from the paper.** One batch instead of three (above); the factor T.

    References
    ----------
    Chen, Fernando, Ying & Chen (2023). Three-way trade-off in multi-objective learning:
    optimization, generalization and conflict-avoidance. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import MoDo, TaskSpec
    >>> weighting = MoDo(gamma=0.1, rho=0.0)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([2 * theta[0], theta[1]])  # (2, 0), (0, 1)
    >>> [round(w, 6) for w in weighting.backward(losses, [theta], []).tolist()]
    [0.85, 1.15]
    >>> [round(v, 6) for v in weighting.lambd.tolist()]
    [0.425, 0.575]
    """

    #: The name users pass (``weighting="modo"``) and saved models carry.
    name = "modo"

    lambd: Tensor

    def __init__(self, gamma: float = 1e-3, rho: float = 0.1,
                 on_representation: bool = False) -> None:
        super().__init__(on_representation=on_representation)
        self.gamma = check_number("gamma", gamma, strict=True)
        self.rho = check_number("rho", rho)
        self.register_buffer("lambd", torch.ones(0, dtype=F64))

    def _setup(self, tasks):
        self.lambd = torch.full((len(tasks),), 1.0 / len(tasks), dtype=F64)

    def _solve(self, A, b, idx, losses, reduce):
        lam = self.lambd.detach().to("cpu", F64).numpy().copy()
        mass = float(lam[idx].sum())
        sub = lam[idx] / mass if mass > 0 else np.full(len(idx), 1.0 / len(idx))
        new = _modo(A * np.outer(b, b), sub, self.gamma, self.rho)
        lam[idx] = new * (mass if mass > 0 else 1.0 / max(len(lam), 1) * len(idx))
        self.lambd.copy_(torch.as_tensor(lam, dtype=F64))
        return len(idx) * b * new

    def extra_repr(self) -> str:
        route = ", on_representation=True" if self.on_representation else ""
        return f"gamma={self.gamma!r}, rho={self.rho!r}{route}"
