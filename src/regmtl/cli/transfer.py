"""``regmtl transfer``: learning curves of knowledge transfer: tasks held out as new ones, a
model fitted on the others, each new task's test score by training size against single-task
and pooled fits (:func:`regmtl.transfer_curve.transfer_curve`), printed and written as a
report.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from .shared import data_arguments, int_at_least, load_data, print_table, safe_name


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got "
                                         f"{text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected sizes >= 2, got {text!r}")
    return values


def transfer_arguments(p: argparse.ArgumentParser) -> None:
    data_arguments(p)
    from ..penalties import PENALTY_NAMES

    shared = sorted(n for n, cls in PENALTY_NAMES.items()
                    if cls().transfer_strategy is not None and n != "mean")
    p.add_argument("--penalty", default="mean",
                   help=f"structure the new tasks inherit: mean (default), {', '.join(shared)}")
    p.add_argument("--new-tasks", type=int_at_least(1), default=20,
                   help="tasks held out as new ones, drawn with --random-state (default 20)")
    p.add_argument("--n-new", type=_int_list, default=[5, 10, 20, 40],
                   help="training sizes of a new task (default 5,10,20,40)")
    p.add_argument("--repeats", type=int_at_least(1), default=10,
                   help="random draws of the training rows per task and size (default 10)")
    p.add_argument("--strategy", choices=("auto", "support", "subspace", "mean", "cluster"),
                   default="auto", help="what a new task inherits (default: the penalty's "
                                        "own structure)")
    p.add_argument("--alpha", choices=("auto", "model", "cv"), default="auto",
                   help="the new task's strength: the model's own carried to its sample "
                        "count (auto, model) or leave-one-out CV")
    p.add_argument("--cv", type=int_at_least(2), default=3,
                   help="CV folds inside every old task for the model's alpha (default 3)")
    p.add_argument("--n-alphas", type=int_at_least(2), default=12,
                   help="values in the model's regularization grid (default 12)")
    p.add_argument("--n-jobs", type=int, default=-1, help="new tasks in parallel (joblib)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/transfer-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the table only")


def run_transfer(args: argparse.Namespace) -> int:
    from ..report import Report
    from ..selection import MultiTaskClassifierCV, MultiTaskRegressorCV
    from ..transfer_curve import transfer_curve

    t0 = time.perf_counter()
    bunch, name = load_data(args)
    cls = MultiTaskClassifierCV if bunch.kind == "binary" else MultiTaskRegressorCV
    est = cls(args.penalty, alphas=args.n_alphas, cv=args.cv, random_state=args.random_state)
    print(f"{name}: {len(bunch.X)} tasks ({bunch.kind}); {args.new_tasks} held out as new "
          f"tasks, a {args.penalty} model fitted on the others")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = transfer_curve(bunch, estimator=est, new_tasks=args.new_tasks,
                               n_new=args.n_new, n_repeats=args.repeats, alpha=args.alpha,
                               strategy=args.strategy,
                               random_state=args.random_state, n_jobs=args.n_jobs)
    metric = curve.metric
    rows = curve.summary.pivot(index="n_new", columns="method", values=f"{metric}_mean")
    wins = curve.summary[curve.summary["method"] == "transfer"].set_index("n_new")
    table = rows.reset_index().assign(ratio=rows["transfer"].to_numpy() /
                                      rows["single-task"].to_numpy(),
                                      wins=wins["wins"].to_numpy(),
                                      tasks=wins["n_tasks"].to_numpy())
    table = table.astype({"n_new": int, "tasks": int})
    strategies = sorted(set(curve.scores.loc[curve.scores["method"] == "transfer",
                                             "strategy"]))
    print(f"test {metric} of the new tasks (mean over tasks of {args.repeats} draws); "
          f"transfer strategy: {', '.join(strategies)}\n")
    cols = [("n_new", "n_new", "{:.0f}"), ("transfer", "transfer", "{:.4g}"),
            ("single-task", "single-task", "{:.4g}")]
    if "pooled" in table:
        cols.append(("pooled", "pooled", "{:.4g}"))
    cols += [("ratio", "transfer/single", "{:.3f}"), ("wins", "draws won", "{:.0%}"),
             ("tasks", "tasks", "{:.0f}")]
    print_table(table, cols)
    for w in caught[:5]:
        print(f"warning: {w.message}")
    if not args.no_report:
        path = Path(args.report or f"regmtl-report/transfer-{safe_name(name)}.html")
        rep = Report(f"Knowledge transfer on {name}")
        rep.add_text(
            f"{args.new_tasks} of {len(bunch.X)} tasks held out as new tasks (seed "
            f"{args.random_state}); a `{args.penalty}` model fitted on the other "
            f"{len(curve.old_tasks)}, its alpha by {args.cv}-fold CV. Each new task gets "
            f"n training rows drawn at random ({args.repeats} draws), the rest are its test "
            "rows. *transfer*: `regmtl.transfer` from the model; *single-task*: the new task "
            "alone (alpha by leave-one-out CV); *pooled*: one model for all old rows.")
        rep.add_table(table, caption=f"test {metric} by training size")
        rep.add_figure(curve.plot(), caption="mean ± sd over new tasks")
        path = rep.write(path)
        print(f"\nreport: {path.resolve()}")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return 0
