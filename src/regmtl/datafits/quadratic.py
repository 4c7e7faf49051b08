"""The squared loss of regression."""

from __future__ import annotations

import numpy as np

from .base import Datafit

__all__ = ["Quadratic"]


class Quadratic(Datafit):
    r"""Squared loss, the data term of :class:`~regmtl.MultiTaskRegressor`.

    .. math::

        \ell(y, f) = \tfrac{1}{2} (y - f)^2,

    so that with equal task weights the data term is
    :math:`\sum_t \frac{1}{2 n_t} \|y_t - X_t w_t - b_t\|^2` (scikit-learn's convention for
    ``Lasso`` and ``MultiTaskLasso``). Its conjugate term is
    ``-l*(-theta) = theta y - theta^2 / 2`` (finite everywhere), ``theta = y - f`` the residual.

    See Also
    --------
    regmtl.Logistic : The loss of binary classification.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Quadratic
    >>> y, f, c = np.array([1.0, 2.0, 3.0]), np.ones(3), np.full(3, 1 / 3)
    >>> round(Quadratic().value(y, f, c), 4)  # (0 + 1 + 4) / 2 / 3
    0.8333
    >>> Quadratic().theta(y, f).tolist()  # the residuals
    [0.0, 1.0, 2.0]
    """

    code = 0
    quadratic = True
    profiles_scale = True
    curvature = 1.0
    dual_strong_concavity = 1.0
    has_dual_prox = True
    scale_degree = 2
    name = "squared"
    kind = "regression"
    link = "identity"
    default_for_kind = True

    def sample_targets(self, f, rng):
        """``f`` plus Gaussian noise of scale 0.5."""
        return f + 0.5 * rng.standard_normal(f.shape[0])

    def single_task_anchor(self):
        """scikit-learn's ``Ridge`` (``LinearRegression`` at alpha 0)."""
        return _ridge, "l2", "Ridge"

    def neg2_log_likelihood(self, data, f, s):
        """Gaussian, each task's noise variance at its maximum-likelihood value:
        ``sum_t m_t (log(2 pi RSS_t / m_t) + 1)``, ``m_t`` the task's weight in ``s``."""
        m = data.task_sums(s)
        rss = data.task_sums(s * (data.y - f) ** 2)
        rss = np.maximum(rss, np.finfo(float).tiny * np.maximum(m, 1.0))
        return float(np.sum(m * (np.log(2.0 * np.pi * rss / m) + 1.0)))

    def value(self, y, f, c):
        r = y - f
        return 0.5 * float(np.dot(c, r * r))

    def deviance(self, y, f):
        return (y - f) ** 2

    def dual_prox(self, y, v, step):
        """``v / (1 + step)``."""
        return v / (1.0 + step)

    def theta(self, y, f):
        return y - f

    def dual_value(self, y, theta, c):
        return float(np.dot(c, theta * (y - 0.5 * theta)))

    def hessian(self, y, f):
        return np.ones_like(f, dtype=np.float64)

    def with_offset(self, y, c, offset):
        return y - offset, c

    def state(self, y, f):
        return y - f

    def scores(self, y, S):
        return y - S


def _ridge(loss, alpha, n, tol):
    from sklearn.linear_model import LinearRegression, Ridge

    return LinearRegression() if alpha == 0 else Ridge(alpha=n * alpha)
