"""Benchmark: the nonconvex penalties (MCP, SCAD, capped-L1, of entries and of rows), regmtl's
block coordinate descent against NumPy peers, at the same KKT residual.

Peers (skglm is used for MCP / SCAD when installed; it is not on this machine, so):
  MCP, SCAD   a NumPy accelerated proximal gradient: step 1/L (L the data term's Lipschitz
              constant, by power iteration), FISTA momentum restarted whenever the objective
              rises (the iterates then stay monotone), the same exact prox as regmtl
              (firm thresholding, SCAD's three pieces, of entries or row norms);
  capped-L1   MALSAR's multi-stage algorithm (Gong, Ye & Zhang 2012, ``Least_msmtfl_capL1``)
              in NumPy as the paper states it: stage 1 is the lasso (group lasso for
              ``group=True``), stage s + 1 the weighted problem with weights
              ``alpha * 1{|w| < cap}`` (``1{||W_j|| < cap}`` by rows) at stage s's solution,
              each stage solved by FISTA (MALSAR's ``wLassomtl``) warm-started from the last.

"Same KKT residual": every fit is re-certified by one common NumPy function (``kkt`` below):
the distance of minus the gradient to the Clarke subdifferential of the penalty, per entry or
row, plus the intercepts' gradient, over ||G0|| (the gradient at W = 0); all must reach
``eps``. regmtl gets tol = eps (its own residual is the same quantity); the proximal gradient
checks the common residual every 10 iterations and stops at eps; the multi-stage method stops
when it reaches eps after a stage, each stage's FISTA run until its own (weighted-lasso) KKT
residual is below eps / 2 (MALSAR's relative-objective rule, 1e-5, stops far short of such
residuals). A solver whose fit stops short of eps is run again with a 10x tighter tol
(bench/_harness.py). Different algorithms may reach different stationary points of a
nonconvex problem: the table shows each one's objective and support.

Problems: T tasks of the squared loss, Toeplitz designs (rho = 0.5), ``k`` features shared by
every task with large coefficients (|w| in [1.5, 2.5], random signs), noise sigma = 1: per-task
designs (lists: T = 10, p = 1000, n_t = 200, k = 20) and one shared design (T = 10, p = 2000,
n = 500, k = 20; the NumPy peers take its gradient as one product); alpha = alpha_max / d for d
in --divisors (5, 20 and 100). Times are medians of --repeats runs, one BLAS
thread by default on this machine (--blas-threads), numba warmed up first.

Run:  .venv/bin/python bench/bench_nonconvex.py [--quick] [--repeats 3] [--eps 1e-6]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402
from _problems import toeplitz_design  # noqa: E402

import regmtl  # noqa: E402

try:
    import skglm
except ImportError:  # optional peer
    skglm = None

FULL = dict(T=10, p=1000, n=200, k=20)
QUICK = dict(T=5, p=200, n=100, k=10)
FULL_SHARED = dict(T=10, p=2000, n=500, k=20)
QUICK_SHARED = dict(T=5, p=300, n=150, k=10)
TABLE = dict(what="rel KKT", name_width=36, tol=("tol passed", 10, lambda r, t: f"{r.tol:.1e}"),
             n_iter_width=8, before_ratio=[("rows", 5, lambda r, t: str(r.structure)),
                                           ("objective", 14, lambda r, t: f"{r.primal:.8g}")])


# ----------------------------------------------------------------------------- problems
def problem(T, p, n, k, seed=0, sigma=1.0, shared=False):
    """Per-task designs (lists), or one design for every task (X, Y) with ``shared``."""
    rng = np.random.default_rng(seed)
    W = np.zeros((p, T))
    S = rng.choice(p, size=k, replace=False)
    W[S] = rng.choice([-1.0, 1.0], size=(k, T)) * rng.uniform(1.5, 2.5, size=(k, T))
    if shared:
        X = np.ascontiguousarray(toeplitz_design(rng, n, p))
        return X, X @ W + sigma * rng.standard_normal((n, T)) + 1.0
    Xs = [np.ascontiguousarray(toeplitz_design(rng, n, p)) for _ in range(T)]
    ys = [X @ W[:, t] + sigma * rng.standard_normal(n) + 1.0 for t, X in enumerate(Xs)]
    return Xs, ys


# ----------------------------------------------------------------------------- the penalties
def rho(kind, s, a, shape):
    """The penalty of magnitudes s >= 0 (arrays)."""
    if kind == "mcp":
        return np.where(s <= shape * a, a * s - s * s / (2 * shape), shape * a * a / 2)
    if kind == "scad":
        mid = (2 * shape * a * s - s * s - a * a) / (2 * (shape - 1))
        return np.where(s <= a, a * s, np.where(s <= shape * a, mid, a * a * (shape + 1) / 2))
    return a * np.minimum(s, shape)


def drho(kind, s, a, shape):
    """rho'(s) for s > 0."""
    if kind == "mcp":
        return np.maximum(a - s / shape, 0.0)
    if kind == "scad":
        return np.where(s <= a, a, np.maximum(shape * a - s, 0.0) / (shape - 1))
    return np.where(s < shape, a, 0.0)


