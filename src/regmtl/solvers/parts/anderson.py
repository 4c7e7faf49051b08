r"""Anderson extrapolation of the iterates of a fixed-point method (Bertrand & Massias 2021).

From the last ``K + 1`` iterates ``x_0 .. x_K`` with differences ``u_k = x_{k+1} - x_k``, the
extrapolated point is ``sum_k z_k x_{k+1}`` where ``z`` minimizes ``||sum_k z_k u_k||`` subject to
``sum_k z_k = 1`` (a least-squares problem once the constraint eliminates one ``z_k``).
Coordinate descent converges linearly near a solution, and this step then removes most of the
slow mode. The
caller keeps the extrapolated point only when it lowers the objective, so convergence is kept.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Anderson"]


class Anderson:
    """Collects iterates; every ``K + 1`` of them, proposes an extrapolated point."""

    def __init__(self, K: int = 5):
        self.K = int(K)
        self.history: list[np.ndarray] = []

    def reset(self) -> None:
        self.history = []

    def push(self, x: np.ndarray) -> np.ndarray | None:
        """Record ``x``; return an extrapolated point when ``K + 1`` iterates are at hand."""
        self.history.append(np.array(x, dtype=np.float64).ravel())
        if len(self.history) <= self.K:
            return None
        X = np.array(self.history)
        self.history = []
        U = np.diff(X, axis=0)
        if not np.all(np.isfinite(U)) or not np.any(U):
            return None
        # sum z = 1 eliminated: z_K = 1 - sum_{k<K} z_k, then min ||A g - b|| by least squares,
        # minimum norm (exact also when the differences are linearly dependent), solved through
        # the K x K Gram of the tall A (O(n K^2); its eigenvectors are A's right singular
        # vectors). Directions in which the differences are at the rounding level of the
        # iterates carry no signal: they are cut, so that the extrapolation does not amplify
        # rounding (the same problem in another row order then gives the same point); the
        # Gram's eigenvalues are exact to ~1e-16 of the largest, so the cut is at least 1e-13.
        A = (U[:-1] - U[-1]).T
        lam, E = np.linalg.eigh(A.T @ A)
        if not lam[-1] > 0.0:
            return None
        noise = 1e-9 * np.abs(X).max() * np.sqrt(X.shape[1])
        rcond = min(noise / np.sqrt(lam[-1]), 0.5)
        keep = lam > max(rcond * rcond, 1e-13) * lam[-1]
        E = E[:, keep]
        g = E @ ((E.T @ (A.T @ -U[-1])) / lam[keep])
        z = np.append(g, 1.0 - g.sum())
        if not np.all(np.isfinite(z)):
            return None
        return z @ X[1:]


class AndersonMixing:
    r"""Anderson mixing of a fixed-point map ``g`` (type II, window ``m``): from the pairs
    ``(x_i, g(x_i))`` of the last ``m + 1`` evaluations, with residuals ``f_i = g(x_i) - x_i``,
    the next point is ``sum_i z_i g(x_i)`` where ``z`` minimizes ``||sum_i z_i f_i||`` subject
    to ``sum_i z_i = 1``. Unlike :class:`Anderson` the points need not follow one another by
    ``g`` (a kept extrapolation starts the next evaluation), and a proposal is made at every
    step once two pairs are at hand. The caller keeps it only when it lowers the objective
    (else :meth:`reset`)."""

    def __init__(self, m: int = 3):
        self.m = int(m)
        self.x: list[np.ndarray] = []
        self.g: list[np.ndarray] = []

    def reset(self) -> None:
        self.x, self.g = [], []

    def push(self, x: np.ndarray, gx: np.ndarray) -> np.ndarray | None:
        """Record ``g(x)`` at ``x``; return the mixed point when two pairs or more are held."""
        self.x.append(np.array(x, dtype=np.float64).ravel())
        self.g.append(np.array(gx, dtype=np.float64).ravel())
        self.x, self.g = self.x[-(self.m + 1):], self.g[-(self.m + 1):]
        if len(self.x) < 2:
            return None
        G = np.array(self.g)
        F = G - np.array(self.x)
        if not np.all(np.isfinite(F)):
            self.reset()
            return None
        # z_K = 1 - sum_{i<K} z_i: min ||A c + f_K|| with A = (f_i - f_K)_{i<K}; minimum norm
        A = (F[:-1] - F[-1]).T
        c, *_ = np.linalg.lstsq(A, -F[-1], rcond=1e-10)
        z = np.append(c, 1.0 - c.sum())
        if not np.all(np.isfinite(z)):
            self.reset()
            return None
        return z @ G
