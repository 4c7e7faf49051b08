"""The recommender nets against forward passes written from their papers' equations.

MMoE (Ma et al. 2018), CGC and PLE (Tang et al. 2020; 1-3 levels, several mixes of shared
and task experts) and ESMM (Ma et al. 2018), in float64: each reference below is plain torch
arithmetic on the parameters read from the net's modules, fed the same inputs, and agrees
with the net's output to 1e-12; gates sum to 1 per row; pCTCVR = pCTR x pCVR. The gates are
the papers' softmax(W x) by default (no bias parameter) and softmax(W x + c) with
gate_bias=True; a biased net whose biases are 0 is the unbiased one. Nets saved before the
option (configs without it) load with the bias and predict as saved. The nets' getters
return the caller's own tensors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    CGC,
    ESMM,
    PLE,
    HardSharing,
    MMoE,
    load_checkpoint,
    save_checkpoint,
)

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
        logits = x @ blk.weight[rows].T
        if blk.bias is not None:
            logits = logits + blk.bias[rows]
        pi = _softmax(logits)
        assert torch.allclose(pi.sum(1), torch.ones(len(x), dtype=F64), atol=TOL)
        out[t] = _tower(net, t, sum(pi[:, k:k + 1] * e[k] for k in range(K)))
    return out


def _gate(gate, x: torch.Tensor) -> torch.Tensor:
    logits = x @ gate.linear.weight.T
    if gate.linear.bias is not None:
        logits = logits + gate.linear.bias
    pi = _softmax(logits)
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


def _gate_biases(net) -> list[torch.nn.Parameter]:
    return [p for name, p in net.named_parameters() if "gate" in name and name.endswith("bias")]


@pytest.mark.parametrize("gate_bias", [False, True])
@pytest.mark.parametrize("n_experts, hidden, tower", [(1, (5,), ()), (3, (6, 4), (3,)),
                                                      (4, (8,), (5, 2))])
def test_mmoe_equals_the_papers_forward(n_experts, hidden, tower, gate_bias):
    torch.manual_seed(n_experts)
    net = MMoE(5, ["a", "b", "c"], n_experts, expert_hidden=hidden, tower_hidden=tower,
               gate_bias=gate_bias).double()
    assert len(_gate_biases(net)) == gate_bias  # the paper's gates: no bias parameter
    net.eval()
    x = _x(5)
    out, ref = net(x), _mmoe_reference(net, x)
    for t in net.task_names:
        assert torch.allclose(out[t], ref[t], rtol=0, atol=TOL)
    for pi in net.gate_weights(x).values():
        assert torch.allclose(pi.sum(1), torch.ones(7, dtype=F64), atol=TOL)


@pytest.mark.parametrize("gate_bias", [False, True])
@pytest.mark.parametrize("levels, shared, own", [(1, 1, 1), (1, 2, 3), (2, 2, 1), (2, 1, 2),
                                                 (3, 3, 1)])
def test_ple_and_cgc_equal_the_papers_forward(levels, shared, own, gate_bias):
    torch.manual_seed(10 * levels + shared)
    kw = dict(n_shared_experts=shared, n_task_experts=own, expert_hidden=(6, 4),
              tower_hidden=(3,), gate_bias=gate_bias)
    net = (CGC(5, ["a", "b"], **kw) if levels == 1 else
           PLE(5, ["a", "b", "c"], n_levels=levels, **kw)).double()
    T = len(net.task_names)
    assert len(_gate_biases(net)) == gate_bias * (levels * T + levels - 1)
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


@pytest.mark.parametrize("make", [
    lambda b: MMoE(5, ["a", "b"], 3, expert_hidden=(6,), tower_hidden=(3,), gate_bias=b),
    lambda b: CGC(5, ["a", "b"], n_shared_experts=2, n_task_experts=2, expert_hidden=(6,),
                  gate_bias=b),
    lambda b: PLE(5, ["a", "b", "c"], 3, n_shared_experts=1, expert_hidden=(4,), gate_bias=b),
], ids=["mmoe", "cgc", "ple"])
def test_biased_gates_with_zero_bias_are_the_papers_gates(make):
    torch.manual_seed(4)
    biased = make(True).double().eval()
    paper = make(False).double().eval()
    with torch.no_grad():
        for c in _gate_biases(biased):
            c.zero_()
    state = {k: v for k, v in biased.state_dict().items() if k in paper.state_dict()}
    paper.load_state_dict(state)  # every parameter but the biases
    x = _x(5, seed=9)
    out, ref = biased(x), paper(x)
    for t in paper.task_names:
        assert torch.equal(out[t], ref[t])
    with torch.no_grad():  # and a bias changes the output: it is used (not a constant
        c = _gate_biases(biased)[0]  # shift, to which a softmax is blind)
        c.add_(torch.arange(c.numel(), dtype=c.dtype))
    assert not torch.equal(biased(x)[paper.task_names[0]], ref[paper.task_names[0]])


@pytest.mark.parametrize("make", [
    lambda b: MMoE(4, ["a", "b"], 3, expert_hidden=(5,), tower_hidden=(2,), gate_bias=b),
    lambda b: CGC(4, ["a", "b"], expert_hidden=(5,), tower_hidden=(), gate_bias=b),
    lambda b: PLE(4, ["a", "b"], 2, expert_hidden=(5,), gate_bias=b),
], ids=["mmoe", "cgc", "ple"])
def test_saved_nets_keep_their_gates_and_older_configs_mean_a_bias(tmp_path, make):
    torch.manual_seed(2)
    x = torch.randn(6, 4)
    for gate_bias in (False, True):
        net = make(gate_bias).eval()
        folder = save_checkpoint(tmp_path / f"b{gate_bias}", net)
        assert json.loads((folder / "config.json").read_text())["net_config"]["gate_bias"] \
            is gate_bias
        loaded = load_checkpoint(folder).eval()
        assert len(_gate_biases(loaded)) == len(_gate_biases(net))
        with torch.no_grad():
            assert all(torch.equal(loaded(x)[t], net(x)[t]) for t in net.task_names)
    # a net saved before the option existed: its config lacks it and its gates had a bias
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["net_config"]["gate_bias"]
    (folder / "config.json").write_text(json.dumps(cfg))
    old = load_checkpoint(folder).eval()
    assert old.config()["gate_bias"] is True and len(_gate_biases(old)) > 0
    with torch.no_grad():
        assert all(torch.equal(old(x)[t], net(x)[t]) for t in net.task_names)


@pytest.mark.parametrize("cls", [MMoE, CGC, PLE])
def test_gate_bias_must_be_a_bool(cls):
    with pytest.raises(ValueError, match="gate_bias"):
        cls(4, ["a", "b"], expert_hidden=(3,), gate_bias="yes")


def _snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def _unchanged(net, before) -> bool:
    return all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("gate_bias", [False, True])
def test_gate_weights_are_the_callers_own(gate_bias):
    torch.manual_seed(0)
    net = MMoE(4, ["a", "b"], 3, expert_hidden=(5,), tower_hidden=(), gate_bias=gate_bias)
    x = torch.randn(6, 4)
    before, out = _snapshot(net), net(x)
    first = net.gate_weights(x)
    assert not any(pi.requires_grad for pi in first.values())
    ptrs = {p.data_ptr() for p in net.parameters()}
    assert not any(pi.data_ptr() in ptrs for pi in first.values())
    for pi in first.values():
        pi.mul_(0.0)
    again = net.gate_weights(x)
    assert torch.allclose(again["a"].sum(1), torch.ones(6), atol=1e-6)
    assert _unchanged(net, before) and torch.equal(net(x)["a"], out["a"])


def test_head_weights_are_the_callers_own():
    torch.manual_seed(0)
    nets = [HardSharing(4, ["a", "b"], hidden=(5,), head_hidden=(3,)),
            MMoE(4, ["a", "b"], 2, expert_hidden=(5,), tower_hidden=(3,))]
    for net in nets:
        heads = net.heads if isinstance(net, HardSharing) else net.towers
        x = torch.randn(6, 4)
        before, out = _snapshot(net), net(x)
        got = heads.task_weights("a")
        assert [tuple(w.shape) for w in got] == [(5, 3), (3,), (3, 1), (1,)]
        assert not any(w.requires_grad for w in got)
        for w in got:
            w.fill_(7.0)
        assert _unchanged(net, before)
        assert all(torch.equal(net(x)[t], out[t]) for t in out)


def test_esmm_getters_are_the_callers_own():
    torch.manual_seed(0)
    net = ESMM(4, hidden=(5,), tower_hidden=(3,))
    x = torch.randn(6, 4)
    before, out = _snapshot(net), net(x)
    cvr = net.predict_cvr(x.numpy())
    cvr[:] = 5.0
    p = net.probabilities(x)
    with torch.no_grad():
        for v in p.values():
            v.mul_(0.0)
    a, b = net.logits(x)
    with torch.no_grad():
        a.mul_(0.0)
        b.mul_(0.0)
    assert _unchanged(net, before)
    assert all(torch.equal(net(x)[t], out[t]) for t in out)
    np.testing.assert_allclose(net.predict_cvr(x.numpy()),
                               torch.sigmoid(net.logits(x)[1][:, 0]).detach().numpy(),
                               rtol=0, atol=1e-7)


def test_a_config_whose_gate_bias_does_not_fit_the_weights_is_refused(tmp_path):
    torch.manual_seed(0)
    folder = save_checkpoint(tmp_path / "m", MMoE(4, ["a", "b"], 2, expert_hidden=(3,),
                                                  gate_bias=True))
    cfg = json.loads((folder / "config.json").read_text())
    for value, words in (("yes", "gate_bias"), (False, "gates.blocks.0.bias")):
        cfg["net_config"]["gate_bias"] = value
        (folder / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ValueError, match=words):
            load_checkpoint(folder)
