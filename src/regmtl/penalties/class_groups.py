r"""The entrywise penalties on the classes' layout of the multinomial loss: one group per
feature and task.

On the classes' layout (``regmtl.classes.ClassLayout``) task t holds the columns
:math:`B_t` of W, one per class. An entrywise penalty there would select each class's
features apart (glmnet's ungrouped multinomial); its form on the layout makes feature j's
:math:`K_t` coefficients of task t one group :math:`W_{j B_t}` (glmnet's grouped
multinomial, per task):

.. math::

    \Omega(W) = \alpha \Big(\rho \sum_t \sum_j \|W_{j B_t}\|_2
    + \frac{1 - \rho}{2} \|W\|_F^2\Big)
    \;\Big(+\ \iota_{W \geq 0}(W) \text{ with } \texttt{positive=True}\Big),

the form of ``L1`` (:math:`\rho = 1`) and ``ElasticNet``
(:class:`~regmtl.penalties.class_groups.ClassGroupElastic`). Its prox is the group
soft-thresholding of every :math:`W_{j B_t}` followed by the ridge's shrink (of the positive
part under the sign constraint); the dual norm of the group part is
:math:`\max_{t, j} \|G_{j B_t}\|_2`, so ``alpha_max`` is that of the gradient at 0 over
:math:`\rho`, and the conjugate is
:math:`\sum_{t,j} (\|G_{j B_t}\|_2 - \alpha \rho)_+^2 / (2 \alpha (1 - \rho))`.

The nonconvex entrywise penalties (MCP, SCAD, capped-L1) become
:math:`\sum_t \sum_j \rho(\|W_{j B_t}\|_2)` with their scalar rule :math:`\rho`
(:class:`~regmtl.penalties.class_groups.ClassGroupNonconvex`): the prox keeps each group's
direction and moves its norm by the scalar rule; fits reach a stationary point, certified by
the KKT residual. Every group sum is one ``np.add.reduceat`` over the task blocks of the
columns.

On Dask input W is held in blocks of whole tasks (each chunk along the last axis holds all the
classes of its tasks), so every group lies in one chunk: the groups' norms and their spread
back over the columns are formed chunk by chunk with the chunk's own ``first``/``sizes``
(:func:`chunk_layouts`), nothing gathered and nothing brought to the client; a chunking that
cuts a task (never made by ``regmtl.dask``) is gathered whole first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    NONCONVEX_REFUSAL,
    Penalty,
    as_float,
    check_bool,
    check_ratio,
    inner,
    is_blocked,
)

__all__ = ["ClassGroupElastic", "ClassGroupNonconvex", "ClassBlockPenalty", "block_norms",
           "check_columns", "chunk_layouts"]


def block_norms(W: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``||W_{j B_t}||_2`` for every feature j and task t, shape (p, T): the norms over the
    task blocks of columns that start at ``first``."""
    if W.shape[1] == 0:
        return np.zeros((W.shape[0], 0))
    return np.sqrt(np.add.reduceat(W * W, first, axis=1))


def chunk_layouts(first: Any, sizes: Any, widths: tuple[int, ...]
                  ) -> tuple[tuple[np.ndarray, np.ndarray], ...] | None:
    """Per chunk of ``widths`` columns, the ``(first, sizes)`` of its tasks relative to the
    chunk (its groups); None where a chunk's edge cuts a task's classes."""
    first = np.asarray(first, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(widths, dtype=np.int64)])
    if bounds[-1] != int(sizes.sum()):
        return None
    at = np.searchsorted(first, bounds[:-1])  # the first task of each chunk
    inside = at < first.size
    if not np.all(first[at[inside]] == bounds[:-1][inside]) or np.any(
            np.asarray(widths)[~inside] > 0):
        return None
    ends = np.append(at[1:], first.size)
    return tuple((first[a:b] - c, sizes[a:b]) for a, b, c in zip(at, ends, bounds[:-1],
                                                                   strict=True))


def _task_widths(first: Any, sizes: Any, counts: tuple[int, ...]) -> tuple[int, ...]:
    """The columns of chunks of ``counts`` tasks each."""
    cut = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    edges = np.append(np.asarray(first, dtype=np.int64), int(np.sum(sizes)))[cut]
    return tuple(np.diff(edges).tolist())


