r"""Smooth penalties that pull task weight vectors towards each other.

=============================  ======================================================
penalty                        Omega(W)
=============================  ======================================================
``MeanRegularized(ridge=r)``   alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)
``GraphLaplacian(A)``          alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T)
=============================  ======================================================

(Evgeniou & Pontil 2004; graph-regularized MTL, MALSAR's SRMTL.) Both are
``alpha / 2 tr(W K W^T)`` for a PSD task kernel K (T x T): ``K = (1 + r) I - 11^T / T`` and
``K = 2 L`` with ``L = diag(A 1) - A``. K is never formed (design.rst section 9: nothing of size
T x T): every method works through the operator ``W -> W K`` (:meth:`_TaskKernel.apply`, O(pT)
through the mean task, O(p nnz(A)) through the sparse graph) and ``diag(K)``. The prox
``V (I + step alpha K)^{-1}`` is closed-form for the mean (K has two eigenvalues: r on the
constant direction, 1 + r on its complement) and a sparse SPD solve for the graph (factorized
once per ``step * alpha`` and cached). The conjugate ``tr(G K^{-1} G^T) / (2 alpha)`` is finite
everywhere only when K is invertible (mean-regularized with ``ridge > 0``): those fits certify
with a duality gap, the others with the KKT residual.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .base import Penalty, SharedPart, as_float, check_positive, inner, is_blocked
from .dof import DegreesOfFreedom, TaskCoupling

__all__ = ["MeanRegularized", "GraphLaplacian", "ClassMean", "ClassGraph", "class_adjacency",
           "chain_graph", "knn_graph"]


class _TaskKernel(Penalty):
    """``alpha / 2 tr(W K W^T)`` with a PSD T x T kernel K, used only as an operator.

    Subclasses define :meth:`apply` (``W -> W K``), :meth:`kernel_diagonal`, :meth:`_solve`
    (``V -> V (I + c K)^{-1}``, ``c > 0``) and :meth:`kernel` (dense K, for inspection only).
    """

    homogeneity = 2.0  # (a quadratic)

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        return False

    def kernel(self, n_tasks: int) -> np.ndarray:
        raise NotImplementedError

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W K`` for W of shape (p, T), without forming K."""
        raise NotImplementedError

    def kernel_diagonal(self, n_tasks: int) -> np.ndarray:
        """``diag(K)``, shape (T,)."""
        raise NotImplementedError

    def _solve(self, V: np.ndarray, c: float) -> np.ndarray:
        raise NotImplementedError

    def value(self, V: np.ndarray, alpha: float) -> float:
        """``alpha / 2 tr(V K V^T) = alpha / 2 <V K, V>``."""
        V = as_float(V)
        return float(0.5 * alpha * inner(self.apply(V), V))

    def gradient(self, W: np.ndarray, alpha: float) -> np.ndarray:
        """``alpha W K``."""
        return alpha * self.apply(as_float(W))

    def subdiff_nearest(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """The point of the subdifferential at W nearest to ``G``: the gradient."""
        return self.gradient(W, alpha)

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per feature: ``||G_j - grad Omega(W)_j||`` (the penalty is smooth)."""
        D = G - self.gradient(W, alpha)
        return np.sqrt(np.einsum("ij,ij->i", D, D))

    def prox(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """``argmin_U ||U - V||^2 / (2 step) + alpha/2 tr(U K U^T) = V (I + step alpha K)^{-1}``."""
        V = as_float(V)
        c = float(step) * float(alpha)
        return V.copy() if c == 0.0 else self._solve(V, c)

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float:
        return 1.0

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for key in ("_graph_cache", "_lu_cache"):
            state.pop(key, None)
        return state


    def degrees_of_freedom(self, W, alpha, structure=None, tol=1e-4):
        """``tr((D + alpha K (x) P)^{-1} D)``, the hat-matrix trace, K applied as ``W K``
        (:meth:`apply`, :meth:`kernel_diagonal`; the dense :meth:`kernel` where those are
        missing)."""
        T = np.shape(W)[1]
        try:
            diag = np.asarray(self.kernel_diagonal(T), dtype=np.float64)
            apply = self.apply
            apply(np.zeros((1, T)))
        except NotImplementedError:
            K = self.kernel(T)
            diag = np.diag(K).copy()

            def apply(X: np.ndarray) -> np.ndarray:
                return X @ K

        return DegreesOfFreedom(smoother=TaskCoupling(float(alpha), apply, diag))


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

    It is ``alpha / 2 tr(W K W^T)`` with the task kernel ``K = (1 + r) I - 11^T / T``, applied
    through the mean task (``W K = (1 + r) W - w_bar 1^T``, O(pT); K is never formed). With
    the squared loss the solution solves a linear system (conjugate gradients); otherwise
    FISTA, with a closed-form prox. With ``ridge=0`` K is singular: fits certify with the KKT
    residual and paths use a grid around the data's scale; with ``ridge > 0`` they certify
    with a duality gap.

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
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha / 2 (sum_t ||D (w_t - w_bar)||^2 + r ||D W||_F^2) (feature metric D)"
    _param_names = ("ridge",)
    cone_program = "task_mean"
    splits_prox = True
    pulls_to_mean = True
    transfer_strategy = "mean"
    compare_label = "MTL mean-regularized"

    def __init__(self, ridge: float = 0.0):
        self.ridge = ridge

    def free_task_groups(self, n_tasks: int) -> list[np.ndarray] | None:
        """Groups of tasks along whose common coefficients the penalty is constant (``W + v
        1_G^T`` costs what W costs, for every v; a penalty without this method charges every
        direction): all tasks without a ridge (the mean task is not charged), else None. A
        classifier refuses a fit whose pooled classes such a direction separates, where the
        loss has no minimum (``regmtl.classes.check_overlap_along``)."""
        return None if float(self.ridge) > 0 else [np.arange(n_tasks)]

    def on_classes(self, layout: Any) -> Penalty:
        """Each class column pulled towards the mean of its class label over the tasks that
        have it (:class:`~regmtl.penalties.coupling.ClassMean`)."""
        return ClassMean(self.ridge, layout.label)

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The prior mean ``w_bar / (1 + r)``, weight ``1 + r``."""
        r = float(self.ridge)
        return [SharedPart("mean", V.mean(axis=1) / (1.0 + r), 1.0 + r)]

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_positive(self.ridge, "ridge", strict=False)
        return self

    @property
    def has_dual(self) -> bool:  # type: ignore[override]
        """True with ``ridge > 0`` (an invertible task kernel): fits certify with a duality
        gap."""
        return float(self.ridge) > 0

    def kernel(self, n_tasks: int) -> np.ndarray:
        """The task kernel ``K = (1 + ridge) I - 11^T / T`` as a dense array (inspection only,
        small T; the solvers use :meth:`apply`).

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

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W K = (1 + r) W - w_bar 1^T`` through the mean task ``w_bar``; O(pT).

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients, one column per task.

        Returns
        -------
        ndarray of shape (p, T)
        """
        W = as_float(W)
        return (1.0 + float(self.ridge)) * W - W.mean(axis=1, keepdims=True)

    def kernel_diagonal(self, n_tasks: int) -> np.ndarray:
        """``diag(K) = 1 + r - 1/T`` for every task.

        Parameters
        ----------
        n_tasks : int
            Number of tasks T.

        Returns
        -------
        ndarray of shape (T,)
        """
        return np.full(n_tasks, 1.0 + float(self.ridge) - 1.0 / n_tasks)

    def value(self, V: np.ndarray, alpha: float) -> float:
        """``alpha / 2 (||V - v_bar 1^T||_F^2 + r ||V||_F^2)``."""
        V = as_float(V)
        D = V - V.mean(axis=1, keepdims=True)
        return float(0.5 * alpha * (inner(D, D) + float(self.ridge) * inner(V, V)))

    def _solve(self, V: np.ndarray, c: float) -> np.ndarray:
        # K has eigenvalue r on the constant direction 1/sqrt(T), 1 + r on its complement
        r = float(self.ridge)
        m = V.mean(axis=1, keepdims=True)
        return (V - m) / (1.0 + c * (1.0 + r)) + m / (1.0 + c * r)

    def prox_summary(self, V: np.ndarray) -> np.ndarray:
        """The columns' sum and their number (p + 1 numbers): the mean task once summed."""
        return np.append(V.sum(axis=1), V.shape[1])

    def prox_given(self, V: np.ndarray, summary: np.ndarray, step: float,
                   alpha: float) -> np.ndarray:
        """:meth:`prox` on some tasks' columns, written over them (:meth:`prox_into`), the
        mean task from ``summary``."""
        c = float(step) * float(alpha)
        if c == 0.0:
            return V
        r = float(self.ridge)
        m = (summary[:-1] / summary[-1])[:, None]
        V -= m
        V /= 1.0 + c * (1.0 + r)
        V += m / (1.0 + c * r)
        return V

    def prox_into(self, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
        """:meth:`prox` in place on V (the closed form of ``_solve``, through the mean
        task: no second p x T array)."""
        c = float(step) * float(alpha)
        if c == 0.0:
            return V
        r = float(self.ridge)
        m = V.mean(axis=1, keepdims=True)
        V -= m
        V /= 1.0 + c * (1.0 + r)
        V += m / (1.0 + c * r)
        return V

    def gap_summary(self, V: np.ndarray, G: np.ndarray) -> tuple:
        """The columns' number, and of V and of G their mean, their sum of squares about it
        and in all (combined without cancellation, as Chan et al.'s pairwise variance)."""
        return (float(V.shape[1]), *_moments(V), *_moments(G))

    def gap_given(self, summaries: list, alpha: float) -> tuple[float, float, float]:
        """:meth:`value` and :meth:`conjugate` (``s = 1``: the conjugate is finite) from
        the groups' moments."""
        n = np.array([x[0] for x in summaries], dtype=np.float64)
        r = float(self.ridge)
        V_spread, V_total, _ = _pooled(n, [x[1:4] for x in summaries])
        G_spread, G_total, g = _pooled(n, [x[4:7] for x in summaries])
        value = 0.5 * alpha * (V_spread + r * V_total)
        if r <= 0:
            raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")
        conjugate = (G_spread / (1.0 + r) + n.sum() * float(g @ g) / r) / (2.0 * alpha)
        return float(value), 1.0, float(conjugate)

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``tr(G K^{-1} G^T) / (2 alpha) = (||G - g_bar 1^T||^2 / (1 + r)
        + T ||g_bar||^2 / r) / (2 alpha)``; finite only with ``ridge > 0``."""
        r = float(self.ridge)
        if r <= 0:
            raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")
        G = as_float(G)
        g = G.mean(axis=1, keepdims=True)
        D = G - g
        return float((inner(D, D) / (1.0 + r) + G.shape[1] * inner(g, g) / r)
                     / (2.0 * alpha))


def _moments(A: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A group of columns' mean, sum of squares about it, and sum of squares."""
    m = A.mean(axis=1) if A.shape[1] else np.zeros(A.shape[0])
    D = A - m[:, None]
    return m, float(np.einsum("ij,ij->", D, D)), float(np.einsum("ij,ij->", A, A))


def _pooled(n: np.ndarray, moments: list) -> tuple[float, float, np.ndarray]:
    """``(||A - a_bar 1'||^2, ||A||^2, a_bar)`` of all the columns from the groups'
    :func:`_moments` (``n`` columns each): the spread about each group's mean plus the groups'
    means' spread about the whole mean."""
    means = np.array([m[0] for m in moments])
    whole = (n @ means) / n.sum()
    D = means - whole
    spread = sum(m[1] for m in moments) + float(n @ np.einsum("kj,kj->k", D, D))
    return spread, sum(m[2] for m in moments), whole


class _Graph:
    """A validated adjacency: symmetric CSR ``A`` with a zero diagonal and its degrees."""

    def __init__(self, A: sp.csr_matrix):
        self.A = A
        self.degree = np.asarray(A.sum(axis=1), dtype=np.float64).ravel()


def _as_csr(A: Any) -> sp.csr_matrix:
    """``A`` as a float CSR matrix, with the errors of an invalid adjacency (no densifying)."""
    if sp.issparse(A):
        try:
            S = A.tocsr().astype(np.float64, copy=False)
        except (TypeError, ValueError):
            raise ValueError("A must be a numeric task-adjacency matrix.") from None
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"A must be a square matrix; got shape {S.shape}.")
        return S
    try:
        D = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("A must be a numeric task-adjacency matrix.") from None
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"A must be a square matrix; got shape {D.shape}.")
    return sp.csr_matrix(D)


