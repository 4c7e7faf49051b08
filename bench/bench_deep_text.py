"""Deep MTL on text: personalized spam filters and newsgroup pairs, shared trunk against the rest.

Data (from ``--data-home``, else ``REGMTL_DATA``, else ``../shared/data`` beside the
repository; a set that is absent is skipped with a note):

- ``spam``: :func:`regmtl.datasets.load_spam`, 15 users (tasks) x 400 e-mails, term counts over
  152,543 words (SciPy CSR);
- ``comp.vs.sci`` and ``rec.vs.talk``: :func:`regmtl.datasets.load_newsgroups`, 2 tasks each,
  ~1,500-1,900 documents per task, 2,000 term counts.

Protocol, for each seed s of ``--seeds``: each task's rows are split 75 / 25 into training and
test rows (:func:`regmtl.datasets.train_test_split_per_task`, ``random_state=s``). A model reads
only the columns that occur in the rows it trains on (a word never seen in training has no
trained embedding, only its random initial one, and no weight; on spam about 36k of the
152,543 columns occur in the training rows, fewer in the 80% the nets train on, and a per-task
net has its own task's words only). Models:

- ``shared``: ``HardSharing(tasks=users, encoder=TextTrunk(V, dim, mode="mean"),
  hidden=())``: the embedding bag is the shared trunk, each task a logistic head on it; the
  rows are given per row, ``(X, (task, y))``, so each row runs its own task's head only;
- ``per-task``: the same net with one task, one net per task trained on that task's rows only;
- ``pooled``: the same net with one head for all tasks (every row labelled for it);
- ``l21``: :class:`regmtl.MultiTaskClassifierCV` with the L2,1 penalty (joint word selection);
- ``mean``: the same with :class:`regmtl.MeanRegularized` (``ridge=--mean-ridge``, 1 here;
  with the penalty's default ``ridge=0`` the mean task is unpenalized, and on comp.vs.sci,
  split 0, the CV picked the largest alpha of its grid, 24.4, mean test AUC 0.9908 against
  0.9964 with ``ridge=1``).

The nets (Adam, ``--lr``, batches of ``--batch-size``, at most ``--epochs`` epochs, equal
weighting, no gradient-balance probes) hold out 20% of each task's training rows and stop when
the validation loss has not improved for ``--patience`` epochs, keeping the best epoch. The
bag's weights are tf-idf, (1 + log count) x idf fitted on the nets' training rows (``--weights``:
or the counts, log(1 + count), 0/1), so "mean" pools the weighted average embedding of the
words of a document. The defaults (width 32, lr 0.01, batches of 64, at most 60 epochs,
patience 5, no hidden layer, no dropout) did best, or as well at less cost, for the shared net
on spam. Split 0, width 64, at most 30 epochs, mean test AUC over users: tf-idf 0.9967, 0/1
0.9961, log(1 + count) 0.9956, counts 0.9936; with counts, width 16 or 128 0.9936 and 0.9938,
a hidden layer of 64 0.9918, dropout 0.3 0.9937, lr 0.003 0.9935, batches of 32 0.9936, mode
"sum" (on 0/1) 0.9850. Splits 0-2 with this protocol: tf-idf at width 16, 32, 64 0.9968,
0.9967, 0.9969; counts at width 32 0.9945.
The linear models
are fitted on all training rows scaled by their pooled root mean square (sparse: not
centered, :func:`regmtl.scaling.pooled_scaling`), ``alpha`` chosen by ``--cv``-fold CV (log
loss) on a grid of ``--alphas`` values.

Reported on the test rows: per task, AUC and accuracy (P(y = 1) >= 1/2), averaged over the
seeds (one table per data set); then per model their mean, median and min over tasks (mean
over the seeds), the AUC difference to ``shared``, and the cost: CPU seconds per epoch (the
fit's CPU time over its epochs, set-up and validation passes included; an epoch is one pass
over all training rows, for ``per-task`` one epoch of every task's net; one intra-op/BLAS
thread, so the time an idle core would take whatever else runs), the epochs run (per net), the
fit's CPU seconds and its ratio to ``shared``, and the peak resident memory above the start of
the fit (the largest over seeds and repeats). Every fit runs in a forked child process
(``_isolate``: its own CPU clock and memory high-water mark, no allocator cache of an earlier
fit; the parent has loaded torch's and the solvers' compiled code once before), stopped after
``--limit`` seconds of wall time. Timings are medians over seeds x ``--repeats``.

``python bench/bench_deep_text.py [--sets spam comp.vs.sci rec.vs.talk] [--seeds 0 1 2]
[--repeats 1] [--models shared per-task pooled l21 mean]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from _isolate import OverBudget, call_with_limit  # noqa: E402
from _memory import rss_peak_increase  # noqa: E402
from sklearn.feature_extraction.text import TfidfTransformer  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

import regmtl  # noqa: E402
from regmtl.datasets import load_newsgroups, load_spam, train_test_split_per_task  # noqa: E402
from regmtl.deep import (  # noqa: E402
    EarlyStopping,
    HardSharing,
    TaskSpec,
    TextTrunk,
    Trainer,
    set_seed,
)
from regmtl.scaling import pooled_scaling, standardize  # noqa: E402

SETS = ("spam", "comp.vs.sci", "rec.vs.talk")
MODELS = ("shared", "per-task", "pooled", "l21", "mean")
FOLDERS = {"spam": "spam_ecml2006_15users", "comp.vs.sci": "newsgroup_malsar/comp.vs.sci",
           "rec.vs.talk": "newsgroup_malsar/rec.vs.talk"}


def data_home(given: str | None) -> Path:
    """``--data-home``, else ``REGMTL_DATA``, else ``../shared/data`` beside the repository."""
    if given:
        return Path(given)
    env = os.environ.get("REGMTL_DATA", "")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def load(name: str, home: Path) -> Bunch | None:
    """The data set's bunch, or None when its folder is not in ``home``."""
    if not (home / FOLDERS[name]).is_dir():
        return None
    return load_spam(data_home=home) if name == "spam" else load_newsgroups(name, data_home=home)


