"""``alpha_max`` with penalty factors, checked by the fits on both sides of it, for every loss.

With an unpenalized feature (factor 0) ``alpha_max`` is the dual norm, over the penalized
features in their units, of minus the gradient at the fit of the free features and the
intercepts alone. For a loss with kinks (the pinball loss) that gradient depends on the
subgradient taken on the rows the free fit interpolates; only the one that makes the free fit
optimal gives the threshold. Here, for each loss and factor pattern: at ``1.001 alpha_max``
every penalized coefficient is exactly 0, at ``0.99 alpha_max`` one is not (both fits
certified at ``tol=1e-10``). An earlier ``alpha_max`` under the quantile loss with a factor 0
was 1 to 4 % too small on these data, and 2x too small on others (a penalized coefficient of
1.4 at ``1.001 alpha_max``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _feature_cases import FACTORS, make_tasks

import regmtl as rm

LOSSES = {
    "squared": "squared",
    "logistic": "logistic",
    "poisson": "poisson",
    "gamma": "gamma",
    "huber": rm.Huber(1.0),
    "quantile-0.3": rm.Quantile(0.3),
    "quantile-0.8": rm.Quantile(0.8),
    "multinomial": "multinomial",
    "list": [rm.Quantile(0.3), "squared", rm.Huber(0.5)],
}
PATTERNS = {"no-factors": None, "factors": FACTORS, "factors-0-first-two": np.array(
    [0.0, 0.0, 1.0, 1.0, 2.0, 0.5])}


def _problem(name):
    kind = {"logistic": "logistic", "poisson": "poisson", "gamma": "gamma",
            "multinomial": "multinomial"}.get(name, "squared")
    return make_tasks(kind, seed=4)


def _fit(name, penalty, alpha, factors, Xs, ys):
    kw = dict(alpha=alpha, tol=1e-10, max_iter=20_000, penalty_factor=factors)
    if name in ("logistic", "multinomial"):
        est = rm.MultiTaskClassifier(penalty, **kw)  # (classes per task: its loss)
    else:
        est = rm.MultiTaskRegressor(penalty, loss=LOSSES[name], **kw)
    return est.fit(Xs, ys)


def _penalized(est, factors):
    C = np.asarray(est.coef_)
    C = C.reshape(-1, C.shape[-1])  # (tasks or classes, features)
    return C if factors is None else C[:, np.asarray(factors) > 0]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # (both certified)
@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("penalty", ["l1", "l21"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_alpha_max_is_the_threshold_of_the_penalized_features(name, penalty, pattern):
    factors = PATTERNS[pattern]
    Xs, ys = _problem(name)
    a_max = rm.alpha_max(Xs, ys, penalty=penalty, loss=LOSSES[name], penalty_factor=factors)
    above = _fit(name, penalty, 1.001 * a_max, factors, Xs, ys)
    assert np.all(_penalized(above, factors) == 0.0), (
        f"a penalized coefficient {np.abs(_penalized(above, factors)).max():.3g} at "
        "1.001 alpha_max")
    below = _fit(name, penalty, 0.99 * a_max, factors, Xs, ys)
    assert np.abs(_penalized(below, factors)).max() > 0.0, "W = 0 at 0.99 alpha_max"
