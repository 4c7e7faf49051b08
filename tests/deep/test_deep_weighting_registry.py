"""The weighting registry: a class that declares its ``name`` registers itself (the base class
does it), ``WEIGHTINGS`` in ``regmtl/deep/weighting/__init__.py`` is built once from that
registry after the package imports all its modules, every concrete weighting class of the
package is in it exactly once, the same whatever is imported first, and its keys are those
that saved estimators use. No weighting module imports the nets or the trainer.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import regmtl.deep.weighting as weighting  # noqa: E402
from regmtl.deep.weighting import WEIGHTINGS, Weighting  # noqa: E402

PACKAGE = Path(weighting.__file__).resolve().parent
SRC = PACKAGE.parents[2]  # .../src
#: the names saved estimators and checkpoints carry: never renamed
KEYS = ["equal", "fixed", "random", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad",
        "famo", "nash_mtl", "imtl", "mgda", "aligned_mtl", "upgrad",
        "gradvac", "graddrop", "dualproj", "config", "fairgrad", "sdmgrad", "modo",
        "db_mtl", "stch", "gls", "moco", "excess_mtl", "rgw"]
#: the bases a method derives from, registered under no name
BASES = {"regmtl.deep.weighting.base.Weighting", "regmtl.deep.weighting.base.GradientWeighting",
         "regmtl.deep.weighting.gram.GramWeighting",
         "regmtl.deep.weighting.loss_based.LossValueWeighting"}


def _registry_node() -> ast.AST:
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    found = [node for node in tree.body
             if isinstance(node, (ast.Assign, ast.AnnAssign))
             and any(isinstance(t, ast.Name) and t.id == "WEIGHTINGS"
                     for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    assert len(found) == 1, "WEIGHTINGS must be assigned exactly once in weighting/__init__.py"
    return found[0].value


def _package_classes() -> dict[str, type]:
    """Every Weighting subclass defined in a module of the package, by qualified name."""
    out = {}
    for info in pkgutil.iter_modules([str(PACKAGE)], "regmtl.deep.weighting."):
        mod = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, Weighting) and obj.__module__ == mod.__name__:
                out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


def test_the_registry_is_built_from_the_classes_names():
    value = _registry_node()
    assert isinstance(value, ast.Call)  # dict(sorted(REGISTRY.items())): no name list
    assert not [n for n in ast.walk(value) if isinstance(n, ast.Constant)]
    assert set(KEYS) <= set(WEIGHTINGS)
    assert list(WEIGHTINGS) == sorted(WEIGHTINGS)
    for key, cls in WEIGHTINGS.items():
        assert cls.__dict__["name"] == key


def test_a_named_class_registers_itself_and_a_name_is_taken_once():
    code = ("from regmtl.deep.weighting import Weighting, WEIGHTINGS\n"
            "from regmtl.deep.weighting.base import REGISTRY\n"
            "class Mine(Weighting):\n"
            "    name = 'mine'\n"
            "class Unnamed(Mine):\n"
            "    pass\n"
            "assert REGISTRY['mine'] is Mine and 'mine' not in WEIGHTINGS\n"
            "assert Unnamed not in REGISTRY.values()\n"
            "try:\n"
            "    class Other(Weighting):\n"
            "        name = 'pcgrad'\n"
            "except ValueError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert "weighting name 'pcgrad' is taken by PCGrad" in out.stdout


def test_no_weighting_module_imports_the_nets_or_the_trainer():
    found = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module and \
                    node.module.split(".")[0] in ("nets", "trainer", "esmm", "estimators"):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_nothing_in_the_source_adds_to_the_registry():
    """No ``WEIGHTINGS.update(...)``, ``WEIGHTINGS[...] = ...`` or ``setdefault`` anywhere."""
    found = []
    for path in (SRC / "regmtl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "WEIGHTINGS"
                    and node.attr in ("update", "setdefault", "pop", "clear")):
                found.append(f"{path.name}:{node.lineno}")
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign) else [])
            for t in targets:
                if (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
                        and t.value.id == "WEIGHTINGS"):
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_every_concrete_weighting_is_registered_exactly_once():
    classes = _package_classes()
    assert BASES <= set(classes)
    concrete = {name: cls for name, cls in classes.items() if name not in BASES}
    registered = list(WEIGHTINGS.values())
    for name, cls in concrete.items():
        assert registered.count(cls) == 1, f"{name} is registered {registered.count(cls)} times"
    assert all(f"{c.__module__}.{c.__qualname__}" in concrete for c in registered)


def test_one_module_per_method_and_small_files():
    for cls in WEIGHTINGS.values():
        assert cls.__module__.startswith("regmtl.deep.weighting.")
        assert cls.__module__ not in ("regmtl.deep.weighting.base", "regmtl.deep.weighting.gram")
    for path in PACKAGE.glob("*.py"):
        assert path.read_text(encoding="utf-8").count("\n") <= 450, path.name


_PROBE = ("import json, sys\n"
          "{first}\n"
          "from regmtl.deep.weighting import WEIGHTINGS\n"
          "from regmtl.deep.estimators import DeepMultiTaskRegressor\n"
          "opts = DeepMultiTaskRegressor._parameter_constraints['weighting'][0].options\n"
          "print(json.dumps({{'registry': [[k, v.__module__ + '.' + v.__qualname__]\n"
          "                               for k, v in WEIGHTINGS.items()],\n"
          "                   'options': sorted(opts)}}))\n")


@pytest.mark.parametrize("first", ["import regmtl.deep.conflict",
                                   "import regmtl.deep.weighting.pcgrad",
                                   "import regmtl.deep.estimators",
                                   "pass"])
def test_the_registry_does_not_depend_on_import_order(first):
    """Fresh interpreters: importing ``regmtl.deep.conflict`` (or anything) first or not gives
    the same registry, and the estimators' option list is built from all of it."""
    def probe(code_first):
        out = subprocess.run([sys.executable, "-c", _PROBE.format(first=code_first)],
                             capture_output=True, text=True, timeout=300, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    got = probe(first)
    assert [k for k, _ in got["registry"]] == sorted(WEIGHTINGS)
    assert got["registry"] == [[k, f"{v.__module__}.{v.__qualname__}"]
                               for k, v in WEIGHTINGS.items()]
    assert got["options"] == sorted(set(WEIGHTINGS) - {"fixed"})


def test_old_import_paths_keep_working():
    import regmtl.deep as deep
    import regmtl.deep.conflict as conflict

    for name in conflict.__all__:
        assert getattr(conflict, name) is getattr(weighting, name)
    for name in ("FAMO", "NashMTL", "IMTL", "MGDA", "AlignedMTL", "UPGrad", "PCGrad", "CAGrad"):
        assert getattr(deep, name) is getattr(conflict, name) is WEIGHTINGS[
            next(k for k, v in WEIGHTINGS.items() if v.__name__ == name)]
    for name in ("project_conflicting", "cagrad_direction", "make_weighting", "Weighting",
                 "EqualWeighting", "DWA", "GradNorm"):
        assert hasattr(weighting, name)
    # conflict.py only gathers names: it defines no function or class of its own
    tree = ast.parse(Path(conflict.__file__).read_text(encoding="utf-8"))
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
