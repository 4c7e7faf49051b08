"""Structured penalties against their definitions (design.rst section 4 table).

``prox`` is checked to be the argmin of ``||U - V||^2 / (2 step) + Omega(U)`` with arguments
independent of the implementation: (a) an interior-point solve of the same prox problem written
in cvxpy from the table (nuclear norm, ``matrix_frac`` for the clustered relaxation, sums of
norms for the dirty parts), and (b) random perturbations, none of which may decrease the prox
objective. ``value`` is checked against the table (for ``Clustered``: against cvxpy's minimum over
M and against random feasible M), and the smooth penalties' gradients against finite differences.

cvxpy is a test-only dependency; every solve here is tiny (p x T <= 6 x 5) and uses Clarabel
with tightened stopping criteria.

Tolerances. Where a numpy-evaluated objective at cvxpy's point is compared with the prox output
the comparison is exact up to rounding (any feasible point bounds the minimum from above), so
it uses ``1e-12`` relative. Comparisons with cvxpy's *reported* optimum or argmin carry the
interior-point solver's accuracy: objectives to ``1e-7`` relative, points to ``1e-4`` (the prox
objective is ``1/step``-strongly convex, so an objective error ``e`` allows a distance of
``sqrt(2 step e)``).
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from _cases import cases, graph_laplacian, mean_regularized
from conftest import A4, CLARABEL_OPTIONS

import regmtl as rm

CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}


def solve_cvx(problem: cp.Problem) -> float:
    """Solve with Clarabel at tolerances tighter than its defaults. Where it cannot certify them
    it reports "optimal_inaccurate" with a point that is still far better than the comparisons
    below need; those comparisons, not the status, decide."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(**CLARABEL)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    return float(problem.value)


def random_matrix(rng, p=6, T=4, spread=True):
    """Random p x T matrix; with ``spread`` its singular values span two decades and some rows /
    entries are small, so every prox below thresholds something."""
    W = rng.standard_normal((p, T))
    if spread:
        U, _, Vt = np.linalg.svd(W, full_matrices=False)
        s = np.geomspace(3.0, 0.03, min(p, T))
        W = (U * s) @ Vt
        W[rng.random((p, T)) < 0.3] *= 0.05
        W[rng.choice(p, size=2, replace=False)] *= 0.01
    return W


# --------------------------------------------------------------------------- the table
# nuclear, mean_regularized and graph_laplacian (the table) come from the bank, ``_cases.py``
def laplacian(A):
    return np.diag(A.sum(axis=1)) - A


def clustered_scale(alpha, eta):
    return alpha * eta * (1.0 + eta)


def clustered_trace(W, M, eta):
    """tr(W (eta I + M)^{-1} W^T)."""
    T = W.shape[1]
    return float(np.trace(W @ np.linalg.solve(eta * np.eye(T) + M, W.T)))


def clustered_cvx_min(W, eta, k):
    """min_M tr(W (eta I + M)^{-1} W^T) over 0 <= M <= I, tr M = k, by cvxpy (SDP)."""
    T = W.shape[1]
    M = cp.Variable((T, T), symmetric=True)
    cons = [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == k]
    return solve_cvx(cp.Problem(cp.Minimize(cp.matrix_frac(W.T, eta * np.eye(T) + M)), cons))


def random_feasible_M(rng, T, k):
    """A random M in S^T with 0 <= M <= I and tr M = k: random eigenvectors, eigenvalues in
    [0, 1] shifted (by bisection) to sum to k."""
    u = rng.random(T) ** rng.uniform(0.3, 3.0)
    lo, hi = -1.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.clip(u + mid, 0, 1).sum() < k else (lo, mid)
    m = np.clip(u + 0.5 * (lo + hi), 0, 1)
    Q, _ = np.linalg.qr(rng.standard_normal((T, T)))
    return (Q * m) @ Q.T


