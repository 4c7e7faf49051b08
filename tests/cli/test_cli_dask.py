"""``regmtl fit`` and ``regmtl predict`` on a Dask cluster (``--scheduler`` / ``--workers``).

The end-to-end tests start a real LocalCluster through the command itself (``--workers 2``) on
a small table split in three Parquet files, and compare with the in-memory commands on the
same rows. The argument tests need no cluster: every check on the input runs before one
starts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.cli import main

pytest.importorskip("pyarrow")

FEATURES = ["f0", "f1", "f2"]
TASKS = [f"shop_{t}" for t in range(5)]
FIT = ["--task-col", "shop", "--target", "sales", "--penalty", "l2", "--alpha", "0.05",
       "--tol", "1e-9"]


def _table(seed: int = 0) -> pd.DataFrame:
    """300 rows of 5 shops (60 each, interleaved), 3 features on different scales, an id column
    with leading zeros and a note column that are neither features nor targets."""
    rng = np.random.default_rng(seed)
    n = 300
    shop = rng.permutation(np.repeat(np.arange(5), n // 5))
    X = rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0]
    W = np.array([[1.0, 0.1, 0.0]]).T + 0.3 * rng.standard_normal((3, 5))
    W[1] /= 10.0
    W[2] *= 10.0
    y = np.einsum("ij,ji->i", X, W[:, shop]) + shop + 0.5 * rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=FEATURES)
    frame.insert(0, "id", [f"{i:05d}" for i in range(n)])
    frame["shop"] = [TASKS[t] for t in shop]
    frame["sales"] = y
    frame["note"] = rng.choice(["a", "b"], n)
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """The table in three Parquet files (and in one, for the in-memory commands), and the
    in-memory fit of it."""
    root = tmp_path_factory.mktemp("dask_cli")
    frame = _table()
    parts = root / "parts"
    parts.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(parts / f"part-{k}.parquet", index=False)
    whole = root / "whole.parquet"
    frame.to_parquet(whole, index=False)
    model = root / "memory.npz"
    # the in-memory reference; "note" is text, so the features are named
    assert main(["fit", str(whole), *FIT, "--features", ",".join(FEATURES),
                 "--out", str(model)]) == 0
    return {"root": root, "frame": frame, "glob": str(parts / "part-*.parquet"),
            "whole": whole, "model": model}


# ---------------------------------------------------------------------------- end to end
def test_fit_on_a_local_cluster_equals_the_in_memory_fit(data, capsys):
    pytest.importorskip("dask.distributed")
    out = data["root"] / "dask.npz"
    capsys.readouterr()
    assert main(["fit", data["glob"], *FIT, "--features", ",".join(FEATURES),
                 "--workers", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "on a local Dask cluster of 2 worker process(es)" in text
    assert re.search(r"part-\*\.parquet: 5 tasks, 300 rows; penalty l2, alpha 0\.05; "
                     r"\d of 3 features used; duality gap", text)
    got, ref = rm.load(out), rm.load(data["model"])
    assert list(got.tasks_) == TASKS == list(ref.tasks_)
    assert list(got.feature_names_in_) == FEATURES
    np.testing.assert_allclose(got.feature_mean_, ref.feature_mean_, rtol=1e-12)
    np.testing.assert_allclose(got.feature_scale_, ref.feature_scale_, rtol=1e-12)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=1e-5,
                               atol=1e-5 * np.abs(ref.intercept_).max())


def test_predict_on_a_local_cluster_writes_the_rows_in_order(data, capsys):
    pytest.importorskip("dask.distributed")
    frame = data["frame"]
    out = data["root"] / "predictions.parquet"
    common = ["--task-col", "shop", "--target", "sales"]
    capsys.readouterr()
    assert main(["predict", str(data["model"]), data["glob"], *common, "--workers", "2",
                 "--output", str(out)]) == 0
    text = capsys.readouterr().out
    got = pd.read_parquet(out)  # the part files, read in order
    assert sorted(p.name for p in out.iterdir()) == [f"part.{k}.parquet" for k in range(3)]
    # the input's non-feature columns as they were (ids with leading zeros), in row order
    assert got.columns.tolist() == ["id", "shop", "sales", "note", "prediction"]
    for col in ("id", "shop", "note"):  # (Dask writes text as Arrow strings)
        assert got[col].tolist() == frame[col].tolist()
    assert got["sales"].to_numpy().tobytes() == frame["sales"].to_numpy().tobytes()
    model = rm.load(data["model"])
    expect = model.predict(frame[FEATURES], task=frame["shop"].to_numpy())
    np.testing.assert_allclose(got["prediction"].to_numpy(), expect, rtol=1e-8, atol=1e-8)
    # the scores equal those of the in-memory command on the same rows
    scores = [ln for ln in text.splitlines() if ln.startswith("explained variance")]
    assert main(["predict", str(data["model"]), str(data["whole"]), *common,
                 "--out", str(data["root"] / "memory.csv")]) == 0
    assert scores == [ln for ln in capsys.readouterr().out.splitlines()
                      if ln.startswith("explained variance")]


# ---------------------------------------------------------------------------- bad input
def _error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("regmtl: error: ") and "\n" not in err, err
    return err


def _usage(capsys, argv: list[str]) -> str:
    """An argparse error: exit status 2 and the message on stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_fit_names_a_missing_task_column(data, capsys):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["fit", data["glob"], "--task-col", "store", "--target", "sales",
                          "--alpha", "0.1", "--workers", "2", "--out", "m.npz"])
    assert "--task-col 'store' is not a column of" in err
    assert "id, f0, f1, f2, shop, sales, note" in err


