"""``regmtl fit`` with per-feature terms: factors, unpenalized, excluded and bounded columns
named by the table's columns, the same fit as the Python API's, refused by name where they do
not apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.cli import main
from regmtl.datasets import make_multitask_regression
from regmtl.scaling import fit_standardized

FEATURES = [f"f{j}" for j in range(6)]


def _frame() -> pd.DataFrame:
    d = make_multitask_regression(4, [40, 50, 60, 45], 6, n_informative=3, noise=0.5,
                                  random_state=0)
    parts = []
    for t, (X, y) in enumerate(zip(d.X, d.y, strict=True)):
        f = pd.DataFrame(X * [1.0, 3.0, 1.0, 0.5, 1.0, 2.0], columns=FEATURES)
        f["school"], f["score"] = f"S{t}", y
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    return path


def _lists():
    frame = _frame()
    groups = [g for _, g in frame.groupby("school", sort=True)]
    return [g[FEATURES].to_numpy() for g in groups], [g["score"].to_numpy() for g in groups]


COLS = ["--task-col", "school", "--target", "score"]


def test_unpenalized_and_factors_equal_the_python_fit(table, tmp_path):
    out = tmp_path / "m.npz"
    assert main(["fit", str(table), *COLS, "--alpha", "0.3", "--unpenalized", "f0,f3",
                 "--penalty-factor", "f1=2,f5=inf", "--lower-bounds", "f2=-0.1",
                 "--upper-bounds", "1.5", "--out", str(out)]) == 0
    saved = rm.load(out)
    Xs, ys = _lists()
    factor = np.array([0.0, 2.0, 1.0, 0.0, 1.0, np.inf])
    scale = np.concatenate(Xs).std(axis=0)
    lower = np.array([-np.inf, -np.inf, -0.1, -np.inf, -np.inf, -np.inf])
    upper = np.full(6, 1.5)
    est = rm.MultiTaskRegressor("l21", alpha=0.3, penalty_factor=factor,
                                lower_bounds=lower * scale, upper_bounds=upper * scale)
    ref = fit_standardized(est, Xs, ys, task_names=["S0", "S1", "S2", "S3"],
                           feature_names=FEATURES)
    np.testing.assert_allclose(saved.coef_, ref.coef_, atol=1e-8)
    assert np.all(saved.coef_[:, 5] == 0.0)                      # f5 left out (inf)
    assert saved.coef_[:, 2].min() >= -0.1 - 1e-12               # bounds in raw units
    assert saved.coef_.max() <= 1.5 + 1e-12
    np.testing.assert_allclose(saved.get_params()["lower_bounds"], lower)  # saved raw


def test_cv_takes_the_terms(table, tmp_path):
    out = tmp_path / "m.npz"
    assert main(["fit", str(table), *COLS, "--alpha", "auto", "--cv", "3", "--n-alphas", "6",
                 "--unpenalized", "f0", "--out", str(out)]) == 0
    saved = rm.load(out)
    assert np.all(saved.coef_[:, 0] != 0.0)


@pytest.mark.parametrize("flags, words", [
    (["--unpenalized", "nope"], "--unpenalized: unknown column 'nope'"),
    (["--penalty-factor", "f1"], "--penalty-factor: expected COL=VALUE"),
    (["--penalty-factor", "f1=x"], "is not a number"),
    (["--lower-bounds", "f9=1"], "--lower-bounds: unknown column 'f9'"),
    (["--unpenalized", "f0", "--out-of-core"], "per-feature terms take a fit in memory"),
    (["--exclude", "f1", "--workers", "2"], "--exclude with --workers 2: per-feature terms"),
    (["--standardize", "--scheduler", "tcp://x:1"], "--standardize with --scheduler"),
    (["--penalty-factor", "f1=-1"], "--penalty-factor: -1 for 'f1'; a factor is a number >= 0"),
    (["--penalty-factor", "f1=nan"], "--penalty-factor: NaN for 'f1'"),
    (["--penalty-factor", "f1=2,f1=3"], "--penalty-factor: column 'f1' is given twice"),
    (["--penalty-factor", "zz=2"], "--penalty-factor: unknown column 'zz'; the feature "
                                   "columns are f0, f1, f2, f3, f4, f5"),
    (["--unpenalized", "f1", "--penalty-factor", "f1=2"],
     "--unpenalized and --penalty-factor both name f1"),
    (["--exclude", "f2", "--unpenalized", "f2"], "--exclude names f2, also given a finite"),
    (["--exclude", "f0,f1,f2,f3,f4,f5"], "--exclude leaves no column"),
    (["--exclude", "school"], "--exclude: unknown column 'school'"),
    (["--lower-bounds", "nan"], "--lower-bounds: NaN is not a bound"),
    (["--upper-bounds", "f1=-inf"], "--upper-bounds: -inf leaves no value to a coefficient "
                                    "(column 'f1')"),
    (["--lower-bounds", "f2=1", "--upper-bounds", "0.5"],
     "--lower-bounds / --upper-bounds: column 'f2' has lower 1 > upper 0.5"),
    (["--no-rescale-factors"], "--no-rescale-factors acts on the factors"),
    (["--standardize", "--no-standardize"], "--standardize and --no-standardize: give one"),
])
def test_bad_term_options_are_refused_by_name(table, tmp_path, capsys, flags, words):
    rc = main(["fit", str(table), *COLS, "--alpha", "0.3", *flags,
               "--out", str(tmp_path / "m.npz")])
    assert rc != 0
    assert words in capsys.readouterr().err


def test_the_fit_line_names_the_terms(table, tmp_path, capsys):
    assert main(["fit", str(table), *COLS, "--alpha", "0.3", "--unpenalized", "f0",
                 "--exclude", "f4", "--upper-bounds", "f1=1", "--out",
                 str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    # (rescaled as glmnet does, the excluded column counted as 1: 6 / (4 + 1) each)
    assert "terms: unpenalized (1): f0; excluded (1): f4; factor 1.2 on 4 penalized " \
        "features (rescaled); bounds: f1 in [-inf, 1]" in out


def test_no_rescale_and_standardize_equal_the_python_fit(table, tmp_path):
    """``--no-rescale-factors`` keeps the factors as given; ``--standardize`` fits the raw
    columns with the estimator's ``standardize=True`` (no z-scoring first)."""
    out = tmp_path / "m.npz"
    assert main(["fit", str(table), *COLS, "--alpha", "0.3", "--penalty-factor", "f1=3,f2=0.5",
                 "--no-rescale-factors", "--standardize", "--out", str(out)]) == 0
    saved = rm.load(out)
    Xs, ys = _lists()
    est = rm.MultiTaskRegressor("l21", alpha=0.3, penalty_factor=[1.0, 3.0, 0.5, 1, 1, 1],
                                rescale_factors=False, standardize=True)
    ref = fit_standardized(est, Xs, ys, task_names=["S0", "S1", "S2", "S3"],
                           feature_names=FEATURES, standardize=False)
    np.testing.assert_allclose(saved.coef_, ref.coef_, atol=1e-8)
    params = saved.get_params()
    assert params["standardize"] is True and params["rescale_factors"] is False
    np.testing.assert_array_equal(saved.feature_scale_, np.ones(6))  # not z-scored


