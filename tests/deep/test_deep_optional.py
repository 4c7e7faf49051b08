"""PyTorch is optional: regmtl imports without it, regmtl.deep says how to install it."""

import subprocess
import sys

CODE = """
import importlib.abc, sys


class NoTorch(importlib.abc.MetaPathFinder):  # as if PyTorch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}")


sys.meta_path.insert(0, NoTorch())
import regmtl, regmtl.datasets
regmtl.datasets.make_mmoe_tasks(50, 5, 0.5, random_state=0)
try:
    import regmtl.deep
except ImportError as exc:
    print(exc)
"""


def test_regmtl_imports_without_torch():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "regmtl[deep]"' in out.stdout and "torch==2.13.0" in out.stdout
