from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from conftest import DATA_HOME, needs_data

from regmtl.datasets import (
    MULAN_SETS,
    DataFileError,
    get_data_home,
    list_datasets,
    load_computer_survey,
    load_landmine,
    load_mnist,
    load_mulan,
    load_newsgroups,
    load_parkinsons,
    load_sarcos,
    load_spam,
    load_usps,
    read_table,
)

DATA = DATA_HOME
needs_data = needs_data()

COMMON = {"X", "y", "task_names", "feature_names", "kind", "DESCR", "source"}


def check_bunch(b, *, tasks, rows, features, kind, sparse=False):
    """The fields every loader returns, and the counts of the file."""
    assert COMMON <= set(b)
    assert len(b.X) == len(b.y) == len(b.task_names) == tasks
    assert len(b.feature_names) == len(set(b.feature_names)) == features
    assert b.kind == kind and b.DESCR and b.source
    for X, y in zip(b.X, b.y, strict=True):
        assert sp.isspmatrix_csr(X) if sparse else isinstance(X, np.ndarray)
        assert X.dtype == np.float64 and y.dtype == np.float64 and y.ndim == 1
        assert X.shape == (y.shape[0], features)
        if kind == "binary":
            assert set(np.unique(y)) == {0.0, 1.0}
    assert sum(len(y) for y in b.y) == rows
    if "X_shared" in b:
        assert b.Y.shape == (b.X_shared.shape[0], tasks)
        for t, (X, y) in enumerate(zip(b.X, b.y, strict=True)):
            np.testing.assert_array_equal(X, b.X_shared)
            np.testing.assert_array_equal(y, b.Y[:, t])


def check_split(b, n_train, n_test):
    for train, test in b.splits:
        for X, tr, te in zip(b.X, train, test, strict=True):
            assert len(tr) == n_train and len(te) == n_test
            assert len(np.intersect1d(tr, te)) == 0 and max(tr.max(), te.max()) < X.shape[0]


# ---------------------------------------------------------------- loaders on the shared data


@needs_data
def test_computer_survey():
    b = load_computer_survey(DATA)
    check_bunch(b, tasks=190, rows=3800, features=14, kind="regression")
    assert b.X_shared.shape == (20, 14) and np.all(b.X_shared[:, 0] == 1)
    assert set(np.unique(b.X_shared[:, 1:])) == {-1.0, 1.0}
    assert b.Y.min() == 0 and b.Y.max() == 10 and np.all(b.Y == np.round(b.Y))
    assert np.sum(np.ptp(b.Y, axis=0) == 0) == 1  # one respondent rates everything the same
    check_split(b, 16, 4)
    np.testing.assert_array_equal(b.splits[0][1][0], np.arange(16, 20))
    assert b.task_covariates.shape == (190, 7) and np.all(b.task_covariates[:, 0] == 1)


@needs_data
def test_landmine():
    b = load_landmine(DATA)
    check_bunch(b, tasks=29, rows=14820, features=9, kind="binary")
    n = [len(y) for y in b.y]
    assert min(n) == 445 and max(n) == 690
    y = np.concatenate(b.y)
    assert y.sum() == 904 and y.mean() == pytest.approx(0.061, abs=0.0005)
    rates = [v.mean() for v in b.y]
    assert 0.028 < min(rates) and max(rates) < 0.095


@needs_data
@pytest.mark.parametrize("target, lo, hi", [("motor_UPDRS", 5.037, 39.511),
                                            ("total_UPDRS", 7.0, 54.992)])
def test_parkinsons(target, lo, hi):
    b = load_parkinsons(DATA, target=target)
    check_bunch(b, tasks=42, rows=5875, features=19, kind="regression")
    assert b.target == target and not any("UPDRS" in f for f in b.feature_names)
    assert b.feature_names[:3] == ["age", "sex", "test_time"]
    n = [len(y) for y in b.y]
    assert min(n) == 101 and max(n) == 168
    y = np.concatenate(b.y)
    assert y.min() == pytest.approx(lo, abs=1e-3) and y.max() == pytest.approx(hi, abs=1e-3)
    assert all(np.ptp(X[:, :2], axis=0).max() == 0 for X in b.X)  # age, sex fixed per patient
    with pytest.raises(ValueError, match="target"):
        load_parkinsons(DATA, target="UPDRS")


