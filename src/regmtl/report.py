"""The reports regmtl writes: a comparison, a task-relatedness analysis, a deep model's
training, each a :class:`~regmtl.report.Report` of readable tables and figures.

The document itself (blocks rendered as HTML or Markdown) lives in ``regmtl.document``; its
``Report`` is importable from here too. The figures of a report are drawn together, over
``n_jobs`` processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from joblib import delayed
from sklearn.base import is_classifier

from ._options import check_option
from .document import Report, check_created, check_n_jobs

__all__ = ["Report", "comparison_report", "comparison_verdict", "loss_name",
           "relatedness_report", "score_name", "training_report"]


def _plot_png(plot: str, *args: Any, **kwargs: Any) -> bytes:
    """PNG bytes of ``regmtl.plotting.<plot>(*args, **kwargs)``; the figure is closed."""
    import matplotlib.pyplot as plt

    from . import plotting

    fig = plotting.root_figure(getattr(plotting, plot)(*args, **kwargs))
    try:
        return plotting.figure_to_png(fig)
    finally:
        plt.close(fig)


def _path_png(X: Any, y: Any, penalty: Any, loss: Any, alphas: np.ndarray, tol: float,
              feature_names: list) -> bytes:
    """PNG bytes of the regularization path of ``(X, y)`` along ``alphas``."""
    import warnings

    from .selection import regularization_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = regularization_path(X, y, penalty=penalty, loss=loss, alphas=alphas, tol=tol)
    return _plot_png("plot_path", path, feature_names=feature_names)


# --------------------------------------------------------------------- the loss of a fit
def _model_loss(model: Any) -> Any:
    """A linear model's ``loss=`` (the classifier's, which has none: ``"logistic"``), each
    loss whose parameter a fit reads from the data (``Huber()``) as fitted (``loss_``)."""
    from .datafits import make_loss

    loss = getattr(model, "loss", None)
    if loss is None:
        return "logistic" if is_classifier(model) else "squared"
    fitted = getattr(model, "loss_", None)
    if fitted is None:
        return loss

    if isinstance(loss, (list, tuple, np.ndarray)):
        parts = getattr(fitted, "losses", fitted)
        return [f if make_loss(g).reads_data else g for g, f in zip(loss, parts, strict=True)]
    return fitted if make_loss(loss).reads_data else loss


def loss_name(model: Any) -> str:
    """The loss of a fitted linear model in words: ``"poisson"``, ``"Huber(delta=1.0)"``,
    or each task's loss for a fit with one loss per task (``"per task: logistic, poisson,
    squared"``).

    Parameters
    ----------
    model : MultiTaskRegressor or MultiTaskClassifier
        The model (fitted or not).

    Returns
    -------
    str
        The loss's name, with its parameters where it has any.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.report import loss_name
    >>> loss_name(rm.MultiTaskRegressor(loss=rm.Quantile(0.9)))
    'Quantile(0.9)'
    >>> loss_name(rm.MultiTaskRegressor(loss=["logistic", "poisson"]))
    'per task: logistic, poisson'
    """
    return _loss_words(_model_loss(model))


def _loss_words(loss: Any) -> str:
    """A ``loss=`` value in words (see :func:`loss_name`)."""
    if isinstance(loss, (list, tuple, np.ndarray)):
        return "per task: " + ", ".join(v if isinstance(v, str) else repr(v) for v in loss)
    return loss if isinstance(loss, str) else repr(loss)


def _named_list(names: list[str], k: int = 12) -> str:
    """``"(n): a, b, ..."``: a count and the first ``k`` names."""
    shown = ", ".join(names[:k]) + (f", ... (+{len(names) - k} more)" if len(names) > k else "")
    return f"({len(names)}): {shown}"


def _bounds_words(lower: np.ndarray | None, upper: np.ndarray | None, names: list[str]
                  ) -> str | None:
    """The bounds of a model in words: ``"coefficients in [lo, hi]"`` where one interval
    holds for every feature, else the features bounded and their intervals (named where
    few, by their span where many or per task)."""
    p, T = (lower if lower is not None else upper).shape
    lo = np.full((p, T), -np.inf) if lower is None else lower
    hi = np.full((p, T), np.inf) if upper is None else upper
    bounded = np.flatnonzero(np.any((lo != -np.inf) | (hi != np.inf), axis=1))
    if not bounded.size:
        return None

    def interval(a: float, b: float) -> str:
        return f"[{a:.4g}, {b:.4g}]"

    if np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
        return "coefficients in " + interval(lo.flat[0], hi.flat[0])
    one = [j for j in bounded if np.all(lo[j] == lo[j, 0]) and np.all(hi[j] == hi[j, 0])]
    if len(one) == bounded.size and bounded.size <= 3:
        return "bounds: " + ", ".join(f"{names[j]} in {interval(lo[j, 0], hi[j, 0])}"
                                      for j in bounded)
    def span(v: np.ndarray) -> str:
        return f"{v.min():.4g}" if v.min() == v.max() else f"{v.min():.4g} to {v.max():.4g}"

    ends = [f"{side} {span(v)}" for side, v, open_end in
            (("lower", lo[bounded], -np.inf), ("upper", hi[bounded], np.inf))
            if np.any(v != open_end)]
    return f"bounds on {_count(bounded.size, 'feature')} ({', '.join(ends)})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def feature_terms_text(model: Any, feature_names: Any = None) -> str | None:
    """The per-feature terms of a linear model in words (the fit line of ``regmtl fit``, the
    comparison report): its unpenalized and excluded features (counted and named), the
    factors of the penalized ones (their range, as the fit uses them: rescaled unless
    ``rescale_factors=False``; glmnet's convention where a ridge part sees them as glmnet's),
    the bounds and ``standardize``; None without terms.

    ``feature_names``: the names to show (default: the model's ``feature_names_in_``, else
    ``x0``, ``x1``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.report import feature_terms_text
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 2))
    >>> m = rm.MultiTaskRegressor(penalty_factor=[0, 1, 2, np.inf], lower_bounds=0).fit(X, Y)
    >>> for part in feature_terms_text(m).split("; "):
    ...     print(part)
    unpenalized (1): x0
    excluded (1): x3
    factors 1 to 2 on 2 penalized features
    coefficients in [0, inf]
    """
    from .feature_terms import terms_of

    p = int(getattr(model, "n_features_in_", 0))
    T = int(getattr(model, "n_tasks_", 1))
    if not p or not hasattr(model, "penalty_factor"):
        return None
    known = getattr(model, "feature_names_in_", None)
    shown = known if feature_names is None else feature_names
    names = [str(n) for n in shown] if shown is not None and len(shown) == p else \
        [f"x{j}" for j in range(p)]
    terms = terms_of(model, p, T)
    if terms is None:
        return None
    F = terms.factor if terms.factor.ndim == 2 else terms.factor[:, None]
    parts = []
    free = [names[j] for j in np.flatnonzero((F == 0).all(axis=1))]
    gone = [names[j] for j in np.flatnonzero(np.isinf(F).all(axis=1))]
    if free:
        parts.append("unpenalized " + _named_list(free))
    some_free = int(((F == 0).any(axis=1) & ~(F == 0).all(axis=1)).sum())
    if some_free:
        parts.append(f"{_count(some_free, 'feature')} unpenalized in some tasks (factor 0)")
    if gone:
        parts.append("excluded " + _named_list(gone))
    some_out = int((np.isinf(F).any(axis=1) & ~np.isinf(F).all(axis=1)).sum())
    if some_out:
        parts.append(f"{_count(some_out, 'feature')} left out of some tasks (factor inf)")
    pen = (F > 0) & np.isfinite(F)
    weighted = F[pen]
    if weighted.size and not np.all(weighted == 1.0):
        n_pen = int(pen.any(axis=1).sum())
        span = (f"factor {weighted.min():.3g}" if weighted.min() == weighted.max()
                else f"factors {weighted.min():.3g} to {weighted.max():.3g}")
        given = terms_of(model, p, T, rescale=False)
        rescaled = given is not None and not np.array_equal(given.factor, terms.factor)
        parts.append(f"{span} on {_count(n_pen, 'penalized feature')}"
                     f"{' per task' if terms.factor.ndim == 2 else ''}"
                     f"{' (rescaled)' if rescaled else ''}"
                     f"{'; glmnet convention' if terms.convention == 'glmnet' else ''}")
    if terms.lower is not None or terms.upper is not None:
        words = _bounds_words(terms.lower, terms.upper, names)
        if words:
            parts.append(words)
    if terms.standardize == "task":
        parts.append("standardize: penalized in each task's own standard deviations")
    elif terms.standardize:
        parts.append("standardize: penalized in the columns' standard deviations")
    return "; ".join(parts) or None


def score_name(model: Any) -> str:
    """What a linear model's ``score`` measures: ``"R^2"`` for the squared loss, ``"D^2"``
    (the fraction of the loss's deviance explained) for the other regression losses,
    ``"accuracy"`` for a classifier.

    Parameters
    ----------
    model : MultiTaskRegressor or MultiTaskClassifier
        The model.

    Returns
    -------
    str
        The score's name.

    Examples
    --------
    >>> import regmtl as rm
    >>> from regmtl.report import score_name
    >>> score_name(rm.MultiTaskRegressor()), score_name(rm.MultiTaskRegressor(loss="poisson"))
    ('R^2', 'D^2')
    """
    from .datafits import make_loss

    if is_classifier(model):  # (a fit with one loss per task has probabilities too)
        return "accuracy"
    return "R^2" if make_loss(_model_loss(model)).quadratic else "D^2"


# --------------------------------------------------------------------- comparison report
#: Readable names of the result columns of a comparison.
_METRIC_NAMES = {"explained_variance": "EV", "explained_variance_task": "EV task avg",
                 "nmse": "nMSE", "rmse": "RMSE", "mse": "MSE", "auc": "AUC",
                 "accuracy": "accuracy", "log_loss": "log loss", "fit_time": "fit s / split",
                 "seconds_per_split": "fit s / split", "fit_seconds": "fit s, all splits",
                 "task_a": "task a", "task_b": "task b", "deviance_explained": "D²",
                 "poisson_deviance": "Poisson deviance", "gamma_deviance": "Gamma deviance",
                 "pinball_loss": "pinball loss", "huber_loss": "Huber loss",
                 "deviance": "deviance"}


_METRIC_WORDS = {"explained_variance": "explained variance (1 − SSE/SST over all test rows, as "
                                        "the multi-task literature reports it)",
                 "auc": "area under the ROC curve, averaged over tasks",
                 "accuracy": "accuracy, averaged over tasks",
                 "deviance_explained": "deviance explained D² (1 − deviance / the deviance of "
                                       "each task's best constant, as the estimators' score "
                                       "gives it for a loss other than the squared one), "
                                       "averaged over tasks",
                 "poisson_deviance": "mean Poisson deviance of the test rows",
                 "gamma_deviance": "mean Gamma deviance of the test rows",
                 "pinball_loss": "mean pinball loss of the test rows",
                 "log_loss": "mean log loss of the test rows"}


def _readable(column: Any) -> str:
    """A header for ``column``: its readable name, else the name with spaces for ``_``."""
    name = str(column)
    return _METRIC_NAMES.get(name, name.replace("_", " "))


def _short_model(name: Any) -> str:
    """A model's name without its parenthesized role: "ridge (independent)" -> "ridge"."""
    return str(name).split(" (")[0]


def fit_timings(comparison: Any) -> Any:
    """Fit seconds per model: ``comparison.timings`` (columns ``fit_seconds``,
    ``seconds_per_split``, indexed by model) when it has them, else from the summary's mean
    ``fit_time`` per split; None when neither is there."""
    import pandas as pd

    timings = getattr(comparison, "timings", None)
    if isinstance(timings, pd.DataFrame) and {"fit_seconds", "seconds_per_split"} <= set(
            timings.columns):
        return timings[["fit_seconds", "seconds_per_split"]]
    summary = comparison.summary
    if "fit_time" not in summary.columns:
        return None
    per_split = summary.set_index("model")["fit_time"].astype(float)
    return pd.DataFrame({"fit_seconds": per_split * comparison.n_splits,
                         "seconds_per_split": per_split})


def _headline(comparison: Any) -> str | None:
    """One sentence: the best model by the headline score, against the baseline."""
    comp = comparison
    summary = comp.summary.set_index("model")
    col = f"{comp.metric}_mean"
    if col not in summary.columns or summary[col].isna().all():
        return None
    best = summary[col].idxmax()
    score, base = _readable(comp.metric), summary.loc[comp.baseline, col]
    text = f"Best: {best}, {score} {summary.loc[best, col]:.4f}"
    if best == comp.baseline:
        return text + " (the baseline)."
    text += f" against {base:.4f} for {comp.baseline}"
    wins = str(summary.loc[best, "wins"]) if "wins" in summary.columns else ""
    if "/" in wins:
        won, total = wins.split("/", 1)
        text += f"; better on {won} of {total} tasks"
    return text + "."


#: The level at which a verdict calls a difference beyond noise.
_LEVEL = 0.05


def _p_text(p: float) -> str:
    """``p = 0.31``, ``p = 0.002``, ``p < 0.001``: two significant digits, three where two
    would round onto the level."""
    if p < 0.001:
        return "p < 0.001"
    text = f"{p:.2g}"
    if float(text) == _LEVEL:
        text = f"{p:.3g}"
    return f"p = {text}"


def _signed(value: float) -> str:
    """``+0.0045``, ``-0.0040``; a value that rounds to zero is ``+0.0000``."""
    text = f"{value:+.4f}"
    return "+0.0000" if float(text) == 0 else text


def _verdict_subject(comparison: Any, tests: Any) -> str | None:
    """The model the verdict is about: the best by mean headline score, or, when that is the
    strongest independent baseline itself, the best of the models that are not independent."""
    summary = comparison.summary.set_index("model")[f"{comparison.metric}_mean"].dropna()
    rows = tests.set_index("model")
    summary = summary[[m in rows.index for m in summary.index]]
    base = str(tests["baseline"].iloc[0])
    others = summary[[m != base and rows.loc[m, "role"] != "independent"
                      for m in summary.index]]
    if len(summary) and summary.idxmax() != base:
        return str(summary.idxmax())
    return str(others.idxmax()) if len(others) else None


def comparison_verdict(comparison: Any) -> str | None:
    r"""Is the best model's gain over the strongest independent baseline beyond noise?

    One paragraph from ``comparison.tests`` (see :func:`regmtl.compare`): the model (the best
    by mean headline score; when that is the strongest independent baseline, the best of the
    other models), its score against the baseline's, the mean paired difference over splits
    with its 95% interval and the corrected resampled t-test's p-value, the tasks it is
    better and worse on with the Wilcoxon signed-rank p-value, and the verdict at the 0.05
    level: the difference is *beyond* split-to-split noise when the test over
    splits gives :math:`p < 0.05`, else *within* it. With one split there is no test over
    splits, and the paragraph says so.

    Parameters
    ----------
    comparison : Comparison
        What :func:`regmtl.compare` returned.

    Returns
    -------
    str or None
        The paragraph; None without tests (no independent model was fitted, or a
        comparison made before tests existed) or without another model to compare.

    See Also
    --------
    comparison_report : Shows it under the results' headline.

    Examples
    --------
    >>> from regmtl import compare
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.report import comparison_verdict
    >>> data = make_multitask_regression(4, 40, 6, n_informative=3, random_state=0)
    >>> result = compare(data, models=["ridge", "l21"], splits=3, n_alphas=4, cv=2)
    >>> comparison_verdict(result).startswith("MTL L2,1: EV ")
    True
    """
    comp = comparison
    tests = getattr(comp, "tests", None)
    if tests is None or len(tests) == 0 or "baseline" not in tests.columns:
        return None
    model = _verdict_subject(comp, tests)
    if model is None:
        return None
    row = tests.set_index("model").loc[model]
    base = str(row["baseline"])
    base_score = float(tests.set_index("model").loc[base, "score"])
    diff = float(row["difference"])
    if not np.isfinite(diff):
        return None
    shown = _signed(diff)
    noun = "difference" if float(shown) == 0 else "gain" if diff > 0 else "loss"
    text = (f"{model}: {_readable(comp.metric)} {row['score']:.4f} against {base_score:.4f} "
            f"for {base}, the strongest independent baseline: {shown} ")
    n_splits = int(row["n_splits"])
    tested = n_splits >= 2 and np.isfinite(row["p_value"])
    if tested:
        text += (f"(95% CI {_signed(row['ci_low'])} to {_signed(row['ci_high'])} over "
                 f"{n_splits} splits, {_p_text(float(row['p_value']))})")
    else:
        text += f"(over {n_splits} split{'' if n_splits == 1 else 's'}: no test over splits)"
    n_tasks = int(row["n_tasks"])
    if n_tasks:
        wilcoxon = (f" (Wilcoxon {_p_text(float(row['wilcoxon_p']))})"
                    if np.isfinite(row["wilcoxon_p"]) else "")
        text += (f"; better on {int(row['tasks_better'])} and worse on "
                 f"{int(row['tasks_worse'])} of {n_tasks} tasks{wilcoxon}")
    text += ". "
    if not tested:
        return text + ("With fewer than 2 splits, whether the " + noun + " is beyond "
                       "split-to-split noise cannot be tested; run more splits.")
    p = float(row["p_value"])
    if p < _LEVEL:
        return text + (f"At the {_LEVEL:g} level, the {noun} is beyond split-to-split noise "
                       f"({_p_text(p)}).")
    return text + f"At the {_LEVEL:g} level, the {noun} is within split-to-split noise."


def _wins_header(comparison: Any) -> str:
    return f"tasks better than {_short_model(comparison.baseline)}"


def _mean_sd(means: Any, sds: Any) -> list[str]:
    """"mean ± sd" cells, all with the decimals that give the largest mean 4 digits."""
    means, sds = np.asarray(means, dtype=np.float64), np.asarray(sds, dtype=np.float64)
    top = np.nanmax(np.abs(means)) if np.isfinite(means).any() else 0.0
    d = int(np.clip(3 - np.floor(np.log10(top)), 0, 6)) if top > 0 else 4
    return ["" if m != m else f"{m:.{d}f} ± {v:.{d}f}" for m, v in zip(means, sds, strict=True)]


def _summary_tables(comparison: Any) -> tuple[Any, Any]:
    """The summary as two tables with readable headers: the key columns (model, the headline
    score and its sd, tasks better than the baseline) and every other column (scores as
    "mean ± sd", fit seconds, the median alpha)."""
    import pandas as pd

    comp = comparison
    summary = comp.summary.reset_index(drop=True)
    metric = comp.metric
    key = pd.DataFrame({"model": summary["model"].astype(str),
                        _readable(metric): summary[f"{metric}_mean"],
                        "sd": summary[f"{metric}_sd"]})
    if "wins" in summary.columns:
        key[_wins_header(comp)] = summary["wins"].astype(str)
    rest = pd.DataFrame({"model": key["model"]})
    used = {"model", "wins", f"{metric}_mean", f"{metric}_sd"}
    for col in summary.columns:
        if col.endswith("_mean") and f"{col[:-5]}_sd" in summary.columns and col not in used:
            name = col[:-5]
            rest[_readable(name)] = _mean_sd(summary[col], summary[f"{name}_sd"])
            used |= {col, f"{name}_sd"}
    timings = fit_timings(comp)
    if timings is not None:
        for col, fmt in (("seconds_per_split", "{:.2f}"), ("fit_seconds", "{:.1f}")):
            values = timings[col].reindex(summary["model"]).to_numpy(dtype=np.float64)
            rest[_readable(col)] = ["" if v != v else fmt.format(v) for v in values]
        used.add("fit_time")
    for col in summary.columns:
        if col not in used:
            name = "alpha (median)" if col == "alpha" else _readable(col)
            rest[name] = summary[col].to_numpy()
    return key, rest


def _readable_frame(df: Any) -> Any:
    """``df`` with readable column headers."""
    return df.rename(columns={c: _readable(c) for c in df.columns})

def _best_shared(comparison: Any) -> str | None:
    """The multi-task model with the best mean score (None if there is none)."""
    summary = comparison.summary
    roles = comparison.scores.drop_duplicates("model").set_index("model")["role"]
    mtl = [m for m in summary["model"] if roles.get(m) in ("multi-task", "user")]
    if not mtl:
        return None
    col = f"{comparison.metric}_mean"
    part = summary.set_index("model").loc[mtl, col]
    return str(part.idxmax())


def comparison_report(comparison: Any, *, title: str | None = None,
                      data_name: str = "data", created: Any = None,
                      n_jobs: int | None = None) -> Report:
    """A report of a :func:`regmtl.compare` result.

    The report explains the protocol and the tests, then shows the headline (the best model),
    the verdict on its gain over the strongest independent baseline
    (:func:`comparison_verdict`), the key columns of the summary (model, the
    headline score and its sd, the tasks better than the baseline; readable headers, narrow
    enough for a laptop screen) with the other columns folded below it, the per-model scores
    with their 95% intervals beside each model's difference to the strongest independent
    baseline (:func:`~regmtl.plotting.plot_comparison`), the per-task scores of the best multi-task
    model against the baseline (:func:`~regmtl.plotting.plot_task_scores`), that model's
    coefficients, regularization path and inner CV curve on the first split, the models'
    per-feature terms (``compare(feature_terms=...)``: unpenalized and excluded features,
    factors, bounds, standardization; ``feature_terms_text``), the task relatedness
    measured from the independent baseline (when it was fitted), and the chosen parameters of
    every model and split (folded).

    Parameters
    ----------
    comparison : Comparison
        What :func:`regmtl.compare` returned.
    title : str, default=None
        The title; default ``"regmtl comparison: <data_name>"``.
    data_name : str, default="data"
        Name of the data set in the default title.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).
    n_jobs : int, default=None
        Processes that draw the figures (the calling one included; -1: one per core).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`, or add more blocks first.

    See Also
    --------
    regmtl.compare : Runs the comparison.
    relatedness_report : The report of a task relatedness analysis.

    Examples
    --------
    >>> from regmtl import compare
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.report import comparison_report
    >>> data = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    >>> result = compare(data, models=["pooled", "l21"], splits=2, n_alphas=4)
    >>> report = comparison_report(result, data_name="synthetic", created="2024-01-01")
    >>> report.title
    'regmtl comparison: synthetic'
    >>> report.write("comparison.html").name
    'comparison.html'
    """

    check_n_jobs(n_jobs)
    comp = comparison
    metric = comp.metric
    T, p = len(comp.task_names), len(comp.feature_names)
    fit_loss = getattr(comp, "loss", None)
    if fit_loss is None:
        fit_loss = "logistic" if comp.kind == "binary" else "squared"
    rep = Report(title or f"regmtl comparison: {data_name}",
                 f"{T} tasks, {p} features, {comp.n_splits} {comp.split_kind} train/test "
                 f"split(s), {comp.kind}, loss {_loss_words(fit_loss)}", created=created)
    key, rest = _summary_tables(comp)
    score = _readable(metric)
    rep.add_text(
        "Every model is fitted on the training rows of each split, its regularization chosen "
        "by cross-validation inside every task of the training part only, and scored on the "
        "test rows. *Independent* models learn each task alone, each task choosing its own "
        "alpha, except those whose name says *one alpha* (one alpha for all tasks); *pooled* "
        "fits one slope vector to all tasks' rows with a level (intercept) per task, the *MTL* "
        "models share through their penalty. "
        f"*{score}*: {_METRIC_WORDS.get(metric, metric)}; mean and standard deviation (*sd*) "
        f"over splits; *{_wins_header(comp)}*: tasks whose {score} (averaged over splits) beats "
        f"{comp.baseline}'s. Whole job: {comp.elapsed:.1f} s."
    )
    verdict = comparison_verdict(comp)
    if verdict:
        rep.add_text(
            "Is a gain real? Every model is tested against the *strongest independent "
            "baseline* (the independent model with the best mean score), two-sided at the "
            f"{_LEVEL:g} level: over splits, the paired differences of the split scores by the "
            "corrected resampled t-test of Nadeau & Bengio (2003), whose variance allows for "
            "the overlap of the splits' training rows (a plain paired t-test would be too "
            "confident); over tasks, the tasks better and worse and the Wilcoxon signed-rank "
            "test of the split-averaged differences.")
    rep.add_heading("Results")
    headline = _headline(comp)
    if headline:
        rep.add_text(f"**{headline}**")
    if verdict:
        rep.add_text(verdict)
    rep.add_table(key, caption=f"Test {score} over {comp.n_splits} split(s)",
                  float_format="{:.4f}")
    rep.add_table(rest, caption="Other scores (mean ± sd over splits), fit seconds and the "
                  "median alpha chosen", details="More columns: other scores, time, alpha")
    tests = getattr(comp, "tests", None)
    if tests is not None and len(tests):
        base = tests["baseline"].iloc[0]
        caption = (f"{score}: mean with its 95% interval over splits (left); difference to "
                   f"{base}, the strongest independent baseline, with its 95% interval and "
                   "p-value (right; filled: beyond noise at the "
                   f"{_LEVEL:g} level)")
    else:
        tests = None
        caption = f"{score}: mean with its 95% interval over splits"
    rep._defer_figure(delayed(_plot_png)("plot_comparison", comp.summary, metric=metric,
                                         tests=tests, n_splits=comp.n_splits),
                      caption=caption)
    best = _best_shared(comp)
    task_metric = metric if metric in comp.scores else "accuracy"
    if best is not None and best != comp.baseline:
        rep._defer_figure(delayed(_plot_png)("plot_task_scores", comp.scores,
                                             baseline=comp.baseline, model=best,
                                             metric=task_metric),
                          caption=f"Per-task {_readable(task_metric)}: {best} against "
                                  f"{comp.baseline}")
    model = comp.models.get(best) if best is not None else None
    if model is not None and hasattr(model, "coef_"):
        rep.add_heading(f"{best}, first split")
        rows, caption = comp.task_names, "Coefficients (tasks x features)"
        classes = getattr(model, "classes_", None)
        if np.shape(model.coef_)[0] != len(comp.task_names) and isinstance(classes, list):
            # the multinomial loss: a row per class of each task
            rows = [f"{task}: {cls}" for task, cl in zip(comp.task_names, classes, strict=True)
                    for cls in cl]
            caption = "Coefficients (a row per class of each task x features)"
        rep._defer_figure(delayed(_plot_png)("plot_coefficients", model.coef_,
                                             feature_names=comp.feature_names,
                                             task_names=rows),
                          caption=caption)
        if hasattr(model, "penalty_") and comp.data_first_split:
            Xtr, _, ytr, _ = comp.data_first_split
            rep._defer_figure(delayed(_path_png)(Xtr, ytr, model.penalty_, fit_loss,
                                                 model.alphas_,
                                                 model.tol, comp.feature_names),
                              caption="Regularization path on the training rows")
        if hasattr(model, "cv_results_") and "mean_test_score" in model.cv_results_:
            rep._defer_figure(delayed(_plot_png)("plot_cv_curve", model.cv_results_,
                                                 best=model.alpha_, n_splits=model.n_splits_),
                              caption="Inner cross-validation curve (±1 standard error)")
    _comparison_terms(rep, comp)
    _comparison_relatedness(rep, comp)
    rep.add_heading("Chosen parameters")
    rep.add_table(_readable_frame(_chosen_parameters(comp.choices)),
                  caption="Per model and split; alpha per task: its median, range and count "
                          "(the full list is in the result's choices, column alphas)",
                  details=f"The parameters every model chose on each of the {comp.n_splits} "
                          "split(s)")
    return rep._draw(n_jobs)


def _comparison_terms(rep: Report, comp: Any) -> None:
    """The per-feature terms of the models of a comparison (``compare(feature_terms=...)``),
    read from the models fitted on the first split: one line where every model that has
    terms has the same, else one per model."""
    texts = {}
    for name, model in (getattr(comp, "models", None) or {}).items():
        text = feature_terms_text(model, comp.feature_names)
        if text:
            texts[name] = text
    if not texts:
        return
    rep.add_heading("Per-feature terms")
    rep.add_text("Penalty factors, unpenalized and excluded features, bounds and "
                 "standardization, as the models of regmtl took them (on the features the "
                 "comparison fitted: bounds in their units).")
    if len(set(texts.values())) == 1:
        rep.add_text(f"{', '.join(texts)}: {next(iter(texts.values()))}.")
    else:
        for name, text in texts.items():
            rep.add_text(f"{name}: {text}.")


def _value_summary(value: Any) -> Any:
    """A cell of the chosen parameters as a reader takes it in: a number or a name as it is,
    several values (one per task) as ``"median m, range lo to hi (n values)"``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return value
    try:
        values = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):  # not numbers: how many
        return f"{len(value)} values" if hasattr(value, "__len__") else str(value)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return f"{len(values)} values, none finite"
    return (f"median {np.median(finite):.4g}, range {finite.min():.4g} to {finite.max():.4g} "
            f"({len(values)} values)")


def _chosen_parameters(choices: Any) -> Any:
    """The chosen parameters of a comparison as the report shows them.

    One row per model and split, as :attr:`regmtl.Comparison.choices`; a parameter chosen per
    task (``alphas``: one alpha per task) is summarized as its median, range and count in a
    column ``alpha per task``, beside ``alpha`` (their median). The full lists stay in
    ``choices``.

    Parameters
    ----------
    choices : DataFrame
        :attr:`regmtl.Comparison.choices`.

    Returns
    -------
    DataFrame
        A copy with every cell a number or text.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from regmtl.report import _chosen_parameters
    >>> choices = pd.DataFrame({"model": ["ridge (independent)"], "split": [0],
    ...                         "alpha": [0.5], "alphas": [np.array([0.1, 0.5, 2.0])]})
    >>> _chosen_parameters(choices)["alpha per task"].iloc[0]
    'median 0.5, range 0.1 to 2 (3 values)'
    """
    out = choices.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [_value_summary(v) for v in out[col]]
    return out.rename(columns={"alphas": "alpha per task"})


# --------------------------------------------------------------------- relatedness
def _relatedness_numbers(rel: Any) -> Any:
    import pandas as pd

    rows = [("method", rel.method), ("similarity", rel.similarity),
            ("tasks", rel.n_tasks),
            ("statistic: mean |similarity| off the diagonal", rel.statistic),
            ("unrelated tasks: mean of the statistic", rel.null_mean),
            ("unrelated tasks: 95% quantile of the statistic", rel.null_quantile),
            ("p-value", rel.p_value), ("permutations", rel.n_permutations),
            ("single unrelated pairs: 95% quantile of |similarity|", rel.pair_threshold),
            ("groups of related tasks", len(rel.groups))]
    if rel.alpha is not None:
        rows.append(("L2 alpha (cross-validated)", rel.alpha))
    if rel.features is not None and rel.n_features is not None:
        rows.append(("features compared", f"{len(rel.features)} of {rel.n_features}"))
    return pd.DataFrame({"quantity": [r[0] for r in rows],
                         "value": [r[1] if isinstance(r[1], str) else f"{r[1]:.4g}"
                                   for r in rows]})


def _add_relatedness(rep: Report, rel: Any, *, level: int = 2, top: int = 15) -> Report:
    """The verdict, the numbers, the matrix and the groups of a :class:`Relatedness`."""
    import pandas as pd

    rep.add_text(f"**{rel.verdict}**")
    rep.add_table(_relatedness_numbers(rel), caption="Relatedness against unrelated tasks")
    rep._defer_figure(delayed(_plot_png)("plot_relatedness", rel),
                      caption=f"Pairwise {rel.similarity}, tasks in dendrogram order; boxes: "
                              "groups of related tasks")
    groups = rel.groups
    if groups:
        shown = 30
        table = pd.DataFrame({
            "group": np.arange(1, len(groups) + 1), "tasks": [len(g) for g in groups],
            "members": [", ".join(map(str, g[:shown])) + (f" (+{len(g) - shown} more)"
                                                         if len(g) > shown else "")
                        for g in groups]})
        rep.add_table(table, caption="Groups of related tasks")
    pairs = rel.to_frame().head(top)
    rep.add_table(_readable_frame(pairs), caption=f"The {len(pairs)} most similar pairs")
    return rep


def relatedness_report(rel: Any, *, title: str | None = None, data_name: str = "data",
                       created: Any = None) -> Report:
    """A report of a :func:`regmtl.task_relatedness` result.

    The report explains the method, then shows the verdict, the test's numbers (statistic,
    its distribution for unrelated tasks, p-value), the similarity matrix
    (:func:`~regmtl.plotting.plot_relatedness`), the groups of related tasks and the most
    similar pairs.

    Parameters
    ----------
    rel : Relatedness
        What :func:`regmtl.task_relatedness` returned.
    title : str, default=None
        The title; default ``"regmtl task relatedness: <data_name>"``.
    data_name : str, default="data"
        Name of the data set in the default title.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`, or add more blocks first.

    See Also
    --------
    regmtl.task_relatedness : Measures the relatedness.
    comparison_report : The report of a model comparison.

    Examples
    --------
    >>> from regmtl import MultiTaskRegressor, task_relatedness
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.report import relatedness_report
    >>> data = make_multitask_regression(4, 30, 5, n_informative=3, random_state=0)
    >>> model = MultiTaskRegressor(penalty="l2", alpha=0.01).fit(data.X, data.y)
    >>> rel = task_relatedness(model=model, n_permutations=50)
    >>> report = relatedness_report(rel, data_name="synthetic", created="2024-01-01")
    >>> report
    Report('regmtl task relatedness: synthetic', 7 blocks)
    """
    rep = Report(title or f"regmtl task relatedness: {data_name}",
                 f"{rel.n_tasks} tasks, {rel.similarity} of "
                 f"{'residuals' if rel.method == 'residual' else 'coefficients'} "
                 f"({rel.method}), {rel.n_permutations} permutations", created=created)
    rep.add_text(
        "Every task gets a vector (its ridge coefficients fitted alone, a model's "
        "coefficients, or its out-of-fold residuals) and every pair of tasks a similarity. "
        "The statistic, the mean absolute similarity off the diagonal, is compared with its "
        "distribution over draws of *unrelated* tasks: each task's coefficients permuted "
        "across features with random signs (or its residuals permuted across rows). Groups "
        "come from average-linkage clustering on 1 - similarity, cut where tasks stop being "
        "more alike than 95% of unrelated pairs."
    )
    rep.add_heading("Verdict")
    return _add_relatedness(rep, rel)._draw()


def _comparison_relatedness(rep: Report, comp: Any) -> None:
    """A "Task relatedness" section from the independent ridge (logistic) baseline of the
    first split, when the comparison fitted it."""
    from .relatedness import is_independent, task_relatedness

    roles = comp.scores.drop_duplicates("model").set_index("model")["role"]
    label, base = next(((name, m) for name, m in comp.models.items()
                        if roles.get(name) == "independent" and hasattr(m, "coef_")
                        and is_independent(m)), (None, None))
    if base is None or len(comp.task_names) < 2:
        return
    rep.add_heading("Task relatedness")
    try:
        rel = task_relatedness(model=base, task_names=comp.task_names)
    except ValueError as exc:  # say why rather than lose the whole report
        rep.add_text(f"Not computed from the fits of {label}: {exc}")
        return
    rep.add_text(f"From the coefficients of {label} on the first split "
                 "(each task fitted alone on the standardized training rows), compared with "
                 f"unrelated tasks ({rel.n_permutations} permutations). See `regmtl "
                 "relatedness` for the same on all rows.")
    _add_relatedness(rep, rel, top=10)


