"""Penalties for tasks ordered in time (MALSAR's disease-progression models):

    TemporalGroupLasso(s, r):  alpha (sum_j ||W_j||_2 + s / 2 ||W R||_F^2 + r / 2 ||W||_F^2)
    FusedGroupLasso(f, l):     alpha (sum_j ||W_j||_2 + f ||W R||_1 + l ||W||_1)

with R (T x (T - 1)) the differences of consecutive tasks, ``(W R)_{:t} = w_t - w_{t+1}``.

Everything is checked against arguments independent of the implementation: the prox, the
conjugate, the dual norm and the whole problem written in cvxpy from these formulas (Clarabel,
tightened), optimality conditions written here with NumPy (the 1-D total-variation prox's
dual sums, the temporal group lasso's stationarity), MALSAR's own objective, and problems whose
change points are known.

Tolerances and why:

* Prox and 1-D TV prox against cvxpy: objectives to ``1e-7`` relative (cvxpy's accuracy; the
  prox point evaluated by NumPy may never be worse than cvxpy's point by more than ``1e-12``
  relative), points to ``1e-4`` (an objective error e of cvxpy allows a distance
  ``sqrt(2 step e)``); exactness itself is checked by the optimality conditions to ``1e-10``
  (rounding), which cvxpy cannot resolve.
* Conjugate and dual norm against cvxpy: ``1e-7`` relative.
* Whole fits against cvxpy (T = 5..8 tasks, intercepts, both losses): objectives to ``1e-5``
  relative, coefficients to ``1e-4`` absolute (measured 1e-6 or better); the reported
  duality gap within ``tol`` and a true bound on the distance to cvxpy's point.
* ``alpha_max``: W = 0 bit for bit at ``alpha_max``, not at ``(1 - 1e-3) alpha_max``; its value
  against the dual norm written here (TGL: NumPy, ``1e-12``; fused: cvxpy, ``1e-7``).
"""

from __future__ import annotations

import functools
import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import CLARABEL_OPTIONS, require_data

import regmtl as rm
from regmtl.penalties import PENALTY_NAMES, make_penalty
from regmtl.penalties.temporal import chain_eigenvalues, tv_prox
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import reference
from regmtl.solvers.policy import choose_solver, penalty_solver

# every fit here must reach its tolerance: a ConvergenceWarning is a failure
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}
LOSSES = ("squared", "logistic")
PENALTIES = {"tgl": rm.TemporalGroupLasso(2.0, 0.3), "tgl_noridge": rm.TemporalGroupLasso(1.5),
             "fused": rm.FusedGroupLasso(0.8, 0.2), "fused_nol1": rm.FusedGroupLasso(1.0)}


# --------------------------------------------------------------------------- the formulas
def diff_matrix(T: int) -> np.ndarray:
    """MALSAR's R (T x (T - 1)): R[t, t] = 1, R[t + 1, t] = -1."""
    R = np.zeros((T, T - 1))
    R[np.arange(T - 1), np.arange(T - 1)] = 1.0
    R[np.arange(1, T), np.arange(T - 1)] = -1.0
    return R


def omega(pen: rm.Penalty, alpha: float, W: np.ndarray) -> float:
    """The penalty from its formula."""
    R = diff_matrix(W.shape[1])
    rows = float(sum(np.linalg.norm(W[j]) for j in range(W.shape[0])))
    if isinstance(pen, rm.TemporalGroupLasso):
        s, r = pen.smooth_weight, pen.ridge_weight
        return float(alpha * (rows + 0.5 * s * np.sum((W @ R) ** 2) + 0.5 * r * np.sum(W * W)))
    f, l1 = pen.fused_weight, pen.l1_weight
    return float(alpha * (rows + f * np.abs(W @ R).sum() + l1 * np.abs(W).sum()))


def cvx_omega(pen: rm.Penalty, alpha: float, U: cp.Variable, T: int):
    R = diff_matrix(T)
    rows = cp.sum(cp.norm(U, 2, axis=1))
    if isinstance(pen, rm.TemporalGroupLasso):
        s, r = pen.smooth_weight, pen.ridge_weight
        return alpha * (rows + 0.5 * s * cp.sum_squares(U @ R) + 0.5 * r * cp.sum_squares(U))
    return alpha * (rows + pen.fused_weight * cp.sum(cp.abs(U @ R))
                    + pen.l1_weight * cp.sum(cp.abs(U)))


def solve_cvx(problem: cp.Problem) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(**CLARABEL)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    return float(problem.value)


