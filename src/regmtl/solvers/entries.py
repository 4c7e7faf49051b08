r"""The public entries of the solver families: :func:`bcd`, :func:`fista` and :func:`admm`.

Each runs the row of :data:`~regmtl.solvers.policy.SOLVER_TABLE` that the table picks for the
problem within its family (one dispatch, :func:`~regmtl.solvers.policy.run_solver`): block
coordinate descent runs least squares, proximal Newton, a stationary point of a nonconvex
penalty or the majorize-minimize stages of a penalty that declares a convex surrogate; FISTA
runs proximal gradient or proximal Newton in Gram or row-space form. The stages of
majorize-minimize solve with :func:`~regmtl.solvers.solve.solve`, given to the runner.
"""

from __future__ import annotations

import numpy as np

from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates.certify import Reference
from .policy import run_solver
from .result import SolverResult
from .solve import solve

__all__ = ["admm", "bcd", "fista"]


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
    return run_solver("bcd", data, datafit, penalty, alpha, W, b, ref=ref,
                      fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, verbose=verbose,
                      # (a nonconvex penalty has no gap-safe rule: screening is off there)
                      options=dict(working_set=working_set,
                                   screening=screening and not penalty.nonconvex,
                                   anderson=anderson, gram=gram, p0=p0), inner=solve)


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
    (``regmtl.solvers.methods.structured_newton``); on wide tasks with a penalty of W itself,
    proximal gradient hands over to proximal Newton with row-space models when, after the cost of a
    few of them (``regmtl.solvers.parts.kernel_quadratic.newton_budget``), its rate predicts as
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
    return run_solver("fista", data, datafit, penalty, alpha, W, b, ref=ref,
                      fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, verbose=verbose,
                      V0=V0, options=dict(check_every=check_every), inner=solve)


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
        A penalty of W itself, or of parts summing to W (``SparseLowRank``,
        ``RobustLowRank``, ``RobustFeatures``: ADMM over the parts, each task's quadratic of
        their sum solved exactly).
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
    return run_solver("admm", data, datafit, penalty, alpha, W, b, ref=ref,
                      fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, verbose=verbose,
                      options=dict(check_every=check_every), inner=solve)
