r"""Block coordinate descent on a quadratic's per-task Grams, for a convex row-separable
penalty: the models of proximal Newton's small route
(:mod:`~regmtl.solvers.methods.structured_newton`) and the squared loss's small route
(:mod:`~regmtl.solvers.methods.small_squares`).

An epoch costs ``O(p^2 T)`` where one over the rows costs ``O(n p)``; its stop reads the
duality gap from the Gram sums (:func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`).
"""

from __future__ import annotations

import numpy as np

from ...penalties import Penalty
from ._kernels import bcd_epoch_task_gram
from .anderson import Anderson
from .quadratic import TaskQuadratic
from .quadratic_fista import gram_certificate

__all__ = ["ANDERSON", "CHECK_EPOCHS", "gram_coordinate_descent"]

#: Epochs between two certificates (an epoch costs ``O(p^2 T)``, a certificate about as much
#: again).
CHECK_EPOCHS = 2
#: Iterates per Anderson extrapolation (coordinate descent's default over the rows): on the
#: first-call benchmark's problem a logistic L1 fit's models take 50 epochs instead of 70 at
#: tol = 1e-4 and 72 instead of 184 at 1e-8, a squared L2,1 fit 12 instead of 18.
ANDERSON = 5


def gram_coordinate_descent(q: TaskQuadratic, penalty: Penalty, alpha: float, W: np.ndarray, *,
                            tol: float, max_epochs: int, G0_norm: float,
                            anderson: int = ANDERSON) -> tuple[np.ndarray, int]:
    r"""Minimize ``q(W) + Omega(W)`` for a convex row-separable penalty by block coordinate
    descent on the per-task Grams, from W, until the model's duality gap (from the Gram sums,
    :func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`) is at most ``tol``, or stops
    falling, or ``max_epochs`` have run. Returns W and the epochs run.

    Row i's block step sees the negative gradient ``E[t, i] = g_t[i] - (H_t w_t)[i]`` and the
    curvatures ``L[i, t] = H_t[i, i]`` (exact block minimization of the quadratic); a change
    ``d`` of row i moves ``E[t]`` by ``-d_t H_t[i]``: ``O(p T)`` per changed row, and ``H W``
    for the certificate is ``g - E^T`` (no product). ``anderson``: every ``anderson + 1``
    epochs (0: never), the Anderson extrapolation of the last iterates (projected onto a sign
    constraint) replaces W where it lowers ``q + Omega``
    (:class:`~regmtl.solvers.parts.anderson.Anderson`)."""
    l1, l2, group = penalty.bcd_params(alpha)
    H = q.H if q.scale is None else q.scale[:, None, None] * q.H
    Qs = np.ascontiguousarray(H)
    L = np.ascontiguousarray(q.diagonal())
    W = np.array(W, dtype=np.float64, order="C")
    Et = np.ascontiguousarray((q.g - q.matvec(W)).T)
    g, delta = np.zeros(W.shape[1]), np.zeros(W.shape[1])
    best, stalls, epoch = np.inf, 0, 0
    acc = Anderson(anderson) if anderson else None
    project = getattr(penalty, "project", None)
    for epoch in range(1, max_epochs + 1):
        change = bcd_epoch_task_gram(Qs, Et, W, L, l1, l2, group, g, delta)
        Z = acc.push(W) if acc is not None and change > 0.0 else None
        if Z is not None:
            Z = Z.reshape(W.shape) if project is None else project(Z.reshape(W.shape))
            HZ = q.matvec(Z)
            if (q.value(Z, HZ) + penalty.value(Z, alpha)
                    < q.value(W, q.g - Et.T) + penalty.value(W, alpha)):
                W[:] = Z
                Et[:] = (q.g - HZ).T
        if epoch % CHECK_EPOCHS and change > 0.0 and epoch < max_epochs:
            continue
        gap = gram_certificate(q, penalty, alpha, W, None, G0_norm, q.g - Et.T)
        stalls = 0 if gap < 0.99 * best else stalls + 1
        best = min(best, gap)
        # met; a fixed point short of tol (the rounding of the Gram sums); or no progress in
        # ten checks (the Newton step goes on from here, its line search on the loss itself)
        if gap <= tol or change == 0.0 or stalls >= 10:
            break
    return W, epoch
