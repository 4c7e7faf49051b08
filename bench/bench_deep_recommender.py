"""Recommendation on ids alone: MMoE, PLE, ESMM (and hard sharing) on ids against dense features.

On :func:`regmtl.datasets.make_recommender_tasks` (default: 200,000 impressions of 100 items in
10 categories to 200 users; 60% train, 20% validation for early stopping, 20% test; so about
600 training rows per user and 1,200 per item), each net is trained twice from the same seed:

- **dense**: the 28 dense features (noisy user and item factors, their products, price and the
  noisy quality, popularity and activity scores), standardized with the training rows;
- **ids**: the user id, the item id and the item's category id alone, through
  ``FeatureColumns([Categorical("user", 200), Categorical("item", 100),
  Categorical("category", 10)])`` (embeddings of ``--dim`` 16, OOV rate 0.01) as ``encoder=``,
  with an L2 penalty ``--emb-l2`` (3e-3) on the embedding tables (``L2Penalty`` on the
  encoder's parameters).

The nets: MMoE (4 experts of 64, towers 16), PLE (2 levels, 2 shared + 1 task expert of 64,
towers 16), ESMM (bottom 64-32, towers 16; CTR and CTCVR on every impression) and hard sharing
(trunk 64-32, heads 16). MMoE, PLE and hard sharing have the tasks click and purchase (the
purchase on the clicked rows, NaN elsewhere); their purchase output is the pCVR. All: Adam
(lr 3e-3), batches of 512, at most 30 epochs, early stopping on the validation loss (patience
3, best epoch kept), one torch thread. On the test rows:

- click AUC: pCTR against the click, all impressions;
- purchase AUC: pCVR against the purchase, clicked impressions;
- CTCVR AUC: pCTR x pCVR against click AND purchase, all impressions;
- CVR AUC (all): pCVR against ``purchase_if_clicked`` (the purchase each impression would have
  had if clicked), all impressions: the exposure space;
- s/epoch: median wall time of an epoch (training and validation); peak MiB: the increase of
  the peak resident memory during the fit (data set up before). Every run is a forked child
  process (``_isolate.call_with_limit``): no run reuses memory an earlier one freed.

Medians over ``--seeds`` (seed s: the log, the split, the initial weights and the batch order),
then the per-seed differences ids minus dense (median and worst) against the target 0.01.
``python bench/bench_deep_recommender.py [--n 200000] [--seeds 3] [--nets MMoE,PLE,ESMM]``
(one fit at the defaults, on one core: about 10 s for ESMM and hard sharing, 30 s for MMoE,
50 s for PLE on ids; run the nets in separate commands to keep each under 10 minutes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from _isolate import call_with_limit
from _memory import rss_peak_increase
from sklearn.metrics import roc_auc_score

import regmtl
from regmtl.datasets import make_recommender_tasks
from regmtl.deep import (
    ESMM,
    PLE,
    Categorical,
    EarlyStopping,
    FeatureColumns,
    HardSharing,
    L2Penalty,
    MMoE,
    TaskSpec,
    Trainer,
    esmm_targets,
    set_seed,
)
from regmtl.deep.inputs import as_inputs, chunks

WIDTH = 112
NETS = ("MMoE", "PLE", "ESMM", "hard sharing")
INPUTS = ("dense", "ids")
METRICS = ("click AUC", "purchase AUC", "CTCVR AUC", "CVR AUC (all)")
TARGET = 0.01


def header(args) -> None:
    from _harness import _source

    print("=" * WIDTH)
    print(f"regmtl recommender ids-vs-dense benchmark (bench/bench_deep_recommender.py --n {args.n}"
          f" --users {args.users} --items {args.items} --categories {args.categories} --seeds "
          f"{args.seeds} --dim {args.dim} --emb-l2 {args.emb_l2:g} --nets {','.join(args.nets)})")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
          f"{platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op thread)")
    print(f"regmtl {regmtl.__version__}: {_source(regmtl)}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("=" * WIDTH)


def build(name: str, encoder: FeatureColumns | None, n_features: int | None):
    """The net ``name`` on ``n_features`` dense features or on ``encoder`` (seed first)."""
    if name == "ESMM":
        return ESMM(n_features, hidden=(64, 32), tower_hidden=(16,), encoder=encoder)
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary")]
    if name == "MMoE":
        return MMoE(n_features, tasks, 4, expert_hidden=(64,), tower_hidden=(16,),
                    encoder=encoder)
    if name == "PLE":
        return PLE(n_features, tasks, 2, n_shared_experts=2, n_task_experts=1,
                   expert_hidden=(64,), tower_hidden=(16,), encoder=encoder)
    return HardSharing(n_features, tasks, (64, 32), head_hidden=(16,), encoder=encoder)


def id_columns(users: int, items: int, categories: int, dim: int) -> FeatureColumns:
    """The encoder of the three id columns."""
    return FeatureColumns([Categorical("user", users, dim=dim),
                           Categorical("item", items, dim=dim),
                           Categorical("category", categories, dim=dim)])


@torch.no_grad()
def esmm_probabilities(net: ESMM, X) -> tuple[np.ndarray, np.ndarray]:
    """pCTR and pCVR of every row of ``X`` (arrays or a dict of them), evaluation mode."""
    net.eval()
    parts = [net.probabilities(x) for x in chunks(as_inputs(X), 8192)]
    return tuple(torch.cat([p[k] for p in parts]).double().numpy() for k in ("ctr", "cvr"))


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test, validation and training rows (20 / 20 / 60%)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = n // 5
    return perm[:k], perm[k:2 * k], perm[2 * k:]


def run_one(name: str, inputs: str, seed: int, args) -> dict[str, float]:
    """Train net ``name`` on ``inputs`` of the log of seed ``seed``; its test metrics."""
    d = make_recommender_tasks(args.n, args.users, args.items, n_categories=args.categories,
                               random_state=seed)
    te, va, tr = split(args.n, seed)
    click, purchase = d.Y[:, 0], d.Y[:, 1]
    y = (esmm_targets(click, purchase) if name == "ESMM"
         else {"click": click, "purchase": purchase})
    if inputs == "dense":
        X = ((d.X - d.X[tr].mean(0)) / d.X[tr].std(0)).astype(np.float32)

        def rows(idx):
            return X[idx]
    else:
        X = {"user": d.user, "item": d.item, "category": d.category}

        def rows(idx):
            return {k: v[idx] for k, v in X.items()}
    set_seed(seed)
    if inputs == "dense":
        net, penalty = build(name, None, X.shape[1]), None
    else:
        net = build(name, id_columns(args.users, args.items, args.categories, args.dim), None)
        penalty = L2Penalty(args.emb_l2, params=lambda m: m.encoder.parameters())
    trainer = Trainer(net, lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs,
                      early_stopping=EarlyStopping(patience=3), penalty=penalty, seed=seed,
                      grad_balance=0, device="cpu")
    train = (rows(tr), {k: v[tr] for k, v in y.items()})
    val = (rows(va), {k: v[va] for k, v in y.items()})
    _, peak = rss_peak_increase(lambda: trainer.fit(train, val=val))
    if name == "ESMM":
        pctr, pcvr = esmm_probabilities(net, rows(te))
    else:
        pred = trainer.predict(rows(te))
        pctr, pcvr = pred["click"], pred["purchase"]
    c, seen = click[te], click[te] == 1
    return {
        "click AUC": roc_auc_score(c, pctr),
        "purchase AUC": roc_auc_score(purchase[te][seen], pcvr[seen]),
        "CTCVR AUC": roc_auc_score(c * np.where(seen, purchase[te], 0.0), pctr * pcvr),
        "CVR AUC (all)": roc_auc_score(d.purchase_if_clicked[te], pcvr),
        "s/epoch": float(trainer.history["time"].median()),
        "peak MiB": peak / 2**20,
        "epochs": len(trainer.history),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="impressions (default 200000)")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--categories", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1 (default 3)")
    ap.add_argument("--nets", default="MMoE,PLE,ESMM,hard sharing",
                    help="comma-separated, of " + ", ".join(NETS))
    ap.add_argument("--dim", type=int, default=16, help="embedding size of every id column")
    ap.add_argument("--emb-l2", type=float, default=3e-3, help="L2 penalty on the embeddings")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=30, help="most epochs (default 30)")
    ap.add_argument("--per-seed", action="store_true", help="also print every seed's row")
    args = ap.parse_args(argv)
    args.nets = [s.strip() for s in args.nets.split(",")]
    unknown = [m for m in args.nets if m not in NETS]
    if unknown:
        ap.error(f"unknown net(s) {unknown}; choose from {list(NETS)}")
    torch.set_num_threads(1)
    header(args)
    t0 = time.perf_counter()
    res = {(m, i): [] for m in args.nets for i in INPUTS}
    for m in args.nets:
        for s in range(args.seeds):
            for i in INPUTS:
                r = call_with_limit(lambda m=m, i=i, s=s: run_one(m, i, s, args), 3600)
                res[m, i].append(r)
                if args.per_seed:
                    print(f"  {m:<12} {i:<5} seed {s}: "
                          + "  ".join(f"{k} {r[k]:.4f}" for k in METRICS)
                          + f"  {r['epochs']} epochs, {r['s/epoch']:.2f} s/epoch, "
                          f"+{r['peak MiB']:.0f} MiB", flush=True)
    cols = (*METRICS, "epochs", "s/epoch", "peak MiB")
    print(f"\ntest metrics, median over {args.seeds} seed(s) ({args.n} impressions, "
          f"{args.users} users, {args.items} items, {args.categories} categories; 20% test)")
    print(f"{'net':<13} {'inputs':<6} " + " ".join(f"{c:>13}" for c in cols)
          + f" {'time ids/dense':>14}")
    for m in args.nets:
        for i in INPUTS:
            med = {c: statistics.median(r[c] for r in res[m, i]) for c in cols}
            ratio = med["s/epoch"] / statistics.median(r["s/epoch"] for r in res[m, "dense"])
            print(f"{m:<13} {i:<6} "
                  + " ".join(f"{med[c]:>13.4f}" for c in METRICS)
                  + f" {med['epochs']:>13.1f} {med['s/epoch']:>13.2f} {med['peak MiB']:>13.0f}"
                  + f" {ratio:>14.2f}")
    print(f"\nids minus dense, per seed: median [worst] (target: ids within {TARGET} of dense, "
          "i.e. every difference > -0.01)")
    print(f"{'net':<13} " + " ".join(f"{c:>20}" for c in METRICS) + "  within")
    for m in args.nets:
        diffs = {c: [a[c] - b[c] for a, b in zip(res[m, "ids"], res[m, "dense"], strict=True)]
                 for c in METRICS}
        ok = all(min(v) > -TARGET for v in diffs.values())
        print(f"{m:<13} " + " ".join(f"{statistics.median(v):>+11.4f} [{min(v):+.4f}]"
                                     for v in diffs.values()) + f"  {'yes' if ok else 'NO'}")
    print(f"\ntotal wall time: {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