def tv_kkt(y: np.ndarray, x: np.ndarray, lam: float) -> float:
    """The optimality conditions of the 1-D TV prox: ``y - x = D^T z`` with
    ``z_k = -sum_{i <= k} (y - x)_i``, ``sum(y - x) = 0``, ``|z_k| <= lam`` and
    ``z_k = lam sign(x_{k+1} - x_k)`` where x jumps. Returns the largest violation."""
    z = -np.cumsum(y - x)
    err = abs(z[-1])
    z = z[:-1]
    err = max(err, float(np.max(np.abs(z) - lam, initial=0.0)))
    d = np.diff(x)
    jump = np.abs(d) > 1e-12 * max(1.0, float(np.abs(y).max(initial=0.0)))
    if jump.any():
        err = max(err, float(np.abs(z[jump] - lam * np.sign(d[jump])).max()))
    return err


def signed(ys, loss):
    if loss == "squared":
        return [np.asarray(y, dtype=float) for y in ys]
    return [np.where(np.asarray(y) == 1, 1.0, -1.0) for y in ys]


def data_term(loss, Xs, ys, W, b):
    """sum_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t)."""
    val = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        losses = 0.5 * (y - f) ** 2 if loss == "squared" else np.logaddexp(0.0, -y * f)
        val += float(losses.mean())
    return val


def g0(loss, Xs, ys):
    """Minus the gradient of the data term at W = 0, intercepts fitted (equal weights)."""
    cols = []
    for X, y in zip(Xs, ys, strict=True):
        if loss == "squared":
            theta = y - y.mean()
        else:
            pi = np.mean(y > 0)
            theta = y / (1.0 + np.exp(y * np.log(pi / (1 - pi))))
        cols.append(X.T @ theta / len(y))
    return np.column_stack(cols)


def p0(loss, Xs, ys):
    datafit = rm.Quadratic() if loss == "squared" else rm.Logistic()
    return reference(rm.as_task_data(Xs, signed(ys, loss)), datafit, True).P0


