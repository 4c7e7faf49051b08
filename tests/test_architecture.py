"""The shape of the code: the import graph of ``src/regmtl`` has no circle, no module imports a
private name (``_x``) from another module, solvers never ask whether data is distributed,
persistence imports no model family, a module over 1,500 lines says why in its docstring, and
no class is longer than 600 lines.
The solver stack keeps to the block protocol: a solver module reads of the data only what
:mod:`regmtl.blocks` defines, nothing outside the Dask block class calls ``.persist()``,
nothing asks ``getattr(..., "distributed")`` (where rows live is the protocol's
``rows_local``), no penalty module imports a solver module, and no solver module names a
penalty class (it asks what the penalty declares).

The graph is read from the source (``ast``), functions' own imports included, so a deferred
import counts as much as a top-level one; a name imported from a package is an edge to the
module that holds it (the package's ``__init__`` where that defines it).
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "regmtl"
MAX_LINES = 1500
#: the longest a class may be
MAX_CLASS_LINES = 600


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(SRC.rglob("*.py"))}


@functools.cache
def _text(path: Path) -> str:
    """A source file's text, read once for all the checks."""
    return path.read_text(encoding="utf-8")


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A source file's syntax tree, parsed once for all the checks (none of them edits it)."""
    return ast.parse(_text(path))


@functools.cache
def _nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of a source file's tree (``ast.walk`` order), listed once."""
    return tuple(ast.walk(_tree(path)))


def _target(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _package_names() -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """Per package: the names its ``__init__`` defines (def, class, assignment) and those it
    re-exports (name -> the module it imports the name from)."""
    defined: dict[str, set[str]] = defaultdict(set)
    reexported: dict[str, dict[str, str]] = defaultdict(dict)
    for mod, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        for node in _tree(path).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined[mod].add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined[mod] |= {t.id for t in targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.ImportFrom):
                src = _target(mod, True, node.level, node.module)
                for alias in node.names:
                    full = f"{src}.{alias.name}"
                    reexported[mod][alias.asname or alias.name] = full if full in MODULES else src
    return defined, reexported


DEFINED, REEXPORTED = _package_names()


def _source(src: str, name: str) -> str:
    """The module that holds ``name`` imported from ``src``: a package's re-export is followed
    to the module it comes from; a name its ``__init__`` defines stays an edge to it."""
    seen = set()
    while src in REEXPORTED and name in REEXPORTED[src] and name not in DEFINED[src]:
        if src in seen:
            break
        seen.add(src)
        src = REEXPORTED[src][name]
        if src.endswith("." + name) and src in MODULES:
            break
    return src


def _imports() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Edges module -> module imported, and (module, source, private name) imports. Every
    import counts, a function's own included; ``from package import name`` is an edge to the
    module that holds the name, the package's ``__init__`` where that defines it (so a module
    importing from its own package's ``__init__`` closes a circle when that ``__init__``
    imports it)."""
    edges: dict[str, set[str]] = defaultdict(set)
    private = []
    for mod, path in MODULES.items():
        for node in _nodes(path):
            if isinstance(node, ast.ImportFrom):
                src = _target(mod, path.name == "__init__.py", node.level, node.module)
                if not src.startswith("regmtl"):
                    continue
                for alias in node.names:
                    full = f"{src}.{alias.name}"
                    if full in MODULES:
                        edges[mod].add(full)
                        continue
                    edges[mod].add(_source(src, alias.name))
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append((mod, src, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES:
                        edges[mod].add(alias.name)
    return {m: {d for d in ds if d != m} for m, ds in edges.items()}, private


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
        text = _text(path)
        doc = ast.get_docstring(_tree(path)) or ""
        if text.count("\n") > MAX_LINES and "1,500 lines" not in doc:
            silent.append((mod, text.count("\n")))
    assert silent == []


# --------------------------------------------------------------------------- the solver stack
def _protocol_names() -> set[str]:
    """The names :class:`~regmtl.blocks.TaskBlocks` and its in-memory part
    :class:`~regmtl.blocks.LocalRows` define (attributes, properties, methods)."""
    tree = _tree(SRC / "blocks.py")
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("TaskBlocks", "LocalRows"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
    return {n for n in names if not n.startswith("_")}


def _data_reads(path: Path) -> list[tuple[int, str]]:
    """Attribute reads on the data in a module: ``data.x`` and ``obj.data.x`` (the solvers'
    name for a problem, as an argument or kept on an object). Limits: a problem under another
    name (an alias ``d = data``, a block in ``blockwise``, which is in memory by contract) is
    not seen, nor ``getattr(data, name)`` with a computed name."""
    out = []
    for node in _nodes(path):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if (isinstance(base, ast.Name) and base.id == "data") or (
                isinstance(base, ast.Attribute) and base.attr == "data"
                and isinstance(base.value, ast.Name)):
            out.append((node.lineno, node.attr))
    for node in _nodes(path):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr") and node.args
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "data"
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
            out.append((node.lineno, node.args[1].value))
    return out


def test_a_solver_reads_only_protocol_names_of_the_data():
    allowed = _protocol_names()
    assert {"linear", "adjoint", "rows_local", "memo", "X", "indptr"} <= allowed
    found = [f"{p.name}:{line} .{attr}" for p in sorted((SRC / "solvers").glob("*.py"))
             for line, attr in _data_reads(p) if attr not in allowed]
    assert found == []


def test_the_data_read_check_sees_a_private_field(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f(data, ls):\n    return data._cache, ls.data.sizes, "
                    "getattr(data, 'distributed', False)\n")
    assert sorted(a for _, a in _data_reads(path)) == ["_cache", "distributed", "sizes"]


def _code_lines(pattern: str, skip: tuple[str, ...] = ()) -> list[str]:
    """``file:line`` of the source lines (comments cut) that match ``pattern``."""
    rx = re.compile(pattern)
    return [f"{mod}:{i}" for mod, path in MODULES.items() if mod not in skip
            for i, line in enumerate(_text(path).splitlines(), 1)
            if rx.search(line.split("#")[0])]


def test_only_the_dask_block_class_persists():
    """Keeping arrays on the workers is the protocol's ``settle``, implemented in
    :mod:`regmtl.dask`."""
    assert _code_lines(r"\.persist\(", skip=("regmtl.dask",)) == []


def test_no_module_asks_whether_data_is_distributed():
    """Where the rows live is asked only as the protocol's ``rows_local``."""
    assert _code_lines(r"(getattr|hasattr)\([^)]*[\"']distributed[\"']") == []


