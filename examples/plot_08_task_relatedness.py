"""
Checking task relatedness before deciding to use MTL
====================================================

Multi-task learning helps when the tasks have something in common, and can hurt when they do
not. :func:`regmtl.task_relatedness` asks the data first: it fits every task alone (ridge),
compares the tasks' coefficient vectors pairwise and tests the result against unrelated tasks.
Here it is run on two synthetic data sets of the same size, one whose tasks share their weights
in part and one whose tasks are independent. The claim: the verdict is "strong evidence"
(p < 0.01) for the related tasks and "no evidence" (p > 0.05) for the unrelated ones, and
:func:`regmtl.compare` confirms the advice: every multi-task model gains more over independent
ridge on the related tasks than on the unrelated ones, where none gains anything worth having.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import regmtl as rm
from regmtl.datasets import make_multitask_regression

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# %%
# Two data sets of the same size
# ------------------------------
# 20 tasks, 40 rows each, 30 features, unit noise. In the *related* set every task's weights
# are ``0.8 c + 0.6 e_t``: a common vector ``c`` plus a task-specific part (the
# ``"shared_support"`` structure with all 30 features on the support). In the *unrelated* set
# every task draws its weights independently (``"independent"``).
sizes = dict(n_tasks=20, n_samples=40, n_features=30, n_informative=30, noise=1.0,
             random_state=0)
datasets = {
    "related": make_multitask_regression(structure="shared_support", relatedness=0.8, **sizes),
    "unrelated": make_multitask_regression(structure="independent", **sizes),
}

# %%
# Ask the data
# ------------
# ``method="ridge"`` (the default) compares per-task ridge coefficients, alpha chosen by
# cross-validation; the p-value counts how often unrelated tasks (coefficients permuted across
# features, and refits on shuffled targets) look as alike as these.
n_permutations = 100 if QUICK else 200
relatedness = {name: rm.task_relatedness(data, n_permutations=n_permutations)
               for name, data in datasets.items()}
for name, rel in relatedness.items():
    print(f"--- {name} tasks ---")
    print(rel.verdict, "\n")
p_values = {name: rel.p_value for name, rel in relatedness.items()}
levels = {name: rel.level for name, rel in relatedness.items()}
print(pd.DataFrame({"level": levels, "p-value": p_values,
                    "mean |cosine|": {k: r.statistic for k, r in relatedness.items()},
                    "unrelated 95% quantile": {k: r.null_quantile
                                               for k, r in relatedness.items()}}).to_string())

# %%
# The similarity matrices side by side (:meth:`regmtl.Relatedness.plot`): the related tasks'
# ridge coefficients point the same way (cosine around 0.6) and form one group; the unrelated
# ones scatter around zero. The few pairs of unrelated tasks boxed together are chance: about
# 5% of unrelated pairs pass the pair threshold, and the verdict above counts them against that.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
for ax, (name, rel) in zip(axes, relatedness.items(), strict=True):
    rel.plot(ax=ax)
    evidence = {"strong": "strong", "some": "some", "none": "no"}[rel.level]
    ax.set_title(f"{name} tasks: {evidence} evidence, p = {rel.p_value:.3g}\n"
                 f"{len(rel.groups)} group(s) of tasks more alike than unrelated pairs")

# %%
# Does the advice hold?
# ---------------------
# :func:`regmtl.compare` fits independent ridge (alpha per task by leave-one-out, and one alpha
# for all tasks) and three multi-task models on the same random train/test splits of every
# task (25% of each task's rows for testing), alpha by 3-fold cross-validation inside the
# training rows, and scores the test rows by explained variance. The gains are measured
# against the stronger of the two independent ridges: with 30 training rows for 30 features,
# one alpha for all tasks (its choice pooled over them) beats an alpha per task.
n_splits = 2 if QUICK else 3
models = ["ridge", "ridge_one_alpha", "l21", "trace", "mean"]
comparisons = {name: rm.compare(data, models=models, splits=n_splits, n_alphas=10)
               for name, data in datasets.items()}
explained_variance = pd.DataFrame(
    {name: comp.summary.set_index("model")["explained_variance_mean"]
     for name, comp in comparisons.items()})
independent = ["ridge (independent)", "ridge (independent, one alpha)"]
baseline = "independent ridge (the stronger)"
gain = explained_variance - explained_variance.loc[independent].max()
print(explained_variance.assign(**{f"gain {k}": gain[k] for k in gain})
      .to_string(float_format="{:.3f}".format))
mtl_gain = gain.drop(index=independent)  # the multi-task models only
best_gain = mtl_gain.max()
print("\nbest multi-task gain over independent ridge:",
      ", ".join(f"{k} {v:+.3f}" for k, v in best_gain.items()))

# %%
# On the related tasks every multi-task model beats independent ridge; on the unrelated ones
# none does better (sharing pulls unrelated weights toward each other, which only adds bias).
# Check relatedness first, and prefer independent models when the verdict is "no evidence".
fig, ax = plt.subplots(figsize=(6.5, 3.5), layout="constrained")
pos = np.arange(len(mtl_gain))
for k, name in enumerate(mtl_gain.columns):
    ax.barh(pos + (k - 0.5) * 0.38, mtl_gain[name], height=0.38, color=f"C{k}",
            label=f"{name} tasks (p = {p_values[name]:.3g})")
ax.set_yticks(pos, mtl_gain.index)
ax.invert_yaxis()
ax.axvline(0.0, color="0.3", lw=0.8)
ax.set_xlabel(f"test explained variance minus {baseline}'s")
ax.set_title(f"Gain of multi-task learning ({n_splits} splits)")
ax.legend(frameon=False, fontsize=8)
