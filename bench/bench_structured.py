"""Benchmark: regmtl's structured penalties against two NumPy accelerated proximal gradients.

Per-task designs (lists; T tasks with their own Toeplitz designs, n_t drawn uniformly), intercepts
fitted, equal task weights: regmtl minimizes sum_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) +
Omega(W) with

  Trace           alpha ||W||_*                             truth: rank-3 W
  Mean            alpha/2 sum_t ||w_t - w_bar||^2           truth: 3 clusters of similar w_t
  Graph(chain)    alpha/2 sum_st A_st ||w_s - w_t||^2       same data; chain over the tasks in
                                                            cluster order (2 edges cross clusters)
  Clustered(k=3, eta)  alpha eta(1+eta) min_M tr(W (eta I + M)^-1 W^T)   same data
  SharedStructure(k=3, eta)  alpha eta(1+eta) min_M tr(W^T (eta I + M)^-1 W), M in S^p
                   (scenario "caso", MALSAR's Least_CASO)   truth: rank-3 W (a 3-dim subspace)
  Dirty(g)        W = P + Q, alpha (sum_j ||P_j|| + g ||Q||_1)   truth: shared rows + 5 own/task
  SparseLowRank(g) W = P + Q, alpha (||Q||_* + g ||P||_1)   truth: rank 3 + 5 large entries/task
  RobustLowRank(g) W = P + Q, alpha (||P||_* + g sum_t ||Q_:t||_2)   truth: rank 3 + 3 outlier
                   tasks (MALSAR's Least_RMTL)
  RobustFeatures(g) W = P + Q, alpha (sum_j ||P_j|| + g sum_t ||Q_:t||_2)   truth: 20 shared rows
                   + 3 outlier tasks on 20 features of their own (MALSAR's Least_rMTFL)
  TemporalGroupLasso(s, r) alpha (sum_j ||W_j|| + s/2 ||W R||_F^2 + r/2 ||W||_F^2), tasks = time
                   points in order   truth: 20 rows drifting smoothly (MALSAR's Least_TGL; the
                   peers split it as MALSAR does: the quadratic part in the gradient)
  FusedGroupLasso(f, l) alpha (sum_j ||W_j|| + f ||W R||_1 + l ||W||_1)   truth: 20 rows,
                   piecewise constant with 2 change points each (MALSAR's Least_CFGLasso)

squared loss for all, logistic loss for Trace and Dirty (--logistic names others). alpha =
alpha_max/10 and /100 where alpha_max exists (Trace, Dirty, SparseLowRank, RobustLowRank,
RobustFeatures, TemporalGroupLasso, FusedGroupLasso); a fixed value for Mean, Graph, Clustered
(chosen so that regmtl's solution is neither pooled nor independent: the scenario prints the
dispersion ||W - w_bar 1^T||_F / ||W||_F, or for Clustered the singular-value profile, of
regmtl's solution at alpha/100, alpha and 100 alpha).

THE common certificate (bench/_gap.py, plain NumPy, one function for both solvers):
  * relative duality gap (P - D) / P0 for Trace, Dirty, SparseLowRank, RobustLowRank,
    RobustFeatures (and Mean with ridge > 0), P0 the objective at W = 0 with intercepts fitted;
    for the decompositions W = P + Q it is evaluated at regmtl's (P_, Q_) split, the variable it
    optimizes;
  * else (Mean with ridge = 0, Graph, Clustered) regmtl's relative proximal-gradient KKT residual
    sqrt(||V - prox_{Omega/L}(V + G/L)||^2 L^2 + ||intercept gradient||^2) / ||G0||_F, G the
    negative gradient of the data term, G0 the one at W = 0 (intercepts fitted), evaluated for
    BOTH solvers at ONE fixed L: the bench's power-iteration L = max_t lambda_max([X_t, 1]^T
    [X_t, 1] / n_t) (times 1/4 for the logistic loss). regmtl stops on its own certificate (its own
    L, or for Mean/Graph the plain gradient norm), so its final point is re-certified here.
regmtl runs at tol = eps and, when the common certificate of its result exceeds eps, is re-run
with a 10x tighter tol (the time reported is that of the tol that reached it). Two peers, both in
bench/_fista.py with the proxes of bench/_penalties_np.py:
  * FISTA +rst (fista_structured): the constant step 1/L of the exact curvature bound (power
    iteration, timed with it) and adaptive restart -- stronger than the field's codes;
  * APG-bt (apg_backtracking): MALSAR's algorithm as it ships (Least_Trace.m, Logistic_Trace.m,
    ...): a step found by doubling gamma from 1 until the quadratic upper bound holds, never
    shrunk, no restart; written with one gradient and one score product per trial step.
Both stop on the common certificate itself, checked every 10 iterations, with a wall-time cap
(--max-time; regmtl, which
has no time limit, gets a max_iter worth about as many seconds from an untimed probe run). Times
are medians of --repeats runs; a solver whose runs already exceed --budget seconds is not
repeated. numba is warmed up first (one tiny fit of each penalty and loss). The table's ms/it is
time / n_iter (setup included).

Peak memory: one more, untimed run of regmtl and of the FISTA peer at the tol they were timed
at, under tracemalloc (every NumPy allocation; bench/_memory.py), beside the bytes of the data.

Shapes: the default is long tasks (n_t 500..2000 for p = 100); --wide is the shape where
multi-task learning pays, tasks with fewer rows than features (T = 30, n_t 60..260, p = 300 or
--p 1000). --sparse-sets instead runs the 8-point paths (alpha_max to alpha_max/100, logistic
loss) of the trace norm and sparse + low rank on the bag-of-words sets of REGMTL_DATA (spam:
15 users, 152,543 features; newsgroups: 2 tasks, 2,000 features), regmtl's regularization_path
each fit bounded by --max-iter-path (the NumPy peers are not run there: a dense 152,543 x 15
iterate per step puts them past any useful cap), with the whole path's peak memory (traced, in
a second run) beside what it returns (8 coefficient matrices, and the parts P_, Q_ of sparse +
low rank) and the resident peak of the timed run. --school-cv times MultiTaskRegressorCV("trace")
on the shipped School data with solver="auto" against solver="fista" (proximal gradient
alone), with the chosen alphas and scores.

Run:  .venv/bin/python bench/bench_structured.py [--quick] [--repeats 3] [--wide [--p 1000]]
      .venv/bin/python bench/bench_structured.py --sparse-sets
      .venv/bin/python bench/bench_structured.py --school-cv
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from functools import partial

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402
import _penalties_np as npp  # noqa: E402
import _record  # noqa: E402
from _fista import CURVATURE, apg_backtracking, fista_structured, lipschitz  # noqa: E402
from _gap import CommonCertificate, g0_matrix, p0_value  # noqa: E402
from _memory import peak_extra, rss_peak_increase  # noqa: E402
from _problems import (  # noqa: E402
    clustered_coefs,
    dirty_coefs,
    fused_coefs,
    lowrank_coefs,
    per_task_from_coefs,
    robust_features_coefs,
    robust_lowrank_coefs,
    sparse_lowrank_coefs,
    temporal_coefs,
)
from _summary import Summary, fmt  # noqa: E402

import regmtl  # noqa: E402

MAX_TIGHTEN = 3
DIRTY_G = 0.5  # Dirty own_weight: both parts active near alpha_max (1/sqrt(T) < g < 1)
SLR_G = 0.15  # SparseLowRank sparse_weight: max|G0|/g close to ||G0||_2 on these data
RLR_G = 0.6  # RobustLowRank outlier_weight: in (1/sqrt(T), 1), above the inliers' shares
RF_G = 1.5  # RobustFeatures outlier_weight: in (1/sqrt(T), sqrt(p)), above the inliers' shares
CLUSTERED_ETA = 0.1
TGL_S, TGL_R = 2.0, 0.1  # TemporalGroupLasso smooth_weight, ridge_weight
FGL_F, FGL_L = 1.0, 0.2  # FusedGroupLasso fused_weight, l1_weight
#: fixed alphas of the penalties without alpha_max (squared loss; see the dispersion lines)
FIXED_ALPHA = {"mean": 1.0, "graph": 1.0, "clustered": 0.1, "caso": 0.1}


# ----------------------------------------------------------------------------- helpers
def header(args) -> None:
    h.print_header(
        "regmtl structured-penalty benchmark", "bench_structured.py", args.quick, 110,
        f"repeats: {args.repeats} (median time; a solver stops repeating once its runs exceed "
        f"{args.budget:g}s); target eps = {args.eps:g} (relative gap or relative KKT "
        f"residual); runs capped at about {args.max_time:g}s (regmtl: max_iter from a probe "
        "run's time per iteration; FISTA: wall time)")


def _regmtl_pen(name, T):
    if name == "trace":
        return regmtl.Trace()
    if name == "mean":
        return regmtl.MeanRegularized()
    if name == "mean_ridge":
        return regmtl.MeanRegularized(ridge=0.1)
    if name == "graph":
        return regmtl.GraphLaplacian(regmtl.chain_graph(T))
    if name == "clustered":
        return regmtl.Clustered(k=3, eta=CLUSTERED_ETA)
    if name == "caso":
        return regmtl.SharedStructure(k=3, eta=CLUSTERED_ETA)
    if name == "dirty":
        return regmtl.Dirty(own_weight=DIRTY_G)
    if name == "sparse_lowrank":
        return regmtl.SparseLowRank(sparse_weight=SLR_G)
    if name == "robust_lowrank":
        return regmtl.RobustLowRank(outlier_weight=RLR_G)
    if name == "robust_features":
        return regmtl.RobustFeatures(outlier_weight=RF_G)
    if name == "temporal_group_lasso":
        return regmtl.TemporalGroupLasso(smooth_weight=TGL_S, ridge_weight=TGL_R)
    if name == "fused_group_lasso":
        return regmtl.FusedGroupLasso(fused_weight=FGL_F, l1_weight=FGL_L)
    raise ValueError(name)


def _numpy_pen(name, T):
    if name == "trace":
        return npp.Trace()
    if name == "mean":
        return npp.MeanReg(0.0)
    if name == "mean_ridge":
        return npp.MeanReg(0.1)
    if name == "graph":
        return npp.Graph(regmtl.chain_graph(T))
    if name == "clustered":
        return npp.Clustered(3, CLUSTERED_ETA)
    if name == "caso":
        return npp.SharedStructure(3, CLUSTERED_ETA)
    if name == "dirty":
        return npp.Dirty(DIRTY_G)
    if name == "sparse_lowrank":
        return npp.SparseLowRank(SLR_G)
    if name == "robust_lowrank":
        return npp.RobustLowRank(RLR_G)
    if name == "robust_features":
        return npp.RobustFeatures(RF_G)
    if name == "temporal_group_lasso":
        return npp.TemporalGroupLasso(TGL_S, TGL_R)
    if name == "fused_group_lasso":
        return npp.FusedGroupLasso(FGL_F, FGL_L)
    raise ValueError(name)


def warm_up() -> None:
    """One tiny fit of each penalty and loss (numba JIT / cache load excluded from the times)."""
    rng = np.random.default_rng(123)
    Xs = [np.asfortranarray(rng.standard_normal((n, 8))) for n in (20, 25, 30, 22)]
    ys = [rng.standard_normal(len(x)) for x in Xs]
    yc = [np.where(rng.standard_normal(len(x)) > 0, 1.0, -1.0) for x in Xs]
    # and wide tasks (fewer rows than features: the row-space forms compile their own kernels)
    Xw = [np.asfortranarray(rng.standard_normal((n, 40))) for n in (12, 15, 18, 14)]
    yw = [rng.standard_normal(len(x)) for x in Xw]
    ywc = [np.where(rng.standard_normal(len(x)) > 0, 1.0, -1.0) for x in Xw]
    for name in ("trace", "mean", "mean_ridge", "graph", "clustered", "dirty", "sparse_lowrank",
                 "robust_lowrank", "robust_features", "temporal_group_lasso",
                 "fused_group_lasso", "caso"):
        for X_, y_, yc_, its in ((Xs, ys, yc, 2000), (Xw, yw, ywc, 200)):
            regmtl.MultiTaskRegressor(penalty=_regmtl_pen(name, 4), alpha=0.05, tol=1e-8,
                                      max_iter=its).fit(X_, y_)
            try:
                regmtl.MultiTaskClassifier(penalty=_regmtl_pen(name, 4), alpha=0.01, tol=1e-8,
                                           max_iter=its).fit(X_, yc_)
            except ValueError:
                # the wide tasks' classes are separable along the coefficients the mean and
                # graph penalties leave free: refused by name (no minimum), nothing to warm
                pass


#: the result table's layout (see _harness.print_table; ``what`` is set per scenario)
TABLE = dict(
    name_width=18, tol=("tol", 7, lambda r, t: "-" if r.tol is None else f"{r.tol:.0e}"),
    n_iter_width=7,
    before_ratio=[("ms/it", 6, lambda r, t: f"{1e3 * t / r.n_iter if r.n_iter else np.nan:.2f}")],
    after_ratio=[("objective", 16, lambda r, t: f"{r.primal:.10g}")],
    tail=("structure | solver's own stopping value", lambda r: f"{r.structure} | {r.own}"))


# ----------------------------------------------------------------------------- scenarios
def regmtl_max_iter(est, name, T, alpha, Xs, ys, args, probe: int = 200) -> int:
    """regmtl has no time limit: its max_iter is set to about --max-time seconds' worth of
    iterations, from an untimed probe run of ``probe`` iterations (setup included, so the cap
    errs on the short side)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        m = est(penalty=_regmtl_pen(name, T), alpha=alpha, tol=1e-300,
                max_iter=probe).fit(Xs, ys)
        per_iter = (time.perf_counter() - t0) / max(m.n_iter_, 1)
    return int(min(args.max_iter, max(probe, args.max_time / per_iter)))


