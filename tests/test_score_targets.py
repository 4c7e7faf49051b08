"""``score`` checks the targets as ``fit`` does: a Poisson model refuses a negative count, a
Gamma model a target <= 0, with the fit's error, in every input form (it scored 0.11 and
``nan`` before)."""

import numpy as np
import pytest

import regmtl as rm

BAD = {"poisson": -1.0, "gamma": 0.0}


def _problem(loss):
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((30, 3)) for _ in range(2)]
    mu = [np.exp(0.5 * X[:, 0]) for X in Xs]
    ys = [rng.poisson(m).astype(float) if loss == "poisson" else rng.gamma(2.0, m / 2)
          for m in mu]
    return Xs, ys


def _message(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_score_refuses_targets_outside_the_domain_as_fit_does(loss):
    Xs, ys = _problem(loss)
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(Xs, ys)
    bad = [y.copy() for y in ys]
    bad[1][3] = BAD[loss]
    expected = _message(lambda: rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(Xs, bad))
    assert _message(lambda: model.score(Xs, bad)) == expected  # lists
    X, y = np.vstack(Xs), np.concatenate(bad)
    task = np.repeat([0, 1], 30)
    assert _message(lambda: model.score(X, y, task=task)) == expected  # long form
    assert _message(lambda: model.score(Xs, bad, sample_weight=[np.ones(30)] * 2)) == expected
    cv = rm.MultiTaskRegressorCV("l21", loss=loss, alphas=3, cv=2).fit(Xs, ys)
    assert _message(lambda: cv.score(Xs, bad)) == expected
    # a row of weight 0 is not scored, so its target is not checked (as in a fit)
    w = [np.ones(30), np.where(np.arange(30) == 3, 0.0, 1.0)]
    assert np.isfinite(model.score(Xs, bad, sample_weight=w))


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_score_refuses_bad_targets_with_a_shared_design(loss):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    mu = np.exp(0.4 * X[:, [0]] + np.zeros((1, 2)))
    Y = rng.poisson(mu).astype(float) if loss == "poisson" else rng.gamma(2.0, mu / 2)
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(X, Y)
    Y[5, 1] = BAD[loss]
    expected = _message(lambda: rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(X, Y))
    assert _message(lambda: model.score(X, Y)) == expected


def test_score_of_one_loss_per_task_checks_its_count_task():
    """A binary task beside a Poisson task: its labels (2/5) are not counts to check, the
    Poisson task's negative count is refused as the fit refuses it."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((30, 3)) for _ in range(2)]
    ys = [np.where(Xs[0][:, 0] > 0, 5.0, 2.0),
          rng.poisson(np.exp(0.5 * Xs[1][:, 0])).astype(float)]
    loss = ["logistic", "poisson"]
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(Xs, ys)
    assert np.isfinite(model.score(Xs, ys))
    bad = [ys[0], ys[1].copy()]
    bad[1][0] = -1.0
    expected = _message(lambda: rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(Xs, bad))
    assert "poisson tasks has negative entries" in expected
    assert _message(lambda: model.score(Xs, bad)) == expected
