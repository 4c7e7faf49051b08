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
gradient to the subdifferential for separable penalties (the Clarke subdifferential for the
nonconvex ones, MCP, SCAD, capped-L1: it certifies a stationary point, not a global minimum),
else the proximal-gradient residual
``||V - prox_{s Omega}(V - s grad)|| / s`` (zero exactly at a solution), with ``s = 1 / L``.

Penalties over a lifted variable V (``W = penalty.compose(V)``) are certified in V.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import inner
from ...ranges import column_scales
from ...taskdata import TaskData
from ..parts._kernels import update_intercepts
from ..parts.intercepts import newton_intercepts

__all__ = [
    "Certificate",
    "Reference",
    "certify",
    "curvature_bound",
    "dual_point",
    "duality_gap",
    "duality_gap_terms",
    "fit_intercepts",
    "kkt_of_gradient",
    "kkt_residual",
    "per_row",
    "reference",
    "rounding_floor",
    "scores_intercepts",
]


@dataclass
class Certificate:
    """An optimality certificate: how far a solution can be from the optimum.

    A duality gap bounds the suboptimality of the objective; the KKT residual measures how far
    the optimality conditions are from holding (zero exactly at a solution).

    Parameters
    ----------
    kind : {"duality_gap", "kkt_residual"}
        Which certificate.
    value : float
        The absolute duality gap, or the KKT residual relative to the gradient at W = 0.
    primal : float
        The objective at the solution.
    dual : float or None
        The dual objective at the dual point built from it (None for a KKT residual).
    scale : float
        The objective at W = 0 with fitted intercepts (the scale of ``tol``).
    rounding : float, default 0
        The part of the duality gap that the rounding of ``G = X^T (c theta)`` in float64
        can account for (set where the gap alone does not meet ``tol``).

    Attributes
    ----------
    relative : float
        ``value / scale`` for a duality gap, ``value`` for a KKT residual: what is compared
        with ``tol``.

    See Also
    --------
    regmtl.solvers.certify : Computes one.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import reference, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> res = solve(data, rm.Quadratic(), rm.L21(), alpha=0.1)
    >>> cert = res.certificate
    >>> cert.kind, cert.converged(1e-4)
    ('duality_gap', True)
    >>> bool(np.isclose(cert.value, cert.primal - cert.dual))
    True
    """

    kind: str
    value: float
    primal: float
    dual: float | None
    scale: float
    rounding: float = 0.0

    @property
    def relative(self) -> float:
        """The certificate relative to the objective at W = 0 (a KKT residual already is),
        less the part float64 rounding accounts for (``rounding``, see
        :func:`~regmtl.solvers.rounding_floor`)."""
        if self.kind == "duality_gap":
            return max(self.value - self.rounding, 0.0) / self.scale
        return self.value

    def converged(self, tol: float) -> bool:
        """Whether the relative certificate is at most ``tol``.

        Parameters
        ----------
        tol : float
            The tolerance.

        Returns
        -------
        bool
            ``relative <= tol``.
        """
        return bool(self.relative <= tol)


@dataclass
class Reference:
    """The problem at W = 0: what scales the certificates and gives ``alpha_max``.

    Parameters
    ----------
    b0 : ndarray of shape (T,)
        The optimal intercepts at W = 0 (zeros without intercepts).
    f0 : ndarray of shape (n_obs,)
        The scores at W = 0.
    P0 : float
        The objective at W = 0 above the loss's floor (``datafit.floor``, 0 for the squared
        and logistic losses): the scale of ``tol``.
    G0 : ndarray of shape (p, T)
        Minus the gradient of the data term at W = 0, ``X^T (c theta0)``; its dual norm is
        the penalty's ``alpha_max``.

    See Also
    --------
    regmtl.solvers.reference : Computes one.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import reference, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), fit_intercept=True)
    >>> bool(np.allclose(ref.b0, Y.mean(axis=0)))  # the intercepts absorb the means
    True
    >>> bool(np.isclose(rm.L21().alpha_max(ref.G0), rm.alpha_max(X, Y, penalty="l21")))
    True
    """

    b0: np.ndarray
    f0: np.ndarray
    P0: float
    G0: np.ndarray


