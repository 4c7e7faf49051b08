"""scikit-learn's own tests of its coordinate-descent estimators, run against regmtl.

The tests of the installed scikit-learn (``sklearn/linear_model/tests/``) run in a subprocess
with the plugin ``_sklearn_plugin``, which rebinds ``Lasso``, ``ElasticNet``,
``MultiTaskLasso``, ``MultiTaskElasticNet`` and their ``...CV`` in ``sklearn.linear_model`` to
the adapters of ``_sklearn_adapters`` (fitted by regmtl) before the test modules are collected.
Prints, per test file, the counts of passed / failed / skipped / errors, in scope and out of
scope, then one line per failure: the test id, its class and cause.

Classes of a failure: ``adapter`` (the adapter lacks something), ``regmtl`` (a defect or a
missing behaviour of regmtl), ``sklearn-specific`` (behaviour of scikit-learn's solver or API
that an adapter is not meant to reproduce), ``unclassified`` (new: read it).
Out of scope, reported apart whatever their outcome: tests of scikit-learn's private functions
and of its path functions (they run scikit-learn's code, not the adapters).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/sklearn_suite.py [--timeout 120] [-k EXPR]
        [--files test_coordinate_descent.py test_sparse_coordinate_descent.py] [--json out]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("test_coordinate_descent.py", "test_sparse_coordinate_descent.py")

#: test function -> why it is out of scope for an adapter (run, counted apart)
OUT_OF_SCOPE = {
    "test_set_order_dense": "private sklearn.linear_model._coordinate_descent._set_order",
    "test_set_order_sparse": "private _set_order",
    "test_cython_solver_equivalence": "private Cython solver sklearn.linear_model._cd_fast",
    "test_lasso_path_return_models_vs_new_return_gives_same_coefficients":
        "sklearn's lasso_path / lars_path functions (not adapted)",
    "test_sparse_dense_descent_paths": "sklearn's enet_path / lasso_path (not adapted)",
    "test_enet_path_positive": "sklearn's enet_path / lasso_path (not adapted)",
    "test_path_unknown_parameter": "sklearn's enet_path / lasso_path (not adapted)",
    "test_enet_path_check_input_false": "sklearn's enet_path (not adapted)",
    "test_path_function_deprecated_n_alphas": "deprecation of sklearn's path functions",
    "test_lassoCV_does_not_set_precompute":
        "monkeypatches the private sklearn.linear_model._coordinate_descent.Lasso",
}

_TEXT = "sklearn-specific"
_TOL = "sklearn-specific (tolerance)"
_WARN_TEXT = ("a ConvergenceWarning is emitted, with regmtl's text; the test matches "
              "scikit-learn's 'Objective did not converge. You might want to increase...'")

#: test function (or full id) -> (class, cause) of a known failure
KNOWN: dict[str, tuple[str, str]] = {
    "test_warm_start_convergence_with_regularizer_decrement": (
        "regmtl", "diabetes, ElasticNet alpha=1e-5 warm-started from the alpha=1e-4 fit: "
        "25 epochs, as many as the cold fit (starting relative gap 5.6e-2 against 660); "
        "tol is not tightened here (run_tol = tol): the warm start saves no epochs on "
        "these collinear columns (performance, not correctness)"),
    "test_enet_nonfinite_params": (
        _TEXT, "regmtl refuses X whose squares overflow before fitting (a ValueError naming X "
        "and the fix); the test matches scikit-learn's 'Coordinate descent iterations "
        "resulted in non-finite parameter values'"),
    "test_lassocv_alphas_validation": (
        _TEXT, "scikit-learn's per-entry messages ('alphas[1] == -1, must be >= 0.0'); regmtl "
        "refuses negative alphas with its own ValueError and reads the string '1' as 1.0"),
    "test_lasso_alpha_warning": (
        _TEXT, "scikit-learn warns at alpha=0 that its solver converges badly; regmtl solves "
        "alpha=0, certified by the KKT residual, without that warning"),
    "test_uniform_targets": (
        _TEXT, "constant y: scikit-learn sets alphas_ = [float resolution] * n; regmtl "
        "(alpha_max = 0) uses its data-scale grid. Predictions are equal (the test's first "
        "assertion passes)"),
    "test_multi_task_lasso_and_enet": (_TEXT, _WARN_TEXT),
    "test_enet_coordinate_descent_raises_convergence": (_TEXT, _WARN_TEXT),
    "test_sparse_enet_coordinate_descent": (_TEXT, _WARN_TEXT),
    "test_elasticnet_precompute_incorrect_gram": (
        _TEXT, "precompute=<Gram matrix> is an option of scikit-learn's solver (ignored)"),
    "test_overridden_gram_matrix": (
        _TEXT, "precompute=<Gram matrix> is an option of scikit-learn's solver (ignored)"),
    "test_check_input_false": (
        _TEXT, "check_input=False (no validation, wrong results on C-ordered X) is "
        "scikit-learn's solver contract; regmtl always validates"),
    "test_enet_copy_X_False_check_input_False": (
        _TEXT, "copy_X=False lets scikit-learn overwrite X; regmtl never writes into X"),
    "test_enet_l1_ratio": (
        _TEXT, "scikit-learn refuses an automatic alpha grid at l1_ratio=0; regmtl gives the "
        "ridge penalty a data-scale grid"),
    "test_cv_estimators_reject_params_with_no_routing_enabled": (
        _TEXT, "scikit-learn's metadata-routing rule (fit(**params) refused unless "
        "enable_metadata_routing=True)"),
    "test_enet_ridge_consistency": (
        _TOL, "ridge_alpha=1e-6 (enet alpha 7e-10) on an effective-rank-10 design: regmtl "
        "meets tol=1e-16 (gap 1.9e-15 <= tol * P0, 70 epochs), a gap that still allows "
        "coefficient errors far above 1e-8 at that curvature; coefficients of size 1e-5 "
        "differ by up to 7e-8 from Ridge(svd) (rtol 5e-7 asked)"),
    "test_sparse_dense_equality": (
        _TOL, "fit_intercept=False, 6 x 24, weighted: sparse and dense fits, each certified at "
        "tol=1e-6, differ by 1.5e-7 relative in one coefficient; the test asks 1e-7 (scikit-"
        "learn's sparse and dense solvers take the same iterates)"),
    "test_1d_multioutput_enet_and_multitask_enet_cv": (
        _TOL, "ElasticNet and L21 with one task are the same objective, solved along different "
        "paths; at the default tol=1e-4 the coefficients differ by 5e-4 (7 decimals asked)"),
    "test_enet_sample_weight_consistency": (
        _TOL, "MultiTaskElasticNet, zero weights on 5 rows with y * 1000 vs the rows removed: "
        "both fits certified at tol=1e-6 (gap 4.6e-9), coefficients 1e-3 apart relative "
        "(rtol 1e-6 asked); at tol=1e-10 they agree to 3e-5"),
}


def tests_dir() -> Path | None:
    """The installed scikit-learn's ``linear_model/tests`` folder, if it ships its tests."""
    try:
        import sklearn
    except ImportError:
        return None
    d = Path(sklearn.__file__).parent / "linear_model" / "tests"
    return d if (d / FILES[0]).is_file() else None


