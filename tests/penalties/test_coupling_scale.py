"""The quadratic task-coupling penalties at scale: ``MeanRegularized`` and ``GraphLaplacian``
work through the operator ``W -> W K`` and never form the T x T kernel (design.rst section 9).

Every operation is checked against the dense-kernel formula it replaces (``K = (1 + r) I -
11^T / T`` and ``K = 2 (diag(A 1) - A)``, formed here): ``apply``, ``kernel_diagonal``, the
value, gradient, prox ``V (I + s alpha K)^{-1}`` and the conjugate ``tr(G K^{-1} G^T) / (2
alpha)``, to rounding (``1e-12`` relative). ``chain_graph`` and ``knn_graph`` return sparse CSR
matrices equal to the old dense constructions (copied below as the reference). Fits agree to
``1e-8`` with fits through a copy of the old dense-kernel penalty (eigendecomposition prox) and
with the normal equations, and are certified; with the dense ``kernel`` disabled they still run
(no solver or certificate uses it). A fit of 20,000 tasks stays far below the T^2 * 8 bytes
(3.2 GB) the dense kernel took.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import regmtl as rm
from regmtl.penalties import Penalty
from regmtl.penalties.coupling import _TaskKernel
from regmtl.problem import make_datafit
from regmtl.solvers.methods.linear import has_linear_path

RTOL = 1e-12
# every fit here reaches its tolerance (relative to the objective at W = 0): a warning fails
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------ dense references
def dense_mean_kernel(T, r):
    return (1.0 + r) * np.eye(T) - np.full((T, T), 1.0 / T)


def dense_graph_kernel(A):
    A = np.asarray(A.toarray() if sp.issparse(A) else A, dtype=float)
    A = 0.5 * (A + A.T)
    return 2.0 * (np.diag(A.sum(axis=1)) - A)


def old_chain_graph(n_tasks, weight=1.0):
    A = np.zeros((n_tasks, n_tasks))
    idx = np.arange(n_tasks - 1)
    A[idx, idx + 1] = A[idx + 1, idx] = weight
    return A


def old_knn_graph(Z, k=5, weights="connectivity"):
    Z = np.asarray(Z, dtype=np.float64)
    T = Z.shape[0]
    sq = np.sum(Z**2, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0)
    np.fill_diagonal(D2, np.inf)
    nn = np.argsort(D2, axis=1, kind="stable")[:, : int(k)]
    A = np.zeros((T, T))
    rows = np.repeat(np.arange(T), int(k))
    if weights == "connectivity":
        A[rows, nn.ravel()] = 1.0
    else:
        d2 = D2[rows, nn.ravel()]
        scale = np.median(d2) if np.median(d2) > 0 else 1.0
        A[rows, nn.ravel()] = np.exp(-d2 / scale)
    return np.maximum(A, A.T)


class OldDense(Penalty):
    """The penalty as it was: ``alpha / 2 tr(W K W^T)`` with a dense K, prox and conjugate
    through K's eigendecomposition (no ``apply``: no conjugate-gradient path). With an
    invertible K it certifies with the duality gap, as ``MeanRegularized(ridge > 0)`` did."""

    name = "old_dense"
    _param_names = ("K", "dual")

    def __init__(self, K=None, dual=True):
        self.K, self.dual = K, dual

    @property
    def has_dual(self):
        return self.dual and bool(np.linalg.eigvalsh(self.K).min() > 1e-12)

    def dual_scaling(self, G, alpha):
        return 1.0

    def conjugate(self, G, alpha):
        evals, Q = np.linalg.eigh(self.K)
        return float(np.sum((G @ Q) ** 2 / evals) / (2.0 * alpha))

    def value(self, V, alpha):
        return float(0.5 * alpha * np.sum((V @ self.K) * V))

    def gradient(self, W, alpha):
        return alpha * W @ self.K

    def subdiff_distance(self, W, G, alpha):
        D = G - self.gradient(W, alpha)
        return np.sqrt(np.einsum("ij,ij->i", D, D))

    def prox(self, V, step, alpha):
        evals, Q = np.linalg.eigh(self.K)
        return ((V @ Q) / (1.0 + step * alpha * np.maximum(evals, 0.0))) @ Q.T


def weighted_graph(T, seed=0, isolated=(1,), diagonal=True):
    """A random symmetric weighted graph with isolated nodes (and, optionally, a diagonal)."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.1, 3.0, (T, T)) * (rng.uniform(size=(T, T)) < 0.4)
    A = np.triu(A, 1)
    A = A + A.T
    A[list(isolated), :] = 0.0
    A[:, list(isolated)] = 0.0
    if diagonal:
        A[np.diag_indices(T)] = rng.uniform(0, 2, T)  # plays no role in L
    return A


