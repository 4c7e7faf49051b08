"""The small route of proximal Newton: a small logistic fit with a convex row-separable
penalty runs its Newton models in Gram form
(``structured_newton.small_applies``), chosen by the problem's sizes alone -- the same
solver, and the same numbers to rounding, in a fresh process (NumPy twins, numba not loaded)
and in one whose kernels are compiled; its optimum is the previous solver's (proximal Newton
on the rows) and an independent one's (cvxpy), at stated tolerances; the twins it adds agree
with their kernels.

The squared loss's small route (``small_squares``, ``solver="auto"`` only): coordinate descent on
the per-task Grams, chosen by the rows counted by their weights; its optimum is coordinate
descent's over the rows and scikit-learn's MultiTaskLasso's, its duality gap written out in
NumPy meets tol, integer weights equal repeated rows to rounding, and intercepts, warm starts,
max_iter, solver_options and one alpha per task keep their meaning. The Newton solvers fit the
squared loss's intercepts on its state (the residual), not on the scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl import _jit
from regmtl.datafits import make_loss
from regmtl.penalties import make_penalty
from regmtl.penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS
from regmtl.solvers import rows as solver_rows
from regmtl.solvers.methods import small_squares as ss
from regmtl.solvers.methods import structured_newton as sn
from regmtl.solvers.parts import _kernels as K
from regmtl.solvers.parts import quadratic, small
from regmtl.solvers.policy import choose_row, choose_solver

SRC = str(REPO / "src")

FITS = """
import json, sys
import numpy as np
import regmtl as rm
rng = np.random.default_rng(0)
n, p, T = 200, 30, 5
X = rng.standard_normal((n, p)); task = rng.integers(0, T, n)
y = (X[:, :3] @ np.ones(3) + rng.standard_normal(n) > 0).astype(int)
out = {}
for pen in ("l21", "l1", "elasticnet"):
    m = rm.MultiTaskClassifier(pen, alpha=0.01, tol=1e-6).fit(X, y, task=task)
    out[pen] = [m.coef_.tolist(), m.intercept_.tolist(), m.n_iter_]
