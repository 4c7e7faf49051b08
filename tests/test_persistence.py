"""Saving and loading fitted models (DESIGN section 8): arrays + a JSON header, no pickle,
version- and integrity-checked.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

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
    assert header["format_version"] == FORMAT_VERSION
    assert header["class"] == "MultiTaskClassifier"


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
