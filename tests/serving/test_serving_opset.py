"""``export_onnx(target_opset=...)``: graphs written for an older or newer runtime. The linear
estimators' graph kinds (a regressor, a classifier's probabilities, one loss per task with an
offset, a multinomial classifier, named columns) at every default-domain opset from the floor
(11) to the default (17), and above it, run by ONNX Runtime and compared with ``predict`` /
``predict_proba`` to 1e-6 relative in float64 (1e-4 in float32); the operators whose form
changed at opset 13 written in each opset's form; the ``ai.onnx.ml`` opset; deep models
traced at their opsets (12 to torch's highest); and every refusal named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl.cli import main
from regmtl.serving import NotExportable, check_onnx, export_onnx
from regmtl.serving.graph import MIN_ML_OPSET, MIN_OPSET, ML_OPSET, OPSET

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

T, P = 4, 5
TOL = {"float64": 1e-6, "float32": 1e-4}
IDS = np.array(["a", "b", "c", "d"], dtype=object)
OPSETS = list(range(MIN_OPSET, OPSET + 1))
NEWEST = onnx.defs.onnx_opset_version()


def _session(graph):
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))


def _stamps(graph):
    return {o.domain: o.version for o in graph.opset_import}


@pytest.fixture(scope="module")
def models():
    """The four linear graph kinds, fitted once: a long-form regressor (string ids), a binary
    classifier, one loss per task (click, counts, values) served with an offset, and
    multinomial tasks with their own classes."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((k, P)) for k in (60, 80, 50, 70)]
    B = rng.standard_normal((P, T)) * 0.6
    lin = [X @ B[:, t] for t, X in enumerate(Xs)]
    X = pd.DataFrame(np.vstack(Xs), columns=list("vwxyz"))
    task = np.repeat(IDS, [len(x) for x in Xs])
    reg = rm.MultiTaskRegressor("l21", alpha=0.02).fit(
        X, np.concatenate([v + rng.standard_normal(len(v)) for v in lin]), task=task)
    clf = rm.MultiTaskClassifier("l21", alpha=0.01).fit(
        X, np.concatenate([np.where(v > 0, "yes", "no") for v in lin]), task=task)
    mixed = rm.MultiTaskRegressor("l21", alpha=0.01,
                                  loss=["logistic", "poisson", "squared", "huber"]).fit(
        Xs, [(lin[0] > 0).astype(int), rng.poisson(np.exp(lin[1])).astype(float), lin[2],
             lin[3] + rng.standard_normal(len(lin[3]))])
    multi = rm.MultiTaskClassifier("l21", alpha=0.01).fit(
        Xs[:3], [np.digitize(lin[0], [-0.4, 0.4]) + 1, (lin[1] > 0).astype(int) * 5,
                 np.digitize(lin[2], [-0.6, 0.0, 0.6])])
    return {"regressor": reg, "classifier": clf, "mixed": mixed, "multinomial": multi}


def _held_out(n=240, seed=7, ids=IDS):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, P)), rng.choice(np.asarray(ids, dtype=object), n)


def _check_kind(kind, model, graph, dtype):
    """ONNX Runtime on held-out rows in a shuffled task order against the model's own
    methods; returns the largest relative difference."""
    sess = _session(graph)
    tol = TOL[dtype]
    if kind in ("regressor", "classifier"):
        X, t = _held_out()
        Xd = pd.DataFrame(X, columns=list("vwxyz"))
        if kind == "regressor":
            out = sess.run(["prediction"], {"X": X.astype(dtype), "task": t})[0]
            return _rel(out, model.predict(Xd, task=t))
        probs, lab = sess.run(["probabilities", "label"], {"X": X.astype(dtype), "task": t})
        np.testing.assert_array_equal(lab, model.predict(Xd, task=t))
        return _rel(probs, model.predict_proba(Xd, task=t))
    if kind == "mixed":
        X, _ = _held_out()
        t = np.arange(len(X)) % T
        off = np.random.default_rng(3).uniform(-1, 1, len(X))
        value, probs, lab = sess.run(["value", "probabilities", "label"],
                                     {"X": X.astype(dtype), "task": t,
                                      "offset": off.astype(dtype)})
        click = t == 0
        assert np.isnan(value[click]).all() and np.isnan(probs[~click]).all()
        np.testing.assert_array_equal(lab[click], model.predict(X[click], task=t[click]))
        return max(_rel(probs[click], model.predict_proba(X[click], task=t[click])),
                   _rel(value[~click], model.predict(X[~click], task=t[~click],
                                                     offset=off[~click])))
    X, _ = _held_out()
    t = np.arange(len(X)) % 3
    probs, lab = sess.run(["probabilities", "label"], {"X": X.astype(dtype), "task": t})
    np.testing.assert_array_equal(lab, model.predict(X, task=t))
    assert probs.shape == (len(X), len(model.union_classes_))
    assert tol >= _rel(probs.sum(axis=1), np.ones(len(X)))
    return _rel(probs, model.predict_proba(X, task=t))