print(json.dumps({"numba": "numba" in sys.modules, "fits": out}))
"""


def _fresh(code: str, **env_extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("REGMTL_KERNELS", None)
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_route_is_the_same_with_and_without_numba():
    """A process on the NumPy twins (numba never loaded) and one that runs the compiled
    kernels from its first call (numba loaded) fit the same small problems with the same
    solver: the same Newton steps, coefficients equal to 1e-12."""
    twins = _fresh(FITS, REGMTL_KERNELS="numpy")
    compiled = _fresh(FITS, REGMTL_KERNELS="numba")
    assert twins["numba"] is False and compiled["numba"] is True
    for pen, (coef, icpt, steps) in twins["fits"].items():
        coef_c, icpt_c, steps_c = compiled["fits"][pen]
        assert steps == steps_c, pen
        np.testing.assert_allclose(coef, coef_c, rtol=0, atol=1e-12, err_msg=pen)
        np.testing.assert_allclose(icpt, icpt_c, rtol=0, atol=1e-12, err_msg=pen)


def _data(seed, n, p, T, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1] = X[:, 0] + 0.3 * rng.standard_normal(n)  # correlated columns
    task = np.arange(n) % T
    y = (X[:, :3] @ np.array([1.0, -1.0, 0.5]) + rng.standard_normal(n) > 0).astype(int)
    if sparse:
        import scipy.sparse as sp

        X = sp.csr_matrix(X)
    return X, y, task


def test_the_route_reads_the_sizes_and_the_penalty():
    """Small, short tasks with a convex entrywise or row penalty and alpha > 0 take the route;
    long tasks, large problems, a sparse design, a nonconvex or dirty penalty, alpha = 0 or a
    tol below what Gram sums certify keep proximal Newton on the rows."""
    def applies(X, y, task, penalty, alpha=0.01, tol=1e-4, loss=None):
        data = rm.as_task_data(X, y, task=task)
        return sn.small_applies(data, loss or rm.Logistic(), penalty, alpha, tol)

    small_problem = _data(0, 200, 30, 5)
    assert applies(*small_problem, rm.L21())
    assert applies(*small_problem, rm.L1())
    assert applies(*small_problem, rm.ElasticNet())
    assert not applies(*_data(0, 1000, 30, 5), rm.L1())  # n > 4 T p: rows pay
    assert not applies(*_data(0, 2000, 60, 5), rm.L1())  # n p T > SMALL_SIZE
    assert not applies(*_data(0, 100, 30, 5), rm.L1())  # T p > n: no Gram form
    assert not applies(*_data(0, 200, 30, 5, sparse=True), rm.L1())
    assert not applies(*small_problem, rm.MCP())
    assert not applies(*small_problem, rm.Dirty())
    assert not applies(*small_problem, rm.L1(), alpha=0.0)
    assert not applies(*small_problem, rm.L1(), tol=1e-13)
    assert not applies(*small_problem, rm.L1(), loss=rm.Huber())  # curvature 0 past delta
    assert not applies(*small_problem, rm.L1(), loss=rm.Quadratic())
    assert sn.coordinate_models(rm.L1(), 0.1) and not sn.coordinate_models(rm.L21(), 0.1)


CASES = [  # (penalty, alpha, n, p, T, loss)
    ("l1", 0.01, 200, 30, 5, "logistic"),
    ("l21", 0.01, 200, 30, 5, "logistic"),
    ("elasticnet", 0.005, 150, 12, 4, "logistic"),
    ("l21", 0.002, 120, 10, 3, "logistic"),
    ("l21", 0.05, 300, 15, 6, "logistic"),
]


def _fit(penalty, alpha, X, y, task, loss, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # certified: gap <= tol
        if loss == "logistic":
            return rm.MultiTaskClassifier(penalty, alpha=alpha, tol=tol).fit(X, y, task=task)
        counts = np.random.default_rng(1).poisson(np.exp(0.3 * X[:, 0]))
        return rm.MultiTaskRegressor(penalty, alpha=alpha, tol=tol, loss=loss).fit(
            X, counts, task=task)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[5]}-{c[0]}-{c[2]}x{c[3]}x{c[4]}"
                                             for c in CASES])
def test_the_route_finds_the_rows_optimum(case, monkeypatch):
    """At tol = 1e-8 both solvers certify their gap; their objectives agree to 1e-8 relative
    and their coefficients to 1e-3 of their scale (a gap of 1e-8 pins W down to about its
    square root)."""
    penalty, alpha, n, p, T, loss = case
    X, y, task = _data(n + p, n, p, T)
    data = rm.as_task_data(X, y, task=task)
    assert sn.small_applies(data, make_loss(loss), make_penalty(penalty), alpha, 1e-8)
    route = _fit(penalty, alpha, X, y, task, loss, 1e-8)
    monkeypatch.setattr(sn, "SMALL_SIZE", 0)
    rows = _fit(penalty, alpha, X, y, task, loss, 1e-8)
    assert route.objective_ == pytest.approx(rows.objective_, rel=1e-8)
    scale = max(np.abs(rows.coef_).max(), 1.0)
    np.testing.assert_allclose(route.coef_, rows.coef_, rtol=0, atol=1e-3 * scale)


@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_the_route_finds_cvxpys_optimum(penalty):
    """The logistic fit of the first-call bench's shape against cvxpy (Clarabel) on the same
    objective, sum_t (1/n_t) sum_i log(1 + exp(-y (x.w_t + b_t))) + alpha Omega(W):
    objectives to 1e-6 relative, coefficients to 1e-4."""
    cp = pytest.importorskip("cvxpy")
    X, y01, task = _data(7, 200, 30, 5)
    alpha = 0.01
    model = _fit(penalty, alpha, X, y01, task, "logistic", 1e-10)
    W, b = cp.Variable((30, 5)), cp.Variable(5)
    loss = 0
    for t in range(5):
        rows = task == t
        yt = 2.0 * y01[rows] - 1.0
        loss += cp.sum(cp.logistic(-cp.multiply(yt, X[rows] @ W[:, t] + b[t]))) / rows.sum()
    omega = cp.sum(cp.abs(W)) if penalty == "l1" else cp.sum(cp.norm(W, 2, axis=1))
    prob = cp.Problem(cp.Minimize(loss + alpha * omega))
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    assert model.objective_ == pytest.approx(prob.value, rel=1e-6)
    np.testing.assert_allclose(model.coef_.T, W.value, rtol=0, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, b.value, rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", [ENTRYWISE, ROWS, POSITIVE_ENTRYWISE, POSITIVE_ROWS])
def test_the_task_gram_epoch_twin_is_its_kernel(kind):
    """:func:`small.bcd_epoch_task_gram` against the compiled epoch, five epochs on the same
    buffers: coefficients and sums to 1e-10 relative, the largest change alike."""
    rng = np.random.default_rng(kind)
    T, k, n = 4, 12, 40
    Qs = np.empty((T, k, k))
    for t in range(T):
        Xt = rng.standard_normal((n, k))
        Qs[t] = Xt.T @ Xt / n
    W0 = rng.standard_normal((k, T)) * (rng.random((k, 1)) < 0.5)
    E0 = rng.standard_normal((T, k)) - np.matmul(Qs, W0.T[:, :, None])[:, :, 0]
    L = np.ascontiguousarray(np.einsum("tii->it", Qs))
    bufs = {}
    for name, epoch in (("twin", small.bcd_epoch_task_gram),
                        ("kernel", K.bcd_epoch_task_gram.dispatcher)):
        W, Et = W0.copy(), E0.copy()
        g, d = np.zeros(T), np.zeros(T)
        changes = [epoch(Qs, Et, W, L, 0.05, 0.01, kind, g, d) for _ in range(5)]
        bufs[name] = (W, Et, changes)
    (Wt, Et_, ct), (Wk, Ek, ck) = bufs["twin"], bufs["kernel"]
    np.testing.assert_allclose(Wt, Wk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Et_, Ek, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ct, ck, rtol=1e-10, atol=1e-14)


def test_the_block_product_twin_is_its_kernel():
    """On columns, contiguous or strided (a group's block of columns, a transposed view)."""
    rng = np.random.default_rng(3)
    H, W = rng.standard_normal((5, 30, 30)), rng.standard_normal((30, 9))
    want = np.einsum("tij,jt->it", H, W[:, 2:7])
    for V in (np.ascontiguousarray(W[:, 2:7]), W[:, 2:7], np.ascontiguousarray(W[:, 2:7].T).T):
        out_t, out_k = np.empty_like(W)[:, 2:7], np.empty((30, 5))
        small.block_matvec_columns(H, V, out_t)
        quadratic.block_matvec_columns.dispatcher(H, V, out_k)
        np.testing.assert_allclose(out_t, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out_k, want, rtol=1e-12, atol=1e-12)


def _squared_problem(seed=5, n=200, p=30, T=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    task = rng.integers(0, T, n)
    y = X[:, :3] @ np.array([1.0, -1.0, 0.5]) + 3.0 + rng.standard_normal(n)  # far-off means
    return X, y, task


@pytest.mark.parametrize("solver", ["prox_newton", "stationary_newton", "structured_newton"])
def test_the_newton_solvers_fit_the_squared_losss_intercepts(solver):
    """The Newton solvers minimize the intercepts on the loss's state (the residual ``y - f``
    for the squared loss), not on the scores: run directly on the squared loss from W = 0 and
    b = 0 (far from the targets' means), each certifies tol = 1e-10 and finds block
    coordinate descent's optimum (objectives to 1e-9 relative, coefficients and intercepts to
    1e-5). Their rows run other losses; this is the case where state and scores differ."""
    from regmtl.solvers.certificates.certify import reference
    from regmtl.solvers.methods import newton, stationary
    from regmtl.solvers.solve import solve

    X, y, task = _squared_problem()
    data = rm.as_task_data(X, y, task=task)
    loss = rm.Quadratic().bind(data)
    penalty = rm.MCP(gamma=3.0) if solver == "stationary_newton" else rm.L21()
    alpha, tol = 0.05, 1e-10
    ref = reference(data, loss, True)
    W, b = np.zeros((30, 5)), np.zeros(5)
    if solver == "prox_newton":
        res = newton.prox_newton(data, loss, penalty, alpha, W, b, penalty.bcd_params(alpha),
                                 ref=ref, fit_intercept=True, tol=tol, max_iter=200, verbose=0)
    elif solver == "stationary_newton":
        res = stationary.stationary_newton(data, loss, penalty, alpha, W, b, ref=ref,
                                           fit_intercept=True, tol=tol, max_iter=200)
    else:
        res = sn.structured_newton(data, loss, penalty, alpha, W, b, ref=ref,
                                   fit_intercept=True, tol=tol, max_iter=200)
    assert res.converged, res.certificate
    best = solve(data, loss, penalty, alpha, solver="bcd", tol=tol, max_iter=100_000)
    assert res.certificate.primal == pytest.approx(best.certificate.primal, rel=1e-9)
    np.testing.assert_allclose(res.W, best.W, rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.b, best.b, rtol=0, atol=1e-5)


# ----------------------------------------------------------------- the squared loss's route
def _squares_applies(X, y, task=None, penalty=None, alpha=0.1, tol=1e-4, loss=None,
                     sample_weight=None):
    data = rm.as_task_data(X, y, task=task, sample_weight=sample_weight)
    return ss.small_squares_applies(data, loss or rm.Quadratic(), penalty or rm.L21(), alpha,
                                    tol)


def test_the_squared_route_reads_the_weighted_sizes_and_the_penalty():
    """Several tasks with T p <= m <= 1.5 T p rows (counted by their weights) and a convex
    penalty of entries or rows take it; one task, longer or shorter tasks, a nonconvex or
    dirty penalty, alpha = 0, a tol below the Gram sums' floor or another loss do not. Integer
    weights and the rows they repeat decide alike."""
    X, y, task = _squared_problem()  # n = 200, T p = 150
    for pen in (rm.L21(), rm.L1(), rm.ElasticNet(), rm.L1(positive=True)):
        assert _squares_applies(X, y, task, pen), pen
    assert not _squares_applies(X, y, np.zeros(200, dtype=int))  # one task
    assert not _squares_applies(*_squared_problem(n=240))  # m > 1.5 T p
    assert not _squares_applies(*_squared_problem(n=140))  # m < T p
    assert not _squares_applies(X, y, task, rm.MCP())
    assert not _squares_applies(X, y, task, rm.Dirty())
    assert not _squares_applies(X, y, task, alpha=0.0)
    assert not _squares_applies(X, y, task, tol=1e-13)
    assert not _squares_applies(X, (y > 3).astype(int), task, loss=rm.Logistic())
    # 120 rows weighing 200 in all take it, as the 200 rows they repeat would, and as the
    # weights times any constant (the size is the weights' sum over the smallest weight)
    sw = np.r_[np.full(80, 2), np.ones(40)].astype(float)
    assert _squares_applies(X[:120], y[:120], task[:120], sample_weight=sw)
    assert _squares_applies(X[:120], y[:120], task[:120], sample_weight=123.0 * sw)
    assert _squares_applies(X[:120], y[:120], task[:120], sample_weight=0.01 * sw)
    assert not _squares_applies(X[:120], y[:120], task[:120])


def test_the_squared_route_is_auto_only():
    """``solver="auto"`` runs it; ``solver="bcd"`` and bcd's ``solver_options`` run
    coordinate descent over the rows (the route's function is never called), their fits
    certified (gaps at most tol times the objective at W = 0, written out in NumPy) at one
    optimum, and bad options still raise."""
    X, y, task = _squared_problem()
    data = rm.as_task_data(X, y, task=task)
    assert choose_row(data, rm.Quadratic(), rm.L21(), 0.1) == "small_squares"
    assert choose_row(data, rm.Quadratic(), rm.L21(), 0.1, solver="bcd") == "bcd"
    assert choose_solver(data, rm.Quadratic(), rm.L21(), 0.1) == "bcd"

    def refuse(*args, **kwargs):
        raise AssertionError("the small route ran")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solver_rows, "small_least_squares", refuse)
        named = rm.MultiTaskRegressor("l21", alpha=0.1, solver="bcd").fit(X, y, task=task)
        optioned = rm.MultiTaskRegressor("l21", alpha=0.1, solver_options={"anderson": 0}).fit(
            X, y, task=task)
        for m in (named, optioned):  # certified, and at one optimum
            assert 0.0 <= m.dual_gap_ <= 1e-4 * _p0(y, task)
        assert abs(named.objective_ - optioned.objective_) <= 1e-4 * _p0(y, task)
        with pytest.raises(AssertionError, match="the small route ran"):
            rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, y, task=task)
    with pytest.raises(ValueError, match=r"solver_options\['anderson'\]"):
        rm.MultiTaskRegressor("l21", alpha=0.1, solver_options={"anderson": -1}).fit(
            X, y, task=task)


