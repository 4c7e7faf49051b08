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
    # (the finite factors rescaled to sum to their number, as glmnet does: 4 / 5 each)
    assert "terms: unpenalized: f0; excluded: f4; factor 1.25 on 4 features; bounds on 1 " \
        "features" in out
