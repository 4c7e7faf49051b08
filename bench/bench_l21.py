"""Benchmark: regmtl's L2,1 (joint feature selection) solvers against peers, at equal duality gap.

Scenarios (one run prints them all, then a summary of every ratio and its median)
  1. shared design, squared loss (multi-task lasso), three shapes: (n, p, T) = (500, 5000, 20),
     (20000, 1000, 50) (n >> p: regmtl's Gram mode) and (200, 10000, 100) (p >> n, many tasks);
     each at alpha_max/10, alpha_max/100 and a 30-alpha warm-started path from alpha_max to
     alpha_max/100: regmtl vs scikit-learn MultiTaskLasso (the path: enet_path with 2-D Y, what
     MultiTaskLassoCV runs, or a warm-started MultiTaskLasso loop, whichever was faster on the
     first shape), skglm MultiTaskLasso (when installed) and a NumPy FISTA (bench/_peers.py,
     bench/_shared_suite.py); with regmtl's time at alpha_max/10 in units of one X^T R product;
     then the shape of issue 18 (p >> n), (400, 4000, 16) (--quick: (100, 1000, 8)), at
     alpha_max/10, /50 and /100 (no path), against the same peers;
  2. per-task designs (lists), squared loss: regmtl.MultiTaskRegressor vs a NumPy FISTA;
  3. per-task designs (lists), logistic loss: regmtl.MultiTaskClassifier vs a NumPy FISTA;
     (2 and 3 at alpha_max/10 and alpha_max/100);
  4. scaling: regmtl's time at alpha_max/10 as n, p and T double, with growth exponents
     (bench/_scaling.py);
  5. memory: peak extra memory of one fit / size of X (tracemalloc; bench/_memory.py).

"Same duality gap": every solver must reach gap <= eps * P0, P0 the objective at W = 0 with
intercepts fitted (regmtl's convention, tol=eps). sklearn stops on the gap of its own scaled
problem, n * P(W) with tol * ||Y_centered||_F^2 = tol * 2n * P0, so tol_sklearn = eps / 2
(its gap is only checked after an epoch whose largest relative coefficient change is <= tol).
skglm stops on a KKT violation (max_j distance of the gradient to the subdifferential), not on
a gap: its tol (relative to alpha) is calibrated (tightened 10x at a time) until the common gap
is reached. Every returned (coef, intercept) is re-certified by ONE common NumPy function
(bench/_gap.py; for a path, the worst point); a solver that stops short of the target, regmtl
included, is re-run with a 10x tighter tol, and the time reported is that of the tol that reached
it. The NumPy FISTA (bench/_fista.py) stops on that common gap itself. Times are medians of
--repeats runs; a solver whose runs already exceed --budget seconds is not repeated (the table's
"runs" column says how many were timed). numba is warmed up first.

Time limits (scenario 1): every peer (sklearn, skglm, FISTA) runs in a forked child
(bench/_isolate.py) killed past max(--timeout, --timeout-factor x regmtl's time on that entry);
in scenarios 2-3 FISTA stops itself after --fista-max-time s. A killed or capped run is printed
as "> limit", its ratio as a lower bound, and medians that depend on one as ">=" (never
extrapolated from a partial run).

Run:  .venv/bin/python bench/bench_l21.py [--quick] [--repeats 3] [--scenarios ...]
      (--scenarios issue-shape runs the shape of issue 18 alone)
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402
import _memory  # noqa: E402
import _record  # noqa: E402
import _scaling  # noqa: E402
import _shared_suite  # noqa: E402
from _fista import fista_l21  # noqa: E402
from _gap import alpha_max_l21, duality_gap, p0_value  # noqa: E402
from _isolate import OverBudget  # noqa: E402
from _problems import per_task_row_sparse, shared_regression  # noqa: E402
from _summary import Summary  # noqa: E402
from sklearn.linear_model import MultiTaskLasso, enet_path  # noqa: E402

import regmtl  # noqa: E402

try:
    import skglm
    from skglm import MultiTaskLasso as SkglmMultiTaskLasso
except ImportError:  # optional peer
    skglm = None

SCENARIOS = ("shared", "issue-shape", "lists", "logistic", "scaling", "memory")
MAX_TIGHTEN = 4  # by default at most 4 extra runs with a 10x tighter tol when a peer stops short


#: the result table's layout (see _harness.print_table)
TABLE = dict(what="rel gap", name_width=22, tol=("tol passed", 10, lambda r, t: f"{r.tol:.1e}"),
             n_iter_width=6, before_ratio=[("rows", 5, lambda r, t: str(r.structure))])


# ----------------------------------------------------------------------------- helpers
def header(args) -> None:
    h.print_header(
        "regmtl L2,1 benchmark", "bench_l21.py", args.quick, 100,
        f"repeats: {args.repeats} (median time reported; a solver stops repeating once its runs "
        f"exceed {args.budget:g}s); target relative gap eps = {args.eps:g} (squared), "
        f"{args.eps_logistic:g} (logistic); peers killed past max({args.timeout:g}s, "
        f"{args.timeout_factor:g} x regmtl)",
        extra_libs=[("skglm", skglm.__version__ if skglm else "not installed")])


def warm_up() -> None:
    """One tiny fit of each compiled path (numba JIT / cache load) so compile time is excluded."""
    rng = np.random.default_rng(123)
    X = np.asfortranarray(rng.standard_normal((30, 8)))
    Y = rng.standard_normal((30, 3))
    regmtl.MultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8).fit(X, Y)
    regmtl.regularization_path(X, Y, penalty="l21", alphas=3, tol=1e-8)
    regmtl.MultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8,
                              solver_options=dict(gram=True)).fit(X, Y)
    Xs = [np.asfortranarray(rng.standard_normal((n, 8))) for n in (20, 25, 30)]
    ys = [rng.standard_normal(len(x)) for x in Xs]
    regmtl.MultiTaskRegressor(penalty="l21", alpha=0.01, tol=1e-8).fit(Xs, ys)
    yc = [np.where(rng.standard_normal(len(x)) > 0, 1.0, -1.0) for x in Xs]
    regmtl.MultiTaskClassifier(penalty="l21", alpha=0.01, tol=1e-8).fit(Xs, yc)
    # p >> n at a small alpha: the active-set Newton steps (``polish``) compile their own kernels
    Xw, Yw = np.asfortranarray(rng.standard_normal((20, 60))), rng.standard_normal((20, 3))
    a_w = regmtl.alpha_max(Xw, Yw, penalty="l21") / 100
    regmtl.MultiTaskRegressor(penalty="l21", alpha=a_w, tol=1e-10).fit(Xw, Yw)
    MultiTaskLasso(alpha=0.01, tol=1e-8).fit(X, Y)
    enet_path(X - X.mean(axis=0), Y - Y.mean(axis=0), l1_ratio=1.0, alphas=[0.1, 0.01],
              tol=1e-8)
    if skglm is not None:
        SkglmMultiTaskLasso(alpha=0.01, tol=1e-8).fit(X, Y)


def run_solver(name, fit, X, Y, alpha, loss, P0, max_tighten=MAX_TIGHTEN, **kw):
    """_harness.run_solver with the common gap (bench/_gap.py) and the nonzero rows of W."""
    return h.run_solver(
        name, fit, lambda W, b: duality_gap(X, Y, W, b, alpha, loss, P0=P0),
        lambda W: int(np.count_nonzero(np.linalg.norm(W, axis=1))),
        max_tighten=max_tighten, tol_fmt=".1e", stopped_at="gap ", **kw)


# ----------------------------------------------------------------------------- scenarios
ISSUE_SHAPE, ISSUE_SHAPE_QUICK = (400, 4000, 16), (100, 1000, 8)


def scenario_issue_shape(args, summary) -> None:
    """Scenario 1, continued: the p >> n shape of issue 18 at alpha_max/10, /50 and /100."""
    n, p, T = ISSUE_SHAPE_QUICK if args.quick else ISSUE_SHAPE
    X, Y, _ = shared_regression(n, p, T, n_active=args.n_active, rho=0.5, snr=5.0, seed=0)
    a_max = regmtl.alpha_max(X, Y, penalty="l21")
    P0 = p0_value(Y, "squared")
    kind = _shared_suite.shape_kind(n, p)
    tag = f"n={n} p={p} T={T} ({kind})"
    state = dict(sk_path=(), skglm_tol=args.skglm_tol0)
    print()
    print("#" * 110)
    print(f"Scenario 1 [{tag}]: the shape of issue 18, shared design, squared loss, Toeplitz "
          f"rho=0.5, {args.n_active} active rows, SNR=5, intercepts fitted; alpha_max = "
          f"{a_max:.6g}, P0 = {P0:.6g}, eps = {args.eps:g}")
    for div in (10.0, 50.0, 100.0):
        rows = _shared_suite.run_entry(args, X, Y, P0, f"-- [{tag}] alpha = alpha_max/{div:g} = "
                                       f"{a_max / div:.6g}", state, alpha=a_max / div)
        _shared_suite._add(summary, tag, kind, f"/{div:g}", rows)


def scenario_lists(args, loss: str, summary) -> None:
    if loss == "squared":
        seed, eps, est = 1, args.eps, regmtl.MultiTaskRegressor
        T, p, lo, hi, n_active = (10, 1000, 50, 200, 20) if args.quick else (20, 2000, 50, 400, 30)
    else:
        seed, eps, est = 2, args.eps_logistic, regmtl.MultiTaskClassifier
        T, p, lo, hi, n_active = (10, 500, 50, 150, 20) if args.quick else (20, 2000, 50, 400, 30)
    Xs, ys, _ = per_task_row_sparse(loss, T=T, p=p, n_min=lo, n_max=hi, n_active=n_active,
                                    rho=0.5, seed=seed)
    sizes = [len(y) for y in ys]
    a_max = regmtl.alpha_max(Xs, ys, penalty="l21", loss=loss)
    a_check = alpha_max_l21(Xs, ys, loss)
    P0 = p0_value(ys, loss)
    print()
    print("#" * 100)
    kind = ("squared loss" if loss == "squared"
            else "logistic loss (labels = sign of a noisy linear model, +-1)")
    print(f"Scenario {2 if loss == 'squared' else 3}: per-task designs (lists), {kind}. T={T}, "
          f"p={p}, n_t in [{min(sizes)}, {max(sizes)}] (N={sum(sizes)}), Toeplitz rho=0.5, "
          f"{n_active} shared active rows, intercepts fitted")
    print(f"  alpha_max = {a_max:.6g} (regmtl.alpha_max; independent check {a_check:.6g}), "
          f"P0 = {P0:.6g}, eps = {eps:g}")
    if loss == "logistic" and eps != args.eps:
        print(f"  NOTE: eps = {eps:g} for the logistic loss (--eps-logistic), not {args.eps:g}.")
    print(f"  tol: regmtl eps; FISTA stops on the common gap itself (checked every 10 "
          f"iterations), capped at {args.fista_max_time:g}s per run")
    for div in args.divisors:
        alpha = a_max / div
        kw = dict(X=Xs, Y=ys, alpha=alpha, loss=loss, P0=P0, target=eps, tol0=eps,
                  repeats=args.repeats, budget=args.budget)

        def fit_regmtl(tol, alpha=alpha):
            m = est(penalty="l21", alpha=alpha, tol=tol, max_iter=args.max_epochs).fit(Xs, ys)
            return m.coef_.T, m.intercept_, m.n_iter_, f"dual_gap_/P0 = {m.dual_gap_ / P0:.2e}"

        def fit_fista(tol, alpha=alpha):
            r = fista_l21(Xs, ys, alpha, loss=loss, eps=tol, max_time=args.fista_max_time,
                          restart=not args.no_restart)
            if not r["converged"]:  # stopped at its cap: a lower bound
                raise OverBudget(args.fista_max_time)
            return (r["W"], r["b"], r["n_iter"],
                    f"common gap {r['rel']:.2e}; power iteration {r['time_L']:.2f}s")

        name = "numpy FISTA" + ("" if args.no_restart else " +restart")
        rows = [run_solver("regmtl (bcd)", fit_regmtl, **kw),
                run_solver(name, fit_fista, tighten=False, **kw)]
        h.print_table(f"-- alpha = alpha_max/{div:g} = {alpha:.6g}", rows, eps, args.repeats,
                      **TABLE)
        summary.add("lists", f"per-task lists, {loss} /{div:g}", rows[0], {"FISTA": rows[1]})


def print_summary(args, summary) -> None:
    """Every ratio and the medians against the targets."""
    print()
    print("#" * 110)
    print("SUMMARY: ratio = peer time / regmtl time at the same common gap (>1: regmtl faster); "
          "'>=' = the peer was killed at its time limit (a lower bound)")
    groups = {"n>>p", "p>>n", "n~p"}
    summary.print_table(groups, ["sklearn", "skglm", "FISTA"], "Scenario 1 (shared design)")
    summary.print_table({"lists"}, ["FISTA"], "Scenarios 2-3 (per-task designs)")
    print()
    print("Medians and targets" + ("  (--quick: small shapes and short runs dominated by fixed "
                                   "costs; the targets are meant for the full run)"
                                   if args.quick else ""))
    summary.target("scenario 1, all entries vs sklearn", "sklearn", 2.0, groups)
    summary.target("scenario 1, the n>>p shape (Gram mode) vs sklearn", "sklearn", 5.0,
                   {_shared_suite.GRAM_SHAPE})
    summary.target("scenario 1, all entries vs skglm (no target)", "skglm", 1.0, groups)
    summary.target("scenario 1, all entries vs NumPy FISTA (no target)", "FISTA", 1.0, groups)
    summary.target("scenarios 2-3, per-task lists vs NumPy FISTA", "FISTA", 10.0, {"lists"})
    summary.print_lines()


def main(argv=None) -> None:
    ap = h.parser(__doc__, "small shapes, for a fast run", "target relative gap (squared)",
                  "alpha = alpha_max / divisor")
    ap.add_argument("--eps-logistic", type=float, default=1e-6,
                    help="target relative gap (logistic); 1e-5 if 1e-6 takes too long")
    ap.add_argument("--scenarios", nargs="+", choices=SCENARIOS,
                    default=[s for s in SCENARIOS if s != "issue-shape"])
    ap.add_argument("--n-alphas", type=int, default=None,
                    help="alphas of the scenario-1 path (default 30; --quick 8)")
    ap.add_argument("--n-active", type=int, default=None,
                    help="active rows of the shared designs (default 50; --quick 20)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="scenario 1: a peer run is killed past max(timeout, timeout-factor x "
                         "regmtl's time) (default 60; --quick 2)")
    ap.add_argument("--timeout-factor", type=float, default=2.0)
    ap.add_argument("--max-epochs", type=int, default=20_000,
                    help="max_iter of the CD solvers (a safety net; tol decides)")
    ap.add_argument("--fista-max-time", type=float, default=None,
                    help="scenarios 2-3: wall-time cap of one FISTA run, s (default 200; --quick "
                         "5); a capped run counts as a lower bound")
    ap.add_argument("--skglm-tol0", type=float, default=1e-2,
                    help="skglm's first tol, relative to alpha (then tightened 10x at a time)")
    ap.add_argument("--scaling-base", type=int, nargs=3, metavar=("N", "P", "T"), default=None,
                    help="scenario 4: the base shape (default 1000 1000 10; --quick 200 200 5)")
    ap.add_argument("--scaling-steps", type=int, default=None,
                    help="scenario 4: how many times each dimension doubles (default 4; "
                         "--quick 2)")
    _record.add_option(ap)
    args = h.parse(ap, argv, budget=30.0, quick_budget=1.0)
    if args.fista_max_time is None:
        args.fista_max_time = 5.0 if args.quick else 200.0
    for name, full, quick in (("n_alphas", 30, 8), ("n_active", 50, 20), ("timeout", 60.0, 2.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    summary = Summary()
    run = {"shared": lambda: (_shared_suite.scenario(args, summary),
                              scenario_issue_shape(args, summary)),
           "issue-shape": lambda: scenario_issue_shape(args, summary),
           "lists": lambda: scenario_lists(args, "squared", summary),
           "logistic": lambda: scenario_lists(args, "logistic", summary),
           "scaling": lambda: _scaling.scenario(args, summary),
           "memory": lambda: _memory.scenario(args, summary)}
    h.run(lambda: header(args), warm_up, "regmtl path (+ sklearn, skglm)",
          [run[s] for s in args.scenarios] + [lambda: print_summary(args, summary)])
    _record.write(args.record, "l21", dict(eps=args.eps, quick=args.quick,
                                           scenarios=args.scenarios, **summary.record()))


if __name__ == "__main__":
    main()
