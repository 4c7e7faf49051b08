"""Penalties by parameter group: values against hand sums, the groups they select, proximal
steps against their closed forms and optimality conditions."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import GroupL21, HardSharing, L1Penalty, L2Penalty, MMoE, TaskSpec  # noqa: E402
from regmtl.deep.penalties import make_penalties  # noqa: E402

TASKS = [TaskSpec("a"), TaskSpec("b", kind="binary")]


def _net(batch_norm=True):
    torch.manual_seed(0)
    return HardSharing(6, TASKS, (8, 4), head_hidden=(3,), batch_norm=batch_norm)


def test_l1_l2_values_over_the_shared_weights_only():
    net = _net()
    W = [m.weight for m in net.trunk if isinstance(m, torch.nn.Linear)]
    l1 = sum(w.abs().sum() for w in W).item()
    l2 = sum((w ** 2).sum() for w in W).item()
    assert L1Penalty(0.3).value(net).item() == pytest.approx(0.3 * l1, rel=1e-6)
    assert L2Penalty(0.3).value(net).item() == pytest.approx(0.15 * l2, rel=1e-6)
    chosen = {id(p) for p in L1Penalty(1.0).parameters(net)}
    assert chosen == {id(w) for w in W}  # no biases, no batch-norm parameters


def test_groups_bias_and_norm_switches():
    net = _net()
    bn = [m for m in net.trunk if isinstance(m, torch.nn.BatchNorm1d)]
    with_norm = {id(p) for p in L2Penalty(1.0, include_norm=True).parameters(net)}
    assert all(id(m.weight) in with_norm and id(m.bias) in with_norm for m in bn)
    with_bias = {id(p) for p in L2Penalty(1.0, include_bias=True).parameters(net)}
    lin = [m for m in net.trunk if isinstance(m, torch.nn.Linear)]
    assert all(id(m.bias) in with_bias for m in lin)
    assert not any(id(m.bias) in with_bias for m in bn)
    heads = {id(p) for p in L2Penalty(1.0, "task").parameters(net)}
    assert heads == {id(p) for p in net.task_parameters() if p.ndim == 3}  # batched heads
    custom = L1Penalty(1.0, lambda n: [n.heads.blocks[0].weight0]).parameters(net)
    assert custom == [net.heads.blocks[0].weight0]
    assert len(L2Penalty(1.0, "all").parameters(net)) == sum(
        1 for n, p in net.named_parameters()
        if (n.endswith("weight") and p.ndim == 2) or ".weight" in n and p.ndim == 3)


def test_group_l21_value_and_prox():
    torch.manual_seed(1)
    net = MMoE(6, TASKS, 2, expert_hidden=(5,), tower_hidden=())
    pen = GroupL21(0.2)
    cols = torch.cat([m.weight for m in net.input_layers()], 0)  # (2*5 + 2*2, 6)
    assert cols.shape == (14, 6)
    norms = cols.detach().norm(dim=0)
    assert pen.value(net).item() == pytest.approx(0.2 * norms.sum().item(), rel=1e-6)
    # prox: W_j <- W_j (1 - t / ||W_j||)_+ ; columns below t vanish exactly
    srt = norms.sort().values
    t = float(srt[1] + srt[2]) / 2 / 0.2  # the two smallest groups fall below the threshold
    V = cols.detach().clone()
    pen.prox(net, t)
    W = torch.cat([m.weight for m in net.input_layers()], 0).detach()
    step = 0.2 * t
    for j in range(6):
        nv = V[:, j].norm()
        if nv <= step:
            assert torch.all(W[:, j] == 0)
        else:  # optimality of 1/2 ||W - V||^2 + step ||W_j||: V_j - W_j = step W_j / ||W_j||
            torch.testing.assert_close(V[:, j] - W[:, j], step * W[:, j] / W[:, j].norm(),
                                       rtol=1e-5, atol=1e-6)
    assert len(pen.selected_features(net, tol=0.0)) == 4


def test_l1_prox_is_soft_thresholding():
    net = _net(batch_norm=False)
    pen = L1Penalty(0.5, proximal=True)
    before = [p.detach().clone() for p in pen.parameters(net)]
    pen.prox(net, 0.1)
    for b, p in zip(before, pen.parameters(net), strict=True):
        ref = np.sign(b.numpy()) * np.maximum(np.abs(b.numpy()) - 0.05, 0)
        np.testing.assert_allclose(p.detach().numpy(), ref, atol=1e-7)


@pytest.mark.parametrize("call, match", [
    (lambda: L1Penalty(-1.0), "alpha must be"),
    (lambda: L1Penalty(float("nan")), "alpha must be"),
    (lambda: L2Penalty(1.0, "heads"), "params must be one of"),
    (lambda: L2Penalty(1.0, proximal=True), "smooth"),
    (lambda: make_penalties("l0"), "penalty must be one of"),
    (lambda: make_penalties([1.0]), "ParameterPenalty"),
])
def test_bad_penalties(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_make_penalties():
    assert make_penalties(None) == []
    (p,) = make_penalties("l21", 0.1)
    assert isinstance(p, GroupL21) and p.alpha == 0.1
    both = [L1Penalty(0.1), L2Penalty(0.2)]
    assert make_penalties(both) == both
