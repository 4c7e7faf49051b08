"""``regmtl predict`` on a Dask cluster: the workers read the rows, predict them and write the
predictions beside the input's other columns as Parquet, in the input's order; the scores
against ``--target`` come back as per-task sums read from that output.
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from .dask_cluster import (
    cluster_flag,
    dask_client,
    dask_modules,
    dask_table,
    need_column,
    one_partitioning,
)
from .shared import UsageError, model_tasks, some

_PARTS = ("part.", "_metadata", "_common_metadata")  # the files of a Parquet output of Dask


def _model_task_series(values: Any, tasks: np.ndarray) -> Any:
    """A partition's task ids as the model stored them (see :func:`model_tasks`)."""
    import pandas as pd

    return pd.Series(model_tasks(values, tasks), index=values.index, name=values.name,
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
                             f"output ({some(others, 3)}); give a new or empty directory.")
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

    classifier = is_classifier(model)
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


def run_predict_dask(args: argparse.Namespace) -> int:
    """``regmtl predict`` on a Dask cluster: the workers read the rows, predict them and
    write the predictions beside the input's other columns as Parquet, in the input's order."""
    dask, dd, distributed = dask_modules(args)
    from ..persistence import load

    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    if args.offset is not None:
        raise UsageError(f"--offset predicts in memory only; leave out "
                         f"{cluster_flag(args).split()[0]}.")
    if not args.out:
        raise UsageError(f"{cluster_flag(args).split()[0]}: pass --out DIR.parquet; on a Dask "
                         "cluster the predictions are written by the workers, not printed.")
    model = load(args.model, max_bytes=args.max_bytes)
    frame, inputs = dask_table(dd, args.data)
    need_column(frame, args.task_col, "--task-col", args.data)
    if args.target is not None:
        need_column(frame, args.target, "--target", args.data)
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = [c for c in frame.columns if c not in (args.task_col, args.target, args.offset)]
    names = list(names)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{args.data} lacks the feature column(s) the model was fitted on: "
                         f"{', '.join(map(str, missing[:10]))}.")
    predicted = ["prediction", *(["probability"] if is_classifier(model) else [])]
    taken = [c for c in predicted if c in frame.columns]
    if taken:
        raise UsageError(f"{args.data} already has a column {taken[0]!r}, the name of the "
                         "predictions; rename it (the output keeps the input's columns).")
    keep = [c for c in frame.columns if c not in set(names)]
    out, overwrite = _parquet_out(args.out, args.data, inputs)
    frame = one_partitioning(frame, [*keep, *names])
    width = len(str(max(frame.npartitions - 1, 0)))
    with dask_client(args, distributed) as where:
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
                          write_page_checksum=True,
                          overwrite=overwrite and Path(out).is_dir(),
                          name_function=lambda i: f"part.{i:0{width}d}.parquet")
        shown = Path(out).resolve() if "://" not in out else out
        print(f"predictions: {shown} (Parquet, one file per partition, in the input's row "
              f"order: the input's {some(keep, 8)} and {', '.join(predicted)})")
        if args.target is not None:
            _print_dask_scores(dask, dd, model, out, args)
    return 0
