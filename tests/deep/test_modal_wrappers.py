"""The scikit-learn wrappers on ``Modalities``: a digit image, a text and a table per row, some
missing, three tasks in the long form; forms, parameters, save and load, refusals."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    FusedTrunk,
    Modalities,
)

COLOURS = ["red", "green", "blue", "yellow"]
FILLER = ["box", "small", "lamp", "the", "a", "old", "new", "shiny", "round", "one", "big"]
KINDS = {"parity": "classification", "colour": "classification", "value": "regression"}


def _samples(seed=0):
    """Each digit with a text naming a colour among filler words and a table column."""
    rng = np.random.default_rng(seed)
    d = load_digits()
    img = d.images / 16.0
    n = len(img)
    col = rng.integers(0, len(COLOURS), n)
    text = [" ".join([*rng.choice(FILLER, 2), COLOURS[c], *rng.choice(FILLER, 2)]) for c in col]
    table = rng.standard_normal((n, 1))
    value = 5 * img.mean(axis=(1, 2)) + table[:, 0]  # the image's ink plus the table's column
    return rng, img, d.target % 2, np.array(COLOURS)[col], text, table, value


@pytest.fixture(scope="module")
def three_tasks():
    """The long form: every sample once per task, 20 % of rows without text and 10 % without
    image; a model fitted on 80 % of the rows."""
    rng, img, parity, colour, text, table, value = _samples()
    n = len(img)
    tasks = np.repeat(list(KINDS), n)
    idx = np.tile(np.arange(n), 3)
    N = len(idx)
    no_text, no_image = rng.random(N) < 0.2, rng.random(N) < 0.1
    images = img[idx].copy()
    images[no_image] = np.nan
    texts = [None if m else text[i] for i, m in zip(idx, no_text, strict=True)]
    y = np.empty(N, dtype=object)
    for name, v in (("parity", parity), ("colour", colour), ("value", value)):
        y[tasks == name] = v[idx[tasks == name]]
    X = Modalities(image=images, text=texts, table=table[idx])
    perm = rng.permutation(N)
    tr, te = perm[: int(0.8 * N)], perm[int(0.8 * N):]
    model = DeepMultiTaskModel(kinds=KINDS, hidden=(64,), max_epochs=40, batch_size=128,
                               lr=3e-3, patience=8).fit(X[tr], y[tr], task=tasks[tr])
    return dict(model=model, X=X, y=y, tasks=tasks, tr=tr, te=te, no_text=no_text,
                no_image=no_image)


def test_three_tasks_long_form(three_tasks):
    m, X, y, tasks, te = (three_tasks[k] for k in ("model", "X", "y", "tasks", "te"))
    assert isinstance(m.net_.encoder, FusedTrunk)
    assert m.modalities_["names"] == ["image", "text", "table"]
    assert m.modalities_["kinds"] == {"image": "images", "text": "text", "table": "table"}
    pred = m.predict(X[te], task=tasks[te])
    assert pred.shape == (len(te),)
    t = tasks[te]
    assert np.isfinite(pred[t == "value"].astype(float)).all()
    has_text, has_image = ~three_tasks["no_text"][te], ~three_tasks["no_image"][te]
    # measured: parity 0.943 over all rows (0.994 with the image), colour 1.000 on the rows
    # with a text (0.831 over all: a row without text can only guess), value R^2 0.984
    s = t == "parity"
    assert accuracy_score(y[te][s].astype(int), pred[s].astype(int)) >= 0.9
    s = (t == "colour") & has_text
    assert accuracy_score(y[te][s].astype(str), pred[s].astype(str)) >= 0.95
    s = t == "value"
    assert r2_score(y[te][s].astype(float), pred[s].astype(float)) >= 0.9
    assert r2_score(y[te][s & has_image].astype(float),
                    pred[s & has_image].astype(float)) >= 0.9
    assert 0 <= m.score(X[te], y[te], task=tasks[te]) <= 1


def test_save_and_load(three_tasks, tmp_path):
    m, X, tasks, te = (three_tasks[k] for k in ("model", "X", "tasks", "te"))
    m.save(tmp_path / "modal")
    again = regmtl.load(tmp_path / "modal")
    assert again.modalities_ == m.modalities_
    a, b = m.predict(X[te], task=tasks[te]), again.predict(X[te], task=tasks[te])
    v = tasks[te] == "value"
    np.testing.assert_allclose(b[v].astype(float), a[v].astype(float), atol=1e-6)
    assert (b[~v] == a[~v]).all()
    c = tasks[te] == "colour"
    np.testing.assert_allclose(again.predict_proba(X[te][c], task=tasks[te][c]),
                               m.predict_proba(X[te][c], task=tasks[te][c]), atol=1e-6)


def test_names_and_kinds_checked_at_predict(three_tasks):
    m, tasks = three_tasks["model"], three_tasks["tasks"]
    n = 5
    img = np.zeros((n, 8, 8))
    with pytest.raises(ValueError, match=r"missing: \['table'\]"):
        m.predict(Modalities(image=img, text=["red"] * n), task=tasks[:n])
    with pytest.raises(ValueError, match="'table' was 'table' and is 'text'"):
        m.predict(Modalities(image=img, text=["red"] * n, table=["a"] * n), task=tasks[:n])
    with pytest.raises(ValueError, match="fitted on a Modalities"):
        m.predict(np.zeros((n, 3)), task=tasks[:n])
    with pytest.raises(ValueError, match="images of shape"):
        m.predict(Modalities(image=np.zeros((n, 4, 4)), text=["red"] * n,
                             table=np.zeros((n, 1))), task=tasks[:n])


def _shared(n=200, seed=1):
    rng, img, parity, colour, text, table, value = _samples(seed)
    X = Modalities(image=img[:n], text=text[:n], table=table[:n])
    return X, parity[:n], colour[:n], value[:n]


FAST = dict(hidden=(16,), max_epochs=3, batch_size=64)
SMALL = {"image": {"channels": (8, 16)}, "text": {"dim": 16}}


def test_regressor_and_classifier_shared_y(tmp_path):
    X, parity, colour, value = _shared()
    reg = DeepMultiTaskRegressor(fusion="gated", modality_dropout=0.2, **FAST)
    reg.fit(X, np.column_stack([value, 2 * value]))
    assert reg.net_.encoder.fusion == "gated" and reg.net_.encoder.modality_dropout == 0.2
    pred = reg.predict(X)
    assert pred.shape == (len(X), 2) and np.isfinite(pred).all()
    reg.save(tmp_path / "reg")
    np.testing.assert_allclose(regmtl.load(tmp_path / "reg").predict(X), pred, atol=1e-6)
    clf = DeepMultiTaskClassifier(**FAST).fit(X, np.column_stack([parity, colour]))
    proba = clf.predict_proba(X)
    assert [p.shape for p in proba] == [(len(X), 2), (len(X), 4)]
    labels = clf.predict(X)
    Y = np.column_stack([parity, colour])
    assert labels.shape == (len(X), 2)
    # the score: each task's accuracy of its predicted labels, averaged (computed here)
    assert clf.score(X, Y) == pytest.approx(np.mean([(labels[:, k] == Y[:, k]).mean()
                                                     for k in range(2)]), abs=1e-12)
    for k, p in enumerate(proba):  # the labels are the most probable classes
        np.testing.assert_array_equal(labels[:, k], clf.classes_[k][np.argmax(p, axis=1)])


def test_parameters():
    X, parity, colour, value = _shared(60)
    p = DeepMultiTaskRegressor().get_params()
    assert p["fusion"] == "concat" and p["modality_dropout"] == 0.0
    with pytest.raises(ValueError, match="fusion"):
        DeepMultiTaskRegressor(fusion="sum", **FAST).fit(X, value)
    with pytest.raises(ValueError, match="modality_dropout"):
        DeepMultiTaskRegressor(modality_dropout=1.0, **FAST).fit(X, value)
    table = np.random.default_rng(0).standard_normal((60, 3))
    with pytest.raises(ValueError, match="fusion='gated' has no effect"):
        DeepMultiTaskRegressor(fusion="gated", **FAST).fit(table, value)
    with pytest.raises(ValueError, match="modality_dropout=0.5 has no effect"):
        DeepMultiTaskClassifier(modality_dropout=0.5, **FAST).fit(table, parity)
    with pytest.raises(ValueError, match="trunk gives each modality's encoder options"):
        DeepMultiTaskRegressor(trunk={"dim": 8}, **FAST).fit(X, value)
    with pytest.raises(ValueError, match=r"trunk names \['photo'\]"):
        DeepMultiTaskRegressor(trunk={"photo": {}}, **FAST).fit(X, value)
    with pytest.raises(ValueError, match=r"trunk\['table'\]: 'dim' is not an option.*hidden"):
        DeepMultiTaskRegressor(trunk={"table": {"dim": 8}}, **FAST).fit(X, value)
    m = DeepMultiTaskRegressor(trunk={"image": {"channels": (4,)}, "text": {"dim": 6},
                                      "table": {"hidden": (5,)}}, **FAST).fit(X, value)
    enc = m.net_.encoder.encoders
    assert (enc["image"].channels, enc["text"].out_features, enc["table"].out_features) == \
        ([4], 6, 5)
    with pytest.raises(ValueError, match="mixes Modalities with other inputs"):
        DeepMultiTaskRegressor(**FAST).fit([X, table], [value, value])
    with pytest.raises(ValueError, match="give every task the same modalities"):
        DeepMultiTaskRegressor(**FAST).fit([X, Modalities(image=np.zeros((60, 8, 8)))],
                                           [value, value])
    with pytest.raises(ValueError, match=r"Modalities\(\*\*X\)"):
        DeepMultiTaskRegressor(**FAST).fit({"a": table, "b": ["red"] * 60}, [value, value])


def test_tokenizer_options_and_fit_on_table_after_modalities():
    X, parity, colour, value = _shared(60)
    m = DeepMultiTaskRegressor(tokenizer={"min_count": 2}, **FAST).fit(X, value)
    assert "text" in m.modalities_["tokenizers"]
    table = np.random.default_rng(0).standard_normal((60, 3))
    m.set_params(tokenizer=None).fit(table, value)  # a refit on a table forgets them
    assert not hasattr(m, "modalities_") and m.predict(table).shape == (60,)


def test_lists_and_dicts_of_modalities(tmp_path):
    X, parity, colour, value = _shared(120)
    a, b = X[:70], X[70:]
    reg = DeepMultiTaskRegressor(**FAST).fit([a, b], [value[:70], 2 * value[70:]])
    assert reg.input_form_ == "list" and reg.n_tasks_ == 2
    pred = reg.predict([a, b])
    assert [p.shape for p in pred] == [(70,), (50,)]
    assert all(np.isfinite(p).all() for p in pred)
    # a row's prediction depends on its own task and modalities only: the same numbers when
    # the other task's rows change
    alone = reg.predict([a, b[:3]])
    np.testing.assert_allclose(alone[0], pred[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(alone[1], pred[1][:3], rtol=1e-6, atol=1e-6)
    clf = DeepMultiTaskClassifier(**FAST).fit({"parity": a, "colour": b},
                                              {"parity": parity[:70], "colour": colour[70:]})
    out = clf.predict({"parity": b, "colour": a})
    assert list(out) == ["parity", "colour"] and out["colour"].shape == (70,)
    assert set(out["colour"]) <= set(COLOURS)
    clf.save(tmp_path / "clf")
    again = regmtl.load(tmp_path / "clf").predict({"parity": b, "colour": a})
    assert all((again[k] == out[k]).all() for k in out)
