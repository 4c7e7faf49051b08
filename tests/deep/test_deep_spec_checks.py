"""Counts are ints, never truncated (TaskSpec's n_outputs, the nets' widths and expert counts),
and a loss callable returns one value per element of the target, as documented: anything
else is refused naming the task, the loss and the shape."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import CGC, PLE, HardSharing, MMoE, TaskSpec, Trainer, set_seed  # noqa: E402


@pytest.mark.parametrize("kw", [
    dict(n_outputs=2.7), dict(kind="multiclass", n_outputs=3.9), dict(n_outputs="3"),
    dict(n_outputs=True), dict(kind="multiclass", n_outputs=np.float64(3.0)),
])
def test_n_outputs_must_be_an_int(kw):
    with pytest.raises(ValueError, match=r"TaskSpec 'a': n_outputs must be an int"):
        TaskSpec("a", **kw)


def test_numpy_ints_and_reals_pass_as_before():
    assert TaskSpec("a", kind="multiclass", n_outputs=np.int64(3)).n_outputs == 3
    assert TaskSpec("a", weight=np.float32(0.5)).weight == 0.5
    with pytest.raises(ValueError, match="weight must be"):
        TaskSpec("a", weight=True)


@pytest.mark.parametrize("make", [
    lambda: HardSharing(3, ["a"], hidden=(8.7,)),
    lambda: HardSharing(3, ["a"], hidden=("8",)),
    lambda: HardSharing(3, ["a"], hidden=(8,), head_hidden=(4.5,)),
    lambda: HardSharing(3.5, ["a"]),
    lambda: MMoE(3, ["a"], n_experts=2.5),
    lambda: MMoE(3, ["a"], expert_hidden=(8.5,)),
    lambda: MMoE(3, ["a"], tower_hidden=(4.5,)),
    lambda: PLE(3, ["a"], n_levels=1.5),
    lambda: CGC(3, ["a"], n_shared_experts=2.5),
])
def test_net_counts_are_not_truncated(make):
    with pytest.raises(ValueError, match=r"(hidden\[0\]|n_features|n_experts|n_levels|"
                                         r"n_shared_experts) must be an int"):
        make()


def _data(n=40, missing=False):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3))
    a = X[:, 0].copy()
    if missing:
        a[:5] = np.nan
    return X, {"a": a, "b": X[:, 1]}


def mean_loss(f, y):
    return ((f - y) ** 2).mean()


def wide_loss(f, y):
    return (f[:, None] - y[:, None]).repeat(1, 3) ** 2


def float_loss(f, y):
    return 1.0


@pytest.mark.parametrize("missing", [False, True])  # the complete and the masked paths
@pytest.mark.parametrize("loss, got", [
    (mean_loss, r"a tensor of shape \(\)"), (wide_loss, r"a tensor of shape \(\d+, 3\)"),
    (float_loss, "a float"),
])
def test_a_loss_not_per_element_is_refused_naming_task_loss_and_shape(loss, got, missing):
    X, y = _data(missing=missing)
    set_seed(0)
    net = HardSharing(3, [TaskSpec("a", loss=loss), "b"], hidden=(4,))
    # the constant predictor's loss and the training batches alike
    for normalize in (True, False):
        with pytest.raises(ValueError, match=rf"TaskSpec 'a': its loss {loss.__name__} "
                                             rf"returned {got} for a target batch of shape "
                                             r"\(\d+,\); a loss callable returns one value "
                                             r"per element"):
            Trainer(net, max_epochs=1, batch_size=16,
                    normalize_losses=normalize).fit((X, y))


def test_a_per_element_loss_still_trains_and_matches_mse():
    X, y = _data()
    out = []
    for loss in (lambda f, t: 0.5 * (f - t) ** 2, "mse"):
        set_seed(0)
        net = HardSharing(3, [TaskSpec("a", loss=loss), "b"], hidden=(4,))
        out.append(Trainer(net, max_epochs=2, batch_size=16).fit((X, y)).history["loss/a"])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_a_multiclass_loss_returns_one_value_per_row():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = {"c": rng.integers(0, 3, 30).astype(float)}
    def ce_per_class(f, t):  # (B, K): not one value per row
        return torch.nn.functional.cross_entropy(f, t.long(), reduction="none")[:, None] \
            .expand(-1, 3)
    set_seed(0)
    net = HardSharing(3, [TaskSpec("c", kind="multiclass", n_outputs=3, loss=ce_per_class)],
                      hidden=(4,))
    with pytest.raises(ValueError, match=r"shape \(\d+, 3\) for a target batch of shape "
                                         r"\(\d+,\)"):
        Trainer(net, max_epochs=1, batch_size=16, normalize_losses=False).fit((X, y))
