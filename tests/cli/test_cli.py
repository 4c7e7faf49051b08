"""The ``regmtl`` command, run through its entry point on small files."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import regmtl as rm
from regmtl.cli import main
from regmtl.datasets import make_multitask_regression

FEATURES = [f"f{j}" for j in range(6)]


def _frame(seed: int = 0) -> pd.DataFrame:
    d = make_multitask_regression(4, [40, 50, 60, 45], 6, n_informative=3, noise=0.5,
                                  random_state=seed)
    parts = []
    for t, (X, y) in enumerate(zip(d.X, d.y, strict=True)):
        f = pd.DataFrame(X, columns=FEATURES)
        f["school"] = f"S{t}"
        f["score"] = y
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    _frame().to_csv(path, index=False)
    return path


def _command() -> list[str]:
    script = Path(sys.executable).parent / "regmtl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "regmtl.cli"]


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.cells = [], []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        self._in_cell = tag in ("td", "th")

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.cells.append(data.strip())

    def handle_endtag(self, tag):
        self._in_cell = False


def test_compare_csv_prints_table_and_writes_report(small_csv, tmp_path, capsys):
    report = tmp_path / "out" / "report.html"
    rc = main(["compare", str(small_csv), "--task-col", "school", "--target", "score",
               "--splits", "2", "--models", "ridge,pooled,l21", "--n-alphas", "6",
               "--report", str(report)])
    assert rc == 0
    out = capsys.readouterr().out
    rows = {ln.split("  ")[0].strip(): ln for ln in out.splitlines()
            if ln.startswith(("ridge", "pooled", "MTL"))}
    assert set(rows) == {"ridge (independent)", "pooled", "MTL L2,1"}
    ev = float(rows["MTL L2,1"].split()[2])
    assert 0.0 < ev <= 1.0
    assert f"report: {report.resolve()}" in out
    # the last line: each model's fit seconds, the slowest first, and the whole run's time
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"time: (.+) \(fitting, summed over 2 split\(s\); total ([0-9.]+) s\)",
                     last)
    assert m, last
    parts = [re.fullmatch(r"(\S+) ([0-9.]+) s", part).groups() for part in m[1].split(", ")]
    assert sorted(name for name, _ in parts) == ["l21", "pooled", "ridge"]
    seconds = [float(v) for _, v in parts]
    assert seconds == sorted(seconds, reverse=True) and float(m[2]) > 0
    assert "compare" not in capsys.readouterr().err  # stderr is no terminal: no bar
    # the report opens: it holds the table and the plots as PNG images
    parser = _Tags()
    parser.feed(report.read_text())
    assert "MTL L2,1" in parser.cells and "ridge (independent)" in parser.cells
    assert len(parser.imgs) >= 4
    for img in parser.imgs:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_then_predict_round_trip(small_csv, tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["fit", str(small_csv), "--task-col", "school", "--target", "score",
                 "--penalty", "l21", "--alpha", "auto", "--cv", "3", "--n-alphas", "8",
                 "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"alpha [0-9.e+-]+ \(by 3-fold CV\)", out)
    preds = tmp_path / "pred.csv"
    assert main(["predict", str(model), str(small_csv), "--task-col", "school", "--target",
                 "score", "--out", str(preds)]) == 0
    got = pd.read_csv(preds)
    frame = _frame()
    m = rm.load(model)
    # the saved model works on raw features: same predictions from Python
    expect = m.predict(frame[FEATURES], task=frame["school"].to_numpy())
    np.testing.assert_allclose(got["prediction"], expect, rtol=1e-12)
    assert list(m.tasks_) == ["S0", "S1", "S2", "S3"]
    # and it equals the standardized fit expressed in raw units
    mean, scale = frame[FEATURES].mean().to_numpy(), frame[FEATURES].std(ddof=0).to_numpy()
    z = rm.MultiTaskRegressor(alpha=m.alpha).fit(
        {s: (g[FEATURES].to_numpy() - mean) / scale for s, g in frame.groupby("school")},
        {s: g["score"].to_numpy() for s, g in frame.groupby("school")})
    np.testing.assert_allclose(m.coef_, z.coef_ / scale, rtol=1e-6, atol=1e-8)
    resid = frame["score"] - got["prediction"]
    assert np.mean(resid**2) < np.var(frame["score"])


def _class_frame(labels: tuple) -> pd.DataFrame:
    """Three stores, labels ``labels[1]`` where the first feature (plus noise) is positive."""
    rng = np.random.default_rng(0)
    parts = []
    for t in range(3):
        X = rng.standard_normal((60, 4))
        positive = X[:, 0] + 0.3 * rng.standard_normal(60) > 0
        f = pd.DataFrame(X, columns=[f"f{j}" for j in range(4)])
        f["store"] = f"s{t}"
        f["label"] = np.where(positive, labels[1], labels[0])
        parts.append(f)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("labels", [(0, 1), ("hi", "lo")], ids=["int", "str"])
def test_classification_round_trip_keeps_the_users_labels(tmp_path, labels):
    """fit, then predict on the same file through the console script: the predictions are the
    file's own labels (ints stay ints, strings stay strings) and the accuracy is scored on
    them (it read 0.0000 when "1.0" was compared with "1"). The fit runs in this process
    (the same ``main``; the saved file is what predict reads), the predict in a fresh one."""
    from sklearn.metrics import accuracy_score

    frame = _class_frame(labels)
    data, model, preds = tmp_path / "b.csv", tmp_path / "m.npz", tmp_path / "p.csv"
    frame.to_csv(data, index=False)
    cols = ["--task-col", "store", "--target", "label"]
    assert main(["fit", str(data), *cols, "--alpha", "0.01", "--out", str(model)]) == 0
    proc = subprocess.run([*_command(), "predict", str(model), str(data), *cols, "--out",
                           str(preds)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(preds)
    truth = pd.read_csv(data)["label"]
    assert got["prediction"].dtype == truth.dtype
    assert set(got["prediction"]) <= set(labels)
    # the saved model, from Python, predicts the same labels
    m = rm.load(model)
    expect = m.predict(frame[[f"f{j}" for j in range(4)]], task=frame["store"].to_numpy())
    assert got["prediction"].tolist() == expect.tolist()
    hits = got["prediction"] == truth
    assert hits.mean() > 0.85
    by_task = np.mean([accuracy_score(g["label"], g["prediction"])
                       for _, g in got.groupby("store")])
    assert (f"accuracy (all rows): {accuracy_score(truth, got['prediction']):.4f}; "
            f"accuracy (task average): {by_task:.4f}") in proc.stdout


def test_predict_refuses_labels_the_model_never_saw(tmp_path):
    data, model = tmp_path / "b.csv", tmp_path / "m.npz"
    _class_frame((0, 1)).to_csv(data, index=False)
    cols = ["--task-col", "store", "--target", "label"]
    assert main(["fit", str(data), *cols, "--alpha", "0.01", "--out", str(model)]) == 0
    other = tmp_path / "s.csv"
    _class_frame(("hi", "lo")).to_csv(other, index=False)
    proc = subprocess.run([*_command(), "predict", str(model), str(other), *cols],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert re.search(r"--target 'label': row 0 holds 'lo', not one of the labels the model was "
                     r"fitted on \(0, 1\)", proc.stderr), proc.stderr


@pytest.mark.parametrize("mutate, args, message", [
    (lambda f: f.drop(columns="school"), [], r"task_col: column 'school' is not in the file"),
    (lambda f: f.assign(score=f["score"].astype(object).where(f.index != 3, "abc")), [],
     r"target: column 'score' must be numeric.*row 3.*'abc'"),
    (lambda f: f, ["--alpha", "-1"], r"alpha"),
])
def test_bad_input_gives_one_line_error(tmp_path, mutate, args, message, capsys):
    """The command's ``main`` in this process (the console script calls it and exits with its
    status): an exception it let through would fail here with its traceback, and a warning
    would be a second line on the script's stderr, so none may be raised."""
    path = tmp_path / "bad.csv"
    mutate(_frame()).to_csv(path, index=False)
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        rc = main(["fit", str(path), "--task-col", "school", "--target", "score", "--out",
                   str(tmp_path / "m.npz"), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert not raised, [str(w.message) for w in raised]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("regmtl: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in err


def test_missing_file_and_unknown_dataset(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope.csv"), "--task-col", "t", "--target",
                 "y"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["compare", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert "unknown data set 'no-such-set'" in err and "school" in err
    assert main(["compare", str(tmp_path / "x.csv")]) == 2  # no --task-col
    assert "--task-col and --target" in capsys.readouterr().err


def test_predict_with_unknown_task_is_an_error(small_csv, tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert main(["fit", str(small_csv), "--task-col", "school", "--target", "score",
                 "--alpha", "0.01", "--out", str(model)]) == 0
    other = tmp_path / "other.csv"
    _frame().assign(school="S9").to_csv(other, index=False)
    capsys.readouterr()
    assert main(["predict", str(model), str(other), "--task-col", "school"]) == 2
    assert "unknown task 'S9'" in capsys.readouterr().err


def test_datasets_lists_every_set(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^school\s+139\s+15362\s+28\s+regression.*shipped", out, re.M)
    for name in ("landmine", "parkinsons", "sarcos", "usps", "mnist", "spam",
                 "newsgroups/comp.vs.sci", "mulan/enb"):
        assert re.search(rf"^{re.escape(name)}\s", out, re.M), name


def test_no_command_is_an_error():
    with pytest.raises(SystemExit):
        main([])


def test_relatedness_on_school(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["relatedness", "school", "--no-report", "--permutations", "100",
                 "--cv", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("school: 139 tasks, 15362 rows, 28 features (regression)")
    assert "Strong evidence of shared structure: mean |cosine|" in out
    assert re.search(r"p = 0\.0099", out) and "groups of related tasks" in out
    assert "most similar pairs:" in out and "report:" not in out
    assert not (tmp_path / "regmtl-report").exists()
    report = tmp_path / "rel.html"
    assert main(["relatedness", "school", "--permutations", "100", "--cv", "2",
                 "--similarity", "correlation", "--n-clusters", "3", "--report",
                 str(report)]) == 0
    out = capsys.readouterr().out
    assert f"report: {report.resolve()}" in out and "mean |correlation|" in out
    parser = _Tags()
    parser.feed(report.read_text())
    assert len(parser.imgs) == 1 and "p-value" in parser.cells
    assert main(["relatedness", "school", "--method", "residual", "--no-report"]) == 2
    assert "needs a shared design" in capsys.readouterr().err


def test_transfer_learning_curve_on_school(tmp_path, capsys):
    report = tmp_path / "t.html"
    assert main(["transfer", "school", "--n-new", "5,20", "--repeats", "2", "--n-jobs", "1",
                 "--report", str(report)]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln[:2] in ("5 ", "20")}
    # n_new, transfer, single-task, pooled, ratio: transfer beats single-task at both sizes
    for n in ("5", "20"):
        transfer, single = float(lines[n][1]), float(lines[n][2])
        assert transfer < 0.85 * single
    assert "transfer strategy: mean" in out
    assert report.exists() and "<img" in report.read_text()
    assert main(["transfer", "school", "--penalty", "l2", "--no-report"]) == 2
    assert "no shared structure to transfer" in capsys.readouterr().err


def test_transfer_bad_sizes_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "school", "--n-new", "1,5"])
    assert "expected sizes >= 2" in capsys.readouterr().err


def _run_on_a_terminal(args: list[str], timeout: float = 300) -> tuple[int, str, str]:
    """Run the console script with stderr on a pseudo-terminal (120 columns): (exit status,
    stdout, what reached the terminal)."""
    import fcntl
    import os
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([*_command(), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_compare_shows_progress_with_eta_on_a_terminal_and_quiet_silences(small_csv):
    args = ["compare", str(small_csv), "--task-col", "school", "--target", "score",
            "--splits", "2", "--models", "ridge,l21", "--n-alphas", "4", "--n-jobs", "1",
            "--no-report"]
    rc, out, term = _run_on_a_terminal(args)
    assert rc == 0, term
    # a tqdm bar over the 4 (split, model) fits, with elapsed<remaining time
    assert re.search(r"\|\s*[0-4]/4 \[\d\d:\d\d<(\d\d:\d\d|\?)", term), term
    assert out.startswith("small.csv: 4 tasks, 195 rows, 6 features (regression)")
    assert "EV: explained variance" in out
    rc, quiet, term = _run_on_a_terminal([*args, "--quiet"])
    assert rc == 0 and "/4 [" not in term, term
    lines = quiet.strip().splitlines()
    # the table, then the time line; nothing else
    assert lines[0].split() == ["model", "EV", "sd", "EV", "task", "avg", "nMSE", "RMSE",
                                "tasks", ">", "ridge", "fit", "s", "alpha"]
    assert set(lines[1]) == {"-", " "}
    assert [ln.split("  ")[0] for ln in lines[2:4]] == ["ridge (independent)", "MTL L2,1"]
    assert len(lines) == 5 and lines[4].startswith("time: ")
    assert re.fullmatch(r"time: (ridge|l21) [0-9.]+ s, (ridge|l21) [0-9.]+ s \(fitting, "
                        r"summed over 2 split\(s\); total [0-9.]+ s\)", lines[4]), lines[4]
    # the table is the same, bar the fit seconds
    assert [ln.split()[:6] for ln in lines[2:4]] == [
        ln.split()[:6] for ln in out.splitlines() if ln.startswith(("ridge (", "MTL L2,1"))]


def test_predict_keeps_the_input_columns_in_row_order(tmp_path):
    """predict --out writes every input column as the file holds it (ids with leading zeros,
    empty cells, text), in the input's row order, then the predictions (the console script's
    predict, of a model fitted in this process by the same ``main``)."""
    frame = _frame().sample(frac=1.0, random_state=1).reset_index(drop=True)  # tasks mixed
    frame.insert(0, "row_id", [f"{k:05d}" for k in range(len(frame))])
    frame["note"] = np.where(np.arange(len(frame)) % 3 == 0, "", "checked, ok")
    data, model, preds = tmp_path / "in.csv", tmp_path / "m.npz", tmp_path / "p.csv"
    frame.to_csv(data, index=False)
    cols = ["--task-col", "school", "--target", "score"]
    assert main(["fit", str(data), *cols, "--features", ",".join(FEATURES), "--alpha", "0.05",
                 "--out", str(model)]) == 0
    proc = subprocess.run([*_command(), "predict", str(model), str(data), *cols, "--out",
                           str(preds)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"({len(frame)} rows, the input's 10 columns and prediction)" in proc.stdout
    got = pd.read_csv(preds, dtype=str, keep_default_na=False)
    raw = pd.read_csv(data, dtype=str, keep_default_na=False)
    assert got.columns.tolist() == [*raw.columns, "prediction"]
    pd.testing.assert_frame_equal(got[raw.columns], raw)  # cell for cell, as in the file
    assert got["row_id"].iloc[:3].tolist() == ["00000", "00001", "00002"]
    expect = rm.load(model).predict(frame[FEATURES], task=frame["school"].to_numpy())
    np.testing.assert_allclose(got["prediction"].astype(float), expect, rtol=1e-12)
    # row k's prediction is row k's: refit-free check against each task's own rows
    m = rm.load(model)
    for task, rows in frame.groupby("school").groups.items():
        k = list(m.tasks_).index(task)
        mine = frame.loc[rows, FEATURES].to_numpy() @ m.coef_[k] + m.intercept_[k]
        np.testing.assert_allclose(got.loc[rows, "prediction"].astype(float), mine,
                                   rtol=1e-10)


def test_predict_refuses_to_overwrite_a_prediction_column(small_csv, tmp_path):
    model = tmp_path / "m.npz"
    assert main(["fit", str(small_csv), "--task-col", "school", "--target", "score",
                 "--alpha", "0.01", "--out", str(model)]) == 0
    other = tmp_path / "again.csv"
    _frame().assign(prediction=1.0).to_csv(other, index=False)
    proc = subprocess.run([*_command(), "predict", str(model), str(other), "--task-col",
                           "school", "--out", str(tmp_path / "p.csv")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and not (tmp_path / "p.csv").exists()
    assert proc.stderr.strip() == (f"regmtl: error: {other} already has a column "
                                   "'prediction', the name of the predictions; rename it (the "
                                   "output keeps every input column).")
