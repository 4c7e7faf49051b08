"""A transferred head saves and loads like every estimator (bit-for-bit predictions, the frozen
source net and the source estimator's input preparation included; no pickle; tampered folders
refused), and transfer_head takes on_divergence as the Trainer and the wrappers do."""

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepMultiTaskClassifier,
    DeepMultiTaskRegressor,
    HardSharing,
    MMoE,
    TrainingDiverged,
    TransferredHead,
    set_seed,
    transfer_head,
)
from regmtl.deep.transfer import load_transferred_head  # noqa: E402


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, 4)) * [1, 10, 100, 1e3] + [0, 5, 50, 1e4],
                     columns=["a", "b", "c", "d"])
    X["shop"] = pd.Categorical(rng.choice(["x", "y", "z"], n))
    return X


@pytest.fixture(scope="module")
def source():
    """A fitted regressor on a table with a categorical column and scaled columns (its input
    preparation is part of what the head must keep), with batch norm and dropout."""
    X = _frame(200, 0)
    Y = np.column_stack([X["a"] + X["b"] / 10, X["a"] - (X["shop"] == "x")])
    return DeepMultiTaskRegressor(hidden=(16,), head_hidden=(8,), batch_norm=True,
                                  dropout=0.2, max_epochs=8, batch_size=32).fit(X, Y)


def _outputs(head, X):
    return head.predict_proba(X) if head.kind_ in ("binary", "multiclass") else head.predict(X)


