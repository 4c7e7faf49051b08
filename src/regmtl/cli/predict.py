"""``regmtl predict``: predict with a saved model. This module holds the command's options and
the prediction in memory (the input's columns kept verbatim, the predictions beside them, the
scores against ``--target``); ``--scheduler`` / ``--workers`` go to
:mod:`~regmtl.cli.predict_dask` and ``--out-of-core`` to :mod:`~regmtl.cli.out_of_core`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from .dask_cluster import cluster_arguments, on_dask
from .out_of_core import run_predict_out_of_core
from .predict_dask import run_predict_dask
from .shared import UsageError, is_file, model_tasks


def predict_arguments(p: argparse.ArgumentParser) -> None:
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
    cluster_arguments(p)


def _verbatim(path: Path, frame: Any) -> Any:
    """The file's columns as it holds them, for the output: a CSV's cells as text (ids such
    as ``007`` stay ``007``, empty cells stay empty); a Parquet file's typed columns."""
    import pandas as pd

    from ..datasets._table import CSV_SUFFIXES, file_suffix

    if file_suffix(path) in CSV_SUFFIXES:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.copy()


def _predict_columns(model: Any, frame: Any, names: list, task_col: str,
                     offset: str | None = None) -> dict[str, Any]:
    """``prediction`` (and ``probability`` of the positive class, for a classifier) of every
    row of ``frame``, in its order (with the ``offset`` column added to each row's linear
    predictor)."""
    task = model_tasks(frame[task_col], model.tasks_)
    X = frame[list(names)]
    extra = {} if offset is None else {"offset": _numbers(frame, offset, "--offset")}
    out = {"prediction": np.asarray(model.predict(X, task=task, **extra))}
    if is_classifier(model):
        out["probability"] = model.predict_proba(X, task=task)[:, 1]
    elif hasattr(model, "predict_proba"):  # one loss per task: the rows of two-label tasks
        import pandas as pd

        binary = np.array([c is not None for c in model.classes_])
        rows = binary[pd.Index(np.asarray(model.tasks_, dtype=object)).get_indexer(task)]
        out["probability"] = np.full(len(frame), np.nan)
        if rows.any():
            out["probability"][rows] = model.predict_proba(X[rows], task=task[rows])[:, 1]
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


def _print_scores(model: Any, frame: Any, prediction: np.ndarray, task_col: str,
                  target: str, names: list | None = None, offset: str | None = None) -> None:
    """The scores of the predictions against the file's ``target`` column (for a loss other
    than the squared one, the deviance it explains, D^2, as the model's ``score``)."""
    from .. import metrics
    from ..report import loss_name, score_name

    scored = frame[[task_col, target]].assign(prediction=prediction)
    groups = [g for _, g in scored.groupby(task_col, sort=False)]
    if is_classifier(model):
        _print_accuracy(model, scored, groups, target)
        return
    if score_name(model) == "D^2" and names is not None:
        task = model_tasks(frame[task_col], model.tasks_)
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


def run_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..datasets._table import read_frame
    from ..persistence import load

    if args.out_of_core:
        return run_predict_out_of_core(args)
    if on_dask(args):
        return run_predict_dask(args)
    model = load(args.model, max_bytes=args.max_bytes)
    names = getattr(model, "feature_names_in_", None)
    if not is_file(args.data):
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