def estimator(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


# --------------------------------------------------------------------------- problems
@functools.cache
def problem(loss: str, seed: int, T: int | None = None, p: int = 6):
    """T time points (5 to 8), tasks of different sizes; row 0 drifts smoothly in time, row 1
    jumps once, row 2 is active in the second half only, the rest is noise. Logistic labels
    are 0/1 and not separable."""
    rng = np.random.default_rng(seed)
    T = T or int(rng.integers(5, 9))
    W = np.zeros((p, T))
    W[0] = np.linspace(0.5, 1.5, T)
    W[1] = np.where(np.arange(T) < T // 2, -1.0, 0.5)
    W[2, T // 2:] = 1.0
    Xs, ys = [], []
    for t in range(T):
        n = int(rng.integers(20, 40))
        X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
        f = X @ W[:, t] + 0.3 * (t - 2)
        if loss == "squared":
            y = f + 0.5 * rng.standard_normal(n)
        else:
            y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(int)
            y[0], y[1] = 0, 1
            X[-1], y[-1] = X[0], 1 - y[0]
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def cvx_fit(pen, loss, Xs, ys, alpha, fit_intercept=True):
    T, p = len(Xs), Xs[0].shape[1]
    W, b = cp.Variable((p, T)), cp.Variable(T)
    data = 0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + (b[t] if fit_intercept else 0.0)
        if loss == "squared":
            data += 0.5 * cp.sum_squares(y - f) / len(y)
        else:
            data += cp.sum(cp.logistic(-cp.multiply(y, f))) / len(y)
    val = solve_cvx(cp.Problem(cp.Minimize(data + cvx_omega(pen, alpha, W, T))))
    return W.value, (b.value if fit_intercept else np.zeros(T)), val


# --------------------------------------------------------------------------- 1-D TV prox
def _tv_signals(rng):
    """Random rows, rows with ties (small integers), constant pieces, random walks."""
    out = []
    for n in (1, 2, 3, 5, 8, 13):
        out += [rng.standard_normal(n), rng.integers(-2, 3, n).astype(float),
                np.repeat(rng.standard_normal(n), 2)[:n], np.cumsum(rng.standard_normal(n))]
    return out


def test_tv_prox_matches_cvxpy_on_short_rows_with_ties():
    rng = np.random.default_rng(0)
    for k, y in enumerate(_tv_signals(rng)):
        lam = [0.0, 0.05, 0.7, 3.0, 50.0][k % 5]
        x = tv_prox(y, lam)
        assert tv_kkt(y, x, lam) <= 1e-12 * max(1.0, np.abs(y).max())
        if y.size < 2:
            np.testing.assert_array_equal(x, y)
            continue
        u = cp.Variable(y.size)
        val = solve_cvx(cp.Problem(cp.Minimize(
            0.5 * cp.sum_squares(u - y) + lam * cp.norm1(cp.diff(u)))))
        F = 0.5 * np.sum((x - y) ** 2) + lam * np.abs(np.diff(x)).sum()
        F_cvx = 0.5 * np.sum((u.value - y) ** 2) + lam * np.abs(np.diff(u.value)).sum()
        assert F <= F_cvx + 1e-12 * max(1.0, F)
        assert F == pytest.approx(val, rel=1e-7, abs=1e-9)
        np.testing.assert_allclose(x, u.value, atol=1e-4)
    # a huge weight gives the mean; ties stay ties
    y = np.array([3.0, 3.0, -1.0, -1.0, 2.0])
    np.testing.assert_array_equal(tv_prox(y, 1e6), np.full(5, y.mean()))
    assert np.unique(tv_prox([1.0, 1.0, 1.0, 5.0, 5.0], 0.5)).size == 2


def test_tv_prox_long_rows():
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.standard_normal(400)) + rng.integers(-2, 3, 400)
    for lam in (0.1, 4.0):
        x = tv_prox(y, lam)
        u = cp.Variable(y.size)
        val = solve_cvx(cp.Problem(cp.Minimize(
            0.5 * cp.sum_squares(u - y) + lam * cp.norm1(cp.diff(u)))))
        F = 0.5 * np.sum((x - y) ** 2) + lam * np.abs(np.diff(x)).sum()
        assert F == pytest.approx(val, rel=1e-7)
        np.testing.assert_allclose(x, u.value, atol=1e-4)
    # 10^5 values with many ties, checked by the exact optimality conditions
    y = np.repeat(rng.integers(-3, 4, 20_000), 5).astype(float) + np.cumsum(
        0.01 * rng.standard_normal(100_000))
    for lam in (0.01, 1.0, 100.0):
        x = tv_prox(y, lam)
        assert tv_kkt(y, x, lam) <= 1e-9 * np.abs(y).max()
    with pytest.raises(ValueError, match="lam"):
        tv_prox([1.0, 2.0], -1.0)


# --------------------------------------------------------------------------- proxes
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(PENALTIES))
def test_prox_matches_cvxpy(name, seed):
    pen = PENALTIES[name]
    rng = np.random.default_rng(seed)
    p, T = 5, int(rng.integers(2, 9))
    V = rng.standard_normal((p, T)) * rng.uniform(0.3, 3.0, (p, 1))
    V[0] *= 0.05  # a row that the group norm zeroes
    step, alpha = rng.uniform(0.3, 1.5), rng.uniform(0.2, 1.0)
    U = pen.prox(V, step, alpha)
    X = cp.Variable((p, T))
    val = solve_cvx(cp.Problem(cp.Minimize(cp.sum_squares(X - V) / (2 * step)
                                           + cvx_omega(pen, alpha, X, T))))

    def F(Z):
        return float(np.sum((Z - V) ** 2) / (2 * step) + omega(pen, alpha, Z))

    assert F(U) <= F(X.value) + 1e-12 * abs(F(U))
    assert F(U) == pytest.approx(val, rel=1e-7)
    np.testing.assert_allclose(U, X.value, atol=1e-4)
    assert np.all(U[0] == 0.0)
    assert pen.value(U, alpha) == pytest.approx(omega(pen, alpha, U), rel=1e-13)


@pytest.mark.parametrize("T", [1, 2, 7, 40])
def test_temporal_prox_is_stationary(T):
    """``(V - U) / (step alpha) = U_j / ||U_j|| + K U_j`` on the nonzero rows (K = s R R^T +
    r I written densely here), and ``||V_j|| <= step alpha`` on the zero rows."""
    rng = np.random.default_rng(T)
    pen = rm.TemporalGroupLasso(3.0, 0.4)
    V = rng.standard_normal((6, T)) * np.array([0.01, 0.1, 1, 3, 10, 100])[:, None]
    step, alpha = 0.7, 0.9
    c = step * alpha
    U = pen.prox(V, step, alpha)
    R = diff_matrix(T)
    K = 3.0 * R @ R.T + 0.4 * np.eye(T)
    for j in range(6):
        nrm = np.linalg.norm(U[j])
        if nrm == 0.0:
            assert np.linalg.norm(V[j]) <= c * (1 + 1e-12)
            continue
        resid = (V[j] - U[j]) / c - U[j] / nrm - K @ U[j]
        assert np.abs(resid).max() <= 1e-10 * max(1.0, np.abs(V[j]).max() / c)
    # the DCT basis diagonalizes the chain Laplacian
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(R @ R.T)) if T > 1 else [0.0],
                               np.sort(chain_eigenvalues(T)), atol=1e-12)


