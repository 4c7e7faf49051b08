r"""Information criteria and the degrees of freedom they charge.

For a fit ``(W, b)`` on N observed rows (weighted counts with sample weights)::

    AIC = -2 log L + 2 df          BIC = -2 log L + log(N) df

``-2 log L``: the squared loss is read as a Gaussian model with one noise variance per task,
profiled out: ``sum_t m_t (log(2 pi RSS_t / m_t) + 1)`` with ``m_t`` the task's observed rows
and ``RSS_t`` its residual sum of squares; the logistic loss gives the Bernoulli deviance
``2 sum_r s_r log(1 + exp(-y_r f_r))``, the Poisson loss ``2 sum_r s_r (e^f - y f + log y!)``,
the Gamma loss a Gamma model with one shape per task at its maximum-likelihood value
(``regmtl.Gamma.neg2_log_likelihood``). Task weights of the objective do not enter the
likelihood; the T noise variances (Gamma shapes) are profiled at every alpha and are not
counted. The Huber and quantile losses, and a fit with one loss per task, have no likelihood
here: they are refused with a ValueError that says to cross-validate.

Degrees of freedom: each penalty declares them at a solution
(:meth:`~regmtl.Penalty.degrees_of_freedom`, ``regmtl.penalties.dof`` lists them by
penalty), as a count and, where they depend on the data's curvature, the pieces of a smoother
whose trace ``tr((D + H)^{-1} D)`` is evaluated here (``df`` includes the T intercepts when
they are fitted): D the Hessian of the data term over the active coefficients and the
intercepts (the IRLS Hessian at the solution for the logistic loss), H the penalty's.

The traces are exact for a ridge on the support and for one p x p Hessian per task (one
batched solve over the task blocks, O(T q^2) memory, q = p + 1), and for the curvature of a
row norm (the group lasso: the block-diagonal part solved per task, the rank-one coupling of
each selected row's T entries by the Woodbury identity, an s x s system for s selected rows:
linear in T). For a task coupling ``alpha K (x) P`` (the penalties that pull tasks together,
over every feature or the selected ones) the ``T q``-square system is formed only up to
``EXACT_COUPLED`` rows; beyond, the trace is a Hutchinson estimate (Rademacher probes, each
one conjugate-gradient solve with the task blocks as preconditioner and the coupling applied as
``W K``), with its standard error, in memory linear in T.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..datafits import Datafit
from ..penalties import Penalty
from ..penalties.dof import FeatureRidge, SupportSmoother, TaskCoupling
from ..taskdata import TaskData, observed_weights

__all__ = ["degrees_of_freedom", "neg2_log_likelihood", "information_criterion",
           "observed_weights", "likelihood_rows",
           "MAX_COUPLED", "EXACT_COUPLED"]

#: Largest T (p + 1) for which the coupled penalties' hat matrix may be formed (exactly,
#: ``method="exact"``).
MAX_COUPLED = 8000
#: Largest T (p + 1) for which ``method="auto"`` forms it; beyond, its trace is a Hutchinson
#: estimate with a standard error (the exact solve costs O((T q)^3): seconds at this size).
EXACT_COUPLED = 2000


def _curvature(data: TaskData, datafit: Datafit, f: np.ndarray) -> np.ndarray:
    """``h_r = c_r l''(f_r)``: the row weights of the data term's Hessian."""
    return data.c * datafit.bind(data).hessian(data.y, f)


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


