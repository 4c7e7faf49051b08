r"""Fair resource allocation of gradients, FairGrad (Ban & Ji, 2024).

The update :math:`G^\top w` with :math:`w > 0` solving :math:`G G^\top w = w^{-1/\alpha}`
(elementwise power): the :math:`\alpha`-fair allocation of the improvements
:math:`g_t \cdot d` (:math:`\alpha = 1` proportional fairness, Nash-MTL's weights).
:func:`~regmtl.deep.weighting.fairgrad_weights` gives them, :class:`~regmtl.deep.FairGrad` is
the weighting.

Ban & Ji (2024). Fair resource allocation in multi-task learning. ICML.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, check_number
from .gram import GramWeighting, as_gram, is_stationary
from .mgda import min_norm

__all__ = ["FairGrad", "fairgrad_weights"]

Tensor = torch.Tensor


def _objective(A: np.ndarray, w: np.ndarray, alpha: float) -> float:
    """w.A.w / 2 - sum u(w), u' = w^(-1/alpha): convex, minimized where A w = w^(-1/alpha)."""
    if alpha == 1.0:
        u = np.log(w)
    else:
        e = 1.0 - 1.0 / alpha
        u = w ** e / e
    return 0.5 * float(w @ A @ w) - float(u.sum())


def _residual(A: np.ndarray, w: np.ndarray, alpha: float) -> float:
    """max_t |(A w)_t - w_t^(-1/alpha)| / w_t^(-1/alpha): 0 at the solution."""
    target = w ** (-1.0 / alpha)
    return float(np.max(np.abs(A @ w - target) / target))


def _fairgrad(A: np.ndarray, alpha: float) -> np.ndarray:
    """w > 0 with ``A w = w^(-1/alpha)`` (damped Newton); zeros at a stationary point."""
    T = A.shape[0]
    s = float(np.max(np.diag(A)))
    if not s > 0:
        return np.zeros(T)
    An = A / s
    p = min_norm(An)
    if is_stationary(An, p):  # 0 in the hull: no solution (the weights diverge)
        return np.zeros(T)
    w = np.ones(T)
    f = _objective(An, w, alpha)
    for _ in range(200):
        target = w ** (-1.0 / alpha)
        grad = An @ w - target
        res = float(np.max(np.abs(grad) / target))  # (_residual at w)
        if res < 1e-13:
            break
        H = An + np.diag(target / (alpha * w))
        step = np.linalg.solve(H, grad)
        if float(grad @ step) <= 1e-30 * max(1.0, abs(f)):
            break
        t = 1.0
        neg = step > 0
        if neg.any():  # stay inside w > 0
            t = min(1.0, 0.99 * float(np.min(w[neg] / step[neg])))
        for _ in range(60):
            cand = w - t * step
            fc = _objective(An, cand, alpha)
            # Armijo on the objective, or (near the solution, where the decrease falls
            # below the rounding of f's log terms) a halved residual
            if (fc <= f - 1e-4 * t * float(grad @ step)
                    or _residual(An, cand, alpha) <= 0.5 * res):
                break
            t *= 0.5
        w, f = cand, fc
    # A = s An: w_A = s^(-alpha / (alpha + 1)) w_An
    return w * s ** (-alpha / (alpha + 1.0))


def fairgrad_weights(gram: Any, alpha: float = 1.0) -> Tensor:
    r"""FairGrad's weights: :math:`w > 0` with :math:`G G^\top w = w^{-1/\alpha}`.

    The update :math:`d = G^\top w` gives each task the improvement
    :math:`g_t \cdot d = (A w)_t = w_t^{-1/\alpha}`: the maximizer of
    :math:`\sum_t u_\alpha(g_t \cdot d)` over the ball, :math:`u_\alpha` the
    :math:`\alpha`-fair utility (:math:`\log` for :math:`\alpha = 1`, Nash-MTL's bargaining;
    max-min fairness as :math:`\alpha \to \infty`). The weights minimize the strictly convex
    :math:`\tfrac12 w^\top A w - \sum_t v(w_t)` over :math:`w > 0`, with
    :math:`v'(w) = w^{-1/\alpha}` (:math:`v = \log` for :math:`\alpha = 1`), solved on
    :math:`A / \max_t A_{tt}` by damped Newton to machine precision (then rescaled: the
    solution for :math:`sA` is :math:`s^{-\alpha/(\alpha+1)}` times that for :math:`A`).
    Every task improves (:math:`G d > 0`).

    **Degenerate gradients.** The solution exists exactly when 0 is not in the convex hull of
    the gradients; at a Pareto-stationary point (the min-norm point :math:`\alpha^\top G` of
    the hull with :math:`\|\alpha^\top G\|^2 \le` ``STATIONARY``
    :math:`(\sum_t \alpha_t \|g_t\|)^2`: ``gram.is_stationary``) the weights would diverge
    and all are 0 (update 0).
    Dependent gradients otherwise have a unique solution; a zero gradient cannot be served
    (its equation :math:`0 = w_t^{-1/\alpha}` has none): the weighting leaves it out.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    alpha : float, default=1.0
        Fairness :math:`\alpha > 0`.

    Returns
    -------
    Tensor of shape (T,)
        The weights w (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix or ``alpha`` is not positive.

    See Also
    --------
    regmtl.deep.FairGrad : The weighting that applies it at every step.

    References
    ----------
    Ban & Ji (2024). Fair resource allocation in multi-task learning. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import fairgrad_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> w = fairgrad_weights(G @ G.T, alpha=1.0)  # w_t^2 |g_t|^2 = 1
    >>> [round(v, 6) for v in w.tolist()]
    [1.0, 0.5]
    """
    alpha = check_number("alpha", alpha, strict=True)
    A = as_gram(gram)
    return torch.as_tensor(_fairgrad(A, alpha), dtype=F64)


