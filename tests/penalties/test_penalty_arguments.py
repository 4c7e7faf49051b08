"""Penalty arguments and alphas that were taken silently or crashed (issue 47): MultiSource's
``blocks`` of the wrong form, MultiSource on Dask input, an alpha per task for a penalty
that couples the tasks, and a nonconvex fit returned at W = 0 from ``alpha_max`` on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.solvers import reference, solve
from regmtl.solvers.policy import SOLVER_TABLE, choose_row
from regmtl.solvers.solver import Call, Start

RNG = np.random.default_rng(0)
X6 = RNG.standard_normal((30, 6))
Y6 = X6[:, :2] @ RNG.standard_normal((2, 3)) + 0.1 * RNG.standard_normal((30, 3))


# ----------------------------------------------------------------------- MultiSource
@pytest.mark.parametrize("blocks,extra", [
    (5, r"blocks=\(5,\)"), (2.7, ""), (-1, ""), (0, ""), (None, ""), ("33", ""), ([], ""),
    ((3, -3, 6), ""), ((2.0, 4.0), ""), ([[0, 1, 2], [3, 4, 5]], ""), (True, ""),
    ({"mri": 3, "pet": 3}, ""),
])
def test_multisource_blocks_of_the_wrong_form_are_refused_by_name(blocks, extra):
    """A number (the report: ``TypeError: 'int' object is not iterable``), a float, a
    negative or empty size, column lists: a ValueError naming ``blocks`` and its form."""
    pen = rm.MultiSource(blocks=blocks)  # (the constructor stores, as scikit-learn's do)
    with pytest.raises(ValueError, match=r"MultiSource blocks must be a nonempty tuple of "
                                         r"positive ints.*column order" + (".*" + extra)):
        rm.MultiTaskRegressor(pen).fit(X6, Y6)


@pytest.mark.parametrize("blocks", [(2, 2), (4, 4)])
def test_multisource_blocks_that_do_not_cover_the_columns_are_refused(blocks):
    with pytest.raises(ValueError, match=r"MultiSource blocks .* cover"):
        rm.MultiTaskRegressor(rm.MultiSource(blocks=blocks)).fit(X6, Y6)


def test_multisource_blocks_as_a_list_or_array_are_the_tuple():
    ref = rm.MultiTaskRegressor(rm.MultiSource(blocks=(3, 3))).fit(X6, Y6).coef_
    for blocks in ([3, 3], np.array([3, 3]), (b for b in (3, 3))):
        pen = rm.MultiSource(blocks=blocks)
        assert pen.blocks == (3, 3)
        np.testing.assert_array_equal(rm.MultiTaskRegressor(pen).fit(X6, Y6).coef_, ref)


def _sources_frame():
    rng = np.random.default_rng(0)
    task = np.repeat(np.arange(4), [30, 40, 35, 45])
    X = rng.standard_normal((len(task), 5))
    y = X[:, 0] - X[:, 3] + 0.1 * rng.standard_normal(len(task))
    X[task == 1, 3:] = np.nan  # task 1 lacks the second source, task 2 the first
    X[task == 2, :3] = np.nan
    y[task == 1], y[task == 2] = X[task == 1, 0], -X[task == 2, 3]
    cols = [f"x{j}" for j in range(5)]
    df = pd.DataFrame(X, columns=cols)
    df["t"], df["y"] = task, y
    return df.sample(frac=1, random_state=0).reset_index(drop=True), cols


def test_multisource_on_dask_is_the_fit_in_memory():
    """The report: on Dask the only error was "Input X contains NaN" (the missing sources
    were not filled there). Each task block holds whole tasks, so they are filled there as in
    memory: the same coefficients, alpha_max and predictions."""
    dd = pytest.importorskip("dask.dataframe")
    df, cols = _sources_frame()
    ddf = dd.from_pandas(df, npartitions=3)
    pen = rm.MultiSource(blocks=(3, 2))
    mem = rm.MultiTaskRegressor(pen, alpha=0.02, tol=1e-10).fit(df[cols], df["y"], task=df["t"])
    dk = rm.MultiTaskRegressor(pen, alpha=0.02, tol=1e-10).fit(ddf[cols], ddf["y"],
                                                                task=ddf["t"])
    np.testing.assert_allclose(dk.coef_, mem.coef_, rtol=0, atol=1e-6)
    assert np.all(dk.coef_[1, 3:] == 0) and np.all(dk.coef_[2, :3] == 0)
    np.testing.assert_allclose(dk.predict(ddf[cols], task=ddf["t"]).compute(),
                               mem.predict(df[cols], task=df["t"]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        rm.alpha_max(ddf[cols], ddf["y"], task=ddf["t"], penalty=pen),
        rm.alpha_max(df[cols], df["y"], task=df["t"], penalty=pen), rtol=1e-12)
    # a NaN inside an observed source is refused on Dask as in memory
    bad = df[cols].copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="inside an observed source"):
        dk.predict(dd.from_pandas(bad, npartitions=2),
                   task=dd.from_pandas(df["t"], npartitions=2)).compute()


# ----------------------------------------------------------------------- one alpha per task
@pytest.mark.parametrize("pen", ["l21", "trace", rm.MCP(), rm.FusedGroupLasso(), "dirty"])
def test_equal_alphas_per_task_are_refused_for_a_penalty_that_couples_the_tasks(pen):
    """Unequal values were refused, equal ones taken silently as one alpha: the penalty takes
    no alpha per task either way, so both are refused, naming alpha and the fix."""
    with pytest.raises(ValueError, match=r"alpha: one value per task needs a penalty separable "
                                         r"over tasks.*one alpha for all.*alpha=0\.1"):
        rm.MultiTaskRegressor(pen, alpha=np.full(3, 0.1)).fit(X6, Y6)


def test_equal_alphas_per_task_of_a_separable_penalty_are_the_one_alpha():
    a = rm.MultiTaskRegressor("l21", alpha=0.1).fit(X6, Y6)
    b = rm.MultiTaskRegressor(rm.L21(l1_ratio=0.0), alpha=[0.1] * 3).fit(X6, Y6)
    c = rm.MultiTaskRegressor(rm.L21(l1_ratio=0.0), alpha=0.1).fit(X6, Y6)
    np.testing.assert_array_equal(b.coef_, c.coef_)
    assert a.coef_.shape == b.coef_.shape


# ----------------------------------------------------------------------- W = 0 of a nonconvex fit
def _signal(scale):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 5))
    W = np.zeros((5, 3))
    W[0], W[1] = [3, -2, 1], [-2.5, 2.5, -1]
    return X, scale * (X @ W + 0.1 * rng.standard_normal((50, 3)))


def _better_nonzero_point(pen, X, Y, alpha):
    """The objective at W = 0 and that of a stationary point reached from a ridge start by
    the penalty's own solver at ``alpha`` (proximal gradient for the fused penalty)."""
    data = rm.as_task_data(X, Y)
    datafit = rm.Quadratic().bind(data)
    ref = reference(data, datafit, True)
    start = solve(data, datafit, rm.L2(), 1e-3 * float(np.abs(ref.G0).max()), tol=1e-10)
    solver = "fista" if pen.majorized else "auto"
    row = choose_row(data, datafit, pen, alpha, solver=solver, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        call = Call(data, datafit, pen, alpha, ref, fit_intercept=True, tol=1e-8,
                    max_iter=5000, inner=solve)
        out = SOLVER_TABLE[row].run(call, Start(start.W.copy(), start.b.copy()))
    return ref.P0, out.certificate.primal, out.W


@pytest.mark.parametrize("pen,scale,pattern", [
    (rm.NonconvexFusedGroupLasso(fused_weight=0.5), 100.0, "of its convex relaxation"),
    (rm.NonconvexFusedGroupLasso(fused_weight=0.5, fused_in_root=True), 100.0,
     "of its convex relaxation"),
    (rm.CappedL1(cap=0.1), 1.0, r"slope at zero"),
])
def test_a_nonconvex_fit_at_zero_from_alpha_max_on_says_it_is_only_stationary(pen, scale,
                                                                              pattern):
    """The report: at alpha above the convex relaxation's alpha_max the fused penalty returns
    W = 0 after one iteration, without a word, where a nonzero stationary point of lower
    objective exists (its square root is not equivariant to the scale of y); a capped penalty
    pays at most alpha cap far from zero, the same case."""
    X, Y = _signal(scale)
    top = rm.alpha_max(X, Y, penalty=pen)
    alpha = 1.01 * top
    with pytest.warns(UserWarning, match=r"alpha=.* is at or above alpha_max=.*" + pattern
                      + r".*W = 0, which is a stationary point.*other stationary points.*"
                        r"alpha below"):
        model = rm.MultiTaskRegressor(pen, alpha=alpha).fit(X, Y)
    assert np.all(model.coef_ == 0)
    if getattr(pen, "has_prox", True):  # (the second form has no prox to reach it with)
        zero, other, W = _better_nonzero_point(pen, X, Y, alpha)
        assert np.any(W != 0) and other < 0.9 * zero


@pytest.mark.parametrize("pen", [rm.MCP(), rm.SCAD(group=True), rm.CappedL1(),
                                 rm.NonconvexFusedGroupLasso()], ids=repr)
def test_no_such_warning_below_alpha_max_nor_for_a_convex_penalty(pen):
    X, Y = _signal(1.0)
    top = rm.alpha_max(X, Y, penalty=pen)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        below = rm.MultiTaskRegressor(pen, alpha=0.5 * top).fit(X, Y)
        convex = rm.MultiTaskRegressor("l21", alpha=10 * top).fit(X, Y)
    # the cases the warning would name: a nonzero fit below alpha_max, and a convex W = 0
    # (the global minimum, certified)
    assert np.any(below.coef_ != 0)
    assert np.all(convex.coef_ == 0) and convex.dual_gap_ <= convex.tol * 1e-3 + 1e-12
