r"""Unconflicting projection of gradients, UPGrad (Quinton & Rey, 2024).

Each task gradient is projected on the dual cone :math:`\{x : G x \ge 0\}` (a non-negative
quadratic program in T variables on the Gram matrix) and the update is
:math:`\sum_t b_t \pi(g_t)`. :func:`~regmtl.deep.conflict.upgrad_weights` gives its coefficients,
:class:`~regmtl.deep.UPGrad` is the weighting.

Quinton & Rey (2024). Jacobian descent for multi-objective optimization. arXiv:2406.16232.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64
from .gram import GramWeighting, as_gram, as_weights, nonneg_qp

__all__ = ["UPGrad", "upgrad_weights"]

Tensor = torch.Tensor


def _upgrad(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coefficients of ``sum_i w_i pi(g_i)``, pi the projection on {x : G x >= 0}."""
    T = A.shape[0]
    tol = 1e-14 * T * max(float(np.max(np.diag(A))), np.finfo(np.float64).tiny)
    coeffs = np.zeros(T)
    for i in np.flatnonzero(w > 0):
        # pi(g_i) = g_i + G^T lam, lam = argmin_{lam >= 0} lam.A.lam / 2 + lam.(A e_i)
        lam = nonneg_qp(A, -A[:, i], tol)
        lam[i] += 1.0
        coeffs += w[i] * lam
    return coeffs


def upgrad_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""UPGrad's weights: the average of the projections of the gradients on their dual cone.

    Each gradient :math:`g_i` is projected on the cone :math:`\{x : G x \ge 0\}` of the
    updates that conflict with no task,

    .. math::

        \pi(g_i) = \operatorname*{arg\,min}_{x:\ G x \ge 0} \|x - g_i\|_2^2
        = g_i + G^\top \lambda^{(i)}, \qquad
        \lambda^{(i)} = \operatorname*{arg\,min}_{\lambda \ge 0}
        \tfrac12 \lambda^\top A \lambda + \lambda^\top A e_i

    (the dual, a non-negative quadratic program in T variables on the Gram matrix), and the
    update is :math:`\sum_i w_i \pi(g_i) = c^\top G` with :math:`w` the weights normalized to
    sum 1 (the mean by default). It conflicts with no task (:math:`G\, G^\top c \ge 0`), is
    linear in positive scalings of the rows, and is the weighted mean of the gradients when no
    two of them conflict.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    weights : array-like of shape (T,), optional
        Preferences :math:`w` (>= 0, not all 0), normalized to sum 1; uniform by default.

    Returns
    -------
    Tensor of shape (T,)
        The coefficients c of the update on the gradients (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix or the weights are invalid.

    See Also
    --------
    regmtl.deep.UPGrad : The weighting that applies it at every step.

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import upgrad_weights
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)  # they conflict
    >>> c = upgrad_weights(G @ G.T)
    >>> c.tolist()
    [1.0, 0.75]
    >>> (G @ (c @ G)).tolist()  # no task is made worse
    [0.25, 0.5]
    """
    A = as_gram(gram)
    w = as_weights(weights, A.shape[0])
    if not w.sum() > 0:
        raise ValueError("weights must not all be 0.")
    return torch.as_tensor(_upgrad(A, w / w.sum()), dtype=F64)


class UPGrad(GramWeighting):
    r"""Unconflicting projection of gradients, UPGrad (Quinton & Rey, 2024).

    Each task gradient is projected on the dual cone of the gradients, the updates that
    conflict with no task (:func:`~regmtl.deep.conflict.upgrad_weights`),

    .. math::

        \pi(g_t) = \operatorname*{arg\,min}_{x:\ G x \ge 0} \|x - g_t\|_2^2 ,

    and the shared update is :math:`\sum_t b_t \pi(g_t)`: the paper's average with
    preferences :math:`b / \sum_t b_t`, times :math:`\sum_t b_t`. Each projection is a
    non-negative quadratic program in T variables on the Gram matrix, solved exactly. The
    update conflicts with no task (:math:`G d \ge 0`), is linear in positive scalings of the
    task gradients, and equals equal weighting's :math:`\sum_t b_t g_t` when no two gradients
    conflict. The returned weights keep no sum: a projection only adds non-negative multiples
    of the gradients, so each is at least :math:`b_t` (exactly :math:`b_t` when nothing
    conflicts). The heads get the gradient of :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (no paper's
        variant; the update then conflicts with no task's representation gradient, which
        does not carry over to the parameters' gradients; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters.

    Notes
    -----
    **Degenerate gradients.** The update never conflicts with a task; at a Pareto-stationary
    point where no nonzero update harms none (e.g. two opposite gradients) it is 0, while the
    returned weights stay at least :math:`b_t` (they are the coefficients of the projections,
    which cancel). Dependent gradients need nothing special (each projection is the exact
    QP's, unique in the span); a zero gradient (no label in the batch) takes no part (weight 0).
    The result does not depend on the order of the tasks.

    **Differences from the paper.** TorchJD solves the projections' dual QPs with a generic
    solver after adding a small ridge (``reg_eps`` = 1e-4) to the Gram matrix; regmtl solves
    them exactly (an active-set QP), and multiplies the paper's average by
    :math:`\sum_t b_t`.

    References
    ----------
    Quinton & Rey (2024). Jacobian descent for multi-objective optimization.
    arXiv:2406.16232.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import TaskSpec, UPGrad
    >>> weighting = UPGrad()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], theta[1] - theta[0]])  # gradients (1, 0), (-1, 1)
    >>> weighting.backward(losses, [theta], []).tolist()
    [2.0, 1.5]
    >>> theta.grad.tolist()  # (1, 1) + (0, 1/2): no task gets worse
    [0.5, 1.5]
    """

    #: The name users pass (``weighting="upgrad"``) and saved models carry.
    name = "upgrad"

    def _solve(self, A, b, idx, losses, reduce):
        return _upgrad(A, b)
