r"""Does sharing help? Regularized multi-task models against single-task and pooled baselines.

Over repeated train/test splits (a data set's fixed splits where it has them), every model is
fitted on the training part only, its regularization chosen by an inner cross-validation on
that part (folds inside every task), and scored on the test part, task by task. The baselines:

- *independent*: ridge (lasso; logistic regression for classification) per task: the ``"l2"``
  (``"l1"``) penalty is separable over tasks, so one fit learns every task alone, with one alpha
  for all tasks;
- *pooled*: one model for all tasks' rows together (tasks ignored);

and the multi-task models share through their penalty (``"l21"``, ``"trace"``, ``"mean"``,
...). Features are standardized with the training rows of all tasks
(:func:`regmtl.scaling.pooled_scaling`; sparse designs are scaled, not centered).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone

from . import metrics, scaling
from .datasets import apply_split, train_test_split_per_task
from .scaling import pooled_scaling, stack_rows
from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV

__all__ = ["compare", "Comparison", "PooledModel", "MODELS", "DEFAULT_MODELS"]


class PooledModel(BaseEstimator):
    """One model for the rows of all tasks together; ``predict`` gives one array per task."""

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, Xs: Sequence[Any], ys: Sequence[Any]) -> PooledModel:
        self.estimator_ = clone(self.estimator).fit(stack_rows(Xs), np.concatenate(ys))
        self.n_tasks_ = len(Xs)
        return self

    def predict(self, Xs: Sequence[Any]) -> list[np.ndarray]:
        return [self.estimator_.predict(X) for X in Xs]

    def predict_proba(self, Xs: Sequence[Any]) -> list[np.ndarray]:
        return [self.estimator_.predict_proba(X) for X in Xs]

    @property
    def alpha_(self) -> float:
        return self.estimator_.alpha_


def _cv_model(penalty: str, kind: str, opts: dict) -> BaseEstimator:
    cls = MultiTaskRegressorCV if kind == "regression" else MultiTaskClassifierCV
    return cls(penalty, **opts)


#: name -> (kind(s), factory(kind, options) -> estimator, role)
MODELS: dict[str, tuple[tuple[str, ...], Callable[[str, dict], Any], str]] = {
    "ridge": (("regression",), lambda k, o: _cv_model("l2", k, o), "independent"),
    "lasso": (("regression",), lambda k, o: _cv_model("l1", k, o), "independent"),
    "logistic": (("binary",), lambda k, o: _cv_model("l2", k, o), "independent"),
    "logistic_l1": (("binary",), lambda k, o: _cv_model("l1", k, o), "independent"),
    "pooled": (("regression", "binary"),
               lambda k, o: PooledModel(_cv_model("l2", k, o)), "pooled"),
    "l21": (("regression", "binary"), lambda k, o: _cv_model("l21", k, o), "multi-task"),
    "trace": (("regression", "binary"), lambda k, o: _cv_model("trace", k, o), "multi-task"),
    "mean": (("regression", "binary"), lambda k, o: _cv_model("mean", k, o), "multi-task"),
    "clustered": (("regression", "binary"),
                  lambda k, o: _cv_model("clustered", k, o), "multi-task"),
    "dirty": (("regression", "binary"), lambda k, o: _cv_model("dirty", k, o), "multi-task"),
}

#: The models ``models="default"`` fits, by kind; the first is the baseline of ``wins``.
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "regression": ("ridge", "lasso", "pooled", "l21", "trace", "mean"),
    "binary": ("logistic", "logistic_l1", "pooled", "l21", "trace", "mean"),
}

_LABELS = {"ridge": "ridge (independent)", "lasso": "lasso (independent)",
           "logistic": "logistic (independent)", "logistic_l1": "L1 logistic (independent)",
           "pooled": "pooled", "l21": "MTL L2,1", "trace": "MTL trace norm",
           "mean": "MTL mean-regularized", "clustered": "MTL clustered", "dirty": "MTL dirty"}


@dataclass
class Comparison:
    """What :func:`~regmtl.compare` measured: does sharing help, and by how much?

    Printing it shows the summary table (mean and standard deviation over splits); in a
    notebook it renders as an HTML table. :func:`regmtl.plotting.plot_comparison` draws it and
    ``regmtl.report`` writes it as a report.

    Parameters
    ----------
    summary : DataFrame
        One row per model: ``<metric>_mean`` and ``<metric>_sd`` over splits of each
        split's task-averaged metric (``explained_variance`` pooled over the test rows, as the
        literature reports it, plus its task average ``explained_variance_task``; ``nmse``,
        ``rmse``; ``accuracy`` and ``auc`` for classification), ``wins`` (tasks whose
        split-averaged score beats the baseline's, e.g. ``"97/139"``), ``fit_time`` (seconds
        per split, inner cross-validation included) and the median chosen ``alpha``.
    scores : DataFrame
        Tidy: one row per (model, split, task) with the model's ``role`` (``"independent"``,
        ``"pooled"``, ``"multi-task"`` or ``"user"``), the task's test size ``n`` and the
        per-task metrics.
    choices : DataFrame
        The chosen parameters of every model on every split.
    kind : {"regression", "binary"}
        The kind of the tasks.
    baseline : str
        The model ``wins`` compares with (the first one).
    metric : str
        The headline metric (``"explained_variance"``, ``"auc"`` or ``"accuracy"``).
    n_splits : int
        Number of train/test splits.
    split_kind : {"fixed", "random", "given"}
        The data set's fixed splits, random per-task splits, or splits given by the caller.
    task_names : list
        Task names.
    feature_names : list
        Feature names.
    models : dict, optional
        Model name -> the model fitted on the first split (for plots: coefficients, CV
        curves).
    data_first_split : tuple, optional
        ``(X_train, X_test, y_train, y_test)`` lists of the first split, as the models saw
        them (standardized).
    elapsed : float, default=0.0
        Seconds the whole comparison took.

    See Also
    --------
    regmtl.compare : Produces it.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.datasets import make_multitask_regression
    >>> data = make_multitask_regression(4, 40, 6, n_informative=3, random_state=0)
    >>> res = rm.compare(data, models=["ridge", "l21"], splits=2, cv=3, n_alphas=5)
    >>> res.summary["model"].tolist(), res.baseline, res.metric
    (['ridge (independent)', 'MTL L2,1'], 'ridge (independent)', 'explained_variance')
    >>> res.scores.shape  # 2 models x 2 splits x 4 tasks
    (16, 9)
    """

    summary: pd.DataFrame
    scores: pd.DataFrame
    choices: pd.DataFrame
    kind: str
    baseline: str
    metric: str
    n_splits: int
    split_kind: str
    task_names: list
    feature_names: list
    models: dict = field(default_factory=dict, repr=False)
    data_first_split: tuple = field(default=(), repr=False)
    elapsed: float = 0.0

    def __str__(self) -> str:
        """The summary table: metrics (mean, sd), wins, fit time and alpha per model."""
        cols = ["model"] + [c for c in self.summary.columns if c.endswith(("_mean", "_sd"))]
        cols += ["wins", "fit_time", "alpha"]
        return self.summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")

    def _repr_html_(self) -> str:
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}")


def _as_lists(X: Any, y: Any, task: Any) -> tuple[list, list, Any]:
    """(Xs, ys, source Bunch or None) from a Bunch, lists, a long table or a shared design."""
    if hasattr(X, "X") and hasattr(X, "y") and y is None:
        return list(X.X), list(X.y), X
    if isinstance(X, (list, tuple)):
        if y is None or len(X) != len(y):
            raise ValueError("y: give one target array per task (same length as the list X).")
        return list(X), list(y), None
    if task is not None:
        if isinstance(task, str) and not hasattr(X, "columns"):
            raise ValueError(f"task={task!r} names a column, but X is not a DataFrame; pass "
                             "the task ids themselves (one per row).")
        task_arr = X[task].to_numpy() if isinstance(task, str) else np.asarray(task)
        Xv = X.drop(columns=[task]) if isinstance(task, str) else X
        Xv = np.asarray(Xv, dtype=np.float64)
        yv = np.asarray(y)
        labels, inv = np.unique(task_arr, return_inverse=True)
        return ([Xv[inv == k] for k in range(len(labels))],
                [yv[inv == k] for k in range(len(labels))], None)
    Y = np.asarray(y)
    if Y.ndim != 2:
        raise ValueError("y: pass a target matrix (n, T), a list per task, or task=... ids.")
    Xv = np.asarray(X, dtype=np.float64)
    keep = [~pd.isna(Y[:, t]) for t in range(Y.shape[1])]
    return [Xv[k] for k in keep], [Y[k, t] for t, k in enumerate(keep)], None


def _kind_of(ys: Sequence[np.ndarray], kind: str) -> str:
    if kind != "auto":
        if kind not in ("regression", "binary"):
            raise ValueError(f"kind={kind!r} is not 'regression', 'binary' or 'auto'.")
        return kind
    two = all(len(np.unique(np.asarray(y))) <= 2 for y in ys)
    return "binary" if two else "regression"


def _resolve_models(models: Any, kind: str) -> dict[str, tuple[Any, str]]:
    """name -> (estimator factory, role)."""
    if isinstance(models, str):
        if models != "default":
            models = [models]
        else:
            models = DEFAULT_MODELS[kind]
    out = {}
    if isinstance(models, dict):
        for name, est in models.items():
            out[str(name)] = (lambda o, est=est: clone(est), "user")
        return out
    for name in models:
        if name not in MODELS:
            raise ValueError(f"models: unknown model {name!r}; choose from {sorted(MODELS)} "
                             "or pass a dict of name -> estimator.")
        kinds, factory, role = MODELS[name]
        if kind not in kinds:
            raise ValueError(f"models: {name!r} is for {'/'.join(kinds)} tasks, but these "
                             f"are {kind}.")
        out[_LABELS[name]] = (lambda o, f=factory: f(kind, o), role)
    return out


def _splits(bunch: Any, Xs, ys, splits: Any, test_size: float, random_state: Any,
            task_names: Sequence[Any]):
    """A list of (train, test) per-task position lists, and how they were made."""
    fixed = getattr(bunch, "splits", None) if bunch is not None else None
    if isinstance(splits, (list, tuple)):
        return list(splits), "given"
    n = int(splits)
    if n < 1:
        raise ValueError(f"splits={splits!r} must be at least 1.")
    if fixed:
        if n > len(fixed):
            raise ValueError(f"splits={n}: the data set has {len(fixed)} fixed splits.")
        return list(fixed[:n]), "fixed"
    sizes = np.array([len(y) for y in ys])
    if sizes.min() < 2:
        t = int(np.argmin(sizes))
        rows = f"{sizes[t]} row{'' if sizes[t] == 1 else 's'}"
        raise ValueError(f"task {task_names[t]!r} has {rows}; a random train/test split needs "
                         "at least 2 rows in every task (one to train on, one to test). Drop "
                         "the task, merge it with another, or pass splits=[...].")
    seeds = np.random.SeedSequence(random_state).generate_state(n)
    out = []
    for s in seeds:
        idx = [np.arange(len(y)) for y in ys]
        tr, te, _, _ = train_test_split_per_task(idx, ys, test_size=test_size,
                                                 random_state=int(s))
        out.append((tr, te))
    return out, "random"


def _task_metrics(kind: str, yte, pred, proba) -> dict[str, np.ndarray]:
    if kind == "regression":
        return {"explained_variance": metrics.explained_variance(yte, pred, average=None),
                "nmse": metrics.nmse(yte, pred, average=None),
                "rmse": metrics.rmse(yte, pred, average=None),
                "mse": metrics.mse(yte, pred, average=None)}
    out = {"accuracy": metrics.accuracy(yte, pred, average=None)}
    if proba is not None:
        pos = [p[:, 1] for p in proba]
        out["auc"] = metrics.auc(yte, pos, average=None)
        out["log_loss"] = metrics.log_loss(yte, pos, average=None)
    return out


def _split_metrics(kind: str, yte, pred, proba) -> dict[str, float]:
    """Task-averaged metrics of one split (explained variance also pooled)."""
    if kind == "regression":
        return {"explained_variance": metrics.explained_variance(yte, pred, average="pooled"),
                "explained_variance_task": metrics.explained_variance(yte, pred),
                "nmse": metrics.nmse(yte, pred),
                "rmse": metrics.rmse(yte, pred)}
    out = {"accuracy": metrics.accuracy(yte, pred)}
    if proba is not None:
        out["auc"] = metrics.auc(yte, [p[:, 1] for p in proba])
    return out


def _choice(est: Any) -> dict[str, Any]:
    inner = getattr(est, "estimator_", est)
    params = dict(getattr(inner, "best_params_", {}) or {})
    if not params and hasattr(inner, "alpha_"):
        params = {"alpha": inner.alpha_}
    return params


def _prepare(Xs, ys, split, standardize: bool):
    """(Xtr, Xte, ytr, yte) of one split, standardized with its pooled training rows."""
    Xtr, Xte, ytr, yte = apply_split(Xs, ys, split)
    if standardize:
        mean, scale = pooled_scaling(Xtr)
        Xtr, Xte = scaling.standardize(Xtr, mean, scale), scaling.standardize(Xte, mean, scale)
    return Xtr, Xte, ytr, [np.asarray(v, dtype=np.float64) for v in yte]


def _fit_one(name, est, role, kind, Xtr, Xte, ytr, yte, s, task_names):
    """Fit one model on one split's training part and score it on its test part.

    Warnings are collected and returned, so that they reach the caller's process whatever
    the joblib backend."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(Xtr, ytr)
    fit_time = time.perf_counter() - t0
    notes = [(w.category, f"{name}, split {s}: {w.message}") for w in caught]
    pred = [np.asarray(v, dtype=np.float64) for v in est.predict(Xte)]
    proba = est.predict_proba(Xte) if kind == "binary" else None
    per_task = _task_metrics(kind, yte, pred, proba)
    task_rows = [{"model": name, "role": role, "split": s, "task": task_names[t],
                  "n": len(yte[t]), **{k: float(v[t]) for k, v in per_task.items()}}
                 for t in range(len(yte))]
    split_row = {"model": name, "split": s, "fit_time": fit_time,
                 **_split_metrics(kind, yte, pred, proba)}
    return (name, s, task_rows, split_row, {"model": name, "split": s, **_choice(est)}, est,
            notes)


