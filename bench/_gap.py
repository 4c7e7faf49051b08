r"""One common, independent duality gap for every solver in the L2,1 benchmark (plain NumPy).

Problem (regmtl's convention, design.rst section 4, equal task weights, intercepts fitted)::

    P(W, b) = sum_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) + alpha sum_j ||W_j||_2

with l the squared loss (y - f)^2 / 2 or the logistic loss log(1 + exp(-y f)), y in {-1, +1}.
Its Fenchel dual, over theta (one entry per observation) with sum_i theta_ti = 0 for every task
(intercepts) and max_j ||G_j||_2 <= alpha where G[:, t] = X_t^T theta_t / n_t::

    D(theta) = sum_t (1/n_t) sum_i -l*(-theta_ti)
             = sum_t (1/n_t) sum_i (theta y - theta^2 / 2)                 (squared)
             = -sum_t (1/n_t) sum_i (a log a + (1 - a) log(1 - a)),  a = y theta in [0, 1]
                                                                            (logistic)

Dual point: the negative loss derivative at the returned scores (the residual, or
y sigmoid(-y f)), centered per task; for the logistic loss, if centering pushed some a outside
[0, 1], it is mixed with the (centered, interior) dual point at W = 0 just enough to return;
finally it is scaled by min(1, alpha / max_j ||G_j||) into the dual-norm ball. Every step keeps the
point feasible, so P - D is a valid bound on P(W, b) - P*.

The relative gap is (P - D) / P0 with P0 = P(0, b0), the objective at W = 0 with intercepts
fitted: ||Y - Ybar||_F^2 / (2n) for a shared design, sum_t of the binary entropy of task t's
class balance for the logistic loss.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, xlogy


def _entropy(a: np.ndarray) -> np.ndarray:
    return -(xlogy(a, a) + xlogy(1.0 - a, 1.0 - a))


def task_targets(ys) -> list:
    """The per-task targets: ``ys`` itself (a list), or the columns of an (n, T) matrix (a
    shared design)."""
    return [ys[:, t] for t in range(ys.shape[1])] if isinstance(ys, np.ndarray) else list(ys)


def p0_value(ys, loss: str) -> float:
    """Objective at W = 0 with intercepts fitted (per-task targets, see :func:`task_targets`)."""
    total = 0.0
    for y in task_targets(ys):
        if loss == "squared":
            r = y - y.mean()
            total += 0.5 * float(r @ r) / y.size
        else:
            total += float(_entropy(np.array([np.mean(y > 0)]))[0])
    return total


def g0_matrix(Xs, ys, loss: str) -> np.ndarray:
    """The negative gradient in W at W = 0 with intercepts fitted (its Frobenius norm scales the
    KKT residual; its dual norm is alpha_max)."""
    G = np.empty((Xs[0].shape[1], len(Xs)))
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        if loss == "squared":
            th = y - y.mean()
        else:
            th = y * (1.0 - np.where(y > 0, np.mean(y > 0), np.mean(y < 0)))
        G[:, t] = X.T @ th / y.size
    return G


def alpha_max_l21(Xs, ys, loss: str) -> float:
    """max_j ||G0_j||_2 at W = 0 with intercepts fitted (lists)."""
    G = g0_matrix(Xs, ys, loss)
    return float(np.sqrt((G * G).sum(axis=1)).max())


def _logistic_feasible(y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Centered theta of one task -> a centered point with a = y theta in [0, 1]."""
    a = y * theta
    if a.min() >= 0.0 and a.max() <= 1.0:
        return theta
    pos = np.mean(y > 0)
    a0 = np.where(y > 0, 1.0 - pos, pos)  # interior point at W = 0 (centered: sum y a0 = 0)
    s = 0.0
    low = a < 0.0
    if low.any():
        s = max(s, float(np.max(-a[low] / (a0[low] - a[low]))))
    high = a > 1.0
    if high.any():
        s = max(s, float(np.max((a[high] - 1.0) / (a[high] - a0[high]))))
    s = min(1.0, s * (1.0 + 1e-12))
    a = np.clip((1.0 - s) * a + s * a0, 0.0, 1.0)
    return y * a


