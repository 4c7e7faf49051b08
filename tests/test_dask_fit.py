"""One coupled fit on a real Dask cluster (``dask.distributed.LocalCluster``, worker
processes): equal to the in-memory fit, rows kept on the workers, lazy predictions."""

from __future__ import annotations

import copy
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402

P = 4
FEATURES = [f"x{j}" for j in range(P)]


@pytest.fixture
def client(dask_process_client):
    """The session's LocalCluster of worker processes (conftest), shared with the other Dask
    modules."""
    return dask_process_client


def _frame(T=9, seed=0, binary=False):
    """Long-form rows of T tasks (ids 9-digit ints, not 0..T-1), shuffled so that every
    partition mixes tasks; a shared low-rank W plus task-specific parts."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**9, T, replace=False)
    sizes = rng.integers(25, 70, T)
    task = np.repeat(ids, sizes)
    X = rng.standard_normal((len(task), P))
    W = np.outer(rng.standard_normal(P), rng.standard_normal(T)) + 0.3 * rng.standard_normal(
        (P, T))
    W[-1] = 0.0
    col = np.searchsorted(np.sort(ids), task)
    f = np.einsum("ij,ji->i", X, W[:, np.argsort(np.argsort(ids))][:, col]) + 0.5
    y = (f + rng.standard_normal(len(f)) > 0).astype(int) if binary else \
        f + 0.5 * rng.standard_normal(len(f))
    perm = rng.permutation(len(task))
    df = pd.DataFrame(X[perm], columns=FEATURES)
    df["store"] = task[perm]
    df["y"] = y[perm]
    return df


def _both(est, df, npartitions=4):
    ddf = dd.from_pandas(df, npartitions=npartitions)
    from sklearn.base import clone

    mem = clone(est).fit(df[FEATURES], df["y"], task=df["store"])
    dsk = clone(est).fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    return mem, dsk, ddf


def _close(mem, dsk, rtol=1e-5):
    scale = np.abs(mem.coef_).max()
    assert np.abs(dsk.coef_ - mem.coef_).max() <= rtol * scale
    assert np.abs(dsk.intercept_ - mem.intercept_).max() <= rtol * max(
        np.abs(mem.intercept_).max(), 1.0)
    assert list(dsk.tasks_) == list(mem.tasks_)
    assert isinstance(dsk.coef_, np.ndarray)


#: the fits of :func:`_regressor_fits`, by penalty: (the frame, in memory, on Dask)
_FITS: dict = {}


def _regressor_fits(penalty):
    """The regressor of ``penalty`` on :func:`_frame` fitted in memory and on Dask (4
    partitions, tol 1e-9), once per module: the equality test checks the pair, the lazy
    prediction and the warm refit tests start from copies of it (fitted estimators hold
    NumPy arrays only, nothing of the cluster)."""
    if penalty not in _FITS:
        df = _frame()
        T = df["store"].nunique()
        pen = rm.GraphLaplacian(rm.chain_graph(T)) if penalty == "graph" else penalty
        alpha = {"l21": 0.05, "trace": 0.1, "mean": 0.5, "graph": 0.5, "l1": 0.02}[penalty]
        est = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-9, max_iter=5000)
        mem, dsk, _ = _both(est, df)
        _FITS[penalty] = (df, mem, dsk)
    df, mem, dsk = _FITS[penalty]
    return df, copy.deepcopy(mem), copy.deepcopy(dsk)


@pytest.mark.parametrize("penalty", ["l21", "trace", "mean", "graph"])
def test_regressor_on_dask_equals_in_memory(client, penalty):
    _, mem, dsk = _regressor_fits(penalty)
    _close(mem, dsk)
    # certified the same way: a duality gap or KKT residual below tol (relative)
    if penalty in ("mean", "graph"):
        assert dsk.kkt_residual_ <= 1e-9
    else:
        assert dsk.dual_gap_ <= 1e-9 * abs(mem.objective_) * 10
    assert dsk.objective_ == pytest.approx(mem.objective_, rel=1e-9)


def test_classifier_on_dask_equals_in_memory(client):
    df = _frame(binary=True, seed=3)
    est = rm.MultiTaskClassifier("l21", alpha=0.1, tol=1e-9, max_iter=200)
    mem, dsk, ddf = _both(est, df)
    _close(mem, dsk)
    assert dsk.objective_ == pytest.approx(mem.objective_, rel=1e-9)
    assert [list(c) for c in dsk.classes_] == [list(c) for c in mem.classes_]
    proba = dsk.predict_proba(ddf[FEATURES], task=ddf["store"])
    assert hasattr(proba, "dask")
    np.testing.assert_allclose(proba.compute(), mem.predict_proba(df[FEATURES],
                                                                  task=df["store"]),
                               atol=1e-6)
    labels = dsk.predict(ddf[FEATURES], task=ddf["store"]).compute()
    np.testing.assert_array_equal(labels, mem.predict(df[FEATURES], task=df["store"]))
    acc = dsk.score(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert float(acc) == pytest.approx(mem.score(df[FEATURES], df["y"], task=df["store"]),
                                       abs=1e-12)


def _fails_when_read(part):
    raise RuntimeError("a partition was read")


def test_predict_and_score_are_lazy_in_row_order(client, tmp_path):
    df, mem, dsk = _regressor_fits("l21")  # (a model fitted on Dask: its predictions)
    ddf = dd.from_pandas(df, npartitions=3)
    pred = dsk.predict(ddf[FEATURES], task=ddf["store"])
    assert hasattr(pred, "dask") and pred.chunks == ((np.nan,) * 3,)  # lengths not read
    assert pred.compute().shape == (len(df),)
    # nothing runs before compute: partitions that fail when read fail only then
    boom = ddf.map_partitions(_fails_when_read, meta=ddf._meta)
    lazy = dsk.predict(boom[FEATURES], task=boom["store"])
    lazy_r2 = dsk.score(boom[FEATURES], boom["y"], task=boom["store"])
    with pytest.raises(RuntimeError, match="read"):
        lazy.compute()
    with pytest.raises(RuntimeError, match="read"):
        lazy_r2.compute()
    # the same model's in-memory predictions, row by row; and the in-memory fit's to its tol
    np.testing.assert_allclose(pred.compute(), dsk.predict(df[FEATURES], task=df["store"]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pred.compute(), mem.predict(df[FEATURES], task=df["store"]),
                               atol=1e-5)
    r2 = dsk.score(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert hasattr(r2, "dask")
    assert float(r2) == pytest.approx(dsk.score(df[FEATURES], df["y"], task=df["store"]),
                                      rel=1e-10)
    # the task column by name, and a model that saves and loads as usual
    by_name = dsk.predict(ddf[FEATURES + ["store"]], task="store").compute()
    np.testing.assert_allclose(by_name, pred.compute())
    path = tmp_path / "model.regmtl"
    dsk.save(path)
    np.testing.assert_array_equal(rm.load(path).coef_, dsk.coef_)
    with pytest.raises(ValueError, match="unknown task"):
        bad = ddf.assign(store=ddf["store"] + 1)
        dsk.predict(bad[FEATURES], task=bad["store"]).compute()


def test_client_never_holds_the_rows(client):
    """Rows generated on the workers (a Dask array of 240,000 x 16 floats, 31 MB): what the
    fit allocates on the client (graphs, messages, the task ids, W and the summaries) stays
    below three quarters of that, where the rows alone would exceed it (measured: 12 MB with
    the cluster alone, 16 MB beside a busy second test process, whose load lengthens the fit
    and so the scheduler's messages held meanwhile)."""
    n, p, T = 240_000, 16, 400
    X = da.random.default_rng(0).standard_normal((n, p), chunks=(40_000, p))
    task = (da.arange(n, chunks=40_000) * 7919) % T
    y = X[:, 0] - 2.0 * X[:, 1] + da.random.default_rng(1).standard_normal(n, chunks=40_000)
    tracemalloc.start()
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert model.coef_.shape == (T, p)
    assert np.abs(model.coef_[:, 2:]).max() < np.abs(model.coef_[:, :2]).min()
    assert peak < 0.75 * n * p * 8


def _peer_bytes(dask_worker=None) -> int:
    return int(dask_worker.transfer_outgoing_bytes_total)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_iterations_move_only_the_penalty_summaries(client, penalty):
    """Once the rows sit in their task blocks, what the workers send each other stays below
    W itself (1,000 tasks x 4 features, 32 kB) per iteration over a whole solve of 15
    iterations (its fixed part included: reference point, certificates), and below a tenth
    of W for each further iteration (the difference between solves of 15 and 5 iterations):
    the coupling moves p row norms (L2,1) or the p x p Gram of W (trace). A flattening inner
    product, which gathered about 4 W per iteration (124-137 kB), fails the first; steps on
    W's columns run away from their block (no placement of the blocks' tasks), the second.
    (Measured 7 kB per iteration over 15 for both, and 0.2 kB (L2,1) and 0.6 kB (trace) per
    further iteration.) The objective is near the in-memory optimum."""
    from regmtl.dask import as_dask_task_data
    from regmtl.datafits import Quadratic
    from regmtl.penalties import make_penalty
    from regmtl.solvers import solve

    rng = np.random.default_rng(3)
    T, n_t = 1000, 20
    task = np.repeat(np.arange(T), n_t)
    X = rng.standard_normal((T * n_t, P))
    W = np.outer(rng.standard_normal(P), rng.standard_normal(T))
    W[-1] = 0.0
    y = np.einsum("ij,ji->i", X, W[:, task]) + rng.standard_normal(len(task))
    perm = rng.permutation(len(task))
    df = pd.DataFrame(X[perm], columns=FEATURES).assign(store=task[perm], y=y[perm])
    ddf = dd.from_pandas(df, npartitions=4)
    data = as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"])
    alpha = 2.0
    moved, runs = {}, {}
    for k in (15, 5):
        before = sum(client.run(_peer_bytes).values())
        with warnings.catch_warnings():  # (stopped short on purpose)
            warnings.simplefilter("ignore", ConvergenceWarning)
            runs[k] = solve(data, Quadratic(), make_penalty(penalty), alpha, tol=1e-12,
                            max_iter=k)
        moved[k] = sum(client.run(_peer_bytes).values()) - before
    res = runs[15]
    mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(), df["store"].to_numpy())
    ref = solve(mem, Quadratic(), make_penalty(penalty), alpha, tol=1e-8, max_iter=5000)
    assert res.n_iter == 15
    assert moved[15] / 15 < P * T * 8
    assert (moved[15] - moved[5]) / 10 < 0.1 * P * T * 8
    # 15 accelerated steps from W = 0 on this well-conditioned problem: near the optimum
    assert res.certificate.primal <= ref.certificate.primal * (1 + 1e-3)


