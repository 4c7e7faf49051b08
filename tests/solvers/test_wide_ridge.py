"""The exact ridge of wide tasks (:mod:`regmtl.solvers.parts.wide_ridge`).

A Mulan-shaped problem (the airline sets atp1d/atp7d: fewer rows than features, columns repeated
and singular values over many orders of magnitude): coordinate descent needed up to 1000 epochs
per ridge fit there, and a comparison's ridge models ran their CV fits to max_iter. The ridge is
one linear system per task; in row-space form it is solved exactly, certified at the first
step, and agrees with the closed form.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers.policy import choose_solver


def _airline_like(seed=0, n=150, p=300, T=6):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((p, n)))
    X = (U * np.logspace(2, -3, n)) @ V.T
    X = np.hstack([X[:, :200], X[:, :100]])  # repeated columns
    X = (X - X.mean(0)) / X.std(0)
    Y = X @ rng.standard_normal((p, T)) + 0.1 * rng.standard_normal((n, T))
    return X, Y


@pytest.mark.parametrize("alpha", [1e-1, 1e-3, 1e-5])
def test_wide_ridge_certifies_within_a_few_iterations(alpha):
    X, Y = _airline_like()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("l2", alpha=alpha, max_iter=200).fit(X, Y)
    data = rm.as_task_data(X, Y)
    assert choose_solver(data, rm.Quadratic(), rm.L2(), alpha) == "direct"
    assert model.n_iter_ == 1
    f0 = 0.5 * np.sum((Y - Y.mean(0)) ** 2) / len(Y)
    assert model.dual_gap_ <= 1e-4 * f0 * Y.shape[1]
    # the closed form per task: (Xc'Xc / n + alpha I) w = Xc'yc / n (rows weigh 1/n)
    Xc = X - X.mean(0)
    n = len(X)
    W = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(X.shape[1]), Xc.T @ (Y - Y.mean(0)) / n)
    scale = np.abs(W).max()
    assert np.allclose(model.coef_.T, W, atol=1e-6 * scale)
    assert np.allclose(model.predict(X), X @ W + (Y.mean(0) - X.mean(0) @ W), atol=1e-6
                       * np.abs(Y).max())


def test_wide_ridge_on_lists_of_tasks_and_without_intercept():
    """Tasks of different sizes, weighted rows and no intercept: the same exact solve."""
    X, Y = _airline_like(seed=1, n=120)
    Xs = [X[:40], X[40:120]]
    ys = [Y[:40, 0], Y[40:120, 1]]
    sw = [np.full(40, 2.0), np.ones(80)]
    alpha = 1e-3
    model = rm.MultiTaskRegressor("l2", alpha=alpha, fit_intercept=False, max_iter=50).fit(
        Xs, ys, sample_weight=sw)
    assert model.n_iter_ == 1
    for t, (Xt, yt, wt) in enumerate(zip(Xs, ys, sw, strict=True)):
        c = wt / wt.sum()
        w = np.linalg.solve(Xt.T @ (c[:, None] * Xt) + alpha * np.eye(Xt.shape[1]),
                            Xt.T @ (c * yt))
        assert np.allclose(model.coef_[t], w, atol=1e-6 * np.abs(w).max())
