"""ESMM vs MMoE vs hard sharing on a click -> purchase log: CVR over the whole exposure space.

On :func:`regmtl.datasets.make_recommender_tasks` (default size: 20000 impressions; 60% train,
20% validation for early stopping, 20% test), three nets on the same standardized features:

- ESMM (:class:`regmtl.deep.ESMM`): bottom 64-32, towers 16; CTR and CTCVR losses on every
  impression (labels from :func:`regmtl.deep.esmm_targets`); pCVR from the conversion tower.
- hard sharing: the same layers (trunk 64-32, heads 16), tasks click and purchase, the purchase
  loss on the clicked rows only (NaN elsewhere: the library's missing labels).
- MMoE: 4 experts of 32, towers 16, the same two tasks as hard sharing.

All: Adam lr 3e-3, batch 256, at most 30 epochs, early stopping on the validation loss
(patience 3, best epoch kept), equal weighting, one torch thread. On the test rows:

- CVR AUC (all): pCVR against the purchase each impression would have had if clicked
  (``purchase_if_clicked``, drawn for every row by the generator), all impressions;
- CVR rho (all): Spearman correlation of pCVR with the true conversion probability, all rows;
- CVR bias (all): mean pCVR minus the mean true conversion probability, all rows;
- CVR AUC (clicked): pCVR against the observed purchase, clicked impressions only;
- CTR AUC; CTCVR AUC: pCTR x pCVR against click AND purchase, all impressions;
- s/epoch: mean wall time of an epoch (training plus validation).

Mean ± sd over seeds (seed s: data, split, initial weights and batch order).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

import regmtl
from regmtl.datasets import make_recommender_tasks
from regmtl.deep import (
    ESMM,
    EarlyStopping,
    HardSharing,
    MMoE,
    TaskSpec,
    Trainer,
    esmm_targets,
    set_seed,
)

WIDTH = 110
NETS = ("ESMM", "hard sharing", "MMoE")
COLUMNS = ("CVR AUC (all)", "CVR rho (all)", "CVR bias (all)", "CVR AUC (clicked)", "CTR AUC",
           "CTCVR AUC", "s/epoch")


def header(args) -> None:
    from _harness import _source

    print("=" * WIDTH)
    print(f"regmtl ESMM benchmark (bench/bench_esmm.py --n {args.n} --seeds {args.seeds} "
          f"--epochs {args.epochs} --click-rate {args.click_rate:g})")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
          f"{platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op threads)")
    print(f"regmtl {regmtl.__version__}: {_source(regmtl)}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("=" * WIDTH)


def build(name: str, n_features: int):
    """The net ``name`` (seed first)."""
    if name == "ESMM":
        return ESMM(n_features, hidden=(64, 32), tower_hidden=(16,))
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary")]
    if name == "hard sharing":
        return HardSharing(n_features, tasks, (64, 32), head_hidden=(16,))
    return MMoE(n_features, tasks, 4, expert_hidden=(32,), tower_hidden=(16,))


def run_one(name: str, seed: int, n: int, epochs: int, patience: int = 3,
            click_rate: float = 0.3) -> dict[str, float]:
    """Train net ``name`` on the log of seed ``seed``; its test metrics."""
    d = make_recommender_tasks(n, click_rate=click_rate, random_state=seed)
    perm = np.random.default_rng(seed).permutation(n)
    n_te = n_va = n // 5
    te, va, tr = perm[:n_te], perm[n_te:n_te + n_va], perm[n_te + n_va:]
    mu, sd = d.X[tr].mean(0), d.X[tr].std(0)
    X = (d.X - mu) / sd
    click, purchase = d.Y[:, 0], d.Y[:, 1]
    if name == "ESMM":
        y = esmm_targets(click, purchase)
    else:
        y = {"click": click, "purchase": purchase}
    set_seed(seed)
    net = build(name, X.shape[1])
    trainer = Trainer(net, lr=3e-3, batch_size=256, max_epochs=epochs, seed=seed,
                      early_stopping=EarlyStopping(patience=patience), device="cpu")
    trainer.fit((X[tr], {k: v[tr] for k, v in y.items()}),
                val=(X[va], {k: v[va] for k, v in y.items()}))
    if name == "ESMM":
        pctr = trainer.predict(X[te])["ctr"]
        pcvr = net.predict_cvr(X[te])
    else:
        pred = trainer.predict(X[te])
        pctr, pcvr = pred["click"], pred["purchase"]
    c, would, true = click[te], d.purchase_if_clicked[te], d.conversion_probability[te]
    seen = c == 1
    return {
        "CVR AUC (all)": roc_auc_score(would, pcvr),
        "CVR rho (all)": spearmanr(pcvr, true).statistic,
        "CVR bias (all)": float(pcvr.mean() - true.mean()),
        "CVR AUC (clicked)": roc_auc_score(purchase[te][seen], pcvr[seen]),
        "CTR AUC": roc_auc_score(c, pctr),
        "CTCVR AUC": roc_auc_score(c * np.where(seen, purchase[te], 0.0), pctr * pcvr),
        "s/epoch": float(trainer.history["time"].mean()),
        "epochs": len(trainer.history),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="impressions (default 20000)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1 (default 3)")
    ap.add_argument("--epochs", type=int, default=30, help="most epochs (default 30)")
    ap.add_argument("--click-rate", type=float, default=0.3,
                    help="expected fraction of impressions clicked (default 0.3)")
    ap.add_argument("--per-seed", action="store_true", help="also print every seed's row")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    header(args)
    t0 = time.perf_counter()
    res = {m: [run_one(m, s, args.n, args.epochs, click_rate=args.click_rate)
               for s in range(args.seeds)] for m in NETS}
    if args.per_seed:
        print(f"{'net':<13} {'seed':>4} " + " ".join(f"{c:>17}" for c in COLUMNS)
              + f" {'epochs':>6}")
        for m in NETS:
            for s, r in enumerate(res[m]):
                print(f"{m:<13} {s:>4} " + " ".join(f"{r[c]:>17.4f}" for c in COLUMNS)
                      + f" {r['epochs']:>6}")
        print()
    print(f"test metrics, mean ± sd over {args.seeds} seeds ({args.n} impressions, click rate "
          f"{args.click_rate:g}, 20% test)")
    print(f"{'net':<13} " + " ".join(f"{c:>17}" for c in COLUMNS))
    for m in NETS:
        v = np.array([[r[c] for c in COLUMNS] for r in res[m]])
        mu, sd = v.mean(0), v.std(0)
        print(f"{m:<13} " + " ".join(f"{a:>8.4f} ± {b:<6.4f}" for a, b in zip(mu, sd,
                                                                          strict=True)))
    base = np.array([[r["CVR AUC (all)"] for r in res["hard sharing"]]])
    for m in ("ESMM", "MMoE"):
        diff = np.array([r["CVR AUC (all)"] for r in res[m]]) - base[0]
        print(f"CVR AUC (all), {m} minus hard sharing, per seed: "
              + " ".join(f"{x:+.4f}" for x in diff))
    print(f"\ntotal wall time: {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
