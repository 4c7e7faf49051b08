r"""Penalties on the spectrum of W: a shared low-rank subspace and clustered tasks.

=========================  ==================================================================
penalty                    Omega(W)
=========================  ==================================================================
``Trace()``                alpha * ||W||_*  (sum of singular values)
``Clustered(k, eta)``      alpha eta (1 + eta) min_M tr(W (eta I + M)^{-1} W^T),
                           M in S^T, 0 <= M <= I, tr M = k  (Zhou, Chen & Ye 2011; MALSAR CMTL)
=========================  ==================================================================

Both depend on W only through its singular values, so their proxes act on the singular values
of one thin SVD of the p x T matrix.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import Penalty, check_positive

__all__ = ["Trace", "Clustered", "cluster_weights"]


def _svd(V: np.ndarray):
    return np.linalg.svd(V, full_matrices=False)


def _spectral_norm(G: np.ndarray) -> float:
    return float(np.linalg.norm(G, 2)) if G.size else 0.0


class Trace(Penalty):
    """Trace (nuclear) norm ``alpha * ||W||_*``: the tasks share a low-dimensional subspace.

    Prox: soft-thresholding of the singular values. Dual norm: the spectral norm, so fits are
    certified by a duality gap and ``alpha_max = ||G0||_2``.
    """

    name = "trace"
    structure_attrs = ("singular_values_", "rank_")

    def value(self, V, alpha):
        return float(alpha * np.linalg.svd(V, compute_uv=False).sum()) if V.size else 0.0

    def prox(self, V, step, alpha):
        U, s, Vt = _svd(V)
        s = np.maximum(s - step * alpha, 0.0)
        return (U * s) @ Vt

    def dual_scaling(self, G, alpha):
        m = _spectral_norm(G)
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G, alpha):
        return 0.0

    def alpha_max(self, G0):
        return _spectral_norm(G0)

    def structure(self, V, alpha):
        s = np.linalg.svd(V, compute_uv=False)
        rank = int(np.sum(s > 1e-8 * s.max())) if s.size and s.max() > 0 else 0
        return {"singular_values_": s, "rank_": rank}


def cluster_weights(sigma: np.ndarray, eta: float, k: float) -> np.ndarray:
    r"""``argmin_m sum_i sigma_i^2 / (eta + m_i)`` over ``0 <= m_i <= 1, sum_i m_i = k``.

    The eigenvalues of the optimal M of the clustered penalty (eigenvectors: those of W^T W).
    KKT: ``m_i = clip(tau sigma_i - eta, 0, 1)`` with tau set by ``sum m = k`` (bisection; the
    sum is nondecreasing in tau). When fewer than k singular values are nonzero, the rest of the
    budget goes to the zero ones, which does not change the value.
    """
    sigma = np.abs(np.asarray(sigma, dtype=np.float64))
    pos = sigma > 0
    n_pos = int(pos.sum())
    m = np.zeros_like(sigma)
    if n_pos <= k:
        m[pos] = 1.0
        rest = k - n_pos
        if rest > 0:
            m[~pos] = rest / (len(sigma) - n_pos)
        return m
    lo, hi = 0.0, (1.0 + eta) / sigma[pos].min()
    for _ in range(200):
        tau = 0.5 * (lo + hi)
        if np.clip(tau * sigma - eta, 0.0, 1.0).sum() < k:
            lo = tau
        else:
            hi = tau
        if hi - lo <= 1e-15 * hi:
            break
    return np.clip(0.5 * (lo + hi) * sigma - eta, 0.0, 1.0)


class Clustered(Penalty):
    r"""Clustered multi-task learning, convex relaxation (Zhou, Chen & Ye 2011; MALSAR's CMTL).

    ``alpha * eta (1 + eta) * min_M tr(W (eta I + M)^{-1} W^T)`` over ``0 <= M <= I``,
    ``tr M = k``: tasks fall into about ``k`` groups whose weight vectors are close, and
    ``eta > 0`` sets how strongly all weights are also shrunk (MALSAR's ``rho2 / rho1``).

    The optimal M shares the eigenvectors of ``W^T W``, its eigenvalues given by
    :func:`cluster_weights`; the prox shrinks singular values jointly with that choice. Smooth in
    W and with no tractable conjugate, so fits certify with the KKT residual. The fitted
    estimator exposes ``cluster_matrix_`` (the optimal M, T x T) and ``task_clusters_`` (k-means
    of M's leading eigenvectors).
    """

    name = "clustered"
    has_dual = False
    _param_names = ("k", "eta")
    structure_attrs = ("cluster_matrix_", "task_clusters_")

    def __init__(self, k: int = 2, eta: float = 1.0):
        self.k = k
        self.eta = eta

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        if not isinstance(self.k, numbers.Integral) or not (1 <= self.k <= n_tasks):
            raise ValueError(
                f"k must be an integer number of clusters in 1..{n_tasks} (the number of "
                f"tasks); got {self.k!r}."
            )
        check_positive(self.eta, "eta")
        return self

    def _scale(self, alpha: float) -> float:
        return alpha * self.eta * (1.0 + self.eta)

    def _sigma_all(self, V: np.ndarray) -> np.ndarray:
        """All T singular values of W (zeros appended when p < T)."""
        s = np.linalg.svd(V, compute_uv=False)
        return np.concatenate([s, np.zeros(V.shape[1] - s.size)])

    def value(self, V, alpha):
        s = self._sigma_all(V)
        m = cluster_weights(s, self.eta, self.k)
        return float(self._scale(alpha) * np.sum(s**2 / (self.eta + m)))

    def prox(self, V, step, alpha):
        # min over X, M of ||X - V||^2 / 2 + step * c tr(X (eta I + M)^{-1} X^T): for a fixed M
        # x_i = sigma_i (eta + m_i) / (eta + m_i + 2 step c); eliminating x leaves
        # sum_i step c sigma_i^2 / (eta + 2 step c + m_i), minimized by cluster_weights.
        U, s, Vt = _svd(V)
        two_sc = 2.0 * step * self._scale(alpha)
        s_all = np.concatenate([s, np.zeros(V.shape[1] - s.size)])
        m = cluster_weights(s_all, self.eta + two_sc, self.k)[: s.size]
        x = s * (self.eta + m) / (self.eta + m + two_sc)
        return (U * x) @ Vt

    def cluster_matrix(self, W: np.ndarray) -> np.ndarray:
        """The optimal M for W: ``Q diag(m) Q^T`` with ``W^T W = Q diag(sigma^2) Q^T``."""
        evals, Q = np.linalg.eigh(W.T @ W)
        m = cluster_weights(np.sqrt(np.maximum(evals, 0.0)), self.eta, self.k)
        return (Q * m) @ Q.T

    def structure(self, V, alpha) -> dict[str, Any]:
        from sklearn.cluster import KMeans

        M = self.cluster_matrix(V)
        T = M.shape[0]
        k = int(self.k)
        if k == 1 or T <= k:
            labels = np.zeros(T, dtype=np.int64) if k == 1 else np.arange(T, dtype=np.int64)
        else:
            evals, Q = np.linalg.eigh(M)
            emb = Q[:, -k:] * np.sqrt(np.maximum(evals[-k:], 0.0))
            labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)
        return {"cluster_matrix_": M, "task_clusters_": labels.astype(np.int64)}
