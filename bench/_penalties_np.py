r"""Plain NumPy versions of regmtl's structured penalties (benchmark peer; independent code).

Each class gives, for the variable V of the penalty (V = W, or V = (P, Q) stacked as a
(2, p, T) array for the decompositions W = P + Q):

* ``value(V, alpha)``, ``prox(V, step, alpha)`` = argmin_U ||U - V||^2 / (2 step) + Omega(U);
* ``lift(W)`` / ``compose(V)`` / ``spread(G)`` (the map V -> W, its adjoint) and ``copies``
  (||compose||^2, 2 for W = P + Q: the Lipschitz constant in V is twice the one in W);
* where a duality gap exists (``has_dual``): ``dual_scaling(G, alpha)`` (s in (0, 1] with s G in
  the domain of the conjugate), ``conjugate(G, alpha)`` and ``alpha_max(G0)``.

Objectives (the same as regmtl's docstrings; W is p x T, column t = task t)::

    Trace            alpha ||W||_*
    MeanReg(r)       alpha / 2 (sum_t ||w_t - w_bar||^2 + r ||W||_F^2)
    Graph(A)         alpha / 2 sum_{s,t} A_st ||w_s - w_t||^2 = alpha tr(W L W^T), L = D - A
    Clustered(k,eta) alpha eta (1 + eta) min_{0 <= M <= I, tr M = k} tr(W (eta I + M)^{-1} W^T)
    SharedStructure(k,eta)  the same with tr(W^T (eta I + M)^{-1} W), M in S^p: Clustered of
                     W^T (MALSAR Least_CASO)
    Dirty(g)         W = P + Q, alpha (sum_j ||P_j||_2 + g ||Q||_1)
    SparseLowRank(g) W = P + Q, alpha (||Q||_* + g ||P||_1)     (V[0] = P sparse, V[1] = Q)
    RobustLowRank(g) W = P + Q, alpha (||P||_* + g sum_t ||Q_:t||_2)      (MALSAR Least_RMTL)
    RobustFeatures(g) W = P + Q, alpha (sum_j ||P_j||_2 + g sum_t ||Q_:t||_2)
                                                                           (MALSAR Least_rMTFL)
    TemporalGroupLasso(s, r) alpha (sum_j ||W_j||_2 + s/2 ||W R||_F^2 + r/2 ||W||_F^2)
                                                                           (MALSAR Least_TGL)
    FusedGroupLasso(f, l)  alpha (sum_j ||W_j||_2 + f ||W R||_1 + l ||W||_1)
                                                                      (MALSAR Least_CFGLasso)
    (R: T x (T - 1), (W R)_{:t} = w_t - w_{t+1}, the tasks ordered in time)

The proxes: singular-value soft-thresholding (Trace); ``V (I + step alpha K)^{-1}`` for the task
kernels, in closed form for MeanReg (K = (1 + r) I - 11^T / T: the task mean is divided by
1 + step alpha r, the deviations from it by 1 + step alpha (1 + r)) and through the eigenvectors
of the Laplacian for Graph; for Clustered the joint minimization over (U, M) of MALSAR's CMTL,
with M's eigenvalues found by exact water-filling over the sorted breakpoints (the bsa_ihb idea:
h(tau) = sum_i clip(tau sigma_i - a, 0, 1) is piecewise linear, so h(tau) = k is solved exactly on
the segment where it crosses k); group / entrywise soft-thresholding for Dirty and SLR; for the
robust models singular-value (RobustLowRank) or row-group (RobustFeatures) soft-thresholding of P
and column-group soft-thresholding of Q (V[0] = P shared, V[1] = Q outlier tasks).

The temporal penalties are split as MALSAR splits them (``Least_TGL.m``, ``Least_CFGLasso.m``):
TemporalGroupLasso's quadratic part goes into the smooth term (``smooth(alpha)``: its value,
gradient and curvature bound alpha (4 s + r); the loops of bench/_fista.py add them to the data
term) and ``prox`` is the group soft-thresholding alone; FusedGroupLasso's prox is, per row, the
group soft-thresholding of the soft-thresholding of the 1-D total-variation prox (MALSAR calls
the C code ``flsa`` row by row). That 1-D prox is the one compiled piece here (numba, as MALSAR's
is C): Johnson's dynamic programming (2013), exact in O(T). Their certificates are independent
of regmtl's: the conjugate of the temporal group lasso from the dense eigendecomposition of
K = s R R^T + r I and a bisection per row; the fused group lasso's dual norm by bisection on t
of ||soft(TV-prox(g, t f), t l)||_2 <= t.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------- building blocks
def svt(V: np.ndarray, thr: float) -> np.ndarray:
    """Singular-value soft-thresholding."""
    U, s, Vt = np.linalg.svd(V, full_matrices=False)
    keep = s > thr
    if not keep.any():
        return np.zeros_like(V)
    return (U[:, keep] * (s[keep] - thr)) @ Vt[keep]


def soft(V: np.ndarray, thr: float) -> np.ndarray:
    return np.sign(V) * np.maximum(np.abs(V) - thr, 0.0)


def group_soft_rows(V: np.ndarray, thr: float) -> np.ndarray:
    nrm = np.sqrt((V * V).sum(axis=1))
    scale = np.zeros_like(nrm)
    big = nrm > thr
    scale[big] = 1.0 - thr / nrm[big]
    return V * scale[:, None]


def group_soft_cols(V: np.ndarray, thr: float) -> np.ndarray:
    return group_soft_rows(V.T, thr).T


def col_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt((V * V).sum(axis=0))


def nuclear(V: np.ndarray) -> float:
    return float(np.linalg.svd(V, compute_uv=False).sum())


def spectral(G: np.ndarray) -> float:
    return float(np.linalg.svd(G, compute_uv=False)[0])


def water_fill(sigma: np.ndarray, a: float, k: float) -> np.ndarray:
    r"""argmin_m sum_i sigma_i^2 / (a + m_i) s.t. 0 <= m_i <= 1, sum_i m_i = k (sigma >= 0).

    Stationarity: a + m_i = tau sigma_i, i.e. m_i = clip(tau sigma_i - a, 0, 1) with tau such
    that h(tau) = sum_i m_i(tau) = k. h is continuous, piecewise linear and nondecreasing with
    breakpoints a / sigma_i (m_i starts growing) and (a + 1) / sigma_i (m_i saturates at 1): sort
    them, find the segment on which h crosses k and solve the linear equation there. When at most
    k sigma_i are positive, those get m_i = 1 and the rest of the budget is spread over the zero
    ones (the value does not depend on it)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    m = np.zeros_like(sigma)
    pos = sigma > 0
    n_pos = int(pos.sum())
    if n_pos <= k:
        m[pos] = 1.0
        if n_pos < sigma.size:
            m[~pos] = (k - n_pos) / (sigma.size - n_pos)
        return m
    s = sigma[pos]
    bps = np.unique(np.concatenate([a / s, (a + 1.0) / s]))

    def h(tau):
        return np.clip(tau * s - a, 0.0, 1.0).sum()

    hv = np.array([h(t) for t in bps])
    i = int(np.searchsorted(hv, k))  # first breakpoint with h >= k (exists: h(last) = n_pos > k)
    if hv[i] == k or i == 0:
        tau = bps[i]
    else:  # linear on [bps[i-1], bps[i]]: slope = sum of sigma over the growing (unsaturated) ones
        lo = bps[i - 1]
        mid = 0.5 * (lo + bps[i])  # classify at the midpoint: no m_i sits on a kink there
        growing = (mid * s - a > 0.0) & (mid * s - a < 1.0)
        slope = s[growing].sum()
        tau = lo + (k - hv[i - 1]) / slope if slope > 0 else bps[i]
    m[pos] = np.clip(tau * s - a, 0.0, 1.0)
    return m


