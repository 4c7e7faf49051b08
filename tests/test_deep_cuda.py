"""The deep half on a CUDA device (skipped without one): the wrappers' per-row validation and
predictions, whose losses and metrics are formed on the CPU from the net's outputs on the
device, and named id and numeric columns given as CPU tensors to a net on the device."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import DeepMultiTaskRegressor, HardSharing, TaskSpec  # noqa: E402
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
