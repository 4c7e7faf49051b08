"""Checkpoints of earlier releases, whose heads, towers and gates were one module per task.

``tests/data/old_checkpoints`` holds tiny checkpoints written by the release before the batched
heads (``make_old_checkpoints.py`` there says how) with their outputs on a fixed input; the other
tests write the per-task layout by hand from a new net (the inverse of the conversion, written
here independently: each task's slices of the batched weights under the old key names).
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import FIXTURES, refused  # noqa: E402

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    CGC,
    PLE,
    HardSharing,
    MMoE,
    TaskSpec,
    load_checkpoint,
    save_checkpoint,
    transfer_head,
)
from regmtl.deep import checkpoint as ck  # noqa: E402
from regmtl.deep.heads import TaskGates, TaskHeads  # noqa: E402
from regmtl.deep.saving import load_estimator  # noqa: E402

OLD = FIXTURES / "old_checkpoints"
NETS = {"hard_head_hidden": "HardSharing", "hard_batch_norm": "HardSharing", "mmoe": "MMoE",
        "mmoe_batch_norm": "MMoE", "cgc": "CGC", "ple": "PLE", "esmm": "ESMM"}
TASKS = [TaskSpec("a"), TaskSpec("b", kind="binary"), TaskSpec("c", kind="multiclass",
                                                                n_outputs=3),
         TaskSpec("d", n_outputs=2)]


@pytest.fixture(scope="module")
def saved():
    return np.load(OLD / "outputs.npz")


# ------------------------------------------------------------------ checkpoints of the old code
@pytest.mark.parametrize("name", list(NETS))
def test_old_checkpoints_load_and_give_their_outputs(name, saved):
    keys = set(torch.load(OLD / name / "model.pt", weights_only=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = load_checkpoint(OLD / name).eval()
    folded = [w for w in caught if "folded" in str(w.message)]
    assert len(folded) == name.endswith("batch_norm")  # their heads had batch norm
    assert type(net).__name__ == NETS[name]
    if name != "esmm":  # saved by the old code: per-task keys, none batched
        assert any(".a." in k for k in keys) and not any(".blocks." in k for k in keys)
    x = torch.from_numpy(saved["x"])
    with torch.no_grad():
        out = net(x)
    assert sorted(out) == sorted(k.split(".", 1)[1] for k in saved if k.startswith(name + "."))
    for task, v in out.items():
        # measured: at most 1.5e-7 apart (einsum against addmm, float64 target maps; 1e-7
        # for the batch-norm heads, folded into their linear layers), 0 for ESMM (unchanged)
        np.testing.assert_allclose(v.numpy(), saved[f"{name}.{task}"], rtol=1e-6, atol=1e-6)


def test_old_estimator_folder_loads_and_predicts(saved):
    config = json.loads((OLD / "estimator_mmoe" / "config.json").read_text())
    assert config["net"] == "MMoE" and config["estimator"]["params"]["head_hidden"]
    x = saved["x"].astype(np.float64)
    for load in (regmtl.load, load_estimator):
        est = load(OLD / "estimator_mmoe")
        assert type(est).__name__ == "DeepMultiTaskRegressor"
        # measured: 2.8e-7 apart on values near 10 (the float64 target maps of this release)
        np.testing.assert_allclose(est.predict(x), saved["estimator"], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ the per-task layout by hand
def _per_task_state(net, batch_norm: bool = False, dropout: bool = False) -> dict:
    """The state dict the earlier release saved for ``net``: each task's head (tower) an
    ``nn.Sequential`` of ``Linear, [BatchNorm1d], activation, [Dropout]`` per hidden layer and a
    Linear, each gate a module with one ``linear``. Batch norms get random statistics."""
    g = torch.Generator().manual_seed(3)
    state = {k: v.clone() for k, v in net.state_dict().items()
             if not k.startswith(("heads.", "towers.", "gates."))}
    stride = 2 + int(batch_norm) + int(dropout)
    for prefix in ("heads", "towers"):
        heads = getattr(net, prefix, None)
        if not isinstance(heads, TaskHeads):
            continue
        for name in heads.names:
            layers = heads.task_weights(name)  # weight (in, out), bias (out,), layer by layer
            n = len(layers) // 2
            for i in range(n):
                w, b = layers[2 * i], layers[2 * i + 1]
                state[f"{prefix}.{name}.{i * stride}.weight"] = w.detach().t().clone()
                state[f"{prefix}.{name}.{i * stride}.bias"] = b.detach().clone()
                if batch_norm and i < n - 1:
                    c = len(b)
                    bn = f"{prefix}.{name}.{i * stride + 1}."
                    state[bn + "weight"] = 0.5 + torch.rand(c, generator=g)
                    state[bn + "bias"] = 0.3 * torch.randn(c, generator=g)
                    state[bn + "running_mean"] = torch.randn(c, generator=g)
                    state[bn + "running_var"] = 0.2 + torch.rand(c, generator=g)
                    state[bn + "num_batches_tracked"] = torch.tensor(7)
    gates = getattr(net, "gates", None)
    if isinstance(gates, TaskGates):
        K = gates.n_experts
        for i, name in enumerate(gates.names):
            blk = gates.blocks[int(gates.block_of[i])]
            j = int(gates.local[i])
            state[f"gates.{name}.linear.weight"] = blk.weight.detach()[j * K:(j + 1) * K].clone()
            if blk.bias is not None:
                state[f"gates.{name}.linear.bias"] = blk.bias.detach()[j * K:(j + 1) * K].clone()
    return state


def _old_folder(tmp_path, net, state, name="old"):
    folder = save_checkpoint(tmp_path / name, net)
    torch.save(state, folder / "model.pt")
    return folder


def _nets():
    torch.manual_seed(0)
    return [HardSharing(5, TASKS, hidden=(8,), head_hidden=(6, 4)),
            HardSharing(5, TASKS, hidden=(8,), head_hidden=(6,), dropout=0.2),
            # the earlier releases' gates had a bias (gate_bias=True)
            MMoE(5, TASKS, n_experts=3, expert_hidden=(6,), tower_hidden=(4,), gate_bias=True),
            CGC(5, TASKS, expert_hidden=(6,), tower_hidden=(), gate_bias=True),
            PLE(5, TASKS, n_levels=2, expert_hidden=(6,), tower_hidden=(4,), dropout=0.1,
                gate_bias=True)]


@pytest.mark.parametrize("k", range(5), ids=["hard", "hard-dropout", "mmoe", "cgc", "ple"])
def test_per_task_layout_loads_into_the_batched_weights_exactly(tmp_path, k):
    net = _nets()[k].eval()
    for t, n in (("a", 1), ("d", 2)):
        net.target_scales[t].set(torch.full((n,), 3.0), torch.full((n,), 2.0))
    state = _per_task_state(net, dropout=net._config["dropout"] > 0)
    assert not any(".blocks." in key for key in state)
    loaded = load_checkpoint(_old_folder(tmp_path, net, state)).eval()
    # stacking and transposing move values without arithmetic: every tensor is bit-identical
    got, want = loaded.state_dict(), net.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[key], want[key]) for key in want)
    x = torch.randn(6, 5)
    with torch.no_grad():
        a, b = net(x), loaded(x)
    assert all(torch.equal(a[t], b[t]) for t in a)
    # into a net given, too
    other = copy.deepcopy(net)
    for p in other.parameters():
        torch.nn.init.normal_(p)
    load_checkpoint(_old_folder(tmp_path, net, state, "given"), net=other)
    assert all(torch.equal(other.state_dict()[key], want[key]) for key in want)


def test_per_task_heads_with_batch_norm_are_folded(tmp_path):
    """The converted net gives what the old Sequential heads (Linear, BatchNorm1d in
    evaluation mode, ReLU, Linear) give on the trunk's output."""
    net = HardSharing(5, TASKS, hidden=(8,), head_hidden=(6,), batch_norm=True).eval()
    state = _per_task_state(net, batch_norm=True)
    with pytest.warns(UserWarning, match="folded"):
        loaded = load_checkpoint(_old_folder(tmp_path, net, state)).eval()
    x = torch.randn(9, 5)
    with torch.no_grad(), loaded.standardized_outputs():
        out = loaded(x)
        z = loaded.trunk(x)
    for t in TASKS:
        head = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.BatchNorm1d(6),
                                   torch.nn.ReLU(), torch.nn.Linear(6, t.n_outputs)).eval()
        head.load_state_dict({k[len(f"heads.{t.name}."):]: v for k, v in state.items()
                              if k.startswith(f"heads.{t.name}.")})
        with torch.no_grad():
            # measured: at most 1.8e-7 apart over seeds 0-4 (the fold rounds once in float32)
            np.testing.assert_allclose(out[t.name].numpy(), head(z).numpy(), rtol=1e-6,
                                       atol=1e-6)


