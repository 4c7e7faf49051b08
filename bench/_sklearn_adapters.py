r"""scikit-learn's coordinate-descent estimators, fitted by regmtl.

Thin adapters with scikit-learn's constructor signatures and fitted attributes (``coef_``,
``intercept_``, ``n_iter_``, ``dual_gap_``, ``alpha_``, ``alphas_``, ``mse_path_``, ...), each
delegating the fit (and ``predict``) to regmtl's public estimators, so that scikit-learn's own
tests can run against regmtl (``bench/sklearn_suite.py``).

The objectives map exactly (no rescaling of ``alpha``): regmtl's data term
:math:`\frac{1}{2 n} \|y - X w - b\|^2` (weighted rows: :math:`\frac{1}{2 \sum_i s_i}
\sum_i s_i (y_i - x_i w - b)^2`) is scikit-learn's, and

* ``Lasso(alpha)`` = ``MultiTaskRegressor(penalty=L1(positive), alpha)`` on one task;
* ``ElasticNet(alpha, l1_ratio)`` = ``MultiTaskRegressor(penalty=ElasticNet(l1_ratio,
  positive), alpha)``: :math:`\alpha (\rho \|w\|_1 + \frac{1 - \rho}{2} \|w\|_2^2)`; a 2-D
  ``y`` is fitted column by column, as scikit-learn does;
* ``MultiTaskLasso(alpha)`` = ``MultiTaskRegressor(penalty=L21(), alpha)`` on the shared
  design ``(X, Y)``: :math:`\frac{1}{2 n} \|Y - X W\|_F^2 + \alpha \sum_j \|W_j\|_2`;
* ``MultiTaskElasticNet(alpha, l1_ratio)`` = ``L21(l1_ratio)``: plus
  :math:`\frac{\alpha (1 - \rho)}{2} \|W\|_F^2`;
* the ``...CV`` classes = ``MultiTaskRegressorCV`` with the same penalty, the folds of
  scikit-learn's ``check_cv(cv)`` passed as explicit ``(train, test)`` pairs, ``alphas``
  (a grid size from ``alpha_max`` down to ``eps * alpha_max``, or the values) and ``l1_ratio``
  (a list: ``penalty_grid``), scored by the mean squared error.

``tol`` is passed as is (regmtl stops at a duality gap below ``tol`` times the objective at
W = 0, scikit-learn at ``tol`` times ``||y||^2 / n``: regmtl's is twice as strict).
``dual_gap_`` is regmtl's duality gap in that same scaling (at ``alpha = 0``, where regmtl
certifies by the KKT residual, that residual); ``coef_`` is cast to float32 for float32 ``X``
(scikit-learn's convention; regmtl fits in float64); ``tol=0`` becomes the smallest positive
float. ``precompute``, ``copy_X``, ``selection``, ``random_state`` and ``check_input`` concern
scikit-learn's solver and are accepted and ignored; the fit never writes into ``X``. With
``alphas=1`` the CV grid is ``[alpha_max]`` whatever ``eps`` (``eps`` is not passed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted

import regmtl as rm

__all__ = [
    "Lasso", "ElasticNet", "MultiTaskLasso", "MultiTaskElasticNet",
    "LassoCV", "ElasticNetCV", "MultiTaskLassoCV", "MultiTaskElasticNetCV",
]


def _float_dtype(X: Any) -> np.dtype:
    """float32 for float32 input (scikit-learn keeps it in ``coef_``), else float64."""
    dtype = getattr(X, "dtype", None)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """A scalar weight is every row's weight (scikit-learn's convention)."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    return np.full(n, float(sw)) if sw.ndim == 0 else sw


def _tol(tol: float) -> float:
    """scikit-learn's ``tol=0`` (never stop before ``max_iter``) as the smallest positive
    tolerance (regmtl asks for ``tol > 0``; any ``tol`` below the rounding floor runs to
    ``max_iter`` alike)."""
    return tol if tol > 0 else float(np.finfo(np.float64).tiny)


def _as_design(X: Any) -> Any:
    """Lists become arrays; sparse matrices other than CSR/CSC become CSC."""
    if sp.issparse(X):
        return X if X.format in ("csr", "csc") else X.tocsc()
    return X if hasattr(X, "shape") else np.asarray(X)


