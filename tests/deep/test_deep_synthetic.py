"""Synthetic data for deep multi-task models: the MMoE tasks and the recommender log."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from regmtl.datasets import make_mmoe_tasks, make_recommender_tasks


# --------------------------------------------------------------------- make_mmoe_tasks
def test_mmoe_shapes_and_names():
    d = make_mmoe_tasks(300, 12, 0.5, n_tasks=3, n_sin=4, random_state=0)
    assert d.X.shape == (300, 12) and d.Y.shape == (300, 3)
    assert d.X.dtype == np.float64 and d.Y.dtype == np.float64
    assert d.W.shape == (12, 3) and d.basis.shape == (12, 3) and d.sin_params.shape == (4, 2)
    assert d.label_correlation.shape == (3, 3)
    np.testing.assert_allclose(np.diag(d.label_correlation), 1.0)
    np.testing.assert_allclose(d.label_correlation, np.corrcoef(d.Y, rowvar=False), atol=1e-12)
    assert d.target_names == ["task_0", "task_1", "task_2"] and len(d.feature_names) == 12
    assert "KDD 2018" in d.DESCR and "sin(a_k w_t.x + b_k)" in d.DESCR
    np.testing.assert_allclose(d.basis.T @ d.basis, np.eye(3), atol=1e-12)


def test_mmoe_determinism():
    kw = dict(n_samples=200, n_features=10, correlation=0.7)
    a, b, c = (make_mmoe_tasks(**kw, random_state=s) for s in (3, 3, 4))
    for name in ("X", "Y", "W", "sin_params"):
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])


@pytest.mark.parametrize("p", [1.0, 0.9, 0.5, 0.0, -0.5])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_mmoe_weight_cosine_and_norm(p, scale):
    d = make_mmoe_tasks(10, 30, p, n_tasks=3, scale=scale, random_state=1)
    norms = np.linalg.norm(d.W, axis=0)
    np.testing.assert_allclose(norms, scale, rtol=1e-12)
    cos = d.W.T @ d.W / np.outer(norms, norms)
    assert abs(cos[0, 1] - p) < 1e-12 and abs(cos[0, 2] - p) < 1e-12
    assert abs(cos[1, 2] - p * p) < 1e-12


def test_mmoe_noiseless_targets_follow_the_formula():
    d = make_mmoe_tasks(500, 15, 0.3, n_tasks=2, n_sin=7, noise=0.0, random_state=2)
    S = d.X @ d.W
    a, b = d.sin_params[:, 0], d.sin_params[:, 1]
    expected = S + np.sin(a * S[:, :, None] + b).sum(axis=2)
    np.testing.assert_allclose(d.Y, expected, rtol=1e-12, atol=1e-12)
    # noise only adds to the targets: same X, W and sines for the same seed
    noisy = make_mmoe_tasks(500, 15, 0.3, n_tasks=2, n_sin=7, noise=0.1, random_state=2)
    np.testing.assert_array_equal(noisy.X, d.X)
    np.testing.assert_allclose(np.std(noisy.Y - d.Y), 0.1, rtol=0.1)


def test_mmoe_label_correlation_decreases_with_weight_correlation():
    corr = [make_mmoe_tasks(20000, 100, p, random_state=0).label_correlation[0, 1]
            for p in (1.0, 0.9, 0.5)]
    assert corr[0] > 0.95 and corr[0] > corr[1] > corr[2] > 0.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(correlation=1.5), "correlation"),
        (dict(correlation=-1.01), "correlation"),
        (dict(n_features=2, n_tasks=3), "n_features"),
        (dict(n_samples=0), "n_samples"),
        (dict(noise=-0.1), "noise"),
        (dict(scale=0.0), "scale"),
        (dict(n_sin=-1), "n_sin"),
        (dict(n_tasks=0), "n_tasks"),
    ],
)
def test_mmoe_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_mmoe_tasks(**{"n_samples": 10, "n_features": 5, **kwargs})


# --------------------------------------------------------------------- make_recommender_tasks
@pytest.fixture(scope="module")
def rec():
    return make_recommender_tasks(20000, random_state=0)


def test_recommender_shapes_and_names(rec):
    n = 20000
    k = 16 // 2
    assert rec.X.shape == (n, 3 * k + 4) and rec.Y.shape == (n, 3)
    assert rec.X.dtype == np.float64 and rec.Y.dtype == np.float64
    assert np.all(np.isfinite(rec.X))
    assert rec.target_names == ["click", "purchase", "rating"]
    assert rec.kinds == {"click": "binary", "purchase": "binary", "rating": "regression"}
    assert len(rec.feature_names) == rec.X.shape[1]
    assert rec.user.shape == (n,) and rec.item.shape == (n,)
    assert np.issubdtype(rec.user.dtype, np.integer) and np.issubdtype(rec.item.dtype, np.integer)
    assert rec.user.min() >= 0 and rec.user.max() < 500
    assert rec.item.min() >= 0 and rec.item.max() < 300
    assert rec.user_factors.shape == (500, k) and rec.item_factors.shape == (300, k)
    assert "purchase" in rec.DESCR and "NaN" in rec.DESCR


def test_recommender_missing_by_design(rec):
    click, purchase, rating = rec.Y.T
    assert set(np.unique(click)) == {0.0, 1.0}
    np.testing.assert_array_equal(np.isnan(purchase), click == 0)
    assert set(np.unique(purchase[click == 1])) == {0.0, 1.0}
    np.testing.assert_array_equal(np.isnan(rating), purchase != 1)
    observed = rating[purchase == 1]
    assert observed.size > 100 and observed.min() >= 1.0 and observed.max() <= 5.0
    assert observed.std() > 0.3


@pytest.mark.parametrize("click_rate, purchase_rate", [(0.3, 0.3), (0.1, 0.6), (0.7, 0.15)])
def test_recommender_rates(click_rate, purchase_rate):
    d = make_recommender_tasks(20000, click_rate=click_rate, purchase_rate=purchase_rate,
                               random_state=1)
    click, purchase = d.Y[:, 0], d.Y[:, 1]
    assert abs(click.mean() - click_rate) < 0.03
    assert abs(purchase[click == 1].mean() - purchase_rate) < 0.05


def test_recommender_determinism():
    kw = dict(n_samples=2000, n_users=50, n_items=40, n_features=6)
    a, b, c = (make_recommender_tasks(**kw, random_state=s) for s in (7, 7, 8))
    for name in ("X", "Y", "user", "item"):
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])


def test_recommender_click_is_learnable(rec):
    X, y = rec.X, rec.Y[:, 0]
    half = X.shape[0] // 2
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X[:half], y[:half])
    assert roc_auc_score(y[half:], model.predict_proba(X[half:])[:, 1]) > 0.65


def test_recommender_tiny():
    d = make_recommender_tasks(1, 1, 1, 2, random_state=0)
    assert d.X.shape == (1, 7) and d.Y.shape == (1, 3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(click_rate=0.0), "click_rate"),
        (dict(click_rate=1.0), "click_rate"),
        (dict(purchase_rate=1.2), "purchase_rate"),
        (dict(purchase_rate=-0.1), "purchase_rate"),
        (dict(n_samples=0), "n_samples"),
        (dict(n_users=0), "n_users"),
        (dict(n_items=0), "n_items"),
        (dict(n_features=0), "n_features"),
        (dict(n_features=5), "n_features"),
    ],
)
def test_recommender_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_recommender_tasks(**{"n_samples": 10, **kwargs})
