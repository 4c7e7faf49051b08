r"""Conflict-free inverse gradients, ConFIG (Liu, Chen & Thuerey, 2024).

The direction has equal projections on every unit task gradient, :math:`U^{+} \mathbf 1`
(:math:`U` the rows :math:`g_t / \|g_t\|`), and its length is the sum of the projections of
the gradients on it. :func:`~regmtl.deep.weighting.config_weights` gives its coefficients,
:class:`~regmtl.deep.ConFIG` is the weighting.

Liu, Chen & Thuerey (2024). ConFIG: towards conflict-free training of physics informed neural
networks. arXiv:2408.11104 (ICLR 2025).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._torch import torch
from .base import F64
from .gram import GramWeighting, as_gram, as_weights, nonneg_qp

__all__ = ["ConFIG", "config_weights"]

Tensor = torch.Tensor

#: Relative size below which an eigenvalue of the cosine matrix counts as zero.
_RCOND = 1e-10
#: A unit projection below this counts as zero (no direction; conflict).
_FLOOR = 1e-9


def _config(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Coefficients of ConFIG's update ``c @ G`` from ``A = G G^T`` (rows all nonzero)."""
    T = A.shape[0]
    n = np.sqrt(np.maximum(np.diag(A), 0.0))
    C = A / np.outer(n, n)  # cosines: U U^T
    C = 0.5 * (C + C.T)
    lam, V = np.linalg.eigh(C)
    keep = lam > _RCOND * max(float(lam.max()), 0.0) * T
    Vk = V[:, keep]
    ones = np.ones(T)
    p = Vk @ (Vk.T @ ones)  # U U^+ 1: the unit projections of g_u = U^+ 1
    if not keep.any() or p.max() <= _FLOOR:
        return np.zeros(T)  # g_u = 0 (two opposite gradients): stay
    k = (Vk @ ((Vk.T @ ones) / lam[keep])) / n  # g_u = U^+ 1 = G^T k
    if p.min() < -_FLOOR:  # least squares harms a task: its projection on {x : G x >= 0}
        # = {x : U x >= 0}, solved on the unit rows (scale-free): U^T (v + mu), v = D k
        v = n * k
        mu = nonneg_qp(C, -(C @ v), 1e-14 * T * float(np.abs(v).max()))
        k = (v + mu) / n
    norm2 = float(k @ A @ k)
    size = float(np.abs(k) @ n)
    if not norm2 > (1e-7 * size) ** 2:  # 0 up to rounding
        return np.zeros(T)
    length = float(b @ (A @ k))  # sum_t b_t g_t . g_u
    return max(length, 0.0) / norm2 * k


def config_weights(gram: Any, weights: Any = None) -> Tensor:
    r"""ConFIG's weights: the update with equal unit projections, of the summed length.

    With :math:`U` the unit gradients :math:`u_t = g_t / \|g_t\|` and :math:`w` the weights
    (ones by default),

    .. math::

        g_u = U^{+} \mathbf 1, \qquad
        d = \Bigl(\sum_t w_t\, g_t \cdot \frac{g_u}{\|g_u\|}\Bigr) \frac{g_u}{\|g_u\|}
        = G^\top c ,

    computed on the Gram matrix: :math:`U^{+}\mathbf 1 = G^\top D^{-1} K^{+} \mathbf 1` with
    :math:`K` the cosine matrix and :math:`D` the norms (eigenvalues of :math:`K` below
    1e-10 T times the largest count as 0). Where the unit gradients are independent,
    :math:`u_t \cdot d` is the same positive number for every task: no task is harmed.
    Where they are dependent (more tasks than the rank, or a Pareto-stationary point) and
    :math:`\mathbf 1` is not in the range of :math:`U`, the pseudo-inverse gives the
    least-squares direction, which can harm a task; it is then replaced by its projection on
    the dual cone :math:`\{x : G x \ge 0\}` (a non-negative QP, as DualProj), and the length
    rule applied to that direction. Where the direction is 0 up to rounding
    (:math:`\|g_u\| \le 10^{-7} \sum_t |k_t| \|g_t\|`, :math:`g_u = G^\top k`: two
    opposite gradients, or a cone :math:`\{0\}`) the coefficients are all 0. So
    :math:`G d \ge 0` always, and :math:`d` is linear in a common scaling of the gradients.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`, with a positive diagonal (no zero gradient).
    weights : array-like of shape (T,), optional
        :math:`w` (>= 0) weighting the length; ones by default (the paper's).

    Returns
    -------
    Tensor of shape (T,)
        The coefficients c of the update on the gradients (float64).

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix, has a zero gradient, or the weights are
        invalid.

    See Also
    --------
    regmtl.deep.ConFIG : The weighting that applies it at every step.

    References
    ----------
    Liu, Chen & Thuerey (2024). ConFIG: towards conflict-free training of physics informed
    neural networks. arXiv:2408.11104.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.weighting import config_weights
    >>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> d = config_weights(G @ G.T) @ G
    >>> [round(v, 4) for v in (G @ d / G.norm(dim=1)).tolist()]  # equal unit projections
    [0.3536, 0.3536]
    """
    A = as_gram(gram)
    w = as_weights(weights, A.shape[0])
    if not np.all(np.diag(A) > 0):
        raise ValueError("gram must have a positive diagonal: ConFIG needs nonzero gradients.")
    return torch.as_tensor(_config(A, w), dtype=F64)


