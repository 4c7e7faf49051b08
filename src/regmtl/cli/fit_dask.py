"""``regmtl fit`` on a Dask cluster: the feature columns checked on the table's schema, one pass
over the partitions for the pooled scaling, the target's kind and the checks of the in-memory
reader, then the fit with the rows kept on the workers; the model comes back in raw units.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .dask_cluster import (
    cluster_flag,
    dask_client,
    dask_modules,
    dask_table,
    need_column,
    one_partitioning,
)
from .losses import loss_kind, loss_option
from .shared import UsageError, parse_alpha, report_fit


def _dask_features(frame: Any, args: argparse.Namespace) -> list:
    """The feature columns of a fit (checked on the table's schema; nothing is read)."""
    import pandas as pd

    if not args.task_col or not args.target:
        raise UsageError(f"{args.data}: a table needs --task-col and --target (the columns of "
                         "the task ids and of the values to predict).")
    need_column(frame, args.task_col, "--task-col", args.data)
    need_column(frame, args.target, "--target", args.data)
    if args.target == args.task_col:
        raise UsageError(f"--target {args.target!r} is also the --task-col; pass a different "
                         "column.")
    if args.features:
        features = [c.strip() for c in args.features.split(",") if c.strip()]
        for c in features:
            need_column(frame, c, "--features:", args.data)
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

    from ..ranges import column_scales

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


def dask_summary(dask: Any, frame: Any, features: list, args: argparse.Namespace) -> dict:
    """One pass over the table: rows, pooled feature means and population standard
    deviations (partition moments combined as Chan et al.), checks, the target's kind."""
    import pandas as pd

    from ..ranges import check_column_scales

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


def run_fit_dask(args: argparse.Namespace) -> int:
    """``regmtl fit`` on a Dask cluster: the rows stay on the workers, the model comes back."""
    dask, dd, distributed = dask_modules(args)
    from ..estimators import MultiTaskClassifier, MultiTaskRegressor

    if args.alpha == "auto":
        raise UsageError(f"--alpha auto (cross-validation) runs in memory only; with "
                         f"{cluster_flag(args).split()[0]} give --alpha VALUE, e.g. the "
                         "alpha that 'regmtl fit --alpha auto' chooses on a sample of the "
                         "rows.")
    alpha = parse_alpha(args)
    loss = loss_option(args)
    if args.offset is not None or isinstance(loss, list):
        flag = "--offset" if args.offset is not None else "--loss with one loss per task"
        raise UsageError(f"{flag} fits in memory only; leave out "
                         f"{cluster_flag(args).split()[0]}.")
    frame, _ = dask_table(dd, args.data)
    features = _dask_features(frame, args)
    frame = one_partitioning(frame, [*features, args.task_col, args.target])
    name = Path(args.data.rstrip("/")).name or args.data
    with dask_client(args, distributed) as where:
        print(f"{name}: on {where}")
        summary = dask_summary(dask, frame, features, args)
        if args.no_standardize:
            mean, scale = np.zeros(len(features)), np.ones(len(features))
        else:
            mean, scale = summary["mean"], summary["scale"]
        X = frame[features].map_partitions(_standardized, mean, scale)
        binary = (summary["kind"] if loss is None else loss_kind(loss)) == "binary"
        y = frame[args.target] if binary else frame[args.target].astype(np.float64)
        cls = MultiTaskClassifier if binary else MultiTaskRegressor
        solver = {} if args.tol is None else {"tol": args.tol}
        if loss is not None and not binary:
            solver["loss"] = loss
        est = cls(penalty=args.penalty, alpha=alpha, **solver)
        est.fit(X, y, task=frame[args.task_col])
    from ..scaling import raw_units

    fitted = raw_units(est, mean, scale, [str(f) for f in features])
    report_fit(args, fitted, name, len(fitted.tasks_), summary["n"])
    return 0
