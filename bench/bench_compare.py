"""Benchmark: the main job, ``regmtl compare school``, against the loop users write by hand.

Times the comparison the demo runs (the shipped School data, its 10 fixed splits, every default
model tuned by cross-validation inside the training rows, ``n_jobs=-1``) in a fresh process, as
a user would start it, and beside it the hand-written alternative users reach for first: one
scikit-learn ``RidgeCV`` per school (alphas on a log grid, leave-one-out inside each school's
training rows), over the same splits. Prints medians of ``--repeats`` runs, the time per model
(``Comparison.timings``), and the peak memory of the job.

Run:  .venv/bin/python bench/bench_compare.py [--repeats 3] [--splits 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

JOB = """
import json, resource, sys, time, warnings
t0 = time.perf_counter()
import regmtl as rm
from regmtl.datasets import load_school
warnings.simplefilter("ignore")
t_import = time.perf_counter() - t0
res = rm.compare(load_school(), splits={splits}, n_jobs={n_jobs}, progress=False)
t = time.perf_counter() - t0
summ = res.summary.set_index("model")
json.dump({{"total": t, "import": t_import,
           "timings": res.timings["fit_seconds"].to_dict(),
           "ev": summ["explained_variance_mean"].to_dict(),
           "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}, sys.stdout)
"""


def run_job(splits: int, n_jobs: int) -> dict:
    out = subprocess.run([sys.executable, "-c", JOB.format(splits=splits, n_jobs=n_jobs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def ridge_loop(splits: int) -> tuple[float, float]:
    """One RidgeCV per school and split (leave-one-out over 30 alphas); mean test EV."""
    from sklearn.linear_model import RidgeCV

    from regmtl.datasets import load_school

    school = load_school()
    t0 = time.perf_counter()
    evs = []
    for k in range(splits):
        sse = sst = 0.0
        ys_test = []
        train, test = school.splits[k]
        for X, y, tr, te in zip(school.X, school.y, train, test, strict=True):
            m = RidgeCV(alphas=np.logspace(-3, 3, 30)).fit(X[tr], y[tr])
            sse += float(np.sum((y[te] - m.predict(X[te])) ** 2))
            ys_test.append(y[te])
        yt = np.concatenate(ys_test)
        sst = float(np.sum((yt - yt.mean()) ** 2))
        evs.append(1.0 - sse / sst)
    return time.perf_counter() - t0, float(np.mean(evs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args()
    print(f"regmtl compare school: {args.splits} splits, n_jobs={args.n_jobs}, "
          f"{os.cpu_count()} cores, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
          f", load {os.getloadavg()[0]:.2f}")
    runs = [run_job(args.splits, args.n_jobs) for _ in range(args.repeats)]
    totals = [r["total"] for r in runs]
    print(f"whole job (fresh process, imports included): median {np.median(totals):.1f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in totals)}); imports {runs[0]['import']:.1f} s; "
          f"peak memory {max(r['peak_mib'] for r in runs):.0f} MiB")
    print(f"{'model':24s} {'fit s (all splits)':>18s} {'EV':>8s}")
    for name in runs[0]["timings"]:
        med = np.median([r["timings"][name] for r in runs])
        print(f"{name:24s} {med:18.2f} {runs[0]['ev'][name]:8.4f}")
    t_loop, ev_loop = ridge_loop(min(args.splits, 2))
    per_split = t_loop / min(args.splits, 2)
    ours = np.median(totals) / args.splits
    print(f"hand-written per-school RidgeCV loop: {per_split:.2f} s per split "
          f"(EV {ev_loop:.4f}); regmtl's whole comparison per split: {ours:.2f} s, "
          f"ratio {per_split / ours:.2f}")


if __name__ == "__main__":
    main()
