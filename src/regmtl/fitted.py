"""A linear fit's attributes, formed and written in one place.

Every route of a linear fit (the plain problem, the reduced one of the per-feature terms, the
out-of-core fit of a task source) ends in :func:`publish` with the attributes of
:func:`fit_attributes`: those of the previous fit that this one does not set are removed
first, so that a refit equals a fresh fit attribute for attribute (a squared fit's
``residual_variance_`` does not survive a refit under the Poisson loss, nor a trace fit's
``rank_`` one under L2,1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .penalties import STRUCTURE_ATTRS

__all__ = ["FIT_ATTRS", "fit_attributes", "publish", "publish_input"]

#: every attribute a linear fit may set (its loss, coefficients, certificate and structure)
FIT_ATTRS = ("loss_", "tasks_", "n_tasks_", "input_form_", "coef_", "intercept_", "n_iter_",
             "task_sizes_", "dual_gap_", "kkt_residual_", "objective_", "objective_at_zero_",
             "certificate_relative_", "residual_variance_", *STRUCTURE_ATTRS)


def fit_attributes(*, loss: Any, tasks: np.ndarray, form: str, coef: np.ndarray,
                   intercept: np.ndarray, single: bool, n_iter: int, certificate: Any,
                   task_sizes: np.ndarray, structure: dict, constant: float = 0.0,
                   variance: np.ndarray | None = None) -> dict[str, Any]:
    """The attributes of a fit: ``coef`` (T x p, or p for a single task) and ``intercept``
    (T,) in the input's units; the ``certificate`` as ``dual_gap_`` or ``kkt_residual_``,
    ``certificate_relative_`` (what the fit compared with ``tol``) and ``objective_at_zero_``
    (its scale, the objective at W = 0 with fitted intercepts); ``objective_`` its primal plus
    ``constant`` (an offset's folded constant); the penalty's ``structure``;
    ``residual_variance_`` where the loss is the squared one (``variance``)."""
    intercept = np.asarray(intercept, dtype=np.float64)
    out = {
        "loss_": loss,
        "tasks_": tasks,
        "n_tasks_": len(tasks),
        "input_form_": form,
        "coef_": coef,
        "intercept_": float(intercept[0]) if single else intercept.copy(),
        "n_iter_": n_iter,
        "task_sizes_": task_sizes,
        "dual_gap_" if certificate.kind == "duality_gap" else "kkt_residual_":
            float(certificate.value),
        "objective_": float(certificate.primal) + constant,
        "objective_at_zero_": float(certificate.scale),
        "certificate_relative_": float(certificate.relative),
        **structure,
    }
    if variance is not None:
        out["residual_variance_"] = variance
    return out


def publish(model: Any, attributes: dict[str, Any]) -> Any:
    """Write a fit's ``attributes`` on ``model``, every other attribute of :data:`FIT_ATTRS`
    (a previous fit's) removed first; returns ``model``."""
    for name in FIT_ATTRS:
        if name not in attributes and name in vars(model):
            delattr(model, name)
    for name, value in attributes.items():
        setattr(model, name, value)
    return model


def publish_input(model: Any, n_features: int, feature_names: Any) -> None:
    """Write ``n_features_in_`` and ``feature_names_in_`` (removed where ``feature_names``
    is None) of rows that scikit-learn's ``validate_data`` did not read (task blocks on Dask,
    a task source)."""
    model.n_features_in_ = int(n_features)
    if feature_names is not None:
        model.feature_names_in_ = feature_names
    elif "feature_names_in_" in vars(model):
        del model.feature_names_in_
