r"""Does sharing help? Regularized multi-task models against single-task and pooled baselines.

Over repeated train/test splits (a data set's fixed splits where it has them), every model is
fitted on the training part only, its regularization chosen by an inner cross-validation on
that part (folds inside every task), and scored on the test part, task by task. The baselines:

- *independent*: ridge, lasso and elastic net (L2, L1 and elastic-net logistic regression for
  classification) per task: the penalty is separable over tasks, so one fit learns every task
  alone, each with its own alpha (``alpha_per_task=True``; ridge by the exact leave-one-out
  of every task, ``cv="loo"``, as one scikit-learn ``RidgeCV`` per task would): the strongest
  independent model, the one a multi-task model has to beat. ``"ridge_one_alpha"``,
  ``"lasso_one_alpha"`` and ``"logistic_one_alpha"`` share one alpha over the tasks (the
  default models include the first of them, to show what choosing per task adds), as do the
  nonconvex ``"mcp"``, ``"scad"`` and ``"capped_l1"``; the labels of the models with one
  alpha for all tasks say ``one alpha``;
- *unregularized*: every task alone with no penalty (alpha = 0, :class:`Unregularized`):
  least squares, or unpenalized logistic regression;
- *pooled*: one slope vector shared by all tasks and one intercept per task
  (:class:`PooledModel`), a ridge (L2 logistic) fit with its alpha chosen by the same inner
  cross-validation;

and the multi-task models share through their penalty (``"l21"``, ``"trace"``, ``"mean"``,
...). Features are standardized with the training rows of all tasks
(:func:`regmtl.scaling.pooled_scaling`; sparse designs are scaled, not centered).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import delayed
from sklearn.base import BaseEstimator, clone

from . import metrics, scaling
from ._lazy import lazy_module
from ._parallel import run_jobs
from .baselines import Independent, PooledModel, Unregularized, task_loss_list
from .datafits import Mixed, Quadratic, loss_on_targets, make_loss
from .datafits.base import default_loss
from .datasets import apply_split, train_test_split_per_task
from .penalties import PENALTY_NAMES, make_penalty
from .progress import check_progress, progress_bar
from .scaling import pooled_scaling
from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV
from .selection.search import TERM_PARAMS
from .solvers.policy import penalty_solver
from .task_lists import as_task_lists, task_kind

pd = lazy_module("pandas")
stats = lazy_module("scipy.stats")

__all__ = ["compare", "Comparison", "Independent", "PooledModel", "Unregularized", "MODELS",
           "DEFAULT_MODELS", "DEFAULT_LOSS_MODELS"]


# ============================================================================ the models
def _cv_model(penalty: str, kind: str, opts: dict) -> BaseEstimator:
    cls = MultiTaskRegressorCV if kind == "regression" else MultiTaskClassifierCV
    return cls(penalty, **opts)


def _cv(penalty: str, **fixed: Any) -> Callable[[str, dict], Any]:
    return lambda kind, opts: _cv_model(penalty, kind, {**opts, **fixed})


#: the independent baselines' default: one alpha per task, as one model per task would be
_PER_TASK = {"alpha_per_task": True}
#: ridge's per task, by the efficient leave-one-out (scikit-learn's RidgeCV per task)
_LOO = {"alpha_per_task": True, "cv": "loo"}


_BOTH = ("regression", "binary")
#: every kind: tasks of more than two classes too (the multinomial loss)
_ALL = (*_BOTH, "multiclass")


def _kind_loss(kind: str) -> str:
    """The loss of a kind of tasks (the multinomial loss for ``"multiclass"``)."""
    return "multinomial" if kind == "multiclass" else default_loss(kind)


#: the baselines: name -> (kind(s), factory(kind, options) -> estimator, role, label)
_BASELINES: dict[str, tuple[tuple[str, ...], Callable[[str, dict], Any], str, str]] = {
    "ridge": (("regression",), _cv("l2", **_LOO), "independent", "ridge (independent)"),
    "ridge_one_alpha": (("regression",), _cv("l2"), "independent",
                        "ridge (independent, one alpha)"),
    "lasso": (("regression",), _cv("l1", **_PER_TASK), "independent", "lasso (independent)"),
    "lasso_one_alpha": (("regression",), _cv("l1"), "independent",
                        "lasso (independent, one alpha)"),
    "logistic": (("binary",), _cv("l2", **_PER_TASK), "independent",
                 "logistic (independent)"),
    "logistic_one_alpha": (("binary",), _cv("l2"), "independent",
                           "logistic (independent, one alpha)"),
    "logistic_l1": (("binary",), _cv("l1", **_PER_TASK), "independent",
                    "L1 logistic (independent)"),
    "unregularized": (_BOTH, lambda k, o: (
        Independent(o["loss"], alphas=[0.0], tol=o["tol"]) if "loss" in o
        else Unregularized(k, tol=o["tol"])), "independent", "unregularized"),
    "independent": (_ALL, lambda k, o: Independent(
        o.get("loss", _kind_loss(k)), alphas=o["alphas"], cv=o["cv"], tol=o["tol"],
        random_state=o["random_state"]), "independent", "scikit-learn (independent)"),
    "pooled": (_BOTH, lambda k, o: PooledModel(k, **o), "pooled", "pooled"),
}


def _penalty_models() -> dict[str, tuple[tuple[str, ...], Callable[[str, dict], Any], str, str]]:
    """One model per named penalty with a role in compare (``compare_role``), by its name:
    its CV estimator (one alpha per task where it is independent and separates over tasks),
    role and label (``comparison_label``)."""
    out = {}
    for name in PENALTY_NAMES:
        pen = make_penalty(name)
        if pen.compare_role is None:
            continue
        per_task = pen.compare_role == "independent" and pen.separates_over_tasks
        label = pen.comparison_label()
        if pen.compare_role == "independent" and not per_task:
            label = _one_alpha_label(label)
        out[name] = (_ALL, _cv(name, **(_PER_TASK if per_task else {})), pen.compare_role,
                     label)
    return out


def _one_alpha_label(label: str) -> str:
    """The label of an independent model fitted with one alpha for all tasks:
    ``"MCP (independent)"`` -> ``"MCP (independent, one alpha)"``."""
    if label.endswith(")"):
        return label[:-1] + ", one alpha)"
    return label + " (one alpha)"


_MODELS = {**_BASELINES, **_penalty_models()}

#: name -> (kind(s), factory(kind, options) -> estimator, role): the baselines and every
#: named penalty that declares a ``compare_role``
MODELS: dict[str, tuple[tuple[str, ...], Callable[[str, dict], Any], str]] = {
    name: entry[:3] for name, entry in _MODELS.items()}

#: Penalty names that name a baseline, by kind.
_ALIASES = {"l2": {"regression": "ridge", "binary": "logistic"},
            "l1": {"regression": "lasso", "binary": "logistic_l1"}}

#: The models ``models="default"`` fits, by kind; the first is the baseline of ``wins``.
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "regression": ("ridge", "ridge_one_alpha", "lasso", "unregularized", "pooled", "l21",
                   "trace", "mean"),
    "binary": ("logistic", "logistic_one_alpha", "logistic_l1", "unregularized", "pooled",
               "l21", "trace", "mean"),
    "multiclass": ("independent", "l21", "trace"),
}

#: The models ``models="default"`` fits for a loss other than the squared and logistic ones
#: (``compare(loss=...)``): scikit-learn's estimator of the loss per task, tuned per task,
#: the same without penalty, and the multi-task models with the loss.
DEFAULT_LOSS_MODELS: tuple[str, ...] = ("independent", "unregularized", "l21", "trace",
                                        "mean")

#: the baselines of the squared loss only (exact leave-one-out, pooled ridge)
_SQUARED_ONLY = ("ridge", "pooled")

_LABELS = {name: entry[3] for name, entry in _MODELS.items()}

_FORMS = ('"default", a model name (' + ", ".join(map(repr, [*MODELS, *_ALIASES])) + "), an "
          "estimator instance whose fit and predict take lists per task, a (name, model) "
          "pair, or a list of these; or a dict name -> model name or estimator")

#: one resolved model: its label, factory(options) -> estimator, role
_Spec = tuple[str, Callable[[dict], Any], str]


def _is_estimator(obj: Any) -> bool:
    return (not isinstance(obj, type) and callable(getattr(obj, "fit", None))
            and callable(getattr(obj, "predict", None)))


def _refuse(what: str, obj: Any) -> ValueError:
    hint = " (a class: pass an instance)" if isinstance(obj, type) else ""
    return ValueError(f"models: {what} {obj!r}{hint} is not accepted. Accepted: {_FORMS}.")


def _entries(models: Any) -> list[tuple[str | None, Any]]:
    """(label or None, model name or estimator) pairs from any accepted form."""
    if isinstance(models, str) or _is_estimator(models):
        return [(None, models)]
    if isinstance(models, Mapping):
        for name in models:
            if not isinstance(name, str) or not name:
                raise ValueError(f"models: the dict key {name!r} is not a name (a non-empty "
                                 f"string). Accepted: {_FORMS}.")
        return list(models.items())
    if not isinstance(models, Iterable) or isinstance(models, type):
        raise _refuse("the value", models)
    out = []
    for entry in models:
        if isinstance(entry, str) or _is_estimator(entry):
            out.append((None, entry))
        elif (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
              and entry[0]):
            out.append(entry)
        else:
            raise _refuse("the entry", entry)
    return out


def _independent_label(loss: Any, kind: str) -> str:
    """The label of the ``"independent"`` baseline: its scikit-learn estimator."""
    datafit = make_loss(loss if loss is not None else _kind_loss(kind))
    if datafit.kind == "mixed":
        return "scikit-learn per task (independent)"
    entry = datafit.single_task_anchor()
    return f"{entry[2] if entry else 'scikit-learn'} (independent)"


def _named(label: str | None, name: str, kind: str, loss: Any = None) -> list[_Spec]:
    """The built-in model(s) a name stands for (``loss``: the loss of ``compare(loss=...)``
    other than the squared and logistic ones, or None)."""
    if name == "default":
        if label is not None:
            raise ValueError(f"models: ({label!r}, 'default'): 'default' is a set of models "
                             "and takes no name of its own.")
        names = DEFAULT_MODELS[kind] if loss is None else DEFAULT_LOSS_MODELS
        return [spec for n in names for spec in _named(None, n, kind, loss)]
    key = _ALIASES.get(name, {}).get(kind, name)
    if key not in MODELS:
        raise ValueError(f"models: unknown model {name!r}. Accepted: {_FORMS}.")
    if loss is not None and key in _SQUARED_ONLY:
        raise ValueError(f"models: {name!r} is a baseline of the squared loss; with "
                         f"loss={loss!r} the independent baseline is 'independent' "
                         "(scikit-learn's estimator of the loss per task, tuned per task).")
    kinds, factory, role = MODELS[key]
    if kind not in kinds:
        raise ValueError(f"models: {name!r} is for {'/'.join(kinds)} tasks, but these are "
                         f"{kind}.")
    default = _independent_label(loss, kind) if key == "independent" else _LABELS[key]
    return [(label or default, lambda o, f=factory: f(kind, o), role)]


def _copy(est: Any) -> Any:
    return clone(est) if hasattr(est, "get_params") else copy.deepcopy(est)


def _resolve_models(models: Any, kind: str,
                    loss: Any = None) -> dict[str, tuple[Callable[[dict], Any], str]]:
    """label -> (estimator factory, role). A user's estimators with no baseline beside them
    get the default baselines first (``wins`` counts against the first model)."""
    specs: list[_Spec] = []
    for label, model in _entries(models):
        if isinstance(model, str):
            specs.extend(_named(label, model, kind, loss))
        elif _is_estimator(model):
            specs.append((label or type(model).__name__, lambda o, m=model: _copy(m), "user"))
        else:
            raise _refuse(f"{label!r} ->", model)
    if not specs:
        raise ValueError(f"models: no model given. Accepted: {_FORMS}.")
    baselines = [s for s in _named(None, "default", kind, loss) if s[2] != "multi-task"]
    named = {label for label, _, _ in baselines}
    if any(role == "user" for _, _, role in specs) and not any(
            role in ("independent", "pooled") or label in named for label, _, role in specs):
        specs = baselines + specs
    out: dict[str, tuple[Callable[[dict], Any], str]] = {}
    for label, factory, role in specs:
        if label in out:
            raise ValueError(f"models: two models are named {label!r}; give them different "
                             "names, e.g. a dict name -> model.")
        out[label] = (factory, role)
    return out


@dataclass
class Comparison:
    r"""What :func:`~regmtl.compare` measured: does sharing help, and by how much?

    Printing it shows the summary table (mean and standard deviation over splits); in a
    notebook it renders as an HTML table. :func:`regmtl.plotting.plot_comparison` draws it and
    ``regmtl.report`` writes it as a report.

    Parameters
    ----------
    summary : DataFrame
        One row per model: ``<metric>_mean`` and ``<metric>_sd`` over splits of each
        split's task-averaged metric (``explained_variance`` pooled over the test rows, as the
        literature reports it, plus its task average ``explained_variance_task``; ``nmse``,
        ``rmse``; ``accuracy`` and ``auc`` for classification; ``d2`` and ``deviance`` with
        a loss, averaged over the tasks scored in the split: see ``tasks_scored``), ``wins``
        (tasks whose split-averaged score beats the baseline's, e.g. ``"97/139"``),
        ``fit_time`` (seconds per split, inner cross-validation included) and the median
        chosen ``alpha``.
    scores : DataFrame
        Tidy: one row per (model, split, task) with the model's ``role`` (``"independent"``
        for ridge, lasso, elastic net and unregularized, ``"pooled"``, ``"multi-task"`` or
        ``"user"``), the task's test size ``n`` and the per-task metrics (NaN where a task
        is not scored in the split).
    choices : DataFrame
        The chosen parameters of every model on every split: ``alpha``, and for a model
        that chose an alpha per task, ``alpha`` their median and ``alphas`` the array of
        them (one per task, in task order).
    kind : {"regression", "binary", "multiclass"}
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
    timings : DataFrame, optional
        Indexed by model: ``fit_seconds``, the seconds its fits took over all splits (inner
        cross-validation included; the sum over parallel jobs, not wall time), and
        ``seconds_per_split``, their mean.
    tests : DataFrame, optional
        Is a model's gain beyond noise? One row per model (in the summary's order) against
        ``baseline`` in its column: the role-``"independent"`` model with the best mean
        headline score (the strongest independent baseline; its own row has difference 0 and
        p = 1; empty when no independent model was fitted). Columns: ``model``, ``role``,
        ``baseline``; ``score``, ``score_low``, ``score_high`` (the model's mean headline
        score with its 95% interval); over splits, ``difference`` (the mean paired
        difference :math:`\bar d`), ``ci_low``, ``ci_high`` (its 95% interval), ``t``,
        ``df``, ``p_value`` (two-sided), ``n_splits`` (the splits scored by both) and
        ``test_train_ratio`` (:math:`n_2/n_1`); over tasks, ``tasks_better``,
        ``tasks_worse``, ``n_tasks`` and ``wilcoxon_p``. See :func:`~regmtl.compare` for
        the tests.
    by_task : DataFrame, optional
        The headline score per task (rows, in task order) and model (columns, in the
        summary's order): its mean over the splits in which the task was scored (``d2`` with
        a loss, else ``explained_variance``, ``auc`` or ``accuracy``); NaN where it was
        scored in none. ``wins`` compares these columns.
    tasks_scored : DataFrame, optional
        One row per split: ``split``, ``n_tasks``, ``n_scored`` (the tasks whose headline
        score is defined for every model in that split, those the split's means average)
        and ``left_out`` (the names of the others). With a loss, a task is not scored in a
        split where its test rows are fitted exactly by a constant (e.g. no count in a
        Poisson task: its null deviance is 0) or where its training rows have no finite
        best constant (e.g. no count: the reference of its D^2).
    n_rows : int, default=0
        The rows of the data, counted as ``regmtl datasets`` counts them: a shared design's
        rows once (every task labels them), else the sum of the tasks' rows.
    n_obs : int, default=0
        The (row, task) observations: the sum of the tasks' rows (``n_rows`` times the
        number of tasks for a shared design with no missing label).

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
    >>> res.timings.columns.tolist()
    ['fit_seconds', 'seconds_per_split']
    >>> res.by_task.shape, res.tasks_scored["n_scored"].tolist(), res.n_rows
    ((4, 2), [4, 4], 160)
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
    timings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(), repr=False)
    tests: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(), repr=False)
    by_task: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(), repr=False)
    tasks_scored: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(), repr=False)
    n_rows: int = 0
    n_obs: int = 0

    def __str__(self) -> str:
        """The summary table: metrics (mean, sd), wins, fit time and alpha per model."""
        cols = ["model"] + [c for c in self.summary.columns if c.endswith(("_mean", "_sd"))]
        cols += ["wins", "fit_time", "alpha"]
        return self.summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")

    def _repr_html_(self) -> str:
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.4g}")


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


