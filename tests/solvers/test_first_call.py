"""A light first call: ``import regmtl`` loads neither numba nor the optional stacks, a fresh
process's first small fits run the NumPy twins of the kernels (no numba), the twins give the
compiled kernels' certified solution, and float32, Fortran-ordered or read-only inputs reuse
the compiled kernels' signatures (no new compilation). No timing is asserted here; see
``bench/bench_first_call.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl import _jit

SRC = str(REPO / "src")
HEAVY = ("numba", "torch", "dask", "cvxpy", "matplotlib.pyplot")


def _fresh(code: str) -> dict:
    """Run ``code`` (which prints one JSON line) in a fresh interpreter importing this tree."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("REGMTL_KERNELS", None)  # (the suite fixes the compiled path; a user's has none)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_module():
    """numba, torch, dask are never loaded by the import; pandas and scipy.stats only where
    scikit-learn's own base (which regmtl's estimators build on) loads them."""
    mods = ("numba", "torch", "dask", "cvxpy", "pandas", "scipy.stats", "regmtl.compare",
            "regmtl.selection", "regmtl.datasets")
    probe = "import json, sys; {imp}; print(json.dumps([m for m in %r if m in sys.modules]))"
    base = set(_fresh((probe % (mods,)).format(imp="import sklearn.base")))
    loaded = set(_fresh((probe % (mods,)).format(imp="import regmtl")))
    assert loaded <= base & {"pandas", "scipy.stats"}, loaded


def test_import_loads_no_solver_module():
    """The solver modules (the table, its runners) and sklearn.metrics load with the first
    solve, not with ``import regmtl``; the package's entries are still the functions."""
    code = ("import json, sys, regmtl\n"
            "before = sorted(m for m in sys.modules if m.startswith('regmtl.solvers.')\n"
            "                or m == 'sklearn.metrics')\n"
            "import regmtl.solvers as s, regmtl.solvers.methods.bcd, regmtl.solvers.parts.admm\n"
            "print(json.dumps([before, [callable(s.bcd), callable(s.admm), callable(s.fista),\n"
            "                            s.solve.__module__, s.bcd.__module__]]))")
    before, entries = _fresh(code)
    assert not {"regmtl.solvers.policy", "regmtl.solvers.solve", "regmtl.solvers.methods.bcd",
                "regmtl.solvers.entries", "sklearn.metrics"} & set(before), before
    assert entries == [True, True, True, "regmtl.solvers.solve", "regmtl.solvers.entries"]


def test_public_names_stay():
    """The lazily imported names are the same objects as their modules'."""
    from regmtl.compare import compare
    from regmtl.selection import MultiTaskRegressorCV
    from regmtl.transfer import transfer

    assert rm.compare is compare and rm.transfer is transfer
    assert rm.MultiTaskRegressorCV is MultiTaskRegressorCV
    assert {"compare", "Comparison", "regularization_path"} <= set(dir(rm))
    assert all(hasattr(rm, name) for name in rm.__all__)


def test_submodules_stay_attributes():
    """The submodules an eager import made attributes of regmtl still are (on first use)."""
    for name in ("baselines", "datasets", "metrics", "relatedness", "selection", "solvers",
                 "transfer_ridge", "penalties", "datafits"):
        assert getattr(rm, name).__name__ == f"regmtl.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rm.nothing  # noqa: B018


def test_deep_without_torch_names_the_extra():
    """PyTorch absent (a finder that refuses it): the import error says what to install."""
    code = ("import json, sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "try:\n    import regmtl.deep\nexcept ImportError as exc:\n"
            "    print(json.dumps(str(exc)))")
    assert 'pip install "regmtl[deep]"' in _fresh(code)


FIRST_FITS = """
import json, sys, warnings
import numpy as np
import regmtl as rm
from sklearn.exceptions import ConvergenceWarning
rng = np.random.default_rng(0)
n, p, T = 200, 30, 5
X = rng.standard_normal((n, p)); task = rng.integers(0, T, n)
y = X[:, :3] @ np.ones(3) + rng.standard_normal(n)
rm._jit.rent_seconds = 1e9  # (a loaded test machine must not switch to numba on time)
warnings.simplefilter("error", ConvergenceWarning)
for pen in ("l21", "l1", "l2", "elasticnet"):
    rm.MultiTaskRegressor(pen, alpha=0.1).fit(X, y, task=task)
for pen in ("l21", "l1", "l2"):
    rm.MultiTaskClassifier(pen, alpha=0.01).fit(X, (y > 0).astype(int), task=task)
rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, np.column_stack([y, -y]))
print(json.dumps("numba" in sys.modules))
"""


