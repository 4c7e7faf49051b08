"""Benchmark: the sign-constrained lasso, regmtl's L1(positive=True) against scikit-learn's
Lasso(positive=True) fitted task by task (and skglm's Lasso(positive=True) when installed), at
the same duality gap.

Problems: T tasks of the squared loss with coefficients of both signs (so the constraint
binds), Toeplitz-correlated designs (rho = 0.5), intercepts fitted:
  shared  one design (n x p) and Y (n x T): regmtl fits all columns at once, the peers one
          column at a time; shapes (n, p, T) = (500, 5000, 10) (p >> n), (1000, 1000, 10)
          (n ~ p) and (20000, 500, 10) (n >> p);
  lists   per-task designs, n_t in [100, 400], p = 2000, T = 10: the peers fit each task's
          (X_t, y_t).
each at alpha_max/10 and alpha_max/100, alpha_max the positive one (max_jt max(G0_jt, 0)).

"Same duality gap": every fit is re-certified by one common NumPy function (``gap`` below) and
must reach gap <= eps * P0, P0 the objective at W = 0 with intercepts fitted. The dual point of
task t is its centered residual scaled into ``{G_jt <= alpha}`` (the positive part of
``G = X_t^T theta_t / n_t`` only: the dual norm of the sign-constrained lasso). regmtl gets
tol = eps; scikit-learn stops on its own gap n * gap_t <= tol ||y_t - mean||^2, i.e. a relative
gap 2 tol per task, so it gets tol = eps / 2 (skglm stops on a KKT violation: its tol starts
at eps); a solver whose fit stops short of eps is run again with a 10x tighter tol
(bench/_harness.py), and the time is that of the tol that reached it. Times are medians of
--repeats runs, one BLAS thread by default (--blas-threads), numba warmed up first.

Run:  .venv/bin/python bench/bench_positive.py [--quick] [--repeats 3] [--eps 1e-6]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402
from _problems import toeplitz_design  # noqa: E402
from sklearn.linear_model import Lasso  # noqa: E402

import regmtl  # noqa: E402

try:
    import skglm
except ImportError:  # optional peer
    skglm = None

FULL_SHAPES = [(500, 5000, 10), (1000, 1000, 10), (20000, 500, 10)]
QUICK_SHAPES = [(100, 1000, 5), (300, 300, 5), (4000, 100, 5)]
TABLE = dict(what="rel gap", name_width=28, tol=("tol passed", 10, lambda r, t: f"{r.tol:.1e}"),
             n_iter_width=8, before_ratio=[("nnz", 6, lambda r, t: str(r.structure))])


# ----------------------------------------------------------------------------- problems
def signed_coefs(rng, p: int, T: int, n_active: int) -> np.ndarray:
    """p x T coefficients, ``n_active`` nonzero entries per task, N(0, 1): both signs."""
    W = np.zeros((p, T))
    for t in range(T):
        W[rng.choice(p, size=n_active, replace=False), t] = rng.standard_normal(n_active)
    return W


def shared_problem(n, p, T, n_active, seed=0):
    rng = np.random.default_rng(seed)
    X = toeplitz_design(rng, n, p)
    S = X @ signed_coefs(rng, p, T, n_active)
    E = rng.standard_normal((n, T))
    E *= np.linalg.norm(S) / (5.0 * np.linalg.norm(E))
    return X, np.asfortranarray(S + E + rng.standard_normal(T))


def lists_problem(T, p, n_min, n_max, n_active, seed=1):
    rng = np.random.default_rng(seed)
    W = signed_coefs(rng, p, T, n_active)
    Xs, ys = [], []
    for t in range(T):
        X = toeplitz_design(rng, int(rng.integers(n_min, n_max + 1)), p)
        s = X @ W[:, t]
        e = rng.standard_normal(X.shape[0])
        e *= np.linalg.norm(s) / (5.0 * np.linalg.norm(e))
        Xs.append(X)
        ys.append(s + e + rng.standard_normal())
    return Xs, ys


def tasks(X, Y):
    """(X_t, y_t) per task of either form."""
    if isinstance(X, list):
        return list(zip(X, Y, strict=True))
    return [(X, Y[:, t]) for t in range(Y.shape[1])]


# ----------------------------------------------------------------------------- certificate
def p0_value(X, Y) -> float:
    return sum(0.5 * float(np.mean((y - y.mean()) ** 2)) for _, y in tasks(X, Y))


def positive_alpha_max(X, Y) -> float:
    return max(float(np.max(Xt.T @ (y - y.mean()) / len(y))) for Xt, y in tasks(X, Y))


def gap(X, Y, W, b, alpha, P0) -> dict:
    """The relative duality gap of the sign-constrained lasso with intercepts (W: p x T)."""
    if np.any(W < 0):
        return dict(rel=np.inf, primal=np.inf)
    primal = dual = 0.0
    for t, (Xt, y) in enumerate(tasks(X, Y)):
        n = len(y)
        r = y - Xt @ W[:, t] - b[t]
        primal += 0.5 * float(r @ r) / n + alpha * float(W[:, t].sum())
        theta = r - r.mean()
        top = float(np.max(Xt.T @ theta)) / n
        s = 1.0 if top <= alpha else alpha / top
        dual += (s * float(theta @ y) - 0.5 * s * s * float(theta @ theta)) / n
    return dict(rel=max(primal - dual, 0.0) / P0, primal=primal)


# ----------------------------------------------------------------------------- solvers
def fit_regmtl(X, Y, alpha, max_iter):
    def fit(tol):
        m = regmtl.MultiTaskRegressor(regmtl.L1(positive=True), alpha=alpha, tol=tol,
                                      max_iter=max_iter).fit(X, Y)
        return m.coef_.T, m.intercept_, m.n_iter_, f"dual_gap_ {m.dual_gap_:.2e}"
    return fit


def fit_per_task(make):
    """A peer fitted task by task: ``make(tol)`` builds one task's estimator."""
    def runner(X, Y):
        def fit(tol):
            W, b, it = [], [], 0
            for Xt, y in tasks(X, Y):
                est = make(tol).fit(Xt, y)
                W.append(est.coef_)
                b.append(est.intercept_)
                it += int(np.max(getattr(est, "n_iter_", 0)))
            return np.column_stack(W), np.array(b), it, "per task"
        return fit
    return runner


