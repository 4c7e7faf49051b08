r"""The solve the estimators call: pick a row of the solver table, run it, certify.

:func:`solve` restricts the problem to its live features, returns W = 0 at ``alpha >=
alpha_max`` without iterating, checks a warm start, runs the row of
:data:`~regmtl.solvers.policy.SOLVER_TABLE` that :func:`~regmtl.solvers.policy.choose_row`
picks (giving it :func:`solve` itself, for the stages of majorize-minimize), brings the
result to the caller and certifies it (:func:`~regmtl.solvers.certificates.certify.certify`).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._jit import kernel_scope
from ..blocks import TaskBlocks
from ..datafits import Datafit
from ..penalties import Penalty
from .certificates.certify import Reference, certify, reference, rounding_floor, scores_intercepts
from .parts.balance import balanced_solve
from .parts.dead_features import expanded, live_features, restricted, restricted_reference
from .policy import SOLVER_TABLE, SOLVERS, choose_row
from .result import SolverResult
from .solver import Call, Start

__all__ = ["solve", "solve_live"]


def solve(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    *,
    solver: str = "auto",
    W0: np.ndarray | None = None,
    b0: np.ndarray | None = None,
    V0: np.ndarray | None = None,
    fit_intercept: bool = True,
    tol: float = 1e-4,
    max_iter: int = 1000,
    ref: Reference | None = None,
    verbose: int = 0,
    options: dict | None = None,
    tighten_warm: bool = True,
    theta0: np.ndarray | None = None,
) -> SolverResult:
    r"""Minimize the multi-task objective and certify the result.

    Minimizes

    .. math::

        \sum_r c_r\, \ell(y_r, x_r^\top w_t + b_t) + \Omega(W)

    over W (p x T) and the intercepts b, the row weights ``c`` of ``data`` holding the
    per-task means and task weights. ``solver="auto"`` picks block coordinate descent for
    row-separable penalties (``L1``, ``L2``, ``ElasticNet``, ``L21``; and ``MCP``,
    ``SCAD``, ``CappedL1``, to a stationary point certified by the KKT residual), conjugate
    gradients for the squared loss with a quadratic task-coupling penalty (``MeanRegularized``,
    ``GraphLaplacian``), ADMM with exact per-task solves for the squared loss with another
    penalty of W itself (``Trace``, ``Clustered``), and FISTA otherwise. When
    ``alpha >= alpha_max`` the solution is
    W = 0 exactly, returned without iterating.

    Parameters
    ----------
    data : TaskData
        The problem (:func:`~regmtl.as_task_data`; targets encoded to -1/+1 for the
        logistic loss), or any :class:`~regmtl.blocks.TaskBlocks` (task blocks on Dask).
    datafit : Datafit
        The loss, :class:`~regmtl.Quadratic` or :class:`~regmtl.Logistic`.
    penalty : Penalty
        The penalty object (validated against the problem's shape).
    alpha : float
        Overall strength, >= 0.
    solver : {"auto", "bcd", "fista", "cg", "admm"}, default="auto"
        The algorithm; ``"bcd"`` needs a row-separable penalty, ``"cg"`` the squared loss
        with ``MeanRegularized`` or ``GraphLaplacian``, and ``"admm"`` the squared loss with
        a penalty of W itself.
    W0 : ndarray of shape (p, T), optional
        Starting coefficients (a warm start); zeros by default.
    b0 : ndarray of shape (T,), optional
        Starting intercepts; those of W = 0 by default.
    V0 : ndarray, optional
        Starting lifted variable (``SparseLowRank`` and the robust models: FISTA and ADMM over
        the parts).
    theta0 : ndarray of shape (n_obs,), optional
        A starting dual point (``SolverResult.theta`` of a path's previous point), for the
        rows that iterate on one (the pinball loss's primal-dual row); ignored by the others.
    tighten_warm : bool, default=True
        With a warm start, solve to at most a tenth of the starting point's certificate (a
        path's points each move at their own alpha); False keeps ``tol``, so a start that
        meets it returns at once (an estimator's ``warm_start`` refit).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    tol : float, default=1e-4
        Stop when the duality gap is below ``tol`` times the objective at W = 0, or the
        relative KKT residual below ``tol``.
    max_iter : int, default=1000
        Epochs or iterations.
    ref : Reference, optional
        The problem at W = 0 (:func:`~regmtl.solvers.reference`); computed when omitted
        (pass it to save that work along a path).
    verbose : int, default=0
        Print the certificate at every check when > 0.
    options : dict, optional
        Options of block coordinate descent (``working_set``, ``screening``, ``anderson``,
        ``gram``, ``p0``; see :func:`~regmtl.solvers.bcd`), ignored by the other solvers.

    Returns
    -------
    SolverResult
        Coefficients, intercepts, iterations, the certificate and whether it met ``tol``.

    Raises
    ------
    ValueError
        For an unknown solver, a solver that does not apply to the penalty or loss, invalid
        options, or penalty parameters that do not fit the problem.

    Warns
    -----
    ConvergenceWarning
        When the solver stops at ``max_iter`` short of ``tol``, with the certificate reached.

    See Also
    --------
    regmtl.MultiTaskRegressor : The estimator around it.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import reference, solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> data = rm.as_task_data(X, Y)
    >>> res = solve(data, rm.Quadratic(), rm.L21(), alpha=0.1)
    >>> res.W.shape, res.b.shape, res.converged, res.certificate.kind
    ((8, 3), (3,), True, 'duality_gap')
    >>> model = rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, Y)
    >>> bool(np.allclose(res.W, model.coef_.T))
    True
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")
    penalty.check(data.n_features, data.n_tasks)
    with kernel_scope():  # one path (NumPy twins or compiled kernels) for the whole solve
        return _solve_on(data, datafit, penalty, alpha, live_features(data), False,
                         solver=solver, W0=W0, b0=b0, V0=V0, fit_intercept=fit_intercept,
                         tol=tol, max_iter=max_iter, ref=ref, verbose=verbose,
                         options=options, tighten_warm=tighten_warm, theta0=theta0)


def solve_live(
    data: TaskBlocks,
    datafit: Datafit,
    penalty: Penalty,
    alpha: float,
    **kwargs,
) -> SolverResult:
    """:func:`solve` with its start, its reference and its result on the problem's live
    features (:func:`~regmtl.solvers.parts.dead_features.live_features`): what a path keeps between
    its points, no p x T matrix of zeros at the dead features formed.

    ``kwargs`` are :func:`solve`'s, with ``W0`` and ``V0`` given on the live features (the
    rows ``live`` of the whole problem's, as a previous call returned them) and ``ref`` the
    live features' (:func:`~regmtl.solvers.parts.dead_features.restricted_reference` of the whole
    problem's; computed when omitted). Where features are dead, a ``W0`` given with a ``V0``
    (its own ``(P, Q)`` of sparse plus low rank, or W0 itself where the penalty's variable is
    W) is handed over: the solve iterates on it (a path's previous result, held nowhere
    else), no copy beside it (the rows read V0, or copy it, before they write W). Returns
    the result, its ``W`` and ``V`` on the features ``live_features(data)`` (all of them
    where that is None): the rows ``live`` of :func:`solve`'s result, the same numbers.
    """
    solver = kwargs.pop("solver", "auto")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")
    penalty.check(data.n_features, data.n_tasks)
    with kernel_scope():
        return _solve_on(data, datafit, penalty, alpha, live_features(data), True,
                         solver=solver, **kwargs)


def on_features(W0: np.ndarray | None, V0: np.ndarray | None,
                live: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The start ``(W0, V0)`` on the features ``live`` (its rows there; one array where V0
    is W0, the penalty's variable being W itself)."""
    W = None if W0 is None else np.asarray(W0)[live]
    V = W if V0 is not None and V0 is W0 else (
        None if V0 is None else np.asarray(V0)[..., live, :])
    return W, V


def _solve_on(data, datafit, penalty, alpha, live, keep_live, *, solver="auto", W0=None,
              b0=None, V0=None, fit_intercept=True, tol=1e-4, max_iter=1000, ref=None,
              verbose=0, options=None, tighten_warm=True, theta0=None) -> SolverResult:
    """:func:`solve` on the features ``live`` (a mask holding every live feature, or None for
    all), warned about when short of ``tol``. With ``keep_live`` the start, ``ref`` and the
    result are on ``live``; else they are the whole problem's (the start restricted once, the
    result widened with zero rows)."""
    datafit = datafit.bind(data)
    if keep_live and live is not None:  # the balanced problem, on the same features
        def again(d, f, p, a, **kw):
            return _solve_on(d, f, p, a, live, True, **kw)
    else:
        again = solve
    balanced = balanced_solve(  # data far from 1 in magnitude: the same problem scaled
        again, data, datafit, penalty, alpha, solver=solver, W0=W0, b0=b0, V0=V0,
        fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, ref=ref, verbose=verbose,
        options=options, tighten_warm=tighten_warm, theta0=theta0)
    if balanced is not None:  # (on the features the call gave: whole, or live)
        return balanced
    whole = ref is None or not keep_live
    ref = ref if ref is not None else reference(data, datafit, fit_intercept)
    widen = live is not None and not keep_live
    if live is not None:  # features zero on every row: their rows of W are zero, solved
        data = restricted(data, live)  # without them
        ref = restricted_reference(ref, live) if whole else ref
        if widen:
            W0, V0 = on_features(W0, V0, live)
    res, name = _solve(data, datafit, penalty, alpha, solver, W0, b0, V0, fit_intercept, tol,
                       max_iter, ref, verbose, options, tighten_warm, theta0,
                       own_start=keep_live and live is not None)
    if not res.converged:
        shown = "the majorize-minimize stages" if getattr(res, "stages", None) else name
        warnings.warn(_shortfall(shown, res, tol, max_iter), ConvergenceWarning, stacklevel=4)
    return expanded(res, live) if widen else res


def _solve(data, datafit, penalty, alpha, solver, W0, b0, V0, fit_intercept, tol, max_iter,
           ref, verbose, options, tighten_warm=True, theta0=None,
           own_start=False) -> tuple[SolverResult, str]:
    """:func:`solve` on a problem whose features are all live: the result (not warned
    about) and the solver's name. With ``own_start`` a W0 given with a V0 (its own, or
    W0 itself) is the iterate itself (the caller holds it no longer), not a copy."""
    p, T = data.n_features, data.n_tasks
    row = choose_row(data, datafit, penalty, alpha, solver=solver, tol=tol, ref=ref)
    solver = SOLVER_TABLE[row].answers
    if options is None:
        options = {}
    else:  # (coordinate descent's module, which holds the options, only where some are given)
        from .methods.bcd import check_options

        options = check_options(options, data, datafit)
    if theta0 is not None:  # (after the check: not one of the user's solver_options)
        options["dual"] = np.asarray(theta0, dtype=np.float64)
    if _zero_is_optimal(penalty, alpha, ref):
        # W = 0 is optimal by the very test that defines alpha_max (same G0), so alpha >=
        # alpha_max gives W = 0 exactly; iterating could leave rounding-level nonzeros.
        W = np.zeros((p, T))
        V = penalty.lift(W)
        b = ref.b0.copy() if fit_intercept else np.zeros(T)
        cert = certify(data, datafit, penalty, alpha, V, ref.f0, fit_intercept, ref)
        return SolverResult(W, b, 1, cert, True, V), solver
    if W0 is None:
        W = np.zeros((p, T))
    elif own_start and V0 is not None:  # (handed over: not copied; V0 may be W0 itself)
        W = np.asarray(W0, dtype=np.float64, order="C")
    else:
        W = np.array(W0, dtype=np.float64, order="C")
    project = getattr(penalty, "project", None)
    if W0 is not None and project is not None:  # a warm start outside a sign constraint
        W = np.ascontiguousarray(project(W))
    if b0 is not None and fit_intercept:
        b = np.array(b0, dtype=np.float64)
    else:
        b = ref.b0.copy() if fit_intercept else np.zeros(T)
    run_tol = tol
    # (a row that starts afresh gains nothing from a path's start: not certified there)
    if W0 is not None and (SOLVER_TABLE[row].warm or not tighten_warm):
        start, b_start, V_start = _start_point(data, datafit, penalty, alpha, W, b, V0,
                                               fit_intercept, ref)
        if tighten_warm:
            run_tol = min(tol, max(0.1 * start.relative, 1e-3 * tol, 1e-12))
        elif start.converged(tol) and not penalty.majorized:
            # a continuation whose start is the answer: no iteration (not for majorize-minimize,
            # whose certificate holds at every zero row: its support is that of its stages)
            start_res = SolverResult(W, b_start, 0, start, True, V_start)
            start_res.W, start_res.b = data.arrays(W, b_start)
            if V_start is not None:
                (start_res.V,) = data.arrays(V_start)
            _check_finite(start_res)
            return start_res, solver
    call = Call(data, datafit, penalty, alpha, ref, fit_intercept, run_tol, max_iter,
                verbose, options, solve)
    res = SOLVER_TABLE[row].run(call, Start(W, b, V0))
    # the fitted W and b (p x T numbers) with the caller, wherever the blocks are
    res.W, res.b = data.arrays(res.W, res.b)
    if res.V is not None:
        (res.V,) = data.arrays(res.V)
    _check_finite(res)
    res.converged = res.certificate.converged(tol)
    if not res.converged and res.certificate.kind == "duality_gap":
        # a gap that rounding of X^T theta explains (huge columns against alpha) is no
        # shortfall: the floor is taken off before the gap is compared with tol
        res.certificate.rounding = rounding_floor(
            data, datafit, penalty, alpha, res.V if res.V is not None else penalty.lift(res.W),
            data.linear(res.W, res.b), fit_intercept)
        res.converged = res.certificate.converged(tol)
    return res, solver


def _start_point(data, datafit, penalty, alpha, W, b, V0, fit_intercept, ref):
    """The certificate of a warm start (its intercepts fitted), with those intercepts and the
    penalty's variable. A path step is solved to ``tol`` and at most a tenth of it, so that
    every point of a path is a solve at its own alpha (near the end of a path the previous
    solution often meets ``tol`` already, and would come back unmoved, tying neighbouring
    points), but not below ``1e-3 * tol`` nor the rounding floor of the certificates (1e-12);
    a continuation at the same alpha (``tighten_warm=False``) returns the start if it meets
    ``tol``, after no iteration."""
    f = data.linear(W, b)
    if fit_intercept:
        f, b = scores_intercepts(data, datafit, f, b.copy())
    V = penalty.lift(W) if V0 is None else np.asarray(V0, dtype=np.float64)
    return certify(data, datafit, penalty, alpha, V, f, fit_intercept, ref), b, V


def _check_finite(res: SolverResult) -> None:
    if not (np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.b))
            and np.isfinite(res.certificate.primal)):
        raise FloatingPointError(
            "the solver produced non-finite coefficients or objective; the data's scale "
            "overflows float64 arithmetic. Standardize X and y (e.g. divide by their standard "
            "deviations) and fit again."
        )


def _shortfall(solver: str, res: SolverResult, tol: float, max_iter: int) -> str:
    """The ConvergenceWarning's text: what was reached, why the solve stopped, what to do."""
    cert = res.certificate
    what = "duality gap" if cert.kind == "duality_gap" else "KKT residual"
    reached = f"a relative {what} of {cert.relative:.3e} > tol={tol:g}"
    if res.stalled:
        return (
            f"{solver} stopped after {res.n_iter} iterations because progress stalled at "
            f"{reached} (max_iter={max_iter} was not reached; more iterations will not help). "
            "The problem is ill-conditioned (collinear or badly scaled columns) or tol is "
            f"below what float64 can certify here: standardize the features, loosen tol to "
            f"{10 * cert.relative:.0e}, or raise alpha."
        )
    if solver == "direct":  # one exact solve: no iterations to run out of
        return (
            f"the exact ridge solve reached {reached}: the tasks' Grams are too "
            "ill-conditioned for float64 at this alpha. Standardize the features, raise "
            "alpha, or loosen tol."
        )
    return (
        f"{solver} ran out of iterations (max_iter={max_iter}) at {reached}. Increase "
        "max_iter, loosen tol, or raise alpha."
    )


def _zero_is_optimal(penalty: Penalty, alpha: float, ref: Reference) -> bool:
    """``alpha >= penalty.alpha_max(G0)``, False where the penalty has no alpha_max."""
    alpha_max = getattr(penalty, "alpha_max", None)
    if alpha_max is None or alpha <= 0:
        return False
    try:
        return bool(alpha >= alpha_max(ref.G0))
    except ValueError:  # no finite alpha gives W = 0 (e.g. l1_ratio = 0)
        return False
