r"""Penalties on the spectrum of W: a shared low-rank subspace and clustered tasks.

=============================  ==============================================================
penalty                        Omega(W)
=============================  ==============================================================
``Trace()``                    alpha * ||W||_*  (sum of singular values)
``Clustered(k, eta)``          alpha eta (1 + eta) min_M tr(W (eta I + M)^{-1} W^T), M in S^T,
                               0 <= M <= I, tr M = k  (Zhou, Chen & Ye 2011; MALSAR CMTL)
``SharedStructure(k, eta)``    alpha eta (1 + eta) min_M tr(W^T (eta I + M)^{-1} W), M in S^p,
                               0 <= M <= I, tr M = k  (Chen, Tang, Liu & Ye 2009; MALSAR cASO)
=============================  ==============================================================

All depend on W only through its singular values, so their proxes act on the singular values
of one thin SVD of the p x T matrix. The last two share one body: M acts on the tasks (T x T)
or on the features (p x p), the budget k spread over its T or p eigenvalues, so the two values
agree whenever k <= min(p, T) (Zhou, Chen & Ye 2011).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import (
    NormPenalty,
    Penalty,
    SharedPart,
    check_positive,
    is_blocked,
    norm_scaling,
    r_factor,
    small_gram,
    spectral_scale,
    stacked_singular_values,
    svt,
    svt_given_gram,
)
from .dof import DegreesOfFreedom, FeatureRidge, TaskCoupling, low_rank_count

__all__ = ["Trace", "Clustered", "SharedStructure", "cluster_weights",
           "MAX_DENSE_CLUSTER_MATRIX", "dense_cluster_matrix", "gram_spectral_norm"]

#: Largest T for which a fitted estimator forms the dense T x T ``cluster_matrix_`` on request.
MAX_DENSE_CLUSTER_MATRIX = 5000


def _svd(V: np.ndarray):
    return np.linalg.svd(V, full_matrices=False)


#: Rows of G scaled at a time where its Gram would overflow or underflow unscaled.
SCALED_ROWS = 4096


def spectral_norm(G: np.ndarray) -> float:
    """The largest singular value, from the small side's Gram (accurate to rounding).

    The Gram of G itself where its entries' squares neither overflow nor underflow (max|G|
    within ``2^{+-480}``), else that of ``G 2^{-e}`` (``2^e ~ max|G|``, an exact scaling),
    formed a block of rows at a time: no copy of G in either case."""
    if not G.size:
        return 0.0
    if is_blocked(G):
        S = small_gram(G)
        return float(np.sqrt(max(np.linalg.eigvalsh(S)[-1], 0.0)))
    big = float(np.maximum(G.max(), -G.min()))  # max|G|, no |G| formed
    if big == 0.0 or not np.isfinite(big):
        return big
    A = G if G.shape[0] >= G.shape[1] else G.T  # (its long side first: the Gram is A' A)
    e = int(np.frexp(big)[1])
    if abs(e) <= 480:
        return float(np.sqrt(max(np.linalg.eigvalsh(A.T @ A)[-1], 0.0)))
    scale = np.ldexp(1.0, -e)
    S = np.zeros((A.shape[1], A.shape[1]))
    for lo in range(0, A.shape[0], SCALED_ROWS):
        H = A[lo:lo + SCALED_ROWS] * scale
        S += H.T @ H
    return float(np.sqrt(max(np.linalg.eigvalsh(S)[-1], 0.0))) / scale


def gram_spectral_norm(grams: list) -> float:
    """``||G||_2`` from the p x p Grams of groups of G's columns (their sum is ``G G'``)."""
    if not grams or not np.size(grams[0]):
        return 0.0
    return float(np.sqrt(max(np.linalg.eigvalsh(np.sum(grams, axis=0))[-1], 0.0)))


class Trace(NormPenalty):
    r"""Trace (nuclear) norm: the tasks share a low-dimensional subspace.

    .. math::

        \Omega(W) = \alpha \|W\|_* = \alpha \sum_k \sigma_k(W),

    the sum of the singular values of W. It favours a low-rank W: every task's weight vector
    lies in a common subspace of a few directions (latent features built from the inputs),
    while the tasks weigh those directions differently. Pick it when the tasks are believed
    to depend on a few shared combinations of the features rather than on a few features.
    Solved by proximal gradient (its prox soft-thresholds the singular values); the dual norm
    is the spectral norm, so fits are certified by a duality gap and
    ``alpha_max = ||G0||_2``.

    The fitted estimator also exposes ``singular_values_`` (those of W) and ``rank_`` (their
    number above ``1e-8`` times the largest).

    See Also
    --------
    regmtl.SparseLowRank : Low rank plus sparse task-specific corrections.
    regmtl.L21 : A few shared features instead of a shared subspace.

    References
    ----------
    Argyriou, Evgeniou & Pontil (2008), "Convex multi-task feature learning", Machine Learning
    73(3); Pong, Tseng, Ji & Ye (2010), "Trace norm regularization: reformulations,
    algorithms, and multi-task learning", SIAM Journal on Optimization 20(6).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, Trace
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 10))
    >>> W = np.outer(rng.standard_normal(10), rng.standard_normal(4))  # rank 1
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 4))
    >>> model = MultiTaskRegressor(penalty=Trace(), alpha=0.1).fit(X, Y)
    >>> model.rank_, model.singular_values_.shape
    (1, (4,))
    """

    name = "trace"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha ||D W||_* (the trace norm in the feature metric D)"
    splits_prox = True
    structure_attrs = ("singular_values_", "rank_")
    transfer_strategy = "subspace"
    compare_label = "MTL trace norm"
    spans_subspace = True  # W's columns lie in a few directions: solved over a subspace
    cone_program = "spectral"  # (the pinball loss's barrier: an LMI per task, one p x p Sigma)

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        r = min(n_tasks, n_features)  # the singular values of the p x T matrix W
        return {"singular_values_": ("array", "f", (r,), (0, None)), "rank_": ("int", 0, r)}

    def value(self, V, alpha):
        if not V.size:
            return 0.0
        if is_blocked(V):  # the singular values from the p x p Gram of the blocks
            lam = np.linalg.eigvalsh(small_gram(V))
            return float(alpha * np.sqrt(np.maximum(lam, 0.0)).sum())
        return float(alpha * np.linalg.svd(V, compute_uv=False).sum())

    def prox(self, V, step, alpha):
        return svt(V, step * alpha)

    def prox_summary(self, V):
        """The p x p Gram ``V V'`` of the columns (their sum is W's)."""
        return V @ V.T

    def prox_given(self, V, summary, step, alpha):
        """:meth:`prox` on some tasks' columns, from W's p x p Gram ``summary``."""
        return svt_given_gram(V, summary, step * alpha)

    def dual_norm(self, G: np.ndarray) -> float:
        """The spectral norm ``||G||_2``, dual of the trace norm."""
        return spectral_norm(G)

    def gap_summary(self, V, G):
        """V's R factor (its singular values, ``penalties.base.r_factor``) and
        the p x p Gram ``G G'`` (the spectral norm)."""
        return r_factor(V), G @ G.T

    def gap_given(self, summaries, alpha):
        """``alpha ||V||_*`` and ``min(1, alpha / ||G||_2)``."""
        value = float(alpha * stacked_singular_values([x[0] for x in summaries]).sum())
        return value, norm_scaling(gram_spectral_norm([x[1] for x in summaries]), alpha), 0.0

    def inverse_weights(self, V, alpha, eps):
        """The reweighting of ``alpha ||W||_*`` at W: its inverse weight
        ``(W W' + eps I)^{1/2} / alpha``, one p x p matrix for all tasks."""
        return [("full", spectral_scale(V, eps) / alpha)]

    def structure(self, V, alpha):
        s = np.linalg.svd(V, compute_uv=False)
        rank = int(np.sum(s > 1e-8 * s.max())) if s.size and s.max() > 0 else 0
        return {"singular_values_": s, "rank_": rank}


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """``r (p + T - r)``: the dimension of the p x T matrices of rank r = rank W."""
        return DegreesOfFreedom(count=low_rank_count(np.asarray(W)))


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
    if sigma.size == 0:  # no feature left (an all-zero design): nothing to weigh
        return m
    if n_pos <= k:
        m[pos] = 1.0
        rest = k - n_pos
        if rest > 0:
            m[~pos] = rest / (len(sigma) - n_pos)
        return m
    # sum_i clip(tau s_i - eta, 0, 1) is piecewise linear and nondecreasing in tau: entry i adds
    # slope s_i from tau = eta / s_i and becomes the constant 1 at tau = (1 + eta) / s_i. With
    # the kinks sorted, cumulative slopes and offsets give the sum on every piece; solve the
    # linear equation on the piece where it crosses k (exact, O(T log T) time, O(T) memory)
    s = sigma[pos]
    knots = np.concatenate([eta / s, (1.0 + eta) / s])
    d_slope = np.concatenate([s, -s])
    d_off = np.concatenate([np.full(s.size, -eta), np.full(s.size, 1.0 + eta)])
    order = np.argsort(knots, kind="stable")
    knots, slope, off = knots[order], np.cumsum(d_slope[order]), np.cumsum(d_off[order])
    at_knots = slope * knots + off  # the sum just after each kink
    i = int(np.searchsorted(at_knots, k))  # first kink where the sum reaches k
    if i == 0:
        tau = knots[0]
    else:
        tau = (k - off[i - 1]) / slope[i - 1] if slope[i - 1] > 0 else knots[i - 1]
    for _ in range(2):  # the same equation from the entries themselves: no rounding of sums
        v = tau * s - eta
        active, full = (v > 0.0) & (v < 1.0), v >= 1.0
        if s[active].sum() > 0:
            tau = (k - full.sum() + eta * active.sum()) / s[active].sum()
    return np.clip(tau * sigma - eta, 0.0, 1.0)


