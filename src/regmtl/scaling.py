r"""Fitting on standardized features and reporting the model in the original units.

With pooled means ``m_j`` and scales ``s_j`` (over the rows of all tasks), a fit on
``z = (x - m) / s`` with weights ``v_t`` and intercepts ``c_t`` is the model
``w_t = v_t / s`` and ``b_t = c_t - sum_j v_tj m_j / s_j`` on the raw features, so the saved
model predicts from raw features (the penalty acted on the standardized weights).

The solve's own rescaling (a problem far from 1 in magnitude fitted as the same problem with
X and y multiplied by powers of two) is the solvers' (:mod:`regmtl.solvers.parts.balance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .ranges import check_numeric_range

__all__ = ["pooled_scaling", "standardize", "stack_rows", "fit_standardized", "raw_units"]



def stack_rows(Xs: Sequence[Any]) -> Any:
    """The rows of all tasks in one matrix (sparse stays sparse).

    Parameters
    ----------
    Xs : sequence of array-like or sparse matrix of shape (n_t, n_features)
        The designs of the tasks.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix of shape (sum of n_t, n_features)
        The rows of task 0, then task 1, and so on: float64, CSR when any design is
        sparse.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.scaling import stack_rows
    >>> stack_rows([np.ones((2, 3)), np.zeros((4, 3))]).shape
    (6, 3)
    """
    if any(sp.issparse(X) for X in Xs):
        return sp.vstack([sp.csr_matrix(X) for X in Xs], format="csr")
    return np.vstack([np.asarray(X, dtype=np.float64) for X in Xs])


def pooled_scaling(Xs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    r"""Means and standard deviations of the features over the rows of all tasks.

    With :math:`N` rows stacked over the tasks, :math:`m_j = \frac1N \sum_r x_{rj}` and
    :math:`s_j = \sqrt{\frac1N \sum_r (x_{rj} - m_j)^2}` (population standard deviation).
    Sparse designs are not centered (that would fill them in): :math:`m = 0` and :math:`s`
    is the root mean square; the fitted intercepts absorb the means. A constant feature gets
    :math:`s_j = 1`. NaN entries (missing feature blocks,
    :meth:`~regmtl.Penalty.feature_blocks`) are left out: each feature's mean and deviation
    are over the rows that observe it, and
    :func:`standardize` keeps them NaN. The means and deviations are two-pass (exact for
    columns far from zero, such as timestamps); columns whose squares overflow or underflow
    float64 are refused (:func:`~regmtl.ranges.check_numeric_range`).

    Parameters
    ----------
    Xs : sequence of array-like or sparse matrix of shape (n_t, n_features)
        The designs of the tasks.

    Returns
    -------
    mean : ndarray of shape (n_features,)
        :math:`m`, the pooled means (zeros for sparse designs).
    scale : ndarray of shape (n_features,)
        :math:`s`, the pooled standard deviations (root mean squares for sparse designs).

    See Also
    --------
    standardize : Applies them.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.scaling import pooled_scaling
    >>> Xs = [np.array([[1.0, 10.0], [3.0, 10.0]]), np.array([[5.0, 10.0], [7.0, 10.0]])]
    >>> mean, scale = pooled_scaling(Xs)
    >>> mean.tolist(), scale.round(4).tolist()  # the constant feature gets scale 1
    ([4.0, 10.0], [2.2361, 1.0])
    """
    X = stack_rows(Xs)
    check_numeric_range(X, "X")  # before any square: a 1e200 column would overflow to inf
    if sp.issparse(X):
        mean = np.zeros(X.shape[1])
        scale = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel())
    elif np.isnan(X).any():  # missing feature blocks: the observed rows only
        seen = ~np.isnan(X)
        count = seen.sum(axis=0)
        mean = np.where(seen, X, 0.0).sum(axis=0) / np.maximum(count, 1)
        dev = np.where(seen, X - mean, 0.0)
        scale = np.sqrt((dev * dev).sum(axis=0) / np.maximum(count, 1))
    else:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
    scale[scale == 0.0] = 1.0
    return mean, scale


def standardize(Xs: Sequence[Any], mean: np.ndarray, scale: np.ndarray) -> list[Any]:
    """``(x - m) / s`` for every task (sparse: ``x / s``, still sparse).

    Parameters
    ----------
    Xs : sequence of array-like or sparse matrix of shape (n_t, n_features)
        The designs of the tasks.
    mean : ndarray of shape (n_features,)
        Feature means ``m`` (ignored for sparse designs).
    scale : ndarray of shape (n_features,)
        Feature scales ``s``, all nonzero.

    Returns
    -------
    list of ndarray or scipy.sparse.csr_matrix
        One standardized float64 design per task.

    See Also
    --------
    pooled_scaling : The usual ``mean`` and ``scale``.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.scaling import pooled_scaling, standardize
    >>> Xs = [np.array([[1.0, 10.0], [3.0, 10.0]]), np.array([[5.0, 10.0], [7.0, 10.0]])]
    >>> Z = standardize(Xs, *pooled_scaling(Xs))
    >>> Z[1].round(3).tolist()
    [[0.447, 0.0], [1.342, 0.0]]
    """
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
    r"""Fit on z-scored features; return the model expressed on the raw features.

    The estimator is fitted on :math:`z = (x - m) / s` with the pooled means and scales of
    :func:`pooled_scaling`, so the penalty acts on the standardized weights :math:`v_t`; the
    returned model has :math:`w_t = v_t / s` and :math:`b_t = c_t - \sum_j v_{tj} m_j / s_j`
    and predicts from raw features. Structure attributes in W's units (``P_``, ``Q_``) are
    rescaled; ``singular_values_`` are recomputed from the raw-unit coefficients.

    Parameters
    ----------
    estimator : MultiTaskRegressor, MultiTaskClassifier or their CV versions
        Fitted in place (on a dict of the tasks).
    Xs : sequence of array-like or sparse matrix of shape (n_t, n_features)
        The raw designs of the tasks.
    ys : sequence of array-like of shape (n_t,)
        The targets of the tasks.
    task_names : sequence, default=None
        Names of the tasks (the keys of the dict fit); default 0..T-1.
    feature_names : sequence of str, default=None
        Sets ``feature_names_in_``, so the model predicts from a DataFrame with those
        columns.
    standardize : bool, default=True
        z-score the features; False fits on the raw features (``m = 0``, ``s = 1``).

    Returns
    -------
    MultiTaskRegressor or MultiTaskClassifier
        The fitted linear model (``best_estimator_`` of a CV estimator), on raw units, with
        ``feature_mean_`` and ``feature_scale_`` set to :math:`m` and :math:`s`.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.datasets import make_multitask_regression
    >>> from regmtl.scaling import fit_standardized, pooled_scaling, standardize
    >>> data = make_multitask_regression(3, 30, 4, n_informative=2, random_state=0)
    >>> Xs = [X * [1.0, 10.0, 100.0, 1000.0] + 5.0 for X in data.X]  # very different units
    >>> model = fit_standardized(MultiTaskRegressor(penalty="l21", alpha=0.01), Xs, data.y,
    ...                          task_names=["a", "b", "c"])
    >>> model.tasks_.tolist(), model.feature_scale_.round(1).tolist()
    (['a', 'b', 'c'], [1.0, 11.7, 94.9, 867.3])

    The same predictions as a fit on the standardized features:

    >>> mean, scale = pooled_scaling(Xs)
    >>> ref = MultiTaskRegressor(penalty="l21", alpha=0.01).fit(standardize(Xs, mean, scale),
    ...                                                         data.y)
    >>> bool(np.allclose(model.coef_ * scale, ref.coef_))
    True
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
    return raw_units(model, mean, scale, feature_names)


def raw_units(model: Any, mean: np.ndarray, scale: np.ndarray,
              feature_names: Sequence[Any] | None = None) -> Any:
    """A model fitted on standardized features, expressed on the raw features (in place).

    The coefficients become ``coef / scale`` and the intercepts ``intercept - coef @ (mean /
    scale)`` (the dirty parts and the singular values with them); ``feature_mean_`` and
    ``feature_scale_`` are kept.

    Parameters
    ----------
    model : fitted estimator
        Fitted on the standardized features.
    mean, scale : ndarray of shape (p,)
        The standardization (:func:`pooled_scaling`).
    feature_names : sequence of str, optional
        Stored as ``feature_names_in_``.

    Returns
    -------
    estimator
        ``model`` itself, in raw units.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl import MultiTaskRegressor
    >>> from regmtl.scaling import raw_units
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(5.0, 2.0, (60, 3)), rng.standard_normal((60, 2))
    >>> mean, scale = X.mean(axis=0), X.std(axis=0)
    >>> model = raw_units(MultiTaskRegressor("l2", alpha=0.1).fit((X - mean) / scale, Y),
    ...                   mean, scale)
    >>> bool(np.allclose(model.predict(X), X @ model.coef_.T + model.intercept_))
    True
    """
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
