"""The ``regmtl`` command: list data sets, compare models, check task relatedness, measure
transfer to new tasks, fit one model, predict with it (``fit`` and ``predict`` also on a Dask
cluster, with ``--scheduler`` or ``--workers``).

Each subcommand is a ``(help, add_arguments, run)`` entry of :data:`COMMANDS`; ``run`` takes the
parsed arguments and returns an exit status. A problem with the user's input (a missing file or
column, a bad value) ends with one ``regmtl: error: ...`` line on stderr and exit status 2.

The module is past 1,500 lines because ``fit`` and ``predict`` each run three ways (in memory,
on a Dask cluster, out of core from Parquet) that share their options, checks and messages:
one place keeps the three alike.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import glob
import importlib.util
import logging
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
        offset = getattr(args, "offset", None)
        if features is None and offset is not None:  # every column but the offsets
            from .datasets._table import read_frame

            columns = read_frame(Path(args.data)).columns
            features = [c for c in columns if c not in (args.task_col, args.target, offset)]
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
                   help="comma-separated models (ridge, lasso, logistic, logistic_l1: an alpha "
                        "per task; ridge_one_alpha, lasso_one_alpha, logistic_one_alpha: one "
                        "alpha for all; unregularized, pooled, l21, trace, mean, clustered, "
                        "dirty; default: the standard set)")
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
    _loss_arguments(p, offset=False)
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
    from .report import comparison_report, comparison_verdict, fit_timings

    t0 = time.perf_counter()
    say = (lambda *a, **k: None) if args.quiet else print
    loss = _loss_and_kind(args)
    bunch, name = _load(args)
    _check_loss_count(loss, bunch)
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
                       progress=_progress(args), loss=loss)
    say(f"{comp.n_splits} {comp.split_kind} train/test split(s); alphas by {args.cv}-fold "
        f"CV inside every task of the training part, {args.n_alphas}-value grids\n")
    timings = fit_timings(comp)
    table = comp.summary
    if timings is not None:
        table = table.drop(columns=["seconds_per_split"], errors="ignore").merge(
            timings[["seconds_per_split"]], left_on="model", right_index=True, how="left")
    _print_table(table, _summary_columns(comp))
    verdict = comparison_verdict(comp)
    if verdict:
        say(f"\nverdict: {verdict}")
    if comp.metric == "d2":
        say("\nD2: deviance explained 1 - D/D0 per task (D0: the best constant's), "
            "averaged; deviance: the loss's mean deviance on the test rows.")
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
        path = Path(args.report or f"regmtl-report/compare-{_safe_name(name)}.html")
        rep = comparison_report(comp, data_name=name, n_jobs=args.n_jobs)
        path = rep.write(path)
        print(("" if args.quiet else "\n") + f"report: {path.resolve()}")
    print(_time_line(timings, comp.n_splits, time.perf_counter() - t0))
    return 0


# ---------------------------------------------------------------------------- fit / predict
def _fit_arguments(p: argparse.ArgumentParser) -> None:
    _data_arguments(p)
    from .penalties import PENALTY_NAMES

    p.add_argument("--penalty", default="l21",
                   help=f"{', '.join(sorted(PENALTY_NAMES))} (default l21)")
    p.add_argument("--alpha", default="auto",
                   help="penalty strength, or 'auto' to choose it by cross-validation")
    p.add_argument("--cv", type=_int_at_least(2), default=5, help="CV folds for --alpha auto")
    p.add_argument("--n-alphas", type=_int_at_least(2), default=30,
                   help="grid size for --alpha auto (default 30)")
    p.add_argument("--no-standardize", action="store_true",
                   help="fit on the raw features (default: z-scored, the scaling saved with "
                        "the model)")
    p.add_argument("--tol", type=float, default=None,
                   help="the solver's stopping tolerance (relative duality gap or KKT "
                        "residual; default: the estimator's, 1e-4)")
    p.add_argument("--n-jobs", type=int, default=None)
    _loss_arguments(p)
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    _cluster_arguments(p)
    p.add_argument("--spill-dir", metavar="DIR",
                   help="--out-of-core: where the per-task statistics are spilled during "
                        "the fit (default: a temporary directory, removed after)")


def _loss_arguments(p: argparse.ArgumentParser, offset: bool = True) -> None:
    from .datafits import LOSSES

    p.add_argument("--loss", metavar="LOSS[,LOSS...]",
                   help=f"the loss: {', '.join(LOSSES)}; or a comma-separated list with one "
                        "loss per task, in the order of the sorted task ids, for a fit with "
                        "one loss per task (default: squared, logistic for a binary target)")
    for flag, _, _, metavar, text in _loss_flags():
        p.add_argument(flag, type=float, metavar=metavar, help=text)
    if offset:
        p.add_argument("--offset", metavar="COLUMN",
                       help="file input: the column of each row's offset, added to its "
                            "linear predictor (the log exposure for poisson and gamma); it "
                            "is not a feature")


def _loss_flags() -> list[tuple[str, str, str, str, str]]:
    """``(flag, loss, parameter, metavar, help)`` of every registered loss's command-line
    parameters (``Datafit.cli_parameters``: ``--huber-delta``, ``--quantile``)."""
    from .datafits import LOSSES

    return [(flag, name, *spec) for name, cls in LOSSES.items()
            for flag, spec in cls.cli_parameters.items()]


def _flag_value(args: argparse.Namespace, flag: str) -> Any:
    return getattr(args, flag.lstrip("-").replace("-", "_"), None)


def _loss_option(args: argparse.Namespace) -> Any:
    """The ``loss=`` of ``--loss`` (a name, a loss object, or a list with one per task),
    each loss's parameter flags (``--huber-delta``, ``--quantile``) given to the loss they
    belong to; None without ``--loss``."""
    from .datafits import LOSSES

    names = ([] if args.loss is None
             else [n.strip().lower() for n in args.loss.split(",")])
    flags = _loss_flags()
    for flag, loss, *_ in flags:
        if _flag_value(args, flag) is not None and loss not in names:
            raise UsageError(f"{flag} is a parameter of the {loss} loss; pass --loss {loss} "
                             "(or a list of losses that holds it).")
    if not names:
        return None
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        raise UsageError(f"--loss {unknown[0]!r} is not a loss; the losses: "
                         f"{', '.join(LOSSES)} (or a comma-separated list of them, one per "
                         "task).")
    losses: list[Any] = []
    for n in names:
        given = [(flag, param, _flag_value(args, flag)) for flag, loss, param, *_ in flags
                 if loss == n and _flag_value(args, flag) is not None]
        if not given:
            losses.append(n)
            continue
        try:
            losses.append(LOSSES[n](**{param: value for _, param, value in given}))
        except ValueError as exc:
            raise UsageError(f"{given[0][0]} {given[0][2]}: {exc}") from None
    return losses[0] if len(losses) == 1 else losses


def _loss_kind(loss: Any) -> str:
    """The kind of task of a ``loss=``: ``"binary"``, ``"regression"`` or ``"mixed"``."""
    from .datafits import make_loss

    return make_loss(loss).kind


def _loss_and_kind(args: argparse.Namespace) -> Any:
    """The ``loss=`` of the loss flags; ``args.kind`` set to the kind of task it fits
    (refused where ``--kind`` says another)."""
    loss = _loss_option(args)
    kind = None if loss is None else _loss_kind(loss)
    if kind is not None:
        if args.kind != "auto" and (args.kind == "binary") != (kind == "binary"):
            raise UsageError(f"--kind {args.kind} does not fit --loss {args.loss}: "
                             f"the {args.loss} loss fits {kind} targets.")
        args.kind = "binary" if kind == "binary" else "regression"
    return loss


def _check_loss_count(loss: Any, bunch: Any) -> None:
    """A list of losses has one per task."""
    if isinstance(loss, list) and len(loss) != len(bunch.X):
        raise UsageError(f"--loss lists {len(loss)} losses for {len(bunch.X)} tasks; give one "
                         "per task, in the order of the sorted task ids: "
                         f"{_some(bunch.task_names, 8)}.")


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

    if args.out_of_core:
        return _run_fit_out_of_core(args)
    if args.spill_dir is not None:
        raise UsageError("--spill-dir is an option of --out-of-core; add that flag or leave "
                         "it out.")
    if _on_dask(args):
        return _run_fit_dask(args)
    loss = _loss_and_kind(args)
    bunch, name = _load(args)
    offsets = _offsets(args, bunch)
    binary = bunch.kind == "binary"
    _check_loss_count(loss, bunch)
    options = {} if args.tol is None else {"tol": args.tol}
    if loss is not None and not binary:
        options["loss"] = loss
    if args.alpha == "auto":
        cls = MultiTaskClassifierCV if binary else MultiTaskRegressorCV
        _check_takes(cls, options, offsets, args)
        est = cls(args.penalty, alphas=args.n_alphas, cv=args.cv, n_jobs=args.n_jobs, **options)
    else:
        cls = MultiTaskClassifier if binary else MultiTaskRegressor
        _check_takes(cls, options, offsets, args)
        est = cls(penalty=args.penalty, alpha=_alpha(args), **options)
    ys = _user_labels(bunch) if binary else bunch.y
    names = [str(f) for f in bunch.feature_names]
    if offsets is None:
        fitted = fit_standardized(est, bunch.X, ys, task_names=bunch.task_names,
                                  feature_names=names, standardize=not args.no_standardize)
    else:
        fitted = _fit_with_offset(est, bunch, ys, offsets, names, not args.no_standardize)
    _report_fit(args, fitted, name, len(bunch.X), sum(len(y) for y in bunch.y),
                _training_score(fitted, bunch, ys, offsets))
    return 0


def _offsets(args: argparse.Namespace, bunch: Any) -> list[np.ndarray] | None:
    """The ``--offset`` column of a table file, per task in the order of ``bunch``'s rows."""
    from .datasets import read_table

    if args.offset is None:
        return None
    if not _is_file(args.data):
        raise UsageError(f"--offset {args.offset!r}: offsets are read from a table file's "
                         f"column; {args.data} is a data set name.")
    if args.features and args.offset in args.features.split(","):
        raise UsageError(f"--offset {args.offset!r} is also in --features; an offset is not "
                         "a feature (leave it out of --features).")
    if args.offset in (args.task_col, args.target):
        raise UsageError(f"--offset {args.offset!r} is the task or target column; give the "
                         "column of the offsets.")
    try:
        table = read_table(args.data, task_col=args.task_col, target=args.offset,
                           features=bunch.feature_names, kind="regression")
    except ValueError as exc:
        msg = str(exc)
        raise UsageError(f"--offset {args.offset!r}: "
                         f"{msg.removeprefix('target: ').replace('target', 'offset')}") from None
    return [np.asarray(o, dtype=np.float64) for o in table.y]