def test_first_small_fits_do_not_load_numba():
    """The estimators' default penalties, squared and logistic, long and shared forms."""
    assert _fresh(FIRST_FITS) is False


def _problem(seed, n, p, T, dtype, layout):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1] = X[:, 0] + 0.1 * rng.standard_normal(n)  # correlated columns: several epochs
    task = rng.integers(0, T, n)
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.standard_normal(n)
    X = X.astype(dtype)
    if layout == "F":
        X = np.asfortranarray(X)
    if layout == "readonly":
        X = X.copy()
        X.flags.writeable = False
        y = y.copy()
        y.flags.writeable = False
    return X, y, task


CASES = [  # (estimator, penalty, alpha, n, p, T, dtype, layout)
    ("reg", "l21", 0.1, 200, 30, 5, np.float64, "C"),
    ("reg", "l21", 0.01, 120, 50, 3, np.float32, "F"),
    ("reg", "l1", 0.05, 150, 20, 4, np.float64, "readonly"),
    ("reg", "elasticnet", 0.05, 90, 15, 6, np.float32, "C"),
    ("reg", "l2", 0.5, 100, 25, 2, np.float64, "F"),
    ("clf", "l21", 0.01, 200, 30, 5, np.float64, "readonly"),
    ("clf", "l1", 0.02, 160, 12, 3, np.float32, "F"),
]


def _fit(kind, penalty, alpha, X, y, task):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # certified: gap <= tol
        if kind == "reg":
            return rm.MultiTaskRegressor(penalty, alpha=alpha, tol=1e-8).fit(X, y, task=task)
        return rm.MultiTaskClassifier(penalty, alpha=alpha, tol=1e-8).fit(
            X, (y > 0).astype(int), task=task)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[7]}" for c in CASES])
def test_twins_give_the_compiled_solution(case):
    """Both paths certify the same gap at tol = 1e-8; their solutions agree to that tolerance
    (objectives to 1e-8 relative, coefficients to 1e-4 of their scale)."""
    kind, penalty, alpha, n, p, T, dtype, layout = case
    X, y, task = _problem(len(penalty) + n, n, p, T, dtype, layout)
    with _jit.use_twins(True):
        small = _fit(kind, penalty, alpha, X, y, task)
    with _jit.use_twins(False):
        compiled = _fit(kind, penalty, alpha, X, y, task)
    assert small.objective_ == pytest.approx(compiled.objective_, rel=1e-8)
    scale = max(np.abs(compiled.coef_).max(), 1.0)
    np.testing.assert_allclose(small.coef_, compiled.coef_, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(small.intercept_, compiled.intercept_, rtol=0, atol=1e-4 * scale)


def test_no_new_compilation_for_float32_fortran_or_readonly():
    """The compiled path: after a fit on C-ordered float64, fits on float32, Fortran-ordered
    and read-only inputs (long and shared forms) add no signature to any kernel."""
    from regmtl.segments import linear_dense
    from regmtl.solvers.parts._kernels import bcd_epoch_dense, moments_dense, update_intercepts

    kernels = (linear_dense, bcd_epoch_dense, moments_dense, update_intercepts)
    X, y, task = _problem(0, 150, 20, 4, np.float64, "C")
    Y = np.column_stack([y, -y, 2 * y])
    with _jit.use_twins(False):
        _fit("reg", "l21", 0.1, X, y, task)
        rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, Y)
        before = [list(k.signatures) for k in kernels]
        for dtype, layout in ((np.float32, "C"), (np.float64, "F"), (np.float64, "readonly"),
                              (np.float32, "readonly")):
            Xi, yi, _ = _problem(0, 150, 20, 4, dtype, layout)
            _fit("reg", "l21", 0.1, Xi, yi, task)
            Yi = np.asarray(Y, dtype=dtype, order="F" if layout == "F" else "C")
            Yi.flags.writeable = layout != "readonly"
            rm.MultiTaskRegressor("l21", alpha=0.1).fit(Xi, Yi)
    assert [list(k.signatures) for k in kernels] == before


