r"""Gram form of block coordinate descent for the squared loss on a shared design.

When every task sees the same ``X`` (n x p) and each task's rows weigh the same (``c_t``; no
sample weights, no missing labels), the data term of task t depends on the data only through
the centered Gram matrix ``Q = X_c^T X_c``, ``B = X_c^T Y_c`` and ``||y_c,t||^2``::

    sum_{r in t} c_t (y_rt - f_rt)^2 / 2 = c_t / 2 (||y_c,t||^2 - 2 w_t.B_t + w_t.Q w_t),

so an epoch costs O(p T) per changed block, independent of n. It is used two ways:

- on a working set ``S`` (``Q_S`` from the columns of S, built once per outer iteration), which
  makes the inner epochs cheap whatever n is;
- on all features (:class:`GramStats`, computed once per design and kept on the
  :class:`~regmtl.taskdata.TaskData` for warm-started paths) when n is large against p: then
  the outer iterations need no pass over the data either.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...penalties.base import ENTRYWISE
from ...taskdata import TaskData
from ._kernels import bcd_epoch_gram, bcd_epoch_task_gram, column_moments
from .sign_search import STEPS, searched

__all__ = ["GramStats", "GramInner", "TaskGramInner", "gram_stats", "shared_row_weights",
           "task_row_weight", "CHUNK"]


#: Rows per chunk of the weighted Gram sums (a chunk of X times the weights is the only copy).
CHUNK = 4096


def shared_row_weights(data: TaskData) -> np.ndarray | None:
    """The rows' sample weights ``s`` (n,) of a shared design when every task weighs its rows
    alike (row r of task t weighs ``c_t s_r``: the same sample weights in each task, no missing
    label), None when it does not; ``None`` too without sample weights (uniform rows)."""
    if not data.shared or data.observed is not None or data.sample_weight is None:
        return None
    def make():
        sw = data.sample_weight.reshape(data.n_tasks, data.X.shape[0])
        return sw[0].copy() if np.array_equal(sw, np.broadcast_to(
            sw[0], sw.shape)) and sw[0].any() else False

    out = data.memo("shared_row_weights", make)
    return None if out is False else out


def task_row_weight(data: TaskData) -> np.ndarray:
    """``c_t`` (T,): the weight of task t's rows, each row then weighing ``c_t s_r`` with the
    shared sample weights ``s`` (:func:`shared_row_weights`; 1 without)."""
    s = shared_row_weights(data)
    if s is None:
        return data.c[data.indptr[:-1]].copy()
    r0 = int(np.flatnonzero(s > 0)[0])
    return data.c[data.indptr[:-1] + r0] / s[r0]


class GramStats:
    """``Q = X_c^T S X_c`` (p x p), ``B = X_c^T S Y_c`` (p x T), ``yy[t] = y_c,t' S y_c,t``,
    the (weighted) column means ``xbar`` (zero without centering) and ``ss = diag(Q)``
    computed in two passes (zero for a constant column). ``S`` holds the rows' shared sample
    weights (:func:`shared_row_weights`; the identity without): the rows of task t weigh
    ``c_t s_r``, so that integer weights and repeated rows give the same sums."""

    def __init__(self, data: TaskData, center: bool):
        s = shared_row_weights(data)
        if sp.issparse(data.X):
            self._sparse(data, center, np.ones(data.X.shape[0]) if s is None else s)
            return
        if s is not None:
            self._weighted(data, center, s)
            return
        X = data.X
        n, p, T = X.shape[0], data.n_features, data.n_tasks
        Y = data.y.reshape(T, n).T
        if center:
            xbar, ss = np.zeros(p), np.zeros(p)
            column_moments(X, xbar, ss)
            ybar = Y.mean(axis=0)
        else:
            xbar, ybar = np.zeros(p), np.zeros(T)
            ss = np.einsum("ij,ij->j", X, X)
        Q = X.T @ X
        Q -= n * np.outer(xbar, xbar)
        B = X.T @ Y
        B -= n * np.outer(xbar, ybar)
        self.Q, self.B, self.xbar, self.ybar, self.ss = Q, B, xbar, ybar, ss
        self.yy = np.einsum("it,it->t", Y, Y) - n * ybar**2

    def _weighted(self, data: TaskData, center: bool, s: np.ndarray) -> None:
        """The sums with row weights ``s``, over chunks of rows (no weighted copy of X)."""
        X = data.X
        n, p, T = X.shape[0], data.n_features, data.n_tasks
        Y = data.y.reshape(T, n).T
        total = float(s.sum())
        xbar = (s @ X) / total if center else np.zeros(p)
        ybar = (s @ Y) / total if center else np.zeros(T)
        Q, B = np.zeros((p, p)), np.zeros((p, T))
        ss, yy = np.zeros(p), np.zeros(T)
        for lo in range(0, n, CHUNK):
            Xc = X[lo:lo + CHUNK] - xbar
            Yc = Y[lo:lo + CHUNK] - ybar
            SX = Xc * s[lo:lo + CHUNK, None]
            Q += SX.T @ Xc
            B += SX.T @ Yc
            ss += np.einsum("ij,ij->j", SX, Xc)
            yy += np.einsum("it,it->t", Yc * s[lo:lo + CHUNK, None], Yc)
        self.Q, self.B, self.xbar, self.ybar, self.ss, self.yy = Q, B, xbar, ybar, ss, yy

    def _sparse(self, data: TaskData, center: bool, s: np.ndarray) -> None:
        """A sparse design's sums, from ``X^T S X`` (never centered entry by entry: the means
        come off the p x p and p x T products)."""
        X = data.X
        n, p, T = X.shape[0], data.n_features, data.n_tasks
        Y = data.y.reshape(T, n).T
        total = float(s.sum())
        SX = sp.diags(s) @ X
        xbar = np.asarray(SX.sum(axis=0)).ravel() / total if center else np.zeros(p)
        ybar = (s @ Y) / total if center else np.zeros(T)
        Q = (X.T @ SX).toarray()
        Q -= total * np.outer(xbar, xbar)
        B = np.asarray(SX.T @ Y) - total * np.outer(xbar, ybar)
        self.Q, self.B, self.xbar, self.ybar = Q, B, xbar, ybar
        self.ss = np.maximum(np.diag(Q).copy(), 0.0)
        self.yy = (s @ (Y * Y)) - total * ybar**2

    def correlations(self, W: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``X_c^T R`` per task for the coefficients W (nonzero only on ``rows``), p x T."""
        return self.B - self.Q[:, rows] @ W[rows]


