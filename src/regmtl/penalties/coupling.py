r"""Smooth penalties that pull task weight vectors towards each other.

=============================  ======================================================
penalty                        Omega(W)
=============================  ======================================================
``MeanRegularized(ridge=r)``   alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)
``GraphLaplacian(A)``          alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T)
=============================  ======================================================

(Evgeniou & Pontil 2004; graph-regularized MTL, MALSAR's SRMTL.) Both are
``alpha / 2 tr(W K W^T)`` for a PSD task kernel K (T x T): ``K = I - 11^T / T + r I`` and
``K = 2 L`` with ``L = diag(A 1) - A``. The prox is ``V (I + step alpha K)^{-1}``, applied
through the eigendecomposition of K. The conjugate ``tr(G K^{-1} G^T) / (2 alpha)`` is finite
everywhere only when K is invertible (mean-regularized with ``ridge > 0``): those fits certify
with a duality gap, the others with the KKT residual.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import Penalty, check_positive

__all__ = ["MeanRegularized", "GraphLaplacian", "chain_graph", "knn_graph"]


class _TaskKernel(Penalty):
    """``alpha / 2 tr(W K W^T)`` with a PSD T x T kernel K."""

    def kernel(self, n_tasks: int) -> np.ndarray:
        raise NotImplementedError

    def _eig(self, n_tasks: int) -> tuple[np.ndarray, np.ndarray]:
        # keyed on the kernel itself: the parameters may change after a fit (set_params, or
        # A edited in place), and repr() shows an array only by its shape
        K = self.kernel(n_tasks)
        cache = getattr(self, "_eig_cache", None)
        if cache is None or cache[0].shape != K.shape or not np.array_equal(cache[0], K):
            evals, Q = np.linalg.eigh(K)
            cache = (K, np.maximum(evals, 0.0), Q)
            self._eig_cache = cache
        return cache[1], cache[2]

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        return False

    def value(self, V, alpha):
        K = self.kernel(V.shape[1])
        return float(0.5 * alpha * np.sum((V @ K) * V))

    def gradient(self, W: np.ndarray, alpha: float) -> np.ndarray:
        return alpha * W @ self.kernel(W.shape[1])

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per feature: ``||G_j - grad Omega(W)_j||`` (the penalty is smooth)."""
        D = G - self.gradient(W, alpha)
        return np.sqrt(np.einsum("ij,ij->i", D, D))

    def prox(self, V, step, alpha):
        evals, Q = self._eig(V.shape[1])
        return ((V @ Q) / (1.0 + step * alpha * evals)) @ Q.T

    def dual_scaling(self, G, alpha):
        return 1.0

    def conjugate(self, G, alpha):
        evals, Q = self._eig(G.shape[1])
        if evals.min() <= 0:
            raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")
        GQ = G @ Q
        return float(np.sum(GQ**2 / evals) / (2.0 * alpha))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_eig_cache", None)
        return state


class MeanRegularized(_TaskKernel):
    r"""Mean-regularized multi-task learning: each task's weights stay near the mean task.

    .. math::

        \Omega(W) = \frac{\alpha}{2} \Big(\sum_t \|w_t - \bar w\|_2^2
        + r \|W\|_F^2\Big), \qquad \bar w = \frac{1}{T} \sum_t w_t,\ r = \texttt{ridge}.

    The model of Evgeniou & Pontil (2004): every task is the mean task plus a deviation, and
    the deviations are shrunk. ``alpha`` moves between independent fits (``alpha -> 0``) and
    the pooled model (a huge ``alpha`` makes all ``w_t`` equal); ``ridge > 0`` also shrinks
    the mean task itself. Pick it when every task is believed to be a variation of one
    common model (students of different schools, patients of different clinics).

    It is ``alpha / 2 tr(W K W^T)`` with the task kernel ``K = (1 + r) I - 11^T / T``. With
    the squared loss the solution solves a linear system (conjugate gradients); otherwise
    FISTA. With ``ridge=0`` K is singular: fits certify with the KKT residual and paths use a
    grid around the data's scale; with ``ridge > 0`` they certify with a duality gap.

    Parameters
    ----------
    ridge : float, default=0.0
        Weight ``r >= 0`` of the ridge on all weights, relative to the pull towards the mean.

    See Also
    --------
    regmtl.GraphLaplacian : Pull along the edges of a task graph instead of towards the mean.
    regmtl.Clustered : Several means, one per cluster of tasks.

    References
    ----------
    Evgeniou & Pontil (2004), "Regularized multi-task learning", KDD.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MeanRegularized, MultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal(5)  # the mean task
    >>> Xs = [rng.standard_normal((30, 5)) for _ in range(4)]
    >>> ys = [X @ (w + 0.3 * rng.standard_normal(5)) for X in Xs]
    >>> model = MultiTaskRegressor(penalty=MeanRegularized(), alpha=0.1).fit(Xs, ys)
    >>> model.coef_.shape, hasattr(model, "kkt_residual_")
    ((4, 5), True)

    A very large ``alpha`` gives the pooled model (the same weights for every task):

    >>> pooled = MultiTaskRegressor(penalty=MeanRegularized(), alpha=1e4).fit(Xs, ys)
    >>> bool(np.ptp(pooled.coef_, axis=0).max() < 1e-3)
    True
    """

    name = "mean"
    _param_names = ("ridge",)

    def __init__(self, ridge: float = 0.0):
        self.ridge = ridge

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_positive(self.ridge, "ridge", strict=False)
        return self

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        """True with ``ridge > 0`` (an invertible task kernel): fits certify with a duality
        gap."""
        return float(self.ridge) > 0

    def kernel(self, n_tasks):
        """The task kernel ``K = (1 + ridge) I - 11^T / T`` of ``alpha / 2 tr(W K W^T)``.

        Parameters
        ----------
        n_tasks : int
            Number of tasks T.

        Returns
        -------
        ndarray of shape (T, T)
            K, symmetric positive semi-definite.
        """
        T = n_tasks
        return (1.0 + float(self.ridge)) * np.eye(T) - np.full((T, T), 1.0 / T)


