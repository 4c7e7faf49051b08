"""``regmtl compare``: multi-task models against single-task and pooled baselines on the same
train/test splits (:func:`regmtl.compare`); prints the summary table, the verdict and notes,
writes the HTML or Markdown report, and ends with the time line of each model's fits.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from .losses import check_loss_count, loss_and_kind, loss_arguments
from .shared import data_arguments, int_at_least, load_data, print_table, safe_name


def compare_arguments(p: argparse.ArgumentParser) -> None:
    data_arguments(p)
    p.add_argument("--models", default="default",
                   help="comma-separated models (ridge, lasso, logistic, logistic_l1: an alpha "
                        "per task; ridge_one_alpha, lasso_one_alpha, logistic_one_alpha: one "
                        "alpha for all; unregularized, pooled, l21, trace, mean, clustered, "
                        "dirty; default: the standard set)")
    p.add_argument("--splits", type=int_at_least(1), default=10,
                   help="train/test splits (the data set's fixed ones first; default 10)")
    p.add_argument("--test-size", type=float, default=0.25,
                   help="test fraction of each task for random splits (default 0.25)")
    p.add_argument("--cv", type=int_at_least(2), default=3,
                   help="inner CV folds inside every task (default 3)")
    p.add_argument("--n-alphas", type=int_at_least(2), default=12,
                   help="values in each regularization grid (default 12)")
    p.add_argument("--n-jobs", type=int, default=-1,
                   help="parallel (split, model) fits (joblib; default -1: every core; the "
                        "result does not depend on it)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    loss_arguments(p, offset=False)
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/compare-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the table only")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (it shows "
                        "by default on a terminal)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no notes: the table, warnings, the report's path "
                        "and the time line only")


def _progress(args: argparse.Namespace) -> bool:
    """The progress bar: forced by --progress, off with --quiet, else on a terminal only."""
    if args.progress:
        return True
    return not args.quiet and sys.stderr.isatty()


def _summary_columns(comp: Any) -> list[tuple[str, str, str]]:
    """The printed columns of a comparison's summary: ``(key, header, format)``."""
    if comp.metric == "d2":  # a loss scored by its deviance (--loss poisson, ...)
        cols = [("model", "model", "{}"), ("d2_mean", "D2", "{:.4f}"),
                ("d2_sd", "sd", "{:.4f}"), ("deviance_mean", "deviance", "{:.4f}")]
    elif comp.kind == "regression":
        cols = [("model", "model", "{}"),
                ("explained_variance_mean", "EV", "{:.4f}"),
                ("explained_variance_sd", "sd", "{:.4f}"),
                ("explained_variance_task_mean", "EV task avg", "{:.4f}"),
                ("nmse_mean", "nMSE", "{:.4f}"), ("rmse_mean", "RMSE", "{:.3f}")]
    else:
        cols = [("model", "model", "{}"), ("auc_mean", "AUC", "{:.4f}"),
                ("auc_sd", "sd", "{:.4f}"), ("accuracy_mean", "accuracy", "{:.4f}")]
    return cols + [("wins", f"tasks > {comp.baseline.split(' ')[0]}", "{}"),
                   ("seconds_per_split", "fit s", "{:.2f}"), ("alpha", "alpha", "{:.4g}")]


def _model_names() -> dict[str, str]:
    """Model label -> the short name ``--models`` takes (e.g. "MTL trace norm" -> "trace")."""
    import importlib

    # the module, not the function regmtl.compare that the package exports under its name
    labels = getattr(importlib.import_module("..compare", __package__), "_LABELS", {})
    return {label: name for name, label in labels.items()} if isinstance(labels, dict) else {}


def _time_line(timings: Any, n_splits: int, total: float) -> str:
    """``time: trace 4.1 s, l21 1.2 s, ... (...; total 9.8 s)``: each model's fit seconds over
    all splits, the slowest first, then the wall time of the whole command."""
    if timings is None or timings.empty:
        return f"time: total {total:.1f} s"
    short = _model_names()
    fits = timings["fit_seconds"].astype(float).sort_values(ascending=False, kind="stable")
    parts = ", ".join(f"{short.get(m, m)} {v:.1f} s" for m, v in fits.items())
    return (f"time: {parts} (fitting, summed over {n_splits} split(s); total "
            f"{total:.1f} s)")


