"""``regmtl fit`` and ``regmtl predict`` with ``--out-of-core``: Parquet with its rows sorted by
task, read chunk by chunk of whole tasks in this process (data larger than memory). ``fit``
fits the squared loss on the chunks (``--alpha auto``: chosen on held-out rows); ``predict``
writes one Parquet file chunk by chunk and sums the scores over the same pass.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .losses import loss_option
from .shared import UsageError, local_inputs, parse_alpha, report_fit


def _parquet_source(args: argparse.Namespace, features: Any, target: Any) -> Any:
    """The ParquetTasks of ``args.data`` (a file, a directory or a glob of files), with the
    columns of the command line."""
    from ..parquet import ParquetTasks

    if args.data.lower().rstrip("/").endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        raise UsageError(f"{args.data}: --out-of-core reads Parquet (a file, a directory of "
                         "files or a glob), its rows sorted by task; convert the table "
                         "first, e.g. pandas.read_csv(...).sort_values(task).to_parquet(...).")
    inputs = local_inputs(args.data)
    path = [str(p) for p in inputs] if any(c in args.data for c in "*?[") else args.data
    try:
        return ParquetTasks(path, target=target, task=args.task_col, features=features,
                            chunk_rows=args.chunk_rows)
    except ImportError as exc:
        raise UsageError(f"{args.data}: --out-of-core needs {exc}") from None


def run_fit_out_of_core(args: argparse.Namespace) -> int:
    """``regmtl fit --out-of-core``: the squared loss fitted on Parquet read chunk by chunk
    (one run of whole tasks in memory at a time), certified as in memory; ``--alpha auto``
    chosen on held-out rows (:func:`regmtl.selection.held_out.held_out_alpha`), then the fit
    of all rows at that alpha. The closing line adds the relative duality gap (to the
    objective at W = 0, as ``--tol``), alpha as a fraction of alpha_max and R^2 on the
    training rows (one more pass); a warning when the model does worse than each task's
    mean."""
    from ..estimators import MultiTaskRegressor
    from ..out_of_core import NearLeastSquaresWarning, source_alpha_max
    from ..scaling import raw_units
    from ..solvers.streamed.fit import source_quadratic

    auto = args.alpha == "auto"
    alpha = None if auto else parse_alpha(args)
    if args.held_out is not None and not auto:
        raise UsageError("--held-out chooses alpha on held-out rows (--alpha auto); with "
                         f"--alpha {args.alpha} leave it out.")
    loss = loss_option(args)
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
    tol = {} if args.tol is None else {"tol": args.tol}
    choice = None
    if auto:
        choice = _held_out_choice(args, fitted_on, name, options, tol)
        alpha = choice.alpha
    est = MultiTaskRegressor(penalty=args.penalty, alpha=alpha, solver_options=options or None,
                             **tol)
    with warnings.catch_warnings():
        if choice is not None:  # started from the chosen fit of the rows not held out
            est.set_params(warm_start=True)
            est.coef_ = choice.coef.copy()
            # (a small alpha chosen on held-out rows is no guess to warn about)
            warnings.simplefilter("ignore", NearLeastSquaresWarning)
        est.fit(fitted_on, checkpoint=_checkpoint(args))
    est.set_params(solver_options=None, warm_start=False)  # (the run's, not the model's)
    # alpha_max and the objective at W = 0 from the fit's statistics pass (kept with the
    # source: no pass over the rows)
    stats = source_quadratic(fitted_on, est.task_weight, est.fit_intercept)
    if choice is not None:
        alpha_max = choice.alpha_max
    else:
        try:
            alpha_max = source_alpha_max(fitted_on, args.penalty)
        except ValueError:  # a penalty without one
            alpha_max = None
    fitted = raw_units(est, mean, scale, names)
    r2 = float(fitted.score(source))
    if round(r2, 4) < 0:  # (below 0 as printed: not a fit at alpha_max off by rounding)
        warnings.warn(f"the model predicts the training rows worse than each task's mean "
                      f"does: R^2 {r2:.4f} < 0 (the constant model scores 0); try a smaller "
                      "alpha, another penalty, or --alpha auto.", UserWarning, stacklevel=2)
    report_fit(args, fitted, name, source.n_tasks, source.n_obs, ("R^2", r2),
               chosen_by="by held-out rows" if choice is not None else None,
               gap_scale=0.5 * float(stats.e.sum()), alpha_max=alpha_max)
    return 0


def _checkpoint(args: argparse.Namespace) -> Any:
    """The fit's checkpoint of ``--checkpoint DIR`` (``--checkpoint-restart``: a damaged
    file empties it and the fit starts over), or None."""
    if args.checkpoint is None:
        if args.checkpoint_restart:
            raise UsageError("--checkpoint-restart says what a damaged file in --checkpoint "
                             "DIR does; pass --checkpoint DIR too.")
        return None
    from ..solvers.streamed.checkpoint import Checkpoint

    return Checkpoint(args.checkpoint, "restart" if args.checkpoint_restart else "raise")


def _held_out_choice(args: argparse.Namespace, fitted_on: Any, name: str, options: dict,
                     tol: dict) -> Any:
    """``--alpha auto`` out of core: the path on the rows not held out, scored on the
    held-out ones (one line of what it found; a warning when no fit beats the constant
    model)."""
    from ..selection.held_out import held_out_alpha

    fraction = 0.2 if args.held_out is None else args.held_out
    choice = held_out_alpha(fitted_on, args.penalty, alphas=args.n_alphas, fraction=fraction,
                            seed=0, solver_options=options or None, **tol)
    k = choice.best_index

    def r2(value: float) -> str:  # (undefined where no task holds out two rows)
        return f", R^2 {value:.4f}" if np.isfinite(value) else ""

    fitted = (f"; the path stopped after {len(choice.alphas)} (no better score in the last "
              f"{len(choice.alphas) - 1 - k})" if choice.stopped_early else "")
    print(f"{name}: alpha by held-out rows ({int(choice.held_out_rows.sum())} rows, "
          f"{fraction:.0%} of each task's): {choice.alpha:.4g}, {k + 1} of "
          f"{len(choice.grid)} from {choice.grid[0]:.4g} down; held-out MSE "
          f"{-choice.scores[k]:.4g}{r2(choice.r2[k])} (each task's mean: MSE "
          f"{-choice.constant_score:.4g}{r2(choice.constant_r2)}){fitted}")
    if not choice.better_than_constant:
        warnings.warn(f"on the held-out rows no fit of the path predicts better than each "
                      f"task's mean (the constant model: MSE {-choice.constant_score:.4g}; "
                      f"the chosen fit, alpha {choice.alpha:.4g}: "
                      f"{-choice.scores[k]:.4g}, {choice.n_active[k]} feature(s)): the "
                      "features do not predict the target on rows left out of the fit.",
                      UserWarning, stacklevel=3)
    return choice


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


def run_predict_out_of_core(args: argparse.Namespace) -> int:
    """``regmtl predict --out-of-core``: the rows of a Parquet set sorted by task predicted
    chunk by chunk, written to one Parquet file (the task ids, the target when given, the
    predictions) in the input's row order; the scores against ``--target`` from the same
    pass."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..persistence import load
    from ..streaming import predict_chunks

    if not args.task_col:
        raise UsageError(f"{args.data}: pass --task-col, the column of the task ids.")
    if args.offset is not None:
        raise UsageError("--offset predicts in memory only; leave out --out-of-core.")
    out = _out_of_core_output(args.out, local_inputs(args.data))
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
                writer = pq.ParquetWriter(out, chunk.schema, write_page_checksum=True)
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
