"""Benchmark: how close regmtl's main solvers run to the memory-bandwidth floor.

For each solver (coordinate descent on L2,1 over the data and in Gram form, proximal Newton on
L2,1, ADMM on the trace norm in Gram form and in row-space form, proximal Newton on the trace
norm), one certified fit (relative duality gap ``--eps``, one BLAS thread) is

* timed: the median of ``--repeats`` fits (input checks and setup included, as a user pays);
* counted, in one more, untimed fit: every product that reads the data adds the bytes it
  streams -- ``X W`` and ``X^T u`` (``TaskData.linear`` / ``adjoint``) all of ``X``, an epoch
  or a residual or gradient over k of the p features ``k / p`` of ``X``, a product with the
  Gram form's per-task Grams (``TaskQuadratic.matvec``) their bytes, a shifted solve twice the
  bytes of the kept eigenvectors, a row-space solve the bytes of the kernel factors, a Gram
  epoch of coordinate descent the bytes of the working set's Gram; building a Gram or the
  kernels counts one pass over ``X``. The counting wrappers are Python functions around those
  methods: the counted fit is never the timed one.

The floor is the time to stream those bytes once each at the machine's bandwidth, measured in
the same run on an array the size of ``X`` (one thread; the faster of ``a.sum()`` and ``a.T @
v``): ``floor = bytes / bandwidth``, and ``time / floor`` says how many times the floor a fit
costs. ``passes`` = bytes / bytes of ``X`` (a pass over a Gram counts its own bytes, often far
fewer than ``X``'s). A pass that multiplies X by the T tasks' columns of a shared design is
compute-bound (``2 n p T`` flops for ``8 n p`` bytes): its second floor is one BLAS product
``X^T R`` of that width, timed in the same run ("x product"). The fixed cost of a fit (input
checks, scales, the reference objective, the first certificate) is that of a fit at tol 0.9;
"beyond" is what the fit costs past it over the bandwidth floor of the bytes it streams past it.

Run:  .venv/bin/python bench/bench_passes.py [--quick] [--repeats 3] [--record PATH]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _record  # noqa: E402
from _problems import (  # noqa: E402
    lowrank_coefs,
    per_task_from_coefs,
    per_task_row_sparse,
    shared_regression,
)

import regmtl  # noqa: E402
from regmtl import taskdata  # noqa: E402
from regmtl.solvers import policy  # noqa: E402
from regmtl.solvers.parts import epochs, gram, kernel_quadratic, quadratic


# ----------------------------------------------------------------------------- counting
def _x_bytes(data) -> int:
    """Bytes of the design (the stored entries and indices where it is sparse)."""
    X = data.X
    if hasattr(X, "indptr"):
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(np.asarray(X).nbytes)


class Counter:
    """Bytes streamed by a fit, by kind, and the solver rows it ran; :meth:`installed` puts
    the counting wrappers around the library's data products for the length of a ``with``."""

    def __init__(self):
        self.bytes = {"X": 0.0, "gram": 0.0, "build": 0.0}
        self.rows: list[str] = []

    def _wrap(self, owner, name, kind, nbytes):
        original = owner.__dict__[name]
        kind_of = type(original) if isinstance(original, (classmethod, staticmethod)) else None
        func = original.__func__ if kind_of else original

        @functools.wraps(func)
        def counted(*a, **k):
            self.bytes[kind] += nbytes(*a, **k)
            return func(*a, **k)

        return original, (kind_of(counted) if kind_of else counted)

    def installed(self):
        def frac(data, feats):
            return _x_bytes(data) * len(feats) / max(data.n_features, 1)

        specs = [
            (taskdata.TaskData, "linear", "X", lambda s, *a, **k: _x_bytes(s)),
            (taskdata.TaskData, "adjoint", "X", lambda s, *a, **k: _x_bytes(s)),
            (epochs.LeastSquaresEpochs, "run", "X", lambda s, *a: frac(s.data, s.features)),
            (epochs.LeastSquaresEpochs, "residual", "X",
             lambda s, z, bc, W, features, R: frac(s.data, features)),
            (gram.GramInner, "epoch", "gram", lambda s: s.Q.nbytes),
            (gram.TaskGramInner, "epoch", "gram", lambda s: s.Qs.nbytes),
            (quadratic.TaskQuadratic, "matvec", "gram", lambda s, W: s.H.nbytes),
            (quadratic.TaskQuadratic, "shifted_solve", "gram",
             lambda s, R, rho: 2 * s.eigen()[1].nbytes),
            (kernel_quadratic.KernelQuadratic, "shifted_solve", "gram",
             lambda s, R, rho: s.K.nbytes),
            (quadratic.TaskQuadratic, "from_data", "build",
             lambda cls, data, *a, **k: _x_bytes(data)),
            (gram.GramStats, "__init__", "build", lambda s, data, center: _x_bytes(data)),
            (kernel_quadratic.KernelQuadratic, "_kernels", "build",
             lambda data, xm, root: _x_bytes(data)),
        ]
        saved = []
        for owner, name, kind, nbytes in specs:
            original, counted = self._wrap(owner, name, kind, nbytes)
            saved.append((owner, name, original))
            setattr(owner, name, counted)
        # the gradient over a set of features: a module function, bound by name where used
        c, grad = self, epochs.feature_gradient

        def feature_gradient(data, xm, u, features):
            c.bytes["X"] += frac(data, features)
            return grad(data, xm, u, features)

        saved += _everywhere(grad, feature_gradient)
        choose = policy.choose_row

        def choose_row(*a, **k):
            row = choose(*a, **k)
            c.rows.append(row)
            return row

        saved += _everywhere(choose, choose_row)
        return _Restore(saved)


