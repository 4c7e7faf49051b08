"""Where ``fit`` and ``predict`` run, and the Dask plumbing they share: the options
``--scheduler``, ``--workers``, ``--out-of-core`` and ``--chunk-rows``, the import of Dask (an
optional extra) with its install hint, the client on a scheduler or a local cluster, the
reading of a Parquet table as a Dask DataFrame, one partitioning for all its columns, and the
check that a column is there.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .shared import UsageError, int_at_least, local_inputs, some

_DASK_HINT = 'pip install "regmtl[dask]"'


def cluster_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                            "tcp://10.0.0.5:8786); the data are then Parquet, a file, a "
                            "directory or a glob (quoted) that the workers can read")
    group.add_argument("--workers", metavar="N", type=int_at_least(1),
                       help="run on a Dask cluster of N worker processes (one thread each) "
                            "started on this machine for the command; the data as for "
                            "--scheduler")
    group.add_argument("--out-of-core", action="store_true",
                       help="read the data, Parquet (a file, a directory of files or a "
                            "glob) with the rows sorted by task, chunk by chunk in this "
                            "process: data larger than memory (fit: the squared loss)")
    p.add_argument("--chunk-rows", metavar="N", type=int_at_least(1), default=2_000_000,
                   help="--out-of-core: about how many rows are in memory at a time "
                        "(whole tasks; default 2,000,000)")


def on_dask(args: argparse.Namespace) -> bool:
    return args.scheduler is not None or args.workers is not None


def cluster_flag(args: argparse.Namespace) -> str:
    return (f"--scheduler {args.scheduler}" if args.scheduler is not None
            else f"--workers {args.workers}")


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost cause's message (Dask wraps a reader's errors)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def dask_modules(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """dask, dask.dataframe and dask.distributed, imported here: Dask is an optional extra."""
    try:
        import dask
        import dask.dataframe as dd
        from dask import distributed
    except ImportError as exc:
        raise UsageError(f"{cluster_flag(args)} runs the command on Dask, which cannot be "
                         f"imported ({_first_line(exc)}): {_DASK_HINT}.") from None
    return dask, dd, distributed


@contextlib.contextmanager
def dask_client(args: argparse.Namespace, distributed: Any) -> Iterator[str]:
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


def dask_table(dd: Any, data: str) -> tuple[Any, list[Path]]:
    """The Dask DataFrame of a Parquet file, directory or glob, and its local paths."""
    if data.lower().rstrip("/").endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        raise UsageError(f"{data}: on a Dask cluster the data are read as Parquet (a file, a "
                         "directory of files, or a glob such as 'data/part-*.parquet'); "
                         "convert the table first, e.g. dask.dataframe.read_csv(...)"
                         ".to_parquet(...).")
    inputs = local_inputs(data)
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


def one_partitioning(frame: Any, columns: list) -> Any:
    """The table's ``columns`` behind one step that Dask cannot see through, so that every
    column taken from it has the same partitions. (Dask fuses small Parquet partitions by the
    share of the columns read: the features, the target and the task column read apart
    would have different partitions.)"""
    return frame[columns].map_partitions(_same_rows)


def need_column(frame: Any, col: Any, flag: str, data: str) -> None:
    if col not in frame.columns:
        raise UsageError(f"{flag} {col!r} is not a column of {data}; columns: "
                         f"{some(list(frame.columns), 20)}.")
