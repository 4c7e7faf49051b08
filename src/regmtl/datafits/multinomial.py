r"""The multinomial (softmax) loss of tasks with more than two classes."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from .base import Datafit
from .on_blocks import BlockLoss

__all__ = ["Multinomial"]


class Multinomial(Datafit):
    r"""Multinomial logistic loss: task t's row with class :math:`k_i` among :math:`K_t`
    classes has one score per class, :math:`\eta_{i1}, \dots, \eta_{iK_t}`, and

    .. math::

        \ell(y_i, \eta_i) = \log \sum_{k=1}^{K_t} e^{\eta_{ik}} - \eta_{i k_i}.

    Tasks may have different classes. The problem is laid out by
    :func:`regmtl.classes.expand_classes`: one column of W per class of each task (so the
    coefficients of feature j over a task's classes sit side by side in row j of W, which
    L2,1 and the trace norm couple with the other tasks'), each row scored once per class with
    a 0/1 target; the loss reads a row's ``K_t`` scores as one group. Its dual variable is
    :math:`\theta_{ik} = [k = k_i] - p_{ik}` (the one-hot target minus the softmax), and the
    conjugate term is the entropy :math:`-\sum_k a_k \log a_k` of :math:`a = y - \theta` on
    the probability simplex, where the dual points are projected.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 4))
    >>> y = np.argmax(X[:, :3] + 0.5 * rng.standard_normal((300, 3)), axis=1)
    >>> clf = rm.MultiTaskClassifier("l21", alpha=0.01).fit(X, y)
    >>> clf.classes_.tolist(), clf.coef_.shape, clf.predict_proba(X[:2]).shape
    ([0, 1, 2], (3, 4), (2, 3))
    """

    name = "multinomial"
    kind = "multiclass"
    coupled = True
    curvature = 0.5
    dual_strong_concavity = 1.0

    def __init__(self) -> None:
        self._perm: np.ndarray | None = None

    # ------------------------------------------------------------------ rows
    def bind(self, data: Any) -> Multinomial:
        """This loss on the rows of an expanded problem (``data.class_blocks``): the flat
        observations grouped by original row (a table of ``n_groups x K_max`` scores, a row
        per original observation, its classes in order)."""
        blocks = getattr(data, "class_blocks", None)
        if blocks is None:
            raise ValueError("the multinomial loss is fitted on the classes' layout "
                             "(regmtl.classes.expand_classes); MultiTaskClassifier builds it "
                             "for tasks with more than two classes.")
        if not getattr(data, "rows_local", True):  # task blocks elsewhere: bound on each
            return BlockLoss(self, data)
        bound = getattr(self, "_bound", None)  # (held, so that identity means the same rows)
        if bound is not None and bound[0] is data.indptr and bound[1] is blocks:
            return self  # (already on these rows: the estimator, solve and reference bind)
        first, K = blocks[:, 0].astype(np.int64), blocks[:, 1].astype(np.int64)
        sizes = np.diff(data.indptr)[first]
        goff = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        new = Multinomial()
        new._K, new._sizes, new._block_groups = K, sizes, goff
        new._n_groups, new._kmax = int(sizes.sum()), int(K.max())
        new._uniform = bool(np.all(K == K[0]) and np.all(sizes == sizes[0]))
        block = np.repeat(np.arange(first.size), K)
        seg_of = np.repeat(np.arange(block.size), np.diff(data.indptr))
        new._seg_of = seg_of
        if not new._uniform:  # each flat observation's cell of the table
            new._row_g = goff[block][seg_of] + (np.arange(data.n_obs) - data.indptr[seg_of])
            new._row_k = (np.arange(block.size) - first[block])[seg_of]
        new._n_obs = int(data.n_obs)
        new._bound = (data.indptr, blocks)
        return new

    def _check(self, v: np.ndarray) -> None:
        if getattr(self, "_n_obs", None) != np.shape(v)[0]:
            raise ValueError("a Multinomial loss is used on the rows it is bound to "
                             "(Multinomial.bind).")

    def _table(self, v: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Flat values as the (n_groups, K_max) table, ``fill`` past a group's classes."""
        self._check(v)
        v = np.asarray(v, dtype=np.float64)
        if self._uniform:
            B, K, n = self._K.size, self._kmax, int(self._sizes[0])
            return v.reshape(B, K, n).transpose(0, 2, 1).reshape(B * n, K)
        out = np.full((self._n_groups, self._kmax), fill)
        out[self._row_g, self._row_k] = v
        return out

    def _flat(self, table: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`_table`."""
        if self._uniform:
            B, K, n = self._K.size, self._kmax, int(self._sizes[0])
            return np.ascontiguousarray(table.reshape(B, n, K).transpose(0, 2, 1)).ravel()
        return table[self._row_g, self._row_k]

    @staticmethod
    def _softmax_table(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log-sum-exp of each row of the score table, its probabilities)."""
        m = F.max(axis=1)
        E = np.exp(F - m[:, None])
        s = E.sum(axis=1)
        return m + np.log(s), E / s[:, None]

    def _softmax(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._softmax_table(self._table(f, -np.inf))

    # ------------------------------------------------------------------ the loss
    def value(self, y, f, c):
        lse, _ = self._softmax(f)
        return float(np.dot(self._table(c)[:, 0], lse) - np.dot(c, y * f))

    def theta(self, y, f):
        return y - self.mean(f)

    def mean(self, f):
        """Each score's class probability (the softmax of its group)."""
        return self._flat(self._softmax(f)[1])

    def hessian(self, y, f):
        p = self.mean(f)
        return p * (1.0 - p)

    def deviance(self, y, f):
        """Twice the group's loss, on the row of its class (0 on the others)."""
        lse, _ = self._softmax(f)
        return 2.0 * y * (self._flat(np.repeat(lse[:, None], self._kmax, axis=1)) - f)

    def dual_value(self, y, theta, c):
        a = np.clip(y - theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a)))

    def feasible(self, y, theta):
        """``y - a`` with ``a`` the projection of ``y - theta`` onto each group's simplex."""
        A = self._table(y - theta, -np.inf)
        srt = -np.sort(-A, axis=1)  # each row, largest first (padding last)
        csum = np.cumsum(np.where(np.isfinite(srt), srt, 0.0), axis=1)
        rank = np.arange(1, A.shape[1] + 1)
        ok = np.isfinite(srt) & (srt - (csum - 1.0) / rank > 0)
        rho = np.max(np.where(ok, rank, 0), axis=1)
        rho = np.maximum(rho, 1)
        tau = (csum[np.arange(A.shape[0]), rho - 1] - 1.0) / rho
        return y - self._flat(np.maximum(A - tau[:, None], 0.0))

    def fit_intercepts(self, y: np.ndarray, c: np.ndarray, S: np.ndarray, b: np.ndarray,
                       max_newton: int = 50, rtol: float = 1e-13) -> None:
        r"""Minimize over each task's ``K`` intercepts (in place on the scores ``S`` and
        ``b``, one intercept per segment): Newton steps with the tasks' ``K x K`` Hessians
        :math:`\sum_i c_i (\mathrm{diag}(p_i) - p_i p_i^T)` (singular along the common shift
        of a task's classes, which changes nothing: solved with ``1 1^T`` added), all tasks
        at once, each step halved for the tasks whose loss would rise."""
        Kmax, n_blocks = self._kmax, self._K.size
        live = np.arange(Kmax)[None, :] < self._K[:, None]
        Y, cg = self._table(y), self._table(c)[:, 0]
        tot = np.add.reduceat(cg, self._block_groups)
        F0 = self._table(S, -np.inf)
        block_of = np.repeat(np.arange(n_blocks), self._sizes)

        def losses(F):
            lse, P = self._softmax_table(F)
            fy = np.sum(Y * np.where(np.isfinite(F), F, 0.0), axis=1)
            return np.add.reduceat(cg * (lse - fy), self._block_groups), P

        delta = np.zeros((n_blocks, Kmax))
        value, P = losses(F0)
        eye = np.eye(Kmax)
        for _ in range(max_newton):
            g = np.add.reduceat(cg[:, None] * (Y - P), self._block_groups)  # minus gradient
            if np.all(np.abs(g) <= rtol * tot[:, None]):
                break
            W = cg[:, None] * P
            H = np.add.reduceat(W, self._block_groups)[:, :, None] * eye - self._outer(W, P)
            both = live[:, :, None] & live[:, None, :]
            H = np.where(both, H + tot[:, None, None] / self._K[:, None, None], 0.0)
            H += eye[None] * (~live)[:, :, None]  # unused classes: identity
            step = np.linalg.solve(H, np.where(live, g, 0.0)[..., None])[..., 0]
            t = np.ones(n_blocks)
            for _ in range(30):  # halve the blocks whose loss would rise
                trial = delta + t[:, None] * step
                new, P_new = losses(F0 + trial[block_of])
                worse = new > value + 1e-15 * np.abs(value)
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            delta, value, P = trial, new, P_new
        shift = delta[live]  # (the segments are the blocks' classes in order)
        S += shift[self._seg_of]
        b += shift

    def _outer(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Per block, ``sum_g A_g B_g^T`` of two group tables (n_blocks, K_max, K_max): one
        product per block where every block has the same rows, else summed by segments."""
        if self._uniform:
            n = int(self._sizes[0])
            shape = (self._K.size, n, self._kmax)
            return np.einsum("bgk,bgl->bkl", A.reshape(shape), B.reshape(shape))
        return np.add.reduceat(A[:, :, None] * B[:, None, :], self._block_groups)

    def neg2_log_likelihood(self, data, f, s):
        """Categorical: ``2 sum_i s_i l(y_i, eta_i)``."""
        return 2.0 * self.value(data.y, f, s)

    def newton_weights(self, y, f):
        """The probabilities ``p``: ``diag(p)`` lies above each row's Hessian
        ``diag(p) - p p^T``, so the separable model majorizes the loss (the diagonal of the
        Hessian alone, ``p (1 - p)``, would not, and its steps overshoot along a row's
        classes)."""
        return self.mean(f)

