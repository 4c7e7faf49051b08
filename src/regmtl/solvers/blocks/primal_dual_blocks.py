r"""Restarted primal-dual hybrid gradient for the pinball loss on task blocks held elsewhere
(Dask workers): the iteration of :mod:`~regmtl.solvers.methods.primal_dual`, its iterates held
beside the rows in groups of task blocks (:mod:`~regmtl.solvers.blocks.saddle_groups`).

The pinball loss's dual is a box per row and its prox a clip per row, the products with ``X``
and ``X^T`` are each task's own: only the penalty couples the tasks. Per iteration the groups'
prox summaries are summed here (O(p) or O(p^2) numbers: none where the prox separates over
tasks, whose groups then run the ``check`` iterations between two certificates alone; a prox
that does not split over tasks is applied here to the point's columns joined in the blocks'
order, each group sent back its own: O(p T) numbers each way, never a T x T object); every
``check`` iterations the current and the averaged iterates are certified by the duality gap
of the pinball loss itself (for a penalty without a dual, or ``alpha = 0``, the fixed-point
residual of the iteration, as in memory), summed from per-block pieces in the blocks' order
(so that it does not depend on which worker holds which block), and the iteration
restarts from the better one
where its gap has halved since the last restart, re-balancing the primal weight (Applegate et
al. 2021), as in memory. The coefficients come home once, when the fit returns.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ...blocks import HolderLost, HolderLostWarning, TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ..certificates.certify import Certificate, Reference
from ..certificates.saddle import CHECK
from ..parts.quadratic_fista import MAX_HOLDER_LOSSES
from ..result import SolverResult
from .group_certificate import terms_of_pieces
from .pieces import block_widths, by_block, joined, overlaid, summed
from .saddle_groups import AVERAGE, COLUMNS, CURRENT, OWN, SUMMARY, SaddleGroup

__all__ = ["primal_dual_blocks"]


def _itself(block):
    """A block as the object kept for it."""
    return block


def _route(held, penalty: Penalty) -> str:
    """How the prox runs over the groups (:data:`~regmtl.solvers.blocks.saddle_groups.OWN`,
    ``SUMMARY``, ``COLUMNS``)."""
    if len(held) == 1 or penalty.separates_over_tasks:
        return OWN
    return SUMMARY if penalty.splits_prox else COLUMNS


def _certificate(held, which: str, penalty: Penalty, alpha: float, ref: Reference,
                 route: str) -> Certificate:
    """The duality gap of the pinball loss at the groups' current or average iterate; for a
    penalty without a dual (or ``alpha = 0``) the fixed-point residual of the iteration
    relative to ``||G0||``, as in memory (its ``primal`` the loss alone: the penalty's value
    is added at the end, on the coefficients brought home)."""
    if penalty.has_dual and alpha > 0:
        parts = by_block(held.call("certify", which), held.blocks)
        _, _, value, dual = terms_of_pieces(penalty, alpha, [x[1] for x in parts])
        primal = sum(x[0] for x in parts) + value
        return Certificate("duality_gap", max(primal - dual, 0.0), primal, dual, ref.P0)
    parts = by_block(held.call("kkt_point", which, route), held.blocks)
    loss, res = sum(x[0] for x in parts), sum(x[1] for x in parts)
    if route == SUMMARY:
        summary = summed([x[2] for x in parts])
        res += sum(by_block(held.call("kkt_squares", summary), held.blocks))
    elif route == COLUMNS:
        V, Z = (joined([x[2][i] for x in parts]) for i in (0, 1))
        D = V - penalty.prox(Z, 1.0, alpha)
        res += float(np.vdot(D, D))
    scale = float(np.linalg.norm(ref.G0))
    return Certificate("kkt_residual", np.sqrt(res) / (scale if scale > 0 else 1.0), loss,
                       None, ref.P0)


def _columns_round(held, penalty: Penalty, alpha: float, n: int, sp: float,
                   sd: float) -> None:
    """``n`` iterations whose prox does not split over tasks: each iteration the groups'
    columns of the prox's point joined here in the blocks' order, the penalty's prox applied
    to them whole, and each group sent back its blocks' columns (O(p T) numbers each way)."""
    args = [(None, sp, sd, False, COLUMNS)] * len(held)
    for j in range(n + 1):
        parts = held.call_each("advance", args)
        if j == n:
            break
        pieces = by_block(parts, held.blocks)
        P = penalty.prox(joined(pieces), sp, alpha)
        cuts = np.cumsum([0] + [x.shape[-1] for x in pieces])
        at = [P[..., cuts[k]:cuts[k + 1]] for k in range(len(pieces))]
        nxt = sp if j + 1 < n else 0.0
        args = [([at[k] for k in ks], nxt, sd, True, COLUMNS) for ks in held.blocks]


