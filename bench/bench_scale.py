"""Benchmark: T tasks from Parquet on one machine -- generated, fitted out of core, certified,
predicted and scored chunk by chunk, the quality checked against the planted truth.

Stages (one line each: seconds, peak resident memory in GiB, the certificate where there is
one):

1. ``generate``: ``regmtl.datasets.make_parquet_tasks`` writes the training set (``--rows``
   rows per task, p = 20 float32 features, a shared support of 5 features) and a held-out set
   of the same tasks (``--test-rows`` rows each); ``--data DIR`` reuses a set written before
   (its held-out set: ``--test DIR``, default ``DIR_test``, written when missing);
2. ``open``: ``regmtl.ParquetTasks`` (the task column read alone);
3. ``alpha_max``: the out-of-core statistics pass (kept with the source for the fits);
4. ``fit l21`` at ``--fraction`` x alpha_max and ``fit mean`` (``MeanRegularized``, which has no
   alpha_max) at ``--mean-alpha``: ``MultiTaskRegressor(...).fit(source)``, the squared loss out
   of core; certificate = the duality gap (``dual_gap_``, absolute and over the objective) or
   the KKT residual; ``ok`` = no ConvergenceWarning;
5. ``predict``/``score``: ``model.predict(test)`` and ``model.score(test)`` streamed over the
   held-out set (mean R^2 over tasks), and the held-out mean squared error;
6. ``baselines``: per-task least squares (each task alone, with its intercept; 21 parameters
   from 25 rows) and the truth, on the same held-out rows;
7. ``logistic`` (T <= ``--logistic-max``, default 10^6): ``MultiTaskClassifier("l21")`` on the
   ``label`` column out of core (``fit(ParquetTasks(..., target="label"))``: proximal Newton,
   each model streamed), alpha = ``--fraction`` x ``alpha_max(source, "l21",
   loss="logistic")``; with ``--logistic-dask`` also through Dask reading the Parquet
   (``fit(ddf[x], ddf["label"], task=ddf["task"])`` on a LocalCluster of 2 one-thread worker
   processes, its peak memory the sum over the worker, nanny and client processes, sampled
   every 0.1 s), with the largest coefficient difference between the two; then the held-out
   accuracy streamed, beside the truth's (the sign of the true score).

Peak memory: this process's high-water mark (VmHWM, reset before each stage) plus the peak of
its child processes' resident memory, sampled every 0.1 s (psutil). The last line:
``scale: T=N certified=yes|no seconds=S peak_gib=G`` (S: every stage but ``generate``; G: the
largest stage peak).

Run:  flock /work/scratch/BIG.lock .venv/bin/python bench/bench_scale.py --tasks 1000000
      [--data DIR] [--test DIR] [--workdir DIR] [--chunk-rows N] [--no-logistic]
      [--logistic-dask]
(the script sets OPENBLAS/OMP/MKL_NUM_THREADS=1 itself, for itself and its workers)
"""

from __future__ import annotations

import os

os.environ.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"})  # before NumPy is imported, here and in workers

import argparse  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datasets import make_parquet_tasks, parquet_tasks_truth  # noqa: E402
from regmtl.streaming import predict_chunks  # noqa: E402

GIB = 1024 ** 3


# ----------------------------------------------------------------------------- memory
def _hwm_reset() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _hwm() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class Stage:
    """Times a stage and samples its peak memory (this process's VmHWM + its children's RSS,
    summed, sampled); prints its line at the end."""

    lines: list[dict] = []

    def __init__(self, name: str):
        self.name, self.cert, self.note = name, "", ""
        self.ok = True

    def __enter__(self):
        _hwm_reset()
        self.children_peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        self.t0 = time.perf_counter()
        self.caught = warnings.catch_warnings(record=True)
        self.warned = self.caught.__enter__()
        warnings.simplefilter("always", ConvergenceWarning)
        return self

    def _poll(self):
        me = psutil.Process()
        while not self.stop.wait(0.1):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.children_peak = max(self.children_peak, total)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.stop.set()
        self.thread.join()
        self.caught.__exit__(*exc)
        if any(issubclass(w.category, ConvergenceWarning) for w in self.warned):
            self.ok = False
            self.note += " ConvergenceWarning: " + str(next(
                w.message for w in self.warned if issubclass(w.category, ConvergenceWarning)))
        self.peak = (_hwm() + self.children_peak) / GIB
        row = dict(stage=self.name, seconds=self.seconds, peak_gib=self.peak, cert=self.cert,
                   ok=self.ok, note=self.note)
        Stage.lines.append(row)
        print(f"{self.name:<26} {self.seconds:7.1f} s  peak {self.peak:6.2f} GiB  "
              f"{self.cert}{'' if self.ok else '  NOT CERTIFIED'}{self.note}", flush=True)
        return False


