r"""Accelerated proximal gradient (FISTA) on a quadratic in Gram form, with its certificate from
the Gram sums: the inner solver of FISTA for the squared loss
(:mod:`~regmtl.solvers.methods.prox_grad`) and of each proximal Newton model in Gram form
(:mod:`~regmtl.solvers.methods.structured_newton`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ...blocks import HolderLost, HolderLostWarning, Kept
from ...penalties import Penalty
from ...penalties.base import inner
from ..blocks.fista_groups import RESTART, FistaGroup
from ..blocks.group_certificate import gap_of_pieces
from ..blocks.pieces import block_widths, by_block, joined, overlaid, summed
from .quadratic import TaskQuadratic
from .reweighted import reweighted_start, worth_trying

__all__ = ["crawling", "fista_certified", "fista_quadratic", "gap_of_sums", "gram_certificate",
           "prox_residual", "MAX_BACKTRACK"]

#: Step-size halvings per iteration before the line search gives up (2^-60 of the first step).
MAX_BACKTRACK = 60


def fista_quadratic(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                    **options) -> tuple[np.ndarray, int, bool]:
    """FISTA on ``q(compose(V)) + Omega(V)`` in Gram form (:func:`fista_certified`, its
    options): the variable, the iterations and whether the certificate stalled."""
    return fista_certified(q, penalty, alpha, V, **options)[:3]


def fista_certified(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray, *,
                    tol: float, max_iter: int, check_every: int = 10, G0_norm: float = 1.0,
                    verbose: int = 0, reweight: bool = True, crawl_budget: int | None = None
                    ) -> tuple[np.ndarray, int, bool, float]:
    """FISTA on ``q(compose(V)) + Omega(V)`` in Gram form, with adaptive restart and a
    certificate from the Gram sums every ``check_every`` iterations (the duality gap plus a
    bound on its rounding, or the proximal-gradient KKT residual relative to ``G0_norm``)
    until it is below ``tol``.

    The step ``1 / L`` starts from a few Lanczos steps (a lower bound of the curvature, see
    :meth:`TaskQuadratic.curvature_estimate`) and grows where the quadratic upper bound fails
    along a step: the curvature along it, ``dW' H dW``, comes from the product ``H W`` the
    iteration forms anyway (``H Z`` is the same combination of the last two), so the search
    costs no product unless it fails. The iterates are held beside the Grams
    (:meth:`TaskQuadratic.hold`, :class:`~regmtl.solvers.blocks.fista_groups.FistaGroup`): in memory
    one group; on task blocks held elsewhere (``q.lazy``) one group per worker, each prox
    split over them where the penalty declares it (``splits_prox``), the step then the
    curvature bound. Where they cannot be held so, the iterations between two certificates
    are one graph (:func:`_lazy_round`). Where proximal
    gradient crawls (ill-conditioned designs
    at small alpha: still a hundred times above ``tol`` after as many iterations as twenty
    reweighted steps cost), reweighted least squares (``reweight``, see its module) moves the
    iterate once, and the iteration goes on from there. With ``crawl_budget`` it returns early,
    short of ``tol``, once it has run that many iterations and its linear rate so far
    predicts more than as many again (the caller then changes method). ``tol`` is absolute
    for a gap, relative (as the residual) for a KKT residual. Returns the variable at the last
    certificate, the iterations (reweighted steps included), whether the certificate
    stalled (no progress for as many iterations as it took to reach its best), and the
    returned variable's certificate (``inf`` where none was taken of it: after a last
    reweighted step, or with ``max_iter = 0``)."""
    copies = penalty.spread(np.ones((1, 1))).size
    use_gap = penalty.has_dual and alpha > 0
    # the KKT residual is measured at the curvature bound itself (one scale for every check)
    L_cert = None if use_gap else copies * q.lipschitz()
    # on blocks the curvature bound itself (one round trip, once): the steps of a round are
    # then never too long, and its test is only a safeguard
    L = copies * (q.lipschitz() if q.lazy else q.curvature_estimate())
    p = q.g.shape[0]
    # twenty reweighted steps cost about 7 p iterations (T solves of size p against T products)
    rescue_at = max(200, 7 * p) if (
        reweight and hasattr(penalty, "inverse_weights") and alpha > 0 and worth_trying(q)
    ) else None
    V = q.settle(V)[0]  # (on task blocks: each block's columns where its rows are)
    # the iterates beside the Grams: here in memory, on each worker that holds blocks
    # (several only where the prox splits over tasks); else rounds of lazy iterations
    box = [q.hold(FistaGroup, penalty, alpha, V, several=penalty.splits_prox)]
    try:
        return _iterate(q, penalty, alpha, V, box, L, L_cert, rescue_at, tol=tol,
                        max_iter=max_iter, check_every=check_every, G0_norm=G0_norm,
                        verbose=verbose, crawl_budget=crawl_budget)
    finally:
        if box[0] is not None:
            box[0].close()


def _iterate(q: TaskQuadratic, penalty: Penalty, alpha: float, V: Any, box: list,
             L: float, L_cert: float | None, rescue_at: int | None, *, tol: float,
             max_iter: int, check_every: int, G0_norm: float, verbose: int,
             crawl_budget: int | None) -> tuple[Any, int, bool, float]:
    """The iterations of :func:`fista_certified` from V: on the groups of ``box[0]``
    (:mod:`~regmtl.solvers.blocks.fista_groups`; V then stays with them, each certificate formed
    from their summaries, :mod:`~regmtl.solvers.blocks.group_certificate`), or, where None, in
    rounds of lazy iterations on the blocks (:func:`_lazy_round`). A group whose holder is
    lost (a worker gone: :class:`~regmtl.blocks.HolderLost`) is made again on the holders
    left (:func:`_rehold`): the other groups from the last certificate's iterate, the lost
    one's tasks from the start point (a :class:`~regmtl.blocks.HolderLostWarning` says
    which worker and how many iterations)."""
    held: Kept | None = box[0]
    use_gap = penalty.has_dual and alpha > 0
    split = held is not None and len(held) > 1
    widths = {} if held is None else block_widths(held)
    start_V = V  # (where a lost group's tasks start again)
    done = q.settle if q.lazy else (lambda *a: a)  # (iterates brought here go back)
    start = it = 0
    best_val, best_V, best_big, best_it = np.inf, V.copy(), None, it
    first_val = None
    restarted = False
    losses = 0
    best_pending = False  # (the groups' best iterate is their last certified one: to keep)
    while True:
        t, move = 1.0, None
        if held is None:
            Z = V.copy()
            HZ = HV_prev = q.settle(q.matvec(penalty.compose(V)))[0]
        elif restarted:  # (after a reweighted step; the groups started at V when made)
            try:
                held.call("start", V)
            except HolderLost as exc:
                losses += 1
                held = box[0] = _rehold(q, penalty, alpha, V, held, exc, losses, it, it)
                split, widths = len(held) > 1, block_widths(held)
        restarted = True
        rescued = False
        while it < max_iter:
            # the iterations up to the next certificate: the first, every check_every-th, and
            # the last
            stop = min((it // check_every + 1) * check_every, max_iter,
                       *((start + 1,) if it < start + 1 else ()))
            if held is None:
                (V, Z, HZ, t, L), HV, value = _lazy_round(
                    q, penalty, alpha, L, stop - it, (V, Z, HZ, HV_prev, t), L_cert, G0_norm)
                HV_prev, it = HV, stop
            else:
                at = it  # (the iteration of the last certificate, or the start)
                try:
                    while it < stop:
                        it += 1
                        for _ in range(MAX_BACKTRACK):
                            summaries = held.call("gradient", L, move, split, best_pending)
                            move, best_pending = None, False  # (a retry keeps the move)
                            nd, curv, against = summed(by_block(held.call(
                                "descend", summed(by_block(summaries, held.blocks)) if split
                                else None), held.blocks))
                            if curv <= L * nd * (1.0 + 1e-9):  # the upper bound holds
                                break
                            L = max(1.5 * L, 1.02 * curv / nd)
                        if against > 0:  # momentum against the step: restart
                            t, move = 1.0, RESTART
                        else:
                            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                            t, move = t_next, (t - 1.0) / t_next
                    value, big = _held_certificate(q, penalty, alpha, held, use_gap, L_cert,
                                                   G0_norm)
                except HolderLost as exc:
                    losses += 1
                    V = _restart_point(q, held, widths, start_V)
                    held = box[0] = _rehold(q, penalty, alpha, V, held, exc, losses, at, it)
                    split, widths = len(held) > 1, block_widths(held)
                    it, t, move = at, 1.0, None
                    # (the new groups' best is where they start: no certificate of it yet)
                    best_val, best_it, best_big, best_pending = np.inf, at, 0.0, False
                    continue
            if verbose:
                print(f"[fista/gram] iter {it:5d}  certificate {value:.3e}")
            if value < 0.99 * best_val:
                best_val, best_it = value, it
                if held is None:
                    best_V = V.copy()
                else:  # (kept by the groups at their next step)
                    best_V, best_big, best_pending = None, big, True
            if value <= tol or it == max_iter:
                return done(_at(held, V, "last"))[0], it, False, value
            best = "last" if best_pending else "best"  # (where the groups hold the best)
            first_val = value if first_val is None else first_val
            if crawl_budget is not None and it >= crawl_budget and crawling(
                    first_val, best_val, it, tol, crawl_budget):
                return done(_at(held, best_V, best))[0], it, False, best_val
            if rescue_at is not None and it - start >= rescue_at and value > 100.0 * tol:
                rescued = True
                break
            # stalled: no progress for as long as it took to reach the best (and 20 checks), at
            # the rounding floor of the Gram sums (a gap) -- elsewhere progress is only slow
            if it - best_it >= max(20 * check_every, best_it - start) and (
                    not use_gap or best_val <= 1e3 * (
                        q.rounding(*_wh(q, penalty, best_V)) if best_big is None
                        else 1e-13 * best_big)):
                return done(_at(held, best_V, best))[0], it, True, best_val
        if not rescued:
            return done(_at(held, V, "last"))[0], it, False, np.inf
        rescue_at = None  # (once)
        V, steps = reweighted_start(
            q, penalty, alpha, _at(held, best_V, "last" if best_pending else "best"),
            lambda W: gram_certificate(q, penalty, alpha, W, L_cert, G0_norm) - tol,
            budget=min(20, max(max_iter - it, 0)), patience=3)
        it += steps
        start = it


def _held_certificate(q: TaskQuadratic, penalty: Penalty, alpha: float, held: Kept,
                      use_gap: bool, L: float | None, G0_norm: float) -> tuple[float, float]:
    """``(certificate, B)`` of the groups' last step from their pieces
    (:mod:`~regmtl.solvers.blocks.group_certificate`): the duality gap plus its rounding bound
    ``1e-13 B``, or (``B`` 0) the KKT residual at the step ``1 / L`` relative to
    ``G0_norm``. Where the groups live elsewhere (``q.lazy``) each keeps its V as the last
    certificate's iterate."""
    alone = len(held) == 1
    parts = held.call("certify", use_gap, alone, q.lazy)
    if use_gap:
        return gap_of_pieces(penalty, alpha, parts, held.blocks)
    split = not alone and penalty.splits_prox
    summaries = held.call("kkt_point", L, split)
    summary = summed(by_block(summaries, held.blocks)) if split else None
    squares = held.call("kkt_squares", summary, alone)
    total = squares[0][0] if alone else sum(by_block(squares, held.blocks))
    return float(np.sqrt(total)) * L / max(G0_norm, 1e-300), 0.0


