r"""The weighted least-squares model of a smooth loss at its scores (IRLS) and the Armijo
search along a proximal Newton direction, shared by the proximal Newton solvers
(:mod:`~regmtl.solvers.methods.newton` over working sets,
:mod:`~regmtl.solvers.methods.structured_newton` in Gram form); and the minimizer of a model in Gram
form under a task kernel
``alpha / 2 tr(W K W^T)``, a linear system (:func:`kernel_model`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import inner

__all__ = ["newton_model", "armijo", "is_task_kernel", "kernel_model"]


def newton_model(datafit: Datafit, y: np.ndarray, c: np.ndarray,
                 f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss's weighted least-squares model at the scores ``f`` (IRLS): ``theta = -l'(f)``,
    weights ``h_r = c_r l''(f_r)`` (``datafit.newton_weights``; ``s_r (1 - s_r)`` with
    ``s_r = sigmoid(-y_r f_r)`` for the logistic loss; floored at 1e-12 c_r) and working
    response ``z_r = f_r + c_r theta_r / h_r`` (0 where ``h_r = 0``)."""
    theta = datafit.theta(y, f)
    h = np.maximum(c * datafit.newton_weights(y, f), 1e-12 * c)
    return theta, h, f + np.where(h > 0, c * theta / np.where(h > 0, h, 1.0), 0.0)


def armijo(datafit: Datafit, penalty: Penalty, alpha: float, y: np.ndarray, c: np.ndarray,
           theta: np.ndarray, V: np.ndarray, f: np.ndarray, dV: np.ndarray, df: np.ndarray,
           value: float, numbers: Callable[..., tuple[float, ...]]) -> float | None:
    """The step of a proximal Newton direction ``(dV, df)`` by backtracking (halving, at most
    40 times) until the objective drops by ``1e-4`` of the model's predicted decrease (Lee, Sun
    & Saunders 2014); None when no step does (the loss at its rounding floor). For a loss
    quadratic piece by piece (``datafit.piecewise_quadratic``: Huber) a full step that passes
    is doubled while the objective still falls (at most 1024). ``numbers``
    (``data.numbers``): the scalars of each test as floats, the loss's and the penalty's
    sums brought home together (one round trip on task blocks where they are left lazy)."""
    dot, new, old = numbers(np.dot(c * theta, df), penalty.lazy_value(V + dV, alpha),
                            penalty.lazy_value(V, alpha))
    decrease = -dot + new - old

    def at(t: float) -> float:
        loss, pen = numbers(datafit.lazy_value(y, f + t * df, c),
                            penalty.lazy_value(V + t * dV, alpha))
        return loss + pen

    step = 1.0
    for _ in range(40):
        new = at(step)
        if new <= value + 1e-4 * step * decrease + 1e-15 * abs(value):
            if step == 1.0 and datafit.piecewise_quadratic:
                # double while the (convex) objective still falls, at most 10 times: each
                # step kept meets the test above a fortiori
                for _ in range(10):
                    further = at(2.0 * step)
                    if not further < new:
                        break
                    new, step = further, 2.0 * step
            return step
        step *= 0.5
    return None


def is_task_kernel(penalty: Penalty) -> bool:
    """A penalty ``alpha / 2 tr(W K W^T)`` given as the operator ``W -> W K`` (``apply``)
    with its diagonal (``kernel_diagonal``): the mean and graph penalties."""
    return (callable(getattr(penalty, "apply", None))
            and callable(getattr(penalty, "kernel_diagonal", None)))


def kernel_model(q: Any, penalty: Penalty, alpha: float, W: np.ndarray, *, tol: float,
                 max_iter: int, G0_norm: float = 1.0) -> tuple[np.ndarray, int]:
    r"""``q(W) + alpha / 2 tr(W K W^T)`` minimized from W (``q`` a model in Gram form,
    :class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`, ``penalty`` a task kernel,
    :func:`is_task_kernel`): its optimum solves the linear system ``H(W) + alpha W K = g``,
    by conjugate gradients preconditioned with ``diag(H) + alpha diag(K)``. No prox is
    taken, so on task blocks nothing but the kernel's own product (the mean task, the
    graph's neighbour columns) crosses them. Stops when the residual
    ``||g - H(W) - alpha W K||_F`` relative to ``G0_norm`` is below ``tol`` (it bounds the
    model's proximal-gradient KKT residual at any step), or after ``max_iter`` steps.
    Returns W and the steps taken."""

    def operator(V):
        return q.matvec(V) + alpha * penalty.apply(V)

    diag = q.diagonal() + alpha * penalty.kernel_diagonal(q.g.shape[1])
    inv_diag = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 0.0)
    W, inv_diag = q.settle(np.asarray(W, dtype=np.float64), inv_diag)
    R = q.g - operator(W)
    R, P = q.settle(R, inv_diag * R)
    rz, rr = q.numbers(inner(R, P), inner(R, R))
    goal = tol * max(G0_norm, 1e-300)
    it = 0
    for it in range(1, max_iter + 1):
        if rz <= 0.0 or np.sqrt(rr) <= goal:
            it -= 1
            break
        AP = q.settle(operator(P))[0]
        (pAp,) = q.numbers(inner(P, AP))
        if pAp <= 0:  # the residual left lies in the null space of the system
            break
        step = rz / pAp
        W, R = q.settle(W + step * P, R - step * AP)
        Z = inv_diag * R
        rz_new, rr = q.numbers(inner(R, Z), inner(R, R))
        P = q.settle(Z + (rz_new / rz) * P)[0]
        rz = rz_new
    return W, it
