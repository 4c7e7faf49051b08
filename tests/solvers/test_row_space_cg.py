"""The mean and graph penalties with the squared loss on wide tasks, in row-space form
(:mod:`regmtl.solvers.parts.row_space_cg`).

On tasks with fewer rows than features conjugate gradients on all ``p T`` unknowns needed
hundreds of iterations (T = 30, p = 1000: 230 for the mean, 290 for a chain at tol 1e-8); the
mean penalty reduces exactly to a system in the mean task (30 iterations there), and the other
couplings are preconditioned by each task's exact kernel solve (154). Checked here against the
normal equations solved densely (intercepts and sample weights as unknowns and weights of
their own, tasks of unequal sizes down to 5 rows), against the conjugate gradients of
:mod:`regmtl.solvers.methods.linear` at tol 1e-10, and for the table's choice.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DATA_HOME, needs_data
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.datasets import load_dataset
from regmtl.penalties.coupling import ClassMean
from regmtl.solvers.certificates.certify import reference
from regmtl.solvers.methods.linear import conjugate_gradient
from regmtl.solvers.parts import row_space_cg as rsc
from regmtl.solvers.policy import check_requirements, choose_row, choose_solver
from regmtl.solvers.requirements import Problem

SIZES = (5, 12, 20, 31)  # wide: p = 40 features, and one task of 5 rows
P = 40


def wide_lists(seed=0, sizes=SIZES, p=P, weights=True):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(p)
    Xs, ys, sw = [], [], []
    for n in sizes:
        X = rng.standard_normal((n, p)) + rng.standard_normal(p)  # shifted columns
        Xs.append(X)
        ys.append(X @ (w0 + 0.3 * rng.standard_normal(p)) + 2.0 + 0.1 * rng.standard_normal(n))
        sw.append(rng.uniform(0.5, 3.0, n) if weights else np.ones(n))
    return Xs, ys, sw


def dense_kernel(pen, T):
    if isinstance(pen, rm.GraphLaplacian):
        A = pen.A.toarray() if sp.issparse(pen.A) else np.asarray(pen.A, dtype=float)
        return 2.0 * (np.diag(A.sum(axis=1)) - A)
    r = float(pen.ridge)
    return (1.0 + r) * np.eye(T) - np.full((T, T), 1.0 / T)


def normal_equations(Xs, ys, sw, K, alpha, fit_intercept=True):
    """The objective ``sum_t sum_i c_i (y_i - x_i w_t - b_t)^2 / 2 + alpha tr(W K W') / 2``
    (``c_i = s_i / sum_t s``) minimized over ``(w_t, b_t)`` by one dense solve."""
    T, p = len(Xs), Xs[0].shape[1]
    q = p + 1 if fit_intercept else p
    H, g = np.zeros((q * T, q * T)), np.zeros(q * T)
    for t, (X, y, s) in enumerate(zip(Xs, ys, sw, strict=True)):
        Z = np.hstack([X, np.ones((len(y), 1))]) if fit_intercept else X
        c = s / s.sum()
        H[t * q:(t + 1) * q, t * q:(t + 1) * q] = Z.T @ (c[:, None] * Z)
        g[t * q:(t + 1) * q] = Z.T @ (c * y)
    for s in range(T):
        for t in range(T):
            H[s * q:s * q + p, t * q:t * q + p] += alpha * K[s, t] * np.eye(p)
    sol = np.linalg.solve(H, g).reshape(T, q)
    return sol[:, :p].T, (sol[:, p] if fit_intercept else np.zeros(T))


def weighted_graph(T, seed=3):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.uniform(0.2, 2.0, (T, T)) * (rng.random((T, T)) < 0.7), 1)
    A[np.arange(T - 1), np.arange(1, T)] = 1.0  # connected
    return sp.csr_matrix(A + A.T)


PENALTIES = {
    "mean": lambda T: rm.MeanRegularized(),
    "mean-ridge": lambda T: rm.MeanRegularized(ridge=0.4),
    "chain": lambda T: rm.GraphLaplacian(rm.chain_graph(T)),
    "weighted": lambda T: rm.GraphLaplacian(weighted_graph(T)),
}


@pytest.mark.parametrize("case", sorted(PENALTIES))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_wide_fit_is_the_normal_equations_and_certified(case, fit_intercept):
    Xs, ys, sw = wide_lists()
    T, alpha = len(Xs), 0.3
    pen = PENALTIES[case](T)
    data = rm.as_task_data(Xs, ys, sample_weight=sw)
    assert choose_row(data, rm.Quadratic(), pen, alpha, tol=1e-12) == "row_space_cg"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskRegressor(penalty=pen, alpha=alpha, tol=1e-12, max_iter=5000,
                                  fit_intercept=fit_intercept).fit(Xs, ys, sample_weight=sw)
    W, b = normal_equations(Xs, ys, sw, dense_kernel(pen, T), alpha, fit_intercept)
    assert_allclose(m.coef_.T, W, rtol=0, atol=1e-8 * np.abs(W).max())
    assert_allclose(m.intercept_, b, rtol=0, atol=1e-8 * max(np.abs(b).max(), 1.0))
    cert = m.dual_gap_ if case == "mean-ridge" else m.kkt_residual_
    assert 0 <= cert <= 1e-10  # (a gap is absolute: the objective at 0 is of order 1 here)


@pytest.mark.parametrize("case", sorted(PENALTIES))
def test_wide_solve_agrees_with_conjugate_gradients_on_all_unknowns(case):
    Xs, ys, sw = wide_lists(seed=1)
    T, alpha, tol = len(Xs), 0.05, 1e-10
    pen = PENALTIES[case](T)
    data = rm.as_task_data(Xs, ys, sample_weight=sw)
    ref = reference(data, rm.Quadratic(), True)
    W0 = np.zeros((P, T))
    new = rsc.row_space_cg(data, rm.Quadratic(), pen, alpha, W0, ref=ref, tol=tol)
    old = conjugate_gradient(data, rm.Quadratic(), pen, alpha, W0, np.zeros(T), ref=ref,
                             tol=tol, max_iter=10_000)
    assert new.converged and old.converged
    assert new.certificate.relative <= tol
    # a KKT residual bounds the coefficients' error linearly, a gap by its square root
    close = 1e-4 if case == "mean-ridge" else 1e-7
    scale = np.abs(old.W).max()
    assert_allclose(new.W, old.W, rtol=0, atol=close * scale)
    assert_allclose(new.b, old.b, rtol=0, atol=close * max(np.abs(old.b).max(), 1.0))
    assert new.n_iter < old.n_iter


@pytest.mark.parametrize("case", ["mean", "chain"])
def test_a_warm_start_ends_at_the_same_solution(case):
    Xs, ys, sw = wide_lists(seed=2)
    T, alpha = len(Xs), 0.2
    pen = PENALTIES[case](T)
    data = rm.as_task_data(Xs, ys, sample_weight=sw)
    ref = reference(data, rm.Quadratic(), True)
    cold = rsc.row_space_cg(data, rm.Quadratic(), pen, alpha, np.zeros((P, T)), ref=ref,
                            tol=1e-11)
    start = cold.W + 0.1 * np.random.default_rng(0).standard_normal(cold.W.shape)
    warm = rsc.row_space_cg(data, rm.Quadratic(), pen, alpha, start, ref=ref, tol=1e-11)
    assert warm.converged
    assert_allclose(warm.W, cold.W, rtol=0, atol=1e-8 * np.abs(cold.W).max())
    near = rsc.row_space_cg(data, rm.Quadratic(), pen, alpha, cold.W, ref=ref, tol=1e-11)
    assert near.converged and near.n_iter <= 2


def test_shared_design_mean_is_the_normal_equations():
    """``fit(X, Y)``: one design for every task (the Mulan layout)."""
    rng = np.random.default_rng(4)
    n, p, T = 30, 60, 3
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, T)) + rng.standard_normal((n, T))
    data = rm.as_task_data(X, Y)
    pen, alpha = rm.MeanRegularized(), 0.1
    assert choose_row(data, rm.Quadratic(), pen, alpha) == "row_space_cg"
    m = rm.MultiTaskRegressor(penalty=pen, alpha=alpha, tol=1e-12, max_iter=5000).fit(X, Y)
    ones = [np.ones(n)] * T
    W, b = normal_equations([X] * T, list(Y.T), ones, dense_kernel(pen, T), alpha)
    # rank-deficient (n < p): compare the fitted values, unique at the optimum
    assert_allclose(X @ m.coef_.T + m.intercept_, X @ W + b, rtol=0, atol=1e-7)
    assert m.kkt_residual_ <= 1e-10


def test_the_table_declares_when_the_row_space_path_applies(monkeypatch):
    Xs, ys, sw = wide_lists()
    data = rm.as_task_data(Xs, ys)
    T = len(Xs)
    mean, chain = rm.MeanRegularized(), rm.GraphLaplacian(rm.chain_graph(T))
    for pen in (mean, chain):
        assert choose_row(data, rm.Quadratic(), pen, 0.1) == "row_space_cg"
        assert choose_solver(data, rm.Quadratic(), pen, 0.1) == "cg"
        assert choose_row(data, rm.Quadratic(), pen, 0.1, solver="cg") == "row_space_cg"
        assert choose_row(data, rm.Quadratic(), pen, 0.0) == "cg"  # alpha = 0: no shift
        assert choose_row(data, rm.Logistic(), pen, 0.1) != "row_space_cg"
    # long tasks (Gram form): conjugate gradients on the Grams, as before
    rng = np.random.default_rng(0)
    long = rm.as_task_data(rng.standard_normal((200, 5)), rng.standard_normal((200, 4)))
    assert choose_row(long, rm.Quadratic(), mean, 0.1) == "cg"
    # a graph without edges couples nothing: no shift to precondition with
    empty = rm.GraphLaplacian(sp.csr_matrix((T, T)))
    assert choose_row(data, rm.Quadratic(), empty, 0.1) == "cg"
    # many tasks (one product per task and pass): conjugate gradients on all unknowns
    monkeypatch.setattr(rsc, "MAX_TASKS", T - 1)
    assert choose_row(data, rm.Quadratic(), mean, 0.1) == "cg"
    with pytest.raises(ValueError, match="solver='cg' runs in row-space form"):
        check_requirements("row_space_cg", Problem(data, rm.Quadratic(), mean, 0.1, 1e-4))


def test_a_path_of_the_mean_on_wide_tasks_is_certified():
    Xs, ys, sw = wide_lists(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        path = rm.regularization_path(Xs, ys, penalty="mean", alphas=5, tol=1e-8)
    assert len(path.alphas) == 5 and np.all(path.converged)


@pytest.mark.parametrize("penalty", [
    rm.MeanRegularized(), rm.MeanRegularized(ridge=0.4), rm.GraphLaplacian(rm.chain_graph(5)),
    rm.GraphLaplacian(np.ones((5, 5))), ClassMean(0.0, [0, 1, 0, 1, 1]), rm.Trace(), rm.L2()],
    ids=repr)
def test_pulls_to_mean_declares_the_mean_kernel(penalty):
    """``pulls_to_mean`` is True exactly where ``W K = (1 + r) W - w_bar 1^T`` with
    ``1 + r = diag(K) + 1 / T`` (checked on a random W to 1e-12)."""
    T = 5
    W = np.random.default_rng(0).standard_normal((4, T))
    mean = False
    if callable(getattr(penalty, "apply", None)):
        one_r = penalty.kernel_diagonal(T)[0] + 1.0 / T
        mean = np.allclose(penalty.apply(W), one_r * W - W.mean(axis=1, keepdims=True),
                           rtol=1e-12, atol=1e-12)
    # (a complete graph of equal weights is the mean kernel scaled by 2 T: not declared)
    if isinstance(penalty, rm.GraphLaplacian):
        assert not penalty.pulls_to_mean
    else:
        assert penalty.pulls_to_mean == mean


@needs_data("mulan_mtr")
def test_mulan_mean_comparison_certifies_every_fit():
    """``rm.compare`` of the mean model on atp1d (p = 411 collinear features, 337 rows shared
    by 6 targets: wide), one split: every CV fit and the refit meet ``tol`` at the defaults
    (conjugate gradients on all unknowns left 1-2 of 36 short and took about 20 s)."""
    bunch = load_dataset("mulan/atp1d", data_home=DATA_HOME)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        comp = rm.compare(bunch, models=["mean"], splits=1, n_jobs=1)
    assert np.isfinite(comp.summary["explained_variance_mean"]).all()
