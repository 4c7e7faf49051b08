"""The pinball loss with a cone-program penalty (L2,1 and its elastic net, mean-regularized,
L1,inf) by the interior-point row: its cone algebra, its Newton solves against dense linear algebra,
and its optimum against cvxpy/Clarabel on designs of the kinds users bring (tasks of 5 rows
next to tasks of 200, a shared design with missing targets, sparse columns, weights with
zeros, no intercepts, collinear dummy columns) and on School."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import CLARABEL_OPTIONS
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl import as_task_data
from regmtl.solvers.parts import cones
from regmtl.solvers.parts.interior_point import _NewtonMatrix
from regmtl.solvers.policy import choose_row

cp = pytest.importorskip("cvxpy")


# --------------------------------------------------------------------------- cone algebra
def _inside(rng, p, T, margin=0.3):
    u1 = rng.standard_normal((p, T))
    return np.linalg.norm(u1, axis=1) + margin + rng.random(p), u1


def test_the_scaling_maps_z_and_x_to_one_point():
    """W z = W^{-1} x for W = eta P(w), with w on the hyperboloid, for pairs near and far
    from the cones' boundary."""
    rng = np.random.default_rng(0)
    for margin in (1e-6, 0.3, 10.0):
        x0, x1 = _inside(rng, 6, 9, margin)
        z0, z1 = _inside(rng, 6, 9, margin)
        eta, w0, w1 = cones.scaling(x0, x1, z0, z1)
        np.testing.assert_allclose(w0 ** 2 - np.sum(w1 ** 2, axis=1), 1.0, rtol=1e-9)
        a0, a1 = cones.p_times(w0, w1, z0, z1)
        b0, b1 = cones.p_inverse(w0, w1, x0, x1)
        np.testing.assert_allclose(eta * a0, b0 / eta, rtol=1e-7)
        np.testing.assert_allclose(eta[:, None] * a1, b1 / eta[:, None], rtol=1e-7, atol=1e-9)
        # P(w)^{-1} undoes P(w)
        c0, c1 = cones.p_inverse(w0, w1, *cones.p_times(w0, w1, z0, z1))
        np.testing.assert_allclose(c0, z0, rtol=1e-9)
        np.testing.assert_allclose(c1, z1, rtol=1e-9, atol=1e-9)


def test_divide_undoes_the_jordan_product():
    rng = np.random.default_rng(1)
    l0, l1 = _inside(rng, 5, 4)
    x0, x1 = rng.standard_normal(5), rng.standard_normal((5, 4))
    r0, r1 = cones.product(l0, l1, x0, x1)
    y0, y1 = cones.divide(l0, l1, r0, r1)
    np.testing.assert_allclose(y0, x0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y1, x1, rtol=1e-10, atol=1e-12)


