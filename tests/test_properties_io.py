"""Properties of ``regmtl.load`` and the command line's readers: a damaged or forged file, or a
table with bad cells, ends in a clear error (naming the file, the column or the flag) or in a
model / data that is exactly what was written."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _strategies import DRAW_KNOWN, assert_clear_error, examples
from hypothesis import assume, given
from hypothesis import strategies as st

import regmtl as rm
from regmtl.cli import main
from regmtl.datasets import read_table

RNG = np.random.default_rng(0)
XS = [RNG.standard_normal((n, 4)) for n in (12, 15, 9)]
YS = [X @ RNG.standard_normal(4) + 0.1 * RNG.standard_normal(len(X)) for X in XS]
LABELS = [(y > np.median(y)).astype(int) for y in YS]


def _models() -> dict:
    return {
        "l21": rm.MultiTaskRegressor("l21", alpha=0.05).fit(XS, YS),
        "classifier": rm.MultiTaskClassifier("l1", alpha=0.01).fit(XS, LABELS),
        "dirty": rm.MultiTaskRegressor(rm.Dirty(0.6), alpha=0.05).fit(XS, YS),
        "robust": rm.MultiTaskRegressor(rm.RobustFeatures(0.8), alpha=0.05).fit(XS, YS),
        "capped": rm.MultiTaskRegressor(rm.CappedL1(2.0), alpha=0.05).fit(XS, YS),
    }


MODELS = _models()


def _saved(tmp_path: Path, key: str) -> bytes:
    path = tmp_path / f"{key}.npz"
    MODELS[key].save(path)
    return path.read_bytes()


def _load_or_refused(path: Path, what: str = ""):
    """The model ``load`` reads from ``path``, or None where it refused the file with a
    ValueError naming it (any other exception fails)."""
    try:
        return rm.load(path)
    except Exception as exc:  # noqa: BLE001 - the invariant checks the type
        assert isinstance(exc, ValueError), f"{what}{type(exc).__name__}: {exc}"
        assert str(path) in str(exc), str(exc)
        return None


def _load_checked(path: Path, key: str) -> None:
    """Invariant of ``load``: a ValueError naming the file, or the model as it was written (the
    same coefficients and predictions)."""
    model = _load_or_refused(path)
    if model is not None:
        np.testing.assert_array_equal(model.coef_, MODELS[key].coef_)


# ------------------------------------------------------------------------------- damaged bytes
@examples(20)
@given(key=st.sampled_from(sorted(MODELS)), data=st.data())
def test_a_damaged_file_is_refused_naming_it_or_loads_unchanged(tmp_path_factory, key, data):
    raw = bytearray(_saved(tmp_path_factory.mktemp("m"), key))
    how = data.draw(st.sampled_from(("flip", "truncate", "append", "zero_run")))
    if how == "flip":
        for pos in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            raw[pos] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "append":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    else:
        a = data.draw(st.integers(0, len(raw) - 1))
        b = min(len(raw), a + data.draw(st.integers(1, 64)))
        raw[a:b] = bytes(b - a)
    path = tmp_path_factory.mktemp("d") / "damaged.npz"
    path.write_bytes(bytes(raw))
    _load_checked(path, key)


# ------------------------------------------------------------------------------- forged headers
def _digest(a: np.ndarray) -> str:
    """The file format's digest: SHA-256 of the dtype, the shape and the bytes in C order."""
    h = hashlib.sha256(str(a.dtype.str).encode())
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return h.hexdigest()