@needs_data
def test_sarcos():
    b = load_sarcos(DATA)
    check_bunch(b, tasks=7, rows=7 * 4449, features=21, kind="regression")
    assert b.X_shared.shape == (4449, 21) and b.task_names[0] == "torque_1"
    np.testing.assert_allclose(b.Y.std(axis=0), [20.35, 14.90, 9.95, 13.76, 0.973, 1.714, 2.594],
                               rtol=2e-3)


@needs_data
@pytest.mark.parametrize("loader, p", [(load_usps, 64), (load_mnist, 87)])
def test_digits(loader, p):
    b = loader(DATA)
    check_bunch(b, tasks=10, rows=20000, features=p, kind="binary")
    assert b.X_shared.shape == (2000, p)
    np.testing.assert_array_equal(b.Y.sum(axis=1), 1)
    np.testing.assert_array_equal(np.argmax(b.Y, axis=1), b.digit)
    assert 0.07 < b.Y.mean(axis=0).min() and b.Y.mean(axis=0).max() < 0.13
    check_split(b, 1000, 500)
    assert b.splits[0][0][0][-1] == 999 and b.splits[0][1][0][0] == 1500
    np.testing.assert_array_equal(b.validation[0][3], np.arange(1000, 1500))


@needs_data
def test_spam():
    b = load_spam(DATA)
    check_bunch(b, tasks=15, rows=6000, features=152543, kind="binary", sparse=True)
    assert all(len(y) == 400 and y.sum() == 200 for y in b.y)


@needs_data
@pytest.mark.parametrize("pair, sizes, positives", [("comp.vs.sci", (1875, 1827), (908, 956)),
                                                    ("rec.vs.talk", (1844, 1545), (869, 685))])
def test_newsgroups(pair, sizes, positives):
    b = load_newsgroups(pair, DATA)
    check_bunch(b, tasks=2, rows=sum(sizes), features=2000, kind="binary", sparse=True)
    assert tuple(len(y) for y in b.y) == sizes
    assert tuple(int(y.sum()) for y in b.y) == positives
    with pytest.raises(ValueError, match="pair"):
        load_newsgroups("alt.vs.misc", DATA)


MULAN = {  # name: rows, features as loaded, targets, missing feature values
    "andro": (49, 30, 6, 0), "atp1d": (337, 411, 6, 0), "atp7d": (296, 411, 6, 0),
    "edm": (154, 16, 2, 0), "enb": (768, 8, 2, 0), "jura": (359, 15, 3, 0),
    "oes10": (403, 298, 16, 0), "oes97": (334, 263, 16, 0), "osales": (639, 401, 12, 10012),
    "scpf": (1137, 23, 3, 9255), "sf1": (323, 33, 3, 0), "sf2": (1066, 33, 3, 0),
    "slump": (103, 7, 3, 0), "wq": (1060, 16, 14, 0),
}


def test_mulan_table_covers_all_sets():
    assert set(MULAN) == set(MULAN_SETS)


@needs_data
@pytest.mark.parametrize("name", sorted(MULAN))
def test_mulan(name):
    n, p, q, n_missing = MULAN[name]
    b = load_mulan(name, DATA)
    assert b.X_shared.shape == (n, p) and b.Y.shape == (n, q)
    assert int(np.isnan(b.X_shared).sum()) == b.n_missing == n_missing
    assert not np.isnan(b.Y).any()
    if n_missing:
        assert f"{n_missing} feature values are missing" in b.DESCR
        b.X_shared[np.isnan(b.X_shared)] = 0.0  # for the equality checks below
        b.X = [b.X_shared] * q
    check_bunch(b, tasks=q, rows=n * q, features=p, kind="regression")


@needs_data
def test_mulan_missing_and_nominal():
    drop = load_mulan("scpf", DATA, missing="drop")
    assert drop.X_shared.shape == (143, 23) and not np.isnan(drop.X_shared).any()
    text = " ".join(drop.DESCR.split())
    assert "994 of the 1137 rows" in text and "143 rows remain" in text
    mean = load_mulan("scpf", DATA, missing="mean")
    keep = load_mulan("scpf", DATA)
    assert not np.isnan(mean.X_shared).any()
    np.testing.assert_allclose(mean.X_shared.mean(axis=0), np.nanmean(keep.X_shared, axis=0))
    with pytest.raises(ValueError, match="every one of the 639 rows"):
        load_mulan("osales", DATA, missing="drop")
    with pytest.raises(ValueError, match="missing"):
        load_mulan("enb", DATA, missing="zero")
    with pytest.raises(ValueError, match="andro"):
        load_mulan("rf1", DATA)
    sf1 = load_mulan("sf1", DATA)
    groups = {}
    for j, f in enumerate(sf1.feature_names):
        groups.setdefault(f.split("=")[0], []).append(j)
    assert len(groups) == 10
    for cols in groups.values():  # each nominal attribute is one-hot
        np.testing.assert_array_equal(sf1.X_shared[:, cols].sum(axis=1), 1)


