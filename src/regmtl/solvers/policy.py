r"""The choice of a solver: what each solver needs, one table, one checker.

Each solver declares its requirements (as skglm's ``_penalty_required_attr``): block coordinate
descent a penalty with a block step (``penalty.bcd_params``) and the rows in this process;
conjugate gradients the squared loss with a penalty ``alpha / 2 tr(W K W^T)`` given as an
operator; the exact ridge the squared loss with a pure ridge on tasks of more rows than
features; ADMM the squared loss with a penalty of W itself and tasks whose quadratics can be
solved exactly (in Gram or row-space form); FISTA nothing. :data:`SOLVER_TABLE` maps a name
to (function, requirements, why); ``"auto"`` takes the first entry of :data:`AUTO_ORDER` whose
requirements hold, and :func:`check_requirements` writes the error that names what is
missing. Task blocks held elsewhere (``data.rows_local`` False,
:class:`~regmtl.blocks.TaskBlocks`) need Gram form for every solver: the per-task
quadratics, a penalty whose prox works on blocks, and a ``tol`` the Gram sums can certify.

:func:`bcd` and :func:`fista` are the public entries of the two iterative families: each runs
its squared-loss solver or, for the logistic loss, the matching proximal Newton.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import PENALTY_NAMES, GraphLaplacian, Penalty
from ._kernels import LOGISTIC, QUADRATIC
from .bcd import least_squares_bcd
from .certificates import Reference
from .kernel_quadratic import kernel_applies, newton_budget
from .linear import conjugate_gradient, has_linear_path, ridge_solve
from .newton import prox_newton
from .prox_grad import fista as proximal_gradient
from .quadratic import MAX_FEATURES, quadratic_applies
from .result import SolverResult
from .splitting import admm as split_admm
from .splitting import exact_solves_apply
from .stationary import stationary_bcd
from .structured_newton import structured_newton

__all__ = ["Problem", "Requirement", "SolverEntry", "SOLVER_TABLE", "AUTO_ORDER", "SOLVERS",
           "choose_solver", "check_requirements", "penalty_solver", "admm", "bcd", "fista"]

#: The names a user may pass as ``solver=``.
SOLVERS = ("auto", "bcd", "fista", "cg", "admm")


class Problem(NamedTuple):
    """What a solver is chosen for."""

    data: TaskBlocks
    datafit: Datafit
    penalty: Penalty
    alpha: float
    tol: float


@dataclass(frozen=True)
class Requirement:
    """A condition a solver needs: ``holds(problem)``, and ``missing(problem, solver)`` the
    error text when it does not. ``on_data``: it reads the data (else only the loss, the
    penalty and alpha)."""

    name: str
    holds: Callable[[Problem], bool]
    missing: Callable[[Problem, str], str]
    on_data: bool = True


def _penalty_names(provides: Callable[[type], bool]) -> str:
    """The names of the penalties (``penalty=`` strings, and GraphLaplacian's) whose class
    provides something, for messages."""
    names = [cls.name for cls in (*PENALTY_NAMES.values(), GraphLaplacian) if provides(cls)]
    return ", ".join(names)


def _has_block_step(cls: type) -> bool:
    return cls.bcd_params is not Penalty.bcd_params


def _has_operator(cls: type) -> bool:
    return callable(getattr(cls, "apply", None)) and callable(getattr(cls, "kernel_diagonal",
                                                                      None))


ROW_SEPARABLE = Requirement(
    "a row-separable penalty (a block step, ``penalty.bcd_params``)",
    lambda pb: pb.penalty.bcd_params(pb.alpha) is not None,
    lambda pb, name: (
        f"solver={name!r} needs a row-separable penalty ({_penalty_names(_has_block_step)}); "
        f"{pb.penalty!r} is solved by solver='fista' (or 'auto')."),
    on_data=False,
)
LINEAR_PATH = Requirement(
    "the squared loss with a quadratic task-coupling penalty (``apply``, ``kernel_diagonal``)",
    lambda pb: has_linear_path(pb.datafit, pb.penalty),
    lambda pb, name: (
        f"solver={name!r} solves the squared loss with a quadratic task-coupling penalty "
        f"({_penalty_names(_has_operator)}); use solver='auto' for {pb.penalty!r} with the "
        f"{pb.datafit.name} loss."),
    on_data=False,
)
EXACT_PROX = Requirement(
    "a closed-form prox (``penalty.has_prox``)",
    lambda pb: getattr(pb.penalty, "has_prox", True),
    lambda pb, name: (
        f"solver={name!r} steps with the penalty's prox, which {pb.penalty!r} does not have "
        "in closed form: use solver='auto' or 'bcd'."),
    on_data=False,
)
SQUARED_LOSS = Requirement(
    "the squared loss",
    lambda pb: pb.datafit.code == QUADRATIC,
    lambda pb, name: f"solver={name!r} needs the squared loss, not the {pb.datafit.name} loss.",
    on_data=False,
)
PURE_RIDGE = Requirement(
    "a pure ridge (``penalty.ridge_strength``)",
    lambda pb: pb.penalty.ridge_strength(pb.alpha) is not None,
    lambda pb, name: f"solver={name!r} needs a pure ridge penalty, not {pb.penalty!r}.",
    on_data=False,
)
GRAM_FORM = Requirement(
    "per-task Grams (more rows than features in all)",
    lambda pb: quadratic_applies(pb.data),
    lambda pb, name: (
        f"A fit on Dask runs on per-task Grams, which needs more rows than features in "
        f"all ({pb.data.n_obs} rows < {pb.data.n_tasks} tasks x {pb.data.n_features} "
        f"features, or more than {MAX_FEATURES} features); fit this problem in memory, or "
        "select features first."),
)
GRAM_TOL = Requirement(
    "tol >= 1e-12 (the rounding floor of Gram sums)",
    lambda pb: pb.tol >= 1e-12,
    lambda pb, name: (
        f"tol={pb.tol:g} is below what a fit from Gram sums can certify (1e-12)."),
)
ROWS_LOCAL = Requirement(
    "the rows in this process (``data.rows_local``)",
    lambda pb: pb.data.rows_local,
    lambda pb, name: (
        f"solver={name!r} runs in memory only; on Dask input use solver='auto' (FISTA on the "
        "per-task Grams, or conjugate gradients for mean/graph)."),
)
BLOCK_PENALTY = Requirement(
    "a penalty whose prox works on task blocks (``penalty.distributable``)",
    lambda pb: pb.penalty.distributable,
    lambda pb, name: (
        f"{pb.penalty!r} is not available on Dask input (its prox needs the whole W in one "
        f"place); use {_penalty_names(lambda cls: cls.distributable)}, or fit in memory."),
    on_data=False,
)
PLAIN_VARIABLE = Requirement(
    "a penalty of W itself (no lifted variable)",
    lambda pb: pb.penalty.spread(np.ones((1, 1))).size == 1,
    lambda pb, name: (
        f"solver={name!r} needs a penalty of W itself; {pb.penalty!r} splits W into parts: "
        "use solver='fista' (or 'auto')."),
    on_data=False,
)
EXACT_SOLVES = Requirement(
    "per-task quadratics solved exactly (Gram form, or row-space form for wide tasks)",
    lambda pb: exact_solves_apply(pb.data),
    lambda pb, name: (
        f"solver={name!r} solves each task's quadratic exactly, in Gram form (more rows than "
        f"features in all) or in row-space form (the tasks' kernels, sum n_t^2 numbers, at "
        f"most 4 times the design); this problem ({pb.data.n_obs} rows, "
        f"{pb.data.n_tasks} tasks, {pb.data.n_features} features) has neither: use "
        "solver='fista' (or 'auto')."),
)
#: What every solver needs of task blocks held elsewhere (before its own requirements).
ON_BLOCKS_ELSEWHERE = (GRAM_FORM, BLOCK_PENALTY)


# ------------------------------------------------------------------------ the entries
def bcd(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    verbose: int = 0,
    working_set: bool = True,
    screening: bool = True,
    anderson: int = 5,
    gram: bool | str = "auto",
    p0: int = 10,
) -> SolverResult:
    """Block coordinate descent over features, for row-separable penalties.

    A block is one feature across all tasks (row ``W_j``), minimized exactly (soft-thresholding
    for entrywise penalties, the group prox for L2,1). An outer loop computes the duality gap,
    discards the features the gap-safe rules prove zero, and solves the problem restricted to
    a working set of the support plus the worst violators of the optimality conditions; inner
    epochs are Anderson-extrapolated. The logistic loss runs as proximal Newton over the same
    working sets. ``working_set``, ``screening``, ``anderson`` and ``gram`` change how the
    optimum is reached, not where it is.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        A row-separable penalty (``L1``, ``L2``, ``ElasticNet``, ``L21``).
    alpha : float
        Overall strength, >= 0.
    W : ndarray of shape (p, T)
        Starting coefficients, modified in place.
    b : ndarray of shape (T,)
        Starting intercepts, modified in place.
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Relative duality gap (or KKT residual at ``alpha = 0``) to reach.
    max_iter : int, default=1000
        Bound on the epochs (proximal Newton steps for the logistic loss).
    verbose : int, default=0
        Print the certificate at every check when > 0.
    working_set : bool, default=True
        Solve growing subproblems on working sets of features.
    screening : bool, default=True
        Discard features by the gap-safe rules (not for the nonconvex penalties, ``MCP``,
        ``SCAD``, ``CappedL1``: no duality gap; they run block coordinate descent with working
        sets to a stationary point, certified by the KKT residual).
    anderson : int, default=5
        Iterates per Anderson extrapolation (0 for none).
    gram : bool or "auto", default="auto"
        Run epochs on the Gram matrix (squared loss on a shared dense design without sample
        weights or missing labels); ``"auto"`` when it pays.
    p0 : int, default=10
        The smallest working set (over the data, at least ``p // 16``).

    Returns
    -------
    SolverResult
        The solution and its certificate.

    Raises
    ------
    ValueError
        If the penalty is not row-separable.

    See Also
    --------
    regmtl.solvers.solve : Picks the solver and checks the options.
    regmtl.solvers.fista : For the other penalties.

    References
    ----------
    Massias, Gramfort & Salmon (2018), "Celer: a fast solver for the lasso with dual
    extrapolation", ICML; Ndiaye, Fercoq, Gramfort & Salmon (2017), "Gap safe screening rules
    for sparsity enforcing penalties", JMLR 18.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import bcd, reference
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> W, b = np.zeros((8, 3)), ref.b0.copy()
    >>> res = bcd(data, rm.Quadratic(), rm.L21(), 0.1, W, b, ref=ref)
    >>> res.converged, res.certificate.kind
    (True, 'duality_gap')
    """
    params = penalty.bcd_params(alpha)
    if params is None:
        raise ValueError(f"{penalty!r} is not row-separable: use solver='fista'.")
    if penalty.nonconvex:  # to a stationary point, certified by the KKT residual
        return stationary_bcd(data, datafit, penalty, alpha, W, b, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              verbose=verbose, working_set=working_set, anderson=anderson,
                              gram=gram, p0=p0)
    if datafit.code != QUADRATIC:
        has_dual = penalty.has_dual and alpha > 0
        return prox_newton(data, datafit, penalty, alpha, W, b, params, ref=ref,
                           fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                           verbose=verbose, working_set=working_set and has_dual,
                           screening=screening and has_dual, p0=p0)
    return least_squares_bcd(data, datafit, penalty, alpha, W, b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                             verbose=verbose, working_set=working_set, screening=screening,
                             anderson=anderson, gram=gram, p0=p0)


def fista(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
    V0: np.ndarray | None = None,
) -> SolverResult:
    """Accelerated proximal gradient (FISTA) with backtracking and adaptive restart.

    Works with any penalty that has a ``prox``. The iteration runs on the penalty's variable
    ``V`` (``W = penalty.compose(V)``; ``V = W`` for all but the dirty models), in centered
    coordinates when intercepts are fitted; the step ``1 / L`` starts from a power-iteration
    estimate of the data term's curvature and doubles until the quadratic upper bound holds,
    and momentum restarts when it points against the last step. The intercepts are minimized
    exactly before every certificate. The line search is bounded: when no step passes (the
    loss at its rounding floor) the solve stops and says it stalled. The logistic loss on
    tasks with more rows than features runs as proximal Newton with each model in Gram form
    (``regmtl.solvers.structured_newton``); on wide tasks with a penalty of W itself, proximal
    gradient hands over to proximal Newton with row-space models when, after the cost of a
    few of them (``regmtl.solvers.kernel_quadratic.newton_budget``), its rate predicts as
    much again.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        Any penalty.
    alpha : float
        Overall strength, >= 0.
    W : ndarray of shape (p, T)
        Starting coefficients (lifted by ``penalty.lift`` unless ``V0`` is given).
    b : ndarray of shape (T,)
        Starting intercepts.
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Relative certificate to reach.
    max_iter : int, default=5000
        Iterations.
    check_every : int, default=10
        Iterations between certificates.
    verbose : int, default=0
        Print the certificate at every check when > 0.
    V0 : ndarray, optional
        Starting lifted variable (a warm start of ``Dirty`` or ``SparseLowRank``).

    Returns
    -------
    SolverResult
        The solution at the last certificate, and that certificate.

    See Also
    --------
    regmtl.solvers.solve : Picks the solver.
    regmtl.solvers.bcd : Faster for row-separable penalties.

    References
    ----------
    Beck & Teboulle (2009), "A fast iterative shrinkage-thresholding algorithm for linear
    inverse problems", SIAM Journal on Imaging Sciences 2(1); O'Donoghue & Candes (2015),
    "Adaptive restart for accelerated gradient schemes", Foundations of Computational
    Mathematics 15(3).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import fista, reference
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> res = fista(data, rm.Quadratic(), rm.Trace(), 0.1, np.zeros((8, 3)), ref.b0.copy(),
    ...             ref=ref)
    >>> res.converged, res.certificate.kind
    (True, 'duality_gap')
    """
    if datafit.code == LOGISTIC and quadratic_applies(data) and tol >= 1e-12:
        V = penalty.lift(W) if V0 is None else np.array(V0, dtype=np.float64)
        return structured_newton(data, datafit, penalty, alpha, V, b, ref=ref,
                                 fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                                 verbose=verbose)
    wide_newton = (datafit.code == LOGISTIC and tol >= 1e-12 and kernel_applies(data)
                   and PLAIN_VARIABLE.holds(Problem(data, datafit, penalty, alpha, tol)))
    res = proximal_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                            fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                            check_every=check_every, verbose=verbose, V0=V0,
                            crawl_budget=newton_budget(data) if wide_newton else None)
    if not wide_newton or res.converged or res.n_iter >= max_iter:
        return res
    # wide tasks on which proximal gradient crawls (its rate after the cost of a few Newton
    # models predicts as much again): proximal Newton in row-space form from its point
    more = structured_newton(data, datafit, penalty, alpha, res.V, res.b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol,
                             max_iter=max_iter - res.n_iter, verbose=verbose)
    more.n_iter += res.n_iter
    return more


def admm(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    W: np.ndarray,
    b: np.ndarray,
    *,
    ref: Reference,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 5000,
    check_every: int = 10,
    verbose: int = 0,
) -> SolverResult:
    r"""The alternating direction method of multipliers with exact per-task solves.

    For the squared loss and a penalty of W itself (``Trace``, ``Clustered``, ...), it splits
    ``W = Z`` and alternates one exact solve per task, ``w_t = (H_t + rho I)^{-1} (g_t + rho
    (z_t - u_t))``, with the penalty's prox at ``W + U`` and a step of the multiplier ``U``.
    The solves come from one eigendecomposition per task of its Gram ``H_t`` (p x p, kept
    for every ``rho``) when the tasks have more rows than features, else from the Cholesky
    factor of its kernel ``B_t B_t' + rho I`` (n_t x n_t, by the Woodbury identity; factored
    again when ``rho`` moves). ``rho`` starts at a fraction of the tasks' typical curvature
    (in row-space form growing with ``alpha``) and is balanced between the primal and dual
    residuals. The result is certified on the
    data; where the Gram sums' rounding keeps it above ``tol``, FISTA finishes from it.

    Parameters
    ----------
    data : TaskData
        The problem.
    datafit : Datafit
        The squared loss, :class:`~regmtl.Quadratic`.
    penalty : Penalty
        A penalty of W itself (no lifted variable).
    alpha : float
        Overall strength, >= 0.
    W : ndarray of shape (p, T)
        Starting coefficients.
    b : ndarray of shape (T,)
        Starting intercepts (minimized out of the quadratic; used by a finishing FISTA).
    ref : Reference
        The problem at W = 0 (:func:`~regmtl.solvers.reference`).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Relative certificate to reach.
    max_iter : int, default=5000
        Iterations.
    check_every : int, default=10
        Iterations between certificates.
    verbose : int, default=0
        Print the certificate at every check when > 0.

    Returns
    -------
    SolverResult
        The solution and its certificate.

    Raises
    ------
    ValueError
        If the loss, the penalty or the data do not allow exact per-task solves (the message
        names what is missing).

    See Also
    --------
    regmtl.solvers.solve : Picks the solver.
    regmtl.solvers.fista : For any loss and penalty.

    References
    ----------
    Boyd, Parikh, Chu, Peleato & Eckstein (2011), "Distributed optimization and statistical
    learning via the alternating direction method of multipliers", Foundations and Trends in
    Machine Learning 3(1).

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import admm, reference
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((20, 50)) for _ in range(4)]  # wide tasks
    >>> ys = [X[:, :3].sum(axis=1) + 0.1 * rng.standard_normal(20) for X in Xs]
    >>> data = rm.as_task_data(Xs, ys)
    >>> ref = reference(data, rm.Quadratic(), True)
    >>> res = admm(data, rm.Quadratic(), rm.Trace(), 0.1, np.zeros((50, 4)), ref.b0.copy(),
    ...            ref=ref, tol=1e-8)
    >>> res.converged, res.certificate.kind
    (True, 'duality_gap')
    """
    check_requirements("admm", Problem(data, datafit, penalty, alpha, tol))
    res = split_admm(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
                     tol=tol, max_iter=max_iter, check_every=check_every, verbose=verbose)
    left = max_iter - res.n_iter
    if res.converged or left <= 0 or not data.rows_local:
        return res
    # the Gram sums met tol but the data do not (their rounding): FISTA finishes on the data
    more = fista(data, datafit, penalty, alpha, res.W, res.b, ref=ref,
                 fit_intercept=fit_intercept, tol=tol, max_iter=left, check_every=check_every,
                 verbose=verbose)
    more.n_iter += res.n_iter
    return more


def _run_direct(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                verbose, V0, options):
    return ridge_solve(data, datafit, penalty, alpha, ref=ref, fit_intercept=fit_intercept,
                       tol=tol)


def _run_bcd(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
             verbose, V0, options):
    if penalty.nonconvex and options.get("screening") is True:
        raise ValueError(
            f"solver_options['screening']=True: {penalty!r} is not convex, so there is no "
            "duality gap and no gap-safe rule to screen with (its fits are certified by the "
            "KKT residual); leave 'screening' out, or set it to False.")
    return bcd(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
               tol=tol, max_iter=max_iter, verbose=verbose, **options)


def _run_cg(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
            verbose, V0, options):
    return conjugate_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              verbose=verbose)


def _run_admm(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
              verbose, V0, options):
    return admm(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
                tol=tol, max_iter=max_iter, verbose=verbose)


def _run_fista(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
               verbose, V0, options):
    return fista(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
                 tol=tol, max_iter=max_iter, verbose=verbose, V0=V0)


# ------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class SolverEntry:
    """A solver: ``run(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
    max_iter, verbose, V0, options)``, what it ``requires`` (in the order checked) and
    ``why`` ``"auto"`` picks it."""

    run: Callable[..., SolverResult]
    requires: tuple[Requirement, ...]
    why: str


SOLVER_TABLE: dict[str, SolverEntry] = {
    "direct": SolverEntry(
        _run_direct, (SQUARED_LOSS, PURE_RIDGE, GRAM_TOL, GRAM_FORM),
        "the squared loss with a pure ridge on tasks with more rows than features: solved "
        "exactly, per task, from the Gram's eigendecomposition"),
    "bcd": SolverEntry(
        _run_bcd, (ROWS_LOCAL, ROW_SEPARABLE),
        "a row-separable penalty: block coordinate descent over features with working sets, "
        "screening and Anderson extrapolation (proximal Newton for the logistic loss)"),
    "cg": SolverEntry(
        _run_cg, (LINEAR_PATH,),
        "the squared loss with a quadratic task-coupling penalty: the optimum solves a linear "
        "system, by preconditioned conjugate gradients"),
    "admm": SolverEntry(
        _run_admm, (SQUARED_LOSS, PLAIN_VARIABLE, EXACT_PROX, GRAM_TOL, EXACT_SOLVES),
        "the squared loss with a penalty of W itself: ADMM with every task's quadratic solved "
        "exactly (Gram form for long tasks, row-space form for wide ones), tens of steps where "
        "proximal gradient needs hundreds"),
    "fista": SolverEntry(
        _run_fista, (EXACT_PROX,),
        "any penalty with a prox: accelerated proximal gradient (proximal Newton in Gram "
        "form for the logistic loss)"),
}
#: The order in which ``solver="auto"`` tries the table.
AUTO_ORDER = ("direct", "bcd", "cg", "admm", "fista")


def _requirements(name: str, problem: Problem) -> tuple[Requirement, ...]:
    """Everything the solver ``name`` needs of this problem, in the order checked."""
    if problem.data.rows_local:
        return SOLVER_TABLE[name].requires
    own = SOLVER_TABLE[name].requires
    return (*ON_BLOCKS_ELSEWHERE, *own, *(() if GRAM_TOL in own else (GRAM_TOL,)))


def check_requirements(name: str, problem: Problem) -> None:
    """Raise a ``ValueError`` naming the first requirement of solver ``name`` that the
    problem misses (:data:`SOLVER_TABLE`); return quietly when all hold."""
    for req in _requirements(name, problem):
        if not req.holds(problem):
            raise ValueError(req.missing(problem, name))


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
        A key of :data:`SOLVER_TABLE` (its ``why`` says what made it the choice).

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
    ['bcd', 'direct', 'cg', 'admm', 'fista']
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")
    problem = Problem(data, datafit, penalty, alpha, tol)
    if solver == "auto":  # the first whose own requirements hold (FISTA: only a prox)
        solver = next((name for name in AUTO_ORDER
                       if all(req.holds(problem) for req in SOLVER_TABLE[name].requires)),
                      AUTO_ORDER[-1])
    check_requirements(solver, problem)  # (and what task blocks held elsewhere need)
    return solver


def penalty_solver(datafit: Datafit, penalty: Penalty, alpha: float = 1.0) -> str:
    """The iterative solver ``"auto"`` runs for a loss and a penalty on data in memory, read
    from the requirements that need no data: ``"bcd"``, ``"cg"`` or ``"fista"`` (an exact
    ridge may still replace it where the tasks have more rows than features)."""
    problem = Problem(None, datafit, penalty, alpha, 1e-4)
    for name in ("bcd", "cg", "fista"):
        if all(req.holds(problem) for req in SOLVER_TABLE[name].requires if not req.on_data):
            return name
    return "fista"
