"""Penalty weights outside the range their arithmetic holds are refused by name: a boolean is
not a weight, and Clustered / SharedStructure's eta(1 + eta) overflows near 1e154."""

import numpy as np
import pytest

from regmtl import MultiTaskRegressor
from regmtl.penalties import CappedL1, Clustered, SharedStructure


def _tasks(seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((30, 5)) for _ in range(4)]
    return X, [x @ rng.standard_normal(5) for x in X]


@pytest.mark.parametrize("penalty", [CappedL1(cap=True), Clustered(k=2, eta=True)])
def test_a_boolean_is_not_a_weight(penalty):
    X, y = _tasks()
    with pytest.raises(ValueError, match=r"(cap|eta) must be a finite number > 0; got True"):
        MultiTaskRegressor(penalty=penalty, alpha=0.1).fit(X, y)


@pytest.mark.parametrize("cls", [Clustered, SharedStructure])
def test_eta_beyond_its_range_is_refused_with_the_ridge_it_equals(cls):
    X, y = _tasks()
    with pytest.raises(ValueError, match=r"eta=1e\+300 is beyond 1e100.*penalty='l2'"):
        MultiTaskRegressor(penalty=cls(k=2, eta=1e300), alpha=0.1).fit(X, y)


def test_a_large_eta_within_range_shrinks_towards_zero():
    X, y = _tasks()
    m = MultiTaskRegressor(penalty=Clustered(k=2, eta=1e30), alpha=0.1).fit(X, y)
    assert np.all(np.isfinite(m.coef_)) and np.abs(m.coef_).max() < 1e-25


@pytest.mark.parametrize("kw", [{"smooth_weight": 1e300}, {"ridge_weight": 1e300},
                                {"smooth_weight": 1e200}])
def test_temporal_weights_near_the_float_limit_shrink_to_zero(kw):
    """Its prox's ||v / (a + sigma)|| underflowed to 0 (ZeroDivisionError): the norms are now
    taken relative to their largest entry."""
    from regmtl.penalties import TemporalGroupLasso

    X, y = _tasks()
    m = MultiTaskRegressor(penalty=TemporalGroupLasso(**kw), alpha=0.1).fit(X, y)
    assert np.all(np.isfinite(m.coef_)) and np.abs(m.coef_).max() < 1e-100
