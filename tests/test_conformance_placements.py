"""The support matrix's cells on the other placements: task blocks on a Dask cluster
(``dask.distributed.LocalCluster``, worker processes) and a Parquet task source fitted out of
core. The long cells (and the weighted ones on Dask) run there: each is refused by name, with
a message naming the term or the argument at fault, or fitted to the in-memory fit's objective
(both certified at ``tol`` 1e-6, where a Dask fit's rounds are affordable: within 2e-6 of
the reference scale), with ``n_iter_ <= max_iter``. A known cell that may stop short
(``tests/_known_cells.py``) is held to honesty either way, here as in memory: a fit that stops
short states the certificate it reports, and the two objectives agree within the larger of
their duality gaps.

``make test`` runs a slice (each penalty with the squared loss, and each loss with one
penalty: L2,1 with weights on Dask, a turning one out of core); ``make test-matrix`` every
cell.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from _known_cells import SHORT, SHORT_ON_DASK, check_shortfall
from _matrix import names_its_cause, reference_scale, tasks_of
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from regmtl.conformance import Cell, cell_problem, refusal
from regmtl.datafits import LOSSES
from regmtl.penalties import PENALTY_CLASSES

FULL = os.environ.get("REGMTL_MATRIX") == "full"
TOL = 1e-6
LOSS_NAMES = [*LOSSES, "mixed"]
PENALTY_NAMES = [cls.name for cls in PENALTY_CLASSES.values()]

def _cells(shapes: tuple[str, ...], slice_: list[Cell]) -> list[Cell]:
    every = [Cell(p, loss, s) for p in PENALTY_NAMES for loss in LOSS_NAMES for s in shapes]
    return every if FULL else slice_


def _long_frame(prob) -> tuple[pd.DataFrame, list[str]]:
    """The cell's lists as one long table: features, target, task, weight."""
    Xs, ys = prob.fit_args
    p = Xs[0].shape[1]
    names = [f"x{j}" for j in range(p)]
    df = pd.DataFrame(np.vstack(Xs), columns=names)
    df["y"] = np.concatenate(ys)
    df["task"] = np.repeat(np.arange(len(Xs)), [len(y) for y in ys])
    if "sample_weight" in prob.fit_kwargs:
        df["w"] = np.concatenate(prob.fit_kwargs["sample_weight"])
    return df, names


def _fitted_or_refused(fit, cell: Cell, prob):
    """The model ``fit()`` returns with its shortfall warnings' texts, and the in-memory fit
    beside it with its own (None: a refusal, which names its cause). Only a known cell may
    stop short."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = fit()
    except (ValueError, TypeError) as exc:
        assert names_its_cause(str(exc), cell.penalty, cell.loss), str(exc)
        return None
    short = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not short or cell.id in SHORT or cell.id in SHORT_ON_DASK, short
    mem = _in_memory(prob)
    assert mem is not None, f"fitted here, refused in memory: {refusal(cell)}"
    assert not mem[1] or cell.id in SHORT, mem[1]
    return (model, short), mem


def _in_memory(prob):
    """The in-memory fit of the cell and its shortfall warnings' texts (None: refused)."""
    msg = refusal_of(prob)
    if msg:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = clone(prob.estimator).set_params(tol=TOL).fit(*prob.fit_args, **prob.fit_kwargs)
    return model, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def refusal_of(prob) -> str:
    return prob.estimator._refusal(*prob.fit_args, **prob.fit_kwargs)


def _agree(fitted, mem, prob):
    """Both fits finite within max_iter, at objectives within 2 TOL of the reference scale
    where both certify; where one stops short (a known cell), each states its certificate and
    the objectives agree within the larger duality gap (a KKT residual bounds no distance)."""
    (model, short), (ref, ref_short) = fitted, mem
    assert model.n_iter_ <= model.max_iter
    assert np.all(np.isfinite(model.coef_)) and np.all(np.isfinite(model.intercept_))
    scale = reference_scale(tasks_of(prob))
    bound = 2 * TOL * scale
    if short or ref_short:
        bounds = [check_shortfall(m, s, scale) if s else getattr(m, "dual_gap_", np.inf)
                  for m, s in ((model, short), (ref, ref_short))]
        bound = max(bound, *bounds)
    assert abs(model.objective_ - ref.objective_) <= bound, (
        model.objective_, ref.objective_, scale, bound)


# the slice: every penalty with the squared loss, every loss with L2,1 and sample weights (a
# Dask fit of a coupled penalty with another loss takes minutes of round trips: in the full
# matrix only)
DASK_CELLS = _cells(("long", "weights"), [
    *[Cell(p, "squared", "long") for p in PENALTY_NAMES],
    *[Cell("l21", loss, "weights") for loss in LOSS_NAMES],
    # (a log-link loss under a penalty certified by the proximal-gradient residual: its
    # curvature bound read the Dask targets with NumPy's max(initial=...), a TypeError)
    Cell("clustered", "gamma", "long")])


@pytest.mark.parametrize("cell", DASK_CELLS, ids=[c.id for c in DASK_CELLS])
def test_cell_on_dask(dask_process_client, cell):
    dd = pytest.importorskip("dask.dataframe")
    prob = cell_problem(cell)
    df, names = _long_frame(prob)
    ddf = dd.from_pandas(df, npartitions=2)
    kw = {"task": ddf["task"]}
    if "w" in df:
        kw["sample_weight"] = ddf["w"]
    est = clone(prob.estimator).set_params(tol=TOL)
    fitted = _fitted_or_refused(lambda: est.fit(ddf[names], ddf["y"], **kw), cell, prob)
    if fitted is not None:
        _agree(*fitted, prob)


OOC_CELLS = _cells(("long",), [
    *[Cell(p, "squared", "long") for p in PENALTY_NAMES],
    *[Cell(PENALTY_NAMES[(3 * i) % len(PENALTY_NAMES)], loss, "long")
      for i, loss in enumerate(LOSS_NAMES)]])


@pytest.mark.parametrize("cell", OOC_CELLS, ids=[c.id for c in OOC_CELLS])
def test_cell_out_of_core(tmp_path, cell):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from regmtl.parquet import ParquetTasks

    prob = cell_problem(cell)
    df, names = _long_frame(prob)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "cell.parquet")
    source = ParquetTasks(tmp_path / "cell.parquet")
    est = clone(prob.estimator).set_params(tol=TOL, solver_options={"gram_dtype": "float64"})
    fitted = _fitted_or_refused(lambda: est.fit(source), cell, prob)
    if fitted is not None:
        _agree(*fitted, prob)
