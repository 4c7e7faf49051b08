"""Gradient-conflict methods of ``regmtl.deep.conflict``: each paper's defining property.

Two levels: the T-dimensional solvers on random gradient matrices G (fixed seeds, float64)
against the papers' conditions (KKT, fixed-point equations, orthogonality, dual-cone
membership) and independent oracles (support enumeration, the papers' closed forms); then the
weightings through real ``backward`` calls on a tiny float64 torch model, where the shared
gradient in ``.grad`` must equal ``coefficients @ G`` (G formed independently here) to 1e-10,
and through :class:`~regmtl.deep.Trainer`.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import regmtl.deep.weighting.base as weighting_base  # noqa: E402
import regmtl.deep.weighting.gram as gram  # noqa: E402
from regmtl.deep import (  # noqa: E402
    FAMO,
    IMTL,
    MGDA,
    AlignedMTL,
    HardSharing,
    NashMTL,
    TaskSpec,
    Trainer,
    UPGrad,
    make_weighting,
)
from regmtl.deep.conflict import (  # noqa: E402
    alignment_matrix,
    imtl_weights,
    mgda_weights,
    nash_weights,
    upgrad_weights,
)

F64 = torch.float64
GRADIENT_NAMES = ["nash_mtl", "imtl", "mgda", "aligned_mtl", "upgrad"]
ALL_NAMES = ["famo", *GRADIENT_NAMES]
CLASSES = {"famo": FAMO, "nash_mtl": NashMTL, "imtl": IMTL, "mgda": MGDA,
           "aligned_mtl": AlignedMTL, "upgrad": UPGrad}


def _random_G(T: int, d: int, seed: int, conflict_: bool = True) -> torch.Tensor:
    """Rows of norms 0.1 to 10; with ``conflict_``, the last row opposes the first."""
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(T, d, generator=g, dtype=F64)
    if conflict_ and T >= 2:
        G[-1] = -0.8 * G[0] + 0.5 * G[-1]
    scales = torch.exp(torch.empty(T, 1, dtype=F64).uniform_(math.log(0.1), math.log(10.0),
                                                           generator=g))
    return G * scales


CASES = [(T, seed) for T in (2, 3, 5) for seed in range(4)]


# ----------------------------------------------------------------------------- the tiny model
class Problem:
    """A shared tanh layer and T linear heads in float64; task t's target has scale s_t."""

    def __init__(self, scales=(1.0, 10.0), seed: int = 0, n: int = 48) -> None:
        g = torch.Generator().manual_seed(seed)
        self.T = len(scales)
        self.X = torch.randn(n, 5, generator=g, dtype=F64)
        B = torch.randn(5, self.T, generator=g, dtype=F64)
        self.Y = torch.tanh(self.X @ B) * torch.tensor(scales, dtype=F64)
        torch.manual_seed(seed)
        self.trunk = torch.nn.Linear(5, 6, dtype=F64)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(6, 1, dtype=F64)
                                          for _ in range(self.T)])
        self.shared = list(self.trunk.parameters())
        self.specific = list(self.heads.parameters())
        self.params = self.shared + self.specific
        self.tasks = [TaskSpec(f"t{i}") for i in range(self.T)]

    def represent(self) -> torch.Tensor:
        return torch.tanh(self.trunk(self.X))

    def losses(self, Z: torch.Tensor | None = None) -> torch.Tensor:
        h = self.represent() if Z is None else Z
        return torch.stack([0.5 * ((head(h)[:, 0] - self.Y[:, t]) ** 2).mean()
                            for t, head in enumerate(self.heads)])

    def task_grads(self, params=None) -> torch.Tensor:
        params = self.shared if params is None else params
        losses = self.losses()
        return torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            losses[t], params, retain_graph=True)]) for t in range(self.T)])

    def shared_grad(self) -> torch.Tensor:
        return torch.cat([p.grad.reshape(-1) for p in self.shared])

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def _weighting(name: str, tasks, seed: int = 0, **kwargs):
    w = make_weighting(name, **kwargs)
    w.setup(tasks, seed=seed)
    return w


