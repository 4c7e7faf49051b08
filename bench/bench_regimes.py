"""Benchmark: the regimes users meet most, each beside its yardstick in the same run.

One row per regime of the speed issue "every regime fast": the pinball loss far from the median
(School + L2,1 at q = 0.1 and 0.9, alpha 0.18) beside the median and the squared fit; the
pinball loss with the trace norm on School beside the squared trace fit, and on 40 schools at
tol 1e-6 beside cvxpy + Clarabel at the same relative gap (Clarabel's own solve time); the
Huber loss's CV at its default and at a small fixed delta beside the squared CV (12 alphas, 3
folds); the multinomial's L2,1 CV on digits in 3 tasks beside a per-task scikit-learn
``LogisticRegressionCV`` loop, and its trace-norm fit at alpha 1e-3; L2,1 on 1,000 and 10,000
tasks of 20 x 20 at alpha 0.05 on a fresh copy of the arrays each fit beside a per-task
``Ridge`` loop; the first four fits of a fresh process on one shared design (n = 400,
p = 4000, T = 16) beside scikit-learn's ``MultiTaskLasso``.

Every case runs in a child process of its own with one BLAS thread (the first-fit case with
the kernels' default choice, the others as they come); each prints the median of
``--repeats`` fits (the first-fit case: each of its four fits), whether the last fit was
certified at the defaults, and the ratio to its yardstick.

Run ``python bench/bench_regimes.py [--repeats 3] [--cases ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from statistics import median

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from regress import _many_small as _many  # noqa: E402  (the cases regress.py times)
from regress import _school, _shared  # noqa: E402


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y, np.arange(len(y)) % 3


def _timed(fit, repeats):
    """(median seconds, certified) of ``repeats`` calls of ``fit``."""
    from sklearn.exceptions import ConvergenceWarning

    times, certified = [], True
    for _ in range(repeats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            fit()
            times.append(time.perf_counter() - t0)
        certified = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return median(times), certified


def case(name: str, repeats: int) -> dict:
    """The case's rows: ``{label: (seconds, certified)}``, its yardstick labelled ``*``."""
    import regmtl as rm

    out = {}
    if name == "pinball":
        Xs, ys = _school()
        for q in (0.1, 0.9, 0.5):
            out[f"School L2,1 pinball q={q}, alpha 0.18"] = _timed(
                lambda q=q: rm.MultiTaskRegressor("l21", alpha=0.18, loss=rm.Quantile(q))
                .fit(Xs, ys), repeats)
        out["* School L2,1 squared, alpha 0.18"] = _timed(
            lambda: rm.MultiTaskRegressor("l21", alpha=0.18).fit(Xs, ys), repeats)
    elif name == "pinball_trace":
        Xs, ys = _school()
        for q in (0.1, 0.5):
            top = rm.alpha_max(Xs, ys, penalty="trace", loss=rm.Quantile(q))
            for frac in (0.1, 0.01):
                out[f"School trace pinball q={q}, alpha_max/{round(1 / frac)}"] = _timed(
                    lambda q=q, a=frac * top: rm.MultiTaskRegressor(
                        "trace", alpha=a, loss=rm.Quantile(q)).fit(Xs, ys), repeats)
        a = 0.1 * rm.alpha_max(Xs, ys, penalty="trace")
        out["* School trace squared, alpha_max/10"] = _timed(
            lambda: rm.MultiTaskRegressor("trace", alpha=a).fit(Xs, ys), repeats)
    elif name == "pinball_trace_clarabel":
        import cvxpy as cp

        Xs, ys = _school()
        Xs, ys = Xs[:40], ys[:40]
        q = 0.5
        a = 0.1 * rm.alpha_max(Xs, ys, penalty="trace", loss=rm.Quantile(q))
        out["40 schools trace pinball q=0.5, alpha_max/10, tol 1e-6"] = _timed(
            lambda: rm.MultiTaskRegressor("trace", alpha=a, loss=rm.Quantile(q), tol=1e-6)
            .fit(Xs, ys), repeats)
        p, T = Xs[0].shape[1], len(Xs)
        W, b = cp.Variable((p, T)), cp.Variable(T)
        loss = sum(cp.sum(cp.maximum(q * (y - X @ W[:, t] - b[t]),
                                     (q - 1) * (y - X @ W[:, t] - b[t]))) / len(y)
                   for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
        prob = cp.Problem(cp.Minimize(loss + a * cp.normNuc(W)))
        prob.solve(solver="CLARABEL", tol_gap_rel=1e-6)
        out["* cvxpy + Clarabel, tol_gap_rel 1e-6 (its solve time alone)"] = (
            prob.solver_stats.solve_time, prob.status == "optimal")
    elif name == "huber_cv":
        Xs, ys = _school()

        def cv(**kw):
            return lambda: rm.MultiTaskRegressorCV("l21", alphas=12, cv=3, **kw).fit(Xs, ys)
        out["Huber() L2,1 CV (12 alphas, 3 folds)"] = _timed(cv(loss=rm.Huber()), repeats)
        out["Huber(1.0) L2,1 CV"] = _timed(cv(loss=rm.Huber(1.0)), repeats)
        out["* squared L2,1 CV"] = _timed(cv(), repeats)
    elif name == "multinomial":
        from sklearn.linear_model import LogisticRegressionCV

        X, y, task = _digits()
        out["multinomial L2,1 CV, digits in 3 tasks"] = _timed(
            lambda: rm.MultiTaskClassifierCV("l21", alphas=12, cv=3).fit(X, y, task=task),
            repeats)
        out["multinomial trace CV, digits in 3 tasks"] = _timed(
            lambda: rm.MultiTaskClassifierCV("trace", alphas=12, cv=3).fit(X, y, task=task),
            repeats)
        out["multinomial trace, alpha 1e-3"] = _timed(
            lambda: rm.MultiTaskClassifier("trace", alpha=1e-3).fit(X, y, task=task), repeats)

        def per_task():
            for t in range(3):
                LogisticRegressionCV(Cs=12, cv=3, max_iter=1000).fit(X[task == t], y[task == t])
        out["* per-task LogisticRegressionCV (12 Cs, 3 folds)"] = _timed(per_task, repeats)
    elif name in ("many_1000", "many_10000"):
        from sklearn.linear_model import Ridge

        T = int(name.split("_")[1])
        Xs, ys = _many(T)
        out[f"L2,1 {T} tasks of 20 x 20, alpha 0.05, fresh"] = _timed(
            lambda: rm.MultiTaskRegressor("l21", alpha=0.05).fit(
                [X.copy() for X in Xs], [y.copy() for y in ys]), repeats)
        out[f"* per-task Ridge loop, {T} tasks"] = _timed(
            lambda: [Ridge(alpha=1.0).fit(X.copy(), y.copy()) for X, y in zip(Xs, ys, strict=True)],
            repeats)
    elif name == "first_fits":
        from sklearn.linear_model import MultiTaskLasso

        X, Y = _shared(400, 4000, 16, 40)
        a = 0.1 * rm.alpha_max(X, Y, penalty="l21")
        for k in range(4):
            out[f"shared n=400 p=4000 T=16, fit {k + 1} of a fresh process"] = _timed(
                lambda: rm.MultiTaskRegressor("l21", alpha=a).fit(X, Y), 1)
        out["* scikit-learn MultiTaskLasso"] = _timed(
            lambda: MultiTaskLasso(alpha=a).fit(X, Y), 1)
    else:
        raise ValueError(f"unknown case {name!r}")
    return out


CASES = ("pinball", "pinball_trace", "pinball_trace_clarabel", "huber_cv", "multinomial",
         "many_1000", "many_10000", "first_fits")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(case(args.child, args.repeats)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT / "src"))
    print("one BLAS thread, a child process per case, load: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'case':62s} {'seconds':>9s} {'certified':>9s} {'x yardstick':>11s}")
    for name in args.cases:
        run = subprocess.run([sys.executable, __file__, "--child", name, "--repeats",
                              str(args.repeats)], env=env, capture_output=True, text=True,
                             check=False)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if run.returncode != 0 or not lines:
            print(f"{name}: failed ({run.stderr.strip().splitlines()[-1:]})")
            continue
        rows = json.loads(lines[-1])
        base = next((s for k, (s, _) in rows.items() if k.startswith("*")), None)
        for label, (s, ok) in rows.items():
            ratio = "" if base is None or label.startswith("*") else f"{s / base:.2f}"
            print(f"{label[:62]:62s} {s:9.3f} {'yes' if ok else 'NO':>9s} {ratio:>11s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