def _validate(S: sp.csr_matrix) -> _Graph:
    """Finite, non-negative, symmetric up to ``rtol=1e-10`` (as ``np.allclose``); returns the
    symmetric part ``(A + A^T) / 2`` without its diagonal (which cancels in L)."""
    data = S.data
    if not np.all(np.isfinite(data)):
        raise ValueError("A contains NaN or infinite entries; give finite edge weights.")
    if np.any(data < 0):
        raise ValueError("A has negative entries; edge weights must be >= 0.")
    St = S.T.tocsr()
    atol = 1e-12 * max(1.0, float(data.max()) if data.size else 0.0)
    excess = abs(S - St) - 1e-10 * St  # |A - A^T| - rtol |A^T| <= atol entrywise
    if excess.nnz and float(excess.max()) > atol:
        raise ValueError("A must be symmetric (A == A.T): an edge weighs the same both ways.")
    C = (0.5 * (S + St)).tocoo()
    off = C.row != C.col
    A = sp.csr_matrix((C.data[off], (C.row[off], C.col[off])), shape=S.shape)
    A.eliminate_zeros()
    A.sort_indices()
    return _Graph(A)


def _same_matrix(S: sp.csr_matrix, R: sp.csr_matrix) -> bool:
    return (S.shape == R.shape and np.array_equal(S.indptr, R.indptr)
            and np.array_equal(S.indices, R.indices) and np.array_equal(S.data, R.data))


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

    With the squared loss the solution solves a linear system (conjugate gradients, one
    sparse product per iteration); otherwise FISTA, whose prox ``V (I + 2 step alpha L)^{-1}``
    is a sparse solve factorized once per step. The Laplacian is singular (constant weights
    across a connected graph cost nothing), so fits certify with the KKT residual
    (``kkt_residual_``) and paths use a grid around the data's scale. The penalty has no name
    for ``penalty=``: pass the object, since it needs its graph.

    Parameters
    ----------
    A : sparse matrix or array-like of shape (T, T)
        Symmetric task adjacency with non-negative, finite edge weights (validated at fit
        time; its diagonal does not matter). It is used as a sparse CSR matrix, never
        densified: with many tasks give a sparse one (:func:`~regmtl.chain_graph` and
        :func:`~regmtl.knn_graph` do); a dense array is converted.

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
    #: how a penalty factor d_j enters (``penalty_factor=``): the penalty of D W
    factor_entry = "alpha / 2 sum_{s,t} A_st ||D (w_s - w_t)||^2 (feature metric D)"
    _param_names = ("A",)
    #: factorizations of ``I + c K`` kept per graph (one per distinct ``c = step * alpha``)
    _max_factorizations = 4
    by_name = False
    transfer_strategy = "mean"

    def __init__(self, A: Any):
        self.A = A

    def shared_parts(self, V: np.ndarray) -> list[SharedPart]:
        """The mean task, weight ``2 dbar`` (``dbar`` the graph's mean degree: a new task
        joined to the others as an average task is)."""
        A = self._adjacency()  # symmetric sparse CSR without its diagonal: no T x T
        degree = float(A.sum()) / A.shape[0]
        if degree <= 0:
            raise ValueError("model: its GraphLaplacian graph has no edges, so the tasks share "
                             "nothing; pass strategy='mean' with alpha chosen by CV, or fit "
                             "the new task alone.")
        return [SharedPart("mean", V.mean(axis=1), 2.0 * degree)]

    def on_classes(self, layout: Any) -> Penalty:
        """The graph lifted to the class columns
        (:class:`~regmtl.penalties.coupling.ClassGraph`): column (t, c) joined to (s, c) with
        weight ``A[t, s]`` where both tasks have class c."""
        A = self._adjacency()
        if A.shape != (layout.n_tasks,) * 2:
            raise ValueError(
                f"A must be a square task-adjacency matrix of shape ({layout.n_tasks}, "
                f"{layout.n_tasks}) (one row and column per task); got shape {A.shape}.")
        return ClassGraph(class_adjacency(A, layout))

    def free_task_groups(self, n_tasks: int) -> list[np.ndarray] | None:
        """The connected components of the graph (weights constant over one cost nothing;
        a task with no edge is alone in its own)."""
        from scipy.sparse.csgraph import connected_components

        A = self._adjacency()
        if A.shape != (n_tasks, n_tasks):  # (refused by check, with its message)
            return None
        k, label = connected_components(A, directed=False)
        return [np.flatnonzero(label == c) for c in range(k)]

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        A = self._adjacency()
        if A.shape != (n_tasks, n_tasks):
            raise ValueError(
                f"A must be a square task-adjacency matrix of shape ({n_tasks}, {n_tasks}) "
                f"(one row and column per task); got shape {A.shape}."
            )
        return self

    def _graph(self) -> _Graph:
        """The validated graph, cached on the content of ``A`` (``set_params`` or an edit in
        place is seen; a CSR ``A`` costs an O(nnz) comparison)."""
        S = _as_csr(self.A)
        cache = getattr(self, "_graph_cache", None)
        if cache is None or not _same_matrix(S, cache[0]):
            cache = (S.copy(), _validate(S))
            self._graph_cache = cache
            self._lu_cache = OrderedDict()
        return cache[1]

    def _adjacency(self) -> sp.csr_matrix:
        """The validated adjacency: symmetric CSR (T, T), zero diagonal.

        Raises
        ------
        ValueError
            When ``A`` is not a symmetric, finite, non-negative square numeric matrix.
        """
        return self._graph().A

    def kernel(self, n_tasks: int) -> np.ndarray:
        """The task kernel ``K = 2 L`` (``L = diag(A 1) - A``) as a dense array (inspection
        only, small T; the solvers use :meth:`apply`).

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
        g = self._graph()
        return (2.0 * (sp.diags(g.degree) - g.A)).toarray()

    def laplacian(self) -> sp.csr_matrix:
        """The graph Laplacian ``L = diag(A 1) - A`` as a sparse CSR matrix (``K = 2 L``).

        Returns
        -------
        scipy.sparse.csr_matrix of shape (T, T)

        Raises
        ------
        ValueError
            When ``A`` is not a symmetric, finite, non-negative square matrix.
        """
        g = self._graph()
        return (sp.diags(g.degree) - g.A).tocsr()

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W K = 2 (W diag(d) - W A)`` (``d = A 1``) by one sparse product; O(p nnz(A)).

        Parameters
        ----------
        W : ndarray of shape (p, T)
            Coefficients, one column per task.

        Returns
        -------
        ndarray of shape (p, T)
        """
        g = self._graph()
        W = as_float(W)
        if is_blocked(W):
            return 2.0 * (W * g.degree - _blocked_product(W, g.A))
        WA = np.asarray(g.A @ W.T).T  # A symmetric: W A = (A W^T)^T
        return 2.0 * (W * g.degree - WA)

    def kernel_diagonal(self, n_tasks: int) -> np.ndarray:
        """``diag(K) = 2 d``, the weighted degrees ``d = A 1`` (diagonal of A excluded).

        Parameters
        ----------
        n_tasks : int
            Number of tasks T.

        Returns
        -------
        ndarray of shape (T,)
        """
        degree = self._graph().degree
        if degree.shape[0] != n_tasks:
            raise ValueError(f"A has {degree.shape[0]} tasks, not {n_tasks}.")
        return 2.0 * degree

    def _solve(self, V: np.ndarray, c: float) -> np.ndarray:
        """``V (I + c K)^{-1}``: ``(I + 2c L)`` is sparse, symmetric and strictly diagonally
        dominant, so an LU without pivoting (fill-reducing ordering of ``A + A^T``) is stable;
        it is factorized once per ``(graph, c)`` and reused (FISTA keeps its step)."""
        if is_blocked(V):
            return self._solve_blocks(V, c)
        g = self._graph()
        cache = self._lu_cache
        lu = cache.get(c)
        if lu is None:
            T = g.A.shape[0]
            M = (sp.identity(T, format="csc") + (2.0 * c) * (sp.diags(g.degree) - g.A)).tocsc()
            lu = spla.splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
            cache[c] = lu
            while len(cache) > self._max_factorizations:
                cache.popitem(last=False)
        else:
            cache.move_to_end(c)
        return np.ascontiguousarray(lu.solve(np.asfortranarray(V.T)).T)

    def _solve_blocks(self, V: Any, c: float) -> Any:
        r"""``V (I + c K)^{-1}`` for V held in task blocks elsewhere, without the T x T
        factorization: every row of V by preconditioned conjugate gradients on the symmetric,
        strictly diagonally dominant ``I + c K`` (Jacobi, ``1 + 2 c d``; condition number at
        most ``1 + 4 c max d``), to the rounding of the in-memory solve (each row's residual
        below ``1e-15`` of its start in the preconditioned norm). A step is one product along
        the graph (the neighbours' columns) and p inner products brought home; the rows of W
        stay in their blocks. At most ``2 T + 50`` steps (T in exact arithmetic)."""
        inv = 1.0 / (1.0 + 2.0 * c * self._graph().degree)

        def times(X):  # X (I + c K)
            return X + c * self.apply(X)

        def row_dots(A, B) -> np.ndarray:
            return np.asarray(np.einsum("ij,ij->i", A, B), dtype=np.float64)

        X = V * inv
        R = V - times(X)
        P = R * inv
        rz = row_dots(R, P)
        floor = 1e-30 * row_dots(V, V * inv)  # ((1e-15)^2 of the start's size)
        for _ in range(2 * V.shape[1] + 50):
            live = rz > floor
            if not live.any():
                break
            AP = times(P)
            pAp = row_dots(P, AP)
            step = np.where(live & (pAp > 0), rz / np.where(pAp > 0, pAp, 1.0), 0.0)[:, None]
            X, R = X + step * P, R - step * AP
            Z = R * inv
            rz_new = row_dots(R, Z)
            beta = np.where(live & (rz > 0), rz_new / np.where(rz > 0, rz, 1.0), 0.0)[:, None]
            P, rz = Z + beta * P, np.where(live, rz_new, 0.0)
        return X

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        a, b = self.A, other.A  # type: ignore[attr-defined]
        if not (sp.issparse(a) or sp.issparse(b)):
            return super().__eq__(other)
        try:
            a, b = _as_csr(a), _as_csr(b)
        except ValueError:
            return False
        return a.shape == b.shape and (a != b).nnz == 0

    __hash__ = Penalty.__hash__

    def __repr__(self) -> str:
        if sp.issparse(self.A):
            return f"GraphLaplacian(A=<sparse {self.A.shape}>)"
        return super().__repr__()


