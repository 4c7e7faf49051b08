"""Lazy head updates: row-sparse gradients from the per-row gather, the lazy Adam step
checked against a NumPy reference and torch's SparseAdam, Adam's step exactly when every
task is in every batch, and School learnt as with dense Adam."""

import copy

import numpy as np
import pytest
import torch

from regmtl.datasets import apply_split, load_school
from regmtl.deep import (
    CGC,
    Batches,
    HardSharing,
    L2Penalty,
    MMoE,
    MultiTaskDataset,
    TaskSpec,
    Trainer,
    set_seed,
)
from regmtl.deep.heads import gather_rows
from regmtl.deep.optim import LazyAdam, LazyAdamW, clip_grad_norm
from regmtl.deep.weighting import WEIGHTINGS, make_weighting
from regmtl.metrics import explained_variance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _lazy_reference(w0, batches, lr, b1, b2, eps, wd, decoupled):
    """Lazy Adam in NumPy (float64): ``batches`` is a list of (rows, per-row gradients)."""
    w, m, v = w0.astype(np.float64).copy(), np.zeros_like(w0, float), np.zeros_like(w0, float)
    for s, (rows, g_rows) in enumerate(batches, start=1):
        g = np.zeros_like(w)
        np.add.at(g, rows, g_rows)
        at = np.unique(rows)
        gr = g[at]
        if wd and decoupled:
            w[at] *= 1 - lr * wd
        elif wd:
            gr = gr + wd * w[at]
        m[at] = b1 * m[at] + (1 - b1) * gr
        v[at] = b2 * v[at] + (1 - b2) * gr ** 2
        w[at] -= lr / (1 - b1 ** s) * m[at] / (np.sqrt(v[at] / (1 - b2 ** s)) + eps)
    return w, m, v


