"""Deep MTL on real inputs: the Trainer against a hand-written PyTorch loop, and the cost of T.

Every section times the :class:`~regmtl.deep.Trainer` and a plain loop that a PyTorch user
would write for the same job: the same model (the plain loop's module is built from the same
initial weights, its forward written by hand: the trunk or encoder module, then the batched
heads as ``einsum`` on the gathered weights ``W[task]``), the same batches (``randperm`` seeded
with ``seed + epoch``, rows indexed from whole tensors), the same optimizer (Adam, lr 1e-3)
and the same losses (per row: each task's mean loss by segment sums ``index_add``, summed over
the tasks), keeping each task's mean training loss of every epoch as the Trainer's history
does. The user's preprocessing the Trainer does inside ``fit`` (tensors from the arrays,
standardizing each task's regression target) is timed inside the plain loop too.

1. School (139 tasks, 11,472 training rows in split 0), per row (each row through its own
   school's head), hard sharing 28 -> 64, batches of 256, the whole ``fit`` timed; plus the
   explained variance of ``DeepMultiTaskRegressor()`` with its defaults on the split.
2. Many tasks: 50 rows per task at T = 100 and T = 10,000 (16 features, hard sharing 16 ->
   32, a linear head per task, batches of 256, per row): milliseconds per step, from the
   start of the first optimizer step to the end of the last (both step the same Adam
   subclass, which reads the clock), the Trainer's set-up and wrap-up beside it. Twice: with
   dense Adam (every head updated on every step), and with ``Trainer(lazy_heads=True)``
   (the batch's heads only) against a plain loop of ``F.embedding(sparse=True)`` heads
   stepped by ``torch.optim.SparseAdam`` beside the trunk's Adam.
3. Images: two real digits side by side (scikit-learn's digits, 8 x 16), tasks "left" and
   "right" (10 classes each): ConvTrunk under hard sharing.
4. Named columns (user id, item id, price) through FeatureColumns under MMoE, tasks "click"
   and "buy" (binary).
5. Sparse bag of words: the 20 Newsgroups pairs of MALSAR (4 binary tasks, 2,000 term
   counts, SciPy CSR, per row) through TextTrunk (embedding bag, mean) under hard sharing;
   skipped without the data (``../shared/data`` or ``REGMTL_DATA``).

Times are CPU seconds of the process (``time.process_time``; one BLAS/intra-op thread, so
the time an idle core would take, whatever else runs on the machine). The Trainer and the
plain loop alternate within each of ``--repeats`` repeats (the order flips every repeat, so a
change of load hits both); the table gives the medians and the median of the repeats' time
ratios Trainer / plain. Peak memory: the peak resident memory of one run in a fresh process,
above its resident memory once the data are built (``--no-memory`` skips these runs). Both
use the optimizer the Trainer builds by default (Adam with the same options).

``OMP_NUM_THREADS=1 python bench/bench_deep_inputs.py [--repeats 3] [--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from _memory import rss_peak_increase

from regmtl.datasets import apply_split, load_newsgroups, load_school
from regmtl.deep import (
    Categorical,
    ConvTrunk,
    DeepMultiTaskRegressor,
    FeatureColumns,
    HardSharing,
    MMoE,
    Numeric,
    TaskSpec,
    TextTrunk,
    Trainer,
    set_seed,
)
from regmtl.deep.optim import LazyAdam, make_optimizer
from regmtl.metrics import explained_variance

nn = torch.nn
F = torch.nn.functional
LR = 1e-3


# ----------------------------------------------------------------------------- timing
#: set by ``--child KEY RUN``: this process only measures the peak memory of one run
CHILD: list = []


def _paired(runs: dict, repeats: int, key: str, args) -> dict:
    """Run each of ``runs`` (name -> fn() returning seconds or None) ``repeats`` times,
    alternating (the order flips every repeat); then each once more in a fresh process for
    its peak memory. {name: (median seconds, peak bytes, list of seconds)}; a fn returning
    None is timed as a whole."""
    if CHILD:  # a fresh process: the peak of one run, nothing else
        if CHILD[0] == key:
            _, mem = rss_peak_increase(runs[CHILD[1]])
            print(f"PEAK {mem}", flush=True)
            os._exit(0)
        return {k: (1.0, 0, [1.0]) for k in runs}
    times = {k: [] for k in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.process_time()
            inner = runs[name]()
            times[name].append(time.process_time() - t0 if inner is None else inner)
    peaks = {k: _fresh_peak(key, k, args) for k in runs} if args.memory else dict.fromkeys(
        runs, -1)
    return {k: (statistics.median(v), peaks[k], v) for k, v in times.items()}


def _fresh_peak(key: str, run: str, args) -> int:
    """The peak resident memory of one run of ``run`` in section ``key``, in a new process
    (above its resident memory once the data are built): in this one, the memory that an
    earlier run freed is reused and the increase reads 0."""
    section = key.removesuffix("lazy").rstrip("0123456789")
    cmd = [sys.executable, __file__, "--child", key, run, "--only", section,
           "--no-estimator", "--device", args.device, *sum(
               ([f"--{k}-epochs", str(getattr(args, f"{k}_epochs"))]
                for k in ("school", "image", "column", "text")), [])]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    for line in out.stdout.splitlines():
        if line.startswith("PEAK "):
            return int(line.split()[1])
    raise RuntimeError(f"the memory run of {key}/{run} failed: {out.stderr[-2000:]}")


def _ratio(res: dict, a: str = "trainer", b: str = "plain") -> float:
    """Median over the repeats of the paired time ratio a / b."""
    return statistics.median(x / y for x, y in zip(res[a][2], res[b][2], strict=True))


def _mib(b: int) -> str:
    return "-" if b < 0 else f"{b / 2**20:.0f} MiB"


def _row(label: str, res: dict, unit: str, per: float) -> None:
    """One table line: median time per ``unit`` (per = units in a run) of each, the ratio."""
    tr, pl = res["trainer"], res["plain"]
    print(f"  {label:<30} {tr[0] / per * 1e3:>10.3f} {pl[0] / per * 1e3:>10.3f}   ms/{unit:<6}"
          f"{_ratio(res):>7.3f}   {_mib(tr[1]):>8} {_mib(pl[1]):>8}")


def _throughput(label: str, res: dict, unit: str, count: int, what: str) -> None:
    """The table (time per 1,000 ``what``) and both throughputs, of ``count`` items a run."""
    _header()
    _row(label, res, unit, count / 1e3)
    print(f"  Trainer {count / res['trainer'][0]:,.0f} {what}/s, plain "
          f"{count / res['plain'][0]:,.0f} {what}/s")


def _header() -> None:
    print(f"  {'':<30} {'Trainer':>10} {'plain':>10}   {'':<9}{'ratio':>7}   "
          f"{'peak T':>8} {'peak P':>8}")


# ----------------------------------------------------------------------------- plain models
class _RowHeads(nn.Module):
    """A linear head per task as one (T, in, out) weight: row i through ``W[task[i]]``."""

    def __init__(self, block):
        super().__init__()
        self.W = nn.Parameter(block.weight0.detach().clone())
        self.b = nn.Parameter(block.bias0.detach().clone())

    def rows(self, z, task):
        return torch.einsum("bi,bio->bo", z, self.W[task]) + self.b[task]

    def every(self, z):
        """Every task on every row: (B, T, out)."""
        return torch.einsum("bi,tio->bto", z, self.W) + self.b


class _PlainHard(nn.Module):
    """Hard sharing written by hand from a HardSharing net's initial weights: the encoder
    (if any), the trunk, and the batched linear heads."""

    def __init__(self, net: HardSharing):
        super().__init__()
        self.encoder = copy.deepcopy(net.encoder)
        self.trunk = copy.deepcopy(net.trunk)
        self.heads = _RowHeads(net.heads.blocks[0])

    def body(self, x):
        return self.trunk(x if self.encoder is None else self.encoder(x))

    def forward(self, x, task=None):
        z = self.body(x)
        return self.heads.every(z) if task is None else self.heads.rows(z, task)


class _PlainMMoE(nn.Module):
    """MMoE written by hand from an MMoE net's initial weights (towers of one hidden layer)."""

    def __init__(self, net: MMoE):
        super().__init__()
        self.encoder = copy.deepcopy(net.encoder)
        self.experts = copy.deepcopy(net.experts)
        self.gate = copy.deepcopy(net.gates.blocks[0])
        blk = net.towers.blocks[0]
        self.W0, self.b0 = (nn.Parameter(blk.weight0.detach().clone()),
                            nn.Parameter(blk.bias0.detach().clone()))
        self.W1, self.b1 = (nn.Parameter(blk.weight1.detach().clone()),
                            nn.Parameter(blk.bias1.detach().clone()))
        self.K = len(net.experts)

    def forward(self, x):
        z = self.encoder(x)
        e = torch.stack([ex(z) for ex in self.experts], dim=1)             # (B, K, d)
        pi = torch.softmax(self.gate(z).reshape(len(z), -1, self.K), -1)  # (B, T, K)
        m = torch.einsum("btk,bkd->btd", pi, e)
        h = torch.relu(torch.einsum("bti,tio->bto", m, self.W0) + self.b0)
        return torch.einsum("bti,tio->bto", h, self.W1) + self.b1        # (B, T, 1)


