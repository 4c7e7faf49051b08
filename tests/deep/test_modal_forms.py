"""``Modalities`` beyond the three wrappers' plain forms: tables with categorical columns, the
``Trainer`` on a net built by hand, the ESMM estimator, a transferred head, a warm start."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.metrics import r2_score, roc_auc_score  # noqa: E402

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ConvTrunk,
    DeepESMMClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
    FusedTrunk,
    HardSharing,
    Modalities,
    TableTrunk,
    TaskSpec,
    TextTrunk,
    Tokenizer,
    Trainer,
    transfer_head,
)

NAN = np.nan
SMALL = {"image": {"channels": (8,)}, "title": {"dim": 8}}  # small encoders: a fast test
EFFECT = {"oslo": 1.0, "rome": -1.0, "lima": 2.0, None: 0.0}


def _city_rows(n=600, seed=0):
    """A table of a city (categorical, some None) and a price in the hundreds, its first 30
    rows missing; the first task reads both, the second the image's ink."""
    rng = np.random.default_rng(seed)
    city = rng.choice(np.array(["oslo", "rome", "lima", None], dtype=object), n)
    price = rng.standard_normal(n) * 100 + 500
    img = rng.random((n, 8, 8))
    table = pd.DataFrame({"city": city, "price": price})
    table.loc[:29] = NAN
    y = np.column_stack([np.array([EFFECT[c] for c in city]) + (price - 500) / 100,
                         img.mean(axis=(1, 2)) * 10])
    return Modalities(image=img, table=table), y, table


@pytest.fixture(scope="module")
def city_model():
    X, y, table = _city_rows()
    model = DeepMultiTaskModel(kinds=["regression", "regression"], hidden=(32,),
                               trunk={"image": {"channels": (8,)}},
                               max_epochs=60, lr=3e-3, early_stopping=False,
                               random_state=0).fit(X[100:], y[100:])
    return model, X, y, table


def test_categorical_table_is_embedded_and_standardized(city_model):
    model, X, y, table = city_model
    assert model.modalities_["tables"] == {"table": {
        "columns": ["city", "price"],
        "categories": [["city", ["lima", "oslo", "rome", None]]]}}
    trunk = model.net_.encoder.encoders["table"]
    assert trunk.categories == [4] and trunk.n_numeric == 1
    # the price's standardization: the training rows that have a table (every row trains)
    present = table.iloc[100:]["price"].to_numpy()
    std = trunk.columns.numerics[0]
    np.testing.assert_allclose(float(std.mean[0]), present.mean(), rtol=1e-6)  # float32 rows
    np.testing.assert_allclose(float(std.std[0]), present.std(), rtol=1e-6)
    pred = model.predict(X[:100])
    # measured: R^2 0.998 on the held-out rows with a table (None is a city of its own)
    assert r2_score(y[30:100, 0], pred[30:100, 0]) >= 0.95
    assert np.isfinite(pred).all()


def test_unseen_category_reads_the_bucket_and_save_load(city_model, tmp_path):
    model, X, y, table = city_model
    rows = table.iloc[40:45].copy()
    rows["city"] = ["paris"] * 5  # unseen at fit
    Xu = Modalities(image=np.asarray(dict(iter(X))["image"][40:45]), table=rows)
    pred = model.predict(Xu)
    assert np.isfinite(pred).all()
    model.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    assert again.modalities_ == model.modalities_
    np.testing.assert_allclose(again.predict(X[:100]), model.predict(X[:100]), atol=1e-6)
    np.testing.assert_allclose(again.predict(Xu), pred, atol=1e-6)


def test_categorical_table_refusals(city_model):
    model, X, y, table = city_model
    img = np.asarray(dict(iter(X))["image"][:5])
    with pytest.raises(ValueError, match=r"columns \['city', 'price'\].*\['price', 'city'\]"):
        model.predict(Modalities(image=img, table=table[["price", "city"]][:5]))
    with pytest.raises(ValueError, match="gives an array"):
        model.predict(Modalities(image=img, table=np.zeros((5, 2))))
    bad = table.iloc[:40].copy()
    bad.loc[35, "price"] = NAN  # a number missing where the row is not
    with pytest.raises(ValueError, match=r"modality 'table': column 'price'"):
        Modalities(image=np.zeros((40, 8, 8)), table=bad)


