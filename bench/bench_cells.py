"""Benchmark: every loss under every convex penalty family, regmtl against the best outside
route, on one real set and one synthetic shape (the cell table of the Benchmarks page).

Cells: the losses squared, logistic, Poisson, Gamma, Huber and quantile (the pinball loss at
0.5) x the penalties L1, L2,1, its elastic net (``L21(l1_ratio=0.5)``), trace, mean
(``MeanRegularized()``) and L1,inf, at ``alpha_max / 10`` (mean: ``alpha = 0.1``).
Sets: School's first 40 schools (4,394 students, 28 columns with one-hot year and band
columns; logistic: above the school's median score, Poisson: the score as a count, Gamma: the
score) and a synthetic shape (8 tasks of 60 to 400 rows, 15 features, heavy-tailed noise).

Peers: cvxpy/Clarabel on every cell (a generic interior-point cone solver: the one outside
route that covers every cell; its time is cvxpy's whole solve, the form built and solved, at
1e-8 on its gap and feasibility), and where one exists a per-task loop of scikit-learn
(``Lasso`` for squared + L1, ``LogisticRegression(penalty="l1", solver="saga")`` for
logistic + L1, ``QuantileRegressor(solver="highs")`` for quantile + L1; the same objective per
task). Every result is evaluated by one NumPy objective written out here and compared with
the lowest any route reached, relative to the objective at W = 0:
``excess = (P - P_best) / P0``; a route whose excess is above 10 eps is marked ``(off)`` and
its ratio is not drawn. regmtl runs at ``tol = eps`` and its default ``max_iter`` (a cell that
stops short shows as off). Times are medians of ``--repeats`` runs
(one run where a fit takes over 5 s), one BLAS thread. The ratio is the fastest peer's time
over regmtl's (above 1: regmtl faster).

Run:  python bench/bench_cells.py [--eps 1e-6] [--repeats 3] [--sets school synthetic]
      [--losses ...] [--penalties ...] [--record bench/results/cells.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _record  # noqa: E402
import numpy as np  # noqa: E402

import regmtl as rm  # noqa: E402

LOSSES = ("squared", "logistic", "poisson", "gamma", "huber", "quantile")
PENALTIES = ("l1", "l21", "elastic", "trace", "mean", "l1inf")
TAU, DELTA = 0.5, 1.35  # the quantile level; Huber's threshold (fixed: Huber() reads its own)


def penalty_of(name: str):
    return {"l1": rm.L1(), "l21": rm.L21(), "elastic": rm.L21(l1_ratio=0.5),
            "trace": rm.Trace(), "mean": rm.MeanRegularized(), "l1inf": rm.LInf1()}[name]


def loss_of(name: str):
    return {"huber": rm.Huber(DELTA), "quantile": rm.Quantile(TAU)}.get(name, name)


# ----------------------------------------------------------------------------- the sets
def school_set(loss: str):
    from regmtl.datasets import load_school

    s = load_school()
    Xs = [np.asarray(X, float) for X in s.X[:40]]
    ys = [np.asarray(y, float) for y in s.y[:40]]
    return Xs, _targets(loss, ys)


def synthetic_set(loss: str):
    rng = np.random.default_rng(0)
    sizes, p = (60, 90, 120, 160, 200, 260, 320, 400), 15
    W = np.zeros((p, len(sizes)))
    W[:6] = rng.standard_normal((6, 1)) + 0.4 * rng.standard_normal((6, len(sizes)))
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    f = [X @ W[:, t] for t, X in enumerate(Xs)]
    if loss == "logistic":
        return Xs, [(rng.random(len(v)) < 1 / (1 + np.exp(-v))).astype(float) for v in f]
    if loss == "poisson":
        return Xs, [rng.poisson(np.exp(0.3 * v)).astype(float) for v in f]
    if loss == "gamma":
        return Xs, [rng.gamma(2.0, np.exp(0.3 * v) / 2.0) + 1e-3 for v in f]
    return Xs, [v + rng.standard_t(3, len(v)) for v in f]


def _targets(loss, ys):
    if loss == "logistic":
        return [(y > np.median(y)).astype(float) for y in ys]
    if loss in ("poisson", "gamma"):
        return [np.maximum(np.round(y), 1.0) for y in ys]
    return ys


# ----------------------------------------------------------------------------- the objective
def loss_terms(loss, y, f):
    if loss == "squared":
        return 0.5 * (y - f) ** 2
    if loss == "logistic":
        s = 2 * y - 1
        return np.logaddexp(0.0, -s * f)
    if loss == "poisson":
        return np.exp(f) - y * f
    if loss == "gamma":
        return y * np.exp(-f) + f
    r = y - f
    if loss == "huber":
        a = np.abs(r)
        return np.where(a <= DELTA, 0.5 * r * r, DELTA * a - 0.5 * DELTA ** 2)
    return np.maximum(TAU * r, (TAU - 1) * r)


def omega(pen, W):
    if pen == "l1":
        return float(np.abs(W).sum())
    if pen == "l21":
        return float(np.linalg.norm(W, axis=1).sum())
    if pen == "elastic":
        return 0.5 * float(np.linalg.norm(W, axis=1).sum()) + 0.25 * float(np.sum(W * W))
    if pen == "trace":
        return float(np.linalg.svd(W, compute_uv=False).sum())
    if pen == "mean":
        return 0.5 * float(np.sum((W - W.mean(axis=1, keepdims=True)) ** 2))
    return float(np.abs(W).max(axis=1).sum())


def objective(loss, pen, Xs, ys, W, b, alpha):
    data = sum(float(loss_terms(loss, y, X @ W[:, t] + b[t]).mean())
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    return data + alpha * omega(pen, W)


# ----------------------------------------------------------------------------- the routes
def fit_regmtl(loss, pen, Xs, ys, alpha, eps):
    est = rm.MultiTaskClassifier if loss == "logistic" else rm.MultiTaskRegressor
    kw = {} if loss == "logistic" else {"loss": loss_of(loss)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = est(penalty_of(pen), alpha=alpha, tol=eps, **kw).fit(Xs, ys)  # (max_iter 1000)
    return m.coef_matrix_, np.asarray(m.intercept_, float).reshape(-1)


def fit_clarabel(loss, pen, Xs, ys, alpha):
    import cvxpy as cp

    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            e = 0.5 * cp.sum_squares(y - f)
        elif loss == "logistic":
            e = cp.sum(cp.logistic(-cp.multiply(2 * y - 1, f)))
        elif loss == "poisson":
            e = cp.sum(cp.exp(f) - cp.multiply(y, f))
        elif loss == "gamma":
            e = cp.sum(cp.multiply(y, cp.exp(-f)) + f)
        elif loss == "huber":
            e = 0.5 * cp.sum(cp.huber(y - f, DELTA))
        else:
            r = y - f
            e = cp.sum(cp.maximum(TAU * r, (TAU - 1) * r))
        terms.append(e / len(y))
    reg = {"l1": lambda: cp.sum(cp.abs(W)),
           "l21": lambda: cp.sum(cp.norm(W, 2, axis=1)),
           "elastic": lambda: 0.5 * cp.sum(cp.norm(W, 2, axis=1)) + 0.25 * cp.sum_squares(W),
           "trace": lambda: cp.normNuc(W),
           "mean": lambda: 0.5 * cp.sum_squares(W - cp.sum(W, axis=1, keepdims=True) / T),
           "l1inf": lambda: cp.sum(cp.max(cp.abs(W), axis=1))}[pen]()
    prob = cp.Problem(cp.Minimize(sum(terms) + alpha * reg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL", tol_gap_abs=1e-8, tol_gap_rel=1e-8, tol_feas=1e-8,
                   max_iter=500)
    if W.value is None:
        raise RuntimeError(prob.status)
    return W.value, b.value


def fit_sklearn(loss, pen, Xs, ys, alpha):
    """A per-task loop of scikit-learn's estimator for the cell, or None (no such route)."""
    if pen != "l1" or loss not in ("squared", "logistic", "quantile"):
        return None
    from sklearn.linear_model import Lasso, LogisticRegression, QuantileRegressor

    W, b = np.zeros((Xs[0].shape[1], len(Xs))), np.zeros(len(Xs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
            if loss == "squared":
                m = Lasso(alpha=alpha, tol=1e-10, max_iter=100_000).fit(X, y)
            elif loss == "logistic":
                m = LogisticRegression(penalty="l1", C=1.0 / (alpha * len(y)), solver="saga",
                                       tol=1e-10, max_iter=100_000).fit(X, y)
            else:
                m = QuantileRegressor(quantile=TAU, alpha=alpha, solver="highs").fit(X, y)
            W[:, t] = np.ravel(m.coef_)
            b[t] = float(np.ravel(m.intercept_)[0])
    return W, b


def _timed(fn, args, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
        if times[-1] > 5.0:
            break
    return float(np.median(times)), out


# ----------------------------------------------------------------------------- main
def run_cell(set_name, loss, pen, eps, repeats):
    Xs, ys = (school_set if set_name == "school" else synthetic_set)(loss)
    P = penalty_of(pen)
    if pen == "mean":
        alpha = 0.1
    else:
        kw = {} if loss == "logistic" else {"loss": loss_of(loss)}
        alpha = 0.1 * rm.alpha_max(Xs, ys, penalty=P, **kw)
    p, T = Xs[0].shape[1], len(Xs)
    # P0: the objective at W = 0 with each task's best intercept (regmtl's certificate scale)
    W0, b0 = fit_regmtl(loss, pen, Xs, ys, 1e6 * max(alpha, 1e-12), 1e-10)
    P0 = objective(loss, pen, Xs, ys, np.zeros((p, T)), b0, alpha)
    routes = {"regmtl": (fit_regmtl, (loss, pen, Xs, ys, alpha, eps))}
    routes["Clarabel"] = (fit_clarabel, (loss, pen, Xs, ys, alpha))
    if fit_sklearn(loss, pen, Xs[:1], ys[:1], alpha) is not None:
        routes["sklearn"] = (fit_sklearn, (loss, pen, Xs, ys, alpha))
    out = {}
    for name, (fn, args) in routes.items():
        try:
            t, (W, b) = _timed(fn, args, repeats)
            out[name] = {"time": t, "objective": objective(loss, pen, Xs, ys, W, b, alpha)}
        except Exception as exc:  # a peer that fails is reported, not fatal
            out[name] = {"time": None, "objective": None, "error": str(exc)[:80]}
    best = min(v["objective"] for v in out.values() if v["objective"] is not None)
    for v in out.values():
        if v["objective"] is not None:
            v["excess"] = (v["objective"] - best) / P0
            v["off"] = v["excess"] > 10 * eps
    return dict(set=set_name, loss=loss, penalty=pen, alpha=alpha, routes=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sets", nargs="+", default=["school", "synthetic"],
                    choices=["school", "synthetic"])
    ap.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    ap.add_argument("--penalties", nargs="+", default=list(PENALTIES), choices=PENALTIES)
    _record.add_option(ap)
    args = ap.parse_args(argv)
    fit_regmtl("squared", "l21", *synthetic_set("squared"), 0.1, 1e-4)  # (imports, kernels)
    print(f"bench_cells: eps {args.eps:g}, medians of {args.repeats}, one BLAS thread, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'set':<10}{'loss':<10}{'penalty':<9}{'regmtl s':>10}{'excess':>9}"
          f"{'Clarabel s':>12}{'excess':>9}{'sklearn s':>11}{'ratio':>9}")
    cells = []
    for set_name in args.sets:
        for loss in args.losses:
            for pen in args.penalties:
                cell = run_cell(set_name, loss, pen, args.eps, args.repeats)
                cells.append(cell)
                r = cell["routes"]
                peers = [v["time"] for k, v in r.items()
                         if k != "regmtl" and v.get("time") and not v.get("off")]
                mine = r["regmtl"]
                ratio = (min(peers) / mine["time"]) if peers and mine.get("time") else None
                cell["ratio"] = None if mine.get("off") else ratio

                def show(v, w=10):
                    if v.get("time") is None:
                        return f"{'failed':>{w}}"
                    return f"{v['time']:>{w}.3f}" + ("*" if v.get("off") else "")
                sk = r.get("sklearn")
                print(f"{set_name:<10}{loss:<10}{pen:<9}{show(mine)}"
                      f"{mine.get('excess', float('nan')):>9.1e}{show(r['Clarabel'], 12)}"
                      f"{r['Clarabel'].get('excess', float('nan')):>9.1e}"
                      f"{show(sk, 11) if sk else '-':>11}"
                      f"{(f'{ratio:.1f}x' if cell['ratio'] else '-'):>9}", flush=True)
    print("(*: off the best objective by more than 10 eps; its ratio is not drawn)")
    _record.write(args.record, "cells", {"eps": args.eps, "cells": cells})
    return 0


if __name__ == "__main__":
    sys.exit(main())
