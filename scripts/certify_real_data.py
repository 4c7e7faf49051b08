"""Certify regularization paths on every real data set: the table of issue 17.

For every data set that ships or sits in the data folder, every penalty with an ``alpha_max``
and the loss that fits the data: an ``n_alphas`` path from ``alpha_max`` to
``alpha_max / 1000`` with the default ``tol`` and ``max_iter`` on standardized features, and
the number of points whose certificate meets ``tol``, the epochs of the whole path and the
most at one point (near the 1000 of ``max_iter``: certified or not by the machine's rounding).

    python scripts/certify_real_data.py [--data-home ../shared/data] [--n-alphas 8]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import regmtl as rm
from regmtl.datasets import list_datasets, load_dataset
from regmtl.scaling import pooled_scaling, standardize

PENALTIES = ("l1", "l21", "elasticnet", "trace", "dirty", "sparse_lowrank")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-home", default="../shared/data")
    ap.add_argument("--n-alphas", type=int, default=8)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--penalties", nargs="*", default=PENALTIES)
    args = ap.parse_args()
    names = args.only or list(list_datasets()["name"])
    total = ok = 0
    print(f"{'data':24s} {'loss':9s} {'penalty':15s} certified  worst gap   epochs  most   s")
    for name in names:
        try:
            # sets with missing features (mulan's osales): mean-imputed, as a user would
            kw = {"missing": "mean"} if name.startswith("mulan/") else {}
            d = load_dataset(name, data_home=args.data_home, **kw)
        except Exception as exc:  # noqa: BLE001 - a missing file skips the set
            print(f"{name:24s} skipped: {str(exc)[:60]}")
            continue
        mean, scale = pooled_scaling(d.X)
        Xs = standardize(d.X, mean, scale)
        loss = "logistic" if d.kind == "binary" else "squared"
        for pen in args.penalties:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = rm.regularization_path(Xs, d.y, penalty=pen, loss=loss,
                                              alphas=args.n_alphas, eps=1e-3)
            n_ok = int(path.converged.sum())
            total += len(path.alphas)
            ok += n_ok
            print(f"{name:24s} {loss:9s} {pen:15s} {n_ok:3d}/{len(path.alphas):<3d}   "
                  f"{np.max(path.certificates):9.2e} {int(path.n_iter.sum()):7d} "
                  f"{int(path.n_iter.max()):5d} "
                  f"{time.perf_counter() - t0:6.1f}", flush=True)
    print(f"certified {ok}/{total}")


if __name__ == "__main__":
    main()
