"""Deep models exported to ONNX (``regmtl.serving.deep``): every architecture and head kind,
every input kind, the ESMM estimator, transferred heads and plain nets, run by ONNX Runtime on
held-out rows at other batch sizes than the traced one, in a task order the fit never saw, and
compared with the model's own ``predict`` / ``predict_proba`` (the verified tolerance is 1e-4
relative; measured about 1e-7, so the tests hold them to 1e-5); unknown task ids, the tokenizer
beside the graph, a tampered graph caught by ``check_onnx``, and the refusals by name."""

from __future__ import annotations

import hashlib
import json
import re
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
sp = pytest.importorskip("scipy.sparse")

import regmtl as rm  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ESMM,
    PLE,
    ConvTrunk,
    DeepESMMClassifier,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    HardSharing,
    MMoE,
    Trainer,
    set_seed,
    transfer_head,
)
from regmtl.serving import ExportMismatch, NotExportable, deep_check, read_card  # noqa: E402
from regmtl.serving.deep_plan import deep_plan  # noqa: E402

KW = dict(hidden=(12,), max_epochs=2, batch_size=64, device="cpu", early_stopping=False)
IDS = np.array(["north", "south", "east", "west"], dtype=object)
CLOSE = 1e-5  # (measured ~1e-7; the verified tolerance is 1e-4)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _session(graph):
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(graph, **feeds):
    sess = _session(graph)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


