"""Scenario 4 of bench_l21.py: how regmtl's time grows with n, p and T.

Shared design, squared L2,1 at alpha_max/10 (data as in scenario 1): from a base (n, p, T), one
dimension at a time doubles ``steps`` times with the others held at the base. Each point is
timed like every other regmtl entry (the common gap, re-run tighter if short, median of
--repeats) and the growth exponent of each dimension is the least-squares slope of log time
against log size. Whether regmtl's "auto" choice runs the full Gram form (n >= 2p) changes along
the n axis; the table shows the shape class of each point.
"""

from __future__ import annotations

import _harness as h
import numpy as np
from _gap import duality_gap, p0_value
from _peers import regmtl_fit
from _problems import shared_regression
from _shared_suite import shape_kind

import regmtl

FULL = dict(base=(1000, 1000, 10), steps=4)
QUICK = dict(base=(200, 200, 5), steps=2)


def _time_point(args, n, p, T):
    X, Y, _ = shared_regression(n, p, T, n_active=min(args.n_active, p), rho=0.5, snr=5.0,
                                seed=0)
    alpha = regmtl.alpha_max(X, Y, penalty="l21") / 10.0
    P0 = p0_value(Y, "squared")
    return h.run_solver("regmtl", regmtl_fit(X, Y, alpha, P0, args.max_epochs),
                        lambda W, b: duality_gap(X, Y, W, b, alpha, P0=P0),
                        lambda W: int(np.count_nonzero(np.linalg.norm(W, axis=1))),
                        args.eps, args.eps, args.repeats, args.budget, max_tighten=4,
                        tol_fmt=".1e", stopped_at="gap ")


def scenario(args, summary) -> None:
    cfg = QUICK if args.quick else FULL
    base, steps = cfg["base"], cfg["steps"]
    if getattr(args, "scaling_base", None):
        base = tuple(args.scaling_base)
    if getattr(args, "scaling_steps", None):
        steps = args.scaling_steps
    print()
    print("#" * 110)
    print(f"Scenario 4: scaling of regmtl at alpha_max/10 (shared design, squared L2,1, eps = "
          f"{args.eps:g}); base n, p, T = {base}, one dimension doubled {steps} times, the others "
          "at the base")
    print(f"  {'dim':<4} {'n':>6} {'p':>6} {'T':>5} {'class':>5} {'time (s)':>9} {'runs':>4} "
          f"{'rel gap':>9} {'n_iter':>6} {'rows':>5} {'tol':>8}")
    for d, dim in enumerate("npT"):
        sizes, times = [], []
        for k in range(steps + 1):
            shape = list(base)
            shape[d] = base[d] * 2**k
            n, p, T = shape
            row = _time_point(args, n, p, T)
            t = float(np.median(row.times))
            sizes.append(shape[d])
            times.append(t)
            summary.series.append(dict(kind="scaling", dim=dim, n=n, p=p, T=T, time=t,
                                       n_iter=row.n_iter, reached=bool(row.reached)))
            print(f"  {dim:<4} {n:>6} {p:>6} {T:>5} {shape_kind(n, p):>5} {t:>9.3f} "
                  f"{len(row.times):>4} {max(row.certs):>9.2e} {row.n_iter!s:>6} "
                  f"{row.structure!s:>5} {row.tol:>8.1e}"
                  + ("" if row.reached else "  NOT REACHED"))
            if row.note:
                print(f"       note: {row.note.strip()}")
        slope = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
        line = (f"growth exponent in {dim} (slope of log time vs log {dim}, "
                f"{sizes[0]}..{sizes[-1]}): {slope:.2f}")
        print(f"  -> {line}")
        summary.note(line)
