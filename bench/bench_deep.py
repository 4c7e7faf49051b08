"""Deep multi-task benchmarks: MMoE vs shared-bottom, weighting methods, Trainer overhead.

1. MMoE vs shared-bottom (hard sharing) on the synthetic tasks of Ma et al. (KDD 2018) at label
   correlations 1.0, 0.9, 0.5: test MSE per task, mean and sd over seeds. The published outcome:
   MMoE degrades less than the shared bottom as the correlation falls.
2. Every weighting / gradient-conflict method on the recommender tasks (click, purchase
   observed after a click only, rating observed after a purchase only, in raw 1-5 units):
   each task against its constant predictor, the last epoch's weights, time per epoch and
   peak memory, mean over seeds.
3. The Trainer's time per epoch against a plain hand-written PyTorch loop over the same model,
   data, batches and optimizer (ratio; target within 10%), and throughput in samples/s on every
   device present (CUDA when available).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

import regmtl
from regmtl.datasets import make_mmoe_tasks, make_recommender_tasks
from regmtl.deep import HardSharing, MMoE, TaskSpec, Trainer, set_seed
from regmtl.deep.data import Batches, MultiTaskDataset

WIDTH = 96


def header(args) -> None:
    from _harness import _source

    print("=" * WIDTH)
    print(f"regmtl deep MTL benchmark (bench/bench_deep.py{' --quick' if args.quick else ''})")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
          f"{platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op threads), CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(f"regmtl {regmtl.__version__}: {_source(regmtl)}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("=" * WIDTH)


def _split(n, frac, seed):
    perm = np.random.default_rng(seed).permutation(n)
    k = int(n * frac)
    return perm[k:], perm[:k]


# --------------------------------------------------------------------------- 1. MMoE
def mmoe_vs_shared_bottom(args) -> None:
    print("\n1. MMoE vs shared-bottom on the synthetic tasks of Ma et al. (d=100, 2 tasks, "
          f"{args.n_mmoe} samples, 20% test; {args.epochs_mmoe} epochs, Adam lr 1e-3, batch 128;"
          f" {args.seeds} seeds)")
    print("   shared-bottom: trunk 113 units + towers of 8 (as in the paper: the same number "
          "of parameters as MMoE with 8 experts of 16 units and towers of 8)")
    corrs = (1.0, 0.9, 0.5)
    res, train = {}, {}
    for c in corrs:
        for model in ("shared-bottom", "MMoE"):
            mses, losses = [], []
            for seed in range(args.seeds):  # seed s: the same x, sines and noise at every c
                d = make_mmoe_tasks(args.n_mmoe, 100, c, random_state=seed)
                Y = (d.Y - d.Y.mean(0)) / d.Y.std(0)
                tr_i, te_i = _split(len(Y), 0.2, seed)
                names = ["task_0", "task_1"]
                set_seed(seed)
                if model == "MMoE":
                    net = MMoE(100, names, 8, expert_hidden=(16,), tower_hidden=(8,))
                else:
                    net = HardSharing(100, names, (113,), head_hidden=(8,))
                t = Trainer(net, lr=1e-3, batch_size=128, max_epochs=args.epochs_mmoe,
                            seed=seed, device="cpu")
                t.fit((d.X[tr_i], {k: Y[tr_i, j] for j, k in enumerate(names)}))
                pred = t.predict(d.X[te_i])
                mses.append(np.mean([np.mean((pred[k] - Y[te_i, j]) ** 2)
                                     for j, k in enumerate(names)]))
                losses.append(t.history["loss"].iloc[-1] / len(names))
            res[(c, model)], train[(c, model)] = np.array(mses), np.array(losses)
    print(f"   {'correlation':>11}  {'shared-bottom test MSE':>22}  {'MMoE test MSE':>18}  "
          f"{'train loss SB':>13}  {'train loss MMoE':>15}")
    for c in corrs:
        a, b = res[(c, "shared-bottom")], res[(c, "MMoE")]
        print(f"   {c:>11.1f}  {a.mean():>13.4f} ± {a.std():<6.4f}  {b.mean():>9.4f} ± "
              f"{b.std():<6.4f}  {train[(c, 'shared-bottom')].mean():>13.4f}  "
              f"{train[(c, 'MMoE')].mean():>15.4f}")
    print("   degradation, paired by seed (same inputs, sines and noise): median over seeds of "
          "test MSE at c / at 1.0")
    for model in ("shared-bottom", "MMoE"):
        cells = "  ".join(f"c={c:.1f}: {np.median(res[(c, model)] / res[(1.0, model)]):.3f}"
                          for c in corrs[1:])
        print(f"   {model:<14} {cells}")


# --------------------------------------------------------------------------- 2. weighting
def weighting_methods(args) -> None:
    """Every weighting on the recommender tasks, ratings in their raw 1-5 units: each task
    against its constant predictor (AUC 0.5; the rating's MSE over the variance of the test
    ratings around the training mean, below 1 where the model beats the constant), the
    weights of the last epoch, time per epoch and peak memory."""
    from _memory import rss_peak_increase

    from regmtl.deep.weighting import WEIGHTINGS

    # (fixed needs the user's weights); the last two rows: the losses in the tasks' own
    # units, as before the trainer standardized targets and scaled losses
    raw = {"standardize": False, "normalize_losses": False}
    methods = [(m, m, {}) for m in WEIGHTINGS if m != "fixed"]
    methods += [(f"{m} (raw)", m, raw) for m in ("equal", "gradnorm", "uncertainty")]
    print(f"\n2. Weighting methods on the recommender tasks ({args.n_rec} impressions, 20% test;"
          f" ratings in raw 1-5 units; hard sharing 64-32, heads 16; {args.epochs_rec} epochs, "
          f"Adam lr 1e-3, batch 256; {args.seeds} seeds; mean ± sd; the Trainer's defaults)")
    tasks = [TaskSpec("click", kind="binary", metrics=("auc",)),
             TaskSpec("purchase", kind="binary", metrics=("auc",)),
             TaskSpec("rating", metrics=("rmse",))]
    rows = {}
    d = make_recommender_tasks(2000, random_state=0)  # warm-up: the allocator's first pools
    Trainer(HardSharing(d.X.shape[1], tasks, (64, 32), head_hidden=(16,)), max_epochs=1,
            device="cpu").fit((d.X, {k: d.Y[:, j] for j, k in enumerate(d.target_names)}))
    for label, m, options in methods:
        vals, secs, peaks, weights = [], [], [], []
        for seed in range(args.seeds):
            d = make_recommender_tasks(args.n_rec, random_state=seed)
            X = (d.X - d.X.mean(0)) / d.X.std(0)
            tr_i, te_i = _split(len(X), 0.2, seed)
            tgt = {k: d.Y[:, j] for j, k in enumerate(d.target_names)}
            set_seed(seed)
            net = HardSharing(X.shape[1], tasks, (64, 32), head_hidden=(16,))
            t = Trainer(net, weighting=m, lr=1e-3, batch_size=256, max_epochs=args.epochs_rec,
                        seed=seed, device="cpu", **options)
            t0 = time.perf_counter()
            _, peak = rss_peak_increase(
                lambda t=t, tr_i=tr_i, tgt=tgt, X=X: t.fit(
                    (X[tr_i], {k: v[tr_i] for k, v in tgt.items()})))
            secs.append((time.perf_counter() - t0) / args.epochs_rec)
            peaks.append(peak)
            ev = t.evaluate((X[te_i], {k: v[te_i] for k, v in tgt.items()}))
            r_tr, r_te = tgt["rating"][tr_i], tgt["rating"][te_i]
            const = np.nanmean((r_te - np.nanmean(r_tr)) ** 2)
            vals.append([ev["val/click/auc"], ev["val/purchase/auc"],
                         ev["val/rating/rmse"] ** 2 / const])
            last = t.history.iloc[-1]
            weights.append([last[f"weight/{k.name}"] for k in tasks])
        rows[label] = (np.array(vals), np.mean(secs), np.max(peaks), np.mean(weights, axis=0))
    print(f"   {'method':<18} {'click AUC':>16} {'purchase AUC':>16} {'rating MSE/const':>17} "
          f"{'weights (click, purchase, rating)':>34} {'s/epoch':>8} {'peak MiB':>9}")
    worse = []
    for m, (v, s, peak, w) in rows.items():
        mu, sd = v.mean(0), v.std(0)
        cells = " ".join(f"{a:>8.4f} ± {b:<6.4f}" for a, b in zip(mu, sd, strict=True))
        wcell = ", ".join(f"{x:.3g}" for x in w)
        print(f"   {m:<18} {cells} {wcell:>34} {s:>8.3f} {peak / 2**20:>9.1f}")
        if (v[:, 0] <= 0.5).any() or (v[:, 1] <= 0.5).any() or (v[:, 2] >= 1.0).any():
            worse.append(m)
    print("   no task worse than its constant predictor on any seed" if not worse else
          f"   a task no better than its constant predictor on some seed: {', '.join(worse)}")
    print("   (peak MiB: the largest rise of this process's resident memory during a fit; "
          "weights: the mean effective weights of the last epoch, seeds averaged; (raw): "
          "standardize=False, normalize_losses=False)")


# --------------------------------------------------------------------------- 3. overhead
def _plain_loop(net, ds, tasks, batch_size, epochs, device, seed) -> float:
    """The hand-written loop: same batches (Batches), Adam, masked losses, summed."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batches = Batches(ds, batch_size, seed=seed)
    net.train()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        batches.set_epoch(epoch)
        for x, ys in batches:
            opt.zero_grad(set_to_none=True)
            out = net(x)
            loss = sum(t.task_loss(out[t.name], ys[t.name]) for t in tasks)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / epochs


