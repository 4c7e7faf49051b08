"""The scikit-learn wrappers against the Trainer, one row per input kind.

For each kind of input the wrappers take, a wrapper's ``fit`` and a
:class:`~regmtl.deep.Trainer`'s ``fit`` on the same data, with the same net (hard sharing,
one hidden layer of 64 on the encoder), the same seed, batch size and epochs (no early
stopping): seconds per epoch of each (CPU seconds of the process over the whole ``fit``,
divided by the epochs: the wrapper's own preparation, the checks, encodings and the
tokenizing, is inside its time; the Trainer is given the inputs already prepared), their
ratio wrapper / Trainer, medians of ``--repeats`` runs (the two alternate, the order flipped
every repeat).

- dense table: School (139 tasks, 15,362 rows, 28 columns), one table per task (regression);
- DataFrame with categoricals: School's rows as a table of 3 numeric columns and 4 string
  columns (year, VR band, ethnic group, school denomination, each embedded), long form by school;
- images: scikit-learn's digits (1,797 8x8 images), two tasks (parity, digit > 4), shared
  (ConvTrunk (32, 64));
- sparse: the 20 Newsgroups pair comp.vs.sci (2 tasks, 2,000 term counts, CSR), one matrix per
  task (TextTrunk, embedding bag, 64);
- token ids: the same documents written back as words and tokenized, (n, 256) ids, long form;
- raw strings: those texts, tokenized by the wrapper.

The text rows are skipped without the data (``REGMTL_DATA`` or ``../shared/data``).

``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/bench_deep_wrappers.py [--repeats 5]
[--epochs 4]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from regmtl.datasets import load_newsgroups, load_school
from regmtl.deep import (
    Categorical,
    ConvTrunk,
    DeepMultiTaskClassifier,
    DeepMultiTaskRegressor,
    FeatureColumns,
    HardSharing,
    Numeric,
    TaskSpec,
    TextTrunk,
    Trainer,
    set_seed,
)
from regmtl.deep.tokenizer import Tokenizer

HIDDEN, BATCH, LR, SEED = (64,), 256, 1e-3, 0


def wrapper_kw(epochs: int) -> dict:
    return dict(hidden=HIDDEN, batch_size=BATCH, lr=LR, max_epochs=epochs,
                early_stopping=False, random_state=SEED, device="cpu")


def trainer_fit(encoder, n_features, specs, X, targets, epochs: int) -> None:
    """The Trainer as the wrapper runs it: the same seed, net and options."""
    seed = int(np.random.default_rng(SEED).integers(2**31))
    set_seed(seed)
    net = HardSharing(n_features, specs, hidden=HIDDEN, encoder=encoder() if encoder else None)
    net.heads.start_shared()
    Trainer(net, lr=LR, batch_size=BATCH, max_epochs=epochs, early_stopping=None,
            device="cpu", distributed=False, seed=seed).fit((X, targets))


def binary(n: int) -> list:
    return [TaskSpec(f"t{k}", kind="binary", metrics=("accuracy",)) for k in range(n)]


def regression(n: int) -> list:
    return [TaskSpec(f"t{k}", kind="regression") for k in range(n)]


def per_row(ys) -> tuple:
    rows = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return rows, np.concatenate(ys).astype(np.float64)


# ---------------------------------------------------------------------------- the kinds
def dense_table(epochs):
    data = load_school()
    Xs, ys = [np.asarray(X, dtype=np.float64) for X in data.X], list(data.y)
    Z = np.vstack(Xs)
    sd = Z.std(axis=0)
    Zs = ((Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)
    return (lambda: DeepMultiTaskRegressor(**wrapper_kw(epochs)).fit(Xs, ys),
            lambda: trainer_fit(None, Z.shape[1], regression(len(Xs)), Zs, per_row(ys),
                                epochs), len(Z))


def school_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_school()
    names = list(data.feature_names)
    Z = np.vstack(data.X)

    def pick(prefix, among=None):
        cols = [i for i, n in enumerate(names) if n.startswith(prefix)
                and (among is None or n in among)]
        return np.array([names[i] for i in cols])[Z[:, cols].argmax(axis=1)]

    frame = pd.DataFrame({
        "free_meals": Z[:, names.index("pct_free_school_meals")],
        "vr1": Z[:, names.index("pct_vr1_band")], "female": Z[:, names.index("female")],
        "year": pick("year_"), "vr_band": pick("vr_band_"), "ethnic": pick("ethnic_"),
        "school_kind": pick("school_", ("school_maintained", "school_church_of_england",
                                                "school_roman_catholic")),
    })
    frame["school"] = np.concatenate([np.full(len(X), t) for t, X in enumerate(data.X)])
    return frame, np.concatenate(data.y).astype(np.float64)


def frame_with_categoricals(epochs):
    frame, y = school_frame()
    cats = ["year", "vr_band", "ethnic", "school_kind"]
    num = ["free_meals", "vr1", "female"]
    inputs = {f"cat{k}": pd.Categorical(frame[c]).codes.astype(np.int64)
              for k, c in enumerate(cats)}
    values = frame[num].to_numpy(np.float64)
    inputs["numeric"] = ((values - values.mean(0)) / values.std(0)).astype(np.float32)
    sizes = [frame[c].nunique() for c in cats]

    def encoder():
        enc = FeatureColumns([*(Categorical(f"cat{k}", v) for k, v in enumerate(sizes)),
                              Numeric("numeric", width=len(num))])
        enc.set_numeric_stats("numeric", np.zeros(len(num)), np.ones(len(num)))
        return enc

    T = frame["school"].nunique()
    return (lambda: DeepMultiTaskRegressor(**wrapper_kw(epochs)).fit(frame, y, task="school"),
            lambda: trainer_fit(encoder, None, regression(T), inputs,
                                (frame["school"].to_numpy(), y), epochs), len(frame))


def images(epochs):
    from sklearn.datasets import load_digits

    d = load_digits()
    X, y = d.images, d.target
    Y = np.column_stack([y % 2, (y > 4).astype(int)])
    X32 = X.astype(np.float32)
    return (lambda: DeepMultiTaskClassifier(**wrapper_kw(epochs)).fit(X, Y),
            lambda: trainer_fit(lambda: ConvTrunk(1), None, binary(2), X32,
                                {"t0": Y[:, 0] * 1.0, "t1": Y[:, 1] * 1.0}, epochs), len(X))


def news():
    home = os.environ.get("REGMTL_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data")
    if not Path(home, "newsgroup_malsar").is_dir():
        return None
    data = load_newsgroups("comp.vs.sci", data_home=home)
    return [sp.csr_matrix(X).astype(np.float32) for X in data.X], [
        np.asarray(y).astype(int) for y in data.y]


def as_texts(X) -> np.ndarray:
    X = sp.csr_matrix(X)
    return np.array([" ".join(f"w{j}" for j, c in zip(X.indices[a:b], X.data[a:b],
                                                        strict=True) for _ in range(int(c)))
                     for a, b in zip(X.indptr[:-1], X.indptr[1:], strict=True)], dtype=object)


def sparse(epochs, Xs, ys):
    V = Xs[0].shape[1]
    S = sp.vstack(Xs).tocsr()
    return (lambda: DeepMultiTaskClassifier(**wrapper_kw(epochs)).fit(Xs, ys),
            lambda: trainer_fit(lambda: TextTrunk(V), None, binary(2), S, per_row(ys),
                                epochs), S.shape[0])


def token_ids(epochs, Xs, ys):
    texts = np.concatenate([as_texts(X) for X in Xs])
    ids = Tokenizer().fit(texts).transform(texts)
    rows, y = per_row(ys)
    V = int(ids.max()) + 1
    return (lambda: DeepMultiTaskClassifier(input_kind="tokens", **wrapper_kw(epochs)).fit(
                ids, y.astype(int), task=rows),
            lambda: trainer_fit(lambda: TextTrunk(V), None, binary(2), ids, (rows, y), epochs),
            len(ids))


def raw_strings(epochs, Xs, ys):
    texts = [as_texts(X) for X in Xs]
    rows, y = per_row(ys)

    def trainer():  # the user's tokenizing is timed with the Trainer
        tok = Tokenizer().fit(np.concatenate(texts))
        ids = tok.transform(np.concatenate(texts))
        trainer_fit(lambda: TextTrunk(tok.n_ids), None, binary(2), ids, (rows, y), epochs)

    return (lambda: DeepMultiTaskClassifier(**wrapper_kw(epochs)).fit(texts, ys), trainer,
            len(rows))


def timed(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    E = args.epochs
    cases = [("dense table", dense_table(E)), ("DataFrame + categoricals",
                                               frame_with_categoricals(E)),
             ("images", images(E))]
    text = news()
    if text is None:
        print("(text rows skipped: no newsgroup_malsar under REGMTL_DATA or ../shared/data)")
    else:
        cases += [("sparse", sparse(E, *text)), ("token ids", token_ids(E, *text)),
                  ("raw strings", raw_strings(E, *text))]
    print(f"{'input':<26}{'rows':>7}{'wrapper s/ep':>14}{'Trainer s/ep':>14}{'ratio':>8}")
    for name, (wrapper, trainer, n) in cases:
        w, t, r = [], [], []
        for k in range(args.repeats):
            pair = [(w, wrapper), (t, trainer)]
            for out, fn in pair if k % 2 == 0 else pair[::-1]:
                out.append(timed(fn) / E)
            r.append(w[-1] / t[-1])
        print(f"{name:<26}{n:>7}{statistics.median(w):>14.4f}{statistics.median(t):>14.4f}"
              f"{statistics.median(r):>8.3f}", flush=True)


if __name__ == "__main__":
    main()
