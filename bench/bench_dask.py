"""Benchmark: the Dask fit -- Parquet on local disk, 10M rows, 100,000 tasks, 1 and 2 workers.

The "many models" pattern at a size where the rows live in files: one coupled regmtl fit of long
form Dask input, ``fit(ddf[x cols], ddf["y"], task=ddf["task"])``, on a
``dask.distributed.LocalCluster`` of processes (one thread each, one BLAS thread), against

* the loop users run today: one scikit-learn ``Ridge`` per task, on the workers, as
  ``ddf.groupby("task").apply(...)`` (Dask shuffles the rows by task first);
* the in-memory regmtl fit of the same rows loaded into one process with pandas (a fresh child
  process per fit; ``--skip-in-memory`` to skip).

Data (written once, cached under ``--data-dir``; ``--rebuild`` rewrites it): T tasks of 50 to
150 rows (uniform, mean N / T), p = 20 Gaussian features, true W row-sparse and low-rank (5
active features; on them a shared mean plus a rank-2 spread over the tasks), intercepts
N(0, 0.5^2), unit noise in ``y``; ``yb`` = Bernoulli(sigmoid(score)) for the logistic loss.
Rows are shuffled across ~40 files (NOT grouped by task: the fit has to shuffle by task);
columns ``task`` (random distinct 9-digit int64 ids), ``x0..x19``, ``y``, ``yb``.

Per fit: wall time (median of ``--repeats``; with the default ``--input parquet`` reading the
files and the shuffle by task are part of it; ``--input persisted`` reads and persists the rows
on the workers once, untimed), ``n_iter_``, the certificate (the KKT residual, relative already,
or the duality gap over P0, the objective at W = 0, which the in-memory child computes; ``ok`` =
no ConvergenceWarning), the error of W against the true W, peak resident memory of each worker
(polled every 0.2 s with psutil on the worker processes' pids -- no ``client.run`` traffic in
the counts -- and the kernel's high-water mark VmHWM, reset before the fit; the larger of the
two) beside its resident size and Dask-managed bytes before the fit, the peak increase of this
process (which holds the client AND the LocalCluster's scheduler), and the bytes moved between
the processes: every byte written on a Dask TCP comm (``distributed.comm.tcp.TCP.write``
wrapped in each worker and in this process; distributed has no counter of all traffic -- the
workers' ``transfer_outgoing_bytes_total``, shown as "peer", counts only what they serve by
``get_data``), split by writer, bytes a process writes to itself apart, divided by ``n_iter_``.
The shuffle by task is measured once per cluster on its own (``regmtl.dask.as_dask_task_data``)
so that "per iteration" can be net of it. Round trips: the graphs the client submitted (a
scheduler plugin counts ``update_graph``) and the client's blocking ``gather`` calls, per
iteration. A fit past ``--fit-timeout`` is stopped by restarting the workers.

Alphas: ``--fraction`` x ``regmtl.alpha_max`` computed on the Dask input (l21, trace, logistic
l21; falls back to 1e-2, said so, if alpha_max refuses Dask input); ``mean``: ``--mean-alpha``.

Per iteration (``--iteration-traffic K1 K2``, ``--newton-steps K1 K2`` for the logistic loss): the
solve on task blocks already built, stopped after K1 and K2 iterations (``--repeats`` times,
medians): seconds, bytes, blocking gathers, graphs and scheduler tasks per iteration; in
memory the same solver row (FISTA on the Grams then ADMM, or proximal Newton in Gram form)
stopped the same way, in the child process; ``--profile-client`` adds a cProfile of the client
thread (its own work against its waits on results). Every Dask fit is compared with the
in-memory fit: ``max |coef - in memory|``. ``--block-rows`` sets the rows per task block,
``--alpha CASE=VALUE`` skips alpha_max.

Run:  .venv/bin/python bench/bench_dask.py [--quick] [--workers 1 2] [--penalties l21 mean trace]
      [--no-logistic] [--repeats 1] [--skip-in-memory] [--json PATH]
(the script sets OPENBLAS/OMP/MKL_NUM_THREADS=1 itself, for itself and its workers)
"""

from __future__ import annotations

import os

BLAS_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(BLAS_ENV)  # before NumPy is imported, here and in every worker

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

P = 20
XCOLS = [f"x{j}" for j in range(P)]
N_ACTIVE, RANK = 5, 2
PENALTIES = ("l21", "mean", "trace")
FULL = dict(rows=10_000_000, tasks=100_000, files=40)
QUICK = dict(rows=200_000, tasks=2_000, files=8)
FLOAT = 8  # bytes


# ----------------------------------------------------------------------------- data
def _dataset_dir(base: str, rows: int, tasks: int, files: int, seed: int) -> str:
    return os.path.join(base, f"rows{rows}_tasks{tasks}_files{files}_seed{seed}")


def make_dataset(base: str, rows: int, tasks: int, files: int, seed: int = 0,
                 rebuild: bool = False) -> dict:
    """Write the Parquet files once (file by file: one file's rows in memory at a time) and the
    true model (truth.npz: ids, W p x T, b); return the dataset's description."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _dataset_dir(base, rows, tasks, files, seed)
    marker = os.path.join(path, "_bench_meta.json")
    want = dict(version=2, rows_target=rows, tasks=tasks, files=files, seed=seed, p=P)
    if os.path.exists(marker) and not rebuild:
        with open(marker) as fh:
            meta = json.load(fh)
        if all(meta.get(k) == v for k, v in want.items()):
            return dict(meta, path=path, written_now=False)
    if os.path.exists(path):
        if not os.path.exists(marker):
            raise SystemExit(f"{path} exists but was not written by this script; remove it or "
                             "pass another --data-dir")
        shutil.rmtree(path)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    mean = rows / tasks
    lo, hi = int(round(mean / 2)), int(round(1.5 * mean))
    sizes = rng.integers(lo, hi + 1, tasks)
    N = int(sizes.sum())
    cand = np.unique(rng.integers(100_000_000, 1_000_000_000, int(1.1 * tasks) + 16))
    ids = rng.permutation(cand)[:tasks].astype(np.int64)  # distinct 9-digit ids, random order
    if len(ids) < tasks:  # (practically impossible)
        raise RuntimeError("not enough distinct ids drawn")
    active = np.sort(rng.choice(P, N_ACTIVE, replace=False))
    W = np.zeros((P, tasks))
    W[active] = (rng.standard_normal(N_ACTIVE)[:, None]
                 + 0.5 * rng.standard_normal((N_ACTIVE, RANK)) @ rng.standard_normal((RANK,
                                                                                       tasks)))
    b = 0.5 * rng.standard_normal(tasks)
    row_task = rng.permutation(np.repeat(np.arange(tasks, dtype=np.int32), sizes))
    tmp = path + f".tmp-{os.getpid()}"
    os.makedirs(os.path.join(tmp, "parquet"))
    cuts = np.linspace(0, N, files + 1).astype(np.int64)
    for f in range(files):
        t = row_task[cuts[f]:cuts[f + 1]]
        m = len(t)
        X = rng.standard_normal((m, P))
        score = np.einsum("ij,ji->i", X, W[:, t]) + b[t]
        cols = {"task": ids[t]}
        cols.update({c: X[:, j] for j, c in enumerate(XCOLS)})
        cols["y"] = score + rng.standard_normal(m)
        cols["yb"] = (rng.random(m) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
        pq.write_table(pa.table(cols), os.path.join(tmp, "parquet", f"part.{f:03d}.parquet"))
        del X, score, cols
    np.savez(os.path.join(tmp, "truth.npz"), ids=ids, W=W, b=b, active=active)
    meta = dict(want, rows=N, size_min=lo, size_max=hi, active=active.tolist(),
                bytes_on_disk=int(sum(os.path.getsize(os.path.join(tmp, "parquet", f))
                                      for f in os.listdir(os.path.join(tmp, "parquet")))),
                write_s=time.perf_counter() - t0)
    with open(os.path.join(tmp, "_bench_meta.json"), "w") as fh:
        json.dump(meta, fh)
    os.makedirs(base, exist_ok=True)
    os.replace(tmp, path)
    return dict(meta, path=path, written_now=True)


def parquet_dir(path: str) -> str:
    """The folder of the Parquet files (nothing else in it)."""
    return os.path.join(path, "parquet")


def truth(path: str):
    z = np.load(os.path.join(path, "truth.npz"))
    return z["ids"], z["W"], z["b"]


def rel_error(ids_fit, coef, ids, W) -> float:
    """||W_fit - W|| / ||W|| over the tasks (coef: T x p in the order of ids_fit)."""
    pos = {int(v): k for k, v in enumerate(ids)}
    order = np.fromiter((pos[int(v)] for v in np.asarray(ids_fit)), dtype=np.int64,
                        count=len(ids_fit))
    Wt = W[:, order].T
    return float(np.linalg.norm(np.asarray(coef) - Wt) / np.linalg.norm(Wt))


# ----------------------------------------------------------------------------- process memory
def _status_kib(key: str, pid="self") -> int:
    """A memory line of /proc/PID/status (VmRSS: resident now, VmHWM: its peak), in KiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm(pid="self") -> int:
    """Reset the kernel's peak-RSS mark of a process to its current RSS; return that (bytes)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return _status_kib("VmRSS", pid) * 1024


# ----------------------------------------------------------------------------- comm counters
def _is_own(local: str, peer: str) -> bool:
    """Whether a comm's peer is a socket of this very process (a connection to itself)."""
    import psutil

    def split(addr):
        host, _, port = addr.split("://")[-1].rpartition(":")
        return host.strip("[]"), int(port)

    try:
        lo, pe = split(local), split(peer)
        return any(c.laddr and c.raddr and (c.laddr.ip, c.laddr.port) == pe
                   and (c.raddr.ip, c.raddr.port) == lo
                   for c in psutil.Process().net_connections(kind="tcp"))
    except (ValueError, psutil.Error):
        return False


