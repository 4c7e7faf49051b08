"""Scenario 1 of bench_l21.py: the shared-design multi-task lasso suite (squared loss).

For each shape (n, p, T): alpha_max/10, alpha_max/100 and a warm-started path of ``n_alphas``
alphas from alpha_max down to alpha_max/100 (geometric), each timed for regmtl and its peers
(bench/_peers.py) on the same data at the same common duality gap (bench/_gap.py), with the time
of one ``X^T R`` product as the unit of regmtl's time at alpha_max/10. The ratios go to the
closing summary (bench/_summary.py).
"""

from __future__ import annotations

import time

import _harness as h
import _peers as peers
import numpy as np
from _gap import alpha_max_l21, duality_gap, p0_value, path_gap
from _problems import shared_regression

import regmtl

FULL_SHAPES = [(500, 5000, 20), (20000, 1000, 50), (200, 10000, 100)]
QUICK_SHAPES = [(100, 1000, 5), (4000, 100, 10), (50, 1000, 20)]
#: the label of the n >> p shape (Gram mode) in the summary
GRAM_SHAPE = "n>>p"

TABLE = dict(what="rel gap", name_width=24, tol=("tol passed", 10, lambda r, t: f"{r.tol:.1e}"),
             n_iter_width=6, before_ratio=[("rows", 5, lambda r, t: str(r.structure))])


def _rows(W) -> int:
    return int(np.count_nonzero(np.linalg.norm(W, axis=1)))


def shape_kind(n: int, p: int) -> str:
    return GRAM_SHAPE if n >= 2 * p else ("p>>n" if p >= 2 * n else "n~p")


def xtr_time(X: np.ndarray, T: int, min_time: float = 0.5, min_runs: int = 10) -> float:
    """Median time of one BLAS product X^T R, R an (n, T) Fortran-ordered matrix."""
    R = np.asfortranarray(np.random.default_rng(0).standard_normal((X.shape[0], T)))
    times, t_all = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - t_all < min_time:
        t0 = time.perf_counter()
        X.T @ R
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


class _Entry:
    """One (shape, alpha or path) entry: the certificate, the solvers' fits, the table."""

    def __init__(self, args, X, Y, P0, alpha=None, grid=None):
        self.args, self.X, self.Y, self.P0 = args, X, Y, P0
        self.alpha, self.grid = alpha, grid

    def cert(self, W, b):
        if self.grid is None:
            return duality_gap(self.X, self.Y, W, b, self.alpha, P0=self.P0)
        return path_gap(self.X, self.Y, W, b, self.grid, P0=self.P0)

    def describe(self, W):
        return _rows(W if self.grid is None else W[-1])

    def run(self, name, fit, tol0, limit=None, **kw):
        a = self.args
        return h.run_solver(name, fit, self.cert, self.describe, a.eps, tol0, a.repeats, a.budget,
                            max_tighten=kw.pop("max_tighten", 4), tol_fmt=".1e",
                            stopped_at="gap ", limit=limit, **kw)


def _fits(args, X, Y, P0, alpha, grid, sk_path, skglm_tol0):
    """{solver name: (fit, tol0, extra run_solver options)} of one entry, regmtl first."""
    me, pathed = args.max_epochs, grid is not None
    fits = {"regmtl (bcd)": ((peers.regmtl_path(X, Y, grid, me) if pathed
                              else peers.regmtl_fit(X, Y, alpha, P0, me)), args.eps, {})}
    if not pathed:
        fits["sklearn MultiTaskLasso"] = (peers.sklearn_fit(X, Y, alpha, P0, me), args.eps / 2, {})
    for variant in sk_path if pathed else ():
        make = peers.sklearn_enet_path if variant == "enet_path" else peers.sklearn_path_loop
        name = "sklearn enet_path" if variant == "enet_path" else "sklearn MTL warm loop"
        fits[name] = (make(X, Y, grid, me), args.eps / 2, {})
    if peers.SkglmMultiTaskLasso is not None:
        fit = peers.skglm_path(X, Y, grid, me) if pathed else peers.skglm_fit(X, Y, alpha, me)
        fits["skglm MultiTaskLasso"] = (fit, skglm_tol0, dict(max_tighten=6))
    fista = (peers.fista_path(X, Y, grid, restart=not args.no_restart) if pathed
             else peers.fista_fit(X, Y, alpha, restart=not args.no_restart))
    fits["numpy FISTA" + ("" if args.no_restart else " +restart")] = (fista, args.eps,
                                                                      dict(tighten=False))
    return fits


def _family(name: str) -> str:
    return name.split()[0].replace("numpy", "FISTA")


