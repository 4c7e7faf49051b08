"""Cost of every registered task weighting: time per step and peak memory, against equal weighting.

Every method of ``regmtl.deep.weighting.WEIGHTINGS`` (default options; ``fixed`` with unit
weights) trains two nets for a few steps at T = 2, 10 and 40 tasks (binary labels drawn at
random, binary cross-entropy; Adam, lr 1e-3; one torch thread):

- **recommender**: ``HardSharing`` (trunk 64-32, heads 16) over the embeddings of three id
  columns (``FeatureColumns``: 200 users, 100 items, 10 categories, dim 16), batches of 512;
  ``--mmoe`` adds ``MMoE`` (4 experts of 64, towers 16) on the same inputs;
- **conv**: ``HardSharing(trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))`` on 28 x 28 images,
  batches of 64.

A step is the whole training step: forward pass, ``weighting.backward`` (T backward passes
through the trunk for gradient methods), optimizer step. **ms/step**: the median over the
measured steps after the warm-up ones, of the process's CPU time on CPU (one thread: the time
the step computes, not what other processes on a shared machine take from it) and of the wall
time on CUDA (synchronized); **x equal**: its ratio to equal weighting's on the same
net and T. **peak MiB**: the memory of the warm-up steps (the first steps of a fresh net,
optimizer state included) above what the net, the data and the weighting held before them: on
CUDA ``torch.cuda.max_memory_allocated`` above ``memory_allocated`` before; on CPU the growth of
the process's peak resident memory (VmHWM, reset through /proc/self/clear_refs) above the
resident memory before, so what tracemalloc does not see (PyTorch's CPU tensors) is counted
(page-granular and noisy below about 1 MiB). Every (net, T, method) runs in a forked child, so
no run reuses memory an earlier one freed. Timings: read ratios, not digits.

Rows ``name+rep`` are the shared-representation route (``on_representation=True``, MGDA-UB's):
the Gram matrix of the gradients with respect to the trunk's output, offered by the methods
that decide from the Gram matrix alone and only on hard-sharing nets; its memory does not grow
with T x trunk parameters.

``python bench/bench_weighting_cost.py [--quick] [--mmoe] [--methods equal,mgda,...]``
(``--quick``: 2 warm-up and 5 measured steps, smaller batches).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from _isolate import OverBudget, call_with_limit
from _memory import rss_peak_increase

import regmtl
from regmtl.deep import Categorical, ConvTrunk, FeatureColumns, HardSharing, MMoE, TaskSpec
from regmtl.deep.weighting import WEIGHTINGS, GramWeighting, make_weighting

WIDTH = 100
TS = (2, 10, 40)


def _net(kind: str, tasks: list[TaskSpec]):
    if kind == "conv":
        return HardSharing(tasks=tasks, trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))
    enc = FeatureColumns([Categorical("user", 200, dim=16), Categorical("item", 100, dim=16),
                          Categorical("category", 10, dim=16)])
    if kind == "recommender, MMoE":
        return MMoE(None, tasks, 4, expert_hidden=(64,), tower_hidden=(16,), encoder=enc)
    return HardSharing(None, tasks, (64, 32), head_hidden=(16,), encoder=enc)


def _batch(kind: str, B: int, T: int, gen: torch.Generator):
    if kind == "conv":
        x = torch.randn(B, 1, 28, 28, generator=gen)
    else:
        x = {"user": torch.randint(0, 200, (B,), generator=gen),
             "item": torch.randint(0, 100, (B,), generator=gen),
             "category": torch.randint(0, 10, (B,), generator=gen)}
    y = torch.randint(0, 2, (B, T), generator=gen).float()
    return x, y


def _weighting(name: str, T: int):
    rep = name.endswith("+rep")
    key = name.removesuffix("+rep")
    opts: dict = {"weights": [1.0] * T} if key == "fixed" else {}
    if rep:
        opts["on_representation"] = True
    return make_weighting(key, **opts)


def offers_representation(key: str) -> bool:
    """Whether the method takes ``on_representation=True`` (the shared-representation route)."""
    if not issubclass(WEIGHTINGS[key], GramWeighting):
        return False
    try:
        make_weighting(key, **({"weights": [1.0, 1.0]} if key == "fixed" else {}),
                       on_representation=True)
    except (TypeError, ValueError):
        return False
    return True


def run_one(kind: str, T: int, name: str, warm: int, steps: int, B: int) -> tuple[float, float]:
    """(median seconds per step, peak bytes of one step) of ``name`` on the net ``kind``."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tasks = [TaskSpec(f"t{i}", kind="binary") for i in range(T)]
    net = _net(kind, tasks)
    weighting = _weighting(name, T)
    if name.endswith("+rep"):
        weighting.watch(net.trunk)
    weighting.setup(tasks, seed=0)
    params = list(net.parameters()) + list(weighting.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    shared, specific = net.shared_parameters(), net.task_parameters()
    gen = torch.Generator().manual_seed(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    cuda = torch.cuda.is_available()
    if cuda:
        net.cuda()
        weighting.cuda()

    def step():
        x, y = _batch(kind, B, T, gen)
        if cuda:
            x = {k: v.cuda() for k, v in x.items()} if isinstance(x, dict) else x.cuda()
            y = y.cuda()
        opt.zero_grad(set_to_none=True)
        out = net(x)
        losses = torch.stack([bce(out[t.name][:, 0], y[:, i]) for i, t in enumerate(tasks)])
        weighting.backward(losses, shared, specific)
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    def first_steps():
        for _ in range(warm):
            step()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        first_steps()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        _, peak = rss_peak_increase(first_steps)
    clock = time.perf_counter if cuda else time.process_time
    times = []
    for _ in range(steps):
        t0 = clock()
        step()
        times.append(clock() - t0)
    return statistics.median(times), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 warm-up + 5 measured steps")
    parser.add_argument("--mmoe", action="store_true", help="add the MMoE recommender net")
    parser.add_argument("--methods", default="", help="comma-separated names (default: all)")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm, steps = (2, 5) if args.quick else (3, 15)
    keys = [k for k in WEIGHTINGS if not args.methods or k in args.methods.split(",")]
    if "equal" not in keys:
        keys.insert(0, "equal")
    names = keys + [f"{k}+rep" for k in keys if offers_representation(k)]
    kinds = ["recommender", "conv"] + (["recommender, MMoE"] if args.mmoe else [])
    device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    memory = ("torch.cuda.max_memory_allocated" if torch.cuda.is_available() else
              "peak RSS growth (VmHWM) over the warm-up steps")
    print("=" * WIDTH)
    print(f"regmtl {regmtl.__version__}, torch {torch.__version__}, {platform.machine()}, "
          f"{device}, 1 thread; {warm} warm-up + {steps} measured steps; memory: {memory}")
    print(f"representation route offered by: "
          f"{', '.join(k for k in keys if offers_representation(k)) or 'none'}")
    print("=" * WIDTH)
    for kind in kinds:
        B = (128 if args.quick else 512) if kind != "conv" else (32 if args.quick else 64)
        for T in TS:
            print(f"\n{kind}, T = {T}, batch {B}")
            print(f"{'method':<18}{'ms/step':>10}{'x equal':>9}{'peak MiB':>10}{'x equal':>9}")
            ref = None
            for name in names:
                if name.endswith("+rep") and kind != "recommender" and kind != "conv":
                    continue
                try:
                    sec, peak = call_with_limit(
                        lambda n=name, t=T, k=kind, b=B: run_one(k, t, n, warm, steps, b),
                        args.limit)
                except OverBudget:
                    print(f"{name:<18}{'> limit':>10}")
                    continue
                except Exception as exc:  # noqa: BLE001 - a refused combination is reported
                    print(f"{name:<18}  refused: {type(exc).__name__}: {str(exc)[:60]}")
                    continue
                if ref is None:
                    ref = (sec, max(peak, 1.0))
                mib = peak / 2**20
                print(f"{name:<18}{1e3 * sec:>10.2f}{sec / ref[0]:>9.2f}{mib:>10.2f}"
                      f"{peak / ref[1]:>9.2f}")
    print(f"\nOMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
