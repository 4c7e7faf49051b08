"""The Tweedie loss (compound Poisson-Gamma, log link), a loss added as one module.

Checked against independent references: scikit-learn's ``TweedieRegressor`` (alpha 0 and a
ridge), the conjugate term against a bounded scalar minimization (SciPy), the fits with
penalties against cvxpy/Clarabel (here on School, and in every cell of the support matrix,
``tests/test_conformance.py``, and on Dask blocks in ``tests/test_conformance_placements.py``);
then what every loss has: an offset, save / load, ONNX export, and the errors that name the
loss.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from sklearn.linear_model import TweedieRegressor

import regmtl as rm

RNG = np.random.default_rng(11)
N, P = 300, 5
X = RNG.standard_normal((N, P))
F = 0.4 * X[:, 0] - 0.3 * X[:, 1] + 0.2 * X[:, 2] + 0.3
TASK = np.repeat([0, 1, 2], N // 3)


def _targets(power, f=F, seed=0):
    return rm.Tweedie(power).sample_targets(f, np.random.default_rng(seed))


def test_the_targets_are_compound_poisson_gamma():
    """Zeros with probability exp(-mu^a / a), the mean exp(f) (dispersion 1)."""
    f = np.full(200_000, np.log(2.0))
    y = rm.Tweedie(1.5).sample_targets(f, np.random.default_rng(0))
    assert y.mean() == pytest.approx(2.0, rel=0.01)
    assert np.mean(y == 0) == pytest.approx(np.exp(-2.0**0.5 / 0.5), abs=0.005)
    assert y.var() == pytest.approx(2.0**1.5, rel=0.03)  # Var = phi mu^rho


@pytest.mark.parametrize("power", [1.2, 1.5, 1.8])
def test_alpha_zero_and_a_ridge_equal_scikit_learn(power):
    y = _targets(power)
    for alpha in (0.0, 0.05):
        sk = TweedieRegressor(power=power, link="log", alpha=alpha, tol=1e-12,
                              max_iter=10_000).fit(X, y)
        m = rm.MultiTaskRegressor("l2", alpha=alpha, loss=rm.Tweedie(power),
                                  tol=1e-12).fit(X, y)
        np.testing.assert_allclose(m.coef_, sk.coef_, atol=1e-7)
        assert m.intercept_ == pytest.approx(sk.intercept_, abs=1e-7)
        np.testing.assert_allclose(m.predict(X), sk.predict(X), rtol=1e-7)


@pytest.mark.parametrize("power", [1.1, 1.5, 1.9])
def test_the_conjugate_term_is_the_inner_minimum(power):
    r"""``-l*(-theta) = min_f l(y, f) + theta f`` row by row, against SciPy's bounded scalar
    minimization, over targets 0 to 50 and dual points of both signs."""
    loss = rm.Tweedie(power)
    rng = np.random.default_rng(1)
    y = np.concatenate([[0.0, 0.0, 1e-6, 50.0], rng.exponential(2.0, 40)])
    theta = np.concatenate([[-0.7, 0.0, 0.5, -3.0], rng.normal(0.0, 2.0, 40)])
    theta = loss.feasible(y, theta)
    ones = np.ones(1)
    for yr, tr in zip(y, theta, strict=True):
        if yr == 0 and tr == 0:
            assert loss.dual_value(np.array([yr]), np.array([tr]), ones) == 0.0
            continue
        g = loss._inner_minimizer(np.array([yr]), np.array([tr]))[0]
        ref = minimize_scalar(lambda f, yr=yr, tr=tr: loss.value(np.array([yr]), np.array([f]),
                                                                   ones) + tr * f,
                              bounds=(g - 5.0, g + 5.0), method="bounded",
                              options={"xatol": 1e-12})
        got = loss.dual_value(np.array([yr]), np.array([tr]), ones)
        assert got <= ref.fun + 1e-9 * max(1.0, abs(ref.fun))
        assert got == pytest.approx(ref.fun, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("power", [1.01, 1.5, 1.99])
def test_the_conjugate_term_at_extreme_scales_is_a_lower_bound(power):
    """Targets from 1e-300 to 1e300 and dual points from -1e3 to 1e3: the conjugate term
    against a 50-digit bisection of its minimizer (mpmath), to 1e-12 relative, and never
    above it (a dual value above it would certify a fit that is not optimal; an earlier form
    clipped the score at 700 and was 1e6 times too large at y = 1e200)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    loss = rm.Tweedie(power)
    a, b = 2.0 - power, power - 1.0
    for y in (1e-300, 1e-20, 1.0, 1e20, 1e200, 1e300):
        for theta in (-1e3, -1e-6, 0.0, 0.3, 1e3):
            got = loss.dual_value(np.array([y]), np.array([theta]), np.ones(1))
            yy, tt = mp.mpf(y), mp.mpf(theta)
            lo, hi = mp.mpf(-1e6), mp.mpf(1e6)
            for _ in range(400):
                mid = (lo + hi) / 2
                if mp.e ** (a * mid) - yy * mp.e ** (-b * mid) + tt < 0:
                    lo = mid
                else:
                    hi = mid
            g = (lo + hi) / 2
            want = float(mp.e ** (a * g) / a + yy * mp.e ** (-b * g) / b + tt * g)
            scale = max(1.0, abs(want))
            assert abs(got - want) <= 1e-12 * scale, (y, theta, got, want)
            assert got <= want + 1e-13 * scale, (y, theta)


