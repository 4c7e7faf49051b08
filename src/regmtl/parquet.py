"""ParquetTasks: a multi-task data set stored as Parquet, read chunk by chunk.

A long-form table (feature columns, a target column, a task column) whose rows are sorted by
task, in one file, a directory of files or a list of files. Construction reads the task column
alone, row group by row group, to learn the tasks, their row counts and that the rows are
sorted; :meth:`ParquetTasks.chunks` then reads runs of whole tasks (about ``chunk_rows`` rows
each, only the columns needed) as in-memory :class:`~regmtl.TaskData` blocks, one at a time,
with the row weights of the whole problem. This is the source of the out-of-core fit and of
the streaming ``predict`` and ``score``.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .progress import check_progress, progress_bar
from .taskdata import TaskData, task_weights

__all__ = ["ParquetTasks", "is_parquet_tasks"]

_INSTALL = 'pip install "regmtl[parquet]"'
#: Schema metadata key of a data set written by ``regmtl.datasets.make_parquet_tasks``: the
#: JSON list of its feature columns (the default ``features`` of a ParquetTasks).
FEATURES_KEY = b"regmtl.features"


def _open(pa: Any, pq: Any, file: Any) -> Any:
    """``pq.ParquetFile(file)`` with its pages' checksums verified where the file has them, a
    file that is not Parquet (or is truncated) a ``ValueError`` naming it."""
    try:
        return pq.ParquetFile(file, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"path: {str(file)!r} is not a readable Parquet file ({exc}); give "
                         "Parquet files (write them with DataFrame.to_parquet or "
                         "regmtl.datasets.make_parquet_tasks).") from None


def _read_group(pa: Any, handle: Any, file: Any, group: int, columns: list) -> Any:
    """Row group ``group`` of an open file, its pages checked against their checksums where
    the file has them: a damaged page (or a file changed since it was opened) a
    ``ValueError`` naming the file and the row group, never rows read from it."""
    try:
        return handle.read_row_group(group, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"path: {str(file)!r} is damaged in row group {group} ({exc}); its "
                         "rows were not read. Write the file again (regmtl writes page "
                         "checksums in every Parquet file it makes: "
                         "pyarrow.parquet.write_table(..., write_page_checksum=True)).") from None


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            f"Reading Parquet needs pyarrow ({exc}); install it with {_INSTALL}."
        ) from None
    return pa, pq


def is_parquet_tasks(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`ParquetTasks` (checked without importing pyarrow)."""
    return isinstance(obj, ParquetTasks)


