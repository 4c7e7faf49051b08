"""The Huber loss of regression with heavy-tailed noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Datafit, loss_parameter

__all__ = ["Huber", "target_scale"]


class Huber(Datafit):
    r"""Huber loss: squared near the fit, linear beyond ``delta`` (robust to outliers).

    .. math::

        \ell(y, f) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
        \delta |r| - \tfrac12 \delta^2 & |r| > \delta \end{cases}, \qquad r = y - f.

    By default ``delta`` is ``epsilon`` robust scales of the targets, as scikit-learn's
    ``HuberRegressor`` reads ``epsilon`` in units of a scale: the scale is
    :math:`\hat\sigma = 1.4826\, \mathrm{median}_r |y_r - m_{t(r)}|`, ``m_t`` each
    task's median (both weighted by the rows' weights in the loss), taken from the data a fit
    sees when the loss is bound to it (:meth:`bind`; each fold of a CV on its own training
    rows, like a scaler in a pipeline). A ``delta`` given is in the targets' units, the same
    for any data. Its dual variable is the clipped residual
    :math:`\theta = \min(\max(r, -\delta), \delta)`, and the conjugate term
    :math:`\theta y - \theta^2 / 2` is finite on the box :math:`|\theta| \le \delta`.

    Measured (``bench/bench_huber_default.py``, held-out rows of each task): on School this
    default (delta 16) had the lowest held-out error beside delta 1.35 in target units,
    hqreg's IQR(y) / 10 and scikit-learn's jointly fitted scale, and its L2,1 CV ran at 3.6
    times the squared CV (1.35: 8.5 times, 85 % of the rows on the linear pieces).

    Parameters
    ----------
    delta : float or None, default=None
        Where the loss turns linear, > 0, in the targets' units; None: ``epsilon`` robust
        scales of the targets.
    epsilon : float, default=1.35
        With ``delta=None``, delta in robust scales of the targets (1.35: 95 % efficiency
        under Gaussian noise), > 0.

    See Also
    --------
    regmtl.Quantile : The pinball loss of quantile regression.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import Huber, as_task_data
    >>> y, f, c = np.array([0.0, 1.0, 10.0]), np.zeros(3), np.full(3, 1 / 3)
    >>> round(Huber(delta=1.0).value(y, f, c), 4)  # (0 + 1/2 + (10 - 1/2)) / 3
    3.3333
    >>> Huber(delta=1.0).theta(y, f).tolist()
    [0.0, 1.0, 1.0]
    >>> data = as_task_data(np.ones((4, 1)), np.array([0.0, 1.0, 2.0, 30.0]))
    >>> Huber().bind(data)  # median 1 (the lower), |y - 1| = 1, 0, 1, 29: median 1
    Huber(delta=2.00151)
    """

    name = "huber"
    kind = "regression"
    link = "identity"
    cli_parameters = {
        "--huber-delta": (
            "delta", "DELTA", "--loss huber: where the loss turns linear, in the target's "
            "units (default: --huber-epsilon robust scales of the target)"),
        "--huber-epsilon": (
            "epsilon", "EPS", "--loss huber without --huber-delta: delta in robust scales "
            "of the target (1.4826 times the median absolute deviation from each task's "
            "median; default 1.35)")}
    curvature = 1.0
    piecewise_quadratic = True
    dual_strong_concavity = 1.0
    has_dual_prox = True
    scale_degree = 2

    def sample_targets(self, f, rng):
        """``f`` plus Student-t noise of 2 degrees of freedom (outliers)."""
        return f + rng.standard_t(2.0, f.shape[0])

    def single_task_anchor(self):
        """scikit-learn's ``HuberRegressor``."""
        return _huber, "l2", "HuberRegressor"

    def __init__(self, delta: float | None = None, epsilon: float = 1.35):
        self.delta = None if delta is None else loss_parameter(
            delta, f"Huber(delta={delta!r})", "delta", 0.0, None,
            "in the targets' units, e.g. 1.35; or None for epsilon robust scales of them")
        self.epsilon = loss_parameter(epsilon, f"Huber(epsilon={epsilon!r})", "epsilon", 0.0,
                                      None, "in robust scales of the targets, e.g. 1.35")

    @property
    def reads_data(self) -> bool:
        """Whether ``delta`` is read from the data (``delta=None``)."""
        return self.delta is None

    @property
    def _d(self) -> float:
        if self.delta is None:
            raise ValueError("Huber(delta=None) takes its delta from the data a fit sees: "
                             "bind it to the problem first (Huber().bind(data)), or give "
                             "delta in the targets' units.")
        return self.delta

    def bind(self, data: Any, tasks: np.ndarray | None = None) -> Huber:
        """This loss with ``delta`` in the targets' units: itself where given, else
        ``epsilon`` times ``target_scale`` of ``data`` (of its tasks ``tasks``, a mask,
        where given: a loss list's Huber tasks), kept with the problem."""
        if self.delta is not None:
            return self
        # (kept with the problem beside the targets and weights it was read from: a fold's
        # targets replaced by their offsets' fold are read again)
        key = ("huber_scale", None if tasks is None else np.asarray(tasks, bool).tobytes())
        held = data.memo(key, lambda: [None, None, 0.0])
        if held[0] is not data.y or held[1] is not data.c:
            held[:] = [data.y, data.c, target_scale(data, tasks)]
        return Huber(float(f"{self.epsilon * held[2]:.6g}"), self.epsilon)

    def rescaled(self, s):
        """``delta`` in the new units: ``l_{s delta}(s y, s f) = s^2 l_delta(y, f)`` (a
        delta in robust scales stays as it is)."""
        return Huber(None if self.delta is None else self.delta * s, self.epsilon)

    def value(self, y, f, c):
        return float(self.lazy_value(y, f, c))

    def lazy_value(self, y, f, c):
        a = np.abs(y - f)
        d = self._d
        return np.dot(c, np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d))

    def deviance(self, y, f):
        a = np.abs(y - f)
        d = self._d
        return 2.0 * np.where(a <= d, 0.5 * a * a, d * a - 0.5 * d * d)

    def theta(self, y, f):
        return np.clip(y - f, -self._d, self._d)

    def hessian(self, y, f):
        return (np.abs(y - f) <= self._d).astype(np.float64)

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
        return np.clip(theta, -self._d, self._d)

    def dual_prox(self, y, v, step):
        """``clip(v / (1 + step), -delta, delta)``."""
        return np.clip(v / (1.0 + step), -self._d, self._d)

    def with_offset(self, y, c, offset):
        return y - offset, c

    def __repr__(self) -> str:
        if self.delta is not None:
            return f"Huber(delta={self.delta!r})"
        return "Huber()" if self.epsilon == 1.35 else f"Huber(epsilon={self.epsilon!r})"


