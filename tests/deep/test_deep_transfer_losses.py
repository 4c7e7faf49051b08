"""regmtl.deep.transfer_head for every kind of new task: counts, classes, Huber, quantiles."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import DeepMultiTaskClassifier, DeepMultiTaskRegressor, transfer_head  # noqa: E402

FIT = dict(hidden=(16,), max_epochs=20, batch_size=64, lr=1e-2, random_state=0)


def _design(seed, n=400, p=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng


@pytest.fixture(scope="module")
def regressor():
    torch.set_num_threads(1)
    X, rng = _design(0)
    Y = np.column_stack([X[:, 0] + 0.5 * X[:, 1], X[:, 0] - X[:, 2]])
    Y = Y + 0.1 * rng.standard_normal(Y.shape)
    return DeepMultiTaskRegressor(**FIT).fit(X, Y)


def test_count_head_predicts_mean_counts_better_than_the_constant(regressor):
    X, rng = _design(1, n=300)
    mu = np.exp(0.3 + 0.6 * X[:, 0])
    y = rng.poisson(mu).astype(float)
    head = transfer_head(regressor, X[:200], y[:200], loss="poisson", epochs=60)
    assert head.kind_ == "count" and head.loss_ == "poisson"
    pred = head.predict(X[200:])
    assert np.all(pred > 0) and np.all(np.isfinite(pred))
    assert head.score(X[200:], y[200:]) > 0.2  # Poisson D^2 on held-out rows
    with pytest.raises(AttributeError, match="count"):
        head.predict_proba(X[:2])


def test_count_head_starts_at_the_log_mean_count(regressor):
    X, rng = _design(2, n=100)
    y = rng.poisson(40.0, 100).astype(float)
    head = transfer_head(regressor, X, y, kind="count", epochs=1, lr=1e-6)
    np.testing.assert_allclose(head.predict(X).mean(), y.mean(), rtol=0.2)


def test_multiclass_head_from_a_classifier():
    torch.set_num_threads(1)
    X, rng = _design(3)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    clf = DeepMultiTaskClassifier(**FIT).fit(X, Y)
    Xn, _ = _design(4, n=300)
    labels = np.array(["low", "mid", "high"])[np.digitize(Xn[:, 0], [-0.5, 0.5])]
    head = transfer_head(clf, Xn[:200], labels[:200], epochs=40)
    assert head.kind_ == "multiclass" and list(head.classes_) == ["high", "low", "mid"]
    P = head.predict_proba(Xn[200:])
    assert P.shape == (100, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert head.score(Xn[200:], labels[200:]) > 0.8


def test_quantile_head_covers_its_level(regressor):
    X, rng = _design(5, n=1200)
    y = X[:, 0] + rng.standard_normal(1200)
    head = transfer_head(regressor, X[:800], y[:800], loss=("quantile", 0.9), epochs=25)
    assert head.loss_ == ("quantile", 0.9)
    cover = np.mean(y[800:] <= head.predict(X[800:]))
    assert 0.8 < cover < 0.97
    assert head.score(X[800:], y[800:]) > 0.0  # pinball D^2 at tau = 0.9


def test_huber_delta_is_in_the_targets_units(regressor):
    X, rng = _design(6, n=300)
    y = 100.0 * X[:, 0] + rng.standard_t(2, 300)
    head = transfer_head(regressor, X, y, loss=("huber", 5.0), epochs=5)
    spec = head.net_.tasks[-1]
    assert spec.loss[0] == "huber"
    np.testing.assert_allclose(spec.loss[1], 5.0 / y.std(), rtol=1e-6)
    np.testing.assert_allclose(head.y_scale_, y.std(), rtol=1e-6)


def test_kind_and_loss_that_disagree_or_bad_counts_are_refused(regressor):
    X, _ = _design(7, n=20)
    with pytest.raises(ValueError, match="disagree"):
        transfer_head(regressor, X, np.ones(20), kind="regression", loss="poisson")
    with pytest.raises(ValueError, match="negative"):
        transfer_head(regressor, X, -np.ones(20), kind="count")
    with pytest.raises(ValueError, match="kind="):
        transfer_head(regressor, X, np.ones(20), kind="ordinal")
    with pytest.raises(ValueError, match="loss"):
        transfer_head(regressor, X, np.ones(20), loss="cauchy")
