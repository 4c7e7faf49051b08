"""What ``compare``'s tables and report say of the independent baselines is what was fitted.

* every independent baseline's label says ``one alpha`` exactly when the fitted model has one
  alpha for all tasks (``alpha_`` a number); the others chose an alpha per task (``alpha_`` of
  shape (T,));
* the report of a School comparison (139 tasks, ridge with an alpha per task) shows no raw
  numpy array text in its HTML or Markdown: the per-task alphas appear as their median, range
  and count, and the full list stays in ``Comparison.choices["alphas"]``.
"""

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from regmtl import compare  # noqa: E402
from regmtl.compare import MODELS  # noqa: E402
from regmtl.datasets import load_dataset, make_multitask_regression  # noqa: E402
from regmtl.report import comparison_report  # noqa: E402

#: numpy's text of an array of floats: "[3.91768317e-01 1.11577022e-01" or "[0.39 0.11"
RAW_ARRAY = re.compile(r"\[\s*-?\d[\d.e+-]*\s+-?\d[\d.e+-]*")


@pytest.fixture(scope="module")
def school():
    data = load_dataset("school")
    return compare(data, models=["ridge", "ridge_one_alpha"], splits=1, progress=False)


def _regression_data():
    return make_multitask_regression(4, 40, 6, n_informative=3, random_state=0)


@pytest.mark.parametrize("name", [n for n, (kinds, _, role) in MODELS.items()
                                  if role == "independent" and "regression" in kinds
                                  and n not in ("unregularized", "independent")])
def test_independent_label_says_one_alpha_exactly_when_one_alpha_was_fitted(name):
    res = compare(_regression_data(), models=[name], splits=1, cv=2, n_alphas=4,
                  progress=False)
    (label, model), = res.models.items()
    alpha = np.asarray(model.alpha_)
    if "one alpha" in label:
        assert alpha.ndim == 0, f"{label!r} fitted {alpha.size} alphas"
    else:
        assert alpha.shape == (4,), f"{label!r} fitted one alpha for all tasks"


def test_school_choices_keep_every_task_alpha(school):
    ch = school.choices.set_index("model")
    alphas = ch.loc["ridge (independent)", "alphas"]
    assert np.shape(alphas) == (139,)
    assert ch.loc["ridge (independent)", "alpha"] == pytest.approx(float(np.median(alphas)))
    model = school.models["ridge (independent)"]
    np.testing.assert_array_equal(alphas, model.alpha_)
    assert np.ndim(school.models["ridge (independent, one alpha)"].alpha_) == 0


def test_school_report_has_no_raw_array_text(school, tmp_path):
    report = comparison_report(school, created="2024-01-01", n_jobs=1)
    html = report.to_html()
    markdown = report.to_markdown(tmp_path, stem="school")
    alphas = school.choices.set_index("model").loc["ridge (independent)", "alphas"]
    summary = (f"median {np.median(alphas):.4g}, range {alphas.min():.4g} to "
               f"{alphas.max():.4g} (139 values)")
    for text in (html, markdown):
        assert not RAW_ARRAY.search(text), RAW_ARRAY.search(text).group(0)
        assert "e-01 " not in text
        assert summary in text
        assert "one alpha for all)" not in text  # the old wording
        assert "each task choosing its own alpha" in text
        # the relatedness section names the fit it read
        assert "From the coefficients of ridge (independent) on the first split" in text
