r"""The pinball loss with a conic penalty (and the Huber loss in its least-absolute-deviation
regime): a primal-dual interior-point method whose Newton systems are solved in the tasks'
own blocks.

The fit is the cone program

.. math::

    \min\ \sum_r c_r (\tau r^+_r + (1 - \tau) r^-_r) + a \sum_j s_j
          + \tfrac12 \operatorname{vec}(W)^\top P \operatorname{vec}(W)
    \quad\text{s.t.}\quad x_r^\top w_t + b_t + r^+_r - r^-_r = y_r,\quad r^\pm \ge 0,
    \quad \|W_j\|_2 \le s_j,

with the cones for the L2,1 norm (:attr:`Penalty.cone_program` ``"row_norm"``: ``a = alpha
rho``, the ridge ``alpha (1 - rho)`` in ``P``), the quadratic alone for mean-regularized MTL
(``"task_mean"``: ``P = alpha ((1 + r) I - 11^T / T)`` over the tasks of each feature), or
for L1,inf the bounds ``|W_jt| <= s_j`` in place of the cones (``"row_max"``: their slacks
``s_j -+ W_jt`` linear cones, ``a = alpha``; eliminating ``s`` leaves a diagonal per entry
and a rank-one coupling per feature, the same structure). A squared row of a loss list is a
residual ``r^q_r`` of cost ``c_r (r^q_r)^2 / 2`` in the equality; a Huber row has both,
``Huber(r) = min_s s^2 / 2 + delta |r - s|`` (the pieces' costs ``delta``), so that its
reduced weight is the pieces' and the quadratic's in series. Mehrotra's predictor-corrector
with Nesterov-Todd scaling (:mod:`~regmtl.solvers.parts.cones`), from a point inside with the
pinball rows' duals ``lambda`` at the middle of their box; its duals are ``lambda`` (of the
equalities: ``theta = lambda / c`` is the pinball loss's dual point) and the cones' slacks.
Where P is zero the primal and dual steps are taken apart. A step shorter than
:data:`SHORT` is taken again along a direction aimed at :data:`CENTER` times ``mu`` at least
(the iterate lost centrality in a few cones). Three steps without a tenth off the gap stop
the iteration near the end (below :data:`STALL` of the first gap: rounding), twelve before.

Each Newton system, once the residuals' parts (diagonal) and the norms ``s`` are
eliminated, is

.. math::

    \Big(\operatorname{blkdiag}_t \big(\tilde X_t^\top D_t \tilde X_t
    + \operatorname{diag}(d)\big) + \sum_j \sum_k \gamma_{jk}\, (e_j \otimes v_{jk})
    (e_j \otimes v_{jk})^\top\Big) \Delta = \text{rhs},

``tilde X_t = [X_t, 1]`` (the intercept a column; a feature left unpenalized by the
per-feature terms, ``PartlyPenalized``'s free rows, has no cone and no quadratic: a column as
the intercept is): one (p + 1)-square block per task plus, for each
feature, a rank-one coupling of its tasks per cone (``v`` its scaling point's ``w1``, ``gamma < 0``)
and per pull to the mean (``v = 1``). The blocks are inverted at once (batched) and the couplings
enter by the Sherman-Morrison-Woodbury identity on a capacitance of size ``p k``, followed by
iterative refinement (near the end a cone's coupling nearly cancels its diagonal): O(N p^2 + T p^3)
work an iteration and nothing of size T x T. Some 15 to 35 iterations reach 1e-6. The fit is
certified by the library's own duality gap at ``(W, b, theta)``
(:func:`~regmtl.solvers.certificates.saddle.saddle_certificate`; the KKT residual for a penalty
without a tractable dual), never by the iteration's own measures.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...datafits.huber import Huber
from ...datafits.quantile import Quantile
from ...penalties import Penalty
from ..certificates.certify import Reference
from ..certificates.saddle import dual_box, saddle_certificate
from ..result import SolverResult
from . import cones
from .intercepts import pinball_intercepts
from .task_columns import task_grams

__all__ = ["CONE_FORMS", "IPM_SIZE", "LAD_ALPHA", "LAD_SHARE", "huber_rows", "interior_point",
           "lad_regime", "pinball_rows"]

#: The penalty forms (``penalty.cone_program``) this solver writes as cone programs.
CONE_FORMS = ("row_norm", "task_mean", "row_max")

#: The most numbers in the tasks' Newton blocks, ``T (p + 1)^2`` (three copies are held).
IPM_SIZE = 1 << 24

#: The fraction of the longest step inside the cones that is taken.
STEP = 0.99

#: A step shorter than this (primal or dual) is taken again along a centering direction,
#: aimed at :data:`CENTER` times mu at least (School + L2,1 at q = 0.95, alpha_max / 100:
#: Mehrotra's steps alone shrank to 5 % and stalled 43 % above the optimum; with the
#: centering, 22 steps certify).
SHORT = 0.2
CENTER = 0.5

#: Below this fraction of its first gap, three iterations without a tenth off stop the
#: iteration (rounding); above it, twelve.
STALL = 1e-3


def pinball_rows(datafit: Datafit) -> bool:
    """Whether the loss is the pinball loss, or a loss list of pinball and squared tasks
    with one pinball task at least (the squared rows a quadratic cost in the program)."""
    if datafit.piecewise_linear:
        return True
    parts = getattr(datafit, "parts", None)
    return bool(parts) and all(q.piecewise_linear or q.quadratic for q in parts) and any(
        q.piecewise_linear for q in parts)


def huber_rows(datafit: Datafit) -> bool:
    """Whether the loss is Huber's, or a loss list of Huber, pinball and squared tasks with
    one Huber task at least (each Huber row a linear piece and a quadratic one in series)."""
    if isinstance(datafit, Huber):
        return True
    parts = getattr(datafit, "parts", None)
    return bool(parts) and all(isinstance(q, Huber) or q.piecewise_linear or q.quadratic
                               for q in parts) and any(isinstance(q, Huber) for q in parts)


#: The Huber loss is solved here in its least-absolute-deviation regime: at least this share
#: of its rows' weight on the linear pieces at W = 0 ...
LAD_SHARE = 0.5
#: ... and alpha at most this fraction of alpha_max. (School + L2,1, Huber(1.35), 90 % of the
#: rows linear at W = 0: proximal Newton 0.07 s at alpha_max / 10, 1.1, 1.4 and 8.8 s at
#: alpha_max / 20, / 100 and / 1000 (19 to 155 Newton steps, the rows' curvature zero on the
#: pieces); the interior point 0.3 to 0.5 s at each.)
LAD_ALPHA = 0.05


def lad_regime(data, datafit: Datafit, penalty: Penalty, alpha: float, ref) -> bool:
    """Whether a Huber problem (:func:`huber_rows`) is in its least-absolute-deviation
    regime: ``alpha <= LAD_ALPHA * alpha_max`` and at least :data:`LAD_SHARE` of the Huber
    rows' weight beyond ``delta`` at W = 0 (the reference's scores ``ref.f0``)."""
    top = getattr(penalty, "alpha_max", None)
    if ref is None or top is None or not huber_rows(datafit) or np.ndim(alpha):
        return False
    try:
        if not alpha <= LAD_ALPHA * top(ref.G0):
            return False
    except ValueError:  # (no alpha gives W = 0)
        return False
    y, c = np.asarray(data.y, dtype=np.float64), np.asarray(data.c, dtype=np.float64)
    pieces, quad = _row_kinds(datafit, len(y))
    huber = pieces & quad
    _, hi = dual_box(datafit, y)  # (a Huber row's delta)
    linear = huber & (np.abs(y - np.asarray(ref.f0)) > hi)
    total = float(np.dot(c, huber))
    return total > 0 and float(np.dot(c, linear)) >= LAD_SHARE * total


def _row_kinds(datafit: Datafit, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the rows with linear pieces (pinball, Huber) and of the rows with a quadratic
    cost (squared, Huber): a Huber row is in both."""
    if not getattr(datafit, "parts", None):
        huber = isinstance(datafit, Huber)
        return np.full(n, huber or datafit.piecewise_linear), np.full(n, huber)
    pieces, quad = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for part, rows in zip(datafit.parts, getattr(datafit, "_rows", None) or (), strict=False):
        huber = isinstance(part, Huber)
        pieces[rows] = huber or part.piecewise_linear
        quad[rows] = huber or part.quadratic
    return pieces, quad


