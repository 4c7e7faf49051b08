r"""The nonconvex fused group lasso (MALSAR's ``Least_NCFGLassoF1`` and ``F2``), solved by
majorize-minimize.

.. math::

    \Omega(W) = \alpha \sum_{j=1}^p \Big(\sqrt{\|W_j\|_1}
    + f \sum_{t=1}^{T-1} |W_{jt} - W_{j,t+1}|\Big)

(Zhou, Liu, Narayan & Ye 2013). ``sqrt(||W_j||_1)`` is concave in the row's L1 norm, so it is
majorized at ``W^k`` by its tangent,

.. math::

    \sqrt{s} \le \sqrt{s_k} + \frac{s - s_k}{2\sqrt{s_k}}, \qquad s_k = \|W^k_j\|_1 > 0,

and by ``+inf`` off ``s = 0`` where ``s_k = 0`` (the tangent is vertical: a zero row stays
zero). Each stage minimizes the data term plus the convex majorizer, the weighted fused lasso
``alpha sum_j (c_j ||W_j||_1 + f TV(W_j))`` with ``c_j = 1 / (2 sqrt(s_k))``
(:class:`WeightedFusedLasso`), certified by its duality gap. The first stage has ``c_j = 1``
(the convex L1 + fused relaxation, MALSAR's starting point).

The second form (``fused_in_root=True``, MALSAR's ``Least_NCFGLassoF2``) puts the fused term
inside the root, ``alpha sum_j sqrt(||W_j||_1 + f TV(W_j))``; its tangent weighs both terms of
a row alike, ``c_j (||W_j||_1 + f TV(W_j))`` with ``c_j = 1 / (2 sqrt(s_k))``, ``s_k`` the row's
value under the root (row-weighted fused terms, which :class:`WeightedFusedLasso` takes).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._jit import njit
from .base import NormPenalty, Penalty, check_positive, is_blocked
from .dof import DegreesOfFreedom, nonzero_count
from .gathered import by_rows, computed, of_rows
from .temporal import refuse_ordered_classes, tv_row

__all__ = ["NonconvexFusedGroupLasso", "WeightedFusedLasso"]


# ----------------------------------------------------------------------------- kernels
@njit(cache=True)
def _weighted_fused_prox(V, c_tv, c_l1, out):
    """Row j: ``soft(TV-prox(V_j, c_tv[j]), c_l1[j])`` (the prox of
    ``c_l1[j] ||u||_1 + c_tv[j] TV(u)``, Friedman et al. 2007); ``c_l1[j] = inf`` gives 0."""
    for j in range(V.shape[0]):
        if not c_l1[j] < np.inf:
            out[j] = 0.0
            continue
        tv_row(V[j], c_tv[j], out[j])
        for i in range(V.shape[1]):
            a = abs(out[j, i]) - c_l1[j]
            out[j, i] = 0.0 if not a > 0.0 else (a if out[j, i] > 0.0 else -a)


@njit(cache=True)
def _inside(g, a, b):
    """Whether ``g`` lies in ``a B_inf + b B_TV*`` (``B_TV*`` the dual ball of
    ``sum |u_{t+1} - u_t|``): some ``v`` with ``|v_t| <= a`` leaves partial sums
    ``S_k = sum_{i<=k} (g_i - v_i)`` within ``[-b, b]`` for ``k < T`` and ``S_T = 0``. The
    reachable values of ``S_k`` form an interval, propagated exactly."""
    lo = 0.0
    hi = 0.0
    T = g.shape[0]
    for k in range(T - 1):
        lo = max(lo + g[k] - a, -b)
        hi = min(hi + g[k] + a, b)
        if lo > hi:
            return False
    return lo + g[T - 1] - a <= 0.0 <= hi + g[T - 1] + a


@njit(cache=True)
def _weighted_fused_dual_norms(G, c, f):
    """Per row, ``min {t >= 0: G_j in t (c_j B_inf + f_j B_TV*)}`` by bisection on the exact
    membership test, returned from above (a point of the ball after scaling)."""
    p, T = G.shape
    out = np.zeros(p)
    for j in range(p):
        m = 0.0
        for i in range(T):
            m = max(m, abs(G[j, i]))
        if m == 0.0 or not c[j] < np.inf:
            continue
        hi = m / c[j]  # the box alone holds G_j there
        lo = 0.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if _inside(G[j], mid * c[j], mid * f[j]):
                hi = mid
            else:
                lo = mid
            if hi - lo <= 2.220446049250313e-16 * hi:
                break
        out[j] = hi
    return out


def _row_prox(v: np.ndarray, x: np.ndarray, a: float, b: float) -> np.ndarray:
    """``argmin_u ||u - v||^2 / 2 + a sqrt(||u||_1) + b TV(u)`` given ``x = TV-prox(v, b)``:
    the best of 0 and ``soft(x, tau)`` over ``tau`` (see ``NonconvexFusedGroupLasso.prox``)."""
    sx, ax = np.sign(x), np.abs(x)

    def u_of(tau):
        return sx * np.maximum(ax - tau, 0.0)

    def q(u):
        return (0.5 * float(np.sum((u - v) ** 2)) + a * np.sqrt(np.abs(u).sum())
                + b * float(np.abs(np.diff(u)).sum()))

    def dphi(tau, act):
        m = int(act.sum())
        S = float(ax[act].sum())
        u = u_of(tau)
        lin = float(np.sum(-sx[act] * (u[act] - v[act])))
        du = np.where(act, -sx, 0.0)  # d u / d tau
        dtv = float(np.sum(np.sign(np.diff(u)) * np.diff(du))) if u.size > 1 else 0.0
        # a difference at 0 with a moving side: |d| grows at the rate |d d / d tau|
        zero = np.diff(u) == 0.0
        dtv += float(np.sum(np.abs(np.diff(du))[zero]))
        rest = max(S - m * tau, 1e-300)
        return lin + b * dtv - a * m / (2.0 * np.sqrt(rest))

    best_u, best = np.zeros_like(v), q(np.zeros_like(v))
    knots = np.unique(np.r_[0.0, ax[ax > 0]])
    for k in range(knots.size - 1):
        lo, hi = knots[k], knots[k + 1]
        act = ax > lo  # active on (lo, hi)
        m = int(act.sum())
        S = float(ax[act].sum())
        for t in (lo,):
            val = q(u_of(t))
            if val < best:
                best_u, best = u_of(t), val
        # the peak of the concave derivative: (S - m tau)^(3/2) = a m / 4
        peak = min(max((S - (a * m / 4.0) ** (2.0 / 3.0)) / m, lo), hi)
        mid = 0.5 * (lo + hi)
        if dphi(min(max(peak, lo), hi) if peak > lo else mid, act) <= 0.0:
            continue
        left, right = lo, max(peak, mid) if peak <= lo else peak
        if dphi(left, act) >= 0.0:
            continue  # increasing from lo: lo is the piece's best
        for _ in range(200):
            c = 0.5 * (left + right)
            if dphi(c, act) < 0.0:
                left = c
            else:
                right = c
            if right - left <= 4.0 * np.finfo(float).eps * max(right, 1e-300):
                break
        for t in (left, right):
            val = q(u_of(t))
            if val < best:
                best_u, best = u_of(t), val
    return best_u


def _check_weight(value, name: str) -> float:
    return check_positive(value, name, strict=False)


def _tv(V: np.ndarray) -> np.ndarray:
    return abs(V[:, 1:] - V[:, :-1]).sum(axis=1)  # (lazy on task blocks)


# (the row maps a Dask task runs: plain functions of this module, imported by name there)
def _stage_dual_norms(G: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    return _weighted_fused_dual_norms(G, c, f)


def _stage_prox(V: np.ndarray, c_tv: np.ndarray, c_l1: np.ndarray) -> np.ndarray:
    out = np.empty_like(V)
    _weighted_fused_prox(V, c_tv, c_l1, out)
    return out


# ----------------------------------------------------------------------------- stage penalty
class WeightedFusedLasso(NormPenalty):
    r"""The convex stage of :class:`NonconvexFusedGroupLasso`: a row-weighted lasso plus the
    fused lasso.

    .. math::

        \Omega(W) = \alpha \sum_{j=1}^p \Big(c_j \|W_j\|_1
        + f_j \sum_{t=1}^{T-1} |W_{jt} - W_{j,t+1}|\Big),

    MALSAR's ``Least_Weight1FGLasso`` (one fused weight for every row) and
    ``Least_Weight2FGLasso`` / ``Least_FGLasso`` (a fused weight per row). ``c_j = inf`` holds
    row j at zero. The prox of a row is the soft-thresholding of its 1-D total-variation
    prox; the dual norm of a row, ``min {t: g in t (c_j B_inf + f_j B_TV*)}``, is found by
    bisection on an exact membership test (the partial sums of ``g - v`` stay within
    ``t f_j``), so fits certify with a duality gap.

    Parameters
    ----------
    weights : array-like of shape (p,)
        The rows' L1 weights ``c_j``, > 0 (``inf`` allowed).
    fused_weight : float or array-like of shape (p,), default=1.0
        Weight ``f >= 0`` of the differences of consecutive tasks, one for every row or one
        per row (finite; ignored on rows of weight ``inf``).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.penalties.nonconvex_fused import WeightedFusedLasso
    >>> pen = WeightedFusedLasso([1.0, np.inf], fused_weight=0.5)
    >>> pen.prox(np.array([[3.0, 3.0, 0.0], [5.0, 5.0, 5.0]]), 1.0, 1.0).tolist()
    [[1.75, 1.75, 0.0], [0.0, 0.0, 0.0]]
    """

    name = "weighted_fused_lasso"
    # (on task blocks its prox runs on the rows gathered whole: ``penalties.gathered``)
    registered = False
    _param_names = ("weights", "fused_weight")

    def __init__(self, weights, fused_weight: float = 1.0):
        self.weights = weights
        self.fused_weight = fused_weight

    def _c(self) -> np.ndarray:
        c = np.asarray(self.weights, dtype=np.float64).ravel()
        if not (np.all(c > 0) and not np.any(np.isnan(c))):
            raise ValueError("weights must be > 0 (inf holds a row at zero); got "
                             f"{np.asarray(self.weights)!r}.")
        return c

    def _f(self, p: int) -> np.ndarray:
        """The rows' fused weights, (p,), finite and >= 0."""
        f = self.fused_weight
        if np.ndim(f) == 0:
            return np.full(p, _check_weight(f, "fused_weight"))
        f = np.asarray(f, dtype=np.float64).ravel()
        if f.size != p or not (np.all(np.isfinite(f)) and np.all(f >= 0)):
            raise ValueError(f"fused_weight must be a number >= 0 or {p} finite numbers >= 0; "
                             f"got {np.asarray(self.fused_weight)!r}.")
        return f

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        c = self._c()
        if c.size != n_features:
            raise ValueError(f"weights has {c.size} entries for {n_features} features.")
        self._f(n_features)
        return self

    def value(self, V, alpha):
        return computed(self.lazy_value(V if is_blocked(V) else np.asarray(
            V, dtype=np.float64), alpha))

    def lazy_value(self, V, alpha):
        """``alpha sum_j (c_j ||V_j||_1 + f_j TV(V_j))``, a lazy scalar on task blocks."""
        c = self._c()
        f = self._f(c.size)
        if not is_blocked(V):
            V = np.asarray(V, dtype=np.float64)
        l1 = abs(V).sum(axis=1)
        with np.errstate(invalid="ignore"):
            part = np.where(l1 > 0, c * l1, 0.0)
        return alpha * (part.sum() + (f * _tv(V)).sum())

    def prox(self, V, step, alpha):
        """Row by row; on task blocks on the rows gathered whole (``penalties.gathered``)."""
        if not is_blocked(V):
            V = np.ascontiguousarray(V, dtype=np.float64)
        c = self._c()
        f = self._f(c.size)
        s = float(step) * float(alpha)
        if s == 0.0 or V.size == 0:
            return V.copy()
        return by_rows(_stage_prox, V, s * f, s * c)

    def dual_norms(self, G: np.ndarray) -> np.ndarray:
        """Per row, the dual norm of ``c_j ||u||_1 + f_j TV(u)`` (0 on rows of weight inf).

        Parameters
        ----------
        G : ndarray of shape (p, T)
            Rows to measure.

        Returns
        -------
        ndarray of shape (p,)
            ``min {t >= 0: G_j in t (c_j B_inf + f_j B_TV*)}``, from above.
        """
        if not is_blocked(G):
            G = np.ascontiguousarray(G, dtype=np.float64)
        c = np.ascontiguousarray(self._c())
        return of_rows(_stage_dual_norms, G, c, self._f(c.size))  # (lazy on task blocks)

    def dual_norm(self, G: np.ndarray) -> float:
        """``max_j`` of :meth:`dual_norms`: the dual norm of the penalty at ``alpha = 1``."""
        return computed(self.dual_norms(G).max()) if G.shape[0] else 0.0

    def lazy_dual_scaling(self, G, alpha):
        """On task blocks, ``alpha / max(max_j N*(G_j), alpha)`` lazy."""
        if not is_blocked(G) or G.size == 0:
            return self.dual_scaling(G, alpha)
        return alpha / np.maximum(self.dual_norms(G).max(), alpha)