# ----------------------------------------------------------------------------- oracles
def _nnqp_oracle(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin_{x >= 0} x.Q.x / 2 - c.x by enumerating the supports (the KKT point)."""
    n = len(c)
    best, best_f = np.zeros(n), 0.0
    for k in range(1, n + 1):
        for S in itertools.combinations(range(n), k):
            S = list(S)
            x = np.zeros(n)
            x[S] = np.linalg.lstsq(Q[np.ix_(S, S)], c[S], rcond=None)[0]
            if np.any(x < -1e-12):
                continue
            x = np.clip(x, 0, None)
            f = 0.5 * x @ Q @ x - c @ x
            if f < best_f - 1e-15:
                best, best_f = x, f
    return best


def _mgda_oracle(A: np.ndarray) -> float:
    """The min of a.A.a over the simplex, by enumerating the supports."""
    T = len(A)
    best = np.inf
    for k in range(1, T + 1):
        for S in itertools.combinations(range(T), k):
            S = list(S)
            K = np.zeros((k + 1, k + 1))
            K[:k, :k], K[:k, k], K[k, :k] = A[np.ix_(S, S)], 1.0, 1.0
            rhs = np.zeros(k + 1)
            rhs[k] = 1.0
            sol = np.linalg.lstsq(K, rhs, rcond=None)[0][:k]
            if np.all(sol >= -1e-12) and abs(sol.sum() - 1) < 1e-9:
                a = np.zeros(T)
                a[S] = sol
                best = min(best, float(a @ A @ a))
    return best


# ----------------------------------------------------------------------------- MGDA
@pytest.mark.parametrize("T, seed", CASES)
def test_mgda_min_norm_kkt(T, seed):
    G = _random_G(T, 7, seed)
    A = G @ G.T
    alpha = mgda_weights(A)
    s = float(A.diagonal().max())
    assert bool((alpha >= 0).all()) and abs(float(alpha.sum()) - 1) < 1e-14
    q = float(alpha @ A @ alpha)
    slack = A @ alpha - q  # (A alpha)_t - |g|^2 >= 0, = 0 on the support
    assert float(slack.min()) >= -1e-12 * s
    assert float(slack[alpha > 1e-12].abs().max()) <= 1e-12 * s
    assert q <= _mgda_oracle(A.numpy()) + 1e-12 * s  # the global min over the simplex


def test_mgda_pareto_stationary_gives_zero_direction():
    g = torch.Generator().manual_seed(3)
    G = torch.randn(3, 5, generator=g, dtype=F64)
    G[2] = -(0.3 * G[0] + 0.7 * G[1])  # 0 = 0.3 g0 + 0.7 g1 + g2: 0 is in the hull
    alpha = mgda_weights(G @ G.T)
    assert float((alpha @ G).norm()) < 1e-12
    assert torch.allclose(alpha, torch.tensor([0.15, 0.35, 0.5], dtype=F64), atol=1e-10)
    w = MGDA()
    w.setup([TaskSpec(k) for k in "abc"])
    theta = torch.nn.Parameter(torch.zeros(5, dtype=F64))
    out = w.backward(G @ theta, [theta], [])
    assert out.tolist() == [0.0, 0.0, 0.0] and theta.grad.abs().max() == 0


@pytest.mark.parametrize("normalization", ["none", "l2", "loss", "loss+"])
def test_mgda_through_backward(normalization):
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=1)
    G = prob.task_grads()
    losses = prob.losses()
    w = _weighting("mgda", prob.tasks, normalization=normalization)
    coeffs = w.backward(losses, prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    n = {"none": torch.ones(3, dtype=F64), "l2": G.norm(dim=1), "loss": losses.detach(),
         "loss+": losses.detach() * G.norm(dim=1)}[normalization]
    alpha = coeffs * n / 3  # coefficients 3 alpha_t / n_t
    Gn = G / n[:, None]
    assert abs(float(alpha.sum()) - 1) < 1e-12 and bool((alpha >= 0).all())
    An = Gn @ Gn.T
    slack = An @ alpha - alpha @ An @ alpha
    s = float(An.diagonal().max())
    assert float(slack.min()) >= -1e-10 * s
    assert float(slack[alpha > 1e-12].abs().max()) <= 1e-10 * s
    assert bool((G @ (coeffs @ G) >= 0).all())  # a descent direction of every task
    # heads: the gradient of sum_t L_t
    ref = torch.autograd.grad(prob.losses().sum(), prob.specific)
    for p, r in zip(prob.specific, ref, strict=True):
        assert torch.allclose(p.grad, r, rtol=0, atol=1e-12)


def test_mgda_loss_normalization_needs_positive_losses():
    w = MGDA(normalization="loss")
    w.setup([TaskSpec("a"), TaskSpec("b")])
    x = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=F64))
    with pytest.raises(ValueError, match=r"positive finite losses; task\(s\) \['b'\]"):
        w.backward(torch.stack([x[0], -x[1]]), [x], [])


def test_mgda_upper_bound_uses_the_representation():
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=2)
    Z = prob.represent()
    losses = prob.losses(Z)
    GZ = torch.stack([torch.autograd.grad(losses[t], Z, retain_graph=True)[0].reshape(-1)
                      for t in range(3)])
    G = prob.task_grads()
    seen = []

    def reduce(x):
        seen.append(tuple(x.shape))
        return x

    w = _weighting("mgda", prob.tasks, upper_bound=True)
    coeffs = w.backward(losses, prob.shared, prob.specific, representation=Z, reduce=reduce)
    assert seen == [(3, 3)]  # the Gram of the representation gradients, across ranks
    alpha = mgda_weights(GZ @ GZ.T)
    assert torch.allclose(coeffs, 3 * alpha, rtol=0, atol=1e-10)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    ref = torch.autograd.grad(prob.losses().sum(), prob.specific)
    for p, r in zip(prob.specific, ref, strict=True):
        assert torch.allclose(p.grad, r, rtol=0, atol=1e-12)


def test_mgda_upper_bound_under_loss_scaling():
    """A loss scale (mixed precision) scales the gradients, not the decision."""
    out = []
    for factor in (1.0, 4.0):
        prob = Problem(scales=(1.0, 10.0, 3.0), seed=2)
        Z = prob.represent()
        w = _weighting("mgda", prob.tasks, upper_bound=True, normalization="loss+")
        coeffs = w.backward(prob.losses(Z), prob.shared, prob.specific, representation=Z,
                            scale=lambda x, f=factor: f * x)
        out.append((coeffs, [p.grad.clone() for p in prob.params]))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-12, atol=0)
    for g1, g4 in zip(out[0][1], out[1][1], strict=True):
        assert torch.allclose(g4, 4 * g1, rtol=1e-12, atol=0)


def test_mgda_upper_bound_watch_hook():
    prob = Problem(seed=3)
    w = MGDA(upper_bound=True)
    w.setup(prob.tasks)
    with pytest.raises(RuntimeError, match=r"watch\(net.trunk\)"):
        w.backward(prob.losses(), prob.shared, prob.specific)
    assert w.watch(prob.trunk) is w
    prob.zero_grad()
    coeffs = w.backward(prob.losses(), prob.shared, prob.specific)
    hooked = prob.shared_grad()
    prob.zero_grad()
    Z = prob.trunk(prob.X)  # the watched module's output: before the tanh
    ref = w.backward(prob.losses(torch.tanh(Z)), prob.shared, prob.specific, representation=Z)
    assert torch.equal(coeffs, ref) and torch.allclose(hooked, prob.shared_grad(), atol=0)
    prob.losses()  # two forward passes before one step: refused
    with pytest.raises(RuntimeError, match="2 forward passes"):
        w.backward(prob.losses(), prob.shared, prob.specific)
    w.unwatch()
    prob.losses()
    with pytest.raises(RuntimeError, match="representation"):
        w.backward(prob.losses(), prob.shared, prob.specific)


# ----------------------------------------------------------------------------- Nash-MTL
@pytest.mark.parametrize("T, seed", CASES)
def test_nash_fixed_point_and_scale_invariance(T, seed):
    G = _random_G(T, 8, seed)
    A = G @ G.T
    alpha = nash_weights(A)
    assert bool((alpha > 0).all())
    residual = float((alpha * (A @ alpha) - 1).abs().max())
    assert residual < 1e-10  # the paper's G G^T alpha = 1 / alpha
    # scaling task k's gradient by 7 divides alpha_k by 7: every alpha_t g_t is unchanged
    k = seed % T
    D = torch.ones(T, dtype=F64)
    D[k] = 7.0
    alpha2 = nash_weights((D[:, None] * A) * D[None, :])
    assert torch.allclose(alpha2 * D, alpha, rtol=1e-9, atol=0)
    # weighted bargaining: alpha_t (A alpha)_t = b_t
    b = torch.linspace(0.5, 2.0, T, dtype=F64)
    alpha_b = nash_weights(A, b)
    assert float((alpha_b * (A @ alpha_b) - b).abs().max()) < 1e-10


def test_nash_rank_deficient_and_stationary():
    e = torch.eye(3, dtype=F64)
    G = torch.stack([e[0], e[1], e[0] + e[1]])  # rank 2, no common-descent obstruction
    alpha = nash_weights(G @ G.T)
    assert bool((alpha > 0).all())
    assert float((alpha * (G @ G.T @ alpha) - 1).abs().max()) < 1e-10
    G = torch.stack([e[0], -e[0] + 0 * e[1]])  # opposite: 0 in the hull, no solution
    assert nash_weights(G @ G.T).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="nonzero gradients"):
        nash_weights(torch.zeros(2, 2))


def test_nash_through_backward():
    prob = Problem(scales=(1.0, 10.0, 0.3), seed=4)
    G = prob.task_grads()
    w = _weighting("nash_mtl", prob.tasks)
    alpha = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), alpha @ G, rtol=0, atol=1e-10)
    assert float((alpha * (G @ G.T @ alpha) - 1).abs().max()) < 1e-10
    contributions = (alpha[:, None] * G).norm(dim=1)  # alpha_t |g_t| despite scales 0.3-10
    assert float(contributions.max() / contributions.min()) < 10


# ----------------------------------------------------------------------------- IMTL
def _imtl_closed_form(G: torch.Tensor) -> torch.Tensor:
    """The paper's alpha_{2:} = g_1 U^T (D U^T)^{-1}, alpha_1 = 1 - sum alpha_{2:}."""
    U = G / G.norm(dim=1, keepdim=True)
    D, Ud = G[0] - G[1:], U[0] - U[1:]
    rest = G[0] @ Ud.T @ torch.linalg.inv(D @ Ud.T)
    return torch.cat([1 - rest.sum().reshape(1), rest])


@pytest.mark.parametrize("T, seed", CASES)
def test_imtl_equal_projections(T, seed):
    G = _random_G(T, 9, seed)
    alpha = imtl_weights(G @ G.T)
    assert abs(float(alpha.sum()) - 1) < 1e-12
    proj = G @ (alpha @ G) / G.norm(dim=1)
    spread = float((proj - proj.mean()).abs().max() / proj.abs().mean())
    assert spread < 1e-8 and bool((proj > 0).all())
    assert torch.allclose(alpha, _imtl_closed_form(G), rtol=1e-8, atol=1e-10)
    b = torch.linspace(1.0, 3.0, T, dtype=F64)  # weighted: projections proportional to b
    proj_b = G @ (imtl_weights(G @ G.T, b) @ G) / G.norm(dim=1)
    assert torch.allclose(proj_b / b, (proj_b / b).mean().expand(T), rtol=1e-8, atol=0)


def test_imtl_through_backward_and_loss_scale():
    prob = Problem(scales=(1.0, 10.0), seed=5)
    G = prob.task_grads()
    w = _weighting("imtl", prob.tasks)
    coeffs = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    assert abs(float(coeffs.sum()) - 2) < 1e-12  # alpha sums to 1, times sum_t b_t = 2
    proj = G @ (coeffs @ G) / G.norm(dim=1)
    assert abs(float(proj[0] - proj[1])) < 1e-10 * float(proj.abs().max())
    # IMTL-L: learned loss scales e^s, s trained to e^s L = 1
    prob.zero_grad()
    w = _weighting("imtl", prob.tasks, loss_scale=True)
    with torch.no_grad():
        w.log_scales.copy_(torch.tensor([0.3, -1.0]))
    losses = prob.losses()
    coeffs = w.backward(losses, prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    s = torch.tensor([0.3, -1.0], dtype=F64)
    expected = torch.exp(s) * losses.detach() - 1  # d/ds (e^s L - s)
    assert torch.allclose(w.log_scales.grad.double(), expected, rtol=1e-6, atol=1e-6)
    assert [n for n, _ in w.named_parameters()] == ["log_scales"]


# ----------------------------------------------------------------------------- Aligned-MTL
@pytest.mark.parametrize("T, seed", CASES)
def test_aligned_gradients_are_orthogonal_with_equal_norms(T, seed):
    G = _random_G(T, 10, seed)
    A = G @ G.T
    B = alignment_matrix(A)
    G_hat = B @ G
    M = G_hat @ G_hat.T
    sigma2 = float(torch.linalg.eigvalsh(A).min())
    assert torch.allclose(M, sigma2 * torch.eye(T, dtype=F64), rtol=0, atol=1e-8 * sigma2)
    assert float(torch.linalg.cond(M)) < 1 + 1e-8
    b = torch.linspace(0.5, 2.0, T, dtype=F64)
    update = b @ G_hat
    assert torch.allclose(G_hat @ update, b * sigma2, rtol=1e-8, atol=0)  # b_t sigma^2 each
    assert float(b @ (G @ update)) > 0  # a descent direction of sum_t b_t L_t
    lam = torch.linalg.eigvalsh(A).numpy()
    for scale, value in [("median", np.median(lam)), ("rmse", lam.mean())]:
        Gs = alignment_matrix(A, scale=scale) @ G
        assert torch.allclose(Gs @ Gs.T, float(value) * torch.eye(T, dtype=F64), rtol=0,
                              atol=1e-8 * float(value))


def test_aligned_rank_deficient_is_a_scaled_projector():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(3, 6, generator=g, dtype=F64)
    G[2] = G[0] - 2 * G[1]  # rank 2
    A = G @ G.T
    B = alignment_matrix(A)
    lam, V = torch.linalg.eigh(A)
    P = V[:, 1:] @ V[:, 1:].T  # the projector on the range
    M = B @ A @ B
    assert torch.allclose(M, float(lam[1]) * P, rtol=0, atol=1e-8 * float(lam[1]))


def test_aligned_update_can_conflict_with_an_original_gradient():
    """The update b^T B G makes equal progress along the aligned gradients, not along the
    originals: with strongly conflicting gradients of unequal norms, G d has a negative
    entry (A B b = sigma A^{1/2} b, and a PSD square root can have negative row sums)."""
    S = torch.tensor([[1.0, -2.9], [-2.9, 9.0]], dtype=F64)  # PD, A^{1/2} with row sum < 0
    A = S @ S
    G = torch.linalg.cholesky(A)  # rows with G G^T = A
    w = AlignedMTL()
    w.setup([TaskSpec("a"), TaskSpec("b")])
    theta = torch.nn.Parameter(torch.zeros(2, dtype=F64))
    coeffs = w.backward(G @ theta, [theta], [])
    progress = G @ theta.grad
    assert float(progress[0]) < 0 < float(progress[1])
    assert float(progress.sum()) > 0  # still a descent direction of the sum
    assert torch.allclose(theta.grad, coeffs @ G, rtol=0, atol=1e-12)


def test_aligned_through_backward():
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=6)
    G = prob.task_grads()
    w = _weighting("aligned_mtl", prob.tasks)
    coeffs = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    B = alignment_matrix(G @ G.T, rtol=3 * torch.finfo(F64).eps)
    assert torch.allclose(coeffs, B @ torch.ones(3, dtype=F64), rtol=1e-10, atol=0)


# ----------------------------------------------------------------------------- UPGrad
@pytest.mark.parametrize("T, seed", CASES)
def test_upgrad_non_conflicting_and_projection(T, seed):
    G = _random_G(T, 8, seed)
    A = G @ G.T
    s = float(A.diagonal().max())
    c = upgrad_weights(A)
    assert float((A @ c).min()) >= -1e-10 * s  # G . update >= 0 for every task
    # each projection: x = g_i + G^T lam, lam >= 0, G x >= 0, lam . G x = 0 (KKT), and lam
    # equals the support-enumeration oracle
    for i in range(T):
        lam = torch.as_tensor(gram.nonneg_qp(A.numpy(), -A[:, i].numpy(), 1e-14 * T * s))
        Gx = A[:, i] + A @ lam
        assert bool((lam >= 0).all()) and float(Gx.min()) >= -1e-10 * s
        assert float((lam * Gx).abs().max()) <= 1e-10 * s
        oracle = _nnqp_oracle(A.numpy(), -A[:, i].numpy())
        x, x_oracle = G[i] + lam @ G, G[i] + torch.as_tensor(oracle) @ G
        assert torch.allclose(x, x_oracle, rtol=0, atol=1e-9 * math.sqrt(s))


@pytest.mark.parametrize("seed", range(3))
def test_upgrad_linear_under_scaling_and_weighted(seed):
    G = _random_G(4, 6, seed)
    A = G @ G.T
    scale = torch.tensor([0.5, 2.0, 3.0, 0.1], dtype=F64)
    G2 = scale[:, None] * G
    d2 = upgrad_weights(G2 @ G2.T) @ G2
    # the projections of the scaled rows are the scaled projections (same dual cone)
    eye = torch.eye(4, dtype=F64)
    per_task = torch.stack([upgrad_weights(A, eye[i]) @ G for i in range(4)])  # pi(g_i)
    assert torch.allclose(d2, (scale @ per_task) / 4, rtol=1e-9, atol=1e-12)
    # the preference-weighted version is the same combination
    w = torch.tensor([1.0, 2.0, 0.0, 1.0], dtype=F64)
    assert torch.allclose(upgrad_weights(A, w) @ G, (w / w.sum()) @ per_task, rtol=1e-9,
                          atol=1e-12)


def test_upgrad_equals_the_mean_without_conflict():
    g = torch.Generator().manual_seed(0)
    G = torch.rand(4, 5, generator=g, dtype=F64)  # positive entries: no pair conflicts
    assert bool((G @ G.T >= 0).all())
    c = upgrad_weights(G @ G.T)
    assert torch.allclose(c, torch.full((4,), 0.25, dtype=F64), rtol=0, atol=1e-15)
    w = UPGrad()
    w.setup([TaskSpec(k, weight=v) for k, v in zip("abcd", [1.0, 2.0, 0.5, 1.0],
                                                      strict=True)])
    theta = torch.nn.Parameter(torch.zeros(5, dtype=F64))
    out = w.backward(G @ theta, [theta], [])
    assert out.tolist() == [1.0, 2.0, 0.5, 1.0]  # equal weighting's update, exactly


def test_upgrad_through_backward():
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=1)
    G = prob.task_grads()
    w = _weighting("upgrad", prob.tasks)
    coeffs = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(prob.shared_grad(), coeffs @ G, rtol=0, atol=1e-10)
    assert torch.allclose(coeffs, 3 * upgrad_weights(G @ G.T), rtol=1e-12, atol=0)
    s = float((G @ G.T).diagonal().max())
    assert float((G @ prob.shared_grad()).min()) >= -1e-10 * s