def test_unsupported_on_dask_say_what_to_do(client):
    ddf = dd.from_pandas(_frame(), npartitions=2)
    with pytest.raises(ValueError, match="not available on Dask"):
        rm.MultiTaskRegressor("mcp", alpha=0.1).fit(ddf[FEATURES], ddf["y"],
                                                      task=ddf["store"])
    with pytest.raises(ValueError, match="runs in memory only"):
        rm.MultiTaskRegressor("l21", solver="bcd").fit(ddf[FEATURES], ddf["y"],
                                                       task=ddf["store"])
    with pytest.raises(ValueError, match="task"):
        rm.MultiTaskRegressor("l21").fit(ddf[FEATURES], ddf["y"])


def test_columns_of_one_parquet_read_and_alpha_max(client, tmp_path):
    """Columns taken apart from one read_parquet (which Dask may partition differently by
    the columns read) fit like the in-memory rows; alpha_max on Dask input equals its
    in-memory value."""
    df = _frame(seed=7)
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[rows].assign(note="r").to_parquet(tmp_path / f"part-{i}.parquet")
    ddf = dd.read_parquet(str(tmp_path / "part-*.parquet"))
    est = rm.MultiTaskRegressor("l2", alpha=0.3, tol=1e-9)
    dsk = est.fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    mem = rm.MultiTaskRegressor("l2", alpha=0.3, tol=1e-9).fit(df[FEATURES], df["y"],
                                                                task=df["store"])
    _close(mem, dsk, rtol=1e-9)
    a_dask = rm.alpha_max(ddf[FEATURES], ddf["y"], ddf["store"], penalty="l21")
    a_mem = rm.alpha_max(df[FEATURES], df["y"], df["store"], penalty="l21")
    assert a_dask == pytest.approx(a_mem, rel=1e-12)


