"""The penalties whose coupling is more than a row summary, on Dask input
(``dask.distributed.LocalCluster``, worker processes): the dirty model (each row's scale of
its dual point, from per-row sums), sparse plus low rank and the robust models (their parts:
entries, columns, the p x p Gram of the low-rank part), the clustered penalty (the p x p Gram
of W, whose eigenvectors carry its k-dimensional factors) and the graph with a loss other
than the squared one (its prox by conjugate gradients along the graph's edges). Each is
solved by the solver that fits it in memory, so the coefficients, the intercepts and the
structure equal the in-memory fit's to 1e-8, certified below ``tol`` on the blocks' sums.
What stays in memory is refused by name, with the reason and what to do (the penalties
whose prox reads each row whole: ``tests/test_dask_gathered.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from _loss_cases import targets

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.dask import as_dask_task_data  # noqa: E402
from regmtl.datafits import make_loss  # noqa: E402
from regmtl.penalties import make_penalty  # noqa: E402
from regmtl.solvers import reference  # noqa: E402

P = 4
T = 5
FEATURES = [f"x{j}" for j in range(P)]


def _frame(loss, seed=0):
    """Long-form rows of T tasks (ids not 0..T-1), shuffled so that every partition mixes
    tasks: weights along a shared direction, one task-specific feature (an exception for the
    dirty and sparse parts) and one task apart (an outlier for the robust models)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) * 7 + 3
    task = np.repeat(ids, rng.integers(35, 50, T))
    X = rng.standard_normal((len(task), P))
    W = np.outer([0.6, 0.5, 0.4, 0.0], 1.0 + 0.2 * rng.standard_normal(T))
    W[3, 1] = 1.2
    W[:, 4] = [-0.5, 0.2, 0.0, 0.3]
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.3
    y = targets(loss, f, rng)
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, y.astype(int) if loss == "logistic" else y
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def _penalty(name):
    if name == "graph":
        return rm.GraphLaplacian(rm.chain_graph(T))
    return {"clustered": rm.Clustered(k=2), "dirty": rm.Dirty(own_weight=0.5),
            "sparse_lowrank": rm.SparseLowRank(sparse_weight=0.4)}.get(name, name)


#: (penalty, loss, solver): the in-memory fit runs the row that the Dask fit runs (``"auto"``
#: there; named here where "auto" in memory takes coordinate descent over the rows), so that
#: the two are the same iterations on the same sums: equal well beyond ``tol``
CASES = [
    ("sparse_lowrank", "squared", "auto"),
    ("clustered", "squared", "auto"),
    ("clustered", "poisson", "auto"),
]
if os.environ.get("REGMTL_MATRIX") == "full":  # (make test-matrix: 45 s more; the dirty
    # model on Dask is in make test through its class form and the quantile loss)
    CASES += [("dirty", "squared", "admm"), ("graph", "logistic", "auto")]
TOL = 1e-6


@pytest.mark.parametrize(("penalty", "loss", "solver"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_coupled_penalty_on_dask_equals_in_memory(dask_process_client, penalty, loss, solver):
    df = _frame(loss)
    ddf = dd.from_pandas(df, npartitions=3)

    def est(solver):
        kw = dict(alpha=0.3, tol=TOL, max_iter=2000, solver=solver)
        if loss == "logistic":
            return rm.MultiTaskClassifier(_penalty(penalty), **kw)
        return rm.MultiTaskRegressor(_penalty(penalty), loss=loss, **kw)

    mem = est(solver).fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est("auto").fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    assert list(dsk.tasks_) == list(mem.tasks_)
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-8)
    for name in make_penalty(_penalty(penalty)).structure_attrs:  # P_, Q_, M's factors...
        if name not in ("task_clusters_", "cluster_vectors_"):  # (signs: from W's SVD)
            np.testing.assert_allclose(getattr(dsk, name), getattr(mem, name), atol=1e-8)
    # certified below tol on the blocks' sums: a gap on the in-memory scale, or a KKT residual
    if hasattr(dsk, "dual_gap_"):
        ref = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"],
                                          numeric_y=loss != "logistic"),
                        make_loss(loss), True)
        assert 0.0 <= dsk.dual_gap_ <= TOL * ref.P0
    else:
        assert dsk.kkt_residual_ <= TOL
    # (the trace norms from the p x p Gram's eigenvalues: small singular values to sqrt(eps))
    assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)


def test_dirty_row_scales_from_block_sums_equal_the_sorted_ones():
    """The dirty model's scale per row (``||min(s |W_j|, b)||_2 = r``) found from per-row
    sums on blocks (the active-set steps) equals the in-memory one found by sorting the row,
    ties, zero rows and rows that never reach r included."""
    da = pytest.importorskip("dask.array")
    from regmtl.penalties.composite import _clip_scale

    rng = np.random.default_rng(0)
    for trial in range(60):
        p, n = rng.integers(1, 6), rng.integers(1, 30)
        A = np.abs(rng.standard_normal((p, n))) * (rng.random((p, n)) < 0.7)
        if trial % 5 == 0:
            A[:, : n // 2] = 1.0  # ties
        if trial % 7 == 0:
            A[0] = 0.0
        b, r = rng.uniform(0.05, 1.5), rng.uniform(0.1, 3.0)
        want = _clip_scale(A, b, r)
        got = _clip_scale(da.from_array(A, chunks=(p, max(n // 3, 1))), b, r)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-14)


@pytest.mark.parametrize(("penalty", "why"), [
    (rm.MCP(), "nonconvex penalty has many stationary points"),
    (rm.SCAD(group=True), "another stationary point"),
])
def test_what_stays_in_memory_is_refused_with_its_reason(dask_process_client, penalty, why):
    df = _frame("squared")
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match=rf"not available on Dask input \(.*{why}.*\); use "
                                         r".*compute the Dask input first") as err:
        rm.MultiTaskRegressor(penalty, alpha=0.1).fit(ddf[FEATURES], ddf["y"],
                                                      task=ddf["store"])
    assert all(name in str(err.value) for name in ("dirty", "clustered", "sparse_lowrank"))