def test_the_longest_step_ends_on_the_boundary():
    """At the step returned one cone is on its boundary and all are inside; a direction that
    stays inside gives an infinite step."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        u0, u1 = _inside(rng, 4, 3)
        d0, d1 = rng.standard_normal(4), 3 * rng.standard_normal((4, 3))
        t = cones.longest_step(u0, u1, d0, d1)
        v0, v1 = u0 + t * d0, u1 + t * d1
        margin = v0 - np.linalg.norm(v1, axis=1)
        assert margin.min() == pytest.approx(0.0, abs=1e-9 * (1 + np.abs(v0).max()))
        assert np.all(v0 >= -1e-12)
        inner = u0 + 0.99 * t * d0 - np.linalg.norm(u1 + 0.99 * t * d1, axis=1)
        assert inner.min() > 0
    u0, u1 = _inside(rng, 3, 2)
    assert cones.longest_step(u0, u1, np.ones(3), np.zeros((3, 2))) == np.inf
    assert cones.longest_ray_step(np.ones(3), np.array([1.0, -2.0, 0.0])) == 0.5


# --------------------------------------------------------------------------- Newton solves
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_newton_matrix_solves_as_the_dense_one(fit_intercept):
    """The blocks plus the features' rank-one couplings (one nearly cancelling its diagonal,
    as a cone near its boundary does) solved by Woodbury and refinement equal a dense solve."""
    rng = np.random.default_rng(3)
    sizes, p = (5, 40, 12), 4
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    data = as_task_data(Xs, [rng.standard_normal(n) for n in sizes])
    T, k = len(sizes), p + int(fit_intercept)
    Dinv = rng.random(data.n_obs) + 1e-3
    w1 = rng.standard_normal((p, T)) * 30.0
    h = 1.0 + 2.0 * np.sum(w1 ** 2, axis=1)
    e2 = rng.random(p) + 0.5
    V = np.stack([w1, np.ones((p, T))], axis=2)
    gam = np.stack([-2.0 / (h * e2), np.full(p, -0.2)], axis=1)
    dW = 1.0 / e2 + 0.5
    K = _NewtonMatrix(data, Dinv, dW, V, gam, fit_intercept)
    # the dense matrix, unknowns ordered task by task
    dense = np.zeros((T * k, T * k))
    for t, X in enumerate(Xs):
        Xt = np.column_stack([X, np.ones(len(X))]) if fit_intercept else X
        a = int(data.indptr[t])
        blk = Xt.T @ (Dinv[a:a + len(X), None] * Xt)
        blk[np.arange(p), np.arange(p)] += dW
        dense[t * k:(t + 1) * k, t * k:(t + 1) * k] = blk
    for j in range(p):
        for m in range(2):
            v = np.zeros(T * k)
            v[np.arange(T) * k + j] = V[j, :, m]
            dense += gam[j, m] * np.outer(v, v)
    R = rng.standard_normal((T, k))
    want = np.linalg.solve(dense, R.reshape(-1)).reshape(T, k)
    np.testing.assert_allclose(K.solve(R), want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


# --------------------------------------------------------------------------- optima
def _tasks(kind: str, rng):
    """(fit args, fit kwargs, tasks as (X, y, weights) for cvxpy, fit_intercept)."""
    p = 6
    if kind == "shared":  # one design, a target matrix with missing entries
        X = rng.standard_normal((50, p))
        Y = X @ rng.standard_normal((p, 3)) + rng.standard_normal((50, 3))
        Y[rng.random(Y.shape) < 0.2] = np.nan
        tasks = [(X[~np.isnan(Y[:, t])], Y[~np.isnan(Y[:, t]), t], None) for t in range(3)]
        return (X, Y), {}, tasks, True
    sizes = (5, 200, 37) if kind != "wide" else (4, 6, 9)
    Xs = [rng.standard_normal((n, p if kind != "wide" else 12)) for n in sizes]
    if kind == "dummies":  # one-hot columns that sum to the intercept's
        for X in Xs:
            X[:, :3] = np.eye(3)[rng.integers(0, 3, len(X))]
    ys = [X @ rng.standard_normal(X.shape[1]) + rng.standard_t(3, len(X)) for X in Xs]
    kwargs, weights = {}, [None] * len(Xs)
    if kind == "weights":  # integer weights, some zero
        weights = [rng.integers(0, 4, len(X)).astype(float) for X in Xs]
        for w in weights:
            w[:2] = 1.0
        kwargs["sample_weight"] = weights
        fit = (Xs, ys)
    elif kind == "sparse":
        Xs = [sp.csr_array(np.where(rng.random(X.shape) < 0.5, 0.0, X)) for X in Xs]
        fit = (Xs, ys)
    else:
        fit = (Xs, ys)
    dense = [X.toarray() if sp.issparse(X) else X for X in Xs]
    return fit, kwargs, list(zip(dense, ys, weights, strict=True)), kind != "no_intercept"


def _cvx_optimum(tasks, penalty, alpha, tau, fit_intercept, options=CLARABEL_OPTIONS):
    p, T = tasks[0][0].shape[1], len(tasks)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t, (X, y, w) in enumerate(tasks):
        w = np.ones(len(y)) if w is None else w
        r = y - X @ W[:, t] - (b[t] if fit_intercept else 0.0)
        terms.append(cp.sum(cp.multiply(w, cp.maximum(tau * r, (tau - 1) * r))) / w.sum())
    if isinstance(penalty, rm.Trace):
        pen = alpha * cp.normNuc(W)
    elif isinstance(penalty, rm.L21):
        rho = penalty.l1_ratio
        pen = alpha * (rho * cp.sum(cp.norm(W, 2, axis=1))
                       + (1 - rho) / 2 * cp.sum_squares(W))
    elif isinstance(penalty, rm.LInf1):
        pen = alpha * cp.sum(cp.max(cp.abs(W), axis=1))
    else:
        wbar = cp.sum(W, axis=1, keepdims=True) / T
        pen = alpha / 2 * (cp.sum_squares(W - wbar) + penalty.ridge * cp.sum_squares(W))
    prob = cp.Problem(cp.Minimize(sum(terms) + pen))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **options)
    return float(prob.value)


def _objective(model, tasks, penalty, alpha, tau):
    total = 0.0
    for t, (X, y, w) in enumerate(tasks):
        w = np.ones(len(y)) if w is None else w
        r = y - X @ model.coef_[t] - model.intercept_[t]
        total += float(np.dot(w, np.maximum(tau * r, (tau - 1) * r)) / w.sum())
    return total + penalty.value(model.coef_matrix_, alpha)


CASES = [(kind, pen, tau)
         for kind in ("unequal", "shared", "sparse", "weights", "no_intercept", "dummies",
                      "wide")
         for pen, tau in ((rm.L21(), 0.5), (rm.MeanRegularized(), 0.2), (rm.LInf1(), 0.7))]
CASES += [("unequal", rm.L21(l1_ratio=0.6), 0.9), ("dummies", rm.MeanRegularized(0.5), 0.7),
          ("unequal", rm.L21(), 0.05)]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind, penalty, tau", CASES,
                         ids=[f"{k}-{p!r}-{t}" for k, p, t in CASES])
def test_the_optimum_is_clarabels(kind, penalty, tau):
    """The interior point runs (no other row), certifies at tol 1e-8, and its objective,
    written out here, is cvxpy/Clarabel's to 1e-7 relative."""
    rng = np.random.default_rng(len(kind) + int(100 * tau))
    fit, kwargs, tasks, fit_intercept = _tasks(kind, rng)
    loss = rm.Quantile(tau)
    scale = 1.0 if isinstance(penalty, rm.MeanRegularized) else rm.alpha_max(
        *fit, penalty=penalty, loss=loss, fit_intercept=fit_intercept, **kwargs)
    alpha = 0.1 * scale
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=loss, tol=1e-8,
                                  fit_intercept=fit_intercept).fit(*fit, **kwargs)
    assert choose_row(as_task_data(*fit), loss, penalty, alpha) == "interior_point"
    assert model.n_iter_ <= 60
    best = _cvx_optimum(tasks, penalty, alpha, tau, fit_intercept)
    ours = _objective(model, tasks, penalty, alpha, tau)
    assert ours == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert model.objective_ == pytest.approx(ours, rel=1e-10)


