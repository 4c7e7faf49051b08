"""Benchmark: incomplete multi-source feature learning, regmtl's MultiSource against MALSAR's
accelerated gradient (``MultiSource_LeastR`` / ``MultiSource_LogisticR`` as they ship, in
NumPy), at the same duality gap.

Problems: three sources (blocks of columns), samples grouped by the sources they have (each
group a task that observes some blocks, the others NaN), Toeplitz-correlated designs
(rho = 0.5), a few features of every source informative:
  least     MALSAR's Least_iMSF objective, 1/2 sum_t ||X_t w_t - y_t||^2 + lambda
            sum_j ||W_j (observed)||_2, no intercepts; regmtl with task_weight="samples",
            fit_intercept=False, alpha = z * alpha_max (the same problem times T / N);
  logistic  MALSAR's Logistic_iMSF objective, sum_t mean_i log(1 + exp(-y (x w_t + c_t))) +
            lambda sum_j ||W_j (observed)||_2 with intercepts; regmtl's defaults, the same
            problem;
each at lambda = lambda_max / 10 and / 100 (MALSAR's z = 0.1, 0.01).

The peer is MALSAR's algorithm line for line: Nesterov's accelerated gradient with the
Armijo-Goldstein line search (L starts at 1 / N, L <- max(2 L, l_sum / r_sum)), the L1/L2
projection over each feature's observed coefficients, and its stopping rule (opts.tFlag = 1:
relative change of the objective <= tol), which often stalls short of a small gap (its
time is then a lower bound); so the same iterations also run stopped by the common gap itself
(checked every 10 iterations, the checks timed with it). "Same duality gap": every fit is
re-certified by one common NumPy function (``gap`` below: the residuals scaled into the dual
ball, whose norm is the row norm of X^T theta over the observed entries) and must reach
gap <= eps * P0, P0 the objective at W = 0 (intercepts fitted for the logistic loss); a solver
that stops short is run again with a 10x tighter tol (bench/_harness.py), and the time is
that of the tol that reached it. Times are medians of --repeats runs, one BLAS thread by
default (--blas-threads), numba warmed up first.

Run:  .venv/bin/python bench/bench_multisource.py [--quick] [--repeats 3] [--eps 1e-6]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402
from _gap import duality_gap  # noqa: E402
from _gap import p0_value as common_p0  # noqa: E402
from _problems import toeplitz_design  # noqa: E402

import regmtl  # noqa: E402

FULL = dict(blocks=(300, 200, 100), sizes=(400, 300, 250, 350, 200, 300))
QUICK = dict(blocks=(60, 40, 20), sizes=(120, 90, 80, 100, 60, 90))
#: the sources each group observes
GROUPS = ((0, 1, 2), (0, 1), (0, 2), (1, 2), (0,), (2,))
TABLE = dict(what="rel gap", name_width=30, tol=("tol passed", 10, lambda r, t: f"{r.tol:.1e}"),
             n_iter_width=8, before_ratio=[("rows", 6, lambda r, t: str(r.structure))])


# ----------------------------------------------------------------------------- problems
def observed_mask(blocks, groups) -> np.ndarray:
    edges = np.concatenate(([0], np.cumsum(blocks)))
    M = np.zeros((sum(blocks), len(groups)), dtype=bool)
    for t, g in enumerate(groups):
        for b in g:
            M[edges[b]:edges[b + 1], t] = True
    return M


def problem(loss, blocks, sizes, seed=0):
    """Per-group designs with NaN over the missing sources, targets (+-1 for logistic)."""
    rng = np.random.default_rng(seed)
    M = observed_mask(blocks, GROUPS)
    p = sum(blocks)
    W = np.zeros((p, len(GROUPS)))
    edges = np.concatenate(([0], np.cumsum(blocks)))
    for b in range(len(blocks)):
        rows = rng.choice(np.arange(edges[b], edges[b + 1]), size=5, replace=False)
        W[rows] = rng.uniform(0.5, 1.5, (5, len(GROUPS))) * rng.choice([-1, 1], (5, 1))
    W *= M
    Xs, ys = [], []
    for t, n in enumerate(sizes):
        X = toeplitz_design(rng, n, p)
        f = X @ W[:, t]
        if loss == "squared":
            y = f + 0.5 * np.std(f) * rng.standard_normal(n)
        else:
            y = np.where(rng.random(n) < 1 / (1 + np.exp(-f)), 1.0, -1.0)
        X[:, ~M[:, t]] = np.nan
        Xs.append(X)
        ys.append(y)
    return Xs, ys, M


def zero_filled(Xs):
    return [np.nan_to_num(X, nan=0.0) for X in Xs]


# ----------------------------------------------------------------------------- certificate
def lambda_max(loss, A, ys, M) -> float:
    G = np.column_stack([X.T @ _theta0(loss, y) for X, y in zip(A, ys, strict=True)])
    return float(np.max(np.linalg.norm(np.where(M, G, 0.0), axis=1)))


def _theta0(loss, y):
    """Minus the loss gradient at W = 0 (the logistic one at the optimal intercept)."""
    if loss == "squared":
        return y
    m1 = np.mean(y == 1)
    return np.where(y == 1, 1 - m1, -m1) / len(y)


def gap(loss, A, ys, M, W, b, lam, P0) -> dict:
    """The relative duality gap of MALSAR's objective at (W, b) (W: p x T). Least squares
    without intercepts: theta_t = y_t - X_t w_t scaled into the dual ball. Logistic: the
    common L2,1 certificate of the other benchmarks (bench/_gap.py, intercepts fitted) on the
    zero-filled designs, where the unobserved columns are zero, so its dual norm is the row
    norm over the observed entries."""
    if np.any(W[~M] != 0):
        return dict(rel=np.inf, primal=np.inf)
    if loss == "logistic":
        return duality_gap(A, ys, W, b, lam, "logistic", P0=P0)
    primal, thetas, G = 0.0, [], []
    for t, (X, y) in enumerate(zip(A, ys, strict=True)):
        theta = y - X @ W[:, t]
        primal += 0.5 * float(theta @ theta)
        thetas.append(theta)
        G.append(X.T @ theta)
    primal += lam * float(np.sum(np.linalg.norm(W, axis=1)))
    top = float(np.max(np.linalg.norm(np.where(M, np.column_stack(G), 0.0), axis=1)))
    s = 1.0 if top <= lam else lam / top
    dual = sum(float(s * th @ y) - 0.5 * s * s * float(th @ th)
               for th, y in zip(thetas, ys, strict=True))
    return dict(rel=max(primal - dual, 0.0) / P0, primal=primal)


def p0_value(loss, ys) -> float:
    """MALSAR's objective at W = 0 (intercepts fitted for the logistic loss)."""
    if loss == "squared":
        return sum(0.5 * float(y @ y) for y in ys)
    return common_p0(ys, "logistic")


