"""The group dual point (:mod:`regmtl.solvers.certificates.group_dual`): the residual projected onto
the dual ball of L2,1 is a dual point (every row's norm within alpha once scaled), its gap bounds
the suboptimality measured against an interior-point solver, and it is nearer the optimum than the
scaled residual on collinear per-task designs (p > n_t)."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers import reference, solve
from regmtl.solvers.certificates.group_dual import GroupProjection
from regmtl.solvers.parts.epochs import LeastSquaresEpochs, quadratic_gap
from regmtl.solvers.parts.moments import uniform_within_tasks

T, N, P, RANK = 4, 40, 60, 12


@functools.lru_cache(maxsize=1)
def _problem():
    """Four tasks of 40 rows over 60 columns of rank about 12 (collinear, p > n_t)."""
    rng = np.random.default_rng(0)
    B = rng.standard_normal((RANK, P))
    Xs = [rng.standard_normal((N, RANK)) @ B + 0.05 * rng.standard_normal((N, P))
          for _ in range(T)]
    w = np.zeros(P)
    w[:8] = rng.standard_normal(8)
    ys = [X @ (w + 0.3 * rng.standard_normal(P) * (np.arange(P) < 8)) + rng.standard_normal(N)
          for X in Xs]
    return Xs, ys


def _optimum(Xs, ys, c, alpha, positive):
    """``min sum_r c_r (y - x w_t - b_t)^2 / 2 + alpha sum_j ||W_j||`` by CLARABEL."""
    import cvxpy as cp  # test-only

    W, b = cp.Variable((P, T)), cp.Variable(T)
    sq = [cp.sum_squares(cp.multiply(np.sqrt(c[t * N:(t + 1) * N]),
                                     ys[t] - Xs[t] @ W[:, t] - b[t])) for t in range(T)]
    cons = [W >= 0] if positive else []
    prob = cp.Problem(cp.Minimize(0.5 * sum(sq) + alpha * cp.sum(cp.norm(W, 2, axis=1))), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    return float(prob.value)


def _state(data, penalty, alpha, max_iter):
    """A point of coordinate descent after ``max_iter`` epochs, with what a gap check holds:
    the epochs' centers and gradient, the residual (centered per task), its correlations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = solve(data, rm.Quadratic(), penalty, alpha, max_iter=max_iter, solver="bcd")
    c = data.c
    ls = LeastSquaresEpochs(data, c, uniform_within_tasks(data), True, penalty.bcd_params(alpha))
    R = data.y - data.linear(res.W, res.b)
    R -= np.repeat(data.task_sums(c * R) / data.task_sums(c), np.diff(data.indptr))
    features = np.arange(data.n_features)
    u = c * R
    RR = data.task_sums(u * R)
    scaled = (ls.gradient(u, features), RR, data.task_sums(u * data.y))
    return res.W, R, ls, features, float(RR.sum()), scaled


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("max_iter", [20, 50])
def test_projected_point_is_dual_feasible_and_bounds_the_suboptimality(positive, max_iter):
    """Every candidate, once scaled, keeps each row of ``G`` within alpha (its positive part
    under the sign constraint); its gap is at least ``P - P*`` with ``P*`` from CLARABEL at
    1e-9 (a valid certificate, never below), and the best is at most the scaled residual's
    gap, less than that after 20 epochs."""
    Xs, ys = _problem()
    data = rm.as_task_data(Xs, ys)
    penalty = rm.L21(positive=positive)
    alpha = 0.01 * penalty.alpha_max(reference(data, rm.Quadratic(), True).G0)
    W, R, ls, features, RR, scaled = _state(data, penalty, alpha, max_iter)
    G = scaled[0]
    duals = GroupProjection().duals(data, data.c, ls.xm, R, G, data.y, penalty, alpha,
                                    features, ls.gradient)
    assert duals
    best = _optimum(Xs, ys, data.c, alpha, positive)
    gap0, primal, *_ = quadratic_gap(penalty, alpha, W, RR, [scaled])
    gaps = []
    for cand in duals:
        gap, _, _, s, Gd = quadratic_gap(penalty, alpha, W, RR, [cand])
        part = np.maximum(s * Gd, 0.0) if positive else s * Gd
        assert np.linalg.norm(part, axis=1).max() <= alpha * (1 + 1e-12)
        assert primal - gap <= best * (1 + 1e-9)  # D <= P*: a bound, never below
        gaps.append(gap)
    assert primal - best >= 0.0 and min(gaps) <= gap0
    if max_iter == 20:
        assert min(gaps) < 0.8 * gap0


