"""What every solver returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .certificates import Certificate


@dataclass
class SolverResult:
    """Coefficients ``W`` (p x T), intercepts ``b`` (T,), iterations, the final certificate and
    the penalty's variable ``V`` (W itself unless the penalty lifts it, as W = P + Q)."""

    W: np.ndarray
    b: np.ndarray
    n_iter: int
    certificate: Certificate
    converged: bool
    V: np.ndarray | None = None

    def __post_init__(self):
        if self.V is None:
            self.V = self.W
