"""What every solver returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .certificates.certify import Certificate


@dataclass
class SolverResult:
    """What every solver returns: the solution and its certificate.

    Parameters
    ----------
    W : ndarray of shape (p, T)
        Coefficients, column t for task t.
    b : ndarray of shape (T,)
        Intercepts.
    n_iter : int
        Epochs or iterations run.
    certificate : Certificate
        The final optimality certificate.
    converged : bool
        Whether the certificate met ``tol``.
    V : ndarray, optional
        The penalty's variable: W itself (the default) unless the penalty lifts it, as the
        pair ``(P, Q)`` of shape (2, p, T) with ``W = P + Q``.
    stalled : bool, default=False
        The solver stopped before ``max_iter`` because its certificate stopped improving (the
        rounding floor, or progress too slow to measure), not because iterations ran out.
    theta : ndarray of shape (n_obs,), optional
        The dual point the certificate was computed at, where the solver keeps one (the
        primal-dual and linear-programming rows of the pinball loss): a path's next point
        starts from it.
    residual_variance : ndarray of shape (T,), optional
        Each task's weighted mean squared residual at the solution, where the solver reads
        the rows once more at its end anyway (the out-of-core squared loss's certifying pass):
        the fit's ``residual_variance_`` without another pass.

    See Also
    --------
    regmtl.solvers.solve : Returns one.

    Examples
    --------
    >>> import numpy as np
    >>> import regmtl as rm
    >>> from regmtl.solvers import solve
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 3))
    >>> res = solve(rm.as_task_data(X, Y), rm.Quadratic(), rm.SparseLowRank(), alpha=0.1)
    >>> res.W.shape, res.V.shape  # W = P + Q, V = (P, Q)
    ((8, 3), (2, 8, 3))
    >>> bool(np.allclose(res.W, res.V[0] + res.V[1]))
    True
    """

    W: np.ndarray
    b: np.ndarray
    n_iter: int
    certificate: Certificate
    converged: bool
    V: np.ndarray | None = None
    stalled: bool = False
    theta: np.ndarray | None = None
    residual_variance: np.ndarray | None = None

    def __post_init__(self):
        if self.V is None:
            self.V = self.W