# ----------------------------------------------------------------------------- the penalty
class NonconvexFusedGroupLasso(Penalty):
    r"""Nonconvex fused group lasso (MALSAR's ``Least_NCFGLassoF1`` and ``F2``): few features,
    each with a piecewise-constant effect in time, and less shrinkage of the strong ones than
    the convex :class:`~regmtl.FusedGroupLasso`.

    .. math::

        \Omega(W) = \alpha \sum_{j=1}^p \Big(\sqrt{\|W_j\|_1}
        + f\, \mathrm{TV}(W_j)\Big) \quad\text{or, with } \texttt{fused\_in\_root=True},\quad
        \Omega(W) = \alpha \sum_{j=1}^p \sqrt{\|W_j\|_1 + f\, \mathrm{TV}(W_j)},

    :math:`\mathrm{TV}(W_j) = \sum_{t=1}^{T-1} |W_{jt} - W_{j,t+1}|`, :math:`f` =
    ``fused_weight``, of Zhou, Liu, Narayan & Ye (2013). The tasks are time points in the
    order of ``tasks_``. The square root of a row's L1 norm (an :math:`\ell_{1,1/2}`
    quasi-norm) selects features jointly over time and flattens for large rows; the fused
    term makes each effect constant between a few change points.

    MALSAR's objective ``sum_t ||y_t - X_t w_t||^2 / 2 + lambda sum_j sqrt(||W_j||_1) + gamma
    ||W R||_1`` is this one with ``task_weight="samples"``, ``fit_intercept=False``,
    ``alpha = T lambda / N`` (``lambda / n`` when every task has n rows: then
    ``task_weight="equal"`` too) and ``fused_weight = gamma / lambda``. MALSAR's second form,
    ``... + lambda sum_j sqrt(||W_j R||_1 + beta ||W_j||_1)``, is ``fused_in_root=True`` with
    ``alpha = T lambda sqrt(beta) / N`` and ``fused_weight = 1 / beta``. In that form the fused
    term shrinks less as well: a feature pays for its change points through the same root.

    Solved as MALSAR solves it, by majorize-minimize: stage k minimizes the data term plus
    ``alpha sum_j (c_j ||W_j||_1 + f TV(W_j))`` with ``c_j = 1 / (2 sqrt(||W^k_j||_1))``
    (``regmtl.penalties.nonconvex_fused.WeightedFusedLasso``, the tangent of the square
    root; rows at zero stay zero), or ``alpha sum_j c_j (||W_j||_1 + f TV(W_j))`` with
    ``c_j = 1 / (2 sqrt(||W^k_j||_1 + f TV(W^k_j)))`` in the second form, each stage
    warm-started and **certified by its duality gap**; the first stage is the convex
    relaxation ``c_j = 1`` (MALSAR's starting point). The
    objective decreases at every stage (by the majorization, up to the stage's gap). Fits stop
    at a **fixed point of the stage map**: ``||W^{k+1} - W^k||_F <= tol ||W^{k+1}||_F``, within
    ``max_stages`` (a ``ConvergenceWarning`` says when they stop short). The prox is exact
    (:meth:`prox`), so ``solver="fista"`` runs proximal gradient instead, to a stationary
    point that need not be MALSAR's. The second form's prox has no such closed form: only the
    stages solve it (``solver="auto"`` or ``"bcd"``; ``"fista"``, ``"cg"`` and ``"admm"`` are
    refused, naming these).

    What is certified, and what is not: ``sqrt(u)`` has an unbounded slope at 0, so every W
    whose zero rows are zero is Clarke-stationary in those rows whatever the data: the KKT
    residual says nothing about which features are zero. ``kkt_residual_`` is the Clarke
    stationarity residual over the **nonzero rows** (the distance of minus the gradient to
    ``alpha (c_j d||W_j||_1 + f d TV(W_j))`` with ``c_j = 1 / (2 sqrt(||W_j||_1))``, or
    ``alpha c_j (d||W_j||_1 + f d TV(W_j))`` with ``c_j`` from the whole root, exact),
    relative to the gradient at W = 0 as for the other penalties; the support is that of the
    convex relaxation, pruned by the stages. ``alpha_max`` is that of the convex relaxation:
    from it on, W = 0, with a warning (just below it the stages may still prune the
    relaxation's small rows to zero): the square root is not equivariant to the scale of
    ``y``, so the problem may have a nonzero stationary point of lower objective there. For
    the same reason a warm start (``warm_start=True``) is never returned as it is: the stages
    run from it, the first one the convex relaxation on the data of the refit.

    Parameters
    ----------
    fused_weight : float, default=1.0
        Weight ``f >= 0`` of the differences of consecutive tasks, relative to ``alpha``.
    max_stages : int, default=100
        Bound on the majorize-minimize stages.
    fused_in_root : bool, default=False
        The second form (MALSAR's ``Least_NCFGLassoF2``): the fused term under the square
        root with the row's L1 norm.

    See Also
    --------
    regmtl.FusedGroupLasso : The convex fused sparse group lasso.
    regmtl.CappedL1 : Another nonconvex row penalty, solved by block coordinate descent.

    References
    ----------
    Zhou, Liu, Narayan & Ye (2013), "Modeling disease progression via multi-task learning",
    NeuroImage 78; Zhou, Liu, Narayan & Ye (2012), "Modeling disease progression via fused
    sparse group lasso", KDD.

    Examples
    --------
    Eight time points; feature 0's effect jumps from 1 to 2 after the fourth:

    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor, NonconvexFusedGroupLasso
    >>> rng = np.random.default_rng(0)
    >>> W = np.zeros((10, 8))
    >>> W[0] = [1.0] * 4 + [2.0] * 4
    >>> X = rng.standard_normal((80, 10))
    >>> Y = X @ W + 0.1 * rng.standard_normal((80, 8))
    >>> pen = NonconvexFusedGroupLasso(fused_weight=0.5)
    >>> model = MultiTaskRegressor(pen, alpha=0.05, tol=1e-6).fit(X, Y)
    >>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()
    [0]
    >>> np.flatnonzero(np.abs(np.diff(model.coef_[:, 0])) > 1e-6).tolist()
    [3]
    >>> bool(model.kkt_residual_ < 1e-6)
    True
    """

    name = "nonconvex_fused_group_lasso"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha (sum_j sqrt(d_j ||W_j||_1) + f ||D W R||_1) (rows)"
    has_dual = False
    nonconvex = True
    majorized = True  # its stages: :meth:`stage` (``regmtl.solvers.methods.majorize``)
    # (on task blocks its stages are fitted there: their prox on the rows gathered whole)
    _param_names = ("fused_weight", "max_stages", "fused_in_root")
    #: a new task takes the support; its strength is chosen by CV (no place in the time order,
    #: and a nonconvex penalty's alpha does not carry to a ridge prior)
    transfer_strategy = "support"
    transfer_alpha = False

    def __init__(self, fused_weight: float = 1.0, max_stages: int = 100,
                 fused_in_root: bool = False):
        self.fused_weight = fused_weight
        self.max_stages = max_stages
        self.fused_in_root = fused_in_root

    # ------------------------------------------------------------------ parameters
    def _f(self) -> float:
        return _check_weight(self.fused_weight, "fused_weight")

    def _stages(self) -> int:
        m = self.max_stages
        if not (isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 1):
            raise ValueError(f"max_stages must be an integer >= 1; got {m!r}.")
        return int(m)

    @property
    def has_prox(self) -> bool:
        """Whether :meth:`prox` is available (the first form; the second has none here)."""
        return not self._inside()

    def _inside(self) -> bool:
        if not isinstance(self.fused_in_root, (bool, np.bool_)):
            raise ValueError(f"fused_in_root must be True or False; got {self.fused_in_root!r}.")
        return bool(self.fused_in_root)

    def on_classes(self, layout: Any) -> Penalty:
        """Refused (``refuse_ordered_classes``): on the
        classes' layout the chain of tasks would run through a task's class columns."""
        return refuse_ordered_classes(self)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._f()
        self._stages()
        self._inside()
        return self

    def _root(self, W: np.ndarray) -> np.ndarray:
        """Per row, what is under the square root: ``||W_j||_1`` (+ ``f TV(W_j)`` inside)."""
        s = np.abs(W).sum(axis=1)
        return s + self._f() * _tv(W) if self._inside() else s

    def ridge_part(self, alpha: float) -> float:
        """0.0: no squared term."""
        return 0.0

    # ------------------------------------------------------------------ the stages
    def stage_weights(self, W: np.ndarray) -> np.ndarray:
        """The weights of the majorizer at W: ``1 / (2 sqrt(s_j))``, ``s_j`` the row's value
        under the root, inf on zero rows.

        Parameters
        ----------
        W : ndarray of shape (p, T)
            The point of tangency.

        Returns
        -------
        ndarray of shape (p,)
            The rows' L1 weights of the next stage.
        """
        s = self._root(np.asarray(W, dtype=np.float64))
        with np.errstate(divide="ignore"):
            return np.where(s > 0, 0.5 / np.sqrt(s), np.inf)

    def stage(self, W: np.ndarray | None, n_features: int) -> WeightedFusedLasso:
        """The convex stage penalty: the majorizer at W, or the convex relaxation
        (``c_j = 1``) when W is None.

        Parameters
        ----------
        W : ndarray of shape (p, T) or None
            The point of tangency.
        n_features : int
            p.

        Returns
        -------
        WeightedFusedLasso
            The stage's penalty (same ``alpha``).
        """
        c = np.ones(n_features) if W is None else self.stage_weights(W)
        if not self._inside():
            return WeightedFusedLasso(c, self._f())
        return WeightedFusedLasso(c, self._f() * np.where(np.isfinite(c), c, 0.0))

    # ------------------------------------------------------------------ the interface
    def value(self, V, alpha):
        V = np.asarray(V, dtype=np.float64)
        if self._inside():
            return float(alpha * np.sqrt(self._root(V)).sum())
        return float(alpha * (np.sqrt(np.abs(V).sum(axis=1)).sum() + self._f() * _tv(V).sum()))

    def prox(self, V, step, alpha):
        r"""The exact (global) minimizer of ``||U - V||^2 / (2 step) + Omega(U)``, row by row.

        With ``x = TV-prox(v, step alpha f)``, a nonzero minimizer minimizes the convex
        majorizer at itself, so it is ``soft(x, tau)`` for some ``tau >= 0``: the minimum is
        the better of 0 and the best ``tau``. Between consecutive ``|x_i|`` the objective of
        ``tau`` is a quadratic plus a linear term (the fused part) plus
        ``step alpha sqrt(S - m tau)``; its derivative is concave, so each piece has at most
        one interior local minimum, found by bisection on the derivative to rounding.

        The second form (``fused_in_root=True``) has no such prox here: it raises, naming the
        solvers that run its stages."""
        if self._inside():
            raise ValueError(
                "NonconvexFusedGroupLasso(fused_in_root=True) has no closed-form prox, which "
                "solver='fista', 'cg' and 'admm' need: fit it with solver='auto' or 'bcd' (its "
                "majorize-minimize stages, each certified by its duality gap).")
        V = np.asarray(V, dtype=np.float64)
        a = float(step) * float(alpha)
        b = a * self._f()
        out = np.zeros_like(V)
        if a == 0.0:
            return V.copy()
        X = np.atleast_2d(np.ascontiguousarray(V))
        Xtv = np.empty_like(X)
        for j in range(X.shape[0]):
            tv_row(X[j], b, Xtv[j])
            out[j] = _row_prox(X[j], Xtv[j], a, b)
        return out

    def alpha_max(self, G0: np.ndarray) -> float:
        """That of the convex relaxation (``c_j = 1``), the first stage: from it on the first
        stage returns W = 0, which every later stage keeps (just below it the later stages
        may still prune the first stage's small rows to zero)."""
        return self.stage(None, G0.shape[0]).alpha_max(G0)

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        r"""Per row: 0 on zero rows (the Clarke subdifferential of ``sqrt(||.||_1)`` at 0 is
        everything), else the distance from G to
        :math:`\alpha (c_j \partial\|W_j\|_1 + f \partial TV(W_j))`,
        :math:`c_j = 1 / (2\sqrt{\|W_j\|_1})`: a bounded least-squares problem in the free
        subgradient coordinates (those at zero entries and zero differences), solved exactly
        by SciPy's bounded-variable least squares."""
        from scipy.optimize import lsq_linear

        W = np.asarray(W, dtype=np.float64)
        G = np.asarray(G, dtype=np.float64)
        alpha, f = float(alpha), self._f()
        out = np.zeros(W.shape[0])
        c = self.stage_weights(W)
        inside = self._inside()
        T = W.shape[1]
        Rt = np.zeros((T, T - 1))  # (R^T z)_t = z_{t-1} - z_t: u_{t+1} - u_t's gradient
        Rt[np.arange(T - 1), np.arange(T - 1)] = -1.0
        Rt[np.arange(1, T), np.arange(T - 1)] = 1.0
        eye = np.eye(T)
        for j in np.flatnonzero(np.isfinite(c)):
            w, a = W[j], alpha * c[j]
            b = a * f if inside else alpha * f
            d = np.diff(w)
            # G - a s - b R^T z with s = sign(w) where w != 0, z = sign(dw) where dw != 0
            r = G[j] - a * np.sign(w) - b * Rt @ np.sign(d)
            cols = [a * eye[:, w == 0], b * Rt[:, d == 0]]
            A = np.hstack(cols)
            if A.shape[1] == 0:
                out[j] = float(np.linalg.norm(r))
                continue
            sol = lsq_linear(A, r, bounds=(-1.0, 1.0), method="bvls", tol=1e-14)
            out[j] = float(np.linalg.norm(r - A @ sol.x))
        return out


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """The nonzero entries of W (the active set)."""
        return DegreesOfFreedom(count=nonzero_count(W))
