r"""Validation scores of a multi-task fit, task by task.

Every score is computed on each task's validation rows and then averaged over tasks (so a small
task counts as much as a large one), greater is better. Named scores are computed from the
scores ``f = x.w_t + b_t`` directly (regression scores from the loss's prediction, its mean
``exp(f)`` for the log-link losses); any other scikit-learn scorer name or callable
``scorer(estimator, X_t, y_t)`` is called once per task on a one-task view of the fit. A
regression loss other than the squared one is scored by default by its mean unit deviance
(``"neg_mean_deviance"``: the mean Poisson or Gamma deviance, twice the mean Huber or pinball
loss, twice the log-loss of the binary tasks of a fit with one loss per task; for the squared
loss it is the mean squared error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import metrics
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..taskdata import TaskData

__all__ = ["TaskScorer", "REGRESSION_SCORES", "CLASSIFICATION_SCORES", "scorer_of"]


def _proba(f: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * f))


#: name -> (metric(y, response, sample_weight), response: "value" | "proba" | "label", sign)
REGRESSION_SCORES: dict[str, tuple[Callable, str, float]] = {
    "neg_mean_squared_error": (metrics.mean_squared_error, "value", -1.0),
    "neg_root_mean_squared_error": (metrics.root_mean_squared_error, "value", -1.0),
    "neg_mean_absolute_error": (metrics.mean_absolute_error, "value", -1.0),
    "r2": (metrics.r2_score, "value", 1.0),
    "explained_variance": (metrics.r2_score, "value", 1.0),
    "neg_mean_poisson_deviance": (metrics.mean_poisson_deviance, "value", -1.0),
    "neg_mean_gamma_deviance": (metrics.mean_gamma_deviance, "value", -1.0),
}
#: the score of every loss by its own deviance (``Datafit.deviance``), averaged per task
DEVIANCE = "neg_mean_deviance"
CLASSIFICATION_SCORES: dict[str, tuple[Callable, str, float]] = {
    "neg_log_loss": (metrics.log_loss, "proba", -1.0),
    "accuracy": (metrics.accuracy_score, "label", 1.0),
    "balanced_accuracy": (metrics.balanced_accuracy_score, "label", 1.0),
    "roc_auc": (metrics.roc_auc_score, "proba", 1.0),
    "neg_brier_score": (metrics.brier_score_loss, "proba", -1.0),
}


#: named metrics computed for all tasks at once by segment sums (the others task by task)
_SEGMENT = (metrics.mean_squared_error, metrics.root_mean_squared_error,
            metrics.mean_absolute_error, metrics.r2_score, metrics.log_loss,
            metrics.accuracy_score, metrics.brier_score_loss)


class _OneTaskRegressor(RegressorMixin, BaseEstimator):
    """Task t of a multi-task fit, as a fitted single-task estimator (for scorers): its
    predictions are the loss's mean (``link``) of the scores, plus the rows' ``offset``
    where one was given (for the rows it was given for)."""

    def __init__(self, coef: np.ndarray | None = None, intercept: float = 0.0,
                 link: Callable | None = None, offset: np.ndarray | None = None):
        self.coef = coef
        self.intercept = intercept
        self.link = link
        self.offset = offset

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def decision_function(self, X: Any) -> np.ndarray:
        f = np.asarray(X @ self.coef).ravel() + self.intercept
        if self.offset is not None and len(self.offset) == len(f):
            f = f + self.offset
        return f

    def predict(self, X: Any) -> np.ndarray:
        f = self.decision_function(X)
        return f if self.link is None else self.link(f)


class _OneTaskClassifier(ClassifierMixin, _OneTaskRegressor):
    def __init__(self, coef: np.ndarray | None = None, intercept: float = 0.0,
                 classes: np.ndarray | None = None):
        super().__init__(coef, intercept)
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def predict_proba(self, X: Any) -> np.ndarray:
        p = _proba(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes[(self.decision_function(X) > 0).astype(int)]


def scorer_of(scoring: str | Callable, named: list[str]) -> Callable:
    """A scikit-learn scorer from its name (``metrics.get_scorer``) or a callable
    ``scorer(estimator, X, y)`` as it is; ``named`` lists the scores computed directly, for
    the message that refuses anything else."""
    if isinstance(scoring, str):
        try:
            return metrics.get_scorer(scoring)
        except ValueError:
            raise ValueError(
                f"scoring={scoring!r} is not a scikit-learn scorer name; use one of {named} "
                "or any name of sklearn.metrics.get_scorer_names()."
            ) from None
    if callable(scoring):
        return scoring
    raise ValueError(f"scoring={scoring!r} must be a string, a callable "
                     "scorer(estimator, X, y) or None.")


class TaskScorer:
    """Task-averaged validation score; ``kind`` is ``"regression"`` or ``"binary"``.

    ``datafit``, the loss of a regression fit (one per task too), gives the default score
    of a loss other than the squared one (its mean unit deviance, :data:`DEVIANCE`) and
    the predictions regression scores read (the loss's mean of the scores)."""

    def __init__(self, scoring: str | Callable | None, kind: str, datafit: Any = None):
        table = REGRESSION_SCORES if kind == "regression" else CLASSIFICATION_SCORES
        squared = datafit is None or datafit.quadratic
        if scoring is None:
            scoring = ("neg_log_loss" if kind != "regression" else
                       "neg_mean_squared_error" if squared else DEVIANCE)
        self.kind = kind
        self.datafit = None if kind != "regression" or squared else datafit
        self.deviance = kind == "regression" and scoring == DEVIANCE
        if self.deviance:
            if squared:  # the squared loss's unit deviance: the squared error
                scoring = "neg_mean_squared_error"
                self.deviance = False
            else:
                self.name = (DEVIANCE if datafit.kind == "mixed" else
                             f"neg_mean_{datafit.name}_deviance")
                self._named, self._scorer = None, None
                return
        self.name = scoring if isinstance(scoring, str) else getattr(
            scoring, "__name__", type(scoring).__name__)
        self._named = table.get(scoring) if isinstance(scoring, str) else None
        self._scorer = None
        if self._named is None:
            extra = [DEVIANCE] if kind == "regression" else []
            self._scorer = scorer_of(scoring, sorted([*table, *extra]))

    def path_scores(self, val: TaskData, coefs: np.ndarray, intercepts: np.ndarray,
                    offset: np.ndarray | None = None) -> np.ndarray:
        """Scores of each task (n_alphas, T) of a path's fits (``coefs`` (n_alphas, T, p),
        ``intercepts`` (n_alphas, T)) on ``val`` (``offset``: a fixed term of each flat row's
        score); on task blocks, each block scores its tasks where its rows are, and only the
        scores come back."""
        if not val.rows_local:
            scores = val.blockwise(_block_path_scores, self, coefs.transpose(0, 2, 1),
                                   intercepts, out=("coef", len(coefs)))
            return val.arrays(scores)[0]
        return np.array([self.task_scores(val, coefs[k].T, intercepts[k], offset)
                         for k in range(len(coefs))])

    def task_scores(self, val: TaskData, W: np.ndarray, b: np.ndarray,
                    offset: np.ndarray | None = None) -> np.ndarray:
        """Score of each task (T,) of the fit ``(W, b)`` on the validation data ``val``."""
        f = val.linear(W, b)
        if offset is not None:
            f = f + offset
        if self.deviance:
            return self._deviance_scores(val, f)
        link = self._links(val)
        if self._named is not None and self.datafit is not None:
            f = self.datafit.bind(val).mean(f)  # regression scores read the predictions
            link = None
        if self._named is not None and self._named[0] in _SEGMENT:
            return self._segment_scores(val, f)
        out = np.empty(val.n_tasks)
        for t in range(val.n_tasks):
            a, e = val.indptr[t], val.indptr[t + 1]
            rows = np.arange(a, e)
            if val.observed is not None:
                rows = rows[val.observed[a:e]]
            sw = None if val.sample_weight is None else val.sample_weight[rows]
            if len(rows) == 0:
                out[t] = np.nan
                continue
            if self._named is not None:
                out[t] = self._named_score(val, t, rows, f[rows], sw)
            else:
                o = None if offset is None else offset[rows]
                out[t] = self._call(val, t, rows, W[:, t], b[t], sw,
                                    None if link is None else link[t], o)
        return out

    def _links(self, val: TaskData) -> list | None:
        """Each task's mean function (None: the scores themselves; "binary": a binary task
        of a fit with one loss per task); refuses a regression score on such a task."""
        if self.datafit is None:
            return None
        if self.datafit.kind != "mixed":
            return [self.datafit.mean] * val.n_tasks
        losses = self.datafit.task_losses(val)
        if self._named is not None and any(loss.kind == "binary" for loss in losses):
            raise ValueError(f"scoring={self.name!r} is a regression score, and some tasks of "
                             "this fit are binary; score a fit with one loss per task by "
                             f"{DEVIANCE!r} (the default: each task by its loss's deviance) "
                             "or a callable scorer(estimator, X_t, y_t).")
        return ["binary" if loss.kind == "binary" else loss.mean for loss in losses]

    def _deviance_scores(self, val: TaskData, f: np.ndarray) -> np.ndarray:
        """Minus each task's weighted mean unit deviance of its loss (NaN without rows)."""
        w = np.ones(val.n_obs) if val.sample_weight is None else val.sample_weight.copy()
        if val.observed is not None:
            w[~val.observed] = 0.0
        y = np.where(w > 0, val.y, 1.0)  # (unobserved rows weigh 0)
        dev = self.datafit.bind(val).deviance(y, np.where(w > 0, f, 0.0))
        wsum = val.task_sums(w)
        empty = (np.diff(val.indptr) == 0) | (wsum <= 0)
        score = val.task_sums(w * dev) / np.where(empty, 1.0, wsum)
        return np.where(empty, np.nan, -score)

    def _segment_scores(self, val: TaskData, f: np.ndarray) -> np.ndarray:
        """The named scores that are weighted means (and R^2), for all tasks at once: sums over
        each task's segment of the flat arrays, as scikit-learn computes them task by task."""
        fn, _, sign = self._named
        w = np.ones(val.n_obs) if val.sample_weight is None else val.sample_weight.copy()
        if val.observed is not None:
            w[~val.observed] = 0.0
        y = val.y
        sums = val.task_sums  # (0 for a task without a validation row)
        wsum = sums(w)
        empty = (np.diff(val.indptr) == 0) | (wsum <= 0)
        wsum = np.where(empty, 1.0, wsum)
        if self.kind == "binary":
            y01 = (y > 0).astype(np.float64)
            if fn is metrics.log_loss:
                eps = np.finfo(np.float64).eps
                p = np.clip(_proba(f), eps, 1.0 - eps)
                per = -(y01 * np.log(p) + (1.0 - y01) * np.log(1.0 - p))
            elif fn is metrics.accuracy_score:
                per = ((f > 0) == (y01 > 0)).astype(np.float64)
            else:  # brier
                per = (_proba(f) - y01) ** 2
            score = sums(w * per) / wsum
        elif fn is metrics.r2_score:
            ybar = sums(w * y) / wsum
            sse = sums(w * (y - f) ** 2)
            sst = sums(w * (y - ybar[val.task_of]) ** 2)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0),
                                 np.where(sse == 0, 1.0, 0.0))
            # as scikit-learn: not defined on fewer than two samples
            score = np.where(sums((w > 0).astype(np.float64)) < 2, np.nan, score)
        elif fn is metrics.mean_absolute_error:
            score = sums(w * np.abs(y - f)) / wsum
        else:
            score = sums(w * (y - f) ** 2) / wsum
            if fn is metrics.root_mean_squared_error:
                score = np.sqrt(score)
        return np.where(empty, np.nan, sign * score)

    def _named_score(self, val, t, rows, f, sw) -> float:
        fn, response, sign = self._named
        y = val.y[rows]
        if self.kind == "binary":
            y = (y > 0).astype(np.int64)
            if response == "proba":
                if fn is metrics.roc_auc_score and len(np.unique(y)) < 2:
                    return np.nan
                if fn is metrics.log_loss:
                    return sign * float(fn(y, _proba(f), sample_weight=sw, labels=[0, 1]))
                return sign * float(fn(y, _proba(f), sample_weight=sw))
            return sign * float(fn(y, (f > 0).astype(np.int64), sample_weight=sw))
        return sign * float(fn(y, f, sample_weight=sw))

    def _call(self, val, t, rows, w, b, sw, link=None, offset=None) -> float:
        if val.shared:
            X = val.X[rows - val.indptr[t]]
        else:
            X = val.X[rows]
        if sp.issparse(X):
            X = X.tocsr()
        if self.kind == "binary" or link == "binary":
            est = _OneTaskClassifier(w, float(b), np.asarray(val.classes[t]))
            est.offset = offset
            y = val.raw_y[rows]
        else:
            est = _OneTaskRegressor(w, float(b), link, offset)
            y = val.y[rows]
        if sw is None:
            return float(self._scorer(est, X, y))
        return float(self._scorer(est, X, y, sample_weight=sw))


def _block_path_scores(block: TaskData, scorer: TaskScorer, C: np.ndarray,
                       B: np.ndarray) -> np.ndarray:
    return np.array([scorer.task_scores(block, C[k], B[k]) for k in range(len(C))])