def _certificate(model) -> str:
    if hasattr(model, "dual_gap_"):
        return (f"gap {model.dual_gap_:.2e} (/objective {model.dual_gap_ / model.objective_:.1e})"
                f", {model.n_iter_} it")
    return f"KKT {model.kkt_residual_:.2e}, {model.n_iter_} it"


# ----------------------------------------------------------------------------- quality
def _test_mse(model, test) -> float:
    """The held-out mean squared error of a fitted regressor, streamed."""
    sse, n = 0.0, 0
    for _, _, data, f in predict_chunks(model, test, lambda d, f: f, target=True):
        sse += float(((data.y - f) ** 2).sum())
        n += data.n_obs
    return sse / n


def _least_squares(train) -> np.ndarray:
    """Each task's least squares with its intercept (T x (p + 1), float32), chunk by chunk;
    the tasks of the generated sets have equal rows."""
    p = train.n_features
    out = np.empty((train.n_tasks, p + 1), dtype=np.float32)
    for lo, hi, block in train.chunks():
        n = int(block.indptr[1])
        Z = np.concatenate([np.asarray(block.X), np.ones((block.n_obs, 1))], axis=1)
        Z = Z.reshape(hi - lo, n, p + 1)
        G = np.einsum("tni,tnj->tij", Z, Z)
        r = np.einsum("tni,tn->ti", Z, block.y.reshape(hi - lo, n))
        out[lo:hi] = np.linalg.solve(G, r[..., None])[..., 0]
    return out


def _baselines(test, ols: np.ndarray, truth) -> tuple[float, float, float]:
    """Held-out MSE of per-task least squares and of the truth, and the truth's accuracy
    (the sign of the true score) on the labels."""
    sse_ols = sse_true = hits = 0.0
    n = 0
    for (lo, hi, block), (_, _, lab) in zip(test.chunks(), test.chunks(target="label"),
                                            strict=True):
        tk = block.task_of
        X = np.asarray(block.X)
        f_ols = np.einsum("ij,ij->i", X, ols[lo:hi, :-1][tk]) + ols[lo:hi, -1][tk]
        f_true = np.einsum("ij,ij->i", X, truth.coef_of(lo, hi)[tk]) + truth.intercept
        sse_ols += float(((block.y - f_ols) ** 2).sum())
        sse_true += float(((block.y - f_true) ** 2).sum())
        hits += float(((f_true > 0) == (lab.y > 0)).sum())
        n += block.n_obs
    return sse_ols / n, sse_true / n, hits / n


def _same_rows(part):
    return part


def _logistic(args, train_dir: Path, test, alpha: float, truth_acc: float) -> bool:
    source = rm.ParquetTasks(train_dir, target="label", chunk_rows=args.chunk_rows)
    with Stage("logistic fit (out of core)") as st:
        clf = rm.MultiTaskClassifier("l21", alpha=alpha, tol=args.tol).fit(source)
        st.cert = _certificate(clf)
    ok = st.ok
    if args.logistic_dask:
        ok = _logistic_dask(args, train_dir, source, alpha, clf) and ok
    with Stage("logistic score") as st:
        acc = clf.score(rm.ParquetTasks(test.path, target="label", chunk_rows=args.chunk_rows))
        st.cert = f"held-out accuracy {acc:.4f} (truth {truth_acc:.4f})"
    return st.ok and ok


