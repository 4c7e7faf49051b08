"""ADMM over the parts of ``W = P + Q`` (``regmtl.solvers.parts.parts_admm``): sparse + low rank and
the robust models with the squared loss, each task's quadratic of ``P + Q`` solved exactly
(row-space form on wide tasks, Gram form on long ones).

Checked: the exact first step against its optimality condition; the duality gap of the result
evaluated here in NumPy (the penalty and its dual norm written out from their formulas); the
agreement with proximal gradient over (P, Q) (``solver="fista"``) to the stated tolerance; and
the split penalties on School at small alpha certifying at the defaults (they stopped at
max_iter with relative gaps near 3e-4 under proximal gradient).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers import reference, solve
from regmtl.solvers.parts.admm import exact_step
from regmtl.solvers.parts.kernel_quadratic import KernelQuadratic, kernel_applies, solve_form
from regmtl.solvers.parts.quadratic import TaskQuadratic
from regmtl.solvers.policy import choose_row

WIDE = (10, 14, 25, 18, 12)  # rows per task, fewer than the 40 features
LONG = (60, 90, 75, 80, 70)  # more rows than the 6 features


def _tasks(seed, p, sizes):
    """A rank-2 W plus a few large entries and one outlier task, intercepts per task."""
    rng = np.random.default_rng(seed)
    T = len(sizes)
    W = rng.standard_normal((p, 2)) @ rng.standard_normal((2, T))
    W[rng.integers(0, p, 4), rng.integers(0, T, 4)] += 3.0
    W[:, -1] = rng.standard_normal(p)
    Xs = [rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p) for n in sizes]
    ys = [X @ W[:, t] + t + 0.3 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    return Xs, ys


def _nuclear(A):
    return float(np.linalg.svd(A, compute_uv=False).sum())


def _spec(A):
    return float(np.linalg.svd(A, compute_uv=False)[0])


def _cols(A):
    return np.linalg.norm(A, axis=0)


def _rows(A):
    return np.linalg.norm(A, axis=1)


#: (penalty, its value at (P, Q) / alpha, its dual norm at alpha = 1), from the formulas
PENALTIES = {
    "sparse_lowrank": (rm.SparseLowRank(0.3),
                       lambda P, Q: _nuclear(Q) + 0.3 * np.abs(P).sum(),
                       lambda G: max(_spec(G), np.abs(G).max() / 0.3)),
    "robust_lowrank": (rm.RobustLowRank(0.7),
                       lambda P, Q: _nuclear(P) + 0.7 * _cols(Q).sum(),
                       lambda G: max(_spec(G), _cols(G).max() / 0.7)),
    "robust_features": (rm.RobustFeatures(1.2),
                        lambda P, Q: _rows(P).sum() + 1.2 * _cols(Q).sum(),
                        lambda G: max(_rows(G).max(), _cols(G).max() / 1.2)),
}


def _gap(Xs, ys, name, alpha, V, b):
    """``(P - D) / P0`` written here: the objective ``sum_t ||y_t - X_t w_t - b_t||^2 /
    (2 n_t) + Omega(P, Q)`` and the dual value at the scaled centered residuals."""
    _, value, dual_norm = PENALTIES[name]
    W = V[0] + V[1]
    R = [y - X @ W[:, t] - b[t] for t, (X, y) in enumerate(zip(Xs, ys, strict=True))]
    R = [r - r.mean() for r in R]  # (the optimal intercepts: a no-op up to rounding)
    n = np.array([len(y) for y in ys], dtype=float)
    primal = sum(r @ r / (2 * m) for r, m in zip(R, n, strict=True)) + alpha * value(*V)
    G = np.column_stack([X.T @ r / m for X, r, m in zip(Xs, R, n, strict=True)])
    s = min(1.0, alpha / dual_norm(G))
    dual = sum((s * (y - y.mean()) @ r - 0.5 * s * s * (r @ r)) / m
               for y, r, m in zip(ys, R, n, strict=True))
    P0 = sum(((y - y.mean()) ** 2).sum() / (2 * m) for y, m in zip(ys, n, strict=True))
    return (primal - dual) / P0, primal / P0


@pytest.mark.parametrize("name", list(PENALTIES))
@pytest.mark.parametrize("shape", ["wide", "long"])
@pytest.mark.parametrize("divisor", [10, 100])
def test_parts_admm_is_certified_and_agrees_with_fista(name, shape, divisor):
    Xs, ys = _tasks(3, 40, WIDE) if shape == "wide" else _tasks(4, 6, LONG)
    pen = PENALTIES[name][0]
    data = rm.as_task_data(Xs, ys)
    assert kernel_applies(data) == (shape == "wide")
    assert choose_row(data, rm.Quadratic(), pen, 0.1) == "parts_admm"
    alpha = rm.alpha_max(Xs, ys, penalty=pen) / divisor
    ref = reference(data, rm.Quadratic(), True)
    a = solve(data, rm.Quadratic(), pen, alpha, tol=1e-8, max_iter=20_000, ref=ref)
    f = solve(data, rm.Quadratic(), pen, alpha, tol=1e-8, max_iter=200_000, ref=ref,
              solver="fista")
    assert a.converged and a.certificate.kind == "duality_gap" and a.certificate.relative <= 1e-8
    gap_a, obj_a = _gap(Xs, ys, name, alpha, a.V, a.b)
    gap_f, obj_f = _gap(Xs, ys, name, alpha, f.V, f.b)
    assert gap_a <= 1e-8 * (1 + 1e-3) + 1e-13
    np.testing.assert_allclose(gap_a, a.certificate.relative, rtol=1e-3, atol=1e-13)
    # both within 1e-8 (relative to P0) of the optimum, so of each other
    assert abs(obj_a - obj_f) <= 2e-8
    np.testing.assert_allclose(a.W, f.W, atol=1e-3)


@pytest.mark.parametrize("shape", ["wide", "long"])
def test_exact_step_solves_its_quadratic(shape):
    """``V = exact_step(A)`` zeroes the gradient of ``q(P + Q) + rho/2 ||V - A||^2``."""
    Xs, ys = _tasks(5, 40, WIDE) if shape == "wide" else _tasks(6, 6, LONG)
    data = rm.as_task_data(Xs, ys)
    q = solve_form(data, True)
    assert isinstance(q, KernelQuadratic if shape == "wide" else TaskQuadratic)
    pen = rm.SparseLowRank(0.3)
    A = np.random.default_rng(0).standard_normal((2, *q.g.shape))
    for rho in (0.05, 3.0):
        V = exact_step(q, pen, A, rho, 2)
        grad = pen.spread(q.matvec(pen.compose(V)) - q.g) + rho * (V - A)
        assert np.linalg.norm(grad) <= 1e-9 * (np.linalg.norm(q.g) + rho * np.linalg.norm(A))


@pytest.mark.parametrize("penalty", [rm.SparseLowRank(), rm.RobustLowRank(),
                                     rm.RobustFeatures()], ids=repr)
def test_split_penalties_certify_on_school_at_the_defaults(penalty):
    """alpha_max / 10,000 on the standardized School data: proximal gradient stopped at
    max_iter (1000) with a relative gap of about 3e-4; ADMM over the parts certifies."""
    school = rm.datasets.load_school()
    mean, scale = rm.scaling.pooled_scaling(school.X)
    Xs, ys = rm.scaling.standardize(school.X, mean, scale), school.y
    alpha = rm.alpha_max(Xs, ys, penalty=penalty) / 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskRegressor(penalty, alpha=alpha).fit(Xs, ys)
    assert model.n_iter_ < 1000


@pytest.mark.parametrize("penalty", [rm.SparseLowRank(), rm.RobustLowRank(), rm.RobustFeatures(),
                                     rm.Dirty(), rm.Trace(), rm.L21()], ids=repr)
def test_sums_parts_declares_what_the_parts_do(penalty):
    """``sums_parts`` is True exactly where the variable is k >= 2 parts with
    ``compose(spread(G)) = k G`` (checked on a random G to 1e-12)."""
    G = np.random.default_rng(0).standard_normal((4, 3))
    k = penalty.spread(np.ones((1, 1))).size
    sums = k > 1 and np.allclose(penalty.compose(penalty.spread(G)), k * G, rtol=1e-12, atol=0)
    assert penalty.sums_parts == sums