def _per_step(clock) -> float:
    """CPU seconds per step of a clocked optimizer, first step to last."""
    return (clock.last - clock.first) / max(clock.steps - 1, 1)


def _clocked(cls: type) -> type:
    """``cls`` (an optimizer) noting the CPU time at the start of its first step and at the
    end of its last: (last - first) / (steps - 1) is the time per step once training runs."""

    class Clocked(cls):
        def __init__(self, params, **kw):
            super().__init__(params, **kw)
            self.first, self.last, self.steps = None, None, 0

        def step(self, closure=None):
            if self.first is None:
                self.first = time.process_time()
            out = super().step(closure)
            self.last, self.steps = time.process_time(), self.steps + 1
            return out

        per_step = _per_step

    return Clocked


_StepClock = _clocked(torch.optim.Adam)
_LazyClock = _clocked(LazyAdam)


ADAM: dict = {}


def _adam_options(device: str) -> dict:
    """The options of the Adam that the Trainer builds by default on ``device`` (fused or
    for-each), for the plain loops to step with the same optimizer."""
    p = nn.Parameter(torch.zeros(1, device=device))
    opt = make_optimizer("adam", [p], LR, 0.0)
    return {k: opt.defaults[k] for k in ("fused", "foreach") if opt.defaults.get(k)}