def _check_takes(cls: type, options: dict, offsets: Any, args: argparse.Namespace) -> None:
    """Refuse ``--loss`` or ``--offset`` for an estimator that takes none."""
    import inspect

    if "loss" in options and "loss" not in cls._get_param_names():
        raise UsageError(f"--loss {args.loss} with --alpha auto: {cls.__name__} takes no "
                         "loss in this version; give --alpha VALUE.")
    if offsets is not None and "offset" not in inspect.signature(cls.fit).parameters:
        raise UsageError(f"--offset with {cls.__name__}: its fit takes no offset; give "
                         "--alpha VALUE (and a --loss that takes one).")


def _fit_with_offset(est: Any, bunch: Any, ys: list, offsets: list, feature_names: list,
                     standardize: bool) -> Any:
    """:func:`~regmtl.scaling.fit_standardized` with an offset per row (the offsets are in
    the predictor's units, so standardizing the features leaves them as they are)."""
    from .scaling import pooled_scaling, raw_units
    from .scaling import standardize as scaled

    if standardize:
        mean, scale = pooled_scaling(bunch.X)
    else:
        p = bunch.X[0].shape[1]
        mean, scale = np.zeros(p), np.ones(p)
    tasks = list(bunch.task_names)
    Z = dict(zip(tasks, scaled(bunch.X, mean, scale), strict=True))
    Y = {t: np.asarray(y) for t, y in zip(tasks, ys, strict=True)}
    est.fit(Z, Y, offset=dict(zip(tasks, offsets, strict=True)))
    return raw_units(getattr(est, "best_estimator_", est), mean, scale, feature_names)


