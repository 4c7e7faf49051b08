"""Deep models fitted on ``Modalities`` exported to ONNX: one input per modality and the
missing mask ``_missing``, run by ONNX Runtime on held-out rows (images, texts and table rows
missing among them) and compared with ``predict`` / ``predict_proba``: the regressor of a
shared y, the classifier and a model of mixed kinds in the long form, the ESMM classifier, a
transferred head; token ids and a bag of words as modalities, the tokenizers beside the graph,
the card, ``target_opset``, ``check_onnx``, the command line and the refusals by name."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
sp = pytest.importorskip("scipy.sparse")

from sklearn.datasets import load_digits  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepESMMClassifier,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    Modalities,
    transfer_head,
)
from regmtl.serving import NotExportable, deep_check, read_card  # noqa: E402
from regmtl.serving.deep_plan import deep_plan  # noqa: E402

KW = dict(hidden=(16,), max_epochs=2, batch_size=64, device="cpu", early_stopping=False)
CLOSE = 1e-5  # (the verified tolerance is 1e-4; measured below 1e-6)
WORDS = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                  "nine"])
TASKS = np.array(["even", "big"], dtype=object)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _digits(n, seed, first=0):
    """``n`` digits from ``first`` on: the image (15 % missing), a text naming the digit
    among other words (20 % missing), a noisy table column, and the digits."""
    rng = np.random.default_rng(seed)
    d = load_digits()
    digit = d.target[first:first + n]
    images = d.images[first:first + n] / 16.0
    no_image = rng.random(n) < 0.15
    images[no_image] = np.nan
    texts = [None if rng.random() < 0.2 else f"{rng.choice(WORDS)} {WORDS[k]} digit"
             for k in digit]
    table = digit[:, None] + rng.standard_normal((n, 1))
    return Modalities(image=images, text=texts, table=table), digit


@pytest.fixture(scope="module")
def held():
    """Rows the fits never saw, every pattern of a missing image and text among them."""
    X, digit = _digits(60, 9, first=1200)
    assert X.missing()[:, :2].any(axis=0).all()
    return X, digit, np.resize(TASKS[::-1], 60)


def _run(graph, feeds):
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def _served(model, graph, X, task=None, dtype="float64"):
    return _run(graph, deep_check.feeds(deep_plan(model), X, task, np.dtype(dtype)))


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


def _signature(graph):
    types = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
             onnx.TensorProto.INT64: "int64", onnx.TensorProto.BOOL: "bool",
             onnx.TensorProto.STRING: "string"}
    return [(i.name, types[i.type.tensor_type.elem_type]) for i in graph.graph.input]


@pytest.fixture(scope="module")
def regressor():
    X, digit = _digits(300, 0)
    return DeepMultiTaskRegressor(**KW).fit(X, np.column_stack([digit, digit % 3 * 2.0]))


@pytest.fixture(scope="module")
def classifier():
    X, digit = _digits(300, 1)
    task = np.resize(TASKS, 300)
    y = np.where(task == "even", digit % 2, digit > 4).astype(int).astype(str)
    return DeepMultiTaskClassifier(**KW).fit(X, y, task=task)


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_regressor_of_a_shared_y_serves_every_task_per_row(regressor, held, dtype):
    graph = rm.export_onnx(regressor, dtype=dtype)
    assert _signature(graph) == [("image", dtype), ("text", "int64"), ("table", dtype),
                                 ("_missing", "bool")]
    assert [o.name for o in graph.graph.output] == ["prediction"]
    X, _, _ = held
    out = _served(regressor, graph, X, dtype=dtype)["prediction"]
    assert out.shape == (60, 2) and _rel(out, regressor.predict(X)) <= CLOSE
    one = _served(regressor, graph, X[[3]], dtype=dtype)["prediction"]  # (any batch size)
    assert _rel(one, regressor.predict(X[[3]])) <= CLOSE


def test_the_values_under_a_missing_modality_are_ignored(regressor, held):
    graph = rm.export_onnx(regressor)
    X, _, _ = held
    feeds = deep_check.feeds(deep_plan(regressor), X, None, np.dtype("float64"))
    gone = feeds["_missing"]
    noisy = dict(feeds, image=np.where(gone[:, 0, None, None, None], 7.0, feeds["image"]),
                 text=np.where(gone[:, 1, None], 3, feeds["text"]))
    assert _rel(_run(graph, noisy)["prediction"], regressor.predict(X)) <= CLOSE


def test_a_classifier_in_the_long_form_checked_on_given_rows(classifier, held):
    X, _, task = held
    graph = rm.export_onnx(classifier, X=X, task=task)  # (verified on the rows given)
    assert [n for n, _ in _signature(graph)] == ["image", "text", "table", "_missing", "task"]
    out = _served(classifier, graph, X, task)
    assert _rel(out["probabilities"], classifier.predict_proba(X, task=task)) <= CLOSE
    assert out["label"].tolist() == classifier.predict(X, task=task).tolist()
    report = rm.check_onnx(classifier, graph, X=X[:20], task=task[:20])
    assert report["probabilities"] <= CLOSE and report["label"] == 0


def test_a_model_of_mixed_kinds_on_token_ids_and_a_bag_of_words(held):
    """Per-task lists of Modalities (images, token ids, a bag of words, a table; a gated
    fusion): a regression task and a classification task, the task ids their positions."""
    rng = np.random.default_rng(3)

    def rows(n, seed, first):
        X, digit = _digits(n, seed, first)
        parts = dict(iter(X))
        ids = rng.integers(0, 30, (n, 6))
        bag = sp.random(n, 25, density=0.2, random_state=seed, format="csr")
        return Modalities.from_dict({"image": parts["image"], "ids": ids, "bag": bag,
                                     "table": parts["table"]}, kinds={"ids": "tokens"}), digit

    (A, da), (B, db) = rows(150, 4, 0), rows(150, 5, 150)
    m = DeepMultiTaskModel(["regression", "classification"], fusion="gated", **KW).fit(
        [A, B], [da.astype(float), (db % 3).astype(str)])
    graph = rm.export_onnx(m, dtype="float32")
    assert _signature(graph) == [("image", "float32"), ("ids", "int64"), ("bag", "float32"),
                                 ("table", "float32"), ("_missing", "bool"), ("task", "int64")]
    Xh, _ = rows(40, 6, 1300)
    th = np.resize([1, 0], 40)
    out = _served(m, graph, Xh, th, "float32")
    values = th == 0
    assert _rel(out["value"][values], m.predict(Xh[values], task=th[values])) <= CLOSE
    assert _rel(out["probabilities"][~values], m.predict_proba(Xh[~values], task=th[~values])) \
        <= CLOSE
    assert out["label"][~values].tolist() == m.predict(Xh[~values], task=th[~values]).tolist()


def test_the_esmm_classifier(held):
    X, digit = _digits(300, 7)
    click = (digit > 3).astype(int)
    m = DeepESMMClassifier(hidden=(16,), tower_hidden=(8,), max_epochs=2, batch_size=64,
                           device="cpu").fit(X, np.column_stack([click, click * (digit % 2)]))
    graph = rm.export_onnx(m)
    Xh = held[0]
    out = _served(m, graph, Xh)
    assert _rel(out["probabilities"], m.predict_proba(Xh)) <= CLOSE
    assert (out["label"] == m.predict(Xh)).all()


def test_a_head_transferred_from_a_modal_model(regressor, held):
    X, digit = _digits(80, 10, first=600)
    head = transfer_head(regressor, X, (digit > 4).astype(int), kind="binary", epochs=2)
    graph = rm.export_onnx(head)
    assert [n for n, _ in _signature(graph)] == ["image", "text", "table", "_missing"]
    Xh = held[0]
    assert _rel(_served(head, graph, Xh)["probabilities"], head.predict_proba(Xh)) <= CLOSE


# ----------------------------------------------------------------------------- around the graph
@pytest.mark.parametrize(("target", "stamped"), [
    (13, {"": 13, "ai.onnx.ml": 4}), ({"": 17, "ai.onnx.ml": 3}, {"": 17, "ai.onnx.ml": 3})])
def test_target_opset(classifier, held, target, stamped):
    graph = rm.export_onnx(classifier, target_opset=target)
    assert {o.domain: o.version for o in graph.opset_import} == stamped
    X, _, task = held
    out = _served(classifier, graph, X, task)
    assert _rel(out["probabilities"], classifier.predict_proba(X, task=task)) <= CLOSE


def test_the_tokenizers_beside_the_graph_and_the_card(classifier, tmp_path):
    path = tmp_path / "digits.onnx"
    graph = rm.export_onnx(classifier, path)
    side = tmp_path / "digits.onnx.text.tokenizer.json"
    card = read_card({p.key: p.value for p in graph.metadata_props})
    assert card["tokenizers"] == {"text": {"file": side.name, "sha256": hashlib.sha256(
        side.read_bytes()).hexdigest()}}
    assert json.loads(side.read_text(encoding="utf-8")) == \
        classifier.modalities_["tokenizers"]["text"]
    assert card["input_kind"] == "modalities" and card["modalities"] == {
        "names": ["image", "text", "table"], "sizes": {"image": [1, 8, 8], "text": [12],
                                                       "table": [1]},
        "kinds": {"image": "images", "text": "text", "table": "table"},
        "inputs": ["image", "text", "table", "_missing"]}
    assert [i["name"] for i in card["inputs"]] == ["image", "text", "table", "_missing", "task"]


def test_the_command_line_exports_a_saved_modal_model(regressor, held, tmp_path, capsys):
    from regmtl.cli import main

    regressor.save(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--target-opset", "15"]) == 0
    said = capsys.readouterr().out
    assert "2 task(s), modalities image, text, table (shared), verified" in said
    assert "inputs: image float64 ['n', 1, 8, 8], text int64 ['n', 'text_length']" in said
    graph = onnx.load(str(tmp_path / "model.onnx"))
    assert (tmp_path / "model.onnx.text.tokenizer.json").is_file()
    X = held[0]
    assert _rel(_served(regressor, graph, X)["prediction"], regressor.predict(X)) <= CLOSE


def test_a_table_with_categorical_columns(tmp_path):
    """Its input: the codes of the categorical columns (from the vocabularies written beside
    the graph), then the numbers; an unseen value's code is the vocabulary's length."""
    import pandas as pd

    X, digit = _digits(240, 5)
    parts = dict(iter(X))
    rng = np.random.default_rng(0)
    shop = np.array(["north", "south", None], dtype=object)[digit % 3]
    frame = pd.DataFrame({"shop": shop, "price": digit + rng.standard_normal(240)})
    has_image = ~np.isnan(parts["image"]).all(axis=(1, 2))
    frame.loc[(np.arange(240) < 30) & has_image] = np.nan  # (never both missing)
    Xc = Modalities(image=parts["image"], shop=frame)
    model = DeepMultiTaskRegressor(**KW).fit(Xc, np.column_stack([digit, digit % 3 * 2.0]))
    path = tmp_path / "shops.onnx"
    graph = rm.export_onnx(model, path)
    side = tmp_path / "shops.onnx.shop.table.json"
    assert json.loads(side.read_text(encoding="utf-8")) == model.modalities_["tables"]["shop"]
    card = read_card({p.key: p.value for p in graph.metadata_props})
    assert card["tables"] == {"shop": {"file": side.name, "sha256": hashlib.sha256(
        side.read_bytes()).hexdigest()}}
    assert _signature(graph)[:3] == [("image", "float64"), ("shop", "float64"),
                                     ("_missing", "bool")]
    held_rows = frame.iloc[:40].copy()
    held_rows.loc[35, "shop"] = "east"  # unseen
    Xh = Modalities(image=parts["image"][:40], shop=held_rows)
    feeds = deep_check.feeds(deep_plan(model), Xh, None, np.dtype("float64"))
    assert feeds["shop"][35, 0] == 3  # the vocabulary ['north', 'south', None] has 3 values
    out = _run(graph, feeds)
    assert _rel(out["prediction"], model.predict(Xh)) <= CLOSE


# ----------------------------------------------------------------------------- refusals
def _with(model, **spec):
    bad = copy.copy(model)
    bad.modalities_ = {**model.modalities_, **spec}
    return bad


def test_what_is_refused_by_name(regressor, held):
    odd = _with(regressor, kinds={**regressor.modalities_["kinds"], "table": "audio"})
    with pytest.raises(NotExportable, match="modality 'table' is of kind 'audio', which a "
                                            "graph input does not express"):
        rm.export_onnx(odd)
    with pytest.raises(NotExportable, match="named_columns=True: .* one input per modality"):
        rm.export_onnx(regressor, named_columns=True)
    with pytest.raises(ValueError, match=r"X is a ndarray, but the model was fitted on a "
                                         r"Modalities \['image', 'text', 'table'\]"):
        rm.export_onnx(regressor, X=np.zeros((3, 64)))
    X, digit = _digits(120, 8)
    parts = dict(iter(X))
    clash = Modalities(image=parts["image"], label=parts["table"])
    m = DeepMultiTaskRegressor(**{**KW, "max_epochs": 1}).fit(clash, digit.astype(float))
    with pytest.raises(NotExportable, match="modality 'label' has the name of another input "
                                            "or output of the graph"):
        rm.export_onnx(m)
