"""Deep MTL on real images: two handwritten digits side by side, tasks "left" and "right".

The MultiMNIST construction of Sener & Koltun (2018) on scikit-learn's 8 x 8 digits
(:func:`regmtl.datasets.make_two_digit_tasks`: the digit images are split into
training and test images first, then paired within each side, so no test image is seen in
training). Four models, all trained with the Trainer (Adam, lr 3e-3, batches of 128, equal
weighting, ``--epochs`` epochs, no gradient-balance probes):

- hard sharing, conv: ``HardSharing(trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))``, a linear
  head per task on the 64 pooled features (32 channels x left/right);
- MMoE, conv: the same ConvTrunk as the encoder, 4 experts of 64, towers of 32 (the MMoE
  defaults);
- conv per task: two single-task nets, each the hard-sharing conv net with one head (an epoch
  is one epoch of each; its time the sum, its parameters the sum);
- MLP, flat pixels: ``HardSharing(128, hidden=(128, 64))`` on the 128 pixels, no trunk.

Per-task test accuracy: median [min, max] over ``--seeds`` (seed s draws the data, the split,
the initial weights and the batch order; ``--seeds 0`` times only). Seconds per epoch: the
median over ``--repeats`` fits of ``--timing-epochs`` epochs on the seed-0 data (the Trainer's
per-epoch time, training only), each fit in a fresh interpreter; beside it the medians of
that process's peak resident memory ("peak MiB": Python, torch, the data and the fit) and of
its rise during the fit ("fit MiB": above the memory held once torch is imported and the data
built; it includes the kernels and buffers the first fit loads). One BLAS/intra-op thread.

``python bench/bench_deep_vision.py [--seeds 5] [--repeats 3] [--epochs 20]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import regmtl  # noqa: E402
from regmtl.datasets import make_two_digit_tasks  # noqa: E402
from regmtl.deep import ConvTrunk, HardSharing, MMoE, TaskSpec, Trainer, set_seed  # noqa: E402

TASKS = ("left", "right")
MODELS = ("hard sharing, conv", "MMoE, conv", "conv per task", "MLP, flat pixels")
CHANNELS = (16, 32)


def _spec(name: str) -> TaskSpec:
    return TaskSpec(name, kind="multiclass", n_outputs=10)


def _conv(tasks: list[TaskSpec]) -> HardSharing:
    return HardSharing(tasks=tasks, trunk=ConvTrunk(1, CHANNELS, pool=(1, 2)))


def build(model: str, seed: int) -> list[tuple[torch.nn.Module, tuple[str, ...], bool]]:
    """The nets of a model: (net, its tasks, whether it reads flat pixels)."""
    set_seed(seed)
    specs = [_spec(t) for t in TASKS]
    if model == "hard sharing, conv":
        return [(_conv(specs), TASKS, False)]
    if model == "MMoE, conv":
        return [(MMoE(tasks=specs, encoder=ConvTrunk(1, CHANNELS, pool=(1, 2))), TASKS, False)]
    if model == "conv per task":
        return [(_conv([_spec(t)]), (t,), False) for t in TASKS]
    if model == "MLP, flat pixels":
        return [(HardSharing(128, specs, hidden=(128, 64)), TASKS, True)]
    raise ValueError(model)


def _inputs(X: np.ndarray, flat: bool) -> np.ndarray:
    return X.reshape(len(X), -1) if flat else X


def fit(model: str, data, seed: int, epochs: int, args) -> list[tuple[Trainer, tuple, bool]]:
    """Train the model's nets on the training pairs; (trainer, tasks, flat) of each."""
    X, Y = data.X[data.train], data.Y[data.train]
    out = []
    for net, tasks, flat in build(model, seed):
        targets = {t: Y[:, TASKS.index(t)] for t in tasks}
        trainer = Trainer(net, lr=args.lr, batch_size=args.batch_size, max_epochs=epochs,
                          grad_balance=0, seed=seed, device="cpu")
        out.append((trainer.fit((_inputs(X, flat), targets)), tasks, flat))
    return out


def accuracy(fits, data) -> dict[str, float]:
    X, Y = data.X[data.test], data.Y[data.test]
    acc = {}
    for trainer, tasks, flat in fits:
        pred = trainer.predict(_inputs(X, flat))
        for t in tasks:
            acc[t] = float((pred[t].argmax(axis=1) == Y[:, TASKS.index(t)]).mean())
    return acc


def n_params(model: str) -> int:
    return sum(p.numel() for net, _, _ in build(model, 0) for p in net.parameters())


