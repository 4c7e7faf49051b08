r"""Choosing ``alpha`` (and a second penalty parameter) by cross-validation or AIC/BIC.

For every value of the penalty grid, a warm-started :func:`regularization_path` is solved on the
training part of every fold; each task's validation rows are scored and the scores averaged over
tasks. The (fold, penalty value) paths are independent jobs for joblib, so ``n_jobs`` and any
joblib backend (``with joblib.parallel_backend("dask")`` on a Dask cluster) run them in parallel;
the folds are drawn before, from ``random_state``, and every solve is deterministic, so the
choice does not depend on the number of jobs or the backend.
"""

from __future__ import annotations

import itertools
import time
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._lazy import lazy_module
from ..classes import task_classes
from ..datafits import Datafit, make_loss
from ..estimator_docs import TERMS_DOC
from ..estimators import MultiTaskClassifier, MultiTaskLinear, MultiTaskRegressor
from ..feature_terms import by_position
from ..inference.criteria import (
    degrees_of_freedom,
    information_criterion,
    likelihood_rows,
    neg2_log_likelihood,
)
from ..inference.methods import InferenceMethods
from ..inputs import offset_column
from ..penalties import PENALTY_NAMES, Penalty, make_penalty
from ..placements import placement_of
from ..problem import check_loss_targets, encode_targets
from ..progress import progress_bar
from ..reductions import FoldOffset, Problem
from ..solvers import SOLVERS
from ..task_alpha import separable_over_tasks
from ..taskdata import TaskData, observed_weights, task_name
from .choice import best_index, per_task_choice
from .folds import flat_groups, take, task_folds
from .loo import ridge_loo_scores
from .multiclass import ClassScorer, class_fold
from .path import check_alphas, path_grid, regularization_path
from .scoring import TaskScorer

pd = lazy_module("pandas")

__all__ = ["MultiTaskRegressorCV", "MultiTaskClassifierCV"]


#: the per-feature terms (``regmtl.feature_terms``) the CV estimators hand on as they are
TERM_PARAMS = ("penalty_factor", "exclude", "lower_bounds", "upper_bounds", "rescale_factors",
               "standardize", "factor_convention")


def _terms(est: _MultiTaskCV) -> dict:
    """The per-feature terms set on ``est`` (none where all are at their defaults)."""
    given = {k: getattr(est, k) for k in TERM_PARAMS}
    plain = all(given[k] is None for k in TERM_PARAMS[:4]) and not given["standardize"]
    return {} if plain else given


def _path_kwargs(est: _MultiTaskCV) -> dict:
    return dict(fit_intercept=est.fit_intercept, solver=est.solver, tol=est.tol,
                max_iter=est.max_iter, solver_options=est.solver_options, **_terms(est))


