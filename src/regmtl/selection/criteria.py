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
``L2``, ``MeanRegularized``,                ``tr((D + R)^{-1} D)``: the trace of the hat matrix
``GraphLaplacian``, ``Clustered``           for the squared loss (the IRLS hat matrix at the
``ElasticNet``, ``L21`` with l1_ratio < 1   solution for the logistic loss) over the active
                                            coordinates and the intercepts, with D the Hessian
                                            of the data term and R that of the quadratic part of
                                            the penalty (``Clustered``: at the fitted M)
``Trace``                                   ``r (p + T - r)``, the dimension of rank-r p x T
                                            matrices (r = rank of W)
``SparseLowRank``                           ``r (p + T - r)`` of the low-rank part plus the
                                            nonzero entries of the sparse part
==========================================  ===================================================
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
    SparseLowRank,
    Trace,
)
from ..taskdata import TaskData

__all__ = ["degrees_of_freedom", "neg2_log_likelihood", "information_criterion",
           "observed_weights",
           "MAX_COUPLED"]

#: Largest T (p + 1) for which the coupled penalties' hat matrix is formed.
MAX_COUPLED = 8000


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


def _task_design(data: TaskData, t: int, cols: np.ndarray, fit_intercept: bool) -> np.ndarray:
    a, b = data.indptr[t], data.indptr[t + 1]
    if data.shared:
        Xt = data.X[:, cols]
    else:
        Xt = data.X[a:b][:, cols]
    Xt = Xt.toarray() if sp.issparse(Xt) else np.asarray(Xt)
    if fit_intercept:
        Xt = np.column_stack([Xt, np.ones(Xt.shape[0])])
    return Xt


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


def _hat_trace(data: TaskData, h: np.ndarray, active: np.ndarray, ridge: np.ndarray,
               K: np.ndarray | None, alpha: float, fit_intercept: bool) -> float:
    """``tr((D + R)^{-1} D)`` over the active coordinates (and intercepts).

    ``ridge[t]``: the diagonal Hessian of the penalty in task t (separable case); ``K``: the
    task kernel of ``alpha/2 tr(W K W^T)`` (coupled case, all coordinates active).
    """
    T = data.n_tasks
    blocks = []
    for t in range(T):
        cols = np.flatnonzero(active[:, t])
        Z = _task_design(data, t, cols, fit_intercept)
        ht = h[data.indptr[t]:data.indptr[t + 1]]
        blocks.append((cols, Z.T @ (Z * ht[:, None])))
    if K is None:
        df = 0.0
        for t, (cols, D) in enumerate(blocks):
            if D.shape[0] == 0:
                continue
            R = np.zeros(D.shape[0])
            R[:len(cols)] = ridge[t]
            df += _trace_solve(D + np.diag(R), D)
        return df
    q = blocks[0][1].shape[0]
    p = len(blocks[0][0])
    if T * q > MAX_COUPLED:
        raise ValueError(
            f"criterion: the degrees of freedom of this coupled penalty need a {T * q}-square "
            f"matrix (more than {MAX_COUPLED}); use criterion='cv' on a problem this size."
        )
    D = np.zeros((T * q, T * q))
    for t, (_, Dt) in enumerate(blocks):
        D[t * q:(t + 1) * q, t * q:(t + 1) * q] = Dt
    proj = np.zeros((q, q))
    proj[np.arange(p), np.arange(p)] = 1.0  # the penalty does not touch the intercepts
    R = alpha * np.kron(K, proj)
    return _trace_solve(D + R, D)