# ----------------------------------------------------------------------------- linear models
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("kind", ["regressor", "classifier", "mixed", "multinomial"])
def test_every_linear_kind_at_every_opset_from_the_floor_to_the_default(models, kind, opset):
    """Each kind stamped with the opset asked for, equal to predict / predict_proba to 1e-6
    (float64) at every opset from 11 to 17; ``Unsqueeze`` and ``ReduceSum`` take their axes
    as an attribute before opset 13, as an input from 13 on."""
    model = models[kind]
    graph = export_onnx(model, target_opset=opset, offset=kind == "mixed")
    assert _stamps(graph) == {"": opset, "ai.onnx.ml": ML_OPSET}
    onnx.checker.check_model(graph, full_check=True)
    assert _check_kind(kind, model, graph, "float64") <= 1e-6
    changed = [n for n in graph.graph.node if n.op_type in ("Unsqueeze", "ReduceSum")]
    assert changed or kind == "regressor"
    for node in changed:
        attrs = {a.name for a in node.attribute}
        if opset < 13:
            assert len(node.input) == 1 and "axes" in attrs
        else:
            assert len(node.input) == 2 and "axes" not in attrs


@pytest.mark.parametrize("kind", ["regressor", "classifier", "mixed", "multinomial"])
def test_float32_graphs_at_the_floor(models, kind):
    graph = export_onnx(models[kind], dtype="float32", target_opset=MIN_OPSET,
                        offset=kind == "mixed")
    assert _check_kind(kind, models[kind], graph, "float32") <= TOL["float32"]


@pytest.mark.parametrize("opset", [18, 21, NEWEST])
def test_opsets_above_the_default_up_to_the_newest_onnx_knows(models, opset):
    """Newer opsets: each stamped with the first IR version that holds it."""
    for kind in ("mixed", "multinomial"):
        graph = export_onnx(models[kind], target_opset=opset, offset=kind == "mixed")
        assert _stamps(graph)[""] == opset
        assert graph.ir_version == max(8, onnx.helper.find_min_ir_version_for(
            [onnx.helper.make_opsetid("", opset)]))
        assert _check_kind(kind, models[kind], graph, "float64") <= 1e-6
    assert export_onnx(models["regressor"], target_opset=18).ir_version == 8
    assert export_onnx(models["regressor"], target_opset=21).ir_version == 10


def test_named_columns_at_the_floor(models):
    """One input per column, joined by ``Unsqueeze`` in its opset-11 form."""
    model = models["regressor"]
    graph = export_onnx(model, named_columns=True, target_opset=MIN_OPSET)
    X, t = _held_out(seed=9)
    Xd = pd.DataFrame(X, columns=list("vwxyz"))
    out = _session(graph).run(["prediction"], {**{c: Xd[c].to_numpy() for c in "zyxwv"},
                                               "task": t})[0]
    assert _rel(out, model.predict(Xd, task=t)) <= 1e-6
    assert check_onnx(model, graph, Xd, t)["prediction"] <= 1e-6


