"""aic() and bic() of a fitted model equal what MultiTaskRegressorCV reports at the same
alpha, and the closed form of an unpenalized squared fit."""

import numpy as np
import pytest

import regmtl as rm


def _tasks(seed, loss="squared"):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, 5)) for n in (60, 80)]
    w = np.array([0.5, -0.4, 0.0, 0.0, 0.2])
    offs = [0.3 * rng.standard_normal(len(X)) for X in Xs]
    if loss == "poisson":
        ys = [rng.poisson(np.exp(X @ w + o)).astype(float) for X, o in zip(Xs, offs,
                                                                           strict=True)]
    else:
        ys = [X @ w + rng.standard_normal(len(X)) for X in Xs]
    return Xs, ys, offs


@pytest.mark.parametrize("criterion", ["aic", "bic"])
@pytest.mark.parametrize("penalty, loss, alpha", [("l21", "squared", 0.05),
                                                  ("l1", "poisson", 0.02),
                                                  ("l2", "squared", 0.1)])
def test_equal_the_search(criterion, penalty, loss, alpha):
    Xs, ys, offs = _tasks(0, loss)
    kw = {"offset": offs} if loss == "poisson" else {}
    search = rm.MultiTaskRegressorCV(penalty, loss=loss, alphas=[alpha], criterion=criterion,
                                     tol=1e-10).fit(Xs, ys, **kw)
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=loss, tol=1e-10).fit(Xs, ys, **kw)
    got = getattr(model, criterion)(Xs, ys, **kw)
    np.testing.assert_allclose(got, search.cv_results_[criterion].iloc[0], rtol=1e-6)
    refit = search.best_estimator_  # (a search's refit has the methods)
    np.testing.assert_allclose(getattr(refit, criterion)(Xs, ys, **kw), got, rtol=1e-6)


def test_unpenalized_closed_form():
    """-2 log L + 2 df with the Gaussian's variance profiled per task and df = T (p + 1)."""
    Xs, ys, _ = _tasks(1)
    model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-12).fit(Xs, ys)
    neg2 = 0.0
    for y, pred in zip(ys, model.predict(Xs), strict=True):
        m = len(y)
        neg2 += m * (np.log(2 * np.pi * np.sum((y - pred) ** 2) / m) + 1)
    np.testing.assert_allclose(model.aic(Xs, ys), neg2 + 2 * 12, rtol=1e-10)
    np.testing.assert_allclose(model.bic(Xs, ys), neg2 + np.log(140) * 12, rtol=1e-10)


def test_losses_without_a_likelihood_are_refused():
    Xs, ys, _ = _tasks(2)
    model = rm.MultiTaskRegressor("l21", alpha=0.0, loss=rm.Huber(delta=1.0)).fit(Xs, ys)
    with pytest.raises(ValueError, match="cross-validat|criterion='cv'"):
        model.aic(Xs, ys)
    with pytest.raises(ValueError, match="y is required"):
        model.bic(Xs, None)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifiers_equal_the_search(n_classes):
    """Binary tasks (logistic) and a task of three classes (multinomial)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((150, 3))
    y = np.array(list("abc"[:n_classes]))[np.argmax(
        X[:, :n_classes] + rng.standard_normal((150, n_classes)), axis=1)]
    search = rm.MultiTaskClassifierCV("l21", alphas=[0.05], criterion="aic",
                                      tol=1e-10).fit(X, y)
    model = rm.MultiTaskClassifier("l21", alpha=0.05, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(model.aic(X, y), search.cv_results_["aic"].iloc[0], rtol=1e-6)
