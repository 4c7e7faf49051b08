"""Nets: outputs per task, parameter groups that match the computation graph, input layers."""

import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import CGC, PLE, HardSharing, MMoE, TaskSpec  # noqa: E402

TASKS = [TaskSpec("r"), TaskSpec("b", kind="binary"),
         TaskSpec("m", kind="multiclass", n_outputs=3)]


def _nets():
    torch.manual_seed(0)
    return [
        HardSharing(7, TASKS, (16, 8), head_hidden=(4,), dropout=0.1, batch_norm=True),
        MMoE(7, TASKS, 3, expert_hidden=(8,), tower_hidden=(4,)),
        CGC(7, TASKS, n_shared_experts=2, n_task_experts=1, expert_hidden=(8,)),
        PLE(7, TASKS, 2, n_shared_experts=2, n_task_experts=2, expert_hidden=(8, 6)),
        MMoE(7, TASKS, 3, expert_hidden=(8,), tower_hidden=(4,), gate_bias=True),
        PLE(7, TASKS, 2, n_shared_experts=1, n_task_experts=1, expert_hidden=(8,),
            gate_bias=True),
    ]


@pytest.mark.parametrize("net", _nets(), ids=lambda n: type(n).__name__)
def test_outputs_have_each_task_width(net):
    out = net(torch.randn(5, 7))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"r": (5, 1), "b": (5, 1),
                                                           "m": (5, 3)}
    sub = net.eval()(torch.randn(5, 7), tasks=["m"])
    assert list(sub) == ["m"]
    with pytest.raises(ValueError, match="unknown task"):
        net(torch.randn(5, 7), tasks=["z"])
    with pytest.raises(ValueError, match=r"expects \(batch, 7\)"):
        net(torch.randn(5, 6))


@pytest.mark.parametrize("net", _nets(), ids=lambda n: type(n).__name__)
def test_parameter_groups_match_the_graph(net):
    """Shared and task groups partition the parameters; every shared parameter gets a gradient
    from every task; a task's own parameters get gradients from that task only (in a PLE of
    several levels, the lower task experts also feed the shared gate: only the last level's
    are exclusive)."""
    net.eval()
    shared = net.shared_parameters()
    ids = {id(p) for p in shared}
    task_ids = {id(p) for p in net.task_parameters()}
    assert not ids & task_ids
    assert ids | task_ids == {id(p) for p in net.parameters()}
    own_union = set()
    for t in net.task_names:
        own_union |= {id(p) for p in net.task_parameters(t)}
    assert own_union == task_ids
    x = torch.randn(6, 7)
    for t in net.task_names:
        net.zero_grad()
        net(x)[t].sum().backward()
        for p in shared:
            if p.grad is not None and p.numel() > 1:  # batchnorm running stats are buffers
                assert p.grad.abs().sum() > 0, f"shared parameter without gradient from {t}"
        for other in net.task_names:
            if other == t:
                continue
            for g in _own_grads(net, other):
                assert g is None or torch.all(g == 0)


def _own_grads(net, task):
    """The gradients of ``task``'s own weights: its slice of the batched heads and gates, and
    (PLE) its last-level experts and gates."""
    heads = net.heads if isinstance(net, HardSharing) else net.towers
    i = heads.position(task)
    block = heads.blocks[int(heads.block_of[i])]
    local = int(heads.local[i])
    out = [None if p.grad is None else p.grad[local] for p in block.parameters()]
    if isinstance(net, MMoE):
        g = net.gates
        lin = g.blocks[int(g.block_of[g.position(task)])]
        k, j = g.n_experts, int(g.local[g.position(task)])
        out += [None if lin.weight.grad is None else lin.weight.grad[j * k:(j + 1) * k],
                None if lin.bias is None or lin.bias.grad is None
                else lin.bias.grad[j * k:(j + 1) * k]]
    if isinstance(net, PLE):
        out += [p.grad for p in (*net.task_gates[-1][task].parameters(),
                                 *net.task_experts[-1][task].parameters())]
    return out


def test_input_layers_read_the_input():
    for net in _nets():
        layers = net.input_layers()
        assert layers and all(m.in_features == 7 for m in layers)
    mmoe = _nets()[1]
    assert len(mmoe.input_layers()) == 3 + 1  # experts, and every gate in one Linear(7, T K)
    gates = mmoe.gate_weights(torch.randn(4, 7))
    for g in gates.values():
        torch.testing.assert_close(g.sum(1), torch.ones(4))


def test_custom_trunk_and_config():
    trunk = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh())
    net = HardSharing(7, TASKS, trunk=trunk)
    assert net.shared_parameters() == list(trunk.parameters())
    assert net.input_layers() == [trunk[0]]
    assert net(torch.randn(2, 7))["m"].shape == (2, 3)
    with pytest.raises(ValueError, match="custom trunk"):
        net.config()
    cfg = _nets()[3].config()
    assert cfg["n_levels"] == 2 and cfg["tasks"][2]["n_outputs"] == 3


@pytest.mark.parametrize("kw, match", [
    (dict(hidden=(0,)), "widths must be >= 1"),
    (dict(dropout=1.0), "dropout"),
    (dict(activation="swish"), "activation must be one of"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        HardSharing(7, TASKS, **kw)
    with pytest.raises(ValueError, match="n_experts"):
        MMoE(7, TASKS, 0)
    with pytest.raises(ValueError, match="n_features"):
        HardSharing(0, TASKS)