def test_cv_on_dask_equals_in_memory(client):
    """MultiTaskRegressorCV on Dask input: the same shuffled folds as in memory, dealt by every
    task block for its own rows; the same scores per fold and alpha, the same choice, and the
    refit on the blocks already on the workers."""
    df = _frame(T=7, seed=11)
    est = rm.MultiTaskRegressorCV("l2", alphas=3, cv=3, tol=1e-8, random_state=5)
    mem, dsk, ddf = _both(est, df, npartitions=3)
    cols = [f"split{k}_test_score" for k in range(3)]
    np.testing.assert_allclose(dsk.cv_results_[cols].to_numpy(),
                               mem.cv_results_[cols].to_numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dsk.alphas_, mem.alphas_, rtol=1e-12)
    assert dsk.alpha_ == mem.alpha_
    _close(mem.best_estimator_, dsk.best_estimator_, rtol=1e-6)
    pred = dsk.predict(ddf[FEATURES], task=ddf["store"])
    assert hasattr(pred, "dask")
    np.testing.assert_allclose(np.asarray(pred), dsk.predict(df[FEATURES], task=df["store"]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stratify", [False, True])
def test_folds_on_task_blocks_are_the_in_memory_folds(client, stratify):
    """Every block deals its own rows (the random keys of its rows from the stream advanced
    to its offset): each side of every fold holds exactly the rows, in the same order, that
    the in-memory folds give, for plain and stratified (classifier) folds."""
    import dask

    from regmtl.dask import as_dask_task_data
    from regmtl.selection.folds import take, task_folds

    df = _frame(T=6, seed=2, binary=stratify)
    ddf = dd.from_pandas(df, npartitions=3)
    blocks = as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"], numeric_y=not stratify,
                               block_rows=60)
    assert blocks.n_blocks >= 3
    mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                          df["store"].to_numpy(), numeric_y=not stratify)
    if stratify:
        mem.encode_binary()
    for (tr_d, va_d), (tr_m, va_m) in zip(
            task_folds(blocks, 3, stratify=stratify, random_state=7),
            task_folds(mem, 3, stratify=stratify, random_state=7), strict=True):
        for side_d, side_m, fit in ((tr_d, tr_m, True), (va_d, va_m, False)):
            sub = take(blocks, side_d, encode=stratify, fit=fit)
            parts = dask.compute(*sub.blocks)
            want = take(mem, side_m, encode=stratify, fit=fit)
            np.testing.assert_array_equal(np.concatenate([b.X for b in parts]), want.X)
            np.testing.assert_array_equal(np.concatenate([b.y for b in parts]), want.y)
            np.testing.assert_array_equal(sub.task_rows, np.diff(want.indptr))


