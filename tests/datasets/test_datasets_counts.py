"""The shipped count set (Solar Flare): shapes, counts, the shipped file, the Mulan ARFFs, and
every path point certified with the Poisson loss."""

from __future__ import annotations

import hashlib
import warnings
from importlib import resources

import numpy as np
import pytest
from conftest import DATA_HOME, needs_data
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.datasets import (
    SOLAR_FLARE_ATTRIBUTES,
    list_datasets,
    load_dataset,
    load_mulan,
    load_solar_flare,
)

MULAN = DATA_HOME / "mulan_mtr"
SHA256 = "bd3932502b2cb31d57e3b8527b64591ecd0d7affb221f8afbb423ec92a6e3439"
TASKS = ["c-class", "m-class", "x-class"]


@pytest.fixture(scope="module")
def flares():
    return load_solar_flare()


def test_shipped_file_is_the_one_documented():
    data = resources.files("regmtl.datasets").joinpath("data", "solar_flare.npz").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    assert len(data) < 10_000


def test_shapes_and_dtypes(flares):
    assert flares.task_names == TASKS
    assert flares.X_shared.shape == (1389, 34) and flares.Y.shape == (1389, 3)
    assert flares.X_shared.dtype == flares.Y.dtype == np.float64
    assert len(flares.feature_names) == 34 and flares.feature_names[-1] == "period=1978"
    assert flares.kind == "regression" and flares.loss == "poisson"
    assert len(flares.X) == len(flares.y) == 3
    for t in range(3):  # every task holds every row
        np.testing.assert_array_equal(flares.X[t], flares.X_shared)
        np.testing.assert_array_equal(flares.y[t], flares.Y[:, t])
    assert np.bincount(flares.period)[[1969, 1978]].tolist() == [323, 1066]
    assert "CC BY 4.0" in flares.DESCR and "CC BY 4.0" in flares.source


def test_counts_are_nonnegative_integers(flares):
    Y = flares.Y
    assert np.all(Y >= 0) and np.all(Y == np.round(Y))
    assert Y.sum(axis=0).tolist() == [363, 94, 13]
    assert Y.max(axis=0).tolist() == [8, 5, 2]
    assert int((Y[:, 2] > 0).sum()) == 12


def test_one_hot_groups(flares):
    X = flares.X_shared
    assert set(np.unique(X)) == {0.0, 1.0}
    start = 0
    for attribute, levels in SOLAR_FLARE_ATTRIBUTES.items():
        block = X[:, start:start + len(levels)]
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)
        assert flares.feature_names[start] == f"{attribute}={levels[0]}"
        start += len(levels)
    assert start == 33
    np.testing.assert_array_equal(X[:, 33], flares.period == 1978)


@pytest.mark.parametrize("period, n", [(1969, 323), (1978, 1066)])
def test_one_period(flares, period, n):
    part = load_solar_flare(period=period)
    assert part.X_shared.shape == (n, 33) and part.Y.shape == (n, 3)
    rows = flares.period == period
    np.testing.assert_array_equal(part.X_shared, flares.X_shared[rows, :33])
    np.testing.assert_array_equal(part.Y, flares.Y[rows])
    assert np.all(part.period == period)


def test_bad_period_is_refused():
    with pytest.raises(ValueError, match="period must be 'both', 1969 or 1978"):
        load_solar_flare(period=1970)


def test_long_frame(flares):
    frame = load_solar_flare(as_frame=True).frame
    assert frame.shape == (3 * 1389, 13)
    assert frame["task"].unique().tolist() == TASKS
    assert frame["count"].dtype.kind == "i"
    for t, task in enumerate(TASKS):
        np.testing.assert_array_equal(frame.loc[frame["task"] == task, "count"], flares.Y[:, t])
    assert frame["mod_zurich_class"].cat.categories.tolist() == list(
        SOLAR_FLARE_ATTRIBUTES["mod_zurich_class"])


def test_registry_lists_and_loads_it(flares):
    table = list_datasets().set_index("name")
    row = table.loc["solar_flare"]
    assert row["shipped"] and row["available"]
    assert (row["tasks"], row["samples"], row["features"]) == (3, 1389, 34)
    again = load_dataset("solar_flare", period=1978)
    assert again.Y.shape == (1066, 3)


@needs_data("mulan_mtr", "sf2.arff")
@pytest.mark.parametrize("period, name", [(1969, "sf1"), (1978, "sf2")])
def test_equals_the_mulan_arff(period, name):
    ours = load_solar_flare(period=period)
    arff = load_mulan(name, data_home=MULAN.parent)
    assert ours.feature_names == arff.feature_names
    np.testing.assert_array_equal(ours.X_shared, arff.X_shared)
    np.testing.assert_array_equal(ours.Y, arff.Y)


@pytest.mark.parametrize("penalty", ["l1", "l21", "trace"])
def test_every_poisson_path_point_certified(flares, penalty):
    # the level mod_zurich_class=A never occurs: its column of zeros is left out
    seen = np.ptp(flares.X_shared, axis=0) > 0
    assert seen.sum() == 33
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        path = rm.regularization_path(flares.X_shared[:, seen], flares.Y, penalty=penalty,
                                      loss="poisson", alphas=8, eps=1e-3)
    assert path.converged.all() and np.all(path.certificates <= 1e-4)
    assert np.all(np.isfinite(path.coefs))