def _training_score(fitted: Any, bunch: Any, ys: list, offsets: Any) -> tuple[str, float]:
    """(what, value) of the fit's score on its training rows: R^2 for the squared loss,
    deviance explained D^2 for the other regression losses, accuracy for a classifier."""
    import pandas as pd

    from .report import score_name

    tasks = list(bunch.task_names)
    columns = list(getattr(fitted, "feature_names_in_", range(bunch.X[0].shape[1])))
    X = {t: pd.DataFrame(x, columns=columns) for t, x in zip(tasks, bunch.X, strict=True)}
    Y = dict(zip(tasks, ys, strict=True))
    extra = {} if offsets is None else {"offset": dict(zip(tasks, offsets, strict=True))}
    return score_name(fitted), float(fitted.score(X, Y, **extra))


def _alpha(args: argparse.Namespace) -> float:
    try:
        alpha = float(args.alpha)
    except ValueError:
        raise UsageError(f"--alpha {args.alpha!r}: give a number >= 0 or 'auto'.") from None
    return alpha


def _report_fit(args: argparse.Namespace, fitted: Any, name: str, n_tasks: int,
                n_rows: int, score: tuple[str, float] | None = None) -> None:
    """The line of the fit (alpha, features used, certificate, loss and its training
    score); the model saved."""
    from .report import loss_name

    W = np.atleast_2d(fitted.coef_)
    n_active = int(np.count_nonzero(np.any(W != 0, axis=0)))
    cert = (f"duality gap {fitted.dual_gap_:.2e}" if hasattr(fitted, "dual_gap_")
            else f"KKT residual {fitted.kkt_residual_:.2e}")
    scored = "" if score is None else f" ({score[0]} {score[1]:.4f} on the training rows)"
    print(f"{name}: {n_tasks} tasks, {n_rows} rows; penalty "
          f"{args.penalty}, alpha {fitted.alpha:.4g}"
          f"{' (by ' + str(args.cv) + '-fold CV)' if args.alpha == 'auto' else ''}; "
          f"{n_active} of {W.shape[1]} features used; {cert}; loss {loss_name(fitted)}"
          f"{scored}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fitted.save(out)
    print(f"model: {out.resolve()}")


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'regmtl fit'")
    p.add_argument("--max-bytes", type=int, default=None,
                   help="the most bytes the model's arrays may take once loaded (default: 64 "
                        "times the file's size, at least 256 MiB; see regmtl.load)")
    p.add_argument("data", help="a CSV/Parquet file in long form (or a data set name); with "
                                "--scheduler/--workers a Parquet file, directory or glob")
    p.add_argument("--task-col", help="the column naming each row's task")
    p.add_argument("--target", help="optional: the true values, to print the scores")
    p.add_argument("--data-home")
    p.add_argument("--out", "--output", dest="out",
                   help="CSV file to write: every column of the input, in its row order, then "
                        "the predictions (default: print them beside the non-feature "
                        "columns); with --scheduler/--workers a Parquet directory (a path "
                        "ending in .parquet, or a directory) of the non-feature columns and "
                        "the predictions")
    p.add_argument("--offset", metavar="COLUMN",
                   help="the column of each row's offset, for a model fitted with one (e.g. "
                        "the log exposure of --loss poisson)")
    _cluster_arguments(p)


def _verbatim(path: Path, frame: Any) -> Any:
    """The file's columns as it holds them, for the output: a CSV's cells as text (ids such
    as ``007`` stay ``007``, empty cells stay empty); a Parquet file's typed columns."""
    import pandas as pd

    from .datasets._table import CSV_SUFFIXES, file_suffix

    if file_suffix(path) in CSV_SUFFIXES:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.copy()


def _predict_columns(model: Any, frame: Any, names: list, task_col: str,
                     offset: str | None = None) -> dict[str, Any]:
    """``prediction`` (and ``probability`` of the positive class, for a classifier) of every
    row of ``frame``, in its order (with the ``offset`` column added to each row's linear
    predictor)."""
    task = _model_tasks(frame[task_col], model.tasks_)
    X = frame[list(names)]
    extra = {} if offset is None else {"offset": _numbers(frame, offset, "--offset")}
    out = {"prediction": np.asarray(model.predict(X, task=task, **extra))}
    if hasattr(model, "predict_proba"):
        out["probability"] = model.predict_proba(X, task=task)[:, 1]
    return out


def _numbers(frame: Any, column: str, flag: str) -> np.ndarray:
    """A column of ``frame`` as finite numbers (else a usage error naming the first bad row
    and the option that named the column)."""
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise UsageError(f"{flag} {column!r}: row {int(bad[0])} holds "
                         f"{frame[column].iloc[int(bad[0])]}, not a finite number (an empty "
                         "cell reads as nan).")
    return values


def _model_tasks(values: Any, tasks: Any) -> np.ndarray:
    """Task ids as the model stored them (a CSV may read '3' as the integer 3): each value
    the model knows as it is, else the model's id of the same text (else as it is)."""
    import pandas as pd

    values = np.asarray(values, dtype=object)
    tasks = np.asarray(tasks, dtype=object)
    known = pd.Index(tasks).get_indexer(values)
    if np.all(known >= 0):
        return tasks[known]
    by_text = {str(t): t for t in tasks}
    return np.array([tasks[k] if k >= 0 else by_text.get(str(v), v)
                     for v, k in zip(values.tolist(), known.tolist(), strict=True)],
                    dtype=object)


def _print_scores(model: Any, frame: Any, prediction: np.ndarray, task_col: str,
                  target: str, names: list | None = None, offset: str | None = None) -> None:
    """The scores of the predictions against the file's ``target`` column (for a loss other
    than the squared one, the deviance it explains, D^2, as the model's ``score``)."""
    from . import metrics
    from .report import loss_name, score_name

    scored = frame[[task_col, target]].assign(prediction=prediction)
    groups = [g for _, g in scored.groupby(task_col, sort=False)]
    if hasattr(model, "predict_proba"):
        _print_accuracy(model, scored, groups, target)
        return
    if score_name(model) == "D^2" and names is not None:
        task = _model_tasks(frame[task_col], model.tasks_)
        extra = {} if offset is None else {"offset": _numbers(frame, offset, "--offset")}
        y = _numbers(frame, target, "--target")
        d2 = model.score(frame[list(names)], y, task=task, **extra)
        print(f"deviance explained D^2 (loss {loss_name(model)}, task average): {d2:.4f}")
        if getattr(model, "classes_", None) is not None:
            return  # a fit with binary tasks: labels, no errors to average
    ys = [g[target].to_numpy(dtype=np.float64) for g in groups]
    fs = [g["prediction"].to_numpy() for g in groups]
    print(f"explained variance (all rows): "
          f"{metrics.explained_variance(ys, fs, average='pooled'):.4f}; RMSE (task "
          f"average): {metrics.rmse(ys, fs):.4f}")


def _run_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from .datasets._table import read_frame
    from .persistence import load

    if args.out_of_core:
        return _run_predict_out_of_core(args)
    if _on_dask(args):
        return _run_predict_dask(args)
    model = load(args.model, max_bytes=args.max_bytes)
    names = getattr(model, "feature_names_in_", None)
    if not _is_file(args.data):
        raise UsageError(f"{args.data}: give a CSV/Parquet file with the feature columns and "
                         "--task-col.")
    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    path = Path(args.data)
    frame = read_frame(path)
    for col, flag in ((args.task_col, "--task-col"), (args.target, "--target"),
                      (args.offset, "--offset")):
        if col is not None and col not in frame.columns:
            raise UsageError(f"{flag} {col!r} is not a column of {args.data}; columns: "
                             f"{', '.join(map(str, frame.columns))}.")
    if names is None:
        names = [c for c in frame.columns if c not in (args.task_col, args.target, args.offset)]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{args.data} lacks the feature column(s) the model was fitted on: "
                         f"{', '.join(map(str, missing[:10]))}.")
    predicted = _predict_columns(model, frame, list(names), args.task_col, args.offset)
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
        _print_scores(model, frame, predicted["prediction"], args.task_col, args.target,
                      list(names), args.offset)
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


