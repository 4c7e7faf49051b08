r"""Problems far from 1 in magnitude solved as the same problem brought to 1.

Data multiplied by 1e-100 (or 1e+100) fits in float64, but ``G = X^T (c theta)`` scales as
:math:`\max|X| \max|y|`, W as their ratio, and their squares (the dual norms of
``alpha_max``, the conjugates of the duality gap, the kernels' block norms) underflow or
overflow: W = 0 came back certified, or a kernel divided by zero. With :math:`X' = a X`,
:math:`y' = c y` (powers of two, :func:`balance_factors`) the coefficients
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

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...ranges import range_scales
from ...taskdata import design_range
from ..result import SolverResult

__all__ = ["BALANCED_RANGE", "LOG_LINK_RANGE", "balance_factors", "balanced_solve",
           "problem_scales", "scaled_problem"]

#: The range of ``max|X|``, ``max|y|``, their product and their ratio within which a problem
#: is solved at its own scale: beyond it ``X^T y``, W and their squares (dual norms, Lipschitz
#: constants, conjugates) near the ends of float64's range, and :func:`balance_factors`
#: brings the problem to 1.
BALANCED_RANGE = (1e-50, 1e50)
#: The range of ``max|y|`` within which a problem under the log link (Poisson) is solved at
#: its own scale: the proximal Newton models floor each row's curvature (the mean
#: ``e^f``, in y's units) at 1e-12 of its weight, so means far below 1 stall the steps.
LOG_LINK_RANGE = (1e-6, 1e50)


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


def problem_scales(data: Any) -> tuple[float, float]:
    """``max|X|`` and ``max|y|`` of a problem, over the rows that carry weight (``c > 0``), NaN
    ignored (0 where there is no number)."""
    X = data.X
    known = design_range(data) if X.size else None  # (the input checks' pass over X)
    if known is not None:
        ax = float(range_scales(*known).max())
    else:
        ax = float(np.max(np.abs(X.data))) if sp.issparse(X) and X.nnz else (
            0.0 if sp.issparse(X) or X.size == 0 else float(np.nanmax(np.abs(X))))
    y = np.asarray(data.y, dtype=np.float64)
    y = y[np.asarray(data.c) > 0] if data.c is not None else y
    ay = float(np.nanmax(np.abs(y))) if y.size else 0.0
    return ax, ay


def _unit(v: float) -> float:
    """The power of two nearest ``1 / v``."""
    return float(np.ldexp(1.0, -round(np.log2(v))))


def balance_factors(data: Any, *, separate: bool = True, log_link: bool = False,
                    labels: bool = False) -> tuple[float, float]:
    r"""The powers of two ``(a, c)`` that bring a problem to 1 in magnitude (``X`` times
    ``a``, ``y`` times ``c``), or ``(1, 1)`` where it needs none.

    With :math:`X' = a X`, :math:`y' = c y` the coefficients of a linear model become
    :math:`W' = (c / a) W` (``X' W' = c X W``), and a loss homogeneous of degree :math:`k`
    in the targets and scores (squared; Huber with ``delta`` times c; pinball) is
    :math:`c^k` times itself: the same problem with the penalty's strength and parameters in
    the new units (``Penalty.rescaled``). ``separate=True`` brings ``max|X|`` and ``max|y|``
    each to 1 (W' of order 1 too); ``separate=False`` scales both by one factor (W the same,
    for a penalty that has no equivalent at other coefficients), ``max|X|`` to 1 with
    ``max|y'|`` kept within :data:`BALANCED_RANGE`. Under the log link (``log_link``,
    Poisson) the targets are scaled when ``max|y|`` leaves :data:`LOG_LINK_RANGE` (the
    intercepts move by ``log c``, W stays); labels (``labels``) are not scaled (``c = 1``).
    In these two cases X is scaled to 1 where ``max|X|`` leaves :data:`BALANCED_RANGE` (W
    times ``1 / a``). A power of two multiplies exactly.

    Nothing is scaled while ``max|X|``, ``max|y|``, their product and their ratio lie within
    :data:`BALANCED_RANGE` (and for the log link ``max|y|`` within its range).

    Parameters
    ----------
    data : TaskData
        The problem (rows in this process).
    separate : bool, default=True
        Scale X and y each to 1, or both by one factor.
    log_link : bool, default=False
        The loss's scores are the log of its mean.
    labels : bool, default=False
        The targets are labels.

    Returns
    -------
    (float, float)
        ``a`` and ``c``.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import as_task_data
    >>> from regmtl.solvers.parts.balance import balance_factors
    >>> X, y = np.full((4, 2), 3.0), np.arange(4.0)
    >>> balance_factors(as_task_data(X, y))
    (1.0, 1.0)
    >>> a, c = balance_factors(as_task_data(X * 1e-100, y * 1e100))
    >>> bool(0.5 < a * 3e-100 < 2.0 and 0.5 < c * 3e100 < 2.0)
    True
    """
    ax, ay = problem_scales(data)
    if not (ax > 0 and ay > 0 and np.isfinite(ax) and np.isfinite(ay)):
        return 1.0, 1.0
    lo, hi = BALANCED_RANGE  # (no overflow below: each is within the range checks' 1e150)
    if log_link or labels:
        a = 1.0 if lo <= ax <= hi else _unit(ax)
        if labels:
            return a, 1.0
        lo, hi = LOG_LINK_RANGE
        return a, 1.0 if lo <= ay <= hi else _unit(ay)
    if all(lo <= v <= hi for v in (ax, ay, ax * ay, ay / ax)):
        return 1.0, 1.0
    if separate:
        return _unit(ax), _unit(ay)
    log_s = min(max(-np.log2(ax), -np.log2(hi * ay)), np.log2(hi / ay))
    s = float(np.ldexp(1.0, round(log_s)))
    return s, s


def scaled_problem(data: Any, a: float, c: float) -> Any:
    """The problem with its design multiplied by ``a`` and its targets by ``c``
    (:func:`balance_factors`): a copy with its own memo, the row weights and layout shared;
    ``x_shift`` (the columns' shift, in X's units) scaled with X.

    Parameters
    ----------
    data : TaskData
        The problem (rows in this process).
    a, c : float
        The factors, powers of two (exact).

    Returns
    -------
    TaskData
        The scaled problem.
    """
    y = np.asarray(data.y) * c
    if a == 1.0:
        return dataclasses.replace(data, y=y, _cache={})
    X = data.X * a if sp.issparse(data.X) else np.asfortranarray(np.asarray(data.X) * a)
    shift = None if data.x_shift is None else data.x_shift * a
    return dataclasses.replace(data, X=X, y=y, x_shift=shift, _cache={})