NEW = _frame(40, 1)
CASES = {
    "regression": (NEW["a"].to_numpy() * 2, {}),
    "huber": (NEW["a"].to_numpy() * 2, {"loss": ("huber", 0.5)}),
    "binary": (np.where(NEW["a"] > 0, "yes", "no"), {"kind": "binary"}),
    "multiclass": (np.array(["p", "q", "r", "s"])[np.arange(40) % 4], {"kind": "multiclass"}),
    "count": (np.random.default_rng(2).poisson(3, 40), {"loss": "poisson"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_predicts_bit_for_bit(source, case, tmp_path):
    y, kw = CASES[case]
    head = transfer_head(source, NEW, y, task="new", epochs=6, **kw)
    head.save(tmp_path / "head")
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == [
        "config.json", "model.pt", "source"]
    again = regmtl.load(tmp_path / "head")
    assert isinstance(again, TransferredHead)
    np.testing.assert_array_equal(_outputs(again, NEW), _outputs(head, NEW))
    np.testing.assert_array_equal(again.predict(NEW), head.predict(NEW))
    for name in ("task_", "kind_", "loss_", "n_trainable_", "strategy_"):
        assert getattr(again, name) == getattr(head, name), name
    pd.testing.assert_frame_equal(again.history_, head.history_)
    if head.kind_ in ("binary", "multiclass"):
        np.testing.assert_array_equal(again.classes_, head.classes_)
    assert again.score(NEW, y) == head.score(NEW, y)
    # the frozen source net rides along: its old tasks predict as the source estimator's
    x = source.net_inputs(NEW)
    with torch.no_grad():
        old, new = head.net_.eval()(x), again.net_(x)
    assert list(new) == ["t0", "t1", "new"]
    for task in ("t0", "t1", "new"):
        assert torch.equal(old[task], new[task]), task
    # only the new head trains; the frozen layers stay in evaluation mode
    assert sum(p.numel() for p in again.net_.parameters() if p.requires_grad) \
        == again.n_trainable_
    again.net_.train()
    assert not any(m.training for m in again.net_.trunk.modules())


def test_a_bare_mmoe_net_round_trips(tmp_path):
    set_seed(0)
    net = MMoE(5, ["a", "b"], n_experts=3, expert_hidden=(8,), tower_hidden=(4,))
    X = np.random.default_rng(0).standard_normal((50, 5))
    head = transfer_head(net, X, X[:, 0] > 0, task="c", epochs=5)
    head.save(tmp_path / "mmoe")
    assert not (tmp_path / "mmoe" / "source").exists()
    again = TransferredHead.load(tmp_path / "mmoe")
    np.testing.assert_array_equal(again.predict_proba(X), head.predict_proba(X))
    assert again.net_.task_names == ["a", "b", "c"]
    assert load_transferred_head(tmp_path / "mmoe").n_trainable_ == head.n_trainable_


# ----------------------------------------------------------------------------- tampering
def _saved(tmp_path, source, case="binary"):
    y, kw = CASES[case]
    head = transfer_head(source, NEW, y, task="new", epochs=2, **kw)
    folder = tmp_path / case
    head.save(folder)
    return folder


def _edit(folder, change):
    file = folder / "config.json"
    config = json.loads(file.read_text())
    change(config)
    file.write_text(json.dumps(config))


def _attrs(config):
    return config["estimator"]["attributes"]


@pytest.mark.parametrize("change, match", [
    (lambda c: _attrs(c).update(kind_="regression"),
     r"a regression head saves"),
    (lambda c: _attrs(c).update(kind_="tree"), r"attribute 'kind_' = 'tree' is not one of"),
    (lambda c: _attrs(c)["classes_"].update(values=["no", "yes", "maybe"], shape=[3]),
     r"attribute 'classes_' must hold the binary task's classes"),
    (lambda c: _attrs(c).update(task_="other"), r"the net's last task 'new' \(binary\) is not "
                                                r"the head's 'other'"),
    (lambda c: _attrs(c).update(n_trainable_=3), r"'n_trainable_' is not the size of the new "
                                                 r"head"),
    (lambda c: _attrs(c).update(loss_="poisson"), r"attribute 'loss_' = 'poisson' is not the "
                                                  r"loss of a binary"),
    (lambda c: c["net_config"].update(head_hidden=[4]), r"the weights do not fit the net"),
    (lambda c: c["estimator"].update({"class": "DeepMultiTaskRegressor"}),
     r"not a saved TransferredHead"),
    (lambda c: _attrs(c).update(secret={"__reduce__": 1}), r"a binary head saves"),
])
def test_a_tampered_config_is_refused(source, tmp_path, change, match):
    folder = _saved(tmp_path, source)
    _edit(folder, change)
    with pytest.raises(ValueError, match=r"config\.json was refused: .*" + match):
        TransferredHead.load(folder)


def test_tampered_weights_and_target_map_are_refused(source, tmp_path):
    folder = _saved(tmp_path, source)
    data = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.pt is not a readable state_dict"):
        regmtl.load(folder)
    folder = _saved(tmp_path, source, "regression")
    _edit(folder, lambda c: _attrs(c).update(y_scale_=_attrs(c)["y_scale_"] * 2))
    with pytest.raises(ValueError, match="target map does not match y_mean_ and y_scale_"):
        regmtl.load(folder)
    folder = _saved(tmp_path, source, "count")
    with pytest.raises(ValueError, match=r"more than max_bytes=10"):
        TransferredHead.load(folder, max_bytes=10)
    # the source estimator's folder is checked as every saved estimator
    _edit(folder / "source", lambda c: c["estimator"]["attributes"].update(n_tasks_=5))
    with pytest.raises(ValueError, match=r"source.config\.json was refused"):
        TransferredHead.load(folder)


def test_a_source_estimator_swapped_in_is_refused(source, tmp_path):
    """Another fit of the same estimator (same inputs, other scaling and weights) put in
    ``source`` would prepare the inputs wrongly without a word: it is refused."""
    folder = _saved(tmp_path, source, "regression")
    X = _frame(200, 3)
    other = DeepMultiTaskRegressor(**source.get_params()).set_params(max_epochs=1)
    other.fit(X, np.column_stack([X["a"], X["b"]]))
    shutil.rmtree(folder / "source")
    other.save(folder / "source")
    with pytest.raises(ValueError, match=r"source was refused: its net is not the one the "
                                         r"head in .*model\.pt was trained on"):
        TransferredHead.load(folder)


def test_a_head_on_a_classifier_keeps_its_labels(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    clf = DeepMultiTaskClassifier(hidden=(8,), max_epochs=5).fit(
        X, np.column_stack([X[:, 0] > 0, X[:, 1] > 0]))
    head = transfer_head(clf, X[:30], np.where(X[:30, 2] > 0, "up", "down"), epochs=4)
    head.save(tmp_path / "clf_head")
    again = regmtl.load(tmp_path / "clf_head")
    np.testing.assert_array_equal(again.predict(X), head.predict(X))
    assert again.classes_.tolist() == ["down", "up"]


# ----------------------------------------------------------------------------- on_divergence
def _net():
    set_seed(0)
    return HardSharing(3, ["a", "b"], hidden=(8,))


def test_on_divergence_raise_names_the_task_and_restore_best_keeps_a_finite_head():
    X = np.random.default_rng(0).standard_normal((40, 3))
    y = X[:, 0] * 3
    with pytest.raises(TrainingDiverged, match=r"'new'.*lr=1e\+30"):
        transfer_head(_net(), X, y, epochs=3, lr=1e30)
    with pytest.warns(UserWarning, match="diverged"):
        head = transfer_head(_net(), X, y, epochs=3, lr=1e30, on_divergence="restore_best")
    assert np.isfinite(head.predict(X)).all()
    with pytest.raises(ValueError, match="on_divergence"):
        transfer_head(_net(), X, y, epochs=1, on_divergence="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a healthy head: no warning with either option
        transfer_head(_net(), X, y, epochs=2, on_divergence="restore_best")
