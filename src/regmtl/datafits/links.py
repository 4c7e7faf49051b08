"""The exponential of the log-link losses, capped so that it never overflows."""

from __future__ import annotations

import numpy as np

__all__ = ["EXP_MAX", "OFFSET_MAX", "check_offset", "safe_exp"]

#: scores are capped here inside ``exp`` (e^700 ~ 1e304, below float64's largest number)
EXP_MAX = 700.0
#: the largest ``|offset|`` a log-link loss folds into its targets and weights (``e^{300}``
#: ~ 2e130: the folded weights and their products with the means stay within float64)
OFFSET_MAX = 300.0


def safe_exp(f: np.ndarray) -> np.ndarray:
    """``exp(min(f, 700))``: finite for every finite score."""
    return np.exp(np.minimum(f, EXP_MAX))


def check_offset(offset: np.ndarray, loss: str) -> None:
    """Refuse an offset that ``e^offset`` cannot carry (``|offset| > OFFSET_MAX``).

    The estimators take each task's centre of the offsets into its intercept first (exact
    with ``fit_intercept=True``), so only a spread beyond ``2 OFFSET_MAX`` within a task
    (or a far offset without intercepts) is refused."""
    top = float(np.max(np.abs(offset), initial=0.0))
    if top > OFFSET_MAX:
        raise ValueError(
            f"offset reaches |{top:.6g}| (after each task's centre goes to its intercept) "
            f"beyond the {OFFSET_MAX:g} that exp(offset) of the {loss} loss can carry in "
            "float64; give offsets that span less than "
            f"{2 * OFFSET_MAX:g} within a task, with fit_intercept=True to absorb a "
            "constant per task.")