T_SMALL = 7
GRAPHS = {
    "chain": lambda: rm.chain_graph(T_SMALL),
    "weighted-csr": lambda: sp.csr_matrix(weighted_graph(T_SMALL)),
    "weighted-dense": lambda: weighted_graph(T_SMALL, seed=1, isolated=(0, 4)),
    "weighted-coo": lambda: sp.coo_matrix(weighted_graph(T_SMALL, seed=2)),
    "empty": lambda: sp.csr_matrix((T_SMALL, T_SMALL)),
    "knn-heat": lambda: rm.knn_graph(np.random.default_rng(3).standard_normal((T_SMALL, 2)),
                                     k=2, weights="heat"),
}
PENALTIES = {
    **{f"mean(r={r})": (lambda r=r: (rm.MeanRegularized(ridge=r), dense_mean_kernel(T_SMALL, r)))
       for r in (0.0, 0.7)},
    **{f"graph-{name}": (lambda make=make: (lambda A: (rm.GraphLaplacian(A),
                                                       dense_graph_kernel(A)))(make()))
       for name, make in GRAPHS.items()},
}


# ------------------------------------------------------------------ operators
@pytest.mark.parametrize("name", list(PENALTIES))
def test_operators_match_the_dense_kernel(name):
    pen, K = PENALTIES[name]()
    rng = np.random.default_rng(0)
    W, G = rng.standard_normal((4, T_SMALL)), rng.standard_normal((4, T_SMALL))
    assert has_linear_path(make_datafit("squared"), pen)
    assert_allclose(pen.kernel(T_SMALL), K, rtol=RTOL, atol=1e-13)
    assert_allclose(pen.apply(W), W @ K, rtol=RTOL, atol=1e-12)
    assert_allclose(pen.kernel_diagonal(T_SMALL), np.diag(K), rtol=RTOL, atol=1e-13)
    for alpha in (0.0, 0.3, 2.5):
        assert pen.value(W, alpha) == pytest.approx(0.5 * alpha * np.sum((W @ K) * W),
                                                    rel=RTOL, abs=1e-12)
        assert_allclose(pen.gradient(W, alpha), alpha * W @ K, rtol=RTOL, atol=1e-12)
        assert_allclose(pen.subdiff_distance(W, G, alpha),
                        np.linalg.norm(G - alpha * W @ K, axis=1), rtol=RTOL)
        for step in (1e-3, 0.5, 7.0):
            U = pen.prox(W, step, alpha)
            assert_allclose(U, W @ np.linalg.inv(np.eye(T_SMALL) + step * alpha * K),
                            rtol=1e-11, atol=1e-12)
            # the prox's optimality: (U - V) / step + alpha U K = 0
            assert np.abs((U - W) / step + alpha * U @ K).max() < 1e-10
        # the same step again reuses the graph's factorization: still the same answer
        assert_allclose(pen.prox(W, 0.5, alpha), W @ np.linalg.inv(
            np.eye(T_SMALL) + 0.5 * alpha * K), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("T", [1, 2, 9])
@pytest.mark.parametrize("r", [0.25, 3.0])
def test_mean_conjugate_matches_the_dense_formula(T, r):
    pen, K = rm.MeanRegularized(ridge=r), dense_mean_kernel(T, r)
    rng = np.random.default_rng(T)
    G, W = rng.standard_normal((3, T)), rng.standard_normal((3, T))
    for alpha in (0.1, 4.0):
        want = np.trace(G @ np.linalg.inv(K) @ G.T) / (2 * alpha)
        assert pen.conjugate(G, alpha) == pytest.approx(want, rel=RTOL)
        # Fenchel-Young: equality at G = grad Omega(W), inequality elsewhere
        gW = pen.gradient(W, alpha)
        assert pen.value(W, alpha) + pen.conjugate(gW, alpha) == pytest.approx(
            np.vdot(gW, W), rel=1e-11)
        assert pen.value(W, alpha) + pen.conjugate(G, alpha) >= np.vdot(G, W)
    assert pen.has_dual


@pytest.mark.parametrize("pen", [rm.MeanRegularized(), rm.GraphLaplacian(rm.chain_graph(4)),
                                 rm.GraphLaplacian(sp.identity(4, format="csr"))])
def test_singular_kernels_have_no_conjugate(pen):
    assert not pen.has_dual
    with pytest.raises(ValueError, match="singular"):
        pen.conjugate(np.ones((2, 4)), 1.0)


def test_graph_is_validated_on_its_sparse_form():
    base = sp.csr_matrix(weighted_graph(6, diagonal=False))
    bad = {
        "symmetric": sp.triu(base, format="csr"),
        "negative": -base,
        "NaN": sp.csr_matrix(np.where(base.toarray() > 0, np.nan, 0.0)),
        "square": sp.csr_matrix(np.ones((6, 7))),
    }
    for why, A in bad.items():
        with pytest.raises(ValueError, match=why):
            rm.GraphLaplacian(A).apply(np.ones((2, 6)))
    # symmetric up to 1e-10 relative is accepted (and symmetrized)
    noisy = base.copy()
    noisy.data *= 1.0 + 1e-12 * np.arange(noisy.nnz)
    rm.GraphLaplacian(noisy).check(3, 6)
    with pytest.raises(ValueError, match="shape"):
        rm.GraphLaplacian(base).check(3, 5)


def test_graph_cache_follows_the_content_of_A():
    """An edit of A in place (its CSR data) or ``set_params`` is seen by apply and prox."""
    A = rm.chain_graph(5)
    pen = rm.GraphLaplacian(A)
    W = np.random.default_rng(0).standard_normal((3, 5))
    pen.prox(W, 0.5, 1.0)
    A.data *= 3.0
    K = dense_graph_kernel(A)
    assert_allclose(pen.apply(W), W @ K, rtol=RTOL)
    assert_allclose(pen.prox(W, 0.5, 1.0), W @ np.linalg.inv(np.eye(5) + 0.5 * K), rtol=1e-11)
    pen.set_params(A=weighted_graph(5))
    K = dense_graph_kernel(weighted_graph(5))
    assert_allclose(pen.prox(W, 0.5, 1.0), W @ np.linalg.inv(np.eye(5) + 0.5 * K), rtol=1e-11)
    # a pickled penalty drops its caches and recomputes them
    import pickle

    again = pickle.loads(pickle.dumps(pen))
    assert "_lu_cache" not in vars(again) and again == pen
    assert_allclose(again.prox(W, 0.5, 1.0), pen.prox(W, 0.5, 1.0), rtol=1e-14)


# ------------------------------------------------------------------ graph helpers
@pytest.mark.parametrize("T", [1, 2, 5])
@pytest.mark.parametrize("weight", [1.0, 0.25])
def test_chain_graph_is_the_old_dense_chain(T, weight):
    A = rm.chain_graph(T, weight=weight)
    assert isinstance(A, sp.csr_matrix) and A.nnz == 2 * (T - 1)
    assert_array_equal(A.toarray(), old_chain_graph(T, weight))


@pytest.mark.parametrize("d", [2, 20])  # a k-d tree, a ball tree
@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize("weights", ["connectivity", "heat"])
def test_knn_graph_is_the_old_dense_knn(d, k, weights):
    Z = np.random.default_rng(d + k).standard_normal((40, d))
    A = rm.knn_graph(Z, k=k, weights=weights)
    assert isinstance(A, sp.csr_matrix)
    assert (A != A.T).nnz == 0 and not A.diagonal().any()
    old = old_knn_graph(Z, k=k, weights=weights)
    assert_array_equal(A.toarray() > 0, old > 0)  # the same edges
    assert_allclose(A.toarray(), old, rtol=1e-10, atol=0)


def test_knn_graph_never_forms_distances_between_all_tasks():
    T = 30_000
    Z = np.random.default_rng(0).standard_normal((T, 3))
    tracemalloc.start()
    try:
        A = rm.knn_graph(Z, k=4, weights="heat")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert A.shape == (T, T) and 4 * T <= A.nnz <= 8 * T
    assert peak < 50e6  # T^2 * 8 bytes = 7.2 GB


# ------------------------------------------------------------------ fits
def long_problem(T, n=20, p=5, seed=0, logistic=False, noise=0.5):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(T), n)
    X = rng.standard_normal((T * n, p))
    W = rng.standard_normal(p)[:, None] + np.cumsum(0.2 * rng.standard_normal((p, T)), axis=1)
    f = np.einsum("ij,ji->i", X, W[:, ids]) + 0.3 * np.repeat(rng.standard_normal(T), n)
    y = f + noise * rng.standard_normal(T * n)
    return X, ((y > 0).astype(float) if logistic else y), ids


