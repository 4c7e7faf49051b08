"""Saving and loading fitted models (design.rst section 8): arrays + a JSON header, no pickle,
version- and integrity-checked.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_lists, peak_bytes

import regmtl as rm
from regmtl import MultiTaskClassifier, MultiTaskRegressor
from regmtl.persistence import FORMAT_VERSION

P = 5


def _object_array(values):
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _problem(kind, form, seed=0):
    """(fit args, fit kwargs, predict args, predict kwargs) for one estimator kind and form."""
    rng = np.random.default_rng(seed)
    sizes = (15, 22, 18)
    Xs = [rng.standard_normal((n, P)) for n in sizes]
    W = rng.standard_normal((P, 3))
    scores = [X @ W[:, t] + 0.3 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    if kind == "regressor":
        ys = scores
    else:
        ys = [np.where(scores[0] > 0, "spam", "ham"), np.where(scores[1] > 0, 7, 3),
              (scores[2] > 0).astype(float)]
    if form == "list":
        return (Xs, ys), {}, (Xs,), {}
    if form in ("long_str", "long_tuple"):
        labels = ["b", "a", "c"] if form == "long_str" else [("x", 2), ("x", 1), ("y", 0)]
        X = np.vstack(Xs)
        if kind == "regressor":
            y = np.concatenate(ys)
        else:
            y = _object_array([v.item() for yt in ys for v in yt])
        ids = _object_array([labels[t] for t, n in enumerate(sizes) for _ in range(n)])
        perm = rng.permutation(len(ids))
        return (X[perm], y[perm]), {"task": ids[perm]}, (X[perm],), {"task": ids[perm]}
    if form == "dataframe":
        X = pd.DataFrame(np.vstack(Xs), columns=[f"f{j}" for j in range(P)])
        X["grp"] = np.repeat(["u", "v", "w"], sizes)
        y = np.concatenate(ys) if kind == "regressor" else np.concatenate(
            [(yt == np.unique(yt)[1]).astype(int) for yt in ys])
        return (X, y), {"task": "grp"}, (X,), {"task": "grp"}
    if form == "shared":
        X = Xs[1]
        if kind == "regressor":
            Y = np.column_stack([X @ W[:, t] for t in range(3)])
            Y[[1, 4], 2] = np.nan
        else:
            Y = (np.column_stack([X @ W[:, t] for t in range(3)]) > 0).astype(float)
            Y[[1, 4], 2] = np.nan
        return (X, Y), {}, (X,), {}
    # single task
    return (Xs[0], ys[0]), {}, (Xs[0],), {}


FORMS = ["list", "long_str", "long_tuple", "dataframe", "shared", "single"]


def _equal(a, b):
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(_equal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a, b))
    return type(a) is type(b) and a == b


def _fitted_attrs(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_round_trip(tmp_path, kind, form):
    fit_args, fit_kw, pred_args, pred_kw = _problem(kind, form)
    est = MultiTaskRegressor if kind == "regressor" else MultiTaskClassifier
    model = est(penalty=rm.L21(0.7), alpha=0.01, task_weight="samples").fit(*fit_args, **fit_kw)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = rm.load(path)

    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    assert isinstance(loaded.penalty, rm.L21) and loaded.penalty.l1_ratio == 0.7
    a, b = _fitted_attrs(model), _fitted_attrs(loaded)
    assert a.keys() == b.keys()
    for k in a:
        assert _equal(a[k], b[k]), k

    methods = ["predict"]
    if kind == "classifier":
        methods += ["predict_proba", "decision_function"]
    for meth in methods:
        assert _equal(getattr(model, meth)(*pred_args, **pred_kw),
                      getattr(loaded, meth)(*pred_args, **pred_kw)), meth
    assert loaded.score(*fit_args, **fit_kw) == model.score(*fit_args, **fit_kw)


def test_round_trip_array_task_weight_and_string_penalty(tmp_path):
    fit_args, _, pred_args, _ = _problem("regressor", "list")
    model = MultiTaskRegressor(penalty="elasticnet", alpha=0.02,
                               task_weight=np.array([1.0, 2.0, 0.5])).fit(*fit_args)
    model.save(tmp_path / "m.npz")
    loaded = rm.load(tmp_path / "m.npz")
    assert loaded.penalty == "elasticnet"
    assert np.array_equal(loaded.task_weight, model.task_weight)
    assert _equal(model.predict(*pred_args), loaded.predict(*pred_args))


def test_loaded_model_can_be_refit(tmp_path):
    fit_args, fit_kw, pred_args, pred_kw = _problem("regressor", "long_tuple")
    model = MultiTaskRegressor(alpha=0.01).fit(*fit_args, **fit_kw)
    model.save(tmp_path / "m.npz")
    loaded = rm.load(tmp_path / "m.npz").fit(*fit_args, **fit_kw)
    assert np.array_equal(loaded.coef_, model.coef_)


def test_file_has_no_pickle(tmp_path):
    fit_args, fit_kw, _, _ = _problem("classifier", "long_tuple")
    model = MultiTaskClassifier(penalty=rm.L21(0.7), alpha=0.01).fit(*fit_args, **fit_kw)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:
        for name in npz.files:
            arr = npz[name]  # would raise ValueError for an object (pickled) array
            assert arr.dtype != object
        header = json.loads(bytes(npz["__header__"]).decode("utf-8"))
    assert header["format_version"] == 3  # the oldest format that holds it (its P0)
    assert header["class"] == "MultiTaskClassifier"


def test_a_sparse_graph_is_written_in_format_2(tmp_path):
    """Format 2 added sparse (CSR) entries: a sparse graph's file says so, and a reader of
    format 1 refuses it by its version; a dense graph's file stays in format 1 (a model
    without the certificate's scale, format 3's, as one read from an older file)."""
    Xs, ys = make_lists(p=8)
    for A, version in ((rm.chain_graph(3), 2), (rm.chain_graph(3).toarray(), 1)):
        path = tmp_path / f"m{version}.npz"
        model = rm.MultiTaskRegressor(rm.GraphLaplacian(A), alpha=0.1).fit(Xs, ys)
        del model.objective_at_zero_, model.certificate_relative_
        model.save(path)
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["__header__"]).decode("utf-8"))
        assert header["format_version"] == version < FORMAT_VERSION == 3
        np.testing.assert_array_equal(rm.load(path).coef_,
                                      rm.MultiTaskRegressor(rm.GraphLaplacian(A), alpha=0.1)
                                      .fit(Xs, ys).coef_)


def test_the_certificates_scale_is_kept_in_format_3(tmp_path):
    """Format 3 added ``objective_at_zero_`` and ``certificate_relative_``: a fit's file holds
    them (read back bit for bit), a reader of format 2 refuses it by its version, and a file
    saved before them (format 1) still loads, without them."""
    Xs, ys = make_lists(p=8)
    model = rm.MultiTaskRegressor("l21", alpha=0.1).fit(Xs, ys)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(bytes(npz["__header__"]).decode("utf-8"))
    assert header["format_version"] == 3
    again = rm.load(path)
    assert again.objective_at_zero_ == model.objective_at_zero_ > 0
    assert again.certificate_relative_ == model.certificate_relative_
    assert again.dual_gap_ / again.objective_at_zero_ == pytest.approx(
        again.certificate_relative_, rel=1e-12)
    graph = rm.MultiTaskRegressor(rm.GraphLaplacian(rm.chain_graph(3)), alpha=0.1).fit(Xs, ys)
    graph.save(path)  # (sparse entries and the scale: format 3 holds both)
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(bytes(npz["__header__"]).decode("utf-8"))["format_version"] == 3
    assert rm.load(path).certificate_relative_ == graph.certificate_relative_
    old = rm.load(Path(__file__).resolve().parent / "data" / "old_models" /
                  "regressor_5244d82.npz")
    assert hasattr(old, "dual_gap_") and not hasattr(old, "objective_at_zero_")


def _fitted(tmp_path):
    fit_args, fit_kw, _, _ = _problem("regressor", "list")
    model = MultiTaskRegressor(alpha=0.01).fit(*fit_args, **fit_kw)
    path = tmp_path / "m.npz"
    model.save(path)
    return path


def _read(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path, arrays):
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _header(arrays):
    return json.loads(bytes(arrays["__header__"]).decode("utf-8"))


def _with_header(arrays, header):
    out = dict(arrays)
    out["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return out


def test_modified_array_is_refused(tmp_path):
    path = _fitted(tmp_path)
    arrays = _read(path)
    coef = arrays["attr.coef_"].copy()
    coef.flat[0] += 1e-3
    arrays["attr.coef_"] = coef  # the old header (and its digests) is kept
    bad = tmp_path / "modified.npz"
    _write(bad, arrays)
    with pytest.raises(ValueError, match="integrity"):
        rm.load(bad)


def test_removed_or_added_array_is_refused(tmp_path):
    path = _fitted(tmp_path)
    arrays = _read(path)
    extra = dict(arrays, extra=np.zeros(3))
    _write(tmp_path / "extra.npz", extra)
    with pytest.raises(ValueError, match="integrity"):
        rm.load(tmp_path / "extra.npz")
    missing = {k: v for k, v in arrays.items() if k != "attr.intercept_"}
    _write(tmp_path / "missing.npz", missing)
    with pytest.raises(ValueError, match="integrity"):
        rm.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("keep", [0.5, 0.9, 30])
def test_truncated_file_is_refused(tmp_path, keep):
    path = _fitted(tmp_path)
    raw = path.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else keep
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(raw[:n])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        rm.load(bad)


def test_newer_format_version_is_refused(tmp_path):
    path = _fitted(tmp_path)
    arrays = _read(path)
    header = _header(arrays)
    header["format_version"] = FORMAT_VERSION + 1
    bad = tmp_path / "newer.npz"
    _write(bad, _with_header(arrays, header))
    with pytest.raises(ValueError, match=r"newer than this regmtl reads.*upgrade regmtl"):
        rm.load(bad)


@pytest.mark.parametrize("content", [b"", b"not a model at all\n" * 50,
                                     bytes(range(256)) * 8, b"PK\x03\x04garbage"],
                         ids=["empty", "text", "binary", "fake-zip"])
def test_non_npz_file_is_refused(tmp_path, content):
    bad = tmp_path / "random.npz"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable regmtl model file"):
        rm.load(bad)


def test_foreign_npz_is_refused(tmp_path):
    _write(tmp_path / "plain.npz", {"a": np.arange(3)})
    with pytest.raises(ValueError, match="not a readable regmtl model file"):
        rm.load(tmp_path / "plain.npz")
    other = {"__header__": np.frombuffer(b'{"format": "other"}', dtype=np.uint8)}
    _write(tmp_path / "other.npz", other)
    with pytest.raises(ValueError, match="is not a regmtl model file"):
        rm.load(tmp_path / "other.npz")


def test_unknown_class_is_refused(tmp_path):
    path = _fitted(tmp_path)
    arrays = _read(path)
    header = _header(arrays)
    header["class"] = "os.system"
    _write(tmp_path / "cls.npz", _with_header(arrays, header))
    with pytest.raises(ValueError, match="unknown model class"):
        rm.load(tmp_path / "cls.npz")


def test_npz_is_a_zip_with_only_npy_members(tmp_path):
    path = _fitted(tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())


def test_unfitted_model_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MultiTaskRegressor().save(tmp_path / "m.npz")


@pytest.mark.parametrize(
    "change, match",
    [({"format_version": "1"}, "malformed header"),
     ({"format_version": 0}, "malformed header"),
     ({"sha256": ["attr.coef_"]}, "integrity"),
     ({"params": [1]}, "malformed header"),
     ({"attributes": {"coef_": {"kind": "array", "key": "nope"}}}, "malformed header"),
     ({"attributes": {"coef_": {"kind": "pickle", "value": 1}}}, "unknown entry kind")],
    ids=["version-str", "version-0", "sha-list", "params-list", "missing-key", "bad-kind"],
)
def test_malformed_header_is_refused_with_value_error(tmp_path, change, match):
    path = _fitted(tmp_path)
    arrays = _read(path)
    header = dict(_header(arrays), **change)
    _write(tmp_path / "bad.npz", _with_header(arrays, header))
    with pytest.raises(ValueError, match=match):
        rm.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------ a tamperer's files
# The digests are no defence against someone who rewrites the header: these files carry
# digests recomputed for their changed arrays, so only the loader's own checks refuse them.
def _forge(path, out, edit):
    """``path`` rewritten by ``edit(header, arrays)``, with matching digests."""
    from regmtl.persistence import _digest

    arrays = _read(path)
    header = _header(arrays)
    edit(header, arrays)
    header["sha256"] = {k: _digest(v) for k, v in arrays.items() if k != "__header__"}
    _write(out, _with_header(arrays, header))
    return out


def _refused(path, *words):
    """load(path) raises a ValueError whose message names the file and ``words``."""
    with pytest.raises(ValueError) as info:
        rm.load(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def _set(name, value):
    def edit(header, arrays):
        arrays[f"attr.{name}"] = value(arrays[f"attr.{name}"])
    return edit


def _set_json(name, value):
    def edit(header, arrays):
        header["attributes"][name] = {"kind": "json", "value": value}
    return edit


def _fit(kind="regressor", form="list", penalty="l21"):
    fit_args, fit_kw, _, _ = _problem(kind, form)
    est = MultiTaskRegressor if kind == "regressor" else MultiTaskClassifier
    return est(penalty=penalty, alpha=0.01).fit(*fit_args, **fit_kw)


def _classes_edit(change):
    def edit(header, arrays):
        change(header["attributes"]["classes_"]["items"])
    return edit


def _labels_edit(name, values, shape):
    def edit(header, arrays):
        header["attributes"][name] = {"kind": "labels", "value": values, "shape": shape}
    return edit


def _tasks_shape_edit(header, arrays):
    header["attributes"]["tasks_"]["value"] = header["attributes"]["tasks_"]["value"][:2]
    header["attributes"]["tasks_"]["shape"] = [2]


def _graph_edit(header, arrays):
    arrays["param.penalty.A"] = np.ones((2, 2))


def _sparse_graph_edit(header, arrays):
    header["params"]["penalty"]["params"]["A"]["shape"] = [2, 2]


def _sparse_indices_edit(header, arrays):
    arrays["param.penalty.A.indices"] = arrays["param.penalty.A.indices"][:-1]


def _task_weight_edit(header, arrays):
    arrays["param.task_weight"] = np.ones(2)
    header["params"]["task_weight"] = {"kind": "array", "key": "param.task_weight"}


def _intercept_as_array(header, arrays):
    arrays["attr.intercept_"] = np.zeros(2)
    header["attributes"]["intercept_"] = {"kind": "array", "key": "attr.intercept_"}


SHAPE_CASES = {
    # (kind, form, penalty): (edit, words the message must hold)
    "coef-extra-row": (("regressor", "list", "l21"),
                       _set("coef_", lambda a: np.vstack([a, a[:1]])), ["'coef_'", "(4, 5)"]),
    "coef-extra-col": (("regressor", "list", "l21"),
                       _set("coef_", lambda a: np.hstack([a, a[:, :1]])), ["'coef_'", "(3, 6)"]),
    "intercept-short": (("regressor", "list", "l21"),
                        _set("intercept_", lambda a: a[:2]), ["'intercept_'", "(2,)"]),
    "task-sizes-long": (("regressor", "list", "l21"),
                        _set("task_sizes_", lambda a: np.r_[a, 1.0]), ["'task_sizes_'"]),
    "residual-variance-2d": (("regressor", "list", "l21"),
                             _set("residual_variance_", lambda a: a[None]),
                             ["'residual_variance_'"]),
    "coef-int-dtype": (("regressor", "list", "l21"),
                       _set("coef_", lambda a: a.astype(np.int64)), ["'coef_'", "dtype"]),
    "more-tasks-in-header": (("regressor", "list", "l21"), _set_json("n_tasks_", 4),
                             ["n_tasks_ = 4", "(3,)", "(4,)"]),
    "more-features-in-header": (("regressor", "list", "l21"), _set_json("n_features_in_", 6),
                                ["n_features_in_ = 6", "'coef_'", "(3, 6)"]),
    "tasks-labels-short": (("regressor", "long_str", "l21"), _tasks_shape_edit,
                           ["'tasks_'", "(2,)"]),
    "feature-names-short": (("regressor", "dataframe", "l21"),
                            _labels_edit("feature_names_in_", ["f0", "f1"], [2]),
                            ["'feature_names_in_'"]),
    "classes-per-task-missing": (("classifier", "list", "l21"),
                                 _classes_edit(lambda items: items.pop()), ["'classes_'"]),
    "three-classes": (("classifier", "shared", "l21"),
                      _set("classes_.0", lambda a: np.r_[a, 2.0]),
                      ["'coef_'", "(3, 5)", "classes_ (3, 2, 2 per task)"]),
    "dirty-parts": (("regressor", "list", "dirty"), _set("P_", lambda a: a[:, :4]), ["'P_'"]),
    "singular-values": (("regressor", "list", "trace"),
                        _set("singular_values_", lambda a: np.r_[a, 0.0]),
                        ["'singular_values_'"]),
    "rank-above-min": (("regressor", "list", "trace"), _set_json("rank_", 4), ["'rank_'"]),
    "cluster-vectors": (("regressor", "list", "clustered"),
                        _set("cluster_vectors_", lambda a: np.vstack([a, a[:1]])),
                        ["'cluster_vectors_'", "(3, 0..3)"]),
    "cluster-weights": (("regressor", "list", "clustered"),
                        _set("cluster_weights_", lambda a: np.r_[a, a, 0.0]),
                        ["'cluster_weights_'", "(0..3,)"]),
    "single-coef": (("regressor", "single", "l21"), _set("coef_", lambda a: np.r_[a, 0.0]),
                    ["'coef_'", "(6,)"]),
    "single-intercept-array": (("regressor", "single", "l21"), _intercept_as_array,
                               ["'intercept_'"]),
    "single-with-two-tasks": (("regressor", "single", "l21"), _set_json("n_tasks_", 2),
                              ["single"]),
    "graph-of-two-tasks": (("regressor", "list", None), _graph_edit, ["'penalty.A'", "(2, 2)"]),
    "sparse-graph-of-two-tasks": (("regressor", "list", "sparse"), _sparse_graph_edit,
                                  ["'penalty.A'", "(2, 2)"]),
    "sparse-graph-short-indices": (("regressor", "list", "sparse"), _sparse_indices_edit,
                                   ["'penalty.A.indices'", "(3,)"]),
    "task-weight-short": (("regressor", "list", "l21"), _task_weight_edit,
                          ["'task_weight'", "(2,)"]),
}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_inconsistent_shapes_are_refused(tmp_path, case):
    (kind, form, penalty), edit, words = SHAPE_CASES[case]
    if penalty is None:  # a dense graph (as every file before sparse graphs held)
        penalty = rm.GraphLaplacian(rm.chain_graph(3).toarray())
    elif penalty == "sparse":
        penalty = rm.GraphLaplacian(rm.chain_graph(3))
    _fit(kind, form, penalty).save(tmp_path / "m.npz")
    bad = _forge(tmp_path / "m.npz", tmp_path / "forged.npz", edit)
    _refused(bad, *words)


def _csr_edit(part, i, value):
    def edit(header, arrays):
        key = f"param.penalty.A.{part}"
        arrays[key] = arrays[key].copy()
        arrays[key][i] = value
    return edit


@pytest.mark.parametrize("edit", [_csr_edit("indices", 0, 3), _csr_edit("indices", 1, -1),
                                  _csr_edit("indptr", 1, 9), _csr_edit("indptr", 0, 1),
                                  _csr_edit("indptr", -1, 3)],
                         ids=["index-past-T", "negative-index", "indptr-not-monotone",
                              "indptr-not-from-0", "indptr-short-of-nnz"])
def test_tampered_sparse_graph_is_refused(tmp_path, edit):
    """A sparse graph is saved as its CSR arrays (chain of 3 tasks: indptr [0, 1, 3, 4],
    indices [1, 0, 2, 1]); indices that do not make a (T, T) CSR matrix are refused."""
    _fit(penalty=rm.GraphLaplacian(rm.chain_graph(3))).save(tmp_path / "m.npz")
    bad = _forge(tmp_path / "m.npz", tmp_path / "forged.npz", edit)
    _refused(bad, "'penalty.A'", "CSR indices")


@pytest.mark.parametrize("dense", [False, True])
def test_graph_round_trip_sparse_and_dense(tmp_path, dense):
    """A sparse graph is written as CSR arrays (no T x T array in the file) and read back
    sparse; a dense graph (every file before sparse graphs) still loads, dense."""
    import zipfile

    import scipy.sparse as sp

    A = rm.knn_graph(np.array([[0.0], [1.0], [2.5]]), k=1, weights="heat")
    A = A.toarray() if dense else A
    model = _fit(penalty=rm.GraphLaplacian(A))
    model.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("param.penalty.A"))
    assert names == (["param.penalty.A.npy"] if dense else
                     ["param.penalty.A.data.npy", "param.penalty.A.indices.npy",
                      "param.penalty.A.indptr.npy"])
    loaded = rm.load(tmp_path / "m.npz")
    assert sp.issparse(loaded.penalty.A) != dense and loaded.penalty == model.penalty
    got = loaded.penalty.A if dense else loaded.penalty.A.toarray()
    np.testing.assert_array_equal(got, A if dense else A.toarray())
    fit_args, fit_kw, _, _ = _problem("regressor", "list")
    np.testing.assert_array_equal(loaded.fit(*fit_args, **fit_kw).coef_, model.coef_)


@pytest.mark.parametrize("name", ["predict", "score", "fit", "get_params", "__class__", "_b",
                                  "y_scale_", "strategy_"])
def test_attribute_a_class_does_not_declare_is_refused(tmp_path, name):
    _fit().save(tmp_path / "m.npz")
    bad = _forge(tmp_path / "m.npz", tmp_path / "forged.npz", _set_json(name, 1))
    _refused(bad, f"attribute {name!r}", "MultiTaskRegressor")


def test_save_writes_only_declared_attributes(tmp_path):
    model = _fit()
    model.note_ = "kept in memory only"
    model.save(tmp_path / "m.npz")
    assert "note_" not in _header(_read(tmp_path / "m.npz"))["attributes"]
    assert not hasattr(rm.load(tmp_path / "m.npz"), "note_")


def test_unknown_parameter_is_refused(tmp_path):
    _fit().save(tmp_path / "m.npz")

    def edit(header, arrays):
        header["params"]["__init__"] = {"kind": "json", "value": 1}
    _refused(_forge(tmp_path / "m.npz", tmp_path / "forged.npz", edit), "'__init__'")


def test_transferred_task_shapes_are_checked(tmp_path):
    model = _fit()
    fit_args, _, _, _ = _problem("regressor", "list", seed=1)
    new = rm.transfer(model, fit_args[0][0], fit_args[1][0])
    new.save(tmp_path / "t.npz")
    back = rm.load(tmp_path / "t.npz")
    assert _fitted_attrs(back).keys() == _fitted_attrs(new).keys()  # every attribute declared
    assert np.array_equal(back.predict(fit_args[0][0]), new.predict(fit_args[0][0]))
    bad = _forge(tmp_path / "t.npz", tmp_path / "forged.npz",
                 _set("prior_mean_", lambda a: a[:3]))
    _refused(bad, "'prior_mean_'", "(3,)")
    bad = _forge(tmp_path / "t.npz", tmp_path / "cls.npz", _set_json("loss_", "logistic"))
    _refused(bad, "classes_")


def test_labels_shape_not_matching_their_count_is_refused(tmp_path):
    _fit(form="long_str").save(tmp_path / "m.npz")

    def edit(header, arrays):
        header["attributes"]["tasks_"]["shape"] = [10**12]
    _refused(_forge(tmp_path / "m.npz", tmp_path / "forged.npz", edit), "shape")


# ------------------------------------------------------------------ sizes before data
def _npy_bytes(shape, dtype, data=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
        "shape": shape})
    return buf.getvalue() + data


def _rezip(src, dst, replace=(), extra=()):
    """``src`` with members replaced or added (raw .npy bytes), the header kept."""
    replace, extra = dict(replace), dict(extra)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))
        for name, data in extra.items():
            zout.writestr(name, data)
    return dst


def test_member_declaring_2_40_elements_is_refused_before_reading(tmp_path):
    path = _fitted(tmp_path)
    bad = _rezip(path, tmp_path / "huge.npz",
                 replace={"attr.coef_.npy": _npy_bytes((2**40,), "<f8", bytes(64))})
    _refused(bad, "'attr.coef_'", "declares")


BOMB = 128 * 2**20  # bytes of zeros, about 128 KB deflated


def test_zip_bomb_with_another_shape_is_refused_before_decompressing(tmp_path):
    path = _fitted(tmp_path)
    n = BOMB // 8 // 5
    bomb = _npy_bytes((n, 5), "<f8", bytes(n * 5 * 8))
    bad = _rezip(path, tmp_path / "bomb.npz", replace={"attr.coef_.npy": bomb})
    assert bad.stat().st_size < 2 * 2**20
    del bomb
    peak = peak_bytes(lambda: _refused(bad, "'coef_'", f"({n}, 5)"))
    assert peak < 8 * 2**20, peak


def test_member_larger_than_its_npy_header_says_is_refused_before_decompressing(tmp_path):
    path = _fitted(tmp_path)
    padded = _npy_bytes((3, 5), "<f8", bytes(3 * 5 * 8 + BOMB))
    bad = _rezip(path, tmp_path / "padded.npz", replace={"attr.coef_.npy": padded})
    del padded
    peak = peak_bytes(lambda: _refused(bad, "'attr.coef_'", "declares"))
    assert peak < 8 * 2**20, peak


def test_member_whose_directory_understates_its_size_is_read_no_further(tmp_path):
    """The zip directory says 120 bytes of data, the deflate stream holds 128 MB more: the
    loader stops at the declared size and the CRC refuses the member."""
    path = _fitted(tmp_path)
    real = _npy_bytes((3, 5), "<f8", bytes(3 * 5 * 8))
    bad = _rezip(path, tmp_path / "lying.npz",
                 replace={"attr.coef_.npy": real + bytes(BOMB)})
    raw = bytearray(bad.read_bytes())
    name = b"attr.coef_.npy"
    at = raw.find(b"PK\x01\x02")
    while raw[at + 46:at + 46 + len(name)] != name:  # the central directory entry
        at = raw.find(b"PK\x01\x02", at + 1)
    raw[at + 24:at + 28] = len(real).to_bytes(4, "little")  # its uncompressed size
    bad.write_bytes(bytes(raw))
    peak = peak_bytes(lambda: _refused(bad, "truncated or corrupted"))
    assert peak < 8 * 2**20, peak


def test_oversized_header_member_is_refused(tmp_path):
    path = _fitted(tmp_path)
    n = 65 * 2**20
    bad = _rezip(path, tmp_path / "header.npz",
                 replace={"__header__.npy": _npy_bytes((n,), "|u1", bytes(n))})
    peak = peak_bytes(lambda: _refused(bad, "header"))
    assert peak < 8 * 2**20, peak


@pytest.mark.parametrize("dtype", ["object", "datetime64[s]", "structured", "bytes"])
def test_dtypes_the_format_never_writes_are_refused(tmp_path, dtype):
    path = _fitted(tmp_path)
    values = {"object": np.array([1.0, "x", None], dtype=object),
              "datetime64[s]": np.array([0, 1, 2], dtype="datetime64[s]"),
              "structured": np.zeros(3, dtype=[("a", "<f8")]),
              "bytes": np.array([b"a", b"b", b"c"])}[dtype]
    bad = _forge(path, tmp_path / "dtype.npz", _set("task_sizes_", lambda a: values))
    _refused(bad, "'attr.task_sizes_'", "dtype")


def test_member_the_header_does_not_use_is_refused(tmp_path):
    path = _fitted(tmp_path)

    def edit(header, arrays):
        arrays["attr.spare"] = np.zeros(3)
    _refused(_forge(path, tmp_path / "spare.npz", edit), "does not use", "attr.spare")
    bad = _rezip(path, tmp_path / "txt.npz", extra={"readme.txt": b"hello"})
    _refused(bad, "'readme.txt'")


def test_linear_models_load_without_torch(tmp_path):
    """``regmtl.load`` imports the deep part only for a deep model's folder."""
    import subprocess
    import sys

    path = _fitted(tmp_path)
    code = f"""
import importlib.abc, sys


class NoTorch(importlib.abc.MetaPathFinder):  # as if PyTorch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {{name!r}}")


sys.meta_path.insert(0, NoTorch())
import regmtl
m = regmtl.load({str(path)!r})
print(type(m).__name__, "regmtl.deep" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["MultiTaskRegressor", "False"]


# ------------------------------------------------------------------ Clustered's factors
def _as_old_cluster_file(model):
    """An edit that makes a file hold the dense cluster_matrix_, as files did before the
    factors (and none of the factors)."""
    M = model.cluster_matrix_

    def edit(header, arrays):
        for name in ("cluster_vectors_", "cluster_weights_"):
            arrays.pop(f"attr.{name}")
            header["attributes"].pop(name)
        header["attributes"].pop("cluster_rest_")
        arrays["attr.cluster_matrix_"] = M
        header["attributes"]["cluster_matrix_"] = {"kind": "array",
                                                   "key": "attr.cluster_matrix_"}
    return edit


def test_clustered_round_trip_keeps_the_factors(tmp_path):
    model = _fit("regressor", "list", rm.Clustered(2))
    model.save(tmp_path / "m.npz")
    loaded = rm.load(tmp_path / "m.npz")
    for name in ("cluster_vectors_", "cluster_weights_", "task_clusters_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.cluster_rest_ == model.cluster_rest_
    np.testing.assert_array_equal(loaded.cluster_matrix_, model.cluster_matrix_)


def test_file_with_the_dense_cluster_matrix_still_loads(tmp_path):
    """Files written before the factors hold cluster_matrix_ (T x T): load turns it into
    factors (all T eigenpairs) that give back the same M."""
    model = _fit("regressor", "list", rm.Clustered(2))
    model.save(tmp_path / "m.npz")
    old = _forge(tmp_path / "m.npz", tmp_path / "old.npz", _as_old_cluster_file(model))
    with np.load(old) as npz:
        assert "attr.cluster_matrix_" in npz.files and "attr.cluster_vectors_" not in npz.files
    loaded = rm.load(old)
    T = model.n_tasks_
    assert loaded.cluster_vectors_.shape == (T, T) and loaded.cluster_rest_ == 0.0
    np.testing.assert_allclose(loaded.cluster_matrix_, model.cluster_matrix_, atol=1e-14)
    np.testing.assert_array_equal(loaded.task_clusters_, model.task_clusters_)
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    loaded.save(tmp_path / "again.npz")  # and it saves as factors
    again = rm.load(tmp_path / "again.npz")
    np.testing.assert_allclose(again.cluster_matrix_, model.cluster_matrix_, atol=1e-14)
