"""A fixed subset of scikit-learn's own coordinate-descent tests, run against regmtl.

``bench/sklearn_suite.py`` runs all of scikit-learn's ``test_coordinate_descent.py`` and
``test_sparse_coordinate_descent.py`` with ``Lasso``, ``ElasticNet``, ``MultiTaskLasso``,
``MultiTaskElasticNet`` and their ``...CV`` replaced by adapters fitted by regmtl
(``bench/_sklearn_adapters.py``); the full count is a benchmark. Here a few of those tests,
which assert scikit-learn's reference numbers (closed forms, skglm's optimum, per-target
equivalences), must pass, so that the count cannot silently regress. Skipped when the
installed scikit-learn does not ship its tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return sys.modules[name]


suite = _load("sklearn_suite")

pytestmark = pytest.mark.skipif(suite.tests_dir() is None,
                                reason="the installed scikit-learn ships no tests")

#: scikit-learn tests that must pass through the adapters (file -> test functions). Not
#: ``test_lasso_dual_gap``: it pins ``dual_gap_`` to the residual scaled into the dual ball,
#: where regmtl reports the gap at the best of its dual points (that one and, where it falls
#: short, the residual projected onto the ball): a bound at least as tight, checked below.
SUBSET = {
    "test_coordinate_descent.py": (
        "test_lasso_toy", "test_enet_toy",
        "test_multi_task_lasso_vs_skglm", "test_enet_multitarget",
        "test_1d_multioutput_lasso_and_multitask_lasso_cv", "test_lasso_cv",
        "test_enet_path", "test_lasso_cv_positive_constraint",
    ),
    "test_sparse_coordinate_descent.py": (
        "test_enet_toy_list_input", "test_sparse_lasso_not_as_toy_dataset",
    ),
}
#: how many test cases (parametrizations included) the subset holds
EXPECTED = {"test_coordinate_descent.py": 8, "test_sparse_coordinate_descent.py": 6}


def test_sklearn_subset_passes_through_adapters():
    results = []
    for file, names in SUBSET.items():
        results += suite.run((file,), names=names, timeout=60)
    counts = {f: sum(r["file"] == f for r in results) for f in SUBSET}
    assert counts == EXPECTED
    bad = [f"{r['id']}: {r['outcome']}: {r['message']}" for r in results
           if r["outcome"] != "passed"]
    assert not bad, "\n".join(bad)


def test_adapter_matches_sklearn_elastic_net_with_weights():
    """The adapter's mapping is exact: regmtl's fit equals scikit-learn's own ElasticNet
    (weighted rows, intercept) to 1e-7 on the coefficients at tight tolerances."""
    from sklearn.linear_model import ElasticNet as SkElasticNet

    adapters = _load("_sklearn_adapters")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8))
    y = X @ np.array([2.0, -1.0, 0, 0, 0.5, 0, 0, 0]) + 0.3 * rng.standard_normal(40) + 3.0
    sw = rng.uniform(0.5, 2.0, 40)
    ours = adapters.ElasticNet(alpha=0.05, l1_ratio=0.7, tol=1e-12).fit(X, y, sample_weight=sw)
    ref = SkElasticNet(alpha=0.05, l1_ratio=0.7, tol=1e-14, max_iter=100_000).fit(
        X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-7)
    assert abs(ours.intercept_ - ref.intercept_) < 1e-7
    assert ours.dual_gap_ < 1e-10


def test_alpha_grid_refuses_text_and_sorts_numbers():
    """scikit-learn's ``LassoCV(alphas=(1, 1.0, "1"))`` is refused; regmtl read "1" as 1.0
    (now a ValueError naming ``alphas``); numbers are still sorted decreasing."""
    import regmtl as rm
    from regmtl.selection.path import check_alphas

    X = np.random.default_rng(0).standard_normal((12, 3))
    y = X @ np.array([1.0, 0.0, -1.0])
    with pytest.raises(ValueError, match=r"alphas=.*holds text"):
        rm.MultiTaskRegressorCV("l1", alphas=(1, 1.0, "1"), cv=3).fit(X, y)
    with pytest.raises(ValueError, match=r"alphas=.*holds booleans"):
        check_alphas([True, False])
    assert check_alphas([0.1, 2, 0.5]).tolist() == [2.0, 0.5, 0.1]
    assert check_alphas(7) is None


def test_dual_gap_is_a_bound_at_least_as_tight_as_scikit_learns():
    """scikit-learn's ``test_lasso_dual_gap`` problem: regmtl's ``dual_gap_`` lies between the
    true suboptimality (against scikit-learn at tol 1e-14) and scikit-learn's gap at the
    scaled residual, computed at regmtl's own coefficients."""
    from sklearn.linear_model import Lasso as SkLasso

    adapters = _load("_sklearn_adapters")
    rng = np.random.RandomState(0)  # scikit-learn's build_dataset(n_samples=10, n_features=30)
    w = rng.randn(30)
    w[10:] = 0.0
    X = rng.randn(10, 30)
    y = X @ w
    n = len(y)
    alpha = 0.01 * np.max(np.abs(X.T @ y)) / n
    ours = adapters.Lasso(alpha=alpha, fit_intercept=False).fit(X, y)
    R = y - X @ ours.coef_
    primal = 0.5 * np.mean(R**2) + alpha * np.sum(np.abs(ours.coef_))
    R = R / max(1.0, np.max(np.abs(X.T @ R) / (n * alpha)))
    scaled_gap = primal - 0.5 * (np.mean(y**2) - np.mean((y - R) ** 2))
    ref = SkLasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(X, y)
    best = 0.5 * np.mean((y - X @ ref.coef_) ** 2) + alpha * np.sum(np.abs(ref.coef_))
    assert primal - best - 1e-12 <= ours.dual_gap_ <= scaled_gap * (1 + 1e-9) + 1e-15
