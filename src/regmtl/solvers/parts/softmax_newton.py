r"""Proximal Newton for a loss that couples a row's class scores through a softmax (the
multinomial), with a penalty of entries or rows (L1, L2, elastic net, L2,1).

At ``(W, b)`` with the class probabilities :math:`p_i` of every row, the quadratic model of the
data term in a step ``(D, d)`` is

.. math::

    -\langle G, D \rangle - g^T d + \tfrac12 \sum_i c_i\, u_i^T (\mathrm{diag}(p_i) - p_i p_i^T)
    u_i, \qquad u_i = x_i^T D_{(t_i)} + d_{(t_i)},

each row's ``K x K`` curvature acting on its own task's classes. The model plus the penalty is
minimized by coordinate descent over the features of a working set (the rows of W that are
nonzero or whose gradient breaks the optimality condition), keeping every row's model residual
up to date (one pass over a feature's column per update): a row of W is stepped with the bound
:math:`\sum_i c_i x_{ij}^2 \min(\max_k p_{ik}, 1/2)` of its curvature
(:math:`\lambda_{\max}(\mathrm{diag}(p) - p p^T) \le \min(\max_k p_k, 1/2)`) and its group prox;
an entry with its exact curvature. Every six sweeps, the Anderson extrapolation of their
iterates is kept where it lowers the model (on correlated columns, digits' pixels, a third of
the sweeps). The step is then taken with a backtracking line search on
the objective (Tseng and Yun's sufficient decrease), and every outer step is certified by the
duality gap of the loss.

Once a full step has been taken and no feature outside the nonzero rows breaks the optimality
condition, the next steps are Newton steps on the objective restricted to those rows
(:mod:`~regmtl.solvers.parts.softmax_support`: smooth there, solved by conjugate gradients), for as
long as each brings the certificate down by :data:`SUPPORT_GAIN`; a model's coordinate
descent may stop short (:data:`FLOOR`): the steps on the support finish it.

With intercepts every step runs on each task's rows centred at their weighted mean (an exact
change of variables: :math:`F = (X - 1 m^T) V + (b + m^T V)`, the intercepts mapped back at
the end). Uncentred columns (digits' pixels, all positive) couple every feature to the
intercepts: on them the conjugate gradients of a support step took 46-62 iterations where the
centred rows take 14-33, and proximal gradient's first steps were cheaper than Newton's
from zeros. On centred rows the Newton steps run from any start: the L2,1 CV on digits in 3
tasks went from 4.1 s to 2.6 s, 2.7 times a per-task ``LogisticRegressionCV`` loop
(``bench/bench_regimes.py --cases multinomial``).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import ENTRYWISE, ROWS
from ..certificates.certify import Reference, certify, scores_intercepts
from ..result import SolverResult
from .anderson import Anderson
from .newton_loop import newton_loop
from .softmax_support import support_step

__all__ = ["SOFTMAX_KINDS", "softmax_newton"]

#: The block steps this solver takes: a penalty of entries or rows, with a ridge part.
SOFTMAX_KINDS = (ENTRYWISE, ROWS)

#: Sweeps between two Anderson extrapolations of the model's iterates, less one.
ANDERSON = 5

#: The factor a Newton step on the support must bring the certificate down by for the next
#: step to be one too (quadratic convergence brings it down much further).
SUPPORT_GAIN = 0.25

#: A model's coordinate descent may stop where the sweeps left, at the last two's linear
#: rate, would lower it by less than FLOOR times the gap tol asks for (``tol`` times the
#: objective at W = 0): the Newton steps on the support finish what it leaves
FLOOR = 1.0

#: The forcing term of a Newton system on the support: its residual brought down to
#: ``min(FORCING_CAP, FORCING sqrt(tol / gap))`` of the gradient (the gap falls about as
#: the gradient's square)
FORCING, FORCING_CAP = 0.3, 0.1


class _Layout:
    """The classes' layout (the loss's ``class_layout``) as tables: ``n_groups`` rows (one per
    original observation, its block's classes along ``K_max`` columns), the rows of block
    ``b`` reading the design from row ``roff[b]`` on."""

    def __init__(self, data: TaskBlocks, datafit: Datafit) -> None:
        self.col0, self.K, self.nb = (np.asarray(a, dtype=np.int64)
                                      for a in datafit.class_layout())
        self.goff = np.concatenate(([0], np.cumsum(self.nb)[:-1])).astype(np.int64)
        self.roff = (np.zeros_like(self.col0) if data.shared
                     else data.indptr[self.col0].astype(np.int64))
        self.n_groups, self.kmax = int(self.nb.sum()), int(self.K.max())
        self.Y = np.zeros((self.n_groups, self.kmax))
        for bl in range(self.K.size):
            g = slice(self.goff[bl], self.goff[bl] + self.nb[bl])
            for k in range(self.K[bl]):
                a = data.indptr[self.col0[bl] + k]
                self.Y[g, k] = data.y[a:a + self.nb[bl]]
        a = data.indptr[self.col0]
        self.C = np.concatenate([data.c[s:s + n] for s, n in zip(a, self.nb, strict=True)])
        self.live = np.arange(self.kmax)[None, :] < np.repeat(self.K, self.nb)[:, None]
        # (each block's (c0, K, r0, n, g0) as Python integers: the products' slices)
        self.spans = list(zip(*(a.tolist() for a in (self.col0, self.K, self.roff, self.nb,
                                                     self.goff)), strict=True))
        self.full = bool(self.live.all())

    def scores(self, X: np.ndarray, W: np.ndarray, b: np.ndarray,
               fill: float = -np.inf) -> np.ndarray:
        """The score table of ``(W, b)`` (``fill`` past a row's classes)."""
        shape = (self.n_groups, self.kmax)
        F = np.empty(shape) if self.full else np.full(shape, fill)
        for c0, K, r0, n, g0 in self.spans:
            F[g0:g0 + n, :K] = X[r0:r0 + n] @ W[:, c0:c0 + K] + b[c0:c0 + K]
        return F

    def adjoint(self, X: np.ndarray, Z: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
        """``(X^T Z, column sums of Z)`` in W's columns."""
        G, g = np.empty((X.shape[1], T)), np.empty(T)
        for c0, K, r0, n, g0 in self.spans:
            G[:, c0:c0 + K] = X[r0:r0 + n].T @ Z[g0:g0 + n, :K]
            g[c0:c0 + K] = Z[g0:g0 + n, :K].sum(axis=0)
        return G, g

    def loss(self, F: np.ndarray) -> tuple[float, np.ndarray]:
        """The data term of a score table and its probabilities (0 past a row's classes)."""
        m = F.max(axis=1, keepdims=True)
        E = np.exp(F - m)
        s = E.sum(axis=1, keepdims=True)
        E /= s
        fy = np.sum(np.where(self.live, self.Y * np.where(self.live, F, 0.0), 0.0), axis=1)
        return float(np.dot(self.C, (m[:, 0] + np.log(s[:, 0])) - fy)), E


@njit(cache=True)
def _norm_at(zt, lam, mu):  # pragma: no cover (compiled)
    """``||diag(1 / (lam + mu)) zt||``."""
    s = 0.0
    for t in range(zt.size):
        s += (zt[t] / (lam[t] + mu)) ** 2
    return np.sqrt(s)


#: Rows of one block read at once for the curvatures: ``CHUNK / K^2`` (the products of each
#: row's class probabilities two by two are formed for that many rows: 8 MB), at least one.
CHUNK = 1 << 18


def _model_curvatures(X: np.ndarray, lay: _Layout, feats: np.ndarray, P: np.ndarray,
                      rows: bool, T: int, decompose: bool = True) -> tuple[np.ndarray, ...]:
    r"""The curvatures of the data term at the probabilities ``P``, on the features
    ``feats``: each entry's (``Hent``, nf x T), each feature's ``T x T`` block
    :math:`H_j = \sum_i c_i x_{ij}^2 (\mathrm{diag}(p_i) - p_i p_i^T)` (rows: block-diagonal
    over the tasks' classes; with ``decompose`` its eigenvectors ``Qs`` and eigenvalues
    ``lams``, else the matrices in ``Qs``), and the intercepts' (eigenvectors, eigenvalues):
    ``(Hent, Qs, lams, Qb, lamb)``. Products with the rows (BLAS): per block of rows,
    :math:`(c \odot X^2)^T P` and :math:`(c \odot X^2)^T (p_i \otimes p_i)`."""
    nf = feats.size
    Hent = np.zeros((nf, T))
    Qs = np.zeros((nf if rows else 0, T, T))
    lams = np.zeros((nf if rows else 0, T))
    Hb = np.zeros((T, T))
    for c0, K, r0, n, g0 in lay.spans:
        cols = slice(c0, c0 + K)
        D, E = np.zeros((nf, K)), np.zeros((nf, K, K))
        step = max(CHUNK // (K * K), 1)
        for a in range(0, n, step):  # (blocks of rows: the outer products held for those)
            e = min(a + step, n)
            M, c = P[g0 + a:g0 + e, :K], lay.C[g0 + a:g0 + e]
            Xw = X[r0 + a:r0 + e][:, feats] ** 2 * c[:, None]
            D += Xw.T @ M
            outer = M[:, :, None] * M[:, None, :]
            if rows:
                E += (Xw.T @ outer.reshape(e - a, K * K)).reshape(nf, K, K)
            else:  # (the diagonal of the outer products alone)
                E[:, np.arange(K), np.arange(K)] += Xw.T @ (M * M)
            Hb[cols, cols] += np.diag(c @ M) - np.tensordot(c, outer, axes=1)
        H = -E
        H[:, np.arange(K), np.arange(K)] += D
        Hent[:, cols] = np.diagonal(H, axis1=1, axis2=2)
        if rows:
            if decompose:
                lam, Q = np.linalg.eigh(H)
                Qs[:, cols, cols], lams[:, cols] = Q, np.maximum(lam, 0.0)
            else:
                Qs[:, cols, cols] = H
    lamb, Qb = np.linalg.eigh(Hb)
    return Hent, Qs, lams, np.ascontiguousarray(Qb), lamb


@njit(cache=True, fastmath=True)
def _model_sweep(X, roff, goff, nb, col0, Kb, feats, V, bvec, fit_b, Z, P, C, l1, l2, rows,
                 Hent, Qs, lams, Qb, lamb):  # pragma: no cover (compiled)
    """One sweep of coordinate descent on the quadratic model over the features ``feats``
    (and the intercepts), in place on ``V``, ``bvec`` and the rows' model residuals ``Z``,
    with the curvatures of :func:`_model_curvatures`; returns how far it moved the point (in
    the model's metric)."""
    n_blocks = Kb.size
    T = V.shape[1]
    nf = feats.size
    cut = 1e-12 * max(lamb.max(), 1e-300)
    r = np.empty(T)
    zt = np.empty(T)
    vq = np.empty(T)
    delta = np.empty(T)
    change = 0.0
    for jj in range(nf):
        j = feats[jj]
        r[:] = 0.0
        for bl in range(n_blocks):
            for i in range(nb[bl]):
                x = X[roff[bl] + i, j]
                if x != 0.0:
                    g = goff[bl] + i
                    for k in range(Kb[bl]):
                        r[col0[bl] + k] += x * Z[g, k]
        if rows:
            lam = lams[jj]
            Q = Qs[jj]
            # the row's exact block step: minimize -r.d + d'H d / 2 + l1 ||v|| + l2/2 ||v||^2
            zn = 0.0
            for t in range(T):  # z = H v0 + r in the eigenbasis
                qv, qr = 0.0, 0.0
                for m in range(T):
                    qv += Q[m, t] * V[j, m]
                    qr += Q[m, t] * r[m]
                zt[t] = lam[t] * qv + qr
                vq[t] = qv
                zn += zt[t] * zt[t]
            if np.sqrt(zn) <= l1:
                for t in range(T):
                    delta[t] = -V[j, t]
            else:  # v = (H + mu I)^-1 z with mu = l2 + l1 / ||v||: ||v|| by bisection
                mu = l2
                if l1 > 0.0:
                    lo, hi = 0.0, 1.0
                    for _ in range(200):
                        if _norm_at(zt, lam, l2 + l1 / hi) < hi:
                            break
                        lo, hi = hi, 2.0 * hi
                    for _ in range(60):
                        mid = 0.5 * (lo + hi)
                        if _norm_at(zt, lam, l2 + l1 / mid) >= mid:
                            lo = mid
                        else:
                            hi = mid
                    mu = l2 + l1 / (0.5 * (lo + hi))
                # no penalty (alpha = 0): H is singular along each task's common shift
                # of its classes (and along any direction the rows do not reach); there
                # the model is flat and v keeps its own coordinate
                flat = 1e-12 * max(lam.max(), 1e-300)
                for t in range(T):
                    vt = 0.0
                    for m in range(T):
                        den = lam[m] + mu
                        vt += Q[t, m] * (zt[m] / den if den > flat else vq[m])
                    delta[t] = vt - V[j, t]
            moved = 0.0
            for t in range(T):
                moved += delta[t] * delta[t]
            if moved == 0.0:
                continue
            change += lam.max() * moved
            for t in range(T):
                V[j, t] += delta[t]
            for bl in range(n_blocks):
                for i in range(nb[bl]):
                    x = X[roff[bl] + i, j]
                    if x != 0.0:
                        g = goff[bl] + i
                        pd = 0.0
                        for k in range(Kb[bl]):
                            pd += P[g, k] * delta[col0[bl] + k]
                        cx = C[g] * x
                        for k in range(Kb[bl]):
                            Z[g, k] -= cx * P[g, k] * (delta[col0[bl] + k] - pd)
        else:
            for bl in range(n_blocks):
                for k in range(Kb[bl]):
                    t = col0[bl] + k
                    h = Hent[jj, t]
                    if h <= 0.0:
                        continue
                    if k > 0:  # the residual moved with this block's earlier entries
                        r[t] = 0.0
                        for i in range(nb[bl]):
                            r[t] += X[roff[bl] + i, j] * Z[goff[bl] + i, k]
                    z = h * V[j, t] + r[t]
                    a = abs(z) - l1
                    new = 0.0 if a <= 0.0 else np.sign(z) * a / (h + l2)
                    d = new - V[j, t]
                    if d == 0.0:
                        continue
                    change += h * d * d
                    V[j, t] = new
                    for i in range(nb[bl]):
                        x = X[roff[bl] + i, j]
                        if x != 0.0:
                            g = goff[bl] + i
                            cxd = C[g] * x * d * P[g, k]
                            for m in range(Kb[bl]):
                                Z[g, m] += cxd * P[g, m]
                            Z[g, k] -= cxd
    if fit_b:  # the intercepts' exact step (none along the classes' common shift)
        r[:] = 0.0
        for bl in range(n_blocks):
            for i in range(nb[bl]):
                for k in range(Kb[bl]):
                    r[col0[bl] + k] += Z[goff[bl] + i, k]
        rt = Qb.T @ r
        for t in range(T):
            rt[t] = rt[t] / lamb[t] if lamb[t] > cut else 0.0
        db = Qb @ rt
        moved = 0.0
        for t in range(T):
            delta[t] = db[t]
            bvec[t] += db[t]
            moved += db[t] * db[t]
        change += lamb.max() * moved
        for bl in range(n_blocks):
            for i in range(nb[bl]):
                g = goff[bl] + i
                pd = 0.0
                for k in range(Kb[bl]):
                    pd += P[g, k] * delta[col0[bl] + k]
                for k in range(Kb[bl]):
                    Z[g, k] -= C[g] * P[g, k] * (delta[col0[bl] + k] - pd)
    return change


def _model_value(X, lay, V0, b0, V, b, G, gb, P, penalty, alpha) -> tuple[float, np.ndarray]:
    """The model ``-<G, D> - g^T d + sum_i c_i u_i^T (diag(p_i) - p_i p_i^T) u_i / 2`` plus the
    penalty at ``(V, b)`` (``D = V - V0``, ``d = b - b0``), and the rows' score moves ``u``."""
    D, db = V - V0, b - b0
    dF = lay.scores(X, D, db, 0.0)
    Pd = np.sum(P * dF, axis=1)
    quad = 0.5 * float(np.dot(lay.C, np.sum(P * dF * dF, axis=1) - Pd * Pd))
    return (quad - float(np.vdot(G, D)) - float(np.dot(gb, db)) + penalty.value(V, alpha),
            dF)


def _solve_model(X, lay, feats, V0, b0, V, b, fit_b, Z, G, gb, P, penalty, alpha, l1, l2,
                 rows, max_sweeps, rtol, floor=0.0) -> int:
    """The Newton model minimized by coordinate descent sweeps (:func:`_model_sweep`, in place
    on ``V``, ``b`` and the model residuals ``Z``) with Anderson extrapolation of every
    :data:`ANDERSON` + 1 sweeps' iterates on the working set (Bertrand & Massias 2021), kept
    where it lowers the model: on correlated columns (pixels) the sweeps crawl along a few
    slow directions that the extrapolation removes. Returns the sweeps run."""
    curv = _model_curvatures(X, lay, feats, P, rows, V.shape[1])
    Z0 = Z.copy()
    acc = Anderson(ANDERSON)
    done, first, prev = 0, -1.0, np.inf
    while done < max_sweeps:  # until a sweep moves the point by rtol of the first sweep
        last = _model_sweep(X, lay.roff, lay.goff, lay.nb, lay.col0, lay.K, feats, V, b, fit_b,
                            Z, P, lay.C, l1, l2, rows, *curv)
        done += 1
        first = last if first < 0.0 else first
        rate = last / prev if 0.0 < prev < np.inf else 1.0
        # (or until the sweeps left, at the last two's linear rate, would move it by less
        # than ``floor``)
        if last <= rtol * first or (rate < 1.0 and last * rate / (1.0 - rate) <= floor):
            break
        prev = last
        x = acc.push(np.concatenate([V[feats].ravel(), b]))
        if x is None:
            continue
        Vx, bx = V.copy(), b.copy()
        Vx[feats] = x[:feats.size * V.shape[1]].reshape(feats.size, -1)
        if fit_b:
            bx = x[feats.size * V.shape[1]:]
        here, _ = _model_value(X, lay, V0, b0, V, b, G, gb, P, penalty, alpha)
        there, dF = _model_value(X, lay, V0, b0, Vx, bx, G, gb, P, penalty, alpha)
        if there < here:
            V[:], b[:] = Vx, bx
            Pd = np.sum(P * dF, axis=1, keepdims=True)
            Z[:] = Z0 - lay.C[:, None] * P * (dF - Pd)
    return done


def _support(V: np.ndarray) -> np.ndarray:
    """The features whose row of ``V`` is nonzero."""
    return np.flatnonzero(np.any(V != 0.0, axis=1))


def _model_step(X, lay, V, bv, Vn, bn, F, obj, G, gb, penalty, alpha):
    """The step from ``(V, bv)`` to the model's minimizer ``(Vn, bn)``, with a backtracking
    search for the objective's sufficient decrease (Tseng and Yun): ``(V, bv, F, P, obj,
    step)`` there."""
    D, db = Vn - V, bn - bv
    dF = lay.scores(X, D, db, 0.0)
    pen_new = penalty.value(Vn, alpha)
    decrease = -np.vdot(G, D) - np.dot(gb, db) + pen_new - penalty.value(V, alpha)
    t = 1.0
    for _ in range(40):
        Vt = V + t * D if t < 1.0 else Vn
        value_t, P_t = lay.loss(F + t * dF)
        obj_t = value_t + (pen_new if t == 1.0 else penalty.value(Vt, alpha))
        if obj_t <= obj + 1e-4 * t * min(decrease, 0.0) + 1e-13 * abs(obj):
            break
        t *= 0.5
    return Vt, bv + t * db, F + t * dF, P_t, obj_t, t


def _centred(X: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """The rows the layout reads, each block's less their ``C``-weighted mean, in a compact
    copy (one row per group: the classes' layout repeats each observation's row for every
    class of its task, read once), the layout's row offsets moved onto it (a shared design:
    its rows once, less one mean of all blocks' weights); and the means in W's layout
    (p x columns, a block's mean on each of its classes' columns)."""
    shared = len({r0 for _, _, r0, _, _ in lay.spans}) < len(lay.spans)
    p = X.shape[1]
    shift = np.zeros((p, int(sum(K for _, K, _, _, _ in lay.spans))))
    if shared:  # (one set of rows for every block: one mean, of the pooled weights)
        n = lay.spans[0][3]
        c = sum(lay.C[g0:g0 + nn] for _, _, _, nn, g0 in lay.spans)
        total = float(c.sum())
        m = (c @ X[:n]) / total if total > 0 else np.zeros(p)
        Xc = np.asfortranarray(X[:n] - m)
        shift[:] = m[:, None]
        return Xc, shift
    Xc = np.empty((lay.n_groups, p), order="F")
    spans = []
    for c0, K, r0, n, g0 in lay.spans:
        c = lay.C[g0:g0 + n]
        total = float(c.sum())
        m = (c @ X[r0:r0 + n]) / total if total > 0 else np.zeros(p)
        Xc[g0:g0 + n] = X[r0:r0 + n] - m
        shift[:, c0:c0 + K] = m[:, None]
        spans.append((c0, K, g0, n, g0))
    lay.spans, lay.roff = spans, lay.goff.copy()
    return Xc, shift


class _SoftmaxNewton:
    """The module's proximal Newton as a :class:`~regmtl.solvers.parts.newton_loop.
    NewtonMethod`: model steps by coordinate descent on a working set, or Newton steps on
    the support; each step certified with the intercepts minimized exactly."""

    spent = False

    def __init__(self, data, datafit, penalty, alpha, W, b, ref, fit_intercept, tol,
                 max_sweeps):
        self.data, self.datafit, self.penalty, self.alpha = data, datafit, penalty, alpha
        self.ref, self.fit_intercept, self.tol = ref, fit_intercept, tol
        self.max_sweeps = max_sweeps
        self.lay = _Layout(data, datafit)
        step = penalty.bcd_params(alpha)
        # with intercepts, the steps run on each block's rows centred at their weighted mean
        # (the intercepts absorb the shift: F = (X - 1 m^T) V + (b + m^T V)); the Newton
        # systems of the support and the models' coordinate descent no longer couple every
        # feature to the intercepts (digits' pixels: a half to a third of the CG iterations)
        self.shift = None
        if fit_intercept:
            self.X, self.shift = _centred(np.asarray(data.X, dtype=np.float64), self.lay)
        else:
            self.X = np.asfortranarray(data.X, dtype=np.float64)
        self.l1, self.l2, self.rows = float(step.l1), float(step.l2), step.kind == ROWS
        self.V = np.array(W, dtype=np.float64, order="C")
        self.bv = (np.array(b, dtype=np.float64) if fit_intercept
                   else np.zeros(data.n_tasks))
        if self.shift is not None:  # (the intercepts of the centred rows)
            self.bv += np.einsum("jc,jc->c", self.shift, self.V)
        self.F = self.lay.scores(self.X, self.V, self.bv)
        value, self.P = self.lay.loss(self.F)
        self.obj = value + penalty.value(self.V, alpha)
        self.bc = self.bv
        self.sched, self.rtol = 1e-2, 1e-2
        self.on_support = False  # (whether the next step is a Newton step on the support)
        self.kind, self.work, self.t, self.n_feats = "", 0, 1.0, 0

    def certify(self):
        f = self.data.linear(self.V, self.intercepts())
        self.bc = self.intercepts()
        if self.fit_intercept:  # the intercepts minimized exactly before the certificate
            f, self.bc = scores_intercepts(self.data, self.datafit, f, self.bc)
        return certify(self.data, self.datafit, self.penalty, self.alpha, self.V, f,
                       self.fit_intercept, self.ref)

    def intercepts(self) -> np.ndarray:
        """The intercepts of the rows as given (the steps' are the centred rows')."""
        if self.shift is None:
            return self.bv.copy()
        return self.bv - np.einsum("jc,jc->c", self.shift, self.V)

    def status(self) -> str:
        return (f"  {self.kind:7s}  working set {self.n_feats:5d}  "
                f"{'sweeps' if self.kind == 'model' else 'cg'} {self.work:4d}  step "
                f"{self.t:.3g}") if self.kind else ""

    def step(self, cert, progress, budget) -> int:
        X, lay, V, penalty, alpha = self.X, self.lay, self.V, self.penalty, self.alpha
        l1, l2, rows, T = self.l1, self.l2, self.rows, self.data.n_tasks
        if cert is not None:  # (what the last step's certificate decides for this one)
            # Newton on the support where a full model step kept the support (the proximal
            # steps have found it), or where such a step brought the certificate down by
            # SUPPORT_GAIN; else the proximal steps (a row to zero, a feature to enter)
            gained = progress.ratio <= SUPPORT_GAIN
            self.on_support = self.t == 1.0 and (
                gained if self.kind == "support" else _support(V).size > 0)
            # the model solved as far as its step must take the gap (a Newton step leaves
            # about the model's unsolved part): tighter each full step, never past tol's need
            self.rtol = min(1e-2, max(self.sched,
                                      0.1 * self.tol / max(cert.relative, 1e-300)))
        Z = lay.C[:, None] * np.where(lay.live, lay.Y - self.P, 0.0)
        G, gb = lay.adjoint(X, Z, T)  # minus the gradient
        support = _support(V)
        if rows:
            feats = np.flatnonzero((np.linalg.norm(V, axis=1) > 0)
                                   | (np.linalg.norm(G, axis=1) > l1))
        else:
            feats = np.flatnonzero(np.any(V != 0, axis=1) | np.any(np.abs(G) > l1, axis=1))
        self.n_feats = feats.size
        if self.on_support and feats.size == support.size:  # no feature outside asks in
            curv = _model_curvatures(X, lay, support, self.P, rows, T, decompose=False)
            # (the gap falls about as the gradient's square: its norm brought down by
            # sqrt(tol / gap), a tenth of it to spare)
            forcing = min(FORCING_CAP, FORCING * np.sqrt(self.tol / cert.relative))
            (self.V, self.bv, self.F, self.P, self.obj, self.t, self.work) = support_step(
                X, lay, V, self.bv, self.F, self.P, self.obj, G, gb, penalty, alpha, l1, l2,
                rows, self.fit_intercept, curv, support, forcing)
            self.kind = "support"
        else:
            Vn, bn = V.copy(), self.bv.copy()
            self.work = _solve_model(X, lay, feats.astype(np.int64), V, self.bv, Vn, bn,
                                     self.fit_intercept, Z, G, gb, self.P, penalty, alpha, l1,
                                     l2, rows, self.max_sweeps, self.rtol,
                                     FLOOR * self.tol * self.ref.P0)
            self.V, self.bv, self.F, self.P, self.obj, self.t = _model_step(
                X, lay, V, self.bv, Vn, bn, self.F, self.obj, G, gb, penalty, alpha)
            self.sched = max(self.sched * (0.1 if self.t == 1.0 else 1.0), 1e-8)
            self.kind = "model"
        return 1


def softmax_newton(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                   W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                   tol: float, max_iter: int, verbose: int = 0,
                   max_sweeps: int = 200) -> SolverResult:
    """Minimize ``datafit + alpha penalty`` from ``(W, b)`` by proximal Newton steps with
    each row's ``K x K`` curvature (the module's text); ``max_iter`` bounds the Newton steps,
    each certified."""
    method = _SoftmaxNewton(data, datafit, penalty, alpha, W, b, ref, fit_intercept, tol,
                            max_sweeps)
    cert, progress, converged, _ = newton_loop(
        method, tol=tol, max_iter=max_iter, label="softmax newton", verbose=verbose,
        patience=None, certify_start=False)
    # (certified: the intercepts minimized exactly; else the iterate's own)
    return SolverResult(method.V, method.bc if converged else method.intercepts(),
                        progress.steps, cert, converged, stalled=False)