def peers(alpha, eps, max_iter):
    """{name: (fit maker, first tol)}: scikit-learn, and skglm when installed."""
    out = {"sklearn Lasso(positive) x T": (fit_per_task(
        lambda tol: Lasso(alpha=alpha, positive=True, tol=tol, max_iter=max_iter)), eps / 2)}
    if skglm is not None:
        out["skglm Lasso(positive) x T"] = (fit_per_task(
            lambda tol: skglm.Lasso(alpha=alpha, positive=True, tol=tol, max_iter=max_iter)),
            eps)
    return out


# ----------------------------------------------------------------------------- scenarios
def header(args) -> None:
    h.print_header(
        "regmtl sign-constrained lasso benchmark", "bench_positive.py", args.quick, 100,
        f"repeats: {args.repeats} (median time reported; a solver stops repeating once its "
        f"runs exceed {args.budget:g}s); target relative gap eps = {args.eps:g}",
        extra_libs=[("skglm", skglm.__version__ if skglm else
                     "not installed (no skglm rows)")])


def warm_up() -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 8)), rng.standard_normal((40, 3))
    for form in ((X, Y), ([X, X[:30]], [Y[:, 0], Y[:30, 1]])):
        regmtl.MultiTaskRegressor(regmtl.L1(positive=True), alpha=0.01, tol=1e-8).fit(*form)
    Lasso(alpha=0.01, positive=True).fit(X, Y[:, 0])
    if skglm is not None:
        skglm.Lasso(alpha=0.01, positive=True).fit(X, Y[:, 0])


def entry(args, label, X, Y, results) -> None:
    P0 = p0_value(X, Y)
    a_max = regmtl.alpha_max(X, Y, penalty=regmtl.L1(positive=True))
    check = positive_alpha_max(X, Y)
    free = regmtl.alpha_max(X, Y, penalty="l1")
    print()
    print("#" * 100)
    print(f"{label}: alpha_max = {a_max:.6g} (independent check {check:.6g}; unconstrained "
          f"{free:.6g}), P0 = {P0:.6g}, eps = {args.eps:g}")
    for div in args.divisors:
        alpha = a_max / div

        def cert(W, b, alpha=alpha):
            return gap(X, Y, W, b, alpha, P0)

        kw = dict(target=args.eps, repeats=args.repeats, budget=args.budget, tol_fmt=".1e",
                  stopped_at="gap ")
        rows = [h.run_solver("regmtl L1(positive=True)", fit_regmtl(X, Y, alpha, args.max_iter),
                             cert, np.count_nonzero, tol0=args.eps, **kw)]
        for name, (make, tol0) in peers(alpha, args.eps, args.max_iter).items():
            rows.append(h.run_solver(name, make(X, Y), cert, np.count_nonzero, tol0=tol0, **kw))
        h.print_table(f"-- {label}, alpha = alpha_max/{div:g} = {alpha:.6g}", rows, args.eps,
                      args.repeats, **TABLE)
        results.append((f"{label} /{div:g}", [h.ratio(r, rows[0]) for r in rows[1:]],
                        [r.name for r in rows[1:]]))


def main(argv=None) -> None:
    ap = h.parser(__doc__, "small shapes, for a fast run", "target relative gap",
                  "alpha = alpha_max / divisor")
    ap.add_argument("--max-iter", type=int, default=100_000)
    ap.add_argument("--scenarios", nargs="+", choices=("shared", "lists"),
                    default=["shared", "lists"])
    args = h.parse(ap, argv, budget=30.0, quick_budget=2.0)
    results: list = []
    scenarios = []
    if "shared" in args.scenarios:
        for n, p, T in QUICK_SHAPES if args.quick else FULL_SHAPES:
            def run(n=n, p=p, T=T):
                X, Y = shared_problem(n, p, T, n_active=min(20, p // 10))
                entry(args, f"shared n={n} p={p} T={T}", X, Y, results)
            scenarios.append(run)
    if "lists" in args.scenarios:
        def run_lists():
            T, p, lo, hi = (5, 500, 50, 150) if args.quick else (10, 2000, 100, 400)
            Xs, ys = lists_problem(T, p, lo, hi, n_active=20)
            entry(args, f"lists T={T} p={p} n_t in [{lo}, {hi}]", Xs, ys, results)
        scenarios.append(run_lists)

    def summary():
        print()
        print("#" * 100)
        print("SUMMARY: ratio = peer time / regmtl time at the same common gap (>1: regmtl "
              "faster; '>' a lower bound)" + ("" if skglm else "; skglm is not installed"))
        for label, ratios, names in results:
            cells = ", ".join(f"{nm}: {h.fmt_ratio(*r)}" for nm, r in zip(names, ratios,
                                                                            strict=True))
            print(f"  {label:<44} {cells}")
        vals = [r[0][0] for _, r, _ in results if r]
        if vals:
            print(f"  median ratio vs scikit-learn over {len(vals)} entries: "
                  f"{float(np.median(vals)):.2f}")

    h.run(lambda: header(args), warm_up, "regmtl form (+ sklearn, skglm)", [*scenarios, summary])


if __name__ == "__main__":
    main()