def _gap_l21(X, y, task, W, b, alpha):
    """The duality gap of sum_t (1/n_t) sum_i (y - x.w_t - b_t)^2 / 2 + alpha sum_j ||W_j||,
    written out in NumPy: the residual (its per-task mean zero at the optimal intercepts)
    scaled into the dual ball ||(X^T c theta)_j|| <= alpha."""
    T = W.shape[1]
    n_t = np.bincount(task, minlength=T).astype(float)
    c = 1.0 / n_t[task]
    r = y - np.einsum("ij,ji->i", X, W[:, task]) - b[task]
    primal = 0.5 * np.sum(c * r * r) + alpha * np.linalg.norm(W, axis=1).sum()
    r = r - (np.bincount(task, weights=c * r, minlength=T)
             / np.bincount(task, weights=c, minlength=T))[task]
    G = np.stack([X[task == t].T @ (c * r)[task == t] for t in range(T)], axis=1)
    s = min(1.0, alpha / np.linalg.norm(G, axis=1).max())
    theta = s * r
    dual = np.sum(c * (y * theta - 0.5 * theta * theta))
    return primal - dual, primal


def _p0(y, task):
    """The objective of :func:`_gap_l21` at W = 0, the intercepts the tasks' means."""
    c = 1.0 / np.bincount(task).astype(float)[task]
    ybar = np.bincount(task, weights=c * y) / np.bincount(task, weights=c)
    return 0.5 * np.sum(c * (y - ybar[task]) ** 2)


