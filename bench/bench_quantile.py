"""Benchmark: the pinball loss under coupled penalties on School, regmtl against
cvxpy/Clarabel (a generic interior-point cone solver; no package has a multi-task quantile
model), at the same accuracy.

Problems (School: 139 schools, 15,362 students, 28 columns with one-hot year and band
columns beside the intercept; ``Quantile(0.5)``, intercepts fitted, equal task weights):

  L2,1 /20      L21 at alpha_max / 20 (the issue's yardstick)
  L2,1 /1000    L21 at alpha_max / 1000 (nearly every feature in)
  elastic /20   L21(l1_ratio=0.5) at its alpha_max / 20
  mean          MeanRegularized() at alpha 0.1 (139 schools)
  trace /20     Trace at alpha_max / 20 on the first 40 schools

"Same accuracy": both objectives are evaluated by one NumPy function and compared with the
lower of the two, relative to the objective at W = 0 (``excess = (P - P_best) / P0``);
regmtl runs at ``tol = eps`` (its duality gap bounds the excess; the mean penalty without a
ridge certifies with a KKT residual), Clarabel at 1e-8 on its gap and feasibility. Clarabel's
time is cvxpy's whole solve (the form built and solved, what a user waits for); its own
solve time is shown beside it. Times are medians of ``--repeats`` runs (Clarabel: one run
where it takes over 5 s), one BLAS thread.

Usage: python bench/bench_quantile.py [--repeats 3] [--eps 1e-6] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from bench_cells import _timed  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datasets import load_school  # noqa: E402

TAU = 0.5


def _cases(school):
    X, y = school.X, school.y
    return {
        "L2,1 /20": (X, y, rm.L21(), 1 / 20),
        "L2,1 /1000": (X, y, rm.L21(), 1 / 1000),
        "elastic /20": (X, y, rm.L21(l1_ratio=0.5), 1 / 20),
        "mean": (X, y, rm.MeanRegularized(), None),
        "trace /20": (X[:40], y[:40], rm.Trace(), 1 / 20),
    }


def _pinball(r):
    return np.maximum(TAU * r, (TAU - 1.0) * r)


def objective(Xs, ys, W, b, penalty, alpha) -> float:
    """sum_t mean_i pinball(y - X w_t - b_t) + alpha Omega(W), written out."""
    data = sum(float(_pinball(y - X @ W[:, t] - b[t]).mean())
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    if isinstance(penalty, rm.Trace):
        pen = alpha * float(np.linalg.svd(W, compute_uv=False).sum())
    elif isinstance(penalty, rm.MeanRegularized):
        pen = 0.5 * alpha * float(np.sum((W - W.mean(axis=1, keepdims=True)) ** 2))
    else:
        rho = penalty.l1_ratio
        pen = alpha * (rho * float(np.linalg.norm(W, axis=1).sum())
                       + 0.5 * (1 - rho) * float(np.sum(W * W)))
    return data + pen


def fit_regmtl(Xs, ys, penalty, alpha, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = rm.MultiTaskRegressor(penalty, alpha=alpha, loss=rm.Quantile(TAU), tol=tol,
                                  max_iter=100_000).fit(Xs, ys)
    return m.coef_matrix_, np.asarray(m.intercept_), m.n_iter_


def fit_clarabel(Xs, ys, penalty, alpha):
    import cvxpy as cp

    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        r = y - X @ W[:, t] - b[t]
        terms.append(cp.sum(cp.maximum(TAU * r, (TAU - 1) * r)) / len(y))
    if isinstance(penalty, rm.Trace):
        pen = alpha * cp.normNuc(W)
    elif isinstance(penalty, rm.MeanRegularized):
        pen = alpha / 2 * cp.sum_squares(W - cp.sum(W, axis=1, keepdims=True) / T)
    else:
        rho = penalty.l1_ratio
        pen = alpha * (rho * cp.sum(cp.norm(W, 2, axis=1))
                       + (1 - rho) / 2 * cp.sum_squares(W))
    prob = cp.Problem(cp.Minimize(sum(terms) + pen))
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-8, tol_gap_rel=1e-8, tol_feas=1e-8)
    return W.value, b.value, prob.solver_stats.num_iters, prob.solver_stats.solve_time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--only", nargs="+", default=None)
    args = ap.parse_args(argv)
    school = load_school()
    print(f"bench_quantile: School, Quantile({TAU}), eps {args.eps:g}, medians of "
          f"{args.repeats}, one BLAS thread, load {os.getloadavg()[0]:.1f}")
    print(f"{'case':<13}{'regmtl s':>10}{'its':>6}{'excess':>10}{'Clarabel s':>12}"
          f"{'(solve)':>9}{'its':>5}{'excess':>10}{'ratio':>8}")
    fit_regmtl(school.X[:5], school.y[:5], rm.L21(), 0.01, 1e-4)  # (imports, kernels)
    for name, (Xs, ys, pen, frac) in _cases(school).items():
        if args.only and name not in args.only:
            continue
        loss = rm.Quantile(TAU)
        alpha = 0.1 if frac is None else frac * rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
        P0 = objective(Xs, ys, np.zeros((Xs[0].shape[1], len(Xs))),
                       np.array([np.quantile(y, TAU) for y in ys]), pen, alpha)
        t_r, (W, b, its) = _timed(fit_regmtl, (Xs, ys, pen, alpha, args.eps), args.repeats)
        t_c, (Wc, bc, its_c, solve_c) = _timed(fit_clarabel, (Xs, ys, pen, alpha),
                                               args.repeats)
        P, Pc = objective(Xs, ys, W, b, pen, alpha), objective(Xs, ys, Wc, bc, pen, alpha)
        best = min(P, Pc)
        print(f"{name:<13}{t_r:>10.3f}{its:>6}{(P - best) / P0:>10.1e}{t_c:>12.2f}"
              f"{solve_c:>9.2f}{its_c:>5}{(Pc - best) / P0:>10.1e}{t_c / t_r:>7.1f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
