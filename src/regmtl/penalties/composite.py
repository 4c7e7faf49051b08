r"""Dirty models: W = P + Q, a shared structure plus a task-specific one.

====================================  ============================================
penalty                               Omega over V = (P, Q), W = P + Q
====================================  ============================================
``Dirty(own_weight=g)``               alpha (sum_j ||P_j||_2 + g ||Q||_1)
``SparseLowRank(sparse_weight=g)``    alpha (||Q||_* + g ||P||_1)
``RobustLowRank(outlier_weight=g)``   alpha (||P||_* + g sum_t ||Q_:t||_2)
``RobustFeatures(outlier_weight=g)``  alpha (sum_j ||P_j||_2 + g sum_t ||Q_:t||_2)
====================================  ============================================

(Jalali et al. 2010; Chen, Liu & Ye 2012; Chen, Zhou & Ye 2011; Gong, Ye & Zhang 2012.)

As functions of W these are infimal convolutions, whose conjugate is the sum of the two parts'
conjugates: both dual-norm balls at once. Fits certify with a duality gap, and
``alpha_max = max(N1*(G0), N2*(G0) / g)``. The dirty model is row-separable in W (each row's
infimal convolution), so it is solved in W by block coordinate descent and split afterwards;
the others work on the lifted variable ``V`` of shape (2, p, T) (``V[0] = P``,
``V[1] = Q``). In the two robust models ``Q`` is column-sparse: its nonzero columns are the
outlier tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    DIRTY_ROWS,
    BlockStep,
    NormPenalty,
    Penalty,
    SharedPart,
    check_positive,
    entry_scale,
    inner,
    is_blocked,
    norm_scaling,
    r_factor,
    small_gram,
    spectral_scale,
    stacked_singular_values,
    svt,
    svt_given_gram,
)
from .class_groups import ClassBlockPenalty, blocked_norms, blocked_spread
from .dof import DegreesOfFreedom, low_rank_count, nonzero_count
from .spectral import gram_spectral_norm, spectral_norm
from .working_set import SparseLowRankOnWorkingSet

__all__ = ["Dirty", "SparseLowRank", "RobustLowRank", "RobustFeatures", "ClassDirty",
           "ClassSparseLowRank", "ClassRobustLowRank", "ClassRobustFeatures"]


def _soft(V: np.ndarray, thr: float) -> np.ndarray:
    return np.sign(V) * np.maximum(np.abs(V) - thr, 0.0)


def _row_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", V, V))


def _col_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->j", V, V))


def _shrink(nrm: np.ndarray, thr: float) -> np.ndarray:
    """The group soft-thresholding factors ``max(1 - thr / ||v||, 0)``."""
    big = nrm > thr  # (the quotient of the rest never formed: lazy on blocks elsewhere)
    return np.where(big, 1.0 - thr / np.where(big, nrm, 1.0), 0.0)


def _group_soft(V: np.ndarray, thr: float) -> np.ndarray:
    """Group soft-thresholding of the rows."""
    return V * _shrink(_row_norms(V), thr)[:, None]


def _column_soft(V: np.ndarray, thr: float) -> np.ndarray:
    """Group soft-thresholding of the columns."""
    return V * _shrink(_col_norms(V), thr)[None, :]


def _clip_scale(A: np.ndarray, b: float, r: float) -> np.ndarray:
    """Per row of ``A >= 0``: the ``s >= 0`` with ``||min(s A_j, b)||_2 = r``, or inf when even
    every nonzero entry at ``b`` stays within ``r`` (exact: with the k largest entries clipped
    the norm is ``sqrt(k b^2 + s^2 sum_{rest} a^2)``; the consistent k is found by sorting,
    or on A held in blocks elsewhere by ``_clip_scale_blocks``)."""
    if is_blocked(A):
        return _clip_scale_blocks(A, b, r)
    p, T = A.shape
    S = -np.sort(-A, axis=1)  # decreasing
    tail = np.cumsum((S * S)[:, ::-1], axis=1)[:, ::-1]  # tail[:, k] = sum_{i >= k} S_i^2
    k = np.arange(T)
    num = r * r - k * b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        cand = np.sqrt(num / tail)
        prev = np.concatenate([np.full((p, 1), np.inf), S[:, :-1]], axis=1)  # S_{k-1}
        ok = (num > 0) & (tail > 0) & (cand * S <= b * (1 + 1e-12)) & (
            cand * prev >= b * (1 - 1e-12))
    ok[:, 0] |= False
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    s = np.full(p, np.inf)
    has = first >= 0
    s[has] = cand[has, first[has]]
    return s


def _clip_scale_blocks(A: Any, b: float, r: float) -> np.ndarray:
    r""":func:`_clip_scale` of A held in task blocks elsewhere, from per-row sums only (no
    row gathered in one place): starting at ``s_0 = r / ||A_j||`` (nothing clipped, so
    ``phi(s_0) <= r^2`` for ``phi(s) = sum_t min(s a_t, b)^2``), each step counts the entries
    clipped at ``s`` (``K``) and the squares of the others (``S``), and solves
    ``K b^2 + s^2 S = r^2`` for the next ``s``. That quadratic bounds ``phi`` from above
    beyond ``s``, so the steps increase, stay at or below the root, and clip more entries
    each time until none changes: the root exactly (the same equation as in memory), after
    at most as many steps as the row has distinct entries (a few in practice; one round trip
    of 3 p numbers each, the largest entry left unclipped telling when a step is the last:
    often at ``s_0`` itself)."""
    p, T = A.shape
    A2 = A * A
    first = np.asarray(np.stack([(A > 0).sum(axis=1), A2.sum(axis=1), A.max(axis=1)]),
                       dtype=np.float64)
    nz, total, top = first
    s = np.full(p, np.inf)
    rows = (total > 0) & (nz * b * b >= r * r)  # (else inf: all of the row at b within r)
    with np.errstate(divide="ignore"):
        s[rows] = r / np.sqrt(total[rows])
    live = rows & (np.where(rows, s, 0.0) * top >= b)  # (none clipped at s_0: the root)
    for _ in range(T + 1):  # (each step clips at least one more entry)
        if not live.any():
            break
        at = np.where(live, s, 0.0)[:, None]
        clip = at * A >= b
        kept = np.where(clip, 0.0, A)
        sums = np.asarray(np.stack([clip.sum(axis=1), (kept * kept).sum(axis=1),
                                    kept.max(axis=1)]), dtype=np.float64)
        K, S, top = sums
        with np.errstate(divide="ignore", invalid="ignore"):
            nxt = np.where(S > 0, np.sqrt(np.maximum(r * r - K * b * b, 0.0) / S), s)
        moved = live & (nxt > s)
        s[moved] = nxt[moved]
        live = moved & (np.where(moved, nxt, 0.0) * top >= b)  # (none left clips: the root)
    return s


def _top(x: Any) -> float:
    """The largest entry of norms ``x >= 0`` (0 for none), also of x held in blocks
    elsewhere (one round trip)."""
    return float(x.max()) if x.size else 0.0


def _blocked_maxima(*arrays: Any) -> tuple[float, ...]:
    """The maxima of arrays held in blocks elsewhere, brought home in one round trip."""
    return tuple(float(m) for m in np.asarray(np.stack([a.max() for a in arrays])))


class _Decomposition(NormPenalty):
    """``W = P + Q`` with ``alpha (N1(P) + g N2(Q))`` (the weight g on one of the two parts)."""

    _param_names: tuple[str, ...] = ()
    structure_attrs = ("P_", "Q_")
    sums_parts = True  # W = P + Q: ADMM over the parts (solvers/parts/parts_admm.py)

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        return {"P_": ("array", "f", (n_tasks, n_features)),
                "Q_": ("array", "f", (n_tasks, n_features))}

    def lift(self, W):
        return np.stack([W, np.zeros_like(W)])

    def compose(self, V):
        return V[0] + V[1]

    def spread(self, G):
        return np.stack([G, G])


    def structure(self, V, alpha):
        return {"P_": np.ascontiguousarray(V[0].T), "Q_": np.ascontiguousarray(V[1].T)}

    def structure_on(self, V, alpha, rows):
        """The parts' rows written into zero (T, p) arrays: no (2, p, T) variable formed
        (a subclass with attributes of its own reads the whole variable)."""
        if type(self).structure is not _Decomposition.structure:
            return super().structure_on(V, alpha, rows)
        out = {}
        for name, part in zip(("P_", "Q_"), V, strict=True):
            out[name] = np.zeros((V.shape[-1], rows.size))
            out[name][:, rows] = part.T
        return out

    def variable(self, structure):
        if "P_" not in structure or "Q_" not in structure:
            return None
        return np.stack([np.atleast_2d(structure["P_"]).T, np.atleast_2d(structure["Q_"]).T])

    def _weight(self) -> float:
        return check_positive(getattr(self, self._param_names[0]), self._param_names[0])

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._weight()
        return self


class Dirty(NormPenalty):
    r"""Dirty model: features shared by all tasks plus task-specific exceptions.

    .. math::

        W = P + Q, \qquad
        \Omega = \alpha \Big(\sum_j \|P_j\|_2 + \gamma \|Q\|_1\Big),
        \qquad \gamma = \texttt{own\_weight},

    minimized over both parts (Jalali, Ravikumar, Sanghavi & Ruan 2010). P is row-sparse:
    features selected jointly, as by :class:`~regmtl.L21`; Q is entrywise sparse: a task may
    use a feature the others do not. A large ``own_weight`` forbids exceptions (the L2,1
    model); a small one lets every task pick its own features (the L1 model). Pick it when
    most relevant features are common to the tasks but a few tasks have features of their
    own, so that neither L2,1 nor L1 fits.

    As a function of W the penalty is an infimal convolution, row by row,
    :math:`\Omega(W) = \alpha \sum_j \min_{P_j + Q_j = W_j} (\|P_j\|_2 + \gamma \|Q_j\|_1)`,
    whose dual ball is the intersection of both parts' balls (rows of norm at most 1 and
    entries at most ``gamma``): it is row-separable, so it is solved by block coordinate
    descent over features (working sets, gap-safe screening; proximal Newton for the logistic
    loss), and the optimal split of each row follows from its dual point. Fits are certified
    by a duality gap and ``alpha_max = max(max_j ||G0_j||_2, max_jt |G0_jt| / own_weight)``.
    The fitted estimator also exposes ``P_`` and ``Q_`` (T x p, like ``coef_``, with
    ``coef_ = P_ + Q_``).

    Parameters
    ----------
    own_weight : float, default=1.0
        Weight ``gamma > 0`` of the task-specific part ``Q`` relative to the shared part.

    See Also
    --------
    regmtl.L21 : Shared features only.
    regmtl.SparseLowRank : A shared subspace plus sparse exceptions.

    References
    ----------
    Jalali, Ravikumar, Sanghavi & Ruan (2010), "A dirty model for multi-task learning",
    NeurIPS 23.

    Examples
    --------
    Features 0 and 1 matter in every task, feature 5 in the last task only:

    >>> import numpy as np
    >>> from regmtl import Dirty, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 8))
    >>> W = np.zeros((8, 4))
    >>> W[:2] = 1.0
    >>> W[5, 3] = 2.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 4))
    >>> model = MultiTaskRegressor(penalty=Dirty(own_weight=0.6), alpha=0.05).fit(X, Y)
    >>> [np.flatnonzero(q).tolist() for q in model.Q_]  # the exceptions
    [[], [], [], [5]]
    >>> bool(np.allclose(model.coef_, model.P_ + model.Q_))
    True
    """

    name = "dirty"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = (
        "alpha (sum_j d_j ||P_j||_2 + g sum_jt d_j |Q_jt|) (both parts by rows and entries)")
    _param_names = ("own_weight",)
    structure_attrs = ("P_", "Q_")
    transfer_strategy = "support"

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        return {"P_": ("array", "f", (n_tasks, n_features)),
                "Q_": ("array", "f", (n_tasks, n_features))}

    def __init__(self, own_weight: float = 1.0):
        self.own_weight = own_weight

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The shared rows' support (``d_j = ||P_j||_2``, reported as ``shared_support``) and
        the task exceptions' (``d_j = mean_t |Q_jt|``, weight ``own_weight``)."""
        return [SharedPart("support", np.linalg.norm(V[0], axis=1), info="shared_support"),
                SharedPart("support", np.abs(V[1]).mean(axis=1), float(self.own_weight))]

    def _weight(self) -> float:
        return check_positive(self.own_weight, "own_weight")

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._weight()
        return self

    def on_classes(self, layout: Any) -> Penalty:
        """Its exceptions grouped per feature and task over the task's classes
        (:class:`~regmtl.penalties.composite.ClassDirty`)."""
        return ClassDirty(self.own_weight, layout.first, layout.sizes)

    def _dual_rows(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the maximizer ``g`` of ``<g, W_j>`` over the unit dual ball (norm at most
        1, entries at most gamma) and the scale ``s`` with ``g = clip(s W_j)`` (inf when every
        entry is clipped)."""
        gam = self._weight()
        s = _clip_scale(np.abs(W), gam, 1.0)
        with np.errstate(invalid="ignore"):
            G = np.sign(W) * np.minimum(s[:, None] * np.abs(W), gam)
        return np.nan_to_num(G), s

    def value(self, V, alpha):
        G, _ = self._dual_rows(V)
        return float(alpha * inner(G, V))

    def lazy_value(self, V, alpha):
        """:meth:`value`; on W held in blocks elsewhere ``alpha <g, W>`` left lazy (the rows'
        scales come home first, ``_clip_scale_blocks``)."""
        if not is_blocked(V):
            return self.value(V, alpha)
        G, _ = self._dual_rows(V)
        return alpha * inner(G, V)

    def split(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The optimal ``(P, Q)`` with ``W = P + Q``: ``P_j = g_j / s_j``, the shared part
        parallel to the row's dual point; ``Q`` is nonzero only where the dual point sits on
        the entrywise bound, ``Q_jt = sign(W_jt) (|W_jt| - gamma / s_j)`` there."""
        gam = self._weight()
        s = _clip_scale(np.abs(W), gam, 1.0)[:, None]
        A = np.abs(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            over = np.where(np.isfinite(s), A - gam / s, A)
        Q = np.where(over > 0, np.sign(W) * over, 0.0)
        return W - Q, Q

    def prox(self, V, step, alpha):
        # Moreau: V minus its projection onto step * alpha * (dual ball), row by row
        b, r = step * alpha * self._weight(), step * alpha
        u = np.minimum(_clip_scale(np.abs(V), b, r), 1.0)
        return V - np.sign(V) * np.minimum(u[:, None] * np.abs(V), b)

    def bcd_params(self, alpha):
        return BlockStep(alpha, alpha * self._weight(), DIRTY_ROWS)

    def dual_norm(self, G: np.ndarray) -> float:
        """``max(max_j ||G_j||_2, max_jt |G_jt| / own_weight)``."""
        g = self._weight()
        if is_blocked(G):  # the two maxima in one round trip
            rows, entries = _blocked_maxima(_row_norms(G), np.abs(G)) if G.size else (0.0, 0.0)
            return float(max(rows, entries / g))
        return float(max(_row_norms(G).max(initial=0.0), np.abs(G).max(initial=0.0) / g))


    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per row: the distance from ``G_j`` to ``alpha`` times the subdifferential: to the
        dual point of the row where ``W_j != 0``, to the dual ball where ``W_j = 0``."""
        D, _ = self._dual_rows(W)
        out = _row_norms(G - alpha * D)
        zero = ~np.any(W != 0.0, axis=1)
        if zero.any():
            out[zero] = _row_norms(self.prox(G[zero], 1.0, alpha))
        return out

    def active_gradient(self, W: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(D, mask)``: on the nonzero rows the gradient of Omega, ``alpha`` times the row's
        dual point (unique there), and the mask of those rows; 0 elsewhere."""
        G, _ = self._dual_rows(W)
        mask = np.repeat(np.any(W != 0.0, axis=1)[:, None], W.shape[1], axis=1)
        return np.where(mask, alpha * G, 0.0), mask

    def directional_derivative(self, W: np.ndarray, D: np.ndarray, alpha: float) -> float:
        """The right derivative of ``t -> Omega(W + t D)`` at ``t = 0``."""
        G, _ = self._dual_rows(W)
        zero = ~np.any(W != 0.0, axis=1)
        return float(alpha * np.vdot(G[~zero], D[~zero])) + self.value(D[zero], alpha)

    def structure(self, V, alpha):
        P, Q = self.split(V)
        return {"P_": np.ascontiguousarray(P.T), "Q_": np.ascontiguousarray(Q.T)}

    def variable(self, structure):
        if "P_" not in structure or "Q_" not in structure:
            return None
        return (np.atleast_2d(structure["P_"]) + np.atleast_2d(structure["Q_"])).T


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """The nonzero entries of W (the shared rows and the task-specific entries)."""
        return DegreesOfFreedom(count=nonzero_count(W))


class SparseLowRank(_Decomposition):
    r"""Sparse plus low rank: a subspace shared by the tasks plus sparse corrections.

    .. math::

        W = P + Q, \qquad
        \Omega = \alpha \big(\|Q\|_* + \gamma \|P\|_1\big),
        \qquad \gamma = \texttt{sparse\_weight},

    minimized over both parts (Chen, Liu & Ye 2012). Q is low-rank, as fitted by
    :class:`~regmtl.Trace`: the tasks share a few directions; P is entrywise sparse: a task
    may deviate from the shared subspace on a few features. A large ``sparse_weight`` forbids
    deviations (the trace-norm model). Pick it when the tasks share latent structure but a
    few tasks or features do not follow it.

    Solved over the pair ``(P, Q)`` (ADMM for the squared loss, else FISTA; on wide or sparse
    tasks with another smooth loss, Q over a growing subspace beside P on a working set of
    features, each restricted problem in Gram form), certified by a duality gap (the
    conjugate is the indicator of both dual balls), with
    ``alpha_max = max(||G0||_2, max_jt |G0_jt| / sparse_weight)``. The fitted estimator also
    exposes ``P_`` (the sparse part) and ``Q_`` (the low-rank part), T x p like ``coef_``,
    with ``coef_ = P_ + Q_``.

    Parameters
    ----------
    sparse_weight : float, default=1.0
        Weight ``gamma > 0`` of the sparse part ``P`` relative to the low-rank part.

    See Also
    --------
    regmtl.Trace : The low-rank part alone.
    regmtl.Dirty : Shared features plus sparse exceptions.

    References
    ----------
    Chen, Liu & Ye (2012), "Learning incoherent sparse and low-rank patterns from multiple
    tasks", ACM Transactions on Knowledge Discovery from Data 5(4).

    Examples
    --------
    A rank-one W plus one large entry (feature 6 in task 1):

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, SparseLowRank
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 8))
    >>> W = np.outer(rng.standard_normal(8), rng.standard_normal(4))
    >>> W[6, 1] += 3.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 4))
    >>> model = MultiTaskRegressor(penalty=SparseLowRank(0.7), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(p).tolist() for p in model.P_]  # the sparse part
    [[], [6], [], []]
    >>> int(np.linalg.matrix_rank(model.Q_, tol=1e-6))  # the low-rank part
    1
    """

    name = "sparse_lowrank"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha (||D Q||_* + g sum_jt d_j |P_jt|) (the low-rank part in the metric D)"
    _param_names = ("sparse_weight",)
    transfer_strategy = "subspace"
    compare_label = "MTL sparse + low-rank"
    spans_subspace_and_entries = True  # Q over a subspace, P over a working set of features

    def __init__(self, sparse_weight: float = 1.0):
        self.sparse_weight = sparse_weight

    def on_classes(self, layout: Any) -> Penalty:
        """The sparse part grouped per feature and task over the task's classes
        (:class:`~regmtl.penalties.composite.ClassSparseLowRank`)."""
        return ClassSparseLowRank(self.sparse_weight, layout.first, layout.sizes)

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The low-rank part's subspace and the sparse part's support (``d_j = mean_t
        |P_jt|``, weight ``sparse_weight``)."""
        return [SharedPart("subspace", V[1]),
                SharedPart("support", np.abs(V[0]).mean(axis=1), float(self.sparse_weight))]

    def lift(self, W):
        return np.stack([np.zeros_like(W), W])

    def on_working_set(self, n_entries: int) -> Penalty:
        """The penalty of ``M = [P_F; C]``, the sparse part's rows on ``n_entries`` features
        above the low-rank part's coordinates in an orthonormal basis
        (``penalties/working_set.py``: the problems of the subspace row)."""
        return SparseLowRankOnWorkingSet(n_entries, self._weight())

    def value(self, V, alpha):
        if is_blocked(V):
            return float(self.lazy_value(V, alpha))
        g = self._weight()
        nuc = np.linalg.svd(V[1], compute_uv=False).sum() if V[1].size else 0.0
        return float(alpha * (nuc + g * np.abs(V[0]).sum()))

    def lazy_value(self, V, alpha):
        """:meth:`value`; on parts held in blocks elsewhere the sparse part's sum left lazy
        and the trace norm from the p x p Gram of the low-rank part (its only summary)."""
        if not is_blocked(V):
            return self.value(V, alpha)
        g = self._weight()
        lam = np.linalg.eigvalsh(small_gram(V[1])) if V[1].size else np.zeros(0)
        nuc = float(np.sqrt(np.maximum(lam, 0.0)).sum())
        return alpha * (nuc + g * np.abs(V[0]).sum())

    def prox(self, V, step, alpha):
        g = self._weight()
        return np.stack([_soft(V[0], step * alpha * g), svt(V[1], step * alpha)])

    splits_prox = True

    def prox_summary(self, V):
        """The low-rank part's p x p Gram (the sparse part's prox is by entries)."""
        return V[1] @ V[1].T

    def prox_given(self, V, summary, step, alpha):
        """:meth:`prox` on some tasks' columns, the low-rank part's Gram ``summary``."""
        g = self._weight()
        return np.stack([_soft(V[0], step * alpha * g),
                         svt_given_gram(V[1], summary, step * alpha)])

    def gap_summary(self, V, G):
        """The low-rank part's R factor, the sparse part's ``sum |P_jt|``, G's p x p Gram and
        its largest entry."""
        return (r_factor(V[1]), float(np.abs(V[0]).sum()), G @ G.T,
                float(np.abs(G).max(initial=0.0)))

    def gap_given(self, summaries, alpha):
        """:meth:`value` and the norm's scaling, from the groups' summaries."""
        g = self._weight()
        nuc = stacked_singular_values([x[0] for x in summaries]).sum()
        value = float(alpha * (nuc + g * sum(x[1] for x in summaries)))
        m = max(gram_spectral_norm([x[2] for x in summaries]),
                max(x[3] for x in summaries) / g)
        return value, norm_scaling(m, alpha), 0.0

    def dual_norm(self, G: np.ndarray) -> float:
        """``max(||G||_2, max_jt |G_jt| / sparse_weight)``: the dual norm at ``alpha = 1``."""
        g = self._weight()
        spec = spectral_norm(G)
        if is_blocked(G):
            return float(max(spec, float(np.abs(G).max()) / g)) if G.size else 0.0
        return float(max(spec, np.abs(G).max(initial=0.0) / g))

    def inverse_weights(self, V, alpha, eps):
        """The reweighting at (P, Q): ``[|P_jt|_eps / (alpha g)]`` per entry and
        ``[(Q Q' + eps I)^{1/2} / alpha]``."""
        return [("diag", entry_scale(V[0], eps) / (alpha * self._weight())),
                ("full", spectral_scale(V[1], eps) / alpha)]


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """``r (p + T - r)`` of the low-rank part ``Q_`` plus the nonzero entries of the
        sparse part ``P_`` (from ``structure``; W taken as low rank where it is missing)."""
        structure = structure or {}
        p, T = np.shape(W)
        P = np.asarray(structure.get("P_", np.zeros((T, p))))
        Q = np.asarray(structure.get("Q_", np.asarray(W).T))
        return DegreesOfFreedom(count=low_rank_count(Q.T) + nonzero_count(P))


class _Robust(_Decomposition):
    """``W = P + Q`` with ``alpha (N(P) + g sum_t ||Q_:t||_2)``: a shared part P plus a
    column-sparse part Q whose nonzero columns are the outlier tasks. A subclass gives the
    shared norm N: ``_shared_value(P)``, ``_shared_prox(P, thr)`` (the prox of ``thr N``) and
    ``_shared_dual_norm(G)``."""

    _param_names = ("outlier_weight",)
    structure_attrs = ("P_", "Q_", "outlier_tasks_")

    @classmethod
    def saved_structure(cls, n_tasks, n_features):
        return {**super().saved_structure(n_tasks, n_features),
                "outlier_tasks_": ("array", "iu", (range(n_tasks + 1),), (0, n_tasks - 1))}

    def value(self, V, alpha):
        g = self._weight()
        return float(alpha * (self._shared_value(V[0]) + g * _col_norms(V[1]).sum()))

    def prox(self, V, step, alpha):
        g = self._weight()
        return np.stack([self._shared_prox(V[0], step * alpha),
                         _column_soft(V[1], step * alpha * g)])

    splits_prox = True  # (the outlier part's prox is by task)

    def prox_summary(self, V):
        """The shared part's summary over the tasks (``_shared_summary``)."""
        return self._shared_summary(V[0])

    def prox_given(self, V, summary, step, alpha):
        """:meth:`prox` on some tasks' columns, the shared part's from ``summary``."""
        g = self._weight()
        return np.stack([self._shared_prox_given(V[0], summary, step * alpha),
                         _column_soft(V[1], step * alpha * g)])

    def dual_norm(self, G: np.ndarray) -> float:
        """The dual norm of the penalty at ``alpha = 1``: the larger of the shared part's dual
        norm and ``max_t ||G_:t||_2 / outlier_weight``."""
        g = self._weight()
        return float(max(self._shared_dual_norm(G), _top(_col_norms(G)) / g))

    def gap_summary(self, V, G):
        """The shared part's summaries (``_shared_gap_summary``), the outlier part's sum of
        column norms and G's largest column norm."""
        return (*self._shared_gap_summary(V[0], G), float(_col_norms(V[1]).sum()),
                _top(_col_norms(G)))

    def gap_given(self, summaries, alpha):
        """:meth:`value` and the norm's scaling, from the groups' summaries."""
        g = self._weight()
        shared, m = self._shared_gap_given([x[:2] for x in summaries])
        value = float(alpha * (shared + g * sum(x[2] for x in summaries)))
        return value, norm_scaling(max(m, max(x[3] for x in summaries) / g), alpha), 0.0

    def on_classes(self, layout: Any) -> Penalty:
        """An outlier is a task with all its classes
        (:class:`~regmtl.penalties.composite.ClassRobustLowRank`,
        :class:`~regmtl.penalties.composite.ClassRobustFeatures`)."""
        form = ClassRobustLowRank if isinstance(self, RobustLowRank) else ClassRobustFeatures
        return form(self.outlier_weight, layout.first, layout.sizes)

    def outlier_tasks(self, V: np.ndarray) -> np.ndarray:
        """The positions of the tasks whose column of the outlier part ``Q = V[1]`` is
        nonzero."""
        return np.flatnonzero(np.any(V[1] != 0.0, axis=0))

    def structure(self, V, alpha):
        return {**super().structure(V, alpha), "outlier_tasks_": self.outlier_tasks(V)}

    def _outlier_weights(self, Q: np.ndarray, alpha: float, eps: float) -> np.ndarray:
        """The reweighting of ``alpha g sum_t ||Q_:t||`` at Q: ``||Q_:t||_eps / (alpha g)``
        for every entry of column t."""
        scale = entry_scale(_col_norms(Q), eps) / (alpha * self._weight())
        return np.broadcast_to(scale[None, :], Q.shape).copy()


class RobustLowRank(_Robust):
    r"""Robust multi-task learning: a subspace shared by most tasks, plus outlier tasks.

    .. math::

        W = P + Q, \qquad
        \Omega = \alpha \Big(\|P\|_* + \gamma \sum_{t=1}^{T} \|Q_{:t}\|_2\Big),
        \qquad \gamma = \texttt{outlier\_weight},

    minimized over both parts (Chen, Zhou & Ye 2011; MALSAR's ``Least_RMTL``). P is low-rank,
    as fitted by :class:`~regmtl.Trace`: the tasks share a few directions; Q is column-sparse:
    a task whose weights do not lie in the shared subspace gets a column of its own, and the
    nonzero columns are the outlier tasks. Pick it when most tasks share latent structure but
    some are unrelated to the others and would distort a plain trace-norm fit.

    Since :math:`\|Q\|_* \leq \sum_t \|Q_{:t}\|_2 \leq \sqrt{T} \|Q\|_*`, both parts are used
    only for :math:`1/\sqrt{T} < \gamma < 1`: :math:`\gamma \geq 1` gives the trace-norm model
    (``Q = 0``), :math:`\gamma \leq 1/\sqrt{T}` makes every task an outlier (``P = 0``, the
    column group lasso).

    Solved over the pair ``(P, Q)`` (ADMM for the squared loss, proximal Newton for the
    logistic loss), certified by a duality gap (the conjugate is the indicator of both dual
    balls), with
    ``alpha_max = max(||G0||_2, max_t ||G0_:t||_2 / outlier_weight)``. The fitted estimator
    also exposes ``P_`` (the low-rank shared part) and ``Q_`` (the outlier part), T x p like
    ``coef_``, with ``coef_ = P_ + Q_``, and ``outlier_tasks_``: the positions (in
    ``tasks_``) of the tasks whose row of ``Q_`` is nonzero.

    Parameters
    ----------
    outlier_weight : float, default=0.8
        Weight ``gamma > 0`` of the outlier part ``Q`` relative to the low-rank part. An
        inlier task t stays out of ``Q`` only if the norm of its row in the shared part's
        right singular vectors is below ``gamma`` (their squares sum to the rank r, about
        ``r / T`` each), so the default flags only tasks that fit the subspace clearly worse
        than the others.

    See Also
    --------
    regmtl.Trace : The low-rank part alone.
    regmtl.RobustFeatures : Shared features, plus outlier tasks.
    regmtl.SparseLowRank : A shared subspace plus entrywise sparse deviations.

    References
    ----------
    Chen, Zhou & Ye (2011), "Integrating low-rank and group-sparse structures for robust
    multi-task learning", KDD.

    Examples
    --------
    Eight tasks share one direction, except task 2, which follows a direction of its own:

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, RobustLowRank
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 10))
    >>> W = np.outer(rng.standard_normal(10), rng.uniform(1, 2, 8))
    >>> W[:, 2] = 2 * rng.standard_normal(10)
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 8))
    >>> model = MultiTaskRegressor(penalty=RobustLowRank(0.6), alpha=0.2).fit(X, Y)
    >>> model.outlier_tasks_.tolist()
    [2]
    >>> int(np.linalg.matrix_rank(model.P_, tol=1e-6))  # the shared part
    1
    """

    name = "robust_lowrank"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha (||D P||_* + g sum_t ||D Q_:t||_2) (feature metric D)"
    transfer_strategy = "subspace"
    compare_label = "MTL robust low-rank"

    def __init__(self, outlier_weight: float = 0.8):
        self.outlier_weight = outlier_weight

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The shared part's subspace (a new task is taken to be an inlier)."""
        return [SharedPart("subspace", V[0])]

    def _shared_value(self, P: np.ndarray) -> float:
        if is_blocked(P) and P.size:  # the singular values from the p x p Gram of the blocks
            return float(np.sqrt(np.maximum(np.linalg.eigvalsh(small_gram(P)), 0.0)).sum())
        return float(np.linalg.svd(P, compute_uv=False).sum()) if P.size else 0.0

    def _shared_prox(self, P: np.ndarray, thr: float) -> np.ndarray:
        return svt(P, thr)

    def _shared_summary(self, P: np.ndarray) -> np.ndarray:
        return P @ P.T  # (the p x p Gram: summed over the tasks' groups)

    def _shared_prox_given(self, P: np.ndarray, S: np.ndarray, thr: float) -> np.ndarray:
        return svt_given_gram(P, S, thr)

    def _shared_dual_norm(self, G: np.ndarray) -> float:
        return spectral_norm(G)

    def _shared_gap_summary(self, P: np.ndarray, G: np.ndarray) -> tuple:
        return r_factor(P), G @ G.T

    def _shared_gap_given(self, summaries: list) -> tuple[float, float]:
        """``(||P||_*, ||G||_2)`` from the groups' R factors and Grams."""
        return (float(stacked_singular_values([x[0] for x in summaries]).sum()),
                gram_spectral_norm([x[1] for x in summaries]))

    def inverse_weights(self, V: np.ndarray, alpha: float,
                        eps: float) -> list[tuple[str, np.ndarray]]:
        """The reweighting at (P, Q): ``[(P P' + eps I)^{1/2} / alpha]`` and
        ``[||Q_:t||_eps / (alpha g)]`` per column."""
        return [("full", spectral_scale(V[0], eps) / alpha),
                ("diag", self._outlier_weights(V[1], alpha, eps))]


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """``r (p + T_in - r) + p k``: the p x T matrices whose columns on the ``T_in`` inlier
        tasks have rank r (that of the low-rank part ``P_`` there) and whose ``k`` outlier
        columns (the nonzero rows of ``Q_``) are free."""
        structure = structure or {}
        p, T = np.shape(W)
        P = np.asarray(structure.get("P_", np.asarray(W).T)).T
        Q = np.asarray(structure.get("Q_", np.zeros((T, p)))).T
        outlier = np.any(Q != 0.0, axis=0)
        return DegreesOfFreedom(
            count=low_rank_count(P[:, ~outlier]) + p * int(np.count_nonzero(outlier)))


class RobustFeatures(_Robust):
    r"""Robust multi-task feature learning: features selected jointly, plus outlier tasks.

    .. math::

        W = P + Q, \qquad
        \Omega = \alpha \Big(\sum_{j=1}^{p} \|P_j\|_2
        + \gamma \sum_{t=1}^{T} \|Q_{:t}\|_2\Big),
        \qquad \gamma = \texttt{outlier\_weight},

    minimized over both parts (Gong, Ye & Zhang 2012; MALSAR's ``Least_rMTFL``). P is
    row-sparse, as fitted by :class:`~regmtl.L21`: a feature is kept for all tasks or dropped
    for all; Q is column-sparse: a task that does not use the shared features gets a column of
    its own, and the nonzero columns are the outlier tasks. Pick it when most tasks are driven
    by the same few features but some are not, and would otherwise pull irrelevant features
    into the shared set.

    Since :math:`\sum_j \|Q_j\|_2 \leq \|Q\|_1 \leq \sqrt{p} \sum_t \|Q_{:t}\|_2` (and the
    same with :math:`\sqrt{T}` the other way round), both parts are used only for
    :math:`1/\sqrt{T} < \gamma < \sqrt{p}`: :math:`\gamma \geq \sqrt{p}` gives the L2,1 model
    (``Q = 0``), :math:`\gamma \leq 1/\sqrt{T}` makes every task an outlier (``P = 0``, the
    column group lasso).

    Solved over the pair ``(P, Q)`` (ADMM for the squared loss, proximal Newton for the
    logistic loss), certified by a duality gap (the conjugate is the indicator of both dual
    balls), with
    ``alpha_max = max(max_j ||G0_j||_2, max_t ||G0_:t||_2 / outlier_weight)``. The fitted
    estimator also exposes ``P_`` (the shared, row-sparse part) and ``Q_`` (the outlier part),
    T x p like ``coef_``, with ``coef_ = P_ + Q_``, and ``outlier_tasks_``: the positions (in
    ``tasks_``) of the tasks whose row of ``Q_`` is nonzero.

    Parameters
    ----------
    outlier_weight : float, default=1.0
        Weight ``gamma > 0`` of the outlier part ``Q`` relative to the shared part.

    See Also
    --------
    regmtl.L21 : The shared features alone.
    regmtl.Dirty : Shared features plus entrywise exceptions.
    regmtl.RobustLowRank : A shared subspace, plus outlier tasks.

    References
    ----------
    Gong, Ye & Zhang (2012), "Robust multi-task feature learning", KDD.

    Examples
    --------
    Features 0 to 2 drive eight tasks, except task 4, which uses features 6 to 11:

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, RobustFeatures
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 12))
    >>> W = np.zeros((12, 8))
    >>> W[:3] = rng.uniform(1, 2, (3, 8))
    >>> W[:3, 4] = 0.0
    >>> W[6:, 4] = 1.5
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 8))
    >>> model = MultiTaskRegressor(penalty=RobustFeatures(1.0), alpha=0.2).fit(X, Y)
    >>> model.outlier_tasks_.tolist()
    [4]
    >>> np.flatnonzero(np.any(model.P_ != 0, axis=0)).tolist()  # the shared features
    [0, 1, 2]
    """

    name = "robust_features"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = (
        "alpha (sum_j d_j ||P_j||_2 + g sum_t ||D Q_:t||_2) (rows; the outlier tasks in the "
        "metric D)")
    transfer_strategy = "support"

    def __init__(self, outlier_weight: float = 1.0):
        self.outlier_weight = outlier_weight

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The shared rows' support, ``d_j = ||P_j||_2`` (a new task is taken to be an
        inlier)."""
        return [SharedPart("support", np.linalg.norm(V[0], axis=1))]

    def _shared_value(self, P: np.ndarray) -> float:
        return float(_row_norms(P).sum())

    def _shared_prox(self, P: np.ndarray, thr: float) -> np.ndarray:
        return _group_soft(P, thr)

    def _shared_summary(self, P: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", P, P)  # (the rows' sums of squares)

    def _shared_prox_given(self, P: np.ndarray, S: np.ndarray, thr: float) -> np.ndarray:
        return P * _shrink(np.sqrt(S), thr)[:, None]

    def _shared_dual_norm(self, G: np.ndarray) -> float:
        return _top(_row_norms(G))

    def _shared_gap_summary(self, P: np.ndarray, G: np.ndarray) -> tuple:
        return np.einsum("ij,ij->i", P, P), np.einsum("ij,ij->i", G, G)

    def _shared_gap_given(self, summaries: list) -> tuple[float, float]:
        """``(sum_j ||P_j||, max_j ||G_j||)`` from the rows' sums of squares."""
        pp = np.sum([x[0] for x in summaries], axis=0)
        gg = np.sum([x[1] for x in summaries], axis=0)
        return float(np.sqrt(pp).sum()), float(np.sqrt(gg).max(initial=0.0))

    def inverse_weights(self, V: np.ndarray, alpha: float,
                        eps: float) -> list[tuple[str, np.ndarray]]:
        """The reweighting at (P, Q): ``[||P_j||_eps / alpha]`` per row and
        ``[||Q_:t||_eps / (alpha g)]`` per column."""
        rows = entry_scale(_row_norms(V[0]), eps) / alpha
        return [("diag", np.broadcast_to(rows[:, None], V[0].shape).copy()),
                ("diag", self._outlier_weights(V[1], alpha, eps))]


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """The nonzero entries of W: the shared rows on the inlier tasks plus the outlier
        tasks' columns."""
        return DegreesOfFreedom(count=nonzero_count(W))


class ClassSparseLowRank(ClassBlockPenalty, SparseLowRank):
    r""":class:`~regmtl.SparseLowRank` on the classes' layout of the multinomial loss: its
    sparse part grouped per feature and task over the task's classes :math:`B_t`,

    .. math::

        \Omega = \alpha \Big(\|Q\|_* + \gamma \sum_t \sum_j \|P_{j B_t}\|_2\Big);

    its dual norm is ``max(||G||_2, max_{t,j} ||G_{j B_t}||_2 / gamma)``. Built by
    ``SparseLowRank(g).on_classes(layout)``.
    """

    _param_names = ("sparse_weight", "first", "sizes")
    spans_subspace_and_entries = False  # (its sparse part is grouped over classes)
    # (on Dask: not split over FISTA's groups, whose columns do not say their tasks' classes;
    # each prox on the blocks of whole tasks, the groups where they are, the low-rank part
    # from its p x p Gram: ``class_groups.blocked_norms``)
    splits_prox = False

    def __init__(self, sparse_weight: float = 1.0, first: Any = (), sizes: Any = ()):
        self.sparse_weight = sparse_weight
        self.first = first
        self.sizes = sizes

    def value(self, V, alpha):
        if is_blocked(V):
            return float(self.lazy_value(V, alpha))
        g = self._weight()
        nuc = np.linalg.svd(V[1], compute_uv=False).sum() if V[1].size else 0.0
        return float(alpha * (nuc + g * self._norms(V[0]).sum()))

    def lazy_value(self, V, alpha):
        """:meth:`value`; on parts held in chunks of whole tasks the groups' norms summed
        where they are (lazy) and the trace norm from the low-rank part's p x p Gram."""
        if not is_blocked(V):
            return self.value(V, alpha)
        lam = np.linalg.eigvalsh(small_gram(V[1])) if V[1].size else np.zeros(0)
        nuc = float(np.sqrt(np.maximum(lam, 0.0)).sum())
        return alpha * (nuc + self._weight() * self._norms(V[0]).sum())

    def prox(self, V, step, alpha):
        g = self._weight()
        P = V[0] * self._spread(_shrink(self._norms(V[0]), step * alpha * g))
        return np.stack([P, svt(V[1], step * alpha)])

    def dual_norm(self, G: np.ndarray) -> float:
        """``max(||G||_2, max_{t,j} ||G_{j B_t}||_2 / sparse_weight)``."""
        if is_blocked(G):
            return float(max(spectral_norm(G), _top(self._norms(G)) / self._weight()))
        return float(max(spectral_norm(G), self._norms(G).max(initial=0.0) / self._weight()))

    def lazy_dual_scaling(self, G, alpha):
        """On G held in chunks of whole tasks, :meth:`dual_scaling` lazy: the spectral norm
        from G's p x p Gram, the groups' largest norm where they are."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        m = np.maximum(spectral_norm(G), self._norms(G).max() / self._weight())
        return alpha / np.maximum(m, alpha)

    def inverse_weights(self, V, alpha, eps):
        """As ``SparseLowRank.inverse_weights``, the sparse part's weight
        ``||P_{j B_t}||_eps / (alpha g)`` on every entry of its group."""
        scale = self._spread(entry_scale(self._norms(V[0]), eps)) / (alpha * self._weight())
        return [("diag", scale), ("full", spectral_scale(V[1], eps) / alpha)]


class _ClassOutliers:
    """The outlier part of the robust models on the classes' layout:
    ``g sum_t ||Q_{:B_t}||_F``, a task with all its classes (``first``, ``sizes``) is an
    outlier or not."""

    registered = False
    # (on Dask: each prox on the blocks of whole tasks, an outlier task's classes where they
    # are, the shared part as in ``_Robust``; see ClassSparseLowRank)
    splits_prox = False
    _param_names = ("outlier_weight", "first", "sizes")

    def __init__(self, outlier_weight: float = 0.8, first: Any = (), sizes: Any = ()):
        self.outlier_weight = outlier_weight
        self.first = first
        self.sizes = sizes

    def on_classes(self, layout: Any) -> Penalty:
        """Itself: it already acts on the classes' layout."""
        return self

    def _task_norms(self, Q: np.ndarray) -> np.ndarray:
        """``||Q_{:B_t}||_F`` per task, shape (T,) (lazy, chunk by chunk, on Q held in chunks
        of whole tasks)."""
        if is_blocked(Q):
            N = blocked_norms(Q, self.first, self.sizes)
            return np.sqrt((N * N).sum(axis=0))
        return np.sqrt(np.add.reduceat(np.einsum("ij,ij->j", Q, Q),
                                       np.asarray(self.first, dtype=np.int64)))

    def _spread(self, s: np.ndarray) -> np.ndarray:
        if is_blocked(s):
            return blocked_spread(s, self.first, self.sizes)
        return np.repeat(s, np.asarray(self.sizes, dtype=np.int64))

    def value(self, V, alpha):
        if is_blocked(V):
            return float(self.lazy_value(V, alpha))
        g = self._weight()
        return float(alpha * (self._shared_value(V[0]) + g * self._task_norms(V[1]).sum()))

    def lazy_value(self, V, alpha):
        """:meth:`value`; on parts held in chunks of whole tasks a lazy scalar (the shared
        part's as ``_shared_lazy_value``, the outliers' norms where they are)."""
        if not is_blocked(V):
            return self.value(V, alpha)
        g = self._weight()
        return alpha * (self._shared_lazy_value(V[0]) + g * self._task_norms(V[1]).sum())

    def lazy_dual_scaling(self, G, alpha):
        """On G held in chunks of whole tasks, :meth:`dual_scaling` lazy."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        m = np.maximum(self._shared_lazy_dual_norm(G),
                       self._task_norms(G).max() / self._weight())
        return alpha / np.maximum(m, alpha)

    def prox(self, V, step, alpha):
        g = self._weight()
        Q = V[1] * self._spread(_shrink(self._task_norms(V[1]), step * alpha * g))[None, :]
        return np.stack([self._shared_prox(V[0], step * alpha), Q])

    def dual_norm(self, G: np.ndarray) -> float:
        """The larger of the shared part's dual norm and ``max_t ||G_{:B_t}||_F / g``."""
        return float(max(self._shared_dual_norm(G),
                         _top(self._task_norms(G)) / self._weight()))

    def outlier_tasks(self, V: np.ndarray) -> np.ndarray:
        """The positions of the tasks whose block of the outlier part is nonzero."""
        return np.flatnonzero(self._task_norms(V[1]) > 0)

    def _outlier_weights(self, Q: np.ndarray, alpha: float, eps: float) -> np.ndarray:
        scale = self._spread(entry_scale(self._task_norms(Q), eps)) / (alpha * self._weight())
        return np.broadcast_to(scale[None, :], Q.shape).copy()


class ClassRobustLowRank(_ClassOutliers, RobustLowRank):
    """:class:`~regmtl.RobustLowRank` on the classes' layout: the outlier part is
    ``g sum_t ||Q_{:B_t}||_F`` (an outlier task with all its classes). Built by
    ``RobustLowRank(g).on_classes(layout)``."""

    def _shared_lazy_value(self, P):
        return self._shared_value(P)  # (from the p x p Gram, brought home)

    def _shared_lazy_dual_norm(self, G):
        return spectral_norm(G)


class ClassRobustFeatures(_ClassOutliers, RobustFeatures):
    """:class:`~regmtl.RobustFeatures` on the classes' layout: the outlier part is
    ``g sum_t ||Q_{:B_t}||_F`` (an outlier task with all its classes). Built by
    ``RobustFeatures(g).on_classes(layout)``."""

    def _shared_lazy_value(self, P):
        return _row_norms(P).sum()

    def _shared_lazy_dual_norm(self, G):
        return _row_norms(G).max()


class ClassDirty(ClassBlockPenalty, Dirty):
    r""":class:`~regmtl.Dirty` on the classes' layout of the multinomial loss: an exception is a
    feature of a task with all its classes,

    .. math::

        \Omega(W) = \alpha \sum_j \min_{P_j + Q_j = W_j}
        \Big(\|P_j\|_2 + \gamma \sum_t \|Q_{j B_t}\|_2\Big).

    Its row's dual ball is ``{||g||_2 <= 1, ||g_{B_t}||_2 <= gamma for every t}``: the dirty
    model's formulas with each group's norm in place of an entry's magnitude (a group keeps its
    direction). Solved by proximal gradient (not by the entrywise block kernel). Built by
    ``Dirty(g).on_classes(layout)``.
    """

    _param_names = ("own_weight", "first", "sizes")
    # (on Dask: each row's scale from per-row sums of the groups' norms, formed where the
    # chunks of whole tasks are, as the dirty model's from its entries: ``_clip_scale``)

    def __init__(self, own_weight: float = 1.0, first: Any = (), sizes: Any = ()):
        self.own_weight = own_weight
        self.first = first
        self.sizes = sizes

    def _clipped(self, W: np.ndarray, s: np.ndarray, b: float) -> np.ndarray:
        """Each group ``W_g min(s_j, b / ||W_g||)``: the group's norm scaled by the row's
        ``s``, clipped at ``b``."""
        N = self._norms(W)
        on = N > 0  # (no quotient of a zero group: lazy on blocks elsewhere)
        with np.errstate(invalid="ignore"):
            f = np.where(on, np.minimum(s[:, None], b / np.where(on, N, 1.0)), 0.0)
        return W * self._spread(f)

    def _dual_rows(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = _clip_scale(self._norms(W), self._weight(), 1.0)
        return self._clipped(W, s, self._weight()), s

    def split(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The optimal ``(P, Q)``: ``Q_g = W_g (1 - gamma / (s_j ||W_g||))_+``."""
        gam = self._weight()
        s = _clip_scale(self._norms(W), gam, 1.0)[:, None]
        N = self._norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(N > 0, np.maximum(1.0 - gam / (s * N), 0.0), 0.0)
        Q = W * self._spread(f)
        return W - Q, Q

    def prox(self, V, step, alpha):
        b, r = step * alpha * self._weight(), step * alpha
        u = np.minimum(_clip_scale(self._norms(V), b, r), 1.0)
        return V - self._clipped(V, u, b)

    def bcd_params(self, alpha):
        return None

    def dual_norm(self, G: np.ndarray) -> float:
        """``max(max_j ||G_j||_2, max_{t,j} ||G_{j B_t}||_2 / own_weight)``."""
        if is_blocked(G):  # the two maxima in one round trip
            rows, groups = _blocked_maxima(_row_norms(G), self._norms(G)) if G.size else (
                0.0, 0.0)
            return float(max(rows, groups / self._weight()))
        return float(max(_row_norms(G).max(initial=0.0),
                         self._norms(G).max(initial=0.0) / self._weight()))

    def lazy_dual_scaling(self, G, alpha):
        """On G held in chunks of whole tasks, :meth:`dual_scaling` lazy."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        m = np.maximum(_row_norms(G).max(), self._norms(G).max() / self._weight())
        return alpha / np.maximum(m, alpha)
