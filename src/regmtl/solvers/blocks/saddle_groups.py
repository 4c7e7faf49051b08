r"""The primal-dual (PDHG) iterates of the pinball loss held in groups of task blocks, one group
per process that holds blocks (:meth:`~regmtl.blocks.TaskBlocks.keep`).

The saddle point of :mod:`~regmtl.solvers.methods.primal_dual`,

.. math::

    \min_{V, b} \max_{\theta \in [\tau - 1, \tau]} \sum_r c_r \theta_r (y_r - x_r^\top w_t
    - b_t) + \alpha \Omega(V),

couples the tasks only through the penalty: the products with ``X_t`` and ``X_t^T``, the
intercepts and the box of each ``theta_r`` are each task's own, so a group holds its tasks'
columns of V, their intercepts and their rows' ``theta``, and iterates there. Per iteration the
caller sums the groups' prox summaries of ``U = V + s_p spread(X^T c theta)``
(:meth:`~regmtl.penalties.Penalty.prox_summary`: L2,1's row sums of squares, the mean task, the
trace norm's ``p x p`` Gram) block by block and hands them back (:meth:`SaddleGroup.advance`);
where the prox separates over tasks (L1, L2, the elastic net), or one group holds every task, a
group runs the iterations between two certificates alone (:meth:`SaddleGroup.run`).

A certificate is the duality gap of the pinball loss itself from per-block pieces
(:meth:`SaddleGroup.certify`): each task's intercept minimized exactly (its weighted
``tau``-quantile of the residuals), each task's ``theta`` shifted onto
``sum_{r in t} c_r theta_r = 0`` in the box, the loss's value and ``YT_t = sum_{r in t} c_r
theta_r y_r`` per block, and the penalty's pieces of ``G = X^T c theta``
(:func:`~regmtl.solvers.blocks.group_certificate.gap_pieces`: the pinball conjugate is linear on the
box, the squared and Huber tasks' of a loss list quadratic, so the dual at ``s theta`` is
``sum_t s_t YT_t - s_t^2 TT_t / 2``, ``TT_t`` the task's
:meth:`~regmtl.datafits.Datafit.dual_squares`: zero for a pinball task).

A loss list of pinball, squared and Huber tasks iterates the same way, each row's dual step its
own loss's (``datafit.dual_prox``: a clip, a scaling, both), as in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import fit_intercepts
from ..certificates.saddle import centered_dual, dual_box
from ..parts.intercepts import pinball_intercepts
from .group_certificate import gap_pieces

__all__ = ["SaddleGroup", "CURRENT", "AVERAGE", "OWN", "SUMMARY", "COLUMNS"]

#: The two iterates certified at each check: the current one and the average since the restart.
CURRENT, AVERAGE = "current", "average"
#: The routes of the prox over the groups: each group's own (separable over tasks, or one
#: group holds every task), from the summaries summed over the groups (``splits_prox``), or
#: on the point's columns joined by the caller (a prox that does not split over tasks: L1,inf,
#: the temporal and fused penalties, the graph, the dirty models; O(p T) numbers each way per
#: iteration, never a T x T object)
OWN, SUMMARY, COLUMNS = "own", "summary", "columns"


def _columns(x: Any) -> np.ndarray:
    """One array of a group's pieces (a list, one per block, along the last axis)."""
    if isinstance(x, (list, tuple)):
        return np.concatenate([np.asarray(v, dtype=np.float64) for v in x], axis=-1)
    return np.array(x, dtype=np.float64)


