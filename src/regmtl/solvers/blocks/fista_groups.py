r"""FISTA's iterates held in groups of task columns, one group per process that holds Grams.

The iteration of :func:`~regmtl.solvers.parts.quadratic_fista.fista_certified` on ``q(W) +
Omega(V)`` in Gram form touches the tasks only through their own quadratics, except at two places:
the prox, which reads a summary of all the tasks (:attr:`~regmtl.penalties.Penalty.splits_prox`: the
row norms of L2,1, the mean task, the ``p x p`` Gram of the trace norm), and the step's three inner
products (the quadratic upper bound's test and the momentum's restart test). A :class:`FistaGroup`
holds the iterates of some tasks' columns beside their quadratics and computes everything else where
it is; per iteration (and per step-size retry) the caller sums

1. the groups' prox summaries of ``U = Z + spread(g - H Z) / L`` (:meth:`FistaGroup.gradient`),
2. the groups' ``(|dV|^2, dW' H dW, <Z - V, V - V_prev>)`` (:meth:`FistaGroup.descend`),

each block by block in the blocks' order (whichever worker holds a block, the sums are the
same), and hands each group the next move (the momentum coefficient, or a restart). In memory the
problem is one group (the prox is the penalty's own, nothing to sum); on task blocks held on
several workers each worker holds one group of its blocks (``keep`` of the block protocol),
and an iteration is two round trips of a few numbers, whatever the number of blocks.

A certificate is formed the same way (:meth:`FistaGroup.certify`): each block's pieces of the
duality gap, O(p) or O(p^2) numbers where the penalty summarizes them
(:mod:`~regmtl.solvers.blocks.group_certificate`), so V stays with the groups until the fit returns
(:meth:`FistaGroup.columns`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...penalties import Penalty
from ..parts.quadratic import TaskQuadratic
from .group_certificate import gap_pieces

__all__ = ["FistaGroup", "RESTART"]

#: The move that restarts the momentum (``Z = V``).
RESTART = "restart"


class FistaGroup:
    """The FISTA iterates ``V, V_prev, Z`` (and ``H W`` at V, V_prev and Z) of some tasks'
    columns, with their quadratics ``parts`` (one
    :class:`~regmtl.solvers.parts.quadratic.TaskQuadratic` per task block, consecutive tasks) and
    the first iterate ``V`` (the columns of each part,
    or one array of them all).

    Every array is allocated once and written in place (a Dask worker returns each large
    array to the system when freed, ``MALLOC_TRIM_THRESHOLD_``, and faults its pages in again
    at the next allocation: twice the time of an iteration, measured); a lifted variable's
    ``compose``/``spread`` still allocate."""

    def __init__(self, parts: list, penalty: Penalty, alpha: float, V: Any):
        self.parts, self.penalty, self.alpha = list(parts), penalty, alpha
        widths = [q.g.shape[-1] for q in self.parts]
        #: the parts' (blocks') columns: ``cuts[k]`` to ``cuts[k + 1]``
        self.cuts = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        if len(self.parts) == 1:
            self.quadratic = self.parts[0]
        else:  # (the parts' sums per task side by side, for the certificate's sums)
            self.quadratic = TaskQuadratic(
                None, np.concatenate([q.g for q in self.parts], axis=-1),
                np.concatenate([q.e for q in self.parts]), None, None)
        self.g = self.quadratic.g
        #: the variable is W itself (no lift): every step in place
        self.plain = penalty.spread(np.ones((1, 1))).size == 1
        self.start(V)

    def matvec(self, W: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``H_t w_t`` for the group's tasks (p x T_group), part by part, into ``out``."""
        if len(self.parts) == 1:
            return self.parts[0].matvec_into(W, out)
        for q, (a, b) in zip(self.parts, self._spans(), strict=True):
            q.matvec_into(W[..., a:b], out[..., a:b])
        return out

    def _spans(self) -> list[tuple[int, int]]:
        return list(zip(self.cuts[:-1].tolist(), self.cuts[1:].tolist(), strict=True))

    def start(self, V: Any) -> None:
        """Start (or restart, after a reweighted step) the iteration at V: ``Z = V_prev = V``."""
        if isinstance(V, (list, tuple)):
            V = V[0] if len(V) == 1 else np.concatenate([np.asarray(v) for v in V], axis=-1)
        V = np.array(V, dtype=np.float64)  # (its own copy: written in place from here)
        self.V, self.Z, self.V_prev, self.U, self.D = V, V.copy(), V.copy(), V.copy(), V.copy()
        self.HV = self.matvec(self.penalty.compose(V), np.empty_like(self.g))
        self.HZ, self.HV_prev, self.E = self.HV.copy(), self.HV.copy(), self.HV.copy()
        self.GZ = np.empty_like(V)
        self._gradient_at_z()
        self.L, self.split = None, False
        #: V at the last certificate (where the fit's groups restart after a lost worker;
        #: kept only where asked) and at the best one
        self.checked, self.best = None, V.copy()

    def _gradient_at_z(self) -> None:
        """``GZ = spread(g - H Z)``: minus the gradient at Z."""
        if self.plain:
            np.subtract(self.g, self.HZ, out=self.GZ)
        else:
            self.GZ[...] = self.penalty.spread(self.g - self.HZ)

    def gradient(self, L: float, move: Any, split: bool, best: bool = False) -> list | None:
        """The move of the last accepted step (None: none, a retry at a larger ``L``;
        :data:`RESTART`; or the momentum coefficient), then the prox's point
        ``U = Z + spread(g - H Z) / L``; with ``split`` (several groups) its prox summary,
        block by block, for the caller to sum over every block in their order (so that the
        sum does not depend on which worker holds which block). With ``best`` the iterate
        certified last is first kept as the best one (:meth:`columns`)."""
        if best:
            np.copyto(self.best, self.V)
        if move is not None:
            V, HV = self.V, self.HV
            if isinstance(move, str):  # momentum against the step: restart
                np.copyto(self.Z, V)
                np.copyto(self.HZ, HV)
            else:  # Z = V + move (V - V_prev), and H Z alike
                np.subtract(V, self.V_prev, out=self.D)
                self.D *= move
                np.add(V, self.D, out=self.Z)
                np.subtract(HV, self.HV_prev, out=self.E)
                self.E *= move
                np.add(HV, self.E, out=self.HZ)
            # the accepted step becomes the previous one (its buffers free for the next)
            self.V_prev, self.V = V, self.V_prev
            self.HV_prev, self.HV = HV, self.HV_prev
            self._gradient_at_z()
        self.L, self.split = L, split
        np.divide(self.GZ, L, out=self.U)
        self.U += self.Z
        if not split:
            return None
        return [self.penalty.prox_summary(self.U[..., a:b]) for a, b in self._spans()]

    def descend(self, summary: Any = None) -> list[tuple[float, float, float]]:
        """The prox step ``V = prox(U, 1 / L)`` (from the summed ``summary`` where split),
        ``H W`` at it, and the step's ``(|dV|^2, dW' H dW, <Z - V, V - V_prev>)`` over each
        block's columns."""
        pen, L = self.penalty, self.L
        if self.split:
            V = pen.prox_given(self.U, summary, 1.0 / L, self.alpha)
        else:
            V = pen.prox_into(self.U, 1.0 / L, self.alpha)
        if V is self.U:  # (written in place: the point's buffer holds V now)
            self.U, self.V = self.V, V
        else:
            np.copyto(self.V, V)
        V = self.V
        self.matvec(pen.compose(V), self.HV)
        dV = np.subtract(V, self.Z, out=self.D)
        dW = pen.compose(dV)
        dH = np.subtract(self.HV, self.HZ, out=self.E)
        # <Z - V, V - V_prev> = -<dV, V - V_prev>, exactly (a negation of every product)
        step = np.subtract(V, self.V_prev, out=self.U)
        return [(_dot(dV[..., a:b], dV[..., a:b]), _dot(dW[..., a:b], dH[..., a:b]),
                 -_dot(dV[..., a:b], step[..., a:b])) for a, b in self._spans()]

    def widths(self) -> list[int]:
        """The number of tasks of each block the group holds."""
        return np.diff(self.cuts).tolist()

    def certify(self, gap: bool, alone: bool, keep: bool) -> list | None:
        """The duality gap's pieces of the last step, block by block (one for all where
        ``alone``: this group holds every task), O(p) or O(p^2) numbers each where the
        penalty summarizes (:func:`~regmtl.solvers.blocks.group_certificate.gap_pieces`); None
        without a gap (then :meth:`kkt_point` and :meth:`kkt_squares`). With ``keep`` V is
        kept as the last certificate's iterate (:meth:`columns`)."""
        if keep:
            if self.checked is None:
                self.checked = self.V.copy()
            else:
                np.copyto(self.checked, self.V)
        if not gap:
            return None
        pen, V = self.penalty, self.V
        G, TT, YT, B = self.quadratic.gap_per_task(pen.compose(V), self.HV)
        spans = [(0, int(self.cuts[-1]))] if alone else self._spans()
        return gap_pieces(pen, self.alpha, V, G, TT, YT, B, spans, alone)

    def kkt_point(self, L: float, split: bool) -> list | None:
        """The point ``U = V + spread(g - H W) / L`` of the KKT residual's prox step, and with
        ``split`` its prox summary block by block (for the caller to sum)."""
        U = self.U
        if self.plain:
            np.subtract(self.g, self.HV, out=U)
        else:
            U[...] = self.penalty.spread(self.g - self.HV)
        U /= L
        U += self.V
        self.L_kkt = L
        return [self.penalty.prox_summary(U[..., a:b]) for a, b in self._spans()] \
            if split else None

    def kkt_squares(self, summary: Any, alone: bool) -> list[float]:
        """``|V - prox(U, 1 / L)|^2`` block by block (one for all where ``alone``), the prox
        from the summed ``summary`` where split."""
        pen, step = self.penalty, 1.0 / self.L_kkt
        P = pen.prox_into(self.U, step, self.alpha) if summary is None else \
            pen.prox_given(self.U, summary, step, self.alpha)
        D = np.subtract(self.V, P, out=self.D)
        spans = [(0, int(self.cuts[-1]))] if alone else self._spans()
        return [_dot(D[..., a:b], D[..., a:b]) for a, b in spans]

    def columns(self, which: str) -> list[np.ndarray]:
        """V's columns block by block: of the last step (``"last"``), the best certificate
        (``"best"``) or the last one kept (``"checked"``)."""
        V = {"last": self.V, "best": self.best, "checked": self.checked}[which]
        return [V[..., a:b] for a, b in self._spans()]


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``<a, b>`` of two arrays of one shape, strided views read in place."""
    return float(np.einsum(_SUBSCRIPTS[a.ndim], a, b))


_SUBSCRIPTS = {1: "i,i->", 2: "ij,ij->", 3: "kij,kij->"}
