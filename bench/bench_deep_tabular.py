"""Tabular deep MTL with no arguments: ``DeepMultiTaskRegressor()`` on School and Parkinsons.

School (139 schools, 15,362 students): the 10 fixed splits of Argyriou et al., the deep
regressor seeded ``s`` on split ``s``. Parkinsons telemonitoring (42 patients): ``--splits``
random 75/25 splits per patient (``train_test_split_per_task``, seed ``s``); skipped when the
data are not in ``../shared/data`` (or ``REGMTL_DATA``). Beside it, regmtl's linear models with
alpha chosen by 5-fold CV: one alpha ridge (``"l2"``), L2,1 and mean-regularized.

Printed per model: explained variance over all test rows (median, min, max over the splits),
the median over tasks of each task's R^2, seconds to fit, seconds per epoch (deep), and the
peak resident memory the fit added. One BLAS / intra-op thread.

``python bench/bench_deep_tabular.py [--splits 10] [--data ../shared/data]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _memory import rss_peak_increase
from sklearn.metrics import explained_variance_score, r2_score
from threadpoolctl import threadpool_limits

import regmtl
from regmtl.datasets import apply_split, load_parkinsons, load_school, train_test_split_per_task
from regmtl.deep import DeepMultiTaskRegressor


def _models(seed: int) -> dict:
    return {
        "deep, defaults": DeepMultiTaskRegressor(random_state=seed),
        "ridge (l2), CV": regmtl.MultiTaskRegressorCV("l2"),
        "L2,1, CV": regmtl.MultiTaskRegressorCV("l21"),
        "mean-regularized, CV": regmtl.MultiTaskRegressorCV("mean"),
    }


def _run(name: str, splits) -> None:
    rows: dict[str, list] = {}
    for s, (Xtr, Xte, ytr, yte) in enumerate(splits):
        for model, est in _models(s).items():
            t0 = time.perf_counter()
            _, peak = rss_peak_increase(lambda e=est, X=Xtr, y=ytr: e.fit(X, y))
            sec = time.perf_counter() - t0
            pred = est.predict(Xte)
            ev = explained_variance_score(np.concatenate(yte), np.concatenate(pred))
            task_r2 = statistics.median(r2_score(y, p) for y, p in zip(yte, pred, strict=True)
                                        if len(y) > 1)
            epochs = getattr(est, "n_iter_", None) if model.startswith("deep") else None
            rows.setdefault(model, []).append((ev, task_r2, sec, epochs, peak))
    print(f"\n{name} ({len(splits)} splits)")
    print(f"{'model':<22}{'EV median':>10}{'min':>8}{'max':>8}{'task R2':>9}{'fit s':>8}"
          f"{'s/epoch':>9}{'peak MiB':>10}")
    for model, r in rows.items():
        ev = [x[0] for x in r]
        per_epoch = ([x[2] / x[3] for x in r] if r[0][3] else None)
        print(f"{model:<22}{statistics.median(ev):>10.3f}{min(ev):>8.3f}{max(ev):>8.3f}"
              f"{statistics.median(x[1] for x in r):>9.3f}"
              f"{statistics.median(x[2] for x in r):>8.2f}"
              f"{statistics.median(per_epoch) if per_epoch else float('nan'):>9.3f}"
              f"{statistics.median(x[4] for x in r) / 2**20:>10.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1, user_api="blas")
    school = load_school()
    _run("School", [apply_split(school.X, school.y, school.splits[s])
                    for s in range(min(args.splits, len(school.splits)))])
    try:
        park = load_parkinsons(data_home=args.data)
    except FileNotFoundError:
        print(f"\nParkinsons: not found under {args.data}; skipped.")
        return
    _run("Parkinsons", [train_test_split_per_task(park.X, park.y, random_state=s)
                        for s in range(args.splits)])


if __name__ == "__main__":
    main()