@pytest.mark.parametrize("cls, wd", [(LazyAdam, 0.0), (LazyAdam, 0.1), (LazyAdamW, 0.1)])
def test_lazy_adam_against_a_numpy_reference(cls, wd):
    rng = np.random.default_rng(0)
    T, d = 12, 3
    w0 = rng.standard_normal((T, d)).astype(np.float32)
    W = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = cls([W], lr=0.05, weight_decay=wd)
    batches = []
    for _ in range(6):  # repeated rows, and rows 10 and 11 never drawn
        rows = rng.integers(0, 10, 7)
        g = rng.standard_normal((7, d)).astype(np.float32)
        batches.append((rows, g))
        opt.zero_grad(set_to_none=True)
        (out,) = gather_rows(torch.from_numpy(rows), W, sparse=True)
        assert out.shape == (7, d)
        (out * torch.from_numpy(g)).sum().backward()
        assert W.grad.is_sparse
        opt.step()
    w, m, v = _lazy_reference(w0, batches, 0.05, 0.9, 0.999, 1e-8, wd, cls is LazyAdamW)
    np.testing.assert_allclose(W.detach().numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.state[W]["exp_avg"].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(opt.state[W]["exp_avg_sq"].numpy(), v, rtol=1e-5, atol=1e-9)
    # the rows no batch reached: exactly their initial weights, no moments
    np.testing.assert_array_equal(W.detach().numpy()[10:], w0[10:])
    assert not opt.state[W]["exp_avg"][10:].any()


def test_lazy_adam_agrees_with_torch_sparse_adam():
    """torch.optim.SparseAdam is the same lazy step (up to where eps sits: eps sqrt(1 -
    beta2^s) here, eps there, which a gradient of order 1 cannot see)."""
    torch.manual_seed(0)
    E = torch.nn.Embedding(20, 4, sparse=True)
    W = torch.nn.Parameter(E.weight.detach().clone())
    ours, ref = LazyAdam([W], lr=0.01), torch.optim.SparseAdam(E.parameters(), lr=0.01)
    for _ in range(8):
        idx = torch.randint(0, 15, (9,))
        target = torch.randn(9, 4)
        for opt, out in ((ours, gather_rows(idx, W, sparse=True)[0]), (ref, E(idx))):
            opt.zero_grad(set_to_none=True)
            ((out - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(W.detach(), E.weight.detach(), rtol=1e-5, atol=1e-6)


def test_the_row_sparse_gradient_is_the_dense_one():
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(6, 3, 2))
    b = torch.nn.Parameter(torch.randn(6, 2))
    idx = torch.tensor([4, 1, 4, 0, 4])
    z = torch.randn(5, 3)
    for sparse in (True, False):
        w_, b_ = gather_rows(idx, W, b, sparse=sparse)
        (torch.einsum("bi,bio->bo", z, w_) + b_).square().sum().backward()
        if sparse:
            gw, gb = W.grad.to_dense(), b.grad.to_dense()
            W.grad = b.grad = None
    torch.testing.assert_close(gw, W.grad)
    torch.testing.assert_close(gb, b.grad)
    with torch.no_grad():  # no graph: a plain gather
        assert gather_rows(idx, W, sparse=True)[0].grad_fn is None


def _data(n=60, T=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    task = np.tile(np.arange(T), n // T)
    y = X[:, 0] * (task + 1) + 0.3 * rng.standard_normal(n)
    return X, task, y, [TaskSpec(f"t{k}") for k in range(T)]


def _trained(make, lazy, data, **kw):
    set_seed(0)
    net = make()
    Trainer(net, batch_size=len(data[1]), max_epochs=15, grad_balance=0, lazy_heads=lazy,
            **kw).fit((data[0], (data[1], data[2])))
    return net


@pytest.mark.parametrize("arch", ["hard", "hard_mlp_heads", "mmoe", "cgc"])
@pytest.mark.parametrize("kw", [{}, {"optimizer": "adamw", "weight_decay": 0.1},
                                {"weight_decay": 0.05, "grad_clip": 0.5},
                                {"penalty": L2Penalty(1e-2, params="task")}])
def test_every_task_in_every_batch_is_adams_step(arch, kw):
    """Full batches hold every task: the lazy step is Adam's (measured: 3e-7 at most)."""
    data = _data()
    names = data[3]
    make = {"hard": lambda: HardSharing(4, names, (8,)),
            "hard_mlp_heads": lambda: HardSharing(4, names, (8,), head_hidden=(5,)),
            "mmoe": lambda: MMoE(4, names, n_experts=2, expert_hidden=(6,)),
            "cgc": lambda: CGC(4, names, expert_hidden=(6,))}[arch]
    dense, lazy = (_trained(make, flag, data, **kw) for flag in (False, True))
    for (name, a), b in zip(dense.state_dict().items(), lazy.state_dict().values(),
                            strict=True):
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    heads = [m for m in lazy.modules() if hasattr(m, "sparse_grad")]
    assert heads and not any(m.sparse_grad for m in heads)  # the fit's setting is undone


def test_absent_tasks_keep_their_heads():
    """Batches of one task each: the other tasks' heads do not move on that step (dense Adam
    moves them along their momentum)."""
    X, task, y, specs = _data(n=90)
    order = np.argsort(task, kind="stable")  # 30 rows of t0, then t1, then t2
    ds = MultiTaskDataset(X[order], y[order], specs, task=task[order])
    moved = {}
    for lazy, cls in ((False, torch.optim.Adam), (True, LazyAdam)):
        set_seed(0)
        net = HardSharing(4, specs, (8,))
        W, seen = net.heads.blocks[0].weight0, []

        def make(ps, cls=cls, W=W, seen=seen):
            opt = cls(ps, lr=1e-2)
            opt.register_step_post_hook(lambda *_: seen.append(W.detach().clone()))
            return opt

        Trainer(net, max_epochs=1, grad_balance=0, lazy_heads=lazy,
                optimizer=make).fit(Batches(ds, 30, shuffle=False))
        assert len(seen) == 3  # the step hooks run once a step
        moved[lazy] = [(b - a).abs().amax(dim=(1, 2)) for a, b in zip(seen[:-1], seen[1:],
                                                                          strict=True)]
    # step 2 holds t1 alone, step 3 t2 alone
    assert moved[True][0].tolist()[0] == 0 and moved[True][0].tolist()[2] == 0
    assert moved[True][1].tolist()[:2] == [0, 0]
    assert moved[True][0][1] > 0 and moved[True][1][2] > 0
    assert moved[False][0][0] > 0  # dense Adam: t0's head drifts on t1's step


def test_clip_grad_norm_with_sparse_gradients():
    torch.manual_seed(0)
    W = torch.nn.Parameter(torch.randn(8, 3))
    v = torch.nn.Parameter(torch.randn(5))
    idx = torch.tensor([1, 1, 6])
    gather_rows(idx, W, sparse=True)[0].sum().mul(3).backward()
    (v ** 2).sum().backward()
    dense = [W.grad.to_dense().clone(), v.grad.clone()]
    norm = clip_grad_norm([W, v], 1.0)
    ref = torch.cat([g.flatten() for g in dense]).norm()
    torch.testing.assert_close(norm, ref)
    torch.testing.assert_close(W.grad.to_dense(), dense[0] / (ref + 1e-6))
    torch.testing.assert_close(v.grad, dense[1] / (ref + 1e-6))
    total = torch.cat([W.grad.to_dense().flatten(), v.grad]).norm()
    assert abs(float(total) - 1.0) < 1e-5


def test_options_are_checked():
    net = HardSharing(4, ["a", "b"], (8,))
    with pytest.raises(ValueError, match="lazy_heads=True .* optimizer='adam' or 'adamw'"):
        Trainer(net, lazy_heads=True, optimizer="sgd")
    with pytest.raises(ValueError, match="lazy_heads must be True or False"):
        Trainer(net, lazy_heads="yes")
    with pytest.raises(ValueError, match="does not take amsgrad=True"):
        LazyAdam(net.parameters(), amsgrad=True)
    # a callable that returns an optimizer taking row-sparse gradients is the user's choice:
    # LazyAdam given by hand trains as the one lazy_heads builds
    X, task, y, specs = _data()
    nets = []
    for opt in (lambda ps: LazyAdam(ps, lr=1e-2), "adam"):
        set_seed(0)
        nets.append(HardSharing(4, specs, (8,)))
        Trainer(nets[-1], lazy_heads=True, max_epochs=2, grad_balance=0, batch_size=8,
                lr=1e-2, optimizer=opt, device="cpu").fit((X, (task, y)))
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    set_seed(0)
    start = HardSharing(4, specs, (8,)).heads.blocks[0].weight0
    assert (nets[0].heads.blocks[0].weight0 - start).abs().max() > 1e-3  # it trained


class _Failing(LazyAdam):
    def step(self, closure=None):
        raise RuntimeError("a step failed")


def test_the_setting_is_undone_when_a_fit_fails():
    X, task, y, specs = _data()
    net = HardSharing(4, specs, (8,))
    tr = Trainer(net, lazy_heads=True, max_epochs=1, grad_balance=0, optimizer=_Failing)
    with pytest.raises(RuntimeError, match="a step failed"):
        tr.fit((X, (task, y)))
    assert net.heads.sparse_grad is False


def test_school_is_learnt_as_with_dense_adam():
    """School, split 0, 139 schools per row (a batch of 256 holds about 90 of them): the
    lazy heads reach the dense heads' explained variance (measured: 0.3646 lazy, 0.3650
    dense after 8 epochs)."""
    d = load_school()
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, d.splits[0])
    X = np.vstack(Xtr).astype(np.float32)
    mu, sd = X.mean(0), np.where(X.std(0) > 0, X.std(0), 1)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ytr)])
    y = np.concatenate(ytr)
    specs = [TaskSpec(f"s{k}") for k in range(len(ytr))]
    Xt = (np.vstack(Xte).astype(np.float32) - mu) / sd
    tt = np.concatenate([np.full(len(y), t) for t, y in enumerate(yte)])
    ev = {}
    for lazy in (False, True):
        set_seed(0)
        net = HardSharing(X.shape[1], specs, (64,))
        tr = Trainer(net, max_epochs=8, grad_balance=0, lazy_heads=lazy).fit(
            ((X - mu) / sd, (task, y)))
        pred = tr.predict(Xt, tasks=None)
        f = np.stack([pred[f"s{k}"] for k in range(len(ytr))], 1)[np.arange(len(tt)), tt]
        ev[lazy] = explained_variance(yte, [f[tt == k] for k in range(len(yte))],
                                      average="pooled")
    assert ev[True] > 0.35 and ev[False] > 0.35
    assert abs(ev[True] - ev[False]) < 0.01


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_every_weighting_takes_lazy_heads(name):
    """Every weighting, gradient surgery included, with row-sparse head gradients: with every
    task in every batch, the same training as with dense Adam."""
    data = _data()
    make = lambda: HardSharing(4, data[3], (8,))  # noqa: E731
    weighting = make_weighting(name, **({"weights": [1.0, 2.0, 0.5]} if name == "fixed" else {}))
    dense, lazy = (_trained(make, flag, data, weighting=copy.deepcopy(weighting))
                   for flag in (False, True))
    for (key, a), b in zip(dense.state_dict().items(), lazy.state_dict().values(),
                           strict=True):
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=key)
