"""Inputs of the deep half that trained silently or crashed without naming what was wrong:
labels of a loader's batches (ESMM's click -> purchase chain, the tasks' kinds), numbers
given as text read as hundreds of classes, integer ids fit as numbers, and DataFrame columns
of dates, durations, complex numbers or missing values."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from regmtl.datasets import make_recommender_tasks
from regmtl.deep import (
    ESMM,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    HardSharing,
    MultiTaskDataset,
    TaskSpec,
    Trainer,
    esmm_targets,
    set_seed,
)
from regmtl.deep.data import CheckedLoader
from regmtl.deep.frames import ColumnCodes, id_like_columns

RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 4)).astype(np.float32)
CLICK = (RNG.random(64) < 0.5).astype(np.float64)
BUY = (RNG.random(64) < 0.5).astype(np.float64)
FAST = dict(hidden=(8,), max_epochs=2, batch_size=32)


class Labelled(Dataset):
    """Rows ``(x, {task: y})`` of arrays (what a user's own dataset yields)."""

    def __init__(self, X, targets):
        self.X = torch.as_tensor(X)
        self.t = {k: torch.as_tensor(v) for k, v in targets.items()}

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], {k: v[i] for k, v in self.t.items()}


def _loader(targets, batch_size=16):
    return DataLoader(Labelled(X, targets), batch_size=batch_size)


# ------------------------------------------------------------------ ESMM on every loader path
BROKEN = {"ctr": CLICK, "ctcvr": BUY}  # a purchase where there was no click
GOOD = esmm_targets(CLICK, np.where(CLICK == 1, BUY, np.nan))
CHAIN = r"cannot be 1 where 'ctr' is 0; \d+ row\(s\) have it"


def _esmm():
    set_seed(0)
    return ESMM(4, hidden=(4,), tower_hidden=())


def test_esmm_train_loader_is_refused_like_arrays():
    # before: the loader trained silently; the arrays were refused
    with pytest.raises(ValueError, match=r"^train: targets: ESMM's 'ctcvr'.*" + CHAIN):
        Trainer(_esmm(), max_epochs=1).fit((X, BROKEN))
    with pytest.raises(ValueError, match=r"^train: batch 0 \(rows of the batch\): targets: "
                                         r"ESMM's 'ctcvr'.*" + CHAIN):
        Trainer(_esmm(), max_epochs=1).fit(_loader(BROKEN))


def test_esmm_val_loader_and_evaluate_are_refused():
    with pytest.raises(ValueError, match=r"^val: batch 0 .*" + CHAIN):
        Trainer(_esmm(), max_epochs=1).fit((X, GOOD), val=_loader(BROKEN))
    with pytest.raises(ValueError, match=r"^val: targets: .*" + CHAIN):
        Trainer(_esmm(), max_epochs=1).fit((X, GOOD), val=(X, BROKEN))
    trainer = Trainer(_esmm(), max_epochs=1).fit((X, GOOD))
    with pytest.raises(ValueError, match=r"^data: batch 0 .*" + CHAIN):
        trainer.evaluate(_loader(BROKEN))


def test_esmm_bad_rows_in_a_later_batch_are_named():
    ctcvr = GOOD["ctcvr"].copy()
    row = int(np.flatnonzero(CLICK == 0)[-1])  # in the last batch of 16
    ctcvr[row] = 1.0
    with pytest.raises(ValueError, match=rf"^train: batch 3 .*have it: \[{row - 48}\]"):
        Trainer(_esmm(), max_epochs=1).fit(_loader({"ctr": CLICK, "ctcvr": ctcvr}))


def test_esmm_list_of_batches_and_per_task_loaders():
    batches = [(torch.as_tensor(X[i:i + 16]), {k: torch.as_tensor(v[i:i + 16])
                                               for k, v in BROKEN.items()})
               for i in range(0, 64, 16)]
    with pytest.raises(ValueError, match=r"^train: batch 0 .*" + CHAIN):
        Trainer(_esmm(), max_epochs=1).fit(batches)
    # one loader per task: no pair to compare, trains
    Trainer(_esmm(), max_epochs=1).fit({"ctr": _loader({"ctr": CLICK}),
                                        "ctcvr": _loader({"ctcvr": GOOD["ctcvr"]})})


