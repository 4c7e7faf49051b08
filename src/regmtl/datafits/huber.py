"""The Huber loss of regression with heavy-tailed noise."""

from __future__ import annotations

import numpy as np

from .base import Datafit, loss_parameter

__all__ = ["Huber"]


class Huber(Datafit):
    r"""Huber loss: squared near the fit, linear beyond ``delta`` (robust to outliers).

    .. math::

        \ell(y, f) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
        \delta |r| - \tfrac12 \delta^2 & |r| > \delta \end{cases}, \qquad r = y - f.

    ``delta`` is in the targets' units (scikit-learn's ``HuberRegressor`` instead fits a
    scale jointly and reads ``epsilon`` in it). Its dual variable is the clipped residual
    :math:`\theta = \min(\max(r, -\delta), \delta)`, and the conjugate term
    :math:`\theta y - \theta^2 / 2` is finite on the box :math:`|\theta| \le \delta`.

    Parameters
    ----------
    delta : float, default=1.35
        Where the loss turns linear, > 0.

    See Also
    --------
    regmtl.Quantile : The pinball loss of quantile regression.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Huber
    >>> y, f, c = np.array([0.0, 1.0, 10.0]), np.zeros(3), np.full(3, 1 / 3)
    >>> round(Huber(delta=1.0).value(y, f, c), 4)  # (0 + 1/2 + (10 - 1/2)) / 3
    3.3333
    >>> Huber(delta=1.0).theta(y, f).tolist()
    [0.0, 1.0, 1.0]
    """

    name = "huber"
    kind = "regression"
    cli_parameters = {"--huber-delta": (
        "delta", "DELTA", "--loss huber: where the loss turns linear, in the target's units "
        "(default 1.35)")}
    curvature = 1.0
    piecewise_quadratic = True
    dual_strong_concavity = 1.0
    has_dual_prox = True
    scale_degree = 2

    def __init__(self, delta: float = 1.35):
        self.delta = loss_parameter(delta, f"Huber(delta={delta!r})", "delta", 0.0, None,
                                    "in the targets' units, e.g. 1.35")

    def rescaled(self, s):
        """``delta`` in the new units: ``l_{s delta}(s y, s f) = s^2 l_delta(y, f)``."""
        return Huber(self.delta * s)

    def value(self, y, f, c):
        return float(self.lazy_value(y, f, c))

    def lazy_value(self, y, f, c):
        a = np.abs(y - f)
        d = self.delta
        return np.dot(c, np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d))

    def deviance(self, y, f):
        a = np.abs(y - f)
        d = self.delta
        return 2.0 * np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d)

    def theta(self, y, f):
        return np.clip(y - f, -self.delta, self.delta)

    def hessian(self, y, f):
        return (np.abs(y - f) <= self.delta).astype(np.float64)

    def newton_weights(self, y, f):
        """The Hessian floored at 1e-3: the linear pieces have no curvature, and the floor
        keeps each proximal Newton model bounded (the line search on the loss itself keeps
        the steps descending)."""
        return np.maximum(self.hessian(y, f), 1e-3)

    def dual_value(self, y, theta, c):
        return float(self.lazy_dual_value(y, theta, c))

    def lazy_dual_value(self, y, theta, c):
        return np.dot(c, theta * (y - 0.5 * theta))

    def feasible(self, y, theta):
        return np.clip(theta, -self.delta, self.delta)

    def dual_prox(self, y, v, step):
        """``clip(v / (1 + step), -delta, delta)``."""
        return np.clip(v / (1.0 + step), -self.delta, self.delta)

    def with_offset(self, y, c, offset):
        return y - offset, c

    def __repr__(self) -> str:
        return f"Huber(delta={self.delta!r})"
