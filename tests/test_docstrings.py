"""Every public function and class is documented (parameters, returns, an example), appears in
the API reference, and its examples run: the doctests of the whole package are part of the suite.

"Public" is the ``__all__`` of the modules users import (:data:`PUBLIC_MODULES`); constants are
documented in the module docstrings and not checked here. That every reference of the
documentation resolves is ``make docs``'s check (Sphinx with ``-n -W``), which CI runs after the
suite.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import regmtl  # noqa: E402

PUBLIC_MODULES = (
    "regmtl",
    "regmtl.penalties",
    "regmtl.datafits",
    "regmtl.selection",
    "regmtl.solvers",
    "regmtl.metrics",
    "regmtl.plotting",
    "regmtl.report",
    "regmtl.transfer_curve",
    "regmtl.scaling",
    "regmtl.persistence",
    "regmtl.datasets",
    "regmtl.deep",
    "regmtl.deep.weighting",
    "regmtl.deep.distributed",
)
API_DIR = Path(__file__).resolve().parent.parent / "docs"


def _public_objects() -> list[tuple[str, object]]:
    seen: dict[int, tuple[str, object]] = {}
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.setdefault(id(obj), (f"{modname}.{name}", obj))
    return sorted(seen.values(), key=lambda item: item[0])


PUBLIC = _public_objects()


def _sections(doc: str) -> set[str]:
    """numpydoc section titles: a line followed by a line of dashes of the same length."""
    lines = doc.splitlines()
    return {a.strip() for a, b in zip(lines, lines[1:], strict=False)
            if b.strip() and set(b.strip()) == {"-"} and len(b.strip()) == len(a.strip())}


def _takes_arguments(obj: object) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return False
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls") for name in params)


@pytest.mark.parametrize(("qualname", "obj"), PUBLIC, ids=[q for q, _ in PUBLIC])
def test_public_docstring(qualname: str, obj: object) -> None:
    doc = inspect.getdoc(obj)
    assert doc, f"{qualname} has no docstring"
    sections = _sections(doc)
    missing = []
    if _takes_arguments(obj) and "Parameters" not in sections:
        missing.append("Parameters")
    if inspect.isfunction(obj) and not sections & {"Returns", "Yields"}:
        missing.append("Returns")
    if "Examples" not in sections or ">>>" not in doc:
        missing.append("Examples (with >>> lines)")
    assert not missing, f"{qualname}: docstring lacks {', '.join(missing)}"


def test_api_reference_lists_every_public_name() -> None:
    """Every public object is an autosummary entry (short name under a ``currentmodule``)."""
    documented: set[int] = set()
    for page in API_DIR.glob("api*.rst"):
        module = None
        for line in page.read_text().splitlines():
            m = re.match(r"\.\. currentmodule:: (\S+)", line.strip())
            if m:
                module = importlib.import_module(m.group(1))
            elif module is not None and re.fullmatch(r"   [A-Za-z_][\w.]*", line):
                obj = module
                for part in line.strip().split("."):
                    obj = getattr(obj, part, None)
                documented.add(id(obj))
    missing = [q for q, obj in PUBLIC if id(obj) not in documented]
    assert not missing, f"not in the API reference (docs/api*.rst): {missing}"


def _modules() -> list[str]:
    names = ["regmtl"]
    for info in pkgutil.walk_packages(regmtl.__path__, "regmtl."):
        names.append(info.name)
    return sorted(names)


MODULES = _modules()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("modname", MODULES)
def test_doctests(modname: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that save files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    mod = importlib.import_module(modname)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(mod, modname)
             if t.examples]
    if not tests:
        pytest.skip("no examples in this module")
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    failures: list[str] = []
    state = np.get_printoptions()
    try:
        for test in tests:
            runner.run(test, out=failures.append)
    finally:
        np.set_printoptions(**state)
        import matplotlib.pyplot as plt

        plt.close("all")
    assert runner.failures == 0, "".join(failures)


GUIDE = sorted((API_DIR / "user_guide").glob("*.rst"))


@pytest.mark.parametrize("page", GUIDE, ids=[p.stem for p in GUIDE])
def test_user_guide_snippets(page: Path, tmp_path, monkeypatch) -> None:
    """The ``>>>`` snippets of every user-guide page run and print what the page shows."""
    monkeypatch.chdir(tmp_path)
    text = page.read_text()
    if ">>>" not in text:
        pytest.skip("no runnable snippets on this page")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": "__main__"}, page.stem, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    failures: list[str] = []
    try:
        runner.run(test, out=failures.append)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    assert runner.failures == 0, "".join(failures)