def test_per_task_layout_of_a_net_with_a_transferred_task(tmp_path):
    """A net given with a task added by transfer (its head and gate in blocks of their own)."""
    torch.manual_seed(1)
    net = MMoE(5, TASKS[:2], n_experts=2, expert_hidden=(6,), tower_hidden=(4,),
               gate_bias=True)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5))
    grown = transfer_head(net, X, X[:, 0], task="new", epochs=2).net_.eval()
    assert len(grown.gates.blocks) == 2 and len(grown.towers.blocks) == 2
    state = _per_task_state(grown)
    assert "gates.new.linear.weight" in state and "towers.new.2.weight" in state
    torch.save(state, tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps({"format": 1, "net": None}))
    other = copy.deepcopy(grown)
    for p in other.parameters():
        torch.nn.init.normal_(p)
    load_checkpoint(tmp_path, net=other)
    want = grown.state_dict()
    assert all(torch.equal(other.state_dict()[key], want[key]) for key in want)


# ------------------------------------------------------------------ the same checks as today
def _mmoe_folder(tmp_path):
    torch.manual_seed(0)
    net = MMoE(5, TASKS[:3], n_experts=2, expert_hidden=(6,), tower_hidden=(4,),
               gate_bias=True)
    state = _per_task_state(net)
    return _old_folder(tmp_path, net, state), state


