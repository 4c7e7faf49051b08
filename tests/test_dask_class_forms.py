"""The class forms of the dirty and decomposed models on Dask input (the multinomial loss's
classes' layout: task t holds the columns B_t of W, one per class; ``dask.distributed``
worker processes): each chunk of W holds whole tasks, so a group ``W_{j B_t}`` (a feature of
a task over its classes) lies in one chunk, and its norm and its shrink are formed there with
the chunk's own ``first``/``sizes`` (``penalties.class_groups.blocked_norms``); the low-rank
parts from their p x p Gram, the dirty model's row scales from per-row sums. The Dask fit is
the in-memory fit's iterations (the same solver), so the coefficients agree to 1e-8, certified
below ``tol`` on the blocks' sums. ``ClassGroupElastic`` (L1, elastic net) keeps W on the
workers too: none of these fits brings a p x T array to the client.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")
da = pytest.importorskip("dask.array")

import regmtl as rm  # noqa: E402
from regmtl.penalties.class_groups import (  # noqa: E402
    block_norms,
    blocked_norms,
    blocked_spread,
    chunk_layouts,
)

P = 4
FEATURES = [f"x{j}" for j in range(P)]
K = (3, 2, 4)  # classes per task
TOL = 1e-4


def _frame(seed=0):
    """Long-form rows of tasks with K[t] classes (string labels, task ids not 0..T-1),
    shuffled so that every partition mixes tasks: scores along a direction shared by the
    tasks, plus one feature of task 1 of its own."""
    rng = np.random.default_rng(seed)
    ids = np.arange(len(K)) * 7 + 3
    task = np.repeat(ids, rng.integers(40, 60, len(K)))
    X = rng.standard_normal((len(task), P))
    y = np.empty(len(task), dtype=object)
    shared = rng.standard_normal(P)
    for t, k in enumerate(K):
        rows = task == ids[t]
        B = np.outer(shared, rng.standard_normal(k)) + 0.3 * rng.standard_normal((P, k))
        if t == 1:
            B[3] += [2.0, -2.0]
        S = X[rows] @ B + rng.standard_normal((rows.sum(), k))
        y[rows] = np.array([f"c{j}" for j in range(k)])[S.argmax(axis=1)]
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, y
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


#: every class form in ``make test-matrix`` (REGMTL_MATRIX=full: 2 min); ``make test`` fits
#: the dirty model's and the elastic net's (the others' groups are the same chunk-by-chunk
#: norms, tested below against the in-memory ones)
FULL = os.environ.get("REGMTL_MATRIX") == "full"

PENALTIES = {
    "dirty": lambda: rm.Dirty(own_weight=0.5),
    "sparse_lowrank": lambda: rm.SparseLowRank(sparse_weight=0.4),
    "robust_lowrank": lambda: rm.RobustLowRank(outlier_weight=0.8),
    "robust_features": lambda: rm.RobustFeatures(outlier_weight=1.0),
}


@pytest.fixture
def no_columns_home(monkeypatch):
    """Records every Dask array brought to the client as a NumPy array (``__array__``)."""
    shapes = []
    real = da.Array.__array__

    def spy(self, *args, **kwargs):
        shapes.append(self.shape)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(da.Array, "__array__", spy)
    return shapes


@pytest.mark.parametrize("name", list(PENALTIES) if FULL else ["dirty"])
def test_class_form_on_dask_equals_in_memory(dask_process_client, no_columns_home, name):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=3)

    def est():
        return rm.MultiTaskClassifier(PENALTIES[name](), alpha=0.15, tol=TOL, max_iter=2000)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    assert mem.coef_.shape == (sum(K), P)  # (the multinomial loss: one row per class)
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert list(dsk.tasks_) == list(mem.tasks_)
    assert dsk.n_iter_ == mem.n_iter_  # (the same iterations)
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-8)
    for attr in ("P_", "Q_"):
        np.testing.assert_allclose(getattr(dsk, attr), getattr(mem, attr), rtol=0, atol=1e-8)
    if name.startswith("robust"):
        assert dsk.outlier_tasks_.tolist() == mem.outlier_tasks_.tolist()
    # certified below tol on the blocks' sums, on the in-memory scale: the objective at W = 0
    # (intercepts fitted), that of any alpha above alpha_max
    P0 = rm.MultiTaskClassifier(PENALTIES[name](), alpha=1e6).fit(
        df[FEATURES], df["y"], task=df["store"]).objective_
    assert not np.any(mem.coef_) or P0 > mem.objective_
    assert 0.0 <= dsk.dual_gap_ <= TOL * P0
    # (a trace norm on the blocks from the p x p Gram's eigenvalues: to sqrt(eps) there)
    assert abs(dsk.dual_gap_ - mem.dual_gap_) <= 1e-8 * P0
    assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)
    # only summaries came to the client (per-row sums, p x p Grams), never W's columns
    assert not [s for s in no_columns_home if len(s) >= 2 and s[-1] >= sum(K)]


@pytest.mark.parametrize(
    "penalty", [rm.ElasticNet(0.5), rm.MeanRegularized(0.5)][:2 if FULL else 1],
    ids=["elasticnet", "mean"][:2 if FULL else 1])
def test_class_groups_and_means_on_dask_keep_w_on_the_workers(dask_process_client,
                                                              no_columns_home, penalty):
    """The elastic net's class form (a group per feature and task over its classes) brought
    W to the client at every prox (``np.asarray``), and the mean's (one mean per class label)
    failed on Dask (``np.add.reduceat`` of a Dask array); both now stay in the chunks (the
    class means from each chunk's p x labels sums)."""
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=3)

    def est():
        return rm.MultiTaskClassifier(clone(penalty), alpha=0.05, tol=TOL, max_iter=2000)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    if isinstance(penalty, rm.ElasticNet):  # (the same iterations)
        np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-8)
        assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)
    else:  # (the mean's fit on the blocks is not the in-memory solver's: both certified)
        assert abs(dsk.objective_ - mem.objective_) <= 2 * TOL * abs(mem.objective_)
    assert not [s for s in no_columns_home if len(s) >= 2 and s[-1] >= sum(K)]


def test_group_norms_chunk_by_chunk_equal_the_whole():
    """Norms and spreads on chunks of whole tasks equal the in-memory ones; a chunking that
    cuts a task is gathered first (same result)."""
    rng = np.random.default_rng(0)
    sizes = np.array([3, 2, 4, 1, 2])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    W = rng.standard_normal((5, sizes.sum()))
    want = block_norms(W, first)
    assert chunk_layouts(first, sizes, (5, 4, 3)) is not None
    assert chunk_layouts(first, sizes, (4, 8)) is None  # (cuts task 1)
    for chunks in ((5, 4, 3), (12,), (3, 2, 7), (4, 8)):
        N = blocked_norms(da.from_array(W, chunks=(5, chunks)), first, sizes)
        np.testing.assert_allclose(N.compute(), want, rtol=1e-15)
        S = blocked_spread(N, first, sizes)
        np.testing.assert_allclose(S.compute(), np.repeat(want, sizes, axis=1), rtol=1e-15)
        s = blocked_spread(N.sum(axis=0), first, sizes)
        np.testing.assert_allclose(s.compute(), np.repeat(want.sum(axis=0), sizes))
