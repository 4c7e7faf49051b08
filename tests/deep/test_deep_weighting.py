"""Task weighting methods of ``regmtl.deep.weighting``: directions, exact gradients, plumbing.

The recurring problem: a shared tanh layer and two linear heads; task b's target is 10 times
task a's, so its squared loss (and gradient) starts about 100 (10) times larger. Everything
runs in float64 on the CPU with fixed seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep.tasks import TaskSpec  # noqa: E402
from regmtl.deep.weighting import (  # noqa: E402
    DWA,
    WEIGHTINGS,
    CAGrad,
    EqualWeighting,
    FixedWeighting,
    GradNorm,
    PCGrad,
    RandomWeighting,
    UncertaintyWeighting,
    Weighting,
    cagrad_direction,
    make_weighting,
    project_conflicting,
)

F64 = torch.float64
TASKS = [TaskSpec("a"), TaskSpec("b")]
ALL_METHODS = [
    ("equal", {}),
    ("fixed", {"weights": [0.5, 2.0]}),
    ("random", {}),
    ("uncertainty", {}),
    ("dwa", {}),
    ("gradnorm", {}),
    ("pcgrad", {}),
    ("cagrad", {}),
    ("famo", {}),
    ("nash_mtl", {}),
    ("imtl", {}),
    ("imtl", {"loss_scale": True}),
    ("mgda", {}),
    ("mgda", {"normalization": "loss+"}),
    ("aligned_mtl", {}),
    ("upgrad", {}),
]
GRADIENT_METHODS = ["gradnorm", "pcgrad", "cagrad", "nash_mtl", "imtl", "mgda", "aligned_mtl",
                    "upgrad"]


class Problem:
    """Shared layer + two heads; y_b = 10 y_a."""

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.X = torch.randn(64, 5, generator=g, dtype=F64)
        beta = torch.randn(5, generator=g, dtype=F64)
        ya = self.X @ beta + 0.1 * torch.randn(64, generator=g, dtype=F64)
        self.Y = torch.stack([ya, 10.0 * ya], dim=1)
        torch.manual_seed(seed)
        self.trunk = torch.nn.Linear(5, 8, dtype=F64)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(8, 1, dtype=F64) for _ in range(2)])
        self.shared = list(self.trunk.parameters())
        self.specific = list(self.heads.parameters())
        self.params = self.shared + self.specific

    def losses(self) -> torch.Tensor:
        h = torch.tanh(self.trunk(self.X))
        return torch.stack([0.5 * ((head(h)[:, 0] - self.Y[:, t]) ** 2).mean()
                            for t, head in enumerate(self.heads)])

    def penalty(self) -> torch.Tensor:
        return 0.1 * sum((p**2).sum() for p in self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def grads(self) -> list[torch.Tensor]:
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in self.params]


def _setup(name: str, kwargs: dict, seed: int = 0, tasks=TASKS) -> Weighting:
    w = make_weighting(name, **kwargs)
    w.setup(tasks, seed=seed)
    return w


def _train(name: str, kwargs: dict | None = None, steps: int = 40, lr: float = 0.02):
    """Adam on the net (and the weighting's parameters); the weights of every step."""
    prob = Problem()
    w = _setup(name, kwargs or {})
    opt = torch.optim.Adam(prob.params + list(w.parameters()), lr=lr)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        history.append(w.backward(prob.losses(), prob.shared, prob.specific))
        opt.step()
    return torch.stack(history), w, prob


def _task_grad_matrix(prob: Problem) -> torch.Tensor:
    losses = prob.losses()
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], prob.shared,
                                                                  retain_graph=True)])
            for t in range(2)]
    return torch.stack(rows)


