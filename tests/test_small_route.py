"""The small route of proximal Newton: a small logistic fit with a convex row-separable
penalty runs its Newton models in Gram form
(``structured_newton.small_applies``), chosen by the problem's sizes alone -- the same
solver, and the same numbers to rounding, in a fresh process (NumPy twins, numba not loaded)
and in one whose kernels are compiled; its optimum is the previous solver's (proximal Newton
on the rows) and an independent one's (cvxpy), at stated tolerances; the twins it adds agree
with their kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.datafits import make_loss
from regmtl.penalties import make_penalty
from regmtl.penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS
from regmtl.solvers import _kernels as K
from regmtl.solvers import quadratic, small
from regmtl.solvers import structured_newton as sn

SRC = str(Path(__file__).resolve().parents[1] / "src")

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
    rng = np.random.default_rng(3)
    H, V = rng.standard_normal((5, 30, 30)), rng.standard_normal((5, 30))
    out_t, out_k = np.empty_like(V), np.empty_like(V)
    small.block_matvec(H, V, out_t)
    quadratic.block_matvec.dispatcher(H, V, out_k)
    np.testing.assert_allclose(out_t, out_k, rtol=1e-12, atol=1e-12)


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
    from regmtl.solvers import newton, stationary
    from regmtl.solvers.certificates import reference
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

