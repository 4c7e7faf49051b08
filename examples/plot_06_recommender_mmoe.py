"""
Recommender tasks with MMoE: click, purchase, rating
====================================================

A recommender log from :func:`regmtl.datasets.make_recommender_tasks` has one row per
impression and three labels: a click (every row), a purchase (observed only after a click, NaN
elsewhere) and a rating (observed only after a purchase). A multi-gate mixture of experts
(:class:`regmtl.deep.MMoE`) and a shared bottom (:class:`regmtl.deep.HardSharing`) are each
trained with three ways of combining the task losses: equal weights, uncertainty weighting
(:class:`regmtl.deep.UncertaintyWeighting`) and gradient surgery
(:class:`regmtl.deep.PCGrad`). The claim: all six nets learn all three tasks (test AUC above
0.6 for click and for purchase, rating error below 70% of the variance of the test ratings)
and their click AUCs lie within 0.015 of each other: on this log neither the architecture nor
the weighting matters much, since the three labels share their main driver, the fit of the item
to the user. Uncertainty weighting gives the largest weight to the task with the smallest loss
(rating), and PCGrad finds less conflict between the task gradients in MMoE than in the shared
bottom (its largest coefficient is smaller).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from regmtl.datasets import make_recommender_tasks
from regmtl.deep import EarlyStopping, HardSharing, MMoE, TaskSpec, Trainer, set_seed

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# These nets are small: on a CPU one thread is faster than several (no synchronization).
torch.set_num_threads(1)

# %%
# A log with click, purchase and rating
# -------------------------------------
# About 30% of the impressions are clicked and 30% of the clicks end in a purchase, so the
# purchase label exists on about 30% of the rows and the rating on about 9%. NaN marks a
# missing label; the trainer leaves it out of that task's loss.
data = make_recommender_tasks(8000 if QUICK else 20000, random_state=0)
X, Y = data.X, data.Y
print(f"{X.shape[0]} impressions, {X.shape[1]} features; labels observed:",
      dict(zip(data.target_names, (~np.isnan(Y)).sum(axis=0).tolist(), strict=True)))

# %%
# Split 60 / 20 / 20 into training, validation (for early stopping) and test rows. The
# features and the rating are standardized with the training rows, so the rating's squared
# loss is on the scale of the two log losses.
X_train, X_rest, Y_train, Y_rest = train_test_split(X, Y, test_size=0.4, random_state=0)
X_val, X_test, Y_val, Y_test = train_test_split(X_rest, Y_rest, test_size=0.5, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val, X_test = (scaler.transform(A) for A in (X_train, X_val, X_test))
r_mean, r_std = np.nanmean(Y_train[:, 2]), np.nanstd(Y_train[:, 2])
Y_train, Y_val, Y_test = (np.column_stack([A[:, :2], (A[:, 2] - r_mean) / r_std])
                          for A in (Y_train, Y_val, Y_test))
tasks = [TaskSpec("click", kind="binary"), TaskSpec("purchase", kind="binary"),
         TaskSpec("rating")]


# %%
# Two architectures, three weightings
# -----------------------------------
# The shared bottom passes every row through the same two layers (64 and 32 units) and then
# one small tower per task. MMoE has four experts of 32 units shared by all tasks, and each
# task mixes them with its own softmax gate. Both have a tower with 16 hidden units per task
# and about as many parameters. Each net trains with Adam for at most 20 epochs and stops when
# the validation loss has not improved for 3 epochs, keeping its best epoch.
def build(architecture):
    if architecture == "shared bottom":
        return HardSharing(X.shape[1], tasks, hidden=(64, 32), head_hidden=(16,))
    return MMoE(X.shape[1], tasks, n_experts=4, expert_hidden=(32,), tower_hidden=(16,))


architectures = ["shared bottom", "MMoE"]
weightings = ["equal", "uncertainty", "pcgrad"]
rows, trainers = [], {}
for architecture in architectures:
    for weighting in weightings:
        set_seed(0)
        net = build(architecture)
        trainer = Trainer(net, weighting=weighting, lr=3e-3, batch_size=256, max_epochs=20,
                          early_stopping=EarlyStopping(patience=3), seed=0)
        trainer.fit((X_train, Y_train), val=(X_val, Y_val))
        pred = trainer.predict(X_test)
        row = {"architecture": architecture, "weighting": weighting}
        for t, task in enumerate(["click", "purchase"]):
            seen = ~np.isnan(Y_test[:, t])
            row[f"{task} AUC"] = roc_auc_score(Y_test[seen, t], pred[task][seen])
        seen = ~np.isnan(Y_test[:, 2])  # rating error in stars, on the purchased rows
        row["rating MSE"] = mean_squared_error(Y_test[seen, 2] * r_std,
                                               pred["rating"][seen] * r_std)
        row["epochs"] = len(trainer.history)
        rows.append(row)
        trainers[architecture, weighting] = trainer

results = pd.DataFrame(rows).set_index(["architecture", "weighting"])
rating_variance = np.nanvar(Y_test[:, 2] * r_std)
print(f"test metrics (variance of the test ratings: {rating_variance:.3f})")
print(results.round(4).to_string())

# %%
# All six nets land close together, well above chance (AUC 0.5) and well below the error of
# predicting the mean rating (the dashed line). The three labels share their main driver, so a
# shared bottom already serves all three, and MMoE's gates have little to sort out. Purchase
# (a few thousand training labels) is the noisiest task: there the two architectures differ
# more, and which one wins changes with the random draw of the log.
click_range = results["click AUC"].max() - results["click AUC"].min()
print(f"\nclick AUC, best minus worst of the six nets: {click_range:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), layout="constrained")
width = 0.27
for ax, metric in zip(axes, ["click AUC", "purchase AUC", "rating MSE"], strict=True):
    for k, weighting in enumerate(weightings):
        values = [results.loc[(a, weighting), metric] for a in architectures]
        ax.bar(np.arange(2) + (k - 1) * width, values, width, label=weighting, color=f"C{k}")
    if metric == "rating MSE":
        ax.axhline(rating_variance, color="gray", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, 1.1 * rating_variance)
    else:
        ax.set_ylim(0.5, 0.8)  # 0.5: chance
    ax.set_xticks(np.arange(2), architectures)
    ax.set_title(f"test {metric}" + (" (lower is better)" if "MSE" in metric else ""))
fig.legend(*axes[0].get_legend_handles_labels(), title="weighting", loc="outside right center",
           frameon=False)
plt.show()

# %%
# What the weightings did
# -----------------------
# Uncertainty weighting learns one log-variance :math:`s_t` per task and weighs its loss by
# :math:`e^{-s_t}`, which drifts towards one over the task's loss: the rating, fitted best,
# gets the largest weight (the curves below). PCGrad reports the effective coefficient of each
# task's gradient in the update of the shared parameters: 1 when no other task's gradient
# conflicts with it; each conflict projects another task's gradient away from it, which adds
# to its coefficient. The coefficients stay near 1, the nearer in MMoE, where each task
# reaches the shared experts through its own gate.
uncertainty_weights = pd.DataFrame({
    a: torch.exp(-trainers[a, "uncertainty"].weighting.log_vars).detach().cpu().numpy()
    for a in architectures}, index=[t.name for t in tasks]).T
pcgrad_weights = {a: trainers[a, "pcgrad"].history.filter(like="weight/").to_numpy()
                  for a in architectures}  # epochs x tasks
print("uncertainty weighting, learned task weights:")
print(uncertainty_weights.round(3).to_string())
pcgrad_max = {a: float(w.max()) for a, w in pcgrad_weights.items()}
print("\nPCGrad coefficients over all epochs and tasks: "
      + ", ".join(f"{a} {w.min():.3f} to {w.max():.3f}" for a, w in pcgrad_weights.items()))

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for k, task in enumerate(t.name for t in tasks):
    for architecture, style in zip(architectures, ["-", "--"], strict=True):
        history = trainers[architecture, "uncertainty"].history
        ax.plot(history["epoch"], history[f"weight/{task}"], style, color=f"C{k}",
                label=f"{task}, {architecture}")
ax.set_xlabel("epoch")
ax.set_ylabel(r"task weight $e^{-s_t}$ (epoch mean)")
ax.set_title("uncertainty weighting")
ax.legend(frameon=False, fontsize="small")
plt.show()
