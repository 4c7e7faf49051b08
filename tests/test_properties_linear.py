"""Properties of the linear estimators: every penalty and loss, on drawn shapes, dtypes, layouts,
scales, non-finite values and task ids, ends in a clear error or a certified result."""

from __future__ import annotations

import numpy as np
import pytest
from _strategies import (
    Drawn,
    assert_certified,
    examples,
    fit_or_error,
    objective_at_zero,
    problems,
)
from hypothesis import given
from hypothesis import strategies as st

import regmtl as rm

FIT_NAMES = ("X", "y", "task", "alpha", "penalty")


def penalty_for(name: str, p: int, T: int) -> rm.Penalty:
    """An instance of the penalty ``name`` for p features and T tasks."""
    return {
        "L1": lambda: rm.L1(), "L2": lambda: rm.L2(), "ElasticNet": lambda: rm.ElasticNet(0.5),
        "L21": lambda: rm.L21(), "L21(0.6)": lambda: rm.L21(0.6),
        "MultiSource": lambda: rm.MultiSource((p,) if p < 2 else (p // 2, p - p // 2)),
        "LInf1": lambda: rm.LInf1(), "Trace": lambda: rm.Trace(),
        "MeanRegularized": lambda: rm.MeanRegularized(),
        "MeanRegularized(0.4)": lambda: rm.MeanRegularized(0.4),
        "GraphLaplacian": lambda: rm.GraphLaplacian(rm.chain_graph(T)),
        "Clustered": lambda: rm.Clustered(min(2, T), 0.5),
        "SharedStructure": lambda: rm.SharedStructure(1, 0.5),
        "Dirty": lambda: rm.Dirty(0.6), "SparseLowRank": lambda: rm.SparseLowRank(0.2),
        "RobustLowRank": lambda: rm.RobustLowRank(0.6),
        "RobustFeatures": lambda: rm.RobustFeatures(0.8),
        "TemporalGroupLasso": lambda: rm.TemporalGroupLasso(1.0, 0.5),
        "FusedGroupLasso": lambda: rm.FusedGroupLasso(0.5, 0.3),
        "MCP": lambda: rm.MCP(3.0), "MCP(group)": lambda: rm.MCP(1.5, group=True),
        "SCAD": lambda: rm.SCAD(3.7), "SCAD(group)": lambda: rm.SCAD(2.5, group=True),
        "CappedL1": lambda: rm.CappedL1(2.0), "CappedL1(group)": lambda: rm.CappedL1(2.0, group=True),
        "NonconvexFusedGroupLasso": lambda: rm.NonconvexFusedGroupLasso(0.5),
    }[name]()


PENALTIES = ("L1", "L2", "ElasticNet", "L21", "L21(0.6)", "MultiSource", "LInf1", "Trace",
             "MeanRegularized", "MeanRegularized(0.4)", "GraphLaplacian", "Clustered",
             "SharedStructure", "Dirty", "SparseLowRank", "RobustLowRank", "RobustFeatures",
             "TemporalGroupLasso", "FusedGroupLasso", "MCP", "MCP(group)", "SCAD",
             "SCAD(group)", "CappedL1", "CappedL1(group)", "NonconvexFusedGroupLasso")
FRACTIONS = (0.0, 1e-3, 0.05, 0.5, 1.0, 2.0)


def test_every_registered_penalty_is_drawn():
    names = {type(penalty_for(n, 4, 3)).__name__ for n in PENALTIES}
    from regmtl.penalties import PENALTY_CLASSES

    assert names == set(PENALTY_CLASSES)


def _alpha(drawn: Drawn, pen: rm.Penalty, frac: float, loss: str = "squared") -> float:
    """``frac`` times alpha_max where the penalty has one, else times the data's scale."""
    try:
        a = rm.alpha_max(*drawn.args, **drawn.kwargs, penalty=pen, loss=loss)
    except (ValueError, TypeError):
        a = np.inf
    if np.isfinite(a) and a > 0:
        return frac * a
    return frac * min(drawn.scale_x, 1e150) ** 2


@examples(40)
@given(drawn=problems(), name=st.sampled_from(PENALTIES), frac=st.sampled_from(FRACTIONS))
def test_regressor_with_every_penalty_errs_clearly_or_is_certified(drawn, name, frac):
    pen = penalty_for(name, drawn.n_features, drawn.n_tasks)
    alpha = _alpha(drawn, pen, frac) if not drawn.bad else 0.1
    model, caught = fit_or_error(lambda: rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6),
                                 drawn, FIT_NAMES)
    if model is None:
        return
    assert_certified(model, objective_at_zero(drawn, rm.Quadratic()), caught)
