"""A user's long-form table (CSV or Parquet) as per-task data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from .._lazy import lazy_module
from ._bunch import task_bunch

pd = lazy_module("pandas")

__all__ = ["read_table", "DataFileError"]

#: The file endings read as CSV (the rest of the known ones are Parquet).
CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET = (".parquet", ".pq")
_KINDS = ("auto", "regression", "binary")


class DataFileError(ValueError):
    """A data file that cannot be turned into multi-task data; the message says how to fix it.

    :func:`read_table` raises it, with a one-line message that starts with the argument at
    fault (``path:``, ``task_col:``, ``target:``, ``features:`` or ``kind:``) and ends with
    the fix. It is a ``ValueError``, so ``except ValueError`` catches it too.

    Parameters
    ----------
    message : str
        What is wrong with the file, and how to fix it.

    See Also
    --------
    read_table : Reads a long-form table as per-task data.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.datasets import DataFileError, read_table
    >>> pd.DataFrame({"store": ["a", "a", "b", "b"], "x": [0.5, 1.0, 2.0, 2.5],
    ...               "sales": [1.2, 2.3, 4.1, 5.2]}).to_csv("sales.csv", index=False)
    >>> try:
    ...     read_table("sales.csv", task_col="shop", target="sales")
    ... except DataFileError as exc:
    ...     print(exc)
    task_col: column 'shop' is not in the file; available columns: store, x, sales
    """


def file_suffix(path: Path) -> str:
    """The known ending of ``path`` (``.csv.gz`` counts as one), else its last suffixes."""
    name = path.name.lower()
    for ext in (*CSV_SUFFIXES, *_PARQUET):
        if name.endswith(ext):
            return ext
    return "".join(path.suffixes[-2:]) or "(none)"


def read_frame(path: Path) -> pd.DataFrame:
    """The CSV or Parquet file at ``path`` as a DataFrame; a :class:`DataFileError` that says
    the fix when it cannot be read."""
    ext = file_suffix(path)
    if ext not in CSV_SUFFIXES + _PARQUET:
        raise DataFileError(f"path: unknown file type {ext!r} for {path}; use a .csv, .csv.gz, "
                            ".parquet or .pq file")
    if not path.is_file():
        raise DataFileError(f"path: file not found: {path}; check the path and the current "
                            f"directory ({Path.cwd()})")
    if ext in _PARQUET:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DataFileError(f"path: reading {path.name} needs pyarrow; install it with "
                                "pip install 'regmtl[parquet]'") from None
    try:
        if ext in CSV_SUFFIXES:
            return pd.read_csv(path)
        # (pages checked against their checksums where the file has them)
        return pd.read_parquet(path, page_checksum_verification=True)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"path: {path} is empty; it needs a header row and data rows") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "CSV" if ext in CSV_SUFFIXES else "Parquet"
        raise DataFileError(f"path: cannot read {path} as {kind} ({first}); check that the "
                            "file is complete and of that type") from None


def _column(frame: pd.DataFrame, arg: str, name: Any) -> None:
    if name not in frame.columns:
        cols = ", ".join(map(str, frame.columns))
        raise DataFileError(f"{arg}: column {name!r} is not in the file; available columns: "
                            f"{cols}")


def _py(value: Any) -> Any:
    """A numpy scalar as the Python value, so that messages show ``1``, not ``np.int64(1)``."""
    return value.item() if isinstance(value, np.generic) else value


def _first_bad(values: pd.Series, bad: np.ndarray) -> str:
    i = int(np.flatnonzero(bad)[0])
    return f"first at row {i} (0-based, header not counted): {_py(values.iloc[i])!r}"


def _target(frame: pd.DataFrame, target: Any, kind: str) -> tuple[np.ndarray, str, list]:
    """Target as float (0/1 when binary), the resolved kind, and the binary classes."""
    values = frame[target]
    if values.isna().any():
        raise DataFileError(f"target: column {target!r} has {int(values.isna().sum())} missing "
                            f"value(s), {_first_bad(values, values.isna().to_numpy())}; drop "
                            "those rows first")
    classes = sorted((_py(v) for v in pd.unique(values)), key=lambda v: (str(type(v)), v))
    if kind == "auto":
        kind = "binary" if len(classes) == 2 else "regression"
    if kind == "binary":
        if len(classes) != 2:
            raise DataFileError(f"target: kind='binary' needs exactly 2 distinct values in "
                                f"{target!r}, found {len(classes)}; pass kind='regression' or "
                                "recode the column")
        return (values == classes[1]).to_numpy(np.float64), kind, list(classes)
    if values.dtype == bool:
        return values.to_numpy(np.float64), kind, []
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna().to_numpy()
    if bad.any():
        raise DataFileError(f"target: column {target!r} must be numeric for regression, "
                            f"{_first_bad(values, bad)}; fix or drop those rows")
    y = numeric.to_numpy(np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataFileError(f"target: column {target!r} has {int(bad.sum())} infinite "
                            f"value(s), {_first_bad(values, bad)}; fix or drop those rows")
    return y, kind, []


def _features(frame: pd.DataFrame, features: list) -> np.ndarray:
    bad = [c for c in features if not (pd.api.types.is_numeric_dtype(frame[c])
                                       or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise DataFileError(f"features: non-numeric column(s) {', '.join(map(repr, bad))}; drop "
                            "them (pass features=[...] without them) or encode them as numbers "
                            "(e.g. pandas.get_dummies) first")
    X = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    nonfinite = ~np.isfinite(X).all(axis=0)
    if nonfinite.any():
        counts = (~np.isfinite(X)).sum(axis=0)
        said = ", ".join(f"{features[j]!r} ({counts[j]})" for j in np.flatnonzero(nonfinite))
        raise DataFileError(f"features: NaN or infinite values in column(s) {said}; impute "
                            "them or drop those rows first")
    return X


def read_table(path: str | os.PathLike[str], *, task_col: Any, target: Any,
               features: Sequence[Any] | None = None, kind: str = "auto") -> Bunch:
    """Read a long-form table (one row per sample, a task column) as per-task data.

    Every task needs at least 2 rows (and both classes when binary); tasks are sorted by
    their label.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file with a header. Parquet needs
        pyarrow (``pip install 'regmtl[parquet]'``).
    task_col : str
        The column that says which task each row belongs to.
    target : str
        The column to predict.
    features : sequence of str, default=None
        Default: every column except ``task_col`` and ``target``. All must be numeric (or
        boolean) and finite.
    kind : {"auto", "regression", "binary"}, default="auto"
        "auto" is "binary" when the target has exactly two distinct values, else "regression".
        Binary targets become 0/1: 1 for the larger of the two values (``target_classes``
        holds them in that order).

    Returns
    -------
    Bunch
        ``X`` (list of float64 arrays, one per task), ``y`` (list of float64 arrays),
        ``task_names`` (the task column's values, sorted), ``feature_names``, ``kind``,
        ``target_classes`` (binary only), ``DESCR``, ``source`` (the path).

    Raises
    ------
    DataFileError
        With one line naming the argument at fault and the fix.

    See Also
    --------
    train_test_split_per_task : Splits the tasks into train and test rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from regmtl.datasets import read_table
    >>> pd.DataFrame({"store": ["a", "a", "a", "b", "b", "b"],
    ...               "x1": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], "x2": [1, 0, 1, 0, 1, 0],
    ...               "sales": [1.2, 2.3, 2.9, 4.1, 5.2, 5.8]}).to_csv("sales.csv", index=False)
    >>> data = read_table("sales.csv", task_col="store", target="sales")
    >>> data.task_names, data.feature_names, data.kind
    (['a', 'b'], ['x1', 'x2'], 'regression')
    >>> [X.shape for X in data.X]
    [(3, 2), (3, 2)]
    """
    if kind not in _KINDS:
        raise DataFileError(f"kind: must be one of {', '.join(_KINDS)}, got {kind!r}")
    path = Path(path).expanduser()
    frame = read_frame(path)
    if frame.shape[0] == 0:
        raise DataFileError(f"path: {path} has a header but no data rows; it needs at least 2 "
                            "rows per task")
    _column(frame, "task_col", task_col)
    _column(frame, "target", target)
    if target == task_col:
        raise DataFileError(f"target: {target!r} is also the task_col; pass a different column")
    if features is None:
        features = [c for c in frame.columns if c not in (task_col, target)]
    else:
        features = list(features)
        for name in features:
            _column(frame, "features", name)
        clash = [c for c in features if c in (task_col, target)]
        if clash:
            raise DataFileError(f"features: {clash[0]!r} is the task_col or target; leave it "
                                "out of features")
    if not features:
        raise DataFileError(f"features: the file has no column besides {task_col!r} and "
                            f"{target!r}; add feature columns")
    tasks = frame[task_col]
    if tasks.isna().any():
        raise DataFileError(f"task_col: column {task_col!r} has {int(tasks.isna().sum())} empty "
                            f"value(s), {_first_bad(tasks, tasks.isna().to_numpy())}; fill or drop "
                            "those rows")
    y, kind, classes = _target(frame, target, kind)
    X = _features(frame, features)
    codes, names = pd.factorize(tasks, sort=False)
    try:
        order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    except TypeError:  # labels of mixed types: keep the order of first appearance
        order = np.arange(len(names))
    Xs, ys, task_names = [], [], []
    for t in order:
        rows = codes == t
        label = _py(names[t])
        if rows.sum() < 2:
            raise DataFileError(f"task_col: task {label!r} has {int(rows.sum())} row; every task "
                                "needs at least 2 rows (drop the task or merge it with another)")
        if kind == "binary" and np.unique(y[rows]).size < 2:
            raise DataFileError(f"target: task {label!r} has only the class "
                                f"{classes[int(y[rows][0])]!r}; every binary task needs both "
                                "classes (drop the task, or pass kind='regression')")
        Xs.append(X[rows])
        ys.append(y[rows])
        task_names.append(label)
    descr = (f"Read from {path}: {len(Xs)} tasks (column {task_col!r}), {len(y)} rows, "
             f"{len(features)} features, target {target!r} ({kind}"
             + (f"; 1 = {classes[1]!r}, 0 = {classes[0]!r})" if kind == "binary" else ")"))
    extra = {"target_classes": classes} if kind == "binary" else {}
    return task_bunch(Xs, ys, task_names=task_names, feature_names=[str(f) for f in features],
                      kind=kind, descr=descr, source=str(path), **extra)
