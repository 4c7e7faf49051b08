"""
A multi-task classification network: L2 on the output layer, dropout, batch norm
================================================================================

Six binary classification tasks share 100 labelled rows of 20 features. A network with one
shared hidden layer of 64 units and one output per task (:class:`regmtl.deep.HardSharing`) has
far more weights than these rows can pin down: trained for a fixed 60 epochs with nothing to
hold it back, it ends up overconfident, and its test log loss is worse than that of a constant
prediction of 1/2 (ln 2 = 0.693). Four regularized versions are trained in exactly the same way
(same data, initial weights, batches and epochs): an L2 penalty on the output layer only (the
task-specific weights), dropout, batch norm, and all three together. The claim, on three data
sets drawn with different seeds: every regularized version has a lower test log loss than the
plain network on each data set, with a mean accuracy within 0.02 of it (the accuracy hardly
moves); the L2 penalty on the output layer alone cuts the mean test log loss by more than a
quarter, and the three together do best.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn import metrics

from regmtl.datasets import make_multitask_classification
from regmtl.deep import HardSharing, L2Penalty, TaskSpec, Trainer, set_seed

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# These nets are tiny: on a CPU one thread is faster than several (no synchronization).
torch.set_num_threads(1)

# %%
# Six related tasks with few labelled rows
# ----------------------------------------
# :func:`regmtl.datasets.make_multitask_classification` with ``shared_design=True`` draws one
# design for all tasks and a logistic label per task; the tasks use the same 5 of the 20
# features with related weights (``relatedness=0.8``), and 5% of the labels are flipped. The
# first 100 rows are for training, the rest for testing (the rows are independent draws). Each
# data set is drawn three times (seeds 0, 1, 2) so the comparison does not hang on one draw.
n_tasks, n_features, n_train = 6, 20, 100
n_test = 500 if QUICK else 1000
seeds = (0, 1) if QUICK else (0, 1, 2)
epochs = 60
task_names = [f"task {t}" for t in range(n_tasks)]
# no validation metrics: the validation loss (the log loss) is all the curves below need
tasks = [TaskSpec(name, kind="binary", metrics=()) for name in task_names]


def make_data(seed):
    data = make_multitask_classification(
        n_tasks, n_train + n_test, n_features, structure="shared_support", n_informative=5,
        relatedness=0.8, class_sep=3.0, flip_y=0.05, shared_design=True, random_state=seed)
    X, Y = data.X_shared, data.Y  # (n, p) and (n, T): one label column per task
    return (X[:n_train], Y[:n_train]), (X[n_train:], Y[n_train:])


# %%
# The five networks
# -----------------
# Each variant is a :class:`regmtl.deep.HardSharing` net with the same shared layer; only its
# regularization differs. ``L2Penalty(0.1, params="task")`` penalizes the task-specific
# parameters: with no hidden layer in the heads (``head_hidden=()``, the default), those are
# the output layer, one row of weights per task, held for all tasks in one batched tensor
# (biases are left out by default).
# ``dropout`` and ``batch_norm`` act on the shared hidden layer.
output_l2 = L2Penalty(0.1, params="task")
variants = {
    "none": {},
    "L2 on the output layer": {"penalty": output_l2},
    "dropout (0.5)": {"dropout": 0.5},
    "batch norm": {"batch_norm": True},
    "all three": {"penalty": output_l2, "dropout": 0.5, "batch_norm": True},
}

net = HardSharing(n_features, tasks, hidden=(64,))
penalized = {id(p) for p in output_l2.parameters(net)}
print("parameters the output-layer L2 penalizes:",
      [name for name, p in net.named_parameters() if id(p) in penalized])


# %%
# Train every variant identically
# -------------------------------
# :func:`regmtl.deep.set_seed` fixes the initial weights, and the trainer's ``seed`` the batch
# order and the dropout masks. For the first seed the test rows are passed as ``val``, only to
# record the test loss after every epoch for the curves below: with ``restore_best=False`` the
# trainer keeps the weights of the last epoch, so the test rows choose nothing.
def train(variant, seed, train_data, val_data=None):
    options = dict(variants[variant])
    penalty = options.pop("penalty", None)
    set_seed(seed)
    net = HardSharing(n_features, tasks, hidden=(64,), **options)
    trainer = Trainer(net, penalty=penalty, lr=1e-2, batch_size=50, max_epochs=epochs,
                      seed=seed, restore_best=False)
    trainer.fit(train_data, val=val_data)
    return trainer


rows, curves = [], {}
for seed in seeds:
    train_data, test_data = make_data(seed)
    for variant in variants:
        first = seed == seeds[0]
        trainer = train(variant, seed, train_data, test_data if first else None)
        X_test, Y_test = test_data
        proba = trainer.predict(X_test)  # {task: P(y = 1)} of the final weights
        rows.append({
            "variant": variant, "seed": seed,
            "log loss": np.mean([metrics.log_loss(Y_test[:, t], proba[name])
                                 for t, name in enumerate(task_names)]),
            "accuracy": np.mean([metrics.accuracy_score(Y_test[:, t], proba[name] > 0.5)
                                 for t, name in enumerate(task_names)]),
        })
        if first:
            history = trainer.history
            curves[variant] = (history["loss"] / n_tasks, history["val_loss"] / n_tasks)

results = pd.DataFrame(rows)

# %%
# Test log loss and accuracy (means over the six tasks)
# -----------------------------------------------------
# One column per seed, then the mean over seeds.
log_loss = results.pivot(index="variant", columns="seed", values="log loss").loc[list(variants)]
accuracy = results.pivot(index="variant", columns="seed", values="accuracy").loc[list(variants)]
table = pd.DataFrame({"test log loss": log_loss.mean(axis=1),
                      "test accuracy": accuracy.mean(axis=1)})
print("test log loss by seed:")
print(log_loss.round(3).to_string())
print("\ntest accuracy by seed:")
print(accuracy.round(3).to_string())
print("\nmean over seeds:")
print(table.round(3).to_string())
output_l2_ratio = table.loc["L2 on the output layer", "test log loss"] / table.loc[
    "none", "test log loss"]
print(f"\nL2 on the output layer / none, test log loss: {output_l2_ratio:.2f}")

# %%
# Accuracy hardly moves: every net gets about as many test labels right. What the regularizers
# change is the confidence. The plain net drives its training loss towards zero and its predicted
# probabilities towards 0 and 1, so its few mistakes cost a lot of log loss. Shrinking the
# output weights (L2), averaging over thinned nets (dropout) or normalizing the hidden units
# (batch norm) all keep the probabilities more moderate; the three together do best here.
# The curves show one more remedy: the plain net's test loss is lowest after a few epochs and
# climbs from there, so stopping early (:class:`regmtl.deep.EarlyStopping`, on a validation
# split) also helps.
fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for k, (variant, (train_loss, test_loss)) in enumerate(curves.items()):
    epochs_axis = np.arange(1, len(test_loss) + 1)
    ax_curve.plot(epochs_axis, test_loss, color=f"C{k}", label=variant)
    ax_curve.plot(epochs_axis, train_loss, color=f"C{k}", linestyle=":", alpha=0.7)
ax_curve.axhline(np.log(2), color="gray", linewidth=0.8)
ax_curve.set_xlabel("epoch")
ax_curve.set_ylabel("log loss, mean over tasks")
ax_curve.set_title(f"test (solid) and training (dotted), seed {seeds[0]}")
ax_curve.legend(frameon=False, fontsize="small")
ax_bar.barh(table.index[::-1], table["test log loss"][::-1],
            color=[f"C{k}" for k in range(len(variants))][::-1])
ax_bar.axvline(np.log(2), color="gray", linewidth=0.8)
ax_bar.set_xlabel(f"test log loss, mean over tasks and {len(seeds)} seeds (gray: ln 2)")
plt.show()
