"""
School: the full comparison
===========================

The School data (exam scores of pupils in 139 London schools, one regression task per school,
28 features) is the classic benchmark of multi-task learning. :func:`regmtl.compare` fits the
default line-up on its fixed train/test splits: independent ridge and lasso (every school
alone, each with its own alpha; ridge also with one alpha for all schools), least squares per
school, one pooled ridge for all schools (one slope vector, one
intercept per school), and the L2,1, trace-norm and mean-regularized multi-task models, every
one of them tuned by cross-validation inside the training rows. The claim: every multi-task
model explains more of the test variance than independent ridge, both pooled over the test
rows and averaged over schools, and the best of them beats ridge on more than half of the
schools. The pooled model with per-school levels is the strong baseline here (schools differ
mostly in level); the best multi-task model still beats it, by less.
"""

import os
import re
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import regmtl as rm
from regmtl import plotting
from regmtl.datasets import load_school
from regmtl.report import comparison_report, comparison_verdict

# Smaller sizes when the test suite runs this example.
QUICK = os.environ.get("REGMTL_GALLERY_QUICK") == "1"

# %%
# The data and the comparison
# ---------------------------
# :func:`regmtl.datasets.load_school` comes with the 10 fixed splits of the literature; here
# the first 3 (the first one in the test suite, with fewer models). ``n_jobs=2`` fits two
# (split, model) pairs at a time; the numbers do not depend on it.
school = load_school()
print(f"{len(school.X)} schools, {sum(len(y) for y in school.y)} pupils, "
      f"{len(school.feature_names)} features")

models = ["ridge", "pooled", "l21", "mean"] if QUICK else "default"
comparison = rm.compare(school, models=models, splits=1 if QUICK else 3, n_jobs=2)

# %%
# The summary table
# -----------------
# ``explained_variance`` is pooled over the test rows of all schools (as the literature
# reports it), ``explained_variance_task`` its average over schools; mean and standard deviation
# over the splits. ``wins``: schools whose test score (averaged over splits) beats independent
# ridge's; ``fit_time`` includes the inner cross-validation.
summary = comparison.summary.set_index("model")
columns = ["explained_variance_mean", "explained_variance_sd", "explained_variance_task_mean",
           "wins", "fit_time", "alpha"]
print(summary[columns].to_string(float_format="{:.4f}".format))
print(f"\n{comparison.n_splits} split(s), whole comparison {comparison.elapsed:.1f} s")

# %%
# How much each model gains over independent ridge, and the best multi-task model:
roles = comparison.scores.drop_duplicates("model").set_index("model")["role"]
multi_task = [m for m in summary.index if roles[m] == "multi-task"]
baseline = comparison.baseline
explained_variance = summary["explained_variance_mean"]
task_explained_variance = summary["explained_variance_task_mean"]
gain = pd.DataFrame({
    "pooled over rows": explained_variance - explained_variance[baseline],
    "averaged over schools": task_explained_variance - task_explained_variance[baseline],
}).drop(index=baseline)
print(gain.to_string(float_format="{:+.4f}".format))
best = explained_variance[multi_task].idxmax()
wins = int(summary.loc[best, "wins"].split("/")[0])
wins_fraction = wins / len(comparison.task_names)
print(f"\nbest multi-task model: {best}, above {baseline} on {wins} of "
      f"{len(comparison.task_names)} schools")

# %%
# Is the best model's gain beyond noise? ``comparison.tests`` holds every model against the
# strongest independent baseline (over splits: Nadeau & Bengio's corrected resampled t-test;
# over schools: the Wilcoxon signed-rank test); :func:`regmtl.report.comparison_verdict` says
# it in words (with one split there is no test over splits, and it says so).
print(comparison_verdict(comparison))

# %%
# The report's figures
# --------------------
# :func:`regmtl.report.comparison_report` draws these: the mean score of every model (with its
# 95% interval over splits, :func:`regmtl.plotting.plot_comparison`; the report draws each
# model's difference to the strongest independent baseline beside it), and every school's
# score under the best multi-task model against independent ridge
# (:func:`regmtl.plotting.plot_task_scores`; points above the diagonal are schools it helps,
# the point size is the school's test rows).
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
plotting.plot_comparison(comparison, ax=axes[0])
plotting.plot_task_scores(comparison.scores, baseline=baseline, model=best, ax=axes[1])
axes[1].title.set_fontsize(10)

# %%
# The best model as fitted on the first split (``comparison.models`` keeps every model of that
# split): its coefficients, schools by features (the 40 schools with the largest weights;
# :func:`regmtl.plotting.plot_coefficients`), and the inner cross-validation curve that chose
# its alpha (:func:`regmtl.plotting.plot_cv_curve`).
model = comparison.models[best]
fig, ax = plt.subplots(figsize=(10, 7), layout="constrained")
plotting.plot_coefficients(model.coef_, feature_names=comparison.feature_names,
                           task_names=comparison.task_names, max_tasks=40, ax=ax)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
plotting.plot_cv_curve(model.cv_results_, best=model.alpha_, n_splits=model.n_splits_, ax=ax,
                       score_label=f"negative MSE (inner {model.n_splits_}-fold CV)")
ax.set_title(f"{best}: alpha chosen on the training rows")

# %%
# The HTML report
# ---------------
# The same table and figures, plus the regularization path and the chosen parameters, in one
# self-contained HTML file (``regmtl compare school`` on the command line writes it too).
report = comparison_report(comparison, data_name="School")
with tempfile.TemporaryDirectory() as folder:
    path = report.write(Path(folder) / "school.html")
    html = path.read_text(encoding="utf-8")
report_sections = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
report_figures = html.count("<img")
print(f"{path.name}: {len(html) / 1024:.0f} KiB, {report_figures} figures, sections: "
      + "; ".join(report_sections))
