r"""A plain NumPy FISTA for the L2,1 multi-task problem with per-task designs (benchmark peer).

Minimizes sum_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) + alpha sum_j ||W_j||_2 over W (p x T)
and the unpenalized intercepts b (T,): accelerated proximal gradient (Beck & Teboulle 2009) with
group soft-thresholding of the rows of W, the identity prox on b, a constant step 1/L with
L = curvature * max_t lambda_max([X_t, 1]^T [X_t, 1] / n_t) from a power iteration (the data
term's Hessian is block diagonal over tasks), and, unless disabled, gradient-based adaptive
restart of the momentum (O'Donoghue & Candes 2015). It stops when the common duality gap
(:func:`_gap.duality_gap`), checked every ``check_every`` iterations, is <= eps * P0.
"""

from __future__ import annotations

import time

import numpy as np
from _gap import duality_gap, p0_value
from scipy.special import expit

CURVATURE = {"squared": 1.0, "logistic": 0.25}


def lipschitz(Xs, curvature: float, tol: float = 1e-6, max_iter: int = 500, seed: int = 0):
    """curvature * max_t lambda_max of [X_t, 1]^T [X_t, 1] / n_t, by power iteration per task."""
    rng = np.random.default_rng(seed)
    best = 0.0
    for X in Xs:
        n, p = X.shape
        v = rng.standard_normal(p + 1)
        v /= np.linalg.norm(v)
        lam = 0.0
        for _ in range(max_iter):
            u = X @ v[:p] + v[p]
            w = np.empty(p + 1)
            w[:p] = X.T @ u
            w[p] = u.sum()
            w /= n
            lam_new = float(np.linalg.norm(w))
            v = w / lam_new
            if abs(lam_new - lam) <= tol * lam_new:
                lam = lam_new
                break
            lam = lam_new
        best = max(best, lam)
    return curvature * best


def _neg_grad(Xs, ys, W, b, loss):
    """-gradient of the data term in (W, b)."""
    GW = np.empty_like(W)
    Gb = np.empty_like(b)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        u = (y - f) if loss == "squared" else y * expit(-y * f)
        u /= y.size
        GW[:, t] = X.T @ u
        Gb[t] = u.sum()
    return GW, Gb


def _group_prox(V, thr):
    nrm = np.sqrt((V * V).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
    return V * scale[:, None]


def _b0(ys, loss):
    if loss == "squared":
        return np.array([y.mean() for y in ys])
    pos = np.array([np.mean(y > 0) for y in ys])
    return np.log(pos / (1.0 - pos))


def fista_l21(Xs, ys, alpha: float, loss: str = "squared", eps: float = 1e-6,
              max_iter: int = 200_000, max_time: float = np.inf, check_every: int = 10,
              restart: bool = True):
    """Returns dict(W, b, n_iter, rel_gap, converged, time_L)."""
    t_start = time.perf_counter()
    T = len(Xs)
    p = Xs[0].shape[1]
    L = lipschitz(Xs, CURVATURE[loss])
    time_L = time.perf_counter() - t_start
    P0 = p0_value(ys, loss)
    W = np.zeros((p, T))
    b = _b0(ys, loss)
    Z, zb = W.copy(), b.copy()
    tk = 1.0
    rel = np.inf
    it = 0
    converged = False
    for it in range(1, max_iter + 1):
        GW, Gb = _neg_grad(Xs, ys, Z, zb, loss)
        W_new = _group_prox(Z + GW / L, alpha / L)
        b_new = zb + Gb / L
        if restart and (np.vdot(Z - W_new, W_new - W) + np.dot(zb - b_new, b_new - b)) > 0:
            tk = 1.0
            Z, zb = W_new.copy(), b_new.copy()
        else:
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
            mom = (tk - 1.0) / t_next
            Z = W_new + mom * (W_new - W)
            zb = b_new + mom * (b_new - b)
            tk = t_next
        W, b = W_new, b_new
        if it % check_every == 0:
            rel = duality_gap(Xs, ys, W, b, alpha, loss, P0=P0)["rel"]
            if rel <= eps:
                converged = True
                break
            if time.perf_counter() - t_start > max_time:
                break
    return dict(W=W, b=b, n_iter=it, rel_gap=rel, converged=converged, time_L=time_L)


def fista_structured(Xs, ys, pen, alpha: float, cert, loss: str = "squared", eps: float = 1e-6,
                     max_iter: int = 1_000_000, max_time: float = np.inf, check_every: int = 10,
                     restart: bool = True):
    """Plain FISTA for ``datafit + pen`` (a NumPy penalty of bench/_penalties_np.py) over the
    penalty's variable V (W = pen.compose(V)) and the unpenalized intercepts b.

    Step 1/L, L = pen.copies * :func:`lipschitz` (W = P + Q doubles it), no backtracking; adaptive
    restart as in :func:`fista_l21`. Stops when ``cert(V, b)["rel"] <= eps`` (the common
    certificate, checked every ``check_every`` iterations) or after ``max_time`` seconds.
    Returns dict(W, V, b, n_iter, rel, converged, time_L)."""
    t_start = time.perf_counter()
    L = pen.copies * lipschitz(Xs, CURVATURE[loss])
    time_L = time.perf_counter() - t_start
    p, T = Xs[0].shape[1], len(Xs)
    V = pen.lift(np.zeros((p, T)))
    b = _b0(ys, loss)
    Z, zb = V.copy(), b.copy()
    tk = 1.0
    rel = np.inf
    it = 0
    converged = False
    for it in range(1, max_iter + 1):
        GW, Gb = _neg_grad(Xs, ys, pen.compose(Z), zb, loss)
        V_new = pen.prox(Z + pen.spread(GW) / L, 1.0 / L, alpha)
        b_new = zb + Gb / L
        if restart and (np.vdot(Z - V_new, V_new - V) + np.dot(zb - b_new, b_new - b)) > 0:
            tk = 1.0
            Z, zb = V_new.copy(), b_new.copy()
        else:
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
            mom = (tk - 1.0) / t_next
            Z = V_new + mom * (V_new - V)
            zb = b_new + mom * (b_new - b)
            tk = t_next
        V, b = V_new, b_new
        if it % check_every == 0:
            rel = cert(V, b, primal=False)["rel"]
            if rel <= eps:
                converged = True
                break
            if time.perf_counter() - t_start > max_time:
                break
    return dict(W=pen.compose(V), V=V, b=b, n_iter=it, rel=rel, converged=converged,
                time_L=time_L)
