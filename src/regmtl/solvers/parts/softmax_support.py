r"""Newton steps on the support for the multinomial (softmax) loss.

Once the proximal Newton steps of :mod:`~regmtl.solvers.parts.softmax_newton` have found which rows
(or entries) of W are nonzero, the objective restricted to them is smooth: with the support
``S`` (the nonzero rows for a penalty of rows, the nonzero entries for one of entries),

.. math::

    f(V, b) = \sum_i c_i \big(\log \textstyle\sum_k e^{F_{ik}} - y_i^T F_i\big)
    + l_1 \sum_{j \in S} \|v_j\| + \tfrac{l_2}{2} \|V\|_F^2, \qquad F = X V + b,

is twice differentiable there, its Hessian acting on a step ``(D, d)`` as

.. math::

    H[D, d] = X^T \big(c \odot (P \odot U - P\,\mathrm{diag}(P U^T))\big)
    + \frac{l_1}{\|v_j\|}\big(D_j - \hat v_j \hat v_j^T D_j\big) + l_2 D_j,
    \qquad U = X D + d

(each row's own task's classes; the penalty's term row by row, none for a penalty of
entries). Newton's method on ``f`` restricted to ``S`` converges quadratically where
coordinate descent on each quadratic model crawls along correlated columns (pixels): the
Newton system is solved by conjugate gradients with Hessian-vector products through the data
(two products with the support's columns each), preconditioned by each row's ``T x T``
block (its curvature and the penalty's), to the forcing tolerance
``min(1/2, sqrt(||g|| / ||g_0||)) ||g||`` (Eisenstat & Walker); the step is taken with a
backtracking search on ``f``. A row the optimum zeros, or a feature outside ``S`` that
should enter, shows as a step that does not bring the certificate down: the caller goes back
to the proximal steps then.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CG_MAX", "support_step"]

#: Conjugate-gradient iterations of one Newton system at most.
CG_MAX = 200


class _System:
    """The Newton system of ``f`` on the support: its Hessian-vector product and its
    preconditioner, on vectors packed as ``(D on the support's free entries, d)``."""

    def __init__(self, Xs, lay, P, V, mask, l1, l2, rows, curv, fit_b):
        self.Xs, self.lay, self.P, self.mask, self.fit_b = Xs, lay, P, mask, fit_b
        self.shape, T = V.shape, V.shape[1]
        self.l2, self.rows = l2, rows
        Hent, Hs, _, Qb, lamb = curv
        if rows:  # each row's T x T block: its curvature and the norm's
            norms = np.linalg.norm(V, axis=1)
            self.vhat = V / norms[:, None]
            self.scale = l1 / norms
            B = Hs + self.scale[:, None, None] * (np.eye(T)[None] - np.einsum(
                "jt,js->jts", self.vhat, self.vhat))
            ridge = l2 + 1e-10 * max(float(Hent.max(initial=0.0)), 1e-300)
            B += ridge * np.eye(T)[None]
            self.Binv = np.linalg.inv(B)
        else:
            self.dinv = np.where(mask, 1.0 / np.maximum(Hent + l2, 1e-300), 0.0)
        cut = 1e-10 * max(float(lamb.max(initial=0.0)), 1e-300)
        self.Hb_pinv = (Qb * np.where(lamb > cut, 1.0 / np.where(lamb > cut, lamb, 1.0), 0.0)
                        ) @ Qb.T if fit_b else None

    def unpack(self, x):
        n = self.shape[0] * self.shape[1]
        D = x[:n].reshape(self.shape)
        return D, (x[n:] if self.fit_b else np.zeros(self.shape[1]))

    def pack(self, D, d):
        return np.concatenate([(D * self.mask).ravel(), d if self.fit_b else []])

    def hessian(self, x):
        D, d = self.unpack(x)
        lay, P = self.lay, self.P
        U = lay.scores(self.Xs, D, d, 0.0)
        PU = P * U
        HU = lay.C[:, None] * (PU - P * PU.sum(axis=1, keepdims=True))
        HD, Hd = lay.adjoint(self.Xs, HU, self.shape[1])
        if self.rows:
            HD += self.scale[:, None] * (D - self.vhat * np.sum(self.vhat * D, axis=1,
                                                                 keepdims=True))
        HD += self.l2 * D
        return self.pack(HD, Hd)

    def precondition(self, x):
        D, d = self.unpack(x)
        M = np.einsum("jts,js->jt", self.Binv, D) if self.rows else self.dinv * D
        return self.pack(M, self.Hb_pinv @ d if self.fit_b else d)


def _conjugate_gradient(system: _System, g: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    """Preconditioned conjugate gradients on ``H x = -g`` to ``||H x + g|| <= tol``."""
    x = np.zeros_like(g)
    r = -g
    z = system.precondition(r)
    p, rz = z.copy(), float(r @ z)
    for k in range(1, CG_MAX + 1):
        Hp = system.hessian(p)
        pHp = float(p @ Hp)
        if pHp <= 0.0:  # (flat along p: the step so far)
            return x, k
        a = rz / pHp
        x += a * p
        r -= a * Hp
        if np.linalg.norm(r) <= tol:
            return x, k
        z = system.precondition(r)
        rz_next = float(r @ z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    return x, CG_MAX


def support_step(X, lay, V, bv, F, P, obj, G, gb, penalty, alpha, l1, l2, rows, fit_b,
                 curv, support, forcing):
    """One Newton step of ``f`` restricted to the rows ``support`` of ``V`` (their nonzero
    entries for a penalty of entries), from the point ``(V, bv)`` with scores ``F``,
    probabilities ``P``, objective ``obj`` and minus the data term's gradient ``(G, gb)``;
    ``curv`` the support's curvatures (``softmax_newton._model_curvatures`` without their
    eigenvectors), ``forcing`` the residual the conjugate gradients leave, relative to the
    gradient. Returns ``(V, bv, F, P, obj, step, CG iterations)``, the point unchanged with
    step 0 where no step decreases the objective."""
    Vs = V[support]
    mask = np.ones(Vs.shape, dtype=bool) if rows else Vs != 0.0
    Xs = np.asfortranarray(X[:, support])
    system = _System(Xs, lay, P, Vs, mask, l1, l2, rows, curv, fit_b)
    grad_pen = l2 * Vs + (l1 * system.vhat if rows else l1 * np.sign(Vs))
    g = system.pack(-G[support] + grad_pen, -gb)
    g_norm = float(np.linalg.norm(g))
    if g_norm == 0.0:
        return V, bv, F, P, obj, 0.0, 0
    x, iters = _conjugate_gradient(system, g, forcing * g_norm)
    D, d = system.unpack(x)
    dF = lay.scores(Xs, D, d, 0.0)
    slope = float(g @ x)
    if not slope < 0.0:
        return V, bv, F, P, obj, 0.0, iters
    t, Vt = 1.0, V.copy()
    for _ in range(30):  # backtracking: Armijo's sufficient decrease of f
        St = Vs + t * D
        # a row (entry) the step takes through zero stops there: the kink of its norm,
        # where the optimum of a row leaving the support lies
        crossed = (np.sum(St * Vs, axis=1) <= 0.0)[:, None] if rows else St * Vs <= 0.0
        St = np.where(crossed, 0.0, St)
        Vt[support] = St
        Ft = F + t * dF if not crossed.any() else F + lay.scores(Xs, St - Vs, t * d, 0.0)
        value_t, P_t = lay.loss(Ft)
        obj_t = value_t + penalty.value(Vt, alpha)
        if obj_t <= obj + 1e-4 * t * slope:
            return Vt, bv + t * d, Ft, P_t, obj_t, t, iters
        t *= 0.5
    return V, bv, F, P, obj, 0.0, iters