def test_esmm_good_loader_trains_as_the_arrays():
    a = Trainer(_esmm(), max_epochs=2, batch_size=16, seed=0)
    a.fit(_loader(GOOD))
    b = Trainer(_esmm(), max_epochs=2, batch_size=16, seed=0)
    b.fit(CheckedLoader(_loader(GOOD), b.tasks))
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-6)


# ------------------------------------------------------------------ kinds on a loader's batches
@pytest.mark.parametrize("spec, y, match", [
    (TaskSpec("a", kind="binary"), 2 * CLICK, r"binary labels must be 0 or 1.*\[2\.0\]"),
    (TaskSpec("a", kind="multiclass", n_outputs=3), 5 * CLICK,
     r"class labels must be integers in 0\.\.2"),
    (TaskSpec("a", kind="count"), -CLICK, r"count task.*>= 0"),
    (TaskSpec("a"), np.where(CLICK == 1, np.inf, 0.0), "contains infinity"),
    (TaskSpec("a", kind="binary", missing_labels="refuse"), np.where(CLICK == 1, np.nan, 0.0),
     r"labels are missing \(NaN\)")])
def test_loader_labels_are_checked_as_the_arrays(spec, y, match):
    # before: a binary label 2 or a class 5 crashed with a size mismatch, a count -1 trained
    first = int(np.flatnonzero(CLICK == 1)[0])
    net = HardSharing(4, [spec], hidden=(4,))
    with pytest.raises(ValueError, match=r"^train: targets\['a'\]"):
        Trainer(net, max_epochs=1).fit((X, {"a": y}))
    with pytest.raises(ValueError, match=rf"^train: batch 0 \(first at row {first} of the "
                                         rf"batch\): targets\['a'\].*{match}"):
        Trainer(net, max_epochs=1).fit(_loader({"a": y}, batch_size=64))


def test_per_row_loader_labels_are_checked():
    net = HardSharing(4, [TaskSpec("a", kind="binary"), TaskSpec("b")], hidden=(4,))
    task = torch.tensor([0, 1] * 32)
    y = torch.where(task == 0, torch.tensor(3.0), torch.tensor(0.5)).double()
    batches = [(torch.as_tensor(X[i:i + 32]), (task[i:i + 32], y[i:i + 32]))
               for i in (0, 32)]
    with pytest.raises(ValueError, match=r"^train: batch 0: targets: row 0 of task 'a' "
                                         r"\(binary\) has label 3\.0"):
        Trainer(net, max_epochs=1).fit(batches)


# ------------------------------------------------------------------ numbers given as text
def _stacked(n=600):
    rng = np.random.default_rng(1)
    Xs = rng.standard_normal((n, 3))
    rating = 3 + Xs[:, 0]
    label = np.where(Xs[:, 1] > 0, "yes", "no")
    return Xs, np.column_stack([rating, label]), rating


def test_auto_kind_refuses_numbers_given_as_text():
    Xs, Y, _ = _stacked()
    assert Y.dtype.kind == "U"
    # before: a 600-class classifier with scikit-learn's generic warning only
    with pytest.raises(ValueError, match=r"task 0: kinds='auto' would read it as a "
                                         r"classification with 600 classes for 600 rows.*"
                                         r"numbers given as text.*kinds=\{0: 'regression'\}"):
        DeepMultiTaskModel(**FAST).fit(Xs, Y)


def test_declared_kinds_of_numbers_given_as_text():
    Xs, Y, rating = _stacked()
    m = DeepMultiTaskModel(kinds={0: "regression"}, **FAST).fit(Xs, Y)
    assert m.kinds_.tolist() == ["regression", "binary"]
    ref = DeepMultiTaskModel(kinds={0: "regression"}, **FAST).fit(
        Xs, pd.DataFrame({"r": rating, "l": Y[:, 1]}).to_numpy(dtype=object))
    np.testing.assert_allclose(m.predict(Xs[:5])[:, 0].astype(float),
                               ref.predict(Xs[:5])[:, 0].astype(float), rtol=1e-5)
    with warnings.catch_warnings():  # declared a classification: no warning
        warnings.simplefilter("error")
        DeepMultiTaskModel(kinds={0: "classification"}, **FAST).fit(Xs, Y)


