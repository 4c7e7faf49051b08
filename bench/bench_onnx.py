"""Benchmark: ONNX Runtime's batch prediction of an exported School model beside the model's
own ``predict`` (issue: "ONNX Runtime's batch prediction of a 139-task School model").

The School data (139 tasks, 15,362 rows, 28 features), L2,1 at alpha 0.05, the long form
(string task ids, as ``regmtl fit`` saves it): the graph exported by
:func:`regmtl.export_onnx` in float64 and float32, run by ONNX Runtime (CPU, one thread) on
batches of the rows in a shuffled order; beside it ``predict(X, task=...)`` on the same
batches. Medians of --repeats runs; the ratio is predict's time over ONNX Runtime's.

With ``--many-tasks T`` also a model of T synthetic tasks (3 rows and 4 features each, string
ids): the export's time, the graph's size, ONNX Runtime's session start and 1,000 rows of
random tasks beside ``predict``.

With ``--deep`` also the deep School nets (issue: "and of the deep School net"): a
``DeepMultiTaskRegressor`` of each ``--architectures`` (hidden (64,), 20 epochs, seed 0; torch
on one thread) in the long form, exported in float32, beside its ``predict`` on the same
batches.

Run:  .venv/bin/python bench/bench_onnx.py [--repeats 20] [--many-tasks 100000] [--deep]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import regmtl as rm  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--many-tasks", type=int, default=0)
    ap.add_argument("--deep", action="store_true")
    ap.add_argument("--architectures", default="hard,mmoe,ple")
    args = ap.parse_args()
    school = rm.datasets.load_school()
    names = [f"school_{k}" for k in range(len(school.X))]
    X = np.vstack(school.X)
    task = np.repeat(np.array(names, dtype=object), [len(x) for x in school.X])
    y = np.concatenate(school.y)
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    order = np.random.default_rng(0).permutation(len(X))
    X, task = X[order], task[order]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    print(f"{'batch':>7}{'predict':>12}{'ORT f64':>12}{'ratio':>8}{'ORT f32':>12}{'ratio':>8}")
    sessions = {}
    for dtype in ("float64", "float32"):
        graph = rm.export_onnx(model, dtype=dtype)
        sessions[dtype] = ort.InferenceSession(graph.SerializeToString(), opts,
                                               providers=["CPUExecutionProvider"])
    for batch in (1, 100, 1000, len(X)):
        Xb, tb = X[:batch], task[:batch]
        t_pred = median_time(lambda Xb=Xb, tb=tb: model.predict(Xb, task=tb), args.repeats)
        row = f"{batch:>7}{t_pred * 1e3:>10.3f}ms"
        for dtype in ("float64", "float32"):
            feeds = {"X": Xb.astype(dtype), "task": tb}
            t = median_time(lambda s=sessions[dtype], f=feeds: s.run(None, f), args.repeats)
            row += f"{t * 1e3:>10.3f}ms{t_pred / t:>8.1f}"
        print(row)
    if args.many_tasks:
        many_tasks(args.many_tasks, opts, args.repeats)
    if args.deep:
        for arch in args.architectures.split(","):
            deep(arch, X, y[order], task, opts, args.repeats)


def deep(arch: str, X: np.ndarray, y: np.ndarray, task: np.ndarray, opts, repeats: int
         ) -> None:
    import warnings

    import torch

    from regmtl.deep import DeepMultiTaskRegressor

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = DeepMultiTaskRegressor(arch, hidden=(64,), max_epochs=20, early_stopping=False,
                                       device="cpu", random_state=0).fit(X, y, task=task)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = rm.export_onnx(model, dtype="float32")
        t_export = time.perf_counter() - t0
    sess = ort.InferenceSession(graph.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    print(f"\ndeep School net {arch!r} (fit {t_fit:.0f} s; export, verified, {t_export:.2f} s,"
          f" graph {graph.ByteSize() / 1e3:.0f} KB)")
    print(f"{'batch':>7}{'predict':>12}{'ORT f32':>12}{'ratio':>8}{'max rel diff':>14}")
    for batch in (1, 100, 1000, len(X)):
        Xb, tb = X[:batch], task[:batch]
        t_pred = median_time(lambda Xb=Xb, tb=tb: model.predict(Xb, task=tb), repeats)
        feeds = {"X": Xb.astype(np.float32), "task": tb}
        t = median_time(lambda f=feeds: sess.run(None, f), repeats)
        ref = model.predict(Xb, task=tb)
        diff = np.abs(sess.run(None, feeds)[0] - ref).max() / max(1.0, np.abs(ref).max())
        print(f"{batch:>7}{t_pred * 1e3:>10.3f}ms{t * 1e3:>10.3f}ms{t_pred / t:>8.1f}"
              f"{diff:>14.1e}")


def many_tasks(T: int, opts, repeats: int) -> None:
    import tempfile
    from pathlib import Path

    rng = np.random.default_rng(0)
    n, p = 3, 4
    X = rng.standard_normal((T * n, p))
    ids = np.array([f"user_{k}" for k in range(T)], dtype=object)
    task = np.repeat(ids, n)
    y = X @ np.ones(p) + rng.standard_normal(T * n)
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.onnx"
        t0 = time.perf_counter()
        rm.export_onnx(model, path, n_check=2000)
        t_export = time.perf_counter() - t0
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        t_session = time.perf_counter() - t0
        size = path.stat().st_size
        Xb, tb = rng.standard_normal((1000, p)), ids[rng.integers(0, T, 1000)]
        t_ort = median_time(lambda: sess.run(None, {"X": Xb, "task": tb}), repeats)
        t_pred = median_time(lambda: model.predict(Xb, task=tb), repeats)
    print(f"\n{T} tasks: export {t_export:.2f} s (verified), graph {size / 1e6:.1f} MB, "
          f"session start {t_session * 1e3:.0f} ms; 1,000 rows: predict {t_pred * 1e3:.2f} ms, "
          f"ONNX Runtime {t_ort * 1e3:.3f} ms ({t_pred / t_ort:.1f}x)")


if __name__ == "__main__":
    main()
