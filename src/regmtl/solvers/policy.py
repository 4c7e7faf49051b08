r"""The choice of a solver: what each solver needs, one table, one checker.

Each solver declares its requirements (as skglm's ``_penalty_required_attr``): block coordinate
descent a penalty with a block step (``penalty.bcd_params``) and the rows in this process;
conjugate gradients the squared loss with a penalty ``alpha / 2 tr(W K W^T)`` given as an
operator; the exact ridge the squared loss with a pure ridge (in Gram or row-space form);
ADMM the squared loss with a penalty of W itself and tasks whose quadratics can be
solved exactly (in Gram or row-space form); FISTA nothing. :data:`SOLVER_TABLE` maps a row
to (function, requirements, why, the solver name it answers to); ``"auto"`` takes the first
row of :data:`AUTO_ORDER` whose requirements hold, and :func:`check_requirements` writes the
error that names what is missing. Task blocks held elsewhere (``data.rows_local`` False,
:class:`~regmtl.blocks.TaskBlocks`) need Gram form for every solver: the per-task
quadratics, a penalty whose prox works on blocks, and a ``tol`` the Gram sums can certify.

A row of the table is one function that does the work: the families a user names
(``solver="bcd"``, ``"fista"``, ...) have a row per method (least squares or proximal
Newton, a stationary point of a nonconvex penalty, majorize-minimize stages for a penalty that
declares ``majorized``), each with its own requirements; the table is the one dispatch
(:func:`choose_row`, :func:`run_solver`). The majorize-minimize row receives the solve of its
stages as an argument (``inner``): nothing here imports :mod:`~regmtl.solvers.solve`. A
runner imports its solver's module when it first runs (coordinate descent, proximal Newton on
the rows, FISTA, ...), so that a small fit loads only what its row needs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import PENALTY_CLASSES, Penalty
from .certificates.certify import Reference
from .methods.linear import conjugate_gradient, has_linear_path, ridge_solve
from .methods.linear_program import LP_FORMS, linear_program
from .methods.low_rank_subspace import subspace_applies, subspace_solve
from .methods.small_squares import (
    SMALL_SQUARES_ROWS,
    SMALL_SQUARES_SIZE,
    small_least_squares,
    small_squares_applies,
)
from .methods.splitting import admm as split_admm
from .methods.splitting import exact_solves_apply
from .methods.structured_newton import coordinate_models, small_applies, structured_newton
from .names import SOLVERS
from .parts.interior_point import (
    CONE_FORMS,
    IPM_SIZE,
    LAD_ALPHA,
    LAD_SHARE,
    huber_rows,
    interior_point,
    lad_regime,
    pinball_rows,
)
from .parts.kernel_quadratic import kernel_applies, newton_budget
from .parts.newton_model import is_task_kernel
from .parts.quadratic import MAX_FEATURES, quadratic_applies
from .parts.row_space_cg import MAX_TASKS, row_space_applies, row_space_cg
from .parts.softmax_newton import SOFTMAX_KINDS, softmax_newton
from .parts.spectral_barrier import SPECTRAL_SIZE, spectral_barrier
from .result import SolverResult

__all__ = ["Problem", "Requirement", "SolverEntry", "SOLVER_TABLE", "AUTO_ORDER", "SOLVERS",
           "choose_solver", "choose_row", "check_requirements", "penalty_solver", "run_solver"]

class Problem(NamedTuple):
    """What a solver is chosen for (``ref``: the problem at W = 0, where the solve has it)."""

    data: TaskBlocks
    datafit: Datafit
    penalty: Penalty
    alpha: float
    tol: float
    ref: Reference | None = None


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
    """The names of the penalties (``penalty=`` strings, and the graph's) whose class
    provides something, for messages."""
    names = [cls.name for cls in PENALTY_CLASSES.values() if provides(cls)]
    return ", ".join(names)


def _has_block_step(cls: type) -> bool:
    return cls.bcd_params is not Penalty.bcd_params or cls.majorized


def _has_operator(cls: type) -> bool:
    return callable(getattr(cls, "apply", None)) and callable(getattr(cls, "kernel_diagonal",
                                                                      None))


ROW_SEPARABLE = Requirement(
    "a row-separable penalty (a block step, ``penalty.bcd_params``, or majorize-minimize "
    "stages, ``penalty.majorized``)",
    lambda pb: pb.penalty.majorized or pb.penalty.bcd_params(pb.alpha) is not None,
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
ROW_SPACE_COUPLING = Requirement(
    f"wide tasks (row-space form, at most {MAX_TASKS} tasks) and alpha > 0 with a coupling "
    "of positive diagonal (a graph with edges)",
    lambda pb: row_space_applies(pb.data, pb.penalty, pb.alpha),
    lambda pb, name: (
        f"solver={name!r} runs in row-space form on wide tasks in memory (fewer rows than "
        f"features, at most {MAX_TASKS} tasks) with alpha > 0."),
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
    lambda pb: pb.datafit.quadratic,
    lambda pb, name: f"solver={name!r} needs the squared loss, not the {pb.datafit.name} loss.",
    on_data=False,
)
PURE_RIDGE = Requirement(
    "a pure ridge (``penalty.ridge_strength``)",
    lambda pb: pb.penalty.ridge_strength(pb.alpha) is not None,
    lambda pb, name: f"solver={name!r} needs a pure ridge penalty, not {pb.penalty!r}.",
    on_data=False,
)
SMOOTH_PENALTY = Requirement(
    "a pure ridge (``penalty.ridge_strength``), or a task kernel with the multinomial loss "
    "(``alpha / 2 tr(W K W^T)`` on its classes' layout: FISTA crawls there)",
    lambda pb: pb.penalty.ridge_strength(pb.alpha) is not None or (
        pb.datafit.coupled and is_task_kernel(pb.penalty) and np.ndim(pb.alpha) == 0),
    lambda pb, name: f"solver={name!r} needs a smooth penalty, not {pb.penalty!r}.",
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
BOXED_STEP = Requirement(
    "a block step under a box or with free rows (``penalty.boxed_step``)",
    lambda pb: getattr(pb.penalty, "boxed_step", None) is not None
    and pb.penalty.boxed_step(pb.alpha) is not None,
    lambda pb, name: (
        f"solver={name!r} takes the penalty factors and bounds of a penalty of entries or rows "
        f"(l1, l2, elasticnet, l21); {pb.penalty!r} here is not one: use solver='auto' or "
        "'fista'."),
    on_data=False,
)
BOXED_LOSS = Requirement(
    "the squared loss, or a smooth loss with curvature on every row (proximal Newton)",
    lambda pb: pb.datafit.quadratic or (pb.datafit.smooth and not pb.datafit.coupled
                                        and not pb.datafit.piecewise_quadratic),
    lambda pb, name: (
        f"solver={name!r} under a box takes the squared, logistic, Poisson or Gamma loss, not "
        f"the {pb.datafit.name} loss: use solver='auto' or 'fista'."),
    on_data=False,
)
DENSE_ROWS = Requirement(
    "a dense design in this process",
    lambda pb: bool(pb.data.rows_local) and not sp.issparse(pb.data.X),
    lambda pb, name: f"solver={name!r} under a box runs on a dense design in memory.",
)
BLOCK_PENALTY = Requirement(
    "a penalty whose prox works on task blocks (``penalty.distributable``)",
    lambda pb: pb.penalty.distributable,
    lambda pb, name: (
        f"{pb.penalty!r} is not available on Dask input ({pb.penalty.blocks_refusal}); use "
        f"{_penalty_names(lambda cls: cls.distributable)}, or fit in memory (compute the "
        "Dask input first)."),
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
SUM_OF_PARTS = Requirement(
    "a penalty of parts summing to W (``W = P + Q``, ``penalty.sums_parts``)",
    lambda pb: pb.penalty.sums_parts,
    lambda pb, name: (
        f"solver={name!r} needs a penalty of parts summing to W (SparseLowRank, "
        f"RobustLowRank, RobustFeatures), not {pb.penalty!r}: use solver='auto'."),
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
SMOOTH_ON_BLOCKS = Requirement(
    "a smooth loss (``datafit.smooth``), or the pinball loss (alone, or in a loss list of "
    "squared and Huber tasks) on its primal-dual row",
    lambda pb: pb.datafit.smooth,
    lambda pb, name: (
        f"{pb.datafit!r} is not smooth: on Dask input the smooth losses are fitted (squared, "
        "logistic, poisson, gamma, huber, the multinomial, and lists of them), and the "
        "quantile loss, alone or in a list with squared and Huber tasks, with a convex "
        "penalty that has a prox (primal-dual iterations on the blocks, each row's dual step "
        "in closed form). Beside logistic, Poisson or Gamma tasks a quantile task has no such "
        "iteration (their conjugates' steps are an equation per row, not a closed form), and "
        "the smoothed stages that fit such a list in memory read every row's residual at "
        "each stage: compute the Dask input first."),
    on_data=False,
)
#: What every solver needs of task blocks held elsewhere (before its own requirements).
ON_BLOCKS_ELSEWHERE = (SMOOTH_ON_BLOCKS, GRAM_FORM, BLOCK_PENALTY)


MAJORIZED = Requirement(
    "a penalty solved by majorize-minimize over convex stages (``penalty.majorized``)",
    lambda pb: pb.penalty.majorized,
    lambda pb, name: f"solver={name!r} runs majorize-minimize stages, which {pb.penalty!r} "
                     "does not declare.",
    on_data=False,
)
BLOCK_STEP = Requirement(
    "a block step (``penalty.bcd_params``)",
    lambda pb: pb.penalty.bcd_params(pb.alpha) is not None,
    lambda pb, name: f"solver={name!r} needs a block step, which {pb.penalty!r} does not have.",
    on_data=False,
)
NONCONVEX = Requirement(
    "a nonconvex penalty (``penalty.nonconvex``): a stationary point, certified by the KKT "
    "residual",
    lambda pb: pb.penalty.nonconvex,
    lambda pb, name: f"solver={name!r} runs to a stationary point of a nonconvex penalty, "
                     f"and {pb.penalty!r} is convex.",
    on_data=False,
)
CONVEX = Requirement(
    "a convex penalty",
    lambda pb: not pb.penalty.nonconvex,
    lambda pb, name: f"solver={name!r} needs a convex penalty, not {pb.penalty!r}.",
    on_data=False,
)
NEWTON_LOSS = Requirement(
    "a smooth loss other than the squared one (proximal Newton on its quadratic models)",
    lambda pb: pb.datafit.smooth and not pb.datafit.quadratic,
    lambda pb, name: f"solver={name!r} runs proximal Newton, for a loss other than the "
                     "squared one.",
    on_data=False,
)
SMOOTH_LOSS = Requirement(
    "a smooth loss (``datafit.smooth``)",
    lambda pb: pb.datafit.smooth,
    lambda pb, name: (
        f"solver={name!r} steps along the loss's gradient, which the {pb.datafit.name} loss "
        "does not have: use solver='auto' (smoothed stages certified on the loss itself)."),
    on_data=False,
)
SEPARABLE_MODEL = Requirement(
    "a loss whose curvature is one number per score (``datafit.coupled`` False: its Newton "
    "models split over the tasks' columns)",
    lambda pb: not pb.datafit.coupled,
    lambda pb, name: (
        f"solver={name!r} builds Newton models one column at a time, which the "
        f"{pb.datafit.name} loss couples (a row's classes): use solver='fista' (or 'auto')."),
    on_data=False,
)
SOFTMAX_MODEL = Requirement(
    "a loss that couples a row's class scores through a softmax (``datafit.coupled``, on the "
    "classes' layout, ``datafit.class_layout``: each row's K x K curvature diag(p) - p p^T) on "
    "a dense design, with a penalty of entries or rows (L1, L2, elastic net, L2,1)",
    lambda pb: (pb.datafit.coupled and isinstance(pb.data.X, np.ndarray)
                and pb.penalty.bcd_params(pb.alpha).kind in SOFTMAX_KINDS),
    lambda pb, name: (
        f"solver={name!r} runs proximal Newton with a row's K x K curvature, for the "
        f"multinomial loss on a dense design with a penalty of entries or rows; use "
        f"solver='fista' (or 'auto') for {pb.penalty!r}."),
)
UNCOMPILED = Requirement(
    "a loss without compiled kernels (``datafit.code`` None: the logistic loss keeps its "
    "proximal Newton)",
    lambda pb: pb.datafit.code is None,
    lambda pb, name: f"solver={name!r} is run for the losses without compiled kernels.",
    on_data=False,
)
QUASI_NEWTON_TOL = Requirement(
    "tol >= 1e-9 (below, proximal Newton's quadratic convergence pins the coefficients down "
    "further than L-BFGS does at the same certificate)",
    lambda pb: pb.tol >= 1e-9,
    lambda pb, name: f"tol={pb.tol:g} is below what the quasi-Newton row is run for (1e-9).",
)
BOX_DUAL = Requirement(
    "a loss whose conjugate is linear on a box (``datafit.box_dual``: the pinball loss), or "
    "a loss per task with a pinball task whose losses all have a closed-form dual step "
    "(``datafit.has_dual_prox``: squared, Huber, pinball)",
    lambda pb: pb.datafit.box_dual or (not pb.datafit.smooth and pb.datafit.has_dual_prox),
    lambda pb, name: f"solver={name!r} runs primal-dual iterations, for a loss whose "
                     "conjugate is linear on a box (quantile).",
    on_data=False,
)
PIECEWISE_LINEAR_LOSS = Requirement(
    "a piecewise-linear loss (``datafit.piecewise_linear``: the pinball loss)",
    lambda pb: pb.datafit.piecewise_linear,
    lambda pb, name: f"solver={name!r} solves linear programs, for a piecewise-linear loss "
                     "(quantile).",
    on_data=False,
)
LP_PENALTY = Requirement(
    "a penalty that is a linear program (``penalty.linear_program``: the lasso, L1,inf)",
    lambda pb: pb.penalty.linear_program in LP_FORMS,
    lambda pb, name: f"solver={name!r} solves linear programs, which {pb.penalty!r} does "
                     "not write as.",
    on_data=False,
)
PINBALL_ROWS = Requirement(
    "the pinball loss, or a loss list of pinball and squared tasks; or the Huber loss (and "
    "such tasks beside it) in its least-absolute-deviation regime (``interior_point."
    f"lad_regime``: alpha <= {LAD_ALPHA:g} alpha_max and at least {LAD_SHARE:.0%} of the "
    "Huber rows' weight beyond delta at W = 0)",
    lambda pb: pinball_rows(pb.datafit) or lad_regime(pb.data, pb.datafit, pb.penalty,
                                                      pb.alpha, pb.ref),
    lambda pb, name: f"solver={name!r} solves cone programs, for the pinball loss (with "
                     "squared tasks beside it in a loss list), and for the Huber loss where "
                     "most rows are on its linear pieces.",
)
HUBER_ROWS = Requirement(
    "the Huber loss (or such tasks beside squared and pinball ones in a loss list)",
    lambda pb: huber_rows(pb.datafit),
    lambda pb, name: f"solver={name!r} hands the Huber loss over to the interior point.",
    on_data=False,
)
CONE_PENALTY = Requirement(
    "a penalty that is a cone program (``penalty.cone_program``: L2,1 and its elastic net, "
    "L1,inf, mean-regularized) with one alpha",
    lambda pb: pb.penalty.cone_program in CONE_FORMS and np.ndim(pb.alpha) == 0,
    lambda pb, name: f"solver={name!r} solves cone programs, which {pb.penalty!r} does not "
                     "write as.",
    on_data=False,
)
CONE_SIZE = Requirement(
    f"Newton blocks that fit: T (p + 1)^2 <= {IPM_SIZE:,} (the tasks' blocks, inverted each "
    "iteration)",
    lambda pb: pb.data.n_tasks * (pb.data.n_features + 1) ** 2 <= IPM_SIZE,
    lambda pb, name: f"solver={name!r} inverts a block of (p + 1)^2 per task each iteration: "
                     f"{pb.data.n_tasks} tasks of {pb.data.n_features} features are too many.",
)
PINBALL_LOSS = Requirement(
    "the pinball loss (one for all tasks)",
    lambda pb: pb.datafit.piecewise_linear,
    lambda pb, name: f"solver={name!r} is a barrier method for the pinball loss (quantile).",
    on_data=False,
)
SPECTRAL_PENALTY = Requirement(
    "the trace norm (``penalty.cone_program`` ``\"spectral\"``) with one alpha",
    lambda pb: pb.penalty.cone_program == "spectral" and np.ndim(pb.alpha) == 0,
    lambda pb, name: f"solver={name!r} writes the trace norm as linear-matrix inequalities, "
                     f"which {pb.penalty!r} is not.",
    on_data=False,
)
SPECTRAL_STEP = Requirement(
    f"a reduced matrix that fits: p^4 <= {SPECTRAL_SIZE[0]:,} and T p^4 <= "
    f"{SPECTRAL_SIZE[1]:,} (Sigma's p (p + 1) / 2 unknowns, the tasks' Kronecker sums)",
    lambda pb: (pb.data.n_features ** 4 <= SPECTRAL_SIZE[0]
                and pb.data.n_tasks * pb.data.n_features ** 4 <= SPECTRAL_SIZE[1]),
    lambda pb, name: f"solver={name!r} forms a matrix of p^2 x p^2 each step: "
                     f"{pb.data.n_features} features are too many.",
)
NONSMOOTH_LOSS = Requirement(
    "a loss that is not smooth (``datafit.smooth`` False: the pinball loss)",
    lambda pb: not pb.datafit.smooth,
    lambda pb, name: f"solver={name!r} runs smoothed stages, for a loss that is not smooth.",
    on_data=False,
)
NOT_MAJORIZED = Requirement(
    "a penalty not solved by majorize-minimize (whose convex stages the rows of the loss "
    "itself solve)",
    lambda pb: not pb.penalty.majorized,
    lambda pb, name: f"solver={name!r} does not run {pb.penalty!r}, whose majorize-minimize "
                     "stages are solved on the loss itself: use solver='auto'.",
    on_data=False,
)
SMALL_SQUARES = Requirement(
    f"a small fit (several tasks, T p <= m <= {SMALL_SQUARES_ROWS} T p and m p T <= "
    f"{SMALL_SQUARES_SIZE:,}, m the rows counted by their weights over the smallest one) "
    "with a convex penalty of entries or rows and alpha > 0",
    lambda pb: small_squares_applies(pb.data, pb.datafit, pb.penalty, pb.alpha, pb.tol),
    lambda pb, name: (
        f"solver={name!r} runs coordinate descent on the per-task Grams for small fits of "
        "the squared loss only; this problem is fitted over the rows."),
)
ROW_SPACE = Requirement(
    "per-task kernels (row-space form for wide tasks)",
    lambda pb: kernel_applies(pb.data),
    lambda pb, name: f"solver={name!r} needs wide tasks whose kernels fit in memory.",
)

LOW_RANK_SUBSPACE = Requirement(
    "a low-rank penalty of W itself (``penalty.spans_subspace``), or sparse plus low rank "
    "(``penalty.spans_subspace_and_entries``), on wide or sparse tasks (no Gram form) with "
    "p >= 8 T features, in memory",
    lambda pb: ((pb.penalty.spans_subspace or pb.penalty.spans_subspace_and_entries)
                and subspace_applies(pb.data)
                and not quadratic_applies(pb.data)),
    lambda pb, name: (
        f"solver={name!r} restricts a trace-norm problem to a subspace of W's columns, for "
        "wide or sparse tasks with at least 8 features per task held in memory."),
)


# ------------------------------------------------------------------------ the runners
#: The block coordinate descent options and their defaults (``solver_options``).
BCD_DEFAULTS = dict(working_set=True, screening=True, anderson=5, gram="auto", p0=10)


def _bcd_options(penalty: Penalty, options: dict) -> dict:
    """The block coordinate descent options with their defaults; gap-safe screening refused
    for a nonconvex penalty (no duality gap)."""
    if penalty.nonconvex and options.get("screening") is True:
        raise ValueError(
            f"solver_options['screening']=True: {penalty!r} is not convex, so there is no "
            "duality gap and no gap-safe rule to screen with (its fits are certified by the "
            "KKT residual); leave 'screening' out, or set it to False.")
    return {**BCD_DEFAULTS, **{k: v for k, v in options.items() if k in BCD_DEFAULTS}}


def _run_direct(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                verbose, V0, options, inner):
    return ridge_solve(data, datafit, penalty, alpha, ref=ref, fit_intercept=fit_intercept,
                       tol=tol)


def _run_majorize(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                  verbose, V0, options, inner):
    from .methods.majorize import majorize_minimize
    _bcd_options(penalty, options)
    # (a loss that is not smooth: each stage by the row of its own loss, exact)
    return majorize_minimize(data, datafit, penalty, alpha, W, b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                             verbose=verbose, solve=inner,
                             stage_solver="fista" if datafit.smooth else "auto")


def _run_stationary(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                    verbose, V0, options, inner):
    from .methods.stationary import stationary_least_squares
    opts = _bcd_options(penalty, options)
    return stationary_least_squares(
        data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept, tol=tol,
        max_iter=max_iter, verbose=verbose, working_set=opts["working_set"],
        anderson=opts["anderson"], gram=opts["gram"], p0=opts["p0"])


def _run_stationary_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                           max_iter, verbose, V0, options, inner):
    from .methods.stationary import stationary_newton
    opts = _bcd_options(penalty, options)
    return stationary_newton(
        data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept, tol=tol,
        max_iter=max_iter, verbose=verbose, working_set=opts["working_set"],
        anderson=opts["anderson"], p0=opts["p0"])


def _run_prox_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                     max_iter, verbose, V0, options, inner):
    opts = _bcd_options(penalty, options)
    if small_applies(data, datafit, penalty, alpha, tol):
        # a small problem (by its sizes alone, the same in every process): each Newton model
        # in Gram form, solved by coordinate descent on its Grams or by proximal gradient
        return structured_newton(data, datafit, penalty, alpha, penalty.lift(W), b, ref=ref,
                                 fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                                 verbose=verbose,
                                 coordinate=coordinate_models(penalty, alpha))
    from .methods.newton import prox_newton  # (coordinate descent on the rows, and its parts)

    has_dual = penalty.has_dual and alpha > 0
    return prox_newton(data, datafit, penalty, alpha, W, b, penalty.bcd_params(alpha), ref=ref,
                       fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                       verbose=verbose, working_set=opts["working_set"] and has_dual,
                       screening=opts["screening"] and has_dual, p0=opts["p0"])


#: Proximal Newton steps on the Huber loss before the fit goes to the interior point (School,
#: Huber(): every fit of a CV certified within 10; Parkinson's telemonitoring, 42 patients,
#: Huber(): 18 to 44 steps at alpha_max / 30 to / 1000, where the interior point certifies in
#: 9 to 12 of a fifth of the time: the CV 3.1 s where it took 6.1).
HANDOVER = 10


def _run_huber_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                      max_iter, verbose, V0, options, inner):
    res = _run_prox_newton(data, datafit, penalty, alpha, W, b, ref=ref,
                           fit_intercept=fit_intercept, tol=tol,
                           max_iter=min(max_iter, HANDOVER), verbose=verbose, V0=V0,
                           options=options, inner=inner)
    # (the linear pieces have no curvature: the models crawl; the interior point starts
    # afresh, the point reached only placing its first residuals)
    return _go_on(res, _run_interior_point, data, datafit, penalty, alpha, ref=ref,
                  fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, verbose=verbose,
                  options=options, inner=inner)


def _run_small_squares(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                       max_iter, verbose, V0, options, inner):
    # options of coordinate descent over the rows (working sets, screening, extrapolation,
    # Gram form or not): that solver runs, as asked
    if any(key in options for key in BCD_DEFAULTS):
        return _run_bcd(data, datafit, penalty, alpha, W, b, ref=ref,
                        fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                        verbose=verbose, V0=V0, options=options, inner=inner)
    res = small_least_squares(data, datafit, penalty, alpha, W, b, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              verbose=verbose)
    if res.converged or res.n_iter >= max_iter:
        return res
    # the Gram sums' rounding keeps the data's certificate above tol: coordinate descent over
    # the rows finishes from the route's point
    more = _run_bcd(data, datafit, penalty, alpha, res.W, res.b, ref=ref,
                    fit_intercept=fit_intercept, tol=tol, max_iter=max_iter - res.n_iter,
                    verbose=verbose, V0=None, options={"gram": False}, inner=inner)
    more.n_iter += res.n_iter
    return more


def _run_bcd(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
             verbose, V0, options, inner):
    from .methods.bcd import least_squares_bcd
    return least_squares_bcd(data, datafit, penalty, alpha, W, b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                             verbose=verbose, **_bcd_options(penalty, options))


def _run_cg(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
            verbose, V0, options, inner):
    return conjugate_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              verbose=verbose)


def _run_row_space_cg(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                      max_iter, verbose, V0, options, inner):
    return row_space_cg(data, datafit, penalty, alpha, W, ref=ref, fit_intercept=fit_intercept,
                        tol=tol, max_iter=max_iter, verbose=verbose)


def _run_admm(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
              verbose, V0, options, inner):
    check_every = options.get("check_every", 10)
    res = split_admm(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
                     tol=tol, max_iter=max_iter, check_every=check_every, verbose=verbose)
    return _fista_finish(res, data, datafit, penalty, alpha, ref, fit_intercept, tol, max_iter,
                         check_every, verbose, None)


def _run_parts_admm(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                    max_iter, verbose, V0, options, inner):
    from .parts.parts_admm import parts_admm
    check_every = options.get("check_every", 10)
    V = penalty.lift(W) if V0 is None else np.array(V0, dtype=np.float64)
    res = parts_admm(data, datafit, penalty, alpha, V, ref=ref, fit_intercept=fit_intercept,
                     tol=tol, max_iter=max_iter, check_every=check_every, verbose=verbose)
    return _fista_finish(res, data, datafit, penalty, alpha, ref, fit_intercept, tol, max_iter,
                         check_every, verbose, res.V)


def _fista_finish(res, data, datafit, penalty, alpha, ref, fit_intercept, tol, max_iter,
                  check_every, verbose, V0):
    """``res`` of an exact-solve row, or, where the Gram sums met tol but the data do not
    (their rounding), FISTA finishing on the data from it (``V0``: its lifted variable)."""
    left = max_iter - res.n_iter
    if res.converged or left <= 0 or not data.rows_local:
        return res
    from .methods.prox_grad import fista as proximal_gradient

    more = proximal_gradient(data, datafit, penalty, alpha, res.W, res.b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=left,
                             check_every=check_every, verbose=verbose, V0=V0)
    more.n_iter += res.n_iter
    return more


def _run_structured_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                           max_iter, verbose, V0, options, inner):
    V = penalty.lift(W) if V0 is None else np.array(V0, dtype=np.float64)
    return structured_newton(data, datafit, penalty, alpha, V, b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                             verbose=verbose)


def _run_wide_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                     max_iter, verbose, V0, options, inner):
    from .methods.prox_grad import fista as proximal_gradient
    res = proximal_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                            fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                            check_every=options.get("check_every", 10), verbose=verbose,
                            V0=V0, crawl_budget=newton_budget(data))
    if res.converged or res.n_iter >= max_iter:
        return res
    # wide tasks on which proximal gradient crawls (its rate after the cost of a few Newton
    # models predicts as much again): proximal Newton in row-space form from its point
    more = structured_newton(data, datafit, penalty, alpha, res.V, res.b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol,
                             max_iter=max_iter - res.n_iter, verbose=verbose)
    more.n_iter += res.n_iter
    return more


def _run_subspace(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                  verbose, V0, options, inner):
    def restricted(small, small_penalty, C0, b0, small_tol, small_iter):
        with warnings.catch_warnings():  # (its shortfall is the outer loop's to judge)
            warnings.simplefilter("ignore", ConvergenceWarning)
            return inner(small, datafit, small_penalty, alpha, solver="fista", W0=C0, b0=b0,
                         fit_intercept=fit_intercept, tol=small_tol, max_iter=small_iter,
                         tighten_warm=False)

    res = subspace_solve(data, datafit, penalty, alpha, W, b, ref=ref,
                         fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                         verbose=verbose, restricted_solve=restricted, V0=V0)
    if res.converged or res.n_iter >= max_iter:
        return res
    # stalled short of tol (rounding of the restricted designs): the wide row finishes (over
    # the parts, from them, for sparse plus low rank)
    lifted = penalty.spans_subspace_and_entries
    more = (_run_fista if lifted else _run_wide_newton)(
        data, datafit, penalty, alpha, res.W, res.b, ref=ref, fit_intercept=fit_intercept,
        tol=tol, max_iter=max_iter - res.n_iter, verbose=verbose,
        V0=res.V if lifted else None, options=options, inner=inner)
    more.n_iter += res.n_iter
    return more


def _run_ridge_lbfgs(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                     max_iter, verbose, V0, options, inner):
    from .methods.quasi_newton import ridge_lbfgs
    res = ridge_lbfgs(data, datafit, penalty, alpha, W, b, ref=ref,
                      fit_intercept=fit_intercept, tol=tol, max_iter=max(max_iter, 1000),
                      verbose=verbose)
    if res.converged:
        return res
    # an ill-conditioned problem (curvatures over many orders of magnitude) where the
    # quasi-Newton steps stall: the row the table would run next goes on from its point
    rest = "prox_newton" if not datafit.coupled else "fista"
    return SOLVER_TABLE[rest].run(data, datafit, penalty, alpha, res.W.copy(), res.b.copy(),
                                  ref=ref, fit_intercept=fit_intercept, tol=tol,
                                  max_iter=max_iter, verbose=verbose, V0=None,
                                  options=options, inner=inner)


#: FISTA iterations the multinomial runs before its Newton row from a start of zeros (about
#: a tenth of one Newton model's coordinate sweeps on digits in three tasks: an iteration is
#: two products with each task's rows, a model tens of sweeps over them)
SOFTMAX_FISTA_BUDGET = 100


def _run_softmax_newton(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                        max_iter, verbose, V0, options, inner):
    from .methods.prox_grad import fista as proximal_gradient
    # (at most half of max_iter and ten budgets: the Newton models keep the rest)
    cap = min(10 * SOFTMAX_FISTA_BUDGET, max_iter // 2)
    # a start with nonzero rows (a path's previous point) is near enough for the Newton
    # steps from the first (digits in 3 tasks, a CV's 3 paths of 12 alphas: 5.0 s where
    # FISTA's budget first took 6.0 s); from zeros, FISTA's first steps are cheaper than
    # Newton's far from the optimum (cold fits at alpha 1e-2: 0.2 s beside 0.6 s)
    if cap < SOFTMAX_FISTA_BUDGET or np.any(W != 0.0):
        return softmax_newton(data, datafit, penalty, alpha, W, b, ref=ref,
                              fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                              verbose=verbose)
    res = proximal_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                            fit_intercept=fit_intercept, tol=tol, max_iter=cap,
                            check_every=options.get("check_every", 10), verbose=verbose,
                            crawl_budget=SOFTMAX_FISTA_BUDGET)
    if res.converged:
        return res
    # where proximal gradient crawls (small alpha: its rate predicts as much again), the
    # Newton models with each row's K x K curvature from its point
    more = softmax_newton(data, datafit, penalty, alpha, res.W, res.b, ref=ref,
                          fit_intercept=fit_intercept, tol=tol, max_iter=max_iter - res.n_iter,
                          verbose=verbose)
    more.n_iter += res.n_iter
    return more


def _run_primal_dual(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                     max_iter, verbose, V0, options, inner):
    from .methods.primal_dual import CHECK, primal_dual
    # (max_iter counts its certified blocks of CHECK iterations: one iteration is cheap;
    # n_iter_ counts the same blocks, so that it never exceeds max_iter)
    if not data.rows_local:  # (the iterates beside the rows, in groups of task blocks)
        from .blocks.primal_dual_blocks import primal_dual_blocks
        res = primal_dual_blocks(data, datafit, penalty, alpha, W, b, ref=ref,
                                 fit_intercept=fit_intercept, tol=tol,
                                 max_iter=CHECK * max_iter, verbose=verbose, check=CHECK)
        res.n_iter = max(-(-res.n_iter // CHECK), 1)
        return res
    # (a path's previous dual point, ``options["dual"]``, starts the dual iterate)
    res = primal_dual(data, datafit, penalty, alpha, W, b, ref=ref,
                      fit_intercept=fit_intercept, tol=tol, max_iter=CHECK * max_iter,
                      verbose=verbose, theta=options.get("dual"), check=CHECK)
    res.n_iter = max(-(-res.n_iter // CHECK), 1)
    return res


def _go_on(res, run, data, datafit, penalty, alpha, *, ref, fit_intercept, tol, max_iter,
           verbose, options, inner):
    """``res`` where it certified or spent ``max_iter``; else the row ``run`` from its point
    (and its dual, where it has one), the iterations of both counted: how a row hands over
    what it cannot finish."""
    if res.converged or max_iter <= res.n_iter:
        return res
    theta = getattr(res, "theta", None)
    more = run(data, datafit, penalty, alpha, res.W, res.b, ref=ref,
               fit_intercept=fit_intercept, tol=tol, max_iter=max_iter - res.n_iter,
               verbose=verbose, V0=None,
               options=options if theta is None else {**options, "dual": theta}, inner=inner)
    more.n_iter += res.n_iter
    return more


def _exact_then_primal_dual(method, cap):
    """A row running ``method`` (an interior point or barrier, at most ``cap`` Newton steps)
    that hands a point it cannot certify (rounding near the end) and its dual to the
    primal-dual row, which goes on from there."""
    def run(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
            verbose, V0, options, inner):
        res = method(data, datafit, penalty, alpha, W, b, ref=ref, fit_intercept=fit_intercept,
                     tol=tol, max_iter=min(max_iter, cap), verbose=verbose)
        return _go_on(res, SOLVER_TABLE["primal_dual"].run, data, datafit, penalty, alpha,
                      ref=ref, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                      verbose=verbose, options=options, inner=inner)
    return run


_run_interior_point = _exact_then_primal_dual(interior_point, 200)
_run_spectral_barrier = _exact_then_primal_dual(spectral_barrier, 300)


def _run_linear_program(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                        max_iter, verbose, V0, options, inner):
    res = linear_program(data, datafit, penalty, alpha, W, b, ref=ref,
                         fit_intercept=fit_intercept, tol=tol)
    # one exact solve (as the direct ridge's): HiGHS's simplex iterations are its own, not
    # max_iter's; where it stops short of tol the primal-dual row goes on from its primal and
    # dual point
    res.n_iter = 1
    return _go_on(res, SOLVER_TABLE["primal_dual"].run, data, datafit, penalty, alpha,
                  ref=ref, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                  verbose=verbose, options=options, inner=inner)


def _run_smoothing(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
                   verbose, V0, options, inner):
    from .methods.smoothing import smoothed_stages
    return smoothed_stages(data, datafit, penalty, alpha, W, b, ref=ref,
                           fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                           verbose=verbose, solve=inner)


def _run_box_descent(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol,
                     max_iter, verbose, V0, options, inner):
    from .parts.box_descent import box_descent
    return box_descent(data, datafit, penalty, alpha, W, b, ref=ref,
                       fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                       check_every=options.get("check_every", 5), verbose=verbose)


def _run_fista(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept, tol, max_iter,
               verbose, V0, options, inner):
    from .methods.prox_grad import fista as proximal_gradient
    return proximal_gradient(data, datafit, penalty, alpha, W, b, ref=ref,
                             fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                             check_every=options.get("check_every", 10), verbose=verbose,
                             V0=V0)


# ------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class SolverEntry:
    """A row of the table: ``run(data, datafit, penalty, alpha, W, b, *, ref, fit_intercept,
    tol, max_iter, verbose, V0, options, inner)`` (``inner`` the solve, for the stages of
    majorize-minimize), what it ``requires`` (in the order checked), ``why`` ``"auto"`` picks
    it, and the solver name it ``answers`` to (``solver=``, and messages); ``warm``: whether
    it starts from the ``(W, b)`` given (else a warm start is not certified first);
    ``auto_only``: a route that only ``"auto"`` takes (a solver named by the user runs its
    own row); ``on_blocks``: what it needs of task blocks held elsewhere beside its own
    requirements (None: :data:`ON_BLOCKS_ELSEWHERE` and the Gram sums' ``tol``)."""

    run: Callable[..., SolverResult]
    requires: tuple[Requirement, ...]
    why: str
    answers: str
    warm: bool = True
    auto_only: bool = False
    on_blocks: tuple[Requirement, ...] | None = None


_BCD = (ROWS_LOCAL, ROW_SEPARABLE)
SOLVER_TABLE: dict[str, SolverEntry] = {
    "linear_program": SolverEntry(
        _run_linear_program, (PIECEWISE_LINEAR_LOSS, LP_PENALTY, ROWS_LOCAL),
        "the quantile loss with a penalty that is a linear program (the lasso; L1,inf where "
        "the interior point does not run it): "
        "solved exactly by HiGHS, one program per task where the penalty separates, "
        "certified by the duality gap at the program's multipliers", "auto", warm=False),
    "interior_point": SolverEntry(
        _run_interior_point, (PINBALL_ROWS, CONE_PENALTY, ROWS_LOCAL, CONE_SIZE),
        "the quantile loss (and squared tasks beside it in a loss list) with a penalty that "
        "is a cone program (L2,1, L1,inf, mean-regularized): "
        "a primal-dual interior-point method whose Newton systems are solved in the tasks' "
        "blocks, certified by the duality gap of the pinball loss", "auto", warm=False),
    "spectral_barrier": SolverEntry(
        _run_spectral_barrier, (PINBALL_LOSS, SPECTRAL_PENALTY, ROWS_LOCAL, SPECTRAL_STEP),
        "the quantile loss with the trace norm: a barrier method over the norm's "
        "semidefinite epigraph (one linear-matrix inequality of size p + 1 per task around "
        "one shared p x p matrix), its Newton systems reduced to that matrix's unknowns, "
        "certified by the duality gap of the pinball loss", "auto", warm=False),
    "primal_dual": SolverEntry(
        _run_primal_dual, (BOX_DUAL, EXACT_PROX, CONVEX),
        "the quantile loss (alone, or beside squared and Huber tasks in a loss list) with a "
        "convex penalty that has a prox: restarted primal-dual "
        "hybrid gradient on its saddle point, exact (no smoothing), certified by the duality "
        "gap of the pinball loss, or for a penalty without a dual (or alpha = 0) the "
        "fixed-point residual of the iteration (on task blocks held elsewhere: the iterates "
        "beside the rows, the prox's summaries and the certificate's pieces summed over the "
        "blocks; a prox that does not split over tasks applied to the point's columns "
        "joined on the client, O(p T) numbers each way per iteration)", "auto",
        on_blocks=(BLOCK_PENALTY,)),
    "smoothing": SolverEntry(
        _run_smoothing, (NONSMOOTH_LOSS, NOT_MAJORIZED),
        "a loss that is not smooth (quantile): smoothed stages, each solved by the row the "
        "table picks for it and certified by the duality gap of the loss itself", "auto"),
    "direct": SolverEntry(
        _run_direct, (SQUARED_LOSS, PURE_RIDGE, GRAM_TOL, EXACT_SOLVES),
        "the squared loss with a pure ridge: solved exactly, per task, from the Gram's "
        "eigendecomposition (the kernel's, in row-space form, for tasks with fewer rows than "
        "features)", "direct"),
    "ridge_lbfgs": SolverEntry(
        _run_ridge_lbfgs, (NEWTON_LOSS, SMOOTH_PENALTY, ROWS_LOCAL, UNCOMPILED,
                           QUASI_NEWTON_TOL),
        "a smooth loss other than the squared one with a pure ridge (or the multinomial loss "
        "with a task kernel): the whole objective is smooth, minimized by L-BFGS on (W, b) "
        "and certified by its duality gap (the KKT residual without one)", "auto"),
    "majorize": SolverEntry(
        # (on task blocks too: each stage is a convex fit that runs there)
        _run_majorize, (ROW_SEPARABLE, MAJORIZED),
        "a penalty solved by majorize-minimize: each stage a convex penalty majorizing it "
        "(``penalty.stage``), solved and certified by its duality gap", "bcd"),
    "stationary": SolverEntry(
        _run_stationary, (*_BCD, BLOCK_STEP, NONCONVEX, SQUARED_LOSS),
        "a nonconvex row-separable penalty with the squared loss: block coordinate descent "
        "to a stationary point, certified by the KKT residual", "bcd"),
    "stationary_newton": SolverEntry(
        _run_stationary_newton, (*_BCD, BLOCK_STEP, NONCONVEX, NEWTON_LOSS,
                                SEPARABLE_MODEL),
        "a nonconvex row-separable penalty with another loss: proximal Newton to a "
        "stationary point, its models solved by block coordinate descent", "bcd"),
    "huber_newton": SolverEntry(
        _run_huber_newton, (*_BCD, BLOCK_STEP, CONVEX, NEWTON_LOSS, SEPARABLE_MODEL,
                            HUBER_ROWS, CONE_PENALTY, CONE_SIZE),
        "the Huber loss with L2,1 (and its elastic net) outside its "
        "least-absolute-deviation regime: proximal Newton, handing over to the interior point "
        f"after {HANDOVER} steps where it crawls (the rows on the linear pieces have no "
        "curvature); taken by solver='auto' only", "bcd", auto_only=True),
    "prox_newton": SolverEntry(
        _run_prox_newton, (*_BCD, BLOCK_STEP, CONVEX, NEWTON_LOSS,
                                SEPARABLE_MODEL),
        "a row-separable penalty with a loss other than the squared one: proximal Newton, "
        "its models solved by block coordinate descent over working sets (a small logistic "
        "fit, n p T <= 300,000 with n <= 4 T p, in Gram form: by coordinate descent on the "
        "per-task Grams for an entrywise penalty, by proximal gradient for a penalty of rows)",
        "bcd"),
    "softmax_newton": SolverEntry(
        _run_softmax_newton, (ROWS_LOCAL, BLOCK_STEP, CONVEX, SOFTMAX_MODEL),
        "the multinomial loss with a penalty of entries or rows: proximal Newton with each "
        "row's K x K curvature, its models solved by coordinate descent over working sets",
        "bcd"),
    "small_squares": SolverEntry(
        _run_small_squares, (*_BCD, BLOCK_STEP, CONVEX, SQUARED_LOSS, SMALL_SQUARES),
        "a small fit of the squared loss with a convex penalty of entries or rows (several "
        f"tasks, T p <= m <= {SMALL_SQUARES_ROWS} T p rows counted by their weights, "
        f"m p T <= {SMALL_SQUARES_SIZE:,}): block coordinate descent on the per-task Grams, "
        "certified on the data; taken by solver='auto' only, without solver_options "
        "(solver='bcd' runs coordinate descent over the rows)", "bcd", auto_only=True),
    "bcd": SolverEntry(
        _run_bcd, (*_BCD, BLOCK_STEP, CONVEX, SQUARED_LOSS),
        "a row-separable penalty: block coordinate descent over features with working sets, "
        "screening and Anderson extrapolation (proximal Newton for the logistic loss)", "bcd"),
    "box_descent": SolverEntry(
        _run_box_descent, (ROWS_LOCAL, BOXED_STEP, BOXED_LOSS, DENSE_ROWS),
        "penalty factors of 0 or bounds on a penalty of entries or rows: block coordinate "
        "descent with each row's step under the box (proximal Newton for a loss other than "
        "the squared one), certified by the KKT residual", "bcd"),
    "row_space_cg": SolverEntry(
        _run_row_space_cg, (LINEAR_PATH, ROW_SPACE_COUPLING),
        "the squared loss with a quadratic task coupling on wide tasks: each task's system "
        "solved exactly from its kernel, the mean penalty reduced to a system in the mean "
        "task alone, other couplings by conjugate gradients preconditioned with those "
        "solves", "cg"),
    "cg": SolverEntry(
        _run_cg, (LINEAR_PATH,),
        "the squared loss with a quadratic task-coupling penalty: the optimum solves a linear "
        "system, by preconditioned conjugate gradients", "cg"),
    "admm": SolverEntry(
        _run_admm, (SQUARED_LOSS, PLAIN_VARIABLE, EXACT_PROX, GRAM_TOL, EXACT_SOLVES),
        "the squared loss with a penalty of W itself: ADMM with every task's quadratic solved "
        "exactly (Gram form for long tasks, row-space form for wide ones), tens of steps where "
        "proximal gradient needs hundreds", "admm"),
    "parts_admm": SolverEntry(
        _run_parts_admm, (SQUARED_LOSS, SUM_OF_PARTS, EXACT_PROX, GRAM_TOL, EXACT_SOLVES),
        "the squared loss with a penalty of parts summing to W (sparse + low rank, the robust "
        "models): ADMM over the parts, each task's quadratic of their sum solved exactly "
        "(Gram form for long tasks, row-space form for wide ones), about a hundred steps "
        "where proximal gradient over the parts needs hundreds to thousands", "admm"),
    "structured_newton": SolverEntry(
        _run_structured_newton, (EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL, GRAM_FORM),
        "a smooth loss other than the squared one (logistic, Poisson, Gamma, Huber) on "
        "tasks with more rows than features: proximal Newton with each model in Gram form",
        "fista"),
    "subspace": SolverEntry(
        _run_subspace, (LOW_RANK_SUBSPACE, EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL),
        "the trace norm (or sparse plus low rank) with a smooth loss other than the squared "
        "one on wide or sparse tasks: a growing subspace of W's columns (the gradient's "
        "directions that violate the dual bound; beside it a working set of the sparse "
        "part's features), each restricted problem of a few features solved in Gram form "
        "and the whole certified by its duality gap", "fista"),
    "wide_newton": SolverEntry(
        _run_wide_newton, (EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL, ROW_SPACE,
                           PLAIN_VARIABLE),
        "a smooth loss other than the squared one on wide tasks with a penalty of W itself: "
        "proximal gradient, handing "
        "over to proximal Newton with row-space models where it crawls", "fista"),
    "fista": SolverEntry(
        _run_fista, (EXACT_PROX, SMOOTH_LOSS),
        "any penalty with a prox: accelerated proximal gradient (proximal Newton in Gram "
        "form for the logistic loss)", "fista"),
}
#: The order in which the table is read: ``solver="auto"`` runs the first row whose
#: requirements hold, a named solver the first such row that answers to its name.
AUTO_ORDER = ("interior_point", "spectral_barrier", "linear_program",
              "primal_dual", "smoothing", "direct", "ridge_lbfgs", "majorize", "stationary",
              "stationary_newton", "huber_newton", "prox_newton", "softmax_newton",
              "small_squares", "bcd", "box_descent", "row_space_cg", "cg",
              "admm", "parts_admm", "structured_newton", "subspace", "wide_newton", "fista")


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
    return SOLVER_TABLE[row].run(data, datafit, penalty, alpha, W, b, ref=ref,
                                 fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                                 verbose=verbose, V0=V0, options=options, inner=inner)


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
        The solver's name, a key of :data:`SOLVER_TABLE` (its ``why`` says what made it
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
