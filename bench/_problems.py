"""Synthetic problems for the benchmarks (benchmark helpers, not part of regmtl).

Designs are Toeplitz-correlated Gaussians: rows x ~ N(0, Sigma) with Sigma_ij = rho^|i-j|,
drawn as a stationary AR(1) process along the features (x_1 = z_1,
x_j = rho x_{j-1} + sqrt(1 - rho^2) z_j), which has exactly that covariance and costs O(n p).
"""

from __future__ import annotations

import numpy as np


def toeplitz_design(rng: np.random.Generator, n: int, p: int, rho: float = 0.5) -> np.ndarray:
    """n x p Fortran-ordered design with rows ~ N(0, Sigma), Sigma_ij = rho^|i-j|."""
    Z = rng.standard_normal((n, p))
    X = np.empty((n, p), order="F")
    X[:, 0] = Z[:, 0]
    s = np.sqrt(1.0 - rho * rho)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + s * Z[:, j]
    return X


def row_sparse_coefs(rng: np.random.Generator, p: int, T: int, n_active: int) -> np.ndarray:
    """p x T coefficients with ``n_active`` nonzero rows (shared support), N(0, 1) entries."""
    W = np.zeros((p, T))
    support = np.sort(rng.choice(p, size=n_active, replace=False))
    W[support] = rng.standard_normal((n_active, T))
    return W


def shared_regression(n: int, p: int, T: int, n_active: int = 50, rho: float = 0.5,
                      snr: float = 5.0, seed: int = 0):
    """Shared design X (n x p), targets Y (n x T) = X W + intercepts + noise.

    SNR is ||X W||_F / ||E||_F."""
    rng = np.random.default_rng(seed)
    X = toeplitz_design(rng, n, p, rho)
    W = row_sparse_coefs(rng, p, T, n_active)
    signal = X @ W
    E = rng.standard_normal((n, T))
    E *= np.linalg.norm(signal) / (snr * np.linalg.norm(E))
    Y = signal + E + rng.standard_normal(T)  # nonzero per-task intercepts
    return X, np.asfortranarray(Y), W


def per_task_sizes(rng: np.random.Generator, T: int, n_min: int, n_max: int) -> np.ndarray:
    return rng.integers(n_min, n_max + 1, size=T)


def _per_task_data(rng: np.random.Generator, W: np.ndarray, sizes, loss: str, rho: float,
                   snr: float):
    """The common core: task t gets its own Toeplitz design (n_t x p) and y_t = X_t w_t + b_t +
    noise (SNR per task), or for ``loss="logistic"`` labels sign(X_t w_t + b_t + noise) in
    {-1, +1} (both classes kept)."""
    Xs, ys = [], []
    for t, n_t in enumerate(sizes):
        X = toeplitz_design(rng, int(n_t), W.shape[0], rho)
        s = X @ W[:, t]
        e = rng.standard_normal(int(n_t))
        e *= np.linalg.norm(s) / (snr * np.linalg.norm(e))
        if loss == "squared":
            y = s + e + rng.standard_normal()
        else:
            z = s + e + 0.3 * np.std(s) * rng.standard_normal()
            y = np.where(z > 0, 1.0, -1.0)
            if np.all(y == y[0]):  # keep both classes
                y[0] = -y[0]
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def per_task_row_sparse(loss: str = "squared", T: int = 20, p: int = 2000, n_min: int = 50,
                        n_max: int = 400, n_active: int = 30, rho: float = 0.5,
                        snr: float = 5.0, seed: int = 1):
    """Lists Xs, ys and the truth W for the L2,1 benchmark: n_t uniform in [n_min, n_max], a
    shared support of ``n_active`` rows (:func:`row_sparse_coefs`), targets as in
    :func:`_per_task_data`."""
    rng = np.random.default_rng(seed)
    sizes = per_task_sizes(rng, T, n_min, n_max)
    W = row_sparse_coefs(rng, p, T, n_active)
    return (*_per_task_data(rng, W, sizes, loss, rho, snr), W)


# ----------------------------------------------------------------------------- structured W
# Coefficient generators for the structured-penalty benchmark (bench/bench_structured.py); the
# designs and targets come from :func:`per_task_from_coefs` (:func:`_per_task_data`).
def lowrank_coefs(rng: np.random.Generator, p: int, T: int, rank: int = 3) -> np.ndarray:
    """p x T coefficients of rank ``rank``: U V^T / sqrt(rank), U, V Gaussian (dense)."""
    U = rng.standard_normal((p, rank))
    V = rng.standard_normal((T, rank))
    return U @ V.T / np.sqrt(rank)


def cluster_labels(T: int, n_clusters: int = 3) -> np.ndarray:
    """Tasks in ``n_clusters`` consecutive blocks of (almost) equal size: 0..0 1..1 2..2."""
    return np.repeat(np.arange(n_clusters), np.diff(np.linspace(0, T, n_clusters + 1).round()
                                                    ).astype(int))