def test_fit_names_a_missing_target(data, capsys):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["fit", data["glob"], "--task-col", "shop", "--target", "revenue",
                          "--alpha", "0.1", "--workers", "2", "--out", "m.npz"])
    assert "--target 'revenue' is not a column of" in err


def test_predict_names_a_missing_task_column(data, capsys):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["predict", str(data["model"]), data["glob"], "--task-col", "store",
                          "--workers", "2", "--out", str(data["root"] / "p.parquet")])
    assert "--task-col 'store' is not a column of" in err


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_a_glob_that_matches_nothing_is_named(data, capsys, command):
    pytest.importorskip("dask.dataframe")
    pattern = str(data["root"] / "nothing-*.parquet")
    argv = (["fit", pattern, *FIT, "--out", "m.npz"] if command == "fit" else
            ["predict", str(data["model"]), pattern, "--task-col", "shop",
             "--out", str(data["root"] / "p.parquet")])
    err = _error(capsys, [*argv, "--workers", "2"])
    assert f"{pattern}: no file matches this pattern" in err


def test_a_missing_directory_is_named(data, capsys):
    pytest.importorskip("dask.dataframe")
    path = str(data["root"] / "no-such-dir")
    err = _error(capsys, ["fit", path, *FIT, "--workers", "2", "--out", "m.npz"])
    assert f"{path}: no such file or directory" in err


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_scheduler_and_workers_exclude_each_other(capsys, command):
    head = ["fit", "t.parquet", *FIT, "--out", "m.npz"] if command == "fit" else [
        "predict", "m.npz", "t.parquet", "--task-col", "shop", "--out", "p.parquet"]
    err = _usage(capsys, [*head, "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"])
    assert "argument --workers: not allowed with argument --scheduler" in err


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(capsys, value):
    err = _usage(capsys, ["fit", "t.parquet", *FIT, "--out", "m.npz", "--workers", value])
    assert "argument --workers: expected an integer" in err


def test_a_shell_expanded_glob_gets_a_hint(capsys):
    err = _usage(capsys, ["fit", "a.parquet", "b.parquet", *FIT, "--out", "m.npz",
                          "--workers", "2"])
    assert "unrecognized arguments: b.parquet" in err and "quote it" in err


def test_alpha_auto_is_refused_on_dask(data, capsys):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["fit", data["glob"], "--task-col", "shop", "--target", "sales",
                          "--workers", "2", "--out", "m.npz"])
    assert "--alpha auto (cross-validation) runs in memory only" in err
    assert "give --alpha VALUE" in err


def test_csv_input_is_refused_on_dask(data, capsys, tmp_path):
    pytest.importorskip("dask.dataframe")
    path = tmp_path / "t.csv"
    data["frame"].to_csv(path, index=False)
    err = _error(capsys, ["fit", str(path), *FIT, "--workers", "2", "--out", "m.npz"])
    assert "read as Parquet" in err


