r"""The data term as one quadratic per task, in Gram form.

For the squared loss (and for the weighted least-squares model of a proximal Newton step) the
data term of task t, with its intercept minimized out, is an exact quadratic in ``w_t``::

    sum_{r in t} c_r (z_r - b_t - x_r . w_t)^2 / 2
        = w_t' H_t w_t / 2 - g_t' w_t + e_t / 2,

    H_t = X_{c,t}' diag(c_t) X_{c,t},  g_t = X_{c,t}' (c_t z_{c,t}),  e_t = sum c_t z_{c,t}^2,

with ``X_c``, ``z_c`` centered by the task's weighted means (not centered without intercepts).
When a task has more rows than features, iterating on ``H_t`` (p x p) costs less than a pass
over its rows, and the curvature is known exactly (no line search). The per-task Grams are
built once, by one pass over the stacked rows; a shared design whose rows weigh the same within
each task needs only one Gram, ``H_t = c_t H``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..taskdata import TaskData
from ._kernels import active_gram
from .moments import feature_moments

__all__ = ["TaskQuadratic", "quadratic_applies"]

#: Largest number of features for which per-task Grams are formed.
MAX_FEATURES = 2000


def quadratic_applies(data: TaskData) -> bool:
    """Gram form pays: p at most :data:`MAX_FEATURES`, and the Grams no larger than the data
    (one Gram for a shared design; else ``T p^2 <= N p``)."""
    if data.n_features > MAX_FEATURES:
        return False
    p = data.n_features
    if data.shared:
        return p <= data.X.shape[0]
    return data.n_tasks * p <= data.n_obs


def task_grams(X: np.ndarray, c: np.ndarray, indptr: np.ndarray, offset: np.ndarray,
               xm: np.ndarray) -> np.ndarray:
    """``H[t] = X_{c,t}' diag(c_t) X_{c,t}`` (T, p, p), centered by ``xm`` (p x T).

    Tasks of many rows: one BLAS product per task on a centered, weighted copy of that task's
    block (a block at a time, never the whole design); many small tasks: one compiled pass
    over the stacked rows. Built once per problem, not per iteration."""
    T, p = len(indptr) - 1, X.shape[1]
    H = np.zeros((T, p, p))
    if sp.issparse(X):  # per task: the sparse product, then the centering's rank-one term
        Xr = sp.csr_matrix(X)
        for t in range(T):
            a, b, o = indptr[t], indptr[t + 1], offset[t]
            Xt, ct = Xr[a - o:b - o], c[a:b]
            m = xm[:, t]
            XtX = np.asarray((Xt.T @ sp.diags(ct) @ Xt).todense())
            s = np.asarray(Xt.T @ ct).ravel()
            H[t] = XtX - np.outer(s, m) - np.outer(m, s) + ct.sum() * np.outer(m, m)
        return H
    if (indptr[-1] / max(T, 1)) < 64:
        active_gram(np.asfortranarray(X), c, indptr, offset, np.ascontiguousarray(xm), H)
        return H
    for t in range(T):  # X' C X with the centering's rank-one terms: one weighted copy only
        a, b, o = indptr[t], indptr[t + 1], offset[t]
        Xt, ct, m = X[a - o:b - o], c[a:b], xm[:, t]
        s = ct @ Xt
        H[t] = (Xt.T * ct) @ Xt - np.outer(s, m) - np.outer(m, s) + ct.sum() * np.outer(m, m)
    return H


class TaskQuadratic:
    """``q(W) = sum_t (w_t' H_t w_t / 2 - g_t' w_t + e_t / 2)`` (see the module docstring).

    Parameters
    ----------
    H : ndarray of shape (T, p, p), or (p, p) with ``scale`` (T,) so that ``H_t = scale_t H``
    g : ndarray of shape (p, T)
    e : ndarray of shape (T,)
    xm, zm : the centers (p x T, and T): the intercepts are ``zm_t - xm_t . w_t``.
    """

    def __init__(self, H, g, e, xm, zm, scale=None):
        self.H, self.g, self.e, self.xm, self.zm, self.scale = H, g, e, xm, zm, scale
        self._L = self._eig = None

    @classmethod
    def from_data(cls, data: TaskData, c: np.ndarray, z: np.ndarray,
                  center: bool) -> TaskQuadratic:
        """The quadratic of ``sum_r c_r (z_r - f_r)^2 / 2`` with the intercepts minimized out
        (``center``) or fixed at 0."""
        X = data.X
        p, T = data.n_features, data.n_tasks
        csum = data.task_sums(c)
        zm = data.task_sums(c * z) / csum if center else np.zeros(T)
        xm = data.adjoint(c) / csum if center else np.zeros((p, T))
        zc = z - zm[data.task_of]
        # a shared design whose rows weigh the same within each task: one Gram, scaled
        uniform = data.shared and np.array_equal(
            c, np.repeat(c[data.indptr[:-1]], np.diff(data.indptr)))
        if uniform:
            ct = c[data.indptr[:-1]]
            m = xm[:, 0]
            XtX = X.T @ X
            XtX = XtX.toarray() if sp.issparse(XtX) else XtX
            H = XtX - X.shape[0] * np.outer(m, m) if center else XtX
            scale = ct
        else:
            H = task_grams(X, c, data.indptr, data.offset, xm)
            # the diagonal from two passes (accurate), and a column constant within a task (its
            # centered curvature at rounding level) exactly out of that task's quadratic
            L = feature_moments(data, c, center)[1]
            idx = np.arange(p)
            keep = (L > 0.0).T
            H *= keep[:, :, None] & keep[:, None, :]
            H[:, idx, idx] = L.T
            scale = None
        g = data.adjoint(c * zc) - (xm * data.task_sums(c * zc) if center else 0.0)
        if scale is None:
            g = np.where(keep.T, g, 0.0)
        e = data.task_sums(c * zc * zc)
        return cls(H, np.asarray(g, dtype=np.float64), e, xm, zm, scale)

    # ------------------------------------------------------------------ the quadratic
    def matvec(self, W: np.ndarray) -> np.ndarray:
        """``H_t w_t`` for every task (p x T)."""
        if self.scale is not None:
            return (self.H @ W) * self.scale
        return np.matmul(self.H, W.T[:, :, None])[:, :, 0].T

    def value(self, W: np.ndarray, HW: np.ndarray | None = None) -> float:
        HW = self.matvec(W) if HW is None else HW
        return float(0.5 * np.vdot(W, HW) - np.vdot(self.g, W) + 0.5 * self.e.sum())

    def lipschitz(self) -> float:
        """``max_t lambda_max(H_t)``, the curvature bound of the data term: exact (one
        eigendecomposition per task, or of the one shared Gram) while that costs less than
        ~2e6 operations; else the Rayleigh quotients of 60 power iterations run on all tasks at
        once, times 1.05 (a quotient lies between the two leading eigenvalues, and falls short
        of the largest only where they are close)."""
        if self._L is None:
            if self.scale is not None:
                top = np.linalg.eigvalsh(self.H)[-1] * self.scale.max()
            elif self.H.shape[0] * self.H.shape[1] ** 3 <= 2e6:
                top = np.linalg.eigvalsh(self.H)[:, -1].max()
            else:
                v = np.random.default_rng(0).standard_normal(self.H.shape[:2])
                for _ in range(60):
                    v = np.matmul(self.H, v[:, :, None])[:, :, 0]
                    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
                Hv = np.matmul(self.H, v[:, :, None])[:, :, 0]
                top = 1.05 * float(np.einsum("ti,ti->t", v, Hv).max())
            self._L = max(float(top), 1e-300)
        return self._L

    def ridge(self, alpha: float) -> np.ndarray:
        """``argmin q(W) + alpha/2 ||W||_F^2``: ``w_t = (H_t + alpha I)^+ g_t`` (p x T), from one
        eigendecomposition per task kept for every later alpha (the minimum-norm solution at
        ``alpha = 0``, where ``H_t`` may be singular)."""
        if self._eig is None:
            H = self.H[None] * self.scale[:, None, None] if self.scale is not None else self.H
            lam, V = np.linalg.eigh(H)
            self._eig = (np.maximum(lam, 0.0), V)
        lam, V = self._eig
        Vg = np.matmul(V.transpose(0, 2, 1), self.g.T[:, :, None])[:, :, 0]
        den = lam + alpha
        floor = 1e-12 * np.maximum(lam[:, -1:], 1e-300)
        coef = np.where(den > floor, Vg / np.where(den > floor, den, 1.0), 0.0)
        return np.matmul(V, coef[:, :, None])[:, :, 0].T

    def intercepts(self, W: np.ndarray) -> np.ndarray:
        return self.zm - np.einsum("jt,jt->t", self.xm, W)

    def gap_terms(self, W: np.ndarray, HW: np.ndarray):
        """``(RR, G, TT, YT)`` of the residual dual point at W: ``RR = sum_r c_r R_r^2``,
        ``G = X_c^T (c R)``, per task ``TT_t = sum c R^2`` and ``YT_t = sum c z R``."""
        gw = np.einsum("jt,jt->t", self.g, W)
        TT = self.e - 2.0 * gw + np.einsum("jt,jt->t", W, HW)
        return float(TT.sum()), self.g - HW, TT, self.e - gw

    def rounding(self, W: np.ndarray, HW: np.ndarray) -> float:
        """A bound on the rounding error of ``RR`` formed from the Gram sums."""
        big = self.e + 2.0 * np.abs(np.einsum("jt,jt->t", self.g, W))
        big += np.abs(np.einsum("jt,jt->t", W, HW))
        return 1e-13 * float(big.sum())
