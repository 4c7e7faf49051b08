"""Blocking round trips of the solvers' scalars on task blocks (``dask.distributed.LocalCluster``,
worker processes): a certificate or a line-search test brings its loss's and penalty's sums
home in one result, each a round trip to the scheduler; the numbers equal the in-memory ones.

A round trip is counted as one call of ``Client.gather`` (every blocking result of the
client: ``compute``, ``float`` or ``np.asarray`` of a Dask array), the call passed through.
"""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.dask import as_dask_task_data  # noqa: E402
from regmtl.datafits import make_loss  # noqa: E402
from regmtl.solvers.certificates.certify import duality_gap_terms  # noqa: E402
from regmtl.solvers.parts.newton_model import armijo  # noqa: E402
from regmtl.solvers.parts.quadratic import task_quadratic  # noqa: E402
from regmtl.solvers.parts.quadratic_fista import gram_certificate  # noqa: E402

P = 4
FEATURES = [f"x{j}" for j in range(P)]


@pytest.fixture
def trips(dask_process_client, monkeypatch):
    """The number of blocking round trips so far (``Client.gather`` calls) on the session's
    LocalCluster of worker processes (conftest), as a list of one counter the test may
    reset."""
    count = [0]
    gather = distributed.Client.gather

    def counted(self, *args, **kwargs):
        count[0] += 1
        return gather(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "gather", counted)
    return count


def _problem(loss="poisson", T=3, seed=0):
    """Long-form rows of T tasks on 3 partitions, in memory and on Dask."""
    rng = np.random.default_rng(seed)
    ids = np.arange(T) * 7 + 3
    task = np.repeat(ids, rng.integers(25, 40, T))
    X = rng.standard_normal((len(task), P))
    W = 0.3 * rng.standard_normal((P, T))
    f = np.einsum("ij,ji->i", X, W[:, np.searchsorted(ids, task)]) + 0.5
    y = rng.poisson(np.exp(f)).astype(float) if loss == "poisson" else \
        f + rng.standard_normal(len(task))
    df = pd.DataFrame(X, columns=FEATURES)
    df["store"], df["y"] = task, y
    df = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    ddf = dd.from_pandas(df, npartitions=3)
    mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                          task=df["store"].to_numpy())
    return mem, as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"])


def _coef(T=3):
    return 0.2 * np.arange(1, P * T + 1, dtype=float).reshape(P, T) / (P * T)


def test_a_gram_certificate_on_task_blocks_is_one_round_trip(trips):
    """The Gram form's gap sums, the L2,1 value and its dual scaling come home together (three
    round trips before: the value's and the dual norm's own); the certificate equals the
    in-memory one to 1e-12 relative."""
    mem, dsk = _problem("squared")
    pen, alpha, W = rm.L21(), 0.05, _coef()
    q_mem, q_dsk = task_quadratic(mem, True), task_quadratic(dsk, True)
    V = q_dsk.settle(W)[0]
    trips[0] = 0
    on_blocks = gram_certificate(q_dsk, pen, alpha, V, None, 1.0)
    assert trips[0] == 1
    in_memory = gram_certificate(q_mem, pen, alpha, W, None, 1.0)
    assert abs(on_blocks - in_memory) <= 1e-12 * abs(in_memory)


def test_a_duality_gap_on_task_blocks_is_one_round_trip_after_the_dual_point(trips):
    """The Poisson loss's primal and dual sums, the L2,1 value and its scaling come home in
    one round trip (four before); gap, primal and dual equal the in-memory ones to 1e-12
    relative."""
    mem, dsk = _problem("poisson")
    pen, alpha, W = rm.L21(), 0.05, _coef()
    fit = {}
    for name, data in (("mem", mem), ("dsk", dsk)):
        datafit = make_loss("poisson").bind(data)
        f = data.linear(W, np.full(data.n_tasks, 0.1))
        V = W if data.rows_local else data.settle(f, W)[1]
        if not data.rows_local:
            f = data.settle(f)[0]
        trips[0] = 0
        fit[name] = duality_gap_terms(data, datafit, pen, alpha, V, f, True)[:3], trips[0]
    assert fit["dsk"][1] == 1
    for a, b in zip(fit["dsk"][0], fit["mem"][0], strict=True):
        assert abs(a - b) <= 1e-12 * abs(fit["mem"][0][1])