def normal_equations(X, y, ids, K, alpha):
    """Squared loss, equal task weights, fitted intercepts: the closed-form W (p x T)."""
    T, p = ids.max() + 1, X.shape[1]
    H, g = np.zeros((p * T, p * T)), np.zeros(p * T)
    for t in range(T):
        Xt, yt = X[ids == t], y[ids == t]
        Xc, yc = Xt - Xt.mean(axis=0), yt - yt.mean()
        H[t * p:(t + 1) * p, t * p:(t + 1) * p] = Xc.T @ Xc / len(yt)
        g[t * p:(t + 1) * p] = Xc.T @ yc / len(yt)
    H += alpha * np.kron(K, np.eye(p))  # vec by task: block (s, t) is K_st I
    return np.linalg.solve(H, g).reshape(T, p).T


def coupling_cases(T):
    A = weighted_graph(T, seed=5, isolated=(2,))
    return {
        "mean": (rm.MeanRegularized(), dense_mean_kernel(T, 0.0)),
        "mean-ridge": (rm.MeanRegularized(ridge=0.4), dense_mean_kernel(T, 0.4)),
        "chain": (rm.GraphLaplacian(rm.chain_graph(T)), dense_graph_kernel(old_chain_graph(T))),
        "weighted": (rm.GraphLaplacian(sp.csr_matrix(A)), dense_graph_kernel(A)),
    }


