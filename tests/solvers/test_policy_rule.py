"""The solvers are objects of one call signature, and the policy's rule can be read back.

Each solver declares its requirements, regime, cost and certificates
(:class:`regmtl.solvers.solver.Solver`). For one fit per solver, made as a user makes it, the
test records every solver that ran (a spy around each solver's ``run``, the real solvers
underneath) and checks the rule the policy states: the solver that ran first is the first of
``AUTO_ORDER`` whose declared requirements all hold on the problem it was given, every
solver before it misses one of its own, the fit is certified at tol, and each certificate a
solver returned is of a kind it declares. Every solver of the table is reached.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl.solvers import rows
from regmtl.solvers.policy import AUTO_ORDER, SOLVER_TABLE
from regmtl.solvers.requirements import Problem
from regmtl.solvers.solver import CERTIFICATES, Solver

TOL = 1e-6


def _tasks(n, p, T, seed, kind="real"):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    w = rng.standard_normal(p)
    ys = [X @ (w + 0.3 * rng.standard_normal(p)) + rng.standard_normal(n) for X in Xs]
    if kind == "binary":
        ys = [(y > np.median(y)).astype(int) for y in ys]
    elif kind == "classes":
        ys = [np.digitize(y, np.quantile(y, [1 / 3, 2 / 3])) for y in ys]
    elif kind == "positive":
        ys = [np.exp(0.2 * y) for y in ys]
    return Xs, ys


_reg, _clf = rm.MultiTaskRegressor, rm.MultiTaskClassifier
#: (solver expected first, estimator, data)
CASES = [
    ("linear_program", _reg(rm.L1(), 0.05, loss=rm.Quantile(0.3)), _tasks(40, 5, 3, 0)),
    ("interior_point", _reg(rm.L21(), 0.05, loss=rm.Quantile(0.3)), _tasks(40, 5, 3, 1)),
    ("spectral_barrier", _reg(rm.Trace(), 0.05, loss=rm.Quantile(0.3)), _tasks(40, 4, 3, 2)),
    ("primal_dual", _reg(rm.Clustered(), 0.05, loss=rm.Quantile(0.3)), _tasks(40, 5, 3, 3)),
    ("smoothing", _reg(rm.MCP(), 0.05, loss=rm.Quantile(0.3)), _tasks(40, 5, 3, 4)),
    ("direct", _reg(rm.L2(), 0.05), _tasks(40, 5, 3, 5)),
    ("ridge_lbfgs", _reg(rm.L2(), 0.05, loss="gamma"), _tasks(40, 5, 3, 6, "positive")),
    ("majorize", _reg(rm.NonconvexFusedGroupLasso(), 0.05), _tasks(40, 5, 3, 7)),
    ("stationary", _reg(rm.MCP(), 0.05), _tasks(40, 5, 3, 8)),
    ("stationary_newton", _clf(rm.MCP(), 0.02), _tasks(60, 5, 3, 9, "binary")),
    ("huber_newton", _reg(rm.L21(), 0.05, loss="huber"), _tasks(60, 5, 3, 10)),
    ("prox_newton", _clf(rm.L21(), 0.02), _tasks(60, 5, 3, 11, "binary")),
    ("softmax_newton", _clf(rm.L21(), 0.01), _tasks(60, 5, 3, 12, "classes")),
    ("small_squares", _reg(rm.L21(), 0.05), _tasks(12, 10, 3, 13)),
    ("bcd", _reg(rm.L21(), 0.05), _tasks(60, 5, 3, 14)),
    ("box_descent", _reg(rm.L21(), 0.05, upper_bounds=0.3), _tasks(60, 5, 3, 15)),
    ("row_space_cg", _reg(rm.MeanRegularized(), 0.05), _tasks(15, 40, 3, 16)),
    ("cg", _reg(rm.MeanRegularized(), 0.05), _tasks(40, 5, 3, 17)),
    ("admm", _reg(rm.Trace(), 0.05), _tasks(40, 5, 3, 18)),
    ("parts_admm", _reg(rm.SparseLowRank(), 0.05), _tasks(40, 5, 3, 19)),
    ("structured_newton", _clf(rm.Trace(), 0.02), _tasks(60, 5, 3, 20, "binary")),
    ("subspace", _clf(rm.Trace(), 0.02), _tasks(20, 40, 3, 21, "binary")),
    ("wide_newton", _clf(rm.Clustered(), 0.02), _tasks(20, 40, 3, 22, "binary")),
    ("fista", _clf(rm.RobustLowRank(), 0.02), _tasks(20, 40, 3, 23, "binary")),
]


def _first_missing(solver: Solver, problem: Problem) -> str | None:
    """The first requirement of ``solver`` the problem misses, read in the declared order
    (a later one may assume the earlier: a coupling's diagonal, once it is a coupling)."""
    return next((r.name for r in solver.requires if not r.holds(problem)), None)


@pytest.fixture
def ran(monkeypatch):
    """Every solver run during the test, outermost first: (depth, solver, call, result)."""
    record, depth = [], [0]
    classes = {type(s) for s in rows.ALL_SOLVERS}
    for cls in classes:
        original = cls.run

        def run(self, call, start, _original=original):
            depth[0] += 1
            try:
                res = _original(self, call, start)
            finally:
                depth[0] -= 1
            record.append((depth[0], self, call, res))
            return res

        monkeypatch.setattr(cls, "run", run)
    return record


def test_every_solver_declares_what_it_is():
    assert tuple(SOLVER_TABLE) == AUTO_ORDER and AUTO_ORDER[-1] == "fista"
    for name, solver in SOLVER_TABLE.items():
        assert isinstance(solver, Solver) and solver.name == name
        assert solver.requires and solver.regime and solver.cost, name
        assert set(solver.certificate) <= set(CERTIFICATES) and solver.certificate, name
        assert solver.answers in {"auto", "bcd", "fista", "cg", "admm", "direct"}, name


def test_the_cases_reach_every_solver():
    assert sorted(name for name, _, _ in CASES) == sorted(SOLVER_TABLE)


@pytest.mark.parametrize(("expected", "model", "data"), CASES, ids=[c[0] for c in CASES])
def test_the_first_solver_whose_requirements_hold_runs(ran, expected, model, data):
    Xs, ys = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a fit that stops short warns: none may here)
        fitted = model.set_params(tol=TOL).fit(Xs, ys)
    outer = [(solver, call, res) for depth, solver, call, res in ran if depth == 0]
    assert outer, "no solver ran"
    solver, call, res = outer[-1]  # the fit's solve (a path of stages runs solves within)
    assert solver.name == expected
    problem = Problem(call.data, call.datafit, call.penalty, call.alpha, TOL, call.ref)
    for name in AUTO_ORDER[:AUTO_ORDER.index(expected)]:
        assert _first_missing(SOLVER_TABLE[name], problem), f"{name} comes first and holds"
    assert _first_missing(solver, problem) is None
    # certified at tol, by a certificate each solver that ran declares
    assert res.converged and res.certificate.relative <= TOL
    for _, each, _, out in ran:
        assert out.certificate.kind in each.certificate, (each.name, out.certificate.kind)
    gap = getattr(fitted, "dual_gap_", None)
    assert gap is not None or fitted.kkt_residual_ is not None
