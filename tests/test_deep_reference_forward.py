"""The recommender nets against forward passes written from their papers' equations.

MMoE (Ma et al. 2018), CGC and PLE (Tang et al. 2020; 1-3 levels, several mixes of shared
and task experts) and ESMM (Ma et al. 2018), in float64: each reference below is plain torch
arithmetic on the parameters read from the net's modules, fed the same inputs, and agrees
with the net's output to 1e-12; gates sum to 1 per row; pCTCVR = pCTR x pCVR. The gates'
bias (kept on, see the nets' docstrings) enters as the paper's softmax(W x) plus c: with c
set to 0 the net is the paper's form exactly, which the tests check too. The nets' getters
return the caller's own tensors.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import CGC, ESMM, PLE, MMoE  # noqa: E402

F64 = torch.float64
TOL = 1e-12


def _seq(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An MLP by hand: x W^T + b for every Linear, relu for every ReLU (dropout is off)."""
    for layer in module:
        if isinstance(layer, torch.nn.Linear):
            x = x @ layer.weight.T + layer.bias
        elif isinstance(layer, torch.nn.ReLU):
            x = torch.clamp(x, min=0.0)
        elif not isinstance(layer, (torch.nn.Dropout, torch.nn.Identity)):
            raise AssertionError(f"unexpected layer {layer}")
    return x


def _tower(net, task: str, z: torch.Tensor) -> torch.Tensor:
    """Task ``task``'s tower by hand from the batched head weights."""
    heads = net.towers
    pos = heads.names.index(task)
    block = heads.blocks[int(heads.block_of[pos])]
    local = int(heads.local[pos])
    for i, (wn, bn) in enumerate(block.layer_names):
        z = z @ getattr(block, wn)[local] + getattr(block, bn)[local]
        if i < len(block.layer_names) - 1:
            z = torch.clamp(z, min=0.0)
    return z


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    e = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def _mmoe_reference(net: MMoE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """f_t(x) = h_t(sum_k softmax(G_t x + c_t)_k e_k(x))."""
    e = [_seq(ex, x) for ex in net.experts]
    K = len(e)
    out = {}
    for t in net.task_names:
        pos = net.gates.position(t)
        blk = net.gates.blocks[int(net.gates.block_of[pos])]
        rows = slice(int(net.gates.local[pos]) * K, (int(net.gates.local[pos]) + 1) * K)
        pi = _softmax(x @ blk.weight[rows].T + blk.bias[rows])
        assert torch.allclose(pi.sum(1), torch.ones(len(x), dtype=F64), atol=TOL)
        out[t] = _tower(net, t, sum(pi[:, k:k + 1] * e[k] for k in range(K)))
    return out


def _gate(gate, x: torch.Tensor) -> torch.Tensor:
    pi = _softmax(x @ gate.linear.weight.T + gate.linear.bias)
    assert torch.allclose(pi.sum(1), torch.ones(len(x), dtype=F64), atol=TOL)
    return pi


def _mix(pi: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
    return sum(pi[:, k:k + 1] * o for k, o in enumerate(outputs))


def _ple_reference(net: PLE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Tang et al. eqs. (2)-(6): task t's gate mixes (its experts, the shared experts); below
    the last level the shared gate mixes (every task's experts, the shared experts)."""
    z_task = {t: x for t in net.task_names}
    z_shared = x
    L = len(net.shared_experts)
    for level in range(L):
        u_shared = [_seq(e, z_shared) for e in net.shared_experts[level]]
        u_task = {t: [_seq(e, z_task[t]) for e in net.task_experts[level][t]]
                  for t in net.task_names}
        new_task = {t: _mix(_gate(net.task_gates[level][t], z_task[t]), u_task[t] + u_shared)
                    for t in net.task_names}
        if level < L - 1:
            every = [u for t in net.task_names for u in u_task[t]] + u_shared
            z_shared = _mix(_gate(net.shared_gates[level], z_shared), every)
        z_task = new_task
    return {t: _tower(net, t, z_task[t]) for t in net.task_names}


def _x(n_features: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(7, n_features, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _zero_gate_bias(net) -> None:
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "gate" in name and name.endswith("bias"):
                p.zero_()


@pytest.mark.parametrize("zero_bias", [False, True])
@pytest.mark.parametrize("n_experts, hidden, tower", [(1, (5,), ()), (3, (6, 4), (3,)),
                                                      (4, (8,), (5, 2))])
def test_mmoe_equals_the_papers_forward(n_experts, hidden, tower, zero_bias):
    torch.manual_seed(n_experts)
    net = MMoE(5, ["a", "b", "c"], n_experts, expert_hidden=hidden, tower_hidden=tower).double()
    if zero_bias:
        _zero_gate_bias(net)
    net.eval()
    x = _x(5)
    out, ref = net(x), _mmoe_reference(net, x)
    for t in net.task_names:
        assert torch.allclose(out[t], ref[t], rtol=0, atol=TOL)
    for pi in net.gate_weights(x).values():
        assert torch.allclose(pi.sum(1), torch.ones(7, dtype=F64), atol=TOL)


@pytest.mark.parametrize("zero_bias", [False, True])
@pytest.mark.parametrize("levels, shared, own", [(1, 1, 1), (1, 2, 3), (2, 2, 1), (2, 1, 2),
                                                 (3, 3, 1)])
def test_ple_and_cgc_equal_the_papers_forward(levels, shared, own, zero_bias):
    torch.manual_seed(10 * levels + shared)
    kw = dict(n_shared_experts=shared, n_task_experts=own, expert_hidden=(6, 4),
              tower_hidden=(3,))
    net = (CGC(5, ["a", "b"], **kw) if levels == 1 else
           PLE(5, ["a", "b", "c"], n_levels=levels, **kw)).double()
    if zero_bias:
        _zero_gate_bias(net)
    net.eval()
    x = _x(5, seed=levels)
    out, ref = net(x), _ple_reference(net, x)
    for t in net.task_names:
        assert torch.allclose(out[t], ref[t], rtol=0, atol=TOL)


@pytest.mark.parametrize("hidden, tower", [((), ()), ((), (4,)), ((6,), (3,)), ((8, 4), ())])
def test_esmm_equals_the_papers_forward(hidden, tower):
    """pCTR = sigma(a), pCTCVR = sigma(a) sigma(b) with a, b the towers on the shared bottom."""
    torch.manual_seed(len(hidden) + len(tower))
    net = ESMM(5, hidden=hidden, tower_hidden=tower).double().eval()
    x = _x(5, seed=3)
    h = _seq(net.bottom, x) if len(net.bottom) else x
    a, b = _seq(net.ctr_tower, h), _seq(net.cvr_tower, h)
    out = net(x)
    assert torch.allclose(out["ctr"], a, rtol=0, atol=TOL)
    assert torch.allclose(torch.sigmoid(out["ctcvr"]), torch.sigmoid(a) * torch.sigmoid(b),
                          rtol=0, atol=TOL)
    p = net.probabilities(x)
    assert torch.allclose(p["ctcvr"], p["ctr"] * p["cvr"], rtol=0, atol=TOL)


def test_gate_weights_are_the_callers_own():
    net = MMoE(4, ["a", "b"], 3, expert_hidden=(5,), tower_hidden=())
    x = torch.randn(6, 4)
    first = net.gate_weights(x)
    assert not any(pi.requires_grad for pi in first.values())
    first["a"].mul_(0.0)
    again = net.gate_weights(x)
    assert torch.allclose(again["a"].sum(1), torch.ones(6), atol=1e-6)
    assert torch.equal(again["b"], first["b"])
