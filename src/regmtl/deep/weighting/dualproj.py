r"""Dual projection of the mean gradient, DualProj (TorchJD; Quinton & Rey, 2024).

The weighted mean gradient is projected on the dual cone :math:`\{x : G x \ge 0\}` of the
task gradients (a non-negative quadratic program in T variables on the Gram matrix).
:func:`~regmtl.deep.weighting.dualproj_weights` gives its coefficients,
:class:`~regmtl.deep.DualProj` is the weighting.

Quinton & Rey (2024). Jacobian descent for multi-objective optimization. arXiv:2406.16232.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64
from .gram import GramWeighting, as_gram, as_weights, nonneg_qp

__all__ = ["DualProj", "dualproj_weights"]

Tensor = torch.Tensor


def _dualproj(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coefficients of the projection of ``G^T w`` on {x : G x >= 0}, from ``A = G G^T``."""
    T = A.shape[0]
    tol = 1e-14 * T * max(float(np.max(np.diag(A))), np.finfo(np.float64).tiny)
    # pi(G^T w) = G^T (w + lam), lam = argmin_{lam >= 0} lam.A.lam / 2 + lam.(A w)
    c = w + nonneg_qp(A, -(A @ w), tol)
    return c if not _cancels(A, c) else np.zeros(T)


def _cancels(A: np.ndarray, c: np.ndarray) -> bool:
    """Whether ``c @ G`` is 0 up to rounding: ``|d| <= 1e-7 sum_t |c_t| |g_t|``."""
    size = float(np.abs(c) @ np.sqrt(np.maximum(np.diag(A), 0.0)))
    return float(c @ A @ c) <= (1e-7 * size) ** 2  # the Gram matrix resolves no less


def dualproj_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""DualProj's weights: the projection of the mean gradient on the dual cone.

    .. math::

        d = \operatorname*{arg\,min}_{x:\ G x \ge 0} \|x - G^\top w\|_2^2
        = G^\top (w + \lambda), \qquad
        \lambda = \operatorname*{arg\,min}_{\lambda \ge 0}
        \tfrac12 \lambda^\top A \lambda + \lambda^\top A w ,

    with :math:`w` the preferences normalized to sum 1 (the mean by default) and
    :math:`A = G G^\top`; the dual is solved exactly (active set). The update conflicts with no
    task (:math:`G d \ge 0`), is linear in a common positive scaling of the gradients, and is
    the mean gradient when it conflicts with none. Where the projection is 0 up to rounding
    (:math:`\|d\| \le 10^{-7} \sum_t |c_t| \|g_t\|`: the cone is :math:`\{0\}` or the
    mean points away from it), the coefficients are all 0, so the update is exactly 0.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    weights : array-like of shape (T,), optional
        Preferences :math:`w` (>= 0, not all 0), normalized to sum 1; uniform by default.

    Returns
    -------
    Tensor of shape (T,)
        The coefficients :math:`w + \lambda` of the update on the gradients (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix or the weights are invalid.

    See Also
    --------
    regmtl.deep.DualProj : The weighting that applies it at every step.

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import dualproj_weights
    >>> G = torch.tensor([[1.0, 0.0], [-2.0, 1.0]], dtype=torch.float64)
    >>> c = dualproj_weights(G @ G.T)
    >>> [round(v, 6) for v in c.tolist()]
    [1.0, 0.5]
    >>> (G @ (c @ G)).tolist()  # the mean (-0.5, 0.5) harmed task 0; d = (0, 0.5) harms none
    [0.0, 0.5]
    """
    A = as_gram(gram)
    w = as_weights(weights, A.shape[0])
    if not w.sum() > 0:
        raise ValueError("weights must not all be 0.")
    return torch.as_tensor(_dualproj(A, w / w.sum()), dtype=F64)


class DualProj(GramWeighting):
    r"""Dual projection of the weighted gradient sum, DualProj (TorchJD's aggregator).

    The shared update is the projection of equal weighting's :math:`\sum_t b_t g_t` on the
    dual cone of the task gradients, the updates that conflict with no task
    (:func:`~regmtl.deep.weighting.dualproj_weights`):

    .. math::

        d = \operatorname*{arg\,min}_{x:\ G x \ge 0} \Bigl\|x - \sum_t b_t g_t\Bigr\|_2^2 ,

    a non-negative quadratic program in T variables on the Gram matrix, solved exactly. The
    update conflicts with no task, is linear in positive scalings of all task gradients
    together, and equals equal weighting's when it conflicts with none. The returned weights
    are :math:`b + \lambda \ge b` (no fixed sum). The heads get the gradient of
    :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (no paper's
        variant; a cheaper approximation: the promises above then hold for the
        representation's gradients, not in general for the parameters'; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters; a hard-sharing net only.

    Notes
    -----
    **Degenerate gradients.** At a Pareto-stationary point the update is the projection of
    :math:`\sum_t b_t g_t` on :math:`\{x : G x \ge 0\}`, which harms no task; it is 0 when
    that sum conflicts with every such direction (two opposite gradients), nonzero otherwise
    (:math:`g = (1, 0), (-1, 0), (0, 1)` give :math:`(0, 1)`); where it is 0 the weights are
    all 0 too (the coefficients of an update that vanishes up to rounding are set to 0, so
    no rounding noise is returned as a direction). Dependent gradients need
    nothing special (the projection is unique); a zero gradient (no label in the batch) takes
    no part (weight 0). The update does not depend on the order of the tasks.

    **Differences from the paper.** DualProj is TorchJD's aggregator (the projection step of
    Quinton & Rey's UPGrad applied to the mean once); TorchJD solves the dual with a generic
    QP solver after adding a ridge (``reg_eps`` = 1e-4) to the Gram matrix and projects the
    mean; regmtl solves it exactly and projects :math:`\sum_t b_t g_t` (the mean times
    :math:`\sum_t b_t`, so learning rates carry over from equal weighting).

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import DualProj, TaskSpec
    >>> weighting = DualProj()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], theta[1] - 2 * theta[0]])  # (1, 0), (-2, 1)
    >>> weighting.backward(losses, [theta], []).tolist()
    [2.0, 1.0]
    >>> theta.grad.tolist()  # (-1, 1) projected: (0, 1)
    [0.0, 1.0]
    """

    #: The name users pass (``weighting="dualproj"``) and saved models carry.
    name = "dualproj"

    def _solve(self, A, b, idx, losses, reduce):
        return _dualproj(A, b)

    def extra_repr(self) -> str:
        return "on_representation=True" if self.on_representation else ""
