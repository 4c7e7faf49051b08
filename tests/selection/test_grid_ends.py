"""A CV whose chosen alpha is an end of its grid says so: the best may lie beyond it (or, at
the top with no feature used, no fit beats each task's intercept alone)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm


def _tasks(noise, seed=0, signal=1.0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
    w = signal * rng.standard_normal(5)
    return Xs, [X @ w + noise * rng.standard_normal(40) for X in Xs]


def test_the_smallest_alpha_of_the_grid_warns():
    Xs, ys = _tasks(noise=0.0)  # (noiseless: the least penalty fits best)
    with pytest.warns(UserWarning, match=r"alpha_=.* is the smallest alpha of the grid and "
                                         r"scores best: .*extend the grid downwards"):
        cv = rm.MultiTaskRegressorCV("l21", alphas=5, cv=3).fit(Xs, ys)
    assert cv.alpha_ == cv.alphas_[-1]


def test_the_top_of_a_grid_with_no_feature_says_the_features_do_not_predict():
    Xs, ys = _tasks(noise=1.0, signal=0.0, seed=3)  # (targets unrelated to the features)
    with pytest.warns(UserWarning, match=r"largest alpha of the grid, where no feature is "
                                         r"used: no fit of the grid predicts"):
        cv = rm.MultiTaskRegressorCV("l21", alphas=5, cv=3).fit(Xs, ys)
    assert cv.alpha_ == cv.alphas_[0] and np.all(cv.coef_ == 0)


def test_the_top_of_a_grid_with_features_used_says_extend_it():
    """The mean penalty has no alpha_max: a grid whose best is its top says to go higher."""
    Xs, ys = _tasks(noise=1.0, seed=1)
    grid = [1e-4, 1e-5]  # (too small: the mean task is pulled in far more at the best)
    with pytest.warns(UserWarning, match=r"largest alpha of the grid and scores best: a "
                                         r"larger alpha may score better"):
        rm.MultiTaskRegressorCV("mean", alphas=grid, cv=3).fit(Xs, ys)


def test_an_inner_alpha_is_silent():
    Xs, ys = _tasks(noise=1.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cv = rm.MultiTaskRegressorCV("l21", alphas=12, cv=3).fit(Xs, ys)
    assert cv.alphas_[-1] < cv.alpha_ < cv.alphas_[0]
