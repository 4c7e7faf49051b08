"""Is ``regmtl.transfer``'s default strength (``alpha="auto"``) the better choice?

Compares, on the same new-task draws, the test MSE of ``alpha="auto"`` (the default), of the
model's strength carried alone (``alpha="model"``, the default before it chose), of
``alpha="cv"`` (leave-one-out over a 46-value grid) and of the new task fitted alone.

Synthetic: ``make_multitask_regression`` (shared support, 60 features, relatedness 0.8),
9 old tasks of ``n_t`` rows and a new task with 12 training rows (``--draws`` draws, 600 test
rows); the model is ``MultiTaskRegressorCV(penalty)``; one seed = new data and model.
School: 20 held-out schools (one seed = one split), the model fitted on the others' rows
(z-scored), each new school given n = 5, 10, 20, 40 rows (``--repeats`` draws), as
:func:`regmtl.transfer_curve.transfer_curve` does.

Per setting and seed the draws' test MSEs are averaged; the table gives, over seeds, the
median and worst (max) ratio auto / cv, the median ratio auto / single-task and model / cv.

Run: ``OPENBLAS_NUM_THREADS=1 python scripts/transfer_default.py [--seeds 5] [--quick]``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datasets import load_school, make_multitask_regression  # noqa: E402
from regmtl.scaling import pooled_scaling, standardize  # noqa: E402
from regmtl.transfer_curve import split_tasks  # noqa: E402

MODES = {"auto": {}, "model": {"alpha": "model"}, "cv": {"alpha": "cv"},
         "single": {"strategy": "single", "alpha": "cv"}}


def _mses(model, X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> dict:
    """Test MSE of every mode on one draw."""
    out = {}
    for name, kw in MODES.items():
        pred = rm.transfer(model, X, y, **kw).predict(Xt)
        out[name] = float(np.mean((pred - yt) ** 2))
    return out


def synthetic_seed(penalty: str, n_t: int, seed: int, n_new: int = 12, draws: int = 3,
                   noise: float = 0.1) -> dict:
    """Mean test MSE per mode over ``draws`` new-task draws, for one seed."""
    d = make_multitask_regression(10, [n_t] * 9 + [n_new * draws + 600], 60,
                                  structure="shared_support", n_informative=10,
                                  relatedness=0.8, noise=noise, random_state=seed)
    model = rm.MultiTaskRegressorCV(penalty, alphas=12, cv=3, random_state=0).fit(
        d.X[:9], d.y[:9])
    X, y = d.X[9], d.y[9]
    Xt, yt = X[n_new * draws:], y[n_new * draws:]
    rows = [_mses(model, X[r * n_new:(r + 1) * n_new], y[r * n_new:(r + 1) * n_new], Xt, yt)
            for r in range(draws)]
    return pd.DataFrame(rows).mean().to_dict()


def school_seed(penalty: str, seed: int, sizes=(5, 10, 20, 40), new_tasks: int = 20,
                repeats: int = 2, min_test: int = 10) -> dict[int, dict]:
    """Per n: mean test MSE per mode over the held-out schools' draws, for one split."""
    school = load_school()
    Xs = [np.asarray(x, dtype=np.float64) for x in school.X]
    ys = [np.asarray(v, dtype=np.float64) for v in school.y]
    old, new = split_tasks(len(Xs), new_tasks, seed)
    mean, scale = pooled_scaling([Xs[t] for t in old])
    model = rm.MultiTaskRegressorCV(penalty, alphas=12, cv=3, random_state=seed).fit(
        standardize([Xs[t] for t in old], mean, scale), [ys[t] for t in old])
    out = {}
    for n in sizes:
        rows = []
        for t in new:
            Z, y = standardize([Xs[t]], mean, scale)[0], ys[t]
            if len(y) < n + min_test:
                continue
            for r in range(repeats):
                perm = np.random.default_rng([seed, int(t), n, r]).permutation(len(y))
                tr, te = perm[:n], perm[n:]
                rows.append(_mses(model, Z[tr], y[tr], Z[te], y[te]))
        out[n] = pd.DataFrame(rows).mean().to_dict()
    return out


def summarize(per_seed: list[dict]) -> dict:
    """Median / worst ratios over seeds."""
    f = pd.DataFrame(per_seed)
    r = f["auto"] / f["cv"]
    return {"auto/cv median": r.median(), "auto/cv worst": r.max(),
            "auto/cv wins": float(np.mean(r <= 1.0)),
            "auto/single median": (f["auto"] / f["single"]).median(),
            "model/cv median": (f["model"] / f["cv"]).median(),
            "model/cv worst": (f["model"] / f["cv"]).max()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--draws", type=int, default=3, help="synthetic new-task draws per seed")
    ap.add_argument("--repeats", type=int, default=2, help="School draws per school and n")
    ap.add_argument("--noise", type=float, default=0.1, help="synthetic noise sd")
    ap.add_argument("--penalties", default="l1,l21,trace,mean")
    ap.add_argument("--skip-school", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    pens = args.penalties.split(",")
    seeds = range(args.seeds)
    table = []
    if not args.skip_synthetic:
        for pen in pens:
            for n_t in (50, 300):
                per = [synthetic_seed(pen, n_t, s, draws=args.draws, noise=args.noise)
                       for s in seeds]
                table.append({"data": f"synthetic n_t={n_t}", "model": pen, "n_new": 12,
                              **summarize(per)})
                print(f"synthetic {pen} n_t={n_t} done", flush=True)
    if not args.skip_school:
        for pen in pens:
            per = [school_seed(pen, s, repeats=args.repeats) for s in seeds]
            for n in per[0]:
                table.append({"data": "School", "model": pen, "n_new": n,
                              **summarize([p[n] for p in per])})
            print(f"School {pen} done", flush=True)
    print()
    print(pd.DataFrame(table).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