@pytest.mark.parametrize("ml", [MIN_ML_OPSET, 3, onnx.defs.onnx_ml_opset_version()])
def test_the_ml_opset_of_the_task_encoder(models, ml):
    """``{"ai.onnx.ml": 3}`` (or 2): the same ``LabelEncoder`` stamped with the opset that
    ONNX Runtime 1.16 and older run; string ids (the regressor) and integer ids (the mixed
    model) route as at the default."""
    for kind, given in (("regressor", {"ai.onnx.ml": ml}),
                        ("mixed", {"ai.onnx": 13, "ai.onnx.ml": ml})):
        graph = export_onnx(models[kind], target_opset=given, offset=kind == "mixed")
        assert _stamps(graph) == {"": 13 if kind == "mixed" else OPSET, "ai.onnx.ml": ml}
        assert _check_kind(kind, models[kind], graph, "float64") <= 1e-6


@pytest.mark.parametrize(("given", "match"), [
    (10, r"target_opset=10: the lowest accepted is 11 \(the multinomial label's ArgMax"),
    (NEWEST + 1, rf"target_opset={NEWEST + 1}: the installed onnx .* knows the default "
                 rf"domain's opsets up to {NEWEST}; give 11 to {NEWEST}"),
    ("17", r"target_opset='17': give an int"),
    (True, r"target_opset=True: give an int"),
    (17.0, r"target_opset=17.0: give an int"),
    ({"ai.onnx.ml": 1}, r"target_opset\['ai.onnx.ml'\]=1: the lowest accepted is 2 "
                        r"\(LabelEncoder has typed"),
    ({"ai.onnx.ml": 99}, r"target_opset\['ai.onnx.ml'\]=99: the installed onnx"),
    ({"": 9}, r"target_opset\['ai.onnx'\]=9: the lowest accepted is 11"),
    ({"ai.onnx.preview": 1}, r"unknown domain 'ai.onnx.preview'"),
    ({"": 13, "ai.onnx": 14}, r"the default domain is given twice"),
])
def test_opsets_outside_the_range_are_refused_by_name(models, given, match):
    with pytest.raises(ValueError, match=match):
        export_onnx(models["regressor"], target_opset=given)


def test_an_opset_the_installed_runtime_does_not_run_is_refused_by_name(models, monkeypatch,
                                                                        tmp_path):
    """Where ONNX Runtime cannot open the graph (an opset newer than it knows), the export
    names target_opset and the runtime, and writes nothing."""
    from regmtl.serving import export as exporting

    def refuse(source):
        raise RuntimeError("Opset 28 is under development and support for this is limited.")

    monkeypatch.setattr(exporting, "_session", refuse)
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=r"target_opset=28: the installed onnxruntime "
                                         r".* does not run the graph \(Opset 28 is under"):
        export_onnx(models["regressor"], path, target_opset=28)
    assert not path.exists()
    with pytest.raises(RuntimeError, match="under development"):  # (the default: as it is)
        export_onnx(models["regressor"], path)


def test_the_command_line_takes_the_opsets(models, tmp_path, capsys):
    model = models["mixed"]
    path = tmp_path / "m.npz"
    model.save(path)
    assert main(["export", str(path), "--offset", "--target-opset", "12",
                 "--ml-opset", "3"]) == 0
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert _stamps(graph) == {"": 12, "ai.onnx.ml": 3}
    assert _check_kind("mixed", rm.load(path), graph, "float64") <= 1e-6
    capsys.readouterr()
    assert main(["export", str(path), "--target-opset", "10"]) == 2
    assert "--target-opset 10: the lowest accepted is 11" in capsys.readouterr().err
    assert main(["export", str(path), "--ml-opset", "1"]) == 2
    assert "--ml-opset 1: the lowest accepted is 2" in capsys.readouterr().err


# ----------------------------------------------------------------------------- deep models
@pytest.fixture(scope="module")
def deep_models():
    pytest.importorskip("torch")
    from regmtl.deep import DeepESMMClassifier, DeepMultiTaskClassifier

    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"x": rng.standard_normal(n), "color": rng.choice(
        np.array(["red", "green", None], dtype=object), n), "shop": rng.integers(0, 4, n)})
    task = rng.choice(IDS, n)
    y = np.where(df.x + (df.color == "red") > 0.5, "up", "down")
    kw = dict(hidden=(8,), max_epochs=2, batch_size=64, device="cpu", early_stopping=False)
    X = rng.standard_normal((n, 4))
    click = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = DeepMultiTaskClassifier("mmoe", n_experts=2, categorical_features=["shop"],
                                      **kw).fit(df, y, task=task)
        esmm = DeepESMMClassifier(hidden=(8,), tower_hidden=(4,), max_epochs=2,
                                  device="cpu").fit(X, np.column_stack(
                                      [click, click * (X[:, 1] > 0.5)]))
    return clf, df, task, esmm, X