# ----------------------------------------------------------------------------- inputs
def vocabulary(Xs: list) -> np.ndarray:
    """The columns that occur in the rows ``Xs`` (the words seen in training)."""
    return np.flatnonzero(sp.vstack(Xs).tocsc().getnnz(axis=0) > 0)


def only(Xs: list, words: np.ndarray) -> list:
    """The columns ``words`` of every matrix of ``Xs``."""
    return [sp.csr_matrix(X)[:, words] for X in Xs]


def weigh(Xs: list, weights: str, tfidf: TfidfTransformer | None = None) -> list:
    """The bags' weights: ``counts``, ``tfidf`` (``tfidf``, fitted on the training rows:
    (1 + log count) x idf), ``log1p`` (log(1 + count)) or ``binary`` (0/1)."""
    out = []
    for X in Xs:
        X = sp.csr_matrix(X, dtype=np.float64)
        if weights == "tfidf":
            X = sp.csr_matrix(tfidf.transform(X))
        elif weights == "log1p":
            X = X.log1p()
        elif weights == "binary":
            X = (X > 0).astype(np.float64)
        out.append(X)
    return out


def stack(Xs: list, ys: list) -> tuple:
    """The per-row layout: all rows, each row's task position, each row's label."""
    task = np.concatenate([np.full(len(y), t, dtype=np.int64) for t, y in enumerate(ys)])
    return sp.vstack(Xs).tocsr(), task, np.concatenate(ys).astype(np.float64)


# ----------------------------------------------------------------------------- models
def _net(tasks: list[TaskSpec], V: int, args, seed: int) -> HardSharing:
    set_seed(seed)
    trunk = TextTrunk(V, dim=args.dim, mode="mean", dropout=args.dropout)
    return HardSharing(tasks=tasks, encoder=trunk, hidden=tuple(args.hidden))


