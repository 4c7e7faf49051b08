"""Coverage of the debiased 95 % intervals (``regmtl.inference.debiased``) after a
cross-validated L2,1 or L1 fit.

The design of the acceptance check: 3 tasks with their own rows, n = 150 each, p = 40
Gaussian features with Toeplitz correlation ``0.3^|i - j|``, 5 nonzero rows (features 0, 8,
16, 24, 32, the same support in every task: the L2,1 structure), each coefficient
``sign * U(0.5, 1.5)``, noise N(0, 1). The fit is ``MultiTaskRegressorCV(penalty, cv=5)``
(refit at the chosen alpha); the intervals ``b +- 1.96 se`` of :func:`debiased_tasks` (one
nodewise precision per task: the designs differ). Reported: coverage of all, nonzero and zero
coefficients, the mean interval length, and the time per data set.

    python bench/bench_debiased_coverage.py                 # 30 data sets, L2,1 and L1
    python bench/bench_debiased_coverage.py --reps 10 --penalty l21 --robust
    python bench/bench_debiased_coverage.py --shared      # one design: one precision
    python bench/bench_debiased_coverage.py --table       # through coef_table (the user's way)
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import regmtl as rm
from regmtl.inference.debiased import TaskBlock, debiased_tasks

N, P, T, RHO = 150, 40, 3, 0.3
SUPPORT = np.array([0, 8, 16, 24, 32])
Z95 = 1.959963984540054


def data_set(rng: np.random.Generator, shared: bool = False) -> tuple[list, list, np.ndarray]:
    """One simulated problem: designs, targets, the true W (p, T); ``shared``: one design for
    every task (its rows drawn once)."""
    cov = RHO ** np.abs(np.subtract.outer(np.arange(P), np.arange(P)))
    L = np.linalg.cholesky(cov)
    W = np.zeros((P, T))
    W[SUPPORT] = rng.choice([-1.0, 1.0], (len(SUPPORT), T)) * rng.uniform(0.5, 1.5,
                                                                           (len(SUPPORT), T))
    Xs = [rng.standard_normal((N, P)) @ L.T for _ in range(1 if shared else T)] * (
        T if shared else 1)
    ys = [X @ W[:, t] + rng.standard_normal(N) for t, X in enumerate(Xs)]
    return Xs, ys, W


def one(rng: np.random.Generator, penalty: str, robust: bool, shared: bool = False,
        **options) -> dict:
    """Fit, debias and score one data set (``shared``: fit(X, Y), one precision)."""
    Xs, ys, W = data_set(rng, shared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = rm.MultiTaskRegressorCV(penalty=penalty, cv=5, alphas=30, progress=False)
        model = search.fit(Xs[0], np.column_stack(ys)) if shared else search.fit(Xs, ys)
    if options.pop("table", False):  # the user's route: the model's coef_table
        table = model.coef_table(Xs[0], np.column_stack(ys)) if shared else \
            model.coef_table(Xs, ys)
        table = table[table["feature"] != "intercept"]
        B = table["coef"].to_numpy().reshape(T, P).T
        SE = table["std_error"].to_numpy().reshape(T, P).T
        covered = np.abs(B - W) <= Z95 * SE
        return {"covered": covered, "nonzero": W != 0, "length": 2 * Z95 * SE}
    coef = np.asarray(model.coef_)  # (T, p)
    blocks = [TaskBlock(X, np.ones(N), X @ coef[t] + model.intercept_[t] - ys[t], coef[t],
                        intercept=True) for t, X in enumerate(Xs)]
    B, SE = debiased_tasks(blocks, shared_design=shared, robust=robust, **options)
    covered = np.abs(B - W) <= Z95 * SE
    return {"covered": covered, "nonzero": W != 0, "length": 2 * Z95 * SE}


def coverage(penalty: str = "l21", reps: int = 30, seed: int = 0, robust: bool = False,
             shared: bool = False, **options) -> dict:
    """Coverage over ``reps`` data sets: all / nonzero / zero coefficients, the mean interval
    length and the seconds per data set."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    runs = [one(rng, penalty, robust, shared, **options) for _ in range(reps)]
    seconds = (time.perf_counter() - start) / reps
    covered = np.stack([r["covered"] for r in runs])
    nonzero = np.stack([r["nonzero"] for r in runs])
    length = np.stack([r["length"] for r in runs])
    return {"all": float(covered.mean()), "nonzero": float(covered[nonzero].mean()),
            "zero": float(covered[~nonzero].mean()), "length": float(length.mean()),
            "length_nonzero": float(length[nonzero].mean()), "seconds": seconds,
            "reps": reps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--penalty", choices=["l21", "l1", "both"], default="both")
    parser.add_argument("--robust", action="store_true")
    parser.add_argument("--shared", action="store_true", help="one design for all tasks")
    parser.add_argument("--lam", default="cv", help="'cv', 'universal' or a number")
    parser.add_argument("--factor", type=float, default=1.0)
    parser.add_argument("--table", action="store_true",
                        help="through the model's coef_table (its defaults: --robust, --lam "
                             "and --factor do not apply)")
    args = parser.parse_args()
    lam = args.lam if args.lam in ("cv", "universal") else float(args.lam)
    penalties = ["l21", "l1"] if args.penalty == "both" else [args.penalty]
    print(f"{'penalty':8} {'all':>6} {'nonzero':>8} {'zero':>6} {'length':>7} {'s/set':>6}")
    for penalty in penalties:
        extra = {"table": True} if args.table else {"lam": lam, "factor": args.factor}
        r = coverage(penalty, args.reps, args.seed, args.robust, args.shared, **extra)
        print(f"{penalty:8} {r['all']:6.3f} {r['nonzero']:8.3f} {r['zero']:6.3f} "
              f"{r['length']:7.3f} {r['seconds']:6.2f}")


if __name__ == "__main__":
    main()
