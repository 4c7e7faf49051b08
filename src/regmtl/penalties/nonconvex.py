r"""Nonconvex sparse penalties: MCP, SCAD and capped-L1, of entries or of rows.

=============================  ==================================================================
penalty                        Omega(W), with rho applied to every |W_jt| (``group=False``) or
                               to every row norm ||W_j||_2 (``group=True``)
=============================  ==================================================================
``MCP(gamma)``                 rho(s) = alpha s - s^2 / (2 gamma) for s <= gamma alpha, else
                               gamma alpha^2 / 2 (Zhang 2010; gamma > 1)
``SCAD(gamma)``                rho(s) = alpha s for s <= alpha, (2 gamma alpha s - s^2 - alpha^2)
                               / (2 (gamma - 1)) up to gamma alpha, then alpha^2 (gamma + 1) / 2
                               (Fan & Li 2001; gamma > 2)
``CappedL1(cap)``              rho(s) = alpha min(s, cap) (cap > 0); ``group="l1"`` applies it
                               to the rows' L1 norms ||W_j||_1 (MALSAR's capped-L1,L1)
=============================  ==================================================================

All three equal ``alpha s`` near 0, so they select entries (or rows) as L1 (or L2,1) does, and
stop growing past a point, so large coefficients are not shrunk: less bias. The price is
nonconvexity: a fit reaches a **stationary point**, certified by the KKT residual of the Clarke
subdifferential (no duality gap exists), not a global minimum.

Solved by block coordinate descent, each block step the exact minimizer of the block's quadratic
model plus the penalty (``regmtl.solvers.parts._kernels``: MCP's firm thresholding and SCAD's
three-piece rule where the model is convex, the best of each piece's candidates where it is
not); for the logistic loss the model is proximal Newton's.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .base import (
    CAPPED_ENTRYWISE,
    CAPPED_L1_ROWS,
    CAPPED_ROWS,
    MCP_ENTRYWISE,
    MCP_ROWS,
    NONCONVEX_REFUSAL,
    SCAD_ENTRYWISE,
    SCAD_ROWS,
    BlockStep,
    Penalty,
    check_bool,
)
from .class_groups import ClassGroupNonconvex
from .dof import DegreesOfFreedom, nonzero_count
from .kernels import capped_l1_rows_prox

__all__ = ["MCP", "SCAD", "CappedL1"]


def _check_above(value: Any, name: str, low: float) -> float:
    """A finite number > ``low``, or a ``ValueError`` naming ``name``."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and np.isfinite(value) and value > low)
    if not ok:
        raise ValueError(f"{name} must be a finite number > {low:g}; got {value!r}.")
    return float(value)


