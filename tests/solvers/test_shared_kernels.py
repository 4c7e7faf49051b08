"""The fused shared-design BCD epoch and the shared gradient kernel agree with the reference
kernels (the unfused epoch below, gradient_dense) up to rounding."""

import numpy as np
import pytest
from numba import njit

from regmtl.solvers.parts._kernels import (
    FAST,
    _block_update,
    bcd_epoch_shared_fused,
    gradient_dense,
    gradient_shared,
)


@njit(fastmath=FAST)
def bcd_epoch_shared(X, ct, xm, R2, W, L, l1, l2, group, features, g, delta):
    """:func:`bcd_epoch_dense` for a shared design whose rows weigh ``ct[t]`` in task t.

    The residual is viewed as ``R2`` (n x T, column-major); tasks are taken four at a time so
    that each entry of a column of X, loaded once, serves four tasks.
    """
    n = X.shape[0]
    T = W.shape[1]
    max_change = 0.0
    for j in features:
        xs = X[:, j]
        t = 0
        while t + 4 <= T:
            m0, m1, m2, m3 = xm[j, t], xm[j, t + 1], xm[j, t + 2], xm[j, t + 3]
            r0, r1, r2, r3 = R2[:, t], R2[:, t + 1], R2[:, t + 2], R2[:, t + 3]
            a0 = a1 = a2 = a3 = 0.0
            for k in range(n):
                x = xs[k]
                a0 += (x - m0) * r0[k]
                a1 += (x - m1) * r1[k]
                a2 += (x - m2) * r2[k]
                a3 += (x - m3) * r3[k]
            g[t] = a0 * ct[t]
            g[t + 1] = a1 * ct[t + 1]
            g[t + 2] = a2 * ct[t + 2]
            g[t + 3] = a3 * ct[t + 3]
            t += 4
        while t < T:
            m0 = xm[j, t]
            r0 = R2[:, t]
            a0 = 0.0
            for k in range(n):
                a0 += (xs[k] - m0) * r0[k]
            g[t] = a0 * ct[t]
            t += 1
        ch = _block_update(j, W, g, L[j], l1, l2, group, delta)
        if ch > max_change:
            max_change = ch
        if ch > 0.0:
            t = 0
            while t + 4 <= T:
                d0, d1, d2, d3 = delta[t], delta[t + 1], delta[t + 2], delta[t + 3]
                m0, m1, m2, m3 = xm[j, t], xm[j, t + 1], xm[j, t + 2], xm[j, t + 3]
                r0, r1, r2, r3 = R2[:, t], R2[:, t + 1], R2[:, t + 2], R2[:, t + 3]
                for k in range(n):
                    x = xs[k]
                    r0[k] -= (x - m0) * d0
                    r1[k] -= (x - m1) * d1
                    r2[k] -= (x - m2) * d2
                    r3[k] -= (x - m3) * d3
                t += 4
            while t < T:
                d0 = delta[t]
                m0 = xm[j, t]
                r0 = R2[:, t]
                for k in range(n):
                    r0[k] -= (xs[k] - m0) * d0
                t += 1
    return max_change


def _problem(n, p, T, seed=0):
    rng = np.random.default_rng(seed)
    X = np.asfortranarray(rng.standard_normal((n, p)))
    xm = np.tile(X.mean(axis=0)[:, None], (1, T))
    L = np.tile(((X - X.mean(axis=0)) ** 2).sum(axis=0)[:, None], (1, T))
    Y = rng.standard_normal((n, T))
    return X, xm, L, np.asfortranarray(Y - Y.mean(axis=0))


@pytest.mark.parametrize("T", [1, 3, 4, 7, 16])
@pytest.mark.parametrize("group", [0, 1])
def test_fused_epoch_matches_the_reference(T, group):
    n, p = 37, 25
    X, xm, L, R0 = _problem(n, p, T)
    ct = np.linspace(0.5, 1.5, T)
    feats = np.array([0, 3, 4, 9, 10, 17, 24], dtype=np.int64)
    out = []
    for kernel in (bcd_epoch_shared, bcd_epoch_shared_fused):
        W, R = np.zeros((p, T)), R0.copy(order="F")
        g, d = np.zeros(T), np.zeros(T)
        changes = [kernel(X, ct, xm, R, W, L * ct, 0.3, 0.0, group, feats, g, d)
                   for _ in range(4)]
        out.append((W, R, changes))
    (W1, R1, c1), (W2, R2, c2) = out
    assert np.any(W1 != 0.0)
    np.testing.assert_allclose(W2, W1, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(R2, R1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c2, c1, rtol=1e-10, atol=1e-13)


def test_fused_epoch_on_no_feature_changes_nothing():
    X, xm, L, R = _problem(10, 5, 4)
    W, R2 = np.zeros((5, 4)), R.copy(order="F")
    assert bcd_epoch_shared_fused(X, np.ones(4), xm, R2, W, L, 0.1, 0.0, 1,
                                  np.zeros(0, dtype=np.int64), np.zeros(4), np.zeros(4)) == 0.0
    assert not W.any() and np.array_equal(R2, R)


@pytest.mark.parametrize("T", [1, 5, 8])
def test_gradient_shared_matches_gradient_dense(T):
    n, p = 23, 12
    X, xm, _, U2 = _problem(n, p, T, seed=1)
    feats = np.array([1, 2, 7, 11], dtype=np.int64)
    u = U2.T.ravel()  # flat, grouped by task
    indptr = np.arange(T + 1, dtype=np.int64) * n
    G1, G2 = np.zeros((4, T)), np.zeros((4, T))
    gradient_dense(X, indptr, indptr[:-1].copy(), xm, u, feats, G1)
    gradient_shared(X, xm, u.reshape(T, n).T, feats, G2)
    np.testing.assert_allclose(G2, G1, rtol=1e-12, atol=1e-12)
