"""FeatureColumns: outputs against a hand computation, the OOV bucket, exact adapted
statistics, input errors, and configs (round trip, meta device, tampered entries)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep.features import (  # noqa: E402
    Categorical,
    FeatureColumns,
    IdSequence,
    Numeric,
    embedding_dim,
)

torch.set_num_threads(1)


def _encoder(oov_rate=0.01):
    return FeatureColumns([Categorical("user", 10, dim=3),
                           Numeric("price"),
                           IdSequence("hist", 8, dim=4),
                           IdSequence("tags", 6, dim=2, pooling="max"),
                           IdSequence("seen", 5, dim=2, pooling="sum", padding=0),
                           Numeric("pos", width=2)], oov_rate=oov_rate)


def _batch():
    return {"user": torch.tensor([0, 9, 4]),
            "price": torch.tensor([1.5, -2.0, 10.0]),
            "hist": torch.tensor([[1, 2, -1], [7, 7, 3], [-1, -1, -1]]),
            "tags": torch.tensor([[5, -1], [0, 2], [-1, -1]]),
            "seen": torch.tensor([[1, 0, 0], [4, 4, 2], [3, 0, 1]]),
            "pos": torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])}


def test_embedding_dim_rule():
    # fastai's min(600, round(1.6 n^0.56)), capped at 64 here, at least 2
    ns = [1, 2, 3, 11, 50, 101, 1001, 10**6]
    want = [max(2, min(64, round(1.6 * n**0.56))) for n in ns]
    assert want == [2, 2, 3, 6, 14, 21, 64, 64]
    assert [embedding_dim(n) for n in ns] == want
    assert Categorical("c", 100).dim == 21 and IdSequence("s", 10).dim == 6
    for bad in (0, -3, True, 2.5, "7"):
        with pytest.raises(ValueError, match="n_categories"):
            embedding_dim(bad)


def test_output_equals_hand_computation():
    torch.manual_seed(0)
    enc = _encoder().eval()
    enc.set_numeric_stats("price", 2.0, 4.0)
    enc.set_numeric_stats("pos", [1.0, -1.0], [2.0, 0.5])
    assert not enc.needs_adapt()
    b = _batch()
    out = enc(b).detach().numpy()
    assert out.shape == (3, enc.out_features) and enc.out_features == 3 + 4 + 2 + 2 + 1 + 2

    W = [e.weight.detach().numpy().astype(np.float64) for e in enc.embeddings]
    hand = np.zeros((3, 14))
    hand[:, 0:3] = W[0][[0, 9, 4]]
    hand[0, 3:7] = (W[1][1] + W[1][2]) / 2
    hand[1, 3:7] = (2 * W[1][7] + W[1][3]) / 3
    hand[2, 3:7] = 0.0                               # only padding
    hand[0, 7:9] = W[2][5]
    hand[1, 7:9] = np.maximum(W[2][0], W[2][2])
    hand[0, 9:11] = W[3][1]                          # 0 pads this column
    hand[1, 9:11] = 2 * W[3][4] + W[3][2]
    hand[2, 9:11] = W[3][3] + W[3][1]
    hand[:, 11] = (np.array([1.5, -2.0, 10.0]) - 2.0) / 4.0
    hand[:, 12] = (np.array([0.0, 2.0, 4.0]) - 1.0) / 2.0
    hand[:, 13] = (np.array([1.0, 3.0, 5.0]) + 1.0) / 0.5
    np.testing.assert_allclose(out, hand, rtol=0, atol=1e-6)
    assert enc.slices["price"] == slice(11, 12) and enc.slices["pos"] == slice(12, 14)
    # (B, 1) codes read like (B,)
    one = enc({**b, "user": b["user"][:, None]})
    assert torch.equal(one, enc(b))


def test_out_of_range_codes_read_the_oov_row_in_eval():
    torch.manual_seed(1)
    enc = _encoder(oov_rate=0.5).eval()       # eval: no random replacement at any rate
    with torch.no_grad():
        enc.embeddings[0].weight[10] = torch.tensor([7.0, 8.0, 9.0])
        enc.embeddings[1].weight[8] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = _batch()
    b["user"] = torch.tensor([-1, 10, 10**12])
    b["hist"] = torch.tensor([[8, -1, -1], [-7, 100, -1], [3, 99, -1]])
    out = enc(b)
    assert torch.equal(out[:, 0:3], torch.tensor([[7.0, 8.0, 9.0]]).expand(3, 3))
    oov = enc.embeddings[1].weight[8]
    assert torch.equal(out[0, 3:7], oov) and torch.equal(out[1, 3:7], oov)
    torch.testing.assert_close(out[2, 3:7], (enc.embeddings[1].weight[3] + oov) / 2,
                               rtol=0, atol=1e-6)
    # in range: the code's own row, never the bucket
    b["user"] = torch.tensor([0, 5, 9])
    assert torch.equal(enc(b)[:, 0:3], enc.embeddings[0].weight[[0, 5, 9]])


def test_the_oov_bucket_starts_at_zero():
    enc = _encoder()
    for col, emb in zip(enc.id_columns, enc.embeddings, strict=True):
        assert emb.weight.shape == (col.vocab_size + 1, col.dim)
        assert torch.count_nonzero(emb.weight[col.vocab_size]) == 0


def test_oov_rate_replaces_about_that_fraction_in_training_only():
    rate, n = 0.1, 20000
    enc = FeatureColumns([Categorical("item", 5, dim=2), IdSequence("hist", 5, dim=2)],
                         oov_rate=rate)
    with torch.no_grad():
        for emb in enc.embeddings:
            emb.weight.copy_(torch.arange(12.0).reshape(6, 2))   # row k = (2k, 2k + 1)
            emb.weight[5] = 100.0
    torch.manual_seed(0)
    codes = torch.randint(0, 5, (n,))
    hist = torch.randint(0, 5, (n, 1))
    batch = {"item": codes, "hist": hist}
    out = enc.train()(batch)
    k_cat = int((out[:, 0] == 100.0).sum())
    k_seq = int((out[:, 2] == 100.0).sum())
    bound = 5 * math.sqrt(n * rate * (1 - rate))        # 5 binomial standard deviations
    assert abs(k_cat - n * rate) < bound and abs(k_seq - n * rate) < bound
    kept = out[:, 0] != 100.0
    assert torch.equal(out[kept, 0], 2.0 * codes[kept].float())  # the others keep their row
    assert not (enc.eval()(batch)[:, [0, 2]] == 100.0).any()
    # the same seed, the same replacements (the trainer's seed fixes them)
    torch.manual_seed(3)
    a = enc.train()(batch)
    torch.manual_seed(3)
    assert torch.equal(a, enc(batch))
    off = FeatureColumns([Categorical("item", 5, dim=2)], oov_rate=0.0).train()
    with torch.no_grad():
        off.embeddings[0].weight[5] = 100.0
    assert not (off({"item": codes}) == 100.0).any()


def test_the_oov_row_learns_in_training():
    torch.manual_seed(0)
    enc = FeatureColumns([Categorical("item", 4, dim=2)], oov_rate=0.2).train()
    enc({"item": torch.randint(0, 4, (500,))}).sum().backward()
    g = enc.embeddings[0].weight.grad
    assert g[4].abs().sum() > 0 and g[:4].abs().sum() > 0


def test_adapt_gives_numpys_exact_mean_and_std_over_batches():
    rng = np.random.default_rng(0)
    sizes = (7, 1, 30, 12)
    prices = [1e3 + 5 * rng.standard_normal(n) for n in sizes]
    pos = [np.column_stack([rng.standard_normal(n) * 1e-3, np.full(n, 3.7)]) for n in sizes]
    users = [rng.integers(0, 5, n) for n in sizes]

    def batches(lo=0, hi=4):
        for i in range(lo, hi):
            yield ({"user": torch.from_numpy(users[i]),
                    "price": torch.from_numpy(prices[i].astype(np.float32)),
                    "pos": torch.from_numpy(pos[i].astype(np.float32))},
                   {"task": torch.zeros(sizes[i])})          # (inputs, targets) pairs too

    enc = FeatureColumns([Categorical("user", 5), Numeric("price"), Numeric("pos", width=2)])
    assert enc.needs_adapt()
    assert enc.adapt(batches()) is enc and not enc.needs_adapt()
    p = np.concatenate(prices).astype(np.float32).astype(np.float64)
    q = np.vstack(pos).astype(np.float32).astype(np.float64)
    std_m, std_s = enc.numerics[0].mean, enc.numerics[0].std
    assert std_m.dtype == torch.float64
    np.testing.assert_allclose(std_m.numpy(), [p.mean()], rtol=1e-12)
    np.testing.assert_allclose(std_s.numpy(), [p.std()], rtol=1e-12)
    np.testing.assert_allclose(enc.numerics[1].mean.numpy(), q.mean(0), rtol=1e-12)
    # the constant second entry gets std 1
    np.testing.assert_allclose(enc.numerics[1].std.numpy(), [q[:, 0].std(), 1.0], rtol=1e-12)

    # two ranks, each with half the batches: gather merges them into the same statistics
    other = FeatureColumns([Categorical("user", 5), Numeric("price"), Numeric("pos", width=2)])
    seen = []
    other.adapt(batches(2, 4), gather=lambda t: seen.append(t) or [t])
    half = FeatureColumns([Categorical("user", 5), Numeric("price"), Numeric("pos", width=2)])
    half.adapt(batches(0, 2), gather=lambda t: [t, seen[0]])
    for a, b in zip(half.numerics, enc.numerics, strict=True):
        np.testing.assert_allclose(a.mean.numpy(), b.mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(a.std.numpy(), b.std.numpy(), rtol=1e-12)

    with pytest.raises(ValueError, match="no rows"):
        FeatureColumns([Numeric("price")]).adapt([])
    with pytest.raises(ValueError, match="no rows"):
        FeatureColumns([Numeric("price")]).adapt([{"price": torch.zeros(0)}])
    with pytest.raises(ValueError, match=r"batch\['price'\].*NaN"):
        FeatureColumns([Numeric("price")]).adapt([{"price": torch.tensor([1.0, math.nan])}])


def test_set_numeric_stats_checks_its_values():
    enc = _encoder()
    with pytest.raises(ValueError, match="not a numeric column"):
        enc.set_numeric_stats("user", 0.0, 1.0)
    with pytest.raises(ValueError, match="std of column 'price' must be > 0"):
        enc.set_numeric_stats("price", 0.0, 0.0)
    with pytest.raises(ValueError, match="mean of column 'pos' must be 2"):
        enc.set_numeric_stats("pos", [1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="std of column 'price' must be 1 finite"):
        enc.set_numeric_stats("price", 0.0, "wide")
    enc.set_numeric_stats("price", torch.tensor([3.0]), np.float32(2.0))
    assert enc.numerics[0].mean.tolist() == [3.0] and enc.numerics[0].std.tolist() == [2.0]
    enc.set_numeric_stats("pos", 1.0, [2.0, 4.0])
    assert enc.numerics[1].std.tolist() == [2.0, 4.0] and bool(enc.numerics[1].adapted)
    assert not enc.needs_adapt()
    assert _encoder().needs_adapt() and not FeatureColumns([Categorical("a", 3)]).needs_adapt()


@pytest.mark.parametrize(("change", "match"), [
    (lambda b: b.pop("hist"), r"missing \['hist'\]"),
    (lambda b: b.update(extra=torch.zeros(3)), r"unknown \['extra'\]"),
    (lambda b: b.update(user=torch.tensor([0.0, 1.0, 2.0])),
     r"inputs\['user'\] has dtype float32; an id column needs integer codes"),
    (lambda b: b.update(price=torch.tensor([1.0, math.nan, 2.0])),
     r"inputs\['price'\] contains NaN.*'price'"),
    (lambda b: b.update(price=torch.tensor([1, 2, 3])),
     r"inputs\['price'\] has dtype int64; a numeric column needs floats"),
    (lambda b: b.update(user=torch.tensor([0, 1])), "different batch sizes"),
    (lambda b: b.update(user=torch.zeros(3, 2, dtype=torch.long)),
     r"inputs\['user'\] has shape \(3, 2\).*IdSequence"),
    (lambda b: b.update(hist=torch.zeros(3, dtype=torch.long)),
     r"inputs\['hist'\] has shape \(3,\); sequence column"),
    (lambda b: b.update(pos=torch.zeros(3, 3)), r"inputs\['pos'\] has shape \(3, 3\)"),
    (lambda b: b.update(hist=torch.zeros(3, 2, dtype=torch.long).to_sparse()), "sparse"),
    (lambda b: b.update(user=[0, 1, 2]), r"inputs\['user'\] is a list"),
])
def test_input_errors_name_the_column(change, match):
    enc = _encoder()
    b = _batch()
    change(b)
    with pytest.raises(ValueError, match=match):
        enc(b)


def test_a_tensor_instead_of_a_dict_is_refused():
    with pytest.raises(ValueError, match="reads a dict"):
        _encoder()(torch.zeros(3, 4))


def test_constructor_errors():
    with pytest.raises(ValueError, match="unique"):
        FeatureColumns([Numeric("a"), Categorical("a", 3)])
    with pytest.raises(ValueError, match="1..4096 columns"):
        FeatureColumns([])
    with pytest.raises(ValueError, match="not a column"):
        FeatureColumns([Numeric("a"), "b"])
    with pytest.raises(ValueError, match="oov_rate"):
        FeatureColumns([Numeric("a")], oov_rate=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        Categorical("a", 0)
    with pytest.raises(ValueError, match="pooling"):
        IdSequence("a", 3, pooling="median")
    with pytest.raises(ValueError, match="width"):
        Numeric("a", width=True)
    assert Categorical("a", np.int64(5), dim=np.int32(3)) == Categorical("a", 5, 3)


def test_config_round_trip_and_meta_device():
    torch.manual_seed(0)
    enc = _encoder(oov_rate=0.05)
    enc.adapt([_batch()])
    config = json.loads(json.dumps(enc.config()))
    assert config["oov_rate"] == 0.05 and config["columns"][2] == {
        "kind": "sequence", "name": "hist", "vocab_size": 8, "dim": 4, "pooling": "mean",
        "padding": -1}
    with torch.device("meta"):
        meta = FeatureColumns.from_config(config)
    assert all(t.device.type == "meta" for t in meta.state_dict().values())
    want = {k: (tuple(v.shape), v.dtype) for k, v in enc.state_dict().items()}
    assert {k: (tuple(v.shape), v.dtype) for k, v in meta.state_dict().items()} == want
    assert meta.out_features == enc.out_features and meta.config() == config
    again = FeatureColumns.from_config(config)
    again.load_state_dict(enc.state_dict())
    assert not again.needs_adapt()
    assert torch.equal(again.eval()(_batch()), enc.eval()(_batch()))


@pytest.mark.parametrize(("change", "match"), [
    (lambda c: c["columns"][0].update(vocab_size=-4), r"columns\[0\]: vocab_size"),
    (lambda c: c["columns"][0].update(vocab_size=2**40), r"columns\[0\]: vocab_size"),
    (lambda c: c["columns"][0].update(vocab_size=True), r"columns\[0\]: vocab_size"),
    (lambda c: c["columns"][0].update(vocab_size=10.0), r"columns\[0\]: vocab_size"),
    (lambda c: c["columns"][0].update(dim=2**20), r"columns\[0\]: dim"),
    (lambda c: c["columns"][1].update(width=True), r"columns\[1\]: width"),
    (lambda c: c["columns"][2].update(pooling="median"), r"columns\[2\]: pooling"),
    (lambda c: c["columns"][2].update(padding="x"), r"columns\[2\]: padding"),
    (lambda c: c["columns"][2].update(weights=[1]), r"columns\[2\]: unknown key.*weights"),
    (lambda c: c["columns"][0].update(kind="image"), r"columns\[0\] must be a dict with 'kind'"),
    (lambda c: c["columns"][0].pop("vocab_size"), r"columns\[0\]: missing key.*vocab_size"),
    (lambda c: c["columns"][3].update(name=7), r"columns\[3\]: name"),
    (lambda c: c["columns"].append(c["columns"][0]), "unique"),
    (lambda c: c.update(oov_rate=1.5), "oov_rate"),
    (lambda c: c.update(oov_rate=False), "oov_rate"),
    (lambda c: c.update(seed=3), r"unknown key.*seed"),
    (lambda c: c.update(columns=[]), "'columns' must be a list"),
    (lambda c: c.update(columns={"a": 1}), "'columns' must be a list"),
    (lambda c: c.update(columns=[{"kind": "numeric", "name": "x"}] * 5000),
     "'columns' must be a list of 1..4096"),
])
def test_from_config_refuses_tampered_configs(change, match):
    config = json.loads(json.dumps(_encoder().config()))
    change(config)
    with pytest.raises(ValueError, match=match):
        FeatureColumns.from_config(config)


def test_from_config_refuses_non_dicts():
    with pytest.raises(ValueError, match="must be a dict"):
        FeatureColumns.from_config([1, 2])
