"""Target standardization and loss scales: no task dominates by its units.

The label statistics are checked against NumPy, the constant-predictor losses against
scikit-learn and direct evaluation, and the trainer against its defining properties: training
on a*y + b gives a*f + b (units never matter), the normalized squared loss is 1 - R^2, the map
is saved with the net (and a state_dict from before the map loads as the identity).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import log_loss, r2_score

from regmtl.datasets import make_recommender_tasks
from regmtl.deep import HardSharing, TaskSpec, Trainer, load_checkpoint, save_checkpoint, set_seed
from regmtl.deep.scaling import TargetMoments, TargetScale, constant_losses

torch = pytest.importorskip("torch")


def _batches(y, sizes):
    out, i = [], 0
    for s in sizes:
        out.append(torch.from_numpy(y[i:i + s]))
        i += s
    return out


def test_moments_equal_numpy_in_any_batching_and_over_ranks():
    rng = np.random.default_rng(0)
    y = rng.normal(5e4, 3.0, size=(257, 3))  # a large mean: the naive sum of squares fails
    y[rng.random(y.shape) < 0.2] = np.nan
    spec = [TaskSpec("y", n_outputs=3)]
    whole = TargetMoments(spec)
    whole.update("y", torch.from_numpy(y))
    parts = TargetMoments(spec)
    for b in _batches(y, [1, 100, 7, 0, 149]):
        parts.update("y", b)
    for m in (whole, parts):
        np.testing.assert_allclose(m.mean("y").numpy(), np.nanmean(y, 0), rtol=1e-14)
        np.testing.assert_allclose(m.std("y").numpy(), np.nanstd(y, 0), rtol=1e-11)
        np.testing.assert_array_equal(m.n["y"].numpy(), (~np.isnan(y)).sum(0))
    # three ranks, each with a shard, merged through the gather of every rank's summary
    shards = [TargetMoments(spec) for _ in range(3)]
    for r, m in enumerate(shards):
        m.update("y", torch.from_numpy(y[r::3]))
    flats = [m._flat() for m in shards]
    shards[1].merge_ranks(lambda t: flats)
    np.testing.assert_allclose(shards[1].mean("y").numpy(), np.nanmean(y, 0), rtol=1e-14)
    np.testing.assert_allclose(shards[1].std("y").numpy(), np.nanstd(y, 0), rtol=1e-11)


def test_constant_losses_match_direct_evaluation_and_sklearn():
    rng = np.random.default_rng(1)
    n = 400
    tasks = [TaskSpec("sq"), TaskSpec("abs", loss="mae"), TaskSpec("hub", loss="huber"),
             TaskSpec("b", kind="binary"), TaskSpec("m", kind="multiclass", n_outputs=4)]
    y = {"sq": rng.gamma(2.0, 50.0, n), "abs": rng.gamma(2.0, 50.0, n),
         "hub": rng.standard_t(3, n) * 4 + 1, "b": (rng.random(n) < 0.07).astype(float),
         "m": rng.choice(4, n, p=[0.6, 0.3, 0.1, 0.0]).astype(float)}
    y["sq"][::5] = np.nan
    moments = TargetMoments(tasks)
    for k, v in y.items():
        moments.update(k, torch.from_numpy(v))
    scales = {k: TargetScale(1) for k in ("sq", "abs", "hub")}
    for k, s in scales.items():
        s.set(torch.tensor([np.nanmean(y[k])]), torch.tensor([np.nanstd(y[k])]))

    def batches():
        for k, v in y.items():
            yield from ((k, b) for b in _batches(v, [150, 250]))

    c = constant_losses(tasks, moments, scales, batches)
    assert c["sq"] == pytest.approx(0.5, rel=1e-6)  # 1/2 Var / sigma^2 (float32 sigma)
    z = (y["abs"] - y["abs"].mean()) / np.float32(y["abs"].std())
    assert c["abs"] == pytest.approx(np.abs(z).mean(), rel=1e-6)
    z = (y["hub"] - y["hub"].mean()) / np.float32(y["hub"].std())
    huber = np.where(np.abs(z) <= 1, 0.5 * z**2, np.abs(z) - 0.5)
    assert c["hub"] == pytest.approx(huber.mean(), rel=1e-6)
    p = y["b"].mean()
    assert c["b"] == pytest.approx(log_loss(y["b"], np.full(n, p)), rel=1e-12)
    freq = np.bincount(y["m"].astype(int), minlength=4) / n
    assert c["m"] == pytest.approx(log_loss(y["m"], np.tile(freq, (n, 1)), labels=range(4)),
                                   rel=1e-9)


def _problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    a = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(n)
    c = (X[:, 0] + X[:, 3] + rng.logistic(size=n) > 1.5).astype(float)
    return X, a, c


def _fit(X, targets, **kw):
    set_seed(0)
    tasks = [TaskSpec("a"), TaskSpec("c", kind="binary")]
    tr = Trainer(HardSharing(5, tasks, (16,)), max_epochs=8, batch_size=32, lr=1e-2,
                 grad_balance=0, **kw)
    return tr.fit((X, targets), val=(X, targets))


def test_units_never_matter_predictions_are_equivariant():
    """a * y + b trains the same net: predictions a * f + b, the same normalized losses."""
    X, a, c = _problem()
    base = _fit(X, {"a": a, "c": c})
    big = _fit(X, {"a": 2500.0 * a + 4e4, "c": c})
    f0, f1 = base.predict(X)["a"], big.predict(X)["a"]
    np.testing.assert_allclose((f1 - 4e4) / 2500.0, f0, atol=2e-3 * np.std(f0))
    np.testing.assert_allclose(big.predict(X)["c"], base.predict(X)["c"], atol=1e-3)
    for col in ("loss/a", "loss/c", "val_loss/a", "val/a/r2"):
        np.testing.assert_allclose(big.history[col], base.history[col], rtol=2e-3, atol=1e-5)
    # the map: mean and standard deviation of the training targets, in the net's state
    s = big.net.target_scales["a"]
    assert float(s.mean) == pytest.approx((2500.0 * a + 4e4).mean(), rel=1e-6)
    assert float(s.scale) == pytest.approx(2500.0 * a.std(), rel=1e-6)
    assert "c" not in big.net.target_scales
    # metrics are in the target's units: r2 on the raw predictions
    assert big.history["val/a/r2"].iloc[-1] == pytest.approx(
        r2_score(2500.0 * a + 4e4, f1), abs=1e-6)


def test_normalized_losses_are_one_minus_r2_and_entropy_ratios():
    X, a, c = _problem()
    tr = _fit(X, {"a": 7.0 * a - 3.0, "c": c})
    h = tr.history
    # squared loss on standardized targets over its constant's 1/2: 1 - R^2 on the data
    np.testing.assert_allclose(h["val_loss/a"], 1.0 - h["val/a/r2"], atol=1e-6)
    p = c.mean()
    assert tr.loss_scale_["a"] == pytest.approx(0.5, rel=1e-6)
    assert tr.loss_scale_["c"] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)),
                                                rel=1e-6)
    np.testing.assert_allclose(h["val_loss/c"], h["val/c/log_loss"] / tr.loss_scale_["c"],
                               rtol=1e-5)
    assert (h["val_loss/a"].iloc[-1] < 1) and (h["val_loss/c"].iloc[-1] < 1)
    # off: the losses of the specs, the raw units
    raw = _fit(X, {"a": 7.0 * a - 3.0, "c": c}, standardize=False, normalize_losses=False)
    assert raw.loss_scale_ == {"a": 1.0, "c": 1.0}
    assert raw.net.target_scales["a"].is_identity()
    pred = raw.predict(X)
    mse = 0.5 * np.mean((pred["a"] - (7.0 * a - 3.0)) ** 2)
    assert raw.history["val_loss/a"].iloc[-1] == pytest.approx(mse, rel=1e-5)


def test_the_map_is_saved_and_kept_and_old_state_dicts_load_as_identity(tmp_path):
    X, a, c = _problem()
    tr = _fit(X, {"a": 300.0 * a + 10.0, "c": c}, device="cpu")  # (the net read directly)
    net = tr.net
    before = net(torch.from_numpy(X))["a"].detach().clone()
    save_checkpoint(tmp_path / "ck", net)
    again = load_checkpoint(tmp_path / "ck").eval()
    torch.testing.assert_close(again(torch.from_numpy(X))["a"], before, rtol=0, atol=0)
    # a second fit keeps the map the net holds (units of the first fit)
    mean = float(net.target_scales["a"].mean)
    Trainer(net, max_epochs=1, grad_balance=0).fit((X, {"a": a, "c": c}))
    assert float(net.target_scales["a"].mean) == mean
    # a state_dict written before nets held target maps loads as the identity
    state = {k: v for k, v in again.state_dict().items() if not k.startswith("target_scales")}
    torch.save(state, tmp_path / "ck" / "model.pt")
    old = load_checkpoint(tmp_path / "ck")
    assert old.target_scales["a"].is_identity()
    with old.standardized_outputs():
        h = old.eval()(torch.from_numpy(X))["a"]
    torch.testing.assert_close(old(torch.from_numpy(X))["a"].float(), h)


def test_constant_labels_are_left_unnormalized_with_a_warning():
    X, a, _ = _problem(n=64)
    set_seed(0)
    net = HardSharing(5, [TaskSpec("a"), TaskSpec("c", kind="binary")], (8,))
    with pytest.warns(UserWarning, match="task 'c': every training label is the same"):
        tr = Trainer(net, max_epochs=1, grad_balance=0).fit((X, {"a": a, "c": np.ones(64)}))
    assert tr.loss_scale_["c"] == 1.0 and tr.loss_scale_["a"] == pytest.approx(0.5, rel=1e-6)


def test_per_task_data_and_loaders_give_the_same_scales():
    """A dict of per-task sets and a DataLoader read the same labels as one table."""
    X, a, c = _problem()
    y = {"a": 40.0 * a + 5.0, "c": c}
    table = _fit(X, y)
    loader = torch.utils.data.DataLoader(
        [(torch.from_numpy(X[i]), {"a": torch.tensor(y["a"][i]), "c": torch.tensor(c[i])})
         for i in range(len(X))], batch_size=37)
    set_seed(0)
    net = HardSharing(5, [TaskSpec("a"), TaskSpec("c", kind="binary")], (16,))
    from_loader = Trainer(net, max_epochs=1, grad_balance=0).fit(loader)
    set_seed(0)
    net = HardSharing(5, [TaskSpec("a"), TaskSpec("c", kind="binary")], (16,))
    per_task = Trainer(net, max_epochs=1, grad_balance=0).fit(
        {"a": (X[:200], y["a"][:200]), "c": (X, c)})
    for k in ("a", "c"):
        assert from_loader.loss_scale_[k] == pytest.approx(table.loss_scale_[k], rel=1e-5)
    assert float(from_loader.net.target_scales["a"].scale) == pytest.approx(
        float(table.net.target_scales["a"].scale), rel=1e-5)
    assert float(per_task.net.target_scales["a"].mean) == pytest.approx(y["a"][:200].mean(),
                                                                        rel=1e-6)


@pytest.mark.parametrize("weighting", ["gradnorm", "uncertainty"])
def test_raw_ratings_no_task_worse_than_its_constant(weighting):
    """The issue's recommender tasks with ratings in their 1-5 units: every task ends below
    its constant predictor (normalized validation loss < 1) with adaptive weights."""
    data = make_recommender_tasks(n_samples=3000, random_state=0)
    X = data.X.astype(np.float32)
    targets = {k: data.Y[:, j] for j, k in enumerate(("click", "purchase", "rating"))}
    tasks = [TaskSpec(k, kind=data.kinds[k]) for k in targets]
    tr_idx, va_idx = np.arange(2400), np.arange(2400, 3000)
    set_seed(0)
    net = HardSharing(X.shape[1], tasks, (32,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no task dominates the trunk
        tr = Trainer(net, weighting=weighting, max_epochs=6, batch_size=64, lr=3e-3).fit(
            (X[tr_idx], {k: v[tr_idx] for k, v in targets.items()}),
            val=(X[va_idx], {k: v[va_idx] for k, v in targets.items()}))
    last = tr.history.iloc[-1]
    for k in targets:
        assert last[f"val_loss/{k}"] < 1.0, (k, last[f"val_loss/{k}"])
    assert last["val/rating/r2"] > 0


def test_a_refused_fit_leaves_the_net_as_it_was():
    X, a, c = _problem(n=64)
    set_seed(0)
    net = HardSharing(5, [TaskSpec("a"), TaskSpec("c", kind="binary")], (8,))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Trainer(net, optimizer="lbfgsx").fit((X, {"a": 9.0 * a + 4.0, "c": c}))
    assert net.target_scales["a"].is_identity()


def test_the_map_keeps_its_precision_under_mixed_precision_outputs():
    """A bfloat16 head output (AMP) is mapped in the buffers' float64: a mean of 4e4 keeps
    its digits (in bfloat16 the spacing there is 256)."""
    s = TargetScale(1)
    s.set(torch.tensor([4e4]), torch.tensor([3.0]))
    out = s(torch.tensor([[0.125]], dtype=torch.bfloat16))
    assert out.dtype == torch.float64
    assert float(out) == pytest.approx(4e4 + 0.375, abs=1e-3)


def test_the_switches_must_be_booleans():
    net = HardSharing(5, [TaskSpec("a")], (8,))
    with pytest.raises(ValueError, match="standardize must be True or False, got 'yes'"):
        Trainer(net, standardize="yes")
    with pytest.raises(ValueError, match="normalize_losses must be True or False, got 1"):
        Trainer(net, normalize_losses=1)


def test_targets_far_from_zero_are_exact():
    """The map is float64 and the mean is taken out before the net's float32: targets of
    1.7e9 + 10 x0 + noise (float32's spacing there is 128) are learned as well as the linear
    model learns them (RMSE within 1.5x), with no warning; a spread that overflows float64 is
    refused naming the task, before the net is touched."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = 1.7e9 + 10 * X[:, 0] + rng.standard_normal(400)
    Xt = rng.standard_normal((400, 3))
    yt = 1.7e9 + 10 * Xt[:, 0] + rng.standard_normal(400)
    set_seed(0)
    net = HardSharing(3, [TaskSpec("price")], (16,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        Trainer(net, max_epochs=30, batch_size=32, lr=1e-2).fit((X, {"price": y}))
    assert float(net.target_scales["price"].mean) == pytest.approx(y.mean(), rel=1e-15)
    pred = Trainer(net).predict(Xt)["price"]
    assert pred.dtype == np.float64
    rmse = float(np.sqrt(np.mean((pred - yt) ** 2)))
    lin = LinearRegression().fit(X, y)
    rmse_lin = float(np.sqrt(np.mean((lin.predict(Xt) - yt) ** 2)))
    assert rmse < 1.5 * rmse_lin, (rmse, rmse_lin)
    other = HardSharing(3, [TaskSpec("price")], (4,))
    with pytest.raises(ValueError, match=r"targets\['price'\].*overflow float64"):
        Trainer(other, max_epochs=1).fit((X, {"price": 1e307 * X[:, 0]}))
    assert other.target_scales["price"].is_identity()
