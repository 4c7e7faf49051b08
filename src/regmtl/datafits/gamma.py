"""The Gamma loss of positive, skewed targets (log link)."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .base import Datafit
from .links import EXP_MAX, check_offset

__all__ = ["Gamma", "gamma_shape"]


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
    ``o`` is the same problem with targets :math:`y e^{-o}`, up to the constant
    :math:`\sum_r c_r o_r` (``|o|`` at most 300 there: the estimators take each task's
    centre of the offsets into its intercept first, exactly). Scores are capped at
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
    link = "exp"
    link_floor = -EXP_MAX
    #: its likelihood profiles a scale per task (the shape): unbounded on a task fitted exactly
    profiles_scale = True

    def sample_targets(self, f, rng):
        """Gamma draws of shape 2 and mean ``exp(f)``."""
        return rng.gamma(2.0, np.exp(f) / 2.0)

    def single_task_anchor(self):
        """scikit-learn's ``GammaRegressor``."""
        return _gamma, "l2", "GammaRegressor"

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

    def shift_terms(self, y, S):
        with np.errstate(divide="ignore", invalid="ignore"):  # (rows without a label)
            return np.log(y) - np.clip(S, -EXP_MAX, EXP_MAX), np.zeros_like(S)

    def value_theta(self, y, f, c):
        g = np.clip(f, -EXP_MAX, EXP_MAX)
        u = y * np.exp(-g)
        return float(np.dot(c, u + g)), u - 1.0

    def hessian(self, y, f):
        return y * self._inv_mean(np.asarray(f, dtype=np.float64))

    def dual_value(self, y, theta, c):
        a = np.maximum(1.0 + theta, 0.0)
        y = np.where(c > 0, y, 1.0)  # (rows without weight: a missing label)
        return float(np.dot(c, a - xlogy(a, a / y)))

    def feasible(self, y, theta):
        return np.maximum(theta, -1.0)

    def floor(self, y, c):
        return float(np.dot(c, 1.0 + np.log(np.where(c > 0, y, 1.0))))

    def neg2_log_likelihood(self, data, f, s):
        r"""Gamma with one shape :math:`k_t` per task (the inverse dispersion) at its
        maximum-likelihood value, as the squared loss profiles one noise variance per task:
        with :math:`\ell_r = y_r e^{-f_r} + f_r`,

        .. math::

            -2 \log L = -2 \sum_t \Big[ S_t (k_t \log k_t - \log\Gamma(k_t))
            - k_t \sum_{r \in t} s_r \ell_r + (k_t - 1) \sum_{r \in t} s_r \log y_r \Big],

        :math:`S_t = \sum_{r \in t} s_r`, and :math:`k_t` solves
        :math:`\log k - \psi(k) = \bar d_t / 2`, half the task's mean unit deviance
        (Newton's method from Minka's approximation; the mean deviance is floored at
        1e-150: a task fitted exactly has no finite likelihood)."""
        from scipy.special import gammaln

        y = data.y
        yy = np.where(s > 0, y, 1.0)
        ell = yy * self._inv_mean(f) + np.clip(f, -EXP_MAX, EXP_MAX)
        log_y = np.log(yy)
        S = np.asarray(data.task_sums(s), dtype=np.float64)
        A = np.asarray(data.task_sums(s * ell), dtype=np.float64)
        B = np.asarray(data.task_sums(s * log_y), dtype=np.float64)
        has = S > 0
        k = gamma_shape(np.where(has, (A - B) / np.where(has, S, 1.0) - 1.0, 1.0))
        per_task = S * (k * np.log(k) - gammaln(k)) - k * A + (k - 1.0) * B
        return float(-2.0 * np.sum(np.where(has, per_task, 0.0)))

    def with_offset(self, y, c, offset):
        check_offset(offset, "gamma")
        return y * np.exp(-offset), c

    def offset_constant(self, y, c, offset):
        return float(np.dot(c, offset))

    def mean(self, f):
        return np.exp(np.clip(f, -EXP_MAX, EXP_MAX))


def gamma_shape(half_deviance: np.ndarray, n_iter: int = 30) -> np.ndarray:
    r"""The maximum-likelihood shape :math:`k` of a Gamma model, from half the mean unit
    deviance :math:`m = \overline{y/\mu - \log(y/\mu) - 1}`: the root of
    :math:`\log k - \psi(k) = m`, by Newton's method from Minka's approximation
    :math:`k_0 = (3 - m + \sqrt{(m - 3)^2 + 24 m}) / (12 m)` (within 1.5%).

    Parameters
    ----------
    half_deviance : ndarray
        ``m``, floored at 1e-150.
    n_iter : int, default=30
        Newton steps at most.

    Returns
    -------
    ndarray
        The shapes, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import digamma
    >>> from regmtl.datafits.gamma import gamma_shape
    >>> k = gamma_shape(np.array([0.05, 0.5, 3.0]))
    >>> bool(np.allclose(np.log(k) - digamma(k), [0.05, 0.5, 3.0]))
    True
    """
    from scipy.special import digamma, polygamma

    m = np.maximum(np.asarray(half_deviance, dtype=np.float64), 1e-150)
    k = (3.0 - m + np.sqrt((m - 3.0) ** 2 + 24.0 * m)) / (12.0 * m)
    for _ in range(n_iter):
        g = np.log(k) - digamma(k) - m
        slope = 1.0 / k - polygamma(1, k)
        new = np.where(slope < 0, k - g / np.where(slope < 0, slope, -1.0), k)
        new = np.maximum(new, 0.1 * k)
        if np.all(np.abs(new - k) <= 1e-13 * k):
            k = new
            break
        k = new
    return k


def _gamma(loss, alpha, n, tol):
    from sklearn.linear_model import GammaRegressor

    return GammaRegressor(alpha=alpha, tol=tol, max_iter=1000)
