"""The NumPy twins of the coordinate-descent epochs against their compiled kernels, epoch by
epoch on the same buffers: the coefficients, the residual (or the Gram-form sums) and the
largest change agree to 1e-10 relative after several epochs (the twins reorder sums, the
kernels run with fastmath: rounding), for every convex block kind, in the Gram form the
dense twin takes for few features and the row form it takes for many, on per-task rows and
on one design shared by the tasks, with and without row weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regmtl.penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS
from regmtl.solvers.parts import _kernels as K
from regmtl.solvers.parts import small

RTOL = 1e-10
KINDS = {"entrywise": ENTRYWISE, "rows": ROWS, "positive_entrywise": POSITIVE_ENTRYWISE,
         "positive_rows": POSITIVE_ROWS}


def _epoch_problem(seed, n_t, p, T, shared, uniform, zero_L=False):
    """Buffers of :func:`bcd_epoch_dense`: a design, task rows, centers, weights, L, a start W
    and its residual."""
    rng = np.random.default_rng(seed)
    if shared:
        X = rng.standard_normal((n_t, p))
        counts = np.full(T, n_t)
    else:
        counts = rng.integers(max(2, n_t // 2), n_t + 1, T)
        X = rng.standard_normal((int(counts.sum()), p))
    X[:, 1] = X[:, 0] + 0.1 * rng.standard_normal(len(X))  # correlated columns
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    offset = indptr[:-1].copy() if shared else np.zeros(T, dtype=np.int64)
    N = int(indptr[-1])
    task_of = np.repeat(np.arange(T), counts)
    rows = np.arange(N) - offset[task_of]
    ct = rng.uniform(0.5, 2.0, T)
    c = ct[task_of] if uniform else rng.uniform(0.1, 1.0, N)
    xm = np.zeros((p, T))
    L = np.zeros((p, T))
    for t in range(T):
        a, b = indptr[t], indptr[t + 1]
        Xt, ctw = X[rows[a:b]], c[a:b]
        xm[:, t] = ctw @ Xt / ctw.sum()
        L[:, t] = ctw @ (Xt - xm[:, t]) ** 2
    if zero_L:  # features a task does not see (no curvature there), rows of equal L
        L[2, 0] = 0.0
        L[3] = L[3, 0]
    W = np.zeros((p, T))
    W[:3] = rng.standard_normal((3, T))
    y = rng.standard_normal(N) + (X[rows] * W[:, task_of].T).sum(axis=1)
    R = y - ((X[rows] - xm[:, task_of].T) * W[:, task_of].T).sum(axis=1)
    return dict(X=X, c=c, ct=ct, uniform=uniform, indptr=indptr, offset=offset, xm=xm, R=R,
                W=W, L=L)


def _run_epochs(fn, prob, l1, l2, group, features, n_epochs):
    bufs = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in prob.items()}
    T = bufs["W"].shape[1]
    g, delta = np.zeros(T), np.zeros(T)
    changes = []
    for _ in range(n_epochs):
        changes.append(fn(bufs["X"], bufs["c"], bufs["ct"], bufs["uniform"], bufs["indptr"],
                          bufs["offset"], bufs["xm"], bufs["R"], bufs["W"], bufs["L"], l1, l2,
                          group, features, g, delta))
    return bufs["W"], bufs["R"], np.array(changes)


def _close(a, b):
    scale = max(np.abs(b).max(), 1e-300)
    np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * scale)


SHAPES = {  # (n_t, p, T): the Gram form (k^2 T within GRAM_ENTRIES) and the row form
    "gram": (40, 12, 4),
    "rows": (30, 80, 3),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", SHAPES)
@pytest.mark.parametrize("shared", [False, True], ids=["per-task", "shared"])
@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "weighted"])
def test_dense_epoch_twin_matches_the_kernel(kind, form, shared, uniform):
    n_t, p, T = SHAPES[form]
    prob = _epoch_problem(p + T + shared, n_t, p, T, shared, uniform, zero_L=True)
    gram = p * p * T <= small.GRAM_ENTRIES
    assert gram == (form == "gram")
    G0 = np.abs(np.einsum("jt,jt->jt", prob["L"], prob["W"])).max()
    for l1, l2 in ((0.3 * G0, 0.0), (0.05 * G0, 0.0), (0.02 * G0, 0.3), (0.0, 0.5)):
        features = np.arange(p, dtype=np.int64)[::-1].copy()  # not in order: any order holds
        Wt, Rt, ct = _run_epochs(small.bcd_epoch_dense, prob, l1, l2, KINDS[kind], features, 6)
        Wk, Rk, ck = _run_epochs(K.bcd_epoch_dense.dispatcher, prob, l1, l2, KINDS[kind],
                                 features, 6)
        _close(Wt, Wk)
        _close(Rt, Rk)
        np.testing.assert_allclose(ct, ck, rtol=RTOL, atol=RTOL * ck.max())


def test_dense_epoch_twin_on_a_working_set():
    """An epoch over some features only leaves the others (and their rows of W) alone."""
    prob = _epoch_problem(7, 50, 20, 5, False, False)
    features = np.array([0, 3, 4, 11], dtype=np.int64)
    Wt, Rt, _ = _run_epochs(small.bcd_epoch_dense, prob, 0.5, 0.0, ROWS, features, 4)
    Wk, Rk, _ = _run_epochs(K.bcd_epoch_dense.dispatcher, prob, 0.5, 0.0, ROWS, features, 4)
    _close(Wt, Wk)
    _close(Rt, Rk)
    others = np.setdiff1d(np.arange(20), features)
    np.testing.assert_array_equal(Wt[others], prob["W"][others])


@pytest.mark.parametrize("kind", KINDS)
def test_gram_epoch_twin_matches_the_kernel(kind):
    rng = np.random.default_rng(3)
    n, k, T = 60, 15, 4
    Xc = rng.standard_normal((n, k))
    Xc -= Xc.mean(axis=0)
    Q = Xc.T @ Xc
    Rm = rng.standard_normal((n, T))
    ct = rng.uniform(0.5, 2.0, T)
    L = np.outer(np.diag(Q), ct)
    L[1, 2] = 0.0
    out = []
    for fn in (small.bcd_epoch_gram, K.bcd_epoch_gram.dispatcher):
        W, Et = np.zeros((k, T)), np.ascontiguousarray((Xc.T @ Rm).T)
        g, delta = np.zeros(T), np.zeros(T)
        changes = [fn(Q, Et, ct, W, L, 2.0, 0.1, KINDS[kind], g, delta) for _ in range(5)]
        out.append((W, Et, np.array(changes)))
    (Wt, Et_t, ct_), (Wk, Et_k, ck) = out
    _close(Wt, Wk)
    _close(Et_t, Et_k)
    np.testing.assert_allclose(ct_, ck, rtol=RTOL)


def test_group_radius_matches_the_kernel():
    """The twin's root of the weighted group prox (Newton from a mean of the L_t, stopped at
    a step of 1e-8) is the kernel's (from 0, stopped at 1e-15) to 1e-13, over spreads of the
    L_t from equal to 1e6."""
    rng = np.random.default_rng(5)
    radius = K._weighted_group_radius.py_func
    worst = 0.0
    for spread in (1.0, 1.5, 10.0, 1e3, 1e6):
        for _ in range(200):
            T = int(rng.integers(2, 9))
            L = rng.uniform(1.0, spread, T)
            a = rng.standard_normal(T) * rng.uniform(0.1, 10.0)
            a[rng.random(T) < 0.2] = 0.0
            l1, l2 = float(rng.uniform(0.0, 0.9) * np.linalg.norm(a)), float(rng.uniform(0, 1))
            if l1 == 0.0 or not np.any(a):
                continue
            steps = small._BlockSteps(L[None, :], l1, l2, ROWS)
            d = steps.delta(0, [0.0] * T, (a).tolist())  # w = 0: a = g
            s_k = radius(a, L, l1, l2)
            want = a * s_k / ((L + l2) * s_k + l1)
            worst = max(worst, float(np.abs(np.array(d) - want).max() / np.abs(want).max()))
    assert worst < 1e-13, worst
    assert math.isfinite(worst)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_intercept_twin_matches_the_kernel(loss):
    """All tasks side by side in the twin, one after the other in the kernel: the same
    intercepts and scores to 1e-12 (the logistic Newton steps from far starts, bracketed,
    and from the optimum)."""
    rng = np.random.default_rng(11)
    code = K.QUADRATIC if loss == "squared" else K.LOGISTIC
    counts = rng.integers(1, 40, 9)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    N = int(indptr[-1])
    c = rng.uniform(0.1, 2.0, N)
    y = rng.standard_normal(N) if loss == "squared" else np.where(rng.random(N) < 0.3, 1.0, -1.0)
    y[: counts[0]] = 1.0  # a task of one class: its intercept runs off (bracket, doubling)
    for shift in (0.0, 3.0, -40.0):
        S0 = rng.standard_normal(N) + shift
        out = []
        for fn in (small.update_intercepts, K.update_intercepts.dispatcher):
            S, b = S0.copy(), np.full(9, 0.5)
            for _ in range(2):  # the second call starts from the optimum
                fn(y, c, indptr, S, b, code, 30, 1e-10)
            out.append((S, b))
        (St, bt), (Sk, bk) = out
        np.testing.assert_allclose(bt, bk, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(St, Sk, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(400, 300), (5, 3), (1, 7), (40_000, 3)])
def test_column_moments_twin_matches_the_kernel(shape):
    """The twin's blocks of columns (several blocks, one block, a single row, blocks of one
    column: rows beyond ``small.CHUNK``) give the kernel's means and centered sums of squares,
    an offset constant column's sum exactly 0 in both."""
    rng = np.random.default_rng(shape[0])
    X = np.asfortranarray(3.0 * rng.standard_normal(shape) + 5.0)
    X[:, 0] = 2.7
    (mt, st), (mk, sk) = [(np.zeros(shape[1]), np.zeros(shape[1])) for _ in range(2)]
    small.column_moments(X, mt, st)
    K.column_moments.dispatcher(X, mk, sk)
    np.testing.assert_allclose(mt, mk, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(st, sk, rtol=RTOL, atol=1e-12 * max(float(sk.max()), 1.0))
    assert st[0] == sk[0] == 0.0