# ----------------------------------------------------------------------------- loss weighting
@pytest.mark.parametrize("name, kwargs, tasks, expected", [
    ("equal", {}, TASKS, [1.0, 1.0]),
    ("equal", {}, [TaskSpec("a", weight=0.25), TaskSpec("b", weight=3.0)], [0.25, 3.0]),
    ("fixed", {"weights": {"a": 0.3, "b": 2.0}}, TASKS, [0.3, 2.0]),
    ("fixed", {"weights": {"b": 0.0}}, [TaskSpec("a", weight=0.7), TaskSpec("b")], [0.7, 0.0]),
    ("fixed", {"weights": [0.5, 4.0]}, TASKS, [0.5, 4.0]),
])
def test_equal_and_fixed_weights_and_gradients(name, kwargs, tasks, expected):
    prob = Problem()
    w = _setup(name, kwargs, tasks=tasks)
    losses = prob.losses()
    ref = torch.autograd.grad((torch.tensor(expected, dtype=F64) * losses).sum(), prob.params,
                              retain_graph=True)
    out = w.backward(losses, prob.shared, prob.specific)
    assert out.tolist() == expected  # exactly the given weights
    for g, r in zip(prob.grads(), ref, strict=True):
        assert torch.allclose(g, r, rtol=0, atol=1e-6)


def test_uncertainty_downweights_the_large_loss_task():
    history, w, prob = _train("uncertainty", steps=40, lr=0.05)
    final = history[-1]
    assert final[1] < 0.6 * final[0]  # b (100x the loss) ends well below a
    out = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(out, torch.exp(-w.log_vars.detach().double()), rtol=0, atol=1e-12)
    assert [n for n, _ in w.named_parameters()] == ["log_vars"]


def test_uncertainty_optimum_is_inverse_loss():
    """With the losses held fixed, minimizing over s alone gives exp(-s_t) -> 1 / L_t."""
    w = _setup("uncertainty", {})
    losses = torch.tensor([0.5, 50.0], dtype=F64)
    opt = torch.optim.Adam(w.parameters(), lr=0.1)
    for _ in range(600):
        opt.zero_grad()
        weights = w.backward(losses, [], [])
        opt.step()
    # exp(-s_t) L_t = 1 at the optimum: within 0.1 %, so b's weight is 1/100 of a's (+-0.2 %)
    assert torch.allclose(weights * losses, torch.ones(2, dtype=F64), rtol=0, atol=1e-3)
    assert 0.00998 < float(weights[1] / weights[0]) < 0.01002


def test_uncertainty_missing_task_leaves_its_log_variance_alone():
    w = _setup("uncertainty", {})
    x = torch.tensor(2.0, dtype=F64, requires_grad=True)
    losses = torch.stack([x**2, torch.zeros((), dtype=F64)])  # task b: no label in the batch
    w.backward(losses, [], [])
    assert w.log_vars.grad[1] == 0.0
    assert w.log_vars.grad[0] == pytest.approx(1.0 - 4.0, abs=1e-12)  # d/ds (e^-s L + s), s=0


def test_dwa_slow_task_gets_the_larger_weight():
    w = _setup("dwa", {"temperature": 2.0})
    prob = Problem()
    assert w.backward(prob.losses(), [], []).tolist() == [1.0, 1.0]  # epoch 0: base weights
    w.epoch_end(torch.tensor([1.0, 1.0]))
    assert w.backward(prob.losses(), [], []).tolist() == [1.0, 1.0]  # epoch 1: base weights
    w.epoch_end(torch.tensor([0.9, 0.5]))  # a falls slowly (ratio 0.9), b fast (0.5)
    out = w.backward(prob.losses(), [], [])
    expected = 2 * torch.softmax(torch.tensor([0.9, 0.5], dtype=F64) / 2.0, 0)
    assert torch.allclose(out, expected, rtol=0, atol=1e-6)
    assert out[0] > out[1]
    assert float(out.sum()) == pytest.approx(2.0, abs=1e-6)
    w.epoch_end(torch.tensor([0.3, 0.45]))  # now b stalls (0.9) and a falls (0.33)
    out = w.backward(prob.losses(), [], [])
    assert out[1] > out[0]
    assert float(out.sum()) == pytest.approx(2.0, abs=1e-6)


