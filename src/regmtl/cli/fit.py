"""``regmtl fit``: fit one model on a data set or a table file and save it. This module holds the
command's options and the fit in memory (alpha given or by cross-validation, the offsets, the
file's own labels, the training score); ``--scheduler`` / ``--workers`` go to
:mod:`~regmtl.cli.fit_dask` and ``--out-of-core`` to :mod:`~regmtl.cli.out_of_core`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .dask_cluster import cluster_arguments, cluster_flag, on_dask
from .fit_dask import run_fit_dask
from .losses import check_loss_count, loss_and_kind, loss_arguments
from .out_of_core import run_fit_out_of_core
from .shared import (
    UsageError,
    data_arguments,
    int_at_least,
    is_file,
    load_data,
    parse_alpha,
    report_fit,
)
from .terms import estimator_terms, raw_bounds, terms_arguments, terms_given


def fit_arguments(p: argparse.ArgumentParser) -> None:
    data_arguments(p)
    from ..penalties import PENALTY_NAMES

    p.add_argument("--penalty", default="l21",
                   help=f"{', '.join(sorted(PENALTY_NAMES))} (default l21)")
    p.add_argument("--alpha", default="auto",
                   help="penalty strength, or 'auto' to choose it by cross-validation "
                        "(--out-of-core: on held-out rows, see --held-out)")
    p.add_argument("--cv", type=int_at_least(2), default=5,
                   help="CV folds for --alpha auto (in memory)")
    p.add_argument("--n-alphas", type=int_at_least(2), default=30,
                   help="grid size for --alpha auto (default 30): geometric, from "
                        "alpha_max down to alpha_max / 1000 where the penalty has one")
    p.add_argument("--no-standardize", action="store_true",
                   help="fit on the raw features (default: z-scored, the scaling saved with "
                        "the model)")
    p.add_argument("--tol", type=float, default=None,
                   help="the solver's stopping tolerance (relative duality gap or KKT "
                        "residual; default: the estimator's, 1e-4)")
    p.add_argument("--n-jobs", type=int, default=None)
    terms_arguments(p)
    loss_arguments(p)
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--coef-table", metavar="FILE",
                   help="write each coefficient with its standard error, z, p-value and 95%% "
                        "interval on the training rows (a fit without penalty, or L1 / L2,1 "
                        "debiased): a .csv table, or an .html / .md report with a plot")
    cluster_arguments(p)
    p.add_argument("--spill-dir", metavar="DIR",
                   help="--out-of-core: where the per-task statistics are spilled during "
                        "the fit (default: a temporary directory, removed after)")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="--out-of-core: a folder where the fit keeps its state (the "
                        "statistics pass chunk by chunk, FISTA's state at each certificate), "
                        "so that a run killed midway, started again with the same DIR, data "
                        "and options, resumes where it stopped; every file is checked "
                        "against its digest (a damaged one refused by name, see "
                        "--checkpoint-restart)")
    p.add_argument("--checkpoint-restart", action="store_true",
                   help="--checkpoint: a damaged file in DIR empties it (a warning names the "
                        "file) and the fit starts over, where it is refused by default")
    p.add_argument("--held-out", metavar="FRACTION", type=_fraction, default=None,
                   help="--out-of-core --alpha auto: the share of each task's rows held out "
                        "to choose alpha (default 0.2), the same rows on every run: those "
                        "of smallest hash of their row number with the fixed seed 0; the "
                        "path is fitted on the other rows, then the model on all rows")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


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


def run_fit(args: argparse.Namespace) -> int:
    from ..estimators import MultiTaskClassifier, MultiTaskRegressor
    from ..scaling import fit_standardized
    from ..selection import MultiTaskClassifierCV, MultiTaskRegressorCV

    given = terms_given(args)
    if given and (args.out_of_core or on_dask(args)):
        where = "--out-of-core" if args.out_of_core else cluster_flag(args)
        raise UsageError(f"{' '.join(given)} with {where}: per-feature terms take a fit in "
                         "memory (the problem they make needs the data in memory); leave "
                         "out --out-of-core / --scheduler / --workers, or the terms.")
    if args.coef_table is not None and (args.out_of_core or on_dask(args)):
        where = "--out-of-core" if args.out_of_core else cluster_flag(args)
        raise UsageError(f"--coef-table with {where}: the intervals take the rows in memory; "
                         "leave out one or the other.")
    if args.out_of_core:
        return run_fit_out_of_core(args)
    if args.spill_dir is not None:
        raise UsageError("--spill-dir is an option of --out-of-core; add that flag or leave "
                         "it out.")
    if args.held_out is not None:
        raise UsageError("--held-out is an option of --out-of-core --alpha auto (in memory "
                         "--alpha auto cross-validates: --cv K); leave it out.")
    if args.checkpoint is not None or args.checkpoint_restart:
        raise UsageError("--checkpoint keeps the state of an --out-of-core fit (a fit in "
                         "memory or on Dask keeps none); add --out-of-core or leave it out.")
    if on_dask(args):
        return run_fit_dask(args)
    loss = loss_and_kind(args)
    bunch, name = load_data(args)
    offsets = _offsets(args, bunch)
    binary = bunch.kind == "binary"
    check_loss_count(loss, bunch)
    options = {} if args.tol is None else {"tol": args.tol}
    if loss is not None and not binary:
        options["loss"] = loss
    names = [str(f) for f in bunch.feature_names]
    # z-score the columns first, unless --no-standardize or --standardize (the estimator's)
    zscore = not (args.no_standardize or args.standardize)
    scale = np.ones(len(names))
    if given and zscore:  # (the units the fit sees: bounds converted)
        from ..scaling import pooled_scaling

        scale = pooled_scaling(bunch.X)[1]
    terms = estimator_terms(args, names, scale)
    if args.alpha == "auto":
        cls = MultiTaskClassifierCV if binary else MultiTaskRegressorCV
        _check_takes(cls, options, offsets, args, terms)
        est = cls(args.penalty, alphas=args.n_alphas, cv=args.cv, n_jobs=args.n_jobs, **options,
                  **terms)
    else:
        cls = MultiTaskClassifier if binary else MultiTaskRegressor
        _check_takes(cls, options, offsets, args, terms)
        est = cls(penalty=args.penalty, alpha=parse_alpha(args), **options, **terms)
    ys = _user_labels(bunch) if binary else bunch.y
    if offsets is None:
        fitted = fit_standardized(est, bunch.X, ys, task_names=bunch.task_names,
                                  feature_names=names, standardize=zscore)
    else:
        fitted = _fit_with_offset(est, bunch, ys, offsets, names, zscore)
    raw_bounds(fitted, terms, scale)
    report_fit(args, fitted, name, len(bunch.X), sum(len(y) for y in bunch.y),
                _training_score(fitted, bunch, ys, offsets))
    if args.coef_table is not None:
        write_coef_table(args.coef_table, fitted, bunch, ys, offsets, name)
    return 0


def write_coef_table(path: str, fitted: Any, bunch: Any, ys: list, offsets: Any,
                     name: str) -> None:
    """``--coef-table``: the coefficient table on the training rows, as a CSV file or an
    HTML / Markdown report; a line says how many intervals leave out 0."""
    from ..coefficients_report import coefficient_report

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    X, Y, extra = _training_rows(fitted, bunch, ys, offsets)
    table = fitted.coef_table(X, Y, **extra)
    if out.suffix.lower() in (".html", ".htm", ".md"):
        coefficient_report(fitted, X, Y, **extra, data_name=name, table=table).write(out)
    else:
        table.to_csv(out, index=False)
    away = int(((table["ci_lower"] > 0) | (table["ci_upper"] < 0)).sum())
    methods = ", ".join(dict.fromkeys(table["method"].astype(str)))
    print(f"coefficient table ({methods}): {away} of {len(table)} 95% intervals leave out 0; "
          f"{out.resolve()}")


def _offsets(args: argparse.Namespace, bunch: Any) -> list[np.ndarray] | None:
    """The ``--offset`` column of a table file, per task in the order of ``bunch``'s rows."""
    from ..datasets import read_table

    if args.offset is None:
        return None
    if not is_file(args.data):
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


