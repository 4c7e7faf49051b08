r"""Nash-MTL: multi-task learning as a bargaining game (Navon et al., 2022).

The update :math:`\sum_t \alpha_t g_t` is the Nash bargaining solution,
:math:`\alpha_t (A \alpha)_t = b_t` with :math:`\alpha > 0`, found by damped Newton steps on
a strictly convex function. :func:`~regmtl.deep.conflict.nash_weights` gives :math:`\alpha`,
:class:`~regmtl.deep.NashMTL` is the weighting.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning as a
bargaining game. ICML.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64
from .gram import STATIONARY, GramWeighting, as_gram, as_weights
from .mgda import min_norm

__all__ = ["NashMTL", "nash_weights"]

Tensor = torch.Tensor


def _nash(A: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """alpha > 0 with ``alpha * (A alpha) = b``; None when the tasks are Pareto-stationary.

    Damped Newton on the strictly convex ``f(a) = a.C.a / 2 - sum_t b_t log a_t`` in the
    variables ``a = sqrt(diag A) * alpha`` (C the cosine matrix), whose stationary point is the
    solution; f is bounded below exactly when 0 is not in the convex hull of the gradients.
    """
    T = A.shape[0]
    norms = np.sqrt(np.diag(A))
    C = A / np.outer(norms, norms)
    np.fill_diagonal(C, 1.0)
    w = min_norm(C)
    if float(w @ C @ w) <= STATIONARY:
        return None

    def f(a: np.ndarray) -> float:
        return float(0.5 * a @ C @ a - b @ np.log(a))

    a = np.sqrt(b)  # the solution when the gradients are orthogonal
    for _ in range(200):
        Ca = C @ a
        if np.max(np.abs(a * Ca - b)) <= 1e-15 * T * float(b.max()):
            break
        grad = Ca - b / a
        step = -np.linalg.solve(C + np.diag(b / a**2), grad)
        shrink = step < 0
        tau = min(1.0, 0.99 * float(np.min(a[shrink] / -step[shrink]))) if shrink.any() else 1.0
        decrement = -float(grad @ step)  # the squared Newton decrement
        if decrement > 1e-10 * float(b.sum()):  # far from the solution: backtrack on f
            f0 = f(a)
            while f(a + tau * step) > f0 - 1e-4 * tau * decrement and tau > 1e-12:
                tau *= 0.5
        a = a + tau * step
    return a / norms


def nash_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""Nash-MTL's weights: the Nash bargaining solution of the tasks.

    The update :math:`d = \sum_t \alpha_t g_t` maximizes :math:`\sum_t b_t \log(d \cdot g_t)`
    over a ball; its weights solve

    .. math::

        \alpha_t\, (A \alpha)_t = b_t, \quad \alpha_t > 0,
        \qquad\text{i.e.}\qquad d \cdot g_t = b_t / \alpha_t ,

    (``b = 1``: the paper's :math:`G G^\top \alpha = 1 / \alpha`). :math:`\alpha` is the
    minimizer of the strictly convex :math:`\frac12 \alpha^\top A \alpha - \sum_t b_t \log
    \alpha_t`, found by damped Newton steps (the paper solves a sequence of convex programs
    with cvxpy). Scaling :math:`g_t` by k divides :math:`\alpha_t` by k: every task's
    contribution :math:`\alpha_t g_t` is unchanged. The solution exists exactly when 0 is not
    in the convex hull of the gradients (linearly dependent gradients are fine otherwise);
    at a Pareto-stationary point this returns zeros.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top` with a positive diagonal (no zero gradient).
    weights : array-like of shape (T,), optional
        The bargaining weights :math:`b` (> 0); ones by default.

    Returns
    -------
    Tensor of shape (T,)
        :math:`\alpha` (float64), zeros at a Pareto-stationary point.

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix with a positive diagonal, or ``weights``
        are not positive.

    See Also
    --------
    regmtl.deep.NashMTL : The weighting that applies it at every step.

    References
    ----------
    Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning
    as a bargaining game. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import nash_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> alpha = nash_weights(G @ G.T)
    >>> alpha.tolist()  # orthogonal gradients: alpha_t = 1 / |g_t|
    [1.0, 0.5]
    >>> (alpha @ G).tolist()  # each task contributes a unit vector
    [1.0, 1.0]
    """
    A = as_gram(gram)
    b = as_weights(weights, A.shape[0])
    if np.any(np.diag(A) <= 0) or np.any(b <= 0):
        raise ValueError("nash_weights needs nonzero gradients (a positive diagonal of gram) "
                         "and positive weights.")
    if A.shape[0] == 1:
        return torch.as_tensor(np.sqrt(b / np.diag(A)), dtype=F64)
    alpha = _nash(A, b)
    return torch.as_tensor(np.zeros(A.shape[0]) if alpha is None else alpha, dtype=F64)


