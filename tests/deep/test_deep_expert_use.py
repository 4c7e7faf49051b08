"""Expert use of MMoE, CGC and PLE: each gate's mean share of each expert and its entropy,
unused experts, and a collapse warning (regmtl.deep.expert_use), kept by the trainer and
shown by training_report."""

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402
from test_report import _parse  # noqa: E402

from regmtl.deep import CGC, PLE, MMoE, TaskSpec, Trainer, set_seed  # noqa: E402
from regmtl.deep.expert_use import expert_usage, has_gates  # noqa: E402
from regmtl.report import training_report  # noqa: E402


def _check_numbers(usage):
    shares = usage.shares.to_numpy(dtype=float)
    np.testing.assert_allclose(np.nansum(shares, axis=1), 1.0, atol=1e-6)  # per gate
    assert (np.nan_to_num(shares) >= 0).all()
    g = usage.gates
    assert (g["entropy"] >= -1e-12).all() and (g["entropy"] <= g["max_entropy"] + 1e-9).all()


def _collapsed_mmoe(n_experts=4, pick=2):
    # every task's gate has a logit 20 above the others on one expert: softmax ~1 - 3e-9
    set_seed(0)
    net = MMoE(5, ["a", "b"], n_experts=n_experts, expert_hidden=(8,), gate_bias=True)
    with torch.no_grad():
        blk = net.gates.blocks[0]
        blk.weight.zero_()
        blk.bias.zero_()
        blk.bias.view(2, n_experts)[:, pick] = 20.0
    return net


def test_a_collapsed_mmoe_is_flagged():
    net = _collapsed_mmoe()
    usage = expert_usage(net, np.random.default_rng(0).standard_normal((200, 5)))
    _check_numbers(usage)
    assert usage.collapsed == [0]
    assert usage.unused == [(0, "shared[0]"), (0, "shared[1]"), (0, "shared[3]")]
    assert usage.gates["top_share"].min() > 0.999
    assert usage.gates["entropy"].max() < 1e-6
    assert usage.gates["max_entropy"].iloc[0] == pytest.approx(math.log(4))
    assert "every task's gate puts at least 90% of its weight on one expert" in usage.warning
    assert "a: shared[2] 100%" in usage.warning and "3 of 4 experts" in usage.warning
    assert net.training  # its mode is restored


def test_one_expert_for_all_or_most_experts_unused_each_collapse():
    # the two tasks on different experts: not one expert each... but half the experts unused
    set_seed(0)
    net = MMoE(5, ["a", "b"], n_experts=6, expert_hidden=(8,), gate_bias=True)
    with torch.no_grad():
        blk = net.gates.blocks[0]
        blk.weight.zero_()
        blk.bias.zero_()
        blk.bias.view(2, 6)[0, :2] = 10.0  # a on shared[0], shared[1]
        blk.bias.view(2, 6)[1, 1] = 10.0  # b on shared[1]
    usage = expert_usage(net, torch.randn(50, 5))
    _check_numbers(usage)
    assert usage.collapsed == [0] and len(usage.unused) == 4
    assert "4 of 6 experts are used by no gate" in usage.warning
    assert "every task's gate" not in usage.warning  # a splits its weight in two


