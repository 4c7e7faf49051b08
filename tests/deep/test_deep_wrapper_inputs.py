"""The scikit-learn wrappers take every input the Trainer takes: images (conv trunk), SciPy
sparse bags of words, token ids and raw texts (the built-in tokenizer), and DataFrames with
declared categorical columns, in every task form, saved and loaded.

Each kind is fit through a wrapper and through a :class:`~regmtl.deep.Trainer` fed the same
rows, the same net and the same seed (the twin below builds what the wrapper builds): the
predicted probabilities agree to 1e-6. Real data: scikit-learn's digits (two tasks: parity and
digit > 4), and the 20 Newsgroups pair of ``../shared/data`` (or ``REGMTL_DATA``) as a bag of
words, as token ids and as texts (the documents written back as words "w<column>"; the file
does not hold the words), skipped cleanly where absent. Small nets, a few epochs, one thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from conftest import DATA_HOME, needs_data  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import regmtl  # noqa: E402
from regmtl.datasets import load_newsgroups  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ConvTrunk,
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    HardSharing,
    TaskSpec,
    TextTrunk,
    Trainer,
    set_seed,
)
from regmtl.deep.tokenizer import Tokenizer  # noqa: E402

DATA = DATA_HOME
needs_news = needs_data("newsgroup_malsar")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

KW = dict(hidden=(16,), max_epochs=3, batch_size=64, lr=1e-2, early_stopping=False,
          random_state=0, device="cpu")
TOL = 1e-6


# ----------------------------------------------------------------------------- helpers
def twin(encoder_fn, X, targets, n_tasks=2):
    """Probabilities of P(y = 1) per task from a Trainer on ``X`` with the wrapper's net
    (``KW``), seed and options: ``targets`` is ``{name: y}`` (a column per task) or
    ``(rows, y)`` (each row its task's)."""
    seed = int(np.random.default_rng(KW["random_state"]).integers(2**31))
    set_seed(seed)
    specs = [TaskSpec(f"t{k}", kind="binary", metrics=("accuracy",)) for k in range(n_tasks)]
    net = HardSharing(None, specs, hidden=KW["hidden"], head_hidden=(), encoder=encoder_fn())
    net.heads.start_shared()
    trainer = Trainer(net, weighting="equal", optimizer="adam", lr=KW["lr"],
                      batch_size=KW["batch_size"], max_epochs=KW["max_epochs"],
                      early_stopping=None, device="cpu", distributed=False, seed=seed)
    trainer.fit((X, targets))
    return trainer


def digits(n=600):
    d = load_digits()
    y = d.target[:n]
    return d.images[:n], np.column_stack([y % 2, (y > 4).astype(int)])


def news():
    data = load_newsgroups("comp.vs.sci", data_home=DATA)
    rng = np.random.default_rng(0)
    picks = [rng.permutation(X.shape[0])[:400] for X in data.X]  # (the files sort by label)
    Xs = [sp.csr_matrix(X)[i].astype(np.float32) for X, i in zip(data.X, picks, strict=True)]
    return Xs, [np.asarray(y)[i].astype(int) for y, i in zip(data.y, picks, strict=True)]


def as_texts(X):
    """Each row of a bag of words written back as a text of words "w<column>"."""
    X = sp.csr_matrix(X)
    return np.array([" ".join(f"w{j}" for j, c in zip(X.indices[a:b], X.data[a:b],
                                                        strict=True) for _ in range(int(c)))
                     for a, b in zip(X.indptr[:-1], X.indptr[1:], strict=True)], dtype=object)


def per_row(ys):
    rows = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return rows, np.concatenate(ys).astype(np.float64)


def round_trip(est, X, tmp_path, **kw):
    est.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    a, b = est.predict_proba(X, **kw), again.predict_proba(X, **kw)
    for u, v in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b],
                    strict=True):
        np.testing.assert_array_equal(u, v)
    return again


