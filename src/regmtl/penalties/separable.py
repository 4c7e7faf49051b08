r"""Row-separable penalties: solved by block coordinate descent, certified by a duality gap.

=========================  ==========================================================
penalty                    Omega(W)
=========================  ==========================================================
``L1()``                   alpha * sum_jt |W_jt|
``L2()``                   alpha / 2 * ||W||_F^2
``ElasticNet(rho)``        alpha * (rho ||W||_1 + (1 - rho) / 2 ||W||_F^2)
``L21(rho)``               alpha * (rho sum_j ||W_j||_2 + (1 - rho) / 2 ||W||_F^2)
=========================  ==========================================================
"""

from __future__ import annotations

import numpy as np

from .base import Penalty, check_ratio

__all__ = ["L1", "L2", "ElasticNet", "L21"]


class _ElasticType(Penalty):
    r"""``alpha * (rho * sum_g ||W_g|| + (1 - rho) / 2 ||W||_F^2)`` over groups g.

    Groups are single entries (``group=False``) or rows (``group=True``).
    """

    group: bool = False
    _param_names = ("l1_ratio",)

    def check(self, n_features: int, n_tasks: int) -> Penalty:
        check_ratio(self.l1_ratio, "l1_ratio")
        return self

    def __init__(self, l1_ratio: float = 1.0):
        self.l1_ratio = l1_ratio

    @property
    def rho(self) -> float:
        return check_ratio(self.l1_ratio, "l1_ratio")

    def _norms(self, G: np.ndarray) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", G, G)) if self.group else np.abs(G)

    def value(self, W, alpha):
        rho = self.rho
        val = rho * self._norms(W).sum() if rho > 0 else 0.0
        if rho < 1:
            val += 0.5 * (1.0 - rho) * float(np.vdot(W, W))
        return float(alpha * val)

    def prox(self, W, step, alpha):
        rho = self.rho
        thr = step * alpha * rho
        shrink = 1.0 / (1.0 + step * alpha * (1.0 - rho))
        if self.group:
            nrm = self._norms(W)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(nrm > thr, 1.0 - thr / nrm, 0.0)
            return W * (scale * shrink)[:, None]
        return np.sign(W) * np.maximum(np.abs(W) - thr, 0.0) * shrink

    def bcd_params(self, alpha):
        rho = self.rho
        return alpha * rho, alpha * (1.0 - rho), self.group

    def dual_norm(self, G: np.ndarray) -> float:
        """Dual norm of the sparsity part: max |G_jt| or max_j ||G_j||."""
        return float(self._norms(G).max(initial=0.0))

    def dual_scaling(self, G: np.ndarray, alpha: float) -> float:
        if self.rho < 1.0:
            return 1.0
        m = self.dual_norm(G)
        return 1.0 if m <= alpha else alpha / m

    def conjugate(self, G: np.ndarray, alpha: float) -> float:
        """``Omega*(G) = sum_g (||G_g|| - alpha rho)_+^2 / (2 alpha (1 - rho))`` (0 if rho = 1)."""
        rho = self.rho
        if rho == 1.0:
            return 0.0
        excess = np.maximum(self._norms(G) - alpha * rho, 0.0)
        return float(np.dot(excess.ravel(), excess.ravel()) / (2.0 * alpha * (1.0 - rho)))

    def alpha_max(self, G0: np.ndarray) -> float:
        rho = self.rho
        if rho == 0.0:
            raise ValueError(
                f"{self!r} has no alpha_max: with l1_ratio=0 no finite alpha gives W = 0. "
                "Use l1_ratio > 0 or give an explicit alpha grid."
            )
        return self.dual_norm(G0) / rho

    def subdiff_distance(self, W: np.ndarray, G: np.ndarray, alpha: float) -> np.ndarray:
        """Per group: distance from ``G`` (minus the gradient) to the subdifferential at W."""
        rho = self.rho
        V = G - alpha * (1.0 - rho) * W
        l1 = alpha * rho
        if self.group:
            nw = self._norms(W)
            active = nw > 0
            out = np.maximum(self._norms(V) - l1, 0.0)
            if active.any():
                D = V[active] - l1 * W[active] / nw[active, None]
                out[active] = np.sqrt(np.einsum("ij,ij->i", D, D))
            return out
        return np.where(W != 0, np.abs(V - l1 * np.sign(W)), np.maximum(np.abs(V) - l1, 0.0))


class L1(_ElasticType):
    """Lasso penalty ``alpha * sum_jt |W_jt|`` (each task's support chosen on its own)."""

    name = "l1"
    _param_names = ()

    def __init__(self):
        self.l1_ratio = 1.0


class L2(_ElasticType):
    """Ridge penalty ``alpha / 2 * ||W||_F^2``."""

    name = "l2"
    _param_names = ()

    def __init__(self):
        self.l1_ratio = 0.0


class ElasticNet(_ElasticType):
    """Elastic net ``alpha * (rho ||W||_1 + (1 - rho) / 2 ||W||_F^2)``, ``rho = l1_ratio``."""

    name = "elasticnet"

    def __init__(self, l1_ratio: float = 0.5):
        self.l1_ratio = l1_ratio


class L21(_ElasticType):
    """Joint feature selection ``alpha * (rho sum_j ||W_j||_2 + (1 - rho) / 2 ||W||_F^2)``.

    ``W_j`` is feature j across all tasks, so a feature is kept or dropped for every task at once.
    With ``l1_ratio=1`` (default) and a shared design this is scikit-learn's ``MultiTaskLasso``;
    with ``l1_ratio < 1`` its ``MultiTaskElasticNet``.
    """

    name = "l21"
    group = True

    def __init__(self, l1_ratio: float = 1.0):
        self.l1_ratio = l1_ratio
