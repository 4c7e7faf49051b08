"""Scenario 5 of bench_l21.py: peak memory of one regmtl fit relative to the size of X.

tracemalloc is started right before ``fit`` and read right after it: NumPy reports every array
it allocates to tracemalloc, so the peak is everything the fit allocated through NumPy and Python
on top of the data (input conversions, Gram matrices, residuals, the returned coefficients).
Arrays allocated inside numba-compiled functions go through numba's own allocator and are NOT
seen (regmtl's kernels allocate little there: they work in buffers made by NumPy). X is passed as
the benchmark makes it (float64, Fortran-ordered).
"""

from __future__ import annotations

import tracemalloc

from _problems import per_task_row_sparse, shared_regression

import regmtl


def peak_extra(fit) -> int:
    """Peak bytes traced while ``fit()`` runs."""
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _proc_kib(key: str) -> int:
    """A memory line of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in KiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_peak_increase(fn):
    """``(fn(), bytes)``: the peak resident memory of this process while ``fn`` runs, above
    its resident memory before (the kernel's high-water mark, reset first through
    /proc/self/clear_refs; it sees what tracemalloc does not: PyTorch's CPU tensors). 0 where
    /proc is unavailable."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    before = _proc_kib("VmRSS")
    out = fn()
    return out, max(_proc_kib("VmHWM") - before, 0) * 1024


def _cases(args):
    """(short label, data description, estimator class, X or list, Y or list, solver_options)."""
    q = args.quick
    n, p, T = (4000, 100, 10) if q else (20000, 1000, 50)
    X, Y, _ = shared_regression(n, p, T, n_active=min(args.n_active, p), seed=0)
    yield ("Gram mode (gram=True)", f"shared n={n} p={p} T={T}", regmtl.MultiTaskRegressor, X, Y,
           dict(gram=True))
    n, p, T = (100, 1000, 5) if q else (500, 5000, 20)
    X, Y, _ = shared_regression(n, p, T, n_active=args.n_active, seed=0)
    yield ("working sets (gram='auto')", f"shared n={n} p={p} T={T}", regmtl.MultiTaskRegressor,
           X, Y, None)
    yield ("working sets (gram=False)", f"shared n={n} p={p} T={T}", regmtl.MultiTaskRegressor,
           X, Y, dict(gram=False))
    del X, Y
    T, p, hi = (10, 1000, 200) if q else (20, 2000, 400)
    for loss, est in (("squared", regmtl.MultiTaskRegressor),
                      ("logistic", regmtl.MultiTaskClassifier)):
        Xs, ys, _ = per_task_row_sparse(loss, T=T, p=p, n_min=50, n_max=hi, n_active=30,
                                        seed=1 if loss == "squared" else 2)
        yield (f"per-task lists, {loss}", f"T={T} p={p} N={sum(len(y) for y in ys)}", est, Xs, ys,
               None)


def scenario(args, summary) -> None:
    print()
    print("#" * 110)
    print("Scenario 5: peak memory of one regmtl fit (tracemalloc around fit; NumPy allocations, "
          "not numba-internal ones), as 'peak extra / size of X'")
    print(f"  {'case':<28} {'data':<28} {'alpha':>9} {'X (MiB)':>8} {'peak (MiB)':>10} "
          f"{'extra/X':>8}")
    worst = {}
    for label, data, est, X, Y, opts in _cases(args):
        x_bytes = X.nbytes if hasattr(X, "nbytes") else sum(x.nbytes for x in X)
        loss = "logistic" if est is regmtl.MultiTaskClassifier else "squared"
        a_max = regmtl.alpha_max(X, Y, penalty="l21", loss=loss)
        for div in (10, 100):
            m = est(penalty="l21", alpha=a_max / div, tol=args.eps, max_iter=args.max_epochs,
                    solver_options=opts)
            peak = peak_extra(lambda m=m, X=X, Y=Y: m.fit(X, Y))
            r = peak / x_bytes
            worst[label] = max(worst.get(label, 0.0), r)
            print(f"  {label:<28} {data:<28} {'max/' + str(div):>9} {x_bytes / 2**20:>8.1f} "
                  f"{peak / 2**20:>10.1f} {r:>8.3f}")
    summary.note("peak extra memory / size of X (worst of alpha_max/10, /100): "
                 + "; ".join(f"{k} {v:.2f}" for k, v in worst.items()))