def _long(n=480, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    task = rng.choice(IDS, n)
    return rng, X, task


def _held_out(n, seed=9):
    """Rows in a shuffled task order the fit never saw."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)) * 1.5, rng.choice(IDS[::-1], n)


def _labels(rng, task):
    """Two classes for north, three for south, four for the others (strings)."""
    k = np.select([task == "north", task == "south"], [2, 3], 4)
    return np.array(list("abcd"))[rng.integers(0, 99, len(task)) % k]


# ----------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("arch", ["hard", "mmoe", "ple"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_regressor_serves_its_predictions_at_any_batch_size(arch, dtype):
    rng, X, task = _long()
    m = DeepMultiTaskRegressor(arch, **KW).fit(X, X[:, 0] * 3 + 10, task=task)
    graph = rm.export_onnx(m, dtype=dtype)
    assert [i.name for i in graph.graph.input] == ["X", "task"]
    for n in (1, 7, 333):  # (traced on 4 rows: the batch axis is free)
        Xh, th = _held_out(n)
        out = _run(graph, X=Xh.astype(dtype), task=th)["prediction"]
        assert out.dtype == np.dtype(dtype) and out.shape == (n,)
        assert _rel(out, m.predict(Xh, task=th)) <= CLOSE


@pytest.mark.parametrize("arch", ["hard", "mmoe", "ple"])
def test_a_classifier_of_tasks_with_different_classes(arch):
    rng, X, task = _long(seed=1)
    m = DeepMultiTaskClassifier(arch, **KW).fit(X, _labels(rng, task), task=task)
    graph = rm.export_onnx(m, dtype="float32")
    Xh, th = _held_out(200)
    out = _run(graph, X=Xh.astype(np.float32), task=th)
    assert out["probabilities"].shape == (200, 4)
    for t in IDS:  # each task's classes in the order of its classes_, padded with 0
        rows = th == t
        ref = m.predict_proba(Xh[rows], task=th[rows])
        k = ref.shape[1]
        assert _rel(out["probabilities"][rows, :k], ref) <= CLOSE
        assert np.all(out["probabilities"][rows, k:] == 0)
        assert out["label"][rows].tolist() == m.predict(Xh[rows], task=th[rows]).tolist()


def test_a_model_of_values_counts_and_classes():
    """One output per kind: NaN (or the empty label) where a row's task has the other kind;
    a batch of one kind only runs (the other heads' blocks get no rows)."""
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((k, 5)) for k in (90, 60, 80, 70)]
    ys = [Xs[0][:, 0] * 5, rng.poisson(np.exp(Xs[1][:, 1])).astype(float),
          np.where(Xs[2][:, 2] > 0, "yes", "no"), rng.choice(["u", "v", "w"], 70)]
    m = DeepMultiTaskModel(["regression", "count", "classification", "classification"],
                           "mmoe", n_experts=2, **KW).fit(Xs, ys)
    graph = rm.export_onnx(m)
    assert [o.name for o in graph.graph.output] == ["value", "probabilities", "label"]
    Xh = np.random.default_rng(3).standard_normal((40, 5))
    th = np.tile(np.arange(4), 10)
    out = _run(graph, X=Xh, task=th)
    values = th < 2
    assert _rel(out["value"][values], m.predict(Xh[values], task=th[values])) <= CLOSE
    assert np.isnan(out["value"][~values]).all() and np.isnan(out["probabilities"][values]).all()
    assert set(out["label"][values].tolist()) == {""}
    for t, k in ((2, 2), (3, 3)):
        rows = th == t
        assert _rel(out["probabilities"][rows, :k], m.predict_proba(Xh[rows], task=th[rows])) \
            <= CLOSE
        assert out["label"][rows].tolist() == m.predict(Xh[rows], task=th[rows]).tolist()
    only = _run(graph, X=Xh[:3], task=np.zeros(3, dtype=np.int64))  # regression rows alone
    assert _rel(only["value"], m.predict(Xh[:3], task=np.zeros(3, dtype=int))) <= CLOSE


@pytest.mark.parametrize("loss", ["poisson", "huber", ("quantile", 0.8)])
def test_the_losses_of_values(loss):
    rng, X, task = _long(seed=4)
    y = rng.poisson(np.exp(X[:, 0])).astype(float) if loss == "poisson" else X[:, 0]
    m = DeepMultiTaskRegressor(loss=loss, **KW).fit(X, y, task=task)
    graph = rm.export_onnx(m)
    Xh, th = _held_out(100)
    assert _rel(_run(graph, X=Xh, task=th)["prediction"], m.predict(Xh, task=th)) <= CLOSE


def test_an_unknown_task_gets_nan_never_another_tasks_output():
    rng, X, task = _long(seed=5)
    m = DeepMultiTaskClassifier(**KW).fit(X, _labels(rng, task), task=task)
    out = _run(rm.export_onnx(m), X=X[:3], task=np.array(["north", "nowhere", "west"],
                                                         dtype=object))
    assert np.isnan(out["probabilities"][1]).all() and out["label"][1] == ""
    assert np.isfinite(out["probabilities"][[0, 2]]).all()


def test_a_shared_design_gives_every_tasks_outputs():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 5))
    Y = np.column_stack([X[:, 0], X[:, 1] * 4 - 2, X[:, 2]])
    m = DeepMultiTaskRegressor(**KW).fit(X, Y)
    graph = rm.export_onnx(m)
    assert [i.name for i in graph.graph.input] == ["X"]
    Xh = rng.standard_normal((50, 5))
    assert _rel(_run(graph, X=Xh)["prediction"], m.predict(Xh)) <= CLOSE
    rows = rm.export_onnx(m, task_input=True)  # or served row by row
    th = rng.integers(0, 3, 50)
    assert _rel(_run(rows, X=Xh, task=th)["prediction"],
                m.predict(Xh)[np.arange(50), th]) <= CLOSE
    C = (Y > 0).astype(int)
    clf = DeepMultiTaskClassifier(**KW).fit(X, C)
    out = _run(rm.export_onnx(clf), X=Xh)
    assert out["probabilities"].shape == (50, 3, 2)
    for t, ref in enumerate(clf.predict_proba(Xh)):
        assert _rel(out["probabilities"][:, t], ref) <= CLOSE
    assert (out["label"] == clf.predict(Xh)).all()


def test_one_task():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 5))
    m = DeepMultiTaskClassifier(**KW).fit(X, np.where(X[:, 0] > 0, 1, 5))
    out = _run(rm.export_onnx(m), X=X[:20])
    assert [i.name for i in rm.export_onnx(m).graph.input] == ["X"]
    assert _rel(out["probabilities"], m.predict_proba(X[:20])) <= CLOSE
    assert out["label"].tolist() == m.predict(X[:20]).tolist()


