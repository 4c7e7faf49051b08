"""Shared plumbing of the benchmark scripts (not part of regmtl).

Command line, header, warm-up timing, the calibrate-then-repeat timing of one solver
(:func:`run_solver`, one :class:`Row` each; a peer may run in a child process killed past a
time limit, bench/_isolate.py) and the result table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from _isolate import OverBudget, call_with_limit
from sklearn.exceptions import ConvergenceWarning


# ----------------------------------------------------------------------------- command line
def parser(doc: str, quick_help: str, eps_help: str, divisors_help: str):
    """An ArgumentParser with the options every script has first."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eps", type=float, default=1e-6, help=eps_help)
    ap.add_argument("--divisors", type=float, nargs="+", default=[10.0, 100.0],
                    help=divisors_help)
    return ap


def parse(ap, argv, budget: float, quick_budget: float):
    """Add the options every script has last, parse, default --budget and apply --blas-threads."""
    ap.add_argument("--budget", type=float, default=None,
                    help="skip further repeats of a solver once its timed runs exceed this many "
                         f"seconds (default {budget:g}; --quick {quick_budget:g})")
    ap.add_argument("--no-restart", action="store_true", help="FISTA without adaptive restart")
    ap.add_argument("--blas-threads", default="auto",
                    help="BLAS threads (threadpoolctl) for the whole run: a number, 0 for the "
                         "library's default, or 'auto' (default): 1 when the machine has at most "
                         "2 usable cores or is busy at the start (1-min load >= cores - 0.5), "
                         "where multi-threaded BLAS products stall many-fold as soon as another "
                         "process takes a core; else the library's default")
    args = ap.parse_args(argv)
    if args.budget is None:
        args.budget = quick_budget if args.quick else budget
    global _BLAS_NOTE
    if args.blas_threads == "auto":
        cores = _usable_cores()
        small, busy = cores <= 2, os.getloadavg()[0] >= cores - 0.5
        threads = 1 if small or busy else 0
        _BLAS_NOTE = (f"--blas-threads auto: 1 ({'<= 2 usable cores' if small else 'busy'})"
                      if threads else "--blas-threads auto: library default")
    else:
        threads = int(args.blas_threads)
        _BLAS_NOTE = f"--blas-threads {threads}" + (" (library default)" if not threads else "")
    if threads > 0:
        from threadpoolctl import threadpool_limits
        args._limits = threadpool_limits(threads, user_api="blas")
    return args


_BLAS_NOTE = ""


