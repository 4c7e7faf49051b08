"""The nonconvex fused group lasso (MALSAR's ``Least_NCFGLassoF1``) and its convex stage:

    NonconvexFusedGroupLasso(f):  alpha sum_j (sqrt(||W_j||_1) + f sum_t |W_jt - W_j,t+1|)
    WeightedFusedLasso(c, f):     alpha sum_j (c_j ||W_j||_1 + f sum_t |W_jt - W_j,t+1|)

Checked against arguments independent of the implementation: the stage's prox and dual norm
written in cvxpy (Clarabel, tightened); MALSAR's algorithm (majorize-minimize, every stage a
weighted fused lasso) written here with every stage solved by cvxpy, on MALSAR's own objective
(no intercept, the sum of squared errors); the Clarke KKT residual against a cvxpy projection;
problems whose change points are known.

Tolerances and why:

* Stage prox and dual norm against cvxpy: ``1e-7`` relative (cvxpy's accuracy); the prox's
  exactness itself by its objective never worse than cvxpy's (``1e-12`` relative).
* Whole fits against MALSAR's algorithm with cvxpy stages: the same stationary point from the
  same start, coefficients to ``1e-4`` absolute, objectives to ``1e-6`` relative (cvxpy's
  stage accuracy, compounded over a few stages; measured 1e-7 or better).
* Monotone decrease: each stage's objective at most the previous one plus its certified gap
  (relative to P0) plus ``1e-12`` (rounding); the fixed point: one more stage from the fit
  moves W by at most ``tol`` relative.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from test_temporal_penalties import diff_matrix, solve_cvx

import regmtl as rm
from regmtl.penalties import PENALTY_NAMES, make_penalty
from regmtl.penalties.nonconvex_fused import WeightedFusedLasso
from regmtl.solvers import reference, solve
from regmtl.solvers.methods.majorize import majorize_minimize

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")


def problem(loss: str, seed: int, T: int = 6, p: int = 8):
    """T time points; row 0 jumps once, row 1 is on from the middle, row 2 is constant and
    small, the rest is noise. Logistic labels are 0/1 and not separable."""
    rng = np.random.default_rng(seed)
    W = np.zeros((p, T))
    W[0] = np.where(np.arange(T) < T // 2, 1.0, 2.0)
    W[1, T // 2:] = -1.5
    W[2] = 0.3
    Xs, ys = [], []
    for _ in range(T):
        n = int(rng.integers(25, 40))
        X = rng.standard_normal((n, p))
        f = X @ W[:, _]
        if loss == "squared":
            y = f + 0.3 * rng.standard_normal(n)
        else:
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(int)
            y[0], y[1] = 0, 1
        Xs.append(X)
        ys.append(y)
    return Xs, ys, W


def malsar_objective(Xs, ys, W, lam, gam):
    """MALSAR's ``funcVal_eval`` of ``Least_NCFGLassoF1``."""
    loss = sum(0.5 * float(np.sum((y - X @ W[:, t]) ** 2))
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    return loss + lam * float(np.sqrt(np.abs(W).sum(axis=1)).sum()) + gam * float(
        np.abs(np.diff(W, axis=1)).sum())


def malsar_majorize(Xs, ys, rho1, rho2, reweight, tol, max_stages=50):
    """MALSAR's majorize-minimize loop: a first stage with row weights ``rho1`` (lasso) and
    ``rho2`` (fused; a number or one per row), then stages with ``reweight(W) -> (rho1,
    rho2)`` (``inf`` in rho1 holds a row at zero), every stage a row-weighted fused lasso
    solved by cvxpy; rows below 1e-7 count as zero (cvxpy does not return exact zeros). Stops
    when W moves by at most tol relative."""
    T, p = len(Xs), Xs[0].shape[1]
    R = diff_matrix(T)

    def stage(rho1, rho2):
        W = cp.Variable((p, T))
        loss = sum(0.5 * cp.sum_squares(y - X @ W[:, t])
                   for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
        live = np.isfinite(rho1)
        rho2 = np.broadcast_to(np.asarray(rho2, dtype=float), (p,))
        reg = (cp.sum(cp.multiply(np.where(live, rho1, 0.0), cp.norm1(W, axis=1)))
               + cp.sum(cp.multiply(np.where(live, rho2, 0.0), cp.norm1(W @ R, axis=1))))
        cons = [W[~live] == 0] if (~live).any() else []
        solve_cvx(cp.Problem(cp.Minimize(loss + reg), cons))
        V = W.value.copy()
        V[np.abs(V).sum(axis=1) < 1e-7] = 0.0
        return V

    W = stage(np.broadcast_to(rho1, (p,)), rho2)
    for _ in range(max_stages):
        new = stage(*reweight(W))
        done = np.linalg.norm(new - W) <= tol * np.linalg.norm(new)
        W = new
        if done:
            break
    return W


def malsar_ncfglasso(Xs, ys, lam, gam, tol, max_stages=50):
    """MALSAR's algorithm: W0 = Least_FGLasso(lambda, gamma), then stages of the weighted
    fused lasso with rho1_j = lambda / (2 sqrt(||W0_j||_1)) and gamma."""

    def reweight(W):
        s = np.abs(W).sum(axis=1)
        with np.errstate(divide="ignore"):
            return np.where(s > 0, lam / (2 * np.sqrt(s)), np.inf), gam

    return malsar_majorize(Xs, ys, lam, gam, reweight, tol, max_stages)


# --------------------------------------------------------------------------- the stage
def test_stage_prox_matches_cvxpy():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((5, 7)) * 2
    V[3] = np.repeat([1.0, -2.0], [3, 4])  # ties
    c = np.array([0.3, 1.0, 2.5, 0.7, np.inf])
    pen = WeightedFusedLasso(c, fused_weight=0.6)
    step, alpha = 0.8, 0.9
    U = pen.prox(V, step, alpha)
    assert np.all(U[4] == 0.0)
    R = diff_matrix(7)
    for j in range(4):
        u = cp.Variable(7)
        obj = (cp.sum_squares(u - V[j]) / (2 * step)
               + alpha * (c[j] * cp.norm1(u) + 0.6 * cp.norm1(R.T @ u)))
        val = solve_cvx(cp.Problem(cp.Minimize(obj)))

        def F(x, j=j):
            return (np.sum((x - V[j]) ** 2) / (2 * step)
                    + alpha * (c[j] * np.abs(x).sum() + 0.6 * np.abs(np.diff(x)).sum()))

        assert F(U[j]) == pytest.approx(val, rel=1e-7)
        assert F(U[j]) <= F(u.value) + 1e-12 * abs(val)
    # value: the formula, inf weights on zero rows cost nothing
    assert pen.value(U, alpha) == pytest.approx(alpha * sum(
        c[j] * np.abs(U[j]).sum() + 0.6 * np.abs(np.diff(U[j])).sum() for j in range(4)),
        rel=1e-14)


@pytest.mark.parametrize("f", [0.0, 0.4, 3.0])
def test_stage_dual_norm_matches_cvxpy(f):
    rng = np.random.default_rng(1)
    G = rng.standard_normal((4, 6)) * np.array([[0.1], [1.0], [3.0], [1.0]])
    G[2] += 2.0
    c = np.array([1.0, 0.5, 2.0, np.inf])
    pen = WeightedFusedLasso(c, fused_weight=f)
    norms = pen.dual_norms(G)
    assert norms[3] == 0.0
    R = diff_matrix(6)
    for j in range(3):
        w = cp.Variable(6)
        val = solve_cvx(cp.Problem(cp.Maximize(G[j] @ w), [
            c[j] * cp.norm1(w) + f * cp.norm1(R.T @ w) <= 1]))
        assert norms[j] == pytest.approx(val, rel=1e-7)
    assert pen.dual_scaling(G, 0.5 * norms.max()) == pytest.approx(0.5, rel=1e-12)
    assert pen.alpha_max(G) == norms.max()


# --------------------------------------------------------------------------- the penalty
def test_value_and_clarke_distance():
    rng = np.random.default_rng(2)
    pen = rm.NonconvexFusedGroupLasso(fused_weight=0.7)
    W = rng.standard_normal((4, 5))
    W[1] = 0.0
    W[2] = [1.0, 1.0, 0.0, 0.0, -2.0]  # zeros and ties: free subgradient coordinates
    alpha = 0.3
    want = alpha * sum(np.sqrt(np.abs(w).sum()) + 0.7 * np.abs(np.diff(w)).sum() for w in W)
    assert pen.value(W, alpha) == pytest.approx(want, rel=1e-14)
    G = rng.standard_normal((4, 5))
    d = pen.subdiff_distance(W, G, alpha)
    assert d[1] == 0.0  # the Clarke subdifferential at a zero row is everything
    R = diff_matrix(5)
    for j in (0, 2, 3):
        w, cj = W[j], 0.5 / np.sqrt(np.abs(W[j]).sum())
        s, z = cp.Variable(5), cp.Variable(4)
        dw = R.T @ w
        cons = [cp.abs(s) <= 1, cp.abs(z) <= 1]
        cons += [s[i] == np.sign(w[i]) for i in range(5) if w[i] != 0]
        cons += [z[i] == np.sign(dw[i]) for i in range(4) if dw[i] != 0]
        # d/du sum |(R^T u)_k| = R z with z in the subdifferential of |.| at R^T w
        val = solve_cvx(cp.Problem(cp.Minimize(cp.norm(
            G[j] - alpha * cj * s - alpha * 0.7 * (R @ z))), cons))
        assert d[j] == pytest.approx(val, rel=1e-6, abs=1e-9)


def test_alpha_max_and_names():
    Xs, ys, _ = problem("squared", 3)
    pen = rm.NonconvexFusedGroupLasso(0.5)
    a_max = rm.alpha_max(Xs, ys, penalty=pen)
    assert a_max == pytest.approx(rm.alpha_max(Xs, ys, penalty=WeightedFusedLasso(
        np.ones(8), 0.5)), rel=1e-15)
    at = rm.MultiTaskRegressor(pen, alpha=a_max).fit(Xs, ys)
    assert np.all(at.coef_ == 0.0)
    # just below it the first stage (the convex relaxation) is not zero; the later stages may
    # still prune its small rows to zero (their weights 1 / (2 sqrt(||W_j||_1)) are large)
    data = rm.as_task_data(Xs, ys)
    ref = reference(data, rm.Quadratic(), True)
    first = solve(data, rm.Quadratic(), pen.stage(None, 8), (1 - 1e-3) * a_max, ref=ref)
    assert np.any(first.W != 0.0)
    half = rm.MultiTaskRegressor(pen, alpha=0.5 * a_max, tol=1e-8).fit(Xs, ys)
    assert np.any(half.coef_ != 0.0)
    assert make_penalty("nonconvex_fused_group_lasso") == rm.NonconvexFusedGroupLasso()
    assert "nonconvex_fused_group_lasso" in PENALTY_NAMES
    # proximal gradient with the exact prox reaches a stationary point too
    fista = rm.MultiTaskRegressor(pen, alpha=0.5 * a_max, solver="fista", tol=1e-7).fit(Xs, ys)
    assert fista.kkt_residual_ <= 1e-7


def test_prox_is_the_global_minimizer():
    """Against Powell from 8 starts (0, and around V) on rows of 1 to 5 entries, ties
    included: never worse than the best found, to 1e-12 relative (measured 4e-15 over 150
    rows and 25 starts)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    for trial in range(16):
        T = int(rng.integers(1, 6))
        v = rng.standard_normal(T) * rng.choice([0.3, 1.0, 3.0])
        if trial % 4 == 0:
            v = np.round(v)
        f, step, alpha = rng.choice([0.0, 0.3, 3.0]), rng.uniform(0.2, 2), rng.uniform(0.05, 2)
        pen = rm.NonconvexFusedGroupLasso(f)
        U = pen.prox(v[None], step, alpha)[0]

        def F(u, v=v, step=step, alpha=alpha, pen=pen):
            return float(np.sum((u - v) ** 2) / (2 * step) + pen.value(u[None], alpha))

        best = F(np.zeros(T))
        for s in range(8):
            z0 = v + rng.standard_normal(T) * rng.choice([0.01, 0.5, 2.0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = minimize(F, z0 if s else np.zeros(T), method="Powell",
                             options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 20000})
            best = min(best, r.fun)
        assert F(U) <= best + 1e-12 * max(abs(best), 1.0)


@pytest.mark.parametrize("arg, bad", [("fused_weight", -1.0), ("fused_weight", np.nan),
                                      ("max_stages", 0), ("max_stages", 2.5)])
def test_bad_parameters_are_named(arg, bad):
    Xs, ys, _ = problem("squared", 4)
    with pytest.raises(ValueError, match=arg):
        rm.MultiTaskRegressor(rm.NonconvexFusedGroupLasso(**{arg: bad}), alpha=0.1).fit(Xs, ys)


# --------------------------------------------------------------------------- against MALSAR
@pytest.mark.parametrize("seed", [11, 12])
def test_matches_malsar_algorithm(seed):
    """MALSAR's objective and algorithm from the same start (its convex relaxation): the same
    stationary point, with regmtl's fit at ``task_weight="samples"``, no intercept,
    ``alpha = T lambda / N``, ``fused_weight = gamma / lambda``."""
    Xs, ys, _ = problem("squared", seed)
    T, N = len(Xs), sum(len(y) for y in ys)
    lam, gam = 6.0, 4.0
    W_ref = malsar_ncfglasso(Xs, ys, lam, gam, tol=1e-7)
    pen = rm.NonconvexFusedGroupLasso(fused_weight=gam / lam)
    model = rm.MultiTaskRegressor(pen, alpha=T * lam / N, task_weight="samples",
                                  fit_intercept=False, tol=1e-8).fit(Xs, ys)
    assert_same_point(model, W_ref, lambda V: malsar_objective(Xs, ys, V, lam, gam), T / N)


def assert_same_point(model, W_ref, objective, scale: float) -> None:
    """The fit and MALSAR's reference reach the same stationary point: coefficients to 1e-4,
    the same support, MALSAR's objective to 1e-6; regmtl's objective is ``scale`` times
    MALSAR's; the fit is certified (KKT residual <= 1e-8)."""
    W = model.coef_.T
    np.testing.assert_allclose(W, W_ref, atol=1e-4)
    assert np.array_equal(np.any(W != 0, axis=1), np.any(W_ref != 0, axis=1))
    ours, theirs = objective(W), objective(W_ref)
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert model.objective_ == pytest.approx(ours * scale, rel=1e-10)
    assert model.kkt_residual_ <= 1e-8


@pytest.mark.parametrize("inside", [False, True])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_stages_decrease_and_stop_at_a_fixed_point(loss, inside):
    """Both forms (``fused_in_root``): each stage's objective at most the previous one plus
    its gap, better than the convex relaxation at the end, and a fixed point."""
    Xs, ys, _ = problem(loss, 21)
    datafit = rm.Quadratic() if loss == "squared" else rm.Logistic()
    ys_enc = ys if loss == "squared" else [np.where(y == 1, 1.0, -1.0) for y in ys]
    data = rm.as_task_data(Xs, ys_enc)
    ref = reference(data, datafit, True)
    pen = rm.NonconvexFusedGroupLasso(0.5, fused_in_root=inside)
    alpha = 0.1 * pen.alpha_max(ref.G0)
    tol = 1e-7
    res = majorize_minimize(data, datafit, pen, alpha, np.zeros((8, len(Xs))), ref.b0.copy(),
                            ref=ref, tol=tol, solve=solve)
    assert res.converged and len(res.stages) >= 3
    obj = [s["objective"] for s in res.stages]
    for k in range(1, len(obj)):  # F(W^{k+1}) <= F(W^k) + gap_k
        assert obj[k] <= obj[k - 1] + res.stages[k]["gap"] * ref.P0 + 1e-12 * abs(obj[k - 1])
    assert obj[-1] < obj[0]  # the stages improve on the convex relaxation
    assert res.stages[-1]["change"] <= tol and res.certificate.value <= tol
    # a fixed point: one more stage from the fit moves W by at most tol (relative)
    again = solve(data, datafit, pen.stage(res.W, 8), alpha, W0=res.W, b0=res.b, tol=1e-9,
                  ref=ref)
    assert np.linalg.norm(again.W - res.W) <= 10 * tol * np.linalg.norm(res.W)


# --------------------------------------------------------------------------- known truth
def test_recovers_change_points_with_less_bias_than_the_convex_model():
    """One jump in row 0, row 1 on from the middle, row 2 small and constant: the nonconvex
    model finds the support and row 0's change point, and is off the large effects by less
    than half the convex fused group lasso's error (measured 0.18 against 0.73) at the same
    fraction of its alpha_max."""
    Xs, ys, W_true = problem("squared", 31, T=8, p=12)
    pen = rm.NonconvexFusedGroupLasso(fused_weight=2.0)
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen)
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-8).fit(Xs, ys)
    W = model.coef_.T
    assert np.flatnonzero(np.any(W != 0, axis=1)).tolist() == [0, 1, 2]
    assert np.flatnonzero(np.abs(np.diff(W[0])) > 1e-6).tolist() == [3]
    assert int(np.argmax(np.abs(np.diff(W[1])))) == 3
    convex = rm.FusedGroupLasso(fused_weight=2.0)
    ca = 0.2 * rm.alpha_max(Xs, ys, penalty=convex)  # the same rows: [0, 1, 2]
    Wc = rm.MultiTaskRegressor(convex, alpha=ca, tol=1e-8).fit(Xs, ys).coef_.T
    err = np.abs(W[:2] - W_true[:2]).max()
    err_c = np.abs(Wc[:2] - W_true[:2]).max()
    assert err < 0.5 * err_c