# ----------------------------------------------------------------------------- penalties
class Plain:
    """V = W."""

    copies = 1
    has_dual = False

    def lift(self, W):
        return W.copy()

    def compose(self, V):
        return V

    def spread(self, G):
        return G

    def V_of(self, W, P=None, Q=None):
        """The variable of a solution (regmtl exposes P_ / Q_ for the decompositions)."""
        return W

    def structure(self, V) -> str:
        return ""


class Trace(Plain):
    has_dual = True
    name = "trace"

    def value(self, V, alpha):
        return alpha * nuclear(V)

    def prox(self, V, step, alpha):
        return svt(V, step * alpha)

    def dual_scaling(self, G, alpha):
        m = spectral(G)
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G, alpha):
        return 0.0

    def alpha_max(self, G0):
        return spectral(G0)

    def structure(self, V):
        s = np.linalg.svd(V, compute_uv=False)
        return f"rank {int(np.sum(s > 1e-8 * s.max())) if s.max() > 0 else 0}"


def dispersion(W: np.ndarray) -> float:
    """||W - w_bar 1^T||_F / ||W||_F: 0 for the pooled model (all w_t equal)."""
    nrm = np.linalg.norm(W)
    return float(np.linalg.norm(W - W.mean(axis=1, keepdims=True)) / nrm) if nrm > 0 else 0.0


