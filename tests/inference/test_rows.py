"""The rows of a fit task by task: the blocks a debiased estimator takes."""

import numpy as np
import pytest

import regmtl as rm
from regmtl.inference.rows import model_rows


def test_blocks_at_an_unpenalized_fit():
    """Z' s = 0 (the score equations), f = Z beta + offset, the weights' curvature."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    Y = rng.poisson(np.exp(0.2 + X[:, :2] @ [0.3, -0.2]), size=(2, 120)).T.astype(float)
    Y[3, 1] = np.nan
    off = 0.1 * rng.standard_normal((120, 2))
    w = rng.uniform(0.5, 2.0, 120)
    model = rm.MultiTaskRegressor("l21", alpha=0.0, loss="poisson", tol=1e-12).fit(
        X, Y, offset=off, sample_weight=w)
    rows = model_rows(model, X, Y, offset=off, sample_weight=w)
    assert rows.shared_design and rows.names == ["x0", "x1", "x2", "intercept"]
    assert [t.n_rows for t in rows.tasks] == [120, 119]  # (the missing label: no row)
    for (Z, h, s, coef), t in zip(rows.blocks(), rows.tasks, strict=True):
        assert np.max(np.abs(Z.T @ s)) < 1e-8
        np.testing.assert_allclose(t.f, Z @ coef + t.offset)
        np.testing.assert_allclose(h, t.weight * np.exp(t.f))
    np.testing.assert_allclose(rows.tasks[0].offset, off[:, 0])


def test_labels_coded_by_the_fitted_classes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2))
    y = np.where(X[:, 0] + rng.standard_normal(60) > 0, "yes", "no")
    clf = rm.MultiTaskClassifier("l21", alpha=0.0, tol=1e-10).fit(X, y)
    rows = model_rows(clf, X[:5], y[:5])
    np.testing.assert_array_equal(rows.tasks[0].y, np.where(y[:5] == "yes", 1.0, -1.0))
    with pytest.raises(ValueError, match="not one of the classes"):
        model_rows(clf, X[:5], np.array(["yes", "no", "maybe", "no", "no"]))


def test_a_shared_design_is_held_once_per_pattern_of_rows():
    """Tasks of one design with the same observed rows read one array (no copy per task);
    a task missing a label gets its own, without that row."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 4))
    Y = X @ rng.standard_normal((4, 3)) + rng.standard_normal((50, 3))
    Y[7, 2] = np.nan
    model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-12).fit(X, Y)
    a, b, c = model_rows(model, X, Y).tasks
    assert a.X is b.X and c.X is not a.X
    np.testing.assert_array_equal(c.X, np.delete(a.X, 7, axis=0))