def test_fused_prox_is_the_composition():
    """Group soft-thresholding of the soft-thresholding of the TV prox, row by row."""
    rng = np.random.default_rng(3)
    V = rng.standard_normal((4, 9)) * 2
    c, f, l1 = 0.6, 1.3, 0.25
    U = rm.FusedGroupLasso(f, l1).prox(V, 1.0, c)
    for j in range(4):
        x = tv_prox(V[j], c * f)
        x = np.sign(x) * np.maximum(np.abs(x) - c * l1, 0.0)
        nrm = np.linalg.norm(x)
        x = x * max(1.0 - c / nrm, 0.0) if nrm > 0 else x
        np.testing.assert_allclose(U[j], x, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- duals
@pytest.mark.parametrize("sr", [(0.0, 0.5), (1.5, 0.3), (2.0, 0.0), (0.0, 0.0)])
def test_temporal_conjugate_matches_cvxpy(sr):
    s, r = sr
    pen = rm.TemporalGroupLasso(s, r)
    rng = np.random.default_rng(4)
    alpha, p, T = 0.8, 3, 6
    G = 2.0 * rng.standard_normal((p, T))
    G = pen.dual_scaling(G, alpha) * G
    if r == 0 and s > 0:  # strictly inside the domain: the supremum is attained (cvxpy)
        G *= 0.9
    conj = pen.conjugate(G, alpha)
    if s == 0.0 and r == 0.0:
        assert conj == 0.0 and np.linalg.norm(G, axis=1).max() <= alpha * (1 + 1e-12)
        return
    W = cp.Variable((p, T))
    val = solve_cvx(cp.Problem(cp.Maximize(cp.sum(cp.multiply(G, W))
                                           - cvx_omega(pen, alpha, W, T))))
    assert conj == pytest.approx(val, rel=1e-7, abs=1e-9)
    if s == 0.0:  # L2,1 plus a ridge: sum_j (||G_j|| - alpha)_+^2 / (2 alpha r)
        closed = np.sum(np.maximum(np.linalg.norm(G, axis=1) - alpha, 0.0) ** 2) / (2 * alpha * r)
        assert conj == pytest.approx(closed, rel=1e-12)


def test_temporal_conjugate_on_the_boundary_of_its_domain():
    """Without a ridge, a row whose sum reaches alpha sqrt(T): the supremum is approached
    along the constant direction (not attained); it is sum_i g_i^2 / k_i / (2 alpha) over the
    DCT coefficients with k_i > 0."""
    pen = rm.TemporalGroupLasso(0.5, 0.0)
    rng = np.random.default_rng(5)
    T, alpha = 5, 0.7
    G = 3.0 * rng.standard_normal((1, T))
    G = pen.dual_scaling(G, alpha) * G
    assert abs(G.sum()) / np.sqrt(T) == pytest.approx(alpha, rel=1e-12)
    conj = pen.conjugate(G, alpha)
    R = diff_matrix(T)
    K = 0.5 * R @ R.T
    W0 = np.linalg.lstsq(alpha * K, G[0] - G.mean(), rcond=None)[0]
    vals = []
    for t in (1e3, 1e6, 1e9):  # <G, w> - Omega(w) along w = W0 + t 1 sign(sum G)
        w = (W0 + t * np.sign(G.sum()))[None]
        vals.append(float(np.sum(G * w)) - omega(pen, alpha, w))
    assert vals[0] < vals[1] < vals[2] <= conj * (1 + 1e-10)
    assert vals[2] == pytest.approx(conj, rel=1e-7)


@pytest.mark.parametrize("fl", [(0.0, 0.0), (1.0, 0.0), (0.4, 0.7), (3.0, 0.2)])
def test_fused_dual_norm_matches_cvxpy(fl):
    f, l1 = fl
    pen = rm.FusedGroupLasso(f, l1)
    rng = np.random.default_rng(6)
    G = rng.standard_normal((4, 7)) * np.array([[0.1], [1.0], [3.0], [0.0]])
    G[2] += 2.0  # a row far from mean zero
    norms = pen.dual_norms(G)
    assert norms[3] == 0.0
    R = diff_matrix(7)
    for j in range(3):
        w = cp.Variable(7)
        val = solve_cvx(cp.Problem(cp.Maximize(G[j] @ w), [
            cp.norm(w, 2) + f * cp.norm1(R.T @ w) + l1 * cp.norm1(w) <= 1]))
        assert norms[j] == pytest.approx(val, rel=1e-7)
        # and exactly on the boundary of the ball, as computed: the distance of G_j to
        # t (f B_TV* + l B_inf) equals t
        t = norms[j]
        x = tv_prox(G[j], t * f)
        x = np.sign(x) * np.maximum(np.abs(x) - t * l1, 0.0)
        assert np.linalg.norm(x) == pytest.approx(t, rel=1e-12)
    assert pen.dual_scaling(G, 0.5 * norms.max()) == pytest.approx(0.5, rel=1e-12)
    assert pen.conjugate(G, 1.0) == 0.0


# --------------------------------------------------------------------------- alpha_max
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(PENALTIES))
def test_alpha_max_is_exact(name, loss):
    pen = PENALTIES[name]
    Xs, ys = problem(loss, 21)
    a_max = rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    G = g0(loss, Xs, signed(ys, loss))
    if isinstance(pen, rm.TemporalGroupLasso):  # the group part alone: max_j ||G0_j||
        assert a_max == pytest.approx(np.linalg.norm(G, axis=1).max(), rel=1e-12)
    else:  # max_j of the dual norm, by cvxpy
        R = diff_matrix(G.shape[1])
        vals = []
        for j in range(G.shape[0]):
            w = cp.Variable(G.shape[1])
            vals.append(solve_cvx(cp.Problem(cp.Maximize(G[j] @ w), [
                cp.norm(w, 2) + pen.fused_weight * cp.norm1(R.T @ w)
                + pen.l1_weight * cp.norm1(w) <= 1])))
        assert a_max == pytest.approx(max(vals), rel=1e-7)
    est = estimator(loss)
    at = est(penalty=pen, alpha=a_max, tol=1e-10).fit(Xs, ys)
    assert np.all(at.coef_ == 0.0)
    below = est(penalty=pen, alpha=a_max * (1 - 1e-3), tol=1e-10, max_iter=50_000).fit(Xs, ys)
    assert np.any(below.coef_ != 0.0)


