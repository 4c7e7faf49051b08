"""``score`` on Dask input equals the in-memory ``score`` on the same rows: the same tasks
averaged (those with rows), and sums of squares merged stably across partitions (targets far
from zero), on a real ``dask.distributed.LocalCluster`` (threads, two workers)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning
from sklearn.metrics import accuracy_score, r2_score

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402

P = 4
F = [f"x{j}" for j in range(P)]
IDS = np.array([101, 202, 303])


@pytest.fixture(scope="module")
def client():
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _frame(seed=0, x_offset=0.0, y_offset=0.0, sizes=(60, 50, 70)):
    """Long-form rows of the three tasks of IDS, shuffled (every partition mixes tasks)."""
    rng = np.random.default_rng(seed)
    task = np.repeat(IDS, sizes)
    X = rng.standard_normal((len(task), P))
    W = rng.standard_normal((P, len(IDS)))
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(IDS, task)])
    y = f + 0.5 * rng.standard_normal(len(task))
    perm = rng.permutation(len(task))
    df = pd.DataFrame(X[perm] + x_offset, columns=F)
    df["t"] = task[perm]
    df["y"] = y[perm] + y_offset
    df["label"] = (y[perm] > 0).astype(int)
    df["w"] = rng.uniform(0.2, 3.0, len(task))
    return df


def _fit(est, df, target="y"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(df[F], df[target], task=df["t"])


def _dask_score(est, df, target="y", npartitions=3, weights=False):
    ddf = dd.from_pandas(df, npartitions=npartitions)
    return float(est.score(ddf[F], ddf[target], task=ddf["t"],
                           sample_weight=ddf["w"] if weights else None).compute())


def test_score_averages_only_the_tasks_with_rows(client):
    """Rows of 2 of the 3 fitted tasks: the absent task is not averaged (it counted as R^2 =
    1 and made the accuracy NaN), as in memory."""
    df = _frame()
    reg = _fit(rm.MultiTaskRegressor("l21", alpha=0.01), df)
    clf = _fit(rm.MultiTaskClassifier("l21", alpha=0.01), df, "label")
    sub = df[df["t"] != 202]
    mem_r2 = reg.score(sub[F], sub["y"], task=sub["t"])
    mem_acc = clf.score(sub[F], sub["label"], task=sub["t"])
    # in memory: the mean over the two tasks present of scikit-learn's per-task scores
    pred, lab = reg.predict(sub[F], task=sub["t"]), clf.predict(sub[F], task=sub["t"])
    keep = [t for t in IDS if t != 202]
    assert mem_r2 == pytest.approx(np.mean([r2_score(sub["y"][sub["t"] == t],
                                                     pred[sub["t"] == t]) for t in keep]),
                                   rel=1e-12)
    assert mem_acc == pytest.approx(np.mean([accuracy_score(sub["label"][sub["t"] == t],
                                                            lab[sub["t"] == t]) for t in keep]),
                                    rel=1e-12)
    assert _dask_score(reg, sub) == pytest.approx(mem_r2, rel=1e-12)
    assert _dask_score(clf, sub, "label") == pytest.approx(mem_acc, rel=1e-12)
    # with sample weights too
    assert _dask_score(reg, sub, weights=True) == pytest.approx(
        reg.score(sub[F], sub["y"], task=sub["t"], sample_weight=sub["w"]), rel=1e-12)
    assert _dask_score(clf, sub, "label", weights=True) == pytest.approx(
        clf.score(sub[F], sub["label"], task=sub["t"], sample_weight=sub["w"]), rel=1e-12)


@pytest.mark.parametrize("npartitions", [3, 7])
def test_score_of_targets_far_from_zero(client, npartitions):
    """y = 1e8 + O(1): the total sum of squares merged by Chan's update, not as sum y^2 -
    (sum y)^2 / n (R^2 0.933 against 0.950 before), equal to in memory and scikit-learn."""
    df = _frame(seed=1, y_offset=1e8)
    reg = _fit(rm.MultiTaskRegressor("l21", alpha=0.01), df)
    pred = reg.predict(df[F], task=df["t"])
    sk = np.mean([r2_score(df["y"][df["t"] == t], pred[df["t"] == t]) for t in IDS])
    mem = reg.score(df[F], df["y"], task=df["t"])
    assert mem == pytest.approx(sk, rel=1e-12)
    assert _dask_score(reg, df, npartitions=npartitions) == pytest.approx(mem, rel=1e-12)
    mem_w = reg.score(df[F], df["y"], task=df["t"], sample_weight=df["w"])
    sk_w = np.mean([r2_score(df["y"][df["t"] == t], pred[df["t"] == t],
                             sample_weight=df["w"][df["t"] == t]) for t in IDS])
    assert mem_w == pytest.approx(sk_w, rel=1e-12)
    assert _dask_score(reg, df, npartitions=npartitions, weights=True) == pytest.approx(
        mem_w, rel=1e-12)


def test_score_edge_tasks_as_in_memory(client):
    """A task with one row scores NaN (with scikit-learn's warning), a task with one row of
    positive weight scores 0 or 1 (no spread), as in memory; a task whose rows all weigh
    zero, negative weights and missing targets are errors, as in memory."""
    df = _frame(seed=2)
    reg = _fit(rm.MultiTaskRegressor("l21", alpha=0.01), df)
    one = pd.concat([df[df["t"] != 303], df[df["t"] == 303].iloc[:1]])
    with pytest.warns(UndefinedMetricWarning):
        mem = reg.score(one[F], one["y"], task=one["t"])
    assert np.isnan(mem)
    with warnings.catch_warnings():  # (raised on a worker)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        assert np.isnan(_dask_score(reg, one))
    w = df["w"].to_numpy().copy()
    rows = np.flatnonzero(df["t"].to_numpy() == 303)
    w[rows[1:]] = 0.0  # task 303: one row of positive weight among 70
    single = df.assign(w=w)
    mem = reg.score(single[F], single["y"], task=single["t"], sample_weight=single["w"])
    r2_two = [r2_score(df["y"][df["t"] == t], reg.predict(df[F], task=df["t"])[df["t"] == t],
                       sample_weight=w[df["t"] == t]) for t in (101, 202)]
    assert mem == pytest.approx((sum(r2_two) + 0.0) / 3, rel=1e-12)
    assert _dask_score(reg, single, weights=True) == pytest.approx(mem, rel=1e-12)
    w[rows] = 0.0
    with pytest.raises(ValueError, match="task 303 has zero total weight"):
        _dask_score(reg, df.assign(w=w), weights=True)
    with pytest.raises(ValueError, match="negative"):
        _dask_score(reg, df.assign(w=-df["w"]), weights=True)
    with pytest.raises(ValueError, match="NaN"):
        _dask_score(reg, df.assign(y=df["y"].where(df.index != 5)))


def _offset_fits(est, shifted, ref_frame):
    ddf = dd.from_pandas(shifted, npartitions=3)
    ref = _fit(rm.MultiTaskRegressor(**est), ref_frame)
    mem = _fit(rm.MultiTaskRegressor(**est), shifted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dsk = rm.MultiTaskRegressor(**est).fit(ddf[F], ddf["y"], task=ddf["t"])
    return ref, mem, dsk


# the solve on the raw offset blocks (the failure the shift removes) divides by the zero
# variance it reads for the offset columns
@pytest.mark.filterwarnings("ignore:divide by zero encountered in divide:RuntimeWarning")
def test_task_blocks_shift_offset_columns_as_in_memory():
    """``DaskTaskData.shift_columns``: each block's tasks shifted on the workers, the same
    shifts and shifted rows as in memory, and the solver on the shifted blocks gives the W of
    the in-memory solve on them and of the unshifted columns (to the data's rounding of
    1e8 + N(0, 1), 1e-8 relative), where the columns as given lose their spread (W = 0)."""
    from regmtl.dask import as_dask_task_data
    from regmtl.inputs import as_task_data
    from regmtl.solvers import solve
    from regmtl.taskdata import shift_columns

    with dask.config.set(scheduler="synchronous"):  # (a solve of many small steps)
        df, shifted = _frame(seed=3), _frame(seed=3, x_offset=1e8, y_offset=1e8)
        df, shifted = (d.sort_values("t", kind="stable") for d in (df, shifted))
        ddf = dd.from_pandas(shifted, npartitions=3)
        blocks = as_dask_task_data(ddf[F], ddf["y"], ddf["t"], block_rows=60)
        assert blocks.n_blocks == 3  # one task per block
        mem = shift_columns(as_task_data(shifted[F].to_numpy(), shifted["y"].to_numpy(),
                                         shifted["t"].to_numpy()))
        moved = blocks.shift_columns()
        assert moved.x_shift is not None and moved.shift_columns() is moved
        np.testing.assert_array_equal(moved.x_shift, mem.x_shift)
        np.testing.assert_allclose(np.asarray(moved.adjoint(moved.c)), mem.adjoint(mem.c),
                                   rtol=0, atol=1e-15)  # the shifted columns' means, ~1e-9
        flat = as_task_data(df[F].to_numpy(), df["y"].to_numpy(), df["t"].to_numpy())
        fits = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for name, data in (("dask", moved), ("mem", mem), ("ref", flat), ("raw", blocks)):
                fits[name] = solve(data, rm.Quadratic(), rm.L21(), 0.02, tol=1e-9,
                                   max_iter=2000).W
        scale = np.abs(fits["ref"]).max()  # a relative gap of 1e-9: W to about 1e-6
        assert np.abs(fits["dask"] - fits["mem"]).max() <= 1e-6 * scale
        assert np.abs(fits["dask"] - fits["ref"]).max() <= 1e-6 * scale
        assert np.abs(fits["raw"]).max() == 0.0  # what the offset columns give unshifted


def test_task_blocks_without_offset_columns_are_kept(client):
    from regmtl.dask import as_dask_task_data

    df = _frame(seed=4)
    ddf = dd.from_pandas(df, npartitions=2)
    blocks = as_dask_task_data(ddf[F], ddf["y"], ddf["t"])
    assert blocks.shift_columns() is blocks and blocks.x_shift is None


@pytest.mark.parametrize("penalty", ["l21", "mean"][:2 if os.environ.get("REGMTL_MATRIX")
                                                     == "full" else 1])
def test_fit_on_offset_columns_on_dask_equals_in_memory(client, penalty):
    """Columns 1e8 + N(0, 1), y = 1e8 + noise: the Dask fit's W equals the in-memory fit's,
    and the fit's on the unshifted columns to the data's rounding; the same predictions."""
    ref, mem, dsk = _offset_fits(dict(penalty=penalty, alpha=0.02, tol=1e-9, max_iter=2000),
                                 _frame(seed=3, x_offset=1e8, y_offset=1e8), _frame(seed=3))
    scale = np.abs(ref.coef_).max()
    assert np.abs(dsk.coef_ - mem.coef_).max() <= 1e-6 * scale  # a relative gap of 1e-9
    assert np.abs(dsk.coef_ - ref.coef_).max() <= 1e-6 * scale
    df = _frame(seed=3, x_offset=1e8, y_offset=1e8)
    np.testing.assert_allclose(dsk.predict(df[F], task=df["t"]),
                               mem.predict(df[F], task=df["t"]), rtol=0, atol=1e-5)
