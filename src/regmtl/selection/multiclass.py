r"""Model selection for tasks with more than two classes (the multinomial loss).

Every fold fits on the classes' layout (:func:`regmtl.classes.expand_classes`) with the
classes found on all the training data, so every fold has the same columns of W (a class
missing from a fold's training rows keeps its column: its targets there are all 0). Each
task's validation rows are scored by the class probabilities
:math:`p_{ik} = e^{\eta_{ik}} / \sum_l e^{\eta_{il}}` of its own classes: by default minus
the mean log loss :math:`-\frac{1}{\sum_i s_i} \sum_i s_i \log p_{i k_i}` (as
``sklearn.metrics.log_loss``, probabilities clipped to ``[eps, 1 - eps]``), or the accuracy
of :math:`\arg\max_k p_{ik}`; any other scikit-learn scorer name or callable
``scorer(estimator, X_t, y_t)`` is called on a one-task view of the fit with
``predict_proba`` over the task's classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin

from ..classes import expand_classes, source_rows
from ..datafits.multinomial import Multinomial
from ..taskdata import TaskData, as_labels
from .folds import take
from .scoring import scorer_of

__all__ = ["ClassScorer", "class_fold"]


def class_fold(data: TaskData, rows: np.ndarray, task_weight: Any,
               classes: list[np.ndarray]) -> TaskData:
    """The training problem of a fold on the classes' layout: the rows ``rows`` of the task
    problem ``data`` (weights recomputed with ``task_weight``), one segment per class of
    ``classes`` (every task's classes on all the data)."""
    return expand_classes(take(data, rows, task_weight), classes)


class _OneTaskMulticlass(ClassifierMixin, BaseEstimator):
    """Task t of a multinomial fit as a fitted single-task classifier (for scorers)."""

    def __init__(self, coef: np.ndarray | None = None, intercept: np.ndarray | None = None,
                 classes: np.ndarray | None = None):
        self.coef = coef
        self.intercept = intercept
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict_proba(self, X: Any) -> np.ndarray:
        F = self.decision_function(X)
        E = np.exp(F - F.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes[np.argmax(self.decision_function(X), axis=1)]


#: the scores computed from the tables of class probabilities, all tasks at once
_TABLE_SCORES = ("neg_log_loss", "accuracy")


class ClassScorer:
    """Task-averaged validation score of multinomial fits (greater is better).

    Parameters
    ----------
    scoring : str, callable or None
        ``None`` or ``"neg_log_loss"`` (minus each task's mean log loss), ``"accuracy"``,
        any other scikit-learn scorer name, or ``scorer(estimator, X_t, y_t)``.
    classes : list of ndarray
        Every task's classes (the columns of the layout, in order).
    """

    kind = "multiclass"

    def __init__(self, scoring: str | Callable | None, classes: list[np.ndarray]):
        self.classes = classes
        self.first = np.concatenate(([0], np.cumsum([len(c) for c in classes])))[:-1]
        scoring = "neg_log_loss" if scoring is None else scoring
        self.name = scoring if isinstance(scoring, str) else getattr(
            scoring, "__name__", type(scoring).__name__)
        self._scorer = None if isinstance(scoring, str) and scoring in _TABLE_SCORES else (
            scorer_of(scoring, list(_TABLE_SCORES)))

    def path_scores(self, val: TaskData, coefs: np.ndarray, intercepts: np.ndarray,
                    offset: np.ndarray | None = None) -> np.ndarray:  # noqa: ARG002
        """Scores of each task (n_alphas, T) of a path's fits on the classes' layout
        (``coefs`` (n_alphas, sum_t K_t, p), ``intercepts`` (n_alphas, sum_t K_t)) on the
        task problem ``val`` (its labels in ``raw_y``)."""
        exp = expand_classes(val, self.classes)
        rows, pos = source_rows(exp)
        loss = Multinomial().bind(exp)
        w = np.ones(val.n_obs) if val.sample_weight is None else val.sample_weight.copy()
        if val.observed is not None:
            w[~val.observed] = 0.0
        wsum = val.task_sums(w)
        empty = (np.diff(val.indptr) == 0) | (wsum <= 0)
        out = np.empty((len(coefs), val.n_tasks))
        for k in range(len(coefs)):
            W, b = coefs[k].T, intercepts[k]
            if self._scorer is not None:
                out[k] = self._called(val, W, b, w)
                continue
            f = exp.linear(W[:, exp.task_index], b[exp.task_index])
            P = np.zeros((val.n_obs, int(np.max(exp.class_blocks[:, 1]))))
            Y = np.zeros_like(P)
            P[rows, pos], Y[rows, pos] = loss.mean(f), exp.y
            if self.name == "neg_log_loss":
                eps = np.finfo(np.float64).eps
                p_true = np.clip(np.sum(Y * P, axis=1), eps, 1.0 - eps)
                per = np.log(p_true)
            else:  # accuracy
                per = (np.argmax(P, axis=1) == np.argmax(Y, axis=1)).astype(np.float64)
            out[k] = val.task_sums(w * per) / np.where(empty, 1.0, wsum)
        return np.where(empty[None, :], np.nan, out)

    def _called(self, val: TaskData, W: np.ndarray, b: np.ndarray,
                w: np.ndarray) -> np.ndarray:
        """Each task's score by the scorer, on a one-task view of the fit."""
        out = np.full(val.n_tasks, np.nan)
        for t in range(val.n_tasks):
            a, e = val.indptr[t], val.indptr[t + 1]
            keep = np.flatnonzero(w[a:e] > 0)
            if keep.size == 0:
                continue
            task = val.task_index[t]
            cols = self.first[task] + np.arange(len(self.classes[task]))
            X = val.X[keep] if val.shared else val.X[a + keep]
            if sp.issparse(X):
                X = X.tocsr()
            est = _OneTaskMulticlass(W[:, cols].T, b[cols], self.classes[task])
            y = as_labels(val.raw_y[a + keep])
            if val.sample_weight is None:
                out[t] = float(self._scorer(est, X, y))
            else:
                out[t] = float(self._scorer(est, X, y, sample_weight=w[a + keep]))
        return out