# --------------------------------------------------------------------------- whole fits
@pytest.mark.parametrize("seed", [31, 32])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(PENALTIES))
def test_fit_matches_cvxpy(name, loss, seed):
    pen = PENALTIES[name]
    Xs, ys = problem(loss, seed)
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    tol = 1e-10
    model = estimator(loss)(penalty=pen, alpha=alpha, tol=tol, max_iter=50_000).fit(Xs, ys)
    W = model.coef_.T
    yv = signed(ys, loss)
    obj = data_term(loss, Xs, yv, W, model.intercept_) + omega(pen, alpha, W)
    W_cvx, b_cvx, val_cvx = cvx_fit(pen, loss, Xs, yv, alpha)
    assert obj == pytest.approx(val_cvx, rel=1e-5)
    np.testing.assert_allclose(W, W_cvx, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, b_cvx, atol=1e-4)
    # the certificate: within tol, the objective it reports is ours, and the gap bounds the
    # distance to cvxpy's point evaluated by the same NumPy objective
    assert 0.0 <= model.dual_gap_ <= tol * p0(loss, Xs, ys)
    assert model.objective_ == pytest.approx(obj, rel=1e-9)
    obj_cvx_point = data_term(loss, Xs, yv, W_cvx, b_cvx) + omega(pen, alpha, W_cvx)
    assert obj <= obj_cvx_point + model.dual_gap_ + 1e-12 * abs(obj)
    assert np.any(W != 0)
    if loss == "squared":  # some rows selected, not all
        assert np.any(np.all(W == 0, axis=1))


