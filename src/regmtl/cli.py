"""The ``regmtl`` command: list data sets, compare models, check task relatedness, measure
transfer to new tasks, fit one model, predict with it.

Each subcommand is a ``(help, add_arguments, run)`` entry of :data:`COMMANDS`; ``run`` takes the
parsed arguments and returns an exit status. A problem with the user's input (a missing file or
column, a bad value) ends with one ``regmtl: error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser", "COMMANDS"]


class UsageError(ValueError):
    """An input problem to report in one line."""


# ---------------------------------------------------------------------------- data inputs
def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a data set name (see 'regmtl datasets') or a CSV/Parquet file "
                                "in long form")
    p.add_argument("--task-col", help="file input: the column naming each row's task")
    p.add_argument("--target", help="file input: the column to predict")
    p.add_argument("--features", help="file input: comma-separated feature columns (default: "
                                      "all other columns)")
    p.add_argument("--kind", choices=("auto", "regression", "binary"), default="auto",
                   help="file input: the kind of target (default: binary if two values)")
    p.add_argument("--data-home", help="folder holding the data sets (default: $REGMTL_DATA, "
                                       "else ./data)")


def _is_file(name: str) -> bool:
    low = name.lower()
    return low.endswith((".csv", ".csv.gz", ".parquet", ".pq")) or Path(name).is_file()


def _load(args: argparse.Namespace) -> tuple[Any, str]:
    """(Bunch, display name) from a data set name or a table file."""
    from .datasets import load_dataset, read_table

    if _is_file(args.data):
        if not args.task_col or not args.target:
            raise UsageError(f"{args.data}: a file needs --task-col and --target (the columns "
                             "of the task ids and of the values to predict).")
        features = args.features.split(",") if args.features else None
        return (read_table(args.data, task_col=args.task_col, target=args.target,
                           features=features, kind=args.kind), Path(args.data).name)
    kwargs = {"missing": "mean"} if args.data.lower().startswith("mulan/") else {}
    try:
        return load_dataset(args.data, data_home=args.data_home, **kwargs), args.data
    except FileNotFoundError as exc:
        raise UsageError(f"{exc} On the command line: --data-home DIR.") from None


def _print_table(df: Any, columns: list[tuple[str, str, str]]) -> None:
    """Columns ``(key, header, format)``; the first column left-aligned."""
    cells = [[h for _, h, _ in columns]]
    for _, row in df.iterrows():
        cells.append([f.format(row[k]) if k in row and row[k] == row[k] else "-"
                      for k, _, f in columns])
    widths = [max(len(r[j]) for r in cells) for j in range(len(columns))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------------------- datasets
def _datasets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-home", help="folder holding the data sets (default: $REGMTL_DATA, "
                                       "else ./data)")


def _run_datasets(args: argparse.Namespace) -> int:
    from .datasets import get_data_home, list_datasets

    table = list_datasets(args.data_home)
    table["here"] = np.where(table["shipped"], "shipped",
                             np.where(table["available"], "yes", "no"))
    _print_table(table, [("name", "name", "{}"), ("tasks", "tasks", "{}"),
                         ("samples", "rows", "{}"), ("features", "features", "{}"),
                         ("kind", "kind", "{}"), ("design", "design", "{}"),
                         ("here", "available", "{}")])
    print(f"\ndata home: {get_data_home(args.data_home)} (set --data-home or REGMTL_DATA); "
          "load one with regmtl.datasets.load_dataset(name)")
    return 0


# ---------------------------------------------------------------------------- compare
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value
    return parse


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    p.add_argument("--models", default="default",
                   help="comma-separated models (ridge, lasso, unregularized, logistic, "
                        "logistic_l1, pooled, l21, trace, mean, clustered, dirty; default: the "
                        "standard set)")
    p.add_argument("--splits", type=_int_at_least(1), default=10,
                   help="train/test splits (the data set's fixed ones first; default 10)")
    p.add_argument("--test-size", type=float, default=0.25,
                   help="test fraction of each task for random splits (default 0.25)")
    p.add_argument("--cv", type=_int_at_least(2), default=3,
                   help="inner CV folds inside every task (default 3)")
    p.add_argument("--n-alphas", type=_int_at_least(2), default=12,
                   help="values in each regularization grid (default 12)")
    p.add_argument("--n-jobs", type=int, default=-1,
                   help="parallel (split, model) fits (joblib; default -1: every core; the "
                        "result does not depend on it)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/compare-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the table only")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal (it shows "
                        "by default on a terminal)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no notes: the table, warnings, the report's path "
                        "and the time line only")


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _progress(args: argparse.Namespace) -> bool:
    """The progress bar: forced by --progress, off with --quiet, else on a terminal only."""
    if args.progress:
        return True
    return not args.quiet and sys.stderr.isatty()


def _summary_columns(comp: Any) -> list[tuple[str, str, str]]:
    """The printed columns of a comparison's summary: ``(key, header, format)``."""
    if comp.kind == "regression":
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
    labels = getattr(importlib.import_module(f"{__package__}.compare"), "_LABELS", {})
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


