"""The layers of the solver stack: parts import no solver, the choice of a solver is one policy
whose errors name what is missing, and both kinds of data implement the block protocol.

The import graph is read from the source (``ast``, functions' own imports included), as in
``tests/test_architecture.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import regmtl as rm
from regmtl.blocks import TaskBlocks
from regmtl.penalties.base import DIRTY_ROWS, ENTRYWISE, ROWS, BlockStep
from regmtl.solvers.policy import (
    AUTO_ORDER,
    SOLVER_TABLE,
    check_requirements,
    choose_solver,
    penalty_solver,
)
from regmtl.solvers.requirements import Problem

SOLVERS_DIR = REPO / "src" / "regmtl" / "solvers"

#: the folders of ``regmtl.solvers`` by role: the solvers on rows in memory (``methods``), the
#: parts they are made of, the certificates, the solvers on task blocks held by workers, the
#: out-of-core fit; and the modules at the top: the table and ``solve`` above every solver, the
#: names and the result below them
ROLES = {"methods", "parts", "certificates", "blocks", "streamed"}
#: modules that hold a solver (they import only parts), and the layer above them
SOLVER_MODULES = {f"methods.{p.stem}" for p in (SOLVERS_DIR / "methods").glob("[!_]*.py")} | {
    "blocks.primal_dual_blocks"}
ABOVE = {"__init__", "policy", "solve", "entries", "requirements", "solver", "rows"}


def _key(path: Path) -> str:
    """A module's name inside ``regmtl.solvers`` (``parts.epochs``; ``__init__`` for the
    package's own, ``methods`` for a role folder's)."""
    rel = path.relative_to(SOLVERS_DIR).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _module_of(dotted: str) -> str | None:
    """The key of ``regmtl.solvers.<dotted>`` (a module or a role folder), None outside."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = SOLVERS_DIR.joinpath(*parts[:n])
        if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
            return ".".join(parts[:n])
    return None


def _solver_imports(path: Path) -> set[str]:
    """The modules of ``regmtl.solvers`` a file imports (relative or absolute); a name
    imported from a package (``from . import x``) that is no module of it is an edge to the
    package, where it is defined."""
    here = _key(path).split(".")
    package = here if path.name == "__init__.py" and here != ["__init__"] else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                if len(package) - (node.level - 1) < 0:
                    continue  # (above regmtl.solvers)
                head = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("regmtl.solvers."):
                head = node.module[len("regmtl.solvers."):]
            else:
                continue
            targets = [f"{head}.{a.name}" if head else a.name for a in node.names] + [head]
        elif isinstance(node, ast.Import):
            targets = [a.name[len("regmtl.solvers."):] for a in node.names
                       if a.name.startswith("regmtl.solvers.")]
        found = {_module_of(t) for t in targets if t}
        if targets and not (found - {None}):
            found = {"__init__"}
        out |= found - {None}
    return out - {_key(path)} - {k for k in ROLES}


MODULES = {_key(p): _solver_imports(p) for p in SOLVERS_DIR.rglob("*.py")
           if p.name != "__init__.py" or p.parent == SOLVERS_DIR}
PARTS = set(MODULES) - SOLVER_MODULES - ABOVE


