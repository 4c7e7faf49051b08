"""The debiased estimator (``regmtl.inference.debiased``): against independent computations
(OLS and its standard errors from statsmodels, the inverse Gram, statsmodels' Logit), the
shared-design and per-task paths against each other, the group chi-square, the refusals, and
the coverage of its 95 % intervals after a cross-validated L2,1 / L1 fit (the acceptance
check, with fewer data sets than ``bench/bench_debiased_coverage.py``)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

import regmtl as rm
from regmtl.inference.debiased import (
    Precision,
    TaskBlock,
    debias,
    debiased_tasks,
    group_chi2,
    nodewise_precision,
)

sm = pytest.importorskip("statsmodels.api")

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _gaussian(n=200, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ np.triu(np.full((p, p), 0.3)) + 1.5
    beta = np.linspace(-1, 1, p)
    y = X @ beta + 0.7 + rng.standard_normal(n)
    return X, y


def _ols(X, y):
    return sm.OLS(y, sm.add_constant(X)).fit()


def test_precision_is_the_inverse_gram_at_zero_penalty():
    X, _ = _gaussian()
    w = np.random.default_rng(1).uniform(0.2, 2.0, X.shape[0])
    P = nodewise_precision(X, w, intercept=True, lam=0.0)
    m = w @ X / w.sum()
    gram = (X - m).T @ ((X - m) * w[:, None]) / X.shape[0]
    np.testing.assert_allclose(P.gram, gram, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P.theta, np.linalg.inv(gram), rtol=1e-6, atol=1e-8)
    # no intercept: the raw second moments
    P0 = nodewise_precision(X, None, intercept=False, lam=0.0)
    np.testing.assert_allclose(P0.theta, np.linalg.inv(X.T @ X / X.shape[0]), rtol=1e-6,
                               atol=1e-8)
    # a sparse design gives the same precision
    Ps = nodewise_precision(sp.csr_matrix(X), w, intercept=True, lam=0.0)
    np.testing.assert_allclose(Ps.theta, P.theta, rtol=1e-10, atol=1e-12)


def test_precision_rules_and_tau():
    X, _ = _gaussian(n=120, p=12)
    n, p = X.shape
    uni = nodewise_precision(X, lam="universal")
    assert uni.alpha == pytest.approx(np.sqrt(2 * np.log(p) / n))
    np.testing.assert_allclose(uni.lambdas, uni.alpha * np.sqrt(np.diag(uni.gram)))
    cv = nodewise_precision(X, lam="cv", n_lambdas=8, n_folds=3)
    assert 0 < cv.alpha
    # Theta_jj = 1 / tau_j^2, and the KKT identity tau_j^2 = Z_j'(Z_j - Z gamma_j) / n
    for P in (uni, cv):
        np.testing.assert_allclose(np.diag(P.theta), 1 / P.tau2)
        gamma = np.eye(p) - (P.theta * P.tau2[:, None]).T
        Z = X - X.mean(axis=0)
        kkt = np.sum(Z * (Z - Z @ gamma), axis=0) / n
        np.testing.assert_allclose(P.tau2, kkt, rtol=1e-5)


def test_chunks_of_nodewise_regressions_give_the_same_precision(monkeypatch):
    from regmtl.inference import debiased as mod

    X, _ = _gaussian(n=90, p=10)
    whole = nodewise_precision(X, lam="universal")
    monkeypatch.setattr(mod, "CHUNK_ENTRIES", 3 * 90 * 10)  # chunks of 3 regressions
    assert len(mod._chunks(90, 10)) == 4
    parts = nodewise_precision(X, lam="universal")
    # the same lassos, each solved to the gap tolerance of its stacked problem
    np.testing.assert_allclose(parts.theta, whole.theta, rtol=1e-4, atol=1e-5)


def test_squared_loss_at_a_tiny_penalty_is_ols():
    """p < n, lambda ~ 0: the debiased estimate is OLS and its standard error OLS's, both the
    model-based one (dispersion RSS / (n - p - 1)) and the sandwich (HC1); from any start,
    since one Newton step with the exact inverse solves least squares."""
    X, y = _gaussian()
    ols = _ols(X, y)
    model = rm.MultiTaskRegressor(penalty="l1", alpha=1e-9, tol=1e-12).fit(X, y)
    coef, b0 = np.ravel(model.coef_), float(np.ravel(model.intercept_)[0])
    block = TaskBlock(X, np.ones(len(y)), X @ coef + b0 - y, coef, intercept=True)
    P = nodewise_precision(X, lam=0.0)
    b, se, _ = debias(block, P)
    np.testing.assert_allclose(b, ols.params[1:], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(se, ols.bse[1:], rtol=1e-6)
    _, se_hc, _ = debias(block, P, robust=True)
    np.testing.assert_allclose(se_hc, ols.get_robustcov_results("HC1").bse[1:], rtol=1e-6)
    # a shrunken start (half OLS, intercept refit): the same answer
    half = ols.params[1:] / 2
    start = TaskBlock(X, np.ones(len(y)), X @ half + (y - X @ half).mean() - y, half)
    np.testing.assert_allclose(debias(start, P)[0], ols.params[1:], rtol=1e-10, atol=1e-10)
    # weights c: weighted least squares, Var(y_r) = sigma^2 / c_r
    c = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    wls = sm.WLS(y, sm.add_constant(X), weights=c).fit()
    beta = wls.params[1:]
    wblock = TaskBlock(X, c, c * (X @ beta + wls.params[0] - y), beta)
    bw, sew, _ = debias(wblock, lam=0.0)
    np.testing.assert_allclose(bw, beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(sew, wls.bse[1:], rtol=1e-6)


def test_logistic_form_matches_statsmodels_logit():
    """The GLM form (van de Geer et al., section 3) on an unpenalized logistic problem: at
    the maximum-likelihood estimate the standard errors are Logit's (inverse Fisher
    information, intercept partialled out), the sandwich its HC0 with the HC1 factor; from a
    perturbed start the debiased estimate is a Newton step toward the MLE."""
    rng = np.random.default_rng(4)
    n, p = 400, 5
    X = rng.standard_normal((n, p))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ np.linspace(-1, 1, p) + 0.3)))) * 1.0
    fit = sm.Logit(y, sm.add_constant(X)).fit(disp=0, tol=1e-12)
    beta, b0 = fit.params[1:], fit.params[0]
    mu = 1 / (1 + np.exp(-(X @ beta + b0)))
    block = TaskBlock(X, mu * (1 - mu), mu - y, beta, intercept=True, dispersion=1.0)
    b, se, P = debias(block, lam=0.0)
    np.testing.assert_allclose(b, beta, atol=1e-8)
    np.testing.assert_allclose(se, fit.bse[1:], rtol=1e-6)
    # statsmodels' discrete models apply no small-sample factor: HC0 times sqrt(n / (n - k))
    robust = sm.Logit(y, sm.add_constant(X)).fit(disp=0, tol=1e-12, cov_type="HC0")
    np.testing.assert_allclose(debias(block, P, robust=True)[1],
                               robust.bse[1:] * np.sqrt(n / (n - p - 1)), rtol=1e-6)
    # a perturbed start: one step lands much closer to the MLE
    off = beta + 0.05 * rng.standard_normal(p)
    mu = 1 / (1 + np.exp(-(X @ off + b0)))
    step = debias(TaskBlock(X, mu * (1 - mu), mu - y, off, dispersion=1.0), lam=0.0)[0]
    assert np.abs(step - beta).max() < 0.1 * np.abs(off - beta).max()


def _shared_blocks(seed=5, n=120, p=15, T=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, T))
    W[:3] = 1.0
    E = rng.standard_normal((n, T))
    Y = X @ W + E
    model = rm.MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, Y)
    coef = np.asarray(model.coef_)
    F = X @ coef.T + model.intercept_
    return X, [TaskBlock(X, np.ones(n), F[:, t] - Y[:, t], coef[t]) for t in range(T)], Y - F


def test_shared_design_fits_one_precision_and_matches_the_task_loop(monkeypatch):
    from regmtl.inference import debiased as mod

    X, blocks, _ = _shared_blocks()
    calls = []
    real = mod.nodewise_precision

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "nodewise_precision", counted)
    for robust in (False, True):
        calls.clear()
        B, SE = debiased_tasks(blocks, shared_design=True, robust=robust, lam="universal")
        assert len(calls) == 1
        P = real(X, None, True, lam="universal")
        for t, block in enumerate(blocks):
            b, se, _ = debias(block, P, robust=robust)
            np.testing.assert_allclose(B[:, t], b, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(SE[:, t], se, rtol=1e-12)
        calls.clear()
        B2, SE2 = debiased_tasks(blocks, shared_design=False, robust=robust, lam="universal")
        assert len(calls) == len(blocks)
        np.testing.assert_allclose(B2, B, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(SE2, SE, rtol=1e-8)
    # different curvatures on one design: one precision per task
    calls.clear()
    tilted = [TaskBlock(b.X, np.linspace(0.5, 1.5, len(b.w)), b.s, b.coef) for b in blocks[:2]]
    tilted.append(blocks[2])
    debiased_tasks(tilted, shared_design=True, lam="universal")
    assert len(calls) == 3


def test_group_chi2_independent_and_correlated():
    rng = np.random.default_rng(6)
    p, T, n = 6, 3, 500
    B, SE = rng.standard_normal((p, T)), rng.uniform(0.5, 1.5, (p, T))
    test = group_chi2(B, SE, rows=[0, 2])
    z = B[[0, 2]] / SE[[0, 2]]
    np.testing.assert_allclose(test.statistic, np.sum(z**2, axis=1))
    np.testing.assert_allclose(test.pvalue, stats.chi2.sf(test.statistic, T))
    assert test.df == T
    # correlated task errors: z' R^{-1} z with R the residuals' correlation
    L = np.linalg.cholesky(np.array([[1, 0.6, 0.3], [0.6, 1, 0.2], [0.3, 0.2, 1]]))
    E = rng.standard_normal((n, T)) @ L.T * np.array([1.0, 2.0, 0.5])
    corr = test_corr = E.T @ E / n
    d = np.sqrt(np.diag(corr))
    test_corr = corr / np.outer(d, d)
    got = group_chi2(B, SE, residuals=E)
    Z = B / SE
    want = np.einsum("it,ts,is->i", Z, np.linalg.inv(test_corr), Z)
    np.testing.assert_allclose(got.statistic, want, rtol=1e-8)
    assert got.df == T


def test_group_chi2_is_calibrated_on_a_shared_design_with_correlated_errors():
    """A null row on a shared design with strongly correlated task errors: the statistic with
    the residual correlation keeps its level; the independence form would not."""
    rng = np.random.default_rng(7)
    n, p, T, reps = 150, 6, 3, 60
    L = np.linalg.cholesky(0.8 * np.ones((T, T)) + 0.2 * np.eye(T))
    with_r, without = [], []
    for _ in range(reps):
        X = rng.standard_normal((n, p))
        E = rng.standard_normal((n, T)) @ L.T
        Y = X[:, :1] @ np.ones((1, T)) + E
        A = np.column_stack([np.ones(n), X])
        coef = np.linalg.lstsq(A, Y, rcond=None)[0]
        R = Y - A @ coef
        blocks = [TaskBlock(X, np.ones(n), -R[:, t], coef[1:, t]) for t in range(T)]
        B, SE = debiased_tasks(blocks, shared_design=True, lam=0.0)
        with_r.append(group_chi2(B, SE, rows=[3], residuals=R).pvalue[0])
        without.append(group_chi2(B, SE, rows=[3]).pvalue[0])
    assert 0.0 <= np.mean(np.array(with_r) < 0.05) <= 0.15
    assert stats.kstest(with_r, "uniform").pvalue > 0.01


def test_refusals():
    X, y = _gaussian(n=50, p=6)
    n, p = X.shape
    ok = TaskBlock(X, np.ones(n), np.zeros(n), np.zeros(p))
    with pytest.raises(ValueError, match="2-D"):
        nodewise_precision(X[:, 0])
    with pytest.raises(ValueError, match="max_features"):
        nodewise_precision(X, max_features=5)
    with pytest.raises(ValueError, match=">= 0"):
        nodewise_precision(X, -np.ones(n))
    with pytest.raises(ValueError, match=r"shape \(50,\)"):
        nodewise_precision(X, np.ones(n + 1))
    with pytest.raises(ValueError, match="NaN"):
        nodewise_precision(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="zero weighted variance"):
        nodewise_precision(np.column_stack([X, np.ones(n)]))
    with pytest.raises(ValueError, match="lam must be"):
        nodewise_precision(X, lam="bic")
    with pytest.raises(ValueError, match="n_folds"):
        nodewise_precision(X, n_folds=1)
    with pytest.raises(ValueError, match=r"block.coef must have shape \(6,\)"):
        debias(TaskBlock(X, np.ones(n), np.zeros(n), np.zeros(p + 1)))
    with pytest.raises(ValueError, match="block.s"):
        debias(TaskBlock(X, np.ones(n), np.zeros(n - 1), np.zeros(p)))
    with pytest.raises(ValueError, match="dispersion"):
        debias(TaskBlock(X, np.ones(n), np.zeros(n), np.zeros(p), dispersion=-1.0))
    with pytest.raises(TypeError, match="TaskBlock"):
        debias((X, np.ones(n)))
    P = nodewise_precision(X, lam=0.0)
    with pytest.raises(ValueError, match="precision is of a design"):
        debias(TaskBlock(X[:, :4], np.ones(n), np.zeros(n), np.zeros(4)), P)
    with pytest.raises(TypeError, match="Precision"):
        debias(ok, precision=np.eye(p))
    tiny = TaskBlock(X[:7], np.ones(7), np.ones(7), np.ones(6))
    with pytest.raises(ValueError, match="cannot estimate the dispersion"):
        debias(tiny, lam=0.0)
    with pytest.raises(ValueError, match="non-empty"):
        debiased_tasks([], shared_design=False)
    with pytest.raises(ValueError, match="designs differ"):
        debiased_tasks([ok, TaskBlock(X + 1, np.ones(n), np.zeros(n), np.zeros(p))], True)
    with pytest.raises(ValueError, match="different numbers of features"):
        debiased_tasks([ok, TaskBlock(X[:, :4], np.ones(n), np.zeros(n), np.zeros(4))], False)
    B, SE = np.ones((p, 3)), np.ones((p, 3))
    with pytest.raises(ValueError, match="same shape"):
        group_chi2(B, SE[:, :2])
    with pytest.raises(ValueError, match="rows must be"):
        group_chi2(B, SE, rows=[p])
    with pytest.raises(ValueError, match="positive standard errors"):
        group_chi2(B, 0 * SE)
    with pytest.raises(ValueError, match=r"residuals must have shape \(n, 3\)"):
        group_chi2(B, SE, residuals=np.ones((10, 2)))
    assert isinstance(P, Precision)


@pytest.mark.parametrize("penalty, reps", [("l21", 8), ("l1", 5)])
def test_coverage_after_a_cross_validated_fit(penalty, reps):
    """The acceptance check (3 tasks x 150 rows, p = 40, 5 nonzero rows, Toeplitz 0.3, noise
    sd 1; see bench/bench_debiased_coverage.py, which runs 30 data sets): the 95 % intervals
    cover >= 88 % of all coefficients and >= 85 % of the nonzero ones."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench_debiased_coverage as bench
    finally:
        sys.path.remove(str(BENCH))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        result = bench.coverage(penalty, reps=reps, seed=11)
    assert result["all"] >= 0.88, result
    assert result["nonzero"] >= 0.85, result
    assert result["length"] < 0.6, result  # not covering by being uninformative