def test_no_penalty_module_imports_a_solver_module():
    assert sorted((m, d) for m, ds in EDGES.items() if m.startswith("regmtl.penalties")
                  for d in ds if d.startswith("regmtl.solvers")) == []


def _penalty_classes() -> set[str]:
    """The names of the classes the penalty modules define, but the base ``Penalty``."""
    names = set()
    for mod, path in MODULES.items():
        if mod.startswith("regmtl.penalties"):
            names |= {node.name for node in _tree(path).body
                      if isinstance(node, ast.ClassDef)}
    return names - {"Penalty", "BlockStep"}


def test_no_solver_module_names_a_penalty_class():
    """A solver asks what a penalty declares (its block step, ``nonconvex``, ``majorized``,
    ``has_prox``, ...), never which class it is: names in code (not in docstrings)."""
    classes = _penalty_classes()
    assert {"L21", "GraphLaplacian", "NonconvexFusedGroupLasso"} <= classes
    found = []
    for path in sorted((SRC / "solvers").glob("*.py")):
        for node in _nodes(path):
            names = ([node.id] if isinstance(node, ast.Name) else
                     [node.attr] if isinstance(node, ast.Attribute) else
                     [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n in classes]
    assert found == []


#: The layers of docs/developer/architecture.rst, bottom first: a module imports only modules of
#: its own layer or below. A module belongs to the layer of the longest prefix that names it.
LAYERS = (
    ("base", ("regmtl._version", "regmtl._options", "regmtl._parallel", "regmtl._jit",
              "regmtl._lazy", "regmtl._frames", "regmtl.ranges",
              "regmtl.serialization", "regmtl.segments", "regmtl.task_lists", "regmtl.metrics",
              "regmtl.plotting", "regmtl.datasets", "regmtl.progress")),
    ("data", ("regmtl.inputs", "regmtl.blocks", "regmtl.taskdata", "regmtl.classes",
              "regmtl.dask", "regmtl.scaling", "regmtl.parquet")),
    ("terms", ("regmtl.datafits", "regmtl.penalties")),
    ("solvers", ("regmtl.solvers",)),
    ("models", ("regmtl.problem", "regmtl.feature_terms", "regmtl.reductions", "regmtl.fitted",
                "regmtl.placements",
                "regmtl.estimators", "regmtl.estimator_docs", "regmtl.task_alpha",
                "regmtl.out_of_core", "regmtl.conformance", "regmtl.support_table",
                "regmtl.persistence", "regmtl.deep", "regmtl.streaming",
                "regmtl.inference")),
    ("selection", ("regmtl.selection", "regmtl.selection.held_out", "regmtl.baselines")),
    ("questions", ("regmtl.compare", "regmtl.transfer", "regmtl.transfer_ridge",
                   "regmtl.relatedness", "regmtl.transfer_curve")),
    ("reports", ("regmtl.document", "regmtl.report", "regmtl.coefficients_report",
                 "regmtl.serving", "regmtl.cli")),
    ("package", ("regmtl",)),
)


def _layer(module: str) -> int:
    found = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
             if module == prefix or module.startswith(prefix + ".")]
    assert found, f"{module} is in no layer: add it to LAYERS and to the architecture page"
    return max(found)[1]


def test_a_module_imports_only_its_layer_or_below():
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
              for a, targets in EDGES.items() for b in sorted(targets)
              if _layer(b) > _layer(a)]
    assert upward == []


def test_solvers_take_task_data_not_the_input_forms():
    """The solvers read a TaskData (or task blocks), a datafit and a penalty: never the input
    forms, the classes' layout, the standardization, Dask or Parquet of the data layer."""
    below = ("regmtl.inputs", "regmtl.classes", "regmtl.scaling", "regmtl.dask",
             "regmtl.parquet")
    found = [f"{a} imports {b}" for a, targets in EDGES.items() if a.startswith("regmtl.solvers")
             for b in sorted(targets) if b in below]
    assert found == []


def test_the_deep_half_imports_only_the_input_layers():
    """regmtl.deep shares the input layer, serialization and the task-id coding with the
    linear half, and imports nothing of its terms, solvers or models."""
    reach = [f"{a} imports {b}" for a, targets in EDGES.items() if a.startswith("regmtl.deep")
             for b in sorted(targets)
             if not b.startswith("regmtl.deep") and _layer(b) > 1]
    assert reach == []


def test_no_class_is_longer_than_the_limit():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in _nodes(path):
            if isinstance(node, ast.ClassDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_CLASS_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.name} ({n} lines)")
    assert long == []


def test_the_tests_mirror_the_packages():
    """``tests/`` has a folder per package of ``src/regmtl`` it tests (its modules' tests at
    the top), and no test module is named after when it was written."""
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir()} - {"data", "__pycache__"}
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert folders <= packages, folders - packages
    dated = [p.name for p in tests.rglob("test_*.py")
             if re.search(r"round\d|_new_|issue\d|session|_v\d", p.name)]
    assert dated == []