class GraphLaplacian(_TaskKernel):
    r"""Graph-regularized multi-task learning: tasks joined by an edge have close weights.

    .. math::

        \Omega(W) = \frac{\alpha}{2} \sum_{s,t} A_{st} \|w_s - w_t\|_2^2
        = \alpha \operatorname{tr}(W L W^\top), \qquad L = \operatorname{diag}(A 1) - A,

    the sum running over all ordered pairs (s, t). ``A`` is a symmetric, non-negative
    T x T adjacency matrix: the larger ``A_st``, the closer tasks s and t are pulled; tasks
    with no path between them are fitted independently (``A = 0`` leaves every task alone).
    Pick it when a known structure says which tasks resemble which: an order (years, ages,
    doses: :func:`~regmtl.chain_graph`), a geography, or neighbours in a space of task
    descriptors (:func:`~regmtl.knn_graph`). As in MALSAR's SRMTL.

    With the squared loss the solution solves a linear system (conjugate gradients);
    otherwise FISTA. The Laplacian is singular (constant weights across a connected graph
    cost nothing), so fits certify with the KKT residual (``kkt_residual_``) and paths use a
    grid around the data's scale. The penalty has no name for ``penalty=``: pass the object,
    since it needs its graph.

    Parameters
    ----------
    A : array-like or sparse matrix of shape (T, T)
        Symmetric task adjacency with non-negative, finite edge weights (validated at fit
        time; its diagonal does not matter).

    See Also
    --------
    regmtl.chain_graph : The graph of ordered tasks.
    regmtl.knn_graph : A k-nearest-neighbour graph of task descriptors.
    regmtl.MeanRegularized : Every task pulled towards the mean task.

    Examples
    --------
    Five tasks whose weights drift along a chain (task t resembles tasks t - 1 and t + 1):

    >>> import numpy as np
    >>> from regmtl import GraphLaplacian, MultiTaskRegressor, chain_graph
    >>> rng = np.random.default_rng(0)
    >>> W = np.cumsum(0.3 * rng.standard_normal((5, 5)), axis=1) + rng.standard_normal((5, 1))
    >>> Xs = [rng.standard_normal((20, 5)) for _ in range(5)]
    >>> ys = [X @ W[:, t] + 0.5 * rng.standard_normal(20) for t, X in enumerate(Xs)]
    >>> graph = MultiTaskRegressor(penalty=GraphLaplacian(chain_graph(5)), alpha=0.1)
    >>> graph.fit(Xs, ys).coef_.shape
    (5, 5)
    >>> alone = MultiTaskRegressor(penalty="l2", alpha=1e-6).fit(Xs, ys)
    >>> error = lambda m: np.linalg.norm(m.coef_.T - W)
    >>> bool(error(graph) < error(alone))
    True
    """

    name = "graph"
    _param_names = ("A",)

    def __init__(self, A: Any):
        self.A = A

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        A = self._adjacency()
        if A.shape != (n_tasks, n_tasks):
            raise ValueError(
                f"A must be a square task-adjacency matrix of shape ({n_tasks}, {n_tasks}) "
                f"(one row and column per task); got shape {A.shape}."
            )
        return self

    def _adjacency(self) -> np.ndarray:
        try:
            A = self.A.toarray() if sp.issparse(self.A) else self.A
            A = np.asarray(A, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("A must be a numeric task-adjacency matrix.") from None
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square matrix; got shape {A.shape}.")
        if not np.all(np.isfinite(A)):
            raise ValueError("A contains NaN or infinite entries; give finite edge weights.")
        if np.any(A < 0):
            raise ValueError("A has negative entries; edge weights must be >= 0.")
        if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(A).max())):
            raise ValueError("A must be symmetric (A == A.T): an edge weighs the same both ways.")
        return 0.5 * (A + A.T)

    def kernel(self, n_tasks):
        """The task kernel ``K = 2 L`` (``L = diag(A 1) - A``) of ``alpha / 2 tr(W K W^T)``.

        Parameters
        ----------
        n_tasks : int
            Number of tasks T (the adjacency's shape is checked by :meth:`check`).

        Returns
        -------
        ndarray of shape (T, T)
            K, symmetric positive semi-definite.

        Raises
        ------
        ValueError
            When ``A`` is not a symmetric, finite, non-negative square matrix.
        """
        A = self._adjacency()
        return 2.0 * (np.diag(A.sum(axis=1)) - A)


