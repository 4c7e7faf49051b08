r"""The choice of a solver: one table of solver objects, one stated rule, one checker.

Each solver (:mod:`~regmtl.solvers.rows`, an object of one call signature,
:class:`~regmtl.solvers.solver.Solver`) declares what it needs
(:mod:`~regmtl.solvers.requirements`), its regime, its cost and its certificate.
:data:`SOLVER_TABLE` maps each solver's name to it. The rule, which
``tests/solvers/test_policy_rule.py`` reads back:

- ``solver="auto"`` runs the first solver of :data:`AUTO_ORDER` whose requirements all hold
  (the exact and Newton methods built for a regime before the general ones; FISTA, which
  needs only a prox and a smooth loss, last);
- a named solver (``"bcd"``, ``"fista"``, ``"cg"``, ``"admm"``, ``"direct"``) runs the first
  solver of that order answering to the name whose requirements hold, leaving out the routes
  only ``"auto"`` takes; where none holds, its own row's first missing requirement is the
  error;
- task blocks held elsewhere (``data.rows_local`` False, :class:`~regmtl.blocks.TaskBlocks`)
  need, beside a solver's own requirements, its ``on_blocks`` or else Gram form, a smooth
  loss, a penalty whose prox works on blocks and a ``tol`` the Gram sums can certify.

:func:`check_requirements` writes the error that names what is missing. The stages of
majorize-minimize and smoothing receive the solve as an argument (``Call.inner``): nothing
here imports :mod:`~regmtl.solvers.solve`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates.certify import Reference
from .names import SOLVERS
from .requirements import GRAM_TOL, ON_BLOCKS_ELSEWHERE, Problem, Requirement
from .result import SolverResult
from .rows import ALL_SOLVERS
from .solver import Call, Solver, Start

__all__ = ["SOLVER_TABLE", "AUTO_ORDER", "SOLVERS", "choose_solver", "choose_row",
           "check_requirements", "penalty_solver", "run_solver"]

#: Every solver by its name.
SOLVER_TABLE: dict[str, Solver] = {s.name: s for s in ALL_SOLVERS}
#: The order in which the table is read: ``solver="auto"`` runs the first solver whose
#: requirements hold, a named solver the first such one that answers to its name.
AUTO_ORDER: tuple[str, ...] = tuple(s.name for s in ALL_SOLVERS)


def _requirements(name: str, problem: Problem) -> tuple[Requirement, ...]:
    """Everything the row ``name`` needs of this problem, in the order checked."""
    entry = SOLVER_TABLE[name]
    if problem.data.rows_local:
        return entry.requires
    if entry.on_blocks is not None:
        return (*entry.on_blocks, *entry.requires)
    own = entry.requires
    return (*ON_BLOCKS_ELSEWHERE, *own, *(() if GRAM_TOL in own else (GRAM_TOL,)))


def check_requirements(name: str, problem: Problem) -> None:
    """Raise a ``ValueError`` naming the first requirement of the row ``name`` that the
    problem misses (:data:`SOLVER_TABLE`); return quietly when all hold."""
    for req in _requirements(name, problem):
        if not req.holds(problem):
            raise ValueError(req.missing(problem, SOLVER_TABLE[name].answers))


def choose_row(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float, *,
               solver: str = "auto", tol: float = 1e-4, ref: Reference | None = None) -> str:
    """The key of the :data:`SOLVER_TABLE` row that runs a problem (``ref``: the problem at
    W = 0, which the regimes read where given): for ``"auto"`` the first
    of :data:`AUTO_ORDER` whose own requirements hold, for a named solver the first row
    answering to it whose requirements hold, leaving out the routes only ``"auto"`` takes
    (``auto_only``; else its own row, whose check names what is missing); then checked with
    what task blocks held elsewhere need (a ``ValueError``)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")
    problem = Problem(data, datafit, penalty, alpha, tol, ref)
    rows = [key for key in AUTO_ORDER if solver == "auto" or (
        solver == SOLVER_TABLE[key].answers and not SOLVER_TABLE[key].auto_only)]
    row = next((key for key in rows
                if all(req.holds(problem) for req in SOLVER_TABLE[key].requires)),
               AUTO_ORDER[-1] if solver == "auto" else solver)
    check_requirements(row, problem)  # (and what task blocks held elsewhere need)
    return row


def run_solver(solver: str, data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
               W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool, tol: float,
               max_iter: int, verbose: int, options: dict, inner: Callable[..., SolverResult],
               V0: np.ndarray | None = None) -> SolverResult:
    """Run the row of :data:`SOLVER_TABLE` that :func:`choose_row` picks for ``solver`` from
    ``(W, b)``; ``inner`` is the solve the stages of majorize-minimize call."""
    row = choose_row(data, datafit, penalty, alpha, solver=solver, tol=tol, ref=ref)
    call = Call(data, datafit, penalty, alpha, ref, fit_intercept, tol, max_iter, verbose,
                options, inner)
    return SOLVER_TABLE[row].run(call, Start(W, b, V0))


def choose_solver(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float, *,
                  solver: str = "auto", tol: float = 1e-4) -> str:
    """The name of the solver :func:`~regmtl.solvers.solve` runs for a problem.

    ``"auto"`` takes the first of :data:`AUTO_ORDER` whose requirements hold; a named solver
    is checked against its own. Task blocks held elsewhere need Gram form for all.

    Parameters
    ----------
    data : TaskBlocks
        The problem (:class:`~regmtl.TaskData`, or task blocks on Dask).
    datafit : Datafit
        The loss.
    penalty : Penalty
        The penalty.
    alpha : float
        Overall strength.
    solver : {"auto", "bcd", "fista", "cg", "admm"}, default="auto"
        The solver asked for.
    tol : float, default=1e-4
        The tolerance of the solve.

    Returns
    -------
    str
        The solver's name, a key of :data:`SOLVER_TABLE` (its ``regime`` says what made it
        the choice; :func:`choose_row` gives the row within it that runs).

    Raises
    ------
    ValueError
        For an unknown solver, or one whose requirements the problem misses (the message
        names what is missing).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers.policy import choose_solver
    >>> rng = np.random.default_rng(0)
    >>> data = rm.as_task_data(rng.standard_normal((50, 8)), rng.standard_normal((50, 3)))
    >>> pens = (rm.L21(), rm.L2(), rm.MeanRegularized(), rm.Trace(), rm.SparseLowRank())
    >>> [choose_solver(data, rm.Quadratic(), pen, 0.1) for pen in pens]
    ['bcd', 'direct', 'cg', 'admm', 'admm']
    """
    row = choose_row(data, datafit, penalty, alpha, solver=solver, tol=tol)
    return SOLVER_TABLE[row].answers


def penalty_solver(datafit: Datafit, penalty: Penalty, alpha: float = 1.0) -> str:
    """The iterative solver ``"auto"`` runs for a loss and a penalty on data in memory, read
    from the requirements that need no data: ``"bcd"``, ``"cg"`` or ``"fista"`` (an exact
    ridge may still replace it)."""
    problem = Problem(None, datafit, penalty, alpha, 1e-4)
    for key in AUTO_ORDER:
        entry = SOLVER_TABLE[key]
        if entry.answers in ("bcd", "cg", "fista") and all(
                req.holds(problem) for req in entry.requires if not req.on_data):
            return entry.answers
    return "fista"
