"""The Tweedie loss of compound Poisson-Gamma targets (log link): insurance claims, rainfall."""

from __future__ import annotations

import numpy as np

from .base import Datafit, loss_parameter
from .links import EXP_MAX, check_offset

__all__ = ["Tweedie"]

#: Newton steps at most of the conjugate's inner minimization (in log form, from the dominant
#: terms' root: a few suffice; a step that leaves the bracket is its midpoint instead)
DUAL_STEPS = 100


class Tweedie(Datafit):
    r"""Tweedie loss of power :math:`1 < \rho < 2` with the log link: the compound
    Poisson-Gamma model of targets that are 0 with a positive probability and continuous
    above (a policy's claims, a day's rainfall).

    .. math::

        \ell(y, f) = \frac{e^{a f}}{a} + \frac{y\, e^{-b f}}{b}, \qquad
        a = 2 - \rho,\ b = \rho - 1,\ y \ge 0,

    minus the Tweedie log-likelihood of the mean :math:`\mu = e^f` up to terms in :math:`y`;
    half the unit deviance is :math:`\ell(y, f) - y^a / (a b)` (its floor, the value at
    :math:`\mu = y`), so at ``alpha`` 0 the fit is scikit-learn's
    ``TweedieRegressor(power=rho, link="log", alpha=0)``. Its dual variable is
    :math:`\theta = y e^{-b f} - e^{a f}`; the conjugate term
    :math:`-\ell^*(-\theta) = \min_f \ell(y, f) + \theta f` is reached where
    :math:`s + \theta s^b = y` (:math:`s = e^f`), solved row by row by safeguarded Newton
    steps in :math:`\log s` inside a bracket of the root (exact to rounding); it is finite for
    every :math:`\theta` where :math:`y > 0` and for :math:`\theta \le 0` where
    :math:`y = 0` (the dual points are kept there). An ``offset`` ``o`` (a log exposure) is
    the same problem with targets :math:`y e^{-o}` and row weights :math:`c\, e^{a o}`.

    Parameters
    ----------
    power : float, default=1.5
        The variance power :math:`\rho`, strictly between 1 (Poisson) and 2 (Gamma).

    See Also
    --------
    regmtl.Poisson : Counts (the power 1).
    regmtl.Gamma : Positive, skewed targets (the power 2).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Tweedie
    >>> y, f, c = np.array([0.0, 1.0, 4.0]), np.log([1.0, 1.0, 4.0]), np.full(3, 1 / 3)
    >>> loss = Tweedie(1.5)
    >>> round(loss.value(y, f, c), 4)  # mean of 2 e^(f/2) + 2 y e^(-f/2)
    4.6667
    >>> loss.theta(y, f).round(6).tolist()  # y e^(-f/2) - e^(f/2): 0 where the mean is y
    [-1.0, 0.0, 0.0]
    >>> bool(np.isclose(loss.dual_value(y, loss.theta(y, f), c),  # the gap is 0 at a point
    ...                 loss.value(y, f, c) + np.dot(c, loss.theta(y, f) * f)))
    True
    """

    name = "tweedie"
    kind = "regression"
    link = "exp"
    link_floor = -EXP_MAX
    cli_parameters = {"--tweedie-power": (
        "power", "RHO", "--loss tweedie: the variance power, in (1, 2) (default 1.5)")}
    log_link = True

    def __init__(self, power: float = 1.5):
        self.power = loss_parameter(power, f"Tweedie(power={power!r})", "power", 1.0, 2.0,
                                    "the variance power: 1.5 for claims, between Poisson "
                                    "(1) and Gamma (2)")
        self._a, self._b = 2.0 - self.power, self.power - 1.0

    def sample_targets(self, f, rng):
        """Compound Poisson-Gamma draws of mean ``exp(f)`` and dispersion 1: a Poisson
        number of Gamma claims (0 claims: a target of 0)."""
        mu, a, b = np.exp(f), self._a, self._b
        rate = mu**a / a  # (claims per row), each claim of Gamma shape a / b, mean b mu^b
        n = rng.poisson(rate)
        return np.where(n > 0, rng.gamma(np.maximum(n * a / b, 1e-300), b * mu**b), 0.0)

    def single_task_anchor(self):
        """scikit-learn's ``TweedieRegressor`` (log link)."""
        return _tweedie, "l2", "TweedieRegressor"

    def anchor_curvature(self, y):
        """The curvature at the intercept-only fit, ``mean(y)^a`` (Poisson's mean count at
        the power 1)."""
        return float(np.mean(y)) ** self._a

    def check_targets(self, y, what="y"):
        if np.any(y < 0):
            raise ValueError(f"{what} has negative entries (min {np.min(y):g}); the tweedie "
                             "loss takes targets >= 0 (claims, amounts, zeros included).")

    def _parts(self, f):
        """``(e^{a f}, e^{-b f})`` at scores clipped to +-EXP_MAX (never overflowing)."""
        g = np.clip(f, -EXP_MAX, EXP_MAX)
        return np.exp(self._a * g), np.exp(-self._b * g)

    def value(self, y, f, c):
        return float(self.lazy_value(y, f, c))

    def lazy_value(self, y, f, c):
        up, down = self._parts(f)
        return np.dot(c, up / self._a + y * down / self._b)

    def deviance(self, y, f):
        up, down = self._parts(f)
        a, b = self._a, self._b
        return 2.0 * (up / a + y * down / b - y**a / (a * b))

    def theta(self, y, f):
        up, down = self._parts(f)
        return y * down - up

    def value_theta(self, y, f, c):
        up, down = self._parts(f)
        return float(np.dot(c, up / self._a + y * down / self._b)), y * down - up

    def hessian(self, y, f):
        up, down = self._parts(np.asarray(f, dtype=np.float64))
        return self._a * up + self._b * y * down

    def dual_value(self, y, theta, c):
        return float(self.lazy_dual_value(y, theta, c))

    def lazy_dual_value(self, y, theta, c):
        theta = self.feasible(y, theta)
        g = self._inner_minimizer(y, theta)
        a, b = self._a, self._b
        # (at the minimizer no term overflows: y e^{-b g} = e^{a g} + theta there; no score
        # clip either, which would make the value no lower bound)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ydown = np.where(y > 0, np.exp(np.log(np.where(y > 0, y, 1.0)) - b * g), 0.0)
            inner = np.where(np.isfinite(g), np.exp(a * g) / a + ydown / b + theta * g, 0.0)
        return np.dot(c, inner)

    def _inner_minimizer(self, y, theta):
        r"""The score ``g`` minimizing :math:`\ell(y, g) + \theta g`, where
        :math:`s = e^g` solves :math:`s + \theta s^b = y` (``-inf`` for ``y = 0`` and
        ``theta = 0``, whose infimum 0 is approached there): exact for ``y = 0``; otherwise
        bracketed (``theta >= 0``: :math:`\min(1, (y / (1 + \theta))^{1/b}) \le s \le
        y / (1 + \theta y^{b - 1})`; below: :math:`y \le s \le \max(2y,
        (2|\theta|)^{1/a})`) and found by Newton steps on
        :math:`\log(e^{a g} + \theta) + b g - \log y` (:math:`\theta \ge 0`; below,
        :math:`a g - \log(y e^{-b g} - \theta)`), increasing with a slope between
        :math:`\min(a, b)` and 1 and free of overflow, from the root of the two dominant
        terms (:math:`s = \min(y, (y/\theta)^{1/b})`, or :math:`\max(y, |\theta|^{1/a})`),
        each step kept inside the bracket (else its midpoint)."""
        a, b = self._a, self._b
        y = np.asarray(y, dtype=np.float64)
        theta = np.asarray(theta, dtype=np.float64)
        g = np.full(np.shape(y), -np.inf)
        zero = y <= 0
        with np.errstate(divide="ignore"):
            g[zero] = np.log(-np.minimum(theta[zero], 0.0)) / a  # (-inf where theta = 0)
        rows = ~zero
        if not rows.any():
            return g
        yr, tr = y[rows], theta[rows]
        pos = tr >= 0
        with np.errstate(divide="ignore", over="ignore"):
            lo = np.where(pos, np.minimum(0.0, (np.log(yr) - np.log1p(np.abs(tr))) / b),
                          np.log(yr))
            hi = np.where(pos, np.log(yr) - np.log1p(np.abs(tr) * yr ** (b - 1.0)),
                          np.maximum(np.log(2.0 * yr), np.log(2.0 * np.abs(tr)) / a))
        with np.errstate(divide="ignore"):
            ly, lt = np.log(yr), np.log(np.abs(tr))  # (lt = -inf where theta = 0)
        x = np.clip(np.where(pos, np.minimum(ly, (ly - lt) / b), np.maximum(ly, lt / a)),
                    lo, hi)
        for _ in range(DUAL_STEPS):
            # the root in log form, increasing with a slope between min(a, b) and 1:
            # log(e^{a x} + theta) + b x - log y (theta >= 0), a x - log(y e^{-b x} - theta)
            if_pos = np.logaddexp(a * x, lt)
            if_neg = np.logaddexp(ly - b * x, lt)
            k = np.where(pos, if_pos + b * x - ly, a * x - if_neg)
            slope = np.where(pos, b + a * np.exp(a * x - if_pos),
                             a + b * np.exp(ly - b * x - if_neg))
            lo, hi = np.where(k < 0, x, lo), np.where(k > 0, x, hi)
            new = x - k / slope
            if np.all(np.abs(new - x) <= 4e-16 * np.maximum(1.0, np.abs(x))):
                x = new
                break
            x = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))
        g[rows] = x
        return g

    def feasible(self, y, theta):
        return np.where(y > 0, theta, np.minimum(theta, 0.0))

    def floor(self, y, c):
        a, b = self._a, self._b
        return float(np.dot(c, np.asarray(y, dtype=np.float64) ** a / (a * b)))

    def with_offset(self, y, c, offset):
        check_offset(offset, "tweedie")
        return y * np.exp(-offset), c * np.exp(self._a * offset)

    def mean(self, f):
        return np.exp(np.clip(f, -EXP_MAX, EXP_MAX))

    def __repr__(self) -> str:
        return f"Tweedie({self.power!r})"


def _tweedie(loss, alpha, n, tol):
    from sklearn.linear_model import TweedieRegressor

    return TweedieRegressor(power=loss.power, link="log", alpha=alpha, tol=tol, max_iter=1000)
