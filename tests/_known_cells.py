"""The support matrix's known cells, and how a cell that may stop short is held to honesty.

A cell here is one whose outcome sits on an edge: a solver that meets ``tol`` within its
budget on one machine and runs out a few iterations short on another (the rounding of the
CPU's BLAS kernels decides which), or a nonconvex cell whose stationary point a bounded local
search may leave downhill. Its verdict must not follow the machine, so it is checked either
way (:func:`check_shortfall`, :func:`saddle_allowed`): certified within ``tol`` and then
checked in full, or stopped short with a ``ConvergenceWarning`` that states the certificate it
reached, equal to the one the model reports, and a point no worse than that certificate
says. Each such cell records its outcome (``record_property("known_cell", ...)``); the
terminal summary lists the known cells that certified on this machine, so a mend shows
(``tests/conftest.py``).
"""

from __future__ import annotations

import re
from typing import Any

_SADDLE = ("a nonconvex penalty where the loss is flat along some directions (wide tasks, the "
           "multinomial's shift common to a task's classes, a loss list): the fit stalls at, "
           "or stops near, a stationary point from which a bounded local search still "
           "descends (a saddle: the KKT residual certifies stationarity only)")
_PINBALL_SADDLE = ("the pinball loss with MCP or SCAD on sparse designs: the point certified "
                   "(KKT 1e-13) is a strict local minimum (the objective rises along the way "
                   "out for its first 10 %), but a lower one lies 3.8 % of |coef_| away, "
                   "within the matrix's 5 % search")
_MULTI_WIDE = ("the multinomial loss on wide tasks under L1,inf: FISTA runs out of iterations "
               "short of tol 1e-8 (warns; with mean and graph, smooth penalties, L-BFGS "
               "certifies)")
_NCFGL_BUDGET = ("NonconvexFusedGroupLasso with the logistic, Poisson or Huber loss or a loss "
                 "list on wide tasks: its majorize-minimize stages share max_iter and need "
                 "more than the default 1,000 here; they stop there at a KKT residual of 1e-8 "
                 "to 2e-6 (warns)")
_STALL = "the solver stalls just above tol 1e-8 (KKT 1e-8 to 1e-7, warns)"
_LIFTED_HUBER = ("RobustLowRank or RobustFeatures with the Huber loss: FISTA stalls at a duality "
                 "gap of 1e-7 to 3e-4 while the objective is within 1e-8 of cvxpy's optimum "
                 "(the dual point lags on Huber's linear rows; warns, does not certify)")
_WIDE_LIFTED = ("a penalty of two parts on wide tasks with a log-link loss: FISTA runs out of "
                "iterations at a duality gap of 2e-8 to 5e-6 (warns)")

#: cells that may stop short of ``tol`` (with a warning stating what they reached), each with
#: why; in the full matrix (``tests/test_conformance.py``) and on the placements
#: (``tests/test_conformance_placements.py``, where the same problem is fitted at tol 1e-6)
SHORT: dict[str, str] = {
    "l1inf-multinomial-wide": _MULTI_WIDE,
    **{f"nonconvex_fused_group_lasso-{loss}-wide": _NCFGL_BUDGET
       for loss in ("huber", "logistic", "mixed", "poisson")},
    "nonconvex_fused_group_lasso-logistic-sparse": _STALL,
    "scad-poisson-wide": _STALL,
    **{f"robust_lowrank-huber-{s}": _LIFTED_HUBER
       for s in ("long", "offset", "shared", "sparse", "weights", "wide")},
    **{f"robust_features-huber-{s}": _LIFTED_HUBER
       for s in ("long", "offset", "shared", "weights")},
    "robust_lowrank-gamma-wide": _WIDE_LIFTED,
    "robust_lowrank-poisson-wide": _WIDE_LIFTED,
    "sparse_lowrank-poisson-wide": _WIDE_LIFTED,
}
#: nonconvex cells whose certified stationary point a bounded local search may leave downhill
SADDLES: dict[str, str] = {
    **{f"{p}-{loss}-wide": _SADDLE for p in ("mcp", "scad", "capped_l1")
       for loss in ("logistic", "mixed", "multinomial")},
    **{f"{p}-multinomial-{s}": _SADDLE for p, s in (("mcp", "shared"), ("mcp", "sparse"),
                                                   ("scad", "sparse"))},
    "mcp-quantile-sparse": _PINBALL_SADDLE,
    "scad-quantile-sparse": _PINBALL_SADDLE,
}
KNOWN: dict[str, str] = {**SHORT, **SADDLES}
#: cells that certify in memory but may stop short on a Dask cluster (at the placements' tol
#: 1e-6), each with why
SHORT_ON_DASK: dict[str, str] = {
    "trace-huber-long": (
        "the trace norm with the Huber loss on Dask task blocks: the Gram-form proximal Newton "
        "steps follow memory's to step 8, then stall at a relative duality gap of 6e-5 after "
        "17 steps (memory certifies 1.5e-6 at step 14); the objectives agree to 6e-11, the "
        "dual point lags (warns; the warning names fista)"),
}

_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"
_STATED = re.compile(rf"a relative (duality gap|KKT residual) of {_NUMBER} > tol={_NUMBER}")


def stated(message: str) -> tuple[str, float, float]:
    """(``"duality gap"`` or ``"KKT residual"``, the value, tol) a shortfall's warning states;
    an ``AssertionError`` where it states none."""
    found = _STATED.search(message)
    assert found, f"the warning states no certificate reached: {message}"
    return found.group(1), float(found.group(2)), float(found.group(3))


def check_shortfall(model: Any, messages: list[str], scale: float) -> float:
    """A fit that stopped short is honest about it: one of its warnings states the relative
    certificate it reached, above ``tol``; the model reports the same certificate (the KKT
    residual itself, or a duality gap whose relative value, ``(gap - rounding) / P0``, is at
    most ``dual_gap_ / scale``, ``scale`` the objective at W = 0). Returns the absolute bound
    on the distance to the optimum it gives (``dual_gap_``; ``inf`` for a KKT residual, which
    bounds none)."""
    assert messages, "no shortfall warning"
    kind, value, tol = stated(messages[-1])
    assert value > tol, (value, tol)  # (a warning for a certified fit would be a false alarm)
    if kind == "KKT residual":
        assert getattr(model, "kkt_residual_", None) is not None, "no kkt_residual_"
        assert abs(model.kkt_residual_ - value) <= 1e-3 * value, (model.kkt_residual_, value)
        return float("inf")
    gap = getattr(model, "dual_gap_", None)
    assert gap is not None, "no dual_gap_"
    assert value <= gap / scale * (1 + 1e-3) + 1e-15, (value, gap, scale)
    return float(gap)


def saddle_allowed(cell_id: str, model: Any) -> bool:
    """Whether a bounded local search may leave the cell's point downhill: a known saddle
    cell whose fit certifies stationarity (KKT residual within ``tol``)."""
    kkt = getattr(model, "kkt_residual_", None)
    return cell_id in SADDLES and kkt is not None and kkt <= model.tol