def test_a_twin_declines_what_it_does_not_cover():
    """A kernel whose twin returns NotImplemented runs compiled: a nonconvex block kind."""
    from regmtl.penalties.base import MCP_ROWS
    from regmtl.solvers.parts import small

    W = np.zeros((2, 2))
    out = small.bcd_epoch_dense(np.ones((4, 2), order="F"), np.ones(4), np.ones(2), True,
                                np.array([0, 2, 4]), np.zeros(2, dtype=np.int64),
                                np.zeros((2, 2)), np.ones(4), W, np.ones((2, 2)), 0.1, 3.0,
                                MCP_ROWS, np.arange(2), np.zeros(2), np.zeros(2))
    assert out is NotImplemented


RENT = """
import json
import numpy as np
import regmtl as rm
rng = np.random.default_rng(1)
X = rng.standard_normal((120, 20)); task = rng.integers(0, 3, 120)
y = X[:, :2] @ np.ones(2) + rng.standard_normal(120)
for alpha in (0.2, 0.1, 0.05):
    rm.MultiTaskRegressor("l21", alpha=alpha).fit(X, y, task=task)
print(json.dumps(rm._jit._Rent.spent))
"""


def test_the_rent_is_counted_in_work_not_wall_time():
    """Two fresh processes running the same fits count the same rent to the last bit, so the
    fit that hands over to the compiled kernels is the same on a loaded machine as on an idle
    one (a rent in measured seconds made it depend on the load)."""
    first, second = _fresh(RENT), _fresh(RENT)
    assert first > 0.0
    assert first == second


def test_a_solve_keeps_the_path_it_started_on(monkeypatch):
    """The rent running out in the middle of a solve does not switch its kernels: the fit
    equals the all-twins fit bit for bit."""
    monkeypatch.delenv("REGMTL_KERNELS", raising=False)
    X, y, task = _problem(3, 200, 30, 5, np.float64, "C")
    with _jit.use_twins(True):
        twins = rm.MultiTaskRegressor("l21", alpha=0.01, tol=1e-8).fit(X, y, task=task)
    saved = (_jit._Rent.spent, _jit._Rent.bought, _jit.rent_seconds)
    try:
        _jit._Rent.spent, _jit._Rent.bought = 0.0, False
        _jit.rent_seconds = 0.02  # spent after about 20 of the solve's 250 kernel calls
        held = rm.MultiTaskRegressor("l21", alpha=0.01, tol=1e-8).fit(X, y, task=task)
    finally:
        _jit._Rent.spent, _jit._Rent.bought, _jit.rent_seconds = saved
    np.testing.assert_array_equal(held.coef_, twins.coef_)
    np.testing.assert_array_equal(held.intercept_, twins.intercept_)


def test_regmtl_kernels_fixes_the_path(monkeypatch):
    """REGMTL_KERNELS=numba runs the compiled kernels from the first call (the same numbers
    in every process whatever ran before); an unknown value is refused naming it."""
    X, y, task = _problem(4, 150, 20, 3, np.float64, "C")
    with _jit.use_twins(False):
        compiled = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-8).fit(X, y, task=task)
    monkeypatch.setenv("REGMTL_KERNELS", "numba")
    saved = (_jit._Rent.spent, _jit._Rent.bought)
    try:
        _jit._Rent.spent, _jit._Rent.bought = 0.0, False
        env = rm.MultiTaskRegressor("l21", alpha=0.05, tol=1e-8).fit(X, y, task=task)
    finally:
        _jit._Rent.spent, _jit._Rent.bought = saved
    np.testing.assert_array_equal(env.coef_, compiled.coef_)
    monkeypatch.setenv("REGMTL_KERNELS", "fast")
    with pytest.raises(ValueError, match="REGMTL_KERNELS='fast'"):
        rm.MultiTaskRegressor("l21", alpha=0.05).fit(X, y, task=task)
