"""``regmtl fit --loss`` and ``--offset`` (issue 46) on a small table of counts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.cli import main

STORES = ["north", "south", "east"]


def _counts(seed: int = 0) -> pd.DataFrame:
    """Visits per store: Poisson with mean exposure * exp(0.3 + 0.5 x1 - 0.3 x2)."""
    rng = np.random.default_rng(seed)
    parts = []
    for store in STORES:
        n = 80
        X = rng.standard_normal((n, 3))
        exposure = rng.uniform(0.5, 3.0, n)
        visits = rng.poisson(exposure * np.exp(0.3 + 0.5 * X[:, 0] - 0.3 * X[:, 1]))
        parts.append(pd.DataFrame({"store": store, "x1": X[:, 0], "x2": X[:, 1],
                                   "x3": X[:, 2], "log_exposure": np.log(exposure),
                                   "visits": visits}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def counts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "counts.csv"
    _counts().to_csv(path, index=False)
    return path


def _fit(path, tmp_path, *extra):
    out = tmp_path / "model.npz"
    args = ["fit", str(path), "--task-col", "store", "--target", "visits", "--out", str(out),
            "--alpha", "0.01", *extra]
    return main(args), out


def _by_task(frame, column):
    return {s: frame.loc[frame["store"] == s, column].to_numpy(np.float64)
            for s in sorted(STORES)}


def test_fit_poisson_saves_the_poisson_model(counts_csv, tmp_path, capsys):
    rc, out = _fit(counts_csv, tmp_path, "--loss", "poisson", "--features", "x1,x2,x3",
                   "--no-standardize")
    text = capsys.readouterr().out
    assert rc == 0, text
    assert re.search(r"duality gap [0-9.e+-]+; loss poisson \(D\^2 0\.\d{4} on the training "
                     r"rows\)", text), text
    model = rm.load(out)
    assert model.loss == "poisson"
    frame = _counts()
    X = {s: frame.loc[frame["store"] == s, ["x1", "x2", "x3"]] for s in sorted(STORES)}
    ref = rm.MultiTaskRegressor("l21", alpha=0.01, loss="poisson").fit(
        {s: x.to_numpy() for s, x in X.items()}, _by_task(frame, "visits"))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    # the printed D^2 is the model's score on the training rows
    d2 = float(re.search(r"D\^2 (0\.\d{4})", text).group(1))
    assert d2 == pytest.approx(ref.score({s: x.to_numpy() for s, x in X.items()},
                                         _by_task(frame, "visits")), abs=1e-4)
    assert 0.1 < d2 < 0.9
    assert np.all(model.predict(X["east"], task=["east"] * len(X["east"])) > 0)


def test_offset_column_is_the_log_exposure(counts_csv, tmp_path, capsys):
    rc, out = _fit(counts_csv, tmp_path, "--loss", "poisson", "--offset", "log_exposure",
                   "--no-standardize")
    text = capsys.readouterr().out
    assert rc == 0, text
    model = rm.load(out)
    # the offset is not a feature
    assert model.feature_names_in_.tolist() == ["x1", "x2", "x3"]
    frame = _counts()
    Xs = {s: frame.loc[frame["store"] == s, ["x1", "x2", "x3"]].to_numpy()
          for s in sorted(STORES)}
    ref = rm.MultiTaskRegressor("l21", alpha=0.01, loss="poisson").fit(
        Xs, _by_task(frame, "visits"), offset=_by_task(frame, "log_exposure"))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    # the true rate model: intercept 0.3, slopes 0.5, -0.3, 0 (up to noise and shrinkage)
    assert np.all(np.abs(model.intercept_ - 0.3) < 0.35)
    assert np.all(np.abs(model.coef_[:, 0] - 0.5) < 0.25)

    # predict with the offset: the expected visits; the file keeps its columns
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(out), str(counts_csv), "--task-col", "store", "--target",
                 "visits", "--offset", "log_exposure", "--out", str(pred)]) == 0
    text = capsys.readouterr().out
    assert "deviance explained D^2 (loss poisson, task average)" in text
    got = pd.read_csv(pred)
    task = got["store"].to_numpy()
    want = model.predict(got[["x1", "x2", "x3"]], task=task,
                         offset=got["log_exposure"].to_numpy())
    np.testing.assert_allclose(got["prediction"], want, rtol=1e-12)
    rate = model.predict(got[["x1", "x2", "x3"]], task=task)
    np.testing.assert_allclose(got["prediction"], rate * np.exp(got["log_exposure"]),
                               rtol=1e-12)


def test_one_loss_per_task_and_loss_parameters(counts_csv, tmp_path, capsys):
    rc, out = _fit(counts_csv, tmp_path, "--loss", "poisson,squared,huber",
                   "--huber-delta", "2", "--offset", "log_exposure")
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "loss per task: poisson, squared, Huber(delta=2.0)" in text
    model = rm.load(out)
    assert model.tasks_.tolist() == ["east", "north", "south"]
    assert isinstance(model.loss[2], rm.Huber) and model.loss[2].delta == 2.0

    # without --huber-delta: --huber-epsilon robust scales of the Huber task's targets, the
    # delta fitted named in the summary and kept in the file
    rc, out = _fit(counts_csv, tmp_path, "--loss", "poisson,squared,huber",
                   "--huber-epsilon", "2", "--offset", "log_exposure")
    text = capsys.readouterr().out
    assert rc == 0, text
    model = rm.load(out)
    fitted = model.loss_.losses[2]
    assert model.loss[2].delta is None and model.loss[2].epsilon == 2.0
    assert fitted.delta > 0 and f"loss per task: poisson, squared, {fitted!r}" in text

    rc, out = _fit(counts_csv, tmp_path, "--loss", "quantile", "--quantile", "0.9",
                   "--features", "x1,x2,x3", "--penalty", "l2")
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "loss Quantile(0.9)" in text
    model = rm.load(out)
    frame = _counts()
    below = np.mean(frame["visits"] <= model.predict(frame[["x1", "x2", "x3"]],
                                                    task=frame["store"].to_numpy()) + 1e-9)
    assert 0.8 < below <= 1.0


@pytest.mark.parametrize(("extra", "message"), [
    (["--loss", "negbin"], "--loss 'negbin' is not a loss; the losses: "),
    (["--loss", "poisson,squared"], "--loss lists 2 losses for 3 tasks; give one per task, "
                                    "in the order of the sorted task ids: east, north, south"),
    (["--loss", "huber", "--quantile", "0.9"], "--quantile is a parameter of the quantile "
                                               "loss; pass --loss quantile"),
    (["--huber-delta", "1"], "--huber-delta is a parameter of the huber loss"),
    (["--loss", "quantile", "--quantile", "1.5"], "--quantile 1.5: "),
    (["--loss", "huber", "--huber-delta", "0"], "--huber-delta 0.0: "),
    (["--loss", "gamma"], "the gamma loss takes positive targets"),
    (["--loss", "poisson", "--offset", "nope"], "--offset 'nope': column 'nope' is not in "
                                                 "the file"),
    (["--loss", "poisson", "--offset", "store"], "--offset 'store' is the task or target "
                                                  "column"),
    (["--loss", "poisson", "--offset", "log_exposure", "--features", "x1,log_exposure"],
     "--offset 'log_exposure' is also in --features"),
    (["--loss", "poisson", "--kind", "binary"], "--kind binary does not fit --loss poisson"),
])
def test_clear_errors(counts_csv, tmp_path, capsys, extra, message):
    rc, _ = _fit(counts_csv, tmp_path, *extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("regmtl: error: ") and message in err, err


def test_offset_needs_a_file(tmp_path, capsys):
    rc = main(["fit", "school", "--loss", "poisson", "--offset", "x", "--alpha", "0.1",
               "--out", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "offsets are read from a table file's column" in err, err


def test_squared_fit_line_names_its_loss(counts_csv, tmp_path, capsys):
    rc, _ = _fit(counts_csv, tmp_path, "--features", "x1,x2,x3")
    text = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"; loss squared \(R\^2 0\.\d{4} on the training rows\)", text), text


def test_predict_refuses_an_offset_that_is_not_a_number(counts_csv, tmp_path, capsys):
    rc, out = _fit(counts_csv, tmp_path, "--loss", "poisson", "--offset", "log_exposure")
    assert rc == 0
    frame = _counts().astype({"log_exposure": object})
    frame.loc[5, "log_exposure"] = "n/a"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    capsys.readouterr()
    rc = main(["predict", str(out), str(bad), "--task-col", "store", "--offset",
               "log_exposure"])
    err = capsys.readouterr().err
    assert rc == 2 and "--offset 'log_exposure': row 5 holds nan, not a finite number" in err


# ------------------------------------------------------------------ regmtl compare --loss
def _compare(path, *extra):
    return main(["compare", str(path), "--task-col", "store", "--target", "visits",
                 "--features", "x1,x2,x3", "--splits", "2", "--models", "l21", "--no-report",
                 "--n-jobs", "1", "-q", *extra])


def test_compare_takes_the_loss_flags(counts_csv, capsys):
    rc = _compare(counts_csv, "--loss", "poisson")
    text = capsys.readouterr().out
    assert rc == 0, text
    assert re.search(r"model\s+D2\s+sd\s+deviance", text), text
    assert re.search(r"MTL L2,1\s+0\.\d{4}", text), text
    rc = _compare(counts_csv, "--loss", "huber", "--huber-delta", "2")
    text = capsys.readouterr().out
    assert rc == 0 and "D2" in text, text


def test_compare_matches_compare_in_python(counts_csv, capsys):
    frame = pd.read_csv(counts_csv)
    rc = _compare(counts_csv, "--loss", "poisson")
    text = capsys.readouterr().out
    comp = rm.compare(frame[["x1", "x2", "x3"]], frame["visits"], frame["store"],
                      loss="poisson", models=["l21"], splits=2, n_jobs=1, progress=False)
    assert rc == 0 and f"{comp.summary['d2_mean'].iloc[0]:.4f}" in text, text


@pytest.mark.parametrize(("extra", "message"), [
    (("--quantile", "0.8"), "--quantile is a parameter of the quantile loss"),
    (("--loss", "poison"), "--loss 'poison' is not a loss"),
    (("--loss", "poisson,squared"), "--loss lists 2 losses for 3 tasks"),
    (("--loss", "logistic", "--kind", "regression"), "--kind regression does not fit"),
])
def test_compare_loss_errors(counts_csv, capsys, extra, message):
    rc = _compare(counts_csv, *extra)
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err


def test_compare_has_no_offset_flag(counts_csv, capsys):
    with pytest.raises(SystemExit):
        _compare(counts_csv, "--offset", "log_exposure")
    assert "unrecognized arguments: --offset" in capsys.readouterr().err


def test_predict_writes_click_probabilities_of_a_fit_with_one_loss_per_task(tmp_path, capsys):
    frame = _counts()
    east = frame["store"] == "east"  # east: a click (visited or not)
    frame.loc[east, "visits"] = (frame.loc[east, "visits"] > 1).astype(int)
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    rc, out = _fit(path, tmp_path, "--loss", "logistic,poisson,squared", "--features",
                   "x1,x2,x3")
    assert rc == 0, capsys.readouterr().out
    model = rm.load(out)
    pred = tmp_path / "pred.csv"
    assert main(["predict", str(out), str(path), "--task-col", "store", "--out",
                 str(pred)]) == 0
    got = pd.read_csv(pred)
    click = (got["store"] == "east").to_numpy()
    want = model.predict_proba(got.loc[click, ["x1", "x2", "x3"]],
                               task=got.loc[click, "store"].to_numpy())[:, 1]
    np.testing.assert_allclose(got.loc[click, "probability"], want, rtol=1e-12)
    assert got.loc[~click, "probability"].isna().all()
    np.testing.assert_array_equal(got.loc[click, "prediction"], (want > 0.5).astype(float))
