"""ADMM with exact per-task solves (regmtl.solvers.parts.admm) and the row-space form of wide tasks.

* The row-space quadratic equals the Gram form built here from the rows (products, shifted
  solves against ``np.linalg.solve``) to 1e-10 relative, with row weights, missing labels,
  sparse and shared designs and without intercepts.
* Solutions match an independent cvxpy solve of the trace-norm problem (wide and long tasks,
  objective to 1e-6 relative, coefficients to 1e-4: cvxpy's interior point is accurate to about
  its own tolerance), and FISTA's for the clustered penalty (both certified to 1e-10: the
  coefficients agree to 1e-4).
* Where proximal gradient crawls (School: collinear dummy columns, tasks of a handful of rows)
  the path is certified at every alpha, within max_iter.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import CLARABEL_OPTIONS, make_lists
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers import admm, reference, solve
from regmtl.solvers.methods.splitting import solve_form
from regmtl.solvers.parts.kernel_quadratic import KernelQuadratic, kernel_applies
from regmtl.solvers.parts.quadratic import TaskQuadratic
from regmtl.solvers.policy import check_requirements, choose_solver
from regmtl.solvers.requirements import Problem

WIDE = (8, 12, 20, 15)  # rows per task, fewer than the 30 features


def _wide(seed=0, p=30, sizes=WIDE):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((p, 2))
    Xs = [rng.standard_normal((n, p)) + 0.2 * rng.standard_normal(p) for n in sizes]
    ys = [X @ (U @ rng.standard_normal(2)) + t + 0.3 * rng.standard_normal(len(X))
          for t, X in enumerate(Xs)]
    return Xs, ys


def _dense_H(data, center):
    """The per-task Grams written here from the rows: H_t = X_c' diag(c) X_c."""
    X = data.X.toarray() if sp.issparse(data.X) else np.asarray(data.X)
    H = []
    for t in range(data.n_tasks):
        a, b, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
        Xt, c = X[a - o:b - o], data.c[a:b]
        m = (c @ Xt) / c.sum() if center else np.zeros(X.shape[1])
        Xc = Xt - m
        H.append(Xc.T @ (c[:, None] * Xc))
    return np.array(H)


@pytest.mark.parametrize("center", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("form", ["dense", "sparse", "weighted", "zero_weight"])
def test_row_space_form_is_the_gram_form(form, center):
    Xs, ys = _wide()
    kw = {}
    if form == "sparse":
        Xs = [sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0)) for X in Xs]
    if form == "weighted":
        kw["sample_weight"] = [np.linspace(0.5, 2.0, len(y)) for y in ys]
    if form == "zero_weight":  # rows of weight 0 (as missing labels of a shared design)
        kw["sample_weight"] = [np.where(np.arange(len(y)) % 4 == 1, 0.0, 1.0) for y in ys]
    data = rm.as_task_data(Xs, ys, **kw)
    assert kernel_applies(data)
    q = KernelQuadratic(data, data.c, data.y, center)
    H = _dense_H(data, center)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((30, 4))
    HW = np.einsum("tij,jt->it", H, W)
    np.testing.assert_allclose(q.matvec(W), HW, rtol=1e-10, atol=1e-10 * np.abs(HW).max())
    for rho in (1e-3, 0.7, 50.0):
        want = np.stack([np.linalg.solve(H[t] + rho * np.eye(30), W[:, t]) for t in range(4)], 1)
        np.testing.assert_allclose(q.shifted_solve(W, rho), want, rtol=1e-9,
                                   atol=1e-9 * np.abs(want).max())
    top = max(np.linalg.eigvalsh(Ht)[-1] for Ht in H)
    assert top <= q.lipschitz() <= 1.011 * top  # power steps, times 1.01
    # g and e: the same quadratic as the Gram form's, by its value at W
    gram = TaskQuadratic(H, q.g, q.e, q.xm, q.zm, None, center)
    r = data.y - data.linear(W, q.intercepts(W) if center else None)
    ok = data.c > 0
    want_value = 0.5 * np.sum(data.c[ok] * r[ok] ** 2)
    assert gram.value(W) == pytest.approx(want_value, rel=1e-10)