def _fit_and_dual(Xs, ys, W: np.ndarray, b: np.ndarray, loss: str):
    """(data term, per-task dual points theta_t, G with G[:, t] = X_t^T theta_t / n_t) at the
    scores of (W, b) (lists): theta_t the negative loss derivative, centered, and for the logistic
    loss pulled back into a = y theta in [0, 1] (:func:`_logistic_feasible`)."""
    datafit = 0.0
    thetas = []
    G = np.empty((W.shape[0], W.shape[1]))
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            r = y - f
            datafit += 0.5 * float(r @ r) / y.size
            th = r - r.mean()
        else:
            datafit += float(np.logaddexp(0.0, -y * f).sum()) / y.size
            th = y * expit(-y * f)
            th = _logistic_feasible(y, th - th.mean())
        thetas.append(th)
        G[:, t] = X.T @ th / y.size
    return datafit, thetas, G


def _dual_value(thetas, ys, s: float, loss: str) -> float:
    """sum_t (1/n_t) sum_i -l*(-s theta_ti)."""
    dual = 0.0
    for th, y in zip(thetas, ys, strict=True):
        th = s * th
        if loss == "squared":
            dual += float(th @ (y - 0.5 * th)) / y.size
        else:
            dual += float(_entropy(y * th).sum()) / y.size
    return dual


def duality_gap(Xs, ys, W: np.ndarray, b: np.ndarray, alpha: float, loss: str = "squared",
                P0: float | None = None) -> dict:
    """Gap of (W, b) (W is p x T, b is (T,)). ``Xs`` is a list of per-task designs, or a single
    2-D array shared by all tasks with ``ys`` then an (n, T) matrix.

    Returns dict(gap, rel, primal, dual, P0)."""
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if isinstance(Xs, np.ndarray):  # shared design: vectorized
        X, Y = Xs, np.asarray(ys)
        n = X.shape[0]
        F = X @ W + b
        if loss != "squared":
            raise ValueError("shared design: squared loss only here")
        R = Y - F
        datafit = 0.5 * float(np.vdot(R, R)) / n
        Theta = R - R.mean(axis=0)
        G = X.T @ Theta / n
        dn = float(np.sqrt((G * G).sum(axis=1)).max())
        s = 1.0 if dn <= alpha else alpha / dn
        Theta *= s
        dual = float(np.vdot(Theta, Y - 0.5 * Theta)) / n
    else:
        datafit, thetas, G = _fit_and_dual(Xs, ys, W, b, loss)
        dn = float(np.sqrt((G * G).sum(axis=1)).max())
        dual = _dual_value(thetas, ys, 1.0 if dn <= alpha else alpha / dn, loss)
    primal = datafit + alpha * float(np.sqrt((W * W).sum(axis=1)).sum())
    if P0 is None:
        P0 = p0_value(ys, loss)
    gap = max(primal - dual, 0.0)
    return dict(gap=gap, rel=gap / P0, primal=primal, dual=dual, P0=P0)


def path_gap(Xs, ys, Ws: np.ndarray, bs: np.ndarray, alphas, loss: str = "squared",
             P0: float | None = None) -> dict:
    """The worst :func:`duality_gap` along a path: ``Ws[k]`` (p x T) and ``bs[k]`` solve the
    problem at ``alphas[k]``. Returns the worst point's dict with ``at`` = its index k."""
    worst = None
    for k, alpha in enumerate(alphas):
        c = duality_gap(Xs, ys, Ws[k], bs[k], float(alpha), loss, P0=P0)
        if worst is None or c["rel"] > worst["rel"]:
            worst = dict(c, at=k)
    return worst


# ----------------------------------------------------------------------------- structured penalties
# The common certificate of bench/bench_structured.py: a duality gap where the penalty has a
# tractable conjugate (Trace, Dirty, SparseLowRank, MeanReg with ridge > 0), else the relative
# proximal-gradient residual at ONE fixed L for every solver. ``pen`` is a NumPy penalty of
# bench/_penalties_np.py, ``V`` its variable (W, or the stacked (P, Q) of the decompositions).
def neg_gradient(Xs, ys, W: np.ndarray, b: np.ndarray, loss: str):
    """(G, u_sums): G[:, t] = X_t^T u_t with u_t = -l'(f_t) / n_t (the negative gradient of the
    data term in W) and the per-task sums of u_t (the negative gradient in b). A 2-D array
    ``Xs`` is a design shared by all tasks, ``ys`` then (n, T) (squared loss, vectorized)."""
    if isinstance(Xs, np.ndarray):
        if loss != "squared":
            raise ValueError("shared design: squared loss only here")
        U = (ys - Xs @ W - b) / Xs.shape[0]
        return Xs.T @ U, U.sum(axis=0)
    return neg_gradient_at(Xs, ys, [X @ W[:, t] + b[t] for t, X in enumerate(Xs)], loss)


