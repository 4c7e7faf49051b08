r"""Efficient leave-one-out of ridge, per task and for a whole grid of alphas at once.

Task t's ridge problem ``min sum_i c_i (y_i - x_i w - b)^2 / 2 + alpha ||w||^2 / 2`` (row weights
``c`` of the objective, intercept unpenalized) is a linear smoother ``y_hat = H y``. With the
rows centered by their weighted means and ``Z = C^{1/2} X_c = P diag(s) Q^T`` (thin SVD, from the
smaller of ``Z Z^T`` and ``Z^T Z``), the hat matrix's diagonal and the fit are, for every alpha,

.. math::

    H_{ii} = \frac{c_i}{\sum_k c_k} + \sum_k \frac{(P s)_{ik}^2}{s_k^2 + \alpha}, \qquad
    e^{\mathrm{loo}}_i = \frac{y_i - \hat y_i}{1 - H_{ii}},

exact (Sherman-Morrison: leaving row i out is setting ``c_i = 0``), as scikit-learn's
``RidgeCV`` computes it (the tasks of a shared design whose rows weigh alike share one
decomposition). The score of a task is minus the weighted mean of
:math:`(e^{\mathrm{loo}}_i)^2` over its labeled rows. One decomposition per task, whatever the
number of alphas.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..taskdata import TaskData

__all__ = ["ridge_loo_scores"]


def _task_rows(data: TaskData, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = data.indptr[t], data.indptr[t + 1]
    X = data.X[: data.indptr[1]] if data.shared else data.X[lo:hi]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    return X, data.y[lo:hi], data.c[lo:hi]


def _decompose(X: np.ndarray, c: np.ndarray, fit_intercept: bool) -> tuple | None:
    """What the leave-one-out of rows ``X`` weighted ``c`` needs whatever the targets: the
    labeled rows, their weights, ``P diag(s)`` and ``s^2`` of ``Z = C^{1/2} X_c`` (None
    without a labeled row)."""
    on = c > 0
    X, c = X[on], c[on]
    if len(c) == 0:
        return None
    if fit_intercept:
        X = X - (c @ X) / c.sum()
    r = np.sqrt(c)
    Z = X * r[:, None]
    n, p = Z.shape
    if n <= p:
        s2, U = np.linalg.eigh(Z @ Z.T)
        s2 = np.maximum(s2, 0.0)
        Ps = U * np.sqrt(s2)  # P diag(s)
    else:
        s2, V = np.linalg.eigh(Z.T @ Z)
        s2 = np.maximum(s2, 0.0)
        Ps = Z @ V
    return on, c, r, Ps, s2


def _task_loo(dec: tuple | None, y: np.ndarray, alphas: np.ndarray,
              fit_intercept: bool) -> np.ndarray:
    """Minus the weighted mean squared leave-one-out residual for each alpha (NaN where a
    row's leverage is 1: its leave-one-out fit is undefined)."""
    if dec is None:
        return np.full(len(alphas), np.nan)
    on, c, r, Ps, s2 = dec
    y = y[on]
    if fit_intercept:
        y = y - (c @ y) / c.sum()
    q = Ps.T @ (y * r)
    inv = 1.0 / (s2[:, None] + alphas[None, :])  # (k, n_alphas)
    fit = (Ps @ (q[:, None] * inv)) / r[:, None]  # X_c w, per alpha
    lev = (Ps * Ps) @ inv
    if fit_intercept:
        lev = lev + (c / c.sum())[:, None]
    denom = 1.0 - lev
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (y[:, None] - fit) / denom
    e[np.abs(denom) < 1e-12] = np.nan
    return -(c @ (e * e)) / c.sum()


def ridge_loo_scores(data: TaskData, alphas: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Per-task leave-one-out scores of the ridge path (the ``L2`` penalty, squared loss):
    an array (n_alphas, T), minus the weighted mean squared leave-one-out residual.

    Parameters
    ----------
    data : TaskData
        The problem (row weights ``c`` as fitted; rows of weight 0, missing labels, are
        neither fitted nor scored).
    alphas : ndarray of shape (n_alphas,)
        Values of the estimator's ``alpha`` (the ``L2`` penalty ``alpha / 2 ||W||_F^2``).
    fit_intercept : bool
        Whether the intercepts are fitted (unpenalized).

    Returns
    -------
    ndarray of shape (n_alphas, T)
        Greater is better; NaN for a task whose leave-one-out fit is undefined (a row of
        leverage 1, e.g. a task of one row with an intercept).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.selection.loo import ridge_loo_scores
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((20, 3)) for _ in range(2)]
    >>> ys = [X @ np.ones(3) + rng.standard_normal(20) for X in Xs]
    >>> scores = ridge_loo_scores(rm.as_task_data(Xs, ys), np.array([0.01, 1.0]), True)
    >>> scores.shape
    (2, 2)
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    out = np.empty((len(alphas), data.n_tasks))
    dec, c_prev = None, None
    for t in range(data.n_tasks):  # one decomposition per task, every alpha at once
        X, y, c = _task_rows(data, t)
        # a shared design whose tasks weigh their rows alike: one decomposition for all
        if not (data.shared and c_prev is not None and np.array_equal(c, c_prev)):
            dec, c_prev = _decompose(X, c, fit_intercept), c
        out[:, t] = _task_loo(dec, y, alphas, fit_intercept)
    return out
