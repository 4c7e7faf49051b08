"""
Recommendation on ids alone: embeddings against dense features
==============================================================

A recommender log often holds little more than who saw what: a user id, an item id and the
item's category. :func:`regmtl.datasets.make_recommender_tasks` gives both views of one log:
dense features (noisy user and item factors, their products, price and noisy quality,
popularity and activity scores) and the ids ``user``, ``item`` and ``category`` alone. Three
multi-task nets, :class:`regmtl.deep.MMoE`, :class:`regmtl.deep.PLE` and
:class:`regmtl.deep.ESMM`, are trained on each view; on the ids, a
:class:`regmtl.deep.FeatureColumns` encoder of three :class:`regmtl.deep.Categorical` columns
learns one embedding per id. The claim: with several hundred impressions per user and per
item, the nets on ids alone rank clicks and purchases about as well as the same nets on the
dense features: at most 0.011 AUC below them on every task at this example's full size (and
0.05 at the reduced size the test suite runs; ``bench/bench_deep_recommender.py`` finds them
within 0.01 on every seed with 200 users, 100 items and 200,000 impressions). A user never seen
in training gets a prediction all the same, from the embedding table's out-of-vocabulary row.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from regmtl.datasets import make_recommender_tasks
from regmtl.deep import (
    ESMM,
    PLE,
    Categorical,
    EarlyStopping,
    FeatureColumns,
    L2Penalty,
    MMoE,
    TaskSpec,
    Trainer,
    esmm_targets,
    set_seed,
)

# Smaller sizes and fewer epochs when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# These nets are small: on a CPU one thread is faster than several (no synchronization).
torch.set_num_threads(1)

# %%
# One log, two views
# ------------------
# Every item belongs to one of a few categories, groups of items alike in their latent factors
# and quality, so the category id tells something about an item too. Each user and each item
# appears in several hundred training impressions: an embedding learns only from the rows of
# its id.
n_samples, n_users, n_items, n_categories = ((20000, 30, 20, 5) if QUICK
                                             else (60000, 60, 40, 8))
max_epochs = 12 if QUICK else 30
log = make_recommender_tasks(n_samples, n_users, n_items, n_categories=n_categories,
                             random_state=0)
click, purchase = log.Y[:, 0], log.Y[:, 1]
rng = np.random.default_rng(0)
perm = rng.permutation(n_samples)
test, val, train = np.split(perm, [n_samples // 5, 2 * n_samples // 5])
print(f"{n_samples} impressions, {n_users} users, {n_items} items in {n_categories} "
      f"categories; {len(train) / n_users:.0f} training rows per user, "
      f"{len(train) / n_items:.0f} per item")

dense = ((log.X - log.X[train].mean(0)) / log.X[train].std(0)).astype(np.float32)
ids = {"user": log.user, "item": log.item, "category": log.category}


def rows(X, idx):
    """The rows ``idx`` of an array or of a dict of arrays."""
    return {k: v[idx] for k, v in X.items()} if isinstance(X, dict) else X[idx]


# %%
# The same nets on either view
# ----------------------------
# On the ids, the net's ``encoder`` embeds each column (8 numbers per id) and concatenates
# them; everything above the encoder is the same as on the dense features. An L2 penalty on
# the embedding tables keeps the ids with few rows near zero. MMoE and PLE predict the click
# on every impression and the purchase on the clicked ones (NaN elsewhere); ESMM predicts the
# click and click-and-purchase on every impression, its conversion rate (pCVR) through the
# product. Adam, early stopping on the validation loss.
def encoder():
    return FeatureColumns([Categorical("user", n_users, dim=8),
                           Categorical("item", n_items, dim=8),
                           Categorical("category", n_categories, dim=8)])


def build(name, view):
    enc, width = (encoder(), None) if view == "ids" else (None, dense.shape[1])
    if name == "ESMM":
        return ESMM(width, hidden=(32, 16), tower_hidden=(8,), encoder=enc)
    tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary")]
    if name == "MMoE":
        return MMoE(width, tasks, 4, expert_hidden=(32,), tower_hidden=(8,), encoder=enc)
    return PLE(width, tasks, 2, expert_hidden=(32,), tower_hidden=(8,), encoder=enc)


def click_and_cvr(net, trainer, X):
    """pCTR and pCVR on every row of ``X``."""
    if isinstance(net, ESMM):
        net.eval()
        with torch.no_grad():
            x = ({k: torch.as_tensor(v) for k, v in X.items()} if isinstance(X, dict)
                 else torch.as_tensor(X))
            p = net.probabilities(x)
        return p["ctr"].cpu().numpy(), p["cvr"].cpu().numpy()
    pred = trainer.predict(X)
    return pred["click"], pred["purchase"]


nets = ["MMoE", "PLE", "ESMM"]
results, trainers = [], {}
for name in nets:
    labels = (esmm_targets(click, purchase) if name == "ESMM"
              else {"click": click, "purchase": purchase})
    for view, X in (("dense", dense), ("ids", ids)):
        set_seed(0)
        net = build(name, view)
        penalty = (L2Penalty(3e-3, params=lambda m: m.encoder.parameters())
                   if view == "ids" else None)
        trainer = Trainer(net, lr=1e-2, batch_size=512, max_epochs=max_epochs, penalty=penalty,
                          early_stopping=EarlyStopping(patience=3), grad_balance=0, seed=0)
        start = time.perf_counter()
        trainer.fit((rows(X, train), {k: v[train] for k, v in labels.items()}),
                    val=(rows(X, val), {k: v[val] for k, v in labels.items()}))
        seconds = time.perf_counter() - start
        pctr, pcvr = click_and_cvr(net, trainer, rows(X, test))
        seen = click[test] == 1
        results.append({
            "net": name, "inputs": view,
            "click AUC": roc_auc_score(click[test], pctr),
            "purchase AUC": roc_auc_score(purchase[test][seen], pcvr[seen]),
            "CTCVR AUC": roc_auc_score(np.where(seen, purchase[test], 0.0), pctr * pcvr),
            "CVR AUC (all)": roc_auc_score(log.purchase_if_clicked[test], pcvr),
            "epochs": len(trainer.history),
            "s/epoch": seconds / len(trainer.history),
        })
        trainers[name, view] = trainer

table = pd.DataFrame(results).set_index(["net", "inputs"])
print(table.round(4).to_string())

# %%
# The test AUCs: click on every impression, purchase on the clicked ones, click-and-purchase
# (pCTR x pCVR) on every impression, and pCVR against the purchase each impression would have
# had if clicked (``purchase_if_clicked``), on every impression: the exposure space ESMM is
# made for. The dashed lines are the AUCs of the true probabilities, the best any model can
# do. The dense features carry the latent factors with noise; the embeddings learn them from
# the rows of each id instead, and end about as far below the ceiling.
metrics = ["click AUC", "purchase AUC", "CTCVR AUC", "CVR AUC (all)"]
gaps = (table.xs("ids", level="inputs")[metrics] - table.xs("dense", level="inputs")[metrics])
print("\nids minus dense:")
print(gaps.round(4).to_string())
ceiling = {
    "click AUC": roc_auc_score(click[test], log.click_probability[test]),
    "CVR AUC (all)": roc_auc_score(log.purchase_if_clicked[test],
                                   log.conversion_probability[test]),
}
print("\nAUC of the true probabilities: "
      + ", ".join(f"{k} {v:.4f}" for k, v in ceiling.items()))

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
width = 0.38
for ax, metric in zip(axes, ["click AUC", "CVR AUC (all)"], strict=True):
    for k, view in enumerate(["dense", "ids"]):
        values = [table.loc[(n, view), metric] for n in nets]
        ax.bar(np.arange(len(nets)) + (k - 0.5) * width, values, width, color=f"C{k}",
               label="dense features" if view == "dense" else "ids (user, item, category)")
    ax.axhline(ceiling[metric], color="gray", linestyle="--", linewidth=0.8)
    ax.set_xticks(np.arange(len(nets)), nets)
    ax.set_ylim(0.5, 0.85)  # 0.5: chance
    ax.set_title(f"test {metric}")
axes[0].legend(frameon=False, loc="upper left", fontsize="small")
plt.show()

# %%
# A user never seen in training
# -----------------------------
# Ids outside ``0 .. vocab_size - 1`` read the last row of the table, the out-of-vocabulary
# bucket. In training a fraction ``oov_rate`` (1%) of the ids is sent there, so the bucket
# holds something like an average user: a new user gets a prediction, the same for every
# unseen id, with no error.
mmoe = trainers["MMoE", "ids"]
item = np.full(3, log.item[0])
category = log.item_category[item]
unseen = mmoe.predict({"user": np.array([n_users, n_users + 100, 10**9]), "item": item,
                       "category": category})["click"]
known = mmoe.predict({"user": np.arange(n_users), "item": np.full(n_users, item[0]),
                      "category": np.full(n_users, category[0])})["click"]
print(f"P(click) of item {item[0]} for three unseen users: {np.round(unseen, 4)}; for the "
      f"{n_users} known users: {known.min():.3f} to {known.max():.3f} (mean {known.mean():.3f})")
