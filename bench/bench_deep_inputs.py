"""Deep MTL on real inputs: time per epoch against a plain PyTorch loop, and the cost of T.

1. School (139 tasks, ~10k training rows, split 0): the Trainer as DeepMultiTaskRegressor runs
   it (each row through its own task's head, losses by segment sums, Adam, batches of 256)
   against a hand-written loop of the same model, batches and optimizer; explained variance
   of the default regressor on the split.
2. Many tasks: seconds per training step with 50 rows per task at T = 100 and T = 10,000
   (batches of 256, hard sharing, one linear head per task, per-row layout).
3. Two real digits side by side (scikit-learn's digits, 8 x 16), tasks "left" and "right":
   the conv trunk under the Trainer against a plain loop (images/s).
4. Named columns (user id, item id, price) through FeatureColumns under MMoE: Trainer against a
   plain loop (rows/s).

Each timing is the median of ``--repeats`` runs with one BLAS/intra-op thread, peak resident
memory beside it. ``python bench/bench_deep_inputs.py [--repeats 3] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _memory import rss_peak_increase

from regmtl.datasets import apply_split, load_school
from regmtl.deep import (
    Categorical,
    ConvTrunk,
    DeepMultiTaskRegressor,
    FeatureColumns,
    HardSharing,
    MMoE,
    Numeric,
    TaskSpec,
    Trainer,
    set_seed,
)
from regmtl.deep.data import Batches, MultiTaskDataset
from regmtl.deep.inputs import to_device
from regmtl.metrics import explained_variance


def _median_time(fn, repeats: int) -> tuple[float, int]:
    times, peak = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, mem = rss_peak_increase(fn)
        times.append(time.perf_counter() - t0)
        peak = max(peak, mem)
    return statistics.median(times), peak


def _plain_epochs(net, ds, epochs, batch, device, rows: bool, loss_fn):
    """A hand-written loop: the same batches (Batches), Adam, the net's own forward."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = Batches(ds, batch, seed=0)
    net.train()
    for e in range(epochs):
        loader.set_epoch(e)
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            x = to_device(x, device)
            out = net(x, rows=y[0].to(device)) if rows else net(x)
            loss_fn(out, y, device).backward()
            opt.step()


def _segment_mse(T):
    def loss(out, y, device):
        task, target = y[0].to(device), y[1].to(device).float()
        per = 0.5 * (out[:, 0] - target) ** 2
        total = torch.zeros(T, device=device).index_add(0, task, per)
        count = torch.zeros(T, device=device).index_add(0, task, torch.ones_like(per))
        return (total / count.clamp(min=1)).sum()
    return loss


def school(args) -> None:
    d = load_school()
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, d.splits[0])
    set_seed(0)
    m = DeepMultiTaskRegressor(random_state=0)
    (_, mem) = rss_peak_increase(lambda: m.fit(Xtr, ytr))
    ev = explained_variance(yte, m.predict(Xte), average="pooled")
    per_epoch_fit = m.history_["time"].median()
    X = np.vstack(Xtr).astype(np.float32)
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ytr)])
    y = np.concatenate(ytr)
    y = (y - y.mean()) / y.std()
    T = len(ytr)
    names = [f"t{k}" for k in range(T)]
    ds = MultiTaskDataset(X, y, [TaskSpec(n) for n in names], task=task)
    epochs = 5

    def trainer():
        set_seed(0)
        net = HardSharing(X.shape[1], names, (64,))
        Trainer(net, batch_size=256, max_epochs=epochs, grad_balance=0, standardize=False,
                normalize_losses=False, device=args.device, seed=0).fit(ds)

    def plain():
        set_seed(0)
        net = HardSharing(X.shape[1], names, (64,)).to(args.device)
        _plain_epochs(net, ds, epochs, 256, args.device, True, _segment_mse(T))

    t_tr, m_tr = _median_time(trainer, args.repeats)
    t_pl, m_pl = _median_time(plain, args.repeats)
    print(f"School, {T} tasks, {len(X)} training rows, split 0")
    print(f"  DeepMultiTaskRegressor() defaults: EV {ev:.4f}, {len(m.history_)} epochs, "
          f"{per_epoch_fit:.3f} s per epoch (with validation), peak +{mem / 2**20:.0f} MiB")
    print(f"  Trainer {t_tr / epochs:.3f} s/epoch (peak +{m_tr / 2**20:.0f} MiB), plain loop "
          f"{t_pl / epochs:.3f} s/epoch (peak +{m_pl / 2**20:.0f} MiB): ratio "
          f"{t_tr / t_pl:.2f}")


