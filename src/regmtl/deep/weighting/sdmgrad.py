r"""Stochastic direction-oriented multi-objective gradient, SDMGrad (Xiao, Ban & Ji, 2023).

MGDA's min-norm problem regularized toward the mean gradient :math:`g_0`:
:math:`w = \arg\min_{w \in \Delta} \tfrac12 \|G^\top w + \lambda g_0\|_2^2`, update
:math:`(G^\top w + \lambda g_0) / (1 + \lambda)`. :func:`~regmtl.deep.weighting.sdmgrad_weights`
gives its coefficients, :class:`~regmtl.deep.SDMGrad` is the weighting.

Xiao, Ban & Ji (2023). Direction-oriented multi-objective learning: simple and provable
stochastic algorithms. NeurIPS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, check_number
from .gram import GramWeighting, as_gram
from .mgda import min_norm

__all__ = ["SDMGrad", "sdmgrad_weights"]

Tensor = torch.Tensor


def _sdmgrad(A: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients ``c`` of ``(G^T w + lam g0) / (1 + lam)``, g0 the mean, w exact."""
    T = A.shape[0]
    e = np.full(T, 1.0 / T)
    Ae = A @ e
    # the rows g_t + lam g0: their hull's min-norm point is G^T w + lam g0 (sum w = 1)
    S = A + lam * (Ae[:, None] + Ae[None, :]) + lam * lam * float(e @ Ae)
    w = min_norm(0.5 * (S + S.T))
    c = (w + lam * e) / (1.0 + lam)
    size = float(np.abs(c) @ np.sqrt(np.maximum(np.diag(A), 0.0)))
    if float(c @ A @ c) <= (1e-7 * size) ** 2:  # 0 up to rounding: exactly 0
        return np.zeros(T)
    return c


def sdmgrad_weights(gram: Any, lam: float = 0.3) -> Tensor:
    r"""SDMGrad's coefficients on one batch: the exact regularized min-norm problem.

    .. math::

        w = \operatorname*{arg\,min}_{w \in \Delta} \tfrac12 \bigl\|G^\top w + \lambda
        g_0\bigr\|_2^2, \qquad d = \frac{G^\top w + \lambda g_0}{1 + \lambda}
        = G^\top c, \quad c = \frac{w + \lambda \mathbf 1 / T}{1 + \lambda},

    :math:`g_0` the mean gradient: :math:`G^\top w + \lambda g_0` is the min-norm point of
    the hull of the :math:`g_t + \lambda g_0`, solved exactly (MGDA's active set). ``lam = 0``
    is MGDA, :math:`\lambda \to \infty` the mean. :math:`d` is linear in a common scaling of
    the gradients and does not depend on their order; it satisfies
    :math:`(g_t + \lambda g_0) \cdot d \ge \|d\|^2 (1 + \lambda)` for every t, but may
    conflict with a task (:math:`g_t \cdot d < 0`) when :math:`\lambda > 0`. At a
    Pareto-stationary point it is 0 only if 0 is in the hull of the shifted rows (two
    opposite gradients: :math:`g_0 = 0`), and then the coefficients are all 0 (an update 0
    up to rounding, :math:`\|d\| \le 10^{-7} \sum_t |c_t| \|g_t\|`, is returned as
    exactly 0); dependent gradients need nothing special.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    lam : float, default=0.3
        Regularization :math:`\lambda \ge 0` toward the mean.

    Returns
    -------
    Tensor of shape (T,)
        The coefficients c (float64, summing to 1).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix or ``lam`` is negative.

    See Also
    --------
    regmtl.deep.SDMGrad : The weighting that applies it at every step.

    References
    ----------
    Xiao, Ban & Ji (2023). Direction-oriented multi-objective learning: simple and provable
    stochastic algorithms. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import sdmgrad_weights
    >>> G = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> [round(v, 4) for v in sdmgrad_weights(G @ G.T, lam=0.0).tolist()]  # MGDA
    [0.8, 0.2]
    >>> [round(v, 4) for v in sdmgrad_weights(G @ G.T, lam=1.0).tolist()]
    [0.75, 0.25]
    """
    lam = check_number("lam", lam)
    return torch.as_tensor(_sdmgrad(as_gram(gram), lam), dtype=F64)


class SDMGrad(GramWeighting):
    r"""Direction-oriented multi-objective gradient, SDMGrad (Xiao, Ban & Ji, 2023).

    The shared update is :math:`T (G^\top w + \lambda g_0) / (1 + \lambda)`, with
    :math:`g_0` the mean of the :math:`b_t g_t` and :math:`w` the exact minimizer over the
    simplex of :math:`\tfrac12 \|\sum_t w_t b_t g_t + \lambda g_0\|^2`
    (:func:`~regmtl.deep.weighting.sdmgrad_weights`): MGDA's direction pulled toward the
    mean. The factor T (tasks taking part) makes equal gradients give equal weighting's
    update. The returned weights are the coefficients on the gradients, summing to
    :math:`\sum_t b_t` for equal base weights. The heads get the gradient of
    :math:`\sum_t b_t L_t`.

    **One batch.** The paper's SDMGrad is stochastic: every step takes one projected
    stochastic-gradient step on :math:`w` from two independent batches (their product
    :math:`G(\xi) G(\xi')^\top` is an unbiased estimate of the Gram matrix) and updates the
    parameters with a third. The trainer gives one batch, so regmtl solves the one-batch
    problem exactly (the limit of the paper's inner iterations on the batch's Gram matrix):
    a deterministic direction, biased as a stochastic estimate of the full-data one.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    lam : float, default=0.3
        Regularization :math:`\lambda \ge 0` toward the mean (LibMTL's default).
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (no paper's
        variant; a cheaper approximation: the promises above then hold for the
        representation's gradients, not in general for the parameters'; see
        :class:`~regmtl.deep.weighting.GramWeighting`): memory T x (batch x width) instead
        of T x shared parameters; a hard-sharing net only.

    Notes
    -----
    **Degenerate gradients.** At a Pareto-stationary point the update is the min-norm point
    of the hull of the :math:`g_t + \lambda g_0` (times :math:`T / (1 + \lambda)`): 0 for two
    opposite gradients, nonzero otherwise (:math:`g = (1, 0), (-1, 0), (0, 1)` give
    :math:`(0, 0.3/1.3)`); it may harm a task. Dependent gradients need nothing special; a zero
    gradient (no label in the batch) takes no part (weight 0). The update does not depend on
    the order of the tasks (the weights may, where the min-norm weights are not unique).

    **Differences from the paper.** Above: one batch instead of three, the inner problem
    solved exactly instead of by LibMTL's 20 momentum-SGD steps per step (warm-started from
    the last step's :math:`w`), and the factor T.

    References
    ----------
    Xiao, Ban & Ji (2023). Direction-oriented multi-objective learning: simple and provable
    stochastic algorithms. NeurIPS.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import SDMGrad, TaskSpec
    >>> weighting = SDMGrad(lam=1.0)
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # (1, 0), (0, 2)
    >>> [round(w, 4) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.5, 0.5]
    """

    #: The name users pass (``weighting="sdmgrad"``) and saved models carry.
    name = "sdmgrad"

    def __init__(self, lam: float = 0.3, on_representation: bool = False) -> None:
        super().__init__(on_representation=on_representation)
        self.lam = check_number("lam", lam)

    def _solve(self, A, b, idx, losses, reduce):
        return len(b) * b * _sdmgrad(A * np.outer(b, b), self.lam)

    def extra_repr(self) -> str:
        route = ", on_representation=True" if self.on_representation else ""
        return f"lam={self.lam!r}{route}"