# ----------------------------------------------------------------------------- MALSAR
def malsar_agd(loss, A, ys, M, lam, tol, max_iter, stop=None):
    """MultiSource_LeastR / MultiSource_LogisticR: accelerated gradient, Armijo-Goldstein line
    search, the L1/L2 projection per feature over its observed coefficients; tFlag = 1, or
    with ``stop(x, c)`` that rule replaced by ``stop`` checked every 10 iterations."""
    T = len(A)
    p = A[0].shape[1]
    N = sum(len(y) for y in ys)
    x = np.zeros((p, T))
    if loss == "squared":
        c = np.zeros(T)
    else:
        m1 = np.array([np.mean(y == 1) for y in ys])
        c = np.log(m1 / (1 - m1))
    Ax = [np.zeros(len(y)) for y in ys]
    xp, Axp, cp = x.copy(), [a.copy() for a in Ax], c.copy()
    aty = [X.T @ y for X, y in zip(A, ys, strict=True)] if loss == "squared" else None
    L = 1.0 / N
    alphap, alpha = 0.0, 1.0
    fvals = []
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        beta = (alphap - 1) / alpha
        s = x + beta * (x - xp)
        sc = c + beta * (c - cp)
        As = [a + beta * (a - ap) for a, ap in zip(Ax, Axp, strict=True)]
        g = np.zeros((p, T))
        gc = np.zeros(T)
        fun_s = 0.0
        for t, (X, y) in enumerate(zip(A, ys, strict=True)):
            if loss == "squared":
                fun_s += 0.5 * float(np.sum((As[t] - y) ** 2))
                g[:, t] = X.T @ As[t] - aty[t]
            else:
                n = len(y)
                aa = -y * (As[t] + sc[t])
                fun_s += float(np.mean(np.logaddexp(0.0, aa)))
                prob = 1 / (1 + np.exp(aa))
                bvec = -y * (1 - prob) / n
                gc[t] = bvec.sum()
                g[:, t] = X.T @ bvec
        xp, Axp, cp = x, Ax, c
        while True:
            v = s - g / L
            cn = sc - gc / L if loss == "logistic" else sc
            v = np.where(M, v, 0.0)
            norms = np.linalg.norm(v, axis=1)
            shrink = np.where(norms > 0, np.maximum(norms - lam / L, 0.0) / np.where(
                norms > 0, norms, 1.0), 0.0)
            xn = v * shrink[:, None]
            Axn = [X @ xn[:, t] for t, X in enumerate(A)]
            fun_x = 0.0
            for t, y in enumerate(ys):
                if loss == "squared":
                    fun_x += 0.5 * float(np.sum((Axn[t] - y) ** 2))
                else:
                    fun_x += float(np.mean(np.logaddexp(0.0, -y * (Axn[t] + cn[t]))))
            d = xn - s
            dc = cn - sc
            r_sum = (float(np.sum(d * d)) + float(dc @ dc)) / 2
            l_sum = fun_x - fun_s - float(np.sum(d * g)) - float(dc @ gc)
            if r_sum <= 1e-20:
                break
            if l_sum <= r_sum * L:
                break
            L = max(2 * L, l_sum / r_sum)
        x, Ax, c = xn, Axn, cn
        alphap, alpha = alpha, (1 + np.sqrt(4 * alpha * alpha + 1)) / 2
        fvals.append(fun_x + lam * float(np.sum(np.linalg.norm(x, axis=1))))
        if r_sum <= 1e-20:
            break
        if stop is not None:
            if it % 10 == 0 and stop(x, c):
                break
        elif len(fvals) >= 2 and abs(fvals[-1] - fvals[-2]) <= tol * fvals[-2]:
            break
    return x, c, it


