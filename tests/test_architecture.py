"""The shape of the code: the import graph of ``src/regmtl`` has no circle, no module imports a
private name (``_x``) from another module, solvers never ask whether data is distributed,
persistence imports no model family, and a module over 1,500 lines says why in its docstring.

The graph is read from the source (``ast``), functions' own imports included, so a deferred
import counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "regmtl"
MAX_LINES = 1500


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _target(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Edges module -> module imported, and (module, source, private name) imports."""
    edges: dict[str, set[str]] = defaultdict(set)
    private = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _target(mod, path.name == "__init__.py", node.level, node.module)
                if not src.startswith("regmtl"):
                    continue
                for alias in node.names:
                    full = f"{src}.{alias.name}"
                    if full in MODULES:
                        edges[mod].add(full)
                        continue
                    edges[mod].add(src)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((mod, src, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES:
                        edges[mod].add(alias.name)
    # a module importing its own parent package (for a re-exported name) is no edge of the
    # layering: the package's __init__ only gathers names
    return {m: {d for d in ds if d != m and not m.startswith(d + ".")}
            for m, ds in edges.items()}, private


EDGES, PRIVATE = _imports()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for root in MODULES:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_import_graph_has_no_circle():
    assert _cycles(EDGES) == []


def test_the_cycle_finder_finds_a_circle():
    a, b, c = sorted(MODULES)[:3]
    assert _cycles({a: {b}, b: {c}, c: {a}}) == [sorted([a, b, c])]
    assert _cycles({a: {b}, b: {c}}) == []


def test_no_private_name_is_imported_from_another_module():
    assert sorted(set(PRIVATE)) == []


def test_solvers_never_ask_whether_data_is_distributed():
    """The block protocol answers for both kinds of data; a solver does not branch on it."""
    found = [f"{p.name}:{i}" for p in (SRC / "solvers").glob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bdistributed\b", line.split("#")[0])]
    assert found == []


def test_persistence_imports_no_model_family():
    families = ("regmtl.estimators", "regmtl.transfer", "regmtl.deep")
    assert sorted(d for d in EDGES.get("regmtl.persistence", ())
                  if d.startswith(families)) == []


def test_a_long_module_says_why():
    silent = []
    for mod, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and "1,500 lines" not in doc:
            silent.append((mod, text.count("\n")))
    assert silent == []
