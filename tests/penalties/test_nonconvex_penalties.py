"""The nonconvex penalties (MCP, SCAD, capped-L1, of entries and of rows): exact proximal
operators and block steps, certified stationary points, and what they buy over L1 / L2,1.

Tolerances, stated where they are checked:

- the prox and the kernels' block steps against a brute-force minimization (a fine grid, then
  a local refinement: bisection on the derivative in 1-D, BFGS with the analytic gradient for
  a row) on many random inputs: the same point to ``1e-8`` (``1e-7`` for rows, whose
  refinement stops near ``1e-9``), and never a higher objective (``1e-12`` relative);
- a fit's ``kkt_residual_`` below its ``tol``, the same residual recomputed here from the
  definition (Clarke subdifferential, independent NumPy) within ``2 tol``, and the fixed point
  ``W = prox_{Omega / L}(W - grad / L)`` (``L`` the data term's Lipschitz constant) to
  ``1e-6``;
- where the problem is convex (MCP with ``1 / gamma`` below the design's smallest curvature)
  the solution equals cvxpy's (``1e-6``); on an orthogonal design it is the closed form
  (``1e-10``), capped-L1 included;
- skglm is not installed here (``import skglm`` fails), so the comparison is with a plain
  proximal gradient written below from the same starting point (``1e-6``);
- the support / bias figures on a known-truth problem, with the margins in the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import toeplitz
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.penalties.base import (
    CAPPED_ENTRYWISE,
    CAPPED_ROWS,
    MCP_ENTRYWISE,
    MCP_ROWS,
    NONCONVEX_KINDS,
    SCAD_ENTRYWISE,
    SCAD_ROWS,
)
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import solve
from regmtl.solvers.parts._kernels import (
    _block_update,
    bcd_epoch_dense,
    bcd_epoch_gram,
    bcd_epoch_shared_fused,
    bcd_epoch_sparse,
    bcd_epoch_task_gram,
)

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

# (id, penalty class, kind name, shape)
SHAPES = [("mcp", rm.MCP, 3.0), ("mcp", rm.MCP, 1.5), ("scad", rm.SCAD, 3.7),
          ("scad", rm.SCAD, 2.5), ("capped", rm.CappedL1, 0.7), ("capped", rm.CappedL1, 2.0)]
KIND = {("mcp", False): MCP_ENTRYWISE, ("mcp", True): MCP_ROWS,
        ("scad", False): SCAD_ENTRYWISE, ("scad", True): SCAD_ROWS,
        ("capped", False): CAPPED_ENTRYWISE, ("capped", True): CAPPED_ROWS}
ALL = [cls(shape, group=g) for _, cls, shape in SHAPES[::2] for g in (False, True)]
IDS = [repr(p) for p in ALL]


# --------------------------------------------------------------------------- the definitions
def rho(kind: str, s: float, a: float, shape: float) -> float:
    """The penalty of a magnitude s >= 0, from its defining formula."""
    if kind == "mcp":
        return a * s - s * s / (2 * shape) if s <= shape * a else shape * a * a / 2
    if kind == "scad":
        if s <= a:
            return a * s
        if s <= shape * a:
            return (2 * shape * a * s - s * s - a * a) / (2 * (shape - 1))
        return a * a * (shape + 1) / 2
    return a * min(s, shape)


def rho_array(kind: str, s: np.ndarray, a: float, shape: float) -> np.ndarray:
    """:func:`rho` on an array of magnitudes (the same formulas, vectorized)."""
    if kind == "mcp":
        return np.where(s <= shape * a, a * s - s * s / (2 * shape), shape * a * a / 2)
    if kind == "scad":
        mid = (2 * shape * a * s - s * s - a * a) / (2 * (shape - 1))
        return np.where(s <= a, a * s, np.where(s <= shape * a, mid, a * a * (shape + 1) / 2))
    return a * np.minimum(s, shape)


def drho(kind: str, s: float, a: float, shape: float) -> float:
    """rho'(s) for s > 0 (the right derivative at capped-L1's kink)."""
    if kind == "mcp":
        return max(a - s / shape, 0.0)
    if kind == "scad":
        return a if s <= a else max(shape * a - s, 0.0) / (shape - 1)
    return a if s < shape else 0.0


def kink_points(kind: str, a: float, shape: float) -> list[float]:
    return [0.0, a, shape * a] if kind != "capped" else [0.0, shape]


def kind_of(pen) -> str:
    return {"MCP": "mcp", "SCAD": "scad", "CappedL1": "capped"}[type(pen).__name__]


def shape_of(pen) -> float:
    return float(pen.cap if isinstance(pen, rm.CappedL1) else pen.gamma)


# --------------------------------------------------------------------------- brute force
def brute_scalar(kind: str, u: float, L: float, a: float, shape: float) -> float:
    """argmin_x L/2 (x - u)^2 + rho(|x|): a grid of 400001 points, then in the bracket of the
    best one every smooth piece's stationary point by bisection on the derivative (to the
    last bit), and the kinks."""
    au = abs(u)
    top = au + 2.0 * shape * max(a, 1.0) + 1.0
    grid = np.linspace(0.0, top, 400_001)
    vals = 0.5 * L * (grid - au) ** 2 + rho_array(kind, grid, a, shape)
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    ends = sorted({lo, hi, *[k for k in kink_points(kind, a, shape) if lo < k < hi]})
    cand = list(ends)

    def dq(x):
        return L * (x - au) + drho(kind, x, a, shape)

    for left, right in zip(ends[:-1], ends[1:], strict=True):
        x0, x1 = np.nextafter(left, right), np.nextafter(right, left)
        if x0 < x1 and dq(x0) < 0.0 < dq(x1):
            for _ in range(200):
                mid = 0.5 * (x0 + x1)
                if mid in (x0, x1):
                    break
                if dq(mid) < 0.0:
                    x0 = mid
                else:
                    x1 = mid
            cand.append(0.5 * (x0 + x1))
    q = [0.5 * L * (x - au) ** 2 + rho(kind, x, a, shape) for x in cand]
    return float(np.sign(u) * cand[int(np.argmin(q))])


def brute_row(kind: str, z: np.ndarray, L: np.ndarray, a: float, shape: float) -> np.ndarray:
    """argmin_w sum_t L_t/2 (w_t - z_t)^2 + rho(||w||) for rows of length 2: a polar grid
    (1201 radii x 1440 angles), then BFGS with the analytic gradient from its best point;
    the best of that, the grid point and 0."""
    def F(w):
        return 0.5 * float(np.sum(L * (w - z) ** 2)) + rho(kind, float(np.linalg.norm(w)), a,
                                                           shape)

    def dF(w):
        s = float(np.linalg.norm(w))
        return L * (w - z) + (drho(kind, s, a, shape) * w / s if s > 0 else 0.0)

    radii = np.linspace(0.0, float(np.linalg.norm(z)) + 2 * shape * max(a, 1.0) + 1, 1201)
    ang = np.linspace(0.0, 2 * np.pi, 1441)[:-1]
    W1, W2 = radii[:, None] * np.cos(ang), radii[:, None] * np.sin(ang)
    pen = rho_array(kind, radii, a, shape)[:, None]
    Q = 0.5 * L[0] * (W1 - z[0]) ** 2 + 0.5 * L[1] * (W2 - z[1]) ** 2 + pen
    i = np.unravel_index(np.argmin(Q), Q.shape)
    x0 = np.array([W1[i], W2[i]])
    cands = [x0, np.zeros(2)]
    if np.linalg.norm(x0) > 0:
        res = minimize(F, x0, jac=dF, method="BFGS", options={"gtol": 1e-13, "maxiter": 500})
        cands.append(res.x)
    return min(cands, key=F)


# --------------------------------------------------------------------------- 1. the prox
@pytest.mark.parametrize(("kind", "cls", "shape"), SHAPES)
def test_scalar_prox_is_the_brute_force_minimizer(kind, cls, shape):
    """Entrywise prox on 150 random (u, step, alpha), steps on both sides of the convexity
    threshold (MCP: step < gamma; SCAD: step < gamma - 1): the brute-force point to 1e-8."""
    rng = np.random.default_rng(11)
    pen = cls(shape)
    for _ in range(150):
        u = rng.standard_normal() * 3.0
        step = 10 ** rng.uniform(-1.0, 1.2)
        a = rng.uniform(0.1, 2.0)
        got = float(pen.prox(np.array([[u]]), step, a)[0, 0])
        want = brute_scalar(kind, u, 1.0 / step, a, shape)

        def q(x, u=u, step=step, a=a):
            return (x - u) ** 2 / (2 * step) + rho(kind, abs(x), a, shape)

        assert q(got) <= q(want) + 1e-12 * max(1.0, abs(q(want)))
        assert abs(got - want) <= 1e-8 * max(1.0, abs(want)), (u, step, a, got, want)


@pytest.mark.parametrize(("kind", "cls", "shape"), SHAPES)
def test_row_prox_is_the_brute_force_minimizer(kind, cls, shape):
    """Group prox of 12 random rows of length 2 (a common step): the brute-force point."""
    rng = np.random.default_rng(12)
    pen = cls(shape, group=True)
    for _ in range(12):
        z = rng.standard_normal(2) * 2.0
        step = 10 ** rng.uniform(-1.0, 1.0)
        a = rng.uniform(0.2, 1.5)
        got = pen.prox(z[None, :], step, a)[0]
        want = brute_row(kind, z, np.full(2, 1.0 / step), a, shape)
        _assert_row_match(kind, got, want, z, np.full(2, 1.0 / step), a, shape)


def _assert_row_match(kind, got, want, z, L, a, shape):
    def F(w):
        return 0.5 * float(np.sum(L * (w - z) ** 2)) + rho(kind, float(np.linalg.norm(w)), a,
                                                           shape)

    assert F(got) <= F(want) + 1e-12 * max(1.0, abs(F(want))), (got, want)
    if np.linalg.norm(want) > 1e-6:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7 * max(1.0, np.abs(want).max()))
    else:
        assert np.all(got == 0.0), (got, want)


@pytest.mark.parametrize(("kind", "cls", "shape"), SHAPES)
def test_kernel_row_step_with_per_task_curvatures(kind, cls, shape):
    """The kernels' row step with a different curvature per task (lists of designs, the
    logistic model): the exact minimizer of ``sum_t L_t/2 (w_t - z_t)^2 + rho(||w||)`` for
    capped-L2,1 always and for MCP / SCAD where ``min_t L_t > kappa`` (1 / gamma, 1 / (gamma -
    1)), to 1e-7; where the curvature is below kappa in a task the model is not convex, and
    the step is the exact minimizer of the majorizing model of curvature ``max_t L_t``, which
    never increases the row's model."""
    rng = np.random.default_rng(13)
    group = KIND[(kind, True)]
    kappa = {"mcp": 1.0 / shape, "scad": 1.0 / max(shape - 1.0, 1e-300)}.get(kind, np.inf)
    seen = {"exact": 0, "majorized": 0}
    for _ in range(30):
        L = 10 ** rng.uniform(-1.0, 0.8, size=2)
        a = rng.uniform(0.2, 1.5)
        W0 = rng.standard_normal((1, 2))
        g = rng.standard_normal(2) * 2.0
        W, delta = W0.copy(), np.zeros(2)
        _block_update(0, W, g, L, a, shape, group, delta)
        z = W0[0] + g / L
        exact = kind == "capped" or L.min() > kappa
        if exact:
            seen["exact"] += 1
            _assert_row_match(kind, W[0], brute_row(kind, z, L, a, shape), z, L, a, shape)
        else:
            seen["majorized"] += 1
            hi = L.max()
            v = W0[0] + g / hi
            _assert_row_match(kind, W[0], brute_row(kind, v, np.full(2, hi), a, shape), v,
                              np.full(2, hi), a, shape)

            def F(w, L=L, z=z, a=a):
                return 0.5 * np.sum(L * (w - z) ** 2) + rho(kind, np.linalg.norm(w), a, shape)

            assert F(W[0]) <= F(W0[0]) + 1e-12
    assert seen["exact"] >= 5