class FairGrad(GramWeighting):
    r"""Fair resource allocation of gradients, FairGrad (Ban & Ji, 2024).

    The shared update is :math:`d = \sum_t w_t b_t g_t` with :math:`w > 0` solving
    :math:`(\tilde G \tilde G^\top w)_t = w_t^{-1/\alpha}`, :math:`\tilde g_t = b_t g_t`
    (:func:`~regmtl.deep.weighting.fairgrad_weights`): the improvements
    :math:`\tilde g_t \cdot d` are the :math:`\alpha`-fair allocation, every task improves.
    ``alpha = 1`` is proportional fairness (the weights of Nash-MTL); larger values move
    toward max-min fairness. The returned weights are :math:`b_t w_t` (no fixed sum). Scaling
    every gradient by :math:`c > 0` scales :math:`A` by :math:`c^2`, the weights by
    :math:`c^{-2\alpha/(\alpha+1)}` and the update :math:`d = G^\top w` by
    :math:`c \cdot c^{-2\alpha/(\alpha+1)}`:

    .. math::

        \|d\| \propto \|g\|^{(1-\alpha)/(1+\alpha)},

    so the step is not linear in the gradients' scale: at ``alpha = 1`` it does not depend on
    it at all (the update for :math:`10 L` is the update for :math:`L`, as for Nash-MTL),
    below 1 it grows more slowly than the gradients, above 1 it grows as they shrink. Choose
    the learning rate for the update's length, not the gradients'. The heads get the gradient
    of :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    alpha : float, default=1.0
        Fairness :math:`\alpha > 0`.
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (no paper's
        variant; a cheaper approximation: the promises above then hold for the
        representation's gradients, not in general for the parameters'; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters; a hard-sharing net only.

    Notes
    -----
    **Degenerate gradients.** At a Pareto-stationary point the system has no solution (the
    weights diverge): all weights are 0 and the update 0. Dependent gradients otherwise have
    a unique solution; a zero gradient (no label in the batch) takes no part (weight 0). The
    update does not depend on the order of the tasks. Under mixed precision the weights are
    computed from the unscaled Gram matrix.

    **Differences from the paper.** The paper and LibMTL (default ``alpha`` = 1, as here)
    solve the nonlinear system with SciPy's ``least_squares`` from a fixed start, without a
    statement at stationary points; regmtl minimizes its convex potential by damped Newton
    to machine precision and returns 0 where no solution exists. The base weights scale the
    gradients, so by the scaling law above a task's share of the update moves as
    :math:`b_t^{(1-\alpha)/(1+\alpha)}` (exactly so for orthogonal gradients): with the
    default ``alpha=1`` (as for Nash-MTL's scale invariance) they have no effect on the shared
    update.

    References
    ----------
    Ban & Ji (2024). Fair resource allocation in multi-task learning. ICML.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import FairGrad, TaskSpec
    >>> weighting = FairGrad(alpha=1.0)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # (1, 0), (0, 2)
    >>> [round(w, 6) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.0, 0.5]
    >>> [round(g, 6) for g in theta.grad.tolist()]
    [1.0, 1.0]
    """

    #: The name users pass (``weighting="fairgrad"``) and saved models carry.
    name = "fairgrad"

    def __init__(self, alpha: float = 1.0, on_representation: bool = False) -> None:
        super().__init__(on_representation=on_representation)
        self.alpha = check_number("alpha", alpha, strict=True)

    def _solve(self, A, b, idx, losses, reduce):
        return b * _fairgrad(A * np.outer(b, b), self.alpha)

    def extra_repr(self) -> str:
        route = ", on_representation=True" if self.on_representation else ""
        return f"alpha={self.alpha!r}{route}"