@pytest.fixture
def no_dense_kernel(monkeypatch):
    """Fits must not form K: its dense form raises."""
    def refuse(self, n_tasks):
        raise AssertionError("a solver formed the dense T x T kernel")
    monkeypatch.setattr(_TaskKernel, "kernel", refuse)
    for cls in (rm.MeanRegularized, rm.GraphLaplacian):
        monkeypatch.setattr(cls, "kernel", refuse)


@pytest.mark.parametrize("case", ["mean", "mean-ridge", "chain", "weighted"])
def test_squared_fit_is_the_normal_equations_and_certified(case, no_dense_kernel):
    T, alpha = 6, 0.3
    X, y, ids = long_problem(T)
    pen, K = coupling_cases(T)[case]
    m = rm.MultiTaskRegressor(penalty=pen, alpha=alpha, tol=1e-12, max_iter=5000)
    m.fit(X, y, task=ids)
    assert_allclose(m.coef_.T, normal_equations(X, y, ids, K, alpha), rtol=0, atol=1e-8)
    cert = m.dual_gap_ if case == "mean-ridge" else m.kkt_residual_
    assert 0 <= cert <= 1e-10  # absolute; tol is relative to the objective at 0
    # the KKT residual bounds the coefficient error linearly (a gap only by its square root)
    old = rm.MultiTaskRegressor(penalty=OldDense(K, dual=False), alpha=alpha, tol=1e-12,
                                max_iter=100_000)
    assert_allclose(m.coef_, old.fit(X, y, task=ids).coef_, rtol=0, atol=1e-8)