def _trainer(net: HardSharing, args, seed: int) -> Trainer:
    return Trainer(net, lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs,
                   early_stopping=EarlyStopping("val_loss", patience=args.patience),
                   grad_balance=0, device="cpu", seed=seed)


def fit_nets(model: str, fit_, val_, test, args, seed: int) -> tuple[list, list[int]]:
    """Train the model's nets; (each task's test probabilities, epochs run by each net)."""
    (Xf, yf), (Xv, yv), Xt = fit_, val_, test
    T = len(Xf)
    names = [f"task_{t}" for t in range(T)]
    if model != "per-task":  # the words of the rows the net trains on
        Xf, Xv, Xt = (only(Xs, vocabulary(Xf)) for Xs in (Xf, Xv, Xt))
        V = Xf[0].shape[1]
    if model == "shared":
        specs = [TaskSpec(n, kind="binary") for n in names]
        Xa, ta, ya = stack(Xf, yf)
        Xb, tb, yb = stack(Xv, yv)
        tr = _trainer(_net(specs, V, args, seed), args, seed).fit((Xa, (ta, ya)), (Xb, (tb, yb)))
        Xc, tc, _ = stack(Xt, [np.zeros(X.shape[0]) for X in Xt])
        p = tr.predict(Xc, task=tc)
        return [p[tc == t] for t in range(T)], [len(tr.history)]
    if model == "pooled":
        spec = [TaskSpec("all", kind="binary")]
        Xa, _, ya = stack(Xf, yf)
        Xb, _, yb = stack(Xv, yv)
        tr = _trainer(_net(spec, V, args, seed), args, seed).fit((Xa, {"all": ya}),
                                                               (Xb, {"all": yb}))
        return [tr.predict(X)["all"] for X in Xt], [len(tr.history)]
    probs, epochs = [], []
    for t in range(T):  # each net on its own task's words
        (Xa,), (Xb,), (Xc,) = (only([Xs[t]], vocabulary([Xf[t]])) for Xs in (Xf, Xv, Xt))
        net = _net([TaskSpec("own", kind="binary")], Xa.shape[1], args, seed)
        tr = _trainer(net, args, seed).fit((Xa, {"own": yf[t]}), (Xb, {"own": yv[t]}))
        probs.append(tr.predict(Xc)["own"])
        epochs.append(len(tr.history))
    return probs, epochs


def fit_linear(model: str, Xtr: list, ytr: list, Xte: list, args, seed: int
               ) -> tuple[list, float]:
    """``MultiTaskClassifierCV`` on pooled-RMS-scaled rows; (each task's test probabilities,
    the alpha chosen)."""
    mean, scale = pooled_scaling(Xtr)
    penalty = "l21" if model == "l21" else regmtl.MeanRegularized(ridge=args.mean_ridge)
    search = regmtl.MultiTaskClassifierCV(penalty, alphas=args.alphas, cv=args.cv,
                                          random_state=seed)
    search.fit(standardize(Xtr, mean, scale), ytr)
    probs = [P[:, 1] for P in search.predict_proba(standardize(Xte, mean, scale))]
    return probs, float(search.alpha_)


def _measured(model: str, split: tuple, args, seed: int) -> dict:
    """One fit of ``model`` on a split: test AUC and accuracy per task, epochs, CPU seconds,
    peak bytes above the start of the fit."""
    Xtr, Xte, ytr, yte, inner = split
    cpu0 = time.process_time()
    if model in ("l21", "mean"):
        (probs, alpha), peak = rss_peak_increase(
            lambda: fit_linear(model, Xtr, ytr, Xte, args, seed))
        epochs, extra = [], {"alpha": alpha}
    else:
        (probs, epochs), peak = rss_peak_increase(
            lambda: fit_nets(model, inner[0], inner[1], inner[2], args, seed))
        extra = {}
    cpu = time.process_time() - cpu0
    auc = [roc_auc_score(y, p) for y, p in zip(yte, probs, strict=True)]
    acc = [float(np.mean((p >= 0.5) == (y == 1))) for y, p in zip(yte, probs, strict=True)]
    return {"auc": auc, "acc": acc, "epochs": epochs, "cpu": cpu, "peak": peak, **extra}


