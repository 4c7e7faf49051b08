"""
Two related regression tasks
============================

Two regression tasks use the same 30 features with nearly the same weights, and each has only
40 training rows: enough for least squares to exist, too few for it to be accurate. A
mean-regularized multi-task model (:class:`regmtl.MeanRegularized`, the penalty of Evgeniou &
Pontil) pulls the two tasks' weights towards their mean, with the strength alpha chosen by
:class:`regmtl.MultiTaskRegressorCV` on the training rows. The claim: on held-out rows of both
tasks, its test error is lower than that of the same model without regularization (alpha = 0,
which is least squares in each task) and lower than that of a ridge regression tuned for each
task on its own.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

import regmtl as rm
from regmtl.datasets import make_multitask_regression

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# %%
# Two tasks with close weights
# ----------------------------
# :func:`regmtl.datasets.make_multitask_regression` draws each task's weights as
# ``w_t = 0.95 c + 0.31 e_t``: a part ``c`` common to both tasks and a smaller task-specific
# part ``e_t``, on all 30 features (``n_informative=30``). The noise has unit variance, so a
# perfect model has a test MSE of 1. The first 40 rows of each task are for training, the
# others for testing.
n_train, n_test, n_features = 40, 200 if QUICK else 500, 30
data = make_multitask_regression(2, n_train + n_test, n_features, structure="shared_support",
                                 n_informative=n_features, relatedness=0.95, noise=1.0,
                                 random_state=0)
X_train = [X[:n_train] for X in data.X]
y_train = [y[:n_train] for y in data.y]
X_test = [X[n_train:] for X in data.X]
y_test = [y[n_train:] for y in data.y]
w1, w2 = data.coef
print(f"correlation of the two tasks' true weights: {np.corrcoef(w1, w2)[0, 1]:.2f}")

# %%
# Three models, fitted on the same training rows
# ----------------------------------------------
# * **regularized MTL**: ``penalty="mean"`` penalizes
#   :math:`\frac{\alpha}{2} \sum_t \|w_t - \bar w\|^2`, the distance of each task's weights to
#   their mean; alpha is chosen by 5-fold cross-validation inside each task
#   (:class:`regmtl.MultiTaskRegressorCV`). Large alpha makes one pooled model, small alpha
#   two separate ones.
# * **unregularized**: the same estimator with ``alpha=0``, which the estimators accept: the
#   penalty vanishes and each task gets its own least-squares fit.
# * **independent ridge**: scikit-learn's :class:`~sklearn.linear_model.RidgeCV` in each task
#   alone, each with its own alpha chosen by leave-one-out on that task's training rows.
mtl = rm.MultiTaskRegressorCV("mean", alphas=20 if QUICK else 30, cv=3 if QUICK else 5)
mtl.fit(X_train, y_train)
unregularized = rm.MultiTaskRegressor("mean", alpha=0.0).fit(X_train, y_train)
ridges = [RidgeCV(alphas=np.logspace(-3, 4, 50)).fit(X, y)
          for X, y in zip(X_train, y_train, strict=True)]

predictions = {
    "regularized MTL": mtl.predict(X_test),
    "unregularized": unregularized.predict(X_test),
    "independent ridge": [r.predict(X) for r, X in zip(ridges, X_test, strict=True)],
}
print(f"alpha chosen by cross-validation: {mtl.alpha_:.3g}; "
      f"ridge alphas: {', '.join(f'{r.alpha_:.3g}' for r in ridges)}")

# %%
# Test error on the held-out rows
# -------------------------------
# Mean squared error on each task's test rows, and their average.
per_task = pd.DataFrame(
    {name: [np.mean((p - y) ** 2) for p, y in zip(pred, y_test, strict=True)]
     for name, pred in predictions.items()},
    index=["task 0", "task 1"],
).T
per_task["average"] = per_task.mean(axis=1)
test_mse = per_task["average"].to_dict()
print(per_task.to_string(float_format="{:.3f}".format))

# %%
# Least squares fits the noise of 40 rows with 31 parameters per task. Ridge shrinks each task
# towards zero, which the tasks' weights are not close to. The multi-task model shrinks each
# task towards the *other* one, which is where its weights really are, so it does best on both
# tasks.
fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
width = 0.25
for k, name in enumerate(per_task.index):
    ax.bar(np.arange(3) + (k - 1) * width, per_task.loc[name], width, label=name,
           color=f"C{k}")
ax.axhline(1.0, color="0.4", ls=":", lw=1, label="noise variance")
ax.set_xticks(np.arange(3), per_task.columns)
ax.set_ylabel("test MSE")
ax.set_ylim(0, 1.3 * per_task.to_numpy().max())
ax.set_title("Two related tasks, 40 training rows each")
ax.legend(frameon=False, fontsize=8, ncol=2, loc="upper left")
