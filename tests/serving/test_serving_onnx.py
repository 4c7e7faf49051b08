"""Linear models exported to ONNX (``regmtl.serving``): every loss and input form, run by ONNX
Runtime on held-out rows and compared with the model's own ``predict`` / ``predict_proba``
(1e-6 relative in float64, 1e-4 in float32, labels equal), the routing of unseen rows and
unknown task ids, the model card (its certificate absolute and relative to the objective at
W = 0), a tampered graph caught by ``check_onnx``, and the models that are refused by name."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import regmtl as rm
from regmtl.serving import ExportMismatch, NotExportable, check_onnx, export_onnx, read_card

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")

T, P = 4, 5
TOL = {"float64": 1e-6, "float32": 1e-4}


def _tasks(seed=0, n=(40, 70, 25, 55)):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((k, P)) for k in n]
    B = rng.standard_normal((P, len(n))) * 0.6
    lin = [X @ B[:, t] for t, X in enumerate(Xs)]
    return rng, Xs, lin


def _session(graph):
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


def _held_out(seed=7, n=300, ids=("a", "b", "c", "d")):
    """Rows in a shuffled task order (not the training one), as a DataFrame and ids."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P))
    task = rng.choice(np.asarray(ids, dtype=object), n)
    return X, task


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))


def _long(Xs, ys, ids=("a", "b", "c", "d")):
    X = np.vstack(Xs)
    task = np.repeat(np.asarray(ids, dtype=object), [len(x) for x in Xs])
    return pd.DataFrame(X, columns=list("vwxyz")), np.concatenate(ys), task


LOSSES = ["squared", "huber", "quantile", "poisson", "gamma"]


def _targets(loss, rng, lin):
    if loss == "poisson":
        return [rng.poisson(np.exp(v)).astype(float) for v in lin]
    if loss == "gamma":
        return [rng.gamma(2.0, np.exp(v) / 2.0) for v in lin]
    return [v + rng.standard_normal(len(v)) for v in lin]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_in_the_long_form_equals_predict_on_held_out_rows(loss, dtype):
    """A DataFrame fit with string task ids: the graph's prediction on held-out rows in
    another task order equals predict (values; exp of the log links) to the tolerance."""
    rng, Xs, lin = _tasks()
    df, y, task = _long(Xs, _targets(loss, rng, lin))
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss).fit(df, y, task=task)
    graph = export_onnx(model, dtype=dtype)
    X, t = _held_out()
    Xd = pd.DataFrame(X, columns=list("vwxyz"))
    out = _session(graph).run(["prediction"], {"X": X.astype(dtype), "task": t})[0]
    assert out.dtype == np.dtype(dtype) and out.shape == (len(X),)
    assert _rel(out, model.predict(Xd, task=t)) <= TOL[dtype]
    # the same check through check_onnx, on these rows
    assert check_onnx(model, graph, Xd, t)["prediction"] <= TOL[dtype]


def test_the_log_link_takes_an_offset_input():
    rng, Xs, lin = _tasks(1)
    ys = _targets("poisson", rng, lin)
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss="poisson").fit(Xs, ys)
    graph = export_onnx(model, offset=True)
    X, _ = _held_out(n=200)
    t = np.arange(200) % T
    off = np.random.default_rng(3).uniform(-2, 2, 200)
    out = _session(graph).run(["prediction"], {"X": X, "task": t, "offset": off})[0]
    want = model.predict([X[t == k] for k in range(T)], offset=[off[t == k] for k in range(T)])
    ref = np.empty(200)
    for k in range(T):
        ref[t == k] = want[k]
    assert _rel(out, ref) <= 1e-6