def test_dwa_keeps_base_weights_for_two_epochs():
    tasks = [TaskSpec("a", weight=0.5), TaskSpec("b", weight=1.5)]
    w = _setup("dwa", {}, tasks=tasks)
    for losses in ([2.0, 3.0], [1.0, 1.0]):
        assert w.backward(Problem().losses(), [], []).tolist() == [0.5, 1.5]
        w.epoch_end(torch.tensor(losses))
    out = w.backward(Problem().losses(), [], [])
    assert float(out.sum()) == pytest.approx(2.0, abs=1e-6)  # sum of the base weights
    assert out[0] / out[1] > 0.5 / 1.5  # a fell slower (ratio 0.5 vs 0.33): above its share


def test_random_weighting_is_seeded_and_averages_one():
    prob = Problem()
    x = torch.tensor(1.0, dtype=F64, requires_grad=True)

    def draws(seed, n):
        w = _setup("random", {}, seed=seed)
        return torch.stack([w.backward(torch.stack([x, 2 * x]), [], []) for _ in range(n)])

    a, b, c = draws(3, 2000), draws(3, 2000), draws(4, 5)
    assert torch.equal(a, b)  # deterministic given the seed
    assert not torch.equal(a[:5], c)
    assert torch.allclose(a.sum(1), torch.full((2000,), 2.0, dtype=F64), rtol=0, atol=1e-12)
    # E[T softmax(z)_t] = 1; 2000 draws have a standard error of ~0.012
    assert torch.allclose(a.mean(0), torch.ones(2, dtype=F64), rtol=0, atol=0.05)
    assert float(a.std(0).min()) > 0.2  # they do vary
    # the gradient is that of the weighted sum with the returned weights
    w = _setup("random", {}, seed=5)
    weights = w.backward(prob.losses(), prob.shared, prob.specific)
    ref = torch.autograd.grad((weights * prob.losses()).sum(), prob.params)
    for g, r in zip(prob.grads(), ref, strict=True):
        assert torch.allclose(g, r, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- GradNorm
def test_gradnorm_lowers_the_weight_of_the_larger_gradient_task():
    norms = _task_grad_matrix(Problem()).norm(dim=1)
    assert norms[1] > 5 * norms[0]  # the premise: b's gradient is much larger
    history, w, _ = _train("gradnorm", steps=40)
    assert torch.allclose(history.sum(1), torch.full((40,), 2.0, dtype=F64), atol=1e-9)
    assert bool((history >= 0).all())
    # Algorithm 1: step 1 uses w(0) = 1; the second step already has b's weight lowered
    assert torch.equal(history[0], torch.ones(2, dtype=F64))
    assert history[1, 1] < 1.0 < history[1, 0]
    assert history[-1, 1] < 0.8 * history[-1, 0]
    assert list(w.parameters()) == []  # weights are a buffer, out of the trainer's optimizer
    assert not torch.equal(w.task_weights, history[-1].float())  # already one update ahead


@pytest.mark.parametrize("order", ["paper", "updated"])
def test_gradnorm_backprops_the_weights_it_returns(order):
    prob = Problem()
    w = _setup("gradnorm", {"alpha": 1.5, "lr": 0.1, "order": order})
    weights = w.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.allclose(weights, torch.ones(2, dtype=F64)) == (order == "paper")
    assert torch.allclose(weights, w.task_weights.to(F64)) == (order == "updated")
    ref = torch.autograd.grad((weights * prob.losses()).sum(), prob.params)
    for g, r in zip(prob.grads(), ref, strict=True):
        assert torch.allclose(g, r, rtol=0, atol=1e-6)


def test_gradnorm_state_dict_round_trip():
    _, w, prob = _train("gradnorm", steps=10)
    w2 = GradNorm()
    w2.setup(TASKS, seed=1)
    w2.load_state_dict(w.state_dict())
    losses = prob.losses()
    out1 = w.backward(losses, prob.shared, prob.specific)
    out2 = w2.backward(prob.losses(), prob.shared, prob.specific)
    assert torch.equal(out1, out2)


# ----------------------------------------------------------------------------- PCGrad
def test_pcgrad_two_conflicting_gradients():
    G = torch.tensor([[1.0, 0.0, 2.0], [-1.0, 1.0, -1.0]], dtype=F64)
    assert G[0] @ G[1] < 0
    P, C = project_conflicting(G, torch.Generator().manual_seed(0))
    assert abs(float(P[0] @ G[1])) < 1e-6
    assert abs(float(P[1] @ G[0])) < 1e-6
    assert torch.allclose(C @ G, P, rtol=0, atol=1e-12)
    expected0 = G[0] - (G[0] @ G[1]) / (G[1] @ G[1]) * G[1]
    assert torch.allclose(P[0], expected0, rtol=0, atol=1e-12)


def test_pcgrad_non_conflicting_gradients_unchanged():
    G = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [-0.05, 0.2, 1.0]], dtype=F64)
    assert bool((G @ G.T >= 0).all())
    P, C = project_conflicting(G, torch.Generator().manual_seed(0))
    assert torch.equal(P, G)
    assert torch.equal(C, torch.eye(3, dtype=F64))


