"""Every constructor parameter of the deep estimators saves and loads as it was given: dicts
keyed by int or str task labels (``kinds={0: "regression"}``, which the docs recommend),
lists, tuples, arrays, None, a weighting with its options, a ``RandomState``; and a saved
folder whose parameters were tampered with is refused, without pickle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DWA,
    DeepESMMClassifier,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    FixedWeighting,
    Modalities,
    TaskSpec,
    Weighting,
)
from regmtl.deep.saving import param_from_json, param_to_json  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((48, 3))
VALUE = X[:, 0] + 0.5 * X[:, 1]
LABEL = (X[:, 1] > 0).astype(int)
FRAME = pd.DataFrame({"x": X[:, 0], "y": X[:, 1], "c": RNG.integers(0, 3, 48)})
IMAGES = RNG.standard_normal((24, 1, 6, 6)).astype(np.float32)
TEXTS = np.array([" ".join(RNG.choice(["red", "blue", "green", "cat", "dog"], 4))
                  for _ in range(24)])
TINY = dict(max_epochs=2, batch_size=16, device="cpu")

#: (class, constructor parameters, X, y, fit keywords): every parameter away from its
#: default, with each type it takes
CASES = {
    "model-int-keys": (DeepMultiTaskModel, dict(
        kinds={0: "regression", 1: "classification"}, architecture="mmoe", hidden=[8],
        head_hidden=(4,), n_experts=2, activation="tanh", dropout=0.1, batch_norm=True,
        penalty="l2", alpha=1e-3, weighting=FixedWeighting({"t0": 1.0, "t1": 0.5}),
        optimizer="adamw", lr=5e-3, batch_size=16, max_epochs=3, early_stopping=True,
        validation_fraction=0.25, patience=2, random_state=np.random.RandomState(1),
        device="cpu", verbose=0, categorical_features=[], on_divergence="restore_best",
        input_kind="table", trunk=None, tokenizer=None, warm_start=True,
        loss=[("huber", 1.0), None]), X, np.column_stack([VALUE, LABEL]), {}),
    "model-str-keys": (DeepMultiTaskModel, dict(
        kinds={"u": "regression", "v": "classification"}, hidden=np.array([8, 4]),
        weighting=FixedWeighting((1.0, 2.0)), random_state=None, loss="absolute",
        early_stopping=False, **TINY),
        {"u": X[:24], "v": X[24:]}, {"u": VALUE[:24], "v": LABEL[24:]}, {}),
    "model-list-kinds": (DeepMultiTaskModel, dict(
        kinds=["regression", "classification"], loss=("quantile", 0.8), weighting="imtl",
        architecture="cgc", n_experts=3, random_state=7, **TINY),
        X, np.column_stack([VALUE, LABEL]), {}),
    "model-tuple-kinds": (DeepMultiTaskModel, dict(
        kinds=("auto", "classification"), categorical_features=("c",), **TINY),
        FRAME, np.column_stack([VALUE, LABEL]), {}),
    "regressor-losses": (DeepMultiTaskRegressor, dict(
        loss=["poisson", ("huber", 0.5)], architecture="ple", hidden=(8, 4),
        head_hidden=[4], weighting=DWA(temperature=1.5), penalty="l21", alpha=1e-4,
        optimizer="sgd", categorical_features=["c"], **TINY),
        FRAME, np.column_stack([np.abs(np.round(3 * VALUE)), VALUE]), {}),
    "regressor-images": (DeepMultiTaskRegressor, dict(
        loss=("quantile", 0.3), input_kind="images",
        trunk={"channels": (4, 8), "kernel_size": 3, "pool": (2, 2)}, **TINY),
        IMAGES, IMAGES.mean(axis=(1, 2, 3)), {}),
    "regressor-texts": (DeepMultiTaskRegressor, dict(
        input_kind="text", trunk={"dim": 8, "mode": "sum"},
        tokenizer={"lowercase": False, "min_count": 1, "max_length": 6}, **TINY),
        TEXTS, np.char.count(TEXTS, "cat").astype(float), {}),
    "model-modalities": (DeepMultiTaskModel, dict(
        kinds={"p": "classification"}, fusion="gated", modality_dropout=0.1,
        tokenizer={"min_count": 1}, **TINY),
        Modalities(image=IMAGES, text=list(TEXTS)), LABEL[:24],
        dict(task=np.repeat(["p", "q"], 12))),
    "classifier": (DeepMultiTaskClassifier, dict(
        hidden=[8], weighting=FixedWeighting([0.5, 1.5]), random_state=np.random.RandomState(2),
        validation_fraction=0.3, **TINY),
        [X[:24], X[24:]], [LABEL[:24], np.where(LABEL[24:] == 1, "yes", "no")], {}),
    "classifier-long": (DeepMultiTaskClassifier, dict(
        architecture="mmoe", weighting="pcgrad", categorical_features=("c",), **TINY),
        FRAME, LABEL, dict(task=np.repeat(["p", "q"], 24))),
    "esmm": (DeepESMMClassifier, dict(
        hidden=np.array([8]), tower_hidden=[4, 2], activation="gelu",
        weighting=FixedWeighting({"t0": 2.0}), random_state=np.random.RandomState(3),
        warm_start=True, **TINY),
        X, np.column_stack([LABEL, LABEL * (X[:, 2] > 0)]), {}),
}


def _same(a, b) -> bool:
    """Equal and of the same types all the way down (a weighting by class and options, a
    RandomState by its state, an array by dtype and values)."""
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and all(
            np.array_equal(x, y) for x, y in zip(a.get_state(), b.get_state(), strict=True))
    if isinstance(a, Weighting):
        return type(a) is type(b) and repr(a) == repr(b) and _same(
            getattr(a, "weights", None), getattr(b, "weights", None))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return (type(b) is dict and [(type(k), k) for k in a] == [(type(k), k) for k in b]
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("case", list(CASES))
def test_every_parameter_round_trips(tmp_path, case):
    cls, params, X_, y_, fit_kw = CASES[case]
    if case == "model-int-keys":  # every parameter of the constructor
        # (the options of Modalities inputs, refused for a table: the modalities case)
        assert set(params) | {"fusion", "modality_dropout"} == set(cls._get_param_names())
    est = cls(**params)
    est.fit(X_, y_, **fit_kw)
    est.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    assert type(again) is cls
    before, after = est.get_params(), again.get_params()
    assert list(before) == list(after)
    for k in before:
        assert _same(before[k], after[k]), (k, before[k], after[k])
    pred_kw = {k: v for k, v in fit_kw.items() if k == "task"}
    p, q = est.predict(X_, **pred_kw), again.predict(X_, **pred_kw)
    if isinstance(p, dict):
        assert list(p) == list(q) and all(np.array_equal(p[k], q[k]) for k in p)
    elif isinstance(p, list):
        assert all(np.array_equal(a, b) for a, b in zip(p, q, strict=True))
    else:
        assert np.array_equal(p, q)


def test_the_documented_dict_of_kinds_saves(tmp_path):
    """The issue's call: kinds={0: "regression"} on one task (before: TypeError, "a value of
    type dict cannot be saved")."""
    est = DeepMultiTaskModel(kinds={0: "regression"}, hidden=(8,), **TINY).fit(
        X, VALUE.reshape(-1, 1))
    est.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    assert again.kinds == {0: "regression"} and type(next(iter(again.kinds))) is int
    assert np.array_equal(again.predict(X), est.predict(X))
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["estimator"]["params"]["kinds"] == {"dict": [[0, "regression"]]}