def _everywhere(original, replacement) -> list:
    """Bind ``replacement`` wherever a regmtl module holds ``original`` under its name."""
    name, saved = original.__name__, []
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("regmtl") and \
                getattr(mod, name, None) is original:
            saved.append((mod, name, original))
            setattr(mod, name, replacement)
    return saved


class _Restore:
    def __init__(self, saved):
        self.saved = saved

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


# ----------------------------------------------------------------------------- bandwidth
def bandwidth(shape, width: int, repeats: int = 15) -> dict:
    """Bytes per second of one thread streaming a float64 array of ``shape`` (the size of X):
    ``a.sum()`` and ``a.T @ v``, the best of ``repeats`` each; and ``product``, the seconds of
    the product one pass of a solver makes, ``a.T @ R`` with ``width`` columns (the tasks of a
    shared design: ``2 n p T`` flops, compute-bound beyond a few tasks; one column for lists,
    where each row meets its own task's coefficients only)."""
    a = np.asfortranarray(np.random.default_rng(0).standard_normal(shape))
    v = np.ones(shape[0])
    R = np.asfortranarray(np.ones((shape[0], width)))
    out = {}
    for name, fn in (("sum", a.sum), ("xtv", lambda: a.T @ v), ("product", lambda: a.T @ R)):
        fn()
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = best if name == "product" else a.nbytes / best
    return out


# ----------------------------------------------------------------------------- cases
def _lowrank_lists(loss, T, p, lo, hi, seed):
    W = lowrank_coefs(np.random.default_rng(seed), p, T, rank=3)
    return per_task_from_coefs(W, lo, hi, loss=loss, rho=0.5, snr=5.0, seed=seed + 1)


def cases(quick: bool):
    """(name, solver text, estimator class, penalty, X, Y, why a pass costs what it does)."""
    q = quick
    n, p, T = (200, 2000, 10) if q else (500, 5000, 20)
    Xw, Yw, _ = shared_regression(n, p, T, n_active=20, rho=0.5, snr=5.0, seed=0)
    n, p, T = (10000, 100, 10) if q else (20000, 300, 20)
    Xg, Yg, _ = shared_regression(n, p, T, n_active=20, rho=0.5, snr=5.0, seed=1)
    Xl, yl, _ = per_task_row_sparse("squared", T=10, p=1000 if q else 2000, n_min=50,
                                    n_max=200 if q else 400, n_active=20, rho=0.5, seed=2)
    Xn, yn, _ = per_task_row_sparse("logistic", T=10, p=500 if q else 2000, n_min=50,
                                    n_max=150 if q else 400, n_active=20, rho=0.5, seed=3)
    long = (10, 50, 200, 500) if q else (30, 100, 500, 2000)
    wide = (10, 200, 30, 150) if q else (30, 1000, 60, 260)
    Xa, ya = _lowrank_lists("squared", *long, seed=10)
    Xr, yr = _lowrank_lists("squared", *wide, seed=20)
    Xs, ys = _lowrank_lists("logistic", *long, seed=30)
    R, C = regmtl.MultiTaskRegressor, regmtl.MultiTaskClassifier
    return [
        ("cd_l21_wide", "coordinate descent, L2,1, shared X, p > n", R, "l21", Xw, Yw),
        ("cd_l21_gram", "coordinate descent, L2,1, shared X, n >> p (Gram form)", R, "l21",
         Xg, Yg),
        ("cd_l21_lists", "coordinate descent, L2,1, per-task lists", R, "l21", Xl, yl),
        ("newton_l21", "proximal Newton, L2,1, logistic, lists", C, "l21", Xn, yn),
        ("admm_gram_trace", "ADMM, trace norm, long tasks (Gram form)", R, "trace", Xa, ya),
        ("admm_rows_trace", "ADMM, trace norm, wide tasks (row-space form)", R, "trace", Xr, yr),
        ("newton_trace", "proximal Newton, trace norm, logistic, long tasks", C, "trace",
         Xs, ys),
    ]


def _shape(X) -> tuple[int, int]:
    if isinstance(X, list):
        return sum(x.shape[0] for x in X), X[0].shape[1]
    return X.shape