# --------------------------------------------------------------------- deep training
def _training_parts(model: Any) -> tuple[Any, dict | None, int | None, Any, dict]:
    """(history with readable task names, loss scales, best epoch, the trainer or None,
    the net's task name -> readable name)."""
    import pandas as pd

    if isinstance(model, pd.DataFrame):
        return model, None, None, None, {}
    history = getattr(model, "history_", None)
    if history is None:
        raise ValueError("training_report: pass a fitted regmtl.deep Trainer, a deep "
                         "estimator or a training history (DataFrame).")
    trainer = model if hasattr(model, "net") and hasattr(model, "weighting") else \
        getattr(model, "trainer_", None)
    names: dict[str, str] = {}
    if hasattr(model, "tasks_"):  # a wrapper: its net names task k "t{k}"
        names = {f"t{k}": str(label) for k, label in enumerate(model.tasks_)}
    scales = getattr(trainer, "loss_scale_", None) if trainer is not None else None
    if scales is not None and not getattr(trainer, "normalize_losses", True):
        scales = None

    def rename(col: str) -> str:
        parts = str(col).split("/")
        return "/".join(names.get(p, p) if i else p for i, p in enumerate(parts))

    history = history.rename(columns=rename) if names else history
    if scales is not None and names:
        scales = {names.get(k, k): v for k, v in scales.items()}
    return history, scales, getattr(model, "best_epoch_", None), trainer, names


