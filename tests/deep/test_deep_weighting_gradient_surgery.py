"""GradVac, GradDrop, DualProj, ConFIG, FairGrad, SDMGrad and MoDo against their formulas.

Every direction is checked on small Jacobians against an independent computation: a NumPy
transcription of the paper's formula, cvxpy for the quadratic programs (DualProj, SDMGrad,
MoDo's projection), SciPy's root finder for FairGrad's system. Then the contract: the
functional form equals the training path, the direction does not depend on the task order,
the promised non-conflict holds, the answer at Pareto-stationary points is the documented
one, options are checked, loss scaling leaves the decision alone, stateful methods
round-trip through ``state_dict``, and a short Trainer fit by name runs under hard sharing and
MMoE with a task missing from most batches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cp = pytest.importorskip("cvxpy")
from scipy.optimize import root  # noqa: E402

from regmtl.deep import HardSharing, MMoE, TaskSpec, Trainer, make_weighting  # noqa: E402
from regmtl.deep.weighting import (  # noqa: E402
    ConFIG,
    DualProj,
    FairGrad,
    GradDrop,
    GradVac,
    MoDo,
    SDMGrad,
    config_weights,
    dualproj_weights,
    fairgrad_weights,
    graddrop_direction,
    modo_step,
    nash_weights,
    sdmgrad_weights,
    vaccinate,
)

F64 = torch.float64
NEW = ["gradvac", "graddrop", "dualproj", "config", "fairgrad", "sdmgrad", "modo"]
#: Pareto-stationary Jacobians (0 in the convex hull of the rows)
STATIONARY = {
    "opposite": [[1.0, 0.0], [-1.0, 0.0]],
    "opposite_plus": [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]],
    "triangle": [[1.0, 0.0], [0.0, 1.0], [-2 ** -0.5, -2 ** -0.5]],
}


def _rand(T, d, seed, conflict=True):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((T, d))
    if conflict:
        J[1] = -0.7 * J[0] + 0.3 * J[1]
    return J


def _tasks(T):
    return [TaskSpec(f"t{i}") for i in range(T)]


def _step(name_or_w, J, seed=0, scale=None, **kwargs):
    """(weights, shared gradient) of one backward on losses J @ theta (gradient rows J)."""
    J = torch.as_tensor(np.asarray(J, dtype=np.float64))
    w = make_weighting(name_or_w, **kwargs) if isinstance(name_or_w, str) else name_or_w
    if isinstance(name_or_w, str):
        w.setup(_tasks(J.shape[0]), seed=seed)
    theta = torch.nn.Parameter(torch.ones(J.shape[1], dtype=F64))
    out = w.backward(J @ theta, [theta], [], scale=scale)
    return out, theta.grad.clone()


def _dual_cone_projection(J, v):
    x = cp.Variable(J.shape[1])
    cp.Problem(cp.Minimize(cp.sum_squares(x - v)), [J @ x >= 0]).solve(solver="CLARABEL",
                                                                      tol_gap_abs=1e-12,
                                                                      tol_gap_rel=1e-12,
                                                                      tol_feas=1e-12)
    return x.value


# ----------------------------------------------------------------------------- DualProj
@pytest.mark.parametrize("T, d, seed", [(2, 5, 0), (3, 5, 1), (5, 8, 2), (4, 3, 3)])
def test_dualproj_equals_cvxpy_projection_of_the_mean(T, d, seed):
    J = _rand(T, d, seed)
    c = dualproj_weights(J @ J.T).numpy()
    ref = _dual_cone_projection(J, J.mean(0))
    np.testing.assert_allclose(c @ J, ref, atol=1e-7)
    assert np.all(J @ (c @ J) >= -1e-12)  # conflicts with no task
    w, grad = _step("dualproj", J)  # the training path: sum b_t g_t projected, T x the mean
    np.testing.assert_allclose(grad.numpy(), T * (c @ J), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), T * c, rtol=1e-12, atol=1e-12)


def test_dualproj_at_stationary_points():
    for key, J in STATIONARY.items():
        J = np.array(J)
        _, grad = _step("dualproj", J)
        np.testing.assert_allclose(grad.numpy(), J.shape[0] * _dual_cone_projection(
            J, J.mean(0)), atol=1e-7, err_msg=key)
    np.testing.assert_allclose(_step("dualproj", STATIONARY["opposite"])[1].numpy(), 0.0,
                               atol=1e-15)
    np.testing.assert_allclose(_step("dualproj", STATIONARY["opposite_plus"])[1].numpy(),
                               [0.0, 1.0], atol=1e-14)


# ----------------------------------------------------------------------------- ConFIG
def _config_numpy(J):
    U = J / np.linalg.norm(J, axis=1, keepdims=True)
    gu = np.linalg.pinv(U) @ np.ones(J.shape[0])
    gh = gu / np.linalg.norm(gu)
    return (J @ gh).sum() * gh


@pytest.mark.parametrize("T, d, seed", [(2, 5, 0), (3, 5, 1), (5, 8, 2), (3, 3, 4)])
def test_config_equals_the_pseudo_inverse_formula(T, d, seed):
    J = _rand(T, d, seed)
    c = config_weights(J @ J.T).numpy()
    np.testing.assert_allclose(c @ J, _config_numpy(J), rtol=1e-9, atol=1e-12)
    proj = (J @ (c @ J)) / np.linalg.norm(J, axis=1)
    np.testing.assert_allclose(proj, proj[0], rtol=1e-9)  # equal unit projections
    assert proj[0] > 0
    w, grad = _step("config", J)
    np.testing.assert_allclose(grad.numpy(), c @ J, rtol=1e-12, atol=1e-12)


def test_config_at_stationary_points_and_dependent_gradients():
    assert not _step("config", STATIONARY["opposite"])[1].any()
    assert not _step("config", STATIONARY["triangle"])[1].any()  # pinv direction harms one
    _, grad = _step("config", STATIONARY["opposite_plus"])
    np.testing.assert_allclose(grad.numpy(), [0.0, 1.0], atol=1e-12)
    # equal gradients: equal weighting's sum; a duplicate counts twice in the length only
    np.testing.assert_allclose(_step("config", [[1.0, 2.0], [1.0, 2.0]])[1].numpy(),
                               [2.0, 4.0], rtol=1e-12)
    # five gradients in an open half-plane: the pseudo-inverse direction harms task 3
    ang = np.array([-0.7855813, 1.25108986, 1.41964997, -1.46218969, 1.39283403])
    J = np.stack([np.cos(ang), np.sin(ang)], 1)
    U = J / np.linalg.norm(J, axis=1, keepdims=True)
    assert (J @ (np.linalg.pinv(U) @ np.ones(5))).min() < -0.01
    c = config_weights(J @ J.T).numpy()
    gu = c @ J  # the projection of the pseudo-inverse direction on {x : J x >= 0}
    ref = _dual_cone_projection(J, np.linalg.pinv(U) @ np.ones(5))
    np.testing.assert_allclose(gu / np.linalg.norm(gu), ref / np.linalg.norm(ref), atol=1e-6)
    assert (J @ gu).min() >= -1e-12 and np.linalg.norm(gu) > 0.1
    np.testing.assert_allclose(np.linalg.norm(gu), (J @ gu).sum() / np.linalg.norm(gu),
                               rtol=1e-12)  # the length rule
    with pytest.raises(ValueError, match="nonzero gradients"):
        config_weights(np.diag([1.0, 0.0]))


# ----------------------------------------------------------------------------- FairGrad
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_solves_its_system(alpha):
    J = _rand(4, 6, 7, conflict=False)
    A = J @ J.T
    w = fairgrad_weights(A, alpha).numpy()
    ref = root(lambda v: A @ v - np.abs(v) ** (-1 / alpha), np.ones(4), tol=1e-14).x
    np.testing.assert_allclose(w, ref, rtol=1e-9)
    assert np.all(w > 0) and np.all(J @ (w @ J) > 0)  # every task improves
    _, grad = _step("fairgrad", J, alpha=alpha)
    np.testing.assert_allclose(grad.numpy(), w @ J, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_reaches_machine_precision_on_conflicting_gradients(alpha):
    # near the solution the objective's decrease falls below the rounding of its log terms:
    # the damped Newton must still take its full steps (it stalled at a residual of 1e-10)
    J = _rand(4, 6, 11)
    A = J @ J.T
    w = fairgrad_weights(A, alpha).numpy()
    target = w ** (-1 / alpha)
    assert np.max(np.abs(A @ w - target) / target) < 1e-13


def test_fairgrad_alpha_one_is_nash_and_zero_at_stationary_points():
    J = _rand(3, 5, 8, conflict=False)
    np.testing.assert_allclose(fairgrad_weights(J @ J.T, 1.0).numpy(),
                               nash_weights(J @ J.T).numpy(), rtol=1e-8)
    for key, Js in STATIONARY.items():
        out, grad = _step("fairgrad", Js)
        assert not out.any() and not grad.any(), key
    # rows of very different scales are not taken for a stationary point: w_t |g_t|^2 = 1
    w = fairgrad_weights(np.diag([1e12, 1.0]), 1.0).numpy()
    np.testing.assert_allclose(w, [1e-6, 1.0], rtol=1e-12)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        FairGrad(alpha=0.0)


# ----------------------------------------------------------------------------- SDMGrad
@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("T, seed", [(2, 0), (3, 1), (5, 2)])
def test_sdmgrad_equals_cvxpy(lam, T, seed):
    J = _rand(T, 6, seed)
    g0 = J.mean(0)
    w = cp.Variable(T)
    cp.Problem(cp.Minimize(cp.sum_squares(J.T @ w + lam * g0)),
               [w >= 0, cp.sum(w) == 1]).solve(solver="CLARABEL")
    ref = (J.T @ w.value + lam * g0) / (1 + lam)
    c = sdmgrad_weights(J @ J.T, lam).numpy()
    np.testing.assert_allclose(c @ J, ref, atol=1e-6)
    _, grad = _step("sdmgrad", J, lam=lam)
    np.testing.assert_allclose(grad.numpy(), T * (c @ J), rtol=1e-12, atol=1e-13)


def test_sdmgrad_at_stationary_points():
    assert not _step("sdmgrad", STATIONARY["opposite"])[1].any()
    _, grad = _step("sdmgrad", STATIONARY["opposite_plus"], lam=0.3)
    np.testing.assert_allclose(grad.numpy(), [0.0, 0.3 / 1.3], atol=1e-12)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        SDMGrad(lam=-1.0)


# ----------------------------------------------------------------------------- MoDo
def _simplex_projection(v):
    x = cp.Variable(len(v))
    cp.Problem(cp.Minimize(cp.sum_squares(x - v)), [x >= 0, cp.sum(x) == 1]).solve(
        solver="CLARABEL")
    return x.value


def test_modo_steps_equal_the_papers_update_and_round_trip():
    J = _rand(3, 5, 3)
    A = J @ J.T
    gamma, rho = 0.05, 0.1
    w = MoDo(gamma=gamma, rho=rho)
    w.setup(_tasks(3))
    lam = np.full(3, 1 / 3)
    for _ in range(3):
        lam = _simplex_projection(lam - gamma * (A @ lam + rho * lam))
        out, grad = _step(w, J)
        np.testing.assert_allclose(w.lambd.numpy(), lam, atol=1e-7)
        np.testing.assert_allclose(grad.numpy(), 3 * lam @ J, atol=1e-6)
        np.testing.assert_allclose(out.numpy(), 3 * w.lambd.numpy(), rtol=1e-12)
    np.testing.assert_allclose(modo_step(A, lam, gamma, rho).numpy(),
                               _simplex_projection(lam - gamma * (A @ lam + rho * lam)),
                               atol=1e-7)
    other = MoDo(gamma=gamma, rho=rho)
    other.setup(_tasks(3))
    other.load_state_dict(w.state_dict())
    np.testing.assert_array_equal(_step(other, J)[1].numpy(), _step(w, J)[1].numpy())
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        MoDo(gamma=0.0)


def test_modo_leaves_an_absent_task_alone():
    w = MoDo(gamma=0.1, rho=0.0)
    w.setup(_tasks(3))
    J = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # task 2: no label in the batch
    out, _ = _step(w, J)
    assert out[2] == 0 and w.lambd[2] == pytest.approx(1 / 3, abs=1e-15)
    assert float(w.lambd.sum()) == pytest.approx(1.0, abs=1e-14)


# ----------------------------------------------------------------------------- GradVac
def _gradvac_numpy(J, targets, beta):
    """The paper's loop, the other tasks in task order."""
    T = J.shape[0]
    Gp = J.copy()
    new = targets.copy()
    for i in range(T):
        for j in range(T):
            if j == i:
                continue
            gi, gj = Gp[i], J[j]
            rho = gi @ gj / (np.linalg.norm(gi) * np.linalg.norm(gj))
            phi = targets[i, j]
            if rho < phi:
                Gp[i] = gi + np.linalg.norm(gi) * (phi * math.sqrt(1 - rho ** 2) - rho * math.sqrt(
                    1 - phi ** 2)) / (np.linalg.norm(gj) * math.sqrt(1 - phi ** 2)) * gj
            new[i, j] = (1 - beta) * targets[i, j] + beta * rho
    return Gp, new


