"""Targets outside a loss's domain are refused on Dask input as in memory: the same error,
word for word, from a fit, a CV search, a path and alpha_max (the check runs on every task
block)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402

FEATURES = ["x0", "x1", "x2"]
BAD = {"poisson": -1.0, "gamma": 0.0}


@pytest.fixture
def client(dask_process_client):
    return dask_process_client


def _frame(loss):
    rng = np.random.default_rng(0)
    task = np.repeat([3, 10, 17], 30)
    df = pd.DataFrame(rng.standard_normal((90, 3)), columns=FEATURES)
    df["store"] = task
    mu = np.exp(0.3 * df["x0"].to_numpy())
    df["y"] = rng.poisson(mu).astype(float) if loss == "poisson" else rng.gamma(2.0, mu / 2)
    df.loc[50, "y"] = BAD[loss]  # one target outside the domain, in the middle task
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def _message(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_dask_refuses_targets_outside_the_domain_as_in_memory(client, loss):
    # before: the Dask fit ran (a NaN-gap warning at most); in memory it was refused
    df = _frame(loss)
    ddf = dd.from_pandas(df, npartitions=3)
    mem = (df[FEATURES], df["y"], df["store"])
    dsk = (ddf[FEATURES], ddf["y"], ddf["store"])

    def fit(X, y, task):
        return rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss).fit(X, y, task=task)

    def cv(X, y, task):
        return rm.MultiTaskRegressorCV("l21", loss=loss, alphas=3, cv=2).fit(X, y, task=task)

    def path(X, y, task):
        return rm.regularization_path(X, y, task, penalty="l21", loss=loss, alphas=3)

    def amax(X, y, task):
        return rm.alpha_max(X, y, task, penalty="l21", loss=loss)

    word = "negative entries" if loss == "poisson" else "entries <= 0"
    for run in (fit, cv, path, amax):
        expected = _message(lambda run=run: run(*mem))
        assert word in expected and f"the {loss} loss" in expected
        assert _message(lambda run=run: run(*dsk)) == expected, run.__name__


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_dask_score_of_a_log_link_model_is_refused_not_misreported(client, loss):
    # before: R^2 of the raw scores log(mu) against the targets (-0.80 where the in-memory
    # D^2 is 0.34), and a target outside the domain scored too
    df = _frame(loss)
    good = df.drop(index=df.index[df["y"] == BAD[loss]])
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss).fit(
        good[FEATURES], good["y"], task=good["store"])
    ddf = dd.from_pandas(df, npartitions=3)
    with pytest.raises(ValueError, match=rf"score of Dask input takes the squared loss and no "
                                         rf"offset \(loss='{loss}'\).*X.compute\(\)"):
        model.score(ddf[FEATURES], ddf["y"], task=ddf["store"])