@pytest.mark.parametrize(("kind", "cls", "shape"), SHAPES)
def test_kernel_entry_step_is_the_brute_force_minimizer(kind, cls, shape):
    """The kernels' entrywise step with its own curvature per task: the scalar minimizer."""
    rng = np.random.default_rng(14)
    group = KIND[(kind, False)]
    T = 5
    for _ in range(20):
        L = 10 ** rng.uniform(-1.5, 1.0, size=T)
        a = rng.uniform(0.1, 2.0)
        W0 = rng.standard_normal((1, T))
        g = rng.standard_normal(T) * 2.0
        W, delta = W0.copy(), np.zeros(T)
        _block_update(0, W, g, L, a, shape, group, delta)
        for t in range(T):
            want = brute_scalar(kind, W0[0, t] + g[t] / L[t], L[t], a, shape)
            assert abs(W[0, t] - want) <= 1e-8 * max(1.0, abs(want))


def test_a_task_without_curvature_stays_at_zero():
    for group in NONCONVEX_KINDS:
        W, delta = np.array([[0.3, -0.2]]), np.zeros(2)
        _block_update(0, W, np.array([1.0, 1.0]), np.array([0.0, 2.0]), 0.1, 3.0, group, delta)
        assert W[0, 0] == 0.0 and W[0, 1] != 0.0


