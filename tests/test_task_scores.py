"""``score`` of both estimators as segment sums: equal to the mean over tasks of scikit-learn's
per-task r2_score / accuracy_score, with sample weights, missing labels and constant tasks."""

import numpy as np
from sklearn.metrics import accuracy_score, r2_score

import regmtl


def test_regressor_score_equals_per_task_r2():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 3)) for n in (8, 15, 30, 4)]
    ys = [X @ [1.0, 0.5, -1.0] + rng.standard_normal(len(X)) for X in Xs]
    ys[3] = np.full(4, 2.0)  # a constant task: R^2 is 1 or 0 as in scikit-learn
    sw = [rng.random(len(X)) + 0.1 for X in Xs]
    m = regmtl.MultiTaskRegressor(penalty="l2", alpha=0.1).fit(Xs, ys)
    pred = m.predict(Xs)
    ref = np.mean([r2_score(y, f, sample_weight=w) for y, f, w in zip(ys, pred, sw,
                                                                          strict=True)])
    assert np.isclose(m.score(Xs, ys, sample_weight=sw), ref, rtol=1e-12)


def test_regressor_score_shared_design_with_missing_labels():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    Y = X @ rng.standard_normal((3, 3)) + rng.standard_normal((40, 3))
    Y[rng.random((40, 3)) < 0.3] = np.nan
    m = regmtl.MultiTaskRegressor(penalty="l21", alpha=0.01).fit(X, Y)
    F = m.predict(X)
    ref = np.mean([r2_score(Y[~np.isnan(Y[:, t]), t], F[~np.isnan(Y[:, t]), t])
                   for t in range(3)])
    assert np.isclose(m.score(X, Y), ref, rtol=1e-12)


def test_classifier_score_equals_per_task_accuracy():
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((n, 3)) for n in (20, 35, 12)]
    labels = [("no", "yes"), (3, 7), (0, 1)]
    ys = [np.where(X[:, 0] + 0.5 * rng.standard_normal(len(X)) > 0, b, a)
          for X, (a, b) in zip(Xs, labels, strict=True)]
    sw = [rng.random(len(X)) + 0.1 for X in Xs]
    m = regmtl.MultiTaskClassifier(penalty="l2", alpha=0.1).fit(Xs, ys)
    pred = m.predict(Xs)
    ref = np.mean([accuracy_score(y, f, sample_weight=w)
                   for y, f, w in zip(ys, pred, sw, strict=True)])
    assert np.isclose(m.score(Xs, ys, sample_weight=sw), ref, rtol=1e-12)