def test_a_squared_model_refuses_an_offset_input_by_name():
    _, Xs, lin = _tasks()
    model = rm.MultiTaskRegressor("l21", alpha=0.02).fit(Xs, lin)
    with pytest.raises(NotExportable, match="offset=True"):
        export_onnx(model, offset=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_list_dict_shared_and_single_forms(dtype):
    """Per-task designs (int ids 0..T-1, or dict keys) serve rows with their task; a shared
    design gives the n x T matrix; one task gives (n,)."""
    rng, Xs, lin = _tasks(2)
    X, _ = _held_out(n=120)
    t = np.random.default_rng(1).integers(0, T, 120)
    m = rm.MultiTaskRegressor("l1", alpha=0.02).fit(Xs, lin)
    out = _session(export_onnx(m, dtype=dtype)).run(None, {"X": X.astype(dtype), "task": t})[0]
    ref = np.empty(120)
    for k in range(T):
        ref[t == k] = m.coef_[k] @ X[t == k].T + m.intercept_[k]
    assert _rel(out, ref) <= TOL[dtype]
    d = rm.MultiTaskRegressor("l1", alpha=0.02).fit(dict(zip("pqrs", Xs, strict=True)),
                                                    dict(zip("pqrs", lin, strict=True)))
    ids = np.array(list("pqrs"), dtype=object)[t]
    out = _session(export_onnx(d, dtype=dtype)).run(None, {"X": X.astype(dtype), "task": ids})[0]
    assert _rel(out, d.predict(X, task=ids)) <= TOL[dtype]
    Y = np.column_stack([Xs[0] @ rng.standard_normal(P) for _ in range(3)])
    s = rm.MultiTaskRegressor("l21", alpha=0.02).fit(Xs[0], Y)
    out = _session(export_onnx(s, dtype=dtype)).run(None, {"X": X.astype(dtype)})[0]
    assert out.shape == (120, 3) and _rel(out, s.predict(X)) <= TOL[dtype]
    one = rm.MultiTaskRegressor("l1", alpha=0.02).fit(Xs[0], Y[:, 0])
    out = _session(export_onnx(one, dtype=dtype)).run(None, {"X": X.astype(dtype)})[0]
    assert out.shape == (120,) and _rel(out, one.predict(X)) <= TOL[dtype]


def test_binary_classifier_probabilities_and_string_labels():
    rng, Xs, lin = _tasks(3)
    labels = [np.where(v + 0.3 * rng.standard_normal(len(v)) > 0, "yes", "no") for v in lin]
    df, y, task = _long(Xs, labels)
    model = rm.MultiTaskClassifier("l21", alpha=0.01).fit(df, y, task=task)
    X, t = _held_out(4)
    Xd = pd.DataFrame(X, columns=list("vwxyz"))
    for dtype in ("float64", "float32"):
        probs, lab = _session(export_onnx(model, dtype=dtype)).run(
            ["probabilities", "label"], {"X": X.astype(dtype), "task": t})
        assert _rel(probs, model.predict_proba(Xd, task=t)) <= TOL[dtype]
        assert probs.shape == (len(X), 2)
        np.testing.assert_array_equal(lab, model.predict(Xd, task=t))


def test_binary_classifier_on_a_shared_design_and_one_task():
    rng, Xs, _ = _tasks(4)
    Y = (Xs[1] @ rng.standard_normal((P, 3)) > 0).astype(int)
    m = rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs[1], Y)
    X, _ = _held_out(5, n=80)
    probs, lab = _session(export_onnx(m)).run(["probabilities", "label"], {"X": X})
    assert probs.shape == (80, 3, 2)
    assert _rel(probs, np.stack(m.predict_proba(X), axis=1)) <= 1e-6
    np.testing.assert_array_equal(lab, m.predict(X))
    one = rm.MultiTaskClassifier("l1", alpha=0.01).fit(Xs[1], Y[:, 0])
    probs, lab = _session(export_onnx(one)).run(["probabilities", "label"], {"X": X})
    assert _rel(probs, one.predict_proba(X)) <= 1e-6
    np.testing.assert_array_equal(lab, one.predict(X))


