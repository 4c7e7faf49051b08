r"""The weighted least-squares model of a smooth loss at its scores (IRLS) and the Armijo
search along a proximal Newton direction, shared by the proximal Newton solvers
(:mod:`~regmtl.solvers.newton` over working sets, :mod:`~regmtl.solvers.structured_newton` in
Gram form)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..datafits import Datafit
from ..penalties import Penalty

__all__ = ["newton_model", "armijo"]


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
    & Saunders 2014); None when no step does (the loss at its rounding floor). ``numbers``
    (``data.numbers``): the scalars of each test as floats, the loss's and the penalty's
    sums brought home together (one round trip on task blocks where they are left lazy)."""
    dot, new, old = numbers(np.dot(c * theta, df), penalty.lazy_value(V + dV, alpha),
                            penalty.lazy_value(V, alpha))
    decrease = -dot + new - old
    step = 1.0
    for _ in range(40):
        loss, pen = numbers(datafit.lazy_value(y, f + step * df, c),
                            penalty.lazy_value(V + step * dV, alpha))
        new = loss + pen
        if new <= value + 1e-4 * step * decrease + 1e-15 * abs(value):
            return step
        step *= 0.5
    return None
