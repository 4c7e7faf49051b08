"""Deep multi-task nets on bag-of-words text: the shared TextTrunk net on real data, and its
predictions from sparse CSR rows against the same bags given as dense token ids, by hand, and
through a DataLoader.

The real-data tests read ``../shared/data`` beside the repository (a 20 Newsgroups pair and 5
users of the ECML 2006 spam set) and skip cleanly where it is absent; the exactness tests need
no data. Every net is small (embedding width 32 or less, a few epochs, one thread), so each
test runs in a few seconds on one core.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from conftest import DATA_HOME, needs_data  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from regmtl.datasets import load_newsgroups, load_spam, train_test_split_per_task  # noqa: E402
from regmtl.deep import HardSharing, TaskSpec, TextTrunk, Trainer, set_seed  # noqa: E402
from regmtl.deep.data import MultiTaskDataset  # noqa: E402

DATA = DATA_HOME


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- helpers
def split_words(Xs, ys, seed):
    """Each task's rows 75 / 25 into train and test, keeping the words of the training rows."""
    Xtr, Xte, ytr, yte = train_test_split_per_task(Xs, ys, test_size=0.25, random_state=seed)
    words = np.flatnonzero(sp.vstack(Xtr).tocsc().getnnz(axis=0) > 0)
    pick = [sp.csr_matrix(X)[:, words].astype(np.float32) for X in Xtr]
    return pick, [sp.csr_matrix(X)[:, words].astype(np.float32) for X in Xte], ytr, yte


def _net(names, V, dim, seed):
    set_seed(seed)
    return HardSharing(tasks=[TaskSpec(n, kind="binary") for n in names],
                       encoder=TextTrunk(V, dim=dim), hidden=())


def _trainer(net, epochs, seed):
    return Trainer(net, lr=1e-2, batch_size=64, max_epochs=epochs, grad_balance=0,
                   device="cpu", seed=seed)


def per_row(Xs, ys):
    """All rows stacked, each row's task position and label (the per-row layout)."""
    task = np.concatenate([np.full(X.shape[0], t) for t, X in enumerate(Xs)])
    return sp.vstack(Xs).tocsr(), task, np.concatenate(ys).astype(np.float64)


def fit_three(Xtr, ytr, Xte, *, dim, epochs, seed):
    """Test probabilities per task of the shared net (per row: each row through its own
    task's head), the pooled net (one head) and one net per task (its own rows only)."""
    T, V = len(Xtr), Xtr[0].shape[1]
    names = [f"t{t}" for t in range(T)]
    X, task, y = per_row(Xtr, ytr)
    Xt, task_t, _ = per_row(Xte, [np.zeros(A.shape[0]) for A in Xte])
    shared = _trainer(_net(names, V, dim, seed), epochs, seed).fit((X, (task, y)))
    p = shared.predict(Xt, task=task_t)
    out = {"shared": [p[task_t == t] for t in range(T)]}
    pooled = _trainer(_net(["all"], V, dim, seed), epochs, seed).fit((X, {"all": y}))
    out["pooled"] = [pooled.predict(A)["all"] for A in Xte]
    out["per task"] = []
    for t in range(T):
        own = _trainer(_net(["own"], V, dim, seed), epochs, seed).fit((Xtr[t], {"own": ytr[t]}))
        out["per task"].append(own.predict(Xte[t])["own"])
    return out


def aucs(probs, yte):
    return {k: np.array([roc_auc_score(y, p) for y, p in zip(yte, v, strict=True)])
            for k, v in probs.items()}


# ----------------------------------------------------------------------------- real data
@needs_data("newsgroup_malsar")
def test_shared_text_net_on_a_newsgroup_pair():
    """comp.vs.sci, 2 tasks, 2,000 words: 6 epochs, embedding width 32."""
    b = load_newsgroups("comp.vs.sci", data_home=DATA)
    Xtr, Xte, ytr, yte = split_words(b.X, b.y, seed=0)
    auc = aucs(fit_three(Xtr, ytr, Xte, dim=32, epochs=6, seed=0), yte)
    # seeds 0-4 (split, weights, batch order): per-task AUC of the shared net 0.9944 to 0.9985
    assert auc["shared"].min() > 0.99, auc
    # shared - pooled, mean over tasks: +0.0006 to +0.0025 over seeds 0-4
    assert auc["shared"].mean() > auc["pooled"].mean() - 0.002, auc
    # shared - per task: +0.0003 to +0.0012
    assert auc["shared"].mean() > auc["per task"].mean() - 0.002, auc


@needs_data("spam_ecml2006_15users")
def test_shared_text_net_on_five_spam_users():
    """The first 5 users of the spam set (2,000 e-mails): 4 epochs, embedding width 32."""
    b = load_spam(data_home=DATA)
    users = range(5)
    Xtr, Xte, ytr, yte = split_words([b.X[u] for u in users], [b.y[u] for u in users], seed=0)
    auc = aucs(fit_three(Xtr, ytr, Xte, dim=32, epochs=4, seed=0), yte)
    # seeds 0-4: per-user AUC of the shared net 0.970 to 1.000, its mean 0.990 to 0.995
    assert auc["shared"].min() > 0.95, auc
    assert auc["shared"].mean() > 0.985, auc
    # shared - pooled: -0.0030 to +0.0059; shared - per user: +0.0062 to +0.0279
    assert auc["shared"].mean() > auc["pooled"].mean() - 0.01, auc
    assert auc["shared"].mean() > auc["per task"].mean() - 0.005, auc