def _row_curvature_trace(D: np.ndarray, active: np.ndarray, ridge: np.ndarray,
                         weight: np.ndarray, direction: np.ndarray, p: int) -> float:
    r"""``tr(A^{-1} D)`` with ``A = D + blockdiag_t(diag(ridge_t)) + sum_j g_j (I - u_j u_j^T)``
    over the active coefficients and the intercepts (the curvature of each selected row's
    norm couples only that row's T entries), exact and linear in T.

    With ``B = blockdiag_t(D_t + diag(ridge_t + g_j) + j I)`` (per task; j the jitter of
    :func:`_separable_trace`) and V the (T q) x s matrix of the rows' directions,
    ``A = B - V diag(g) V^T``, so by the Woodbury identity
    ``tr(A^{-1} D) = tr(B^{-1} D) + tr(S^{-1} V^T B^{-1} D B^{-1} V)`` with
    ``S = diag(1 / g) - V^T B^{-1} V`` (s x s, PD as A is); both s x s products are sums over
    the tasks of the rows' entries: O(T q^3) time, O(T q^2) memory, q = s + 1 for s selected
    rows.
    """
    T, q = D.shape[:2]
    rows = np.flatnonzero(active.any(axis=1))
    s = rows.size
    if s == 0:  # the intercepts only: 1 each
        return float(T * (q - p))
    idx = np.concatenate([rows, np.arange(p, q)])
    act = active[rows].T  # (T, s)
    keep = np.ones((T, idx.size), dtype=bool)
    keep[:, :s] = act
    mask = keep[:, :, None] & keep[:, None, :]
    Dm = np.where(mask, D[:, idx][:, :, idx], 0.0)
    g = weight[rows]
    B = Dm.copy()
    diag = np.einsum("tii->ti", B)  # a view: writes go to B
    diag[:, :s] += np.where(act, ridge[:, None] + g[None, :], 0.0)
    n_keep = keep.sum(axis=1)
    jitter = 1e-10 * np.maximum(diag.sum(axis=1) / np.maximum(n_keep, 1), np.finfo(float).tiny)
    diag += np.where(keep, jitter[:, None], 1.0)  # dropped coordinates: identity, D = 0
    Binv = np.linalg.inv(B)
    del B
    total = float(np.einsum("tij,tji->", Binv, Dm))
    c = np.flatnonzero(g > 0)
    if c.size == 0:
        return total
    U = direction[rows[c]].T * act[:, c]  # (T, |c|): zero off the active entries
    pairs = U[:, :, None] * U[:, None, :]
    Bc = Binv[:, :, c]  # (T, q, |c|)
    VBV = np.einsum("tjk,tjk->jk", pairs, Bc[:, c])
    VEV = np.einsum("tjk,tjk->jk", pairs, Bc.transpose(0, 2, 1) @ Dm @ Bc)
    S = np.diag(1.0 / g[c]) - VBV
    try:
        corr = np.linalg.solve(S, VEV)
        if not np.all(np.isfinite(corr)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        corr = np.linalg.lstsq(S, VEV, rcond=None)[0]
    return total + float(np.trace(corr))


def _support_trace(D: np.ndarray, smoother: SupportSmoother, p: int) -> float:
    """The trace of a ``SupportSmoother``: one batched solve
    without row curvature, else :func:`_row_curvature_trace`."""
    g = smoother.row_weight
    if g is None:
        return _separable_trace(D, smoother.active, smoother.ridge, p)
    return _row_curvature_trace(D, smoother.active, smoother.ridge, g, smoother.row_direction,
                                p)


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
    tol: float = 1e-4,
    method: str = "auto",
    random_state: Any = 0,
    rel_se: float = HUTCHINSON_REL_SE,
    max_probes: int = HUTCHINSON_MAX_PROBES,
    return_std: bool = False,
) -> float | tuple[float, float]:
    """Degrees of freedom of a fit, the ``df`` that AIC and BIC charge.

    The divergence of the fitted values in the targets, ``sum_r d f_r / d y_r`` (Stein's
    unbiased risk estimate), as the penalty declares it at the solution
    (:meth:`~regmtl.Penalty.degrees_of_freedom`; by penalty in ``regmtl.penalties.dof``):
    a count (a support, the dimension of the rank-r matrices, fused pieces) plus, where the
    divergence depends on the data's curvature, the trace ``tr((D + H)^{-1} D)`` of the
    smoother over the active coefficients and the intercepts, D the Hessian of the data term
    (for the logistic, Poisson and Gamma losses, the IRLS Hessian at the solution,
    ``c_r l''(f_r)``: for the Poisson loss the trace is then exactly the divergence of the
    fitted means in the targets, ``sum_r d mu_r / d y_r``; for the Gamma loss, whose log link
    is not its canonical one, that divergence is ``tr((D + H)^{-1} Z^T C Z)`` and the trace
    here equals it to first order, ``E[y / mu] = 1``: 2.87 against 3.18 on 30 rows and 3
    parameters) and H the penalty's Hessian
    there. ``df`` includes the T intercepts when they are fitted. For example ``L1``: the
    entries above ``tol`` times the largest (Zou, Hastie & Tibshirani 2007); ``L21``: the
    group lasso's divergence, with the curvature of the row norms (Vaiter et al. 2012; Yuan &
    Lin 2006 for an orthonormal design).

    Parameters
    ----------
    data : TaskData
        The training problem (:func:`~regmtl.as_task_data`).
    datafit : Datafit
        The loss: any that declares a ``hessian`` (squared, logistic, Poisson, Gamma,
        Huber).
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
    tol : float, default=1e-4
        The tolerance the fit was solved to (a relative duality gap): the sparse penalties'
        supports count the coefficients above ``tol`` times the largest
        (``regmtl.penalties.dof.support_threshold``), not every nonzero.
    method : {"auto", "exact", "hutchinson"}, default="auto"
        How the trace of a task coupling ``alpha K (x) P`` (``MeanRegularized``,
        ``GraphLaplacian``, ``Clustered``, ``TemporalGroupLasso``) is computed. ``"exact"``
        forms the ``T q``-square matrix (q = p + 1 with intercepts), at most ``MAX_COUPLED``
        (8000) rows. ``"hutchinson"`` estimates it: the exact trace of its block-diagonal part
        (per task) plus the mean of ``z^T (A^{-1} - B^{-1}) D z`` over Rademacher probes z, each
        one solve of the penalized normal equations ``A v = D z`` by conjugate gradients
        preconditioned by the block-diagonal part B, with the coupling applied as ``W K``,
        O(T p^2) memory and time per iteration. ``"auto"``: exact up to ``EXACT_COUPLED``
        (2000) rows, Hutchinson beyond. The other smoothers are always exact (one batched
        solve over the tasks; for the row norms' curvature, the Woodbury identity).
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
        For a penalty that declares no estimate, or ``method="exact"`` for a task coupling on
        a problem too large for its hat matrix (more than ``MAX_COUPLED`` rows).

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
    Statistics 35(5). Vaiter, Deledalle, Peyre, Fadili & Dossal (2012), "The degrees of
    freedom of the group lasso", ICML workshop. Yuan & Lin (2006), "Model selection and
    estimation in regression with grouped variables", JRSS B 68(1).

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
    >>> data = rm.as_task_data(X, Y)
    >>> lasso = rm.MultiTaskRegressor("l1", alpha=0.05).fit(X, Y)
    >>> df = degrees_of_freedom(data, rm.Quadratic(), rm.L1(), 0.05,
    ...                         lasso.coef_matrix_, lasso.intercept_)
    >>> bool(df == np.count_nonzero(lasso.coef_) + 2)  # the support and two intercepts
    True
    >>> group = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, Y)
    >>> df = degrees_of_freedom(data, rm.Quadratic(), rm.L21(), 0.05,
    ...                         group.coef_matrix_, group.intercept_)
    >>> rows = np.count_nonzero(np.any(group.coef_ != 0, axis=0))
    >>> bool(rows + 2 <= df <= np.count_nonzero(group.coef_) + 2)  # shrunk within its rows
    True
    """
    if method not in ("auto", "exact", "hutchinson"):
        raise ValueError(f"method={method!r} is not 'auto', 'exact' or 'hutchinson'.")
    p, T = W.shape
    coupled = datafit.coupled and getattr(data, "class_blocks", None) is not None
    n_icpt = T if fit_intercept else 0
    if coupled and fit_intercept:  # a task's K intercepts: K - 1 free (their common shift)
        n_icpt = T - len(data.class_blocks)

    def out(df: float, std: float = 0.0):
        return (float(df), float(std)) if return_std else float(df)

    declared = penalty.degrees_of_freedom(W, alpha, structure or {}, tol=tol)
    if declared is None:
        raise ValueError(f"criterion: no degrees-of-freedom estimate for {penalty!r}; use "
                         "criterion='cv'.")
    smoother = declared.smoother
    if smoother is None:
        return out(declared.count + n_icpt)
    if coupled:
        return out(declared.count + _class_trace(data, datafit, smoother, W, b, fit_intercept))
    if isinstance(smoother, TaskCoupling):
        rows = np.arange(p) if smoother.rows is None else np.asarray(smoother.rows)
        q = rows.size + int(fit_intercept)
        if method == "exact" and T * q > MAX_COUPLED:
            raise ValueError(
                f"criterion: the exact degrees of freedom of this coupled penalty need a "
                f"{T * q}-square matrix (more than {MAX_COUPLED}); use method='hutchinson' "
                "(or 'auto').")
    f = data.linear(W, b if fit_intercept else None)
    D = _task_grams(data, _curvature(data, datafit, f), fit_intercept)
    if isinstance(smoother, SupportSmoother):
        return out(declared.count + _support_trace(D, smoother, p))
    if isinstance(smoother, FeatureRidge):
        A = D.copy()
        A[:, :p, :p] += smoother.matrix
        return out(declared.count + float(sum(_trace_solve(A[t], D[t]) for t in range(T))))
    if not isinstance(smoother, TaskCoupling):
        raise TypeError(f"criterion: {penalty!r} declared an unknown smoother {smoother!r}.")
    if smoother.rows is not None:
        keep = np.concatenate([rows, [p]]) if fit_intercept else rows
        D = np.ascontiguousarray(D[:, keep][:, :, keep])
    if method == "exact" or (method == "auto" and T * q <= EXACT_COUPLED):
        return out(declared.count + _exact_coupled(D, smoother.apply, smoother.strength,
                                                   rows.size))
    est, se, _ = _hutchinson_coupled(D, smoother.apply, smoother.diagonal, smoother.strength,
                                     rows.size, random_state, rel_se, max_probes)
    return out(declared.count + est, se)


