"""
L1, L2 and elastic net chosen by cross-validation on the same tasks
===================================================================

Five regression tasks, 30 features, and each task uses only 5 of them (its own 5). The three
entry-wise penalties, L1 (lasso), L2 (ridge) and the elastic net between them, are each tuned
by :class:`regmtl.MultiTaskRegressorCV` on the same training rows and the same folds: alpha for
all three, and the elastic net's ``l1_ratio`` too. The claim: L1 and the elastic net recover
the sparse truth (about half of the 150 coefficients or fewer are nonzero, and every true
weight larger than the noise level is among them) while L2 keeps every coefficient, and the
two sparse models have a test error well below L2's.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

import regmtl as rm
from regmtl.datasets import make_multitask_regression
from regmtl.plotting import plot_coefficients

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# %%
# Five tasks with sparse weights
# ------------------------------
# ``structure="independent"`` gives every task its own random support of ``n_informative=5``
# features, with standard normal weights on it; the noise has standard deviation 0.5. Each task
# has 50 training rows.
n_tasks, n_features, n_train, n_test = 5, 30, 50, 200 if QUICK else 500
noise = 0.5
data = make_multitask_regression(n_tasks, n_train + n_test, n_features,
                                 structure="independent", n_informative=5, noise=noise,
                                 random_state=0)
X_train = [X[:n_train] for X in data.X]
y_train = [y[:n_train] for y in data.y]
X_test = [X[n_train:] for X in data.X]
y_test = [y[n_train:] for y in data.y]
true_coef = data.coef  # tasks x features, as coef_ stores it
true_nonzero = true_coef != 0
print(f"{true_nonzero.sum()} of {true_coef.size} true coefficients are nonzero")

# %%
# One cross-validation per penalty, on the same folds
# ---------------------------------------------------
# The same splitter is given to every search, so the three penalties are compared on the same
# folds of every task. ``penalty_grid`` searches the elastic net's ``l1_ratio`` (the share of
# the L1 part) together with alpha: one warm-started path of alphas per value.
folds = KFold(3 if QUICK else 5, shuffle=True, random_state=0)
n_alphas = 20 if QUICK else 30
searches = {
    "L1": rm.MultiTaskRegressorCV("l1", alphas=n_alphas, cv=folds),
    "elastic net": rm.MultiTaskRegressorCV("elasticnet", alphas=n_alphas, cv=folds,
                                           penalty_grid={"l1_ratio": [0.1, 0.5, 0.9]}),
    "L2": rm.MultiTaskRegressorCV("l2", alphas=n_alphas, cv=folds),
}
rows = {}
for name, search in searches.items():
    search.fit(X_train, y_train)
    nonzero = search.coef_ != 0
    missed = np.abs(true_coef[true_nonzero & ~nonzero])
    errors = [np.mean((p - y) ** 2)
              for p, y in zip(search.predict(X_test), y_test, strict=True)]
    rows[name] = {
        "alpha": search.alpha_,
        "l1_ratio": search.best_params_.get("l1_ratio", np.nan),
        "CV MSE": -search.best_score_,
        "test MSE": np.mean(errors),
        "nonzeros": int(nonzero.sum()),
        "true nonzeros found": int((nonzero & true_nonzero).sum()),
        "largest missed |w|": missed.max() if missed.size else 0.0,
    }
results = pd.DataFrame(rows).T
print(results.to_string(float_format="{:.3g}".format))
test_mse = results["test MSE"].to_dict()
nonzeros = results["nonzeros"].astype(int).to_dict()
recall = (results["true nonzeros found"] / true_nonzero.sum()).to_dict()
largest_missed = results["largest missed |w|"].to_dict()

# %%
# ``CV MSE`` is the best mean validation error of each search (the score it maximized, with its
# sign flipped). The lasso and the elastic net use about half of the coefficients or fewer and
# find nearly all the true ones; those they miss are small, below the noise level of 0.5. With
# a sparse truth the elastic net leans towards L1 (the largest ``l1_ratio`` of its grid) and
# ends up close to the lasso. Ridge shrinks but never zeroes, so its 150 coefficients are all
# nonzero, and it pays for the 125 useless ones in test error.
#
# The coefficient matrices
# ------------------------
# :func:`regmtl.plotting.plot_coefficients` draws tasks x features heat maps; the true weights
# first.
fig, axes = plt.subplots(4, 1, figsize=(9, 10), layout="constrained")
plot_coefficients(true_coef, ax=axes[0])
axes[0].set_title(f"True weights: {true_nonzero.sum()} nonzero")
for ax, (name, search) in zip(axes[1:], searches.items(), strict=True):
    plot_coefficients(search.coef_, ax=ax)
    ax.set_title(f"{name}: {nonzeros[name]} nonzero, test MSE {test_mse[name]:.3f}")
for ax in axes[:-1]:
    ax.set_xlabel("")
