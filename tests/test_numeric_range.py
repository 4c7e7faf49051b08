"""Nothing silently wrong with numbers far from zero or far from 1.

Columns far from zero (timestamps, prices) are fitted exactly (the per-task shift of
:func:`regmtl.taskdata.shift_columns`): the coefficients agree with scikit-learn's within the
solvers' tolerance. Values whose squares overflow or underflow float64 are refused by the one
range check of the input layer, named; task ids mixing booleans and numbers are refused.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet, Lasso, MultiTaskLasso, Ridge

import regmtl as rm
from regmtl.cli import main
from regmtl.inputs import as_task_data
from regmtl.ranges import check_numeric_range
from regmtl.scaling import pooled_scaling
from regmtl.taskdata import shift_columns

TINY = r"^X holds only values tiny in magnitude "
RNG = np.random.default_rng(0)
N, P = 100, 3
Z = RNG.standard_normal((N, P))
W_TRUE = np.array([1.0, -2.0, 0.5])
Y1 = Z @ W_TRUE + 0.1 * RNG.standard_normal(N)
Y2 = np.column_stack([Z @ W_TRUE, Z @ W_TRUE[::-1]]) + 0.1 * RNG.standard_normal((N, 2))


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no RuntimeWarning
        return est.fit(*args, **kwargs)


# ----------------------------------------------------------------------- offset columns
def test_ridge_on_columns_far_from_zero_equals_sklearn():
    """Before: coefficients off by 1.83 and predictions by 5.2. Ridge(alpha=n a) is exact."""
    X = 1e9 + Z
    m = _fit(rm.MultiTaskRegressor("l2", alpha=0.1, tol=1e-10), X, Y1)
    ref = Ridge(alpha=N * 0.1).fit(X, Y1)
    ref_z = Ridge(alpha=N * 0.1).fit(Z, Y1)  # the same model: the offset is the intercept's
    assert np.abs(m.coef_ - ref.coef_).max() < 1e-9  # sklearn centers in two passes: exact
    # 1e9 + Z holds Z to eps * 1e9 = 1.2e-7: the coefficients of Z itself to about that
    assert np.abs(m.coef_ - ref_z.coef_).max() < 1e-6
    # predictions of magnitude ~1e9 * |w|: agreement to a few float64 roundings of them
    assert np.abs(m.predict(X) - ref_z.predict(Z)).max() < 1e-5


def test_multitask_lasso_on_a_shared_design_far_from_zero_equals_sklearn():
    """Before: off by 1.99 (max |coef| 1.99) with only a ConvergenceWarning."""
    X = 1e8 + Z
    m = _fit(rm.MultiTaskRegressor("l21", alpha=0.01, tol=1e-10), X, Y2)
    ref = MultiTaskLasso(alpha=0.01, tol=1e-12, max_iter=100_000).fit(Z, Y2)
    assert np.abs(m.coef_ - ref.coef_).max() < 1e-6
    # predictions of magnitude 1e8 |w|: to a few roundings of them (eps * 1e8 = 1.5e-8)
    assert np.abs(m.predict(X) - ref.predict(Z)).max() < 1e-5


@pytest.mark.parametrize("penalty, ref", [
    ("l1", Lasso(alpha=0.01, tol=1e-12, max_iter=100_000)),
    (rm.ElasticNet(l1_ratio=0.5), ElasticNet(alpha=0.01, l1_ratio=0.5, tol=1e-12,
                                             max_iter=100_000)),
])
def test_lasso_and_elasticnet_on_timestamps_equal_sklearn(penalty, ref):
    X = 1.7e9 + Z  # seconds since 1970, with a spread of a second
    m = _fit(rm.MultiTaskRegressor(penalty, alpha=0.01, tol=1e-10), X, Y1)
    ref.fit(Z, Y1)
    assert np.abs(m.coef_ - ref.coef_).max() < 1e-6


def test_tasks_with_different_offsets_equal_separate_ridge_fits():
    """Long form, each task's column around its own large value (per-task shift)."""
    task = np.repeat(["a", "b"], N // 2)
    X = Z + np.where(task == "a", 1.6e9, 1.7e9)[:, None]
    m = _fit(rm.MultiTaskRegressor("l2", alpha=0.1, tol=1e-10), X, Y1, task=task)
    for k, t in enumerate(("a", "b")):
        rows = task == t
        ref = Ridge(alpha=rows.sum() * 0.1).fit(Z[rows], Y1[rows])
        assert np.abs(m.coef_[k] - ref.coef_).max() < 1e-6  # X holds Z to eps * 1.7e9


def test_classifier_on_columns_far_from_zero_equals_the_centered_fit():
    labels = np.where(Y1 > 0, "yes", "no")
    m = _fit(rm.MultiTaskClassifier("l2", alpha=0.01, tol=1e-10), 1e9 + Z, labels)
    ref = _fit(rm.MultiTaskClassifier("l2", alpha=0.01, tol=1e-10), Z, labels)
    assert np.abs(m.coef_ - ref.coef_).max() < 1e-6
    assert np.abs(m.decision_function(1e9 + Z) - ref.decision_function(Z)).max() < 1e-5


def test_shift_columns_keeps_the_scores():
    """``x w + b`` is the same on the shifted columns with ``b + s w``."""
    data = as_task_data(1e9 + Z, Y2)
    shifted = shift_columns(data)
    W = RNG.standard_normal((P, 2))
    b = np.array([0.5, -1.0])
    direct = (1e9 + Z) @ W + b
    via = shifted.linear(W, b + np.einsum("jt,jt->t", shifted.x_shift, W))
    assert np.abs(via.reshape(2, N).T - direct).max() < 1e-5
    assert shift_columns(as_task_data(Z, Y2)) is as_task_data(Z, Y2) or \
        shift_columns(as_task_data(Z, Y2)).x_shift is None


# ----------------------------------------------------------------------- scales
@pytest.mark.parametrize("sx, sy, name, magnitude", [
    (1e-200, 1.0, "X", "e-200"),
    (1e-310, 1.0, "X", "e-310"),  # subnormal
    (1.0, 1e-200, "y", "e-200"),
    (1e200, 1.0, "X", "e+200"),
    (1.0, 1e200, "y", "e+200"),
])
def test_values_whose_squares_leave_float64_are_refused(sx, sy, name, magnitude):
    """Before: all-zero coefficients, silently (or ZeroDivisionError at 1e-150)."""
    with pytest.raises(ValueError, match=rf"^{name}\b.*{re.escape(magnitude)}.*Rescale {name}"):
        rm.MultiTaskRegressor("l2", alpha=0.1).fit(Z * sx, Y1 * sy)


def test_a_tiny_task_of_y_is_named():
    ys = [Y1[:50], 1e-200 * Y1[50:]]
    with pytest.raises(ValueError, match=r"y of task 1 .*[0-9.]+e-200"):
        rm.MultiTaskRegressor("l2", alpha=0.1).fit([Z[:50], Z[50:]], ys)


@pytest.mark.parametrize("scale", [1e100, 1e-100, 1e140, 1e-140])
def test_scales_inside_the_range_are_equivariant(scale):
    """X -> s X is W -> W / s with alpha -> alpha / s (L21) or alpha / s^2 (ridge): exact.
    No ConvergenceWarning: at X * 1e100 the rounding of X^T theta outweighs alpha, and the
    certificate takes that floor off (before: warned of a relative gap of 1.6e+170)."""
    for penalty, power in (("l21", 1), ("l2", 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m = rm.MultiTaskRegressor(penalty, alpha=0.05, tol=1e-8).fit(Z * scale, Y2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the reference at alpha / s^2: near-OLS
            ref = rm.MultiTaskRegressor(penalty, alpha=0.05 / scale**power, tol=1e-8).fit(Z, Y2)
        assert np.abs(m.coef_ * scale - ref.coef_).max() <= 1e-9 * max(
            1.0, np.abs(ref.coef_).max())


@pytest.mark.parametrize("penalty", ["l2", "l1", "l21", "elasticnet"])
@pytest.mark.parametrize("scale", [1e50, 1e100])
def test_huge_columns_fit_ols_without_a_false_convergence_warning(penalty, scale):
    """X * 1e50 with alpha = 0.1 is OLS to float64 precision; before, every penalty warned
    (ridge: a relative gap of 1.6e+70 "after max_iter", L1/L21: stalled at 2.8e-3)."""
    ols = np.linalg.lstsq(np.column_stack([Z, np.ones(N)]), Y1, rcond=None)[0][:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = rm.MultiTaskRegressor(penalty, alpha=0.1).fit([Z * scale] * 2, [Y1, Y1])
    assert np.abs(m.coef_ * scale - ols).max() <= 1e-9 * np.abs(ols).max()


def test_huge_sparse_columns_fit_without_a_false_convergence_warning():
    """The floor reads a sparse design's column scales too (no intercept: OLS through 0)."""
    ols = np.linalg.lstsq(Z, Y1, rcond=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = rm.MultiTaskRegressor("l21", alpha=0.1, fit_intercept=False).fit(
            [sp.csr_matrix(Z * 1e50)] * 2, [Y1, Y1])
    assert np.abs(m.coef_ * 1e50 - ols).max() <= 1e-9 * np.abs(ols).max()


def test_the_rounding_floor_is_negligible_on_well_scaled_data():
    """On well-scaled data the floor is below 1e-10 of the gap: it cannot hide a solve
    that stopped short (2 iterations still warn)."""
    from regmtl.solvers import reference, solve
    from regmtl.solvers.certificates.certify import rounding_floor

    data = rm.as_task_data([Z, Z * 3], [Y1, Y1])
    with pytest.warns(Warning, match="ran out of iterations"):
        res = solve(data, rm.Quadratic(), rm.L21(), 0.01, solver="bcd", max_iter=2,
                    ref=reference(data, rm.Quadratic(), True))
    f = data.linear(res.W, res.b)
    floor = rounding_floor(data, rm.Quadratic(), rm.L21(), 0.01, res.W, f, True)
    assert 0 <= floor <= 1e-10 * res.certificate.value
    assert not res.converged


def test_no_zero_division_at_1e_150():
    for sx, sy in ((1e-150, 1.0), (1.0, 1e-150)):
        m = rm.MultiTaskRegressor("l2", alpha=0.1).fit(Z * sx, Y1 * sy)
        ref = Ridge(alpha=N * 0.1).fit(Z * sx, Y1 * sy)
        assert np.abs(m.coef_ - ref.coef_).max() <= 1e-6 * np.abs(ref.coef_).max()


def test_the_helper_names_the_column():
    X = np.column_stack([Z[:, 0], 1e-170 * Z[:, 1]])
    with pytest.raises(ValueError, match=TINY + r"\(column 'b'\).*[0-9.]+e-170"):
        check_numeric_range(X, "X", labels=["a", "b"])
    with pytest.raises(ValueError, match=TINY + r"\(column 1\).*[0-9.]+e-170"):
        pooled_scaling([X])
    check_numeric_range(np.array([0.0, 1e-200, 1.0]), "y")  # one tiny value among others: ok


def test_the_deep_data_layer_checks_the_range():
    pytest.importorskip("torch")
    from regmtl.deep import TaskSpec
    from regmtl.deep.data import MultiTaskDataset

    tasks = [TaskSpec("a"), TaskSpec("b")]
    with pytest.raises(ValueError, match=r"^X .*[0-9.]+e-200"):
        MultiTaskDataset(Z * 1e-200, Y2, tasks)
    with pytest.raises(ValueError, match=r"targets\['b'\].*[0-9.]+e\+200"):
        MultiTaskDataset(Z, np.column_stack([Y2[:, 0], 1e200 * Y2[:, 1]]), tasks)


# ----------------------------------------------------------------------- task ids
def test_task_ids_mixing_booleans_and_numbers_are_refused():
    """Before: True and 1 were merged into one task."""
    task = [True, 1] * (N // 2)
    with pytest.raises(ValueError, match=r"^task: task ids mix booleans and numbers"):
        rm.MultiTaskRegressor("l2").fit(Z, Y1, task=task)
    with pytest.raises(ValueError, match=r"^task: task ids mix booleans"):
        rm.MultiTaskRegressor("l2").fit(Z, Y1, task=pd.Series(task, dtype=object))
    Y = pd.DataFrame(Y2, columns=pd.Index([True, 1], dtype=object))
    with pytest.raises(ValueError, match=r"y \(its columns\): task ids mix booleans"):
        rm.MultiTaskRegressor("l2").fit(Z, Y)
    m = rm.MultiTaskRegressor("l2").fit(Z, Y1, task=[True, False] * (N // 2))
    assert m.tasks_.tolist() == [False, True]
    with pytest.raises(ValueError, match=r"task: unknown task 1"):
        m.predict(Z[:2], task=[1, 1])


# ----------------------------------------------------------------------- CLI
def test_cli_refuses_a_feature_of_magnitude_1e200(tmp_path, capsys):
    """Before: "2 of 3 features used", RMSE 0.53 for noise 0.1, with a RuntimeWarning."""
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(Z, columns=["a", "b", "c"])
    frame["c"] *= 1e200
    frame["t"] = np.repeat(["u", "v"], N // 2)
    frame["y"] = Y1
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rc = main(["fit", str(path), "--task-col", "t", "--target", "y", "--alpha", "0.01",
                   "--out", str(tmp_path / "m.npz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "regmtl: error: X holds values as large as" in err and "(column 2)" in err
    assert "Rescale X" in err and not (tmp_path / "m.npz").exists()


def test_sparse_designs_far_from_zero_equal_sklearn():
    """A fully stored sparse column far from zero: before, off by 1.99 (a ConvergenceWarning)."""
    X = sp.csr_matrix(1e9 + Z)
    m = _fit(rm.MultiTaskRegressor("l21", alpha=0.01, tol=1e-10), X, Y2)
    ref = MultiTaskLasso(alpha=0.01, tol=1e-12, max_iter=100_000).fit(Z, Y2)
    assert np.abs(m.coef_ - ref.coef_).max() < 1e-6
    assert np.abs(m.predict(X) - ref.predict(Z)).max() < 1e-5
    Xs = [sp.csr_matrix(1.6e9 + Z[:50]), sp.csr_matrix(1.7e9 + Z[50:])]  # stacked, per task
    m = _fit(rm.MultiTaskRegressor("l2", alpha=0.1, tol=1e-10), Xs, [Y1[:50], Y1[50:]])
    for k, rows in enumerate((slice(0, 50), slice(50, N))):
        ref = Ridge(alpha=50 * 0.1).fit(Z[rows], Y1[rows])
        assert np.abs(m.coef_[k] - ref.coef_).max() < 1e-6


def test_paths_alpha_max_and_cv_on_columns_far_from_zero():
    """alpha_max, regularization_path and the CV estimator shift offset columns as the fit
    does: the same alphas, coefficients and predictions as on the columns near zero
    (measured: alpha_max 7e-10 relative, path coefficients 1e-9, CV 3e-9 with the Haswell
    kernels, 1.8e-8 with SandyBridge's). Columns at 1e8 hold their unit-scale part to
    ``eps 1e8 = 1.1e-8`` (each fold's mean, subtracted, rounds there), so an alpha derived
    from them agrees to a few times that whatever the BLAS: 1e-7 relative."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((80, 5))
    Y = Z @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((80, 3))
    X = 1e8 + Z
    assert rm.alpha_max(X, Y, penalty="l21") == pytest.approx(
        rm.alpha_max(Z, Y, penalty="l21"), rel=1e-7)
    far = rm.regularization_path(X, Y, penalty="l21", alphas=4, tol=1e-10)
    near = rm.regularization_path(Z, Y, penalty="l21", alphas=4, tol=1e-10)
    np.testing.assert_allclose(far.alphas, near.alphas, rtol=1e-7)
    np.testing.assert_allclose(far.coefs, near.coefs, atol=1e-6)
    # intercepts in the input's units: the same predictions
    np.testing.assert_allclose(X @ far.coefs[-1].T + far.intercepts[-1],
                               Z @ near.coefs[-1].T + near.intercepts[-1], atol=1e-5)
    a = rm.MultiTaskRegressorCV("l21", cv=3).fit(X, Y)
    b = rm.MultiTaskRegressorCV("l21", cv=3).fit(Z, Y)
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-7)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
    np.testing.assert_allclose(a.predict(X), b.predict(Z), atol=1e-5)


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_pooled_model_on_columns_far_from_zero(kind):
    """compare's pooled model (one slope for all tasks) shifts offset columns too: the same
    alpha, slope and predictions as on the columns near zero."""
    from regmtl.compare import PooledModel

    rng = np.random.default_rng(1)
    Zs = [rng.standard_normal((40, 4)) for _ in range(3)]
    w = rng.standard_normal(4)
    ys = [Z @ w + 0.3 * rng.standard_normal(40) for Z in Zs]
    if kind == "binary":
        ys = [(y > 0).astype(int) for y in ys]
    near = PooledModel(kind=kind, cv=3).fit(Zs, ys)
    far = PooledModel(kind=kind, cv=3).fit([1e8 + Z for Z in Zs], ys)
    assert far.alpha_ == pytest.approx(near.alpha_, rel=1e-8)
    np.testing.assert_allclose(far.coef_, near.coef_, atol=1e-6)
    for a, b in zip(far.predict([1e8 + Z for Z in Zs]), near.predict(Zs), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_deep_trainer_warns_where_float32_loses_a_column():
    """The Trainer casts X to float32 (the wrappers standardize in float64 first): columns
    like 1e9 + N(0, 1), which float32 holds as one or two values, are named in a warning;
    years 2000..2019 and standard normal columns are not."""
    torch = pytest.importorskip("torch")
    from regmtl.deep import HardSharing, Trainer, set_seed

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((200, 2))
    years = np.c_[2000.0 + np.arange(200) % 20, Z[:, 1]]

    def fit(X):
        set_seed(0)
        Trainer(HardSharing(2, ["a"], (4,)), max_epochs=1, grad_balance=0).fit(
            (X, {"a": Z[:, 0]}))

    with pytest.warns(UserWarning, match=r"X: column\(s\) 0, 1 vary by little.*float32"):
        fit(1e9 + Z)
    assert len(np.unique(np.float32(1e9 + Z[:, 0]))) <= 2  # what the net would have seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(Z)
        fit(years)
    del torch
