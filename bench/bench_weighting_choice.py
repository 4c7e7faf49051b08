"""Which weighting, on real runs: every registered task weighting on three problems.

Each method of :data:`regmtl.deep.WEIGHTINGS` (but ``"fixed"``, which is equal weighting with
weights the user gives) trains the same net from the same seed on:

- **recommender**: :func:`regmtl.datasets.make_recommender_tasks` (``--n`` impressions of 100
  items to 200 users; 28 dense features, standardized on the training rows), MMoE (4 experts of
  32, towers 16) with the tasks click (every impression) and purchase (the clicked impressions;
  NaN elsewhere, so missing labels), Adam lr 3e-3, batches of 512. Metrics: click AUC on every
  test impression, purchase AUC on the clicked ones.
- **digits**: :func:`regmtl.datasets.make_two_digit_tasks` (two real 8 x 8 digits side by side,
  one task per side), hard sharing on ``ConvTrunk(1, (16, 32), pool=(1, 2))``, Adam lr 3e-3,
  batches of 128. Metrics: test accuracy of the left and the right digit.
- **school**: the School data (139 schools, one task each), first fixed split,
  ``DeepMultiTaskRegressor(weighting=...)`` at its defaults (early stopping on 10% of the
  rows) but ``max_epochs``. Metrics: explained variance of all test rows and the median over
  schools of the school's R^2; with 139 tasks the gradient methods take 139 backward passes per
  step, which the time column shows.

Every run is a forked child (:func:`_isolate.call_with_limit`, ``--limit`` seconds); a method
that fails or runs out of time is printed with the reason. Printed per problem: each metric
(median over ``--seeds``), seconds per epoch (median of the epochs' training time), its ratio
to equal weighting, and the peak resident memory the fit added. One torch / BLAS thread.

``python bench/bench_weighting_choice.py [--problems recommender,digits,school] [--seeds 1]
[--epochs 6] [--methods equal,mgda,...]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _isolate import OverBudget, call_with_limit  # noqa: E402
from _memory import rss_peak_increase  # noqa: E402
from sklearn.metrics import explained_variance_score, r2_score, roc_auc_score  # noqa: E402

import regmtl  # noqa: E402
from regmtl.datasets import (  # noqa: E402
    apply_split,
    load_school,
    make_recommender_tasks,
    make_two_digit_tasks,
)
from regmtl.deep import (  # noqa: E402
    WEIGHTINGS,
    ConvTrunk,
    DeepMultiTaskRegressor,
    HardSharing,
    MMoE,
    TaskSpec,
    Trainer,
    set_seed,
)

PROBLEMS = {
    "recommender": ("click AUC", "purchase AUC"),
    "digits": ("left acc", "right acc"),
    "school": ("EV", "median school R2"),
}


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: n // 5], perm[n // 5:]


def recommender(method: str, seed: int, args) -> dict[str, float]:
    """MMoE on the dense features; click and purchase (missing where not clicked)."""
    d = make_recommender_tasks(args.n, 200, 100, n_categories=10, random_state=seed)
    te, tr = _split(args.n, seed)
    X = ((d.X - d.X[tr].mean(0)) / d.X[tr].std(0)).astype(np.float32)
    click, purchase = d.Y[:, 0], d.Y[:, 1]
    set_seed(seed)
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary")]
    net = MMoE(X.shape[1], tasks=tasks, n_experts=4, expert_hidden=(32,), tower_hidden=(16,))
    trainer = Trainer(net, weighting=method, lr=3e-3, batch_size=512, max_epochs=args.epochs,
                      seed=seed, grad_balance=0, device="cpu")
    _, peak = rss_peak_increase(
        lambda: trainer.fit((X[tr], {"click": click[tr], "purchase": purchase[tr]})))
    pred = trainer.predict(X[te])
    seen = click[te] == 1
    return {"click AUC": roc_auc_score(click[te], pred["click"]),
            "purchase AUC": roc_auc_score(purchase[te][seen], pred["purchase"][seen]),
            "s/epoch": float(trainer.history["time"].median()), "peak MiB": peak / 2**20}


def digits(method: str, seed: int, args) -> dict[str, float]:
    """Hard sharing on a conv trunk; the left and the right digit."""
    d = make_two_digit_tasks(random_state=seed)
    set_seed(seed)
    tasks = [TaskSpec(name, kind="multiclass", n_outputs=10) for name in ("left", "right")]
    net = HardSharing(tasks=tasks, trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))
    trainer = Trainer(net, weighting=method, lr=3e-3, batch_size=128, max_epochs=args.epochs,
                      seed=seed, grad_balance=0, device="cpu")
    X, Y = d.X[d.train], d.Y[d.train]
    _, peak = rss_peak_increase(
        lambda: trainer.fit((X, {name: Y[:, i] for i, name in enumerate(("left", "right"))})))
    pred = trainer.predict(d.X[d.test])
    out = {f"{name} acc": float(np.mean(np.asarray(pred[name]).argmax(1) == d.Y[d.test, i]))
           for i, name in enumerate(("left", "right"))}
    out.update({"s/epoch": float(trainer.history["time"].median()), "peak MiB": peak / 2**20})
    return out


def school(method: str, seed: int, args) -> dict[str, float]:
    """The deep regressor at its defaults; School's first fixed split."""
    data = load_school()
    Xtr, Xte, ytr, yte = apply_split(data.X, data.y, data.splits[0])
    est = DeepMultiTaskRegressor(weighting=method, random_state=seed, max_epochs=args.epochs,
                                 device="cpu")
    _, peak = rss_peak_increase(lambda: est.fit(Xtr, ytr))
    pred = est.predict(Xte)
    return {"EV": explained_variance_score(np.concatenate(yte), np.concatenate(pred)),
            "median school R2": float(np.median([r2_score(y, p) for y, p in
                                                 zip(yte, pred, strict=True) if len(y) > 1])),
            "s/epoch": float(est.history_["time"].median()), "peak MiB": peak / 2**20}


RUNS = {"recommender": recommender, "digits": digits, "school": school}


def run(problem: str, method: str, args) -> dict[str, float] | str:
    """Median metrics over the seeds, or the reason the method gave none."""
    rows = []
    for seed in range(args.seeds):
        try:
            rows.append(call_with_limit(lambda s=seed: RUNS[problem](method, s, args),
                                        args.limit))
        except OverBudget as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - printed in the table
            return f"{type(exc).__name__}: {str(exc)[:70]}"
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--methods", default=",".join(k for k in WEIGHTINGS if k != "fixed"))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n", type=int, default=30000, help="recommender impressions")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds per fit")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"regmtl {regmtl.__version__}, torch {torch.__version__}, {platform.machine()}, "
          f"one thread; {args.seeds} seed(s), {args.epochs} epochs")
    for problem in args.problems.split(","):
        metrics = PROBLEMS[problem]
        results = {m: run(problem, m, args) for m in args.methods.split(",")}
        base = results.get("equal")
        print(f"\n{problem}")
        print(f"{'method':<14}" + "".join(f"{m:>18}" for m in metrics)
              + f"{'s/epoch':>10}{'x equal':>9}{'peak MiB':>10}")
        for method, r in results.items():
            if isinstance(r, str):
                print(f"{method:<14}  {r}")
                continue
            ratio = (r["s/epoch"] / base["s/epoch"] if isinstance(base, dict) else float("nan"))
            print(f"{method:<14}" + "".join(f"{r[m]:>18.4f}" for m in metrics)
                  + f"{r['s/epoch']:>10.3f}{ratio:>9.2f}{r['peak MiB']:>10.1f}")


if __name__ == "__main__":
    main()
