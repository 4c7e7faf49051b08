"""Tampered model files of every saved kind: a clear refusal naming the file and the field.

Each file here is rewritten with its digests recomputed, so that only the checks of what the
values mean can refuse it: a parameter a user could not pass (``CappedL1(cap=-1)``, a negative
alpha), a fitted attribute that is not finite, a position of a task that does not exist
(``outlier_tasks_``), parts of a dirty model that do not add up to ``coef_``; a truncated file or
an extra member; and a small file that declares arrays far larger than it could hold.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from conftest import model_digest, model_parts, peak_bytes, refused, write_model

import regmtl as rm
from regmtl import persistence
from regmtl.penalties import REGISTRY, make_penalty
from regmtl.scaling import fit_standardized

MB = 2**20


# ------------------------------------------------------------------ rewriting a file
_digest, _parts, _write = model_digest, model_parts, write_model


def _data(T=3, n=25, p=5, seed=0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    ys = [X @ rng.standard_normal(p) + 0.3 * rng.standard_normal(n) for X in Xs]
    ys[-1] = ys[-1] + 4 * Xs[-1][:, 0]  # an outlier task
    return Xs, ys


A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0.0]])
PENALTIES = [make_penalty(n) for n in sorted(REGISTRY) if n not in ("graph", "multi_source")]
PENALTIES += [rm.GraphLaplacian(A), rm.MultiSource(blocks=[2, 3])]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One fitted file per penalty (by repr): its path."""
    Xs, ys = _data()
    out = {}
    folder = tmp_path_factory.mktemp("saved")
    for i, pen in enumerate(PENALTIES):
        model = rm.MultiTaskRegressor(pen, alpha=0.05, max_iter=300).fit(Xs, ys)
        out[repr(pen)] = folder / f"m{i}.npz"
        model.save(out[repr(pen)])
    return out


# ------------------------------------------------------------------ the three cases
def _robust(tmp_path):
    Xs, ys = _data()
    model = rm.MultiTaskRegressor(rm.RobustFeatures(), alpha=0.05).fit(Xs, ys)
    assert model.outlier_tasks_.size  # the outlier task is found
    model.save(tmp_path / "robust.npz")
    return model, _parts(tmp_path / "robust.npz")


def test_outlier_tasks_naming_a_task_that_does_not_exist_is_refused(tmp_path):
    """Before: ``outlier_tasks_ = [7]`` of a 3-task model loaded."""
    _, (header, arrays) = _robust(tmp_path)
    key = header["attributes"]["outlier_tasks_"]["key"]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: np.array([7])})
    refused(lambda: rm.load(bad), str(bad), "'outlier_tasks_'", "7", "0..2")
    _write(bad, header, {**arrays, key: np.array([-1])})
    refused(lambda: rm.load(bad), str(bad), "'outlier_tasks_'", "-1")


def test_outlier_tasks_that_are_not_the_nonzero_columns_of_q_are_refused(tmp_path):
    """In range but not the tasks whose column of Q is nonzero: the saved parts say otherwise."""
    model, (header, arrays) = _robust(tmp_path)
    key = header["attributes"]["outlier_tasks_"]["key"]
    others = np.setdiff1d(np.arange(3), model.outlier_tasks_)[:1]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: others})
    refused(lambda: rm.load(bad), str(bad), "'outlier_tasks_'", "'P_' and 'Q_' make it")


@pytest.mark.parametrize("pen", [rm.Dirty(), rm.SparseLowRank(), rm.RobustLowRank(),
                                 rm.RobustFeatures()], ids=repr)
@pytest.mark.parametrize("part", ["P_", "Q_"])
def test_parts_that_do_not_add_up_to_coef_are_refused(pen, part, tmp_path):
    """Before: ``P_ + 1`` loaded, and a warm start began from parts of another W."""
    Xs, ys = _data()
    rm.MultiTaskRegressor(pen, alpha=0.05, max_iter=300).fit(Xs, ys).save(tmp_path / "m.npz")
    header, arrays = _parts(tmp_path / "m.npz")
    key = header["attributes"][part]["key"]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: arrays[key] + 1.0})
    refused(lambda: rm.load(bad), str(bad), "'P_' and 'Q_'", "do not compose coef_")
    again = rm.load(tmp_path / "m.npz")  # the file as saved loads
    np.testing.assert_allclose(again.P_ + again.Q_, again.coef_, atol=1e-12)


