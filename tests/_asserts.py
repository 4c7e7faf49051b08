"""Contract checks every penalty of the bank (``_cases.py``) must pass.

Each check is one function with its tolerances stated; the test modules parametrize them over
``PENALTY_CASES`` and ``PROBLEMS``. Only public API is used.

- ``assert_prox_optimal``: ``U = prox(V, step, alpha)`` minimizes
  ``F(U) = ||U - V||^2 / (2 step) + Omega(U)``: no point a generic minimizer
  (``scipy.optimize.minimize``, Powell, started at V) finds is lower than ``F(U)`` by more than
  ``1e-12 |F(U)|``, and that minimizer reaches ``F(U)`` to ``1e-3`` relative (Powell on a
  nonsmooth objective stalls near kinks, so this side only shows it solved the same problem;
  a case that writes its penalty for cvxpy, ``cvx``, is minimized by cvxpy instead, an exact
  convex solve that does not stall where several entries tie at a kink);
  where the penalty provides it, ``(V - U) / step`` is in the subdifferential at U
  (``subdiff_distance`` or the gradient, to ``1e-10 max(1, max |V|)``).
- ``assert_fenchel_young``: ``Omega(W) + Omega*(G) >= <W, G>`` for G brought into the domain
  (to ``1e-12`` relative), with equality (``1e-10`` relative) at ``G = (V - U) / step``, which lies
  in the subdifferential at the prox point U (penalties whose variable is W itself).
- ``assert_zero_at_alpha_max``: a fit at ``alpha_max`` returns W = 0 exactly; at
  ``0.99 alpha_max`` it does not.
- ``assert_roundtrips``: ``sklearn.base.clone`` refit and ``save`` / ``regmtl.load`` of a fitted
  estimator predict what it predicts, to ``1e-12``.
- ``assert_certificate_meets_tol``: a fitted estimator's certificate is within its ``tol``
  (duality gap relative to the objective at W = 0, or the relative KKT residual).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from _cases import PenaltyCase, Problem, cvx_module
from conftest import CLARABEL_OPTIONS
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers import reference


def prox_objective(case: PenaltyCase, V: np.ndarray, step: float,
                   alpha: float) -> Callable[[np.ndarray], float]:
    """``F(U) = ||U - V||^2 / (2 step) + Omega(U)`` with Omega from the penalty's ``value``."""
    def F(U: np.ndarray) -> float:
        return float(np.sum((U - V) ** 2) / (2.0 * step) + case.penalty.value(U, alpha))
    return F


def cvx_prox(case: PenaltyCase, V: np.ndarray, step: float, alpha: float) -> np.ndarray:
    """``argmin_U ||U - V||^2 / (2 step) + Omega(U)`` by cvxpy, Omega the case's ``cvx``."""
    cp = cvx_module()
    U = cp.Variable(V.shape)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(U - V) / (2.0 * step) + case.cvx(U, alpha)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    return np.asarray(U.value, dtype=np.float64)


def assert_prox_optimal(case: PenaltyCase, V: np.ndarray, step: float, alpha: float) -> None:
    """The prox point is the minimizer (generic numerical minimizer, and the subdifferential
    or gradient where the penalty provides one). Tolerances in the module docstring."""
    pen = case.penalty
    U = pen.prox(V, step, alpha)
    assert U.shape == V.shape
    F = prox_objective(case, V, step, alpha)
    best = F(U)
    scale = max(abs(best), 1e-300)
    if case.cvx is not None:
        num = F(cvx_prox(case, V, step, alpha))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(lambda z: F(z.reshape(V.shape)), V.ravel(), method="Powell",
                           options={"xtol": 1e-8, "ftol": 1e-12, "maxfev": 20_000})
        num = F(res.x.reshape(V.shape))
    # exact: any point bounds the minimum from above
    assert best <= num + 1e-12 * scale, f"scipy beat the prox: {num} < {best}"
    # and the generic minimizer did solve the same problem
    assert num <= best + 1e-3 * scale, f"scipy stopped at {num}, prox at {best}"
    # the optimality condition 0 in (U - V) / step + dOmega(U), where the penalty states it
    G = (V - U) / step
    atol = 1e-10 * max(1.0, float(np.abs(V).max()))
    if hasattr(pen, "subdiff_distance") and "subdiff_bound" not in case.tags:
        assert np.max(pen.subdiff_distance(U, G, alpha)) <= atol
    if hasattr(pen, "gradient"):
        np.testing.assert_allclose(pen.gradient(U, alpha), G, rtol=0, atol=atol)