# --------------------------------------------------------------------------- around the fit
def test_save_load_path_and_cv(tmp_path):
    Xs, ys, _ = problem("squared", 41)
    pen = rm.NonconvexFusedGroupLasso(0.5)
    model = rm.MultiTaskRegressor(pen, alpha=0.1 * rm.alpha_max(Xs, ys, penalty=pen),
                                  tol=1e-8).fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert again.penalty == pen and again.penalty.get_params() == pen.get_params()
    np.testing.assert_array_equal(again.coef_, model.coef_)
    assert again.kkt_residual_ == model.kkt_residual_
    path = rm.regularization_path(Xs, ys, penalty=pen, alphas=5, tol=1e-7)
    assert path.certificate_kind == "kkt_residual"
    assert path.converged.all() and np.all(path.certificates <= 1e-7)
    assert np.all(path.coefs[0] == 0.0) and np.any(path.coefs[-1] != 0.0)
    cv = rm.MultiTaskRegressorCV(penalty="nonconvex_fused_group_lasso", alphas=4, cv=3,
                                 tol=1e-6, penalty_grid={"fused_weight": [0.2, 2.0]}).fit(Xs, ys)
    assert cv.best_estimator_.penalty.fused_weight in (0.2, 2.0)
    assert cv.best_estimator_.kkt_residual_ <= 1e-6


