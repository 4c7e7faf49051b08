"""The pinball loss of quantile regression, and its smoothed form (the solver's stages)."""

from __future__ import annotations

import numpy as np

from .base import Datafit, loss_parameter

__all__ = ["Quantile", "SmoothedQuantile"]


def _check_level(quantile: float) -> float:
    return loss_parameter(quantile, f"Quantile(quantile={quantile!r})", "quantile", 0.0, 1.0,
                          "the level: 0.5 for the median, 0.9 for the 90th percentile")


class Quantile(Datafit):
    r"""Pinball loss of quantile regression: the fit is the ``quantile``-th conditional
    quantile of the targets (0.5: the median, least absolute deviations).

    .. math::

        \ell(y, f) = \tau\, r^+ + (1 - \tau)\, r^-, \qquad r = y - f.

    Not differentiable where ``r = 0``: it is solved through its smoothed forms
    (:class:`SmoothedQuantile`, the Moreau envelope of width ``delta``) with ``delta`` shrunk
    until the duality gap *of the pinball loss itself* meets ``tol`` -- the certificate never
    reads the smoothing. The conjugate term is :math:`\theta y` on the interval
    :math:`\tau - 1 \le \theta \le \tau` (a linear program's dual).

    Parameters
    ----------
    quantile : float, default=0.5
        The level :math:`\tau`, strictly between 0 and 1.

    See Also
    --------
    regmtl.Huber : Robust regression with a smooth loss.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Quantile
    >>> y, f, c = np.array([0.0, 1.0, 3.0]), np.ones(3), np.full(3, 1 / 3)
    >>> round(Quantile(0.9).value(y, f, c), 4)  # (0.1 * 1 + 0 + 0.9 * 2) / 3
    0.6333
    """

    name = "quantile"
    kind = "regression"
    link = "identity"
    cli_parameters = {"--quantile": (
        "quantile", "TAU", "--loss quantile: the quantile level, in (0, 1) (default 0.5)")}
    smooth = False
    box_dual = True
    has_dual_prox = True
    piecewise_linear = True
    scale_degree = 1

    def sample_targets(self, f, rng):
        """``f`` plus Student-t noise of 2 degrees of freedom."""
        return f + rng.standard_t(2.0, f.shape[0])

    def single_task_anchor(self):
        """scikit-learn's ``QuantileRegressor`` (an L1 penalty)."""
        return _quantile, "l1", "QuantileRegressor"

    def __init__(self, quantile: float = 0.5):
        self.quantile = _check_level(quantile)

    def value(self, y, f, c):
        r = y - f
        tau = self.quantile
        return float(np.dot(c, np.maximum(tau * r, (tau - 1.0) * r)))

    def deviance(self, y, f):
        r = y - f
        return 2.0 * np.maximum(self.quantile * r, (self.quantile - 1.0) * r)

    def theta(self, y, f):
        """A subgradient: ``tau`` above the fit, ``tau - 1`` below, 0 on it."""
        r = y - f
        return np.where(r > 0, self.quantile, np.where(r < 0, self.quantile - 1.0, 0.0))

    def kink_costs(self, y, f):
        """``max(tau, 1 - tau) |y - f|``: the loss is that Lipschitz in the target."""
        return max(self.quantile, 1.0 - self.quantile) * np.abs(y - f)

    def hessian(self, y, f):
        """0: the loss is piecewise linear (its intercepts are found by bisection)."""
        return np.zeros(np.shape(f))

    def dual_value(self, y, theta, c):
        return float(np.dot(c, theta * y))

    def dual_prox(self, y, v, step):
        """The projection onto ``[tau - 1, tau]`` (the conjugate is linear there)."""
        return np.clip(v, self.quantile - 1.0, self.quantile)

    def feasible(self, y, theta):
        return np.clip(theta, self.quantile - 1.0, self.quantile)

    def with_offset(self, y, c, offset):
        return y - offset, c

    def smoothed(self, delta: float) -> SmoothedQuantile:
        """Its Moreau envelope of width ``delta`` (a smooth loss within ``delta tau^2 / 2``
        of it)."""
        return SmoothedQuantile(self.quantile, delta)

    def __repr__(self) -> str:
        return f"Quantile({self.quantile!r})"


class SmoothedQuantile(Quantile):
    r"""The pinball loss smoothed over a band of width ``delta`` (its Moreau envelope):
    ``r^2 / (2 delta)`` for ``-(1 - tau) delta <= r <= tau delta``, the pinball loss less
    ``delta tau^2 / 2`` (above) or ``delta (1 - tau)^2 / 2`` (below) outside. Its dual
    variable ``clip(r / delta, tau - 1, tau)`` always lies in the pinball loss's dual interval,
    which is how the stages of a quantile fit are certified.

    Parameters
    ----------
    quantile : float
        The level :math:`\tau`.
    delta : float
        The band's width, > 0.
    """

    smooth = True
    box_dual = False
    has_dual_prox = False
    piecewise_linear = False
    dual_strong_concavity = 0.0

    def __init__(self, quantile: float = 0.5, delta: float = 1.0):
        super().__init__(quantile)
        self.delta = loss_parameter(delta, f"SmoothedQuantile(delta={delta!r})", "delta", 0.0,
                                    None, "the smoothing width, in the targets' units")
        self.curvature = 1.0 / self.delta

    def rescaled(self, s):
        """The band's width in the new units (the loss is then ``s`` times the old)."""
        return SmoothedQuantile(self.quantile, self.delta * s)

    def value(self, y, f, c):
        r = y - f
        tau, d = self.quantile, self.delta
        out = np.where(r >= tau * d, tau * r - 0.5 * d * tau * tau,
                       np.where(r <= (tau - 1.0) * d, (tau - 1.0) * r - 0.5 * d * (1 - tau) ** 2,
                                r * r / (2.0 * d)))
        return float(np.dot(c, out))

    def theta(self, y, f):
        return np.clip((y - f) / self.delta, self.quantile - 1.0, self.quantile)

    def kink_costs(self, y, f):
        """``inf``: the smoothed loss has no kink."""
        return np.full(np.shape(f), np.inf)

    def hessian(self, y, f):
        r = y - f
        band = (r < self.quantile * self.delta) & (r > (self.quantile - 1.0) * self.delta)
        return band / self.delta

    def newton_weights(self, y, f):
        """``psi(r) / r`` (``1 / delta`` in the band): the curvature of the quadratic that
        majorizes the loss and touches it at ``r`` (its gradient matched), so that each
        proximal Newton model lies above the loss (iteratively reweighted least squares)."""
        r = y - f
        psi = np.clip(r / self.delta, self.quantile - 1.0, self.quantile)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(np.abs(r) * self.delta > 0, psi / np.where(r == 0, 1.0, r), 0.0)
        return np.where(np.abs(r) <= self.delta, 1.0 / self.delta, w)

    def dual_value(self, y, theta, c):
        return float(np.dot(c, theta * (y - 0.5 * self.delta * theta)))

    def __repr__(self) -> str:
        return f"SmoothedQuantile({self.quantile!r}, delta={self.delta!r})"


def _quantile(loss, alpha, n, tol):
    from sklearn.linear_model import QuantileRegressor

    return QuantileRegressor(quantile=loss.quantile, alpha=alpha, solver="highs")
