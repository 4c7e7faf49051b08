"""scikit-learn's GridSearchCV on a plain estimator in the long form, metadata routing on:
what reaches ``task`` and what does not (docs/user_guide/model_selection.rst)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from regmtl import MultiTaskRegressor


def _long(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.array(["a", "b", "c"]), 40)
    X = rng.standard_normal((120, 4))
    y = X @ [1.0, 2.0, 0.0, -1.0] + 3.0 * (ids == "b") + 0.3 * rng.standard_normal(120)
    return X, y, ids


def test_grid_search_routes_task_to_fit_and_score_and_predicts_through_best_estimator():
    """fit(X, y, task=ids) reaches every fit and the estimator's score (no NaN score);
    grid.score(X, y, task=ids) works; grid.predict(X, task=ids) does not, as scikit-learn's
    BaseSearchCV.predict takes X alone (a TypeError), while best_estimator_.predict(X,
    task=ids) gives the refitted model's predictions. grid.predict(X) without ids predicts
    every task on every row (X read as a shared design)."""
    X, y, ids = _long()
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, ids))
    alphas = [0.001, 0.05, 1.0]
    with sklearn.config_context(enable_metadata_routing=True):
        grid = GridSearchCV(MultiTaskRegressor("l21"), {"alpha": alphas}, cv=folds)
        grid.fit(X, y, task=ids)
        assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
        ref = MultiTaskRegressor("l21", alpha=grid.best_params_["alpha"]).fit(X, y, task=ids)
        pred = grid.best_estimator_.predict(X, task=ids)
        np.testing.assert_allclose(pred, ref.predict(X, task=ids), rtol=0, atol=1e-12)
        assert grid.score(X, y, task=ids) == pytest.approx(ref.score(X, y, task=ids),
                                                           rel=1e-12)
        if "params" in inspect.signature(GridSearchCV.predict).parameters:  # a newer sklearn
            np.testing.assert_allclose(grid.predict(X, task=ids), pred, rtol=0, atol=1e-12)
        else:
            with pytest.raises(TypeError, match="unexpected keyword argument 'task'"):
                grid.predict(X, task=ids)
        shared = grid.predict(X)
    assert shared.shape == (len(X), 3)
    rows = {t: np.flatnonzero(ids == t) for t in ("a", "b", "c")}
    for k, t in enumerate(("a", "b", "c")):
        np.testing.assert_allclose(shared[rows[t], k], pred[rows[t]], rtol=0, atol=1e-12)
