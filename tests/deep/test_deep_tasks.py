"""TaskSpec: validation, masked losses against hand computations, gradients of missing labels,
metrics against scikit-learn."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn import metrics as skm  # noqa: E402

from regmtl.deep import Metric, TaskSpec  # noqa: E402
from regmtl.deep.tasks import as_task_specs  # noqa: E402


@pytest.mark.parametrize("kw, match", [
    (dict(kind="ordinal"), "kind must be one of"),
    (dict(kind="multiclass"), "needs n_outputs"),
    (dict(kind="multiclass", n_outputs=1), "needs n_outputs"),
    (dict(kind="binary", n_outputs=2), "one output"),
    (dict(n_outputs=0), "n_outputs must be >= 1"),
    (dict(loss="hinge"), "unknown loss"),
    (dict(kind="binary", loss="mse"), "is for regression tasks"),
    (dict(loss=3), "must be a name or a callable"),
    (dict(weight=-1.0), "weight must be"),
    (dict(weight=float("nan")), "weight must be"),
    (dict(metrics=("auc",)), "unknown metric 'auc'"),
])
def test_spec_errors_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        TaskSpec("a", **kw)


def test_spec_defaults_and_names():
    assert TaskSpec("r").n_outputs == 1 and TaskSpec("r").loss == "mse"
    assert TaskSpec("b", kind="binary").metrics == ("auc", "accuracy", "log_loss")
    assert TaskSpec("m", kind="multiclass", n_outputs=3).loss == "ce"
    with pytest.raises(ValueError, match="unique"):
        as_task_specs(["a", "a"])
    specs = as_task_specs({"a": "binary", "b": {"kind": "multiclass", "n_outputs": 4}})
    assert [s.kind for s in specs] == ["binary", "multiclass"] and specs[1].n_outputs == 4


def _rng_batch(seed=0, n=32, k=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64), g


def test_masked_mse_is_the_mean_over_observed():
    out, g = _rng_batch()
    y = torch.randn(32, generator=g, dtype=torch.float64)
    y[::3] = float("nan")
    loss = TaskSpec("r").task_loss(out, y)
    o, t = out[:, 0].numpy(), y.numpy()
    m = ~np.isnan(t)
    assert loss.item() == pytest.approx(0.5 * np.mean((o[m] - t[m]) ** 2), rel=1e-12)


def test_masked_bce_and_ce_match_sklearn_log_loss():
    out, g = _rng_batch(1)
    y = (torch.rand(32, generator=g) > 0.5).double()
    y[5:9] = float("nan")
    m = ~torch.isnan(y)
    p = torch.sigmoid(out[:, 0]).numpy()
    ref = skm.log_loss(y[m].numpy(), p[m.numpy()], labels=[0, 1])
    assert TaskSpec("b", kind="binary").task_loss(out, y).item() == pytest.approx(ref, rel=1e-10)
    logits, g = _rng_batch(2, k=4)
    y = torch.randint(0, 4, (32,), generator=g).double()
    y[:7] = float("nan")
    m = ~torch.isnan(y)
    P = torch.softmax(logits, 1).numpy()
    ref = skm.log_loss(y[m].numpy(), P[m.numpy()], labels=[0, 1, 2, 3])
    spec = TaskSpec("m", kind="multiclass", n_outputs=4)
    assert spec.task_loss(logits, y).item() == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("spec", [TaskSpec("r"), TaskSpec("b", kind="binary"),
                                  TaskSpec("m", kind="multiclass", n_outputs=3),
                                  TaskSpec("h", loss="huber"), TaskSpec("v", n_outputs=2)])
def test_missing_labels_contribute_nothing(spec):
    """Gradient check: masked rows get exactly zero gradient, whatever their label would be,
    and the observed rows' gradient equals the loss on the observed rows alone."""
    n = 20
    out = torch.randn(n, spec.n_outputs, dtype=torch.float64, requires_grad=True)
    if spec.kind == "regression":
        y = torch.randn(n, spec.n_outputs, dtype=torch.float64).squeeze(1) \
            if spec.n_outputs == 1 else torch.randn(n, 2, dtype=torch.float64)
    else:
        y = torch.randint(0, max(spec.n_outputs, 2), (n,)).double()
    y_nan = y.clone()
    y_nan[3:11] = float("nan")
    loss = spec.task_loss(out, y_nan)
    (g,) = torch.autograd.grad(loss, out)
    assert torch.all(g[3:11] == 0.0) and torch.isfinite(g).all()
    keep = torch.ones(n, dtype=torch.bool)
    keep[3:11] = False
    sub = out.detach()[keep].clone().requires_grad_(True)
    (g_sub,) = torch.autograd.grad(spec.task_loss(sub, y[keep]), sub)
    torch.testing.assert_close(g[keep], g_sub, rtol=1e-12, atol=1e-14)
    # another value behind the mask changes nothing
    y_other = y_nan.clone()
    assert spec.task_loss(out, y_other).item() == loss.item()


def test_all_missing_batch_gives_zero_loss_and_zero_gradient():
    out = torch.randn(6, 1, requires_grad=True)
    y = torch.full((6,), float("nan"))
    loss = TaskSpec("b", kind="binary").task_loss(out, y)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(out.grad == 0.0)


@pytest.mark.parametrize("spec, y, match", [
    (TaskSpec("m", kind="multiclass", n_outputs=3), [0, 1, 3], r"0\.\.2.*found \[3\.0\]"),
    (TaskSpec("m", kind="multiclass", n_outputs=3), [0, 1.5, 2], "integers"),
    (TaskSpec("b", kind="binary"), [0, 1, 2], "0 or 1"),
    (TaskSpec("r", n_outputs=2), [0.0, 1.0, 2.0], r"needs \(n, 2\)"),
    (TaskSpec("r"), [0.0, np.inf, 1.0], "infinity"),
])
def test_check_target_errors(spec, y, match):
    with pytest.raises(ValueError, match=match):
        spec.check_target(np.asarray(y, dtype=float))


def test_scores_match_sklearn_on_observed_rows():
    rng = np.random.default_rng(0)
    y = (rng.random(50) > 0.4).astype(float)
    p = np.clip(0.3 * y + 0.7 * rng.random(50), 0, 1)
    y[:10] = np.nan
    s = TaskSpec("b", kind="binary").scores(y, p)
    m = ~np.isnan(y)
    assert s["auc"] == pytest.approx(skm.roc_auc_score(y[m], p[m]), rel=1e-12)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y[m], p[m] > 0.5), rel=1e-12)
    r = TaskSpec("r", metrics=("rmse", "mae", "r2"))
    yt, yp = rng.standard_normal(30), rng.standard_normal(30)
    got = r.scores(yt, yp)
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(yt, yp)), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(yt, yp), rel=1e-12)
    custom = TaskSpec("c", metrics=[Metric("max_err", skm.max_error, False)])
    assert custom.scores(yt, yp)["max_err"] == pytest.approx(skm.max_error(yt, yp))
    assert math.isnan(r.scores(np.full(3, np.nan), np.zeros(3))["r2"])


def test_config_round_trip_and_unsavable_specs():
    spec = TaskSpec("m", kind="multiclass", n_outputs=5, metrics=("accuracy",), weight=2.0)
    assert TaskSpec.from_config(spec.to_config()) == spec
    with pytest.raises(ValueError, match="callable loss"):
        TaskSpec("r", loss=lambda f, y: (f - y) ** 2).to_config()