def test_school_l21_is_certified_and_equals_cvxpy():
    """School's exam scores (positive) as Tweedie targets, L2,1: certified at tol=1e-8 and at
    cvxpy's optimum."""
    cp = pytest.importorskip("cvxpy")
    from conftest import CLARABEL_OPTIONS

    school = rm.datasets.load_school()
    Xs = [np.asarray(x, dtype=float) for x in school.X[:12]]
    scale = np.mean(np.concatenate(school.y[:12]))
    ys = [np.asarray(y, dtype=float) / scale for y in school.y[:12]]  # (in their mean's units)
    alpha = 0.1 * rm.alpha_max(Xs, ys, penalty="l21", loss="tweedie")
    m = rm.MultiTaskRegressor("l21", alpha=alpha, loss="tweedie", tol=1e-8).fit(Xs, ys)
    assert m.dual_gap_ <= 1e-8 * m.objective_
    W, b = cp.Variable((Xs[0].shape[1], len(Xs))), cp.Variable(len(Xs))
    data = 0
    for k, (Xt, yt) in enumerate(zip(Xs, ys, strict=True)):
        f = Xt @ W[:, k] + b[k]
        data += cp.sum(2.0 * cp.exp(0.5 * f) + 2.0 * cp.multiply(yt, cp.exp(-0.5 * f))
                       ) / len(yt)
    prob = cp.Problem(cp.Minimize(data + alpha * cp.sum(cp.norm(W, 2, axis=1))))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert m.objective_ == pytest.approx(prob.value, rel=1e-6)
    assert m.objective_ <= prob.value + 1e-7 * abs(prob.value)


def test_an_exposure_offset_is_the_rate_model():
    """An offset constant within each task moves only that task's intercept, by the offset."""
    y = _targets(1.5, F + 0.2 * TASK)
    base = rm.MultiTaskRegressor("l21", alpha=0.01, loss="tweedie", tol=1e-10).fit(
        X, y, task=TASK)
    o = np.log(np.array([0.5, 2.0, 3.0]))[TASK]
    with_o = rm.MultiTaskRegressor("l21", alpha=0.01, loss="tweedie", tol=1e-10).fit(
        X, y, task=TASK, offset=o)
    np.testing.assert_allclose(with_o.coef_, base.coef_, atol=1e-7)
    np.testing.assert_allclose(with_o.intercept_ + np.log([0.5, 2.0, 3.0]), base.intercept_,
                               atol=1e-7)


def test_save_load_and_onnx_keep_the_power(tmp_path):
    pytest.importorskip("onnxruntime")
    from regmtl.serving import check_onnx, export_onnx

    y = _targets(1.3, F + 0.2 * TASK)
    m = rm.MultiTaskRegressor("l21", alpha=0.01, loss=rm.Tweedie(1.3)).fit(X, y, task=TASK)
    m.save(tmp_path / "m.regmtl")
    back = rm.load(tmp_path / "m.regmtl")
    assert back.loss_ == rm.Tweedie(1.3) and back.loss_ != rm.Tweedie(1.5)
    np.testing.assert_array_equal(back.predict(X, task=TASK), m.predict(X, task=TASK))
    assert back.score(X, y, task=TASK) == m.score(X, y, task=TASK)
    graph = export_onnx(m)
    assert check_onnx(m, graph, X, TASK)["prediction"] <= 1e-9


def test_the_cv_and_compare_run_on_it():
    y = _targets(1.5, F + 0.2 * TASK)
    cv = rm.MultiTaskRegressorCV("l21", alphas=6, cv=3, loss="tweedie").fit(X, y, task=TASK)
    assert cv.alpha_ > 0 and cv.best_estimator_.dual_gap_ <= 1e-4 * cv.best_estimator_.objective_
    table = rm.compare(X, y, task=TASK, loss="tweedie", cv=3, models=["independent", "l21"])
    assert "TweedieRegressor (independent)" in str(table)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"Tweedie\(power=2.5\).*strictly between 1 and 2"):
        rm.Tweedie(2.5)
    with pytest.raises(ValueError, match="tweedie loss takes targets >= 0"):
        rm.MultiTaskRegressor("l21", alpha=0.1, loss="tweedie").fit(X, -np.ones(N))