def _logistic_dask(args, train_dir: Path, source, alpha: float, clf) -> bool:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    cols = [*source.feature_names, "label", "task"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster):
        with Stage("logistic fit (Dask)") as st:
            frame = dd.read_parquet(str(train_dir), columns=cols).map_partitions(_same_rows)
            dsk = rm.MultiTaskClassifier("l21", alpha=alpha, tol=args.tol)
            dsk.fit(frame[list(source.feature_names)], frame["label"], task=frame["task"])
            diff = float(np.abs(dsk.coef_ - clf.coef_).max())
            st.cert = _certificate(dsk) + f"; max |coef - out of core| {diff:.1e}"
    return st.ok


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--test-rows", type=int, default=5)
    ap.add_argument("--data", help="a training set written by make_parquet_tasks")
    ap.add_argument("--test", help="its held-out set (default: DATA_test)")
    ap.add_argument("--workdir", default="bench-scale-data",
                    help="where the sets are written when --data is not given")
    ap.add_argument("--chunk-rows", type=int, default=2_000_000)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--mean-alpha", type=float, default=0.3)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--logistic-max", type=int, default=1_000_000)
    ap.add_argument("--no-logistic", action="store_true")
    ap.add_argument("--logistic-dask", action="store_true",
                    help="also fit the logistic loss through Dask (memory: about 3x the "
                         "rows' float64 size across the workers)")
    args = ap.parse_args()
    T = args.tasks
    train_dir = Path(args.data) if args.data else Path(args.workdir) / f"t{T}"
    test_dir = Path(args.test) if args.test else Path(f"{train_dir}_test")
    print(f"bench_scale: T={T}, load {os.getloadavg()[0]:.2f}; train {train_dir}, held-out "
          f"{test_dir}; chunks of about {args.chunk_rows} rows", flush=True)
    for path, held_out, rows in ((train_dir, False, args.rows), (test_dir, True,
                                                                  args.test_rows)):
        if not (path / "_truth.json").exists():
            with Stage(f"generate {'held-out' if held_out else 'train'}") as st:
                make_parquet_tasks(path, T, n_rows=rows, held_out=held_out, random_state=0)
                st.cert = f"{sum(f.stat().st_size for f in path.glob('*.parquet')) / GIB:.2f} GB"
    truth = parquet_tasks_truth(train_dir)
    if truth.n_tasks != T:
        raise SystemExit(f"--data {train_dir} holds {truth.n_tasks} tasks, not --tasks {T}.")
    timed = len(Stage.lines)
    with Stage("open") as st:
        train = rm.ParquetTasks(train_dir, chunk_rows=args.chunk_rows)
        test = rm.ParquetTasks(test_dir, chunk_rows=args.chunk_rows)
        st.cert = f"{train.n_obs} rows, {test.n_obs} held-out rows"
    with Stage("alpha_max (stats pass)") as st:
        a_max = rm.alpha_max(train, penalty="l21")
        st.cert = f"alpha_max {a_max:.4g}"
    mse = {}
    for name, penalty, alpha in (("l21", "l21", args.fraction * a_max),
                                 ("mean", "mean", args.mean_alpha)):
        with Stage(f"fit {name}") as st:
            model = rm.MultiTaskRegressor(penalty, alpha=alpha, tol=args.tol).fit(train)
            st.cert = f"alpha {alpha:.4g}; " + _certificate(model)
        with Stage(f"predict {name}") as st:
            pred = model.predict(test)
            st.cert = f"{len(pred)} rows"
            del pred
        with Stage(f"score {name}") as st:
            r2 = model.score(test)
            mse[name] = _test_mse(model, test)
            st.cert = f"held-out R^2 {r2:.4f}, MSE {mse[name]:.4f}"
        del model
    with Stage("baselines") as st:
        ols = _least_squares(train)
        mse["least squares"], mse["truth"], truth_acc = _baselines(test, ols, truth)
        del ols
        st.cert = (f"held-out MSE least squares {mse['least squares']:.4f}, truth "
                   f"{mse['truth']:.4f}")
    ok = all(r["ok"] for r in Stage.lines)
    if not args.no_logistic and T <= args.logistic_max:
        with Stage("logistic alpha_max") as st:
            la = rm.alpha_max(rm.ParquetTasks(train_dir, target="label",
                                              chunk_rows=args.chunk_rows),
                              penalty="l21", loss="logistic")
            st.cert = f"alpha_max {la:.4g}"
        ok = _logistic(args, train_dir, test, args.fraction * la, truth_acc) and ok
    print("quality (held-out MSE): " + ", ".join(f"{k} {v:.4f}" for k, v in mse.items()))
    rows = Stage.lines[timed:]
    seconds = sum(r["seconds"] for r in rows)
    peak = max(r["peak_gib"] for r in rows)
    print(f"scale: T={T} certified={'yes' if ok else 'no'} seconds={seconds:.0f} "
          f"peak_gib={peak:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