def clustered_coefs(rng: np.random.Generator, p: int, T: int, n_clusters: int = 3,
                    spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Tasks in ``n_clusters`` groups of similar weight vectors: w_t = c_k(t) + spread * N(0, I),
    centers c_k ~ N(0, I) (dense). Returns (W, labels); the tasks are ordered by cluster."""
    labels = cluster_labels(T, n_clusters)
    C = rng.standard_normal((p, n_clusters))
    W = C[:, labels] + spread * rng.standard_normal((p, T))
    return W, labels


def dirty_coefs(rng: np.random.Generator, p: int, T: int, n_active: int = 20,
                n_own: int = 5) -> np.ndarray:
    """A shared support of ``n_active`` rows (N(0, 1) entries) plus ``n_own`` task-specific
    entries per task outside it (N(0, 1))."""
    W = row_sparse_coefs(rng, p, T, n_active)
    free = np.flatnonzero(~np.any(W != 0, axis=1))
    for t in range(T):
        idx = rng.choice(free, size=n_own, replace=False)
        W[idx, t] = rng.standard_normal(n_own)
    return W


def sparse_lowrank_coefs(rng: np.random.Generator, p: int, T: int, rank: int = 3,
                         n_sparse: int = 5, sparse_scale: float = 3.0) -> np.ndarray:
    """Low rank (:func:`lowrank_coefs`) plus ``n_sparse`` entries per task of scale
    ``sparse_scale`` (N(0, sparse_scale^2)) at random positions."""
    W = lowrank_coefs(rng, p, T, rank)
    for t in range(T):
        idx = rng.choice(p, size=n_sparse, replace=False)
        W[idx, t] += sparse_scale * rng.standard_normal(n_sparse)
    return W


def outlier_tasks(T: int, n_outliers: int) -> np.ndarray:
    """The positions of ``n_outliers`` outlier tasks, spread evenly over the T tasks."""
    return np.linspace(0, T - 1, n_outliers + 2)[1:-1].round().astype(int)


def robust_lowrank_coefs(rng: np.random.Generator, p: int, T: int, rank: int = 3,
                         n_outliers: int = 3, outlier_scale: float = 1.0) -> np.ndarray:
    """Low rank (:func:`lowrank_coefs`) on all but ``n_outliers`` tasks (:func:`outlier_tasks`),
    whose columns are dense N(0, outlier_scale^2) vectors of their own."""
    W = lowrank_coefs(rng, p, T, rank)
    out = outlier_tasks(T, n_outliers)
    W[:, out] = outlier_scale * rng.standard_normal((p, out.size))
    return W


def robust_features_coefs(rng: np.random.Generator, p: int, T: int, n_active: int = 20,
                          n_outliers: int = 3, n_own: int = 20) -> np.ndarray:
    """A shared support of ``n_active`` rows (:func:`row_sparse_coefs`) on all but
    ``n_outliers`` tasks (:func:`outlier_tasks`), which use ``n_own`` features of their own
    outside it instead (N(0, 1) entries)."""
    W = row_sparse_coefs(rng, p, T, n_active)
    free = np.flatnonzero(~np.any(W != 0, axis=1))
    for t in outlier_tasks(T, n_outliers):
        W[:, t] = 0.0
        W[rng.choice(free, size=n_own, replace=False), t] = rng.standard_normal(n_own)
    return W


def temporal_coefs(rng: np.random.Generator, p: int, T: int, n_active: int = 20) -> np.ndarray:
    """Tasks ordered in time: a shared support of ``n_active`` rows whose weights drift
    smoothly over the T time points (a random level plus a random slope and a half-period
    sine, each N(0, 1) in scale)."""
    W = np.zeros((p, T))
    support = np.sort(rng.choice(p, size=n_active, replace=False))
    s = np.linspace(0.0, 1.0, T)
    a, b, c = (rng.standard_normal((n_active, 1)) for _ in range(3))
    W[support] = a + b * s + 0.5 * c * np.sin(np.pi * s)
    return W


def fused_coefs(rng: np.random.Generator, p: int, T: int, n_active: int = 20,
                n_changes: int = 2) -> np.ndarray:
    """Tasks ordered in time: a shared support of ``n_active`` rows, each piecewise constant
    in time with ``n_changes`` change points at random times (levels N(0, 1)); a third of the
    rows are 0 until their first change point (a feature that starts to matter)."""
    W = np.zeros((p, T))
    support = np.sort(rng.choice(p, size=n_active, replace=False))
    for k, j in enumerate(support):
        cuts = np.sort(rng.choice(np.arange(1, T), size=min(n_changes, T - 1), replace=False))
        levels = rng.standard_normal(cuts.size + 1)
        if k % 3 == 0:
            levels[0] = 0.0
        W[j] = levels[np.searchsorted(cuts, np.arange(T), side="right")]
    return W


def per_task_from_coefs(W: np.ndarray, n_min: int, n_max: int, loss: str = "squared",
                        rho: float = 0.5, snr: float = 5.0, seed: int = 0):
    """Lists Xs, ys for given coefficients W (p x T), n_t uniform in [n_min, n_max], targets as
    in :func:`_per_task_data`."""
    rng = np.random.default_rng(seed)
    sizes = per_task_sizes(rng, W.shape[1], n_min, n_max)
    return _per_task_data(rng, W, sizes, loss, rho, snr)
