r"""The exact minimizer of an entrywise-penalized quadratic by a search over sign patterns
(feature-sign search: Lee, Battle, Raina & Ng 2007), task by task.

On collinear columns with many active features (p ~ n, small alpha) coordinate descent crawls
along a valley: the objective is within ``tol`` long before the residual is near enough to the
optimum for a dual point to certify it. On a fixed sign pattern ``s`` over the active set A the
problem of task t is a quadratic,

.. math::

    \min_{w_A} -g^\top d + \tfrac12 d^\top Q_t d + l_1 s^\top w_A + \tfrac{l_2}{2} \|w_A\|^2,
    \qquad d = w_A - w^0_A,

whose minimizer solves ``(Q_AA + l2 I) d = g_A - l2 w_A - l1 s``. The search moves to it or to
the best point where a coefficient crosses zero on the way (that coefficient leaves A); at the
minimizer of a pattern it adds the entry that violates the optimality conditions most
(``|g_j| > l1`` off A). Every move lowers the objective, and on the right pattern the step
lands on the exact solution: the residual, and with it the dual point, are then the optimum's.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sign_search", "searched", "RIDGE", "CANDIDATES", "STEPS", "MAX_TASKS"]

#: The ridge of the pattern's solves, relative to their largest curvature: duplicate columns
#: (singular ``Q_AA``) with one sign get the least-squares split; with opposite signs the step
#: is long and the search stops it where one of them reaches zero.
RIDGE = 1e-12

#: Moves per task and call: the search goes on at the next call where it stopped.
STEPS = 32

#: The points tried along a step: where the first coefficients cross zero, and its end.
CANDIDATES = 16

#: The search (and the projected dual points, :mod:`~regmtl.solvers.certificates.dual_projection`)
#: takes a Python step per task for its Grams and solves: above this many tasks those steps cost
#: more than the epochs they save (a check of 10^5 tasks would take 10^5 of them), and the solvers
#: go on without it.
MAX_TASKS = 1000


def sign_search(Q: np.ndarray, G: np.ndarray, W: np.ndarray, l1: float, l2: float,
                steps: int) -> np.ndarray:
    """The coefficients (k x T) after at most ``steps`` moves of the search per task, from
    ``W`` (k x T) with ``G = -grad`` of the data term at W (k x T) and the data term's
    Hessian ``Q[t]`` (k x k) per task; the objective never rises."""
    W = W.copy()
    for t in range(W.shape[1]):
        W[:, t] = _task(Q[t], G[:, t].copy(), W[:, t].copy(), l1, l2, steps)
    return W


def searched(W: np.ndarray, G: np.ndarray, grams, l1: float, l2: float,
             pair_cost: float = 0.0, budget: float = np.inf) -> np.ndarray | None:
    """W after :func:`sign_search` on its active features and the strongest of those near
    entering (``|G_jt| >= l1 / 2`` in some task, as many as are active and at least 10; the
    others stay at zero), with ``grams(rows)`` the per-task Hessians (T, k, k) on those rows.
    None when there are none, when there are more than :data:`MAX_TASKS` tasks, or when
    forming the Hessians (``pair_cost`` per pair of rows) and a solve per task on its active
    features would cost more than ``budget`` (flops; the search ends after a few solves where
    the pattern is nearly right)."""
    if W.shape[1] > MAX_TASKS:
        return None
    active = np.any(W != 0.0, axis=1)
    score = np.where(active, np.inf, np.abs(G).max(axis=1, initial=0.0))
    n_active = int(active.sum())
    near = np.flatnonzero(score >= 0.5 * l1)
    if len(near) == 0:
        return None
    keep = n_active + max(10, n_active)
    if len(near) > keep:
        near = np.sort(near[np.argpartition(-score[near], keep - 1)[:keep]])
    k = len(near)
    per_task = np.count_nonzero(W, axis=0).astype(float)
    if pair_cost * k * k + float(np.sum(per_task**3)) > budget:
        return None
    out = W.copy()
    out[near] = sign_search(grams(near), G[near], W[near], l1, l2, STEPS)
    return out


def _task(Q: np.ndarray, g: np.ndarray, w: np.ndarray, l1: float, l2: float,
          steps: int) -> np.ndarray:
    s = np.sign(w)
    tol = 1e-10 * l1
    for _ in range(steps):
        A = np.flatnonzero(s)
        rhs = g[A] - l2 * w[A] - l1 * s[A]
        if len(A) == 0 or np.max(np.abs(rhs)) <= tol:
            # the minimizer of this pattern: add the worst violator, or stop
            viol = np.where(s == 0, np.abs(g), 0.0)
            j = int(np.argmax(viol))
            if viol[j] <= l1 * (1.0 + 1e-12):
                break
            s[j] = np.sign(g[j])
            continue
        H = Q[np.ix_(A, A)]
        H[np.diag_indices_from(H)] += l2 + RIDGE * max(float(np.abs(H).max()), 1e-300)
        try:
            d = np.linalg.solve(H, rhs)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(d)):
            break
        wA = w[A]
        # where a coefficient crosses zero (an entry just added has w = 0 and moves its way)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where((wA + d) * s[A] < 0.0, -wA / d, np.inf)
        ts = np.append(np.sort(cross[(cross > 0.0) & (cross < 1.0)])[:CANDIDATES - 1], 1.0)
        QA = Q[np.ix_(A, A)]
        base = l1 * float(np.abs(wA).sum()) + 0.5 * l2 * float(wA @ wA)
        best, w_best = 0.0, None
        for tt in ts:
            wt = wA + tt * d
            wt[cross == tt] = 0.0  # (exactly zero where it crosses)
            step = wt - wA
            change = (-float(g[A] @ step) + 0.5 * float(step @ (QA @ step))
                      + l1 * float(np.abs(wt).sum()) + 0.5 * l2 * float(wt @ wt) - base)
            if change < best:
                best, w_best = change, wt
        if w_best is None:
            break
        g -= Q[:, A] @ (w_best - wA)
        w[A] = w_best
        s[A] = np.sign(w_best)
    return w
