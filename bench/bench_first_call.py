"""Benchmark: the first call in a fresh process -- ``import regmtl`` and a first small fit --
against scikit-learn's ``MultiTaskLasso`` in the same run.

Every measurement is a fresh interpreter (``python -c``), one BLAS thread, interleaved with
scikit-learn's (one round = one process of each case, in turn); the tables show medians over
``--repeats`` rounds. Each process reports the seconds of its import and of its first fit
(``time.perf_counter`` inside, and the CPU seconds, ``time.process_time``, which a loaded
machine inflates less); the parent times the whole process (start, import, data, fit, exit).
The problem is the issue's: n = 200 rows, p = 30 features, T = 5 tasks (task ids per row;
scikit-learn: the same X with a 200 x 5 target), alpha = 0.1.

Cases (regmtl): ``l21`` the L2,1 squared-loss fit; ``l21 float32`` / ``l21 fortran`` /
``l21 readonly`` the same on a float32, Fortran-ordered or read-only X; ``l21 cold cache`` the
same with numba's cache in a new empty folder (``NUMBA_CACHE_DIR``: the first fit after
install); ``l1``, ``l2``, ``elasticnet``, the classifier's ``logistic l21`` / ``logistic l1``,
and ``l21 shared`` (a 200 x 5 target). ``--compiled`` adds ``l21 compiled`` (the numba kernels
from the first call, warm cache) and ``l21 compiled cold`` (empty cache: what a first fit
compiles). ``--baseline-src DIR`` also runs the main cases on another source tree (e.g. the
main branch's ``src``), labelled ``before``.

Every process runs its modules as an installed package does, from bytecode compiled once (pip
compiles a package's modules when it installs them): an untimed first round of every case
writes it under a private ``PYTHONPYCACHEPREFIX`` folder, so that no source tree is written
to. ``--no-bytecode`` writes none (``PYTHONDONTWRITEBYTECODE``): a source checkout without
``__pycache__`` then compiles its modules in every process.

Run ``python bench/bench_first_call.py [--repeats 5] [--record PATH]``; ``--record`` writes the
medians and ratios as one JSON dict of named numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import {module}
t1, c1 = time.perf_counter(), time.process_time()
import numpy as np
{setup}
rng = np.random.default_rng(0)
n, p, T = 200, 30, 5
X = rng.standard_normal((n, p)).astype({dtype})
task = rng.integers(0, T, n)
y = X[:, :3].astype(np.float64) @ np.ones(3) + rng.standard_normal(n)
{layout}
t2, c2 = time.perf_counter(), time.process_time()
{fit}
t3, c3 = time.perf_counter(), time.process_time()
import json
print(json.dumps({{"import": t1 - t0, "fit": t3 - t2, "import_cpu": c1 - c0, "fit_cpu": c3 - c2,
                  "numba": "numba" in sys.modules}}))
"""

SKLEARN = dict(module="sklearn.linear_model", setup="", dtype="np.float64", layout="",
               fit="Y = np.column_stack([y + k for k in range(T)]); "
                   "sklearn.linear_model.MultiTaskLasso(alpha=0.1).fit(X, Y)")


def _regmtl(fit: str, dtype: str = "np.float64", layout: str = "", setup: str = "") -> dict:
    return dict(module="regmtl", setup=setup, dtype=dtype, layout=layout, fit=fit)


REG = "regmtl.MultiTaskRegressor({pen!r}, alpha=0.1).fit(X, y, task=task)"
CLF = "regmtl.MultiTaskClassifier({pen!r}, alpha=0.01).fit(X, (y > 0).astype(int), task=task)"
COMPILED = "import regmtl._jit as jit; jit.rent_seconds = 0.0"

CASES = {
    "l21": _regmtl(REG.format(pen="l21")),
    "l21 float32": _regmtl(REG.format(pen="l21"), dtype="np.float32"),
    "l21 fortran": _regmtl(REG.format(pen="l21"), layout="X = np.asfortranarray(X)"),
    "l21 readonly": _regmtl(REG.format(pen="l21"),
                            layout="X.flags.writeable = False; y.flags.writeable = False"),
    "l21 cold cache": _regmtl(REG.format(pen="l21")),
    "l1": _regmtl(REG.format(pen="l1")),
    "l2": _regmtl(REG.format(pen="l2")),
    "elasticnet": _regmtl(REG.format(pen="elasticnet")),
    "logistic l21": _regmtl(CLF.format(pen="l21")),
    "logistic l1": _regmtl(CLF.format(pen="l1")),
    "l21 shared": _regmtl("regmtl.MultiTaskRegressor('l21', alpha=0.1)"
                          ".fit(X, np.column_stack([y + k for k in range(T)]))"),
}
COMPILED_CASES = {
    "l21 compiled": _regmtl(REG.format(pen="l21"), setup=COMPILED),
    "l21 compiled cold": _regmtl(REG.format(pen="l21"), setup=COMPILED),
}
BASELINE_CASES = ("l21", "l21 fortran", "l21 cold cache", "logistic l21")
COLD = ("l21 cold cache", "l21 compiled cold")


