"""Working sets of features: the support plus the worst violators of the optimality conditions
(Johnson & Guestrin 2015; Massias, Gramfort & Salmon 2018), shared by block coordinate descent
and proximal Newton."""

from __future__ import annotations

import numpy as np

__all__ = ["nonzero_rows", "select_working_set"]


def nonzero_rows(W: np.ndarray) -> np.ndarray:
    """Features with a nonzero coefficient in some task."""
    return np.flatnonzero(np.any(W != 0.0, axis=1)).astype(np.int64)


def select_working_set(penalty, alpha, W, G, screened, p0, floor=0):
    """The support and the worst violators of the optimality conditions (ranked by the
    distance of ``G_j`` to the subdifferential), ``max(p0, floor, 2 |support|)`` in all."""
    support = nonzero_rows(W)
    d = penalty.subdiff_distance(W, G, alpha)
    score = d if d.ndim == 1 else np.sqrt(np.einsum("jt,jt->j", d, d))
    score[screened] = -1.0
    score[support] = np.inf
    k = min(max(p0, floor, 2 * len(support)), int((~screened).sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.argpartition(-score, k - 1)[:k]).astype(np.int64)
