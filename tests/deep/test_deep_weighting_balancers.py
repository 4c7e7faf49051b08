"""DB-MTL, STCH, GLS, MoCo, ExcessMTL and RGW: their first steps against the papers' formulas
computed by hand in NumPy, their functional forms, degenerate gradients, state round trips,
mixed-precision scaling, option checks, and short Trainer fits with missing labels."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    DBMTL,
    GLS,
    RGW,
    STCH,
    ExcessMTL,
    HardSharing,
    MMoE,
    MoCo,
    TaskSpec,
    Trainer,
    make_weighting,
)
from regmtl.deep.weighting import (  # noqa: E402
    db_mtl_direction,
    excess_risks,
    gls_weights,
    moco_step,
    project_simplex,
    rgw_direction,
    stch_weights,
)

F64 = torch.float64
RTOL = 1e-10
# three tasks on a shared theta in R^3: L_t = 0.5 |A_t theta - y_t|^2 + c_t
A = np.array([[[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]],
              [[0.0, 0.0, 2.0], [1.0, -1.0, 0.0]],
              [[-1.0, 0.3, 0.5], [0.2, 0.0, 1.0]]])
Y = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
C = np.array([0.1, 0.2, 0.3])
THETA0 = np.array([0.3, -0.2, 0.1])
LR = 0.1


def _losses_np(th):
    r = np.einsum("tij,j->ti", A, th) - Y
    return 0.5 * (r ** 2).sum(1) + C


def _grads_np(th):
    r = np.einsum("tij,j->ti", A, th) - Y
    return np.einsum("tij,ti->tj", A, r)


def _losses(theta):
    At, Yt, Ct = (torch.as_tensor(x, dtype=F64) for x in (A, Y, C))
    r = torch.einsum("tij,j->ti", At, theta) - Yt
    return 0.5 * (r ** 2).sum(1) + Ct


def _tasks(T=3):
    return [TaskSpec(f"t{i}") for i in range(T)]


def _run(weighting, steps, theta0=THETA0):
    """Steps of SGD through the training path; (weights, shared gradient) of each step."""
    theta = torch.nn.Parameter(torch.as_tensor(theta0, dtype=F64).clone())
    out = []
    for _ in range(steps):
        theta.grad = None
        w = weighting.backward(_losses(theta), [theta], [])
        out.append((w.numpy().copy(), theta.grad.numpy().copy()))
        with torch.no_grad():
            theta -= LR * theta.grad
    return out


def _close(a, b, tol=RTOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))


# ----------------------------------------------------------------------------- by hand
def test_gls_first_steps_by_hand():
    weighting = GLS()
    weighting.setup(_tasks())
    th = THETA0.copy()
    for w, grad in _run(weighting, 3):
        L, G = _losses_np(th), _grads_np(th)
        gm = np.prod(L) ** (1 / 3)
        w_ref = gm / L  # T times the gradient of the geometric mean
        _close(w, w_ref)
        _close(grad, w_ref @ G)
        th = th - LR * grad
    _close(gls_weights([1.0, 4.0, 2.0]), 2.0 / np.array([1.0, 4.0, 2.0]))


def test_stch_warmup_nadir_and_smooth_max_by_hand():
    weighting = STCH(mu=0.5, warmup_epochs=1)
    weighting.setup(_tasks())
    (w, grad), = _run(weighting, 1)
    L, G = _losses_np(THETA0), _grads_np(THETA0)
    _close(w, 1 / L)
    _close(grad, (1 / L) @ G)
    nadir = np.array([0.5, 1.5, 2.5])
    weighting.epoch_end(torch.as_tensor(nadir))
    (w, grad), = _run(weighting, 1)
    x = np.log(L / nadir) / 0.5
    p = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    _close(w, 3 * p / L)
    _close(grad, (3 * p / L) @ G)
    _close(stch_weights(L, nadir, 0.5), 3 * p / L)


def test_stch_nadir_round_trips_and_missing_epoch_losses():
    weighting = STCH(warmup_epochs=2)
    weighting.setup(_tasks())
    weighting.epoch_end(torch.tensor([9.0, 9.0, 9.0]))
    assert weighting.warming_up
    weighting.epoch_end(torch.tensor([2.0, float("nan"), 0.5]))  # task 1: no label that epoch
    assert not weighting.warming_up
    _close(weighting.nadir.numpy(), [2.0, 1.0, 0.5])
    other = STCH(warmup_epochs=2)
    other.setup(_tasks())
    other.load_state_dict(weighting.state_dict())
    _close(other.nadir.numpy(), [2.0, 1.0, 0.5])
    assert not other.warming_up
    a, b = _run(weighting, 1)[0], _run(other, 1)[0]
    _close(a[1], b[1], 0)


def test_rgw_is_the_seeded_random_weights_on_the_gradients():
    weighting = RGW()
    weighting.setup(_tasks(), seed=7)
    gen = torch.Generator().manual_seed(7)
    th = THETA0.copy()
    for w, grad in _run(weighting, 3):
        z = torch.randn(3, generator=gen, dtype=F64).numpy()
        w_ref = 3 * np.exp(z) / np.exp(z).sum()
        _close(w, w_ref)
        _close(grad, w_ref @ _grads_np(th))
        th = th - LR * grad
    G = torch.as_tensor(_grads_np(THETA0))
    d, w = rgw_direction(G, torch.Generator().manual_seed(7))
    _close(d.numpy(), _run(_setup(RGW(), seed=7), 1)[0][1])


def _setup(weighting, T=3, seed=0):
    weighting.setup(_tasks(T), seed=seed)
    return weighting


def _db_mtl_by_hand(steps, beta, sigma, eps=1e-8):
    th, avg, out = THETA0.copy(), np.zeros((3, 3)), []
    for k in range(1, steps + 1):
        L, G = _losses_np(th), _grads_np(th)
        h = G / (L + eps)[:, None]
        bk = beta / k ** sigma
        avg = bk * avg + (1 - bk) * h
        n = np.linalg.norm(avg, axis=1)
        alpha = n.max() / n
        d = alpha @ avg
        out.append((alpha, d))
        th = th - LR * d
    return out


@pytest.mark.parametrize("beta,sigma", [(0.9, 0.0), (0.5, 0.5)])
def test_db_mtl_first_steps_by_hand(beta, sigma):
    got = _run(_setup(DBMTL(beta=beta, beta_sigma=sigma)), 3)
    for (w, grad), (alpha, d) in zip(got, _db_mtl_by_hand(3, beta, sigma), strict=True):
        _close(w, alpha)
        _close(grad, d)
    d, alpha = db_mtl_direction(torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]]))
    _close(alpha.numpy(), [1.0, 0.0, 5.0])
    _close(d.numpy(), [8.0, 4.0])


def _simplex_by_bisection(v):
    lo, hi = v.min() - 1.0, v.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.maximum(v - mid, 0).sum() > 1 else (lo, mid)
    return np.maximum(v - 0.5 * (lo + hi), 0)


def test_project_simplex_against_bisection():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.standard_normal(rng.integers(1, 8)) * 3
        _close(project_simplex(v), _simplex_by_bisection(v), 1e-9)


def _moco_by_hand(steps, beta=0.5, bs=0.5, gamma=0.1, gs=0.5, rho=0.0):
    th, y, lam, out = THETA0.copy(), np.zeros((3, 3)), np.full(3, 1 / 3), []
    for k in range(1, steps + 1):
        G = _grads_np(th)
        y = y - beta / k ** bs * (y - G)
        lam = _simplex_by_bisection(lam - gamma / k ** gs * (y @ y.T + rho * np.eye(3)) @ lam)
        d = 3 * lam @ y
        out.append((3 * lam, d))
        th = th - LR * d
    return out


def test_moco_first_steps_by_hand():
    got = _run(_setup(MoCo(gamma=0.3, rho=0.1)), 3)
    for (w, grad), (w_ref, d) in zip(got, _moco_by_hand(3, gamma=0.3, rho=0.1), strict=True):
        _close(w, w_ref, 1e-9)
        _close(grad, d, 1e-9)
    G = torch.as_tensor(_grads_np(THETA0))
    Y1, lam, d = moco_step(torch.zeros_like(G), np.full(3, 1 / 3), G, beta=0.5, gamma=0.3,
                           rho=0.1)
    _close(3 * d.numpy(), _moco_by_hand(1, gamma=0.3, rho=0.1)[0][1], 1e-9)


def _excess_by_hand(steps, eta, eps=1e-7):
    th, S, w, E0, out = THETA0.copy(), np.zeros((3, 3)), np.ones(3), None, []
    for _ in range(steps):
        G = _grads_np(th)
        S = S + G ** 2
        E = (G ** 2 / np.sqrt(S + eps)).sum(1)
        if E0 is None:
            E0 = E
        else:
            w = w * np.exp(eta * E / E0)
            w = 3 * w / w.sum()
        d = w @ G
        out.append((w.copy(), d))
        th = th - LR * d
    return out


def test_excess_mtl_first_steps_by_hand():
    got = _run(_setup(ExcessMTL(step_size=0.5)), 4)
    for (w, grad), (w_ref, d) in zip(got, _excess_by_hand(4, 0.5), strict=True):
        _close(w, w_ref)
        _close(grad, d)
    G = torch.as_tensor(_grads_np(THETA0))
    _close(excess_risks(G, G ** 2, 0.0 + 1e-300).numpy(), np.abs(_grads_np(THETA0)).sum(1))


# ----------------------------------------------------------------------------- state
@pytest.mark.parametrize("make", [lambda: DBMTL(), lambda: MoCo(), lambda: ExcessMTL(0.3),
                                  lambda: STCH(warmup_epochs=1)])
def test_state_dict_round_trip(make):
    a = _setup(make())
    _run(a, 2)
    if isinstance(a, STCH):
        a.epoch_end(torch.tensor([1.0, 2.0, 3.0]))
    b = _setup(make())
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        if torch.is_tensor(v):
            assert torch.equal(v, b.state_dict()[k]), k
    th = np.array([0.1, 0.2, -0.3])
    (wa, ga), = _run(a, 1, th)
    (wb, gb), = _run(b, 1, th)
    assert np.array_equal(wa, wb) and np.array_equal(ga, gb)


# ----------------------------------------------------------------------------- degenerate
def _step_on(weighting, J, ell, scale=None):
    """One step on L_t = g_t . theta + ell_t at theta = 0 (rows of J the gradients)."""
    J = np.asarray(J, float)
    theta = torch.nn.Parameter(torch.zeros(J.shape[1], dtype=F64))
    losses = torch.as_tensor(J) @ theta + torch.as_tensor(np.asarray(ell, float))
    w = weighting.backward(losses, [theta], [], scale=scale)
    return w.numpy(), theta.grad.numpy()


GRADIENT_METHODS = {"db_mtl": {}, "moco": {}, "excess_mtl": {}}


@pytest.mark.parametrize("key", sorted(GRADIENT_METHODS))
def test_a_zero_gradient_takes_no_part_and_keeps_its_state(key):
    w0 = _setup(make_weighting(key), T=3)
    J = np.array([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.3]])
    _step_on(w0, J, [1.0, 2.0, 3.0])
    state = {k: v.clone() for k, v in w0.state_dict().items() if torch.is_tensor(v)}
    J2 = J.copy()
    J2[1] = 0.0  # task 1: no label in this batch
    w, d = _step_on(w0, J2, [1.0, 0.0, 3.0])
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(d))
    if key != "excess_mtl":
        assert w[1] == 0.0
    for name in ("grad_average", "tracked", "sq_sum"):
        if name in state:
            assert torch.equal(w0.state_dict()[name][1], state[name][1])
    all_zero = _setup(make_weighting(key), T=3)
    w, d = _step_on(all_zero, np.zeros((3, 2)), [1.0, 0.0, 2.0])
    assert np.all(d == 0.0)


@pytest.mark.parametrize("key", ["db_mtl", "moco", "excess_mtl", "gls", "stch"])
def test_direction_does_not_depend_on_the_task_order(key):
    rng = np.random.default_rng(3)
    J, ell = rng.standard_normal((4, 6)), 0.5 + rng.random(4)
    perm = np.array([2, 0, 3, 1])
    a, b = _setup(make_weighting(key), T=4), _setup(make_weighting(key), T=4)
    for _ in range(3):
        wa, da = _step_on(a, J, ell)
        wb, db = _step_on(b, J[perm], ell[perm])
        _close(db, da, 1e-12)
        _close(wb, wa[perm], 1e-12)
        J = J + 0.1 * rng.standard_normal(J.shape)


@pytest.mark.parametrize("key", ["db_mtl", "moco", "excess_mtl", "gls", "stch", "rgw"])
def test_loss_scaling_scales_the_update_only(key):
    """Mixed precision: scale(L) = 1024 L gives 1024 times the update, the same weights."""
    rng = np.random.default_rng(4)
    J, ell = rng.standard_normal((3, 5)), 0.5 + rng.random(3)
    a, b = _setup(make_weighting(key)), _setup(make_weighting(key))
    for _ in range(2):
        wa, da = _step_on(a, J, ell)
        wb, db = _step_on(b, J, ell, scale=lambda x: 1024.0 * x)
        _close(wb, wa, 1e-12)
        _close(db, 1024.0 * da, 1e-12)


@pytest.mark.parametrize("key", ["db_mtl", "moco", "excess_mtl", "gls", "stch", "rgw"])
def test_non_finite_gradients_raise_or_pass_to_the_scaler(key):
    J = np.array([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="t0"):
        _step_on(_setup(make_weighting(key), T=2), J, [1.0, 1.0])
    w, d = _step_on(_setup(make_weighting(key), T=2), J, [1.0, 1.0], scale=lambda x: 2 * x)
    assert not np.all(np.isfinite(d))  # the scaler sees the overflow and skips the step
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize("key", ["gls", "stch", "db_mtl"])
def test_negative_losses_are_refused_naming_the_task(key):
    with pytest.raises(ValueError, match="'t1'.*negative"):
        _step_on(_setup(make_weighting(key), T=2), np.eye(2), [1.0, -0.5])


def test_zero_losses_take_no_part_in_the_loss_based_methods():
    for key in ("gls", "stch"):
        w, d = _step_on(_setup(make_weighting(key), T=3), np.eye(3), [2.0, 0.0, 8.0])
        assert w[1] == 0.0 and np.all(np.isfinite(w))
    _close(gls_weights([2.0, 0.0, 8.0]), [2.0, 0.0, 0.5])


def test_opposite_gradients_cancel_for_db_mtl_at_the_first_step():
    w, d = _step_on(_setup(DBMTL(), T=2), [[1.0, 0.0], [-3.0, 0.0]], [1.0, 3.0])
    _close(d, [0.0, 0.0], 1e-12)


@pytest.mark.parametrize("bad", [
    (DBMTL, {"beta": 1.0}, "beta"), (DBMTL, {"eps": 0.0}, "eps"),
    (MoCo, {"beta": 0.0}, "beta"), (MoCo, {"gamma": -1.0}, "gamma"),
    (STCH, {"mu": 0.0}, "mu"), (STCH, {"warmup_epochs": 0}, "warmup_epochs"),
    (ExcessMTL, {"step_size": float("nan")}, "step_size")])
def test_bad_options_are_refused_naming_them(bad):
    cls, opts, name = bad
    with pytest.raises(ValueError, match=name):
        cls(**opts)


# ----------------------------------------------------------------------------- trainer
@pytest.mark.parametrize("key", ["db_mtl", "stch", "gls", "moco", "excess_mtl", "rgw"])
@pytest.mark.parametrize("arch", ["hard", "mmoe"])
def test_trainer_fits_by_name_with_missing_labels(key, arch):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 4)).astype(np.float32)
    targets = {"a": X[:, 0] + 1.0, "b": X[:, 1] - X[:, 2]}
    targets["b"][:40] = np.nan  # most batches hold few or no labels of task b
    net = (HardSharing(4, ["a", "b"], hidden=(6,)) if arch == "hard"
           else MMoE(4, ["a", "b"], n_experts=2, expert_hidden=(6,), tower_hidden=(4,)))
    options = {"warmup_epochs": 1} if key == "stch" else {}
    trainer = Trainer(net, max_epochs=3, batch_size=16, weighting=make_weighting(key, **options),
                      device="cpu", seed=0)
    trainer.fit((X, targets))
    h = trainer.history
    assert len(h) == 3 and np.isfinite(h.select_dtypes("number").to_numpy()).all()
    assert h["loss/a"].iloc[-1] < h["loss/a"].iloc[0]  # the task with every label learns


@pytest.mark.parametrize("key", ["db_mtl", "moco", "excess_mtl", "gls", "stch", "rgw"])
def test_data_parallel_reduce_decides_on_the_averages(key):
    """Under DDP ``reduce`` averages the gradients and loss values across ranks: a rank's
    step equals one process's step on the averaged gradients and losses."""
    rng = np.random.default_rng(5)
    J1, J2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    l1, l2 = 0.5 + rng.random(3), 0.5 + rng.random(3)
    J, ell = (J1 + J2) / 2, (l1 + l2) / 2

    def reduce(x):  # the other rank's tensor averaged in (by shape: G or the loss values)
        other = torch.as_tensor(J2 if x.ndim == 2 else l2, dtype=x.dtype)
        return (x + other) / 2

    rank, single = _setup(make_weighting(key), seed=3), _setup(make_weighting(key), seed=3)
    for _ in range(2):
        theta = torch.nn.Parameter(torch.zeros(4, dtype=F64))
        w = rank.backward(torch.as_tensor(J1) @ theta + torch.as_tensor(l1), [theta], [],
                          reduce=reduce)
        w_ref, d_ref = _step_on(single, J, ell)
        _close(w.numpy(), w_ref, 1e-12)
        if key in ("gls", "stch"):  # loss weighting: this rank's gradient, the global weights
            _close(theta.grad.numpy(), w_ref @ J1, 1e-12)
        else:
            _close(theta.grad.numpy(), d_ref, 1e-12)


@pytest.mark.parametrize("weighting", [DBMTL(beta=0.5, beta_sigma=0.2, eps=1e-6),
                                       STCH(mu=0.3, warmup_epochs=2), GLS(),
                                       MoCo(beta=0.4, gamma=0.2, rho=0.1), ExcessMTL(0.2), RGW()],
                         ids=repr)
def test_saved_estimators_rebuild_the_weighting_from_its_options(weighting):
    from regmtl.deep.saving import param_from_json, param_to_json

    saved = param_to_json("weighting", weighting)
    rebuilt = param_from_json("weighting", saved)
    assert type(rebuilt) is type(weighting) and repr(rebuilt) == repr(weighting)
