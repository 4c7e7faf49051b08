"""Penalty factors of the deep group penalty (``GroupL21(penalty_factor=...)``): the value and
the proximal step follow the factors; a factor 0 leaves its feature unshrunk."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import GroupL21, HardSharing, set_seed  # noqa: E402


def _net():
    set_seed(0)
    return HardSharing(5, ["a", "b"], hidden=(4,))


def test_the_value_weighs_each_feature_by_its_factor():
    net = _net()
    d = np.array([0.0, 0.5, 1.0, 2.0, 1.5])
    pen = GroupL21(0.1, penalty_factor=d)
    norms = pen.column_norms(net).detach().numpy()
    assert float(pen.value(net).detach()) == pytest.approx(0.1 * float(np.dot(d, norms)),
                                                           rel=1e-6)
    ones = GroupL21(0.1, penalty_factor=np.ones(5)).value(net).detach()
    assert float(ones) == pytest.approx(float(GroupL21(0.1).value(net).detach()), rel=1e-7)


def test_the_proximal_step_leaves_an_unpenalized_feature_alone():
    net = _net()
    d = np.array([0.0, 1.0, 1.0, 1.0, 1.0])
    before = net.trunk[0].weight.detach().clone()
    norms = GroupL21(1.0).column_norms(net).detach()
    step = float(norms[1:].max()) * 2  # every penalized group goes to 0
    GroupL21(1.0, penalty_factor=d, proximal=True).prox(net, step)
    after = net.trunk[0].weight.detach()
    assert torch.equal(after[:, 0], before[:, 0])
    assert torch.count_nonzero(after[:, 1:]) == 0
    # with factor 0.5 a group shrinks by half the threshold: max(0, 1 - s a d / ||w||) w
    net = _net()
    w = net.trunk[0].weight.detach().clone()
    GroupL21(0.1, penalty_factor=np.full(5, 0.5), proximal=True).prox(net, 1.0)
    nw = torch.linalg.vector_norm(w, dim=0)
    expect = w * torch.clamp(1 - 0.05 / nw, min=0.0)
    assert torch.allclose(net.trunk[0].weight.detach(), expect, atol=1e-7)


@pytest.mark.parametrize("bad", [[-1.0, 1, 1, 1, 1], [np.inf, 1, 1, 1, 1], [[1.0]],
                                 [np.nan, 1, 1, 1, 1]])
def test_bad_factors_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="penalty_factor"):
        GroupL21(0.1, penalty_factor=bad)


def test_a_factor_count_that_is_not_the_input_width_is_refused():
    with pytest.raises(ValueError, match="penalty_factor has 3 factors for 5 input"):
        GroupL21(0.1, penalty_factor=np.ones(3)).value(_net())