def many_tasks(args) -> None:
    print("Many tasks, 50 rows each, batches of 256: seconds per step")
    rows = {}
    for T in (100, 10_000):
        rng = np.random.default_rng(0)
        n = 50 * T
        X = rng.standard_normal((n, 16)).astype(np.float32)
        task = np.repeat(np.arange(T), 50)
        y = X[:, 0] * rng.standard_normal(T)[task] + rng.standard_normal(n)
        names = [f"t{k}" for k in range(T)]
        ds = MultiTaskDataset(X, y, [TaskSpec(k) for k in names], task=task)
        set_seed(0)
        net = HardSharing(16, names, (32,))
        steps = 200
        idx = torch.randperm(n)[:steps * 256]
        small = MultiTaskDataset(X[idx.numpy()], y[idx.numpy()], ds.tasks,
                                 task=task[idx.numpy()])
        tr = Trainer(net, batch_size=256, max_epochs=1, grad_balance=0, device=args.device)

        def run(tr=tr, small=small):
            tr.fit(small)

        t, mem = _median_time(run, args.repeats)
        rows[T] = t / steps
        print(f"  T = {T:>6}: {rows[T] * 1e3:.2f} ms per step (an epoch of {steps} steps incl. "
              f"set-up), peak +{mem / 2**20:.0f} MiB")
    print(f"  ratio T=10,000 / T=100: {rows[10_000] / rows[100]:.2f}")


def digits(args) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    n = 4000
    a, b = rng.integers(0, len(d.images), n), rng.integers(0, len(d.images), n)
    X = (np.concatenate([d.images[a], d.images[b]], axis=2)[:, None] / 16).astype(np.float32)
    tasks = [TaskSpec("left", kind="multiclass", n_outputs=10),
             TaskSpec("right", kind="multiclass", n_outputs=10)]
    targets = {"left": d.target[a], "right": d.target[b]}
    ds = MultiTaskDataset(X, targets, tasks)
    epochs = 2

    def make():
        set_seed(0)
        return HardSharing(tasks=tasks, trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))

    def trainer():
        Trainer(make(), batch_size=128, max_epochs=epochs, grad_balance=0,
                device=args.device, seed=0).fit(ds)

    ce = torch.nn.functional.cross_entropy

    def loss(out, y, device):
        return sum(ce(out[k], y[k].to(device).long()) for k in out)

    def plain():
        _plain_epochs(make().to(args.device), ds, epochs, 128, args.device, False, loss)

    t_tr, m_tr = _median_time(trainer, args.repeats)
    t_pl, m_pl = _median_time(plain, args.repeats)
    print(f"Two digits 8x16 ({n} images), conv trunk, hard sharing")
    print(f"  Trainer {epochs * n / t_tr:,.0f} images/s (peak +{m_tr / 2**20:.0f} MiB), plain "
          f"{epochs * n / t_pl:,.0f} images/s (peak +{m_pl / 2**20:.0f} MiB): time ratio "
          f"{t_tr / t_pl:.2f}")


def columns(args) -> None:
    rng = np.random.default_rng(0)
    n = 20000
    user, item = rng.integers(0, 2000, n), rng.integers(0, 500, n)
    logit = rng.standard_normal(2000)[user] + rng.standard_normal(500)[item]
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    buy = click * (rng.random(n) < 0.3)
    X = {"user": user, "item": item, "price": rng.standard_normal(n) * 5 + 50}
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("buy", kind="binary")]
    ds = MultiTaskDataset(X, {"click": click, "buy": buy}, tasks)
    epochs = 2

    def make():
        set_seed(0)
        cols = FeatureColumns([Categorical("user", 2000), Categorical("item", 500),
                               Numeric("price")])
        cols.set_numeric_stats("price", 50.0, 5.0)
        return MMoE(tasks=tasks, n_experts=4, expert_hidden=(64,), encoder=cols)

    def trainer():
        Trainer(make(), batch_size=512, max_epochs=epochs, grad_balance=0,
                device=args.device, seed=0).fit(ds)

    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def loss(out, y, device):
        return sum(bce(out[k][:, 0], y[k].to(device).float()) for k in out)

    def plain():
        _plain_epochs(make().to(args.device), ds, epochs, 512, args.device, False, loss)

    t_tr, m_tr = _median_time(trainer, args.repeats)
    t_pl, m_pl = _median_time(plain, args.repeats)
    print(f"Named columns (2,000 users, 500 items, price), MMoE, {n} rows")
    print(f"  Trainer {epochs * n / t_tr:,.0f} rows/s (peak +{m_tr / 2**20:.0f} MiB), plain "
          f"{epochs * n / t_pl:,.0f} rows/s (peak +{m_pl / 2**20:.0f} MiB): time ratio "
          f"{t_tr / t_pl:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, device {args.device}, 1 intra-op thread, median of "
          f"{args.repeats}")
    school(args)
    many_tasks(args)
    digits(args)
    columns(args)


if __name__ == "__main__":
    main()
