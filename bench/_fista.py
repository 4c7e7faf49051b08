r"""A plain NumPy FISTA for the multi-task problems with per-task designs (benchmark peer).

Minimizes sum_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) + Omega(W) over the penalty's variable V
(W = pen.compose(V)) and the unpenalized intercepts b: accelerated proximal gradient (Beck &
Teboulle 2009) with the identity prox on b, a constant step 1/L with L = pen.copies * curvature *
max_t lambda_max([X_t, 1]^T [X_t, 1] / n_t) from a power iteration (the data term's Hessian is
block diagonal over tasks), and, unless disabled, gradient-based adaptive restart of the momentum
(O'Donoghue & Candes 2015). One loop (:func:`fista`); :func:`fista_l21` (group soft-thresholding,
stops on :func:`_gap.duality_gap`) and :func:`fista_structured` (a penalty of
bench/_penalties_np.py, stops on the common certificate) only choose its prox and certificate;
:func:`fista_l21_path` runs :func:`fista_l21` warm-started along a grid of alphas.

A 2-D array in place of the list of designs is a design shared by all tasks, the targets then an
(n, T) matrix (squared loss): the gradient is then two matrix products (bench/_gap.py).
"""

from __future__ import annotations

import time

import numpy as np
from _gap import duality_gap, neg_gradient, neg_gradient_at, p0_value
from _penalties_np import Plain, group_soft_rows

CURVATURE = {"squared": 1.0, "logistic": 0.25}
_W_IS_V = Plain()


def lipschitz(Xs, curvature: float, tol: float = 1e-6, max_iter: int = 500, seed: int = 0):
    """curvature * max_t lambda_max of [X_t, 1]^T [X_t, 1] / n_t, by power iteration per task."""
    rng = np.random.default_rng(seed)
    best = 0.0
    for X in ([Xs] if isinstance(Xs, np.ndarray) else Xs):
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


def _check(stop, V, b, eps: float, t_start: float, max_time: float):
    """One check of the loops: (certificate, converged, whether to stop)."""
    rel = stop(V, b)
    return rel, rel <= eps, rel <= eps or time.perf_counter() - t_start > max_time


def _b0(ys, loss):
    if isinstance(ys, np.ndarray):  # shared design, squared loss
        return ys.mean(axis=0)
    if loss == "squared":
        return np.array([y.mean() for y in ys])
    pos = np.array([np.mean(y > 0) for y in ys])
    return np.log(pos / (1.0 - pos))


def fista(Xs, ys, prox, stop, loss: str = "squared", pen=_W_IS_V, eps: float = 1e-6,
          max_iter: int = 1_000_000, max_time: float = np.inf, check_every: int = 10,
          restart: bool = True, L: float | None = None, V0=None, b0=None, smooth=None):
    """The loop. ``prox(U, L)``: the penalty's prox at step 1/L; ``stop(V, b)``: the relative
    certificate, checked every ``check_every`` iterations (converged when <= eps); ``pen`` maps V
    to W (lift / compose / spread / copies; default V = W). Also stops after ``max_time`` s.
    ``L`` (the data term's, before ``pen.copies``) skips the power iteration; ``V0``, ``b0``
    warm-start it (default V = 0 and the intercepts fitted at W = 0). ``smooth``: a smooth part
    of the penalty handled as MALSAR does, in the gradient (``(value(W), gradient(W),
    curvature bound)``, added to L); ``prox`` is then the prox of the rest.
    Returns dict(W, V, b, n_iter, rel, converged, time_L)."""
    t_start = time.perf_counter()
    L = pen.copies * (lipschitz(Xs, CURVATURE[loss]) if L is None else L)
    L += 0.0 if smooth is None else smooth[2]
    time_L = time.perf_counter() - t_start
    shared = isinstance(Xs, np.ndarray)
    p, T = Xs.shape[1] if shared else Xs[0].shape[1], ys.shape[1] if shared else len(Xs)
    V = pen.lift(np.zeros((p, T))) if V0 is None else V0.copy()
    b = _b0(ys, loss) if b0 is None else b0.copy()
    Z, zb = V.copy(), b.copy()
    tk = 1.0
    rel = np.inf
    it = 0
    converged = False
    for it in range(1, max_iter + 1):
        GW, Gb = neg_gradient(Xs, ys, pen.compose(Z), zb, loss)
        if smooth is not None:
            GW = GW - smooth[1](pen.compose(Z))
        V_new = prox(Z + pen.spread(GW) / L, L)
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
            rel, converged, done = _check(stop, V, b, eps, t_start, max_time)
            if done:
                break
    return dict(W=pen.compose(V), V=V, b=b, n_iter=it, rel=rel, converged=converged,
                time_L=time_L)


def fista_l21(Xs, ys, alpha: float, loss: str = "squared", eps: float = 1e-6,
              max_iter: int = 200_000, **kw):
    """L2,1: group soft-thresholding of the rows of W; stops on the common duality gap
    (:func:`_gap.duality_gap`) <= eps. ``kw``: max_time, check_every, restart of :func:`fista`."""
    P0 = p0_value(ys, loss)
    return fista(Xs, ys, lambda U, L: group_soft_rows(U, alpha / L),
                 lambda W, b: duality_gap(Xs, ys, W, b, alpha, loss, P0=P0)["rel"],
                 loss=loss, eps=eps, max_iter=max_iter, **kw)


