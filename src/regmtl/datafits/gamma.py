"""The Gamma loss of positive, skewed targets (log link)."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .base import Datafit
from .links import EXP_MAX

__all__ = ["Gamma"]


class Gamma(Datafit):
    r"""Gamma loss with the log link, for positive targets whose spread grows with their mean
    (amounts, durations, claim sizes).

    .. math::

        \ell(y, f) = y\, e^{-f} + f, \qquad y > 0,

    minus the Gamma log-likelihood of the mean :math:`\mu = e^f` at unit shape, without its
    terms free of :math:`\mu`; half the unit deviance is :math:`\ell(y, f) - (1 + \log y)`.
    Its dual variable is :math:`\theta = y e^{-f} - 1 > -1`, and the conjugate term
    :math:`-\ell^*(-\theta) = (1 + \theta) - (1 + \theta) \log\frac{1 + \theta}{y}` is finite
    on :math:`\theta \ge -1`, so its fits are certified by a duality gap too. An ``offset``
    ``o`` is the same problem with targets :math:`y e^{-o}`. Scores are capped at
    :math:`\pm 700` inside ``exp``.

    See Also
    --------
    regmtl.Poisson : Counts (log link).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Gamma
    >>> y, f, c = np.array([1.0, 2.0, 4.0]), np.log([1.0, 1.0, 4.0]), np.full(3, 1 / 3)
    >>> round(Gamma().value(y, f, c), 4)  # mean of y exp(-f) + f
    1.7954
    >>> Gamma().theta(y, f).round(6).tolist()  # y exp(-f) - 1
    [0.0, 1.0, 0.0]
    """

    name = "gamma"
    kind = "regression"

    def check_targets(self, y, what="y"):
        if np.any(y <= 0):
            raise ValueError(f"{what} has entries <= 0 (min {np.min(y):g}); the gamma loss "
                             "takes positive targets (use 'poisson' for counts with zeros).")

    @staticmethod
    def _inv_mean(f):
        return np.exp(-np.clip(f, -EXP_MAX, EXP_MAX))

    def value(self, y, f, c):
        return float(np.dot(c, y * self._inv_mean(f) + np.clip(f, -EXP_MAX, EXP_MAX)))

    def deviance(self, y, f):
        g = np.clip(f, -EXP_MAX, EXP_MAX)
        return 2.0 * (y * np.exp(-g) + g - 1.0 - np.log(y))

    def theta(self, y, f):
        return y * self._inv_mean(f) - 1.0

    def hessian(self, y, f):
        return y * self._inv_mean(np.asarray(f, dtype=np.float64))

    def dual_value(self, y, theta, c):
        a = np.maximum(1.0 + theta, 0.0)
        return float(np.dot(c, a - xlogy(a, a / y)))

    def feasible(self, y, theta):
        return np.maximum(theta, -1.0)

    def floor(self, y, c):
        return float(np.dot(c, 1.0 + np.log(y)))

    def with_offset(self, y, c, offset):
        return y * np.exp(-np.clip(offset, -EXP_MAX, EXP_MAX)), c

    def mean(self, f):
        return np.exp(np.clip(f, -EXP_MAX, EXP_MAX))