def test_standardize_task_equals_the_python_fit(table, tmp_path, capsys):
    """``--standardize-task``: the raw columns in each task's own deviations (the estimator's
    ``standardize="task"``), the same fit as the Python API's to 1e-8; the fit line says so;
    ``--standardize`` stays a flag (pooled deviations), wherever it is written."""
    out = tmp_path / "m.npz"
    assert main(["fit", str(table), *COLS, "--alpha", "0.3", "--standardize-task",
                 "--out", str(out)]) == 0
    assert "penalized in each task's own standard deviations" in capsys.readouterr().out
    saved = rm.load(out)
    Xs, ys = _lists()
    est = rm.MultiTaskRegressor("l21", alpha=0.3, standardize="task")
    ref = fit_standardized(est, Xs, ys, task_names=["S0", "S1", "S2", "S3"],
                           feature_names=FEATURES, standardize=False)
    np.testing.assert_allclose(saved.coef_, ref.coef_, atol=1e-8)
    assert saved.get_params()["standardize"] == "task"
    pooled = rm.MultiTaskRegressor("l21", alpha=0.3, standardize=True).fit(Xs, ys)
    assert np.abs(saved.coef_ - pooled.coef_).max() > 1e-3  # (another fit than --standardize)
    # --standardize is a flag: written before the data, it leaves the data's path alone
    assert main(["fit", "--standardize", str(table), *COLS, "--alpha", "0.3",
                 "--out", str(out)]) == 0
    np.testing.assert_allclose(rm.load(out).coef_, pooled.coef_, atol=1e-8)
