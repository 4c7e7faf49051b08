"""The per-task Gram form of the squared loss (``regmtl.solvers.parts.quadratic``) against direct
computations: the one-pass build, the batched Lanczos curvature bound, and Gram-form FISTA's step
search."""

import numpy as np
import pytest

import regmtl
from regmtl.solvers.certificates.certify import reference
from regmtl.solvers.parts.quadratic import TaskQuadratic, lanczos_top
from regmtl.solvers.parts.quadratic_fista import fista_quadratic, gram_certificate


def _reference(X, y, c, center):
    """H, g, e and the centers of one task, computed directly from the centered rows."""
    m = c @ X / c.sum() if center else np.zeros(X.shape[1])
    zm = c @ y / c.sum() if center else 0.0
    Xc, zc = X - m, y - zm
    H, g = (Xc.T * c) @ Xc, Xc.T @ (c * zc)
    keep = np.diag(H) > 1e-10 * m * m * c.sum()
    return H * np.outer(keep, keep), g * keep, c @ zc**2, m, zm


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("center", [True, False])
def test_one_pass_build_matches_centered_rows(center, weighted):
    """Tasks of 70-120 rows (the one-pass BLAS build; rows of one weight per task take the plain
    Gram, other weights a weighted copy): a column constant within a task is out of its
    quadratic, a column of mean 2000 and spread 1 keeps its curvature to 1e-9 relative."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 6)) + [0, 0, 0, 0, 2000.0, 5.0] for n in (70, 95, 120)]
    Xs[1][:, 2] = 3.0
    Xs[2][:, 5] = 5.0
    ys = [rng.standard_normal(len(x)) for x in Xs]
    sw = [rng.random(len(x)) for x in Xs] if weighted else None
    data = regmtl.as_task_data(Xs, ys, sample_weight=sw)
    assert data.n_obs >= 64 * data.n_tasks  # the one-pass path
    q = TaskQuadratic.from_data(data, data.c, data.y, center)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        c = data.c[data.indptr[t]:data.indptr[t + 1]]
        H, g, e, m, zm = _reference(X, y, c, center)
        np.testing.assert_allclose(q.H[t], H, rtol=0, atol=1e-9 * np.abs(H).max())
        np.testing.assert_allclose(np.diag(q.H[t]), np.diag(H), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(q.g[:, t], g, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(q.e[t], e, rtol=1e-12)
        np.testing.assert_allclose(q.xm[:, t], m, rtol=1e-13)
        np.testing.assert_allclose(q.zm[t], zm, rtol=1e-12, atol=1e-15)
    if center:  # a constant column is out of its task's quadratic (curvature 0, no gradient)
        assert not q.H[1][2].any() and q.g[2, 1] == 0.0
        assert not q.H[2][5].any() and q.g[5, 2] == 0.0


def test_one_pass_build_equals_small_task_kernel():
    """The Grams of the one-pass BLAS build (tasks of many rows) and of the compiled kernel
    that serves many small tasks, on the same problem: equal to 1e-12."""
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((n, 5)) for n in (80, 100)]
    ys = [rng.standard_normal(len(x)) for x in Xs]
    data = regmtl.as_task_data(Xs, ys)
    q = TaskQuadratic.from_data(data, data.c, data.y, True)
    from regmtl.solvers.parts.quadratic import task_grams

    H = task_grams(data.X, data.c, data.indptr, data.offset, q.xm)
    np.testing.assert_allclose(q.H, H, rtol=0, atol=1e-12 * np.abs(H).max())


def test_sparse_grams_are_the_dense_ones():
    """The per-task centered Grams of a sparse (CSC) design, from the sparse product and the
    centering's rank-one updates, equal those of its dense copy to 1e-12 relative: all
    columns (:func:`~regmtl.solvers.parts.quadratic.task_grams`) and an unsorted subset
    (:func:`~regmtl.solvers.parts.task_columns.task_grams`, batched)."""
    import scipy.sparse as sp

    from regmtl.solvers.parts import quadratic, task_columns

    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 20))
    X[np.abs(X) < 0.8] = 0.0
    task, y = rng.integers(0, 4, 120), rng.standard_normal(120)
    c, xm = rng.random(120) + 0.5, rng.standard_normal((20, 4))
    dense = regmtl.as_task_data(X, y, task=task)
    sparse = regmtl.as_task_data(sp.csc_matrix(X), y, task=task)
    assert sp.issparse(sparse.X)
    features = np.array([3, 1, 7, 12, 0])
    for grams in (
        lambda d: quadratic.task_grams(d.X, c, d.indptr, d.offset, xm),
        lambda d: task_columns.task_grams(d, c, xm, features),
    ):
        H = grams(dense)
        np.testing.assert_allclose(grams(sparse), H, rtol=0, atol=1e-12 * np.abs(H).max())


@pytest.mark.parametrize("shape", [(30, 100, 500), (10, 300, 100), (40, 20, 30), (4, 200, 10)])
def test_lanczos_top_is_the_largest_eigenvalue(shape):
    """Batched Lanczos: below each task's top eigenvalue (a Ritz value) and within 1e-6 of it,
    correlated columns and rank-deficient Grams (n < p) included."""
    T, p, n = shape
    rng = np.random.default_rng(2)
    C = np.linalg.cholesky(0.9 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p))))
    A = rng.standard_normal((T, n, p)) @ C.T + 0.3 * rng.standard_normal((T, 1, p))
    H = np.einsum("tni,tnj->tij", A, A)
    exact = np.linalg.eigvalsh(H)[:, -1]
    top = lanczos_top(H)
    assert np.all(top <= exact * (1 + 1e-12))
    np.testing.assert_allclose(top, exact, rtol=1e-6)


def test_lanczos_top_invariant_subspace():
    """A Gram of rank one closes the Krylov space after one step: its value is exact."""
    v = np.arange(1.0, 9.0)
    H = np.stack([np.outer(v, v), np.eye(8) * 3.0])
    np.testing.assert_allclose(lanczos_top(H), [v @ v, 3.0], rtol=1e-12)


def _trace_problem(seed=3, p=12, T=5):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, 2)) @ rng.standard_normal((2, T))
    Xs = [rng.standard_normal((n, p)) for n in (40, 60, 80, 50, 70)[:T]]
    ys = [X @ W[:, t] + rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    data = regmtl.as_task_data(Xs, ys)
    ref = reference(data, regmtl.Quadratic(), True)
    q = TaskQuadratic.from_data(data, data.c, data.y, True)
    return q, ref, regmtl.Trace(), 0.1 * regmtl.Trace().alpha_max(ref.G0)


def test_gram_fista_step_search_from_an_underestimate(monkeypatch):
    """Gram-form FISTA's step search: started from a tenth of the curvature, L grows where the
    quadratic upper bound fails, and the solve reaches the same certified optimum as from the
    exact curvature (both gaps below 1e-10 P0, objectives within their sum)."""
    q, ref, pen, alpha = _trace_problem()
    tol = 1e-10 * ref.P0
    exact = q.lipschitz()
    V1, it1, stalled1 = fista_quadratic(q, pen, alpha, np.zeros_like(q.g), tol=tol,
                                        max_iter=5000, reweight=False)
    monkeypatch.setattr(TaskQuadratic, "curvature_estimate", lambda self: 0.1 * exact)
    V2, it2, stalled2 = fista_quadratic(q, pen, alpha, np.zeros_like(q.g), tol=tol,
                                        max_iter=5000, reweight=False)
    gaps = [gram_certificate(q, pen, alpha, V, None, 1.0) for V in (V1, V2)]
    assert not stalled1 and not stalled2 and max(gaps) <= tol
    objective = [q.value(V) + pen.value(V, alpha) for V in (V1, V2)]
    assert abs(objective[0] - objective[1]) <= sum(gaps)


def test_gram_fista_forms_one_product_per_iteration(monkeypatch):
    """With the step right from the start, an iteration forms one product ``H W`` (``H Z`` is a
    combination of the last two, and the certificates reuse ``H W``): 1 + iterations in all."""
    q, ref, pen, alpha = _trace_problem(seed=4)
    exact = q.lipschitz()
    monkeypatch.setattr(TaskQuadratic, "curvature_estimate", lambda self: exact)
    calls = []
    matvec = TaskQuadratic.matvec_into
    monkeypatch.setattr(TaskQuadratic, "matvec_into",
                        lambda self, W, out: calls.append(1) or matvec(self, W, out))
    V, it, _ = fista_quadratic(q, pen, alpha, np.zeros_like(q.g), tol=1e-9 * ref.P0,
                               max_iter=5000, reweight=False)
    assert len(calls) == 1 + it
    assert gram_certificate(q, pen, alpha, V, None, 1.0) <= 1e-9 * ref.P0
