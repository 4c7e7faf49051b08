"""The out-of-core fit of the logistic loss (a Parquet source read chunk by chunk) against the
in-memory MultiTaskClassifier on the same rows: coefficients, intercepts, certificates,
alpha_max and the labels' checks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import regmtl as rm
from regmtl.datasets import make_parquet_tasks
from regmtl.parquet import ParquetTasks
from regmtl.solvers.streamed.newton import source_logistic_reference

P = 6
FEATURES = [f"x{j}" for j in range(P)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """1,000 tasks of 25 rows and 6 features with a 0/1 label: the source (read in chunks
    of about 200 tasks) and the same rows in memory."""
    path = tmp_path_factory.mktemp("logistic") / "tasks"
    make_parquet_tasks(path, 1000, n_rows=25, n_features=P, random_state=3)
    source = ParquetTasks(path, target="label", features=FEATURES, chunk_rows=5000)
    frame = pq.read_table(path).to_pandas()
    return source, frame[FEATURES].to_numpy(np.float64), frame["label"].to_numpy(), \
        frame["task"].to_numpy()


@pytest.mark.parametrize("penalty", ["l21", "l1", "mean"])
def test_equals_in_memory(labelled, penalty):
    source, X, y, task = labelled
    if penalty == "mean":  # (no alpha_max: no alpha gives W = 0)
        alpha = 0.05
    else:  # alpha_max from one pass over the rows, as in memory
        a_max = rm.alpha_max(source, penalty=penalty, loss="logistic")
        assert a_max == pytest.approx(rm.alpha_max(X, y, task=task, penalty=penalty,
                                                   loss="logistic"), rel=1e-10)
        alpha = 0.1 * a_max
    # (tol 1e-10: a task nearly separable is flat along its coefficients, 1e-5 apart at 1e-8)
    out = rm.MultiTaskClassifier(penalty, alpha=alpha, tol=1e-10).fit(source)
    mem = rm.MultiTaskClassifier(penalty, alpha=alpha, tol=1e-10).fit(X, y, task=task)
    if penalty == "mean":  # (no dual: the KKT residual, as in memory)
        assert out.kkt_residual_ <= 1e-10
    else:
        P0 = source_logistic_reference(source, "equal", True)[1]  # the objective at W = 0
        assert out.dual_gap_ <= 1e-10 * P0
    np.testing.assert_allclose(out.coef_, mem.coef_, atol=1e-5)
    np.testing.assert_allclose(out.intercept_, mem.intercept_, atol=1e-5)
    assert out.objective_ == pytest.approx(mem.objective_, rel=1e-8)
    assert [list(c) for c in out.classes_] == [list(c) for c in mem.classes_]
    np.testing.assert_array_equal(out.predict(source), mem.predict(X, task=task))


def test_any_two_labels_and_one_class(tmp_path):
    rng = np.random.default_rng(0)
    T, n = 30, 20
    task = np.repeat(np.arange(T), n)
    X = rng.standard_normal((T * n, P))
    f = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.standard_normal(T * n)
    label = np.where(f > 0, 7, 3).astype(np.int64)
    table = {name: X[:, j] for j, name in enumerate(FEATURES)}
    table.update(label=label, task=task)
    path = tmp_path / "two.parquet"
    pq.write_table(pa.table(table), path)
    source = ParquetTasks(path, target="label", features=FEATURES)
    out = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-8).fit(source)
    mem = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-8).fit(X, label, task=task)
    np.testing.assert_allclose(out.coef_, mem.coef_, atol=1e-5)
    assert [list(c) for c in out.classes_] == [[3, 7]] * T
    label[task == 4] = 7  # task 4 of one class: refused as in memory
    table["label"] = label
    pq.write_table(pa.table(table), path)
    with pytest.raises(ValueError, match="task 4 has one class"):
        rm.MultiTaskClassifier("l21", alpha=0.01).fit(
            ParquetTasks(path, target="label", features=FEATURES))


@pytest.mark.parametrize("kw", [{"fit_intercept": False}, {"task_weight": "samples"}])
def test_options_and_warm_start_equal_in_memory(labelled, kw):
    source, X, y, task = labelled
    out = rm.MultiTaskClassifier("l21", alpha=0.3, tol=1e-10, warm_start=True, **kw)
    out.fit(source)
    out.set_params(alpha=0.25).fit(source)  # (from the last fit)
    mem = rm.MultiTaskClassifier("l21", alpha=0.25, tol=1e-10, **kw).fit(X, y, task=task)
    np.testing.assert_allclose(out.coef_, mem.coef_, atol=1e-5)
    np.testing.assert_allclose(out.intercept_, mem.intercept_, atol=1e-5)
    assert out.objective_ == pytest.approx(mem.objective_, rel=1e-9)
