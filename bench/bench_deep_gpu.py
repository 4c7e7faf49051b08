"""The deep half on the CPU and on a CUDA GPU, one script: epoch times and quality side by side.

Every row trains the same net on the same data from the same initial weights, on each device
and precision present:

- **School** (139 tasks, 15,362 pupils; split 0): hard sharing 64 over the 27 inputs, a head
  per school, Adam lr 1e-3, batches of ``--school-batch``, ``--epochs`` epochs; the pooled test
  explained variance. Then ``DeepMultiTaskRegressor()`` with its defaults (early stopping on
  its own validation split): epochs run, seconds per epoch, explained variance.
- **Two digits** (:func:`regmtl.datasets.make_two_digit_tasks`, 8 x 16 images, tasks "left"
  and "right"): hard sharing on ``ConvTrunk(1, (16, 32))``, Adam lr 3e-3, batches of
  ``--digits-batch``; the mean test accuracy of the two tasks.
- **Many tasks, lazy heads**: ``--tasks`` tasks of 20 rows each over 32 features, hard sharing
  64, a head per task updated by the lazy Adam (``lazy_heads=True``); seconds per epoch.

Devices and precisions: the CPU with every core (``torch.get_num_threads()``), CUDA in float32
(``amp=False``), CUDA with automatic mixed precision (``amp=True``). Seconds per epoch: the
median of the epochs after the first (the first holds CUDA's start-up: kernels, allocator);
rows/s from it. With ``--ddp`` the digits row is run once more under ``torchrun`` in one
process (``distributed=True``: NCCL on CUDA, gloo on the CPU), and its final weights are
compared with the one-process fit's.

``python bench/bench_deep_gpu.py [--epochs 8] [--ddp]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import regmtl
from regmtl.datasets import apply_split, load_school, make_two_digit_tasks
from regmtl.deep import (
    ConvTrunk,
    DeepMultiTaskRegressor,
    HardSharing,
    TaskSpec,
    Trainer,
    set_seed,
)
from regmtl.metrics import explained_variance

WIDTH = 100


def settings() -> list[tuple[str, str, bool]]:
    """(label, device, amp) of every device and precision present."""
    out = [(f"CPU ({torch.get_num_threads()} threads)", "cpu", False)]
    if torch.cuda.is_available():
        out += [("CUDA float32", "cuda", False), ("CUDA AMP", "cuda", True)]
    return out


def per_epoch(trainer: Trainer) -> float:
    times = trainer.history["time"].to_numpy()
    return float(np.median(times[1:] if len(times) > 1 else times))


def school_data():
    d = load_school()
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, d.splits[0])
    stack = np.vstack(Xtr)
    mu, sd = stack.mean(0), stack.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    Xtr = [((x - mu) / sd).astype(np.float32) for x in Xtr]
    Xte = [((x - mu) / sd).astype(np.float32) for x in Xte]
    return Xtr, Xte, ytr, yte


def school_rows(args, Xtr, Xte, ytr, yte) -> list[dict]:
    T = len(ytr)
    X = np.vstack(Xtr)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ytr)])
    y = np.concatenate(ytr).astype(np.float64)
    names = [f"s{t}" for t in range(T)]
    rows = []
    for label, device, amp in settings():
        set_seed(0)
        net = HardSharing(X.shape[1], [TaskSpec(n) for n in names], (64,))
        tr = Trainer(net, batch_size=args.school_batch, max_epochs=args.epochs, grad_balance=0,
                     seed=0, device=device, amp=amp, dominance=None)
        tr.fit((X, (task, y)))
        te_task = np.concatenate([np.full(len(x), t) for t, x in enumerate(Xte)])
        flat = tr.predict(np.vstack(Xte), task=te_task)
        preds = np.split(flat, np.cumsum([len(x) for x in Xte])[:-1])
        sec = per_epoch(tr)
        rows.append({"case": "School, hard sharing", "setting": label, "s_epoch": sec,
                     "rows_s": len(X) / sec,
                     "quality": f"EV {explained_variance(yte, preds, average='pooled'):.4f}"})
    for label, device, amp in settings():
        if amp:
            continue
        set_seed(0)
        m = DeepMultiTaskRegressor(random_state=0, device=device)
        t0 = time.perf_counter()
        m.fit(Xtr, ytr)
        wall = time.perf_counter() - t0
        ev = explained_variance(yte, m.predict(Xte), average="pooled")
        rows.append({"case": "School, DeepMultiTaskRegressor()", "setting": label,
                     "s_epoch": wall / len(m.history_), "rows_s": float("nan"),
                     "quality": f"EV {ev:.4f} ({len(m.history_)} epochs, {wall:.1f} s)"})
    return rows


def digits_fit(args, device: str, amp: bool, distributed: bool = False):
    data = make_two_digit_tasks(args.n_train, args.n_test, random_state=0)
    tasks = ("left", "right")
    set_seed(0)
    net = HardSharing(tasks=[TaskSpec(t, kind="multiclass", n_outputs=10) for t in tasks],
                      trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))
    X, Y = data.X[data.train], data.Y[data.train]
    tr = Trainer(net, lr=3e-3, batch_size=args.digits_batch, max_epochs=args.epochs,
                 grad_balance=0, seed=0, device=device, amp=amp, distributed=distributed,
                 dominance=None)
    tr.fit((X, {t: Y[:, i] for i, t in enumerate(tasks)}))
    pred = tr.predict(data.X[data.test])
    acc = np.mean([(pred[t].argmax(axis=1) == data.Y[data.test][:, i]).mean()
                   for i, t in enumerate(tasks)])
    return tr, float(acc), len(X)


def digits_rows(args) -> list[dict]:
    rows = []
    for label, device, amp in settings():
        tr, acc, n = digits_fit(args, device, amp)
        sec = per_epoch(tr)
        rows.append({"case": f"Two digits, conv (batch {args.digits_batch})", "setting": label,
                     "s_epoch": sec, "rows_s": n / sec, "quality": f"accuracy {acc:.4f}"})
        if device == ddp_device() and not amp:
            torch.save({k: v.detach().cpu() for k, v in tr.net.state_dict().items()},
                       Path(args.out) / "digits_one_process.pt")
    return rows


def many_rows(args) -> list[dict]:
    rng = np.random.default_rng(0)
    T, n_t, p = args.tasks, 20, 32
    X = rng.standard_normal((T * n_t, p)).astype(np.float32)
    task = np.repeat(np.arange(T), n_t)
    B = rng.standard_normal((T, p)) / np.sqrt(p)
    y = np.einsum("ij,ij->i", X, B[task]) + 0.1 * rng.standard_normal(len(X))
    names = [f"t{t}" for t in range(T)]
    rows = []
    for label, device, amp in settings():
        if amp:
            continue
        set_seed(0)
        net = HardSharing(p, [TaskSpec(n) for n in names], (64,))
        tr = Trainer(net, batch_size=1024, max_epochs=max(2, args.epochs // 2), grad_balance=0,
                     seed=0, device=device, lazy_heads=True, dominance=None)
        tr.fit((X, (task, y)))
        sec = per_epoch(tr)
        rows.append({"case": f"{T:,} tasks, lazy heads", "setting": label, "s_epoch": sec,
                     "rows_s": len(X) / sec,
                     "quality": f"train loss per task {tr.history['loss'].iloc[-1] / T:.3f}"})
    return rows


def ddp_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def ddp_rows(args) -> list[dict]:
    """The digits fit under torchrun, one process over NCCL, against the one-process fit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1",
           "--master_port=29517", __file__, "--ddp-child", "--out", args.out,
           "--epochs", str(args.epochs), "--n-train", str(args.n_train),
           "--n-test", str(args.n_test), "--digits-batch", str(args.digits_batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if out.returncode != 0:
        (Path(args.out) / "ddp.log").write_text(out.stdout + out.stderr)
        print(out.stderr[-4000:])
        return [{"case": "Two digits, DDP", "setting": "NCCL, 1 process", "s_epoch": float("nan"),
                 "rows_s": float("nan"), "quality": f"failed (rc {out.returncode})"}]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    one = torch.load(Path(args.out) / "digits_one_process.pt")
    ddp = torch.load(Path(args.out) / "digits_ddp.pt")
    diff = max(float((one[k] - ddp[k]).abs().max()) for k in one)
    return [{"case": f"Two digits, conv (batch {args.digits_batch})",
             "setting": f"{ddp_device().upper()} DDP (1 process)", "s_epoch": res["s_epoch"],
             "rows_s": res["n"] / res["s_epoch"],
             "quality": f"accuracy {res['acc']:.4f}, weights {diff:.1e} from 1 process"}]


def ddp_child(args) -> None:
    tr, acc, n = digits_fit(args, ddp_device(), False, distributed=True)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({k: v.detach().cpu() for k, v in tr.net.state_dict().items()},
                   Path(args.out) / "digits_ddp.pt")
        print(json.dumps({"s_epoch": per_epoch(tr), "acc": acc, "n": n}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--school-batch", type=int, default=256)
    ap.add_argument("--digits-batch", type=int, default=256)
    ap.add_argument("--n-train", type=int, default=20000, help="training pairs of digits")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--tasks", type=int, default=10000, help="tasks of the lazy-heads row")
    ap.add_argument("--parts", default="school,digits,many", help="comma-separated parts")
    ap.add_argument("--ddp", action="store_true", help="also the digits row under torchrun")
    ap.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for weights")
    ap.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.ddp_child:
        ddp_child(args)
        return
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"regmtl {regmtl.__version__}, torch {torch.__version__}, {os.cpu_count()} cores "
          f"({platform.machine()}), GPU: {gpu}; {args.epochs} epochs per fit")
    rows: list[dict] = []
    parts = args.parts.split(",")
    if "school" in parts:
        rows += school_rows(args, *school_data())
    if "digits" in parts:
        rows += digits_rows(args)
        if args.ddp:
            rows += ddp_rows(args)
    if "many" in parts:
        rows += many_rows(args)
    print()
    head = f"{'case':<34} {'device':<26} {'s/epoch':>8} {'rows/s':>10}  quality"
    print(head)
    print("-" * WIDTH)
    base: dict[str, float] = {}
    for r in rows:
        base.setdefault(r["case"], r["s_epoch"])
        rate = "" if np.isnan(r["rows_s"]) else f"{r['rows_s']:,.0f}"
        print(f"{r['case']:<34} {r['setting']:<26} {r['s_epoch']:>8.4f} {rate:>10}  "
              f"{r['quality']}  (CPU/this {base[r['case']] / r['s_epoch']:.1f}x)")


if __name__ == "__main__":
    main()
