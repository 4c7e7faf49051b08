"""The loss weightings' first steps against their papers' formulas, computed by hand.

A fixed two-task linear problem in float64 (shared theta in R^3, losses
L_t = ||A_t theta - y_t||^2 / 2), stepped by plain gradient descent written out in NumPy: the
weights every method returns over its first steps (epochs for DWA) equal the paper's formula
evaluated by hand to 1e-12 -- uncertainty weighting (Kendall et al. 2018), DWA (Liu et al.
2019), RLW (Lin et al. 2022), FAMO (Liu et al. 2023; the paper's plain steps and the authors'
Adam) and GradNorm (Chen et al. 2018, Algorithm 1's order, three tasks, with the issue's
two-task example and the other order). Saved GradNorm options of earlier releases (no
``order``) load with Algorithm 1's order. And what a weighting returns is the caller's own:
mutating it changes neither the method's state nor its next step, for every registered method.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import FIXTURES  # noqa: E402

from regmtl.deep import (  # noqa: E402
    DWA,
    FAMO,
    WEIGHTINGS,
    GradNorm,
    RandomWeighting,
    TaskSpec,
    UncertaintyWeighting,
    make_weighting,
)

F64 = torch.float64
TASKS = [TaskSpec("a"), TaskSpec("b")]
A = [np.array([[1.0, 0.5, 0.0], [0.0, 1.0, -0.5]]), np.array([[2.0, 0.0, 1.0], [1.0, 3.0, 0.0]])]
Y = [np.array([1.0, -1.0]), np.array([4.0, 2.0])]
THETA0 = np.array([0.3, -0.2, 0.1])
LR = 0.05


def _losses_np(theta: np.ndarray) -> np.ndarray:
    return np.array([0.5 * np.sum((a @ theta - y) ** 2) for a, y in zip(A, Y, strict=True)])


def _grads_np(theta: np.ndarray) -> np.ndarray:
    return np.stack([a.T @ (a @ theta - y) for a, y in zip(A, Y, strict=True)])


def _losses(theta: torch.Tensor) -> torch.Tensor:
    return torch.stack([0.5 * ((torch.as_tensor(a) @ theta - torch.as_tensor(y)) ** 2).sum()
                        for a, y in zip(A, Y, strict=True)])


def _run(weighting, steps: int, after_step=None) -> list[np.ndarray]:
    """Gradient descent on theta with the weighting; the weights of each step."""
    theta = torch.nn.Parameter(torch.as_tensor(THETA0.copy()))
    out = []
    for _ in range(steps):
        theta.grad = None
        w = weighting.backward(_losses(theta), [theta], [])
        out.append(w.numpy().copy())
        with torch.no_grad():
            theta -= LR * theta.grad
            for p in weighting.parameters():
                if p.grad is not None:
                    p -= LR * p.grad
                    p.grad = None
        if after_step is not None:
            after_step(weighting, _losses(theta).detach())
    return out


def test_uncertainty_first_steps_by_hand():
    """Kendall et al. eq. (7) with s = log sigma^2: w = e^{-s}, ds = 1 - e^{-s} L."""
    weighting = UncertaintyWeighting()
    weighting.setup(TASKS)
    weighting.double()  # its log-variances in float64, like the problem
    got = _run(weighting, 3)
    theta, s = THETA0.copy(), np.zeros(2)
    for k in range(3):
        w = np.exp(-s)
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)
        L, g = _losses_np(theta), _grads_np(theta)
        theta, s = theta - LR * (w @ g), s - LR * (1.0 - w * L)


def test_dwa_weights_by_hand():
    """Liu et al. eq. (1): w_t = T exp(r_t / tau) / sum exp(r / tau), r_t = L_t(e-1)/L_t(e-2);
    equal weights for the first two epochs."""
    weighting = DWA(temperature=2.0)
    weighting.setup(TASKS)
    weighting.double()  # its weights in float64
    epochs = [np.array([1.0, 2.0]), np.array([0.8, 1.9]), np.array([0.5, 1.5]),
              np.array([0.45, 0.9])]
    theta = torch.nn.Parameter(torch.as_tensor(THETA0.copy()))
    for e, losses in enumerate(epochs):
        w = weighting.backward(_losses(theta), [theta], []).numpy()
        if e < 2:
            np.testing.assert_allclose(w, [1.0, 1.0], rtol=0, atol=0)
        else:
            r = epochs[e - 1] / epochs[e - 2]
            ref = 2 * np.exp(r / 2.0) / np.exp(r / 2.0).sum()
            np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12)
        weighting.epoch_end(torch.as_tensor(losses))


def test_rlw_weights_are_the_seeded_draws_by_hand():
    """Lin et al.: w = softmax(z), z ~ N(0, I), drawn every step (times T here)."""
    weighting = RandomWeighting()
    weighting.setup(TASKS, seed=7)
    got = _run(weighting, 4)
    gen = torch.Generator().manual_seed(7)
    for k in range(4):
        z = torch.randn(2, generator=gen, dtype=F64).numpy()
        np.testing.assert_allclose(got[k], 2 * np.exp(z) / np.exp(z).sum(), rtol=0,
                                   atol=1e-12)


def test_famo_first_steps_by_hand():
    """Liu et al. Algorithm 1 with the logits' SGD step: w ~ z / L, z = softmax(xi);
    xi <- xi - beta (J_z^T (log L - log L') + gamma xi)."""
    beta, gamma, eps = 0.5, 0.01, 1e-8
    weighting = FAMO(w_lr=beta, gamma=gamma, optimizer="sgd", eps=eps)
    weighting.setup(TASKS)
    got = _run(weighting, 3, after_step=lambda w, L: w.step_end(L))
    theta, xi = THETA0.copy(), np.zeros(2)
    for k in range(3):
        L = _losses_np(theta)
        z = np.exp(xi) / np.exp(xi).sum()
        ratio = z / (L + eps)
        w = 2 * ratio / ratio.sum()
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)
        theta = theta - LR * (w @ _grads_np(theta))
        v = np.log(L + eps) - np.log(_losses_np(theta) + eps)
        xi = xi - beta * (z * (v - z @ v) + gamma * xi)


def _adam(m, v, grad, step, lr):
    """One Adam step (betas 0.9, 0.999, eps 1e-8): the change and the new moments."""
    m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
    m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
    return -lr * m_hat / (np.sqrt(v_hat) + 1e-8), m, v


def test_famo_first_steps_with_adam_by_hand():
    """The authors' code: the logits' gradient J_z^T v + gamma xi through Adam."""
    beta, gamma, eps = 0.1, 0.01, 1e-8
    weighting = FAMO(w_lr=beta, gamma=gamma, eps=eps)
    weighting.setup(TASKS)
    got = _run(weighting, 3, after_step=lambda w, L: w.step_end(L))
    theta, xi, m, v = THETA0.copy(), np.zeros(2), np.zeros(2), np.zeros(2)
    for k in range(3):
        L = _losses_np(theta)
        z = np.exp(xi) / np.exp(xi).sum()
        w = 2 * (z / (L + eps)) / (z / (L + eps)).sum()
        np.testing.assert_allclose(got[k], w, rtol=0, atol=1e-12)
        theta = theta - LR * (w @ _grads_np(theta))
        d = np.log(L + eps) - np.log(_losses_np(theta) + eps)
        change, m, v = _adam(m, v, z * (d - z @ d) + gamma * xi, k + 1, beta)
        xi = xi + change
    np.testing.assert_allclose(weighting.logits.numpy(), xi, rtol=0, atol=1e-12)


# three tasks for GradNorm: shared theta in R^3, L_t = ||A_t theta - y_t||^2 / 2
A3 = [*A, np.array([[0.5, -1.0, 2.0]])]
Y3 = [*Y, np.array([0.7])]


def _gradnorm_by_hand(order: str, steps: int, alpha: float, lr: float):
    """Chen et al. Algorithm 1 in NumPy: the weights each step uses, and the final theta."""
    theta, w = THETA0.copy(), np.ones(3)
    m, v, L0, used = np.zeros(3), np.zeros(3), None, []
    for k in range(steps):
        L = np.array([0.5 * np.sum((a @ theta - y) ** 2) for a, y in zip(A3, Y3, strict=True)])
        g = np.stack([a.T @ (a @ theta - y) for a, y in zip(A3, Y3, strict=True)])
        L0 = L if L0 is None else L0
        norms = np.linalg.norm(g, axis=1)
        G = w * norms                                   # G_W^(i)(t) = ||grad w_i L_i||
        r = (L / L0) / np.mean(L / L0)                  # relative inverse training rate
        target = G.mean() * r**alpha                    # held constant
        grad_w = np.sign(G - target) * norms            # d/dw_i sum_i |G_i - target_i|
        change, m, v = _adam(m, v, grad_w, k + 1, lr)
        w_next = np.clip(w + change, 0, None)
        w_next = 3 * w_next / w_next.sum()              # renormalize to sum T
        step_w = w if order == "paper" else w_next
        used.append(step_w)
        theta = theta - LR * (step_w @ g)               # the network's step
        w = w_next
    return used, theta, w


@pytest.mark.parametrize("order", ["paper", "updated"])
def test_gradnorm_first_steps_by_hand(order):
    """Three tasks, three steps: the weights of each step and the network's steps equal
    Algorithm 1 written out by hand (order="paper": the step uses w(t))."""
    weighting = GradNorm(alpha=1.5, lr=0.05, order=order)
    weighting.setup([TaskSpec("a"), TaskSpec("b"), TaskSpec("c")])
    weighting.double()  # its weights in float64, like the problem
    theta = torch.nn.Parameter(torch.as_tensor(THETA0.copy()))
    got = []
    for _ in range(3):
        theta.grad = None
        losses = torch.stack([0.5 * ((torch.as_tensor(a) @ theta - torch.as_tensor(y)) ** 2)
                              .sum() for a, y in zip(A3, Y3, strict=True)])
        got.append(weighting.backward(losses, [theta], []).numpy().copy())
        with torch.no_grad():
            theta -= LR * theta.grad
    used, theta_ref, w_ref = _gradnorm_by_hand(order, 3, alpha=1.5, lr=0.05)
    if order == "paper":
        np.testing.assert_array_equal(got[0], [1.0, 1.0, 1.0])
    for k in range(3):
        np.testing.assert_allclose(got[k], used[k], rtol=0, atol=1e-12)
    assert not np.allclose(used[1], used[2])  # the weights do move
    np.testing.assert_allclose(theta.detach().numpy(), theta_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weighting.task_weights.numpy(), w_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["paper", "updated"])
def test_gradnorm_issue_example(order):
    """theta = (1, 1), L = (theta_0^2, 10 theta_1^2): Algorithm 1's first step uses
    w(0) = (1, 1), shared gradient (2, 20); the weights then move to (1.025, 0.975), which
    order="updated" uses at once (gradient (2.05, 19.5))."""
    weighting = GradNorm(alpha=1.5, lr=0.025, order=order)
    weighting.setup(TASKS)
    weighting.double()
    theta = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=F64))
    w = weighting.backward(torch.stack([theta[0] ** 2, 10 * theta[1] ** 2]), [theta], [])
    # by hand: |g| = (2, 20), G = w |g| = (2, 20), target mean(G) r^1.5 = 11 (r = 1); the
    # gradient of sum |G - target| over w is sign(G - 11) |g| = (-2, 20), and Adam's first
    # step is lr * grad / (|grad| + 1e-8)
    grad = np.array([-2.0, 20.0])
    w1 = 1.0 - 0.025 * grad / (np.abs(grad) + 1e-8)
    w1 = 2 * w1 / w1.sum()
    np.testing.assert_allclose(w1, [1.025, 0.975], rtol=0, atol=1e-8)
    np.testing.assert_allclose(weighting.task_weights.numpy(), w1, rtol=0, atol=1e-12)
    step_w = np.ones(2) if order == "paper" else w1
    np.testing.assert_allclose(w.numpy(), step_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(theta.grad.numpy(), step_w * [2.0, 20.0], rtol=0, atol=1e-12)
    if order == "updated":
        np.testing.assert_allclose(theta.grad.numpy(), [2.05, 19.5], rtol=0, atol=1e-6)
        return
    theta.grad = None  # Algorithm 1's second step uses w(1)
    w = weighting.backward(torch.stack([theta[0] ** 2, 10 * theta[1] ** 2]), [theta], [])
    np.testing.assert_allclose(w.numpy(), w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(theta.grad.numpy(), w1 * [2.0, 20.0], rtol=0, atol=1e-12)


def test_gradnorm_options_of_earlier_releases_load(tmp_path):
    """A saved estimator whose GradNorm options have no ``order`` (earlier releases) loads
    with Algorithm 1's order; a saved ``order`` comes back."""
    import json
    import shutil

    from regmtl.deep.saving import load_estimator

    old = FIXTURES / "old_checkpoints" / "estimator_mmoe"
    folder = tmp_path / "old"
    shutil.copytree(old, folder)
    config = json.loads((folder / "config.json").read_text())
    config["estimator"]["params"]["weighting"] = {"weighting": "gradnorm",
                                                  "options": {"alpha": 1.0, "lr": 0.01}}
    (folder / "config.json").write_text(json.dumps(config))
    est = load_estimator(folder)
    assert isinstance(est.weighting, GradNorm)
    assert (est.weighting.alpha, est.weighting.lr, est.weighting.order) == (1.0, 0.01, "paper")
    est.set_params(weighting=GradNorm(alpha=1.0, order="updated"))
    est.save(tmp_path / "new")
    again = load_estimator(tmp_path / "new")
    assert (again.weighting.alpha, again.weighting.order) == (1.0, "updated")


def _options(name: str) -> dict:
    return {"weights": [0.5, 2.0]} if name == "fixed" else {}


# every registered method with its defaults, and the options that take other paths
CASES = [(name, _options(name)) for name in WEIGHTINGS] + [
    ("fixed", {"weights": {"b": 3.0}}), ("gradnorm", {"order": "updated"}),
    ("famo", {"optimizer": "sgd"}), ("dwa", {"temperature": 0.5})]


@pytest.mark.parametrize(("name", "options"), CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_returned_weights_are_the_callers_own(name, options):
    """Mutating what backward returned changes neither the state nor the next step."""
    def fresh():
        w = make_weighting(name, **options)
        w.setup(TASKS, seed=3)
        return w

    def step(w):
        theta = torch.nn.Parameter(torch.as_tensor(THETA0.copy()))
        out = w.backward(_losses(theta), [theta], [])
        return out, theta.grad.clone()

    mutated, clean = fresh(), fresh()
    out, _ = step(mutated)
    step(clean)
    state = {k: v.clone() for k, v in mutated.state_dict().items() if torch.is_tensor(v)}
    base = mutated.base_weights.clone()
    out.mul_(-7.0).add_(3.0)  # what a user might do: w /= w.sum(), in place
    assert torch.equal(mutated.base_weights, base)
    for k, v in mutated.state_dict().items():
        if torch.is_tensor(v):
            assert torch.equal(v, state[k]), f"{name}: state {k!r} changed"
    out2, grad2 = step(mutated)
    ref2, grad_ref = step(clean)
    assert torch.equal(out2, ref2) and torch.equal(grad2, grad_ref)
    assert all(math.isfinite(x) for x in out2.tolist())


def test_history_is_the_callers_own():
    from regmtl.deep import HardSharing, Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 3)).astype(np.float32)
    trainer = Trainer(HardSharing(3, ["a", "b"], hidden=(4,)), max_epochs=2, batch_size=16,
                      weighting="dwa", device="cpu")
    trainer.fit((X, {"a": X[:, 0], "b": X[:, 1]}))
    h = trainer.history
    h.iloc[:, :] = 0.0
    assert not (trainer.history == 0.0).all().all()


def test_a_subclass_own_backward_returns_a_copy():
    """A weighting of one's own that returns its state still hands out a copy."""
    from regmtl.deep import Weighting

    class Leaky(Weighting):
        def backward(self, losses, shared, specific, **kw):
            """Returns the base weights themselves."""
            return self.base_weights

    weighting = Leaky()
    weighting.setup(TASKS)
    out = weighting.backward(torch.ones(2, dtype=F64), [], [])
    out /= out.sum()
    assert weighting.base_weights.tolist() == [1.0, 1.0] and out.tolist() == [0.5, 0.5]
    assert Leaky.backward.__doc__ == "Returns the base weights themselves."
