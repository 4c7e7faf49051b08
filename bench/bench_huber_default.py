"""Benchmark: the Huber loss's default delta, by held-out error, beside the peers' conventions.

Each task's rows are split 3 : 1 at random (seed 0); an L2,1 CV (12 alphas, 3 folds) is
fitted on the training rows with each delta, and the held-out rows are scored by their mean
absolute and root mean squared error. The deltas: 1.35 in the targets' units (regmtl's
default before), hqreg's IQR(y) / 10, scikit-learn's ``HuberRegressor`` convention (epsilon
1.35 times the scale it fits jointly, here on the pooled training rows), ``Huber()`` (1.35
robust scales: 1.4826 times the median absolute deviation from each task's median), and the
squared loss. Each row also gives the CV's seconds and the share of the training rows on the
linear pieces at the chosen fit.

Data: School (shipped); Parkinson's telemonitoring (motor UPDRS, 42 patients, features
standardized) from ``../shared/data`` where present, as it is and with a tenth of the
training targets moved by 60 (gross outliers, the case Huber is for).

Run ``python bench/bench_huber_default.py [--sets school parkinsons outliers]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def _set(name: str):
    import regmtl as rm

    if name == "school":
        school = rm.datasets.load_school()
        return list(school.X), list(school.y)
    if not (DATA / "parkinsons_telemonitoring").exists():
        return None
    from sklearn.preprocessing import StandardScaler

    park = rm.datasets.load_parkinsons(DATA)
    scaler = StandardScaler().fit(np.vstack(park.X))
    return [scaler.transform(X) for X in park.X], list(park.y)


def _split(Xs, ys, outliers: bool):
    rng = np.random.default_rng(0)
    keep = [rng.random(len(y)) < 0.75 for y in ys]
    train = ([X[m] for X, m in zip(Xs, keep, strict=True)],
             [y[m].copy() for y, m in zip(ys, keep, strict=True)])
    test = ([X[~m] for X, m in zip(Xs, keep, strict=True)],
            [y[~m] for y, m in zip(ys, keep, strict=True)])
    if outliers:
        for y in train[1]:
            moved = rng.random(len(y)) < 0.1
            y[moved] += rng.choice([-1.0, 1.0], moved.sum()) * 60.0
    return train, test


def _deltas(Xs, ys) -> dict:
    from sklearn.linear_model import HuberRegressor

    import regmtl as rm

    pooled = np.concatenate(ys)
    q75, q25 = np.percentile(pooled, [75, 25])
    joint = HuberRegressor(max_iter=1000).fit(np.vstack(Xs), pooled).scale_
    return {"1.35 in target units": 1.35, "IQR(y) / 10 (hqreg)": (q75 - q25) / 10,
            "1.35 x jointly fitted scale": 1.35 * joint,
            "Huber() (1.35 x MAD)": rm.Huber().bind(rm.as_task_data(Xs, ys)).delta,
            "squared loss": None}


def main() -> None:
    import regmtl as rm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["school", "parkinsons", "outliers"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.sets:
        found = _set("school" if name == "school" else "parkinsons")
        if found is None:
            print(f"{name}: ../shared/data/parkinsons_telemonitoring is absent, skipped")
            continue
        (Xtr, ytr), (Xte, yte) = _split(*found, outliers=name == "outliers")
        print(f"\n{name}: {len(Xtr)} tasks, {sum(map(len, ytr))} training rows")
        print(f"{'delta':30s} {'value':>8s} {'CV s':>7s} {'MAE':>8s} {'RMSE':>8s} {'linear':>7s}")
        for label, delta in _deltas(Xtr, ytr).items():
            kw = {} if delta is None else {"loss": rm.Huber(delta)}
            t0 = time.perf_counter()
            model = rm.MultiTaskRegressorCV("l21", alphas=12, cv=3, **kw).fit(Xtr, ytr)
            seconds = time.perf_counter() - t0
            r = np.concatenate([y - X @ model.coef_[t] - model.intercept_[t]
                                for t, (X, y) in enumerate(zip(Xte, yte, strict=True))])
            fit_r = np.concatenate([y - X @ model.coef_[t] - model.intercept_[t]
                                    for t, (X, y) in enumerate(zip(Xtr, ytr, strict=True))])
            linear = float(np.mean(np.abs(fit_r) > delta)) if delta is not None else 0.0
            shown = "-" if delta is None else f"{delta:.3g}"
            print(f"{label:30s} {shown:>8s} {seconds:7.2f} {np.abs(r).mean():8.4f} "
                  f"{np.sqrt(np.mean(r * r)):8.4f} {linear:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