def primal_dual_blocks(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                       W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                       tol: float, max_iter: int, verbose: int = 0,
                       check: int = CHECK) -> SolverResult:
    """Minimize ``pinball + alpha penalty`` from ``(W, b)`` by restarted PDHG on the groups of
    task blocks; ``max_iter`` bounds the iterations, certified every ``check``. Returns the
    best certified point (its intercepts minimized exactly); no dual point (``theta`` stays
    with the rows)."""
    # (the blocks as objects kept where they are: the same rows, no copy)
    blocks, V0, b0 = data.settle(data.blockwise(_itself, out="object"), penalty.lift(W),
                                 np.asarray(b, dtype=np.float64))
    held = data.keep(SaddleGroup, blocks, datafit, penalty, alpha, fit_intercept, V0, b0)
    if held is None:
        raise ValueError(
            f"the {datafit.name} loss on Dask input iterates beside the rows, kept on the "
            "workers that hold them: that needs a client of a Dask cluster (Client()); start "
            "one, or compute the Dask input first.")
    widths = block_widths(held)
    losses = 0
    try:
        while True:
            try:
                return _iterate(held, penalty, alpha, ref, tol, max_iter, verbose, check)
            except HolderLost as exc:  # (a worker holding groups gone: made again)
                losses += 1
                held = _again(data, held, exc, losses, widths, blocks, datafit, penalty,
                              alpha, fit_intercept, penalty.lift(W), b)
    finally:
        held.close()


def _again(data: TaskBlocks, held, exc: HolderLost, losses: int, widths: dict, blocks,
           datafit: Datafit, penalty: Penalty, alpha: float, fit_intercept: bool,
           V_start: np.ndarray, b_start: np.ndarray):
    """The groups made again on the workers holding the blocks now, after ``exc``: the
    surviving groups' tasks from their best certified point, the lost ones' from the start
    (the problem is convex: the same optimum), warned (at most ``MAX_HOLDER_LOSSES``)."""
    got = held.call_alive("columns")
    held.close()
    if losses > MAX_HOLDER_LOSSES:
        raise exc
    V0, b0 = data.settle(*(overlaid(start, held.blocks,
                                    [None if g is None else [x[i] for x in g] for g in got],
                                    widths)
                           for i, start in enumerate((V_start, b_start))))
    again = data.keep(SaddleGroup, blocks, datafit, penalty, alpha, fit_intercept, V0, b0)
    if again is None:  # (no holder of the blocks known: nothing to iterate on)
        raise exc
    warnings.warn(
        f"the quantile fit lost the worker(s) {', '.join(exc.holders)} holding its iterates; "
        f"they were made again on the {len(again)} worker(s) holding the blocks now, from "
        "the best certified point (the lost worker's tasks from the start point): the lost "
        "worker cost time, not the result.", HolderLostWarning, stacklevel=4)
    return again


def _iterate(held, penalty, alpha, ref, tol, max_iter, verbose, check) -> SolverResult:
    copies = penalty.spread(np.ones((1, 1))).size
    norm = np.sqrt(copies * max(held.call("operator_norm2"))) * 1.01
    eta = 0.95 / max(norm, 1e-300)
    omega = 1.0  # the primal weight: s_p = eta / omega, s_d = eta * omega
    # the prox the penalty's own in each group (the iterations between certificates there),
    # from the groups' summed summaries, or on the point's columns joined here
    route = _route(held, penalty)
    best = _certificate(held, CURRENT, penalty, alpha, ref, route)
    held.call("keep_best", CURRENT)
    restart_gap, since, it = best.value, 0, 0
    while it < max_iter and not best.converged(tol):
        n = min(check, max_iter - it)
        sp, sd = eta / omega, eta * omega
        if route == OWN:
            held.call("run", n, sp, sd)
        elif route == SUMMARY:  # each iteration's prox from the groups' summed summaries
            summary = None
            for j in range(n + 1):
                parts = held.call("advance", summary, sp if j < n else 0.0, sd, j > 0)
                summary = summed(by_block(parts, held.blocks)) if j < n else None
        else:
            _columns_round(held, penalty, alpha, n, sp, sd)
        it, since = it + n, since + n
        cur = _certificate(held, CURRENT, penalty, alpha, ref, route)
        avg = _certificate(held, AVERAGE, penalty, alpha, ref, route)
        which, cand = (CURRENT, cur) if cur.value <= avg.value else (AVERAGE, avg)
        if cand.value < best.value:
            best = cand
            held.call("keep_best", which)
        if verbose:
            print(f"[pdhg/blocks] iter {it:6d}  omega {omega:.2e}  duality_gap "
                  f"{best.relative:.3e}")
        if best.converged(tol):
            break
        if cand.value <= 0.5 * restart_gap or since >= 20 * check:
            # restart from the better iterate; the primal weight re-balanced by how far each
            # side moved since the last restart (PDLP's update, smoothed in the log)
            dp2, dd2 = summed(by_block(held.call("restart", which), held.blocks))
            dp, dd = np.sqrt(dp2), np.sqrt(dd2)
            if dp > 1e-12 and dd > 1e-12:
                omega = float(np.exp(0.5 * np.log(dd / dp) + 0.5 * np.log(omega)))
            restart_gap, since = cand.value, 0
    parts = by_block(held.call("columns"), held.blocks)
    V, b = joined([v for v, _ in parts]), joined([x for _, x in parts])
    if best.kind == "kkt_residual":  # (the penalty's value, on the coefficients home)
        best = replace(best, primal=best.primal + penalty.value(V, alpha))
    return SolverResult(penalty.compose(V), b, it, best, best.converged(tol), V)