class _CappedSpectral(Penalty):
    r"""``alpha eta (1 + eta) min_M tr(W_s^T (eta I + M)^{-1} W_s)`` over ``0 <= M <= I``,
    ``tr M = k``, with M on one side of W: ``W_s = W^T`` (M in S^T, the tasks: ``Clustered``)
    or ``W_s = W`` (M in S^p, the features: ``SharedStructure``).

    Only the singular values sigma of W enter: the optimal M shares the singular vectors of W
    on its side, with eigenvalues ``cluster_weights`` over the n = T or p singular values of
    that side (the n - rank zeros included), and the value is
    ``alpha eta (1 + eta) sum_i sigma_i^2 / (eta + m_i)``. The subclasses set ``_axis`` (the
    axis of W that M acts on) and the structure they expose.
    """

    has_dual = False
    homogeneity = 2.0  # (quadratic in W for every M)
    _param_names = ("k", "eta")
    #: the axis of W (p x T) whose space M acts on: 1 the tasks, 0 the features
    _axis = 1
    #: what k counts, for messages
    _k_text = "number of clusters"

    def __init__(self, k: int = 2, eta: float = 1.0):
        self.k = k
        self.eta = eta

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        n = (n_features, n_tasks)[self._axis]
        side = ("features", "tasks")[self._axis]
        if not isinstance(self.k, numbers.Integral) or not (1 <= self.k <= n):
            raise ValueError(
                f"k must be an integer {self._k_text} in 1..{n} (the number of {side}); "
                f"got {self.k!r}."
            )
        check_positive(self.eta, "eta")
        if self.eta > 1e100:
            # eta (1 + eta) overflows near 1e154, and well before that the penalty is the ridge
            # alpha (1 + eta) ||W||_F^2 to working precision (eta dwarfs every m_i <= 1).
            raise ValueError(
                f"eta={self.eta!r} is beyond 1e100, where this penalty's arithmetic no longer "
                f"holds; at such eta it equals a ridge of weight alpha * (1 + eta): use "
                f"penalty='l2' with that alpha, or a smaller eta."
            )
        return self

    def _scale(self, alpha: float) -> float:
        return alpha * self.eta * (1.0 + self.eta)

    def _sigma_all(self, V: np.ndarray) -> np.ndarray:
        """All n singular values of W on M's side (zeros appended beyond min(p, T)); on W
        held in task blocks elsewhere from its p x p Gram (the only summary that travels)."""
        if is_blocked(V):
            lam = np.linalg.eigvalsh(small_gram(V))[::-1][:min(V.shape)]
            s = np.sqrt(np.maximum(lam, 0.0))
        else:
            s = np.linalg.svd(V, compute_uv=False)
        return np.concatenate([s, np.zeros(V.shape[self._axis] - s.size)])

    def value(self, V, alpha):
        s = self._sigma_all(V)
        m = cluster_weights(s, self.eta, self.k)
        return float(self._scale(alpha) * np.sum(s**2 / (self.eta + m)))

    def prox(self, V, step, alpha):
        # min over X, M of ||X - V||^2 / 2 + step * c tr(X_s^T (eta I + M)^{-1} X_s): for a fixed
        # M x_i = sigma_i (eta + m_i) / (eta + m_i + 2 step c); eliminating x leaves
        # sum_i step c sigma_i^2 / (eta + 2 step c + m_i), minimized by cluster_weights.
        p, T = V.shape
        # the singular pairs from the small side's Gram: W = U S V', shrunk to U X V'; on W
        # held in task blocks elsewhere from the p x p Gram whatever the shape (the p x p
        # map U diag(x / s) U' then applied where the blocks are)
        tasks_side = T <= p and not is_blocked(V)
        lam, E = np.linalg.eigh(V.T @ V if tasks_side else small_gram(V) if is_blocked(V)
                                else V @ V.T)
        f = self._shrink_factors(lam, p, T, step, alpha)
        return (V @ E) * f @ E.T if tasks_side else ((E * f) @ E.T) @ V if is_blocked(V) \
            else (E * f) @ (E.T @ V)

    def _shrink_factors(self, lam: np.ndarray, p: int, T: int, step: float,
                        alpha: float) -> np.ndarray:
        """The prox's factors ``x_i / sigma_i`` on the eigenvectors of W's Gram on one side
        (eigenvalues ``lam``, ascending) for W of shape p x T."""
        two_sc = 2.0 * step * self._scale(alpha)
        s = np.sqrt(np.maximum(lam, 0.0))
        r = min(p, T)  # (the p x p Gram of a wide W: its p - T smallest are zeros)
        s_all = np.concatenate([s[s.size - r:], np.zeros((p, T)[self._axis] - r)])
        m = np.zeros(s.size)
        m[s.size - r:] = cluster_weights(s_all, self.eta + two_sc, self.k)[:r]
        x = s * (self.eta + m) / (self.eta + m + two_sc)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, x / s, 0.0)

    splits_prox = True

    def prox_summary(self, V):
        """The p x p Gram ``V V'`` of the columns, their count in an extra corner entry
        (both summed over the groups: W's Gram and its number of tasks)."""
        p = V.shape[0]
        S = np.zeros((p + 1, p + 1))
        S[:p, :p] = V @ V.T
        S[p, p] = V.shape[1]
        return S

    def prox_given(self, V, summary, step, alpha):
        """:meth:`prox` on some tasks' columns, from :meth:`prox_summary` summed over all."""
        p = V.shape[0]
        lam, E = np.linalg.eigh(summary[:p, :p])
        f = self._shrink_factors(lam, p, int(round(summary[p, p])), step, alpha)
        return ((E * f) @ E.T) @ V

    def side_factors(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The optimal M by its factors ``(E, m, m0)``: ``M = E diag(m) E^T + m0 (I - E E^T)``,
        E (n x r, r = min(p, T)) the singular vectors of W on M's side (right ones for the
        tasks, left ones for the features), m their eigenvalues, m0 the eigenvalue on the
        complement (0.0 when r = n). Singular values below ``max(p, T) eps sigma_max`` are
        taken as zeros (so the budget they get is spread evenly, not by rounding noise)."""
        W = np.asarray(W, dtype=np.float64)
        n = W.shape[self._axis]
        U, s, Vt = np.linalg.svd(W, full_matrices=False)
        if s.size:
            s = np.where(s <= max(W.shape) * np.finfo(float).eps * s[0], 0.0, s)
        m_all = cluster_weights(np.concatenate([s, np.zeros(n - s.size)]), self.eta, self.k)
        m0 = float(m_all[s.size]) if n > s.size else 0.0
        E = Vt.T if self._axis == 1 else U
        return np.ascontiguousarray(E), m_all[:s.size].copy(), m0


class Clustered(_CappedSpectral):
    r"""Clustered multi-task learning: the tasks form about ``k`` groups of similar weights.

    .. math::

        \Omega(W) = \alpha\, \eta (1 + \eta) \min_{M} \operatorname{tr}\big(W (\eta I + M)^{-1}
        W^\top\big) \quad \text{over } M \in \mathbb{S}^T,\ 0 \preceq M \preceq I,\
        \operatorname{tr} M = k,

    the convex relaxation of k-means clustering of the task weight vectors (Zhou, Chen & Ye
    2011; MALSAR's CMTL). Tasks in one cluster are pulled towards their cluster's mean, and
    ``eta > 0`` sets how strongly all weights are also shrunk towards 0 (MALSAR's
    ``rho2 / rho1``). Pick it when the tasks fall into a few unknown groups (e.g. regions,
    product lines) within which they behave alike.

    The optimal M shares the eigenvectors of ``W^T W``, its eigenvalues given by a bisection
    (``cluster_weights``); the prox shrinks the singular values of W jointly with that choice.
    The penalty has no tractable conjugate and no ``alpha_max``, so fits certify with the KKT
    residual (``kkt_residual_``) and paths use a grid around the data's scale.

    The fitted estimator exposes the optimal M by its factors, in O(T p) memory:
    ``cluster_vectors_`` (V, T x r with r = min(p, T): the right singular vectors of W),
    ``cluster_weights_`` (m, the r eigenvalues of M on them) and ``cluster_rest_`` (m_0, its
    eigenvalue on the orthogonal complement, where W vanishes), so that
    ``M = V diag(m) V^T + m_0 (I - V V^T)``; ``task_clusters_`` (k-means, ``random_state=0``,
    of the tasks embedded by the k leading eigenvectors of M, each scaled by the square root of
    its eigenvalue; one label per task). ``cluster_matrix_`` forms the dense T x T matrix on
    request, for T <= ``MAX_DENSE_CLUSTER_MATRIX`` (5000) tasks only.

    Parameters
    ----------
    k : int, default=2
        Number of clusters, 1 <= k <= T.
    eta : float, default=1.0
        Ratio of the shrinkage towards 0 to the pull towards the cluster means, > 0.

    See Also
    --------
    regmtl.MeanRegularized : One cluster (every task near the mean task).
    regmtl.task_relatedness : Clusters of tasks from independent fits, before fitting this.

    References
    ----------
    Zhou, Chen & Ye (2011), "Clustered multi-task learning via alternating structure
    optimization", NeurIPS 24; Jacob, Bach & Vert (2008), "Clustered multi-task learning: a
    convex formulation", NeurIPS 21.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Clustered, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 10))
    >>> w1, w2 = rng.standard_normal(10), rng.standard_normal(10)
    >>> W = np.column_stack([w1, w1, w1, w2, w2, w2]) + 0.05 * rng.standard_normal((10, 6))
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 6))
    >>> model = MultiTaskRegressor(penalty=Clustered(k=2), alpha=0.1).fit(X, Y)
    >>> labels = model.task_clusters_
    >>> sorted(np.flatnonzero(labels == c).tolist() for c in set(labels.tolist()))
    [[0, 1, 2], [3, 4, 5]]
    >>> model.cluster_vectors_.shape, model.cluster_matrix_.shape
    ((6, 6), (6, 6))
    """

    name = "clustered"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha eta (1 + eta) min_M tr(D W (eta I + M)^{-1} W^T D) (feature metric D)"
    structure_attrs = ("cluster_vectors_", "cluster_weights_", "cluster_rest_",
                       "task_clusters_")
    transfer_strategy = "cluster"

    def on_classes(self, layout: Any) -> Penalty:
        """Refused: on the classes' layout its clusters would gather class columns of any
        label, and a class of one task is not a task."""
        raise ValueError(
            "Clustered does not fit the multinomial loss (a task with more than two "
            "classes): its clusters would gather the class columns of all tasks whatever "
            "their class. Use MeanRegularized or GraphLaplacian (each class pulled towards "
            "the same class of the other tasks), 'l21' or 'trace'.")

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The nearest cluster's mean, weight ``2 (1 + eta)``."""
        return [SharedPart("cluster", None, 2.0 * (1.0 + float(self.eta)))]

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        # M by its factors (V: T x r, m: r, m0); "cluster_matrix_" (the dense T x T M) is
        # what files of regmtl before the factors held: still read, turned into factors
        T = n_tasks
        return {"cluster_vectors_": ("array", "f", (T, range(T + 1))),
                "cluster_weights_": ("array", "f", (range(T + 1),)),
                "cluster_rest_": ("float",), "cluster_matrix_": ("array", "f", (T, T)),
                "task_clusters_": ("array", "iu", (T,), (0, T - 1))}

    def cluster_factors(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The optimal M of the penalty's inner minimization, by its factors (O(T p) memory).

        With the thin SVD ``W = U S V^T`` (r = min(p, T) singular values, zeros included;
        those below ``max(p, T) * eps * sigma_max`` are taken as zeros) and
        ``m`` the minimizing eigenvalues of ``cluster_weights`` over all T singular values
        (the T - r that vanish beyond the thin SVD share one value ``m_0``: the bisection's
        ``clip(tau * 0 - eta, 0, 1) = 0``, or the even share of the budget left when fewer
        than k singular values are positive),
        ``M = V diag(m) V^T + m_0 (I - V V^T)``.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients (column t = task t).

        Returns
        -------
        V : ndarray of shape (T, r)
            Orthonormal columns: the right singular vectors of W.
        m : ndarray of shape (r,)
            The eigenvalues of M on them (``0 <= m_i <= 1``).
        m0 : float
            The eigenvalue of M on the orthogonal complement of V (0.0 when r = T).
        """
        return self.side_factors(W)

    def cluster_matrix(self, W: np.ndarray) -> np.ndarray:
        """The optimal M of the penalty's inner minimization for given coefficients (dense).

        Formed from :meth:`cluster_factors`; it is T x T, so only for
        T <= ``MAX_DENSE_CLUSTER_MATRIX`` (5000) tasks.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients (column t = task t).

        Returns
        -------
        ndarray of shape (T, T)
            ``M = Q diag(m) Q^T`` with ``W^T W = Q diag(sigma^2) Q^T`` and ``m`` the
            minimizing eigenvalues (``0 <= m_i <= 1``, ``sum_i m_i = k``).

        Raises
        ------
        ValueError
            If T > ``MAX_DENSE_CLUSTER_MATRIX``: use :meth:`cluster_factors`.
        """
        T = np.shape(W)[1]
        if T > MAX_DENSE_CLUSTER_MATRIX:
            raise ValueError(
                f"cluster_matrix: M is {T} x {T}, more than MAX_DENSE_CLUSTER_MATRIX = "
                f"{MAX_DENSE_CLUSTER_MATRIX} tasks; use cluster_factors (V, m, m0: "
                "M = V diag(m) V^T + m0 (I - V V^T)).")
        return _dense(*self.cluster_factors(W))

    def structure(self, V, alpha) -> dict[str, Any]:
        from sklearn.cluster import KMeans

        Q, m, m0 = self.cluster_factors(V)
        T = Q.shape[0]
        k = int(self.k)
        if k == 1 or T <= k:
            labels = np.zeros(T, dtype=np.int64) if k == 1 else np.arange(T, dtype=np.int64)
        else:
            # the k leading eigenpairs of M among V's columns (stable order: deterministic on
            # ties); the complement's eigenvectors (eigenvalue m0, where W vanishes) carry no
            # information on the tasks and are left out when they would tie into the top k
            top = np.argsort(-m, kind="stable")[:k]
            emb = Q[:, top] * np.sqrt(np.maximum(m[top], 0.0))
            labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)
        return {"cluster_vectors_": Q, "cluster_weights_": m, "cluster_rest_": m0,
                "task_clusters_": labels.astype(np.int64)}


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        r"""``tr((D + alpha K (x) P)^{-1} D)`` at the fitted M, the penalty's Hessian there:
        ``K = 2 eta (1 + eta) (eta I + M)^{-1}``, applied through the factors of M,
        ``(eta I + M)^{-1} = I / (eta + m0) + V diag(1 / (eta + m) - 1 / (eta + m0)) V^T``
        (from ``structure``'s ``cluster_vectors_``, ``cluster_weights_``, ``cluster_rest_``,
        or a dense ``cluster_matrix_`` of older structures, else from W)."""
        structure = structure or {}
        if "cluster_vectors_" in structure:
            V = np.asarray(structure["cluster_vectors_"])
            m = np.asarray(structure["cluster_weights_"])
            m0 = float(structure["cluster_rest_"])
        elif structure.get("cluster_matrix_") is not None:
            m, V = np.linalg.eigh(np.asarray(structure["cluster_matrix_"]))
            m0 = 0.0
        else:
            V, m, m0 = self.cluster_factors(W)
        eta = float(self.eta)
        scale = 2.0 * eta * (1.0 + eta)
        c0 = 1.0 / (eta + m0)
        d = 1.0 / (eta + m) - c0

        def apply(X: np.ndarray) -> np.ndarray:
            return scale * (c0 * X + ((X @ V) * d) @ V.T)

        return DegreesOfFreedom(smoother=TaskCoupling(float(alpha), apply,
                                                      scale * (c0 + (V * V) @ d)))


class SharedStructure(_CappedSpectral):
    r"""Convex alternating structure optimization: the tasks share a k-dimensional predictive
    subspace of the features.

    .. math::

        \Omega(W) = \alpha\, \eta (1 + \eta) \min_{M} \operatorname{tr}\big(W^\top
        (\eta I + M)^{-1} W\big) \quad \text{over } M \in \mathbb{S}^p,\
        0 \preceq M \preceq I,\ \operatorname{tr} M = k,

    the convex relaxation of alternating structure optimization (Ando & Zhang 2005), where each
    task's weights are ``w_t = u_t + Theta^T v_t`` with ``Theta`` (k x p, orthonormal rows) a
    shared structure: the relaxation replaces ``Theta^T Theta`` by M (Chen, Tang, Liu & Ye 2009;
    MALSAR's cASO). The weights are pulled towards a common k-dimensional subspace of the
    features, and ``eta > 0`` sets how strongly they are also shrunk towards 0 (MALSAR's
    ``rho2 / rho1``). Pick it when the tasks are believed to use a few shared combinations of
    the features, with a soft (not exact) rank.

    It is :class:`Clustered` with M on the features instead of the tasks: the optimal M shares
    the left singular vectors of W, its eigenvalues those of ``cluster_weights`` over the p
    singular values (the p - rank zeros included), so k ranges over 1..p, and the two
    penalties are equal wherever ``k <= min(p, T)`` (Zhou, Chen & Ye 2011). The same prox;
    no tractable conjugate and no ``alpha_max``: fits certify with the KKT residual
    (``kkt_residual_``) and paths use a grid around the data's scale.

    The fitted estimator exposes ``shared_subspace_`` (p x k, orthonormal columns: the k
    leading eigenvectors of the optimal M, i.e. ``Theta^T`` in ASO's terms) and
    ``subspace_weights_`` (their k eigenvalues in M, decreasing, each in [0, 1]).

    Parameters
    ----------
    k : int, default=2
        Dimension of the shared subspace, 1 <= k <= p (the number of features).
    eta : float, default=1.0
        Ratio of the shrinkage towards 0 to the pull towards the shared subspace, > 0.

    See Also
    --------
    regmtl.Trace : A shared subspace of unspecified dimension (the nuclear norm).
    regmtl.Clustered : The same penalty with M on the tasks: clusters of tasks.

    References
    ----------
    Chen, Tang, Liu & Ye (2009), "A convex formulation for learning shared structures from
    multiple tasks", ICML; Ando & Zhang (2005), "A framework for learning predictive
    structures from multiple tasks and unlabeled data", JMLR 6; Zhou, Chen & Ye (2011),
    "Clustered multi-task learning via alternating structure optimization", NeurIPS 24.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import subspace_angles
    >>> from regmtl import MultiTaskRegressor, SharedStructure
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 12))
    >>> Theta = np.linalg.qr(rng.standard_normal((12, 2)))[0]  # a 2-dim subspace
    >>> W = Theta @ rng.standard_normal((2, 8))
    >>> Y = X @ W + 0.1 * rng.standard_normal((100, 8))
    >>> model = MultiTaskRegressor(penalty=SharedStructure(k=2, eta=0.1), alpha=0.1).fit(X, Y)
    >>> model.shared_subspace_.shape
    (12, 2)
    >>> bool(np.degrees(subspace_angles(model.shared_subspace_, Theta)).max() < 5)
    True
    """

    name = "shared_structure"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha eta (1 + eta) min_M tr(W^T D (eta I + M)^{-1} D W) (feature metric D)"
    _axis = 0
    _k_text = "dimension of the shared subspace"
    structure_attrs = ("shared_subspace_", "subspace_weights_")
    #: the subspace of W; its alpha weighs a quadratic, not a trace norm: chosen by CV
    transfer_strategy = "subspace"
    transfer_alpha = False

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        p = n_features
        return {"shared_subspace_": ("array", "f", (p, range(p + 1))),
                "subspace_weights_": ("array", "f", (range(p + 1),))}

    def subspace(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The shared subspace of coefficients: the k leading eigenvectors of the optimal M.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients (column t = task t).

        Returns
        -------
        Theta : ndarray of shape (p, k)
            Orthonormal columns: the left singular vectors of W of the k largest eigenvalues
            of M (completed, beyond the min(p, T) singular vectors, by an orthonormal basis
            of their complement, where M's eigenvalue is the same for every direction).
        m : ndarray of shape (k,)
            Their eigenvalues in M, decreasing.
        """
        E, m, m0 = self.side_factors(W)
        k = int(self.k)
        order = np.argsort(-m, kind="stable")[:k]
        Theta, weights = E[:, order], m[order]
        extra = k - order.size
        if extra > 0:  # k > min(p, T): the rest from the complement of E (eigenvalue m0)
            from scipy.linalg import qr

            Z = np.eye(E.shape[0], k)
            Z -= E @ (E.T @ Z)
            Q = qr(Z, mode="economic", pivoting=True)[0]
            Theta = np.column_stack([Theta, Q[:, :extra]])
            weights = np.concatenate([weights, np.full(extra, m0)])
        return np.ascontiguousarray(Theta), weights

    def structure(self, V, alpha) -> dict[str, Any]:
        Theta, m = self.subspace(V)
        return {"shared_subspace_": Theta, "subspace_weights_": m}


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        r"""``sum_t tr((D_t + R)^{-1} D_t)``: at the fitted M the penalty is
        ``alpha eta (1 + eta) sum_t w_t^T (eta I + M)^{-1} w_t``, separable over the tasks,
        its Hessian ``R = 2 alpha eta (1 + eta) (eta I + M)^{-1}`` one p x p block for every
        task (M by its factors)."""
        W = np.asarray(W)
        p = W.shape[0]
        E, m, m0 = self.side_factors(W)
        eta = float(self.eta)
        c0 = 1.0 / (eta + m0)
        R = (E * (1.0 / (eta + m) - c0)) @ E.T
        R[np.diag_indices(p)] += c0
        R *= 2.0 * alpha * eta * (1.0 + eta)
        return DegreesOfFreedom(smoother=FeatureRidge(R))


def _dense(V: np.ndarray, m: np.ndarray, m0: float) -> np.ndarray:
    """``V diag(m) V^T + m0 (I - V V^T)`` as a dense T x T matrix."""
    M = (V * (np.asarray(m) - m0)) @ V.T
    M[np.diag_indices_from(M)] += m0
    return M


def dense_cluster_matrix(attrs: dict[str, Any]) -> np.ndarray:
    """An estimator's ``cluster_matrix_`` from its fitted factors (T <= 5000 tasks).

    Parameters
    ----------
    attrs : dict
        The estimator's attributes (``vars(estimator)``).

    Returns
    -------
    ndarray of shape (T, T)
        ``M = V diag(m) V^T + m0 (I - V V^T)`` from ``cluster_vectors_`` (V),
        ``cluster_weights_`` (m) and ``cluster_rest_`` (m0).

    Raises
    ------
    AttributeError
        If the estimator was not fitted with ``Clustered``, or T > ``MAX_DENSE_CLUSTER_MATRIX``
        (the message names the factors to use instead).
    """
    if "cluster_vectors_" not in attrs:
        raise AttributeError("cluster_matrix_ is set by fits with the Clustered penalty only.")
    V = attrs["cluster_vectors_"]
    T = V.shape[0]
    if T > MAX_DENSE_CLUSTER_MATRIX:
        raise AttributeError(
            f"cluster_matrix_ is the dense {T} x {T} matrix M, formed only for up to "
            f"MAX_DENSE_CLUSTER_MATRIX = {MAX_DENSE_CLUSTER_MATRIX} tasks. Use its factors: "
            "cluster_vectors_ (V), cluster_weights_ (m) and cluster_rest_ (m0), "
            "M = V diag(m) V^T + m0 (I - V V^T).")
    return _dense(V, attrs["cluster_weights_"], float(attrs["cluster_rest_"]))