def _kib(key: str) -> int:
    """A line of /proc/self/status (VmRSS: resident now; VmHWM: its peak), in KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def timed_fit(model: str, args) -> dict:
    """One timing fit, run in a fresh process (``--child``): seconds per epoch (the median
    epoch of each net, summed over the nets), the process's peak resident memory, and its
    rise during the fit above the memory held once torch is imported and the data built."""
    data = make_two_digit_tasks(args.n_train, args.n_test, random_state=0)
    before = _kib("VmRSS")
    fits = fit(model, data, 0, args.timing_epochs, args)
    peak = _kib("VmHWM")
    per_epoch = sum(float(np.median(tr.history["time"])) for tr, _, _ in fits)
    return {"s_per_epoch": per_epoch, "peak_kib": peak, "fit_kib": peak - before}


def run_child(model: str, args) -> dict:
    """:func:`timed_fit` in a new interpreter, one thread."""
    cmd = [sys.executable, __file__, "--child", model]
    for key in ("timing_epochs", "n_train", "n_test", "lr", "batch_size"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds of the accuracy runs")
    ap.add_argument("--repeats", type=int, default=3, help="timing fits per model")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the accuracy runs")
    ap.add_argument("--timing-epochs", type=int, default=3, help="epochs of a timing fit")
    ap.add_argument("--n-train", type=int, default=4000, help="training pairs")
    ap.add_argument("--n-test", type=int, default=1000, help="test pairs")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.child:
        print(json.dumps(timed_fit(args.child, args)))
        return
    print(f"regmtl {regmtl.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}, 1 intra-op thread")
    data0 = make_two_digit_tasks(args.n_train, args.n_test, random_state=0)
    print(f"Two digits side by side (8 x 16): {args.n_train} training pairs of "
          f"{len(data0.train_images)} digit images, {args.n_test} test pairs of "
          f"{len(data0.test_images)} other images; {args.epochs} epochs, Adam lr {args.lr:g}, "
          f"batch {args.batch_size}")

    accs: dict[str, list[dict[str, float]]] = {m: [] for m in MODELS}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        data = data0 if seed == 0 else make_two_digit_tasks(args.n_train, args.n_test,
                                                            random_state=seed)
        for m in MODELS:
            accs[m].append(accuracy(fit(m, data, seed, args.epochs, args), data))
        print(f"  seed {seed}: " + "; ".join(
            f"{m} " + "/".join(f"{accs[m][-1][t]:.3f}" for t in TASKS) for m in MODELS),
            flush=True)
    print(f"  ({time.perf_counter() - t0:.0f} s for the accuracy runs)")

    timing = {}
    for m in MODELS:
        runs = [run_child(m, args) for _ in range(args.repeats)]
        timing[m] = (statistics.median(r["s_per_epoch"] for r in runs),
                     statistics.median(r["peak_kib"] for r in runs) / 1024,
                     statistics.median(r["fit_kib"] for r in runs) / 1024)

    ref_time = timing[MODELS[0]][0]
    print()
    print(f"Per-task test accuracy, median [min, max] over {args.seeds} seeds; s/epoch and "
          f"memory: medians of {args.repeats} fits ({args.timing_epochs} epochs each, a fresh "
          "process each)")
    head = (f"{'model':<20} {'params':>7} {'left':>21} {'right':>21} {'mean':>6} "
            f"{'s/epoch':>8} {'x hard':>6} {'peak MiB':>8} {'fit MiB':>7}")
    print(head)
    print("-" * len(head))
    for m in MODELS:
        cells = []
        for t in TASKS:
            a = [r[t] for r in accs[m]]
            cells.append(f"{statistics.median(a):.3f} [{min(a):.3f}, {max(a):.3f}]" if a
                         else "-")
        mean = (f"{statistics.median([(r['left'] + r['right']) / 2 for r in accs[m]]):.3f}"
                if accs[m] else "-")
        sec, peak, rise = timing[m]
        print(f"{m:<20} {n_params(m):>7} {cells[0]:>21} {cells[1]:>21} {mean:>6} "
              f"{sec:>8.3f} {sec / ref_time:>6.2f} {peak:>8.0f} {rise:>+7.1f}")
    if args.seeds:
        gap = [(a["left"] + a["right"] - b["left"] - b["right"]) / 2
               for a, b in zip(accs[MODELS[0]], accs[MODELS[3]], strict=True)]
        print("hard sharing conv minus MLP (mean of the tasks), per seed: "
              + ", ".join(f"{g:+.3f}" for g in gap))

if __name__ == "__main__":
    main()