class MeanReg(Plain):
    name = "mean"

    def __init__(self, ridge: float = 0.0):
        self.ridge = float(ridge)
        self.has_dual = self.ridge > 0

    def value(self, V, alpha):
        dev = V - V.mean(axis=1, keepdims=True)
        return 0.5 * alpha * (float(np.vdot(dev, dev)) + self.ridge * float(np.vdot(V, V)))

    def prox(self, V, step, alpha):
        mean = V.mean(axis=1, keepdims=True)
        return (mean / (1.0 + step * alpha * self.ridge)
                + (V - mean) / (1.0 + step * alpha * (1.0 + self.ridge)))

    def dual_scaling(self, G, alpha):
        return 1.0

    def conjugate(self, G, alpha):
        # K^{-1} = (1 / r) on the mean direction, 1 / (1 + r) on the deviations
        mean = G.mean(axis=1, keepdims=True)
        dev = G - mean
        T = G.shape[1]
        return (T * float(np.vdot(mean, mean)) / self.ridge
                + float(np.vdot(dev, dev)) / (1.0 + self.ridge)) / (2.0 * alpha)

    def structure(self, V):
        return f"dispersion {dispersion(V):.3f}"


class Graph(Plain):
    name = "graph"

    def __init__(self, A: np.ndarray):
        A = np.asarray(A.toarray() if hasattr(A, "toarray") else A, dtype=np.float64)
        self.A = A
        Lap = np.diag(A.sum(axis=1)) - A
        evals, self.Q = np.linalg.eigh(Lap)
        self.kappa = 2.0 * np.maximum(evals, 0.0)  # eigenvalues of K = 2 L

    def value(self, V, alpha):
        D = V[:, :, None] - V[:, None, :]  # p x T x T
        return 0.5 * alpha * float(np.einsum("st,jst->", self.A, D * D))

    def prox(self, V, step, alpha):
        return ((V @ self.Q) / (1.0 + step * alpha * self.kappa)) @ self.Q.T

    def structure(self, V):
        return f"dispersion {dispersion(V):.3f}"