def _balance_text(history: Any, rule: Any, higher: dict | None, trainer: Any = None,
                  names: dict | None = None) -> str:
    """The Balance section's verdict: which task dominated, and whether it suppressed
    another (the rule of ``regmtl.deep.diagnostics``: the shares' floor by the tasks'
    weights, and the references the fit measured, each task trained alone, where it did)."""
    from .deep.diagnostics import dominance as find_dominance
    from .deep.diagnostics import static_weights

    n = rule.epochs
    last = {1: "the last epoch", 2: "the last two epochs", 3: "the last three epochs"}.get(
        n, f"the last {n} epochs")
    names = names or {}
    weights = references = alone = None
    if trainer is not None and getattr(trainer, "tasks", None):
        weights = {names.get(k, k): v for k, v in static_weights(trainer).items()}
        fit = getattr(trainer, "dominance_", None)
        measured = [s for s in (fit.others if fit is not None else ()) if s.measured is not None]
        references = {_renamed(s.column, names): s.measured for s in measured} or None
        alone = measured[0].alone_epochs if measured else None
    found = find_dominance(history, rule.share, n, levels=rule.levels, higher=higher,
                           tol=rule.tol, floor=rule.floor, weights=weights,
                           references=references, reference_epochs=alone)
    if found is None:
        shares = history[[c for c in history.columns
                          if str(c).startswith("grad_share/")]].iloc[-n:].mean()
        if shares.notna().any():
            top = shares.idxmax().split("/", 1)[1]
            return (f"**No task dominated the shared layers** (largest share over {last}: "
                    f"{top}, {shares.max():.0%}).")
        return (f"**The gradient shares were not measured in {last}** (the history holds "
                "NaN there), so the balance of the shared layers is unknown.")
    head = (f"**Task {found.task} dominated the shared layers**: it wrote {found.share:.0%} "
            f"of their gradient norm over {last}")
    floor = ("" if rule.floor is None else
             f"its gradient share stayed under {rule.floor:.0%} of its share by the tasks' "
             "weights and ")
    rule_text = (f"(a task is suppressed when {floor}even its best of those epochs is more "
                 f"than {found.tol:.0%} below its best of the run, its single-task level, or "
                 "what it reached trained alone from the fit's start)")
    if found.suppressed:
        return (f"{head}, and **suppressed {', '.join(s.task for s in found.suppressed)}**: "
                + "; ".join(s.describe() for s in found.suppressed) + f" {rule_text}.")
    clauses = "; ".join(s.describe() for s in found.others)
    return (f"{head}, but suppressed no task" + (f": {clauses}" if clauses else "")
            + f" {rule_text}.")


