r"""Information criteria and the degrees of freedom they charge.

For a fit ``(W, b)`` on N observed rows (weighted counts with sample weights)::

    AIC = -2 log L + 2 df          BIC = -2 log L + log(N) df

``-2 log L``: the squared loss is read as a Gaussian model with one noise variance per task,
profiled out: ``sum_t m_t (log(2 pi RSS_t / m_t) + 1)`` with ``m_t`` the task's observed rows
and ``RSS_t`` its residual sum of squares; the logistic loss gives the Bernoulli deviance
``2 sum_r s_r log(1 + exp(-y_r f_r))``. Task weights of the objective do not enter the
likelihood; the T noise variances are the same for every alpha and are not counted.

Degrees of freedom (``df`` includes the T intercepts when they are fitted):

==========================================  ===================================================
penalty                                     df
==========================================  ===================================================
``L1``, ``L21``, ``Dirty`` (l1_ratio = 1)   nonzero entries of W (the active set: Zou, Hastie &
                                            Tibshirani 2007 for the lasso; a count for L2,1)
``MCP``, ``SCAD``, ``CappedL1``             nonzero entries of W (the active set, as for L1 /
                                            L2,1; for these nearly unbiased penalties it is
                                            also the least-squares count of the support)
``L2``, ``MeanRegularized``,                ``tr((D + R)^{-1} D)``: the trace of the hat matrix
``GraphLaplacian``, ``Clustered``           for the squared loss (the IRLS hat matrix at the
``ElasticNet``, ``L21`` with l1_ratio < 1   solution for the logistic loss) over the active
                                            coordinates and the intercepts, with D the Hessian
                                            of the data term and R that of the quadratic part of
                                            the penalty (``Clustered``: at the fitted M)
``SharedStructure``                         ``sum_t tr((D_t + R)^{-1} D_t)``, the hat-matrix
                                            trace task by task, R = 2 alpha eta (1 + eta)
                                            (eta I + M)^{-1} (p x p, at the fitted M)
``Trace``                                   ``r (p + T - r)``, the dimension of rank-r p x T
                                            matrices (r = rank of W)
``SparseLowRank``                           ``r (p + T - r)`` of the low-rank part plus the
                                            nonzero entries of the sparse part
``RobustLowRank``                           ``r (p + T_in - r) + p k``: the dimension of the
                                            p x T matrices of rank r on the T_in inlier tasks
                                            with k = T - T_in free outlier columns (r = rank
                                            of the low-rank part on the inliers)
``RobustFeatures``                          nonzero entries of W (the shared rows on the
                                            inlier tasks plus the outlier tasks' columns)
``TemporalGroupLasso``                      ``tr((D + R)^{-1} D)`` over the nonzero rows of W
                                            (every time point of a selected feature) and the
                                            intercepts, R = alpha (s R R^T + r I) across tasks
``FusedGroupLasso``                         the nonzero constant pieces of the rows of W (runs
                                            of equal nonzero values in time: Tibshirani &
                                            Taylor 2011 for the fused lasso)
==========================================  ===================================================

The hat-matrix traces are exact for the separable penalties (one batched solve over the task
blocks, O(T q^2) memory, q = p + 1). For the coupled ones (``MeanRegularized``,
``GraphLaplacian``, ``Clustered``) the ``T q``-square system is formed only up to
``EXACT_COUPLED`` rows; beyond, the trace is a Hutchinson estimate (Rademacher probes, each one
conjugate-gradient solve with the task blocks as preconditioner and the coupling applied as
``W K``), with its standard error, in memory linear in T.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import (
    L1,
    L2,
    L21,
    Clustered,
    Dirty,
    ElasticNet,
    GraphLaplacian,
    MeanRegularized,
    Penalty,
    RobustFeatures,
    RobustLowRank,
    SharedStructure,
    SparseLowRank,
    Trace,
)
from ..penalties.temporal import FusedGroupLasso, TemporalGroupLasso
from ..taskdata import TaskData

__all__ = ["degrees_of_freedom", "neg2_log_likelihood", "information_criterion",
           "observed_weights",
           "MAX_COUPLED", "EXACT_COUPLED"]

#: Largest T (p + 1) for which the coupled penalties' hat matrix may be formed (exactly,
#: ``method="exact"``).
MAX_COUPLED = 8000
#: Largest T (p + 1) for which ``method="auto"`` forms it; beyond, its trace is a Hutchinson
#: estimate with a standard error (the exact solve costs O((T q)^3): seconds at this size).
EXACT_COUPLED = 2000


def _rank(M: np.ndarray) -> int:
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > 1e-8 * s.max())) if s.size and s.max() > 0 else 0


def _low_rank_df(M: np.ndarray) -> int:
    r = _rank(M)
    p, T = M.shape
    return r * (p + T - r)


def _curvature(data: TaskData, datafit: Datafit, f: np.ndarray) -> np.ndarray:
    """``h_r = c_r l''(f_r)``: the row weights of the data term's Hessian."""
    if datafit.name == "logistic":
        prob = 0.5 * (1.0 + np.tanh(0.5 * f))
        return data.c * prob * (1.0 - prob)
    return data.c.copy()