def prox_magnitude(kind, u, L, a, shape):
    """argmin_{s >= 0} L/2 (s - u)^2 + rho(s): the better of each piece's candidates."""
    if kind == "mcp":
        firm = np.clip((L * u - a) / (L - 1 / shape), 0, shape * a) if L * shape > 1 else 0 * u
        cands = [np.zeros_like(u), firm, np.maximum(u, shape * a)]
    elif kind == "scad":
        c2 = (np.clip(((shape - 1) * L * u - shape * a) / ((shape - 1) * L - 1), a, shape * a)
              if L * (shape - 1) > 1 else a + 0 * u)
        cands = [np.clip(u - a / L, 0, a), c2, np.maximum(u, shape * a)]
    else:
        cands = [np.clip(u - a / L, 0, shape), np.maximum(u, shape)]
    vals = [0.5 * L * (c - u) ** 2 + rho(kind, c, a, shape) for c in cands]
    return np.choose(np.argmin(np.array(vals), axis=0), cands)


def magnitudes(W, group):
    if group == "l1":  # capped-L1,L1: the rows' L1 norms
        return np.abs(W).sum(axis=1)
    return np.sqrt(np.einsum("jt,jt->j", W, W)) if group else np.abs(W)


def _l1_rows_distance(W, G, alpha, cap):
    """Per row, the distance of G to the Clarke subdifferential of alpha min(||w||_1, cap):
    alpha d||w||_1 below the cap, {0} beyond, the segment theta alpha d||w||_1 at it (the
    convex distance minimized over theta on a grid of 2001 points, then refined)."""
    n1 = np.abs(W).sum(axis=1)
    on, sign = W != 0, np.sign(W)

    def dist(theta):
        a = alpha * np.asarray(theta)[..., None, None]
        d = np.where(on, G - a * sign, np.maximum(np.abs(G) - a, 0.0))
        return np.sqrt((d * d).sum(axis=-1))

    below, beyond = dist(1.0), np.sqrt((G * G).sum(axis=1))
    out = np.where(n1 < cap, below, beyond)
    kink = np.abs(n1 - cap) <= 1e-12 * cap
    if kink.any():
        grid = np.linspace(0.0, 1.0, 2001)
        d = dist(grid)[:, kink]  # (2001, rows at the kink)
        k = d.argmin(axis=0)
        fine = np.clip(grid[k][None, :] + np.linspace(-1e-3, 1e-3, 2001)[:, None], 0, 1)
        a = alpha * fine[:, :, None]
        Gk, onk, sk = G[kink], on[kink], sign[kink]
        dd = np.where(onk, Gk - a * sk, np.maximum(np.abs(Gk) - a, 0.0))
        out[kink] = np.sqrt((dd * dd).sum(axis=-1)).min(axis=0)
    return out


