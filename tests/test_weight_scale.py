"""Multiplying every sample weight by a constant changes nothing: a fit, a path, a score and
a cross-validated choice are the same (the objective normalizes each task's weights; the
solver's route is chosen by the weights' sum over the smallest weight, not by the sum)."""

import numpy as np
import pytest

import regmtl as rm
from regmtl.solvers.parts.quadratic import weighted_rows

SCALES = [1.0, 2.0, 123.0]


def _problem():
    """scikit-learn's ``test_enet_cv_sample_weight_consistency`` data, as 3 identical tasks."""
    rng = np.random.RandomState(0)
    X = rng.rand(10, 5)
    y = X.sum(axis=1) + rng.rand(10)
    return X, np.column_stack([y, y, y])


def test_cv_choice_is_invariant_to_the_weights_scale():
    # before: alpha_ 7.09e-4 with no weights or ones, 4.35e-4 with 2 * ones or 123
    X, Y = _problem()
    kw = dict(alphas=100, eps=1e-3, cv=3, tol=2e-6, random_state=None)
    ref = rm.MultiTaskRegressorCV(rm.L21(), **kw).fit(X, Y)
    for c in SCALES:
        for sw in (c, c * np.ones(10)):
            cv = rm.MultiTaskRegressorCV(rm.L21(), **kw).fit(X, Y, sample_weight=sw)
            assert cv.alpha_ == ref.alpha_, c
            np.testing.assert_allclose(cv.coef_, ref.coef_, rtol=0, atol=1e-8)
            np.testing.assert_allclose(cv.cv_results_["mean_test_score"],
                                       ref.cv_results_["mean_test_score"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("penalty", ["l21", "l1", "elasticnet"])
def test_fit_path_and_score_are_invariant_to_the_weights_scale(penalty):
    # a CV fold: 7 rows of a shared design, 3 tasks, 5 features, T p = 15 <= 21 rows, where
    # the weights' sum (21, 42, 2583) sent the fits to different solvers (the path's coef_
    # 7e-3 apart at tol 2e-6)
    X, Y = _problem()
    rows = np.r_[0:4, 7:10]
    X, Y = X[rows], Y[rows]
    w = np.ones(7)
    fits, paths, scores = [], [], []
    for c in SCALES:
        sw = c * w
        m = rm.MultiTaskRegressor(penalty, alpha=3e-4, tol=2e-6).fit(X, Y, sample_weight=sw)
        fits.append(m)
        paths.append(rm.regularization_path(X, Y, penalty=penalty, alphas=100, eps=1e-3,
                                            tol=2e-6, sample_weight=sw))
        scores.append(m.score(X, Y, sample_weight=sw))
    for m, p, s in zip(fits[1:], paths[1:], scores[1:], strict=True):
        np.testing.assert_allclose(m.coef_, fits[0].coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(m.intercept_, fits[0].intercept_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(p.coefs, paths[0].coefs, rtol=0, atol=1e-8)
        np.testing.assert_allclose(p.alphas, paths[0].alphas, rtol=1e-12)
        assert s == pytest.approx(scores[0], abs=1e-10)


def test_route_size_is_free_of_the_weights_scale():
    """Weights times a constant, integer weights and the rows they repeat: one size."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 3))
    y = rng.standard_normal(12)
    task = np.repeat([0, 1], 6)
    sw = rng.integers(0, 3, 12).astype(float)
    sw[0] = 1.0
    rep = np.repeat(np.arange(12), sw.astype(int))
    sizes = [weighted_rows(rm.as_task_data(X, y, task=task, sample_weight=c * sw))
             for c in SCALES]
    sizes.append(weighted_rows(rm.as_task_data(X[rep], y[rep], task=task[rep])))
    assert sizes == [float(sw.sum())] * 4