# ---------------------------------------------------------------------------- on a Dask cluster
_DASK_HINT = 'pip install "regmtl[dask]"'
_PARTS = ("part.", "_metadata", "_common_metadata")  # the files of a Parquet output of Dask


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                            "tcp://10.0.0.5:8786); the data are then Parquet, a file, a "
                            "directory or a glob (quoted) that the workers can read")
    group.add_argument("--workers", metavar="N", type=_int_at_least(1),
                       help="run on a Dask cluster of N worker processes (one thread each) "
                            "started on this machine for the command; the data as for "
                            "--scheduler")
    group.add_argument("--out-of-core", action="store_true",
                       help="read the data, Parquet (a file, a directory of files or a "
                            "glob) with the rows sorted by task, chunk by chunk in this "
                            "process: data larger than memory (fit: the squared loss)")
    p.add_argument("--chunk-rows", metavar="N", type=_int_at_least(1), default=2_000_000,
                   help="--out-of-core: about how many rows are in memory at a time "
                        "(whole tasks; default 2,000,000)")


def _on_dask(args: argparse.Namespace) -> bool:
    return args.scheduler is not None or args.workers is not None


def _cluster_flag(args: argparse.Namespace) -> str:
    return (f"--scheduler {args.scheduler}" if args.scheduler is not None
            else f"--workers {args.workers}")


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost cause's message (Dask wraps a reader's errors)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dask_modules(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """dask, dask.dataframe and dask.distributed, imported here: Dask is an optional extra."""
    try:
        import dask
        import dask.dataframe as dd
        from dask import distributed
    except ImportError as exc:
        raise UsageError(f"{_cluster_flag(args)} runs the command on Dask, which cannot be "
                         f"imported ({_first_line(exc)}): {_DASK_HINT}.") from None
    return dask, dd, distributed


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace, distributed: Any):
    """A Client on the scheduler at ``--scheduler``, or on a LocalCluster of ``--workers``
    processes started here; both closed at the end, on errors too. Yields a description."""
    with contextlib.ExitStack() as stack:
        if args.workers is not None:
            try:  # the dashboard on a free port: a second cluster on this machine is usual
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.CRITICAL))
            except (RuntimeError, OSError, TimeoutError) as exc:
                raise UsageError(f"--workers {args.workers}: the local Dask cluster did not "
                                 f"start ({_first_line(exc)}). From a Python script, call "
                                 "regmtl.cli.main under if __name__ == '__main__': (the "
                                 "workers are new processes that import the script).") from None
            client = stack.enter_context(distributed.Client(cluster))
            board = (f", dashboard {client.dashboard_link}"
                     if importlib.util.find_spec("bokeh") is not None else "")
            yield f"a local Dask cluster of {args.workers} worker process(es){board}"
            return
        try:
            client = distributed.Client(args.scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {args.scheduler}: cannot connect to a Dask "
                             f"scheduler there ({_first_line(exc)}); check the address "
                             "(tcp://HOST:8786) and that the scheduler runs.") from None
        stack.enter_context(client)
        n = len(client.nthreads())
        yield f"the Dask cluster at {args.scheduler} ({n} worker(s))"


def _local_inputs(data: str) -> list[Path]:
    """The local files or directory that ``data`` names (nothing for a URL); a glob that
    matches nothing or a missing path is an error naming it."""
    if "://" in data:
        return []
    if any(c in data for c in "*?["):
        found = sorted(glob.glob(data))
        if not found:
            raise UsageError(f"{data}: no file matches this pattern (from {Path.cwd()}); check "
                             "the path, and quote the pattern so that the shell passes it "
                             "as it is.")
        paths = [Path(f) for f in found]
    elif not Path(data).exists():
        raise UsageError(f"{data}: no such file or directory (from {Path.cwd()}).")
    else:
        paths = [Path(data)]
    for path in paths:  # (symbolic links followed) a device or FIFO never ends
        if not (path.is_file() or path.is_dir()):
            raise UsageError(f"{path}: not a regular file or a directory (a device, FIFO or "
                             "socket); give the data file or folder itself.")
    return paths


def _dask_table(dd: Any, data: str) -> tuple[Any, list[Path]]:
    """The Dask DataFrame of a Parquet file, directory or glob, and its local paths."""
    if data.lower().rstrip("/").endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        raise UsageError(f"{data}: on a Dask cluster the data are read as Parquet (a file, a "
                         "directory of files, or a glob such as 'data/part-*.parquet'); "
                         "convert the table first, e.g. dask.dataframe.read_csv(...)"
                         ".to_parquet(...).")
    inputs = _local_inputs(data)
    try:
        frame = dd.read_parquet(data)
    except ImportError as exc:
        raise UsageError(f"{data}: reading Parquet with Dask needs {_first_line(exc)}: "
                         f'{_DASK_HINT} (and pip install "regmtl[parquet]").') from None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{data}: cannot read it as Parquet ({_first_line(exc)}).") from None
    return frame, inputs


def _same_rows(part: Any) -> Any:
    return part


