"""The log-link losses' intercepts: the closed-form shift zeroes each task's derivative."""

import numpy as np
import pytest

import regmtl as rm
from regmtl.solvers.parts.intercepts import newton_intercepts


def _problem(loss, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    sizes = [5, 40, 300]
    X = [rng.standard_normal((n, 3)) for n in sizes]
    if loss == "poisson":
        y = [rng.poisson(2.0, n).astype(float) for n in sizes]
    else:
        y = [rng.gamma(2.0, 1.5, n) for n in sizes]
    data = rm.as_task_data(X, y)
    S = scale * rng.standard_normal(data.n_obs)
    return data, S


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
@pytest.mark.parametrize("scale", [1.0, 200.0])
def test_closed_form_shift_zeroes_each_task_derivative(loss, scale):
    data, S = _problem(loss, scale=scale)
    datafit = rm.datafits.make_loss(loss)
    b = np.zeros(data.n_tasks)
    S1 = S.copy()
    newton_intercepts(data, datafit, S1, b, max_newton=1, rtol=1e-13)  # closed form, one check
    g = data.task_sums(data.c * datafit.theta(data.y, S1))
    scale_t = data.task_sums(data.c * np.abs(datafit.theta(data.y, S)) + data.c)
    np.testing.assert_array_less(np.abs(g), 1e-11 * scale_t)
    np.testing.assert_allclose(S1 - S, b[data.task_of], rtol=0, atol=1e-12 * (1 + np.abs(b).max()))


def test_task_of_zero_counts_falls_back_to_newton_and_stays_finite():
    rng = np.random.default_rng(1)
    X = [rng.standard_normal((20, 2)), rng.standard_normal((30, 2))]
    y = [np.zeros(20), rng.poisson(3.0, 30).astype(float)]
    model = rm.MultiTaskRegressor("l2", alpha=0.1, loss="poisson").fit(X, y)
    assert np.all(np.isfinite(model.intercept_))
    assert model.intercept_[0] < -20  # the rate of an all-zero task goes to 0
    np.testing.assert_allclose(model.intercept_[1], np.log(y[1].mean()), atol=0.3)
