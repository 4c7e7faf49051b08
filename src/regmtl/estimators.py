r"""scikit-learn estimators for regularized linear multi-task learning.

Both estimators minimize::

    sum_t omega_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t)  +  Omega(W)

with the squared loss (:class:`~regmtl.MultiTaskRegressor`) or the logistic loss
(:class:`~regmtl.MultiTaskClassifier`), ``Omega`` = ``alpha`` times the chosen penalty, and
certify the solution with a duality gap where the penalty has a tractable dual, otherwise (and
at ``alpha = 0``) with the KKT residual.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from .classes import (
    check_classes,
    check_overlap,
    check_overlap_along,
    expand_classes,
    source_rows,
    task_classes,
)
from .datafits import LOSSES, Datafit, fitted_loss
from .datafits.multinomial import Multinomial
from .estimator_docs import ATTRIBUTES_DOC, PARAMS_DOC
from .feature_terms import CONVENTIONS, check_fitted, terms_of
from .fitted import fit_attributes, publish
from .inference.methods import InferenceMethods
from .inputs import as_task_data, column_target
from .penalties import PENALTY_NAMES, Penalty, make_penalty
from .persistence import SaveMixin, linear_rules
from .placements import FitRows, RowOutput, TaskMetric, need_targets, placement_of
from .problem import (
    check_loss_targets,
    check_task_targets,
    checked_targets,
    encode_targets,
    make_datafit,
    source_blocks,
    task_deviance_explained,
)
from .reductions import Chain, ClassColumns, Point, Problem, chain_of, fit_chain, task_offsets
from .solvers.names import SOLVERS
from .task_alpha import resolve_alpha
from .taskdata import TaskData, observed_weights

__all__ = ["MultiTaskRegressor", "MultiTaskClassifier"]


class MultiTaskLinear(InferenceMethods, SaveMixin, BaseEstimator):
    """Shared machinery: input conversion, solving, certificates, prediction; standard
    errors, tests and information criteria (``regmtl.inference.methods``)."""

    @classmethod
    def saved_rules(cls, n_tasks: int, n_features: int, single: bool,
                    classes: tuple[int, ...] | None = None) -> dict[str, tuple]:
        """The attributes ``fit`` sets, with the rule a saved file must meet (see
        ``regmtl.persistence.linear_rules``; ``classes``: a classifier's classes per task)."""
        return linear_rules(issubclass(cls, ClassifierMixin), n_tasks, n_features, single,
                            classes)

    @classmethod
    def saved_required(cls, attrs: dict) -> tuple[str, ...]:
        """The attributes every saved file holds; a classifier's its ``classes_`` too."""
        required = ("n_features_in_", "n_tasks_", "input_form_", "tasks_", "coef_",
                    "intercept_")
        return (*required, "classes_") if issubclass(cls, ClassifierMixin) else required

    _loss = "squared"

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "fit_intercept": ["boolean"],
        "task_weight": [StrOptions({"equal", "samples"}), "array-like"],
        "solver": [StrOptions(set(SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "solver_options": [dict, None],
        "penalty_factor": ["array-like", dict, None],
        "exclude": ["array-like", None],
        "lower_bounds": [Real, "array-like", dict, None],
        "upper_bounds": [Real, "array-like", dict, None],
        "rescale_factors": ["boolean"],
        "standardize": ["boolean", StrOptions({"task"})],
        "factor_convention": [StrOptions(set(CONVENTIONS))],
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
        penalty_factor: Any = None,
        exclude: Any = None,
        lower_bounds: Any = None,
        upper_bounds: Any = None,
        rescale_factors: bool = True,
        standardize: bool | str = False,
        factor_convention: str = "unit",
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
        self.penalty_factor = penalty_factor
        self.exclude = exclude
        self.lower_bounds = lower_bounds
        self.upper_bounds = upper_bounds
        self.rescale_factors = rescale_factors
        self.standardize = standardize
        self.factor_convention = factor_convention

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
            # a classifier's loss given to the regressor: say which estimator takes it
            loss = getattr(self, "loss", None)
            if isinstance(loss, str) and LOSSES.get(loss.lower()) is not None \
                    and LOSSES[loss.lower()].kind != "regression":
                raise InvalidParameterError(
                    f"{exc} loss={loss!r} fits labels: use regmtl.MultiTaskClassifier (every "
                    f"task of two or more classes), or a loss per task, loss=[{loss!r}, "
                    "'squared', ...], for labels beside values.") from None
            raise

    # ------------------------------------------------------------------ input
    def _check_x(self, X: Any, reset: bool) -> Any:
        return validate_data(
            self, X, reset=reset, accept_sparse=("csr", "csc"), dtype=np.float64,
            ensure_min_samples=1,
        )

    def _check_x_missing(self, X: Any, reset: bool) -> Any:
        """``_check_x`` letting NaN through (the missing feature blocks a penalty accepts,
        :meth:`~regmtl.Penalty.feature_blocks`)."""
        return validate_data(
            self, X, reset=reset, accept_sparse=("csr", "csc"), dtype=np.float64,
            ensure_min_samples=1, ensure_all_finite="allow-nan",
        )

    @property
    def _blocks(self) -> tuple[int, ...] | None:
        """The feature blocks the penalty declares (``regmtl.problem.source_blocks``)."""
        return source_blocks(self.penalty)

    @property
    def _numeric_y(self) -> bool:
        """Whether the targets are numbers (not labels to encode)."""
        return make_datafit(self._loss).kind != "binary"

    def _data(self, X, y, task, sample_weight, *, fitting: bool) -> Any:
        """The rows of a fit (where they live: ``regmtl.placements``), or the rows in memory
        of a prediction or a score."""
        if fitting:
            return placement_of(X, y, task).problem(self, X, y, task, sample_weight)
        return self._rows(X, y, task, sample_weight, fitting=False)

    def _rows(self, X, y, task, sample_weight, *, fitting: bool) -> TaskData:
        """Rows in memory as a TaskData (validated against the fit when not ``fitting``)."""
        blocks = self._blocks
        used = None
        if blocks is not None and not fitting:  # the blocks each task's model uses
            edges = np.concatenate(([0], np.cumsum(blocks)))
            nz = np.atleast_2d(self.coef_) != 0
            used = np.stack([nz[:, a:b].any(axis=1)
                             for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=1)
        return as_task_data(
            X, y, task,
            sample_weight=sample_weight,
            task_weight=self.task_weight if fitting else "equal",
            tasks=None if fitting else self.tasks_,
            check_x=self._check_x if blocks is None else self._check_x_missing,
            numeric_y=self._numeric_y,
            require_y=y is not None or fitting,
            reset=fitting,
            single=False if fitting else self.input_form_ == "single",
            blocks=blocks,
            blocks_used=used,
        )

    def _datafit(self) -> Datafit:
        return make_datafit(self._loss)

    def _fitted_loss(self) -> Datafit:
        """The loss of the fit (``loss_``, its parameters read from the training data), for
        what comes after it: predictions and scores."""
        fitted = getattr(self, "loss_", None)
        return self._datafit() if fitted is None else fitted

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None,
            offset: Any = None, checkpoint: Any = None):
        """Fit the model on any input form.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            One design per task (a list, or a dict keyed by task), or one design for all
            rows: long form with ``task``, a shared design with a 2-D ``y``, or a single
            task with a 1-D ``y``. Or a task source read chunk by chunk (a
            :class:`~regmtl.parquet.ParquetTasks`, alone): fitted out of core with the
            squared loss, or the logistic loss of a classifier (its target column holding
            two labels per task) (``solver_options``: ``spill_dir``, ``gram_dtype``,
            ``check_every``; see ``regmtl.out_of_core``).
        y : array-like, or list or dict of them
            Targets in the form of ``X``: one array per task, a 1-D array (long form, single
            task), or an (n, T) matrix for a shared design, NaN marking a missing label.
            Classifiers take any two labels per task.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row of ``X`` (long form), or the name of a column of a
            DataFrame ``X``.
        sample_weight : array-like, or list or dict of them, optional
            One weight per row (a list per task for the lists form), >= 0.
        offset : array-like, or list or dict of them, or str, optional
            A fixed term added to each row's linear predictor, given as ``sample_weight``
            is (with a shared design also an (n, T) matrix), as a dict keyed by task (each
            task's values in the order of its rows; a task left out or given None, as in a
            list, has none: an offset for some tasks only), or as the name of a column of a
            DataFrame ``X`` (read, and left out of the features): the log exposure of a count
            (``loss="poisson"``: the rate per unit of exposure is modelled). The losses that
            take one: ``squared``, ``poisson``, ``gamma``, ``huber``, ``quantile``; a task of
            another loss (one loss per task) is refused by name where its offset is not 0.
        checkpoint : str, path-like or Checkpoint, optional
            With a task source (out of core): a folder where the fit keeps its state (the
            statistics pass chunk by chunk, FISTA's state at each certificate; for the
            logistic loss the proximal Newton state after each step),
            so that a fit killed midway, called again with the same folder, data and
            parameters, resumes and ends where the uninterrupted fit would (bit for bit);
            other data or parameters are refused by name. Every file is checked against
            the digest written with it before it is read: a damaged one is refused naming
            the folder and the file, or with ``regmtl.Checkpoint(folder,
            if_damaged="restart")`` the folder is emptied with a warning and the fit starts
            over (see ``regmtl.solvers.streamed.checkpoint``).

        Returns
        -------
        self
            The fitted estimator.
        """
        return placement_of(X, y, task).fit(self, X, y, task, sample_weight, offset,
                                            checkpoint)

    def fit_rows(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None
                 ) -> FitRows:
        """The rows a fit of this estimator solves, read where they live
        (``regmtl.placements``) and checked as :meth:`fit` reads them: the seam of the
        estimators that fit many problems on the same rows (the CV, the paths). The input's
        facts (``n_features_in_``, ``feature_names_in_``, ``classes_``) are written as
        :meth:`fit` writes them.

        Returns
        -------
        FitRows
            ``data`` the rows (their labels encoded), ``layout`` the classes' layout of a
            multinomial fit (each task's classes as columns) or None, and ``loss`` the loss
            with its parameters read from the rows (``loss_`` of a fit).
        """
        data = self._data(X, y, task, sample_weight, fitting=True)
        data, layout = self._prepare_targets(data)  # (labels encoded, on the blocks too)
        if layout is not None:
            layout = layout.apply(Problem(data, None, make_penalty(self.penalty),
                                          self.fit_intercept)).data
        base = data if layout is None else layout
        return FitRows(data, layout, fitted_loss(self._datafit(), self._datafit().bind(base)))

    def _fit_problem(self, data: TaskData, offset: Any = None
                     ) -> tuple[Chain, float, np.ndarray | None]:
        """The chain a fit solves (``regmtl.reductions``), with its ``alpha`` and one alpha
        per task (or None): every check of the input that does not need the solver, the
        targets encoded and checked."""
        data, layout = self._prepare_targets(data)
        datafit = self._datafit() if layout is not None else self._datafit().bind(data)
        if layout is None and (data.rows_local or datafit.kind != "mixed"):  # (a loss per
            check_loss_targets(data, datafit)  # task: checked on the blocks as encoded)
        penalty = make_penalty(self.penalty)
        if np.ndim(self.alpha) > 0 and layout is not None:
            raise ValueError(
                "alpha: one value per task is not taken by the multinomial loss (a task with "
                "more than two classes: its classes share one penalty term); give one alpha "
                "for all, or fit the tasks that need another alpha apart.")
        alpha, alphas = resolve_alpha(self.alpha, penalty, data.n_tasks)
        chain = chain_of(data, datafit, penalty, self.fit_intercept, layout=layout,
                         offset=offset, terms=self._feature_terms, alpha=alpha,
                         live=alphas is None)
        return chain, alpha, alphas

    def _refusal(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None,
                 offset: Any = None) -> str:
        """The message of the ``ValueError`` that :meth:`fit` would raise on this input
        before solving (the input's checks, the alpha, the solver table's choice), or ``""``
        where it would solve: what the support matrix (``regmtl.conformance``) reads."""
        from .solvers.policy import choose_row

        try:
            self._validate_params()
            data = self._data(X, y, task, sample_weight, fitting=True)
            chain, alpha, _ = self._fit_problem(data, offset)
            bottom = chain.problem
            choose_row(bottom.data, bottom.datafit, bottom.penalty, alpha, solver=self.solver,
                       tol=self.tol)
        except ValueError as exc:
            return str(exc)
        return ""

    def _fit_data(self, data: TaskData, offset: Any = None):
        """Fit on a problem already built (by :meth:`_data`, or task blocks on Dask): its
        chain solved (:func:`~regmtl.reductions.fit_chain`), the attributes published."""
        chain, alpha, alphas = self._fit_problem(data, offset)
        source, model = chain.source, chain.model
        start = self._warm_start_point(model.data, model.penalty)
        # a warm start at the alpha and penalty of the last fit is a continuation: a start that
        # meets tol is the answer; at a new alpha it is a step of a path, solved to a tenth of
        # its start's certificate so that neighbouring points do not tie
        problem = (repr(model.penalty), repr(model.datafit),
                   np.asarray(self.alpha, dtype=np.float64).tolist())
        same = start is not None and getattr(self, "_warm_problem", None) == problem
        fit = fit_chain(chain, alpha, alphas, start, dict(
            solver=self.solver, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose,
            options=self.solver_options, tighten_warm=not same))
        self._warm_problem = problem
        single = source.data.form == "single" and chain.step(ClassColumns) is None
        return publish(self, fit_attributes(
            loss=fitted_loss(self._datafit(), chain.problem.datafit), tasks=source.data.tasks,
            form=source.data.form, coef=fit.W[:, 0].copy() if single else
            np.ascontiguousarray(fit.W.T), intercept=fit.b, single=single,
            n_iter=fit.result.n_iter, certificate=fit.result.certificate,
            task_sizes=source.data.effective_sizes(), structure=fit.structure,
            constant=fit.constant, variance=fit.variance))

    def _feature_terms(self, problem: Problem):
        """The checked ``regmtl.feature_terms`` of this fit on ``problem`` (its features,
        tasks and penalty; on the classes' layout a task has a column per class), or None
        where they change nothing (then the fit is the plain one, bit for bit)."""
        return terms_of(self, problem.data.n_features, problem.data.n_tasks, problem.penalty)

    def _checked_terms(self, n_tasks: int, n_features: int) -> None:
        """The checks a fit makes of the per-feature terms, at the saved numbers of tasks and
        features, and that the fitted coefficients keep them (a model read from a file:
        ``regmtl.persistence.check_loaded``)."""
        penalty = make_penalty(self.penalty)
        terms = terms_of(self, n_features, n_tasks,
                         penalty if np.ndim(self.penalty_factor) == 2 else None)
        if terms is not None and hasattr(self, "coef_"):
            check_fitted(terms, np.atleast_2d(self.coef_).T)  # (a view: no copy of coef_)

    def _prepare_targets(self, data: TaskData) -> tuple[TaskData, ClassColumns | None]:
        """Hook: ``(data, layout)``, the rows with their labels encoded and checked, and the
        classes' layout of the multinomial loss (a step of the fit's chain) or None."""
        return data, None

    def _warm_start_point(self, data: TaskData, penalty: Penalty) -> Point | None:
        """The previous fit's point (W, b, V) when warm starting on a problem of that shape."""
        if not (self.warm_start and hasattr(self, "coef_")):
            return None
        W = self.coef_matrix_
        if W.shape != (data.n_features, data.n_tasks):
            return None
        V = penalty.variable({k: getattr(self, k) for k in penalty.structure_attrs
                              if hasattr(self, k)})
        return Point(W, np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)), V)

    # ------------------------------------------------------------------ fitted structure
    @property
    def coef_matrix_(self) -> np.ndarray:
        """Coefficients as the p x T matrix W of the objective (column t = task t): a copy of
        ``coef_.T``."""
        check_is_fitted(self)
        return np.atleast_2d(self.coef_).T.copy()

    @property
    def cluster_matrix_(self) -> np.ndarray:
        """``clustered`` only: the optimal M (T x T) from its factors, for T <= 5000."""
        from .penalties.spectral import dense_cluster_matrix

        return dense_cluster_matrix(vars(self))

    @property
    def _b(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64))

    def _scores(self, X, task, y=None, sample_weight=None, offset=None
                ) -> tuple[TaskData, np.ndarray]:
        """Validated rows in memory (with y when given) and their scores ``x . w_t + b_t``
        (plus the ``offset`` where given)."""
        check_is_fitted(self)
        data = self._rows(X, y, task, sample_weight, fitting=False)
        idx = data.task_index
        f = data.linear(self.coef_matrix_[:, idx], self._b[idx])
        if offset is not None:
            f = f + task_offsets(data, self._fitted_loss(), offset)
        return data, f

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")


class MultiTaskRegressor(RegressorMixin, MultiTaskLinear):
    __doc__ = r"""Multi-task least squares: one linear model per task, coupled by a penalty.

    Minimizes

    .. math::

        \sum_{t=1}^T \frac{\omega_t}{2 n_t} \|y_t - X_t w_t - b_t 1\|_2^2 + \Omega(W),

    where :math:`w_t` is task t's weight vector (column t of W, p x T), :math:`b_t` its
    unpenalized intercept, :math:`\omega_t` the task weight and :math:`\Omega` the penalty
    with strength ``alpha``. The penalty is what makes the tasks share: the same features
    (``"l21"``), a low-dimensional subspace (``"trace"``), closeness to the mean task
    (``"mean"``) or to neighbours in a graph (``GraphLaplacian``), clusters (``"clustered"``),
    shared plus task-specific parts (``"dirty"``, ``"sparse_lowrank"``), or shared parts
    with outlier tasks (``"robust_lowrank"``, ``"robust_features"``), or, for tasks ordered
    in time, features whose effects drift or change at a few time points
    (``"temporal_group_lasso"``, ``"fused_group_lasso"``); ``"l1"`` and ``"l2"`` fit the
    tasks independently.

    The tasks may have different numbers of samples. Three input forms are accepted by
    ``fit``, ``predict`` and ``score``: lists (or dicts) with one design per task, a long
    table with a task id per row (``task=``, routed as metadata through scikit-learn's
    ``cross_val_score``, ``Pipeline`` and ``GridSearchCV`` with metadata routing enabled),
    and a shared design ``X`` with a target matrix Y of shape (n, T), NaN marking a missing
    label. With a 1-D y and no task ids it is an ordinary single-task regressor.

    With a shared design, equal task weights and ``penalty="l21"`` this is scikit-learn's
    ``MultiTaskLasso`` (``L21(l1_ratio)``: ``MultiTaskElasticNet``), coefficient for
    coefficient; with one task, ``"l1"`` is ``Lasso`` and ``"l2"`` is
    ``Ridge(alpha=n * alpha)``.
""" + PARAMS_DOC + ATTRIBUTES_DOC + """    residual_variance_ : ndarray of shape (T,)
        Each task's (weighted) mean squared training residual.

    See Also
    --------
    regmtl.MultiTaskRegressorCV : ``alpha`` chosen by cross-validation or AIC/BIC.
    regmtl.MultiTaskClassifier : The logistic loss, for binary tasks.
    regmtl.regularization_path : Solutions along a grid of ``alpha``.
    regmtl.transfer : A model for a new task from a fitted one.

    Examples
    --------
    Three tasks of different sizes that use the same two features:

    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.array([1.0, -2.0, 0.0, 0.0, 0.0])
    >>> Xs = [rng.standard_normal((n, 5)) for n in (30, 40, 50)]
    >>> ys = [X @ w + 0.1 * rng.standard_normal(len(X)) for X in Xs]
    >>> model = rm.MultiTaskRegressor(penalty="l21", alpha=0.05, tol=1e-6).fit(Xs, ys)
    >>> model.coef_.shape, model.intercept_.shape
    ((3, 5), (3,))
    >>> bool(model.dual_gap_ < 1e-4 * model.objective_)
    True
    >>> [pred.shape for pred in model.predict([X[:2] for X in Xs])]  # a list in, a list out
    [(2,), (2,), (2,)]
    >>> round(model.score(Xs, ys), 2)  # R^2 averaged over tasks
    1.0

    The same data as one long table with a task id per row:

    >>> X, y = np.vstack(Xs), np.concatenate(ys)
    >>> task = np.repeat(["a", "b", "c"], [30, 40, 50])
    >>> long = rm.MultiTaskRegressor(penalty="l21", alpha=0.05).fit(X, y, task=task)
    >>> long.tasks_.tolist(), long.predict(X[:3], task=["c", "a", "b"]).shape
    (['a', 'b', 'c'], (3,))
    """

    _parameter_constraints: dict = {
        **MultiTaskLinear._parameter_constraints,
        "loss": [StrOptions({n for n, k in LOSSES.items() if k.kind == "regression"}),
                 Datafit, list, tuple],
    }
    __metadata_request__fit = {"task": True, "offset": True}
    __metadata_request__predict = {"task": True, "offset": True}
    __metadata_request__score = {"task": True, "offset": True}

    def __init__(
        self,
        penalty: str | Penalty = "l21",
        alpha: float = 0.1,
        *,
        loss: Any = "squared",
        fit_intercept: bool = True,
        task_weight: Any = "equal",
        solver: str = "auto",
        tol: float = 1e-4,
        max_iter: int = 1000,
        warm_start: bool = False,
        verbose: int = 0,
        solver_options: dict | None = None,
        penalty_factor: Any = None,
        exclude: Any = None,
        lower_bounds: Any = None,
        upper_bounds: Any = None,
        rescale_factors: bool = True,
        standardize: bool | str = False,
        factor_convention: str = "unit",
    ):
        super().__init__(penalty, alpha, fit_intercept=fit_intercept, task_weight=task_weight,
                         solver=solver, tol=tol, max_iter=max_iter, warm_start=warm_start,
                         verbose=verbose, solver_options=solver_options,
                         penalty_factor=penalty_factor, exclude=exclude,
                         lower_bounds=lower_bounds, upper_bounds=upper_bounds,
                         rescale_factors=rescale_factors, standardize=standardize,
                         factor_convention=factor_convention)
        self.loss = loss

    @property
    def _loss(self) -> Any:
        return self.loss

    def _prepare_targets(self, data: TaskData) -> tuple[TaskData, None]:
        """One loss per task: its binary tasks' labels to -1/+1 (``classes_``); on task
        blocks held elsewhere, encoded and checked on each block."""
        datafit = self._datafit()
        if not data.rows_local:
            if datafit.kind != "mixed":
                return data, None
            data = data.map_blocks(checked_targets, datafit.bind(data))
        else:
            encode_targets(data, datafit)
        if data.classes is not None and datafit.kind == "mixed":
            self.classes_ = data.classes
        elif hasattr(self, "classes_"):
            del self.classes_
        return data, None

    def _natural(self, data: TaskData, f: np.ndarray) -> np.ndarray:
        """Each row's prediction in its task's units: the mean of the loss's model
        (``datafit.mean``: ``exp`` for the log links), a label for a binary task."""
        datafit = self._fitted_loss().bind(data)
        out = datafit.mean(f)
        if datafit.kind == "mixed" and getattr(self, "classes_", None) is not None:
            for k, t in enumerate(data.task_index):
                cls = self.classes_[t]
                if cls is not None:
                    a, b = data.indptr[k], data.indptr[k + 1]
                    out[a:b] = np.where(f[a:b] > 0, cls[1], cls[0])
        return out

    def predict(self, X: Any, task: Any = None, offset: Any = None) -> Any:
        """Predict the targets, in the form of ``X``: the mean of each task's model (the
        expected count for ``loss="poisson"``, ``exp`` of the linear predictor; the
        conditional quantile for ``"quantile"``), a label for a binary task of a fit with
        one loss per task.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            One design per fitted task (list, in order, or dict keyed by task), rows of any
            fitted tasks with ``task``, or one design for all tasks (shared design).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row of ``X`` (long form), or the name of a column of ``X``.
        offset : array-like, or list or dict of them, optional
            The offset of each row's linear predictor (as in :meth:`fit`).

        Returns
        -------
        ndarray, list or dict
            A list (dict) of arrays for a list (dict) of designs; an array of shape
            (n_samples,) in the rows' order with ``task``; an (n, T) matrix for a design
            alone on a multi-task model; an array of shape (n_samples,) for a single-task
            model.
        """
        return placement_of(X, None, task).outputs(self, X, task, self._prediction(), offset)

    def _prediction(self) -> RowOutput:
        """:meth:`predict`'s output: the mean of each task's model (its label for a binary
        task of a fit with one loss per task)."""
        datafit = make_datafit(self.loss)
        if datafit.kind == "mixed":  # each task's own output, on the workers
            lazy = _TaskOutputs(datafit.losses, getattr(self, "classes_", None))
        else:
            lazy = None if datafit.quadratic else _OfScores(datafit.mean)
        return RowOutput(self._natural, lazy)

    def _has_binary_tasks(self) -> bool:
        """Whether ``loss`` lists a loss of two labels (the logistic): the model then has
        class probabilities for those tasks."""
        try:
            losses = make_datafit(self.loss)
        except (TypeError, ValueError):
            return False
        return losses.kind == "mixed" and any(part.kind == "binary"
                                                for part in losses.losses)

    def _binary_rows(self, data: TaskData) -> None:
        """Refuse rows of a task without probabilities, by name."""
        binary = _binary_positions(self)
        plain = [int(k) for k in data.task_index if int(k) not in binary]
        if plain:
            raise _no_probabilities(self, plain[0])

    def _binary_scores(self, X: Any, task: Any, post: Any) -> Any:
        """``post(f)`` of the scores of rows of the tasks of two labels, in the form of X
        (a shared design, a list or a dict of designs: one entry per task, None for a task
        without two labels; long-form rows of another task are refused by name)."""
        check_is_fitted(self)
        per_task = ("shared", "list", "dict")

        def rows_of(data: TaskData, f: np.ndarray) -> np.ndarray:
            if data.form not in per_task:  # (per task: None for the other tasks)
                self._binary_rows(data)
            return post(f)

        def form(data: TaskData, values: np.ndarray) -> Any:
            if data.form not in per_task:
                return data.to_form(values)
            binary = _binary_positions(self)
            parts = [values[a:b] if k in binary else None for k, a, b in zip(
                data.task_index.tolist(), data.indptr[:-1], data.indptr[1:], strict=True)]
            if data.form == "dict":
                return {data.tasks[k]: v for k, v in zip(data.task_index, parts, strict=True)}
            return parts

        return placement_of(X, None, task).outputs(
            self, X, task, RowOutput(rows_of, _BinaryOutputs(self, post), form=form))

    @available_if(_has_binary_tasks)
    def decision_function(self, X: Any, task: Any = None) -> Any:
        """The scores ``x . w_t + b_t`` of the tasks of two labels (a fit with one loss per
        task that lists ``"logistic"``); positive means ``classes_[t][1]``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Rows of tasks of two labels, in any input form (as for :meth:`predict`).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            The scores in the form of ``X`` (a shared design, a list or a dict of designs:
            one entry per task, None for a task without two labels).

        Raises
        ------
        ValueError
            For rows of a task of another loss (named): its output is :meth:`predict`'s.
        """
        return self._binary_scores(X, task, _scores_only)

    @available_if(_has_binary_tasks)
    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """The class probabilities of the tasks of two labels (a fit with one loss per task
        that lists ``"logistic"``): of ``(classes_[t][0], classes_[t][1])``, one row of two
        per sample.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Rows of tasks of two labels, in any input form (as for :meth:`predict`).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            Arrays of shape (n_samples, 2) in the form of ``X`` (a shared design, a list or a
            dict of designs: one entry per task, None for a task without two labels).

        Raises
        ------
        ValueError
            For long-form rows of a task of another loss (named): a count's expected value,
            a quantile or a value is :meth:`predict`'s.
        """
        return self._binary_scores(X, task, _proba)

    @available_if(_has_binary_tasks)
    def predict_log_proba(self, X: Any, task: Any = None) -> Any:
        """Logarithms of :meth:`predict_proba`, computed without overflow.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Rows of tasks of two labels, in any input form (as for :meth:`predict`).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            ``log`` of :meth:`predict_proba`, in the same form.
        """
        return self._binary_scores(X, task, _log_proba)

    def score(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None,
              offset: Any = None) -> float:
        """The coefficient of determination R^2 of each task, averaged over tasks (for a loss
        other than the squared one, the fraction of its deviance explained, D^2, against
        the best constant of each task: scikit-learn's ``d2_*_score``).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for :meth:`predict`).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        y : array-like, or list or dict of them
            True targets in the form of ``X`` (NaN in a shared Y: not scored); none for a
            ParquetTasks ``X``, which holds them.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).
        sample_weight : array-like, or list of them, optional
            One weight per row.
        offset : array-like, or list or dict of them, optional
            The offset of each row's linear predictor (as in :meth:`fit`).

        Returns
        -------
        float
            The mean over tasks of each task's R^2 (D^2) on its observed labels (every task
            counts the same, whatever its size).
        """
        check_is_fitted(self)
        datafit = self._fitted_loss()
        refusal = None if datafit.quadratic and offset is None else (  # (R^2 of raw scores)
            f"score of Dask input takes the squared loss and no offset (loss="
            f"{datafit.name or self.loss!r}{', an offset' if offset is not None else ''}): the "
            "deviance explained and the offset are scored on rows in memory; compute the rows "
            "first (X.compute(), y.compute()).")
        metric = TaskMetric(self._task_scores, None if refusal else "r2", _with_codes, refusal)
        return placement_of(X, y, task).score(self, X, y, task, sample_weight, offset, metric)

    def _block_outputs(self, data: TaskData, f: np.ndarray) -> dict[str, np.ndarray]:
        """The columns a prediction writes for rows of ``data`` with scores ``f``."""
        return {"prediction": self._natural(data, f)}

    def _task_scores(self, data: TaskData, f: np.ndarray) -> np.ndarray:
        """Each task's R^2 (D^2 for a loss other than the squared one) from the scores ``f``
        of its rows."""
        datafit = self._fitted_loss()
        if not datafit.quadratic:
            w = observed_weights(data)
            # the targets checked as a fit checks them (a binary task's labels: unchecked)
            check_task_targets(data, datafit, np.where(w > 0, data.y, 1.0))
            return task_deviance_explained(data, datafit, f, w, getattr(self, "classes_", None))
        w = observed_weights(data)
        total = data.task_sums(w)
        mean = data.task_sums(w * data.y) / np.where(total > 0, total, 1.0)
        ss_res = data.task_sums(w * (data.y - f) ** 2)
        ss_tot = data.task_sums(w * (data.y - mean[data.task_of]) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):  # as r2_score: 1 or 0 if constant
            r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
        few = np.flatnonzero(data.task_sums((w > 0).astype(np.float64)) < 2)
        if few.size:  # fewer than two samples: scikit-learn's warning and NaN
            from sklearn.metrics import r2_score  # imported where needed: a fit needs none

            segs = list(data.segments())
            for t in few:
                s_, w_ = segs[t]
                r2[t] = r2_score(data.y[s_], f[s_], sample_weight=w_)
        return r2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MultiTaskClassifier(ClassifierMixin, MultiTaskLinear):
    __doc__ = r"""Regularized multi-task logistic regression: one binary classifier per task.

    Minimizes

    .. math::

        \sum_{t=1}^T \frac{\omega_t}{n_t} \sum_{i=1}^{n_t}
        \log\big(1 + e^{-y_{ti} (x_{ti}^\top w_t + b_t)}\big) + \Omega(W),

    with each task's two labels mapped to -1/+1 (``classes_[t][1]``, the larger label in
    sorted order, is +1). Every task is binary, with its own two labels (``"spam"/"ham"`` in
    one task, ``0/1`` in another); the penalty couples the tasks as for
    :class:`~regmtl.MultiTaskRegressor`, and the same input forms are accepted. With one
    task, ``"l2"`` and ``"l1"`` match scikit-learn's ``LogisticRegression`` with
    ``C = 1 / (n * alpha)``. The certificates, solvers and attributes are those of the
    regressor (block coordinate descent runs as proximal Newton).
""" + PARAMS_DOC + ATTRIBUTES_DOC + """    classes_ : ndarray of shape (2,), or list of them
        The two labels of each task, sorted (a list with one array per task; one array for
        a single-task model).

    See Also
    --------
    regmtl.MultiTaskClassifierCV : ``alpha`` chosen by cross-validation or AIC/BIC.
    regmtl.MultiTaskRegressor : The squared loss.
    regmtl.Logistic : The loss.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.array([1.0, -2.0, 0.0, 0.0, 0.0])
    >>> Xs = [rng.standard_normal((n, 5)) for n in (30, 40, 50)]
    >>> ys = [np.where(X @ w + 0.5 * rng.standard_normal(len(X)) > 0, "yes", "no")
    ...       for X in Xs]
    >>> clf = rm.MultiTaskClassifier(penalty="l21", alpha=0.01).fit(Xs, ys)
    >>> clf.classes_[0].tolist(), clf.coef_.shape
    (['no', 'yes'], (3, 5))
    >>> [p.shape for p in clf.predict_proba([X[:2] for X in Xs])]
    [(2, 2), (2, 2), (2, 2)]
    >>> clf.predict(Xs[0][:4], task=[0, 0, 0, 0]).tolist()  # rows of task 0
    ['no', 'no', 'no', 'yes']
    >>> ys[0][:4].tolist()
    ['no', 'no', 'no', 'yes']
    """

    _loss = "logistic"
    __metadata_request__decision_function = {"task": True}
    __metadata_request__predict_proba = {"task": True}
    __metadata_request__predict_log_proba = {"task": True}

    def _rows(self, X, y, task, sample_weight, *, fitting: bool) -> TaskData:
        if fitting:
            y = column_target(X, y, task)
        return super()._rows(X, y, task, sample_weight, fitting=fitting)

    def _prepare_targets(self, data: TaskData) -> tuple[TaskData, ClassColumns | None]:
        self._multiclass = False
        # no minimum where a task's classes are separated (the unregularized baseline warns
        # of it and fits on, ``_separated_ok``)
        if _unpenalized(self.alpha) and not getattr(self, "_separated_ok", False):
            check_overlap(data, self.fit_intercept)
        elif not getattr(self, "_separated_ok", False):  # (nor along what the penalty leaves)
            penalty = make_penalty(self.penalty)
            free = getattr(penalty, "free_task_groups", None)  # (declared where it applies)
            groups = free(data.n_tasks) if free is not None else None
            if groups:
                check_overlap_along(data, groups, self.fit_intercept, penalty)
        if not data.rows_local and any(len(c) > 2 for c in data.classes):
            self._multiclass = True  # (the classes found on the blocks, the layout there)
            self.classes_ = list(data.classes)
            return data, ClassColumns(list(data.classes))
        if data.rows_local and data.raw_y is not None:
            classes = task_classes(data)
            if any(len(c) > 2 for c in classes):  # the multinomial loss, on every task
                check_classes(data, classes)
                self._multiclass = True
                self.classes_ = classes[0] if data.form == "single" else classes
                return data, ClassColumns(classes)
        data.encode_binary()
        self.classes_ = data.classes[0] if data.form == "single" else data.classes
        return data, None

    def _datafit(self) -> Datafit:
        return (Multinomial() if getattr(self, "_multiclass", False)
                else make_datafit(self._loss))

    @property
    def _multi(self) -> bool:
        """Whether the fit is multinomial: a task has more than two classes."""
        return hasattr(self, "classes_") and any(len(c) > 2 for c in self._classes)

    def _class_table(self, X, task, y=None, sample_weight=None):
        """(data, probabilities, scores) of a multinomial fit: per row of ``data`` the
        probabilities and scores of its task's classes (columns past ``K_t`` hold 0 and -inf)."""
        check_is_fitted(self)
        placement_of(X, y, task).in_memory("a multinomial fit (a task of more than two "
                                           "classes) predicts and scores rows: it")
        data = self._rows(X, y, task, sample_weight, fitting=False)
        exp = expand_classes(data, self._classes)
        W, b = self.coef_matrix_, self._b
        f = exp.linear(W[:, exp.task_index], b[exp.task_index])
        p = Multinomial().bind(exp).mean(f)
        rows, pos = source_rows(exp)
        width = max(len(c) for c in self._classes)
        P = np.zeros((data.n_obs, width))
        F = np.full((data.n_obs, width), -np.inf)
        P[rows, pos], F[rows, pos] = p, f
        return data, P, F

    @property
    def union_classes_(self) -> np.ndarray:
        """Every task's labels, one each (sorted where they compare; else in the order the
        tasks list them): the columns of the long form's class values, where each row's task
        fills the columns of its own labels."""
        check_is_fitted(self)
        seen = list(dict.fromkeys(lab for c in self._classes for lab in c.tolist()))
        try:
            seen = sorted(seen)
        except TypeError:  # labels of several types ('spam' beside 3): as listed
            pass
        out = np.empty(len(seen), dtype=object)
        out[:] = seen
        kinds = {c.dtype for c in self._classes}
        return out.astype(kinds.pop()) if len(kinds) == 1 else out

    def _union_columns(self, data: TaskData, table: np.ndarray, fill: float) -> np.ndarray:
        """The long form's rows of class values in the columns of :attr:`union_classes_`
        (``fill`` where a row's task lacks the label: probability 0, score -inf)."""
        union = self.union_classes_.tolist()
        at = {lab: j for j, lab in enumerate(union)}
        out = np.full((table.shape[0], len(union)), fill)
        for k, (a, b) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
            cls = self._classes[data.task_index[k]]
            out[a:b, [at[lab] for lab in cls.tolist()]] = table[a:b, :len(cls)]
        return out

    def _per_task(self, data: TaskData, table: np.ndarray, fill: float = 0.0) -> Any:
        """Rows of class values in the form of ``X``, each task with its own classes (the
        long form: one column per label of :attr:`union_classes_`)."""
        K = np.array([len(self._classes[t]) for t in data.task_index])
        if data.form == "long":
            return data.to_form(self._union_columns(data, table, fill))
        if np.all(K == table.shape[1]) or data.form == "single":
            return data.to_form(table)
        segs = [table[a:b, :k] for a, b, k in zip(data.indptr[:-1], data.indptr[1:], K,
                                                    strict=True)]
        if data.form == "dict":
            return {data.tasks[t]: s for t, s in zip(data.task_index, segs, strict=True)}
        return segs

    def _multi_labels(self, data: TaskData, P: np.ndarray) -> np.ndarray:
        pick = np.argmax(P, axis=1)
        labels = [self._classes[t] for t in data.task_index]
        dtype = labels[0].dtype if len({c.dtype for c in labels}) == 1 else object
        out = np.empty(data.n_obs, dtype=dtype)
        for k, (a, b) in enumerate(zip(data.indptr[:-1], data.indptr[1:], strict=True)):
            out[a:b] = labels[k][pick[a:b]]
        return out

    @property
    def _classes(self) -> list[np.ndarray]:
        return [self.classes_] if self.input_form_ == "single" else self.classes_

    def decision_function(self, X: Any, task: Any = None) -> Any:
        """The scores ``x . w_t + b_t``; positive means ``classes_[t][1]``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for :meth:`predict`).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            The scores, in the form of ``X`` (for tasks of more than two classes, a row of
            ``K_t`` scores per sample, one per class of ``classes_[t]``; in the long form
            one column per label of :attr:`union_classes_`, -inf where the row's task lacks
            the label).
        """
        if self._multi:
            data, _, F = self._class_table(X, task)
            return self._per_task(data, F, -np.inf)
        return placement_of(X, None, task).outputs(self, X, task,
                                                   RowOutput(_scores_as_they_are))

    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """Class probabilities.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for :meth:`predict`).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            Probabilities of ``(classes_[t][0], classes_[t][1])``: an array of shape
            (n_samples, 2) per task (lists, dicts), for all rows (long form), or a list of
            them per task (shared design). With a task of more than two classes, each task's
            array has a column per class of ``classes_[t]`` (lists, dicts, shared design);
            the long form's one array has a column per label of :attr:`union_classes_`, the
            same label in every row, 0 where the row's task lacks the label.
        """
        if self._multi:
            data, P, _ = self._class_table(X, task)
            return self._per_task(data, P)
        return placement_of(X, None, task).outputs(self, X, task,
                                                   RowOutput(_block_proba, _proba))

    def predict_log_proba(self, X: Any, task: Any = None) -> Any:
        """Logarithms of the class probabilities, computed without overflow.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for :meth:`predict`).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            ``log`` of :meth:`predict_proba`, in the same form.
        """
        if self._multi:
            data, P, F = self._class_table(X, task)
            finite = np.where(np.isfinite(F), F, -np.inf)
            lse = np.logaddexp.reduce(finite, axis=1)
            return self._per_task(data, np.where(np.isfinite(F), F - lse[:, None], -np.inf),
                                  -np.inf)
        return placement_of(X, None, task).outputs(
            self, X, task, RowOutput(_block_log_proba, _OfScores(_log_proba)))

    def predict(self, X: Any, task: Any = None) -> Any:
        """Predict each row's label (``classes_[t][1]`` where the score is positive).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            One design per fitted task (list, in order, or dict keyed by task), rows of any
            fitted tasks with ``task``, or one design for all tasks (shared design).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row of ``X`` (long form), or the name of a column of ``X``.

        Returns
        -------
        ndarray, list or dict
            Labels in the form of ``X``; each task's labels keep their own type.
        """
        check_is_fitted(self)
        if not self._multi:
            return placement_of(X, None, task).outputs(
                self, X, task, RowOutput(self._labels, _LabelTable(self._classes),
                                         form=self._label_form))
        data, P, _ = self._class_table(X, task)
        return self._label_form(data, self._multi_labels(data, P))

    def _label_form(self, data: TaskData, labels: np.ndarray) -> Any:
        """Labels in the form of ``X``: one array per task keeps its own task's label type
        ('spam'/'ham' beside 3/7)."""
        out = data.to_form(labels)
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
        table = np.empty((data.n_tasks, 2), dtype=dtype)  # each task's two labels
        for k in range(2):
            table[:, k] = [c[k] for c in classes]
        return table[data.task_of, (f > 0).astype(np.intp)]

    def score(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None
              ) -> float:
        """The accuracy of each task, averaged over tasks.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for :meth:`predict`).
            A :class:`~regmtl.ParquetTasks` is read chunk by chunk (its task column gives
            the tasks; the result is one array in its row order).
        y : array-like, or list or dict of them
            True labels in the form of ``X`` (missing labels of a shared Y are not scored);
            none for a ParquetTasks ``X``, which holds them.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).
        sample_weight : array-like, or list of them, optional
            One weight per row.

        Returns
        -------
        float
            The mean over tasks of each task's accuracy on its observed labels.
        """
        check_is_fitted(self)
        if not self._multi:
            metric = TaskMetric(self._task_scores, "accuracy",
                                _LabelTable(self._classes, with_codes=True))
            return placement_of(X, y, task).score(self, X, y, task, sample_weight, None, metric)
        need_targets(y)
        data, P, _ = self._class_table(X, task, y, sample_weight)
        return float(np.mean(_accuracies(data, self._multi_labels(data, P))))

    def _block_outputs(self, data: TaskData, f: np.ndarray) -> dict[str, np.ndarray]:
        """The columns a prediction writes for rows of ``data`` with scores ``f``: the label
        and the probability of each task's second class."""
        return {"prediction": self._labels(data, f), "probability": _proba(f)[:, 1]}

    def _task_scores(self, data: TaskData, f: np.ndarray) -> np.ndarray:
        """Each task's accuracy from the scores ``f`` of its rows (binary tasks)."""
        return _accuracies(data, self._labels(data, f))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True  # (the multinomial loss)
        return tags


def _unpenalized(alpha: Any) -> bool:
    """Whether ``alpha`` is 0 for every task (a number, or one value per task)."""
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return bool(a.size) and bool(np.all(a == 0.0))


def _accuracies(data: TaskData, pred: np.ndarray) -> np.ndarray:
    """Each task's weighted share of rows whose predicted label ``pred`` is the true one."""
    w = observed_weights(data)
    if data.raw_y.dtype != object and pred.dtype != object:
        hit = np.asarray(data.raw_y == pred)
    else:  # labels of several types: compare as Python objects
        hit = np.fromiter((a == b for a, b in zip(data.raw_y.tolist(), pred.tolist(),
                                                   strict=True)), dtype=bool, count=len(pred))
    total = data.task_sums(w)
    return data.task_sums(w * hit) / np.where(total > 0, total, np.nan)


def _scores_as_they_are(data: TaskData, f: np.ndarray) -> np.ndarray:
    return f


def _block_proba(data: TaskData, f: np.ndarray) -> np.ndarray:
    return _proba(f)


def _with_codes(f: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.column_stack([f, codes])


def _block_log_proba(data: TaskData, f: np.ndarray) -> np.ndarray:
    return _log_proba(f)


class _OfScores:
    """``fn(f)`` in the form of a Dask partition's output, ``(f, codes)``."""

    def __init__(self, fn: Any):
        self.fn = fn

    def __call__(self, f: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return self.fn(f)


def _proba(f: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
    p = 0.5 * (1.0 + np.tanh(0.5 * f))
    return np.column_stack([1.0 - p, p])


def _log_proba(f: np.ndarray) -> np.ndarray:
    return np.column_stack([-np.logaddexp(0.0, f), -np.logaddexp(0.0, -f)])


def _scores_only(f: np.ndarray) -> np.ndarray:
    return f


class _LabelTable:
    """Each task's two labels; called on the scores and task positions of rows, their
    predicted labels (with the positions beside them for scoring)."""

    def __init__(self, classes, with_codes: bool = False):
        dtypes = {np.asarray(c).dtype for c in classes}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(object)
        self.table = np.empty((len(classes), 2), dtype=self.dtype)
        for k in range(2):
            self.table[:, k] = [c[k] for c in classes]
        self.with_codes = with_codes

    def __call__(self, f: np.ndarray, codes: np.ndarray) -> np.ndarray:
        labels = self.table[codes, (f > 0).astype(np.intp)]
        if self.with_codes:  # (label, task position) pairs for scoring
            return np.column_stack([labels.astype(object), codes.astype(object)])
        return labels


class _TaskOutputs:
    """One loss per task: called on the scores and task positions of rows, each row's output
    in its task's units (its loss's mean, a label for a binary task)."""

    def __init__(self, losses, classes):
        self.losses, self.classes = list(losses), classes

    def __call__(self, f: np.ndarray, codes: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(f), dtype=np.float64)
        for k in np.unique(codes):
            rows = codes == k
            cls = None if self.classes is None else self.classes[k]
            out[rows] = (self.losses[k].mean(f[rows]) if cls is None
                         else np.where(f[rows] > 0, cls[1], cls[0]))
        return out


def _binary_positions(model: Any) -> set[int]:
    """The positions of a fitted model's tasks of two labels (``classes_`` not None)."""
    classes = getattr(model, "classes_", None)
    return set() if classes is None else {k for k, c in enumerate(classes) if c is not None}


def _no_probabilities(model: Any, k: int) -> ValueError:
    """The refusal of the rows of task ``k``, which has no class probabilities."""
    loss = make_datafit(model.loss).losses[k].name
    names = [model.tasks_[j] for j in sorted(_binary_positions(model))]
    shown = ", ".join(map(repr, names[:5])) + (" ..." if len(names) > 5 else "")
    return ValueError(
        f"task {model.tasks_[k]!r} has the {loss} loss: it has no class probabilities "
        f"(predict gives its {'quantile' if loss == 'quantile' else 'expected value'}). Pass "
        "the rows of the tasks of two labels only: a dict of their designs, or long-form rows "
        f"with their ids (tasks: {shown or 'none: refit the model'}).")


class _BinaryOutputs:
    """``post(f)`` of rows of the tasks of two labels (called on the scores and task positions
    of Dask rows); rows of another task are refused by name."""

    def __init__(self, model: Any, post: Any):
        self.model, self.binary, self.post = model, _binary_positions(model), post

    def __call__(self, f: np.ndarray, codes: np.ndarray) -> np.ndarray:
        plain = [int(k) for k in np.unique(codes) if int(k) not in self.binary]
        if plain:
            raise _no_probabilities(self.model, plain[0])
        return self.post(f)