def _task_grams(data: TaskData, h: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``D_t = Z_t^T diag(h_t) Z_t`` of every task, shape (T, q, q), ``Z_t = [X_t, 1]``
    (q = p + 1 with intercepts, else p).

    Batched over tasks of equal size (one matrix product per chunk of them), no loop over
    tasks: O(T q^2) memory, O(N q^2) time.
    """
    p, T = data.n_features, data.n_tasks
    q = p + int(fit_intercept)
    out = np.zeros((T, q, q))
    max_rows = 1 << 17  # rows gathered per chunk

    def design(rows: np.ndarray) -> np.ndarray:
        Xr = data.X[rows]
        Xr = Xr.toarray() if sp.issparse(Xr) else np.asarray(Xr, dtype=np.float64)
        if fit_intercept:
            Xr = np.column_stack([Xr, np.ones(len(rows))])
        return Xr

    if data.shared:
        n = int(data.indptr[1])
        Z = design(np.arange(n))
        H = h.reshape(T, n)
        step = max(1, max_rows // max(n, 1))
        for a in range(0, T, step):
            out[a:a + step] = (Z.T[None] * H[a:a + step, None, :]) @ Z
        return out
    sizes = np.diff(data.indptr)
    for size in np.unique(sizes):
        if size == 0:
            continue
        tasks = np.flatnonzero(sizes == size)
        step = max(1, max_rows // int(size))
        for a in range(0, len(tasks), step):
            tk = tasks[a:a + step]
            rows = (data.indptr[tk][:, None] + np.arange(size)).ravel()
            Z = design(rows).reshape(len(tk), size, q)
            out[tk] = (Z * h[rows].reshape(len(tk), size, 1)).transpose(0, 2, 1) @ Z
    return out


def _trace_solve(A: np.ndarray, D: np.ndarray) -> float:
    """``tr(A^{-1} D)`` for the PSD ``A = D + R``; directions where both vanish (a feature
    constant within a task next to its intercept) get a tiny ridge and contribute 0."""
    from scipy.linalg import LinAlgError, solve

    jitter = 1e-10 * max(float(np.trace(A)) / max(len(A), 1), np.finfo(float).tiny)
    try:
        X = solve(A + jitter * np.eye(len(A)), D, assume_a="pos")
    except LinAlgError:
        X = np.linalg.lstsq(A, D, rcond=None)[0]
    return float(np.trace(X))


def _separable_trace(D: np.ndarray, active: np.ndarray, ridge: np.ndarray, p: int) -> float:
    """``sum_t tr((D_t + R_t)^{-1} D_t)`` over task t's active coordinates and intercept, all
    tasks in one batched solve (the jitter of :func:`_trace_solve`, per task)."""
    T, q = D.shape[:2]
    keep = np.ones((T, q), dtype=bool)
    keep[:, :p] = active.T
    n_keep = keep.sum(axis=1)
    mask = keep[:, :, None] & keep[:, None, :]
    Dm = np.where(mask, D, 0.0)
    A = Dm.copy()
    diag = np.einsum("tii->ti", A)  # a view: writes go to A
    diag[:, :p] += np.where(active.T, ridge[:, None], 0.0)
    tr_A = diag.sum(axis=1)
    jitter = 1e-10 * np.maximum(tr_A / np.maximum(n_keep, 1), np.finfo(float).tiny)
    diag += np.where(keep, jitter[:, None], 1.0)  # dropped coordinates: identity, D = 0
    try:
        X = np.linalg.solve(A, Dm)
        if not np.all(np.isfinite(X)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:  # the exact per-task rule (lstsq where singular)
        total = 0.0
        for t in np.flatnonzero(n_keep):
            k = np.flatnonzero(keep[t])
            Dt = D[t][np.ix_(k, k)]
            R = np.zeros(len(k))
            R[k < p] = ridge[t]
            total += _trace_solve(Dt + np.diag(R), Dt)
        return total
    return float(np.einsum("tii->", X[n_keep > 0]))


def _kernel_operator(penalty: Penalty, T: int, structure: dict, W: np.ndarray):
    """``(apply, diag)`` of the coupled penalty's task kernel K: ``apply(X) = X K`` for X of
    shape (m, T) in O(m T) (O(m nnz) for a graph), ``diag`` its diagonal (T,).

    ``MeanRegularized`` and ``GraphLaplacian`` through their ``apply`` and
    ``kernel_diagonal`` (the dense ``kernel(T)`` only where those are missing and T is small);
    ``Clustered``: ``K = 2 eta (1 + eta) (eta I + M)^{-1}`` through the factors of M,
    ``(eta I + M)^{-1} = I / (eta + m0) + V diag(1 / (eta + m) - 1 / (eta + m0)) V^T``.
    """
    if isinstance(penalty, Clustered):
        V, m, m0 = _cluster_factors(penalty, structure, W)
        eta = float(penalty.eta)
        scale = 2.0 * eta * (1.0 + eta)
        c0 = 1.0 / (eta + m0)
        d = 1.0 / (eta + m) - c0

        def apply(X: np.ndarray) -> np.ndarray:
            return scale * (c0 * X + ((X @ V) * d) @ V.T)

        return apply, scale * (c0 + (V * V) @ d)
    try:
        diag = np.asarray(penalty.kernel_diagonal(T), dtype=np.float64)
        penalty.apply(np.zeros((1, T)))
        return penalty.apply, diag
    except (AttributeError, NotImplementedError):
        pass
    if T > MAX_COUPLED:
        raise ValueError(f"criterion: {penalty!r} has no apply (W K without forming K); its "
                         f"{T} x {T} kernel is too large. Use criterion='cv'.")
    K = penalty.kernel(T)
    return (lambda X: X @ K), np.diag(K).copy()


def _cluster_factors(penalty: Clustered, structure: dict, W: np.ndarray):
    """(V, m, m0) of the fitted M: from the structure's factors, a dense ``cluster_matrix_``
    (older structures) or W."""
    if "cluster_vectors_" in structure:
        return (np.asarray(structure["cluster_vectors_"]),
                np.asarray(structure["cluster_weights_"]), float(structure["cluster_rest_"]))
    M = structure.get("cluster_matrix_")
    if M is not None:
        m, V = np.linalg.eigh(np.asarray(M))
        return V, m, 0.0
    return penalty.cluster_factors(W)


def _chain_kernel(penalty: TemporalGroupLasso, T: int):
    """``(apply, diag)`` of the temporal group lasso's task kernel ``K = s R R^T + r I`` (R the
    differences of consecutive tasks): ``X K`` in O(m T) through the chain's neighbours."""
    s, r = float(penalty.smooth_weight), float(penalty.ridge_weight)
    deg = np.full(T, 2.0)
    deg[[0, -1]] = 1.0
    if T == 1:
        deg[0] = 0.0

    def apply(X: np.ndarray) -> np.ndarray:
        XL = X * deg
        XL[:, 1:] -= X[:, :-1]
        XL[:, :-1] -= X[:, 1:]
        return s * XL + r * X

    return apply, s * deg + r