def _chunk_norms(block: np.ndarray, layouts: tuple, block_id: Any = None) -> np.ndarray:
    """:func:`block_norms` of one chunk of columns, its groups from ``layouts``."""
    return block_norms(np.asarray(block, dtype=np.float64), layouts[block_id[-1]][0])


def _chunk_spread(block: np.ndarray, layouts: tuple, block_id: Any = None) -> np.ndarray:
    """One chunk's per-task values repeated over the task's classes."""
    return np.repeat(block, layouts[block_id[-1]][1], axis=-1)


def blocked_norms(W: Any, first: Any, sizes: Any) -> Any:
    """:func:`block_norms` of W held in chunks of whole tasks: a lazy (p, T) array in chunks
    of those tasks, each chunk's groups normed where the chunk is (W gathered whole first
    where a chunk's edge cuts a task)."""
    layouts = chunk_layouts(first, sizes, W.chunks[-1])
    if layouts is None:
        W = W.rechunk({W.ndim - 1: -1})
        layouts = chunk_layouts(first, sizes, W.chunks[-1])
    chunks = (*W.chunks[:-1], tuple(f.size for f, _ in layouts))
    return W.map_blocks(_chunk_norms, layouts=layouts, chunks=chunks, dtype=np.float64,
                        meta=np.empty((0,) * W.ndim))


def blocked_spread(S: Any, first: Any, sizes: Any) -> Any:
    """Per-task values (..., T) held in chunks of whole tasks, repeated over each task's
    classes chunk by chunk: a lazy (..., sum_t K_t) array in the matching column chunks."""
    widths = _task_widths(first, sizes, S.chunks[-1])
    layouts = chunk_layouts(first, sizes, widths)
    return S.map_blocks(_chunk_spread, layouts=layouts, chunks=(*S.chunks[:-1], widths),
                        dtype=np.float64, meta=np.empty((0,) * S.ndim))


def check_columns(penalty: Any, n_columns: int) -> Any:
    """The penalty, or a ``ValueError`` when its task blocks (``sizes``) do not hold the
    problem's ``n_columns`` columns."""
    held = int(np.sum(penalty.sizes))
    if held != n_columns:
        raise ValueError(f"{penalty!r}: its task blocks hold {held} columns, the problem "
                         f"{n_columns}.")
    return penalty


class ClassBlockPenalty(Penalty):
    """A penalty on the classes' layout that reads its task blocks: each task's first column
    (``first``) and number of classes (``sizes``), parameters of its subclasses."""

    registered = False
    compare_role = None

    def on_classes(self, layout: Any) -> Penalty:
        """Itself: it already acts on the classes' layout."""
        return self

    def _norms(self, W: np.ndarray) -> np.ndarray:
        """``||W_{j B_t}||_2``, shape (p, T) (lazy, chunk by chunk, on W held in chunks of
        whole tasks: :func:`blocked_norms`)."""
        if is_blocked(W):
            return blocked_norms(W, self.first, self.sizes)
        return block_norms(np.asarray(W, dtype=np.float64), np.asarray(self.first, np.int64))

    def _spread(self, S: np.ndarray) -> np.ndarray:
        """A (p, T) (or (T,)) array per group as (p, sum_t K_t): each task's value on its
        columns (chunk by chunk on S held in chunks of tasks: :func:`blocked_spread`)."""
        if is_blocked(S):
            return blocked_spread(S, self.first, self.sizes)
        return np.repeat(S, np.asarray(self.sizes, dtype=np.int64), axis=-1)