class ConFIG(GramWeighting):
    r"""Conflict-free inverse gradients, ConFIG (Liu, Chen & Thuerey, 2024).

    The shared update is the direction :math:`g_u = U^{+}\mathbf 1` whose projections on the
    unit task gradients :math:`u_t = g_t / \|g_t\|` are all equal, scaled to the summed
    projection of the gradients on it
    (:func:`~regmtl.deep.weighting.config_weights`):

    .. math::

        d = \Bigl(\sum_t b_t\, g_t \cdot \hat g_u\Bigr) \hat g_u, \qquad
        \hat g_u = \frac{U^{+}\mathbf 1}{\|U^{+}\mathbf 1\|} .

    It conflicts with no task, is linear in a common scaling of the gradients, and is equal
    weighting's :math:`\sum_t b_t g_t` for T equal gradients or orthogonal ones of equal
    norm. The returned weights are its coefficients on the gradients (no fixed sum). The heads
    get the gradient of :math:`\sum_t b_t L_t`.

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
    **Degenerate gradients.** At a Pareto-stationary point (and wherever the unit gradients
    are dependent) the pseudo-inverse direction may harm a task; it is then projected on the
    dual cone :math:`\{x : G x \ge 0\}` first. The update is 0 where that direction vanishes
    (two opposite gradients, three gradients positively spanning the plane), otherwise it
    harms no task (:math:`g = (1, 0), (-1, 0), (0, 1)` give :math:`(0, 1)`). Duplicated
    gradients count once in the direction and twice in the length. A zero gradient (no label
    in the batch) takes no part (weight 0). The update does not depend on the order of the
    tasks.

    **Differences from the paper.** The paper and its code (``conflictfree``) compute
    :math:`U^{+}` of the (T, d) matrix by a least-squares solver; regmtl works on the T x T
    cosine matrix (same result in exact arithmetic), projects the paper's least-squares
    direction on the dual cone where it would harm a task (dependent unit gradients, where
    the paper gives no guarantee), and weights the
    length by the base weights :math:`b_t` (the paper's sum for unit weights). The paper's
    momentum variant (M-ConFIG) is not offered.

    References
    ----------
    Liu, Chen & Thuerey (2024). ConFIG: towards conflict-free training of physics informed
    neural networks. arXiv:2408.11104 (ICLR 2025).

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import ConFIG, TaskSpec
    >>> weighting = ConFIG()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # orthogonal: (1, 0), (0, 2)
    >>> [round(w, 4) for w in weighting.backward(losses, [theta], []).tolist()]
    [1.5, 0.75]
    >>> [round(g, 4) for g in theta.grad.tolist()]  # along (1, 1), length (1 + 2) / sqrt(2)
    [1.5, 1.5]
    """

    #: The name users pass (``weighting="config"``) and saved models carry.
    name = "config"

    def _solve(self, A, b, idx, losses, reduce):
        return _config(A, b)

    def extra_repr(self) -> str:
        return "on_representation=True" if self.on_representation else ""