def test_capped_l1_with_a_negative_cap_in_the_header_is_refused(tmp_path, saved):
    """Before: ``CappedL1(cap=-1)`` loaded; a user passing it is refused at fit."""
    header, arrays = _parts(saved["CappedL1(cap=1.0)"])
    header["params"]["penalty"]["params"]["cap"]["value"] = -1
    bad = tmp_path / "bad.npz"
    _write(bad, header, arrays)
    refused(lambda: rm.load(bad), str(bad), "CappedL1(cap=-1)", "cap must be", "> 0")
    Xs, ys = _data()
    with pytest.raises(ValueError, match="cap"):
        rm.MultiTaskRegressor(rm.CappedL1(cap=-1), alpha=0.05).fit(Xs, ys)


# ------------------------------------------------------------------ every penalty parameter
BAD_VALUES = (-1, 0, 2.5, "x", None, True, float("inf"))


def _check_accepts(pen, name, value) -> bool:
    """Whether a user's ``type(pen)(..., name=value)`` passes the penalty's check at fit."""
    try:
        type(pen)(**{**pen.get_params(), name: value}).check(5, 3)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("pen", PENALTIES, ids=repr)
def test_every_penalty_parameter_is_checked_as_user_input(pen, saved, tmp_path):
    """A header's penalty parameter loads exactly when the penalty's own check accepts it from
    a user; refused, the message names the file and the penalty (before: any value loaded)."""
    header, arrays = _parts(saved[repr(pen)])
    bad = tmp_path / "bad.npz"
    for name, spec in header["params"]["penalty"]["params"].items():
        if spec["kind"] != "json":
            continue
        for value in BAD_VALUES:
            h = copy.deepcopy(header)
            h["params"]["penalty"]["params"][name]["value"] = value
            _write(bad, h, arrays)
            if _check_accepts(pen, name, value):
                assert getattr(rm.load(bad).penalty, name) == value
            else:
                refused(lambda: rm.load(bad), str(bad), "its penalty", type(pen).__name__)


ESTIMATOR_PARAMS = [("alpha", -1.0), ("alpha", "x"), ("tol", 0.0), ("max_iter", 0),
                    ("solver", "nope"), ("fit_intercept", "yes"), ("task_weight", "x"),
                    ("warm_start", 3)]


@pytest.mark.parametrize(("name", "value"), ESTIMATOR_PARAMS)
def test_estimator_parameters_are_checked_as_user_input(name, value, saved, tmp_path):
    """Before: ``alpha = -1``, ``tol = 0``, ``solver = "nope"`` ... loaded."""
    header, arrays = _parts(saved["L21(l1_ratio=1.0)"])
    header["params"][name]["value"] = value
    bad = tmp_path / "bad.npz"
    _write(bad, header, arrays)
    refused(lambda: rm.load(bad), str(bad), "parameters are invalid", f"'{name}'")


def test_an_alpha_per_task_is_checked_against_the_penalty(tmp_path):
    """One alpha per task of a penalty that couples the tasks is refused at fit; in a file too,
    and a negative entry of a separable penalty's alphas is refused (values 0..)."""
    Xs, ys = _data()
    rm.MultiTaskRegressor("l1", alpha=[0.01, 0.02, 0.03]).fit(Xs, ys).save(tmp_path / "m.npz")
    header, arrays = _parts(tmp_path / "m.npz")
    bad = tmp_path / "bad.npz"
    h = copy.deepcopy(header)
    h["params"]["alpha"]["items"][1]["value"] = -0.02
    _write(bad, h, arrays)
    refused(lambda: rm.load(bad), str(bad), "'alpha'", "-0.02")
    h = copy.deepcopy(header)
    h["params"]["penalty"] = {"kind": "json", "value": "trace"}
    _write(bad, h, arrays)
    refused(lambda: rm.load(bad), str(bad), "parameter 'alpha'", "separable")
    assert list(rm.load(tmp_path / "m.npz").alpha) == [0.01, 0.02, 0.03]  # before: refused


def test_a_structure_of_another_penalty_is_refused(saved, tmp_path):
    """An L2,1 model holding ``P_`` and ``Q_`` (another penalty's structure) is refused."""
    header, arrays = _parts(saved["L21(l1_ratio=1.0)"])
    dirty_header, dirty_arrays = _parts(saved["Dirty(own_weight=1.0)"])
    for attr in ("P_", "Q_"):
        header["attributes"][attr] = dirty_header["attributes"][attr]
        key = dirty_header["attributes"][attr]["key"]
        arrays[key] = dirty_arrays[key]
    bad = tmp_path / "bad.npz"
    _write(bad, header, arrays)
    refused(lambda: rm.load(bad), str(bad), "'P_'", "is not one that penalty L21")


