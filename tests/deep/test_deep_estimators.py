"""The scikit-learn wrappers: check_estimator, the three input forms, per-task classes."""

import numpy as np
import pytest
import sklearn

torch = pytest.importorskip("torch")

from sklearn.model_selection import KFold, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from regmtl.deep import (  # noqa: E402
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
)

FAST = dict(hidden=(16,), max_epochs=40, batch_size=32)


@parametrize_with_checks([DeepMultiTaskRegressor(**FAST), DeepMultiTaskClassifier(**FAST),
                          DeepMultiTaskModel(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _tasks(seed=0, n=(120, 80, 150), p=5):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(p)
    Xs = [rng.standard_normal((k, p)) for k in n]
    ys = [X @ (w + 0.2 * rng.standard_normal(p)) + t + 0.05 * rng.standard_normal(len(X))
          for t, X in enumerate(Xs)]
    return Xs, ys


def test_three_input_forms_agree():
    Xs, ys = _tasks()
    kw = dict(hidden=(32,), max_epochs=60, early_stopping=False, random_state=0, lr=1e-2,
              batch_size=64)  # 350 rows: smaller batches and a larger step than the defaults
    lists = DeepMultiTaskRegressor(**kw).fit(Xs, ys)
    X = np.vstack(Xs)
    y = np.concatenate(ys)
    ids = np.repeat(["a", "b", "c"], [len(v) for v in ys])
    long = DeepMultiTaskRegressor(**kw).fit(X, y, task=ids)
    pl = lists.predict(Xs)
    assert [len(v) for v in pl] == [120, 80, 150]
    # the same rows in the same order: the same training run
    np.testing.assert_allclose(np.concatenate(pl), long.predict(X, task=ids), rtol=1e-5,
                               atol=1e-5)
    assert lists.score(Xs, ys) > 0.95
    # long form rows in any order are put back in the caller's order
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(long.predict(X[perm], task=ids[perm]),
                               long.predict(X, task=ids)[perm], rtol=1e-6)
    shared = DeepMultiTaskRegressor(**kw).fit(Xs[0], np.column_stack([ys[0], 2 * ys[0]]))
    assert shared.predict(Xs[0]).shape == (120, 2)
    with pytest.raises(ValueError, match="unknown|not among|fitted"):
        long.predict(X[:3], task=["zz"] * 3)


def test_missing_labels_in_shared_y_and_per_task_classes():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 4))
    Y = np.empty((400, 2), dtype=object)
    Y[:, 0] = np.where(X[:, 0] > 0, "yes", "no")
    Y[:, 1] = np.digitize(X[:, 1], [-0.6, 0.6])  # three classes
    # 400 rows: small batches and a larger step than the defaults (tuned for 10k rows)
    clf = DeepMultiTaskClassifier(hidden=(32,), max_epochs=80, lr=1e-2, batch_size=64,
                                  random_state=0)
    clf.fit(X, Y)
    assert list(clf.classes_[0]) == ["no", "yes"] and list(clf.classes_[1]) == [0, 1, 2]
    proba = clf.predict_proba(X)
    assert proba[0].shape == (400, 2) and proba[1].shape == (400, 3)
    np.testing.assert_allclose(proba[1].sum(1), 1.0, rtol=1e-6)
    assert clf.score(X, Y) > 0.9
    # NaN labels of a regression Y are masked, not learned as values
    Yr = np.column_stack([X[:, 0] * 3, X[:, 1]])
    Yr[::2, 0] = np.nan
    reg = DeepMultiTaskRegressor(hidden=(32,), max_epochs=80, lr=1e-2, batch_size=64,
                                 random_state=0).fit(X, Yr)
    m = ~np.isnan(Yr[:, 0])
    assert np.mean((reg.predict(X)[m, 0] - Yr[m, 0]) ** 2) < 0.1 * np.var(Yr[m, 0])


def test_cross_validation_routes_task_ids():
    Xs, ys = _tasks(n=(90, 90, 90))
    X, y = np.vstack(Xs), np.concatenate(ys)
    ids = np.repeat([0, 1, 2], 90)
    est = DeepMultiTaskRegressor(hidden=(16,), max_epochs=30, lr=1e-2, batch_size=64)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(est, X, y, cv=KFold(3, shuffle=True, random_state=0),
                                 params={"task": ids})
    assert scores.shape == (3,) and np.all(scores > 0.8)


def test_bad_input_is_refused_before_training():
    X = np.zeros((20, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DeepMultiTaskRegressor().fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="one class"):
        DeepMultiTaskClassifier().fit([np.ones((5, 2)), np.ones((5, 2))],
                                      [np.array([0, 1, 0, 1, 0]), np.zeros(5)])
    with pytest.raises(ValueError, match="architecture"):
        DeepMultiTaskRegressor(architecture="resnet").fit(np.zeros((5, 2)), np.zeros(5))
