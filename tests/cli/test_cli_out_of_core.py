"""``regmtl fit --out-of-core`` and ``regmtl predict --out-of-core``: Parquet rows sorted by task,
read chunk by chunk in this process, against the in-memory commands on the same rows."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.cli import main

pytest.importorskip("pyarrow")

FEATURES = ["f0", "f1", "f2"]
FIT = ["--task-col", "shop", "--target", "sales", "--penalty", "l21", "--alpha", "0.05",
       "--tol", "1e-9", "--features", ",".join(FEATURES)]
#: the out-of-core fit stores its Grams in float32 (about 1e-7 of the quadratic): a tolerance
#: above that; a relative gap of 1e-7 leaves the coefficients within about sqrt(1e-7)
OOC = [*FIT[:-4], "--tol", "1e-7", *FIT[-2:]]


def _close(a, b) -> float:
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


def _table(seed: int = 0) -> pd.DataFrame:
    """8 shops of 20 to 40 rows, sorted by shop; features on different scales; a binary
    column and a note that are not features."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 40, 8)
    shop = np.repeat(np.arange(8), sizes)
    n = len(shop)
    X = rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0]
    W = np.array([[1.0, 0.1, 0.0]]).T + 0.3 * rng.standard_normal((3, 8))
    W[2] *= 10.0
    y = np.einsum("ij,ji->i", X, W[:, shop]) + shop + 0.5 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["shop"] = [f"shop_{t}" for t in shop]
    frame["sales"] = y
    frame["big"] = (y > frame.groupby("shop")["sales"].transform("median")).astype(np.int64)
    frame["note"] = rng.choice(["a", "b"], n)
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ooc_cli")
    frame = _table()
    parts = root / "parts"
    parts.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):  # shops split too
        frame.iloc[rows].to_parquet(parts / f"part-{k}.parquet", index=False)
    whole = root / "whole.parquet"
    frame.to_parquet(whole, index=False)
    model = root / "memory.npz"
    assert main(["fit", str(whole), *FIT, "--out", str(model)]) == 0
    return {"root": root, "frame": frame, "parts": parts, "whole": whole, "model": model}


def test_fit_out_of_core_equals_the_in_memory_fit(data, capsys):
    ref = rm.load(data["model"])
    for extra in ([], ["--chunk-rows", "30"]):
        out = data["root"] / "ooc.npz"
        capsys.readouterr()
        with warnings.catch_warnings():  # certified to tol: no ConvergenceWarning
            warnings.simplefilter("error", ConvergenceWarning)
            assert main(["fit", str(data["parts"]), *OOC, "--out-of-core", *extra,
                         "--spill-dir", str(data["root"] / "spill"), "--out", str(out)]) == 0
        text = capsys.readouterr().out
        assert "parts: out of core, 8 tasks, " in text
        assert re.search(r"parts: 8 tasks, \d+ rows; penalty l21, alpha 0\.05; \d of 3 "
                         r"features used; duality gap", text)
        got = rm.load(out)
        assert list(got.tasks_) == list(ref.tasks_)
        assert list(got.feature_names_in_) == FEATURES
        assert _close(got.coef_, ref.coef_) < 1e-4
        assert _close(got.intercept_, ref.intercept_) < 1e-4
    glob = str(data["parts"] / "part-*.parquet")
    assert main(["fit", glob, *OOC, "--out-of-core", "--no-standardize",
                 "--out", str(data["root"] / "raw.npz")]) == 0
    raw = rm.load(data["root"] / "raw.npz")
    assert main(["fit", str(data["whole"]), *FIT, "--no-standardize",
                 "--out", str(data["root"] / "raw_memory.npz")]) == 0
    assert _close(raw.coef_, rm.load(data["root"] / "raw_memory.npz").coef_) < 1e-4


def test_fit_out_of_core_keeps_a_checkpoint_and_checks_it(data, capsys, tmp_path):
    """``--checkpoint DIR`` keeps the fit's state: a second run resumes from it to the same
    model (bit for bit); a damaged file is refused by name, and ``--checkpoint-restart``
    starts over with a warning naming it; the flags are refused where they do nothing."""
    folder = tmp_path / "state"
    args = ["fit", str(data["parts"]), *OOC, "--out-of-core", "--checkpoint", str(folder)]
    assert main([*args, "--out", str(tmp_path / "a.npz")]) == 0
    assert (folder / "checkpoint.json").exists() and (folder / "fista.npz").exists()
    assert main([*args, "--out", str(tmp_path / "b.npz")]) == 0
    a, b = rm.load(tmp_path / "a.npz"), rm.load(tmp_path / "b.npz")
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
    raw = bytearray((folder / "fista.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (folder / "fista.npz").write_bytes(bytes(raw))
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "c.npz")]) != 0
    assert "its file fista.npz is damaged" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="its file fista.npz is damaged"):
        assert main([*args, "--checkpoint-restart", "--out", str(tmp_path / "d.npz")]) == 0
    assert np.array_equal(rm.load(tmp_path / "d.npz").coef_, a.coef_)
    assert main(["fit", str(data["whole"]), *FIT, "--checkpoint", str(folder),
                 "--out", str(tmp_path / "e.npz")]) != 0
    assert "--checkpoint keeps the state of an --out-of-core fit" in capsys.readouterr().err