def test_multinomial_tasks_with_their_own_classes():
    """Tasks of 3, 2 and 4 classes (labels that differ between tasks): the long form's
    probabilities in the columns of union_classes_ (0 where the task lacks the label), the
    softmax of each task's own classes, and the label."""
    rng, Xs, lin = _tasks(5, n=(90, 60, 120))
    ys = [np.digitize(lin[0], [-0.4, 0.4]) + 1, (lin[1] > 0).astype(int) * 5,
          np.digitize(lin[2], [-0.6, 0.0, 0.6])]
    df, y, task = _long(Xs, ys, ids=("a", "b", "c"))
    model = rm.MultiTaskClassifier("l21", alpha=0.01).fit(df, y, task=task)
    X, t = _held_out(6, ids=("a", "b", "c"))
    Xd = pd.DataFrame(X, columns=list("vwxyz"))
    for dtype in ("float64", "float32"):
        probs, lab = _session(export_onnx(model, dtype=dtype)).run(
            ["probabilities", "label"], {"X": X.astype(dtype), "task": t})
        ref = model.predict_proba(Xd, task=t)
        assert probs.shape == ref.shape == (len(X), len(model.union_classes_))
        assert _rel(probs, ref) <= TOL[dtype]
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=10 * TOL[dtype])
        np.testing.assert_array_equal(lab, model.predict(Xd, task=t))


def test_a_model_of_one_loss_per_task_has_an_output_per_kind():
    """logistic, Poisson, squared and Huber tasks: ``value`` (NaN on the click task's rows),
    ``probabilities`` and ``label`` (NaN / empty on the others)."""
    rng, Xs, lin = _tasks(7)
    ys = [(lin[0] > 0).astype(int), rng.poisson(np.exp(lin[1])).astype(float), lin[2],
          lin[3] + rng.standard_normal(len(lin[3]))]
    model = rm.MultiTaskRegressor("l21", alpha=0.01,
                                  loss=["logistic", "poisson", "squared", "huber"]).fit(Xs, ys)
    graph = export_onnx(model)
    X, _ = _held_out(8, n=200)
    t = np.arange(200) % T
    value, probs, lab = _session(graph).run(["value", "probabilities", "label"],
                                            {"X": X, "task": t})
    click = t == 0
    assert np.isnan(value[click]).all() and np.isnan(probs[~click]).all()
    ref = model.predict_proba(X[click], task=t[click])
    assert _rel(probs[click], ref) <= 1e-6
    np.testing.assert_array_equal(lab[click], model.predict(X[click], task=t[click]))
    assert _rel(value[~click], model.predict(X[~click], task=t[~click])) <= 1e-6


def test_the_offset_enters_only_the_tasks_whose_loss_takes_one():
    """A mixed model exported with an offset input: the offset moves the count and squared
    tasks' scores, never the click task's (``predict`` takes none there); the check passes
    in the rows and the shared forms, and the graph equals ``predict`` with the offset."""
    rng, Xs, lin = _tasks(12)
    ys = [(lin[0] > 0).astype(int), rng.poisson(np.exp(lin[1])).astype(float), lin[2],
          lin[3] + rng.standard_normal(len(lin[3]))]
    model = rm.MultiTaskRegressor("l21", alpha=0.01,
                                  loss=["logistic", "poisson", "squared", "huber"]).fit(Xs, ys)
    graph = export_onnx(model, offset=True)
    report = check_onnx(model, graph)
    assert max(report.values()) <= 1e-6
    X, _ = _held_out(13, n=200)
    t = np.arange(200) % T
    off = rng.uniform(-1, 1, 200)
    value, probs = _session(graph).run(["value", "probabilities"],
                                       {"X": X, "task": t, "offset": off})
    click = t == 0
    assert _rel(probs[click], model.predict_proba(X[click], task=t[click])) <= 1e-6
    assert _rel(value[~click], model.predict(X[~click], task=t[~click],
                                             offset=off[~click])) <= 1e-6
    shared = export_onnx(model, offset=True, task_input=False)
    assert max(check_onnx(model, shared).values()) <= 1e-6


