r"""What a penalty declares of its degrees of freedom at a solution.

The degrees of freedom of a fit are the divergence of the fitted values in the targets,
``df = sum_r d f_r / d y_r`` (Stein 1981; Efron 2004), the ``df`` that AIC and BIC charge.
A penalty declares them at a solution through :meth:`~regmtl.Penalty.degrees_of_freedom`, as a
:class:`DegreesOfFreedom`: a ``count`` that needs no data, and where the divergence depends on
the data's curvature, a *smoother*, the pieces of the penalty's Hessian H on the active
coefficients from which :func:`regmtl.selection.degrees_of_freedom` evaluates

.. math::

    \operatorname{tr}\big((D + H)^{-1} D\big)

with the data (D the Hessian of the data term over the active coefficients and the
intercepts: ``D_t = Z_t^T diag(c_t l''_t) Z_t`` task by task, the IRLS weights for the logistic
loss). The intercepts count once each where there is no smoother; a smoother's trace includes
them. Smoothers:

- :class:`SupportSmoother`: a ridge per task on the active coefficients, and the curvature of a
  row norm, ``H_j = g_j (I - u_j u_j^T)`` on row j's active entries (the Hessian of
  ``alpha rho ||W_j||_2`` at a nonzero row: ``g_j = alpha rho / ||W_j||``,
  ``u_j = W_j / ||W_j||``), coupling only a row's T entries;
- :class:`FeatureRidge`: one p x p Hessian for every task (separable over the tasks);
- :class:`TaskCoupling`: ``alpha K (x) P`` over selected features, K a T x T task kernel
  applied as ``X -> X K``.

By penalty:

==========================================  ===================================================
penalty                                     df
==========================================  ===================================================
``L1``, ``ElasticNet`` (l1_ratio = 1)       the support (Zou, Hastie & Tibshirani 2007): the
                                            entries with ``|W_jt| > tol max|W|`` (see
                                            :func:`support_threshold`)
``ElasticNet`` (l1_ratio < 1), ``L2``       ``tr((D + R)^{-1} D)`` over the support (every
                                            entry for ``L2``), R = alpha (1 - rho) I
``L21``, ``MultiSource``                    the group lasso's divergence (Vaiter, Deledalle,
                                            Peyre, Fadili & Dossal 2012; Yuan & Lin 2006 for an
                                            orthonormal design): ``tr((D + H)^{-1} D)`` over the
                                            selected rows, H = alpha rho (I - u u^T) / ||W_j||
                                            per row plus alpha (1 - rho) I; with
                                            ``positive=True`` over the positive entries
``MCP``, ``SCAD``, ``CappedL1``,            the nonzero entries of W
``NonconvexFusedGroupLasso``, ``Dirty``,
``RobustFeatures``
``MeanRegularized``, ``GraphLaplacian``,    ``tr((D + alpha K (x) P)^{-1} D)`` (``Clustered``: K
``Clustered``                               at the fitted M)
``SharedStructure``                         ``sum_t tr((D_t + R)^{-1} D_t)``, R the Hessian at
                                            the fitted M
``Trace``                                   ``r (p + T - r)``, r = rank W
``SparseLowRank``                           that of the low-rank part plus the sparse part's
                                            nonzero entries
``RobustLowRank``                           ``r (p + T_in - r) + p k``
``TemporalGroupLasso``                      ``tr((D + alpha K (x) P)^{-1} D)`` over the nonzero
                                            rows, K = s R R^T + r I
``FusedGroupLasso``                         the nonzero constant pieces of the rows (Tibshirani
                                            & Taylor 2011)
==========================================  ===================================================

A penalty that declares nothing (the base class's default, None) has no estimate: AIC and BIC
refuse it and name ``criterion='cv'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DegreesOfFreedom", "SupportSmoother", "FeatureRidge", "TaskCoupling",
           "support_threshold", "low_rank_count", "nonzero_count"]


@dataclass(frozen=True)
class SupportSmoother:
    r"""``H = blockdiag_t(diag(ridge_t))`` on the active coefficients, plus the curvature of
    each active row's norm, ``row_weight_j (I - u_j u_j^T)`` on its active entries
    (``u_j = row_direction[j]``, zero off them).

    Attributes
    ----------
    active : ndarray of shape (p, T), bool
        The active coefficients (the others are held at 0 and not charged).
    ridge : ndarray of shape (T,)
        Each task's ridge on its active coefficients.
    row_weight : ndarray of shape (p,), optional
        ``g_j``: the curvature of row j's norm (0 for a row without one).
    row_direction : ndarray of shape (p, T), optional
        ``u_j``: the unit direction of row j, restricted to its active entries.
    """

    active: np.ndarray
    ridge: np.ndarray
    row_weight: np.ndarray | None = None
    row_direction: np.ndarray | None = None


@dataclass(frozen=True)
class FeatureRidge:
    """``H = matrix`` (p x p) on every task's coefficients (not on the intercepts)."""

    matrix: np.ndarray


@dataclass(frozen=True)
class TaskCoupling:
    """``H = strength * K (x) P`` over the features ``rows`` (all of them when None), K the
    T x T task kernel given by ``apply(X) = X K`` (X of shape (m, T)) and its ``diagonal``."""

    strength: float
    apply: Callable[[np.ndarray], np.ndarray]
    diagonal: np.ndarray
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class DegreesOfFreedom:
    """A penalty's degrees of freedom at a solution: ``count`` plus, with a ``smoother``, its
    trace ``tr((D + H)^{-1} D)`` (intercepts included); without one the intercepts add 1 each.
    """

    count: float = 0.0
    smoother: SupportSmoother | FeatureRidge | TaskCoupling | None = None


def support_threshold(W: np.ndarray, tol: float) -> float:
    """The size above which a coefficient counts as nonzero: ``tol * max|W|``.

    A fit stops at a relative duality gap of ``tol``; the coefficients' error is then of the
    order of ``sqrt(tol)`` of their scale, so an entry below ``tol`` times the largest is zero
    within the fit's accuracy (an entry entering at a knot of the path, or one a solver without
    exact zeros left at rounding level), while one above it counts. 0 for ``tol = 0`` (every
    nonzero counts).
    """
    big = float(np.abs(W).max(initial=0.0))
    return float(tol) * big


def nonzero_count(W: np.ndarray) -> int:
    """The number of nonzero entries of W."""
    return int(np.count_nonzero(W))


def low_rank_count(M: np.ndarray) -> int:
    """``r (p + T - r)``: the dimension of the p x T matrices of rank r = rank M (singular
    values above ``1e-8`` times the largest)."""
    s = np.linalg.svd(M, compute_uv=False)
    r = int(np.sum(s > 1e-8 * s.max())) if s.size and s.max() > 0 else 0
    p, T = M.shape
    return r * (p + T - r)
