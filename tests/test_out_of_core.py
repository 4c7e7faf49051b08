"""The out-of-core fit of the squared loss (a task source read chunk by chunk) against the
in-memory fit on the same rows: coefficients, intercepts and certificates."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.out_of_core import source_alpha_max
from regmtl.penalties import chain_graph, make_penalty
from regmtl.solvers.parts.quadratic import TaskQuadratic
from regmtl.solvers.parts.quadratic_fista import fista_certified
from regmtl.solvers.streamed.fista import streamed_fista
from regmtl.solvers.streamed.quadratic import streamed_quadratic
from regmtl.taskdata import TaskData, task_weights


class MemorySource:
    """A task source over stacked in-memory rows, cut into runs of whole tasks at ``cuts``
    (task indices) or every ``per_chunk`` tasks: the interface of ``ParquetTasks``."""

    def __init__(self, X, y, task_rows, per_chunk=None, cuts=None):
        self.X, self.y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.task_rows = np.asarray(task_rows, dtype=np.int64)
        self.n_tasks, self.n_features = len(self.task_rows), self.X.shape[1]
        self.tasks = np.arange(self.n_tasks)
        self.indptr = np.concatenate(([0], np.cumsum(self.task_rows)))
        if cuts is None:
            cuts = range(0, self.n_tasks, per_chunk or self.n_tasks)
        self.bounds = sorted(set(cuts) | {0, self.n_tasks})
        self.passes = 0

    def chunks(self, *, task_weight="equal", target=None, start=0):
        self.passes += 1
        omega = task_weights(task_weight, self.task_rows.astype(np.float64))
        for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            if hi <= start:  # (the runs before the one that holds task ``start``)
                continue
            a, b = self.indptr[lo], self.indptr[hi]
            ip = self.indptr[lo:hi + 1] - a
            n = np.diff(ip)
            yield lo, hi, TaskData(X=np.asfortranarray(self.X[a:b]), indptr=ip,
                                   task_index=np.arange(hi - lo), tasks=self.tasks[lo:hi],
                                   shared=False, form="long", y=self.y[a:b].copy(),
                                   c=np.repeat(omega[lo:hi] / n, n))


def _problem(T=60, p=6, seed=0, rows=(20, 40)):
    """Tasks of 20..40 rows (more rows than features: well-conditioned Grams), a shared
    support of 3 features, a column far from zero and per-task offsets."""
    rng = np.random.default_rng(seed)
    n = rng.integers(rows[0], rows[1], T)
    task = np.repeat(np.arange(T), n)
    X = rng.standard_normal((n.sum(), p))
    X[:, 1] += 3.0
    W = np.zeros((p, T))
    W[:3] = rng.standard_normal((3, T)) + 1.0
    y = np.einsum("ij,ji->i", X, W[:, task]) + 0.3 * rng.standard_normal(n.sum())
    y += rng.standard_normal(T)[task]
    return X, y, task, n


def _close(a, b):
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b)))


TIGHT = {"tol": 1e-12, "max_iter": 50000}
F64 = {"gram_dtype": "float64"}


@pytest.mark.parametrize("penalty", ["l21", "mean"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_out_of_core_fit_equals_the_in_memory_fit(penalty, dtype):
    X, y, task, n = _problem()
    alpha = 0.1 * rm.alpha_max(X, y, task) if penalty == "l21" else 0.1
    mem = rm.MultiTaskRegressor(penalty, alpha=alpha, **TIGHT).fit(X, y, task)
    tol = 1e-12 if dtype == "float64" else 1e-7
    src = MemorySource(X, y, n, per_chunk=7)
    ooc = rm.MultiTaskRegressor(penalty, alpha=alpha, tol=tol, max_iter=50000,
                                solver_options={"gram_dtype": dtype}).fit(src)
    assert _close(ooc.coef_, mem.coef_) < 1e-6
    assert _close(ooc.intercept_, mem.intercept_) < 1e-6
    kind = "dual_gap_" if penalty == "l21" else "kkt_residual_"
    assert hasattr(ooc, kind) and not hasattr(ooc, {"dual_gap_": "kkt_residual_",
                                                    "kkt_residual_": "dual_gap_"}[kind])
    cert = getattr(ooc, kind)
    # the certificate is the in-memory one's formula on the rows: relative <= tol
    P0 = 0.5 * sum(np.var(y[task == t]) for t in range(len(n)))
    assert (cert / P0 if kind == "dual_gap_" else cert) <= tol
    assert ooc.objective_ == pytest.approx(mem.objective_, rel=1e-9)
    assert ooc.tasks_.tolist() == list(range(len(n))) and ooc.coef_.shape == (len(n), 6)
    # each task's mean squared residual, read in the certifying pass, as in memory
    assert set(vars(ooc)) >= {"residual_variance_"}
    np.testing.assert_allclose(ooc.residual_variance_, mem.residual_variance_,
                               rtol=1e-4 if dtype == "float32" else 1e-8)
    direct = [np.mean((y[task == t] - X[task == t] @ ooc.coef_[t] - ooc.intercept_[t]) ** 2)
              for t in range(len(n))]
    np.testing.assert_allclose(ooc.residual_variance_, direct, rtol=1e-10)


def test_the_certificate_is_measured_on_the_rows():
    """The fit's certificate is that of the in-memory certify at the same coefficients."""
    X, y, task, n = _problem(seed=1)
    alpha = 0.05 * rm.alpha_max(X, y, task)
    ooc = rm.MultiTaskRegressor("l21", alpha=alpha, tol=1e-6).fit(MemorySource(X, y, n, 5))
    W, b = ooc.coef_.T, ooc.intercept_
    resid = y - np.einsum("ij,ji->i", X, W[:, task]) - b[task]
    theta = resid - np.array([resid[task == t].mean() for t in range(len(n))])[task]
    primal = sum(0.5 * np.mean(resid[task == t] ** 2) for t in range(len(n)))
    primal += alpha * np.linalg.norm(W, axis=1).sum()
    G = np.stack([X[task == t].T @ theta[task == t] / n[t] for t in range(len(n))], axis=1)
    s = min(1.0, alpha / np.linalg.norm(G, axis=1).max())
    dual = sum(np.mean(s * theta[task == t] * y[task == t] - 0.5 * (s * theta[task == t]) ** 2)
               for t in range(len(n)))
    assert ooc.dual_gap_ == pytest.approx(primal - dual, rel=1e-6, abs=1e-13)
    assert ooc.objective_ == pytest.approx(primal, rel=1e-12)


