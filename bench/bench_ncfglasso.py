"""Benchmark: the nonconvex fused group lasso (MALSAR's Least_NCFGLassoF1, and F2 with
--form 2) against MALSAR's algorithm as it ships, ported to NumPy.

MALSAR's objective, no intercepts:

    sum_t ||y_t - X_t w_t||^2 / 2 + lambda sum_j sqrt(||W_j||_1) + gamma ||W R||_1,

regmtl's ``NonconvexFusedGroupLasso(fused_weight=gamma / lambda)`` at ``alpha = T lambda / N``,
``task_weight="samples"``, ``fit_intercept=False`` (its objective is T / N times MALSAR's).

Both run the same majorize-minimize algorithm from the same start (the convex relaxation,
``lambda ||W||_1 + gamma ||W R||_1``): stage k minimizes the weighted fused lasso with row weights
``lambda / (2 sqrt(||W^k_j||_1))`` (zero rows held at zero), and the same stopping rule:

  * every stage to a relative duality gap <= tol / 100 (relative to the objective at W = 0;
    the gap of the weighted fused lasso, one NumPy function for both, with regmtl's exact
    dual norm of the stage penalty), checked every 10 iterations for the port;
  * stop when ``||W^{k+1} - W^k||_F <= tol ||W^{k+1}||_F``.

The port (``malsar``): as ``Least_NCFGLassoF1.m`` / ``Least_Weight1FGLasso.m`` ship: each stage
is accelerated proximal gradient from W = 0 (MALSAR's default ``opts.init = 2``), the step found
by doubling gamma from 1 until the quadratic upper bound holds, never shrunk, no restart; the
prox of a row is soft-thresholding of the 1-D TV prox (MALSAR's ``flsa``; here Condat's exact
algorithm, the one regmtl uses, so the prox is no difference between the two). regmtl: each
stage warm-started at the previous one, by its own solver choice (ADMM with exact per-task
solves for the squared loss).

The second form (``--form 2``, ``Least_NCFGLassoF2``): ``lambda sum_j sqrt(||W_j R||_1 + beta
||W_j||_1)``, regmtl's ``NonconvexFusedGroupLasso(1 / beta, fused_in_root=True)`` at
``alpha = T lambda sqrt(beta) / N``; the start is ``Least_FGLasso(lambda beta, lambda)`` and
stage k weighs row j's lasso by ``beta rho_j`` and its fused term by ``rho_j``,
``rho_j = lambda / (2 sqrt(||W^k_j R||_1 + ||W^k_j||_1))`` as MALSAR ships it (beta missing
under the root: the tangent of its objective only at beta = 1, so the bench runs beta = 1,
``--fused`` ignored).

Reported: median wall time of --repeats runs (one BLAS thread: run with OPENBLAS_NUM_THREADS=1),
stages, MALSAR's objective at both results (relative difference), the Clarke KKT residual over
the nonzero rows (regmtl's ``subdiff_distance``, relative to ||G0||) and the supports.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_ncfglasso.py [--quick] [--form 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import regmtl as rm
from regmtl.penalties.nonconvex_fused import WeightedFusedLasso
from regmtl.penalties.temporal import tv_prox


# ----------------------------------------------------------------------------- problems
def progression(T: int, p: int, n: int, seed: int):
    """T time points, per-task Gaussian designs with correlated columns (Toeplitz 0.5), 20
    rows piecewise constant in time with 2 change points each, noise 0.5."""
    rng = np.random.default_rng(seed)
    C = 0.5 ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    Lc = np.linalg.cholesky(C)
    W = np.zeros((p, T))
    for j in range(min(20, p)):
        cuts = np.sort(rng.choice(np.arange(1, T), 2, replace=False))
        levels = rng.standard_normal(3) * 2
        W[j] = np.repeat(levels, np.diff(np.r_[0, cuts, T]))
    Xs, ys = [], []
    for t in range(T):
        X = rng.standard_normal((n, p)) @ Lc.T
        Xs.append(X)
        ys.append(X @ W[:, t] + 0.5 * rng.standard_normal(n))
    return Xs, ys


def school():
    from regmtl.datasets import load_school

    b = load_school()
    return [np.asarray(X, dtype=float) for X in b["X"]], [np.asarray(y, float) for y in b["y"]]


# ----------------------------------------------------------------------------- shared pieces
def objective(Xs, ys, W, lam, gam, form=1):
    """MALSAR's objective; ``gam`` is gamma (form 1) or beta (form 2)."""
    loss = sum(0.5 * float(np.sum((y - X @ W[:, t]) ** 2))
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    tv = np.abs(np.diff(W, axis=1)).sum(axis=1)
    if form == 2:
        return loss + lam * float(np.sqrt(tv + gam * np.abs(W).sum(axis=1)).sum())
    return loss + lam * float(np.sqrt(np.abs(W).sum(axis=1)).sum()) + gam * float(tv.sum())


def neg_grad(Xs, ys, W):
    return np.column_stack([X.T @ (y - X @ W[:, t])
                            for t, (X, y) in enumerate(zip(Xs, ys, strict=True))])


def stage_gap(Xs, ys, W, rho1, gam, P0):
    """The relative duality gap of ``sum_t ||y_t - X_t w_t||^2 / 2 + sum_j rho1_j ||W_j||_1 +
    gam_j ||W_j R||_1`` (``gam`` one number or one per row): the residuals scaled into the
    dual ball (the exact dual norm of the weighted fused lasso, regmtl's
    ``WeightedFusedLasso.dual_norms``)."""
    R = [y - X @ W[:, t] for t, (X, y) in enumerate(zip(Xs, ys, strict=True))]
    G = np.column_stack([X.T @ r for X, r in zip(Xs, R, strict=True)])
    live = np.isfinite(rho1)
    c = np.where(live, rho1, np.inf)
    m = float(WeightedFusedLasso(c, gam).dual_norms(G).max(initial=0.0))  # at alpha = 1
    s = 1.0 if m <= 1.0 else 1.0 / m
    l1 = np.abs(W).sum(axis=1)
    with np.errstate(invalid="ignore"):
        weighted = float(np.sum(np.where(l1 > 0, c * l1, 0.0)))
    primal = sum(0.5 * float(r @ r) for r in R) + weighted + float(np.sum(
        np.where(live, gam, 0.0) * np.abs(np.diff(W, axis=1)).sum(axis=1)))
    dual = sum(s * float(r @ y) - 0.5 * s * s * float(r @ r) for r, y in zip(R, ys,
                                                                             strict=True))
    return (primal - dual) / P0


def weighted_prox(V, a, b):
    """Row j: soft(TV-prox(V_j, b_j), a_j) (``b`` one number or one per row)."""
    if np.ndim(b) == 0:
        U = tv_prox(V, b) if b > 0 else V.copy()
    else:
        U = np.array([tv_prox(v, bj) if bj > 0 and np.isfinite(bj) else v for v, bj in
                      zip(V, b, strict=True)])
    return np.sign(U) * np.maximum(np.abs(U) - a[:, None], 0.0)


# ----------------------------------------------------------------------------- the port
def malsar_stage(Xs, ys, rho1, gam, stage_tol, P0, max_iter=20000):
    """Least_Weight1FGLasso as it ships: APG from W = 0, gamma doubling from 1, no restart;
    returns W, the iterations and whether the stage's gap reached stage_tol."""
    p, T = Xs[0].shape[1], len(Xs)
    Wz = np.zeros((p, T))
    Wz_old = Wz.copy()
    t, t_old, gamma = 1.0, 0.0, 1.0
    a_fin = np.where(np.isfinite(rho1), rho1, np.inf)

    def fval(W):
        return sum(0.5 * float(np.sum((y - X @ W[:, i]) ** 2))
                   for i, (X, y) in enumerate(zip(Xs, ys, strict=True)))

    for it in range(1, max_iter + 1):
        a = (t_old - 1.0) / t
        Ws = (1.0 + a) * Wz - a * Wz_old
        gWs = -neg_grad(Xs, ys, Ws)
        Fs = fval(Ws)
        while True:
            Wzp = weighted_prox(Ws - gWs / gamma, a_fin / gamma, np.asarray(gam) / gamma)
            D = Wzp - Ws
            if fval(Wzp) <= Fs + float(np.sum(D * gWs)) + 0.5 * gamma * float(np.sum(D * D)):
                break
            gamma *= 2.0
        Wz_old, Wz = Wz, Wzp
        if it % 10 == 0 and stage_gap(Xs, ys, Wz, a_fin, gam, P0) <= stage_tol:
            return Wz, it, True
        t_old, t = t, 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
    return Wz, max_iter, False


def malsar_ncfglasso(Xs, ys, lam, gam, tol, max_stages=100, form=1):
    """Least_NCFGLassoF1 (``gam`` = gamma) or, ``form=2``, Least_NCFGLassoF2 (``gam`` =
    beta), as they ship."""
    P0 = sum(0.5 * float(y @ y) for y in ys)
    stage_tol = max(0.01 * tol, 1e-13)
    p = Xs[0].shape[1]
    if form == 2:  # Least_FGLasso(X, Y, lambda * beta, lambda)
        W, its, ok = malsar_stage(Xs, ys, np.full(p, lam * gam), np.full(p, lam), stage_tol, P0)
    else:
        W, its, ok = malsar_stage(Xs, ys, np.full(p, lam), gam, stage_tol, P0)
    short = int(not ok)
    stages = 0
    for stages in range(1, max_stages + 1):  # noqa: B007 - reported
        s = np.abs(W).sum(axis=1)
        if form == 2:  # MALSAR's reweighting: sqrt(||R w||_1 + ||w||_1), beta left out
            s = s + np.abs(np.diff(W, axis=1)).sum(axis=1)
        with np.errstate(divide="ignore"):
            rho = np.where(s > 0, lam / (2.0 * np.sqrt(s)), np.inf)
        if form == 2:
            new, k, ok = malsar_stage(Xs, ys, gam * rho, np.where(np.isfinite(rho), rho, 0.0),
                                      stage_tol, P0)
        else:
            new, k, ok = malsar_stage(Xs, ys, rho, gam, stage_tol, P0)
        its += k
        short += int(not ok)
        done = np.linalg.norm(new - W) <= tol * np.linalg.norm(new)
        W = new
        if done:
            break
    return W, f"{stages}" + (f"({short}!)" if short else ""), its


# ----------------------------------------------------------------------------- regmtl
def penalty_of(lam, gam, form):
    """regmtl's penalty and its alpha in MALSAR's scale (the sum of squared errors)."""
    if form == 2:
        return rm.NonconvexFusedGroupLasso(1.0 / gam, fused_in_root=True), lam * np.sqrt(gam)
    return rm.NonconvexFusedGroupLasso(fused_weight=gam / lam), lam


def regmtl_fit(Xs, ys, lam, gam, tol, form=1):
    T, N = len(Xs), sum(len(y) for y in ys)
    pen, a = penalty_of(lam, gam, form)
    # (the stages share max_iter, as the port's stages share nothing: 20,000 each)
    m = rm.MultiTaskRegressor(pen, alpha=T * a / N, task_weight="samples",
                              fit_intercept=False, tol=tol, max_iter=20_000).fit(Xs, ys)
    return m.coef_.T.copy(), m


def kkt(Xs, ys, W, lam, gam, form=1):
    G = neg_grad(Xs, ys, W)
    G0 = neg_grad(Xs, ys, np.zeros_like(W))
    pen, a = penalty_of(lam, gam, form)
    d = pen.subdiff_distance(W, G, a)
    return float(np.linalg.norm(d)) / float(np.linalg.norm(G0))


def timed(fn, args, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small problem, one divisor")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--fused", type=float, default=0.5, help="gamma / lambda (form 1)")
    ap.add_argument("--form", type=int, choices=(1, 2), default=1,
                    help="1: Least_NCFGLassoF1; 2: Least_NCFGLassoF2 at beta = 1")
    args = ap.parse_args(argv)
    form = args.form
    # warm up numba
    Xs, ys = progression(4, 10, 20, 0)
    regmtl_fit(Xs, ys, 5.0, 2.5, 1e-4)
    if args.quick:
        scenarios = [("progression T=6 p=40 n=40", progression(6, 40, 40, 1))]
        divisors = [10.0]
    else:
        scenarios = [("progression T=10 p=200 n=80", progression(10, 200, 80, 1)),
                     ("School T=139 p=28", school())]
        divisors = [10.0, 50.0]
    what = ("F2, beta = 1" if form == 2 else f"F1, fused = gamma/lambda = {args.fused}")
    print(f"tol={args.tol:g} (stage gaps tol/100), {what}, median of {args.repeats}")
    head = (f"{'problem':30s} {'div':>4s} {'solver':>7s} {'time s':>8s} {'stages':>6s} "
            f"{'its':>6s} {'objective (MALSAR)':>20s} {'rel diff':>9s} {'KKT':>9s} "
            f"{'support':>7s} {'speedup':>7s}")
    print(head)
    print("-" * len(head))
    for label, (Xs, ys) in scenarios:
        T = len(Xs)
        G0 = neg_grad(Xs, ys, np.zeros((Xs[0].shape[1], T)))
        # lambda from alpha_max of the relaxation: max_j N*(G0_j) at fused = gamma / lambda
        # (form 2: the relaxation lambda (beta ||W_j||_1 + TV(W_j)), beta = 1)
        f = 1.0 if form == 2 else args.fused
        lam_max = float(WeightedFusedLasso(np.ones(G0.shape[0]), f).dual_norms(G0).max())
        for div in divisors:
            lam = lam_max / div
            gam = 1.0 if form == 2 else args.fused * lam
            fit = (Xs, ys, lam, gam, args.tol)
            t_r, (W_r, m) = timed(lambda *a: regmtl_fit(*a, form=form), fit, args.repeats)
            t_m, (W_m, stages_m, its_m) = timed(
                lambda *a: malsar_ncfglasso(*a, form=form), fit, args.repeats)
            # (stages "k(s!)": s stages of the port stopped at 20000 iterations, uncertified)
            o_r, o_m = (objective(Xs, ys, W, lam, gam, form) for W in (W_r, W_m))
            rows = [("regmtl", t_r, "-", m.n_iter_, o_r, W_r),
                    ("malsar", t_m, stages_m, its_m, o_m, W_m)]
            for name, t, st, its, o, W in rows:
                diff = (o - min(o_r, o_m)) / abs(min(o_r, o_m))
                speed = f"{t_m / t_r:6.1f}x" if name == "regmtl" else ""
                print(f"{label:30s} {div:4.0f} {name:>7s} {t:8.3f} {st!s:>6s} {its:6d} "
                      f"{o:20.12e} {diff:9.1e} {kkt(Xs, ys, W, lam, gam, form):9.1e} "
                      f"{int(np.any(W != 0, axis=1).sum()):7d} {speed:>7s}")


if __name__ == "__main__":
    main()
