r"""Gap-safe screening rules (Fercoq, Gramfort & Salmon 2015; Ndiaye et al. 2017).

The dual objective is ``mu``-strongly concave in the c-weighted norm ``||u||_c^2 = sum_r c_r
u_r^2`` (``mu = 1`` for the squared loss, 4 for the logistic loss), so any feasible dual point
``theta`` with duality gap ``gap`` lies within ``r = sqrt(2 gap / mu)`` of the dual optimum.
Both are centered per task when intercepts are fitted, so with
``L_jt = sum_{r in t} c_r (x_rj - xm_jt)^2`` (the centered block constants)::

    |G_jt(theta*) - G_jt(theta)| <= r sqrt(L_jt),
    ||G_j(theta*) - G_j(theta)||  <= r sqrt(max_t L_jt),

and since ``W*_j = 0`` whenever the optimal ``G_j(theta*)`` is strictly inside the ball of the
L1 part (``||G_j|| < alpha rho`` for L2,1; ``|G_jt| < alpha rho`` for every t for L1; both
for the dirty model), a feature passing that test with the margin above is zero at the
optimum, whatever the gap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["safe_radius", "screen"]


def safe_radius(gap: float, strong_concavity: float) -> float:
    """Radius of the dual ball that holds the dual optimum (``datafit.dual_strong_concavity``)."""
    return float(np.sqrt(2.0 * max(gap, 0.0) / strong_concavity))


def screen(G: np.ndarray, L: np.ndarray, radius: float, l1: float, group: int,
           l2: float = 0.0) -> np.ndarray:
    """Features that are zero at the optimum (boolean, length p).

    ``G`` is ``X^T (c theta)`` at the feasible dual point, ``L`` the centered block constants
    (p x T), ``l1`` the weight of the L1 part, ``group`` 0 (entrywise), 1 (rows) or 2 (dirty:
    rows of weight ``l1`` and entries of weight ``l2``; a feature is zero when its optimal
    correlations are inside both balls). A relative margin of 1e-9 covers rounding in G.
    """
    if l1 <= 0.0:
        return np.zeros(G.shape[0], dtype=bool)
    bound = l1 * (1.0 - 1e-9)
    if group == 2:
        rows = np.sqrt(np.einsum("jt,jt->j", G, G)) + radius * np.sqrt(
            L.max(axis=1, initial=0.0)) < bound
        return rows & np.all(np.abs(G) + radius * np.sqrt(L) < l2 * (1.0 - 1e-9), axis=1)
    if group:
        norms = np.sqrt(np.einsum("jt,jt->j", G, G))
        return norms + radius * np.sqrt(L.max(axis=1, initial=0.0)) < bound
    return np.all(np.abs(G) + radius * np.sqrt(L) < bound, axis=1)
