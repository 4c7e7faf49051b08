"""The deep half on a CUDA device (skipped without one): the wrappers' per-row validation and
predictions, whose losses and metrics are formed on the CPU from the net's outputs on the
device, named id and numeric columns given as CPU tensors to a net on the device, and fits
that repeat themselves bit for bit (images, texts, lazy heads; float32 and AMP)."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from regmtl.datasets import make_two_digit_tasks  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ConvTrunk,
    DeepMultiTaskRegressor,
    HardSharing,
    TaskSpec,
    TextTrunk,
    Trainer,
    set_seed,
)
from regmtl.deep.features import Categorical, FeatureColumns, Numeric  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAST = dict(hidden=(32,), max_epochs=30, lr=1e-2, batch_size=64, random_state=0)


def _stores(n=600, seed=0):
    """Three stores (long form) with a string column: y = city effect (1 + store) + x."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["oslo", "rome", "lima"], n)
    x = rng.standard_normal(n)
    store = rng.integers(0, 3, n)
    effect = pd.Series(city).map({"oslo": 2.0, "rome": -1.0, "lima": 0.5}).to_numpy()
    y = effect * (1 + store) + x + 0.1 * rng.standard_normal(n)
    return pd.DataFrame({"city": city, "x": x, "store": store}), y


def test_per_row_fit_validates_and_predicts_as_on_the_cpu():
    df, y = _stores()
    fits = {d: DeepMultiTaskRegressor(**FAST, device=d).fit(df, y, task="store")
            for d in ("cpu", "cuda")}
    assert "val_loss" in fits["cuda"].history_.columns
    scores = {d: m.score(df, y, task="store") for d, m in fits.items()}
    # measured on an H200: 0.99 on both devices
    assert scores["cuda"] > 0.95 and abs(scores["cuda"] - scores["cpu"]) < 0.03, scores
    pred = fits["cuda"].predict(df, task="store")
    assert isinstance(pred, np.ndarray) and np.isfinite(pred).all()


def test_named_columns_given_on_the_cpu_reach_a_net_on_the_device():
    tasks = [TaskSpec("ctr", kind="binary")]
    cols = FeatureColumns([Categorical("user", 30), Categorical("item", 20), Numeric("price")])
    torch.manual_seed(0)
    net = HardSharing(None, tasks, (8,), encoder=cols).eval()
    x = {"user": torch.tensor([0, 29, 40]), "item": torch.tensor([1, 2, -1]),
         "price": torch.tensor([50.0, 40.0, 60.0])}
    with torch.no_grad():
        cpu = net(x)["ctr"]
        gpu = net.to("cuda")(x)["ctr"]
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)


def _digits(amp, pool=(3, 5)):
    data = make_two_digit_tasks(3000, 10, random_state=0)
    set_seed(0)
    net = HardSharing(tasks=[TaskSpec(t, kind="multiclass", n_outputs=10)
                             for t in ("left", "right")],
                      trunk=ConvTrunk(1, (16, 32), pool=pool))
    X, Y = data.X[data.train], data.Y[data.train]
    return Trainer(net, lr=3e-3, batch_size=256, max_epochs=2, seed=0, device="cuda", amp=amp,
                   dominance=None), (X, {"left": Y[:, 0], "right": Y[:, 1]})


def _tiled(amp):  # (the last map 2 x 4: windows that tile it, an average pool)
    return _digits(amp, pool=(1, 2))


def _text(amp):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 500, size=(4000, 12))
    y = (ids % 7 == 0).mean(axis=1) + 0.1 * rng.standard_normal(4000)
    set_seed(0)
    net = HardSharing(None, [TaskSpec("a")], (16,), encoder=TextTrunk(500, dim=16))
    return Trainer(net, batch_size=128, max_epochs=2, seed=0, device="cuda", amp=amp,
                   dominance=None), (ids, {"a": y.astype(np.float32)})


def _lazy(amp):
    rng = np.random.default_rng(0)
    T, n_t, p = 300, 20, 16
    X = rng.standard_normal((T * n_t, p)).astype(np.float32)
    task = np.repeat(np.arange(T), n_t)
    y = (X @ rng.standard_normal(p) + task % 5).astype(np.float32)
    set_seed(0)
    net = HardSharing(p, [TaskSpec(f"t{t}") for t in range(T)], (32,))
    return Trainer(net, batch_size=512, max_epochs=2, seed=0, device="cuda", amp=amp,
                   lazy_heads=True, dominance=None), (X, (task, y))


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "amp"])
@pytest.mark.parametrize("make", [_digits, _tiled, _text, _lazy],
                         ids=["conv", "conv_tiled", "text", "lazy_heads"])
def test_a_fit_on_cuda_repeats_itself_bit_for_bit(make, amp):
    """Two fits from one seed end at the same weights to the last bit: cuDNN's deterministic
    convolutions, the conv trunk's grid average by an average pool or matrix products (CUDA's
    adaptive pooling adds its gradient with atomics), and the caller's cuDNN choice given
    back after."""
    cudnn = torch.backends.cudnn
    cudnn.benchmark = True
    try:
        weights = []
        for _ in range(2):
            trainer, data = make(amp)
            trainer.fit(data)
            assert (cudnn.deterministic, cudnn.benchmark) == (False, True)
            weights.append({k: v.detach().cpu() for k, v in trainer.net.state_dict().items()})
    finally:
        cudnn.benchmark = False
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