def run_entry(args, X, Y, P0, label, state, alpha=None, grid=None):
    """Time every solver on one entry, print its table; returns {solver name: Row}."""
    entry = _Entry(args, X, Y, P0, alpha, grid)
    rows = {}
    sk_path = state["sk_path"] if grid is not None else ()
    fits = _fits(args, X, Y, P0, alpha, grid, sk_path, state["skglm_tol"])
    for name, (fit, tol0, kw) in fits.items():
        if rows:  # a peer: killed past max(--timeout, --timeout-factor x regmtl's time)
            t_ref = float(np.median(rows["regmtl (bcd)"].times))
            limit = max(args.timeout, args.timeout_factor * t_ref)
            rows[name] = entry.run(name, fit, tol0, limit=limit, **kw)
        else:
            rows[name] = entry.run(name, fit, tol0)
    h.print_table(label, list(rows.values()), args.eps, args.repeats, **TABLE)
    sk = rows.get("skglm MultiTaskLasso")
    if sk is not None and sk.reached:  # the next entry on this shape starts one decade looser
        state["skglm_tol"] = min(args.skglm_tol0, 10.0 * sk.tol)
    return rows


def _best_sklearn(rows):
    sk = [r for name, r in rows.items() if name.startswith("sklearn")]
    return min(sk, key=lambda r: (r.over is not None, float(np.median(r.times))))


def run_shape(args, shape, summary, state) -> None:
    n, p, T = shape
    X, Y, _ = shared_regression(n, p, T, n_active=args.n_active, rho=0.5, snr=5.0, seed=0)
    a_max = regmtl.alpha_max(X, Y, penalty="l21")
    a_check = alpha_max_l21([X] * T, [Y[:, t] for t in range(T)], "squared")
    P0 = p0_value(Y, "squared")
    t_xtr = xtr_time(X, T)
    kind = shape_kind(n, p)
    state["skglm_tol"] = args.skglm_tol0
    tag = f"n={n} p={p} T={T} ({kind})"
    print()
    print("#" * 110)
    print(f"Scenario 1 [{tag}]: shared design, squared loss (multi-task lasso), Toeplitz rho=0.5, "
          f"{args.n_active} active rows, SNR=5, intercepts fitted; X is {X.nbytes / 2**20:.0f} MiB")
    print(f"  alpha_max = {a_max:.6g} (regmtl.alpha_max; independent check {a_check:.6g}), "
          f"P0 = {P0:.6g}, eps = {args.eps:g}; one X^T R product (BLAS, median): "
          f"{t_xtr * 1e3:.2f} ms")
    for div in (10.0, 100.0):
        rows = run_entry(args, X, Y, P0, f"-- [{tag}] alpha = alpha_max/{div:g} = "
                         f"{a_max / div:.6g}", state, alpha=a_max / div)
        _add(summary, tag, kind, f"/{div:g}", rows)
        if div == 10.0:
            t_reg = float(np.median(rows["regmtl (bcd)"].times))
            line = (f"[{tag}] regmtl at alpha_max/10 = {t_reg / t_xtr:.1f} X^T R products' "
                    f"worth of time ({t_reg:.3f}s / {t_xtr * 1e3:.2f}ms; target <= 25: "
                    f"{'met' if t_reg <= 25 * t_xtr else 'NOT met'})")
            print(f"  {line}")
            state["xtr"].append(line)
    grid = a_max * np.logspace(0.0, -2.0, args.n_alphas)
    rows = run_entry(args, X, Y, P0, f"-- [{tag}] path: {args.n_alphas} alphas, alpha_max to "
                     "alpha_max/100 (geometric), warm-started; gap = worst over the path",
                     state, grid=grid)
    if len(state["sk_path"]) > 1:  # the first shape times both sklearn variants; keep the faster
        best = _best_sklearn(rows)
        state["sk_path"] = ("enet_path",) if best.name == "sklearn enet_path" else ("loop",)
        times = ", ".join(f"{r.name} {'>' if r.over else ''}{np.median(r.times):.2f}s"
                          for name, r in rows.items() if name.startswith("sklearn"))
        print(f"  sklearn path: '{best.name}' was the faster here ({times}); only it is timed "
              "on the other shapes")
    _add(summary, tag, kind, "path", rows)


def _add(summary, tag, kind, what, rows) -> None:
    ref = rows["regmtl (bcd)"]
    peers_ = {"sklearn": _best_sklearn(rows)}
    for name, r in rows.items():
        if not name.startswith(("regmtl", "sklearn")):
            peers_[_family(name)] = r
    summary.add(kind, f"{tag} {what}", ref, peers_)


def scenario(args, summary) -> None:
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    state = dict(sk_path=("enet_path", "loop"), xtr=[])
    print()
    print("#" * 110)
    print(f"Scenario 1: shared design. tol: regmtl eps; sklearn eps/2 (its gap is n*P-gap vs "
          f"tol*||Yc||^2 = tol*2n*P0); skglm (KKT, not a gap) tol/alpha from {args.skglm_tol0:g} "
          "(or, after a shape's first entry, from 10x the value its previous entry needed) down "
          "10x until reached; FISTA stops on the common gap itself.")
    print(f"  Every peer runs in a forked child killed past max({args.timeout:g}s, "
          f"{args.timeout_factor:g} x regmtl's time on the entry). A killed run is reported as "
          "'> limit' and its ratio as a lower bound (never extrapolated).")
    print("  sklearn path: on the first shape both enet_path (2-D Y, what MultiTaskLassoCV runs) "
          "and a warm-started MultiTaskLasso loop are timed; the faster is kept for the others.")
    for shape in shapes:
        run_shape(args, shape, summary, state)
    for line in state["xtr"]:
        summary.note(line)
