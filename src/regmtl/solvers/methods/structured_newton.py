r"""Proximal Newton for the logistic loss with any penalty, each model solved in Gram form (or,
for wide tasks and a penalty of W itself, in row-space form).

At the scores ``f`` the loss's quadratic model is the weighted least-squares problem of IRLS:
weights ``h_r = c_r s_r (1 - s_r)`` (``s_r = sigmoid(-y_r f_r)``) and working response
``z_r = f_r + c_r theta_r / h_r``. Its per-task Grams (:class:`~regmtl.solvers.parts.quadratic.
TaskQuadratic`, intercepts minimized out) make the model cheap to minimize with the penalty by
proximal gradient (:func:`~regmtl.solvers.parts.quadratic_fista.fista_quadratic`), handing over to
ADMM with exact per-task solves where it crawls
(:func:`~regmtl.solvers.parts.admm.minimize_quadratic`, penalties of W itself), by conjugate
gradients under a task kernel ``alpha / 2 tr(W K W^T)``
certified by its KKT residual (the graph, the mean without a ridge: the model's optimum
solves a linear system, :func:`~regmtl.solvers.parts.newton_model.kernel_model`; no prox, which on
task blocks would be a sparse solve over all tasks), or exactly, task by task, under a pure ridge,
to a tenth of the gap
the step should close -- or, once the steps converge quadratically and this one should end
the solve (the next certificate predicted at the last ratio squared times this one, below
``tol``), to half of ``tol``, so that the last step is not one short; the step is then damped
by a backtracking line search on the true objective (Lee, Sun & Saunders 2014). Near the
optimum the steps are full and few: where proximal gradient on the loss itself needs
thousands of iterations on an ill-conditioned design, this needs tens of Newton steps.

It is also the small route of proximal Newton with a row-separable penalty
(:func:`small_applies`, decided by the problem's sizes alone): there an entrywise penalty's
models are solved by coordinate descent on the per-task Grams
(:func:`~regmtl.solvers.parts.gram_descent.gram_coordinate_descent`),
whose epochs cost ``O(p^2 T)`` where one on the rows costs ``O(n p)``.
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS
from ..certificates.certify import Certificate, Reference, certify, scores_intercepts
from ..parts.admm import minimize_quadratic
from ..parts.gram_descent import gram_coordinate_descent
from ..parts.kernel_quadratic import model_quadratic
from ..parts.newton_loop import model_target, newton_loop
from ..parts.newton_model import armijo, is_task_kernel, kernel_model, newton_model
from ..parts.quadratic import quadratic_applies
from ..parts.quadratic_fista import fista_quadratic
from ..result import SolverResult

__all__ = ["SMALL_ROWS", "SMALL_SIZE", "coordinate_models", "small_applies",
           "structured_newton"]

#: The small route (:func:`small_applies`): at most this many numbers ``n p T`` (rows x
#: features x tasks), and at most :data:`SMALL_ROWS` rows per task and feature (``n <= 4 T
#: p``). Measured on logistic fits with L1 and L2,1, compiled kernels warm: the route costs
#: 0.3-0.95 of proximal Newton on the rows there, and up to 1.3 beyond (``n = 5000, p = 30,
#: T = 5``: the Grams of each model cost more than the epochs they save).
SMALL_SIZE = 300_000
SMALL_ROWS = 4
#: The block kinds whose models are solved by coordinate descent on the Grams (an
#: entrywise penalty: proximal gradient pays a prox and a product per iteration where an
#: epoch updates each entry exactly); the row kinds keep proximal gradient, which their
#: models take in fewer passes.
COORDINATE_KINDS = (ENTRYWISE, POSITIVE_ENTRYWISE)


def small_applies(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                  tol: float) -> bool:
    """Whether a proximal Newton fit with a row-separable penalty (the ``prox_newton`` row)
    runs its models in Gram form (:func:`structured_newton`), decided by the problem alone --
    never by which kernels the process has compiled, so that a problem gives the same numbers
    in every process:

    - the logistic loss (the loss other than the squared one with compiled kernels,
      ``datafit.code``): its curvature
      ``s (1 - s)`` is positive at every score, where the Huber loss's vanishes beyond its
      threshold, a model's Grams lose rank and their epochs crawl;
    - a dense design in memory with ``T p <= n <= SMALL_ROWS T p`` (the Grams no larger than
      the data, and tasks short against their features) and ``n p T <= SMALL_SIZE``;
    - a convex block kind of entries or rows with a duality gap (``alpha > 0``), and
      ``tol >= 1e-12`` (what Gram sums certify).

    A model's Grams then cost about one pass over the rows, each iteration on them
    ``O(p^2 T)``, and the Newton steps are fewer and cheaper in Python calls than coordinate
    descent on the rows."""
    params = penalty.bcd_params(alpha)
    if params is None or params.kind not in (*COORDINATE_KINDS, ROWS, POSITIVE_ROWS):
        return False
    n, p, T = data.n_obs, data.n_features, data.n_tasks
    return (datafit.code is not None and not datafit.quadratic and penalty.has_dual
            and alpha > 0 and tol >= 1e-12 and data.rows_local
            and isinstance(data.X, np.ndarray) and quadratic_applies(data)
            and n <= SMALL_ROWS * T * p and n * p * T <= SMALL_SIZE)


def coordinate_models(penalty: Penalty, alpha: float) -> bool:
    """Whether :func:`structured_newton` solves the models of ``penalty`` by coordinate
    descent on the Grams (``coordinate``): a block kind of :data:`COORDINATE_KINDS`."""
    params = penalty.bcd_params(alpha)
    return params is not None and params.kind in COORDINATE_KINDS


class _GramNewton:
    """Proximal Newton with each model in Gram (or row-space) form (the module's text), as
    a :class:`~regmtl.solvers.parts.newton_loop.NewtonMethod` on the variable V."""

    spent = False

    def __init__(self, data, datafit, penalty, alpha, V, b, ref, fit_intercept, tol,
                 max_inner, coordinate):
        self.data, self.datafit, self.penalty, self.alpha = data, datafit, penalty, alpha
        self.ref, self.fit_intercept, self.tol = ref, fit_intercept, tol
        self.max_inner, self.coordinate = max_inner, coordinate
        f = data.linear(penalty.compose(V), b)
        if fit_intercept:
            f, b = scores_intercepts(data, datafit, f, b)
        self.f, self.b = data.settle(f, b)
        self.V = V
        self.G0_norm = float(np.linalg.norm(ref.G0))
        self.ridge = penalty.ridge_strength(alpha)
        self.plain = penalty.spread(np.ones((1, 1))).size == 1  # a penalty of W itself
        # alpha / 2 tr(W K W^T) certified by its KKT residual (the graph, the mean without a
        # ridge): each model is a linear system, its residual the model's KKT residual
        self.kernel = is_task_kernel(penalty) and not (penalty.has_dual and alpha > 0)

    def certify(self) -> Certificate:
        return certify(self.data, self.datafit, self.penalty, self.alpha, self.V, self.f,
                       self.fit_intercept, self.ref)

    def status(self) -> str:
        return ""

    def _model(self, q, target: float) -> np.ndarray:
        """The model's minimizer with the penalty, to ``target``."""
        penalty, alpha, V = self.penalty, self.alpha, self.V
        kw = dict(tol=target, G0_norm=self.G0_norm)
        if self.ridge is not None:  # the model plus a ridge: minimized exactly, task by task
            return q.ridge(self.ridge)
        if self.coordinate:
            return gram_coordinate_descent(q, penalty, alpha, V, max_epochs=self.max_inner,
                                           **kw)[0]
        if self.kernel:  # a task kernel: the model's optimum solves a linear system
            return kernel_model(q, penalty, alpha, V, max_iter=self.max_inner, **kw)[0]
        if self.plain:  # FISTA while it moves well, then ADMM with exact per-task solves
            return minimize_quadratic(q, penalty, alpha, V, max_iter=self.max_inner, **kw)[0]
        return fista_quadratic(q, penalty, alpha, V, max_iter=self.max_inner, reweight=False,
                               **kw)[0]

    def step(self, cert, progress, budget) -> int | None:
        data, datafit, penalty = self.data, self.datafit, self.penalty
        y, c = data.y, data.c
        theta, h, z = newton_model(datafit, y, c, self.f)
        q = model_quadratic(data, h, z, self.fit_intercept)
        V_new = self._model(q, model_target(cert, self.tol, progress.ratio))
        b_new = (q.intercepts(penalty.compose(V_new)) if self.fit_intercept
                 else np.zeros_like(self.b))
        dV, db = V_new - self.V, b_new - self.b
        dV, db, df = data.settle(dV, db, data.linear(penalty.compose(dV), db))
        t = armijo(datafit, penalty, self.alpha, y, c, theta, self.V, self.f, dV, df,
                   cert.primal, data.numbers)
        if t is None:  # no decrease along the Newton direction
            return None
        V, b, f = self.V + t * dV, self.b + t * db, self.f + t * df
        if self.fit_intercept:
            f, b = scores_intercepts(data, datafit, f, b)
        self.V, self.b, self.f = data.settle(V, b, f)
        return 1


def structured_newton(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                      V: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                      tol: float, max_iter: int, verbose: int = 0,
                      max_inner: int = 2000, coordinate: bool = False) -> SolverResult:
    """Minimize ``datafit + Omega`` from the variable V and intercepts b; ``max_iter`` bounds
    the Newton steps, ``max_inner`` the proximal-gradient iterations (or the epochs) of each
    model. ``coordinate``: the models (of a convex row-separable penalty with a dual,
    ``penalty.bcd_params``, ``alpha > 0``) solved by block coordinate descent on their
    per-task Grams (:func:`gram_coordinate_descent`), not by proximal gradient."""
    method = _GramNewton(data, datafit, penalty, alpha, V, b, ref, fit_intercept, tol,
                         max_inner, coordinate)
    cert, progress, converged, stalled = newton_loop(
        method, tol=tol, max_iter=max_iter, label="newton/gram", verbose=verbose, patience=10)
    return SolverResult(penalty.compose(method.V), method.b, max(progress.steps, 1), cert,
                        converged, method.V, stalled=stalled)