def chain_graph(n_tasks: int, weight: float = 1.0) -> np.ndarray:
    """Adjacency of a chain over the tasks in their order: years, ages or doses, say.

    Task t is joined to task t + 1 for t = 0, ..., T - 2.

    Parameters
    ----------
    n_tasks : int
        Number of tasks T, >= 1.
    weight : float, default=1.0
        Weight of every edge, > 0.

    Returns
    -------
    ndarray of shape (n_tasks, n_tasks)
        Symmetric adjacency: ``A[t, t + 1] = A[t + 1, t] = weight``, zeros elsewhere. Pass
        it to :class:`~regmtl.GraphLaplacian`.

    Raises
    ------
    ValueError
        If ``n_tasks < 1`` or ``weight`` is not a finite positive number.

    See Also
    --------
    regmtl.knn_graph : A graph from task descriptors.

    Examples
    --------
    >>> from regmtl import GraphLaplacian, chain_graph
    >>> A = chain_graph(4)
    >>> A.astype(int).tolist()
    [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    >>> penalty = GraphLaplacian(A)
    """
    if int(n_tasks) < 1:
        raise ValueError(f"n_tasks must be >= 1; got {n_tasks!r}.")
    check_positive(weight, "weight")
    A = np.zeros((n_tasks, n_tasks))
    idx = np.arange(n_tasks - 1)
    A[idx, idx + 1] = A[idx + 1, idx] = weight
    return A


def knn_graph(Z: Any, k: int = 5, *, weights: str = "connectivity") -> np.ndarray:
    """Symmetric k-nearest-neighbour adjacency of tasks described by the rows of ``Z``.

    An edge joins tasks s and t when either is among the other's ``k`` nearest (Euclidean
    distance between rows of ``Z``).

    Parameters
    ----------
    Z : array-like of shape (T, d)
        One row per task: task descriptors (location, age, ...) or single-task coefficient
        vectors.
    k : int, default=5
        Number of neighbours, 1 <= k < T.
    weights : {"connectivity", "heat"}, default="connectivity"
        Edge weight: 1, or ``exp(-d^2 / median(d^2))`` with ``d`` the distance and the
        median over the kept edges.

    Returns
    -------
    ndarray of shape (T, T)
        Symmetric adjacency with a zero diagonal, for :class:`~regmtl.GraphLaplacian`.

    Raises
    ------
    ValueError
        If ``Z`` is not a finite 2-D array, ``k`` is out of range or ``weights`` unknown.

    See Also
    --------
    regmtl.chain_graph : The graph of ordered tasks.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import knn_graph
    >>> Z = np.array([[0.0], [0.1], [5.0], [5.2]])  # two pairs of similar tasks
    >>> knn_graph(Z, k=1).astype(int).tolist()
    [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or not np.all(np.isfinite(Z)):
        raise ValueError("Z must be a finite 2-D array with one row per task.")
    T = Z.shape[0]
    if not (1 <= int(k) < T):
        raise ValueError(f"k must be in 1..{T - 1} (neighbours among {T} tasks); got {k!r}.")
    if weights not in ("connectivity", "heat"):
        raise ValueError(f"weights must be 'connectivity' or 'heat'; got {weights!r}.")
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