# ----------------------------------------------------------------------------- run
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _source(module) -> str:
    """Where ``module`` is imported from and, in a git checkout, its commit and whether the
    files under that folder have uncommitted changes (times are of THAT code)."""
    import subprocess

    where = os.path.dirname(os.path.abspath(module.__file__))
    try:
        def git(*a):
            return subprocess.run(["git", "-C", where, *a], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        dirty = git("status", "--porcelain", "--", ".")
        return (f"{where} at git {git('rev-parse', '--short', 'HEAD')}"
                + (" + uncommitted changes there" if dirty else " (clean)"))
    except Exception:  # not a checkout, or no git
        return where


def print_header(title: str, script: str, quick: bool, width: int, repeats_line: str,
                 extra_libs=()) -> None:
    """Machine, library versions, BLAS, load average, then ``repeats_line``."""
    import numba
    import scipy
    import sklearn

    import regmtl

    print("=" * width)
    print(f"{title}  (bench/{script}{' --quick' if quick else ''})")
    print(f"machine: os.cpu_count() = {os.cpu_count()} (usable by this process: "
          f"{_usable_cores()}), {platform.machine()}, python {platform.python_version()}")
    libs = [("regmtl", regmtl.__version__), ("numpy", np.__version__),
            ("scipy", scipy.__version__), ("scikit-learn", sklearn.__version__),
            ("numba", numba.__version__), *extra_libs]
    print("versions: " + ", ".join(f"{k} {v}" for k, v in libs))
    print(f"regmtl source: {_source(regmtl)}")
    threads = 1
    try:
        from threadpoolctl import threadpool_info
        info = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        threads = max([d.get("num_threads") or 1 for d in info], default=1)
        print("BLAS: " + (", ".join(f"{d.get('internal_api')} ({d.get('num_threads')} threads)"
                                    for d in info) or "unknown") + f"  [{_BLAS_NOTE}]")
    except Exception:  # pragma: no cover - informational only
        pass
    print(f"load average at the start (1/5/15 min): {_load()}  (other work on the machine "
          "inflates times)")
    if threads > 1 and os.getloadavg()[0] > _usable_cores() - 0.5:
        print(f"WARNING: the machine is busy (1-min load >= {_usable_cores() - 0.5:g}) and BLAS "
              f"runs {threads} threads: multi-threaded BLAS products slow down many-fold when a "
              "core is taken by other work; --blas-threads 1 gives steadier times")
    print("the BLAS thread count applies to every solver alike (forked children inherit it)")
    print(repeats_line)
    print("=" * width)


def run(header, warm_up, warmed: str, scenarios) -> None:
    """Header, timed warm-up (``warm_up()`` with warnings silenced), the scenarios, wall time."""
    t_all = time.perf_counter()
    header()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm_up()
    print(f"numba warm-up: one tiny fit of each {warmed} before timing, so JIT compilation / "
          f"cache loading is excluded from every time: {time.perf_counter() - t0:.2f}s")
    for scenario in scenarios:
        t0 = time.perf_counter()
        scenario()
        print(f"[{time.perf_counter() - t0:.1f}s; load average now (1/5/15 min): {_load()}]")
    print()
    print(f"total wall time: {time.perf_counter() - t_all:.1f}s; load average at the end "
          f"(1/5/15 min): {_load()}")


# ----------------------------------------------------------------------------- one solver
def _timed(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t0 = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t0
    conv_warn = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return out, elapsed, conv_warn


class Row:
    def __init__(self, name):
        self.name = name
        self.times: list[float] = []
        self.certs: list[float] = []
        self.primal = None
        self.n_iter = None
        self.tol = None
        self.own = ""
        self.note = ""
        self.reached = True
        self.structure = ""
        self.over = None  # the time limit a run was killed at (its time is a lower bound)


def _attempt(fit, tol, limit):
    """One timed ``fit(tol)``: in this process, or with a ``limit`` in a child killed past it."""
    if limit is None:
        return _timed(lambda: fit(tol))
    return call_with_limit(lambda: _timed(lambda: fit(tol)), limit)


def _over_budget(row, limit, tol):
    row.over, row.tol, row.reached = limit, tol, False
    row.times, row.certs, row.n_iter, row.structure = [limit], [np.nan], "-", "-"
    row.note += (f"tol={tol:.1e} run stopped at the {limit:g}s time limit: its time and ratio "
                 "are LOWER BOUNDS; ")
    return row


def run_solver(name, fit, cert, describe, target, tol0, repeats, budget, tighten=True,
               max_tighten=3, tol_fmt=".0e", stopped_at="", warned_note=None, limit=None):
    """``fit(tol) -> (V, b, n_iter, own-criterion string)``, re-certified by
    ``cert(V, b) -> dict(rel, [primal])``; ``describe(V)`` fills the structure column.

    Calibrate at tol0, tightening 10x (at most ``max_tighten`` times) while the common
    certificate exceeds target (with ``warned_note``, a run that warned ends the calibration
    with that note); then time ``repeats`` runs at that tol (the calibration run that reached it
    counts as the first), skipping further repeats once the timed runs exceed ``budget`` s.

    With ``limit`` (s), every run is made in a child process killed past it; a fit may also
    raise :class:`OverBudget` itself (a solver with its own time cap). Either ends the row with
    ``row.over`` set: its time is then the limit, a lower bound, and never repeated."""
    row = Row(name)
    tol = tol0
    tries = 0
    while True:
        try:
            (V, b, n_iter, own), elapsed, warned = _attempt(fit, tol, limit)
        except OverBudget as exc:
            return _over_budget(row, exc.limit, tol)
        c = cert(V, b)
        if c["rel"] <= target or not tighten or tries >= max_tighten:
            break
        if warned and warned_note is not None:
            row.note += warned_note
            break
        row.note += f"tol={tol:{tol_fmt}} stopped at {stopped_at}{c['rel']:.2e} ({elapsed:.2f}s); "
        tol /= 10.0
        tries += 1
    row.tol, row.n_iter, row.own = tol, n_iter, own
    row.times.append(elapsed)
    row.certs.append(c["rel"])
    row.primal = c.get("primal")
    if warned:
        row.note += "ConvergenceWarning; "
    for _ in range(repeats - 1):
        if sum(row.times) > budget:
            row.note += (f"{len(row.times)} of {repeats} runs: repeats skipped past the "
                         f"{budget:g}s budget per solver; ")
            break
        try:
            (V, b, n_iter, own), elapsed, warned = _attempt(fit, tol, limit)
        except OverBudget as exc:
            row.note += f"a repeat was killed after {exc.limit:g}s (not counted); "
            break
        row.times.append(elapsed)
        row.certs.append(cert(V, b)["rel"])
        if warned:
            row.note += "ConvergenceWarning; "
    row.reached = max(row.certs) <= target
    row.structure = describe(V)
    return row


# ----------------------------------------------------------------------------- table
def print_table(title, rows, target, repeats, *, what, name_width, tol, n_iter_width,
                before_ratio=(), after_ratio=(), tail=("solver's own stopping value",
                                                       lambda r: r.own)):
    """One row per solver; the first is the reference of the ratio column. A column is
    ``(header, width, cell(row, median time) -> str)``; ``tol`` is the tol column, ``tail`` the
    free text at the end of each line, ``(header, text(row))``. A row killed at its time limit
    prints its time and ratio as lower bounds (">")."""
    ref = rows[0]

    def low(r):
        return ">" if r.over else ""

    columns = [
        tol,
        ("time (s)", 9, lambda r, t: f"{low(r)}{t:.3f}"),
        ("runs", 4, lambda r, t: str(len(r.times))),
        (what + " (max)", 13, lambda r, t: "killed" if r.over else f"{max(r.certs):.2e}"),
        ("<=eps", 5, lambda r, t: "?" if r.over else ("yes" if r.reached else "NO")),
        ("n_iter", n_iter_width, lambda r, t: str(r.n_iter)),
        *before_ratio,
        ("ratio", 6, lambda r, t: "1.00" if r is ref else fmt_ratio(*ratio(r, ref))),
        *after_ratio,
    ]
    print()
    print(title)
    head = (f"  {'solver':<{name_width}}" + "".join(f" {h:>{w}}" for h, w, _ in columns)
            + f"  {tail[0]}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in rows:
        t = float(np.median(r.times))
        print(f"  {r.name:<{name_width}}" + "".join(f" {cell(r, t):>{w}}" for _, w, cell in columns)
              + f"  {tail[1](r)}")
        if r.note:
            print(f"  {'':<{name_width}} note: {r.note.strip()}")
    print(f"  target {what} <= {target:g}; time = median over 'runs' (asked: {repeats}); "
          "ratio = time / regmtl time (>1: regmtl faster); '>' = killed at the time limit "
          "(a ratio: or stopped short of eps)")


def fmt_ratio(value: float, lower: bool) -> str:
    return f"{'>' if lower else ''}{value:.2f}"


def ratio(row, ref) -> tuple[float, bool]:
    """(median time of ``row`` / that of ``ref``, whether it is only a lower bound: the peer was
    killed, or stopped at its time cap short of the target)."""
    return (float(np.median(row.times)) / float(np.median(ref.times)),
            row.over is not None or not row.reached)