def _torch_max():
    from regmtl.serving.deep_trace import torch_max_opset

    return torch_max_opset()


@pytest.mark.parametrize("opset", [12, 13, 16, OPSET, 20])
def test_a_deep_model_traced_at_its_opsets(deep_models, opset):
    """An MMoE classifier on a table with categorical columns (named inputs joined by
    ``Unsqueeze``, ``LabelEncoder`` codes, the net traced by torch at the opset): its
    probabilities equal predict_proba to 1e-5, its labels predict's."""
    if opset > _torch_max():
        pytest.skip("the installed torch writes no such opset")
    clf, df, task, _, _ = deep_models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_onnx(clf, target_opset=opset)
    assert _stamps(graph) == {"": opset, "ai.onnx.ml": ML_OPSET}
    rows = np.arange(0, 300, 7)
    held, th = df.iloc[rows], task[rows][::-1]
    feeds = {"x": held.x.to_numpy(), "color": held.color.fillna("").to_numpy(object),
             "shop": held.shop.to_numpy(), "task": th}
    sess = _session(graph)
    probs, lab = sess.run(["probabilities", "label"], feeds)
    for t in IDS:
        mine = th == t
        ref = clf.predict_proba(held[mine], task=th[mine])
        assert _rel(probs[mine, :ref.shape[1]], ref) <= 1e-5
    assert lab.tolist() == clf.predict(held, task=th).tolist()


def test_the_esmm_net_at_the_deep_floor(deep_models):
    """ESMM's CTCVR logit (``logaddexp``, written as max + softplus) at opset 12 and the
    default."""
    _, _, _, esmm, X = deep_models
    for opset in (12, OPSET):
        out = _session(export_onnx(esmm, target_opset=opset)).run(None, {"X": X[:60]})
        assert _rel(out[0], esmm.predict_proba(X[:60])) <= 1e-5
        assert (out[1] == esmm.predict(X[:60])).all()


def test_deep_opsets_outside_torchs_range_are_refused_by_name(deep_models):
    clf = deep_models[0]
    top = _torch_max()
    with pytest.raises(ValueError, match=r"target_opset=11: the lowest accepted for a deep "
                                         r"model is 12 \(torch.onnx.export writes the heads' "
                                         r"einsum from opset 12 on\)"):
        export_onnx(clf, target_opset=11)
    if top < NEWEST:
        with pytest.raises(ValueError, match=rf"target_opset={top + 1}: a deep model's net is "
                                             rf"traced by torch.onnx.export, whose TorchScript "
                                             rf"exporter writes opsets up to {top}"):
            export_onnx(clf, target_opset=top + 1)


def test_a_net_torch_cannot_write_at_the_opset_is_refused_by_name(deep_models, monkeypatch):
    """Where torch.onnx.export has no form of an operator at the opset asked for, the export
    names target_opset and torch's reason."""
    import torch

    clf = deep_models[0]

    def unsupported(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 12 is "
                           "not supported.")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(NotExportable,
                       match=r"target_opset=12: torch.onnx.export could not trace the net at "
                             r"opset 12: RuntimeError: Exporting the operator 'aten::foo'"):
        export_onnx(clf, target_opset=12)


def test_the_axes_of_unsqueeze_and_reduce_sum_are_one_constant_per_value():
    """A graph of many columns reads each axes list from one initializer, not one per node."""
    from regmtl.serving.graph import GraphBuilder

    g = GraphBuilder(np.float64)
    for k in range(20):
        g.unsqueeze(f"x{k}", [1])
        g.reduce_sum(f"y{k}", [1])
        g.unsqueeze(f"z{k}", [0, 1])
    assert len(g.initializers) == 2 and len(g.nodes) == 60
