"""What several commands of ``regmtl`` share: :class:`UsageError` (an input problem, reported
in one line), the data arguments and their loading (a data set name or a table file, the local
files a Parquet path or glob names), the parsers of integer options and of ``--alpha``, the
printing of tables and name lists, the task ids of a fitted model, and the line and file that
end every ``fit`` (in memory, on Dask and out of core alike).
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class UsageError(ValueError):
    """An input problem to report in one line."""


def data_arguments(p: argparse.ArgumentParser) -> None:
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


def is_file(name: str) -> bool:
    low = name.lower()
    return low.endswith((".csv", ".csv.gz", ".parquet", ".pq")) or Path(name).is_file()


def load_data(args: argparse.Namespace) -> tuple[Any, str]:
    """(Bunch, display name) from a data set name or a table file."""
    from ..datasets import load_dataset, read_table

    if is_file(args.data):
        if not args.task_col or not args.target:
            raise UsageError(f"{args.data}: a file needs --task-col and --target (the columns "
                             "of the task ids and of the values to predict).")
        features = args.features.split(",") if args.features else None
        offset = getattr(args, "offset", None)
        if features is None and offset is not None:  # every column but the offsets
            from ..datasets._table import read_frame

            columns = read_frame(Path(args.data)).columns
            features = [c for c in columns if c not in (args.task_col, args.target, offset)]
        return (read_table(args.data, task_col=args.task_col, target=args.target,
                           features=features, kind=args.kind), Path(args.data).name)
    kwargs = {"missing": "mean"} if args.data.lower().startswith("mulan/") else {}
    try:
        return load_dataset(args.data, data_home=args.data_home, **kwargs), args.data
    except FileNotFoundError as exc:
        raise UsageError(f"{exc} On the command line: --data-home DIR.") from None


def local_inputs(data: str) -> list[Path]:
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


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value
    return parse


def parse_alpha(args: argparse.Namespace) -> float:
    try:
        alpha = float(args.alpha)
    except ValueError:
        raise UsageError(f"--alpha {args.alpha!r}: give a number >= 0 or 'auto'.") from None
    return alpha


def print_table(df: Any, columns: list[tuple[str, str, str]]) -> None:
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


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def some(names: Sequence[Any], k: int = 12) -> str:
    shown = ", ".join(str(n) for n in names[:k])
    return shown + (f", ... (+{len(names) - k} more)" if len(names) > k else "")


def model_tasks(values: Any, tasks: Any) -> np.ndarray:
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


def report_fit(args: argparse.Namespace, fitted: Any, name: str, n_tasks: int,
                n_rows: int, score: tuple[str, float] | None = None, *,
                chosen_by: str | None = None, gap_scale: float | None = None,
                alpha_max: float | None = None) -> None:
    """The line of the fit (alpha, features used, certificate, loss and its training
    score); the model saved. ``chosen_by``: how ``--alpha auto`` chose (default: by k-fold
    CV); ``gap_scale``: the objective at W = 0, the duality gap also relative to it (what
    ``--tol`` bounds); ``alpha_max``: alpha also as a fraction of it."""
    from ..report import feature_terms_text, loss_name

    W = np.atleast_2d(fitted.coef_)
    n_active = int(np.count_nonzero(np.any(W != 0, axis=0)))
    cert = (f"duality gap {fitted.dual_gap_:.2e}" if hasattr(fitted, "dual_gap_")
            else f"KKT residual {fitted.kkt_residual_:.2e}")
    if gap_scale is not None and hasattr(fitted, "dual_gap_") and gap_scale > 0:
        cert += f" (relative {fitted.dual_gap_ / gap_scale:.2e})"
    scored = "" if score is None else f" ({score[0]} {score[1]:.4f} on the training rows)"
    how = chosen_by or f"by {args.cv}-fold CV"
    ratio = ("" if alpha_max is None or not alpha_max > 0 else
             f"; alpha / alpha_max {fitted.alpha / alpha_max:.4g} (alpha_max {alpha_max:.4g})")
    print(f"{name}: {n_tasks} tasks, {n_rows} rows; penalty "
          f"{args.penalty}, alpha {fitted.alpha:.4g}"
          f"{' (' + how + ')' if args.alpha == 'auto' else ''}; "
          f"{n_active} of {W.shape[1]} features used; {cert}; loss {loss_name(fitted)}"
          f"{scored}{ratio}")
    terms = feature_terms_text(fitted)
    if terms:
        print(f"terms: {terms}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fitted.save(out)
    print(f"model: {out.resolve()}")
