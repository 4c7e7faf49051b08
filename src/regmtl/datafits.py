r"""Data-fit terms: the loss side of the objective.

A datafit evaluates, on flat per-observation arrays (targets ``y``, scores ``f``, row weights
``c``; see :class:`~regmtl.TaskData`)::

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
    r"""Base class of the data-fit terms (the loss side of the objective).

    A datafit evaluates the weighted loss of per-observation scores,

    .. math::

        F(f) = \sum_r c_r\, \ell(y_r, f_r),

    on the flat arrays of a :class:`~regmtl.TaskData`: targets ``y``, scores
    ``f_r = x_r . w_t + b_t`` and row weights ``c`` (which hold the per-task means
    ``omega_t / n_t`` of the objective). It also gives what a certified solver needs: the dual
    variable ``theta = -l'(f)`` and the Fenchel-dual term ``-sum_r c_r l*(-theta_r)``. The
    solvers' compiled kernels implement the two losses of the library, so new losses are not
    added by subclassing; use :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.

    Attributes
    ----------
    name : str
        ``"squared"`` or ``"logistic"`` (the estimators' ``loss``).
    code : int
        Selects the compiled kernels: 0 squared, 1 logistic.
    curvature : float
        Upper bound on ``l''`` (1 squared, 1/4 logistic).
    dual_strong_concavity : float
        Lower bound on ``(l*)''``: the strong concavity of the dual in the c-weighted norm,
        used by the gap-safe screening rules.

    See Also
    --------
    regmtl.Quadratic : The squared loss of :class:`~regmtl.MultiTaskRegressor`.
    regmtl.Logistic : The logistic loss of :class:`~regmtl.MultiTaskClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Quadratic
    >>> from regmtl.datafits import Datafit
    >>> loss = Quadratic()
    >>> isinstance(loss, Datafit), loss.name, loss.curvature
    (True, 'squared', 1.0)
    >>> y, f, c = np.array([1.0, 2.0, 3.0]), np.ones(3), np.full(3, 1 / 3)
    >>> round(loss.value(y, f, c), 4)  # (0 + 1 + 4) / 2 / 3
    0.8333
    """

    code: int
    curvature: float
    dual_strong_concavity: float
    name: str

    def value(self, y: np.ndarray, f: np.ndarray, c: np.ndarray) -> float:
        """The weighted loss ``sum_r c_r l(y_r, f_r)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets (-1/+1 for the logistic loss).
        f : ndarray of shape (n_obs,)
            Scores.
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        float
            The data term.
        """
        raise NotImplementedError

    def theta(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Negative derivative of the loss in the score: ``-l'(y, f)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            ``theta``: the residual ``y - f`` (squared), ``y sigmoid(-y f)`` (logistic).
        """
        raise NotImplementedError

    def dual_value(self, y: np.ndarray, theta: np.ndarray, c: np.ndarray) -> float:
        """The Fenchel-dual term ``-sum_r c_r l*(-theta_r)``.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        theta : ndarray of shape (n_obs,)
            A dual point in the domain of the conjugate (see
            :meth:`~regmtl.datafits.Datafit.feasible`).
        c : ndarray of shape (n_obs,)
            Row weights.

        Returns
        -------
        float
            The data part of the dual objective.
        """
        raise NotImplementedError

    def feasible(self, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Project ``theta`` onto the domain of the conjugate.

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        theta : ndarray of shape (n_obs,)
            A dual point.

        Returns
        -------
        ndarray of shape (n_obs,)
            The projection (``theta`` itself for the squared loss; ``y theta`` clipped to
            [0, 1] for the logistic loss).
        """
        return theta

    def state(self, y: np.ndarray, f: np.ndarray) -> np.ndarray:
        """The coordinate-descent state of scores ``f``: the residual ``y - f`` (squared
        loss) or the scores themselves (logistic loss).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        f : ndarray of shape (n_obs,)
            Scores.

        Returns
        -------
        ndarray of shape (n_obs,)
            A new array holding the state.
        """
        if hasattr(f, "__dask_graph__"):  # held in blocks elsewhere: operations make copies
            return f
        return np.array(f, dtype=np.float64)

    def scores(self, y: np.ndarray, S: np.ndarray) -> np.ndarray:
        """The scores of a coordinate-descent state (the inverse of :meth:`state`).

        Parameters
        ----------
        y : ndarray of shape (n_obs,)
            Targets.
        S : ndarray of shape (n_obs,)
            State.

        Returns
        -------
        ndarray of shape (n_obs,)
            Scores ``f``.
        """
        return S

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


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

    def value(self, y, f, c):
        return float(np.dot(c, np.logaddexp(0.0, -y * f)))

    def theta(self, y, f):
        return y * expit(-y * f)

    def dual_value(self, y, theta, c):
        a = np.clip(y * theta, 0.0, 1.0)
        return float(-np.dot(c, xlogy(a, a) + xlogy(1.0 - a, 1.0 - a)))

    def feasible(self, y, theta):
        return y * np.clip(y * theta, 0.0, 1.0)
