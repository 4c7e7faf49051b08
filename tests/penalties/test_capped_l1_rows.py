"""Capped-L1,L1 (``CappedL1(cap, group="l1")``, MALSAR's ``Least_msmtfl_capL1``).

Omega(W) = alpha sum_j min(||W_j||_1, cap). Checked: the exact row step (per-task
curvatures) against a brute-force minimizer; the prox against the same; whole fits (squared
and logistic) are stationary by a KKT residual computed here from the definition of the
Clarke subdifferential and are fixed points of the prox-gradient map; alpha_max; support and
bias on a known truth against L1 and L2,1; save / load; bad options refused.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from test_nonconvex_penalties import data_gradients

import regmtl as rm
from regmtl.penalties.kernels import capped_l1_row

PEN = rm.CappedL1(1.0, group="l1")


def _model(z, L, a, cap):
    return lambda w: 0.5 * np.sum(L * (w - z) ** 2) + a * min(np.abs(w).sum(), cap)


def _brute(z, L, a, cap, rng):
    f = _model(z, L, a, cap)
    best = min(f(np.zeros_like(z)), f(z))
    for _ in range(12):
        w0 = z + rng.standard_normal(len(z)) * rng.choice([0.01, 0.5, 2.0])
        r = minimize(f, w0, method="Nelder-Mead",
                     options=dict(xatol=1e-12, fatol=1e-14, maxiter=4000))
        best = min(best, r.fun)
    return best


def test_row_step_is_the_brute_force_minimizer():
    rng = np.random.default_rng(0)
    for trial in range(30):
        T = int(rng.integers(1, 4))
        z = rng.standard_normal(T) * rng.choice([0.3, 1.0, 3.0])
        L = rng.uniform(0.2, 3.0, T) if trial % 3 else np.full(T, 1.3)
        a, cap = rng.uniform(0.05, 1.5), rng.uniform(0.1, 3.0)
        out = np.empty(T)
        q = capped_l1_row(z, L, a, cap, out)
        f = _model(z, L, a, cap)
        assert abs(q - f(out)) <= 1e-12 * (1 + abs(q))
        assert f(out) <= _brute(z, L, a, cap, rng) + 1e-10


def test_prox_is_the_row_step_with_one_curvature():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((40, 4)) * 0.6
    step, alpha = 0.7, 0.4
    P = PEN.prox(W, step, alpha)
    for j in range(40):
        out = np.empty(4)
        capped_l1_row(W[j], np.full(4, 1 / step), alpha, 1.0, out)
        np.testing.assert_allclose(P[j], out, rtol=0, atol=1e-14)
        f = _model(W[j], np.full(4, 1 / step), alpha, 1.0)
        assert f(P[j]) <= min(f(np.zeros(4)), f(W[j])) + 1e-14
    assert PEN.value(P, alpha) == pytest.approx(alpha * np.minimum(np.abs(P).sum(1), 1.0).sum())


def _problem(loss, seed=3, sizes=(80, 120, 100, 90), p=15):
    rng = np.random.default_rng(seed)
    w = np.zeros(p)
    w[:3] = [1.5, -1.0, 0.8]
    Xs, ys = [], []
    for t, n in enumerate(sizes):
        X = rng.standard_normal((n, p))
        f = X @ (w * (1 + 0.2 * t))
        ys.append(f + 0.3 * rng.standard_normal(n) if loss == "squared"
                  else (f + 1.5 * rng.standard_normal(n) > 0).astype(float))
        Xs.append(X)
    return Xs, ys


def _kkt(Xs, ys, W, b, alpha, cap, loss):
    """The relative KKT residual from the definition (Clarke subdifferential of
    alpha min(||w||_1, cap) per row: alpha d||w||_1 below, {0} beyond, the segment
    theta alpha d||w||_1 at the cap, theta on a fine grid)."""
    G, G0, icpt = data_gradients(Xs, ys, W, b, loss)
    d2 = 0.0
    for g, w in zip(G, W, strict=True):
        n1 = np.abs(w).sum()

        def dist(theta, g=g, w=w):
            a = alpha * theta
            v = np.where(w != 0, g - a * np.sign(w), np.maximum(np.abs(g) - a, 0.0))
            return float(v @ v)

        if abs(n1 - cap) <= 1e-12 * cap:
            d2 += min(dist(th) for th in np.linspace(0, 1, 20001))
        elif n1 < cap:
            d2 += dist(1.0)
        else:
            d2 += float(g @ g)
    return np.sqrt(d2 + float(np.sum(np.square(icpt)))) / np.linalg.norm(G0), G


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("cap", [0.5, 2.0])
def test_fit_is_a_certified_stationary_point(loss, cap):
    Xs, ys = _problem(loss)
    pen = rm.CappedL1(cap, group="l1")
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    alpha = 0.1 * rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    m = est(pen, alpha=alpha, tol=1e-9).fit(Xs, ys)
    assert 0.0 <= m.kkt_residual_ <= 1e-9 and not hasattr(m, "dual_gap_")
    W, b = m.coef_matrix_, m.intercept_
    res, G = _kkt(Xs, ys, W, b, alpha, cap, loss)
    assert res <= 1e-8
    assert 0 < np.count_nonzero(np.any(W != 0, axis=1)) < W.shape[0]
    # a fixed point of the prox-gradient map with a step below 1 / L
    L = (0.25 if loss == "logistic" else 1.0) * max(
        np.linalg.eigvalsh(np.cov(X.T, bias=True)).max() for X in Xs)
    np.testing.assert_allclose(pen.prox(W + G / L, 1 / L, alpha), W, rtol=0, atol=1e-6)


def test_alpha_max_is_the_largest_entry_of_the_gradient_at_zero():
    Xs, ys = _problem("squared")
    a_max = rm.alpha_max(Xs, ys, penalty=PEN)
    assert a_max == pytest.approx(rm.alpha_max(Xs, ys, penalty=rm.L1()), rel=1e-12)
    at = rm.MultiTaskRegressor(PEN, alpha=a_max * (1 + 1e-9)).fit(Xs, ys)
    below = rm.MultiTaskRegressor(PEN, alpha=a_max * 0.98).fit(Xs, ys)
    assert np.count_nonzero(at.coef_matrix_) == 0 < np.count_nonzero(below.coef_matrix_)


def test_support_and_bias_against_l1_and_l21():
    """Known truth: T = 6 tasks, p = 80 Toeplitz (0.5) features, n_t = 60, 6 shared rows with
    |w| in [1.5, 2.5]; alpha by 5-fold CV. The capped rows recover the support (F1 > 0.9,
    at most 10 false positives) with a bias within 2%; L1 and L2,1 keep tens of false
    positives and shrink the true coefficients by more than 3%."""
    from scipy.linalg import toeplitz

    rng = np.random.default_rng(0)
    T, p, n, k = 6, 80, 60, 6
    C = np.linalg.cholesky(toeplitz(0.5 ** np.arange(p)))
    W = np.zeros((p, T))
    W[rng.choice(p, k, replace=False)] = (rng.choice([-1, 1], (k, T))
                                         * rng.uniform(1.5, 2.5, (k, T)))
    Xs = [rng.standard_normal((n, p)) @ C.T for _ in range(T)]
    ys = [X @ W[:, t] + rng.standard_normal(n) for t, X in enumerate(Xs)]
    out = {}
    for name, pen in {"L1": rm.L1(), "L21": rm.L21(), "capped": PEN}.items():
        cv = rm.MultiTaskRegressorCV(pen, alphas=12, eps=1e-2, cv=5, tol=1e-6).fit(Xs, ys)
        Wh = cv.best_estimator_.coef_matrix_
        est, tru = Wh != 0, W != 0
        tp, fp, fn = np.sum(est & tru), np.sum(est & ~tru), np.sum(~est & tru)
        bias = np.mean((Wh[tru] - W[tru]) * np.sign(W[tru])) / np.mean(np.abs(W[tru]))
        out[name] = (2 * tp / (2 * tp + fp + fn), int(fp), float(bias))
    f1, fp, bias = out["capped"]
    assert f1 > 0.9 and fp <= 10 and abs(bias) < 0.02, out
    for name in ("L1", "L21"):
        assert out[name][0] < f1 - 0.2 and out[name][2] < -0.03, out


def test_save_load_and_options(tmp_path):
    Xs, ys = _problem("squared")
    m = rm.MultiTaskRegressor(PEN, alpha=0.05).fit(Xs, ys)
    m.save(tmp_path / "m")
    back = rm.load(tmp_path / "m")
    assert back.penalty == PEN
    assert repr(back.penalty) == "CappedL1(cap=1.0, group='l1')"
    np.testing.assert_array_equal(back.coef_matrix_, m.coef_matrix_)
    with pytest.raises(ValueError, match="group must be True, False, 'l2' or 'l1'"):
        rm.MultiTaskRegressor(rm.CappedL1(1.0, group="l3"), alpha=0.1).fit(Xs, ys)
    l2 = rm.MultiTaskRegressor(rm.CappedL1(1.0, group="l2"), alpha=0.05).fit(Xs, ys)
    true = rm.MultiTaskRegressor(rm.CappedL1(1.0, group=True), alpha=0.05).fit(Xs, ys)
    np.testing.assert_array_equal(l2.coef_matrix_, true.coef_matrix_)
