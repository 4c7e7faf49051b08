"""Wald tests against statsmodels' wald_test on the stacked (block-diagonal) Poisson model,
whose coefficients and covariance are the tasks' fits side by side."""

import numpy as np
import pytest
import scipy.linalg
import statsmodels.api as sm

import regmtl as rm


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(7)
    Xs = [rng.standard_normal((n, 3)) for n in (150, 170, 190)]
    slopes = ([0.3, 0.0, -0.2], [0.3, 0.1, -0.2], [0.45, 0.0, -0.2])
    ys = [rng.poisson(np.exp(0.2 + X @ w)).astype(float) for X, w in zip(Xs, slopes,
                                                                         strict=True)]
    model = rm.MultiTaskRegressor("l21", alpha=0.0, loss="poisson", tol=1e-12).fit(Xs, ys)
    Z = scipy.linalg.block_diag(*[np.column_stack([X, np.ones(len(X))]) for X in Xs])
    ref = sm.GLM(np.concatenate(ys), Z, family=sm.families.Poisson()).fit(tol=1e-13)
    return model, Xs, ys, ref


@pytest.mark.parametrize("features, hypothesis", [(["x0"], "equal"), ("x1", "zero"),
                                                  ([0, "x2"], "equal"),
                                                  (["x1", "x2"], "zero")])
def test_features_equal_statsmodels(fits, features, hypothesis):
    model, Xs, ys, ref = fits
    got = model.wald_test(Xs, ys, features=features, hypothesis=hypothesis)
    R = np.zeros((0, 12))
    for name in [features] if isinstance(features, str) else features:
        j = name if isinstance(name, int) else int(name[1])
        if hypothesis == "zero":
            rows = np.eye(12)[[j, 4 + j, 8 + j]]
        else:
            rows = np.eye(12)[[4 + j, 8 + j]] - np.eye(12)[[j, j]]
        R = np.vstack([R, rows])
    want = ref.wald_test(R, scalar=True)
    assert got.df == R.shape[0] == int(want.df_denom)
    np.testing.assert_allclose(got.statistic, float(want.statistic), rtol=1e-6)
    np.testing.assert_allclose(got.p_value, float(want.pvalue), rtol=1e-5, atol=1e-300)


def test_matrix_form_with_values(fits):
    model, Xs, ys, ref = fits
    R = np.zeros((2, 12))
    R[0, 0], R[1, 4] = 1.0, 1.0
    r = [0.3, 0.25]
    got = rm.wald_test(model, Xs, ys, R=R, r=r)
    want = ref.wald_test((R, np.array(r)), scalar=True)
    np.testing.assert_allclose(got.statistic, float(want.statistic), rtol=1e-6)


def test_one_coefficient_is_its_z_squared(fits):
    model, Xs, ys, _ = fits
    table = model.coef_table(Xs, ys)
    R = np.zeros((1, 12))
    R[0, 5] = 1.0
    got = model.wald_test(Xs, ys, R=R)
    np.testing.assert_allclose(got.statistic, table["z"].iloc[5] ** 2, rtol=1e-10)
    np.testing.assert_allclose(got.p_value, table["p_value"].iloc[5], rtol=1e-8)


def test_bad_hypotheses_are_refused(fits):
    model, Xs, ys, _ = fits
    with pytest.raises(ValueError, match="not both and not neither"):
        model.wald_test(Xs, ys)
    with pytest.raises(ValueError, match=r"R has 5 columns; the stacked coefficients are 3 "
                                         r"tasks x 4 \(12"):
        model.wald_test(Xs, ys, R=np.ones((1, 5)))
    with pytest.raises(ValueError, match=r"features=\[\] names no coefficient"):
        model.wald_test(Xs, ys, features=[])
    with pytest.raises(ValueError, match="rank 0: every row of R is zero"):
        model.wald_test(Xs, ys, R=np.zeros((1, 12)))
    with pytest.raises(ValueError, match=r"shape \(0, 12\)"):
        model.wald_test(Xs, ys, R=np.zeros((0, 12)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.wald_test(Xs, ys, R=np.full((1, 12), np.nan))
    with pytest.raises(ValueError, match="matrix of numbers"):
        model.wald_test(Xs, ys, R="abc")
    with pytest.raises(ValueError, match="'zero' or 'equal'"):
        model.wald_test(Xs, ys, features=["x0"], hypothesis="same")
    with pytest.raises(ValueError, match="not one of"):
        model.wald_test(Xs, ys, features=["age"])
    with pytest.raises(ValueError, match="r has"):
        model.wald_test(Xs, ys, R=np.eye(12)[:2], r=[1.0])


@pytest.mark.parametrize("hypothesis", ["zero", "equal"])
def test_features_task_by_task_equal_the_stacked_matrix(fits, hypothesis):
    """The per-task closed form of ``features=`` equals the textbook statistic on the stacked
    R of ``hypothesis_matrix`` and the block-diagonal V."""
    from regmtl.inference.estimate import estimate
    from regmtl.inference.wald import hypothesis_matrix

    model, Xs, ys, _ = fits
    R = hypothesis_matrix(estimate(model, Xs, ys), ["x0", "x2"], hypothesis)
    assert R.shape == ((6 if hypothesis == "zero" else 4), 12)
    by_features = model.wald_test(Xs, ys, features=["x0", "x2"], hypothesis=hypothesis)
    by_matrix = model.wald_test(Xs, ys, R=R)
    assert by_features.df == by_matrix.df == R.shape[0]
    np.testing.assert_allclose(by_features.statistic, by_matrix.statistic, rtol=1e-9)
