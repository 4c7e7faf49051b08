"""The task-grouped linear maps: one compiled pass for many small tasks against the per-task
products, and the adjoint identity <X W, u> = <W, X' u>."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl


@pytest.mark.parametrize("sizes", [[3, 1, 7, 2, 5] * 40, [20] * 500, [1] * 300])
def test_small_task_maps_equal_per_task_products(sizes):
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 6)) for n in sizes]
    ys = [rng.standard_normal(n) for n in sizes]
    data = regmtl.as_task_data(Xs, ys)
    assert data._small_tasks
    W, b = rng.standard_normal((6, len(sizes))), rng.standard_normal(len(sizes))
    u = rng.standard_normal(data.n_obs)
    f = data.linear(W, b)
    ref = np.concatenate([X @ W[:, t] + b[t] for t, X in enumerate(Xs)])
    np.testing.assert_allclose(f, ref, rtol=1e-13, atol=1e-13)
    G = data.adjoint(u)
    starts = np.cumsum([0, *sizes])
    refG = np.column_stack([X.T @ u[a:a + len(X)] for X, a in zip(Xs, starts, strict=False)])
    np.testing.assert_allclose(G, refG, rtol=1e-12, atol=1e-12)
    assert np.isclose(np.dot(data.linear(W), u), np.vdot(W, G), rtol=1e-12)


def test_large_tasks_keep_blas_products():
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((200, 4)) for _ in range(3)]
    data = regmtl.as_task_data(Xs, [rng.standard_normal(200) for _ in range(3)])
    assert not data._small_tasks
    W = rng.standard_normal((4, 3))
    np.testing.assert_allclose(data.linear(W), np.concatenate([X @ W[:, t]
                                                               for t, X in enumerate(Xs)]),
                               rtol=1e-13)


def test_long_form_many_tasks_fit_equals_lists_form():
    """2,000 tasks of 5 rows: the long form (small-task kernels) and the lists form give the
    same certified L2,1 fit."""
    rng = np.random.default_rng(2)
    T, n, p = 2000, 5, 4
    X = rng.standard_normal((T * n, p))
    task = np.repeat(np.arange(T), n)
    y = X @ np.array([1.0, -1.0, 0.0, 0.0]) + rng.standard_normal(T * n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # both certified at tol
        m1 = regmtl.MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-6).fit(X, y, task=task)
        m2 = regmtl.MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-6).fit(
            [X[task == t] for t in range(T)], [y[task == t] for t in range(T)])
    np.testing.assert_allclose(m1.coef_, m2.coef_, rtol=1e-5, atol=1e-6)