def _add_expert_use(rep: Report, usage: Any, names: dict) -> None:
    """The Experts section: a table per level (gates' shares of the experts, entropy) and
    the collapse warning."""
    def readable(label: str) -> str:
        owner, _, rest = str(label).partition("[")
        return names.get(owner, owner) + ("[" + rest if rest else "")

    rep.add_heading("Expert use")
    rep.add_text(f"Each gate's mean share of each expert over {usage.n_rows} rows (the "
                 "validation data, else training rows; each row of shares sums to 1), and its "
                 "mean *entropy* against the most it can be, log K (a uniform gate): 0 means "
                 "it picks one expert on every row. An expert is *unused* when every gate "
                 "reading it gives it under a tenth of a uniform share.")
    if usage.warning is not None:
        rep.add_text(f"**Expert collapse.** {usage.warning.split(': ', 1)[1]}")
    else:
        rep.add_text("**No collapse**: no level has every task's gate on one expert, or most "
                     "of its experts unused.")
    g = usage.gates
    one = g[(g["top_share"] >= 0.9) & (g["max_entropy"] > 0)]
    if usage.warning is None and len(one):
        rep.add_text("Gates on one expert (at least 90 % of their weight): " + ", ".join(
            f"{names.get(gate, gate)} ({readable(row.top_expert)}, {row.top_share:.0%}"
            + (f", level {lv}" if len(usage.levels) > 1 else "") + ")"
            for (lv, gate), row in one.iterrows()) + ".")
    if usage.unused:
        rep.add_text("Unused experts: " + ", ".join(
            f"{readable(e)} (level {lv})" for lv, e in usage.unused) + ".")
    levels = usage.levels
    for level in levels:
        table = usage.table(level).rename(index=lambda g: names.get(g, g),
                                          columns=readable)
        table = table.rename(columns={"max_entropy": "log K", "top_expert": "top expert",
                                      "top_share": "top share"})
        table["top expert"] = table["top expert"].map(readable)
        rep.add_table(table, caption="Gates and experts" + (
            f", level {level}" if len(levels) > 1 else ""), float_format="{:.3g}",
            details=f"{len(table)} gates" if len(table) > 20 else None)