def _install_counter(dask_worker=None) -> bool:
    """Wrap distributed.comm.tcp.TCP.write (in the calling process) to add up bytes written:
    all, and those to a socket of the same process (a worker's p2p shuffle sends its own share
    through its own port; the client and the LocalCluster's scheduler share this process)."""
    from distributed.comm.tcp import TCP

    if getattr(TCP, "_bench_patched", False):
        return True
    orig = TCP.write

    async def write(self, msg, serializers=None, on_error="message"):
        n = int(await orig(self, msg, serializers=serializers, on_error=on_error) or 0)
        own = getattr(self, "_bench_own", None)
        if own is None:
            own = self._bench_own = _is_own(self.local_address, self.peer_address)
        TCP._bench_written += n
        if own:
            TCP._bench_self += n
        return n

    TCP._bench_written = 0
    TCP._bench_self = 0
    TCP.write = write
    TCP._bench_patched = True
    return True


def _worker_counters(dask_worker=None) -> dict:
    from distributed.comm.tcp import TCP

    return dict(written=int(getattr(TCP, "_bench_written", 0)),
                self=int(getattr(TCP, "_bench_self", 0)),
                managed=int(getattr(getattr(dask_worker, "state", None), "nbytes", 0) or 0),
                peer=int(getattr(dask_worker, "transfer_outgoing_bytes_total", 0)))


class FitTimeout(Exception):
    """A measured call ran past its limit (the workers were restarted to stop it)."""

    def __init__(self, limit: float):
        super().__init__(f"> {limit:g}s (stopped: workers restarted)")


class RoundTrips:
    """Scheduler plugin (the scheduler runs in this process): graphs submitted and their tasks."""

    def __init__(self):
        self.graphs = 0
        self.tasks = 0

    def update_graph(self, scheduler, *args, **kwargs):
        self.graphs += 1
        try:
            self.tasks += len(kwargs.get("tasks") or ())
        except TypeError:
            pass


def _make_plugin():
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Plugin(RoundTrips, SchedulerPlugin):
        name = "bench-dask-round-trips"

    return Plugin()


class Session:
    """A LocalCluster of ``n`` worker processes, a Client, the counters and the memory poller."""

    def __init__(self, n: int, memory_limit: str):
        from dask.distributed import Client, LocalCluster

        self.n = n
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                    memory_limit=memory_limit, dashboard_address=":0",
                                    env=dict(BLAS_ENV))
        self.client = Client(self.cluster)
        self.client.run(_install_counter)
        _install_counter()
        self.pids = dict(self.client.run(os.getpid))
        self.plugin = _make_plugin()
        self.cluster.scheduler.add_plugin(self.plugin)
        self.gathers = 0
        orig_gather = self.client.gather

        def gather(*args, **kwargs):
            self.gathers += 1
            return orig_gather(*args, **kwargs)

        self.client.gather = gather

    def close(self):
        try:
            self.client.close()
        finally:
            self.cluster.close()

    def counters(self) -> dict:
        from distributed.comm.tcp import TCP

        w = self.client.run(_worker_counters)
        return dict(local=int(TCP._bench_written), local_self=int(TCP._bench_self),
                    workers=sum(v["written"] for v in w.values()),
                    self=sum(v["self"] for v in w.values()),
                    peer=sum(v["peer"] for v in w.values()),
                    managed=max(v["managed"] for v in w.values()), graphs=self.plugin.graphs,
                    tasks=self.plugin.tasks, gathers=self.gathers)

    def restart(self):
        """Restart the worker processes (a fit past its limit); count and poll the new ones."""
        self.client.restart(wait_for_workers=True)
        self.client.run(_install_counter)
        self.pids = dict(self.client.run(os.getpid))

    def measure(self, fn, limit: float | None = None):
        """Run ``fn()`` and measure it: returns (its value, metrics). Past ``limit`` seconds
        the workers are restarted (which makes ``fn`` fail) and :class:`FitTimeout` raised."""
        import psutil

        base_workers = self.client.run(_reset_hwm)  # bytes, {address: rss}
        base_local = _reset_hwm()
        procs = {a: psutil.Process(pid) for a, pid in self.pids.items()}
        me = psutil.Process()
        peaks = dict(base_workers)
        peak_local = [base_local]
        stop = threading.Event()

        def poll():
            while not stop.wait(0.2):
                for a, pr in procs.items():
                    try:
                        peaks[a] = max(peaks[a], pr.memory_info().rss)
                    except psutil.Error:
                        pass
                peak_local[0] = max(peak_local[0], me.memory_info().rss)

        c0 = self.counters()
        th = threading.Thread(target=poll, daemon=True)
        th.start()
        t0 = time.perf_counter()
        box: dict = {}

        def target():
            try:
                box["value"] = fn()
            except BaseException as exc:  # raised below, in the calling thread
                box["error"] = exc

        runner = threading.Thread(target=target, daemon=True)
        runner.start()
        runner.join(limit)
        elapsed = time.perf_counter() - t0
        stop.set()
        th.join()
        if runner.is_alive():
            self.restart()
            runner.join(120)
            raise FitTimeout(limit)
        if "error" in box:
            raise box["error"]
        value = box["value"]
        c1 = self.counters()
        hwm = self.client.run(lambda: _status_kib("VmHWM") * 1024)
        for a, v in hwm.items():
            peaks[a] = max(peaks[a], v)
        peak_local[0] = max(peak_local[0], _status_kib("VmHWM") * 1024)
        d = {k: c1[k] - c0[k] for k in c0}
        return value, dict(
            time=elapsed, bytes=d["local"] + d["workers"] - d["self"], bytes_peer=d["peer"],
            bytes_worker_self=d["self"], bytes_client_scheduler=d["local_self"],
            bytes_from_scheduler=d["local"] - d["local_self"],
            bytes_from_workers=d["workers"] - d["self"],
            managed_before=c0["managed"], managed_after=c1["managed"],
            graphs=d["graphs"], tasks=d["tasks"], gathers=d["gathers"],
            worker_base=max(base_workers.values()), worker_peak=max(peaks.values()),
            worker_peak_increase=max(peaks[a] - base_workers[a] for a in peaks),
            client_increase=peak_local[0] - base_local)

    def idle_rate(self, seconds: float = 3.0) -> float:
        """Bytes per second moved while nothing runs (heartbeats, metrics)."""
        _, m = self.measure(lambda: time.sleep(seconds))
        return m["bytes"] / m["time"]


