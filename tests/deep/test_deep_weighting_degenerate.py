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


# ----------------------------------------------------------------------------- every method
from regmtl.deep import MGDA, AlignedMTL, NashMTL, PCGrad, UPGrad  # noqa: E402
from regmtl.deep.conflict import alignment_matrix, mgda_weights, nash_weights  # noqa: E402

METHODS = {
    "pcgrad": PCGrad, "cagrad": lambda: CAGrad(c=0.5), "cagrad_c1": lambda: CAGrad(c=1.0),
    "nash_mtl": NashMTL, "imtl": IMTL, "mgda": MGDA, "aligned_mtl": AlignedMTL,
    "upgrad": UPGrad,
}
#: methods whose update is 0 at every Pareto-stationary point (their docstrings)
ZERO_AT_STATIONARY = ["nash_mtl", "imtl", "mgda"]
#: methods that never harm a task (their docstrings)
NON_CONFLICTING = ["cagrad_c1", "mgda", "upgrad", "nash_mtl"]
DEPENDENT = [  # linearly dependent, not stationary
    [[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]],
    [[1.0, 0.0], [1.0, 1.0], [2.0, 1.0]],
    [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 1.0, 0.0], [0.0, 1.0, 0.0]],
]


@pytest.mark.parametrize("name", ZERO_AT_STATIONARY)
@pytest.mark.parametrize("J", STATIONARY)
def test_zero_update_and_weights_at_a_pareto_stationary_point(name, J):
    d, w = _direction(METHODS[name](), np.asarray(J))
    assert np.abs(d).max() == 0.0 and np.abs(w).max() == 0.0


@pytest.mark.parametrize("name", ["pcgrad", "aligned_mtl", "upgrad", "cagrad", "cagrad_c1"])
def test_two_opposite_gradients_give_a_zero_update(name):
    """PCGrad projects each on the other, Aligned-MTL's aligned pair cancels, UPGrad's
    projections on the cone {d : J d >= 0} = {0} vanish, CAGrad's g0 is 0."""
    for J in ([[1.0, 0.0], [-1.0, 0.0]], [[3.0, 4.0], [-3.0, -4.0]]):
        d, _ = _direction(METHODS[name](), np.asarray(J))
        assert np.abs(d).max() <= 1e-12


def test_upgrad_weights_at_a_stationary_point_stay_at_least_the_base_weights():
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    d, w = _direction(UPGrad(), J)
    assert np.abs(d).max() <= 1e-12 and w.min() >= 1.0 - 1e-12


@pytest.mark.parametrize("name", NON_CONFLICTING)
@pytest.mark.parametrize("J", STATIONARY + DEPENDENT)
def test_non_conflicting_methods_harm_no_task_at_degenerate_gradients(name, J):
    J = np.asarray(J)
    d, _ = _direction(METHODS[name](), J)
    assert (J @ d).min() >= -1e-12 * np.linalg.norm(J, axis=1).max() ** 2


def test_imtl_where_equal_projections_do_not_exist_as_documented():
    """Four directions in a plane, not stationary: least-squares projections c P 1, one of
    them negative (the docstring's example); in any task order."""
    J = np.array([[-3.0, -3.0], [-3.0, -2.0], [-3.0, 1.0], [2.0, 3.0]])
    d, _ = _direction(IMTL(), J)
    proj = J @ d / np.linalg.norm(J, axis=1) / 4  # the weighting's sum of weights is T
    np.testing.assert_allclose(proj, [0.50938455, 0.95492993, 2.30491728, -0.04405537],
                               rtol=1e-7)
    for perm in itertools.permutations(range(4)):
        d_p, _ = _direction(IMTL(), J[list(perm)])
        np.testing.assert_allclose(d_p, d, rtol=1e-10, atol=1e-12)


