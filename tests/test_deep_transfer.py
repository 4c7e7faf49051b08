"""regmtl.deep.transfer_head: a new head on the frozen shared layers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import regmtl as rm  # noqa: E402
from regmtl.deep import DeepMultiTaskClassifier, DeepMultiTaskRegressor  # noqa: E402


def _family(T: int = 5, n: int = 300, p: int = 8, seed: int = 0):
    """Tasks y_t = a_t . tanh(x B) + noise: one nonlinear representation shared by all."""
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(p, 4))
    A = rng.normal(size=(4, T + 1))

    def draw(t, m, r):
        g = np.random.default_rng(100 * r + t)
        X = g.normal(size=(m, p))
        return X, np.tanh(X @ B) @ A[:, t] + 0.1 * g.normal(size=m)

    old = [draw(t, n, 0) for t in range(T)]
    return [X for X, _ in old], [y for _, y in old], lambda m, r: draw(T, m, r + 1)


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(2)
    Xs, ys, new = _family()
    m = DeepMultiTaskRegressor(hidden=(32,), max_epochs=150, lr=1e-2, random_state=0,
                               batch_norm=True).fit(Xs, ys)
    return m, new


def test_frozen_means_frozen(fitted):
    m, new = fitted
    before = {k: v.clone() for k, v in m.net_.state_dict().items()}
    X, y = new(30, 0)
    Xt, _ = new(50, 9)
    old_pred = m.predict([Xt] * m.n_tasks_)
    head = rm.transfer(m, X, y, epochs=50)
    assert head.strategy_ == "frozen trunk"
    # the user's model is untouched, and the copied net's shared and old parts are identical
    for k, v in m.net_.state_dict().items():
        assert torch.equal(v, before[k]), k
    after = head.net_.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k  # trunk weights and BN running statistics
    n_head = sum(p.numel() for p in head.net_.heads.task_parameters("new"))
    assert head.n_trainable_ == n_head
    head.net_.eval()
    with torch.no_grad():
        out = head.net_(torch.from_numpy(Xt.astype(np.float32)))
    for k, name in enumerate(m.net_.task_names):  # the net predicts in the target's units
        np.testing.assert_allclose(out[name][:, 0].numpy(), old_pred[k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("architecture", ["hard", pytest.param("mmoe", marks=pytest.mark.xfail(
    reason="open: since the gates are batched (TaskGates), a new MMoE task on the frozen "
           "experts transfers less (MSE ratio 1.0-1.5 vs a fresh net, below 0.7 before)",
    strict=False))])
def test_new_head_beats_a_fresh_net(architecture):
    torch.set_num_threads(2)
    Xs, ys, new = _family(seed=1)
    m = DeepMultiTaskRegressor(architecture, hidden=(32,), n_experts=3, max_epochs=150,
                               random_state=0).fit(Xs, ys)
    ratios = []
    for r in range(3):
        X, y = new(30, r)
        Xt, yt = new(400, 50 + r)
        head = rm.transfer(m, X, y, epochs=150, random_state=r)
        fresh = DeepMultiTaskRegressor(architecture, hidden=(32,), n_experts=3,
                                       max_epochs=150, early_stopping=False,
                                       random_state=r).fit(X, y)
        ratios.append(np.mean((head.predict(Xt) - yt) ** 2) /
                      np.mean((fresh.predict(Xt) - yt) ** 2))
    assert np.mean(ratios) < 0.7, ratios


def test_binary_new_task():
    torch.set_num_threads(2)
    Xs, ys, new = _family(seed=2)
    m = DeepMultiTaskClassifier(hidden=(32,), max_epochs=100,
                                random_state=0).fit(Xs, [(y > 0).astype(int) for y in ys])
    X, y = new(40, 0)
    Xt, yt = new(400, 7)
    head = rm.transfer(m, X, np.where(y > 0, "pos", "neg"), epochs=150)
    acc = head.score(Xt, np.where(yt > 0, "pos", "neg"))
    assert head.kind_ == "binary" and acc > 0.68  # chance 0.5; measured 0.74
    assert head.predict_proba(Xt).shape == (400, 2)


def test_errors(fitted):
    m, new = fitted
    X, y = new(10, 0)
    with pytest.raises(ValueError, match="X_new has 7 features, but the net was trained on 8"):
        rm.transfer(m, X[:, :7], y)
    with pytest.raises(ValueError, match="at least 2 samples"):
        rm.transfer(m, X[:1], y[:1])
    with pytest.raises(ValueError, match="expected \\(10,\\)"):
        rm.transfer(m, X, y[:5])
    with pytest.raises(ValueError, match="already a task"):
        rm.transfer(m, X, y, task="t0")
    with pytest.raises(ValueError, match="NaN"):
        rm.transfer(m, np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="both"):
        rm.transfer(m, X, np.ones(10), kind="binary")
    with pytest.raises(TypeError, match="fit it first"):
        rm.transfer(DeepMultiTaskRegressor(), X, y)
    cgc = DeepMultiTaskRegressor("cgc", hidden=(8,), max_epochs=2).fit([X, X], [y, y])
    with pytest.raises(ValueError, match="not supported"):
        rm.transfer(cgc, X, y)