def _one_partitioning(frame: Any, columns: list) -> Any:
    """The table's ``columns`` behind one step that Dask cannot see through, so that every
    column taken from it has the same partitions. (Dask fuses small Parquet partitions by the
    share of the columns read: the features, the target and the task column read apart
    would have different partitions.)"""
    return frame[columns].map_partitions(_same_rows)


def _need_column(frame: Any, col: Any, flag: str, data: str) -> None:
    if col not in frame.columns:
        raise UsageError(f"{flag} {col!r} is not a column of {data}; columns: "
                         f"{_some(list(frame.columns), 20)}.")


def _dask_features(frame: Any, args: argparse.Namespace) -> list:
    """The feature columns of a fit (checked on the table's schema; nothing is read)."""
    import pandas as pd

    if not args.task_col or not args.target:
        raise UsageError(f"{args.data}: a table needs --task-col and --target (the columns of "
                         "the task ids and of the values to predict).")
    _need_column(frame, args.task_col, "--task-col", args.data)
    _need_column(frame, args.target, "--target", args.data)
    if args.target == args.task_col:
        raise UsageError(f"--target {args.target!r} is also the --task-col; pass a different "
                         "column.")
    if args.features:
        features = [c.strip() for c in args.features.split(",") if c.strip()]
        for c in features:
            _need_column(frame, c, "--features:", args.data)
        clash = [c for c in features if c in (args.task_col, args.target)]
        if clash:
            raise UsageError(f"--features: {clash[0]!r} is the task column or the target; "
                             "leave it out.")
    else:
        features = [c for c in frame.columns if c not in (args.task_col, args.target)]
    if not features:
        raise UsageError(f"{args.data} has no column besides {args.task_col!r} and "
                         f"{args.target!r}; add feature columns.")
    bad = [c for c in features if not (pd.api.types.is_numeric_dtype(frame.dtypes[c])
                                       or pd.api.types.is_bool_dtype(frame.dtypes[c]))]
    if bad:
        raise UsageError(f"--features: non-numeric column(s) {', '.join(map(repr, bad[:10]))} "
                         f"in {args.data}; list the numeric ones with --features a,b,c, or "
                         "encode those as numbers first.")
    return features


def _partition_summary(part: Any, features: list, target: Any, task_col: Any) -> dict:
    """One partition's rows, feature means and centred sums of squares, non-finite values,
    missing targets and task ids, its first three distinct targets, and per task its rows
    and first three distinct targets."""
    import pandas as pd

    from .ranges import column_scales

    X = part[features].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # out of range: refused by the summary
        mean = X.mean(axis=0) if len(X) else np.zeros(X.shape[1])
        m2 = ((X - mean) ** 2).sum(axis=0)
    y = part[target]
    y_num = pd.to_numeric(y, errors="coerce") if not pd.api.types.is_bool_dtype(y) else None
    pairs = part[[task_col, target]].dropna().drop_duplicates()
    pairs = pairs.groupby(task_col, sort=False).head(3)
    return {"n": len(X), "mean": mean, "m2": m2, "scales": column_scales(X),
            "y_scale": 0.0 if y_num is None else float(column_scales(
                y_num.to_numpy(dtype=np.float64, na_value=np.nan))[0]),
            "nonfinite": (~np.isfinite(X)).sum(axis=0), "y_missing": int(y.isna().sum()),
            "task_missing": int(part[task_col].isna().sum()),
            "y_values": y.dropna().drop_duplicates().head(3).tolist(),
            "rows": part[task_col].dropna().value_counts(sort=False),
            "pairs": list(zip(pairs[task_col].tolist(), pairs[target].tolist(), strict=True))}


def _dask_summary(dask: Any, frame: Any, features: list, args: argparse.Namespace) -> dict:
    """One pass over the table: rows, pooled feature means and population standard
    deviations (partition moments combined as Chan et al.), checks, the target's kind."""
    import pandas as pd

    from .ranges import check_column_scales

    cols = [*features, args.task_col, args.target]
    parts = dask.compute(*[dask.delayed(_partition_summary, pure=True)(
        p, features, args.target, args.task_col) for p in frame[cols].to_delayed()])
    n = sum(s["n"] for s in parts)
    if n == 0:
        raise UsageError(f"{args.data} has no rows.")
    nonfinite = sum(s["nonfinite"] for s in parts)
    if np.any(nonfinite):
        said = ", ".join(f"{features[j]!r} ({nonfinite[j]})" for j in np.flatnonzero(nonfinite))
        raise UsageError(f"--features: NaN or infinite values in column(s) {said}; impute "
                         "them or drop those rows first.")
    for key, flag, col in (("task_missing", "--task-col", args.task_col),
                           ("y_missing", "--target", args.target)):
        missing = sum(s[key] for s in parts)
        if missing:
            raise UsageError(f"{flag} {col!r}: {missing} missing value(s); drop those rows "
                             "first.")
    # the range check of every entry point, on the pooled largest magnitudes
    check_column_scales(np.max([s["scales"] for s in parts], axis=0), n, "--features",
                        labels=features)
    mean = sum(s["n"] * s["mean"] for s in parts) / n
    m2 = sum(s["m2"] + s["n"] * (s["mean"] - mean) ** 2 for s in parts)
    scale = np.sqrt(m2 / n)
    scale[scale == 0.0] = 1.0  # a constant feature, as regmtl.scaling.pooled_scaling
    values = pd.unique(np.array([v for s in parts for v in s["y_values"]], dtype=object))
    kind = args.kind
    if kind == "auto":
        kind = "binary" if len(values) == 2 else "regression"
    if kind == "binary" and len(values) != 2:
        raise UsageError(f"--kind binary needs exactly 2 distinct values in --target "
                         f"{args.target!r}, found {'more than 2' if len(values) > 2 else 1}; "
                         "pass --kind regression or recode the column.")
    dtype = frame.dtypes[args.target]
    if kind == "regression" and not (pd.api.types.is_numeric_dtype(dtype)
                                     or pd.api.types.is_bool_dtype(dtype)):
        raise UsageError(f"--target {args.target!r} must be numeric for regression (its type "
                         f"is {dtype}); recode it, or pass --kind binary for two labels.")
    if kind == "regression":
        check_column_scales(np.array([max(s["y_scale"] for s in parts)]), n,
                            f"--target {args.target!r}")
    # as in memory: every task needs 2 rows, and both classes when binary
    rows = pd.concat([s["rows"] for s in parts]).groupby(level=0, sort=False).sum()
    if (rows < 2).any():
        task = rows.index[np.flatnonzero(rows.to_numpy() < 2)[0]]
        raise UsageError(f"--task-col {args.task_col!r}: task {_py(task)!r} has 1 row; every "
                         "task needs at least 2 rows (drop the task or merge it with "
                         "another).")
    if kind == "binary":
        classes: dict = {}
        for s in parts:
            for task, label in s["pairs"]:
                classes.setdefault(task, set()).add(label)
        for task, labels in classes.items():
            if len(labels) < 2:
                raise UsageError(f"--target {args.target!r}: task {_py(task)!r} has only the "
                                 f"class {_py(next(iter(labels)))!r}; every binary task needs "
                                 "both classes (drop the task, or pass --kind regression).")
    return {"n": n, "mean": mean, "scale": scale, "kind": kind}


