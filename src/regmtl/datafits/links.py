"""The exponential of the log-link losses, capped so that it never overflows."""

from __future__ import annotations

import numpy as np

__all__ = ["EXP_MAX", "safe_exp"]

#: scores are capped here inside ``exp`` (e^700 ~ 1e304, below float64's largest number)
EXP_MAX = 700.0


def safe_exp(f: np.ndarray) -> np.ndarray:
    """``exp(min(f, 700))``: finite for every finite score."""
    return np.exp(np.minimum(f, EXP_MAX))
