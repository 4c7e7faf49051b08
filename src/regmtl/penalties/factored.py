r"""A penalty on some rows (or entries) of W only, with box constraints and a ridge weighted
per feature: what penalty factors of zero, bounds and glmnet's convention
(``regmtl.feature_terms``) make of any penalty.

.. math::

    \Omega'(W) = \Omega(W_{\mathcal P}) + \frac{l_2}{2} \sum_{(j,t) \in \mathcal P}
    (r_{jt} - 1) W_{jt}^2 + \iota_{[\ell, u]}(W),

where :math:`\mathcal P` is the set of penalized rows (features of nonzero factor; the others
are free: no penalty at all, not a small one), or of penalized entries for a base separable
over tasks (a feature unpenalized in some tasks only), :math:`l_2` the base's ridge
(:meth:`~regmtl.Penalty.ridge_part`) and :math:`r` its weights (1 but under
``factor_convention="glmnet"``: :math:`1 / d_j`), and :math:`\iota` the indicator of the box
:math:`\ell \le W \le u` (entrywise, :math:`\pm\infty` allowed). Positive factors are
otherwise a change of each feature's unit made on the design (``regmtl.feature_terms``), so
this penalty sees unit factors.

The prox is exact in three cases, read from the base penalty's block step
(:meth:`~regmtl.Penalty.bcd_params`) and never from its class:

- free rows or entries: the box projection ``clip(v, l, u)``;
- entrywise penalties (``ENTRYWISE``, ``POSITIVE_ENTRYWISE``: the lasso, the ridge, the
  elastic net): the base prox then the clip, exact because each entry's problem is a convex
  function of one variable on an interval;
- row penalties (``ROWS``, ``POSITIVE_ROWS``: L2,1): per row, with
  :math:`z` the point, :math:`a = s\,l_1` and :math:`c = 1 + s\,l_2 r_j`, the minimizer is
  :math:`v_i(\mu) = \mathrm{clip}(z_i / (c + \mu), \ell_i, u_i)` at the root
  :math:`\mu \|v(\mu)\| = a` (increasing in :math:`\mu`, bracketed and bisected), or
  :math:`v = \mathrm{clip}(z/c, \ell, u)` projected to 0 when 0 is in the box and
  :math:`z` lies in :math:`a B + N_{box}(0)`.

A ridge weighted per row or entry needs no box: the base is a sum of norms of groups inside
rows plus :math:`\frac{l_2}{2} \|W\|_F^2`, whose prox is the norms' prox then the shrink
:math:`1 / (1 + s\,l_2)`; the weighted one takes :math:`1 / (1 + s\,l_2 r_j)` instead (the
norms being positively homogeneous), for any such base (the class groups of the multinomial
loss too).

Any other penalty takes free rows (the base prox on the penalized rows, identity elsewhere)
but refuses a box on its penalized rows by name: a box inside a spectral or coupling prox has
no closed form.

The certificate is the duality gap where every entry is penalized and the base's block step
is of entries, or of rows without a ridge or without a box, or the base has no block step
but a weighted ridge and no box: the conjugate of each term is explicit
(:meth:`PartlyPenalized.conjugate`). With a free row or entry it is the KKT residual of the
proximal gradient (the dual of a free entry is the equality ``G_jt = 0``, met only at the
optimum). The penalties of entries and rows declare their block step under the box
(:meth:`PartlyPenalized.boxed_step`), which ``regmtl.solvers.parts.box_descent`` runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    ENTRYWISE,
    POSITIVE_ENTRYWISE,
    POSITIVE_ROWS,
    ROWS,
    Penalty,
)
from .kernels import box_rows_conjugate, box_rows_prox

__all__ = ["PartlyPenalized", "box_kind", "box_refusal", "row_box_prox"]


def box_kind(penalty: Penalty, alpha: float) -> str | None:
    """How a box enters ``penalty``'s prox: ``"entries"`` (its prox then the clip),
    ``"rows"`` (the row solve of this module) or None (no exact prox with a box)."""
    if type(penalty).feature_blocks is not Penalty.feature_blocks:
        return None  # (missing blocks of features: zeros the box would not keep)
    step = penalty.bcd_params(alpha if alpha > 0 else 1.0)
    if step is None:
        return None
    if step.kind in (ENTRYWISE, POSITIVE_ENTRYWISE):
        return "entries"
    if step.kind in (ROWS, POSITIVE_ROWS):
        return "rows"
    return None


def box_refusal(penalty: Penalty) -> str:
    """Why ``penalty`` takes no bounds on its penalized rows."""
    return (f"{penalty!r} takes no lower_bounds / upper_bounds on its penalized features: a "
            "box inside its prox has no exact form (bounds go with the lasso, the ridge, the "
            "elastic net and L2,1, and on unpenalized features with every penalty).")


class PartlyPenalized(Penalty):
    """``base`` on the rows ``penalized`` (bool, p) of W, or on its entries ``penalized``
    (bool, p x T, for a ``base`` separable over tasks: a feature unpenalized in some tasks),
    every entry inside the box ``[lower, upper]`` (None: unbounded; arrays broadcast to the
    variable's p x T), the base's ridge weighted per feature by ``ridge`` (None: 1; (p,) or
    (p, T), > 0, read on the penalized entries only).

    Built by ``regmtl.feature_terms``, never by name. ``base`` is checked on the
    penalized rows' shape; the certificate is as the module says."""

    registered = False
    distributable = False
    blocks_refusal = "its rows are split between a penalty and none"
    _param_names = ("base", "penalized", "lower", "upper", "ridge")

    def __init__(self, base: Penalty, penalized: np.ndarray, lower: Any = None,
                 upper: Any = None, ridge: Any = None):
        self.base = base
        self.penalized = np.asarray(penalized, dtype=bool)
        self.lower = lower
        self.upper = upper
        self.ridge = ridge
        self._n_tasks = 1

    # -- declarations read from the base
    @property
    def separates_over_tasks(self) -> bool:  # type: ignore[override]
        return bool(self.base.separates_over_tasks)

    @property
    def nonconvex(self) -> bool:  # type: ignore[override]
        return bool(self.base.nonconvex)

    @property
    def _plain(self) -> bool:
        """No box, no ridge weights and whole rows penalized or free: the base's convex
        programs apply with the free rows left out."""
        return self.lower is None and self.upper is None and self.ridge is None and \
            self.penalized.ndim == 1

    @property
    def cone_program(self) -> str | None:  # type: ignore[override]
        """The base's cone program where its free rows can be left out of the cones (the
        row norms of L2,1, the mean's pull), with no box and no ridge weights."""
        form = self.base.cone_program if self._plain else None
        return form if form in ("row_norm", "task_mean") else None

    @property
    def linear_program(self) -> str | None:  # type: ignore[override]
        """The base's linear program (the lasso's entries, L1,inf's row maxima) with the free
        rows unpenalized, where no box is set (a box on a row is not one of its forms)."""
        return self.base.linear_program if self._plain else None

    @property
    def compare_role(self) -> str | None:  # type: ignore[override]
        return self.base.compare_role

    def comparison_label(self) -> str:
        return self.base.comparison_label()

    @property
    def rows(self) -> np.ndarray:
        """The rows with a penalized entry (bool, p)."""
        return self.penalized if self.penalized.ndim == 1 else self.penalized.any(axis=1)

    def _mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The penalized entries, (p, T) bool."""
        pen = self.penalized
        return np.broadcast_to(pen[:, None] if pen.ndim == 1 else pen, shape)

    def _weights(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The ridge weights broadcast to ``shape`` (p x T), 1 off the penalized entries;
        None without them."""
        if self.ridge is None:
            return None
        r = np.asarray(self.ridge, dtype=np.float64)
        r = np.broadcast_to(r[:, None] if r.ndim == 1 else r, shape)
        return np.where(self._mask(shape), r, 1.0)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        pen = self.penalized
        if pen.shape[0] != n_features or (pen.ndim == 2 and pen.shape[1] != n_tasks):
            raise ValueError(f"penalized entries: flags of shape {pen.shape} for "
                             f"{n_features} features and {n_tasks} tasks.")
        if pen.ndim == 2 and not self.base.separates_over_tasks:
            raise ValueError(f"{self.base!r} couples the tasks: a feature is penalized in "
                             "every task or in none.")
        self.base.check(int(self.rows.sum()), n_tasks)
        self._n_tasks = n_tasks
        return self

    def __repr__(self) -> str:
        free = int((~self.penalized).sum())
        boxed = self.lower is not None or self.upper is not None
        kind = "free entries" if self.penalized.ndim == 2 else "free"
        return (f"PartlyPenalized({self.base!r}, {kind}={free}"
                f"{', bounded' if boxed else ''}"
                f"{', ridge weighted' if self.ridge is not None else ''})")

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and self.base == other.base
                and np.array_equal(self.penalized, other.penalized)
                and _same_box(self.lower, other.lower) and _same_box(self.upper, other.upper)
                and _same_box(self.ridge, other.ridge))

    def __hash__(self) -> int:
        return hash((type(self).__name__, hash(self.base)))

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        """Every entry penalized, by a base with a dual whose block step is of entries (the
        lasso, the ridge, the elastic net), or of rows without a ridge (L2,1) or without a
        box (L2,1 with its ridge weighted): the conjugate of each term on its box is
        explicit (:meth:`conjugate`); or a base without a block step whose ridge is weighted,
        without a box (the class groups: its conjugate per weight)."""
        if not (self.penalized.all() and self.base.has_dual):
            return False
        boxed = self.lower is not None or self.upper is not None
        step = self.base.bcd_params(1.0)
        if step is None:
            return self.ridge is not None and not boxed and bool(self.base.ridge_part(1.0))
        if step.kind in (ENTRYWISE, POSITIVE_ENTRYWISE):
            return True
        return step.kind in (ROWS, POSITIVE_ROWS) and (step.l2 == 0.0 or not boxed)

    def _entry_terms(self, alpha: float, shape: tuple[int, ...]):
        """``(l1, l2, lo, hi, rows)``: the base's norm weight, its ridge per entry (p x T,
        weighted), the box (the sign constraint in it) and whether the norm is of rows."""
        step = self.base.bcd_params(alpha)
        positive = step.kind in (POSITIVE_ENTRYWISE, POSITIVE_ROWS)
        lo, hi = self._box_arrays_of(shape[0], positive)
        r = self._weights(shape)
        l2 = np.full(shape, float(step.l2)) if r is None else float(step.l2) * r
        return float(step.l1), l2, lo, hi, step.kind in (ROWS, POSITIVE_ROWS)

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float:
        """The largest ``s <= 1`` with ``s G`` in the conjugate's domain: 1 with a ridge;
        without one, an entry unbounded above needs ``s G_jt <= l1``, one unbounded below
        ``s G_jt >= -l1``; a row needs the norm of its parts that point out of the box's
        unbounded sides to be at most ``l1`` (the distance of ``G_j`` to the cone of the box's
        recession)."""
        step = self.base.bcd_params(alpha)
        if step is None:  # (a base without a block step, its ridge weighted: no box)
            return self.base.dual_scaling(G, alpha)
        if step.l2 > 0.0:
            return 1.0
        l1, _, lo, hi, rows = self._entry_terms(alpha, G.shape)
        if rows:
            out = np.where(np.isinf(hi), np.maximum(G, 0.0), 0.0) + \
                np.where(np.isinf(lo), np.minimum(G, 0.0), 0.0)
            dist = np.linalg.norm(out, axis=1)
            over = dist > l1
            return float(min(1.0, np.min(l1 / dist[over]))) if over.any() else 1.0
        up = np.isinf(hi) & (G > l1)
        down = np.isinf(lo) & (G < -l1)
        s = 1.0
        if up.any():
            s = min(s, float(np.min(l1 / G[up])))
        if down.any():
            s = min(s, float(np.min(-l1 / G[down])))
        return max(s, 0.0)

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        r"""``sum_jt sup_{lo <= w <= hi} G_jt w - l1 |w| - l2_jt w^2 / 2``: at
        ``clip(S(G, l1) / l2_jt, lo, hi)`` with a ridge, else at the best of ``lo``, ``hi``
        and ``clip(0, lo, hi)`` (a concave function of one variable, linear on each side of
        0). Rows with a ridge (no box): ``sum_j (||G_j|| - l1)_+^2 / (2 l2_j)`` (of
        ``max(G, 0)`` under the sign constraint). Rows without a ridge:
        ``sup_{w in box} G_j . w - l1 ||w||`` is the infimal convolution
        ``min_{||u - G_j|| <= l1} sigma_box(u)`` of the conjugates, attained at
        ``u = G_j - clip(G_j, lam lo, lam hi)`` with ``lam`` the root of
        ``||clip(G_j, lam lo, lam hi)|| = l1`` (bisected), or ``u = 0``. A base without a
        block step, its ridge weighted by ``r_j``: its conjugate row by row over ``r_j``
        (each group's ``(||G_g|| - a)_+^2 / (2 l2)`` becomes ``... / (2 l2 r_j)``)."""
        step = self.base.bcd_params(alpha)
        if step is None:
            return self._weighted_conjugate(G, alpha)
        l1, l2, lo, hi, rows = self._entry_terms(alpha, G.shape)
        if rows:
            if step.l2 > 0.0:
                Gd = np.maximum(G, 0.0) if step.kind == POSITIVE_ROWS else G
                excess = np.maximum(np.linalg.norm(Gd, axis=1) - l1, 0.0)
                return float(np.sum(excess * excess / (2.0 * l2[:, 0])))
            return float(np.sum(_row_conjugates(G, l1, lo, hi)))

        def phi(w):
            with np.errstate(invalid="ignore"):
                return G * w - l1 * np.abs(w) - 0.5 * l2 * w * w

        if step.l2 > 0.0:
            w = np.clip(np.sign(G) * np.maximum(np.abs(G) - l1, 0.0) / l2, lo, hi)
            return float(np.sum(phi(w)))
        best = phi(np.clip(0.0, lo, hi))
        for end in (lo, hi):
            val = np.where(np.isfinite(end), phi(np.where(np.isfinite(end), end, 0.0)),
                           -np.inf)
            best = np.maximum(best, val)
        return float(np.sum(best))

    def _weighted_conjugate(self, G: np.ndarray, alpha: float) -> float:
        """The base's conjugate on the rows of each ridge weight, divided by it."""
        r = self._weights(G.shape)[:, 0]
        return float(sum(self.base.conjugate(G[r == v], alpha) / v for v in np.unique(r)))

    # -- the variable: the base's lift on the penalized rows, W itself on the free rows
    def lift(self, W: np.ndarray) -> np.ndarray:
        return W

    def value(self, V: np.ndarray, alpha: float) -> float:
        rows = self.rows
        if not rows.any():
            return 0.0
        Vp = V[..., rows, :]
        if self.penalized.ndim == 2:
            Vp = np.where(self.penalized[rows], Vp, 0.0)
        val = float(self.base.value(Vp, alpha))
        r = self._weights(V.shape)
        l2 = self.base.ridge_part(alpha) if r is not None else 0.0
        if l2:
            val += 0.5 * l2 * float(np.sum((r[rows] - 1.0) * Vp * Vp))
        return val

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """The base's prox on the penalized entries (its ridge's shrink
        ``1 / (1 + s l2)`` replaced by ``1 / (1 + s l2 r)`` with ridge weights), the identity
        on the free ones, then the box (the row solve for a box on rows)."""
        out = np.array(V, dtype=np.float64, copy=True)
        rows = self.rows
        lo, hi = self._box(out.shape)
        if rows.any():
            Z = out[rows]
            r = self._weights(out.shape)
            r = None if r is None else r[rows]
            kind = self._kind(alpha) if (lo is not None or hi is not None) else None
            if kind == "rows":
                step_ = self.base.bcd_params(alpha)
                l1, l2 = step * step_.l1, step * step_.l2
                lo_p = None if lo is None else lo[rows]
                if step_.kind == POSITIVE_ROWS:
                    lo_p = np.zeros(Z.shape) if lo_p is None else np.maximum(lo_p, 0.0)
                c = 1.0 + l2 * (np.ones(Z.shape[0]) if r is None else r[:, 0])
                P = row_box_prox(Z, l1, c, lo_p, None if hi is None else hi[rows])
            else:
                P = self.base.prox(Z, step, alpha)
                l2 = step * self.base.ridge_part(alpha) if r is not None else 0.0
                if l2:
                    P = P * ((1.0 + l2) / (1.0 + l2 * r))
            if self.penalized.ndim == 2:
                P = np.where(self.penalized[rows], P, Z)
            out[rows] = P
        if lo is not None:
            np.maximum(out, lo, out=out)
        if hi is not None:
            np.minimum(out, hi, out=out)
        return out

    def _kind(self, alpha: float) -> str | None:
        """:func:`box_kind` of the base, rows without a norm (a ridge) read as entries."""
        kind = box_kind(self.base, alpha)
        if kind == "rows" and self.base.bcd_params(alpha if alpha > 0 else 1.0).l1 == 0.0:
            return "entries"
        return kind

    def _box(self, shape: tuple[int, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
        lo = None if self.lower is None else np.broadcast_to(self.lower, shape)
        hi = None if self.upper is None else np.broadcast_to(self.upper, shape)
        return lo, hi

    def boxed_step(self, alpha: float) -> tuple | None:
        """The block step of :mod:`regmtl.solvers.parts.box_descent`: ``(l1, l2, rows, lower,
        upper)``, the norm weight and ridge of every entry (p x T, 0 on the free entries,
        the ridge weighted), whether the norm is of rows (else of entries), and the box as
        (p, T) arrays (the sign constraint of a positive base in it); None where the base's
        block step is neither of entries nor of rows."""
        rows = self.rows
        p = rows.size
        lo, hi = self._box_arrays_of(p, False)
        shape = lo.shape
        kind, positive = "entries", False
        l1 = l2 = np.zeros(shape)
        if rows.any():
            kind = self._kind(alpha)
            if kind is None:
                return None
            step = self.base.bcd_params(alpha)
            positive = step.kind in (POSITIVE_ENTRYWISE, POSITIVE_ROWS)
            pen = self._mask(shape)
            r = self._weights(shape)
            l1 = np.where(pen, step.l1, 0.0)
            l2 = np.where(pen, step.l2 * (1.0 if r is None else r), 0.0)
        return l1, l2, kind == "rows", *self._box_arrays_of(p, positive)

    def _box_arrays_of(self, p: int, positive: bool) -> tuple[np.ndarray, np.ndarray]:
        """The box as (p, T) arrays, the sign constraint of a positive base in it."""
        T = None
        for b in (self.lower, self.upper, self.ridge, self.penalized):
            if b is not None and np.ndim(b) == 2:
                T = np.shape(b)[1]
        if T is None:
            T = self._n_tasks
        lo = np.full((p, T), -np.inf) if self.lower is None else \
            np.array(np.broadcast_to(self.lower, (p, T)), dtype=np.float64)
        hi = np.full((p, T), np.inf) if self.upper is None else \
            np.array(np.broadcast_to(self.upper, (p, T)), dtype=np.float64)
        if positive:
            pen = self._mask((p, T))
            lo[pen] = np.maximum(lo[pen], 0.0)
        return lo, hi

    def alpha_max(self, G0: np.ndarray) -> float:
        """The smallest alpha at which W = 0 is optimal, given minus the gradient ``G0`` at
        W = 0: the base's over the penalized entries, once the box's normal cone at 0 has
        taken what it can (an entry with bound 0 on the side ``G0`` points to). Refused
        (``ValueError``) where no alpha gives W = 0: the box excludes 0, or a free entry's
        gradient is not in that cone (at W = 0 with the free entries at 0, as the solver's
        reference holds them; a grid fits them first,
        :func:`~regmtl.feature_terms.grid_reference`). A ridge has no gradient at 0."""
        p = self.penalized.shape[0]
        lo, hi = self._box_arrays_of(p, False)
        lo, hi = lo[:, :G0.shape[1]], hi[:, :G0.shape[1]]
        if np.any(lo > 0.0) or np.any(hi < 0.0):
            raise ValueError("the bounds exclude 0: no alpha makes W = 0 the solution.")
        G = np.where((lo == 0.0) & (G0 < 0.0), 0.0, G0)
        G = np.where((hi == 0.0) & (G > 0.0), 0.0, G)
        pen = self._mask(G.shape)
        if np.any(G[~pen] != 0.0):
            raise ValueError("an unpenalized feature has a gradient at W = 0: no alpha makes "
                             "W = 0 the solution.")
        rows = self.rows
        if not rows.any():
            return 0.0
        return self.base.alpha_max(G[rows])

    def structure(self, V: np.ndarray, alpha: float) -> dict[str, Any]:
        return {}


def row_box_prox(Z: np.ndarray, a: float, c: float | np.ndarray, lo: np.ndarray | None,
                 hi: np.ndarray | None) -> np.ndarray:
    r"""``argmin_v ||v - z||^2 / 2 + a ||v|| + (c_j - 1) / 2 ||v||^2`` over ``lo <= v <= hi``,
    for every row z of Z (``c`` one number, or one per row;
    :func:`~regmtl.penalties.kernels.box_rows_prox`)."""
    lo_ = np.full(Z.shape, -np.inf) if lo is None else np.ascontiguousarray(lo, dtype=float)
    hi_ = np.full(Z.shape, np.inf) if hi is None else np.ascontiguousarray(hi, dtype=float)
    c_ = np.ascontiguousarray(np.broadcast_to(np.asarray(c, dtype=float), Z.shape[:1]))
    return box_rows_prox(np.ascontiguousarray(Z, dtype=float), float(a), c_, lo_, hi_)


def _row_conjugates(G: np.ndarray, l1: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``sup_{lo <= w <= hi} G_j . w - l1 ||w||`` of every row (see
    :meth:`PartlyPenalized.conjugate`)."""
    return box_rows_conjugate(np.ascontiguousarray(G, dtype=float), float(l1),
                              np.ascontiguousarray(lo, dtype=float),
                              np.ascontiguousarray(hi, dtype=float))


def _same_box(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(np.asarray(a), np.asarray(b))