# ----------------------------------------------------------------------------- solvers
def fit_regmtl(loss, Xs, ys, alpha):
    def fit(tol):
        if loss == "squared":
            m = regmtl.MultiTaskRegressor(regmtl.MultiSource(BLOCKS[0]), alpha=alpha, tol=tol,
                                          task_weight="samples", fit_intercept=False,
                                          max_iter=100_000).fit(Xs, ys)
            b = np.zeros(len(ys))
        else:
            m = regmtl.MultiTaskClassifier(regmtl.MultiSource(BLOCKS[0]), alpha=alpha,
                                           tol=tol, max_iter=100_000).fit(Xs, ys)
            b = m.intercept_
        return m.coef_.T, b, m.n_iter_, f"dual_gap_ {m.dual_gap_:.2e}"
    return fit


def fit_malsar(loss, A, ys, M, lam, max_iter):
    def fit(tol):
        W, c, it = malsar_agd(loss, A, ys, M, lam, tol, max_iter)
        return W, c, it, "tFlag=1"
    return fit


def fit_malsar_gap(loss, A, ys, M, lam, max_iter, cert):
    """The same iterations, stopped once the common gap is within tol (checked every 10)."""
    def fit(tol):
        W, c, it = malsar_agd(loss, A, ys, M, lam, tol, max_iter,
                              stop=lambda x, c: cert(x, c)["rel"] <= tol)
        return W, c, it, "common gap"
    return fit


BLOCKS: list = [None]


def header(args) -> None:
    h.print_header(
        "regmtl MultiSource (iMSF) benchmark", "bench_multisource.py", args.quick, 100,
        f"repeats: {args.repeats} (median time reported; a solver stops repeating once its "
        f"runs exceed {args.budget:g}s); target relative gap eps = {args.eps:g}")


