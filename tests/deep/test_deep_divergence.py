"""A diverging fit is never quiet: a training loss, gradient, weights or validation loss that
turns NaN or infinite stops the fit with an error naming the task, the epoch, the step and the
learning rate, or (on_divergence="restore_best") restores the best weights seen and warns; a
target the outputs did not reach is named after the fit; every weighting stays finite with
task losses 1e15 apart."""

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    DeepMultiTaskRegressor,
    EarlyStopping,
    HardSharing,
    MMoE,
    TaskSpec,
    Trainer,
    TrainingDiverged,
    make_weighting,
    set_seed,
)
from regmtl.deep.weighting import WEIGHTINGS, project_simplex  # noqa: E402


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, {"a": X[:, 0], "b": X[:, 0] - X[:, 1]}


class NanAfter:
    """A squared loss that returns NaN from its ``after``-th training call on (calls without
    gradients, validation and the constant predictor's loss, are not counted)."""

    __name__ = "nan_after"

    def __init__(self, after):
        self.after, self.calls = after, 0

    def __call__(self, f, y):
        if f.requires_grad:
            self.calls += 1
        return (f - y) ** 2 * (math.nan if self.calls >= self.after else 1.0)


def _net(specs=("a", "b"), seed=0):
    set_seed(seed)
    return HardSharing(3, list(specs), hidden=(8,))


def _finite(trainer, X):
    return all(np.isfinite(v).all() for v in trainer.predict(X).values())


# ----------------------------------------------------------------------------- raise
def test_sgd_at_a_huge_learning_rate_raises_naming_task_epoch_step_and_lr():
    X, y = _data()
    trainer = Trainer(_net(), optimizer="sgd", lr=1e8, max_epochs=3, batch_size=16)
    with pytest.raises(TrainingDiverged, match=r"task.*'a'.*epoch 1, step \d+.*lr=1e\+08"):
        trainer.fit((X, y))
    assert isinstance(TrainingDiverged("x"), ValueError)


def test_a_nan_loss_names_its_task_and_step():
    X, y = _data()
    net = _net([TaskSpec("a", loss=NanAfter(6)), "b"])  # 4 steps an epoch: epoch 2, step 2
    trainer = Trainer(net, max_epochs=3, batch_size=16, lr=1e-2)
    with pytest.raises(TrainingDiverged, match=r"task 'a' turned NaN at epoch 2, step 2, "
                                                r"with adam at lr=0\.01"):
        trainer.fit((X, y))
    h = trainer.history_  # the epochs run, the diverged one last
    assert len(h) == 2 and np.isfinite(h["loss"][0]) and np.isnan(h["loss"][1])


def test_a_non_finite_clipped_gradient_is_named_as_such():
    class InfGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * math.inf

    X, y = _data()
    net = _net([TaskSpec("a", loss=lambda f, t: (InfGrad.apply(f) - t) ** 2), "b"])
    trainer = Trainer(net, max_epochs=2, batch_size=16, grad_clip=1.0)
    with pytest.raises(TrainingDiverged, match=r"gradient turned non-finite at epoch 1, "
                                                r"step 1 \(the task losses were finite\)"):
        trainer.fit((X, y))


def test_a_validation_loss_that_overflows_raises_not_scikit_learns_error():
    X, y = _data(200)
    m = DeepMultiTaskRegressor(optimizer="sgd", lr=1e6, max_epochs=5)
    with pytest.raises(TrainingDiverged, match=r"Training diverged.*lr=1e\+06"):
        m.fit(X, np.c_[y["a"], y["b"]])


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_stops_a_nan_loss_with_the_epoch_and_step(name):
    X, y = _data()
    net = _net([TaskSpec("a", loss=NanAfter(3)), "b"])
    w = make_weighting(name, weights=[1.0, 1.0]) if name == "fixed" else name
    trainer = Trainer(net, weighting=w, max_epochs=2, batch_size=16)
    with pytest.raises(TrainingDiverged, match=r"loss of task 'a' turned NaN at epoch 1, "
                                                r"step 3"):
        trainer.fit((X, y))


