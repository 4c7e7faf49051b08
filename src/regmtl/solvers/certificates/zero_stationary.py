r"""W = 0 of a nonconvex penalty at ``alpha >= alpha_max``: stationary, not necessarily the
only stationary point, nor the best one.

For a convex penalty, ``alpha >= alpha_max`` (``G0 = -grad`` at W = 0 inside the dual ball)
makes W = 0 the minimum. For a nonconvex one (``penalty.nonconvex``) it makes W = 0 a
stationary point only: a capped penalty pays at most ``alpha cap`` for a row far from zero,
and the square root of the nonconvex fused group lasso is not equivariant to the scale of
``y`` (the same problem with ``y`` scaled by ``s`` and ``alpha`` by ``s^{3/2}`` can have a
nonzero stationary point of lower objective). The fit returns W = 0 there without iterating
(the majorize-minimize stages of a ``majorized`` penalty start from its convex relaxation,
whose ``alpha_max`` it is, and stop at once): :func:`warn_zero_stationary` says so.
"""

from __future__ import annotations

import warnings

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from .certify import reference

__all__ = ["warn_zero_stationary", "zero_stationary_note"]


def zero_stationary_note(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                         fit_intercept: bool) -> str | None:
    """The warning's text where ``penalty`` is nonconvex and ``alpha >= alpha_max`` (W = 0
    returned as a stationary point), None otherwise."""
    if not penalty.nonconvex or alpha <= 0 or getattr(penalty, "alpha_max", None) is None:
        return None
    try:
        top = float(penalty.alpha_max(reference(data, datafit.bind(data), fit_intercept).G0))
    except ValueError:  # no finite alpha gives W = 0
        return None
    if not alpha >= top:
        return None
    if penalty.majorized:
        where = (f"alpha_max={top:.6g} of its convex relaxation (the first majorize-minimize "
                 "stage, every row's weight 1), from which the stages start and stop at once")
    else:
        where = (f"alpha_max={top:.6g} (the gradient at W = 0 lies within the penalty's slope "
                 "at zero)")
    return (f"{type(penalty).__name__}: alpha={alpha:.6g} is at or above {where}; the fit "
            "returns W = 0, which is a stationary point, but a nonconvex penalty may have "
            "other stationary points of lower objective. For a nonzero one, fit at an alpha "
            f"below {top:.6g} (e.g. along regmtl.regularization_path).")


def warn_zero_stationary(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                         fit_intercept: bool, stacklevel: int = 3) -> None:
    """Warn (``UserWarning``) with :func:`zero_stationary_note` where it applies."""
    note = zero_stationary_note(data, datafit, penalty, alpha, fit_intercept)
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=stacklevel)