class ClassMean(MeanRegularized):
    r"""The mean penalty on the classes' layout of the multinomial loss: every column
    (t, c) pulled towards the mean of the columns of class label c over the tasks that have
    it,

    .. math::

        \Omega(W) = \frac{\alpha}{2} \Big(\sum_c \sum_{t \ni c}
        \|w_{tc} - \bar w_c\|_2^2 + r \|W\|_F^2\Big), \qquad
        \bar w_c = \frac{1}{n_c} \sum_{t \ni c} w_{tc},

    the task kernel ``K = (1 + r) I - sum_c 1_c 1_c^T / n_c`` (block diagonal over the
    classes; a class of one task is shrunk by the ridge only). Built by
    ``MeanRegularized(r).on_classes(layout)``; every product goes through the class means
    (one ``np.add.reduceat`` over the columns sorted by class), K is never formed.

    Parameters
    ----------
    ridge : float, default=0.0
        ``r >= 0``.
    label : array-like of int
        Each column's class (the layout's ``label``).
    """

    registered = False
    _param_names = ("ridge", "label")
    pulls_to_mean = False  # (a mean per class label)
    cone_program = None  # (a mean per class label: not the mean task's pull)
    splits_prox = False  # (one mean per class label: not the mean task's split)

    def __init__(self, ridge: float = 0.0, label: Any = ()):
        self.ridge = ridge
        self.label = label

    def on_classes(self, layout: Any) -> Penalty:
        """Itself: it already acts on the classes' layout."""
        return self

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_positive(self.ridge, "ridge", strict=False)
        if np.size(self.label) != n_tasks:
            raise ValueError(f"{self!r}: its labels name {np.size(self.label)} columns, the "
                             f"problem has {n_tasks}.")
        return self

    def _classes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(order, starts, counts, group): the columns sorted by class, where each class
        starts among them, its number of columns, each column's class rank; kept while
        ``label`` is the same object."""
        cache = getattr(self, "_class_cache", None)
        if cache is None or cache[0] is not self.label:
            label = np.asarray(self.label, dtype=np.int64)
            order = np.argsort(label, kind="stable")
            ranked = label[order]
            starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
            counts = np.diff(np.r_[starts, label.size])
            group = np.empty_like(label)
            group[order] = np.repeat(np.arange(starts.size), counts)
            cache = (self.label, (order, starts, counts, group))
            self._class_cache = cache
        return cache[1]

    def _class_means(self, V: np.ndarray) -> np.ndarray:
        """Each column's class mean, ``bar w_{c(t)}`` as a (p, sum_t K_t) array."""
        order, starts, counts, group = self._classes()
        if is_blocked(V):  # the p x (labels) means from each chunk's sums, spread back there
            S = np.zeros((V.shape[1], counts.size))
            S[np.arange(V.shape[1]), group] = 1.0 / counts[group]
            return (V @ S)[:, group].rechunk(V.chunks)
        return (np.add.reduceat(V[:, order], starts, axis=1) / counts)[:, group]

    def kernel(self, n_tasks: int) -> np.ndarray:
        """K as a dense array (inspection only)."""
        label = np.asarray(self.label)
        same = (label[:, None] == label[None, :]).astype(np.float64)
        return (1.0 + float(self.ridge)) * np.eye(n_tasks) - same / same.sum(axis=0)

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W K = (1 + r) W - (class means)``."""
        W = as_float(W)
        return (1.0 + float(self.ridge)) * W - self._class_means(W)

    def kernel_diagonal(self, n_tasks: int) -> np.ndarray:
        """``1 + r - 1 / n_c`` for a column of class c."""
        label = np.asarray(self.label, dtype=np.int64)
        return 1.0 + float(self.ridge) - 1.0 / np.bincount(label)[label]

    def value(self, V: np.ndarray, alpha: float) -> float:
        V = as_float(V)
        D = V - self._class_means(V)
        return float(0.5 * alpha * (inner(D, D) + float(self.ridge) * inner(V, V)))

    def _solve(self, V: np.ndarray, c: float) -> np.ndarray:
        # per class, K has eigenvalue r on the class's constant direction, 1 + r off it
        r = float(self.ridge)
        m = self._class_means(V)
        return (V - m) / (1.0 + c * (1.0 + r)) + m / (1.0 + c * r)

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``(||G - M||^2 / (1 + r) + ||M||^2 / r) / (2 alpha)`` with M the class means of G
        on every column; finite only with ``ridge > 0``."""
        r = float(self.ridge)
        if r <= 0:
            raise ValueError(f"{self!r} has a singular task kernel: no finite conjugate.")
        G = as_float(G)
        M = self._class_means(G)
        D = G - M
        return float((inner(D, D) / (1.0 + r) + inner(M, M) / r) / (2.0 * alpha))


