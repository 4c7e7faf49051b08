"""The quantile (pinball) loss on Dask input (``dask.distributed.LocalCluster``, worker
processes): restarted primal-dual iterations whose iterates stay beside the rows, in groups of
task blocks (``regmtl.solvers.blocks.primal_dual_blocks``), certified by the duality gap of the
pinball loss itself from per-block sums; a loss list of pinball, squared and Huber tasks
the same way.

In memory the same problems are solved exactly (a linear program for L1, an interior point
for L2,1) or by the same iteration (elastic net, L2). A pinball problem is a linear program
whose minimizer need not be unique (a flat face of the objective), so the fits are compared
where the problem identifies them: the objectives to 1e-8 relative (both certified at tol
1e-8 relative to the objective at W = 0), the coefficients to 1e-6 of the largest where the
in-memory row is the same iteration; and the Dask fit's gap is below tol times the objective
at W = 0, as in memory.
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
from regmtl.solvers import reference  # noqa: E402

P = 4
T = 5
FEATURES = [f"x{j}" for j in range(P)]
TOL = 1e-8
#: every case in ``make test-matrix`` (REGMTL_MATRIX=full); ``make test`` one of each route
FULL = os.environ.get("REGMTL_MATRIX") == "full"


def _cases(cases: list, default: tuple) -> list:
    """All the cases in the full run, those at ``default`` positions in ``make test``."""
    return cases if FULL else [cases[i] for i in default]


def _frame(seed=0):
    """Long-form rows of T tasks (ids not 0..T-1), shuffled so that every partition mixes
    tasks: weights along a shared direction, one zero feature, Gaussian noise."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) * 7 + 3
    task = np.repeat(ids, rng.integers(35, 50, T))
    X = rng.standard_normal((len(task), P))
    W = np.outer([0.6, 0.5, 0.4, 0.0], 1.0 + 0.2 * rng.standard_normal(T))
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.3
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, f + rng.standard_normal(len(f))
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def _fits(penalty, tau, alpha=0.05):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=3)

    def est():
        return rm.MultiTaskRegressor(penalty, alpha=alpha, loss=rm.Quantile(tau), tol=TOL,
                                     max_iter=2000)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    ref = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"]),
                    rm.Quantile(tau), True)
    return mem, dsk, ref


@pytest.mark.parametrize(("penalty", "tau"), _cases(
    [("l1", 0.3), ("l1", 0.5), ("l21", 0.3), ("l21", 0.5)], (0, 2)))
def test_quantile_on_dask_equals_in_memory_and_certifies(dask_process_client, penalty, tau):
    mem, dsk, ref = _fits(penalty, tau)
    assert list(dsk.tasks_) == list(mem.tasks_)
    assert dsk.n_iter_ <= dsk.max_iter
    # certified on the pinball loss itself, at the in-memory scale
    assert 0.0 <= dsk.dual_gap_ <= TOL * ref.P0
    assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)
    # (a linear program in memory, exact; here to the gap: the coefficients within what an
    # objective 1e-8 from the optimum allows on this sharp problem)
    scale = np.abs(mem.coef_).max()
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0, atol=1e-4 * scale)
    # the zero feature's exact zeros where the entries are thresholded
    if penalty == "l1":
        assert np.array_equal(dsk.coef_ == 0, mem.coef_ == 0)


@pytest.mark.parametrize("penalty", _cases(["elasticnet", "l2"], (0,)))
def test_quantile_on_dask_is_the_in_memory_iteration(dask_process_client, penalty):
    """Where memory runs the same primal-dual iteration (no exact row for the penalty), the
    blocks' sums in the blocks' order give the same iterates: equal to 1e-6 of the largest."""
    mem, dsk, ref = _fits(penalty, 0.3)
    assert dsk.n_iter_ == mem.n_iter_
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0,
                               atol=1e-6 * np.abs(mem.coef_).max())
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-6)
    assert 0.0 <= dsk.dual_gap_ <= TOL * ref.P0
    assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)


def test_quantile_at_alpha_max_is_zero_on_dask(dask_process_client):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=3)
    est = rm.MultiTaskRegressor("l21", alpha=100.0, loss=rm.Quantile(0.5))
    dsk = est.fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    mem = rm.MultiTaskRegressor("l21", alpha=100.0, loss=rm.Quantile(0.5)).fit(
        df[FEATURES], df["y"], task=df["store"])
    assert not dsk.coef_.any()
    np.testing.assert_allclose(dsk.intercept_, mem.intercept_, rtol=0, atol=1e-12)


def _agree(mem, dsk, same_iteration: bool) -> None:
    """The Dask fit's objective the in-memory one's to 1e-8; its coefficients to 1e-6 of the
    largest where it is the in-memory iteration (then the same iterations), else to 1e-4
    (the pinball minimizer need not be unique: an objective 1e-8 from the optimum allows it)."""
    assert abs(dsk.objective_ - mem.objective_) <= 1e-8 * abs(mem.objective_)
    scale = np.abs(mem.coef_).max()
    np.testing.assert_allclose(dsk.coef_, mem.coef_, rtol=0,
                               atol=(1e-6 if same_iteration else 1e-4) * scale)
    if same_iteration:
        assert dsk.n_iter_ == mem.n_iter_