def test_value_and_prox_match_the_definition_on_matrices():
    rng = np.random.default_rng(15)
    W = rng.standard_normal((6, 4)) * 2
    for pen in ALL:
        kind, shape = kind_of(pen), shape_of(pen)
        mags = np.linalg.norm(W, axis=1) if pen.group else np.abs(W).ravel()
        want = sum(rho(kind, s, 0.7, shape) for s in mags)
        assert pen.value(W, 0.7) == pytest.approx(want, rel=1e-13)
        U = pen.prox(W, 0.5, 0.7)  # rows keep their direction, entries their sign
        if pen.group:
            nz = np.linalg.norm(U, axis=1) > 0
            cos = np.einsum("ij,ij->i", U[nz], W[nz]) / (
                np.linalg.norm(U[nz], axis=1) * np.linalg.norm(W[nz], axis=1))
            np.testing.assert_allclose(cos, 1.0, rtol=0, atol=1e-12)
        else:
            assert np.all(U * W >= 0)


# --------------------------------------------------------------------------- 2. the kernels
def _shared_problem(n=30, p=7, T=5, seed=16):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.5
    Y = X[:, :3] @ rng.standard_normal((3, T)) * 2 + 0.3 * rng.standard_normal((n, T))
    W0 = rng.standard_normal((p, T)) * np.array([2.0, 1.0, 0.5, 0.1, 0.0, 0.0, 0.0])[:, None]
    return X, Y, W0


def _reference_epoch(pen, X, Y, W, alpha):
    """One block coordinate descent epoch in NumPy for a shared design (every task's rows
    weigh 1/n), centered: block j's step is the penalty's own prox of
    ``W_j + g / L_j`` with step ``1 / L_j`` (one curvature for all tasks)."""
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    W = W.copy()
    R = (Y - Y.mean(axis=0)) - Xc @ W
    for j in range(X.shape[1]):
        Lj = float(Xc[:, j] @ Xc[:, j]) / n
        g = Xc[:, j] @ R / n
        new = pen.prox((W[j] + g / Lj)[None, :], 1.0 / Lj, alpha)[0]
        R -= np.outer(Xc[:, j], new - W[j])
        W[j] = new
    return W


