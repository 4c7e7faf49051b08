"""The batched per-task columns (:mod:`regmtl.solvers.parts.task_columns`) against a loop over the
tasks written out in NumPy: Grams (batched, and a task at a time for long tasks), spanned
moves and the held solves, in the stacked and the shared layout, dense and sparse, tasks of 1
to 300 rows side by side, chunks forced small."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import regmtl as rm
from regmtl.solvers.parts import task_columns


def _data(layout: str, sparse: bool):
    rng = np.random.default_rng(3)
    p = 9
    if layout == "shared":
        X = rng.standard_normal((40, p))
        X[np.abs(X) < 0.5] = 0.0
        data = rm.as_task_data(sp.csc_matrix(X) if sparse else X, rng.standard_normal((40, 5)))
    else:
        sizes = [1, 300, 7, 2, 64, 65, 3]
        task = np.repeat(np.arange(len(sizes)), sizes)
        X = rng.standard_normal((len(task), p))
        X[np.abs(X) < 0.5] = 0.0
        data = rm.as_task_data(sp.csc_matrix(X) if sparse else X, rng.standard_normal(len(task)),
                               task=task)
    c = rng.random(data.n_obs) + 0.1
    xm = rng.standard_normal((p, data.n_tasks))
    return data, c, xm


def _rows(data, t):
    a, b, o = data.indptr[t], data.indptr[t + 1], data.offset[t]
    X = data.X[a - o:b - o]
    return X.toarray() if sp.issparse(X) else np.asarray(X)


@pytest.mark.parametrize("long", [1, 10**9])
@pytest.mark.parametrize("chunk", [task_columns.CHUNK, 50])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("layout", ["stacked", "shared"])
def test_grams_moves_and_solves_equal_a_loop_over_tasks(layout, sparse, chunk, long,
                                                        monkeypatch):
    monkeypatch.setattr(task_columns, "CHUNK", chunk)
    monkeypatch.setattr(task_columns, "LONG", long)  # (a Gram a task, or batched)
    data, c, xm = _data(layout, sparse)
    cols = np.array([4, 0, 7])
    rng = np.random.default_rng(5)
    lam = rng.standard_normal((3, data.n_tasks))
    Q = task_columns.task_grams(data, c, xm, cols)
    u = task_columns.spanned(data, xm, cols, lam)
    held = rng.random((3, data.n_tasks)) < 0.6
    rhs = rng.standard_normal((3, data.n_tasks))
    solved = task_columns.held_solves(Q, held, rhs, 1e-10)
    for t in range(data.n_tasks):
        a, b = data.indptr[t], data.indptr[t + 1]
        Z = _rows(data, t)[:, cols] - xm[cols, t]
        H = (Z * c[a:b, None]).T @ Z
        np.testing.assert_allclose(Q[t], H, rtol=1e-12, atol=1e-12 * np.abs(H).max())
        np.testing.assert_allclose(u[a:b], Z @ lam[:, t], rtol=1e-12, atol=1e-12)
        S = held[:, t]
        expect = np.zeros(3)
        if S.any():
            Hs = H[np.ix_(S, S)]
            Hs[np.diag_indices_from(Hs)] += 1e-10 * np.abs(Hs).max()
            expect[S] = np.linalg.solve(Hs, rhs[S, t])
        np.testing.assert_allclose(solved[:, t], expect, rtol=1e-9, atol=1e-12)


def test_a_singular_held_solve_is_none():
    Q = np.zeros((2, 2, 2))
    assert task_columns.held_solves(Q, np.ones((2, 2), dtype=bool), np.ones((2, 2)), 0.0) is None


@pytest.mark.parametrize("layout", ["stacked", "shared"])
def test_uncentred_grams_of_every_column_read_the_rows_in_place(layout, monkeypatch):
    """Every column in order, no centering (the interior point's Newton matrices): each long
    task's rows read in place, the same Grams as the loop."""
    monkeypatch.setattr(task_columns, "LONG", 1)
    data, c, _ = _data(layout, False)
    p = data.n_features
    Q = task_columns.task_grams(data, c, np.zeros((p, data.n_tasks)), np.arange(p))
    for t in range(data.n_tasks):
        a, b = data.indptr[t], data.indptr[t + 1]
        Z = _rows(data, t)
        H = (Z * c[a:b, None]).T @ Z
        np.testing.assert_allclose(Q[t], H, rtol=1e-12, atol=1e-12 * np.abs(H).max())