class SaddleGroup:
    """The PDHG iterates ``(V, b, theta)`` of some task blocks (``blocks``: one block or a list
    of them, each an in-memory :class:`~regmtl.TaskData`), their sums since the last restart,
    the restart's anchor and the best certified point, started at ``(V, b)`` with
    ``theta`` the loss's subgradient there."""

    def __init__(self, blocks: Any, datafit: Datafit, penalty: Penalty, alpha: float,
                 fit_intercept: bool, V: Any, b: Any):
        self.blocks = list(blocks) if isinstance(blocks, (list, tuple)) else [blocks]
        self.fits = [datafit.bind(k) for k in self.blocks]
        self.penalty, self.alpha, self.fit_intercept = penalty, alpha, fit_intercept
        widths = [k.n_tasks for k in self.blocks]
        self.cuts = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self.V, self.b = _columns(V), _columns(b)
        self.box = [dual_box(fit, k.y) for fit, k in zip(self.fits, self.blocks, strict=True)]
        W = penalty.compose(self.V)
        self.th = [np.clip(fit.theta(k.y, k.linear(W[:, a:e], self.b[a:e])), lo, hi)
                   for fit, k, (a, e), (lo, hi) in zip(self.fits, self.blocks, self._spans(),
                                                       self.box, strict=True)]
        self.U, self.b_new = self.V.copy(), self.b.copy()
        self.certified: dict = {}
        self.best = (self.V.copy(), self.b.copy(), [t.copy() for t in self.th])
        self.restart(None)

    def _spans(self) -> list[tuple[int, int]]:
        return list(zip(self.cuts[:-1].tolist(), self.cuts[1:].tolist(), strict=True))

    def _parts(self):
        return zip(self.blocks, self.fits, self._spans(), self.box, strict=True)

    def operator_norm2(self, n_iter: int = 50) -> float:
        """Power-iteration estimate of ``||K||^2`` on the group's tasks in the ``c``-weighted
        metric (K is block-diagonal over the tasks: the whole one's is the groups' largest)."""
        rng = np.random.default_rng(0)
        V = rng.standard_normal((self.blocks[0].n_features, int(self.cuts[-1])))
        v = rng.standard_normal(V.shape[1]) if self.fit_intercept else np.zeros(V.shape[1])
        lam = 0.0
        for _ in range(n_iter):
            nrm = np.sqrt(float(np.vdot(V, V)) + float(np.dot(v, v)))
            if nrm == 0 or not np.isfinite(nrm):
                break
            V, v = V / nrm, v / nrm
            for k, _fit, (a, e), _box in self._parts():
                u = k.c * k.linear(V[:, a:e], v[a:e])
                V[:, a:e] = k.adjoint(u)
                v[a:e] = k.task_sums(u) if self.fit_intercept else 0.0
            lam = np.sqrt(float(np.vdot(V, V)) + float(np.dot(v, v)))
        return lam

    # ------------------------------------------------------------------ iterations
    def _primal(self, sp: float) -> None:
        """``U = V + s_p spread(X^T c theta)`` and ``b+ = b + s_p sum_t c theta``."""
        G = np.empty((self.blocks[0].n_features, int(self.cuts[-1])))
        for (k, _fit, (a, e), _box), th in zip(self._parts(), self.th, strict=True):
            u = k.c * th
            G[:, a:e] = k.adjoint(u)
            if self.fit_intercept:
                self.b_new[a:e] = self.b[a:e] + sp * k.task_sums(u)
        np.multiply(self.penalty.spread(G), sp, out=self.U)
        self.U += self.V

    def _dual(self, V_new: np.ndarray, sd: float) -> None:
        """``theta+ = clip(theta + s_d (y - K(2 V+ - V, 2 b+ - b)))``, then ``(V, b)`` moved;
        the sums of the average."""
        W_bar = self.penalty.compose(2.0 * V_new - self.V)
        b_bar = 2.0 * self.b_new - self.b
        for i, (k, fit, (a, e), _box) in enumerate(self._parts()):
            f_bar = k.linear(W_bar[:, a:e], b_bar[a:e])
            self.th[i] = fit.dual_prox(k.y, self.th[i] + sd * (k.y - f_bar), sd)
            self.sums[2][i] += self.th[i]
        np.copyto(self.V, V_new)
        np.copyto(self.b, self.b_new)
        self.sums[0] += self.V
        self.sums[1] += self.b
        self.n_avg += 1

    def run(self, n: int, sp: float, sd: float) -> None:
        """``n`` iterations, the prox the penalty's own (separable over tasks, or this group
        holds every task)."""
        for _ in range(n):
            self._primal(sp)
            V_new = self.penalty.prox(self.U, sp, self.alpha)
            self._dual(V_new, sd)

    def advance(self, given: Any, sp: float, sd: float, finish: bool,
                route: str = SUMMARY) -> list | None:
        """With ``finish``, the prox step of the last :meth:`advance` and the dual step: the
        prox from the groups' summed summary ``given`` (``route`` :data:`SUMMARY`), or
        ``given`` the prox's columns of this group's blocks, in its blocks' order, formed by
        the caller on the point made whole (:data:`COLUMNS`: a prox that does not split over
        tasks). Then (with ``sp > 0``) the next point ``U``, block by block: its prox summary
        for the caller to sum, or its columns for the caller to join."""
        if finish:
            V_new = (self.penalty.prox_given(self.U, given, self.step, self.alpha)
                     if route == SUMMARY else _columns(given))
            self._dual(V_new, sd)
        if sp <= 0:
            return None
        self.step = sp
        self._primal(sp)
        if route == COLUMNS:
            return [np.array(self.U[..., a:e]) for a, e in self._spans()]
        return [self.penalty.prox_summary(self.U[..., a:e]) for a, e in self._spans()]

    # ------------------------------------------------------------------ certificates
    def _point(self, which: str) -> tuple:
        if which == CURRENT:
            return self.V, self.b, self.th
        n = max(self.n_avg, 1)
        return self.sums[0] / n, self.sums[1] / n, [t / n for t in self.sums[2]]

    def _exact_intercepts(self, V: np.ndarray, b: np.ndarray) -> tuple:
        """``(W, b, scores)`` at V with each task's intercept minimized exactly (a copy of
        ``b``; the pinball loss's in closed form), the scores per block."""
        W = self.penalty.compose(V)
        b = b.copy()
        scores = []
        for k, fit, (a, e), _box in self._parts():
            f = k.linear(W[:, a:e], b[a:e])
            if self.fit_intercept:
                S, bk = fit.state(k.y, f), b[a:e].copy()
                if fit.piecewise_linear:
                    pinball_intercepts(k, fit.quantile, S, bk)
                else:
                    S, bk = fit_intercepts(k, fit, S, bk)
                b[a:e], f = bk, fit.scores(k.y, S)
            scores.append(f)
        return W, b, scores

    def certify(self, which: str) -> list[tuple]:
        """The pieces of the duality gap at the current or the average iterate, block by block:
        ``(loss, gap piece)``, the loss's value with each task's intercept minimized exactly
        (kept, with the point, for :meth:`keep_best`)."""
        V, b, th = self._point(which)
        W, b, scores = self._exact_intercepts(V, b)
        G = np.empty_like(W)
        YT, TT = np.zeros(b.shape), np.zeros(b.shape)
        losses = []
        for (k, fit, (a, e), (lo, hi)), t, f in zip(self._parts(), th, scores, strict=True):
            losses.append(fit.value(k.y, f, k.c))
            tc = centered_dual(k, t, lo, hi, self.fit_intercept)
            G[:, a:e] = k.adjoint(k.c * tc)
            YT[a:e] = k.task_sums(k.c * tc * k.y)
            TT[a:e] = k.task_sums(fit.dual_squares(k.y, tc, k.c))
        self.certified[which] = (V, b, th)
        pieces = gap_pieces(self.penalty, self.alpha, V, G, TT, YT, np.zeros(b.shape),
                            self._spans(), False)
        return list(zip(losses, pieces, strict=True))

    def kkt_point(self, which: str, route: str) -> list[tuple]:
        """The pieces of the fixed-point residual of the iteration at the current or the
        average iterate (the in-memory certificate of a penalty without a dual, or ``alpha = 0``:
        :func:`~regmtl.solvers.certificates.saddle.saddle_certificate`), block by block: ``(loss,
        squares, piece)``. ``loss`` is the loss's value with each task's intercept minimized
        exactly, ``squares`` the dual part ``sum c r^2``, ``r = theta - dual_prox(theta + y - f,
        1)``, and the intercepts' ``(sum_t c theta)^2``. The primal part ``D = V - prox(V +
        spread(X^T c theta), 1)``: in ``squares`` where the prox is the group's own (:data:`OWN`),
        else ``piece`` is the prox summary of the point (summed by the caller, then
        :meth:`kkt_squares`) or ``(V, point)`` columns (:data:`COLUMNS`: the caller joins them)."""
        V, b, th = self._point(which)
        W, b, scores = self._exact_intercepts(V, b)
        G = np.empty_like(W)
        out = []
        for (k, fit, (a, e), _box), t, f in zip(self._parts(), th, scores, strict=True):
            u = k.c * t
            G[:, a:e] = k.adjoint(u)
            r = t - fit.dual_prox(k.y, t + k.y - f, 1.0)
            sq = float(np.dot(k.c, r * r))
            if self.fit_intercept:
                sq += float(np.sum(np.asarray(k.task_sums(u)) ** 2))
            out.append([fit.value(k.y, f, k.c), sq, None])
        self.certified[which] = (V, b, th)
        Z = V + self.penalty.spread(G)
        self.kkt = (V, Z)
        for (a, e), piece in zip(self._spans(), out, strict=True):
            if route == SUMMARY:
                piece[2] = self.penalty.prox_summary(Z[..., a:e])
            elif route == COLUMNS:
                piece[2] = (np.array(V[..., a:e]), np.array(Z[..., a:e]))
        if route == OWN:
            D = V - self.penalty.prox(Z, 1.0, self.alpha)
            for (a, e), piece in zip(self._spans(), out, strict=True):
                piece[1] += float(np.vdot(D[..., a:e], D[..., a:e]))
        return [tuple(x) for x in out]

    def kkt_squares(self, summary: Any) -> list[float]:
        """``|V - prox(V + spread(X^T c theta), 1)|^2`` block by block, the prox from the
        groups' summed prox summary of :meth:`kkt_point`'s point."""
        V, Z = self.kkt
        D = V - self.penalty.prox_given(Z, summary, 1.0, self.alpha)
        return [float(np.vdot(D[..., a:e], D[..., a:e])) for a, e in self._spans()]

    def keep_best(self, which: str) -> None:
        """The point certified last as ``which`` becomes the best one (its intercepts
        minimized)."""
        V, b, th = self.certified[which]
        self.best = (V.copy(), b.copy(), [t.copy() for t in th])

    def restart(self, which: str | None) -> list[tuple[float, float]]:
        """Restart from the current or the average iterate (None: from where it is, at the
        start): the squared distances it moved since the last restart, block by block
        (``(|dV|^2 + |db|^2, sum c dtheta^2)``, for the primal weight), then the sums
        emptied and the anchor moved to it."""
        moved = []
        if which is not None:
            V, b, th = self._point(which)
            V, b = np.array(V, copy=True), np.array(b, copy=True)
            th = [np.array(t, copy=True) for t in th]
            aV, ab, ath = self.anchor
            for (k, _fit, (a, e), _box), t, t0 in zip(self._parts(), th, ath, strict=True):
                dV, db = V[..., a:e] - aV[..., a:e], b[a:e] - ab[a:e]
                moved.append((float(np.vdot(dV, dV) + np.dot(db, db)),
                              float(np.dot(k.c, (t - t0) ** 2))))
            self.V, self.b, self.th = V, b, th
        self.anchor = (self.V.copy(), self.b.copy(), [t.copy() for t in self.th])
        self.sums = [np.zeros_like(self.V), np.zeros_like(self.b),
                     [np.zeros_like(t) for t in self.th]]
        self.n_avg = 0
        return moved

    def widths(self) -> list[int]:
        """The number of tasks of each block the group holds."""
        return np.diff(self.cuts).tolist()

    def columns(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The best point's ``(V, b)`` columns, block by block."""
        V, b, _ = self.best
        return [(V[..., a:e], b[a:e]) for a, e in self._spans()]
