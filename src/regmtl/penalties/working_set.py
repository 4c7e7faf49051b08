r"""Sparse plus low rank restricted to a working set of features and a basis of directions: the
penalty of the problems the subspace row solves (``solvers/methods/low_rank_subspace.py``).

With ``P = E_F P_F`` (the sparse part on the features F) and ``Q = U C`` (U orthonormal, p x
k), ``alpha (||Q||_* + g ||P||_1) = alpha (g ||P_F||_1 + ||C||_*)``: a norm of
``M = [P_F; C]`` ((|F| + k) x T) on the features ``[X_F, X U]``, built by
``SparseLowRank.on_working_set(|F|)``.
"""

from __future__ import annotations

import numpy as np

from .base import NormPenalty, svt
from .spectral import spectral_norm

__all__ = ["SparseLowRankOnWorkingSet"]


class SparseLowRankOnWorkingSet(NormPenalty):
    r"""Sparse plus low rank on a working set: ``alpha (g ||M_F||_1 + ||M_U||_*)`` on
    ``M = [M_F; M_U]`` (m x T), whose first ``n_entries`` rows are the sparse part's rows on
    the working set of features and the rest the low-rank part's coordinates ``C`` in an
    orthonormal basis U (``||U C||_* = ||C||_*``). A norm, with the dual norm
    ``max(max|G_F| / g, ||G_U||_2)``; the prox soft-thresholds ``M_F`` and
    singular-value-thresholds ``M_U``."""

    name = "sparse_lowrank_on_working_set"
    registered = False  # (it serves inside SparseLowRank's solve)
    distributable = False
    _param_names = ("n_entries", "sparse_weight")

    def __init__(self, n_entries: int, sparse_weight: float):
        self.n_entries = int(n_entries)
        self.sparse_weight = float(sparse_weight)

    def value(self, V: np.ndarray, alpha: float) -> float:
        k, low = self.n_entries, V[self.n_entries:]
        nuc = np.linalg.svd(low, compute_uv=False).sum() if low.size else 0.0
        return float(alpha * (nuc + self.sparse_weight * np.abs(V[:k]).sum()))

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        k, thr = self.n_entries, step * alpha * self.sparse_weight
        top = np.sign(V[:k]) * np.maximum(np.abs(V[:k]) - thr, 0.0)
        return np.vstack([top, svt(V[k:], step * alpha)])

    def dual_norm(self, G: np.ndarray) -> float:
        k = self.n_entries
        return float(max(np.abs(G[:k]).max(initial=0.0) / self.sparse_weight,
                         spectral_norm(G[k:])))