def _py(value: Any) -> Any:
    """A NumPy scalar as the Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _standardized(part: Any, mean: np.ndarray, scale: np.ndarray) -> Any:
    """A partition's features as float64, ``(x - mean) / scale``."""
    return (part.astype(np.float64) - mean) / scale


def _run_fit_dask(args: argparse.Namespace) -> int:
    """``regmtl fit`` on a Dask cluster: the rows stay on the workers, the model comes back."""
    dask, dd, distributed = _dask_modules(args)
    from .estimators import MultiTaskClassifier, MultiTaskRegressor

    if args.alpha == "auto":
        raise UsageError(f"--alpha auto (cross-validation) runs in memory only; with "
                         f"{_cluster_flag(args).split()[0]} give --alpha VALUE, e.g. the "
                         "alpha that 'regmtl fit --alpha auto' chooses on a sample of the "
                         "rows.")
    alpha = _alpha(args)
    loss = _loss_option(args)
    if args.offset is not None or isinstance(loss, list):
        flag = "--offset" if args.offset is not None else "--loss with one loss per task"
        raise UsageError(f"{flag} fits in memory only; leave out "
                         f"{_cluster_flag(args).split()[0]}.")
    frame, _ = _dask_table(dd, args.data)
    features = _dask_features(frame, args)
    frame = _one_partitioning(frame, [*features, args.task_col, args.target])
    name = Path(args.data.rstrip("/")).name or args.data
    with _dask_client(args, distributed) as where:
        print(f"{name}: on {where}")
        summary = _dask_summary(dask, frame, features, args)
        if args.no_standardize:
            mean, scale = np.zeros(len(features)), np.ones(len(features))
        else:
            mean, scale = summary["mean"], summary["scale"]
        X = frame[features].map_partitions(_standardized, mean, scale)
        binary = (summary["kind"] if loss is None else _loss_kind(loss)) == "binary"
        y = frame[args.target] if binary else frame[args.target].astype(np.float64)
        cls = MultiTaskClassifier if binary else MultiTaskRegressor
        solver = {} if args.tol is None else {"tol": args.tol}
        if loss is not None and not binary:
            solver["loss"] = loss
        est = cls(penalty=args.penalty, alpha=alpha, **solver)
        est.fit(X, y, task=frame[args.task_col])
    from .scaling import raw_units

    fitted = raw_units(est, mean, scale, [str(f) for f in features])
    _report_fit(args, fitted, name, len(fitted.tasks_), summary["n"])
    return 0


def _model_task_series(values: Any, tasks: np.ndarray) -> Any:
    """A partition's task ids as the model stored them (see :func:`_model_tasks`)."""
    import pandas as pd

    return pd.Series(_model_tasks(values, tasks), index=values.index, name=values.name,
                     dtype=object)


def _second_column(proba: Any) -> Any:
    """The positive class's column of ``predict_proba`` (a Dask array or DataFrame)."""
    return proba.iloc[:, 1] if hasattr(proba, "iloc") else proba[:, 1]


def _parquet_out(out: str, data: str, inputs: list[Path]) -> tuple[str, bool]:
    """``--out`` of a prediction on Dask: a Parquet directory (a path ending in ``.parquet``
    or ``.pq``, or a directory). Returns the path and whether a previous output there is to
    be replaced."""
    suffix = Path(out.rstrip("/")).suffix.lower()
    if suffix not in ("", ".parquet", ".pq") and not Path(out).is_dir():
        raise UsageError(f"--out {out}: on a Dask cluster the workers write the predictions "
                         "as Parquet, one file per partition, in one directory; give a path "
                         f"ending in .parquet or a directory. A {suffix} file would bring "
                         "every row through this one process, which is what the cluster is "
                         "there to avoid (convert the Parquet output afterwards if you need "
                         "one).")
    if "://" in out:
        return out, False
    path = Path(out).resolve()
    if any(c in data for c in "*?[") and fnmatch.fnmatch(str(path), str(Path(data).absolute())):
        raise UsageError(f"--out {out}: it matches the input pattern {data}, which would read "
                         "the predictions as data next time; write them elsewhere.")
    for f in (p.resolve() for p in inputs):
        if path == f or path in f.parents or f in path.parents:
            raise UsageError(f"--out {out}: that is where the input data are ({f}); write the "
                             "predictions elsewhere.")
    if path.is_dir():
        others = [f.name for f in path.iterdir() if not f.name.startswith(_PARTS)]
        if others:
            raise UsageError(f"--out {out}: the directory holds files other than a previous "
                             f"output ({_some(others, 3)}); give a new or empty directory.")
        return out, any(path.iterdir())
    if path.is_file() and suffix not in (".parquet", ".pq"):
        raise UsageError(f"--out {out}: a file is there; give a path ending in .parquet or a "
                         "directory.")
    return out, path.is_file()


def _partition_scores(part: Any, task_col: Any, target: Any, labels: Any) -> tuple:
    """Per task of one partition: rows and squared errors (regression; with the partition's
    target moments) or rows, hits and targets the model does not know (``labels`` given)."""
    import pandas as pd

    task = part[task_col]
    if labels is not None:
        known = part[target].isin(labels)
        hits = (part[target] == part["prediction"]) & known
        per_task = pd.DataFrame({"n": 1, "hits": hits.astype(np.int64),
                                 "unknown": (~known).astype(np.int64)}).groupby(
            task.to_numpy(), sort=False).sum()
        first = part[target][~known].head(1).tolist()
        return per_task, first
    y = part[target].to_numpy(dtype=np.float64)
    r2 = (y - part["prediction"].to_numpy(dtype=np.float64)) ** 2
    per_task = pd.DataFrame({"n": 1, "sse": r2}).groupby(task.to_numpy(), sort=False).sum()
    m = y.mean() if len(y) else 0.0
    return per_task, (len(y), m, float(((y - m) ** 2).sum()))


