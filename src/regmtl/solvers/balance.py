r"""Problems far from 1 in magnitude solved as the same problem brought to 1.

Data multiplied by 1e-100 (or 1e+100) fits in float64, but ``G = X^T (c theta)`` scales as
:math:`\max|X| \max|y|`, W as their ratio, and their squares (the dual norms of
``alpha_max``, the conjugates of the duality gap, the kernels' block norms) underflow or
overflow: W = 0 came back certified, or a kernel divided by zero. With :math:`X' = a X`,
:math:`y' = c y` (powers of two, :func:`~regmtl.scaling.balance_factors`) the coefficients
are :math:`W' = (c / a) W` and a loss homogeneous of degree ``k`` in the targets and scores
(:attr:`~regmtl.datafits.Datafit.scale_degree`) is :math:`c^k` times itself: the same problem
with the penalty's strength and parameters moved (:meth:`~regmtl.Penalty.rescaled`). Where
the penalty has no equivalent at other coefficients, X and y are scaled by one factor (W the
same). Under the log link y times c is the same problem with the intercepts moved by
``log c`` (W the same); labels are not scaled (``c = 1``, the loss the same); in both X is
brought to 1 where it is far from it. The solution, intercepts, dual points and the
certificate's numbers map back exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..scaling import balance_factors, scaled_problem
from .result import SolverResult

__all__ = ["balanced_solve"]


def _plan(data: TaskBlocks, k: int, log: bool, labels: bool, penalty: Any, alpha: float):
    """``(a, c, penalty', alpha')`` of the balanced problem, or None where there is none."""
    for separate in ((True,) if log or labels else (True, False)):
        a, c = data.memo(("balance_factors", separate, log, labels),
                         lambda s=separate: balance_factors(data, separate=s, log_link=log,
                                                            labels=labels))
        if a == 1.0 and c == 1.0:
            return None
        moved = penalty.rescaled(alpha, c ** k, (1.0 if log or labels else c) / a)
        if moved is not None:
            return a, c, *moved
    return None


def balanced_solve(solve: Callable[..., SolverResult], data: TaskBlocks, datafit: Datafit,
                   penalty: Any, alpha: float, **kwargs: Any) -> SolverResult | None:
    """``solve`` run on the balanced problem and its result in the problem's units, or None
    where the problem needs no balancing (or its loss has no scale: labels; or the penalty no
    equivalent, ``Penalty.rescaled``).

    ``kwargs`` are :func:`~regmtl.solvers.solve`'s: the starting point (``W0``, ``b0``,
    ``V0``) and ``theta0`` are mapped to the balanced units, ``ref`` recomputed there (one
    computed on the problem as given may have underflowed). The log link needs intercepts.
    """
    k, log = datafit.scale_degree, datafit.log_link
    labels = k == 0  # labels: the loss the same, X alone scaled
    if k is None or not data.rows_local or (log and not kwargs.get("fit_intercept", True)):
        return None
    plan = _plan(data, k, log, labels, penalty, alpha)
    if plan is None:
        return None
    a, c, pen, alpha_b = plan
    kw = (1.0 if log or labels else c) / a  # W' = kw W
    # intercepts: b c (identity link) or b + log c; dual points: theta c^(k - 1) or c^k
    shift, dual = (np.log(c), c ** k) if log else (0.0, c ** (k - 1))
    W0, b0, V0, theta0 = (kwargs.get(n) for n in ("W0", "b0", "V0", "theta0"))
    kwargs.update(
        ref=None,
        W0=None if W0 is None else np.asarray(W0, dtype=np.float64) * kw,
        V0=None if V0 is None else np.asarray(V0, dtype=np.float64) * kw,
        b0=None if b0 is None else np.asarray(b0, dtype=np.float64) * (1.0 if log else c)
        + shift,
        theta0=None if theta0 is None else np.asarray(theta0) * dual)
    balanced = data.memo(("balanced", a, c), lambda: scaled_problem(data, a, c))
    res = solve(balanced, datafit.rescaled(c), pen, alpha_b, **kwargs)
    same_v = res.V is res.W
    res.W = res.W / kw
    res.V = res.W if same_v or res.V is None else res.V / kw
    res.b = res.b - shift if log else res.b / c
    if res.theta is not None:
        res.theta = res.theta / dual
    # the objective: c^k times the problem's, less c log(c) sum_r c_r y_r under the log link
    cert, back = res.certificate, c ** -k
    constant = float(np.log(c) * data.numbers(np.dot(data.c, data.y))[0]) if log else 0.0
    cert.primal = cert.primal * back + constant
    if cert.dual is not None:
        cert.dual = cert.dual * back + constant
    cert.scale *= back
    if cert.kind == "duality_gap":  # (a KKT residual is relative already)
        cert.value *= back
        cert.rounding *= back
    return res
