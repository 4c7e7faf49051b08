r"""Fitting on standardized features and reporting the model in the original units.

With pooled means ``m_j`` and scales ``s_j`` (over the rows of all tasks), a fit on
``z = (x - m) / s`` with weights ``v_t`` and intercepts ``c_t`` is the model
``w_t = v_t / s`` and ``b_t = c_t - sum_j v_tj m_j / s_j`` on the raw features, so the saved
model predicts from raw features (the penalty acted on the standardized weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["fit_standardized"]


def fit_standardized(estimator: Any, Xs: Sequence[Any], ys: Sequence[Any], *,
                     task_names: Sequence[Any] | None = None,
                     feature_names: Sequence[str] | None = None,
                     standardize: bool = True) -> Any:
    """Fit ``estimator`` (a regmtl estimator or CV estimator) on z-scored features; return the
    fitted linear model (``best_estimator_`` of a search) expressed on the raw features.

    Tasks are named ``task_names`` (the keys of a dict fit) and ``feature_names_in_`` is set
    from ``feature_names``, so the model predicts from a DataFrame with those columns.
    Structure attributes in W's units (``P_``, ``Q_``) are rescaled; ``singular_values_`` are
    recomputed from the raw-unit coefficients.
    """
    Xs = [np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
          for X in Xs]
    p = Xs[0].shape[1]
    if standardize:
        stacked = np.vstack(Xs)
        mean = stacked.mean(axis=0)
        scale = stacked.std(axis=0)
        scale[scale == 0.0] = 1.0
    else:
        mean, scale = np.zeros(p), np.ones(p)
    names = list(task_names) if task_names is not None else list(range(len(Xs)))
    Z = {name: (X - mean) / scale for name, X in zip(names, Xs, strict=True)}
    Y = {name: np.asarray(y) for name, y in zip(names, ys, strict=True)}
    estimator.fit(Z, Y)
    model = getattr(estimator, "best_estimator_", estimator)
    V = np.atleast_2d(model.coef_)
    model.coef_ = V / scale
    model.intercept_ = np.asarray(model.intercept_, dtype=np.float64) - V @ (mean / scale)
    for attr in ("P_", "Q_"):
        if hasattr(model, attr):
            setattr(model, attr, np.atleast_2d(getattr(model, attr)) / scale)
    if hasattr(model, "singular_values_"):
        model.singular_values_ = np.linalg.svd(model.coef_, compute_uv=False)
    if feature_names is not None:
        model.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
    model.feature_scale_ = scale
    model.feature_mean_ = mean
    return model