class Clustered(Plain):
    name = "clustered"

    def __init__(self, k: int = 3, eta: float = 1.0):
        self.k, self.eta = int(k), float(eta)

    def _c(self, alpha):
        return alpha * self.eta * (1.0 + self.eta)

    @staticmethod
    def _sigma_T(V):
        s = np.linalg.svd(V, compute_uv=False)
        return np.concatenate([s, np.zeros(V.shape[1] - s.size)])

    def value(self, V, alpha):
        s = self._sigma_T(V)
        m = water_fill(s, self.eta, self.k)
        return self._c(alpha) * float(np.sum(s * s / (self.eta + m)))

    def prox(self, V, step, alpha):
        # joint min over (U, M): for fixed M = Q diag(m) Q^T (Q: right singular vectors of V),
        # U = V Q diag((eta + m) / (eta + m + 2 step c)) Q^T and the value left is
        # step c sum sigma^2 / (eta + 2 step c + m): water-filling with a = eta + 2 step c.
        U, s, Vt = np.linalg.svd(V, full_matrices=False)
        two_sc = 2.0 * step * self._c(alpha)
        s_all = np.concatenate([s, np.zeros(V.shape[1] - s.size)])
        m = water_fill(s_all, self.eta + two_sc, self.k)[: s.size]
        return (U * (s * (self.eta + m) / (self.eta + m + two_sc))) @ Vt

    def structure(self, V):
        s = np.linalg.svd(V, compute_uv=False)
        top = s[: self.k + 1] / s[0] if s[0] > 0 else s[: self.k + 1]
        return "sv/sv1 " + " ".join(f"{x:.2f}" for x in top)


class SharedStructure(Clustered):
    """cASO: Clustered with M on the features, i.e. Clustered of W^T (the value and the prox
    transposed; the budget k spread over the p singular values)."""

    name = "caso"

    def value(self, V, alpha):
        return super().value(V.T, alpha)

    def prox(self, V, step, alpha):
        return super().prox(V.T, step, alpha).T

    def structure(self, V):
        return super().structure(V.T)


class _Decomp:
    """V = (V[0], V[1]) stacked, W = V[0] + V[1]."""

    copies = 2
    has_dual = True

    def __init__(self, weight: float):
        self.g = float(weight)

    def lift(self, W):
        return np.stack([W, np.zeros_like(W)])

    def compose(self, V):
        return V[0] + V[1]

    def spread(self, G):
        return np.stack([G, G])

    def conjugate(self, G, alpha):
        return 0.0

    def dual_scaling(self, G, alpha):
        m = self.alpha_max(G)
        return 1.0 if m <= alpha else alpha / m


class Dirty(_Decomp):
    """V[0] = P (rows shared, group lasso), V[1] = Q (entrywise, weight g): regmtl's P_, Q_."""

    name = "dirty"

    def V_of(self, W, P=None, Q=None):
        return np.stack([P, Q])

    def value(self, V, alpha):
        return alpha * (float(np.sqrt((V[0] * V[0]).sum(axis=1)).sum())
                        + self.g * float(np.abs(V[1]).sum()))

    def prox(self, V, step, alpha):
        return np.stack([group_soft_rows(V[0], step * alpha), soft(V[1], step * alpha * self.g)])

    def alpha_max(self, G):
        return max(float(np.sqrt((G * G).sum(axis=1)).max()), float(np.abs(G).max()) / self.g)

    def structure(self, V):
        rows = int(np.count_nonzero(np.any(V[0] != 0, axis=1)))
        return f"P rows {rows}, Q nnz {int(np.count_nonzero(V[1]))}"


class SparseLowRank(_Decomp):
    """V[0] = P (sparse, weight g), V[1] = Q (trace norm): regmtl's P_ (sparse), Q_ (low rank)."""

    name = "sparse_lowrank"

    def lift(self, W):
        return np.stack([np.zeros_like(W), W])

    def V_of(self, W, P=None, Q=None):
        return np.stack([P, Q])

    def value(self, V, alpha):
        return alpha * (nuclear(V[1]) + self.g * float(np.abs(V[0]).sum()))

    def prox(self, V, step, alpha):
        return np.stack([soft(V[0], step * alpha * self.g), svt(V[1], step * alpha)])

    def alpha_max(self, G):
        return max(spectral(G), float(np.abs(G).max()) / self.g)

    def structure(self, V):
        s = np.linalg.svd(V[1], compute_uv=False)
        rank = int(np.sum(s > 1e-8 * s.max())) if s.max() > 0 else 0
        return f"P nnz {int(np.count_nonzero(V[0]))}, Q rank {rank}"