# ----------------------------------------------------------------------------- restore
def test_restore_best_keeps_the_best_validation_epoch_and_warns():
    X, y = _data()
    net = _net([TaskSpec("a", loss=NanAfter(13)), "b"])  # epoch 4, step 1
    trainer = Trainer(net, max_epochs=6, batch_size=16, lr=1e-2,
                      on_divergence="restore_best")
    with pytest.warns(UserWarning, match=r"epoch 4, step 1.*the weights of epoch (\d) are "
                                         r"restored") as rec:
        trainer.fit((X, y), val=(X, y))
    h = trainer.history
    best = int(np.argmin(h["val_loss"].to_numpy()[:3])) + 1
    assert trainer.best_epoch_ == best and f"epoch {best} are restored" in str(rec[-1].message)
    assert len(h) == 4 and _finite(trainer, X)
    ev = trainer.evaluate((X, y))  # (the loss of 'a' is NaN from now on: its metrics)
    for k in ("val/a/mse", "val/b/mse"):
        assert ev[k] == pytest.approx(h[k].iloc[best - 1], rel=1e-5)


def test_restore_best_without_validation_keeps_the_best_training_epoch():
    X, y = _data()
    net = _net([TaskSpec("a", loss=NanAfter(9)), "b"])  # epoch 3, step 1
    trainer = Trainer(net, max_epochs=6, batch_size=16, lr=1e-2,
                      on_divergence="restore_best")
    with pytest.warns(UserWarning, match="restore_best"):
        trainer.fit((X, y))
    assert trainer.best_epoch_ == int(np.argmin(trainer.history["loss"])) + 1
    assert _finite(trainer, X)


def test_restore_best_before_any_finite_epoch_gives_the_initial_weights():
    X, y = _data()
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = Trainer(net, optimizer="sgd", lr=1e8, max_epochs=3, batch_size=16,
                      on_divergence="restore_best")
    with pytest.warns(UserWarning, match="the initial weights are restored"):
        trainer.fit((X, y))
    assert trainer.best_epoch_ == 0 and _finite(trainer, X)
    after = net.state_dict()
    assert all(torch.equal(before[k].cpu(), after[k].cpu())
               for k in before if "target_scales" not in k)


def test_wrappers_take_the_option_and_return_finite_predictions():
    X, y = _data(200)
    Y = np.c_[y["a"], y["b"]]
    m = DeepMultiTaskRegressor(optimizer="sgd", lr=1e6, max_epochs=5,
                               on_divergence="restore_best")
    with pytest.warns(UserWarning, match="Training diverged"):
        m.fit(X, Y)
    assert np.isfinite(m.predict(X)).all()
    with pytest.raises(ValueError, match="on_divergence"):
        DeepMultiTaskRegressor(on_divergence="ignore").fit(X, Y)
    with pytest.raises(ValueError, match="on_divergence must be one of 'raise', "
                                         "'restore_best'"):
        Trainer(_net(), on_divergence="ignore")


def test_best_epoch_is_the_epoch_whose_weights_are_kept_under_min_delta():
    X, y = _data()
    stop = EarlyStopping(monitor="loss", patience=5, min_delta=1e6)  # nothing improves
    trainer = Trainer(_net(), max_epochs=3, batch_size=16, early_stopping=stop)
    trainer.fit((X, y))
    assert trainer.best_epoch_ == 1  # (the argmin of the column was a later epoch)


def test_mmoe_and_lazy_heads_diverge_loudly_too():
    X, y = _data()
    set_seed(0)
    net = MMoE(3, [TaskSpec("a", loss=NanAfter(2)), "b"], n_experts=2, expert_hidden=(4,),
               tower_hidden=(4,))
    with pytest.raises(TrainingDiverged, match="epoch 1, step 2"):
        Trainer(net, max_epochs=2, batch_size=16, lazy_heads=True).fit((X, y))