# ----------------------------------------------------------------------------- fits
def _estimator(case: str, alpha: float, tol: float, max_iter: int | None):
    import regmtl

    kw = dict(alpha=alpha, tol=tol)
    if max_iter:
        kw["max_iter"] = max_iter
    if case == "logistic":
        return regmtl.MultiTaskClassifier("l21", **kw)
    return regmtl.MultiTaskRegressor(case, **kw)


def _target(case: str) -> str:
    return "yb" if case == "logistic" else "y"


def _certificate(est) -> dict:
    """The fit's certificate: the KKT residual (relative already), or the duality gap, here
    over ``objective_`` (>= gap / P0, the estimator's own relative gap; replaced by gap / P0
    once P0, the objective at W = 0, is known from the in-memory runs)."""
    if hasattr(est, "dual_gap_"):
        obj = float(getattr(est, "objective_", np.nan))
        return dict(cert_kind="gap/obj", cert=float(est.dual_gap_) / obj if obj else np.nan,
                    gap=float(est.dual_gap_), objective=obj)
    if hasattr(est, "kkt_residual_"):
        return dict(cert_kind="KKT", cert=float(est.kkt_residual_))
    return dict(cert_kind="?", cert=np.nan)


def _p0(X, y, task, loss: str) -> float:
    """The objective at W = 0 (intercepts fitted): what regmtl's relative gap divides by."""
    from regmtl.problem import make_data, make_datafit
    from regmtl.solvers import reference

    return float(reference(make_data(X, y, task, loss=loss), make_datafit(loss), True).P0)


def fit_once(est, X, y, task):
    """Fit; returns (the estimator, its ConvergenceWarnings)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X, y, task=task)
    return est, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def short_traceback(exc: BaseException, frames: int = 4) -> str:
    tb = traceback.extract_tb(exc.__traceback__)[-frames:]
    names = [os.path.relpath(f.filename) if "regmtl" in f.filename
             else os.path.basename(f.filename) for f in tb]
    where = " <- ".join(f"{name}:{f.lineno} {f.name}"
                        for name, f in zip(reversed(names), reversed(tb), strict=True))
    msg = re.sub(r"'x\d+', (?:'x\d+', )+", "'x0', ..., ", str(exc))  # the column lists
    return f"{type(exc).__name__}: {msg[:300]}  [at {where}]"


def _tiny_ddf(seed: int = 1, tasks: int = 30):
    """A small in-memory Dask DataFrame of the dataset's shape (warm-up: imports and numba)."""
    import dask.dataframe as dd
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 40, tasks)
    t = np.repeat(rng.integers(100_000_000, 999_999_999, tasks), sizes)
    X = rng.standard_normal((len(t), P))
    s = X[:, :3].sum(axis=1)
    df = pd.DataFrame(X, columns=XCOLS)
    df["task"] = t
    df["y"] = s + rng.standard_normal(len(t))
    df["yb"] = (s + rng.standard_normal(len(t)) > 0).astype(np.int64)
    return dd.from_pandas(df.sample(frac=1.0, random_state=0), npartitions=3)


def _ridge_group(df):
    import pandas as pd
    from sklearn.linear_model import Ridge

    m = Ridge(alpha=1.0).fit(df[XCOLS].to_numpy(), df["y"].to_numpy())
    return pd.Series(np.r_[m.coef_, m.intercept_], index=[*XCOLS, "intercept"])


def ridge_loop(ddf):
    """One scikit-learn Ridge per task on the workers (groupby-apply: a shuffle by task)."""
    meta = {c: "f8" for c in [*XCOLS, "intercept"]}
    return ddf.groupby("task").apply(_ridge_group, meta=meta).compute()