def test_cv_on_dask_refuses_what_needs_the_rows_in_one_place(client):
    ddf = dd.from_pandas(_frame(), npartitions=2)
    X, y, task = ddf[FEATURES], ddf["y"], ddf["store"]
    with pytest.raises(ValueError, match="criterion='aic' is not available on Dask"):
        rm.MultiTaskRegressorCV(criterion="aic").fit(X, y, task=task)
    with pytest.raises(ValueError, match="groups"):
        rm.MultiTaskRegressorCV(cv=2).fit(X, y, task=task, groups=task)
    from sklearn.model_selection import KFold

    with pytest.raises(ValueError, match="integer number of folds"):
        rm.MultiTaskRegressorCV(cv=KFold(2)).fit(X, y, task=task)


def test_admm_runs_on_the_task_blocks(client):
    """ADMM's exact per-task solves on the blocks (each block keeps its eigendecompositions):
    the same iterates as in memory, to rounding, and the same certified solution."""
    from regmtl.dask import as_dask_task_data
    from regmtl.solvers.parts.admm import admm_quadratic
    from regmtl.solvers.parts.quadratic import BlockQuadratic, task_quadratic

    df = _frame(T=9, seed=5)
    ddf = dd.from_pandas(df, npartitions=3)
    dsk = as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"])
    mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(), df["store"].to_numpy())
    qd, qm = task_quadratic(dsk, True), task_quadratic(mem, True)
    assert isinstance(qd, BlockQuadratic)
    pen = rm.Trace()
    out = {}
    for name, q in (("dask", qd), ("mem", qm)):
        W0 = np.zeros((P, 9))
        W, it, stalled = admm_quadratic(q, pen, 0.05, W0, tol=1e-10, max_iter=2000)
        out[name] = (np.asarray(W), it)
        assert not stalled and q.eigen_ready()
    assert out["dask"][1] == out["mem"][1]
    np.testing.assert_allclose(out["dask"][0], out["mem"][0], atol=1e-9)


@pytest.mark.parametrize("penalty", ["l21", "trace"])
def test_warm_refit_on_dask_returns_its_start_after_no_iteration(client, penalty):
    """A converged Dask fit refitted with warm_start=True at the same alpha: the start is
    certified on the workers' blocks and returned (n_iter_ == 0), coefficients unchanged and
    still equal to the in-memory fit's; a new alpha solves again. (The converged fit is the
    equality test's, :func:`_regressor_fits`, at tol 1e-9.)"""
    df, mem, dsk = _regressor_fits(penalty)
    ddf = dd.from_pandas(df, npartitions=4)
    dsk.set_params(warm_start=True)
    coef = dsk.coef_.copy()
    dsk.fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert dsk.n_iter_ == 0
    np.testing.assert_array_equal(dsk.coef_, coef)
    _close(mem, dsk)
    dsk.set_params(alpha=0.8 * dsk.alpha).fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert dsk.n_iter_ >= 1
