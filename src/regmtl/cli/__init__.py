"""The ``regmtl`` command: list data sets, compare models, check task relatedness, measure
transfer to new tasks, fit one model, predict with it (``fit`` and ``predict`` also on a Dask
cluster, with ``--scheduler`` or ``--workers``, and out of core, with ``--out-of-core``), export
it to ONNX for serving.

Each subcommand is a ``(help, add_arguments, run)`` entry of :data:`COMMANDS`; ``run`` takes the
parsed arguments and returns an exit status. A problem with the user's input (a missing file or
column, a bad value) ends with one ``regmtl: error: ...`` line on stderr and exit status 2.

One module per command (``datasets``, ``compare``, ``relatedness``, ``transfer``, ``fit``,
``predict``, ``export``) holds its arguments and its ``run``; ``fit`` and ``predict`` hand
``--scheduler`` / ``--workers`` to ``fit_dask`` / ``predict_dask`` (their Dask plumbing in
``dask_cluster``) and ``--out-of-core`` to ``out_of_core``; ``losses`` holds the loss options
and ``shared`` the data arguments, parsing helpers and output that several commands use. A new
command is a new module and one entry of :data:`COMMANDS`; a loss's own flags come from its
``Datafit.cli_parameters``. :class:`~regmtl.cli.shared.UsageError` is importable from here as
before the split, and so are ``_dask_summary`` and ``_local_inputs``, the two helpers the tests
call by these names.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .compare import compare_arguments, run_compare
from .datasets import datasets_arguments, run_datasets
from .export import export_arguments, run_export
from .fit import fit_arguments, run_fit
from .fit_dask import dask_summary as _dask_summary  # noqa: F401
from .predict import predict_arguments, run_predict
from .relatedness import relatedness_arguments, run_relatedness
from .shared import UsageError  # noqa: F401
from .shared import local_inputs as _local_inputs  # noqa: F401
from .transfer import run_transfer, transfer_arguments

__all__ = ["main", "build_parser", "COMMANDS"]


Command = tuple[str, Callable[[argparse.ArgumentParser], None],
                Callable[[argparse.Namespace], int]]


COMMANDS: dict[str, Command] = {
    "datasets": ("list the data sets regmtl can load", datasets_arguments, run_datasets),
    "compare": ("compare multi-task models with single-task and pooled baselines (the main "
                "job)", compare_arguments, run_compare),
    "relatedness": ("are the tasks related? similarity, clusters and a permutation test",
                    relatedness_arguments, run_relatedness),
    "transfer": ("learning curves of knowledge transfer to held-out tasks",
                 transfer_arguments, run_transfer),
    "fit": ("fit one model and save it", fit_arguments, run_fit),
    "predict": ("predict with a saved model", predict_arguments, run_predict),
    "export": ("a saved model as an ONNX graph for serving, verified by ONNX Runtime",
               export_arguments, run_export),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regmtl`` with one subparser per entry of :data:`COMMANDS`."""
    from .._version import __version__

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