@needs_data
def test_list_datasets_matches_loaders():
    from regmtl.datasets import load_school, load_solar_flare

    loaders = {
        "school": load_school, "solar_flare": load_solar_flare,
        "computer_survey": lambda: load_computer_survey(DATA),
        "landmine": lambda: load_landmine(DATA), "parkinsons": lambda: load_parkinsons(DATA),
        "sarcos": lambda: load_sarcos(DATA), "usps": lambda: load_usps(DATA),
        "mnist": lambda: load_mnist(DATA), "spam": lambda: load_spam(DATA),
        "newsgroups/comp.vs.sci": lambda: load_newsgroups("comp.vs.sci", DATA),
        "newsgroups/rec.vs.talk": lambda: load_newsgroups("rec.vs.talk", DATA),
    }
    table = list_datasets(DATA)
    assert table["available"].all() and table["name"].is_unique
    assert table["shipped"].tolist() == [True, True] + [False] * (len(table) - 2)
    for row in table.itertuples():
        if row.name.startswith("mulan/"):
            n, p, q, _ = MULAN[row.name.split("/")[1]]
            assert (row.samples, row.features, row.tasks, row.design) == (n, p, q, "shared")
            continue
        b = loaders[row.name]()
        shared = "X_shared" in b
        assert row.design == ("shared" if shared else row.design)
        assert (row.tasks, row.features, row.kind) == (len(b.X), len(b.feature_names), b.kind)
        assert row.samples == (b.X_shared.shape[0] if shared else sum(len(y) for y in b.y))


# ---------------------------------------------------------------- data home and errors


def test_list_datasets_without_data(tmp_path):
    table = list_datasets(tmp_path)
    assert list(table.columns) == ["name", "loader", "tasks", "samples", "features", "kind",
                                   "design", "shipped", "available", "path", "source"]
    assert table.loc[table["available"], "name"].tolist() == ["school", "solar_flare"]
    assert len(table) == 11 + len(MULAN_SETS)


def test_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.delenv("REGMTL_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        load_landmine(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "landmine" / "LandmineData.mat") in msg
    assert "data_home" in msg and "REGMTL_DATA" in msg


def _fake_survey(home: Path) -> None:
    """A tiny file laid out like conjointAnalysisComputerBuyers.mat (3 respondents)."""
    rng = np.random.default_rng(0)
    design = np.column_stack([np.ones(20), rng.choice([-1, 1], size=(20, 13))]).astype(np.int16)
    (home / "computer_survey").mkdir(parents=True)
    scipy.io.savemat(home / "computer_survey" / "conjointAnalysisComputerBuyers.mat",
                     {"designMarix": design,
                      "likeBuy": rng.integers(0, 11, size=(3, 20)).astype(np.uint8),
                      "computerDataZ": np.ones((3, 7), np.uint8)})


def test_data_home_resolution(tmp_path, monkeypatch):
    env_home, cwd = tmp_path / "env", tmp_path / "cwd"
    _fake_survey(env_home)
    _fake_survey(cwd / "data")
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("REGMTL_DATA", raising=False)
    assert get_data_home() == cwd / "data"
    assert len(load_computer_survey().X) == 3  # ./data
    monkeypatch.setenv("REGMTL_DATA", str(env_home))
    assert get_data_home() == env_home
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    b = load_computer_survey()
    assert len(b.X) == 3 and b.Y.shape == (20, 3)
    with pytest.raises(FileNotFoundError, match="REGMTL_DATA"):
        load_landmine()  # the environment variable wins over ./data


# ---------------------------------------------------------------- read_table


def _long_frame(n_tasks=3, binary=False):
    rng = np.random.default_rng(1)
    rows = []
    for t in range(n_tasks):
        for _ in range(5 + t):
            x = rng.standard_normal(3)
            label = ("spam" if x[0] > 0 else "ham") if binary else float(x @ [1, -2, 0.5])
            rows.append({"shop": f"s{n_tasks - t}", "a": x[0], "b": x[1], "c": int(x[2] > 0),
                         "sales": label})
    frame = pd.DataFrame(rows)
    if binary:  # both classes in every task
        for t in frame["shop"].unique():
            idx = frame.index[frame["shop"] == t]
            frame.loc[idx[0], "sales"], frame.loc[idx[1], "sales"] = "spam", "ham"
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".pq"])
def test_read_table_round_trip(tmp_path, suffix):
    frame = _long_frame()
    path = tmp_path / f"sales{suffix}"
    if "csv" in suffix:
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    b = read_table(path, task_col="shop", target="sales")
    assert COMMON <= set(b) and b.kind == "regression"
    assert b.task_names == ["s1", "s2", "s3"] and b.feature_names == ["a", "b", "c"]
    for name, X, y in zip(b.task_names, b.X, b.y, strict=True):
        part = frame[frame["shop"] == name]
        np.testing.assert_allclose(X, part[["a", "b", "c"]].to_numpy(float))
        np.testing.assert_allclose(y, part["sales"].to_numpy(float))
        assert X.dtype == y.dtype == np.float64
    only = read_table(path, task_col="shop", target="sales", features=["b"])
    assert only.feature_names == ["b"] and only.X[0].shape[1] == 1


