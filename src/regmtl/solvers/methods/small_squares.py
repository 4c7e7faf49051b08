r"""The small route of the squared loss: a small fit with a convex row-separable penalty
solved by block coordinate descent on the per-task Grams, certified on the data.

The squared loss is its own quadratic,

.. math::

    q(W) = \sum_t \tfrac12 w_t^\top H_t w_t - g_t^\top w_t + \tfrac12 e_t, \qquad
    H_t = X_{t,c}^\top \operatorname{diag}(c_t) X_{t,c},

the intercepts minimized out (:class:`~regmtl.solvers.parts.quadratic.TaskQuadratic`, built in one
pass over the rows and kept with the problem). Block coordinate descent on it
(:func:`~regmtl.solvers.parts.gram_descent.gram_coordinate_descent`) costs ``O(p^2 T)`` per
epoch where an epoch over the rows costs ``O(n p)``, and runs no working sets, screening or
dual projections: on a small problem a fit is a handful of NumPy calls per epoch, and loads
neither numba nor the modules of coordinate descent over the rows. The epochs stop on the
duality gap read from the Gram sums; the fit is then certified on the data
(:func:`~regmtl.solvers.certificates.certify.certify`, the same certificate as every solver's).
Where the two disagree (the rounding of the sums), the epochs go on to a tenth of their target, at
most :data:`ROUNDS` times; short of ``tol`` then, the result says so, and the solver table's
runner has coordinate descent over the rows finish from that point.

The route is decided by the problem alone (:func:`small_squares_applies`), on the rows
counted by their weights relative to the smallest one, so that integer weights, the rows
they repeat and the weights times any constant take it together.
"""

from __future__ import annotations

import numpy as np

from ...blocks import TaskBlocks
from ...datafits import Datafit
from ...penalties import Penalty
from ...penalties.base import ENTRYWISE, POSITIVE_ENTRYWISE, POSITIVE_ROWS, ROWS
from ..certificates.certify import Reference, certify
from ..parts.gram_descent import gram_coordinate_descent
from ..parts.quadratic import MAX_FEATURES, TASK_GRAM_ROWS, task_quadratic, weighted_rows
from ..result import SolverResult

__all__ = ["ROUNDS", "SMALL_SQUARES_ROWS", "SMALL_SQUARES_SIZE",
           "small_least_squares", "small_squares_applies"]

#: The route's rows per task and feature: ``T p <= m <= SMALL_SQUARES_ROWS T p`` (m the
#: rows counted by their weights relative to the smallest one). Above (the same boundary,
#: :data:`~regmtl.solvers.parts.quadratic.TASK_GRAM_ROWS`), coordinate descent runs its own
#: per-task Gram form (:func:`~regmtl.solvers.methods.bcd.least_squares_bcd`, ``m > 1.5 T p``), with
#: working sets and Anderson extrapolation; below ``T p``, the Grams outgrow the data.
SMALL_SQUARES_ROWS = TASK_GRAM_ROWS
#: At most this many numbers ``m p T`` (proximal Newton's small route's bound, ``SMALL_SIZE``).
SMALL_SQUARES_SIZE = 300_000
#: Rounds of epochs, each to a tenth of the last one's target, while the certificate on the
#: data misses ``tol``.
ROUNDS = 2
_KINDS = (ENTRYWISE, POSITIVE_ENTRYWISE, ROWS, POSITIVE_ROWS)


def small_squares_applies(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                          tol: float) -> bool:
    """Whether ``solver="auto"`` fits the squared loss by :func:`small_least_squares`,
    decided by the problem alone (never by which kernels the process has compiled):

    - the squared loss with a convex block kind of entries or rows and a duality gap
      (``alpha > 0``), ``tol >= 1e-12`` (what Gram sums certify);
    - several tasks in this process (a single task keeps coordinate descent over its rows:
      scikit-learn's iterates, to rounding), at most ``MAX_FEATURES`` features;
    - ``T p <= m <= SMALL_SQUARES_ROWS T p`` and ``m p T <= SMALL_SQUARES_SIZE``, with ``m``
      the rows counted by their weights relative to the smallest one
      (:func:`~regmtl.solvers.parts.quadratic.weighted_rows`): a fit with integer weights, the fit
      of the rows they repeat and a fit with the weights times a constant take the same
      route, and the same iterates to rounding."""
    params = penalty.bcd_params(alpha)
    if params is None or params.kind not in _KINDS:
        return False
    if not (datafit.quadratic and penalty.has_dual and alpha > 0 and tol >= 1e-12
            and data.rows_local and data.n_tasks > 1 and data.n_features <= MAX_FEATURES):
        return False
    p, T = data.n_features, data.n_tasks
    m = weighted_rows(data)
    return T * p <= m <= SMALL_SQUARES_ROWS * T * p and m * p * T <= SMALL_SQUARES_SIZE


def small_least_squares(data: TaskBlocks, datafit: Datafit, penalty: Penalty, alpha: float,
                        W: np.ndarray, b: np.ndarray, *, ref: Reference, fit_intercept: bool,
                        tol: float, max_iter: int, verbose: int = 0) -> SolverResult:
    """Minimize the squared loss plus a convex row-separable penalty from W (a warm start;
    the intercepts are minimized out, so ``b`` is not read) by block coordinate descent on
    the per-task Grams; ``max_iter`` bounds the epochs. Certified by the duality gap on the
    data."""
    q = task_quadratic(data, fit_intercept)
    G0_norm = float(np.linalg.norm(ref.G0))
    W = np.array(W, dtype=np.float64, order="C")
    target = tol * ref.P0  # the absolute gap the certificate must reach
    total = 0
    for _ in range(ROUNDS):
        W, used = gram_coordinate_descent(q, penalty, alpha, W, tol=target,
                                          max_epochs=max_iter - total, G0_norm=G0_norm)
        total += used
        b = q.intercepts(W) if fit_intercept else np.zeros(data.n_tasks)
        cert = certify(data, datafit, penalty, alpha, W, data.linear(W, b), fit_intercept, ref)
        if verbose:
            print(f"[bcd/gram] epoch {total:5d}  {cert.kind} {cert.relative:.3e}")
        converged = cert.converged(tol)
        if converged or total >= max_iter:
            break
        target *= 0.1
    return SolverResult(W, b, max(total, 1), cert, converged)