# ----------------------------------------------------------------------------- exactness
def _bags(seed=0, n=150, V=300, T=3):
    """Random term counts (about 12 words per row, some rows empty), tasks and labels."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, V, density=0.04, format="csr", random_state=seed,
                  data_rvs=lambda k: rng.integers(1, 5, k).astype(np.float64))
    keep = np.ones(n)
    keep[:3] = 0  # rows without a word: pooled to zeros
    X = sp.csr_matrix(sp.diags(keep) @ X)
    X.eliminate_zeros()
    task = rng.integers(0, T, n)
    y = (np.asarray(X[:, :V // 2].sum(axis=1)).ravel() > X[:, V // 2:].sum(axis=1).A.ravel()
         ).astype(np.float64)
    return X.astype(np.float32), task, y


def _ids(X):
    """The same bags as token ids: word v repeated count times, padded with -1."""
    rows = [np.repeat(X.indices[X.indptr[i]:X.indptr[i + 1]],
                      X.data[X.indptr[i]:X.indptr[i + 1]].astype(int))
            for i in range(X.shape[0])]
    out = np.full((X.shape[0], max(1, max(len(r) for r in rows))), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _fitted(X, task, y, T, mode, seed=0):
    set_seed(seed)
    net = HardSharing(tasks=[TaskSpec(f"t{t}", kind="binary") for t in range(T)],
                      encoder=TextTrunk(X.shape[1], dim=8, mode=mode, padding_idx=-1),
                      hidden=(6,))
    return Trainer(net, lr=1e-2, batch_size=32, max_epochs=2, grad_balance=0, device="cpu",
                   seed=seed).fit((X, (task, y)))


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_predict_from_sparse_rows_equals_dense_ids_and_the_dense_product(mode):
    X, task, y = _bags()
    tr = _fitted(X, task, y, 3, mode)
    from_csr = tr.predict(X, task=task)
    # predicting in chunks of 7 rows: the CSR batches cut anywhere give the same numbers
    np.testing.assert_allclose(tr.predict(X, task=task, batch_size=7), from_csr, atol=1e-6)
    # the same bags as dense token ids (int64, padded): the embedding bag over positions
    np.testing.assert_allclose(tr.predict(_ids(X), task=task), from_csr, rtol=0, atol=1e-5)
    # by hand, densely: (x / total) @ E (mean) or x @ E (sum), then the trunk and the heads
    net = tr.net
    E = net.encoder.embedding.weight[:X.shape[1]].detach().double()
    dense = torch.from_numpy(X.toarray()).double()
    if mode == "mean":
        total = dense.sum(dim=1, keepdim=True)
        dense = torch.where(total > 0, dense / torch.where(total > 0, total, 1.0), 0.0)
    with torch.no_grad():
        z = net.trunk((dense @ E).float())
        logit = net.heads.rows(z, torch.from_numpy(task))[:, 0]
    np.testing.assert_allclose(torch.sigmoid(logit).numpy(), from_csr, rtol=0, atol=1e-5)
    assert from_csr.shape == (X.shape[0],) and X[:3].nnz == 0


def test_evaluate_on_sparse_rows_equals_a_dataloader_of_csr_batches():
    X, task, y = _bags(seed=1)
    tr = _fitted(X, task, y, 3, "mean", seed=1)
    ds = MultiTaskDataset(X, y, tr.net.tasks, task=task)
    sampler = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(ds), 16, False)
    loader = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None)
    x0, (t0, _) = next(iter(loader))
    assert x0.layout == torch.sparse_csr and tuple(x0.shape) == (16, X.shape[1])
    assert t0.dtype == torch.int64
    whole, batched = tr.evaluate((X, (task, y))), tr.evaluate(loader)
    assert whole.keys() == batched.keys()
    for key, value in whole.items():
        assert batched[key] == pytest.approx(value, abs=1e-6), key


def test_text_trunk_as_trunk_or_as_encoder_is_the_same_net():
    """``trunk=TextTrunk`` and ``encoder=TextTrunk, hidden=()`` build the same parameters in
    the same order: the same fit, the same predictions, and both save a JSON config."""
    X, task, y = _bags(seed=2)
    specs = [TaskSpec(f"t{t}", kind="binary") for t in range(3)]
    preds, configs = [], []
    for kw in ({"trunk": "text"}, {"encoder": "text", "hidden": ()}):
        set_seed(0)
        kw = {k: TextTrunk(X.shape[1], dim=8) if v == "text" else v for k, v in kw.items()}
        net = HardSharing(tasks=specs, **kw)
        tr = Trainer(net, lr=1e-2, batch_size=32, max_epochs=2, grad_balance=0, device="cpu",
                     seed=0).fit((X, (task, y)))
        preds.append(tr.predict(X, task=task))
        configs.append(net.config())
    np.testing.assert_allclose(preds[0], preds[1], rtol=0, atol=1e-6)
    assert configs[0]["trunk"]["class"] == configs[1]["encoder"]["class"] == "TextTrunk"