def _quiet_path(data: TaskData, loss: Any, penalty: Penalty, alphas: np.ndarray,
                kwargs: dict):
    """A path with its convergence warnings counted instead of shown (one summary later)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return regularization_path(data, penalty=penalty, loss=loss, alphas=alphas,
                                   progress=False, **kwargs)


def _fold_job(data: TaskData, fold: tuple[np.ndarray, np.ndarray], loss: Datafit,
              penalty: Penalty, alphas: np.ndarray, task_weight: Any, scorer: TaskScorer,
              kwargs: dict, offset: np.ndarray | None = None,
              classes: list | None = None):
    """Per-task validation scores (n_alphas, T) of one fold's path, and its facts. Each
    task keeps its loss (a loss per task is bound to the fold's rows by the solvers; its
    binary tasks' labels encoded in the training part as on all the data); ``offset`` (per
    flat row) is folded into the training part and added to the validation scores; with
    ``classes`` (the multinomial loss) the training part is laid out by those classes."""
    t0 = time.perf_counter()
    train_idx, val_idx = fold
    if classes is not None:
        train = class_fold(data, train_idx, task_weight, classes)
    else:
        train = take(data, train_idx, task_weight, encode=loss.kind == "binary")
    if loss.kind == "mixed":
        encode_targets(train, loss)
    if offset is not None:
        train.y, train.c = loss.bind(train).with_offset(train.y, train.c, offset[train_idx])
    val = take(data, val_idx, fit=False)
    path = _quiet_path(train, loss, penalty, alphas, kwargs)
    scores = scorer.path_scores(val, path.coefs, path.intercepts,
                                None if offset is None else offset[val_idx])
    return scores, path.n_active, ~path.converged, path.certificates, time.perf_counter() - t0


def _criterion_job(data: TaskData, datafit: Datafit, penalty: Penalty, alphas: np.ndarray,
                   criterion: str, kwargs: dict, seed: int = 0, like: tuple | None = None):
    """AIC/BIC along one path; ``like``: (the problem with its own targets, the offset) of
    the likelihood where an offset was folded into ``data``."""
    t0 = time.perf_counter()
    path = _quiet_path(data, datafit, penalty, alphas, kwargs)
    rows = []
    n_obs = likelihood_rows(data)
    for k, alpha in enumerate(alphas):
        W, b = path.coefs[k].T, path.intercepts[k]
        fi = kwargs["fit_intercept"]
        df, df_std = degrees_of_freedom(data, datafit, penalty, float(alpha), W, b,
                                        path.structure[k], fi, tol=kwargs["tol"],
                                        random_state=seed + k, return_std=True)
        f = data.linear(W, b if fi else None)
        neg2 = (neg2_log_likelihood(data, datafit, f) if like is None else
                neg2_log_likelihood(like[0], datafit, f + like[1]))
        rows.append((df, df_std, neg2, information_criterion(criterion, neg2, df, n_obs)))
    return (np.array(rows), path.n_active, ~path.converged, path.certificates,
            time.perf_counter() - t0)


def _warn_at_an_end(grid: np.ndarray, alpha: float, none: bool) -> None:
    """A warning where the chosen alpha is an end of its grid (of more than one value): the
    best may lie beyond it. At the top with no feature used (``none``: the refit's W = 0),
    no fit of the grid beats each task's intercept alone."""
    if len(grid) < 2:
        return
    k = int(np.argmin(np.abs(np.asarray(grid) - alpha)))
    if k == 0:
        if none:
            why = (", where no feature is used: no fit of the grid predicts the held-out rows "
                   "better than each task's intercept alone (the features may not predict "
                   "the target)")
        else:
            why = (" and scores best: a larger alpha may score better; extend the grid "
                   "upwards (alphas=[...] with larger values)")
        warnings.warn(f"alpha_={alpha:.4g} is the largest alpha of the grid{why}.",
                      UserWarning, stacklevel=4)
    elif k == len(grid) - 1:
        warnings.warn(f"alpha_={alpha:.4g} is the smallest alpha of the grid and scores best: "
                      "a smaller alpha may score better; extend the grid downwards (a smaller "
                      "eps, or alphas=[...] with smaller values).", UserWarning, stacklevel=4)


def _with_offset(data: TaskData, datafit: Datafit, offset: Any,
                 fit_intercept: bool) -> tuple[TaskData, np.ndarray | None]:
    """(the problem with ``offset`` folded into its targets and row weights, the offset
    per flat row); ``(data, None)`` without one. With intercepts (one loss) each
    task's centre of the offsets is left out (its intercepts absorb it exactly; the
    refit takes the offsets as given)."""
    if offset is None:
        return data, None
    fold = FoldOffset(offset)
    return fold.apply(Problem(data, datafit, None, fit_intercept)).data, fold.rows


class _MultiTaskCV(InferenceMethods, BaseEstimator):
    """Shared machinery of the CV estimators."""

    _estimator_class: type[MultiTaskLinear] = MultiTaskRegressor
    _kind = "regression"

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="neither"), None],
        "penalty_grid": [dict, None],
        "cv": ["cv_object", "array-like", StrOptions({"loo"})],
        "criterion": [StrOptions({"cv", "aic", "bic"})],
        **{k: MultiTaskLinear._parameter_constraints[k] for k in TERM_PARAMS},
        "scoring": [str, callable, None],
        "one_se": ["boolean"],
        "alpha_per_task": ["boolean"],
        "refit": ["boolean"],
        "fit_intercept": ["boolean"],
        "task_weight": [StrOptions({"equal", "samples"}), "array-like"],
        "solver": [StrOptions(set(SOLVERS))],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "solver_options": [dict, None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "progress": ["boolean", StrOptions({"auto"})],
        "verbose": ["verbose"],
    }

    __metadata_request__fit = {"task": True}
    __metadata_request__score = {"task": True}
    __metadata_request__predict = {"task": True}

    def __init__(
        self,
        penalty: str | Penalty = "l21",
        *,
        alphas: int | Any = 30,
        eps: float | None = None,
        penalty_grid: dict | None = None,
        cv: Any = 5,
        criterion: str = "cv",
        scoring: Any = None,
        one_se: bool = False,
        alpha_per_task: bool = False,
        refit: bool = True,
        fit_intercept: bool = True,
        task_weight: Any = "equal",
        solver: str = "auto",
        tol: float = 1e-4,
        max_iter: int = 1000,
        solver_options: dict | None = None,
        n_jobs: int | None = None,
        random_state: Any = 0,
        progress: bool | str = "auto",
        verbose: int = 0,
        penalty_factor: Any = None,
        exclude: Any = None,
        lower_bounds: Any = None,
        upper_bounds: Any = None,
        rescale_factors: bool = True,
        standardize: bool | str = False,
        factor_convention: str = "unit",
    ):
        self.penalty = penalty
        self.alphas = alphas
        self.eps = eps
        self.penalty_grid = penalty_grid
        self.cv = cv
        self.criterion = criterion
        self.scoring = scoring
        self.one_se = one_se
        self.alpha_per_task = alpha_per_task
        self.refit = refit
        self.fit_intercept = fit_intercept
        self.task_weight = task_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.solver_options = solver_options
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.verbose = verbose
        self.penalty_factor = penalty_factor
        self.exclude = exclude
        self.lower_bounds = lower_bounds
        self.upper_bounds = upper_bounds
        self.rescale_factors = rescale_factors
        self.standardize = standardize
        self.factor_convention = factor_convention

    # ------------------------------------------------------------------ grid
    def _penalties(self) -> list[tuple[dict, Penalty]]:
        """(params, penalty) for every point of ``penalty_grid`` (one point without it)."""
        base = make_penalty(self.penalty)
        grid = self.penalty_grid or {}
        names = list(grid)
        valid = set(base.get_params())
        for name in names:
            if name not in valid:
                raise ValueError(
                    f"penalty_grid: {name!r} is not a parameter of {base!r}; it has "
                    f"{sorted(valid) or 'none'}."
                )
            values = grid[name]
            if isinstance(values, str) or not hasattr(values, "__len__") or len(values) == 0:
                raise ValueError(f"penalty_grid[{name!r}] must be a non-empty list of values.")
        out = []
        for combo in itertools.product(*(list(grid[n]) for n in names)):
            params = dict(zip(names, combo, strict=True))
            pen = clone(base).set_params(**params) if params else base
            out.append((params, pen))
        return out

    def _estimator(self, penalty: Penalty | str, alpha: float) -> MultiTaskLinear:
        return self._estimator_class(
            penalty=penalty, alpha=alpha, fit_intercept=self.fit_intercept,
            task_weight=self.task_weight, solver=self.solver, tol=self.tol,
            max_iter=self.max_iter, verbose=self.verbose, solver_options=self.solver_options,
            **_terms(self), **self._loss_params(),
        )

    def _loss_params(self) -> dict:
        """The base estimator's loss parameter (the regressor's ``loss``)."""
        return {}

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, task: Any = None, sample_weight: Any = None,
            groups: Any = None, offset: Any = None):
        """Choose the penalty's parameters on ``(X, y)`` and refit on all of it.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            The design(s), in any input form of the base estimator.
        y : array-like, or list or dict of them
            Targets, in the form of ``X``.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form), or the name of a column of ``X``.
        sample_weight : array-like, or list of them, optional
            One weight per row.
        groups : array-like, or list of them, optional
            A group label per row (a list of arrays per task for the lists form): rows of one
            group never fall on both sides of a fold (``GroupKFold``, the same groups in
            every task).
        offset : array-like, or list or dict of them, optional
            A fixed term of each row's linear predictor (the log exposure of a count), as
            for the base estimator's ``fit``: folded into every training fold, added to the
            validation scores, and passed to the refit (in-memory input).

        Returns
        -------
        self
            The fitted search.

        Raises
        ------
        ValueError
            If a task has too few rows for the folds, ``alphas`` is not an integer or a 1-D
            list of values >= 0, ``penalty_grid`` names a parameter the penalty does not
            have, or ``one_se=True`` with a criterion.
        """
        check_alphas(self.alphas)  # a bad grid is refused before any work
        X, offset = offset_column(X, offset)
        probe = self._estimator(self.penalty, 1.0)
        rows = probe.fit_rows(X, y, task, sample_weight)
        data, layout, datafit = rows  # (layout: the classes' layout of a multinomial fit)
        classes = None if layout is None else task_classes(data)
        distributed = not data.rows_local
        base = data if layout is None else layout
        check_loss_targets(base, datafit.bind(base))  # (on Dask, on every block)
        if classes is not None:
            self._check_multiclass()
        fit_data, o_flat = _with_offset(base, datafit, offset, self.fit_intercept)
        if distributed and self.criterion != "cv":
            raise ValueError(f"criterion={self.criterion!r} is not available on Dask input "
                             "(its degrees of freedom need the rows in one place); use "
                             "criterion='cv'.")
        if self.criterion != "cv" and self.one_se:
            raise ValueError("one_se=True applies to criterion='cv' (it needs the spread of "
                             "the fold scores); use one_se=False with AIC/BIC.")
        candidates = self._penalties()
        for _, pen in candidates:
            pen.check(data.n_features, data.n_tasks)
        loo = isinstance(self.cv, str)
        self._check_choice(candidates, loo, distributed, groups)
        folds = None
        if self.criterion == "cv" and not loo:  # before the grid: too few rows is the error
            g_flat = None if groups is None else flat_groups(data, groups)
            folds = task_folds(data, self.cv, groups=g_flat,
                               stratify=self._strata(datafit, data),
                               random_state=self.random_state)
        if self.criterion != "cv":  # a loss with no likelihood is refused before any work
            datafit.bind(base).neg2_log_likelihood(base, base.row_zeros(),
                                                   observed_weights(base))
        # the terms by position (the folds' problems carry no column names)
        terms = by_position(_terms(self), getattr(probe, "feature_names_in_", None),
                            data.n_features)
        grids = [path_grid(fit_data, datafit, pen, self.alphas, self.eps, self.fit_intercept,
                           terms) for _, pen in candidates]
        kwargs = {**_path_kwargs(self), **terms}
        if loo:
            results = self._leave_one_out(fit_data, candidates, grids)
        elif self.criterion == "cv":
            results = self._cross_validate(data, folds, candidates, grids, kwargs, datafit,
                                           o_flat, classes)
        else:
            results = self._information(fit_data, datafit, candidates, grids, kwargs,
                                        None if o_flat is None else (data, o_flat))
        self.cv_results_ = results
        self.best_index_ = best_index(results, self.criterion, self.one_se,
                                      getattr(self, "n_splits_", 0))
        best = results.iloc[self.best_index_]
        g = int(best["_grid"])
        self.alpha_ = float(best["param_alpha"])
        self.best_score_ = float(best["mean_test_score"]) if self.criterion == "cv" else float(
            best[self.criterion])
        if self.alpha_per_task:
            g, self.alpha_, self.best_score_ = per_task_choice(results, grids, self.one_se,
                                                               self.n_splits_)
        self.best_params_ = {"alpha": self.alpha_, **candidates[g][0]}
        if self.criterion != "cv":
            self.df_std_ = float(best["df_std"])
        elif hasattr(self, "df_std_"):
            del self.df_std_
        self.penalty_ = candidates[g][1]
        self.loss_ = datafit
        self.alphas_ = grids[g]
        self.tasks_ = data.tasks
        self.n_tasks_ = data.n_tasks
        self.input_form_ = data.form
        self.cv_results_ = results.drop(columns="_grid")
        if self.refit:
            t0 = time.perf_counter()
            best = self._estimator(clone(self.penalty_), self.alpha_)
            self.best_estimator_ = placement_of(X, y, task).refit(
                best, rows, X, y, task, sample_weight, offset)
            self.refit_time_ = time.perf_counter() - t0
            for attr in ("coef_", "intercept_", "n_features_in_", "feature_names_in_",
                         "classes_", "n_iter_", "dual_gap_", "kkt_residual_",
                         "objective_at_zero_", "certificate_relative_"):
                if hasattr(self.best_estimator_, attr):
                    setattr(self, attr, getattr(self.best_estimator_, attr))
        else:
            self.n_features_in_ = probe.n_features_in_
            if hasattr(probe, "classes_"):
                self.classes_ = probe.classes_
        if not self.alpha_per_task:
            rows = results[results["_grid"] == g]
            none = (bool(np.all(np.asarray(self.coef_) == 0)) if self.refit else
                    "mean_n_active" in rows and float(rows["mean_n_active"].iloc[0]) == 0.0)
            _warn_at_an_end(grids[g], self.alpha_, none)
        return self

    def _strata(self, datafit: Datafit, data: TaskData) -> bool | np.ndarray:
        """Which tasks the folds stratify: all for a classifier, the binary tasks of a fit
        with one loss per task."""
        if datafit.kind != "mixed":
            return self._kind == "binary"
        return np.array([loss.kind == "binary" for loss in datafit.task_losses(data)])

    def _run(self, jobs: list, steps: list[int], desc: str, distributed: bool = False) -> list:
        """The results of ``jobs`` (paths) in order; the progress bar counts ``steps[i]``
        fits (the alphas of its path) when job i ends."""
        # on task blocks every fit already runs on the cluster: the jobs run here in turn
        parallel = (lambda js: (fn(*a, **kw) for fn, a, kw in js)) if distributed else Parallel(
            n_jobs=self.n_jobs, return_as="generator", verbose=max(0, int(self.verbose) - 1))
        out = []
        with progress_bar(sum(steps), self.progress, desc, unit="fit") as bar:
            for i, res in enumerate(parallel(jobs)):
                out.append(res)
                bar.update(steps[i])
        return out

    def _warn_unconverged(self, results: list) -> None:
        bad = sum(int(r[2].sum()) for r in results)
        if bad:
            total = sum(len(r[2]) for r in results)
            worst = max(float(np.max(np.where(r[2], r[3], 0.0))) for r in results)
            warnings.warn(
                f"{bad} of {total} fits in the search stopped short of tol={self.tol:g} (the "
                f"largest relative certificate reached: {worst:.2e}); raise max_iter or "
                "loosen tol.", ConvergenceWarning, stacklevel=3)

    def _check_multiclass(self) -> None:
        """Refuse what the multinomial loss (a task with more than two classes) cannot
        serve, before any work."""
        if self.alpha_per_task:
            raise ValueError("alpha_per_task=True is not available for tasks with more than "
                             "two classes; choose one alpha by cross-validation.")

    def _cross_validate(self, data, folds, candidates, grids, kwargs, datafit,
                        offset=None, classes=None) -> pd.DataFrame:
        self.n_splits_ = len(folds)
        scorer = (TaskScorer(self.scoring, self._kind, datafit) if classes is None else
                  ClassScorer(self.scoring, classes))
        jobs = [delayed(_fold_job)(data, folds[k], datafit, pen, grids[g], self.task_weight,
                                   scorer, kwargs, offset, classes)
                for g, (_, pen) in enumerate(candidates) for k in range(len(folds))]
        steps = [len(grids[g]) for g in range(len(candidates)) for _ in range(len(folds))]
        results = self._run(jobs, steps, "cross-validation", not data.rows_local)
        self._warn_unconverged(results)
        K = len(folds)
        rows = []
        undefined = np.zeros(data.n_tasks, dtype=bool)
        for g, (params, _) in enumerate(candidates):
            fold_res = results[g * K:(g + 1) * K]
            # (K, n_alphas): each fold's task-averaged score
            per_task = np.stack([r[0] for r in fold_res])
            undefined |= np.isnan(per_task).any(axis=(0, 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                split = np.nanmean(per_task, axis=2)
            active = np.stack([r[1] for r in fold_res]).mean(axis=0)
            fit_time = np.mean([r[4] for r in fold_res]) / len(grids[g])
            for i, alpha in enumerate(grids[g]):
                row = {"_grid": g, "param_alpha": float(alpha)}
                row.update({f"param_{k}": v for k, v in params.items()})
                row["params"] = {"alpha": float(alpha), **params}
                row.update({f"split{k}_test_score": float(split[k, i]) for k in range(K)})
                row["mean_test_score"] = float(np.mean(split[:, i]))
                row["std_test_score"] = float(np.std(split[:, i]))
                row["mean_task_scores"] = per_task[:, i, :].mean(axis=0)
                row["std_task_scores"] = per_task[:, i, :].std(axis=0)
                row["mean_n_active"] = float(active[i])
                row["mean_fit_time"] = float(fit_time)
                rows.append(row)
        if undefined.any():
            names = ", ".join(repr(t) for t in data.tasks[undefined][:5])
            more = f" and {int(undefined.sum()) - 5} more" if undefined.sum() > 5 else ""
            why = ("one class only" if self._kind != "regression"
                   else "too few rows for the score")
            warnings.warn(f"scoring={scorer.name!r} is undefined on some validation folds of "
                          f"{int(undefined.sum())} task(s), {names}{more} ({why}); those tasks "
                          "are left out of the fold averages there.", UserWarning, stacklevel=3)
        df = pd.DataFrame(rows)
        score = df["mean_test_score"].to_numpy()
        df["rank_test_score"] = pd.Series(-score).rank(method="min").astype(int).to_numpy()
        return df

    def _check_choice(self, candidates: list, loo: bool, distributed: bool,
                      groups: Any) -> None:
        """Refuse what ``alpha_per_task`` and ``cv="loo"`` cannot serve, before any work."""
        if _terms(self) and (loo or self.criterion != "cv" or distributed):
            raise ValueError(
                "penalty_factor, exclude, bounds and standardize are taken by criterion='cv' "
                "with folds, in memory; AIC/BIC and cv='loo' (their degrees of freedom and "
                "leave-one-out formulas are those of the plain penalty) and Dask input take "
                "none of them.")
        if self.alpha_per_task:
            if self.criterion != "cv":
                raise ValueError(f"alpha_per_task=True chooses by cross-validation; "
                                 f"criterion={self.criterion!r} scores the tasks together. "
                                 "Use criterion='cv'.")
            if distributed:
                raise ValueError("alpha_per_task=True is not available on Dask input; "
                                 "choose one alpha, or fit the tasks in memory.")
            for _, pen in candidates:
                if not separable_over_tasks(pen):
                    raise ValueError(
                        f"alpha_per_task=True needs a penalty separable over tasks whose "
                        f"alpha scales each task's term (l1, l2, elasticnet); {pen!r} is "
                        "not one, so the tasks share one alpha.")
        if not loo:
            return
        if self.cv != "loo":
            raise ValueError(f"cv={self.cv!r}: the only string accepted is 'loo' (efficient "
                             "leave-one-out of ridge).")
        # a plain ridge only (not a sign-constrained one: its leave-one-out is not linear)
        ridge = all(separable_over_tasks(p) and p.ridge_strength(1.0) is not None
                    for _, p in candidates)
        if self._kind != "regression" or not ridge or not make_loss(
                self._loss_params().get("loss", "squared")).quadratic:
            raise ValueError("cv='loo' is the efficient leave-one-out of ridge: it needs the "
                             "regressor with penalty='l2' (and the squared loss). Use an "
                             "integer number of folds for other models.")
        if self.criterion != "cv" or self.one_se or distributed or groups is not None:
            raise ValueError("cv='loo' takes criterion='cv', one_se=False, no groups and "
                             "in-memory input; give cv an integer number of folds otherwise.")
        if self.scoring not in (None, "neg_mean_squared_error"):
            raise ValueError(f"cv='loo' scores by the leave-one-out squared error; "
                             f"scoring={self.scoring!r} needs cv=<number of folds>.")

    def _leave_one_out(self, data, candidates, grids) -> pd.DataFrame:
        """Ridge's efficient leave-one-out
        (:func:`~regmtl.selection.loo.ridge_loo_scores`) over every grid."""
        self.n_splits_ = 0
        rows = []
        with progress_bar(sum(len(grid) for grid in grids), self.progress, "leave-one-out",
                          unit="fit") as bar:
            for g, (params, _) in enumerate(candidates):
                t0 = time.perf_counter()
                per_task = ridge_loo_scores(data, grids[g], self.fit_intercept)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(per_task, axis=1)
                fit_time = (time.perf_counter() - t0) / len(grids[g])
                for i, alpha in enumerate(grids[g]):
                    row = {"_grid": g, "param_alpha": float(alpha)}
                    row.update({f"param_{k}": v for k, v in params.items()})
                    row["params"] = {"alpha": float(alpha), **params}
                    row["mean_test_score"] = float(mean[i])
                    row["std_test_score"] = np.nan
                    row["mean_task_scores"] = per_task[i]
                    row["std_task_scores"] = np.full(data.n_tasks, np.nan)
                    row["mean_fit_time"] = float(fit_time)
                    rows.append(row)
                bar.update(len(grids[g]))
        df = pd.DataFrame(rows)
        score = df["mean_test_score"].to_numpy()
        df["rank_test_score"] = pd.Series(-score).rank(method="min").astype(int).to_numpy()
        return df

    def _information(self, data, datafit, candidates, grids, kwargs,
                     like=None) -> pd.DataFrame:
        """AIC/BIC of every candidate; what tiny tasks make undefined is refused or left out.

        The Gaussian likelihood profiles one noise variance per task, ``RSS_t / m_t``. A
        task of one observed row is fitted exactly by its intercept at every alpha, so its
        variance is 0 and ``-2 log L`` is minus infinity, set by rounding: refused (a
        ValueError naming the task; ``criterion='cv'`` trains on it and never scores it).
        A candidate with ``df >= N - 1`` (N observed rows) leaves no residual degree of
        freedom for the variances (AICc's correction ``2 df (df + 1) / (N - df - 1)`` is
        infinite there): its ``-2 log L`` diverges as its residuals reach rounding, so its
        criterion is set to +inf (never chosen) with a warning; if that leaves no candidate,
        a ValueError.
        """
        self.n_splits_ = 0
        obs = np.ones(data.n_obs) if data.observed is None else data.observed.astype(float)
        task_rows = np.bincount(data.task_of, weights=obs, minlength=data.n_tasks)
        # a likelihood that profiles a scale per task (the Gaussian's noise variance, the
        # Gamma's dispersion) is unbounded on a task its intercept fits exactly
        scaled = datafit.profiles_scale
        if scaled and self.fit_intercept and (task_rows < 2).any():
            t = int(np.argmin(task_rows))
            what = "noise variance" if datafit.quadratic else "dispersion"
            model = "Gaussian" if datafit.quadratic else datafit.name.capitalize()
            raise ValueError(
                f"criterion={self.criterion!r}: task {task_name(data, t)} has {int(task_rows[t])} "
                f"observed row; its intercept fits it exactly at every alpha, so its {what} "
                f"is 0 and the {model} likelihood is unbounded. Use criterion='cv' "
                "(the task then trains in every fold, unscored), or remove the task.")
        seed = self.random_state
        if seed is None:
            seed = 0  # the criterion stays deterministic
        elif not isinstance(seed, Integral):
            seed = int(check_random_state(seed).randint(2**31 - 1))
        jobs = [delayed(_criterion_job)(data, datafit, pen, grids[g], self.criterion, kwargs,
                                        int(seed) + 100_003 * g, like)
                for g, (_, pen) in enumerate(candidates)]
        results = self._run(jobs, [len(grid) for grid in grids], self.criterion.upper())
        self._warn_unconverged(results)
        rows = []
        for g, (params, _) in enumerate(candidates):
            vals, active, *_ = results[g]
            for i, alpha in enumerate(grids[g]):
                row = {"_grid": g, "param_alpha": float(alpha)}
                row.update({f"param_{k}": v for k, v in params.items()})
                row["params"] = {"alpha": float(alpha), **params}
                row["df"], row["df_std"], row["neg2_log_likelihood"], row[self.criterion] = (
                    vals[i])
                row["n_active"] = int(active[i])
                rows.append(row)
        df = pd.DataFrame(rows)
        n_rows = float(obs.sum())
        over = (df["df"] >= n_rows - 1).to_numpy()
        if over.all():
            raise ValueError(
                f"criterion={self.criterion!r}: every candidate has df >= N - 1 = "
                f"{n_rows - 1:g} (smallest df {df['df'].min():.4g}); with no residual degree "
                "of freedom the likelihood is unbounded. Use larger alphas or criterion='cv'.")
        if over.any():
            df.loc[over, self.criterion] = np.inf
            warnings.warn(
                f"criterion={self.criterion!r}: {int(over.sum())} of {len(df)} candidates have "
                f"df >= N - 1 = {n_rows - 1:g} (no residual degree of freedom: the likelihood "
                f"is unbounded); their {self.criterion} is set to inf, never chosen.",
                UserWarning, stacklevel=3)
        df[f"rank_{self.criterion}"] = df[self.criterion].rank(method="min").astype(int)
        return df

    def _fitted(self) -> MultiTaskLinear:
        check_is_fitted(self, "cv_results_")
        if not hasattr(self, "best_estimator_"):
            raise AttributeError("refit=False: no model was fitted on all the data; refit with "
                                 "refit=True or fit a model with best_params_.")
        return self.best_estimator_

    def predict(self, X: Any, task: Any = None, offset: Any = None) -> Any:
        """Predictions of the refitted model, in the form of ``X``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form of the base estimator.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).
        offset : array-like, or list or dict of them, optional
            The offset of each row's linear predictor (the regressor's losses that take
            one, as in ``fit``).

        Returns
        -------
        ndarray, list or dict
            Predicted targets (regression) or labels (classification), in the form of ``X``.

        Raises
        ------
        AttributeError
            With ``refit=False`` (no model was fitted on all the data).
        """
        extra = {} if offset is None else {"offset": offset}
        return self._fitted().predict(X, task=task, **extra)

    def score(self, X: Any, y: Any, task: Any = None, sample_weight: Any = None,
              offset: Any = None) -> float:
        """The refitted model's score, averaged over tasks.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form of the base estimator.
        y : array-like, or list or dict of them
            True targets or labels, in the form of ``X``.
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).
        sample_weight : array-like, or list of them, optional
            One weight per row.
        offset : array-like, or list or dict of them, optional
            The offset of each row's linear predictor (as in ``fit``).

        Returns
        -------
        float
            The mean over tasks of each task's R^2 (the squared loss; D^2, the deviance
            explained, for the regressor's other losses) or accuracy (classification).
        """
        extra = {} if offset is None else {"offset": offset}
        return self._fitted().score(X, y, task=task, sample_weight=sample_weight, **extra)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cv_results_")


_DOC_PARAMS = r"""
    Parameters
    ----------
    penalty : str or Penalty, default="l21"
        The penalty's name or object, as for the base estimator; its own parameters may be
        searched with ``penalty_grid``.
    alphas : int or array-like, default=30
        Number of values of a geometric grid, computed on all the data: from ``alpha_max``
        down to ``eps * alpha_max``, or around a data-driven scale for penalties without
        ``alpha_max`` (see :func:`~regmtl.selection.path_alphas`); or the values themselves.
    eps : float, optional
        Ratio of the smallest to the largest alpha (default 1e-3, or 1e-6 for a scale grid).
    penalty_grid : dict, optional
        Values of the penalty's own parameters, e.g. ``{"l1_ratio": [0.5, 0.9, 1.0]}`` for
        ``L21`` or ``ElasticNet``, ``{"own_weight": [0.5, 1, 2]}`` for ``Dirty``: a search over
        two (or more) parameters, one warm-started path per value.
    cv : int, splitter, iterable or "loo", default=5
        K folds inside every task (stratified for classification; ``GroupKFold`` when
        ``groups`` are passed to ``fit``), a splitter applied to each task's rows, or explicit
        ``(train, test)`` pairs of input rows. A shared design splits its rows, the same for
        every task (see :func:`~regmtl.selection.task_folds`). ``"loo"``: the exact
        leave-one-out of ridge, every alpha from one decomposition per task (regressor with
        ``penalty="l2"`` only, as scikit-learn's ``RidgeCV``;
        :func:`~regmtl.selection.loo.ridge_loo_scores`).
    criterion : {"cv", "aic", "bic"}, default="cv"
        Cross-validation, or an information criterion on one path over all the data (its
        degrees of freedom: :func:`~regmtl.selection.degrees_of_freedom`). A criterion
        needs a likelihood: the squared, logistic, Poisson and Gamma losses (the
        Gaussian's variance and the Gamma's shape profiled per task); the Huber and
        quantile losses and a loss per task are refused (choose by cross-validation).
    scoring : str or callable, optional
        Validation score, averaged over tasks, greater is better. Default
        ``"neg_mean_squared_error"`` (the squared loss), ``"neg_log_loss"``
        (classification), and for the regressor's other losses ``"neg_mean_deviance"``:
        minus each task's mean unit deviance of its loss (``Datafit.deviance``: the mean
        Poisson or Gamma deviance, as ``sklearn.metrics.mean_poisson_deviance``; twice the
        mean Huber or pinball loss; twice the log-loss of a binary task of a fit with one
        loss per task). Any scikit-learn scorer name (regression scores read the
        predictions, ``exp`` of the scores for the log-link losses), or a callable
        ``scorer(estimator, X_t, y_t)`` called on each task.
    one_se : bool, default=False
        Take the largest alpha whose mean score is within one standard error of the best
        (cross-validation only): the sample standard deviation of the fold scores
        (ddof = 1, as glmnet) over sqrt(K). ``std_test_score`` reports the population one
        (ddof = 0), as scikit-learn.
    alpha_per_task : bool, default=False
        Choose one alpha per task, each by its own validation score along the same paths
        (penalties separable over tasks only: ``"l1"``, ``"l2"``, ``"elasticnet"``; with
        ``one_se``, per task too). ``alpha_`` is then an array of shape (T,) and the refit
        solves every task at its own alpha (``regmtl.task_alpha``).
    refit : bool, default=True
        Refit the chosen model on all the data (``best_estimator_``); needed by ``predict``
        and ``score``.
    fit_intercept : bool, default=True
        As for the base estimator, for every fit of the search.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        As for the base estimator.
    solver : {"auto", "bcd", "fista", "cg", "admm"}, default="auto"
        As for the base estimator.
    tol : float, default=1e-4
        As for the base estimator; fits that stop short are summed up in one warning.
    max_iter : int, default=1000
        As for the base estimator.
    solver_options : dict, optional
        As for the base estimator.
    n_jobs : int, optional
        Number of (fold, penalty value) paths solved in parallel through joblib, with its
        active backend (loky by default, Dask inside
        ``with joblib.parallel_backend("dask")``). The result does not depend on it.
    random_state : int, RandomState or None, default=0
        Shuffles each task's rows before splitting (None: contiguous folds); with a
        criterion, seeds the probes of the degrees-of-freedom estimate where it is
        randomized (None: seed 0).
    progress : {"auto", True, False}, default="auto"
        A progress bar on stderr over the fits of the search, (folds x alphas) x values of
        ``penalty_grid`` (or alphas x values with a criterion), with the time left; each
        path counts its alphas when it ends. ``True`` shows it from the start, ``False``
        never, ``"auto"`` when stderr is a terminal and the search has lasted 2 s (a shorter
        one prints nothing; ``regmtl.progress``). It never changes the result.
    verbose : int, default=0
        Verbosity of joblib (above 1) and of the solvers.
""" + TERMS_DOC + """\
        These terms (any of them) are taken by ``criterion="cv"`` with folds: the grid
        starts at ``alpha_max`` under them, and each fold's path and the refit take them.
"""

_ALPHAS_DOC = "    alphas : int or array-like, default=30\n"
_LOSS_DOC = r"""    loss : str, Datafit or list of them, default="squared"
        The base estimator's loss: ``"squared"``, ``"poisson"``, ``"gamma"``, ``"huber"``,
        ``"quantile"``, a loss object (``regmtl.Huber(2.0)``, ``regmtl.Quantile(0.9)``), or
        a list with one per task (``["logistic", "poisson", "squared"]``). Every fold fits
        it (each task with its own loss) and, by default, scores each task by its loss's
        deviance.
"""

_DOC_ATTRS = r"""
    Attributes
    ----------
    alpha_ : float or ndarray of shape (T,)
        The chosen ``alpha`` (one per task with ``alpha_per_task=True``).
    best_params_ : dict
        The chosen ``alpha`` and values of ``penalty_grid``.
    best_score_ : float
        The chosen candidate's mean cross-validated score, or its criterion's value.
    best_index_ : int
        Its row in ``cv_results_`` (with ``alpha_per_task=True``, the row of the best common
        alpha).
    penalty_ : Penalty
        The penalty object of the choice.
    loss_ : Datafit
        The loss of every fold and the refit, read from all the rows (``Huber()``'s delta).
    alphas_ : ndarray of shape (n_alphas,)
        The grid of the chosen penalty value.
    cv_results_ : DataFrame
        One row per (penalty value, alpha). Cross-validation: ``param_*``, ``params``,
        ``split{k}_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, ``mean_task_scores`` and ``std_task_scores`` (arrays of the
        per-task scores' means and standard deviations over folds), ``mean_n_active``,
        ``mean_fit_time`` (per alpha). A criterion: ``param_*``,
        ``params``, ``df``, ``df_std``, ``neg2_log_likelihood``, ``aic`` or ``bic``,
        ``n_active``, ``rank_aic`` or ``rank_bic``. ``df_std`` is the standard error of
        ``df`` where it is a randomized (Hutchinson) estimate, 0 where exact (see
        :func:`~regmtl.selection.degrees_of_freedom`).
    df_std_ : float
        With a criterion: ``df_std`` of the chosen candidate (0.0 when its degrees of
        freedom are exact). The coupled penalties (``mean``, ``GraphLaplacian``,
        ``clustered``) estimate them beyond about 2000 coefficients, to a relative standard
        error of 1% at most, seeded by ``random_state`` (0 when None).
    best_estimator_ : estimator
        The chosen model refitted on all the data (``refit=True``).
    refit_time_ : float
        Seconds spent refitting it.
    coef_, intercept_, n_iter_ : ndarray, ndarray or float, int
        Those of ``best_estimator_``, as are ``dual_gap_`` or ``kkt_residual_``,
        ``objective_at_zero_`` and ``certificate_relative_``.
    n_features_in_ : int
        Number of features p.
    feature_names_in_ : ndarray of shape (p,)
        Feature names, when ``X`` was a DataFrame with string column names.
    tasks_ : ndarray of shape (T,)
        Task labels.
    n_tasks_ : int
        Number of tasks T.
    input_form_ : str
        The input form of ``fit``.
    n_splits_ : int
        Number of folds (0 with a criterion).
"""


class MultiTaskRegressorCV(RegressorMixin, _MultiTaskCV):
    __doc__ = r"""Multi-task regression with ``alpha`` chosen by cross-validation or AIC/BIC.

    Fits :class:`~regmtl.MultiTaskRegressor` along a warm-started regularization path for
    every fold (and every value of ``penalty_grid``), scores each task's validation rows,
    averages the scores over tasks (a small task counts as much as a large one) and over
    folds, picks the best ``alpha`` and refits it on all the data. The folds split the rows
    inside every task, so each fold trains and validates on every task. With
    ``criterion="aic"`` or ``"bic"`` one path on all the data is scored instead, with the
    degrees of freedom of the penalty. Paths run in parallel with ``n_jobs``; the folds are
    drawn from ``random_state`` before, so the choice does not depend on the number of jobs.
""" + _DOC_PARAMS.replace(_ALPHAS_DOC, _LOSS_DOC + _ALPHAS_DOC, 1) + _DOC_ATTRS + r"""
    See Also
    --------
    regmtl.MultiTaskRegressor : The model at a given ``alpha``.
    regmtl.regularization_path : The solutions along the grid.
    regmtl.plotting.plot_cv_curve : Draw ``cv_results_``.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.array([1.0, -2.0, 0.0, 0.0, 0.0, 0.0])
    >>> Xs = [rng.standard_normal((40, 6)) for _ in range(3)]
    >>> ys = [X @ w + 0.5 * rng.standard_normal(40) for X in Xs]
    >>> search = rm.MultiTaskRegressorCV("l21", alphas=10, cv=3).fit(Xs, ys)
    >>> search.cv_results_.shape[0], search.n_splits_, search.coef_.shape
    (10, 3, (3, 6))
    >>> bool(search.alpha_ == search.cv_results_["param_alpha"][search.best_index_])
    True

    BIC on one path instead of cross-validation:

    >>> bic = rm.MultiTaskRegressorCV("l21", alphas=10, criterion="bic").fit(Xs, ys)
    >>> int(bic.cv_results_["rank_bic"][bic.best_index_])
    1
    """

    _estimator_class = MultiTaskRegressor
    _kind = "regression"
    score = _MultiTaskCV.score  # not RegressorMixin's, which knows neither lists nor task ids

    _parameter_constraints: dict = {
        **_MultiTaskCV._parameter_constraints,
        "loss": MultiTaskRegressor._parameter_constraints["loss"],
    }
    # the offset travels with the rows as the task ids do (as for the base estimator)
    __metadata_request__fit = {"task": True, "offset": True}
    __metadata_request__predict = {"task": True, "offset": True}
    __metadata_request__score = {"task": True, "offset": True}

    def __init__(
        self,
        penalty: str | Penalty = "l21",
        *,
        loss: Any = "squared",
        alphas: int | Any = 30,
        eps: float | None = None,
        penalty_grid: dict | None = None,
        cv: Any = 5,
        criterion: str = "cv",
        scoring: Any = None,
        one_se: bool = False,
        alpha_per_task: bool = False,
        refit: bool = True,
        fit_intercept: bool = True,
        task_weight: Any = "equal",
        solver: str = "auto",
        tol: float = 1e-4,
        max_iter: int = 1000,
        solver_options: dict | None = None,
        n_jobs: int | None = None,
        random_state: Any = 0,
        progress: bool | str = "auto",
        verbose: int = 0,
        penalty_factor: Any = None,
        exclude: Any = None,
        lower_bounds: Any = None,
        upper_bounds: Any = None,
        rescale_factors: bool = True,
        standardize: bool | str = False,
        factor_convention: str = "unit",
    ):
        super().__init__(
            penalty, alphas=alphas, eps=eps, penalty_grid=penalty_grid, cv=cv,
            criterion=criterion, scoring=scoring, one_se=one_se,
            alpha_per_task=alpha_per_task, refit=refit, fit_intercept=fit_intercept,
            task_weight=task_weight, solver=solver, tol=tol, max_iter=max_iter,
            solver_options=solver_options, n_jobs=n_jobs, random_state=random_state,
            progress=progress, verbose=verbose, penalty_factor=penalty_factor,
            exclude=exclude, lower_bounds=lower_bounds, upper_bounds=upper_bounds,
            rescale_factors=rescale_factors, standardize=standardize,
            factor_convention=factor_convention)
        self.loss = loss

    def _loss_params(self) -> dict:
        return {"loss": self.loss}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class MultiTaskClassifierCV(ClassifierMixin, _MultiTaskCV):
    __doc__ = r"""Multi-task logistic regression with ``alpha`` chosen by CV or AIC/BIC.

    Fits :class:`~regmtl.MultiTaskClassifier` along a warm-started regularization path for
    every fold (and every value of ``penalty_grid``), scores each task's validation rows
    (log-loss by default), averages over tasks and folds, picks the best ``alpha`` and
    refits it on all the data. The folds split the rows inside every task, stratified by
    class, so each fold trains and validates on both classes of every task. With
    ``criterion="aic"`` or ``"bic"`` one path on all the data is scored instead (Bernoulli
    deviance plus the penalty's degrees of freedom).

    Where a task has more than two classes, every fit is the multinomial one of
    :class:`~regmtl.MultiTaskClassifier` (one column of W per class of each task): each fold
    is laid out with the classes found on all the data, so that every fold has the same
    columns (a class absent from a fold's training rows keeps its column), and scored by
    each task's mean log loss (``scoring`` may name ``"accuracy"``, any scikit-learn scorer
    or a callable, called on a one-task view with ``predict_proba`` over the task's
    classes); AIC/BIC and ``alpha_per_task`` are refused there (cross-validate one alpha).
""" + _DOC_PARAMS + _DOC_ATTRS + r"""    classes_ : ndarray, or list of them
        The labels of each task, sorted (two per task, or each task's classes for the
        multinomial loss).

    See Also
    --------
    regmtl.MultiTaskClassifier : The model at a given ``alpha``.
    regmtl.MultiTaskRegressorCV : The squared loss.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> w = np.array([1.0, -2.0, 0.0, 0.0, 0.0, 0.0])
    >>> Xs = [rng.standard_normal((40, 6)) for _ in range(3)]
    >>> ys = [np.where(X @ w + 0.5 * rng.standard_normal(40) > 0, "yes", "no") for X in Xs]
    >>> search = rm.MultiTaskClassifierCV("l21", alphas=8, eps=1e-2, cv=3).fit(Xs, ys)
    >>> search.classes_[0].tolist(), search.coef_.shape
    (['no', 'yes'], (3, 6))
    >>> [p.shape for p in search.predict_proba([X[:2] for X in Xs])]
    [(2, 2), (2, 2), (2, 2)]
    """

    _estimator_class = MultiTaskClassifier
    _kind = "binary"
    score = _MultiTaskCV.score  # not ClassifierMixin's, which knows neither lists nor task ids
    __metadata_request__decision_function = {"task": True}
    __metadata_request__predict_proba = {"task": True}
    __metadata_request__predict_log_proba = {"task": True}

    def decision_function(self, X: Any, task: Any = None) -> Any:
        """The refitted model's scores ``x . w_t + b_t``; positive means ``classes_[t][1]``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for ``predict``).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            The scores, in the form of ``X``.
        """
        return self._fitted().decision_function(X, task=task)

    def predict_proba(self, X: Any, task: Any = None) -> Any:
        """The refitted model's class probabilities.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for ``predict``).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            Probabilities of ``classes_[t]``, shape (n_samples, K_t) per task (K_t = 2 for
            binary tasks), in the form of ``X``.
        """
        return self._fitted().predict_proba(X, task=task)

    def predict_log_proba(self, X: Any, task: Any = None) -> Any:
        """Logarithms of the refitted model's class probabilities.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, or list or dict of them
            Designs, in any input form (as for ``predict``).
        task : array-like of shape (n_samples,) or str, optional
            Task id of every row (long form).

        Returns
        -------
        ndarray, list or dict
            ``log`` of :meth:`predict_proba`, in the same form.
        """
        return self._fitted().predict_log_proba(X, task=task)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True  # (the multinomial loss)
        return tags