@pytest.mark.parametrize("case", ["mean", "mean-ridge", "chain", "weighted"])
def test_logistic_fit_equals_the_old_dense_penalty_and_is_certified(case, no_dense_kernel):
    T, alpha = 6, 0.05
    # enough rows that no task is separable: the isolated task of "weighted" is unpenalized
    X, y, ids = long_problem(T, n=80, logistic=True, noise=1.0)
    pen, K = coupling_cases(T)[case]
    kw = dict(alpha=alpha, tol=1e-12, max_iter=100_000)
    m = rm.MultiTaskClassifier(penalty=pen, **kw).fit(X, y, task=ids)
    cert = m.dual_gap_ if case == "mean-ridge" else m.kkt_residual_
    assert 0 <= cert <= 1e-10  # absolute; tol is relative to the objective at 0 (T log 2)
    old = rm.MultiTaskClassifier(penalty=OldDense(K), **kw).fit(X, y, task=ids)
    assert_allclose(m.coef_, old.coef_, rtol=0, atol=1e-8)
    assert_allclose(m.intercept_, old.intercept_, rtol=0, atol=1e-8)


# ------------------------------------------------------------------ scale
T_BIG = 20_000


@pytest.mark.parametrize("penalty", ["mean", "chain"])
def test_twenty_thousand_tasks_fit_in_linear_memory(penalty, no_dense_kernel):
    """T = 20,000 tasks of 20 rows x 5 features (long form): the dense kernel alone was
    T^2 * 8 bytes = 3.2 GB; the fit now peaks below 200 MB and is certified at the default
    tol."""
    X, y, ids = long_problem(T_BIG)
    pen = "mean" if penalty == "mean" else rm.GraphLaplacian(rm.chain_graph(T_BIG))
    model = rm.MultiTaskRegressor(penalty=pen, alpha=0.1)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        model.fit(X, y, task=ids)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert model.coef_.shape == (T_BIG, 5)
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"
    assert 0 <= model.kkt_residual_ <= model.tol
    assert seconds < 30  # about 1 s on one core; generous for a shared machine


def test_logistic_chain_models_are_sparse_linear_systems(no_dense_kernel):
    """The logistic loss runs proximal Newton whose models, with the graph's kernel, are
    linear systems solved by conjugate gradients along the graph (no prox, so no
    factorization of I + 2c L): 2,000 tasks peak below the old kernel's T^2 * 8 bytes
    (32 MB) alone, before its eigendecomposition."""
    T = 2000
    X, y, ids = long_problem(T, logistic=True)
    model = rm.MultiTaskClassifier(penalty=rm.GraphLaplacian(rm.chain_graph(T)), alpha=0.1)
    tracemalloc.start()
    try:
        model.fit(X, y, task=ids)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < T * T * 8, f"peak {peak / 1e6:.0f} MB"
    assert 0 <= model.kkt_residual_ <= model.tol
    assert len(model.penalty._lu_cache) == 0
