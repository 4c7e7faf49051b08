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
    link = "multinomial"
    scale_degree = 0  # labels: X alone is brought to 1
    coupled = True
    curvature = 0.5
    dual_strong_concavity = 1.0

    def sample_targets(self, f, rng):
        """Labels 0, 1, 2 of the scores ``(f, -f, f / 2)`` plus Gumbel noise, each present."""
        scores = np.column_stack([f, -f, 0.5 * f]) + rng.gumbel(size=(f.shape[0], 3))
        y = np.argmax(scores, axis=1).astype(float)
        y[:3] = (0.0, 1.0, 2.0)
        return y

    def single_task_anchor(self):
        """scikit-learn's ``LogisticRegression`` (multinomial)."""
        from .logistic import logistic_anchor

        return logistic_anchor, "l2", "LogisticRegression"

    def anchor_curvature(self, y):
        """1/4, as the logistic loss."""
        return 0.25

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
        new._first, new._K, new._sizes, new._block_groups = first, K, sizes, goff
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

    def class_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The blocks of the rows this loss is bound to: each block's first column of W
        (segment), its number of classes and its number of rows (a row's classes are the
        block's consecutive segments, each holding the block's rows in the same order)."""
        if getattr(self, "_n_obs", None) is None:
            raise ValueError("a Multinomial loss has a layout once bound (Multinomial.bind).")
        return self._first, self._K, self._sizes

    def _check(self, v: np.ndarray) -> None:
        if getattr(self, "_n_obs", None) != np.shape(v)[0]:
            raise ValueError("a Multinomial loss is used on the rows it is bound to "
                             "(Multinomial.bind).")

    def _table(self, v: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Flat values as the (n_groups, K_max) table, ``fill`` past a group's classes."""
        out = np.full((self._n_groups, self._kmax), fill)
        out[self._row_g, self._row_k] = v
        return out

    def _groups(self, v: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Flat values with each group's classes along axis 1: a ``(blocks, K, rows)`` view
        where every block has the same classes and rows (no copy), else the table of
        :meth:`_table`."""
        self._check(v)
        if self._uniform:
            return np.asarray(v, dtype=np.float64).reshape(self._K.size, self._kmax, -1)
        return self._table(v, fill)

    def _ungroup(self, G: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`_groups` (a new flat array)."""
        if self._uniform:
            return np.ascontiguousarray(G).ravel()
        return G[self._row_g, self._row_k]

    @staticmethod
    def _log_softmax(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log-sum-exp of each group along axis 1, kept as a length-1 axis; the
        probabilities)."""
        m = G.max(axis=1, keepdims=True)
        E = np.exp(G - m)
        s = E.sum(axis=1, keepdims=True)
        E /= s
        return m + np.log(s), E

    def _softmax(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._log_softmax(self._groups(f, -np.inf))

    def _group_weights(self, c: np.ndarray) -> np.ndarray:
        """Each group's row weight (the same on its classes), shaped as a log-sum-exp."""
        return self._groups(c)[:, :1]

    # ------------------------------------------------------------------ the loss
    def value(self, y, f, c):
        lse, _ = self._softmax(f)
        return float(np.vdot(self._group_weights(c), lse) - np.dot(c, y * f))

    def value_theta(self, y, f, c):
        """The loss and ``theta`` from one softmax."""
        lse, P = self._softmax(f)
        return (float(np.vdot(self._group_weights(c), lse) - np.dot(c, y * f)),
                y - self._ungroup(P))

    def theta(self, y, f):
        return y - self.mean(f)

    def mean(self, f):
        """Each score's class probability (the softmax of its group)."""
        return self._ungroup(self._softmax(f)[1])

    def hessian(self, y, f):
        p = self.mean(f)
        return p * (1.0 - p)

    def deviance(self, y, f):
        """Twice the group's loss, on the row of its class (0 on the others)."""
        lse, P = self._softmax(f)
        return 2.0 * y * (self._ungroup(np.broadcast_to(lse, P.shape)) - f)

    def dual_value(self, y, theta, c):
        a = np.clip(y - theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a)))

    def feasible(self, y, theta):
        """``y - a`` with ``a`` the projection of ``y - theta`` onto each group's simplex."""
        A = self._groups(y - theta, -np.inf)
        srt = -np.sort(-A, axis=1)  # each group, largest first (padding last)
        csum = np.cumsum(np.where(np.isfinite(srt), srt, 0.0), axis=1)
        shape = [1] * A.ndim
        shape[1] = A.shape[1]
        rank = np.arange(1, A.shape[1] + 1).reshape(shape)
        ok = np.isfinite(srt) & (srt - (csum - 1.0) / rank > 0)
        rho = np.maximum(np.max(np.where(ok, rank, 0), axis=1, keepdims=True), 1)
        tau = (np.take_along_axis(csum, rho - 1, axis=1) - 1.0) / rho
        return y - self._ungroup(np.maximum(A - tau, 0.0))

    def fit_intercepts(self, y: np.ndarray, c: np.ndarray, S: np.ndarray, b: np.ndarray,
                       max_newton: int = 50, rtol: float = 1e-13) -> None:
        r"""Minimize over each task's ``K`` intercepts (in place on the scores ``S`` and
        ``b``, one intercept per segment): Newton steps with the tasks' ``K x K`` Hessians
        :math:`\sum_i c_i (\mathrm{diag}(p_i) - p_i p_i^T)` (singular along the common shift
        of a task's classes, which changes nothing: solved with ``1 1^T`` added), all tasks
        at once, each step halved for the tasks whose loss would rise (but not those
        whose Newton decrement is below the rounding of the loss: they take the full step)."""
        Kmax, n_blocks = self._kmax, self._K.size
        live = np.arange(Kmax)[None, :] < self._K[:, None]
        Y, cg = self._groups(y), self._group_weights(c)
        tot = self._block_sums(cg)  # (n_blocks, 1)
        F0 = self._groups(S, -np.inf)

        def losses(F):
            lse, P = self._log_softmax(F)
            fy = np.sum(Y * np.where(np.isfinite(F), F, 0.0), axis=1, keepdims=True)
            return self._block_sums(cg * (lse - fy))[:, 0], P

        delta = np.zeros((n_blocks, Kmax))
        value, P = losses(F0)
        eye = np.eye(Kmax)
        for _ in range(max_newton):
            g = self._block_sums(cg * (Y - P))  # minus the gradient
            if np.all(np.abs(g) <= rtol * tot):
                break
            W = cg * P
            H = self._block_sums(W)[:, :, None] * eye - self._outer(W, P)
            both = live[:, :, None] & live[:, None, :]
            H = np.where(both, H + tot[:, :, None] / self._K[:, None, None], 0.0)
            H += eye[None] * (~live)[:, :, None]  # unused classes: identity
            # (a relative 1e-12 on the diagonal: a class whose probability underflows to 0
            # on every row of its task has no curvature left; the line search takes over)
            H += 1e-12 * tot[:, :, None] * eye[None]
            step = np.linalg.solve(H, np.where(live, g, 0.0)[..., None])[..., 0]
            # Newton decrement g^T H^-1 g: twice the decrease a full step promises. Below
            # the rounding of the loss no step can show a decrease, so the line search
            # cannot judge it: the full step is taken (the quadratic model is exact there).
            exact = np.sum(np.where(live, g * step, 0.0), axis=1) <= 4e-15 * np.abs(value)
            t = np.ones(n_blocks)
            for _ in range(30):  # halve the blocks whose loss would rise
                trial = delta + t[:, None] * step
                new, P_new = losses(F0 + self._per_group(trial))
                worse = (new > value + 1e-15 * np.abs(value)) & ~exact
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            delta, value, P = trial, new, P_new
            if exact.all() and np.max(np.abs(step)) <= 1e-12:
                break  # the intercepts move by less than their rounding: done
        shift = delta[live]  # (the segments are the blocks' classes in order)
        S += shift[self._seg_of]
        b += shift

    def _block_sums(self, G: np.ndarray) -> np.ndarray:
        """Per block, the sum over its rows of values in :meth:`_groups` form
        (n_blocks, K_max or 1)."""
        if self._uniform:
            return G.sum(axis=2)
        return np.add.reduceat(G, self._block_groups)

    def _per_group(self, D: np.ndarray) -> np.ndarray:
        """Values per block and class (n_blocks, K_max) on every row, in :meth:`_groups`
        form."""
        if self._uniform:
            return D[:, :, None]
        return D[np.repeat(np.arange(self._K.size), self._sizes)]

    def _outer(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Per block, ``sum_g A_g B_g^T`` of two values in :meth:`_groups` form
        (n_blocks, K_max, K_max)."""
        if self._uniform:
            return np.einsum("bkg,blg->bkl", A, B)
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