def warm_up() -> None:
    Xs, ys, _ = problem("squared", (6, 6, 6), (20, 15, 15, 15, 10, 15))
    BLOCKS[0] = (6, 6, 6)
    regmtl.MultiTaskRegressor(regmtl.MultiSource((6, 6, 6)), alpha=0.01).fit(Xs, ys)
    Xs, ys, _ = problem("logistic", (6, 6, 6), (20, 15, 15, 15, 10, 15))
    regmtl.MultiTaskClassifier(regmtl.MultiSource((6, 6, 6)), alpha=0.01).fit(Xs, ys)


def entry(args, loss, shape, results) -> None:
    BLOCKS[0] = shape["blocks"]
    Xs, ys, M = problem(loss, shape["blocks"], shape["sizes"])
    A = zero_filled(Xs)
    N, T = sum(shape["sizes"]), len(shape["sizes"])
    lam_max = lambda_max(loss, A, ys, M)
    scale = T / N if loss == "squared" else 1.0  # regmtl's objective = MALSAR's * scale
    kw = dict(task_weight="samples", fit_intercept=False) if loss == "squared" else {}
    a_max = regmtl.alpha_max(Xs, ys, penalty=regmtl.MultiSource(shape["blocks"]),
                             loss=loss, **kw)
    P0 = p0_value(loss, ys)
    label = f"{loss} blocks={shape['blocks']} n_t={shape['sizes']}"
    print()
    print("#" * 100)
    print(f"{label}: lambda_max = {lam_max:.6g} (regmtl alpha_max / scale = "
          f"{a_max / scale:.6g}), P0 = {P0:.6g}, eps = {args.eps:g}")
    for div in args.divisors:
        lam = lam_max / div

        def cert(W, b, lam=lam):
            return gap(loss, A, ys, M, W, b, lam, P0)

        def rows_used(W):
            return int(np.count_nonzero(np.any(W != 0, axis=1)))

        common = dict(target=args.eps, repeats=args.repeats, budget=args.budget,
                      tol_fmt=".1e", stopped_at="gap ")
        rows = [h.run_solver("regmtl MultiSource", fit_regmtl(loss, Xs, ys, lam * scale),
                             cert, rows_used, tol0=args.eps, **common),
                h.run_solver("MALSAR iMSF AGD (NumPy)",
                             fit_malsar(loss, A, ys, M, lam, args.max_iter), cert, rows_used,
                             tol0=args.eps, max_tighten=6, **common),
                h.run_solver("MALSAR AGD, stopped on the gap",
                             fit_malsar_gap(loss, A, ys, M, lam, args.max_iter, cert), cert,
                             rows_used, tol0=args.eps, **common)]
        h.print_table(f"-- {label}, lambda = lambda_max/{div:g} = {lam:.6g}", rows, args.eps,
                      args.repeats, **TABLE)
        results.append((f"{loss} /{div:g}", [h.ratio(r, rows[0]) for r in rows[1:]]))


def main(argv=None) -> None:
    ap = h.parser(__doc__, "small shapes, for a fast run", "target relative gap",
                  "lambda = lambda_max / divisor")
    ap.add_argument("--max-iter", type=int, default=200_000)
    ap.add_argument("--losses", nargs="+", choices=("squared", "logistic"),
                    default=["squared", "logistic"])
    args = h.parse(ap, argv, budget=30.0, quick_budget=2.0)
    shape = QUICK if args.quick else FULL
    results: list = []
    scenarios = [lambda loss=loss: entry(args, loss, shape, results) for loss in args.losses]

    def summary():
        print()
        print("#" * 100)
        print("SUMMARY: ratio = MALSAR AGD time / regmtl time at the same common gap (>1: "
              "regmtl faster; '>' a lower bound: the peer stopped short of eps)")
        print(f"  {'entry':<20} {'as shipped (tFlag=1)':>22} {'stopped on the gap':>20}")
        for label, rs in results:
            print(f"  {label:<20} {h.fmt_ratio(*rs[0]):>22} {h.fmt_ratio(*rs[1]):>20}")
        if results:
            med = float(np.median([rs[1][0] for _, rs in results]))
            print(f"  median ratio against the gap-stopped AGD over {len(results)} entries: "
                  f"{med:.2f}")

    h.run(lambda: header(args), warm_up, "regmtl MultiSource fit", [*scenarios, summary])


if __name__ == "__main__":
    main()
