"""ConvTrunk and TextTrunk: shapes on real image sizes, pixel scaling, token pooling against
hand computations, bags of words (sparse CSR) against dense products, padding and OOV
conventions, refusals, and configs (round trip, meta device, tampered entries)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep.features import FeatureColumns  # noqa: E402
from regmtl.deep.step import repeatable_kernels  # noqa: E402
from regmtl.deep.trunks import (  # noqa: E402
    ENCODERS,
    ConvTrunk,
    GridAverage,
    TextTrunk,
    encoder_from_config,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support:UserWarning",
                                        "ignore:Sparse invariant checks:UserWarning")


def _csr(dense: torch.Tensor) -> torch.Tensor:
    return dense.to_sparse_csr()


# ---------------------------------------------------------------------- ConvTrunk
@pytest.mark.parametrize("grid", [(1, 1), (1, 2), (3, 4), (7, 9), (2, 5)])
@pytest.mark.parametrize("image", [(7, 9), (8, 8), (1, 3)])
def test_grid_average_is_adaptive_average_pooling(grid, image):
    """The averaging matrices give PyTorch's adaptive pooling, overlapping windows (7 -> 3)
    and grids wider than the image (1 -> 3) included, values and gradients to 1e-14."""
    x = torch.randn(4, 3, *image, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 3, *grid, dtype=torch.float64)
    ours, theirs = GridAverage(grid)(x), torch.nn.AdaptiveAvgPool2d(grid)(x)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-14)
    (gx,) = torch.autograd.grad(ours, x, g)
    (tx,) = torch.autograd.grad(theirs, x, g)
    torch.testing.assert_close(gx, tx, rtol=0, atol=1e-14)


def test_repeatable_kernels_give_the_callers_cudnn_choice_back():
    cudnn = torch.backends.cudnn
    before = cudnn.deterministic, cudnn.benchmark
    try:
        cudnn.deterministic, cudnn.benchmark = False, True
        with repeatable_kernels():
            assert (cudnn.deterministic, cudnn.benchmark) == (True, False)
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
        with pytest.raises(KeyError), repeatable_kernels():
            raise KeyError
        assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
    finally:
        cudnn.deterministic, cudnn.benchmark = before


@pytest.mark.parametrize("size", [(8, 8), (8, 16), (28, 28), (1, 1), (5, 3)])
def test_conv_trunk_shapes(size):
    torch.manual_seed(0)
    trunk = ConvTrunk(1, (4, 6, 8, 8))               # 4 pools: 8x8 reaches 1x1 and stays
    assert trunk.out_features == 8
    assert tuple(trunk(torch.rand(3, 1, *size)).shape) == (3, 8)
    assert tuple(trunk(torch.rand(3, *size)).shape) == (3, 8)     # channel axis added
    lin = ConvTrunk(3, (4,), out_features=5, kernel_size=2, dropout=0.2)
    assert lin.out_features == 5 and tuple(lin(torch.rand(2, 3, *size)).shape) == (2, 5)


def test_conv_trunk_on_sklearn_digits():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    images = torch.from_numpy(digits.images[:64].astype(np.float32)) / 16.0   # (64, 8, 8)
    trunk = ConvTrunk(1, (8, 16), out_features=12).eval()
    out = trunk(images)
    assert tuple(out.shape) == (64, 12) and torch.isfinite(out).all()
    # the flat table of pixels (64 columns) with image_shape gives the same
    flat = ConvTrunk(1, (8, 16), out_features=12, image_shape=(8, 8)).eval()
    flat.load_state_dict(trunk.state_dict())
    torch.testing.assert_close(flat(images.reshape(64, 64)), out, rtol=0, atol=0)


def test_conv_trunk_reads_8_bit_pixels():
    torch.manual_seed(0)
    trunk = ConvTrunk(2, (4, 4)).eval()
    x = torch.randint(0, 256, (3, 2, 8, 16), dtype=torch.uint8)
    want = trunk(x.float() / 255.0)
    torch.testing.assert_close(trunk(x), want, rtol=0, atol=0)
    torch.testing.assert_close(trunk(x.long()), want, rtol=0, atol=0)   # as the data layer
    torch.testing.assert_close(trunk(x.double() / 255.0), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="int64 with values outside 0..255"):
        trunk(x.long() * 2)


@pytest.mark.parametrize(("x", "match"), [
    (torch.zeros(2, 3, 8, 8), r"x has shape \(2, 3, 8, 8\); ConvTrunk expects \(batch, 1, "),
    (torch.zeros(2, 64), r"x has shape \(2, 64\)"),
    (torch.zeros(2, 1, 1, 8, 8), "x has shape"),
    (torch.zeros(2, 1, 0, 8), "x has shape"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.bool), "x has dtype bool"),
    (torch.zeros(2, 1, 8, 8).to_sparse(), "dense image tensor"),
    (np.zeros((2, 1, 8, 8)), "x is a ndarray"),
])
def test_conv_trunk_refuses_wrong_inputs(x, match):
    with pytest.raises(ValueError, match=match):
        ConvTrunk(1, (4,))(x)


def test_conv_trunk_gradients_flow():
    torch.manual_seed(0)
    trunk = ConvTrunk(1, (4, 8), out_features=3)
    trunk(torch.rand(5, 1, 8, 8)).sum().backward()
    for name, p in trunk.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_conv_trunk_config_round_trip():
    torch.manual_seed(0)
    trunk = ConvTrunk(3, (4, 8), kernel_size=5, out_features=7, dropout=0.1,
                      batch_norm=False, image_shape=(6, 4))
    config = json.loads(json.dumps(trunk.config()))
    assert config == {"in_channels": 3, "channels": [4, 8], "kernel_size": 5,
                      "out_features": 7, "dropout": 0.1, "batch_norm": False,
                      "image_shape": [6, 4], "pool": [1, 1]}
    with torch.device("meta"):
        meta = ConvTrunk.from_config(config)
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in trunk.state_dict().items()}
    assert meta.out_features == 7 and meta.config() == config
    again = encoder_from_config("ConvTrunk", config)
    again.load_state_dict(trunk.state_dict())
    x = torch.rand(2, 72)
    assert torch.equal(again.eval()(x), trunk.eval()(x))
    assert ConvTrunk.from_config({}).config() == ConvTrunk().config()   # defaults


@pytest.mark.parametrize(("change", "match"), [
    ({"channels": []}, "channels must be a list of 1..64"),
    ({"channels": [4] * 65}, "channels must be a list of 1..64"),
    ({"channels": [4, True]}, r"channels\[1\]"),
    ({"channels": [4, 2**17]}, r"channels\[1\]"),
    ({"channels": (4, 8)}, "channels must be a list"),
    ({"in_channels": 0}, "in_channels"),
    ({"kernel_size": 3.0}, "kernel_size"),
    ({"out_features": -1}, "out_features"),
    ({"dropout": 1.0}, "dropout"),
    ({"batch_norm": 1}, "batch_norm"),
    ({"image_shape": [8]}, "image_shape"),
    ({"stride": 2}, r"unknown key.*stride"),
])
def test_conv_trunk_from_config_refuses_tampered_configs(change, match):
    config = {**ConvTrunk().config(), **change}
    with pytest.raises(ValueError, match=f"ConvTrunk config: .*{match}"):
        ConvTrunk.from_config(config)


# ---------------------------------------------------------------------- TextTrunk
def test_text_ids_pool_the_rows_of_the_tokens():
    torch.manual_seed(0)
    V = 20
    ids = torch.tensor([[3, 5, 5, 0, 0], [7, 0, 2, 0, 0], [0, 0, 0, 0, 0]])   # 0 pads
    mean = TextTrunk(V, dim=6).eval()
    W = mean.embedding.weight.detach()
    hand = torch.stack([(W[3] + 2 * W[5]) / 3, (W[7] + W[2]) / 2, torch.zeros(6)])
    torch.testing.assert_close(mean(ids), hand, rtol=0, atol=1e-6)
    total = TextTrunk(V, dim=6, mode="sum").eval()
    total.load_state_dict(mean.state_dict())
    torch.testing.assert_close(total(ids), torch.stack([W[3] + 2 * W[5], W[7] + W[2],
                                                        torch.zeros(6)]), rtol=0, atol=1e-6)
    # no padding: every position is a token, 0 included
    nopad = TextTrunk(V, dim=6, padding_idx=None).eval()
    nopad.load_state_dict(mean.state_dict())
    torch.testing.assert_close(nopad(ids[:1]), ((W[3] + 2 * W[5] + 2 * W[0]) / 5)[None],
                               rtol=0, atol=1e-6)


def test_text_out_of_range_ids_read_the_oov_row():
    torch.manual_seed(0)
    V = 10
    trunk = TextTrunk(V, dim=4, padding_idx=-1).eval()
    with torch.no_grad():
        trunk.embedding.weight[V] = torch.tensor([1.0, -2.0, 3.0, -4.0])
    W = trunk.embedding.weight.detach()
    ids = torch.tensor([[10, 11, 10**10, -5], [0, 12, -1, -1], [-1, -1, -1, -1]])
    out = trunk(ids)
    assert torch.equal(out[0], W[V])                            # -5 is OOV, -1 pads
    torch.testing.assert_close(out[1], (W[0] + W[V]) / 2, rtol=0, atol=1e-6)
    assert torch.equal(out[2], torch.zeros(4))
    assert trunk.embedding.weight.shape == (V + 1, 4)
    assert torch.count_nonzero(TextTrunk(V, dim=4).embedding.weight[V]) == 0  # starts at 0


def test_text_oov_rate_in_training_only():
    torch.manual_seed(0)
    trunk = TextTrunk(5, dim=2, mode="sum", padding_idx=None, oov_rate=0.2)
    with torch.no_grad():
        trunk.embedding.weight.zero_()
        trunk.embedding.weight[5] = 1.0
    ids = torch.randint(0, 5, (4000, 1))
    with torch.no_grad():
        frac = float(trunk.train()(ids)[:, 0].mean())
        assert abs(frac - 0.2) < 5 * (0.2 * 0.8 / 4000) ** 0.5
        assert float(trunk.eval()(ids).abs().sum()) == 0.0


def test_text_csr_equals_the_dense_product():
    torch.manual_seed(0)
    V, d = 30, 5
    dense = torch.rand(6, V) * (torch.rand(6, V) < 0.2)        # tf-idf-like weights
    dense[:, 0] = 2.0 * (torch.arange(6) % 2)                   # column 0 is a word too
    dense[4] = 0.0                                              # an empty row
    x = _csr(dense)
    total = TextTrunk(V, dim=d, mode="sum").eval()
    E = total.embedding.weight.detach()[:V]
    torch.testing.assert_close(total(x), dense @ E, rtol=1e-5, atol=1e-5)
    mean = TextTrunk(V, dim=d, mode="mean").eval()
    mean.load_state_dict(total.state_dict())
    norm = dense / dense.sum(1, keepdim=True).clamp(min=1e-30)
    out = mean(x)
    torch.testing.assert_close(out, norm @ E, rtol=1e-5, atol=1e-5)
    assert torch.equal(out[4], torch.zeros(d))
    assert mean.padding_idx == 0 and dense[1, 0] == 2.0      # padding_idx concerns ids only


def test_text_csr_and_ids_agree_on_counts():
    torch.manual_seed(0)
    V, B, L = 25, 8, 12
    ids = torch.randint(1, V, (B, L))
    ids[:, 9:] = 0                                               # padding
    ids[2] = 0                                                   # an empty text
    counts = torch.zeros(B, V)
    counts.scatter_add_(1, ids, torch.ones(B, L))
    counts[:, 0] = 0.0
    for mode in ("sum", "mean"):
        torch.manual_seed(1)
        trunk = TextTrunk(V, dim=4, mode=mode, out_features=3).eval()
        torch.testing.assert_close(trunk(ids), trunk(_csr(counts)), rtol=1e-5, atol=1e-6)


def test_text_csr_gradients_reach_the_table():
    torch.manual_seed(0)
    trunk = TextTrunk(10, dim=3, mode="mean")
    dense = torch.zeros(2, 10)
    dense[0, 4], dense[1, 7] = 2.0, 1.0
    trunk(_csr(dense)).sum().backward()
    g = trunk.embedding.weight.grad
    assert g[4].abs().sum() > 0 and g[7].abs().sum() > 0 and g[[0, 1, 2, 3]].abs().sum() == 0


def test_text_conv_shape_and_padding_invariance():
    torch.manual_seed(0)
    trunk = TextTrunk(50, dim=6, conv=(8, 3), out_features=4).eval()
    assert trunk.out_features == 4
    ids = torch.tensor([[5, 9, 13, 2, 0, 0], [7, 7, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = trunk(ids)
    assert tuple(out.shape) == (3, 4)
    wider = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)   # more padding
    torch.testing.assert_close(trunk(wider), out, rtol=0, atol=1e-6)
    left = torch.cat([torch.zeros(3, 2, dtype=torch.long), ids], dim=1)    # left padding
    torch.testing.assert_close(trunk(left), out, rtol=0, atol=1e-6)
    bare = TextTrunk(50, dim=6, conv=(8, 4)).eval()             # even kernel, no Linear
    assert bare.out_features == 8 and tuple(bare(ids).shape) == (3, 8)
    assert torch.equal(bare(ids)[2], torch.zeros(8))            # no token: zeros
    torch.testing.assert_close(bare(left), bare(ids), rtol=0, atol=1e-6)
    torch.testing.assert_close(bare(wider), bare(ids), rtol=0, atol=1e-6)
    trunk.train()(ids).sum().backward()
    assert trunk.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("make", "x", "match"), [
    (lambda: TextTrunk(10, conv=(4, 3)), lambda: _csr(torch.eye(3, 10)), "no word order.*conv"),
    (lambda: TextTrunk(10), lambda: _csr(torch.eye(3, 12)), r"shape \(3, 12\).*\(batch, 10\)"),
    (lambda: TextTrunk(10), lambda: torch.eye(3, 10).to_sparse(), "layout torch.sparse_coo"),
    (lambda: TextTrunk(10), lambda: torch.eye(3, 10),
     "x has dtype float32; TextTrunk reads integer"),
    (lambda: TextTrunk(10), lambda: torch.zeros(3, 2, 2, dtype=torch.long),
     r"x has shape \(3, 2, 2\)"),
    (lambda: TextTrunk(10), lambda: _csr(torch.eye(3, 10) * float("nan")), "NaN"),
    (lambda: TextTrunk(10), lambda: [[1, 2]], "x is a list"),
])
def test_text_trunk_refuses_wrong_inputs(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x())


def test_text_trunk_config_round_trip():
    torch.manual_seed(0)
    trunk = TextTrunk(40, dim=6, mode="sum", conv=(5, 2), out_features=3, padding_idx=-1,
                      dropout=0.25, oov_rate=0.01)
    config = json.loads(json.dumps(trunk.config()))
    assert config == {"vocab_size": 40, "dim": 6, "mode": "sum", "conv": [5, 2],
                      "out_features": 3, "padding_idx": -1, "dropout": 0.25, "oov_rate": 0.01}
    with torch.device("meta"):
        meta = encoder_from_config("TextTrunk", config)
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in trunk.state_dict().items()}
    again = TextTrunk.from_config(config)
    again.load_state_dict(trunk.state_dict())
    ids = torch.randint(-1, 45, (3, 7))
    assert torch.equal(again.eval()(ids), trunk.eval()(ids))
    assert TextTrunk.from_config({"vocab_size": 9}).config() == TextTrunk(9).config()


@pytest.mark.parametrize(("change", "match"), [
    ({"vocab_size": 0}, "vocab_size"),
    ({"vocab_size": 2**31 + 1}, "vocab_size"),
    ({"vocab_size": True}, "vocab_size"),
    ({"dim": 2**16 + 1}, "dim"),
    ({"mode": "max"}, "mode"),
    ({"conv": [4]}, "conv must be None or"),
    ({"conv": [4, 0]}, r"conv\[1\] \(kernel_size\)"),
    ({"conv": [False, 3]}, r"conv\[0\] \(channels\)"),
    ({"padding_idx": 1.0}, "padding_idx"),
    ({"oov_rate": -0.1}, "oov_rate"),
    ({"vocab": 10}, r"unknown key.*vocab"),
])
def test_text_trunk_from_config_refuses_tampered_configs(change, match):
    config = {**TextTrunk(10).config(), **change}
    with pytest.raises(ValueError, match=f"TextTrunk config: .*{match}"):
        TextTrunk.from_config(config)
    with pytest.raises(ValueError, match="missing key"):
        TextTrunk.from_config({"dim": 4})


def test_registry():
    from regmtl.deep.fusion import FusedTrunk, TableTrunk

    assert ENCODERS == {"FeatureColumns": FeatureColumns, "ConvTrunk": ConvTrunk,
                        "TextTrunk": TextTrunk, "TableTrunk": TableTrunk,
                        "FusedTrunk": FusedTrunk}
    for name, cls in ENCODERS.items():
        assert callable(cls.from_config) and name == cls.__name__
    with pytest.raises(ValueError, match="not one of"):
        encoder_from_config("Resnet", {})