# ----------------------------------------------------------------------------- input kinds
def test_a_dataframe_with_categorical_columns():
    """Strings (with missing values: served as "") and integer ids come by name and are coded
    in the graph; values outside the vocabulary read the unseen code as in predict."""
    rng = np.random.default_rng(8)
    n = 400
    df = pd.DataFrame({"age": rng.normal(40, 10, n),
                       "city": rng.choice(np.array(["Oslo", "Rome", "Paris", None],
                                                   dtype=object), n),
                       "store": rng.integers(0, 5, n), "price": rng.gamma(2, 3, n)})
    task = rng.choice(IDS, n)
    y = df.age / 10 + (df.city == "Rome") * 2 + df.store
    m = DeepMultiTaskRegressor(categorical_features=["store"], **KW).fit(df, y, task=task)
    graph = rm.export_onnx(m)
    assert [i.name for i in graph.graph.input] == ["age", "city", "store", "price", "task"]
    held = pd.DataFrame({"age": [30.0, 50.0, 41.0], "city": ["Rome", None, "Lima"],
                         "store": [4, 0, 17], "price": [1.0, 9.0, 3.0]})
    th = np.array(["west", "north", "south"], dtype=object)
    out = _run(graph, age=held.age.to_numpy(), city=np.array(["Rome", "", "Lima"], dtype=object),
               store=held.store.to_numpy(), price=held.price.to_numpy(), task=th)
    assert _rel(out["prediction"], m.predict(held, task=th)) <= CLOSE
    card = read_card(_session(graph).get_modelmeta().custom_metadata_map)
    assert card["categories"] == {"city": ["Oslo", "Paris", "Rome", None],
                                  "store": [0, 1, 2, 3, 4]}
    assert [(i["name"], i["type"]) for i in card["inputs"][1:3]] == [("city", "string"),
                                                                     ("store", "int64")]


def test_named_numeric_columns():
    rng, X, task = _long(seed=9)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    m = DeepMultiTaskRegressor(**KW).fit(df, X[:, 1], task=task)
    graph = rm.export_onnx(m, named_columns=True)
    assert [i.name for i in graph.graph.input] == ["a", "b", "c", "d", "e", "task"]
    out = _run(graph, **{c: df[c].to_numpy()[:30] for c in df}, task=task[:30])
    assert _rel(out["prediction"], m.predict(df.iloc[:30], task=task[:30])) <= CLOSE


def test_images():
    rng = np.random.default_rng(10)
    imgs = rng.uniform(0, 1, (160, 1, 8, 8))
    task = rng.choice(IDS[:2], 160)
    m = DeepMultiTaskRegressor(**KW).fit(imgs, imgs.mean(axis=(1, 2, 3)) * 10, task=task)
    graph = rm.export_onnx(m, dtype="float32")
    held = rng.uniform(0, 1, (5, 1, 8, 8))
    out = _run(graph, X=held.astype(np.float32), task=task[:5])
    assert _rel(out["prediction"], m.predict(held, task=task[:5])) <= CLOSE


@pytest.mark.parametrize("pool", [(1, 1), (1, 2), (2, 4)])
def test_a_conv_trunks_grid_average_serves(pool):
    """The trunk's grid average (an average pool or averaging matrices in training, for a
    gradient the same on every run) exports as PyTorch's adaptive pooling: the same outputs."""
    set_seed(0)
    net = HardSharing(tasks=["a"], trunk=ConvTrunk(1, (4,), pool=pool, image_shape=(8, 16)))
    X = np.random.default_rng(17).standard_normal((12, 1, 8, 16))
    out = _run(rm.export_onnx(net, X=X), X=X)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(X).float())
    assert _rel(out["a"], ref["a"].numpy()) <= CLOSE


def test_token_ids_of_any_length():
    rng = np.random.default_rng(11)
    ids = rng.integers(1, 30, (200, 10))
    ids[:, 7:] = 0
    task = rng.choice(IDS[:3], 200)
    m = DeepMultiTaskClassifier(input_kind="tokens", **KW).fit(
        ids, np.where(ids[:, 0] > 15, "hi", "lo"), task=task)
    graph = rm.export_onnx(m)
    for L in (3, 10, 25):  # (ids past the vocabulary read the unseen bucket)
        held = rng.integers(0, 40, (6, L))
        out = _run(graph, X=held, task=task[:6])
        assert _rel(out["probabilities"], m.predict_proba(held, task=task[:6])) <= CLOSE