def test_cv_estimators_and_transferred_tasks_export():
    rng, Xs, lin = _tasks(9)
    cv = rm.MultiTaskRegressorCV("l21", alphas=4, cv=3).fit(Xs, lin)
    assert check_onnx(cv, export_onnx(cv))["prediction"] <= 1e-6
    Xn = rng.standard_normal((30, P))
    yn = Xn @ cv.coef_[0] + 0.1 * rng.standard_normal(30)
    head = rm.transfer(cv.best_estimator_, Xn, yn)
    X, _ = _held_out(n=50)
    out = _session(export_onnx(head)).run(None, {"X": X})[0]
    assert _rel(out, head.predict(X)) <= 1e-6


def test_an_unknown_task_id_gives_nan_never_another_tasks_output():
    rng, Xs, lin = _tasks(10)
    df, y, task = _long(Xs, [(v > 0).astype(int) for v in lin])
    model = rm.MultiTaskClassifier("l21", alpha=0.01).fit(df, y, task=task)
    X, _ = _held_out(n=3)
    probs, lab = _session(export_onnx(model)).run(
        ["probabilities", "label"], {"X": X, "task": np.array(["a", "zz", "d"], dtype=object)})
    assert np.isfinite(probs[[0, 2]]).all() and np.isnan(probs[1]).all()
    assert lab[1] == np.iinfo(np.int64).min


def test_the_model_card_names_what_was_fitted():
    rng, Xs, lin = _tasks(11)
    df, y, task = _long(Xs, lin)
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(df, y, task=task)
    graph = export_onnx(model, dtype="float32")
    meta = _session(graph).get_modelmeta()
    card = read_card(meta.custom_metadata_map)
    assert card["version"] == rm.__version__ and card["estimator"] == "MultiTaskRegressor"
    assert card["alpha"] == 0.05 and card["loss_per_task"] == ["squared"]
    assert card["certificate"]["kind"] == "dual_gap"
    assert card["certificate"]["value"] == pytest.approx(model.dual_gap_)
    assert card["training"]["n_samples"] == len(y) and card["training"]["n_tasks"] == 4
    assert card["tasks"] == ["a", "b", "c", "d"] and card["feature_names"] == list("vwxyz")
    assert [i["name"] for i in card["inputs"]] == ["X", "task"]
    assert card["inputs"][0]["type"] == "float32" and card["inputs"][1]["type"] == "string"
    assert card["verified_tolerance"] == 1e-4 and card["dtype"] == "float32"
    assert graph.producer_name == "regmtl"


def _card(graph):
    return read_card(_session(graph).get_modelmeta().custom_metadata_map)


