"""``regmtl relatedness``: are the tasks related? The tasks' similarity matrix, their groups
from the dendrogram and a permutation test against unrelated tasks
(:func:`regmtl.task_relatedness`), printed and written as a report.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from .shared import data_arguments, int_at_least, load_data, print_table, safe_name, some


def relatedness_arguments(p: argparse.ArgumentParser) -> None:
    data_arguments(p)
    p.add_argument("--method", choices=("ridge", "residual"), default="ridge",
                   help="ridge: compare the tasks' ridge coefficients, each task fitted alone "
                        "(default); residual: correlate out-of-fold residuals (shared design "
                        "only)")
    p.add_argument("--similarity", choices=("cosine", "correlation"), default="cosine",
                   help="similarity of two tasks' vectors (default cosine)")
    p.add_argument("--n-clusters", type=int_at_least(1), default=None,
                   help="cut the task dendrogram into K clusters (default: where tasks stop "
                        "being more alike than unrelated tasks)")
    p.add_argument("--permutations", type=int_at_least(1), default=200,
                   help="draws of unrelated tasks for the p-value (default 200)")
    p.add_argument("--cv", type=int_at_least(2), default=3,
                   help="CV folds inside every task for the ridge alpha (default 3)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--report", help="report file (.html or .md; default "
                                    "regmtl-report/relatedness-<data>.html)")
    p.add_argument("--no-report", action="store_true", help="print the result only")


def run_relatedness(args: argparse.Namespace) -> int:
    import textwrap

    from ..relatedness import task_relatedness
    from ..report import relatedness_report

    t0 = time.perf_counter()
    bunch, name = load_data(args)
    n_rows = sum(len(y) for y in bunch.y)
    print(f"{name}: {len(bunch.X)} tasks, {n_rows} rows, {len(bunch.feature_names)} "
          f"features ({bunch.kind})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rel = task_relatedness(bunch, method=args.method, similarity=args.similarity,
                               n_clusters=args.n_clusters, n_permutations=args.permutations,
                               cv=args.cv, random_state=args.random_state)
    print()
    print(textwrap.fill(rel.verdict, width=100))
    print()
    for line in rel.summary_lines():
        print(line)
    groups = rel.groups
    if groups:
        print(f"\ngroups of related tasks ({len(groups)}):")
        for k, members in enumerate(groups[:10], start=1):
            print(f"  {k} ({len(members)} tasks): {some(members)}")
        if len(groups) > 10:
            print(f"  ... (+{len(groups) - 10} more groups)")
    alone = [t for t in rel.matrix.index if t not in {m for g in groups for m in g}]
    if alone:
        print(f"in no group ({len(alone)} tasks): {some(alone)}")
    pairs = rel.to_frame().head(5)
    print("\nmost similar pairs:")
    print_table(pairs.assign(similarity=pairs["similarity"].round(4)),
                 [("task_a", "task a", "{}"), ("task_b", "task b", "{}"),
                  ("similarity", rel.similarity, "{:.4f}")])
    for w in caught[:5]:
        print(f"warning: {w.message}")
    if not args.no_report:
        path = Path(args.report or f"regmtl-report/relatedness-{safe_name(name)}.html")
        path = relatedness_report(rel, data_name=name).write(path)
        print(f"\nreport: {path.resolve()}")
    print(f"total time {time.perf_counter() - t0:.1f} s")
    return 0