def _class_metrics(est: Any, Xte: Any, ytr: list, yte: list,
                   names: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per task of more than two classes, ``accuracy`` and ``log_loss`` (scikit-learn's,
    over the classes of the task's training labels, the columns of ``predict_proba``)."""
    from sklearn.metrics import log_loss

    pred = _ordered(est.predict(Xte), names)
    proba = _ordered(est.predict_proba(Xte), names) if hasattr(est, "predict_proba") else None
    acc = np.array([float(np.mean(np.asarray(p) == y)) for p, y in zip(pred, yte, strict=True)])
    out = {"accuracy": acc}
    if proba is not None:
        out["log_loss"] = np.array([
            log_loss(y, np.asarray(p), labels=np.unique(np.asarray(yt)))
            for p, y, yt in zip(proba, yte, ytr, strict=True)])
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


#: a reference deviance at most this (relative to the test rows' mean |y|, or absolute
#: below 1) is degenerate: the rows are fitted by a constant, their D^2 undefined
_NULL_FLOOR = 1e-12


def _mean_deviance(loss: Any, y: np.ndarray, c: float) -> float:
    """The mean unit deviance of the constant score ``c`` on ``y``."""
    return float(np.mean(loss.deviance(y, np.full(len(y), c))))


def _best_constant(loss: Any, y: np.ndarray) -> float:
    r"""The intercept-only model fitted on ``y``: :math:`\hat c = \arg\min_c \frac1n
    \sum_i d(y_i, c)` (the unit deviance of ``loss``; ``log(mean y)`` for the Poisson and
    Gamma losses, a quantile for the pinball loss), a convex problem in one number solved by
    bounded Brent and, for a smooth loss, polished by Newton steps (each kept only where it
    shrinks the slope). NaN where the minimum is approached only as ``c`` runs off to a
    bound: no count in a Poisson task's rows (:math:`e^c \to 0`), one class only in a
    binary task's."""
    from scipy.optimize import minimize_scalar

    lo, hi = min(float(np.min(y)), -50.0) - 1.0, max(float(np.max(y)), 50.0) + 1.0
    res = minimize_scalar(lambda c: _mean_deviance(loss, y, c), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-10 * (hi - lo)})
    c, best = float(res.x), float(res.fun)
    if min(_mean_deviance(loss, y, lo), _mean_deviance(loss, y, hi)) <= best:
        return np.nan
    if getattr(loss, "smooth", False):  # Brent's c is good to ~sqrt(eps) only
        def slope(c: float) -> float:  # the mean of -l'(y, c)
            return float(np.mean(loss.theta(y, np.full(len(y), c))))

        g = slope(c)
        for _ in range(20):
            try:
                h = float(np.mean(loss.hessian(y, np.full(len(y), c))))
            except (NotImplementedError, ValueError):
                break
            if not h > 0 or g == 0.0:
                break
            trial = c + g / h
            g_trial = slope(trial)
            if not abs(g_trial) < abs(g):  # (a step kept only where the slope shrinks)
                break
            c, g = trial, g_trial
    return c


def _null_deviance(loss: Any, y: np.ndarray) -> float:
    """The least mean unit deviance of a constant score on ``y`` (:func:`_best_constant`
    fitted on ``y`` itself). NaN where it is degenerate: 0 (up to ``_NULL_FLOOR``), or
    approached only as the constant runs off to a bound (a Poisson task whose rows hold no
    count)."""
    c = _best_constant(loss, y)
    if not np.isfinite(c):
        return np.nan
    best = _mean_deviance(loss, y, c)
    if best <= _NULL_FLOOR * max(1.0, float(np.mean(np.abs(y)))):
        return np.nan
    return best


def _loss_metrics(losses: list, yte: list, f: list,
                  ytr: list | None = None) -> dict[str, np.ndarray]:
    r"""Per task, ``deviance`` (the mean unit deviance :math:`D` of its loss on its test
    rows) and ``d2`` (the fraction of deviance explained),

    .. math::

        D^2_t = 1 - \frac{\frac1{m_t} \sum_{i \in \text{test}} d(y_i, f_i)}
                         {\frac1{m_t} \sum_{i \in \text{test}} d(y_i, \hat c_t)},

    against the task's constant model :math:`\hat c_t` (:func:`_best_constant`) fitted on
    its training rows ``ytr`` (None: on the test rows themselves, scikit-learn's
    ``d2_tweedie_score`` and ``d2_pinball_score``). ``d2`` is NaN (the task not scored)
    where the test rows have a null deviance of 0 (:func:`_null_deviance`: fitted by a
    constant, nothing to explain) or the training rows have no finite best constant."""
    dev = np.array([float(np.mean(loss.deviance(y, g)))
                    for loss, y, g in zip(losses, yte, f, strict=True)])
    null = np.array([_null_deviance(loss, y) for loss, y in zip(losses, yte, strict=True)])
    if ytr is None:
        ref = null
    else:
        ref = np.full(len(yte), np.nan)
        for t, (loss, y, y_train) in enumerate(zip(losses, yte, ytr, strict=True)):
            c = _best_constant(loss, np.asarray(y_train, dtype=np.float64))
            if np.isfinite(null[t]) and np.isfinite(c):
                ref[t] = _mean_deviance(loss, y, c)
    return {"d2": 1.0 - dev / ref, "deviance": dev}


class DegenerateReferenceWarning(UserWarning):
    """A task's test rows of a split are fitted by a constant (e.g. no count in a Poisson
    task: nothing to explain), or its training rows have no finite best constant (the
    reference): its D^2 is left out of the split's means (``Comparison.tasks_scored``)."""


def _linear_predictors(est: Any, Xte: list, losses: list, names: Sequence[Any],
                       keyed: bool) -> list[np.ndarray]:
    """Every task's linear predictor on its test rows: from ``coef_`` (T, p) and
    ``intercept_`` (T,) where the model has them, else from its predictions through the
    inverse of the loss's mean (``log`` for the log links, the logit of a binary task's
    ``predict_proba``)."""
    coef, icpt = getattr(est, "coef_", None), getattr(est, "intercept_", None)
    if np.ndim(coef) == 2 and len(coef) == len(Xte) and np.ndim(icpt) == 1:
        return [np.asarray(X @ coef[t], dtype=np.float64).ravel() + float(icpt[t])
                for t, X in enumerate(Xte)]
    given = dict(zip(names, Xte, strict=True)) if keyed else Xte
    pred = _ordered(est.predict(given), names)
    proba = None
    if any(loss.kind == "binary" for loss in losses):
        proba = _ordered(est.predict_proba(given), names)
    out = []
    for t, loss in enumerate(losses):
        if loss.kind == "binary":
            p = np.clip(np.asarray(proba[t])[:, 1], 1e-15, 1 - 1e-15)
            out.append(np.log(p) - np.log1p(-p))
        elif np.isclose(loss.mean(np.zeros(1))[0], 1.0):  # a log link
            out.append(np.log(np.maximum(np.asarray(pred[t], dtype=np.float64), 1e-300)))
        else:
            out.append(np.asarray(pred[t], dtype=np.float64))
    return out


def _choice(est: Any) -> dict[str, Any]:
    inner = getattr(est, "estimator_", est)
    params = dict(getattr(inner, "best_params_", {}) or {})
    if not params and hasattr(inner, "alpha_"):
        params = {"alpha": inner.alpha_}
    if np.ndim(params.get("alpha", 0.0)):  # one alpha per task: their median, and all
        params["alphas"] = np.asarray(params["alpha"], dtype=np.float64)
        params["alpha"] = float(np.median(params["alphas"]))
    return params


def _prepare(Xs, ys, split, standardize: bool, labels: bool = False):
    """(Xtr, Xte, ytr, yte) of one split, standardized with its pooled training rows (the
    test targets as numbers, or as given with ``labels``)."""
    Xtr, Xte, ytr, yte = apply_split(Xs, ys, split)
    if standardize:
        mean, scale = pooled_scaling(Xtr)
        Xtr, Xte = scaling.standardize(Xtr, mean, scale), scaling.standardize(Xte, mean, scale)
    return Xtr, Xte, ytr, [np.asarray(v) if labels else np.asarray(v, dtype=np.float64)
                           for v in yte]


def _ordered(out: Any, names: Sequence[Any]) -> list:
    """Per-task outputs as a list in task order (from a list, or a dict keyed by task)."""
    return [out[k] for k in names] if isinstance(out, Mapping) else list(out)


def _fit_one(name, est, role, kind, Xtr, Xte, ytr, yte, s, task_names, keyed, loss=None):
    """Fit one model on one split's training part and score it on its test part (by the
    deviance of each task's loss, with ``loss``).

    The built-in models get dicts keyed by task name (``keyed``), so that their warnings
    name the tasks; users' estimators get lists. Warnings are collected and returned, so
    that they reach the caller's process whatever the joblib backend."""
    test_X = Xte
    if keyed:
        Xtr, Xte, ytr = (dict(zip(task_names, v, strict=True)) for v in (Xtr, Xte, ytr))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(Xtr, ytr)
    fit_time = time.perf_counter() - t0
    notes = [(w.category, name, s, str(w.message)) for w in caught]
    if loss is not None or kind == "multiclass":  # per-task metrics, their task means
        y_train = _ordered(ytr, task_names)
        if kind == "multiclass":
            per_task = _class_metrics(est, Xte, y_train, yte, task_names)
        else:
            losses = task_loss_list(loss, len(yte))
            y_enc, ytr_enc = [], []
            for t, (y, y_fit) in enumerate(zip(yte, y_train, strict=True)):
                y_fit = np.asarray(y_fit)
                if losses[t].kind == "binary":  # +-1, the larger training label positive
                    top = np.unique(y_fit)[-1]
                    y, y_fit = np.where(y == top, 1.0, -1.0), np.where(y_fit == top, 1.0, -1.0)
                y_enc.append(y)
                ytr_enc.append(y_fit.astype(np.float64))
            f = _linear_predictors(est, list(test_X), losses, task_names, keyed)
            per_task = _loss_metrics(losses, y_enc, f, ytr_enc)
            notes += [(DegenerateReferenceWarning, "d2", s, _unscored_note(
                task_names[t], np.isnan(_null_deviance(losses[t], y_enc[t]))))
                      for t in np.flatnonzero(np.isnan(per_task["d2"]))]
        task_rows = [{"model": name, "role": role, "split": s, "task": task_names[t],
                      "n": len(yte[t]), **{k: float(v[t]) for k, v in per_task.items()}}
                     for t in range(len(yte))]
        split_row = {"model": name, "split": s, "fit_time": fit_time,
                     **{k: _finite_mean(v) for k, v in per_task.items()}}
        return (name, s, task_rows, split_row, {"model": name, "split": s, **_choice(est)},
                est, notes)
    pred = [np.asarray(v, dtype=np.float64) for v in _ordered(est.predict(Xte), task_names)]
    proba = (_ordered(est.predict_proba(Xte), task_names)
             if kind == "binary" and hasattr(est, "predict_proba") else None)
    per_task = _task_metrics(kind, yte, pred, proba)
    task_rows = [{"model": name, "role": role, "split": s, "task": task_names[t],
                  "n": len(yte[t]), **{k: float(v[t]) for k, v in per_task.items()}}
                 for t in range(len(yte))]
    split_row = {"model": name, "split": s, "fit_time": fit_time,
                 **_split_metrics(kind, yte, pred, proba)}
    return (name, s, task_rows, split_row, {"model": name, "split": s, **_choice(est)}, est,
            notes)


def _unscored_note(name: Any, test_rows: bool) -> str:
    """Why a task's D^2 is left out of a split: its test rows are fitted by a constant
    (``test_rows``), or its training rows have no finite best constant."""
    if test_rows:
        return (f"task {name!r}: its test rows are fitted by a constant (the reference "
                "deviance is ~0, e.g. no count in a Poisson task); its d2 is left out of the "
                "means (NaN in scores)")
    return (f"task {name!r}: its training rows have no finite best constant (e.g. no count "
            "in a Poisson task), the reference of its d2; its d2 is left out of the means "
            "(NaN in scores)")


def _finite_mean(v: np.ndarray) -> float:
    """The mean of the values that are not NaN; NaN (no warning) where none is."""
    v = np.asarray(v, dtype=np.float64)
    keep = ~np.isnan(v)
    return float(np.mean(v[keep])) if keep.any() else np.nan


def _structured(est: Any) -> bool:
    """A model of a structured penalty (solved by proximal gradient or Newton, not coordinate
    descent, conjugate gradients or a closed form): the longest fits of a comparison."""
    pen = getattr(est, "penalty", None)
    if pen is None or isinstance(est, PooledModel):
        return False
    try:
        pen = make_penalty(pen)
    except (TypeError, ValueError):
        return False
    return penalty_solver(Quadratic(), pen) == "fista"


def _distinct(names: Sequence[Any]) -> bool:
    """Whether task names can key dicts: hashable and distinct."""
    try:
        return len(set(names)) == len(names)
    except TypeError:
        return False


def _quiet(est: Any) -> Any:
    """``est`` with its own progress bar off where it has one (the comparison's bar counts
    its fits)."""
    if hasattr(est, "get_params") and "progress" in est.get_params(deep=False):
        est.set_params(progress=False)
    return est


def _checked_terms(terms: dict | None) -> dict:
    """``compare``'s ``feature_terms``, its names checked against the estimators'."""
    if terms is None:
        return {}
    if not isinstance(terms, dict):
        raise ValueError(f"feature_terms must be a dict of the estimators' {TERM_PARAMS}; "
                         f"got {type(terms).__name__}.")
    unknown = sorted(set(terms) - set(TERM_PARAMS))
    if unknown:
        raise ValueError(f"feature_terms: {unknown} are not among {list(TERM_PARAMS)}.")
    return dict(terms)


def _with_terms(est: Any, role: str, terms: dict, cv: int) -> Any:
    """A model of regmtl that ``models`` names, with ``compare``'s per-feature terms (chosen
    by ``cv`` folds where it would use the leave-one-out formula of the plain penalty)."""
    if terms and role != "user" and isinstance(est, (MultiTaskRegressorCV,
                                                     MultiTaskClassifierCV)):
        if est.alpha_per_task and (terms.get("lower_bounds") is not None
                                   or terms.get("upper_bounds") is not None):
            raise ValueError(
                "feature_terms: bounds with an independent model that chooses one alpha per "
                "task (the ridge, lasso or logistic baselines): one alpha per task takes no "
                "bounds. Leave the bounds out, or name other models in models=.")
        est.set_params(**terms, **({"cv": cv} if isinstance(est.cv, str) else {}))
    return est


def _row_counts(X: Any, y: Any, task: Any, bunch: Any, ys: Sequence[Any]) -> tuple[int, int]:
    """``(n_rows, n_obs)``: the rows as ``regmtl datasets`` counts them (a shared design's
    rows once, else the tasks' rows summed) and the (row, task) observations."""
    n_obs = int(sum(len(v) for v in ys))
    shared = getattr(bunch, "X_shared", None) if bunch is not None else None
    if shared is not None:
        return int(np.shape(shared)[0]), n_obs
    if (bunch is None and task is None and not isinstance(X, (list, tuple))
            and np.ndim(y) == 2):  # a shared design (n, p) with Y (n, T)
        return int(np.shape(X)[0]), n_obs
    return n_obs, n_obs


def _task_tables(scores: pd.DataFrame, metric: str, names: list, task_names: list,
                 n_splits: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:attr:`Comparison.by_task` and :attr:`Comparison.tasks_scored` from the scores."""
    task_metric = metric if metric in scores else "accuracy"
    by_task = (scores.groupby(["model", "task"], sort=False)[task_metric].mean()
               .unstack("model").reindex(index=task_names, columns=names)
               .astype(np.float64))
    by_task.index.name, by_task.columns.name = "task", None
    # a task is scored in a split where every model's score of it is defined
    defined = scores[task_metric].notna().groupby([scores["split"], scores["task"]],
                                                  sort=False).all()
    rows = []
    for s in range(n_splits):
        scored = [bool(defined.get((s, name), False)) for name in task_names]
        rows.append({"split": s, "n_tasks": len(task_names), "n_scored": int(sum(scored)),
                     "left_out": [n for n, k in zip(task_names, scored, strict=True) if not k]})
    return by_task, pd.DataFrame(rows, columns=["split", "n_tasks", "n_scored", "left_out"])


def _relay(notes: list[tuple[type, str, int, str]]) -> None:
    """Re-issue the fits' warnings, the same message of several splits once."""
    grouped: dict[tuple[type, str, str], list[int]] = {}
    for category, name, s, message in notes:
        where = grouped.setdefault((category, name, message), [])
        if s not in where:  # (a note every model of a split makes, once)
            where.append(s)
    for (category, name, message), where in grouped.items():
        splits = f"split {where[0]}" if len(where) == 1 else (
            "splits " + ", ".join(map(str, where)))
        warnings.warn(f"{name}, {splits}: {message}", category, stacklevel=3)


def _timings(per_split: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Fit seconds per model: total over splits and per split."""
    by = per_split.groupby("model", sort=False)["fit_time"]
    out = pd.DataFrame({"fit_seconds": by.sum(), "seconds_per_split": by.mean()})
    out = out.reindex(names)
    out.index.name = "model"
    return out


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
    progress: bool | str = "auto",
    loss: Any = None,
    feature_terms: dict | None = None,
) -> Comparison:
    r"""Does sharing help? Multi-task models against single-task and pooled baselines.

    Over repeated train/test splits, every model is fitted on the training part only, its
    regularization chosen by an inner cross-validation on that part (folds inside every
    task), and scored on the test part, task by task. Features are standardized with the
    pooled training rows of all tasks. The baselines learn every task alone (``"ridge"``,
    ``"lasso"``, ``"elasticnet"``; ``"logistic"``, ``"logistic_l1"`` for classification:
    one fit with a separable penalty and an alpha per task, each chosen inside its task;
    ``"ridge_one_alpha"``, ``"lasso_one_alpha"``, ``"logistic_one_alpha"``: one alpha for
    all tasks; ``"unregularized"``: no penalty, see ``regmtl.compare.Unregularized``) or
    one slope vector for all tasks
    with one intercept per task (``"pooled"``, ``regmtl.compare.PooledModel``); the
    multi-task models share through their penalty (``"l21"``, ``"trace"``, ``"mean"``,
    ``"clustered"``, ``"shared_structure"``, ``"dirty"``, ``"sparse_lowrank"``,
    ``"robust_lowrank"``, ``"robust_features"``; for tasks ordered in time
    ``"temporal_group_lasso"``, ``"fused_group_lasso"``, ``"nonconvex_fused_group_lasso"``).

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
    kind : {"auto", "regression", "binary", "multiclass"}, default="auto"
        The kind of the tasks; ``"auto"`` reads it from the Bunch, else calls tasks with at
        most two distinct targets binary, and text labels with more than two classes in a
        task multiclass (integer classes: pass ``"multiclass"`` or ``loss="multinomial"``).
        Multiclass tasks are fitted with the multinomial loss and compared by accuracy (and
        log loss); the default models are scikit-learn's ``LogisticRegression`` per task
        (multinomial, its C tuned per task on the log loss: ``"independent"``), ``"l21"``
        and ``"trace"``.
    models : str, estimator, list or dict, default="default"
        ``"default"``: ``DEFAULT_MODELS`` of the kind: ridge (an alpha per task), ridge with
        one alpha for all tasks, lasso, unregularized, pooled, l21, trace, mean (logistic,
        logistic with one alpha and L1 logistic first for classification). Otherwise a list
        mixing model names (``"ridge"``, ``"ridge_one_alpha"``, ``"lasso"``,
        ``"lasso_one_alpha"``, ``"elasticnet"``, ``"logistic"``, ``"logistic_one_alpha"``,
        ``"logistic_l1"``,
        ``"unregularized"``, ``"pooled"``, ``"l21"``, ``"trace"``, ``"mean"``,
        ``"clustered"``, ``"shared_structure"``, ``"dirty"``, ``"sparse_lowrank"``,
        ``"robust_lowrank"``, ``"robust_features"``, ``"temporal_group_lasso"``,
        ``"fused_group_lasso"``, ``"nonconvex_fused_group_lasso"``;
        ``"l2"`` and ``"l1"`` stand for
        the independent ridge and lasso, or their logistic versions; ``"default"`` for the
        default set), estimator instances whose ``fit(Xs, ys)`` and ``predict(Xs)`` take
        lists per task (``predict_proba`` too for classification), and ``(name, model)``
        pairs; or a dict name -> model name or estimator. Your own estimators are compared
        beside the baselines: without a baseline among the entries, the default baselines
        (independent, unregularized, pooled) come first. The first model is the baseline of
        ``wins``.
    splits : int or list of (train, test), default=10
        Number of splits (the data set's fixed ones first when it has them; otherwise
        ``test_size`` of every task drawn at random, seeded by ``random_state``), or the
        splits themselves: per-task position arrays.
    test_size : float, default=0.25
        Fraction of every task's rows held out by a random split.
    cv : int, default=3
        Folds of the inner cross-validation (inside every task; a task with fewer rows gets
        fewer folds, see :func:`~regmtl.selection.task_folds`).
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
    progress : {"auto", True, False}, default="auto"
        A progress bar on stderr with the time left over the (split, model) fits: ``True``
        from the start, ``False`` never, ``"auto"`` when stderr is a terminal and the
        comparison has lasted 2 s (a shorter one prints nothing; ``regmtl.progress``).
        The models' own bars (a search's) are off inside a comparison. It never changes
        the result.
    loss : str, Datafit or list of them, optional
        The loss of every model: None (the squared loss for regression, the logistic one for
        binary tasks, as ``kind`` says), or ``"poisson"``, ``"gamma"``, ``"huber"``,
        ``"quantile"``, a loss object, or a list with one per task (a binary task of such a
        list takes numeric labels). With a loss other than the squared and logistic ones,
        every model is fitted with it and scored on each task by its loss's deviance:
        ``d2`` (the headline: the fraction of the mean unit deviance of the test rows
        explained against the task's constant model fitted on its training rows, see Notes)
        and ``deviance`` (the mean unit deviance). The
        default models are then ``DEFAULT_LOSS_MODELS``: ``"independent"`` (scikit-learn's
        estimator of the loss, one per task with its alpha tuned inside the task:
        ``PoissonRegressor``, ``GammaRegressor``, ``HuberRegressor``,
        ``QuantileRegressor(solver="highs")`` at the same quantile, ``LogisticRegression``
        for a binary task; ``regmtl.baselines.Independent``), ``"unregularized"``
        (the same without penalty) and the multi-task ``"l21"``, ``"trace"``, ``"mean"``;
        ``"ridge"`` and ``"pooled"`` (squared-loss baselines) are refused. The verdict
        (``tests``) is read as for the other comparisons.

    feature_terms : dict, optional
        Per-feature terms given to every model of regmtl that ``models`` names (the
        independent ridge, lasso and logistic models and the multi-task penalties): the
        estimators' ``penalty_factor``, ``exclude``, ``lower_bounds``, ``upper_bounds``,
        ``rescale_factors`` and ``standardize`` by name (e.g. ``{"penalty_factor": d}``:
        the features of factor 0 unpenalized in each of them), in the units the comparison
        fits in (standardized unless ``standardize=False``); the independent ridge then
        chooses its alphas by the ``cv`` folds (its leave-one-out formula is the plain
        penalty's). scikit-learn's models and the pooled and unregularized baselines take
        none and are fitted as they are; your own estimators carry their own.

    Returns
    -------
    Comparison
        ``summary`` (mean and sd over splits), ``scores`` (tidy per model, split and task),
        ``by_task`` (the headline score per task and model), ``tasks_scored`` (the tasks
        scored per split), ``choices``, ``timings`` (fit seconds per model), ``tests``
        (every model against the strongest independent baseline, see Notes), ``n_rows`` and
        ``n_obs``, and the first split's fitted models.

    Raises
    ------
    ValueError
        With fewer than two tasks, a task of fewer than 2 rows (random splits), an unknown
        model, a model of the other kind, an entry of ``models`` that is neither a name nor
        an estimator, two models of the same name, or more splits than the data set's fixed
        ones.

    Warns
    -----
    UserWarning
        Every fit's warnings, naming the model and the split(s): e.g. a task whose least
        squares is not unique (``"unregularized"``), or a task with fewer rows than ``cv``.

    See Also
    --------
    regmtl.task_relatedness : Whether the tasks are related, before comparing.
    regmtl.plotting.plot_comparison : Draw the result.
    regmtl.report.comparison_verdict : The tests in words.

    Notes
    -----
    With a ``loss``, task :math:`t` of a split is scored by the fraction of deviance
    explained on its :math:`m_t` test rows,

    .. math::

        D^2_t = 1 - \frac{\sum_{i} d(y_i, \hat f_i)}{\sum_{i} d(y_i, \hat c_t)},
        \qquad \hat c_t = \arg\min_c \sum_{j \in \text{train}_t} d(y_j, c),

    with :math:`d` the unit deviance of the task's loss (for the Poisson loss
    :math:`d(y, \mu) = 2 (y \log(y / \mu) - y + \mu)`, and :math:`e^{\hat c_t}` the
    mean of the task's training counts): the reference is the constant model fitted on the
    training part, as every model is. The task is not scored in the split (NaN in
    ``scores``, a ``DegenerateReferenceWarning``) where its test rows have a null deviance
    of 0, :math:`\min_c \sum_i d(y_i, c) = 0` (fitted by a constant: e.g. no count among
    them), or where :math:`\hat c_t` is not finite (e.g. no count among its training rows).
    A split's ``d2`` and ``deviance`` are the means over its scored tasks
    (``tasks_scored``).

    ``tests`` compares every model :math:`m` with the strongest independent baseline
    :math:`b` (the role-``"independent"`` model with the best mean headline score; not
    necessarily ``baseline``, the first model, which ``wins`` counts against). Two-sided
    tests, read at the 0.05 level by the report:

    - *over splits*: :math:`d_j = s_j(m) - s_j(b)`, the paired difference of split
      :math:`j`'s headline score (the score whose mean the summary shows), for the
      :math:`J` splits where both are defined. The splits are train/test splits of the same
      rows (random, the data set's fixed ones, or given), so their training sets overlap
      and the :math:`d_j` are positively correlated: the paired t-test's variance
      :math:`\hat\sigma^2 / J` is too small and its p-values too low. The corrected
      resampled t-test of Nadeau & Bengio (2003) is used instead:

      .. math::

          t = \frac{\bar d}{\sqrt{(1/J + n_2/n_1)\,\hat\sigma^2}}, \qquad
          \hat\sigma^2 = \frac{1}{J-1}\sum_j (d_j - \bar d)^2,

      with :math:`n_2/n_1` the test rows over the training rows (mean over splits),
      :math:`J - 1` degrees of freedom, the p-value :math:`2\,P(T_{J-1} > |t|)` and the
      95% interval :math:`\bar d \pm t_{0.975, J-1} \sqrt{(1/J + n_2/n_1)\,\hat\sigma^2}`
      (the models' own score intervals, ``score_low`` and ``score_high``, alike). With
      fewer than 2 splits there is no test (NaN). Differences all equal give p = 1 when
      they are 0 and p = 0 otherwise;
    - *over tasks*: :math:`e_t`, each task's split-averaged score minus the baseline's
      (tasks where either is NaN left out): the tasks better (:math:`e_t > 0`) and worse,
      and the Wilcoxon signed-rank p-value (:func:`scipy.stats.wilcoxon`, zero
      differences dropped; p = 1 when all are zero).

    References
    ----------
    Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error. *Machine
    Learning* 52(3), 239-281.

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

    Names, pairs and estimators mix; a dict works too:

    >>> models = ["ridge", "pooled", ("my L2,1", rm.MultiTaskRegressorCV("l21", alphas=5))]
    >>> rm.compare(data, models=models, splits=1).summary["model"].tolist()
    ['ridge (independent)', 'pooled', 'my L2,1']
    """
    t_start = time.perf_counter()
    check_progress(progress)
    Xs, ys, bunch = as_task_lists(X, y, task)
    if len(Xs) < 2:
        raise ValueError("compare needs at least two tasks (one task has nothing to share).")
    kind, loss = _loss_kind(loss, ys, kind, bunch)
    chosen = _resolve_models(models, kind, loss)
    task_names = list(getattr(bunch, "task_names", None) or range(len(Xs)))
    split_list, split_kind = _splits(bunch, Xs, ys, splits, test_size, random_state,
                                     task_names)
    opts = dict(alphas=n_alphas, cv=cv, tol=tol, random_state=random_state)
    if loss is not None:
        opts["loss"] = loss
    terms = _checked_terms(feature_terms)
    p = Xs[0].shape[1] if hasattr(Xs[0], "shape") else np.asarray(Xs[0]).shape[1]
    feature_names = list(getattr(bunch, "feature_names", None) or
                         [f"x{j}" for j in range(p)])
    prepared = [_prepare(Xs, ys, split, standardize, kind == "multiclass")
                for split in split_list]
    keyed = _distinct(task_names)
    jobs = [delayed(_fit_one)(name, _with_terms(_quiet(factory(opts)), role, terms, cv), role,
                              kind, *prepared[s][:4], s,
                              task_names, keyed and role != "user", loss)
            for s in range(len(split_list)) for name, (factory, role) in chosen.items()]
    # the longest fits first (structured penalties: proximal gradient or Newton), so that
    # the last ones to finish are short
    order = sorted(range(len(jobs)), key=lambda i: not _structured(jobs[i][1][1]))
    results: list[Any] = [None] * len(jobs)
    with progress_bar(len(jobs), progress, "compare", unit="fit") as bar:
        for k, out in run_jobs([jobs[i] for i in order], n_jobs):
            results[order[k]] = out
            bar.set_postfix_str(f"{out[0]}, split {out[1]}", refresh=False)
            bar.update(1)
    rows, split_rows, choice_rows, fitted, notes = [], [], [], {}, []
    for name, s, task_rows, split_row, choice, est, caught in results:
        notes.extend(caught)
        rows.extend(task_rows)
        split_rows.append(split_row)
        choice_rows.append(choice)
        if s == 0:
            fitted[name] = est
    _relay(notes)
    first = prepared[0] if prepared else ()
    scores = pd.DataFrame(rows)
    per_split = pd.DataFrame(split_rows)
    choices = pd.DataFrame(choice_rows)
    metric = "d2" if loss is not None else "explained_variance" if kind == "regression" else (
        "auc" if "auc" in per_split else "accuracy")
    baseline = next(iter(chosen))
    summary = _summarize(per_split, scores, choices, list(chosen), baseline, metric, kind)
    tests = _significance(per_split, scores, summary, {n: r for n, (_, r) in chosen.items()},
                          metric, _test_train_ratio(prepared))
    by_task, tasks_scored = _task_tables(scores, metric, list(chosen), task_names,
                                         len(split_list))
    n_rows, n_obs = _row_counts(X, y, task, bunch, ys)
    return Comparison(summary=summary, scores=scores, choices=choices, kind=kind,
                      baseline=baseline, metric=metric, n_splits=len(split_list),
                      split_kind=split_kind, task_names=task_names,
                      feature_names=feature_names, models=fitted, data_first_split=first,
                      elapsed=time.perf_counter() - t_start,
                      timings=_timings(per_split, list(chosen)), tests=tests,
                      by_task=by_task, tasks_scored=tasks_scored, n_rows=n_rows, n_obs=n_obs)


def _loss_kind(loss: Any, ys: Sequence[Any], kind: str, bunch: Any) -> tuple[str, Any]:
    """(the kind of the tasks, the loss scored by its deviance or None): the squared and
    logistic losses are today's regression and binary comparisons; any other loss (or one
    per task) is a regression comparison scored by each task's deviance."""
    if kind == "multiclass" or (loss is not None and make_loss(loss).kind == "multiclass"):
        if kind not in ("auto", "multiclass"):
            raise ValueError(f"kind={kind!r} does not match loss={loss!r} (a multiclass loss).")
        return "multiclass", None
    if loss is None:
        if kind == "auto" and _text_classes(ys):
            return "multiclass", None
        return task_kind(ys, getattr(bunch, "kind", "auto") if kind == "auto" else kind), None
    datafit = make_loss(loss)
    if datafit.kind == "mixed" and len(datafit.losses) != len(ys):
        raise ValueError(f"loss has {len(datafit.losses)} entries for {len(ys)} tasks: give "
                         "one loss per task.")
    own = "binary" if datafit.kind == "binary" else "regression"
    if kind not in ("auto", own):
        raise ValueError(f"kind={kind!r} does not match loss={loss!r} (a {own} loss).")
    if datafit.kind == "binary" or datafit.quadratic:
        return own, None
    # (a parameter read from the data, Huber()'s delta, read once on all the targets: every
    # model and every split is fitted and scored on one loss)
    resolved = loss_on_targets(loss, ys)
    if resolved is datafit:
        return "regression", loss
    return "regression", resolved.losses if isinstance(resolved, Mixed) else resolved


def _text_classes(ys: Sequence[Any]) -> bool:
    """Whether the targets are text labels and some task has more than two of them (numbers
    are read as targets: pass ``kind="multiclass"`` for integer classes)."""
    arrays = [np.asarray(y) for y in ys]
    text = all(a.dtype.kind in "UO" and all(isinstance(v, str) for v in a.tolist())
               for a in arrays)
    return text and any(len(np.unique(a)) > 2 for a in arrays)


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


# ============================================================================ significance
#: The columns of :attr:`Comparison.tests`.
_TEST_COLUMNS = ["model", "role", "baseline", "score", "score_low", "score_high", "difference",
                 "ci_low", "ci_high", "t", "df", "p_value", "n_splits", "test_train_ratio",
                 "tasks_better", "tasks_worse", "n_tasks", "wilcoxon_p"]


def _strongest_independent(summary: pd.DataFrame, roles: Mapping[str, str],
                           metric: str) -> str | None:
    """The role-"independent" model with the best mean headline score (None if none)."""
    means = summary.set_index("model")[f"{metric}_mean"]
    means = means[[roles.get(m) == "independent" for m in means.index]].dropna()
    return str(means.idxmax()) if len(means) else None


def _t_interval(values: np.ndarray, ratio: float,
                level: float = 0.95) -> tuple[float, float, float, float, float]:
    """``(mean, se, t_crit, df, t)`` of the corrected resampled t for ``values`` (J >= 2):
    ``se = sqrt((1/J + ratio) var)``; ``t = mean / se`` (0 when all values are 0, +-inf when
    they are one nonzero constant)."""
    J = len(values)
    mean = float(np.mean(values))
    se = float(np.sqrt((1.0 / J + ratio) * np.var(values, ddof=1)))
    t_crit = float(stats.t.ppf(0.5 + level / 2, J - 1))
    t = mean / se if se > 0 else (0.0 if mean == 0 else float(np.copysign(np.inf, mean)))
    return mean, se, t_crit, float(J - 1), t


def _wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of ``diffs`` (zeros dropped); 1 when all are zero."""
    if not np.any(diffs != 0):
        return 1.0 if len(diffs) else np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(diffs).pvalue)


def _paired_tests(split_scores: pd.DataFrame, task_scores: pd.DataFrame, baseline: str,
                  roles: Mapping[str, str], test_train_ratio: float) -> pd.DataFrame:
    """Every model (a column of both frames) against ``baseline``: the rows of
    :attr:`Comparison.tests`.

    ``split_scores``: the headline score of each split (rows) and model; ``task_scores``:
    each task's split-averaged score (rows) and model. Pairs with a NaN are left out."""
    rows = []
    base_split = split_scores[baseline].to_numpy(dtype=np.float64)
    base_task = task_scores[baseline].to_numpy(dtype=np.float64)
    for name in split_scores.columns:
        mine = split_scores[name].to_numpy(dtype=np.float64)
        own = mine[np.isfinite(mine)]
        row: dict[str, Any] = {"model": name, "role": roles.get(name, ""),
                               "baseline": baseline,
                               "score": float(np.mean(own)) if len(own) else np.nan,
                               "score_low": np.nan, "score_high": np.nan}
        if len(own) >= 2:
            mean, se, t_crit, _, _ = _t_interval(own, test_train_ratio)
            row["score_low"], row["score_high"] = mean - t_crit * se, mean + t_crit * se
        paired = np.isfinite(mine) & np.isfinite(base_split)
        d = mine[paired] - base_split[paired]
        row.update(difference=float(np.mean(d)) if len(d) else np.nan, ci_low=np.nan,
                   ci_high=np.nan, t=np.nan, df=np.nan, p_value=np.nan, n_splits=len(d),
                   test_train_ratio=float(test_train_ratio))
        if len(d) >= 2:
            mean, se, t_crit, df, t = _t_interval(d, test_train_ratio)
            row.update(ci_low=mean - t_crit * se, ci_high=mean + t_crit * se, t=t, df=df,
                       p_value=float(2 * stats.t.sf(abs(t), df)))
        task = task_scores[name].to_numpy(dtype=np.float64)
        both = np.isfinite(task) & np.isfinite(base_task)
        e = task[both] - base_task[both]
        row.update(tasks_better=int(np.sum(e > 0)), tasks_worse=int(np.sum(e < 0)),
                   n_tasks=len(e), wilcoxon_p=_wilcoxon_p(e))
        rows.append(row)
    return pd.DataFrame(rows, columns=_TEST_COLUMNS)


def _significance(per_split: pd.DataFrame, scores: pd.DataFrame, summary: pd.DataFrame,
                  roles: Mapping[str, str], metric: str,
                  test_train_ratio: float) -> pd.DataFrame:
    """:attr:`Comparison.tests`: every model against the strongest independent baseline."""
    baseline = _strongest_independent(summary, roles, metric)
    if baseline is None:
        return pd.DataFrame(columns=_TEST_COLUMNS)
    names = summary["model"].tolist()
    split_scores = (per_split.pivot(index="split", columns="model", values=metric)
                    if metric in per_split else pd.DataFrame(np.nan, index=[0], columns=names))
    task_metric = metric if metric in scores else "accuracy"
    by_task = scores.groupby(["model", "task"], sort=False)[task_metric].mean()
    tasks = by_task.loc[baseline].index
    task_scores = pd.DataFrame({n: by_task.loc[n].reindex(tasks).to_numpy() for n in names},
                               index=tasks)
    return _paired_tests(split_scores.reindex(columns=names), task_scores, baseline, roles,
                         test_train_ratio)


def _test_train_ratio(prepared: Sequence[tuple]) -> float:
    """Mean over splits of (test rows) / (training rows), all tasks together."""
    ratios = [sum(len(y) for y in yte) / max(sum(len(y) for y in ytr), 1)
              for _, _, ytr, yte in prepared]
    return float(np.mean(ratios)) if ratios else 0.0
