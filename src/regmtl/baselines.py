"""The baselines a comparison measures sharing against, as estimators on lists per task.

- :class:`Unregularized`: every task alone with no penalty (least squares, or unpenalized
  logistic regression), the minimum-norm solution where a task's design is rank deficient;
- :class:`PooledModel`: one slope vector w shared by all tasks and an intercept b_t per task,

      minimize  sum_t (1/n_t) sum_i l(y_ti, x_ti . w + b_t) + (alpha/2) ||w||^2,

  a ridge (L2 logistic) fit whose alpha is chosen by cross-validation inside every task.

Both take and return lists per task (or dicts keyed by task), as :func:`regmtl.compare.compare`
hands them the training and test parts of a split.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss

from ._lazy import lazy_module
from .classes import separated
from .datafits import LOSSES, Datafit, loss_on_targets
from .datafits.base import default_loss
from .estimators import MultiTaskClassifier
from .inputs import as_task_data
from .problem import make_datafit
from .selection.folds import take, task_folds
from .selection.path import alpha_grid, alpha_scale
from .taskdata import TaskData, intercept_shift, shift_columns

pd = lazy_module("pandas")

__all__ = ["PooledModel", "Unregularized"]

_KINDS = ("regression", "binary")


# ============================================================================ baseline models
def _dense(A: Any) -> np.ndarray:
    return A.toarray() if sp.issparse(A) else np.asarray(A)


def _task_lists(Xs: Any, ys: Any) -> tuple[list, list, list]:
    """(task names, designs, targets) of lists per task or dicts keyed by task."""
    if isinstance(Xs, Mapping):
        if not isinstance(ys, Mapping) or list(ys) != list(Xs):
            raise ValueError("Xs is a dict, so ys must be a dict with the same task keys.")
        return list(Xs), list(Xs.values()), list(ys.values())
    Xs, ys = list(Xs), list(ys)
    if len(Xs) != len(ys):
        raise ValueError(f"give one target array per task: {len(Xs)} designs, {len(ys)} "
                         "targets.")
    return list(range(len(Xs))), Xs, ys


class _PerTaskLinear(BaseEstimator):
    """Predictions of fitted ``coef_`` (T x p) and ``intercept_`` (T,) on lists per task (or
    dicts keyed by task), in the form given."""

    def _per_task(self, Xs: Any, fn: Callable[[Any, int], np.ndarray]) -> Any:
        if isinstance(Xs, Mapping):
            where = {t: i for i, t in enumerate(self.tasks_)}
            unknown = [k for k in Xs if k not in where]
            if unknown:
                raise ValueError(f"unknown task {unknown[0]!r}; the model was fitted on "
                                 f"{_names(self.tasks_)}.")
            return {k: fn(X, where[k]) for k, X in Xs.items()}
        if len(Xs) != len(self.coef_):
            raise ValueError(f"give one design per task ({len(self.coef_)}); got {len(Xs)}.")
        return [fn(X, t) for t, X in enumerate(Xs)]

    def _score(self, X: Any, t: int) -> np.ndarray:
        return np.asarray(X @ self.coef_[t], dtype=np.float64).ravel() + self.intercept_[t]

    def decision_function(self, Xs: Any) -> Any:
        """The scores ``x . w_t + b_t`` of every task's rows (one array per task)."""
        return self._per_task(Xs, self._score)

    def predict(self, Xs: Any) -> Any:
        """Predicted targets (regression) or labels (classification), one array per task."""
        if self.kind == "regression":
            return self.decision_function(Xs)
        return self._per_task(Xs, lambda X, t: np.asarray(self.classes_[t])[
            (self._score(X, t) > 0).astype(np.int64)])

    def predict_proba(self, Xs: Any) -> Any:
        """Probabilities of ``(classes_[t][0], classes_[t][1])``, one (n_t, 2) array per
        task (classification)."""
        if self.kind != "binary":
            raise AttributeError("predict_proba is for kind='binary'.")

        def proba(X: Any, t: int) -> np.ndarray:
            p = expit(self._score(X, t))
            return np.column_stack([1.0 - p, p])

        return self._per_task(Xs, proba)


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not 'regression' or 'binary'.")


def _varying(X: np.ndarray) -> int:
    """Number of columns that are not constant."""
    return int(np.count_nonzero(np.ptp(X, axis=0) > 0)) if len(X) else 0


