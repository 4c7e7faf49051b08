"""Every registered penalty declares how a penalty factor enters it, and the docs' table of
per-feature terms lists every one with how it takes bounds (read from its block step)."""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm
from regmtl.penalties import PENALTY_CLASSES, Penalty
from regmtl.penalties.factored import box_kind
from regmtl.support_table import factor_table_rst


@pytest.mark.parametrize("name", sorted(PENALTY_CLASSES))
def test_every_penalty_says_how_a_factor_enters(name):
    cls = PENALTY_CLASSES[name]
    assert cls.factor_entry != Penalty.factor_entry
    assert "d_j" in cls.factor_entry or "D" in cls.factor_entry


def test_the_table_lists_every_penalty_with_its_bounds():
    table = factor_table_rst()
    for cls in PENALTY_CLASSES.values():
        assert f"``{cls.name}``" in table
    assert box_kind(rm.L1(), 1.0) == "entries" and box_kind(rm.L21(), 1.0) == "rows"
    assert box_kind(rm.L21(positive=True), 1.0) == "rows"
    assert box_kind(rm.Trace(), 1.0) is None and box_kind(rm.MultiSource((2, 3)), 1.0) is None


def test_the_table_says_what_the_glmnet_convention_does():
    """A ridge part of entries or rows is weighed per feature; a norm's fit is the same; a
    squared term in the feature metric is refused (``Penalty.ridge_part``)."""
    rows = {line.split("``")[1]: line for line in factor_table_rst().split("   * - ")[1:]}
    for name in ("elasticnet", "l2", "l21"):
        assert "its ridge part weighed by d_j" in rows[name]
    for name in ("l1", "trace", "dirty", "l1inf", "mcp", "multi_source"):
        assert "the same fit (no ridge part)" in rows[name]
    for name in ("mean", "graph", "clustered", "temporal_group_lasso"):
        assert "refused unless every factor is 1" in rows[name]
    assert rm.ElasticNet(0.25).ridge_part(2.0) == 1.5 and rm.L21().ridge_part(2.0) == 0.0
    assert rm.MeanRegularized().ridge_part(1.0) is None


def test_a_penalty_over_blocks_of_features_takes_positive_factors_only():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
    ys = [X @ np.ones(5) + rng.standard_normal(40) for X in Xs]
    pen = rm.MultiSource((2, 3))
    fit = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-10,
                                penalty_factor=[1.0, 2.0, 1.0, 1.0, 1.0]).fit(Xs, ys)
    scaled = [X / np.array([1.0, 2.0, 1.0, 1.0, 1.0]) * 1.2 for X in Xs]  # (rescaled: sum 5)
    plain = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-10).fit(scaled, ys)
    np.testing.assert_allclose(fit.coef_, plain.coef_ * 1.2 / np.array([1, 2, 1, 1, 1]),
                               atol=1e-7)
    for terms in (dict(penalty_factor=[0.0, 1, 1, 1, 1]), dict(exclude=[0])):
        with pytest.raises(ValueError, match="positive finite penalty factors only"):
            rm.MultiTaskRegressor(pen, alpha=0.1, **terms).fit(Xs, ys)
