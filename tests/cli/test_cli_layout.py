"""The layout of the ``regmtl`` command's package, checked on the source: every module of
``src/regmtl/cli`` is short enough to read in one sitting (fewer than 450 lines) and opens with
a docstring that says what it holds; ``regmtl.cli.main`` is the console entry point, and
``python -m regmtl.cli`` runs it too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from conftest import REPO

import regmtl.cli
from regmtl.cli import main

ROOT = REPO
CLI = ROOT / "src" / "regmtl" / "cli"
MAX_LINES = 450
MODULES = sorted(CLI.glob("*.py"))


def test_the_command_is_a_package_of_modules():
    assert not (ROOT / "src" / "regmtl" / "cli.py").exists()
    names = {p.stem for p in MODULES}
    assert {"__init__", "__main__", "fit", "predict", "compare", "datasets"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_each_module_is_short_and_says_what_it_holds(path: Path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < MAX_LINES, f"{path.name}: {len(text.splitlines())} lines"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and len(doc.split()) >= 10, f"{path.name}: no module docstring"


def test_main_is_the_entry_point():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^regmtl\s*=\s*"regmtl\.cli:main"\s*$', pyproject, re.M)
    assert regmtl.cli.main is main and "main" in regmtl.cli.__all__
    scripts = [ep for ep in entry_points(group="console_scripts") if ep.name == "regmtl"]
    if scripts:  # installed (the editable install of the test environment)
        assert scripts[0].value == "regmtl.cli:main" and scripts[0].load() is main


def test_python_dash_m_runs_main(capsys):
    """``--version`` ends through argparse: the same line and status in and out of process."""
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    expected = capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "regmtl.cli", "--version"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected and expected.startswith("regmtl ")