def assert_feasible_M(M, k, atol=1e-12):
    T = M.shape[0]
    np.testing.assert_allclose(M, M.T, atol=atol)
    ev = np.linalg.eigvalsh(M)
    assert ev.min() >= -atol and ev.max() <= 1.0 + atol, ev
    assert np.trace(M) == pytest.approx(k, abs=atol * T)


# --------------------------------------------------------------------------- cases
# name -> (penalty, Omega(V, alpha) written from the table), from the shared bank
STRUCTURED = cases(tag="structured")
CASES = {c.id: (c.penalty, c.omega) for c in STRUCTURED}
LIFTED = {c.id for c in STRUCTURED if c.lifted}
CLUSTERED = {c.id: (c.penalty.k, c.penalty.eta) for c in cases(tag="clustered")}


def cvx_prox(name, V, step, alpha):
    """argmin_U ||U - V||^2 / (2 step) + Omega(U) by cvxpy: (U, optimal value)."""
    if name in LIFTED:
        g = CASES[name][0].sparse_weight
        P, Q = cp.Variable(V[0].shape), cp.Variable(V[1].shape)
        fit = (cp.sum_squares(P - V[0]) + cp.sum_squares(Q - V[1])) / (2 * step)
        pen = alpha * (cp.normNuc(Q) + g * cp.sum(cp.abs(P)))
        val = solve_cvx(cp.Problem(cp.Minimize(fit + pen)))
        return np.stack([P.value, Q.value]), val
    p, T = V.shape
    U = cp.Variable((p, T))
    fit = cp.sum_squares(U - V) / (2 * step)
    if name.startswith("Dirty"):  # the infimal convolution: jointly over U and its part P
        g, P = CASES[name][0].own_weight, cp.Variable((p, T))
        pen = alpha * (cp.sum(cp.norm(P, 2, axis=1)) + g * cp.sum(cp.abs(U - P)))
    elif name == "Trace":
        pen = alpha * cp.normNuc(U)
    elif name.startswith("MeanRegularized"):
        r = CASES[name][0].ridge
        wbar = cp.sum(U, axis=1, keepdims=True) / T
        pen = 0.5 * alpha * (cp.sum_squares(U - wbar @ np.ones((1, T))) + r * cp.sum_squares(U))
    else:
        pen = 0.5 * alpha * sum(A4[s, t] * cp.sum_squares(U[:, s] - U[:, t])
                                for s in range(T) for t in range(T) if A4[s, t] and s != t)
    val = solve_cvx(cp.Problem(cp.Minimize(fit + pen)))
    return U.value, val


def cvx_prox_clustered(V, step, alpha, k, eta):
    """The clustered prox as one joint convex problem in (U, M)."""
    p, T = V.shape
    U = cp.Variable((p, T))
    M = cp.Variable((T, T), symmetric=True)
    obj = cp.sum_squares(U - V) / (2 * step) + clustered_scale(alpha, eta) * cp.matrix_frac(
        U.T, eta * np.eye(T) + M)
    cons = [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == k]
    val = solve_cvx(cp.Problem(cp.Minimize(obj), cons))
    return U.value, val


def point(rng, name, p=6, T=4):
    if name in LIFTED:
        return np.stack([random_matrix(rng, p, T), random_matrix(rng, p, T)])
    return random_matrix(rng, p, T)


def step_alpha(rng, name):
    # strong enough that the nonsmooth penalties zero something out (checked below)
    if name.startswith(("Trace", "SparseLowRank")):
        return rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.0)
    return rng.uniform(0.3, 1.5), rng.uniform(0.2, 1.2)