# ----------------------------------------------------------------------------- images
def test_images_match_the_trainer_and_round_trip(tmp_path):
    X, Y = digits()
    trunk = {"channels": (8, 16)}
    clf = DeepMultiTaskClassifier(trunk=trunk, **KW).fit(X, Y)
    assert clf.input_kind_ == "images" and clf.input_size_ == [1, 8, 8]
    ref = twin(lambda: ConvTrunk(1, (8, 16)), X.astype(np.float32),
               {"t0": Y[:, 0].astype(float), "t1": Y[:, 1].astype(float)})
    want = ref.predict(X.astype(np.float32))
    got = clf.predict_proba(X)
    for k in range(2):
        assert np.abs(got[k][:, 1] - want[f"t{k}"]).max() <= TOL
    assert clf.score(X, Y) > 0.6  # three epochs of a tiny net, well above chance
    # (n, C, H, W) as a torch tensor gives the same predictions as (n, H, W)
    same = clf.predict_proba(torch.from_numpy(X[:, None]))
    np.testing.assert_allclose(same[0], got[0], atol=1e-6)
    round_trip(clf, X, tmp_path)


def test_images_refuse_another_shape_naming_it():
    X, Y = digits(200)
    clf = DeepMultiTaskClassifier(trunk={"channels": (4,)}, **KW).fit(X, Y)
    with pytest.raises(ValueError, match=r"images of shape \(1, 8, 7\).*fitted on \(1, 8, 8\)"):
        clf.predict(X[:, :, :7])
    with pytest.raises(ValueError, match="fitted on 'images' input"):
        clf.predict(X.reshape(len(X), -1))


def test_images_in_every_task_form():
    X, Y = digits(300)
    kw = {**KW, "trunk": {"channels": (4,)}, "max_epochs": 1}
    task = np.where(np.arange(300) % 2, "odd", "even")
    long = DeepMultiTaskClassifier(**kw).fit(X, Y[:, 1], task=task)
    assert long.predict(X[:7], task=task[:7]).shape == (7,)
    lists = DeepMultiTaskRegressor(**kw).fit([X[:100], X[100:]], [Y[:100, 0] * 1.0,
                                                                 Y[100:, 1] * 1.0])
    assert [p.shape for p in lists.predict([X[:3], X[3:8]])] == [(3,), (5,)]
    dicts = DeepMultiTaskModel(**kw).fit({"a": X[:150], "b": X[150:]},
                                         {"a": Y[:150, 0], "b": Y[150:, 1] * 1.0},)
    assert set(dicts.predict({"a": X[:2], "b": X[2:4]})) == {"a", "b"}
    rank5 = DeepMultiTaskClassifier(**kw).fit(X[:, None, None], Y)  # (n, 1, 1, H, W)
    assert rank5.input_size_ == [1, 8, 8]


# ----------------------------------------------------------------------------- text
@needs_news
def test_sparse_bag_of_words_matches_the_trainer_and_round_trip(tmp_path):
    Xs, ys = news()
    kw = {**KW, "trunk": {"dim": 16}}
    clf = DeepMultiTaskClassifier(**kw).fit(Xs, ys)
    assert clf.input_kind_ == "sparse" and clf.input_size_ == [Xs[0].shape[1]]
    rows, y = per_row(ys)
    V = Xs[0].shape[1]
    ref = twin(lambda: TextTrunk(V, dim=16), sp.vstack(Xs).tocsr(), (rows, y))
    got = clf.predict_proba(Xs)
    for k in range(2):
        want = ref.predict(Xs[k])[f"t{k}"]
        assert np.abs(got[k][:, 1] - want).max() <= TOL
    assert clf.score(Xs, ys) > 0.8
    round_trip(clf, Xs, tmp_path)
    with pytest.raises(ValueError, match="1999 columns"):
        clf.predict([X[:, :1999] for X in Xs])


