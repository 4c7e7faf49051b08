r"""Accelerated proximal gradient (FISTA) with backtracking and adaptive restart.

Works with any penalty that has a ``prox``. The smooth part is the data term in ``(W, b)``; the
intercepts ``b`` take plain gradient steps (their prox is the identity) and are minimized exactly
before each certificate. With intercepts the iteration runs in centered coordinates,
``f_r = (x_r - xm_t) . w_t + b'_t`` with ``xm_t`` the task's weighted feature means (an exact
reparametrization, ``b = b' - xm_t . w_t``), which removes the coupling between intercepts and
uncentered features from the curvature. Step: ``1 / L`` with ``L`` started from a
power-iteration estimate of the data term's curvature and doubled until the quadratic upper
bound holds (Beck & Teboulle 2009).
Momentum restarts when it points against the last step (O'Donoghue & Candes 2015).
"""

from __future__ import annotations

import numpy as np

from ..datafits import Datafit
from ..penalties import Penalty
from ..penalties.base import inner
from ..taskdata import TaskData
from .certificates import Reference, certify, fit_intercepts
from .quadratic import TaskQuadratic, is_distributed, quadratic_applies, quadratic_of
from .result import SolverResult
from .reweighted import reweighted_start, worth_trying

__all__ = ["fista", "fista_quadratic", "lipschitz_estimate", "task_quadratic"]

#: Step-size halvings per iteration before the line search gives up (2^-60 of the first step).
_MAX_BACKTRACK = 60


