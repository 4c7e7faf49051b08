"""The shared-design L2,1 solvers of the benchmark, each as ``fit(tol) -> (W, b, n_iter, own)``.

One alpha: W is p x T, b has T entries. A path (``grid``, decreasing, each fit warm-started from
the previous one): W is K x p x T, b is K x T, n_iter the sum over the grid. ``own`` is the
solver's own stopping value. What ``tol`` means for each solver (and how it is matched to the
common gap) is in bench/bench_l21.py's docstring; skglm's tol is passed relative to alpha.
"""

from __future__ import annotations

import numpy as np
from _fista import fista_l21, fista_l21_path
from _isolate import OverBudget
from sklearn.linear_model import MultiTaskLasso, enet_path

import regmtl

try:
    from skglm import MultiTaskLasso as SkglmMultiTaskLasso
except ImportError:  # optional peer
    SkglmMultiTaskLasso = None


# ----------------------------------------------------------------------------- regmtl
def regmtl_fit(X, Y, alpha, P0, max_iter, options=None):
    def fit(tol):
        m = regmtl.MultiTaskRegressor(penalty="l21", alpha=alpha, tol=tol, max_iter=max_iter,
                                      solver_options=options).fit(X, Y)
        return m.coef_.T, m.intercept_, m.n_iter_, f"dual_gap_/P0 = {m.dual_gap_ / P0:.2e}"
    return fit


def regmtl_path(X, Y, grid, max_iter, options=None):
    def fit(tol):
        path = regmtl.regularization_path(X, Y, penalty="l21", alphas=grid, tol=tol,
                                          max_iter=max_iter, solver_options=options)
        return (path.coefs.transpose(0, 2, 1), path.intercepts, int(path.n_iter.sum()),
                f"max certificate {path.certificates.max():.2e}; "
                f"{int(path.converged.sum())}/{len(grid)} converged")
    return fit


# ----------------------------------------------------------------------------- scikit-learn
def sklearn_fit(X, Y, alpha, P0, max_iter):
    def fit(tol):
        m = MultiTaskLasso(alpha=alpha, tol=tol, max_iter=max_iter).fit(X, Y)
        return m.coef_.T, m.intercept_, m.n_iter_, f"dual_gap_/P0 = {m.dual_gap_ / P0:.2e}"
    return fit


def sklearn_path_loop(X, Y, grid, max_iter):
    """``MultiTaskLasso(warm_start=True)`` refitted along the grid."""
    def fit(tol):
        m = MultiTaskLasso(alpha=grid[0], tol=tol, max_iter=max_iter, warm_start=True)
        Ws, bs, n_iter = [], [], 0
        for alpha in grid:
            m.set_params(alpha=alpha).fit(X, Y)
            Ws.append(m.coef_.T.copy())
            bs.append(m.intercept_.copy())
            n_iter += m.n_iter_
        return np.array(Ws), np.array(bs), n_iter, "warm-started MultiTaskLasso loop"
    return fit


def sklearn_enet_path(X, Y, grid, max_iter):
    """``enet_path`` (l1_ratio=1) with 2-D Y on the centered data, what MultiTaskLassoCV runs
    (centering, done once for the path, is timed too)."""
    def fit(tol):
        xm, ym = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = np.asfortranarray(X - xm), np.asfortranarray(Y - ym)
        _, coefs, gaps, n_iters = enet_path(Xc, Yc, l1_ratio=1.0, alphas=grid, tol=tol,
                                            max_iter=max_iter, return_n_iter=True)
        Ws = coefs.transpose(2, 1, 0)  # (T, p, K) -> (K, p, T)
        return (Ws, ym - np.einsum("j,kjt->kt", xm, Ws), int(np.sum(n_iters)),
                "enet_path(l1_ratio=1) on centered data")
    return fit


# ----------------------------------------------------------------------------- skglm
def _skglm(alpha, tol_rel, max_iter, warm_start=False):
    return SkglmMultiTaskLasso(alpha=alpha, tol=tol_rel * alpha, max_iter=1000,
                               max_epochs=max_iter, warm_start=warm_start)


def skglm_fit(X, Y, alpha, max_iter):
    def fit(tol_rel):
        m = _skglm(alpha, tol_rel, max_iter).fit(X, Y)
        return (m.coef_.T, m.intercept_, m.n_iter_,
                f"KKT violation {m.stopping_crit:.2e}; n_iter = working-set rounds")
    return fit


def skglm_path(X, Y, grid, max_iter):
    """A warm-started loop. skglm 0.5 returns intercepts 0 when it returns W = 0 (seen at
    alpha_max, the first point): there the intercepts are set to the column means of Y (the
    intercepts at W = 0), and ``own`` says how often."""
    def fit(tol_rel):
        m = _skglm(grid[0], tol_rel, max_iter, warm_start=True)
        Ws, bs, n_iter, fixed = [], [], 0, 0
        for alpha in grid:
            m.set_params(alpha=alpha, tol=tol_rel * alpha).fit(X, Y)
            b = np.array(m.intercept_, dtype=float)
            if not m.coef_.any() and not b.any():
                b, fixed = Y.mean(axis=0), fixed + 1
            Ws.append(m.coef_.T.copy())
            bs.append(b)
            n_iter += m.n_iter_
        return (np.array(Ws), np.array(bs), n_iter, "warm-started loop; n_iter = ws rounds"
                + (f"; intercepts set to mean(Y) at W = 0 on {fixed} point(s)" if fixed else ""))
    return fit


# ----------------------------------------------------------------------------- NumPy FISTA
def _capped(r, max_time):
    """A FISTA run stopped by its own time cap is over budget (its time is a lower bound)."""
    if not r["converged"] and np.isfinite(max_time):
        raise OverBudget(max_time)


def fista_fit(X, Y, alpha, max_time=np.inf, restart=True):
    """Stops on the common gap itself; raises OverBudget past ``max_time`` s (default: no cap of
    its own, the suite runs it in a child killed at its time limit)."""
    def fit(tol):
        r = fista_l21(X, Y, alpha, eps=tol, max_time=max_time, restart=restart)
        _capped(r, max_time)
        return r["W"], r["b"], r["n_iter"], (f"common gap {r['rel']:.2e}; power iteration "
                                             f"{r['time_L']:.2f}s")
    return fit


def fista_path(X, Y, grid, max_time=np.inf, restart=True):
    def fit(tol):
        r = fista_l21_path(X, Y, grid, eps=tol, max_time=max_time, restart=restart)
        _capped(r, max_time)
        return r["Ws"], r["bs"], r["n_iter"], f"power iteration {r['time_L']:.2f}s"
    return fit