class _Penalty:
    """The penalty's parts in the cone program: the cost ``a`` of the norms ``s_j`` (0: no
    cones; with ``rowmax`` the bounds ``|W_jt| <= s_j`` of L1,inf, else ``||W_j|| <= s_j``),
    the quadratic's diagonal ``q0`` and its pull ``q1`` towards the mean task
    (``P = q0 I - q1 11^T`` over the tasks of each feature), on the rows ``rows`` (bool, p):
    the others are free (left unpenalized by the per-feature terms: no cone, no quadratic;
    their coefficients enter the Newton blocks as the intercept does)."""

    def __init__(self, penalty: Penalty, alpha: float, T: int, p: int):
        form = penalty.cone_program
        base = getattr(penalty, "base", penalty)  # (PartlyPenalized: its base's parts)
        rows = getattr(penalty, "penalized", None)
        self.rows = np.ones(p, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
        self.rowmax = form == "row_max" and alpha > 0  # (|W_jt| <= s_j: linear cones)
        if form == "row_norm":
            rho = float(base.l1_ratio)
            self.a, self.q0, self.q1 = alpha * rho, alpha * (1.0 - rho), 0.0
        elif form == "row_max":
            self.a, self.q0, self.q1 = alpha, 0.0, 0.0
        else:
            self.a, self.q0, self.q1 = 0.0, alpha * (1.0 + float(base.ridge)), alpha / T
        self.cone = self.a > 0 and not self.rowmax  # (a second-order cone per row)

    def times(self, W: np.ndarray) -> np.ndarray:
        """``P W`` (p x T)."""
        out = self.q0 * W
        if self.q1:
            out -= self.q1 * W.sum(axis=1, keepdims=True)
        return out if self.rows.all() else np.where(self.rows[:, None], out, 0.0)

    def diagonal(self) -> np.ndarray:
        """``P``'s diagonal per feature (p,): ``q0`` on the penalized rows."""
        return np.where(self.rows, self.q0, 0.0)

    def widened(self, A: np.ndarray) -> np.ndarray:
        """A cone's array on the penalized rows (k, ...) on all p rows, zero on the free."""
        if self.rows.all():
            return A
        out = np.zeros((self.rows.size,) + A.shape[1:])
        out[self.rows] = A
        return out


class _NewtonMatrix:
    """One iteration's reduced Newton matrix, factored: the tasks' blocks inverted (after a
    symmetric scaling to unit diagonal) and the features' couplings ``V`` (p, T, m) with
    weights ``gam`` (p, m) in a Woodbury capacitance."""

    def __init__(self, data, Dinv, dW, V, gam, fit_intercept: bool):
        p, T = data.n_features, data.n_tasks
        k = p + 1 if fit_intercept else p
        Q = np.zeros((T, k, k))
        Q[:, :p, :p] = task_grams(data, Dinv, np.zeros((p, T)), np.arange(p))
        if fit_intercept:
            Q[:, :p, p] = Q[:, p, :p] = np.asarray(data.adjoint(Dinv)).T
            Q[:, p, p] = np.asarray(data.task_sums(Dinv))
        diag = np.zeros((T, k))  # (dW per feature (p,) or per entry (p, T))
        diag[:, :p] = np.broadcast_to(dW.T if dW.ndim == 2 else dW, (T, p))
        # (a relative 1e-13 on the diagonal: collinear columns leave the blocks singular; a
        # free column that is zero in a task, on its block's largest diagonal)
        dq = np.einsum("tii->ti", Q) + diag
        top = np.maximum(dq.max(axis=1, keepdims=True, initial=0.0), 1e-300)
        self.added = diag + 1e-13 * np.where(dq > 0, dq, top)
        Q[:, np.arange(k), np.arange(k)] += self.added
        d = 1.0 / np.sqrt(np.einsum("tii->ti", Q))
        self.Q, self.p, self.k = Q, p, k
        self.inv = np.linalg.inv(Q * d[:, :, None] * d[:, None, :]) * d[:, :, None] * d[:, None, :]
        self.V, self.gam = V, gam
        if V is not None:
            m = V.shape[2]
            M = np.einsum("jta,tjl,ltb->jalb", V, self.inv[:, :p, :p], V).reshape(p * m, p * m)
            self.cap = np.eye(p * m) + gam.reshape(-1, 1) * M

    def products(self, X: np.ndarray) -> np.ndarray:
        """``tilde X_t^T D_t tilde X_t x_t`` for each task (the blocks without the added
        diagonal)."""
        return np.einsum("tij,tj->ti", self.Q, X) - self.added * X

    def times(self, X: np.ndarray) -> np.ndarray:
        """The matrix times X (T, k)."""
        out = np.einsum("tij,tj->ti", self.Q, X)
        if self.V is not None:
            u = np.einsum("jta,tj->ja", self.V, X[:, :self.p])
            out[:, :self.p] += np.einsum("jta,ja->tj", self.V, self.gam * u)
        return out

    def solve(self, R: np.ndarray, refine: int = 3) -> np.ndarray:
        """The solution for R (T, k), refined while its residual is above ``1e-12 |R|``."""
        X = self._woodbury(R)
        size = float(np.abs(R).max(initial=0.0))
        for _ in range(refine):
            res = R - self.times(X)
            if float(np.abs(res).max(initial=0.0)) <= 1e-12 * size:
                break
            X += self._woodbury(res)
        return X

    def _woodbury(self, R: np.ndarray) -> np.ndarray:
        Y = np.einsum("tij,tj->ti", self.inv, R)
        if self.V is None:
            return Y
        u = np.einsum("jta,tj->ja", self.V, Y[:, :self.p])
        c = np.linalg.solve(self.cap, (self.gam * u).reshape(-1)).reshape(u.shape)
        Z = np.zeros_like(R)
        Z[:, :self.p] = np.einsum("jta,ja->tj", self.V, c)
        return Y - np.einsum("tij,tj->ti", self.inv, Z)


class _Iterate:
    """The primal ``(W, b, r+, r-, r, s, e+, e-)`` and dual ``(lambda, z+, z-, zs, zW, ze+,
    ze-)`` variables (``r``: the residuals of the squared rows of a loss list; ``e``: the
    slacks ``s_j -+ W_jt`` of L1,inf's bounds)."""

    PRIMAL = ("W", "b", "rp", "rm", "rq", "s", "ep", "em")
    DUAL = ("lam", "zp", "zm", "zs", "zW", "zep", "zem")

    def step(self, d: dict, tx: float, tz: float) -> None:
        for name in self.PRIMAL + self.DUAL:
            if name in d:
                setattr(self, name, getattr(self, name) + (tx if name in self.PRIMAL
                                                           else tz) * d[name])

    def gap(self, live: np.ndarray, cone: bool, d: dict | None = None, tx: float = 0.0,
            tz: float = 0.0, rows: np.ndarray | None = None) -> float:
        """The complementarity gap ``x^T z``, or where the step ``(tx, tz)`` along ``d``
        would take it (the cones on the penalized ``rows``)."""
        def at(name, t):
            return getattr(self, name) + t * d[name] if d is not None else getattr(self, name)
        out = float(np.dot(live, at("rp", tx) * at("zp", tz) + at("rm", tx) * at("zm", tz)))
        if cone:
            W = at("W", tx)
            out += float(np.dot(at("s", tx), at("zs", tz))
                         + np.vdot(W if rows is None else W[rows], at("zW", tz)))
        if getattr(self, "ep", None) is not None:
            out += float(np.vdot(at("ep", tx), at("zep", tz)) + np.vdot(at("em", tx),
                                                                       at("zem", tz)))
        return out


class _Newton:
    """One iteration's Newton system at the iterate: the residuals of the equalities and of
    the dual's stationarity, the rows' parts and the cones' scaling, and the reduced matrix;
    :meth:`direction` solves it for a right-hand side of the complementarity."""

    def __init__(self, data, pen: _Penalty, it: _Iterate, y, cu, cl, rows, fit_intercept):
        p, T = data.n_features, data.n_tasks
        live, quad, cq = rows  # the rows with linear pieces, with a quadratic, its costs
        self.data, self.pen, self.it, self.E = data, pen, it, fit_intercept
        self.live, self.quad, self.cq = live, quad, cq
        self.rd = {"p": cu - it.lam - it.zp, "m": cl + it.lam - it.zm,
                   "q": np.where(quad, cq * it.rq - it.lam, 0.0),
                   "W": pen.times(it.W) - np.asarray(data.adjoint(it.lam))}
        self.r_p = np.where(live | quad, y - np.asarray(data.linear(it.W, it.b)) - it.rp
                            + it.rm - it.rq, 0.0)
        self.rd_b = -np.asarray(data.task_sums(it.lam)) if fit_intercept else None
        if pen.cone:
            self.rd["W"] = self.rd["W"] - pen.widened(it.zW)
            self.rd["s"] = pen.a - it.zs
        if pen.rowmax:  # stationarity in W and s, and the slacks' equalities
            self.rd["W"] = self.rd["W"] + it.zep - it.zem
            self.rd["s"] = pen.a - np.sum(it.zep + it.zem, axis=1)
            self.re_p = it.s[:, None] - it.W - it.ep
            self.re_m = it.s[:, None] + it.W - it.em
            self.Sp, self.Sm = it.zep / it.ep, it.zem / it.em
        self.Hp, self.Hm = it.zp / it.rp, it.zm / it.rm
        # a row's pieces in series: 1 / D = 1/H+ + 1/H- (linear pieces) + 1/cq (quadratic)
        self.cqi = np.where(quad, 1.0 / np.where(quad, cq, 1.0), 0.0)
        inv = np.where(live, 1.0 / self.Hp + 1.0 / self.Hm, 0.0) + self.cqi
        self.Dinv = np.where(live | quad, 1.0 / np.where(live | quad, inv, 1.0), 0.0)
        dW = pen.diagonal()
        V, gam = [], []
        if pen.cone:  # (on the penalized rows, widened with zeros: a free row has no cone)
            self.eta, self.w0, self.w1 = cones.scaling(it.s, it.W[pen.rows], it.zs, it.zW)
            self.e2 = self.eta * self.eta
            self.h = 2.0 * self.w0 * self.w0 - 1.0  # (h / e2: the norm's own curvature)
            dW = dW + pen.widened(1.0 / self.e2)
            V.append(pen.widened(self.w1))
            gam.append(pen.widened(-2.0 / (self.h * self.e2)))
        if pen.rowmax:  # s eliminated: a diagonal per entry, a rank-one term per feature
            dW = dW[:, None] + self.Sp + self.Sm
            self.v = self.Sm - self.Sp
            self.dsum = np.sum(self.Sp + self.Sm, axis=1)
            V.append(self.v)
            gam.append(-1.0 / self.dsum)
        if pen.q1:
            V.append(pen.widened(np.ones((int(pen.rows.sum()), T))))
            gam.append(np.full(p, -pen.q1))
        self.affine = None  # (the affine-scaling direction, once computed)
        self.K = _NewtonMatrix(data, self.Dinv, dW, np.stack(V, axis=2) if V else None,
                               np.stack(gam, axis=1) if gam else None, fit_intercept)

    def scaled(self, u0, u1, inverse: bool = False):
        """``W u`` (or ``W^{-1} u``) in each cone."""
        if inverse:
            a0, a1 = cones.p_inverse(self.w0, self.w1, u0, u1)
            return a0 / self.eta, a1 / self.eta[:, None]
        a0, a1 = cones.p_times(self.w0, self.w1, u0, u1)
        return a0 * self.eta, a1 * self.eta[:, None]

    def direction(self, cp, cm, cs=None) -> dict:
        """The Newton direction for the complementarity right-hand sides scaled back
        (``W^{-1} q``): ``cp``, ``cm`` for the rows' parts, ``cs`` the cones'."""
        data, pen, rd, live = self.data, self.pen, self.rd, self.live
        p, T = data.n_features, data.n_tasks
        gp, gm = cp - rd["p"], cm - rd["m"]
        rho = (self.r_p + rd["q"] * self.cqi
               + np.where(live, gm / self.Hm - gp / self.Hp, 0.0))
        gW = -rd["W"]
        if pen.cone:
            gs = cs[0] - rd["s"]
            gW = gW + pen.widened(cs[1] + (2.0 * self.w0 * gs / self.h)[:, None] * self.w1)
        if pen.rowmax:  # cs: the bounds' complementarity right-hand sides (e+, e-)
            it = self.it
            hW = gW - cs[0] / it.ep + self.Sp * self.re_p + cs[1] / it.em - self.Sm * self.re_m
            hs = -rd["s"] + np.sum(cs[0] / it.ep + cs[1] / it.em - self.Sp * self.re_p
                                   - self.Sm * self.re_m, axis=1)
            gW = hW - self.v * (hs / self.dsum)[:, None]
        R = np.zeros((T, self.K.k))
        Grho = np.asarray(data.adjoint(self.Dinv * rho))
        R[:, :p] = (gW + Grho).T
        if self.E:
            R[:, p] = np.asarray(data.task_sums(self.Dinv * rho)) - self.rd_b
        step = self.K.solve(R)
        d = {"W": step[:, :p].T, "b": step[:, p] if self.E else np.zeros(T)}
        d["lam"] = self.Dinv * (rho - np.asarray(data.linear(d["W"], d["b"])))
        d["rp"] = np.where(live, (gp + d["lam"]) / self.Hp, 0.0)
        d["rm"] = np.where(live, (gm - d["lam"]) / self.Hm, 0.0)
        d["zp"] = np.where(live, rd["p"] - d["lam"], 0.0)
        d["zm"] = np.where(live, rd["m"] + d["lam"], 0.0)
        if self.quad.any():
            d["rq"] = (d["lam"] - rd["q"]) * self.cqi
        if pen.cone:
            dWc = d["W"][pen.rows]
            d["s"] = (self.e2 * gs + 2.0 * self.w0 * np.einsum("jt,jt->j", self.w1, dWc)
                      ) / self.h
            d["zs"] = rd["s"].copy()
            # X^T dlam = X^T D rho - X^T D tilde X step: from the blocks, no pass
            d["zW"] = (rd["W"] + pen.times(d["W"]) - (Grho - self.K.products(step)[:, :p].T)
                       )[pen.rows]
        if pen.rowmax:
            it = self.it
            d["s"] = (hs - np.sum(self.v * d["W"], axis=1)) / self.dsum
            d["ep"] = d["s"][:, None] - d["W"] + self.re_p
            d["em"] = d["s"][:, None] + d["W"] + self.re_m
            d["zep"] = cs[0] / it.ep - self.Sp * d["ep"]
            d["zem"] = cs[1] / it.em - self.Sm * d["em"]
            # the dual's stationarity in W, -dG + dze+ - dze- = -rd_W, made exact (dG from
            # the blocks: an identity whatever the solve's rounding) by moving its residual
            # into the bounds' duals, half each way (their sum, s's equation, unchanged):
            # near the end the reduced matrix loses digits, and the rounding goes to the
            # complementarity, which the next steps correct, not to the dual's feasibility
            dG = Grho - self.K.products(step)[:, :p].T
            err = dG - rd["W"] - (d["zep"] - d["zem"])
            d["zep"], d["zem"] = d["zep"] + 0.5 * err, d["zem"] - 0.5 * err
        return d

    def longest(self, d: dict, split: bool) -> tuple[float, float]:
        """The longest steps inside the cones of the primal and of the dual (one for both
        unless ``split``)."""
        it = self.it
        tx = min(cones.longest_ray_step(it.rp, d["rp"]), cones.longest_ray_step(it.rm, d["rm"]))
        tz = min(cones.longest_ray_step(it.zp, d["zp"]), cones.longest_ray_step(it.zm, d["zm"]))
        if self.pen.cone:
            rows = self.pen.rows
            tx = min(tx, cones.longest_step(it.s, it.W[rows], d["s"], d["W"][rows]))
            tz = min(tz, cones.longest_step(it.zs, it.zW, d["zs"], d["zW"]))
        if self.pen.rowmax:
            tx = min(tx, cones.longest_ray_step(it.ep.ravel(), d["ep"].ravel()),
                     cones.longest_ray_step(it.em.ravel(), d["em"].ravel()))
            tz = min(tz, cones.longest_ray_step(it.zep.ravel(), d["zep"].ravel()),
                     cones.longest_ray_step(it.zem.ravel(), d["zem"].ravel()))
        return (tx, tz) if split else (min(tx, tz),) * 2

    def predictor_corrector(self, mu: float, gap: float, split: bool,
                            floor: float = 0.0) -> dict | None:
        """Mehrotra's direction: the affine-scaling one (``W^{-1} q = -z``), then the
        corrector aimed at ``sigma mu``, ``sigma`` the cube of the gap ratio the affine step
        reaches (at least ``floor``), less the affine step's second-order term. None if it is
        not finite."""
        it, pen = self.it, self.pen
        if self.affine is None:  # (one per iterate: a centering retry reuses it)
            self.affine = self.direction(-it.zp, -it.zm, (-it.zs, -it.zW) if pen.cone else (
                (-it.ep * it.zep, -it.em * it.zem) if pen.rowmax else None))
        aff = self.affine
        tx, tz = (min(1.0, t) for t in self.longest(aff, split))
        sigma = max(min(max(it.gap(self.live, pen.cone, aff, tx, tz, pen.rows) / gap, 0.0),
                        1.0) ** 3, floor)
        sm = sigma * mu
        cp = (sm - it.rp * it.zp - aff["rp"] * aff["zp"]) / it.rp
        cm = (sm - it.rm * it.zm - aff["rm"] * aff["zm"]) / it.rm
        cs = None
        if pen.cone:
            l0, l1 = self.scaled(it.zs, it.zW)  # the scaled point W z = W^{-1} x
            x0, x1 = cones.product(*self.scaled(aff["s"], aff["W"][pen.rows], inverse=True),
                                   *self.scaled(aff["zs"], aff["zW"]))
            ll0, ll1 = cones.product(l0, l1, l0, l1)
            cs = self.scaled(*cones.divide(l0, l1, sm - ll0 - x0, -ll1 - x1), inverse=True)
        if pen.rowmax:
            cs = (sm - it.ep * it.zep - aff["ep"] * aff["zep"],
                  sm - it.em * it.zem - aff["em"] * aff["zem"])
        d = self.direction(cp, cm, cs)
        finite = all(np.all(np.isfinite(v)) for v in (*aff.values(), *d.values()))
        return d if finite else None


def interior_point(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                   W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                   tol: float, max_iter: int = 200, verbose: int = 0) -> SolverResult:
    """Solve the pinball loss with a cone-program penalty (``penalty.cone_program`` in
    :data:`CONE_FORMS`) by a primal-dual interior-point method, certified at its last point
    by the duality gap (or KKT residual) of the problem itself. The warm start ``(W, b)``
    only places the first point: an interior point starts inside the cones. It stops at
    ``max_iter``, where the gap stalls (three iterations without a tenth off), or where the
    directions are not finite, and says so by its certificate."""
    p, T = data.n_features, data.n_tasks
    y = np.asarray(data.y, dtype=np.float64)
    c = np.asarray(data.c, dtype=np.float64)
    # the rows with linear pieces (pinball, Huber) and with a quadratic cost (squared, Huber);
    # rows of weight 0 are held still, out of sums
    live, quad = (kind & (c > 0) for kind in _row_kinds(datafit, len(y)))
    sq = quad & ~live  # (the squared rows of a loss list: no linear pieces)
    lo, hi = dual_box(datafit, y)  # theta in [lo, hi]: the slopes tau - 1 and tau
    scale = 1.0 / max(float(np.max(c, initial=0.0)), 1e-300)  # costs of order one
    with np.errstate(invalid="ignore", over="ignore"):  # (the squared rows' box is open)
        cu = np.where(live, scale * c * hi, 1.0)  # the costs of r+ and r-
        cl = np.where(live, -scale * c * lo, 1.0)
    pen = _Penalty(penalty, scale * float(alpha), T, p)
    E = fit_intercept
    it = _Iterate()
    it.W = np.array(W, dtype=np.float64)
    it.b = np.array(b, dtype=np.float64) if E else np.zeros(T)

    # ---- the first point: the warm start's residuals (its intercepts the pinball loss's
    # for W) split into parts that put every complementarity product at about mu0
    f = np.asarray(data.linear(it.W, it.b))
    if E and isinstance(datafit, Quantile):
        pinball_intercepts(data, datafit.quantile, f, it.b)  # (in place on f and b)
    r = y - f
    n_live = max(int(live.sum()), 1)
    mu0 = max(float(np.dot(c, np.abs(r))) * scale / n_live,
              1e-8 * (float(np.max(np.abs(y), initial=0.0)) + 1.0))
    delta = 2.0 * mu0 / (cu + cl)
    cq = scale * c  # the quadratic's curvature (squared and Huber rows)
    # the quadratic part of a row: a squared row's whole residual; a Huber row's within half
    # its box (lambda = cq rq stays inside, z+ and z- at least half the box), the rest on its
    # linear pieces (from r+ = r- = delta alone, Huber(7.7) on School stalled: the residuals
    # within delta start on the pieces and the first steps are a tenth of a step long)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(quad & live, 0.25 * (cu + cl) / np.where(quad, cq, 1.0), 0.0)
    it.rq = np.where(sq, r, np.clip(r, -half, half))
    it.rp, it.rm = np.maximum(r - it.rq, 0.0) + delta, np.maximum(it.rq - r, 0.0) + delta
    it.rp, it.rm = np.where(sq, 1.0, it.rp), np.where(sq, 1.0, it.rm)
    # (inside the box: the dual is feasible but for the cones and the intercepts' sums)
    # (the pinball rows' duals at the middle of their box [-cl, cu], z+ = z- = (cu + cl) / 2:
    # at lambda = 0 a quantile far from 1/2 starts them a tenth of the box from one end, and
    # the iterates lose the cones' centrality within a few steps: School + L2,1 at q = 0.1
    # stalled 1.2 % above the optimum after 6 steps, from the middle 20 steps certify)
    it.lam = np.where(quad, cq * it.rq, np.where(live, 0.5 * (cu - cl), 0.0))
    it.zp, it.zm = np.where(live, cu - it.lam, cu), np.where(live, cl + it.lam, cl)
    nu = 2 * n_live
    if pen.cone:  # (on the penalized rows)
        it.zW = pen.times(it.W)[pen.rows]
        it.zs = np.maximum(pen.a, 1.5 * np.linalg.norm(it.zW, axis=1))
        it.s = np.linalg.norm(it.W[pen.rows], axis=1) + mu0 / it.zs
        nu += int(pen.rows.sum())
    it.ep = it.em = None
    if pen.rowmax:  # each bound's dual a / (2T): the dual's stationarity met at lambda = 0
        it.zep = it.zem = np.full((p, T), pen.a / (2 * T))
        it.s = np.abs(it.W).max(axis=1, initial=0.0) + mu0 / it.zep[:, 0]
        it.ep, it.em = it.s[:, None] - it.W, it.s[:, None] + it.W
        nu += 2 * p * T
    # (a linear program: the primal and dual steps apart)
    split = not (pen.q0 or pen.q1 or quad.any())
    target = tol * scale * max(float(ref.P0), 1e-300)

    def certify():
        theta = np.where(live | quad, np.clip(it.lam / (scale * np.where(c > 0, c, 1.0)),
                                              lo, hi), 0.0)
        cert, b_opt = saddle_certificate(data, datafit, penalty, alpha, it.W, it.b, theta,
                                         lo, hi, fit_intercept, ref)
        return cert, (b_opt if E else np.zeros(T)), theta

    n_iter, best, stalled, first = 0, np.inf, 0, None
    while n_iter < max_iter:
        n_iter += 1
        gap = it.gap(live, pen.cone, rows=pen.rows)
        first = gap if first is None else first
        if verbose:
            print(f"interior point {n_iter}: gap / P0 {gap / target * tol:.3e}")
        stalled = stalled + 1 if gap > 0.9 * best else 0
        best = min(best, gap)
        # (below 1e-14 of the first gap the rounding of the costs has the last word: a P0
        # of 0, constant targets, leaves tol * P0 out of reach)
        # (a stall near the end is rounding; far from it, a few short steps are the iterate
        # regaining centrality: Huber(1.35) on School at alpha_max / 30 took three steps of a
        # few per cent before it certified in 14)
        if gap <= max(target, 1e-14 * first) or stalled >= (3 if gap <= STALL * first else 12):
            cert, b_opt, theta = certify()
            if cert.converged(tol) or stalled >= 3:
                return _with_zero_rows(data, datafit, penalty, alpha, it.W, b_opt, theta,
                                       n_iter, cert, lo, hi, fit_intercept, ref, tol)
        # (a breakdown near the end, a cone's scaled point at 0, shows as directions that
        # are not finite: the fit stops at its last point, with its certificate)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = _Newton(data, pen, it, y, cu, cl, (live, quad, cq), E)
            d = newton.predictor_corrector(gap / nu, gap, split)
            if d is None:
                break
            tx, tz = (min(1.0, STEP * t) for t in newton.longest(d, split))
            if min(tx, tz) < SHORT:
                # a short step: the iterate has lost centrality (a few cones' products far
                # above mu); a direction aimed at CENTER * mu at least restores it
                centered = newton.predictor_corrector(gap / nu, gap, split, CENTER)
                if centered is not None:
                    d = centered
                    tx, tz = (min(1.0, STEP * t) for t in newton.longest(d, split))
        it.step(d, tx, tz)
    cert, b_opt, theta = certify()
    return _with_zero_rows(data, datafit, penalty, alpha, it.W, b_opt, theta, n_iter, cert,
                           lo, hi, fit_intercept, ref, tol)


#: A row of W whose largest effect on a prediction, ``max_t |W_jt| max_r |x_rj|``, is below
#: this times ``tol`` times the targets' largest magnitude is taken as zero (see
#: :func:`_with_zero_rows`).
NEGLIGIBLE = 1e-3


def _with_zero_rows(data, datafit, penalty, alpha, W, b, theta, n_iter, cert, lo, hi,
                    fit_intercept, ref, tol) -> SolverResult:
    """The result, with the rows an interior point leaves at the scale of ``mu`` set to zero.

    An interior point ends strictly inside the cones: a row that is zero at the optimum ends
    at about ``mu / z_s`` (1e-11 to 1e-7 on School), not at 0, and the support a user reads
    from ``coef_`` would be every feature. Rows whose effect on every prediction is
    negligible (:data:`NEGLIGIBLE`) are set to zero and the point certified again; the zeroed
    point is kept only where its own certificate meets ``tol`` as well."""
    converged = cert.converged(tol)
    if converged and np.any(W):
        X = data.X  # (each column's largest magnitude from its max and min: no copy of X)
        top, bottom = X.max(axis=0), X.min(axis=0)
        if sp.issparse(X):
            top, bottom = top.toarray().ravel(), bottom.toarray().ravel()
        col = np.maximum(np.asarray(top, dtype=np.float64), -np.asarray(bottom, np.float64))
        effect = np.abs(W).max(axis=1, initial=0.0) * col
        # (below tol 1e-8 the iterate's rows at the scale of mu stand above tol itself: the
        # candidates are read at 1e-8, the certificate of the zeroed point decides)
        tiny = effect <= NEGLIGIBLE * max(tol, 1e-8) * max(
            float(np.max(np.abs(data.y), initial=0.0)), 1e-300)
        if np.any(W[tiny]):
            Z = W.copy()
            Z[tiny] = 0.0
            zcert, zb = saddle_certificate(data, datafit, penalty, alpha, Z, b, theta, lo, hi,
                                           fit_intercept, ref)
            if zcert.converged(tol):
                return SolverResult(Z, zb, n_iter, zcert, True, Z, theta=theta)
    return SolverResult(W, b, n_iter, cert, converged, W, theta=theta)
