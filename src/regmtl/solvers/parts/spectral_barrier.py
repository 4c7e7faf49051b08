r"""The pinball loss with the trace norm: a barrier method over the norm's semidefinite
epigraph, one linear-matrix inequality per task around one shared p x p matrix.

The trace norm is the least ``(tr Sigma + sum_t u_t) / 2`` over the blocks

.. math::

    M_t = \begin{pmatrix} \Sigma & w_t \\ w_t^\top & u_t \end{pmatrix} \succeq 0,
    \qquad t = 1..T,

(for ``Sigma`` fixed, ``u_t = w_t^T Sigma^{-1} w_t``, and ``Sigma = (W W^T)^{1/2}`` then
gives ``||W||_*``): T inequalities of size p + 1 that share ``Sigma``, where the usual
formulation has one of size p + T (a T x T block). The fit minimizes

.. math::

    F_\tau = \sum_r \phi_\tau(r_r) + \tau \tfrac a2 \big(\operatorname{tr}\Sigma
    + \textstyle\sum_t u_t\big) - \sum_t \log\det M_t,

``r = y - X w - b`` and ``phi_tau(r) = min_s tau s - log(s - c^+ r) - log(s + c^- r)`` the
pinball row's barrier with its epigraph variable minimized out in closed form
(``h = (c^+ + c^-)|r| / 2``, ``sigma = sqrt(1 + tau^2 h^2)``: ``phi = tau (c^+ - c^-) r / 2
+ 1 + sigma - log(2 (1 + sigma) / tau^2)``), for ``tau`` growing by :data:`GROWTH` once each
centering ends (Newton's decrement below :data:`CENTERED`). ``phi'(r) / tau`` lies in
``[-c^-, c^+]``: the pinball loss's dual point at every iterate.

Each Newton system eliminates the tasks' own unknowns ``(w_t, b_t, u_t)`` (a (p + 2)-square
block per task: the rows' curvatures ``X_t^T diag(phi'') X_t`` plus the inequality's) and
leaves ``Sigma``'s ``p (p + 1) / 2`` unknowns. With ``M_t^{-1} = [[A_t, c_t], [c_t^T, d_t]]``
the Hessian of ``-log det M_t`` couples ``Sigma`` to the task only through ``Sigma c_t``, so
the reduced matrix is

.. math::

    \sum_t A_t \otimes A_t - N_t \otimes c_t c_t^\top,
    \qquad N_t = F_t^\top H_t^{-1} F_t,\ F_t = [2 A_t;\ 0;\ c_t^\top],

two sums of Kronecker products, formed as one matrix product of the tasks' upper triangles (``2 T x
p (p + 1) / 2``) and one gather: O(T p^4) work a step and nothing of size T x T. The first point
puts ``Sigma`` and ``u`` at their center for the first ``tau`` (a start far outside it cost hundreds
of damped steps at small alpha). Once the barrier's bound ``m / tau`` nears ``tol``, the point is
centered further (:data:`FINE`: the dual point is as good as the centering) and certified by the
library's duality gap at ``(W, b, theta)``, ``theta = phi'(r) / (tau c)``
(:func:`~regmtl.solvers.certificates.saddle.saddle_certificate`), never by the bound; the best
certified point is returned. The rows' curvatures grow apart as ``tau^2``: where rounding stops the
certificates improving (three without a tenth off), the policy's row goes on by the primal-dual
method from that point and its dual. School (139 tasks, p = 28) takes 45 to 70 Newton steps at the
defaults.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...datafits.quantile import Quantile
from ...penalties import Penalty
from ..certificates.certify import Reference
from ..certificates.saddle import dual_box, saddle_certificate
from ..result import SolverResult
from .intercepts import pinball_intercepts
from .task_columns import task_grams

__all__ = ["SPECTRAL_SIZE", "spectral_barrier"]

#: The most numbers in the reduced matrix's Kronecker sums, ``p^4``, and in the tasks'
#: products ``T p^4`` (the work of one step) -- beyond, the primal-dual row runs.
SPECTRAL_SIZE = (1 << 22, 1 << 31)

#: tau's growth once a centering ends.
GROWTH = 6.0
#: A centering ends where half Newton's decrement squared is below this.
CENTERED = 0.25
#: Where a centering that a certificate reads ends (see :func:`_center`).
FINE = 1e-7
#: The most Newton steps of one centering.
STEPS = 40


class _Point:
    """``(W, b, Sigma, u)``: the coefficients, intercepts, shared matrix and the tasks'
    bounds."""

    def __init__(self, W, b, S, u):
        self.W, self.b, self.S, self.u = W, b, S, u

    def moved(self, d: _Point, s: float) -> _Point:
        return _Point(self.W + s * d.W, self.b + s * d.b, self.S + s * d.S, self.u + s * d.u)

    def blocks(self) -> np.ndarray:
        """``M_t`` (T, p + 1, p + 1)."""
        p, T = self.W.shape
        M = np.empty((T, p + 1, p + 1))
        M[:, :p, :p] = self.S
        M[:, :p, p] = M[:, p, :p] = self.W.T
        M[:, p, p] = self.u
        return M


class _Barrier:
    """The barrier function of one problem at one ``tau``: its value, gradient and reduced
    Newton step."""

    def __init__(self, data, y, live, cu, cl, a, fit_intercept):
        self.data, self.y, self.live = data, y, live
        self.m1, self.k = 0.5 * (cu - cl), 0.5 * (cu + cl)  # (per row; 0 off the live rows)
        self.a, self.E = a, fit_intercept
        p = data.n_features
        iu, ju = np.triu_indices(p)
        # (the reduced matrix's entry [(i, j), (k, l)] reads C = sum_t svec X_t svec Y_t' at
        # [(i, k), (j, l)], and at the three transposes a symmetric pair adds: X_t, Y_t are
        # symmetric, so C is formed over their upper triangles alone)
        sidx = np.zeros((p, p), dtype=np.int64)
        sidx[iu, ju] = sidx[ju, iu] = np.arange(iu.size)
        n = iu.size
        I, J, K, L = iu[:, None], ju[:, None], iu[None, :], ju[None, :]
        # (a pair's transposes only where it is off the diagonal: elsewhere the index reads
        # the zero appended to C, index n * n)
        rows, cols = (iu != ju)[:, None], (iu != ju)[None, :]
        zero = n * n
        self.gather = np.stack([
            sidx[I, K] * n + sidx[J, L],
            np.where(cols, sidx[I, L] * n + sidx[J, K], zero),
            np.where(rows, sidx[J, K] * n + sidx[I, L], zero),
            np.where(rows & cols, sidx[J, L] * n + sidx[I, K], zero)]).astype(np.intp)
        self.triu, self.off = (iu, ju), (iu != ju).astype(np.float64)
        # (the product and the gather written into buffers kept for every step: fresh
        # arrays of this size were page-faulted in at each step wherever the allocator
        # returned them to the system, 1.4 times the whole fit's time)
        self._C = np.zeros(n * n + 1)
        self._gathered = np.empty(self.gather.shape)

    def reduced(self, A: np.ndarray, N: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``P' (sum_t A_t (x) A_t - N_t (x) c_t c_t') P`` over Sigma's upper triangle
        (``P`` sums an off-diagonal pair): one product of the tasks' upper triangles, one
        gather."""
        iu, ju = self.triu
        left = np.concatenate((A[:, iu, ju], N[:, iu, ju]))
        right = np.concatenate((A[:, iu, ju], -(c[:, iu] * c[:, ju])))
        n = iu.size
        np.matmul(left.T, right, out=self._C[:-1].reshape(n, n))  # (the last entry: 0)
        np.take(self._C, self.gather, out=self._gathered)
        return self._gathered.sum(axis=0)

    # ------------------------------------------------------------------ the rows
    def rows(self, r, tau, order: int):
        """``phi`` summed (order 0), or ``(phi', phi'')`` per row (order 2), at ``tau``."""
        h = self.k * np.abs(r)
        sig = np.sqrt(1.0 + (tau * h) ** 2)
        if order == 0:
            val = tau * self.m1 * r + 1.0 + sig - np.log(2.0 * (1.0 + sig) / tau ** 2)
            return float(np.sum(val[self.live]))
        g = tau * self.m1 + tau ** 2 * self.k ** 2 * r / (1.0 + sig)
        H = tau ** 2 * self.k ** 2 / ((1.0 + sig) * sig)
        return np.where(self.live, g, 0.0), np.where(self.live, H, 0.0)

    def value(self, x: _Point, tau: float) -> float:
        """``F_tau(x)``; inf outside the cones."""
        L, ok = _cholesky(x.blocks())
        if not ok:
            return np.inf
        r = self.y - np.asarray(self.data.linear(x.W, x.b))
        logdet = 2.0 * float(np.sum(np.log(np.einsum("tii->ti", L))))
        return (self.rows(r, tau, 0) + tau * 0.5 * self.a * (np.trace(x.S) + x.u.sum())
                - logdet)

    # ------------------------------------------------------------------ Newton's step
    def step(self, x: _Point, tau: float) -> tuple[_Point, float, np.ndarray]:
        """Newton's direction ``d`` at ``x``, its decrement squared (``-grad . d``) and the
        rows' ``phi'`` linearized at ``x + d`` (``tau`` times their dual point)."""
        data, E = self.data, self.E
        p, T = x.W.shape
        R = np.linalg.inv(x.blocks())  # M_t^{-1} (T, p+1, p+1); M_t is inside
        A, c, d = R[:, :p, :p], R[:, :p, p], R[:, p, p]
        r = self.y - np.asarray(data.linear(x.W, x.b))
        g, h = self.rows(r, tau, 2)
        # ---- gradients: (w, b, u) per task, then Sigma
        k = p + 2
        gz = np.zeros((T, k))
        gz[:, :p] = -np.asarray(data.adjoint(g)).T - 2.0 * c
        if E:
            gz[:, p] = -np.asarray(data.task_sums(g))
        gz[:, p + 1] = tau * 0.5 * self.a - d
        gS = tau * 0.5 * self.a * np.eye(p) - A.sum(axis=0)
        # ---- the tasks' blocks H_t over (w, b, u)
        H = np.zeros((T, k, k))
        H[:, :p, :p] = task_grams(data, h, np.zeros((p, T)), np.arange(p))
        H[:, :p, :p] += 2.0 * c[:, :, None] * c[:, None, :] + 2.0 * d[:, None, None] * A
        if E:
            H[:, :p, p] = H[:, p, :p] = np.asarray(data.adjoint(h)).T
            H[:, p, p] = np.asarray(data.task_sums(h))
        else:
            H[:, p, p] = 1.0  # (no intercept: its unknown held at 0 by a zero gradient)
        H[:, :p, p + 1] = H[:, p + 1, :p] = 2.0 * d[:, None] * c
        H[:, p + 1, p + 1] = d * d
        # (a task without live rows and an intercept: its b is free, held still)
        H[:, p, p] = np.where(H[:, p, p] > 0.0, H[:, p, p], 1.0)
        Hinv = _spd_inverse(H)
        F = np.zeros((T, k, p))
        F[:, :p, :] = 2.0 * A
        F[:, p + 1, :] = c
        HF = Hinv @ F  # (T, k, p)
        N = np.matmul(F.transpose(0, 2, 1), HF)
        # ---- the reduced matrix over Sigma's upper triangle
        S = self.reduced(A, N, c)
        Hg = np.matmul(Hinv, gz[:, :, None])[:, :, 0]
        v = np.matmul(F.transpose(0, 2, 1), Hg[:, :, None])[:, :, 0]  # F_t' H_t^-1 g_t
        rhs = -gS + v.T @ c
        iu, ju = self.triu
        ds = _spd_solve(S, rhs[iu, ju] + rhs[ju, iu] * self.off)  # (P' of the gradient)
        dS = np.zeros((p, p))
        dS[iu, ju] = dS[ju, iu] = ds
        Sc = dS @ c.T  # (p, T): dSigma c_t
        dz = -Hg - np.matmul(HF, Sc.T[:, :, None])[:, :, 0]
        dx = _Point(dz[:, :p].T.copy(), dz[:, p].copy() if E else np.zeros(T), dS,
                    dz[:, p + 1].copy())
        dec = -(float(np.vdot(gz, dz)) + float(np.vdot(gS, dS)))
        # (the rows' dual estimate after the step, phi' + phi'' dr: the Newton equations make
        # it meet the intercepts' sums and the coefficients' stationarity to rounding, where
        # phi' alone misses them by the centering's slack times curvatures up to tau^2)
        moved = g - h * np.asarray(data.linear(dx.W, dx.b))
        return dx, dec, moved