@needs_news
def test_raw_texts_and_token_ids_match_the_trainer_and_round_trip(tmp_path):
    Xs, ys = news()
    texts = [as_texts(X) for X in Xs]
    options = {"min_count": 2, "max_size": 1500, "max_length": 200}
    kw = {**KW, "trunk": {"dim": 16}}
    clf = DeepMultiTaskClassifier(tokenizer=options, **kw).fit(texts, ys)
    tok = Tokenizer(**options).fit(np.concatenate(texts))
    assert clf.tokenizer_.words == tok.words and len(tok.words) == 1500
    ids = [tok.transform(t) for t in texts]
    L = max(i.shape[1] for i in ids)
    ids = [np.pad(i, ((0, 0), (0, L - i.shape[1]))) for i in ids]
    rows, y = per_row(ys)
    ref = twin(lambda: TextTrunk(tok.n_ids, dim=16), np.concatenate(ids), (rows, y))
    got = clf.predict_proba(texts)
    for k in range(2):
        assert np.abs(got[k][:, 1] - ref.predict(tok.transform(texts[k]))[f"t{k}"]).max() <= TOL
    assert clf.score(texts, ys) > 0.8
    again = round_trip(clf, texts, tmp_path)
    assert again.tokenizer_.words == tok.words
    # the same ids given as token ids (long form): the same fit
    task = np.concatenate([np.full(len(t), f"t{k}") for k, t in enumerate(texts)])
    by_ids = DeepMultiTaskClassifier(input_kind="tokens", **kw).fit(np.concatenate(ids),
                                                                     y.astype(int), task=task)
    assert by_ids.input_size_ == [int(np.concatenate(ids).max()) + 1]
    ref = twin(lambda: TextTrunk(by_ids.input_size_[0], dim=16), np.concatenate(ids), (rows, y))
    p = by_ids.predict_proba(ids[1], task=np.full(len(ids[1]), "t1"))
    assert np.abs(p[:, 1] - ref.predict(ids[1])["t1"]).max() <= TOL
    round_trip(by_ids, ids[0], tmp_path, task=np.full(len(ids[0]), "t0"))


def test_tokenizer_vocabulary_and_tampering(tmp_path):
    texts = ["The cat sat on the mat.", "A dog sat", "the DOG ran", "cats and dogs"] * 10
    y = np.array([0, 1, 1, 0] * 10)
    clf = DeepMultiTaskClassifier(tokenizer={"min_count": 10, "max_length": 4}, **KW)
    clf.fit(pd.Series(texts), y)
    assert clf.tokenizer_.words[:3] == ["the", "sat", "dog"]
    ids = clf.tokenizer_.transform(["the zebra sat by the mat"])
    assert ids.tolist() == [[1, clf.tokenizer_.oov_id, 2, clf.tokenizer_.oov_id]]
    assert clf.predict(["a new text", "the cat"]).shape == (2,)
    clf.save(tmp_path / "m")
    import json

    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["estimator"]["attributes"]["tokenizer_"]["words"][0] = "The Cat"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="refused.*cannot produce"):
        regmtl.load(tmp_path / "m")
    config["estimator"]["attributes"]["tokenizer_"]["words"][0] = "zebra"
    config["estimator"]["attributes"]["tokenizer_"]["words"].append("extra")
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="refused.*vocabulary does not fit"):
        regmtl.load(tmp_path / "m")


# ----------------------------------------------------------------------------- tables
@pytest.mark.parametrize("cls", [DeepMultiTaskRegressor, DeepMultiTaskClassifier,
                                 DeepMultiTaskModel])
def test_declared_categorical_columns_in_every_wrapper(cls, tmp_path):
    X, Y = digits(400)
    frame = pd.DataFrame(X.reshape(len(X), -1)[:, 18:22], columns=list("abcd"))
    frame["store"] = np.arange(len(X)) % 37  # integer ids, declared
    frame["task"] = np.where(Y[:, 0] == 1, "odd", "even")
    y = Y[:, 1] * (1.0 if cls is DeepMultiTaskRegressor else 1)
    est = cls(categorical_features=["store"], **KW).fit(frame, y, task="task")
    assert list(est.categories_) == ["store"] and len(est.categories_["store"]) == 37
    pred = est.predict(frame, task="task")
    est.save(tmp_path / "m")
    np.testing.assert_array_equal(regmtl.load(tmp_path / "m").predict(frame, task="task"), pred)


def test_categorical_features_with_images_is_refused():
    X, Y = digits(50)
    with pytest.raises(ValueError, match="categorical_features=.*names DataFrame columns.*"
                                         "images"):
        DeepMultiTaskClassifier(categorical_features=["a"], **KW).fit(X, Y)


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("X, match", [
    (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "2-D array of strings"),
    ([[1.0, 2.0], [3.0], [4.0, 5.0]], "ragged list"),
    (["a text", None, "another"], "row 1 is None, not a string"),
    ([b"a text", b"more", b"another"], r"X holds bytes.*decode"),
    (np.array([b"a text", b"more", b"another"]), r"X holds bytes.*decode"),
    (np.zeros((3, 1, 0, 8)), r"X: images of shape \(1, 0, 8\) hold no pixels"),
])
def test_unread_inputs_name_the_argument_and_the_fix(X, match):
    with pytest.raises(ValueError, match=match):
        DeepMultiTaskRegressor(**KW).fit(X, np.arange(3.0))