class _Linear(RegressorMixin, BaseEstimator):
    """Fit and predict through regmtl models (one per target for the single-task classes)."""

    _multitask = False

    def _penalty(self) -> Any:
        raise NotImplementedError

    def _model(self, idx: int | None) -> rm.MultiTaskRegressor:
        params = dict(penalty=self._penalty(), alpha=self.alpha, fit_intercept=self.fit_intercept,
                      tol=_tol(self.tol), max_iter=self.max_iter, warm_start=self.warm_start)
        model = rm.MultiTaskRegressor(**params)
        if self.warm_start and hasattr(self, "coef_"):  # start from the current coef_
            coef = np.asarray(self.coef_, dtype=np.float64)
            b = np.asarray(getattr(self, "intercept_", 0.0), dtype=np.float64)
            if idx is not None and coef.ndim == 2:
                coef, b = coef[idx], (b[idx] if b.ndim else b)
            prev = getattr(self, "_models_", [])
            k = 0 if idx is None else idx
            if k < len(prev) and np.array_equal(np.asarray(prev[k].coef_), coef):
                # coef_ untouched since the last fit: refit that model, as a regmtl user
                # would (it knows the alpha it was solved at)
                return prev[k].set_params(**params)
            model.coef_ = coef.copy()
            model.intercept_ = float(b) if coef.ndim == 1 else np.broadcast_to(
                b, coef.shape[:1]).copy()
        return model

    def fit(self, X: Any, y: Any, sample_weight: Any = None, check_input: bool = True):
        """Fit the model with regmtl (see the module's mapping)."""
        X = _as_design(X)
        y = np.asarray(y)
        if self._multitask and y.ndim != 2:
            raise ValueError("For mono-task outputs, use ElasticNet or Lasso: y must be 2-D.")
        sw = _weights(sample_weight, X.shape[0])
        dtype = _float_dtype(X)
        if self._multitask or y.ndim == 1:
            m = self._model(None).fit(X, y, sample_weight=sw)
            self._models_ = [m]
            self.coef_ = np.asarray(m.coef_, dtype=dtype)
            self.intercept_ = (np.asarray(m.intercept_, dtype=dtype) if self._multitask
                               else dtype.type(m.intercept_))
            self.dual_gap_ = float(getattr(m, "dual_gap_", getattr(m, "kkt_residual_", 0.0)))
            self.n_iter_ = int(m.n_iter_)
        else:  # one target at a time, as scikit-learn's ElasticNet
            self._models_ = [self._model(k).fit(X, y[:, k], sample_weight=sw)
                             for k in range(y.shape[1])]
            self.coef_ = np.array([m.coef_ for m in self._models_], dtype=dtype)
            self.intercept_ = np.array([m.intercept_ for m in self._models_], dtype=dtype)
            self.dual_gap_ = np.array([getattr(m, "dual_gap_", 0.0) for m in self._models_])
            self.n_iter_ = [int(m.n_iter_) for m in self._models_]
        self.n_features_in_ = self._models_[0].n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the regmtl model(s)."""
        check_is_fitted(self, "_models_")
        X = _as_design(X)
        preds = [np.asarray(m.predict(X)) for m in self._models_]
        out = preds[0] if len(preds) == 1 else np.column_stack(preds)
        return out.astype(_float_dtype(X) if _float_dtype(X) == self.coef_.dtype else
                          np.float64, copy=False)

    @property
    def sparse_coef_(self) -> sp.csr_matrix:
        """``coef_`` as a sparse (1, p) or (T, p) matrix."""
        return sp.csr_matrix(np.atleast_2d(np.asarray(self.coef_)))


class ElasticNet(_Linear):
    """scikit-learn's ``ElasticNet`` = ``MultiTaskRegressor(penalty=ElasticNet(l1_ratio,
    positive), alpha=alpha)``: :math:`\\frac{1}{2n}\\|y - Xw - b\\|^2 + \\alpha\\rho\\|w\\|_1
    + \\frac{\\alpha(1-\\rho)}{2}\\|w\\|^2`, exactly scikit-learn's objective."""

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, precompute=False,
                 max_iter=1000, copy_X=True, tol=1e-4, warm_start=False, positive=False,
                 random_state=None, selection="cyclic"):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.copy_X = copy_X
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    def _penalty(self):
        return rm.ElasticNet(l1_ratio=self.l1_ratio, positive=self.positive)


