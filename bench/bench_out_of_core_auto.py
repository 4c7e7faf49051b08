"""Benchmark: ``regmtl fit --out-of-core --alpha auto`` against the fit at a fixed alpha.

Both run as a user runs them: the ``regmtl`` command in a fresh process on a Parquet set
written by :func:`regmtl.datasets.make_parquet_tasks` (``--tasks`` tasks of 25 rows and 20
features), one BLAS thread. ``--alpha auto`` holds out 20 % of each task's rows, fits the
path on the others and refits all rows at the alpha of the best held-out score; the fixed
fit runs at that same alpha (what a user who knew it would run). Each is timed
``--repeats`` times, alternately, and the medians are printed with their ratio and each
run's peak resident memory (the process's own ``ru_maxrss``).

Run:  .venv/bin/python bench/bench_out_of_core_auto.py [--tasks 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

#: The child: the command's ``main``, then its own peak memory on stderr's last line.
CHILD = ("import resource, sys; from regmtl.cli import main; rc = main(sys.argv[1:]); "
         "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr);"
         " sys.exit(rc)")


def run(argv: list[str]) -> tuple[float, float, str]:
    """Seconds, peak MB and stdout of one command in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, check=True,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = float(re.findall(r"peak (\d+)", done.stderr)[-1]) / 1024.0
    return seconds, peak, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from regmtl.datasets import make_parquet_tasks

    with tempfile.TemporaryDirectory() as root:
        data = os.path.join(root, "tasks")
        make_parquet_tasks(data, args.tasks, n_rows=25, random_state=0)
        base = ["fit", data, "--out-of-core", "--task-col", "task", "--target", "y"]
        auto = [*base, "--alpha", "auto", "--out", os.path.join(root, "auto.npz")]
        times: dict[str, list[float]] = {"auto": [], "fixed": []}
        peaks: dict[str, list[float]] = {"auto": [], "fixed": []}
        alpha = None
        for _ in range(args.repeats):
            seconds, peak, out = run(auto)
            times["auto"].append(seconds)
            peaks["auto"].append(peak)
            if alpha is None:
                alpha = re.search(r"alpha ([0-9.e+-]+) \(by held-out rows\)", out).group(1)
                print(out.strip().splitlines()[1])
            fixed = [*base, "--alpha", alpha, "--out", os.path.join(root, "fixed.npz")]
            seconds, peak, _ = run(fixed)
            times["fixed"].append(seconds)
            peaks["fixed"].append(peak)
    t_auto, t_fixed = np.median(times["auto"]), np.median(times["fixed"])
    print(f"\n{args.tasks} tasks x 25 rows x 20 features, medians of {args.repeats}")
    print(f"{'run':<22}{'seconds':>9}{'peak MB':>9}")
    print(f"{'--alpha ' + alpha:<22}{t_fixed:>9.2f}{max(peaks['fixed']):>9.0f}")
    print(f"{'--alpha auto':<22}{t_auto:>9.2f}{max(peaks['auto']):>9.0f}")
    print(f"auto / fixed: {t_auto / t_fixed:.2f}x (runs: auto {np.round(times['auto'], 2)}, "
          f"fixed {np.round(times['fixed'], 2)})")


if __name__ == "__main__":
    main()
