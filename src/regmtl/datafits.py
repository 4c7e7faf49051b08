r"""Data-fit terms: the loss side of the objective.

A datafit evaluates, on flat per-observation arrays (targets ``y``, scores ``f``, row weights
``c``; see :mod:`regmtl.taskdata`)::

    F(f) = sum_r c_r * l(y_r, f_r)

and the pieces a certified solver needs: the dual variable ``theta = -l'(f)`` and the
Fenchel-dual term ``-sum_r c_r l*(-theta_r)`` (so that for any feasible ``theta`` the dual value is
``dual_value(theta) - Omega*(X^T (c theta))``).

===========  =========================  ==============================================
datafit      l(y, f)                     -l*(-theta), with a = y theta in [0, 1]
===========  =========================  ==============================================
Quadratic    (y - f)^2 / 2               theta y - theta^2 / 2
Logistic     log(1 + exp(-y f)), y=+-1   -(a log a + (1 - a) log(1 - a))
===========  =========================  ==============================================
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy

__all__ = ["Datafit", "Quadratic", "Logistic"]


class Datafit:
    """Base class. ``code`` selects the numba kernels (0 quadratic, 1 logistic, as in
    :mod:`regmtl.solvers._kernels`), ``curvature`` bounds ``l''``, ``dual_strong_concavity``
    bounds ``(l*)''`` from below (the dual's strong concavity in the c-weighted norm)."""

    code: int
    curvature: float
    dual_strong_concavity: float
    name: str

    def value(self, y: np.ndarray, f: np.ndarray, c: np.ndarray) -> float:
        raise NotImplementedError

    def theta(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Negative derivative of the loss in the score: ``-l'(y, f)``."""
        raise NotImplementedError

    def dual_value(self, y: np.ndarray, theta: np.ndarray, c: np.ndarray) -> float:
        """``-sum_r c_r l*(-theta_r)`` (``theta`` assumed in the domain, see :meth:`feasible`)."""
        raise NotImplementedError

    def feasible(self, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Project ``theta`` onto the domain of the conjugate."""
        return theta

    # the coordinate descent state: residual (quadratic) or scores (logistic)
    def state(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        return np.array(f, dtype=np.float64)

    def scores(self, y: np.ndarray, S: np.ndarray) -> np.ndarray:
        return S

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Quadratic(Datafit):
    """Squared loss ``l(y, f) = (y - f)^2 / 2``."""

    code = 0
    curvature = 1.0
    dual_strong_concavity = 1.0
    name = "squared"

    def value(self, y, f, c):
        r = y - f
        return 0.5 * float(np.dot(c, r * r))

    def theta(self, y, f):
        return y - f

    def dual_value(self, y, theta, c):
        return float(np.dot(c, theta * (y - 0.5 * theta)))

    def state(self, y, f):
        return y - f

    def scores(self, y, S):
        return y - S


class Logistic(Datafit):
    """Logistic loss ``l(y, f) = log(1 + exp(-y f))`` with labels ``y`` in {-1, +1}."""

    code = 1
    curvature = 0.25
    dual_strong_concavity = 4.0
    name = "logistic"

    def value(self, y, f, c):
        return float(np.dot(c, np.logaddexp(0.0, -y * f)))

    def theta(self, y, f):
        return y * expit(-y * f)

    def dual_value(self, y, theta, c):
        a = np.clip(y * theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a) + xlogy(1.0 - a, 1.0 - a)))

    def feasible(self, y, theta):
        return y * np.clip(y * theta, 0.0, 1.0)
