"""Memory of the regularization path on a sparse bag-of-words design, and its results.

The problem: 5 logistic tasks of 80-120 rows over p = 40,000 features of which 8,000 are used
(a vocabulary most documents never touch, as spam's 152,543 words of which 37,120 are used);
the trace norm and sparse + low rank (sparse_weight 0.15), 4 points alpha_max -> alpha_max /
100 at tol 1e-6. Sizes: M = 8 p T bytes (one dense p x T matrix, 1.53 MiB), L = M / 5 (one
live-feature x T matrix), D the sparse data (0.92 MiB).

* Peak allocation (tracemalloc, after a warm-up path so that imports and compilation are not
  counted), less the arrays the path returns (``coefs``: 4 M; with sparse + low rank also the
  parts ``P_`` and ``Q_`` of every point: 8 M more), stays within a bound with no p x T matrix
  in it: every fit's start, reference and result stay on the used features
  (``solve_live``), written once into ``coefs`` (and ``P_``, ``Q_``), and the reference
  gradient is restricted once for the whole path.
  - trace: 9 L + 2 D. Held at the peak (inside the last fit's subspace solve, at the
    directions of the pass's gradient): the subspace's basis of at most 4 T directions on
    the used features, one buffer grown and rotated in place (4 L); the fit's start, held by
    the path and handed over to the solve as its iterate, no copy (L); the reference
    gradient on the used features (L); the pass's gradient (L); its violating directions (at
    most T: L), orthonormalized in place (LAPACK's QR over them, no workspace beside them);
    the solve's small arrays (N x k products, intercepts: within L); the stacked design and
    its conversion (2 D; the restricted design shares its entries). The spectral norm forms
    no scaled copy of the gradient, nor the certificate the scaled dual point ``s G``.
    Measured 12.6 L with D = 3.0 L (2.5 M); before this change 15.2 L (the start copied
    for the solve, the QR's copy and output beside the directions, ``G / max|G|`` and
    ``s G`` beside G), and before that 4.8 M.
  - sparse + low rank: 15 L + 2 D - 2 M. The peak is in the last fit, before its parts are
    stored (2 M of the returned arrays not yet formed): held are the basis (4 L), the start
    (V = (P, Q) with the path, and W, handed over to the solve as its iterate: 3 L), the
    pass's gradient and its dual-norm workspace (2 L), the reference gradient (L), the
    violating directions and features and the restricted design (3 L), the solve's small
    arrays (2 L), and the design (2 D). Measured 8.1 L (1.6 M); before 5.2 M (the start
    and the result widened to all features, 5 M).
* The results are those of the plain warm-started loop over ``solve`` (each start a copy of
  the last result), bit for bit (1e-12 asked): ``coefs``, intercepts, certificates,
  iterations and the parts.
* A CSC design restricted to its used columns is the matrix scipy's indexing gives (the same
  entries, row indices and column pointers) and shares X's entries; a restriction that drops
  stored entries copies as before.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import regmtl as rm
from regmtl.datafits import make_loss
from regmtl.penalties import make_penalty
from regmtl.problem import make_data
from regmtl.solvers import reference, solve
from regmtl.taskdata import intercept_shift, shift_columns

P, USED, SIZES = 40_000, 8_000, (90, 110, 100, 120, 80)
MIB = 2**20


def _bag_of_words(seed=0, density=0.02):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(USED) * (rng.random(USED) < 0.05)
    Xs, ys = [], []
    for n in SIZES:
        A = sp.random(n, USED, density=density, format="csr", random_state=rng,
                      data_rvs=lambda k: rng.poisson(2.0, k) + 1.0)
        Xs.append(sp.hstack([A, sp.csr_matrix((n, P - USED))], format="csr"))
        ys.append(np.where(A @ w + rng.standard_normal(n) > 0, 1.0, -1.0))
    return Xs, ys


def _penalty(name):
    return rm.Trace() if name == "trace" else rm.SparseLowRank(sparse_weight=0.15)


def _grid(Xs, ys, name, n=4):
    return rm.alpha_max(Xs, ys, penalty=_penalty(name), loss="logistic") * np.logspace(0, -2, n)


def _path(Xs, ys, name, grid):
    return rm.regularization_path(Xs, ys, penalty=_penalty(name), loss="logistic", alphas=grid,
                                  tol=1e-6, max_iter=5000)


@pytest.fixture(scope="module")
def problem():
    return _bag_of_words()


@pytest.mark.parametrize("name, full, live", [("trace", 0, 9), ("sparse_lowrank", -2, 15)])
def test_path_peak_allocation_is_bounded(problem, name, full, live):
    Xs, ys = problem
    grid = _grid(Xs, ys, name)
    _path(Xs, ys, name, grid[:2])  # (imports and compilation: not the path's memory)
    tracemalloc.start()
    try:
        path = _path(Xs, ys, name, grid)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.converged.all()
    T = len(Xs)
    M, L = 8 * P * T, 8 * USED * T
    D = sum(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes for x in Xs)
    out = path.coefs.nbytes + sum(v.nbytes for s in path.structure for v in s.values()
                                  if isinstance(v, np.ndarray) and v.ndim == 2)
    assert out == (4 if name == "trace" else 12) * M
    bound = full * M + live * L + 2 * D
    assert peak - out <= bound, (
        f"{name}: {(peak - out) / MIB:.2f} MiB held above the {out / MIB:.2f} MiB returned, "
        f"bound {bound / MIB:.2f} MiB (M = {M / MIB:.2f}, L = {L / MIB:.2f}, "
        f"D = {D / MIB:.2f} MiB)")


@pytest.mark.parametrize("name", ["trace", "sparse_lowrank"])
def test_path_results_are_the_warm_started_loops(problem, name):
    Xs, ys = problem
    grid = _grid(Xs, ys, name)
    path = _path(Xs, ys, name, grid)
    datafit, pen = make_loss("logistic"), make_penalty(_penalty(name))
    data = shift_columns(make_data(Xs, ys, None, loss="logistic", penalty=pen))
    ref = reference(data, datafit, True)
    W = b = V = theta = None
    for k, alpha in enumerate(grid):
        res = solve(data, datafit, pen, float(alpha), W0=W, b0=b, V0=V, tol=1e-6,
                    max_iter=5000, ref=ref, theta0=theta)
        W, b, theta = res.W.copy(), res.b.copy(), res.theta
        V = W if res.V is res.W else res.V.copy()
        np.testing.assert_allclose(path.coefs[k], res.W.T, rtol=0, atol=1e-12)
        assert np.array_equal(path.coefs[k], res.W.T)
        assert np.array_equal(path.intercepts[k], res.b - intercept_shift(data, res.W))
        assert path.certificates[k] == res.certificate.relative
        assert path.n_iter[k] == res.n_iter
        for key, value in pen.structure(res.V, float(alpha)).items():
            assert np.array_equal(path.structure[k][key], value), key


def test_restricted_csc_design_shares_its_entries():
    X = sp.random(60, 500, density=0.01, format="csc", random_state=0)
    X.sort_indices()
    data = rm.as_task_data([X[:30], X[30:]], [np.ones(30), -np.ones(30)])
    X = data.X
    live = np.asarray(X.getnnz(axis=0)).ravel() > 0
    kept, expected = data.with_columns(live).X, X[:, live]
    assert type(kept) is type(expected) and kept.shape == expected.shape
    for part in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(kept, part), getattr(expected, part)), part
        assert getattr(kept, part).dtype == getattr(expected, part).dtype, part
    assert np.shares_memory(kept.data, X.data)
    # a column with entries left out: scipy's copy, as before
    drop = live.copy()
    drop[np.flatnonzero(live)[0]] = False
    cut = data.with_columns(drop).X
    assert not np.shares_memory(cut.data, X.data)
    assert (cut != X[:, drop]).nnz == 0


@pytest.mark.parametrize("name", ["trace", "sparse_lowrank", "l21"])
def test_balanced_path_on_live_features_is_the_warm_started_loop(name):
    """Data far from 1 (X ~ 1e-90, y ~ 1e80) with three quarters of the features dead: the
    path solves the balanced problem on the live features (its start and result there) and
    still equals the plain loop over ``solve``, bit for bit."""
    rng = np.random.default_rng(0)
    Xs = [sp.hstack([sp.random(40, 30, density=0.2, random_state=i, format="csr"),
                     sp.csr_matrix((40, 90))], format="csr") * 1e-90 for i in range(3)]
    ys = [rng.standard_normal(40) * 1e80 for _ in range(3)]
    pen = {"trace": rm.Trace(), "sparse_lowrank": rm.SparseLowRank(sparse_weight=0.5),
           "l21": rm.L21()}[name]
    grid = rm.alpha_max(Xs, ys, penalty=pen) * np.logspace(0, -2, 4)
    path = rm.regularization_path(Xs, ys, penalty=pen, alphas=grid, tol=1e-8, max_iter=5000)
    assert path.converged.all() and path.n_active[-1] > 0
    datafit, pen = make_loss("squared"), make_penalty(pen)
    data = shift_columns(make_data(Xs, ys, None, loss="squared", penalty=pen))
    ref = reference(data, datafit, True)
    W = b = V = None
    for k, alpha in enumerate(grid):
        res = solve(data, datafit, pen, float(alpha), W0=W, b0=b, V0=V, tol=1e-8,
                    max_iter=5000, ref=ref)
        W, b = res.W.copy(), res.b.copy()
        V = W if res.V is res.W else res.V.copy()
        assert np.array_equal(path.coefs[k], res.W.T)
        assert np.array_equal(path.intercepts[k], res.b - intercept_shift(data, res.W))
        for key, value in pen.structure(res.V, float(alpha)).items():
            assert np.array_equal(path.structure[k][key], value), key


@pytest.mark.parametrize("name", ["trace", "sparse_lowrank"])
def test_estimator_fit_on_live_features_is_the_solve(problem, name):
    """An estimator's fit solves on the used features and writes ``coef_``, ``P_`` and ``Q_``
    from them: the same numbers as :func:`solve`'s result widened to all features."""
    Xs, ys = problem
    alpha = float(_grid(Xs, ys, name)[1])
    model = rm.MultiTaskClassifier(_penalty(name), alpha=alpha, tol=1e-6,
                                   max_iter=5000).fit(Xs, ys)
    datafit, pen = make_loss("logistic"), make_penalty(_penalty(name))
    data = shift_columns(make_data(Xs, ys, None, loss="logistic", penalty=pen))
    res = solve(data, datafit, pen, alpha, tol=1e-6, max_iter=5000)
    assert np.array_equal(model.coef_, res.W.T)
    assert np.array_equal(model.intercept_, res.b - intercept_shift(data, res.W))
    for key, value in pen.structure(res.V, alpha).items():
        assert np.array_equal(getattr(model, key), value), key