def test_table_trunk_codes_and_config():
    trunk = TableTrunk(3, (4,), categories=[2])
    assert trunk.config() == {"in_features": 3, "hidden": [4], "categories": [2]}
    copy = TableTrunk.from_config(trunk.config())
    copy.load_state_dict(trunk.state_dict())
    x = torch.tensor([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5], [7.0, 0.0, 0.0]])
    torch.testing.assert_close(copy.eval()(x), trunk.eval()(x))
    emb = trunk.columns.embeddings[0].weight
    out = trunk.columns(trunk._split(x))
    torch.testing.assert_close(out[2, :emb.shape[1]], emb[2])  # code 7 >= 2: the bucket
    with pytest.raises(ValueError, match="categories"):
        TableTrunk(2, categories=[3, 3, 3])
    with pytest.raises(ValueError, match="categories must be a list of ints"):
        TableTrunk.from_config({"in_features": 2, "categories": [1.5]})
    # a table with no present row at fit: the identity standardization
    t = TableTrunk(2, ()).adapt([torch.zeros(0, 2)])
    assert not t.needs_adapt()
    torch.testing.assert_close(t(torch.ones(1, 2)), torch.ones(1, 2))


def _image_table_text(n=300, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((n, 8, 8))
    img[:20] = NAN
    table = rng.standard_normal((n, 2))
    texts = [None if i % 4 == 0 else ("red" if table[i, 0] > 0 else "blue") + " box"
             for i in range(n)]
    return img, table, texts


def test_trainer_reads_modalities_with_token_ids():
    img, table, texts = _image_table_text()
    X = Modalities(image=img, table=table, title=texts)
    targets = {"a": table[:, 0], "b": table[:, 1]}
    tok = Tokenizer().fit([t for t in texts if t])
    enc = FusedTrunk({"image": ConvTrunk(1, (4,)), "table": TableTrunk(2, (8,)),
                      "title": TextTrunk(tok.n_ids, dim=4)})
    net = HardSharing(None, [TaskSpec("a"), TaskSpec("b")], hidden=(16,), encoder=enc)
    with pytest.raises(ValueError, match=r"modality 'title' holds texts.*tokenized"):
        Trainer(net, max_epochs=1).fit((X, targets))
    Xt = X.tokenized({"title": tok})
    assert Xt.kinds["title"] == "tokens"
    np.testing.assert_array_equal(Xt.missing(), X.missing())
    trainer = Trainer(net, max_epochs=30, lr=1e-2, seed=0).fit((Xt, targets))
    # the trainer standardized the table on its rows (every row has one)
    std = enc.encoders["table"].columns.numerics[0]
    np.testing.assert_allclose(std.mean.numpy(), table.mean(axis=0), rtol=1e-6)
    pred = trainer.predict(Xt)
    # measured: R^2 0.98 and 0.97 on the training rows
    assert r2_score(table[:, 0], pred["a"]) >= 0.8 and r2_score(table[:, 1], pred["b"]) >= 0.8
    with pytest.raises(ValueError, match="one fitted Tokenizer per text modality"):
        X.tokenized({})


def test_esmm_on_modalities(tmp_path):
    rng = np.random.default_rng(0)
    img, table, texts = _image_table_text(600)
    click = (table[:, 0] + 0.3 * rng.standard_normal(600) > 0).astype(float)
    buy = np.where(click == 1, (table[:, 1] > 0.5).astype(float), NAN)
    X = Modalities(image=img, table=table, title=texts)
    m = DeepESMMClassifier(hidden=(16,), tower_hidden=(8,), max_epochs=30, lr=3e-3,
                           modality_dropout=0.1, trunk=SMALL).fit(X, np.column_stack([click, buy]))
    assert isinstance(m.net_.encoder, FusedTrunk)
    assert m.net_.encoder.modality_dropout == 0.1
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba[:, 2], proba[:, 0] * proba[:, 1], rtol=1e-6)
    # measured: click AUC 0.96 on the training rows
    assert roc_auc_score(click, proba[:, 0]) >= 0.85
    m.save(tmp_path / "esmm")
    np.testing.assert_allclose(regmtl.load(tmp_path / "esmm").predict_proba(X), proba,
                               atol=1e-6)