def _at(held: Kept | None, V: Any, which: str) -> Any:
    """V, or where the groups hold it their columns (``which``: ``"last"``, ``"best"``)
    brought here and laid in the tasks' order."""
    return V if held is None else joined(by_block(held.call("columns", which), held.blocks))


def _restart_point(q: TaskQuadratic, held: Kept, widths: dict[int, int],
                   start_V: Any) -> np.ndarray:
    """Where the groups start again after a lost holder: the surviving groups' columns at
    the last certificate, the lost ones' tasks at the start point (any point will do: the
    problem is convex), brought here once."""
    return overlaid(q.arrays(start_V)[0], held.blocks, held.call_alive("columns", "checked"),
                    widths)


#: workers lost in one fit before it gives up (every loop is bounded)
MAX_HOLDER_LOSSES = 16


def _rehold(q: TaskQuadratic, penalty: Penalty, alpha: float, V: Any, held: Kept,
            exc: HolderLost, losses: int, at: int, it: int) -> Kept:
    """FISTA's groups made again from ``V`` (:func:`_restart_point`, of iteration ``at``) on
    the holders left, after ``exc`` (warned: the holders lost, the iterations done again)."""
    held.close()
    if losses > MAX_HOLDER_LOSSES:
        raise exc
    again = q.hold(FistaGroup, penalty, alpha, q.settle(V)[0], several=penalty.splits_prox)
    if again is None:  # (no holder of the blocks known: nothing to iterate on)
        raise exc
    warnings.warn(
        f"FISTA lost the worker(s) {', '.join(exc.holders)} holding its iterates at "
        f"iteration {it}; they were made again on the {len(again)} worker(s) holding the "
        f"blocks now, from the iterate of iteration {at} ({it - at} iteration(s) done "
        "again; the lost worker's tasks from the start point): the lost worker cost time, "
        "not the result.", HolderLostWarning,
        stacklevel=4)
    return again


