"""Sphinx configuration for the regmtl documentation (built by ``make docs``, offline)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import regmtl  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

# Pages generated from the code at each build (the user guide includes them).
GENERATED = ROOT / "docs" / "_generated"
GENERATED.mkdir(exist_ok=True)
from regmtl.conformance import matrix_table_rst  # noqa: E402
from regmtl.support_table import factor_table_rst, support_table_rst  # noqa: E402

(GENERATED / "loss_support.txt").write_text(support_table_rst(), encoding="utf-8")
(GENERATED / "factor_support.txt").write_text(factor_table_rst(), encoding="utf-8")
(GENERATED / "support_matrix.txt").write_text(matrix_table_rst(), encoding="utf-8")

project = "regmtl"
author = "regmtl developers"
copyright = "2026, regmtl developers"
release = regmtl.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json",
                    "sg_execution_times.rst"]
nitpicky = True
# Types written in prose inside numpydoc "Parameters" lines (``array-like of shape (n, p)``, ...)
# are not cross-reference targets; everything in backquotes or :class:/:func: roles must resolve.
nitpick_ignore_regex = [
    (r"py:(class|obj)", r"(array-like|array|ndarray|sparse matrix|matrix|shape|of|or|optional|"
                        r"default|callable|iterable|sequence|mapping|str|int|float|bool|dict|"
                        r"list|tuple|None|object|path-like|PathLike|DataFrame|Series|Axes|"
                        r"Figure|Tensor|Module|Generator|RandomState|\{.*|.*\}|\(.*|.*\)|"
                        r"\d+|T|p|n|K|N|n_t|n_tasks|n_features|n_samples|n_alphas)"),
    (r"py:.*", r"(numpy|np|pandas|pd|torch|scipy|sklearn|matplotlib|joblib|dask|os|pathlib|"
               r"collections|typing|numbers)\..*"),
    (r"py:class", r"(Any|Callable|Sequence|Mapping|Iterable|Iterator|Literal|Union|Optional)"),
    # names the loss docstrings use for their own package: its registry, its base class in a
    # summary line, a declared attribute, the smoothed stages' loss (not part of the API)
    (r"py:data", r"LOSSES"),
    (r"py:class", r"(Datafit|SmoothedQuantile)"),
    (r"py:attr", r"curvature"),
    (r"py:mod", r"regmtl\.datafits"),
]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {
    "members": True,
    # fit/predict/score come from private bases; scikit-learn's, PyTorch's and the builtins'
    # own methods are theirs to document (torch.optim.Adam too, under the lazy Adams)
    "inherited-members": "BaseEstimator, RegressorMixin, ClassifierMixin, TransformerMixin, "
                         "MultiOutputMixin, _MetadataRequester, Module, Exception, "
                         "ValueError, tuple, dict, object, Optimizer, Adam, AdamW",
    "show-inheritance": True,
    # scikit-learn's metadata-routing setters, generated on every estimator class
    "exclude-members": "set_fit_request, set_score_request, set_predict_request, "
                       "set_predict_proba_request, set_predict_log_proba_request, "
                       "set_decision_function_request, set_partial_fit_request, "
                       "set_transform_request, set_inverse_transform_request, "
                       "set_split_request",
}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Math: MathJax is loaded by the browser when a page is read; nothing is fetched at build time.
mathjax3_config = {"tex": {"macros": {"R": r"\mathbb{R}", "tr": r"\operatorname{tr}"}}}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": os.environ.get("REGMTL_DOCS_PLOT_GALLERY", "True"),
    "abort_on_example_error": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "min_reported_time": 1,
}

html_theme = "pydata_sphinx_theme"
html_title = f"regmtl {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False


def _public_bases(app, name, obj, options, bases):
    """Show a class's public ancestors: private base classes are replaced by their bases."""
    out = []
    for base in bases:
        stack = [base]
        while stack:
            b = stack.pop(0)
            internal = b.__module__.startswith("regmtl.") and b.__name__ not in getattr(
                sys.modules.get(b.__module__), "__all__", (b.__name__,))
            if (b.__name__.startswith("_") or internal) and b is not object:
                stack[:0] = list(b.__bases__)
            elif b not in out and b is not object:
                out.append(b)
    bases[:] = out or [object]


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
