r"""The alternating direction method of multipliers on a quadratic per task, with exact
per-task solves: the inner loop of the ADMM solver (:mod:`~regmtl.solvers.methods.splitting`).

For ``min_W q(W) + Omega(W)`` with ``q(W) = sum_t w_t' H_t w_t / 2 - g_t' w_t`` it splits
``W = Z`` and iterates, with the scaled multiplier ``U``,

.. math::

    w_t \leftarrow (H_t + \rho I)^{-1} (g_t + \rho (z_t - u_t)), \qquad
    Z \leftarrow \mathrm{prox}_{\Omega / \rho}(\hat W + U), \qquad
    U \leftarrow U + \hat W - Z, \qquad \hat W = r W + (1 - r) Z_{prev},

over-relaxed by ``r = q.relax`` (Eckstein & Bertsekas 1992; 1.6 for the squared loss in
row-space form, where it took 35-45% fewer iterations on the wide benchmark shapes, else 1).
A variable of ``k`` parts summing to W (``W = P + Q``: the sparse + low-rank and robust
models) keeps the parts in ``Z`` and ``U``; its first step stays exact (:func:`exact_step`),
and the prox separates over the parts.

The first step is exact per task, whatever the conditioning of ``H_t`` (collinear columns,
tasks of five rows): the eigendecomposition of ``H_t`` (Gram form, computed once, so ``rho``
moves freely) or the Cholesky factor of its kernel plus ``rho I`` (row-space form,
:mod:`~regmtl.solvers.parts.kernel_quadratic`, ``n_t^3 / 3`` per ``rho``). It
starts where the quadratic says (``q.rho_start(alpha)``) and is balanced every ten
iterations:
doubled when the primal residual ``||W - Z||`` exceeds five times the dual residual
``rho ||Z - Z_prev||``, halved in the opposite case (Boyd et al. 2011, section 3.4.1). The
certificate is evaluated at ``Z`` (exactly sparse or low-rank) from the Gram sums, as for
FISTA (:func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`). Where proximal gradient
needs hundreds of steps (ill-conditioned tasks at small ``alpha``), this needs tens; on
well-conditioned wide tasks, two to three times fewer than FISTA.
"""

from __future__ import annotations

import numpy as np

from ...penalties import Penalty
from ...penalties.base import inner
from .quadratic import TaskQuadratic
from .quadratic_fista import fista_certified, gram_certificate

__all__ = ["admm_quadratic", "eigen_budget", "minimize_quadratic", "BALANCE", "BALANCE_EVERY",
           "RHO_FACTOR"]

#: Residual ratio beyond which ``rho`` is rebalanced.
BALANCE = 5.0
#: Factor by which ``rho`` moves when it is.
RHO_FACTOR = 2.0
#: Iterations between two balancings.
BALANCE_EVERY = 10


def admm_quadratic(q: TaskQuadratic, penalty: Penalty, alpha: float, W: np.ndarray, *,
                   tol: float, max_iter: int, check_every: int = 10, G0_norm: float = 1.0,
                   verbose: int = 0) -> tuple[np.ndarray, int, bool]:
    """ADMM on ``q(W) + Omega(W)`` from ``W`` (a penalty of W itself, or of a variable of
    parts summing to W: then ``W`` is that variable, see :func:`exact_step`), over-relaxed by
    ``q.relax``, with a certificate from ``q`` every ``check_every`` iterations until it is
    below ``tol`` (absolute for a duality gap, relative to ``G0_norm`` for a KKT residual, as
    :func:`~regmtl.solvers.parts.quadratic_fista.fista_quadratic`). Returns ``Z`` at the best
    certificate, the iterations, and whether it stalled (no progress for as many iterations
    as it took to reach the best, and 20 checks) short of ``tol``."""
    use_gap = penalty.has_dual and alpha > 0
    L_cert = None if use_gap else q.lipschitz()
    rho = max(q.rho_start(alpha), 1e-12 * q.lipschitz())
    relax = q.relax
    Z = q.settle(np.array(W, dtype=np.float64))[0]
    k = penalty.spread(np.ones((1, 1))).size
    U = np.zeros_like(Z)
    best_val, best_Z, best_it = np.inf, Z, 0
    it = 0
    while it < max_iter:
        it += 1
        Wn = exact_step(q, penalty, Z - U, rho, k)
        Z_prev = Z
        if relax != 1.0:  # over-relaxation
            Wn = relax * Wn + (1.0 - relax) * Z_prev
        Z = penalty.prox(Wn + U, 1.0 / rho, alpha)
        U = U + Wn - Z
        Wn, Z, U = q.settle(Wn, Z, U)
        if it % BALANCE_EVERY == 0:
            D, E = Wn - Z, Z - Z_prev
            primal, dual = q.numbers(inner(D, D), inner(E, E))
            primal, dual = np.sqrt(primal), rho * np.sqrt(dual)
            if primal > BALANCE * dual:
                rho *= RHO_FACTOR
                U = U / RHO_FACTOR
            elif dual > BALANCE * primal:
                rho /= RHO_FACTOR
                U = U * RHO_FACTOR
        if it % check_every and it != max_iter and it != 1:
            continue
        value = gram_certificate(q, penalty, alpha, Z, L_cert, G0_norm)
        if verbose:
            print(f"[admm] iter {it:5d}  rho {rho:.3e}  certificate {value:.3e}")
        if value < 0.99 * best_val:
            best_val, best_Z, best_it = value, Z, it
        if value <= tol:
            return Z, it, False
        if it - best_it >= max(20 * check_every, best_it):
            return best_Z, it, True
    return best_Z, it, False