FREE_CASES = [("unequal", rm.L21(), 0.5), ("dummies", rm.L21(l1_ratio=0.6), 0.1),
              ("sparse", rm.MeanRegularized(0.5), 0.9), ("weights", rm.L21(), 0.9)]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind, penalty, tau", FREE_CASES,
                         ids=[f"{k}-{p!r}-{t}" for k, p, t in FREE_CASES])
def test_free_columns_stay_in_the_interior_point(kind, penalty, tau):
    """Features left unpenalized (penalty factor 0) have no cone and no quadratic: their
    coefficients enter the Newton blocks as the intercept does (a column zero in a task held
    by its block's scale). The fit stays on the interior point (it used to leave for
    primal-dual iterations: 20 schools, 1000 iterations, 15 s, KKT residual 5e-3 to 8e-2),
    certifies at 1e-8, and its objective, written out here with the free rows unpenalized, is
    Clarabel's to 1e-7."""
    rng = np.random.default_rng(7 + len(kind))
    fit, kwargs, tasks, fit_intercept = _tasks(kind, rng)
    loss = rm.Quantile(tau)
    p = tasks[0][0].shape[1]
    free = np.zeros(p, dtype=bool)
    free[[0, p - 1]] = True
    factor = np.where(free, 0.0, 1.0)
    alpha = 0.05 if isinstance(penalty, rm.MeanRegularized) else 0.1 * rm.alpha_max(
        *fit, penalty=penalty, loss=loss, penalty_factor=factor, rescale_factors=False,
        **kwargs)
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=loss, tol=1e-8,
                                  penalty_factor=factor, rescale_factors=False
                                  ).fit(*fit, **kwargs)
    assert model.n_iter_ <= 60 and model.kkt_residual_ <= 1e-8
    T = len(tasks)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t, (X, y, w) in enumerate(tasks):
        w = np.ones(len(y)) if w is None else w
        r = y - X @ W[:, t] - b[t]
        terms.append(cp.sum(cp.multiply(w, cp.maximum(tau * r, (tau - 1) * r))) / w.sum())
    Wp = W[np.flatnonzero(~free), :]
    if isinstance(penalty, rm.L21):
        rho = penalty.l1_ratio
        pen = alpha * (rho * cp.sum(cp.norm(Wp, 2, axis=1)) + (1 - rho) / 2 * cp.sum_squares(Wp))
    else:
        pen = alpha / 2 * (cp.sum_squares(Wp - cp.sum(Wp, axis=1, keepdims=True) / T)
                           + penalty.ridge * cp.sum_squares(Wp))
    prob = cp.Problem(cp.Minimize(sum(terms) + pen))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert model.objective_ == pytest.approx(float(prob.value), rel=1e-7, abs=1e-9)