def _adam(params, clock: bool = False):
    """Adam with lr 1e-3 and the Trainer's default options."""
    return (_StepClock if clock else torch.optim.Adam)(params, lr=LR, **ADAM)


def _orders(n: int, epochs: int, seed: int = 0):
    """The batch orders of ``Batches(shuffle=True, seed=seed)``: epoch e is ``randperm(n)``
    from a generator seeded with seed + e."""
    for e in range(epochs):
        yield torch.randperm(n, generator=torch.Generator().manual_seed(seed + e))


def _segment_mean(per: torch.Tensor, task: torch.Tensor, T: int) -> torch.Tensor:
    """Each task's mean of the rows' losses ``per`` (0 for a task without rows): (T,)."""
    total = per.new_zeros(T).index_add_(0, task, per)
    count = per.new_zeros(T).index_add_(0, task, torch.ones_like(per))
    return total / count.clamp(min=1)


def _train_rows(model, X, task, y, T, epochs, batch, loss, device, opt=None):
    """The plain per-row loop; returns its optimizer (data already tensors). Like the
    Trainer's history, it keeps each task's mean training loss of every epoch."""
    opt = _adam(model.parameters()) if opt is None else opt
    model.train()
    n = len(task)
    history = []
    for order in _orders(n, epochs):
        tot = torch.zeros(T, device=device)
        parts = order.split(batch)
        for idx in parts:
            x = X(idx) if callable(X) else X[idx]
            t, yb = task[idx].to(device), y[idx].to(device)
            out = model(x.to(device), t)
            per = loss(out[:, 0], yb)
            losses = _segment_mean(per, t, T)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            tot += losses.detach()
        history.append((tot / len(parts)).tolist())
    return opt


