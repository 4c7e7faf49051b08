"""The Poisson loss of counts (log link)."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .base import Datafit
from .links import EXP_MAX, check_offset, safe_exp

__all__ = ["Poisson"]


class Poisson(Datafit):
    r"""Poisson loss with the log link, for counts (clicks, purchases, visits).

    .. math::

        \ell(y, f) = e^{f} - y f, \qquad y \ge 0,

    minus the Poisson log-likelihood of the mean :math:`\mu = e^f` without its constant
    :math:`\log y!`; half the unit deviance is :math:`\ell(y, f) - (y - y \log y)`. Its dual
    variable is :math:`\theta = y - e^{f}`, and the conjugate term
    :math:`-\ell^*(-\theta) = (y - \theta) - (y - \theta) \log(y - \theta)` is finite on
    :math:`\theta \le y` (the dual points are kept there). An ``offset`` ``o`` (a log
    exposure) is the same problem as rows weighted by :math:`e^{o}` with targets
    :math:`y e^{-o}` (what :meth:`with_offset` returns), up to the constant
    :math:`-\sum_r c_r y_r o_r`; ``|o|`` is at most 300 there (the estimators take each
    task's centre of the offsets into its intercept first, exactly). Scores are capped at 700 inside
    ``exp`` (no overflow; a fit that reaches the cap is reported by its certificate).

    See Also
    --------
    regmtl.Gamma : Positive, skewed targets (log link).
    regmtl.Quadratic : The squared loss.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Poisson
    >>> y, f, c = np.array([0.0, 2.0, 5.0]), np.log([1.0, 2.0, 4.0]), np.full(3, 1 / 3)
    >>> round(Poisson().value(y, f, c), 4)  # mean of exp(f) - y f
    -0.4393
    >>> Poisson().theta(y, f).tolist()  # y - exp(f)
    [-1.0, 0.0, 1.0]
    >>> Poisson().mean(f).round(6).tolist()
    [1.0, 2.0, 4.0]
    """

    name = "poisson"
    kind = "regression"
    link = "exp"
    scale_degree = 1
    log_link = True

    def sample_targets(self, f, rng):
        """Counts of mean ``exp(f)``."""
        return rng.poisson(np.exp(f)).astype(float)

    def single_task_anchor(self):
        """scikit-learn's ``PoissonRegressor``."""
        return _poisson, "l2", "PoissonRegressor"

    def anchor_curvature(self, y):
        """The mean count, the curvature at the intercept-only fit."""
        return float(np.mean(y))

    def check_targets(self, y, what="y"):
        if np.any(y < 0):
            raise ValueError(f"{what} has negative entries (min {np.min(y):g}); the poisson "
                             "loss takes counts or rates >= 0.")

    def value(self, y, f, c):
        return float(self.lazy_value(y, f, c))

    def lazy_value(self, y, f, c):
        return np.dot(c, safe_exp(f) - y * np.minimum(f, EXP_MAX))

    def deviance(self, y, f):
        mu = safe_exp(f)
        return 2.0 * (xlogy(y, y) - y * np.minimum(f, EXP_MAX) - y + mu)

    def theta(self, y, f):
        return y - safe_exp(f)

    def shift_terms(self, y, S):
        with np.errstate(divide="ignore", invalid="ignore"):  # (zeros; rows without a label)
            return np.log(y), np.minimum(S, EXP_MAX)

    def value_theta(self, y, f, c):
        g = np.minimum(f, EXP_MAX)
        mu = np.exp(g)
        return float(np.dot(c, mu - y * g)), y - mu

    def hessian(self, y, f):
        return safe_exp(np.asarray(f, dtype=np.float64))

    def dual_value(self, y, theta, c):
        return float(self.lazy_dual_value(y, theta, c))

    def lazy_dual_value(self, y, theta, c):
        m = np.maximum(y - theta, 0.0)
        return np.dot(c, m - xlogy(m, m))

    def feasible(self, y, theta):
        return np.minimum(theta, y)

    def floor(self, y, c):
        return float(np.dot(c, y - xlogy(y, y)))

    def neg2_log_likelihood(self, data, f, s):
        """Poisson: ``2 sum_r s_r (e^f - y f + log y!)``."""
        from scipy.special import gammaln

        y = data.y
        return float(2.0 * np.sum(s * (safe_exp(f) - y * f + gammaln(y + 1.0))))

    def with_offset(self, y, c, offset):
        check_offset(offset, "poisson")
        e = np.exp(offset)
        return y / e, c * e

    def offset_constant(self, y, c, offset):
        return -float(np.dot(c, np.where(c > 0, y * offset, 0.0)))

    def mean(self, f):
        return safe_exp(f)


def _poisson(loss, alpha, n, tol):
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(alpha=alpha, tol=tol, max_iter=1000)