@pytest.mark.parametrize("name", ["tgl", "fused"])
def test_malsar_objective(name):
    """MALSAR's ``Least_TGL`` / ``Least_CFGLasso``: ``sum_t ||y_t - X_t w_t||^2 / 2`` (no
    intercept) plus ``rho1 ||W||_F^2 + rho2 ||W R||_F^2 + rho3 ||W||_{2,1}`` (TGL) or
    ``rho1 ||W||_1 + rho2 ||W R||_1 + rho3 ||W||_{2,1}`` (cFSGL), solved by cvxpy, is regmtl's
    fit with ``task_weight="samples"``, ``alpha = T rho3 / N`` and the documented weights."""
    Xs, ys = problem("squared", 41, T=6)
    T, N = len(Xs), sum(len(y) for y in ys)
    rho1, rho2, rho3 = 0.4, 3.0, 2.0
    W = cp.Variable((Xs[0].shape[1], T))
    R = diff_matrix(T)
    loss = sum(0.5 * cp.sum_squares(y - X @ W[:, t])
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    if name == "tgl":
        reg = rho1 * cp.sum_squares(W) + rho2 * cp.sum_squares(W @ R)
        pen = rm.TemporalGroupLasso(smooth_weight=2 * rho2 / rho3, ridge_weight=2 * rho1 / rho3)
    else:
        reg = rho1 * cp.sum(cp.abs(W)) + rho2 * cp.sum(cp.abs(W @ R))
        pen = rm.FusedGroupLasso(fused_weight=rho2 / rho3, l1_weight=rho1 / rho3)
    solve_cvx(cp.Problem(cp.Minimize(loss + reg + rho3 * cp.sum(cp.norm(W, 2, axis=1)))))
    model = rm.MultiTaskRegressor(pen, alpha=T * rho3 / N, task_weight="samples",
                                  fit_intercept=False, tol=1e-10).fit(Xs, ys)
    np.testing.assert_allclose(model.coef_.T, W.value, atol=1e-4)


# --------------------------------------------------------------------------- known truth
def test_fused_recovers_the_change_points():
    """Eight time points; feature 0 steps up after t = 2 and again after t = 5, feature 1 is
    on from t = 4 only, feature 2 is constant; the others are noise. The fused model selects
    exactly those features and the zero entries of feature 1; its jumps larger than 0.1 are
    exactly the true change points, and the others are below 0.01 (each task has its own
    noise, so a piece may split by a hair: the fused lasso is not exactly change-point
    consistent), where the model without the fused term moves at almost every step."""
    rng = np.random.default_rng(7)
    T, p, n = 8, 12, 200
    W = np.zeros((p, T))
    W[0] = [1.0] * 3 + [2.0] * 3 + [3.0] * 2
    W[1, 4:] = -1.5
    W[2] = 1.0
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [X @ W[:, t] + 0.1 * rng.standard_normal(n) for t, X in enumerate(Xs)]
    model = rm.MultiTaskRegressor(rm.FusedGroupLasso(fused_weight=4.0, l1_weight=1.0),
                                  alpha=0.01, tol=1e-8).fit(Xs, ys)
    C = model.coef_.T
    assert np.flatnonzero(np.any(C != 0, axis=1)).tolist() == [0, 1, 2]
    assert np.flatnonzero(C[1]).tolist() == [4, 5, 6, 7]
    jumps = np.abs(np.diff(C[:3], axis=1))
    assert [np.flatnonzero(row > 0.1).tolist() for row in jumps] == [[2, 5], [3], []]
    assert np.all(jumps[jumps <= 0.1] < 0.01)
    assert np.count_nonzero(jumps) <= 4  # the three change points and at most one hair
    np.testing.assert_allclose(C[:3], W[:3], atol=0.05)
    plain = rm.MultiTaskRegressor(rm.FusedGroupLasso(fused_weight=0.0, l1_weight=1.0),
                                  alpha=0.01, tol=1e-8).fit(Xs, ys)
    assert np.count_nonzero(np.diff(plain.coef_.T[:3], axis=1)) >= 15
    # its degrees of freedom: one per constant nonzero run, plus the intercepts
    data = rm.as_task_data(Xs, ys)
    df = degrees_of_freedom(data, rm.Quadratic(), model.penalty, 0.01, C, model.intercept_)
    pieces = sum(1 + np.count_nonzero(np.abs(np.diff(C[j][C[j] != 0])) > 1e-9 * np.abs(
        C[j]).max()) for j in range(3))
    assert df == pieces + T


def test_temporal_group_lasso_follows_a_smooth_drift():
    """Weights drifting smoothly over ten time points, few rows per task: the smoothness term
    lowers the coefficient error of the group lasso alone, at the same selected features."""
    rng = np.random.default_rng(8)
    T, p, n = 10, 15, 18
    W = np.zeros((p, T))
    W[0] = np.sin(np.linspace(0, 1.5, T)) + 0.5
    W[1] = np.linspace(-1.0, 0.5, T)
    W[2] = 0.8
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [X @ W[:, t] + 0.5 * rng.standard_normal(n) for t, X in enumerate(Xs)]
    Xv = [rng.standard_normal((200, p)) for _ in range(T)]
    yv = [X @ W[:, t] for t, X in enumerate(Xv)]

    def best(pen):
        path = rm.regularization_path(Xs, ys, penalty=pen, alphas=15, eps=1e-2, tol=1e-8)
        assert path.converged.all()
        errors = [np.linalg.norm(c.T - W) for c in path.coefs]
        return min(errors), path.coefs[int(np.argmin(errors))]

    err_tgl, C_tgl = best(rm.TemporalGroupLasso(smooth_weight=5.0))
    err_l21, _ = best(rm.L21())
    assert err_tgl < 0.75 * err_l21
    assert set(np.flatnonzero(np.any(C_tgl != 0, axis=0))) >= {0, 1, 2}
    model = rm.MultiTaskRegressor(rm.TemporalGroupLasso(5.0), alpha=0.05).fit(Xs, ys)
    assert model.score(Xv, yv) > 0.8


# --------------------------------------------------------------------------- around the fit
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", ["tgl", "fused"])
def test_save_load_round_trip(name, loss, tmp_path):
    pen = PENALTIES[name]
    Xs, ys = problem(loss, 51)
    model = estimator(loss)(penalty=pen, alpha=0.2 * rm.alpha_max(Xs, ys, penalty=pen,
                                                                   loss=loss),
                            tol=1e-8).fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert type(again) is type(model) and again.penalty == pen
    assert again.penalty.get_params() == pen.get_params()
    np.testing.assert_array_equal(again.coef_, model.coef_)
    np.testing.assert_array_equal(again.intercept_, model.intercept_)
    assert again.dual_gap_ == model.dual_gap_
    for a, b in zip(again.predict(Xs), model.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    # a warm start from the loaded model stays at the optimum: within both certified gaps
    again.set_params(warm_start=True).fit(Xs, ys)
    assert abs(again.objective_ - model.objective_) <= model.dual_gap_ + again.dual_gap_


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", ["temporal_group_lasso", "fused_group_lasso"])
def test_path_and_cv_are_certified(name, loss):
    Xs, ys = problem(loss, 61)
    path = rm.regularization_path(Xs, ys, penalty=name, loss=loss, alphas=6, tol=1e-8)
    assert path.certificate_kind == "duality_gap"
    assert path.converged.all() and np.all(path.certificates <= 1e-8)
    assert np.all(path.coefs[0] == 0.0) and np.any(path.coefs[-1] != 0.0)
    cv_cls = rm.MultiTaskRegressorCV if loss == "squared" else rm.MultiTaskClassifierCV
    weight = "smooth_weight" if name == "temporal_group_lasso" else "fused_weight"
    cv = cv_cls(penalty=name, alphas=5, cv=3, tol=1e-6,
                penalty_grid={weight: [0.3, 3.0]}).fit(Xs, ys)
    best = cv.best_estimator_
    assert type(best.penalty) is type(make_penalty(name))
    assert getattr(best.penalty, weight) in (0.3, 3.0)
    assert 0.0 <= best.dual_gap_ <= 1e-6 * p0(loss, Xs, ys)
    # criterion AIC / BIC through the degrees of freedom
    ic = cv_cls(penalty=name, alphas=5, criterion="bic", tol=1e-6).fit(Xs, ys)
    assert np.isfinite(ic.alpha_)


def test_temporal_degrees_of_freedom():
    """The hat-matrix trace over the selected rows, formed densely here: (T p_a + T)-square
    with the data term's Hessian and alpha (s R R^T + r I) on the coefficients; with s = r = 0
    the count of nonzero entries (as L2,1)."""
    Xs, ys = problem("squared", 71, T=5)
    pen = rm.TemporalGroupLasso(2.0, 0.5)
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen)
    model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-10).fit(Xs, ys)
    W = model.coef_.T
    data = rm.as_task_data(Xs, ys)
    df = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, W, model.intercept_)
    rows = np.flatnonzero(np.any(W != 0, axis=1))
    T, pa = len(Xs), rows.size
    q = pa + 1
    D = np.zeros((T * q, T * q))
    for t, X in enumerate(Xs):
        Z = np.column_stack([X[:, rows], np.ones(len(X))])
        D[t * q:(t + 1) * q, t * q:(t + 1) * q] = Z.T @ Z / len(X)
    R = diff_matrix(T)
    K = 2.0 * R @ R.T + 0.5 * np.eye(T)
    proj = np.diag(np.r_[np.ones(pa), 0.0])
    expected = np.trace(np.linalg.solve(D + alpha * np.kron(K, proj), D))
    assert df == pytest.approx(expected, rel=1e-9)
    assert pa + 1 <= df < T * pa + T
    zero = rm.TemporalGroupLasso(0.0, 0.0)
    m0 = rm.MultiTaskRegressor(zero, alpha=alpha, tol=1e-10).fit(Xs, ys)
    df0 = degrees_of_freedom(data, rm.Quadratic(), zero, alpha, m0.coef_.T, m0.intercept_)
    assert df0 == pytest.approx(np.count_nonzero(m0.coef_) + T, rel=1e-9)


