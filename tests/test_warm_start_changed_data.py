"""A warm start on changed data (another X, y, number of rows or tasks) is certified on the data
of that fit: every penalty's refit agrees with a cold fit of the new data (the objective, for
the convex penalties and the majorize-minimize stages), and a nonconvex refit is a stationary
point of the new data by a KKT residual computed here from scratch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl.penalties import REGISTRY
from regmtl.solvers.certificates.certify import kkt_residual, reference

T, P = 4, 6


def _penalty(cls):
    if cls is rm.MultiSource:
        return rm.MultiSource(blocks=(3, 3))
    if cls is rm.GraphLaplacian:
        return rm.GraphLaplacian(np.ones((T, T)) - np.eye(T))
    if cls is rm.NonconvexFusedGroupLasso:
        return rm.NonconvexFusedGroupLasso(fused_weight=0.5)
    return cls()


PENALTIES = [_penalty(cls) for cls in REGISTRY.values()] + [
    rm.NonconvexFusedGroupLasso(fused_weight=0.5, fused_in_root=True),
    rm.MCP(group=True), rm.CappedL1(group=True), rm.L21(positive=True)]


def _data(n, signal, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P))
    W = np.zeros((P, T))
    W[0] = [1.0, 1.0, 2.0, 2.0]
    W[2] = [0.5, -0.5, 0.5, 1.0]
    return X, signal * (X @ W) + 0.1 * rng.standard_normal((n, T))


#: first fit, then the refit's data: from W = 0 to a signal (the case of the report: the
#: start at W = 0 was returned as the answer), and to other rows of another number
SEQUENCES = {
    "zero_then_signal": (_data(40, 0.0, 1), _data(40, 1.0, 2)),
    "other_rows": (_data(40, 1.0, 1), _data(27, 1.0, 5)),
}


def _independent(model, pen, X, Y, alpha):
    """(objective, KKT residual) of the model's W and b on (X, Y), from a problem built
    here: equal task weights, mean squared loss / 2 per task."""
    data = rm.as_task_data(X, Y)
    datafit = rm.Quadratic().bind(data)
    W, b = model.coef_matrix_, np.asarray(model.intercept_)
    f = data.linear(W, b)
    V = pen.variable({k: getattr(model, k) for k in pen.structure_attrs if hasattr(model, k)})
    V = pen.lift(W) if V is None else V
    value = datafit.value(data.y, f, data.c) + pen.value(V, alpha)
    G0 = reference(data, datafit, True).G0
    return value, kkt_residual(data, datafit, pen, alpha, V, f, True, G0)


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
@pytest.mark.parametrize("pen", PENALTIES, ids=repr)
def test_a_warm_refit_on_changed_data_is_that_data_s_fit(pen, sequence):
    (X1, Y1), (X2, Y2) = SEQUENCES[sequence]
    alpha, tol = 0.05, 1e-7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (convergence and W = 0 notes are not the point)
        warm = rm.MultiTaskRegressor(pen, alpha=alpha, tol=tol, max_iter=5000,
                                     warm_start=True)
        warm.fit(X1, Y1).fit(X2, Y2)
        cold = rm.MultiTaskRegressor(pen, alpha=alpha, tol=tol, max_iter=5000).fit(X2, Y2)
    value, kkt = _independent(warm, pen, X2, Y2, alpha)
    # the reported objective is that of the new data, recomputed here
    np.testing.assert_allclose(warm.objective_, value, rtol=1e-9)
    if not pen.nonconvex or pen.majorized:
        # the same minimum (a duality gap of 1e-7 of the objective at W = 0 bounds each);
        # the stages of majorize-minimize start from the convex relaxation whatever the start
        np.testing.assert_allclose(value, cold.objective_, rtol=1e-5)
    if pen.nonconvex:  # a stationary point of the new data
        assert kkt <= 10 * tol
    if sequence == "zero_then_signal":
        assert np.any(warm.coef_ != 0) == np.any(cold.coef_ != 0)


@pytest.mark.parametrize("fused_in_root", [False, True])
def test_the_reported_case_a_warm_start_at_zero_is_not_the_answer_on_new_data(fused_in_root):
    """The report: after a fit that ended at W = 0, a refit on other data at the same alpha
    returned W = 0 after no iteration (its certificate holds at every zero row whatever the
    data), at an objective 15 times the cold fit's."""
    (X1, Y1), (X2, Y2) = SEQUENCES["zero_then_signal"]
    pen = rm.NonconvexFusedGroupLasso(fused_weight=0.5, fused_in_root=fused_in_root)
    warm = rm.MultiTaskRegressor(pen, alpha=0.05, warm_start=True).fit(X1, Y1)
    assert np.all(warm.coef_ == 0)
    warm.fit(X2, Y2)
    cold = rm.MultiTaskRegressor(pen, alpha=0.05).fit(X2, Y2)
    assert warm.n_iter_ > 0
    np.testing.assert_allclose(warm.objective_, cold.objective_, rtol=1e-6)
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-4)


@pytest.mark.parametrize("pen", [rm.L21(), rm.Trace(), rm.MCP(),
                                 rm.NonconvexFusedGroupLasso(fused_weight=0.5)], ids=repr)
def test_a_warm_refit_on_other_tasks_and_targets_of_a_classifier(pen):
    """Long form with other task ids (same number of tasks), and a classifier's refit on
    other labels: the cold fit's objective (MCP's refit: a stationary point of the new data,
    its certificate computed on that data)."""
    rng = np.random.default_rng(7)
    XA, XB = rng.standard_normal((80, P)), rng.standard_normal((60, P))
    tA, tB = np.repeat(list("abcd"), 20), np.repeat(list("wxyz"), 15)
    yA = 0.0 * XA[:, 0] + 0.01 * rng.standard_normal(80)
    yB = XB[:, 0] * (1 + np.arange(60) % 3) - XB[:, 1] + 0.1 * rng.standard_normal(60)
    kw = dict(alpha=0.05, tol=1e-8, max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = rm.MultiTaskRegressor(pen, warm_start=True, **kw).fit(XA, yA, task=tA)
        warm.fit(XB, yB, task=tB)
        cold = rm.MultiTaskRegressor(pen, **kw).fit(XB, yB, task=tB)
        np.testing.assert_allclose(warm.objective_, cold.objective_, rtol=1e-5)
        assert list(warm.tasks_) == list("wxyz")
        kw.update(alpha=0.01, tol=1e-6)  # (proximal Newton on MCP stalls near 1e-6)
        # (labels with noise: separable ones leave MCP's logistic fit without a minimum)
        cA = (yA > np.median(yA)).astype(int)
        cB = (yB + 2.0 * rng.standard_normal(60) > 0).astype(int)
        warm = rm.MultiTaskClassifier(pen, warm_start=True, **kw).fit(XA, cA, task=tA)
        warm.fit(XB, cB, task=tB)
        cold = rm.MultiTaskClassifier(pen, **kw).fit(XB, cB, task=tB)
    if pen.nonconvex and not pen.majorized:  # another start, perhaps another stationary point
        assert warm.kkt_residual_ <= 10 * kw["tol"]
    else:
        np.testing.assert_allclose(warm.objective_, cold.objective_, rtol=1e-4)
