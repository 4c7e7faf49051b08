"""Count tasks (Poisson, log link), Huber with a delta and quantile (pinball) regression in the
deep half: loss values against hand computations and torch, no overflow at |f| = 700, learning
on synthetic data, the wrappers' ``loss=``, saving, and the refusals of bad inputs."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    HardSharing,
    MultiTaskDataset,
    TaskSpec,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)
from regmtl.deep.tasks import LOG_MEAN_MAX, mean_poisson_deviance, pinball  # noqa: E402

F = torch.nn.functional
FAST = dict(hidden=(8,), max_epochs=3, batch_size=64)


def _loss(spec, f, y):
    """The per-element losses of ``spec`` on outputs ``f`` (B,) and labels ``y`` (B,)."""
    per, _ = spec.row_losses(f[:, None], y)
    return per


# ------------------------------------------------------------------ loss values
def test_poisson_loss_is_torch_poisson_nll_plus_the_stated_constant():
    """e^f - y f + y log y - y: torch's ``poisson_nll_loss(log_input=True, full=False)`` plus
    y log y - y (0 log 0 = 0), and 0 at the mean f = log y."""
    spec = TaskSpec("visits", kind="count")
    f = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.0, 4.0], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 3.0, 2.0, 7.5, 40.0], dtype=torch.float64)
    got = _loss(spec, f, y)
    ref = F.poisson_nll_loss(f, y, log_input=True, full=False, reduction="none")
    assert torch.allclose(got, ref + torch.special.xlogy(y, y) - y, rtol=0, atol=1e-12)
    # by hand: f = 0.7, y = 2 -> e^0.7 - 1.4 + 2 log 2 - 2
    assert float(got[3]) == pytest.approx(math.exp(0.7) - 1.4 + 2 * math.log(2) - 2, abs=1e-12)
    at_mean = _loss(spec, torch.log(torch.tensor([1.0, 3.0, 7.5])), torch.tensor([1.0, 3.0, 7.5]))
    assert torch.allclose(at_mean, torch.zeros(3), atol=1e-6)
    assert spec.task_loss(f[:, None], y) == pytest.approx(float(got.mean()), abs=1e-12)


def test_huber_and_pinball_losses_by_hand():
    f = torch.zeros(4, dtype=torch.float64)
    y = torch.tensor([1.0, -3.0, 2.0, -2.0], dtype=torch.float64)
    huber = _loss(TaskSpec("h", loss=("huber", 2.0)), f, y)
    # |r| <= 2: r^2 / 2; beyond: 2 |r| - 2
    assert huber.tolist() == pytest.approx([0.5, 4.0, 2.0, 2.0])
    assert torch.allclose(huber, F.huber_loss(f, y, delta=2.0, reduction="none"))
    q = _loss(TaskSpec("q", loss=("quantile", 0.9)), f, y)
    # tau r+ + (1 - tau) r-: r = y - f
    assert q.tolist() == pytest.approx([0.9, 0.3, 1.8, 0.2])
    assert TaskSpec("m", loss="quantile").quantile == 0.5  # alone: the median
    assert TaskSpec("h1", loss="huber").loss == "huber"  # as before: delta 1
    y_np, p_np = y.numpy(), np.array([0.5, -1.0, 2.5, 0.0])
    from sklearn.metrics import mean_pinball_loss

    assert pinball(0.9, y_np, p_np) == pytest.approx(mean_pinball_loss(y_np, p_np, alpha=0.9))


def test_mean_poisson_deviance_is_sklearns_and_finite_at_a_zero_mean():
    from sklearn.metrics import mean_poisson_deviance as sk

    y, mu = np.array([0.0, 1.0, 4.0, 2.5]), np.array([0.3, 1.2, 3.0, 2.5])
    assert mean_poisson_deviance(y, mu) == pytest.approx(sk(y, mu), rel=1e-12)
    assert math.isfinite(mean_poisson_deviance(y, np.array([0.0, 1.0, 1.0, 1.0])))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_no_overflow_at_a_log_mean_of_700(dtype):
    """Loss, gradient and mean count finite for f = ±700 (and beyond the edge the loss keeps
    the slope e^50 - y, so a too-large output is pushed down)."""
    spec = TaskSpec("c", kind="count")
    f = torch.tensor([-700.0, -60.0, 0.0, 60.0, 700.0], dtype=dtype, requires_grad=True)
    y = torch.tensor([3.0, 0.0, 1.0, 2.0, 5.0], dtype=dtype)
    per = _loss(spec, f, y)
    per.sum().backward()
    assert torch.isfinite(per).all() and torch.isfinite(f.grad).all()
    grad = f.grad.double()
    assert float(grad[0]) == pytest.approx(-3.0)  # e^-700 - y
    edge = math.exp(LOG_MEAN_MAX)
    assert float(grad[4]) == pytest.approx(edge - 5.0, rel=1e-2)
    assert float(grad[3]) == pytest.approx(edge - 2.0, rel=1e-2)
    mean = spec.transform(f.detach()[:, None])
    assert torch.isfinite(mean).all() and bool((mean >= 0).all())
    assert float(mean[4]) == pytest.approx(edge, rel=1e-2)
    loss = spec.task_loss(f.detach()[:, None].float(), y.float())  # the batch mean too
    assert math.isfinite(float(loss))


# ------------------------------------------------------------------ learning
def _poisson_data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.poisson(np.exp(0.5 + 0.8 * X[:, 0] - 0.5 * X[:, 1])).astype(np.float64)
    return X, y


def test_a_count_task_learns_the_poisson_mean():
    """Synthetic Poisson data, log mean 0.5 + 0.8 x0 - 0.5 x1: the held-out mean Poisson
    deviance falls well below the constant mean's (measured 0.35 of it; bar 0.6)."""
    X, y = _poisson_data(1000)
    torch.manual_seed(0)
    net = HardSharing(4, [TaskSpec("c", kind="count")], (16,))
    tr = Trainer(net, lr=1e-2, batch_size=128, max_epochs=10, seed=0)
    tr.fit((X[:666], {"c": y[:666]}))
    mean = tr.predict(X[666:])["c"]
    assert mean.shape == (334,) and bool((mean > 0).all())
    dev = mean_poisson_deviance(y[666:], mean)
    const = mean_poisson_deviance(y[666:], np.full(334, y[:666].mean()))
    assert dev < 0.6 * const, (dev, const)
    # the constant predictor's loss: half its mean deviance on the training labels
    half = 0.5 * mean_poisson_deviance(y[:666], np.full(666, y[:666].mean()))
    assert tr.loss_scale_["c"] == pytest.approx(half, rel=1e-4)