# ------------------------------------------------------------------ every array of every kind
def _tampered(arr: np.ndarray) -> dict[str, np.ndarray]:
    """The edits of an array that a file must be refused for: NaN (floats), a wrong shape, a
    wrong dtype."""
    out = {"shape": np.concatenate([arr.reshape(-1), arr.reshape(-1)[:1]])
           if arr.size else np.zeros(1)}
    if arr.dtype.kind == "f" and arr.size:
        nan = arr.astype(np.float64).copy()
        nan.reshape(-1)[0] = np.nan
        out["nan"] = nan
        out["inf"] = np.where(nan != nan, np.inf, nan)
        out["dtype"] = arr.astype("<U8")
    return out


def _sweep(path, tmp_path, harmless=()):
    """Every array of the file at ``path``, tampered each way: refused naming the file and the
    field (the attribute or parameter), except ``harmless`` (key, edit) pairs, which load."""
    header, arrays = _parts(path)
    bad = tmp_path / "bad.npz"
    loaded = []
    for key, arr in arrays.items():
        field = key.split(".", 1)[1].split(".")[0]
        for how, value in _tampered(arr).items():
            _write(bad, header, {**arrays, key: value})
            if (key, how) in harmless:
                rm.load(bad)
                loaded.append((key, how))
                continue
            refused(lambda: rm.load(bad), str(bad), field)
    return loaded


@pytest.mark.parametrize("pen", PENALTIES, ids=repr)
def test_every_array_of_every_penalty_s_file_is_checked(pen, saved, tmp_path):
    """NaN, inf, a wrong shape or dtype in any array: refused naming the field (before: NaN in
    ``coef_``, ``task_sizes_``, ``P_``, ``cluster_vectors_`` and the others loaded)."""
    harmless = set()
    if isinstance(pen, rm.SharedStructure):  # k of the subspace is not the file's number
        harmless = {("attr.subspace_weights_", "shape")}
    if isinstance(pen, rm.GraphLaplacian):  # a graph's numbers as text: a dtype refused
        harmless = set()
    _sweep(saved[repr(pen)], tmp_path, harmless)


def test_negative_sizes_variances_and_singular_values_are_refused(saved, tmp_path):
    header, arrays = _parts(saved["Trace()"])
    bad = tmp_path / "bad.npz"
    for attr in ("task_sizes_", "residual_variance_", "singular_values_"):
        key = header["attributes"][attr]["key"]
        _write(bad, header, {**arrays, key: -np.abs(arrays[key]) - 1.0})
        refused(lambda: rm.load(bad), str(bad), f"'{attr}'", "must be >= 0")


def test_task_clusters_out_of_range_are_refused(saved, tmp_path):
    header, arrays = _parts(saved["Clustered(k=2, eta=1.0)"])
    key = header["attributes"]["task_clusters_"]["key"]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: arrays[key] + 10})
    refused(lambda: rm.load(bad), str(bad), "'task_clusters_'", "outside 0..2")


def _fitted_kinds(tmp_path):
    """Files of the other kinds: classifiers (binary, multinomial), a loss per task, the
    Huber and quantile losses, a standardized fit, a CV estimator's best, a transferred task."""
    Xs, ys = _data()
    rng = np.random.default_rng(1)
    labels = [(y > np.median(y)).astype(int) for y in ys]
    three = [rng.integers(0, 3, size=y.size) for y in ys]
    kinds = {
        "binary": rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, labels),
        "multinomial": rm.MultiTaskClassifier(rm.RobustFeatures(), alpha=0.01).fit(Xs, three),
        "mixed": rm.MultiTaskRegressor("l21", alpha=0.01, loss=["squared", "logistic",
                                                                "huber"]).fit(
            Xs, [ys[0], labels[1], ys[2]]),
        "quantile": rm.MultiTaskRegressor("l21", alpha=0.01, loss=rm.datafits.Quantile(0.3))
        .fit(Xs, ys),
        "standardized": fit_standardized(rm.MultiTaskRegressor(rm.Dirty(),
                                                                          alpha=0.05),
                                                    [x * 10 + 3 for x in Xs], ys),
        "cv": rm.selection.MultiTaskRegressorCV("l21", alphas=3, cv=2).fit(Xs, ys)
        .best_estimator_,
    }
    model = rm.MultiTaskRegressor("l21", alpha=0.01).fit(Xs, ys)
    kinds["transferred"] = rm.transfer(model, Xs[0], ys[0] + 0.1)
    paths = {}
    for name, m in kinds.items():
        paths[name] = tmp_path / f"{name}.npz"
        m.save(paths[name])
    return kinds, paths


