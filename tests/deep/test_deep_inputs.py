"""Deep nets on the inputs the field brings: images, token ids, sparse bag-of-words, named
categorical and numeric columns; each row through its own task's head."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from regmtl.deep import (  # noqa: E402
    CGC,
    ESMM,
    PLE,
    Categorical,
    ConvTrunk,
    FeatureColumns,
    HardSharing,
    MMoE,
    MultiTaskDataset,
    Numeric,
    TaskSpec,
    TextTrunk,
    Trainer,
    load_checkpoint,
    save_checkpoint,
    set_seed,
)
from regmtl.deep.inputs import SparseRows  # noqa: E402

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def _two_digits(n=600, seed=0):
    """MultiMNIST-style pairs of real 8x8 digits side by side (8 x 16), two tasks."""
    d = load_digits()
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(d.images), n), rng.integers(0, len(d.images), n)
    images = np.concatenate([d.images[a], d.images[b]], axis=2)[:, None] / 16.0
    return images.astype(np.float32), d.target[a], d.target[b]


def test_images_train_through_a_conv_trunk_without_a_feature_count():
    X, left, right = _two_digits()
    tasks = [TaskSpec("left", kind="multiclass", n_outputs=10),
             TaskSpec("right", kind="multiclass", n_outputs=10)]
    set_seed(0)
    net = HardSharing(tasks=tasks, trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))
    assert net.n_features is None and net.heads.in_features == 64  # left and right halves
    tr = Trainer(net, max_epochs=8, batch_size=64, lr=3e-3).fit(
        (X[:500], {"left": left[:500], "right": right[:500]}),
        val=(X[500:], {"left": left[500:], "right": right[500:]}))
    last = tr.history.iloc[-1]
    assert last["val/left/accuracy"] > 0.6 and last["val/right/accuracy"] > 0.6, last
    probs = tr.predict(X[:5])
    assert probs["left"].shape == (5, 10)
    np.testing.assert_allclose(probs["left"].sum(1), 1.0, rtol=1e-5)


def test_a_pair_of_arrays_trains_exactly_as_a_loader_of_the_same_batches():
    """(X, targets) and a DataLoader over the same dataset yielding the batches Batches makes
    (same seeded order per epoch) give the same history and weights."""
    X, left, right = _two_digits(n=96)
    tasks = [TaskSpec("left", kind="multiclass", n_outputs=10), TaskSpec("right")]
    targets = {"left": left, "right": right.astype(float)}

    class EpochOrder(torch.utils.data.Sampler):
        def __init__(self, n, batch, seed):
            self.n, self.batch, self.seed, self.epoch = n, batch, seed, 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __iter__(self):
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(
                self.seed + self.epoch))
            return iter([order[i:i + self.batch] for i in range(0, self.n, self.batch)])

        def __len__(self):
            return -(-self.n // self.batch)

    def fit(data):
        set_seed(0)
        net = HardSharing(tasks=tasks, trunk=ConvTrunk(1, (8,), batch_norm=False))
        tr = Trainer(net, max_epochs=3, batch_size=32, seed=5, grad_balance=0).fit(data)
        return tr.history.drop(columns="time"), net.state_dict()

    ds = MultiTaskDataset(X, targets, tasks)
    loader = torch.utils.data.DataLoader(ds, sampler=EpochOrder(len(ds), 32, 5),
                                         batch_size=None)
    h1, s1 = fit((X, targets))
    h2, s2 = fit(loader)
    np.testing.assert_allclose(h1.to_numpy(), h2.to_numpy(), rtol=1e-6, atol=1e-7)
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-6, atol=1e-7)


def test_token_ids_and_bag_of_words_reach_the_text_trunk():
    rng = np.random.default_rng(0)
    V = 50
    ids = rng.integers(1, V, size=(200, 12))
    ids[:, 8:] = 0  # padding
    ids[::3, 5:] = 0  # shorter texts: the length varies
    spam = (ids == 7).any(1).astype(float)
    tasks = [TaskSpec("spam", kind="binary"), TaskSpec("len")]
    data = MultiTaskDataset(ids, {"spam": spam, "len": (ids > 0).sum(1).astype(float)}, tasks)
    assert data.X.dtype == torch.int64  # ids are never cast to float
    set_seed(0)
    net = MMoE(tasks=tasks, n_experts=2, expert_hidden=(8,),
               encoder=TextTrunk(V, 8, mode="sum"))
    tr = Trainer(net, max_epochs=20, batch_size=32, lr=1e-2, device="cpu").fit(data, val=data)
    assert tr.history["val/spam/auc"].iloc[-1] > 0.9
    bow = sp.csr_matrix((np.ones(ids.size), (np.repeat(np.arange(200), 12), ids.ravel())),
                        shape=(200, V))
    bow[:, 0] = 0
    bow.eliminate_zeros()
    net.eval()
    with torch.no_grad():  # the same text as ids or as counts gives the same output
        a = net(torch.from_numpy(ids))["spam"]
        b = net(SparseRows(bow)[torch.arange(200)])["spam"]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _recommender(n=400, seed=0):
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 30, n), rng.integers(0, 20, n)
    taste = rng.standard_normal(30)
    appeal = rng.standard_normal(20)
    price = rng.standard_normal(n) * 5 + 50
    logit = taste[user] + appeal[item] - 0.1 * (price - 50)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    buy = click * (rng.random(n) < 0.5)
    X = {"user": user, "item": item, "price": price}
    return X, click, buy


def _columns():
    return FeatureColumns([Categorical("user", 30), Categorical("item", 20), Numeric("price")])


@pytest.mark.parametrize("make", [
    lambda t: HardSharing(tasks=t, hidden=(8,), encoder=_columns()),
    lambda t: MMoE(tasks=t, n_experts=2, expert_hidden=(8,), encoder=_columns()),
    lambda t: CGC(tasks=t, expert_hidden=(8,), encoder=_columns()),
    lambda t: PLE(tasks=t, expert_hidden=(8,), encoder=_columns()),
    lambda t: ESMM(tasks=t, hidden=(8,), tower_hidden=(4,), encoder=_columns()),
], ids=["hard", "mmoe", "cgc", "ple", "esmm"])
def test_named_columns_under_every_architecture_and_checkpoints(make, tmp_path):
    X, click, buy = _recommender()
    tasks = [TaskSpec("ctr", kind="binary"), TaskSpec("ctcvr", kind="binary")]
    set_seed(0)
    net = make(tasks)
    tr = Trainer(net, weighting="uncertainty", max_epochs=15, batch_size=64, lr=1e-2,
                 device="cpu").fit(
        (X, {"ctr": click, "ctcvr": buy}), val=(X, {"ctr": click, "ctcvr": buy}))
    assert tr.history["val/ctr/auc"].iloc[-1] > 0.7
    cols = net.encoder
    assert not cols.needs_adapt()  # the trainer adapted the numeric column
    # exact over the float32 inputs the net reads
    assert float(cols.numerics[0].mean) == pytest.approx(
        X["price"].astype(np.float32).astype(np.float64).mean(), rel=1e-12)
    save_checkpoint(tmp_path, net)
    again = load_checkpoint(tmp_path).eval()
    net.eval()
    x = {"user": torch.tensor([0, 29, 40]), "item": torch.tensor([1, 2, -1]),
         "price": torch.tensor([50.0, 40.0, 60.0])}  # 40 and -1: unseen ids, the OOV bucket
    with torch.no_grad():
        for k, v in net(x).items():
            torch.testing.assert_close(again(x)[k], v, rtol=0, atol=0)


def test_inputs_the_net_cannot_take_are_refused_naming_them():
    net = HardSharing(4, ["a"], (8,))
    with pytest.raises(ValueError, match=r"train: the net cannot read its inputs \(\(2, 4\) "
                                         r"int64\).*Integer ids need an embedding"):
        Trainer(net).fit((np.ones((10, 4), dtype=np.int64), {"a": np.zeros(10)}))
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\) float32.*expects a float tensor|"
                                         r"shape \(2, 1, 8, 8\); the net expects \(batch, 4\)"):
        Trainer(net).fit((np.zeros((10, 1, 8, 8)), {"a": np.zeros(10)}))
    with pytest.raises(ValueError, match="X has dtype <U1: the nets read numbers"):
        Trainer(net).fit((np.array([["a"] * 4] * 10), {"a": np.zeros(10)}))
    cols = HardSharing(tasks=["a"], encoder=_columns())
    with pytest.raises(ValueError, match="user"):
        Trainer(cols).fit(({"item": np.zeros(10, dtype=np.int64), "price": np.ones(10)},
                           {"a": np.zeros(10)}))


@pytest.mark.parametrize("cls", [HardSharing, MMoE, PLE])
def test_each_row_through_its_own_head_equals_every_head_gathered(cls):
    """rows= runs only each row's task's head (and gate): the same numbers as running every
    task and picking the row's, for outputs of different widths too."""
    torch.manual_seed(0)
    tasks = [TaskSpec("a"), TaskSpec("b", kind="multiclass", n_outputs=3),
             TaskSpec("c", kind="binary"), TaskSpec("d", n_outputs=2)]
    net = cls(5, tasks).eval()
    x = torch.randn(40, 5)
    rows = torch.randint(0, 4, (40,))
    with torch.no_grad():
        every = net(x)
        own = net(x, rows=rows)
    assert own.shape == (40, 3)
    for i in range(40):
        t = tasks[int(rows[i])]
        torch.testing.assert_close(own[i, :t.n_outputs].double(),
                                   every[t.name][i].double(), rtol=1e-6, atol=1e-6)