def test_a_trained_mmoe_on_digits_is_healthy_and_reported(tmp_path):
    d = load_digits()
    X = d.data / 16.0
    y = {"digit": d.target.astype(float), "large": (d.target >= 5).astype(float)}
    tasks = [TaskSpec("digit", kind="multiclass", n_outputs=10),
             TaskSpec("large", kind="binary")]
    set_seed(0)
    net = MMoE(64, tasks, n_experts=4, expert_hidden=(32,), tower_hidden=(16,))
    train = (X[:1400], {k: v[:1400] for k, v in y.items()})
    val = (X[1400:], {k: v[1400:] for k, v in y.items()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(net, max_epochs=10, batch_size=64, lr=1e-2, device="cpu").fit(
            train, val)
    assert not [w for w in caught if "expert collapse" in str(w.message)]
    assert trainer.history["val/digit/accuracy"].max() > 0.85  # it learned
    usage = trainer.expert_usage_
    _check_numbers(usage)
    assert usage.n_rows == len(X) - 1400  # on the validation data
    assert usage.warning is None and usage.collapsed == [] and usage.unused == []
    assert list(usage.shares.columns) == [f"shared[{k}]" for k in range(4)]
    page = training_report(trainer, created="2024-01-01").to_html()
    parsed = _parse(page)  # valid HTML
    assert "Expert use" in parsed.text.get("h2", [])
    assert "No collapse" in " ".join(parsed.text.get("strong", []))
    assert "Gates and experts" in " ".join(parsed.text.get("caption", []))
    assert "shared[3]" in parsed.text.get("th", [])
    # the digit's gate alone went to one expert (seed 0): named, not a collapse
    assert usage.gates.loc[(0, "digit"), "top_share"] > 0.9 > usage.gates.loc[
        (0, "large"), "top_share"]
    assert "Gates on one expert (at least 90 % of their weight): digit (shared[0]" in page


def test_the_report_shows_a_collapse_and_the_fit_warns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = {"a": X[:, 0], "b": X[:, 1]}
    net = _collapsed_mmoe()
    with pytest.warns(UserWarning, match=r"expert collapse: at level 0, every task's gate"):
        trainer = Trainer(net, max_epochs=1, lr=1e-6, batch_size=32, device="cpu").fit((X, y))
    assert trainer.expert_usage_.n_rows == 120  # no validation data: the training rows
    page = training_report(trainer, created="2024-01-01").to_html()
    strong = " ".join(_parse(page).text.get("strong", []))
    assert "Expert collapse." in strong
    assert "Unused experts: shared[0] (level 0), shared[1] (level 0)" in page


def test_ple_reports_every_level_and_its_shared_gate():
    set_seed(0)
    net = PLE(5, ["a", "b"], n_levels=2, n_shared_experts=2, n_task_experts=1,
              expert_hidden=(8,))
    x = torch.randn(64, 5)
    usage = expert_usage(net, x)
    _check_numbers(usage)
    assert usage.levels == [0, 1]
    assert list(usage.shares.index) == [(0, "a"), (0, "b"), (0, "shared"), (1, "a"), (1, "b")]
    assert np.isnan(usage.shares.loc[(0, "a"), "b[0]"])  # a's gate does not read b's expert
    assert usage.gates.loc[(0, "shared"), "max_entropy"] == pytest.approx(math.log(4))
    assert usage.gates.loc[(1, "a"), "max_entropy"] == pytest.approx(math.log(3))
    assert list(usage.table(1).index) == ["a", "b"]
    # level 0's gates read the input itself: their weights computed here, by the gates alone
    with torch.no_grad():
        for t in ("a", "b"):
            np.testing.assert_allclose(usage.shares.loc[(0, t)].dropna(),
                                       net.task_gates[0][t](x).double().mean(0), rtol=1e-6)
        np.testing.assert_allclose(usage.shares.loc[(0, "shared")].dropna(),
                                   net.shared_gates[0](x).double().mean(0), rtol=1e-6)
    # the last level's gates are gate_weights(x)
    for t, w in net.gate_weights(x).items():
        np.testing.assert_allclose(w.mean(0).numpy(), usage.shares.loc[(1, t)].dropna(),
                                   rtol=1e-6)
    assert has_gates(CGC(5, ["a", "b"])) and not has_gates(torch.nn.Linear(2, 2))
    cgc = expert_usage(CGC(5, ["a", "b"], n_shared_experts=3), x)
    assert cgc.levels == [0] and cgc.gates["max_entropy"].iloc[0] == pytest.approx(math.log(4))


def test_options_are_checked():
    with pytest.raises(ValueError, match="Linear has no gates; pass an MMoE, CGC or PLE"):
        expert_usage(torch.nn.Linear(2, 2), np.zeros((3, 2)))
    # a fitted trainer or wrapper in place of its net: the message names the net to pass
    X, y = np.zeros((8, 5)), np.zeros((8, 2))
    trainer = Trainer(_collapsed_mmoe(), max_epochs=1, device="cpu").fit((X, y))
    with pytest.raises(ValueError, match=r"Trainer has no gates; .*\(the model's net: "
                                         r"trainer\.net; .*trainer\.expert_usage_\)"):
        expert_usage(trainer, X)
    from regmtl.deep import DeepMultiTaskRegressor

    model = DeepMultiTaskRegressor("mmoe", n_experts=2, hidden=(4,), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"the model's net: model\.trainer_\.net"):
        expert_usage(model, X)
    with pytest.raises(ValueError, match="unused"):
        expert_usage(_collapsed_mmoe(), np.zeros((3, 5)), unused=2.0)
    with pytest.raises(ValueError, match="collapse"):
        expert_usage(_collapsed_mmoe(), np.zeros((3, 5)), collapse=0)
    usage = expert_usage(_collapsed_mmoe(), np.zeros((30, 5)), max_rows=7)
    assert usage.n_rows == 7


def test_per_row_data_average_each_gate_over_its_own_rows_and_the_wrapper_names_them():
    from regmtl.deep import DeepMultiTaskRegressor, MultiTaskDataset

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5))
    task = np.repeat([0, 1, 2], [20, 30, 40])
    y = X[:, 0] * (task + 1)
    set_seed(0)
    net = MMoE(5, ["a", "b", "c"], n_experts=3, expert_hidden=(8,))
    ds = MultiTaskDataset(X, y, ["a", "b", "c"], task=task)
    trainer = Trainer(net, max_epochs=1, batch_size=30, device="cpu").fit(ds)
    usage = trainer.expert_usage_
    assert usage.gates["rows"].tolist() == [20, 30, 40]
    for t, rows in zip("abc", [slice(0, 20), slice(20, 50), slice(50, 90)], strict=True):
        own = net.gate_weights(torch.as_tensor(X[rows], dtype=torch.float32))[t]
        np.testing.assert_allclose(usage.shares.loc[(0, t)], own.double().mean(0), rtol=1e-6)
    m = DeepMultiTaskRegressor("mmoe", n_experts=3, hidden=(8,), max_epochs=2,
                               early_stopping=False).fit(X, y, task=np.array(list("xyz"))[task])
    assert m.trainer_.expert_usage_.gates["rows"].sum() == 90
    cells = _parse(training_report(m, created="2024-01-01").to_html()).text.get("td", [])
    assert {"x", "y", "z"} <= set(cells) and "t0" not in cells


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_per_row_data_on_the_gpu_give_each_gate_its_own_rows():
    """A per-row data set moved to CUDA (``ds.to("cuda")``): each row's task lives there, the
    gates' weights are read on the CPU; the usage takes each task's own rows."""
    from regmtl.deep import MultiTaskDataset

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5)).astype(np.float32)
    task = np.repeat([0, 1, 2], [20, 30, 40])
    set_seed(0)
    net = MMoE(5, ["a", "b", "c"], n_experts=3, expert_hidden=(8,))
    ds = MultiTaskDataset(X, X[:, 0] * (task + 1), ["a", "b", "c"], task=task).to("cuda")
    trainer = Trainer(net, max_epochs=1, batch_size=30, device="cuda").fit(ds)
    usage = trainer.expert_usage_
    assert usage.gates["rows"].tolist() == [20, 30, 40]
    for t, rows in zip("abc", [slice(0, 20), slice(20, 50), slice(50, 90)], strict=True):
        own = net.gate_weights(torch.as_tensor(X[rows], device="cuda"))[t].cpu()
        np.testing.assert_allclose(usage.shares.loc[(0, t)], own.double().mean(0), rtol=1e-6)
