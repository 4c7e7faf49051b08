"""Shared, deterministic problem generators for the solver-correctness tests.

The test modules import them (``from conftest import make_lists``); pytest puts this directory on
``sys.path`` (no ``__init__.py`` here, default import mode).

Every generator takes a fixed seed, so a failing case reproduces exactly. Tasks have different
sizes on purpose (n_t = 15, 40, 70 by default): equal sizes would hide a mistake in the per-task
1/n_t weighting.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

# ------------------------------------------------------------------ one kernel path
# The suite runs every fit on the compiled kernels: a worker's first fits would otherwise run
# the NumPy twins until their rent is spent, and two fits of one test (or a fit and its
# reference in a worker process) could take different paths and differ by rounding.
# tests/solvers/test_first_call.py tests the twins themselves (``use_twins``, fresh processes).
os.environ.setdefault("REGMTL_KERNELS", "numba")

# ------------------------------------------------------------------ where things are
#: The folder of the tests (its subfolders mirror ``src/regmtl``), the checkout above it, and
#: the shipped fixtures (old files, rounding cases) in ``tests/data``.
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "data"

# ------------------------------------------------------------------ the benchmark data
#: Where the tests read the data sets that do not ship: ``REGMTL_DATA``, as the loaders do
#: (:func:`regmtl.datasets.get_data_home`), else ``../shared/data`` beside the checkout.
DATA_HOME = Path(os.environ.get("REGMTL_DATA")
                 or Path(__file__).resolve().parents[2] / "shared" / "data")
#: The reason every test that needs an absent set skips with (one line in ``-rs``).
DATA_ABSENT = "benchmark data absent (set REGMTL_DATA)"


def has_data(*parts: str) -> bool:
    """Whether ``DATA_HOME/<parts>`` exists (a set's folder or file)."""
    return (DATA_HOME.joinpath(*parts)).exists()


def needs_data(*parts: str) -> pytest.MarkDecorator:
    """Mark a test that reads ``DATA_HOME/<parts>`` (the data home itself by default): it
    skips where they are absent, with the one short reason :data:`DATA_ABSENT` from one
    place (so ``-ra`` lists all such skips on one line)."""
    return pytest.mark.benchmark_data(*parts)


def require_data(*parts: str) -> Path:
    """``DATA_HOME``, or skip the running test with :data:`DATA_ABSENT` where
    ``DATA_HOME/<parts>`` is absent."""
    if not has_data(*parts):
        pytest.skip(DATA_ABSENT)
    return DATA_HOME


@pytest.fixture(autouse=True)
def _benchmark_data(request):
    """Skip the tests marked by :func:`needs_data` whose data are absent."""
    mark = request.node.get_closest_marker("benchmark_data")
    if mark is not None:
        require_data(*mark.args)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every skip for absent data at one location, so that ``-ra`` folds them into one line."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and isinstance(rep.longrepr, tuple) and DATA_ABSENT in str(rep.longrepr[2]):
        rep.longrepr = (str(Path(__file__).name), 0, rep.longrepr[2])


def pytest_configure(config):
    config.addinivalue_line("markers", "benchmark_data(*parts): the test reads "
                            "DATA_HOME/<parts> (REGMTL_DATA, else ../shared/data)")


# ------------------------------------------------------------------ the tiers
#: ``REGMTL_TIER=fast`` (``make test-fast``): the first :data:`FAST_PER_MODULE` tests of every
#: test module, in collection order, so that a change that breaks a module's first cases (its
#: imports, its fixtures, its plainest case) shows in under three minutes; ``make test`` runs
#: them all, ``make test-matrix`` adds the full slices of the modules that read
#: ``REGMTL_MATRIX``.
TIER = os.environ.get("REGMTL_TIER", "")
FAST_PER_MODULE = 2


#: ``make test``'s share of the slowest families, measured with ``--durations`` (seconds of
#: one worker, all their cases): a module, or a module's test function, and ``k``: every k-th
#: of its tests runs (its first included; 0: none), in collection order. ``make test-matrix``
#: (``REGMTL_MATRIX=full``) runs every case. The Dask family starts real clusters and crosses
#: them for every round of a solver, the deep one trains nets: ``make test`` keeps a share of
#: each route, whose kept cases still span its penalties, losses and forms.
THIN = {
    # Dask (476 s of 1,668): each cell fits on a cluster of two worker processes
    "test_conformance_placements.py::test_cell_on_dask": 16,      # 136 s, 31 cells
    "test_conformance_placements.py::test_cell_out_of_core": 3,   # 14 s, 30 cells
    "test_dask_fit.py": 3,                                        # 54 s, 18 tests
    "test_dask_losses.py": 3,                                     # 50 s, 6
    "test_dask_quantile.py": 3,                                   # 43 s, 9
    "test_dask_class_forms.py": 0,                                # 43 s, 3 (the matrix's)
    "test_dask_certificates.py": 2,                               # 17 s, 2
    "test_dask_faults.py": 2,                                     # 28 s, 4 (killed workers)
    "test_dask_round_trips.py": 3,                                # 26 s, 15
    "test_dask_gathered.py": 3,                                   # 19 s, 6
    "test_dask_penalties.py": 2,                                  # 16 s, 6
    "test_cli_dask.py": 2,                                        # 13 s, 24
    # deep training (314 s)
    "test_deep_transfer.py": 2,                                   # 31 s, 10
    "test_gallery_deep.py": 2,                                    # 22 s, 3
    "test_gallery_recommender_ids.py": 0,                         # 16 s, 1
    "test_gallery_transfer.py": 2,                                # 15 s, 3
    "test_deep_weighting_registry.py::test_the_registry_does_not_depend_on_import_order": 4,
    "test_deep_resume.py": 2,                                     # 16 s, 54
    "test_deep_distributed.py": 2,                                # 13 s, 18
    "test_deep_resume.py::test_resume_under_ddp_two_processes": 0,  # 10 s (DDP: above)
    "test_deep_dominance_reference.py": 2,                        # 11 s, 5
    "test_serving_deep.py": 2,                                    # 20 s, 58
    "test_deep_weight_sums.py": 2,                                # 9 s, 109
    "test_deep_recommender_ids.py": 2,                            # 8 s, 20
    # the linear half's slowest parametrized checks
    "test_real_data_certificates.py::test_benchmark_paths_are_certified": 8,  # 49 s, 135
    "test_cv.py::test_sklearn_compatible_estimator": 4,           # 45 s, 124 checks
    "test_deep_estimators.py::test_sklearn_compatible": 3,        # 24 s, 149 checks
    "test_multiclass_selection.py::"
    "test_multinomial_degrees_of_freedom_are_the_divergence_of_the_probabilities": 3,  # 27 s
    "test_alpha_max_factors.py": 2,                               # 17 s, 54
    "test_quantile_certificates.py::"
    "test_a_nonconvex_quantile_fit_reports_its_true_objective_and_a_local_minimum": 2,  # 15 s
    "test_fast_solvers.py::test_gap_safe_screening_never_discards_a_feature_of_the_optimum": 2,
    "test_interior_point.py::test_school_quantiles_along_a_grid_certify_with_exact_zeros": 2,
    "test_low_rank_subspace.py": 2,                               # 25 s, 13
    "test_nonconvex_penalties.py": 2,                             # 19 s, 83
    "test_admm.py::test_row_space_form_is_the_gram_form": 2,      # 8 s, 8
    "test_robust_penalties.py::test_path_and_cv_are_certified": 2,  # 9 s, 4
    "test_spectral_barrier.py": 2,                                # 11 s, 39
    "test_compare_significance.py": 2,                            # 14 s, 14
    "test_load_bounds.py": 2,                                     # 13 s, 21
    "test_structured_api.py": 2,                                  # 21 s, 351
    "test_interior_point.py": 2,                                  # 12 s, 39
    "test_admm.py": 2,                                            # 15 s, 26
    "test_shared_kernels.py": 2,                                  # 12 s, 14
    "test_transfer.py": 2,                                        # 14 s, 48
    # fresh processes, files and commands
    "test_first_call.py": 2,                                      # 16-31 s, 18
    "test_cli.py": 2,                                             # 25-35 s, 18
    "test_report.py": 2,                                          # 13 s, 16
    "test_out_of_core.py": 2,                                     # 19 s, 39
    "test_out_of_core_resume.py": 2,                              # 15 s, 8
    "test_tampered_file_values.py": 2,                            # 15 s, 75
}


def _thin(items: list) -> tuple[list, list]:
    """(kept, dropped) of ``items`` under :data:`THIN`."""
    kept, dropped, seen = [], [], {}
    for item in items:
        fn = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        key = fn if fn in THIN else item.path.name if item.path.name in THIN else None
        if key is None:
            kept.append(item)
            continue
        n, k = seen.get(key, 0), THIN[key]
        (kept if k and n % k == 0 else dropped).append(item)
        seen[key] = n + 1
    return kept, dropped


def pytest_collection_modifyitems(config, items):
    """``make test``: the share of :data:`THIN` (all under ``REGMTL_MATRIX=full``); under
    ``REGMTL_TIER=fast``, the first tests of every module."""
    if os.environ.get("REGMTL_MATRIX") == "full":
        return
    kept, dropped = _thin(items)
    if TIER == "fast":
        seen: dict = {}
        fast = []
        for item in kept:
            n = seen.get(item.path, 0)
            (fast if n < FAST_PER_MODULE else dropped).append(item)
            seen[item.path] = n + 1
        kept = fast
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    """One line: where the benchmark data are read, and whether they are there."""
    if DATA_HOME.is_dir():
        return f"benchmark data: {DATA_HOME}"
    return (f"benchmark data: {DATA_HOME} absent: the tests on the benchmark sets skip "
            "(set REGMTL_DATA to the folder of the data sets)")


def pytest_terminal_summary(terminalreporter):
    """Say once, at the end, that the benchmark data were missing; and which of the support
    matrix's known cells (``tests/_known_cells.py``) certified on this machine, so that a
    mend shows although their checks pass either way."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if DATA_ABSENT in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(
            f"benchmark data absent at {DATA_HOME}: {len(skipped)} test(s) skipped "
            "(set REGMTL_DATA to the folder of the data sets)")
    outcomes: dict[str, list[str]] = {}
    for r in terminalreporter.stats.get("passed", []):
        for key, value in getattr(r, "user_properties", ()):
            if key == "known_cell":
                outcomes.setdefault(value, []).append(r.nodeid.split("[")[-1].rstrip("]"))
    if outcomes:
        terminalreporter.write_line(
            "known cells of the support matrix: " + ", ".join(
                f"{len(ids)} {outcome}" for outcome, ids in sorted(outcomes.items()))
            + (f"; certified here: {', '.join(sorted(outcomes['certified']))}"
               if "certified" in outcomes else ""))


def _true_weights(rng, p, T, n_active=6):
    """Row-sparse weights shared in support, different in value across tasks."""
    W = np.zeros((p, T))
    W[:n_active] = rng.standard_normal((n_active, T)) + 1.0
    return W


def _labels(rng, f):
    """Noisy {0, 1} labels from scores ``f``, with both classes present."""
    y = (rng.random(f.shape[0]) < 1.0 / (1.0 + np.exp(-f))).astype(np.int64)
    y[0], y[1] = 0, 1
    return y


def make_lists(n_per_task=(15, 40, 70), p=25, loss="squared", seed=0):
    """Per-task designs ``Xs`` (n_t x p, non-centered) and targets ``ys``.

    Squared loss: real targets with a per-task offset. Logistic loss: {0, 1} labels that are not
    linearly separable (the last row of every task repeats its first row with the other label).
    """
    rng = np.random.default_rng(seed)
    T = len(n_per_task)
    W = _true_weights(rng, p, T)
    Xs, ys = [], []
    for t, n in enumerate(n_per_task):
        X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
        f = X @ W[:, t] + (t - 1.0)
        if loss == "squared":
            y = f + 2.0 + rng.standard_normal(n)
        else:
            X[-1] = X[0]
            y = _labels(rng, 0.5 * f)
            y[-1] = 1 - y[0]
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def make_shared(n=50, p=12, T=3, loss="squared", seed=0):
    """One design ``X`` (n x p) and targets ``Y`` (n x T)."""
    rng = np.random.default_rng(seed)
    W = _true_weights(rng, p, T, n_active=4)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p)
    F = X @ W + np.arange(T)
    if loss == "squared":
        Y = F + 1.5 + rng.standard_normal((n, T))
    else:
        Y = np.column_stack([_labels(rng, 0.5 * F[:, t]) for t in range(T)])
    return X, Y


def make_single(n=60, p=10, loss="squared", seed=0):
    """One task: ``X`` (n x p) and a 1-D ``y``."""
    X, Y = make_shared(n=n, p=p, T=1, loss=loss, seed=seed)
    return X, Y[:, 0]


def to_long(Xs, ys, sample_weight=None):
    """The long form of per-task lists, rows interleaved across tasks (not grouped)."""
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    X = np.vstack(Xs)
    y = np.concatenate(ys)
    sw = None if sample_weight is None else np.concatenate(sample_weight)
    perm = np.random.default_rng(123).permutation(len(y))
    return X[perm], y[perm], task[perm], (None if sw is None else sw[perm])



def subdiff_violation(kind, rho, W, U, alpha):
    """Largest violation of ``U in dOmega(W)``, entry- or row-wise, written from the math.

    dOmega(W) = alpha (1 - rho) W + alpha rho d||.||(W), with d|w| = sign(w) or [-1, 1] and
    d||w||_2 = w / ||w|| or the unit ball. For optimality of a fit, U is minus the gradient of
    the data term; for a prox output V of W with step s, U = (W - V) / s at V.
    """
    R = U - alpha * (1.0 - rho) * W
    lam = alpha * rho
    worst = 0.0
    if kind == "entry":
        for j, t in np.ndindex(W.shape):
            if W[j, t] != 0.0:
                worst = max(worst, abs(R[j, t] - lam * np.sign(W[j, t])))
            else:
                worst = max(worst, abs(R[j, t]) - lam)
    else:
        for j in range(W.shape[0]):
            nw = np.linalg.norm(W[j])
            if nw > 0.0:
                worst = max(worst, np.linalg.norm(R[j] - lam * W[j] / nw))
            else:
                worst = max(worst, np.linalg.norm(R[j]) - lam)
    return worst


def loss_dual_value(loss, ys, thetas, omega, s=1.0):
    """sum_t omega_t mean_i(-l*(-s_t theta_ti)) for per-task dual points (one scaling s, or
    one per task), written from the math:
    squared: theta y - theta^2 / 2; logistic: the binary entropy of a = y theta in [0, 1]."""
    val = 0.0
    for t, y in enumerate(ys):
        th = (s[t] if np.ndim(s) else s) * thetas[t]
        if loss == "squared":
            terms = th * y - 0.5 * th**2
        else:
            a = np.clip(y * th, 0.0, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                terms = -(np.where(a > 0, a * np.log(a), 0.0)
                          + np.where(a < 1, (1 - a) * np.log(1 - a), 0.0))
        val += omega[t] * terms.mean()
    return val


# cvxpy's interior-point solver, asked for about 1e-10 (tests compare with stated tolerances)
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                    "max_iter": 500}

# a symmetric, non-negative task graph (4 tasks) with unequal weights and one self-loop,
# which contributes nothing (A_tt ||w_t - w_t||^2 = 0)
A4 = np.array([[0.3, 1.0, 0.5, 0.0],
               [1.0, 0.0, 2.0, 0.0],
               [0.5, 2.0, 0.0, 0.3],
               [0.0, 0.0, 0.3, 0.0]])


#: the running LocalCluster of :func:`dask_process_client` ("client", "stack"), if any
_DASK_CLUSTER: dict = {}


@pytest.fixture
def dask_process_client():
    """A ``dask.distributed`` client on a LocalCluster of two worker processes (one thread
    each). Each start spawns two workers that import the package and load its kernels
    anew, so one cluster serves every test that asks for it in a row, across modules; it
    closes after the last of them (:func:`pytest_runtest_teardown`), not idling on."""
    if not _DASK_CLUSTER:
        import contextlib
        import logging

        distributed = pytest.importorskip("dask.distributed")
        logging.getLogger("distributed").setLevel(logging.ERROR)
        stack = contextlib.ExitStack()
        cluster = stack.enter_context(distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"))
        _DASK_CLUSTER.update(client=stack.enter_context(distributed.Client(cluster)),
                             stack=stack)
    return _DASK_CLUSTER["client"]


def pytest_runtest_teardown(item, nextitem):
    """Close the shared LocalCluster once the next test (if any) does not use it."""
    if _DASK_CLUSTER and (nextitem is None
                          or "dask_process_client" not in getattr(nextitem, "fixturenames", ())):
        _DASK_CLUSTER.pop("stack").close()
        _DASK_CLUSTER.clear()


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (the deep examples set it too); the rest of the suite
    gets its setting back."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_example(name: str) -> dict:
    """Run the gallery script ``examples/<name>.py`` at the reduced sizes the suite uses
    (``REGMTL_GALLERY_QUICK=1``) and return its global namespace, for the claims to be checked."""
    import os
    import runpy
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    old = os.environ.get("REGMTL_GALLERY_QUICK")
    os.environ["REGMTL_GALLERY_QUICK"] = "1"
    try:
        return runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")
        if old is None:
            del os.environ["REGMTL_GALLERY_QUICK"]
        else:
            os.environ["REGMTL_GALLERY_QUICK"] = old


def peak_bytes(fn) -> int:
    """Peak bytes NumPy and Python allocate while ``fn`` runs (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def refused(fn, *words) -> str:
    """``fn()`` raises ValueError, whose message holds every one of ``words``; the message."""
    with pytest.raises(ValueError) as info:
        fn()
    for w in words:
        assert str(w) in str(info.value), str(info.value)
    return str(info.value)


# ------------------------------------------------------------------ rewriting a model file
def model_digest(a: np.ndarray) -> str:
    """The SHA-256 digest a model file keeps of an array (dtype, shape, bytes)."""
    h = hashlib.sha256()
    h.update(a.dtype.str.encode())
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    return h.hexdigest()


def model_parts(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of a model file."""
    with zipfile.ZipFile(path) as zf:
        arrays = {n[:-4]: np.lib.format.read_array(io.BytesIO(zf.read(n)))
                  for n in zf.namelist()}
    return json.loads(arrays.pop("__header__").tobytes()), arrays


def write_model(path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """A model file with ``header`` and ``arrays``, its digests right (so that only the
    checks of what the values mean can refuse it)."""
    header = copy.deepcopy(header)
    header["sha256"] = {k: model_digest(a) for k, a in arrays.items()}
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, __header__=blob, **arrays)
