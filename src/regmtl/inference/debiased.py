r"""Debiased (desparsified) coefficients of L1- and L2,1-penalized fits, and their intervals.

A penalized fit shrinks, so its coefficients have no usable sampling distribution. The
debiased estimator of van de Geer, Bühlmann, Ritov & Dezeure (2014) adds back one Newton
step taken with an approximate inverse of the Hessian. For one task with rows ``r``, a
linear predictor ``f_r = x_r' beta + b`` and the data term
``L(beta) = (1/n) sum_r c_r l(y_r, f_r)``::

    s_r = c_r l'(f_r)                 (the score: f - y times the weight, squared loss)
    w_r = c_r l''(f_r)                (the curvature: the weight, squared loss)
    Sigma_w = X_c' diag(w) X_c / n    (the Hessian of L; X_c: X minus its w-weighted means
                                       when an intercept was fitted, which partials it out)
    b = beta_hat - Theta X_c' s / n   (Theta ~ Sigma_w^{-1}, the nodewise lasso)

and ``sqrt(n) (b - beta) = -Theta X_c' eps / sqrt(n) + Delta``, the remainder ``Delta``
negligible under sparsity of ``beta`` and of the rows of ``Sigma_w^{-1}`` (their Theorem 2.2
for the squared loss, Theorem 3.1 for generalized linear models: section 3 takes the same
form with the weights ``w`` of the GLM's Hessian). The variance of ``b_j``:

- model-based: ``phi (Theta Sigma_w Theta')_jj / n``, ``phi`` the dispersion (the noise
  variance of the squared loss, 1 for the logistic and Poisson losses);
- robust (``robust=True``, the sandwich): ``(Theta Sigma_s Theta')_jj / n`` with
  ``Sigma_s = X_c' diag(s^2) X_c / n``, valid under heteroscedastic noise and a misspecified
  variance function; times ``m / (m - |S| - 1{intercept})`` (the HC1 correction, ``m`` and
  ``|S|`` as below), without which it covers 92-93 % instead of 95 % at n = 150 (the
  residuals of a fit are smaller than the errors by its degrees of freedom).

The dispersion, when not given, is the Pearson estimate
``phi = sum_r s_r^2 / w_r / (m - |S| - 1{intercept})``, m the rows with ``w_r > 0`` and
``|S|`` the fit's support: for the squared loss with weights ``c`` it is the weighted
``RSS / (m - |S| - 1)``. This is the residual-variance estimator that Reid, Tibshirani &
Friedman (2016, "A study of error variance estimation in lasso regression") found the most
reliable with a cross-validated lambda (the fits this module is written for); the scaled
lasso needs its own universal lambda and a second fit, and is not used.

For several tasks (:func:`debiased_tasks`) the group structure of the L2,1 penalty enters
only through the fit. The data term is a sum over tasks, so its Hessian in ``vec(W)`` is
block-diagonal (one ``Sigma_w`` per task, ``I_T (x) Sigma_w`` on a shared design): the group
debiasing of Mitra & Zhang (2016), one Newton step with an approximate inverse of that Hessian
restricted to the groups, is then exactly the per-task debiasing of each column, and the row
``j`` is tested jointly by :func:`group_chi2`, ``sum_t z_jt^2 ~ chi2_T`` when the tasks' errors
are independent, ``z_j' R^{-1} z_j`` with ``R`` the cross-task error correlation otherwise.

The precision ``Theta`` (:func:`nodewise_precision`, Meinshausen & Bühlmann 2006 as used in
van de Geer et al. 2014, eqs. (8)-(9)): for each feature j the lasso of column j of
``Z = W^{1/2} X_c`` on the others,

    gamma_j = argmin_g  (1/2n) ||Z_j - Z_{-j} g||^2 + lambda_j ||g||_1,
    tau_j^2 = (1/n) ||Z_j - Z_{-j} gamma_j||^2 + lambda_j ||gamma_j||_1,
    Theta_j = (e_j - gamma_j) / tau_j^2      (row j; gamma_j padded with 0 at j),

with one ``alpha`` for all j (the responses scaled to unit variance, so that
``lambda_j = alpha sd_j``, ``sd_j^2 = (Sigma_w)_jj``): by default chosen by K-fold
cross-validation of the held-out error summed over the p regressions (the rule of the ``hdi``
package, Dezeure et al. 2015); or the universal ``sqrt(2 log(p) / n)`` (van de Geer et al.
2014, Theorem 2.4: ``lambda_j ~ sqrt(log p / n)``); or given. Solved with regmtl's own lasso
(:func:`regmtl.solvers.solve`, ``L1``, block coordinate descent, warm-started along the
grid): the p regressions are the p tasks of one multi-task L1 problem (the L1 penalty
separates over tasks), column j zeroed in task j. Cost: p lassos of size n x (p - 1), solved
in chunks of tasks holding at most :data:`CHUNK_ENTRIES` design entries (n p per nodewise
task), O(n p^2) per sweep of coordinate descent over all of them; with ``lam="cv"`` the same
times ``(n_folds + 1) * n_lambdas`` warm-started path points (about 0.3 s for n = 150,
p = 40).

References
----------
S. van de Geer, P. Bühlmann, Y. Ritov, R. Dezeure (2014). On asymptotically optimal
confidence regions and tests for high-dimensional models. Annals of Statistics 42(3).
R. Mitra, C.-H. Zhang (2016). The benefit of group sparsity in group inference with
de-biased scaled group Lasso. Electronic Journal of Statistics 10(2).
R. Dezeure, P. Bühlmann, L. Meier, N. Meinshausen (2015). High-dimensional inference:
confidence intervals, p-values and R-software hdi. Statistical Science 30(4).
S. Reid, R. Tibshirani, J. Friedman (2016). A study of error variance estimation in lasso
regression. Statistica Sinica 26(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import stats

from ..datafits import Quadratic
from ..inputs import as_task_data
from ..penalties import L1
from ..solvers import solve

__all__ = ["TaskBlock", "Precision", "GroupTest", "nodewise_precision", "debias",
           "debiased_covariance", "debiased_tasks", "flat_features", "group_chi2",
           "MAX_FEATURES",
           "CHUNK_ENTRIES"]

#: The most features a precision may have: Theta is a dense p x p matrix and the nodewise step
#: p lassos (beyond, pass ``max_features=`` knowingly).
MAX_FEATURES = 5000
#: The most design entries (rows x features x nodewise tasks) one stacked nodewise solve holds.
CHUNK_ENTRIES = 1 << 23


@dataclass(frozen=True)
class TaskBlock:
    """One task's fit, as the debiasing reads it.

    Attributes
    ----------
    X : ndarray or sparse matrix of shape (n, p)
        The design in original units.
    w : ndarray of shape (n,)
        Curvature ``c_r l''(f_r)`` (the row weight for the squared loss), >= 0.
    s : ndarray of shape (n,)
        Score ``c_r l'(f_r)``, the derivative of the loss in ``f`` (``c_r (f_r - y_r)`` for the
        squared loss).
    coef : ndarray of shape (p,)
        The fitted coefficients.
    intercept : bool, default=True
        Whether an intercept was fitted (it is partialled out with the w-weighted means).
    dispersion : float or None, default=None
        ``phi``: the noise variance of the squared loss, 1 for the logistic loss; None
        estimates it (the Pearson estimate, see the module's docstring).
    """

    X: Any
    w: np.ndarray
    s: np.ndarray
    coef: np.ndarray
    intercept: bool = True
    dispersion: float | None = None


@dataclass(frozen=True)
class Precision:
    r"""The nodewise-lasso estimate of :math:`\Sigma_w^{-1}`.

    Attributes
    ----------
    theta : ndarray of shape (p, p)
        ``Theta`` (not symmetric), row j ``(e_j - gamma_j) / tau_j^2``.
    gram : ndarray of shape (p, p)
        ``Sigma_w = X_c' diag(w) X_c / n``.
    tau2 : ndarray of shape (p,)
        ``tau_j^2``.
    lambdas : ndarray of shape (p,)
        The nodewise penalties ``lambda_j = alpha sd_j`` (the scale of ``(1/2n) ||.||^2``).
    alpha : float
        The common penalty of the unit-variance responses.
    means : ndarray of shape (p,)
        The w-weighted column means subtracted (zeros without intercept).
    n : int
        Rows of the design.
    """

    theta: np.ndarray
    gram: np.ndarray
    tau2: np.ndarray
    lambdas: np.ndarray
    alpha: float
    means: np.ndarray
    n: int


@dataclass(frozen=True)
class GroupTest:
    """The test of "row j is zero in every task".

    Attributes
    ----------
    statistic : ndarray of shape (k,)
        The chi-square statistic of each row tested.
    pvalue : ndarray of shape (k,)
        Its upper tail probability.
    df : int
        The degrees of freedom (T, or the rank of the error correlation).
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    df: int


def _design(X: Any, name: str = "X") -> Any:
    """``X`` as a float 2-D array or CSR matrix, finite, refused otherwise."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=float)
        values = X.data
    else:
        X = np.asarray(X, dtype=float)
        values = X
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n rows, p features), got shape {X.shape}.")
    if X.shape[0] < 2 or X.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 rows and 2 features, got shape "
                         f"{X.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has NaN or infinite entries.")
    return X


def _vector(v: Any, n: int, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} has NaN or infinite entries.")
    return v


def _weights(w: Any, n: int) -> np.ndarray:
    w = np.ones(n) if w is None else _vector(w, n, "w")
    if np.any(w < 0):
        raise ValueError("w (the curvature) must be >= 0 on every row.")
    if not np.any(w > 0):
        raise ValueError("w (the curvature) is 0 on every row: no information to invert.")
    return w


def _flat(sd: np.ndarray) -> np.ndarray:
    """Which columns of weighted standard deviations ``sd`` are constant (no precision)."""
    return sd <= 1e-12 * max(1.0, float(sd.max(initial=0.0)))


def flat_features(X: Any, w: Any, intercept: bool = True) -> np.ndarray:
    """Which features have no weighted variance (constant on the rows with weight, after
    centering when an intercept is fitted): they have no precision, so no debiased
    interval. O(n p).

    Returns
    -------
    ndarray of bool, shape (p,)
    """
    X = _design(X)
    w = _weights(w, X.shape[0])
    WX = X.multiply(w[:, None]).tocsr() if sp.issparse(X) else X * w[:, None]
    second = np.asarray(X.multiply(WX).sum(axis=0) if sp.issparse(X)
                        else (X * WX).sum(axis=0)).ravel()
    if intercept:
        second = second - np.asarray(WX.sum(axis=0)).ravel() ** 2 / w.sum()
    return _flat(np.sqrt(np.clip(second / X.shape[0], 0.0, None)))


def _moments(X: Any, w: np.ndarray, intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """The w-weighted means (zeros without intercept) and ``Sigma_w = X_c' W X_c / n``."""
    n, p = X.shape
    WX = X.multiply(w[:, None]).tocsr() if sp.issparse(X) else X * w[:, None]
    cross = np.asarray((X.T @ WX).toarray() if sp.issparse(X) else X.T @ WX)
    means = np.zeros(p)
    if intercept:
        means = np.asarray(WX.sum(axis=0)).ravel() / w.sum()
        cross = cross - w.sum() * np.outer(means, means)
    gram = (cross + cross.T) / (2 * n)
    return means, gram


def _centered(X: Any, means: np.ndarray) -> np.ndarray:
    """``X - 1 means'`` as a dense array (O(n p) memory)."""
    return (X.toarray() if sp.issparse(X) else X) - means


def _stacked(Z: np.ndarray, y: np.ndarray, cols: np.ndarray) -> Any:
    """The nodewise regressions of ``cols`` as one multi-task problem: task k regresses
    ``y[:, k]`` on ``Z`` with column ``cols[k]`` zeroed (its L1 coefficient then stays 0)."""
    Xs = []
    for j in cols:
        Zj = Z.copy()
        Zj[:, j] = 0.0
        Xs.append(Zj)
    return as_task_data(Xs, [y[:, k] for k in range(len(cols))])


def _path(Z: np.ndarray, y: np.ndarray, cols: np.ndarray, alphas: np.ndarray, tol: float,
          test: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warm-started L1 path of the nodewise regressions ``cols``: the last solution (p, k) and,
    with ``test = (Z_test, y_test)``, the held-out squared error summed over ``cols`` at each
    alpha."""
    data = _stacked(Z, y, cols)
    W = None
    errors = np.zeros(len(alphas))
    for i, alpha in enumerate(alphas):
        res = solve(data, Quadratic(), L1(), float(alpha), W0=W, fit_intercept=False, tol=tol,
                    max_iter=5000)
        W = res.W
        if test is not None:
            Zt, yt = test
            pred = Zt @ W - Zt[:, cols] * W[cols, np.arange(len(cols))]
            errors[i] = np.sum((yt - pred) ** 2)
    return W, errors


def _chunks(n: int, p: int) -> list[np.ndarray]:
    size = max(1, min(p, CHUNK_ENTRIES // max(1, n * p)))
    return [np.arange(start, min(p, start + size)) for start in range(0, p, size)]


def nodewise_precision(
    X: Any,
    w: Any = None,
    intercept: bool = True,
    *,
    lam: str | float = "cv",
    factor: float = 1.0,
    n_folds: int = 5,
    n_lambdas: int = 15,
    tol: float = 1e-8,
    max_features: int = MAX_FEATURES,
    random_state: int = 0,
) -> Precision:
    r"""The nodewise-lasso precision ``Theta ~ Sigma_w^{-1}`` (see the module's docstring).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, p)
        The design, original units.
    w : ndarray of shape (n,), optional
        The curvature weights (ones by default: the squared loss).
    intercept : bool, default=True
        Center the columns with the w-weighted means first (partials the intercept out).
    lam : {"cv", "universal"} or float, default="cv"
        The common penalty ``alpha`` of the unit-variance responses (``lambda_j = alpha
        sd_j``). ``"cv"``: one alpha for all j minimizing the K-fold held-out error summed over
        the p regressions, on a log grid of ``n_lambdas`` from ``alpha_max`` (where every
        gamma_j is 0) to ``alpha_max / 100`` (the rule of the ``hdi`` package, Dezeure et al.
        2015); ``"universal"``: ``sqrt(2 log(p) / n)``, the rate of van de Geer et al.
        (2014, Theorem 2.4, ``lambda_j ~ sqrt(log p / n)``) for unit-variance columns; a
        float: that alpha. Multiplied by ``factor`` in every case.
    factor : float, default=1.0
        Multiplies the chosen alpha (< 1 lowers the bias of the debiased estimate at the
        price of its variance).
    n_folds, n_lambdas : int
        The cross-validation's folds and grid (``lam="cv"`` only).
    tol : float, default=1e-8
        The lasso's tolerance (relative duality gap).
    max_features : int, default=MAX_FEATURES
        Refuse larger p (Theta is dense p x p, and p lassos are solved).
    random_state : int, default=0
        Seeds the folds.

    Returns
    -------
    Precision

    Notes
    -----
    Cost: p lassos of size n x (p - 1), one stacked L1 problem per chunk of
    :data:`CHUNK_ENTRIES` entries; ``lam="cv"`` solves ``n_folds`` warm-started paths of
    ``n_lambdas`` points and one more path on all rows down to the chosen alpha. Memory
    O(n p * chunk + p^2).
    """
    X = _design(X)
    n, p = X.shape
    if p > max_features:
        raise ValueError(f"X has {p} features, more than max_features={max_features}: the "
                         "precision is a dense p x p matrix fitted by p lassos; pass a larger "
                         "max_features to accept the cost, or screen features first.")
    w = _weights(w, n)
    if not (isinstance(factor, Real) and factor > 0):
        raise ValueError(f"factor must be a positive number, got {factor!r}.")
    means, gram = _moments(X, w, intercept)
    sd = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    flat = np.flatnonzero(_flat(sd))
    if flat.size:
        raise ValueError(f"feature(s) {flat[:10].tolist()} have zero weighted variance (constant "
                         "after centering, or zero on the rows with weight): their precision "
                         "is undefined; drop them.")
    Z = np.sqrt(w)[:, None] * _centered(X, means)
    Y = Z / sd
    ZY = Z.T @ Y
    np.fill_diagonal(ZY, 0.0)
    alpha_max = float(np.max(np.abs(ZY))) / n
    if isinstance(lam, str):
        if lam == "universal":
            alpha = np.sqrt(2 * np.log(p) / n)
            alphas = np.array([alpha])
        elif lam == "cv":
            alphas = alpha_max * np.logspace(0, -2, n_lambdas)
        else:
            raise ValueError(f"lam must be 'cv', 'universal' or a number, got {lam!r}.")
    elif isinstance(lam, Real) and lam >= 0:
        alphas = np.array([float(lam)])
    else:
        raise ValueError(f"lam must be 'cv', 'universal' or a number >= 0, got {lam!r}.")
    chunks = _chunks(n, p)
    if isinstance(lam, str) and lam == "cv":
        if not (2 <= n_folds <= n):
            raise ValueError(f"n_folds must be in [2, n={n}], got {n_folds}.")
        fold = np.random.default_rng(random_state).permutation(n) % n_folds
        errors = np.zeros(len(alphas))
        for k in range(n_folds):
            train, test = fold != k, fold == k
            for cols in chunks:
                errors += _path(Z[train], Y[train][:, cols], cols, alphas, tol,
                                test=(Z[test], Y[test][:, cols]))[1]
        best = int(np.argmin(errors))
        path = alphas[: best + 1] * factor
    else:
        path = alphas * factor
    alpha = float(path[-1])
    gamma = np.zeros((p, p))  # column j: gamma_j of the original scale
    for cols in chunks:
        W = _path(Z, Y[:, cols], cols, path, tol)[0]
        W[cols, np.arange(len(cols))] = 0.0
        gamma[:, cols] = W * sd[cols]
    lambdas = alpha * sd
    resid = Z - Z @ gamma  # column j: Z_j - Z_{-j} gamma_j (gamma_jj = 0)
    tau2 = np.sum(resid**2, axis=0) / n + lambdas * np.abs(gamma).sum(axis=0)
    theta = (np.eye(p) - gamma).T / tau2[:, None]
    return Precision(theta=theta, gram=gram, tau2=tau2, lambdas=lambdas, alpha=alpha,
                     means=means, n=n)


def _checked_block(block: TaskBlock) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(block, TaskBlock):
        raise TypeError(f"expected a TaskBlock, got {type(block).__name__}.")
    X = _design(block.X, "block.X")
    n, p = X.shape
    w = _weights(block.w, n)
    s = _vector(block.s, n, "block.s")
    coef = _vector(block.coef, p, "block.coef")
    if block.dispersion is not None and not (np.isfinite(block.dispersion)
                                             and block.dispersion > 0):
        raise ValueError(f"dispersion must be a positive number or None, got "
                         f"{block.dispersion!r}.")
    return X, w, s, coef


def _check_precision(precision: Precision, n: int, p: int) -> None:
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a Precision, got {type(precision).__name__}.")
    if precision.theta.shape != (p, p) or precision.n != n:
        raise ValueError(f"the precision is of a design of {precision.n} rows and "
                         f"{precision.theta.shape[0]} features, not ({n}, {p}).")


def _df(coefs: np.ndarray, intercept: bool) -> np.ndarray:
    """``|S| + 1{intercept}`` per column of ``coefs`` (p, T)."""
    return np.count_nonzero(coefs, axis=0) + int(intercept)


def _dispersion(w: np.ndarray, S: np.ndarray, coefs: np.ndarray, intercept: bool) -> np.ndarray:
    """Pearson ``sum s^2 / w / (m - |S| - 1{intercept})`` per column of S (n, T)."""
    seen = w > 0
    m = int(seen.sum())
    df = _df(coefs, intercept)
    left = m - df
    if np.any(left <= 0):
        raise ValueError(f"cannot estimate the dispersion: {m} rows with weight for a support "
                         f"of up to {int(df.max())} (with the intercept); pass dispersion=.")
    return np.sum(S[seen] ** 2 / w[seen, None], axis=0) / left


def _debias_columns(X: Any, w: np.ndarray, S: np.ndarray, coefs: np.ndarray, intercept: bool,
                    precision: Precision, robust: bool, dispersions: list) -> tuple:
    """The debiased coefficients and standard errors of the columns of ``coefs`` (p, T), one
    design and precision for all: vectorized over the columns."""
    n = X.shape[0]
    theta, means = precision.theta, precision.means
    grad = np.asarray(X.T @ S) - np.outer(means, S.sum(axis=0))  # X_c' S
    B = coefs - theta @ grad / n
    if robust:
        A = _centered(X, means) @ theta.T  # (n, p): row r is Theta x_c,r
        m, df = int(np.count_nonzero(w > 0)), _df(coefs, intercept)
        if np.any(m - df <= 0):
            raise ValueError(f"cannot correct the sandwich: {m} rows with weight for a "
                             f"support of up to {int(df.max())} (with the intercept).")
        var = (A**2).T @ S**2 / n**2 * (m / (m - df))
    else:
        phi = np.array([np.nan if d is None else float(d) for d in dispersions])
        unknown = np.isnan(phi)
        if unknown.any():
            phi[unknown] = _dispersion(w, S[:, unknown], coefs[:, unknown], intercept)
        base = np.sum((theta @ precision.gram) * theta, axis=1) / n  # (Theta Sigma_w Theta')_jj
        var = np.outer(base, phi)
    return B, np.sqrt(np.clip(var, 0.0, None))


def debias(block: TaskBlock, precision: Precision | None = None, robust: bool = False,
           **options: Any) -> tuple[np.ndarray, np.ndarray, Precision]:
    r"""The debiased coefficients of one task and their standard errors.

    ``b = coef - Theta X_c' s / n``; ``Var(b_j) = phi (Theta Sigma_w Theta')_jj / n``, or
    ``(Theta Sigma_s Theta')_jj / n`` with ``Sigma_s = X_c' diag(s^2) X_c / n`` (times the
    HC1 factor ``m / (m - |S| - 1{intercept})``) when ``robust`` (see the module's
    docstring). A 95 % interval is ``b_j +- 1.96 se_j``.

    Parameters
    ----------
    block : TaskBlock
        The task's design, curvature, score, coefficients, intercept flag and dispersion.
    precision : Precision, optional
        A precision of this design and curvature (:func:`nodewise_precision`); computed when
        omitted, with ``options`` passed on.
    robust : bool, default=False
        The sandwich variance instead of the model-based one.

    Returns
    -------
    b, se : ndarray of shape (p,)
    precision : Precision

    Examples
    --------
    With p < n and the exact inverse (``lam=0``) the debiased estimate is least squares and
    its standard errors are those of OLS:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> y = X @ np.array([1.0, 0.0, -1.0]) + rng.standard_normal(100)
    >>> A = np.column_stack([np.ones(100), X])
    >>> beta = np.linalg.lstsq(A, y, rcond=None)[0]
    >>> half = beta[1:] / 2  # a shrunken fit (its intercept refit)
    >>> block = TaskBlock(X, np.ones(100), X @ half + (y - X @ half).mean() - y, half)
    >>> b, se, _ = debias(block, lam=0.0)
    >>> bool(np.allclose(b, beta[1:]))
    True
    """
    X, w, s, coef = _checked_block(block)
    n, p = X.shape
    if precision is None:
        precision = nodewise_precision(X, w, block.intercept, **options)
    _check_precision(precision, n, p)
    B, SE = _debias_columns(X, w, s[:, None], coef[:, None], block.intercept, precision,
                            robust, [block.dispersion])
    return B[:, 0], SE[:, 0], precision


def debiased_covariance(block: TaskBlock, precision: Precision, robust: bool = False
                        ) -> tuple[np.ndarray, np.ndarray]:
    r"""One task's debiased coefficients and their whole covariance (what a Wald test of
    several coefficients needs; :func:`debias` gives its diagonal).

    ``phi Theta Sigma_w Theta' / n``, or with ``robust`` the sandwich
    ``Theta X_c' diag(s^2) X_c Theta' / n^2`` times the HC1 factor
    ``m / (m - |S| - 1{intercept})``.

    Parameters
    ----------
    block : TaskBlock
        The task (its dispersion estimated when None, as in :func:`debias`).
    precision : Precision
        A precision of this design and curvature (:func:`nodewise_precision`).
    robust : bool, default=False
        The sandwich.

    Returns
    -------
    b : ndarray of shape (p,)
    cov : ndarray of shape (p, p)
    """
    X, w, s, coef = _checked_block(block)
    n, p = X.shape
    _check_precision(precision, n, p)
    B, _ = _debias_columns(X, w, s[:, None], coef[:, None], block.intercept, precision,
                           robust, [block.dispersion])
    theta = precision.theta
    if robust:
        A = (_centered(X, precision.means) @ theta.T) * s[:, None]
        m, df = int(np.count_nonzero(w > 0)), int(_df(coef[:, None], block.intercept)[0])
        cov = A.T @ A / n**2 * (m / (m - df))
    else:
        phi = (float(block.dispersion) if block.dispersion is not None else
               float(_dispersion(w, s[:, None], coef[:, None], block.intercept)[0]))
        cov = phi * (theta @ precision.gram @ theta.T) / n
    return B[:, 0], 0.5 * (cov + cov.T)


def _same_design(A: Any, B: Any) -> bool:
    if A is B:
        return True
    if A.shape != B.shape:
        return False
    if sp.issparse(A) or sp.issparse(B):
        return (sp.csr_matrix(A) != sp.csr_matrix(B)).nnz == 0
    return bool(np.array_equal(A, B))


def debiased_tasks(blocks: list[TaskBlock], shared_design: bool, robust: bool = False,
                   **options: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Debiased coefficients and standard errors of every task.

    With ``shared_design`` and equal curvatures on every task (the squared loss with equal
    weights) one precision is fitted, on the shared design, and all tasks are debiased at
    once: ``B = C - Theta X_c' S / n`` with S (n, T) the scores, the standard errors as in
    :func:`debias` column by column, O(n p T) work and memory beyond the precision. Otherwise
    each task gets its own precision (T nodewise fits of p lassos each).

    Parameters
    ----------
    blocks : list of TaskBlock
        One per task, all with p features (a shared design: the same X in each).
    shared_design : bool
        Whether every task's rows are the same design (checked).
    robust : bool, default=False
        The sandwich variance (see :func:`debias`).
    **options
        Passed to :func:`nodewise_precision`.

    Returns
    -------
    B, SE : ndarray of shape (p, T)
    """
    if not isinstance(blocks, (list, tuple)) or len(blocks) == 0:
        raise ValueError("blocks must be a non-empty list of TaskBlock.")
    checked = [_checked_block(b) for b in blocks]
    ps = {X.shape[1] for X, *_ in checked}
    if len(ps) != 1:
        raise ValueError(f"the tasks have different numbers of features: {sorted(ps)}.")
    if shared_design:
        X0 = checked[0][0]
        if not all(_same_design(X0, X) for X, *_ in checked[1:]):
            raise ValueError("shared_design=True but the tasks' designs differ.")
        w0 = checked[0][1]
        same = (all(np.array_equal(w0, w) for _, w, _, _ in checked[1:])
                and len({b.intercept for b in blocks}) == 1)
        if same:
            precision = nodewise_precision(X0, w0, blocks[0].intercept, **options)
            S = np.column_stack([s for _, _, s, _ in checked])
            C = np.column_stack([c for *_, c in checked])
            return _debias_columns(X0, w0, S, C, blocks[0].intercept, precision, robust,
                                   [b.dispersion for b in blocks])
    out = [debias(b, robust=robust, **options)[:2] for b in blocks]
    return np.column_stack([b for b, _ in out]), np.column_stack([se for _, se in out])


def group_chi2(B: Any, SE: Any, rows: Any = None, *, residuals: Any = None) -> GroupTest:
    r"""Test "row j of the coefficients is zero in every task" from debiased estimates.

    With ``z_jt = b_jt / se_jt`` asymptotically N(0, 1) in every task, the statistic is
    ``sum_t z_jt^2 ~ chi2_T`` when the tasks' errors are independent (separate data, or a
    shared design with uncorrelated task errors). On a shared design with correlated errors
    the z's of one row share the correlation ``R`` of the task errors (a common Theta and
    design make ``Cov(b_js, b_jt) = sigma_st (Theta Sigma Theta')_jj / n``), and the statistic
    is ``z_j' R^+ z_j ~ chi2_rank(R)``, ``R`` estimated from the residuals (n, T) as their
    correlation: computed as ``n ||u||^2`` with ``u`` the least-norm solution of
    ``E' u = z_j`` (E the residuals scaled to unit mean square), O(n T) memory, never T x T.

    Parameters
    ----------
    B, SE : array-like of shape (p, T)
        Debiased coefficients and their standard errors (:func:`debiased_tasks`).
    rows : array-like of int, optional
        The rows to test (all by default).
    residuals : array-like of shape (n, T), optional
        The tasks' residuals on the shared rows; None assumes independent task errors.

    Returns
    -------
    GroupTest
    """
    B = np.asarray(B, dtype=float)
    SE = np.asarray(SE, dtype=float)
    if B.ndim != 2 or B.shape != SE.shape:
        raise ValueError(f"B and SE must be 2-D of the same shape (p, T), got {B.shape} and "
                         f"{SE.shape}.")
    p, T = B.shape
    rows = np.arange(p) if rows is None else np.atleast_1d(np.asarray(rows))
    if rows.dtype.kind not in "iu" or rows.size == 0 or rows.min() < -p or rows.max() >= p:
        raise ValueError(f"rows must be integer indices in [0, {p}), got {rows!r}.")
    if not np.all(SE[rows] > 0) or not np.all(np.isfinite(B[rows])):
        raise ValueError("the rows tested need finite coefficients and positive standard "
                         "errors.")
    Z = B[rows] / SE[rows]  # (k, T)
    if residuals is None:
        stat = np.sum(Z**2, axis=1)
        df = T
    else:
        E = np.asarray(residuals, dtype=float)
        if E.ndim != 2 or E.shape[1] != T:
            raise ValueError(f"residuals must have shape (n, {T}), got {E.shape}.")
        n = E.shape[0]
        scale = np.sqrt(np.mean(E**2, axis=0))
        if not np.all(scale > 0):
            raise ValueError("a task's residuals are all zero: its error correlation is "
                             "undefined.")
        E = E / scale
        U, _, df, _ = np.linalg.lstsq(E.T, Z.T, rcond=None)
        stat = n * np.sum(U**2, axis=0)
    return GroupTest(statistic=stat, pvalue=stats.chi2.sf(stat, df), df=int(df))
