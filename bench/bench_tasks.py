"""Benchmark: many tasks on one machine -- T = 10^3 ... 10^6 tasks of n_t = 20 rows, p = 20.

The "many models" pattern (one model per store, user or product) as one coupled fit, in long
form ``fit(X, y, task=ids)``: for each penalty and T, one fit with regmtl's defaults (tol 1e-4,
default max_iter) in a fresh child process, reporting

* time of ``fit`` (input conversion included), iterations, whether it is certified (no
  ConvergenceWarning; the estimator's own duality gap or KKT residual met tol);
* peak memory beyond the data: the child's peak resident set size after the fit minus its
  resident size before it (data made and numba warmed up), beside the size of X;
* the loop users run today: one scikit-learn ``Ridge`` per task on the same rows (a loop over
  the grouped rows; up to ``--loop-max-tasks`` tasks);
* the exponent of time in T (least-squares slope of log time on log T per penalty).

Data: 3 clusters of tasks, ``w_t = c_k + 0.3 N(0, I)`` on the first 10 features (the last 10
are noise), Gaussian X, unit noise. Penalties: l21 (alpha_max / 10), mean (alpha 0.1), graph
on a chain over the tasks in cluster order, graph on the 5-NN graph of 2-D task descriptors
(cluster center + noise), trace (alpha_max / 10), clustered (k = 3, eta = 1, alpha 0.1).

Run:  OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_tasks.py [--tasks 1000 10000 100000]
      [--penalties ...] [--loop-max-tasks 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

PENALTIES = ("l21", "mean", "graph_chain", "graph_knn", "trace", "clustered")
N_T, P = 20, 20


def make_data(T: int, seed: int = 0):
    """Long-form data: X (T n_t x p, Fortran), y, task ids, task descriptors (T x 2), labels."""
    rng = np.random.default_rng(seed)
    labels = np.sort(rng.integers(0, 3, T))  # tasks in cluster order (the chain follows it)
    centers = rng.standard_normal((3, P)) * (np.arange(P) < 10)
    W = (centers[labels] + 0.3 * rng.standard_normal((T, P)) * (np.arange(P) < 10)).T
    X = np.asfortranarray(rng.standard_normal((T * N_T, P)))
    task = np.repeat(np.arange(T), N_T)
    y = np.einsum("ij,ij->i", X, W.T[task]) + rng.standard_normal(T * N_T)
    Z = 3.0 * rng.standard_normal((3, 2))[labels] + rng.standard_normal((T, 2))
    return X, y, task, Z, labels


def _estimator(name: str, X, y, task, Z):
    import regmtl

    T = int(task.max()) + 1
    if name == "l21":
        return regmtl.MultiTaskRegressor(
            penalty="l21", alpha=regmtl.alpha_max(X, y, task=task, penalty="l21") / 10)
    if name == "trace":
        return regmtl.MultiTaskRegressor(
            penalty="trace", alpha=regmtl.alpha_max(X, y, task=task, penalty="trace") / 10)
    if name == "mean":
        return regmtl.MultiTaskRegressor(penalty="mean", alpha=0.1)
    if name == "graph_chain":
        return regmtl.MultiTaskRegressor(penalty=regmtl.GraphLaplacian(regmtl.chain_graph(T)),
                                         alpha=0.1)
    if name == "graph_knn":
        return regmtl.MultiTaskRegressor(penalty=regmtl.GraphLaplacian(regmtl.knn_graph(Z, 5)),
                                         alpha=0.1)
    if name == "clustered":
        return regmtl.MultiTaskRegressor(penalty=regmtl.Clustered(k=3, eta=1.0), alpha=0.1)
    raise ValueError(name)


def _status_kib(key: str) -> int:
    """A memory line of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def child(name: str, T: int) -> dict:
    """One fit in this process (run by the parent in a fresh interpreter)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning


    small = make_data(50, seed=1)  # numba compilation / cache loading outside the timing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _estimator(name, *small[:4]).fit(small[0], small[1], task=small[2])
    X, y, task, Z, _ = make_data(T)
    # the graph's construction is part of the user's fit
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak to the current size
        fh.write("5")
    before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est = _estimator(name, X, y, task, Z)
        est.fit(X, y, task=task)
    elapsed = time.perf_counter() - t0
    warned = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    cert = ("dual gap", est.dual_gap_) if hasattr(est, "dual_gap_") else (
        "KKT residual", est.kkt_residual_)
    return dict(time=elapsed, n_iter=int(est.n_iter_), certified=not warned,
                cert_kind=cert[0], cert=float(cert[1]), warning=warned[0][:160] if warned else "",
                peak_mib=(_status_kib("VmHWM") - before) / 1024, data_mib=X.nbytes / 2**20)


def loop_baseline(T: int) -> float:
    """A scikit-learn Ridge per task over the grouped rows (the independent-models loop)."""
    from sklearn.linear_model import Ridge

    X, y, task, _, _ = make_data(T)
    bounds = np.flatnonzero(np.diff(task)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(task)]
    t0 = time.perf_counter()
    for a, b in zip(starts, ends, strict=True):
        Ridge(alpha=1.0).fit(X[a:b], y[a:b])
    return time.perf_counter() - t0


def run_child(args: list[str], timeout: float) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f"> {timeout:g}s (killed)")
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return dict(error=lines[-1][:120] if lines else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--penalties", nargs="+", default=list(PENALTIES), choices=PENALTIES)
    ap.add_argument("--loop-max-tasks", type=int, default=100_000,
                    help="largest T at which the per-task Ridge loop is timed")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per fit")
    ap.add_argument("--child", nargs=2, metavar=("PENALTY", "T"), help=argparse.SUPPRESS)
    ap.add_argument("--loop", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]))))
        return
    if a.loop:
        print(json.dumps(dict(time=loop_baseline(a.loop))))
        return
    print(f"regmtl many-tasks benchmark: n_t = {N_T}, p = {P}, long form; one fresh process per "
          f"fit, one BLAS thread; load average {os.getloadavg()[0]:.2f}")
    loops = {}
    for T in a.tasks:
        if T <= a.loop_max_tasks:
            loops[T] = run_child(["--loop", str(T)], a.timeout).get("time", np.nan)
    print(f"{'penalty':<12} {'T':>9} {'time (s)':>9} {'iters':>6} {'certified':>9} "
          f"{'certificate':>22} {'X (MiB)':>8} {'peak+ (MiB)':>11} {'peak/X':>7} "
          f"{'Ridge loop (s)':>14} {'speed-up':>8}")
    times: dict[str, list[tuple[int, float]]] = {}
    for name in a.penalties:
        for T in a.tasks:
            r = run_child(["--child", name, str(T)], a.timeout)
            if "error" in r:
                print(f"{name:<12} {T:>9} {r['error']}")
                continue
            times.setdefault(name, []).append((T, r["time"]))
            loop = loops.get(T, np.nan)
            print(f"{name:<12} {T:>9} {r['time']:>9.2f} {r['n_iter']:>6} "
                  f"{'yes' if r['certified'] else 'NO':>9} "
                  f"{r['cert_kind'] + ' ' + format(r['cert'], '.1e'):>22} "
                  f"{r['data_mib']:>8.0f} {r['peak_mib']:>11.0f} "
                  f"{r['peak_mib'] / r['data_mib']:>7.2f} {loop:>14.2f} "
                  f"{loop / r['time']:>8.1f}" + (f"  ({r['warning']})" if r["warning"] else ""))
    print()
    print("exponent of time in T (slope of log time on log T):")
    for name, pts in times.items():
        if len(pts) >= 2:
            Ts, ts = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            print(f"  {name:<12} {np.polyfit(Ts, ts, 1)[0]:.2f}  over T = "
                  + ", ".join(str(p[0]) for p in pts))
    print("Ridge loop: " + ", ".join(f"T={T}: {t:.2f}s" for T, t in loops.items()))


if __name__ == "__main__":
    main()