def test_an_armijo_test_on_task_blocks_is_one_round_trip(trips):
    """The predicted decrease is one round trip, each trial step one more (the loss's and
    the penalty's sums together: three and two before); the step equals the in-memory one."""
    mem, dsk = _problem("poisson")
    pen, alpha, W = rm.L21(), 0.05, _coef()
    theta = make_loss("poisson").bind(mem).theta(mem.y, mem.linear(W, np.full(3, 0.1)))
    G = mem.adjoint(mem.c * theta)  # minus the gradient
    dW = 2.0 * G / np.linalg.norm(G)  # far too long a step along it: a few halvings
    steps = {}
    for name, data in (("mem", mem), ("dsk", dsk)):
        datafit = make_loss("poisson").bind(data)
        b = np.full(data.n_tasks, 0.1)
        f, df = data.linear(W, b), data.linear(dW, np.zeros_like(b))
        theta = datafit.theta(data.y, f)
        V, D = W, dW
        if not data.rows_local:
            f, df, theta, V, D = data.settle(f, df, theta, W, dW)
        value = float(datafit.value(data.y, f, data.c)) + pen.value(V, alpha)
        trips[0] = 0
        steps[name] = armijo(datafit, pen, alpha, data.y, data.c, theta, V, f, D, df, value,
                             data.numbers), trips[0]
    step, count = steps["dsk"]
    assert step == steps["mem"][0] and step is not None and step < 1.0
    assert count == 1 + (1 + round(np.log2(1.0 / step)))


@pytest.fixture
def graphs(trips, monkeypatch):
    """The number of graphs the client has submitted so far (``persist`` and ``compute``
    each submit one), as a list of one counter the test may reset."""
    count = [0]
    submit = distributed.Client._graph_to_futures

    def counted(self, *args, **kwargs):
        count[0] += 1
        return submit(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "_graph_to_futures", counted)
    return count


def _wide_problem(T=12, seed=4, block_rows=None):
    """Long-form rows of T tasks (40 to 60 rows, p = 4) on 3 partitions: (in memory, on Dask,
    the frame)."""
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(T) * 3 + 1, rng.integers(40, 60, T))
    X = rng.standard_normal((len(task), P))
    W = np.outer(rng.standard_normal(P), 1.0 + 0.3 * rng.standard_normal(T))
    W[-1] = 0.0
    y = np.einsum("ij,ji->i", X, W[:, np.searchsorted(np.arange(T) * 3 + 1, task)])
    y = y + rng.standard_normal(len(task))
    df = pd.DataFrame(X, columns=FEATURES).assign(store=task, y=y)
    df = df.sample(frac=1.0, random_state=2).reset_index(drop=True)
    ddf = dd.from_pandas(df, npartitions=3)
    mem = rm.as_task_data(df[FEATURES].to_numpy(), df["y"].to_numpy(),
                          task=df["store"].to_numpy())
    blocks = {} if block_rows is None else {"block_rows": block_rows}
    return mem, as_dask_task_data(ddf[FEATURES], ddf["y"], ddf["store"], **blocks), df


@pytest.fixture
def lazy_rounds(monkeypatch):
    """No objects kept on the workers (:meth:`DaskTaskData.keep` answers None, as it does
    without a distributed client): FISTA on task blocks runs its rounds of lazy iterations,
    the path of a penalty whose prox does not split over tasks (Dirty, Clustered, ...)."""
    from regmtl.dask import DaskTaskData

    monkeypatch.setattr(DaskTaskData, "keep", lambda self, *a, **k: None)


