"""Regression bench: the main cases of this tree against another commit, interleaved in one run.

Every case is one fit through the public API, timed in a child process per (tree, case) with
one BLAS thread and the compiled kernels (``REGMTL_KERNELS=numba``), warmed up by a first
fit, ``--repeats`` fits a child; the two trees alternate
case by case, ``--rounds`` times, so that load on the machine falls on both alike. Printed per
case: the median time of each tree, the ratio (this tree / base: below 1 is faster), the
iterations, the objectives' relative difference and the peak memory of one fit (tracemalloc,
NumPy's allocations included). A case more than ``--slower`` (10 %) slower is listed at the end
and the exit status is 1.

The base tree is made with ``git worktree add`` (detached, under ``--worktrees``) and removed
afterwards; its ``src`` is put first on ``PYTHONPATH`` for its children (same interpreter, same
installed dependencies). The cases are those the speed issues name: many small tasks, a shared
design with p >> n and n >> p, wide tasks, MALSAR's formulations (iMSF, NCFGL on School), the
smooth and non-smooth losses on School; many small tasks at a small alpha on a fresh copy of
the arrays each fit (``l21_many_fresh``, 10^4 tasks in ``l21_many_fresh_10k``), and the first
four fits of a fresh process on one shared design (``l21_shared_first_fits``: no warm-up, the
kernels' default choice, the slowest of the four timed).

Run:  .venv/bin/python bench/regress.py --base REV [--cases ...] [--rounds 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the cases
def _school():
    from regmtl.datasets import load_school

    b = load_school()
    return b["X"], b["y"]


def _many_small(T=1000):
    rng = np.random.default_rng(0)
    n, p = 20, 20
    W = rng.standard_normal((p, T)) * (rng.random(p) < 0.3)[:, None]
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    return Xs, [X @ W[:, t] + 0.5 * rng.standard_normal(n) for t, X in enumerate(Xs)]


def _shared(n, p, T, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, T))
    W[rng.choice(p, k, replace=False)] = rng.standard_normal((k, T))
    return X, X @ W + 0.5 * rng.standard_normal((n, T))


def _wide(T, n, p, seed=0):
    rng = np.random.default_rng(seed)
    W = np.zeros((p, T))
    W[:10] = rng.standard_normal((10, 1)) + 0.3 * rng.standard_normal((10, T))
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    return Xs, [X @ W[:, t] + 0.5 * rng.standard_normal(n) for t, X in enumerate(Xs)]


def _multi_source():
    rng = np.random.default_rng(0)
    blocks, groups = (60, 40, 20), ((0, 1, 2), (0, 1), (0, 2), (1, 2), (0,), (2,))
    edges = np.concatenate(([0], np.cumsum(blocks)))
    p, Xs, ys = edges[-1], [], []
    w = rng.standard_normal(p) * (rng.random(p) < 0.2)
    for g in groups:
        X = np.full((100, p), np.nan)
        for s in g:
            X[:, edges[s]:edges[s + 1]] = rng.standard_normal((100, blocks[s]))
        Xs.append(X)
        ys.append(np.nan_to_num(X) @ w + 0.3 * rng.standard_normal(100))
    return Xs, ys, blocks


def case(name: str):
    """``(fit, label)``: ``fit()`` fits the case once and returns the model."""
    import regmtl as rm

    def reg(pen, alpha_frac=None, alpha=None, **kw):
        def make(X, y):
            a = alpha if alpha is not None else alpha_frac * rm.alpha_max(
                X, y, penalty=pen, **({"loss": kw["loss"]} if "loss" in kw else {}))
            return lambda: rm.MultiTaskRegressor(pen, alpha=a, **kw).fit(X, y)
        return make

    if name == "l21_many_small":
        return reg("l21", 0.1)(*_many_small()), "L2,1, 1000 tasks of 20 x 20, alpha_max/10"
    if name in ("l21_many_fresh", "l21_many_fresh_10k"):
        # alpha 0.05 (many active rows), a fresh copy of the arrays each fit (as a user's
        # new data: nothing kept from the fit before)
        T = 1000 if name == "l21_many_fresh" else 10_000
        Xs, ys = _many_small(T)

        def fresh():
            return rm.MultiTaskRegressor("l21", alpha=0.05).fit(
                [X.copy() for X in Xs], [y.copy() for y in ys])
        return fresh, f"L2,1, {T} tasks of 20 x 20, alpha 0.05, fresh"
    if name == "l21_shared_first_fits":
        # the first fits of a fresh process on one array (no warm-up, the default kernels'
        # choice): the slowest of the first four is timed
        X, Y = _shared(400, 4000, 16, 40)
        a = 0.1 * rm.alpha_max(X, Y, penalty="l21")
        return (lambda: rm.MultiTaskRegressor("l21", alpha=a).fit(X, Y)), \
            "L2,1 shared p=4000: slowest of first 4 fits"
    if name == "l21_shared_wide":
        return reg("l21", 0.1)(*_shared(400, 4000, 16, 40)), "L2,1 shared n=400 p=4000 T=16"
    if name == "l21_shared_tall":
        return reg("l21", 0.05)(*_shared(6000, 300, 30, 30)), "L2,1 shared n=6000 p=300 T=30"
    if name == "l21_wide_tasks":
        return reg("l21", 0.1)(*_wide(20, 60, 2000)), "L2,1 20 wide tasks 60 x 2000"
    if name == "multi_source":
        Xs, ys, blocks = _multi_source()
        return reg(rm.MultiSource(blocks), 0.1)(Xs, ys), "MultiSource (iMSF) 6 groups"
    if name == "ncfgl_school":
        Xs, ys = _school()
        pen = rm.NonconvexFusedGroupLasso(0.5)
        a = 0.1 * rm.alpha_max(Xs, ys, penalty=pen)
        return (lambda: rm.MultiTaskRegressor(pen, alpha=a, tol=1e-4, max_iter=20_000)
                .fit(Xs, ys)), "NonconvexFusedGroupLasso School"
    if name in ("school_l21", "school_mean", "school_trace", "school_huber_l21",
                "school_poisson_l21"):
        Xs, ys = _school()
        pen = {"school_mean": "mean", "school_trace": "trace"}.get(name, "l21")
        kw = {}
        if name == "school_huber_l21":
            kw = {"loss": "huber"}
        if name == "school_poisson_l21":
            ys = [np.round(np.maximum(y, 0.0)) for y in ys]
            kw = {"loss": "poisson"}
        frac = 0.05 if pen == "l21" else 0.1
        if pen == "mean":
            return reg(pen, alpha=0.1, **kw)(Xs, ys), f"School {pen} {kw.get('loss', 'squared')}"
        return reg(pen, frac, **kw)(Xs, ys), f"School {pen} {kw.get('loss', 'squared')}"
    if name in ("school_quantile_l21", "school_quantile_l1inf"):
        Xs, ys = _school()
        pen = "l21" if name.endswith("l21") else "l1inf"
        return (reg(pen, 0.05, loss=_quantile())(Xs, ys),
                f"School {pen} quantile(0.5)")
    if name == "school_quantile_mcp":
        # the certificate on the pinball loss itself (smoothed stages, the KKT residual with
        # the dual point free on the rows at the kink): 40 schools, the default tol
        Xs, ys = _school()
        Xs, ys = Xs[:40], ys[:40]
        pen = rm.MCP(3.0)
        a = 0.1 * rm.alpha_max(Xs, ys, penalty=pen, loss=_quantile())
        return (lambda: rm.MultiTaskRegressor(pen, alpha=a, loss=_quantile(), max_iter=5000)
                .fit(Xs, ys)), "School[:40] MCP quantile(0.5)"
    if name == "school_quantile_trace":
        # the spectral barrier (52c5a84): 40 schools, the default tol (trees before it run
        # primal-dual iterations, 33 s)
        Xs, ys = _school()
        Xs, ys = Xs[:40], ys[:40]
        a = 0.1 * rm.alpha_max(Xs, ys, penalty="trace", loss=_quantile())
        return (lambda: rm.MultiTaskRegressor("trace", alpha=a, loss=_quantile())
                .fit(Xs, ys)), "School[:40] trace quantile(0.5)"
    if name in ("school_terms_l21", "school_poisson_offset_terms"):
        # the chain's steps: standardized columns, an unpenalized one (projected out under
        # the squared loss, a free row of the penalty under Poisson) and an offset
        Xs, ys = _school()
        factor = np.ones(Xs[0].shape[1])
        factor[0] = 0.0
        kw = dict(penalty_factor=factor, standardize=True)
        if name == "school_terms_l21":
            a = 0.05 * rm.alpha_max(Xs, ys, penalty="l21", **kw)
            return (lambda: rm.MultiTaskRegressor("l21", alpha=a, **kw).fit(Xs, ys)), \
                "School L2,1 standardized, a free column"
        ys = [np.round(np.maximum(y, 0.0)) for y in ys]
        offset = [np.log(1.0 + 0.1 * np.arange(len(y)) % 3) for y in ys]
        a = 0.05 * rm.alpha_max(Xs, ys, penalty="l21", loss="poisson", offset=offset, **kw)
        return (lambda: rm.MultiTaskRegressor("l21", alpha=a, loss="poisson", **kw)
                .fit(Xs, ys, offset=offset)), "School Poisson L2,1, offset, free column"
    if name == "school_path_l21":
        Xs, ys = _school()

        def school_path():
            out = rm.regularization_path(Xs, ys, penalty="l21", alphas=20)
            return SimpleNamespace(n_iter_=int(out.n_iter.sum()), objective_=float(
                np.linalg.norm(out.coefs[-1], axis=0).sum()))
        return school_path, "School L2,1 path, 20 alphas"
    if name == "logistic_l21":
        rng = np.random.default_rng(1)
        Xs = [rng.standard_normal((200, 50)) for _ in range(10)]
        w = rng.standard_normal(50) * (rng.random(50) < 0.2)
        ys = [(X @ w + rng.standard_normal(200) > 0).astype(int) for X in Xs]
        a = 0.1 * rm.alpha_max(Xs, ys, penalty="l21", loss="logistic")
        return (lambda: rm.MultiTaskClassifier("l21", alpha=a).fit(Xs, ys)), \
            "logistic L2,1 10 tasks 200 x 50"
    if name in ("multinomial_digits_l21", "multinomial_digits_path"):
        # digits in 3 tasks (correlated pixels, near-separable classes at small alphas): a
        # cold fit at alpha 1e-3, and one CV fold's path of 12 alphas (warm starts)
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X, task = X / 16.0, np.arange(len(y)) % 3
        if name == "multinomial_digits_l21":
            return (lambda: rm.MultiTaskClassifier("l21", alpha=1e-3).fit(X, y, task=task)), \
                "multinomial L2,1 digits 3 tasks, alpha 1e-3"
        keep = np.arange(len(y)) % 3 != 0

        def path():  # (its iterations summed over the points as n_iter_; the last point's
            # L2,1 norm in place of an objective)
            out = rm.regularization_path(X[keep], y[keep], task[keep], penalty="l21",
                                         loss="multinomial", alphas=12)
            return SimpleNamespace(n_iter_=int(out.n_iter.sum()), objective_=float(
                np.linalg.norm(out.coefs[-1], axis=0).sum()))
        return path, "multinomial L2,1 digits path, 12 alphas"
    raise ValueError(f"unknown case {name!r}")


def _quantile():
    import regmtl as rm

    return rm.Quantile(0.5)


#: Cases run only when named (``--cases``): trees before 10bf360 fit them by primal-dual
#: iterations for minutes.
EXTRA = ("school_quantile_l21", "school_quantile_l1inf", "school_quantile_mcp",
         "school_quantile_trace", "l21_many_fresh_10k")
#: Cases timed from a fresh process: the first fits, no warm-up, the kernels' default choice
#: (NumPy twins first, compiled kernels once the rent is spent: ``regmtl._jit``).
COLD = ("l21_shared_first_fits",)
CASES = ("l21_many_small", "l21_many_fresh", "l21_shared_first_fits", "l21_shared_wide",
         "l21_shared_tall", "l21_wide_tasks",
         "multi_source", "ncfgl_school", "school_l21", "school_mean", "school_trace",
         "school_huber_l21", "school_poisson_l21", "logistic_l21", "multinomial_digits_l21",
         "multinomial_digits_path", "school_terms_l21", "school_poisson_offset_terms",
         "school_path_l21")


# ----------------------------------------------------------------------------- the child
def child(name: str, repeats: int) -> None:
    import tracemalloc
    import warnings

    fit, label = case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in COLD:
            times = []
            for _ in range(4):
                t0 = time.perf_counter()
                model = fit()
                times.append(time.perf_counter() - t0)
            print(json.dumps(dict(label=label, times=[max(times)], n_iter=int(model.n_iter_),
                                  objective=float(model.objective_), peak=0)))
            return
        model = fit()  # (numba compiled, data made)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model = fit()
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        fit()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps(dict(label=label, times=times, n_iter=int(model.n_iter_),
                          objective=float(model.objective_), peak=peak)))


def run_child(src: Path, name: str, repeats: int, timeout: float) -> dict | None:
    # (the compiled kernels from the first call: the NumPy twins of a fresh process, and the
    # compilation that ends them, are the first call's cost, timed by bench_first_call.py)
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", REGMTL_KERNELS="numba")
    if name in COLD:
        env.pop("REGMTL_KERNELS")
    try:
        out = subprocess.run([sys.executable, __file__, "--child", name, str(repeats)],
                             env=env, capture_output=True, text=True, timeout=timeout,
                             check=False)
    except subprocess.TimeoutExpired:
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"  ({name} failed under {src}: {out.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- the run
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="the commit to compare with (any git revision)")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES + EXTRA)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slower", type=float, default=0.10)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--worktrees", default=tempfile.gettempdir())
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if not args.base:
        ap.error("--base REV is needed")
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        ap.error(f"--base {args.base!r} is not a commit of this repository "
                 "(give a hash, a tag or a branch that git rev-parse knows)")
    rev = found.stdout.strip()
    where = Path(tempfile.mkdtemp(prefix=f"regress-{rev}-", dir=args.worktrees))
    shutil.rmtree(where)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True)
    trees = {"this": ROOT / "src", rev: where / "src"}
    try:
        runs: dict = {(t, c): [] for t in trees for c in args.cases}
        for r in range(args.rounds):
            for c in args.cases:
                order = list(trees) if r % 2 == 0 else list(trees)[::-1]
                for t in order:
                    out = run_child(trees[t], c, args.repeats, args.timeout)
                    if out is not None:
                        runs[(t, c)].append(out)
        return report(runs, args, rev)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)],
                       check=False, capture_output=True)


def report(runs: dict, args, rev: str) -> int:
    print(f"this tree against {rev}: median of {args.rounds} rounds x {args.repeats} fits, "
          "one BLAS thread, load: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    head = (f"{'case':42s} {'this s':>9s} {rev + ' s':>11s} {'ratio':>6s} {'its':>11s} "
            f"{'obj diff':>9s} {'peak MB':>13s}")
    print(head)
    print("-" * len(head))
    slower = []
    for c in args.cases:
        a, b = runs[("this", c)], runs[(rev, c)]
        if not a or not b:
            print(f"{c:42s} (no result: {'this' if not a else rev})")
            continue
        ta = float(np.median([t for o in a for t in o["times"]]))
        tb = float(np.median([t for o in b for t in o["times"]]))
        oa, ob = a[-1]["objective"], b[-1]["objective"]
        diff = (oa - ob) / max(abs(ob), 1e-300)
        ratio = ta / tb
        print(f"{a[-1]['label'][:42]:42s} {ta:9.4f} {tb:11.4f} {ratio:6.2f} "
              f"{a[-1]['n_iter']:5d}/{b[-1]['n_iter']:<5d} {diff:9.1e} "
              f"{a[-1]['peak'] / 2**20:6.1f}/{b[-1]['peak'] / 2**20:<6.1f}")
        if ratio > 1.0 + args.slower:
            slower.append((c, ratio))
    for c, ratio in slower:
        print(f"SLOWER: {c} {ratio:.2f}x the time of {rev}")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