def test_sample_task_weights_and_no_intercepts():
    X, y, task, n = _problem(seed=2)
    for kw in ({"task_weight": "samples"}, {"fit_intercept": False},
               {"task_weight": np.linspace(0.5, 2.0, len(n))}):
        mem = rm.MultiTaskRegressor("l21", alpha=0.02, **TIGHT, **kw).fit(X, y, task)
        ooc = rm.MultiTaskRegressor("l21", alpha=0.02, **TIGHT, solver_options=F64,
                                    **kw).fit(MemorySource(X, y, n, 11))
        assert _close(ooc.coef_, mem.coef_) < 1e-6
        assert np.allclose(ooc.intercept_, mem.intercept_, rtol=1e-6, atol=1e-9)
        assert np.allclose(ooc.task_sizes_, mem.task_sizes_)


@pytest.mark.parametrize("cuts", ["one_task", "all", "uneven"])
def test_chunk_boundaries_anywhere(cuts):
    X, y, task, n = _problem(T=25, seed=3)
    T = len(n)
    cut = {"one_task": range(T), "all": [], "uneven": [1, 2, 9, 10, 24]}[cuts]
    mem = rm.MultiTaskRegressor("l21", alpha=0.03, **TIGHT).fit(X, y, task)
    ooc = rm.MultiTaskRegressor("l21", alpha=0.03, **TIGHT, solver_options=F64).fit(
        MemorySource(X, y, n, cuts=cut))
    assert _close(ooc.coef_, mem.coef_) < 1e-8
    assert _close(ooc.intercept_, mem.intercept_) < 1e-8