def _reference_pcgrad(G: torch.Tensor, gen: torch.Generator):
    """Plain vector PCGrad; the last gradient each g_t was projected against."""
    T = G.shape[0]
    out, last = [], []
    for t in range(T):
        others = [j for j in range(T) if j != t]
        g, proj = G[t].clone(), None
        for k in torch.randperm(T - 1, generator=gen).tolist():
            j = others[k]
            dot = g @ G[j]
            if dot < 0:
                g = g - dot / (G[j] @ G[j]) * G[j]
                assert float(g @ G[j]) > -1e-10  # right after the projection
                proj = j
        out.append(g)
        last.append(proj)
    return torch.stack(out), last


@pytest.mark.parametrize("seed", range(5))
def test_pcgrad_three_tasks_matches_reference(seed):
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(3, 4, generator=g, dtype=F64)
    G[2] = -0.7 * G[0] + 0.3 * G[2]  # make sure something conflicts
    P, C = project_conflicting(G, torch.Generator().manual_seed(seed))
    ref, last = _reference_pcgrad(G, torch.Generator().manual_seed(seed))
    assert torch.allclose(P, ref, rtol=0, atol=1e-10)
    assert torch.allclose(C @ G, P, rtol=0, atol=1e-10)
    assert any(j is not None for j in last)
    for t, j in enumerate(last):
        if j is not None:  # no negative inner product with the gradient it was projected against
            assert float(P[t] @ G[j]) > -1e-10


def test_pcgrad_three_tasks_orthogonal_conflicts():
    """g1 conflicts with g2 and g3, which are orthogonal: g1' clears both, in any order."""
    G = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    for seed in range(4):
        P, C = project_conflicting(G, torch.Generator().manual_seed(seed))
        assert torch.allclose(P[0], torch.tensor([0.0, 0.0, 1.0], dtype=F64), atol=1e-12)
        assert float(P[0] @ G[1]) > -1e-12 and float(P[0] @ G[2]) > -1e-12
        assert torch.allclose(C @ G, P, rtol=0, atol=1e-12)


