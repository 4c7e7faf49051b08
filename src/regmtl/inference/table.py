r"""``coef_table``: every coefficient of a fitted linear model with its standard error, Wald
z statistic, two-sided p-value and confidence interval.

For coefficient :math:`\beta` with standard error :math:`se = \sqrt{V_{\beta\beta}}`
(:mod:`~regmtl.inference.covariance`):

.. math::

    z = \beta / se, \qquad p = 2\,\Phi(-|z|), \qquad
    \beta \pm \Phi^{-1}\big(\tfrac{1 + \mathrm{level}}{2}\big)\, se.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from .._lazy import lazy_module
from .estimate import estimate

__all__ = ["coef_table"]

pd = lazy_module("pandas")


def _check_level(level: Any) -> float:
    if not isinstance(level, Real) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level={level!r}: give the confidence level as a number strictly "
                         "between 0 and 1 (0.95 for 95 % intervals).")
    return float(level)


def coef_table(model: Any, X: Any, y: Any, task: Any = None, offset: Any = None,
               sample_weight: Any = None, level: float = 0.95, method: str = "auto",
               n_boot: int = 200, random_state: Any = None, nodewise: Any = "cv") -> Any:
    r"""Standard errors, z tests and confidence intervals of a fitted model's coefficients.

    With no active penalty each task's :math:`(w_t, b_t)` is an M-estimator with covariance
    :math:`V_t` (block-diagonal over tasks); ``method`` says which estimate:

    - ``"fisher"``: :math:`\phi (Z^\top \mathrm{diag}(c\, E\ell'') Z)^{-1}`, :math:`\phi`
      the Pearson dispersion for the squared and Gamma losses, 1 for Poisson and logistic
      (statsmodels' GLM with ``freq_weights``);
    - ``"sandwich"``: HC0, :math:`A^{-1} (Z^\top \mathrm{diag}(c \ell'^2) Z) A^{-1}`,
      :math:`A = Z^\top \mathrm{diag}(c \ell'') Z` (statsmodels' ``cov_type="HC0"``; the
      Huber M-estimator's);
    - ``"kernel"``: the pinball loss's kernel sandwich (statsmodels QuantReg's default,
      Epanechnikov kernel, Hall-Sheather bandwidth);
    - ``"bootstrap"``: the covariance of ``n_boot`` pairs-bootstrap refits per task;
    - ``"debiased"``: a penalized L1 or L2,1 fit, :math:`\tilde w_t = \hat w_t -
      \hat\Theta_t X_t^\top s_t / n_t` and :math:`\phi_t \hat\Theta_t \hat\Sigma_t
      \hat\Theta_t^\top / n_t` (van de Geer et al. 2014; ``regmtl.inference.debiased``:
      the nodewise-lasso precision, one for a shared design; the intercepts partialled out,
      without an interval; Huber: the sandwich);
    - ``"auto"``: ``"debiased"`` for a penalized L1 / L2,1 fit; else ``"kernel"`` for the
      pinball loss, ``"sandwich"`` for Huber, ``"fisher"`` otherwise.

    Then :math:`z = \beta / se`, :math:`p = 2 \Phi(-|z|)` and the interval
    :math:`\beta \pm z_{(1 + \mathrm{level}) / 2}\, se`. Sample weights are frequency
    weights (a row of weight 2 counts as two rows).

    Parameters
    ----------
    model : MultiTaskRegressor, MultiTaskClassifier, or a fitted CV search
        The fitted model (a search: its refit, ``best_estimator_``).
    X, y : array-like, or list or dict of them
        The rows and targets the model was fitted on, in any input form of ``fit``.
    task : array-like or str, optional
        Task id of every row (long form).
    offset : array-like, or list or dict of them, optional
        The offsets of the fit.
    sample_weight : array-like, or list or dict of them, optional
        The sample weights of the fit.
    level : float, default=0.95
        Confidence level of the intervals.
    method : {"auto", "fisher", "sandwich", "kernel", "bootstrap", "debiased"}, default="auto"
        The covariance estimate (above).
    n_boot : int, default=200
        Resamples per task of ``"bootstrap"``.
    random_state : int, Generator or None, default=None
        Seeds ``"bootstrap"``.
    nodewise : {"cv", "universal"} or float, default="cv"
        The penalty of ``"debiased"``'s nodewise lassos: chosen by 5-fold cross-validation,
        the universal :math:`\sqrt{2 \log p / n}` (much faster for hundreds of features),
        or this number.

    Returns
    -------
    pandas.DataFrame
        One row per task and coefficient (the intercept as feature ``"intercept"``), columns
        ``task``, ``feature``, ``coef``, ``std_error``, ``z``, ``p_value``, ``ci_lower``,
        ``ci_upper``, ``penalized`` (bool) and ``method``. An excluded feature (held at 0)
        has NaN statistics.

    Raises
    ------
    ValueError
        For ``y`` missing, rows that do not match the fit, a bad ``level``, an unknown
        ``method`` or one the fit or its loss does not take; for a penalized fit whose
        penalty has no valid intervals (the trace norm, the coupling and nonconvex
        penalties, a ridge), named with the alternatives (``regmtl.stability_selection``,
        an unpenalized refit on chosen features, the debiased L1 / L2,1); for a multinomial
        fit (not identified without a penalty); for bounds on the coefficients.

    See Also
    --------
    regmtl.wald_test : Joint tests on the same covariance.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((80, 3)) for _ in range(2)]
    >>> ys = [X @ [1.0, 0.0, -0.5] + rng.standard_normal(80) for X in Xs]
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-10).fit(Xs, ys)
    >>> table = model.coef_table(Xs, ys)
    >>> table.columns.tolist()[:6]
    ['task', 'feature', 'coef', 'std_error', 'z', 'p_value']
    >>> table.shape, table["method"].iloc[0]
    ((8, 10), 'fisher')
    >>> bool((table["p_value"][table["feature"] == "x0"] < 1e-6).all())
    True
    """
    from scipy.stats import norm

    level = _check_level(level)
    est = estimate(model, X, y, task, offset, sample_weight, method, n_boot, random_state,
                   nodewise)
    T, q = est.coef.shape
    se = np.sqrt(np.einsum("tii->ti", est.cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est.coef / se
    half = norm.ppf(0.5 + level / 2) * se
    return pd.DataFrame({
        "task": np.repeat(np.asarray(est.tasks, dtype=object), q),
        "feature": np.tile(np.asarray(est.names, dtype=object), T),
        "coef": est.coef.ravel(),
        "std_error": se.ravel(),
        "z": z.ravel(),
        "p_value": (2 * norm.sf(np.abs(z))).ravel(),
        "ci_lower": (est.coef - half).ravel(),
        "ci_upper": (est.coef + half).ravel(),
        "penalized": est.penalized.ravel(),
        "method": est.method,
    })
