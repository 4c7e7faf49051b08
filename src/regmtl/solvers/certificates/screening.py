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
optimum, whatever the gap. Under the sign constraint ``W >= 0`` the ball bounds the positive
part only (``||max(G_j, 0)|| < alpha rho``; ``G_jt < alpha rho``), and since ``max(., 0)`` is
1-Lipschitz the same margins hold for it.
"""

from __future__ import annotations

import numpy as np

from ...penalties.base import (
    BLOCK_KINDS,
    DIRTY_ROWS,
    NONCONVEX_KINDS,
    POSITIVE_ENTRYWISE,
    POSITIVE_ROWS,
    ROWS,
)

__all__ = ["safe_radius", "screen"]

#: relative margin covering rounding in G
_MARGIN = 1.0 - 1e-9


def safe_radius(gap: float, strong_concavity: float) -> float:
    """Radius of the dual ball that holds the dual optimum (``datafit.dual_strong_concavity``)."""
    if strong_concavity <= 0:  # a dual without strong concavity: no ball, nothing screened
        return np.inf
    return float(np.sqrt(2.0 * max(gap, 0.0) / strong_concavity))


# one rule per block kind (:class:`~regmtl.penalties.base.BlockStep`), in the order of the
# kernel's branches (``regmtl.solvers.parts._kernels._block_update``)
def _dirty_rows_rule(G, L, radius, l1, l2):
    """DIRTY_ROWS: the optimal row inside the ball of radius l1 and every entry inside l2."""
    rows = _rows_rule(G, L, radius, l1, l2)
    return rows & np.all(np.abs(G) + radius * np.sqrt(L) < l2 * _MARGIN, axis=1)


def _rows_rule(G, L, radius, l1, l2):
    """ROWS: ``||G_j|| + r sqrt(max_t L_jt) < l1``."""
    norms = np.sqrt(np.einsum("jt,jt->j", G, G))
    return norms + radius * np.sqrt(L.max(axis=1, initial=0.0)) < l1 * _MARGIN


def _positive_rows_rule(G, L, radius, l1, l2):
    """POSITIVE_ROWS: ``||max(G_j, 0)|| + r sqrt(max_t L_jt) < l1``."""
    return _rows_rule(np.maximum(G, 0.0), L, radius, l1, l2)


def _entrywise_rule(G, L, radius, l1, l2):
    """ENTRYWISE: ``|G_jt| + r sqrt(L_jt) < l1`` for every task."""
    return np.all(np.abs(G) + radius * np.sqrt(L) < l1 * _MARGIN, axis=1)


def _positive_entrywise_rule(G, L, radius, l1, l2):
    """POSITIVE_ENTRYWISE: ``G_jt + r sqrt(L_jt) < l1`` for every task."""
    return np.all(G + radius * np.sqrt(L) < l1 * _MARGIN, axis=1)


def screen(G: np.ndarray, L: np.ndarray, radius: float, l1: float, group: int,
           l2: float = 0.0) -> np.ndarray:
    """Features that are zero at the optimum (boolean, length p).

    ``G`` is ``X^T (c theta)`` at the feasible dual point, ``L`` the centered block constants
    (p x T), ``l1`` the weight of the L1 part, ``group`` the block kind
    (``ENTRYWISE``, ``ROWS`` or ``DIRTY_ROWS``: rows of weight ``l1`` and entries of weight
    ``l2``; a feature is zero when its optimal correlations are inside both balls; the
    sign-constrained ``POSITIVE_ROWS`` and ``POSITIVE_ENTRYWISE`` read the positive part of
    the correlations). A relative margin of 1e-9 covers rounding in G. The nonconvex kinds
    have no rule (no duality gap, no dual ball): a ``ValueError``.
    """
    if group in NONCONVEX_KINDS:
        raise ValueError(f"no gap-safe rule for the {BLOCK_KINDS[group]} block kind: a "
                         "nonconvex penalty has no duality gap to screen with.")
    if l1 <= 0.0:
        return np.zeros(G.shape[0], dtype=bool)
    if group == DIRTY_ROWS:
        return _dirty_rows_rule(G, L, radius, l1, l2)
    if group == ROWS:
        return _rows_rule(G, L, radius, l1, l2)
    if group == POSITIVE_ROWS:
        return _positive_rows_rule(G, L, radius, l1, l2)
    if group == POSITIVE_ENTRYWISE:
        return _positive_entrywise_rule(G, L, radius, l1, l2)
    return _entrywise_rule(G, L, radius, l1, l2)