@pytest.mark.parametrize("penalty", ["l21", "l1", "elasticnet", "l1-positive"])
def test_the_squared_route_finds_the_rows_optimum(penalty):
    """At tol = 1e-12 the route (its own answer, no finish over the rows) and coordinate
    descent over the rows (``solver="bcd"``) both certify; objectives agree to 1e-11
    relative, coefficients and intercepts to 1e-4 (a gap of 1e-12 pins W down to about its
    square root over the smallest curvature: the elastic net's ridge, 0.015, along a pair of
    correlated columns), on tasks with targets far from zero."""
    X, y, task = _squared_problem()
    X[:, 1] = X[:, 0] + 0.3 * X[:, 1]
    pen = rm.L1(positive=True) if penalty == "l1-positive" else penalty
    kw = dict(alpha=0.03, tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.MonkeyPatch.context() as mp:  # the route's own answer: no finish over rows
            mp.setattr(solver_rows, "BCD_ROW", None)
            route = rm.MultiTaskRegressor(pen, **kw).fit(X, y, task=task)
        rows = rm.MultiTaskRegressor(pen, solver="bcd", **kw).fit(X, y, task=task)
    assert route.objective_ == pytest.approx(rows.objective_, rel=1e-11)
    np.testing.assert_allclose(route.coef_, rows.coef_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(route.intercept_, rows.intercept_, rtol=0, atol=1e-4)


def test_the_squared_route_certifies_its_gap():
    """The fit's duality gap, written out in NumPy on the data (:func:`_gap_l21`), is at most
    tol times the objective at W = 0, and the fit reports that gap to rounding."""
    X, y, task = _squared_problem()
    alpha, tol = 0.05, 1e-6
    m = rm.MultiTaskRegressor("l21", alpha=alpha, tol=tol).fit(X, y, task=task)
    gap, primal = _gap_l21(X, y, task, m.coef_.T, m.intercept_, alpha)
    assert 0.0 <= gap <= tol * _p0(y, task)
    assert primal == pytest.approx(m.objective_, rel=1e-12)
    assert m.dual_gap_ == pytest.approx(gap, rel=1e-6, abs=1e-14)


def test_the_squared_route_finds_multitasklasso():
    """A shared design (``fit(X, Y)``, n = 40 rows, p = 30, T = 5: T p <= n T <= 1.5 T p)
    against scikit-learn's MultiTaskLasso on the same objective, both at tight tolerances:
    coefficients and intercepts to 1e-6."""
    from sklearn.linear_model import MultiTaskLasso

    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 30))
    Y = X[:, :4] @ rng.standard_normal((4, 5)) + 0.5 * rng.standard_normal((40, 5)) + 2.0
    data = rm.as_task_data(X, Y)
    assert choose_row(data, rm.Quadratic(), rm.L21(), 0.05, tol=1e-12) == "small_squares"
    m = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-12, max_iter=100_000).fit(X, Y)
    sk = MultiTaskLasso(alpha=0.05, tol=1e-14, max_iter=1_000_000).fit(X, Y)
    np.testing.assert_allclose(m.coef_, sk.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.intercept_, sk.intercept_, rtol=0, atol=1e-6)