def _class_curvature(data: TaskData, datafit: Datafit, f: np.ndarray,
                     fit_intercept: bool) -> np.ndarray:
    """The data term's Hessian of a multinomial fit on the classes' layout, dense over every
    class column's ``q`` coordinates (features, intercept): the classes of a task are coupled
    by each row's curvature, ``D_(k,a),(l,b) = sum_i c_i z_ia z_ib (p_ik [k = l] - p_ik p_il)``
    (``p_i`` the row's softmax over its task's classes)."""
    p, T = data.n_features, data.n_tasks
    q = p + int(fit_intercept)
    D = np.zeros((T, q, T, q))
    for first, K in np.asarray(data.class_blocks, dtype=np.int64):
        segs = np.arange(first, first + K)
        n = int(data.indptr[first + 1] - data.indptr[first])
        flat = data.indptr[segs][:, None] + np.arange(n)          # (K, n) rows of each class
        rows = np.arange(n) if data.shared else flat[0]
        Z = data.X[rows]
        Z = Z.toarray() if sp.issparse(Z) else np.asarray(Z, dtype=np.float64)
        if fit_intercept:
            Z = np.column_stack([Z, np.ones(n)])
        F = f[flat].T                                               # (n, K)
        E = np.exp(F - F.max(axis=1, keepdims=True))
        P = E / E.sum(axis=1, keepdims=True)
        c = data.c[flat[0]]
        ZP = Z[:, None, :] * P[:, :, None]                          # (n, K, q)
        block = -np.einsum("i,ika,ilb->kalb", c, ZP, ZP)
        for k in range(K):
            block[k, :, k, :] += (Z * (c * P[:, k])[:, None]).T @ Z
        D[np.ix_(segs, np.arange(q), segs, np.arange(q))] = block
    return D.reshape(T * q, T * q)


