"""A model of one loss per task in every input form: class probabilities per task (None for a
task without two labels) for a shared design, a list and a dict alike; an offset for some
tasks only on a shared design; a classifier's loss given to the regressor named with the
estimators that take it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import regmtl as rm


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 4)) for _ in range(3)]
    lin = [X @ rng.standard_normal(4) for X in Xs]
    ys = [(lin[0] > 0).astype(int), rng.poisson(np.exp(0.3 * lin[1])).astype(float), lin[2]]
    model = rm.MultiTaskRegressor("l21", alpha=0.01,
                                  loss=["logistic", "poisson", "squared"]).fit(Xs, ys)
    return model, Xs


@pytest.mark.parametrize("method", ["predict_proba", "predict_log_proba", "decision_function"])
def test_a_list_or_dict_over_every_task_gives_none_for_the_tasks_without_labels(mixed, method):
    model, Xs = mixed
    alone = getattr(model, method)({0: Xs[0]})[0]  # (the click task's rows alone)
    listed = getattr(model, method)(Xs)
    assert listed[1] is None and listed[2] is None
    np.testing.assert_array_equal(listed[0], alone)
    keyed = getattr(model, method)(dict(enumerate(Xs)))
    assert keyed[1] is None and keyed[2] is None
    np.testing.assert_array_equal(keyed[0], alone)
    if method == "predict_proba":
        np.testing.assert_allclose(alone.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # long-form rows of another task are still refused by name
    X = np.vstack(Xs[:2])
    task = np.repeat([0, 1], 40)
    with pytest.raises(ValueError, match="task 1 has the poisson loss"):
        getattr(model, method)(X, task=task)


def test_an_offset_for_some_tasks_only_on_a_shared_design():
    """``offset=[o, None, None]`` equals the (n, T) matrix with zero columns, in fit and
    predict, on a Poisson task beside squared ones."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    o = rng.uniform(-0.5, 0.5, 60)
    Y = np.column_stack([rng.poisson(np.exp(0.4 * X[:, 0] + o)), X[:, 1], X[:, 2]]).astype(float)
    matrix = np.column_stack([o, np.zeros(60), np.zeros(60)])
    kw = dict(alpha=0.01, loss=["poisson", "squared", "squared"], tol=1e-10)
    listed = rm.MultiTaskRegressor("l21", **kw).fit(X, Y, offset=[o, None, None])
    full = rm.MultiTaskRegressor("l21", **kw).fit(X, Y, offset=matrix)
    np.testing.assert_array_equal(listed.coef_, full.coef_)
    np.testing.assert_array_equal(listed.predict(X, offset=[o, None, None]),
                                  full.predict(X, offset=matrix))
    with pytest.raises(ValueError, match=r"offset\[0\] has 59 values for the 60 rows"):
        listed.predict(X, offset=[o[:59], None, None])


@pytest.mark.parametrize("loss", ["logistic", "multinomial"])
def test_a_classifiers_loss_on_the_regressor_names_the_classifier(loss):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 3)), rng.integers(0, 2, 30)
    with pytest.raises(InvalidParameterError, match=rf"loss='{loss}' fits labels: use "
                                                    r"regmtl.MultiTaskClassifier"):
        rm.MultiTaskRegressor(loss=loss).fit(X, y)