def trainer_overhead(args) -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available()
                                       else [])
    n = args.n_rec
    print(f"\n3. Trainer vs a plain PyTorch loop (recommender tasks, {n} rows, hard sharing "
          "256-128, heads 64, batch 512, equal weighting, no validation; median of "
          f"{args.repeats} runs of {args.epochs_time} epochs)")
    d = make_recommender_tasks(n, random_state=0)
    X = ((d.X - d.X.mean(0)) / d.X.std(0)).astype(np.float32)
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary"),
             TaskSpec("rating")]
    tgt = {k: d.Y[:, j] for j, k in enumerate(d.target_names)}
    print(f"   {'device':<8} {'Trainer s/epoch':>16} {'plain s/epoch':>14} {'ratio':>7} "
          f"{'Trainer samples/s':>18}")
    for dev in devices:
        ds = MultiTaskDataset(X, tgt, tasks).to(dev)
        tr_t, pl_t = [], []
        for r in range(args.repeats):
            set_seed(r)
            net = HardSharing(X.shape[1], tasks, (256, 128), head_hidden=(64,)).to(dev)
            t = Trainer(net, lr=1e-3, batch_size=512, max_epochs=args.epochs_time, seed=r,
                        device=str(dev), restore_best=False)
            t0 = time.perf_counter()
            t.fit(ds)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            tr_t.append((time.perf_counter() - t0) / args.epochs_time)
            set_seed(r)
            net = HardSharing(X.shape[1], tasks, (256, 128), head_hidden=(64,)).to(dev)
            pl_t.append(_plain_loop(net, ds, tasks, 512, args.epochs_time, dev, r))
        a, b = float(np.median(tr_t)), float(np.median(pl_t))
        print(f"   {dev.type:<8} {a:>16.4f} {b:>14.4f} {a / b:>7.3f} {n / a:>18,.0f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: well under a minute")
    ap.add_argument("--parts", default="123", help="which parts to run (default 123)")
    args = ap.parse_args(argv)
    big = not args.quick
    args.seeds = 5 if big else 2
    args.n_mmoe, args.epochs_mmoe = (10000, 40) if big else (2000, 5)
    args.n_rec, args.epochs_rec = (20000, 20) if big else (4000, 3)
    args.epochs_time, args.repeats = (5, 5) if big else (2, 2)
    header(args)
    t0 = time.perf_counter()
    parts = {"1": mmoe_vs_shared_bottom, "2": weighting_methods, "3": trainer_overhead}
    for p in args.parts:
        t = time.perf_counter()
        parts[p](args)
        print(f"   [{time.perf_counter() - t:.1f}s]")
    print(f"\ntotal wall time: {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