def _forge(raw: bytes, edit) -> bytes:
    """The file ``raw`` rewritten by ``edit(header, arrays)``, with matching digests: only the
    loader's own checks can refuse it."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(arrays.pop("__header__")).decode("utf-8"))
    edit(header, arrays)
    header["sha256"] = {k: _digest(v) for k, v in arrays.items()}
    out = io.BytesIO()
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(out, __header__=blob, **arrays)
    return out.getvalue()


VALUES = st.one_of(st.sampled_from([-1, 0, 1, 2, 7, 10**9, -1.5, 0.5, 1e308, "x", "", None, True,
                                    [], [1], [-1, 5], {"kind": "json", "value": 3}]),
                   st.floats(allow_nan=True), st.integers(-10**6, 10**6))
#: forged values the loader accepts today, drawn only with REGMTL_FUZZ_KNOWN=1 (none now: the
#: issue's tampered files are refused, each by a test below)
KNOWN_FORGED: set[str] = set()


def _targets(header: dict, arrays: dict) -> list[str]:
    """What a forger can edit: every JSON value of the parameters and attributes (a path of
    keys), and every array."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("kind") == "json" and not isinstance(node.get("value"), dict | list):
                paths.append(path)
            for k, v in node.items():
                if k not in ("kind",):
                    walk(v, (*path, k))
        elif not isinstance(node, list):
            paths.append(path)
    walk({"params": header["params"], "attributes": header["attributes"]}, ())
    return [p for p in paths if p[-1] != "value" or len(p) > 1] + [("array", k) for k in arrays]


@examples(30)
@given(key=st.sampled_from(sorted(MODELS)), data=st.data())
def test_a_forged_header_is_refused_naming_the_file_or_loads_a_consistent_model(
        tmp_path_factory, key, data):
    raw = _saved(tmp_path_factory.mktemp("m"), key)
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
        header = json.loads(bytes(npz["__header__"]).decode("utf-8"))
    target = data.draw(st.sampled_from(_targets(header, arrays)))
    name = ".".join(str(p) for p in target)
    assume(DRAW_KNOWN or not any(k in name for k in KNOWN_FORGED))
    if target[0] == "array":
        old = arrays[target[1]]
        factor = data.draw(st.sampled_from((-1.0, 0.0, 2.0, 1e300, np.nan, np.inf)))
        new = (old * factor).astype(old.dtype) if old.dtype.kind == "f" else old[::-1].copy()

        def edit(h, a):
            a[target[1]] = new
    else:
        value = data.draw(VALUES)

        def edit(h, a):
            node = h
            for k in target[:-1]:
                node = node[k]
            node[target[-1]] = value
    path = tmp_path_factory.mktemp("f") / "forged.npz"
    path.write_bytes(_forge(raw, edit))
    model = _load_or_refused(path, f"{name}: ")
    if model is not None:
        _assert_consistent(model)


def _assert_consistent(model) -> None:
    """A loaded model is one a fit could have produced: finite predictions, a penalty its
    constructor accepts, and its structure attributes consistent with ``coef_``."""
    out = model.predict(XS)
    assert all(np.all(np.isfinite(np.asarray(o, dtype=float))) for o in out)
    pen = model.penalty
    if isinstance(pen, rm.Penalty):
        type(pen)(**pen.get_params())
    T = len(model.tasks_)
    if hasattr(model, "P_"):
        np.testing.assert_allclose(model.P_ + model.Q_, model.coef_, rtol=1e-12, atol=1e-12)
    if hasattr(model, "outlier_tasks_"):
        assert np.all((model.outlier_tasks_ >= 0) & (model.outlier_tasks_ < T))


def _forged_path(tmp_path: Path, key: str, edit) -> Path:
    path = tmp_path / "forged.npz"
    path.write_bytes(_forge(_saved(tmp_path, key), edit))
    return path


def _set_array(name, fn):
    def edit(h, a):
        a[f"attr.{name}"] = fn(a[f"attr.{name}"])
    return edit


def test_forged_outlier_task_out_of_range_is_refused(tmp_path):
    path = _forged_path(tmp_path, "robust", _set_array("outlier_tasks_",
                                                       lambda a: np.array([7], dtype=a.dtype)))
    with pytest.raises(ValueError, match="outlier_tasks_"):
        rm.load(path)


def test_forged_parts_that_do_not_sum_to_coef_are_refused(tmp_path):
    path = _forged_path(tmp_path, "dirty", _set_array("P_", lambda a: 2 * a + 1))
    with pytest.raises(ValueError, match="P_"):
        rm.load(path)


