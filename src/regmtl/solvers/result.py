"""What every solver returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .certificates import Certificate


@dataclass
class SolverResult:
    """Coefficients ``W`` (p x T), intercepts ``b`` (T,), iterations and the final certificate."""

    W: np.ndarray
    b: np.ndarray
    n_iter: int
    certificate: Certificate
    converged: bool
