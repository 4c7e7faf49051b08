r"""scikit-learn estimators for regularized linear multi-task learning.

Both estimators minimize (DESIGN section 4)::

    sum_t omega_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t)  +  Omega(W)

with the squared loss (:class:`MultiTaskRegressor`) or the logistic loss
(:class:`MultiTaskClassifier`), ``Omega`` = ``alpha`` times the chosen penalty, and certify the
solution with a duality gap (or a KKT residual when ``alpha = 0``).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .datafits import Datafit
from .penalties import PENALTY_NAMES, STRUCTURE_ATTRS, Penalty, make_penalty
from .persistence import SaveMixin
from .problem import make_datafit
from .solvers import SOLVERS, solve
from .taskdata import TaskData, _as_labels, as_task_data, column_target

__all__ = ["MultiTaskRegressor", "MultiTaskClassifier"]


class _MultiTaskLinear(SaveMixin, BaseEstimator):
    """Shared machinery: input conversion, solving, certificates, prediction."""

    _loss = "squared"

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "task_weight": [StrOptions({"equal", "samples"}), "array-like"],
        "solver": [StrOptions(set(SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "solver_options": [dict, None],
    }

    # task ids travel with the rows through cross-validation, pipelines and searches
    __metadata_request__fit = {"task": True}
    __metadata_request__score = {"task": True}
    __metadata_request__predict = {"task": True}

    def __init__(
        self,
        penalty: str | Penalty = "l21",
        alpha: float = 0.1,
        *,
        fit_intercept: bool = True,
        task_weight: Any = "equal",
        solver: str = "auto",
        tol: float = 1e-4,
        max_iter: int = 1000,
        warm_start: bool = False,
        verbose: int = 0,
        solver_options: dict | None = None,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.task_weight = task_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.verbose = verbose
        self.solver_options = solver_options

    def _validate_params(self) -> None:
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            # the one structured penalty without a name: say what to pass instead
            if isinstance(self.penalty, str) and self.penalty.lower() in ("graph", "laplacian"):
                raise InvalidParameterError(
                    f"{exc} GraphLaplacian needs its graph (a task adjacency matrix A): pass "
                    "penalty=regmtl.GraphLaplacian(A)."
                ) from None
            raise

    # ------------------------------------------------------------------ input
    def _check_x(self, X: Any, reset: bool) -> Any:
        return validate_data(
            self, X, reset=reset, accept_sparse=("csr", "csc"), dtype=np.float64,
            ensure_min_samples=1,
        )

    def _data(self, X, y, task, sample_weight, *, fitting: bool) -> TaskData:
        return as_task_data(
            X, y, task,
            sample_weight=sample_weight,
            task_weight=self.task_weight if fitting else "equal",
            tasks=None if fitting else self.tasks_,
            check_x=self._check_x,
            numeric_y=self._loss == "squared",
            require_y=y is not None or fitting,
            reset=fitting,
            single=False if fitting else self.input_form_ == "single",
        )

    def _datafit(self) -> Datafit:
        return make_datafit(self._loss)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None):
        """Fit on any input form: lists per task, long form with ``task``, or shared X with 2-D y.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame, or list/dict of them (one per task)
        y : array-like, or list/dict of them; 2-D (n, T) for a shared design (NaN = missing)
        task : array-like of task ids (one per row of X), or the name of a column of X
        sample_weight : array-like (or list per task), optional
        """
        data = self._data(X, y, task, sample_weight, fitting=True)
        self._prepare_targets(data)
        penalty = make_penalty(self.penalty)
        W0, b0, V0 = self._warm_start_point(data, penalty)
        res = solve(
            data, self._datafit(), penalty, float(self.alpha),
            solver=self.solver, W0=W0, b0=b0, V0=V0, fit_intercept=self.fit_intercept,
            tol=self.tol, max_iter=self.max_iter, verbose=self.verbose,
            options=self.solver_options,
        )
        self.tasks_ = data.tasks
        self.n_tasks_ = data.n_tasks
        self.input_form_ = data.form
        single = data.form == "single"
        self.coef_ = res.W[:, 0].copy() if single else np.ascontiguousarray(res.W.T)
        b = res.b if self.fit_intercept else np.zeros(data.n_tasks)
        self.intercept_ = float(b[0]) if single else b.copy()
        self.n_iter_ = res.n_iter
        self.task_sizes_ = data.effective_sizes()
        cert = res.certificate
        for attr in ("dual_gap_", "kkt_residual_", *STRUCTURE_ATTRS):
            if hasattr(self, attr):
                delattr(self, attr)
        for attr, value in penalty.structure(res.V, float(self.alpha)).items():
            setattr(self, attr, value)
        if cert.kind == "duality_gap":
            self.dual_gap_ = float(cert.value)
        else:
            self.kkt_residual_ = float(cert.value)
        self.objective_ = float(cert.primal)
        if self._loss == "squared":
            self.residual_variance_ = self._residual_variance(data, res.W, b)
        return self

    @staticmethod
    def _residual_variance(data: TaskData, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per-task weighted mean squared training residual."""
        r2 = (data.y - data.linear(W, b)) ** 2
        out = np.empty(data.n_tasks)
        for t, (s, w) in enumerate(data.segments()):
            out[t] = np.average(r2[s], weights=w)
        return out

    def _prepare_targets(self, data: TaskData) -> None:
        """Hook: the classifier encodes labels."""

    def _warm_start_point(self, data: TaskData, penalty: Penalty):
        """(W0, b0, V0) from the previous fit when warm starting on a problem of that shape."""
        if not (self.warm_start and hasattr(self, "coef_")):
            return None, None, None
        W = self.coef_matrix_
        if W.shape != (data.n_features, data.n_tasks):
            return None, None, None
        V = penalty.variable({k: getattr(self, k) for k in penalty.structure_attrs
                              if hasattr(self, k)})
        return W, np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)), V

    # ------------------------------------------------------------------ fitted structure
    @property
    def coef_matrix_(self) -> np.ndarray:
        """Coefficients as the p x T matrix W of the objective (column t = task t)."""
        check_is_fitted(self)
        return np.atleast_2d(self.coef_).T.copy()

    @property
    def _b(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64))

    def _scores(self, X, task, y=None, sample_weight=None) -> tuple[TaskData, np.ndarray]:
        """Validated data (with y when given) and the scores of its rows."""
        check_is_fitted(self)
        data = self._data(X, y, task, sample_weight, fitting=False)
        idx = data.task_index
        return data, data.linear(self.coef_matrix_[:, idx], self._b[idx])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")