def test_the_squared_route_weights_equal_repeated_rows():
    """Integer sample weights (zeros included) and the rows they repeat take the route both
    and reach the same coefficients to rounding (1e-10) at the default tol: what
    scikit-learn's sample-weight equivalence check asks of the estimators."""
    X, y, task = _squared_problem(n=150, seed=3)
    sw = np.random.default_rng(4).integers(0, 3, 150)
    while not 150 <= sw.sum() <= 225:
        sw = np.random.default_rng(int(sw.sum())).integers(0, 3, 150)
    weighted = rm.as_task_data(X, y, task=task, sample_weight=sw.astype(float))
    rep = np.repeat(np.arange(150), sw)
    repeated = rm.as_task_data(X[rep], y[rep], task=task[rep])
    for data in (weighted, repeated):
        assert choose_row(data, rm.Quadratic(), rm.L21(), 0.05) == "small_squares"
    a = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task, sample_weight=sw)
    b = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X[rep], y[rep], task=task[rep])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=1e-10)
    assert a.n_iter_ == b.n_iter_


def test_the_squared_route_without_intercepts():
    """``fit_intercept=False``: the route's fit is coordinate descent's over the rows
    (objectives to 1e-9 relative at tol = 1e-10) and its intercepts are zero."""
    X, y, task = _squared_problem()
    kw = dict(alpha=0.05, tol=1e-10, max_iter=100_000, fit_intercept=False)
    route = rm.MultiTaskRegressor("l21", **kw).fit(X, y, task=task)
    rows = rm.MultiTaskRegressor("l21", solver="bcd", **kw).fit(X, y, task=task)
    assert route.objective_ == pytest.approx(rows.objective_, rel=1e-9)
    np.testing.assert_allclose(route.coef_, rows.coef_, rtol=0, atol=1e-5)
    assert not np.any(route.intercept_)


