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
import scipy.sparse as sp

__all__ = ["pooled_scaling", "standardize", "stack_rows", "fit_standardized"]


def stack_rows(Xs: Sequence[Any]) -> Any:
    """The rows of all tasks in one matrix (sparse stays sparse)."""
    if any(sp.issparse(X) for X in Xs):
        return sp.vstack([sp.csr_matrix(X) for X in Xs], format="csr")
    return np.vstack([np.asarray(X, dtype=np.float64) for X in Xs])


def pooled_scaling(Xs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(m, s)``: means and standard deviations of the features over the rows of all tasks.

    Sparse designs are not centered (that would fill them in): ``m = 0`` and ``s`` is the root
    mean square; the fitted intercepts absorb the means. A constant feature gets ``s = 1``.
    """
    X = stack_rows(Xs)
    if sp.issparse(X):
        mean = np.zeros(X.shape[1])
        scale = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel())
    else:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
    scale[scale == 0.0] = 1.0
    return mean, scale


def standardize(Xs: Sequence[Any], mean: np.ndarray, scale: np.ndarray) -> list[Any]:
    """``(x - m) / s`` for every task (sparse: ``x / s``, still sparse)."""
    out = []
    for X in Xs:
        if sp.issparse(X):
            out.append(sp.csr_matrix(X) @ sp.diags(1.0 / scale))
        else:
            out.append((np.asarray(X, dtype=np.float64) - mean) / scale)
    return out


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
    if standardize:
        mean, scale = pooled_scaling(Xs)
    else:
        p = Xs[0].shape[1]
        mean, scale = np.zeros(p), np.ones(p)
    names = list(task_names) if task_names is not None else list(range(len(Xs)))
    Z = dict(zip(names, _standardize(Xs, mean, scale), strict=True))
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


_standardize = standardize  # fit_standardized has an argument of that name