def test_classifier_warns_on_as_many_classes_as_rows():
    Xs, Y, _ = _stacked()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        DeepMultiTaskClassifier(**FAST).fit(Xs, Y[:, 0])
    msgs = [str(w.message) for w in rec]
    ours = [m for m in msgs if "600 classes for 600 rows" in m]
    assert len(ours) == 1 and "numbers given as text" in ours[0]
    assert "DeepMultiTaskRegressor" in ours[0]
    assert not any("greater than 50%" in m for m in msgs)  # scikit-learn's, replaced
    assert rec[0].filename == __file__
    ids = np.array([f"user{i}" for i in range(600)])  # not numbers: no note on text
    with pytest.warns(UserWarning, match=r"600 classes for 600 rows.*If the labels are "
                                         r"quantities"):
        DeepMultiTaskClassifier(**FAST).fit(Xs, ids)


# ------------------------------------------------------------------ integer ids
def _ids(n=3000):
    d = make_recommender_tasks(n, 300, 200, 4, random_state=0)
    return pd.DataFrame({"user": d.user, "item": d.item}), d.Y[:, 0]


def test_id_like_columns():
    frame = pd.DataFrame({"user_id": np.arange(40) % 25, "age": 18 + np.arange(40),
                          "weight": np.arange(40) * 1000, "n": np.arange(40) % 3,
                                                "code": np.arange(40)})
    found = [c for c, *_ in id_like_columns([frame])]
    assert found == ["user_id"]  # 25 dense values, named as ids; age: 40 values only
    big = pd.DataFrame({"item": np.arange(500) % 150, "cents": np.arange(500) * 7})
    assert [c for c, *_ in id_like_columns([big])] == ["item"]
    assert id_like_columns([big], skip=["item"]) == []


def test_integer_ids_warned_and_declared():
    Xf, click = _ids()
    kw = dict(hidden=(16,), max_epochs=2, batch_size=128)
    # before: no warning; the ids were read as numbers
    with pytest.warns(UserWarning, match=r"integer column\(s\) \['user', 'item'\] look like "
                                         r"ids.*categorical_features=\['user', 'item'\]"):
        DeepMultiTaskClassifier(**kw).fit(Xf, click)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = DeepMultiTaskClassifier(categorical_features=["user", "item"], **kw).fit(Xf, click)
        DeepMultiTaskClassifier(categorical_features=[], **kw).fit(Xf, click)
    assert list(m.categories_) == ["user", "item"]
    assert m.categories_["user"] == list(range(300))
    s = DeepMultiTaskClassifier(**kw).fit(Xf.astype("category"), click)
    np.testing.assert_allclose(m.predict_proba(Xf[:50]), s.predict_proba(
        Xf[:50].astype(pd.CategoricalDtype(range(300))).assign(
            item=Xf["item"][:50].astype(pd.CategoricalDtype(range(200))))), rtol=1e-5)


def test_declared_ids_saved_and_read_with_missing_values(tmp_path):
    Xf, click = _ids(800)
    kw = dict(hidden=(8,), max_epochs=1, batch_size=128)
    m = DeepMultiTaskClassifier(categorical_features=["user"], **kw).fit(Xf, click)
    path = tmp_path / "m.regmtl"
    m.save(path)
    import regmtl

    back = regmtl.load(path)
    np.testing.assert_allclose(back.predict_proba(Xf[:20]), m.predict_proba(Xf[:20]))
    # a NaN makes the column float: 3.0 is still id 3, the NaN the unseen bucket
    floats = Xf[:20].astype({"user": float})
    floats.loc[0, "user"] = np.nan
    p = m.predict_proba(floats)
    np.testing.assert_allclose(p[1:], m.predict_proba(Xf[1:20]), rtol=1e-6)


def test_categorical_features_checked():
    Xf, click = _ids(200)
    with pytest.raises(ValueError, match=r"categorical_features: X has no feature column "
                                         r"'users'"):
        DeepMultiTaskClassifier(categorical_features=["users"], **FAST).fit(Xf, click)
    with pytest.raises(ValueError, match="categorical_features=.*names DataFrame columns, "
                                         "but X is not a DataFrame"):
        DeepMultiTaskClassifier(categorical_features=["user"], **FAST).fit(Xf.to_numpy(),
                                                                           click)
    with pytest.raises(ValueError, match="categorical_features names DataFrame columns by"):
        DeepMultiTaskClassifier(categorical_features=[0], **FAST).fit(Xf, click)


def test_column_codes_keep_integer_ids_apart_from_floats():
    a = pd.DataFrame({"u": [3, 1, 2]})
    b = pd.DataFrame({"u": [1.0, np.nan, 2.0]})
    codes = ColumnCodes.learn([a, b], declared=["u"])
    assert codes.categories == {"u": [1, 2, 3, None]}
    assert codes.encode(b)["u"].tolist() == [0.0, 3.0, 1.0]


