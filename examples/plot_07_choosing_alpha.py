"""
Choosing alpha: cross-validation, AIC and BIC, grid and random search
=====================================================================

One L2,1 multi-task model, six ways to choose its strength alpha on the same training rows:
K-fold cross-validation inside every task (:class:`regmtl.MultiTaskRegressorCV`), the same with
the one-standard-error rule, AIC and BIC on one regularization path, and scikit-learn's
:class:`~sklearn.model_selection.GridSearchCV` and
:class:`~sklearn.model_selection.RandomizedSearchCV` around :class:`regmtl.MultiTaskRegressor`,
with the task ids routed to ``fit`` and to the scorer. The claim: every method's test error is
within 15% of the best of them and far below that of two deliberately bad alphas
(``alpha_max``, where every weight is zero, and ``alpha_max / 1000``); the grid search on the
same grid and folds picks exactly the alpha of the CV estimator; BIC picks an alpha at least as
strong as AIC's, and the one-standard-error rule one at least as strong as plain
cross-validation's.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sklearn
from scipy.stats import loguniform
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold

import regmtl as rm
from regmtl.datasets import make_multitask_regression
from regmtl.metrics import make_task_scorer
from regmtl.plotting import plot_cv_curve

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# %%
# Ten tasks in the long form
# --------------------------
# Ten tasks share a support of 6 of 60 features (``structure="shared_support"``), with weights
# that differ from task to task, and unit noise. Each task has 150 training rows and 300 test
# rows. The rows of all tasks are stacked in one table with a ``task`` column, the form
# scikit-learn's searches handle.
n_tasks, n_train, n_test = 10, 150, 300
data = make_multitask_regression(n_tasks, n_train + n_test, 60, structure="shared_support",
                                 n_informative=6, relatedness=0.5, noise=1.0, random_state=0)
X_train = np.vstack([X[:n_train] for X in data.X])
y_train = np.concatenate([y[:n_train] for y in data.y])
task_train = np.repeat(np.arange(n_tasks), n_train)
X_test = np.vstack([X[n_train:] for X in data.X])
y_test = np.concatenate([y[n_train:] for y in data.y])
task_test = np.repeat(np.arange(n_tasks), n_test)

# %%
# The same folds for every search
# -------------------------------
# Folds stratified on the task ids put every task on both sides of every split. The CV
# estimator takes the explicit ``(train, test)`` pairs as they are, and so do scikit-learn's
# searches.
folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X_train, task_train))


def mse_on_test_rows(model):
    return float(np.mean((model.predict(X_test, task=task_test) - y_test) ** 2))


chosen, seconds, test_mse = {}, {}, {}


def record(name, alpha, model, start):
    seconds[name] = time.perf_counter() - start
    chosen[name] = float(alpha)
    test_mse[name] = mse_on_test_rows(model)


# one fit before the timed ones, so that no timing includes loading the compiled solver kernels
rm.MultiTaskRegressor("l21", alpha=1.0).fit(X_train, y_train, task=task_train)

# %%
# The CV estimator and the information criteria
# ---------------------------------------------
# :class:`regmtl.MultiTaskRegressorCV` solves one warm-started path of 20 alphas per fold,
# from ``alpha_max`` down to ``alpha_max / 1000``, scores each task's validation rows and
# averages over tasks. ``one_se=True`` takes the largest alpha within one standard error of
# the best score. ``criterion="aic"`` or ``"bic"`` fits a single path on all the training rows
# and takes the alpha with the smallest criterion. They read the fit as a Gaussian likelihood
# and charge one degree of freedom per nonzero coefficient, which suits tasks with many more
# rows than features; with few rows per task, or when every feature stays active along much of
# the path, they can drift towards the smallest alpha. Cross-validation makes no such
# assumption and is the safer default.
searches = {
    "CV": rm.MultiTaskRegressorCV("l21", alphas=20, cv=folds),
    "CV, one-SE rule": rm.MultiTaskRegressorCV("l21", alphas=20, cv=folds, one_se=True),
    "AIC": rm.MultiTaskRegressorCV("l21", alphas=20, criterion="aic"),
    "BIC": rm.MultiTaskRegressorCV("l21", alphas=20, criterion="bic"),
}
for name, search in searches.items():
    start = time.perf_counter()
    search.fit(X_train, y_train, task=task_train)
    record(name, search.alpha_, search, start)
grid = searches["CV"].alphas_  # the 20 alphas every search above used

# %%
# scikit-learn's searches
# -----------------------
# With metadata routing on, ``task`` reaches :meth:`regmtl.MultiTaskRegressor.fit` and the
# scorer, which must be :func:`regmtl.metrics.make_task_scorer` (scikit-learn's own scorers
# call ``predict`` without the task ids). ``"neg_mse"`` averaged over tasks is what the CV
# estimator maximizes. The grid search tries the same 20 alphas, each a cold fit; the random
# search draws alphas from a log-uniform distribution over the same range.
scorer = make_task_scorer("neg_mse")
with sklearn.config_context(enable_metadata_routing=True):
    start = time.perf_counter()
    grid_search = GridSearchCV(rm.MultiTaskRegressor("l21"), {"alpha": grid}, cv=folds,
                               scoring=scorer).fit(X_train, y_train, task=task_train)
    record("GridSearchCV", grid_search.best_params_["alpha"],
           grid_search.best_estimator_, start)

    start = time.perf_counter()
    random_search = RandomizedSearchCV(
        rm.MultiTaskRegressor("l21"), {"alpha": loguniform(grid[-1], grid[0])},
        n_iter=6 if QUICK else 10, cv=folds, scoring=scorer, random_state=0,
    ).fit(X_train, y_train, task=task_train)
    record("RandomizedSearchCV", random_search.best_params_["alpha"],
           random_search.best_estimator_, start)

    # two alphas nobody should choose: every weight zero, and almost no penalty
    bad = {"alpha_max (all weights zero)": grid[0], "alpha_max / 1000": grid[-1]}
    for name, alpha in bad.items():
        start = time.perf_counter()
        record(name, alpha, rm.MultiTaskRegressor("l21", alpha=alpha).fit(
            X_train, y_train, task=task_train), start)

# %%
# The table
# ---------
# ``vs best``: the test MSE divided by the best one among the six methods; ``fit time``
# includes the refit on all the training rows.
methods = list(searches) + ["GridSearchCV", "RandomizedSearchCV"]
best_mse = min(test_mse[m] for m in methods)
table = pd.DataFrame({"alpha": chosen, "test MSE": test_mse,
                      "vs best": {m: v / best_mse for m, v in test_mse.items()},
                      "fit time (s)": seconds})
print(table.to_string(float_format="{:.3g}".format))

# %%
# All six methods land on alphas that predict about equally well, and the grid search agrees
# with the CV estimator, which gets there with warm-started paths instead of 20 cold fits per
# fold. The one-standard-error rule and BIC lean towards stronger penalties (sparser models),
# AIC towards weaker ones. Both bad alphas are clearly worse: ``alpha_max`` predicts the task
# means only, and the tiny alpha keeps every feature in every task.
#
# The curves behind the choices
# -----------------------------
# Left: the cross-validated score (:func:`regmtl.plotting.plot_cv_curve`, with its standard-
# error band). Middle: the test error along a regularization path fitted on the training rows
# (:func:`regmtl.regularization_path`), which no method gets to see, with every method's
# choice marked. Right: AIC and BIC along the same grid.
path = rm.regularization_path(X_train, y_train, task_train, penalty="l21", alphas=grid)
rows = np.searchsorted(path.tasks, task_test)
path_mse = [np.mean((np.sum(X_test * path.coefs[k][rows], axis=1) + path.intercepts[k][rows]
                     - y_test) ** 2) for k in range(len(path.alphas))]

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
plot_cv_curve(searches["CV"].cv_results_, best=chosen["CV"], one_se=chosen["CV, one-SE rule"],
              n_splits=len(folds), score_label="mean validation score (−MSE)", ax=axes[0])

axes[1].plot(path.alphas, path_mse, color="0.3", marker="o", ms=3)
# one line per distinct choice, labelled with the methods that made it
by_alpha = {}
for name in methods:
    by_alpha.setdefault(chosen[name], []).append(name)
for k, (alpha, names) in enumerate(sorted(by_alpha.items())):
    axes[1].axvline(alpha, color=f"C{k}", ls="--", lw=1.2, label=" = ".join(names))
axes[1].set_xscale("log")
axes[1].set_xlabel("alpha")
axes[1].set_ylabel("test MSE")
axes[1].set_title("Test error along the path, and the choices")
axes[1].legend(fontsize=8, frameon=False, loc="upper left")

for k, name in enumerate(["AIC", "BIC"]):
    results = searches[name].cv_results_
    column = name.lower()
    axes[2].plot(results["param_alpha"], results[column], color=f"C{k}", marker="o", ms=3,
                 label=f"{name} (star: its minimum)")
    lowest = int(np.argmin(results[column].to_numpy()))
    axes[2].plot(results["param_alpha"][lowest], results[column][lowest], color=f"C{k}",
                 marker="*", ms=14, ls="none")
axes[2].set_xscale("log")
axes[2].set_xlabel("alpha")
axes[2].set_ylabel("criterion (smaller is better)")
axes[2].set_title("Information criteria")
axes[2].legend(fontsize=8, frameon=False)