def _reference_tokenizer(texts, vocab):
    """The serving guide's reference tokenizer (docs/user_guide/serving.rst)."""
    ids = {w: k + 1 for k, w in enumerate(vocab["words"])}
    oov = len(vocab["words"]) + 1
    rows = [[ids.get(w, oov) for w in re.findall(r"\w+", t.lower() if vocab["lowercase"]
                                                 else t)][: vocab["max_length"]]
            for t in texts]
    width = max([1, *map(len, rows)])
    return np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int64)


def test_texts_through_the_tokenizer_written_beside_the_graph(tmp_path):
    rng = np.random.default_rng(12)
    words = ["good", "bad", "Cat", "dog", "the", "ÉTÉ", "naïve"]
    texts = [" ".join(rng.choice(words, rng.integers(2, 7))) for _ in range(200)]
    y = np.array(["pos" if "good" in t else "neg" for t in texts])
    task = rng.choice(IDS[:2], 200)
    m = DeepMultiTaskClassifier(**KW).fit(np.array(texts, dtype=object), y, task=task)
    path = tmp_path / "reviews.onnx"
    graph = rm.export_onnx(m, path)
    side = path.with_name("reviews.onnx.tokenizer.json")
    card = read_card(_session(graph).get_modelmeta().custom_metadata_map)
    assert card["tokenizer"] == {"file": side.name, "sha256": hashlib.sha256(
        side.read_bytes()).hexdigest()}
    vocab = json.loads(side.read_text(encoding="utf-8"))
    held = ["The GOOD dog", "été naïve unseen-word", "bad"]
    ids = _reference_tokenizer(held, vocab)
    assert ids.tolist() == m.tokenizer_.transform(held).tolist()
    out = _run(graph, X=ids, task=np.array(["north", "south", "north"], dtype=object))
    ref = m.predict_proba(np.array(held, dtype=object),
                          task=np.array(["north", "south", "north"], dtype=object))
    assert _rel(out["probabilities"], ref) <= CLOSE


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_a_bag_of_words_served_dense(mode):
    rng = np.random.default_rng(13)
    bow = sp.random(200, 40, density=0.1, random_state=1, format="csr")
    task = rng.choice(IDS[:2], 200)
    m = DeepMultiTaskRegressor(trunk={"mode": mode}, **KW).fit(
        bow, np.asarray(bow.sum(1)).ravel(), task=task)
    graph = rm.export_onnx(m)
    held = sp.random(6, 40, density=0.1, random_state=2, format="csr")
    held = sp.vstack([held[:3], sp.csr_matrix((1, 40)), held[4:]], format="csr")  # (empty)
    out = _run(graph, X=held.toarray(), task=task[:6])
    assert _rel(out["prediction"], m.predict(held, task=task[:6])) <= CLOSE


def _inputs_of(kind, rng, n):
    """``n`` rows of an input kind and a target a small net learns."""
    if kind == "table":
        X = rng.standard_normal((n, 5))
        return X, X[:, 0], {}
    if kind == "frame":
        X = pd.DataFrame({"x": rng.standard_normal(n), "color": rng.choice(
            np.array(["red", "green", None], dtype=object), n), "shop": rng.integers(0, 4, n)})
        return X, X.x + (X.color == "red"), {"categorical_features": ["shop"]}
    if kind == "images":
        X = rng.uniform(0, 1, (n, 2, 6, 6))
        return X, X.mean(axis=(1, 2, 3)), {}
    if kind == "tokens":
        X = rng.integers(0, 25, (n, 8))
        return X, (X[:, 0] > 12).astype(float), {"input_kind": "tokens"}
    if kind == "text":
        words = np.array(["sun", "rain", "wind", "snow", "fog"])
        X = np.array([" ".join(rng.choice(words, 4)) for _ in range(n)], dtype=object)
        return X, np.array([t.count("sun") for t in X], dtype=float), {}
    X = sp.random(n, 30, density=0.15, random_state=int(rng.integers(99)), format="csr")
    return X, np.asarray(X.sum(1)).ravel(), {}


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


