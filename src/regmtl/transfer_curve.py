r"""Learning curves of knowledge transfer: does a new task with n samples gain from old tasks?

Some tasks are held out as *new*; a multi-task model is fitted on the others (the *old* tasks).
Each new task then gets ``n`` training rows drawn at random (repeatedly), the rest of its rows
being its test rows, and three models are scored on them:

- ``transfer``: :func:`regmtl.transfer` from the fitted model, on the ``n`` rows;
- ``single-task``: the new task alone on the same rows (ridge, or L2 logistic regression, its
  alpha by leave-one-out / stratified K-fold cross-validation);
- ``pooled``: one model fitted on all old tasks' rows together (tasks ignored), its alpha by
  cross-validation, used as is (the ``n`` new rows would weigh ``n / N`` in it).

Features are standardized with the old tasks' pooled rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone

from . import metrics
from ._lazy import lazy_module
from .estimators import MultiTaskClassifier, MultiTaskRegressor
from .scaling import pooled_scaling, stack_rows, standardize
from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV
from .task_lists import as_task_lists, task_kind
from .transfer import transfer, transfer_loss

pd = lazy_module("pandas")

__all__ = ["transfer_curve", "TransferCurve", "split_tasks"]

METHODS = ("transfer", "single-task", "pooled")


@dataclass
class TransferCurve:
    """What :func:`~regmtl.transfer_curve.transfer_curve` measured.

    :func:`transfer_curve` builds it; :meth:`table` and ``print`` show the mean test error
    per training size and method, :meth:`plot` draws the curves.

    Parameters
    ----------
    scores, summary, kind, metric, new_tasks, old_tasks, model
        The attributes below.

    Attributes
    ----------
    scores : pandas.DataFrame
        Tidy: one row per (new task, n_new, repeat, method) with ``n_test`` and the test
        metrics (``mse``, ``explained_variance``; ``accuracy``, ``log_loss`` for binary tasks),
        and the ``strategy`` and ``alpha`` used.
    summary : pandas.DataFrame
        One row per (n_new, method): ``<metric>_mean`` and ``<metric>_sd`` over new tasks of
        the repeat-averaged metric, ``ratio`` to single-task, ``wins`` (the fraction of draws
        where the method's error is below single-task's), ``n_tasks`` (new tasks with enough
        rows) and ``n_draws``.
    kind : {"regression", "binary"}
        The kind of tasks.
    metric : {"mse", "log_loss"}
        The error the summary averages: ``mse`` for regression, ``log_loss`` for binary
        tasks.
    new_tasks : list
        Names of the held-out (new) tasks.
    old_tasks : list
        Names of the tasks the model was fitted on.
    model : MultiTaskRegressor or MultiTaskClassifier
        The model fitted on the old tasks (standardized features), which the new tasks
        transfer from.

    See Also
    --------
    regmtl.plotting.plot_transfer_curve : Draws the curves.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.transfer_curve import transfer_curve
    >>> data = make_multitask_regression(6, 40, 5, n_informative=3, relatedness=0.9,
    ...                                  random_state=0)
    >>> curve = transfer_curve(data, estimator=MultiTaskRegressor(penalty="mean", alpha=0.01),
    ...                        new_tasks=2, n_new=(5, 10), n_repeats=2, pooled=False)
    >>> curve.new_tasks, curve.metric
    (['task_4', 'task_5'], 'mse')
    >>> print(curve.summary[["n_new", "method", "n_tasks", "n_draws"]])
       n_new       method  n_tasks  n_draws
    0      5     transfer        2        4
    1      5  single-task        2        4
    2     10     transfer        2        4
    3     10  single-task        2        4
    >>> curve.table().columns.tolist()
    ['transfer', 'single-task', 'transfer / single']
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    kind: str
    metric: str
    new_tasks: list
    old_tasks: list
    model: Any = field(default=None, repr=False)

    def table(self) -> pd.DataFrame:
        """The mean test metric, one row per training size and one column per method.

        Returns
        -------
        pandas.DataFrame
            Index ``n_new``, columns the methods (``transfer``, ``single-task``, ``pooled``)
            and ``transfer / single``, the ratio of the first two.
        """
        t = self.summary.pivot(index="n_new", columns="method", values=f"{self.metric}_mean")
        t = t[[m for m in METHODS if m in t.columns]]
        t["transfer / single"] = t["transfer"] / t["single-task"]
        return t

    def __str__(self) -> str:
        return self.table().to_string(float_format=lambda v: f"{v:.4g}")

    def plot(self, ax: Any = None) -> Any:
        """Mean test metric against n_new, one line per method (± sd over new tasks).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when omitted.

        Returns
        -------
        matplotlib Axes
            See :func:`~regmtl.plotting.plot_transfer_curve`.
        """
        from .plotting import plot_transfer_curve

        return plot_transfer_curve(self, ax=ax)