@pytest.mark.parametrize("pen", ALL, ids=IDS)
def test_every_epoch_kernel_takes_the_same_exact_step(pen):
    """Dense (stacked layout), shared fused, sparse, Gram and per-task Gram epochs give the
    NumPy reference epoch (the penalty's prox block by block) to 1e-12."""
    X, Y, W0 = _shared_problem()
    n, p = X.shape
    T = Y.shape[1]
    alpha = 0.15
    l1, l2, group = pen.bcd_params(alpha)
    ref = _reference_epoch(pen, X, Y, W0, alpha)
    xbar = X.mean(axis=0)
    Xc = X - xbar
    xm = np.repeat(xbar[:, None], T, axis=1)
    L = np.repeat((np.einsum("ij,ij->j", Xc, Xc) / n)[:, None], T, axis=1)
    ct = np.full(T, 1.0 / n)
    Yc = Y - Y.mean(axis=0)
    R0 = Yc - Xc @ W0  # n x T
    feats = np.arange(p, dtype=np.int64)
    g, delta = np.zeros(T), np.zeros(T)
    results = {}
    # dense, stacked layout: the design repeated once per task
    Xs = np.vstack([X] * T)
    indptr = np.arange(T + 1, dtype=np.int64) * n
    c = np.full(n * T, 1.0 / n)
    W = W0.copy()
    R = R0.T.ravel().copy()
    bcd_epoch_dense(Xs, c, ct, True, indptr, np.zeros(T, dtype=np.int64), xm, R, W, L, l1, l2,
                    group, feats, g, delta)
    results["dense"] = W
    # shared fused: one design, the residual n x T column-major
    W = W0.copy()
    R2 = np.asfortranarray(R0.copy())
    bcd_epoch_shared_fused(X, ct, xm, R2, W, L, l1, l2, group, feats, g, delta)
    results["fused"] = W
    # sparse (CSC of the stacked design)
    S = sp.csc_matrix(Xs)
    W = W0.copy()
    R = R0.T.ravel().copy()
    bcd_epoch_sparse(S.data, S.indices, S.indptr, False, np.repeat(np.arange(T), n), c, indptr,
                     xm, R, W, L, l1, l2, group, feats, g, delta, np.zeros(T))
    results["sparse"] = W
    # Gram form
    W = W0.copy()
    Et = np.ascontiguousarray((Xc.T @ R0).T)
    bcd_epoch_gram(np.ascontiguousarray(Xc.T @ Xc), Et, ct, W, L, l1, l2, group, g, delta)
    results["gram"] = W
    # one Gram per task
    W = W0.copy()
    Qs = np.ascontiguousarray(np.repeat((Xc.T @ Xc / n)[None], T, axis=0))
    Et = np.ascontiguousarray((Xc.T @ R0 / n).T)
    bcd_epoch_task_gram(Qs, Et, W, L, l1, l2, group, g, delta)
    results["task_gram"] = W
    for name, Wk in results.items():
        np.testing.assert_allclose(Wk, ref, rtol=0, atol=1e-12, err_msg=name)
    assert np.any(ref != W0)


# --------------------------------------------------------------------------- 3. fits
def lists_problem(seed=0, sizes=(60, 80, 100, 70), p=12, loss="squared"):
    rng = np.random.default_rng(seed)
    T = len(sizes)
    W = np.zeros((p, T))
    W[:3] = rng.choice([-1.0, 1.0], size=(3, T)) * rng.uniform(1.0, 2.0, size=(3, T))
    W[3, :2] = 0.4
    Xs = [rng.standard_normal((n, p)) + rng.uniform(-1, 1, p) for n in sizes]
    if loss == "squared":
        ys = [X @ W[:, t] + 0.5 * rng.standard_normal(X.shape[0]) + 1.0
              for t, X in enumerate(Xs)]
    else:
        ys = [(rng.random(X.shape[0]) < 1 / (1 + np.exp(-0.6 * X @ W[:, t]))).astype(int)
              for t, X in enumerate(Xs)]
    return Xs, ys


def data_gradients(Xs, ys, W, b, loss="squared"):
    """Minus the gradient of the data term (equal task weights, 1/n_t), G (p x T), at (W, b)
    and G0 at W = 0 with the intercepts fitted, and the intercepts' gradients, written from
    the losses' formulas (labels 0/1 for the logistic loss)."""
    G, G0, icpt = [], [], []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        n = X.shape[0]
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            th, th0 = y - f, y - y.mean()
        else:
            s = np.where(y > 0, 1.0, -1.0)
            pbar = np.mean(s > 0)
            th = s / (1 + np.exp(s * f))
            th0 = s / (1 + np.exp(s * np.log(pbar / (1 - pbar))))
        G.append(X.T @ th / n)
        G0.append(X.T @ th0 / n)
        icpt.append(th.sum() / n)
    G, G0 = np.column_stack(G), np.column_stack(G0)
    return G, G0, np.asarray(icpt)