class ClassGraph(GraphLaplacian):
    """The graph penalty on the classes' layout: a :class:`~regmtl.GraphLaplacian` over the class
    columns, built by ``GraphLaplacian(A).on_classes(layout)`` from
    :func:`~regmtl.penalties.coupling.class_adjacency`."""

    registered = False

    def on_classes(self, layout: Any) -> Penalty:
        """Itself: its graph already joins class columns."""
        return self


def class_adjacency(A: sp.csr_matrix, layout: Any) -> sp.csr_matrix:
    """The task graph lifted to the class columns: ``A[t, s]`` between columns (t, c) and
    (s, c) for every class label c of both tasks; sparse, ``nnz(A)`` times the number of
    labels at most (nothing of size T x T).

    Parameters
    ----------
    A : scipy.sparse.csr_matrix of shape (T, T)
        A validated task adjacency.
    layout : ClassLayout
        The classes' layout.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (sum_t K_t, sum_t K_t)
    """
    label = np.asarray(layout.label, dtype=np.int64)
    task = layout.task
    n_labels = int(label.max()) + 1 if label.size else 0
    column = np.full((layout.n_tasks, n_labels), -1, dtype=np.int64)
    column[task, label] = np.arange(label.size)
    E = A.tocoo()
    R, C = column[E.row], column[E.col]  # (nnz, labels): the edge's column in each class
    both = (R >= 0) & (C >= 0)
    w = np.broadcast_to(E.data[:, None], R.shape)[both]
    n = label.size
    return sp.csr_matrix((w, (R[both], C[both])), shape=(n, n))