def _lazy_round(q: TaskQuadratic, penalty: Penalty, alpha: float, L: float, n: int,
                state: tuple, L_cert: float | None, G0_norm: float) -> tuple:
    """``n`` FISTA iterations on task blocks held elsewhere, submitted one after the other
    without waiting on any result; the certificate of their last iterate and the round's
    step-size tests come home in one round trip: ``((V, Z, HZ, t, L), HV, certificate)``.

    The momentum's restart test is a lazy 0-d array that the next step reads (a restart is
    the momentum ``0`` and ``t = 1``), so no number of an iteration is needed before the
    next is built. Each iteration's iterates are persisted as it is submitted (no round
    trip), so that a penalty whose prox brings a summary home (the trace norm's ``p x p``
    Gram) computes it from them, not from the round's history. ``L`` is the curvature bound
    (:meth:`TaskQuadratic.lipschitz`); should a step still fail the quadratic upper bound (a
    Ritz value below the curvature), the round is run again from its start with ``L`` grown
    as the line search grows it."""
    V0, Z0, HZ0, HV0, t0 = state
    for _ in range(MAX_BACKTRACK):
        V, V_prev, Z, HZ, HV_prev, t = V0, V0, Z0, HZ0, HV0, t0
        tests = []
        for _ in range(n):
            GZ = penalty.spread(q.g - HZ)  # minus the gradient at Z
            V = penalty.prox(Z + GZ / L, 1.0 / L, alpha)
            HV = q.matvec(penalty.compose(V))
            dV = V - Z
            tests += [inner(dV, dV), inner(penalty.compose(dV), HV - HZ)]
            restart = inner(Z - V, V - V_prev) > 0  # momentum against the step
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = np.where(restart, 0.0, (t - 1.0) / t_next)
            t = np.where(restart, 1.0, t_next)
            Z, HZ = V + mom * (V - V_prev), HV + mom * (HV - HV_prev)
            V, Z, HZ, HV, t, *tests = q.settle(V, Z, HZ, HV, t, *tests)
            V_prev, HV_prev = V, HV
        terms, finish = _certificate_terms(q, penalty, alpha, V, L_cert, G0_norm, HV)
        got = q.numbers(*tests, *terms)
        nd, curv = np.array(got[:2 * n:2]), np.array(got[1:2 * n:2])
        if np.all(curv <= L * nd * (1.0 + 1e-9)):  # the quadratic upper bound held
            return (V, Z, HZ, t, L), HV, finish(got[2 * n:])
        bad = curv > L * nd * (1.0 + 1e-9)
        L = max(1.5 * L, 1.02 * float(np.max(curv[bad] / nd[bad])))
    raise RuntimeError("the quadratic upper bound failed at every step size")