def test_images_without_rows_name_x():
    with pytest.raises(ValueError, match="X has no rows"):
        DeepMultiTaskRegressor(**KW).fit(np.zeros((0, 1, 8, 8)), np.zeros(0))
    X, Y = digits(50)
    clf = DeepMultiTaskClassifier(trunk={"channels": (4,)}, **KW).fit(X, Y)
    with pytest.raises(ValueError, match="X has no rows"):
        clf.predict(X[:0])


def test_declared_kinds_are_checked():
    X, Y = digits(50)
    with pytest.raises(ValueError, match="input_kind='tokens' reads integer token ids"):
        DeepMultiTaskClassifier(input_kind="tokens", **KW).fit(X, Y)
    with pytest.raises(ValueError, match="input_kind='text'"):
        DeepMultiTaskClassifier(input_kind="text", **KW).fit(X, Y)
    with pytest.raises(ValueError, match="trunk: 'dim' is not an option"):
        DeepMultiTaskClassifier(trunk={"dim": 4}, **KW).fit(X, Y)


def test_sparse_formats_stay_sparse_and_kinds_must_match_the_fit():
    rng = np.random.default_rng(0)
    dense = (rng.random((120, 30)) < 0.1) * rng.integers(1, 4, (120, 30))
    y = (dense[:, :5].sum(axis=1) > 0).astype(int)
    for fmt in (sp.coo_matrix, sp.csc_matrix, sp.csr_array):
        clf = DeepMultiTaskClassifier(trunk={"dim": 4}, **KW).fit(fmt(dense), y)
        assert clf.input_kind_ == "sparse"
        assert type(clf.net_inputs(fmt(dense))).__name__ == "SparseRows"  # never made dense
    texts = {"a": ["one two", "two three"] * 10, "b": ["three four", "four one"] * 10}
    by_task = DeepMultiTaskClassifier(**KW).fit(texts, {"a": [0, 1] * 10, "b": [1, 0] * 10})
    assert set(by_task.predict({"b": ["four"], "a": ["one"]})) == {"a", "b"}
    table = DeepMultiTaskClassifier(**KW).fit(dense.astype(float), y)
    with pytest.raises(ValueError, match="read as 'images' input.*fitted on 'table'"):
        table.predict(dense.reshape(120, 5, 6))


def test_options_of_another_input_kind_are_warned_about():
    X, Y = digits(60)
    with pytest.warns(UserWarning, match="tokenizer=.*has no effect: X is images input"):
        DeepMultiTaskClassifier(tokenizer={"min_count": 2}, trunk={"channels": (4,)},
                                **KW).fit(X, Y)
    with pytest.warns(UserWarning, match="trunk=.*has no effect: X is table input"):
        DeepMultiTaskClassifier(trunk={"dim": 4}, **KW).fit(X.reshape(60, -1), Y)


@pytest.mark.parametrize("cls", [DeepMultiTaskRegressor, DeepMultiTaskClassifier])
def test_warm_start_on_another_feature_count_names_x_and_the_fix(cls):
    """warm_start=True continues the last net, whose input layer has the features of that
    fit: another count raised NumPy's 'operands could not be broadcast'; now a ValueError
    with both counts and the two ways out, the fitted net left as it was."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 5)) for _ in range(2)]
    ys = ([rng.standard_normal(40) for _ in Xs] if cls is DeepMultiTaskRegressor
          else [rng.integers(0, 2, 40) for _ in Xs])
    model = cls(hidden=(4,), max_epochs=2, warm_start=True, random_state=0).fit(Xs, ys)
    before = np.asarray(model.predict(Xs[0], task=np.zeros(40, dtype=int)))
    wider = [rng.standard_normal((40, 7)) for _ in range(2)]
    with pytest.raises(ValueError) as info:
        model.fit(wider, ys)
    msg = str(info.value)
    for word in ("X has 7 features", f"{cls.__name__} was fitted with 5 features",
                 "warm_start=True", "the same features", "warm_start=False"):
        assert word in msg, msg
    assert model.n_features_in_ == 5
    np.testing.assert_array_equal(model.predict(Xs[0], task=np.zeros(40, dtype=int)), before)
    model.set_params(warm_start=False).fit(wider, ys)  # the fix: a new net on the new features
    assert model.n_features_in_ == 7
