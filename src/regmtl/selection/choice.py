"""The choice of alpha from a search's scores: the best candidate, the one-standard-error
rule, and one alpha per task.

The searches (``regmtl.selection.search``) score every candidate (a penalty's grid, each
alpha of it) by cross-validation or an information criterion; these functions read the
table of those scores (``cv_results_``, with its ``_grid`` column: which grid a row is of)
and return the choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # (pandas is loaded with the first search, not with regmtl)
    import pandas as pd

__all__ = ["best_index", "fold_standard_error", "per_task_choice"]


def fold_standard_error(std: Any, n_folds: int) -> Any:
    """The standard error of a mean over K folds, ``sd / sqrt(K)`` with the sample standard
    deviation ``sd`` (ddof = 1, as glmnet and Hastie, Tibshirani & Friedman's one-standard-error
    rule), from the population one (ddof = 0) that ``std_test_score`` reports, as scikit-learn
    does: ``std * sqrt(K / (K - 1)) / sqrt(K) = std / sqrt(K - 1)``; 0 with one fold (no
    spread to measure)."""
    if n_folds < 2:
        return 0.0 * std
    return std / np.sqrt(n_folds - 1.0)


def best_index(df: pd.DataFrame, criterion: str, one_se: bool, n_splits: int) -> int:
    """The row of the chosen candidate: the smallest information criterion; or the best
    mean validation score (``criterion="cv"``), with ``one_se`` the largest alpha of that
    candidate's grid within one standard error (over ``n_splits`` folds) of it."""
    if criterion != "cv":
        return int(np.argmin(df[criterion].to_numpy()))
    score = df["mean_test_score"].to_numpy()
    if not np.any(np.isfinite(score)):
        raise ValueError("cross-validation: every candidate's score is undefined (NaN); "
                         "check scoring.")
    best = int(np.nanargmax(score))
    if not one_se:
        return best
    # one-standard-error rule: the largest alpha of the best curve within one standard
    # error (the sample standard deviation over folds / sqrt(K)) of the best mean score
    se = fold_standard_error(df["std_test_score"].iloc[best], n_splits)
    same = np.flatnonzero(df["_grid"].to_numpy() == df["_grid"].iloc[best])
    ok = same[score[same] >= score[best] - se]
    alphas = df["param_alpha"].to_numpy()
    return int(ok[np.argmax(alphas[ok])])


def per_task_choice(results: pd.DataFrame, grids: list, one_se: bool,
                    n_splits: int) -> tuple[int, np.ndarray, float]:
    """``(grid, alphas, score)``: in every grid, each task's best alpha by its own mean
    validation score (with ``one_se``, the largest within one standard error of it; a
    task never scored takes the grid's best common alpha); the grid whose choice scores
    best on average over tasks."""
    best = (-np.inf, 0, None)
    rank = results["_grid"].to_numpy()
    common = results["mean_test_score"].to_numpy()
    K = max(n_splits, 1)
    for g in range(len(grids)):
        rows = np.flatnonzero(rank == g)
        # (n_alphas, T): each task's mean score over the folds and its standard error
        mean = np.stack(results["mean_task_scores"].to_numpy()[rows])
        se = fold_standard_error(np.stack(results["std_task_scores"].to_numpy()[rows]), K)
        fallback = int(np.nanargmax(common[rows])) if np.isfinite(common[rows]).any() else 0
        scored = np.isfinite(mean).any(axis=0)
        pick = np.where(scored, np.argmax(np.where(np.isfinite(mean), mean, -np.inf),
                                          axis=0), fallback)
        if one_se:
            cols = np.arange(mean.shape[1])
            floor = mean[pick, cols] - se[pick, cols]
            ok = (mean >= floor[None, :]) & scored[None, :]
            alphas = np.asarray(grids[g])[:, None]
            largest = np.argmax(np.where(ok, alphas, -np.inf), axis=0)
            pick = np.where(scored, largest, pick)
        chosen = mean[pick, np.arange(mean.shape[1])]
        score = float(np.nanmean(chosen)) if np.isfinite(chosen).any() else -np.inf
        if score > best[0]:
            best = (score, g, np.asarray(grids[g], dtype=np.float64)[pick])
    return best[1], best[2], best[0]
