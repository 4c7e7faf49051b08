"""Block coordinate descent under a box (``solvers/parts/box_descent.py``) and the pieces it rests
on: the row step under a box, the conjugates of the boxed penalties (their duality gap), and
the solver row the table gives them, each against cvxpy/Clarabel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl.penalties.factored import PartlyPenalized, _row_conjugates, row_box_prox
from regmtl.solvers.policy import choose_row

cp = pytest.importorskip("cvxpy")


def _boxes(rng, shape, trial):
    lo = np.where(rng.random(shape) < 0.5, rng.uniform(-1.0, 0.5, shape), -np.inf)
    hi = np.where(rng.random(shape) < 0.5, np.maximum(lo, -1.0) + rng.uniform(0, 1.5, shape),
                  np.inf)
    if trial % 3 == 0:  # the sign constraint
        lo, hi = np.zeros(shape), np.full(shape, np.inf)
    return lo, hi


def _constraints(v, lo, hi):
    out = []
    if np.isfinite(lo).any():
        out.append(v[np.isfinite(lo)] >= lo[np.isfinite(lo)])
    if np.isfinite(hi).any():
        out.append(v[np.isfinite(hi)] <= hi[np.isfinite(hi)])
    return out


def test_the_row_step_under_a_box_is_never_above_clarabel():
    """argmin ||v - z||^2 / 2 + a ||v|| + (c - 1) / 2 ||v||^2 on a box: its objective never
    exceeds Clarabel's by more than 1e-12 (bisection to rounding), over 150 random rows."""
    rng = np.random.default_rng(0)

    def obj(v, z, a, c):
        return 0.5 * np.sum((v - z) ** 2) + a * np.linalg.norm(v) + (c - 1) / 2 * np.sum(v * v)

    worst = 0.0
    for trial in range(150):
        T = int(rng.integers(1, 6))
        Z = rng.standard_normal((1, T)) * rng.uniform(0.1, 3)
        lo, hi = _boxes(rng, (1, T), trial)
        a, c = rng.uniform(0, 2), 1 + rng.uniform(0, 1)
        out = row_box_prox(Z, a, c, lo, hi)
        assert np.all(out >= lo) and np.all(out <= hi)
        v = cp.Variable(T)
        cp.Problem(cp.Minimize(0.5 * cp.sum_squares(v - Z[0]) + a * cp.norm(v)
                               + (c - 1) / 2 * cp.sum_squares(v)),
                   _constraints(v, lo[0], hi[0])).solve(solver="CLARABEL")
        ref = np.clip(v.value, lo[0], hi[0])
        worst = max(worst, obj(out[0], Z[0], a, c) - obj(ref, Z[0], a, c))
    assert worst <= 1e-12


def test_the_row_conjugate_under_a_box_equals_clarabel():
    """sup_{lo <= w <= hi} g . w - l1 ||w|| (the conjugate the duality gap reads) equals
    Clarabel's maximum to 1e-7 wherever it is finite."""
    rng = np.random.default_rng(1)
    checked = 0
    for trial in range(150):
        T = int(rng.integers(1, 5))
        G = rng.standard_normal((1, T)) * rng.uniform(0.1, 3)
        lo, hi = _boxes(rng, (1, T), trial)
        l1 = rng.uniform(0.1, 2)
        out = np.where(np.isinf(hi), np.maximum(G, 0), 0) + np.where(np.isinf(lo),
                                                                     np.minimum(G, 0), 0)
        if np.linalg.norm(out) > l1:  # outside the domain: dual_scaling brings it in
            continue
        w = cp.Variable(T)
        prob = cp.Problem(cp.Maximize(G[0] @ w - l1 * cp.norm(w)), _constraints(w, lo[0], hi[0]))
        prob.solve(solver="CLARABEL")
        assert _row_conjugates(G, l1, lo, hi)[0] == pytest.approx(prob.value, abs=1e-7)
        checked += 1
    assert checked > 60


