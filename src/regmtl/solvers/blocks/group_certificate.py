r"""The certificate of FISTA's iterates held in groups of tasks, from per-block pieces.

A group (:class:`~regmtl.solvers.blocks.fista_groups.FistaGroup`) holds some task blocks' columns
of the iterate V and of ``G = g - H W`` (minus the gradient in W). The squared loss's duality
gap at the residual's dual point scaled by ``s`` is

.. math::

    \text{gap} = \tfrac12 \sum_t TT_t + \Omega(V)
        - \Big(\sum_t s_t YT_t - \tfrac{s_t^2}{2} TT_t - \Omega^*(s G)\Big),

with ``TT_t`` the residual's sum of squares and ``YT_t`` its inner product with the targets
(:meth:`~regmtl.solvers.parts.quadratic.TaskQuadratic.gap_per_task`). Each block sends one piece,
never its p x T_b columns where the penalty allows:

- ``"terms"``: the block's own ``(value, dual)`` where the penalty separates over tasks
  (``s`` per task), or where one group holds every task;
- ``"summary"``: ``sum YT``, ``sum TT`` and the penalty's
  :meth:`~regmtl.penalties.Penalty.gap_summary` (O(p) or O(p^2): L2,1's row sums of squares,
  the trace norm's R factor and p x p Gram), which
  :meth:`~regmtl.penalties.Penalty.gap_given` turns into ``(Omega(V), s, Omega*(s G))``;
- ``"columns"``: the columns themselves, for a penalty that declares no summary.

The pieces are combined block by block in the blocks' order, so that the certificate does not
depend on which worker holds which block. The KKT residual ``||V - prox(V + G / L)|| L`` of a
penalty without a dual splits the same way: the prox's summary of ``V + G / L`` (summed), then
each block's ``|D|^2``.
"""

from __future__ import annotations

import numpy as np

from ...penalties import Penalty
from .pieces import by_block, joined

__all__ = ["gap_pieces", "gap_of_pieces", "terms_of_pieces"]

#: the factor of the rounding bound ``B`` added to a gap (the Gram sums' rounding)
ROUNDING = 1e-13


def gap_pieces(penalty: Penalty, alpha: float, V: np.ndarray, G: np.ndarray, TT: np.ndarray,
               YT: np.ndarray, B: np.ndarray, spans: list, alone: bool) -> list[tuple]:
    """The pieces of the columns ``spans`` (one per block; one for all where ``alone``: the
    group holds every task) of V, G and the per-task sums: ``(kind, RR, B, ...)``."""
    summarized = not alone and not penalty.separates_over_tasks
    pieces = []
    for a, b in spans:
        Vb, Gb = V[..., a:b], G[..., a:b]
        head = (float(TT[a:b].sum()), float(B[a:b].sum()))
        summary = penalty.gap_summary(Vb, Gb) if summarized else None
        if not summarized:
            s = penalty.dual_scaling(Gb, alpha)
            dual = float(np.sum(s * YT[a:b] - 0.5 * s * s * TT[a:b]))
            dual -= penalty.scaled_conjugate(Gb, s, alpha)
            pieces.append(("terms", *head, penalty.value(Vb, alpha), dual))
        elif summary is not None:
            pieces.append(("summary", *head, float(YT[a:b].sum()), float(TT[a:b].sum()),
                           summary))
        else:
            pieces.append(("columns", *head, np.array(Vb), np.array(Gb), YT[a:b].copy(),
                           TT[a:b].copy()))
    return pieces


def gap_of_pieces(penalty: Penalty, alpha: float, parts: list, blocks: list
                  ) -> tuple[float, float]:
    """``(gap + rounding bound, B)`` from the groups' pieces (``blocks``: the blocks each
    group holds; one piece in all where one group holds every task)."""
    pieces = parts[0] if len(parts) == 1 and len(parts[0]) == 1 else by_block(parts, blocks)
    RR, big, value, dual = terms_of_pieces(penalty, alpha, pieces)
    return 0.5 * RR + value - dual + ROUNDING * big, big


def terms_of_pieces(penalty: Penalty, alpha: float, pieces: list
                    ) -> tuple[float, float, float, float]:
    """``(RR, B, Omega(V), dual)`` from the pieces in the blocks' order: the sums of squares,
    the rounding bound, the penalty's value and the dual objective less its quadratic
    term's primal (``RR / 2``)."""
    RR = sum(x[1] for x in pieces)
    big = sum(x[2] for x in pieces)
    kind = pieces[0][0]
    if kind == "terms":
        value, dual = sum(x[3] for x in pieces), sum(x[4] for x in pieces)
    elif kind == "summary":
        YT, TT = sum(x[3] for x in pieces), sum(x[4] for x in pieces)
        value, s, conjugate = penalty.gap_given([x[5] for x in pieces], alpha)
        dual = s * YT - 0.5 * s * s * TT - conjugate
    else:
        V, G, YT, TT = (joined([x[i] for x in pieces]) for i in (3, 4, 5, 6))
        value = penalty.value(V, alpha)
        s = penalty.dual_scaling(G, alpha)
        dual = float(np.sum(s * YT - 0.5 * s * s * TT)) - penalty.scaled_conjugate(G, s, alpha)
    return RR, big, value, dual