# ----------------------------------------------------------------------------- FAMO
def _famo_reference_grad(xi: torch.Tensor, before: torch.Tensor, after: torch.Tensor):
    """The paper's delta = (d z / d xi)^T (log L - log L'), by autograd through softmax."""
    leaf = xi.clone().requires_grad_(True)
    z = torch.softmax(leaf, 0)
    v = torch.log(before + 1e-8) - torch.log(after + 1e-8)
    return torch.autograd.grad(z, leaf, grad_outputs=v)[0]


def test_famo_logit_update_is_the_papers_formula():
    g = torch.Generator().manual_seed(0)
    tasks = [TaskSpec(k) for k in "abc"]
    sgd = FAMO(w_lr=0.1, gamma=0.01, optimizer="sgd")
    adam = FAMO(w_lr=0.025, gamma=0.001)
    sgd.setup(tasks)
    adam.setup(tasks)
    xi_ref = torch.zeros(3, dtype=F64, requires_grad=True)  # torch's own Adam on the paper's
    opt = torch.optim.Adam([xi_ref], lr=0.025, weight_decay=0.001)  # delta
    x = torch.nn.Parameter(torch.ones(3, dtype=F64))
    for _ in range(6):
        before = torch.rand(3, generator=g, dtype=F64) * torch.tensor([1.0, 10.0, 100.0])
        after = before * torch.empty(3, dtype=F64).uniform_(0.5, 1.1, generator=g)
        xi = sgd.logits.clone()
        for w in (sgd, adam):
            w.backward(before + 0 * x, [x], [])
            w.step_end(after)
        delta = _famo_reference_grad(xi, before, after)
        # SGD: xi <- xi - beta (delta + gamma xi), the paper's update
        assert torch.allclose(sgd.logits, xi - 0.1 * (delta + 0.01 * xi), rtol=0, atol=1e-15)
        opt.zero_grad()
        xi_ref.grad = _famo_reference_grad(xi_ref.detach(), before, after)
        opt.step()
        assert torch.allclose(adam.logits, xi_ref.detach(), rtol=0, atol=1e-14)


