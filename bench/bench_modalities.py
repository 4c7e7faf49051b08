"""One net on images, texts and a table against one net per modality.

The data: :func:`regmtl.datasets.make_multimodal_tasks`: scikit-learn's 1,797 real digits,
each with a generated five-word text naming a colour and a table column; three tasks, each
needing a different modality: ``parity`` (the image), ``colour`` (the text), ``value`` = 5 x
the image's mean pixel + the table column (both). One row per sample and task (5,391 rows); 20 %
of the rows miss their text, 10 % their image; the samples split 80 / 20.

The models, every one a ``DeepMultiTaskModel`` (hard sharing, hidden (64,), Adam lr 3e-3,
batches of 128, at most ``--epochs`` epochs, early stopping with patience 8 on 10 % of the
training rows):

- ``joint, concat``: ``X = Modalities(image=, text=, table=)``: a ConvTrunk (8, 16), a
  TextTrunk of 16 and a TableTrunk (32,) fused by concatenation;
- ``joint, gated``: the same, fused by softmax gates;
- ``joint, dropout 0.2``: concatenation, ``modality_dropout=0.2``;
- ``image only`` / ``text only`` / ``table only``: the one-kind wrapper on that input alone,
  as a user without ``Modalities`` would fit it: a missing image as zeros, a missing text as
  "" (the table is never missing).

Held-out scores per task (the test samples' rows): parity and colour accuracy, value R^2, over
all rows and over the rows that have the modality the task needs ("parity (image)": the
parity rows with an image). Medians over
``--seeds`` (seed s: the data's missing rows and split, and the net) of the scores, the fit
and predict seconds and the epochs run (one intra-op thread); the run's peak resident memory
at the end.

``--text newsgroups`` puts real documents in place of the generated texts: the bags of words
of the 20 Newsgroups pair rec.vs.talk (MALSAR's first task, 1,844 documents over 2,000 words;
``regmtl.datasets.load_newsgroups``, read from the data folder, ``REGMTL_DATA``), one document
per digit, and the text task becomes ``topic``, the document's newsgroup. A bag of words is
never missing (a row without words is an empty document), so a row that misses its text there
reads an empty bag.

``python bench/bench_modalities.py [--seeds 3] [--epochs 40] [--text generated|newsgroups]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

from regmtl.datasets import load_newsgroups, make_multimodal_tasks  # noqa: E402
from regmtl.deep import DeepMultiTaskModel, Modalities  # noqa: E402

ENCODERS = {"image": {"channels": (8, 16)}, "text": {"dim": 16}}
ONE_KIND = {"image": {"channels": (8, 16)}, "text": {"dim": 16}, "table": None}
MODELS = ("joint, concat", "joint, gated", "joint, dropout 0.2", "image only", "text only",
          "table only")
COLUMNS = ("parity", "parity (image)", "colour", "colour (text)", "value", "value (image)")


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def with_newsgroups(d, seed: int):
    """``d`` with a real document per digit in place of its text, and the text task the
    document's newsgroup (``topic``); a missing text an empty bag of words."""
    ng = load_newsgroups("rec.vs.talk")
    bags, label = sp.csr_matrix(ng.X[0]), np.asarray(ng.y[0])
    docs = np.random.default_rng(seed).permutation(bags.shape[0])[: d.sample.max() + 1]
    keep = sp.diags((~d.missing_text).astype(np.float64))
    d.text = (keep @ bags[docs[d.sample]]).tocsr()
    rows = d.task == "colour"
    d.y[rows] = np.where(label[docs[d.sample[rows]]] == 1, "talk", "rec")
    d.task = np.where(rows, "topic", d.task)
    d.kinds = {"parity": "classification", "topic": "classification",
               "value": "regression"}
    return d


def _texts(d, rows: np.ndarray, fill: bool):
    if sp.issparse(d.text):
        return d.text[rows]
    return [("" if fill else None) if d.text[i] is None else d.text[i] for i in rows]


