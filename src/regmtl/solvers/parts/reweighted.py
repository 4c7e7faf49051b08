r"""A warm start by iteratively reweighted least squares (majorize-minimize) in Gram form.

Norms with a variational quadratic form are majorized at the current point by a quadratic:
``|x| <= (x^2 / |x0| + |x0|) / 2`` entrywise (L1), row by row (L2,1), and
``||X||_* <= (tr(X' D^{-1} X) + tr D) / 2`` with ``D = (X0 X0')^{1/2}`` (trace norm). With the
data term a quadratic per task (:class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`), minimizing
the majorizer is one linear solve per task, exact whatever the conditioning of ``H_t``. For a
penalty over ``V = (P, Q)``, ``W = P + Q``, with inverse weights ``N_P``, ``N_Q`` (each
``D / alpha`` of its part), stationarity gives

.. math::

    s_t = (I + N_t H_t)^{-1} N_t g_t, \quad N_t = N_{P,t} + N_{Q,t}, \qquad
    P_t = N_{P,t} (g_t - H_t s_t), \quad Q_t = N_{Q,t} (g_t - H_t s_t),

and for one part ``w_t = (I + N_t H_t)^{-1} N_t g_t``. Where proximal gradient crawls (small
alpha, collinear or constant-within-task columns) a few dozen of these steps come close to the
optimum (Argyriou, Evgeniou & Pontil 2008; Mohan & Fazel 2012). The smoothing ``eps`` halves
at every step; magnitudes never reach zero exactly, so the iterates are a warm start that
proximal gradient finishes, exactly sparse or low-rank, and certifies.
"""

from __future__ import annotations

import numpy as np

from ...penalties import Penalty
from .quadratic import TaskQuadratic

__all__ = ["reweighted_start", "worth_trying", "MAX_FEATURES", "MAX_STEP_WORK"]

#: Largest p for which a step (T solves of size p, about p / 3 proximal-gradient iterations in
#: Gram form) is cheap enough to be worth trying.
MAX_FEATURES = 64
#: Largest work of one step, T p^3 (about 10 ms): with many tasks a step costs as much as tens
#: of proximal-gradient iterations (batched solves of small blocks), and those are cheaper.
MAX_STEP_WORK = 1e7


def worth_trying(q: TaskQuadratic) -> bool:
    """Reweighted steps pay: p at most :data:`MAX_FEATURES` and ``T p^3`` at most
    :data:`MAX_STEP_WORK`."""
    if q.H is None:  # the Grams are held on task blocks elsewhere
        return False
    p, T = q.g.shape
    return p <= MAX_FEATURES and T * p**3 <= MAX_STEP_WORK


def _step(q: TaskQuadratic, weights: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """One majorize-minimize step: the parts (k, p, T), or W for one part, from their inverse
    weights, each ``("diag", p x T)`` (one diagonal per task) or ``("full", p x p)``."""
    p, T = q.g.shape
    H = q.H[None] * q.scale[:, None, None] if q.scale is not None else q.H
    N = np.zeros((T, p, p))
    for kind, w in weights:
        if kind == "diag":
            N[:, np.arange(p), np.arange(p)] += w.T
        else:
            N += w
    A = np.matmul(N, H)
    A[:, np.arange(p), np.arange(p)] += 1.0
    Ng = np.matmul(N, q.g.T[:, :, None])[:, :, 0]
    s = np.linalg.solve(A, Ng[..., None])[..., 0].T  # p x T
    if len(weights) == 1:
        return s
    r = q.g - q.matvec(s)
    return np.stack([w * r if kind == "diag" else w @ r for kind, w in weights])


def reweighted_start(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                     certificate, budget: int, patience: int = 5) -> tuple[np.ndarray, int]:
    """Reweighted steps from V while they improve ``certificate(V)`` (a callable returning the
    certificate of a penalty variable); stops after ``patience`` steps without a new best, at
    ``budget`` steps, or once ``certificate`` is below 0. Returns the best V and the steps."""
    best, best_val = V, certificate(V)
    if best_val <= 0:
        return best, 0
    parts = V if V.ndim == 3 else V[None]
    scale = float(np.abs(parts).max())
    if scale == 0.0:  # from zero: start at the least-norm ridge-like point of the data
        scale = float(np.abs(q.g).max()) / max(q.lipschitz(), 1e-300)
    rel, since, steps = 1e-2, 0, 0
    while steps < budget:
        steps += 1
        eps = rel * scale * scale
        try:
            new = _step(q, penalty.inverse_weights(V, alpha, eps))
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(new)):
            break
        V = new
        val = certificate(V)
        if val < best_val:
            best, best_val, since = V, val, 0
        else:
            since += 1
        if best_val <= 0 or since >= patience:
            break
        parts = V if V.ndim == 3 else V[None]
        scale = max(float(np.abs(parts).max()), 1e-300)
        rel = max(0.5 * rel, 1e-16)
    return best, steps

