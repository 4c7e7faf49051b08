"""The layout rules of the package that the developer page states, checked on the source:

- the deep training step is written once (``regmtl.deep.step.train_step``): no other module of
  ``regmtl.deep`` clears gradients, calls a weighting's ``backward`` or steps an optimizer;
- the route of the shared representation is declared: the base ``Weighting`` says whether a
  method reads it (``on_representation``) and has ``watch``/``unwatch``, the net names the
  module (``MultiTaskNet.shared_representation``), nothing probes ``on_representation`` with
  ``getattr``;
- one registry of the nets (``regmtl.deep.nets.NETS``, ``ARCHITECTURES`` from each class's
  ``architecture``), each net in its own module, and the wrappers do not pick a net by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import REPO  # noqa: E402

from regmtl.deep import HardSharing, MultiTaskNet, Weighting  # noqa: E402
from regmtl.deep.nets import ARCHITECTURES, NETS  # noqa: E402

SRC = REPO / "src" / "regmtl"
DEEP = SRC / "deep"


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_the_training_step_is_written_once():
    """Only ``deep/step.py`` clears gradients, calls a weighting's backward or steps the
    optimizer (the weighting package itself aside)."""
    found = []
    for path in sorted(DEEP.rglob("*.py")):
        if path.name == "step.py" or "weighting" in path.parts:
            continue
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("zero_grad", "backward", "unscale_")):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "step" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("opt", "optimizer", "scaler")):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


def test_the_representation_route_is_declared():
    assert Weighting.on_representation is False
    w = Weighting()
    assert w.watch(torch.nn.Linear(2, 2)) is w and w.unwatch() is None
    net = HardSharing(3, ["a", "b"], hidden=(4,))
    assert net.shared_representation() is net.trunk
    assert all(cls.shared_representation is MultiTaskNet.shared_representation
               for name, cls in NETS.items() if name != "HardSharing")
    probes = []
    for path in sorted(DEEP.rglob("*.py")):
        for node in ast.walk(_tree(path)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value in ("on_representation", "watch", "unwatch", "trunk")):
                probes.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert probes == []


def test_one_registry_of_the_nets_each_in_its_own_module():
    modules = [cls.__module__ for cls in NETS.values() if cls.__name__ != "CGC"]
    assert len(set(modules)) == len(modules)  # (CGC is PLE's one-level form, beside it)
    assert all(m.startswith("regmtl.deep.nets.") for m in modules)
    assert NETS == {cls.__name__: cls for cls in NETS.values()}
    assert ARCHITECTURES == {cls.architecture: cls for cls in NETS.values()
                             if cls.architecture is not None}
    assert set(ARCHITECTURES) == {"hard", "mmoe", "cgc", "ple"}
    # the wrappers build the net the registry names: no comparison with an architecture name
    tree = _tree(DEEP / "estimators.py")
    compared = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Compare)
                and any(isinstance(c, ast.Constant) and c.value in ARCHITECTURES
                        for c in (node.left, *node.comparators))]
    assert compared == []
