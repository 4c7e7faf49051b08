"""The smooth losses on Dask input (``dask.distributed.LocalCluster``, worker processes):
equal to the in-memory fit, certified on the same scale (the objective at W = 0 above the
loss's floor, the floor summed block by block); one loss per task and the multinomial as one
coupled fit, each block binding the loss to its own rows.

Each solver step on Dask is a few round trips to the workers, so these fits stop at gaps of
1e-7 (one loss per task) and 1e-6 (the multinomial: FISTA in memory and on the blocks, so
the same coefficients) on about 150 rows.
"""

from __future__ import annotations

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


@pytest.fixture
def client(dask_process_client):
    """The session's LocalCluster of worker processes (conftest), shared with the other Dask
    modules."""
    return dask_process_client


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
    if loss == "huber":  # (Huber()'s delta read from the targets by reductions on the blocks)
        assert dsk.loss_.delta == pytest.approx(mem.loss_.delta, rel=1e-9)


def _mixed_frame(losses, seed=0):
    """Long-form rows of one task per loss (a binary task's labels 0/1)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(len(losses)) * 7 + 3
    task = np.repeat(ids, rng.integers(30, 45, len(losses)))
    X = rng.standard_normal((len(task), P))
    W = 0.4 * rng.standard_normal((P, len(losses)))
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.3
    y = np.empty(len(task))
    for t, loss in enumerate(losses):
        rows = task == ids[t]
        y[rows] = (rng.random(rows.sum()) < 1.0 / (1.0 + np.exp(-f[rows]))).astype(float) \
            if loss == "logistic" else targets(loss, f[rows], rng)
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, y
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


MIXED = ["logistic", "poisson", "squared"]


@pytest.mark.parametrize("npartitions", [3])
def test_mixed_losses_on_dask_equal_in_memory_and_certify(client, npartitions):
    """One loss per task on task blocks: each block binds its own tasks' losses, the binary
    task is encoded on its block; the same fit, gap and objective as in memory, whatever the
    partitions."""
    df = _mixed_frame(MIXED)
    ddf = dd.from_pandas(df, npartitions=npartitions)

    def est():
        return rm.MultiTaskRegressor("l21", alpha=0.02, loss=MIXED, tol=1e-7, max_iter=500)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    # both certified at 1e-7: the coefficients agree to what that gap allows
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-3)
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-3)
    assert abs(dsk.objective_ - mem.objective_) <= 1e-7 * abs(mem.objective_)
    assert [None if c is None else c.tolist() for c in dsk.classes_] == \
        [None if c is None else c.tolist() for c in mem.classes_]
    datafit = rm.datafits.make_loss(MIXED)
    ref_mem = reference(rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                                        task=df["store"].to_numpy()), datafit, False)
    ref_dsk = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"]), datafit,
                        False)
    assert abs(ref_dsk.P0 - ref_mem.P0) <= 1e-10 * ref_mem.P0
    assert 0.0 <= dsk.dual_gap_ <= 1e-7 * ref_dsk.P0
    pred = dsk.predict(ddf[FEATURES], task=ddf["store"]).compute()
    np.testing.assert_allclose(pred, dsk.predict(df[FEATURES], task=df["store"]), atol=1e-12)


def test_mixed_losses_on_dask_check_each_tasks_targets(client):
    df = _mixed_frame(MIXED)
    df.loc[df["store"] == 10, "y"] = -1.0  # the Poisson task
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match="negative"):
        rm.MultiTaskRegressor("l21", alpha=0.02, loss=MIXED).fit(
            ddf[FEATURES], ddf["y"], task=ddf["store"])


def _classes_frame(K=(3, 2, 4), seed=0):
    """Long-form rows of tasks with K[t] classes (labels are strings)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(len(K)) * 7 + 3
    task = np.repeat(ids, rng.integers(40, 60, len(K)))
    X = rng.standard_normal((len(task), P))
    y = np.empty(len(task), dtype=object)
    for t, k in enumerate(K):
        rows = task == ids[t]
        S = X[rows] @ rng.standard_normal((P, k)) + rng.standard_normal((rows.sum(), k))
        y[rows] = np.array([f"c{j}" for j in range(k)])[S.argmax(axis=1)]
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, y
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_multinomial_on_dask_equals_in_memory_and_certifies(client):
    """Tasks of 3, 2 and 4 classes: the classes found across the blocks, the layout built on
    each block, one coupled fit with the in-memory coefficients, gap and objective."""
    df = _classes_frame()
    ddf = dd.from_pandas(df, npartitions=3)

    def est():
        return rm.MultiTaskClassifier("l21", alpha=0.2, tol=1e-6, max_iter=2000, solver="fista")

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert [c.tolist() for c in dsk.classes_] == [c.tolist() for c in mem.classes_]
    assert list(dsk.tasks_) == list(mem.tasks_) and dsk.coef_.shape == (9, P)
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-8)
    assert abs(dsk.objective_ - mem.objective_) <= 1e-10 * abs(mem.objective_)
    assert abs(dsk.dual_gap_ - mem.dual_gap_) <= 1e-10 * abs(mem.objective_)
    np.testing.assert_allclose(dsk.task_sizes_, mem.task_sizes_)
    with pytest.raises(ValueError, match="compute the Dask input first"):
        dsk.predict(ddf[FEATURES], task=ddf["store"])
    np.testing.assert_allclose(dsk.predict_proba(df[FEATURES], task=df["store"]),
                               mem.predict_proba(df[FEATURES], task=df["store"]), atol=1e-8)


def test_a_loss_list_with_quantile_and_poisson_tasks_is_refused_on_dask_by_name(client):
    """Quantile tasks alone or beside squared and Huber ones are fitted on Dask
    (``tests/test_dask_quantile.py``); beside Poisson tasks the refusal says why."""
    df = _frame("poisson")
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match=r"Mixed.*no such iteration.*compute the Dask input"):
        rm.MultiTaskRegressor("l21", alpha=0.02,
                              loss=["squared", "quantile", "poisson", "squared"]).fit(
            ddf[FEATURES], ddf["y"], task=ddf["store"])