# --------------------------------------------------------------------------- real data
def test_school_is_certified():
    """The shipped School data (139 schools, 28 features) as a realistic design (its tasks
    are not ordered in time): both penalties at a tenth of alpha_max, certified."""
    from regmtl.datasets import load_school

    b = load_school()
    Xs, ys = b["X"], b["y"]
    for pen in (rm.TemporalGroupLasso(1.0, 0.1), rm.FusedGroupLasso(0.5, 0.1)):
        alpha = 0.1 * rm.alpha_max(Xs, ys, penalty=pen)
        model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6).fit(Xs, ys)
        assert 0.0 <= model.dual_gap_ <= 1e-6 * p0("squared", Xs, ys)
        assert np.any(model.coef_ != 0)


def _parkinsons_by_time():
    """Parkinson's telemonitoring (REGMTL_DATA, else ../shared/data) as a progression problem:
    task t = the recordings of month t of the trial (test_time in [30 t, 30 t + 30) days,
    t = 0..6), target motor_UPDRS, the 16 voice measures plus age and sex, standardized."""
    from regmtl.datasets import load_parkinsons

    b = load_parkinsons(require_data("parkinsons_telemonitoring"))
    X = np.vstack(b["X"])
    y = np.concatenate(b["y"])
    names = list(b["feature_names"])
    time_ = X[:, names.index("test_time")]
    keep = [i for i, n in enumerate(names) if n != "test_time"]
    X = X[:, keep]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    month = np.clip((time_ // 30).astype(int), 0, 6)
    return [X[month == t] for t in range(7)], [y[month == t] for t in range(7)]


def test_parkinsons_progression_is_certified():
    Xs, ys = _parkinsons_by_time()
    assert len(Xs) == 7 and min(len(y) for y in ys) > 150
    for pen in (rm.TemporalGroupLasso(5.0, 0.1), rm.FusedGroupLasso(1.0, 0.1)):
        alpha = 0.05 * rm.alpha_max(Xs, ys, penalty=pen)
        model = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6).fit(Xs, ys)
        assert 0.0 <= model.dual_gap_ <= 1e-6 * p0("squared", Xs, ys)
        assert np.any(model.coef_ != 0)
    yc = [(y > np.median(np.concatenate(ys))).astype(int) for y in ys]
    pen = rm.FusedGroupLasso(1.0, 0.1)
    alpha = 0.05 * rm.alpha_max(Xs, yc, penalty=pen, loss="logistic")
    clf = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-6).fit(Xs, yc)
    assert 0.0 <= clf.dual_gap_ <= 1e-6 * p0("logistic", Xs, yc)