def _smoother_matrix(smoother: Any, T: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """A declared smoother's penalty Hessian H, dense over every column's ``q`` coordinates,
    and the coordinates its trace runs over (the active ones and the intercepts)."""
    H = np.zeros((T, q, T, q))
    keep = np.zeros((T, q), dtype=bool)
    keep[:, p:] = True
    if isinstance(smoother, SupportSmoother):
        act = smoother.active.T                                       # (T, p)
        keep[:, :p] = act
        t_idx, j_idx = np.nonzero(act)
        H[t_idx, j_idx, t_idx, j_idx] += np.asarray(smoother.ridge)[t_idx]
        if smoother.row_weight is not None:
            for j in np.flatnonzero(smoother.row_weight > 0):
                u = smoother.row_direction[j] * act[:, j]
                H[:, j, :, j] += smoother.row_weight[j] * (np.diag(act[:, j] * 1.0)
                                                          - np.outer(u, u))
    elif isinstance(smoother, FeatureRidge):
        for t in range(T):
            H[t, :p, t, :p] += smoother.matrix
        keep[:, :p] = True
    else:  # TaskCoupling
        rows = np.arange(p) if smoother.rows is None else np.asarray(smoother.rows)
        K = smoother.apply(np.eye(T))
        for j in rows:
            H[:, j, :, j] += smoother.strength * K
        keep[:, rows] = True
    return H.reshape(T * q, T * q), keep.ravel()


def _class_trace(data: TaskData, datafit: Datafit, smoother: Any, W: np.ndarray,
                 b: np.ndarray | None, fit_intercept: bool) -> float:
    """``tr((D + H)^{-1} D)`` of a multinomial fit over the kept coordinates, formed densely
    (the classes' columns times ``q`` at most ``MAX_COUPLED``); the common shift of a task's
    classes, which changes no probability, has ``D = 0`` there and adds nothing."""
    p, T = W.shape
    q = p + int(fit_intercept)
    if T * q > MAX_COUPLED:
        raise ValueError(
            f"criterion: the degrees of freedom of a multinomial fit need a {T * q}-square "
            f"matrix (classes x features, more than {MAX_COUPLED}); use criterion='cv'.")
    f = data.linear(W, b if fit_intercept else None)
    D = _class_curvature(data, datafit, f, fit_intercept)
    H, keep = _smoother_matrix(smoother, T, p, q)
    k = np.flatnonzero(keep)
    Dk = D[np.ix_(k, k)]
    return _trace_solve(Dk + H[np.ix_(k, k)], Dk)


def likelihood_rows(data: TaskData) -> float:
    """The N of BIC: the observed rows' weights, each row of a multinomial task once (the
    classes' layout repeats it per class)."""
    s = observed_weights(data)
    if data.class_blocks is None:
        return float(s.sum())
    first = np.asarray(data.class_blocks, dtype=np.int64)[:, 0]
    return float(sum(s[data.indptr[t]:data.indptr[t + 1]].sum() for t in first))


def neg2_log_likelihood(data: TaskData, datafit: Datafit, f: np.ndarray) -> float:
    """Minus twice the log-likelihood of a fit, from its scores.

    The squared loss is read as a Gaussian model with one noise variance per task, profiled
    out: ``sum_t m_t (log(2 pi RSS_t / m_t) + 1)``, with ``m_t`` the task's observed rows
    (weighted by the sample weights) and ``RSS_t`` its residual sum of squares. The logistic
    loss gives the Bernoulli deviance ``2 sum_r s_r log(1 + exp(-y_r f_r))``, the Poisson loss
    ``2 sum_r s_r (e^f - y f + log y!)``, the Gamma loss a Gamma model with one shape per task
    at its maximum-likelihood value. The task
    weights of the objective do not enter the likelihood. Each loss gives its own
    (:meth:`~regmtl.datafits.Datafit.neg2_log_likelihood`).

    Parameters
    ----------
    data : TaskData
        The problem, with its targets (-1/+1 for the logistic loss).
    datafit : Datafit
        The loss: squared, logistic, Poisson or Gamma.
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
    return datafit.bind(data).neg2_log_likelihood(data, f, observed_weights(data))


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
