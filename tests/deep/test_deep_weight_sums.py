"""What each weighting's weights sum to (or that they keep no sum), on every step of a training.

A hard-sharing net learns three tasks of very different loss scales: a regression target in the
hundreds, one in units, and a binary label. Each of the 27 weightings trains it for a few epochs
through :class:`regmtl.deep.Trainer`; a subclass of the weighting records the (T,) weights that
every ``backward`` returns (the history's ``weight/TASK`` columns are their epoch means) and the
loss values it was given, and the test checks the sum documented in :mod:`regmtl.deep.weighting`,
with unit and with unequal base weights (``TaskSpec.weight``), and with the trainer's loss
scaling on and off. Only the weights are checked, never the training: the loss values serve
the methods whose weights are functions of them (gls, stch).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _weighting_cases import ENTRIES  # noqa: E402

from regmtl.deep import HardSharing, TaskSpec, Trainer, set_seed  # noqa: E402
from regmtl.deep.weighting import WEIGHTINGS  # noqa: E402

F64 = torch.float64
#: the weightings of the bank (``tests/_weighting_cases.py``), each with the law of its sums
NAMES = [key for key in ENTRIES if ":" not in key]
BASES = {"unit": (1.0, 1.0, 1.0), "unequal": (0.5, 2.0, 1.0)}
FIXED = {"big": 0.25}  # "fixed": the other tasks keep their base weight
#: |sum - expected| <= RTOL * expected (the trainer hands float32 losses to the weighting)
RTOL = 1e-5
#: a sum that is not kept leaves its starting value by more than this fraction of it
DRIFT = 0.1
EPOCHS, BATCH, N = 6, 32, 128  # 24 steps; DWA moves from the third epoch on
#: STCH's steps on the log-loss sum (its default ``warmup_epochs``) before the nadir is fixed
STCH_WARMUP = WEIGHTINGS["stch"]().warmup_epochs * (N // BATCH)


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
            self.recorded, self.losses = [], []

        def backward(self, losses, *args, **kwargs):
            w = super().backward(losses, *args, **kwargs)
            self.recorded.append(w.detach().to("cpu", F64).clone())
            self.losses.append(losses.detach().to("cpu", F64).clone())
            return w

    Recording.__name__ = Recording.__qualname__ = f"Recording{cls.__name__}"
    return Recording(weights=FIXED) if name == "fixed" else Recording()


def _train(name: str, base: tuple[float, ...], scaled: bool):
    """(weights of every step (steps, T), the losses they were given (steps, T), base weights b
    (T,), trainer)."""
    set_seed(0)
    tasks = [TaskSpec("big", weight=base[0]), TaskSpec("small", weight=base[1]),
             TaskSpec("click", kind="binary", weight=base[2])]
    net = HardSharing(5, tasks, hidden=(16,))
    weighting = _recording(name)
    trainer = Trainer(net, weighting=weighting, lr=0.03, batch_size=BATCH, max_epochs=EPOCHS,
                      grad_balance=0, seed=0, device="cpu", standardize=scaled,
                      normalize_losses=scaled)
    trainer.fit(_data())
    W, L = torch.stack(weighting.recorded), torch.stack(weighting.losses)
    assert W.shape == L.shape == (EPOCHS * N // BATCH, 3)
    return W, L, torch.tensor(base, dtype=F64), trainer


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


def _check(law: str | None, W: torch.Tensor, b: torch.Tensor,
           L: torch.Tensor | None = None) -> None:
    """``law`` what the weights sum to (a weighting's ``sums`` in the bank; None: finite weights
    only), ``W`` the weights of every step, ``b`` the base weights, ``L`` the losses of every
    step (needed by gls and stch only)."""
    T, total = len(b), float(b.sum())
    assert bool(torch.isfinite(W).all())
    if law == "base":  # w = b (equal)
        assert torch.equal(W, b.expand_as(W))
        _assert_sum(W, total)
    elif law == "given":  # the given weights, as given (fixed)
        expected = torch.tensor([FIXED["big"], *b[1:].tolist()], dtype=F64)
        assert torch.allclose(W, expected.expand_as(W), rtol=RTOL, atol=0)
        _assert_sum(W, float(expected.sum()))
    elif law == "sum_b":  # sum(b), each >= 0
        assert bool((W >= 0).all())
        _assert_sum(W, total)
        _assert_moves(W, b)
    elif law == "sum_b_signed":  # sum(b); a weight may be negative
        _assert_sum(W, total)
        _assert_moves(W, b)
    elif law == "mgda":  # T alpha_t b_t, alpha on the simplex: sum_t w_t / b_t = T
        assert bool((W >= 0).all())
        stationary = (W == 0).all(1)  # documented: 0 at a Pareto-stationary point
        assert not bool(stationary.all())
        _assert_sum(W[~stationary] / b, T)
        if bool((b == 1).all()):
            _assert_sum(W[~stationary], T)
        _assert_moves(W, b)
    elif law == "uncertainty":  # b_t e^{-s_t}: positive, starts at b, keeps no sum
        assert bool((W > 0).all())
        assert torch.allclose(W[0], b, rtol=RTOL, atol=0)  # init = 0
        _assert_drifts(W[-1:], total)  # the end of the training is off sum(b)
    elif law == "at_least_b":  # w_t >= b_t, more where gradients conflict
        # (gradvac: each b_t g_t only moved toward the others, by positive multiples)
        assert bool((W >= b * (1 - RTOL)).all())
        _assert_drifts(W, total)
    elif law == "cagrad":  # w_t >= b_t / (1 + c^2), c = 0.5
        assert bool((W >= b / 1.25 * (1 - RTOL)).all())
        _assert_drifts(W, total)
    elif law == "positive":  # > 0 (or all 0), scaling like a power of 1 / |g_t|
        stationary = (W == 0).all(1)
        assert not bool(stationary.all())  # some steps weigh the tasks at all
        assert bool((W[~stationary] > 0).all())
        _assert_drifts(W, total)
    elif law == "no_sum":  # e.g. aligned_mtl (B b, entries of any sign), config
        _assert_drifts(W, total)
    elif law in ("sum_b_positive", "sum_b_positive_from_b"):  # sum(b), each > 0
        assert bool((W > 0).all())
        _assert_sum(W, total)
        _assert_moves(W, b)
        if law == "sum_b_positive_from_b":  # w = b at the start: the first step only records E^(0)
            assert torch.allclose(W[0], b, rtol=RTOL, atol=0)
    elif law == "simplex":  # T lambda_t b_t, lambda on the simplex: sum_t w_t / b_t = T
        assert bool((W >= 0).all())
        _assert_sum(W / b, T)
        if bool((b == 1).all()):
            _assert_sum(W, T)
        _assert_moves(W, b)
    elif law == "sdmgrad":  # b_t (T w_t + lam) / (1 + lam), w on the simplex: sum_t w_t / b_t = T
        stationary = (W == 0).all(1)  # documented: all 0 where the update is 0
        assert not bool(stationary.all())
        _assert_sum(W[~stationary] / b, T)
        if bool((b == 1).all()):
            _assert_sum(W[~stationary], T)
        assert bool((W[~stationary] >= b * 0.3 / 1.3 * (1 - RTOL)).all())  # lam = 0.3
        _assert_moves(W, b)
    elif law == "dualproj":  # b + lambda >= b, lambda >= 0: no fixed sum (or all 0)
        stationary = (W == 0).all(1)
        assert not bool(stationary.all())
        assert bool((W[~stationary] >= b * (1 - RTOL)).all())
        _assert_moves(W, b)  # some step projects: its sum exceeds sum(b)
    elif law == "graddrop":  # the fraction of each b_t g_t kept: w_t in [0, b_t]
        assert bool((W >= 0).all())
        assert bool((W <= b * (1 + RTOL)).all())
        _assert_drifts(W, total)
    elif law == "db_mtl":  # alpha_t = max_s |h_s| / |h_t| on the tracked gradients: >= 1,
        # 1 for the largest, b not involved (it weights the heads' log-losses)
        assert bool((W >= 1 - RTOL).all())
        assert torch.allclose(W.min(1).values, torch.ones(len(W), dtype=F64), rtol=RTOL, atol=0)
        _assert_drifts(W, T)
    elif law == "gls":  # w_t = b_t GM / L_t, GM the b-weighted geometric mean of the L_t
        assert L is not None and bool((L > 0).all())
        gm = torch.exp((b * L.log()).sum(1, keepdim=True) / total)
        assert torch.allclose(W * L / b, gm.expand_as(W), rtol=RTOL, atol=0)
        _assert_drifts(W, total)
    elif law == "stch":
        assert L is not None and bool((L > 0).all())
        warm, after = slice(0, STCH_WARMUP), slice(STCH_WARMUP, None)
        # the warm-up on sum_t b_t log L_t: w_t = b_t / L_t
        assert torch.allclose(W[warm] * L[warm], b.expand_as(W[warm]), rtol=RTOL, atol=0)
        # then w_t = S b_t p_t / L_t, S = sum(b), p the softmax of b_t log(L_t / n_t) / mu
        p = W[after] * L[after] / (total * b)
        _assert_sum(p, 1.0)
        # with the nadir n fixed (mu = 1): log p_t - b_t log L_t = -b_t log n_t + a constant
        r = p.log() - b * L[after].log()
        r = r - r[:, :1]
        assert torch.allclose(r, r[:1].expand_as(r), rtol=0, atol=1e-5)
        _assert_drifts(W, total)
    elif law is not None:  # pragma: no cover - a law the bank names must be written here
        raise AssertionError(f"no law {law!r} of the weights' sums")


def test_every_weighting_is_covered():
    assert sorted(NAMES) == sorted(WEIGHTINGS)


@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
@pytest.mark.parametrize("base", list(BASES), ids=list(BASES))
@pytest.mark.parametrize("name", NAMES)
def test_weights_sum_as_documented(name, base, scaled):
    W, L, b, trainer = _train(name, BASES[base], scaled)
    _check(ENTRIES[name].sums, W, b, L)
    # the history logs each epoch's mean weights: the same sums
    cols = [f"weight/{t}" for t in ("big", "small", "click")]
    logged = torch.tensor(trainer.history[cols].to_numpy(), dtype=F64)
    means = W.reshape(EPOCHS, -1, 3).mean(1)
    assert torch.allclose(logged, means, rtol=1e-5, atol=1e-6 * float(W.abs().max()))
