"""The choice of alpha from a table of scores (``regmtl.selection.choice``), on tables whose
answer is computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regmtl.selection.choice import best_index, fold_standard_error, per_task_choice


def _table():
    # two grids of three alphas each; the best mean score is row 4 (grid 1, alpha 0.1)
    return pd.DataFrame({
        "_grid": [0, 0, 0, 1, 1, 1],
        "param_alpha": [1.0, 0.1, 0.01, 1.0, 0.1, 0.01],
        "mean_test_score": [0.50, 0.60, 0.55, 0.64, 0.70, 0.66],
        "std_test_score": [0.05, 0.05, 0.05, 0.04, 0.12, 0.04],
        "aic": [10.0, 8.0, 9.0, 7.5, 7.0, 7.2],
    })


def test_the_best_score_and_the_smallest_criterion():
    df = _table()
    assert best_index(df, "cv", one_se=False, n_splits=5) == 4
    assert best_index(df, "aic", one_se=False, n_splits=0) == 4


def test_the_one_standard_error_rule_takes_the_largest_alpha_within_it():
    """se = 0.12 / sqrt(5 - 1) = 0.06: within 0.70 - 0.06 = 0.64 in grid 1 are alphas 1.0,
    0.1 and 0.01; the largest is 1.0 (row 3). Grid 0 never competes."""
    df = _table()
    assert fold_standard_error(0.12, 5) == pytest.approx(0.06)
    assert fold_standard_error(0.12, 1) == 0.0
    assert best_index(df, "cv", one_se=True, n_splits=5) == 3
    df.loc[3, "mean_test_score"] = 0.63  # (now outside the band: alpha 0.1 stays)
    assert best_index(df, "cv", one_se=True, n_splits=5) == 4


def test_an_undefined_score_everywhere_is_refused():
    df = _table()
    df["mean_test_score"] = np.nan
    with pytest.raises(ValueError, match="every candidate's score is undefined"):
        best_index(df, "cv", one_se=False, n_splits=5)


def test_one_alpha_per_task():
    """Task 0 peaks at the first alpha, task 1 at the last; a task never scored (NaN) takes
    the grid's best common alpha."""
    grids = [np.array([1.0, 0.1, 0.01])]
    df = pd.DataFrame({
        "_grid": [0, 0, 0],
        "mean_test_score": [0.5, 0.6, 0.55],
        "mean_task_scores": [np.array([0.9, 0.1, np.nan]), np.array([0.5, 0.5, np.nan]),
                             np.array([0.2, 0.8, np.nan])],
        "std_task_scores": [np.zeros(3)] * 3,
    })
    g, alphas, score = per_task_choice(df, grids, one_se=False, n_splits=3)
    assert g == 0
    np.testing.assert_array_equal(alphas, [1.0, 0.01, 0.1])
    assert score == pytest.approx((0.9 + 0.8) / 2)