def _natural_key(path: Path) -> list:
    """Sort key reading runs of digits as numbers: ``part.10`` after ``part.9``."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", str(path))]


def _files(path: Any) -> list[Path]:
    """The Parquet files of ``path``: a file, a directory (its files, in natural order of
    their relative paths, hidden and ``_``-prefixed names skipped as Parquet writers' side
    files) or a list of files (in the order given)."""
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            found = [f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith((".", "_")) for part in f.relative_to(p).parts)]
            if not found:
                raise ValueError(f"path: the directory {str(p)!r} holds no Parquet file; "
                                 "give a file, a directory of Parquet files or a list of "
                                 "files.")
            return sorted(found, key=lambda f: _natural_key(f.relative_to(p)))
        if not p.is_file():
            raise ValueError(f"path: {str(p)!r} is neither a file nor a directory; give a "
                             "Parquet file, a directory of them or a list of files.")
        return [p]
    if isinstance(path, Sequence) and not isinstance(path, (bytes, bytearray)):
        files = [Path(f) for f in path]
        if not files:
            raise ValueError("path: the list of files is empty; give at least one Parquet "
                             "file.")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"path: {missing[0]!r} is not a file; give existing Parquet "
                             "files.")
        return files
    raise TypeError(f"path: expected a file or directory path or a list of files, got "
                    f"{type(path).__name__}.")


def _is_number(pa: Any, t: Any) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


class ParquetTasks:
    r"""A multi-task data set stored as Parquet, rows sorted by task, read chunk by chunk.

    The table is in long form: one row per observation, numeric feature columns, a numeric
    target column and a task column (integers or strings), in one file, a directory of files
    (read in the natural order of their names: ``part.9`` before ``part.10``) or a list of
    files (in the given order). The rows must be sorted by task across row groups and files
    (a task may be split across row groups and files). Nothing but the task column is read at
    construction; :meth:`chunks` reads the other columns a run of whole tasks at a time.

    Parameters
    ----------
    path : str, path or list of them
        A Parquet file, a directory of Parquet files, or a list of files.
    target : str or None, default="y"
        The column of the targets; None for a set without targets (to predict only).
    task : str, default="task"
        The column of the task ids.
    features : list of str, optional
        The feature columns. By default those the data set names in its schema metadata
        (``regmtl.features``, written by :func:`~regmtl.datasets.make_parquet_tasks`), else
        every column other than ``task`` and ``target``.
    chunk_rows : int, default=2_000_000
        About how many rows :meth:`chunks` reads at a time (whole tasks: a chunk ends at the
        first task boundary past that many rows, and holds at least one task).
    progress : {"auto", True, False}, default="auto"
        A progress bar on stderr over the chunks read by a fit on this set (its passes, e.g.
        ``MultiTaskRegressor().fit(source)``), its ``predict`` and ``score``, and
        :meth:`feature_scaling`: ``True`` from the start, ``False`` never, ``"auto"`` when
        stderr is a terminal and the run has lasted 2 s (``regmtl.progress``). It never
        changes a result.

    Attributes
    ----------
    tasks : ndarray of shape (T,)
        The task labels, sorted (the order of the rows).
    task_rows : ndarray of int64 of shape (T,)
        Rows per task.
    n_tasks, n_features, n_obs : int
        T, p and the number of rows.
    n_chunks : int
        The chunks of a pass over the set.
    feature_names : ndarray of object
        The feature columns.
    files : list of Path
        The files read, in order.
    progress : {"auto", True, False}
        As given.
    on_chunk : callable or None
        Called as ``on_chunk(lo, hi, rows)`` after each chunk is read (None by default); a
        fit on the set sets it, for its progress bar, while it runs (and leaves one set by
        the user in place, with no bar).

    Raises
    ------
    ImportError
        Without pyarrow (``pip install "regmtl[parquet]"``).
    ValueError
        A missing column, a non-numeric feature or target, a task column with missing ids,
        rows not sorted by task, or no rows.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from regmtl import ParquetTasks
    >>> frame = pd.DataFrame({"x0": np.arange(5.0), "y": np.ones(5), "task": [1, 1, 2, 2, 2]})
    >>> frame.to_parquet("tasks.parquet")
    >>> source = ParquetTasks("tasks.parquet")
    >>> source.tasks.tolist(), source.task_rows.tolist(), source.n_features
    ([1, 2], [2, 3], 1)
    >>> [(lo, hi, block.n_obs) for lo, hi, block in source.chunks()]
    [(0, 2, 5)]
    """

    def __init__(self, path: Any, *, target: str | None = "y", task: str = "task",
                 features: Sequence[str] | None = None, chunk_rows: int = 2_000_000,
                 progress: bool | str = "auto"):
        pa, pq = _pyarrow()
        self.progress = check_progress(progress)
        self.on_chunk: Callable[[int, int, int], None] | None = None
        if not isinstance(task, str):
            raise TypeError(f"task: expected the name of the task column (a str), got "
                            f"{type(task).__name__}.")
        if target is not None and not isinstance(target, str):
            raise TypeError(f"target: expected a column name (a str) or None, got "
                            f"{type(target).__name__}.")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
                or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer; got {chunk_rows!r}.")
        self.path = path
        self.target, self.task, self.chunk_rows = target, task, int(chunk_rows)
        self._scaling: tuple[np.ndarray, np.ndarray] | None = None
        self.files = _files(path)
        handles = [_open(pa, pq, f) for f in self.files]
        schema = handles[0].schema_arrow
        self.feature_names = np.array(self._features(pa, schema, features), dtype=object)
        for f, h in zip(self.files[1:], handles[1:], strict=True):
            self._check_schema(pa, h.schema_arrow, f)
        self._scan(pa, handles)

    # ------------------------------------------------------------------ construction
    def _features(self, pa: Any, schema: Any, features: Any) -> list[str]:
        names = list(schema.names)
        where = str(self.files[0])

        def need(col: str, arg: str) -> None:
            if col not in names:
                shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
                hint = (" or target=None for a set without targets (to predict only)"
                        if arg == "target" else "")
                raise ValueError(f"{arg}={col!r} is not a column of {where}; its columns are "
                                 f"{shown}. Name the right column{hint}.")

        need(self.task, "task")
        if self.target is not None:
            need(self.target, "target")
            if self.target == self.task:
                raise ValueError(f"target={self.target!r} is also the task column; name "
                                 "different columns.")
            if not _is_number(pa, schema.field(self.target).type):
                raise ValueError(f"target={self.target!r} has type "
                                 f"{schema.field(self.target).type} in {where}; the target "
                                 "must be numeric (recode labels as numbers, e.g. 0/1).")
        if features is None:
            meta = schema.metadata or {}
            if FEATURES_KEY in meta:
                features = json.loads(meta[FEATURES_KEY])
            else:
                features = [c for c in names if c not in (self.task, self.target)]
        elif isinstance(features, str):
            raise TypeError(f"features: expected a list of column names, got the string "
                            f"{features!r}; pass [{features!r}] for one column.")
        features = list(features)
        if not features:
            raise ValueError(f"features: no feature column in {where} (its columns are "
                             f"{', '.join(map(repr, names[:20]))}); give features=[...].")
        for c in features:
            need(c, "features")
        clash = [c for c in features if c in (self.task, self.target)]
        if clash:
            raise ValueError(f"features: {clash[0]!r} is the task or target column; leave it "
                             "out.")
        bad = [c for c in features if not _is_number(pa, schema.field(c).type)]
        if bad:
            raise ValueError(f"features: column {bad[0]!r} has type {schema.field(bad[0]).type} "
                             f"in {where}; features must be numeric: encode it as numbers or "
                             "leave it out of features=[...].")
        return features

    def _check_schema(self, pa: Any, schema: Any, where: Path) -> None:
        """Another file has the same columns, numeric where the first file's are."""
        cols = [self.task, *([] if self.target is None else [self.target]),
                *self.feature_names]
        missing = [c for c in cols if c not in schema.names]
        if missing:
            raise ValueError(f"path: {str(where)!r} lacks the column {missing[0]!r} that "
                             f"{str(self.files[0])!r} has; every file needs the same columns.")
        bad = [c for c in cols[1:] if not _is_number(pa, schema.field(c).type)]
        if bad:
            raise ValueError(f"path: column {bad[0]!r} has type {schema.field(bad[0]).type} in "
                             f"{str(where)!r}; it must be numeric in every file.")

    def _scan(self, pa: Any, handles: list) -> None:
        """One pass over the task column, row group by row group: labels, counts, sortedness,
        and the row groups' places (file, group, first row)."""
        labels, counts, groups = [], [], []
        last = None
        row = 0
        for i, (f, h) in enumerate(zip(self.files, handles, strict=True)):
            for g in range(h.metadata.num_row_groups):
                col = _read_group(pa, h, f, g, [self.task]).column(0)
                n = len(col)
                if n == 0:
                    continue
                ids = _as_ids(pa, col)
                missing = col.null_count or (ids.dtype.kind == "f" and np.isnan(ids).any())
                if missing:
                    raise ValueError(f"task: the column {self.task!r} has missing ids in "
                                     f"{str(f)!r} (row group {g}); every row needs a task id: "
                                     "drop those rows.")
                starts = np.concatenate(([0], np.flatnonzero(ids[1:] != ids[:-1]) + 1))
                run = ids[starts]
                bad = np.flatnonzero(run[1:] < run[:-1])
                if len(bad) or (last is not None and run[0] < last):
                    k = int(starts[bad[0] + 1]) if len(bad) else 0
                    before = run[bad[0]] if len(bad) else last
                    raise ValueError(
                        f"task: the rows are not sorted by task ({self.task!r}): task "
                        f"{_py(ids[k])!r} at row {k} of row group {g} of {str(f)!r} follows "
                        f"task {_py(before)!r}. Sort the rows by task first (e.g. "
                        f"frame.sort_values({self.task!r}).to_parquet(...)).")
                labels.append(run)
                counts.append(np.diff(np.concatenate((starts, [n]))))
                last = ids[-1]
                groups.append((i, g, row, n))
                row += n
        if row == 0:
            raise ValueError(f"path: {self.path!r} holds no rows; give a data set with at "
                             "least one row.")
        runs, sizes = np.concatenate(labels), np.concatenate(counts).astype(np.int64)
        # a task split across row groups or files: its runs merged
        first = np.concatenate(([0], np.flatnonzero(runs[1:] != runs[:-1]) + 1))
        tasks = runs[first]
        self.tasks = tasks.astype(object) if tasks.dtype.kind in "US" else tasks
        self.task_rows = np.add.reduceat(sizes, first)
        self._row_starts = np.concatenate(([0], np.cumsum(self.task_rows)))
        self.n_tasks, self.n_obs = len(self.task_rows), row
        self.n_features = len(self.feature_names)
        self._groups = groups  # (file index, row group, first global row, rows)

    # ------------------------------------------------------------------ reading
    def bounds(self) -> np.ndarray:
        """The task boundaries of the chunks: chunk k holds tasks ``bounds[k]`` to
        ``bounds[k + 1] - 1``, about ``chunk_rows`` rows (at least one task)."""
        cum = self._row_starts
        out = [0]
        while out[-1] < self.n_tasks:
            lo = out[-1]
            hi = int(np.searchsorted(cum, cum[lo] + self.chunk_rows, side="left"))
            out.append(min(max(hi, lo + 1), self.n_tasks))
        return np.array(out, dtype=np.int64)

    @property
    def file_rows(self) -> np.ndarray:
        """The rows of each file, in the order of ``files``."""
        rows = np.zeros(len(self.files), dtype=np.int64)
        for i, _, _, n in self._groups:
            rows[i] += n
        return rows

    @property
    def n_chunks(self) -> int:
        """The number of chunks of a pass over the set (``len(bounds()) - 1``)."""
        return len(self.bounds()) - 1

    def feature_scaling(self) -> tuple[np.ndarray, np.ndarray]:
        r"""The pooled means and population standard deviations of the features over all
        rows (:func:`regmtl.scaling.pooled_scaling` of the whole set; a constant feature gets
        1), in one pass over the feature columns, the chunks' moments merged as Chan et al.:
        :math:`M_2 = M_{2,a} + M_{2,b} + \delta^2 n_a n_b / (n_a + n_b)`.

        Returns
        -------
        mean, scale : ndarray of shape (n_features,)
        """
        n, mean, m2 = 0, np.zeros(self.n_features), np.zeros(self.n_features)
        with progress_bar(self.n_chunks, self.progress, "feature scaling",
                          unit="chunk") as bar:
            for _, _, block in self._read(None, None):
                k = block.n_obs
                mk = block.X.mean(axis=0)
                m2k = ((block.X - mk) ** 2).sum(axis=0)
                delta = mk - mean
                m2 += m2k + delta * delta * n * k / (n + k)
                mean += delta * k / (n + k)
                n += k
                bar.update(1)
        scale = np.sqrt(m2 / n)
        scale[scale == 0.0] = 1.0
        return mean, scale

    @property
    def applied_scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``(mean, scale)`` every feature is read with (:meth:`standardized`), or None
        where the features are read as stored: part of what identifies the rows it yields
        (a checkpoint's fingerprint)."""
        return self._scaling

    def standardized(self, mean: np.ndarray, scale: np.ndarray) -> ParquetTasks:
        """The same set read with every feature standardized, ``(x - mean) / scale`` (a new
        source over the same files; e.g. from :meth:`feature_scaling`)."""
        mean = np.asarray(mean, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        for name, v in (("mean", mean), ("scale", scale)):
            if v.shape != (self.n_features,) or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must hold {self.n_features} finite values (one per "
                                 f"feature); got shape {v.shape}.")
        if np.any(scale <= 0):
            raise ValueError("scale must be positive.")
        out = copy.copy(self)
        out._scaling = (mean, scale)
        return out

    def chunks(self, *, task_weight: Any = "equal", target: str | None = None,
               start: int = 0) -> Iterator[tuple[int, int, TaskData]]:
        r"""The data set as runs of whole tasks, one in memory at a time.

        Parameters
        ----------
        task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
            The task weights :math:`\omega_t` of the whole problem (over all T tasks).
        target : str, optional
            Read this column as ``y`` instead of the source's ``target`` (e.g. a binary
            label).
        start : int, default=0
            Begin at the chunk that holds this task (position in ``tasks``), the files read
            from the row group holding its first row (a pass resumed midway).

        Yields
        ------
        lo, hi : int
            The chunk holds the tasks ``lo..hi-1`` (positions in ``tasks``).
        block : TaskData
            Those tasks in memory (long form): ``X`` float64 (n, p), Fortran-ordered, ``y``
            float64, ``indptr`` local, ``tasks`` their labels, and the row weights of the
            whole problem, :math:`c_r = \omega_t / n_t`.

        Raises
        ------
        ValueError
            NaN or infinity in a column read (naming the column, the file and the row).
        """
        target = self.target if target is None else target
        if target is None:
            raise ValueError("target: this source has no target column (target=None); pass "
                             "chunks(target='column') to read one.")
        omega = task_weights(task_weight, self.task_rows.astype(np.float64))
        yield from self._read(target, omega, int(start))

    def _read(self, target: str | None, omega: np.ndarray | None, start_task: int = 0
              ) -> Iterator[tuple[int, int, TaskData]]:
        """The chunks, with ``y`` from ``target`` (none when None) and row weights from
        ``omega`` (none when None), from the chunk holding task ``start_task``."""
        pa, pq = _pyarrow()
        if target is not None and target != self.target:
            self._features_exclude(target)
        columns = [*self.feature_names, *([] if target is None else [target])]
        cum = self._row_starts
        bounds = self.bounds()
        handles: dict[int, Any] = {}
        buffer: list = []  # tables of rows read and not yet handed out
        first = max(int(np.searchsorted(bounds, start_task, side="right")) - 1, 0)
        bounds = bounds[first:]
        # the row group holding the first chunk's first row, and its first row
        k = max(int(np.searchsorted([g[2] for g in self._groups], int(cum[bounds[0]]),
                                    side="right")) - 1, 0)
        start = self._groups[k][2]  # the global row of the buffer's first row
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            r0, r1 = int(cum[lo]), int(cum[hi])
            have = start + sum(t.num_rows for t in buffer)
            while have < r1:  # read row groups until the chunk's last task is whole
                i, g, _, n = self._groups[k]
                if i not in handles:
                    handles = {i: _open(pa, pq, self.files[i])}
                buffer.append(_read_group(pa, handles[i], self.files[i], g, columns))
                have += n
                k += 1
            table = pa.concat_tables(buffer) if len(buffer) > 1 else buffer[0]
            rest = table.slice(r1 - start)
            table = table.slice(r0 - start, r1 - r0)
            buffer, start = ([rest] if rest.num_rows else []), r1
            block = self._block(table, lo, hi, r0, target, omega)
            if self.on_chunk is not None:
                self.on_chunk(int(lo), int(hi), r1 - r0)
            yield int(lo), int(hi), block

    def _features_exclude(self, target: str) -> None:
        """``target`` is a numeric column of the set, not a feature nor the task."""
        pa, pq = _pyarrow()
        schema = pq.ParquetFile(self.files[0]).schema_arrow
        if target not in schema.names:
            raise ValueError(f"target={target!r} is not a column of {str(self.files[0])!r}; "
                             f"its columns are {', '.join(map(repr, schema.names[:20]))}.")
        if target in self.feature_names or target == self.task:
            raise ValueError(f"target={target!r} is a feature or the task column; name "
                             "another column.")
        if not _is_number(pa, schema.field(target).type):
            raise ValueError(f"target={target!r} has type {schema.field(target).type}; the "
                             "target must be numeric (recode labels as numbers, e.g. 0/1).")

    def _block(self, table: Any, lo: int, hi: int, r0: int, target: str | None,
               omega: np.ndarray | None) -> TaskData:
        n = table.num_rows
        X = np.empty((n, self.n_features), order="F")
        for j, name in enumerate(self.feature_names):
            X[:, j] = self._column(table, name, r0, "features")
        if self._scaling is not None:
            X -= self._scaling[0]
            X /= self._scaling[1]
        sizes = self.task_rows[lo:hi]
        indptr = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        data = TaskData(X=X, indptr=indptr, task_index=np.arange(hi - lo, dtype=np.int64),
                        tasks=self.tasks[lo:hi], shared=False, form="long",
                        order=np.arange(n, dtype=np.int64), n_input_rows=n)
        if target is not None:
            y = self._column(table, target, r0, "target")
            data.raw_y = data.y = y
        if omega is not None:
            data.c = np.repeat(omega[lo:hi] / sizes, sizes)
        return data

    def _column(self, table: Any, name: str, r0: int, arg: str) -> np.ndarray:
        """One column as float64, refused with a message naming it and the first bad row
        where it holds a missing value, NaN or infinity."""
        col = table.column(name)
        if col.null_count:
            bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            self._refuse(name, arg, r0 + bad, "a missing value")
        v = np.asarray(col.to_numpy(), dtype=np.float64)
        if v.dtype.kind == "f":
            ok = np.isfinite(v)
            if not ok.all():
                bad = int(np.flatnonzero(~ok)[0])
                self._refuse(name, arg, r0 + bad, repr(float(v[bad])))
        return v

    def _refuse(self, name: str, arg: str, row: int, what: str) -> None:
        k = int(np.searchsorted([g[2] for g in self._groups], row, side="right")) - 1
        i, g, first, _ = self._groups[k]
        in_file = row - first + sum(n for (j, _, _, n) in self._groups[:k] if j == i)
        t = int(np.searchsorted(self._row_starts, row, side="right")) - 1
        raise ValueError(f"{arg}: column {name!r} holds {what} at row {in_file} of "
                         f"{str(self.files[i])!r} (row group {g}, task "
                         f"{_py(self.tasks[t])!r}); impute it or drop the row first.")

    def __repr__(self) -> str:
        return (f"ParquetTasks({str(self.path)!r}, n_tasks={self.n_tasks}, "
                f"n_obs={self.n_obs}, n_features={self.n_features})")


def _as_ids(pa: Any, col: Any) -> np.ndarray:
    """A task column as a NumPy array that compares like the labels (integers as int64,
    strings as fixed-width unicode)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    v = col.to_numpy()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or \
            getattr(pa.types, "is_string_view", lambda _: False)(t):
        return v.astype(str)
    return v


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