@pytest.mark.parametrize("kind", ["table", "frame", "images", "tokens", "text", "sparse"])
@pytest.mark.parametrize("arch", ["hard", "mmoe", "ple"])
def test_every_architecture_on_every_input_kind(arch, kind):
    """The export verifies on drawn rows of the kind; held-out rows of it, in a shuffled task
    order, agree with predict again."""
    rng = np.random.default_rng(30)
    X, y, options = _inputs_of(kind, rng, 240)
    task = rng.choice(IDS[:3], 240)
    m = DeepMultiTaskRegressor(arch, n_experts=2, **options, **KW).fit(X, y, task=task)
    graph = rm.export_onnx(m, dtype="float32")
    Xh, _, _ = _inputs_of(kind, np.random.default_rng(31), 9)
    th = np.random.default_rng(32).choice(IDS[:3][::-1], 9)
    feeds = deep_check.feeds(deep_plan(m), Xh, th, np.dtype(np.float32))
    out = _run(graph, **feeds)["prediction"]
    assert _rel(out, m.predict(Xh, task=th)) <= CLOSE
    assert _rel(out[2:5], m.predict(_rows(Xh, np.arange(2, 5)), task=th[2:5])) <= CLOSE


# ----------------------------------------------------------------------------- other models
def test_the_esmm_estimator():
    rng = np.random.default_rng(14)
    X = rng.standard_normal((400, 4))
    click = (X[:, 0] > 0).astype(int)
    m = DeepESMMClassifier(hidden=(12,), tower_hidden=(6,), max_epochs=2, device="cpu").fit(
        X, np.column_stack([click, click * (X[:, 1] > 0.5)]))
    out = _run(rm.export_onnx(m), X=X[:50])
    assert _rel(out["probabilities"], m.predict_proba(X[:50])) <= CLOSE
    assert (out["label"] == m.predict(X[:50])).all()


def test_transferred_heads():
    rng = np.random.default_rng(15)
    src = DeepMultiTaskRegressor("mmoe", n_experts=2, **KW).fit(
        rng.standard_normal((300, 5)), rng.standard_normal(300), task=rng.choice(IDS, 300))
    Xn = rng.standard_normal((40, 5))
    head = transfer_head(src, Xn, np.where(Xn[:, 0] > 0, "p", "n"), kind="binary", epochs=2)
    out = _run(rm.export_onnx(head), X=Xn)
    assert _rel(out["probabilities"], head.predict_proba(Xn)) <= CLOSE
    set_seed(0)
    net = MMoE(4, ["a", "b"], n_experts=2, expert_hidden=(8,), tower_hidden=(4,))
    X4 = rng.standard_normal((30, 4))
    counts = transfer_head(net, X4, rng.poisson(3, 30).astype(float), kind="count", epochs=2)
    with pytest.raises(ValueError, match="a MultiTaskNet .* give X"):
        rm.export_onnx(counts)
    graph = rm.export_onnx(counts, X=X4)
    assert _rel(_run(graph, X=X4.astype(np.float64))["prediction"], counts.predict(X4)) <= CLOSE


@pytest.mark.parametrize("make", [
    lambda: HardSharing(4, ["a", "b", "c"], (8,)),
    lambda: MMoE(4, ["a", "b"], n_experts=3, expert_hidden=(8,), tower_hidden=(4,)),
    lambda: PLE(4, ["a", "b"], expert_hidden=(8,)),
    lambda: ESMM(4, hidden=(8,), tower_hidden=(4,)),
    lambda: HardSharing(None, ["a", "b"], trunk=torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.Tanh()), trunk_out=6),  # (a custom trunk)
])
def test_plain_nets_as_they_are_called(make):
    set_seed(0)
    net = make()
    X = np.random.default_rng(16).standard_normal((20, 4))
    graph = rm.export_onnx(net, X=X)
    out = _run(graph, X=X)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(X).float())
    for name in net.task_names:
        assert _rel(out[name], ref[name].numpy()) <= CLOSE