def test_a_column_constant_within_tasks():
    X, y, task, n = _problem(seed=4)
    X[:, 4] = np.repeat(np.arange(len(n)) * 0.1 + 7.0, n)  # constant within each task
    X[:, 5] = 2.5  # constant everywhere
    mem = rm.MultiTaskRegressor("l21", alpha=0.03, **TIGHT).fit(X, y, task)
    ooc = rm.MultiTaskRegressor("l21", alpha=0.03, **TIGHT, solver_options=F64).fit(
        MemorySource(X, y, n, 13))
    assert np.all(ooc.coef_[:, 4:] == 0.0)
    assert _close(ooc.coef_, mem.coef_) < 1e-8
    assert _close(ooc.intercept_, mem.intercept_) < 1e-8


@pytest.fixture(scope="module")
def quadratics():
    X, y, task, n = _problem(T=40, p=8, seed=5)
    data = rm.as_task_data(X, y, task)
    q = TaskQuadratic.from_data(data, data.c, data.y, True)
    sq = streamed_quadratic(MemorySource(X, y, n, 9).chunks(), len(n), 8, True,
                            dtype=np.float64)
    return q, sq


def test_the_streamed_quadratic_is_the_in_memory_one(quadratics):
    q, sq = quadratics
    T = q.g.shape[1]
    assert np.allclose(sq.g, q.g, rtol=1e-12, atol=1e-14)
    assert np.allclose(sq.e, q.e, rtol=1e-12) and np.allclose(sq.zm, q.zm, rtol=1e-12)
    W = np.random.default_rng(0).standard_normal((8, T))
    assert np.allclose(sq.intercepts(W), q.intercepts(W), rtol=1e-12)
    assert sq.lipschitz() == pytest.approx(q.lipschitz(), rel=1e-12)
    assert np.all(sq.bounds >= np.linalg.eigvalsh(q.H)[:, -1] * (1 - 1e-12))
    assert np.allclose(sq.diagonal(), q.diagonal(), rtol=1e-12, atol=1e-14)
    assert np.allclose(sq.matvec(W), q.matvec(W), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["l1", "l2", "elasticnet", "l21", "trace", "mean", "dirty",
                                  "clustered", "temporal_group_lasso", "fused_group_lasso",
                                  "l1inf", "graph"])
def test_the_lean_fista_equals_fista_certified_on_a_float64_quadratic(quadratics, name):
    q, sq = quadratics
    p, T = q.g.shape
    pen = rm.GraphLaplacian(chain_graph(T)) if name == "graph" else make_penalty(name)
    alpha, G0 = 0.01, float(np.linalg.norm(q.g))
    tol = 1e-11 * 0.5 * q.e.sum() if pen.has_dual else 1e-12
    V1 = fista_certified(q, pen, alpha, np.zeros((p, T)), tol=tol, max_iter=50000,
                         G0_norm=G0)[0]
    V2, it, stalled, value = streamed_fista(sq, pen, alpha, np.zeros((p, T)), tol=tol,
                                            max_iter=50000, G0_norm=G0)
    assert value <= tol and not stalled
    assert _close(V2, V1) < 1e-8


def test_alpha_max_of_a_source_is_kept_for_the_fit():
    X, y, task, n = _problem(seed=6)
    src = MemorySource(X, y, n, 10)
    a = rm.alpha_max(src, penalty="l21")
    assert a == pytest.approx(rm.alpha_max(X, y, task, penalty="l21"), rel=1e-10)
    assert source_alpha_max(src, "l1") == pytest.approx(
        rm.alpha_max(X, y, task, penalty="l1"), rel=1e-10)
    passes = src.passes
    model = rm.MultiTaskRegressor("l21", alpha=a * 1.0001).fit(src)
    assert np.all(model.coef_ == 0.0)
    assert src.passes == passes + 1  # the statistics reused: one pass, the certificate's


