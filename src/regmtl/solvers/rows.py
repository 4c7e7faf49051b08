r"""The solvers of the table, one object each (:class:`~regmtl.solvers.solver.Solver`).

Each declares what it needs (:mod:`~regmtl.solvers.requirements`), its regime, the cost of one
of its iterations and the certificates it returns, and runs its method from a
:class:`~regmtl.solvers.solver.Start`. A solver imports its method's module when it first
runs (coordinate descent, proximal Newton on the rows, FISTA, ...), so that a small fit loads
only what its solver needs. The families a user names (``solver="bcd"``, ``"fista"``, ...)
have a solver per method, each answering to the family's name; the order in which
``"auto"`` reads them is :data:`~regmtl.solvers.policy.AUTO_ORDER`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..penalties import Penalty
from .methods.linear import conjugate_gradient, ridge_solve
from .methods.linear_program import linear_program
from .methods.low_rank_subspace import subspace_solve
from .methods.small_squares import (
    SMALL_SQUARES_ROWS,
    SMALL_SQUARES_SIZE,
    small_least_squares,
)
from .methods.splitting import admm as split_admm
from .methods.structured_newton import coordinate_models, small_applies, structured_newton
from .parts.interior_point import interior_point
from .parts.kernel_quadratic import newton_budget
from .parts.row_space_cg import row_space_cg
from .parts.softmax_newton import softmax_newton
from .parts.spectral_barrier import spectral_barrier
from .requirements import (
    BLOCK_PENALTY,
    BLOCK_STEP,
    BOX_DUAL,
    BOXED_LOSS,
    BOXED_STEP,
    CONE_PENALTY,
    CONE_SIZE,
    CONVEX,
    DENSE_ROWS,
    EXACT_PROX,
    EXACT_SOLVES,
    GRAM_FORM,
    GRAM_TOL,
    HUBER_ROWS,
    LINEAR_PATH,
    LOW_RANK_SUBSPACE,
    LP_PENALTY,
    MAJORIZED,
    NEWTON_LOSS,
    NONCONVEX,
    NONSMOOTH_LOSS,
    NOT_MAJORIZED,
    PIECEWISE_LINEAR_LOSS,
    PINBALL_LOSS,
    PINBALL_ROWS,
    PLAIN_VARIABLE,
    PURE_RIDGE,
    QUASI_NEWTON_TOL,
    ROW_SEPARABLE,
    ROW_SPACE,
    ROW_SPACE_COUPLING,
    ROWS_LOCAL,
    SEPARABLE_MODEL,
    SMALL_SQUARES,
    SMOOTH_LOSS,
    SMOOTH_PENALTY,
    SOFTMAX_MODEL,
    SPECTRAL_PENALTY,
    SPECTRAL_STEP,
    SQUARED_LOSS,
    SUM_OF_PARTS,
    UNCOMPILED,
)
from .result import SolverResult
from .solver import Call, Solver, Start, go_on

__all__ = ["ALL_SOLVERS", "BCD_DEFAULTS", "HANDOVER"]

_GAP_OR_KKT = ("duality_gap", "kkt_residual")
_BCD = (ROWS_LOCAL, ROW_SEPARABLE)
#: The block coordinate descent options and their defaults (``solver_options``).
BCD_DEFAULTS = dict(working_set=True, screening=True, anderson=5, gram="auto", p0=10)


def _bcd_options(penalty: Penalty, options) -> dict:
    """The block coordinate descent options with their defaults; gap-safe screening refused
    for a nonconvex penalty (no duality gap)."""
    if penalty.nonconvex and options.get("screening") is True:
        raise ValueError(
            f"solver_options['screening']=True: {penalty!r} is not convex, so there is no "
            "duality gap and no gap-safe rule to screen with (its fits are certified by the "
            "KKT residual); leave 'screening' out, or set it to False.")
    return {**BCD_DEFAULTS, **{k: v for k, v in options.items() if k in BCD_DEFAULTS}}


# ------------------------------------------------------------ the pinball loss's exact rows
class PrimalDual(Solver):
    name, answers = "primal_dual", "auto"
    requires = (BOX_DUAL, EXACT_PROX, CONVEX)
    on_blocks = (BLOCK_PENALTY,)
    certificate = _GAP_OR_KKT
    regime = (
        "the quantile loss (alone, or beside squared and Huber tasks in a loss list) with a "
        "convex penalty that has a prox: restarted primal-dual "
        "hybrid gradient on its saddle point, exact (no smoothing), certified by the duality "
        "gap of the pinball loss, or for a penalty without a dual (or alpha = 0) the "
        "fixed-point residual of the iteration (on task blocks held elsewhere: the iterates "
        "beside the rows, the prox's summaries and the certificate's pieces summed over the "
        "blocks; a prox that does not split over tasks applied to the point's columns "
        "joined on the client, O(p T) numbers each way per iteration)")
    cost = ("an iteration: two products with the design (O(nnz X)), the penalty's prox and "
            "each row's dual step; max_iter counts blocks of a hundred")

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.primal_dual import CHECK, primal_dual
        # (max_iter counts its certified blocks of CHECK iterations: one iteration is cheap;
        # n_iter_ counts the same blocks, so that it never exceeds max_iter)
        kw = {**call.common, "max_iter": CHECK * call.max_iter}
        if not call.data.rows_local:  # (the iterates beside the rows, in task blocks)
            from .blocks.primal_dual_blocks import primal_dual_blocks
            res = primal_dual_blocks(*call.args, start.W, start.b, **kw, check=CHECK)
        else:  # (a path's previous dual point, ``options["dual"]``, starts the dual)
            res = primal_dual(*call.args, start.W, start.b, **kw,
                              theta=call.options.get("dual"), check=CHECK)
        res.n_iter = max(-(-res.n_iter // CHECK), 1)
        return res


class _ExactThenPrimalDual(Solver):
    """A Newton method capped at ``cap`` steps that hands a point it cannot certify
    (rounding near the end) and its dual to the primal-dual solver."""

    cap: int = 0
    warm = False
    #: the Newton method, ``method(data, datafit, penalty, alpha, W, b, **common)``
    method: Callable[..., SolverResult]

    def run(self, call: Call, start: Start) -> SolverResult:
        capped = call.capped(self.cap)
        res = self.method(*call.args, start.W, start.b, **capped.common)
        return go_on(res, PRIMAL_DUAL, call)


class InteriorPoint(_ExactThenPrimalDual):
    name = "interior_point"
    requires = (PINBALL_ROWS, CONE_PENALTY, ROWS_LOCAL, CONE_SIZE)
    cap = 200
    regime = (
        "the quantile loss (and squared tasks beside it in a loss list) with a penalty that "
        "is a cone program (L2,1, L1,inf, mean-regularized): "
        "a primal-dual interior-point method whose Newton systems are solved in the tasks' "
        "blocks, certified by the duality gap of the pinball loss")
    cost = ("a Newton step: the tasks' blocks formed from the rows (O(n p^2)) and factored "
            "(O(T p^3)); tens of steps")
    method = staticmethod(interior_point)


class SpectralBarrier(_ExactThenPrimalDual):
    name = "spectral_barrier"
    requires = (PINBALL_LOSS, SPECTRAL_PENALTY, ROWS_LOCAL, SPECTRAL_STEP)
    cap = 300
    regime = (
        "the quantile loss with the trace norm: a barrier method over the norm's "
        "semidefinite epigraph (one linear-matrix inequality of size p + 1 per task around "
        "one shared p x p matrix), its Newton systems reduced to that matrix's unknowns, "
        "certified by the duality gap of the pinball loss")
    cost = ("a Newton step: the tasks' Kronecker sums (O(T p^4)) reduced to the shared "
            "matrix's p (p + 1) / 2 unknowns and factored (O(p^6))")
    method = staticmethod(spectral_barrier)


class LinearProgram(Solver):
    name = "linear_program"
    requires = (PIECEWISE_LINEAR_LOSS, LP_PENALTY, ROWS_LOCAL)
    warm = False
    regime = (
        "the quantile loss with a penalty that is a linear program (the lasso; L1,inf where "
        "the interior point does not run it): "
        "solved exactly by HiGHS, one program per task where the penalty separates, "
        "certified by the duality gap at the program's multipliers")
    cost = "once: HiGHS's simplex on a program of O(n + p T) variables (one per task for L1)"

    def run(self, call: Call, start: Start) -> SolverResult:
        res = linear_program(*call.args, start.W, start.b, ref=call.ref,
                             fit_intercept=call.fit_intercept, tol=call.tol)
        # one exact solve (as the direct ridge's): HiGHS's simplex iterations are its own,
        # not max_iter's; short of tol the primal-dual solver goes on from its two points
        res.n_iter = 1
        return go_on(res, PRIMAL_DUAL, call)


class Smoothing(Solver):
    name = "smoothing"
    requires = (NONSMOOTH_LOSS, NOT_MAJORIZED)
    certificate = _GAP_OR_KKT
    regime = (
        "a loss that is not smooth (quantile): smoothed stages, each solved by the solver the "
        "table picks for it and certified by the duality gap of the loss itself")
    cost = "a stage: a fit of the smoothed loss by its own solver, from the last stage's point"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.smoothing import smoothed_stages
        return smoothed_stages(*call.args, start.W, start.b, **call.common, solve=call.inner)


# ------------------------------------------------------------------- closed forms, ridges
class Direct(Solver):
    name, answers = "direct", "direct"
    requires = (SQUARED_LOSS, PURE_RIDGE, GRAM_TOL, EXACT_SOLVES)
    regime = (
        "the squared loss with a pure ridge: solved exactly, per task, from the Gram's "
        "eigendecomposition (the kernel's, in row-space form, for tasks with fewer rows than "
        "features)")
    cost = "once: each task's Gram (or kernel) decomposed, O(T p^3) (O(sum n_t^3))"

    def run(self, call: Call, start: Start) -> SolverResult:
        return ridge_solve(*call.args, ref=call.ref, fit_intercept=call.fit_intercept,
                           tol=call.tol)


class RidgeLBFGS(Solver):
    name = "ridge_lbfgs"
    requires = (NEWTON_LOSS, SMOOTH_PENALTY, ROWS_LOCAL, UNCOMPILED, QUASI_NEWTON_TOL)
    certificate = _GAP_OR_KKT
    regime = (
        "a smooth loss other than the squared one with a pure ridge (or the multinomial loss "
        "with a task kernel): the whole objective is smooth, minimized by L-BFGS on (W, b) "
        "and certified by its duality gap (the KKT residual without one)")
    cost = "an iteration: the loss and its gradient, two products with the design (O(nnz X))"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.quasi_newton import ridge_lbfgs
        res = ridge_lbfgs(*call.args, start.W, start.b,
                          **{**call.common, "max_iter": max(call.max_iter, 1000)})
        if res.converged:
            return res
        # an ill-conditioned problem (curvatures over many orders of magnitude) where the
        # quasi-Newton steps stall: the solver the table would run next goes on from its
        # point, with the whole budget
        rest = FISTA_ROW if call.datafit.coupled else PROX_NEWTON
        return rest.run(call, Start(res.W.copy(), res.b.copy()))


# ------------------------------------------------------------------ penalties of stages
class Majorize(Solver):
    name, answers = "majorize", "bcd"
    # (on task blocks too: each stage is a convex fit that runs there)
    requires = (ROW_SEPARABLE, MAJORIZED)
    certificate = _GAP_OR_KKT
    regime = (
        "a penalty solved by majorize-minimize: each stage a convex penalty majorizing it "
        "(``penalty.stage``), solved and certified by its duality gap")
    cost = "a stage: a convex fit of the stage's penalty by its own solver"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.majorize import majorize_minimize
        _bcd_options(call.penalty, call.options)
        # (a loss that is not smooth: each stage by the solver of its own loss, exact)
        return majorize_minimize(*call.args, start.W, start.b, **call.common,
                                 solve=call.inner,
                                 stage_solver="fista" if call.datafit.smooth else "auto")


class Stationary(Solver):
    name, answers = "stationary", "bcd"
    requires = (*_BCD, BLOCK_STEP, NONCONVEX, SQUARED_LOSS)
    certificate = ("kkt_residual",)
    regime = (
        "a nonconvex row-separable penalty with the squared loss: block coordinate descent "
        "to a stationary point, certified by the KKT residual")
    cost = "an epoch: O(n w T), w the working set's features (O(w^2 T) in Gram form)"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.stationary import stationary_least_squares
        opts = _bcd_options(call.penalty, call.options)
        return stationary_least_squares(
            *call.args, start.W, start.b, **call.common, working_set=opts["working_set"],
            anderson=opts["anderson"], gram=opts["gram"], p0=opts["p0"])


class StationaryNewton(Solver):
    name, answers = "stationary_newton", "bcd"
    requires = (*_BCD, BLOCK_STEP, NONCONVEX, NEWTON_LOSS, SEPARABLE_MODEL)
    certificate = ("kkt_residual",)
    regime = (
        "a nonconvex row-separable penalty with another loss: proximal Newton to a "
        "stationary point, its models solved by block coordinate descent")
    cost = "a Newton step: the model's weights (O(n T)), then epochs of O(n w T)"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.stationary import stationary_newton
        opts = _bcd_options(call.penalty, call.options)
        return stationary_newton(*call.args, start.W, start.b, **call.common,
                                 working_set=opts["working_set"], anderson=opts["anderson"],
                                 p0=opts["p0"])


# ------------------------------------------------------------------ row-separable penalties
class ProxNewton(Solver):
    name, answers = "prox_newton", "bcd"
    requires = (*_BCD, BLOCK_STEP, CONVEX, NEWTON_LOSS, SEPARABLE_MODEL)
    certificate = _GAP_OR_KKT
    regime = (
        "a row-separable penalty with a loss other than the squared one: proximal Newton, "
        "its models solved by block coordinate descent over working sets (a small logistic "
        "fit, n p T <= 300,000 with n <= 4 T p, in Gram form: by coordinate descent on the "
        "per-task Grams for an entrywise penalty, by proximal gradient for a penalty of rows)")
    cost = ("a Newton step: the model's weights (O(n T)), then epochs of O(n w T) (in "
            "Gram form: the Grams O(n p^2 T), epochs O(p^2 T))")

    def run(self, call: Call, start: Start) -> SolverResult:
        data, datafit, penalty, alpha = call.args
        opts = _bcd_options(penalty, call.options)
        if small_applies(data, datafit, penalty, alpha, call.tol):
            # a small problem (by its sizes alone, the same in every process): each Newton
            # model in Gram form, by coordinate descent on its Grams or by proximal gradient
            return structured_newton(*call.args, penalty.lift(start.W), start.b,
                                     **call.common,
                                     coordinate=coordinate_models(penalty, alpha))
        from .methods.newton import prox_newton  # (coordinate descent on the rows)

        has_dual = penalty.has_dual and alpha > 0
        return prox_newton(*call.args, start.W, start.b, penalty.bcd_params(alpha),
                           **call.common, working_set=opts["working_set"] and has_dual,
                           screening=opts["screening"] and has_dual, p0=opts["p0"])


#: Proximal Newton steps on the Huber loss before the fit goes to the interior point (School,
#: Huber(): every fit of a CV certified within 10; Parkinson's telemonitoring, 42 patients,
#: Huber(): 18 to 44 steps at alpha_max / 30 to / 1000, where the interior point certifies in
#: 9 to 12 of a fifth of the time: the CV 3.1 s where it took 6.1).
HANDOVER = 10


class HuberNewton(Solver):
    name, answers = "huber_newton", "bcd"
    requires = (*_BCD, BLOCK_STEP, CONVEX, NEWTON_LOSS, SEPARABLE_MODEL, HUBER_ROWS,
                CONE_PENALTY, CONE_SIZE)
    auto_only = True
    regime = (
        "the Huber loss with L2,1 (and its elastic net) outside its "
        "least-absolute-deviation regime: proximal Newton, handing over to the interior point "
        f"after {HANDOVER} steps where it crawls (the rows on the linear pieces have no "
        "curvature); taken by solver='auto' only")
    cost = "a Newton step as proximal Newton's; then the interior point's"

    def run(self, call: Call, start: Start) -> SolverResult:
        res = PROX_NEWTON.run(call.capped(HANDOVER), start)
        # (the linear pieces have no curvature: the models crawl; the interior point starts
        # afresh, the point reached only placing its first residuals)
        return go_on(res, INTERIOR_POINT, call)


class SoftmaxNewton(Solver):
    name, answers = "softmax_newton", "bcd"
    requires = (ROWS_LOCAL, BLOCK_STEP, CONVEX, SOFTMAX_MODEL)
    regime = (
        "the multinomial loss with a penalty of entries or rows: proximal Newton with each "
        "row's K x K curvature on rows centred at their means, its models solved by "
        "coordinate descent over working sets")
    cost = ("a Newton step: the rows' K x K curvatures (O(n K^2)), then sweeps of "
            "O(n w K) (or conjugate gradients on the support)")

    def run(self, call: Call, start: Start) -> SolverResult:
        # (from zeros too: on centred rows the Newton steps cost less than proximal
        # gradient's from the first, digits in 3 tasks, cold fits at alpha 1e-1 to 3e-4:
        # 0.08-0.35 s where FISTA's first hundred iterations then Newton took 0.10-0.49 s)
        return softmax_newton(*call.args, start.W, start.b, **call.common)


class SmallSquares(Solver):
    name, answers = "small_squares", "bcd"
    requires = (*_BCD, BLOCK_STEP, CONVEX, SQUARED_LOSS, SMALL_SQUARES)
    auto_only = True
    regime = (
        "a small fit of the squared loss with a convex penalty of entries or rows (several "
        f"tasks, T p <= m <= {SMALL_SQUARES_ROWS} T p rows counted by their weights, "
        f"m p T <= {SMALL_SQUARES_SIZE:,}): block coordinate descent on the per-task Grams, "
        "certified on the data; taken by solver='auto' only, without solver_options "
        "(solver='bcd' runs coordinate descent over the rows)")
    cost = "once the Grams, O(n p^2); then epochs of O(p^2 T)"

    def run(self, call: Call, start: Start) -> SolverResult:
        # options of coordinate descent over the rows (working sets, screening,
        # extrapolation, Gram form or not): that solver runs, as asked
        if any(key in call.options for key in BCD_DEFAULTS):
            return BCD_ROW.run(call, start)
        res = small_least_squares(*call.args, start.W, start.b, **call.common)
        # the Gram sums' rounding keeps the data's certificate above tol: coordinate
        # descent over the rows finishes from the point reached
        return go_on(res, BCD_ROW, replace(call, options={"gram": False}),
                     Start(res.W, res.b))


class BCD(Solver):
    name, answers = "bcd", "bcd"
    requires = (*_BCD, BLOCK_STEP, CONVEX, SQUARED_LOSS)
    regime = (
        "a row-separable penalty: block coordinate descent over features with working sets, "
        "screening and Anderson extrapolation (proximal Newton for the logistic loss)")
    cost = "an epoch: O(n w T), w the working set's features (O(w^2 T) in Gram form)"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.bcd import least_squares_bcd
        return least_squares_bcd(*call.args, start.W, start.b, **call.common,
                                 **_bcd_options(call.penalty, call.options))


class BoxDescent(Solver):
    name, answers = "box_descent", "bcd"
    requires = (ROWS_LOCAL, BOXED_STEP, BOXED_LOSS, DENSE_ROWS)
    certificate = _GAP_OR_KKT
    regime = (
        "penalty factors of 0, bounds or glmnet's ridge weights on a penalty of entries or "
        "rows: block coordinate descent with each row's step under the box (proximal Newton "
        "for a loss other than the squared one), certified by the duality gap where every "
        "entry is penalized, else by the KKT residual")
    cost = "an epoch: O(n p T) (O(p^2 T) on the Grams)"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .parts.box_descent import box_descent
        return box_descent(*call.args, start.W, start.b, **call.common,
                           check_every=call.options.get("check_every", 5))


# ------------------------------------------------------------- quadratic task couplings
class RowSpaceCG(Solver):
    name, answers = "row_space_cg", "cg"
    requires = (LINEAR_PATH, ROW_SPACE_COUPLING)
    certificate = _GAP_OR_KKT
    regime = (
        "the squared loss with a quadratic task coupling on wide tasks: each task's system "
        "solved exactly from its kernel, the mean penalty reduced to a system in the mean "
        "task alone, other couplings by conjugate gradients preconditioned with those "
        "solves")
    cost = "once the kernels, O(sum n_t^2 p); an iteration O(sum n_t^2)"

    def run(self, call: Call, start: Start) -> SolverResult:
        return row_space_cg(*call.args, start.W, **call.common)


class CG(Solver):
    name, answers = "cg", "cg"
    requires = (LINEAR_PATH,)
    certificate = _GAP_OR_KKT
    regime = (
        "the squared loss with a quadratic task-coupling penalty: the optimum solves a linear "
        "system, by preconditioned conjugate gradients")
    cost = "an iteration: the Grams' products O(p^2 T) (or two with the design, O(nnz X))"

    def run(self, call: Call, start: Start) -> SolverResult:
        return conjugate_gradient(*call.args, start.W, start.b, **call.common)


# ------------------------------------------------------- penalties of W with exact solves
def _fista_finish(res: SolverResult, call: Call, V: np.ndarray | None) -> SolverResult:
    """``res`` of an exact-solve solver, or, where the Gram sums met tol but the data do not
    (their rounding), FISTA finishing on the data from it (``V``: its lifted variable)."""
    if not call.data.rows_local:
        return res
    return go_on(res, FISTA_ROW, call, Start(res.W, res.b, V))


class ADMM(Solver):
    name, answers = "admm", "admm"
    requires = (SQUARED_LOSS, PLAIN_VARIABLE, EXACT_PROX, GRAM_TOL, EXACT_SOLVES)
    certificate = _GAP_OR_KKT
    regime = (
        "the squared loss with a penalty of W itself: ADMM with every task's quadratic solved "
        "exactly (Gram form for long tasks, row-space form for wide ones), tens of steps where "
        "proximal gradient needs hundreds")
    cost = ("once each task's factor, O(T p^3) (O(sum n_t^3)); an iteration the solves "
            "O(T p^2) and the prox")

    def run(self, call: Call, start: Start) -> SolverResult:
        res = split_admm(*call.args, start.W, start.b, **call.common,
                         check_every=call.options.get("check_every", 10))
        return _fista_finish(res, call, None)


class PartsADMM(Solver):
    name, answers = "parts_admm", "admm"
    requires = (SQUARED_LOSS, SUM_OF_PARTS, EXACT_PROX, GRAM_TOL, EXACT_SOLVES)
    certificate = _GAP_OR_KKT
    regime = (
        "the squared loss with a penalty of parts summing to W (sparse + low rank, the robust "
        "models): ADMM over the parts, each task's quadratic of their sum solved exactly "
        "(Gram form for long tasks, row-space form for wide ones), about a hundred steps "
        "where proximal gradient over the parts needs hundreds to thousands")
    cost = ("once each task's factor, O(T p^3) (O(sum n_t^3)); an iteration the solves "
            "O(T p^2) and the parts' proxes")

    def run(self, call: Call, start: Start) -> SolverResult:
        from .parts.parts_admm import parts_admm
        res = parts_admm(*call.args, start.variable(call.penalty), **call.common,
                         check_every=call.options.get("check_every", 10))
        return _fista_finish(res, call, res.V)


# ---------------------------------------------------------- smooth losses, any prox
class StructuredNewton(Solver):
    name, answers = "structured_newton", "fista"
    requires = (EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL, GRAM_FORM)
    certificate = _GAP_OR_KKT
    regime = (
        "a smooth loss other than the squared one (logistic, Poisson, Gamma, Huber) on "
        "tasks with more rows than features: proximal Newton with each model in Gram form")
    cost = "a Newton step: the weighted Grams O(n p^2), then the model's solve on them"

    def run(self, call: Call, start: Start) -> SolverResult:
        return structured_newton(*call.args, start.variable(call.penalty), start.b,
                                 **call.common)


class WideNewton(Solver):
    name, answers = "wide_newton", "fista"
    requires = (EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL, ROW_SPACE, PLAIN_VARIABLE)
    certificate = _GAP_OR_KKT
    regime = (
        "a smooth loss other than the squared one on wide tasks with a penalty of W itself: "
        "proximal gradient, handing "
        "over to proximal Newton with row-space models where it crawls")
    cost = ("an iteration: two products with the design (O(nnz X)); a Newton step the "
            "kernels O(sum n_t^2 p)")

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.prox_grad import fista as proximal_gradient
        res = proximal_gradient(*call.args, start.W, start.b, **call.common,
                                check_every=call.options.get("check_every", 10),
                                V0=start.V, crawl_budget=newton_budget(call.data))
        # wide tasks on which proximal gradient crawls (its rate after the cost of a few
        # Newton models predicts as much again): proximal Newton in row-space form
        return go_on(res, STRUCTURED_NEWTON, call, Start(res.W, res.b, res.V))


class Subspace(Solver):
    name, answers = "subspace", "fista"
    requires = (LOW_RANK_SUBSPACE, EXACT_PROX, NEWTON_LOSS, SEPARABLE_MODEL, GRAM_TOL)
    regime = (
        "the trace norm (or sparse plus low rank) with a smooth loss other than the squared "
        "one on wide or sparse tasks: a growing subspace of W's columns (the gradient's "
        "directions that violate the dual bound; beside it a working set of the sparse "
        "part's features), each restricted problem of a few features solved in Gram form "
        "and the whole certified by its duality gap")
    cost = ("an outer step: the gradient's top directions (O(nnz X) and an SVD of p x T), "
            "then a restricted fit of O(n k^2) on k directions")

    def run(self, call: Call, start: Start) -> SolverResult:
        data, datafit, penalty, alpha = call.args

        def restricted(small, small_penalty, C0, b0, small_tol, small_iter):
            with warnings.catch_warnings():  # (its shortfall is the outer loop's to judge)
                warnings.simplefilter("ignore", ConvergenceWarning)
                return call.inner(small, datafit, small_penalty, alpha, solver="fista",
                                  W0=C0, b0=b0, fit_intercept=call.fit_intercept,
                                  tol=small_tol, max_iter=small_iter, tighten_warm=False)

        res = subspace_solve(*call.args, start.W, start.b, **call.common,
                             restricted_solve=restricted, V0=start.V)
        # stalled short of tol (rounding of the restricted designs): the wide solver
        # finishes (over the parts, from them, for sparse plus low rank)
        lifted = penalty.spans_subspace_and_entries
        return go_on(res, FISTA_ROW if lifted else WIDE_NEWTON, call,
                     Start(res.W, res.b, res.V if lifted else None))


class FISTA(Solver):
    name, answers = "fista", "fista"
    requires = (EXACT_PROX, SMOOTH_LOSS)
    certificate = _GAP_OR_KKT
    regime = (
        "any penalty with a prox: accelerated proximal gradient (proximal Newton in Gram "
        "form for the logistic loss)")
    cost = "an iteration: two products with the design (O(nnz X)) and the prox"

    def run(self, call: Call, start: Start) -> SolverResult:
        from .methods.prox_grad import fista as proximal_gradient
        return proximal_gradient(*call.args, start.W, start.b, **call.common,
                                 check_every=call.options.get("check_every", 10), V0=start.V)


PRIMAL_DUAL = PrimalDual()
INTERIOR_POINT = InteriorPoint()
PROX_NEWTON = ProxNewton()
BCD_ROW = BCD()
STRUCTURED_NEWTON = StructuredNewton()
WIDE_NEWTON = WideNewton()
FISTA_ROW = FISTA()

#: Every solver of the table, in the order ``solver="auto"`` reads them.
ALL_SOLVERS: tuple[Solver, ...] = (
    INTERIOR_POINT, SpectralBarrier(), LinearProgram(), PRIMAL_DUAL, Smoothing(), Direct(),
    RidgeLBFGS(), Majorize(), Stationary(), StationaryNewton(), HuberNewton(), PROX_NEWTON,
    SoftmaxNewton(), SmallSquares(), BCD_ROW, BoxDescent(), RowSpaceCG(), CG(), ADMM(),
    PartsADMM(), STRUCTURED_NEWTON, Subspace(), WIDE_NEWTON, FISTA_ROW)
