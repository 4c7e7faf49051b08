"""The penalties whose prox couples a feature's row across all the tasks, on Dask input
(``dask.distributed.LocalCluster``, worker processes, 6 task blocks over 2 workers): L1,inf
(a projection of each row onto an L1 ball), the temporal group lasso and the fused group
lasso (a row's chain along the tasks' time order) and the nonconvex fused group lasso (its
majorize-minimize stages, weighted fused lassos). Their prox runs on the rows gathered whole
(``regmtl.penalties.gathered``: the blocks' columns rechunked worker to worker), so each fit
is the in-memory fit's iterations on the same sums: equal to 1e-8, certified below ``tol``.
What stays in memory (the nonconvex penalties of entries or rows) is refused with its
mathematical reason.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.dask import as_dask_task_data  # noqa: E402
from regmtl.solvers import reference, solve  # noqa: E402

P = 4
T = 8
FEATURES = [f"x{j}" for j in range(P)]
TOL = 1e-8


def _frame(seed=0):
    """Long-form rows of T tasks in time (ids not 0..T-1), shuffled so that every partition
    mixes tasks: a shared direction drifting in time, one feature that jumps."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) * 7 + 3
    task = np.repeat(ids, rng.integers(35, 50, T))
    X = rng.standard_normal((len(task), P))
    W = np.outer([0.6, 0.5, 0.4, 0.0], 1.0 + 0.2 * rng.standard_normal(T))
    W[3, T // 2:] = 1.2
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.3
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, f + 0.5 * rng.standard_normal(len(f))
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


_DATA: dict = {}


def _data(client):
    """(in memory, on 6 task blocks over the 2 workers), once per cluster."""
    if _DATA.get("client") is not client:
        _DATA.clear()
        _DATA["client"] = client
        df = _frame()
        ddf = dd.from_pandas(df, npartitions=3)
        dsk = as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"],
                                block_rows=len(df) // 6 + 1)
        mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                              task=df["store"].to_numpy())
        _DATA["pair"] = mem, dsk
    return _DATA["pair"]


def test_gathered_maps_are_the_row_maps():
    """On a Dask array chunked by task blocks the row maps give the NumPy maps' numbers."""
    da = pytest.importorskip("dask.array")
    from regmtl.penalties.gathered import by_rows, of_rows, of_whole

    rng = np.random.default_rng(0)
    V = rng.standard_normal((5, 11))
    B = da.from_array(V, chunks=(5, (2, 4, 1, 4)))
    pen = rm.FusedGroupLasso(fused_weight=0.7, l1_weight=0.2)
    out = pen.prox(B, 0.3, 1.0)
    assert out.chunks == B.chunks
    np.testing.assert_array_equal(out.compute(), pen.prox(V, 0.3, 1.0))
    np.testing.assert_array_equal(pen.dual_norms(B).compute(), pen.dual_norms(V))
    np.testing.assert_array_equal(by_rows(np.cumsum, B, 1).compute(), np.cumsum(V, 1))
    np.testing.assert_array_equal(of_rows(np.sum, B, 1).compute(), np.sum(V, 1))
    tgl = rm.TemporalGroupLasso(smooth_weight=2.0)
    assert float(of_whole(tgl.conjugate, B, 3.0).compute()) == tgl.conjugate(V, 3.0)
    for p in (pen, tgl, rm.LInf1()):
        assert float(p.lazy_value(B, 0.4).compute()) == pytest.approx(p.value(V, 0.4),
                                                                      rel=1e-14)
        s = p.lazy_dual_scaling(B, 0.4)
        assert float(np.asarray(s)) == pytest.approx(p.dual_scaling(V, 0.4), rel=1e-14)


CASES = [
    ("temporal", rm.TemporalGroupLasso(smooth_weight=2.0), 0.1),  # (a conjugate, a null space)
]
if os.environ.get("REGMTL_MATRIX") == "full":  # (make test-matrix: a minute more)
    CASES += [
        ("l1inf", rm.LInf1(), 0.1),  # (make test: through the estimator, below)
        ("temporal_ridge", rm.TemporalGroupLasso(smooth_weight=1.0, ridge_weight=0.5), 0.2),
        ("fused", rm.FusedGroupLasso(fused_weight=0.5, l1_weight=0.3), 0.05),
        ("nonconvex_fused", rm.NonconvexFusedGroupLasso(fused_weight=0.5), 0.05),
    ]


@pytest.mark.parametrize(("name", "penalty", "alpha"), CASES, ids=[c[0] for c in CASES])
def test_gathered_prox_on_dask_equals_in_memory(dask_process_client, name, penalty, alpha):
    mem, dsk = _data(dask_process_client)
    holders = dsk._block_workers()
    assert dsk.n_blocks == 6 and len(set(holders)) == 2
    want = solve(mem, rm.Quadratic(), penalty, alpha, tol=TOL, max_iter=5000)
    got = solve(dsk, rm.Quadratic(), penalty, alpha, tol=TOL, max_iter=5000)
    W = np.asarray(got.W)
    assert isinstance(got.W, np.ndarray)
    assert np.abs(W).max() > 0  # (not the trivial solution)
    np.testing.assert_allclose(W, want.W, rtol=0, atol=1e-8 * np.abs(want.W).max())
    np.testing.assert_allclose(got.b, want.b, rtol=0, atol=1e-8 * max(np.abs(want.b).max(), 1))
    cert = got.certificate
    assert got.converged
    assert cert.kind == ("kkt_residual" if penalty.nonconvex else "duality_gap")
    assert 0.0 <= cert.relative <= TOL


def test_l1inf_estimator_on_dask_equals_in_memory(dask_process_client):
    """The estimator on a Dask frame: the coefficients, the intercepts and the gap."""
    df = _frame(seed=3)
    ddf = dd.from_pandas(df, npartitions=3)
    kw = dict(alpha=0.1, tol=1e-8)
    mem = rm.MultiTaskRegressor(rm.LInf1(), **kw).fit(df[FEATURES], df["y"], task=df["store"])
    dsk = rm.MultiTaskRegressor(rm.LInf1(), **kw).fit(ddf[FEATURES], ddf["y"],
                                                     task=ddf["store"])
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0,
                               atol=1e-8 * np.abs(mem.coef_).max())
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-8)
    ref = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"]), rm.Quadratic(),
                    True)
    assert 0.0 <= dsk.dual_gap_ <= 1e-8 * ref.P0


@pytest.mark.parametrize("penalty", [rm.MCP(), rm.SCAD(), rm.CappedL1(cap=1.0)])
def test_nonconvex_of_entries_refused_with_the_reason(dask_process_client, penalty):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match=r"not available on Dask input \(a nonconvex penalty "
                                         r"has many stationary points.*\); use .*l1inf.*"
                                         r"compute the Dask input first"):
        rm.MultiTaskRegressor(penalty, alpha=0.1).fit(ddf[FEATURES], ddf["y"],
                                                      task=ddf["store"])