def split_tasks(n_tasks: int, new_tasks: int | Sequence[int], random_state: Any = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Split task positions into old tasks (to learn from) and new ones (held out).

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    new_tasks : int or sequence of int
        How many new tasks to draw at random, between 1 and ``n_tasks - 2``, or their
        positions (at least 2 tasks must stay old).
    random_state : int, numpy Generator or None, default=0
        Seeds the draw when ``new_tasks`` is an int.

    Returns
    -------
    old : ndarray of shape (n_old,)
        Sorted positions of the old tasks.
    new : ndarray of shape (n_new,)
        Sorted positions of the new tasks.

    Raises
    ------
    ValueError
        If fewer than 2 old tasks would remain, or a position is out of range.

    Examples
    --------
    >>> from regmtl.transfer_curve import split_tasks
    >>> old, new = split_tasks(6, [0, 5])
    >>> old.tolist(), new.tolist()
    ([1, 2, 3, 4], [0, 5])
    >>> old, new = split_tasks(6, 2, random_state=0)
    >>> len(old), len(new)
    (4, 2)
    """
    if isinstance(new_tasks, (int, np.integer)):
        k = int(new_tasks)
        if not 1 <= k <= n_tasks - 2:
            raise ValueError(f"new_tasks={k}: hold out between 1 and {n_tasks - 2} of the "
                             f"{n_tasks} tasks (at least 2 must stay to learn from).")
        new = np.sort(np.random.default_rng(random_state).choice(n_tasks, k, replace=False))
    else:
        new = np.unique(np.asarray(new_tasks, dtype=np.int64))
        if new.size == 0 or new.min() < 0 or new.max() >= n_tasks:
            raise ValueError(f"new_tasks: give task positions in 0..{n_tasks - 1}.")
        if n_tasks - new.size < 2:
            raise ValueError("new_tasks: leave at least 2 old tasks to learn from.")
    return np.setdiff1d(np.arange(n_tasks), new), new


def _default_estimator(kind: str, random_state: Any) -> BaseEstimator:
    cls = MultiTaskRegressorCV if kind == "regression" else MultiTaskClassifierCV
    return cls("mean", alphas=12, cv=3, random_state=random_state)


def _pooled(kind: str, Zs, ys, random_state) -> BaseEstimator:
    Z = stack_rows(Zs)
    y = np.concatenate([np.asarray(v) for v in ys])
    cls = MultiTaskRegressorCV if kind == "regression" else MultiTaskClassifierCV
    return cls("l2", alphas=12, cv=3, random_state=random_state).fit(Z, y).best_estimator_


def _draw(y: np.ndarray, n: int, kind: str, rng: np.random.Generator) -> np.ndarray | None:
    """n training positions (binary: at least 2 of each class), or None if impossible."""
    if kind == "regression":
        return rng.permutation(len(y))[:n]
    classes = np.unique(y)
    pos = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    if len(classes) != 2 or n < 4 or min(len(p) for p in pos) < 3:
        return None
    first = np.concatenate([p[:2] for p in pos])
    rest = rng.permutation(np.concatenate([p[2:] for p in pos]))
    return np.concatenate([first, rest[: n - 4]])


def _metrics(kind: str, y: np.ndarray, est: Any) -> dict[str, float]:
    pred = est.predict(y[0])
    if kind == "regression":
        return {"mse": metrics.mse([y[1]], [pred]),
                "explained_variance": metrics.explained_variance([y[1]], [pred])}
    proba = est.predict_proba(y[0])[:, 1]
    return {"accuracy": metrics.accuracy([y[1]], [pred]),
            "log_loss": metrics.log_loss([y[1]], [proba])}


def _one_task(t: int, name: Any, Z: np.ndarray, y: np.ndarray, model: Any, pooled: Any,
              kind: str, n_new: Sequence[int], n_repeats: int, min_test: int,
              strategy: str, alpha: Any, seed: int) -> list[dict]:
    rows = []
    seeds = np.random.SeedSequence(seed).generate_state(len(n_new) * n_repeats)
    for i, n in enumerate(n_new):
        if len(y) < n + min_test:
            continue
        for r in range(n_repeats):
            rng = np.random.default_rng(int(seeds[i * n_repeats + r]))
            tr = _draw(y, n, kind, rng)
            if tr is None:
                continue
            te = np.setdiff1d(np.arange(len(y)), tr)
            test = (Z[te], y[te])
            base = {"task": name, "n_new": int(n), "repeat": r, "n_test": len(te)}
            new = transfer(model, Z[tr], y[tr], strategy=strategy, alpha=alpha,
                           random_state=int(seeds[i * n_repeats + r]) % 2**31)
            rows.append({**base, "method": "transfer", "strategy": new.strategy_,
                         "alpha": new.alpha_, **_metrics(kind, test, new)})
            single = transfer(model, Z[tr], y[tr], strategy="single", alpha="cv",
                              random_state=int(seeds[i * n_repeats + r]) % 2**31)
            rows.append({**base, "method": "single-task", "strategy": "single",
                         "alpha": single.alpha_, **_metrics(kind, test, single)})
            if pooled is not None:
                rows.append({**base, "method": "pooled", "strategy": "pooled",
                             "alpha": float(pooled.alpha), **_metrics(kind, test, pooled)})
    return rows


def transfer_curve(
    X: Any,
    y: Any = None,
    task: Any = None,
    *,
    estimator: BaseEstimator | None = None,
    new_tasks: int | Sequence[int] = 20,
    n_new: Sequence[int] = (5, 10, 20, 40),
    n_repeats: int = 10,
    min_test: int = 10,
    strategy: str = "auto",
    alpha: Any = "auto",
    pooled: bool = True,
    standardize_features: bool = True,
    random_state: int = 0,
    n_jobs: int | None = None,
) -> TransferCurve:
    """Learning curves of transfer vs single-task training vs the pooled model.

    Some tasks are held out as new ones; a multi-task model is fitted on the others. Each new
    task then gets ``n`` training rows drawn at random (``n_repeats`` times for every ``n``
    in ``n_new``), the rest of its rows being its test rows, and three models are scored
    there: :func:`regmtl.transfer` from the fitted model, the task alone (``single-task``:
    ridge or L2 logistic regression, its alpha by cross-validation), and one model fitted on
    all old tasks' rows together (``pooled``). See the module docstring.

    Parameters
    ----------
    X : Bunch, list of array-like, array-like or DataFrame
        The data, as :func:`regmtl.compare` takes it: a loader's Bunch, lists per task, a long
        table with ``task`` ids, or a shared design.
    y : list of array-like or array-like, default=None
        The targets (not with a Bunch): per task, or one array for the long form, or
        ``Y`` of shape (n, T) for a shared design.
    task : array-like or str, default=None
        Task ids of the long form (or the name of a column of a DataFrame ``X``).
    estimator : MultiTaskRegressor, MultiTaskClassifier or their CV versions, default=None
        Fitted (a clone) on the old tasks; its structure is what the new tasks inherit.
        Default ``MultiTaskRegressorCV("mean", alphas=12, cv=3)`` (the classifier for binary
        tasks).
    new_tasks : int or sequence of int, default=20
        How many tasks to hold out (drawn with ``random_state``), or their positions.
    n_new : sequence of int, default=(5, 10, 20, 40)
        Training sizes of a new task.
    n_repeats : int, default=10
        Random draws of the training rows per new task and size.
    min_test : int, default=10
        A new task joins a size only if it keeps at least this many test rows.
    strategy : {"auto", "support", "subspace", "mean", "cluster", "single"}, default="auto"
        How the new tasks use the model; passed to :func:`regmtl.transfer`.
    alpha : {"auto", "model", "cv"} or float, default="auto"
        The new tasks' regularization; passed to :func:`regmtl.transfer`.
    pooled : bool, default=True
        Also score the pooled model.
    standardize_features : bool, default=True
        z-score the features with the old tasks' pooled rows.
    random_state : int, default=0
        Seeds the choice of new tasks, the draws of training rows and the inner CV.
    n_jobs : int, default=None
        New tasks in parallel (joblib); the result does not depend on it.

    Returns
    -------
    TransferCurve
        The tidy scores, their summary per (n_new, method) and the fitted model.

    Raises
    ------
    ValueError
        If there are fewer than 3 tasks, ``n_new`` has a size below 2, or no new task has
        ``n_new + min_test`` rows.
    TypeError
        If ``estimator`` is not a regmtl linear estimator.

    See Also
    --------
    regmtl.transfer : Fits one new task.
    regmtl.plotting.plot_transfer_curve : Draws the result.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.transfer_curve import transfer_curve
    >>> data = make_multitask_regression(6, 40, 5, n_informative=3, relatedness=0.9,
    ...                                  random_state=0)
    >>> curve = transfer_curve(data, estimator=MultiTaskRegressor(penalty="mean", alpha=0.01),
    ...                        new_tasks=2, n_new=(5, 10), n_repeats=2)
    >>> sorted(curve.summary["method"].unique())
    ['pooled', 'single-task', 'transfer']
    >>> curve.scores.shape  # 2 new tasks x 2 sizes x 2 repeats x 3 methods
    (24, 9)
    >>> ax = curve.plot()
    >>> type(ax).__name__
    'Axes'
    """
    Xs, ys, bunch = as_task_lists(X, y, task)
    if len(Xs) < 3:
        raise ValueError("transfer_curve needs at least 3 tasks (2 old ones to learn from and "
                         "a new one).")
    kind = task_kind(ys, getattr(bunch, "kind", "auto") if bunch is not None else "auto")
    n_new = [int(n) for n in np.atleast_1d(n_new)]
    if min(n_new) < 2 or int(n_repeats) < 1 or int(min_test) < 1:
        raise ValueError("n_new must be >= 2, n_repeats and min_test >= 1.")
    names = list(getattr(bunch, "task_names", None) or range(len(Xs)))
    old, new = split_tasks(len(Xs), new_tasks, random_state)
    Xo = [np.asarray(Xs[t], dtype=np.float64) for t in old]
    if standardize_features:
        mean, scale = pooled_scaling(Xo)
    else:
        mean, scale = np.zeros(Xo[0].shape[1]), np.ones(Xo[0].shape[1])
    Zo = standardize(Xo, mean, scale)
    yo = [np.asarray(ys[t]) for t in old]
    est = clone(estimator) if estimator is not None else _default_estimator(kind, random_state)
    if "loss" in getattr(est, "get_params", dict)():  # refused before any fit
        loss = transfer_loss(est.get_params()["loss"])
        if not (loss.quadratic or loss.kind == "binary"):
            raise ValueError(f"transfer_curve scores the squared and logistic losses (mse, "
                             f"log-loss); got loss={loss!r}. Call regmtl.transfer(model, "
                             "X_new, y_new) for the other losses.")
    model = getattr(est.fit(Zo, yo), "best_estimator_", est)
    if not isinstance(model, (MultiTaskRegressor, MultiTaskClassifier)):
        raise TypeError("estimator: give a regmtl MultiTaskRegressor / MultiTaskClassifier "
                        "(or a CV version).")
    pooled_model = _pooled(kind, Zo, yo, random_state) if pooled else None
    seeds = np.random.SeedSequence(random_state).generate_state(len(new))
    jobs = [delayed(_one_task)(int(t), names[t],
                               standardize([np.asarray(Xs[t], dtype=np.float64)],
                                           mean, scale)[0],
                               np.asarray(ys[t]), model, pooled_model, kind, n_new,
                               int(n_repeats), int(min_test), strategy, alpha, int(s))
            for t, s in zip(new, seeds, strict=True)]
    rows = [r for part in Parallel(n_jobs=n_jobs)(jobs) for r in part]
    if not rows:
        raise ValueError(f"no new task has n_new + min_test = {min(n_new) + min_test} rows; "
                         "lower n_new or min_test.")
    scores = pd.DataFrame(rows)
    metric = "mse" if kind == "regression" else "log_loss"
    return TransferCurve(scores=scores, summary=_summarize(scores, metric), kind=kind,
                         metric=metric, new_tasks=[names[t] for t in new],
                         old_tasks=[names[t] for t in old], model=model)


def _summarize(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    draws = scores.pivot_table(index=["n_new", "task", "repeat"], columns="method",
                               values=metric, aggfunc="first")
    per_task = draws.groupby(level=["n_new", "task"]).mean()
    out = []
    for n in sorted(draws.index.get_level_values("n_new").unique()):
        d, t = draws.loc[n], per_task.loc[n]
        base = float(t["single-task"].mean())
        for method in [m for m in METHODS if m in draws.columns]:
            col = t[method]
            out.append({"n_new": int(n), "method": method,
                        f"{metric}_mean": float(col.mean()),
                        f"{metric}_sd": float(col.std(ddof=1)) if len(col) > 1 else 0.0,
                        "ratio": float(col.mean() / base),
                        "wins": float(np.mean(d[method] < d["single-task"])),
                        "n_tasks": int(col.size), "n_draws": int(d[method].size)})
    return pd.DataFrame(out)