def test_warm_start_continues_and_max_iter_warns():
    X, y, task, n = _problem(seed=7)
    src = MemorySource(X, y, n, 8)
    model = rm.MultiTaskRegressor("l21", alpha=0.01, tol=1e-10, max_iter=3)
    with pytest.warns(ConvergenceWarning, match="out-of-core fit reached a relative duality"):
        model.fit(src)
    model.set_params(warm_start=True, max_iter=5000, solver_options=F64)
    model.fit(src)
    assert model.dual_gap_ <= 1e-10 * 0.5 * sum(np.var(y[task == t]) for t in range(len(n)))


def test_unsupported_inputs_are_refused_clearly():
    X, y, task, n = _problem(T=10, seed=8)
    src = MemorySource(X, y, n)
    with pytest.raises(ValueError, match="takes the squared loss"):
        rm.MultiTaskRegressor("l21", loss="huber").fit(src)
    with pytest.raises(ValueError, match="not fitted out of core"):
        rm.MultiTaskRegressor("sparse_lowrank").fit(src)
    with pytest.raises(ValueError, match="not fitted out of core"):
        rm.MultiTaskRegressor("mcp").fit(src)
    with pytest.raises(ValueError, match="takes no other argument"):
        rm.MultiTaskRegressor("l21").fit(src, y)
    with pytest.raises(ValueError, match="one alpha per task"):
        rm.MultiTaskRegressor("l1", alpha=np.full(10, 0.1)).fit(src)
    with pytest.raises(ValueError, match="solver_options"):
        rm.MultiTaskRegressor("l21", solver_options={"gram": True}).fit(src)
    with pytest.raises(ValueError, match="solver='admm'"):
        rm.MultiTaskRegressor("l21", solver="admm").fit(src)

    class Short(MemorySource):  # a source whose chunks stop short of its last tasks
        def chunks(self, **kw):
            yield from list(super().chunks(**kw))[:-1]

    with pytest.raises(ValueError, match="covered 6 of 10 tasks"):
        rm.MultiTaskRegressor("l21").fit(Short(X, y, n, cuts=[3, 6]))
    with pytest.raises(ValueError, match="needs two classes"):  # (y continuous)
        rm.MultiTaskClassifier("l21").fit(src)
    with pytest.raises(ValueError, match="covered 6 of 10 tasks"):
        rm.MultiTaskClassifier("l21").fit(Short(X, np.arange(len(y)) % 2.0, n, cuts=[3, 6]))
    src.target = None
    with pytest.raises(ValueError, match="without a target column"):
        rm.MultiTaskRegressor("l21").fit(src)


def test_spill_files_go_under_spill_dir_and_are_removed(tmp_path):
    X, y, task, n = _problem(T=10, seed=9)
    src = MemorySource(X, y, n)
    rm.MultiTaskRegressor("l21", alpha=0.05,
                          solver_options={"spill_dir": str(tmp_path)}).fit(src)
    made = os.listdir(tmp_path)
    assert len(made) == 1 and sorted(os.listdir(tmp_path / made[0])) == [
        "centers.bin", "grams.bin"]
    del src
    import gc

    gc.collect()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("name", "positive"), [
    ("l1", False), ("l2", False), ("elasticnet", False), ("l21", False), ("mean", False),
    ("trace", False), ("l1", True), ("elasticnet", True), ("l21", True)])
def test_prox_into_is_the_prox_in_place(name, positive):
    pen = make_penalty(name)
    if positive:
        pen.set_params(positive=True)
    V = np.random.default_rng(1).standard_normal((5, 9))
    for alpha in (0.0, 0.3, 3.0):
        U = V.copy()
        out = pen.prox_into(U, 0.7, alpha)
        assert out is U
        assert np.array_equal(U, pen.prox(V, 0.7, alpha))