def test_transferred_head_reads_modalities(tmp_path):
    img, table, texts = _image_table_text(400)
    X = Modalities(image=img, table=table, title=texts)
    src = DeepMultiTaskRegressor(hidden=(32,), max_epochs=40, lr=3e-3, trunk=SMALL).fit(X, table)
    new = table[:, 0] - table[:, 1]
    head = transfer_head(src, X[:300], new[:300], epochs=80, lr=1e-2)
    # measured: R^2 0.95 on the held-out rows, from the frozen fused layers
    assert head.score(X[300:], new[300:]) >= 0.8
    head.save(tmp_path / "head")
    np.testing.assert_allclose(regmtl.load(tmp_path / "head").predict(X[300:]),
                               head.predict(X[300:]), atol=1e-6)
    with pytest.raises(ValueError, match=r"missing: \['table', 'title'\]"):
        transfer_head(src, Modalities(image=img[20:]), new[20:], epochs=1)


def test_warm_start_continues_the_fused_net():
    img, table, texts = _image_table_text()
    X = Modalities(image=img, table=table, title=texts)
    m = DeepMultiTaskRegressor(hidden=(16,), max_epochs=2, warm_start=True,
                               early_stopping=False, trunk={"image": {"channels": (8,)}})
    m.fit(X, table)
    tokenizers = m.modalities_["tokenizers"]
    before = {k: v.clone() for k, v in m.net_.encoder.state_dict().items()}
    m.set_params(max_epochs=4).fit(X, table)  # two more epochs on the same net
    assert m.modalities_["tokenizers"] == tokenizers and m.trainer_.history_.shape[0] == 4
    after = m.net_.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match=r"missing: \['title'\].*warm_start=False"):
        m.fit(Modalities(image=img, table=table), table)
    with pytest.raises(ValueError, match="continues the last net, which read a Modalities"):
        m.fit(table, table)


def test_a_bag_of_words_modality_in_the_long_form(tmp_path):
    """Sparse rows keep their kind when the wrappers split off validation rows (early
    stopping) and route the long form's rows; the bag of words carries the task's signal."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n = 400
    img = rng.random((n, 8, 8))
    bag = sp.random(n, 30, density=0.1, random_state=0, format="csr")
    task = np.resize(np.array(["a", "b"]), n)
    y = np.asarray(bag[:, :5].sum(axis=1)).ravel() * 3 + rng.standard_normal(n) * 0.05
    X = Modalities(image=img, bag=bag)
    m = DeepMultiTaskRegressor(hidden=(16,), max_epochs=60, lr=1e-2,
                               trunk={"image": {"channels": (4,)}, "bag": {"mode": "sum"}}
                               ).fit(X[:300], y[:300],
                                                                        task=task[:300])
    pred = m.predict(X[300:], task=task[300:])
    # measured: R^2 0.98 on the held-out rows (sum pooling: the target is a sum of weights)
    assert r2_score(y[300:], pred) >= 0.9
    m.save(tmp_path / "bag")
    np.testing.assert_allclose(regmtl.load(tmp_path / "bag").predict(X[300:], task=task[300:]),
                               pred, atol=1e-6)


def test_sparse_rows_subset_keeps_the_rows():
    import scipy.sparse as sp

    from regmtl.deep.inputs import SparseRows

    M = sp.random(6, 4, density=0.5, random_state=1, format="csr")
    rows = SparseRows(M)
    sub = rows.subset(np.array([4, 0, 4]))
    assert isinstance(sub, SparseRows) and sub.shape == (3, 4)
    np.testing.assert_array_equal(sub[torch.arange(3)].to_dense().numpy(),
                                  M.toarray()[[4, 0, 4]].astype(np.float32))