def independent_kkt(pen, Xs, ys, W, b, alpha, loss="squared"):
    """The relative KKT residual from its definition: per block, the distance of minus the
    gradient to the Clarke subdifferential (ball at 0, rho'(s) sign(w) where smooth, the
    segment [0, alpha] sign(w) at capped-L1's kink), the intercepts' gradient, over ||G0||."""
    kind, shape = kind_of(pen), shape_of(pen)
    G, G0, icpt = data_gradients(Xs, ys, W, b, loss)

    def dist(v, w):  # v, w: vectors (a row) or length-1 arrays (an entry)
        s = np.linalg.norm(w)
        if s == 0:
            return max(np.linalg.norm(v) - alpha, 0.0)
        u = w / s
        if kind == "capped" and s == shape:
            c = np.clip(v @ u, 0.0, alpha)
            return np.linalg.norm(v - c * u)
        return np.linalg.norm(v - drho(kind, s, alpha, shape) * u)

    if pen.group:
        d = [dist(G[j], W[j]) for j in range(W.shape[0])]
    else:
        d = [dist(G[j, t:t + 1], W[j, t:t + 1]) for j in range(W.shape[0])
             for t in range(W.shape[1])]
    res = np.sqrt(np.sum(np.square(d)) + np.sum(np.square(icpt)))
    return res / np.linalg.norm(G0), G


def lipschitz(Xs, curvature=1.0):
    return curvature * max(np.linalg.eigvalsh(np.cov(X.T, bias=True)).max() for X in Xs)


def assert_fixed_point(pen, W, G, alpha, L, atol=1e-6):
    P = pen.prox(W + G / L, 1.0 / L, alpha)
    np.testing.assert_allclose(P, W, rtol=0, atol=atol * max(1.0, np.abs(W).max()))


@pytest.mark.parametrize("pen", ALL, ids=IDS)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_fit_is_a_certified_stationary_point(pen, loss):
    Xs, ys = lists_problem(1, loss=loss, sizes=(150, 200, 250, 180) if loss != "squared"
                           else (60, 80, 100, 70))
    est = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    alpha = 0.15 * rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    m = est(pen, alpha=alpha, tol=1e-9).fit(Xs, ys)
    assert not hasattr(m, "dual_gap_")
    assert 0.0 <= m.kkt_residual_ <= 1e-9
    W, b = m.coef_matrix_, m.intercept_
    kkt, G = independent_kkt(pen, Xs, ys, W, b, alpha, loss)
    assert kkt <= 2e-9
    assert_fixed_point(pen, W, G, alpha, lipschitz(Xs, 0.25 if loss == "logistic" else 1.0))
    assert np.count_nonzero(W) > 0
    assert 0 < np.count_nonzero(np.any(W != 0, axis=1)) < W.shape[0] or loss == "logistic"


def test_convex_mcp_equals_the_global_minimum_of_cvxpy():
    """MCP with 1/gamma below every task's smallest curvature: the whole objective is convex,
    so its stationary point is the global minimum; cvxpy solves the convex split
    ``(data - ||W||^2 / (2 gamma)) + sum_g (alpha s + (s - gamma alpha)_+^2 / (2 gamma))``."""
    cp = pytest.importorskip("cvxpy")
    Xs, ys = lists_problem(2, sizes=(200, 220, 240), p=6)
    gamma, T = 4.0, len(Xs)
    assert min(np.linalg.eigvalsh(np.cov(X.T, bias=True)).min() for X in Xs) > 1.0 / gamma
    for group in (False, True):
        pen = rm.MCP(gamma, group=group)
        alpha = 0.3 * rm.alpha_max(Xs, ys, penalty=pen)
        m = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-12).fit(Xs, ys)
        Wv, bv = cp.Variable((6, T)), cp.Variable(T)
        obj = 0
        for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
            n = X.shape[0]
            Z = np.column_stack([X, np.ones(n)])
            M = Z.T @ Z / n - np.diag(np.r_[np.full(6, 1.0 / gamma), 0.0])
            lam, V = np.linalg.eigh(M)
            C = (V * np.sqrt(np.maximum(lam, 0.0))).T
            v = cp.hstack([Wv[:, t], bv[t:t + 1]])
            obj = obj + 0.5 * cp.sum_squares(C @ v) - (Z.T @ y / n) @ v
        s = cp.norm(Wv, 2, axis=1) if group else cp.abs(Wv)
        obj = obj + cp.sum(alpha * s + cp.square(cp.pos(s - gamma * alpha)) / (2 * gamma))
        cp.Problem(cp.Minimize(obj)).solve(solver=cp.CLARABEL)
        np.testing.assert_allclose(m.coef_matrix_, Wv.value, rtol=0, atol=1e-6)
        assert np.count_nonzero(m.coef_) < m.coef_.size  # some zeros: the penalty bites