def run_compare(args: argparse.Namespace) -> int:
    from sklearn.exceptions import ConvergenceWarning

    from ..compare import compare
    from ..report import comparison_report, comparison_verdict, fit_timings

    t0 = time.perf_counter()
    say = (lambda *a, **k: None) if args.quiet else print
    loss = loss_and_kind(args)
    bunch, name = load_data(args)
    check_loss_count(loss, bunch)
    models = args.models if args.models == "default" else [
        m.strip() for m in args.models.split(",") if m.strip()]
    # rows as `regmtl datasets` counts them: a shared design's rows once, with the labels
    # the tasks read from them beside
    n_obs = sum(len(y) for y in bunch.y)
    n_rows = len(bunch.X_shared) if getattr(bunch, "X_shared", None) is not None else n_obs
    rows = f"{n_rows} rows" + (f" ({n_obs} task labels)" if n_obs != n_rows else "")
    say(f"{name}: {len(bunch.X)} tasks, {rows}, {len(bunch.feature_names)} features "
        f"({bunch.kind})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comp = compare(bunch, kind=args.kind, models=models, splits=args.splits,
                       test_size=args.test_size, cv=args.cv, n_alphas=args.n_alphas,
                       random_state=args.random_state, n_jobs=args.n_jobs,
                       progress=_progress(args), loss=loss)
    say(f"{comp.n_splits} {comp.split_kind} train/test split(s); alphas by {args.cv}-fold "
        f"CV inside every task of the training part, {args.n_alphas}-value grids\n")
    timings = fit_timings(comp)
    table = comp.summary
    if timings is not None:
        table = table.drop(columns=["seconds_per_split"], errors="ignore").merge(
            timings[["seconds_per_split"]], left_on="model", right_index=True, how="left")
    print_table(table, _summary_columns(comp))
    verdict = comparison_verdict(comp)
    if verdict:
        say(f"\nverdict: {verdict}")
    if comp.metric == "d2":
        if not args.quiet and len(comp.task_names) <= 12:  # (more: in the report)
            print("\nD2 per task (mean over the splits that score it):")
            per_model = comp.by_task.T.reset_index(names="model")
            print_table(per_model, [("model", "model", "{}")] + [
                (t, str(t), "{:.4f}") for t in comp.by_task.index])
        say("\nD2: deviance explained 1 - D/D0 per task on its test rows (D0: the deviance "
            "of the task's constant model fitted on its training rows), averaged over the "
            "tasks scored; deviance: the loss's mean deviance on the test rows.")
        scored = comp.tasks_scored
        say(f"tasks scored per split: {' '.join(map(str, scored['n_scored']))} of "
            f"{len(comp.task_names)}" + (
                " (a task whose test rows hold nothing to explain, e.g. no count, is left "
                "out of that split)" if (scored["n_scored"] < scored["n_tasks"]).any()
                else ""))
    elif comp.kind == "regression":
        say("\nEV: explained variance 1 - SSE/SST over all test rows (SST around their "
            "mean), as the MTL literature reports it; EV task avg: per task, then averaged. "
            "nMSE: MSE / Var(y) per task, weighted by rows. fit s: seconds per split.")
    short = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if short:
        say(f"\nnote: {len(short)} fit(s) or searches stopped short of their tolerance "
            f"(first: {short[0].message})")
    other = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    for w in other[:5]:
        print(f"warning: {w.message}")
    if not args.no_report:
        path = Path(args.report or f"regmtl-report/compare-{safe_name(name)}.html")
        rep = comparison_report(comp, data_name=name, n_jobs=args.n_jobs)
        path = rep.write(path)
        print(("" if args.quiet else "\n") + f"report: {path.resolve()}")
    print(_time_line(timings, comp.n_splits, time.perf_counter() - t0))
    return 0