def assert_fenchel_young(case: PenaltyCase, rng: np.random.Generator, alpha: float,
                         p: int = 5, T: int = 4) -> None:
    """``Omega(W) + Omega*(G) >= <W, G>``, with equality at G in the subdifferential.

    Only for penalties with a tractable conjugate (``has_dual``). G is scaled into the
    conjugate's domain by ``dual_scaling``; W ranges over random points and (through
    ``compose``) lifted variables. Equality is checked at the prox point U of a random V with
    ``G = (V - U) / step``, in the subdifferential at U (non-lifted penalties).
    """
    pen = case.penalty
    assert case.has_dual
    for _ in range(3):
        G = 2.0 * rng.standard_normal((p, T))
        Gs = np.asarray(pen.dual_scaling(G, alpha)) * G
        conj = pen.conjugate(Gs, alpha)
        assert np.isfinite(conj)
        for _ in range(20):
            V = rng.standard_normal(case.variable_shape(p, T)) * 10.0 ** rng.uniform(-2, 1)
            val = pen.value(V, alpha)
            inner = float(np.sum(Gs * pen.compose(V)))
            assert val + conj >= inner - 1e-12 * max(1.0, abs(val), abs(inner))
    if case.lifted:
        return
    for _ in range(3):
        V = 2.0 * rng.standard_normal((p, T))
        step = rng.uniform(0.3, 1.5)
        U = pen.prox(V, step, alpha)
        G = (V - U) / step
        s = np.asarray(pen.dual_scaling(G, alpha))
        assert np.all(s >= 1.0 - 1e-12), "a subgradient lies in the conjugate's domain"
        lhs = pen.value(U, alpha) + pen.conjugate(G, alpha)
        rhs = float(np.sum(U * G))
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs), abs(rhs))


def fit(problem: Problem, penalty: Any, alpha: float, **kw: Any) -> Any:
    """The problem's estimator fitted with this penalty and alpha."""
    return problem.estimator(penalty=penalty, alpha=alpha, **kw).fit(*problem.fit_args)


def assert_zero_at_alpha_max(case: PenaltyCase, problem: Problem) -> float:
    """W = 0 exactly at ``regmtl.alpha_max`` (bit for bit), and not at 0.99 of it.
    Returns alpha_max."""
    a = rm.alpha_max(*problem.fit_args, penalty=case.penalty, loss=problem.loss)
    assert np.isfinite(a) and a > 0
    at = fit(problem, case.penalty, a, tol=1e-8, max_iter=5000)
    assert np.all(at.coef_ == 0.0), "W != 0 at alpha_max"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        below = fit(problem, case.penalty, 0.99 * a, tol=1e-8, max_iter=5000)
    assert np.any(below.coef_ != 0.0), "W = 0 below alpha_max"
    return a


def _predictions(model: Any, problem: Problem) -> np.ndarray:
    out = model.predict(*problem.predict_args)
    parts = out if isinstance(out, list) else [out]
    return np.concatenate([np.asarray(o, dtype=float).ravel() for o in parts])


def assert_roundtrips(model: Any, problem: Problem, path: str | os.PathLike) -> None:
    """``clone`` + refit and ``save`` / ``regmtl.load`` give the same predictions (1e-12),
    and the clone keeps the penalty (equal, not the same object's state)."""
    pred = _predictions(model, problem)
    twin = clone(model)
    assert twin.get_params()["penalty"] == model.get_params()["penalty"]
    twin.fit(*problem.fit_args)
    np.testing.assert_allclose(_predictions(twin, problem), pred, rtol=1e-12, atol=1e-12)
    model.save(path)
    loaded = rm.load(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.coef_, model.coef_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_predictions(loaded, problem), pred, rtol=1e-12, atol=1e-12)


def assert_certificate_meets_tol(model: Any, case: PenaltyCase, problem: Problem,
                                 tol: float) -> None:
    """The certificate of a fitted estimator meets its ``tol``: a duality gap at most
    ``tol * P(0)`` (``P(0)`` from :func:`regmtl.solvers.reference`, the scale of ``tol``) where
    the penalty has a dual, else a relative KKT residual at most ``tol``; and the objective it
    reports is that of its coefficients within the gap."""
    datafit = rm.Quadratic() if problem.loss == "squared" else rm.Logistic()
    P0 = reference(problem.data(), datafit, fit_intercept=True).P0
    if case.has_dual:
        assert not hasattr(model, "kkt_residual_")
        assert 0.0 <= model.dual_gap_ <= tol * P0, (model.dual_gap_, tol * P0)
    else:
        assert not hasattr(model, "dual_gap_")
        assert 0.0 <= model.kkt_residual_ <= tol, model.kkt_residual_
    assert model.objective_ <= P0 * (1.0 + 1e-12)