@pytest.mark.parametrize("pen", ALL, ids=IDS)
def test_orthogonal_design_gives_the_closed_form(pen):
    """X^T X / n = I with centered columns: the objective is ``||W - Z||^2 / 2 + Omega(W)``
    plus a constant, Z = X^T Y_c / n, whose global minimizer is the prox at step 1 (for the
    nonconvex capped-L1 as well)."""
    rng = np.random.default_rng(17)
    n, p, T = 60, 8, 3
    A = rng.standard_normal((n, p))
    Q, _ = np.linalg.qr(A - A.mean(axis=0))
    X = np.sqrt(n) * Q
    Y = X @ (rng.standard_normal((p, T)) * np.array([3, 2, 1, .5, .3, .1, 0, 0])[:, None])
    Y += 0.2 * rng.standard_normal((n, T))
    Z = X.T @ (Y - Y.mean(axis=0)) / n
    alpha = 0.25
    m = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-12).fit(X, Y)
    np.testing.assert_allclose(m.coef_matrix_, pen.prox(Z, 1.0, alpha), rtol=0, atol=1e-10)


def proximal_gradient(pen, Xs, ys, alpha, tol=1e-11, max_iter=200_000):
    """Plain proximal gradient (step 1/L, L the Lipschitz constant), W = 0 and the intercepts
    at their means to start, the intercepts in closed form after each step; stops on the
    KKT residual of :func:`independent_kkt`."""
    p, T = Xs[0].shape[1], len(Xs)
    L = lipschitz(Xs)
    W = np.zeros((p, T))
    Xc = [X - X.mean(axis=0) for X in Xs]
    yc = [y - y.mean() for y in ys]
    for it in range(max_iter):
        G = np.column_stack([Xc[t].T @ (yc[t] - Xc[t] @ W[:, t]) / len(ys[t])
                             for t in range(T)])
        W = pen.prox(W + G / L, 1.0 / L, alpha)
        if it % 50 == 0:
            b = np.array([ys[t].mean() - Xs[t].mean(axis=0) @ W[:, t] for t in range(T)])
            if independent_kkt(pen, Xs, ys, W, b, alpha)[0] <= tol:
                break
    b = np.array([ys[t].mean() - Xs[t].mean(axis=0) @ W[:, t] for t in range(T)])
    return W, b