def _outliers(Q: np.ndarray) -> str:
    out = np.flatnonzero(np.any(Q != 0, axis=0))
    return f"outliers {out.tolist()}" if out.size <= 8 else f"{out.size} outliers"


class RobustLowRank(_Decomp):
    """V[0] = P (trace norm), V[1] = Q (column groups, weight g): regmtl's P_ (low rank, shared),
    Q_ (outlier tasks)."""

    name = "robust_lowrank"

    def V_of(self, W, P=None, Q=None):
        return np.stack([P, Q])

    def value(self, V, alpha):
        return alpha * (nuclear(V[0]) + self.g * float(col_norms(V[1]).sum()))

    def prox(self, V, step, alpha):
        return np.stack([svt(V[0], step * alpha), group_soft_cols(V[1], step * alpha * self.g)])

    def alpha_max(self, G):
        return max(spectral(G), float(col_norms(G).max()) / self.g)

    def structure(self, V):
        s = np.linalg.svd(V[0], compute_uv=False)
        rank = int(np.sum(s > 1e-8 * s.max())) if s.max() > 0 else 0
        return f"P rank {rank}, {_outliers(V[1])}"


class RobustFeatures(_Decomp):
    """V[0] = P (row groups), V[1] = Q (column groups, weight g): regmtl's P_ (shared rows),
    Q_ (outlier tasks)."""

    name = "robust_features"

    def V_of(self, W, P=None, Q=None):
        return np.stack([P, Q])

    def value(self, V, alpha):
        return alpha * (float(np.sqrt((V[0] * V[0]).sum(axis=1)).sum())
                        + self.g * float(col_norms(V[1]).sum()))

    def prox(self, V, step, alpha):
        return np.stack([group_soft_rows(V[0], step * alpha),
                         group_soft_cols(V[1], step * alpha * self.g)])

    def alpha_max(self, G):
        return max(float(np.sqrt((G * G).sum(axis=1)).max()), float(col_norms(G).max()) / self.g)

    def structure(self, V):
        rows = int(np.count_nonzero(np.any(V[0] != 0, axis=1)))
        return f"P rows {rows}, {_outliers(V[1])}"


# ----------------------------------------------------------------------------- temporal
def diff_matrix(T: int) -> np.ndarray:
    """MALSAR's R (T x (T - 1)): R[t, t] = 1, R[t + 1, t] = -1."""
    R = np.zeros((T, max(T - 1, 0)))
    R[np.arange(T - 1), np.arange(T - 1)] = 1.0
    R[np.arange(1, T), np.arange(T - 1)] = -1.0
    return R


def _row_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt((V * V).sum(axis=1))


