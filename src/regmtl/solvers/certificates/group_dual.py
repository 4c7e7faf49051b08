r"""A dual point for the group norms: the residual projected onto the dual ball, through the
dual of the projection.

For L2,1 the dual points are the ``theta`` (centered per task with intercepts) whose
correlations ``G = X_c^T (c theta)`` keep every row in the ball, ``||G_j|| <= alpha``. The
nearest of them to the residual ``R`` in the ``c`` metric is ``theta = R - X_c Lam``, where
``Lam`` (p x T, a column per task) solves the group lasso whose target is ``R`` itself::

    min_Lam  sum_t ( lam_t' H_t lam_t / 2 - g_t' lam_t ) + Omega(Lam),
    H_t = X_{c,t}' diag(c_t) X_{c,t},   g = G(R),

with the same penalty ``Omega`` (the support function of the dual ball: ``alpha sum_j
||Lam_j||``, on ``Lam >= 0`` under the sign constraint). ``Lam`` is nonzero only on rows that
end on the ball's surface, about those the residual leaves; near the optimum it is small.

On collinear columns (p ~ n per task) the residual of a primal point within ``tol`` leaves the
ball by a fraction of a percent on a hundred rows: scaling it back loses that fraction of the
whole penalty (the gap then stays 5-10 times the primal's distance), the projection loses only
the distance it moves. The entrywise clipping of :mod:`~regmtl.solvers.certificates.dual_projection`
holds each row at its clipped value, which pushes the rows next to it out of the ball when rows are
many and the tasks share them; here they move freely.

``Lam`` is found by block coordinate descent on the per-task Grams of a working set of rows:
those outside the ball, then those the move pushes out, for a few rounds. The rows, their
Grams and ``Lam`` are kept (:class:`GroupProjection`) for the next check, which starts from
them: between two checks the projection moves little, and the Grams depend only on the data
and its weights, fixed during a fit. Most fits certify without it: the solvers start it where
their epochs crawl (:func:`~regmtl.solvers.parts.epochs.run_inner`), and go on with it from then.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...penalties import Penalty
from ...penalties.base import POSITIVE_ROWS, ROWS
from ...taskdata import TaskData
from ..parts._kernels import bcd_epoch_task_gram
from ..parts.sign_search import MAX_TASKS
from ..parts.task_columns import spanned, task_grams

__all__ = ["GroupProjection", "moved_candidate", "ROUNDS", "EPOCHS", "PASSES"]

#: Working-set rounds per check (each a pass for ``G`` of the moved point).
ROUNDS = 4

#: The Grams of the rows and a round's epochs cost at most this many passes over the working
#: set's columns (in flops; the Grams run at BLAS speed, about twice an epoch's per flop): on
#: an atp7d fold (148 rows per task, 370 columns in the working set) up to 289 rows, whose
#: Grams take 10-20 ms, a few epochs, where the projection saves hundreds.
PASSES = 256

#: Epochs of coordinate descent per round at most; a round ends earlier where the largest
#: change falls below 1e-3 of the first.
EPOCHS = 20


class GroupProjection:
    """The residual projected onto the group dual ball, from one check to the next.

    Keeps the rows (feature ids) and multipliers ``Lam`` (k x T) of the last projection, and
    the per-task Grams ``H`` (T, m, m) of every row met so far (``pool``)."""

    def __init__(self) -> None:
        self.rows = np.zeros(0, dtype=np.int64)
        self.lam = np.zeros((0, 0))
        self.pool = np.zeros(0, dtype=np.int64)  # (sorted: the rows whose Grams H holds)
        self.H: np.ndarray | None = None

    def duals(self, data: TaskData, c: np.ndarray, xm: np.ndarray, R: np.ndarray,
              G: np.ndarray, z: np.ndarray, penalty: Penalty, alpha: float,
              features: np.ndarray, gradient) -> list:
        """Dual candidates ``(G, TT, YT)`` (as :func:`~regmtl.solvers.parts.epochs.quadratic_gap`
        takes them) from ``R`` projected onto the dual ball of a group norm, one per round;
        empty for other penalties (entrywise, with a ridge part), with more than
        :data:`~regmtl.solvers.parts.sign_search.MAX_TASKS` tasks (its Grams and products are a
        Python step per task), for a sparse design (a task's columns are a pass over its
        rows to extract, where its epochs are cheap), when ``R`` is inside the ball, or when
        the Grams would cost more than :data:`PASSES` passes over the working set's columns.

        ``G = X_c^T (c R)`` on ``features`` (k x T), ``xm`` the centers (p x T), ``z`` the
        targets; ``gradient(u, features)`` gives ``X_c^T u`` on ``features``."""
        l1, l2, kind = penalty.bcd_params(alpha)
        clip = getattr(penalty, "dual_clip", None)
        T = data.n_tasks
        if (kind not in (ROWS, POSITIVE_ROWS) or l2 != 0.0 or l1 <= 0.0 or clip is None
                or G.size == 0 or T > MAX_TASKS or sp.issparse(data.X)):
            return []
        where = np.full(data.n_features, -1, dtype=np.int64)  # (a feature's position in G)
        where[features] = np.arange(len(features))
        # the rows moved at the last check (Lam != 0), with their multipliers
        moving = (where[self.rows] >= 0) & np.any(self.lam != 0.0, axis=1)
        kept, lam = self.rows[moving], self.lam[moving].reshape(-1, T)
        out, Gt = [], G
        for _ in range(ROUNDS):
            outside = features[np.any(clip(Gt, alpha) != Gt, axis=1)]
            new = np.setdiff1d(outside, kept)
            if len(new) == 0 and (len(kept) == 0 or out):
                break
            rows = np.concatenate([kept, new])
            lam = np.ascontiguousarray(np.concatenate([lam, np.zeros((len(new), T))]))
            H = self._grams(data, c, xm, rows, len(features))
            if H is None:
                break
            kept = rows
            pos = where[rows]
            Et = np.ascontiguousarray(G[pos].T - np.matmul(H, lam.T[:, :, None])[:, :, 0])
            L = np.ascontiguousarray(np.einsum("tii->it", H))
            g, delta = np.zeros(T), np.zeros(T)
            first = None
            for _ in range(EPOCHS):
                change = bcd_epoch_task_gram(H, Et, lam, L, l1, l2, kind, g, delta)
                first = change if first is None else first
                if change <= 1e-3 * first:
                    break
            self.rows, self.lam = rows, lam.copy()
            u = spanned(data, xm, rows, lam)
            if not np.all(np.isfinite(u)):
                self.__init__()
                return out
            out.append(moved_candidate(data, c, R, G, z, u, features, gradient))
            Gt = out[-1][0]
        return out

    def _grams(self, data: TaskData, c: np.ndarray, xm: np.ndarray, rows: np.ndarray,
               n_features: int) -> np.ndarray | None:
        """The per-task Grams of ``rows`` (T, k, k), cut from those of the rows met so far
        (formed again, over their union, where a row is new); None where that costs more than
        a few hundred passes over the data."""
        if self.H is not None and np.all(np.isin(rows, self.pool)):
            at = np.searchsorted(self.pool, rows)
            return np.ascontiguousarray(self.H[:, at][:, :, at])
        pool = np.union1d(self.pool, rows)
        if not _affordable(data, len(pool), n_features):
            pool = np.sort(rows)
            if not _affordable(data, len(pool), n_features):
                return None
        self.pool, self.H = pool, task_grams(data, c, xm, pool)
        return self._grams(data, c, xm, rows, n_features)


def moved_candidate(data: TaskData, c: np.ndarray, R: np.ndarray, G: np.ndarray,
                    z: np.ndarray, u: np.ndarray, features: np.ndarray, gradient) -> tuple:
    """The dual candidate ``(G, TT, YT)`` of ``theta = R - u`` (``u`` a move within the
    centered columns), with ``G = X_c^T (c R)`` on ``features`` given: one product for the
    move's correlations."""
    theta = R - u
    v = c * theta
    return (G - gradient(c * u, features), data.task_sums(v * theta), data.task_sums(v * z))


def _affordable(data: TaskData, k: int, n_features: int) -> bool:
    """Whether the Grams of k rows (``sum_t n_t k^2``) and a round's epochs (``EPOCHS T
    k^2``) cost at most :data:`PASSES` passes over ``n_features`` columns."""
    cost = float(data.n_obs + EPOCHS * data.n_tasks) * k * k
    return cost <= PASSES * max(data.n_obs, 1) * n_features