def _run_compare(args: argparse.Namespace) -> int:
    from sklearn.exceptions import ConvergenceWarning

    from .compare import compare
    from .report import _timings, comparison_report

    t0 = time.perf_counter()
    say = (lambda *a, **k: None) if args.quiet else print
    bunch, name = _load(args)
    models = args.models if args.models == "default" else [
        m.strip() for m in args.models.split(",") if m.strip()]
    n_rows = sum(len(y) for y in bunch.y)
    say(f"{name}: {len(bunch.X)} tasks, {n_rows} rows, {len(bunch.feature_names)} "
        f"features ({bunch.kind})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comp = compare(bunch, kind=args.kind, models=models, splits=args.splits,
                       test_size=args.test_size, cv=args.cv, n_alphas=args.n_alphas,
                       random_state=args.random_state, n_jobs=args.n_jobs,
                       progress=_progress(args))
    say(f"{comp.n_splits} {comp.split_kind} train/test split(s); alphas by {args.cv}-fold "
        f"CV inside every task of the training part, {args.n_alphas}-value grids\n")
    timings = _timings(comp)
    table = comp.summary
    if timings is not None:
        table = table.drop(columns=["seconds_per_split"], errors="ignore").merge(
            timings[["seconds_per_split"]], left_on="model", right_index=True, how="left")
    _print_table(table, _summary_columns(comp))
    if comp.kind == "regression":
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
        path = Path(args.report or f"regmtl-report/compare-{_safe_name(name)}.html")
        rep = comparison_report(comp, data_name=name, n_jobs=args.n_jobs)
        path = rep.write(path)
        print(("" if args.quiet else "\n") + f"report: {path.resolve()}")
    print(_time_line(timings, comp.n_splits, time.perf_counter() - t0))
    return 0


# ---------------------------------------------------------------------------- fit / predict
def _fit_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    p.add_argument("--penalty", default="l21",
                   help="l1, l2, elasticnet, l21, trace, mean, clustered, dirty, "
                        "sparse_lowrank (default l21)")
    p.add_argument("--alpha", default="auto",
                   help="penalty strength, or 'auto' to choose it by cross-validation")
    p.add_argument("--cv", type=_int_at_least(2), default=5, help="CV folds for --alpha auto")
    p.add_argument("--n-alphas", type=_int_at_least(2), default=30,
                   help="grid size for --alpha auto (default 30)")
    p.add_argument("--no-standardize", action="store_true",
                   help="fit on the raw features (default: z-scored, the scaling saved with "
                        "the model)")
    p.add_argument("--n-jobs", type=int, default=None)
    p.add_argument("--out", required=True, help="model file to write (.npz)")