class NashMTL(GramWeighting):
    r"""Multi-task learning as a bargaining game (Navon et al., 2022).

    The shared update :math:`d = \sum_t \alpha_t g_t` is the Nash bargaining solution: it
    maximizes :math:`\sum_t b_t \log(d \cdot g_t)` in a ball, i.e.

    .. math::

        \alpha_t\, (G G^\top \alpha)_t = b_t, \quad \alpha_t > 0

    (:func:`~regmtl.deep.conflict.nash_weights`, damped Newton on a strictly convex function;
    unit base weights give the paper's :math:`G G^\top \alpha = 1/\alpha`). It is invariant to
    the scale of each task's gradient: scaling :math:`g_t` by k divides :math:`\alpha_t` by k,
    so every contribution :math:`\alpha_t g_t` and the update stay the same, and the update's
    length does not grow with the losses. With base weights :math:`b` it is the asymmetric
    bargaining solution: :math:`d \cdot g_t = b_t / \alpha_t`, task t's share of the progress
    grows with :math:`b_t`. Linearly dependent gradients are fine; when 0 is in the convex hull
    of the gradients (Pareto stationarity) no bargaining solution exists and the shared update
    is zero. The returned weights are :math:`\alpha`: they keep no sum (they scale like
    :math:`1 / \|g_t\|`; positive for the tasks taking part, all 0 at a Pareto-stationary
    point). The heads get the gradient of :math:`\sum_t b_t L_t`; with a single task the
    update is the plain gradient. The paper's extras (solving every few steps, clipping the
    update norm) are left to the trainer (``grad_clip``).

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (a cheaper
        approximation of the bargaining on the parameters, no paper's variant; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters.

    Notes
    -----
    **Degenerate gradients.** All weights 0 (update 0) at a Pareto-stationary point, decided
    by the min-norm point of the hull of the normalized gradients (squared norm below
    ``STATIONARY`` = 1e-12); dependent gradients have a unique bargaining solution on the
    span and need nothing special; a zero gradient (no label in the batch) takes no part
    (weight 0). The result does not depend on the order of the tasks.

    **Differences from the paper.** The paper solves the bargaining problem approximately with
    a sequence of convex programs (cvxpy, 20 iterations, every few steps) and clips the
    update; LibMTL and the authors' code do the same. regmtl solves
    :math:`\alpha \odot A\alpha = b` to machine precision by damped Newton every step and
    leaves the clipping to ``grad_clip``.

    References
    ----------
    Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya (2022). Multi-task learning
    as a bargaining game. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import NashMTL, TaskSpec
    >>> weighting = NashMTL()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> weighting.backward(losses, [theta], []).tolist()  # alpha_t = 1 / |g_t|
    [1.0, 0.5]
    >>> theta.grad.tolist()
    [1.0, 1.0]
    """

    #: The name users pass (``weighting="nash_mtl"``) and saved models carry.
    name = "nash_mtl"

    def _solve(self, A, b, idx, losses, reduce):
        alpha = _nash(A, b)
        return np.zeros(len(b)) if alpha is None else alpha
