r"""Validation scores of a multi-task fit, task by task.

Every score is computed on each task's validation rows and then averaged over tasks (so a small
task counts as much as a large one), greater is better. Named scores are computed from the
scores ``f = x.w_t + b_t`` directly; any other scikit-learn scorer name or callable
``scorer(estimator, X_t, y_t)`` is called once per task on a one-task view of the fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import metrics
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..taskdata import TaskData

__all__ = ["TaskScorer", "REGRESSION_SCORES", "CLASSIFICATION_SCORES"]


def _proba(f: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * f))


#: name -> (metric(y, response, sample_weight), response: "value" | "proba" | "label", sign)
REGRESSION_SCORES: dict[str, tuple[Callable, str, float]] = {
    "neg_mean_squared_error": (metrics.mean_squared_error, "value", -1.0),
    "neg_root_mean_squared_error": (metrics.root_mean_squared_error, "value", -1.0),
    "neg_mean_absolute_error": (metrics.mean_absolute_error, "value", -1.0),
    "r2": (metrics.r2_score, "value", 1.0),
    "explained_variance": (metrics.r2_score, "value", 1.0),
}
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
    """Task t of a multi-task fit, as a fitted single-task estimator (for scorers)."""

    def __init__(self, coef: np.ndarray | None = None, intercept: float = 0.0):
        self.coef = coef
        self.intercept = intercept

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef).ravel() + self.intercept

    def predict(self, X: Any) -> np.ndarray:
        return self.decision_function(X)


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


class TaskScorer:
    """Task-averaged validation score; ``kind`` is ``"regression"`` or ``"binary"``."""

    def __init__(self, scoring: str | Callable | None, kind: str):
        table = REGRESSION_SCORES if kind == "regression" else CLASSIFICATION_SCORES
        if scoring is None:
            scoring = "neg_mean_squared_error" if kind == "regression" else "neg_log_loss"
        self.kind = kind
        self.name = scoring if isinstance(scoring, str) else getattr(
            scoring, "__name__", type(scoring).__name__)
        self._named = table.get(scoring) if isinstance(scoring, str) else None
        self._scorer = None
        if self._named is None:
            if isinstance(scoring, str):
                try:
                    self._scorer = metrics.get_scorer(scoring)
                except ValueError:
                    raise ValueError(
                        f"scoring={scoring!r} is not a scikit-learn scorer name; use one of "
                        f"{sorted(table)} or any name of sklearn.metrics.get_scorer_names()."
                    ) from None
            elif callable(scoring):
                self._scorer = scoring
            else:
                raise ValueError(f"scoring={scoring!r} must be a string, a callable "
                                 "scorer(estimator, X, y) or None.")

    def path_scores(self, val: TaskData, coefs: np.ndarray, intercepts: np.ndarray
                    ) -> np.ndarray:
        """Scores of each task (n_alphas, T) of a path's fits (``coefs`` (n_alphas, T, p),
        ``intercepts`` (n_alphas, T)) on ``val``; on task blocks, each block scores its
        tasks where its rows are, and only the scores come back."""
        if not val.rows_local:
            scores = val.blockwise(_block_path_scores, self, coefs.transpose(0, 2, 1),
                                   intercepts, out=("coef", len(coefs)))
            return val.arrays(scores)[0]
        return np.array([self.task_scores(val, coefs[k].T, intercepts[k])
                         for k in range(len(coefs))])

    def task_scores(self, val: TaskData, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Score of each task (T,) of the fit ``(W, b)`` on the validation data ``val``."""
        f = val.linear(W, b)
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
                out[t] = self._call(val, t, rows, W[:, t], b[t], sw)
        return out

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

    def _call(self, val, t, rows, w, b, sw) -> float:
        if val.shared:
            X = val.X[rows - val.indptr[t]]
        else:
            X = val.X[rows]
        if sp.issparse(X):
            X = X.tocsr()
        if self.kind == "binary":
            est = _OneTaskClassifier(w, float(b), np.asarray(val.classes[t]))
            y = val.raw_y[rows]
        else:
            est = _OneTaskRegressor(w, float(b))
            y = val.y[rows]
        if sw is None:
            return float(self._scorer(est, X, y))
        return float(self._scorer(est, X, y, sample_weight=sw))


def _block_path_scores(block: TaskData, scorer: TaskScorer, C: np.ndarray,
                       B: np.ndarray) -> np.ndarray:
    return np.array([scorer.task_scores(block, C[k], B[k]) for k in range(len(C))])