# ----------------------------------------------------------------------------- reach
def test_an_unstandardized_target_out_of_reach_is_named():
    X, y = _data(200)
    y = {"a": y["a"] + 1.7e9, "b": y["b"]}
    trainer = Trainer(_net(), max_epochs=3, batch_size=32, standardize=False,
                      normalize_losses=False)
    with pytest.warns(UserWarning, match=r"task 'a'.*mean 1\.7e\+09.*standardize=True"):
        trainer.fit((X, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(_net(), max_epochs=3, batch_size=32, grad_balance=0).fit((X, y))


def test_a_finite_blow_up_is_named_as_divergence():
    X, y = _data(200)
    # On the CPU the weights stay finite at this rate (on a GPU's arithmetic they overflow,
    # and the fit stops with TrainingDiverged instead).
    m = DeepMultiTaskRegressor(lr=1e6, max_epochs=4, early_stopping=False, device="cpu")
    with pytest.warns(UserWarning, match=r"task 't0'.*diverged without overflowing"):
        m.fit(X, np.c_[y["a"], y["b"]])


# ----------------------------------------------------------------------------- scales
def test_project_simplex_keeps_its_support_at_any_scale():
    assert project_simplex([1e30, 0.0]).tolist() == [1.0, 0.0]
    assert project_simplex([1e15, 1e15 + 4.0, -1e15]).tolist() == [0.0, 1.0, 0.0]
    assert project_simplex([-1e308, 1e308]).tolist() == [0.0, 1.0]
    v = np.array([0.3, 0.1, -0.2, 0.25])
    x = project_simplex(v)
    ref = np.maximum(v - (0.3 + 0.1 + 0.25 - 1) / 3, 0.0)  # by hand: the top three kept
    np.testing.assert_allclose(x, ref, atol=1e-15)


@pytest.mark.parametrize("scale", [1e15, 1e-15])
@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_stays_finite_with_losses_1e15_apart(name, scale):
    rng = np.random.default_rng(1)
    T, p = 3, 5
    w = make_weighting(name, weights=[1.0] * T) if name == "fixed" else make_weighting(name)
    w.setup([TaskSpec(f"t{i}") for i in range(T)], seed=0)
    theta = torch.nn.Parameter(torch.tensor(rng.standard_normal(p)))
    head = torch.nn.Parameter(torch.ones(T, dtype=torch.float64))
    J = torch.tensor(rng.standard_normal((T, p)))
    s = torch.tensor([scale, 1.0, 1.0 / scale])
    for _ in range(4):
        theta.grad = head.grad = None
        losses = s * ((J @ theta) * head + (J @ theta) ** 2 + 1.0)
        weights = w.backward(losses, [theta], [head])
        if w.needs_step_losses:
            w.step_end(losses.detach())
        w.epoch_end(losses.detach())
        assert torch.isfinite(weights).all() and torch.isfinite(theta.grad).all()


def test_moco_trains_on_targets_1e15_apart():
    X, y = _data(200)
    trainer = Trainer(_net(), weighting="moco", max_epochs=2, batch_size=32,
                      standardize=False, normalize_losses=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the reach of 'a', named above
        trainer.fit((X, {"a": y["a"] * 1e15, "b": y["b"]}))
    assert np.isfinite(trainer.history[["loss/a", "loss/b"]].to_numpy()).all()


@pytest.mark.parametrize("long_form", [False, True])
def test_wrapper_refuses_overflowing_predictions_naming_the_task(long_form):
    """The wrappers' predictions go through the same finite check as Trainer.predict: a net
    whose outputs overflow (weights times 1e20) is refused, never inf returned."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    task = np.repeat(["a", "b"], 100)
    y = np.where(task == "a", X[:, 0], X[:, 1])
    m = DeepMultiTaskRegressor(hidden=(8,), max_epochs=3, random_state=0, device="cpu")
    args = (X, y) if long_form else (X, np.c_[X[:, 0], X[:, 1]])
    kw = {"task": task} if long_form else {}
    m.fit(*args, **kw)
    assert np.all(np.isfinite(m.predict(X, **kw)))
    with torch.no_grad():
        for p in m.net_.parameters():
            p.mul_(1e20)
    with pytest.raises(FloatingPointError, match=r"predictions of task .* are not finite"):
        m.predict(X, **kw)