def test_every_array_of_the_other_kinds_is_checked(tmp_path):
    """As for every penalty; labels, which may be of any dtype, may also be text (a label
    changed is another label: harmless to the format)."""
    kinds, paths = _fitted_kinds(tmp_path)
    harmless = {"mixed": {("attr.classes_.1", "dtype")}}
    for name, path in paths.items():
        again = rm.load(path)  # as saved: loads
        np.testing.assert_array_equal(again.coef_, kinds[name].coef_)
        assert _sweep(path, tmp_path, harmless.get(name, ())) == sorted(harmless.get(name, ()))


def test_labels_are_distinct_and_finite(tmp_path):
    """Before: ``classes_ = [0, 0]`` or ``[0, nan]`` of a binary task loaded (every prediction
    of the task one label, or NaN); and ``tasks_`` naming one task twice."""
    Xs, ys = _data()
    labels = [(y > np.median(y)).astype(float) for y in ys]
    rm.MultiTaskRegressor("l21", alpha=0.01, loss=["squared", "logistic", "squared"]).fit(
        Xs, [ys[0], labels[1], ys[2]]).save(tmp_path / "m.npz")
    header, arrays = _parts(tmp_path / "m.npz")
    bad = tmp_path / "bad.npz"
    for value, words in (([0.0, 0.0], "twice"), ([0.0, np.nan], "NaN")):
        _write(bad, header, {**arrays, "attr.classes_.1": np.array(value)})
        refused(lambda: rm.load(bad), str(bad), "'classes_[1]'", words)
    h = copy.deepcopy(header)
    h["attributes"]["tasks_"]["value"] = [0, 1, 1]
    _write(bad, h, arrays)
    refused(lambda: rm.load(bad), str(bad), "'tasks_'", "twice")


def test_a_transferred_task_s_loss_parameters_are_checked(tmp_path):
    """Before: ``loss_params_`` of a quantile level 1.5 loaded, refused only at predict."""
    Xs, ys = _data()
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=rm.datafits.Quantile(0.3)).fit(Xs,
                                                                                        ys)
    rm.transfer(model, Xs[0], ys[0]).save(tmp_path / "t.npz")
    header, arrays = _parts(tmp_path / "t.npz")
    key = header["attributes"]["loss_params_"]["key"]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: np.array([1.5])})
    refused(lambda: rm.load(bad), str(bad), "'loss_params_'")
    key = header["attributes"]["support_"]["key"]
    _write(bad, header, {**arrays, key: np.array([9], dtype=np.int64)})
    refused(lambda: rm.load(bad), str(bad), "'support_'", "outside 0..4")


def test_a_nan_single_intercept_is_refused(tmp_path):
    Xs, ys = _data()
    rm.MultiTaskRegressor("l21", alpha=0.01).fit(Xs[0], ys[0]).save(tmp_path / "one.npz")
    header, arrays = _parts(tmp_path / "one.npz")
    header["attributes"]["intercept_"]["value"] = float("nan")
    bad = tmp_path / "bad.npz"
    _write(bad, header, arrays)
    refused(lambda: rm.load(bad), str(bad), "'intercept_'", "finite")


