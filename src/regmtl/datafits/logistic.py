"""The logistic loss of binary classification."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy

from .base import Datafit

__all__ = ["Logistic"]


class Logistic(Datafit):
    r"""Logistic loss, the data term of :class:`~regmtl.MultiTaskClassifier`.

    .. math::

        \ell(y, f) = \log\big(1 + e^{-y f}\big), \qquad y \in \{-1, +1\}.

    The estimators map each task's two labels to -1/+1 (the larger one, in sorted order, is
    +1). Its conjugate term is the binary entropy ``-(a log a + (1 - a) log(1 - a))`` of
    ``a = y theta`` in [0, 1], ``theta = y sigmoid(-y f)``.

    See Also
    --------
    regmtl.Quadratic : The loss of regression.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Logistic
    >>> y, f, c = np.array([1.0, -1.0, 1.0]), np.array([0.5, -0.5, 0.0]), np.full(3, 1 / 3)
    >>> round(Logistic().value(y, f, c), 4)  # mean of log(1 + exp(-y f))
    0.5471
    >>> np.round(Logistic().theta(y, f), 4).tolist()
    [0.3775, -0.3775, 0.5]
    """

    code = 1
    curvature = 0.25
    dual_strong_concavity = 4.0
    name = "logistic"
    kind = "binary"
    link = "binary"
    scale_degree = 0  # labels: X alone is brought to 1
    default_for_kind = True

    def sample_targets(self, f, rng):
        """Labels 0/1 of probability ``expit(f)``, both present."""
        y = (rng.random(f.shape[0]) < expit(f)).astype(float)
        y[:2] = (0.0, 1.0)
        return y

    def single_task_anchor(self):
        """scikit-learn's ``LogisticRegression``."""
        return logistic_anchor, "l2", "LogisticRegression"

    def anchor_curvature(self, y):
        """1/4, the logistic loss's largest curvature."""
        return 0.25

    def neg2_log_likelihood(self, data, f, s):
        """Bernoulli: ``2 sum_r s_r log(1 + exp(-y_r f_r))``."""
        return float(2.0 * np.sum(s * np.logaddexp(0.0, -data.y * f)))

    def value(self, y, f, c):
        return float(np.dot(c, np.logaddexp(0.0, -y * f)))

    def hessian(self, y, f):
        prob = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(f, dtype=np.float64)))
        return prob * (1.0 - prob)

    def newton_weights(self, y, f):
        s = y * self.theta(y, f)  # sigmoid(-y f): the same p (1 - p)
        return s * (1.0 - s)

    def deviance(self, y, f):
        return 2.0 * np.logaddexp(0.0, -y * f)

    def theta(self, y, f):
        return y * expit(-y * f)

    def dual_value(self, y, theta, c):
        a = np.clip(y * theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a) + xlogy(1.0 - a, 1.0 - a)))

    def feasible(self, y, theta):
        return y * np.clip(y * theta, 0.0, 1.0)


def logistic_anchor(loss, alpha, n, tol):
    """scikit-learn's ``LogisticRegression`` at regmtl's ``alpha`` (``C = 1 / (n alpha)``)."""
    from sklearn.linear_model import LogisticRegression

    if alpha == 0:
        return LogisticRegression(penalty=None, tol=tol, max_iter=1000)
    return LogisticRegression(C=1.0 / (n * alpha), tol=tol, max_iter=1000)