def test_the_glmnet_convention_equals_the_python_fit(table, tmp_path):
    """``--factor-convention glmnet``: the elastic net's ridge part weighs a factor by d_j
    (the z-scored columns', as glmnet's on standardized ones): the Python fit to 1e-8, and
    another fit than the default convention's by more than 1e-3."""
    fits = []
    for convention in ("glmnet", "unit"):
        out = tmp_path / f"{convention}.npz"
        assert main(["fit", str(table), *COLS, "--penalty", "elasticnet", "--alpha", "0.3",
                     "--penalty-factor", "f1=3,f2=0.5", "--factor-convention", convention,
                     "--out", str(out)]) == 0
        fits.append(rm.load(out))
    assert fits[0].get_params()["factor_convention"] == "glmnet"
    Xs, ys = _lists()
    est = rm.MultiTaskRegressor("elasticnet", alpha=0.3, penalty_factor=[1.0, 3, 0.5, 1, 1, 1],
                                factor_convention="glmnet")
    ref = fit_standardized(est, Xs, ys, task_names=["S0", "S1", "S2", "S3"],
                           feature_names=FEATURES)
    np.testing.assert_allclose(fits[0].coef_, ref.coef_, atol=1e-8)
    assert np.abs(fits[0].coef_ - fits[1].coef_).max() > 1e-3


def test_standardize_task_with_the_glmnet_convention_equals_the_python_fit(table, tmp_path):
    """``--standardize-task --factor-convention glmnet``: the raw columns in each task's own
    deviations, the elastic net's ridge weighing a factor by d_j (d_j s_jt^2 on the raw
    coefficient): the Python fit to 1e-8, and another fit than under ``unit``."""
    fits = []
    for convention in ("glmnet", "unit"):
        out = tmp_path / f"{convention}.npz"
        assert main(["fit", str(table), *COLS, "--penalty", "elasticnet", "--alpha", "0.3",
                     "--penalty-factor", "f1=3,f2=0.5", "--factor-convention", convention,
                     "--standardize-task", "--out", str(out)]) == 0
        fits.append(rm.load(out))
    params = fits[0].get_params()
    assert params["factor_convention"] == "glmnet" and params["standardize"] == "task"
    Xs, ys = _lists()
    est = rm.MultiTaskRegressor("elasticnet", alpha=0.3, penalty_factor=[1.0, 3, 0.5, 1, 1, 1],
                                factor_convention="glmnet", standardize="task")
    ref = fit_standardized(est, Xs, ys, task_names=["S0", "S1", "S2", "S3"],
                           feature_names=FEATURES, standardize=False)
    np.testing.assert_allclose(fits[0].coef_, ref.coef_, atol=1e-8)
    assert np.abs(fits[0].coef_ - fits[1].coef_).max() > 1e-3


#: columns of the School data constant within each school (the rest describe the pupil)
SCHOOL_LEVEL = ["pct_free_school_meals", "pct_vr1_band", "school_boys",
                "school_church_of_england"]


def test_unpenalized_school_columns_equal_the_python_fit_on_school(tmp_path, capsys):
    """On the shipped School data: ``--unpenalized`` school-level columns is the Python
    API's fit with ``penalty_factor={column: 0}`` on the same z-scored frames."""
    from regmtl.datasets import load_dataset
    from regmtl.scaling import pooled_scaling, raw_units, standardize

    out = tmp_path / "school.npz"
    assert main(["fit", "school", "--alpha", "0.05", "--unpenalized", ",".join(SCHOOL_LEVEL),
                 "--out", str(out)]) == 0
    assert "terms: unpenalized (4): pct_free_school_meals, pct_vr1_band, school_boys, " \
        "school_church_of_england; factor 1.17 on 24 penalized features (rescaled)" \
        in capsys.readouterr().out
    saved = rm.load(out)
    data = load_dataset("school")
    names = list(data.feature_names)
    mean, scale = pooled_scaling(data.X)
    Z = {t: pd.DataFrame(z, columns=names)
         for t, z in zip(data.task_names, standardize(data.X, mean, scale), strict=True)}
    est = rm.MultiTaskRegressor("l21", alpha=0.05,
                                penalty_factor={c: 0.0 for c in SCHOOL_LEVEL})
    ref = raw_units(est.fit(Z, dict(zip(data.task_names, data.y, strict=True))), mean,
                    scale, names)
    np.testing.assert_allclose(saved.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(saved.intercept_, ref.intercept_, atol=1e-8)
    free = [names.index(c) for c in SCHOOL_LEVEL]
    np.testing.assert_array_equal(saved.get_params()["penalty_factor"][free], 0.0)
    assert np.all(np.any(saved.coef_[:, free] != 0, axis=0))  # unpenalized: never shrunk to 0
