"""Benchmark: complementary-pairs stability selection (``regmtl.stability_selection``).

The acceptance problem of its tests (10 tasks of 60 rows sharing 5 of 60 features, Gaussian
design, noise sd 1), an L2,1 estimator and a grid of 20 alphas: the time against the number
of pairs ``B`` and ``n_jobs``, and on a Dask LocalCluster (``client=``, in-process workers),
with the selected set, its false selections and the bounds. The first call (compiling the
kernels) is left out of the timings.

Run:  .venv/bin/python bench/bench_stability.py [--pairs 10 25 50] [--jobs 1 2 4] [--dask]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import regmtl as rm


def problem(T: int = 10, n: int = 60, p: int = 60, k: int = 5, seed: int = 0):
    """Tasks sharing ``k`` features: rows of W ``N(0, 1) + sign``, noise sd 1."""
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    W = np.zeros((p, T))
    W[:k] = rng.standard_normal((k, T)) + np.sign(rng.standard_normal((k, T)))
    ys = [X @ W[:, t] + rng.standard_normal(n) for t, X in enumerate(Xs)]
    return Xs, ys


def timed(Xs, ys, **kw) -> tuple[float, rm.StabilitySelection]:
    t0 = time.perf_counter()
    res = rm.stability_selection(rm.MultiTaskRegressor(penalty="l21"), Xs, ys,
                                 random_state=0, **kw)
    return time.perf_counter() - t0, res


def line(label: str, seconds: float, res: rm.StabilitySelection) -> str:
    false = [s for s in res.selected_ if int(s[1:]) >= 5]
    return (f"{label:<22} {seconds:7.2f} s   selected {len(res.selected_):2d} "
            f"(false {len(false)})  q={res.q:5.2f}  bound MB={res.bound:5.2f}  "
            f"unimodal={res.bound_unimodal:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dask", action="store_true", help="also on a Dask LocalCluster")
    args = ap.parse_args()
    Xs, ys = problem()
    timed(Xs, ys, n_pairs=1)  # (the kernels compiled, the imports done)
    for jobs in args.jobs:
        timed(Xs, ys, n_pairs=2, n_jobs=jobs)  # (joblib's workers started)
        for B in args.pairs:
            print(line(f"B={B} n_jobs={jobs}", *timed(Xs, ys, n_pairs=B, n_jobs=jobs)),
                  flush=True)
    if args.dask:
        from dask.distributed import Client, LocalCluster

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                               dashboard_address=":0") as cluster, Client(cluster) as client):
                for B in args.pairs:
                    print(line(f"B={B} dask (2 workers)",
                               *timed(Xs, ys, n_pairs=B, client=client)), flush=True)


if __name__ == "__main__":
    main()