def degrees_of_freedom(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray | None,
    structure: dict[str, Any] | None = None,
    fit_intercept: bool = True,
) -> float:
    """Degrees of freedom of a fit, the ``df`` that AIC and BIC charge.

    By penalty (``df`` includes the T intercepts when they are fitted):

    - ``L1``, ``L21``, ``ElasticNet`` with ``l1_ratio=1``, ``Dirty``: the number of nonzero
      entries of W (the active set; Zou, Hastie & Tibshirani 2007 for the lasso);
    - ``L2``, ``ElasticNet`` and ``L21`` with ``l1_ratio < 1``, ``MeanRegularized``,
      ``GraphLaplacian``, ``Clustered``: ``tr((D + R)^{-1} D)``, the trace of the hat matrix
      (for the logistic loss, the IRLS hat matrix at the solution) over the active
      coordinates and the intercepts, D the Hessian of the data term and R that of the
      quadratic part of the penalty (``Clustered``: at the fitted M);
    - ``Trace``: ``r (p + T - r)``, the dimension of the p x T matrices of rank r = rank W;
    - ``SparseLowRank``: that of the low-rank part plus the nonzero entries of the sparse
      part.

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
        The penalty's fitted structure (``P_`` and ``Q_`` for ``SparseLowRank``,
        ``cluster_matrix_`` for ``Clustered``; recomputed from W when missing).
    fit_intercept : bool, default=True
        Whether the intercepts were fitted (and count).

    Returns
    -------
    float
        The degrees of freedom.

    Raises
    ------
    ValueError
        For a penalty with no estimate, or a coupled penalty on a problem too large for its
        hat matrix (more than ``MAX_COUPLED`` rows): use cross-validation then.

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
    p, T = W.shape
    n_icpt = T if fit_intercept else 0
    structure = structure or {}
    nonzero = W != 0.0
    sparse = isinstance(penalty, (L1, L21, ElasticNet)) and penalty.rho == 1.0
    if sparse or isinstance(penalty, Dirty):
        return float(np.count_nonzero(nonzero) + n_icpt)
    if isinstance(penalty, Trace):
        return float(_low_rank_df(W) + n_icpt)
    if isinstance(penalty, SparseLowRank):
        P = np.asarray(structure.get("P_", np.zeros((T, p))))
        Q = np.asarray(structure.get("Q_", W.T))
        return float(_low_rank_df(Q.T) + np.count_nonzero(P) + n_icpt)
    f = data.linear(W, b if fit_intercept else None)
    h = _curvature(data, datafit, f)
    if isinstance(penalty, (L2, L1, L21, ElasticNet)):
        rho = penalty.rho
        if isinstance(penalty, L21):
            active = np.repeat(np.any(nonzero, axis=1)[:, None], T, axis=1)
        elif isinstance(penalty, L2):
            active = np.ones_like(nonzero)
        else:
            active = nonzero
        ridge = np.full(T, alpha * (1.0 - rho))
        return _hat_trace(data, h, active, ridge, None, alpha, fit_intercept)
    if isinstance(penalty, (MeanRegularized, GraphLaplacian)):
        K = penalty.kernel(T)
    elif isinstance(penalty, Clustered):
        M = structure.get("cluster_matrix_")
        if M is None:
            M = penalty.cluster_matrix(W)
        eta = float(penalty.eta)
        K = 2.0 * eta * (1.0 + eta) * np.linalg.inv(eta * np.eye(T) + M)
    else:
        raise ValueError(f"criterion: no degrees-of-freedom estimate for {penalty!r}; use "
                         "criterion='cv'.")
    active = np.ones((p, T), dtype=bool)
    return _hat_trace(data, h, active, np.zeros(T), K, alpha, fit_intercept)


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
    weights of the objective do not enter the likelihood.

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
    s = observed_weights(data)
    if datafit.name == "logistic":
        return float(2.0 * np.sum(s * np.logaddexp(0.0, -data.y * f)))
    m = data.task_sums(s)
    rss = data.task_sums(s * (data.y - f) ** 2)
    rss = np.maximum(rss, np.finfo(float).tiny * np.maximum(m, 1.0))
    return float(np.sum(m * (np.log(2.0 * np.pi * rss / m) + 1.0)))


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
