r"""``wald_test``: a joint test of linear hypotheses on a fitted model's coefficients.

With :math:`\beta = (\beta_1, \dots, \beta_T)`, each task's :math:`\beta_t = (w_t, b_t)`
stacked task after task, and its covariance :math:`V` (block-diagonal over tasks,
:mod:`~regmtl.inference.covariance`), the hypothesis :math:`R \beta = r` of m rows is
tested by

.. math::

    W = (R\beta - r)^\top (R V R^\top)^{-1} (R\beta - r) \sim \chi^2_m.

``features=[j]`` builds R: ``hypothesis="zero"``, :math:`w_{jt} = 0` in every task
(m = T per feature); ``"equal"``, :math:`w_{jt} = w_{j1}` for t = 2..T (the same effect in
every task, m = T - 1 per feature). On a shared design the tasks' errors are assumed
uncorrelated (the block-diagonal V); with correlated tasks the test is approximate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .estimate import Estimate, estimate

__all__ = ["WaldTest", "wald_test", "hypothesis_matrix"]


@dataclass(frozen=True)
class WaldTest:
    """The result of :func:`~regmtl.wald_test`.

    Attributes
    ----------
    statistic : float
        The Wald statistic.
    df : int
        Its chi-square degrees of freedom (the rank of R V R').
    p_value : float
        ``P(chi2_df > statistic)``.
    method : str
        The covariance estimate it is built on.
    """

    statistic: float
    df: int
    p_value: float
    method: str


def _feature_index(est: Estimate, feature: Any) -> int:
    names = est.names
    if isinstance(feature, (int, np.integer)) and not isinstance(feature, bool):
        if not 0 <= feature < len(names):
            raise ValueError(f"features: {feature} is not a coefficient index (0 to "
                             f"{len(names) - 1}).")
        return int(feature)
    if feature not in names:
        raise ValueError(f"features: {feature!r} is not one of {names}.")
    return names.index(feature)


def _check_covariance(V: np.ndarray, est: Estimate) -> None:
    if np.isnan(V).any():
        raise ValueError(
            "the hypothesis involves a coefficient without a covariance: an excluded feature "
            "(held at 0)" + (", or an intercept (the debiased estimator partials it out)"
                             if est.method == "debiased" else "") + ".")


def _by_tasks(est: Estimate, idx: np.ndarray, hypothesis: str) -> tuple[float, int]:
    r"""The Wald statistic of features ``idx`` being 0 ("zero") or equal ("equal") in every
    task, from each task's block (linear in T, no stacked R or V): with
    :math:`P_t = V_t^{+}` of the k features,

    - zero: :math:`\sum_t b_t^\top P_t b_t`, df :math:`\sum_t \mathrm{rank}(V_t)`;
    - equal: :math:`\sum_t (b_t - \bar b)^\top P_t (b_t - \bar b)`,
      :math:`\bar b = (\sum_t P_t)^{+} \sum_t P_t b_t` (the precision-weighted mean), df
      :math:`\sum_t \mathrm{rank}(V_t) - \mathrm{rank}(\sum_t P_t)`;

    what :math:`R V R^\top` gives for the stacked R of ``hypothesis_matrix`` with V
    block-diagonal over tasks."""
    b = est.coef[:, idx]                                   # (T, k)
    V = est.cov[:, idx[:, None], idx[None, :]]             # (T, k, k)
    _check_covariance(V, est)
    P = np.linalg.pinv(V, hermitian=True)
    ranks = np.linalg.matrix_rank(V, hermitian=True)
    if hypothesis == "zero":
        return float(np.einsum("ti,tij,tj->", b, P, b)), int(ranks.sum())
    S = P.sum(axis=0)
    mean = np.linalg.pinv(S, hermitian=True) @ np.einsum("tij,tj->i", P, b)
    d = b - mean
    df = int(ranks.sum() - np.linalg.matrix_rank(S, hermitian=True))
    return float(np.einsum("ti,tij,tj->", d, P, d)), df


def hypothesis_matrix(est: Estimate, features: Any, hypothesis: str) -> np.ndarray:
    """R of ``features`` under ``hypothesis`` ("zero" or "equal") on the stacked
    coefficients of ``est`` (module docstring)."""
    T, q = est.coef.shape
    if hypothesis not in ("zero", "equal"):
        raise ValueError(f"hypothesis={hypothesis!r} is not 'zero' or 'equal'.")
    if hypothesis == "equal" and T < 2:
        raise ValueError("hypothesis='equal' compares tasks: the rows hold one task.")
    blocks = []
    for feature in features:
        j = _feature_index(est, feature)
        if hypothesis == "zero":
            block = np.zeros((T, T * q))
            block[np.arange(T), np.arange(T) * q + j] = 1.0
        else:
            block = np.zeros((T - 1, T * q))
            block[np.arange(T - 1), np.arange(1, T) * q + j] = 1.0
            block[:, j] = -1.0
        blocks.append(block)
    return np.vstack(blocks) if blocks else np.zeros((0, T * q))


def wald_test(model: Any, X: Any, y: Any, task: Any = None, offset: Any = None,
              sample_weight: Any = None, *, R: Any = None, r: Any = None,
              features: Any = None, hypothesis: str = "zero", method: str = "auto",
              n_boot: int = 200, random_state: Any = None,
              nodewise: Any = "cv") -> WaldTest:
    r"""Wald test of :math:`R \beta = r` on a fitted model's coefficients.

    :math:`W = (R\beta - r)^\top (R V R^\top)^{-1} (R\beta - r)`, referred to
    :math:`\chi^2_m` (m the rank of :math:`R V R^\top`), with :math:`\beta` the tasks'
    :math:`(w_t, b_t)` stacked task after task (q = p + 1 entries each with intercepts, in
    the order of :func:`~regmtl.coef_table`'s rows) and V their covariance,
    block-diagonal over tasks (on a shared design the tasks' errors are assumed
    uncorrelated).

    Parameters
    ----------
    model : MultiTaskRegressor, MultiTaskClassifier, or a fitted CV search
        The fitted model.
    X, y, task, offset, sample_weight
        The rows of the fit (as for :func:`~regmtl.coef_table`).
    R : array-like of shape (m, T q), optional
        The hypotheses' matrix, on the stacked coefficients; or give ``features``.
    r : array-like of shape (m,), optional
        Their values (default 0).
    features : list of int or str, optional
        Features (indices or names; ``"intercept"`` too) tested jointly by ``hypothesis``.
    hypothesis : {"zero", "equal"}, default="zero"
        With ``features``: ``"zero"``, each feature is 0 in every task; ``"equal"``, each
        has the same effect in every task.
    method, n_boot, random_state, nodewise
        The covariance estimate (as for :func:`~regmtl.coef_table`).

    Returns
    -------
    WaldTest
        ``statistic``, ``df``, ``p_value`` and ``method``.

    Raises
    ------
    ValueError
        Where neither or both of ``R`` and ``features`` are given, R's shape does not match,
        a feature is unknown, ``hypothesis`` is neither, or the covariance is refused (as by
        :func:`~regmtl.coef_table`).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((80, 3)) for _ in range(3)]
    >>> ys = [X @ [1.0, 0.0, -0.5] + rng.standard_normal(80) for X in Xs]
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-10).fit(Xs, ys)
    >>> model.wald_test(Xs, ys, features=["x0"]).p_value < 1e-10  # x0 matters
    True
    >>> model.wald_test(Xs, ys, features=["x0"], hypothesis="equal").df  # equal effects
    2
    """
    from scipy.stats import chi2

    if (R is None) == (features is None):
        raise ValueError("give the hypotheses as R (and r) or as features=[...] with "
                         "hypothesis='zero' or 'equal', not both and not neither.")
    est = estimate(model, X, y, task, offset, sample_weight, method, n_boot, random_state,
                   nodewise)
    T, q = est.coef.shape
    if R is None:
        one = isinstance(features, (str, int, np.integer))
        idx = [_feature_index(est, f) for f in ([features] if one else list(features))]
        if not idx:
            raise ValueError("features=[] names no coefficient: give at least one feature "
                             "(an index or a name).")
        if hypothesis not in ("zero", "equal"):
            raise ValueError(f"hypothesis={hypothesis!r} is not 'zero' or 'equal'.")
        stat, df = _by_tasks(est, np.array(idx), hypothesis)
        return WaldTest(stat, df, float(chi2.sf(stat, df)), est.method)
    try:
        R = np.atleast_2d(np.asarray(R, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError("R must be a matrix of numbers (one row per hypothesis, one column "
                         "per stacked coefficient).") from None
    if R.ndim != 2 or R.size == 0 or not np.isfinite(R).all():
        bad = "" if np.isfinite(R).all() else " and holds NaN or infinity"
        raise ValueError(f"R has shape {R.shape}{bad}: give a finite matrix of at least one "
                         "row, one column per stacked coefficient.")
    if R.shape[1] != T * q:
        raise ValueError(f"R has {R.shape[1]} columns; the stacked coefficients are {T} tasks "
                         f"x {q} ({T * q}: each task's features then its intercept).")
    r = np.zeros(len(R)) if r is None else np.ravel(np.asarray(r, dtype=np.float64))
    if r.shape != (len(R),):
        raise ValueError(f"r has {r.size} values for the {len(R)} rows of R.")
    used = np.flatnonzero(np.any(R != 0, axis=0))
    tasks, js = np.divmod(used, q)
    V = np.where(tasks[:, None] == tasks[None, :],
                 est.cov[tasks[:, None], js[:, None], js[None, :]], 0.0)
    _check_covariance(V, est)
    d = R[:, used] @ est.coef.ravel()[used] - r
    M = R[:, used] @ V @ R[:, used].T
    Mi = np.linalg.pinv(M, hermitian=True)
    df = int(np.linalg.matrix_rank(M, hermitian=True))
    if df == 0:
        raise ValueError("R V R' has rank 0: every row of R is zero; give at least one "
                         "hypothesis on a coefficient.")
    stat = float(d @ Mi @ d)
    return WaldTest(stat, df, float(chi2.sf(stat, df)), est.method)
