"""A fit, a prediction or an evaluation inside a caller's ``torch.autocast`` runs with that
autocast turned off, after one warning naming ``amp=``: the trainer owns its precision. Before,
a fit inside ``torch.autocast("cpu", torch.bfloat16)`` trained silently in bfloat16 and
learned next to nothing (the loss of the fit below fell to 0.375 instead of 0.039)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import DeepMultiTaskRegressor, HardSharing, Trainer  # noqa: E402


def problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 8))
    y = {"a": X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(512),
         "b": np.sin(X[:, 2]) + X[:, 3]}
    return X, y


def fit() -> Trainer:
    torch.manual_seed(0)
    net = HardSharing(8, ["a", "b"], (32,))
    return Trainer(net, lr=1e-2, batch_size=64, max_epochs=10, seed=0, device="cpu",
                   grad_balance=0).fit(problem())


def autocast_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "autocast" in str(w.message)]


def test_fit_inside_a_bf16_autocast_learns_as_the_float32_fit_and_says_so():
    plain = fit()
    with warnings.catch_warnings(record=True) as record, \
            torch.autocast("cpu", torch.bfloat16):
        warnings.simplefilter("always")
        inside = fit()
        assert torch.is_autocast_enabled("cpu")  # the caller's context is left as it was
    said = autocast_warnings(record)
    assert len(said) == 1  # once, not again by the validation or per step
    assert "Trainer.fit" in said[0] and "amp=" in said[0] and "'cpu'" in said[0]
    np.testing.assert_array_equal(inside.history["loss"].to_numpy(),
                                  plain.history["loss"].to_numpy())
    for p, q in zip(inside.net.parameters(), plain.net.parameters(), strict=True):
        assert p.dtype == torch.float32 and torch.equal(p, q)
    loss = plain.history["loss"].to_numpy()
    assert loss[-1] < 0.05 * loss[0]  # it learns: 1.77 -> 0.039


def test_predict_and_evaluate_inside_an_autocast_give_float32_results():
    tr = fit()
    X, y = problem()
    pred, scores = tr.predict(X), tr.evaluate((X, y))
    with warnings.catch_warnings(record=True) as record, \
            torch.autocast("cpu", torch.bfloat16):
        warnings.simplefilter("always")
        pred_in, scores_in = tr.predict(X), tr.evaluate((X, y))
    said = autocast_warnings(record)
    assert len(said) == 2 and "Trainer.predict" in said[0] and "Trainer.evaluate" in said[1]
    for k in pred:
        np.testing.assert_array_equal(pred_in[k], pred[k])
    assert scores_in == scores


def test_wrapper_inside_an_autocast_fits_and_predicts_as_without():
    X, y = problem()
    Y = np.column_stack([y["a"], y["b"]])

    def wrapper():
        return DeepMultiTaskRegressor(hidden=(16,), max_epochs=5, random_state=0,
                                      device="cpu")  # (a CPU autocast: the fit on the CPU)

    plain = wrapper().fit(X, Y)
    with warnings.catch_warnings(record=True) as record, \
            torch.autocast("cpu", torch.bfloat16):
        warnings.simplefilter("always")
        inside = wrapper().fit(X, Y)
        pred = inside.predict(X)
    said = autocast_warnings(record)
    assert len(said) == 2  # the fit (its trainer's fit runs without it) and the prediction
    assert "DeepMultiTaskRegressor.fit" in said[0] and "amp=" in said[0]
    assert "a prediction of DeepMultiTaskRegressor" in said[1]
    np.testing.assert_array_equal(pred, plain.predict(X))


def test_no_warning_without_an_autocast():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*autocast.*")
        tr = fit()
        tr.predict(problem()[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("outer", ["float16", "bfloat16"])
def test_amp_fit_inside_a_cuda_autocast_equals_the_amp_fit(outer):
    """The trainer's own AMP inside a caller's CUDA autocast: torch empties its cast cache only
    on leaving the outermost autocast region, so with the cache on every step read the weights
    cast at the first one (measured on an H100: loss 2.21 -> 2.18 in 6 epochs against
    2.14 -> 1.45). The trainer's autocast keeps no cache: the two fits are the same."""
    def amp_fit() -> Trainer:
        torch.manual_seed(0)
        net = HardSharing(8, ["a", "b"], (32,))
        return Trainer(net, lr=1e-2, batch_size=64, max_epochs=6, seed=0, device="cuda",
                       amp=True, grad_balance=0).fit(problem())

    plain = amp_fit()
    with warnings.catch_warnings(), torch.autocast("cuda", getattr(torch, outer)):
        warnings.simplefilter("ignore")
        inside = amp_fit()
    np.testing.assert_allclose(inside.history["loss"], plain.history["loss"], rtol=1e-6)
    assert plain.history["loss"].iloc[-1] < 0.5 * plain.history["loss"].iloc[0]


def test_the_warnings_of_a_fit_point_at_the_callers_line():
    """Warnings raised inside a fit or a prediction name the user's line, not regmtl's (the
    precision guard adds a frame around them)."""
    X, y = problem()
    Y = np.column_stack([y["a"], y["b"]])
    with warnings.catch_warnings(record=True) as record, torch.autocast("cpu", torch.bfloat16):
        warnings.simplefilter("always")
        m = DeepMultiTaskRegressor(hidden=(8,), max_epochs=2, device="cpu", alpha=0.1).fit(X, Y)
        m.predict(X)
        fit()
    said = [w for w in record if "autocast" in str(w.message) or "alpha=" in str(w.message)]
    assert len(said) == 4  # alpha without a penalty; the wrapper's fit, its prediction; a fit
    assert {w.filename for w in said} == {__file__}
