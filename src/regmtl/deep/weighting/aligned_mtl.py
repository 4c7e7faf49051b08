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
from scipy.linalg.lapack import dgejsv, dpstrf

from .._torch import torch
from .base import F64, check_number
from .gram import GramWeighting, as_gram

__all__ = ["AlignedMTL", "alignment_matrix"]

Tensor = torch.Tensor


_ALIGN_SCALES = ("min", "median", "rmse")


def _eigen_relative(A: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Eigenpairs (lam, V) of the PSD A with rows of positive diagonal, to relative accuracy.

    ``numpy.linalg.eigh`` finds an eigenvalue to about eps times the largest, so gradients of
    norms 1e6 apart (condition 1e12) lose 4 digits in the small ones. Here the Gram matrix is
    scaled to unit diagonal, :math:`\tilde A = D^{-1} A D^{-1}` (well conditioned whenever the
    gradients' directions are), factored by pivoted Cholesky :math:`\tilde A = P R^\top R
    P^\top` (rank = the pivots above ``rtol``), and :math:`C = R P^\top D` (so that
    :math:`A = C^\top C`, C column-graded) goes through LAPACK's preconditioned Jacobi SVD
    ``dgejsv``, which keeps relative accuracy under such grading (Drmac & Veselic 2008): the
    right singular vectors of C are A's eigenvectors, the squared singular values its
    eigenvalues. ``None`` when LAPACK reports a failure (the caller falls back to ``eigh``).
    """
    T = A.shape[0]
    s = np.sqrt(np.diag(A))
    c, piv, rank, info = dpstrf(A / np.outer(s, s), lower=0, tol=rtol)
    if info < 0 or rank == 0:
        return None
    C = np.zeros((T, T))
    C[:rank, piv - 1] = np.triu(c)[:rank]
    C *= s
    # joba 'F': A = D1 C D2 with well-conditioned C; jobu 'N', jobv 'V', jobr 'R', no perturbation
    sva, _, v, work, _, info = dgejsv(C, joba=2, jobu=3, jobv=0, jobr=1, jobt=0, jobp=0)
    if info != 0 or not (work[1] > 0):
        return None
    sv = sva * (work[0] / work[1])
    return sv * sv, v


def _alignment(A: np.ndarray, scale: str, rtol: float) -> np.ndarray:
    """B = sigma V_R L_R^(-1/2) V_R^T from the eigenpairs of A (rank-R truncation)."""
    A = 0.5 * (A + A.T)  # one rounding of G G^T whichever triangle LAPACK reads
    B = np.zeros_like(A)
    on = np.flatnonzero(np.diag(A) > 0)  # a zero gradient takes no part
    if on.size == 0:
        return B
    A_on = A[np.ix_(on, on)]
    pairs = _eigen_relative(A_on, rtol)
    lam, V = pairs if pairs is not None else np.linalg.eigh(A_on)
    top = float(lam.max()) if lam.size else 0.0
    if not top > 0:
        return B
    keep = lam > rtol * top
    lam, V = lam[keep], V[:, keep]
    sigma2 = {"min": lam.min(), "median": np.median(lam), "rmse": lam.mean()}[scale]
    B[np.ix_(on, on)] = math.sqrt(float(sigma2)) * (V / np.sqrt(lam)) @ V.T
    return B


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
    >>> [[round(v, 6) + 0.0 for v in row] for row in (G_hat @ G_hat.T).tolist()]  # sigma^2 I
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
    takes no part (weight 0). The result does not depend on the order of the tasks. The
    eigenpairs come with relative accuracy (the Gram matrix scaled to unit diagonal, pivoted
    Cholesky, LAPACK's Jacobi SVD ``dgejsv``): gradient norms :math:`10^6` apart (a Gram
    matrix of condition number :math:`10^{12}`) still give the update to about 1e-15, where a
    plain eigendecomposition loses 4 digits. The cost is :math:`O(T^3)` per step (8 ms at
    T = 139 on one core), beside T backward passes.

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

    #: The name users pass (``weighting="aligned_mtl"``) and saved models carry.
    name = "aligned_mtl"

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