def run(files=FILES, select: str | None = None, timeout: int = 120,
        extra: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> list[dict]:
    """Run the tests in a subprocess; one dict per test: file, id, name, outcome, message.

    ``select`` is pytest's ``-k`` expression; ``names`` restricts each file to these test
    functions (all their parametrizations)."""
    tdir = tests_dir()
    if tdir is None:
        raise FileNotFoundError("the installed scikit-learn ships no linear_model tests")
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        xml = Path(tmp) / "out.xml"
        env = dict(os.environ, SKLEARN_SUITE_TIMEOUT=str(timeout),
                   PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
        results = []
        for f in files:  # one run per file: the report names each test's file
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "_sklearn_plugin", "-c", str(ini), "--rootdir", tmp,
                   f"--junitxml={xml}", "--tb=short", *extra,
                   *([f"{tdir / f}::{n}" for n in names] or [str(tdir / f)])]
            if select:
                cmd += ["-k", select]
            if xml.exists():
                xml.unlink()
            subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            if not xml.is_file():
                raise RuntimeError("pytest wrote no report: " + " ".join(cmd))
            results += parse(xml, f)
        return results


def parse(xml: Path, file: str) -> list[dict]:
    """One dict per test case of a JUnit report of ``file``."""
    out = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (node.get("message") or "").strip().splitlines()[:1]
                message = message[0][:160] if message else ""
                break
        out.append({"file": file, "id": name, "name": name.split("[", 1)[0],
                    "outcome": outcome, "message": message})
    return out


def classify(r: dict) -> tuple[str, str]:
    """(class, cause) of a failed or erroring test."""
    for key in (f"{r['name']}{r['id'][len(r['name']):]}", r["name"]):
        if key in KNOWN:
            return KNOWN[key]
    return "unclassified", r["message"]


def report(results: list[dict]) -> dict:
    """Print the counts per file and the failures; return the counts."""
    summary = {}
    for f in sorted({r["file"] for r in results}):
        rows = [r for r in results if r["file"] == f]
        inn = Counter(r["outcome"] for r in rows if r["name"] not in OUT_OF_SCOPE)
        out = Counter(r["outcome"] for r in rows if r["name"] in OUT_OF_SCOPE)
        n_in, n_out = sum(inn.values()), sum(out.values())
        summary[f] = {"in_scope": dict(inn), "out_of_scope": dict(out),
                      "total": len(rows)}
        print(f"{f}: {len(rows)} tests; in scope {inn['passed']} of {n_in} pass "
              f"({inn['failed']} fail, {inn['error']} error, {inn['skipped']} skip); "
              f"out of scope {n_out} ({out['passed']} pass); "
              f"all: {inn['passed'] + out['passed']} of {len(rows)} pass")
    bad = [r for r in results if r["outcome"] in ("failed", "error")
           and r["name"] not in OUT_OF_SCOPE]
    if bad:
        print("\nfailures in scope (test id: class: cause)")
        for r in bad:
            cls, cause = classify(r)
            print(f"  {r['file']}::{r['id']}: {cls}: {cause}")
        counts = Counter(classify(r)[0] for r in bad)
        print("by class: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("\nout of scope (run, not counted in scope)")
    for name, why in OUT_OF_SCOPE.items():
        rows = [r for r in results if r["name"] == name]
        if rows:
            c = Counter(r["outcome"] for r in rows)
            print(f"  {name} ({len(rows)}: {dict(c)}): {why}")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", nargs="+", default=list(FILES))
    ap.add_argument("-k", dest="select", default=None)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per test")
    ap.add_argument("--json", default=None, help="write every test's outcome here")
    args = ap.parse_args(argv)
    results = run(args.files, args.select, args.timeout)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