def test_school_with_free_columns_at_clarabels_optimum():
    """School (all 139 schools), L2,1, q = 0.3, features 0 and 5 unpenalized, a tenth of
    alpha_max: certified to 1e-6 on the interior point in some twenty iterations, at
    Clarabel's optimum (primal-dual iterations ran out after 70 s, 3e-2 short)."""
    from regmtl.datasets import load_school

    school = load_school()
    factor = np.ones(school.X[0].shape[1])
    factor[[0, 5]] = 0.0
    loss = rm.Quantile(0.3)
    alpha = 0.1 * rm.alpha_max(school.X, school.y, penalty="l21", loss=loss,
                               penalty_factor=factor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("l21", alpha=alpha, loss=loss, tol=1e-6,
                                      penalty_factor=factor).fit(school.X, school.y)
    assert model.n_iter_ <= 40 and model.kkt_residual_ <= 1e-6
    d = factor * factor.size / factor.sum()  # (the factors rescaled: glmnet's rule)
    p, T = len(d), len(school.X)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = [cp.sum(cp.maximum(0.3 * r, -0.7 * r)) / len(y) for r, y in (
        (y - X @ W[:, t] - b[t], y) for t, (X, y) in enumerate(zip(school.X, school.y,
                                                                    strict=True)))]
    prob = cp.Problem(cp.Minimize(sum(terms) + alpha * cp.sum(
        cp.multiply(d, cp.norm(W, 2, axis=1)))))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    assert model.objective_ == pytest.approx(float(prob.value), rel=1e-6)


def test_school_l21_alpha_max_with_free_columns_is_the_threshold():
    """School, L2,1, q = 0.3, features 0 and 5 unpenalized: the scores are integers, many rows
    tie on the kink, and the subgradient of the free fit's rows is the one of the smallest
    dual norm (a cone program over every school's tied rows, by cuts): alpha_max 0.7182, where
    the least-norm subgradient gave 0.8746 (the fit 0 up to 0.9 of it). Below it the fit uses
    the penalized features."""
    from regmtl.datasets import load_school

    school = load_school()
    factor = np.ones(school.X[0].shape[1])
    factor[[0, 5]] = 0.0
    loss = rm.Quantile(0.3)
    top = rm.alpha_max(school.X, school.y, penalty="l21", loss=loss, penalty_factor=factor)
    assert top == pytest.approx(0.718184, rel=1e-5)  # (the cuts stop 1e-6 above the optimum)
    model = rm.MultiTaskRegressor("l21", alpha=0.95 * top, loss=loss, tol=1e-6,
                                  penalty_factor=factor).fit(school.X, school.y)
    assert np.abs(np.delete(model.coef_, [0, 5], axis=1)).max() >= 1e-3


@pytest.mark.parametrize("tau, alpha", [(0.5, None), (0.1, 0.18)])
def test_school_l21_at_clarabels_optimum(tau, alpha):
    """School (139 schools, 15,362 students, one-hot year columns beside the intercept):
    certified to 1e-6 in some twenty iterations (the primal-dual row ran 64,000 iterations
    without reaching 4e-3), at Clarabel's optimum: the median at a twentieth of alpha_max,
    and the tenth quantile at alpha 0.18 (with the rows' duals started at 0, one end of
    their box, the iterates lost the cones' centrality and stalled 1.2 % above it)."""
    from regmtl.datasets import load_school

    school = load_school()
    loss = rm.Quantile(tau)
    if alpha is None:
        alpha = 0.05 * rm.alpha_max(school.X, school.y, penalty="l21", loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("l21", alpha=alpha, loss=loss, tol=1e-6).fit(
            school.X, school.y)
    assert model.n_iter_ <= 35
    tasks = [(X, y, None) for X, y in zip(school.X, school.y, strict=True)]
    best = _cvx_optimum(tasks, rm.L21(), alpha, tau, True,
                        {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9})
    assert _objective(model, tasks, rm.L21(), alpha, tau) == pytest.approx(best, rel=1e-7)


@pytest.mark.parametrize("penalty, tau", [("l21", t) for t in (0.05, 0.1, 0.25, 0.75, 0.9, 0.95)]
                         + [("l1inf", 0.1), ("l1inf", 0.95)])
def test_school_quantiles_along_a_grid_certify_with_exact_zeros(penalty, tau):
    """School at every quantile a user asks for, along a CV grid's range (alpha_max / 2 to
    alpha_max / 1000): each fit certified by its duality gap at the defaults within 40
    iterations (the centering steps: at q = 0.95, alpha_max / 100, Mehrotra's steps alone
    shrank to 5 % and stalled 43 % above the optimum). The rows an interior point leaves at
    the scale of mu (1e-11 to 1e-7) are exact zeros, and the zeroed point is the one
    certified: the objective written out here from its coefficients is the reported one, and
    the reported gap is within tol of it."""
    from regmtl.datasets import load_school

    school = load_school()
    loss = rm.Quantile(tau)
    top = rm.alpha_max(school.X, school.y, penalty=penalty, loss=loss)
    tasks = [(X, y, None) for X, y in zip(school.X, school.y, strict=True)]
    pen = rm.L21() if penalty == "l21" else rm.LInf1()
    zeros = 0
    for frac in (0.5, 0.01, 0.001):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model = rm.MultiTaskRegressor(penalty, alpha=frac * top, loss=loss).fit(
                school.X, school.y)
        assert model.n_iter_ <= 40
        zeros += int(np.sum(~np.any(model.coef_matrix_, axis=1)))
        # the objective of the returned (zeroed) coefficients is the certified one
        assert _objective(model, tasks, pen, frac * top, tau) == pytest.approx(
            model.objective_, rel=1e-10)
        assert model.dual_gap_ <= 1e-4 * model.objective_
    assert zeros > 0


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("penalty", [rm.L21(), rm.MeanRegularized(0.3)], ids=repr)
def test_a_loss_list_of_squared_and_pinball_tasks(penalty):
    """A squared task beside pinball tasks of two levels: the squared rows a quadratic cost
    in the same program, at tol 1e-10 in a few dozen milliseconds (the primal-dual row took
    22-37 s), at Clarabel's optimum."""
    rng = np.random.default_rng(11)
    sizes, levels = (40, 120, 9), (None, 0.3, 0.8)
    Xs = [rng.standard_normal((n, 5)) for n in sizes]
    ys = [X @ rng.standard_normal(5) + rng.standard_t(3, len(X)) for X in Xs]
    loss = ["squared" if q is None else rm.Quantile(q) for q in levels]
    alpha = 0.05
    assert choose_row(as_task_data(Xs, ys), rm.datafits.Mixed(loss), penalty,
                      alpha) == "interior_point"
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=loss, tol=1e-10).fit(Xs, ys)
    assert model.n_iter_ <= 40
    W, b = cp.Variable((5, 3)), cp.Variable(3)
    terms, ours = [], 0.0
    for t, (X, y, q) in enumerate(zip(Xs, ys, levels, strict=True)):
        r = y - X @ W[:, t] - b[t]
        fit_r = y - X @ model.coef_[t] - model.intercept_[t]
        if q is None:
            terms.append(0.5 * cp.sum_squares(r) / len(y))
            ours += 0.5 * float(fit_r @ fit_r) / len(y)
        else:
            terms.append(cp.sum(cp.maximum(q * r, (q - 1) * r)) / len(y))
            ours += float(np.maximum(q * fit_r, (q - 1) * fit_r).mean())
    if isinstance(penalty, rm.L21):
        pen = alpha * cp.sum(cp.norm(W, 2, axis=1))
    else:
        pen = alpha / 2 * (cp.sum_squares(W - cp.sum(W, axis=1, keepdims=True) / 3)
                           + 0.3 * cp.sum_squares(W))
    prob = cp.Problem(cp.Minimize(sum(terms) + pen))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    ours += penalty.value(model.coef_matrix_, alpha)
    assert ours == pytest.approx(prob.value, rel=1e-8)


@pytest.mark.parametrize("verbose", [0, 1])
def test_constant_targets_end_at_once(verbose, capsys):
    """Constant targets: the objective at W = 0 above the loss's floor is 0, so tol * P0 is
    out of reach; the iteration stops where its gap falls below 1e-14 of the first (before:
    150 iterations into denormal gaps), at W = 0 with intercepts at the targets."""
    rng = np.random.default_rng(5)
    Xs = [rng.standard_normal((30, 4)) for _ in range(3)]
    ys = [np.full(30, 2.0) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskRegressor("mean", alpha=0.1, loss=rm.Quantile(0.5),
                                  verbose=verbose).fit(Xs, ys)
    assert m.n_iter_ <= 15
    assert np.abs(m.coef_).max() <= 1e-12
    np.testing.assert_allclose(m.intercept_, 2.0, atol=1e-12)
    assert ("interior point" in capsys.readouterr().out) == bool(verbose)