class MultiTaskRegressor(RegressorMixin, _MultiTaskLinear):
    r"""Regularized multi-task least squares.

    Minimizes ``sum_t omega_t / (2 n_t) ||y_t - X_t w_t - b_t||^2 + Omega(W)``.
    With a shared design, equal task weights and ``penalty="l21"`` this is scikit-learn's
    ``MultiTaskLasso`` (``L21(l1_ratio)``: ``MultiTaskElasticNet``); with one task, ``"l1"`` is
    ``Lasso`` and ``"l2"`` is ``Ridge(alpha=n * alpha)``.

    Parameters
    ----------
    penalty : str or Penalty, default="l21"
        Shape of the penalty: ``"l21"``, ``"l1"``, ``"l2"``, ``"elasticnet"``, ``"trace"``,
        ``"mean"``, ``"clustered"``, ``"dirty"``, ``"sparse_lowrank"`` (that penalty's
        defaults) or an object such as ``regmtl.GraphLaplacian(A)`` (see
        :mod:`regmtl.penalties` for the formulas).
    alpha : float >= 0, default=0.1
        Overall strength of the penalty.
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        omega_t: 1, ``T n_t / N``, or given weights.
    solver : {"auto", "bcd", "fista", "cg"}, default="auto"
        Block coordinate descent (proximal Newton for the logistic loss) for row-separable
        penalties; conjugate gradients on the optimality system for the squared loss with
        ``"mean"`` / ``GraphLaplacian``; FISTA otherwise.
    tol : float, default=1e-4
        Stop when the duality gap is below ``tol`` times the objective at W = 0 (or the relative
        KKT residual below ``tol`` when alpha = 0).
    max_iter : int, default=1000
        Epochs (BCD) or iterations (FISTA); a fit that runs out warns with the gap reached.
    warm_start : bool, default=False
        Start from the previous solution when the problem shape is unchanged.
    verbose : int, default=0
    solver_options : dict, optional
        Block coordinate descent only: ``working_set`` (True), ``screening`` (True, gap-safe),
        ``anderson`` (5 iterates per extrapolation, 0 for none), ``gram`` ("auto": Gram form
        on a shared design whose tasks have no sample weights or missing labels; True or
        False), ``p0`` (10, smallest working set). They change the path to the optimum, not
        the optimum.

    Attributes
    ----------
    coef_ : ndarray of shape (T, p), or (p,) for a single task
    intercept_ : ndarray of shape (T,), or float for a single task
    tasks_ : ndarray of task labels
    task_sizes_ : ndarray of shape (T,)
        ``n_t / omega_t``: the count dividing each task's loss sum in the objective
        (:func:`regmtl.transfer` scales a new task's prior with it).
    n_iter_ : int
    dual_gap_ : float
        Absolute duality gap of the returned solution; penalties without a tractable dual
        (mean-regularized without ridge, graph, clustered) and alpha = 0 give
        ``kkt_residual_`` (relative) instead.
    objective_ : float
        Value of the objective at the solution.
    residual_variance_ : ndarray of shape (T,)
        Regressor only: each task's mean squared training residual.
    P_, Q_ : ndarray of shape (T, p)
        ``Dirty`` / ``SparseLowRank`` only: the two parts, ``coef_ = P_ + Q_``.
    singular_values_, rank_ : ``Trace`` only: singular values of W and their count above
        ``1e-8`` times the largest.
    cluster_matrix_, task_clusters_ : ``Clustered`` only: the optimal M (T x T) and a task
        clustering (k-means on its leading eigenvectors).
    """

    _loss = "squared"

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predictions in the form of ``X``: list in, list out; a 2-D X alone gives (n, T)."""
        data, f = self._scores(X, task)
        return data.to_form(f)

    def score(self, X: Any, y: Any, task: Any = None, sample_weight: Any = None) -> float:
        """R^2 of each task, averaged over tasks (observed labels only)."""
        data, f = self._scores(X, task, y, sample_weight)
        return float(np.mean([
            r2_score(data.y[s], f[s], sample_weight=w) for s, w in data.segments()
        ]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MultiTaskClassifier(ClassifierMixin, _MultiTaskLinear):
    r"""Regularized multi-task logistic regression (binary per task, any two labels).

    Minimizes ``sum_t omega_t / n_t sum_i log(1 + exp(-y_ti (x_ti . w_t + b_t))) + Omega(W)``
    with each task's labels mapped to -1/+1 (``classes_[t][1]`` is the positive class). With one
    task, ``"l2"`` / ``"l1"`` match scikit-learn's ``LogisticRegression`` with
    ``C = 1 / (n * alpha)``.

    Parameters and attributes are those of :class:`MultiTaskRegressor`, plus

    classes_ : ndarray of shape (2,) for a single task, else a list of them (one per task)
    """

    _loss = "logistic"
    __metadata_request__decision_function = {"task": True}
    __metadata_request__predict_proba = {"task": True}
    __metadata_request__predict_log_proba = {"task": True}

    def _data(self, X, y, task, sample_weight, *, fitting: bool) -> TaskData:
        if fitting:
            y = column_target(X, y, task)
        return super()._data(X, y, task, sample_weight, fitting=fitting)

    def _prepare_targets(self, data: TaskData) -> None:
        data.encode_binary()
        self.classes_ = data.classes[0] if data.form == "single" else data.classes

    @property
    def _classes(self) -> list[np.ndarray]:
        return [self.classes_] if self.input_form_ == "single" else self.classes_

    def decision_function(self, X: Any, task: Any = None) -> Any:
        """Scores ``x . w_t + b_t``; positive means ``classes_[t][1]``."""
        data, f = self._scores(X, task)
        return data.to_form(f)

    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """Probabilities of ``(classes_[t][0], classes_[t][1])``, shape (n, 2) per task."""
        data, f = self._scores(X, task)
        p = 0.5 * (1.0 + np.tanh(0.5 * f))
        return data.to_form(np.column_stack([1.0 - p, p]))

    def predict_log_proba(self, X: Any, task: Any = None) -> Any:
        data, f = self._scores(X, task)
        return data.to_form(np.column_stack([-np.logaddexp(0.0, f), -np.logaddexp(0.0, -f)]))

    def predict(self, X: Any, task: Any = None) -> Any:
        """Labels, in the form of ``X``."""
        data, f = self._scores(X, task)
        out = data.to_form(self._labels(data, f))
        # one array per task: each keeps its own task's label type ('spam'/'ham' vs 3/7)
        if data.form == "list":
            out = [s.astype(self._classes[k].dtype) for s, k in zip(out, data.task_index,
                                                                       strict=True)]
        elif data.form == "dict":
            out = {lab: s.astype(self._classes[k].dtype)
                   for (lab, s), k in zip(out.items(), data.task_index, strict=True)}
        return out

    def _labels(self, data: TaskData, f: np.ndarray) -> np.ndarray:
        classes = [self._classes[k] for k in data.task_index]
        dtype = classes[0].dtype
        if any(c.dtype != dtype for c in classes):
            dtype = object
        out = np.empty(f.shape[0], dtype=dtype)
        for (s, _), cls in zip(data.segments(), classes, strict=True):
            out[s] = cls[(f[s] > 0).astype(int)]
        return out

    def score(self, X: Any, y: Any, task: Any = None, sample_weight: Any = None) -> float:
        """Accuracy of each task, averaged over tasks (observed labels only)."""
        data, f = self._scores(X, task, y, sample_weight)
        pred = self._labels(data, f)
        return float(np.mean([
            accuracy_score(_as_labels(data.raw_y[s]), _as_labels(pred[s]), sample_weight=w)
            for s, w in data.segments()
        ]))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

