r"""Smooth penalties that pull task weight vectors towards each other.

=============================  ======================================================
penalty                        Omega(W)
=============================  ======================================================
``MeanRegularized(ridge=r)``   alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)
``GraphLaplacian(A)``          alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T)
=============================  ======================================================

(Evgeniou & Pontil 2004; graph-regularized MTL, MALSAR's SRMTL.) Both are
``alpha / 2 tr(W K W^T)`` for a PSD task kernel K (T x T): ``K = I - 11^T / T + r I`` and
``K = 2 L`` with ``L = diag(A 1) - A``. The prox is ``V (I + step alpha K)^{-1}``, applied
through the eigendecomposition of K. The conjugate ``tr(G K^{-1} G^T) / (2 alpha)`` is finite
everywhere only when K is invertible (mean-regularized with ``ridge > 0``): those fits certify
with a duality gap, the others with the KKT residual.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import Penalty, check_positive

__all__ = ["MeanRegularized", "GraphLaplacian", "chain_graph", "knn_graph"]


class _TaskKernel(Penalty):
    """``alpha / 2 tr(W K W^T)`` with a PSD T x T kernel K."""

    def kernel(self, n_tasks: int) -> np.ndarray:
        raise NotImplementedError

    def _eig(self, n_tasks: int) -> tuple[np.ndarray, np.ndarray]:
        # keyed on the kernel itself: the parameters may change after a fit (set_params, or
        # A edited in place), and repr() shows an array only by its shape
        K = self.kernel(n_tasks)
        cache = getattr(self, "_eig_cache", None)
        if cache is None or cache[0].shape != K.shape or not np.array_equal(cache[0], K):
            evals, Q = np.linalg.eigh(K)
            cache = (K, np.maximum(evals, 0.0), Q)
            self._eig_cache = cache
        return cache[1], cache[2]

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        return False

    def value(self, V, alpha):
        K = self.kernel(V.shape[1])
        return float(0.5 * alpha * np.sum((V @ K) * V))

    def gradient(self, W: np.ndarray, alpha: float) -> np.ndarray:
        return alpha * W @ self.kernel(W.shape[1])

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per feature: ``||G_j - grad Omega(W)_j||`` (the penalty is smooth)."""
        D = G - self.gradient(W, alpha)
        return np.sqrt(np.einsum("ij,ij->i", D, D))

    def prox(self, V, step, alpha):
        evals, Q = self._eig(V.shape[1])
        return ((V @ Q) / (1.0 + step * alpha * evals)) @ Q.T

    def dual_scaling(self, G, alpha):
        return 1.0

    def conjugate(self, G, alpha):
        evals, Q = self._eig(G.shape[1])
        if evals.min() <= 0:
            raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")
        GQ = G @ Q
        return float(np.sum(GQ**2 / evals) / (2.0 * alpha))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_eig_cache", None)
        return state


class MeanRegularized(_TaskKernel):
    """Mean-regularized MTL (Evgeniou & Pontil 2004): each task's weights stay near the mean task.

    ``alpha / 2 (sum_t ||w_t - w_bar||^2 + ridge ||W||_F^2)``. A huge ``alpha`` gives the pooled
    model (all ``w_t`` equal); ``ridge > 0`` also shrinks the mean task itself.
    """

    name = "mean"
    _param_names = ("ridge",)

    def __init__(self, ridge: float = 0.0):
        self.ridge = ridge

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_positive(self.ridge, "ridge", strict=False)
        return self

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        return float(self.ridge) > 0

    def kernel(self, n_tasks):
        T = n_tasks
        return (1.0 + float(self.ridge)) * np.eye(T) - np.full((T, T), 1.0 / T)


class GraphLaplacian(_TaskKernel):
    """Graph-regularized MTL: tasks joined by an edge of weight ``A_st`` have close weights.

    ``alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T)``, ``L = diag(A 1) - A``.
    ``A`` is a symmetric, non-negative T x T adjacency matrix (see :func:`chain_graph`,
    :func:`knn_graph`); ``A = 0`` leaves the tasks independent.
    """

    name = "graph"
    _param_names = ("A",)

    def __init__(self, A: Any):
        self.A = A

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        A = self._adjacency()
        if A.shape != (n_tasks, n_tasks):
            raise ValueError(
                f"A must be a square task-adjacency matrix of shape ({n_tasks}, {n_tasks}) "
                f"(one row and column per task); got shape {A.shape}."
            )
        return self

    def _adjacency(self) -> np.ndarray:
        try:
            A = self.A.toarray() if sp.issparse(self.A) else self.A
            A = np.asarray(A, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("A must be a numeric task-adjacency matrix.") from None
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square matrix; got shape {A.shape}.")
        if not np.all(np.isfinite(A)):
            raise ValueError("A contains NaN or infinite entries; give finite edge weights.")
        if np.any(A < 0):
            raise ValueError("A has negative entries; edge weights must be >= 0.")
        if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(A).max())):
            raise ValueError("A must be symmetric (A == A.T): an edge weighs the same both ways.")
        return 0.5 * (A + A.T)

    def kernel(self, n_tasks):
        A = self._adjacency()
        return 2.0 * (np.diag(A.sum(axis=1)) - A)


def chain_graph(n_tasks: int, weight: float = 1.0) -> np.ndarray:
    """Adjacency of a chain ``0 - 1 - ... - (T-1)`` (ordered tasks: years, ages, doses)."""
    if int(n_tasks) < 1:
        raise ValueError(f"n_tasks must be >= 1; got {n_tasks!r}.")
    check_positive(weight, "weight")
    A = np.zeros((n_tasks, n_tasks))
    idx = np.arange(n_tasks - 1)
    A[idx, idx + 1] = A[idx + 1, idx] = weight
    return A


def knn_graph(Z: Any, k: int = 5, *, weights: str = "connectivity") -> np.ndarray:
    """Symmetric k-nearest-neighbour adjacency of tasks described by the rows of ``Z`` (T x d).

    ``Z`` can hold task descriptors or single-task coefficient vectors. ``weights``:
    ``"connectivity"`` (1 per edge) or ``"heat"`` (``exp(-d^2 / median(d^2))``). An edge is kept
    when either task is among the other's k nearest.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or not np.all(np.isfinite(Z)):
        raise ValueError("Z must be a finite 2-D array with one row per task.")
    T = Z.shape[0]
    if not (1 <= int(k) < T):
        raise ValueError(f"k must be in 1..{T - 1} (neighbours among {T} tasks); got {k!r}.")
    if weights not in ("connectivity", "heat"):
        raise ValueError(f"weights must be 'connectivity' or 'heat'; got {weights!r}.")
    sq = np.sum(Z**2, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)
    np.fill_diagonal(D2, np.inf)
    nn = np.argsort(D2, axis=1, kind="stable")[:, : int(k)]
    A = np.zeros((T, T))
    rows = np.repeat(np.arange(T), int(k))
    if weights == "connectivity":
        A[rows, nn.ravel()] = 1.0
    else:
        d2 = D2[rows, nn.ravel()]
        scale = np.median(d2) if np.median(d2) > 0 else 1.0
        A[rows, nn.ravel()] = np.exp(-d2 / scale)
    return np.maximum(A, A.T)