def test_famo_weights_are_the_log_loss_gradient():
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=7)
    w = _weighting("famo", prob.tasks)
    with torch.no_grad():
        w.logits.copy_(torch.tensor([0.2, -0.5, 0.1], dtype=F64))
    losses = prob.losses()
    weights = w.backward(losses, prob.shared, prob.specific)
    z = torch.softmax(torch.tensor([0.2, -0.5, 0.1], dtype=F64), 0)
    L = losses.detach() + 1e-8
    c = 1 / (z / L).sum()
    assert torch.allclose(weights, 3 * c * z / L, rtol=1e-14, atol=0)
    # the gradient is c sum_t z_t grad log L_t, times T, on every parameter
    ref = torch.autograd.grad(3 * c * (z * torch.log(prob.losses() + 1e-8)).sum(), prob.params)
    for p, r in zip(prob.params, ref, strict=True):
        assert torch.allclose(p.grad, r, rtol=0, atol=1e-12)


def test_famo_never_forms_task_gradients(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("FAMO formed per-task gradients")

    monkeypatch.setattr(weighting_base, "task_gradients", forbidden)
    monkeypatch.setattr(gram, "task_gradients", forbidden)
    assert FAMO.needs_task_grads is False and FAMO.needs_step_losses is True
    prob = Problem()
    w = _weighting("famo", prob.tasks)
    calls = []
    original = torch.autograd.backward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "backward", counting)
    w.backward(prob.losses(), prob.shared, prob.specific)
    assert len(calls) == 1  # one backward pass
    w.step_end(prob.losses().detach())
    assert int(w.n_updates) == 1