def compare(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    kind: str = "auto",
    models: Any = "default",
    splits: Any = 10,
    test_size: float = 0.25,
    cv: int = 3,
    n_alphas: int = 12,
    standardize: bool = True,
    tol: float = 1e-4,
    random_state: int = 0,
    n_jobs: int | None = None,
    progress: bool = False,
) -> Comparison:
    """Does sharing help? Multi-task models against single-task and pooled baselines.

    Over repeated train/test splits, every model is fitted on the training part only, its
    regularization chosen by an inner cross-validation on that part (folds inside every
    task), and scored on the test part, task by task. Features are standardized with the
    pooled training rows of all tasks. The baselines learn every task alone (``"ridge"``,
    ``"lasso"``; ``"logistic"``, ``"logistic_l1"`` for classification: one fit with a
    separable penalty and one alpha for all tasks) or one model for all tasks' rows
    together (``"pooled"``); the multi-task models share through their penalty (``"l21"``,
    ``"trace"``, ``"mean"``, ``"clustered"``, ``"dirty"``).

    Parameters
    ----------
    X : Bunch, array-like, DataFrame or list of them
        A loader's Bunch (its fixed ``splits`` are used, and its task and feature names),
        one design per task, a long table (with ``task``), or a shared design.
    y : array-like or list of them, optional
        Targets, in the form of ``X`` (not needed for a Bunch); a shared design takes Y of
        shape (n, T), NaN marking a missing label.
    task : array-like of shape (n_samples,) or str, optional
        Task id of every row of a long table, or the name of a column of a DataFrame ``X``.
    kind : {"auto", "regression", "binary"}, default="auto"
        The kind of the tasks; ``"auto"`` reads it from the Bunch, else calls tasks with at
        most two distinct targets binary.
    models : "default", list of str, or dict, default="default"
        ``"default"`` (ridge, lasso, pooled, l21, trace, mean; the logistic versions for
        classification), names among ``"ridge"``, ``"lasso"``, ``"logistic"``,
        ``"logistic_l1"``, ``"pooled"``, ``"l21"``, ``"trace"``, ``"mean"``,
        ``"clustered"``, ``"dirty"``, or a dict name -> estimator that takes and returns
        lists per task. The first model is the baseline of ``wins``.
    splits : int or list of (train, test), default=10
        Number of splits (the data set's fixed ones first when it has them; otherwise
        ``test_size`` of every task drawn at random, seeded by ``random_state``), or the
        splits themselves: per-task position arrays.
    test_size : float, default=0.25
        Fraction of every task's rows held out by a random split.
    cv : int, default=3
        Folds of the inner cross-validation (inside every task).
    n_alphas : int, default=12
        Size of each model's alpha grid.
    standardize : bool, default=True
        Z-score the features with the pooled training rows of each split (sparse designs
        are scaled, not centered; see :func:`regmtl.scaling.pooled_scaling`).
    tol : float, default=1e-4
        Solver tolerance.
    random_state : int, default=0
        Seeds the random splits and the inner folds.
    n_jobs : int, optional
        Number of (split, model) fits run in parallel with joblib (any backend, e.g. Dask);
        the result does not depend on it.
    progress : bool, default=False
        Show a progress bar over the (split, model) fits.

    Returns
    -------
    Comparison
        ``summary`` (mean and sd over splits), ``scores`` (tidy per model, split and task),
        ``choices``, and the first split's fitted models.

    Raises
    ------
    ValueError
        With fewer than two tasks, a task of fewer than 2 rows (random splits), an unknown
        model, a model of the other kind, or more splits than the data set's fixed ones.

    See Also
    --------
    regmtl.task_relatedness : Whether the tasks are related, before comparing.
    regmtl.plotting.plot_comparison : Draw the result.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.datasets import make_multitask_regression
    >>> data = make_multitask_regression(4, 40, 6, n_informative=3, random_state=0)
    >>> res = rm.compare(data, models=["ridge", "l21"], splits=2, cv=3, n_alphas=5)
    >>> res.n_splits, res.split_kind, res.summary["model"].tolist()
    (2, 'random', ['ridge (independent)', 'MTL L2,1'])
    >>> sorted(res.models)
    ['MTL L2,1', 'ridge (independent)']
    """
    t_start = time.perf_counter()
    Xs, ys, bunch = _as_lists(X, y, task)
    if len(Xs) < 2:
        raise ValueError("compare needs at least two tasks (one task has nothing to share).")
    kind = _kind_of(ys, getattr(bunch, "kind", "auto") if kind == "auto" else kind)
    chosen = _resolve_models(models, kind)
    task_names = list(getattr(bunch, "task_names", None) or range(len(Xs)))
    split_list, split_kind = _splits(bunch, Xs, ys, splits, test_size, random_state,
                                     task_names)
    opts = dict(alphas=n_alphas, cv=cv, tol=tol, random_state=random_state)
    p = Xs[0].shape[1] if hasattr(Xs[0], "shape") else np.asarray(Xs[0]).shape[1]
    feature_names = list(getattr(bunch, "feature_names", None) or
                         [f"x{j}" for j in range(p)])
    prepared = [_prepare(Xs, ys, split, standardize) for split in split_list]
    jobs = [delayed(_fit_one)(name, factory(opts), role, kind, *prepared[s][:4], s,
                              task_names)
            for s in range(len(split_list)) for name, (factory, role) in chosen.items()]
    from tqdm.auto import tqdm

    rows, split_rows, choice_rows, fitted = [], [], [], {}
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    with tqdm(total=len(jobs), disable=not progress, desc="compare", leave=False) as bar:
        for name, s, task_rows, split_row, choice, est, notes in parallel(jobs):
            for category, message in notes:
                warnings.warn(message, category, stacklevel=2)
            rows.extend(task_rows)
            split_rows.append(split_row)
            choice_rows.append(choice)
            if s == 0:
                fitted[name] = est
            bar.update(1)
    first = prepared[0] if prepared else ()
    scores = pd.DataFrame(rows)
    per_split = pd.DataFrame(split_rows)
    choices = pd.DataFrame(choice_rows)
    metric = "explained_variance" if kind == "regression" else (
        "auc" if "auc" in per_split else "accuracy")
    baseline = next(iter(chosen))
    summary = _summarize(per_split, scores, choices, list(chosen), baseline, metric, kind)
    return Comparison(summary=summary, scores=scores, choices=choices, kind=kind,
                      baseline=baseline, metric=metric, n_splits=len(split_list),
                      split_kind=split_kind, task_names=task_names,
                      feature_names=feature_names, models=fitted, data_first_split=first,
                      elapsed=time.perf_counter() - t_start)


def _summarize(per_split: pd.DataFrame, scores: pd.DataFrame, choices: pd.DataFrame,
               names: list, baseline: str, metric: str, kind: str) -> pd.DataFrame:
    task_metric = metric if metric in scores else "accuracy"
    by_task = scores.groupby(["model", "task"], sort=False)[task_metric].mean()
    base = by_task.loc[baseline]
    rows = []
    value_cols = [c for c in per_split.columns if c not in ("model", "split", "fit_time")]
    for name in names:
        part = per_split[per_split["model"] == name]
        row: dict[str, Any] = {"model": name}
        for c in value_cols:
            row[f"{c}_mean"] = float(part[c].mean())
            row[f"{c}_sd"] = float(part[c].std(ddof=1)) if len(part) > 1 else 0.0
        mine = by_task.loc[name].reindex(base.index)
        row["wins"] = ("baseline" if name == baseline else
                       f"{int(np.sum(mine.to_numpy() > base.to_numpy()))}/{len(base)}")
        row["fit_time"] = float(part["fit_time"].mean())
        ch = choices[choices["model"] == name]
        row["alpha"] = float(ch["alpha"].median()) if "alpha" in ch else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
