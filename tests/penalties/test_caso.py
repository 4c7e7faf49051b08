"""Convex alternating structure optimization: ``SharedStructure(k, eta)`` (Chen, Tang, Liu &
Ye 2009; MALSAR ``Least_CASO`` / ``Logistic_CASO``)::

    Omega(W) = alpha eta (1 + eta) min_M tr(W^T (eta I + M)^{-1} W)
               over M in S^p, 0 <= M <= I, tr M = k

The inner minimum is an SDP (``matrix_frac``, jointly convex in (W, M)), so whole fits are
checked against cvxpy with M a variable; the value against cvxpy's minimum over M; the
equivalence with ``Clustered`` (M on the tasks) where ``k <= min(p, T)``; the shared subspace
recovered on a known truth; the KKT certificate; paths, CV, criteria and persistence.
"""

from __future__ import annotations

import functools
import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import CLARABEL_OPTIONS
from scipy.linalg import subspace_angles

import regmtl as rm
from regmtl.penalties import PENALTY_NAMES, make_penalty
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import reference

CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}
P, T = 5, 3
SIZES = (24, 31, 27)
LOSSES = ("squared", "logistic")


def _solve(prob: cp.Problem) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return float(prob.value)


def cvx_inner_min(W: np.ndarray, eta: float, k: int) -> float:
    """min_M tr(W^T (eta I + M)^{-1} W) over M in S^p, 0 <= M <= I, tr M = k (an SDP)."""
    p = W.shape[0]
    M = cp.Variable((p, p), symmetric=True)
    cons = [M >> 0, np.eye(p) - M >> 0, cp.trace(M) == k]
    return _solve(cp.Problem(cp.Minimize(cp.matrix_frac(W, eta * np.eye(p) + M)), cons))


@functools.cache
def problem(loss: str, seed: int):
    """Three tasks on five features near a two-dimensional subspace; logistic labels 0/1, not
    separable (each task's last row repeats its first with the other label)."""
    rng = np.random.default_rng(seed)
    Theta = np.linalg.qr(rng.standard_normal((P, 2)))[0]
    W = Theta @ rng.standard_normal((2, T)) + 0.2 * rng.standard_normal((P, T))
    Xs, ys = [], []
    for t, n in enumerate(SIZES):
        X = rng.standard_normal((n, P))
        f = X @ W[:, t] + 0.3 * (t - 1)
        if loss == "squared":
            y = f + 0.5 * rng.standard_normal(n)
        else:
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(int)
            y[0], y[1] = 0, 1
            X[-1], y[-1] = X[0], 1 - y[0]
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def signed(ys, loss):
    if loss == "squared":
        return [np.asarray(y, dtype=float) for y in ys]
    return [np.where(np.asarray(y) == 1, 1.0, -1.0) for y in ys]


def data_term(loss, Xs, ys, W, b) -> float:
    val = 0.0
    for t, (X, y) in enumerate(zip(Xs, signed(ys, loss), strict=True)):
        f = X @ W[:, t] + b[t]
        val += float(np.mean(0.5 * (y - f) ** 2 if loss == "squared"
                             else np.logaddexp(0.0, -y * f)))
    return val