def test_shared_wide_design_uses_the_row_space_form():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((15, 40))
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + 0.1 * rng.standard_normal((15, 3))
    Y[[2, 7], [0, 2]] = np.nan  # missing labels
    data = rm.as_task_data(X, Y)
    q = solve_form(data, True)
    assert kernel_applies(data) and isinstance(q, KernelQuadratic) and q.eigen_ready()
    res = solve(data, rm.Quadratic(), rm.Trace(), 0.05, tol=1e-10, max_iter=20_000)
    ref = solve(data, rm.Quadratic(), rm.Trace(), 0.05, solver="fista", tol=1e-10,
                max_iter=200_000)
    assert res.converged and res.certificate.relative <= 1e-10
    np.testing.assert_allclose(res.W, ref.W, atol=1e-4)


def _cvxpy_trace(Xs, ys, alpha):
    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    loss = sum(cp.sum_squares(X @ W[:, t] + b[t] - y) / (2 * len(y))
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    prob = cp.Problem(cp.Minimize(loss + alpha * cp.normNuc(W)))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    return W.value, b.value, prob.value


def _objective(Xs, ys, W, b, alpha):
    loss = sum(np.sum((X @ W[:, t] + b[t] - y) ** 2) / (2 * len(y))
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    return loss + alpha * np.linalg.svd(W, compute_uv=False).sum()


@pytest.mark.parametrize("shape", ["wide", "long"])
@pytest.mark.parametrize("ratio", [0.3, 0.03])
def test_trace_matches_cvxpy(shape, ratio):
    Xs, ys = _wide() if shape == "wide" else make_lists(n_per_task=(40, 60, 90), p=6)
    data = rm.as_task_data(Xs, ys)
    alpha = ratio * rm.alpha_max(Xs, ys, penalty="trace")
    assert choose_solver(data, rm.Quadratic(), rm.Trace(), alpha) == "admm"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskRegressor(penalty="trace", alpha=alpha, tol=1e-10,
                                  max_iter=20_000).fit(Xs, ys)
    W_cp, b_cp, obj_cp = _cvxpy_trace(Xs, ys, alpha)
    obj = _objective(Xs, ys, m.coef_.T, m.intercept_, alpha)
    assert obj <= obj_cp * (1 + 1e-6)
    assert obj == pytest.approx(obj_cp, rel=1e-6)
    np.testing.assert_allclose(m.coef_.T, W_cp, atol=1e-4)
    np.testing.assert_allclose(m.intercept_, b_cp, atol=1e-4)
    P0 = reference(data, rm.Quadratic(), True).P0
    assert m.dual_gap_ <= 1e-10 * P0  # certified on the data, relative to P(0, b0)


@pytest.mark.parametrize("shape", ["wide", "long"])
def test_clustered_matches_fista(shape):
    Xs, ys = _wide(seed=4) if shape == "wide" else make_lists(n_per_task=(40, 60, 90), p=6)
    pen = rm.Clustered(k=2, eta=0.5)
    data = rm.as_task_data(Xs, ys)
    ref = reference(data, rm.Quadratic(), True)
    kw = dict(tol=1e-10, max_iter=200_000, ref=ref)
    a = solve(data, rm.Quadratic(), pen, 0.3, **kw)
    f = solve(data, rm.Quadratic(), pen, 0.3, solver="fista", **kw)
    assert choose_solver(data, rm.Quadratic(), pen, 0.3) == "admm"
    assert a.converged and a.certificate.kind == "kkt_residual"
    assert a.certificate.relative <= 1e-10
    np.testing.assert_allclose(a.W, f.W, atol=1e-4)
    np.testing.assert_allclose(a.b, f.b, atol=1e-4)


def test_requirements_name_what_is_missing():
    Xs, ys = _wide()
    data = rm.as_task_data(Xs, ys)
    ref = reference(data, rm.Quadratic(), True)
    W0 = np.zeros((30, 4))
    # a penalty of parts summing to W runs ADMM over the parts (tests/solvers/test_parts_admm.py)
    res = admm(data, rm.Quadratic(), rm.SparseLowRank(), 0.1, W0, ref.b0, ref=ref)
    assert res.converged and res.V.shape == (2, 30, 4)
    yc = [np.where(y > np.median(y), 1.0, -1.0) for y in ys]
    cdata = rm.as_task_data(Xs, yc)
    with pytest.raises(ValueError, match="squared loss, not the logistic"):
        solve(cdata.encode_binary(), rm.Logistic(), rm.Trace(), 0.1, solver="admm")
    assert choose_solver(data, rm.Quadratic(), rm.SparseLowRank(), 0.1) == "admm"
    with pytest.raises(ValueError, match="parts summing to W.*Trace"):
        check_requirements("parts_admm", Problem(data, rm.Quadratic(), rm.Trace(), 0.1, 1e-4))


def test_well_conditioned_long_tasks_never_pay_for_the_eigendecomposition():
    Xs, ys = make_lists(n_per_task=(200, 300, 250), p=6, seed=2)
    data = rm.as_task_data(Xs, ys)
    res = solve(data, rm.Quadratic(), rm.Trace(), 0.05, tol=1e-8, max_iter=5000)
    assert res.converged
    assert not solve_form(data, True).eigen_ready()  # FISTA finished first


def test_school_trace_path_is_certified_at_every_alpha():
    """Collinear dummy columns and tasks of a handful of rows: proximal gradient used to stop
    at max_iter at most alphas below alpha_max / 20 (17 of 30 at tol 1e-4)."""
    from regmtl.datasets import load_school

    b = load_school()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        path = rm.regularization_path(b["X"], b["y"], penalty="trace", alphas=30, tol=1e-4,
                                      max_iter=1000)
    assert path.converged.all()
    assert path.certificates.max() <= 1e-4
    assert path.n_iter.max() < 1000


def _cvxpy_logistic_trace(Xs, ys, alpha):
    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    loss = sum(cp.sum(cp.logistic(cp.multiply(-y, X @ W[:, t] + b[t]))) / len(y)
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    prob = cp.Problem(cp.Minimize(loss + alpha * cp.normNuc(W)))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    return W.value, b.value, prob.value


def test_wide_logistic_hands_over_to_row_space_newton(monkeypatch):
    """Wide tasks, logistic loss, trace norm: proximal gradient runs for newton_budget
    iterations (forced to 5 here), then proximal Newton with row-space models (ADMM on each)
    finishes; the optimum is cvxpy's (objective to 1e-6 relative, coefficients to 1e-4)."""
    import regmtl.solvers.requirements as requirements
    import regmtl.solvers.rows as rows
    from regmtl.solvers.methods import structured_newton as sn

    Xs, ys = _wide(seed=7, sizes=(20, 24, 28, 22))
    rng = np.random.default_rng(8)  # noisy labels: far from separable although p > n_t
    yb = [np.where(y - np.median(y) + 2.0 * y.std() * rng.standard_normal(len(y)) > 0,
                   1.0, -1.0) for y in ys]
    alpha = 0.05 * rm.alpha_max(Xs, yb, penalty="trace", loss="logistic")
    models = []
    build = sn.model_quadratic
    monkeypatch.setattr(rows, "newton_budget", lambda data: 5)
    monkeypatch.setattr(requirements, "subspace_applies", lambda data: False)  # (the wide row)
    monkeypatch.setattr(sn, "model_quadratic",
                        lambda *a: models.append(type(build(*a)).__name__) or build(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskClassifier("trace", alpha=alpha, tol=1e-10, max_iter=5000).fit(Xs, yb)
    assert models and set(models) == {"KernelQuadratic"}
    W_cp, b_cp, obj_cp = _cvxpy_logistic_trace(Xs, yb, alpha)
    assert m.objective_ == pytest.approx(obj_cp, rel=1e-6)
    np.testing.assert_allclose(m.coef_.T, W_cp, atol=1e-4)
    np.testing.assert_allclose(m.intercept_, b_cp, atol=1e-4)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("penalty", ["trace", "l21", "sparse_lowrank"])
def test_dead_features_are_solved_without_them(penalty, loss):
    """Columns zero on every row (most of a bag-of-words vocabulary): the solve runs on the
    live ones; the coefficients equal those fitted on the live columns by hand (1e-8) with
    exact zeros elsewhere, and the certificate is the same number."""
    from regmtl.solvers.parts.dead_features import live_features

    rng = np.random.default_rng(11)
    live_cols = np.sort(rng.choice(60, 20, replace=False))
    Xs, ys = [], []
    for n in (25, 30, 35):
        X = np.zeros((n, 60))
        X[:, live_cols] = rng.standard_normal((n, 20)) * (rng.random((n, 20)) < 0.5)
        y = X[:, live_cols[:3]].sum(axis=1) + 0.3 * rng.standard_normal(n)
        Xs.append(sp.csr_matrix(X))
        ys.append(y if loss == "squared" else np.where(y > np.median(y), 1.0, -1.0))
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    data = rm.as_task_data(Xs, ys)
    assert live_features(data) is not None and live_features(data).sum() == 20
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty=penalty, loss=loss)
    kw = dict(alpha=alpha, tol=1e-10, max_iter=50_000)
    full = est(penalty, **kw).fit(Xs, ys)
    by_hand = est(penalty, **kw).fit([X[:, live_cols] for X in Xs], ys)
    np.testing.assert_array_equal(np.delete(full.coef_, live_cols, axis=1), 0.0)
    np.testing.assert_allclose(full.coef_[:, live_cols], by_hand.coef_, atol=1e-8)
    np.testing.assert_allclose(full.intercept_, by_hand.intercept_, atol=1e-8)
    assert full.objective_ == pytest.approx(by_hand.objective_, rel=1e-12)


@pytest.mark.parametrize(("penalty", "loss"), [("trace", "squared"), ("clustered", "squared"),
                                               ("trace", "logistic")])
def test_huge_columns_fit_and_certify(penalty, loss):
    """X * 1e100: the power iterations behind the curvature bound used to square entries to
    inf (a zero bound, then a LinAlgError in the prox). Now the fit is certified to tol with
    finite coefficients, and its objective is the one written here."""
    Xs, ys = _wide(seed=2)
    Xs = [1e100 * X for X in Xs]
    if loss == "logistic":
        ys = [np.where(y > np.median(y), 1.0, -1.0) for y in ys]
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = est(penalty, alpha=0.05, tol=1e-6).fit(Xs, ys)
    assert np.all(np.isfinite(m.coef_)) and np.abs(m.coef_).max() > 0
    if penalty == "trace" and loss == "squared":
        obj = _objective(Xs, ys, m.coef_.T, m.intercept_, 0.05)
        assert m.objective_ == pytest.approx(obj, rel=1e-9)


class _CountedQuadratic(TaskQuadratic):
    """A Gram form that counts the round trips it is asked for (``numbers``)."""

    calls = 0

    def numbers(self, *values):
        type(self).calls += 1
        return super().numbers(*values)


def _counted_long_tasks():
    Xs, ys = make_lists(n_per_task=(200, 300, 250), p=6, seed=2)
    data = rm.as_task_data(Xs, ys)
    q = TaskQuadratic.from_data(data, data.c, data.y, True)
    return _CountedQuadratic(q.H, q.g, q.e, q.xm, q.zm, q.scale, True)


def test_a_gram_certificate_brings_the_quadratics_sums_home_at_once():
    """On task blocks each ``numbers`` is a round trip: the gap's sums come in one, and the
    value is the gap written out from the Gram sums (to 1e-12 relative)."""
    from regmtl.solvers.parts.quadratic_fista import gram_certificate

    q, pen, alpha = _counted_long_tasks(), rm.L21(), 0.05
    W = 0.1 * np.ones_like(q.g)
    _CountedQuadratic.calls = 0
    gap = gram_certificate(q, pen, alpha, W, None, 1.0)
    assert _CountedQuadratic.calls == 1
    HW = q.matvec(W)
    TT = q.e - 2.0 * np.sum(q.g * W, 0) + np.sum(W * HW, 0)  # per task |y_t - X_t w_t|^2
    RR = float(np.sum(TT))
    G = q.g - HW
    s = min(1.0, alpha / np.linalg.norm(G, axis=1).max())
    dual = float(np.sum(s * (q.e - np.sum(q.g * W, 0)) - 0.5 * s * s * TT))
    primal = 0.5 * RR + alpha * np.linalg.norm(W, axis=1).sum()
    assert abs(gap - (primal - dual)) <= 1e-12 * primal


def test_the_hand_over_to_admm_does_not_certify_fistas_point_again(monkeypatch):
    """FISTA's last certificate decides whether ADMM runs: no second certificate of the
    same point (a round trip per Newton step on task blocks)."""
    import importlib

    module = importlib.import_module("regmtl.solvers.parts.admm")
    q, pen, alpha = _counted_long_tasks(), rm.Trace(), 0.05
    again = []
    monkeypatch.setattr(module, "gram_certificate", lambda *a, **k: again.append(a) or 0.0)
    W, it, stalled = module.minimize_quadratic(q, pen, alpha, np.zeros_like(q.g), tol=1e-8,
                                             max_iter=5000)
    assert not again and not stalled and it < 5000 and not q.eigen_ready()