def test_ten_thousand_lazy_head_tasks():
    """A net of 10,000 tasks trained with lazy heads, served row by row: its task table in the
    graph (O(n) per batch, never n x T), an unknown task NaN."""
    rng = np.random.default_rng(17)
    T, n = 10_000, 20_000
    names = [f"store{k}" for k in range(T)]
    X = rng.standard_normal((n, 4)).astype(np.float32)
    task = rng.integers(0, T, n)
    set_seed(0)
    net = HardSharing(4, names, (8,))
    Trainer(net, lazy_heads=True, max_epochs=1, batch_size=1024, device="cpu").fit(
        (X, (task, X[:, 0] + task / T)))
    Xh = rng.standard_normal((300, 4))
    th = np.array(names, dtype=object)[rng.integers(0, T, 300)]
    graph = rm.export_onnx(net, task_input=True, X=Xh, task=th)
    out = _run(graph, X=Xh, task=th)["output"]
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(Xh).float(),
                         rows=torch.tensor([names.index(t) for t in th]))
    assert _rel(out, ref.numpy()) <= CLOSE
    assert np.isnan(_run(graph, X=Xh[:1], task=np.array(["gone"], dtype=object))["output"]).all()


# ----------------------------------------------------------------------------- checks
def test_a_tampered_graph_is_caught(tmp_path):
    rng, X, task = _long(seed=18)
    m = DeepMultiTaskRegressor("ple", **KW).fit(X, X[:, 0], task=task)
    path = tmp_path / "m.onnx"
    rm.export_onnx(m, path)
    report = rm.check_onnx(m, path)
    assert report["prediction"] <= CLOSE
    graph = onnx.load(str(path))
    big = max(graph.graph.initializer, key=lambda t: onnx.numpy_helper.to_array(t).size)
    w = onnx.numpy_helper.to_array(big).copy()
    w.flat[0] += 0.5
    big.CopyFrom(onnx.numpy_helper.from_array(w, big.name))
    with pytest.raises(ExportMismatch, match="'prediction' differs"):
        rm.check_onnx(m, graph)
    other = DeepMultiTaskRegressor(**KW).fit(X[:, :5], X[:, 1], task=np.where(
        task == "north", "south", task))
    with pytest.raises(ExportMismatch, match="tasks"):
        rm.check_onnx(other, path)


def test_the_card_says_what_the_graph_serves():
    rng, X, task = _long(seed=19)
    m = DeepMultiTaskRegressor("mmoe", n_experts=2, **KW).fit(X, X[:, 0], task=task)
    card = read_card(_session(rm.export_onnx(m)).get_modelmeta().custom_metadata_map)
    assert card["family"] == "deep" and card["net"] == "MMoE"
    assert card["verified_tolerance"] == 1e-4 and card["input_kind"] == "table"
    assert card["params"]["architecture"] == "mmoe" and card["tasks"] == sorted(IDS.tolist())
    assert np.allclose(card["x_mean"], m.x_mean_) and card["head_kinds"] == ["regression"] * 4


def test_what_is_refused_by_name():
    rng, X, task = _long(seed=20)
    m = DeepMultiTaskRegressor(loss="poisson", **KW).fit(
        X, rng.poisson(2, len(X)).astype(float), task=task)
    with pytest.raises(NotExportable, match="offset=True: the deep models"):
        rm.export_onnx(m, offset=True)
    with pytest.raises(NotExportable, match="not fitted"):
        rm.export_onnx(DeepMultiTaskRegressor())
    with pytest.raises(NotExportable, match="named_columns=True: .* not fitted on a DataFrame"):
        rm.export_onnx(m, named_columns=True)
    df = pd.DataFrame({"a": X[:, 0], "kind": rng.choice(np.array([1.5, 2.5]), len(X))})
    floats = DeepMultiTaskRegressor(categorical_features=["kind"], **KW).fit(df, X[:, 0],
                                                                           task=task)
    with pytest.raises(NotExportable, match="categorical column 'kind' holds values of type "
                                            "float"):
        rm.export_onnx(floats)
    with pytest.raises(ValueError, match="'nowhere' is not a task the model was fitted on"):
        rm.export_onnx(m, X=X[:2], task=["north", "nowhere"])
    custom = HardSharing(None, ["a"], trunk=torch.nn.Linear(4, 3), trunk_out=3)
    with pytest.raises(NotExportable, match="custom encoder or trunk, .*: give X"):
        rm.export_onnx(custom)
    with pytest.raises(NotExportable, match=r"X\['X'\] holds <U"):
        rm.export_onnx(custom, X=np.array([["a"] * 4]))