# --------------------------------------------------------------------------- prox vs cvxpy
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_prox_against_cvxpy(name, seed):
    penalty, omega = CASES[name]
    rng = np.random.default_rng(seed)
    V = point(rng, name)
    step, alpha = step_alpha(rng, name)

    def obj(U):
        return np.sum((U - V) ** 2) / (2 * step) + omega(U, alpha)

    U = penalty.prox(V, step, alpha)
    assert U.shape == V.shape
    U_cvx, val_cvx = cvx_prox(name, V, step, alpha)
    # exact: cvxpy's point is feasible, so it cannot beat the minimizer
    assert obj(U) <= obj(U_cvx) + 1e-12 * abs(obj(U_cvx))
    # and cvxpy really solved the problem: values and points agree to its accuracy
    assert obj(U) == pytest.approx(val_cvx, rel=1e-7)
    np.testing.assert_allclose(U, U_cvx, atol=1e-4)
    # the nonsmooth penalties did threshold here, so their nonsmooth branch was exercised
    if name == "Trace":
        assert np.linalg.matrix_rank(U, tol=1e-10) < min(V.shape)
    elif name.startswith("Dirty"):
        assert np.any(np.all(U == 0.0, axis=1))
    elif name.startswith("SparseLowRank"):
        assert np.any(U[0] == 0.0)
        assert np.linalg.matrix_rank(U[1], tol=1e-10) < min(V.shape[1:])


def clustered_point(rng, shape):
    """(p, T) random, or "rank1": a 6 x 4 matrix of rank one (fewer nonzero singular values
    than clusters k, where the rest of the budget tr M = k goes to the null space)."""
    if shape == "rank1":
        return np.outer(rng.standard_normal(6), rng.standard_normal(4))
    return random_matrix(rng, *shape)


@pytest.mark.parametrize("shape", [(6, 4), (3, 5), "rank1"], ids=["tall", "wide", "rank1"])
@pytest.mark.parametrize("name", list(CLUSTERED))
def test_clustered_prox_against_cvxpy(name, shape):
    """Joint problem over (U, M); the wide case (p < T) has T - p zero singular values."""
    k, eta = CLUSTERED[name]
    penalty = rm.Clustered(k, eta)
    rng = np.random.default_rng(7 + k)
    V = clustered_point(rng, shape)
    step, alpha = 0.8, 0.6
    U = penalty.prox(V, step, alpha)
    U_cvx, val_cvx = cvx_prox_clustered(V, step, alpha, k, eta)

    def obj(W):  # Omega at W: the value at the optimal M (checked in the value tests)
        return np.sum((W - V) ** 2) / (2 * step) + penalty.value(W, alpha)

    assert obj(U) <= obj(U_cvx) + 1e-12 * abs(obj(U_cvx))
    assert obj(U) == pytest.approx(val_cvx, rel=1e-7)
    np.testing.assert_allclose(U, U_cvx, atol=1e-4)
    # independently of penalty.value: the M that penalty.cluster_matrix picks is feasible, so
    # it gives an upper bound on Omega(U), and the prox objective with it matches cvxpy's
    M = penalty.cluster_matrix(U)
    assert_feasible_M(M, k)
    ub = np.sum((U - V) ** 2) / (2 * step) + clustered_scale(alpha, eta) * clustered_trace(
        U, M, eta)
    assert ub == pytest.approx(val_cvx, rel=1e-7)


# --------------------------------------------------------------------------- prox vs perturbation
def _nonsmooth_direction(rng, name, U):
    """A random direction that moves the prox output off its kink (where there is one)."""
    if name == "Trace" or name.startswith("SparseLowRank"):
        M = U if name == "Trace" else U[1]
        Uu, s, Vt = np.linalg.svd(M)
        r = int(np.sum(s > 1e-10))
        # a rank-one matrix outside the current row and column spaces
        D = np.outer(Uu[:, r:] @ rng.standard_normal(M.shape[0] - r),
                     Vt[r:].T @ rng.standard_normal(M.shape[1] - r))
        if name == "Trace":
            return D
        return np.stack([rng.standard_normal(D.shape) * (U[0] == 0.0), D])
    if name.startswith("Dirty"):
        return rng.standard_normal(U.shape) * (U == 0.0)
    return rng.standard_normal(U.shape)