def exact_step(q: TaskQuadratic, penalty: Penalty, A: np.ndarray, rho: float,
               k: int = 1) -> np.ndarray:
    """``argmin_V q(compose(V)) + rho/2 ||V - A||^2``, exactly. A penalty of W itself
    (``k = 1``): ``(H_t + rho I)^{-1} (g_t + rho a_t)``. A variable of ``k`` parts summing to
    W (``compose(spread(G)) = k G``): with ``S = compose(A)`` the sum ``W`` solves
    ``(H_t + rho/k I) w_t = g_t + rho/k s_t`` and each part moves by the same
    ``(W - S) / k``."""
    if k == 1:
        return q.shifted_solve(q.g + rho * A, rho)
    S = penalty.compose(A)
    W = q.shifted_solve(q.g + (rho / k) * S, rho / k)
    return A + penalty.spread((W - S) / k)


def eigen_budget(q: TaskQuadratic) -> int:
    """FISTA iterations on the Grams worth about one eigendecomposition of every ``H_t``
    (measured with one BLAS thread: 40 to 90 for p from 28 to 300)."""
    return max(40, q.g.shape[0] // 3)


def minimize_quadratic(q: TaskQuadratic, penalty: Penalty, alpha: float, W: np.ndarray, *,
                       tol: float, max_iter: int, check_every: int = 10, G0_norm: float = 1.0,
                       verbose: int = 0, budget: int | None = None
                       ) -> tuple[np.ndarray, int, bool]:
    """``q(W) + Omega(W)`` minimized to ``tol`` (as :func:`admm_quadratic`): rent, then buy.

    Exact solves need one eigendecomposition per task (``T p^3`` in Gram form), which a
    well-conditioned problem does not repay. Until ``q`` has it, FISTA on the Grams runs first,
    for about as many iterations as the eigendecomposition costs (:func:`eigen_budget`), and
    hands over to ADMM only when its rate predicts as many again: never much more than twice
    the better of the two (``budget``: that many FISTA iterations instead). Once computed
    the eigendecomposition stays with ``q``, so the later
    fits of a path or of a fold start with ADMM."""
    it, stalled = 0, False
    if not q.eigen_ready():
        W, it, stalled, value = fista_certified(
            q, penalty, alpha, W, tol=tol, max_iter=max_iter, check_every=check_every,
            G0_norm=G0_norm, verbose=verbose, crawl_budget=budget or eigen_budget(q))
        if stalled or it >= max_iter:
            return W, it, stalled
        if not (penalty.has_dual and alpha > 0) and penalty.spread(np.ones((1, 1))).size > 1:
            # FISTA measures a KKT residual of parts at their curvature bound, ADMM at q's
            value = gram_certificate(q, penalty, alpha, W, q.lipschitz(), G0_norm)
        if value <= tol:  # (FISTA's last certificate is of W)
            return W, it, stalled
    W, more, stalled = admm_quadratic(q, penalty, alpha, W, tol=tol, max_iter=max_iter - it,
                                      check_every=check_every, G0_norm=G0_norm,
                                      verbose=verbose)
    return W, it + more, stalled
