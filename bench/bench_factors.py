"""Benchmark: what penalty factors, unpenalized and excluded features, bounds and
standardization cost beside the plain fit (issue: "factors and bounds cost <= 1.2x").

Problems: the shipped School data (139 tasks, 15,362 rows, 28 features), the squared loss
under L2,1 and L1, and the logistic loss (score above the median of its task) under L2,1, at
alpha 0.05 (squared) and 0.01 (logistic), at --tol (default 1e-4, the estimators'). Each case
is the plain fit's problem with one term added:

  factors      a factor per feature drawn from U(0.5, 2) (a change of units: the same solver);
               beside it "by hand": the plain fit on the columns divided by the factors, the
               same problem solved the same way, so that their ratio is the overhead alone
  year free    the three exam-year columns unpenalized (factor 0): projected out exactly for
               the squared loss, free rows of the proximal gradient for the logistic loss
  exclude      the constant column left out
  standardize  each column in units of its standard deviation; beside it "by hand": the
               plain fit on the standardized columns (the constant one left out)
  bounds       every coefficient in [-2, 2], binding (block coordinate descent under the box,
               ``solvers/parts/box_descent.py``)
  wide box     every coefficient in [-50, 50], inactive at the optimum (the same row)

The ratio is the case's time over the plain fit's, measured in the same run: medians of
--repeats fits, one BLAS thread, numba warmed up first. A ratio compares two different
problems (another penalty is another path to the optimum); iterations are printed beside it.

Run:  .venv/bin/python bench/bench_factors.py [--repeats 5] [--tol 1e-4]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import regmtl as rm  # noqa: E402

CASES = {
    "factors": lambda p, rng: dict(penalty_factor=rng.uniform(0.5, 2.0, p)),
    "year free": lambda p, rng: dict(penalty_factor={0: 0.0, 1: 0.0, 2: 0.0}),
    "exclude": lambda p, rng: dict(exclude=[p - 1]),
    "standardize": lambda p, rng: dict(standardize=True),
    "bounds": lambda p, rng: dict(lower_bounds=-2.0, upper_bounds=2.0),
    "wide box": lambda p, rng: dict(lower_bounds=-50.0, upper_bounds=50.0),
}


def timed(make, Xs, ys, repeats: int):
    times, model = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = make().fit(Xs, ys)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), model


def certificate(m) -> str:
    if hasattr(m, "dual_gap_"):
        return f"gap {m.dual_gap_:.1e}"
    return f"kkt {m.kkt_residual_:.1e}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    school = rm.datasets.load_school()
    Xs, ys = school.X, school.y
    labels = [(y > np.median(y)).astype(int) for y in ys]
    p = Xs[0].shape[1]
    setups = [("squared L2,1", rm.MultiTaskRegressor, "l21", 0.05, ys),
              ("squared L1", rm.MultiTaskRegressor, "l1", 0.05, ys),
              ("logistic L2,1", rm.MultiTaskClassifier, "l21", 0.01, labels)]
    print(f"{'problem':<15}{'case':<13}{'time':>10}{'ratio':>8}{'iter':>7}  certificate")
    for title, cls, pen, alpha, targets in setups:
        def make(cls=cls, pen=pen, alpha=alpha, **kw):
            return cls(pen, alpha=alpha, tol=args.tol, **kw)
        make().fit(Xs, targets)  # warm the compiled kernels
        base, m = timed(make, Xs, targets, args.repeats)
        print(f"{title:<15}{'plain':<13}{base * 1e3:>8.1f}ms{1.0:>8.2f}{m.n_iter_:>7}  "
              f"{certificate(m)}")
        d = CASES["factors"](p, np.random.default_rng(0))["penalty_factor"]
        d = d * (p / d.sum())  # (as rescale_factors does)
        scaled = [X / d for X in Xs]
        make().fit(scaled, targets)
        t, m = timed(make, scaled, targets, args.repeats)
        print(f"{'':<15}{'by hand':<13}{t * 1e3:>8.1f}ms{t / base:>8.2f}{m.n_iter_:>7}  "
              f"{certificate(m)}")
        for case, kw in CASES.items():
            terms = kw(p, np.random.default_rng(0))
            make(**terms).fit(Xs, targets)  # (its compiled kernels warmed too)
            t, m = timed(lambda terms=terms: make(**terms), Xs, targets, args.repeats)
            print(f"{'':<15}{case:<13}{t * 1e3:>8.1f}ms{t / base:>8.2f}{m.n_iter_:>7}  "
                  f"{certificate(m)}")
            if case == "standardize":  # the plain fit on the standardized columns
                sd = np.vstack(Xs).std(axis=0)
                kept = sd > 1e-12 * sd.max()
                scaled = [X[:, kept] / sd[kept] for X in Xs]
                make().fit(scaled, targets)
                t, m = timed(make, scaled, targets, args.repeats)
                print(f"{'':<15}{'  by hand':<13}{t * 1e3:>8.1f}ms{t / base:>8.2f}"
                      f"{m.n_iter_:>7}  {certificate(m)}")


if __name__ == "__main__":
    main()