def _cholesky(M: np.ndarray) -> tuple[np.ndarray, bool]:
    """Batched Cholesky factors, and whether every block is positive definite."""
    try:
        return np.linalg.cholesky(M), True
    except np.linalg.LinAlgError:
        return M, False


def _spd_inverse(H: np.ndarray) -> np.ndarray:
    """Inverses of symmetric positive-definite blocks, scaled to a unit diagonal first."""
    s = 1.0 / np.sqrt(np.maximum(np.einsum("tii->ti", H), 1e-300))
    return np.linalg.inv(H * s[:, :, None] * s[:, None, :]) * s[:, :, None] * s[:, None, :]


def _spd_solve(S: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``S^{-1} r`` for a symmetric positive-definite S: Cholesky after a scaling to a unit
    diagonal, refined once. S is a Schur complement, positive definite in exact arithmetic;
    where cancellation leaves it indefinite in rounding (School's folds at alpha_max / 200:
    its 177th pivot), a symmetric indefinite factorization solves it instead."""
    s = 1.0 / np.sqrt(np.maximum(np.diag(S), 1e-300))
    Ss = S * s[:, None] * s[None, :]
    try:
        factor = scipy.linalg.cho_factor(Ss, check_finite=False)
    except np.linalg.LinAlgError:
        def solve(v):
            with warnings.catch_warnings():  # (its condition is the point: no warning)
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                return scipy.linalg.solve(Ss, v, assume_a="sym", check_finite=False)
    else:
        def solve(v):
            return scipy.linalg.cho_solve(factor, v, check_finite=False)
    x = s * solve(s * r)
    return x + s * solve(s * (r - S @ x))


def spectral_barrier(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                     W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                     tol: float, max_iter: int = 300, verbose: int = 0) -> SolverResult:
    """Solve the pinball loss with the trace norm by the barrier method of the module's
    docstring, certified by the duality gap of the problem itself at every centered point
    whose barrier bound is within reach. ``max_iter`` counts Newton steps; the fit stops
    there, or where a centering fails to lower ``F`` (rounding), and says so by its
    certificate."""
    p, T = data.n_features, data.n_tasks
    y = np.asarray(data.y, dtype=np.float64)
    c = np.asarray(data.c, dtype=np.float64)
    live = c > 0
    lo, hi = dual_box(datafit, y)
    scale = 1.0 / max(float(np.max(c, initial=0.0)), 1e-300)  # costs of order one
    cu = np.where(live, scale * c * hi, 0.0)
    cl = np.where(live, -scale * c * lo, 0.0)
    a = scale * float(alpha)
    E = fit_intercept
    barrier = _Barrier(data, y, live, cu, cl, a, E)

    # ---- the first point: the warm start (its intercepts the pinball loss's), Sigma and u
    # at their center for the first tau (below)
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64) if E else np.zeros(T)
    f = np.asarray(data.linear(W, b))
    if E and isinstance(datafit, Quantile):
        pinball_intercepts(data, datafit.quantile, f, b)
    n_live = int(live.sum())
    m = 2 * n_live + T * (p + 1)  # the barrier's parameter
    r = y - f
    primal = float(np.sum(np.maximum(cu * r, -cl * r))) + penalty.value(W, a)
    tau = m / max(primal, 1e-300)
    # (Sigma and u at their center for this tau and W: -T log det Sigma + tau a tr Sigma / 2
    # is least at 2 T / (tau a) I, and -log(u_t - w_t' Sigma^-1 w_t) + tau a u_t / 2 at
    # u_t = w_t' Sigma^-1 w_t + 2 / (tau a))
    s0 = max(2.0 * T / (tau * a), float(np.linalg.norm(W, 2)) if W.size else 0.0) \
        if a > 0 else 1.0
    S = s0 * np.eye(p)
    u = np.einsum("jt,jt->t", W, W) / s0 + (2.0 / (tau * a) if a > 0 else 1.0)
    x = _Point(W, b, S, u)
    target = tol * scale * max(float(ref.P0), 1e-300)

    def certify(g, tau):
        theta = np.where(live, np.clip(g / (tau * scale * np.where(live, c, 1.0)), lo, hi),
                         0.0)
        cert, b_opt = saddle_certificate(data, datafit, penalty, alpha, x.W, x.b, theta,
                                         lo, hi, E, ref)
        return cert, (b_opt if E else np.zeros(T)), theta

    n_iter, best, stalled = 0, None, 0  # (best: certificate, b, theta, W)
    while n_iter < max_iter:
        x, g, centered, steps = _center(barrier, x, tau, CENTERED, max_iter - n_iter)
        n_iter += steps
        if verbose:
            print(f"spectral barrier {n_iter}: tau {tau:.3e}, bound / P0 "
                  f"{m / tau / target * tol:.3e}")
        if m / tau <= 10.0 * target or not centered:
            # (the dual point is as good as the centering: a point centered to Newton's
            # decrement lambda leaves the dual's constraints off by about lambda / sqrt(m)
            # relative -- a few more steps, quadratically convergent here, settle it)
            if centered:
                x, g, centered, steps = _center(barrier, x, tau, FINE, max_iter - n_iter)
                n_iter += steps
            if g is not None:
                found = certify(g, tau)
                stalled = stalled + 1 if best is not None and \
                    found[0].value > 0.9 * best[0].value else 0
                if best is None or found[0].value < best[0].value:
                    best = (*found, x.W)
                # (three certificates without a tenth off: the rounding of the rows'
                # curvatures, 1 to tau^2 apart, has the last word)
                if best[0].converged(tol) or stalled >= 3:
                    break
            if not centered:
                break
        tau *= GROWTH
    if best is None:  # (no centered point reached tol's reach: the last point's dual)
        try:
            g = barrier.step(x, tau)[2]
        except np.linalg.LinAlgError:
            g = barrier.rows(barrier.y - np.asarray(data.linear(x.W, x.b)), tau, 2)[0]
        best = (*certify(g, tau), x.W)
    cert, b_opt, theta, W = best
    if cert.converged(tol):
        W, b_opt, cert = _lowest_rank(data, datafit, penalty, alpha, W, b_opt, theta, lo, hi,
                                      E, ref, tol, cert)
    return SolverResult(W, b_opt, n_iter, cert, cert.converged(tol), W, theta=theta)


def _lowest_rank(data, datafit, penalty, alpha, W, b, theta, lo, hi, fit_intercept, ref, tol,
                 cert):
    """``(W, b, certificate)`` with W cut to the lowest rank whose point still certifies.

    A barrier ends strictly inside its cones: singular values that are zero at the optimum
    end at about ``1 / tau`` (1e-4 to 1e-6 on School at the defaults, against 0.23 for the
    one that is not), and ``rank_`` would read full rank. The rank k is found by bisection
    (the truncation to k values certifies for every k above the least that does, up to the
    certificate's own slack), each candidate certified with the fit's dual point."""
    U, sv, Vt = np.linalg.svd(W, full_matrices=False)
    lo_k, hi_k, found = 0, int(np.sum(sv > 0)), (W, b, cert)
    while lo_k < hi_k:
        k = (lo_k + hi_k) // 2
        Wk = (U[:, :k] * sv[:k]) @ Vt[:k]
        kcert, kb = saddle_certificate(data, datafit, penalty, alpha, Wk, b, theta, lo, hi,
                                       fit_intercept, ref)
        if kcert.converged(tol):
            hi_k, found = k, (Wk, kb if fit_intercept else np.zeros_like(b), kcert)
        else:
            lo_k = k + 1
    return found


def _center(barrier: _Barrier, x: _Point, tau: float, until: float, budget: int):
    """Newton's steps at ``tau`` until half the decrement squared is below ``until`` (at
    most :data:`STEPS` and ``budget``): ``(point, the rows' phi' at the last step's start,
    centered, steps)``. A direction that is not finite or a step that does not lower F
    (rounding, a block at its boundary) ends it uncentered."""
    F0 = barrier.value(x, tau)
    g = None
    for k in range(min(STEPS, budget)):
        try:
            d, dec, g = barrier.step(x, tau)
        except np.linalg.LinAlgError:
            return x, g, False, k + 1
        if not np.isfinite(dec) or dec < 0.0:
            return x, g, False, k + 1
        x1, F1, moved = _take(barrier, x, d, tau, F0, dec)
        if 0.5 * dec <= until:
            return x1, g, True, k + 1
        if not moved:
            return x, g, False, k + 1
        x, F0 = x1, F1
    return x, g, False, min(STEPS, budget)


def _take(barrier: _Barrier, x: _Point, d: _Point, tau: float, F0: float,
          dec: float) -> tuple[_Point, float, bool]:
    """A step along ``d``: the whole step where Newton's decrement is below 1/2 and the
    step stays inside (a self-concordant function's quadratic region, where F's own
    rounding would blur Armijo's test), else backtracking from it (inside the cones,
    Armijo's decrease of a quarter); ``(point, value, moved)``."""
    s = 1.0
    if dec < 0.25:
        nx = x.moved(d, 1.0)
        F1 = barrier.value(nx, tau)
        if np.isfinite(F1):
            return nx, F1, True
    for _ in range(60):
        nx = x.moved(d, s)
        F1 = barrier.value(nx, tau)
        if F1 <= F0 - 0.25 * s * dec:
            return nx, F1, True
        s *= 0.5
    return x, F0, False