def test_a_tiny_alpha_on_short_tasks_warns(tmp_path):
    """50 tasks of 25 rows, 8 features: at alpha 1e-6 (far below 1e-3 alpha_max) each task
    is fitted nearly by least squares on its own rows, which the warning says (and points to
    --alpha auto); a tenth of alpha_max is silent."""
    from regmtl.datasets import make_parquet_tasks

    make_parquet_tasks(tmp_path / "d", 50, n_rows=25, n_features=8, tasks_per_file=50,
                       row_group_tasks=25, random_state=0)
    args = ["fit", str(tmp_path / "d"), "--task-col", "task", "--target", "y",
            "--out-of-core", "--out", str(tmp_path / "m.npz")]
    with pytest.warns(UserWarning, match=r"alpha 1e-06 is .* of alpha_max on tasks of a "
                                         r"median 25 rows for 8 features: .*--alpha auto"):
        assert main([*args, "--alpha", "1e-6"]) == 0
    top = rm.alpha_max(rm.ParquetTasks(tmp_path / "d", progress=False).standardized(
        *rm.ParquetTasks(tmp_path / "d", progress=False).feature_scaling()), penalty="l21")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main([*args, "--alpha", repr(0.1 * top)]) == 0


def test_predict_out_of_core_writes_the_rows_in_order_and_scores_them(data, capsys, tmp_path):
    out = tmp_path / "pred.parquet"
    capsys.readouterr()
    assert main(["predict", str(data["model"]), str(data["parts"]), "--task-col", "shop",
                 "--target", "sales", "--out-of-core", "--chunk-rows", "25",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    written = pd.read_parquet(out)
    assert list(written.columns) == ["shop", "sales", "prediction"]
    frame = data["frame"]
    assert written["shop"].tolist() == frame["shop"].tolist()
    np.testing.assert_array_equal(written["sales"], frame["sales"])
    model = rm.load(data["model"])
    expect = model.predict(frame[FEATURES], task=frame["shop"].to_numpy())
    np.testing.assert_allclose(written["prediction"], expect, rtol=1e-12, atol=1e-12)
    assert main(["predict", str(data["model"]), str(data["whole"]), "--task-col", "shop",
                 "--target", "sales"]) == 0
    memory = capsys.readouterr().out
    line = re.search(r"explained variance \(all rows\): .*", text).group(0)
    assert line == re.search(r"explained variance \(all rows\): .*", memory).group(0)


def test_predict_out_of_core_with_a_classifier(data, capsys, tmp_path):
    model = tmp_path / "clf.npz"
    assert main(["fit", str(data["whole"]), "--task-col", "shop", "--target", "big",
                 "--features", ",".join(FEATURES), "--penalty", "l2", "--alpha", "0.01",
                 "--out", str(model)]) == 0
    out = tmp_path / "labels.parquet"
    capsys.readouterr()
    assert main(["predict", str(model), str(data["parts"]), "--task-col", "shop",
                 "--target", "big", "--out-of-core", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    written = pd.read_parquet(out)
    clf = rm.load(model)
    frame = data["frame"]
    task = frame["shop"].to_numpy()
    np.testing.assert_array_equal(written["prediction"], clf.predict(frame[FEATURES], task=task))
    np.testing.assert_allclose(written["probability"],
                               clf.predict_proba(frame[FEATURES], task=task)[:, 1], rtol=1e-12)
    assert main(["predict", str(model), str(data["whole"]), "--task-col", "shop",
                 "--target", "big"]) == 0
    memory = capsys.readouterr().out
    line = re.search(r"accuracy \(all rows\): .*", text).group(0)
    assert line == re.search(r"accuracy \(all rows\): .*", memory).group(0)


@pytest.mark.parametrize(("args", "message"), [
    (["--held-out", "0.2"], "--held-out chooses alpha on held-out rows"),
    (["--kind", "binary"], "--out-of-core fits the squared loss"),
    (["--loss", "huber"], "--out-of-core fits the squared loss"),
])
def test_fit_out_of_core_refuses_what_it_does_not_fit(data, capsys, tmp_path, args,
                                                      message):
    argv = ["fit", str(data["parts"]), *FIT, "--out-of-core", *args, "--out",
            str(tmp_path / "m.npz")]
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_errors_are_one_line(data, capsys, tmp_path):
    model = str(data["model"])
    assert main(["fit", str(data["whole"]), *FIT, "--spill-dir", "s", "--out", "m.npz"]) == 2
    assert "--spill-dir is an option of --out-of-core" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: the ways to run exclude each other
        main(["fit", str(data["parts"]), *FIT, "--out-of-core", "--workers", "2", "--out", "m"])
    capsys.readouterr()
    assert main(["predict", model, str(data["parts"]), "--task-col", "shop",
                 "--out-of-core"]) == 2
    assert "pass --out FILE.parquet" in capsys.readouterr().err
    assert main(["predict", model, str(data["parts"]), "--task-col", "shop", "--out-of-core",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "writes one Parquet file" in capsys.readouterr().err
    assert main(["predict", model, str(data["parts"]), "--task-col", "shop", "--out-of-core",
                 "--out", str(data["parts"] / "p.parquet")]) == 2
    assert "that is where the input data are" in capsys.readouterr().err
    shuffled = tmp_path / "shuffled.parquet"
    data["frame"].sample(frac=1.0, random_state=0).to_parquet(shuffled, index=False)
    assert main(["fit", str(shuffled), *FIT, "--out-of-core", "--out", "m.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("regmtl: error: task: the rows are not sorted by task")
    assert len(err.strip().splitlines()) == 1
    csv = tmp_path / "t.csv"
    data["frame"].to_csv(csv, index=False)
    assert main(["fit", str(csv), *FIT, "--out-of-core", "--out", "m.npz"]) == 2
    assert "--out-of-core reads Parquet" in capsys.readouterr().err
    assert main(["fit", str(data["parts"]), *FIT[:-2], "--out-of-core", "--out", "m.npz"]) == 2
    assert re.search("features: column 'note' has type (large_)?string",
                     capsys.readouterr().err)