class ClassGroupElastic(ClassBlockPenalty):
    r"""``alpha (rho sum_t sum_j ||W_{j B_t}||_2 + (1 - rho) / 2 ||W||_F^2)``: the elastic net
    whose groups are a feature's coefficients across a task's classes (see the module's text).

    Built by ``L1().on_classes(layout)`` and ``ElasticNet(rho).on_classes(layout)``; not a
    name of ``penalty=``.

    Parameters
    ----------
    l1_ratio : float, default=1.0
        ``rho`` in [0, 1].
    positive : bool, default=False
        Every coefficient constrained ``>= 0``.
    first, sizes : array-like of int
        Each task's first column and number of classes (the layout's ``first``, ``sizes``).
    """

    name = "class_elasticnet"
    _param_names = ("l1_ratio", "positive", "first", "sizes")

    def __init__(self, l1_ratio: float = 1.0, positive: bool = False,
                 first: Any = (), sizes: Any = ()):
        self.l1_ratio = l1_ratio
        self.positive = positive
        self.first = first
        self.sizes = sizes

    @property
    def homogeneity(self) -> float | None:
        """1 for the norm (``l1_ratio=1``), 2 for the ridge (0), None in between."""
        return {1.0: 1.0, 0.0: 2.0}.get(float(self.l1_ratio))

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_ratio(self.l1_ratio, "l1_ratio")
        check_bool(self.positive, "positive")
        return check_columns(self, n_tasks)

    def ridge_part(self, alpha: float) -> float:
        """``alpha (1 - rho)``: the ridge beside the groups of a feature's classes."""
        return float(alpha * (1.0 - self.rho))

    @property
    def rho(self) -> float:
        """``l1_ratio``, validated."""
        return check_ratio(self.l1_ratio, "l1_ratio")

    def _dual_part(self, G: np.ndarray) -> np.ndarray:
        return np.maximum(G, 0.0) if check_bool(self.positive, "positive") else G

    # ------------------------------------------------------------------ objective pieces
    def value(self, V: np.ndarray, alpha: float) -> float:
        if check_bool(self.positive, "positive") and bool((V < 0).any()):
            return float("inf")
        return float(self._value(V, alpha))

    def lazy_value(self, V: Any, alpha: float) -> Any:
        """:meth:`value`, a lazy scalar on V held in chunks of whole tasks (the groups'
        norms summed where the chunks are; ``inf`` off the sign constraint)."""
        if not is_blocked(V):
            return self.value(V, alpha)
        val = self._value(V, alpha)
        if check_bool(self.positive, "positive"):
            val = np.where((V < 0).any(), np.inf, val)
        return val

    def _value(self, V: Any, alpha: float) -> Any:
        rho = self.rho
        val = rho * self._norms(V).sum() if rho > 0 else 0.0
        if rho < 1:
            val = val + 0.5 * (1.0 - rho) * inner(V, V)
        return alpha * val

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """Group soft-thresholding of every ``W_{j B_t}`` at ``step alpha rho`` (of the
        positive part under the sign constraint), then the shrink
        ``1 / (1 + step alpha (1 - rho))``."""
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        V = self._dual_part(as_float(V))  # (on chunks of whole tasks: where they are)
        nrm = self._norms(V)
        big = nrm > thr  # (no quotient of the rest: lazy on chunks elsewhere)
        scale = np.where(big, 1.0 - thr / np.where(big, nrm, 1.0), 0.0) * shrink
        return V * self._spread(scale)

    # ------------------------------------------------------------------ certificates
    def dual_norm(self, G: np.ndarray) -> float:
        r""":math:`\max_{t, j} \|G_{j B_t}\|_2` (of the positive part under the sign
        constraint)."""
        return float(self._norms(self._dual_part(G)).max()) if G.size else 0.0

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float | np.ndarray:
        """1 when the conjugate is finite (rho < 1); else per task the largest scaling of its
        columns into the dual ball (the same factor on every class of a task)."""
        if self.rho < 1.0:
            return 1.0
        N = self._norms(self._dual_part(G))
        m = N.max(axis=0) if N.shape[0] else np.zeros(N.shape[1])
        return self._spread(np.where(m <= alpha, 1.0, alpha / np.maximum(m, alpha))[None])[0]

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``sum_{t,j} (||G_{j B_t}|| - alpha rho)_+^2 / (2 alpha (1 - rho))``, 0 if rho = 1."""
        rho = self.rho
        if rho == 1.0:
            return 0.0
        excess = np.maximum(self._norms(self._dual_part(as_float(G))) - alpha * rho, 0.0)
        return float(np.sum(excess * excess) / (2.0 * alpha * (1.0 - rho)))

    def alpha_max(self, G0: np.ndarray) -> float:
        """``max_{t,j} ||G0_{j B_t}||_2 / rho``: the smallest alpha with W = 0."""
        rho = self.rho
        if rho == 0.0:
            raise ValueError(f"{self!r} has no alpha_max: with l1_ratio=0 no finite alpha "
                             "gives W = 0. Use l1_ratio > 0 or give an explicit alpha grid.")
        return self.dual_norm(G0) / rho

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per group (p, T): the distance from ``G`` (minus the data term's gradient) to the
        subdifferential at W, with ``V = G - alpha (1 - rho) W``: ``max(||V_g|| - l1, 0)`` at
        a zero group (of ``V_+`` under the sign constraint), ``||V_g - l1 W_g / ||W_g|| ||``
        at a nonzero one (its zero entries read ``max(., 0)`` under the constraint)."""
        rho = self.rho
        V = G - alpha * (1.0 - rho) * W
        l1 = alpha * rho
        nw = self._norms(W)
        off = np.maximum(self._norms(self._dual_part(V)) - l1, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            D = V - l1 * W / self._spread(np.where(nw > 0, nw, 1.0))
        if check_bool(self.positive, "positive"):
            D = np.where(W > 0, D, np.maximum(D, 0.0))
        return np.where(nw > 0, self._norms(D), off)


class ClassGroupNonconvex(ClassBlockPenalty):
    r"""``sum_t sum_j rho(||W_{j B_t}||_2)``: a nonconvex entrywise penalty (``inner``: MCP,
    SCAD or capped-L1 with ``group=False``) on the norm of a feature's coefficients across a
    task's classes.

    Built by ``MCP().on_classes(layout)`` (and SCAD's, capped-L1's); not a name of
    ``penalty=``. The scalar rule is the inner penalty's (``magnitude_value``,
    ``magnitude_prox``, ``magnitude_slope``, ``magnitude_kink``).

    Parameters
    ----------
    inner : Penalty
        The entrywise nonconvex penalty.
    first, sizes : array-like of int
        Each task's first column and number of classes.
    """

    name = "class_group_nonconvex"
    has_dual = False
    nonconvex = True
    distributable = False
    blocks_refusal = NONCONVEX_REFUSAL
    _param_names = ("inner", "first", "sizes")

    def __init__(self, inner: Any = None, first: Any = (), sizes: Any = ()):
        self.inner = inner
        self.first = first
        self.sizes = sizes

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self.inner.check(n_features, n_tasks)
        return check_columns(self, n_tasks)

    def ridge_part(self, alpha: float) -> float:
        """0.0: no squared term."""
        return 0.0

    def value(self, V: np.ndarray, alpha: float) -> float:
        return float(np.sum(self.inner.magnitude_value(self._norms(V), alpha)))

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """The exact minimizer: each group keeps its direction, its norm moved by the scalar
        rule."""
        V = np.asarray(V, dtype=np.float64)
        u = self._norms(V)
        s = self.inner.magnitude_prox(u, 1.0 / step, alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(u > 0, s / u, 0.0)
        return V * self._spread(scale)

    def alpha_max(self, G0: np.ndarray) -> float:
        """``max_{t,j} ||G0_{j B_t}||_2``: from it on, W = 0 is a stationary point."""
        return float(self._norms(G0).max()) if G0.size else 0.0

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per group (p, T): the distance from ``G`` to the Clarke subdifferential at W: at 0
        ``max(||G_g|| - alpha, 0)``; else ``||G_g - rho'(s) u_g||`` along the group's
        direction ``u_g`` (at capped-L1's kink the slope is ``clip(<G_g, u_g>, 0, alpha)``)."""
        W = np.asarray(W, dtype=np.float64)
        G = np.asarray(G, dtype=np.float64)
        alpha = float(alpha)
        first = np.asarray(self.first, dtype=np.int64)
        s = block_norms(W, first)
        on = s > 0
        safe = np.where(on, s, 1.0)
        U = W / self._spread(safe)
        c = np.add.reduceat(G * U, first, axis=1) if W.shape[1] else s
        slope = np.where(self.inner.magnitude_kink(s), np.clip(c, 0.0, alpha),
                         self.inner.magnitude_slope(safe, alpha))
        d_on = block_norms(G - self._spread(slope) * U, first)
        return np.where(on, d_on, np.maximum(block_norms(G, first) - alpha, 0.0))
