"""Certificates from summaries on Dask (``dask.distributed.LocalCluster``, worker
processes): FISTA's iterates stay on the workers, each certificate brings home O(p) or
O(p^2) numbers per task block (the penalty's :meth:`~regmtl.penalties.Penalty.gap_summary`,
:mod:`regmtl.solvers.blocks.group_certificate`), never the p x T columns of W and its gradient; W
comes home once, when the fit returns. Measured as the pickled bytes of the groups' answers
(the calls pass through), at 20 and at 200 tasks: a bound in p and the blocks alone (one
worker holding every block forms the whole certificate itself: a few numbers)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")

import regmtl as rm  # noqa: E402
from regmtl.dask import KeptOnWorkers  # noqa: E402
from regmtl.datafits import make_loss  # noqa: E402
from regmtl.solvers import reference  # noqa: E402

P = 4
FEATURES = [f"x{j}" for j in range(P)]
TOL = 1e-8
BLOCKS = 6


def _frame(T, seed=0):
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(T), rng.integers(30, 40, T))
    X = rng.standard_normal((len(task), P))
    W = np.outer([1.0, 0.5, 0.0, 0.3], 1.0 + 0.3 * rng.standard_normal(T))
    y = np.einsum("ij,ji->i", X, W[:, task]) + rng.standard_normal(len(task))
    df = pd.DataFrame(X, columns=FEATURES).assign(store=task, y=y)
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def _spied(monkeypatch):
    """Pickled bytes of the groups' answers, by method (the real calls, passed through)."""
    call, seen = KeptOnWorkers.call, {}

    def spy(self, name, *args):
        out = call(self, name, *args)
        seen.setdefault(name, []).append(len(pickle.dumps(out)))
        return out

    monkeypatch.setattr(KeptOnWorkers, "call", spy)
    return seen


@pytest.mark.parametrize("penalty", [rm.L21(), rm.Trace()], ids=["l21", "trace"])
def test_a_certificate_on_dask_brings_home_numbers_of_the_features(
        dask_process_client, monkeypatch, penalty):
    per_check, columns = [], []
    for T in (20, 200):
        df = _frame(T)
        ddf = dd.from_pandas(df, npartitions=BLOCKS)
        seen = _spied(monkeypatch)
        kw = dict(alpha=0.3, tol=TOL, max_iter=5000)
        dsk = rm.MultiTaskRegressor(penalty, solver="fista", **kw).fit(
            ddf[FEATURES], ddf["y"], task=ddf["store"])
        monkeypatch.undo()
        X, y, task = df[FEATURES].to_numpy(), df["y"].to_numpy(), df["store"].to_numpy()
        mem = rm.MultiTaskRegressor(penalty, solver="fista", **kw).fit(X, y, task=task)
        # certified below tol on the in-memory scale (the objective at W = 0)
        P0 = reference(rm.as_task_data(X, y, task=task), make_loss("squared"), True).P0
        assert 0.0 <= dsk.dual_gap_ <= TOL * P0
        scale = max(np.abs(mem.coef_).max(), 1.0)
        assert np.abs(dsk.coef_ - mem.coef_).max() <= 1e-8 * scale
        assert len(seen["certify"]) >= 2
        per_check.append(max(seen["certify"]))
        columns.append(seen["columns"])
    # per certificate at most a few p x p arrays per block (6 blocks), whatever the tasks:
    # at 200 tasks a tenth of W and G (2 p T floats)
    assert max(per_check) <= BLOCKS * (2 * P * P + 4 * P + 8) * 8 + 1024
    assert per_check[1] * 10 < 2 * P * 200 * 8
    # W itself once, at the end of the fit (one FISTA solve per fit here)
    assert [len(c) for c in columns] == [1, 1]
    assert columns[1][0] > P * 200 * 8