def test_aligned_mtl_at_a_stationary_point_is_not_zero_as_documented():
    """Three collinear gradients with both signs: the aligned sum is not 0 (its docstring)."""
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    d, _ = _direction(AlignedMTL(), J)
    assert np.abs(d).max() > 1e-6


def _aligned_reference(J: np.ndarray) -> np.ndarray:
    """Aligned-MTL's coefficients B 1 from G G^T formed and decomposed in 60-digit arithmetic."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    G = mp.matrix(J.tolist())
    lam, Q = mp.eigsy(G * G.T)
    T = len(J)
    root = mp.sqrt(min(lam[i] for i in range(T)))
    B = sum(((root / mp.sqrt(lam[k])) * (Q[:, k] * Q[:, k].T) for k in range(T)), mp.zeros(T, T))
    return np.array((B * mp.matrix([1] * T)).tolist(), dtype=float).ravel()


@pytest.mark.parametrize("seed", range(4))
def test_aligned_mtl_keeps_relative_accuracy_on_graded_gradients(seed):
    """Gradient norms 1e6 apart (Gram condition 1e12): the coefficients match a 60-digit
    reference to 1e-12 whatever the order in which G G^T was summed (a plain eigh lost 4
    digits), and the rows of B G are orthogonal with equal norms to that accuracy."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((5, 50))
    J[::2] *= 1e6
    ref = _aligned_reference(J)
    for A in (J @ J.T, np.einsum("ij,kj->ik", J, J), (J[::-1] @ J[::-1].T)[::-1, ::-1]):
        B = alignment_matrix(torch.as_tensor(A.copy())).numpy()
        np.testing.assert_allclose(B @ np.ones(5), ref, rtol=1e-12, atol=0)
        H = B @ J
        HH = H @ H.T
        np.testing.assert_allclose(HH, HH[0, 0] * np.eye(5), rtol=0, atol=1e-12 * HH[0, 0])
    _, w = _direction(AlignedMTL(), J)
    np.testing.assert_allclose(w, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("fn", [alignment_matrix, mgda_weights])
def test_a_matrix_with_a_negative_diagonal_is_no_gram_matrix(fn):
    """A negative squared norm cannot come from G G^T: refused, naming the entry (it was
    taken as a zero gradient)."""
    with pytest.raises(ValueError, match=r"Gram matrix G G\^T.*entries \[0\]"):
        fn(torch.tensor([[-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64))


def test_alignment_matrix_leaves_zero_gradients_out():
    """A zero row of G takes no part: B's row and column are 0, the rest as without it."""
    J = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    B = alignment_matrix(torch.as_tensor(J @ J.T)).numpy()
    assert np.all(B[1] == 0) and np.all(B[:, 1] == 0)
    keep = [0, 2]
    B2 = alignment_matrix(torch.as_tensor(J[keep] @ J[keep].T)).numpy()
    np.testing.assert_allclose(B[np.ix_(keep, keep)], B2, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("J", DEPENDENT)
def test_dependent_gradients_keep_each_methods_defining_property(J):
    J = np.asarray(J)
    A = J @ J.T
    norms = np.linalg.norm(J, axis=1)
    T = len(J)
    # MGDA: T x the min-norm point of the hull (KKT: A alpha >= its value, equality on support)
    d, w = _direction(MGDA(), J)
    alpha = mgda_weights(torch.as_tensor(A)).numpy()
    np.testing.assert_allclose(w, T * alpha, atol=1e-12)
    v = float(alpha @ A @ alpha)
    assert (A @ alpha).min() >= v - 1e-12
    # IMTL-G: projections on the unit gradients c P 1 (P the projector onto the range of the
    # cosine matrix), equal where equal projections exist (1 in that range)
    d, _ = _direction(IMTL(), J)
    proj = J @ d / norms
    C = A / np.outer(norms, norms)
    P1 = C @ np.linalg.pinv(C) @ np.ones(T)
    c = float(proj @ P1 / (P1 @ P1))
    assert c > 0
    np.testing.assert_allclose(proj, c * P1, rtol=0, atol=1e-10 * c)
    if np.allclose(P1, 1.0):
        np.testing.assert_allclose(proj, proj[0], rtol=1e-10, atol=0)
    # Nash-MTL: alpha_t (A alpha)_t = 1
    d, w = _direction(NashMTL(), J)
    np.testing.assert_allclose(w * (A @ w), 1.0, rtol=1e-9)
    np.testing.assert_allclose(w, nash_weights(torch.as_tensor(A)).numpy(), rtol=1e-12)
    # UPGrad: non-conflicting (checked above) and the plain sum when nothing conflicts
    if (A >= 0).all():
        d, w = _direction(UPGrad(), J)
        np.testing.assert_allclose(w, 1.0, atol=1e-12)


@pytest.mark.parametrize("name", list(METHODS))
def test_a_zero_gradient_takes_no_part(name):
    """A task without labels in the batch (zero gradient): weight 0, and the others' update
    is that of the method on them alone."""
    J = np.array([[1.0, 0.5], [0.0, 0.0], [-0.5, 2.0]])
    d, w = _direction(METHODS[name](), J)
    d_ref, w_ref = _direction(METHODS[name](), J[[0, 2]])
    assert w[1] == 0.0
    np.testing.assert_allclose(w[[0, 2]], w_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d, d_ref, rtol=1e-12, atol=1e-14)


def _jacobians():
    rng = np.random.default_rng(7)
    out = [np.asarray(J) for J in STATIONARY + DEPENDENT]
    for T, p in ((3, 5), (4, 6), (5, 3)):
        J = rng.standard_normal((T, p)) * np.exp(rng.uniform(-2, 2, (T, 1)))
        J[-1] = -0.7 * J[0] + 0.3 * J[-1]
        out.append(J)
    return out


@pytest.mark.parametrize("name", [n for n in METHODS if n != "pcgrad"])
def test_the_direction_does_not_depend_on_task_order(name):
    rng = np.random.default_rng(0)
    for J in _jacobians():
        d, w = _direction(METHODS[name](), J)
        scale = np.linalg.norm(J, axis=1).max()
        for _ in range(3):
            perm = rng.permutation(len(J))
            d_p, w_p = _direction(METHODS[name](), J[perm])
            np.testing.assert_allclose(d_p, d, rtol=0, atol=1e-9 * scale * max(1, len(J)))
            np.testing.assert_allclose(w_p, w[perm], rtol=1e-8, atol=1e-10)


def test_pcgrad_same_seed_and_permuted_tasks_give_the_permuted_result():
    """PCGrad's order is random by design; its draws belong to the task names, so the same
    seed with the tasks listed in another order gives the permuted weights (same update)."""
    rng = np.random.default_rng(3)
    for J in _jacobians():
        T = len(J)
        names = [f"task{i}" for i in range(T)]
        for seed in (0, 1):
            d, w = _direction_named(PCGrad(), J, names, seed)
            perm = rng.permutation(T)
            d_p, w_p = _direction_named(PCGrad(), J[perm], [names[i] for i in perm], seed)
            np.testing.assert_allclose(w_p, w[perm], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(d_p, d, rtol=1e-12, atol=1e-12 * np.abs(J).max())
    # and the draw is random: another seed can give another update (T = 3 with conflicts)
    J = np.array([[1.0, 0.0], [-1.0, 0.2], [-0.3, -1.0]])
    updates = {tuple(np.round(_direction_named(PCGrad(), J, ["a", "b", "c"], s)[0], 12))
               for s in range(12)}
    assert len(updates) > 1


def _direction_named(weighting, J, names, seed):
    J = torch.as_tensor(np.ascontiguousarray(J), dtype=F64)
    weighting.setup([TaskSpec(n) for n in names], seed=seed)
    theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=F64))
    w = weighting.backward(J @ theta, [theta], [])
    return theta.grad.numpy().copy(), w.numpy().copy()