def test_forged_capped_l1_with_a_negative_cap_is_refused(tmp_path):
    def edit(h, a):
        _replace_key(h["params"]["penalty"], "cap", -1.0)
    path = _forged_path(tmp_path, "capped", edit)
    with pytest.raises(ValueError, match="cap"):
        rm.load(path)


def _replace_key(node, key, value) -> None:
    if isinstance(node, dict):
        for k in node:
            if k == key:
                node[k] = {"kind": "json", "value": value} if isinstance(node[k], dict) and \
                    node[k].get("kind") == "json" else value
            else:
                _replace_key(node[k], key, value)
    elif isinstance(node, list):
        for v in node:
            _replace_key(v, key, value)


# ------------------------------------------------------------------------------- table readers
CELLS = st.sampled_from(("nan", "", "inf", "-inf", "abc", "1e400", "1e-400", "TRUE", "3"))


@st.composite
def tables(draw):
    """A long-form CSV as text: a task column (strings, ints, gaps, one-row tasks), a target and
    two features, with a few cells replaced by drawn bad ones; (text, the replaced columns)."""
    T = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 8)) for _ in range(T)]
    ids = draw(st.sampled_from((["s2", "s1", "s0"], [3, 10, 42], [0, 1, 2], ["a b", "é", "c,d"])))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    rows = []
    for t, n in enumerate(sizes):
        for _ in range(n):
            x = rng.standard_normal(2)
            rows.append({"task": ids[t], "f0": x[0], "f1": x[1], "y": x @ [1.0, -1.0]})
    frame = pd.DataFrame(rows).astype(object)
    bad = set()
    for _ in range(draw(st.integers(0, 2))):
        col = draw(st.sampled_from(("task", "f0", "f1", "y")))
        cell = draw(CELLS)
        frame.iloc[draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc(col)] = cell
        bad.add(col)
    return frame.to_csv(index=False), bad


@examples(25)
@given(table=tables(), kind=st.sampled_from(("auto", "regression")))
def test_read_table_errs_naming_the_column_or_reads_finite_tasks(tmp_path_factory, table, kind):
    text, bad = table
    path = tmp_path_factory.mktemp("t") / "data.csv"
    path.write_text(text, encoding="utf-8")
    try:
        bunch = read_table(path, task_col="task", target="y", kind=kind)
    except Exception as exc:  # noqa: BLE001 - the invariant checks the type
        assert_clear_error(exc, (*bad, "task_col", "target", "features", "kind", "path",
                                 "task", "y") if not bad else (*bad, "task_col", "target",
                                                                "features"))
        return
    assert len(bunch.X) == len(bunch.y) == len(bunch.task_names)
    for X, y in zip(bunch.X, bunch.y, strict=True):
        assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
        assert X.shape == (len(y), 2)


@examples(10)
@given(table=tables())
def test_the_fit_command_errs_in_one_line_naming_the_column_or_writes_a_model(
        tmp_path_factory, table, capsys):
    text, bad = table
    folder = tmp_path_factory.mktemp("c")
    path, out = folder / "data.csv", folder / "model.npz"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["fit", str(path), "--task-col", "task", "--target", "y", "--alpha", "0.1",
                 "--out", str(out)])
    err = capsys.readouterr().err
    if code != 0:
        assert code == 2 and err.startswith("regmtl: error: "), err
        assert_clear_error(ValueError(err), (*bad, "task", "y", "--task-col", "--target",
                                             "features", "--features", "task_col", "target"))
        return
    model = rm.load(out)
    assert all(np.all(np.isfinite(np.asarray(c))) for c in np.atleast_2d(model.coef_))


def test_read_table_refuses_an_infinite_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("task,f0,y\na,1,3\na,2,inf\na,0,2\nb,1,1\nb,2,5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="target: column 'y'"):
        read_table(path, task_col="task", target="y")


@pytest.mark.parametrize("name, value", [("coef_", np.nan), ("coef_", np.inf),
                                         ("intercept_", np.nan)])
def test_forged_non_finite_coefficients_are_refused(tmp_path, name, value):
    path = _forged_path(tmp_path, "l21", _set_array(name, lambda a: a * value))
    with pytest.raises(ValueError, match=name):
        rm.load(path)
