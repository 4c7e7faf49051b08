"""A report of a fitted linear model's coefficients: their confidence intervals and, with a
stability selection, how often each feature is selected.

:func:`coefficient_report` draws what :meth:`~regmtl.MultiTaskRegressor.coef_table` and
:func:`regmtl.stability_selection` return: the intervals of the coefficients of largest
:math:`|z|` (a forest plot and a table, the whole table in the details), how they were
computed, and the selection probabilities along alpha with the stable set and its bound on
the expected number of false selections.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .document import Report

__all__ = ["coefficient_report", "METHOD_WORDS"]

#: how each method of ``coef_table`` computes its standard errors, in words
METHOD_WORDS = {
    "fisher": "the inverse Fisher information at the fit (the squared and Gamma losses' "
              "dispersion estimated from the residuals)",
    "sandwich": "the robust (HC0) sandwich: the inverse Hessian around the outer product of "
                "the rows' gradients",
    "kernel": "the pinball loss's kernel sandwich (Epanechnikov kernel, Hall-Sheather "
              "bandwidth, as statsmodels' QuantReg)",
    "bootstrap": "a pairs bootstrap within each task",
    "debiased": "the debiased (desparsified) estimator: the penalized fit corrected by one "
                "Newton step whose inverse Hessian is a nodewise-lasso estimate (van de Geer, "
                "Bühlmann, Ritov & Dezeure 2014); its intervals hold for penalized "
                "coefficients too",
}


def _shown(table: Any, top: int) -> Any:
    """The ``top`` rows of largest |z| (intercepts last), numbers rounded for reading."""
    z = np.abs(table["z"].to_numpy(dtype=np.float64))
    order = np.argsort(-np.nan_to_num(z, nan=-1.0), kind="stable")[:top]
    return table.iloc[order].reset_index(drop=True)


def coefficient_report(model: Any, X: Any, y: Any, task: Any = None, *, offset: Any = None,
                       sample_weight: Any = None, level: float = 0.95, method: str = "auto",
                       stability: Any = None, top: int = 25, title: str | None = None,
                       data_name: str = "data", created: Any = None,
                       table: Any = None) -> Report:
    """A report of a fitted linear model's coefficients with their confidence intervals.

    Parameters
    ----------
    model : MultiTaskRegressor or MultiTaskClassifier
        The fitted model.
    X, y, task, offset, sample_weight
        The rows the intervals are computed on (the training rows), as ``fit`` takes them.
    level : float, default=0.95
        The intervals' level.
    method : str, default="auto"
        As :meth:`~regmtl.MultiTaskRegressor.coef_table` takes it.
    stability : StabilitySelection, optional
        What :func:`regmtl.stability_selection` returned: its selection probabilities along
        alpha, stable set and bound join the report.
    top : int, default=25
        Coefficients drawn and listed (those of the largest :math:`|z|`).
    title : str, optional
        The title; default ``"regmtl coefficients: <data_name>"``.
    data_name : str, default="data"
        Name of the data in the default title.
    created : datetime, date or str, optional
        The footer date (see :class:`~regmtl.report.Report`).
    table : pandas.DataFrame, optional
        The coefficient table already computed on these rows (not computed again).

    Returns
    -------
    Report
        Write it with :meth:`~regmtl.report.Report.write`.

    Raises
    ------
    ValueError
        What ``coef_table`` refuses (a penalty without valid intervals, names the
        alternatives), or ``top`` below 1.
    """
    from .plotting import plot_coef_intervals

    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top={top!r} must be an int >= 1.")
    if table is None:
        table = model.coef_table(X, y, task=task, offset=offset,
                                 sample_weight=sample_weight, level=level, method=method)
    methods = list(dict.fromkeys(table["method"].astype(str)))
    penalty = getattr(model, "penalty_", getattr(model, "penalty", None))
    alpha = np.asarray(getattr(model, "alpha_", getattr(model, "alpha", np.nan)), dtype=float)
    rep = Report(title or f"regmtl coefficients: {data_name}",
                 f"{type(model).__name__}, penalty {penalty}, alpha "
                 f"{', '.join(f'{a:.4g}' for a in np.ravel(alpha)[:5])}; "
                 f"{level:.0%} intervals ({', '.join(methods)})", created=created)
    words = "; ".join(f"*{m}*, {METHOD_WORDS.get(m, m)}" for m in methods)
    away = int(((table["ci_lower"] > 0) | (table["ci_upper"] < 0)).sum())
    rep.add_text(f"The standard errors: {words}. z is the coefficient over its standard "
                 f"error, the p-value two-sided against 0; {away} of {len(table)} intervals "
                 "leave out 0.")
    rep.add_heading("Coefficients and their intervals")
    rep.add_figure(plot_coef_intervals(table, top=top),
                   caption=f"The {min(top, len(table))} coefficients of largest |z|, with "
                           f"their {level:.0%} intervals (filled: the interval leaves out 0)")
    rep.add_table(_shown(table, top), caption=f"The {min(top, len(table))} coefficients of "
                                              "largest |z|")
    rep.add_table(table, caption="Every coefficient",
                  details=f"The whole table ({len(table)} rows)")
    if stability is not None:
        rep.add_heading("Stability selection")
        selected = list(stability.selected_)
        unimodal = getattr(stability, "bound_unimodal", float("nan"))
        rep.add_text(
            f"{len(selected)} {stability.unit.replace('_', ' x ')}(s) selected at threshold "
            f"{stability.threshold:g}: one is selected when, at some alpha of the range used, "
            f"at least that share of the {2 * stability.n_pairs} half-sample fits chose it "
            "(complementary pairs: each task's rows split in two halves). The expected "
            f"number of false selections is at most {stability.bound:.3g} (Meinshausen & "
            f"Bühlmann 2010; q = {stability.q:.3g} selected per fit on average)"
            + ("" if not np.isfinite(unimodal) else
               f", {unimodal:.3g} under Shah & Samworth's (2013) unimodality") + ".")
        rep.add_figure(stability.plot(), caption="Selection probabilities along alpha; the "
                                                 "dashed line is the threshold")
    return rep