def chain_graph(n_tasks: int, weight: float = 1.0) -> sp.csr_matrix:
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
    scipy.sparse.csr_matrix of shape (n_tasks, n_tasks)
        Symmetric tridiagonal adjacency: ``A[t, t + 1] = A[t + 1, t] = weight``, no other
        entries (2 (T - 1) stored). Pass it to :class:`~regmtl.GraphLaplacian`.

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
    >>> A.toarray().astype(int).tolist()
    [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    >>> penalty = GraphLaplacian(A)
    """
    if int(n_tasks) < 1:
        raise ValueError(f"n_tasks must be >= 1; got {n_tasks!r}.")
    check_positive(weight, "weight")
    T = int(n_tasks)
    idx = np.arange(T - 1)
    rows = np.concatenate([idx, idx + 1])
    cols = np.concatenate([idx + 1, idx])
    A = sp.csr_matrix((np.full(2 * (T - 1), float(weight)), (rows, cols)), shape=(T, T))
    A.sort_indices()
    return A


def knn_graph(Z: Any, k: int = 5, *, weights: str = "connectivity") -> sp.csr_matrix:
    """Symmetric k-nearest-neighbour adjacency of tasks described by the rows of ``Z``.

    An edge joins tasks s and t when either is among the other's ``k`` nearest (Euclidean
    distance between rows of ``Z``). The neighbours come from a tree index
    (:class:`sklearn.neighbors.NearestNeighbors`: a k-d tree for up to 15 descriptors, a ball
    tree beyond), so memory is O(T k), never T x T.

    Parameters
    ----------
    Z : array-like of shape (T, d)
        One row per task: task descriptors (location, age, ...) or single-task coefficient
        vectors.
    k : int, default=5
        Number of neighbours, 1 <= k < T.
    weights : {"connectivity", "heat"}, default="connectivity"
        Edge weight: 1, or ``exp(-d^2 / median(d^2))`` with ``d`` the distance and the
        median over the T k (task, neighbour) pairs kept.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (T, T)
        Symmetric adjacency with no diagonal entries, for :class:`~regmtl.GraphLaplacian`.

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
    >>> knn_graph(Z, k=1).toarray().astype(int).tolist()
    [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    """
    from sklearn.neighbors import NearestNeighbors

    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or not np.all(np.isfinite(Z)):
        raise ValueError("Z must be a finite 2-D array with one row per task.")
    T = Z.shape[0]
    if not (1 <= int(k) < T):
        raise ValueError(f"k must be in 1..{T - 1} (neighbours among {T} tasks); got {k!r}.")
    if weights not in ("connectivity", "heat"):
        raise ValueError(f"weights must be 'connectivity' or 'heat'; got {weights!r}.")
    k = int(k)
    tree = "kd_tree" if Z.shape[1] <= 15 else "ball_tree"
    index = NearestNeighbors(n_neighbors=k, algorithm=tree).fit(Z)
    dist, nn = index.kneighbors()  # each task's k nearest others (itself excluded)
    rows = np.repeat(np.arange(T), k)
    if weights == "connectivity":
        w = np.ones(T * k)
    else:
        d2 = dist.ravel() ** 2
        median = float(np.median(d2))
        w = np.exp(-d2 / (median if median > 0 else 1.0))
    A = sp.csr_matrix((w, (rows, nn.ravel())), shape=(T, T))
    A = A.maximum(A.T).tocsr()
    A.sort_indices()
    return A


def _blocked_product(W, A):
    """``W A`` for W held in column blocks (a Dask array, p x T) and a sparse symmetric A:
    block k of the result needs only the columns of W that are neighbours of its tasks along
    A, gathered from the blocks that hold them (the graph's neighbour exchange)."""
    A = sp.csr_matrix(A)
    bounds = np.concatenate([[0], np.cumsum(W.chunks[1])]).astype(np.int64)
    parts = []
    for k in range(len(bounds) - 1):
        rows = A[bounds[k]:bounds[k + 1]]
        cols = np.unique(rows.indices)
        if cols.size == 0:
            parts.append(W[:, bounds[k]:bounds[k + 1]] * 0.0)
            continue
        local = rows[:, cols].T.tocsr()  # (|cols|, T_k): W[:, cols] @ local
        Wk = W[:, cols].rechunk({1: -1})
        parts.append(Wk.map_blocks(_times_sparse, local, chunks=(W.shape[0],
                                                                bounds[k + 1] - bounds[k]),
                                   dtype=np.float64))
    return np.concatenate(parts, axis=1)  # (dispatched to the blocks' own concatenate)


def _times_sparse(Wk, local):
    return np.asarray((local.T @ Wk.T).T)
