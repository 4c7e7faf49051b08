"""The pinball loss with the trace norm by the spectral barrier row: its reduced Newton step
against finite differences of the barrier function itself, its optimum against
cvxpy/Clarabel on designs of the kinds users bring (tasks of 5 rows next to tasks of 200, a
shared design with missing targets, sparse columns, weights with zeros, no intercepts,
collinear dummy columns, more features than rows), and School at quantiles far from the
median, certified at the defaults."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import CLARABEL_OPTIONS
from sklearn.exceptions import ConvergenceWarning
from test_interior_point import _cvx_optimum, _tasks

import regmtl as rm
from regmtl import as_task_data
from regmtl.solvers.parts.spectral_barrier import _Barrier, _Point
from regmtl.solvers.policy import choose_row

cp = pytest.importorskip("cvxpy")


# --------------------------------------------------------------------------- Newton's step
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_the_reduced_step_is_newtons_step_of_the_barrier(fit_intercept):
    """At a point inside (tasks of 5, 40 and 12 rows, every LMI well inside and one near its
    boundary), the step ``d`` from the reduced system solves ``H d = -grad F``: checked by
    central differences of ``F`` alone, ``grad F . v`` and ``v' H d`` for random ``v``
    (the mixed second difference), and ``d' H d`` = the decrement."""
    rng = np.random.default_rng(0)
    sizes, p = (5, 40, 12), 3
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    data = as_task_data(Xs, [rng.standard_normal(n) for n in sizes])
    T, n = len(sizes), data.n_obs
    c = np.full(n, 1.0)
    live = c > 0
    cu, cl = 0.3 * c, 0.7 * c
    bar = _Barrier(data, np.asarray(data.y), live, cu, cl, 0.8, fit_intercept)
    W = 0.3 * rng.standard_normal((p, T))
    Sg = np.eye(p) + 0.2 * np.ones((p, p))
    u = np.einsum("jt,jk,kt->t", W, np.linalg.inv(Sg), W) + np.array([1.0, 0.5, 1e-2])
    x = _Point(W, rng.standard_normal(T) if fit_intercept else np.zeros(T), Sg, u)
    tau = 3.0
    d, dec, _ = bar.step(x, tau)

    def along(*pairs):
        y = x
        for v, s in pairs:
            y = y.moved(v, s)
        return bar.value(y, tau)

    def rand():
        v = _Point(rng.standard_normal((p, T)),
                   rng.standard_normal(T) if fit_intercept else np.zeros(T),
                   rng.standard_normal((p, p)), rng.standard_normal(T))
        v.S = v.S + v.S.T
        return v

    e = 1e-4
    slope = (along((d, e)) - along((d, -e))) / (2 * e)
    curve = (along((d, e)) - 2 * along() + along((d, -e))) / e ** 2
    assert slope == pytest.approx(-dec, rel=1e-6)
    assert curve == pytest.approx(dec, rel=1e-4)
    for _ in range(3):
        v = rand()
        h = 2e-5  # (one LMI 1e-2 from its boundary: a shorter difference)
        grad_v = (along((v, h)) - along((v, -h))) / (2 * h)
        hd_v = (along((d, h), (v, h)) - along((d, h), (v, -h)) - along((d, -h), (v, h))
                + along((d, -h), (v, -h))) / (4 * h * h)
        assert hd_v == pytest.approx(-grad_v, rel=1e-4, abs=1e-4 * abs(dec))


# --------------------------------------------------------------------------- optima
def _cvx_trace(tasks, alpha, tau, fit_intercept):
    return _cvx_optimum(tasks, rm.Trace(), alpha, tau, fit_intercept)


def _objective(model, tasks, alpha, tau):
    total = 0.0
    for t, (X, y, w) in enumerate(tasks):
        w = np.ones(len(y)) if w is None else w
        r = y - X @ model.coef_[t] - model.intercept_[t]
        total += float(np.dot(w, np.maximum(tau * r, (tau - 1) * r)) / w.sum())
    return total + alpha * float(np.linalg.svd(model.coef_matrix_, compute_uv=False).sum())


CASES = [(kind, tau) for kind in ("unequal", "shared", "sparse", "weights", "no_intercept",
                                  "dummies", "wide")
         for tau in (0.5, 0.1)] + [("unequal", 0.95), ("dummies", 0.8)]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind, tau", CASES, ids=[f"{k}-{t}" for k, t in CASES])