def test_the_cards_certificate_is_absolute_and_relative_to_the_objective_at_zero(
        monkeypatch, tmp_path):
    """``regmtl.certificate`` holds the gap (``value``), the objective at W = 0
    (``objective_at_zero``) and ``relative``: what the fit's own certificate reported (caught
    as the fit publishes it), and ``value / objective_at_zero`` to 1e-12; a KKT residual is
    its own ``relative``; a CV estimator's are its chosen model's; they survive save and load,
    and a file saved before they were kept gives null for them."""
    import regmtl.estimators as estimators

    reported = []
    publish = estimators.fit_attributes

    def spy(**kw):
        reported.append(kw["certificate"])
        return publish(**kw)

    monkeypatch.setattr(estimators, "fit_attributes", spy)
    rng, Xs, lin = _tasks(21)
    model = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-4).fit(Xs, lin)
    fit = reported[-1]
    assert fit.kind == "duality_gap" and fit.rounding == 0.0
    cert = _card(export_onnx(model))["certificate"]
    assert sorted(cert) == ["kind", "objective_at_zero", "relative", "value"]
    assert cert["kind"] == "dual_gap" and cert["value"] == model.dual_gap_ == fit.value
    assert cert["objective_at_zero"] == model.objective_at_zero_ == fit.scale > 0
    assert cert["relative"] == model.certificate_relative_ == fit.relative <= 1e-4
    assert abs(cert["value"] / cert["objective_at_zero"] - cert["relative"]) <= \
        1e-12 * cert["relative"]
    kkt = rm.MultiTaskRegressor(rm.GraphLaplacian(rm.chain_graph(T)), alpha=0.05).fit(Xs, lin)
    fit = reported[-1]
    cert = _card(export_onnx(kkt))["certificate"]
    assert fit.kind == "kkt_residual" and cert["kind"] == "kkt_residual"
    assert cert["value"] == cert["relative"] == kkt.kkt_residual_ == fit.value
    assert cert["objective_at_zero"] == kkt.objective_at_zero_ == fit.scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (the grid's edge: no matter here)
        cv = rm.MultiTaskRegressorCV("l21", alphas=3, cv=3).fit(Xs, lin)
    cert = _card(export_onnx(cv))["certificate"]
    assert cv.certificate_relative_ == cv.best_estimator_.certificate_relative_ == \
        cert["relative"]
    assert cert["objective_at_zero"] == cv.best_estimator_.objective_at_zero_
    model.save(tmp_path / "m.npz")
    again = _card(export_onnx(rm.load(tmp_path / "m.npz")))["certificate"]
    assert again == _card(export_onnx(model))["certificate"]
    old = rm.load(Path(__file__).resolve().parents[1] / "data" / "old_models" /
                  "regressor_5244d82.npz")
    cert = _card(export_onnx(old))["certificate"]
    assert cert["kind"] == "dual_gap" and cert["value"] == old.dual_gap_
    assert cert["relative"] is None and cert["objective_at_zero"] is None


def test_a_tampered_graph_is_caught_and_a_written_one_round_trips(tmp_path):
    rng, Xs, lin = _tasks(12)
    model = rm.MultiTaskRegressor("l21", alpha=0.02).fit(Xs, lin)
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    assert check_onnx(model, path)["prediction"] <= 1e-6
    graph = onnx.load(str(path))
    for init in graph.graph.initializer:
        if init.name == "coef":
            W = onnx.numpy_helper.to_array(init).copy()
            W[1, 2] += 1e-3
            init.CopyFrom(onnx.numpy_helper.from_array(W, "coef"))
    onnx.save(graph, str(path))
    with pytest.raises(ExportMismatch, match="'prediction' differs"):
        check_onnx(model, path)
    other = rm.MultiTaskRegressor("l21", alpha=0.5).fit(Xs, lin)
    export_onnx(model, path)
    with pytest.raises(ExportMismatch):
        check_onnx(other, path)


def test_models_without_an_exact_graph_are_refused_by_name():
    from regmtl.datafits import Quadratic

    class Custom(Quadratic):  # (a loss that declares no inverse link)
        name = "my_loss"
        link = None

    rng, Xs, lin = _tasks(13)
    model = rm.MultiTaskRegressor("l21", alpha=0.02, loss=Custom()).fit(Xs, lin)
    with pytest.raises(NotExportable, match="custom loss"):
        export_onnx(model)
    with pytest.raises(NotExportable, match="not exported"):
        export_onnx(rm.baselines.Independent())
    base = rm.MultiTaskRegressor("l21", alpha=0.02).fit(Xs, lin)
    with pytest.raises(ValueError, match="'float32' or 'float64'"):
        export_onnx(base, dtype="float16")
    with pytest.raises(ValueError, match="task"):
        export_onnx(base, X=np.zeros((3, P)))
    with pytest.raises(ValueError, match="NaN or inf"):
        export_onnx(base, X=np.full((3, P), np.nan), task=[0, 1, 2])
    mixed = rm.MultiTaskRegressor("l21", alpha=0.02).fit(
        {1: Xs[0], "b": Xs[1]}, {1: lin[0], "b": lin[1]})
    with pytest.raises(NotExportable, match="task ids are of several types"):
        export_onnx(mixed)


def test_many_tasks_route_in_linear_time():
    """10,000 tasks of 4 rows: every task's rows go to their own coefficients (checked on
    10,000 rows drawn, one on every task)."""
    rng = np.random.default_rng(14)
    n_tasks, n = 10_000, 4
    X = rng.standard_normal((n_tasks * n, P))
    task = np.repeat(np.arange(n_tasks), n)
    y = np.einsum("np,np->n", X, rng.standard_normal((n_tasks, P))[task])
    model = rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
    report = check_onnx(model, export_onnx(model, n_check=10_000), n_check=10_000)
    assert report["prediction"] <= 1e-6


def test_named_columns_carry_the_column_order_in_the_graph():
    """One input per DataFrame column: fed in any order (a dict), the graph puts them in the
    fit's order; a feature named like another input is refused by name."""
    rng, Xs, lin = _tasks(15)
    df, y, task = _long(Xs, lin)
    model = rm.MultiTaskRegressor("l21", alpha=0.02).fit(df, y, task=task)
    graph = export_onnx(model, named_columns=True, dtype="float32")
    sess = _session(graph)
    assert [i.name for i in sess.get_inputs()] == [*"vwxyz", "task"]
    X, t = _held_out(16)
    Xd = pd.DataFrame(X, columns=list("vwxyz"))
    feeds = {c: Xd[c].to_numpy(np.float32) for c in reversed("vwxyz")}
    out = sess.run(["prediction"], {**feeds, "task": t})[0]
    assert _rel(out, model.predict(Xd, task=t)) <= 1e-4
    assert check_onnx(model, graph, Xd[list("zyxwv")], t)["prediction"] <= 1e-4
    assert read_card(sess.get_modelmeta().custom_metadata_map)["named_columns"] is True
    bad = rm.MultiTaskRegressor("l21", alpha=0.02).fit(
        df.rename(columns={"v": "task"}), y, task=task)
    with pytest.raises(NotExportable, match="named 'task'"):
        export_onnx(bad, named_columns=True)
    plain = rm.MultiTaskRegressor("l21", alpha=0.02).fit(Xs, lin)
    with pytest.raises(NotExportable, match="no feature names"):
        export_onnx(plain, named_columns=True)


def test_classifier_cv_transferred_heads_and_shared_offsets_export():
    """A CV classifier, transferred binary and multinomial heads, a transferred Poisson head
    and a shared-design Poisson model with an (n, T) offset input: each equals its model."""
    rng, Xs, lin = _tasks(17, n=(60, 60, 60))
    yc = [(v > 0).astype(int) for v in lin]
    cvc = rm.MultiTaskClassifierCV("l21", alphas=3, cv=3).fit(Xs, yc)
    assert set(check_onnx(cvc, export_onnx(cvc))) == {"probabilities", "label"}
    Xn = rng.standard_normal((40, P))
    binary = rm.transfer(rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, yc), Xn,
                         (Xn[:, 0] > 0).astype(int))
    ym = [np.digitize(v, [-0.5, 0.5]) for v in lin]
    multi = rm.transfer(rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, ym), Xn,
                        np.digitize(Xn[:, 0], [-0.5, 0.5]))
    counts = [rng.poisson(np.exp(v)).astype(float) for v in lin]
    poisson = rm.transfer(rm.MultiTaskRegressor("l21", alpha=0.01, loss="poisson").fit(
        Xs, counts), Xn, rng.poisson(np.exp(0.3 * Xn[:, 0])).astype(float))
    for head, kw in ((binary, {}), (multi, {}), (poisson, {"offset": True})):
        report = check_onnx(head, export_onnx(head, **kw))
        assert max(report.values()) <= 1e-6
    Y = np.column_stack([rng.poisson(np.exp(Xs[0] @ rng.standard_normal(P) * 0.3))
                         for _ in range(3)]).astype(float)
    shared = rm.MultiTaskRegressor("l21", alpha=0.01, loss="poisson").fit(Xs[0], Y)
    graph = export_onnx(shared, offset=True)
    X, _ = _held_out(18, n=30)
    off = np.random.default_rng(0).uniform(-1, 1, (30, 3))
    out = _session(graph).run(None, {"X": X, "offset": off})[0]
    assert out.shape == (30, 3) and _rel(out, shared.predict(X, offset=off)) <= 1e-6