def _famo_toy(name: str, steps: int, lr: float, **kwargs):
    """Shared parameters of two regressions, task b's loss 100 times task a's; SGD."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=g, dtype=F64)
    ya = X @ torch.randn(3, generator=g, dtype=F64)
    yb = X @ torch.randn(3, generator=g, dtype=F64)
    theta = torch.nn.Parameter(torch.zeros(6, dtype=F64))

    def losses():
        return torch.stack([0.5 * ((X @ theta[:3] - ya) ** 2).mean(),
                            100 * 0.5 * ((X @ theta[3:] - yb) ** 2).mean()])

    w = _weighting(name, [TaskSpec("a"), TaskSpec("b")], **kwargs)
    opt = torch.optim.SGD([theta], lr=lr)
    history = [losses().detach()]
    for _ in range(steps):
        opt.zero_grad()
        w.backward(losses(), [theta], [])
        opt.step()
        with torch.no_grad():
            history.append(losses())
        if w.needs_step_losses:
            w.step_end(history[-1])
    history = torch.stack(history)
    return torch.log(history[:-1] / history[1:]), w  # per-step log-loss decreases


def test_famo_balances_the_log_loss_decrease_rates():
    rates, _ = _famo_toy("equal", 600, 0.002)
    total = rates.sum(0)
    assert float(total[1] / total[0]) > 10  # equal weighting: b (x100) runs away
    rates, w = _famo_toy("famo", 600, 0.002, gamma=0.0)
    late = rates[-100:].mean(0)
    assert abs(float(late[1] / late[0]) - 1) < 0.02  # equal rates, to 2 %
    assert float(w.logits[1]) > 0.5  # b's logit rose to make up for its 1/L_b weight
    total = rates.sum(0)
    assert abs(float(total[1] / total[0]) - 1) < 0.15  # cumulative: 0.89 here, 24 (equal)


def test_famo_next_batch_fallback_and_missing_task():
    w = FAMO(optimizer="sgd", w_lr=1.0, gamma=0.0)
    w.setup([TaskSpec("a"), TaskSpec("b"), TaskSpec("c")])
    x = torch.nn.Parameter(torch.ones(3, dtype=F64))
    w.backward(torch.tensor([1.0, 2.0, 4.0], dtype=F64) * x, [x], [])
    assert bool(w.pending) and w.logits.tolist() == [0.0, 0.0, 0.0]
    # no step_end: the next backward's losses are taken as those after the step; task c has
    # no label now (loss 0): weight 0, logit untouched, a and b move as if it were absent
    out = w.backward(torch.tensor([0.5, 2.0, 0.0], dtype=F64) * x, [x], [])
    assert int(w.n_updates) == 1 and out[2] == 0.0
    v = torch.tensor([math.log(1 / 0.5), 0.0], dtype=F64)  # up to the 1e-8 shift
    expected = -(0.5 * (v - 0.5 * v.sum()))
    assert torch.allclose(w.logits[:2], expected, rtol=0, atol=1e-7)
    assert w.logits[2] == 0.0
    assert float(out.sum()) == pytest.approx(2.0, abs=1e-12)  # sum of the observed b_t


def test_famo_options_and_min_losses():
    w = FAMO(min_losses=[0.5, 1.0])
    w.setup([TaskSpec("a"), TaskSpec("b")])
    x = torch.nn.Parameter(torch.ones(2, dtype=F64))
    out = w.backward(torch.tensor([1.5, 2.0], dtype=F64) * x, [x], [])
    assert torch.allclose(out, torch.ones(2, dtype=F64), atol=1e-7)  # L - L* = 1 for both
    with pytest.raises(ValueError, match="min_losses: 2 values given for 3 tasks"):
        FAMO(min_losses=[0.0, 0.0]).setup([TaskSpec(k) for k in "abc"])
    for kwargs, match in [({"w_lr": 0.0}, "w_lr must"), ({"gamma": -1.0}, "gamma must"),
                          ({"optimizer": "rmsprop"}, "optimizer must"),
                          ({"eps": 0.0}, "eps must"), ({"min_losses": math.nan}, "min_losses")]:
        with pytest.raises(ValueError, match=match):
            FAMO(**kwargs)


# ----------------------------------------------------------------------------- shared conventions
@pytest.mark.parametrize("name", ALL_NAMES)
def test_single_task_is_the_plain_gradient(name):
    prob = Problem(scales=(3.0,), seed=8)
    tasks = [TaskSpec("t0", weight=0.7)]
    ref = torch.autograd.grad(0.7 * prob.losses()[0], prob.params)
    out = _weighting(name, tasks).backward(prob.losses(), prob.shared, prob.specific)
    assert out.tolist() == pytest.approx([0.7], abs=1e-12)
    for p, r in zip(prob.params, ref, strict=True):
        assert torch.allclose(p.grad, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", GRADIENT_NAMES)
def test_zero_gradient_task_takes_no_part(name):
    prob = Problem(scales=(1.0, 10.0), seed=9)
    losses = prob.losses()
    losses = torch.stack([losses[0], losses[1] * 0.0])  # task 1: no label in the batch
    ref = torch.autograd.grad(losses[0], prob.shared, retain_graph=True)
    out = _weighting(name, prob.tasks).backward(losses, prob.shared, prob.specific)
    assert out.tolist() == [1.0, 0.0]
    for p, r in zip(prob.shared, ref, strict=True):
        assert torch.allclose(p.grad, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_non_finite_raises_naming_the_task(name):
    prob = Problem(scales=(1.0, 10.0), seed=10)
    losses = prob.losses()
    losses = torch.stack([losses[0], losses[1] * math.nan])
    w = _weighting(name, prob.tasks)
    with pytest.raises(ValueError, match=r"task\(s\) 't1'.*not finite"):
        w.backward(losses, prob.shared, prob.specific)
    # under loss scaling (mixed precision) the scaler skips the step: no error
    prob.zero_grad()
    w = _weighting(name, prob.tasks)
    out = w.backward(losses, prob.shared, prob.specific, scale=lambda x: 2 * x)
    assert out.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_state_dict_round_trip_resumes_identically(name):
    kwargs = {"loss_scale": True} if name == "imtl" else {}

    def steps(prob, w, opt, n):
        out = []
        for _ in range(n):
            opt.zero_grad()
            out.append(w.backward(prob.losses(), prob.shared, prob.specific))
            opt.step()
            if w.needs_step_losses:
                with torch.no_grad():
                    w.step_end(prob.losses())
        return torch.stack(out)

    prob = Problem(scales=(1.0, 10.0, 3.0), seed=11)
    w = _weighting(name, prob.tasks, **kwargs)
    opt = torch.optim.SGD(prob.params + list(w.parameters()), lr=0.01)
    steps(prob, w, opt, 3)
    state = copy.deepcopy(w.state_dict())
    params = [p.detach().clone() for p in prob.params]
    first = steps(prob, w, opt, 3)
    w2 = make_weighting(name, **kwargs)
    w2.setup(prob.tasks, seed=99)
    w2.load_state_dict(state)
    for k, v in state.items():
        if torch.is_tensor(v):
            assert torch.equal(w2.state_dict()[k], v)
    with torch.no_grad():
        for p, v in zip(prob.params, params, strict=True):
            p.copy_(v)
    opt2 = torch.optim.SGD(prob.params + list(w2.parameters()), lr=0.01)
    second = steps(prob, w2, opt2, 3)
    assert torch.equal(first, second)
    assert "=" in repr(w) or name in ("nash_mtl", "upgrad")


@pytest.mark.parametrize("name", GRADIENT_NAMES)
def test_reduce_sees_the_task_gradient_matrix(name):
    prob = Problem(scales=(1.0, 10.0, 3.0), seed=12)
    d = sum(p.numel() for p in prob.shared)
    seen = []

    def reduce(x):
        seen.append(tuple(x.shape))
        return x

    w = _weighting(name, prob.tasks)
    w.backward(prob.losses(), prob.shared, prob.specific, reduce=reduce)
    assert (3, d) in seen
    famo = _weighting("famo", prob.tasks)
    seen.clear()
    famo.backward(prob.losses(), prob.shared, prob.specific, reduce=reduce)
    famo.step_end(prob.losses().detach(), reduce=reduce)
    assert seen == [(3,), (3,)]  # FAMO: the loss values only


def test_options_are_checked():
    for cls, kwargs, match in [
        (MGDA, {"normalization": "l1"}, "normalization must be one of"),
        (MGDA, {"upper_bound": "yes"}, "upper_bound must be True or False"),
        (AlignedMTL, {"scale": "max"}, "scale must be one of"),
        (AlignedMTL, {"rtol": -1.0}, "rtol must be a finite number >= 0"),
        (IMTL, {"loss_scale": 1}, "loss_scale must be True or False"),
    ]:
        with pytest.raises(ValueError, match=match):
            cls(**kwargs)
    with pytest.raises(ValueError, match="watch needs a torch.nn.Module"):
        MGDA(upper_bound=True).watch("trunk")
    with pytest.raises(ValueError, match="square"):
        mgda_weights(torch.ones(2, 3))
    with pytest.raises(ValueError, match="weights must be 2 finite numbers"):
        upgrad_weights(torch.eye(2), [1.0, -1.0])
    assert repr(make_weighting("aligned_mtl", scale="rmse")) == \
        "AlignedMTL(scale='rmse', rtol=None)"
    assert repr(make_weighting("imtl", loss_scale=True)) == "IMTL(loss_scale=True)"
    for name, cls in CLASSES.items():
        assert type(make_weighting(name)) is cls
        assert type(make_weighting(f" {name.upper()} ")) is cls


# ----------------------------------------------------------------------------- trainer
@pytest.mark.parametrize("name", [*ALL_NAMES, "mgda_ub"])
def test_trainer_end_to_end(name):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 4))
    targets = {"a": np.tanh(X[:, 0] + X[:, 1]), "b": 10 * np.tanh(X[:, 2] - X[:, 0])}
    torch.manual_seed(0)
    net = HardSharing(4, ["a", "b"], hidden=(8,))
    w = MGDA(upper_bound=True).watch(net.trunk) if name == "mgda_ub" else name
    tr = Trainer(net, weighting=w, max_epochs=3, batch_size=32, lr=2e-2, seed=0)
    h = tr.fit((X, targets)).history
    assert h["loss"].iloc[-1] < h["loss"].iloc[0]
    weights = h[["weight/a", "weight/b"]].to_numpy()
    assert np.isfinite(weights).all() and (weights >= 0).all()
    if name == "famo":
        assert int(tr.weighting.n_updates) == 9  # step_end after each of the 3 x 3 steps
        assert not bool(tr.weighting.pending)
        # the logits moved (the trainer divides each loss by its constant's, so which task
        # gains depends on the trajectory, not on b's units)
        assert float(tr.weighting.logits.abs().sum()) > 0


# ----------------------------------------------------------------------------- representation
def _linear_trunk_problem(T: int, seed: int, k: int = 6):
    """A linear trunk (no bias) on orthogonal inputs X (X X^T = I): the gradient of the
    trunk's weight is dZ^T X, so both routes see the same Gram matrix."""
    g = torch.Generator().manual_seed(seed)
    X = torch.linalg.qr(torch.randn(k, k, generator=g, dtype=F64))[0]
    Y = torch.randn(k, T, generator=g, dtype=F64) * torch.logspace(0, 1, T, dtype=F64)
    torch.manual_seed(seed)
    trunk = torch.nn.Linear(k, k, bias=False, dtype=F64)
    heads = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Tanh(),
                                                     torch.nn.Linear(k, 1, dtype=F64))
                                 for _ in range(T)])
    Y[:, -1] = -Y[:, 0]  # a conflicting pair

    def losses():
        Z = trunk(X)
        return torch.stack([0.5 * ((h(Z)[:, 0] - Y[:, t]) ** 2).mean()
                            for t, h in enumerate(heads)])
    return trunk, heads, losses


