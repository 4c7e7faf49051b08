"""Modalities (construction, indexing, checks, missing rows, the carried dict) and FusedTrunk
(shapes, no NaN, the missing embeddings, gates, modality dropout, configs, determinism, and a
two-modality learning check)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from regmtl.deep import (  # noqa: E402
    CGC,
    PLE,
    ConvTrunk,
    FusedTrunk,
    HardSharing,
    MMoE,
    Modalities,
    TableTrunk,
    TextTrunk,
    load_checkpoint,
    save_checkpoint,
)
from regmtl.deep.inputs import n_rows, take, to_device  # noqa: E402
from regmtl.deep.modalities import MISSING_KEY  # noqa: E402
from regmtl.deep.trunks import encoder_from_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAN = np.nan


def _modalities():
    images = np.ones((4, 1, 6, 6), dtype=np.float32)
    images[2] = NAN
    table = np.array([[1.0, 2.0], [NAN, NAN], [3.0, 4.0], [5.0, 6.0]])
    texts = ["red mug", None, "blue lamp", float("nan")]
    bow = sp.csr_matrix(np.eye(4, 7))
    return Modalities(photo=images, price=table, title=texts, words=bow)


def test_construction_kinds_and_missing():
    m = _modalities()
    assert len(m) == 4 and m.names == ("photo", "price", "title", "words")
    assert m.kinds == {"photo": "images", "price": "table", "title": "text", "words": "sparse"}
    assert m.missing().tolist() == [[False, False, False, False], [False, True, True, False],
                                    [True, False, False, False], [False, False, True, False]]
    assert [name for name, _ in m] == list(m.names)
    assert "4 rows" in repr(m)
    frame = pd.DataFrame({"a": [1.0, NAN], "b": [2, NAN]})
    assert Modalities(t=frame, s=pd.Series(["x", "y"])).missing().tolist() == [
        [False, False], [True, False]]
    ids = np.array([[1, 2], [3, 0]])
    assert Modalities.from_dict({"ids": ids}, kinds={"ids": "tokens"}).kinds == {"ids": "tokens"}
    assert Modalities(ids=ids).kinds == {"ids": "table"}
    # a 1-D numeric column is a one-column table
    assert Modalities(p=np.array([1.0, 2.0])).carried()["p"].shape == (2, 1)


def test_indexing():
    m = _modalities()
    for idx, rows in [(slice(1, 3), [1, 2]), (np.array([3, 0]), [3, 0]),
                      (np.array([True, False, True, False]), [0, 2]), (2, [2]),
                      (torch.tensor([1]), [1]), ([-1], [3])]:
        sub = m[idx]
        assert len(sub) == len(rows) and sub.names == m.names and sub.kinds == m.kinds
        assert np.array_equal(sub.missing(), m.missing()[rows])
        assert dict(sub)["title"].tolist() == [dict(m)["title"][r] for r in rows]
        assert dict(sub)["words"].toarray().tolist() == dict(m)["words"][rows].toarray().tolist()
    t = Modalities(x=torch.arange(6.0).reshape(3, 2))
    assert dict(t[[2, 0]])["x"].tolist() == [[4.0, 5.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="bool mask"):
        m[np.array([True, False])]
    with pytest.raises(ValueError, match="no rows"):
        m[np.array([], dtype=int)]
    with pytest.raises(IndexError):
        m[[4]]
    with pytest.raises(ValueError, match="selected by"):
        m[np.array([0.5])]


@pytest.mark.parametrize("make, match", [
    (lambda: Modalities(), "at least one modality"),
    (lambda: Modalities(a=np.zeros((3, 2)), b=["x", "y"]), r"different numbers of rows"),
    (lambda: Modalities(a=np.zeros((0, 2))), "'a' has no rows"),
    (lambda: Modalities(_a=np.zeros((2, 2))), "'_a' is not an identifier"),
    (lambda: Modalities.from_dict({"2x": np.zeros((2, 2))}), "'2x' is not an identifier"),
    (lambda: Modalities.from_dict({"a": np.zeros((2, 2))}, kinds={"a": "audio"}),
     "not one of"),
    (lambda: Modalities.from_dict({"a": np.zeros((2, 2))}, kinds={"b": "table"}),
     "not modalities"),
    (lambda: Modalities.from_dict({"a": np.zeros((2, 2))}, kinds={"a": "tokens"}),
     "declared 'tokens'"),
    (lambda: Modalities(a=np.array([[1.0, NAN], [1.0, 2.0]])), r"'a' \(table\): rows \[0\]"),
    (lambda: Modalities(a=np.array([[1.0, np.inf], [1.0, 2.0]])), "infinity"),
    (lambda: Modalities(a=None), "'a' is None"),
    (lambda: Modalities(a=["x", 3]), r"rows \[1\]"),
    (lambda: Modalities(a=pd.DataFrame({"c": ["x", "y"], "d": [1.0, NAN]})),
     r"modality 'a': column 'd' .* 1 missing value"),
    (lambda: Modalities(a=pd.DataFrame({"c": pd.to_datetime(["2026-01-01", "2026-02-01"])})),
     "modality 'a': column 'c' holds dates"),
    (lambda: Modalities(a=pd.DataFrame({0: ["x", "y"]})), "'a'.*string column names"),
    (lambda: Modalities(a=np.array([[1.0], [NAN], [NAN]]), b=["x", None, None]),
     r"rows \[1, 2\] \(2 row\(s\)\) have every modality"),
    (lambda: Modalities(a=5), "'a' is a int, not one entry per row"),
    (lambda: Modalities(a=np.float64(3.0)), "'a' is a float64, not one entry per row"),
    (lambda: Modalities(a=np.zeros((4, 0, 8))), "'a'.* hold no pixels"),
])
def test_refusals_name_the_modality(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_carried_has_no_nan_and_travels_with_take():
    m = _modalities()
    toks = {}
    c = m.carried(toks)
    assert set(c) == {*m.names, MISSING_KEY} and set(toks) == {"title"}
    assert c[MISSING_KEY].dtype == torch.bool
    assert c[MISSING_KEY].tolist() == m.missing().tolist()
    assert not torch.isnan(c["photo"]).any() and c["photo"][2].abs().sum() == 0
    assert c["price"].dtype == torch.float32 and c["price"][1].tolist() == [0.0, 0.0]
    assert c["title"][1].tolist() == [0] * c["title"].shape[1]  # a missing text: padding only
    assert toks["title"].words == ["red", "mug", "blue", "lamp"]
    batch = to_device(take(c, torch.tensor([3, 1])), "cpu")
    assert n_rows(c) == 4 and batch[MISSING_KEY].tolist() == m.missing()[[3, 1]].tolist()
    assert batch["words"].layout == torch.sparse_csr
    # tensors with NaN rows are zeroed in a copy, the input left as it was
    t = torch.tensor([[1.0, 2.0], [NAN, NAN]])
    assert Modalities(t=t, s=["a", "b"]).carried()["t"].tolist() == [[1.0, 2.0], [0.0, 0.0]]
    assert torch.isnan(t[1]).all()


def _trunk(**kw):
    torch.manual_seed(0)
    return FusedTrunk({"photo": ConvTrunk(1, (4,), batch_norm=False),
                       "price": TableTrunk(2, (3,)),
                       "title": TextTrunk(10, dim=5)}, **kw)


def _batch():
    m = Modalities(photo=np.random.default_rng(0).random((5, 1, 6, 6)).astype(np.float32),
                   price=np.array([[1.0, 2.0], [NAN, NAN], [3.0, 4.0], [0.0, 1.0],
                                   [NAN, NAN]]),
                   title=["a b", "c", None, "a", None])
    return m.carried()


@pytest.mark.parametrize("fusion", ["concat", "gated"])
def test_shapes_no_nan_and_missing_embedding_gets_gradient(fusion):
    trunk = _trunk(fusion=fusion, dim=7)
    assert trunk.out_features == (4 + 3 + 5 if fusion == "concat" else 7)
    out = trunk(_batch())
    assert out.shape == (5, trunk.out_features) and torch.isfinite(out).all()
    out.sum().backward()
    for name in ("price", "title"):  # missing in some rows: the learned vector is used
        assert trunk.missing_embeddings[name].grad.abs().sum() > 0
    assert trunk.missing_embeddings["photo"].grad is None or \
        trunk.missing_embeddings["photo"].grad.abs().sum() == 0


def test_missing_rows_read_the_missing_embedding():
    trunk = _trunk()
    with torch.no_grad():
        trunk.missing_embeddings["price"].copy_(torch.tensor([7.0, 8.0, 9.0]))
    vectors, mask = trunk.modality_vectors(_batch())
    assert vectors[1][[1, 4]].tolist() == [[7.0, 8.0, 9.0]] * 2
    assert mask.tolist() == _batch()[MISSING_KEY].tolist()
    # a batch without the mask has nothing missing
    batch = _batch()
    del batch[MISSING_KEY]
    assert trunk.modality_vectors(batch)[1].sum() == 0


def test_training_encodes_only_present_rows():
    """Batch normalization's statistics come from the present images only, and training and
    evaluation agree row by row on what each row reads."""
    torch.manual_seed(0)
    trunk = FusedTrunk({"photo": ConvTrunk(1, (4,)), "price": TableTrunk(2, (3,))})
    alone = ConvTrunk(1, (4,))
    alone.load_state_dict(trunk.encoders["photo"].state_dict())
    rng = np.random.default_rng(1)
    img = rng.random((6, 1, 6, 6)) + 5.0
    img[[1, 4]] = NAN
    batch = Modalities(photo=img, price=rng.random((6, 2))).carried()
    trunk.train(), alone.train()
    vectors, _ = trunk.modality_vectors(batch)
    present = torch.tensor([0, 2, 3, 5])
    expected = alone(batch["photo"][present])
    bn, bn_alone = trunk.encoders["photo"].features[1], alone.features[1]
    torch.testing.assert_close(bn.running_mean, bn_alone.running_mean)
    torch.testing.assert_close(bn.running_var, bn_alone.running_var)
    torch.testing.assert_close(vectors[0][present], expected)
    assert (vectors[0][[1, 4]] == trunk.missing_embeddings["photo"]).all()


def test_a_batch_without_a_modality_keeps_every_parameter_in_the_graph():
    trunk = FusedTrunk({"photo": ConvTrunk(1, (4,)), "price": TableTrunk(2, (3,))}).train()
    img = np.full((3, 1, 6, 6), NAN)
    img[0] = 0.5
    batch = Modalities(photo=img, price=np.ones((3, 2))).carried()
    batch = take(batch, torch.tensor([1, 2]))  # no image in the batch
    trunk(batch).sum().backward()
    grads = [p.grad for p in trunk.encoders["photo"].parameters()]
    assert all(g is not None and float(g.abs().sum()) == 0.0 for g in grads)
    assert float(trunk.missing_embeddings["photo"].grad.abs().sum()) > 0
    assert float(trunk.encoders["photo"].features[1].num_batches_tracked) == 0


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_gates(gate):
    trunk = _trunk(fusion="gated", gate=gate)
    a = trunk.gates(_batch())
    assert a.shape == (5, 3) and ((a > 0) & (a < 1)).all()
    if gate == "softmax":
        assert torch.allclose(a.sum(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match="no gates"):
        _trunk().gates(_batch())


def test_modality_dropout_keeps_one_and_is_off_in_eval():
    trunk = _trunk(modality_dropout=0.9)
    mask = torch.zeros(2000, 3, dtype=torch.bool)
    mask[::3, 0] = True
    mask[1::3, :2] = True          # only the title available: never dropped
    torch.manual_seed(1)
    dropped = trunk._dropped(mask)
    assert not dropped.all(dim=1).any()
    assert (dropped >= mask).all()  # a missing modality stays missing
    assert not dropped[1::3, 2].any()
    assert 0.6 < dropped[2::3].float().mean() < 0.7  # 0.9 dropped, one of 3 kept
    trunk.eval()
    assert torch.equal(trunk._dropped(mask), mask)
    batch = _batch()
    assert torch.equal(trunk(batch), trunk(batch))


@pytest.mark.parametrize("kw", [{}, {"fusion": "gated", "gate": "sigmoid", "dim": 6,
                                     "modality_dropout": 0.2}])
def test_config_round_trip_and_determinism(kw):
    trunk = _trunk(**kw).eval()
    config = trunk.config()
    assert config["fusion"] == kw.get("fusion", "concat")
    assert config["encoders"]["price"] == {"class": "TableTrunk",
                                           "config": {"in_features": 2, "hidden": [3],
                                                      "categories": []}}
    copy = encoder_from_config("FusedTrunk", config)
    copy.load_state_dict(trunk.state_dict())
    copy.eval()
    batch = _batch()
    assert torch.equal(copy(batch), trunk(batch))
    assert torch.equal(_trunk(**kw).eval()(batch), trunk(batch))  # same seed, same net
    assert copy.config() == config
    built = FusedTrunk(config["encoders"], **{k: v for k, v in config.items() if k != "encoders"})
    assert built.out_features == trunk.out_features


@pytest.mark.parametrize("config, match", [
    ({}, "missing key"),
    ({"encoders": [], "fusion": "concat"}, "dict of named"),
    ({"encoders": {"a": {"class": "FusedTrunk", "config": {}}}}, "is not one of"),
    ({"encoders": {"a": {"class": "TableTrunk", "config": {"in_features": 0}}}},
     "in_features"),
    ({"encoders": {"a": {"class": "TableTrunk", "config": {"in_features": 2}}},
      "fusion": "sum"}, "fusion"),
    ({"encoders": {"a": {"class": "TableTrunk", "config": {"in_features": 2}}},
      "modality_dropout": 1.0}, "modality_dropout"),
    ({"encoders": {"a": {"class": "TableTrunk", "config": {"in_features": 2}}}, "x": 1},
     "unknown"),
])
def test_config_refusals(config, match):
    with pytest.raises(ValueError, match=match):
        FusedTrunk.from_config(config)


def test_construction_refusals():
    with pytest.raises(ValueError, match="1..64 named encoders"):
        FusedTrunk({})
    with pytest.raises(ValueError, match="out_features"):
        FusedTrunk({"a": torch.nn.ReLU()})
    with pytest.raises(ValueError, match="identifier"):
        FusedTrunk({"_missing": TableTrunk(2)})
    with pytest.raises(ValueError, match="not a registered encoder"):
        lin = torch.nn.Linear(2, 3)
        FusedTrunk({"a": lin}).config()
    trunk = _trunk()
    with pytest.raises(ValueError, match="lacks modalities"):
        trunk({"photo": torch.zeros(2, 1, 6, 6)})
    with pytest.raises(ValueError, match="reads a dict"):
        trunk(torch.zeros(2, 3))
    batch = _batch()
    batch[MISSING_KEY] = batch[MISSING_KEY][:, :2]
    with pytest.raises(ValueError, match="mask has shape"):
        trunk(batch)


@pytest.mark.parametrize("cls", [HardSharing, MMoE, CGC, PLE])
def test_every_architecture_reads_it_and_saves_it(cls, tmp_path):
    trunk = _trunk(fusion="gated", gate="sigmoid")
    net = cls(tasks={"y": "regression", "z": "binary"}, encoder=trunk).eval()
    batch = _batch()
    out = net(batch)
    assert out["y"].shape == (5, 1) and torch.isfinite(out["z"]).all()
    back = load_checkpoint(save_checkpoint(tmp_path / "net", net)).eval()
    assert isinstance(back.encoder, FusedTrunk)
    assert torch.equal(back(batch)["z"], out["z"])


def _r2(pred, y):
    return 1 - float(((pred - y) ** 2).mean() / ((y - y.mean()) ** 2).mean())


def test_each_task_learns_from_its_own_modality():
    """Task "a" reads the table, task "b" the text (a word's presence), task "c" both; 20 %
    of the rows miss one modality (10 % the table, 10 % the text)."""
    rng = np.random.default_rng(0)
    n, vocab = 2000, 40
    x = rng.standard_normal((n, 4))
    words = rng.integers(0, vocab, (n, 6))
    texts = [" ".join(f"w{v}" for v in row) for row in words]
    score = np.isin(words, np.arange(10)).sum(axis=1).astype(float)    # words w0..w9
    y = {"a": x @ np.array([1.0, -2.0, 0.5, 0.0]), "b": score,
         "c": x[:, 0] + score}
    lost = rng.permutation(n)
    no_table, no_text = lost[: n // 10], lost[n // 10: n // 5]
    x_in = x.copy()
    x_in[no_table] = NAN
    texts_in = [None if i in set(no_text) else t for i, t in enumerate(texts)]
    m = Modalities(table=x_in, text=texts_in)
    train, test = np.arange(n) < 1500, np.arange(n) >= 1500
    toks = {}
    c_train, c_test = m[train].carried(toks), m[test].carried(toks)
    torch.manual_seed(0)
    trunk = FusedTrunk({"table": TableTrunk(4, (16,)),
                        "text": TextTrunk(toks["text"].n_ids, dim=16, mode="sum")},
                       modality_dropout=0.1)
    net = HardSharing(tasks={"a": "regression", "b": "regression", "c": "regression"},
                      hidden=(32,), encoder=trunk)
    yt = {k: torch.tensor(v[train], dtype=torch.float32) for k, v in y.items()}
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(40):
        for idx in torch.randperm(1500).split(64):
            out = net(take(c_train, idx))
            loss = sum(((out[k][:, 0] - yt[k][idx]) ** 2).mean() for k in yt)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        out = {k: v[:, 0].numpy() for k, v in net(c_test).items()}
    miss = m[test].missing()
    has_table, has_text = ~miss[:, 0], ~miss[:, 1]
    r2 = {"a": _r2(out["a"][has_table], y["a"][test][has_table]),
          "b": _r2(out["b"][has_text], y["b"][test][has_text]),
          "c": _r2(out["c"][has_table & has_text], y["c"][test][has_table & has_text])}
    assert r2["a"] > 0.9 and r2["b"] > 0.9 and r2["c"] > 0.8, r2
    assert np.isfinite(np.concatenate(list(out.values()))).all()