def make_data(kind, loss, T, p, lo, hi, seed):
    rng = np.random.default_rng(seed)
    labels = None
    if kind == "lowrank":
        W = lowrank_coefs(rng, p, T, rank=3)
    elif kind == "clustered":
        W, labels = clustered_coefs(rng, p, T, n_clusters=3, spread=0.3)
    elif kind == "dirty":
        W = dirty_coefs(rng, p, T, n_active=20, n_own=5)
    elif kind == "robust_lowrank":
        W = robust_lowrank_coefs(rng, p, T, rank=3, n_outliers=3)
    elif kind == "robust_features":
        W = robust_features_coefs(rng, p, T, n_active=20, n_outliers=3, n_own=20)
    elif kind == "temporal":
        W = temporal_coefs(rng, p, T, n_active=20)
    elif kind == "fused":
        W = fused_coefs(rng, p, T, n_active=20, n_changes=2)
    else:
        W = sparse_lowrank_coefs(rng, p, T, rank=3, n_sparse=5, sparse_scale=3.0)
    Xs, ys = per_task_from_coefs(W, lo, hi, loss=loss, rho=0.5, snr=5.0, seed=seed + 1)
    return Xs, ys, W, labels


DATA_TEXT = {
    "lowrank": "rank-3 W = U V^T / sqrt(3), U, V Gaussian (dense)",
    "clustered": "3 clusters of tasks (consecutive), w_t = c_k + 0.3 N(0, I), c_k ~ N(0, I)",
    "dirty": "20 shared rows N(0, 1) + 5 task-specific entries per task N(0, 1)",
    "sparse_lowrank": "rank-3 W + 5 entries per task N(0, 9)",
    "robust_lowrank": "rank-3 W, but 3 outlier tasks (columns) dense N(0, 1) of their own",
    "robust_features": "20 shared rows N(0, 1), but 3 outlier tasks on 20 other features",
    "temporal": "20 shared rows drifting smoothly over the T time points (level + slope + sine)",
    "fused": "20 shared rows, piecewise constant in time (2 change points each; a third start "
             "at 0)",
}