def _school_parquet(path, task_sizes_out=None):
    """The shipped School data as one long-form Parquet file (float32 features)."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from regmtl.datasets import load_school

    school = load_school()
    X = np.vstack(school.X)[:, :27]  # (column 27, a constant 1, is the intercept's)
    y = np.concatenate(school.y)
    task = np.repeat(np.arange(len(school.X)), [len(v) for v in school.y])
    cols = {f"x{j}": X[:, j].astype(np.float32) for j in range(X.shape[1])}
    cols["y"], cols["task"] = y, task
    pq.write_table(pa.table(cols), path, row_group_size=2000)
    return X.astype(np.float32).astype(np.float64), y, task


@pytest.mark.parametrize("penalty", ["l21", rm.MeanRegularized(ridge=1.0)])
def test_school_from_parquet_equals_the_in_memory_fit(tmp_path, penalty):
    """(School's one-hot columns are collinear with the intercepts: the mean penalty takes a
    ridge so that the optimum is unique.)"""
    pytest.importorskip("pyarrow")
    from regmtl.parquet import ParquetTasks

    X, y, task = _school_parquet(tmp_path / "school.parquet")
    source = ParquetTasks(tmp_path / "school.parquet", chunk_rows=3000)
    assert source.n_tasks == 139 and source.n_features == 27
    alpha = 0.1 * rm.alpha_max(source) if penalty == "l21" else 0.1
    if penalty == "l21":
        assert alpha == pytest.approx(0.1 * rm.alpha_max(X, y, task), rel=1e-9)
    mem = rm.MultiTaskRegressor(penalty, alpha=alpha, **TIGHT).fit(X, y, task)
    ooc = rm.MultiTaskRegressor(penalty, alpha=alpha, **TIGHT, solver_options=F64).fit(source)
    P0 = 0.5 * sum(np.var(y[task == t]) for t in range(139))
    assert abs(ooc.objective_ - mem.objective_) <= 1e-12 * P0
    # (a gap of 1e-12 P0 pins the mean penalty's coefficients, curvature alpha ridge = 0.1 in
    # School's weakest directions, to about 1e-5: both fits are that close)
    close = 1e-6 if penalty == "l21" else 1e-5
    assert _close(ooc.coef_, mem.coef_) < close
    assert _close(ooc.intercept_, mem.intercept_) < close
    assert ooc.tasks_.tolist() == list(range(139))
    # the float32 Grams: certified at 1e-4 on the rows, the objective within that gap
    f32 = rm.MultiTaskRegressor(penalty, alpha=alpha).fit(source)
    assert f32.dual_gap_ <= 1e-4 * P0
    assert abs(f32.objective_ - mem.objective_) <= 1e-4 * P0


def test_ten_thousand_tasks_from_parquet(tmp_path):
    """The out-of-core fit at T = 10^4 (25 rows, 20 features, float32 Parquet) is certified
    at tol and reaches the in-memory fit's objective within tol."""
    pytest.importorskip("pyarrow")
    from regmtl.datasets import make_parquet_tasks
    from regmtl.parquet import ParquetTasks

    make_parquet_tasks(tmp_path / "t", 10_000, tasks_per_file=4000, row_group_tasks=1000)
    source = ParquetTasks(tmp_path / "t", chunk_rows=60_000)
    frame = __import__("pandas").read_parquet(tmp_path / "t")
    X = frame[list(source.feature_names)].to_numpy(np.float64)
    y, task = frame["y"].to_numpy(), frame["task"].to_numpy()
    alpha = 0.1 * rm.alpha_max(source)
    ooc = rm.MultiTaskRegressor("l21", alpha=alpha).fit(source)
    mem = rm.MultiTaskRegressor("l21", alpha=alpha).fit(X, y, task)
    P0 = 0.5 * sum(np.var(v) for v in np.split(y, np.cumsum(source.task_rows)[:-1]))
    assert ooc.dual_gap_ <= 1e-4 * P0
    assert abs(ooc.objective_ - mem.objective_) <= 1e-4 * P0
    assert ooc.coef_.shape == (10_000, 20) and 5 <= np.sum(np.any(ooc.coef_, axis=0)) <= 20
