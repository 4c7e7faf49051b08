r"""Accelerated proximal gradient on a quadratic whose Grams are on disk, in four p x T arrays.

:func:`~regmtl.solvers.parts.quadratic_fista.fista_certified` keeps a dozen p x T arrays (the
iterates, their products, copies for the line search and the best point): 19 GB at ten million
tasks and twenty features. Here the curvature bound is exact
(:meth:`~regmtl.solvers.streamed.quadratic.StreamedQuadratic.lipschitz`, no line search),
and one pass over the Grams per iteration forms the extrapolated point
``Z = V + mom (V - V_prev)``, its product and the gradient step ``U = Z + (g - H Z) / L`` task
chunk by task chunk (Z is never held whole); the prox is taken
in place on U (:meth:`~regmtl.Penalty.prox_into`). The arrays held: ``g``, ``V``, ``V_prev``,
``U``, and at a check one more for ``H V``, formed in the same pass as the step (the Grams read
once for both products). Momentum restarts when it points against the step (O'Donoghue &
Candes 2015).

The certificate is :func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`'s, from the same
sums: the duality gap of the residual's dual point plus ``1e-13`` of its magnitude (rounding)
where the penalty has a dual and ``alpha > 0``, else the proximal-gradient KKT residual at the
step ``1 / L`` relative to ``G0_norm``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._jit import njit
from ...penalties import Penalty
from ...penalties.kernels import FAST
from ..parts.quadratic_fista import gap_of_sums, prox_residual
from .quadratic import StreamedQuadratic

__all__ = ["streamed_fista", "streamed_certificate"]


@njit(cache=True, fastmath=FAST)
def _against(V, V_prev, mom, U):
    """``<Z - U, U - V>`` with ``Z = V + mom (V - V_prev)``: positive when the momentum points
    against the step just taken (then it restarts)."""
    acc = 0.0
    p, T = V.shape
    for i in range(p):
        for t in range(T):
            v = V[i, t]
            u = U[i, t]
            acc += (v + mom * (v - V_prev[i, t]) - u) * (u - v)
    return acc


def streamed_certificate(q: StreamedQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                         HV: np.ndarray, gw: np.ndarray, whw: np.ndarray, L: float,
                         G0_norm: float) -> tuple[float, float]:
    """``(certificate, rounding)`` of V from ``H V`` (overwritten: it becomes ``g - H V``)
    and the per-task sums ``g . v_t``, ``v_t . H v_t``: the formulas of
    :meth:`~regmtl.solvers.parts.quadratic.TaskQuadratic.gap_sums` and
    :func:`~regmtl.solvers.parts.quadratic_fista.gram_certificate`, with no p x T temporary."""
    G = np.subtract(q.g, HV, out=HV)
    big = q.e + 2.0 * np.abs(gw) + np.abs(whw)
    rounding = 1e-13 * float(big.sum())
    if penalty.has_dual and alpha > 0:
        TT = q.e - 2.0 * gw + whw
        primal, dual, _ = gap_of_sums(penalty, alpha, V, TT.sum(), G, TT, q.e - gw)
        return primal - dual + rounding, rounding
    return prox_residual(penalty, alpha, V, G, L, G0_norm, overwrite=True), rounding


def streamed_fista(q: StreamedQuadratic, penalty: Penalty, alpha: float, V: np.ndarray, *,
                   tol: float, max_iter: int, check_every: int = 10, G0_norm: float = 1.0,
                   verbose: int = 0, state: dict | None = None,
                   on_check: Callable[[np.ndarray, np.ndarray, dict], None] | None = None,
                   bar: Any = None, scale: float = 1.0, certify_start: bool = True
                   ) -> tuple[np.ndarray, int, bool, float]:
    """FISTA on ``q(V) + Omega(V)`` (the penalty's variable is W), certified every
    ``check_every`` iterations (and at the start, the first iteration and ``max_iter``) until
    the certificate is below ``tol`` (absolute for a gap, relative as the residual). The
    start ``V`` is taken over (a C-ordered float64 array is written to, not copied).

    ``on_check(V, V_prev, scalars)`` is called at each certificate before anything moves (the
    state a fit resumes from: :mod:`~regmtl.solvers.streamed.checkpoint`), and ``state`` (such
    a state: ``V``, ``V_prev``, ``t``, ``mom``, ``it``, ``best_val``, ``best_it``) resumes
    there, the iterations then those of the uninterrupted run, bit for bit.

    Returns the last certified variable, the iterations, whether the certificate stalled (no
    1% progress for as many iterations as it took to reach its best, and 20 checks, at the
    rounding floor of the Gram sums where it is a gap) and that variable's certificate.

    ``bar``: a progress bar (:class:`~regmtl.solvers.streamed.phases.Bar`) moved one step per
    iteration, the last certificate beside it (divided by ``scale``: relative, as ``tol`` is
    given to the fit). ``certify_start=False``: the start is not certified (a warm start
    from another alpha's fit, which is never this one's optimum: the first certificate is
    after the first iteration)."""
    L = q.lipschitz()
    step = 1.0 / L
    use_gap = penalty.has_dual and alpha > 0
    V = np.require(V, dtype=np.float64, requirements="C")  # (taken over: no second copy)
    V_prev, U = V.copy(), np.empty_like(V)
    HV = None
    t, mom, it = 1.0, 0.0, 0
    best_val, best_it = np.inf, 0
    if state is not None:
        V[...] = state["V"]
        V_prev[...] = state["V_prev"]
        t, mom, it = float(state["t"]), float(state["mom"]), int(state["it"])
        best_val, best_it = float(state["best_val"]), int(state["best_it"])
    check = certify_start or state is not None  # (the start, certified in the first pass)
    while True:
        if check and on_check is not None:
            on_check(V, V_prev, {"t": t, "mom": mom, "it": it, "best_val": best_val,
                                 "best_it": best_it})
        if check and HV is None:
            HV = np.empty_like(V)
        sums = q.step(V, V_prev, mom, step, U, HV if check else None)
        if check:
            value, rounding = streamed_certificate(q, penalty, alpha, V, HV, *sums, L, G0_norm)
            if verbose:
                print(f"[fista/streamed] iter {it:5d}  certificate {value:.3e}")
            if bar is not None:
                bar.set_postfix_str(f"certificate {value / scale:.2e} (tol "
                                    f"{tol / scale:.2e})", refresh=False)
            if value <= tol or it >= max_iter:
                return V, it, False, value
            if value < 0.99 * best_val:
                best_val, best_it = value, it
            if it - best_it >= max(20 * check_every, best_it) and (
                    not use_gap or best_val <= 1e3 * rounding):
                return V, it, True, value
        it += 1
        if bar is not None:
            bar.update(1)
        penalty.prox_into(U, step, alpha)
        if _against(V, V_prev, mom, U) > 0:  # momentum against the step: restart
            t, mom = 1.0, 0.0
        else:
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = (t - 1.0) / t_next
            t = t_next
        V_prev, V, U = V, U, V_prev
        check = it % check_every == 0 or it == max_iter or it == 1