@pytest.mark.parametrize("pen", ALL, ids=IDS)
def test_agrees_with_plain_proximal_gradient(pen):
    """skglm is not installed (checked below); proximal gradient from the same starting point
    (W = 0) reaches the same stationary point, to 1e-6, with the same objective."""
    try:
        import skglm  # noqa: F401
        pytest.skip("skglm installed: the comparison with it is in bench/bench_nonconvex.py")
    except ImportError:
        pass
    Xs, ys = lists_problem(3, sizes=(120, 150, 130), p=8)
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty=pen)
    m = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-11).fit(Xs, ys)
    W, b = proximal_gradient(pen, Xs, ys, alpha)
    np.testing.assert_allclose(m.coef_matrix_, W, rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.intercept_, b, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- 4. support, bias
def known_truth(seed=0, T=10, p=200, n=100, k=10, rho_=0.5, sigma=1.0):
    """T tasks, n rows each (own Toeplitz-correlated design, corr rho^|i-j|), k features shared
    by every task with large coefficients (|w| in [1.5, 2.5], random signs), noise sigma."""
    rng = np.random.default_rng(seed)
    C = np.linalg.cholesky(toeplitz(rho_ ** np.arange(p)))
    W = np.zeros((p, T))
    S = rng.choice(p, size=k, replace=False)
    W[S] = rng.choice([-1, 1], size=(k, T)) * rng.uniform(1.5, 2.5, size=(k, T))
    Xs = [rng.standard_normal((n, p)) @ C.T for _ in range(T)]
    ys = [X @ W[:, t] + sigma * rng.standard_normal(n) for t, X in enumerate(Xs)]
    return Xs, ys, W


def support_and_bias(W_hat, W):
    """(F1 of the support of the entries, false positives, relative bias of the true
    coefficients: mean of (w_hat - w) sign(w) over mean |w|; negative = shrunk)."""
    est, tru = W_hat != 0, W != 0
    tp, fp, fn = np.sum(est & tru), np.sum(est & ~tru), np.sum(~est & tru)
    bias = np.mean((W_hat[tru] - W[tru]) * np.sign(W[tru])) / np.mean(np.abs(W[tru]))
    return 2 * tp / (2 * tp + fp + fn), int(fp), float(bias)


@pytest.fixture(scope="module")
def support_table():
    Xs, ys, W = known_truth()
    table = {}
    pens = {"L1": rm.L1(), "L21": rm.L21(), "MCP": rm.MCP(), "SCAD": rm.SCAD(),
            "MCP(group)": rm.MCP(group=True), "SCAD(group)": rm.SCAD(group=True),
            "CappedL1(1)": rm.CappedL1(1.0), "CappedL1(1,group)": rm.CappedL1(1.0, group=True)}
    for name, pen in pens.items():
        cv = rm.MultiTaskRegressorCV(pen, alphas=15, eps=1e-2, cv=5, tol=1e-5).fit(Xs, ys)
        assert cv.best_estimator_.kkt_residual_ <= 1e-5 if pen.nonconvex else True
        table[name] = (*support_and_bias(cv.best_estimator_.coef_matrix_, W), cv.alpha_)
    return table


def test_support_recovery_and_bias_beat_l1_and_l21(support_table):
    """At their CV-chosen alphas (5-fold, 15 alphas from alpha_max to alpha_max / 100), on
    T = 10 tasks x p = 200 Toeplitz (rho = 0.5) features, n_t = 100, 10 shared features with
    |w| in [1.5, 2.5]: every nonconvex penalty's support F1 is above 0.9 and 0.4 above that
    of L1 / L2,1 (which keep hundreds of false positives), with at most 20 false positives,
    and its relative bias on the true coefficients is within 1% of 0, where L1 / L2,1 shrink
    them by more than 4%."""
    t = support_table
    for name in ("L1", "L21"):
        f1, fp, bias, _ = t[name]
        assert f1 < 0.5 and fp > 200 and bias < -0.04, (name, t[name])
    for name in ("MCP", "SCAD", "CappedL1(1)"):
        f1, fp, bias, _ = t[name]
        assert f1 > 0.9 and f1 > t["L1"][0] + 0.4 and fp <= 20 and abs(bias) < 0.01, (name,
                                                                                       t[name])
    for name in ("MCP(group)", "SCAD(group)", "CappedL1(1,group)"):
        f1, fp, bias, _ = t[name]
        assert f1 > 0.9 and f1 > t["L21"][0] + 0.4 and fp <= 20 and abs(bias) < 0.01, (
            name, t[name])


# --------------------------------------------------------------------------- 5. the rest
@pytest.mark.parametrize("pen", [rm.MCP(2.0, group=True), rm.SCAD(), rm.CappedL1(0.8)],
                         ids=repr)
def test_path_is_warm_started_and_certified(pen):
    Xs, ys = lists_problem(4)
    path = rm.regularization_path(Xs, ys, penalty=pen, alphas=12, tol=1e-8)
    assert path.certificate_kind == "kkt_residual"
    assert path.converged.all() and np.all(path.certificates <= 1e-8)
    assert path.n_active[0] == 0 and path.n_active[-1] > 3
    amax = rm.alpha_max(Xs, ys, penalty=pen)
    assert path.alphas[0] == pytest.approx(amax)
    # every point is a stationary point of its own alpha
    for k in (3, 8, 11):
        W, b = path.coefs[k].T, path.intercepts[k]
        assert independent_kkt(pen, Xs, ys, W, b, path.alphas[k])[0] <= 2e-8


def test_cv_searches_gamma_and_certifies():
    Xs, ys = lists_problem(5)
    cv = rm.MultiTaskRegressorCV(rm.MCP(group=True), alphas=8, cv=3, tol=1e-8,
                                 penalty_grid={"gamma": [1.5, 3.0, 8.0]}).fit(Xs, ys)
    assert cv.best_params_["gamma"] in (1.5, 3.0, 8.0)
    assert set(cv.cv_results_["param_gamma"]) == {1.5, 3.0, 8.0}
    best = cv.best_estimator_
    assert best.penalty.gamma == cv.best_params_["gamma"] and best.kkt_residual_ <= 1e-8
    clf = rm.MultiTaskClassifierCV(rm.SCAD(), alphas=6, cv=3, tol=1e-8).fit(
        *lists_problem(6, sizes=(150, 200, 180), loss="logistic"))
    assert clf.best_estimator_.kkt_residual_ <= 1e-8


@pytest.mark.parametrize("pen", ALL, ids=IDS)
def test_save_load_round_trip(pen, tmp_path):
    Xs, ys = lists_problem(7)
    m = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-10).fit(Xs, ys)
    m.save(tmp_path / "m")
    back = rm.load(tmp_path / "m")
    assert back.penalty == pen and type(back.penalty) is type(pen)
    assert back.kkt_residual_ == m.kkt_residual_
    np.testing.assert_array_equal(back.coef_, m.coef_)
    for a, b in zip(back.predict(Xs), m.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pen", ALL, ids=IDS)
def test_shared_design_lists_dense_and_sparse_give_one_solution(pen):
    rng = np.random.default_rng(8)
    n, p, T = 80, 10, 3
    X = rng.standard_normal((n, p)) * (rng.random((n, p)) < 0.6)
    Y = X[:, :3] @ rng.choice([-2.0, 2.0], size=(3, T)) + 0.3 * rng.standard_normal((n, T))
    alpha = 0.1
    fits = [rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-12).fit(*args) for args in (
        (X, Y), ([X] * T, list(Y.T)), (sp.csr_matrix(X), Y),
        ([sp.csc_matrix(X)] * T, list(Y.T)))]
    for m in fits[1:]:
        np.testing.assert_allclose(m.coef_, fits[0].coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(m.intercept_, fits[0].intercept_, rtol=0, atol=1e-8)
    # options change the path, not the point
    plain = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-12, solver_options=dict(
        working_set=False, anderson=0, gram=False)).fit(X, Y)
    np.testing.assert_allclose(plain.coef_, fits[0].coef_, rtol=0, atol=1e-8)


