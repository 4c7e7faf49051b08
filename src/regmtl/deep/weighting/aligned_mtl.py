r"""Aligned-MTL: independent component alignment (Senushkin et al., 2023).

The task gradients are replaced by the rows of :math:`\hat G = B G`, orthogonal with equal
norms: :math:`A = V \Lambda V^\top`, :math:`B = \sigma V_R \Lambda_R^{-1/2} V_R^\top`; the
update is :math:`\sum_t b_t \hat g_t`. :func:`~regmtl.deep.conflict.alignment_matrix` gives B,
:class:`~regmtl.deep.AlignedMTL` is the weighting.

Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
multi-task learning. CVPR.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._torch import torch
from .base import F64, check_number
from .gram import GramWeighting, as_gram

__all__ = ["AlignedMTL", "alignment_matrix"]

Tensor = torch.Tensor


_ALIGN_SCALES = ("min", "median", "rmse")


def _alignment(A: np.ndarray, scale: str, rtol: float) -> np.ndarray:
    """B = sigma V_R L_R^(-1/2) V_R^T from the eigendecomposition of A (rank-R truncation)."""
    lam, V = np.linalg.eigh(A)
    top = float(lam.max()) if lam.size else 0.0
    if not top > 0:
        return np.zeros_like(A)
    keep = lam > rtol * top
    lam, V = lam[keep], V[:, keep]
    sigma2 = {"min": lam.min(), "median": np.median(lam), "rmse": lam.mean()}[scale]
    return math.sqrt(float(sigma2)) * (V / np.sqrt(lam)) @ V.T


def alignment_matrix(gram: Any, scale: str = "min", rtol: float | None = None) -> Tensor:
    r"""Aligned-MTL's T x T matrix B: the rows of :math:`\hat G = B G` are orthogonal, of equal
    norms.

    With the eigendecomposition :math:`A = G G^\top = V \Lambda V^\top` truncated to the R
    eigenvalues above ``rtol`` times the largest,

    .. math::

        B = \sigma\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
        \hat G \hat G^\top = B A B = \sigma^2\, V_R V_R^\top ,

    :math:`\sigma^2 I` (condition number 1) when G has full row rank. :math:`\sigma^2` is the
    smallest kept eigenvalue (``"min"``, the paper's choice), their median (``"median"``) or
    their mean (``"rmse"``). The rows of :math:`\hat G` span the same space as those of G.

    Parameters
    ----------
    gram : Tensor or array-like of shape (T, T)
        :math:`A = G G^\top`.
    scale : {"min", "median", "rmse"}, default="min"
        The eigenvalue that sets :math:`\sigma^2`.
    rtol : float, optional
        Relative tolerance of the rank truncation (>= 0); default T times the float64
        machine epsilon.

    Returns
    -------
    Tensor of shape (T, T)
        B (float64, symmetric); zeros if A is zero.

    Raises
    ------
    ValueError
        If ``gram`` is not a finite square matrix, or an option is invalid.

    See Also
    --------
    regmtl.deep.AlignedMTL : The weighting that applies it at every step.

    References
    ----------
    Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
    multi-task learning. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep.conflict import alignment_matrix
    >>> G = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    >>> B = alignment_matrix(G @ G.T)
    >>> G_hat = B @ G
    >>> [[round(v, 6) for v in row] for row in (G_hat @ G_hat.T).tolist()]  # sigma^2 I
    [[0.381966, 0.0], [0.0, 0.381966]]
    """
    A = as_gram(gram)
    if scale not in _ALIGN_SCALES:
        raise ValueError(f"scale must be one of {list(_ALIGN_SCALES)}, got {scale!r}.")
    rtol = A.shape[0] * np.finfo(np.float64).eps if rtol is None else check_number("rtol", rtol)
    return torch.as_tensor(_alignment(A, scale, rtol), dtype=F64)


class AlignedMTL(GramWeighting):
    r"""Aligned-MTL: independent component alignment (Senushkin et al., 2023).

    The task gradients are replaced by aligned ones, the rows of :math:`\hat G = B G` with

    .. math::

        G G^\top = V \Lambda V^\top, \qquad
        B = \sigma\, V_R \Lambda_R^{-1/2} V_R^\top, \qquad
        \hat G \hat G^\top = \sigma^2 I ,

    orthogonal with equal norms (condition number 1; rank-R truncation of the eigenvalues
    below ``rtol`` times the largest, :func:`~regmtl.deep.conflict.alignment_matrix`), and the
    shared update is :math:`\sum_t b_t \hat g_t` (coefficients :math:`B b` on the original
    gradients, the returned weights: they keep no sum and can be negative). The update makes
    equal progress :math:`b_t \sigma^2` along every aligned gradient and is a descent direction
    of :math:`\sum_t b_t L_t` (:math:`b^\top A B b = \sigma\, b^\top A^{1/2} b \ge 0`); it may
    still conflict with an individual original gradient. Orthogonal gradients of equal norms
    are left as they are (equal weighting). The heads get the gradient of
    :math:`\sum_t b_t L_t`.

    Memory: the (T, d) matrix of per-task gradients of the d shared parameters; T backward
    passes through the trunk.

    Parameters
    ----------
    scale : {"min", "median", "rmse"}, default="min"
        :math:`\sigma^2`: the smallest kept eigenvalue (the paper), their median or mean.
    rtol : float, optional
        Relative tolerance of the rank truncation (>= 0); default T times the machine epsilon
        of the gradients' dtype.
    on_representation : bool, default=False
        Decide from the gradients with respect to the shared representation (the paper's
        Aligned-MTL-UB; see :class:`~regmtl.deep.weighting.GramWeighting`): memory
        T x (batch x width) instead of T x shared parameters.

    Notes
    -----
    **Degenerate gradients.** At a Pareto-stationary point the update is generally not 0: the
    aligned gradients span the same space, and :math:`\sum_t b_t \hat g_t` can harm a task (two
    opposite gradients give 0; three collinear ones with both signs do not). Dependent
    gradients are handled by the rank truncation; a zero gradient (no label in the batch)
    takes no part (weight 0). The result does not depend on the order of the tasks (an
    eigendecomposition of the Gram matrix) to rounding; with gradient norms :math:`10^6` apart
    (a Gram matrix of condition number :math:`10^{12}`) that rounding is about 1e-4 of the
    update.

    **Differences from the paper.** The paper and LibMTL scale by the smallest eigenvalue
    (``scale="min"``, the default here); the median and mean are options. LibMTL truncates
    eigenvalues with a fixed absolute tolerance; here the tolerance is relative (``rtol``).

    References
    ----------
    Senushkin, Patakin, Kuznetsov & Konushin (2023). Independent component alignment for
    multi-task learning. CVPR.

    Examples
    --------
    >>> import torch
    >>> from regmtl.deep import AlignedMTL, TaskSpec
    >>> weighting = AlignedMTL()
    >>> weighting.setup([TaskSpec("a"), TaskSpec("b")])
    >>> theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> losses = torch.stack([theta[0], 2 * theta[1]])  # gradients (1, 0) and (0, 2)
    >>> weighting.backward(losses, [theta], []).tolist()  # B = diag(1, 1/2)
    [1.0, 0.5]
    >>> theta.grad.tolist()  # the aligned gradients (1, 0) and (0, 1)
    [1.0, 1.0]
    """

    def __init__(self, scale: str = "min", rtol: float | None = None,
                 on_representation: bool = False) -> None:
        super().__init__(on_representation=on_representation)
        if scale not in _ALIGN_SCALES:
            raise ValueError(f"scale must be one of {list(_ALIGN_SCALES)}, got {scale!r}.")
        self.scale = scale
        self.rtol = None if rtol is None else check_number("rtol", rtol)
        self._dtype_eps = float(np.finfo(np.float64).eps)

    def _combine(self, G, losses, scale, reduce):
        self._dtype_eps = float(torch.finfo(G.dtype).eps) if G.is_floating_point() else \
            float(np.finfo(np.float64).eps)
        return super()._combine(G, losses, scale, reduce)

    def _solve(self, A, b, idx, losses, reduce):
        rtol = self.rtol if self.rtol is not None else len(b) * self._dtype_eps
        return _alignment(A, self.scale, rtol) @ b

    def extra_repr(self) -> str:
        route = ", on_representation=True" if self.on_representation else ""
        return f"scale={self.scale!r}, rtol={self.rtol!r}{route}"