def _user_labels(bunch: Any) -> list[np.ndarray]:
    """A binary table's targets in the file's own labels (the reader codes them 0/1), so the
    saved model predicts those labels: ints stay ints, strings stay strings."""
    classes = list(bunch.target_classes)
    if len({type(c) for c in classes}) == 1:
        labels = np.asarray(classes)
    else:  # labels of different types: keep each one as it is
        labels = np.empty(len(classes), dtype=object)
        labels[:] = classes
    return [labels[np.asarray(y, dtype=np.int64)] for y in bunch.y]


def _run_fit(args: argparse.Namespace) -> int:
    from .estimators import MultiTaskClassifier, MultiTaskRegressor
    from .scaling import fit_standardized
    from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV

    bunch, name = _load(args)
    binary = bunch.kind == "binary"
    if args.alpha == "auto":
        cls = MultiTaskClassifierCV if binary else MultiTaskRegressorCV
        est = cls(args.penalty, alphas=args.n_alphas, cv=args.cv, n_jobs=args.n_jobs)
    else:
        try:
            alpha = float(args.alpha)
        except ValueError:
            raise UsageError(f"--alpha {args.alpha!r}: give a number >= 0 or 'auto'.") from None
        cls = MultiTaskClassifier if binary else MultiTaskRegressor
        est = cls(penalty=args.penalty, alpha=alpha)
    ys = _user_labels(bunch) if binary else bunch.y
    fitted = fit_standardized(est, bunch.X, ys, task_names=bunch.task_names,
                              feature_names=[str(f) for f in bunch.feature_names],
                              standardize=not args.no_standardize)
    W = np.atleast_2d(fitted.coef_)
    n_active = int(np.count_nonzero(np.any(W != 0, axis=0)))
    cert = (f"duality gap {fitted.dual_gap_:.2e}" if hasattr(fitted, "dual_gap_")
            else f"KKT residual {fitted.kkt_residual_:.2e}")
    print(f"{name}: {len(bunch.X)} tasks, {sum(len(y) for y in bunch.y)} rows; penalty "
          f"{args.penalty}, alpha {fitted.alpha:.4g}"
          f"{' (by ' + str(args.cv) + '-fold CV)' if args.alpha == 'auto' else ''}; "
          f"{n_active} of {W.shape[1]} features used; {cert}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fitted.save(out)
    print(f"model: {out.resolve()}")
    return 0


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'regmtl fit'")
    p.add_argument("data", help="a CSV/Parquet file in long form (or a data set name)")
    p.add_argument("--task-col", help="the column naming each row's task")
    p.add_argument("--target", help="optional: the true values, to print the scores")
    p.add_argument("--data-home")
    p.add_argument("--out", help="CSV file to write: every column of the input, in its row "
                                 "order, then the predictions (default: print them beside "
                                 "the non-feature columns)")


def _verbatim(path: Path, frame: Any) -> Any:
    """The file's columns as it holds them, for the output: a CSV's cells as text (ids such
    as ``007`` stay ``007``, empty cells stay empty); a Parquet file's typed columns."""
    import pandas as pd

    from .datasets._table import _CSV, _suffix

    if _suffix(path) in _CSV:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.copy()


def _predict_columns(model: Any, frame: Any, names: list, task_col: str) -> dict[str, Any]:
    """``prediction`` (and ``probability`` of the positive class, for a classifier) of every
    row of ``frame``, in its order."""
    # task ids as the model stored them (a CSV may read '3' as the integer 3)
    known = {str(t): t for t in model.tasks_}
    task = np.array([known.get(str(t), t) for t in frame[task_col].to_numpy()], dtype=object)
    X = frame[list(names)]
    out = {"prediction": np.asarray(model.predict(X, task=task))}
    if hasattr(model, "predict_proba"):
        out["probability"] = model.predict_proba(X, task=task)[:, 1]
    return out


def _print_scores(model: Any, frame: Any, prediction: np.ndarray, task_col: str,
                  target: str) -> None:
    """The scores of the predictions against the file's ``target`` column."""
    from . import metrics

    scored = frame[[task_col, target]].assign(prediction=prediction)
    groups = [g for _, g in scored.groupby(task_col, sort=False)]
    if hasattr(model, "predict_proba"):
        _print_accuracy(model, scored, groups, target)
        return
    ys = [g[target].to_numpy(dtype=np.float64) for g in groups]
    fs = [g["prediction"].to_numpy() for g in groups]
    print(f"explained variance (all rows): "
          f"{metrics.explained_variance(ys, fs, average='pooled'):.4f}; RMSE (task "
          f"average): {metrics.rmse(ys, fs):.4f}")


def _run_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from .datasets._table import _read
    from .persistence import load

    model = load(args.model)
    names = getattr(model, "feature_names_in_", None)
    if not _is_file(args.data):
        raise UsageError(f"{args.data}: give a CSV/Parquet file with the feature columns and "
                         "--task-col.")
    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    path = Path(args.data)
    frame = _read(path)
    for col, flag in ((args.task_col, "--task-col"), (args.target, "--target")):
        if col is not None and col not in frame.columns:
            raise UsageError(f"{flag} {col!r} is not a column of {args.data}; columns: "
                             f"{', '.join(map(str, frame.columns))}.")
    if names is None:
        names = [c for c in frame.columns if c not in (args.task_col, args.target)]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{args.data} lacks the feature column(s) the model was fitted on: "
                         f"{', '.join(map(str, missing[:10]))}.")
    predicted = _predict_columns(model, frame, list(names), args.task_col)
    taken = [c for c in predicted if c in frame.columns]
    if taken:
        raise UsageError(f"{args.data} already has a column {taken[0]!r}, the name of the "
                         "predictions; rename it (the output keeps every input column).")
    if args.out:
        out = _verbatim(path, frame).assign(**predicted)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.out, index=False)
        print(f"predictions: {Path(args.out).resolve()} ({len(out)} rows, the input's "
              f"{len(frame.columns)} columns and {', '.join(predicted)})")
    else:
        shown = frame[[c for c in frame.columns if c not in set(names)]].assign(**predicted)
        with pd.option_context("display.max_rows", 20, "display.width", 120):
            print(shown)
    if args.target is not None:
        _print_scores(model, frame, predicted["prediction"], args.task_col, args.target)
    return 0