def run_case(spec: dict, src: Path | None, cold: bool, timeout: float,
             bytecode: str | None = None) -> dict:
    """One fresh process: its own import and fit seconds, and the whole process's.
    ``bytecode``: the folder of the compiled modules (None: none written, none read)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPYCACHEPREFIX", None)
    if bytecode is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD.format(**spec)], env=env,
                             capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process"] = wall
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", nargs="*", default=None, help="regmtl cases (default: all)")
    ap.add_argument("--compiled", action="store_true", help="add the compiled-path cases")
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="another regmtl source tree, measured as 'before' in the same run")
    ap.add_argument("--baseline-cases", nargs="*", default=list(BASELINE_CASES),
                    help="the cases run on --baseline-src")
    ap.add_argument("--max-time", type=float, default=900.0, help="stop after this many s")
    ap.add_argument("--record", type=Path, default=None, help="write the figures as JSON")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="compile every module in every process (an uncompiled checkout)")
    args = ap.parse_args(argv)
    cases = {k: CASES[k] for k in (args.cases or CASES)}
    if args.compiled:
        cases.update(COMPILED_CASES)
    runs: list[tuple[str, dict, Path | None]] = [("sklearn", SKLEARN, None)]
    runs += [(name, spec, SRC) for name, spec in cases.items()]
    if args.baseline_src is not None:
        runs += [(f"before {name}", CASES[name], args.baseline_src) for name in args.baseline_cases]
    samples: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    deadline = time.perf_counter() + args.max_time
    with tempfile.TemporaryDirectory() as compiled:
        bytecode = None if args.no_bytecode else compiled
        if bytecode is not None:  # an untimed round compiles what each case imports, once
            for name, spec, src in runs:
                run_case(spec, src, name.removeprefix("before ") in COLD, timeout=600,
                         bytecode=bytecode)
        for rnd in range(args.repeats):
            for name, spec, src in runs:
                if time.perf_counter() > deadline:
                    break
                cold = name.removeprefix("before ") in COLD
                samples[name].append(run_case(spec, src, cold, timeout=600, bytecode=bytecode))
            print(f"round {rnd + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    figures = _table(samples)
    if args.record is not None:
        args.record.write_text(json.dumps(figures, indent=1, sort_keys=True))
    return figures


def _table(samples: dict[str, list[dict]]) -> dict:
    """Print medians and ratios to scikit-learn; the same as a flat dict of named numbers."""
    med = {name: {k: median(s[k] for s in runs)
                  for k in ("import", "fit", "process", "import_cpu", "fit_cpu")}
           for name, runs in samples.items() if runs}
    sk = med["sklearn"]
    figures: dict[str, float] = {}
    print(f"{'case':24s} {'import s':>9s} {'fit s':>8s} {'process s':>10s} "
          f"{'import/sk':>10s} {'fit/sk':>7s} {'process/sk':>11s} {'cpu imp/sk':>11s} "
          f"{'cpu fit/sk':>11s} {'numba':>6s}")
    for name, m in med.items():
        loaded = sum(s["numba"] for s in samples[name])
        ratios = {k: m[k] / sk[k] for k in m}
        print(f"{name:24s} {m['import']:9.3f} {m['fit']:8.4f} {m['process']:10.3f} "
              f"{ratios['import']:10.2f} {ratios['fit']:7.2f} {ratios['process']:11.2f} "
              f"{ratios['import_cpu']:11.2f} {ratios['fit_cpu']:11.2f} "
              f"{loaded:>3d}/{len(samples[name])}")
        key = name.replace(" ", "_")
        for k in m:
            figures[f"{key}.{k}_s"] = m[k]
            figures[f"{key}.{k}_over_sklearn"] = ratios[k]
    if "l21 cold cache" in med:
        figures["first_after_install_over_first"] = med["l21 cold cache"]["fit"] / med["l21"]["fit"]
        print(f"first fit after install / later first fit: "
              f"{figures['first_after_install_over_first']:.2f}")
    figures["n_rounds"] = float(min(len(r) for r in samples.values() if r))
    return figures


if __name__ == "__main__":
    main()