class Lasso(ElasticNet):
    """scikit-learn's ``Lasso`` = ``MultiTaskRegressor(penalty=L1(positive), alpha=alpha)``:
    :math:`\\frac{1}{2n}\\|y - Xw - b\\|^2 + \\alpha\\|w\\|_1`."""

    def __init__(self, alpha=1.0, *, fit_intercept=True, precompute=False, copy_X=True,
                 max_iter=1000, tol=1e-4, warm_start=False, positive=False,
                 random_state=None, selection="cyclic"):
        super().__init__(alpha=alpha, l1_ratio=1.0, fit_intercept=fit_intercept,
                         precompute=precompute, max_iter=max_iter, copy_X=copy_X, tol=tol,
                         warm_start=warm_start, positive=positive,
                         random_state=random_state, selection=selection)

    def _penalty(self):
        return rm.L1(positive=self.positive)


class MultiTaskElasticNet(MultiOutputMixin, _Linear):
    """scikit-learn's ``MultiTaskElasticNet`` = ``MultiTaskRegressor(penalty=L21(l1_ratio),
    alpha=alpha)`` on the shared design ``(X, Y)``: :math:`\\frac{1}{2n}\\|Y - XW\\|_F^2 +
    \\alpha\\rho\\sum_j\\|W_j\\|_2 + \\frac{\\alpha(1-\\rho)}{2}\\|W\\|_F^2`."""

    _multitask = True

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, copy_X=True,
                 max_iter=1000, tol=1e-4, warm_start=False, random_state=None,
                 selection="cyclic"):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.selection = selection

    def _penalty(self):
        return rm.L21(l1_ratio=self.l1_ratio)


class MultiTaskLasso(MultiTaskElasticNet):
    """scikit-learn's ``MultiTaskLasso`` = ``MultiTaskRegressor(penalty=L21(), alpha=alpha)``
    on the shared design: :math:`\\frac{1}{2n}\\|Y - XW\\|_F^2 + \\alpha\\sum_j\\|W_j\\|_2`."""

    def __init__(self, alpha=1.0, *, fit_intercept=True, copy_X=True, max_iter=1000,
                 tol=1e-4, warm_start=False, random_state=None, selection="cyclic"):
        super().__init__(alpha=alpha, l1_ratio=1.0, fit_intercept=fit_intercept,
                         copy_X=copy_X, max_iter=max_iter, tol=tol, warm_start=warm_start,
                         random_state=random_state, selection=selection)

    def _penalty(self):
        return rm.L21()