def neg_gradient_at(Xs, ys, fs, loss: str):
    """:func:`neg_gradient` (lists) from the per-task scores ``fs`` already at hand."""
    G = np.empty((Xs[0].shape[1], len(Xs)))
    sums = np.empty(len(Xs))
    for t, (X, y, f) in enumerate(zip(Xs, ys, fs, strict=True)):
        u = (y - f) if loss == "squared" else y * expit(-y * f)
        u = u / y.size
        G[:, t] = X.T @ u
        sums[t] = u.sum()
    return G, sums


def structured_gap(Xs, ys, pen, V: np.ndarray, b: np.ndarray, alpha: float, loss: str,
                   P0: float) -> dict:
    """Duality gap of (V, b) for ``datafit + pen`` (lists of per-task designs).

    Dual point: the negative loss derivative at the scores of W = pen.compose(V), centered per
    task (and, for the logistic loss, pulled back into [0, 1] as in :func:`duality_gap`), scaled
    by ``pen.dual_scaling`` into the conjugate's domain; D = sum_t (1/n_t) sum_i -l*(-theta) -
    pen.conjugate(G). Returns dict(gap, rel, primal, dual)."""
    datafit, thetas, G = _fit_and_dual(Xs, ys, pen.compose(V), b, loss)
    s = pen.dual_scaling(G, alpha)
    dual = _dual_value(thetas, ys, s, loss) - pen.conjugate(s * G, alpha)
    primal = datafit + pen.value(V, alpha)
    gap = max(primal - dual, 0.0)
    return dict(gap=gap, rel=gap / P0, primal=primal, dual=dual)


def prox_residual(Xs, ys, pen, V: np.ndarray, b: np.ndarray, alpha: float, loss: str, L: float,
                  g0_norm: float) -> dict:
    """regmtl's relative proximal-gradient KKT residual, at a GIVEN L (the same for every solver):

        sqrt(||V - prox_{Omega/L}(V + spread(G)/L)||^2 L^2 + ||intercept gradient||^2) / ||G0||_F

    with G the negative gradient of the data term in W at (pen.compose(V), b) and L the Lipschitz
    constant in V (``pen.copies`` times the one in W). Returns dict(rel, primal)."""
    W = pen.compose(V)
    G, sums = neg_gradient(Xs, ys, W, b, loss)
    D = V - pen.prox(V + pen.spread(G) / L, 1.0 / L, alpha)
    res = float(np.vdot(D, D)) * L * L + float(sums @ sums)
    return dict(rel=np.sqrt(res) / (g0_norm if g0_norm > 0 else 1.0), primal=None)


class CommonCertificate:
    """One certificate per scenario, for every solver: ``cert(V, b) -> dict(rel, kind, primal)``.

    ``kind`` "gap": relative duality gap (P - D) / P0; "kkt": :func:`prox_residual` at the fixed
    ``L_W`` (the data term's Lipschitz constant in W, from the bench's power iteration)."""

    def __init__(self, Xs, ys, pen, alpha: float, loss: str, L_W: float):
        self.Xs, self.ys, self.pen, self.alpha, self.loss = Xs, ys, pen, alpha, loss
        self.P0 = p0_value(ys, loss)
        self.kind = "gap" if pen.has_dual and alpha > 0 else "kkt"
        self.L = pen.copies * L_W
        self.g0_norm = float(np.linalg.norm(g0_matrix(Xs, ys, loss)))

    def __call__(self, V: np.ndarray, b: np.ndarray, primal: bool = True) -> dict:
        """``primal=False`` skips the objective value for the KKT kind (a stopping test)."""
        if self.kind == "gap":
            out = structured_gap(self.Xs, self.ys, self.pen, V, b, self.alpha, self.loss,
                                 self.P0)
        else:
            out = prox_residual(self.Xs, self.ys, self.pen, V, b, self.alpha, self.loss, self.L,
                                self.g0_norm)
            if primal:
                W = self.pen.compose(V)
                out["primal"] = (_fit_and_dual(self.Xs, self.ys, W, b, self.loss)[0]
                                 + self.pen.value(V, self.alpha))
        out["kind"] = self.kind
        return out