def gram_stats(data: TaskData, center: bool) -> GramStats:
    """The full Gram statistics of a shared dense design, computed once per TaskData."""
    return data.memo(("gram", bool(center)), lambda: GramStats(data, center))


class GramInner:
    """Epochs on the coefficients of a set S of k features, in Gram form.

    Starts from ``W0`` (k x T) with ``E0 = X_S,c^T R0`` (k x T), ``rr0[t] = ||R0_t||^2`` and
    ``yR0[t] = y_c,t . R0_t`` (all unweighted) for the residual ``R0 = Y_c - X_S,c W0``. Holds
    the current coefficients ``W`` and ``Et = (X_S,c^T R)^T``.
    """

    def __init__(self, Q, E0, rr0, yR0, W0, ct, L, params, penalty, alpha):
        self.Q = np.ascontiguousarray(Q)
        self.E0, self.rr0, self.yR0 = E0, rr0, yR0
        self.W0 = W0.copy()
        self.W = np.ascontiguousarray(W0.copy())
        self.B = E0 + self.Q @ W0  # X_S,c^T Y_c
        self.Et = np.ascontiguousarray(E0.T)
        self.ct, self.L = ct, np.ascontiguousarray(L)
        self.params, self.penalty, self.alpha = params, penalty, alpha
        T = W0.shape[1]
        self.g, self.delta = np.zeros(T), np.zeros(T)

    def epoch(self) -> float:
        l1, l2, group = self.params
        return bcd_epoch_gram(self.Q, self.Et, self.ct, self.W, self.L, l1, l2, group, self.g,
                              self.delta)

    def _sums(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        D = W - self.W0
        QD = self.Q @ D
        rr = self.rr0 - 2.0 * np.einsum("it,it->t", D, self.E0) + np.einsum("it,it->t", D, QD)
        yR = self.yR0 - np.einsum("it,it->t", D, self.B)
        return rr, yR, QD

    def objective(self, W: np.ndarray) -> float:
        rr = self._sums(W)[0]
        return 0.5 * float(np.dot(self.ct, rr)) + self.penalty.value(W, self.alpha)

    def accept(self, W: np.ndarray) -> None:
        """Move to the coefficients ``W`` (e.g. an extrapolated point)."""
        self.W[:] = W
        self.Et[:] = (self.E0 - self.Q @ (W - self.W0)).T

    def along(self, D: np.ndarray) -> tuple[float, float, np.ndarray]:
        """The data term along ``W + t D``: ``data(0) - a t + b t^2 / 2``; returns
        ``(a, b, Q D)``."""
        QD = self.Q @ D
        a = float(np.dot(self.ct, np.einsum("it,ti->t", D, self.Et)))
        b = float(np.dot(self.ct, np.einsum("it,it->t", D, QD)))
        return a, b, QD

    def move(self, D: np.ndarray, t: float, QD: np.ndarray) -> None:
        self.W += t * D
        self.Et -= t * QD.T

    def try_point(self, W: np.ndarray) -> bool:
        """Move to ``W`` if it lowers the objective."""
        if self.objective(W) < self.objective(self.W):
            self.accept(W)
            return True
        return False

    def record(self) -> None:
        """(Residuals are not formed in Gram form: no dual extrapolation.)"""

    def newton_cost(self) -> float:
        """What a call of :meth:`newton` costs, in epochs: ``STEPS`` solves on the k active
        features per task (``k^3 / 3`` each) against an epoch's ``|S|^2`` per task."""
        k = int(np.count_nonzero(np.any(self.W != 0.0, axis=1)))
        return STEPS * k**3 / (3.0 * max(len(self.W), 1) ** 2)

    def newton(self) -> bool:
        """Where epochs crawl, for an entrywise penalty: the search over sign patterns
        (:func:`~regmtl.solvers.parts.sign_search.sign_search`) on task t's Hessian ``c_t Q``;
        True when it lowered the objective."""
        l1, l2, kind = self.params
        if kind != ENTRYWISE or l1 <= 0.0:
            return False
        W = searched(self.W, self.ct * self.Et.T,
                     lambda f: self.Q[np.ix_(f, f)][None] * self.ct[:, None, None], l1, l2)
        return W is not None and self.try_point(W)

    def gap_terms(self) -> tuple[float, list]:
        """``RR = sum_r c_r R_r^2`` and the dual point ``R``: ``[(G, TT, YT)]`` with per-task
        sums ``TT_t = sum_{r in t} c_r R_r^2`` and ``YT_t = sum_{r in t} c_r y_r R_r``."""
        rr, yR, _ = self._sums(self.W)
        return float(np.dot(self.ct, rr)), [(self.ct * self.Et.T, self.ct * rr, self.ct * yR)]


class TaskGramInner:
    """Epochs on the coefficients of a set S of k features with one Gram per task (lists whose
    tasks have more rows than features): ``Qs[t]`` = task t's weighted, centered Gram on S,
    ``Et[t]`` = minus the gradient of its data term on S, ``e``, ``gw`` its per-task constants
    (``RR_t = e_t - 2 g_t.w_t + w_t' Q_t w_t``). Same interface as :class:`GramInner`."""

    def __init__(self, Qs, g, e, W0, L, params, penalty, alpha):
        self.Qs = np.ascontiguousarray(Qs)
        self.gS, self.e = np.ascontiguousarray(g), e  # g: T x k
        self.W = np.ascontiguousarray(W0.copy())
        self.Et = np.ascontiguousarray(self.gS - self._QW(self.W))
        self.L = np.ascontiguousarray(L)
        self.params, self.penalty, self.alpha = params, penalty, alpha
        T = W0.shape[1]
        self.g, self.delta = np.zeros(T), np.zeros(T)

    def _QW(self, W: np.ndarray) -> np.ndarray:
        return np.matmul(self.Qs, W.T[:, :, None])[:, :, 0]  # T x k

    def epoch(self) -> float:
        l1, l2, group = self.params
        return bcd_epoch_task_gram(self.Qs, self.Et, self.W, self.L, l1, l2, group, self.g,
                                   self.delta)

    def _rr(self, W: np.ndarray, QW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gw = np.einsum("tk,kt->t", self.gS, W)
        return self.e - 2.0 * gw + np.einsum("kt,tk->t", W, QW), self.e - gw

    def objective(self, W: np.ndarray) -> float:
        rr, _ = self._rr(W, self._QW(W))
        return 0.5 * float(rr.sum()) + self.penalty.value(W, self.alpha)

    def accept(self, W: np.ndarray) -> None:
        self.W[:] = W
        self.Et[:] = self.gS - self._QW(W)

    def try_point(self, W: np.ndarray) -> bool:
        if self.objective(W) < self.objective(self.W):
            self.accept(W)
            return True
        return False

    def along(self, D: np.ndarray) -> tuple[float, float, np.ndarray]:
        QD = self._QW(D)  # T x k
        return (float(np.einsum("kt,tk->", D, self.Et)), float(np.einsum("kt,tk->", D, QD)),
                QD)

    def move(self, D: np.ndarray, t: float, QD: np.ndarray) -> None:
        self.W += t * D
        self.Et -= t * QD

    def record(self) -> None:
        """(Residuals are not formed in Gram form: no dual extrapolation.)"""

    def newton_cost(self) -> float:
        """What a call of :meth:`newton` costs, in epochs (as :meth:`GramInner.newton_cost`)."""
        k = int(np.count_nonzero(np.any(self.W != 0.0, axis=1)))
        return STEPS * k**3 / (3.0 * max(len(self.W), 1) ** 2)

    def newton(self) -> bool:
        """Where epochs crawl, for an entrywise penalty: the search over sign patterns on
        each task's Gram ``Qs[t]``; True when it lowered the objective."""
        l1, l2, kind = self.params
        if kind != ENTRYWISE or l1 <= 0.0:
            return False
        W = searched(self.W, self.Et.T, lambda f: self.Qs[:, f][:, :, f], l1, l2)
        return W is not None and self.try_point(W)

    def gap_terms(self) -> tuple[float, list]:
        rr, yR = self._rr(self.W, self.gS - self.Et)
        return float(rr.sum()), [(self.Et.T, rr, yR)]
