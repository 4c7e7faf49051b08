"""Which standard errors a fit has: the one dispatch of ``coef_table`` and ``wald_test``.

A fit with no active penalty (``alpha`` 0 for every task, or every penalty factor 0) is an
M-estimator task by task: its covariance is ``"fisher"`` (the inverse Fisher information
times the dispersion; the default of the likelihood losses), ``"sandwich"`` (HC0; the
default of the Huber loss), ``"kernel"`` (the pinball loss's default: statsmodels
QuantReg's kernel sandwich) or ``"bootstrap"`` (pairs, per task). A penalized fit has
intervals only where its penalty declares them (:attr:`~regmtl.Penalty.intervals`):
``"debiased"`` for the lasso and L2,1; every other penalty is refused by name with the
alternatives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..datafits import Datafit
from ..feature_terms import terms_of
from ..penalties import make_penalty

__all__ = ["METHODS", "fitted_model", "choose_method", "penalized_mask"]

#: the ``method=`` values of ``coef_table`` and ``wald_test``
METHODS = ("auto", "fisher", "sandwich", "kernel", "bootstrap", "debiased")

_ALTERNATIVES = (
    "regmtl.stability_selection (which features are chosen, and how often); a refit "
    "with alpha=0 on the chosen features (its intervals ignore that they were chosen: too "
    "narrow); or penalty='l1' / 'l21' with method='debiased'")


def fitted_model(model: Any) -> Any:
    """The fitted linear model of ``model``: itself, or a search's refit
    (``best_estimator_`` of :class:`~regmtl.MultiTaskRegressorCV`)."""
    best = getattr(model, "best_estimator_", None)
    if best is not None:
        return best
    if hasattr(model, "cv_results_"):
        raise ValueError("the search was fitted with refit=False: it holds no model; refit "
                         "with refit=True.")
    if not hasattr(model, "coef_"):
        raise ValueError(f"{type(model).__name__} is not fitted: call fit first.")
    return model


def _factors(model: Any) -> np.ndarray:
    """The penalty factor of every coefficient, (p, T): ``inf`` excluded, 0 unpenalized."""
    W = model.coef_matrix_
    terms = terms_of(model, W.shape[0], W.shape[1], make_penalty(model.penalty))
    if terms is None:
        return np.ones_like(W)
    return np.broadcast_to(terms.factor.reshape(W.shape[0], -1), W.shape).copy()


def penalized_mask(model: Any) -> np.ndarray:
    """Whether each coefficient is penalized, (T, p): its task's alpha > 0 and its factor
    > 0 (an excluded one, held at 0, counts as penalized)."""
    alpha = np.broadcast_to(np.asarray(model.alpha, dtype=np.float64),
                            (model.coef_matrix_.shape[1],))
    return ((_factors(model) > 0) & (alpha > 0)[None, :]).T


def excluded_mask(model: Any) -> np.ndarray:
    """The coefficients held at 0 by ``exclude`` (factor ``inf``), (T, p)."""
    return np.isinf(_factors(model)).T


def _check_bounds(model: Any) -> None:
    for name in ("lower_bounds", "upper_bounds"):
        if getattr(model, name, None) is not None:
            raise ValueError(
                f"{name} is set: a coefficient at its bound has no normal interval. Refit "
                f"without bounds for standard errors, or use regmtl.stability_selection.")


def choose_method(model: Any, losses: list[Datafit], method: str) -> str:
    """The covariance method of a fit, by what its penalty and losses declare.

    Parameters
    ----------
    model : MultiTaskRegressor or MultiTaskClassifier
        A fitted model.
    losses : list of Datafit
        Each task's loss.
    method : {"auto", "fisher", "sandwich", "kernel", "bootstrap", "debiased"}
        Asked for; ``"auto"``: ``"kernel"`` where a task has the pinball loss,
        ``"sandwich"`` where one has the Huber loss, else ``"fisher"`` (unpenalized fits);
        ``"debiased"`` for a penalty that declares it.

    Returns
    -------
    str
        The method.

    Raises
    ------
    ValueError
        For an unknown method, a penalized fit whose penalty declares no intervals, a
        method the fit or a loss does not take (named, with the alternatives).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {list(METHODS)}.")
    _check_bounds(model)
    penalty = make_penalty(model.penalty)
    active = bool(penalized_mask(model).any())
    if active:
        if penalty.intervals == "debiased" and method in ("auto", "debiased"):
            if "quantile" in {loss.name for loss in losses}:
                raise ValueError(
                    f"method='debiased': the pinball loss has no curvature to debias "
                    f"{penalty!r} with; use {_ALTERNATIVES.split('; or')[0]}.")
            return "debiased"
        if penalty.intervals is None:
            raise ValueError(
                f"{penalty!r} at alpha={model.alpha!r} has no valid confidence intervals: a "
                "penalized (shrunk, selected) estimate is not centred at the truth. Use "
                f"{_ALTERNATIVES}.")
        raise ValueError(
            f"method={method!r} applies to a fit with no active penalty; {penalty!r} at "
            f"alpha={model.alpha!r} is penalized: use method='debiased' or refit with "
            "alpha=0.")
    if method == "debiased":
        raise ValueError("method='debiased' applies to a penalized L1 or L2,1 fit; this fit "
                         "has no active penalty: use method='auto' (its exact covariance).")
    names = {loss.name for loss in losses}
    if method == "auto":
        return "kernel" if "quantile" in names else "sandwich" if "huber" in names else "fisher"
    if method == "fisher" and names & {"quantile", "huber"}:
        what = "quantile" if "quantile" in names else "huber"
        raise ValueError(
            f"method='fisher': the {what} loss is no likelihood, so it has no Fisher "
            "information; use method='kernel' or 'bootstrap' (pinball loss), 'sandwich' "
            "(Huber), or 'auto'.")
    if method == "sandwich" and "quantile" in names:
        raise ValueError("method='sandwich': the pinball loss has no curvature (its bread is "
                         "a density); use method='kernel' or 'bootstrap'.")
    if method == "kernel" and names != {"quantile"}:
        raise ValueError("method='kernel' is the pinball loss's (a density at the quantile); "
                         f"this fit's losses are {sorted(names)}: use 'fisher' or "
                         "'sandwich'.")
    return method