@pytest.mark.parametrize("penalty", [rm.L1(), rm.ElasticNet(0.5)])
def test_the_entry_conjugate_under_a_box_equals_clarabel(penalty):
    rng = np.random.default_rng(2)
    p, T = 4, 3
    lo, hi = _boxes(rng, (p, T), 1)
    pen = PartlyPenalized(penalty, np.ones(p, dtype=bool), lo, hi).check(p, T)
    G = rng.standard_normal((p, T))
    s = pen.dual_scaling(G, 0.7)
    l1, l2 = penalty.bcd_params(0.7)[:2]
    W = cp.Variable((p, T))
    obj = cp.sum(cp.multiply(s * G, W)) - l1 * cp.sum(cp.abs(W)) - l2 / 2 * cp.sum_squares(W)
    cons = [W[np.isfinite(lo)] >= lo[np.isfinite(lo)]] if np.isfinite(lo).any() else []
    cons += [W[np.isfinite(hi)] <= hi[np.isfinite(hi)]] if np.isfinite(hi).any() else []
    prob = cp.Problem(cp.Maximize(obj), cons)
    prob.solve(solver="CLARABEL")
    assert pen.conjugate(s * G, 0.7) == pytest.approx(prob.value, abs=1e-7)


def _tasks(seed=0, T=4, p=8):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in (30, 45, 60, 25)[:T]]
    ys = [X @ rng.standard_normal(p) + rng.standard_normal(len(X)) for X in Xs]
    return Xs, ys


@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_a_box_runs_block_coordinate_descent_with_an_honest_gap(penalty):
    """The box takes the ``box_descent`` row; its duality gap bounds the distance to
    Clarabel's optimum (0 <= P - P* <= gap + 1e-9) and meets tol."""
    Xs, ys = _tasks()
    m = rm.MultiTaskRegressor(penalty, alpha=0.05, tol=1e-9, lower_bounds=-0.3,
                              upper_bounds=0.4).fit(Xs, ys)
    T, p = len(Xs), Xs[0].shape[1]
    W, b = cp.Variable((p, T)), cp.Variable(T)
    fit = sum(cp.sum_squares(ys[t] - Xs[t] @ W[:, t] - b[t]) / (2 * len(ys[t]))
              for t in range(T))
    pen = cp.sum(cp.abs(W)) if penalty == "l1" else cp.sum(cp.norm(W, axis=1))
    prob = cp.Problem(cp.Minimize(fit + 0.05 * pen), [W >= -0.3, W <= 0.4])
    prob.solve(solver="CLARABEL")
    assert m.objective_ - prob.value >= -1e-7 * abs(prob.value)
    assert m.objective_ - prob.value <= m.dual_gap_ + 1e-7 * abs(prob.value)
    assert np.allclose(m.coef_.T, W.value, atol=1e-4)
    assert m.coef_.min() >= -0.3 and m.coef_.max() <= 0.4


def test_the_table_routes_boxes_and_free_rows_to_box_descent():
    Xs, ys = _tasks()
    data = rm.as_task_data(Xs, ys)
    p = data.n_features
    free = np.ones(p, dtype=bool)
    free[:2] = False
    boxed = PartlyPenalized(rm.L21(), np.ones(p, dtype=bool), -1.0, 1.0).check(p, 4)
    partly = PartlyPenalized(rm.L1(), free).check(p, 4)
    assert choose_row(data, rm.Quadratic(), boxed, 0.1) == "box_descent"
    assert choose_row(data, rm.Logistic(), partly, 0.1) == "box_descent"
    # no block step of entries or rows: the proximal gradient with free rows
    spectral = PartlyPenalized(rm.Trace(), free).check(p, 4)
    assert choose_row(data, rm.Logistic(), spectral, 0.1) != "box_descent"
    # a loss without curvature on every row: not this row
    assert choose_row(data, rm.Huber(), boxed, 0.1) != "box_descent"


