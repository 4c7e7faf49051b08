"""regmtl.load finds a file's model family by the kind the file declares, through a registry the
families fill (a folder's family lazily, by reference); penalties declare the fitted structure
they save, and a file whose structure breaks that rule is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import regmtl
from regmtl import penalties
from regmtl.persistence import _KINDS, _digest, known_kinds, register_kinds

KINDS = ("MultiTaskRegressor", "MultiTaskClassifier", "TransferredTask",
         "DeepMultiTaskRegressor", "DeepMultiTaskClassifier", "DeepMultiTaskModel")


def _data(T=3, n=30, p=5, seed=0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for _ in range(T)]
    w = rng.standard_normal(p)
    return Xs, [X @ w + 0.1 * rng.standard_normal(n) for X in Xs]


def _edit_archive(src, dst, edit):
    """Rewrite the model file ``src`` as ``dst`` after ``edit(header, arrays)``."""
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("__header__").tobytes().decode())
    edit(header, arrays)
    header["sha256"] = {k: _digest(a) for k, a in arrays.items()}
    blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(dst, "wb") as fh:
        np.savez_compressed(fh, __header__=blob, **arrays)
    return dst


def test_every_family_is_known():
    assert set(KINDS) <= set(known_kinds())


def test_the_lazy_deep_kinds_are_the_classes_that_save_as_folders():
    """regmtl/__init__.py names the deep kinds without importing them: the names must be
    exactly the classes regmtl.deep.saving reads back."""
    pytest.importorskip("torch")
    from regmtl.deep.saving import ESTIMATORS
    from regmtl.persistence import _KINDS

    lazy = {k for k, v in _KINDS.items() if v == "regmtl.deep.saving:load_estimator"}
    assert lazy == {*ESTIMATORS, "net-checkpoint"}


def test_an_archive_of_an_unknown_kind_is_refused_naming_the_known_kinds(tmp_path):
    Xs, ys = _data()
    regmtl.MultiTaskRegressor(alpha=0.1).fit(Xs, ys).save(tmp_path / "m.npz")
    bad = _edit_archive(tmp_path / "m.npz", tmp_path / "bad.npz",
                        lambda h, a: h.update({"class": "os.system"}))
    with pytest.raises(ValueError) as info:
        regmtl.load(bad)
    msg = str(info.value)
    assert "bad.npz" in msg and "'os.system'" in msg
    assert all(k in msg for k in KINDS)


def test_a_folder_of_an_unknown_kind_is_refused_naming_the_known_kinds(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"format": 1, "estimator": {"class": "Nope", "params": {}, "attributes": {}}}))
    with pytest.raises(ValueError) as info:
        regmtl.load(folder)
    msg = str(info.value)
    assert str(folder / "config.json") in msg and "'Nope'" in msg
    assert all(k in msg for k in KINDS)


def test_a_folder_kind_registered_by_reference_is_imported_when_read(tmp_path, monkeypatch):
    (tmp_path / "h3_lazy_family.py").write_text(
        "def load(path, max_bytes=None):\n    return ('loaded', str(path), max_bytes)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_KINDS, "LazyKind", None)
    register_kinds(["LazyKind"], "h3_lazy_family:load")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": 1, "estimator": {
        "class": "LazyKind"}}))
    assert "h3_lazy_family" not in sys.modules
    assert regmtl.load(folder, max_bytes=7) == ("loaded", str(folder), 7)
    assert "h3_lazy_family" in sys.modules
    monkeypatch.delitem(sys.modules, "h3_lazy_family")


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_a_linear_file_loads_without_the_deep_family_or_torch(tmp_path):
    Xs, ys = _data()
    regmtl.MultiTaskRegressor("trace", alpha=0.1).fit(Xs, ys).save(tmp_path / "m.npz")
    out = _run(f"""
import sys, regmtl
m = regmtl.load({str(tmp_path / "m.npz")!r})
print(type(m).__name__, "regmtl.deep" in sys.modules, "torch" in sys.modules)
""")
    assert out == "MultiTaskRegressor False False"


def test_a_deep_folder_loads_in_a_process_that_never_imported_the_deep_family(tmp_path):
    pytest.importorskip("torch")
    from regmtl.deep import DeepMultiTaskRegressor

    Xs, ys = _data()
    est = DeepMultiTaskRegressor(hidden=(4,), max_epochs=2).fit(Xs, ys)
    est.save(tmp_path / "d")
    expected = np.concatenate(est.predict(Xs))
    np.save(tmp_path / "X.npy", np.stack(Xs))
    out = _run(f"""