def _print_dask_scores(dask: Any, dd: Any, model: Any, out: str,
                       args: argparse.Namespace) -> None:
    """The scores of the written predictions against ``--target`` (read back from ``out``:
    only per-task sums come to this process)."""
    import pandas as pd

    classifier = hasattr(model, "predict_proba")
    labels = None
    if classifier:
        per = model.classes_ if isinstance(model.classes_, list) else [model.classes_]
        labels = list({v for c in per for v in np.asarray(c).tolist()})
    written = dd.read_parquet(out, columns=[args.task_col, args.target, "prediction"])
    parts = dask.compute(*[dask.delayed(_partition_scores, pure=True)(
        p, args.task_col, args.target, labels) for p in written.to_delayed()])
    per_task = pd.concat([p[0] for p in parts]).groupby(level=0, sort=False).sum()
    if classifier:
        if per_task["unknown"].sum():
            bad = next(p[1][0] for p in parts if p[1])
            raise UsageError(f"--target {args.target!r}: {int(per_task['unknown'].sum())} "
                             f"row(s) hold labels the model was not fitted on (first: "
                             f"{bad!r}; the model's: {', '.join(sorted(map(repr, labels)))}); "
                             f"the predictions are written to {out}, but not scored.")
        pooled = per_task["hits"].sum() / per_task["n"].sum()
        by_task = np.mean(per_task["hits"] / per_task["n"])
        print(f"accuracy (all rows): {pooled:.4f}; accuracy (task average): {by_task:.4f}")
        return
    moments = [p[1] for p in parts if p[1][0]]
    n = sum(k for k, _, _ in moments)
    mean = sum(k * m for k, m, _ in moments) / n
    sst = sum(s + k * (m - mean) ** 2 for k, m, s in moments)
    ev = 1.0 - per_task["sse"].sum() / sst
    rmse = np.mean(np.sqrt(per_task["sse"] / per_task["n"]))
    print(f"explained variance (all rows): {ev:.4f}; RMSE (task average): {rmse:.4f}")


def _run_predict_dask(args: argparse.Namespace) -> int:
    """``regmtl predict`` on a Dask cluster: the workers read the rows, predict them and
    write the predictions beside the input's other columns as Parquet, in the input's order."""
    dask, dd, distributed = _dask_modules(args)
    from .persistence import load

    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    if args.offset is not None:
        raise UsageError(f"--offset predicts in memory only; leave out "
                         f"{_cluster_flag(args).split()[0]}.")
    if not args.out:
        raise UsageError(f"{_cluster_flag(args).split()[0]}: pass --out DIR.parquet; on a Dask "
                         "cluster the predictions are written by the workers, not printed.")
    model = load(args.model, max_bytes=args.max_bytes)
    frame, inputs = _dask_table(dd, args.data)
    _need_column(frame, args.task_col, "--task-col", args.data)
    if args.target is not None:
        _need_column(frame, args.target, "--target", args.data)
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = [c for c in frame.columns if c not in (args.task_col, args.target, args.offset)]
    names = list(names)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{args.data} lacks the feature column(s) the model was fitted on: "
                         f"{', '.join(map(str, missing[:10]))}.")
    predicted = ["prediction", *(["probability"] if hasattr(model, "predict_proba") else [])]
    taken = [c for c in predicted if c in frame.columns]
    if taken:
        raise UsageError(f"{args.data} already has a column {taken[0]!r}, the name of the "
                         "predictions; rename it (the output keeps the input's columns).")
    keep = [c for c in frame.columns if c not in set(names)]
    out, overwrite = _parquet_out(args.out, args.data, inputs)
    frame = _one_partitioning(frame, [*keep, *names])
    width = len(str(max(frame.npartitions - 1, 0)))
    with _dask_client(args, distributed) as where:
        print(f"{Path(args.data.rstrip('/')).name or args.data}: on {where}")
        X = frame[names]
        task = frame[args.task_col].map_partitions(
            _model_task_series, np.asarray(model.tasks_, dtype=object),
            meta=(args.task_col, object))
        columns = {"prediction": model.predict(X, task=task)}
        if "probability" in predicted:
            columns["probability"] = _second_column(model.predict_proba(X, task=task))
        result = frame[keep].assign(**columns)
        if overwrite and Path(out).is_file():
            Path(out).unlink()  # a single-file output of before, replaced as a CSV would be
        result.to_parquet(out, write_index=frame.index.name is not None,
                          overwrite=overwrite and Path(out).is_dir(),
                          name_function=lambda i: f"part.{i:0{width}d}.parquet")
        shown = Path(out).resolve() if "://" not in out else out
        print(f"predictions: {shown} (Parquet, one file per partition, in the input's row "
              f"order: the input's {_some(keep, 8)} and {', '.join(predicted)})")
        if args.target is not None:
            _print_dask_scores(dask, dd, model, out, args)
    return 0


# ---------------------------------------------------------------------------- out of core
def _parquet_source(args: argparse.Namespace, features: Any, target: Any) -> Any:
    """The ParquetTasks of ``args.data`` (a file, a directory or a glob of files), with the
    columns of the command line."""
    from .parquet import ParquetTasks

    if args.data.lower().rstrip("/").endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        raise UsageError(f"{args.data}: --out-of-core reads Parquet (a file, a directory of "
                         "files or a glob), its rows sorted by task; convert the table "
                         "first, e.g. pandas.read_csv(...).sort_values(task).to_parquet(...).")
    inputs = _local_inputs(args.data)
    path = [str(p) for p in inputs] if any(c in args.data for c in "*?[") else args.data
    try:
        return ParquetTasks(path, target=target, task=args.task_col, features=features,
                            chunk_rows=args.chunk_rows)
    except ImportError as exc:
        raise UsageError(f"{args.data}: --out-of-core needs {exc}") from None