def run_model(model: str, split: tuple, args, seed: int) -> dict | None:
    """:func:`_measured` in a forked child (its own CPU clock and memory high-water mark, none
    of an earlier fit's caches), killed past ``--limit`` seconds (then None)."""
    try:
        return call_with_limit(lambda: _measured(model, split, args, seed), args.limit)
    except OverBudget:
        return None


def make_split(bunch, seed: int, args) -> tuple:
    """Train/test rows per task, the vocabulary of the training rows, and the nets' inputs:
    (Xtr, Xte, ytr, yte, ((X_fit, y_fit), (X_val, y_val), X_test))."""
    Xtr, Xte, ytr, yte = train_test_split_per_task(bunch.X, bunch.y, test_size=0.25,
                                                   random_state=seed)
    ytr = [np.asarray(y, dtype=np.float64) for y in ytr]
    yte = [np.asarray(y, dtype=np.float64) for y in yte]
    words = vocabulary(Xtr)
    Xtr, Xte = only(Xtr, words), only(Xte, words)
    Xf, Xv, yf, yv = train_test_split_per_task(Xtr, ytr, test_size=0.2, random_state=seed + 1000)
    tfidf = (TfidfTransformer(sublinear_tf=True, norm=None).fit(sp.vstack(Xf))
             if args.weights == "tfidf" else None)
    inner = ((weigh(Xf, args.weights, tfidf), yf), (weigh(Xv, args.weights, tfidf), yv),
             weigh(Xte, args.weights, tfidf))
    return Xtr, Xte, ytr, yte, inner


# ----------------------------------------------------------------------------- tables
def per_task_table(results: dict, task_names: list[str]) -> pd.DataFrame:
    """Per task: AUC and accuracy of each model, means over the seeds."""
    cols = {}
    for model, runs in results.items():
        cols[(model, "AUC")] = np.mean([r["auc"] for r in runs], axis=0)
        cols[(model, "acc")] = np.mean([r["acc"] for r in runs], axis=0)
    return pd.DataFrame(cols, index=task_names)


def summary_table(results: dict) -> pd.DataFrame:
    rows = {}
    for model, runs in results.items():
        auc = np.array([r["auc"] for r in runs])  # (seeds x repeats, T)
        acc = np.array([r["acc"] for r in runs])
        # an epoch: one pass over all training rows (per task: one epoch of every net)
        epochs = [float(np.mean(r["epochs"])) if r["epochs"] else 0.0 for r in runs]
        per_epoch = [r["cpu"] * len(r["epochs"]) / sum(r["epochs"]) if r["epochs"] else np.nan
                     for r in runs]
        rows[model] = {
            "AUC mean": auc.mean(axis=1).mean(), "AUC med": np.median(auc, axis=1).mean(),
            "AUC min": auc.min(axis=1).mean(), "acc mean": acc.mean(axis=1).mean(),
            "acc med": np.median(acc, axis=1).mean(), "acc min": acc.min(axis=1).mean(),
            "s/epoch": statistics.median(per_epoch) if epochs[0] else np.nan,
            "epochs": statistics.median(epochs) if epochs[0] else np.nan,
            "fit s": statistics.median(r["cpu"] for r in runs),
            "peak MiB": max(r["peak"] for r in runs) / 2**20,
        }
        if "alpha" in runs[0]:
            rows[model]["alpha"] = statistics.median(r["alpha"] for r in runs)
    table = pd.DataFrame(rows).T
    if "shared" in table.index:
        table.insert(6, "dAUC vs shared", table["AUC mean"] - table.loc["shared", "AUC mean"])
        table.insert(table.columns.get_loc("fit s") + 1, "fit / shared",
                     table["fit s"] / table.loc["shared", "fit s"])
    return table