def _print_accuracy(model: Any, out: Any, groups: list, target: str) -> None:
    """Accuracy of the predicted labels against the file's, over all rows and per task."""
    from sklearn.metrics import accuracy_score

    per_task = model.classes_ if isinstance(model.classes_, list) else [model.classes_]
    labels = {v for c in per_task for v in np.asarray(c).tolist()}
    known = out[target].isin(list(labels)).to_numpy()
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise UsageError(f"--target {target!r}: row {i} holds {out[target].iloc[i]!r}, not one "
                         f"of the labels the model was fitted on "
                         f"({', '.join(sorted(map(repr, labels)))}); score it on a file with "
                         "the labels of the training file.")
    pooled = accuracy_score(out[target], out["prediction"])
    by_task = [accuracy_score(g[target], g["prediction"]) for g in groups]
    print(f"accuracy (all rows): {pooled:.4f}; accuracy (task average): {np.mean(by_task):.4f}")


# ---------------------------------------------------------------------------- relatedness
def _relatedness_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    p.add_argument("--method", choices=("ridge", "residual"), default="ridge",
                   help="ridge: compare the tasks' ridge coefficients, each task fitted alone "
                        "(default); residual: correlate out-of-fold residuals (shared design "
                        "only)")
    p.add_argument("--similarity", choices=("cosine", "correlation"), default="cosine",
                   help="similarity of two tasks' vectors (default cosine)")
    p.add_argument("--n-clusters", type=_int_at_least(1), default=None,
                   help="cut the task dendrogram into K clusters (default: where tasks stop "
                        "being more alike than unrelated tasks)")
    p.add_argument("--permutations", type=_int_at_least(1), default=200,
                   help="draws of unrelated tasks for the p-value (default 200)")
    p.add_argument("--cv", type=_int_at_least(2), default=3,
                   help="CV folds inside every task for the ridge alpha (default 3)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/relatedness-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the result only")


