"""What each weighting's weights sum to (or that they keep no sum), on every step of a training.

A hard-sharing net learns three tasks of very different loss scales: a regression target in the
hundreds, one in units, and a binary label. Each of the 14 weightings trains it for a few epochs
through :class:`regmtl.deep.Trainer`; a subclass of the weighting records the (T,) weights that
every ``backward`` returns (the history's ``weight/TASK`` columns are their epoch means), and
the test checks the sum documented in :mod:`regmtl.deep.weighting`, with unit and with unequal
base weights (``TaskSpec.weight``), and with the trainer's loss scaling on and off. Only the
weights are checked, never the losses.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import HardSharing, TaskSpec, Trainer, set_seed  # noqa: E402
from regmtl.deep.weighting import WEIGHTINGS  # noqa: E402

F64 = torch.float64
NAMES = ["equal", "fixed", "random", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad",
         "famo", "nash_mtl", "imtl", "mgda", "aligned_mtl", "upgrad"]
BASES = {"unit": (1.0, 1.0, 1.0), "unequal": (0.5, 2.0, 1.0)}
FIXED = {"big": 0.25}  # "fixed": the other tasks keep their base weight
#: |sum - expected| <= RTOL * expected (the trainer hands float32 losses to the weighting)
RTOL = 1e-5
#: a sum that is not kept leaves its starting value by more than this fraction of it
DRIFT = 0.1
EPOCHS, BATCH, N = 6, 32, 128  # 24 steps; DWA moves from the third epoch on


def _data() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 5))
    noise = 0.1 * rng.standard_normal((2, N))
    return X, {"big": 100.0 * (X[:, 0] - 2.0 * X[:, 1] + noise[0]),
               "small": X[:, 2] + 0.5 * X[:, 3] + noise[1],
               "click": (X[:, 0] + X[:, 4] > 0).astype(float)}


def _recording(name: str):
    """The weighting ``name`` (default options) recording the weights of every step."""
    cls = WEIGHTINGS[name]

    class Recording(cls):
        def setup(self, tasks, seed=None):
            super().setup(tasks, seed)
            self.recorded = []

        def backward(self, *args, **kwargs):
            w = super().backward(*args, **kwargs)
            self.recorded.append(w.detach().to("cpu", F64).clone())
            return w

    Recording.__name__ = Recording.__qualname__ = f"Recording{cls.__name__}"
    return Recording(weights=FIXED) if name == "fixed" else Recording()


def _train(name: str, base: tuple[float, ...], scaled: bool):
    """(weights of every step (steps, T), base weights b (T,), trainer)."""
    set_seed(0)
    tasks = [TaskSpec("big", weight=base[0]), TaskSpec("small", weight=base[1]),
             TaskSpec("click", kind="binary", weight=base[2])]
    net = HardSharing(5, tasks, hidden=(16,))
    weighting = _recording(name)
    trainer = Trainer(net, weighting=weighting, lr=0.03, batch_size=BATCH, max_epochs=EPOCHS,
                      grad_balance=0, seed=0, device="cpu", standardize=scaled,
                      normalize_losses=scaled)
    trainer.fit(_data())
    W = torch.stack(weighting.recorded)
    assert W.shape == (EPOCHS * N // BATCH, 3)
    return W, torch.tensor(base, dtype=F64), trainer


def _assert_sum(W: torch.Tensor, expected: float) -> None:
    err = (W.sum(1) - expected).abs().max()
    assert float(err) <= RTOL * expected, f"sums {W.sum(1).tolist()}, expected {expected}"


def _assert_moves(W: torch.Tensor, b: torch.Tensor) -> None:
    """The weights adapt: otherwise a kept sum would be checked on the base weights alone."""
    assert float((W - b).abs().max()) > 1e-3 * float(b.max())


def _assert_drifts(W: torch.Tensor, start: float) -> None:
    """The sum is not kept: some step's sum is off its start by more than DRIFT of it."""
    off = float((W.sum(1) - start).abs().max())
    assert off > DRIFT * start, f"sums {W.sum(1).tolist()} stay near {start}"


def _check(name: str, W: torch.Tensor, b: torch.Tensor) -> None:
    T, total = len(b), float(b.sum())
    assert bool(torch.isfinite(W).all())
    if name == "equal":  # w = b
        assert torch.equal(W, b.expand_as(W))
        _assert_sum(W, total)
    elif name == "fixed":  # the given weights, as given
        expected = torch.tensor([FIXED["big"], *b[1:].tolist()], dtype=F64)
        assert torch.allclose(W, expected.expand_as(W), rtol=RTOL, atol=0)
        _assert_sum(W, float(expected.sum()))
    elif name in ("random", "dwa", "gradnorm", "famo"):  # sum(b), each >= 0
        assert bool((W >= 0).all())
        _assert_sum(W, total)
        _assert_moves(W, b)
    elif name == "imtl":  # sum(b); a weight may be negative
        _assert_sum(W, total)
        _assert_moves(W, b)
    elif name == "mgda":  # T alpha_t b_t, alpha on the simplex: sum_t w_t / b_t = T
        assert bool((W >= 0).all())
        stationary = (W == 0).all(1)  # documented: 0 at a Pareto-stationary point
        assert not bool(stationary.all())
        _assert_sum(W[~stationary] / b, T)
        if bool((b == 1).all()):
            _assert_sum(W[~stationary], T)
        _assert_moves(W, b)
    elif name == "uncertainty":  # b_t e^{-s_t}: positive, starts at b, keeps no sum
        assert bool((W > 0).all())
        assert torch.allclose(W[0], b, rtol=RTOL, atol=0)  # init = 0
        _assert_drifts(W[-1:], total)  # the end of the training is off sum(b)
    elif name in ("pcgrad", "upgrad"):  # w_t >= b_t, more where gradients conflict
        assert bool((W >= b * (1 - RTOL)).all())
        _assert_drifts(W, total)
    elif name == "cagrad":  # w_t >= b_t / (1 + c^2), c = 0.5
        assert bool((W >= b / 1.25 * (1 - RTOL)).all())
        _assert_drifts(W, total)
    elif name == "nash_mtl":  # alpha_t > 0 (or all 0), scaling like 1 / |g_t|
        stationary = (W == 0).all(1)
        assert not bool(stationary.all())  # some steps weigh the tasks at all
        assert bool((W[~stationary] > 0).all())
        _assert_drifts(W, total)
    elif name == "aligned_mtl":  # B b: no sum, entries of any sign
        _assert_drifts(W, total)
    else:  # pragma: no cover - a new weighting needs its documented sum here
        raise AssertionError(f"no documented sum for {name!r}")


def test_every_weighting_is_covered():
    assert sorted(NAMES) == sorted(WEIGHTINGS)


@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
@pytest.mark.parametrize("base", list(BASES), ids=list(BASES))
@pytest.mark.parametrize("name", NAMES)
def test_weights_sum_as_documented(name, base, scaled):
    W, b, trainer = _train(name, BASES[base], scaled)
    _check(name, W, b)
    # the history logs each epoch's mean weights: the same sums
    cols = [f"weight/{t}" for t in ("big", "small", "click")]
    logged = torch.tensor(trainer.history[cols].to_numpy(), dtype=F64)
    means = W.reshape(EPOCHS, -1, 3).mean(1)
    assert torch.allclose(logged, means, rtol=1e-5, atol=1e-6 * float(W.abs().max()))