def test_a_quantile_task_covers_its_level_on_held_out_rows():
    """tau = 0.9 on heteroscedastic noise: the share of held-out targets below the
    prediction is 0.9 (measured 0.89 to 0.91; bar ±0.05)."""
    rng = np.random.default_rng(1)
    n = 1500
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = 1 + X[:, 0] + rng.standard_normal(n) * (1 + 0.5 * np.abs(X[:, 1]))
    torch.manual_seed(0)
    net = HardSharing(3, [TaskSpec("q", loss=("quantile", 0.9))], (16,))
    tr = Trainer(net, lr=1e-2, batch_size=128, max_epochs=15, seed=0)
    tr.fit((X[:1000], {"q": y[:1000]}), (X[1000:], {"q": y[1000:]}))
    pred = tr.predict(X[1000:])["q"]
    assert abs(float(np.mean(y[1000:] <= pred)) - 0.9) < 0.05
    best = tr.history[tr.history["epoch"] == tr.best_epoch_]  # the weights the net kept
    assert float(best["val/q/pinball"].iloc[0]) == pytest.approx(pinball(0.9, y[1000:], pred),
                                                                  rel=1e-4)


def _contaminated(n, seed=0):
    """y = 3 x0 + noise, 10% of the training rows shifted by +60 (one-sided outliers)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    clean = 3 * X[:, 0]
    y = clean + 0.5 * rng.standard_normal(n)
    out = rng.random(n) < 0.1
    return X, clean, y + 60 * out


def test_huber_resists_outliers_that_pull_the_squared_loss():
    """Through the wrapper, delta = 1 in the target's units: the held-out error against the
    clean signal is many times smaller than the squared loss's, which the outliers shift by
    their mean, 6 (measured MAE 0.29 against 6.0; bar: below a quarter)."""
    X, clean, y = _contaminated(600)
    kw = dict(hidden=(16,), max_epochs=15, batch_size=64, lr=1e-2, early_stopping=False)
    huber = DeepMultiTaskRegressor(loss=("huber", 1.0), **kw).fit(X[:400], y[:400])
    squared = DeepMultiTaskRegressor(**kw).fit(X[:400], y[:400])
    err_h = np.mean(np.abs(huber.predict(X[400:]) - clean[400:]))
    err_s = np.mean(np.abs(squared.predict(X[400:]) - clean[400:]))
    assert err_h < 0.25 * err_s, (err_h, err_s)
    # the delta was divided by the standard deviation the targets were standardized with
    (name, delta), sd = huber.net_.tasks[0].loss, huber.y_scale_[0]
    assert name == "huber" and delta == pytest.approx(1.0 / sd)
    assert sd == pytest.approx(np.std(y[:400]))


# ------------------------------------------------------------------ the wrappers' loss=
def test_regressor_loss_per_task_gives_counts_means_and_quantiles():
    X, visits = _poisson_data(300)
    demand = 100 + 10 * X[:, 1]
    Y = np.column_stack([visits, demand, demand])
    m = DeepMultiTaskRegressor(loss=["poisson", ("quantile", 0.9), "huber"], device="cpu",
                               **FAST).fit(X, Y)  # (the net read directly)
    kinds = [(t.kind, t.loss) for t in m.net_.tasks]
    assert kinds == [("count", "poisson"), ("regression", ("quantile", 0.9)),
                     ("regression", "huber")]
    # the count target is not standardized; the others are
    assert m.y_mean_[0] == 0.0 and m.y_scale_[0] == 1.0 and "t0" not in m.net_.target_scales
    assert m.y_scale_[1] == pytest.approx(np.std(demand), rel=0.05)
    pred = m.predict(X)
    with torch.no_grad():
        log_mean = m.net_(m.net_inputs(X))["t0"][:, 0].double().numpy()
    assert np.allclose(pred[:, 0], np.exp(log_mean), rtol=1e-6)
    assert math.isfinite(m.score(X, Y))


@pytest.mark.parametrize("architecture", ["hard", "mmoe"])
def test_count_heads_start_at_the_mean_count(architecture):
    """The wrappers start a count head's output bias at the log of its mean training label:
    before any real training the predicted means are near the mean (60 here), not near 1."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = rng.poisson(60 * np.exp(0.3 * X[:, 0])).astype(float)
    m = DeepMultiTaskRegressor(architecture, loss="poisson", hidden=(8,), max_epochs=1,
                               lr=1e-6, early_stopping=False).fit(X, y)
    ratio = np.median(m.predict(X)) / y.mean()
    assert 0.5 < ratio < 2.0, ratio
    # the constant predictor's normalized loss is 1; measured 2.5 (the heads' random weights),
    # against about 70 for a head started at a mean of 1
    assert m.history_["loss"].iloc[0] < 5.0


