"""Model selection: regularization paths, cross-validated estimators and information criteria.

``path``: warm-started solutions along an alpha grid; ``folds``: per-task cross-validation
splits; ``scoring``: task-averaged validation scores; AIC/BIC and degrees of freedom come from
:mod:`regmtl.inference.criteria`; ``search``: :class:`MultiTaskRegressorCV` and
:class:`MultiTaskClassifierCV`; ``stability``: complementary-pairs stability selection
(:func:`stability_selection`).
"""

from ..inference.criteria import degrees_of_freedom, information_criterion, neg2_log_likelihood
from .folds import task_folds
from .path import (
    RegularizationPath,
    alpha_grid,
    alpha_scale,
    path_alphas,
    regularization_path,
)
from .search import MultiTaskClassifierCV, MultiTaskRegressorCV
from .stability import StabilitySelection, stability_selection

__all__ = [
    "RegularizationPath",
    "regularization_path",
    "alpha_grid",
    "alpha_scale",
    "path_alphas",
    "task_folds",
    "degrees_of_freedom",
    "neg2_log_likelihood",
    "information_criterion",
    "MultiTaskRegressorCV",
    "MultiTaskClassifierCV",
    "stability_selection",
    "StabilitySelection",
]