def _check_takes(cls: type, options: dict, offsets: Any, args: argparse.Namespace,
                 terms: dict | None = None) -> None:
    """Refuse ``--loss``, ``--offset`` or a per-feature term for an estimator that takes
    none."""
    import inspect

    missing = [k for k in terms or {} if k not in cls._get_param_names()]
    if missing:
        flags = ", ".join(sorted({f"--{k.replace('_', '-')}" for k in missing}))
        raise UsageError(f"{flags} with {'--alpha auto' if args.alpha == 'auto' else 'this'}: "
                         f"{cls.__name__} takes no {', '.join(missing)} in this version; give "
                         "--alpha VALUE.")
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
    from ..scaling import pooled_scaling, raw_units
    from ..scaling import standardize as scaled

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


def _training_rows(fitted: Any, bunch: Any, ys: list, offsets: Any) -> tuple[dict, dict, dict]:
    """The training rows as the fitted model reads them: X and y by task name (X with the
    fit's feature names), and ``offset`` when there is one."""
    import pandas as pd

    tasks = list(bunch.task_names)
    columns = list(getattr(fitted, "feature_names_in_", range(bunch.X[0].shape[1])))
    X = {t: pd.DataFrame(x, columns=columns) for t, x in zip(tasks, bunch.X, strict=True)}
    Y = dict(zip(tasks, ys, strict=True))
    extra = {} if offsets is None else {"offset": dict(zip(tasks, offsets, strict=True))}
    return X, Y, extra


def _training_score(fitted: Any, bunch: Any, ys: list, offsets: Any) -> tuple[str, float]:
    """(what, value) of the fit's score on its training rows: R^2 for the squared loss,
    deviance explained D^2 for the other regression losses, accuracy for a classifier."""
    from ..report import score_name

    X, Y, extra = _training_rows(fitted, bunch, ys, offsets)
    return score_name(fitted), float(fitted.score(X, Y, **extra))
