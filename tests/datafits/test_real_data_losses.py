"""Real counts: the Mulan multi-target sets whose targets are counts (sf1, sf2: solar flares
per class; scpf: SeeClickFix views, votes, comments), a Poisson L2,1 path of 8 points from
``alpha_max`` down to ``alpha_max / 100`` with the default ``tol`` and ``max_iter``, on
standardized features: every point certified.

The sets are read from ``REGMTL_DATA`` (the loaders' data home) if set, else from
``../shared/data`` beside the checkout; the tests skip cleanly where they are absent.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import DATA_HOME, require_data
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.datasets import load_mulan
from regmtl.scaling import pooled_scaling, standardize

DATA = DATA_HOME
COUNT_SETS = ("sf1", "sf2", "scpf")



def _count_set(name):
    require_data("mulan_mtr", f"{name}.arff")
    bunch = load_mulan(name, DATA, missing="mean")
    for y in bunch.y:
        assert np.all(y >= 0) and np.all(y == np.round(y))  # counts
    mean, scale = pooled_scaling(bunch.X)
    return standardize(bunch.X, mean, scale), bunch.y


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
@pytest.mark.parametrize("name", COUNT_SETS)
def test_poisson_l21_path_certifies_on_count_sets(name):
    Xs, ys = _count_set(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        path = rm.regularization_path(Xs, ys, penalty="l21", loss="poisson", alphas=8,
                                      eps=1e-2)
    assert path.converged.all(), path.certificates
    assert np.all(path.certificates <= 1e-4)
    assert np.all(np.isfinite(path.coefs))
    assert np.count_nonzero(path.coefs[-1]) > 0  # the path leaves zero


@pytest.mark.parametrize("name", ["sf1", "sf2"])
def test_poisson_l21_path_on_count_sets_is_quiet(name):
    Xs, ys = _count_set(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rm.regularization_path(Xs, ys, penalty="l21", loss="poisson", alphas=8, eps=1e-2)