class _CenteredMaps:
    """``linear`` / ``adjoint`` of the design in centered coordinates (xm = 0: plain maps)."""

    def __init__(self, data: TaskData, xm: np.ndarray):
        self.data, self.xm = data, xm

    def linear(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.data.linear(W, b - np.einsum("jt,jt->t", self.xm, W))

    def adjoint(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient pieces: (X_c^T u per task, per-task sums of u)."""
        sums = self.data.task_sums(u)
        return self.data.adjoint(u) - self.xm * sums, sums


def lipschitz_estimate(maps: _CenteredMaps, datafit: Datafit, fit_intercept: bool,
                       n_iter: int = 30) -> float:
    """Power-iteration estimate of the largest eigenvalue of the data term's Hessian bound."""
    data = maps.data
    rng = np.random.default_rng(0)
    V = rng.standard_normal((data.n_features, data.n_tasks))
    v = rng.standard_normal(data.n_tasks) if fit_intercept else np.zeros(data.n_tasks)
    lam = 0.0
    for _ in range(n_iter):
        nrm = np.sqrt(np.vdot(V, V) + np.dot(v, v))
        if nrm == 0:
            return 0.0
        V, v = V / nrm, v / nrm
        V, v = maps.adjoint(data.c * maps.linear(V, v))
        if not fit_intercept:
            v = np.zeros_like(v)
        lam = np.sqrt(np.vdot(V, V) + np.dot(v, v))
    return datafit.curvature * lam


def fista(
    data: TaskData,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
    V0: np.ndarray | None = None,
) -> SolverResult:
    """Accelerated proximal gradient (FISTA) with backtracking and adaptive restart.

    Works with any penalty that has a ``prox``. The iteration runs on the penalty's variable
    ``V`` (``W = penalty.compose(V)``; ``V = W`` for all but the dirty models), in centered
    coordinates when intercepts are fitted; the step ``1 / L`` starts from a power-iteration
    estimate of the data term's curvature and doubles until the quadratic upper bound holds,
    and momentum restarts when it points against the last step. The intercepts are minimized
    exactly before every certificate. The line search is bounded: when no step passes (the
    loss at its rounding floor) the solve stops and says it stalled.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        Any penalty.
    alpha : float
        Overall strength, >= 0.
    W : ndarray of shape (p, T)
        Starting coefficients (lifted by ``penalty.lift`` unless ``V0`` is given).
    b : ndarray of shape (T,)
        Starting intercepts.
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Relative certificate to reach.
    max_iter : int, default=5000
        Iterations.
    check_every : int, default=10
        Iterations between certificates.
    verbose : int, default=0
        Print the certificate at every check when > 0.
    V0 : ndarray, optional
        Starting lifted variable (a warm start of ``Dirty`` or ``SparseLowRank``).

    Returns
    -------
    SolverResult
        The solution at the last certificate, and that certificate.

    See Also
    --------
    regmtl.solvers.solve : Picks the solver.
    regmtl.solvers.bcd : Faster for row-separable penalties.

    References
    ----------
    Beck & Teboulle (2009), "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems", SIAM Journal on Imaging Sciences 2(1); O'Donoghue & Candes (2015),
    "Adaptive restart for accelerated gradient schemes", Foundations of Computational
    Mathematics 15(3).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import fista, reference
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> res = fista(data, rm.Quadratic(), rm.Trace(), 0.1, np.zeros((8, 3)), ref.b0.copy(),
    ...             ref=ref)
    >>> res.converged, res.certificate.kind
    (True, 'duality_gap')
    """
    V = penalty.lift(W) if V0 is None else np.array(V0, dtype=np.float64)
    done = 0
    # Gram form, unless tol is below the rounding floor of the Gram sums (about 2e-13 relative)
    if datafit.code == 0 and quadratic_applies(data) and tol >= 1e-12:
        q = task_quadratic(data, fit_intercept)
        gram_tol = tol * ref.P0 if penalty.has_dual and alpha > 0 else tol  # gap: absolute
        V, done, stalled = fista_quadratic(q, penalty, alpha, V, tol=gram_tol,
                                           max_iter=max_iter, check_every=check_every,
                                           G0_norm=float(np.linalg.norm(ref.G0)),
                                           verbose=verbose)
        W = penalty.compose(V)
        b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
        f = data.linear(W, b)
        cert = certify(data, datafit, penalty, alpha, V, f, fit_intercept, ref,
                       None if penalty.has_dual and alpha > 0 else q.lipschitz())
        if cert.converged(tol) or done >= max_iter or stalled or is_distributed(data):
            return SolverResult(W, b, max(done, 1), cert, cert.converged(tol), V,
                                stalled=stalled and not cert.converged(tol))
        # the Gram sums met tol but the data do not (rounding): finish over the data
    elif datafit.code == 1 and quadratic_applies(data) and tol >= 1e-12:
        from .structured_newton import structured_newton

        return structured_newton(data, datafit, penalty, alpha, V, b, ref=ref,
                                 fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                                 verbose=verbose)
    y, c = data.y, data.c
    xm = data.feature_means() if fit_intercept else np.zeros((data.n_features, data.n_tasks))
    maps = _CenteredMaps(data, xm)
    copies = penalty.spread(np.ones((1, 1))).size  # ||compose||^2: W = P + Q doubles it
    L = max(copies * lipschitz_estimate(maps, datafit, fit_intercept), 1e-12)
    b = b + np.einsum("jt,jt->t", xm, penalty.compose(V))  # intercepts, centered coordinates
    f = maps.linear(penalty.compose(V), b)
    Z, zb, fz = V, b, f  # the extrapolated point and its scores (linear in the point)
    t = 1.0
    cert, best, stalled = None, None, False
    floor = 1e-13 * ref.P0  # the rounding floor of a data-term value
    it, best_rel, best_it = done, np.inf, done
    for it in range(done + 1, max_iter + 1):
        val_z = datafit.value(y, fz, c)
        GW, Gb = maps.adjoint(c * datafit.theta(y, fz))  # minus the gradient
        GV = penalty.spread(GW)
        if not fit_intercept:
            Gb = np.zeros_like(zb)
        for _ in range(_MAX_BACKTRACK):
            V_new = penalty.prox(Z + GV / L, 1.0 / L, alpha)
            b_new = zb + Gb / L
            dV, db = V_new - Z, b_new - zb
            f_new = maps.linear(penalty.compose(V_new), b_new)
            bound = val_z - np.vdot(GV, dV) - np.dot(Gb, db)
            bound += 0.5 * L * (np.vdot(dV, dV) + np.dot(db, db))
            if datafit.value(y, f_new, c) <= bound + 1e-12 * abs(val_z) + floor:
                break
            L *= 2.0
        else:  # no step size passes: the loss sits at the rounding floor
            stalled = True
        step_V, step_b, step_f = V_new - V, b_new - b, f_new - f
        if np.vdot(Z - V_new, step_V) + np.dot(zb - b_new, step_b) > 0:  # restart
            t = 1.0
            Z, zb, fz = V_new, b_new, f_new
        else:
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = (t - 1.0) / t_next
            Z, zb, fz = V_new + mom * step_V, b_new + mom * step_b, f_new + mom * step_f
            t = t_next
        V, b, f = V_new, b_new, f_new
        if it % check_every == 0 or it == max_iter or it == done + 1 or stalled:
            # certify with the intercepts minimized exactly, on copies: the iterates (and
            # with them the momentum) stay untouched
            b_cert, f_cert = b.copy(), f
            if fit_intercept:
                S = datafit.state(y, f)
                fit_intercepts(data, datafit, S, b_cert)
                f_cert = datafit.scores(y, S)
            cert = certify(data, datafit, penalty, alpha, V, f_cert, fit_intercept, ref, L)
            best = (V, b_cert)
            if verbose:
                print(f"[fista] iter {it:5d}  L {L:.3e}  {cert.kind} {cert.relative:.3e}")
            if cert.relative < 0.99 * best_rel:
                best_rel, best_it = cert.relative, it
            # no progress for as long as it took to reach the best: the rounding floor
            stalled = stalled or it - best_it >= max(20 * check_every, best_it - done)
            if cert.converged(tol) or stalled:
                break
    V, b = best
    W = penalty.compose(V)
    b = b - np.einsum("jt,jt->t", xm, W)
    converged = cert.converged(tol)
    return SolverResult(W, b, it, cert, converged, V, stalled=stalled and not converged)


def task_quadratic(data: TaskData, fit_intercept: bool) -> TaskQuadratic:
    """The squared loss of ``data`` in Gram form, built once per TaskData (paths, warm
    starts and the folds' refits reuse it)."""
    key = ("quadratic", bool(fit_intercept))
    if key not in data._cache:
        data._cache[key] = quadratic_of(data, data.c, data.y, fit_intercept)
    return data._cache[key]


def fista_quadratic(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray, *,
                    tol: float, max_iter: int, check_every: int = 10, G0_norm: float = 1.0,
                    verbose: int = 0, reweight: bool = True) -> tuple[np.ndarray, int, bool]:
    """FISTA on ``q(compose(V)) + Omega(V)`` in Gram form, with adaptive restart and a
    certificate from the Gram sums every ``check_every`` iterations (the duality gap plus a
    bound on its rounding, or the proximal-gradient KKT residual relative to ``G0_norm``)
    until it is below ``tol``.

    The step ``1 / L`` starts from a few Lanczos steps (a lower bound of the curvature, see
    :meth:`TaskQuadratic.curvature_estimate`) and grows where the quadratic upper bound fails
    along a step: the curvature along it, ``dW' H dW``, comes from the product ``H W`` the
    iteration forms anyway (``H Z`` is the same combination of the last two), so the search
    costs no product unless it fails. Where proximal gradient crawls (ill-conditioned designs
    at small alpha: still a hundred times above ``tol`` after as many iterations as twenty
    reweighted steps cost), reweighted least squares (``reweight``, see its module) moves the
    iterate once, and the iteration goes on from there. ``tol`` is absolute for a gap,
    relative (as the residual) for a KKT residual. Returns the variable at the last
    certificate, the iterations (reweighted steps included), and whether the certificate
    stalled (no progress for as many iterations as it took to reach its best)."""
    copies = penalty.spread(np.ones((1, 1))).size
    use_gap = penalty.has_dual and alpha > 0
    # the KKT residual is measured at the curvature bound itself (one scale for every check)
    L_cert = None if use_gap else copies * q.lipschitz()
    L = copies * q.curvature_estimate()
    p = q.g.shape[0]
    # twenty reweighted steps cost about 7 p iterations (T solves of size p against T products)
    rescue_at = max(200, 7 * p) if (
        reweight and hasattr(penalty, "inverse_weights") and alpha > 0 and worth_trying(q)
    ) else None
    V = q.settle(V)[0]  # (on task blocks: each block's columns where its rows are)
    start = it = 0
    best_val, best_V, best_it = np.inf, V.copy(), it
    while True:
        Z, V_prev, t = V.copy(), V.copy(), 1.0
        HZ = HV_prev = q.settle(q.matvec(penalty.compose(V)))[0]
        rescued = False
        while it < max_iter:
            it += 1
            GZ = penalty.spread(q.g - HZ)  # minus the gradient at Z
            for _ in range(_MAX_BACKTRACK):
                V = penalty.prox(Z + GZ / L, 1.0 / L, alpha)
                V, HV = q.settle(V, q.matvec(penalty.compose(V)))
                dV = V - Z
                # |dV|^2, dW' H dW and the momentum test, brought home together
                nd, curv, against = q.numbers(inner(dV, dV),
                                              inner(penalty.compose(dV), HV - HZ),
                                              inner(Z - V, V - V_prev))
                if curv <= L * nd * (1.0 + 1e-9):  # the quadratic upper bound holds
                    break
                L = max(1.5 * L, 1.02 * curv / nd)
            step = V - V_prev
            if against > 0:  # momentum against the step: restart
                t, Z, HZ = 1.0, V, HV
            else:
                t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                mom = (t - 1.0) / t_next
                Z, HZ = q.settle(V + mom * step, HV + mom * (HV - HV_prev))
                t = t_next
            V_prev, HV_prev = V, HV
            if it % check_every and it != max_iter and it != start + 1:
                continue
            value = gram_certificate(q, penalty, alpha, V, L_cert, G0_norm, HV)
            if verbose:
                print(f"[fista/gram] iter {it:5d}  certificate {value:.3e}")
            if value < 0.99 * best_val:
                best_val, best_V, best_it = value, V.copy(), it
            if value <= tol or it == max_iter:
                return V, it, False
            if rescue_at is not None and it - start >= rescue_at and value > 100.0 * tol:
                rescued = True
                break
            # stalled: no progress for as long as it took to reach the best (and 20 checks), at
            # the rounding floor of the Gram sums (a gap) -- elsewhere progress is only slow
            if it - best_it >= max(20 * check_every, best_it - start) and (
                    not use_gap or best_val <= 1e3 * q.rounding(*_wh(q, penalty, best_V))):
                return best_V, it, True
        if not rescued:
            return V, it, False
        rescue_at = None  # (once)
        V, steps = reweighted_start(
            q, penalty, alpha, best_V, lambda W: gram_certificate(q, penalty, alpha, W, L_cert,
                                                                  G0_norm) - tol,
            budget=min(20, max(max_iter - it, 0)), patience=3)
        it += steps
        start = it


def gram_certificate(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                     L: float | None, G0_norm: float, HW: np.ndarray | None = None) -> float:
    """The certificate of V from the Gram sums: the duality gap of the residual's dual point
    plus a bound on its rounding (absolute), or else the proximal-gradient KKT residual at the
    step ``1 / L`` relative to ``G0_norm``. ``HW``: ``H compose(V)`` when at hand."""
    W = penalty.compose(V)
    HW = q.matvec(W) if HW is None else HW
    if penalty.has_dual and alpha > 0:
        RR, G, TT, YT = q.gap_terms(W, HW)
        s = penalty.dual_scaling(G, alpha)
        dual = float(np.sum(s * YT - 0.5 * s * s * TT)) - penalty.conjugate(s * G, alpha)
        return 0.5 * RR + penalty.value(V, alpha) - dual + q.rounding(W, HW)
    G = penalty.spread(q.g - HW)
    D = V - penalty.prox(V + G / L, 1.0 / L, alpha)
    return float(np.sqrt(inner(D, D))) * L / max(G0_norm, 1e-300)


def _wh(q: TaskQuadratic, penalty: Penalty, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W = penalty.compose(V)
    return W, q.matvec(W)