def inputs(d, model: str, rows: np.ndarray):
    """What ``model`` reads of the rows: a Modalities, or one modality, filled as a user
    without Modalities would fill it."""
    if model.startswith("joint"):
        return Modalities(image=d.image[rows], text=_texts(d, rows, False),
                          table=d.table[rows])
    if model == "image only":
        return np.nan_to_num(d.image[rows], nan=0.0)
    if model == "text only":
        return _texts(d, rows, True)
    return d.table[rows]


def estimator(model: str, kinds: dict, epochs: int, seed: int) -> DeepMultiTaskModel:
    kw = dict(kinds=kinds, hidden=(64,), max_epochs=epochs, batch_size=128, lr=3e-3,
              patience=8, random_state=seed)
    if model.startswith("joint"):
        kw["trunk"] = ENCODERS
        kw["fusion"] = "gated" if "gated" in model else "concat"
        kw["modality_dropout"] = 0.2 if "dropout" in model else 0.0
    else:
        kw["trunk"] = ONE_KIND[model.split()[0]]
    return DeepMultiTaskModel(**kw)


def scores(d, pred: np.ndarray) -> dict[str, float]:
    """Held-out scores of the test rows' predictions ``pred`` (the text task's under the
    name ``colour``, whichever it is)."""
    te = d.test
    task, y = d.task[te], d.y[te]
    has_image, has_text = ~d.missing_image[te], ~d.missing_text[te]
    text_task = [t for t in d.kinds if t not in ("parity", "value")][0]
    out = {}
    for name, cond in (("parity", None), ("parity (image)", has_image)):
        s = (task == "parity") & (True if cond is None else cond)
        out[name] = accuracy_score(y[s].astype(str), pred[s].astype(str))
    for name, cond in (("colour", None), ("colour (text)", has_text)):
        s = (task == text_task) & (True if cond is None else cond)
        out[name] = accuracy_score(y[s].astype(str), pred[s].astype(str))
    for name, cond in (("value", None), ("value (image)", has_image)):
        s = (task == "value") & (True if cond is None else cond)
        out[name] = r2_score(y[s].astype(float), pred[s].astype(float))
    return out


def run(model: str, seed: int, epochs: int, text: str) -> dict:
    d = make_multimodal_tasks(random_state=seed)
    if text == "newsgroups":
        d = with_newsgroups(d, seed)
    torch.manual_seed(seed)
    est = estimator(model, d.kinds, epochs, seed)
    t0 = time.perf_counter()
    est.fit(inputs(d, model, d.train), d.y[d.train], task=d.task[d.train])
    fit_s = time.perf_counter() - t0
    X_test = inputs(d, model, d.test)
    t0 = time.perf_counter()
    pred = est.predict(X_test, task=d.task[d.test])
    predict_s = time.perf_counter() - t0
    return {**scores(d, pred), "fit s": fit_s, "predict s": predict_s,
            "epochs": len(est.trainer_.history_)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--text", choices=("generated", "newsgroups"), default="generated")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"medians of {args.seeds} seed(s), at most {args.epochs} epochs; texts: {args.text}"
          + (" (the 'colour' columns: the topic)" if args.text == "newsgroups" else ""))
    head = ["model", *COLUMNS, "fit s", "predict s", "epochs"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    table = {}
    for model in args.models:
        runs = [run(model, s, args.epochs, args.text) for s in range(args.seeds)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        table[model] = med
        cells = [f"{med[c]:.3f}" for c in COLUMNS]
        print(f"| {model} | " + " | ".join(cells)
              + f" | {med['fit s']:.1f} | {med['predict s']:.3f} | {med['epochs']:.0f} |",
              flush=True)
    print(f"\npeak resident memory of the run: {_peak_mib():.0f} MiB")
    joint = table.get("joint, concat")
    if joint is None:
        return
    print("\nthe joint net (concat) minus each one-modality net, on the tasks that modality "
          "cannot see:")
    blind = {"image only": ("colour",), "text only": ("parity", "value"),
             "table only": ("parity", "colour")}
    for model, tasks in blind.items():
        if model in table:
            gaps = ", ".join(f"{t} {joint[t] - table[model][t]:+.3f}" for t in tasks)
            print(f"- {model}: {gaps}")


if __name__ == "__main__":
    main()
