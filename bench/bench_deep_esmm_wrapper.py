"""ESMM from the scikit-learn wrapper against the Trainer's ESMM: seconds per epoch.

On :func:`regmtl.datasets.make_recommender_tasks` (``--n`` impressions, default 20000), the
same net (bottom 64-32, towers 16), the same Adam (lr 3e-3), batches of 256, ``--epochs``
epochs, no early stopping, one process:

- wrapper: ``DeepESMMClassifier(...).fit(X, y)`` with ``y`` the (click, purchase) columns as
  the generator gives them (purchase NaN where not clicked); its time includes what it does
  before training (checking the pair, the labels, standardizing ``X``);
- Trainer: what a Trainer user writes for the same fit: ``esmm_targets(click, purchase)``,
  ``X`` standardized, ``ESMM(...)`` and ``Trainer(...).fit``, all timed.

Both are seeded alike (the wrapper's seed drawn from ``random_state`` as it does), so they run
the same steps on the same batches (the test ``tests/deep/test_deep_esmm_wrapper.py`` checks their
predictions agree). Times are CPU seconds of the process (``time.process_time``; one
BLAS/intra-op thread) divided by the epochs; the two alternate within each of ``--repeats``
repeats (the order flips every repeat), and the table gives the medians and the median of
the paired ratios wrapper / Trainer; beside them, the median of the epochs' own wall times
in the history (``time``: the training loop alone, both the same code).

``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/bench_deep_esmm_wrapper.py
[--n 20000] [--epochs 5] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

import regmtl
from regmtl.datasets import make_recommender_tasks
from regmtl.deep import ESMM, DeepESMMClassifier, TaskSpec, Trainer, esmm_targets, set_seed

HIDDEN, TOWER, LR, BATCH = (64, 32), (16,), 3e-3, 256


def wrapper_fit(X: np.ndarray, y: np.ndarray, epochs: int) -> DeepESMMClassifier:
    return DeepESMMClassifier(hidden=HIDDEN, tower_hidden=TOWER, lr=LR, batch_size=BATCH,
                              max_epochs=epochs, early_stopping=False, random_state=0,
                              device="cpu").fit(X, y)


def trainer_fit(X: np.ndarray, y: np.ndarray, epochs: int) -> Trainer:
    seed = int(np.random.default_rng(0).integers(2**31))  # the wrapper's, from random_state=0
    labels = esmm_targets(y[:, 0], y[:, 1])
    Xs = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    set_seed(seed)
    net = ESMM(X.shape[1], [TaskSpec("ctr", kind="binary"), TaskSpec("ctcvr", kind="binary")],
               hidden=HIDDEN, tower_hidden=TOWER)
    return Trainer(net, lr=LR, batch_size=BATCH, max_epochs=epochs, device="cpu",
                   distributed=False, seed=seed).fit((Xs, labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from _harness import _source

    print(f"regmtl ESMM wrapper vs Trainer (bench/bench_deep_esmm_wrapper.py --n {args.n} "
          f"--epochs {args.epochs} --repeats {args.repeats})")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
          f"{platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op thread)")
    print(f"regmtl {regmtl.__version__}: {_source(regmtl)}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    d = make_recommender_tasks(args.n, random_state=0)
    X, y = d.X, d.Y[:, :2]
    runs = {"wrapper": wrapper_fit, "Trainer": trainer_fit}
    runs["Trainer"](X, y, 1)  # warm-up (imports, first allocations)
    times: dict[str, list[float]] = {k: [] for k in runs}
    epochs: dict[str, list[float]] = {k: [] for k in runs}  # the history's epoch times
    fitted = {}
    for r in range(args.repeats):
        for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
            t0 = time.process_time()
            fitted[name] = runs[name](X, y, args.epochs)
            times[name].append((time.process_time() - t0) / args.epochs)
            hist = getattr(fitted[name], "history_", None)
            hist = fitted[name].history if hist is None else hist
            epochs[name] += hist["time"].tolist()
    p_wrapper = fitted["wrapper"].predict_proba(X)
    p_trainer = fitted["Trainer"].predict(((X - X.mean(0)) / X.std(0)).astype(np.float32))
    gap = max(float(np.abs(p_wrapper[:, 0] - p_trainer["ctr"]).max()),
              float(np.abs(p_wrapper[:, 2] - p_trainer["ctcvr"]).max()))
    ratio = statistics.median(a / b for a, b in zip(times["wrapper"], times["Trainer"],
                                                    strict=True))
    print(f"\n  {args.n} impressions, {X.shape[1]} features, click rate "
          f"{np.mean(y[:, 0]):.3f}, purchase rate {np.nanmean(np.nan_to_num(y[:, 1])):.4f}")
    print(f"  {'':<10} {'fit CPU s/epoch':>16} {'epoch wall s':>13}   fit CPU s/epoch, each run")
    for name, v in times.items():
        print(f"  {name:<10} {statistics.median(v):>16.4f} "
              f"{statistics.median(epochs[name]):>13.4f}   {' '.join(f'{t:.4f}' for t in v)}")
    print(f"  ratio wrapper / Trainer, fit CPU s/epoch (median of paired ratios): {ratio:.3f}; "
          f"epoch wall s (medians): "
          f"{statistics.median(epochs['wrapper']) / statistics.median(epochs['Trainer']):.3f}")
    print(f"  largest difference of pCTR, pCTCVR between the two fits: {gap:.2e}")


if __name__ == "__main__":
    main()