class TemporalGroupLasso(Plain):
    """MALSAR's TGL split: ``prox`` is the group soft-thresholding of the rows; the quadratic
    part alpha (s/2 ||W R||^2 + r/2 ||W||^2) is the smooth term ``smooth(alpha)``."""

    name = "temporal_group_lasso"
    has_dual = True

    def __init__(self, smooth: float, ridge: float):
        self.s, self.r = float(smooth), float(ridge)
        self._K = {}

    def K(self, T: int) -> np.ndarray:
        if T not in self._K:
            R = diff_matrix(T)
            self._K[T] = self.s * R @ R.T + self.r * np.eye(T)
        return self._K[T]

    def smooth(self, alpha: float):
        """(value(W), gradient(W), curvature bound) of alpha / 2 tr(W K W^T)."""
        def value(W):
            return 0.5 * alpha * float(np.vdot(W @ self.K(W.shape[1]), W))

        def grad(W):
            return alpha * (W @ self.K(W.shape[1]))

        return value, grad, alpha * (4.0 * self.s + self.r)

    def value(self, V, alpha):
        return self.smooth(alpha)[0](V) + alpha * float(_row_norms(V).sum())

    def prox(self, V, step, alpha):
        return group_soft_rows(V, step * alpha)

    def dual_scaling(self, G, alpha):
        lam, Q = np.linalg.eigh(self.K(G.shape[1]))
        null = lam <= 1e-12 * max(lam.max(), 1.0)
        if not null.any():
            return 1.0
        m = float(_row_norms(G @ Q[:, null]).max())
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G, alpha):
        """sum_j min_{||u|| <= alpha} (g_j - u)^T K^+ (g_j - u) / (2 alpha), g_j - u in range K:
        in K's eigenbasis u_i = g_i / (1 + nu k_i) off the null space, nu by bisection."""
        lam, Q = np.linalg.eigh(self.K(G.shape[1]))
        null = lam <= 1e-12 * max(lam.max(), 1.0)
        Gh = G @ Q
        rho2 = np.maximum(alpha * alpha - (Gh[:, null] ** 2).sum(axis=1), 0.0)
        g2, k = Gh[:, ~null] ** 2, lam[~null]
        if k.size == 0:
            return 0.0
        tot = g2.sum(axis=1)
        act = tot > rho2
        g2, rho2, tot = g2[act], rho2[act], tot[act]
        tight = rho2 <= 1e-30 * tot  # the ball is used up by the null space: nu -> inf
        total = float((g2[tight] / k).sum())
        g2, rho2, tot = g2[~tight], rho2[~tight], tot[~tight]
        lo, hi = np.zeros(tot.size), np.sqrt(tot / rho2) / k.min()
        for _ in range(200):  # bisection on nu, all rows at once
            mid = 0.5 * (lo + hi)
            over = (g2 / (1.0 + mid[:, None] * k) ** 2).sum(axis=1) > rho2
            lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
        nu = 0.5 * (lo + hi)[:, None]
        total += float((g2 * nu * nu * k / (1.0 + nu * k) ** 2).sum())
        return total / (2.0 * alpha)

    def alpha_max(self, G0):
        return float(_row_norms(G0).max())

    def structure(self, V):
        rows = int(np.count_nonzero(np.any(V != 0, axis=1)))
        d = np.diff(V[np.any(V != 0, axis=1)], axis=1)
        return f"rows {rows}, mean |step| {np.abs(d).mean() if d.size else 0.0:.3f}"


def _tv_dp(y, lam):
    """Johnson's dynamic programming for argmin 1/2 ||x - y||^2 + lam sum |x_{k+1} - x_k|:
    the derivative of the forward message is piecewise linear, kept by its knots; each step
    clips it at -lam / lam (two new knots), and back-pointers recover x. Exact, O(n)."""
    n = y.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    if n == 1 or lam <= 0.0:
        out[:] = y
        return out
    x = np.empty(2 * n)
    a = np.empty(2 * n)
    b = np.empty(2 * n)
    tm = np.empty(n - 1)
    tp = np.empty(n - 1)
    tm[0], tp[0] = y[0] - lam, y[0] + lam
    left, right = n - 1, n
    x[left], x[right] = tm[0], tp[0]
    a[left], b[left] = 1.0, lam - y[0]
    a[right], b[right] = -1.0, lam + y[0]
    a_first, b_first = 1.0, -lam - y[1]
    a_last, b_last = -1.0, -lam + y[1]
    for k in range(1, n - 1):
        alo, blo = a_first, b_first
        lo = left
        while lo <= right:  # the knot where the message's derivative passes -lam
            if alo * x[lo] + blo > -lam:
                break
            alo += a[lo]
            blo += b[lo]
            lo += 1
        tm[k] = (-lam - blo) / alo
        left = lo - 1
        x[left] = tm[k]
        ahi, bhi = a_last, b_last
        hi = right
        while hi >= left:  # and where it passes +lam, from the right
            if -ahi * x[hi] - bhi < lam:
                break
            ahi += a[hi]
            bhi += b[hi]
            hi -= 1
        tp[k] = (lam + bhi) / (-ahi)
        right = hi + 1
        x[right] = tp[k]
        a[left], b[left] = alo, blo + lam
        a[right], b[right] = ahi, bhi + lam
        a_first, b_first = 1.0, -lam - y[k + 1]
        a_last, b_last = -1.0, -lam + y[k + 1]
    alo, blo = a_first, b_first
    lo = left
    while lo <= right:
        if alo * x[lo] + blo > 0.0:
            break
        alo += a[lo]
        blo += b[lo]
        lo += 1
    out[n - 1] = -blo / alo
    for k in range(n - 2, -1, -1):
        out[k] = min(max(out[k + 1], tm[k]), tp[k])
    return out