# ------------------------------------------------------------------ columns the net cannot read
N = 60
COLUMNS = {
    "datetime64": (pd.date_range("2020", periods=N, freq="D"), r"holds dates.*total_seconds"),
    "tz": (pd.date_range("2020", periods=N, freq="D", tz="UTC"), "holds dates"),
    "timedelta64": (pd.to_timedelta(np.arange(N), unit="h"),
                    r"holds durations.*\.dt\.total_seconds\(\)"),
    "complex": (np.arange(N) + 1j, r"is complex.*real and imaginary parts"),
    "Int64 NA": (pd.array([1, None] * (N // 2), dtype="Int64"),
                 r"has 30 missing value\(s\).*astype\('category'\)"),
    "boolean NA": (pd.array([True, None] * (N // 2), dtype="boolean"), "30 missing value"),
    "float NaN": (np.where(np.arange(N) % 2, np.nan, 1.0), "30 missing value"),
    "inf": (np.where(np.arange(N) % 2, np.inf, 1.0), "holds infinity"),
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_unreadable_columns_are_named(name):
    col, match = COLUMNS[name]
    Xf = pd.DataFrame({"a": np.arange(N, dtype=float), "when": col})
    y = np.arange(N, dtype=float)
    # before: numpy's DTypePromotionError, a TypeError on Timestamp, or "Input X contains NaN"
    with pytest.raises(ValueError, match=rf"^X: column 'when' .*{match}"):
        DeepMultiTaskRegressor(**FAST).fit(Xf, y)
    with pytest.raises(ValueError, match=rf"^X\[1\]: column 'when' .*{match}"):
        DeepMultiTaskRegressor(**FAST).fit([Xf.assign(when=1.0), Xf], [y, y])
    m = DeepMultiTaskRegressor(**FAST).fit(Xf.assign(when=1.0), y)
    with pytest.raises(ValueError, match=rf"^X: column 'when' .*{match}"):
        m.predict(Xf)
    with pytest.raises(ValueError, match=rf"train: X: column 'when' .*{match}"):
        Trainer(HardSharing(2, ["y"], hidden=(4,)), max_epochs=1).fit((Xf, {"y": y}))


def test_readable_pandas_dtypes():
    cols = {"Int64": pd.array(np.arange(N), dtype="Int64"),
            "boolean": pd.array([True, False] * (N // 2), dtype="boolean"),
            "int64[pyarrow]": pd.array(np.arange(N), dtype="int64[pyarrow]")}
    y = np.arange(N, dtype=float)
    for dtype, col in cols.items():
        Xf = pd.DataFrame({"a": np.arange(N, dtype=float), "b": col})
        ref = Xf.astype({"b": float})
        a = DeepMultiTaskRegressor(**FAST).fit(Xf, y).predict(Xf)
        np.testing.assert_allclose(a, DeepMultiTaskRegressor(**FAST).fit(ref, y).predict(ref),
                                   rtol=1e-6, err_msg=dtype)
        ds = MultiTaskDataset(Xf, {"y": y}, ["y"])  # before: refused as objects
        assert ds.X.dtype == torch.float32
        assert torch.equal(ds.X[:, 1], torch.tensor(ref["b"].to_numpy(), dtype=torch.float32))


def test_trainer_names_string_columns():
    Xf = pd.DataFrame({"a": np.arange(N, dtype=float), "city": ["oslo"] * N})
    with pytest.raises(ValueError, match=r"train: X: column\(s\) \['city'\] hold strings"):
        Trainer(HardSharing(2, ["y"], hidden=(4,)), max_epochs=1).fit(
            (Xf, {"y": np.zeros(N)}))


def test_per_row_loader_bad_task_index_names_the_batch():
    net = HardSharing(4, [TaskSpec("a"), TaskSpec("b")], hidden=(4,))
    x = torch.as_tensor(X[:3])
    good = (x, (torch.tensor([0, 1, 0]), torch.zeros(3, dtype=torch.float64)))
    bad = (x, (torch.tensor([0, 7, 0]), torch.zeros(3, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"^train: batch 1: a batch's task index must be .* "
                                         r"in 0\.\.1; got torch.int64 \(3,\) in 0\.\.7"):
        Trainer(net, max_epochs=1).fit([good, bad])