def measure(case, args) -> dict:
    name, text, est, pen, X, Y = case
    loss = "logistic" if est is regmtl.MultiTaskClassifier else "squared"
    alpha = regmtl.alpha_max(X, Y, penalty=pen, loss=loss) / args.divisor

    def fit(tol):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = est(penalty=pen, alpha=alpha, tol=tol, max_iter=args.max_iter).fit(X, Y)
        m.bench_certified = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return m

    def timed(tol):
        """(median time, the last model, the counted model, the counter)."""
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            m = fit(tol)
            times.append(time.perf_counter() - t0)
        counter = Counter()
        with counter.installed():
            mc = fit(tol)
        return float(np.median(times)), m, mc, counter

    fit(args.eps)  # warm-up (compilation, caches) outside the times
    t, m, mc, counter = timed(args.eps)
    # the fixed cost: a fit at tol 0.9 (setup, the first certificate and what precedes it)
    t1, _, _, counter1 = timed(0.9)
    shape = _shape(X)
    xb = shape[0] * shape[1] * 8
    T = len(X) if isinstance(X, list) else Y.shape[1]
    bw = bandwidth(shape, 1 if isinstance(X, list) else T)
    rate = max(bw["sum"], bw["xtv"])
    streamed = sum(counter.bytes.values())
    extra = streamed - sum(counter1.bytes.values())
    floor = streamed / rate
    cert = getattr(m, "dual_gap_", None)
    return dict(name=name, solver=text, rows=sorted(set(counter.rows)), n=shape[0],
                p=shape[1], T=len(X) if isinstance(X, list) else Y.shape[1], loss=loss,
                penalty=pen, alpha_div=args.divisor, time=t, time_loose=t1,
                product_per_pass=bw["product"],
                product_ratio=t / max(streamed / xb * bw["product"], 1e-300),
                n_iter=int(m.n_iter_), n_iter_counted=int(mc.n_iter_),
                converged=bool(m.bench_certified),
                certificate=None if cert is None else float(cert),
                x_bytes=xb, bytes=dict(counter.bytes), passes=streamed / xb,
                x_passes=counter.bytes["X"] / xb, passes_loose=(streamed - extra) / xb,
                bandwidth={k: bw[k] for k in ("sum", "xtv")}, floor=floor,
                time_per_pass=t / max(streamed / xb, 1e-300), floor_per_pass=xb / rate,
                ratio=t / floor if floor > 0 else float("nan"),
                marginal_ratio=((t - t1) / (extra / rate)) if extra > 0 and t > t1
                else float("nan"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, for a fast run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=float, default=1e-6, help="tol of every fit (relative gap)")
    ap.add_argument("--divisor", type=float, default=10.0, help="alpha = alpha_max / divisor")
    ap.add_argument("--max-iter", type=int, default=100_000)
    ap.add_argument("--cases", nargs="+", default=None, help="run only these cases")
    _record.add_option(ap)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    chosen = [c for c in cases(args.quick) if args.cases is None or c[0] in args.cases]
    print(f"regmtl passes over the data against the bandwidth floor (bench/bench_passes.py"
          f"{' --quick' if args.quick else ''}); one BLAS thread; tol {args.eps:g}, alpha_max/"
          f"{args.divisor:g}; load average {os.getloadavg()[0]:.2f}")
    head = (f"{'case':<16} {'row':<18} {'n':>6} {'p':>5} {'T':>3} {'time s':>8} {'iters':>6} "
            f"{'passes':>8} {'X only':>7} {'GB/s':>5} {'s/pass':>9} {'floor/pass':>10} "
            f"{'x floor':>7} {'x prod':>6} {'loose s':>8} {'beyond':>6}")
    print(head)
    print("-" * len(head))
    out = []
    for case in chosen:
        r = measure(case, args)
        out.append(r)
        print(f"{r['name']:<16} {','.join(r['rows']):<18} {r['n']:>6} {r['p']:>5} {r['T']:>3} "
              f"{r['time']:>8.3f} {r['n_iter']:>6} {r['passes']:>8.1f} {r['x_passes']:>7.1f} "
              f"{max(r['bandwidth'].values()) / 1e9:>5.1f} {r['time_per_pass']:>9.2e} "
              f"{r['floor_per_pass']:>10.2e} {r['ratio']:>7.1f} {r['product_ratio']:>6.1f} "
              f"{r['time_loose']:>8.3f} "
              f"{r['marginal_ratio']:>6.1f}"
              + ("" if r["converged"] else "  NOT CERTIFIED")
              + ("" if r["n_iter"] == r["n_iter_counted"] else
                 f"  (counted fit: {r['n_iter_counted']} iterations)"))
    print("passes = bytes streamed / bytes of X; x floor = time / (bytes streamed / "
          "bandwidth); x prod = time / (passes x one BLAS product X^T R of the tasks' width); "
          "loose s = a fit at tol 0.9 (setup and the first certificate); beyond = (time - "
          "loose s) / the floor of the bytes streamed beyond the loose fit")
    _record.write(args.record, "passes", dict(quick=args.quick, eps=args.eps, cases=out))


if __name__ == "__main__":
    main()