def test_the_squared_route_warm_starts_and_stops_at_max_iter():
    """A warm refit at a nearby alpha takes fewer epochs than a cold fit and reaches the same
    point; a refit at the same alpha starts at the answer; max_iter bounds the epochs, and a
    fit it stops short of tol warns."""
    X, y, task = _squared_problem()
    X[:, 1] = X[:, 0] + 0.3 * X[:, 1]
    kw = dict(tol=1e-10, max_iter=20_000)
    cold = rm.MultiTaskRegressor("l21", alpha=0.015, **kw).fit(X, y, task=task)
    m = rm.MultiTaskRegressor("l21", alpha=0.02, warm_start=True, **kw).fit(X, y, task=task)
    m.set_params(alpha=0.015).fit(X, y, task=task)
    assert m.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(m.coef_, cold.coef_, rtol=0, atol=1e-6)
    before = m.n_iter_
    m.fit(X, y, task=task)
    assert m.n_iter_ < before
    with pytest.warns(ConvergenceWarning, match=r"max_iter=3"):
        short = rm.MultiTaskRegressor("l21", alpha=0.015, tol=1e-10, max_iter=3).fit(
            X, y, task=task)
    assert short.n_iter_ <= 3


def test_the_squared_route_twins_are_its_kernels():
    """The same fit on the NumPy twins and on the compiled kernels: the same epochs,
    coefficients to 1e-12."""
    X, y, task = _squared_problem()
    fits = []
    for twins in (True, False):
        with _jit.use_twins(twins):
            fits.append(rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-8).fit(X, y, task=task))
    assert fits[0].n_iter_ == fits[1].n_iter_
    np.testing.assert_allclose(fits[0].coef_, fits[1].coef_, rtol=0, atol=1e-12)