def cvx_fit(loss, Xs, ys, alpha, k, eta):
    """The whole problem in cvxpy with M a variable: (W, b, optimal value)."""
    W, b = cp.Variable((P, T)), cp.Variable(T)
    M = cp.Variable((P, P), symmetric=True)
    data = 0
    for t, (X, y) in enumerate(zip(Xs, signed(ys, loss), strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            data += 0.5 * cp.sum_squares(y - f) / len(y)
        else:
            data += cp.sum(cp.logistic(-cp.multiply(y, f))) / len(y)
    pen = alpha * eta * (1 + eta) * cp.matrix_frac(W, eta * np.eye(P) + M)
    cons = [M >> 0, np.eye(P) - M >> 0, cp.trace(M) == k]
    value = _solve(cp.Problem(cp.Minimize(data + pen), cons))
    return W.value, b.value, value


def estimator(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


# --------------------------------------------------------------------------- the penalty
@pytest.mark.parametrize("shape", [(6, 3), (4, 7), (5, 5)])
def test_value_is_the_minimum_over_M(shape):
    """The closed form on the singular values is cvxpy's minimum over M, every k in 1..p
    (k > T included: the budget beyond the rank goes to the p - rank zero directions)."""
    rng = np.random.default_rng(sum(shape))
    W = rng.standard_normal(shape) * np.logspace(0, -1.5, shape[1])
    for k in range(1, shape[0] + 1):
        pen = rm.SharedStructure(k, 0.4)
        expect = 0.4 * 1.4 * cvx_inner_min(W, 0.4, k)
        assert pen.value(W, 1.0) == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("shape", [(6, 3), (3, 6), (5, 5), (8, 2)])
def test_equal_to_clustered_where_both_are_defined(shape):
    """Zhou, Chen & Ye (2011): cASO and CMTL agree for k <= min(p, T): the same value and
    prox (to 1e-10), M on the features or on the tasks."""
    rng = np.random.default_rng(3 * shape[0] + shape[1])
    for trial in range(3):
        W = rng.standard_normal(shape)
        if trial == 2:  # rank deficient
            W[:, -1] = W[:, 0]
        for k in range(1, min(shape) + 1):
            for eta in (0.1, 2.0):
                caso, cmtl = rm.SharedStructure(k, eta), rm.Clustered(k, eta)
                assert caso.value(W, 0.7) == pytest.approx(cmtl.value(W, 0.7), rel=1e-10)
                np.testing.assert_allclose(caso.prox(W, 0.3, 0.7), cmtl.prox(W, 0.3, 0.7),
                                           rtol=1e-10, atol=1e-12)


def test_prox_is_the_joint_minimum_with_M():
    """The prox against cvxpy: min_{U, M} ||U - V||^2 / (2 step) + alpha c matrix_frac."""
    rng = np.random.default_rng(5)
    V = rng.standard_normal((6, 3))
    step, alpha, k, eta = 0.8, 0.5, 4, 0.3
    U_ours = rm.SharedStructure(k, eta).prox(V, step, alpha)
    U, M = cp.Variable(V.shape), cp.Variable((6, 6), symmetric=True)
    obj = (cp.sum_squares(U - V) / (2 * step)
           + alpha * eta * (1 + eta) * cp.matrix_frac(U, eta * np.eye(6) + M))
    val = _solve(cp.Problem(cp.Minimize(obj), [M >> 0, np.eye(6) - M >> 0, cp.trace(M) == k]))
    ours = (np.sum((U_ours - V) ** 2) / (2 * step)
            + rm.SharedStructure(k, eta).value(U_ours, alpha))
    assert ours == pytest.approx(val, rel=1e-7) and ours <= val * (1 + 1e-9)
    np.testing.assert_allclose(U_ours, U.value, atol=1e-4)  # cvxpy's point: to its accuracy


# --------------------------------------------------------------------------- whole fits
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("loss", LOSSES)
def test_fit_matches_cvxpy(loss, k):
    """Both losses, k <= T and k > T (where Clustered cannot go): the objective to 1e-5
    relative, the coefficients close, the KKT certificate below tol."""
    Xs, ys = problem(loss, 7 + k)
    alpha, eta = (0.2, 0.5) if loss == "squared" else (0.05, 0.5)
    pen = rm.SharedStructure(k, eta)
    model = estimator(loss)(penalty=pen, alpha=alpha, tol=1e-10, max_iter=20000).fit(Xs, ys)
    W, b = model.coef_.T, np.asarray(model.intercept_, dtype=float)
    ours = data_term(loss, Xs, ys, W, b) + pen.value(W, alpha)
    W_cvx, b_cvx, val = cvx_fit(loss, Xs, ys, alpha, k, eta)
    assert ours == pytest.approx(val, rel=1e-5)
    assert ours <= val * (1 + 1e-7)
    np.testing.assert_allclose(W, W_cvx, atol=2e-3 * np.abs(W_cvx).max())
    assert 0.0 <= model.kkt_residual_ <= 1e-10
    assert not hasattr(model, "dual_gap_")


def test_shared_subspace_is_recovered():
    """Twenty tasks on thirty features whose weights lie in a three-dimensional subspace:
    ``shared_subspace_`` spans it (principal angles below 3 degrees), its weights in M
    near 1, and the k leading eigenvectors are those of the optimal M."""
    rng = np.random.default_rng(0)
    p, n_tasks, k = 30, 20, 3
    Theta = np.linalg.qr(rng.standard_normal((p, k)))[0]
    W_true = Theta @ rng.standard_normal((k, n_tasks))
    Xs = [rng.standard_normal((60, p)) for _ in range(n_tasks)]
    ys = [X @ W_true[:, t] + 0.1 * rng.standard_normal(60) for t, X in enumerate(Xs)]
    model = rm.MultiTaskRegressor(penalty=rm.SharedStructure(k, 0.1), alpha=0.05,
                                  tol=1e-8).fit(Xs, ys)
    S = model.shared_subspace_
    assert S.shape == (p, k)
    np.testing.assert_allclose(S.T @ S, np.eye(k), atol=1e-10)
    assert np.degrees(subspace_angles(S, Theta)).max() < 3.0
    m = model.subspace_weights_
    assert m.shape == (k,) and np.all(np.diff(m) <= 0) and m.min() > 0.5
    # the same vectors from the dense optimal M
    E, mw, m0 = model.penalty.side_factors(model.coef_.T)
    M = (E * (mw - m0)) @ E.T + m0 * np.eye(p)
    assert np.trace(M) == pytest.approx(k)
    np.testing.assert_allclose(M @ S, S * m, atol=1e-10)


def test_k_beyond_the_rank_completes_the_subspace():
    """k > min(p, T): the subspace is completed by orthonormal directions where W vanishes."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((8, 2))
    Theta, m = rm.SharedStructure(5, 1.0).subspace(W)
    assert Theta.shape == (8, 5)
    np.testing.assert_allclose(Theta.T @ Theta, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(m[:2], 1.0)
    np.testing.assert_allclose(m[2:], 3.0 / 6.0)  # the rest of the budget over 6 zeros
    np.testing.assert_allclose(Theta[:, 2:].T @ W, 0.0, atol=1e-12)


# --------------------------------------------------------------------------- around the fit
@pytest.mark.parametrize("loss", LOSSES)
def test_save_load_round_trip(loss, tmp_path):
    Xs, ys = problem(loss, 21)
    model = estimator(loss)(penalty=rm.SharedStructure(2, 0.5), alpha=0.1,
                            tol=1e-8).fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert type(again) is type(model) and again.penalty == model.penalty
    for attr in ("coef_", "intercept_", "shared_subspace_", "subspace_weights_"):
        np.testing.assert_array_equal(getattr(again, attr), getattr(model, attr))
    for a, b in zip(again.predict(Xs), model.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("loss", LOSSES)
def test_path_cv_and_criteria_are_certified(loss):
    Xs, ys = problem(loss, 31)
    pen = rm.SharedStructure(2, 0.5)
    path = rm.regularization_path(Xs, ys, penalty=pen, loss=loss, alphas=[1.0, 0.1, 0.01],
                                  tol=1e-8)
    assert path.certificate_kind == "kkt_residual"
    assert path.converged.all() and np.all(path.certificates <= 1e-8)
    assert all({"shared_subspace_", "subspace_weights_"} <= set(s) for s in path.structure)
    cv_cls = rm.MultiTaskRegressorCV if loss == "squared" else rm.MultiTaskClassifierCV
    cv = cv_cls(penalty="shared_structure", alphas=4, cv=3, tol=1e-6).fit(Xs, ys)
    assert make_penalty(cv.best_estimator_.penalty) == rm.SharedStructure()
    assert 0.0 <= cv.best_estimator_.kkt_residual_ <= 1e-6
    ic = cv_cls(penalty=pen, alphas=4, criterion="bic", tol=1e-6).fit(Xs, ys)
    assert np.isfinite(ic.alpha_)


def test_degrees_of_freedom_run_from_independent_to_pooled():
    """The hat-matrix trace: T (p + 1) as alpha -> 0, T (the intercepts) as alpha -> inf,
    and at the fitted M, against the dense per-task formula."""
    Xs, ys = problem("squared", 41)
    data = rm.as_task_data(Xs, ys)
    pen = rm.SharedStructure(2, 0.5)
    dfs = []
    for alpha in (1e-8, 0.3, 1e6):
        m = rm.MultiTaskRegressor(penalty=pen, alpha=alpha, tol=1e-10).fit(Xs, ys)
        W, b = m.coef_.T, np.asarray(m.intercept_, dtype=float)
        dfs.append(degrees_of_freedom(data, rm.Quadratic(), pen, alpha, W, b))
        E, mw, m0 = pen.side_factors(W)
        K = np.linalg.inv(0.5 * np.eye(P) + (E * (mw - m0)) @ E.T + m0 * np.eye(P))
        expect = 0.0
        for X in Xs:
            Z = np.column_stack([X, np.ones(len(X))]) / np.sqrt(len(X))
            D = Z.T @ Z
            R = np.zeros_like(D)
            R[:P, :P] = 2 * alpha * 0.5 * 1.5 * K
            expect += np.trace(np.linalg.solve(D + R, D))
        # (the solves carry a ridge of 1e-10 of the mean diagonal: felt at alpha = 1e6 only)
        assert dfs[-1] == pytest.approx(expect, rel=1e-6 if alpha < 1 else 1e-3)
    assert dfs[0] == pytest.approx(T * (P + 1), rel=1e-6)
    assert dfs[-1] == pytest.approx(T, rel=1e-3)
    assert dfs[0] > dfs[1] > dfs[2]


def test_school_is_certified():
    """The shipped School data (139 schools, 28 features), k = 3."""
    from regmtl.datasets import load_school

    school = load_school()
    Xs, ys = school["X"], school["y"]
    model = rm.MultiTaskRegressor(penalty=rm.SharedStructure(3, 0.5), alpha=1.0,
                                  tol=1e-6).fit(Xs, ys)
    assert model.kkt_residual_ <= 1e-6
    assert model.shared_subspace_.shape == (model.coef_.shape[1], 3)


def test_names_and_reference():
    assert PENALTY_NAMES["shared_structure"] is rm.SharedStructure
    assert make_penalty("shared_structure") == rm.SharedStructure(2, 1.0)
    Xs, ys = problem("squared", 51)
    ref = reference(rm.as_task_data(Xs, ys), rm.Quadratic(), True)
    assert ref.P0 > 0


@pytest.mark.parametrize("bad, name", [(dict(k=0), "k"), (dict(k=P + 1), "k"),
                                       (dict(k=1.5), "k"), (dict(eta=0.0), "eta"),
                                       (dict(eta=-1.0), "eta"), (dict(eta="1"), "eta")])
def test_bad_parameters_are_named(bad, name):
    Xs, ys = problem("squared", 61)
    with pytest.raises(ValueError, match=rf"^{name} must") as err:
        rm.MultiTaskRegressor(penalty=rm.SharedStructure(**bad), alpha=0.1).fit(Xs, ys)
    if name == "k":
        assert f"1..{P}" in str(err.value) and "features" in str(err.value)