class _LinearCV(RegressorMixin, BaseEstimator):
    """``MultiTaskRegressorCV`` with scikit-learn's folds, grid and attributes."""

    _multitask = False
    _has_l1_ratio = True

    def _penalty(self, l1_ratio: float) -> Any:
        raise NotImplementedError

    def _ratios(self) -> list[float]:
        r = getattr(self, "l1_ratio", 1.0)
        return [float(v) for v in np.atleast_1d(r)]

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params):
        """Choose ``alpha`` (and ``l1_ratio``) by regmtl's cross-validation, refit."""
        X = _as_design(X)
        y = np.asarray(y)
        if self._multitask and y.ndim != 2:
            raise ValueError("For mono-task outputs, use ElasticNetCV or LassoCV: y must be "
                             "2-D.")
        if not self._multitask and y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise ValueError("For multi-task outputs, use MultiTaskElasticNetCV or "
                             "MultiTaskLassoCV: y must be 1-D.")
        if not self._multitask:
            y = y.ravel()
        n = X.shape[0]
        sw = _weights(sample_weight, n)
        folds = list(check_cv(self.cv).split(X, y, **params))
        ratios = self._ratios()
        grid = None if len(ratios) == 1 else {"l1_ratio": ratios}
        # a grid of one value is alpha_max whatever eps (scikit-learn's eps=1 there)
        one = isinstance(self.alphas, (int, np.integer)) and self.alphas == 1
        search = rm.MultiTaskRegressorCV(
            self._penalty(ratios[0]), alphas=self.alphas, eps=None if one else self.eps,
            penalty_grid=grid, cv=folds, scoring="neg_mean_squared_error",
            fit_intercept=self.fit_intercept, tol=_tol(self.tol), max_iter=self.max_iter,
            n_jobs=self.n_jobs, random_state=None,
        ).fit(X, y, sample_weight=sw)
        self.search_ = search
        res = search.cv_results_
        K = len(folds)
        mse = -np.stack([res[f"split{k}_test_score"].to_numpy() for k in range(K)], axis=1)
        n_alphas = len(search.alphas_)
        mse = mse.reshape(len(ratios), n_alphas, K)
        alphas = res["param_alpha"].to_numpy().reshape(len(ratios), n_alphas)
        self.mse_path_ = np.squeeze(mse)
        # scikit-learn: one grid per l1_ratio when it computes them, the given values once
        given = not isinstance(self.alphas, (int, np.integer))
        self.alphas_ = alphas[0] if len(ratios) == 1 or given else alphas
        self.alpha_ = float(search.alpha_)
        if self._has_l1_ratio:
            self.l1_ratio_ = float(search.best_params_.get("l1_ratio", ratios[0]))
        dtype = _float_dtype(X)
        best = search.best_estimator_
        self.coef_ = np.asarray(best.coef_, dtype=dtype)
        self.intercept_ = (np.asarray(best.intercept_, dtype=dtype) if self._multitask
                           else dtype.type(best.intercept_))
        self.dual_gap_ = float(getattr(best, "dual_gap_", getattr(best, "kkt_residual_", 0.0)))
        self.n_iter_ = int(best.n_iter_)
        self.n_features_in_ = best.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the refitted regmtl model."""
        check_is_fitted(self, "search_")
        return np.asarray(self.search_.best_estimator_.predict(_as_design(X)))


class ElasticNetCV(_LinearCV):
    """scikit-learn's ``ElasticNetCV`` = ``MultiTaskRegressorCV(ElasticNet(l1_ratio,
    positive), penalty_grid={"l1_ratio": l1_ratio}, cv=<scikit-learn's folds>)``; alphas
    from :math:`\\alpha_{max} = \\|X_c^T s (y - \\bar y)\\|_\\infty / (\\rho \\sum s)`."""

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, fit_intercept=True,
                 precompute="auto", max_iter=1000, tol=1e-4, cv=None, copy_X=True,
                 verbose=0, n_jobs=None, positive=False, random_state=None,
                 selection="cyclic"):
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.copy_X = copy_X
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    def _penalty(self, l1_ratio):
        return rm.ElasticNet(l1_ratio=l1_ratio, positive=self.positive)


class LassoCV(ElasticNetCV):
    """scikit-learn's ``LassoCV`` = ``MultiTaskRegressorCV(L1(positive), cv=<folds>)``."""

    _has_l1_ratio = False

    def __init__(self, *, eps=1e-3, alphas=100, fit_intercept=True, precompute="auto",
                 max_iter=1000, tol=1e-4, copy_X=True, cv=None, verbose=False, n_jobs=None,
                 positive=False, random_state=None, selection="cyclic"):
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    def _ratios(self):
        return [1.0]

    def _penalty(self, l1_ratio):
        return rm.L1(positive=self.positive)


class MultiTaskElasticNetCV(MultiOutputMixin, _LinearCV):
    """scikit-learn's ``MultiTaskElasticNetCV`` = ``MultiTaskRegressorCV(L21(l1_ratio),
    penalty_grid={"l1_ratio": l1_ratio}, cv=<folds>)`` on the shared design."""

    _multitask = True

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, fit_intercept=True,
                 max_iter=1000, tol=1e-4, cv=None, copy_X=True, verbose=0, n_jobs=None,
                 random_state=None, selection="cyclic"):
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.copy_X = copy_X
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.selection = selection

    def _penalty(self, l1_ratio):
        return rm.L21(l1_ratio=l1_ratio)


class MultiTaskLassoCV(MultiTaskElasticNetCV):
    """scikit-learn's ``MultiTaskLassoCV`` = ``MultiTaskRegressorCV(L21(), cv=<folds>)``."""

    _has_l1_ratio = False

    def __init__(self, *, eps=1e-3, alphas=100, fit_intercept=True, max_iter=1000,
                 tol=1e-4, copy_X=True, cv=None, verbose=False, n_jobs=None,
                 random_state=None, selection="cyclic"):
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.copy_X = copy_X
        self.cv = cv
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.selection = selection

    def _ratios(self):
        return [1.0]

    def _penalty(self, l1_ratio):
        return rm.L21()