def test_the_squared_route_with_one_alpha_per_task():
    """One alpha per task (L1: T lassos) runs the route and finds coordinate descent's
    optimum over the rows: objectives to 1e-12 relative at tol = 1e-10, coefficients to 1e-6."""
    X, y, task = _squared_problem()
    alphas = np.array([0.01, 0.02, 0.05, 0.03, 0.1])
    ran = []

    def spy(*args, **kwargs):
        ran.append(True)
        return ss.small_least_squares(*args, **kwargs)

    kw = dict(alpha=alphas, tol=1e-10, max_iter=100_000)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solver_rows, "small_least_squares", spy)
        route = rm.MultiTaskRegressor("l1", **kw).fit(X, y, task=task)
    rows = rm.MultiTaskRegressor("l1", solver="bcd", **kw).fit(X, y, task=task)
    assert ran
    assert route.objective_ == pytest.approx(rows.objective_, rel=1e-12)
    np.testing.assert_allclose(route.coef_, rows.coef_, rtol=0, atol=1e-6)


def test_the_squared_route_on_a_sparse_design_is_the_dense_fit():
    """A sparse design and its dense copy take the route both: the same epochs, coefficients
    and intercepts to 1e-12."""
    import scipy.sparse as sp

    X, y, task = _squared_problem()
    X[np.abs(X) < 0.5] = 0.0
    Xs = sp.csr_matrix(X)
    assert choose_row(rm.as_task_data(Xs, y, task=task), rm.Quadratic(), rm.L21(),
                      0.05) == "small_squares"
    dense = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    sparse = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, y, task=task)
    assert dense.n_iter_ == sparse.n_iter_
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=0, atol=1e-12)