@pytest.mark.parametrize("loss", ["logistic", "poisson"])
def test_proximal_newton_under_a_box_matches_clarabel(loss):
    Xs, ys = _tasks(3)
    T, p = len(Xs), Xs[0].shape[1]
    if loss == "logistic":
        targets = [(y > 0).astype(int) for y in ys]
        m = rm.MultiTaskClassifier("l21", alpha=0.02, tol=1e-9, lower_bounds=-0.5,
                                   upper_bounds=0.5).fit(Xs, targets)
    else:
        targets = [np.floor(np.abs(y)) for y in ys]
        m = rm.MultiTaskRegressor("l21", alpha=0.02, tol=1e-9, loss="poisson",
                                  lower_bounds=-0.5, upper_bounds=0.5).fit(Xs, targets)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t in range(T):
        f = Xs[t] @ W[:, t] + b[t]
        if loss == "logistic":
            terms.append(cp.sum(cp.logistic(-cp.multiply(2 * targets[t] - 1, f))) / len(Xs[t]))
        else:
            terms.append(cp.sum(cp.exp(f) - cp.multiply(targets[t], f)) / len(Xs[t]))
    prob = cp.Problem(cp.Minimize(sum(terms) + 0.02 * cp.sum(cp.norm(W, axis=1))),
                      [W >= -0.5, W <= 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL")
    assert m.objective_ == pytest.approx(prob.value, rel=1e-6)
    assert np.allclose(m.coef_.T, W.value, atol=1e-4)


def test_school_under_a_box_is_certified_and_beats_no_other_solver():
    """On School (collinear dummy columns) the box costs no accuracy: the fit with bounds
    that bind reaches tol 1e-6 by its duality gap, no worse than ADMM's objective."""
    school = rm.datasets.load_school()
    kw = dict(alpha=0.05, lower_bounds=-2.0, upper_bounds=2.0)
    box = rm.MultiTaskRegressor("l21", tol=1e-6, **kw).fit(school.X, school.y)
    assert box.dual_gap_ <= 1e-6 * 1e5  # (P0 of School is about 1e5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        admm = rm.MultiTaskRegressor("l21", tol=1e-8, solver="admm", **kw).fit(school.X,
                                                                               school.y)
    assert box.objective_ <= admm.objective_ + box.dual_gap_
    assert box.coef_.min() >= -2.0 and box.coef_.max() <= 2.0


@pytest.mark.parametrize("route", ["gram", "rows"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_both_routes_of_the_box_reach_clarabel(route, loss):
    """The epochs on per-task Grams (tasks with more rows than features, ``gram_route``) and
    over the rows (fewer rows than features): the squared loss and the Newton steps' models
    reach Clarabel's optimum, an L1 box with a free row, objective within 1e-7."""
    from regmtl.solvers.parts.box_descent import gram_route

    rng = np.random.default_rng(5)
    T, p = 4, 10
    n = 40 if route == "gram" else 9
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [X @ rng.standard_normal(p) + rng.standard_normal(n) for X in Xs]
    assert gram_route(rm.as_task_data(Xs, ys)) == (route == "gram")
    factor = np.ones(p)
    factor[0] = 0.0
    kw = dict(alpha=0.03, tol=1e-10, penalty_factor=factor, rescale_factors=False,
              lower_bounds=-0.4,
              upper_bounds=0.6)
    if loss == "squared":
        targets = ys
        m = rm.MultiTaskRegressor("l1", **kw).fit(Xs, ys)
    else:
        targets = [(y > np.median(y)).astype(int) for y in ys]
        m = rm.MultiTaskClassifier("l1", **kw).fit(Xs, targets)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    terms = []
    for t in range(T):
        f = Xs[t] @ W[:, t] + b[t]
        if loss == "squared":
            terms.append(cp.sum_squares(targets[t] - f) / (2 * n))
        else:
            terms.append(cp.sum(cp.logistic(-cp.multiply(2 * targets[t] - 1, f))) / n)
    prob = cp.Problem(cp.Minimize(sum(terms) + 0.03 * cp.sum(cp.abs(W[1:]))),
                      [W >= -0.4, W <= 0.6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver="CLARABEL")
    assert m.objective_ == pytest.approx(prob.value, rel=1e-7)
    assert np.allclose(m.coef_.T, W.value, atol=1e-4)
    assert m.coef_.min() >= -0.4 and m.coef_.max() <= 0.6