def run_cluster(n: int, args, ds: dict, cases: list[str], results: list, notes: list,
                alphas: dict) -> None:
    import dask.dataframe as dd

    import regmtl

    pq_dir = parquet_dir(ds["path"])
    ids, W, _ = truth(ds["path"])
    persisted = None

    def read():
        """The input of every fit: the Parquet files read lazily (default), or (--input
        persisted) the rows read once and persisted on the workers before any timing."""
        nonlocal persisted
        if args.input == "parquet":
            return dd.read_parquet(pq_dir)
        if persisted is None:
            from distributed import wait

            t1 = time.perf_counter()
            persisted = dd.read_parquet(pq_dir).persist()
            wait(persisted)
            print(f"   input persisted on the workers in {time.perf_counter() - t1:.1f}s "
                  f"({persisted.npartitions} partitions)", flush=True)
        return persisted
    print(f"\n== {n} worker(s): LocalCluster(n_workers={n}, threads_per_worker=1, "
          f"processes=True, memory_limit={args.memory_limit}) ==", flush=True)
    t0 = time.perf_counter()
    s = Session(n, args.memory_limit)
    print(f"   cluster up in {time.perf_counter() - t0:.1f}s; worker pids "
          f"{sorted(s.pids.values())}", flush=True)
    try:
        # warm-up: imports, numba compilation / cache loading on the workers, p2p extension
        t1 = time.perf_counter()
        tiny = _tiny_ddf()
        ridge_loop(tiny)
        dask_ok = {}
        for case in cases:
            try:
                fit_once(_estimator(case, 0.05, 1e-3, 3), tiny[XCOLS], tiny[_target(case)],
                         tiny["task"])
                dask_ok[case] = None
            except Exception as exc:  # the estimator side: reported, the rest goes on
                dask_ok[case] = short_traceback(exc)
                print(f"   warm-up fit {case} on Dask input FAILED: {dask_ok[case]}", flush=True)
                notes.append(f"{n} worker(s), {case}: Dask fit failed in warm-up: "
                             f"{dask_ok[case]}")
        print(f"   warm-up (a tiny fit of each kind, 3 iterations): "
              f"{time.perf_counter() - t1:.1f}s", flush=True)
        idle = s.idle_rate()
        print(f"   idle traffic: {idle / 1e3:.1f} kB/s (heartbeats; included in every count "
              "below)", flush=True)

        base = dict(workers=n, rows=ds["rows"], tasks=ds["tasks"], idle_Bps=idle,
                    input=args.input)
        # the shuffle by task alone (regmtl's setup), to net it out of "per iteration"
        setup = None
        if any(v is None for v in dask_ok.values()):
            try:
                from regmtl.dask import as_dask_task_data

                def shuffle_only():
                    from distributed import futures_of, wait

                    ddf = read()
                    data = as_dask_task_data(ddf[XCOLS], ddf["y"], ddf["task"])
                    blocks = data.blocks
                    wait(futures_of(getattr(blocks, "items", blocks)))
                    return data

                blocks_data, m = s.measure(shuffle_only)
                n_blocks = int(blocks_data.n_blocks)
                setup = dict(m, n_blocks=n_blocks)
                results.append(dict(base, what="regmtl shuffle by task (setup only)",
                                    kind="setup", **setup))
                print(f"   shuffle by task alone: {m['time']:.1f}s, {m['bytes'] / 1e6:.1f} MB "
                      f"moved, {n_blocks} task blocks", flush=True)
            except Exception as exc:
                notes.append(f"{n} worker(s): the setup alone could not be measured: "
                             f"{short_traceback(exc)}")
        # alphas
        for case in cases:
            if case in alphas:  # computed on the previous cluster (the same data)
                continue
            if case == "mean":
                alphas[case] = (args.mean_alpha, f"{args.mean_alpha:g} (fixed; no alpha_max)")
                continue
            if dask_ok[case] is not None:
                continue
            try:
                ddf = read()
                t1 = time.perf_counter()
                amax = regmtl.alpha_max(ddf[XCOLS], ddf[_target(case)], ddf["task"],
                                        penalty="trace" if case == "trace" else "l21",
                                        loss="logistic" if case == "logistic" else "squared")
                ta = time.perf_counter() - t1
                alphas[case] = (args.fraction * float(amax),
                                f"{args.fraction:g} x alpha_max = {args.fraction:g} x "
                                f"{float(amax):.4g} (alpha_max on Dask input: {ta:.1f}s)")
            except Exception as exc:
                alphas[case] = (1e-2, "1e-2 (alpha_max failed on Dask input: "
                                f"{short_traceback(exc, 2)})")
                notes.append(f"{case}: alpha_max on Dask input failed, alpha = 1e-2: "
                             f"{short_traceback(exc)}")
            print(f"   alpha {case}: {alphas[case][1]}", flush=True)
        # what the iterations alone move: the solve on the blocks just built, stopped after
        # a few and after more iterations; the difference is the iterations' own traffic
        if args.iteration_traffic[1] > 0 and setup is not None:
            for case in cases:
                if case not in alphas or dask_ok[case] is not None:
                    continue
                data = blocks_data
                if case == "logistic":  # its own blocks: the labels encoded on them
                    from regmtl.problem import make_data

                    ddf = read()
                    data = make_data(ddf[XCOLS], ddf["yb"], ddf["task"], loss="logistic")
                row = iteration_traffic(s, data, case, alphas[case][0],
                                        _counts(args, case), args.repeats,
                                        args.profile_client)
                data = None
                results.append(dict(base, what=f"{case}: iterations alone", kind="iterations",
                                    case=case, n_blocks=n_blocks, **row))
        blocks_data = None  # (its blocks released before the fits)
        # the coupled fits
        for case in cases:
            label = "MultiTaskClassifier l21 (yb)" if case == "logistic" else \
                f"MultiTaskRegressor {case}"
            if dask_ok[case] is not None:
                results.append(dict(base, what=label, kind="dask", case=case,
                                    error=dask_ok[case]))
                continue
            runs = []
            repeats = args.repeats if case != "logistic" or args.logistic_repeats is None \
                else args.logistic_repeats
            for _ in range(repeats):
                try:
                    ddf = read()
                    est = _estimator(case, alphas[case][0], args.tol, args.max_iter)
                    yc = _target(case)
                    (est, warned), m = s.measure(
                        lambda est=est, ddf=ddf, yc=yc: fit_once(
                            est, ddf[XCOLS], ddf[yc], ddf["task"]), limit=args.fit_timeout)
                except FitTimeout as exc:
                    print(f"   {label}: {exc}", flush=True)
                    notes.append(f"{n} worker(s), {label}: {exc}")
                    runs = [dict(error=str(exc))]
                    persisted = None  # lost with the workers
                    break
                except Exception as exc:
                    err = short_traceback(exc)
                    print(f"   {label}: FAILED {err}", flush=True)
                    notes.append(f"{n} worker(s), {label}: fit failed: {err}")
                    runs = [dict(error=err)]
                    break
                m.update(n_iter=int(est.n_iter_), **_certificate(est),
                         certified=not warned, warning=warned[0][:160] if warned else "",
                         rel_err=(rel_error(est.tasks_, est.coef_, ids, W)
                                  if case != "logistic" else np.nan),
                         coef=dict(tasks=np.asarray(est.tasks_).astype(np.int64),
                                   coef=np.asarray(est.coef_)))
                del est  # (a fitted estimator may hold futures: not into the next baseline)
                runs.append(m)
                print(f"   {label}: {m['time']:.1f}s, {m['n_iter']} iterations, "
                      f"{m['bytes'] / 1e6:.1f} MB moved", flush=True)
            results.append(dict(base, what=label, kind="dask", case=case,
                                alpha=alphas.get(case, (np.nan, ""))[0],
                                alpha_note=alphas.get(case, (np.nan, ""))[1],
                                setup_bytes=setup["bytes"] if setup else None,
                                n_blocks=setup["n_blocks"] if setup else None,
                                **aggregate(runs)))
        # the baseline: a Ridge per task on the workers
        runs = []
        for _ in range(0 if args.skip_ridge else args.repeats):
            ddf = read()
            try:
                out, m = s.measure(lambda ddf=ddf: ridge_loop(ddf), limit=args.fit_timeout)
            except FitTimeout as exc:
                print(f"   Ridge loop (groupby-apply): {exc}", flush=True)
                runs = [dict(error=str(exc))]
                break
            m.update(rel_err=rel_error(out.index.to_numpy(), out[XCOLS].to_numpy(), ids, W),
                     n_iter=1)
            runs.append(m)
            print(f"   Ridge loop (groupby-apply): {m['time']:.1f}s, "
                  f"{m['bytes'] / 1e6:.1f} MB moved", flush=True)
        if runs:
            results.append(dict(base, what="sklearn Ridge per task (groupby.apply)",
                                kind="ridge", case="ridge", **aggregate(runs)))
    finally:
        s.close()


def _counts(args, case: str) -> tuple[int, int]:
    """The iteration counts K1, K2 of the iterations-alone runs (Newton steps for the
    logistic loss: ``--newton-steps``)."""
    return tuple(args.newton_steps) if case == "logistic" else tuple(args.iteration_traffic)