def _fused_rows(V, c_tv, c_l1, c_group):
    out = np.empty_like(V)
    for j in range(V.shape[0]):
        x = _tv_dp(V[j], c_tv)
        x = np.sign(x) * np.maximum(np.abs(x) - c_l1, 0.0)
        nrm = np.sqrt(np.sum(x * x))
        out[j] = x * (0.0 if nrm <= c_group else 1.0 - c_group / nrm)
    return out


def _dual_norms(G, f, l1):
    out = np.empty(G.shape[0])
    for j in range(G.shape[0]):
        g = G[j]
        hi = np.sqrt(np.sum(g * g))
        lo = 0.0
        if hi == 0.0 or (f == 0.0 and l1 == 0.0):
            out[j] = hi
            continue
        for _ in range(100):
            t = 0.5 * (lo + hi)
            x = _tv_dp(g, t * f)
            x = np.sign(x) * np.maximum(np.abs(x) - t * l1, 0.0)
            if np.sqrt(np.sum(x * x)) <= t:
                hi = t
            else:
                lo = t
        out[j] = hi
    return out


try:  # compiled as MALSAR's flsa is (C); plain Python otherwise
    from numba import njit

    _tv_dp = njit(cache=True)(_tv_dp)
    _fused_rows = njit(cache=True)(_fused_rows)
    _dual_norms = njit(cache=True)(_dual_norms)
except ImportError:  # pragma: no cover
    pass


class FusedGroupLasso(Plain):
    """MALSAR's cFSGL prox: per row, group soft-thresholding of the soft-thresholding of the
    1-D total-variation prox (Johnson's dynamic programming); the dual norm by bisection."""

    name = "fused_group_lasso"
    has_dual = True

    def __init__(self, fused: float, l1: float):
        self.f, self.l1 = float(fused), float(l1)

    def value(self, V, alpha):
        tv = float(np.abs(np.diff(V, axis=1)).sum())
        return alpha * (float(_row_norms(V).sum()) + self.f * tv + self.l1 * float(np.abs(V).sum()))

    def prox(self, V, step, alpha):
        c = step * alpha
        return _fused_rows(np.ascontiguousarray(V), c * self.f, c * self.l1, c)

    def alpha_max(self, G0):
        return float(_dual_norms(np.ascontiguousarray(G0), self.f, self.l1).max())

    def dual_scaling(self, G, alpha):
        m = self.alpha_max(G)
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G, alpha):
        return 0.0

    def structure(self, V):
        rows = np.any(V != 0, axis=1)
        jumps = int(np.count_nonzero(np.abs(np.diff(V[rows], axis=1)) > 1e-9))
        return f"rows {int(rows.sum())}, jumps {jumps}, nnz {int(np.count_nonzero(V))}"