def crawling(first: float, best: float, it: int, tol: float, budget: int) -> bool:
    """The linear rate from ``first`` to ``best`` over ``it`` iterations predicts more than
    ``budget`` further iterations to reach ``tol``."""
    if best <= tol:
        return False
    if not best < first:
        return True
    rate = np.log(first / best) / max(it - 1, 1)
    return np.log(best / tol) / rate > budget


def gram_certificate(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                     L: float | None, G0_norm: float, HW: np.ndarray | None = None) -> float:
    """The certificate of V from the Gram sums: the duality gap of the residual's dual point
    plus a bound on its rounding (absolute), or else the proximal-gradient KKT residual at the
    step ``1 / L`` relative to ``G0_norm``. ``HW``: ``H compose(V)`` when at hand."""
    terms, finish = _certificate_terms(q, penalty, alpha, V, L, G0_norm, HW)
    # the quadratic's and the penalty's sums brought home together (one round trip on
    # blocks where the penalty leaves its value and scaling lazy)
    return finish(q.numbers(*terms))


def _certificate_terms(q: TaskQuadratic, penalty: Penalty, alpha: float, V: np.ndarray,
                       L: float | None, G0_norm: float, HW: np.ndarray | None = None):
    """The scalars of :func:`gram_certificate` (lazy on blocks) and the function that makes
    the certificate of their values."""
    W = penalty.compose(V)
    HW = q.matvec(W) if HW is None else HW
    if penalty.has_dual and alpha > 0:
        RR, G, TT, YT, big = q.gap_sums(W, HW)
        terms, finish = gap_terms(penalty, alpha, V, RR, G, TT, YT, big)

        def gap(values):
            primal, dual, big = finish(values)
            return primal - dual + 1e-13 * big

        return terms, gap
    G = penalty.spread(q.g - HW)
    D = V - penalty.prox(V + G / L, 1.0 / L, alpha)
    return (inner(D, D),), lambda values: float(np.sqrt(values[0])) * L / max(G0_norm, 1e-300)