def prox(kind, group, W, L, a, shape):
    u = magnitudes(W, group)
    s = prox_magnitude(kind, u, L, a, shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(u > 0, s / u, 0.0)
    return W * (f[:, None] if group else f)


def penalty_value(kind, group, W, a, shape):
    return float(np.sum(rho(kind, magnitudes(W, group), a, shape)))


# ----------------------------------------------------------------------------- the data term
class Data:
    """Per-task designs, centered (the intercepts are minimized out in closed form); a shared
    design (one X for every task, ``Y`` n x T) takes its gradient as one product."""

    def __init__(self, Xs, ys):
        self.shared = isinstance(Xs, np.ndarray)
        if self.shared:
            self.X, self.Y = Xs, ys
            self.Xc1 = Xs - Xs.mean(axis=0)
            Xs, ys = [Xs] * ys.shape[1], [ys[:, t] for t in range(ys.shape[1])]
        self.Xs, self.ys = Xs, ys
        self.xm = [X.mean(axis=0) for X in Xs]
        self.Xc = [X - m for X, m in zip(Xs, self.xm, strict=True)]
        self.yc = [y - y.mean() for y in ys]
        self.n = np.array([len(y) for y in ys], dtype=float)
        self.G0 = self.neg_grad(np.zeros((Xs[0].shape[1], len(Xs))))
        self.g0 = float(np.linalg.norm(self.G0))
        self.P0 = sum(0.5 * float(r @ r) / n for r, n in zip(self.yc, self.n, strict=True))

    def residuals(self, W):
        if self.shared:
            return list((np.column_stack(self.yc) - self.Xc1 @ W).T)
        return [yc - X @ W[:, t] for t, (X, yc) in enumerate(zip(self.Xc, self.yc, strict=True))]

    def neg_grad(self, W, R=None):
        R = self.residuals(W) if R is None else R
        if self.shared:
            return self.Xc1.T @ np.column_stack(R) / self.n
        return np.column_stack([X.T @ r / n for X, r, n in zip(self.Xc, R, self.n, strict=True)])

    def loss(self, W, R=None):
        R = self.residuals(W) if R is None else R
        return sum(0.5 * float(r @ r) / n for r, n in zip(R, self.n, strict=True))

    def intercepts(self, W):
        return np.array([y.mean() - m @ W[:, t]
                         for t, (y, m) in enumerate(zip(self.ys, self.xm, strict=True))])

    def lipschitz(self, iters=100, seed=0):
        rng = np.random.default_rng(seed)
        best = 0.0
        for X, n in zip(self.Xc[:1] if self.shared else self.Xc, self.n, strict=False):
            v = rng.standard_normal(X.shape[1])
            lam = 0.0
            for _ in range(iters):
                w = X.T @ (X @ v) / n
                lam = float(np.linalg.norm(w))
                v = w / lam
            best = max(best, lam)
        return 1.01 * best  # (a margin over the power iteration's lower estimate)


def kkt(data, kind, group, shape, W, b, alpha):
    """The common certificate: the relative KKT residual of the Clarke subdifferential, the
    intercepts' gradient included (``b`` the intercepts of the fit, in input coordinates)."""
    if data.shared:
        Rm = data.Y - data.X @ W - b
        R, G = list(Rm.T), data.X.T @ Rm / data.n
    else:
        R = [y - X @ W[:, t] - b[t]
             for t, (X, y) in enumerate(zip(data.Xs, data.ys, strict=True))]
        G = np.column_stack([X.T @ r / n for X, r, n in zip(data.Xs, R, data.n, strict=True)])
    icpt = np.array([r.sum() / n for r, n in zip(R, data.n, strict=True)])
    if group == "l1":
        d = _l1_rows_distance(W, G, alpha, shape)
        res = np.sqrt(float(np.sum(d * d)) + float(icpt @ icpt)) / data.g0
        primal = sum(0.5 * float(r @ r) / n for r, n in zip(R, data.n, strict=True))
        return dict(rel=res, primal=primal + penalty_value(kind, group, W, alpha, shape))
    s = magnitudes(W, group)
    on = s > 0
    safe = np.where(on, s, 1.0)
    U = W / (safe[:, None] if group else safe)
    if group:
        c = np.einsum("jt,jt->j", G, U)
    else:
        c = G * U
    kink = on & (s == shape) if kind == "capped" else np.zeros_like(on)
    slope = np.where(kink, np.clip(c, 0.0, alpha), drho(kind, safe, alpha, shape))
    if group:
        D = G - slope[:, None] * U
        d = np.where(on, np.sqrt(np.einsum("jt,jt->j", D, D)),
                     np.maximum(np.sqrt(np.einsum("jt,jt->j", G, G)) - alpha, 0.0))
    else:
        d = np.where(on, np.abs(G - slope * U), np.maximum(np.abs(G) - alpha, 0.0))
    res = np.sqrt(float(np.sum(d * d)) + float(icpt @ icpt)) / data.g0
    primal = sum(0.5 * float(r @ r) / n for r, n in zip(R, data.n, strict=True))
    return dict(rel=res, primal=primal + penalty_value(kind, group, W, alpha, shape))


# ----------------------------------------------------------------------------- the peers
class Budget(Exception):
    pass


def proximal_gradient(data, kind, group, shape, alpha, tol, max_iter, max_time):
    """FISTA with the exact prox and a restart whenever the objective rises; stops on the
    common KKT residual (checked every 10 iterations)."""
    p, T = data.Xs[0].shape[1], len(data.Xs)
    L = data.lipschitz()
    W = np.zeros((p, T))
    Z, t = W.copy(), 1.0
    F = data.loss(W) + penalty_value(kind, group, W, alpha, shape)
    t0 = time.perf_counter()
    for it in range(1, max_iter + 1):
        U = prox(kind, group, Z + data.neg_grad(Z) / L, L, alpha, shape)
        F_new = data.loss(U) + penalty_value(kind, group, U, alpha, shape)
        if F_new > F:  # restart from W with a plain step
            t = 1.0
            U = prox(kind, group, W + data.neg_grad(W) / L, L, alpha, shape)
            F_new = data.loss(U) + penalty_value(kind, group, U, alpha, shape)
            Z = U
        else:
            t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
            Z = U + (t - 1) / t_new * (U - W)
            t = t_new
        W, F = U, F_new
        if it % 10 == 0:
            if kkt(data, kind, group, shape, W, data.intercepts(W), alpha)["rel"] <= tol:
                break
            if time.perf_counter() - t0 > max_time:
                break
    return W, data.intercepts(W), it


def weighted_fista(data, group, thr, W, L, tol, max_iter):
    """min data + sum_g thr_g ||W_g|| (weighted lasso / group lasso) by FISTA from W, until
    its own relative KKT residual is at most tol (checked every 10 iterations)."""
    Z, t = W.copy(), 1.0
    it = 0
    for it in range(1, max_iter + 1):
        V = Z + data.neg_grad(Z) / L
        if group == "l1":  # row weights on every entry of the row: MALSAR's wLassomtl
            U = np.sign(V) * np.maximum(np.abs(V) - thr[:, None] / L, 0.0)
        else:
            u = magnitudes(V, group)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(u > 0, np.maximum(u - thr / L, 0.0) / u, 0.0)
            U = V * (f[:, None] if group else f)
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        Z = U + (t - 1) / t_new * (U - W)
        if np.vdot(Z - U, U - W) > 0:  # gradient restart
            t_new, Z = 1.0, U
        W, t = U, t_new
        if it % 10 == 0:
            G = data.neg_grad(W)
            s = magnitudes(W, group)
            safe = np.where(s > 0, s, 1.0)
            if group == "l1":
                tj = thr[:, None]
                d = np.where(W != 0, np.abs(G - tj * np.sign(W)), np.maximum(np.abs(G) - tj, 0))
            elif group:
                D = G - (thr / safe)[:, None] * W
                d = np.where(s > 0, np.sqrt(np.einsum("jt,jt->j", D, D)),
                             np.maximum(magnitudes(G, True) - thr, 0.0))
            else:
                d = np.where(s > 0, np.abs(G - thr * np.sign(W)), np.maximum(np.abs(G) - thr, 0))
            if np.sqrt(float(np.sum(d * d))) / data.g0 <= tol:
                break
    return W, it


def multi_stage(data, group, cap, alpha, tol, max_stages, max_time):
    """Gong, Ye & Zhang (2012): stage 1 the (group) lasso, then weights 1{magnitude < cap} of
    the last stage's solution; stops when the capped problem's KKT residual reaches tol."""
    p, T = data.Xs[0].shape[1], len(data.Xs)
    L = data.lipschitz()
    W = np.zeros((p, T))
    thr = alpha * np.ones(p if group else (p, T))
    total, t0 = 0, time.perf_counter()
    for _ in range(max_stages):
        W, it = weighted_fista(data, group, thr, W, L, 0.5 * tol, 100_000)
        total += it
        if kkt(data, "capped", group, cap, W, data.intercepts(W), alpha)["rel"] <= tol:
            break
        if time.perf_counter() - t0 > max_time:
            break
        thr = alpha * (magnitudes(W, group) < cap)
    return W, data.intercepts(W), total


# ----------------------------------------------------------------------------- solvers
def kind_of(pen):
    return {"MCP": "mcp", "SCAD": "scad", "CappedL1": "capped"}[type(pen).__name__]


def shape_of(pen):
    return float(pen.cap if isinstance(pen, regmtl.CappedL1) else pen.gamma)


def fit_regmtl(Xs, ys, pen, alpha, max_iter):
    def fit(tol):
        m = regmtl.MultiTaskRegressor(pen, alpha=alpha, tol=tol, max_iter=max_iter).fit(Xs, ys)
        return m.coef_.T, m.intercept_, m.n_iter_, f"kkt_residual_ {m.kkt_residual_:.2e}"
    return fit


def fit_peer(data, pen, alpha, max_time):
    kind, shape = kind_of(pen), shape_of(pen)

    def fit(tol):
        if kind == "capped":
            W, b, it = multi_stage(data, pen.group, shape, alpha, tol, 200, max_time)
            return W, b, it, "multi-stage (FISTA iterations)"
        W, b, it = proximal_gradient(data, kind, pen.group, shape, alpha, tol, 1_000_000,
                                     max_time)
        return W, b, it, "proximal gradient (iterations)"
    return fit


def peer_name(pen):
    if isinstance(pen, regmtl.CappedL1):
        return f"multi-stage (MALSAR) {'rows' if pen.group else 'entries'}"
    return f"NumPy prox-grad {'rows' if pen.group else 'entries'}"


def skglm_fit(Xs, ys, pen, alpha):
    """skglm's MCP / SCAD with its quadratic datafit (1 / (2 n) ||y - X w||^2, the same per-task
    scale) and Anderson coordinate descent, fitted task by task (entrywise penalties only)."""
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Quadratic
    from skglm.penalties import SCAD, MCPenalty
    from skglm.solvers import AndersonCD

    def fit(tol):
        W, b, it = [], [], 0
        for X, y in zip(Xs, ys, strict=True):
            penalty = (MCPenalty(alpha, pen.gamma) if isinstance(pen, regmtl.MCP)
                       else SCAD(alpha, pen.gamma))
            est = GeneralizedLinearEstimator(Quadratic(), penalty,
                                             AndersonCD(tol=tol, fit_intercept=True))
            est.fit(X, y)
            W.append(est.coef_)
            b.append(est.intercept_)
        return np.column_stack(W), np.array(b), it, "per task"
    return fit


# ----------------------------------------------------------------------------- scenarios
def header(args) -> None:
    h.print_header(
        "regmtl nonconvex penalties benchmark", "bench_nonconvex.py", args.quick, 110,
        f"repeats: {args.repeats} (median time reported; a solver stops repeating once its "
        f"runs exceed {args.budget:g}s); target relative KKT residual eps = {args.eps:g}",
        extra_libs=[("skglm", skglm.__version__ if skglm else
                     "not installed (MCP / SCAD against a NumPy proximal gradient)")])


def warm_up() -> None:
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 8)) for _ in range(3)]
    ys = [rng.standard_normal(40) for _ in range(3)]
    X, Y = Xs[0], np.column_stack(ys)
    for pen in PENALTIES:
        regmtl.MultiTaskRegressor(pen, alpha=0.05, tol=1e-8).fit(Xs, ys)
        regmtl.MultiTaskRegressor(pen, alpha=0.05, tol=1e-8).fit(X, Y)