def _some(names: Sequence[Any], k: int = 12) -> str:
    shown = ", ".join(str(n) for n in names[:k])
    return shown + (f", ... (+{len(names) - k} more)" if len(names) > k else "")


def _run_relatedness(args: argparse.Namespace) -> int:
    import textwrap

    from .relatedness import task_relatedness
    from .report import relatedness_report

    t0 = time.perf_counter()
    bunch, name = _load(args)
    n_rows = sum(len(y) for y in bunch.y)
    print(f"{name}: {len(bunch.X)} tasks, {n_rows} rows, {len(bunch.feature_names)} "
          f"features ({bunch.kind})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rel = task_relatedness(bunch, method=args.method, similarity=args.similarity,
                               n_clusters=args.n_clusters, n_permutations=args.permutations,
                               cv=args.cv, random_state=args.random_state)
    print()
    print(textwrap.fill(rel.verdict, width=100))
    print()
    for line in rel.summary_lines():
        print(line)
    groups = rel.groups
    if groups:
        print(f"\ngroups of related tasks ({len(groups)}):")
        for k, members in enumerate(groups[:10], start=1):
            print(f"  {k} ({len(members)} tasks): {_some(members)}")
        if len(groups) > 10:
            print(f"  ... (+{len(groups) - 10} more groups)")
    alone = [t for t in rel.matrix.index if t not in {m for g in groups for m in g}]
    if alone:
        print(f"in no group ({len(alone)} tasks): {_some(alone)}")
    pairs = rel.to_frame().head(5)
    print("\nmost similar pairs:")
    _print_table(pairs.assign(similarity=pairs["similarity"].round(4)),
                 [("task_a", "task a", "{}"), ("task_b", "task b", "{}"),
                  ("similarity", rel.similarity, "{:.4f}")])
    for w in caught[:5]:
        print(f"warning: {w.message}")
    if not args.no_report:
        path = Path(args.report or f"regmtl-report/relatedness-{_safe_name(name)}.html")
        path = relatedness_report(rel, data_name=name).write(path)
        print(f"\nreport: {path.resolve()}")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return 0


# ---------------------------------------------------------------------------- transfer
def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got "
                                         f"{text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected sizes >= 2, got {text!r}")
    return values


def _transfer_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    p.add_argument("--penalty", default="mean",
                   help="structure the new tasks inherit: mean (default), l21, l1, trace, "
                        "clustered, dirty, sparse_lowrank, elasticnet")
    p.add_argument("--new-tasks", type=_int_at_least(1), default=20,
                   help="tasks held out as new ones, drawn with --random-state (default 20)")
    p.add_argument("--n-new", type=_int_list, default=[5, 10, 20, 40],
                   help="training sizes of a new task (default 5,10,20,40)")
    p.add_argument("--repeats", type=_int_at_least(1), default=10,
                   help="random draws of the training rows per task and size (default 10)")
    p.add_argument("--strategy", choices=("auto", "support", "subspace", "mean", "cluster"),
                   default="auto", help="what a new task inherits (default: the penalty's "
                                        "own structure)")
    p.add_argument("--alpha", choices=("auto", "model", "cv"), default="auto",
                   help="the new task's strength: the model's own carried to its sample "
                        "count (auto, model) or leave-one-out CV")
    p.add_argument("--cv", type=_int_at_least(2), default=3,
                   help="CV folds inside every old task for the model's alpha (default 3)")
    p.add_argument("--n-alphas", type=_int_at_least(2), default=12,
                   help="values in the model's regularization grid (default 12)")
    p.add_argument("--n-jobs", type=int, default=-1, help="new tasks in parallel (joblib)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/transfer-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the table only")


