r"""Optimality certificates: duality gap and KKT residual.

For the objective ``P(W, b) = sum_r c_r l(y_r, f_r) + Omega(W)`` with ``f_r = x_r . w_t + b_t``,
any ``theta`` in the domain of the conjugate loss with ``sum_{r in t} c_r theta_r = 0`` for every
task (only when intercepts are fitted) gives the dual value::

    D(theta) = -sum_r c_r l*(-theta_r) - Omega*(G),   G[:, t] = X_t^T (c theta)_t,

and ``P - D >= 0`` bounds the suboptimality. The dual point is built from the current scores
(``theta = -l'(f)``), centred per task, projected onto the loss domain and scaled into the
domain of ``Omega*``; it converges to the dual optimum, so the gap goes to 0.

Where no dual is at hand (alpha = 0, or a penalty without a tractable conjugate) the
certificate is the KKT residual, relative to the gradient at W = 0: the distance of the negative
gradient to the subdifferential for separable penalties, else the proximal-gradient residual
``||V - prox_{s Omega}(V - s grad)|| / s`` (zero exactly at a solution), with ``s = 1 / L``.

Penalties over a lifted variable V (``W = penalty.compose(V)``) are certified in V.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import Penalty
from ..taskdata import TaskData
from ._kernels import update_intercepts

__all__ = [
    "Certificate",
    "Reference",
    "certify",
    "curvature_bound",
    "dual_point",
    "duality_gap",
    "duality_gap_terms",
    "fit_intercepts",
    "kkt_residual",
    "reference",
]


@dataclass
class Certificate:
    """``kind`` is ``"duality_gap"`` (``value`` = absolute gap, converged when
    ``value <= tol * scale``) or ``"kkt_residual"`` (``value`` relative, converged when
    ``value <= tol``). ``scale`` is the objective at W = 0 with fitted intercepts."""

    kind: str
    value: float
    primal: float
    dual: float | None
    scale: float

    @property
    def relative(self) -> float:
        if self.kind == "duality_gap":
            return self.value / self.scale
        return self.value

    def converged(self, tol: float) -> bool:
        return bool(self.relative <= tol)


@dataclass
class Reference:
    """The problem at W = 0: intercepts ``b0``, scores ``f0``, objective ``P0`` and
    ``G0 = X^T (c theta0)`` (whose dual norm is ``alpha_max``)."""

    b0: np.ndarray
    f0: np.ndarray
    P0: float
    G0: np.ndarray


def fit_intercepts(
    data: TaskData, datafit: Datafit, S: np.ndarray, b: np.ndarray, max_newton: int = 50
) -> None:
    """Minimize over the intercepts with W fixed (in place on the state S and b)."""
    update_intercepts(data.y, data.c, data.indptr, S, b, datafit.code, max_newton, 1e-13)


def reference(data: TaskData, datafit: Datafit, fit_intercept: bool) -> Reference:
    b0 = np.zeros(data.n_tasks)
    f0 = np.zeros(data.n_obs)
    if fit_intercept:
        S = datafit.state(data.y, f0)
        fit_intercepts(data, datafit, S, b0)
        f0 = datafit.scores(data.y, S).copy()
    P0 = datafit.value(data.y, f0, data.c)
    theta0 = datafit.theta(data.y, f0)
    G0 = data.adjoint(data.c * theta0)
    return Reference(b0=b0, f0=f0, P0=max(P0, np.finfo(float).tiny), G0=G0)


def dual_point(data: TaskData, datafit: Datafit, f: np.ndarray,
               fit_intercept: bool) -> np.ndarray:
    """``theta = -l'(f)``, centered per task with intercepts, projected onto the loss domain."""
    theta = datafit.theta(data.y, f)
    if fit_intercept:
        c = data.c
        mean = data.task_sums(c * theta) / data.task_sums(c)
        theta = theta - mean[data.task_of]
    return datafit.feasible(data.y, theta)


def duality_gap(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
) -> tuple[float, float, float]:
    """(gap, primal, dual) at the variable V with scores f (the intercepts are inside f)."""
    return duality_gap_terms(data, datafit, penalty, alpha, V, f, fit_intercept)[:3]


def duality_gap_terms(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
) -> tuple[float, float, float, float, np.ndarray]:
    """(gap, primal, dual, s, G): also the scaling ``s`` of the dual point ``s theta`` and
    ``G = X^T (c theta)`` (screening and working sets use them)."""
    theta = dual_point(data, datafit, f, fit_intercept)
    G = data.adjoint(data.c * theta)
    s = penalty.dual_scaling(G, alpha)
    dual = datafit.dual_value(data.y, s * theta, data.c) - penalty.conjugate(s * G, alpha)
    primal = datafit.value(data.y, f, data.c) + penalty.value(V, alpha)
    return max(primal - dual, 0.0), primal, dual, s, G


def kkt_residual(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
    G0: np.ndarray,
    lipschitz: float | None = None,
) -> float:
    """Relative KKT residual at the variable V with scores f (intercept gradient included)."""
    u = data.c * datafit.theta(data.y, f)
    G = data.adjoint(u)
    if hasattr(penalty, "subdiff_distance"):
        d = penalty.subdiff_distance(V, G, alpha)
        res = float(np.sum(d * d))
    else:
        L = lipschitz if lipschitz else curvature_bound(data, datafit)
        D = V - penalty.prox(V + penalty.spread(G) / L, 1.0 / L, alpha)
        res = float(np.vdot(D, D)) * L * L
    if fit_intercept:
        res += float(np.sum(data.task_sums(u) ** 2))
    ref = float(np.linalg.norm(G0))
    return np.sqrt(res) / (ref if ref > 0 else 1.0)


def curvature_bound(data: TaskData, datafit: Datafit) -> float:
    """An upper bound on the Lipschitz constant of the data term's gradient:
    ``curvature * max_t sum_{r in t} c_r ||x_r||^2``."""
    X = data.X
    sq = np.asarray(X.multiply(X).sum(axis=1)).ravel() if sp.issparse(X) else np.einsum(
        "ij,ij->i", X, X)
    rows = sq if not data.shared else np.tile(sq, data.n_tasks)
    return float(datafit.curvature * max(data.task_sums(data.c * rows).max(), 1e-300))


def certify(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
    ref: Reference,
    lipschitz: float | None = None,
) -> Certificate:
    """The certificate of the penalty: a duality gap where its dual is at hand, else KKT."""
    if penalty.has_dual and alpha > 0:
        gap, primal, dual = duality_gap(data, datafit, penalty, alpha, V, f, fit_intercept)
        return Certificate("duality_gap", gap, primal, dual, ref.P0)
    value = kkt_residual(data, datafit, penalty, alpha, V, f, fit_intercept, ref.G0, lipschitz)
    primal = datafit.value(data.y, f, data.c) + penalty.value(V, alpha)
    return Certificate("kkt_residual", value, primal, None, ref.P0)