def test_one_loss_for_every_task_and_the_long_form():
    X, visits = _poisson_data(300)
    task = np.repeat([0, 1], 150)
    m = DeepMultiTaskRegressor(loss="poisson", **FAST).fit(X, visits, task=task)
    assert [t.kind for t in m.net_.tasks] == ["count", "count"]
    assert bool((m.predict(X, task=task) > 0).all())
    y = X[:, 0] * np.where(task == 0, 50.0, 1.0)
    h = DeepMultiTaskRegressor(loss=("huber", 2.0), **FAST).fit(X, y, task=task)
    deltas = [t.loss[1] for t in h.net_.tasks]  # delta 2 in each task's own units
    assert deltas == pytest.approx([2.0 / s for s in h.y_scale_])
    assert h.y_scale_[0] > 10 * h.y_scale_[1]


def test_mixed_model_takes_count_kinds_and_losses():
    X, visits = _poisson_data(300)
    click = (X[:, 0] > 0).astype(float)
    Y = np.column_stack([click, visits, X[:, 1]])
    m = DeepMultiTaskModel(loss=[None, "poisson", ("quantile", 0.2)], **FAST).fit(X, Y)
    assert m.kinds_.tolist() == ["binary", "count", "regression"]
    assert m.net_.tasks[2].loss == ("quantile", 0.2)
    pred = m.predict(X)
    assert bool((pred[:, 1] > 0).all())
    k = DeepMultiTaskModel(kinds=["classification", "count", "regression"], **FAST).fit(X, Y)
    assert k.kinds_.tolist() == ["binary", "count", "regression"]
    assert k.net_.tasks[1].loss == "poisson" and k.net_.tasks[2].loss == "mse"
    assert math.isfinite(k.score(X, Y))


