"""regularization_path: grid, warm starts, certificates, agreement with cold fits and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_lists, make_shared
from sklearn.linear_model import lasso_path

import regmtl as rm
from regmtl.selection import alpha_grid


def test_alpha_grid_is_geometric_from_alpha_max():
    grid = alpha_grid(2.0, 5, 1e-2)
    np.testing.assert_allclose(grid, 2.0 * np.array([1, 10**-0.5, 1e-1, 10**-1.5, 1e-2]),
                               rtol=1e-12)
    for bad in (dict(alpha_max=0.0), dict(alpha_max=np.inf), dict(n_alphas=0),
                dict(eps=1.0), dict(eps=0.0)):
        kw = dict(alpha_max=1.0, n_alphas=3, eps=1e-3) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            alpha_grid(**kw)


@pytest.mark.parametrize("form", ["shared_tall", "shared_wide", "lists", "logistic"])
def test_path_matches_cold_fits_and_is_certified(form):
    """Every point of the warm-started path is the cold fit at that alpha (both certified)."""
    loss = "logistic" if form == "logistic" else "squared"
    if form == "shared_tall":
        X, Y = make_shared(n=120, p=10, T=3, seed=1)  # n >= 2p: full Gram form
    elif form == "shared_wide":
        X, Y = make_shared(n=30, p=60, T=4, seed=2)
    else:
        X, Y = make_lists(loss=loss, seed=3)
    tol = 1e-10
    path = rm.regularization_path(X, Y, penalty="l21", loss=loss, alphas=8, eps=1e-2,
                                  tol=tol, max_iter=100_000)
    amax = rm.alpha_max(X, Y, penalty="l21", loss=loss)
    np.testing.assert_allclose(path.alphas[[0, -1]], [amax, amax / 100], rtol=1e-12)
    assert path.certificate_kind == "duality_gap"
    assert path.converged.all() and (path.certificates <= tol).all()
    assert path.n_active[0] == 0 and path.n_active[-1] > 0
    assert np.all(np.diff(path.n_active) >= -1)  # supports grow along the path (up to one)
    Est = rm.MultiTaskClassifier if loss == "logistic" else rm.MultiTaskRegressor
    cold_iters = 0
    for k, alpha in enumerate(path.alphas):
        cold = Est(penalty="l21", alpha=alpha, tol=tol, max_iter=100_000).fit(X, Y)
        cold_iters += cold.n_iter_
        scale = max(np.abs(cold.coef_).max(), 1.0)
        np.testing.assert_allclose(path.coefs[k], cold.coef_, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(path.intercepts[k], cold.intercept_, rtol=1e-4,
                                   atol=1e-5 * scale)
    assert path.n_iter.sum() < cold_iters  # warm starts pay


def test_shared_path_matches_sklearn_lasso_path():
    """Shared X, equal weights: the path is sklearn's multi-task lasso path on centered data."""
    X, Y = make_shared(n=60, p=15, T=3, seed=4)
    path = rm.regularization_path(X, Y, penalty="l21", alphas=6, eps=1e-2, tol=1e-12,
                                  max_iter=100_000)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    _, coefs, _ = lasso_path(Xc, Yc, alphas=path.alphas, tol=1e-14, max_iter=100_000)
    sk = np.moveaxis(coefs, -1, 0)  # (n_alphas, T, p)
    np.testing.assert_allclose(path.coefs, sk, rtol=1e-5, atol=1e-7)
    b = Y.mean(axis=0)[None, :] - np.einsum("ktj,j->kt", path.coefs, X.mean(axis=0))
    np.testing.assert_allclose(path.intercepts, b, rtol=1e-8, atol=1e-8)


def test_given_grid_is_sorted_decreasing_and_structure_is_kept():
    Xs, ys = make_lists(seed=5)
    amax = rm.alpha_max(Xs, ys, penalty="l21")
    grid = [amax / 50, amax / 2, amax / 10]
    path = rm.regularization_path(Xs, ys, penalty=rm.Dirty(own_weight=0.5), alphas=grid,
                                  tol=1e-8, max_iter=50_000)
    np.testing.assert_allclose(path.alphas, sorted(grid, reverse=True))
    assert path.converged.all()
    for k, st in enumerate(path.structure):
        np.testing.assert_allclose(st["P_"] + st["Q_"], path.coefs[k], atol=1e-12)
    # a penalty without alpha_max along a given grid, certified by its KKT residual
    path = rm.regularization_path(Xs, ys, penalty="mean", alphas=[1.0, 0.1], tol=1e-8)
    assert path.certificate_kind == "kkt_residual" and (path.certificates <= 1e-8).all()


@pytest.mark.parametrize(("alphas", "match"), [
    (True, "number of alphas or a list"),
    ("many", "must be an integer"),
    ([], "must be an integer"),
    ([0.1, -1.0], "must be an integer"),
    ([0.1, np.nan], "must be an integer"),
    (0, "n_alphas=0"),
])
def test_bad_alphas_are_refused(alphas, match):
    Xs, ys = make_lists(seed=6)
    with pytest.raises(ValueError, match=match):
        rm.regularization_path(Xs, ys, alphas=alphas)


def test_penalty_without_alpha_max_gets_a_scale_grid():
    """mean/L2 have no alpha_max: the grid runs from 100 s to 1e-4 s, s the mean curvature."""
    from regmtl.problem import make_data, make_datafit
    from regmtl.selection import alpha_scale

    Xs, ys = make_lists(seed=7)
    data = make_data(Xs, ys)
    # s = mean over features and tasks of (1/n_t) sum_i (x_tij - mean_tj)^2
    s = np.mean([np.mean(np.var(X, axis=0)) for X in Xs])
    assert alpha_scale(data, make_datafit("squared")) == pytest.approx(s, rel=1e-12)
    for pen in ("mean", "l2"):
        path = rm.regularization_path(Xs, ys, penalty=pen, alphas=7)
        np.testing.assert_allclose(path.alphas, 100 * s * np.logspace(0, -6, 7), rtol=1e-12)
        assert path.converged.all()
    # logistic: the loss curvature 1/4 scales it
    yb = [(y > np.median(y)).astype(int) for y in ys]
    datab = make_data(Xs, yb, loss="logistic")
    assert alpha_scale(datab, make_datafit("logistic")) == pytest.approx(s / 4, rel=1e-12)


def test_other_bad_inputs_are_refused():
    Xs, ys = make_lists(seed=7)
    with pytest.raises(ValueError, match="eps"):
        rm.regularization_path(Xs, ys, alphas=5, eps=2.0)
    with pytest.raises(ValueError, match="must be a dict"):
        rm.regularization_path(Xs, ys, alphas=3, solver_options=["screening"])
    with pytest.raises(ValueError, match="loss="):
        rm.regularization_path(Xs, ys, loss="hinge")