def fista_l21_path(X, Y, alphas, eps: float = 1e-6, max_time: float = np.inf, **kw):
    """:func:`fista_l21` (squared loss) along ``alphas`` (decreasing), each fit warm-started
    from the previous one, one power iteration for all; stops when the whole path has run
    ``max_time`` s. Returns dict(Ws (K x p x T), bs (K x T), n_iter (sum), converged (all),
    time_L)."""
    t_start = time.perf_counter()
    L = lipschitz(X, CURVATURE["squared"])
    time_L = time.perf_counter() - t_start
    Ws, bs, n_iter, W, b, r = [], [], 0, None, None, dict(converged=True)
    for alpha in alphas:
        left = max_time - (time.perf_counter() - t_start)
        r = fista_l21(X, Y, float(alpha), eps=eps, max_time=left, L=L, V0=W, b0=b, **kw)
        W, b, n_iter = r["W"], r["b"], n_iter + r["n_iter"]
        Ws.append(W)
        bs.append(b)
        if not r["converged"]:
            break
    return dict(Ws=np.array(Ws), bs=np.array(bs), n_iter=n_iter, converged=r["converged"],
                time_L=time_L)


def fista_structured(Xs, ys, pen, alpha: float, cert, loss: str = "squared", eps: float = 1e-6,
                     max_iter: int = 1_000_000, **kw):
    """``datafit + pen`` (a NumPy penalty of bench/_penalties_np.py; W = P + Q doubles L); stops
    when ``cert(V, b)["rel"] <= eps`` (the common certificate). ``kw`` as in :func:`fista_l21`."""
    smooth = pen.smooth(alpha) if hasattr(pen, "smooth") else None  # MALSAR's TGL split
    return fista(Xs, ys, lambda U, L: pen.prox(U, 1.0 / L, alpha),
                 lambda V, b: cert(V, b, primal=False)["rel"],
                 loss=loss, pen=pen, eps=eps, max_iter=max_iter, smooth=smooth, **kw)


def _scores(Xs, V, b, pen):
    """The per-task scores ``X_t w_t + b_t`` of (V, b) (lists)."""
    W = pen.compose(V)
    return [X @ W[:, t] + b[t] for t, X in enumerate(Xs)]


def _data_value(fs, ys, loss: str) -> float:
    """sum_t (1/n_t) sum_i l(y_ti, f_ti) at the scores ``fs``."""
    if loss == "squared":
        return sum(0.5 * float((y - f) @ (y - f)) / y.size for f, y in zip(fs, ys, strict=True))
    return sum(float(np.logaddexp(0.0, -y * f).sum()) / y.size
               for f, y in zip(fs, ys, strict=True))


def apg_backtracking(Xs, ys, pen, alpha: float, cert, loss: str = "squared", eps: float = 1e-6,
                     max_iter: int = 1_000_000, max_time: float = np.inf,
                     check_every: int = 10):
    """MALSAR's algorithm (Zhou, Chen & Ye 2012, e.g. ``Least_Trace.m``, ``Logistic_Trace.m``):
    accelerated proximal gradient on (V, b) with a backtracking search on the step: ``gamma``
    starts at 1 and doubles until ``F(V+) <= F(S) + <grad, V+ - S> + gamma/2 ||V+ - S||^2`` at
    the search point S, never decreases, and the momentum is never restarted. Written without
    MALSAR's waste: the search point's scores are the same combination of the last two
    iterates' scores (no product), so an iteration costs one gradient product and one score
    product per trial step. Stops when ``cert(V, b)["rel"] <= eps``, checked every
    ``check_every`` iterations, or after ``max_time`` s. Per-task lists only (the structured
    scenarios). A penalty with a smooth part (``pen.smooth(alpha)``: MALSAR's TGL) has it in
    the objective and the gradient of the search, its ``prox`` being that of the rest. Returns
    dict as :func:`fista`, with ``gamma`` the final step's curvature."""
    t_start = time.perf_counter()
    smooth = pen.smooth(alpha) if hasattr(pen, "smooth") else None

    def smooth_value(V):
        return 0.0 if smooth is None else smooth[0](pen.compose(V))

    p, T = Xs[0].shape[1], len(Xs)
    V = pen.lift(np.zeros((p, T)))
    b = _b0(ys, loss)
    fs = _scores(Xs, V, b, pen)
    V_old, b_old, fs_old = V.copy(), b.copy(), fs
    t, t_old, gamma = 1.0, 0.0, 1.0
    rel, it, converged = np.inf, 0, False
    for it in range(1, max_iter + 1):
        a = (t_old - 1.0) / t
        S, sb = (1.0 + a) * V - a * V_old, (1.0 + a) * b - a * b_old
        fS = [(1.0 + a) * f - a * g for f, g in zip(fs, fs_old, strict=True)]
        GW, Gb = neg_gradient_at(Xs, ys, fS, loss)
        if smooth is not None:  # MALSAR's TGL: the quadratic part with the data term
            GW = GW - smooth[1](pen.compose(S))
        GS = pen.spread(GW)
        FS = _data_value(fS, ys, loss) + smooth_value(S)
        while True:
            V_new = pen.prox(S + GS / gamma, 1.0 / gamma, alpha)
            b_new = sb + Gb / gamma
            f_new = _scores(Xs, V_new, b_new, pen)
            dV, db = V_new - S, b_new - sb
            r_sum = float(np.vdot(dV, dV) + db @ db)
            bound = FS - float(np.vdot(dV, GS) + db @ Gb) + 0.5 * gamma * r_sum
            if r_sum <= 1e-20 or _data_value(f_new, ys, loss) + smooth_value(V_new) <= bound:
                break
            gamma *= 2.0
        V_old, b_old, fs_old = V, b, fs
        V, b, fs = V_new, b_new, f_new
        t_old, t = t, 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        if it % check_every == 0:
            rel, converged, done = _check(lambda V, b: cert(V, b, primal=False)["rel"], V, b,
                                          eps, t_start, max_time)
            if done:
                break
    return dict(W=pen.compose(V), V=V, b=b, n_iter=it, rel=rel, converged=converged,
                time_L=0.0, gamma=gamma)