def _min_norm_lstsq(X: Any, y: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """(w, b, interpolates) of least squares with an intercept: the minimum-norm solution,
    as :func:`numpy.linalg.lstsq` and ``LinearRegression`` give it; ``interpolates`` when the
    task has no more rows than it has varying features (the solution is not unique)."""
    X = _dense(X).astype(np.float64, copy=False)
    y = np.asarray(y, dtype=np.float64)
    xm, ym = X.mean(axis=0), float(y.mean())
    w = np.linalg.lstsq(X - xm, y - ym, rcond=None)[0]
    return w, ym - float(xm @ w), len(y) - 1 < _varying(X)


def _separated(X: Any, y: np.ndarray) -> bool:
    """Whether some direction separates the classes, completely or quasi-completely: then
    unpenalized logistic regression has no finite fit (:func:`regmtl.classes.separated`)."""
    return separated(X, np.asarray(y), np.unique(y), True)


def _names(tasks: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(t) for t in tasks[:limit])
    return shown + (f" and {len(tasks) - limit} more" if len(tasks) > limit else "")


class Unregularized(_PerTaskLinear):
    """Every task alone with no penalty (alpha = 0): least squares or logistic regression.

    Regression: per task, least squares with an intercept. Where it is not unique (a rank
    deficient design, e.g. a task with no more rows than features) the *minimum-norm*
    solution is used, the limit of ridge as alpha goes to 0 and what :func:`numpy.linalg.lstsq`
    and scikit-learn's ``LinearRegression`` give; a task with no more rows than varying
    features interpolates its training rows, and a warning names such tasks. Classification:
    per task, unpenalized logistic regression (:class:`~regmtl.MultiTaskClassifier` with
    ``alpha=0``). A task whose classes are separated (completely or quasi-completely, e.g.
    fewer rows than features) has no finite fit: a warning names it, and its fit is where the
    solver stops at ``tol``, a separating direction with probabilities near 0 and 1.

    Parameters
    ----------
    kind : {"regression", "binary"}, default="regression"
        The kind of the tasks.
    tol : float, default=1e-4
        Solver tolerance (classification; least squares is solved exactly).

    Attributes
    ----------
    coef_ : ndarray of shape (T, p)
        One row of weights per task.
    intercept_ : ndarray of shape (T,)
        One intercept per task.
    classes_ : list of ndarray
        Each task's two labels (classification).
    alpha_ : float
        0.0.
    not_unique_ : list of int
        The tasks whose fit is not unique (interpolated or separated).

    See Also
    --------
    PooledModel : The other end: one slope vector for all tasks.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.compare import Unregularized
    >>> from regmtl.datasets import make_multitask_regression
    >>> d = make_multitask_regression(3, 30, 4, n_informative=2, noise=0.0, random_state=0)
    >>> m = Unregularized().fit(d.X, d.y)
    >>> bool(np.allclose(m.coef_, d.coef)), [f.shape for f in m.predict(d.X)]
    (True, [(30,), (30,), (30,)])
    """

    def __init__(self, kind: str = "regression", *, tol: float = 1e-4):
        self.kind = kind
        self.tol = tol

    def fit(self, Xs: Sequence[Any], ys: Sequence[Any]) -> Unregularized:
        """Fit every task alone.

        Parameters
        ----------
        Xs : list or dict of array-like or sparse matrix of shape (n_t, p)
            One design per task (a dict keyed by task names the tasks).
        ys : list or dict of array-like of shape (n_t,)
            One target (label) array per task, in the form of ``Xs``.

        Returns
        -------
        self
            The fitted model.
        """
        _check_kind(self.kind)
        self.tasks_, X_list, y_list = _task_lists(Xs, ys)
        self.alpha_ = 0.0
        self.best_params_ = {"alpha": 0.0}
        T = len(X_list)
        if self.kind == "regression":
            fits = [_min_norm_lstsq(X, y) for X, y in zip(X_list, y_list, strict=True)]
            self.coef_ = np.array([w for w, _, _ in fits])
            self.intercept_ = np.array([b for _, b, _ in fits])
            self.not_unique_ = [t for t, (_, _, bad) in enumerate(fits) if bad]
            if self.not_unique_:
                warnings.warn(
                    f"least squares is not unique on {len(self.not_unique_)} of {T} task(s) "
                    f"({self._named(self.not_unique_)}: no more training rows than varying "
                    "features); their minimum-norm solution is used, which interpolates the "
                    "training rows.", UserWarning, stacklevel=2)
            return self
        self.not_unique_ = [t for t, (X, y) in enumerate(zip(X_list, y_list, strict=True))
                            if _separated(X, y)]
        if self.not_unique_:
            warnings.warn(
                f"unpenalized logistic regression has no finite fit on "
                f"{len(self.not_unique_)} of {T} task(s) ({self._named(self.not_unique_)}: "
                "their training classes are separable); the solver stops at tol on a "
                "separating direction, with probabilities near 0 and 1.", UserWarning,
                stacklevel=2)
        clf = MultiTaskClassifier("l2", alpha=0.0, tol=self.tol)
        clf._separated_ok = True  # (warned above: its fit is where the solver stops)
        clf.fit(X_list, y_list)
        self.coef_, self.intercept_ = clf.coef_, clf.intercept_
        self.classes_ = list(clf.classes_)
        return self

    def _named(self, positions: list[int]) -> str:
        return _names([self.tasks_[t] for t in positions])


def _task_means(data: TaskData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, xbar, ybar): each task's total row weight and weighted means of X and y."""
    N, T = data.n_obs, data.n_tasks
    Ec = sp.csr_matrix((data.c, (np.arange(N), data.task_of)), shape=(N, T))
    m = np.asarray(Ec.sum(axis=0)).ravel()
    return m, _dense(Ec.T @ data.X) / m[:, None], (Ec.T @ data.y) / m


def _ridge_path(data: TaskData, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Pooled ridge with task intercepts, exactly, for every alpha: W (K, p), B (K, T).

    Minimizes :math:`\sum_r c_r \tfrac12 (y_r - x_r^\top w - b_{t(r)})^2 +
    \tfrac{\alpha}2 \|w\|^2`: the intercepts are profiled out by centering every task
    (weighted means), and one eigendecomposition, of the p x p Gram matrix or of the N x N
    kernel when p > N, gives the whole path."""
    X, c, t = data.X, data.c, data.task_of
    m, xbar, ybar = _task_means(data)
    yc = data.y - ybar[t]
    N, p = X.shape
    if p <= N:
        if sp.issparse(X):
            H = _dense(X.T @ sp.diags(c) @ X) - (xbar.T * m) @ xbar
        else:
            Xc = X - xbar[t]
            H = Xc.T @ (c[:, None] * Xc)
        lam, V = np.linalg.eigh(H)
        q = V.T @ np.asarray(X.T @ (c * yc)).ravel()  # the centering terms sum to zero
        W = np.array([V @ (q / (np.maximum(lam, 0.0) + a)) for a in alphas])
    else:
        sc = np.sqrt(c)
        A = np.asarray(X @ xbar.T)[:, t]
        K = _dense(X @ X.T) - A - A.T + (xbar @ xbar.T)[t][:, t]
        lam, V = np.linalg.eigh(sc[:, None] * K * sc[None, :])
        q = V.T @ (sc * yc)
        W = []
        for a in alphas:
            v = sc * (V @ (q / (np.maximum(lam, 0.0) + a)))
            W.append(np.asarray(X.T @ v).ravel() - xbar.T @ np.bincount(t, v, minlength=len(m)))
        W = np.array(W)
    return W, ybar[None, :] - W @ xbar.T


def _logistic_value(X, y, c, t, alpha, w, b) -> float:
    f = np.asarray(X @ w).ravel() + b[t]
    return float(c @ np.logaddexp(0.0, -y * f)) + 0.5 * alpha * float(w @ w)


def _newton_step(X, y, c, t, T, alpha, w, b):
    """(dw, db, decrement^2) of one Newton step on the pooled logistic objective; the
    Hessian's intercept block is diagonal, so the step solves its p x p Schur complement."""
    N, p = X.shape
    s = expit(-y * (np.asarray(X @ w).ravel() + b[t]))
    r = -c * y * s
    gw = np.asarray(X.T @ r).ravel() + alpha * w
    gb = np.bincount(t, r, minlength=T)
    d = c * s * (1.0 - s)
    Dt = sp.csr_matrix((d, (np.arange(N), t)), shape=(N, T)).T
    Hwb = _dense(Dt @ X).T
    hbb = np.maximum(np.asarray(Dt.sum(axis=1)).ravel(), np.finfo(float).tiny)
    Hww = _dense(X.T @ sp.diags(d) @ X) if sp.issparse(X) else X.T @ (d[:, None] * X)
    S = Hww + alpha * np.eye(p) - (Hwb / hbb) @ Hwb.T
    dw = sla.solve(S, gw - Hwb @ (gb / hbb), assume_a="sym")
    db = (gb - Hwb.T @ dw) / hbb
    return dw, db, float(gw @ dw + gb @ db)


def _newton_logistic(X, y, c, t, T, alpha, w, b, tol_abs, max_iter=100):
    """Damped Newton (Armijo backtracking) from (w, b): (w, b, converged)."""
    value = _logistic_value(X, y, c, t, alpha, w, b)
    for _ in range(max_iter):
        dw, db, dec = _newton_step(X, y, c, t, T, alpha, w, b)
        if dec / 2 <= max(tol_abs, 1e-15 * abs(value)):
            return w, b, True
        step = 1.0
        while step > 1e-10:
            w_new, b_new = w - step * dw, b - step * db
            new = _logistic_value(X, y, c, t, alpha, w_new, b_new)
            if new <= value - 0.25 * step * dec:
                break
            step *= 0.5
        else:
            return w, b, False
        w, b, value = w_new, b_new, new
    return w, b, False


def _logistic_path(data: TaskData, alphas: np.ndarray, tol: float
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Pooled L2 logistic regression with task intercepts along ``alphas`` (decreasing,
    warm-started): W (K, p), B (K, T), and how many fits stopped short of ``tol``.

    Minimizes :math:`\sum_r c_r \log(1 + e^{-y_r (x_r^\top w + b_{t(r)})}) +
    \tfrac{\alpha}2 \|w\|^2` by Newton's method, to a Newton decrement within ``tol`` times
    the objective at w = 0 (intercepts fitted)."""
    X, y, c, t, T = data.X, data.y, data.c, data.task_of, data.n_tasks
    pos = np.bincount(t, c * (y > 0), minlength=T) / np.bincount(t, c, minlength=T)
    b = np.log(pos) - np.log1p(-pos)
    w = np.zeros(X.shape[1])
    tol_abs = tol * _logistic_value(X, y, c, t, 0.0, w, b)
    W, B, short = [], [], 0
    for a in alphas:
        w, b, ok = _newton_logistic(X, y, c, t, T, float(a), w, b, tol_abs)
        W.append(w)
        B.append(b)
        short += not ok
    return np.array(W), np.array(B), short


def _validation_score(val: TaskData, w: np.ndarray, b: np.ndarray, binary: bool) -> float:
    """Minus the mean squared error (log-loss) of every task's validation rows, averaged
    over the tasks that have some: the default score of the CV estimators."""
    f = np.asarray(val.X @ w).ravel() + b[val.task_of]
    loss = np.logaddexp(0.0, -val.y * f) if binary else (val.y - f) ** 2
    sw = np.ones(val.n_obs) if val.sample_weight is None else val.sample_weight
    if val.observed is not None:
        sw = np.where(val.observed, sw, 0.0)
    total = np.bincount(val.task_of, sw, minlength=val.n_tasks)
    has = total > 0
    sums = np.bincount(val.task_of, sw * loss, minlength=val.n_tasks)
    return -float(np.mean(sums[has] / total[has]))


class PooledModel(_PerTaskLinear):
    r"""One slope vector shared by all tasks, one intercept per task; alpha by inner CV.

    The pooled baseline: every task predicts :math:`x^\top w + b_t`, with the slopes
    :math:`w` learned from the rows of all tasks and the intercepts :math:`b_t` (never
    penalized) letting tasks differ in level. It minimizes the multi-task objective with all
    :math:`w_t` equal,

    .. math::

        \sum_t \frac{\omega_t}{n_t} \sum_i \ell(y_{ti}, x_{ti}^\top w + b_t)
        + \frac{\alpha}{2} \|w\|_2^2,

    the squared loss solved exactly (tasks centered, one eigendecomposition for the whole
    grid), the logistic loss by Newton's method. ``alpha`` is chosen by cross-validation
    inside every task (:func:`~regmtl.selection.task_folds`; stratified for classification),
    scored as :class:`~regmtl.MultiTaskRegressorCV` scores (negative mean squared error or
    log-loss, averaged over tasks), on a geometric grid from :math:`100\, T s` down to
    :math:`10^{-6}` of it (:math:`s` of :func:`~regmtl.selection.alpha_scale`), then refitted
    on all rows.

    Parameters
    ----------
    kind : {"regression", "binary"}, default="regression"
        The kind of the tasks (squared or logistic loss).
    alphas : int or array-like, default=12
        Size of the grid, or the values (> 0).
    cv : int, splitter or iterable, default=3
        Folds inside every task, as for :func:`~regmtl.selection.task_folds`.
    tol : float, default=1e-4
        Relative tolerance of the logistic fits.
    task_weight : {"equal", "samples"} or array-like, default="equal"
        :math:`\omega_t`, as for :class:`~regmtl.MultiTaskRegressor`.
    random_state : int or None, default=0
        Shuffles the rows of every task before the folds.

    Attributes
    ----------
    alpha_ : float
        The chosen alpha.
    alphas_ : ndarray
        The grid.
    cv_results_ : DataFrame
        ``param_alpha``, ``mean_test_score``, ``std_test_score`` (over folds) per alpha.
    n_splits_ : int
        Number of folds.
    coef_ : ndarray of shape (T, p)
        The shared slopes, one (equal) row per task.
    intercept_ : ndarray of shape (T,)
        One intercept per task.
    classes_ : list of ndarray
        Each task's two labels (classification).

    See Also
    --------
    Unregularized : The other end: every task alone.
    regmtl.MeanRegularized : Shrinks the tasks' weights towards their mean instead.

    Examples
    --------
    Three tasks with the same slopes and different levels:

    >>> import numpy as np
    >>> from regmtl.compare import PooledModel
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((40, 3)) for _ in range(3)]
    >>> ys = [X @ [1.0, -2.0, 0.5] + 10.0 * t for t, X in enumerate(Xs)]
    >>> m = PooledModel(alphas=8, cv=3).fit(Xs, ys)
    >>> m.coef_.round(2)[0].tolist(), m.intercept_.round(1).tolist()
    ([1.0, -2.0, 0.5], [0.0, 10.0, 20.0])
    """

    def __init__(self, kind: str = "regression", *, alphas: int | Any = 12, cv: Any = 3,
                 tol: float = 1e-4, task_weight: Any = "equal", random_state: Any = 0):
        self.kind = kind
        self.alphas = alphas
        self.cv = cv
        self.tol = tol
        self.task_weight = task_weight
        self.random_state = random_state

    def fit(self, Xs: Sequence[Any], ys: Sequence[Any]) -> PooledModel:
        """Choose alpha by cross-validation inside every task and refit on all rows.

        Parameters
        ----------
        Xs : list or dict of array-like or sparse matrix of shape (n_t, p)
            One design per task (a dict keyed by task names the tasks).
        ys : list or dict of array-like of shape (n_t,)
            One target (label) array per task, in the form of ``Xs``.

        Returns
        -------
        self
            The fitted model.
        """
        _check_kind(self.kind)
        binary = self.kind == "binary"
        self.tasks_, X_list, y_list = _task_lists(Xs, ys)
        given = (Xs, ys) if isinstance(Xs, Mapping) else (X_list, y_list)
        data = as_task_data(*given, task_weight=self.task_weight, numeric_y=not binary)
        if binary:
            data.encode_binary()
            self.classes_ = list(data.classes)
        # columns far from zero: every fit and score on them shifted (one-pass centered
        # moments would lose them), the intercepts mapped back at the end
        data = shift_columns(data)
        self.alphas_ = self._grid(data)
        folds = task_folds(data, self.cv, stratify=binary, random_state=self.random_state)
        scores = np.empty((len(folds), len(self.alphas_)))
        short = 0
        for k, (train_idx, val_idx) in enumerate(folds):
            train = take(data, train_idx, self.task_weight, encode=binary)
            val = take(data, val_idx, fit=False)
            W, B, n_short = self._path(train, self.alphas_)
            short += n_short
            scores[k] = [_validation_score(val, w, b, binary) for w, b in zip(W, B, strict=True)]
        mean = scores.mean(axis=0)
        best = int(np.nanargmax(mean))
        self.alpha_ = float(self.alphas_[best])
        self.best_params_ = {"alpha": self.alpha_}
        self.n_splits_ = len(folds)
        self.cv_results_ = pd.DataFrame({"param_alpha": self.alphas_,
                                         "mean_test_score": mean,
                                         "std_test_score": scores.std(axis=0)})
        W, B, n_short = self._path(data, self.alphas_[best:best + 1])
        short += n_short
        if short:
            warnings.warn(f"{short} pooled logistic fit(s) stopped short of tol={self.tol:g}.",
                          ConvergenceWarning, stacklevel=2)
        self.coef_ = np.repeat(W, data.n_tasks, axis=0)
        self.intercept_ = B[0] - intercept_shift(data, W[0][:, None])
        return self

    def _grid(self, data: TaskData) -> np.ndarray:
        if isinstance(self.alphas, Integral):
            top = 100.0 * data.n_tasks * alpha_scale(data, make_datafit(default_loss(self.kind)))
            return alpha_grid(top, int(self.alphas), 1e-6)
        grid = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
        if grid.size == 0 or not np.all(np.isfinite(grid)) or grid.min() <= 0:
            raise ValueError(f"alphas={self.alphas!r}: give a number of values or values > 0 "
                             "(alpha = 0 is the 'unregularized' model).")
        return grid

    def _path(self, data: TaskData, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        if self.kind == "regression":
            return (*_ridge_path(data, alphas), 0)
        return _logistic_path(data, alphas, self.tol)




# ============================================================================ per loss
def task_loss_list(loss: Any, T: int) -> list:
    """The loss of each of T tasks (a loss per task, or one for all)."""
    datafit = make_datafit(loss)
    if datafit.kind == "mixed":
        if len(datafit.losses) != T:
            raise ValueError(f"loss has {len(datafit.losses)} entries for {T} tasks: give "
                             "one loss per task.")
        return list(datafit.losses)
    return [datafit] * T


def _anchor(loss: Any) -> tuple[Callable, str, str]:
    """The loss's single-task scikit-learn estimator (``Datafit.single_task_anchor``)."""
    entry = loss.single_task_anchor()
    if entry is None:
        have = sorted(name for name, cls in LOSSES.items()
                      if cls.single_task_anchor is not Datafit.single_task_anchor)
        raise ValueError(f"no scikit-learn baseline for the loss {loss!r}; the losses that "
                         f"have one: {have}.")
    return entry


def _linear(est: Any, X: Any) -> np.ndarray:
    """The linear predictor of a fitted scikit-learn linear model."""
    return (np.asarray(X @ np.ravel(est.coef_), dtype=np.float64).ravel()
            + float(np.ravel(est.intercept_)[0]))


def _task_grid(loss: Any, X: np.ndarray, y: np.ndarray, n_alphas: int) -> np.ndarray:
    r"""A geometric grid of ``alpha`` for one task: for the L1 anchor (quantile) from its
    ``alpha_max`` :math:`\|X_c^\top (\tau - 1\{y < q_\tau\})\|_\infty / n` down to 1e-3 of
    it; for the L2 anchors from :math:`100 \kappa s` down to 1e-6 of it, :math:`s` the mean
    variance of the columns and :math:`\kappa` the loss's curvature at the intercept-only
    fit (the mean count for Poisson, 1/4 logistic, 1 otherwise)."""
    n = len(y)
    Xc = X - X.mean(axis=0)
    if _anchor(loss)[1] == "l1":
        tau = loss.quantile
        g = Xc.T @ (tau - (y < np.quantile(y, tau)))
        top = float(np.max(np.abs(g))) / n
        return alpha_grid(top if top > 0 else 1.0, n_alphas, 1e-3)
    s = loss.anchor_curvature(y) * float(np.mean(np.sum(Xc * Xc, axis=0) / n))
    return alpha_grid(100.0 * s if s > 0 else 1.0, n_alphas, 1e-6)


def _labelled(loss: Any) -> bool:
    """Whether the loss reads labels (binary and multinomial tasks)."""
    return loss.kind in ("binary", "multiclass")


def _encoded(loss: Any, y: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Targets as the loss reads them (a binary task's labels to -1/+1)."""
    if loss.kind == "binary":
        return np.where(y == classes[-1], 1.0, -1.0)
    return np.asarray(y, dtype=np.float64)


class Independent(_PerTaskLinear):
    """Every task alone with scikit-learn's estimator of its loss, its alpha tuned per task
    by cross-validation inside the task on the loss's mean deviance.

    The anchors (each loss's ``single_task_anchor``): ``Ridge`` (squared),
    ``LogisticRegression`` (logistic; multinomial, for tasks of any number of classes,
    tuned on its mean log loss),
    ``PoissonRegressor`` (poisson), ``GammaRegressor`` (gamma), ``HuberRegressor`` (huber),
    ``QuantileRegressor(quantile=tau, solver="highs")`` (quantile, its L1 penalty), one per
    task of a fit with one loss per task. ``alpha`` is in regmtl's units (the mean loss
    plus ``alpha/2 ||w||^2``; ``alpha ||w||_1`` for the quantile loss), turned into each
    estimator's own (``Ridge(alpha=n alpha)``, ``LogisticRegression(C=1/(n alpha))``,
    ``HuberRegressor(alpha=n alpha)``). ``HuberRegressor`` fits a scale jointly and reads
    its ``epsilon`` (1.35, scikit-learn's default) in units of that scale, where
    :class:`~regmtl.Huber`'s ``delta`` is in the targets' units: the two are the same
    robust model only for noise of unit scale; the baseline is scored on regmtl's Huber
    deviance like every model. ``alphas=[0.0]`` fits every task without a penalty (the
    ``"unregularized"`` baseline of :func:`~regmtl.compare` for these losses).

    Parameters
    ----------
    loss : str, Datafit or list of them, default="poisson"
        The loss, or one per task.
    alphas : int or array-like, default=12
        Size of each task's grid (see ``_task_grid``), or the values (>= 0).
    cv : int, default=3
        Folds inside every task (stratified for a binary task; fewer for a task with fewer
        rows).
    tol : float, default=1e-4
        The estimators' tolerance.
    random_state : int or None, default=0
        Shuffles every task's rows before its folds.

    Attributes
    ----------
    coef_ : ndarray of shape (T, p), or list of them
        Every task's weights (the linear predictor's); with the multinomial loss a list of
        each task's (K_t, p) weights, one row per class (one row for a task of two classes,
        as ``LogisticRegression``).
    intercept_ : ndarray of shape (T,), or list of them
        The intercepts (each task's (K_t,) with the multinomial loss).
    alpha_ : ndarray of shape (T,)
        Each task's chosen alpha.
    estimators_ : list
        The refitted scikit-learn estimator of every task.
    classes_ : list
        Each binary or multinomial task's labels (None for the others).

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.baselines import Independent
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((60, 3)) for _ in range(2)]
    >>> ys = [rng.poisson(np.exp(X @ [0.5, 0.0, -0.3])) for X in Xs]
    >>> m = Independent("poisson", alphas=4, cv=3).fit(Xs, ys)
    >>> m.coef_.shape, type(m.estimators_[0]).__name__
    ((2, 3), 'PoissonRegressor')
    """

    kind = "regression"

    def __init__(self, loss: Any = "poisson", *, alphas: int | Any = 12, cv: int = 3,
                 tol: float = 1e-4, random_state: Any = 0):
        self.loss = loss
        self.alphas = alphas
        self.cv = cv
        self.tol = tol
        self.random_state = random_state

    def fit(self, Xs: Sequence[Any], ys: Sequence[Any]) -> Independent:
        """Fit every task alone, its alpha chosen by cross-validation inside it.

        Parameters
        ----------
        Xs : list or dict of array-like of shape (n_t, p)
            One design per task.
        ys : list or dict of array-like of shape (n_t,)
            One target array per task (numeric labels for a binary task).

        Returns
        -------
        self
            The fitted model.
        """
        self.tasks_, X_list, y_list = _task_lists(Xs, ys)
        # (Huber()'s delta read on all the tasks' targets, as regmtl's fits read it)
        resolved = loss_on_targets(self.loss, y_list) if self.loss is not None else None
        losses = task_loss_list(getattr(resolved, "losses", resolved), len(X_list))
        for loss in losses:
            _anchor(loss)
        self.losses_ = losses
        coefs, icpts, alphas, ests, classes = [], [], [], [], []
        for X, y, loss in zip(X_list, y_list, losses, strict=True):
            X = _dense(X).astype(np.float64, copy=False)
            y = np.asarray(y)
            cls = np.unique(y) if _labelled(loss) else None
            a = self._choose(loss, X, y, cls)
            est = self._fit(loss, a, X, y)
            if loss.kind == "multiclass":
                coefs.append(np.atleast_2d(est.coef_))
                icpts.append(np.atleast_1d(est.intercept_).astype(np.float64))
            else:
                coefs.append(np.ravel(est.coef_))
                icpts.append(float(np.ravel(est.intercept_)[0]))
            alphas.append(a)
            ests.append(est)
            classes.append(cls)
        if any(loss.kind == "multiclass" for loss in losses):
            self.coef_, self.intercept_ = coefs, icpts
        else:
            self.coef_, self.intercept_ = np.array(coefs), np.array(icpts)
        self.alpha_, self.estimators_, self.classes_ = np.array(alphas), ests, classes
        self.best_params_ = {"alpha": self.alpha_}
        return self

    def _fit(self, loss: Any, alpha: float, X: np.ndarray, y: np.ndarray) -> Any:
        est = _anchor(loss)[0](loss, float(alpha), len(y), self.tol)
        return est.fit(X, y)

    def _grid(self, loss: Any, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        if isinstance(self.alphas, Integral):
            y = np.zeros(len(y)) if loss.kind == "multiclass" else y  # (not read)
            return _task_grid(loss, X, np.asarray(y, dtype=np.float64), int(self.alphas))
        grid = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
        if grid.size == 0 or not np.all(np.isfinite(grid)) or grid.min() < 0:
            raise ValueError(f"alphas={self.alphas!r}: give a number of values or values "
                             ">= 0.")
        return grid

    def _choose(self, loss: Any, X: np.ndarray, y: np.ndarray, cls: Any) -> float:
        """The alpha of the grid with the least mean validation deviance."""
        from sklearn.model_selection import KFold, StratifiedKFold

        grid = self._grid(loss, X, y)
        if len(grid) == 1:
            return float(grid[0])
        k = min(int(self.cv), int(np.min(np.unique(y, return_counts=True)[1])) if cls
                is not None else len(y))
        if k < 2:  # (a class of one row: no stratified folds)
            return float(grid[len(grid) // 2])
        split = (StratifiedKFold if cls is not None else KFold)(
            k, shuffle=True, random_state=self.random_state)
        dev = np.zeros(len(grid))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for tr, te in split.split(X, y if cls is not None else None):
                for i, a in enumerate(grid):
                    est = self._fit(loss, a, X[tr], y[tr])
                    if loss.kind == "multiclass":  # twice the mean log loss
                        dev[i] += 2.0 * log_loss(y[te], est.predict_proba(X[te]),
                                                 labels=cls)
                        continue
                    dev[i] += float(np.mean(loss.deviance(_encoded(loss, y[te], cls),
                                                          _linear(est, X[te]))))
        return float(grid[int(np.argmin(dev))])

    def _score(self, X: Any, t: int) -> np.ndarray:
        if self.losses_[t].kind == "multiclass":  # (n, K_t): one score per class
            return self.estimators_[t].decision_function(_dense(X).astype(np.float64))
        return super()._score(X, t)

    def decision_function(self, Xs: Any) -> Any:
        """Every task's linear predictor ``x . w_t + b_t`` (one array per task; for a
        multinomial task, (n_t, K_t) as ``LogisticRegression.decision_function``)."""
        return self._per_task(Xs, self._score)

    def predict(self, Xs: Any) -> Any:
        """Each task's prediction in its units: the loss's mean (``exp`` of the linear
        predictor for the log links), a label for a binary or multinomial task."""
        def natural(X: Any, t: int) -> np.ndarray:
            if self.losses_[t].kind == "multiclass":
                return self.estimators_[t].predict(_dense(X).astype(np.float64))
            f = self._score(X, t)
            if self.classes_[t] is not None:
                return np.asarray(self.classes_[t])[(f > 0).astype(np.int64)]
            return self.losses_[t].mean(f)

        return self._per_task(Xs, natural)

    def predict_proba(self, Xs: Any) -> Any:
        """Each binary or multinomial task's class probabilities, (n_t, K_t) over
        ``classes_[t]`` (one array per task).

        Raises
        ------
        AttributeError
            If a task is not a classification task.
        """
        if any(c is None for c in self.classes_):
            raise AttributeError("predict_proba is for binary and multinomial tasks.")
        return self._per_task(Xs, lambda X, t: self.estimators_[t].predict_proba(
            _dense(X).astype(np.float64)))