PENALTIES = [regmtl.MCP(), regmtl.MCP(group=True), regmtl.SCAD(), regmtl.SCAD(group=True),
             regmtl.CappedL1(1.0), regmtl.CappedL1(1.0, group=True),
             regmtl.CappedL1(1.0, group="l1")]


def entry(args, label, Xs, ys, results) -> None:
    data = Data(Xs, ys)
    print()
    print("#" * 110)
    print(f"{label}: P0 = {data.P0:.6g}, ||G0|| = {data.g0:.6g}, eps = {args.eps:g}")
    for pen in PENALTIES:
        if args.penalties and not any(k in repr(pen) for k in args.penalties):
            continue
        kind, shape = kind_of(pen), shape_of(pen)
        a_max = regmtl.alpha_max(Xs, ys, penalty=pen)
        for div in args.divisors:
            alpha = a_max / div

            def cert(W, b, alpha=alpha, kind=kind, pen=pen, shape=shape):
                return kkt(data, kind, pen.group, shape, W, b, alpha)

            def describe(W):
                return int(np.count_nonzero(np.any(W != 0, axis=1)))

            kw = dict(target=args.eps, repeats=args.repeats, budget=args.budget, tol_fmt=".1e",
                      stopped_at="KKT ")
            rows = [h.run_solver(f"regmtl {pen!r}", fit_regmtl(Xs, ys, pen, alpha,
                                                                args.max_iter),
                                 cert, describe, tol0=args.eps, **kw)]
            rows.append(h.run_solver(peer_name(pen), fit_peer(data, pen, alpha, args.max_time),
                                     cert, describe, tol0=args.eps, tighten=False, **kw))
            if skglm is not None and not pen.group and kind != "capped":
                rows.append(h.run_solver("skglm x T", skglm_fit(Xs, ys, pen, alpha), cert,
                                         describe, tol0=args.eps, **kw))
            h.print_table(f"-- {label}, {pen!r}, alpha = alpha_max/{div:g} = {alpha:.6g}",
                          rows, args.eps, args.repeats, **TABLE)
            results.append((f"{label.split()[0]} {pen!r} /{div:g}",
                            [h.ratio(r, rows[0]) for r in rows[1:]],
                            [r.name for r in rows[1:]]))


