r"""A dual point nearer the residual than its scaling: the residual moved onto the faces of the
dual ball that it leaves.

For a norm penalty the dual points are the ``theta`` whose correlations
``G = X_c^T (c theta)`` lie in the dual ball (``|G_jt| <= alpha`` for the lasso,
``||G_j|| <= alpha`` for L2,1). The usual dual point scales the residual ``R`` back into the
ball, and the dual objective loses about ``(1 - s) alpha ||W||_1`` with the scaling ``s``: on
collinear columns (p ~ n, many active features) a residual whose primal is within ``tol`` can
leave the ball by 1 % along a few columns, which costs the gap a factor of ten or more.

The nearest dual point, the projection of ``R`` onto the ball's preimage, loses only second
order; this module approaches it by a few rounds of an active-set method on the faces it
leaves. Each round clips the correlations of the entries outside the ball to the ball
(``penalty.dual_clip``), keeps those of the entries already held, and moves ``R`` the least
(in the ``c`` metric) that meets them, per task::

    theta_t = R_t - X_{S_t,c} lambda_t,   H_t lambda_t = G_{S_t,t}(R) - target_{S_t,t},
    H_t = X_{S_t,c}^T diag(c_t) X_{S_t,c},

then checks the entries again. What is left outside the ball the scaling removes; the
candidate serves only where it beats the scaled residual (:func:`~regmtl.solvers.parts.epochs.
quadratic_gap` takes the best of its candidates), and it is built only when the scaled residual
falls short of its target.

A round is paid for by the epochs (:class:`Ledger`): it runs only while the rounds' work stays
within :data:`SHARE` of the epochs' work since the fit began. A fit whose epochs certify soon
(many small tasks, where a round's per-task Grams cost dozens of epochs) never pays for a
candidate it hardly needs; a fit whose epochs crawl (collinear columns at small alpha) earns
its rounds as it goes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...penalties import Penalty
from ...taskdata import TaskData
from ..parts.task_columns import CHUNK, held_solves, spanned, task_grams
from .group_dual import GroupProjection, moved_candidate

__all__ = ["Ledger", "projected_duals", "ROUNDS", "SHARE"]

#: Rounds of the active-set method (each a pass over the features' correlations and a batch
#: of small solves, one per task): three come within 10 % of the projection on the airline
#: sets.
ROUNDS = 3

#: The ridge of the small solves, relative to their largest curvature (duplicate columns
#: make them singular; their targets then agree, and the least-squares answer is the one).
RIDGE = 1e-10

#: The rounds' work may reach this share of the epochs' work (in flops, :class:`Ledger`).
SHARE = 0.25

#: A round's batched small products and solves run at about half the speed of the epochs'
#: compiled loops per flop (measured on 1,000 tasks of 20 x 20: 90 epochs' time for the 43
#: epochs' flops of three rounds).
ROUND_SLOWDOWN = 2.0

#: A round of fewer flops is always afforded: on a small problem the calls' own overhead, not
#: the flops, sets the cost of a round and of an epoch alike (one task of School, 150 x 28:
#: a round is a fraction of a millisecond, and certifies ten epochs early).
FLOOR = 1e6


class Ledger:
    """The epochs' work and the rounds' work of one fit, in flops.

    An epoch over ``k`` features of a design with ``m`` stored entries per feature costs
    ``4 m k`` (a product with the residual, an update of it); a round on ``k`` held features
    ``2 n k^2`` (the per-task Grams) ``+ 2 T k^3 / 3`` (their solves) ``+ 2 n (k + w)`` (the
    move and its correlations on ``w`` features), times :data:`ROUND_SLOWDOWN`; a round is
    afforded while the rounds stay within :data:`SHARE` of the epochs, or when it costs under
    :data:`FLOOR`."""

    def __init__(self, data: TaskData) -> None:
        X = data.X
        #: an epoch's flops per feature: the entries a feature's column holds, over the tasks
        self.per_feature = 4.0 * (X.nnz / max(X.shape[1], 1) * (data.n_tasks if data.shared
                                                                else 1)
                                  if sp.issparse(X) else data.n_obs)
        self.epochs = 0.0
        self.rounds = 0.0

    def epoch(self, k: int) -> None:
        """Count an epoch over ``k`` features."""
        self.epochs += self.per_feature * k

    def afford(self, data: TaskData, k: int, width: int) -> bool:
        """Whether a round on ``k`` held features (``width`` correlated) fits the share;
        if so it is counted."""
        n, T = float(data.n_obs), float(data.n_tasks)
        cost = ROUND_SLOWDOWN * (2.0 * n * k * k + 2.0 * T * k**3 / 3.0 + 2.0 * n * (k + width))
        if cost > FLOOR and self.rounds + cost > SHARE * self.epochs:
            return False
        self.rounds += cost
        return True


def projected_duals(data: TaskData, c: np.ndarray, xm: np.ndarray, R: np.ndarray,
                    G: np.ndarray, z: np.ndarray, penalty: Penalty, alpha: float,
                    features: np.ndarray, gradient,
                    memo: GroupProjection | None = None, start: bool = False,
                    ledger: Ledger | None = None) -> list:
    """Dual candidates ``(G, TT, YT)`` (as :func:`~regmtl.solvers.parts.epochs.quadratic_gap`
    takes them) from ``R`` moved onto the faces of the dual ball it leaves; empty when the
    penalty declares no ``dual_clip``, when ``R`` is inside the ball, when a round would cost
    more than a few passes over the data or would hold more than
    :data:`~regmtl.solvers.parts.task_columns.CHUNK` numbers (the rounds' Grams and solves are
    batched over the tasks: :mod:`~regmtl.solvers.parts.task_columns`). For a group norm, also ``R``
    projected onto the ball (:mod:`~regmtl.solvers.certificates.group_dual`), from the projection
    ``memo`` kept by the caller between checks: where ``start`` (epochs crawl: the caller's call),
    or where the memo has started (none without a memo). Most fits certify without it; it pays where
    the epochs crawl with the dual point the poor side. With a ``ledger``, the rounds of clipped
    correlations run only while they fit its share of the epochs' work.

    ``G = X_c^T (c R)`` on ``features`` (k x T), ``xm`` the centers (p x T), ``z`` the
    targets; ``gradient(u, features)`` gives ``X_c^T u`` on ``features``."""
    out = _clipped(data, c, xm, R, G, z, penalty, alpha, features, gradient, ledger)
    if memo is None or not (start or len(memo.rows)):
        return out
    return out + memo.duals(data, c, xm, R, G, z, penalty, alpha, features, gradient)


def _clipped(data, c, xm, R, G, z, penalty, alpha, features, gradient, ledger) -> list:
    """The rounds of the active-set method on the clipped correlations."""
    clip = getattr(penalty, "dual_clip", None)
    if clip is None or G.size == 0:
        return []
    held = np.zeros(G.shape, dtype=bool)
    Gt, out = G, []
    n_obs = max(data.n_obs, 1)
    for _ in range(ROUNDS):
        C = clip(Gt, alpha)
        if C is None:
            return out
        outside = C != Gt
        if not outside.any():
            break
        held |= outside
        on = np.flatnonzero(held.any(axis=1))  # the features held in some task
        k, T = float(len(on)), data.n_tasks
        # a round costs (n_obs + T k) k^2 against a pass's n_obs p (at most a few dozen), and
        # holds T k^2 numbers (at most CHUNK)
        if (n_obs + T * k) * k * k > 128.0 * n_obs * data.n_features or T * k * k > CHUNK:
            break
        if ledger is not None and not ledger.afford(data, int(k), len(features)):
            break
        target = np.where(held, C, Gt)
        cols = features[on]
        lam = held_solves(task_grams(data, c, xm, cols), held[on], (G - target)[on], RIDGE)
        if lam is None:
            return out
        u = spanned(data, xm, cols, lam)
        if not np.all(np.isfinite(u)):
            return out
        out.append(moved_candidate(data, c, R, G, z, u, features, gradient))
        Gt = out[-1][0]
    return out