def _train_columns(model, inputs, Y, losses_of, epochs, batch, device):
    """The plain loop of a column per task: ``inputs(idx)`` is the batch, ``losses_of(out,
    yb)`` the (T,) task losses; like the Trainer's history, it keeps each task's mean
    training loss of every epoch."""
    opt = _adam(model.parameters())
    model.train()
    history = []
    for order in _orders(len(Y), epochs):
        tot, parts = torch.zeros(Y.shape[1], device=device), order.split(batch)
        for idx in parts:
            losses = losses_of(model(inputs(idx)), Y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            tot += losses.detach()
        history.append((tot / len(parts)).tolist())


def _mse(f, y):
    return 0.5 * (f - y) ** 2


def _bce(f, y):
    return F.binary_cross_entropy_with_logits(f, y, reduction="none")


def _per_task_standardized(y: np.ndarray, task: np.ndarray, T: int) -> np.ndarray:
    """Each task's target standardized with its own mean and (population) deviation."""
    n = np.bincount(task, minlength=T)
    mean = np.bincount(task, y, minlength=T) / np.maximum(n, 1)
    var = np.bincount(task, (y - mean[task]) ** 2, minlength=T) / np.maximum(n, 1)
    sd = np.where(var > 0, np.sqrt(var), 1.0)
    return (y - mean[task]) / sd[task]


# ----------------------------------------------------------------------------- 1. School
def school(args) -> None:
    d = load_school()
    Xtr, Xte, ytr, yte = apply_split(d.X, d.y, d.splits[0])
    T = len(ytr)
    if not args.no_estimator:
        set_seed(0)
        m = DeepMultiTaskRegressor(random_state=0)
        t0 = time.process_time()
        (_, mem) = rss_peak_increase(lambda: m.fit(Xtr, ytr))
        fit_s = time.process_time() - t0
        ev = explained_variance(yte, m.predict(Xte), average="pooled")
        print(f"School, {T} tasks, split 0: DeepMultiTaskRegressor() defaults: pooled EV "
              f"{ev:.4f}, {len(m.history_)} epochs in {fit_s:.1f} s CPU "
              f"({fit_s / len(m.history_):.3f} s per epoch with validation), peak +{_mib(mem)}")
    X = np.vstack(Xtr).astype(np.float32)
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ytr)])
    y = np.concatenate(ytr).astype(np.float64)
    names = [f"s{k}" for k in range(T)]
    specs = [TaskSpec(k) for k in names]
    epochs, batch = args.school_epochs, 256

    def net():
        set_seed(0)
        return HardSharing(X.shape[1], specs, (64,))

    def trainer():
        Trainer(net(), batch_size=batch, max_epochs=epochs, grad_balance=0, seed=0,
                device=args.device).fit((X, (task, y)))

    def plain():
        model = _PlainHard(net()).to(args.device)
        ys = torch.from_numpy(_per_task_standardized(y, task, T).astype(np.float32))
        _train_rows(model, torch.from_numpy(X), torch.from_numpy(task), ys, T, epochs,
                    batch, _mse, args.device)

    res = _paired({"trainer": trainer, "plain": plain}, args.repeats, "school", args)
    steps = epochs * -(-len(X) // batch)
    print(f"School per row: {T} tasks, {len(X)} rows, hard sharing {X.shape[1]} -> 64, "
          f"batches of {batch}, {epochs} epochs ({steps} steps), whole fit timed")
    _header()
    _row("School, per row", res, "step", steps)
    print(f"  Trainer {res['trainer'][0] / epochs:.3f} s per epoch, plain "
          f"{res['plain'][0] / epochs:.3f} s per epoch")


# ----------------------------------------------------------------------------- 2. many tasks
class _PlainLazyHard(nn.Module):
    """Hard sharing with row-sparse head gradients, written by hand: the heads as 2-D
    tables read by ``F.embedding(..., sparse=True)`` (for ``torch.optim.SparseAdam``)."""

    def __init__(self, net: HardSharing):
        super().__init__()
        self.trunk = copy.deepcopy(net.trunk)
        blk = net.heads.blocks[0]
        self.shape = blk.weight0.shape[1:]
        self.W = nn.Parameter(blk.weight0.detach().reshape(len(blk.weight0), -1).clone())
        self.b = nn.Parameter(blk.bias0.detach().clone())

    def forward(self, x, task):
        w = F.embedding(task, self.W, sparse=True).reshape(-1, *self.shape)
        return torch.einsum("bi,bio->bo", self.trunk(x), w) + F.embedding(task, self.b,
                                                                           sparse=True)


class _TwoAdams:
    """The plain loop's optimizer for row-sparse heads: fused Adam on the trunk, SparseAdam
    on the heads, stepped together; the clock as :class:`_StepClock`."""

    def __init__(self, model: _PlainLazyHard):
        heads = [model.W, model.b]
        self.dense = _adam([p for p in model.parameters() if all(p is not h for h in heads)])
        self.sparse = torch.optim.SparseAdam(heads, lr=LR)
        self.first, self.last, self.steps = None, None, 0

    def zero_grad(self, set_to_none: bool = True):
        self.dense.zero_grad(set_to_none)
        self.sparse.zero_grad(set_to_none)

    def step(self):
        if self.first is None:
            self.first = time.process_time()
        self.dense.step()
        self.sparse.step()
        self.last, self.steps = time.process_time(), self.steps + 1

    per_step = _per_step


def many_tasks(args) -> None:
    print("Many tasks, 50 rows each, 16 features, hard sharing 16 -> 32, batches of 256, per "
          "row: ms per step from the first optimizer step to the last (fit's set-up apart).\n"
          "Dense: Adam on every head each step (plain loop: the same). Lazy: Trainer("
          "lazy_heads=True), the batch's heads only (plain loop: F.embedding(sparse=True) "
          "heads, SparseAdam beside the trunk's Adam)")
    _header()
    per_step = {}
    for lazy in (False, True):
        for T, epochs in ((100, 100), (10_000, 1)):
            per_step[lazy, T] = _many(args, T, epochs, lazy)
    for lazy in (False, True):
        tr, pl = (per_step[lazy, 10_000][i] / per_step[lazy, 100][i] for i in (0, 1))
        print(f"  per-step ratio T=10,000 / T=100, {'lazy' if lazy else 'dense'}: Trainer "
              f"{tr:.2f}, plain {pl:.2f}")


def _many(args, T: int, epochs: int, lazy: bool) -> tuple:
    """One row of the many-task table: (Trainer, plain) median ms per step."""
    rng = np.random.default_rng(0)
    n = 50 * T
    X = rng.standard_normal((n, 16)).astype(np.float32)
    task = np.repeat(np.arange(T), 50)
    y = X[:, 0] * rng.standard_normal(T)[task] + rng.standard_normal(n)
    specs = [TaskSpec(f"t{k}") for k in range(T)]
    steps = epochs * -(-n // 256)
    setup = []

    def net():
        set_seed(0)
        return HardSharing(16, specs, (32,))

    def trainer():
        clock, model = [], net()
        t0 = time.process_time()
        kind = _LazyClock if lazy else _StepClock
        tr = Trainer(model, batch_size=256, max_epochs=epochs, grad_balance=0,
                     optimizer=lambda ps: clock.append(kind(ps, lr=LR, **ADAM)) or clock[0],
                     device=args.device, lazy_heads=lazy)
        tr.fit((X, (task, y)))
        total = time.process_time() - t0
        setup.append(total - (clock[0].last - clock[0].first))
        return clock[0].per_step()

    def plain():
        model = (_PlainLazyHard if lazy else _PlainHard)(net()).to(args.device)
        ys = torch.from_numpy(_per_task_standardized(y, task, T).astype(np.float32))
        opt = _TwoAdams(model) if lazy else _adam(model.parameters(), True)
        return _train_rows(model, torch.from_numpy(X), torch.from_numpy(task), ys, T,
                           epochs, 256, _mse, args.device, opt).per_step()

    key = f"many{T}{'lazy' if lazy else ''}"
    res = _paired({"trainer": trainer, "plain": plain}, args.repeats, key, args)
    _row(f"T = {T:,}, {'lazy' if lazy else 'dense'} ({steps} steps)", res, "step", 1)
    print(f"  {'':<30} the Trainer's set-up and wrap-up (checks, target maps, "
          f"history; the net built before): {statistics.median(setup or [0]):.2f} s")
    return res["trainer"][0], res["plain"][0]


def digits(args) -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    n = 4000
    a, b = rng.integers(0, len(d.images), n), rng.integers(0, len(d.images), n)
    X = (np.concatenate([d.images[a], d.images[b]], axis=2)[:, None] / 16).astype(np.float32)
    tasks = [TaskSpec("left", kind="multiclass", n_outputs=10),
             TaskSpec("right", kind="multiclass", n_outputs=10)]
    targets = {"left": d.target[a], "right": d.target[b]}
    epochs, batch = args.image_epochs, 128

    def net():
        set_seed(0)
        return HardSharing(tasks=tasks, trunk=ConvTrunk(1, (16, 32), pool=(1, 2)))

    def trainer():
        Trainer(net(), batch_size=batch, max_epochs=epochs, grad_balance=0,
                device=args.device, seed=0).fit((X, targets))

    def plain():
        model = _PlainHard(net()).to(args.device)
        Xt = torch.from_numpy(X)
        Y = torch.from_numpy(np.stack([targets["left"], targets["right"]], 1))
        _train_columns(  # out: (B, 2, 10)
            model, lambda idx: Xt[idx].to(args.device), Y,
            lambda out, yb: torch.stack([F.cross_entropy(out[:, 0], yb[:, 0]),
                                         F.cross_entropy(out[:, 1], yb[:, 1])]),
            epochs, batch, args.device)

    res = _paired({"trainer": trainer, "plain": plain}, args.repeats, "images", args)
    print(f"Images: two digits 8x16 ({n} images), ConvTrunk (16, 32), hard sharing, 2 x 10 "
          f"classes, batches of {batch}, {epochs} epochs")
    _throughput("images (per 1,000 images)", res, "kimg", epochs * n, "images")


# ----------------------------------------------------------------------------- 4. columns
def columns(args) -> None:
    rng = np.random.default_rng(0)
    n = 20000
    user, item = rng.integers(0, 2000, n), rng.integers(0, 500, n)
    logit = rng.standard_normal(2000)[user] + rng.standard_normal(500)[item]
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    buy = click * (rng.random(n) < 0.3)
    X = {"user": user, "item": item, "price": rng.standard_normal(n) * 5 + 50}
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("buy", kind="binary")]
    epochs, batch = args.column_epochs, 512

    def net():
        set_seed(0)
        cols = FeatureColumns([Categorical("user", 2000), Categorical("item", 500),
                               Numeric("price")])
        cols.set_numeric_stats("price", 50.0, 5.0)
        return MMoE(tasks=tasks, n_experts=4, expert_hidden=(64,), encoder=cols)

    def trainer():
        Trainer(net(), batch_size=batch, max_epochs=epochs, grad_balance=0,
                device=args.device, seed=0).fit((X, {"click": click, "buy": buy}))

    def plain():
        model = _PlainMMoE(net()).to(args.device)
        cols = {"user": torch.from_numpy(user), "item": torch.from_numpy(item),
                "price": torch.from_numpy(X["price"].astype(np.float32))}
        Y = torch.from_numpy(np.stack([click, buy], 1).astype(np.float32))
        _train_columns(
            model, lambda idx: {k: v[idx].to(args.device) for k, v in cols.items()}, Y,
            lambda out, yb: torch.stack([
                F.binary_cross_entropy_with_logits(out[:, 0, 0], yb[:, 0]),
                F.binary_cross_entropy_with_logits(out[:, 1, 0], yb[:, 1])]),
            epochs, batch, args.device)

    res = _paired({"trainer": trainer, "plain": plain}, args.repeats, "columns", args)
    print(f"Named columns (2,000 users, 500 items, price) through FeatureColumns, MMoE 4 "
          f"experts (64,), towers (32,), {n} rows, batches of {batch}, {epochs} epochs")
    _throughput("columns (per 1,000 rows)", res, "krow", epochs * n, "rows")


# ----------------------------------------------------------------------------- 5. text
def _data_home() -> str | None:
    for home in (os.environ.get("REGMTL_DATA"),
                 str(Path(__file__).resolve().parents[2] / "shared" / "data")):
        if home and (Path(home) / "newsgroup_malsar").is_dir():
            return home
    return None


def text(args) -> None:
    home = _data_home()
    if home is None:
        print("Sparse bag of words: skipped (no newsgroup_malsar under REGMTL_DATA or "
              "../shared/data)")
        return
    mats, ys, tasks = [], [], []
    for pair in ("comp.vs.sci", "rec.vs.talk"):
        b = load_newsgroups(pair, data_home=home)
        mats += list(b.X)
        ys += [np.asarray(y, dtype=np.float64) for y in b.y]
        tasks += [np.full(len(y), len(tasks) + k) for k, y in enumerate(b.y)]
    X = sp.vstack(mats).tocsr().astype(np.float32)
    task = np.concatenate(tasks)
    y = np.concatenate(ys)
    T, V = len(mats), X.shape[1]
    specs = [TaskSpec(f"n{k}", kind="binary") for k in range(T)]
    epochs, batch = args.text_epochs, 256

    def net():
        set_seed(0)
        return HardSharing(tasks=specs, hidden=(64,), encoder=TextTrunk(V, dim=64))

    def trainer():
        Trainer(net(), batch_size=batch, max_epochs=epochs, grad_balance=0, seed=0,
                device=args.device).fit((X, (task, y)))

    def plain():
        model = _PlainHard(net()).to(args.device)

        def rows(idx):  # the CSR batch: SciPy's row indexing, then torch's CSR tensor
            sub = X[idx.numpy()]
            return torch.sparse_csr_tensor(torch.from_numpy(sub.indptr.astype(np.int64)),
                                           torch.from_numpy(sub.indices.astype(np.int64)),
                                           torch.from_numpy(sub.data), size=sub.shape)

        _train_rows(model, rows, torch.from_numpy(task), torch.from_numpy(y).float(), T,
                    epochs, batch, _bce, args.device)

    res = _paired({"trainer": trainer, "plain": plain}, args.repeats, "text", args)
    n = X.shape[0]
    print(f"Sparse bag of words: 20 Newsgroups (MALSAR) 2 pairs, {T} binary tasks, {n} rows, "
          f"{V} term counts (CSR, {X.nnz / n:.0f} nonzeros per row), TextTrunk(dim 64, mean), "
          f"hard sharing 64 -> 64, per row, batches of {batch}, {epochs} epochs")
    _throughput("bag of words (per 1,000 rows)", res, "krow", epochs * n, "rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--school-epochs", type=int, default=10)
    ap.add_argument("--image-epochs", type=int, default=2)
    ap.add_argument("--column-epochs", type=int, default=3)
    ap.add_argument("--text-epochs", type=int, default=5)
    ap.add_argument("--no-estimator", action="store_true",
                    help="skip the DeepMultiTaskRegressor() fit on School")
    ap.add_argument("--only", nargs="*", default=None,
                    help="sections to run: school many images columns text")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="skip the peak memory runs (one fresh process per run)")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        CHILD.extend(args.child)
    torch.set_num_threads(1)
    ADAM.update(_adam_options(args.device))
    _adam([nn.Parameter(torch.zeros(1))])  # the first optimizer imports torch._dynamo: not timed
    print(f"torch {torch.__version__}, device {args.device}, 1 intra-op thread, median of "
          f"{args.repeats} (Trainer and plain loop alternating), CPU time; ratio = Trainer / "
          f"plain; Adam options {ADAM or 'default'}")
    sections = {"school": school, "many": many_tasks, "images": digits, "columns": columns,
                "text": text}
    for name, fn in sections.items():
        if args.only is None or name in args.only:
            fn(args)


if __name__ == "__main__":
    main()