def test_a_second_check_starts_from_the_last_projection(monkeypatch):
    """The rows, Grams and multipliers kept between checks: a second check at the same point
    goes on from the first one's multipliers on the Grams already formed (no new Gram), and
    its point is at least as good."""
    from regmtl.solvers.certificates import group_dual

    Xs, ys = _problem()
    data = rm.as_task_data(Xs, ys)
    penalty = rm.L21()
    alpha = 0.01 * penalty.alpha_max(reference(data, rm.Quadratic(), True).G0)
    W, R, ls, features, RR, scaled = _state(data, penalty, alpha, 20)
    memo = GroupProjection()
    args = (data, data.c, ls.xm, R, scaled[0], data.y, penalty, alpha, features, ls.gradient)
    first = min(quadratic_gap(penalty, alpha, W, RR, [d])[0] for d in memo.duals(*args))
    moved = memo.rows[np.any(memo.lam != 0.0, axis=1)]
    assert len(moved) > 0 and np.all(np.isin(moved, memo.pool))
    formed = []
    monkeypatch.setattr(group_dual, "task_grams",
                        lambda *a: formed.append(a) or pytest.fail("Grams formed again"))
    second = min(quadratic_gap(penalty, alpha, W, RR, [d])[0] for d in memo.duals(*args))
    assert not formed and second <= first * (1 + 1e-9)


@pytest.mark.parametrize("penalty", [rm.L1(), rm.L21(l1_ratio=0.5), rm.ElasticNet()])
def test_other_penalties_get_no_group_point(penalty):
    """Entrywise norms keep their clipped projection; a ridge part has no dual ball."""
    Xs, ys = _problem()
    data = rm.as_task_data(Xs, ys)
    alpha = 0.01 * penalty.alpha_max(reference(data, rm.Quadratic(), True).G0)
    W, R, ls, features, RR, scaled = _state(data, penalty, alpha, 5)
    assert GroupProjection().duals(data, data.c, ls.xm, R, scaled[0], data.y, penalty, alpha,
                                   features, ls.gradient) == []


def test_collinear_l21_fit_is_certified_at_the_optimum():
    """The default fit on the collinear tasks is certified, and its objective is CLARABEL's
    optimum within the reported gap."""
    Xs, ys = _problem()
    data = rm.as_task_data(Xs, ys)
    ref = reference(data, rm.Quadratic(), True)
    alpha = 0.01 * rm.L21().alpha_max(ref.G0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor("l21", alpha=alpha).fit(Xs, ys)
    best = _optimum(Xs, ys, data.c, alpha, False)
    assert model.dual_gap_ <= 1e-4 * ref.P0
    assert model.objective_ - model.dual_gap_ <= best * (1 + 1e-9) <= model.objective_ * (
        1 + 2e-9)


def test_many_tasks_skip_the_per_task_dual_points_and_search(monkeypatch):
    """The group projection and the search over sign patterns take a Python step per task:
    above ``MAX_TASKS`` tasks they are not built (a check of 10^5 tasks would take 10^5
    steps), below it they are, unchanged. The clipped dual points are batched over the tasks
    (:mod:`regmtl.solvers.parts.task_columns`): built above it too, the same."""
    from regmtl.solvers.certificates import dual_projection, group_dual
    from regmtl.solvers.parts import sign_search, task_columns

    Xs, ys = _problem()
    data = rm.as_task_data(Xs, ys)
    for penalty in (rm.L1(), rm.L21()):
        alpha = 0.01 * penalty.alpha_max(reference(data, rm.Quadratic(), True).G0)
        W, R, ls, features, RR, scaled = _state(data, penalty, alpha, 20)
        args = (data, data.c, ls.xm, R, scaled[0], data.y, penalty, alpha, features,
                ls.gradient)
        l1, l2, _ = penalty.bcd_params(alpha)
        xm = ls.xm

        def grams(f, xm=xm, features=features):
            return task_columns.task_grams(data, data.c, xm, features[f])

        clipped = dual_projection.projected_duals(*args)
        with_memo = dual_projection.projected_duals(*args, group_dual.GroupProjection(), True)
        # three rounds of clipped points; a group norm adds its projection
        assert len(clipped) == dual_projection.ROUNDS
        assert len(with_memo) == len(clipped) + int(penalty.group)
        if not penalty.group:
            assert sign_search.searched(W, scaled[0], grams, l1, l2) is not None
        for module in (group_dual, sign_search):
            monkeypatch.setattr(module, "MAX_TASKS", T - 1)
        again = dual_projection.projected_duals(*args, group_dual.GroupProjection(), True)
        assert len(again) == len(clipped)
        for a, b in zip(again, clipped, strict=True):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y)
        assert sign_search.searched(W, scaled[0], grams, l1, l2) is None
        monkeypatch.undo()