@pytest.mark.parametrize("name", [*CASES, *CLUSTERED])
def test_prox_is_the_minimizer_against_perturbations(name):
    if name in CLUSTERED:
        k, eta = CLUSTERED[name]
        penalty = rm.Clustered(k, eta)

        def omega(W, a):
            return penalty.value(W, a)
    else:
        penalty, omega = CASES[name]
    rng = np.random.default_rng(11)
    V = point(rng, name)
    step, alpha = step_alpha(rng, name)

    def obj(U):
        return np.sum((U - V) ** 2) / (2 * step) + omega(U, alpha)

    U = penalty.prox(V, step, alpha)
    best = obj(U)
    for i in range(300):
        scale = 10.0 ** rng.uniform(-6, -0.5)
        D = rng.standard_normal(U.shape) if i % 2 else _nonsmooth_direction(rng, name, U)
        D = D / max(np.linalg.norm(D), 1e-300)
        assert best <= obj(U + scale * D) + 1e-13 * abs(best), f"prox beaten in direction {i}"


@pytest.mark.parametrize("name", [*CASES, *CLUSTERED])
def test_prox_trivial_cases(name):
    penalty = rm.Clustered(*CLUSTERED[name]) if name in CLUSTERED else CASES[name][0]
    rng = np.random.default_rng(2)
    V = point(rng, name)
    np.testing.assert_allclose(penalty.prox(V, 0.5, 0.0), V, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(penalty.prox(np.zeros_like(V), 0.5, 2.0), 0.0)


def test_prox_closed_forms():
    """Singular-value soft-thresholding; V (I + step alpha K)^{-1} for the task kernels; row and
    entry soft-thresholding for the dirty parts."""
    rng = np.random.default_rng(4)
    V = random_matrix(rng)
    s, a = 0.7, 0.9
    U, sv, Vt = np.linalg.svd(V, full_matrices=False)
    np.testing.assert_allclose(rm.Trace().prox(V, s, a),
                               (U * np.maximum(sv - s * a, 0)) @ Vt, atol=1e-14)
    T = V.shape[1]
    for pen, K in [(rm.MeanRegularized(0.4), 1.4 * np.eye(T) - np.ones((T, T)) / T),
                   (rm.GraphLaplacian(A4), 2 * laplacian(A4))]:
        np.testing.assert_allclose(pen.prox(V, s, a),
                                   np.linalg.solve((np.eye(T) + s * a * K).T, V.T).T,
                                   rtol=1e-12, atol=1e-14)
    # the dirty model's two limits: own_weight >= 1 is L2,1 (row soft-thresholding),
    # own_weight <= 1 / sqrt(T) is L1 at alpha own_weight (entry soft-thresholding)
    nrm = np.linalg.norm(V, axis=1, keepdims=True)
    np.testing.assert_allclose(rm.Dirty(1.0).prox(V, s, a),
                               V * np.maximum(1 - s * a / nrm, 0), atol=1e-14)
    g = 0.9 / np.sqrt(T)
    np.testing.assert_allclose(rm.Dirty(g).prox(V, s, a),
                               np.sign(V) * np.maximum(np.abs(V) - s * a * g, 0), atol=1e-14)


# --------------------------------------------------------------------------- value
@pytest.mark.parametrize("name", list(CASES))
def test_value_matches_table(name):
    penalty, omega = CASES[name]
    rng = np.random.default_rng(3)
    for alpha in (0.0, 0.3, 2.5):
        V = point(rng, name)
        # the dirty model's table value is an interior-point solve (accurate to ~1e-10)
        rel = 1e-8 if name.startswith("Dirty") else 1e-12
        assert penalty.value(V, alpha) == pytest.approx(omega(V, alpha), rel=rel, abs=1e-300)


def test_value_small_explicit_cases():
    W = np.array([[3.0, 0.0], [0.0, -4.0], [0.0, 0.0]])  # singular values 4, 3
    assert rm.Trace().value(W, 2.0) == pytest.approx(14.0, rel=1e-15)
    # w_bar = (1.5, -2, 0): sum_t ||w_t - w_bar||^2 = 2 (1.5^2 + 2^2) = 12.5, ||W||_F^2 = 25
    assert rm.MeanRegularized(0.5).value(W, 2.0) == pytest.approx(12.5 + 12.5, rel=1e-15)
    # one edge of weight 3, counted in both orders: 2 * 3 * ||w_0 - w_1||^2 / 2 * alpha
    A = np.array([[0.0, 3.0], [3.0, 0.0]])
    assert rm.GraphLaplacian(A).value(W, 2.0) == pytest.approx(2.0 * 3.0 * 25.0, rel=1e-15)
    V = np.stack([W, -W])
    assert rm.SparseLowRank(0.5).value(V, 2.0) == pytest.approx(2.0 * (7.0 + 0.5 * 7.0),
                                                               rel=1e-15)
    # dirty, row by row: (1, 1, 1, 1) with own_weight 0.6 is all shared (||w|| = 2 < 0.6 * 4);
    # (3, 4) with 0.5 all own (0.5 * 7 < 5); (4, 0.1) with 0.9 splits: the dual point
    # (0.9, sqrt(1 - 0.81)) sits on both bounds, s = sqrt(0.19) / 0.1, P = g / s
    assert rm.Dirty(0.6).value(np.ones((1, 4)), 2.0) == pytest.approx(4.0, rel=1e-15)
    assert rm.Dirty(0.5).value(np.array([[3.0, 4.0]]), 2.0) == pytest.approx(7.0, rel=1e-15)
    w = np.array([[4.0, 0.1]])
    s = np.sqrt(0.19) / 0.1
    assert rm.Dirty(0.9).value(w, 1.0) == pytest.approx(3.6 + np.sqrt(0.19) * 0.1, rel=1e-14)
    P, Q = rm.Dirty(0.9).split(w)
    np.testing.assert_allclose(P, [[0.9 / s, 0.1]], rtol=1e-14)
    np.testing.assert_array_equal(Q[:, 1], 0.0)
    np.testing.assert_allclose(P + Q, w, rtol=0, atol=0)
    assert np.linalg.norm(P) + 0.9 * np.abs(Q).sum() == pytest.approx(3.6 + 0.1 * np.sqrt(0.19),
                                                                      rel=1e-14)


def test_laplacian_form_matches_pairwise_form():
    """alpha/2 sum_st A_st ||w_s - w_t||^2 = alpha tr(W L W^T), L = diag(A 1) - A."""
    rng = np.random.default_rng(6)
    W = random_matrix(rng, spread=False)
    val = rm.GraphLaplacian(A4).value(W, 0.7)
    assert val == pytest.approx(0.7 * np.trace(W @ laplacian(A4) @ W.T), rel=1e-13)
    assert val == pytest.approx(graph_laplacian(W, 0.7, A4), rel=1e-13)
    # k-NN and chain helpers give graphs the penalty accepts
    assert rm.GraphLaplacian(rm.chain_graph(4)).value(W, 1.0) == pytest.approx(
        sum(np.sum((W[:, t] - W[:, t + 1]) ** 2) for t in range(3)), rel=1e-13)


@pytest.mark.parametrize("shape", [(6, 4), (3, 5), (5, 5), "rank1"],
                         ids=["tall", "wide", "square", "rank1"])
@pytest.mark.parametrize("name", list(CLUSTERED))
def test_clustered_value_is_the_minimum_over_M(name, shape):
    k, eta = CLUSTERED[name]
    penalty = rm.Clustered(k, eta)
    rng = np.random.default_rng(3 + k)
    W = clustered_point(rng, shape)
    shape = W.shape
    alpha = 0.8
    c = clustered_scale(alpha, eta)
    val = penalty.value(W, alpha)
    # (a) against cvxpy's minimum over M
    assert val / c == pytest.approx(clustered_cvx_min(W, eta, k), rel=1e-7)
    # (b) the minimizer it reports is feasible and attains the value
    M_star = penalty.cluster_matrix(W)
    assert_feasible_M(M_star, k)
    assert clustered_trace(W, M_star, eta) == pytest.approx(val / c, rel=1e-12)
    # (c) no feasible M does better: random ones, and ones near M_star (the set is convex)
    T = shape[1]
    for i in range(300):
        M = random_feasible_M(rng, T, k)
        if i % 2:
            lam = 10.0 ** rng.uniform(-6, -1)
            M = (1 - lam) * M_star + lam * M
        assert_feasible_M(M, k, atol=1e-10)
        assert clustered_trace(W, M, eta) >= val / c * (1 - 1e-12)
    # degenerate cases: W = 0, and alpha = 0
    assert penalty.value(np.zeros(shape), alpha) == 0.0
    assert penalty.value(W, 0.0) == 0.0


def test_clustered_value_with_k_equal_T_is_a_ridge():
    """k = T forces M = I: alpha eta (1 + eta) / (eta + 1) ||W||_F^2 = alpha eta ||W||_F^2."""
    rng = np.random.default_rng(1)
    W = random_matrix(rng)
    pen = rm.Clustered(4, 0.3)
    assert pen.value(W, 1.3) == pytest.approx(1.3 * 0.3 * np.sum(W * W), rel=1e-12)
    np.testing.assert_allclose(pen.cluster_matrix(W), np.eye(4), atol=1e-12)


# --------------------------------------------------------------------------- gradients
def kernel_gradient(name, W, alpha):
    """Gradients written from the table, column by column."""
    T = W.shape[1]
    G = np.zeros_like(W)
    if name.startswith("MeanRegularized"):
        r = CASES[name][0].ridge
        wbar = W.mean(axis=1)
        for t in range(T):  # d/dw_t of sum_s ||w_s - wbar||^2 is 2 (w_t - wbar)
            G[:, t] = alpha * ((W[:, t] - wbar) + r * W[:, t])
    else:
        for t in range(T):  # 2 alpha sum_s A_ts (w_t - w_s) for symmetric A
            G[:, t] = 2 * alpha * sum(A4[t, s] * (W[:, t] - W[:, s]) for s in range(T))
    return G


@pytest.mark.parametrize("name", ["MeanRegularized(0)", "MeanRegularized(0.4)",
                                  "GraphLaplacian"])
def test_smooth_penalty_gradient_against_finite_differences(name):
    penalty, _ = CASES[name]
    rng = np.random.default_rng(12)
    alpha, h = 0.9, 1e-3
    for _ in range(5):
        W = random_matrix(rng, spread=False)
        G = kernel_gradient(name, W, alpha)
        if hasattr(penalty, "gradient"):
            np.testing.assert_allclose(penalty.gradient(W, alpha), G, rtol=1e-12, atol=1e-14)
        for _ in range(5):
            D = rng.standard_normal(W.shape)
            # the penalty is quadratic: central differences are exact up to rounding
            fd = penalty.value(W + h * D, alpha) - penalty.value(W - h * D, alpha)
            assert fd == pytest.approx(2 * h * np.sum(G * D), rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("shape", [(6, 4), (3, 5)], ids=["tall", "wide"])
@pytest.mark.parametrize("name", list(CLUSTERED))
def test_clustered_gradient_against_finite_differences(name, shape):
    """grad = 2 alpha eta (1 + eta) W (eta I + M*)^{-1}, M* = cluster_matrix(W) (Danskin)."""
    k, eta = CLUSTERED[name]
    penalty = rm.Clustered(k, eta)
    rng = np.random.default_rng(13)
    alpha, h = 0.7, 1e-5
    T = shape[1]
    for _ in range(4):
        W = random_matrix(rng, *shape, spread=False)
        M = penalty.cluster_matrix(W)
        G = 2 * clustered_scale(alpha, eta) * np.linalg.solve(eta * np.eye(T) + M, W.T).T
        for _ in range(5):
            D = rng.standard_normal(W.shape)
            fd = penalty.value(W + h * D, alpha) - penalty.value(W - h * D, alpha)
            # O(h^2) truncation relative to a directional derivative of order 1
            assert fd == pytest.approx(2 * h * np.sum(G * D), rel=1e-6, abs=1e-10)


# --------------------------------------------------------------------------- lifted variables
@pytest.mark.parametrize("name", ["SparseLowRank(0.2)"])
def test_lifted_maps(name):
    """W = P + Q; spread is the adjoint of compose; lift gives a preimage of W."""
    penalty, _ = CASES[name]
    rng = np.random.default_rng(5)
    V = point(rng, name)
    W = random_matrix(rng, spread=False)
    np.testing.assert_array_equal(penalty.compose(V), V[0] + V[1])
    assert np.sum(penalty.spread(W) * V) == pytest.approx(np.sum(W * penalty.compose(V)),
                                                         rel=1e-13)
    np.testing.assert_array_equal(penalty.compose(penalty.lift(W)), W)


# --------------------------------------------------------------------------- certificate pieces
@pytest.mark.parametrize("name", ["Trace", "Dirty(0.6)", "Dirty(1.5)", "SparseLowRank(0.2)",
                                  "SparseLowRank(0.7)"])
def test_alpha_max_is_where_the_prox_of_the_gradient_vanishes(name):
    """0 = argmin ||V - G0||^2 / 2 + Omega(V) (G0 spread over the lifted parts) exactly when
    alpha >= alpha_max: the dual norm of G0, written here for each penalty."""
    penalty, _ = CASES[name]
    rng = np.random.default_rng(9)
    G0 = rng.standard_normal((6, 4))
    spec, absmax = np.linalg.norm(G0, 2), np.abs(G0).max()
    rowmax = np.linalg.norm(G0, axis=1).max()
    if name == "Trace":
        expected = spec
    elif name.startswith("Dirty"):
        expected = max(rowmax, absmax / penalty.own_weight)
    else:
        expected = max(spec, absmax / penalty.sparse_weight)
    a = penalty.alpha_max(G0)
    assert a == pytest.approx(expected, rel=1e-13)
    V0 = penalty.spread(G0)
    assert np.abs(penalty.prox(V0, 1.0, a * (1 + 1e-10))).max() <= 1e-12 * a
    assert np.abs(penalty.prox(V0, 1.0, 0.99 * a)).max() > 1e-6
    # the dual scaling puts G in the ball, and the conjugate there is 0 (a norm's indicator)
    s = penalty.dual_scaling(3 * G0, a)
    assert s == pytest.approx(1 / 3, rel=1e-13)
    assert penalty.conjugate(s * 3 * G0, a) == 0.0
    for _ in range(50):  # <G, W> <= Omega(V) for every V with W = compose(V): sup = 0
        V = point(rng, name)
        assert np.sum(G0 * penalty.compose(V)) <= penalty.value(V, a) * (1 + 1e-12)


def test_mean_regularized_conjugate():
    """Omega*(G) = tr(G K^{-1} G^T) / (2 alpha), attained at V = G K^{-1} / alpha (ridge > 0)."""
    pen = rm.MeanRegularized(0.4)
    rng = np.random.default_rng(10)
    alpha = 0.6
    T = 4
    K = 1.4 * np.eye(T) - np.ones((T, T)) / T
    for _ in range(3):
        G = rng.standard_normal((6, T))
        V_star = np.linalg.solve(K, G.T).T / alpha
        sup = np.sum(G * V_star) - mean_regularized(V_star, alpha, 0.4)
        assert pen.conjugate(G, alpha) == pytest.approx(sup, rel=1e-12)
        for _ in range(50):  # Fenchel-Young
            V = V_star + 10.0 ** rng.uniform(-4, 0) * rng.standard_normal(G.shape)
            assert np.sum(G * V) - mean_regularized(V, alpha, 0.4) <= sup + 1e-12