def fit_intercepts(
    data: TaskBlocks, datafit: Datafit, S: np.ndarray, b: np.ndarray, max_newton: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize over the intercepts with W fixed: in place on the state S and b where the rows
    are local (returned as well); for task blocks held elsewhere, new ``(S, b)`` computed block
    by block."""
    if not data.rows_local:
        return data.blockwise(_block_intercepts, datafit, S, b, max_newton,
                              out=["rows", "tasks"])
    if datafit.code is None:
        newton_intercepts(data, datafit, S, b, max(max_newton, 100 if datafit.smooth else 400),
                          1e-13)
    else:
        update_intercepts(data.y, data.c, data.indptr, S, b, datafit.code, max_newton, 1e-13)
    return S, b


def scores_intercepts(data: TaskBlocks, datafit: Datafit, f: np.ndarray, b: np.ndarray,
                      max_newton: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_intercepts` from the scores ``f``: the loss's state of them
    (``datafit.state``: the residual ``y - f`` for the squared loss, the scores themselves
    otherwise), its intercepts minimized, and the scores of that state. Returns ``(f, b)``,
    ``b`` changed in place where the rows are local; ``f`` is not written to."""
    S = datafit.state(data.y, f)
    S, b = fit_intercepts(data, datafit, S, b, max_newton)
    return datafit.scores(data.y, S), b


def _block_intercepts(block, datafit, S, b, max_newton):
    datafit = datafit.bind(block)  # (a loss that reads the block layout: bound to its rows)
    S, b = np.array(S, dtype=np.float64), np.array(b, dtype=np.float64)
    return fit_intercepts(block, datafit, S, b, max_newton)


def reference(data: TaskBlocks, datafit: Datafit, fit_intercept: bool) -> Reference:
    """The problem at W = 0, with the intercepts minimized.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss.
    fit_intercept : bool
        Whether the intercepts are fitted (otherwise they stay 0).

    Returns
    -------
    Reference
        ``b0``, ``f0``, ``P0`` and ``G0``.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import reference, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), fit_intercept=True)
    >>> ref.b0.shape, ref.G0.shape
    ((3,), (8, 3))
    """
    datafit = datafit.bind(data)
    b0 = np.zeros(data.n_tasks)
    f0 = data.row_zeros()
    if fit_intercept:
        f0, b0 = scores_intercepts(data, datafit, f0, b0)
        if data.rows_local:  # (the state is updated in place there)
            f0 = f0.copy()
    theta0 = datafit.theta(data.y, f0)
    G0 = data.adjoint(data.c * theta0)
    # computed once and kept where the blocks are; b0 (T numbers) with the caller
    f0, G0, b0 = data.settle(f0, G0, b0)
    b0 = np.asarray(b0)
    P0 = datafit.value(data.y, f0, data.c)
    if data.rows_local:
        P0 -= datafit.floor(data.y, data.c)
    else:  # the floor summed block by block, where the rows are
        P0 -= data.numbers(data.blockwise(_block_floor, datafit, out="scalar").sum())[0]
    return Reference(b0=b0, f0=f0, P0=max(P0, np.finfo(float).tiny), G0=G0)


def _block_floor(block, datafit):
    """The loss's floor ``sum_r c_r inf l(y_r, .)`` on one block's rows."""
    return datafit.bind(block).floor(block.y, block.c)


def per_row(s: float | np.ndarray, data: TaskBlocks) -> float | np.ndarray:
    """A dual scaling (one number, or one per task) as a factor per flat observation."""
    return data.per_row(s)


def dual_point(data: TaskBlocks, datafit: Datafit, f: np.ndarray,
               fit_intercept: bool) -> np.ndarray:
    """``theta = -l'(f)``, centered per task with intercepts, projected onto the loss domain."""
    theta = datafit.theta(data.y, f)
    if fit_intercept:
        c = data.c
        mean = data.task_sums(c * theta) / data.task_sums(c)
        theta = theta - per_row(mean, data)
    return datafit.feasible(data.y, theta)


def duality_gap(
    data: TaskBlocks,
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
    data: TaskBlocks,
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
    s, dual, loss, value = _dual_value(data, datafit, penalty, alpha, theta, G,
                                       datafit.lazy_value(data.y, f, data.c),
                                       penalty.lazy_value(V, alpha))
    primal = loss + value
    return max(primal - dual, 0.0), primal, dual, s, G


def _dual_value(data, datafit, penalty, alpha, theta, G, *more) -> tuple[Any, ...]:
    """The scaling ``s`` of ``theta`` into the penalty's dual ball and ``D(s theta)``, with
    ``G = X^T (c theta)`` given; then ``more`` scalars as floats. On task blocks the sums
    that the loss and the penalty leave lazy come home in one round trip (``s`` with them
    where it is one number)."""
    s = penalty.lazy_dual_scaling(G, alpha)
    dual = datafit.lazy_dual_value(data.y, per_row(s, data) * theta, data.c)
    if np.ndim(s) == 0:
        s, dual, *more = data.numbers(s, dual, *more)
    else:
        dual, *more = data.numbers(dual, *more)
    return (s, dual - penalty.scaled_conjugate(G, s, alpha), *more)


def kkt_residual(
    data: TaskBlocks,
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
    return kkt_of_gradient(penalty, alpha, V, G, data.task_sums(u) if fit_intercept else None,
                           float(np.linalg.norm(G0)),
                           lambda: lipschitz if lipschitz else curvature_bound(data, datafit))


def kkt_of_gradient(penalty: Penalty, alpha: float, V: np.ndarray, G: np.ndarray,
                    b_grad: np.ndarray | None, G0_norm: float, lipschitz: Any) -> float:
    """:func:`kkt_residual` from minus the gradient ``G = X^T (c theta)`` and the intercepts'
    gradient ``b_grad`` (the per-task sums of ``c theta``; None without intercepts):
    ``sqrt(res + |b_grad|^2) / G0_norm``, ``res`` the squared distance of G to the
    subdifferential where the penalty gives it, else the proximal-gradient residual at the
    step ``1 / L``, ``L = lipschitz()`` (a callable, computed only there; 1 where the loss
    has no curvature bound, as the pinball loss: any step makes it zero at stationarity
    only)."""
    if hasattr(penalty, "subdiff_distance"):
        d = penalty.subdiff_distance(V, G, alpha)
        res = float(np.sum(d * d))
    else:
        L = lipschitz()
        if not (np.isfinite(L) and L > 0):  # (a loss without curvature: the pinball loss)
            L = 1.0
        D = V - penalty.prox(V + penalty.spread(G) / L, 1.0 / L, alpha)
        res = float(inner(D, D)) * L * L
    if b_grad is not None:
        res += float(np.sum(b_grad ** 2))
    return np.sqrt(res) / (G0_norm if G0_norm > 0 else 1.0)


def curvature_bound(data: TaskData, datafit: Datafit) -> float:
    """An upper bound on the Lipschitz constant of the data term's gradient:
    ``curvature * max_t sum_{r in t} c_r ||x_r||^2`` (the loss's curvature near the scores
    of W = 0 where it has no global bound). On task blocks held elsewhere each block sums
    its own tasks' rows."""
    curvature = datafit.curvature
    if not np.isfinite(curvature):
        curvature = datafit.curvature_at(data.y, data.row_zeros())
    if not data.rows_local:
        top, curvature = data.numbers(data.blockwise(_task_row_norms, out="tasks").max(),
                                      curvature)
        return float(curvature * max(top, 1e-300))
    return float(curvature * max(_task_row_norms(data).max(), 1e-300))


def _task_row_norms(data: TaskData) -> np.ndarray:
    """``sum_{r in t} c_r ||x_r||^2`` per task, from rows in this process (a block's)."""
    X = data.X
    sq = np.asarray(X.multiply(X).sum(axis=1)).ravel() if sp.issparse(X) else np.einsum(
        "ij,ij->i", X, X)
    rows = sq if not data.shared else np.tile(sq, data.n_tasks)
    return data.task_sums(data.c * rows)


def certify(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
    ref: Reference,
    lipschitz: float | None = None,
) -> Certificate:
    """The optimality certificate of a solution.

    A duality gap where the penalty has a tractable dual (``penalty.has_dual``) and
    ``alpha > 0``: the dual point is built from the scores (``theta = -l'(f)``), centred per
    task with intercepts, projected onto the loss's domain and scaled into the penalty's dual
    ball. Otherwise the KKT residual, relative to the norm of ``G0``: the distance of minus
    the gradient to the subdifferential for separable and smooth penalties, else the
    proximal-gradient residual ``||V - prox(V - grad / L)|| L``.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss.
    penalty : Penalty
        The penalty.
    alpha : float
        Overall strength.
    V : ndarray
        The penalty's variable at the solution (W, or the lifted ``(P, Q)``).
    f : ndarray of shape (n_obs,)
        The scores of the solution, intercepts included.
    fit_intercept : bool
        Whether the intercepts are fitted (their gradient then counts in the KKT residual).
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    lipschitz : float, optional
        Step constant of the proximal-gradient residual (an upper bound of the curvature
        of the data term is computed when omitted).

    Returns
    -------
    Certificate
        The duality gap or the KKT residual.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import reference, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> from regmtl.solvers import certify
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> res = solve(data, rm.Quadratic(), rm.L21(), 0.1, ref=ref)
    >>> f = data.linear(res.W, res.b)
    >>> cert = certify(data, rm.Quadratic(), rm.L21(), 0.1, res.W, f, True, ref)
    >>> cert.kind, cert.converged(1e-4)
    ('duality_gap', True)
    """
    if penalty.has_dual and alpha > 0:
        gap, primal, dual = duality_gap(data, datafit, penalty, alpha, V, f, fit_intercept)
        return Certificate("duality_gap", gap, primal, dual, ref.P0)
    value = kkt_residual(data, datafit, penalty, alpha, V, f, fit_intercept, ref.G0, lipschitz)
    primal = datafit.value(data.y, f, data.c) + penalty.value(V, alpha)
    return Certificate("kkt_residual", value, primal, None, ref.P0)


def rounding_floor(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    V: np.ndarray,
    f: np.ndarray,
    fit_intercept: bool,
) -> float:
    r"""The part of the duality gap that float64 rounding of the dual's gradient accounts for.

    ``G = X^T (c theta)`` is computed with an error of at most (Higham's bound for sums of
    ``n_t`` products, and the rounding of ``theta`` itself)::

        E[j, t] = eps * max_r |x_rj| * sqrt(n_t) * (n_t ||u_t|| + ||c_t (|y_t| + |f_t|)||),

    with ``u = c theta``. The dual is evaluated again at ``G`` shrunk towards 0 by ``E``
    (``sign(G) max(|G| - E, 0)``, scaled into the penalty's dual ball); the floor is how much
    that closes the gap. It is negligible on well-scaled data (``E`` is about ``1e-16 ||G||``
    times ``n_t^1.5``), and the whole gap where columns are so large (``X * 1e50``) that the
    rounding of ``G`` outweighs ``alpha``: the conjugate's ``||G||^2 / (2 alpha)`` or the
    dual scaling ``alpha / ||G||`` then measure rounding, not distance to the optimum.

    Parameters
    ----------
    data, datafit, penalty, alpha, V, f, fit_intercept
        As in :func:`~regmtl.solvers.certify`.

    Returns
    -------
    float
        ``gap(G) - gap(G shrunk by E)``, at least 0 (0 for data held as task blocks
        elsewhere, whose Gram-form fits have their own floor).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import rounding_floor, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> for scale in (1.0, 1e50):  # well scaled, then columns whose rounding outweighs alpha
    ...     data = rm.as_task_data(X * scale, Y)
    ...     res = solve(data, rm.Quadratic(), rm.L21(), alpha=0.1)
    ...     f = data.linear(res.W, res.b)
    ...     floor = rounding_floor(data, rm.Quadratic(), rm.L21(), 0.1, res.W, f, True)
    ...     print(scale, res.converged, bool(floor < 1e-9 * res.certificate.scale))
    1.0 True True
    1e+50 True False
    """
    if not data.rows_local:  # (blocks held elsewhere: Gram-form fits have their own floor)
        return 0.0
    theta = dual_point(data, datafit, f, fit_intercept)
    u = data.c * theta
    G = data.adjoint(u)
    primal = datafit.value(data.y, f, data.c) + penalty.value(V, alpha)
    gap = max(primal - _dual_value(data, datafit, penalty, alpha, theta, G)[1], 0.0)
    n_t = np.diff(data.indptr).astype(np.float64)
    u_norm = np.sqrt(data.task_sums(u * u))
    lost = np.sqrt(data.task_sums((data.c * (np.abs(data.y) + np.abs(f))) ** 2))
    E = np.finfo(np.float64).eps * np.outer(column_scales(data.X),
                                            np.sqrt(n_t) * (n_t * u_norm + lost))
    G_lo = np.sign(G) * np.maximum(np.abs(G) - E, 0.0)
    gap_lo = max(primal - _dual_value(data, datafit, penalty, alpha, theta, G_lo)[1], 0.0)
    return float(min(max(gap - gap_lo, 0.0), gap))