def test_fista_on_task_blocks_brings_numbers_home_once_per_certificate(graphs, trips,
                                                                       lazy_rounds):
    """FISTA in Gram form on task blocks, in rounds of lazy iterations, submits each iteration
    without waiting on it (the momentum's restart test a lazy number the next step reads, the
    step the curvature bound): ten more iterations are ten graphs and one round trip, the
    certificate's (one graph, one round trip, each iteration, before). The curvature bound is
    one round trip, once."""
    from regmtl.solvers.parts.quadratic_fista import fista_certified

    _, dsk, _ = _wide_problem()
    pen, alpha = rm.L21(), 0.5
    q = task_quadratic(dsk, True)
    trips[0] = 0
    q.lipschitz()
    assert trips[0] == 1
    V0 = np.zeros((P, dsk.n_tasks))
    counts = {}
    for k in (11, 31):  # certificates at 1, 10, 11 and at 1, 10, 20, 30, 31
        trips[0] = graphs[0] = 0
        _, it, _, _ = fista_certified(q, pen, alpha, V0, tol=0.0, max_iter=k)
        assert it == k
        counts[k] = trips[0], graphs[0]
    assert counts[31][0] - counts[11][0] == 2
    assert counts[31][1] - counts[11][1] == 20 + 2


def test_a_squared_fit_on_task_blocks_equals_the_in_memory_fit(trips):
    """The same optimum on task blocks (FISTA's rounds, then ADMM where it crawls) as in memory
    (coordinate descent): coefficients and intercepts within 1e-8, gaps below tol; fewer
    round trips than certificates plus iterations (one per iteration before)."""
    from regmtl.datafits import Quadratic
    from regmtl.solvers import solve

    mem, dsk, _ = _wide_problem()
    pen, alpha = rm.L21(), 0.5
    ref = solve(mem, Quadratic(), pen, alpha, tol=1e-12, max_iter=5000)
    trips[0] = 0
    res = solve(dsk, Quadratic(), pen, alpha, tol=1e-12, max_iter=5000)
    assert res.converged and ref.converged
    W, b = np.asarray(res.W), np.asarray(res.b)
    assert np.abs(W - ref.W).max() <= 1e-8 * np.abs(ref.W).max()
    assert np.abs(b - ref.b).max() <= 1e-8 * max(np.abs(ref.b).max(), 1.0)
    assert trips[0] < res.n_iter


def test_a_round_with_too_short_a_curvature_bound_runs_again(trips, lazy_rounds):
    """Should the curvature bound on blocks fall short (a Ritz value below the top
    eigenvalue), the round's step-size tests catch it: the round runs again with the bound
    grown, and the fit still reaches its certificate."""
    from regmtl.solvers.parts.quadratic_fista import fista_certified, gram_certificate

    mem, dsk, _ = _wide_problem()
    pen, alpha = rm.L21(), 0.5
    q = task_quadratic(dsk, True)
    true = q.lipschitz()
    q._L = 0.2 * true  # (as a low Ritz value would give)
    rounds = [0]
    numbers = q.numbers

    def counted(*values):
        rounds[0] += 1
        return numbers(*values)

    q.numbers = counted
    V, it, stalled, value = fista_certified(q, pen, alpha, np.zeros((P, dsk.n_tasks)),
                                            tol=1e-10, max_iter=3000)
    assert value <= 1e-10 and not stalled
    checks = len({1, it, *range(10, it + 1, 10)})
    assert rounds[0] > checks  # (some rounds ran again)
    q_mem = task_quadratic(mem, True)
    assert gram_certificate(q_mem, pen, alpha, np.asarray(V), None, 1.0) <= 1e-9


def _calls(monkeypatch):
    """The calls of the workers' groups by method name (a counter around the real calls)."""
    from regmtl.dask import KeptOnWorkers

    calls = collections.Counter()
    call = KeptOnWorkers.call

    def counted(self, name, *args):
        calls[name] += 1
        return call(self, name, *args)

    monkeypatch.setattr(KeptOnWorkers, "call", counted)
    return calls