def test_per_row_losses_equal_the_masked_losses_of_a_task_column_table():
    """A per-row batch (segment sums) and the same rows as a table with NaN where a row is not
    of the task give the same task losses and the same gradients."""
    rng = np.random.default_rng(0)
    T, n = 7, 90
    X = rng.standard_normal((n, 3))
    task = rng.integers(0, T, n)
    y = X[:, 0] * (task + 1) + rng.standard_normal(n)
    names = [f"t{k}" for k in range(T)]
    table = {k: np.where(task == j, y, np.nan) for j, k in enumerate(names)}

    def grads(data):
        set_seed(0)
        net = HardSharing(3, names, (8,))
        tr = Trainer(net, max_epochs=1, batch_size=n, optimizer="sgd", lr=1e-3,
                     grad_balance=0, device="cpu").fit(data)
        return tr.history[[f"loss/{k}" for k in names]].to_numpy(), net.state_dict()

    l1, s1 = grads((X, (task, y)))
    l2, s2 = grads((X, table))
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-5, atol=1e-7)


def test_many_tasks_per_row_predictions_by_task():
    rng = np.random.default_rng(0)
    T, n = 300, 3000
    X = rng.standard_normal((n, 4))
    task = rng.integers(0, T, n)
    slope = rng.standard_normal(T)
    y = 100.0 + slope[task] * X[:, 0] * 3
    set_seed(0)
    net = HardSharing(4, [f"t{k}" for k in range(T)], (16,))
    tr = Trainer(net, max_epochs=30, batch_size=128, lr=3e-3, grad_balance=0).fit(
        (X, (task, y)))
    pred = tr.predict(X, task=task)
    assert pred.shape == (n,)
    r2 = 1 - np.mean((pred - y) ** 2) / np.var(y)
    assert r2 > 0.8, r2
    names = np.array([f"t{k}" for k in range(T)])[task]
    np.testing.assert_array_equal(tr.predict(X, task=names), pred)