def test_pcgrad_module_gradients():
    prob = Problem(seed=1)  # a seed where the two task gradients conflict
    G = _task_grad_matrix(prob)
    w = _setup("pcgrad", {}, seed=7)
    losses = prob.losses()
    ref_specific = torch.autograd.grad(losses.sum(), prob.specific, retain_graph=True)
    weights = w.backward(losses, prob.shared, prob.specific)
    P, C = project_conflicting(G, torch.Generator().manual_seed(7))
    assert float(G[0] @ G[1]) < 0  # the problem's task gradients conflict
    assert torch.allclose(weights, C.sum(0), rtol=0, atol=1e-10)
    shared = torch.cat([p.grad.reshape(-1) for p in prob.shared])
    assert torch.allclose(shared, P.sum(0), rtol=0, atol=1e-10)
    for p, r in zip(prob.specific, ref_specific, strict=True):
        assert torch.allclose(p.grad, r, rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- CAGrad
def test_cagrad_c0_is_the_sum_of_gradients():
    G = torch.randn(3, 20, generator=torch.Generator().manual_seed(0), dtype=F64)
    d, coeffs = cagrad_direction(G, c=0.0)
    assert torch.equal(coeffs, torch.ones(3, dtype=F64))
    assert torch.allclose(d, G.sum(0), rtol=0, atol=1e-12)
    # through the module: the same gradients as equal weighting
    grads = []
    for name, kwargs in [("cagrad", {"c": 0.0}), ("equal", {})]:
        prob = Problem()
        _setup(name, kwargs).backward(prob.losses(), prob.shared, prob.specific)
        grads.append(prob.grads())
    for g, r in zip(*grads, strict=True):
        assert torch.allclose(g, r, rtol=0, atol=1e-10)


def test_cagrad_smaller_gradient_task_gets_the_larger_coefficient():
    history, _, _ = _train("cagrad", steps=40)
    assert bool((history[:, 0] > history[:, 1]).all())  # a: the task with the small gradient
    # rescale: coefficients T (1/T + lambda w) / (1 + c^2) >= 1 / (1 + c^2)
    assert float(history.min()) >= 1 / 1.25 - 1e-12


def test_cagrad_direction_coefficients():
    """The paper's form g0 + sigma g_w / |g_w|: g_w is the direction d / T - g0 itself."""
    G = torch.randn(3, 7, generator=torch.Generator().manual_seed(1), dtype=F64)
    for c, rescale in [(0.5, True), (0.9, False)]:
        d, coeffs = cagrad_direction(G, c=c, rescale=rescale)
        assert torch.allclose(d, coeffs @ G, rtol=0, atol=1e-12)
        g0 = G.mean(0)
        step = d * ((1 + c * c) if rescale else 1) / 3 - g0
        assert abs(float(step.norm()) - c * float(g0.norm())) < 1e-10  # on the ball's boundary
        # the coefficients of the step are >= 0: it is a positive combination, lambda w
        assert float((coeffs * ((1 + c * c) if rescale else 1) / 3 - 1 / 3).min()) >= -1e-12


def _grid(T: int, n: int) -> np.ndarray:
    if T == 2:
        t = np.linspace(0.0, 1.0, n + 1)
        return np.stack([t, 1 - t], 1)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    i, j = i[keep] / n, j[keep] / n
    return np.stack([i, j, 1 - i - j], 1)


def _cagrad_case(T: int, seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "scaled":  # norms 0.1 to 10: the optimum is mostly a vertex
        return rng.standard_normal((T, 4)) * rng.uniform(0.1, 10.0, (T, 1))
    # balanced: near-orthogonal gradients of similar norms, optima inside the simplex
    return np.eye(T, 6) + 0.3 * rng.standard_normal((T, 6))


@pytest.mark.parametrize("T, seed, kind",
                         list(itertools.product([2, 3], range(4), ["scaled", "balanced"])))
def test_cagrad_solver_matches_a_grid_over_the_simplex(T, seed, kind):
    """Strong duality: the update's worst-task value equals the dual's minimum over the simplex
    of g_w . g0 + sigma |g_w| (evaluated on a fine grid)."""
    G = _cagrad_case(T, seed, kind)
    A = G @ G.T
    sqrt_phi = 0.5 * np.linalg.norm(G.mean(0))
    d, _ = cagrad_direction(torch.as_tensor(G), c=0.5, rescale=False)
    d = d.numpy() / T
    assert np.linalg.norm(d - G.mean(0)) <= sqrt_phi * (1 + 1e-10)
    f = float((G @ d).min())
    b = A.mean(1)
    W = _grid(T, 100_000 if T == 2 else 500)
    f_grid = (W @ b + sqrt_phi * np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", W, A, W), 0))).min()
    scale = max(abs(f_grid), A.sum() / T**2)
    assert f <= f_grid + 1e-9 * scale  # weak duality: no update beats the dual bound
    assert f >= f_grid - 1e-4 * scale  # the grid's minimum is only near the dual's


# ----------------------------------------------------------------------------- backward plumbing
@pytest.mark.parametrize("name, kwargs", ALL_METHODS)
def test_extra_adds_exactly_its_gradient(name, kwargs):
    prob = Problem()
    _setup(name, kwargs).backward(prob.losses(), prob.shared, prob.specific)
    without = prob.grads()
    prob.zero_grad()
    penalty = prob.penalty()
    ref = torch.autograd.grad(penalty, prob.params, retain_graph=True)
    _setup(name, kwargs).backward(prob.losses(), prob.shared, prob.specific, extra=penalty)
    for g, g0, r in zip(prob.grads(), without, ref, strict=True):
        assert torch.allclose(g - g0, r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name, kwargs", ALL_METHODS)
def test_backward_accumulates(name, kwargs):
    prob = Problem()
    _setup(name, kwargs).backward(prob.losses(), prob.shared, prob.specific)
    once = prob.grads()
    _setup(name, kwargs).backward(prob.losses(), prob.shared, prob.specific)
    for g, g1 in zip(prob.grads(), once, strict=True):
        assert torch.allclose(g, 2 * g1, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name, kwargs", ALL_METHODS)
def test_scale_doubles_every_gradient(name, kwargs):
    out, grads, extra = [], [], []
    for scale in (None, lambda x: 2 * x):
        prob = Problem()
        w = _setup(name, kwargs)
        out.append(w.backward(prob.losses(), prob.shared, prob.specific,
                              extra=prob.penalty(), scale=scale))
        grads.append(prob.grads())
        extra.append([p.grad.clone() for p in w.parameters()])
    assert torch.allclose(out[0], out[1], rtol=1e-12, atol=0)  # the same weights
    for g1, g2 in zip(grads[0] + extra[0], grads[1] + extra[1], strict=True):
        assert torch.allclose(g2, 2 * g1, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_reduce_sees_the_task_gradient_matrix(name):
    prob = Problem()
    d = sum(p.numel() for p in prob.shared)
    seen = []

    def reduce(x):
        seen.append(tuple(x.shape))
        return x

    w = _setup(name, {})
    assert w.needs_task_grads
    w.backward(prob.losses(), prob.shared, prob.specific, reduce=reduce)
    assert (2, d) in seen
    if name == "gradnorm":
        assert (2,) in seen  # the loss values of its statistics


def test_loss_weighting_needs_no_task_gradients():
    for name in ("equal", "random", "uncertainty", "dwa", "famo"):
        assert not make_weighting(name).needs_task_grads


@pytest.mark.parametrize("name, kwargs", ALL_METHODS)
def test_missing_and_detached_losses(name, kwargs):
    prob = Problem()
    w = _setup(name, kwargs)
    # task b has no label in the batch: constant 0, no graph
    losses = torch.stack([prob.losses()[0], torch.zeros((), dtype=F64)])
    out = w.backward(losses, prob.shared, prob.specific)
    assert out.shape == (2,) and bool(torch.isfinite(out).all())
    assert all(bool(torch.isfinite(g).all()) for g in prob.grads())
    assert prob.heads[1].weight.grad is None or not prob.heads[1].weight.grad.any()
    # no loss attached at all (and no penalty): nothing to differentiate, no error
    prob.zero_grad()
    out = w.backward(torch.tensor([1.0, 2.0], dtype=F64), prob.shared, prob.specific)
    assert out.shape == (2,)
    assert all(p.grad is None or not p.grad.any() for p in prob.params)


def test_backward_checks_its_input():
    w = EqualWeighting()
    with pytest.raises(RuntimeError, match="setup"):
        w.backward(torch.ones(2), [], [])
    w.setup(TASKS)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        w.backward(torch.ones(3), [], [])


# ----------------------------------------------------------------------------- factory
def test_make_weighting_names_and_aliases():
    # the full list is pinned in test_deep_weighting_registry.py (KEYS)
    assert {"equal", "fixed", "random", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad",
            "famo", "nash_mtl", "imtl", "mgda", "aligned_mtl", "upgrad"} <= set(WEIGHTINGS)
    for name, cls in WEIGHTINGS.items():
        kwargs = {"weights": [1.0, 1.0]} if name == "fixed" else {}
        assert type(make_weighting(name, **kwargs)) is cls
    assert type(make_weighting(None)) is EqualWeighting
    assert type(make_weighting("equal")) is EqualWeighting
    assert type(make_weighting("rlw")) is RandomWeighting
    assert type(make_weighting("RLW")) is RandomWeighting
    assert isinstance(make_weighting("uncertainty"), UncertaintyWeighting)
    assert isinstance(make_weighting("dwa", temperature=3.0), DWA)
    assert make_weighting("dwa", temperature=3.0).temperature == 3.0
    assert make_weighting("cagrad", c=0.2, rescale=False).c == 0.2
    g = make_weighting("gradnorm", alpha=0.5, lr=0.01)
    assert (g.alpha, g.lr) == (0.5, 0.01)
    assert isinstance(make_weighting("pcgrad"), PCGrad)
    assert isinstance(make_weighting("cagrad"), CAGrad)
    inst = GradNorm()
    assert make_weighting(inst) is inst


def test_make_weighting_errors():
    with pytest.raises(ValueError, match=r"Unknown weighting 'no_such'.*'equal'.*'upgrad'.*rlw"):
        make_weighting("no_such")
    with pytest.raises(ValueError, match="weights="):
        make_weighting("fixed")
    with pytest.raises(ValueError, match="instance"):
        make_weighting(GradNorm(), alpha=1.0)
    with pytest.raises(TypeError, match="weighting"):
        make_weighting(3)
    with pytest.raises(ValueError, match="temperature"):
        make_weighting("dwa", temperature=0.0)
    with pytest.raises(ValueError, match="c must"):
        make_weighting("cagrad", c=-1.0)


@pytest.mark.parametrize("weights, match", [
    ({"a": 1.0, "zz": 2.0}, r"weights: unknown task name\(s\) \['zz'\]"),
    ([1.0, 2.0, 3.0], "weights: 3 weights given for 2 tasks"),
    ([1.0], "weights: 1 weights given for 2 tasks"),
    ([1.0, -0.5], r"weights\[1\] must be a finite number >= 0"),
    ({"a": math.nan}, r"weights\['a'\] must be a finite number >= 0"),
    ([1.0, math.inf], r"weights\[1\]"),
    ("ab", "weights must be a dict"),
])
def test_fixed_weighting_bad_weights(weights, match):
    w = FixedWeighting(weights)
    with pytest.raises(ValueError, match=match):
        w.setup(TASKS)


def test_setup_is_seeded_from_torch_when_no_seed():
    torch.manual_seed(11)
    a = RandomWeighting()
    a.setup(TASKS)
    torch.manual_seed(11)
    b = RandomWeighting()
    b.setup(TASKS)
    x = torch.tensor([1.0, 1.0], dtype=F64, requires_grad=True)
    assert torch.equal(a.backward(x * 1, [], []), b.backward(x * 1, [], []))
    # the generator state is saved with the module
    c = RandomWeighting()
    c.setup(TASKS, seed=0)
    c.load_state_dict(a.state_dict())
    assert torch.equal(a.backward(x * 1, [], []), c.backward(x * 1, [], []))