def test_fista_on_workers_iterates_without_graphs_or_gathers(graphs, trips, monkeypatch):
    """With a distributed client FISTA's iterates stay on the workers, one group of task
    blocks per worker (Dask actors beside the blocks' Grams): twenty more iterations submit
    no graph and gather nothing; each is two calls of the groups (the prox's summary, then
    the step's sums), and each certificate one more, whose answer is the penalty's summary
    (not W: that comes home once, when the fit returns). Two groups here (two workers)."""
    from regmtl.solvers.parts.quadratic_fista import fista_certified

    _, dsk, _ = _wide_problem()
    pen, alpha = rm.L21(), 0.5
    q = task_quadratic(dsk, True)
    q.lipschitz()
    V0 = np.zeros((P, dsk.n_tasks))
    counts = {}
    for k in (11, 31):  # certificates at 1, 10, 11 and at 1, 10, 20, 30, 31
        calls = _calls(monkeypatch)
        trips[0] = graphs[0] = 0
        _, it, _, _ = fista_certified(q, pen, alpha, V0, tol=0.0, max_iter=k)
        assert it == k
        counts[k] = trips[0], graphs[0], dict(calls)
    assert counts[31][:2] == counts[11][:2]  # (placing V0 and bringing V back: the same)
    assert counts[31][2]["gradient"] - counts[11][2]["gradient"] == 20
    assert counts[31][2]["descend"] - counts[11][2]["descend"] == 20
    assert counts[31][2]["certify"] - counts[11][2]["certify"] == 2
    assert counts[31][2]["columns"] == counts[11][2]["columns"] == 1


@pytest.mark.parametrize("penalty", ["l21", "l1", "elasticnet", "trace", "mean", "mean_ridge",
                                     "positive_l21"])
def test_fista_on_workers_equals_the_in_memory_iteration(dask_process_client, penalty):
    """The groups on the workers split each prox over their tasks (the penalty's summary
    summed over the groups): FISTA reaches the in-memory optimum of every penalty whose
    prox splits, within 1e-8 of the coefficients, certified (a gap, or the KKT residual
    of the mean without ridge), in as many iterations give or take a tenth."""
    from regmtl.solvers.parts.quadratic_fista import fista_certified, gram_certificate

    pens = {"l21": (rm.L21(), 0.5), "l1": (rm.L1(), 0.3), "elasticnet": (rm.ElasticNet(), 0.4),
            "trace": (rm.Trace(), 2.0), "mean": (rm.MeanRegularized(), 1.0),
            "mean_ridge": (rm.MeanRegularized(ridge=1.0), 1.0),
            "positive_l21": (rm.L21(positive=True), 0.3)}
    pen, alpha = pens[penalty]
    mem, dsk, _ = _wide_problem(T=40, block_rows=200)  # 6 blocks: 3 a worker, interleaved
    holders = dsk._block_workers()
    assert len(holders) >= 6 and len(set(holders)) == 2
    tol = 1e-10
    q_mem, q_dsk = task_quadratic(mem, True), task_quadratic(dsk, True)
    V_mem, it_mem, _, val_mem = fista_certified(q_mem, pen, alpha, np.zeros((P, 40)), tol=tol,
                                                max_iter=5000, G0_norm=1.0)
    V, it, stalled, value = fista_certified(q_dsk, pen, alpha, np.zeros((P, 40)), tol=tol,
                                            max_iter=5000, G0_norm=1.0)
    V = np.asarray(V)
    assert value <= tol and val_mem <= tol and not stalled
    assert np.abs(V - V_mem).max() <= 1e-8 * max(np.abs(V_mem).max(), 1.0)
    L = None if pen.has_dual else q_mem.lipschitz()
    assert gram_certificate(q_mem, pen, alpha, V, L, 1.0) <= 10 * tol
    assert abs(it - it_mem) <= max(0.1 * it_mem, 10)


def test_a_step_too_long_on_workers_is_retried(dask_process_client, monkeypatch):
    """Should the curvature bound fall short, the step's test on the workers' groups fails and
    the step is retried at a larger bound (one more call of each stage), and the fit still
    reaches its certificate, equal to the in-memory one."""
    from regmtl.solvers.parts.quadratic_fista import fista_certified, gram_certificate

    mem, dsk, _ = _wide_problem()
    pen, alpha = rm.L21(), 0.5
    q = task_quadratic(dsk, True)
    q._L = 0.2 * q.lipschitz()  # (as a low Ritz value would give)
    calls = _calls(monkeypatch)
    V, it, stalled, value = fista_certified(q, pen, alpha, np.zeros((P, dsk.n_tasks)),
                                            tol=1e-10, max_iter=3000)
    assert value <= 1e-10 and not stalled
    assert calls["gradient"] == calls["descend"] > it  # (some steps ran again)
    q_mem = task_quadratic(mem, True)
    assert gram_certificate(q_mem, pen, alpha, np.asarray(V), None, 1.0) <= 1e-9
