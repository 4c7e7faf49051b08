r"""The exact ridge of wide tasks (fewer rows than features), in row-space form.

With ``B_t = D_t^{1/2} X_{c,t}`` (the task's centered rows weighted by ``c``) and ``a_t =
D_t^{1/2} z_{c,t}`` (its centered targets, weighted alike), the ridge ``argmin_w ||a_t - B_t
w||^2 / 2 + alpha ||w||^2 / 2`` is

.. math::

    w_t = (B_t^\top B_t + \alpha I)^{-1} B_t^\top a_t = B_t^\top (K_t + \alpha I)^{-1} a_t,
    \qquad K_t = B_t B_t^\top \ (n_t \times n_t),

read from one eigendecomposition of each kernel, kept with the problem for every alpha of a
path (the minimum-norm solution at ``alpha = 0``, eigenvalues below ``1e-12`` of the largest
taken as zero). No difference of large terms: on collinear, rank-deficient columns (the Mulan
airline sets) it is exact where coordinate descent crawls for thousands of epochs.
"""

from __future__ import annotations

import numpy as np

from ...taskdata import TaskData
from .kernel_quadratic import kernel_quadratic

__all__ = ["wide_ridge"]


class _KernelEigen:
    """Every task's kernel ``K_t = U_t diag(lam_t) U_t'`` and ``U_t' a_t``, with the centers."""

    def __init__(self, data: TaskData, fit_intercept: bool):
        q = kernel_quadratic(data, fit_intercept)
        self.xm, self.zm = q.xm, np.asarray(q.zm, dtype=np.float64)
        self.root = np.sqrt(data.c)
        a = self.root * (data.y - self.zm[data.task_of])
        indptr = data.indptr
        self.parts = []
        for t in range(data.n_tasks):
            n = int(indptr[t + 1] - indptr[t])
            if n == 0:
                self.parts.append(None)
                continue
            K = q.K[q.koff[t]:q.koff[t] + n * n].reshape(n, n)
            lam, U = np.linalg.eigh(K)
            self.parts.append((lam, U, U.T @ a[indptr[t]:indptr[t + 1]]))

    def coefficients(self, data: TaskData, alpha: float) -> np.ndarray:
        """``W`` (p x T) at ``alpha``: ``v_t = (K_t + alpha I)^+ a_t``, then ``B_t' v_t``."""
        v = np.zeros(data.n_obs)
        for t, part in enumerate(self.parts):
            if part is None:
                continue
            lam, U, Ua = part
            den = lam + alpha
            floor = 1e-12 * max(float(lam[-1]), 1e-300)
            keep = den > floor
            coef = np.where(keep, Ua / np.where(keep, den, 1.0), 0.0)
            v[data.indptr[t]:data.indptr[t + 1]] = U @ coef
        u = self.root * v
        return data.adjoint(u) - self.xm * data.task_sums(u)


def wide_ridge(data: TaskData, alpha: float, fit_intercept: bool) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """``(W, b)`` of the squared loss with ``alpha / 2 ||W||_F^2`` on tasks of fewer rows than
    features (see the module docstring); the kernels' eigendecompositions are computed once
    per problem."""
    eig = data.memo(("wide_ridge", bool(fit_intercept)),
                    lambda: _KernelEigen(data, fit_intercept))
    W = eig.coefficients(data, float(alpha))
    b = eig.zm - np.einsum("jt,jt->t", eig.xm, W) if fit_intercept else np.zeros(data.n_tasks)
    return W, b