@pytest.mark.parametrize("value", [
    {0: "a", "0": "b", (1, "x"): [1, (2, None)], None: {"k": ()}, 2.5: True},
    [(), [], {}, None], (np.arange(3, dtype=np.int32), np.array(["u", "v"])),
    TaskSpec("price", weight=0.5, loss=("huber", 2.0)), FixedWeighting({"a": (1.0, 2.0)}),
])
def test_values_round_trip_by_type(value):
    saved = param_to_json("p", value)
    json.dumps(saved, allow_nan=False)  # plain JSON
    assert _same(value, param_from_json("p", saved)) or isinstance(value, TaskSpec) and \
        param_from_json("p", saved) == value


def test_what_cannot_be_saved_is_named():
    for value in (lambda x: x, object(), {"a": {1, 2}}, np.array([object()])):
        with pytest.raises(TypeError, match=r"parameter p=.* cannot be saved"):
            param_to_json("p", value)
    deep = []
    for _ in range(12):
        deep = [deep]
    with pytest.raises(TypeError, match="nested more than 8 deep"):
        param_to_json("p", deep)


def test_earlier_files_load(tmp_path):
    """Parameters as earlier releases wrote them: a dict of options as plain JSON, a
    weighting's options as plain JSON."""
    est = DeepMultiTaskRegressor(trunk={"channels": (4, 8)}, **TINY).fit(
        IMAGES, IMAGES.mean(axis=(1, 2, 3)))
    est.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["estimator"]["params"].update(
        trunk={"options": {"channels": [4, 8]}},
        weighting={"weighting": "fixed", "options": {"weights": {"t0": 2.0}}})
    path.write_text(json.dumps(config))
    again = regmtl.load(tmp_path / "m")
    assert again.trunk == {"channels": [4, 8]}
    assert isinstance(again.weighting, FixedWeighting) and again.weighting.weights == {"t0": 2.0}


@pytest.mark.parametrize("param, value, words", [
    ("kinds", {"dict": [[{"list": [0]}, "regression"]]}, ["parameter 'kinds'", "dict key"]),
    ("kinds", {"dict": [[0, "regression"], [0, "classification"]]}, ["given twice"]),
    ("kinds", {"dict": [[0]]}, ["[key, value] pair"]),
    ("kinds", {"pickle": "gASV"}, ["parameter 'kinds'", "saved types"]),
    ("kinds", ["regression"], ["parameter 'kinds'"]),  # a bare list: not what save writes
    ("hidden", {"array": {"dtype": "|O", "shape": [1], "values": [8]}}, ["'hidden'", "dtype"]),
    ("random_state", {"random_state": {"keys": [1], "pos": 0, "has_gauss": 0,
                                       "cached_gaussian": 0.0}}, ["RandomState"]),
    ("hidden", {"tuple": [{"tuple": [{"tuple": [{"tuple": [{"tuple": [{"tuple": [
        {"tuple": [{"tuple": [{"tuple": [{"tuple": [8]}]}]}]}]}]}]}]}]}]}, ["deep"]),
    ("weighting", {"weighting": "fixed", "options": {"weights": {"tuple": 1}}}, ["weighting"]),
    ("kinds", {"task_spec": {"name": "a", "kind": "torch"}}, ["task"]),
])
def test_tampered_parameters_are_refused(tmp_path, param, value, words):
    est = DeepMultiTaskModel(kinds={0: "regression"}, hidden=(8,), **TINY).fit(
        X, VALUE.reshape(-1, 1))
    est.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["estimator"]["params"][param] = value
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError) as info:
        regmtl.load(tmp_path / "m")
    assert "config.json was refused" in str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)