def test_logistic_fit_is_stationary():
    Xs, ys, _ = problem("logistic", 51)
    pen = rm.NonconvexFusedGroupLasso(0.5)
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")
    model = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-7).fit(Xs, ys)
    assert model.kkt_residual_ <= 1e-7 and np.any(model.coef_ != 0)


def test_school_is_certified():
    from regmtl.datasets import load_school

    b = load_school()
    Xs, ys = b["X"], b["y"]
    pen = rm.NonconvexFusedGroupLasso(0.5)
    alpha = 0.1 * rm.alpha_max(Xs, ys, penalty=pen)
    # the stages share max_iter: School's take about 4,500 iterations in all
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6, max_iter=10_000).fit(Xs, ys)
    assert model.kkt_residual_ <= 1e-6 and np.any(model.coef_ != 0)
    assert model.n_iter_ <= 10_000


def test_compare_and_transfer_accept_it():
    """``compare`` fits it by name (its alpha by inner CV), ``transfer`` gives a new task the
    support the time points select, its strength by cross-validation."""
    from regmtl.compare import compare

    Xs, ys, _ = problem("squared", 61, T=5, p=6)
    res = compare(Xs, ys, models=["ridge", "nonconvex_fused_group_lasso"], splits=1,
                  n_alphas=4, progress=False)
    assert res.summary["model"].tolist() == ["ridge (independent)",
                                             "MTL nonconvex fused group lasso"]
    assert np.all(np.isfinite(res.summary["explained_variance_mean"]))
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 6)) for _ in range(5)]
    ys = [X @ np.r_[1.0, 1.0, 0, 0, 0, 0] + 0.1 * rng.standard_normal(40) for X in Xs]
    model = rm.MultiTaskRegressor(rm.NonconvexFusedGroupLasso(), alpha=0.05).fit(Xs, ys)
    new = rm.transfer(model, Xs[0], ys[0])
    assert new.strategy_ == "support"
    np.testing.assert_allclose(new.coef_[:2], 1.0, atol=0.05)
    assert np.abs(new.coef_[2:]).max() < 0.05
