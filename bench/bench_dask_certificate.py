"""Benchmark: what a certificate on Dask brings to the client, this tree against another.

FISTA's iterates are held on the workers (``regmtl.solvers.blocks.fista_groups``); every
``check_every`` iterations a duality gap certifies them. This tree forms it from per-block
summaries the penalty declares (``Penalty.gap_summary``: O(p) or O(p^2) numbers per task block);
the tree it started from brought W and the gradient home (2 p T floats, plus three per task).
Per tree, in a child process of its own (its ``src`` first on ``PYTHONPATH``), on a
``LocalCluster`` of 2 worker processes (one thread, one BLAS thread each): FISTA on the Gram
form of T tasks of 4 to 12 rows (p features, row-sparse and low-rank true W, ``--blocks`` task
blocks), stopped after ``--iters`` iterations (a certificate every 10), ``--repeats`` times.
Printed: the bytes the groups' answers carry home per certificate (pickled, the calls passed
through), per iteration's steps, and for the final W; the seconds per iteration (median); the
peak resident memory of the client process; the last certificate (the same in both trees, to
rounding).

Run:  .venv/bin/python bench/bench_dask_certificate.py [--tasks 100000 1000000] [--base REV]
      [--penalties l21 trace] [--p 10] [--iters 30] [--repeats 3]
"""

from __future__ import annotations

import os

os.environ.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CERTIFICATE_CALLS = ("certify", "kkt_point", "kkt_squares", "sums")


def child(T: int, p: int, penalty: str, iters: int, repeats: int, blocks: int) -> dict:
    """One tree's figures (run with that tree's ``src`` first on the path)."""
    import logging
    import pickle
    import resource
    import time

    import numpy as np
    import pandas as pd
    from dask import dataframe as dd
    from distributed import Client, LocalCluster

    import regmtl as rm
    from regmtl.dask import KeptOnWorkers, as_dask_task_data
    from regmtl.solvers.parts.quadratic import task_quadratic
    from regmtl.solvers.parts.quadratic_fista import fista_certified

    logging.getLogger("distributed").setLevel(logging.ERROR)
    rng = np.random.default_rng(0)
    rows = rng.integers(4, 13, T)
    task = np.repeat(np.arange(T), rows)
    X = rng.standard_normal((len(task), p))
    W = np.zeros((p, T))
    W[: max(p // 4, 1)] = np.outer(rng.standard_normal(max(p // 4, 1)),
                                   1.0 + 0.3 * rng.standard_normal(T))
    y = np.einsum("ij,ji->i", X, W[:, task]) + rng.standard_normal(len(task))
    cols = [f"x{j}" for j in range(p)]
    df = pd.DataFrame(X, columns=cols).assign(task=task, y=y)
    del X, y, task
    seen: dict[str, list[int]] = {}
    call = KeptOnWorkers.call

    def spy(self, name, *args):
        out = call(self, name, *args)
        seen.setdefault(name, []).append(len(pickle.dumps(out)))
        return out

    KeptOnWorkers.call = spy
    pen = {"l21": rm.L21(), "trace": rm.Trace()}[penalty]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster):
        ddf = dd.from_pandas(df, npartitions=blocks)
        data = as_dask_task_data(ddf[cols], ddf["y"], ddf["task"],
                                 block_rows=-(-len(df) // blocks))
        q = task_quadratic(data, True)
        g = np.asarray(q.arrays(q.g)[0]) if hasattr(q, "arrays") else np.asarray(q.g)
        alpha = 0.1 * float(np.sqrt((g * g).sum(axis=1)).max())
        times, values = [], []
        for _ in range(repeats):
            seen.clear()
            t0 = time.perf_counter()
            _, it, _, value = fista_certified(q, pen, alpha, np.zeros((p, T)), tol=0.0,
                                              max_iter=iters, G0_norm=1.0)
            times.append((time.perf_counter() - t0) / it)
            values.append(value)
        holders = len(set(h for h in data._block_workers()))
    checks = [b for n in CERTIFICATE_CALLS for b in seen.get(n, [])]
    n_checks = len(seen.get("certify", seen.get("sums", [])))
    per_check = sum(checks) / max(n_checks, 1)
    steps = sum(sum(seen.get(n, [])) for n in ("gradient", "descend")) / iters
    final = sum(seen.get("columns", [])) or None
    return dict(T=T, p=p, penalty=penalty, blocks=blocks, holders=holders,
                bytes_per_check=per_check, bytes_per_iteration_steps=steps,
                bytes_final_w=final, s_per_iter=float(np.median(times)),
                certificate=float(values[-1]),
                client_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _run(src: Path, args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--penalties", nargs="+", default=["l21", "trace"],
                    choices=["l21", "trace"])
    ap.add_argument("--p", type=int, default=10)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base", default=None, help="a commit to compare with (git worktree)")
    ap.add_argument("--json", help="also write the rows as JSON")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        T, p, pen, iters, repeats, blocks = a.child
        print(json.dumps(child(int(T), int(p), pen, int(iters), int(repeats), int(blocks))))
        return
    trees = [("this", ROOT / "src")]
    tmp = None
    if a.base:
        tmp = Path(tempfile.mkdtemp(prefix="regmtl_base_"))
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp),
                        a.base], check=True, capture_output=True)
        trees.append((a.base[:10], tmp / "src"))
    rows = []
    try:
        print(f"{'tree':>10} {'pen':>6} {'T':>9} {'holders':>7} {'B/check':>12} "
              f"{'B/iter steps':>12} {'B final W':>12} {'s/iter':>8} {'client MB':>9} "
              f"{'certificate':>12}", flush=True)
        for T in a.tasks:
            for pen in a.penalties:
                for name, src in trees:
                    r = _run(src, [str(T), str(a.p), pen, str(a.iters), str(a.repeats),
                                   str(a.blocks)])
                    r["tree"] = name
                    rows.append(r)
                    final = f"{r['bytes_final_w']:,.0f}" if r["bytes_final_w"] else "-"
                    print(f"{name:>10} {pen:>6} {T:>9,} {r['holders']:>7} "
                          f"{r['bytes_per_check']:>12,.0f} "
                          f"{r['bytes_per_iteration_steps']:>12,.0f} {final:>12} "
                          f"{r['s_per_iter']:>8.3f} {r['client_peak_mb']:>9.0f} "
                          f"{r['certificate']:>12.4e}", flush=True)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp)],
                           check=False, capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