#: Rounds of bisection for each weighted median (the targets' range over 2^40).
ROUNDS = 40


def target_scale(data: Any, tasks: np.ndarray | None = None) -> float:
    """``1.4826 median_r |y_r - m_t(r)|``, ``m_t`` each task's median, both weighted by the
    rows' weights ``data.c`` (on the tasks ``tasks``, a mask, where given); where more than
    half the weight sits at its task's median, ``sqrt(pi / 2)`` times the mean absolute
    deviation, and 1 for targets constant within each task (any delta fits them exactly).

    The medians by bisection on the block protocol's reductions (``task_sums``, ``per_row``):
    O(n) a round in memory, one round trip a round on task blocks held elsewhere, the rows
    never gathered."""
    y, c = data.y, data.c
    if tasks is not None:
        c = c * data.per_row(np.asarray(tasks, dtype=np.float64))
    (half,) = data.arrays(0.5 * data.task_sums(c))
    half = np.asarray(half, dtype=np.float64)
    lo, hi = data.numbers(y.min(), y.max())
    low, high = np.full(data.n_tasks, lo), np.full(data.n_tasks, hi)
    for _ in range(ROUNDS):  # each task's weighted median: the least m with weight >= half
        mid = 0.5 * (low + high)
        (below,) = data.arrays(data.task_sums(c * (y <= data.per_row(mid))))
        up = np.asarray(below) >= half
        high, low = np.where(up, mid, high), np.where(up, low, mid)
    dev = abs(y - data.per_row(high))
    total, top, mean = data.numbers(c.sum(), dev.max(), (c * dev).sum())
    low, high = 0.0, top
    for _ in range(ROUNDS):
        mid = 0.5 * (low + high)
        (below,) = data.numbers((c * (dev <= mid)).sum())
        low, high = (low, mid) if below >= 0.5 * total else (mid, high)
    if high > 1e-9 * (hi - lo):  # (above the medians' own bisection error, range / 2^40)
        return 1.4826 * high
    if total > 0 and mean > 0:
        return float(np.sqrt(np.pi / 2) * mean / total)
    return 1.0


def _huber(loss, alpha, n, tol):
    from sklearn.linear_model import HuberRegressor

    return HuberRegressor(alpha=n * alpha, tol=tol, max_iter=1000)
