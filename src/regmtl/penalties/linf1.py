r"""The L1,inf penalty: features selected jointly, each bounded by one magnitude in every task."""

from __future__ import annotations

import numpy as np

from .base import NormPenalty, is_blocked
from .gathered import by_rows

__all__ = ["LInf1", "project_rows_l1"]


def project_rows_l1(V: np.ndarray, radius: float) -> np.ndarray:
    r"""The Euclidean projection of every row of V onto the L1 ball of radius ``radius``.

    The sort-based algorithm of Duchi, Shalev-Shwartz, Singer & Chandra (2008), all rows at
    once: with ``mu`` a row's magnitudes sorted in decreasing order and ``S_k`` their partial
    sums, ``rho = max {k: mu_k > (S_k - r) / k}`` and ``theta = max((S_rho - r) / rho, 0)``;
    the projection is ``sign(v) max(|v| - theta, 0)`` (the row itself when ``||v||_1 <= r``).

    Parameters
    ----------
    V : ndarray of shape (p, T)
        The rows to project.
    radius : float
        The ball's radius ``r > 0``.

    Returns
    -------
    ndarray of shape (p, T)
        The projected rows.
    """
    return np.sign(V) * np.maximum(np.abs(V) - _thresholds(V, radius)[:, None], 0.0)


def _thresholds(V: np.ndarray, radius: float) -> np.ndarray:
    """Per row, the ``theta >= 0`` of the projection onto the L1 ball (0 inside the ball)."""
    mu = -np.sort(-np.abs(V), axis=1)
    S = np.cumsum(mu, axis=1)
    k = np.arange(1, V.shape[1] + 1)
    rho = np.count_nonzero(mu * k > S - radius, axis=1)  # the condition holds for a prefix
    rows = np.arange(V.shape[0])
    return np.maximum((S[rows, rho - 1] - radius) / rho, 0.0)


class LInf1(NormPenalty):
    r"""L1,inf norm: the tasks select features together and share each one's magnitude.

    .. math::

        \Omega(W) = \alpha \sum_{j=1}^p \max_t |W_{jt}|,

    the sum over features of the largest magnitude across tasks. Like :class:`~regmtl.L21` it
    zeroes whole rows (a feature is used by every task or by none), but the L-infinity norm
    inside charges only a row's largest entry, so the tasks that use a feature tend to use it
    up to the same magnitude (many ``|W_jt|`` tied at the row's maximum). Solved by proximal
    gradient: by Moreau's identity the prox of ``step alpha ||.||_inf`` of a row is the row
    minus its projection onto the L1 ball of radius ``step alpha`` (sort-based, Duchi et al.
    2008). The dual norm is ``max_j ||G_j||_1``, so fits are certified by a duality gap and
    ``alpha_max = max_j ||G0_j||_1``. It saves nothing besides the coefficients.

    See Also
    --------
    regmtl.L21 : Rows selected jointly, shrunk by their Euclidean norm.

    References
    ----------
    Turlach, Venables & Wright (2005), "Simultaneous variable selection", Technometrics 47(3);
    Quattoni, Carreras, Collins & Darrell (2009), "An efficient projection for l1,inf
    regularization", ICML; Duchi, Shalev-Shwartz, Singer & Chandra (2008), "Efficient
    projections onto the l1-ball for learning in high dimensions", ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import LInf1, MultiTaskRegressor
    >>> LInf1().prox(np.array([[3.0, -1.0], [0.5, 0.2]]), 1.0, 1.0).tolist()
    [[2.0, -1.0], [0.0, 0.0]]
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> Y = X[:, :2] @ np.array([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]])
    >>> model = MultiTaskRegressor(penalty=LInf1(), alpha=0.05).fit(X, Y)
    >>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()
    [0, 1]
    """

    name = "l1inf"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha sum_j d_j max_t |W_jt| (rows)"
    linear_program = "row_max"
    cone_program = "row_max"  # (the interior point's: |W_jt| <= s_j, linear cones)
    # (on task blocks its prox runs on the rows gathered whole: ``penalties.gathered``)
    structure_attrs = ()
    #: a new task takes the support; the L-infinity rows' alpha does not carry to a ridge
    #: prior: chosen by CV
    transfer_strategy = "support"
    transfer_alpha = False
    compare_label = "MTL L1,inf"

    def value(self, V: np.ndarray, alpha: float) -> float:
        return float(alpha * np.abs(V).max(axis=1, initial=0.0).sum())

    def lazy_value(self, V, alpha):
        """:meth:`value`, a lazy scalar on a V held in task blocks."""
        if not is_blocked(V) or V.size == 0:
            return self.value(V, alpha)
        return alpha * abs(V).max(axis=1).sum()

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """``V_j - P(V_j)`` per row, ``P`` the projection onto the L1 ball of radius
        ``step alpha`` (Moreau); on task blocks, on the rows gathered whole."""
        if step * alpha <= 0.0 or V.size == 0:
            return V.copy() if is_blocked(V) else np.array(V, dtype=np.float64)
        return by_rows(_prox_rows, V, step * alpha)

    def dual_norm(self, G: np.ndarray) -> float:
        """``max_j ||G_j||_1``, the dual of ``sum_j ||W_j||_inf``."""
        return float(abs(G).sum(axis=1).max()) if G.size else 0.0

    def lazy_dual_scaling(self, G, alpha):
        """On a G held in task blocks, ``alpha / max(max_j ||G_j||_1, alpha)`` lazy (1
        exactly inside the ball, as :meth:`dual_scaling`)."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        return alpha / np.maximum(abs(G).sum(axis=1).max(), alpha)


def _prox_rows(V: np.ndarray, radius: float) -> np.ndarray:
    """The prox of ``radius ||.||_inf`` of every row: the row less its L1-ball projection."""
    return V - project_rows_l1(V, radius)