@pytest.mark.parametrize("name", GRADIENT_NAMES)
@pytest.mark.parametrize("T, seed", [(2, 0), (3, 1), (5, 2)])
def test_representation_route_equals_the_parameter_route_on_a_linear_trunk(name, T, seed):
    out = []
    for on in (False, True):
        trunk, heads, losses = _linear_trunk_problem(T, seed)
        w = _weighting(name, [TaskSpec(f"t{i}") for i in range(T)], on_representation=on)
        if on:
            w.watch(trunk)
        coeffs = w.backward(losses(), list(trunk.parameters()), list(heads.parameters()))
        out.append((coeffs, [p.grad.clone() for p in [*trunk.parameters(),
                                                      *heads.parameters()]]))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-9, atol=1e-12)
    assert float(out[0][0].abs().max()) > 0
    for a, b in zip(out[0][1], out[1][1], strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", GRADIENT_NAMES)
def test_representation_route_forms_batch_by_width_not_trunk_parameters(name, monkeypatch):
    shapes = []
    original = gram.task_gradients

    def recording(losses, params, scale):
        G = original(losses, params, scale)
        shapes.append(tuple(G.shape))
        return G

    def forbidden(*args, **kwargs):
        raise AssertionError("per-task gradients of the trunk's parameters were formed")

    monkeypatch.setattr(gram, "task_gradients", recording)
    monkeypatch.setattr(weighting_base, "task_gradients", forbidden)
    torch.manual_seed(0)
    B, width, T = 16, 4, 3
    trunk = torch.nn.Sequential(torch.nn.Linear(30, 64, dtype=F64), torch.nn.ReLU(),
                                torch.nn.Linear(64, width, dtype=F64))  # 2244 parameters
    heads = torch.nn.ModuleList([torch.nn.Linear(width, 1, dtype=F64) for _ in range(T)])
    w = _weighting(name, [TaskSpec(f"t{i}") for i in range(T)], on_representation=True)
    w.watch(trunk)
    Z = trunk(torch.randn(B, 30, dtype=F64))
    losses = torch.stack([(h(Z) ** 2).mean() * (t + 1) for t, h in enumerate(heads)])
    coeffs = w.backward(losses, list(trunk.parameters()), list(heads.parameters()))
    assert shapes == [(T, B * width)]
    assert sum(p.numel() for p in trunk.parameters()) == 2244
    assert torch.isfinite(coeffs).all()
    # the trunk got the gradient of sum_t c_t L_t
    assert all(p.grad is not None for p in trunk.parameters())


@pytest.mark.parametrize("name", GRADIENT_NAMES)
def test_trainer_sets_up_the_representation_route(name):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    targets = {"a": np.tanh(X[:, 0] + X[:, 1]), "b": -np.tanh(X[:, 0] + X[:, 1])}
    torch.manual_seed(0)
    net = HardSharing(4, ["a", "b"], hidden=(8,))
    w = make_weighting(name, on_representation=True)
    calls = []
    original = w._capture
    w._capture = lambda *a: (calls.append(1), original(*a))[1]
    tr = Trainer(net, weighting=w, max_epochs=2, batch_size=32, lr=1e-2, seed=0)
    h = tr.fit((X, targets)).history
    assert np.isfinite(h[["weight/a", "weight/b"]].to_numpy()).all()
    assert len(calls) == 4  # one capture per step (2 epochs x 2 batches)
    assert not net.trunk._forward_hooks and w._hook is None  # unwatched after fit


@pytest.mark.parametrize("net_cls", ["MMoE", "PLE", "CGC"])
def test_representation_route_refuses_nets_without_one_shared_representation(net_cls):
    import regmtl.deep as deep

    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 4))
    targets = {"a": X[:, 0], "b": X[:, 1]}
    net = getattr(deep, net_cls)(4, ["a", "b"])
    tr = Trainer(net, weighting=UPGrad(on_representation=True), max_epochs=1, seed=0)
    with pytest.raises(ValueError, match=rf"UPGrad with on_representation=True .*{net_cls}"):
        tr.fit((X, targets))


def test_upper_bound_is_the_representation_option_and_old_models_load():
    w = MGDA(upper_bound=True)
    assert w.on_representation and w.upper_bound
    assert MGDA(on_representation=True).upper_bound
    assert repr(make_weighting("mgda", upper_bound=True)) == \
        "MGDA(normalization='none', upper_bound=True)"
    assert repr(UPGrad(on_representation=True)) == "UPGrad(on_representation=True)"
    with pytest.raises(ValueError, match="on_representation must be True or False"):
        IMTL(on_representation="yes")
    # a model saved before the option: its state has upper_bound and no on_representation
    state = dict(MGDA().__dict__)
    del state["on_representation"]
    state["upper_bound"] = True
    old = MGDA.__new__(MGDA)
    old.__setstate__(state)
    assert old.on_representation and old.upper_bound
    state = dict(IMTL().__dict__)
    del state["on_representation"], state["_hook"]
    old = IMTL.__new__(IMTL)
    old.__setstate__(state)
    assert old.on_representation is False and old._hook is None
    import pickle

    back = pickle.loads(pickle.dumps(MGDA(upper_bound=True)))
    assert back.upper_bound and back.on_representation