# ------------------------------------------------------------------ saving
def test_saved_wrappers_with_the_new_losses_round_trip(tmp_path):
    X, visits = _poisson_data(200)
    Y = np.column_stack([visits, X[:, 1] * 20 + 3])
    m = DeepMultiTaskRegressor(loss=["poisson", ("huber", 5.0)], **FAST).fit(X, Y)
    m.save(tmp_path / "reg")
    again = regmtl.load(tmp_path / "reg")
    assert again.loss == ["poisson", ("huber", 5.0)]
    assert np.array_equal(again.predict(X), m.predict(X))
    assert [t.loss for t in again.net_.tasks] == [t.loss for t in m.net_.tasks]
    mixed = DeepMultiTaskModel(loss=[None, "poisson"], **FAST).fit(
        X, np.column_stack([(X[:, 0] > 0).astype(float), visits]))
    mixed.save(tmp_path / "mixed")
    back = regmtl.load(tmp_path / "mixed")
    assert back.kinds_.tolist() == ["binary", "count"]
    assert np.array_equal(back.predict(X).astype(float), mixed.predict(X).astype(float))


def test_net_checkpoints_keep_the_new_kinds_and_losses(tmp_path):
    specs = [TaskSpec("c", kind="count"), TaskSpec("q", loss=("quantile", 0.75)),
             TaskSpec("h", loss=("huber", 0.3))]
    net = HardSharing(4, specs, (8,))
    folder = save_checkpoint(tmp_path / "ck", net)
    back = load_checkpoint(folder)
    assert back.tasks == specs
    assert back.tasks[1].metrics == ("pinball", "mae")
    assert TaskSpec.from_config(json.loads(json.dumps(specs[2].to_config()))) == specs[2]


def _edit(folder, edit):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("loss, words", [
    (["quantile", 1.5], ["tau", "(0, 1)"]),
    (["huber", -1.0], ["delta", "> 0"]),
    (["huber", "big"], ["delta"]),
    (["poisson", 1.0], ["('huber', delta)"]),
    ({"evil": 1}, ["wrong type"]),
])
def test_tampered_loss_in_a_net_checkpoint_is_refused(tmp_path, loss, words):
    net = HardSharing(4, [TaskSpec("q", loss=("quantile", 0.75))], (8,))
    folder = save_checkpoint(tmp_path / "ck", net)
    _edit(folder, lambda c: c["net_config"]["tasks"][0].update(loss=loss))
    with pytest.raises(ValueError) as info:
        load_checkpoint(folder)
    for w in words:
        assert w in str(info.value), str(info.value)