@pytest.mark.parametrize(("penalty", "same_iteration"), _cases([
    ("l1inf", False),  # (in memory a linear program, exact)
    ("temporal_group_lasso", True),
    ("fused_group_lasso", True),
    ("dirty", True),  # (a lifted variable, V = (P, Q))
], (3,)))
def test_a_prox_that_does_not_split_over_tasks_runs_on_the_joined_columns(
        dask_process_client, penalty, same_iteration):
    """L1,inf, the temporal and fused penalties, the dirty model: the prox's point's columns
    are joined on the client each iteration and the prox applied whole; certified by the
    duality gap from the blocks' columns. Equal to the in-memory fit."""
    mem, dsk, ref = _fits(penalty, 0.3)
    assert 0.0 <= dsk.dual_gap_ <= TOL * ref.P0
    _agree(mem, dsk, same_iteration)


@pytest.mark.parametrize(("penalty", "alpha", "same_iteration"), _cases([
    (rm.GraphLaplacian(rm.chain_graph(T)), 0.05, True),  # (no dual; the prox joined)
    ("mean", 0.05, False),  # (no dual without a ridge; the prox from summaries)
    (rm.Clustered(k=2), 0.05, True),
    ("l1", 0.0, False),  # (alpha = 0: each task's quantile regression alone)
], (1,)))
def test_without_a_dual_the_fixed_point_residual_certifies_on_dask(
        dask_process_client, penalty, alpha, same_iteration):
    """A penalty without a tractable dual, or alpha = 0: certified by the fixed-point
    residual of the iteration from per-block pieces, as in memory, at the same scale."""
    mem, dsk, _ = _fits(penalty, 0.3, alpha=alpha)
    assert not hasattr(dsk, "dual_gap_")
    assert 0.0 <= dsk.kkt_residual_ <= TOL
    _agree(mem, dsk, same_iteration)
    if same_iteration:
        assert abs(dsk.kkt_residual_ - mem.kkt_residual_) <= 1e-6 * TOL


@pytest.mark.parametrize(("penalty", "same_iteration"), _cases([
    ("l1", True),  # (each group's own prox)
    ("l21", True),  # (the prox from the groups' summaries)
    ("l1inf", True),  # (the prox on the joined columns)
    ("mean", True),  # (no dual: the fixed-point residual)
    ("trace", True),
], (0,)))
def test_a_loss_list_of_quantile_squared_and_huber_tasks_on_dask(dask_process_client,
                                                                  penalty, same_iteration):
    """Pinball tasks beside squared and Huber ones: each row's dual step its own loss's, the
    dual at ``s theta`` ``s YT - s^2 TT / 2`` summed over the blocks (``TT`` the squared and
    Huber rows' ``dual_squares``). The in-memory iteration, to the last digits (measured:
    objectives equal to 1e-13, coefficients to 1e-11, the same iterations)."""
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=3)
    losses = [rm.Quantile(0.3), rm.Quantile(0.3), "squared", "huber", rm.Quantile(0.7)]

    def est():
        return rm.MultiTaskRegressor(penalty, alpha=0.05, loss=losses, tol=TOL,
                                     max_iter=4000)

    mem = est().fit(df[FEATURES], df["y"], task=df["store"])
    dsk = est().fit(ddf[FEATURES], ddf["y"], task=ddf["store"])
    if hasattr(mem, "dual_gap_"):
        ref = reference(as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"]),
                        rm.datafits.Mixed(losses), True)
        assert 0.0 <= dsk.dual_gap_ <= TOL * ref.P0
        assert abs(dsk.dual_gap_ - mem.dual_gap_) <= 1e-10 * abs(mem.objective_)
    else:
        assert 0.0 <= dsk.kkt_residual_ <= TOL
    _agree(mem, dsk, same_iteration)


@pytest.mark.parametrize(("penalty", "loss", "why"), [
    ("mcp", "quantile", r"quantile loss, alone or in a list with squared and Huber tasks, "
                        r"with a convex penalty"),
    ("l21", ["squared", "quantile", "poisson", "squared", "quantile"],
     r"Beside logistic, Poisson or Gamma tasks a quantile task has no such iteration"),
])
def test_what_the_blocks_cannot_fit_is_refused_with_its_reason(dask_process_client,
                                                                 penalty, loss, why):
    df = _frame()
    df["y"] = df["y"].abs()  # (counts for the Poisson tasks)
    ddf = dd.from_pandas(df, npartitions=3)
    with pytest.raises(ValueError, match=why):
        rm.MultiTaskRegressor(penalty, alpha=0.05, loss=loss).fit(
            ddf[FEATURES], ddf["y"], task=ddf["store"])