def test_read_table_binary(tmp_path):
    path = tmp_path / "mail.csv"
    _long_frame(binary=True).to_csv(path, index=False)
    b = read_table(path, task_col="shop", target="sales")
    assert b.kind == "binary" and b.target_classes == ["ham", "spam"]
    assert all(set(np.unique(y)) == {0.0, 1.0} for y in b.y)
    c = read_table(path, task_col="shop", target="c", features=["a", "b"], kind="binary")
    assert c.kind == "binary" and c.target_classes == [0, 1]


def _write(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _error(path, **kwargs):
    kwargs = {"task_col": "shop", "target": "sales", **kwargs}
    with pytest.raises(DataFileError) as err:
        read_table(path, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, ValueError)
    return msg


def test_read_table_file_errors(tmp_path, monkeypatch):
    msg = _error(tmp_path / "nope.csv")
    assert msg.startswith("path:") and "not found" in msg and "nope.csv" in msg
    msg = _error(tmp_path / "t.xlsx")
    assert msg.startswith("path:") and ".xlsx" in msg and ".parquet" in msg
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in _error(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("shop,a,sales\n")
    assert "no data rows" in _error(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file")
    msg = _error(tmp_path / "bad.parquet")
    assert msg.startswith("path:") and "Parquet" in msg
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    msg = _error(tmp_path / "bad.parquet")
    assert "pip install 'regmtl[parquet]'" in msg


def test_read_table_column_errors(tmp_path):
    frame = _long_frame()
    path = _write(tmp_path, frame)
    msg = _error(path, task_col="store")
    assert msg.startswith("task_col:") and "'store'" in msg and "shop, a, b, c, sales" in msg
    msg = _error(path, target="revenue")
    assert msg.startswith("target:") and "'revenue'" in msg and "shop, a, b, c, sales" in msg
    msg = _error(path, features=["a", "zz"])
    assert msg.startswith("features:") and "'zz'" in msg
    assert _error(path, kind="multiclass").startswith("kind:")

    bad = frame.copy()
    bad["sales"] = bad["sales"].astype(object)
    bad.loc[4, "sales"] = "twelve"
    msg = _error(_write(tmp_path, bad), kind="regression")
    assert msg.startswith("target:") and "row 4" in msg and "'twelve'" in msg
    bad.loc[4, "sales"] = None
    msg = _error(_write(tmp_path, bad))
    assert msg.startswith("target:") and "missing" in msg and "row 4" in msg

    bad = frame.assign(city="x", day="mon")
    msg = _error(_write(tmp_path, bad))
    assert msg.startswith("features:") and "'city'" in msg and "'day'" in msg
    assert "drop" in msg and "encode" in msg

    bad = frame.copy()
    bad.loc[[1, 2], "b"] = np.nan
    bad.loc[3, "a"] = np.inf
    msg = _error(_write(tmp_path, bad))
    assert msg.startswith("features:") and "'a' (1)" in msg and "'b' (2)" in msg


def test_read_table_task_errors(tmp_path):
    frame = _long_frame()
    lonely = pd.concat([frame, frame.iloc[[0]].assign(shop="s9")], ignore_index=True)
    msg = _error(_write(tmp_path, lonely))
    assert msg.startswith("task_col:") and "'s9'" in msg and "2 rows" in msg

    mail = _long_frame(binary=True)
    mail.loc[mail["shop"] == "s2", "sales"] = "ham"
    msg = _error(_write(tmp_path, mail), kind="binary")
    assert msg.startswith("target:") and "'s2'" in msg and "'ham'" in msg