def main(argv=None) -> None:
    ap = h.parser(__doc__, "small shapes, for a fast run", "target relative KKT residual",
                  "alpha = alpha_max / divisor")
    ap.add_argument("--max-iter", type=int, default=100_000)
    ap.add_argument("--scenarios", nargs="+", choices=("lists", "shared"),
                    default=["lists", "shared"])
    ap.add_argument("--max-time", type=float, default=120.0,
                    help="a peer's own time cap per fit (s): it then stops short of eps")
    ap.add_argument("--penalties", nargs="+", default=None,
                    help="only the penalties whose repr contains one of these, e.g. \"'l1'\"")
    ap.set_defaults(divisors=[5.0, 20.0, 100.0])
    args = h.parse(ap, argv, budget=30.0, quick_budget=5.0)
    shape = QUICK if args.quick else FULL
    results: list = []

    def run_lists():
        Xs, ys = problem(**shape)
        entry(args, f"lists T={shape['T']} p={shape['p']} n_t={shape['n']} k={shape['k']}",
              Xs, ys, results)

    def run_shared():
        sh = QUICK_SHARED if args.quick else FULL_SHARED
        X, Y = problem(**sh, shared=True)
        entry(args, f"shared T={sh['T']} p={sh['p']} n={sh['n']} k={sh['k']}", X, Y, results)

    scenarios = {"lists": run_lists, "shared": run_shared}

    def summary():
        print()
        print("#" * 110)
        print("SUMMARY: ratio = peer time / regmtl time at the same common KKT residual (>1: "
              "regmtl faster; '>' a lower bound: the peer stopped short of eps)")
        for label, ratios, names in results:
            cells = ", ".join(f"{nm}: {h.fmt_ratio(*r)}" for nm, r in zip(names, ratios,
                                                                            strict=True))
            print(f"  {label:<47} {cells}")
        vals = [r[0][0] for _, r, _ in results if r]
        if vals:
            print(f"  median ratio over {len(vals)} entries: {float(np.median(vals)):.2f}; "
                  f"smallest {min(vals):.2f}")

    h.run(lambda: header(args), warm_up, "penalty (lists and shared forms)",
          [*(scenarios[name] for name in args.scenarios), summary])


if __name__ == "__main__":
    main()