def gap_terms(penalty: Penalty, alpha: float, V: np.ndarray, RR: Any, G: np.ndarray,
              TT: np.ndarray, YT: np.ndarray, big: Any = 0.0
              ) -> tuple[tuple, Callable[[tuple], tuple[float, float, float]]]:
    """The squared loss's residual dual point from its sums
    (:meth:`~regmtl.solvers.parts.quadratic.TaskQuadratic.gap_sums`): the scalars to bring home
    (lazy on task blocks: the quadratic's and the penalty's together, one round trip) and the
    function of their values giving ``(primal, dual, big)``, ``primal = RR / 2 + Omega(V)``,
    ``dual = sum_t (s YT_t - s^2 TT_t / 2) - Omega*(s G)`` with ``s`` the scaling into the
    penalty's dual ball, ``big`` passed through."""
    s = penalty.lazy_dual_scaling(G, alpha)

    def finish(values):
        RR, dual, value, big = values
        dual -= penalty.scaled_conjugate(G, s, alpha)
        return 0.5 * RR + value, dual, big

    return (RR, np.sum(s * YT - 0.5 * s * s * TT), penalty.lazy_value(V, alpha), big), finish


def gap_of_sums(penalty: Penalty, alpha: float, V: np.ndarray, RR: Any, G: np.ndarray,
                TT: np.ndarray, YT: np.ndarray, big: Any = 0.0,
                numbers: Callable[..., tuple[float, ...]] | None = None
                ) -> tuple[float, float, float]:
    """``(primal, dual, big)`` of :func:`gap_terms`, its scalars brought home by ``numbers``
    (as floats where None)."""
    terms, finish = gap_terms(penalty, alpha, V, RR, G, TT, YT, big)
    numbers = numbers or (lambda *a: tuple(float(x) for x in a))
    return finish(numbers(*terms))


def prox_residual(penalty: Penalty, alpha: float, V: np.ndarray, G: np.ndarray, L: float,
                  G0_norm: float, overwrite: bool = False) -> float:
    """The proximal-gradient KKT residual ``||V - prox(V + G / L, 1 / L)|| L / G0_norm`` with
    ``G`` minus the gradient in V; ``overwrite``: formed in G's memory (no copy of V)."""
    if overwrite:
        G /= L
        G += V
        D = np.subtract(V, penalty.prox_into(G, 1.0 / L, alpha), out=G)
    else:
        D = V - penalty.prox(V + G / L, 1.0 / L, alpha)
    return float(np.sqrt(inner(D, D))) * L / max(G0_norm, 1e-300)


def _wh(q: TaskQuadratic, penalty: Penalty, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    W = penalty.compose(V)
    return W, q.matvec(W)
