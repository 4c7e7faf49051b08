r"""Dirty models: W = P + Q, a shared structure plus a task-specific one.

==============================  ==================================================
penalty                         Omega over V = (P, Q), W = P + Q
==============================  ==================================================
``Dirty(own_weight=g)``         alpha (sum_j ||P_j||_2 + g ||Q||_1)   (Jalali et al. 2010)
``SparseLowRank(sparse_weight)``  alpha (||Q||_* + g ||P||_1)           (Chen, Liu & Ye 2012)
==============================  ==================================================

The solver works on the lifted variable ``V`` of shape (2, p, T) (``V[0] = P``, ``V[1] = Q``).
As functions of W these are infimal convolutions, whose conjugate is the sum of the two parts'
conjugates: both dual-norm balls at once. Fits certify with a duality gap, and
``alpha_max = max(N1*(G0), N2*(G0) / g)``.
"""

from __future__ import annotations

import numpy as np

from .base import Penalty, check_positive

__all__ = ["Dirty", "SparseLowRank"]


def _soft(V: np.ndarray, thr: float) -> np.ndarray:
    return np.sign(V) * np.maximum(np.abs(V) - thr, 0.0)


def _row_norms(V: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", V, V))


def _group_soft(V: np.ndarray, thr: float) -> np.ndarray:
    nrm = _row_norms(V)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
    return V * scale[:, None]


def _svt(V: np.ndarray, thr: float) -> np.ndarray:
    U, s, Vt = np.linalg.svd(V, full_matrices=False)
    return (U * np.maximum(s - thr, 0.0)) @ Vt


class _Decomposition(Penalty):
    """``W = P + Q`` with ``alpha (N1(P) + g N2(Q))`` (the weight g on one of the two parts)."""

    _param_names: tuple[str, ...] = ()
    structure_attrs = ("P_", "Q_")

    def lift(self, W):
        return np.stack([W, np.zeros_like(W)])

    def compose(self, V):
        return V[0] + V[1]

    def spread(self, G):
        return np.stack([G, G])

    def conjugate(self, G, alpha):
        return 0.0

    def dual_scaling(self, G, alpha):
        m = self._dual_norm(G)
        return 1.0 if m <= alpha else alpha / m

    def alpha_max(self, G0):
        return self._dual_norm(G0)

    def structure(self, V, alpha):
        return {"P_": np.ascontiguousarray(V[0].T), "Q_": np.ascontiguousarray(V[1].T)}

    def variable(self, structure):
        if "P_" not in structure or "Q_" not in structure:
            return None
        return np.stack([np.atleast_2d(structure["P_"]).T, np.atleast_2d(structure["Q_"]).T])

    def _weight(self) -> float:
        return check_positive(getattr(self, self._param_names[0]), self._param_names[0])

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        self._weight()
        return self


class Dirty(_Decomposition):
    """Dirty model (Jalali et al. 2010): ``W = P + Q``, ``alpha (sum_j ||P_j||_2 + g ||Q||_1)``.

    P holds features shared by all tasks (rows selected jointly), Q task-specific exceptions.
    A large ``own_weight`` g forbids exceptions (the L2,1 model); a small one lets every task
    pick its own features (the L1 model). Exposes ``P_`` and ``Q_`` (T x p, like ``coef_``).
    """

    name = "dirty"
    _param_names = ("own_weight",)

    def __init__(self, own_weight: float = 1.0):
        self.own_weight = own_weight

    def value(self, V, alpha):
        g = self._weight()
        return float(alpha * (_row_norms(V[0]).sum() + g * np.abs(V[1]).sum()))

    def prox(self, V, step, alpha):
        g = self._weight()
        return np.stack([_group_soft(V[0], step * alpha), _soft(V[1], step * alpha * g)])

    def _dual_norm(self, G):
        g = self._weight()
        return float(max(_row_norms(G).max(initial=0.0), np.abs(G).max(initial=0.0) / g))


class SparseLowRank(_Decomposition):
    """Sparse + low rank (Chen, Liu & Ye 2012): ``W = P + Q``, ``alpha (||Q||_* + g ||P||_1)``.

    Q spans a subspace shared by the tasks, P adds sparse task-specific corrections. Exposes
    ``P_`` (sparse part) and ``Q_`` (low-rank part), T x p like ``coef_``.
    """

    name = "sparse_lowrank"
    _param_names = ("sparse_weight",)

    def __init__(self, sparse_weight: float = 1.0):
        self.sparse_weight = sparse_weight

    def lift(self, W):
        return np.stack([np.zeros_like(W), W])

    def value(self, V, alpha):
        g = self._weight()
        nuc = np.linalg.svd(V[1], compute_uv=False).sum() if V[1].size else 0.0
        return float(alpha * (nuc + g * np.abs(V[0]).sum()))

    def prox(self, V, step, alpha):
        g = self._weight()
        return np.stack([_soft(V[0], step * alpha * g), _svt(V[1], step * alpha)])

    def _dual_norm(self, G):
        g = self._weight()
        spec = float(np.linalg.norm(G, 2)) if G.size else 0.0
        return float(max(spec, np.abs(G).max(initial=0.0) / g))