# (penalty, data kind, seed)
SCENARIOS = [
    ("trace", "lowrank", 10), ("mean", "clustered", 20), ("graph", "clustered", 20),
    ("clustered", "clustered", 20), ("dirty", "dirty", 30),
    ("sparse_lowrank", "sparse_lowrank", 40), ("robust_lowrank", "robust_lowrank", 50),
    ("robust_features", "robust_features", 60),
    ("temporal_group_lasso", "temporal", 70), ("fused_group_lasso", "fused", 80),
    ("caso", "lowrank", 90),
]


def _spread_text(name, W, pen_np):
    if name in ("clustered", "caso"):
        s = np.linalg.svd(W, compute_uv=False)
        return "sv/sv1 " + " ".join(f"{x:.2f}" for x in s[:5] / s[0])
    return f"dispersion {npp.dispersion(W):.3f}"


def diagnose_alpha(name, Xs, ys, alpha, T, pen_np, W_true):
    """regmtl at alpha/100, alpha, 100 alpha (tol 1e-4, untimed): pooled vs independent."""
    parts = [f"truth {_spread_text(name, W_true, pen_np)}"]
    for a in (alpha / 100, alpha, alpha * 100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = regmtl.MultiTaskRegressor(penalty=_regmtl_pen(name, T), alpha=a, tol=1e-4,
                                          max_iter=20_000).fit(Xs, ys)
        parts.append(f"alpha {a:g}: {_spread_text(name, m.coef_.T, pen_np)}")
    return "; ".join(parts)


def scenario(args, num, name, kind, seed, loss, summary):
    T, p, lo, hi = (10, 200, 30, 150) if args.quick else (args.T, args.p, args.n_min, args.n_max)
    Xs, ys, W_true, labels = make_data(kind, loss, T, p, lo, hi, seed)
    sizes = [len(y) for y in ys]
    pen_np = _numpy_pen(name, T)
    est = regmtl.MultiTaskRegressor if loss == "squared" else regmtl.MultiTaskClassifier
    P0 = p0_value(ys, loss)
    L_W = lipschitz(Xs, CURVATURE[loss])
    G0 = g0_matrix(Xs, ys, loss)
    print()
    print("#" * 110)
    print(f"Scenario {num}: {name}, {loss} loss. T={T}, p={p}, n_t in [{min(sizes)}, {max(sizes)}] "
          f"(N={sum(sizes)}), Toeplitz rho=0.5, SNR 5, intercepts fitted")
    print(f"  penalty: regmtl {_regmtl_pen(name, T)!r}; truth: {DATA_TEXT[kind]}"
          + (" (labels = sign of a noisy linear model, +-1)" if loss == "logistic" else ""))
    has_amax = hasattr(pen_np, "alpha_max")
    if has_amax:
        a_max = regmtl.alpha_max(Xs, ys, penalty=_regmtl_pen(name, T), loss=loss)
        alphas = [(f"alpha_max/{d:g}", a_max / d) for d in args.divisors]
        print(f"  alpha_max = {a_max:.6g} (regmtl.alpha_max; independent NumPy check "
              f"{pen_np.alpha_max(G0):.6g})")
    else:
        alphas = [("fixed", FIXED_ALPHA[name])]
    eps = args.eps
    for label, alpha in alphas:
        max_iter = regmtl_max_iter(est, name, T, alpha, Xs, ys, args)
        cert = CommonCertificate(Xs, ys, pen_np, alpha, loss, L_W)
        kind_txt = ("relative duality gap (P - D)/P0" if cert.kind == "gap" else
                    f"relative prox-grad KKT residual at the fixed L = {cert.L:.6g} (power "
                    f"iteration), ||G0||_F = {cert.g0_norm:.6g}")
        print(f"  P0 = {P0:.6g}; common certificate: {kind_txt}; eps = {eps:g}; regmtl "
              f"max_iter = {max_iter} (~{args.max_time:g}s)")
        if not has_amax and not args.quick and not args.no_diagnose:
            print(f"  alpha {alpha:g} (fixed) -- regmtl at tol 1e-4: "
                  f"{diagnose_alpha(name, Xs, ys, alpha, T, pen_np, W_true)}")

        def fit_regmtl(tol, alpha=alpha, max_iter=max_iter):
            m = est(penalty=_regmtl_pen(name, T), alpha=alpha, tol=tol,
                    max_iter=max_iter).fit(Xs, ys)
            W = m.coef_.T
            V = pen_np.V_of(W, P=m.P_.T if hasattr(m, "P_") else None,
                            Q=m.Q_.T if hasattr(m, "Q_") else None)
            own = (f"dual_gap_/P0 = {m.dual_gap_ / P0:.2e}" if hasattr(m, "dual_gap_")
                   else f"kkt_residual_ = {m.kkt_residual_:.2e}")
            if name == "clustered" and labels is not None:
                from sklearn.metrics import adjusted_rand_score
                own += (f"; task_clusters_ ARI vs truth "
                        f"{adjusted_rand_score(labels, m.task_clusters_):.2f}")
            return V, np.asarray(m.intercept_, dtype=float), m.n_iter_, own

        def fit_fista(tol, alpha=alpha, cert=cert):
            r = fista_structured(Xs, ys, pen_np, alpha, cert, loss=loss, eps=tol,
                                 max_time=args.fista_max_time, restart=not args.no_restart)
            own = (f"power iteration {r['time_L']:.2f}s"
                   + ("" if r["converged"] else
                      f"; STOPPED at the {args.fista_max_time:g}s cap"))
            return r["V"], r["b"], r["n_iter"], own

        def fit_apg(tol, alpha=alpha, cert=cert):
            r = apg_backtracking(Xs, ys, pen_np, alpha, cert, loss=loss, eps=tol,
                                 max_time=args.fista_max_time)
            own = (f"final gamma {r['gamma']:.3g}"
                   + ("" if r["converged"] else
                      f"; STOPPED at the {args.fista_max_time:g}s cap"))
            return r["V"], r["b"], r["n_iter"], own

        kw = dict(cert=cert, describe=pen_np.structure, target=eps, tol0=eps,
                  repeats=args.repeats, budget=args.budget, max_tighten=MAX_TIGHTEN,
                  warned_note="stopped at max_iter (the --max-time cap) short of eps; ")
        rows = [h.run_solver("regmtl (auto)", fit_regmtl, **kw),
                h.run_solver("numpy FISTA" + ("" if args.no_restart else " +rst"), fit_fista,
                             tighten=False, **kw),
                h.run_solver("numpy APG-bt", fit_apg, tighten=False, **kw)]
        rows[1].tol = rows[2].tol = None
        data_mb = sum(x.nbytes for x in Xs) / 2**20
        mem_r = peak_extra(partial(fit_regmtl, rows[0].tol)) / 2**20
        mem_f = peak_extra(partial(fit_fista, eps)) / 2**20
        print(f"  peak memory (tracemalloc, one untimed run): regmtl {mem_r:.1f} MB, numpy "
              f"FISTA {mem_f:.1f} MB; the designs {data_mb:.1f} MB")
        summary.add("all", f"{name}, {loss}, {label}", rows[0],
                    {"FISTA": rows[1], "APG-bt": rows[2]})
        h.print_table(f"-- {name}, {loss}: alpha = {label} = {alpha:.6g}", rows, eps,
                      args.repeats, what="rel gap" if cert.kind == "gap" else "rel KKT", **TABLE)


def main(argv=None) -> None:
    ap = h.parser(__doc__, "small shapes (T=10, p=200, n_t in [30, 150]), for a fast run",
                  "target relative gap / relative KKT residual",
                  "alpha = alpha_max / divisor (Trace, Dirty, SparseLowRank, RobustLowRank, "
                  "RobustFeatures, TemporalGroupLasso, FusedGroupLasso)")
    # default shape: tasks of 5 to 20 times as many rows as features, as in most multi-task
    # data (School p = 28, n_t ~ 110; Parkinsons p = 19, n_t ~ 140; landmine p = 9, n_t ~ 500;
    # sarcos p = 21, n ~ 44,000), where the data term is a p x p quadratic per task;
    # --n-min 200 --n-max 800 is a shorter case (2 to 8 rows per feature), and
    # --T 30 --p 300 --n-min 60 --n-max 260 the wide one (p > n_t), where iterations go over
    # the rows
    ap.add_argument("--T", type=int, default=30)
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--n-min", type=int, default=500)
    ap.add_argument("--n-max", type=int, default=2000)
    names = [s[0] for s in SCENARIOS]
    ap.add_argument("--penalties", nargs="+", default=names, choices=names + ["mean_ridge"],
                    help="squared-loss scenarios (mean_ridge: Mean with ridge 0.1, gap-certified;"
                         " not run by default)")
    ap.add_argument("--logistic", nargs="*", default=["trace", "dirty"],
                    choices=names + ["mean_ridge"], help="logistic-loss scenarios")
    ap.add_argument("--max-iter", type=int, default=1_000_000,
                    help="upper bound on regmtl's max_iter (a safety net; tol decides)")
    ap.add_argument("--max-time", type=float, default=None,
                    help="about this many seconds per solver run: regmtl's max_iter is set from a "
                         "probe run's time per iteration, the FISTA stops at it "
                         "(default 60; --quick 10)")
    ap.add_argument("--wide", action="store_true",
                    help="tasks with fewer rows than features: T=30, p=300 (or --p), n_t in "
                         "[60, 260]")
    ap.add_argument("--sparse-sets", action="store_true",
                    help="the 8-point logistic paths on spam and newsgroups (REGMTL_DATA) of "
                         "the --penalties among trace and sparse_lowrank")
    ap.add_argument("--school-cv", action="store_true",
                    help="MultiTaskRegressorCV('trace') on School: solver='auto' against "
                         "solver='fista' (proximal gradient alone)")
    ap.add_argument("--max-iter-path", type=int, default=5000,
                    help="max_iter of every fit of a --sparse-sets path")
    ap.add_argument("--no-diagnose", action="store_true",
                    help="skip the alpha/100, 100 alpha diagnostic fits of Mean/Graph/Clustered")
    _record.add_option(ap)
    args = h.parse(ap, argv, budget=20.0, quick_budget=3.0)
    if args.wide:
        args.n_min, args.n_max = 60, 260
        if args.p == 100:
            args.p = 300
    if args.sparse_sets:
        sparse_sets(args)
        return
    if args.school_cv:
        school_cv(args)
        return
    if args.max_time is None:
        args.max_time = 10.0 if args.quick else 60.0
    args.fista_max_time = args.max_time
    data_of = {s[0]: s[1:] for s in SCENARIOS}
    data_of["mean_ridge"] = ("clustered", 20)
    FIXED_ALPHA.setdefault("mean_ridge", FIXED_ALPHA["mean"])
    runs, summary = [], Summary()
    for loss, chosen in (("squared", args.penalties), ("logistic", args.logistic)):
        for name in chosen:
            kind, seed = data_of[name]
            runs.append(partial(scenario, args, len(runs) + 1, name, kind,
                                seed + (5 if loss == "logistic" else 0), loss, summary))
    h.run(lambda: header(args), warm_up, "regmtl penalty and loss", runs)
    print_summary(summary, args)
    T, p, lo, hi = (10, 200, 30, 150) if args.quick else (args.T, args.p, args.n_min, args.n_max)
    _record.write(args.record, "structured", dict(T=T, p=p, n_min=lo, n_max=hi, eps=args.eps,
                                                  quick=args.quick, **summary.record()))


def sparse_sets(args) -> None:
    """The 8-point logistic paths of the trace norm and sparse + low rank on the bag-of-words
    sets: regmtl's time, certificates and peak memory."""
    import regmtl.datasets as ds

    for name, loader in (("newsgroups", ds.load_newsgroups), ("spam", ds.load_spam)):
        try:
            bunch = loader()
        except (OSError, ValueError) as exc:
            print(f"{name}: skipped ({exc})")
            continue
        Xs, ys = bunch["X"], [np.where(y > 0, 1.0, -1.0) for y in bunch["y"]]
        data_mb = sum(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes for x in Xs) / 2**20
        print(f"\n{name}: T={len(Xs)}, p={Xs[0].shape[1]}, N={sum(len(y) for y in ys)}, "
              f"nnz={sum(x.nnz for x in Xs)} ({data_mb:.1f} MB)")
        for pen in [n for n in ("trace", "sparse_lowrank") if n in args.penalties]:
            T = len(Xs)
            a_max = regmtl.alpha_max(Xs, ys, penalty=_regmtl_pen(pen, T), loss="logistic")
            grid = a_max * np.logspace(0, -2, 8)
            run = partial(regmtl.regularization_path, Xs, ys, penalty=_regmtl_pen(pen, T),
                          loss="logistic", alphas=grid, tol=args.eps,
                          max_iter=args.max_iter_path)
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                path, rss = rss_peak_increase(run)
            took = time.perf_counter() - t0
            out = path_bytes(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peak = peak_extra(run)
            pxt = Xs[0].shape[1] * T * 8 / 2**20
            print(f"  {pen}: regmtl path {took:.1f}s, certified {int(path.converged.sum())}/8 "
                  f"(worst certificate {path.certificates.max():.1e}), iterations "
                  f"{int(path.n_iter.sum())}, {len(caught)} warnings")
            print(f"    memory: traced peak {peak / 2**20:.0f} MB, of which the path's returned "
                  f"arrays {out / 2**20:.0f} MB ({out / 2**20 / pxt:.0f} p x T matrices of "
                  f"{pxt:.1f} MB); held above them {(peak - out) / 2**20:.0f} MB = "
                  f"{(peak - out) / 2**20 / data_mb:.1f} x the data; resident peak +"
                  f"{rss / 2**20:.0f} MB (the timed run)")


def path_bytes(path) -> int:
    """Bytes of the arrays a regularization path returns: ``coefs`` and the penalty's
    structure at every point (``P_`` and ``Q_`` for sparse + low rank)."""
    return path.coefs.nbytes + sum(v.nbytes for s in path.structure for v in s.values()
                                   if isinstance(v, np.ndarray))


def school_cv(args) -> None:
    """MultiTaskRegressorCV('trace') on School (30 alphas, 5 folds, tol 1e-4, the defaults):
    median time of solver='auto' (ADMM where FISTA crawls) and of solver='fista', the chosen
    alphas, the best scores, and the fits that stopped short of tol."""
    from regmtl.datasets import load_school

    b = load_school()
    out = {}
    for solver in ("fista", "auto"):
        times, model = [], None
        for _ in range(args.repeats):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                model = regmtl.MultiTaskRegressorCV("trace", solver=solver).fit(b["X"], b["y"])
                times.append(time.perf_counter() - t0)
        out[solver] = (float(np.median(times)), model, caught)
        short = [str(w.message)[:90] for w in caught if "stopped short" in str(w.message)
                 or "ran out" in str(w.message)]
        print(f"  solver={solver!r}: median {out[solver][0]:.2f}s over {len(times)} runs; "
              f"alpha_ {model.alpha_:.6g}, best_score_ {model.best_score_:.8g}; "
              f"warnings: {short or 'none'}")
    fista, auto = out["fista"], out["auto"]
    print(f"  time fista / auto: {fista[0] / auto[0]:.2f} (target >= 2); same alpha_: "
          f"{fista[1].alpha_ == auto[1].alpha_}; best_score_ relative difference "
          f"{abs(fista[1].best_score_ - auto[1].best_score_) / abs(auto[1].best_score_):.1e}")


def print_summary(summary: Summary, args) -> None:
    """Every ratio peer time / regmtl time, their median and the smallest (targets: median
    >= 5, each >= 3), against both peers."""
    T, p, lo, hi = (10, 200, 30, 150) if args.quick else (args.T, args.p, args.n_min, args.n_max)
    summary.print_table({"all"}, ["FISTA", "APG-bt"],
                        f"Summary: NumPy peer time / regmtl time, T={T}, p={p}, "
                        f"n_t in [{lo}, {hi}]")
    for peer, text in (("FISTA", "FISTA, exact L + adaptive restart"),
                       ("APG-bt", "APG with backtracking (MALSAR's algorithm)")):
        med, low, k = summary.median(peer)
        worst = min((e[peer] for _, _, e in summary.entries if peer in e),
                    key=lambda v: v[0], default=(float("nan"), False))
        print(f"  {text}: median {fmt(med, low)} over {k} entries (target >= 5: "
              f"{'met' if med >= 5 else 'NOT met'}); smallest {fmt(*worst)} (target >= 3: "
              f"{'met' if worst[0] >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
