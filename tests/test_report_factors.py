"""The per-feature terms in words: unpenalized and excluded features (counted, named), the
factors of the penalized ones, the bounds and ``standardize``, on the fit line of ``regmtl
fit`` and in the comparison report."""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm
from regmtl.datasets import make_multitask_regression
from regmtl.report import comparison_report, feature_terms_text


def _xy(T=2, seed=0):
    rng = np.random.default_rng(seed)
    return ([rng.standard_normal((30, 5)) for _ in range(T)],
            [rng.standard_normal(30) for _ in range(T)])


NAMES = ["age", "income", "price", "season", "noise"]


def _text(penalty="l21", **terms):
    Xs, ys = _xy()
    model = rm.MultiTaskRegressor(penalty, alpha=0.05, **terms).fit(Xs, ys)
    return feature_terms_text(model, NAMES)


def test_a_plain_model_has_no_terms_text():
    assert _text() is None
    assert _text(penalty_factor=np.ones(5), lower_bounds=-np.inf) is None


@pytest.mark.parametrize("terms, text", [
    (dict(penalty_factor={0: 0.0, 3: 0.0}), "unpenalized (2): age, season; factor 1.67 on 3 "
                                            "penalized features (rescaled)"),
    (dict(penalty_factor={0: 0.0}, rescale_factors=False), "unpenalized (1): age"),
    (dict(exclude=[4]), "excluded (1): noise"),
    (dict(penalty_factor=[1.0, 2.0, 1.0, 3.0, np.inf], rescale_factors=False),
     "excluded (1): noise; factors 1 to 3 on 4 penalized features"),
    (dict(lower_bounds=0.0), "coefficients in [0, inf]"),
    (dict(lower_bounds=-1.0, upper_bounds=2.0), "coefficients in [-1, 2]"),
    (dict(upper_bounds={2: 0.0}), "bounds: price in [-inf, 0]"),
    (dict(lower_bounds=np.arange(5.0) - 9.0),
     "bounds on 5 features (lower -9 to -5)"),
    (dict(standardize=True), "standardize: penalized in the columns' standard deviations"),
])
def test_the_terms_in_words(terms, text):
    assert _text(**terms) == text


def test_factors_per_task_and_names_of_many_features():
    Xs, ys = _xy()
    F = np.ones((5, 2))
    F[1, 0] = np.inf  # out of task 0 only
    F[2] = 0.0
    model = rm.MultiTaskRegressor("l1", alpha=0.05, penalty_factor=F,
                                  rescale_factors=False).fit(Xs, ys)
    assert feature_terms_text(model) == ("unpenalized (1): x2; 1 feature left out of some "
                                         "tasks (factor inf)")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 20))
    model = rm.MultiTaskRegressor(alpha=0.05, exclude=list(range(15))).fit(
        X, rng.standard_normal((60, 2)))
    assert feature_terms_text(model) == ("excluded (15): x0, x1, x2, x3, x4, x5, x6, x7, x8, "
                                         "x9, x10, x11, ... (+3 more)")


def test_the_comparison_report_shows_the_terms():
    data = make_multitask_regression(3, 30, 5, n_informative=2, random_state=0)
    res = rm.compare(data, models=["pooled", "l21"], splits=1, n_alphas=4, cv=3,
                     feature_terms={"penalty_factor": [0.0, 1.0, 1.0, 1.0, np.inf],
                                    "upper_bounds": 2.0, "standardize": True})
    html = comparison_report(res, created="2024-01-01").to_html()
    names = res.feature_names
    assert "<h2>Per-feature terms</h2>" in html
    assert (f"MTL L2,1: unpenalized (1): {names[0]}; excluded (1): {names[4]}; "
            "factor 1.25 on 3 penalized features (rescaled); coefficients in [-inf, 2]; "
            "standardize: penalized in the columns' standard deviations.") in html
    plain = rm.compare(data, models=["pooled", "l21"], splits=1, n_alphas=4, cv=3)
    assert "Per-feature terms" not in comparison_report(plain, created="2024-01-01").to_html()
