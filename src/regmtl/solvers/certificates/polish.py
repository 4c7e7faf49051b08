r"""A better dual point on ill-conditioned designs: one Newton step on the active set.

The duality gap of a primal point is only as good as the dual point built from it. The usual
one, the residual ``R`` scaled into the dual ball, degrades on collinear or badly scaled columns:
a point whose objective is within 1e-6 of the optimum can have correlations
``G = X_c^T (c R)`` that leave the ball by a factor of two along a column of large norm, and
scaling them back collapses the dual. This module builds one more candidate. In the coordinates
where the penalty is smooth at W (its nonzero entries for L1, its nonzero rows for L2,1) the
optimality conditions say ``G = grad Omega(W)``; one Newton step there,

.. math::

    H_t \delta_t = G_{A,t} - \nabla\Omega(W)_{A,t}, \qquad
    H_t = X_{A,c,t}^\top \operatorname{diag}(c_t) X_{A,c,t},

moves the residual to ``R' = R - X_{A,c} \delta``, whose correlations on the active set equal
``grad Omega(W)`` (inside the dual ball) and elsewhere change by little. Near a solution ``R'`` is
the optimal residual up to second order, so its dual point certifies what the primal has
reached. The same step is a primal direction: where coordinate descent crawls along a badly
conditioned valley, a search along ``W + t delta`` lands where the signs stop it. A singular
``H_t`` (exactly collinear columns) is solved in the least-squares sense.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...penalties import Penalty
from ...taskdata import TaskData
from ..parts._kernels import active_gram, residual_dense
from ..parts.quadratic import TaskQuadratic

__all__ = ["active_newton_step", "solve_active"]

#: The ridge of a Newton step, relative to the largest curvature: directions flatter than this
#: are damped. A (nearly) singular H_t is then solved in the least-squares sense, and rounding
#: (1e-16) is amplified at most to 1e-10, so that the same data in another row order, or as
#: weighted rows, takes the same path.
RIDGE = 1e-6


def active_newton_step(data: TaskData, c: np.ndarray, xm: np.ndarray, R: np.ndarray,
                       W: np.ndarray, G: np.ndarray, penalty: Penalty, alpha: float,
                       grams: TaskQuadratic | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The step ``delta`` (p x T, zero off the active entries) and ``u = X_{A,c} delta`` per
    observation (see the module docstring), or None when there is no active set or the step
    would cost more than a few passes over the data.

    ``R`` is the residual of the weighted least-squares problem with row weights ``c``, ``xm``
    the centers (p x T) and ``G = X_c^T (c R)`` (p x T). ``R - u`` is the polished residual
    (a dual point, centered per task when ``R`` is); ``W + t delta`` a primal direction.
    ``grams``, the per-task Grams of the same weights and centers when at hand, saves forming
    the active set's."""
    grad = getattr(penalty, "active_gradient", None)
    if grad is None:
        return None
    D, mask = grad(W, alpha)
    A = np.flatnonzero(mask.any(axis=1))
    k, T = len(A), data.n_tasks
    # at most the work of ~400 passes over the data (it replaces thousands of epochs on a
    # valley of collinear columns)
    build = 0.0 if grams is not None else 0.5 * data.n_obs * k * k
    if k == 0 or build + T * k**3 > 400.0 * data.n_obs * W.shape[0] + 1e7:
        return None
    XA = data.X[:, A]
    XA = np.asfortranarray(XA.toarray() if sp.issparse(XA) else XA, dtype=np.float64)
    xmA = np.ascontiguousarray(xm[A])
    ct = c[data.indptr[:-1]]
    if grams is None and data.shared and np.all(c == np.repeat(ct, np.diff(data.indptr))):
        # one design, rows of a task weighing the same: one Gram serves every task
        m = xmA[:, 0]
        H1 = XA.T @ XA - XA.shape[0] * np.outer(m, m)
        H = H1[None] * ct[:, None, None]
    elif grams is None:
        H = np.zeros((T, k, k))
        active_gram(XA, c, data.indptr, data.offset, xmA, H)
    elif grams.scale is not None:
        H = grams.H[np.ix_(A, A)][None] * grams.scale[:, None, None]
    else:
        H = grams.H[:, A][:, :, A]
    delta = solve_active(H, mask[A].T, (G[A] - D[A]).T)
    if delta is None:
        return None
    u = np.empty_like(R)
    residual_dense(XA, data.indptr, data.offset, xmA, np.zeros_like(R), np.zeros(T),
                   np.ascontiguousarray(delta.T), np.arange(k, dtype=np.int64), u)
    step = np.zeros_like(W)
    step[A] = delta.T
    return step, -u


def solve_active(H: np.ndarray, M: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """``delta_t = H_t^{-1} g_t`` on the entries ``M`` (T x k) where the penalty is smooth, 0
    elsewhere, with the ridge :data:`RIDGE`; ``H`` (T, k, k) is overwritten. None when the
    solve fails or is not finite."""
    k = H.shape[1]
    g = np.where(M, g, 0.0)
    H *= M[:, :, None] & M[:, None, :]
    H[:, np.arange(k), np.arange(k)] += ~M  # identity on the entries left alone
    # a ridge instead of an eigendecomposition: cheap, and bounded for singular H_t
    top = np.abs(H).max(axis=(1, 2))
    H[:, np.arange(k), np.arange(k)] += RIDGE * np.maximum(top, 1e-300)[:, None]
    try:
        delta = np.linalg.solve(H, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return None
    return delta if np.all(np.isfinite(delta)) else None
