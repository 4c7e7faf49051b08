"""The smooth losses on Dask input (``dask.distributed.LocalCluster``, worker processes):
equal to the in-memory fit, certified on the same scale (the objective at W = 0 above the
loss's floor, the floor summed block by block), one loss per task refused.

Measured on a shared 2-core machine: each proximal Newton step on Dask takes 10-20 s on these
150 rows (5 steps to a gap of 1e-9), so this module runs for minutes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from _loss_cases import targets

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.dask import as_dask_task_data  # noqa: E402
from regmtl.solvers import reference  # noqa: E402

P = 4
FEATURES = [f"x{j}" for j in range(P)]
TOL = 1e-9


@pytest.fixture(scope="module")
def client():
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _frame(loss, T=4, seed=0):
    """Long-form rows of T tasks (ids not 0..T-1), shuffled so that every partition mixes
    tasks."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) * 7 + 3
    sizes = rng.integers(25, 45, T)
    task = np.repeat(ids, sizes)
    X = rng.standard_normal((len(task), P))
    W = 0.3 * rng.standard_normal((P, T))
    W[-1] = 0.0
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.5
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"] = task
    df["y"] = targets(loss, f, rng)
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.mark.parametrize("loss", ["poisson", "huber"])
def test_smooth_loss_on_dask_equals_in_memory_and_certifies(client, loss):
    df = _frame(loss)
    ddf = dd.from_pandas(df, npartitions=3)

    def est():
        return rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss, tol=TOL, max_iter=5000)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert list(dsk.tasks_) == list(mem.tasks_)
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-8)
    # the certificate's scale is the same in memory and on the blocks
    datafit = rm.datafits.make_loss(loss)
    ref_mem = reference(rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                                        task=df["store"].to_numpy()), datafit, True)
    ref_dsk = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"]), datafit,
                        True)
    assert abs(ref_dsk.P0 - ref_mem.P0) <= 1e-10 * ref_mem.P0
    assert 0.0 <= dsk.dual_gap_ <= TOL * ref_dsk.P0
    assert abs(dsk.objective_ - mem.objective_) <= 1e-9 * abs(mem.objective_)


def test_mixed_losses_on_dask_are_refused(client):
    df = _frame("squared")
    ddf = dd.from_pandas(df, npartitions=2)
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss=["squared", "poisson"] * 2)
    with pytest.raises(ValueError, match=r"one loss per task\) is fitted in memory"):
        model.fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