@pytest.mark.parametrize("loss, words", [
    ({"tuple": ["quantile", 2.0]}, ["tau"]),
    ({"tuple": ["huber", 0]}, ["delta"]),
    ("gamma", ["'gamma'"]),
    ({"list": ["poisson"]}, ["one loss per task"]),
    ({"list": ["squared", "squared"]}, ["heads"]),  # the net's count head is not a regression
])
def test_tampered_loss_of_a_saved_wrapper_is_refused(tmp_path, loss, words):
    X, visits = _poisson_data(100)
    DeepMultiTaskRegressor(loss=["poisson", "squared"], **FAST).fit(
        X, np.column_stack([visits, X[:, 0]])).save(tmp_path / "est")
    _edit(tmp_path / "est", lambda c: c["estimator"]["params"].update(loss=loss))
    with pytest.raises(ValueError) as info:
        regmtl.load(tmp_path / "est")
    assert "config.json was refused" in str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("kw, words", [
    (dict(loss=("quantile", 0.0)), ["TaskSpec 'y'", "tau", "(0, 1)"]),
    (dict(loss=("quantile", 1.2)), ["tau", "1.2"]),
    (dict(loss=("huber", 0.0)), ["TaskSpec 'y'", "delta", "> 0"]),
    (dict(loss=("huber", float("inf"))), ["delta"]),
    (dict(loss=("huber", True)), ["delta"]),
    (dict(loss=("mse", 1.0)), ["('huber', delta) or ('quantile', tau)"]),
    (dict(loss=("huber", 1.0, 2.0)), ["('huber', delta)"]),
    (dict(kind="count", loss="mse"), ["'mse' is for regression"]),
    (dict(loss="poisson"), ["'poisson' is for count"]),
    (dict(kind="count", n_outputs=2), ["one output", "log mean"]),
    (dict(metrics=("pinball",)), ["'pinball' needs a quantile loss"]),
])
def test_spec_refusals_name_the_argument(kw, words):
    with pytest.raises(ValueError) as info:
        TaskSpec("y", **kw)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_negative_counts_are_refused_naming_the_task():
    spec = TaskSpec("visits", kind="count")
    with pytest.raises(ValueError, match=r"visits.*count task.*>= 0.*\[-2.0\]"):
        spec.check_target(np.array([1.0, -2.0, np.nan]))
    X = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="visits"):
        MultiTaskDataset(X, {"visits": np.array([1.0, -1.0, 0.0])}, [spec])
    with pytest.raises(ValueError, match=r"row 1 of task 'visits' \(count\).*>= 0"):
        MultiTaskDataset(X, np.array([1.0, -1.0, 0.5]), [TaskSpec("a"), spec],
                         task=np.array([1, 1, 0]))
    with pytest.raises(ValueError, match=r"task 'stores' is a count task.*>= 0"):
        DeepMultiTaskRegressor(loss="poisson", **FAST).fit(
            {"stores": X}, {"stores": np.array([1.0, -1.0, 2.0])})


@pytest.mark.parametrize("loss, words", [
    (("quantile", 1.0), ["loss=('quantile', 1.0)", "tau", "(0, 1)"]),
    (("huber", -2), ["loss=('huber', -2)", "delta", "> 0"]),
    ("gamma", ["loss='gamma'", "poisson"]),
    (["poisson"], ["one loss per task (2)"]),
    (["poisson", ("quantile", 9)], ["loss[1]=('quantile', 9)", "tau"]),
    (["quantile", 0.9], ["loss[1]=0.9", "is not a loss"]),
])
def test_wrapper_loss_refusals_name_the_argument(loss, words):
    X, visits = _poisson_data(40)
    with pytest.raises(ValueError) as info:
        DeepMultiTaskRegressor(loss=loss, **FAST).fit(X, np.column_stack([visits, visits]))
    for w in words:
        assert w in str(info.value), str(info.value)


def test_mixed_model_refuses_a_loss_that_contradicts_the_kind():
    X, visits = _poisson_data(60)
    with pytest.raises(ValueError, match="asked to be a regression.*'poisson'"):
        DeepMultiTaskModel(kinds=["regression"], loss=["poisson"], **FAST).fit(X, visits)
    with pytest.raises(ValueError, match="count task.*>= 0"):
        DeepMultiTaskModel(kinds=["count"], **FAST).fit(X, visits - 5)