@pytest.mark.parametrize("pen", [rm.SCAD(group=True), rm.CappedL1(0.8)], ids=repr)
def test_integer_weights_equal_repeated_rows(pen):
    """Sample weights 2 on some rows are the same objective as those rows twice: the same
    stationary point (the weighted epochs take the data term's weights, not a shortcut)."""
    Xs, ys = lists_problem(14)
    rng = np.random.default_rng(14)
    sw = [np.where(rng.random(len(y)) < 0.3, 2.0, 1.0) for y in ys]
    rep = [np.repeat(np.arange(len(y)), w.astype(int)) for y, w in zip(ys, sw, strict=True)]
    a = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-12).fit(Xs, ys, sample_weight=sw)
    b = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-12).fit(
        [X[r] for X, r in zip(Xs, rep, strict=True)], [y[r] for y, r in zip(ys, rep, strict=True)])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-9)


def test_majorized_newton_step_when_no_backtracking_step_descends(monkeypatch):
    """Every Armijo search refused: each proximal Newton step becomes the step of the
    majorizing model (curvature c / 4), still a descent to a certified stationary point."""
    import regmtl.solvers.methods.stationary as st

    Xs, ys = lists_problem(9, sizes=(150, 200, 180), loss="logistic")
    pen = rm.MCP(group=True)
    alpha = 0.1 * rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")
    want = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-9).fit(Xs, ys)
    monkeypatch.setattr(st, "armijo", lambda *a, **k: None)
    got = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-9, max_iter=5000).fit(Xs, ys)
    assert got.kkt_residual_ <= 1e-9
    np.testing.assert_allclose(got.coef_, want.coef_, rtol=0, atol=1e-6)


def test_alpha_max_and_degrees_of_freedom():
    Xs, ys = lists_problem(10)
    assert rm.alpha_max(Xs, ys, penalty=rm.MCP()) == rm.alpha_max(Xs, ys, penalty="l1")
    assert rm.alpha_max(Xs, ys, penalty=rm.SCAD(group=True)) == rm.alpha_max(Xs, ys,
                                                                             penalty="l21")
    for pen in ALL:
        a = rm.alpha_max(Xs, ys, penalty=pen)
        assert np.all(rm.MultiTaskRegressor(pen, alpha=a).fit(Xs, ys).coef_ == 0)
        m = rm.MultiTaskRegressor(pen, alpha=0.2 * a, tol=1e-8).fit(Xs, ys)
        df = degrees_of_freedom(rm.as_task_data(Xs, ys), rm.Quadratic(), pen, 0.2 * a,
                                m.coef_matrix_, m.intercept_)
        assert df == np.count_nonzero(m.coef_) + len(Xs)


def test_screening_is_refused_and_the_certificate_is_named():
    Xs, ys = lists_problem(11)
    with pytest.raises(ValueError, match="no duality gap"):
        rm.MultiTaskRegressor(rm.MCP(), alpha=0.1, solver_options=dict(screening=True)).fit(
            Xs, ys)
    m = rm.MultiTaskRegressor(rm.MCP(), alpha=0.1, solver_options=dict(screening=False)).fit(
        Xs, ys)
    assert hasattr(m, "kkt_residual_") and not hasattr(m, "dual_gap_")
    res = solve(rm.as_task_data(Xs, ys), rm.Quadratic(), rm.CappedL1(group=True), 0.1)
    assert res.certificate.kind == "kkt_residual" and res.certificate.dual is None


@pytest.mark.parametrize(("make", "name"), [
    (lambda v: rm.MCP(gamma=v), "gamma"), (lambda v: rm.SCAD(gamma=v), "gamma"),
    (lambda v: rm.CappedL1(cap=v), "cap")])
def test_bad_parameters_are_refused_naming_them(make, name):
    Xs, ys = lists_problem(12)
    low = {"gamma": 1.0, "cap": 0.0}[name]
    bad = [low, low - 0.5, np.nan, np.inf, "3", None]
    if make(3.0).__class__ is rm.SCAD:
        bad += [2.0, 1.5]
    for v in bad:
        pen = make(v)
        with pytest.raises(ValueError, match=name):
            rm.MultiTaskRegressor(pen, alpha=0.1).fit(Xs, ys)
        with pytest.raises(ValueError, match=name):
            pen.prox(np.ones((2, 2)), 1.0, 0.1)
        with pytest.raises(ValueError, match=name):
            pen.value(np.ones((2, 2)), 0.1)
    for v in ("yes", 1, None):
        with pytest.raises(ValueError, match="group"):
            rm.MultiTaskRegressor(rm.MCP(group=v), alpha=0.1).fit(Xs, ys)


def test_names_and_routing():
    from regmtl.penalties import PENALTY_NAMES, make_penalty
    from regmtl.solvers.policy import choose_solver

    assert make_penalty("mcp") == rm.MCP(3.0) and make_penalty("scad") == rm.SCAD(3.7)
    assert make_penalty("capped_l1") == rm.CappedL1(1.0)
    assert {"mcp", "scad", "capped_l1"} <= set(PENALTY_NAMES)
    data = rm.as_task_data(*lists_problem(13))
    for pen in ALL:
        assert choose_solver(data, rm.Quadratic(), pen, 0.1) == "bcd"
        assert pen.nonconvex and not pen.has_dual and pen.ridge_strength(0.1) is None
    assert repr(rm.MCP(2.0, group=True)) == "MCP(gamma=2.0, group=True)"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        rm.MultiTaskRegressor("scad", alpha=0.1).fit(*lists_problem(13))