def test_the_command_line_exports_a_saved_deep_model(tmp_path, capsys):
    from regmtl.cli import main

    rng, X, task = _long(seed=21)
    m = DeepMultiTaskClassifier(**KW).fit(X, _labels(rng, task), task=task)
    m.save(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--dtype", "float32"]) == 0
    assert "verified by ONNX Runtime to 0.0001" in capsys.readouterr().out
    graph = onnx.load(str(tmp_path / "model.onnx"))
    Xh, th = _held_out(20)
    out = _run(graph, X=Xh.astype(np.float32), task=th)
    assert out["label"].tolist() == m.predict(Xh, task=th).tolist()


def test_a_net_of_recommender_ids():
    """A net whose encoder reads named columns (an id, a padded id sequence, a number): one
    input per column, ids outside the vocabulary read the unseen bucket as in torch."""
    from regmtl.deep.features import Categorical, FeatureColumns, IdSequence, Numeric

    set_seed(0)
    enc = FeatureColumns([Categorical("user", 100, dim=4), IdSequence("clicked", 50, dim=3),
                          Numeric("price")])
    net = MMoE(None, ["click", "buy"], n_experts=2, expert_hidden=(8,), tower_hidden=(4,),
               encoder=enc)
    rng = np.random.default_rng(22)
    batch = {"user": rng.integers(0, 120, 30),
             "clicked": np.where(rng.random((30, 4)) < 0.3, -1, rng.integers(0, 60, (30, 4))),
             "price": rng.gamma(2, 3, 30)}
    enc.adapt([{k: torch.as_tensor(v).float() if k == "price" else torch.as_tensor(v)
                for k, v in batch.items()}])
    graph = rm.export_onnx(net, X=batch)
    assert [i.name for i in graph.graph.input] == ["user", "clicked", "price"]
    held = {"user": rng.integers(0, 120, 7), "clicked": rng.integers(-1, 60, (7, 9)),
            "price": rng.gamma(2, 3, (7, 1))}
    out = _run(graph, **held)
    with torch.no_grad():
        ref = net.eval()({k: torch.as_tensor(v).float() if k == "price" else torch.as_tensor(v)
                          for k, v in held.items()})
    for name in ("click", "buy"):
        assert _rel(out[name], ref[name].numpy()) <= CLOSE


def test_bad_rows_to_check_on_are_named():
    """Rows of the wrong shape reach predict's own check (never a reshape's traceback), and a
    sample size that is not an int >= 1 is named."""
    rng = np.random.default_rng(23)
    imgs = rng.uniform(0, 1, (80, 1, 6, 6))
    task = rng.choice(IDS[:2], 80)
    m = DeepMultiTaskRegressor(**KW).fit(imgs, imgs.mean(axis=(1, 2, 3)), task=task)
    with pytest.raises(ValueError, match=r"images of shape \(1, 5, 5\) .* fitted on \(1, 6, 6\)"):
        rm.export_onnx(m, X=rng.uniform(0, 1, (4, 1, 5, 5)), task=task[:4])
    for bad in (0, None, 2.5, True):
        with pytest.raises(ValueError, match=r"n_check=.*: give an int >= 1"):
            rm.export_onnx(m, n_check=bad)
    graph = rm.export_onnx(m, n_check=3)
    with pytest.raises(ValueError, match=r"task: 3 ids for 4 rows of X"):
        rm.check_onnx(m, graph, X=imgs[:4], task=task[:3])
