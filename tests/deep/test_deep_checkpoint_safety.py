"""Deep checkpoints and deep estimators on disk (design.rst section 8): nothing in a file is
trusted.

A checkpoint's config is checked in full and its weights are compared with the net the config
builds before anything is allocated; a saved deep estimator predicts in a new process exactly as
it did; every refusal is a ValueError that names the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import regmtl  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DWA,
    PLE,
    DeepMultiTaskClassifier,
    DeepMultiTaskRegressor,
    HardSharing,
    MMoE,
    TaskSpec,
    load_checkpoint,
    save_checkpoint,
)

FAST = dict(hidden=(8,), max_epochs=5, batch_size=32)


def _refused(fn, *words):
    """fn() raises a ValueError whose message holds every word (the file's path among them)."""
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert str(w) in msg, msg
    return msg


def _checkpoint(tmp_path, net=None):
    net = net or HardSharing(5, [TaskSpec("a"), TaskSpec("b", kind="binary")], hidden=(8, 4))
    return save_checkpoint(tmp_path / "ck", net), net


def _edit_config(folder, edit):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


# ------------------------------------------------------------------ checkpoints (defect 11)
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95, 40])
def test_truncated_weights_are_refused(tmp_path, keep):
    folder, _ = _checkpoint(tmp_path)
    weights = folder / "model.pt"
    raw = weights.read_bytes()
    weights.write_bytes(raw[:int(len(raw) * keep) if isinstance(keep, float) else keep])
    _refused(lambda: load_checkpoint(folder), weights, "truncated or corrupted")


