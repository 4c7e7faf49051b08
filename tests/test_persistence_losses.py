"""Saving and loading fits of every loss (issue 46): the loss, a loss per task and a mixed
fit's ``classes_`` round-trip; a file that names an invalid loss is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import regmtl as rm


def _data(seed=0, n=120, p=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    counts = rng.poisson(np.exp(0.5 * X[:, 0]))
    clicks = (X[:, 1] + 0.5 * rng.standard_normal(n) > 0).astype(float)
    rating = X[:, 2] + 0.5 * rng.standard_normal(n)
    positive = np.exp(0.3 * X[:, 3] + 0.2 * rng.standard_normal(n))
    return X, counts, clicks, rating, positive


def _read(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path, arrays):
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _rewrite(path, out, change):
    """``path`` with its header changed by ``change(header)``, written to ``out``."""
    arrays = _read(path)
    header = json.loads(bytes(arrays["__header__"]).decode("utf-8"))
    change(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    _write(out, arrays)
    return out


@pytest.mark.parametrize("loss", ["poisson", "gamma", rm.Huber(delta=0.7), rm.Quantile(0.9),
                                  rm.Poisson(), "huber"])
def test_one_loss_round_trips(tmp_path, loss):
    X, counts, _, rating, positive = _data()
    Y = {"poisson": np.column_stack([counts, counts[::-1]]),
         "gamma": np.column_stack([positive, positive[::-1]])}.get(
        getattr(loss, "name", loss), np.column_stack([rating, rating[::-1]]))
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss).fit(X, Y)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert repr(again.loss) == repr(loss)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.score(X, Y) == model.score(X, Y)
    np.testing.assert_array_equal(again.coef_, model.coef_)


def test_quantile_and_huber_parameters_are_kept(tmp_path):
    X, _, _, rating, _ = _data()
    Y = np.column_stack([rating, 2 * rating])
    model = rm.MultiTaskRegressor("l2", alpha=0.05, loss=rm.Quantile(0.9)).fit(X, Y)
    model.save(tmp_path / "q.npz")
    again = rm.load(tmp_path / "q.npz")
    assert isinstance(again.loss, rm.Quantile) and again.loss.quantile == 0.9
    # about 90 % of the training rows lie at or below the 90th-percentile fit
    below = np.mean(Y <= again.predict(X) + 1e-9)
    assert 0.8 <= below <= 1.0


def test_mixed_fit_round_trips_with_its_classes(tmp_path):
    X, counts, clicks, rating, _ = _data()
    clicks = np.where(clicks > 0, 5.0, 2.0)  # a binary task's own labels
    Y = np.column_stack([clicks, counts, rating])
    loss = ["logistic", rm.Poisson(), "squared"]
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=loss).fit(X, Y)
    assert model.classes_[0].tolist() == [2.0, 5.0]
    assert model.classes_[1] is None and model.classes_[2] is None
    model.save(tmp_path / "mixed.npz")
    again = rm.load(tmp_path / "mixed.npz")
    assert again.classes_[0].tolist() == [2.0, 5.0]
    assert again.classes_[1] is None and again.classes_[2] is None
    pred = again.predict(X)
    np.testing.assert_array_equal(pred, model.predict(X))
    assert set(np.unique(pred[:, 0])) <= {2.0, 5.0}
    assert np.all(pred[:, 1] > 0)  # expected counts
    assert again.score(X, Y) == model.score(X, Y)
    assert [repr(v) for v in again.loss] == ["'logistic'", "Poisson()", "'squared'"]


def test_tuple_of_losses_round_trips(tmp_path):
    X, counts, _, rating, _ = _data()
    Y = np.column_stack([counts, rating])
    model = rm.MultiTaskRegressor("l1", alpha=0.02, loss=("poisson", "huber")).fit(X, Y)
    model.save(tmp_path / "t.npz")
    again = rm.load(tmp_path / "t.npz")
    assert list(again.loss) == ["poisson", "huber"]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_file_without_a_loss_loads_as_squared(tmp_path):
    """A file saved before ``loss=`` existed holds no such parameter."""
    X, _, _, rating, _ = _data()
    Y = np.column_stack([rating, rating[::-1]])
    model = rm.MultiTaskRegressor("l21", alpha=0.02).fit(X, Y)
    model.save(tmp_path / "m.npz")
    old = _rewrite(tmp_path / "m.npz", tmp_path / "old.npz",
                   lambda h: h["params"].pop("loss"))
    again = rm.load(old)
    assert again.loss == "squared"
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def _saved(tmp_path, loss, n_tasks=2):
    X, counts, _, rating, _ = _data()
    Y = np.column_stack([np.abs(rating) + counts] * n_tasks)
    model = rm.MultiTaskRegressor("l2", alpha=0.05, loss=loss).fit(X, Y)
    model.save(tmp_path / "m.npz")
    return tmp_path / "m.npz"


def _set_loss_param(key, value):
    def change(header):
        header["params"]["loss"]["params"][key] = value
    return change


@pytest.mark.parametrize(("loss", "change", "message"), [
    (rm.Quantile(0.9), _set_loss_param("quantile", 1.5), "its loss is invalid"),
    (rm.Quantile(0.9), _set_loss_param("quantile", 0.0), "its loss is invalid"),
    (rm.Huber(1.0), _set_loss_param("delta", 0.0), "its loss is invalid"),
    (rm.Huber(1.0), _set_loss_param("delta", -2.0), "its loss is invalid"),
    (rm.Huber(1.0), _set_loss_param("scale", 1.0), "has no parameter 'scale'"),
    (rm.Huber(1.0), _set_loss_param("epsilon", -1.0), "its loss is invalid"),
    (rm.Huber(1.0), lambda h: h["params"]["loss"].update(name="cauchy"),
     "'cauchy', which is not registered"),
    ("poisson", lambda h: h["params"]["loss"].update(value="negbin"),
     "'negbin', which is not a registered loss"),
    (["poisson", "squared"], lambda h: h["params"]["loss"]["items"].pop(),
     "lists 1 losses for 2 tasks"),
    (["poisson", "squared"],
     lambda h: h["params"]["loss"]["items"].append({"kind": "json", "value": "gamma"}),
     "lists 3 losses for 2 tasks"),
    (["poisson", "squared"],
     lambda h: h["params"]["loss"]["items"].__setitem__(0, {"kind": "json", "value": 3}),
     r"'loss'\[0\] holds a json entry, not a loss"),
    (rm.Huber(1.0), lambda h: h["params"]["loss"].pop("params"), "not a loss entry"),
])
def test_tampered_loss_is_refused(tmp_path, loss, change, message):
    bad = _rewrite(_saved(tmp_path, loss), tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=message) as info:
        rm.load(bad)
    assert "bad.npz" in str(info.value)


def test_tampered_classes_of_a_mixed_fit_are_refused(tmp_path):
    X, counts, clicks, rating, _ = _data()
    Y = np.column_stack([clicks, counts, rating])
    model = rm.MultiTaskRegressor("l21", alpha=0.01, loss=["logistic", "poisson", "squared"])
    model.fit(X, Y).save(tmp_path / "mixed.npz")

    def labels_on_a_count_task(header):
        header["attributes"]["classes_"]["items"][1] = {
            "kind": "labels", "value": [0, 1], "shape": [2]}

    bad = _rewrite(tmp_path / "mixed.npz", tmp_path / "bad.npz", labels_on_a_count_task)
    with pytest.raises(ValueError, match=r"'classes_'\[1\] does not fit the task's loss"):
        rm.load(bad)

    def one_loss(header):
        header["params"]["loss"] = {"kind": "json", "value": "squared"}

    bad = _rewrite(tmp_path / "mixed.npz", tmp_path / "bad2.npz", one_loss)
    with pytest.raises(ValueError, match="not one loss per task"):
        rm.load(bad)

    def short(header):
        header["attributes"]["classes_"]["items"].pop()

    bad = _rewrite(tmp_path / "mixed.npz", tmp_path / "bad3.npz", short)
    with pytest.raises(ValueError, match="list of 3 entries"):
        rm.load(bad)


def test_unregistered_loss_object_is_not_saved(tmp_path):
    from regmtl.datafits import Quadratic

    class Mine(Quadratic):
        pass

    X, _, _, rating, _ = _data()
    model = rm.MultiTaskRegressor("l2", alpha=0.1, loss=Mine()).fit(
        X, np.column_stack([rating, rating]))
    with pytest.raises(TypeError, match="not a registered loss"):
        model.save(tmp_path / "m.npz")


OLD = Path(__file__).resolve().parent / "data" / "old_models"


def test_files_saved_before_losses_still_load():
    """Files written by regmtl at commit 5244d82 (before ``loss=``), by::

        rng = np.random.default_rng(0)
        X = rng.standard_normal((60, 4))
        Y = X @ rng.standard_normal((4, 3)) + 0.1 * rng.standard_normal((60, 3))
        MultiTaskRegressor("l21", 0.01).fit(X, Y).save("regressor_5244d82.npz")
        MultiTaskClassifier("l21", 0.01).fit(X, np.where(Y > 0, "yes", "no")).save(
            "classifier_5244d82.npz")
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = X @ rng.standard_normal((4, 3)) + 0.1 * rng.standard_normal((60, 3))
    reg = rm.load(OLD / "regressor_5244d82.npz")
    assert reg.loss == "squared" and not hasattr(reg, "classes_")
    np.testing.assert_allclose(reg.predict(X), X @ reg.coef_.T + reg.intercept_, rtol=1e-12)
    assert reg.score(X, Y) > 0.99
    clf = rm.load(OLD / "classifier_5244d82.npz")
    assert [c.tolist() for c in clf.classes_] == [["no", "yes"]] * 3
    assert np.mean(clf.predict(X) == np.where(Y > 0, "yes", "no")) > 0.9


def test_a_file_from_before_loss_was_kept_reads_huber_as_it_was_fitted(tmp_path):
    """A file without ``loss_`` (written before the fitted loss was kept): ``"huber"`` then
    meant delta 1.35 in the targets' units, and the loaded model scores with that loss (a
    ``Huber()`` left unbound would refuse to)."""
    path = _saved(tmp_path, "huber")
    old = _rewrite(path, tmp_path / "old.npz", lambda h: h["attributes"].pop("loss_"))
    model = rm.load(old)
    assert model.loss_ == rm.Huber(1.35)
    X, counts, _, rating, _ = _data()
    Y = np.column_stack([np.abs(rating) + counts] * 2)
    assert np.isfinite(model.score(X, Y))
    mixed = _rewrite(_saved(tmp_path, ["huber", "poisson"]), tmp_path / "old2.npz",
                     lambda h: h["attributes"].pop("loss_"))
    assert list(rm.load(mixed).loss_.losses) == [rm.Huber(1.35), rm.Poisson()]
