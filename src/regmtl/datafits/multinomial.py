r"""The multinomial (softmax) loss of tasks with more than two classes."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from .base import Datafit

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
        observations grouped by original row, each group's classes in order."""
        blocks = getattr(data, "class_blocks", None)
        if blocks is None:
            raise ValueError("the multinomial loss is fitted on the classes' layout "
                             "(regmtl.classes.expand_classes); MultiTaskClassifier builds it "
                             "for tasks with more than two classes.")
        first, K = blocks[:, 0], blocks[:, 1]
        sizes = np.diff(data.indptr)[first]
        goff = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        block = np.repeat(np.arange(first.size), K)
        seg_of = np.repeat(np.arange(block.size), np.diff(data.indptr))
        group = goff[block][seg_of] + (np.arange(data.n_obs) - data.indptr[seg_of])
        new = Multinomial()
        new._perm = np.argsort(group, kind="stable")
        new._k = np.repeat(K, sizes)  # classes of each group
        new._starts = np.concatenate(([0], np.cumsum(new._k)[:-1])).astype(np.int64)
        # the blocks (tasks): their first group, first segment and classes
        new._block_groups = goff.astype(np.int64)
        new._first, new._K = first.astype(np.int64), K.astype(np.int64)
        new._seg_of = seg_of
        return new

    def _groups(self):
        if self._perm is None:
            raise ValueError("a Multinomial loss is used on the rows it is bound to "
                             "(Multinomial.bind).")
        return self._perm, self._starts, self._k

    def _softmax(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log-sum-exp of each group, probabilities in group order)."""
        perm, starts, k = self._groups()
        fp = np.asarray(f, dtype=np.float64)[perm]
        m = np.maximum.reduceat(fp, starts)
        e = np.exp(fp - np.repeat(m, k))
        s = np.add.reduceat(e, starts)
        return m + np.log(s), e / np.repeat(s, k)

    def _scatter(self, values_in_group_order: np.ndarray) -> np.ndarray:
        out = np.empty_like(values_in_group_order)
        out[self._perm] = values_in_group_order
        return out

    # ------------------------------------------------------------------ the loss
    def value(self, y, f, c):
        lse, _ = self._softmax(f)
        perm, starts, _ = self._groups()
        return float(np.dot(c[perm][starts], lse) - np.dot(c, y * f))

    def theta(self, y, f):
        _, p = self._softmax(f)
        return y - self._scatter(p)

    def mean(self, f):
        """Each score's class probability (the softmax of its group)."""
        return self._scatter(self._softmax(f)[1])

    def hessian(self, y, f):
        p = self.mean(f)
        return p * (1.0 - p)

    def deviance(self, y, f):
        """Twice the group's loss, on the row of its class (0 on the others)."""
        lse, _ = self._softmax(f)
        return 2.0 * y * (self._scatter(np.repeat(lse, self._groups()[2])) - f)

    def dual_value(self, y, theta, c):
        a = np.clip(y - theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a)))

    def feasible(self, y, theta):
        """``y - a`` with ``a`` the projection of ``y - theta`` onto each group's simplex."""
        perm, starts, k = self._groups()
        a = (y - theta)[perm]
        group = np.repeat(np.arange(k.size), k)
        order = np.lexsort((-a, group))  # within each group, largest first
        srt = a[order]
        csum = np.cumsum(srt)
        csum -= np.repeat(csum[starts] - srt[starts], k)  # cumulative sums within groups
        rank = np.arange(srt.size) - np.repeat(starts, k) + 1
        ok = srt - (csum - 1.0) / rank > 0
        rho = np.maximum.reduceat(np.where(ok, rank, 0), starts)
        tau = (csum[starts + np.maximum(rho, 1) - 1] - 1.0) / np.maximum(rho, 1)
        proj = np.maximum(a - np.repeat(tau, k), 0.0)
        return y - self._scatter(proj)

    def _padded(self, values: np.ndarray) -> np.ndarray:
        """Group-order values as an (n_groups, K_max) table (0 past a group's classes)."""
        _, starts, k = self._groups()
        pos = np.arange(values.size) - np.repeat(starts, k)
        out = np.zeros((k.size, int(self._K.max())))
        out[np.repeat(np.arange(k.size), k), pos] = values
        return out

    def fit_intercepts(self, y: np.ndarray, c: np.ndarray, S: np.ndarray, b: np.ndarray,
                       max_newton: int = 50, rtol: float = 1e-13) -> None:
        r"""Minimize over each task's ``K`` intercepts (in place on the scores ``S`` and
        ``b``, one intercept per segment): Newton steps with the tasks' ``K x K`` Hessians
        :math:`\sum_i c_i (\mathrm{diag}(p_i) - p_i p_i^T)` (singular along the common shift
        of a task's classes, which changes nothing: solved with ``1 1^T`` added), all tasks
        at once, each step halved until the tasks' losses do not rise."""
        perm, starts, k = self._groups()
        Kmax = int(self._K.max())
        n_blocks = self._K.size
        live = np.arange(Kmax)[None, :] < self._K[:, None]
        cg = c[perm][starts]
        Y = self._padded(y[perm])
        tot = np.add.reduceat(cg, self._block_groups)
        delta = np.zeros((n_blocks, Kmax))

        def scores(d):
            return S + d[live][self._segment_of_rows(S.size)]

        def losses(f):
            lse, _ = self._softmax(f)
            Fp = self._padded(np.asarray(f)[perm])
            return np.add.reduceat(cg * (lse - np.sum(Y * Fp, axis=1)), self._block_groups)

        f = scores(delta)
        value = losses(f)
        for _ in range(max_newton):
            _, p = self._softmax(f)
            Pm = self._padded(p)
            g = np.add.reduceat(cg[:, None] * (Y - Pm), self._block_groups)  # minus gradient
            if np.all(np.abs(g) <= rtol * tot[:, None]):
                break
            H = np.add.reduceat(cg[:, None, None] * (Pm[:, :, None] * (np.eye(Kmax) * 1.0)
                                                       - Pm[:, :, None] * Pm[:, None, :]),
                                self._block_groups)
            H += (live[:, :, None] & live[:, None, :]) * (tot[:, None, None] / Kmax)
            H[~live] = 0.0
            H += np.eye(Kmax)[None] * (~live)[:, :, None]  # unused classes: identity
            step = np.linalg.solve(H, np.where(live, g, 0.0)[..., None])[..., 0]
            t = np.ones(n_blocks)
            for _ in range(30):  # halve the blocks whose loss would rise
                trial = scores(delta + t[:, None] * step)
                new = losses(trial)
                worse = new > value + 1e-15 * np.abs(value)
                if not worse.any():
                    break
                t = np.where(worse, 0.5 * t, t)
            delta = delta + t[:, None] * step
            f, value = trial, np.minimum(new, value)
        shift = delta[live]
        S += shift[self._segment_of_rows(S.size)]
        b += shift  # (the segments are the blocks' classes in order)

    def _segment_of_rows(self, n_obs: int) -> np.ndarray:
        """The segment of each flat observation (segments in order)."""
        return self._seg_of[:n_obs]

    def neg2_log_likelihood(self, data, f, s):
        """Categorical: ``2 sum_i s_i l(y_i, eta_i)``."""
        return 2.0 * self.value(data.y, f, s)

    def newton_weights(self, y, f):
        """The probabilities ``p``: ``diag(p)`` lies above each row's Hessian
        ``diag(p) - p p^T``, so the separable model majorizes the loss (the diagonal of the
        Hessian alone, ``p (1 - p)``, would not, and its steps overshoot along a row's
        classes)."""
        return self.mean(f)

