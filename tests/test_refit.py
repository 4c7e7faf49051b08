"""A refit equals a fresh fit, attribute for attribute, on every route and placement.

An estimator fitted one way (another loss, penalty, per-feature terms, alpha form, label
set, or placement), then given the parameters of another with ``set_params`` and fitted
again, must hold exactly the fitted attributes (public, ending in ``_``) of a fresh estimator
of those parameters fitted on the same data, with equal values. An earlier state kept a squared
fit's ``residual_variance_`` through a refit under the Poisson loss, and an out-of-core fit
kept an in-memory fit's loss.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.base import clone

import regmtl as rm

RNG = np.random.default_rng(7)
N, P, T = 90, 6, 3
X = RNG.standard_normal((N, P))
TASK = np.repeat(np.arange(T), N // T)
F = X @ np.array([0.6, -0.4, 0.0, 0.3, 0.0, 0.0]) + 0.2 * TASK
Y_REAL = F + 0.5 * RNG.standard_normal(N)
Y_COUNT = RNG.poisson(np.exp(0.5 * F)).astype(float)
Y_BINARY = (F + RNG.standard_normal(N) > 0).astype(int)
Y_THREE = np.digitize(F + 0.5 * RNG.standard_normal(N), [-0.5, 0.5])
FACTORS = [0.0, 1.0, 1.0, 2.0, 1.0, 0.5]


def fitted(est) -> dict:
    """The public fitted attributes (the wall times, ``refit_time_``, aside)."""
    return {k: v for k, v in vars(est).items()
            if k.endswith("_") and not k.startswith("_") and not k.endswith("time_")}


def assert_same_fit(refit, fresh):
    a, b = fitted(refit), fitted(fresh)
    assert sorted(a) == sorted(b), (sorted(set(a) - set(b)), sorted(set(b) - set(a)))
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, (np.ndarray, float, int, np.number)) and not isinstance(x, bool):
            x, y = np.asarray(x), np.asarray(y)
            if x.dtype.kind in "fc":
                np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12, err_msg=name)
                continue
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert repr(x) == repr(y), name


# (first estimator, parameters of the second, targets of each)
ROUTES = {
    "squared-to-poisson": (rm.MultiTaskRegressor("l21", alpha=0.05),
                           dict(loss="poisson"), Y_COUNT, Y_COUNT),
    "poisson-to-squared": (rm.MultiTaskRegressor("l21", alpha=0.05, loss="poisson"),
                           dict(loss="squared"), Y_COUNT, Y_COUNT),
    "trace-to-l21": (rm.MultiTaskRegressor("trace", alpha=0.05), dict(penalty="l21"),
                     Y_REAL, Y_REAL),
    "l21-to-dirty": (rm.MultiTaskRegressor("l21", alpha=0.05), dict(penalty="dirty"),
                     Y_REAL, Y_REAL),
    "factors-to-plain": (rm.MultiTaskRegressor("l21", alpha=0.05, penalty_factor=FACTORS),
                         dict(penalty_factor=None), Y_REAL, Y_REAL),
    "plain-to-factors": (rm.MultiTaskRegressor("l21", alpha=0.05),
                         dict(penalty_factor=FACTORS), Y_REAL, Y_REAL),
    "quantile-factors-to-squared": (
        rm.MultiTaskRegressor("l1", alpha=0.05, loss=rm.Quantile(0.3),
                              penalty_factor=FACTORS),
        dict(loss="squared", penalty_factor=None), Y_REAL, Y_REAL),
    "task-alphas-to-one": (rm.MultiTaskRegressor("l1", alpha=[0.02, 0.05, 0.1]),
                           dict(alpha=0.05), Y_REAL, Y_REAL),
    "standardize-to-plain": (rm.MultiTaskRegressor("l21", alpha=0.05, standardize=True),
                             dict(standardize=False), Y_REAL, Y_REAL),
    "binary-to-three-classes": (rm.MultiTaskClassifier("l21", alpha=0.02), {}, Y_BINARY,
                                Y_THREE),
    "three-classes-to-binary": (rm.MultiTaskClassifier("l21", alpha=0.02), {}, Y_THREE,
                                Y_BINARY),
    "cv-squared-to-poisson": (rm.MultiTaskRegressorCV("l21", alphas=5, cv=3),
                              dict(loss="poisson"), Y_COUNT, Y_COUNT),
    "cv-trace-to-l21": (rm.MultiTaskRegressorCV("trace", alphas=5, cv=3),
                        dict(penalty="l21"), Y_REAL, Y_REAL),
    "cv-factors-to-plain": (rm.MultiTaskRegressorCV("l21", alphas=5, cv=3,
                                                    penalty_factor=FACTORS),
                            dict(penalty_factor=None), Y_REAL, Y_REAL),
    "cv-three-classes-to-binary": (rm.MultiTaskClassifierCV("l21", alphas=5, cv=3), {},
                                   Y_THREE, Y_BINARY),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_refit_equals_a_fresh_fit(route):
    first, params, y1, y2 = ROUTES[route]
    est = clone(first).fit(X, y1, task=TASK)
    est.set_params(**params).fit(X, y2, task=TASK)
    fresh = clone(first).set_params(**params).fit(X, y2, task=TASK)
    assert_same_fit(est, fresh)


def test_a_refit_equals_a_fresh_fit_across_placements(tmp_path):
    """In memory, then out of core (a Parquet source), then in memory again."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    from regmtl.parquet import ParquetTasks

    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(P)])
    frame["task"], frame["y"] = TASK, Y_REAL
    frame.to_parquet(tmp_path / "rows.parquet")
    source = ParquetTasks(tmp_path / "rows.parquet")
    est = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-8)
    est.fit(X, Y_COUNT, task=TASK)  # (another fit first: its attributes must not stay)
    est.set_params(loss="poisson").fit(X, Y_COUNT, task=TASK)
    est.set_params(loss="squared").fit(source)
    assert_same_fit(est, clone(est).fit(source))
    est.set_params(penalty="trace").fit(X, Y_REAL, task=TASK)
    assert_same_fit(est, clone(est).fit(X, Y_REAL, task=TASK))


@pytest.mark.skipif(os.environ.get("REGMTL_MATRIX") != "full",
                    reason="a Dask cluster: make test-matrix runs it")
def test_a_refit_equals_a_fresh_fit_on_dask(dask_process_client):  # noqa: ARG001
    """In memory under the Poisson loss, then on Dask blocks under the squared loss (with
    ``make test-matrix``: a cluster's start costs more than the check)."""
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(P)])
    frame["task"], frame["y"] = TASK, Y_REAL
    ddf = dd.from_pandas(frame, npartitions=3)
    cols = [f"x{j}" for j in range(P)]
    est = rm.MultiTaskRegressor("l21", alpha=0.05, loss="poisson").fit(X, Y_COUNT, task=TASK)
    est.set_params(loss="squared").fit(ddf[cols], ddf["y"], task=ddf["task"])
    fresh = rm.MultiTaskRegressor("l21", alpha=0.05).fit(ddf[cols], ddf["y"], task=ddf["task"])
    assert_same_fit(est, fresh)