def _rewrite(folder, state):
    torch.save(state, folder / "model.pt")
    return folder


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.pop("towers.b.2.bias"), ["missing tensors", "'towers.b.2.bias'"]),
    (lambda s: s.pop("gates.c.linear.weight"), ["missing tensors", "'gates.c.linear.weight'"]),
    (lambda s: s.update({"towers.zz.0.weight": torch.zeros(4, 6)}),
     ["unexpected tensors", "'towers.zz.0.weight'"]),
    (lambda s: s.update({"gates.a.linear.weight": torch.zeros(5, 2)}),
     ["'gates.a.linear.weight'", "(5, 2)", "(2, 5)"]),
    (lambda s: s.update({"towers.c.2.weight": torch.zeros(1, 4)}),
     ["'towers.c.2.weight'", "(1, 4)", "(3, 4)"]),
    (lambda s: s.update({"towers.a.0.bias": torch.zeros(4, dtype=torch.int64)}),
     ["'towers.a.0.bias'", "torch.int64"]),
    # a file that mixes the layouts is read as the batched one: the per-task keys are extra
    (lambda s: s.update({"towers.blocks.0.weight0": torch.zeros(2, 6, 4)}),
     ["unexpected tensors", "'gates.a.linear.bias'", "missing tensors",
      "'towers.blocks.0.bias0'"]),
], ids=["missing-tower", "missing-gate", "extra-task", "gate-shape", "output-width",
        "int-bias", "mixed"])
def test_tampered_per_task_weights_are_refused_naming_the_tensor(tmp_path, edit, words):
    folder, state = _mmoe_folder(tmp_path)
    edit(state)
    refused(lambda: load_checkpoint(_rewrite(folder, state)), folder / "model.pt",
             "does not fit", *words)


def test_per_task_weights_are_checked_before_any_net_is_built(tmp_path, monkeypatch):
    folder, state = _mmoe_folder(tmp_path)
    state["towers.a.0.weight"] = torch.zeros(4, 6000)
    _rewrite(folder, state)
    built = []
    real = ck._build

    def spy(cls, kw):
        built.append(torch.get_default_device().type)
        return real(cls, kw)

    monkeypatch.setattr(ck, "_build", spy)
    refused(lambda: load_checkpoint(folder), "'towers.a.0.weight'", "(4, 6000)", "(4, 6)")
    assert built == ["meta"]  # only the shapes were built, on the meta device
    # a net given is not touched by a file that does not fit it
    net = MMoE(5, TASKS[:3], n_experts=2, expert_hidden=(6,), tower_hidden=(4,),
               gate_bias=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    refused(lambda: load_checkpoint(folder, net=net), "the net given", "'towers.a.0.weight'")
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_batch_norm_counter_must_be_an_integer(tmp_path):
    net = HardSharing(5, TASKS[:2], hidden=(8,), head_hidden=(6,), batch_norm=True)
    state = _per_task_state(net, batch_norm=True)
    state["heads.a.1.num_batches_tracked"] = torch.tensor(7.0)
    refused(lambda: load_checkpoint(_old_folder(tmp_path, net, state)),
             "'heads.a.1.num_batches_tracked'")
    del state["heads.a.1.num_batches_tracked"]
    refused(lambda: load_checkpoint(_old_folder(tmp_path, net, state, "b")),
             "missing tensors", "'heads.a.1.num_batches_tracked'")


@pytest.mark.parametrize("key, value, word", [
    ("heads.a.1.running_var", -1.0, "negative variance"),
    ("heads.a.1.weight", float("nan"), "NaN or infinite"),
])
def test_old_batch_norm_values_are_checked(tmp_path, key, value, word):
    """Shapes alone do not make a checkpoint: a NaN weight (any layout) or a negative
    variance to fold is refused, naming the tensor, instead of loading a net of NaN."""
    src = OLD / "hard_batch_norm"
    folder = tmp_path / "ck"
    shutil.copytree(src, folder)
    state = torch.load(folder / "model.pt", weights_only=True)
    assert key in state
    state[key] = torch.full_like(state[key], value)
    torch.save(state, folder / "model.pt")
    with pytest.raises(ValueError, match=word):
        load_checkpoint(folder)