@pytest.mark.parametrize("frac", [0.3, 0.02])
def test_the_optimum_is_clarabels(kind, tau, frac):
    """The spectral barrier runs (no other row), certifies at tol 1e-8, and its objective,
    written out here from ``coef_`` and the singular values, is cvxpy/Clarabel's to 1e-7
    relative."""
    rng = np.random.default_rng(len(kind) + int(100 * tau))
    fit, kwargs, tasks, fit_intercept = _tasks(kind, rng)
    loss = rm.Quantile(tau)
    alpha = frac * rm.alpha_max(*fit, penalty="trace", loss=loss,
                                fit_intercept=fit_intercept, **kwargs)
    data = as_task_data(*fit, sample_weight=kwargs.get("sample_weight"))
    assert choose_row(data, loss, rm.Trace(), alpha) == "spectral_barrier"
    model = rm.MultiTaskRegressor("trace", alpha=alpha, loss=loss, tol=1e-8,
                                  fit_intercept=fit_intercept).fit(*fit, **kwargs)
    want = _cvx_trace(tasks, alpha, tau, fit_intercept)
    got = _objective(model, tasks, alpha, tau)
    assert got == pytest.approx(want, rel=1e-7, abs=1e-9)
    assert model.dual_gap_ <= 1e-8 * max(abs(model.objective_), 1.0) * 10


def _school(n_tasks=None):
    from regmtl.datasets import load_school

    school = load_school()
    return school["X"][:n_tasks], school["y"][:n_tasks]


def test_school_far_from_the_median_is_certified_at_the_defaults():
    """School (139 schools, 15,362 students, one-hot year columns beside the intercept) at
    q = 0.1 and alpha_max / 100 (a rank-18 fit): certified at the defaults without a warning,
    where the primal-dual row had run 60,000 iterations without reaching 1e-1."""
    Xs, ys = _school()
    loss = rm.Quantile(0.1)
    alpha = 0.01 * rm.alpha_max(Xs, ys, penalty="trace", loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("trace", alpha=alpha, loss=loss).fit(Xs, ys)
    assert model.dual_gap_ <= 1e-4 * model.objective_
    assert model.n_iter_ <= 120
    assert 1 < model.rank_ < 27


def test_fifteen_schools_agree_with_clarabel():
    """15 schools at q = 0.9: certified at tol 1e-6 by the barrier alone (no warning, at
    most 100 Newton steps), its objective Clarabel's to 1e-6 relative."""
    Xs, ys = _school(15)
    tasks = [(X, y, None) for X, y in zip(Xs, ys, strict=True)]
    loss = rm.Quantile(0.9)
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty="trace", loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("trace", alpha=alpha, loss=loss, tol=1e-6,
                                      max_iter=100).fit(Xs, ys)
    want = _cvx_trace(tasks, alpha, 0.9, True)
    assert _objective(model, tasks, alpha, 0.9) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("frac", [0.3, 0.05])
def test_the_rank_is_the_optimums(frac):
    """15 schools at the defaults: ``rank_`` (1 and 3 here) is the rank of Clarabel's optimum
    (singular values above 1e-6 of the largest), not the barrier's full rank of values left
    at about 1 / tau, and the fit still certifies."""
    Xs, ys = _school(15)
    loss = rm.Quantile(0.5)
    alpha = frac * rm.alpha_max(Xs, ys, penalty="trace", loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("trace", alpha=alpha, loss=loss).fit(Xs, ys)
    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = [cp.sum(cp.maximum(0.5 * (y - X @ W[:, t] - b[t]), -0.5 * (y - X @ W[:, t] - b[t])))
             / len(y) for t, (X, y) in enumerate(zip(Xs, ys, strict=True))]
    cp.Problem(cp.Minimize(sum(terms) + alpha * cp.normNuc(W))).solve(
        solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    sv = np.linalg.svd(W.value, compute_uv=False)
    assert model.rank_ == int(np.sum(sv > 1e-6 * sv[0]))
    assert model.dual_gap_ <= 1e-4 * model.objective_


def test_the_reduced_solve_survives_an_indefinite_rounding():
    """The reduced matrix is a Schur complement, positive definite in exact arithmetic; where
    rounding leaves a pivot negative (School's folds at alpha_max / 200), the solve falls back
    to a symmetric indefinite factorization and still solves the system, without a warning."""
    from regmtl.solvers.parts.spectral_barrier import _spd_solve

    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    S = (Q * np.r_[np.geomspace(1e3, 1.0, 29), -1e-9]) @ Q.T
    S = 0.5 * (S + S.T)
    r = rng.standard_normal(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = _spd_solve(S, r)
    np.testing.assert_allclose(S @ x, r, rtol=1e-6, atol=1e-6 * np.abs(r).max())