def _fused_pieces(W: np.ndarray) -> int:
    """The nonzero constant pieces of the rows of W: per row, the runs of consecutive equal
    values (to ``1e-9`` of the row's largest entry) that are not zero."""
    total = 0
    for row in W:
        big = float(np.abs(row).max(initial=0.0))
        if big == 0.0:
            continue
        starts = np.concatenate([[True], np.abs(np.diff(row)) > 1e-9 * big])
        total += int(np.count_nonzero(starts & (row != 0.0)))
    return total


def _exact_coupled(D: np.ndarray, apply_K, alpha: float, p: int) -> float:
    """``tr((D + alpha K (x) P)^{-1} D)`` formed densely (T q <= MAX_COUPLED)."""
    T, q = D.shape[:2]
    K = apply_K(np.eye(T))  # I K
    Dfull = np.zeros((T * q, T * q))
    for t in range(T):  # T <= MAX_COUPLED / q blocks
        Dfull[t * q:(t + 1) * q, t * q:(t + 1) * q] = D[t]
    proj = np.zeros((q, q))
    proj[np.arange(p), np.arange(p)] = 1.0  # the penalty does not touch the intercepts
    return _trace_solve(Dfull + alpha * np.kron(K, proj), Dfull)


def _pcg(matvec, precond, B: np.ndarray, X: np.ndarray, tol: float, max_iter: int):
    """Preconditioned conjugate gradients on the columns of the (T, q, s) blocks ``B`` at
    once (one step size per column); returns (X, iterations, worst relative residual)."""
    R = B - matvec(X)
    Z = precond(R)
    Dir = Z.copy()
    rz = np.einsum("tqs,tqs->s", R, Z)
    bnorm = np.sqrt(np.einsum("tqs,tqs->s", B, B))
    bnorm[bnorm == 0] = 1.0
    it = 0
    res = np.sqrt(np.einsum("tqs,tqs->s", R, R)) / bnorm
    while it < max_iter and res.max() > tol:
        AD = matvec(Dir)
        dad = np.einsum("tqs,tqs->s", Dir, AD)
        a = np.where(dad > 0, rz / np.where(dad > 0, dad, 1.0), 0.0)
        X += Dir * a
        R -= AD * a
        Z = precond(R)
        rz_new = np.einsum("tqs,tqs->s", R, Z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        Dir = Z + Dir * beta
        rz = rz_new
        it += 1
        res = np.sqrt(np.einsum("tqs,tqs->s", R, R)) / bnorm
    return X, it, float(res.max())


#: Hutchinson estimate: probes per batch (solved together), fewest and most probes, relative
#: standard error aimed at, conjugate-gradient tolerance (relative residual) and iterations
HUTCHINSON_BATCH = 4
HUTCHINSON_MIN_PROBES = 8
HUTCHINSON_MAX_PROBES = 256
HUTCHINSON_REL_SE = 0.01
_CG_TOL = 1e-8
_CG_MAX_ITER = 1000


def _hutchinson_coupled(D: np.ndarray, apply_K, kdiag: np.ndarray, alpha: float, p: int,
                        random_state: Any, rel_se: float,
                        max_probes: int) -> tuple[float, float, int]:
    """Randomized ``tr((D + alpha K (x) P)^{-1} D)``: (estimate, standard error, probes).

    With ``A = D + alpha K (x) P + j I`` (j: the jitter of :func:`_trace_solve`) and its
    block-diagonal part ``B = blockdiag(D_t + alpha K_tt P + j I)``, the trace is
    ``tr(B^{-1} D)`` (exact, per task) plus ``tr((A^{-1} - B^{-1}) D)``, estimated by the mean
    of ``z^T (A^{-1} - B^{-1}) D z`` over Rademacher probes z (Hutchinson; the exact part is
    a control variate, so only the coupling's share is random). Each probe is one solve with
    A by conjugate gradients preconditioned by B, O(T q^2) per iteration; probes come in
    batches of ``HUTCHINSON_BATCH`` until the standard error of the mean (sample standard
    deviation / sqrt(probes)) is at most ``rel_se`` times the estimate (after at least
    ``HUTCHINSON_MIN_PROBES``), or ``max_probes``.
    """
    import warnings

    T, q = D.shape[:2]
    rng = np.random.default_rng(random_state)
    tr_A = float(np.einsum("tii->", D)) + alpha * float(kdiag.sum()) * p
    jitter = 1e-10 * max(tr_A / (T * q), np.finfo(float).tiny)
    Bd = D.copy()
    diag = np.einsum("tii->ti", Bd)
    diag[:, :p] += alpha * kdiag[:, None]
    diag += jitter
    Binv = np.linalg.inv(Bd)
    del Bd
    exact_part = float(np.einsum("tij,tji->", Binv, D))

    def matvec(X: np.ndarray) -> np.ndarray:  # X: (T, q, s)
        Y = D @ X
        Y += jitter * X
        s = X.shape[2]
        # the probes' weights as one (p s) x T matrix W (a transposed view of a task-major
        # copy), so W K = (K W^T)^T comes back task-major
        Wt = np.ascontiguousarray(X[:, :p, :]).reshape(T, p * s)
        Y[:, :p, :] += alpha * apply_K(Wt.T).T.reshape(T, p, s)
        return Y

    def precond(R: np.ndarray) -> np.ndarray:
        return Binv @ R

    samples: list[np.ndarray] = []
    worst, iters = 0.0, 0
    while True:
        s = min(HUTCHINSON_BATCH, max_probes - sum(len(x) for x in samples))
        Zp = rng.integers(0, 2, size=(T, q, s)).astype(np.float64) * 2.0 - 1.0
        Bz = D @ Zp
        X0 = Binv @ Bz
        X, it, res = _pcg(matvec, precond, Bz, X0.copy(), _CG_TOL, _CG_MAX_ITER)
        worst, iters = max(worst, res), max(iters, it)
        samples.append(np.einsum("tqs,tqs->s", Zp, X - X0))
        vals = np.concatenate(samples)
        est = exact_part + float(vals.mean())
        se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else np.inf
        if len(vals) >= max_probes or (len(vals) >= HUTCHINSON_MIN_PROBES
                                        and se <= rel_se * abs(est)):
            break
    if worst > 1e-6:
        warnings.warn(f"criterion: the conjugate-gradient solves of the degrees-of-freedom "
                      f"estimate stopped at a relative residual of {worst:.1e} after {iters} "
                      "iterations; the estimate is approximate beyond its standard error.",
                      UserWarning, stacklevel=4)
    return est, se, len(vals)


def degrees_of_freedom(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray | None,
    structure: dict[str, Any] | None = None,
    fit_intercept: bool = True,
    *,
    method: str = "auto",
    random_state: Any = 0,
    rel_se: float = HUTCHINSON_REL_SE,
    max_probes: int = HUTCHINSON_MAX_PROBES,
    return_std: bool = False,
) -> float | tuple[float, float]:
    """Degrees of freedom of a fit, the ``df`` that AIC and BIC charge.

    By penalty (``df`` includes the T intercepts when they are fitted):

    - ``L1``, ``L21``, ``ElasticNet`` with ``l1_ratio=1``, ``Dirty``: the number of nonzero
      entries of W (the active set; Zou, Hastie & Tibshirani 2007 for the lasso);
    - ``MCP``, ``SCAD``, ``CappedL1`` (entries or rows): the number of nonzero entries of W,
      the active set as for ``L1`` / ``L21``;
    - ``L2``, ``ElasticNet`` and ``L21`` with ``l1_ratio < 1``, ``MeanRegularized``,
      ``GraphLaplacian``, ``Clustered``: ``tr((D + R)^{-1} D)``, the trace of the hat matrix
      (for the logistic loss, the IRLS hat matrix at the solution) over the active
      coordinates and the intercepts, D the Hessian of the data term and R that of the
      quadratic part of the penalty (``Clustered``: at the fitted M); with ``positive=True``
      the active coordinates are the nonzero entries (the sign constraint holds the others);
    - ``SharedStructure``: ``sum_t tr((D_t + R)^{-1} D_t)``, as for the coupled penalties:
      at the fitted M the penalty is ``alpha eta (1 + eta) sum_t w_t^T (eta I + M)^{-1} w_t``,
      separable over the tasks, its Hessian ``R = 2 alpha eta (1 + eta) (eta I + M)^{-1}``
      one p x p block for every task (exact, T solves of size p + 1);
    - ``Trace``: ``r (p + T - r)``, the dimension of the p x T matrices of rank r = rank W;
    - ``SparseLowRank``: that of the low-rank part plus the nonzero entries of the sparse
      part;
    - ``RobustLowRank``: ``r (p + T_in - r) + p k``, the dimension of the p x T matrices whose
      columns on the ``T_in`` inlier tasks have rank r (r the rank of the low-rank part
      ``P_`` there) and whose ``k = T - T_in`` outlier columns (the nonzero rows of ``Q_``)
      are free: the low-rank count of ``Trace`` with every outlier task charged p;
    - ``RobustFeatures``: the number of nonzero entries of W, as for ``L21``: the shared
      rows on the inlier tasks plus the outlier tasks' columns;
    - ``TemporalGroupLasso``: ``tr((D + R)^{-1} D)`` as for the coupled penalties, over every
      time point of the features selected (the nonzero rows of W) and the intercepts, with
      ``R = alpha (s R R^T + r I)`` the Hessian of the quadratic part across tasks (as for
      ``L21`` with ``l1_ratio < 1``, the group norm's curvature is not charged);
    - ``FusedGroupLasso``: the number of nonzero constant pieces of the rows of W (runs of
      equal consecutive values, to ``1e-9`` of the row's largest entry, that are not 0): the
      degrees of freedom of the fused lasso (Tibshirani & Taylor 2011).

    Parameters
    ----------
    data : TaskData
        The training problem (:func:`~regmtl.as_task_data`).
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        The fitted penalty.
    alpha : float
        The fitted strength.
    W : ndarray of shape (p, T)
        Coefficients (an estimator's ``coef_matrix_``).
    b : ndarray of shape (T,) or None
        Intercepts.
    structure : dict, optional
        The penalty's fitted structure (``P_`` and ``Q_`` for ``SparseLowRank`` and
        ``RobustLowRank``; the factors ``cluster_vectors_``, ``cluster_weights_``,
        ``cluster_rest_``, or a dense ``cluster_matrix_``, for ``Clustered``; recomputed
        from W when missing).
    fit_intercept : bool, default=True
        Whether the intercepts were fitted (and count).
    method : {"auto", "exact", "hutchinson"}, default="auto"
        How the coupled penalties' (``MeanRegularized``, ``GraphLaplacian``, ``Clustered``)
        hat-matrix trace is computed. ``"exact"`` forms the ``T q``-square matrix
        (q = p + 1 with intercepts), at most ``MAX_COUPLED`` (8000) rows. ``"hutchinson"``
        estimates it: the exact trace of its block-diagonal part (per task) plus the mean of
        ``z^T (A^{-1} - B^{-1}) D z`` over Rademacher probes z, each one solve of the
        penalized normal equations ``A v = D z`` by conjugate gradients preconditioned by the
        block-diagonal part B, with the coupling applied as ``W K`` (``penalty.apply``; for
        ``Clustered`` through the factors of M), O(T p^2) memory and time per iteration.
        ``"auto"``: exact up to ``EXACT_COUPLED`` (2000) rows, Hutchinson beyond. The separable
        penalties are always exact (one batched solve over the tasks).
    random_state : int, Generator or None, default=0
        Seeds the Hutchinson probes (the estimate is deterministic for a fixed seed).
    rel_se : float, default=0.01
        Probes are drawn (at least 8, in batches of 4) until the standard error of the
        Hutchinson mean (sample standard deviation of the probes / sqrt(probes)) is at most
        ``rel_se`` times the estimate ...
    max_probes : int, default=256
        ... or this many probes were drawn.
    return_std : bool, default=False
        Also return the standard error of the estimate (0.0 where it is exact).

    Returns
    -------
    df : float
        The degrees of freedom.
    df_std : float
        With ``return_std``: the standard error of ``df`` (0.0 when exact).

    Raises
    ------
    ValueError
        For a penalty with no estimate, or ``method="exact"`` for a coupled penalty on a
        problem too large for its hat matrix (more than ``MAX_COUPLED`` rows).

    Warns
    -----
    UserWarning
        If the conjugate-gradient solves of the Hutchinson estimate did not converge.

    See Also
    --------
    regmtl.selection.information_criterion : AIC or BIC from it.
    regmtl.MultiTaskRegressorCV : ``criterion="aic"`` or ``"bic"`` uses it along a path.

    References
    ----------
    Zou, Hastie & Tibshirani (2007), "On the degrees of freedom of the lasso", The Annals of
    Statistics 35(5).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection import (degrees_of_freedom, information_criterion,
    ...                               neg2_log_likelihood)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 6))
    >>> W = np.zeros((6, 2))
    >>> W[:2] = 1.0
    >>> Y = X @ W + 0.5 * rng.standard_normal((50, 2))
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, Y)
    >>> data = rm.as_task_data(X, Y)
    >>> df = degrees_of_freedom(data, rm.Quadratic(), rm.L21(), 0.05,
    ...                         model.coef_matrix_, model.intercept_)
    >>> bool(df == np.count_nonzero(model.coef_) + 2)  # the active set and two intercepts
    True
    """
    if method not in ("auto", "exact", "hutchinson"):
        raise ValueError(f"method={method!r} is not 'auto', 'exact' or 'hutchinson'.")
    p, T = W.shape
    n_icpt = T if fit_intercept else 0
    structure = structure or {}
    nonzero = W != 0.0

    def out(df: float, std: float = 0.0):
        return (float(df), float(std)) if return_std else float(df)

    sparse = isinstance(penalty, (L1, L21, ElasticNet)) and penalty.rho == 1.0
    if sparse or penalty.nonconvex or isinstance(penalty, (Dirty, RobustFeatures)):
        return out(np.count_nonzero(nonzero) + n_icpt)
    if isinstance(penalty, Trace):
        return out(_low_rank_df(W) + n_icpt)
    if isinstance(penalty, SparseLowRank):
        P = np.asarray(structure.get("P_", np.zeros((T, p))))
        Q = np.asarray(structure.get("Q_", W.T))
        return out(_low_rank_df(Q.T) + np.count_nonzero(P) + n_icpt)
    if isinstance(penalty, RobustLowRank):
        P = np.asarray(structure.get("P_", W.T)).T
        Q = np.asarray(structure.get("Q_", np.zeros((T, p)))).T
        outlier = np.any(Q != 0.0, axis=0)
        return out(_low_rank_df(P[:, ~outlier]) + p * np.count_nonzero(outlier) + n_icpt)
    if isinstance(penalty, FusedGroupLasso):
        return out(_fused_pieces(W) + n_icpt)
    if isinstance(penalty, TemporalGroupLasso):
        return out(*_temporal_df(data, datafit, penalty, alpha, W, b, fit_intercept, method,
                                 random_state, rel_se, max_probes))
    if isinstance(penalty, SharedStructure):
        return out(_shared_structure_df(data, datafit, penalty, alpha, W, b, fit_intercept))
    coupled = isinstance(penalty, (MeanRegularized, GraphLaplacian, Clustered))
    if not coupled and not isinstance(penalty, (L2, L1, L21, ElasticNet)):
        raise ValueError(f"criterion: no degrees-of-freedom estimate for {penalty!r}; use "
                         "criterion='cv'.")
    q = p + int(fit_intercept)
    if coupled and method == "exact" and T * q > MAX_COUPLED:
        raise ValueError(
            f"criterion: the exact degrees of freedom of this coupled penalty need a "
            f"{T * q}-square matrix (more than {MAX_COUPLED}); use method='hutchinson' (or "
            "'auto').")
    f = data.linear(W, b if fit_intercept else None)
    h = _curvature(data, datafit, f)
    D = _task_grams(data, h, fit_intercept)
    if not coupled:
        rho = penalty.rho
        if isinstance(penalty, L21) and not penalty.sign_constrained:
            # (under W >= 0 an entry at 0 of a nonzero row is held there by the constraint)
            active = np.repeat(np.any(nonzero, axis=1)[:, None], T, axis=1)
        elif isinstance(penalty, L2):
            active = np.ones_like(nonzero)
        else:
            active = nonzero
        return out(_separable_trace(D, active, np.full(T, alpha * (1.0 - rho)), p))
    apply_K, kdiag = _kernel_operator(penalty, T, structure, W)
    if method == "exact" or (method == "auto" and T * q <= EXACT_COUPLED):
        return out(_exact_coupled(D, apply_K, alpha, p))
    est, se, _ = _hutchinson_coupled(D, apply_K, kdiag, alpha, p, random_state, rel_se,
                                     max_probes)
    return out(est, se)


def _shared_structure_df(data, datafit, penalty: SharedStructure, alpha: float, W: np.ndarray,
                         b, fit_intercept: bool) -> float:
    """``sum_t tr((D_t + R)^{-1} D_t)`` with ``R = 2 alpha eta (1 + eta) (eta I + M)^{-1}`` on
    the p coefficients (not the intercept), M the fitted feature matrix by its factors."""
    p, T = W.shape
    E, m, m0 = penalty.side_factors(W)
    eta = float(penalty.eta)
    c0 = 1.0 / (eta + m0)
    R = (E * (1.0 / (eta + m) - c0)) @ E.T
    R[np.diag_indices(p)] += c0
    R *= 2.0 * alpha * eta * (1.0 + eta)
    f = data.linear(W, b if fit_intercept else None)
    D = _task_grams(data, _curvature(data, datafit, f), fit_intercept)
    A = D.copy()
    A[:, :p, :p] += R
    return float(sum(_trace_solve(A[t], D[t]) for t in range(T)))


def _temporal_df(data, datafit, penalty, alpha, W, b, fit_intercept, method, random_state,
                 rel_se, max_probes) -> tuple[float, float]:
    """(df, standard error) of the temporal group lasso: the coupled hat-matrix trace over
    the nonzero rows of W and the intercepts."""
    p, T = W.shape
    rows = np.flatnonzero(np.any(W != 0.0, axis=1))
    n_icpt = T if fit_intercept else 0
    if rows.size == 0:
        return float(n_icpt), 0.0
    q = rows.size + int(fit_intercept)
    if method == "exact" and T * q > MAX_COUPLED:
        raise ValueError(
            f"criterion: the exact degrees of freedom of this coupled penalty need a "
            f"{T * q}-square matrix (more than {MAX_COUPLED}); use method='hutchinson' (or "
            "'auto').")
    f = data.linear(W, b if fit_intercept else None)
    D = _task_grams(data, _curvature(data, datafit, f), fit_intercept)
    keep = np.concatenate([rows, [p]]) if fit_intercept else rows
    D = np.ascontiguousarray(D[:, keep][:, :, keep])
    apply_K, kdiag = _chain_kernel(penalty, T)
    if method == "exact" or (method == "auto" and T * q <= EXACT_COUPLED):
        return _exact_coupled(D, apply_K, alpha, rows.size), 0.0
    est, se, _ = _hutchinson_coupled(D, apply_K, kdiag, alpha, rows.size, random_state,
                                     rel_se, max_probes)
    return est, se


def observed_weights(data: TaskData) -> np.ndarray:
    """Sample weight of every flat observation, 0 where the label is missing (their sum is the
    N of BIC)."""
    s = np.ones(data.n_obs) if data.sample_weight is None else data.sample_weight.copy()
    if data.observed is not None:
        s = np.where(data.observed, s, 0.0)
    return s


def neg2_log_likelihood(data: TaskData, datafit: Datafit, f: np.ndarray) -> float:
    """Minus twice the log-likelihood of a fit, from its scores.

    The squared loss is read as a Gaussian model with one noise variance per task, profiled
    out: ``sum_t m_t (log(2 pi RSS_t / m_t) + 1)``, with ``m_t`` the task's observed rows
    (weighted by the sample weights) and ``RSS_t`` its residual sum of squares. The logistic
    loss gives the Bernoulli deviance ``2 sum_r s_r log(1 + exp(-y_r f_r))``. The task
    weights of the objective do not enter the likelihood. Each loss gives its own
    (:meth:`~regmtl.datafits.Datafit.neg2_log_likelihood`).

    Parameters
    ----------
    data : TaskData
        The problem, with its targets (-1/+1 for the logistic loss).
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    f : ndarray of shape (n_obs,)
        Scores of every flat observation (``data.linear(W, b)``).

    Returns
    -------
    float
        ``-2 log L``.

    Raises
    ------
    ValueError
        For a loss that is not a log-likelihood.

    See Also
    --------
    regmtl.selection.information_criterion : AIC or BIC from it.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection import (degrees_of_freedom, information_criterion,
    ...                               neg2_log_likelihood)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 6))
    >>> W = np.zeros((6, 2))
    >>> W[:2] = 1.0
    >>> Y = X @ W + 0.5 * rng.standard_normal((50, 2))
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, Y)
    >>> data = rm.as_task_data(X, Y)
    >>> f = data.linear(model.coef_matrix_, model.intercept_)
    >>> rss = np.sum((Y - model.predict(X)) ** 2, axis=0)
    >>> bool(np.isclose(neg2_log_likelihood(data, rm.Quadratic(), f),
    ...                 np.sum(50 * (np.log(2 * np.pi * rss / 50) + 1))))
    True
    """
    return datafit.neg2_log_likelihood(data, f, observed_weights(data))


def information_criterion(kind: str, neg2ll: float, df: float, n_obs: float) -> float:
    """Akaike's or the Bayesian information criterion.

    ``AIC = -2 log L + 2 df`` and ``BIC = -2 log L + log(N) df``; smaller is better.

    Parameters
    ----------
    kind : {"aic", "bic"}
        The criterion.
    neg2ll : float
        ``-2 log L`` (:func:`~regmtl.selection.neg2_log_likelihood`).
    df : float
        Degrees of freedom (:func:`~regmtl.selection.degrees_of_freedom`).
    n_obs : float
        Number N of observed rows over all tasks (weighted by the sample weights); used by
        BIC only.

    Returns
    -------
    float
        The criterion's value.

    Raises
    ------
    ValueError
        If ``kind`` is not ``"aic"`` or ``"bic"``.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.selection import information_criterion
    >>> information_criterion("aic", 100.0, 10.0, 200)
    120.0
    >>> bool(np.isclose(information_criterion("bic", 100.0, 10.0, 200),
    ...                 100.0 + np.log(200) * 10.0))
    True
    """
    if kind == "aic":
        return neg2ll + 2.0 * df
    if kind == "bic":
        return neg2ll + np.log(n_obs) * df
    raise ValueError(f"criterion={kind!r} is not 'aic' or 'bic'.")
