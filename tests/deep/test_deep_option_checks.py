"""Options of the deep trainer, its reports, ESMM and the deep estimators: checked by type and
range, never truncated or read loosely; the accepted values give the documented numbers."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from regmtl._options import check_option  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ESMM,
    DeepMultiTaskRegressor,
    EarlyStopping,
    HardSharing,
    Trainer,
    esmm_targets,
    set_seed,
)
from regmtl.report import comparison_report, training_report  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((48, 3))
Y = {"a": X[:, 0], "b": X[:, 0] - X[:, 1]}


def _net(seed: int = 0) -> HardSharing:
    set_seed(seed)
    return HardSharing(3, ["a", "b"], hidden=(8,))


def _history(**kw) -> pd.DataFrame:
    kw = {"max_epochs": 3, "batch_size": 16, "lr": 0.05, **kw}
    return Trainer(_net(), **kw).fit((X, Y)).history


# ------------------------------------------------------------------ Trainer options
@pytest.mark.parametrize("value", [-1.0, 0, 0.0, math.nan, math.inf, "1.0", True])
def test_grad_clip_refused(value):
    # before: -1.0 trained by gradient ascent, nan to NaN predictions, 0 never moved
    with pytest.raises(ValueError, match=r"grad_clip must be a finite number > 0 or None"):
        Trainer(_net(), grad_clip=value)


@pytest.mark.parametrize("name, value", [
    ("max_epochs", 2.7), ("batch_size", 16.9), ("seed", 1.5), ("grad_balance", 1.0),
    ("early_stopping", 2.5), ("max_epochs", 0), ("batch_size", -4), ("seed", -1),
    ("max_epochs", "3"), ("early_stopping", 0)])
def test_counts_are_ints_never_truncated(name, value):
    # before: max_epochs=2.7 ran 2 epochs, batch_size=16.9 ran batches of 16
    with pytest.raises(ValueError, match=rf"^{name} must be ('auto' or )?an int (>= \d|in \[0, )"):
        Trainer(_net(), **{name: value})


@pytest.mark.parametrize("name, value", [
    ("restore_best", "no"), ("progress", "yes"), ("standardize", 1),
    ("normalize_losses", "False"), ("lazy_heads", 0), ("amp", 1), ("distributed", "maybe"),
    ("early_stopping", True)])
def test_flags_are_bools(name, value):
    # before: restore_best="no" was taken as True, distributed="maybe" asked for torchrun,
    # early_stopping=True raised an AttributeError
    with pytest.raises(ValueError, match=rf"^{name} must be "):
        Trainer(_net(), **{name: value})


@pytest.mark.parametrize("name, value, words", [
    ("lr", math.inf, "a finite number > 0"), ("lr", 0, "a finite number > 0"),
    ("weight_decay", -1e-3, "a finite number >= 0"),
    ("dominance", math.nan, r"in \(0, 1\] or None"),
    ("device", 3, "a string or a torch.device"), ("optimizer", "rmsprop", "one of 'adam'"),
    ("checkpoint_dir", 3, "a string, an os.PathLike or None")])
def test_other_options_refused(name, value, words):
    with pytest.raises(ValueError, match=rf"^{name} must be {words}"):
        Trainer(_net(), **{name: value})


def test_numpy_scalars_give_the_python_values_run():
    ref = _history(max_epochs=3, batch_size=16, lr=0.05, grad_balance=1, restore_best=True)
    got = _history(max_epochs=np.int64(3), batch_size=np.int32(16), lr=np.float64(0.05),
                   grad_balance=np.int64(1), restore_best=np.bool_(True))
    assert len(got) == 3
    np.testing.assert_array_equal(got["loss"].to_numpy(), ref["loss"].to_numpy())
    trainer = Trainer(_net(), max_epochs=np.int64(3), early_stopping=np.int64(4))
    assert type(trainer.max_epochs) is int and trainer.early_stopping.patience == 4


def _one_sgd_step(grad_clip, lr=0.1):
    """Parameters before and after one full-batch SGD step (equal weights, no monitor)."""
    net = _net(1)
    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    Trainer(net, optimizer="sgd", lr=lr, max_epochs=1, batch_size=len(X), grad_clip=grad_clip,
            grad_balance=0, device="cpu").fit((X, Y))
    after = torch.cat([p.detach().flatten() for p in net.parameters()])
    return before.double(), after.double()


def test_grad_clip_matches_clip_grad_norm():
    # the gradient g of the first step, read off an unclipped SGD step: g = (before - after)/lr
    before, after = _one_sgd_step(None)
    g = (before - after) / 0.1
    norm = float(g.norm())
    c = 0.5
    assert norm > 2 * c  # the clip is active
    b2, clipped = _one_sgd_step(c)
    torch.testing.assert_close(b2, before)
    # torch.nn.utils.clip_grad_norm_: g <- g * min(1, c / (||g|| + 1e-6))
    expected = before - 0.1 * g * min(1.0, c / (norm + 1e-6))
    torch.testing.assert_close(clipped, expected, rtol=1e-5, atol=1e-6)
    assert float(((before - clipped) / 0.1).norm()) == pytest.approx(c, rel=1e-4)
    # and it still trains: a few epochs lower the loss
    loss = _history(grad_clip=c, max_epochs=5)["loss"].to_numpy()
    assert loss[-1] < 0.5 * loss[0]


@pytest.mark.parametrize("kw, name", [
    (dict(patience=2.5), "patience"), (dict(patience="3"), "patience"),
    (dict(patience=0), "patience"), (dict(patience=True), "patience"),
    (dict(min_delta=-1.0), "min_delta"), (dict(min_delta=math.nan), "min_delta"),
    (dict(min_delta=math.inf), "min_delta"), (dict(monitor=3), "monitor"),
    (dict(mode="up"), "mode")])
def test_early_stopping_fields(kw, name):
    with pytest.raises(ValueError, match=rf"^EarlyStopping\.{name} must be "):
        EarlyStopping(**kw)


def test_early_stopping_numpy_fields_become_python():
    stop = EarlyStopping(patience=np.int64(3), min_delta=np.float32(0.25))
    assert (type(stop.patience), stop.patience) == (int, 3)
    assert (type(stop.min_delta), stop.min_delta) == (float, 0.25)


def test_check_option_words():
    assert check_option("x", np.int16(3), "int", low=1) == 3
    assert check_option("x", None, "real", none=True) is None
    assert check_option("x", "auto", "bool", also=("auto",)) == "auto"
    with pytest.raises(ValueError, match=r"^x must be an int in \[0, 5\], got 6\. Fix it\.$"):
        check_option("x", 6, "int", low=0, high=5, fix="Fix it.")


# ------------------------------------------------------------------ training_report
@pytest.fixture(scope="module")
def fitted():
    net = _net()
    return Trainer(net, max_epochs=3, batch_size=16, lr=0.05).fit((X, Y), val=(X, Y))


def test_report_refuses_an_empty_history(fitted):
    # before: pandas "Encountered all NA values"
    with pytest.raises(ValueError, match="the history holds no epoch"):
        training_report(fitted.history.iloc[:0], created="d")


def test_report_with_unmeasured_gradient_shares(fitted):
    h = fitted.history
    shares = [c for c in h.columns if c.startswith("grad_share/")]
    assert len(shares) == 2
    html = training_report(h.assign(**dict.fromkeys(shares, np.nan)), created="d").to_html()
    assert "were not measured in the last three epochs" in html  # before: all NA values
    # one epoch unmeasured: the largest share is the mean over the measured epochs
    part = h.copy()
    part.loc[part.index[-1], shares] = np.nan
    means = {c.split("/")[1]: np.nanmean(part[c].to_numpy()[-3:]) for c in shares}
    top = max(means, key=means.get)
    html = training_report(part, created="d").to_html()
    assert f"{top}, {means[top]:.0%}" in html


def _saved_config(tmp_path):
    """(path, content) of the config.json of a small deep estimator saved in tmp_path/m."""
    model = DeepMultiTaskRegressor(hidden=(4,), max_epochs=2, batch_size=16,
                                   early_stopping=False).fit(X, np.column_stack(list(Y.values())))
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    return path, json.loads(path.read_text())


def test_report_of_a_loaded_estimator_without_epochs(tmp_path):
    import regmtl

    path, config = _saved_config(tmp_path)
    attrs = config["estimator"]["attributes"]
    attrs["n_iter_"], attrs["best_epoch_"] = 0, 0
    for col in attrs["history_"].values():
        col["shape"], col["values"] = [0], []
    path.write_text(json.dumps(config))
    loaded = regmtl.load(tmp_path / "m")
    assert loaded.n_iter_ == 0
    with pytest.raises(ValueError, match=r"no epoch \(n_iter_ = 0\)"):
        training_report(loaded, created="d")


def test_report_refuses_a_best_epoch_outside_the_history(fitted):
    class Record:  # what a loaded record with an inconsistent best epoch holds
        history_ = fitted.history
        best_epoch_ = 7

    with pytest.raises(ValueError, match="best_epoch_ = 7 is not one of the history's 3"):
        training_report(Record(), created="d")


@pytest.mark.parametrize("kw, name", [
    (dict(n_jobs="x"), "n_jobs"), (dict(n_jobs=0), "n_jobs"), (dict(n_jobs=1.5), "n_jobs"),
    (dict(n_jobs=True), "n_jobs"), (dict(dominance=math.nan), "dominance"),
    (dict(dominance=0), "dominance"), (dict(dominance="0.9"), "dominance"),
    (dict(title=3), "title"), (dict(created=5), "created")])
def test_report_options(fitted, kw, name):
    # before: n_jobs="x" raised joblib's TypeError
    with pytest.raises(ValueError, match=rf"^{name} must be "):
        training_report(fitted, **kw)


def test_report_n_jobs_accepts_numpy_ints(fitted):
    a = training_report(fitted, created="d", n_jobs=np.int64(1)).to_html()
    b = training_report(fitted, created="d", n_jobs=None).to_html()
    assert a == b


def test_comparison_report_checks_n_jobs_first():
    with pytest.raises(ValueError, match="^n_jobs must be None or a nonzero int"):
        comparison_report(None, n_jobs="x")


# ------------------------------------------------------------------ ESMM
def test_esmm_targets_refuse_zero_impressions():
    with pytest.raises(ValueError, match="no impression"):
        esmm_targets(np.zeros(0), np.zeros(0))


def test_esmm_check_targets():
    net = ESMM(3, hidden=(4,), tower_hidden=())
    ctr = np.array([1.0, 0.0, 0.0, 1.0, np.nan, 0.0])
    ctcvr = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"2 row\(s\) have it: \[1, 5\]\. Build the labels "
                                         r"with esmm_targets"):
        net.check_targets({"ctr": ctr, "ctcvr": torch.from_numpy(ctcvr)})
    ok = esmm_targets([1, 1, 0, 0], [1, 0, np.nan, 0])
    assert net.check_targets(ok) is None
    assert net.check_targets({"ctr": ctr}) is None  # one task: nothing to pair


def test_esmm_training_refuses_a_conversion_without_click():
    set_seed(0)
    net = ESMM(3, hidden=(4,), tower_hidden=())
    ctr = (X[:, 0] > 0).astype(float)
    ctcvr = ctr * (X[:, 1] > 0)
    ctcvr[np.flatnonzero(ctr == 0)[:2]] = 1.0
    with pytest.raises(ValueError, match="cannot be 1 where 'ctr' is 0"):
        Trainer(net, max_epochs=1, batch_size=16).fit((X, {"ctr": ctr, "ctcvr": ctcvr}))


# ------------------------------------------------------------------ deep estimators
XY = (X, np.column_stack(list(Y.values())))
FAST = dict(max_epochs=2, batch_size=16)


@pytest.mark.parametrize("kw, name", [
    (dict(hidden=(2.5,)), r"hidden\[0\]"), (dict(hidden=(8, 0)), r"hidden\[1\]"),
    (dict(hidden=(True,)), r"hidden\[0\]"), (dict(head_hidden=(1.5,)), r"head_hidden\[0\]")])
def test_estimator_widths(kw, name):
    # before: hidden=(2.5,) built a layer of width 2
    with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1"):
        DeepMultiTaskRegressor(**FAST, **kw).fit(*XY)


def test_estimator_numpy_widths_match_python_ints():
    a = DeepMultiTaskRegressor(hidden=(np.int64(6),), **FAST).fit(*XY).predict(X)
    b = DeepMultiTaskRegressor(hidden=(6,), **FAST).fit(*XY).predict(X)
    np.testing.assert_array_equal(a, b)


def test_estimator_alpha_without_penalty_warns():
    # before: alpha=0.5 with penalty=None trained without a penalty, silently; a warning
    # (not an error: scikit-learn's estimator checks set alpha=0.01 on regressors)
    with pytest.warns(UserWarning, match=r"alpha=0\.5 has no effect: penalty=None"):
        a = DeepMultiTaskRegressor(alpha=0.5, **FAST).fit(*XY)
    b = DeepMultiTaskRegressor(**FAST).fit(*XY)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_estimator_early_stopping_without_validation_rows_warns():
    # 48 rows x 0.01 = 0 validation rows: early stopping cannot run; said, not silent
    with pytest.warns(UserWarning, match=r"validation_fraction=0\.01 of 48 rows holds 0"):
        a = DeepMultiTaskRegressor(validation_fraction=0.01, **FAST).fit(*XY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = DeepMultiTaskRegressor(early_stopping=False, **FAST).fit(*XY)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("value", [0, 2.5, "8"])
def test_esmm_predict_cvr_batch_size(value):
    # before: 0 became 1 and 2.5 became 2, silently
    net = ESMM(3, hidden=(4,), tower_hidden=())
    with pytest.raises(ValueError, match=r"^batch_size must be an int >= 1"):
        net.predict_cvr(X, batch_size=value)
    np.testing.assert_allclose(net.predict_cvr(X, batch_size=np.int64(5)),
                               net.predict_cvr(X), rtol=1e-6, atol=1e-7)


def test_transfer_head_counts_are_not_truncated():
    from regmtl.deep import HardSharing, transfer_head

    X = np.random.default_rng(0).standard_normal((30, 3))
    net = HardSharing(3, ["a"], (4,))
    for kw, name in (({"epochs": 2.5}, "epochs"), ({"random_state": 1.5}, "random_state"),
                     ({"epochs": 0}, "epochs")):
        with pytest.raises(ValueError, match=name):
            transfer_head(net, X, X[:, 0], task="new", **kw)


def test_load_refuses_a_best_epoch_after_the_last(tmp_path):
    import regmtl

    path, config = _saved_config(tmp_path)
    config["estimator"]["attributes"]["best_epoch_"] = 5
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"best_epoch_.*after the last epoch \(n_iter_ = 2\)"):
        regmtl.load(tmp_path / "m")