def warm_up() -> None:
    """Tiny fits before the timed ones, in this process: the code that a first fit loads
    (torch._dynamo with the first optimizer, the solvers' cached numba kernels) is then
    inherited by every forked fit."""
    X = sp.random(40, 5, density=0.5, format="csr", random_state=0)
    y = np.arange(40) % 2
    net = HardSharing(tasks=[TaskSpec("a", kind="binary")], encoder=TextTrunk(5, dim=2),
                      hidden=())
    Trainer(net, max_epochs=1, grad_balance=0, device="cpu").fit((X, {"a": y}))
    for penalty in ("l21", regmtl.MeanRegularized(ridge=1.0)):
        regmtl.MultiTaskClassifierCV(penalty, alphas=2, cv=2).fit([X[:20], X[20:]],
                                                                   [y[:20], y[20:]])


def run_set(name: str, bunch, args) -> None:
    T = len(bunch.X)
    results: dict[str, list] = {m: [] for m in args.models}
    words = []
    for seed in args.seeds:
        split = make_split(bunch, seed, args)
        words.append(split[0][0].shape[1])
        for model in args.models:
            for _ in range(args.repeats):
                res = run_model(model, split, args, seed)
                if res is None:
                    print(f"  {name} {model} seed {seed}: stopped after {args.limit:g} s")
                    continue
                results[model].append(res)
    results = {m: runs for m, runs in results.items() if runs}
    n = sum(len(y) for y in bunch.y)
    print(f"\n{name}: {T} tasks, {n} rows, {bunch.X[0].shape[1]:,} columns "
          f"({int(np.median(words)):,} words in the training rows), seeds {args.seeds}, "
          f"{args.repeats} repeat(s)")
    fmt = "{:.4f}".format
    if T > 2:
        print("Per task, test AUC and accuracy (mean over seeds):")
        print(per_task_table(results, list(bunch.task_names)).to_string(float_format=fmt))
    else:
        print(per_task_table(results, list(bunch.task_names)).to_string(float_format=fmt))
    table = summary_table(results)
    print("Over tasks (mean over seeds of the mean / median / min over tasks); cost medians:")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="fits per seed and model (timing)")
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--dim", type=int, default=32, help="embedding width")
    ap.add_argument("--hidden", nargs="*", type=int, default=[],
                    help="widths of an MLP on the pooled embedding (default: none)")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout on the pooled vector")
    ap.add_argument("--weights", default="tfidf", choices=("counts", "tfidf", "log1p", "binary"))
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60, help="most epochs of a net")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--alphas", type=int, default=10, help="grid size of the linear models")
    ap.add_argument("--cv", type=int, default=3, help="CV folds of the linear models")
    ap.add_argument("--mean-ridge", type=float, default=1.0,
                    help="ridge of MeanRegularized (0: the mean task unpenalized)")
    ap.add_argument("--limit", type=float, default=1200.0,
                    help="wall-clock seconds a fit may take before it is stopped")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
    home = data_home(args.data_home)
    warm_up()
    print(f"regmtl {regmtl.__version__}, torch {torch.__version__}, {platform.machine()}, "
          f"1 intra-op/BLAS thread, data home {home}")
    print(f"nets: TextTrunk(dim={args.dim}, mean) {args.weights}, hidden {args.hidden}, "
          f"dropout {args.dropout}, Adam lr {args.lr}, batch {args.batch_size}, <= {args.epochs} "
          f"epochs, patience {args.patience}; linear: {args.cv}-fold CV over {args.alphas} "
          f"alphas, MeanRegularized(ridge={args.mean_ridge})")
    for name in args.sets:
        bunch = load(name, home)
        if bunch is None:
            print(f"\n{name}: skipped ({FOLDERS[name]} not under {home})")
            continue
        run_set(name, bunch, args)


if __name__ == "__main__":
    main()
