"""IMTL-G and CAGrad at degenerate gradients: the answers their docstrings promise.

The Jacobians are the smallest that showed each defect (rows are task gradients, the update is
d = J^T w): at a Pareto-stationary point IMTL-G returns 0 (no update has equal positive
projections) whatever the task order, its dependent-gradient formula is the documented
alpha ~ D^-1 C^+ b, and CAGrad with c >= 1 never harms a task; CAGrad's max-min value equals
cvxpy's on random and degenerate Jacobians.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import IMTL, CAGrad, TaskSpec  # noqa: E402
from regmtl.deep.conflict import imtl_weights  # noqa: E402
from regmtl.deep.weighting import cagrad_direction  # noqa: E402

F64 = torch.float64
STATIONARY = [
    [[1.0, 0.0], [-1.0, 0.0]],
    [[1.0, 1.0], [-1.0, -1.0]],
    [[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]],
    [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]],
    [[1.0, 0.0], [-2.0, 0.0]],
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [2.0, 0.5, 0.0], [-3.0, 1.0, 0.0]],
]


def _direction(weighting, J: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The public training path on L_t = g_t . theta: (theta.grad, returned weights)."""
    J = torch.as_tensor(np.ascontiguousarray(J), dtype=F64)
    weighting.setup([TaskSpec(f"t{i}") for i in range(J.shape[0])], seed=seed)
    theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=F64))
    w = weighting.backward(J @ theta, [theta], [])
    return theta.grad.numpy().copy(), w.numpy().copy()


@pytest.mark.parametrize("J", STATIONARY)
def test_imtl_is_zero_at_a_pareto_stationary_point_in_any_task_order(J):
    J = np.asarray(J)
    T = len(J)
    for perm in itertools.permutations(range(T)) if T <= 3 else [range(T), range(T)[::-1]]:
        Jp = J[list(perm)]
        alpha = imtl_weights(torch.as_tensor(Jp @ Jp.T))
        assert float(alpha.abs().max()) == 0.0
        d, w = _direction(IMTL(), Jp)
        assert np.abs(d).max() == 0.0 and np.abs(w).max() == 0.0


def test_imtl_dependent_gradients_follow_the_documented_formula():
    """Two equal directions (not stationary): alpha ~ D^-1 C^+ b, equal projections."""
    J = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    alpha = imtl_weights(torch.as_tensor(J @ J.T)).numpy()
    norms = np.linalg.norm(J, axis=1)
    C = (J @ J.T) / np.outer(norms, norms)
    ref = np.linalg.pinv(C) @ np.ones(3) / norms
    np.testing.assert_allclose(alpha, ref / ref.sum(), rtol=0, atol=1e-12)
    proj = J @ (alpha @ J) / norms
    np.testing.assert_allclose(proj, proj[0], rtol=0, atol=1e-12)
    assert proj[0] > 0
    # any order, the same update
    for perm in itertools.permutations(range(3)):
        a = imtl_weights(torch.as_tensor(J[list(perm)] @ J[list(perm)].T)).numpy()
        np.testing.assert_allclose(a, alpha[list(perm)], rtol=0, atol=1e-12)


def test_imtl_near_stationary_is_continuous_not_rounding():
    """Just off a stationary point the update is small and has equal positive projections."""
    J = np.array([[1.0, 0.0], [-1.0, 1e-3]])
    d, _ = _direction(IMTL(), J)
    proj = J @ d / np.linalg.norm(J, axis=1)
    assert proj.min() > 0 and abs(proj[0] - proj[1]) < 1e-9 * abs(proj[0])
    d_rev, _ = _direction(IMTL(), J[::-1])
    np.testing.assert_allclose(d_rev, d, rtol=1e-9, atol=0)


@pytest.mark.parametrize("J, c", [([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], 1.0),
                                  ([[1.0, 0.0], [-2.0, 0.0]], 2.0),
                                  *[(J, c) for J in STATIONARY for c in (1.0, 1.5)]])
def test_cagrad_with_c_at_least_one_harms_no_task(J, c):
    J = np.asarray(J)
    d, _ = _direction(CAGrad(c=c), J)
    scale = np.linalg.norm(J, axis=1).max() ** 2
    assert (J @ d).min() >= -1e-12 * scale
    # the first case: d keeps the part of g0 that no task opposes
    if len(J) == 3 and J[2, 1] == 1.0 and J[2, 0] == 0.0 and J[0, 0] == 1.0 and c == 1.0:
        np.testing.assert_allclose(J @ d, [0.0, 0.0, 0.5], atol=1e-12)


def _cvxpy_max_min(J: np.ndarray, c: float) -> float:
    cp = pytest.importorskip("cvxpy")
    g0 = J.mean(0)
    x, t = cp.Variable(J.shape[1]), cp.Variable()
    prob = cp.Problem(cp.Maximize(t), [J @ x >= t, cp.norm(x - g0) <= c * np.linalg.norm(g0)])
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


@pytest.mark.parametrize("seed", range(8))
def test_cagrad_worst_task_value_equals_cvxpy(seed):
    rng = np.random.default_rng(seed)
    T, p = [2, 3, 5, 10][seed % 4], [5, 50][seed % 2]
    J = rng.standard_normal((T, p))
    if seed % 3 == 1:  # low rank
        J = rng.standard_normal((T, 2)) @ rng.standard_normal((2, p))
    if seed % 3 == 2:  # a conflicting pair
        J[1] = -2.0 * J[0]
    for c in (0.3, 1.0, 2.0):
        d, _ = cagrad_direction(torch.as_tensor(J), c=c, rescale=False)
        d = d.numpy() / T
        assert np.linalg.norm(d - J.mean(0)) <= c * np.linalg.norm(J.mean(0)) * (1 + 1e-10)
        ref = _cvxpy_max_min(J, c)
        assert abs(float((J @ d).min()) - ref) <= 1e-6 * max(1.0, abs(ref))
        perm = rng.permutation(T)
        d_perm, _ = cagrad_direction(torch.as_tensor(J[perm]), c=c, rescale=False)
        np.testing.assert_allclose(d_perm.numpy() / T, d, rtol=0, atol=1e-9 * np.abs(J).max())