def _solve_k(data, case: str, alpha: float, k: int, solver: str = "auto"):
    """The solve of ``case`` on ``data`` stopped after ``k`` iterations (no warning)."""
    from sklearn.exceptions import ConvergenceWarning

    from regmtl.penalties import make_penalty
    from regmtl.problem import make_datafit
    from regmtl.solvers import solve

    loss = "logistic" if case == "logistic" else "squared"
    penalty = make_penalty("l21" if case == "logistic" else case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return solve(data, make_datafit(loss), penalty, alpha, tol=1e-12, max_iter=k,
                     solver=solver)


def iteration_traffic(s, data, case: str, alpha: float, counts: tuple[int, int],
                      repeats: int = 1, profile: bool = False) -> dict:
    """Bytes and time of the solve on task blocks already built, stopped after ``counts[0]``
    and after ``counts[1]`` iterations (``repeats`` times each, interleaved; medians): the
    difference over the extra iterations is what one iteration moves (its summaries,
    graphs and results) and costs, the rest the solve's fixed part (reference point,
    starting point, certificates, W home; the per-task Grams are built by an untimed solve
    first and kept, as along a path). ``profile``: the client's own time in the longer
    solve (cProfile of the calling thread: building graphs, waiting on results)."""
    k1, k2 = counts
    _solve_k(data, case, alpha, 1)  # (builds and keeps the Grams, untimed)
    runs: dict = {k1: [], k2: []}
    for _ in range(max(repeats, 1)):
        for k in (k1, k2):
            res, m = s.measure(lambda k=k: _solve_k(data, case, alpha, k))
            runs[k].append(dict(m, n_iter=res.n_iter))
    med = {k: {key: float(np.median([r[key] for r in v])) for key in v[0]}
           for k, v in runs.items()}
    a, b = med[k1], med[k2]
    extra = max(b["n_iter"] - a["n_iter"], 1)
    per = {key: (b[key] - a[key]) / extra for key in ("bytes", "bytes_peer", "time")}
    times = [(y["time"] - x["time"]) / extra for x, y in zip(runs[k1], runs[k2], strict=True)]
    row = dict(iters=(int(a["n_iter"]), int(b["n_iter"])), bytes_per_iter=per["bytes"],
               peer_per_iter=per["bytes_peer"], time_per_iter=per["time"],
               time_per_iter_runs=times, fixed_time=a["time"] - a["n_iter"] * per["time"],
               fixed_bytes=a["bytes"] - a["n_iter"] * per["bytes"],
               fixed_peer=a["bytes_peer"] - a["n_iter"] * per["bytes_peer"],
               graphs_per_iter=(b["graphs"] - a["graphs"]) / extra,
               gathers_per_iter=(b["gathers"] - a["gathers"]) / extra,
               tasks_per_iter=(b["tasks"] - a["tasks"]) / extra,
               load=os.getloadavg()[0])
    print(f"   {case}, iterations alone ({a['n_iter']:.0f} vs {b['n_iter']:.0f} on the blocks, "
          f"medians of {max(repeats, 1)}): {per['time']:.3f}s per iteration (runs "
          f"{', '.join(f'{t:.3f}' for t in times)}), {row['gathers_per_iter']:.2f} gathers, "
          f"{row['graphs_per_iter']:.2f} graphs, {row['tasks_per_iter']:.0f} tasks per "
          f"iteration; {fmt_bytes(per['bytes'])} moved per iteration "
          f"({fmt_bytes(per['bytes_peer'])} between workers); fixed part of the solve "
          f"{row['fixed_time']:.2f}s, {fmt_bytes(row['fixed_bytes'])}", flush=True)
    if profile:
        print_profile(lambda: _solve_k(data, case, alpha, k2))
    return row


def print_profile(fn, top: int = 25) -> None:
    """cProfile of ``fn()`` in the calling thread (the client: graph building, and the waits
    on the scheduler's answers; the scheduler and the workers run elsewhere), the largest
    cumulative times."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.sort_stats("cumulative").print_stats(top)
    waits = sum(v[2] for k, v in st.stats.items() if "acquire' of '_thread.lock" in k[2])
    print(f"   client profile: wall {wall:.2f}s, of which waiting on locks/conditions "
          f"(results not yet back) {waits:.2f}s; the client's own work about "
          f"{wall - waits:.2f}s")
    print("\n".join("      " + ln for ln in out.getvalue().splitlines()[:top + 12]
                    if ln.strip()))


def aggregate(runs: list[dict]) -> dict:
    """Median time over the repeats; peaks: the largest; counts: the median; the rest: last."""
    if not runs or "error" in runs[0]:
        return dict(runs[0]) if runs else {}
    out = dict(runs[-1])
    out["time"] = float(np.median([r["time"] for r in runs]))
    out["times"] = [r["time"] for r in runs]
    for k in ("worker_peak", "worker_peak_increase", "client_increase"):
        out[k] = max(r[k] for r in runs)
    for k in ("bytes", "bytes_peer", "bytes_worker_self", "bytes_client_scheduler",
              "bytes_from_scheduler", "bytes_from_workers", "graphs", "tasks", "gathers"):
        out[k] = float(np.median([r[k] for r in runs]))
    return out


# ----------------------------------------------------------------------------- in memory
def coef_against_memory(results: list[dict]) -> None:
    """``max |coef - in memory|`` of every Dask fit whose in-memory twin ran (the
    coefficients aligned by task id; then dropped from the results)."""
    mem = {r["case"]: r["coef"] for r in results if r.get("kind") == "memory" and "coef" in r}
    for r in results:
        c = r.pop("coef", None)
        if c is None or r.get("kind") != "dask" or r["case"] not in mem:
            continue
        m = mem[r["case"]]
        order = np.argsort(m["tasks"])
        pos = order[np.searchsorted(m["tasks"], c["tasks"], sorter=order)]
        r["max_coef_diff"] = float(np.max(np.abs(c["coef"] - m["coef"][pos])))
        print(f"  {r['case']}, {r['workers']} worker(s): max |coef - in memory| = "
              f"{r['max_coef_diff']:.2e}")


def set_block_rows(n: int) -> None:
    """Rows per task block of the Dask fits (the default of ``as_dask_task_data``)."""
    import regmtl.dask as rd

    rd.BLOCK_ROWS = n
    if rd.as_dask_task_data.__kwdefaults__.get("block_rows") is not None:
        rd.as_dask_task_data.__kwdefaults__["block_rows"] = n


#: The solver of the in-memory iterations alone: the row the Dask fit runs (FISTA on the
#: Grams, then ADMM, for the squared loss; proximal Newton in Gram form for the logistic).
SAME_ROW = {"logistic": "fista"}


def in_memory_iterations(X, y, task, case: str, alpha: float, counts) -> dict:
    """Seconds per iteration of the in-memory solve that the Dask fit runs (its row named:
    ``admm`` / ``fista``, where ``auto`` runs coordinate descent in memory): the solve stopped
    after K1 and K2 iterations, the Grams built by an untimed first solve."""
    from regmtl.problem import make_data

    loss = "logistic" if case == "logistic" else "squared"
    data = make_data(X, y, task, loss=loss)
    solver = SAME_ROW.get(case, "admm")
    _solve_k(data, case, alpha, 1, solver)
    out = {}
    for k in counts:
        t0 = time.perf_counter()
        res = _solve_k(data, case, alpha, k, solver)
        out[k] = (time.perf_counter() - t0, res.n_iter)
    (t1, n1), (t2, n2) = out[counts[0]], out[counts[1]]
    return dict(mem_iters=(n1, n2), mem_time_per_iter=(t2 - t1) / max(n2 - n1, 1),
                mem_fixed_time=t1 - n1 * (t2 - t1) / max(n2 - n1, 1), mem_solver=solver)


def in_memory_child(path: str, case: str, alpha: float, tol: float, max_iter: int | None,
                    fraction: float, counts=(0, 0), coef_out: str | None = None):
    """One in-memory regmtl fit in this (fresh) process: pandas reads the files, then fit.
    ``alpha`` NaN: ``fraction`` x alpha_max computed here (when the Dask side gave none).
    ``counts``: also the iterations alone (:func:`in_memory_iterations`); ``coef_out``: the
    fitted coefficients saved there (npz: tasks, coef)."""
    import pandas as pd

    import regmtl

    rng = np.random.default_rng(3)  # warm-up (numba) outside the timing
    t = np.repeat(np.arange(30), 25)
    Xw = rng.standard_normal((len(t), P))
    yw = Xw[:, 0] + rng.standard_normal(len(t))
    fit_once(_estimator(case, 0.05, 1e-3, None), Xw, (yw > 0).astype(np.int64)
             if case == "logistic" else yw, t)
    t0 = time.perf_counter()
    df = pd.read_parquet(parquet_dir(path), columns=["task", *XCOLS, _target(case)])
    X = df[XCOLS].to_numpy(dtype=np.float64)
    y = df[_target(case)].to_numpy()
    task = df["task"].to_numpy()
    del df
    load = time.perf_counter() - t0
    if not np.isfinite(alpha):
        alpha = fraction * regmtl.alpha_max(X, y, task, penalty="trace" if case == "trace"
                                            else "l21",
                                            loss="logistic" if case == "logistic" else "squared")
    before = _reset_hwm()
    t0 = time.perf_counter()
    est, warned = fit_once(_estimator(case, alpha, tol, max_iter), X, y, task)
    elapsed = time.perf_counter() - t0
    ids, W, _ = truth(path)
    loss = "logistic" if case == "logistic" else "squared"
    if coef_out:
        np.savez(coef_out, tasks=np.asarray(est.tasks_).astype(np.int64), coef=est.coef_)
    iters = in_memory_iterations(X, y, task, case, alpha, counts) if counts[1] > 0 else {}
    return dict(iters, alpha=alpha, time=elapsed, load_time=load, n_iter=int(est.n_iter_),
                **_certificate(est), P0=_p0(X, y, task, loss), loss=loss,
                certified=not warned, warning=warned[0][:160] if warned else "",
                client_increase=_status_kib("VmHWM") * 1024 - before,
                rss_before=before, data_bytes=int(X.nbytes + y.nbytes + task.nbytes),
                rel_err=rel_error(est.tasks_, est.coef_, ids, W) if case != "logistic"
                else np.nan)


def run_in_memory(path: str, case: str, alpha: float, args) -> dict:
    k1, k2 = _counts(args, case)
    coef_out = os.path.join(args.data_dir, f"coef_{case}_{os.getpid()}.npz")
    cmd = [sys.executable, __file__, "--in-memory-child", path, case, repr(alpha),
           "--tol", repr(args.tol), "--fraction", repr(args.fraction), "--coef-out", coef_out,
           "--iteration-traffic", *map(str, args.iteration_traffic),
           "--newton-steps", *map(str, args.newton_steps)]
    if args.max_iter:
        cmd += ["--max-iter", str(args.max_iter)]
    runs = []
    repeats = args.logistic_repeats if case == "logistic" and args.logistic_repeats else \
        args.repeats
    for _ in range(repeats):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                 env=dict(os.environ, **BLAS_ENV))
        except subprocess.TimeoutExpired:
            return dict(error=f"> {args.timeout:g}s (killed)")
        if out.returncode != 0:
            lines = (out.stderr or out.stdout).strip().splitlines()
            return dict(error=" | ".join(lines[-3:])[:400] if lines else
                        f"exit {out.returncode}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = dict(runs[-1])
    r["time"] = float(np.median([x["time"] for x in runs]))
    r["times"] = [x["time"] for x in runs]
    if "mem_time_per_iter" in r:
        r["mem_time_per_iter_runs"] = [x["mem_time_per_iter"] for x in runs]
        r["mem_time_per_iter"] = float(np.median(r["mem_time_per_iter_runs"]))
    if os.path.exists(coef_out):
        with np.load(coef_out) as z:
            r["coef"] = dict(tasks=z["tasks"], coef=z["coef"])
        os.remove(coef_out)
    r["client_increase"] = max(x["client_increase"] for x in runs)
    return r


# ----------------------------------------------------------------------------- report
def mib(b) -> str:
    return "-" if b is None or not np.isfinite(b) else f"{b / 2**20:,.0f}"


def fmt_bytes(b) -> str:
    if b is None or not np.isfinite(b):
        return "-"
    for unit, s in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= s:
            return f"{b / s:.3g} {unit}"
    return f"{b:.0f} B"


def print_table(results: list[dict]) -> None:
    cols = [("workers", 7), ("fit", 38), ("time (s)", 9), ("iters", 6), ("certificate", 16),
            ("ok", 3), ("rel.err W", 9), ("worker base", 11), ("worker peak", 11),
            ("client +", 9), ("moved", 9), ("cl<->sch", 9), ("sch->w", 9), ("w->", 9),
            ("peer", 9), ("w. self", 9), ("managed", 9),
            ("moved/iter", 10),
            ("net/iter", 9), ("graphs/iter", 11), ("gathers/iter", 12)]
    print("| " + " | ".join(f"{c:<{w}}" for c, w in cols) + " |")
    print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
    for r in results:
        if "error" in r:
            cells = [str(r.get("workers", "-")), r["what"], "FAILED: " + r["error"][:120]
                     + " ... (see the notes)"]
            print("| " + " | ".join(cells) + " |")
            continue
        it = r.get("n_iter") or np.nan
        setup = r.get("setup_bytes")
        net = (r["bytes"] - setup) / it if setup is not None and r.get("kind") == "dask" \
            else np.nan
        cert = "-" if "cert" not in r else f"{r['cert_kind']} {r['cert']:.1e}"
        cells = [str(r.get("workers", "-")), r["what"][:38], f"{r['time']:.2f}",
                 str(r["n_iter"]) if r.get("kind") in ("dask", "memory") else "-", cert,
                 ("yes" if r["certified"] else "NO") if "certified" in r else "-",
                 f"{r['rel_err']:.3f}" if np.isfinite(r.get("rel_err", np.nan)) else "-",
                 mib(r.get("worker_base")), mib(r.get("worker_peak")),
                 mib(r.get("client_increase")), fmt_bytes(r.get("bytes")),
                 fmt_bytes(r.get("bytes_client_scheduler")),
                 fmt_bytes(r.get("bytes_from_scheduler")), fmt_bytes(r.get("bytes_from_workers")),
                 fmt_bytes(r.get("bytes_peer")), fmt_bytes(r.get("bytes_worker_self")),
                 mib(r.get("managed_before")),
                 fmt_bytes(r["bytes"] / it) if r.get("kind") == "dask" else "-",
                 fmt_bytes(net),
                 f"{r['graphs'] / it:.1f}" if r.get("kind") == "dask" else
                 (f"{r['graphs']:.0f} (total)" if "graphs" in r else "-"),
                 f"{r['gathers'] / it:.1f}" if r.get("kind") == "dask" else
                 (f"{r['gathers']:.0f} (total)" if "gathers" in r else "-")]
        print("| " + " | ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, cols, strict=True))
              + " |")


def print_iterations(rows: list[dict]) -> None:
    """The iterations' own traffic against the fixed part of the solve (see
    :func:`iteration_traffic`)."""
    if not rows:
        return
    print("\nthe iterations alone (the solve on the task blocks, stopped after K1 and K2 "
          "iterations; per iteration = the difference / (K2 - K1), fixed = the rest of the "
          "shorter solve; 'between workers': get_data served to other workers or the scheduler)")
    print("| workers | fit | blocks | iterations | moved/iter | between workers/iter | s/iter | "
          "graphs/iter | gathers/iter | fixed moved | fixed between workers | W |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['case']} | {r['n_blocks']} | {r['iters'][0]} / "
              f"{r['iters'][1]} | {fmt_bytes(r['bytes_per_iter'])} | "
              f"{fmt_bytes(r['peer_per_iter'])} | {r['time_per_iter']:.3f} | "
              f"{r['graphs_per_iter']:.1f} | {r['gathers_per_iter']:.1f} | "
              f"{fmt_bytes(r['fixed_bytes'])} | {fmt_bytes(r['fixed_peer'])} | "
              f"{fmt_bytes(P * r['tasks'] * FLOAT)} |")


def print_per_iteration(results: list[dict]) -> None:
    """One line per fit and place: seconds per iteration (the iterations alone; in memory the
    same solver row), blocking round trips and graphs per iteration, the whole fit's time,
    iterations and ``max |coef - in memory|``."""
    print("\nper iteration (iterations alone, medians; in memory: the row the Dask fit runs, "
          "stopped after K1 and K2 iterations, a fresh process per repeat) and the whole fit")
    print("| fit | where | s/iter | gathers/iter | graphs/iter | tasks/iter | fit s | "
          "fit iters | fit gathers | max abs coef - mem | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in dict.fromkeys(r["case"] for r in results if "case" in r):
        for r in results:
            if r.get("case") != case or "error" in r:
                continue
            if r.get("kind") == "memory":
                print(f"| {case} | in memory ({r.get('mem_solver', '-')}) | "
                      f"{r.get('mem_time_per_iter', np.nan):.3f} | 0 | 0 | - | "
                      f"{r['time']:.1f} (auto) | {r['n_iter']} | - | 0 | - |")
            elif r.get("kind") == "iterations":
                fit = next((x for x in results if x.get("kind") == "dask"
                            and x.get("case") == case and x["workers"] == r["workers"]
                            and "error" not in x), {})
                print(f"| {case} | {r['workers']} workers, {r['n_blocks']} blocks | "
                      f"{r['time_per_iter']:.3f} | {r['gathers_per_iter']:.2f} | "
                      f"{r['graphs_per_iter']:.2f} | {r.get('tasks_per_iter', np.nan):.0f} | "
                      f"{fit.get('time', np.nan):.1f} | {fit.get('n_iter', '-')} | "
                      f"{fit.get('gathers', np.nan):.0f} | "
                      f"{fit.get('max_coef_diff', np.nan):.1e} | {r.get('load', np.nan):.1f} |")


def on_paper(results: list[dict], ds: dict, args) -> list[dict]:
    """Communication of one fit on a 100-node cluster, from the measured iterations."""
    nodes, bw, lat = args.paper_nodes, args.paper_gbit * 1e9 / 8, args.paper_latency_ms / 1e3
    T, scalars = ds["tasks"], 8
    rows = []
    print(f"\non paper: a {nodes}-node cluster ({args.paper_gbit:g} Gbit/s at the client, "
          f"{args.paper_latency_ms:g} ms per round trip, one task block per node, the client "
          "the only bottleneck, the data shuffled by task once beforehand)")
    print("  model: per iteration every node sends the penalty's summary (p numbers for l21 and "
          f"mean, a p x p Gram for trace) plus {scalars} scalars and receives the same summary "
          f"back; the client gathers W (p x T floats) once at the end. Round trips per iteration: "
          "the blocking gathers measured on the largest run (at least 1).")
    print("| fit | iters | summary/node | bytes/iter (model) | round trips/iter | comm/iter "
          "(ms) | comm, whole fit (s) | W at the end (s) | measured bytes/iter here | "
          "measured per block x nodes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    dask_rows = [r for r in results if r.get("kind") == "dask" and "error" not in r]
    for case in dict.fromkeys(r["case"] for r in dask_rows):
        mine = [r for r in dask_rows if r["case"] == case]
        r = max(mine, key=lambda x: x["workers"])
        summary = P * P if case == "trace" else P
        per_iter = nodes * 2 * (summary + scalars) * FLOAT
        trips = max(1.0, r["gathers"] / r["n_iter"])
        t_iter = trips * lat + per_iter / bw
        t_W = P * T * FLOAT / bw
        alone = [x for x in results if x.get("kind") == "iterations" and x["case"] == case
                 and x["workers"] == r["workers"]]
        if alone:  # the iterations' own bytes (the fit's total less its shuffle is noisier)
            net = alone[0]["bytes_per_iter"]
        else:
            net = ((r["bytes"] - r["setup_bytes"]) / r["n_iter"]
                   if r.get("setup_bytes") is not None else r["bytes"] / r["n_iter"])
        per_block = net / r["n_blocks"] * nodes if r.get("n_blocks") else np.nan
        rows.append(dict(case=case, n_iter=r["n_iter"], summary_floats=summary,
                         model_bytes_per_iter=per_iter, round_trips_per_iter=trips,
                         comm_s_per_iter=t_iter, comm_s_total=r["n_iter"] * t_iter,
                         W_gather_s=t_W, measured_net_bytes_per_iter=net,
                         measured_scaled_bytes_per_iter=per_block))
        print(f"| {r['what']} | {r['n_iter']} | {summary} floats | {fmt_bytes(per_iter)} | "
              f"{trips:.1f} | {1e3 * t_iter:.2f} | {r['n_iter'] * t_iter:.2f} | {t_W:.3f} | "
              f"{fmt_bytes(net)} | {fmt_bytes(per_block)} |")
    shuffle = ds["rows"] * (P + 2) * FLOAT
    print(f"  the shuffle by task beforehand: {fmt_bytes(shuffle)} of rows (x0..x19, y, task), "
          f"(1 - 1/{nodes}) of it crossing the network, {fmt_bytes(shuffle / nodes)} sent by each "
          f"node, in parallel: {shuffle / nodes / bw:.3f} s at {args.paper_gbit:g} Gbit/s per "
          "node.")
    print("  'measured per block x nodes': the bytes per iteration measured here (task graphs, "
          "results and heartbeats: the iterations alone where measured, else the fit's total net "
          "of the shuffle, over n_iter) per task block, times one block per node: "
          "what this implementation would move per iteration, its graphs growing with the "
          "blocks.")
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK['rows']:,} rows, {QUICK['tasks']:,} tasks, "
                         f"{QUICK['files']} files (a smoke test, < 2 minutes)")
    ap.add_argument("--rows", type=int, help=f"rows (default {FULL['rows']:,})")
    ap.add_argument("--tasks", type=int, help=f"tasks (default {FULL['tasks']:,})")
    ap.add_argument("--files", type=int, help=f"Parquet files (default {FULL['files']})")
    ap.add_argument("--data-dir", default="/tmp/regmtl_bench_dask",
                    help="cache folder of the Parquet data (one subfolder per size)")
    ap.add_argument("--rebuild", action="store_true", help="rewrite the cached data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--penalties", nargs="+", default=list(PENALTIES), choices=PENALTIES)
    ap.add_argument("--logistic", action=argparse.BooleanOptionalAction, default=True,
                    help="also fit MultiTaskClassifier('l21') on yb (default: yes)")
    ap.add_argument("--fraction", type=float, default=0.1, help="alpha = fraction x alpha_max")
    ap.add_argument("--mean-alpha", type=float, default=0.1, help="alpha of the mean penalty")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=None, help="(default: the estimator's)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per fit (median)")
    ap.add_argument("--memory-limit", default="8GiB", help="per worker")
    ap.add_argument("--input", choices=("parquet", "persisted"), default="parquet",
                    help="parquet (default): every fit reads the files (dd.read_parquet, timed); "
                         "persisted: the rows are read once and persisted on the workers before "
                         "the timed fits (not timed; in the workers' baseline memory)")
    ap.add_argument("--fit-timeout", type=float, default=None,
                    help="seconds per Dask fit (and Ridge loop) before its workers are restarted "
                         "to stop it (default 900; --quick 120)")
    ap.add_argument("--skip-in-memory", action="store_true")
    ap.add_argument("--iteration-traffic", type=int, nargs=2, default=[3, 23],
                    metavar=("K1", "K2"),
                    help="measure the iterations' own traffic: the solve on the task blocks "
                         "stopped after K1 and after K2 iterations (0 0: skip)")
    ap.add_argument("--newton-steps", type=int, nargs=2, default=[1, 3], metavar=("K1", "K2"),
                    help="the logistic fit's iterations alone: Newton steps K1 and K2")
    ap.add_argument("--profile-client", action="store_true",
                    help="cProfile the client during the longer iterations-alone solve")
    ap.add_argument("--alpha", nargs="+", default=[], metavar="CASE=ALPHA",
                    help="alphas given (e.g. l21=53.76 logistic=5.899): no alpha_max for them")
    ap.add_argument("--logistic-repeats", type=int, default=None,
                    help="timed runs of the logistic fit (default: --repeats)")
    ap.add_argument("--block-rows", type=int, default=None,
                    help="rows per task block (regmtl.dask.BLOCK_ROWS; default: regmtl's)")
    ap.add_argument("--skip-ridge", action="store_true",
                    help="skip the per-task Ridge loop (groupby-apply) on the workers")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per in-memory fit")
    ap.add_argument("--paper-nodes", type=int, default=100)
    ap.add_argument("--paper-gbit", type=float, default=10.0)
    ap.add_argument("--paper-latency-ms", type=float, default=1.0)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--in-memory-child", nargs=3, metavar=("PATH", "CASE", "ALPHA"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--coef-out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.in_memory_child:
        path, case, alpha = a.in_memory_child
        print(json.dumps(in_memory_child(path, case, float(alpha), a.tol, a.max_iter,
                                         a.fraction, _counts(a, case), a.coef_out)))
        return
    if a.block_rows:
        set_block_rows(a.block_rows)
    size = QUICK if a.quick else FULL
    a.fit_timeout = a.fit_timeout or (120.0 if a.quick else 900.0)
    rows, tasks, files = (a.rows or size["rows"], a.tasks or size["tasks"],
                          a.files or size["files"])
    import logging

    import dask
    import distributed
    import pandas as pd
    import psutil
    import pyarrow
    import sklearn

    import regmtl

    # p2p shuffles log a WARNING at every start and end; keep the table readable
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    print(f"regmtl Dask benchmark{' (--quick)' if a.quick else ''}: {rows:,} rows, {tasks:,} "
          f"tasks, p = {P}; one BLAS thread per process; regmtl {regmtl.__version__}, dask "
          f"{dask.__version__}, distributed {distributed.__version__}, pandas {pd.__version__}, "
          f"pyarrow {pyarrow.__version__}, scikit-learn {sklearn.__version__}; "
          f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, load "
          f"{os.getloadavg()[0]:.2f}; tol {a.tol:g}, repeats {a.repeats} (median time); input "
          f"{a.input}",
          flush=True)
    ds = make_dataset(a.data_dir, rows, tasks, files, a.seed, a.rebuild)
    how = f"written now in {ds['write_s']:.1f}s" if ds["written_now"] else "cached"
    print(f"data: {ds['path']} ({how}): {ds['rows']:,} rows in {ds['files']} files, "
          f"{fmt_bytes(ds['bytes_on_disk'])} on disk, tasks of {ds['size_min']}-"
          f"{ds['size_max']} rows, rows shuffled across files, active features "
          f"{ds['active']}", flush=True)
    cases = list(a.penalties) + (["logistic"] if a.logistic else [])
    results: list[dict] = []
    notes: list[str] = []
    alphas: dict = {}
    for item in a.alpha:
        case, _, value = item.partition("=")
        alphas[case] = (float(value), f"{float(value):g} (given)")
    for n in a.workers:
        run_cluster(n, a, ds, cases, results, notes, alphas)
    if not a.skip_in_memory:
        print("\n== in memory: pandas.read_parquet into one process, then fit (a fresh process "
              "per fit) ==", flush=True)
        for case in cases:
            alpha = next((r["alpha"] for r in results if r.get("case") == case
                          and "alpha" in r), None)
            label = "MultiTaskClassifier l21 (yb)" if case == "logistic" else \
                f"MultiTaskRegressor {case}"
            if alpha is None:  # the Dask side gave none: alpha_max in memory
                alpha = a.mean_alpha if case == "mean" else float("nan")
            r = run_in_memory(ds["path"], case, alpha, a)
            results.append(dict(dict(alpha=alpha), **r, workers="mem", kind="memory", case=case,
                                what=label + " (in memory)"))
            if "error" not in r:
                print(f"   {label}: load {r['load_time']:.1f}s, fit {r['time']:.1f}s, "
                      f"{r['n_iter']} iterations", flush=True)
            else:
                print(f"   {label}: FAILED {r['error']}", flush=True)
    coef_against_memory(results)
    p0 = {r["loss"]: r["P0"] for r in results if r.get("kind") == "memory" and "P0" in r}
    for r in results:
        loss = "logistic" if r.get("case") == "logistic" else "squared"
        if r.get("cert_kind") == "gap/obj" and loss in p0:
            r.update(cert_kind="gap/P0", cert=r["gap"] / p0[loss], P0=p0[loss])
    print("\nresults (time: median of the repeats; worker base / peak: resident MiB of the "
          "largest worker before / at most during the fit; client +: peak increase of this "
          "process = client + scheduler (in memory: the fitting process, beyond the loaded "
          "data); moved: bytes written on Dask's TCP comms by all processes during the fit; "
          "cl<->sch: of which between the client and the scheduler (in this process); "
          "sch->w: of which written by the scheduler (and client) to the workers; w->: of which "
          "written by the workers (to each other, the scheduler, the client); "
          "peer: of which data the workers served by get_data (to other workers, or to the "
          "scheduler gathering results; distributed's transfer_outgoing_bytes_total); w. self: "
          "written by a worker to itself (p2p shuffle), not in moved; managed: MiB held in the "
          "largest worker's Dask memory before the fit (persisted input, futures still alive); "
          "moved/iter: moved / n_iter_; net/iter: "
          "(moved - the shuffle by task alone) / n_iter_; graphs, gathers: graphs submitted and "
          "blocking gathers of the client; rel.err W: ||W_fit - W_true|| / ||W_true||; "
          "certificate: the KKT residual, or the duality gap over P0, the objective at W = 0, as "
          "the estimator's tol (gap/obj where P0 is unknown: --skip-in-memory); ok: no "
          "ConvergenceWarning)\n")
    print_table([r for r in results if r.get("kind") != "iterations"])
    print_iterations([r for r in results if r.get("kind") == "iterations"])
    if alphas:
        print("\nalphas: " + "; ".join(f"{k}: {v[1]}" for k, v in alphas.items()))
    for case in cases:
        d = [r for r in results if r.get("case") == case and r.get("kind") == "dask"
             and "error" not in r]
        m = [r for r in results if r.get("case") == case and r.get("kind") == "memory"
             and "error" not in r]
        rg = {r["workers"]: r["time"] for r in results if r.get("kind") == "ridge"}
        for r in d:
            extra = f", Ridge loop / fit: {rg[r['workers']] / r['time']:.2f}" \
                if r["workers"] in rg else ""
            if m:
                extra += (", in-memory fit (excl. loading) / Dask fit: "
                          f"{m[0]['time'] / r['time']:.2f}")
            print(f"  {case}, {r['workers']} worker(s): {r['time'] / r['n_iter']:.3f} s per "
                  f"iteration{extra}")
    print_per_iteration(results)
    paper = on_paper(results, ds, a) if any(r.get("kind") == "dask" and "error" not in r
                                            for r in results) else []
    if not paper:
        print("\non paper: no Dask fit succeeded, nothing measured to scale.")
    notes = list(dict.fromkeys(notes))
    if notes:
        print("\nnotes:")
        for s in notes:
            print("  - " + s)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(dataset=ds, args={k: v for k, v in vars(a).items()
                                             if k != "in_memory_child"},
                           results=results, on_paper=paper, notes=notes), fh, indent=1,
                      default=lambda o: o.item() if hasattr(o, "item") else str(o))


if __name__ == "__main__":
    main()