def test_predict_refuses_a_csv_output_on_dask(data, capsys, tmp_path):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["predict", str(data["model"]), data["glob"], "--task-col", "shop",
                          "--workers", "2", "--out", str(tmp_path / "p.csv")])
    assert "give a path ending in .parquet or a directory" in err
    assert "every row through this one process" in err
    assert not (tmp_path / "p.csv").exists()


def test_predict_on_dask_needs_an_output(data, capsys):
    pytest.importorskip("dask.dataframe")
    err = _error(capsys, ["predict", str(data["model"]), data["glob"], "--task-col", "shop",
                          "--workers", "2"])
    assert "pass --out DIR.parquet" in err


def test_predict_refuses_to_write_into_the_input(data, capsys):
    pytest.importorskip("dask.dataframe")
    parts = Path(data["glob"]).parent
    err = _error(capsys, ["predict", str(data["model"]), str(parts), "--task-col", "shop",
                          "--workers", "2", "--out", str(parts)])
    assert "that is where the input data are" in err
    assert len(list(parts.iterdir())) == 3


def test_predict_refuses_a_directory_with_other_files(data, capsys, tmp_path):
    pytest.importorskip("dask.dataframe")
    (tmp_path / "notes.txt").write_text("keep me")
    err = _error(capsys, ["predict", str(data["model"]), data["glob"], "--task-col", "shop",
                          "--workers", "2", "--out", str(tmp_path)])
    assert "holds files other than a previous output (notes.txt)" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_without_dask_the_message_says_what_to_install(data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    err = _error(capsys, ["fit", data["glob"], *FIT, "--workers", "2", "--out", "m.npz"])
    assert 'pip install "regmtl[dask]"' in err
    assert err.startswith("regmtl: error: --workers 2 runs the command on Dask")


def test_an_unreachable_scheduler_is_one_line(data, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        err = _error(capsys, ["fit", data["glob"], *FIT, "--features", ",".join(FEATURES),
                              "--scheduler", "tcp://127.0.0.1:1", "--out", "m.npz"])
    assert "--scheduler tcp://127.0.0.1:1: cannot connect to a Dask scheduler there" in err


# ---------------------------------------------------------------------------- the data pass
def _summary(frame: pd.DataFrame, target: str = "sales", kind: str = "auto") -> dict:
    """The CLI's one pass over a table in three partitions, on Dask's in-process scheduler."""
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    from argparse import Namespace

    from regmtl import cli

    args = Namespace(task_col="shop", target=target, kind=kind, data="t.parquet")
    with dask.config.set(scheduler="sync"):
        return cli._dask_summary(dask, dd.from_pandas(frame, npartitions=3), FEATURES, args)


def test_the_data_pass_gives_the_in_memory_scaling():
    frame = _table()
    frame["f1"] += 1e6  # far from 0: partition moments must not cancel
    got = _summary(frame)
    X = frame[FEATURES].to_numpy()
    np.testing.assert_allclose(got["mean"], X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(got["scale"], X.std(axis=0), rtol=1e-10)
    assert got["n"] == 300 and got["kind"] == "regression"
    above = frame["sales"] > frame.groupby("shop")["sales"].transform("median")
    assert _summary(frame.assign(label=np.where(above, "up", "down")),
                    target="label")["kind"] == "binary"


def test_the_data_pass_refuses_what_the_in_memory_reader_refuses():
    from regmtl.cli import UsageError

    frame = _table()
    lonely = pd.concat([frame, frame.iloc[:1].assign(shop="lonely")], ignore_index=True)
    with pytest.raises(UsageError, match="task 'lonely' has 1 row; every task needs at least 2"):
        _summary(lonely)
    above = frame["sales"] > frame.groupby("shop")["sales"].transform("median")
    one_class = frame.assign(label=np.where(frame["shop"] == "shop_3", "n",
                                            np.where(above, "y", "n")))
    with pytest.raises(UsageError, match="task 'shop_3' has only the class 'n'"):
        _summary(one_class, target="label")
    holes = frame.copy()
    holes.loc[7, "f2"] = np.nan
    with pytest.raises(UsageError, match=r"NaN or infinite values in column\(s\) 'f2' \(1\)"):
        _summary(holes)
    with pytest.raises(UsageError, match="--target 'sales': 1 missing value"):
        _summary(frame.assign(sales=frame["sales"].where(frame.index != 5)))
    with pytest.raises(UsageError, match="--kind binary needs exactly 2 distinct values"):
        _summary(frame, kind="binary")
