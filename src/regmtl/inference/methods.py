r"""The estimators' inference methods: ``coef_table``, ``wald_test``, ``aic`` and ``bic``,
mixed into :class:`~regmtl.MultiTaskRegressor` and :class:`~regmtl.MultiTaskClassifier`."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from ..penalties import make_penalty
from ..reductions import FoldOffset, Problem
from ..taskdata import observed_weights
from .criteria import (
    degrees_of_freedom,
    information_criterion,
    likelihood_rows,
    neg2_log_likelihood,
)
from .route import fitted_model
from .table import coef_table
from .wald import WaldTest, wald_test

__all__ = ["InferenceMethods"]


class InferenceMethods:
    """Standard errors, tests and information criteria of a fitted linear model."""

    def coef_table(self, X: Any, y: Any, task: Any = None, offset: Any = None,
                   sample_weight: Any = None, level: float = 0.95, method: str = "auto",
                   n_boot: int = 200, random_state: Any = None, nodewise: Any = "cv") -> Any:
        r"""Standard errors, z tests and confidence intervals of the coefficients.

        :math:`z = \beta / se`, :math:`p = 2 \Phi(-|z|)`, interval
        :math:`\beta \pm z_{(1 + \mathrm{level}) / 2}\, se`; ``se`` from the covariance
        ``method`` (see :func:`regmtl.coef_table`, which this calls).

        Parameters
        ----------
        X, y, task, offset, sample_weight
            The rows the model was fitted on, in any input form of the estimator's ``fit``.
        level : float, default=0.95
            Confidence level.
        method : {"auto", "fisher", "sandwich", "kernel", "bootstrap", "debiased"}
            The covariance estimate.
        n_boot : int, default=200
            Resamples per task of ``"bootstrap"``.
        random_state : int, Generator or None
            Seeds ``"bootstrap"``.
        nodewise : {"cv", "universal"} or float, default="cv"
            The penalty of ``"debiased"``'s nodewise lassos (see :func:`regmtl.coef_table`).

        Returns
        -------
        pandas.DataFrame
            One row per task and coefficient: ``task``, ``feature``, ``coef``,
            ``std_error``, ``z``, ``p_value``, ``ci_lower``, ``ci_upper``, ``penalized``,
            ``method``.
        """
        return coef_table(self, X, y, task, offset, sample_weight, level, method, n_boot,
                          random_state, nodewise)

    def wald_test(self, X: Any, y: Any, task: Any = None, offset: Any = None,
                  sample_weight: Any = None, *, R: Any = None, r: Any = None,
                  features: Any = None, hypothesis: str = "zero", method: str = "auto",
                  n_boot: int = 200, random_state: Any = None,
                  nodewise: Any = "cv") -> WaldTest:
        r"""Wald test of :math:`R\beta = r`:
        :math:`(R\beta - r)^\top (R V R^\top)^{-1} (R\beta - r) \sim \chi^2_m`.

        See :func:`regmtl.wald_test`, which this calls (``features`` with
        ``hypothesis="zero"``: each feature is 0 in every task; ``"equal"``: the same
        effect in every task).

        Returns
        -------
        WaldTest
            ``statistic``, ``df``, ``p_value``, ``method``.
        """
        return wald_test(self, X, y, task, offset, sample_weight, R=R, r=r,
                         features=features, hypothesis=hypothesis, method=method,
                         n_boot=n_boot, random_state=random_state, nodewise=nodewise)

    def aic(self, X: Any, y: Any, task: Any = None, offset: Any = None,
            sample_weight: Any = None) -> float:
        r"""Akaike's information criterion of the fit on its rows:
        :math:`-2 \log L + 2\,\mathrm{df}`.

        The likelihood and the degrees of freedom are those
        :class:`~regmtl.MultiTaskRegressorCV` (``criterion="aic"``) charges at the same
        alpha: the Gaussian with one noise variance per task profiled out for the squared
        loss, the Bernoulli, Poisson and Gamma likelihoods for theirs
        (:func:`~regmtl.selection.neg2_log_likelihood`), and the penalty's declared
        degrees of freedom with the T intercepts
        (:func:`~regmtl.selection.degrees_of_freedom`; p + 1 per task unpenalized).

        Parameters
        ----------
        X, y, task, offset, sample_weight
            The rows the model was fitted on, in any input form of the estimator's ``fit``.

        Returns
        -------
        float
            The AIC; smaller is better.

        Raises
        ------
        ValueError
            For the Huber and pinball losses and a loss per task (no likelihood here:
            cross-validate), one alpha per task, or ``y`` missing.
        """
        return self._criterion("aic", X, y, task, offset, sample_weight)

    def bic(self, X: Any, y: Any, task: Any = None, offset: Any = None,
            sample_weight: Any = None) -> float:
        r"""The Bayesian information criterion of the fit on its rows:
        :math:`-2 \log L + \log(N)\,\mathrm{df}`, N the observed rows weighted by the
        sample weights (:meth:`aic` says the rest).

        Parameters
        ----------
        X, y, task, offset, sample_weight
            The rows the model was fitted on, in any input form of the estimator's ``fit``.

        Returns
        -------
        float
            The BIC; smaller is better.
        """
        return self._criterion("bic", X, y, task, offset, sample_weight)

    def _criterion(self, kind: str, X: Any, y: Any, task: Any, offset: Any,
                   sample_weight: Any) -> float:
        """AIC or BIC of the fit on its rows, as :class:`~regmtl.MultiTaskRegressorCV`
        computes it along a path: the same rows (read by the estimator's ``fit_rows``, on a
        clone: the model is left as it is), the offset folded as there, the same
        likelihood, degrees of freedom and N."""
        model = fitted_model(self)
        if y is None:
            raise ValueError(f"{kind}: y is required (the likelihood of the fit's rows).")
        if np.ndim(model.alpha) > 0:
            raise ValueError(f"{kind}: one alpha per task has no degrees of freedom here; "
                             "give one alpha, or cross-validate.")
        data, layout, datafit = clone(model).fit_rows(X, y, task, sample_weight)
        if list(data.tasks) != list(model.tasks_):
            raise ValueError(f"{kind}: the rows hold the tasks {list(data.tasks)}, the fit "
                             f"{list(model.tasks_)}: give the rows the model was fitted on.")
        base = data if layout is None else layout
        datafit.bind(base).neg2_log_likelihood(base, base.row_zeros(), observed_weights(base))
        fi = bool(model.fit_intercept)
        W, b = model.coef_matrix_, model._b
        penalty = make_penalty(model.penalty)
        structure = {k: getattr(model, k) for k in penalty.structure_attrs
                     if hasattr(model, k)}
        fit_data, o, shift = base, None, 0.0
        if offset is not None:
            fold = FoldOffset(offset)
            fit_data = fold.apply(Problem(base, datafit, None, fi)).data
            o, shift = fold.rows, fold.shift
        df = degrees_of_freedom(fit_data, datafit, penalty, float(model.alpha), W, b + shift,
                                structure, fi, tol=model.tol)
        f = fit_data.linear(W, b + shift if fi else None)
        neg2 = (neg2_log_likelihood(fit_data, datafit, f) if o is None else
                neg2_log_likelihood(base, datafit, f + o))
        return information_criterion(kind, neg2, df, likelihood_rows(fit_data))