def test_gradvac_equals_the_papers_loop_over_steps():
    targets = np.zeros((3, 3))
    t = torch.zeros(3, 3, dtype=F64)
    for step in range(4):
        J = _rand(3, 5, 10 + step)
        ref, targets = _gradvac_numpy(J, targets, 0.5)
        G_vac, C, t = vaccinate(torch.as_tensor(J), t, beta=0.5)
        np.testing.assert_allclose(G_vac.numpy(), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(t.numpy(), targets, rtol=1e-12, atol=1e-14)
    # with positive targets the vaccine fires on aligned pairs too: the cosine reaches it
    J = np.array([[1.0, 0.0], [1.0, 1.0]])
    G_vac, _, _ = vaccinate(torch.as_tensor(J), torch.full((2, 2), 0.9, dtype=F64))
    g0 = G_vac[0].numpy()
    cos = float(g0 @ J[1]) / (float(np.linalg.norm(g0)) * math.sqrt(2))
    assert cos == pytest.approx(0.9, abs=1e-12)


def test_gradvac_training_path_state_round_trip_and_absent_task():
    w = GradVac(beta=0.3)
    w.setup(_tasks(3), seed=5)
    for step in range(2):
        J = _rand(3, 5, 20 + step)
        gen_state = w._generator.get_state()
        before = w.targets.clone()
        out, grad = _step(w, J)
        gen = torch.Generator()
        gen.set_state(gen_state)
        G_vac, C, after = vaccinate(torch.as_tensor(J), before, beta=0.3, order=gen)
        np.testing.assert_allclose(grad.numpy(), G_vac.sum(0).numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(out.numpy(), C.sum(0).numpy(), rtol=1e-12)
        np.testing.assert_array_equal(w.targets.numpy(), after.numpy())
    other = GradVac(beta=0.3)
    other.setup(_tasks(3), seed=99)
    other.load_state_dict(w.state_dict())  # targets and generator
    J = _rand(3, 5, 30)
    np.testing.assert_array_equal(_step(other, J)[1].numpy(), _step(w, J)[1].numpy())
    before = w.targets.clone()
    J[1] = 0.0  # task 1 has no label in the batch
    out, _ = _step(w, J)
    assert out[1] == 0
    assert torch.equal(w.targets[1], before[1]) and torch.equal(w.targets[:, 1], before[:, 1])


def test_gradvac_opposite_gradients_cancel():
    assert not _step("gradvac", STATIONARY["opposite"])[1].any()
    with pytest.raises(ValueError, match="beta must be in"):
        GradVac(beta=1.5)


# ----------------------------------------------------------------------------- GradDrop
def _graddrop_numpy(J, U, leak=0.0):
    P = 0.5 * (1 + J.sum(0) / np.where(np.abs(J).sum(0) > 0, np.abs(J).sum(0), 1.0))
    P = np.where(np.abs(J).sum(0) > 0, P, 0.5)
    M = (P > U) * (J > 0) + (P < U) * (J < 0)
    return ((leak + (1 - leak) * M) * J).sum(0)


@pytest.mark.parametrize("leak", [0.0, 0.25, 1.0])
def test_graddrop_equals_the_papers_mask(leak):
    J = _rand(3, 40, 4)
    U = torch.rand(40, generator=torch.Generator().manual_seed(7), dtype=F64).numpy()
    d = graddrop_direction(torch.as_tensor(J), torch.Generator().manual_seed(7), leak=leak)
    np.testing.assert_allclose(d.numpy(), _graddrop_numpy(J, U, leak), rtol=1e-12, atol=1e-15)
    if leak == 1.0:
        np.testing.assert_allclose(d.numpy(), J.sum(0), rtol=1e-12)
    # the training path draws the same U from the weighting's seeded generator
    w = GradDrop(leak=leak)
    w.setup(_tasks(3), seed=7)
    out, grad = _step(w, J)
    np.testing.assert_allclose(grad.numpy(), d.numpy(), rtol=1e-12, atol=1e-15)
    P = 0.5 * (1 + J.sum(0) / np.abs(J).sum(0))
    M = leak + (1 - leak) * ((P > U) * (J > 0) + (P < U) * (J < 0))
    np.testing.assert_allclose(out.numpy(), ((M * J) * J).sum(1) / (J * J).sum(1), rtol=1e-12)
    assert bool(((out >= -1e-12) & (out <= 1 + 1e-12)).all())


def test_graddrop_agreeing_gradients_and_a_zero_gradient():
    J = np.array([[1.0, 2.0, -1.0], [3.0, 0.5, -2.0], [0.0, 0.0, 0.0]])
    out, grad = _step("graddrop", J)
    np.testing.assert_allclose(grad.numpy(), J.sum(0), rtol=1e-15)  # nothing to drop
    np.testing.assert_allclose(out.numpy(), [1.0, 1.0, 0.0], rtol=1e-15)
    with pytest.raises(ValueError, match="leak must be in"):
        GradDrop(leak=2.0)


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", NEW)
def test_direction_does_not_depend_on_task_order(name):
    J = _rand(4, 6, 11)
    perm = [2, 0, 3, 1]
    if name == "gradvac":  # random by design: the order of its steps comes from the seed
        np.testing.assert_array_equal(_step(name, J, seed=3)[1].numpy(),
                                      _step(name, J, seed=3)[1].numpy())
        return
    out_a, a = _step(name, J, seed=3)
    out_b, b = _step(name, J[perm], seed=3)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out_a.numpy()[perm], out_b.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", ["dualproj", "config"])
@pytest.mark.parametrize("key", list(STATIONARY) + ["dup", "collinear", "scaled", "halfplane"])
def test_non_conflicting_where_promised(name, key):
    ang = np.array([-0.7855813, 1.25108986, 1.41964997, -1.46218969, 1.39283403])
    J = {"dup": [[1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [-2.0, 0.3, 1.0]],
         "halfplane": np.stack([np.cos(ang), np.sin(ang)], 1) * np.arange(1, 6)[:, None],
         "collinear": [[1.0, 0.0], [1.0, 1e-9], [-1.0, 0.5]],
         "scaled": (_rand(3, 4, 5) * np.array([[1e6], [1.0], [1e-3]])).tolist()}.get(
        key, STATIONARY.get(key))
    J = np.array(J)
    _, grad = _step(name, J)
    assert np.all(J @ grad.numpy() >= -1e-9 * np.abs(J).max() * np.abs(grad.numpy()).max())


@pytest.mark.parametrize("name", NEW)
def test_loss_scaling_leaves_the_decision_alone(name):
    J = _rand(3, 5, 12)
    out1, g1 = _step(name, J, seed=1)
    out2, g2 = _step(name, J, seed=1, scale=lambda x: 8 * x)
    np.testing.assert_allclose(out1.numpy(), out2.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g2.numpy(), 8 * g1.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", NEW)
def test_returned_weights_are_the_callers_own(name):
    w = make_weighting(name)
    w.setup(_tasks(2), seed=0)
    out, _ = _step(w, [[1.0, 0.0], [-1.0, 1.0]])
    out += 100.0
    for buf in w.buffers():
        assert not bool((buf >= 99).any())


def _fit_problem(n=120, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, 3))
    Y = np.tanh(X @ W)
    Y[:, 1] = -Y[:, 0] + 0.1 * Y[:, 1]  # a conflicting task
    Y[rng.permutation(n)[5:], 2] = np.nan  # task t2: labelled on 5 rows, absent from most batches
    return X, {f"t{j}": Y[:, j] for j in range(3)}


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("arch", ["hard", "mmoe"])
def test_short_fit_by_name_with_missing_labels(name, arch):
    X, targets = _fit_problem()
    names = list(targets)
    torch.manual_seed(0)
    net = (HardSharing(X.shape[1], names, (8,)) if arch == "hard"
           else MMoE(X.shape[1], names, 2, expert_hidden=(8,), tower_hidden=(4,)))
    tr = Trainer(net, weighting=name, max_epochs=3, batch_size=20, seed=0, lr=1e-2)
    tr.fit((X, targets))
    h = tr.history
    cols = [c for c in h.columns if c.startswith(("loss", "weight/"))]
    assert np.all(np.isfinite(h[cols].to_numpy()))
    assert h["loss/t0"].iloc[-1] < h["loss/t0"].iloc[0] * 1.05


def test_registered_by_name_with_their_options():
    expect = {"gradvac": (GradVac, {"beta": 0.2}), "graddrop": (GradDrop, {"leak": 0.1}),
              "dualproj": (DualProj, {}), "config": (ConFIG, {}),
              "fairgrad": (FairGrad, {"alpha": 2.0}), "sdmgrad": (SDMGrad, {"lam": 0.5}),
              "modo": (MoDo, {"gamma": 0.01, "rho": 0.0})}
    for name, (cls, kwargs) in expect.items():
        w = make_weighting(name.upper(), **kwargs)
        assert type(w) is cls and w.needs_task_grads
        for k, v in kwargs.items():
            assert getattr(w, k) == v


@pytest.mark.parametrize("name", ["dualproj", "config", "fairgrad", "sdmgrad", "modo"])
def test_representation_route_fits_hard_sharing_and_is_refused_under_mmoe(name):
    X, targets = _fit_problem(n=60)
    names = list(targets)
    torch.manual_seed(0)
    tr = Trainer(HardSharing(X.shape[1], names, (8,)),
                 weighting=make_weighting(name, on_representation=True), max_epochs=2,
                 batch_size=20, seed=0)
    tr.fit((X, targets))
    cols = [c for c in tr.history.columns if c.startswith(("loss", "weight/"))]
    assert np.all(np.isfinite(tr.history[cols].to_numpy()))
    assert "on_representation=True" in repr(tr.weighting)
    tr = Trainer(MMoE(X.shape[1], names, 2, expert_hidden=(8,), tower_hidden=(4,)),
                 weighting=make_weighting(name, on_representation=True), max_epochs=1, seed=0)
    with pytest.raises(ValueError, match=r"on_representation=True.*MMoE"):
        tr.fit((X, targets))


@pytest.mark.parametrize("name", NEW)
def test_reduce_averages_the_gradient_matrix_before_deciding(name):
    """Data parallelism: the decision is taken on reduce(G), the same on every rank."""
    J = _rand(3, 5, 13)
    seen = []

    def reduce(x):
        seen.append(tuple(x.shape))
        return 0.5 * x  # stands for the mean over ranks of per-rank matrices 0.5 J

    w = make_weighting(name)
    w.setup(_tasks(3), seed=2)
    theta = torch.nn.Parameter(torch.ones(5, dtype=F64))
    w.backward(torch.as_tensor(J) @ theta, [theta], [], reduce=reduce)
    assert (3, 5) in seen
    _, ref = _step(name, 0.5 * J, seed=2)  # one process seeing the averaged gradients
    np.testing.assert_allclose(theta.grad.numpy(), ref.numpy(), rtol=1e-12, atol=1e-15)
