"""The Trainer's per-step path on data sets: checked and standardized once per data set, the
same training as batch by batch, and a bad task index still refused."""

import numpy as np
import pytest
import torch

from regmtl.deep import Batches, HardSharing, MultiTaskDataset, TaskSpec, Trainer, set_seed


def _rows(n=240, T=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    task = rng.integers(0, T, n)
    y = X[:, 0] * (task + 1) + 10.0 * task + 0.1 * rng.standard_normal(n)
    return X, task, y, [TaskSpec(f"t{k}") for k in range(T)]


def _fit(data, specs, epochs=1):
    set_seed(0)
    net = HardSharing(4, specs, (8,))
    tr = Trainer(net, batch_size=32, max_epochs=epochs, grad_balance=0, lr=1e-2).fit(data)
    return tr, torch.cat([p.detach().flatten() for p in net.parameters()])


def test_data_set_path_trains_as_its_batches_do():
    X, task, y, specs = _rows()
    ds = MultiTaskDataset(X, y, specs, task=task)
    # the same batches, in the same order, given as a loader: checked and standardized batch
    # by batch, losses with the masks of missing labels
    loader = list(Batches(ds, 32, seed=0))
    a, wa = _fit(ds, specs)
    b, wb = _fit(loader, specs)
    cols = [f"loss/t{k}" for k in range(5)]
    # measured: bit for bit the same losses and weights (tolerance for other BLAS builds)
    np.testing.assert_allclose(a.history[cols].to_numpy(), b.history[cols].to_numpy(),
                               rtol=1e-6)
    torch.testing.assert_close(wa, wb, rtol=1e-6, atol=1e-7)


def test_missing_labels_on_the_data_set_path():
    X, task, y, specs = _rows()
    y = y.copy()
    y[::7] = np.nan
    ds = MultiTaskDataset(X, y, specs, task=task)
    a, wa = _fit(ds, specs)  # the masked losses (a label is missing)
    b, wb = _fit(list(Batches(ds, 32, seed=0)), specs)
    # measured: bit for bit the same
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-6)
    torch.testing.assert_close(wa, wb, rtol=1e-6, atol=1e-7)


def test_per_task_targets_path_trains_as_its_batches_do():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4))
    targets = {"a": 100.0 + 50.0 * X[:, 0], "b": (X[:, 1] > 0).astype(float)}
    targets["a"][:20] = np.nan
    specs = [TaskSpec("a"), TaskSpec("b", kind="binary")]
    ds = MultiTaskDataset(X, targets, specs)
    a, wa = _fit(ds, specs)
    b, wb = _fit(list(Batches(ds, 32, seed=0)), specs)
    cols = ["loss/a", "loss/b"]  # measured: bit for bit the same
    np.testing.assert_allclose(a.history[cols].to_numpy(), b.history[cols].to_numpy(),
                               rtol=1e-6)
    torch.testing.assert_close(wa, wb, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [torch.tensor([0, 5, 1]), torch.tensor([0, -1, 1]),
                                 torch.tensor([0.0, 1.0, 1.0])])
def test_a_bad_task_index_is_refused(bad):
    X, task, y, specs = _rows()
    x = torch.tensor(X[:3], dtype=torch.float32)
    good = (x, (torch.tensor([0, 1, 2]), torch.tensor(y[:3])))
    loader = [good, (x, (bad, torch.tensor(y[:3])))]
    set_seed(0)
    tr = Trainer(HardSharing(4, specs, (8,)), batch_size=3, max_epochs=1, grad_balance=0)
    with pytest.raises(ValueError, match=r"task index must be a 1-D int64 tensor of positions "
                                         r"in 0\.\.4"):
        tr.fit(loader)
    with pytest.raises(ValueError, match="positions must be in 0..4"):
        MultiTaskDataset(X, y, specs, task=np.where(task == 0, 5, task))


def test_stacked_scales_follow_the_maps():
    net = HardSharing(3, [TaskSpec("a"), TaskSpec("c", kind="binary"), TaskSpec("b")], (4,))
    mean, scale = net.stacked_scales()
    assert mean.tolist() == [[0.0], [0.0], [0.0]] and net.stacked_scales()[0] is mean
    net.target_scales["b"].set(torch.tensor([2.0]), torch.tensor([3.0]))
    mean, scale = net.stacked_scales()
    assert mean[:, 0].tolist() == [0.0, 0.0, 2.0] and scale[:, 0].tolist() == [1.0, 1.0, 3.0]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["target_scales.a.mean"] = torch.tensor([-1.0], dtype=torch.float64)
    net.load_state_dict(state)
    assert net.stacked_scales()[0][:, 0].tolist() == [-1.0, 0.0, 2.0]
    # rows in the target's units through the stacked form, as through each task's map
    x = torch.randn(4, 3)
    rows = torch.tensor([0, 1, 2, 2])
    out = net(x, rows=rows)
    every = net(x)
    assert torch.allclose(out[2:, 0].float(), every["b"][2:, 0].float())
    assert torch.allclose(out[:1, 0].float(), every["a"][:1, 0].float())