def _run_fit_out_of_core(args: argparse.Namespace) -> int:
    """``regmtl fit --out-of-core``: the squared loss fitted on Parquet read chunk by chunk
    (one run of whole tasks in memory at a time), certified as in memory."""
    from .estimators import MultiTaskRegressor
    from .scaling import raw_units

    if args.alpha == "auto":
        raise UsageError("--alpha auto (cross-validation) runs in memory only; with "
                         "--out-of-core give --alpha VALUE, e.g. the alpha that 'regmtl fit "
                         "--alpha auto' chooses on a sample of the tasks.")
    alpha = _alpha(args)
    loss = _loss_option(args)
    if args.offset is not None:
        raise UsageError("--offset fits in memory only; leave out --out-of-core.")
    if args.kind == "binary" or (loss is not None and loss != "squared"):
        raise UsageError("--out-of-core fits the squared loss (regression); fit a binary "
                         "target or another loss with --workers N (Dask) or in memory.")
    if not args.task_col or not args.target:
        raise UsageError(f"{args.data}: a table needs --task-col and --target (the columns of "
                         "the task ids and of the values to predict).")
    features = ([c.strip() for c in args.features.split(",") if c.strip()]
                if args.features else None)
    source = _parquet_source(args, features, args.target)
    names = [str(f) for f in source.feature_names]
    name = Path(args.data.rstrip("/")).name or args.data
    print(f"{name}: out of core, {source.n_tasks} tasks, {source.n_obs} rows, "
          f"{source.n_features} features; chunks of about {args.chunk_rows} rows")
    if args.no_standardize:
        mean, scale = np.zeros(len(names)), np.ones(len(names))
        fitted_on = source
    else:
        mean, scale = source.feature_scaling()
        fitted_on = source.standardized(mean, scale)
    options = {} if args.spill_dir is None else {"spill_dir": args.spill_dir}
    est = MultiTaskRegressor(penalty=args.penalty, alpha=alpha, solver_options=options or None,
                             **({} if args.tol is None else {"tol": args.tol}))
    est.fit(fitted_on)
    est.set_params(solver_options=None)  # (where the statistics were spilled: not the model's)
    fitted = raw_units(est, mean, scale, names)
    _report_fit(args, fitted, name, source.n_tasks, source.n_obs)
    return 0


def _out_of_core_output(out: Any, inputs: list[Path]) -> Path:
    """``--out`` of ``predict --out-of-core``: one Parquet file, written chunk by chunk."""
    if out is None:
        raise UsageError("--out-of-core: pass --out FILE.parquet; the predictions are written "
                         "chunk by chunk, not printed.")
    path = Path(out)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise UsageError(f"--out {out}: --out-of-core writes one Parquet file; give a path "
                         "ending in .parquet.")
    for f in (p.resolve() for p in inputs):
        if path.resolve() == f or f in path.resolve().parents:
            raise UsageError(f"--out {out}: that is where the input data are ({f}); write the "
                             "predictions elsewhere.")
    if path.is_dir():
        raise UsageError(f"--out {out}: a directory is there; give a file name.")
    return path


def _run_predict_out_of_core(args: argparse.Namespace) -> int:
    """``regmtl predict --out-of-core``: the rows of a Parquet set sorted by task predicted
    chunk by chunk, written to one Parquet file (the task ids, the target when given, the
    predictions) in the input's row order; the scores against ``--target`` from the same
    pass."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .persistence import load
    from .streaming import predict_chunks

    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    if args.offset is not None:
        raise UsageError("--offset predicts in memory only; leave out --out-of-core.")
    out = _out_of_core_output(args.out, _local_inputs(args.data))
    model = load(args.model, max_bytes=args.max_bytes)
    names = getattr(model, "feature_names_in_", None)
    source = _parquet_source(args, None if names is None else list(names), args.target)
    classifier = hasattr(model, "predict_proba")
    score = _ChunkScores(classifier) if args.target is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for lo, hi, data, cols in predict_chunks(model, source, model._block_outputs,
                                                  target=args.target is not None):
            table = {args.task_col: np.repeat(source.tasks[lo:hi], source.task_rows[lo:hi])}
            if args.target is not None:
                table[args.target] = data.y
                score.add(data, cols["prediction"])
            table.update(cols)
            chunk = pa.table(table)
            if writer is None:
                writer = pq.ParquetWriter(out, chunk.schema)
            writer.write_table(chunk)
    finally:
        if writer is not None:
            writer.close()
    print(f"predictions: {out.resolve()} (Parquet, {source.n_obs} rows in the input's order: "
          f"{args.task_col}{', ' + args.target if args.target else ''} and "
          f"{', '.join(['prediction', *(['probability'] if classifier else [])])})")
    if score is not None:
        print(score.line())
    return 0


class _ChunkScores:
    """The scores of ``predict``'s output lines, summed chunk by chunk (whole tasks):
    explained variance over all rows and RMSE averaged over tasks, or accuracy over all rows
    and averaged over tasks."""

    def __init__(self, classifier: bool):
        self.classifier = classifier
        self.n = 0
        self.mean = self.m2 = 0.0
        self.sse = 0.0
        self.per_task: list[np.ndarray] = []

    def add(self, data: Any, pred: np.ndarray) -> None:
        y = data.y
        if self.classifier:
            hit = (y == pred).astype(np.float64)
            self.sse += float(hit.sum())
            self.per_task.append(data.task_sums(hit) / np.diff(data.indptr))
        else:
            err = (y - pred) ** 2
            self.sse += float(err.sum())
            self.per_task.append(np.sqrt(data.task_sums(err) / np.diff(data.indptr)))
            k, mk = len(y), float(y.mean())
            d = mk - self.mean
            self.m2 += float(((y - mk) ** 2).sum()) + d * d * self.n * k / (self.n + k)
            self.mean += d * k / (self.n + k)
        self.n += len(y)

    def line(self) -> str:
        by_task = float(np.mean(np.concatenate(self.per_task)))
        if self.classifier:
            return (f"accuracy (all rows): {self.sse / self.n:.4f}; accuracy (task average): "
                    f"{by_task:.4f}")
        return (f"explained variance (all rows): {1.0 - self.sse / self.m2:.4f}; RMSE (task "
                f"average): {by_task:.4f}")


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
    from .penalties import PENALTY_NAMES

    shared = sorted(n for n, cls in PENALTY_NAMES.items()
                    if cls().transfer_strategy is not None and n != "mean")
    p.add_argument("--penalty", default="mean",
                   help=f"structure the new tasks inherit: mean (default), {', '.join(shared)}")
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
    from ._version import __version__

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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        hint = ("; a pattern the shell expanded? quote it: 'data/part-*.parquet'"
                if any(e.lower().endswith((".parquet", ".pq")) for e in extra) else "")
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    try:
        return args._run(args)
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"regmtl: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
