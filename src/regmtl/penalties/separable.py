r"""Row-separable penalties: solved by block coordinate descent, certified by a duality gap.

=========================  ==========================================================
penalty                    Omega(W)
=========================  ==========================================================
``L1()``                   alpha * sum_jt |W_jt|
``L2()``                   alpha / 2 * ||W||_F^2
``ElasticNet(rho)``        alpha * (rho ||W||_1 + (1 - rho) / 2 ||W||_F^2)
``L21(rho)``               alpha * (rho sum_j ||W_j||_2 + (1 - rho) / 2 ||W||_F^2)
=========================  ==========================================================

``L1``, ``ElasticNet`` and ``L21`` take ``positive=True``: the same penalty plus the indicator
of ``W >= 0`` (every coefficient constrained nonnegative). Its pieces follow from one fact: on
``w >= 0``, ``<g, w> <= <g_+, w>`` with equality where the minimizer lives, so the prox, the
block step and the conjugate are those of the unconstrained penalty applied to the positive
part ``max(., 0)`` of their argument, and every dual norm reads only the positive part.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    ENTRYWISE,
    POSITIVE_ENTRYWISE,
    POSITIVE_ROWS,
    ROWS,
    BlockStep,
    Penalty,
    SharedPart,
    check_bool,
    check_ratio,
    inner,
    is_blocked,
    norm_scaling,
)
from .class_groups import ClassGroupElastic
from .dof import DegreesOfFreedom, SupportSmoother, support_threshold

__all__ = ["L1", "L2", "ElasticNet", "L21", "MultiSource"]


class _ElasticType(Penalty):
    r"""``alpha * (rho * sum_g ||W_g|| + (1 - rho) / 2 ||W||_F^2)`` over groups g, plus the
    indicator of ``W >= 0`` with ``positive=True``.

    Groups are single entries (``group=False``) or rows (``group=True``).
    """

    group: bool = False
    splits_prox = True
    #: the sign constraint ``W >= 0`` (a parameter of L1, ElasticNet and L21; L2 has none)
    positive = False
    _param_names = ("l1_ratio", "positive")

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_ratio(self.l1_ratio, "l1_ratio")
        check_bool(self.positive, "positive")
        return self

    def __init__(self, l1_ratio: float = 1.0, positive: bool = False):
        self.l1_ratio = l1_ratio
        self.positive = positive

    @property
    def intervals(self) -> str | None:  # type: ignore[override]
        """``"debiased"`` for the lasso and L2,1 without a ridge part or sign constraint (the
        debiased lasso's setting), else None."""
        return "debiased" if self.debiasable and self.rho == 1.0 and not self.positive else None

    #: whether its pure-norm form (``l1_ratio=1``) is the debiased lasso's (L1, L2,1)
    debiasable = False

    @property
    def separates_over_tasks(self) -> bool:  # type: ignore[override]
        """Entrywise groups, or rows with ``l1_ratio=0`` (a ridge): one term per task."""
        return not self.group or self.rho == 0.0

    @property
    def linear_program(self) -> str | None:  # type: ignore[override]
        """``"entrywise"`` for the lasso (entries, ``l1_ratio=1``, the sign constraint
        too); None with a ridge part or row groups (not a linear program)."""
        return "entrywise" if not self.group and self.rho == 1.0 else None

    @property
    def cone_program(self) -> str | None:  # type: ignore[override]
        """``"row_norm"`` for row groups without the sign constraint (a second-order cone
        per row); None otherwise (entries: a linear program)."""
        return "row_norm" if self.group and not self.positive else None

    @property
    def transfer_strategy(self) -> str | None:  # type: ignore[override]
        """``"support"``; None with ``l1_ratio=0`` (the ridge part alone shares nothing)."""
        return None if float(self.l1_ratio) == 0.0 else "support"

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The support, ``d_j = ||W_j||_2`` (rows) or ``mean_t |W_jt|`` (entries), with
        ``rho = l1_ratio``."""
        d = np.linalg.norm(V, axis=1) if self.group else np.abs(V).mean(axis=1)
        return [SharedPart("support", d, rho=float(self.l1_ratio))]

    def __repr__(self) -> str:
        # ``positive`` is shown only when set, so the unconstrained penalties read as before
        shown = [f"{k}={getattr(self, k)!r}" for k in self._param_names
                 if not (k == "positive" and self.positive is False)]
        return f"{type(self).__name__}({', '.join(shown)})"

    def on_classes(self, layout: Any) -> Penalty:
        """Rows (L2,1) and the ridge treat a task's classes jointly: the penalty itself; the
        entrywise norm becomes one group per feature and task over the task's classes
        (:class:`~regmtl.penalties.class_groups.ClassGroupElastic`; with one task, that is
        :class:`~regmtl.L21`, rows and their solvers)."""
        if self.group or self.rho == 0.0:
            return self
        if layout.n_tasks == 1:
            return L21(self.rho, self.sign_constrained)
        return ClassGroupElastic(self.rho, self.sign_constrained, layout.first, layout.sizes)

    @property
    def rho(self) -> float:
        """``l1_ratio`` as a float, validated (``ValueError`` outside [0, 1])."""
        return check_ratio(self.l1_ratio, "l1_ratio")

    @property
    def homogeneity(self) -> float | None:
        """1 for the norm (``l1_ratio=1``), 2 for the ridge (0), None in between."""
        return {1.0: 1.0, 0.0: 2.0}.get(self.rho)

    def ridge_part(self, alpha: float) -> float:
        """``alpha (1 - rho)``: the ridge beside the norm of entries or rows."""
        return float(alpha * (1.0 - self.rho))

    @property
    def sign_constrained(self) -> bool:
        """``positive`` as a bool, validated (``ValueError`` naming it otherwise)."""
        return check_bool(self.positive, "positive")

    def _norms(self, G: np.ndarray) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", G, G)) if self.group else np.abs(G)

    def _dual_part(self, G: np.ndarray) -> np.ndarray:
        """What the dual norm reads of G: G, or its positive part under the sign constraint."""
        return np.maximum(G, 0.0) if self.sign_constrained else G

    def _sums(self, W, alpha):
        """``alpha (rho sum_j N(w_j) + (1 - rho) |W|^2 / 2)``, lazy where W is in blocks."""
        rho = self.rho
        val = rho * self._norms(W).sum() if rho > 0 else 0.0
        if rho < 1:
            val = val + 0.5 * (1.0 - rho) * inner(W, W)
        return alpha * val

    def value(self, W, alpha):
        if self.sign_constrained and bool((W < 0).any()):
            return float("inf")
        return float(self._sums(W, alpha))

    def lazy_value(self, W, alpha):
        """On coefficients held in blocks elsewhere (without the sign constraint, whose test
        is a round trip of its own): :meth:`value`'s sums, lazy."""
        if not is_blocked(W) or self.sign_constrained:
            return self.value(W, alpha)
        return self._sums(W, alpha)

    def prox(self, W, step, alpha):
        """Soft-thresholding of the entries (``max(W - thr, 0)`` under the sign constraint) or
        the group soft-thresholding of the rows (of the positive part ``max(W, 0)`` under the
        sign constraint: the exact prox of the group norm plus the orthant), then the ridge's
        shrink ``1 / (1 + step alpha (1 - rho))``."""
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        if self.sign_constrained:
            W = np.maximum(W, 0.0)
        if self.group:
            nrm = self._norms(W)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
            return W * (scale * shrink)[:, None]
        return np.sign(W) * np.maximum(np.abs(W) - thr, 0.0) * shrink

    def prox_summary(self, W):
        """The rows' sums of squares (of ``max(W, 0)`` under the sign constraint) for the
        row norms; None for the entries' thresholding (separable over tasks)."""
        if not self.group:
            return None
        if self.sign_constrained:
            W = np.maximum(W, 0.0)
        return np.einsum("ij,ij->i", W, W)

    def prox_given(self, W, summary, step, alpha):
        """:meth:`prox` on some tasks' columns, written over them (:meth:`prox_into`), the
        rows' norms from ``summary``."""
        if not self.group:
            return self.prox_into(W, step, alpha)
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        if self.sign_constrained:
            np.maximum(W, 0.0, out=W)
        nrm = np.sqrt(summary)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
        W *= (scale * shrink)[:, None]
        return W

    def prox_into(self, W, step, alpha):
        """:meth:`prox` in place on W: no second p x T array (row norms, or the entries'
        thresholding one row at a time)."""
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        if self.sign_constrained:
            np.maximum(W, 0.0, out=W)
        if self.group:
            nrm = self._norms(W)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
            W *= (scale * shrink)[:, None]
            return W
        for row in W:  # (one row's temporaries at a time)
            mag = np.maximum(np.abs(row) - thr, 0.0)
            mag *= shrink
            np.copysign(mag, row, out=row)
        return W

    def bcd_params(self, alpha):
        rho = self.rho
        if self.sign_constrained:
            kind = POSITIVE_ROWS if self.group else POSITIVE_ENTRYWISE
        else:
            kind = ROWS if self.group else ENTRYWISE
        return BlockStep(alpha * rho, alpha * (1.0 - rho), kind)

    def dual_norm(self, G: np.ndarray) -> float:
        r"""Dual norm of the sparsity part: :math:`\max_{jt} |G_{jt}|` (L1) or
        :math:`\max_j \|G_j\|_2` (L2,1); of the positive part :math:`\max(G, 0)` under the
        sign constraint (a support function, 0 when G <= 0)."""
        return float(self._norms(self._dual_part(G)).max()) if G.size else 0.0

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float | np.ndarray:
        """1 when the conjugate is finite (rho < 1); else the largest scaling into the dual
        ball, per task for the entrywise norm (its dual is separable over tasks, so one task's
        violation does not shrink the others' dual points). Under the sign constraint the ball
        bounds the positive part of G only."""
        if self.rho < 1.0:
            return 1.0
        if not self.group:
            G = self._dual_part(G)
            m = np.abs(G).max(axis=0) if G.shape[0] else np.zeros(G.shape[1])
            return np.where(m <= alpha, 1.0, alpha / np.maximum(m, alpha))
        m = self.dual_norm(G)
        return 1.0 if m <= alpha else alpha / m

    def lazy_dual_scaling(self, G, alpha):
        """On a G held in blocks elsewhere, the group norm's scaling lazy:
        ``alpha / max(N*(G), alpha)`` (1 exactly inside the ball, as :meth:`dual_scaling`)."""
        if not (is_blocked(G) and self.group and self.rho >= 1.0 and G.size):
            return self.dual_scaling(G, alpha)
        return alpha / np.maximum(self._norms(self._dual_part(G)).max(), alpha)

    def gap_summary(self, V, G):
        """Rows with a norm part (L2,1, ``0 < rho``): the rows' sums of squares of V and of
        what the dual norm reads of G, and V's most negative entry (the sign constraint's
        test); None for the penalties separable over tasks."""
        if self.separates_over_tasks:
            return None
        Gd = self._dual_part(G)
        return (np.einsum("ij,ij->i", V, V), np.einsum("ij,ij->i", Gd, Gd),
                float(-V.min(initial=0.0)))

    def gap_given(self, summaries, alpha):
        """:meth:`value`, :meth:`dual_scaling` and :meth:`conjugate` from the rows' norms."""
        vv = np.sum([x[0] for x in summaries], axis=0)
        nrm = np.sqrt(np.sum([x[1] for x in summaries], axis=0))
        rho = self.rho
        if self.sign_constrained and max(x[2] for x in summaries) > 0:
            value = float("inf")
        else:
            value = float(alpha * (rho * np.sqrt(vv).sum() + 0.5 * (1.0 - rho) * vv.sum()))
        if rho == 1.0:
            return value, norm_scaling(float(nrm.max(initial=0.0)), alpha), 0.0
        excess = np.maximum(nrm - alpha * rho, 0.0)
        return value, 1.0, float(excess @ excess / (2.0 * alpha * (1.0 - rho)))

    def dual_clip(self, G: np.ndarray, alpha: float) -> np.ndarray | None:
        """The nearest point of the dual ball to G, block by block (what
        :meth:`dual_scaling` scales into it as a whole): entries clipped to ``[-alpha,
        alpha]`` (only from above under the sign constraint), rows shrunk to norm ``alpha``;
        None with a ridge part (rho < 1: the conjugate is finite everywhere)."""
        if self.rho < 1.0:
            return None
        if not self.group:
            return np.minimum(G, alpha) if self.sign_constrained else np.clip(G, -alpha, alpha)
        nrm = self._norms(self._dual_part(G))
        shrink = np.where(nrm > alpha, alpha / np.maximum(nrm, alpha), 1.0)
        if self.sign_constrained:
            return np.minimum(G, np.maximum(G, 0.0) * shrink[:, None])
        return G * shrink[:, None]

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``Omega*(G) = sum_g (||G_g|| - alpha rho)_+^2 / (2 alpha (1 - rho))`` (0 if rho = 1),
        with ``max(G, 0)`` in place of G under the sign constraint."""
        rho = self.rho
        if rho == 1.0:
            return 0.0
        excess = np.maximum(self._norms(self._dual_part(G)) - alpha * rho, 0.0)
        return float(np.dot(excess.ravel(), excess.ravel()) / (2.0 * alpha * (1.0 - rho)))

    def alpha_max(self, G0: np.ndarray) -> float:
        rho = self.rho
        if rho == 0.0:
            raise ValueError(
                f"{self!r} has no alpha_max: with l1_ratio=0 no finite alpha gives W = 0. "
                "Use l1_ratio > 0 or give an explicit alpha grid."
            )
        return self.dual_norm(G0) / rho

    def directional_derivative(self, W: np.ndarray, D: np.ndarray, alpha: float) -> float:
        """The right derivative of ``t -> Omega(W + t D)`` at ``t = 0`` (``inf`` where the
        sign constraint forbids the direction)."""
        if self.sign_constrained and bool(np.any((W < 0) | ((W == 0) & (D < 0)))):
            return float("inf")
        rho = self.rho
        val = (1.0 - rho) * float(inner(W, D)) if rho < 1 else 0.0
        if rho > 0:
            nw = self._norms(W)
            if self.group:
                on = nw > 0
                val += rho * float(np.sum(np.einsum("ij,ij->i", W[on], D[on]) / nw[on]))
                val += rho * float(self._norms(D[~on]).sum())
            else:
                val += rho * float(np.sum(np.where(W != 0, np.sign(W) * D, np.abs(D))))
        return alpha * val

    def max_step(self, W: np.ndarray, D: np.ndarray) -> float:
        """The largest ``t >= 0`` with ``W + t D`` in the penalty's domain (for ``W`` in it):
        ``inf`` without the sign constraint, else where the first entry reaches 0, so that
        ``W + t D >= 0`` holds in floating point."""
        down = D < 0
        if not self.sign_constrained or not down.any():
            return float("inf")
        t = float(np.min(W[down] / -D[down]))
        for _ in range(100):
            if t <= 0.0 or not np.any(W + t * D < 0):
                return max(t, 0.0)
            t = float(np.nextafter(t, 0.0))
        return 0.0

    def project(self, W: np.ndarray) -> np.ndarray:
        """The nearest point of the penalty's domain: ``max(W, 0)`` under the sign constraint,
        else W itself."""
        return np.maximum(W, 0.0) if self.sign_constrained else W

    def active_gradient(self, W: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(D, mask)``: the gradient of Omega at W where it is smooth (``mask``: nonzero
        entries, or every entry of a nonzero row for groups, only its positive entries under
        the sign constraint), 0 elsewhere."""
        rho = self.rho
        D = alpha * (1.0 - rho) * W
        if self.group:
            nw = self._norms(W)
            active = nw > 0
            D[active] += alpha * rho * W[active] / nw[active, None]
            mask = np.repeat(active[:, None], W.shape[1], axis=1)
            if self.sign_constrained:  # entries at 0 sit on the constraint's boundary
                mask &= W > 0
        else:
            mask = W != 0
            D += alpha * rho * np.sign(W)
        return D, mask

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per group: distance from ``G`` (minus the gradient) to the subdifferential at W.

        Under the sign constraint the subdifferential gains the normal cone of ``W >= 0``
        (any value ``<= 0`` on the entries at 0): at a zero entry the distance is
        ``max(V - l1, 0)`` (L1), at a zero row ``max(||V_+|| - l1, 0)``, at a zero entry of
        a nonzero row ``max(V, 0)``, with ``V = G - alpha (1 - rho) W``."""
        rho = self.rho
        V = G - alpha * (1.0 - rho) * W
        l1 = alpha * rho
        pos = self.sign_constrained
        if self.group:
            nw = self._norms(W)
            active = nw > 0
            out = np.maximum(self._norms(self._dual_part(V)) - l1, 0.0)
            if active.any():
                D = V[active] - l1 * W[active] / nw[active, None]
                if pos:
                    D = np.where(W[active] > 0, D, np.maximum(D, 0.0))
                out[active] = np.sqrt(np.einsum("ij,ij->i", D, D))
            return out
        if pos:
            return np.where(W > 0, np.abs(V - l1), np.maximum(V - l1, 0.0))
        return np.where(W != 0, np.abs(V - l1 * np.sign(W)), np.maximum(np.abs(V) - l1, 0.0))

    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        r"""The divergence of the fit in the targets, over the support.

        - ``rho = 0`` (a ridge): ``tr((D + alpha I)^{-1} D)`` over every entry;
        - entries, ``rho = 1``: the support, the entries with ``|W_jt| > tol max|W|``
          (``regmtl.penalties.dof.support_threshold``; Zou, Hastie & Tibshirani 2007);
          ``rho < 1``: ``tr((D + alpha (1 - rho) I)^{-1} D)`` over it;
        - rows (L2,1): the group lasso's divergence ``tr((D + H)^{-1} D)`` over the rows with
          ``||W_j|| > tol max_j ||W_j||`` (only their positive entries under the sign
          constraint), ``H_j = alpha rho (I - u_j u_j^T) / ||W_j|| + alpha (1 - rho) I``,
          ``u_j = W_j / ||W_j||``: the curvature of the row norm (Vaiter, Deledalle, Peyre,
          Fadili & Dossal 2012; for an orthonormal design Yuan & Lin's 2006
          ``sum_j 1{W_j != 0} + sum_j (||W_j|| / ||W_j^LS||) (T - 1)``).
        """
        rho = self.rho
        W = np.asarray(W, dtype=np.float64)
        p, T = W.shape
        ridge = np.full(T, alpha * (1.0 - rho))
        if rho == 0.0:
            return DegreesOfFreedom(smoother=SupportSmoother(np.ones((p, T), dtype=bool), ridge))
        if not self.group:
            active = np.abs(W) > support_threshold(W, tol)
            if rho == 1.0:
                return DegreesOfFreedom(count=int(np.count_nonzero(active)))
            return DegreesOfFreedom(smoother=SupportSmoother(active, ridge))
        norms = self._norms(W)
        rows = norms > support_threshold(norms, tol)
        if self.sign_constrained:  # an entry at 0 of a selected row is held by the constraint
            active = (W > support_threshold(W, tol)) & rows[:, None]
        else:
            active = np.repeat(rows[:, None], T, axis=1)
        safe = np.where(rows, norms, 1.0)
        weight = np.where(rows, alpha * rho / safe, 0.0)
        direction = np.where(active, W / safe[:, None], 0.0)
        return DegreesOfFreedom(smoother=SupportSmoother(active, ridge, weight, direction))


class L1(_ElasticType):
    r"""Lasso penalty: every task selects its own features.

    .. math::

        \Omega(W) = \alpha \sum_{j,t} |W_{jt}|
        \;\Big(+\ \iota_{W \geq 0}(W) \text{ with } \texttt{positive=True}\Big)

    Entrywise sparsity, separable over tasks: the fit is T independent lasso problems that
    share only ``alpha``, so this is the sparse *independent* baseline to compare a
    multi-task penalty with. Pick it when the tasks are believed to use different features.
    With one task it is scikit-learn's ``Lasso(alpha=alpha)`` (``positive=True``:
    ``Lasso(alpha=alpha, positive=True)``). Solved by block coordinate descent, certified by a
    duality gap, with ``alpha_max = max_jt |G0_jt|`` (``max_jt max(G0_jt, 0)`` under the sign
    constraint, ``G0`` minus the gradient of the data term at W = 0).

    Parameters
    ----------
    positive : bool, default=False
        Constrain every coefficient to be ``>= 0`` (the penalty plus the indicator
        :math:`\iota_{W \geq 0}`): the prox is ``max(v - thr, 0)``, and the dual norm reads
        only the positive part of the gradient.

    See Also
    --------
    regmtl.L21 : The same features for every task.
    regmtl.ElasticNet : Lasso with a ridge part.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L1, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0  # task t uses feature t only
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=L1(), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0], [1], [2]]
    >>> W[3, 0] = -2.0  # a negative effect: the sign constraint holds it at 0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> free = MultiTaskRegressor(penalty=L1(), alpha=0.1).fit(X, Y)
    >>> signed = MultiTaskRegressor(penalty=L1(positive=True), alpha=0.1).fit(X, Y)
    >>> round(float(free.coef_[0, 3]), 1), float(signed.coef_[0, 3])
    (-1.9, 0.0)
    >>> bool(np.all(signed.coef_ >= 0))
    True
    """

    name = "l1"
    debiasable = True
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha sum_jt d_j |W_jt| (entries; d_jt per feature and task too)"
    _param_names = ("positive",)
    #: compare fits it as its lasso baselines
    compare_role = None

    def __init__(self, positive: bool = False):
        self.l1_ratio = 1.0
        self.positive = positive


class L2(_ElasticType):
    r"""Ridge penalty: independent ridge regressions, one per task.

    .. math::

        \Omega(W) = \frac{\alpha}{2} \|W\|_F^2

    Shrinks every coefficient and shares nothing between tasks (T independent fits with one
    ``alpha``): the dense *independent* baseline. With one task it is scikit-learn's
    ``Ridge(alpha=n * alpha)`` (the data term is averaged over the n samples), and with the
    logistic loss ``LogisticRegression(C=1 / (n * alpha))``. No finite ``alpha`` makes W
    zero, so regularization paths use a grid around the data's scale
    (:func:`regmtl.selection.alpha_scale`).

    See Also
    --------
    regmtl.MeanRegularized : Ridge towards the mean task instead of towards 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from regmtl import L2, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 8)), rng.standard_normal(60)
    >>> model = MultiTaskRegressor(penalty=L2(), alpha=0.1, tol=1e-10).fit(X, y)
    >>> ridge = Ridge(alpha=60 * 0.1).fit(X, y)
    >>> bool(np.allclose(model.coef_, ridge.coef_, atol=1e-6))
    True
    """

    name = "l2"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = ("alpha / 2 sum_j d_j^2 ||W_j||^2 (the ridge of d_j w_j; d_jt per task too; "
                    "d_j in place of d_j^2 with factor_convention='glmnet')")
    _param_names = ()
    #: compare fits it as its ridge baselines
    compare_role = None

    def __init__(self):
        self.l1_ratio = 0.0


class ElasticNet(_ElasticType):
    r"""Elastic net: entrywise sparsity with a ridge part, every task on its own.

    .. math::

        \Omega(W) = \alpha \Big(\rho \sum_{j,t} |W_{jt}|
        + \frac{1 - \rho}{2} \|W\|_F^2\Big), \qquad \rho = \texttt{l1\_ratio}
        \;\Big(+\ \iota_{W \geq 0}(W) \text{ with } \texttt{positive=True}\Big).

    Separable over tasks like :class:`~regmtl.L1`; the ridge part keeps groups of correlated
    features together instead of picking one of them. With one task it is scikit-learn's
    ``ElasticNet(alpha=alpha, l1_ratio=rho)`` (and ``positive=True`` its
    ``ElasticNet(..., positive=True)``). ``alpha_max = max_jt |G0_jt| / rho``
    (``max_jt max(G0_jt, 0) / rho`` under the sign constraint).

    Parameters
    ----------
    l1_ratio : float in [0, 1], default=0.5
        Weight ``rho`` of the L1 part: 1 is :class:`~regmtl.L1`, 0 is :class:`~regmtl.L2`.
    positive : bool, default=False
        Constrain every coefficient to be ``>= 0``: the prox is ``max(v - thr, 0)`` followed
        by the ridge's shrink, and the conjugate is that of the unconstrained penalty at the
        positive part ``max(G, 0)``.

    See Also
    --------
    regmtl.L21 : The multi-task version (rows of W selected jointly).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import ElasticNet, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=ElasticNet(l1_ratio=0.9), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0], [1], [2]]
    """

    name = "elasticnet"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = (
        "alpha (rho sum_jt d_j |W_jt| + (1 - rho) / 2 sum_j d_j^2 ||W_j||^2) (d_jt per task "
        "too; d_j in the ridge part with factor_convention='glmnet', glmnet's)")
    compare_role = "independent"
    compare_label = "elastic net (independent)"

    def __init__(self, l1_ratio: float = 0.5, positive: bool = False):
        self.l1_ratio = l1_ratio
        self.positive = positive


class L21(_ElasticType):
    r"""L2,1 (group lasso over features): joint feature selection across tasks.

    .. math::

        \Omega(W) = \alpha \Big(\rho \sum_j \|W_j\|_2 + \frac{1 - \rho}{2} \|W\|_F^2\Big),
        \qquad \rho = \texttt{l1\_ratio}
        \;\Big(+\ \iota_{W \geq 0}(W) \text{ with } \texttt{positive=True}\Big).

    ``W_j`` is feature j across all tasks, so a feature is kept or dropped for every task at
    once while its weights may differ from task to task. Pick it when the tasks are believed
    to depend on a common small set of features (the default penalty of the estimators). With
    ``l1_ratio=1`` (the default) and a shared design this is scikit-learn's
    ``MultiTaskLasso``; with ``l1_ratio < 1`` its ``MultiTaskElasticNet``, coefficient for
    coefficient. Solved by block coordinate descent, certified by a duality gap,
    ``alpha_max = max_j ||G0_j||_2 / rho`` (``max_j ||max(G0_j, 0)||_2 / rho`` under the sign
    constraint).

    Parameters
    ----------
    l1_ratio : float in [0, 1], default=1.0
        Weight ``rho`` of the group part; below 1 a ridge part is added.
    positive : bool, default=False
        Constrain every coefficient to be ``>= 0``. The prox of a row is the group
        soft-thresholding of its positive part ``max(W_j, 0)`` (exact for the group norm plus
        the orthant), and the dual norm of G reads ``max_j ||max(G_j, 0)||_2``: a feature
        enters when its gradient's positive part is large enough.

    See Also
    --------
    regmtl.L1 : Features selected task by task.
    regmtl.Dirty : Shared features plus task-specific exceptions.

    References
    ----------
    Obozinski, Taskar & Jordan (2010), "Joint covariate selection and joint subspace selection
    for multiple classification problems", Statistics and Computing 20(2).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import L21, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 6))
    >>> W = np.zeros((6, 3))
    >>> W[0, 0] = W[1, 1] = W[2, 2] = 2.0
    >>> Y = X @ W + 0.1 * rng.standard_normal((60, 3))
    >>> model = MultiTaskRegressor(penalty=L21(), alpha=0.1).fit(X, Y)
    >>> [np.flatnonzero(w).tolist() for w in model.coef_]
    [[0, 1, 2], [0, 1, 2], [0, 1, 2]]
    """

    name = "l21"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = ("alpha (rho sum_j d_j ||W_j||_2 + (1 - rho) / 2 sum_j d_j^2 ||W_j||^2) "
                    "(rows; d_j in the ridge part with factor_convention='glmnet')")
    group = True
    compare_label = "MTL L2,1"
    debiasable = True

    def __init__(self, l1_ratio: float = 1.0, positive: bool = False):
        self.l1_ratio = l1_ratio
        self.positive = positive


class MultiSource(L21):
    r"""Incomplete multi-source feature learning (iMSF): L2,1 over the observed features.

    .. math::

        \Omega(W) = \alpha \sum_j \big\|(W_{jt})_{t \in O_j}\big\|_2,
        \qquad W_{jt} = 0 \ \text{for} \ t \notin O_j,

    where the features come in consecutive blocks (sources: e.g. MRI, PET, CSF), each task
    is a group of samples that share which sources they have, and ``O_j`` is the set of
    tasks that observe feature j's source. A feature is kept or dropped jointly across the
    tasks that observe it. Give the data with every unobserved source as a block of NaN
    columns over all the rows of that task (lists per task, or long form with task ids);
    the fit reads ``O`` from those NaN blocks, fills them with zeros and keeps their
    coefficients at exactly 0. A NaN inside an observed block, a block missing for only part
    of a task's rows, or a task with no source is refused. ``predict`` takes the same NaN
    blocks: a task's prediction uses the sources it observes. Long-form Dask input is read
    the same way (each task block holds whole tasks).

    On the zero-filled data the unobserved coefficients have a zero gradient, so this is
    L2,1 restricted to the observed pairs: block coordinate descent, certified by a duality
    gap whose dual norm is the row norm over observed entries, and
    ``alpha_max = max_j ||(G0_jt)_{t in O_j}||_2``.

    MALSAR's ``Least_iMSF(X_Set, Y, z)`` makes one task per group of samples sharing their
    sources and minimizes ``1/2 sum_t ||X_t w_t - y_t||^2 + z lambda_max sum_j ||W_j||_2``
    without intercepts: ``MultiTaskRegressor(MultiSource(blocks), alpha=z * alpha_max,
    task_weight="samples", fit_intercept=False)``, ``alpha_max`` from
    :func:`regmtl.alpha_max` under the same settings (the objectives differ by the factor
    ``N / T``). ``Logistic_iMSF`` minimizes ``sum_t mean_i log(1 + exp(-y (x w_t + c_t)))``
    plus the same penalty, with intercepts: ``MultiTaskClassifier(MultiSource(blocks),
    alpha=z * alpha_max)`` with the defaults, the same objective. Both run MALSAR's
    ``Construct_iMSF`` first, which z-scores every source over the rows that observe it
    (mean 0, standard deviation with ``n - 1``) and drops the rows that observe no source and
    the groups whose rows have fewer than two distinct targets: do the same to the data
    before the fit and before ``alpha_max``, else the two solve different problems.

    Parameters
    ----------
    blocks : tuple of int
        The sizes of the sources, in the order of the columns; they must add up to the
        number of features.

    See Also
    --------
    regmtl.L21 : Every feature observed by every task.

    References
    ----------
    Yuan, Wang, Thompson, Narayan & Ye (2012), "Multi-source learning for joint analysis of
    incomplete multi-modality neuroimaging data", KDD.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MultiSource, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X1, X2 = rng.standard_normal((40, 4)), rng.standard_normal((30, 4))
    >>> y1, y2 = X1[:, 0] + X1[:, 2], X2[:, 0]
    >>> X2[:, 2:] = np.nan  # the second group lacks the second source (columns 2, 3)
    >>> model = MultiTaskRegressor(MultiSource(blocks=(2, 2)), alpha=0.05).fit([X1, X2],
    ...                                                                        [y1, y2])
    >>> model.coef_[1, 2:].tolist()  # unobserved: exactly zero
    [0.0, 0.0]
    >>> model.predict([X1[:1], X2[:1]])[1].shape
    (1,)
    """

    name = "multi_source"
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha sum_j d_j ||W_j over its observing tasks||_2 (rows)"
    cone_program = None  # (the unobserved entries are held at zero: not a row norm's cone)
    debiasable = False  # (its entries held at zero are not the debiased lasso's setting)
    l1_ratio = 1.0
    positive = False
    _param_names = ("blocks",)
    by_name = False

    def __init__(self, blocks: tuple[int, ...] = ()):
        # a list or an array of sizes is kept as a tuple; anything else (a number, a string)
        # is kept as given, for :meth:`block_sizes` to refuse by name
        sequence = np.iterable(blocks) and not isinstance(blocks, (str, bytes, dict))
        self.blocks = tuple(blocks) if sequence and not isinstance(blocks, tuple) else blocks

    def feature_blocks(self) -> tuple[int, ...]:
        """The sources' sizes (:meth:`block_sizes`): a task may lack a source as a whole."""
        return self.block_sizes()

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        sizes = self.block_sizes()
        if sum(sizes) != n_features:
            raise ValueError(
                f"MultiSource blocks {sizes} cover {sum(sizes)} features, but the data have "
                f"{n_features}: give one size per source, adding up to the number of "
                "columns (sources in the order of the columns)."
            )
        return self

    def block_sizes(self) -> tuple[int, ...]:
        """``blocks`` validated: a nonempty tuple of positive ints (``ValueError`` otherwise).

        Returns
        -------
        tuple of int
            The sizes of the sources.
        """
        b = self.blocks
        if (not isinstance(b, tuple) or not b
                or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                           and s > 0 for s in b)):
            one = (f" One source of {b} columns is blocks=({b},)."
                   if isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b > 0
                   else "")
            raise ValueError(
                f"MultiSource blocks must be a nonempty tuple of positive ints (the sizes of "
                f"the sources, in column order: blocks=(3, 2) for columns 0-2 and 3-4); got "
                f"{b!r}.{one}"
            )
        return tuple(int(s) for s in b)