# --------------------------------------------------------------------------- api
def test_names_defaults_and_solver_route():
    assert make_penalty("temporal_group_lasso") == rm.TemporalGroupLasso(1.0, 0.0)
    assert make_penalty("fused_group_lasso") == rm.FusedGroupLasso(1.0, 0.0)
    assert {"temporal_group_lasso", "fused_group_lasso"} <= set(PENALTY_NAMES)
    Xs, ys = problem("squared", 81)
    data = rm.as_task_data(Xs, ys)
    for pen in PENALTIES.values():
        # no block step: ADMM with exact per-task solves (squared), FISTA / proximal Newton
        assert choose_solver(data, rm.Quadratic(), pen, 0.1) == "admm"
        assert penalty_solver(rm.Logistic(), pen) == "fista"
        for solver in ("bcd", "cg"):
            with pytest.raises(ValueError, match=repr(solver)):
                choose_solver(data, rm.Quadratic(), pen, 0.1, solver=solver)
        alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen)
        a = rm.MultiTaskRegressor(pen, alpha=alpha, solver="fista", tol=1e-10).fit(Xs, ys)
        b = rm.MultiTaskRegressor(pen, alpha=alpha, solver="admm", tol=1e-10).fit(Xs, ys)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf, "1"])
@pytest.mark.parametrize("cls, arg", [(rm.TemporalGroupLasso, "smooth_weight"),
                                      (rm.TemporalGroupLasso, "ridge_weight"),
                                      (rm.FusedGroupLasso, "fused_weight"),
                                      (rm.FusedGroupLasso, "l1_weight")])
def test_bad_weights_are_named(cls, arg, bad):
    Xs, ys = problem("squared", 91)
    with pytest.raises(ValueError, match=arg):
        rm.MultiTaskRegressor(cls(**{arg: bad}), alpha=0.1).fit(Xs, ys)
    with pytest.raises(ValueError, match=arg):
        cls(**{arg: bad}).value(np.ones((2, 3)), 1.0)
