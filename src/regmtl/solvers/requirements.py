r"""What a solver needs of a problem: one :class:`Requirement` per condition.

Each requirement is a test on a :class:`Problem` (the data, the loss, the penalty, alpha, tol
and the problem at W = 0) and the error text that names what is missing, as skglm's
``_penalty_required_attr``. A solver (:mod:`~regmtl.solvers.rows`) declares the tuple it
needs, in the order checked; :mod:`~regmtl.solvers.policy` reads them to choose. ``on_data``
False: the requirement reads only the loss, the penalty and alpha (the support table and
:func:`~regmtl.solvers.policy.penalty_solver` read those without data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import PENALTY_CLASSES, Penalty
from .certificates.certify import Reference
from .methods.linear import has_linear_path
from .methods.linear_program import LP_FORMS
from .methods.low_rank_subspace import subspace_applies
from .methods.small_squares import (
    SMALL_SQUARES_ROWS,
    SMALL_SQUARES_SIZE,
    small_squares_applies,
)
from .methods.splitting import exact_solves_apply
from .parts.interior_point import (
    CONE_FORMS,
    IPM_SIZE,
    LAD_ALPHA,
    LAD_SHARE,
    huber_rows,
    lad_regime,
    pinball_rows,
)
from .parts.kernel_quadratic import kernel_applies
from .parts.newton_model import is_task_kernel
from .parts.quadratic import MAX_FEATURES, quadratic_applies
from .parts.row_space_cg import MAX_TASKS, row_space_applies
from .parts.softmax_newton import SOFTMAX_KINDS
from .parts.spectral_barrier import SPECTRAL_SIZE


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