def _add_modality_importance(rep: Report, table: Any) -> None:
    """The Modalities section: a table per task of its loss with each modality masked."""
    rep.add_heading("Modality importance")
    rep.add_text("Each task's validation loss (its own: squared error, log loss, Poisson "
                 "deviance) with nothing masked, then with one modality set missing on every "
                 "row (the net reads its learned missing vector): a large *increase* means the "
                 "task leans on that modality, one near 0 that it does without it.")
    shown = table.rename(columns={"masked_loss": "masked loss",
                                  "relative_increase": "relative increase"})
    for task, part in shown.groupby("task", sort=False):
        rep.add_table(part.drop(columns="task").set_index("modality"),
                      caption=f"Modality importance: {task}", float_format="{:.4g}")


def _task_table(history: Any, tasks: list[str], scales: dict | None,
                best: int | None) -> Any:
    """One row per task: losses, validation metrics at the best epoch, weight, share."""
    import pandas as pd

    row_best = history.iloc[(best or len(history)) - 1]
    last = history.iloc[-1]
    tail = history.iloc[-3:]
    rows = []
    for t in tasks:
        row = {"task": t, "training loss (last)": last[f"loss/{t}"]}
        if f"val_loss/{t}" in history.columns:
            row["validation loss (best)"] = row_best[f"val_loss/{t}"]
            for c in history.columns:
                if str(c).startswith(f"val/{t}/"):
                    row[f"{str(c).rsplit('/', 1)[1]} (best)"] = row_best[c]
        row["weight (last)"] = last[f"weight/{t}"]
        if f"grad_share/{t}" in history.columns:
            row["gradient share (last 3)"] = tail[f"grad_share/{t}"].mean()
        if scales is not None:
            row["constant's loss"] = scales.get(t, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def training_report(model: Any, *, title: str | None = None, created: Any = None,
                    dominance: Any = 0.9, n_jobs: int | None = None) -> Report:
    """A report of a deep multi-task training: per-task losses, weights, gradient balance.

    It states whether one task dominated the shared layers (its share of their gradient norm
    above ``dominance`` over the last three epochs) and whether it suppressed another (that
    task's validation metric more than 10 % below its best or single-task level, the rule of
    ``regmtl.deep.diagnostics``), tabulates each task (training loss,
    validation loss and metrics at the best epoch, weight, gradient share, the constant
    predictor's loss the trainer divides by), and plots the losses against the constant
    predictor's (:func:`~regmtl.plotting.plot_training_history`), the weights, and the
    gradient shares and cosines (:func:`~regmtl.plotting.plot_gradient_balance`). For MMoE,
    CGC and PLE it adds the trainer's expert use (``expert_usage_``, see
    ``regmtl.deep.expert_use``): a table per level of each gate's mean share of each expert
    and its entropy, the unused experts, and a collapse warning. For an estimator fitted on
    ``Modalities`` it adds which modality each task leans on (``modality_importance_``, see
    ``regmtl.deep.modality_use``): a table per task of the rise of its validation loss when
    each modality is masked.

    Parameters
    ----------
    model : Trainer, deep estimator or DataFrame
        A fitted :class:`~regmtl.deep.Trainer`, a fitted
        :class:`~regmtl.deep.DeepMultiTaskRegressor` (classifier, mixed model), or a
        training history.
    title : str, default=None
        The title; default ``"regmtl deep training"``.
    created : datetime, date or str, default=None
        The footer date (see :class:`Report`).
    dominance : float or DominanceRule, default=0.9
        The gradient share above which a task is said to dominate, or the whole rule
        (:class:`~regmtl.deep.diagnostics.DominanceRule`: single-task levels, tolerance,
        epochs); with a share, the trainer's own rule gives the levels and tolerance.
    n_jobs : int, default=None
        Processes that draw the figures (the calling one included; -1: one per core).

    Returns
    -------
    Report
        Write it with :meth:`Report.write`.

    Raises
    ------
    ValueError
        If ``model`` holds no training history (or one without ``loss/TASK`` and
        ``weight/TASK`` columns), or ``dominance`` is not in (0, 1].

    See Also
    --------
    regmtl.deep.Trainer : Logs the history.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.deep import HardSharing, TaskSpec, Trainer, set_seed
    >>> from regmtl.report import training_report
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 3))
    >>> y = {"price": 1000 * X[:, 0], "click": (X[:, 1] > 0).astype(float)}
    >>> set_seed(0)
    >>> net = HardSharing(3, [TaskSpec("price"), TaskSpec("click", kind="binary")], (8,))
    >>> trainer = Trainer(net, max_epochs=3, batch_size=16).fit((X, y), val=(X, y))
    >>> report = training_report(trainer, created="2024-01-01")
    >>> report.write("training.html").name
    'training.html'
    """
    from .deep.diagnostics import DominanceRule

    title = check_option("title", title, "str", none=True)
    if not isinstance(dominance, DominanceRule):
        dominance = check_option("dominance", dominance, "real", low=0, low_open=True, high=1)
    check_n_jobs(n_jobs)
    check_created(created)
    history, scales, best, trainer, names = _training_parts(model)
    tasks = [str(c).split("/", 1)[1] for c in history.columns if str(c).startswith("loss/")]
    if not tasks or any(f"weight/{t}" not in history.columns for t in tasks):
        raise ValueError("training_report: the history has no loss/TASK and weight/TASK "
                         "columns; pass a deep Trainer's history (Trainer.history).")
    if len(history) == 0:
        raise ValueError("training_report: the history holds no epoch (n_iter_ = 0), so "
                         "there is nothing to report; pass a model trained for at least one "
                         "epoch.")
    if best is not None and not 0 <= best <= len(history):
        raise ValueError(f"training_report: best_epoch_ = {best} is not one of the "
                         f"history's {len(history)} epochs; the model's record is "
                         "inconsistent (refit it).")
    rep = Report(title or "regmtl deep training",
                 f"{len(tasks)} tasks, {len(history)} epochs"
                 + (f", best epoch {best}" if best else ""), created=created)
    normalized = ("Losses are divided by each task's constant predictor's loss (the training "
                  "mean, base rate or class frequencies): 1 is the constant predictor, below 1 "
                  "the task has learned something. " if scales is not None else "")
    rep.add_text(normalized + "The *gradient share* of a task is its part of the shared "
                 "layers' gradient norm; a share near 1 means one task writes them alone, a "
                 "negative *cosine* that two tasks pull them apart.")
    rep.add_heading("Balance")
    if any(str(c).startswith("grad_share/") for c in history.columns):
        rule, higher = _judging(dominance, trainer, names, tasks)
        rep.add_text(_balance_text(history, rule, higher, trainer, names))
        rep._defer_figure(delayed(_plot_png)("plot_gradient_balance", history,
                                             dominance=rule.share),
                          caption="Gradient shares (solid) and pairwise cosines (dashed)")
    else:
        rep.add_text("The gradient balance was not logged (one task, grad_balance=0, or a "
                     "distributed run).")
    rep.add_table(_task_table(history, tasks, scales, best), caption="Per task",
                  float_format="{:.4g}")
    rep.add_heading("Over the epochs")
    rep._defer_figure(delayed(_plot_png)("plot_training_history", history, what="loss",
                                         normalized=scales is not None),
                      caption="Training (solid) and validation (dashed) losses")
    rep._defer_figure(delayed(_plot_png)("plot_training_history", history, what="weight"),
                      caption="Mean effective weight of each epoch")
    usage = getattr(trainer, "expert_usage_", None)
    if usage is not None:
        _add_expert_use(rep, usage, names)
    importance = getattr(model, "modality_importance_", None)
    if importance is not None:
        _add_modality_importance(rep, importance)
    return rep._draw(n_jobs)


def _judging(dominance: Any, trainer: Any, names: dict,
             tasks: list[str]) -> tuple[Any, dict]:
    """(the dominance rule in the history's task names, the metrics' directions): a rule as
    given; a share with the trainer's levels and tolerance when it has a rule."""
    import dataclasses

    from .deep.diagnostics import DominanceRule, check_levels, metric_directions

    higher = metric_directions(getattr(trainer, "tasks", None))
    if isinstance(dominance, DominanceRule):
        rule = dominance
    else:
        own = getattr(trainer, "dominance", None)
        rule = DominanceRule(dominance) if not isinstance(own, DominanceRule) else \
            dataclasses.replace(own, share=dominance, levels={
                _renamed(k, names): v for k, v in (own.levels or {}).items()} or None)
    check_levels(rule.levels, tasks, "dominance.levels")
    return rule, higher


def _renamed(key: str, names: dict) -> str:
    """A level's key (a task, or a column of one) in the history's readable task names."""
    parts = key.split("/")
    at = 0 if len(parts) == 1 else 1
    parts[at] = names.get(parts[at], parts[at])
    return "/".join(parts)