class _Nonconvex(Penalty):
    r"""``sum_g rho(||W_g||)`` over entries (``group=False``) or rows (``group=True``), with
    ``rho`` a function of the magnitude that equals ``alpha s`` near 0.

    Subclasses define ``_rho`` (the value), ``_drho`` (the derivative for ``s > 0``, where it
    exists), ``_min`` (the exact scalar prox of the magnitude) and their shape parameter.
    """

    has_dual = False
    nonconvex = True
    distributable = False
    blocks_refusal = NONCONVEX_REFUSAL
    _kinds: tuple[int, int] = (0, 0)
    #: the name of the shape parameter (``gamma`` or ``cap``)
    _shape_name = ""
    #: a new task takes the support; a nonconvex penalty's alpha does not carry to a ridge
    #: prior: chosen by CV
    transfer_strategy = "support"
    transfer_alpha = False
    #: entrywise by default: each task selects its own features
    compare_role = "independent"
    _low = 0.0

    @property
    def shape(self) -> float:
        """The shape parameter, validated (``ValueError`` naming it when out of range)."""
        return _check_above(getattr(self, self._shape_name), self._shape_name, self._low)

    @property
    def grouped(self) -> bool:
        """``group`` as a bool, validated."""
        return check_bool(self.group, "group")

    def ridge_part(self, alpha: float) -> float:
        """0.0: no squared term (a factor enters the magnitudes only)."""
        return 0.0

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        _check_above(getattr(self, self._shape_name), self._shape_name, self._low)
        check_bool(self.group, "group")
        return self

    def __repr__(self) -> str:
        shown = [f"{self._shape_name}={getattr(self, self._shape_name)!r}"]
        if self.group is not False:
            shown.append(f"group={self.group!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ magnitudes
    def _magnitudes(self, W: np.ndarray) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", W, W)) if self.grouped else np.abs(W)

    def _rho(self, s: np.ndarray, alpha: float) -> np.ndarray:
        raise NotImplementedError

    def _drho(self, s: np.ndarray, alpha: float) -> np.ndarray:
        raise NotImplementedError

    def _candidates(self, u: np.ndarray, L: float, alpha: float):
        """``(s0, s1)``: the two candidates of the scalar prox where it is not convex."""
        raise NotImplementedError

    def _convex_min(self, u: np.ndarray, L: float, alpha: float) -> np.ndarray | None:
        """The closed-form scalar prox where the scalar problem is convex, else None."""
        return None

    def _min(self, u: np.ndarray, L: float, alpha: float) -> np.ndarray:
        """``argmin_{s >= 0} L/2 (s - u)^2 + rho(s)`` for magnitudes ``u >= 0``: exact (the
        rule of the kernels' ``magnitude_min``)."""
        closed = self._convex_min(u, L, alpha)
        if closed is not None:
            return closed
        s0, s1 = self._candidates(u, L, alpha)
        q0 = 0.5 * L * (s0 - u) ** 2 + self._rho(s0, alpha)
        q1 = 0.5 * L * (s1 - u) ** 2 + self._rho(s1, alpha)
        return np.where(q1 < q0, s1, s0)

    # ------------------------------------------------------------------ the scalar rule
    def magnitude_value(self, s: np.ndarray, alpha: float) -> np.ndarray:
        """``rho(s)``, the penalty of magnitudes ``s >= 0``."""
        return self._rho(s, float(alpha))

    def magnitude_slope(self, s: np.ndarray, alpha: float) -> np.ndarray:
        """``rho'(s)`` for magnitudes ``s > 0`` (where rho is smooth)."""
        return self._drho(s, float(alpha))

    def magnitude_prox(self, u: np.ndarray, L: float, alpha: float) -> np.ndarray:
        """``argmin_{s >= 0} L/2 (s - u)^2 + rho(s)``, exact."""
        return self._min(u, float(L), float(alpha))

    def magnitude_kink(self, s: np.ndarray) -> np.ndarray:
        """Where rho has a kink at ``s > 0`` (capped-L1's cap)."""
        return self._kink(s)

    def on_classes(self, layout: Any) -> Penalty:
        """Rows (``group=True``) already hold a feature in every task and class: the penalty
        itself; the entrywise form becomes the penalty of each feature's norm across a task's
        classes (:class:`~regmtl.penalties.class_groups.ClassGroupNonconvex`)."""
        if self.grouped:
            return self
        return ClassGroupNonconvex(self, layout.first, layout.sizes)

    # ------------------------------------------------------------------ the interface
    def value(self, W, alpha):
        return float(np.sum(self._rho(self._magnitudes(np.asarray(W, dtype=np.float64)),
                                      float(alpha))))

    def prox(self, W, step, alpha):
        """The exact (global) minimizer of ``||U - W||^2 / (2 step) + Omega(U)``: the scalar
        rule on every entry's magnitude, or on every row's norm (the row keeps its
        direction)."""
        W = np.asarray(W, dtype=np.float64)
        u = self._magnitudes(W)
        s = self._min(u, 1.0 / step, float(alpha))
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(u > 0, s / u, 0.0)
        return W * (scale[:, None] if self.grouped else scale)

    def bcd_params(self, alpha):
        return BlockStep(float(alpha), self.shape, self._kinds[int(self.grouped)])

    def alpha_max(self, G0: np.ndarray) -> float:
        """``max_jt |G0_jt|`` (``max_j ||G0_j||_2`` by rows): from it on, W = 0 is a
        stationary point (the penalty's slope at 0 is alpha, as for L1 / L2,1), the one the
        solvers return; below it, it is not."""
        return float(self._magnitudes(G0).max()) if G0.size else 0.0

    def subdiff_nearest(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """The point of the Clarke subdifferential at W nearest to ``G`` (whose distances
        :meth:`subdiff_distance` gives): ``rho'(s)`` along W where it is nonzero (at the cap
        the slope clipped to ``[0, alpha]``), G clipped into the ball of radius alpha where it
        is zero."""
        W = np.asarray(W, dtype=np.float64)
        G = np.asarray(G, dtype=np.float64)
        alpha = float(alpha)
        s = self._magnitudes(W)
        on = s > 0
        kink = self._kink(s)
        safe = np.where(on, s, 1.0)
        if self.grouped:
            U = W / safe[:, None]
            c = np.einsum("ij,ij->i", G, U)
            slope = np.where(kink, np.clip(c, 0.0, alpha), self._drho(safe, alpha))
            norm = np.sqrt(np.einsum("ij,ij->i", G, G))
            off = G * np.minimum(1.0, alpha / np.where(norm > 0, norm, 1.0))[:, None]
            return np.where(on[:, None], slope[:, None] * U, off)
        sign = np.sign(W)
        slope = np.where(kink, np.clip(sign * G, 0.0, alpha), self._drho(safe, alpha))
        return np.where(on, slope * sign, np.clip(G, -alpha, alpha))

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        r"""Per entry (per row with ``group=True``): the distance from ``G`` (minus the gradient
        of the data term) to the Clarke subdifferential of the penalty at W.

        At 0 it is the ball of radius alpha (``max(|G| - alpha, 0)``); where the magnitude
        ``s > 0`` is a smooth point of rho it is ``rho'(s) sign(W)`` (``rho'(s) W_j / s``);
        at capped-L1's kink ``s = cap`` the segment between 0 and ``alpha sign(W)``
        (``alpha W_j / s``): the distance to :meth:`subdiff_nearest`'s point."""
        G = np.asarray(G, dtype=np.float64)
        D = G - self.subdiff_nearest(W, G, alpha)
        return np.sqrt(np.einsum("ij,ij->i", D, D)) if self.grouped else np.abs(D)

    def _kink(self, s: np.ndarray) -> np.ndarray:
        """Where rho has a kink at ``s > 0`` (only capped-L1, at the cap)."""
        return np.zeros(s.shape, dtype=bool)


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """The nonzero entries of W: the active set, as for ``L1`` / ``L21`` (for these
        nearly unbiased penalties also the least-squares count of the support)."""
        return DegreesOfFreedom(count=nonzero_count(W))


class MCP(_Nonconvex):
    r"""Minimax concave penalty (Zhang 2010): sparse like L1, without its bias on large
    coefficients.

    .. math::

        \Omega(W) = \sum_g \rho(|W_g|), \qquad
        \rho(s) = \begin{cases} \alpha s - \frac{s^2}{2\gamma} & s \le \gamma\alpha \\
        \frac{\gamma\alpha^2}{2} & s > \gamma\alpha \end{cases}

    over the entries :math:`W_{jt}` (``group=False``: every task selects its own features, like
    :class:`~regmtl.L1`) or over the row norms :math:`\|W_j\|_2` (``group=True``: joint feature
    selection, like :class:`~regmtl.L21`). The slope falls linearly from ``alpha`` at 0 to 0
    at ``gamma alpha``: coefficients beyond that are not shrunk at all. The parametrization is
    skglm's ``MCPenalty(alpha, gamma)``; ``gamma -> inf`` gives L1, ``gamma -> 1`` approaches
    hard thresholding.

    The penalty is not convex: fits return a **stationary point** (a fixed point of block
    coordinate descent, whose steps are exact block minimizers: MCP's "firm thresholding"
    where the block's curvature exceeds ``1 / gamma``, the better of 0 and the unshrunk point
    where it does not), certified by ``kkt_residual_``: the distance of minus the gradient to
    the Clarke subdifferential, relative to the gradient at W = 0 (no duality gap exists). It
    certifies stationarity, not a global minimum. ``alpha_max`` is that of L1 / L2,1: from it
    on, W = 0 is a stationary point. Warm-started paths are paths of stationary points.

    Parameters
    ----------
    gamma : float > 1, default=3.0
        Where the penalty flattens, in units of alpha.
    group : bool, default=False
        Penalize the row norms (feature selection shared by all tasks) instead of the entries.

    See Also
    --------
    regmtl.SCAD : The other classic nonconvex penalty.
    regmtl.CappedL1 : ``alpha min(|x|, cap)``.
    regmtl.L1 : The convex penalty MCP starts from.

    References
    ----------
    Zhang (2010), "Nearly unbiased variable selection under minimax concave penalty", The
    Annals of Statistics 38(2); Breheny & Huang (2011), "Coordinate descent algorithms for
    nonconvex penalized regression", The Annals of Applied Statistics 5(1).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L21, MCP, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10))
    >>> W = np.zeros((10, 3))
    >>> W[:2] = 3.0  # two features, large coefficients, in every task
    >>> Y = X @ W + 0.1 * rng.standard_normal((100, 3))
    >>> mcp = MultiTaskRegressor(penalty=MCP(group=True), alpha=0.3).fit(X, Y)
    >>> l21 = MultiTaskRegressor(penalty=L21(), alpha=0.3).fit(X, Y)
    >>> np.flatnonzero(np.any(mcp.coef_ != 0, axis=0)).tolist()
    [0, 1]
    >>> bool(abs(mcp.coef_[:, :2] - 3).max() < 0.05 < abs(l21.coef_[:, :2] - 3).max())
    True
    >>> bool(mcp.kkt_residual_ < 1e-4) and not hasattr(mcp, "dual_gap_")
    True
    """

    name = "mcp"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = (
        "MCP of d_j |W_jt| (entries) or d_j ||W_j|| (rows): alpha_j = alpha d_j with gamma_j "
        "= gamma / d_j^2")
    compare_label = "MCP (independent)"
    _kinds = (MCP_ENTRYWISE, MCP_ROWS)
    _shape_name = "gamma"
    _low = 1.0
    _param_names = ("gamma", "group")

    def __init__(self, gamma: float = 3.0, group: bool = False):
        self.gamma = gamma
        self.group = group

    def rescaled(self, alpha, f, k=1.0):
        """``MCP(gamma k^2 / f)`` at ``f alpha / k``: ``f rho_{alpha, gamma}(s) =
        rho_{f alpha / k, gamma k^2 / f}(k s)`` (the knot ``gamma alpha`` moves to
        ``k gamma alpha``). Its ``gamma > 1`` is a bound in the units of a standardized
        design, so the rescaled copy is not held to it."""
        pen = MCP(self.gamma * k * k / f, self.group)
        pen._low = 0.0
        return pen, f * alpha / k

    def _rho(self, s, alpha):
        g = self.shape
        return np.where(s <= g * alpha, alpha * s - s * s / (2.0 * g), 0.5 * g * alpha * alpha)

    def _drho(self, s, alpha):
        return np.maximum(alpha - s / self.shape, 0.0)

    def _convex_min(self, u, L, alpha):
        g = self.shape
        if L * g <= 1.0:
            return None
        firm = (u - alpha / L) / (1.0 - 1.0 / (g * L))
        return np.where(u <= alpha / L, 0.0, np.where(u <= g * alpha, firm, u))

    def _candidates(self, u, L, alpha):
        return np.zeros_like(u), np.maximum(u, self.shape * alpha)


class SCAD(_Nonconvex):
    r"""Smoothly clipped absolute deviation (Fan & Li 2001): L1 near 0, constant for large
    coefficients, a quadratic spline between.

    .. math::

        \Omega(W) = \sum_g \rho(|W_g|), \qquad
        \rho(s) = \begin{cases} \alpha s & s \le \alpha \\
        \frac{2\gamma\alpha s - s^2 - \alpha^2}{2(\gamma - 1)} & \alpha < s \le \gamma\alpha \\
        \frac{\alpha^2 (\gamma + 1)}{2} & s > \gamma\alpha \end{cases}

    over the entries (``group=False``) or the row norms :math:`\|W_j\|_2` (``group=True``).
    The slope is ``alpha`` up to ``alpha`` (small coefficients are shrunk as by the lasso),
    then falls linearly to 0 at ``gamma alpha``. The parametrization is skglm's
    ``SCAD(alpha, gamma)``; Fan & Li recommend ``gamma = 3.7``.

    The penalty is not convex: fits return a **stationary point**, each block step the exact
    minimizer of the block's model (SCAD's three-piece thresholding where the curvature
    exceeds ``1 / (gamma - 1)``, the best piece's candidate where it does not), certified by
    ``kkt_residual_`` (the Clarke subdifferential's KKT residual; no duality gap exists): a
    stationary point, not a global minimum. ``alpha_max`` is that of L1 / L2,1.

    Parameters
    ----------
    gamma : float > 2, default=3.7
        Where the penalty flattens, in units of alpha.
    group : bool, default=False
        Penalize the row norms instead of the entries.

    See Also
    --------
    regmtl.MCP : Flattens the same way, from the first coefficient on.
    regmtl.L1 : SCAD with ``gamma -> inf``.

    References
    ----------
    Fan & Li (2001), "Variable selection via nonconcave penalized likelihood and its oracle
    properties", Journal of the American Statistical Association 96(456).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L1, SCAD, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10))
    >>> W = np.zeros((10, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 3.0  # each task its own large coefficient
    >>> Y = X @ W + 0.1 * rng.standard_normal((100, 3))
    >>> scad = MultiTaskRegressor(penalty=SCAD(), alpha=0.3).fit(X, Y)
    >>> lasso = MultiTaskRegressor(penalty=L1(), alpha=0.3).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in scad.coef_]
    [[0], [1], [2]]
    >>> bool(abs(np.diag(scad.coef_) - 3).max() < 0.05 < abs(np.diag(lasso.coef_) - 3).max())
    True
    """

    name = "scad"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "SCAD of d_j |W_jt| (entries) or d_j ||W_j|| (rows)"
    compare_label = "SCAD (independent)"
    _kinds = (SCAD_ENTRYWISE, SCAD_ROWS)
    _shape_name = "gamma"
    _low = 2.0
    _param_names = ("gamma", "group")

    def __init__(self, gamma: float = 3.7, group: bool = False):
        self.gamma = gamma
        self.group = group

    def rescaled(self, alpha, f, k=1.0):
        """``(self, k alpha)`` where ``f = k^2``: ``f rho_alpha(s) = rho_{k alpha}(k s)``; else
        None (SCAD is linear with slope ``alpha`` up to ``alpha`` itself, so no SCAD is
        ``f rho`` on other magnitudes)."""
        return (self, k * alpha) if np.isclose(f, k * k, rtol=1e-12, atol=0.0) else None

    def _rho(self, s, alpha):
        g = self.shape
        mid = (2.0 * g * alpha * s - s * s - alpha * alpha) / (2.0 * (g - 1.0))
        return np.where(s <= alpha, alpha * s,
                        np.where(s <= g * alpha, mid, 0.5 * alpha * alpha * (g + 1.0)))

    def _drho(self, s, alpha):
        g = self.shape
        return np.where(s <= alpha, alpha, np.maximum(g * alpha - s, 0.0) / (g - 1.0))

    def _convex_min(self, u, L, alpha):
        g = self.shape
        if L * (g - 1.0) <= 1.0:
            return None
        mid = ((g - 1.0) * L * u - g * alpha) / ((g - 1.0) * L - 1.0)
        return np.where(u <= alpha / L, 0.0,
                        np.where(u <= alpha + alpha / L, u - alpha / L,
                                 np.where(u <= g * alpha, mid, u)))

    def _candidates(self, u, L, alpha):
        return np.clip(u - alpha / L, 0.0, alpha), np.maximum(u, self.shape * alpha)


class CappedL1(_Nonconvex):
    r"""Capped-L1 (``group=False``), capped-L2,1 (``group=True``) or capped-L1,L1
    (``group="l1"``): the lasso (or group lasso) penalty, capped.

    .. math::

        \Omega(W) = \alpha \sum_{j,t} \min(|W_{jt}|, \text{cap}), \quad
        \alpha \sum_j \min(\|W_j\|_2, \text{cap})
        \quad\text{or}\quad
        \alpha \sum_j \min(\|W_j\|_1, \text{cap}).

    A coefficient (row) past ``cap`` costs the same whatever its size, so it is not shrunk.
    ``group="l1"`` is MALSAR's ``Least_msmtfl_capL1`` (Gong, Ye & Zhang 2012), the row's L1
    norm capped: below the cap every entry of the row is a lasso coefficient, beyond it the
    row is free; ``group=True`` (or ``"l2"``) caps the row's L2 norm, the grouping of
    :class:`~regmtl.L21` (rotation-invariant across tasks, as the other row penalties), and
    ``group=False`` caps every entry. Multi-stage feature learning solves such problems as a
    sequence of reweighted L1 problems (weights ``1{||w_j|| < cap}``); regmtl instead runs
    block coordinate descent with the exact block minimizer (the better of the lasso point
    below the cap and the nearest point beyond it; for ``"l1"`` the lasso point is projected
    on the L1 ball of radius ``cap`` with the tasks' own curvatures), so one solver and its
    warm starts serve every stage at once; both reach stationary points.

    The penalty is not convex: fits return a **stationary point**, certified by
    ``kkt_residual_`` (the Clarke subdifferential's KKT residual: at the kink ``|x| = cap`` it
    holds every slope between 0 and alpha), not a global minimum. ``alpha_max`` is that of
    L1 / L2,1.

    Parameters
    ----------
    cap : float > 0, default=1.0
        The magnitude past which the penalty is constant (in the units of the coefficients:
        of the standardized features when the estimator standardizes).
    group : bool or {"l2", "l1"}, default=False
        Cap the row norms instead of the entries: the L2 norm (True or ``"l2"``) or the L1
        norm (``"l1"``, MALSAR's capped-L1,L1).

    See Also
    --------
    regmtl.MCP : A smooth way to flatten the penalty.

    References
    ----------
    Zhang (2010), "Analysis of multi-stage convex relaxation for sparse regularization",
    JMLR 11; Gong, Ye & Zhang (2012), "Multi-stage multi-task feature learning", NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import CappedL1, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10))
    >>> W = np.zeros((10, 3))
    >>> W[:2] = 3.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((100, 3))
    >>> model = MultiTaskRegressor(penalty=CappedL1(cap=1.0, group=True), alpha=0.3).fit(X, Y)
    >>> np.flatnonzero(np.any(model.coef_ != 0, axis=0)).tolist()
    [0, 1]
    >>> bool(abs(model.coef_[:, :2] - 3).max() < 0.05)
    True
    """

    name = "capped_l1"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha min(d_j |W_jt|, cap) (entries) or of d_j ||W_j|| (rows)"
    compare_label = "capped-L1 (independent)"
    _kinds = (CAPPED_ENTRYWISE, CAPPED_ROWS)
    _shape_name = "cap"
    _low = 0.0
    _param_names = ("cap", "group")

    def __init__(self, cap: float = 1.0, group: bool | str = False):
        self.cap = cap
        self.group = group

    def rescaled(self, alpha, f, k=1.0):
        """``CappedL1(k cap)`` at ``f alpha / k``: ``f alpha min(s, cap) =
        (f alpha / k) min(k s, k cap)``."""
        return CappedL1(self.cap * k, self.group), f * alpha / k

    # ------------------------------------------------------------------ capped-L1,L1
    @property
    def l1_rows(self) -> bool:
        """Whether the rows' L1 norms are capped (``group="l1"``)."""
        return isinstance(self.group, str) and self.group == "l1"

    @property
    def grouped(self) -> bool:
        """Whether rows (not entries) are capped; ``group`` validated."""
        if isinstance(self.group, str):
            if self.group not in ("l1", "l2"):
                raise ValueError(f"group must be True, False, 'l2' or 'l1'; got {self.group!r}.")
            return True
        return check_bool(self.group, "group")

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        _check_above(self.cap, "cap", 0.0)
        self.grouped  # noqa: B018 - validates group
        return self

    def __repr__(self) -> str:
        shown = [f"cap={self.cap!r}"]
        if self.group is not False:
            shown.append(f"group={self.group!r}")
        return f"CappedL1({', '.join(shown)})"

    def _magnitudes(self, W: np.ndarray) -> np.ndarray:
        if self.l1_rows:
            return np.abs(W).sum(axis=1)
        return super()._magnitudes(W)

    def bcd_params(self, alpha):
        if self.l1_rows:
            return BlockStep(float(alpha), self.shape, CAPPED_L1_ROWS)
        return super().bcd_params(alpha)

    def prox(self, W, step, alpha):
        """The exact (global) minimizer of ``||U - W||^2 / (2 step) + Omega(U)``; for
        ``group="l1"`` row by row, the better of the L1-ball lasso point and the nearest
        point beyond the cap."""
        if not self.l1_rows:
            return super().prox(W, step, alpha)
        W = np.ascontiguousarray(W, dtype=np.float64)
        return capped_l1_rows_prox(W, 1.0 / float(step), float(alpha), self.shape)

    def alpha_max(self, G0: np.ndarray) -> float:
        """``max_jt |G0_jt|`` for entries and L1 rows (the subdifferential of the L1 norm at 0
        is the box), ``max_j ||G0_j||_2`` for L2 rows."""
        if self.l1_rows:
            return float(np.abs(G0).max()) if G0.size else 0.0
        return super().alpha_max(G0)

    def subdiff_nearest(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray | None:
        """As for the other nonconvex penalties; None for ``group="l1"`` (not at hand)."""
        if self.l1_rows:
            return None
        return super().subdiff_nearest(W, G, alpha)

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        r"""As for the other nonconvex penalties; for ``group="l1"`` per row: below the cap
        the distance to :math:`\alpha\, \partial\|W_j\|_1` (the sign where
        :math:`W_{jt} \ne 0`, the interval :math:`[-\alpha, \alpha]` where it is 0), beyond it
        :math:`\|G_j\|_2`, and at the kink :math:`\|W_j\|_1 = \text{cap}` (to 1e-12 relative)
        the distance to the segment :math:`\theta\, \alpha\, \partial \|W_j\|_1`,
        :math:`\theta \in [0, 1]` (golden-section search on the convex distance)."""
        if not self.l1_rows:
            return super().subdiff_distance(W, G, alpha)
        W = np.asarray(W, dtype=np.float64)
        G = np.asarray(G, dtype=np.float64)
        alpha, cap = float(alpha), self.shape
        n1 = np.abs(W).sum(axis=1)
        sign = np.sign(W)
        on = W != 0

        def dist(theta: np.ndarray) -> np.ndarray:
            a = alpha * theta[:, None]
            d = np.where(on, G - a * sign, np.maximum(np.abs(G) - a, 0.0))
            return np.sqrt(np.einsum("ij,ij->i", d, d))

        below = dist(np.ones(len(W)))
        beyond = np.sqrt(np.einsum("ij,ij->i", G, G))
        kink = np.abs(n1 - cap) <= 1e-12 * cap
        out = np.where(n1 < cap, below, beyond)
        if kink.any():
            lo, hi = np.zeros(int(kink.sum())), np.ones(int(kink.sum()))
            Gk, onk, sk = G[kink], on[kink], sign[kink]

            def dk(theta):
                a = alpha * theta[:, None]
                d = np.where(onk, Gk - a * sk, np.maximum(np.abs(Gk) - a, 0.0))
                return np.sqrt(np.einsum("ij,ij->i", d, d))

            inv = (np.sqrt(5.0) - 1.0) / 2.0
            for _ in range(80):
                c = hi - inv * (hi - lo)
                d = lo + inv * (hi - lo)
                left = dk(c) < dk(d)
                hi = np.where(left, d, hi)
                lo = np.where(left, lo, c)
            best = np.minimum(np.minimum(dk(lo), dk(hi)), np.minimum(dk(np.zeros_like(lo)),
                                                                      dk(np.ones_like(lo))))
            out[kink] = best
        return out

    def _rho(self, s, alpha):
        return alpha * np.minimum(s, self.shape)

    def _drho(self, s, alpha):
        return np.where(s < self.shape, alpha, 0.0)

    def _kink(self, s):
        return s == self.shape

    def _candidates(self, u, L, alpha):
        cap = self.shape
        return np.clip(u - alpha / L, 0.0, cap), np.maximum(u, cap)