import sys, numpy as np, regmtl
assert "regmtl.deep" not in sys.modules
m = regmtl.load({str(tmp_path / "d")!r})
print(type(m).__name__)
np.save({str(tmp_path / "p.npy")!r}, np.concatenate(m.predict(list(np.load(
    {str(tmp_path / "X.npy")!r})))))
""")
    assert out == "DeepMultiTaskRegressor"
    assert np.array_equal(np.load(tmp_path / "p.npy"), expected)


# ---------------------------------------------------------------------- penalties' structure
STRUCTURED = [cls for name in penalties.__all__
              if isinstance(cls := getattr(penalties, name), type)
              and issubclass(cls, penalties.Penalty) and cls.structure_attrs]


def test_the_structured_penalties_are_the_expected_ones():
    assert {c.__name__ for c in STRUCTURED} == {"Trace", "Clustered", "Dirty", "SparseLowRank",
                                                "RobustLowRank", "RobustFeatures",
                                                "SharedStructure"}


@pytest.mark.parametrize("cls", STRUCTURED, ids=lambda c: c.__name__)
def test_every_structured_penalty_declares_the_rule_of_what_it_saves(cls):
    rules = cls.saved_structure(4, 6)
    assert set(cls.structure_attrs) <= set(rules)
    for rule in rules.values():
        assert rule[0] in ("int", "float", "bool", "str", "array")


# one wrong shape per structured penalty: (penalty, attribute, edit of its array)
WRONG = {
    "Trace": ("singular_values_", lambda a: np.r_[a, 0.0]),
    "Clustered": ("cluster_vectors_", lambda a: a[:-1]),
    "SharedStructure": ("shared_subspace_", lambda a: a[:-1]),
    "Dirty": ("Q_", lambda a: a[:, :-1]),
    "SparseLowRank": ("P_", lambda a: a[:-1]),
    "RobustLowRank": ("outlier_tasks_", lambda a: np.arange(a.size + 9)),
    "RobustFeatures": ("Q_", lambda a: a[:, :-1]),
}


@pytest.mark.parametrize("cls", STRUCTURED, ids=lambda c: c.__name__)
def test_a_structure_of_the_wrong_shape_is_refused(cls, tmp_path):
    name, edit = WRONG[cls.__name__]
    Xs, ys = _data()
    model = regmtl.MultiTaskRegressor(cls(), alpha=0.05, max_iter=200).fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    assert isinstance(regmtl.load(tmp_path / "m.npz"), regmtl.MultiTaskRegressor)

    def change(header, arrays):
        key = header["attributes"][name]["key"]
        arrays[key] = edit(arrays[key])

    bad = _edit_archive(tmp_path / "m.npz", tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=f"'{name}' has shape"):
        regmtl.load(bad)


def test_the_serialization_layer_imports_nothing_of_regmtl():
    import ast
    import inspect

    from regmtl import serialization

    tree = ast.parse(inspect.getsource(serialization))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names if a.name.startswith("regmtl")]


def test_a_transferred_task_loads_in_a_fresh_process(tmp_path):
    """``regmtl.transfer`` is imported lazily: a fresh process that loads a saved
    TransferredTask imports it (the class registered by name), with the same predictions."""
    Xs, ys = _data()
    model = regmtl.MultiTaskRegressor("l21", alpha=0.1).fit(Xs, ys)
    rng = np.random.default_rng(1)
    X_new = rng.standard_normal((12, 5))
    task = regmtl.transfer(model, X_new, X_new @ np.ones(5))
    task.save(tmp_path / "t.npz")
    code = ("import sys, numpy as np, regmtl; "
            "assert 'regmtl.transfer' not in sys.modules; "
            f"m = regmtl.load({str(tmp_path / 't.npz')!r}); "
            f"np.save({str(tmp_path / 'p.npy')!r}, m.predict(np.load("
            f"{str(tmp_path / 'x.npy')!r})))")
    np.save(tmp_path / "x.npy", X_new)
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), task.predict(X_new))