def _run_transfer(args: argparse.Namespace) -> int:
    from .report import Report
    from .selection import MultiTaskClassifierCV, MultiTaskRegressorCV
    from .transfer_curve import transfer_curve

    t0 = time.perf_counter()
    bunch, name = _load(args)
    cls = MultiTaskClassifierCV if bunch.kind == "binary" else MultiTaskRegressorCV
    est = cls(args.penalty, alphas=args.n_alphas, cv=args.cv, random_state=args.random_state)
    print(f"{name}: {len(bunch.X)} tasks ({bunch.kind}); {args.new_tasks} held out as new "
          f"tasks, a {args.penalty} model fitted on the others")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = transfer_curve(bunch, estimator=est, new_tasks=args.new_tasks,
                               n_new=args.n_new, n_repeats=args.repeats, alpha=args.alpha,
                               strategy=args.strategy,
                               random_state=args.random_state, n_jobs=args.n_jobs)
    metric = curve.metric
    rows = curve.summary.pivot(index="n_new", columns="method", values=f"{metric}_mean")
    wins = curve.summary[curve.summary["method"] == "transfer"].set_index("n_new")
    table = rows.reset_index().assign(ratio=rows["transfer"].to_numpy() /
                                      rows["single-task"].to_numpy(),
                                      wins=wins["wins"].to_numpy(),
                                      tasks=wins["n_tasks"].to_numpy())
    table = table.astype({"n_new": int, "tasks": int})
    strategies = sorted(set(curve.scores.loc[curve.scores["method"] == "transfer",
                                             "strategy"]))
    print(f"test {metric} of the new tasks (mean over tasks of {args.repeats} draws); "
          f"transfer strategy: {', '.join(strategies)}\n")
    cols = [("n_new", "n_new", "{:.0f}"), ("transfer", "transfer", "{:.4g}"),
            ("single-task", "single-task", "{:.4g}")]
    if "pooled" in table:
        cols.append(("pooled", "pooled", "{:.4g}"))
    cols += [("ratio", "transfer/single", "{:.3f}"), ("wins", "draws won", "{:.0%}"),
             ("tasks", "tasks", "{:.0f}")]
    _print_table(table, cols)
    for w in caught[:5]:
        print(f"warning: {w.message}")
    if not args.no_report:
        path = Path(args.report or f"regmtl-report/transfer-{_safe_name(name)}.html")
        rep = Report(f"Knowledge transfer on {name}")
        rep.add_text(
            f"{args.new_tasks} of {len(bunch.X)} tasks held out as new tasks (seed "
            f"{args.random_state}); a `{args.penalty}` model fitted on the other "
            f"{len(curve.old_tasks)}, its alpha by {args.cv}-fold CV. Each new task gets "
            f"n training rows drawn at random ({args.repeats} draws), the rest are its test "
            "rows. *transfer*: `regmtl.transfer` from the model; *single-task*: the new task "
            "alone (alpha by leave-one-out CV); *pooled*: one model for all old rows.")
        rep.add_table(table, caption=f"test {metric} by training size")
        rep.add_figure(curve.plot(), caption="mean ± sd over new tasks")
        path = rep.write(path)
        print(f"\nreport: {path.resolve()}")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return 0


# ---------------------------------------------------------------------------- main
Command = tuple[str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]

COMMANDS: dict[str, Command] = {
    "datasets": ("list the data sets regmtl can load", _datasets_arguments, _run_datasets),
    "compare": ("compare multi-task models with single-task and pooled baselines (the main "
                "job)", _compare_arguments, _run_compare),
    "relatedness": ("are the tasks related? similarity, clusters and a permutation test",
                    _relatedness_arguments, _run_relatedness),
    "transfer": ("learning curves of knowledge transfer to held-out tasks",
                 _transfer_arguments, _run_transfer),
    "fit": ("fit one model and save it", _fit_arguments, _run_fit),
    "predict": ("predict with a saved model", _predict_arguments, _run_predict),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regmtl`` with one subparser per entry of :data:`COMMANDS`."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="regmtl",
                                     description="Regularized multi-task learning.")
    parser.add_argument("--version", action="version", version=f"regmtl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``regmtl`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"regmtl: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