# ------------------------------------------------------------------ the archive itself
def test_a_truncated_file_and_an_extra_member_are_refused(saved, tmp_path):
    good = saved["L21(l1_ratio=1.0)"]
    raw = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for cut in (10, len(raw) // 2, len(raw) - 5):
        bad.write_bytes(raw[:cut])
        refused(lambda: rm.load(bad), str(bad))
    header, arrays = _parts(good)
    _write(bad, header, {**arrays, "attr.extra": np.zeros(3)})
    refused(lambda: rm.load(bad), str(bad), "does not use", "attr.extra")


# ------------------------------------------------------------------ what a file may allocate
def _zeros_file(tmp_path, p: int) -> tuple:
    """A consistent file of ``p`` features, all-zero coefficients: 16 p bytes of arrays in a
    file of about 1/1000 of that."""
    Xs, ys = _data(T=2, p=3)
    rm.MultiTaskRegressor("l21", alpha=0.01).fit(Xs, ys).save(tmp_path / "m.npz")
    header, arrays = _parts(tmp_path / "m.npz")
    header["attributes"]["n_features_in_"]["value"] = p
    for name in ("feature_names_in_",):
        header["attributes"].pop(name, None)
    key = header["attributes"]["coef_"]["key"]
    out = tmp_path / "zeros.npz"
    _write(out, header, {**arrays, key: np.zeros((2, p))})
    return out, 16 * p


def test_a_small_file_cannot_allocate_far_beyond_its_size_by_default(tmp_path, monkeypatch):
    """Before: without max_bytes a file of 40 KB loaded 32 MiB of arrays (and a 1 MB file
    1.3 GB). Now the default bound is a multiple of the file's size (here with a floor lowered
    to 1 MiB, so that the test allocates little); max_bytes raises it."""
    monkeypatch.setattr(persistence, "DEFAULT_MIN_BYTES", MB)
    path, nbytes = _zeros_file(tmp_path, 2**21)
    size = path.stat().st_size
    assert nbytes > 64 * size
    refused(lambda: rm.load(path), str(path), "default bound", "raise max_bytes",
            "regmtl.load(path, max_bytes=")
    peak = peak_bytes(lambda: refused(lambda: rm.load(path), str(path)))
    assert peak < 4 * size + 2 * MB, (peak, size)
    assert rm.load(path, max_bytes=nbytes + MB).coef_.shape == (2, 2**21)


def test_the_default_bound_is_the_documented_one():
    assert persistence.default_max_bytes(0) == persistence.DEFAULT_MIN_BYTES == 2**28
    assert persistence.default_max_bytes(10 * 2**28) == 64 * 10 * 2**28


def test_a_header_that_inflates_to_a_json_bomb_is_refused_before_it_is_read(tmp_path):
    """A header member of 12 MB of ``[{},{},...]`` compresses to some ten kilobytes and would
    become about 280 MB of Python objects; refused before it is read, naming max_bytes."""
    text = b'{"format": "regmtl-model", "pad": [' + b"{}," * 4_000_000 + b"{}]}"
    blob = np.frombuffer(text, np.uint8)
    bad = tmp_path / "bomb.npz"
    with open(bad, "wb") as fh:
        np.savez_compressed(fh, __header__=blob)
    assert bad.stat().st_size < 200_000
    peak = peak_bytes(lambda: refused(lambda: rm.load(bad), str(bad), "header", "max_bytes"))
    assert peak < 2 * MB, peak


# ------------------------------------------------------------------ the CLI's reader
def test_the_cli_refuses_a_tampered_model_naming_the_file_and_field(tmp_path, capsys):
    """``regmtl predict`` reads models with ``regmtl.load``: a tampered file ends with one error
    line naming the file and the field; ``--max-bytes`` bounds (or raises) what it may
    allocate."""
    import pandas as pd

    from regmtl.cli import main

    Xs, ys = _data()
    frame = pd.concat([pd.DataFrame(X, columns=[f"f{j}" for j in range(5)]).assign(
        task=f"t{t}", y=y) for t, (X, y) in enumerate(zip(Xs, ys, strict=True))])
    data = tmp_path / "rows.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "m.npz"
    assert main(["fit", str(data), "--task-col", "task", "--target", "y", "--penalty",
                 "robust_features", "--alpha", "0.05", "--out", str(model)]) == 0
    header, arrays = _parts(model)
    key = header["attributes"]["outlier_tasks_"]["key"]
    bad = tmp_path / "bad.npz"
    _write(bad, header, {**arrays, key: np.array([5])})
    capsys.readouterr()
    assert main(["predict", str(bad), str(data), "--task-col", "task"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'outlier_tasks_'" in err, err
    assert main(["predict", str(model), str(data), "--task-col", "task", "--max-bytes",
                 "100"]) == 2
    assert "max_bytes=100" in capsys.readouterr().err
    assert main(["predict", str(model), str(data), "--task-col", "task", "--max-bytes",
                 str(10 * MB), "--out", str(tmp_path / "p.csv")]) == 0


# ------------------------------------------------------------------ deep folders
def test_a_deep_folder_s_task_labels_are_distinct_and_finite(tmp_path):
    """Before: ``tasks_`` of a deep estimator's config naming one task twice, or NaN,
    loaded."""
    pytest.importorskip("torch")
    from regmtl.deep import DeepMultiTaskRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = X @ rng.standard_normal((4, 2))
    DeepMultiTaskRegressor(max_epochs=2, random_state=0).fit(X, Y).save(tmp_path / "deep")
    config = tmp_path / "deep" / "config.json"
    saved = json.loads(config.read_text())
    for values, words in (([1, 1], "twice"), ([0, float("nan")], "finite")):
        tampered = copy.deepcopy(saved)
        tampered["estimator"]["attributes"]["tasks_"]["values"] = values
        config.write_text(json.dumps(tampered))
        refused(lambda: rm.load(tmp_path / "deep"), str(config), "'tasks_'", words)
    config.write_text(json.dumps(saved))
    assert rm.load(tmp_path / "deep").n_tasks_ == 2