def test_weights_that_are_not_a_state_dict_are_refused(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    weights = folder / "model.pt"
    torch.save([torch.zeros(3)], weights)
    _refused(lambda: load_checkpoint(folder), weights, "state_dict")
    weights.write_bytes(b"not a torch file at all" * 10)
    _refused(lambda: load_checkpoint(folder), weights, "not a readable state_dict")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_in_the_weights_does_not_run(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    marker = tmp_path / "ran"
    torch.save({"trunk.0.weight": _RunsCode(marker)}, folder / "model.pt")
    _refused(lambda: load_checkpoint(folder), folder / "model.pt")
    assert not marker.exists()


def test_compressed_weights_are_refused(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    weights = folder / "model.pt"
    with zipfile.ZipFile(weights) as zin:
        members = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    with zipfile.ZipFile(weights, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in members:
            zout.writestr(name, data)
    _refused(lambda: load_checkpoint(folder), weights, "compressed")


def test_config_whose_n_features_changed_is_refused(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    _edit_config(folder, lambda c: c["net_config"].update(n_features=7))
    _refused(lambda: load_checkpoint(folder), folder / "model.pt", "does not fit",
             "'trunk.0.weight'", "(8, 5)", "(8, 7)")


def test_config_of_a_4_tb_net_is_refused_without_allocating(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    _edit_config(folder, lambda c: c["net_config"].update(hidden=[2**20, 2**20]))
    t0 = time.perf_counter()
    _refused(lambda: load_checkpoint(folder), folder / "config.json", "hidden", "1048576")
    assert time.perf_counter() - t0 < 5


def test_config_of_many_layers_is_refused_before_building(tmp_path):
    folder, _ = _checkpoint(tmp_path, MMoE(5, ["a", "b"], n_experts=2, expert_hidden=(8,)))
    n = sum(v.numel() for v in torch.load(folder / "model.pt", weights_only=True).values())
    _edit_config(folder, lambda c: c["net_config"].update(n_experts=n))
    t0 = time.perf_counter()
    _refused(lambda: load_checkpoint(folder), folder / "config.json", "layers")
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("change, word", [
    ({"hidden": "abc"}, "hidden"), ({"hidden": [8, 0]}, "hidden"),
    ({"hidden": [8.5, 4]}, "hidden"), ({"dropout": 2}, "dropout"),
    ({"dropout": "0.1"}, "dropout"), ({"batch_norm": 1}, "batch_norm"),
    ({"activation": "os.system"}, "activation"), ({"n_features": "5"}, "n_features"),
    ({"n_features": True}, "n_features"), ({"n_features": -1}, "n_features"),
    ({"head_hidden": [[1]]}, "head_hidden"), ({"trunk": "evil"}, "trunk"),
    ({"evil": 1}, "unknown options"),
    ({"tasks": "a"}, "tasks"), ({"tasks": []}, "tasks"),
    ({"tasks": [{"name": "a", "kind": "bogus"}, {"name": "b"}]}, "kind"),
    ({"tasks": [{"name": "a", "n_outputs": 10**9}, {"name": "b"}]}, "task"),
    ({"tasks": [{"name": "a", "loss": "ce"}, {"name": "b"}]}, "loss"),
    ({"tasks": [{"name": "a", "__init__": 1}, {"name": "b"}]}, "task spec"),
], ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else v)
def test_malformed_config_is_refused_with_value_error(tmp_path, change, word):
    folder, _ = _checkpoint(tmp_path)
    _edit_config(folder, lambda c: c["net_config"].update(change))
    _refused(lambda: load_checkpoint(folder), folder / "config.json", word)


@pytest.mark.parametrize("change", [{"format": True}, {"format": 0}, {"format": "1"},
                                    {"net": "os.system"}, {"net_config": [1]}])
def test_malformed_config_header_is_refused(tmp_path, change):
    folder, _ = _checkpoint(tmp_path)
    _edit_config(folder, lambda c: c.update(change))
    _refused(lambda: load_checkpoint(folder), folder)


def test_weights_that_do_not_fit_a_given_net_are_refused(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    other = HardSharing(5, [TaskSpec("a"), TaskSpec("b", kind="binary")], hidden=(8, 3))
    _refused(lambda: load_checkpoint(folder, net=other), folder / "model.pt",
             "the net given", "'trunk.2.weight'")
    state = torch.load(folder / "model.pt", weights_only=True)
    del state["heads.blocks.0.bias0"]
    torch.save(state, folder / "model.pt")
    _refused(lambda: load_checkpoint(folder), folder / "model.pt", "'heads.blocks.0.bias0'")


def test_extra_cannot_overwrite_the_checkpoint_fields(tmp_path):
    with pytest.raises(ValueError, match="format"):
        save_checkpoint(tmp_path, HardSharing(3, ["a"]), {"format": 99})


def test_checkpoints_of_every_net_round_trip(tmp_path):
    tasks = [TaskSpec("a"), TaskSpec("c", kind="multiclass", n_outputs=3)]
    x = torch.randn(4, 5)
    for net in [HardSharing(5, tasks, (8,), head_hidden=(3,), batch_norm=True, dropout=0.1),
                MMoE(5, tasks, 3, expert_hidden=(8,), tower_hidden=()),
                PLE(5, tasks, n_levels=3, batch_norm=True)]:
        folder = save_checkpoint(tmp_path / type(net).__name__, net)
        loaded = load_checkpoint(folder)
        net.eval(), loaded.eval()
        assert all(torch.equal(net(x)[k], loaded(x)[k]) for k in ("a", "c"))


# ------------------------------------------------------------------ deep estimators (defect 12)
def _tasks(seed=0, n=(40, 30, 50), p=4):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((k, p)) for k in n]
    ys = [10 + 3 * X[:, 0] - X[:, 1] + 2 * t for t, X in enumerate(Xs)]
    return Xs, ys


def _long(Xs, ys, names):
    ids = np.repeat(np.array(names, dtype=object), [len(X) for X in Xs])
    perm = np.random.default_rng(1).permutation(len(ids))
    return np.vstack(Xs)[perm], np.concatenate(ys)[perm], ids[perm]


def _cases():
    """(name, fitted estimator, [(method, args, kwargs)])."""
    Xs, ys = _tasks()
    labels = [np.where(y > np.median(y), "high", "low") for y in ys[:2]]
    labels.append(np.array(["a", "b", "c"], dtype=object)[np.digitize(Xs[2][:, 1], [-.5, .5])])
    X, y, ids = _long(Xs, ys, ["x", "y", "z"])
    _, ylab, _ = _long(Xs, [np.where(v > np.median(v), "up", "down") for v in ys],
                       ["x", "y", "z"])
    return [
        ("reg-lists", DeepMultiTaskRegressor(**FAST, weighting=DWA(1.5)).fit(Xs, ys),
         [("predict", (Xs,), {})]),
        ("reg-long", DeepMultiTaskRegressor(architecture="mmoe", n_experts=2, **FAST)
         .fit(X, y, task=ids), [("predict", (X,), {"task": ids})]),
        ("clf-lists", DeepMultiTaskClassifier(architecture="ple", **FAST).fit(Xs, labels),
         [("predict", (Xs,), {}), ("predict_proba", (Xs,), {})]),
        ("clf-long", DeepMultiTaskClassifier(architecture="cgc", **FAST).fit(X, ylab, task=ids),
         [("predict", (X,), {"task": ids}), ("predict_proba", (X,), {"task": ids})]),
        ("clf-single", DeepMultiTaskClassifier(**FAST).fit(Xs[2], labels[2]),
         [("predict", (Xs[2],), {}), ("predict_proba", (Xs[2],), {})]),
    ]


def _plain(v):
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return {"dtype": str(v.dtype), "values": v.tolist()}


def test_saved_estimators_predict_identically_in_a_new_process(tmp_path):
    cases = _cases()
    expected = {}
    for name, est, calls in cases:
        est.save(tmp_path / name)
        expected[name] = [_plain(getattr(est, m)(*a, **kw)) for m, a, kw in calls]
        again = regmtl.load(tmp_path / name)
        assert type(again) is type(est) and again.get_params().keys() == est.get_params().keys()
    calls = {name: [(m, a, kw) for m, a, kw in c] for name, _, c in cases}
    np.save(tmp_path / "inputs.npy", np.array(calls, dtype=object), allow_pickle=True)
    code = f"""
import json, sys
import numpy as np
import regmtl

def plain(v):
    if isinstance(v, list):
        return [plain(x) for x in v]
    return {{"dtype": str(v.dtype), "values": v.tolist()}}

calls = np.load({str(tmp_path / "inputs.npy")!r}, allow_pickle=True).item()
out = {{}}
for name, todo in calls.items():
    est = regmtl.load({str(tmp_path)!r} + "/" + name)
    out[name] = [plain(getattr(est, m)(*a, **kw)) for m, a, kw in todo]
json.dump(out, sys.stdout)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    for name in expected:
        assert got[name] == expected[name], name  # same dtypes, bit-identical floats


def test_saved_estimator_keeps_its_target_scaling_and_fitted_state(tmp_path):
    Xs, ys = _tasks()
    est = DeepMultiTaskRegressor(**FAST).fit(Xs, ys)
    est.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    assert np.array_equal(again.y_mean_, est.y_mean_) and np.array_equal(again.y_scale_,
                                                                        est.y_scale_)
    assert np.mean(np.abs(again.predict(Xs)[2] - ys[2])) < np.std(ys[2])  # not standardized
    assert again.history_.equals(est.history_)
    assert (again.n_iter_, again.best_epoch_, again.input_form_, again.n_features_in_) == \
        (est.n_iter_, est.best_epoch_, est.input_form_, est.n_features_in_)
    assert again.tasks_.tolist() == est.tasks_.tolist() and again.tasks_.dtype == est.tasks_.dtype
    assert isinstance(again.weighting, str) and again.hidden == (8,)
    # the estimator can be fitted again from its saved parameters
    assert again.fit(Xs, ys).score(Xs, ys) == est.fit(Xs, ys).score(Xs, ys)


def test_saved_classifier_keeps_class_dtypes_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((60, 3)), columns=["u", "v", "w"])
    Y = np.column_stack([X["u"] > 0, np.digitize(X["v"], [-.5, .5])]).astype(int)
    clf = DeepMultiTaskClassifier(**FAST).fit(X, Y)
    clf.save(tmp_path / "c")
    again = regmtl.load(tmp_path / "c")
    assert [c.dtype for c in again.classes_] == [c.dtype for c in clf.classes_]
    assert again.feature_names_in_.tolist() == ["u", "v", "w"]
    assert all(np.array_equal(a, b) for a, b in zip(again.predict(X), clf.predict(X),
                                                     strict=True))
    with pytest.raises(ValueError, match="feature names"):
        again.predict(X.rename(columns={"u": "z"}))


def test_unsaveable_parameter_is_named(tmp_path):
    from regmtl.deep import EqualWeighting

    class MyWeighting(EqualWeighting):  # a class of the user's own: no pickle, refused
        pass

    Xs, ys = _tasks()
    est = DeepMultiTaskRegressor(**FAST).fit(Xs, ys)
    est.set_params(weighting=MyWeighting())
    with pytest.raises(TypeError, match="weighting.*MyWeighting cannot be saved"):
        est.save(tmp_path / "m")


def test_net_checkpoint_is_not_an_estimator(tmp_path):
    folder, _ = _checkpoint(tmp_path)
    _refused(lambda: regmtl.load(folder), folder, "load_checkpoint")


def _saved_classifier(tmp_path):
    Xs, ys = _tasks()
    labels = [np.where(y > np.median(y), "high", "low") for y in ys]
    DeepMultiTaskClassifier(**FAST).fit(Xs, labels).save(tmp_path / "est")
    return tmp_path / "est"


def _attrs(edit):
    return lambda c: edit(c["estimator"]["attributes"])


ESTIMATOR_CASES = {
    "method-as-attribute": (_attrs(lambda a: a.update(predict=1)), ["'predict'"]),
    "private-attribute": (_attrs(lambda a: a.update(_classes=1)), ["'_classes'"]),
    "unknown-class": (lambda c: c["estimator"].update({"class": "os.system"}), ["os.system"]),
    "unknown-parameter": (lambda c: c["estimator"]["params"].update(evil=1), ["'evil'"]),
    "bad-parameter": (lambda c: c["estimator"]["params"].update(lr=-1), ["lr"]),
    "bad-weighting": (lambda c: c["estimator"]["params"].update(
        weighting={"weighting": "dwa", "options": {"self": 1}}), ["weighting"]),
    "missing-attribute": (_attrs(lambda a: a.pop("classes_")), ["'classes_'", "missing"]),
    "more-tasks": (_attrs(lambda a: a.update(n_tasks_=4)), ["'tasks_'", "(4,)"]),
    "tasks-short": (_attrs(lambda a: a["tasks_"].update(shape=[2], values=[0, 1])),
                    ["'tasks_'", "(2,)"]),
    "classes-missing-a-task": (_attrs(lambda a: a["classes_"].pop()), ["'classes_'"]),
    "three-classes-binary-head": (_attrs(lambda a: a["classes_"][0].update(
        shape=[3], values=["high", "low", "mid"])), ["heads"]),
    "n-features": (_attrs(lambda a: a.update(n_features_in_=7)), ["features", "7"]),
    "n-features-type": (_attrs(lambda a: a.update(n_features_in_="4")), ["n_features_in_"]),
    "input-form": (_attrs(lambda a: a.update(input_form_="pickle")), ["input_form_"]),
    "single-with-three-tasks": (_attrs(lambda a: a.update(input_form_="single")),
                                ["classes_"]),
    "history-length": (_attrs(lambda a: a.update(n_iter_=99)), ["history_"]),
    "object-dtype": (_attrs(lambda a: a["tasks_"].update(dtype="|O")), ["tasks_", "dtype"]),
    "huge-string-dtype": (_attrs(lambda a: a["tasks_"].update(dtype="<U100000000",
                                                              values=["a", "b", "c"])),
                          ["tasks_", "wider"]),
    "huge-labels-shape": (_attrs(lambda a: a["tasks_"].update(shape=[10**12])),
                          ["tasks_", "shape"]),
    "architecture": (lambda c: c["estimator"]["params"].update(architecture="mmoe"),
                     ["architecture", "MMoE"]),
}


@pytest.mark.parametrize("case", list(ESTIMATOR_CASES))
def test_tampered_estimator_config_is_refused(tmp_path, case):
    folder = _saved_classifier(tmp_path)
    edit, words = ESTIMATOR_CASES[case]
    _edit_config(folder, edit)
    _refused(lambda: regmtl.load(folder), folder / "config.json", *words)


def test_tampered_estimator_weights_are_refused(tmp_path):
    folder = _saved_classifier(tmp_path)
    weights = folder / "model.pt"
    raw = weights.read_bytes()
    weights.write_bytes(raw[:len(raw) // 2])
    _refused(lambda: regmtl.load(folder), weights, "truncated or corrupted")
    Xs, ys = _tasks(p=6)
    labels = [np.where(y > np.median(y), "high", "low") for y in ys]
    other = DeepMultiTaskClassifier(**FAST).fit(Xs, labels)
    save_checkpoint(tmp_path / "other", other.net_)
    weights.write_bytes((tmp_path / "other" / "model.pt").read_bytes())
    _refused(lambda: regmtl.load(folder), weights, "does not fit", "(8, 4)", "(8, 6)")
