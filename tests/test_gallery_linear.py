"""The gallery examples on linear multi-task models and choosing alpha make true claims.

Each test runs one example at its reduced sizes (``REGMTL_GALLERY_QUICK=1``) and checks the
claim its docstring states, with the margins the full-size run and other seeds also meet.
"""

from __future__ import annotations

import numpy as np
from conftest import run_example


def test_two_related_tasks_regularized_mtl_beats_least_squares_and_ridge():
    ns = run_example("plot_01_two_related_tasks")
    mse, per_task = ns["test_mse"], ns["per_task"]
    assert set(mse) == {"regularized MTL", "unregularized", "independent ridge"}
    # about 0.6 of ridge's error here; below 0.95 of it over other seeds
    assert mse["regularized MTL"] < 0.85 * mse["independent ridge"], mse
    # about half of least squares' error here; below 0.75 of it over other seeds
    assert mse["regularized MTL"] < 0.75 * mse["unregularized"], mse
    # best on each task, not only on average
    for task in ("task 0", "task 1"):
        assert per_task[task].idxmin() == "regularized MTL", per_task
    # cross-validation found an interior alpha: neither two separate models nor one pooled
    mtl = ns["mtl"]
    assert mtl.alphas_[-1] < mtl.alpha_ < mtl.alphas_[0]
    assert ns["unregularized"].alpha == 0.0


def test_l1_and_elastic_net_recover_the_sparse_truth_and_beat_l2():
    ns = run_example("plot_04_l1_l2_elasticnet_cv")
    mse, nonzeros, recall = ns["test_mse"], ns["nonzeros"], ns["recall"]
    largest_missed, true_coef = ns["largest_missed"], ns["true_coef"]
    n_coef = true_coef.size
    assert n_coef == 150 and np.count_nonzero(true_coef) == 25
    # L2 is dense: every coefficient nonzero
    assert nonzeros["L2"] == n_coef
    for name in ("L1", "elastic net"):
        # about half of the coefficients or fewer (0.3 to 0.52 over seeds)
        assert nonzeros[name] <= 0.55 * n_coef, nonzeros
        # most true nonzeros found (0.8 to 1.0 over seeds); those missed are below the noise
        assert recall[name] >= 0.8, recall
        assert largest_missed[name] < ns["noise"], largest_missed
        # test error well below L2's (0.47 to 0.74 of it over seeds)
        assert mse[name] < 0.8 * mse["L2"], mse
    # with a sparse truth the elastic net's search picks its most L1-like l1_ratio
    assert ns["results"].loc["elastic net", "l1_ratio"] == 0.9


def test_every_way_of_choosing_alpha_is_close_to_the_best_and_far_from_bad_alphas():
    ns = run_example("plot_07_choosing_alpha")
    mse, chosen, methods = ns["test_mse"], ns["chosen"], ns["methods"]
    assert len(methods) == 6
    best = min(mse[m] for m in methods)
    worst = max(mse[m] for m in methods)
    # every method within 15% of the best (at most 1.10 over other seeds)
    assert worst < 1.15 * best, {m: mse[m] for m in methods}
    # far better than both bad alphas
    assert mse["alpha_max (all weights zero)"] > 3.0 * best
    assert mse["alpha_max / 1000"] > 1.3 * best
    assert worst < 0.8 * mse["alpha_max / 1000"]
    # the grid search, on the CV estimator's grid and folds, picks the same alpha
    assert chosen["GridSearchCV"] == chosen["CV"]
    # the one-SE rule and BIC are at least as strong as plain CV and AIC
    assert chosen["CV, one-SE rule"] >= chosen["CV"]
    assert chosen["BIC"] >= chosen["AIC"]
    # the random search stays inside the grid's range
    grid = ns["grid"]
    assert grid[-1] <= chosen["RandomizedSearchCV"] <= grid[0]
