"""pytest plugin: scikit-learn's coordinate-descent estimators replaced by regmtl's adapters.

Loaded with ``-p _sklearn_plugin`` (``bench`` on ``sys.path``): importing it rebinds the names
in ``sklearn.linear_model`` before any test module is collected, so a test module's
``from sklearn.linear_model import Lasso`` gets the adapter of ``_sklearn_adapters``.
scikit-learn's private modules (``_coordinate_descent``, ``_cd_fast``) and the reference
estimators the tests compare with (``Ridge``, ``LinearRegression``, ``LassoLarsCV``) are left
alone. Every test is stopped after ``SKLEARN_SUITE_TIMEOUT`` seconds (default 120).
"""

from __future__ import annotations

import os
import signal

import _sklearn_adapters as _adapters
import pytest
import sklearn.linear_model as _lm

for _name in _adapters.__all__:
    setattr(_lm, _name, getattr(_adapters, _name))

_TIMEOUT = int(os.environ.get("SKLEARN_SUITE_TIMEOUT", "120"))


class SuiteTimeout(Exception):
    """A test ran past the suite's per-test time limit."""


def _alarm(signum, frame):
    raise SuiteTimeout(f"test ran past {_TIMEOUT} s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