def test_the_solvers_are_grouped_by_role():
    """Only the table, ``solve``, the public entries, the solver names and the result sit at
    the top of ``regmtl.solvers``; every other module is in the folder of its role."""
    top = {p.stem for p in SOLVERS_DIR.glob("*.py")}
    assert top == ABOVE | {"names", "result"}
    assert {p.name for p in SOLVERS_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"} \
        == ROLES
    for role in ROLES:
        assert (SOLVERS_DIR / role / "__init__.py").read_text(encoding="utf-8").startswith('"""')


def test_the_layers_are_named_as_expected():
    assert {"parts.epochs", "parts.working_set", "parts.newton_model", "parts.quadratic",
            "parts.quadratic_fista", "certificates.certify", "certificates.screening",
            "parts.anderson", "streamed.quadratic", "blocks.pieces"} <= PARTS
    assert {"methods.bcd", "methods.prox_grad", "blocks.primal_dual_blocks"} <= SOLVER_MODULES


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_imports_no_solver(part):
    assert MODULES[part] & (SOLVER_MODULES | ABOVE) == set()


@pytest.mark.parametrize("solver", sorted(SOLVER_MODULES))
def test_a_solver_imports_only_parts(solver):
    assert MODULES[solver] & (SOLVER_MODULES | ABOVE) == set()


# --------------------------------------------------------------------------- the policy
@pytest.fixture(scope="module")
def shared():
    rng = np.random.default_rng(0)
    return rm.as_task_data(rng.standard_normal((50, 8)), rng.standard_normal((50, 3)))


@pytest.fixture(scope="module")
def wide():
    """More features than rows: no Gram form, so no exact ridge."""
    rng = np.random.default_rng(1)
    return rm.as_task_data(rng.standard_normal((20, 30)), rng.standard_normal((20, 2)))


@pytest.mark.parametrize(("penalty", "expected"), [
    (rm.L21(), "bcd"), (rm.L1(), "bcd"), (rm.ElasticNet(), "bcd"), (rm.L2(), "direct"),
    (rm.MeanRegularized(), "cg"), (rm.Trace(), "admm"), (rm.SparseLowRank(), "admm"),
])
def test_auto_picks_the_documented_solver(shared, penalty, expected):
    name = choose_solver(shared, rm.Quadratic(), penalty, 0.1)
    assert name == expected
    assert SOLVER_TABLE[name].regime  # the reason it is the choice
    assert name in AUTO_ORDER


def test_the_reasons_say_why(shared, wide):
    assert "pure ridge" in SOLVER_TABLE[choose_solver(shared, rm.Quadratic(), rm.L2(), 0.1)].regime
    # no Gram form on a wide design: the exact ridge in row-space form
    assert choose_solver(wide, rm.Quadratic(), rm.L2(), 0.1) == "direct"
    # a tol below the Gram sums' floor: no exact ridge either
    assert choose_solver(shared, rm.Quadratic(), rm.L2(), 0.1, tol=1e-14) == "bcd"
    assert "row-separable" in SOLVER_TABLE["bcd"].regime
    assert "linear" in SOLVER_TABLE["cg"].regime


def test_the_logistic_loss_has_no_linear_path(shared):
    assert choose_solver(shared, rm.Logistic(), rm.MeanRegularized(), 0.1) == "fista"
    assert penalty_solver(rm.Logistic(), rm.MeanRegularized()) == "fista"
    assert penalty_solver(rm.Quadratic(), rm.MeanRegularized()) == "cg"
    assert penalty_solver(rm.Quadratic(), rm.L21()) == "bcd"
    assert penalty_solver(rm.Quadratic(), rm.Trace()) == "fista"


def test_the_checker_names_what_is_missing(shared):
    with pytest.raises(ValueError, match=r"solver='bcd' needs a row-separable penalty "
                                         r"\(l1, l2, elasticnet, l21, multi_source, dirty, mcp, "
                                         r"scad, capped_l1, nonconvex_fused_group_lasso\)"):
        choose_solver(shared, rm.Quadratic(), rm.Trace(), 0.1, solver="bcd")
    with pytest.raises(ValueError, match=r"solver='cg' solves the squared loss with a "
                                         r"quadratic task-coupling penalty \(mean, graph\)"):
        choose_solver(shared, rm.Logistic(), rm.MeanRegularized(), 0.1, solver="cg")
    with pytest.raises(ValueError, match="is not one of"):
        choose_solver(shared, rm.Quadratic(), rm.L21(), 0.1, solver="newton")
    check_requirements("fista", Problem(shared, rm.Quadratic(), rm.Trace(), 0.1, 1e-4))


def test_solve_runs_the_chosen_solver(shared):
    """The exact ridge, one solve, equal to the normal equations of
    (1 / 2n) ||y_t - X w_t - b_t||^2 + alpha / 2 ||w_t||^2 on centred columns."""
    res = rm.solvers.solve(shared, rm.Quadratic(), rm.L2(), 0.1)
    assert res.n_iter == 1 and res.converged
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    W = np.linalg.solve(Xc.T @ Xc / 50 + 0.1 * np.eye(8), Xc.T @ Yc / 50)
    np.testing.assert_allclose(res.W, W, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- the block step
def test_the_block_step_is_named():
    assert rm.L1().bcd_params(2.0) == BlockStep(2.0, 0.0, ENTRYWISE)
    assert rm.L21().bcd_params(2.0).kind == ROWS
    step = rm.Dirty(own_weight=0.5).bcd_params(2.0)
    assert (step.l1, step.l2, step.kind) == (2.0, 1.0, DIRTY_ROWS)
    assert rm.Trace().bcd_params(2.0) is None


# --------------------------------------------------------------------------- the protocol
def test_task_data_satisfies_the_block_protocol(shared):
    assert isinstance(shared, TaskBlocks)
    assert shared.rows_local
    u = np.arange(float(shared.n_obs))
    np.testing.assert_array_equal(shared.blockwise(lambda block, v: block.task_sums(v), u),
                                  shared.task_sums(u))
    np.testing.assert_array_equal(shared.per_row(np.arange(3.0)), np.arange(3.0)[shared.task_of])
    assert shared.settle(u)[0] is u
    assert shared.numbers(np.float64(2.0)) == (2.0,)
    assert shared.row_zeros().shape == (shared.n_obs,)


def test_dask_task_data_satisfies_the_block_protocol():
    pytest.importorskip("dask")
    from regmtl.dask import DaskTaskData

    # structurally, on the class (an instance's ``y`` would compute on the blocks)
    members = {name for name in dir(TaskBlocks) if not name.startswith("_")}
    members |= set(TaskBlocks.__annotations__)
    assert {"linear", "adjoint", "task_sums", "per_row", "row_zeros", "blockwise", "settle",
            "numbers", "arrays", "rows_local", "y", "c"} <= members
    assert [name for name in sorted(members) if not hasattr(DaskTaskData, name)] == []
    assert DaskTaskData.rows_local is False
