r"""The covariance of an unpenalized fit's coefficients, task by task.

With no active penalty the tasks' coefficients :math:`\beta_t = (w_t, b_t)` are separate
M-estimators; their covariance is block-diagonal over tasks (each task's errors independent
of the others'; on a shared design this assumes the tasks' errors on a row uncorrelated).
With :class:`~regmtl.inference.rows.TaskRows` (``Z`` the design, ``c`` the sample weights,
``s = c l'``, ``h = c l''``), for one task:

``"fisher"``
    :math:`\phi\,(Z^\top \mathrm{diag}(c\,\bar h) Z)^{-1}`, :math:`\bar h = E\,l''` the
    expected curvature (``l''`` at ``y`` = the model's mean: 1 for the Gamma's log link);
    :math:`\phi = \sum_r c_r l_r'^2 / \bar h_r / (\sum_r c_r - q)` (the Pearson statistic
    over the residual degrees of freedom) for the losses that profile a scale (squared,
    Gamma), 1 for Poisson and logistic: statsmodels' GLM with ``freq_weights``.
``"sandwich"``
    :math:`A^{-1} B A^{-1}`, :math:`A = Z^\top \mathrm{diag}(h) Z` (observed),
    :math:`B = Z^\top \mathrm{diag}(c\,l'^2) Z` (HC0: statsmodels' ``cov_type="HC0"``
    with ``freq_weights``; for Huber, the M-estimator's).
``"kernel"``
    The pinball loss at level :math:`\tau`: statsmodels QuantReg's default,
    :math:`(Z^\top Z)^{-1} Z^\top \mathrm{diag}(d) Z (Z^\top Z)^{-1}`,
    :math:`d_r = (\tau / \hat f)^2` above the fit and :math:`((1 - \tau) / \hat f)^2`
    otherwise, :math:`\hat f = \frac{1}{n h}\sum_r K(e_r / h)` (Epanechnikov K) with the
    Hall-Sheather bandwidth
    :math:`h = \min(\mathrm{sd}(y), \mathrm{IQR}(e) / 1.34)\,(\Phi^{-1}(\tau + h_n) -
    \Phi^{-1}(\tau - h_n))`,
    :math:`h_n = n^{-1/3} z_{0.975}^{2/3} (1.5 \varphi(z_\tau)^2 / (2 z_\tau^2 + 1))^{1/3}`.
``"bootstrap"``
    The covariance of ``n_boot`` refits on rows drawn with replacement within the task
    (pairs bootstrap), seeded by ``random_state``.

Sample weights are frequency weights: a row of weight 2 counts as two rows (scikit-learn's
convention, and the N of :func:`~regmtl.inference.criteria.likelihood_rows`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .rows import TaskRows

__all__ = ["fisher", "sandwich", "kernel", "bootstrap", "task_covariance"]


def _inverse(A: np.ndarray, rows: TaskRows) -> np.ndarray:
    """``A^{-1}`` of a task's information matrix, refused by name where singular (a feature
    constant in the task beside the intercept, collinear features, too few rows)."""
    s = np.linalg.svd(A, compute_uv=False)
    if not s.size or s[-1] <= 1e-12 * s[0]:
        raise ValueError(
            f"task {rows.task!r}: its information matrix is singular (collinear features, a "
            f"feature constant within the task, or fewer rows than its {A.shape[0]} "
            "coefficients): its coefficients are not identified; drop or exclude features.")
    return np.linalg.inv(A)


def _gram(Z: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (Z * v[:, None]).T @ Z


def fisher(rows: TaskRows) -> np.ndarray:
    r"""The inverse Fisher information times the dispersion (module docstring)."""
    loss, c = rows.loss, rows.weight
    expected = loss.hessian(loss.mean(rows.f), rows.f)
    A = _gram(rows.X, c * expected)
    phi = 1.0
    if loss.profiles_scale:
        dof = c.sum() - rows.X.shape[1]
        if dof <= 0:
            raise ValueError(f"task {rows.task!r}: no residual degree of freedom for its "
                             "dispersion (weighted rows <= coefficients).")
        grad = rows.score / c
        phi = float(np.sum(c * grad ** 2 / expected) / dof)
    return phi * _inverse(A, rows)


def sandwich(rows: TaskRows) -> np.ndarray:
    r"""HC0: :math:`A^{-1} B A^{-1}` with the observed Hessian ``A`` (module docstring)."""
    Ai = _inverse(_gram(rows.X, rows.curvature), rows)
    B = _gram(rows.X, rows.score ** 2 / rows.weight)
    return Ai @ B @ Ai


def kernel(rows: TaskRows) -> np.ndarray:
    r"""statsmodels QuantReg's default covariance of the pinball loss (module docstring)."""
    from scipy.stats import norm

    if np.any(rows.weight != 1.0):
        raise ValueError("method='kernel' takes no sample weights (statsmodels QuantReg's "
                         "estimate is unweighted); use method='bootstrap'.")
    q, n = float(rows.loss.quantile), rows.n_rows
    e = rows.y - rows.f
    z = norm.ppf(q)
    hn = n ** (-1 / 3) * norm.ppf(0.975) ** (2 / 3) * (
        1.5 * norm.pdf(z) ** 2 / (2 * z ** 2 + 1)) ** (1 / 3)
    iqr = np.percentile(e, 75) - np.percentile(e, 25)
    h = min(np.std(rows.y - rows.offset), iqr / 1.34) * (norm.ppf(q + hn) - norm.ppf(q - hn))
    u = e / h
    fhat = np.sum(0.75 * (1 - u ** 2) * (np.abs(u) <= 1)) / (n * h)
    if not fhat > 0:
        raise ValueError(f"task {rows.task!r}: the density of its residuals at the quantile "
                         "is estimated as 0 (too few rows); use method='bootstrap'.")
    d = np.where(e > 0, (q / fhat) ** 2, ((1 - q) / fhat) ** 2)
    Gi = _inverse(rows.X.T @ rows.X, rows)
    return Gi @ _gram(rows.X, d) @ Gi


def bootstrap(rows: TaskRows, refit: Callable[[TaskRows, np.ndarray], np.ndarray],
              n_boot: int = 200, random_state: int | np.random.Generator | None = None
              ) -> np.ndarray:
    """The covariance of ``n_boot`` refits ``refit(rows, idx)`` on rows ``idx`` drawn with
    replacement (pairs bootstrap within the task)."""
    rng = np.random.default_rng(random_state)
    draws = np.array([refit(rows, rng.integers(0, rows.n_rows, rows.n_rows))
                      for _ in range(int(n_boot))])
    return np.atleast_2d(np.cov(draws, rowvar=False))


def task_covariance(rows: TaskRows, method: str, refit: Callable | None = None,
                    n_boot: int = 200, random_state: int | np.random.Generator | None = None
                    ) -> np.ndarray:
    """The (q, q) covariance of one task's ``(w_t, b_t)`` by ``method`` (module docstring).

    Parameters
    ----------
    rows : TaskRows
        The task's rows at the fit.
    method : {"fisher", "sandwich", "kernel", "bootstrap"}
        The estimate.
    refit : callable, optional
        ``refit(rows, idx) -> coef``, for ``"bootstrap"``.
    n_boot : int, default=200
        Bootstrap resamples.
    random_state : int, Generator or None
        Seeds the resamples.

    Returns
    -------
    ndarray of shape (q, q)
    """
    if method == "bootstrap":
        return bootstrap(rows, refit, n_boot, random_state)
    return {"fisher": fisher, "sandwich": sandwich, "kernel": kernel}[method](rows)
