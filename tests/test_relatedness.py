"""regmtl.task_relatedness: the matrix against direct computations, the permutation test on
problems whose answer is known, the clusters, the input forms and the errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.model_selection import KFold, cross_val_predict  # noqa: E402

import regmtl as rm  # noqa: E402
from regmtl.datasets import make_multitask_classification, make_multitask_regression  # noqa: E402

STRONG = "Strong evidence of shared structure"
NONE = "No evidence of shared structure"


def _cosine(C):
    U = C / np.linalg.norm(C, axis=1, keepdims=True)
    return U @ U.T


def _zscore(Xs):
    stacked = np.vstack(Xs)
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    return [(X - mean) / scale for X in Xs]


def _tasks(W, n=80, noise=0.5, seed=0):
    """Per-task designs (iid N(0, 1)) and targets ``X w_t + noise``, one row of W per task."""
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, W.shape[1])) for _ in W]
    ys = [X @ w + 1.0 + noise * rng.standard_normal(n) for X, w in zip(Xs, W, strict=True)]
    return Xs, ys


def _related_tasks(T=8, p=15, seed=0):
    """A shared coefficient vector plus small task-specific deviations."""
    rng = np.random.default_rng(seed)
    return _tasks(rng.standard_normal(p) + 0.3 * rng.standard_normal((T, p)), seed=seed + 1)


def _unrelated_tasks(T=8, p=15, seed=0):
    """Independent random coefficient vectors (nothing shared)."""
    return _tasks(np.random.default_rng(seed).standard_normal((T, p)), seed=seed + 1)


def _two_groups(seed=3):
    """Tasks 0-4 share one vector, tasks 5-9 another (independent of the first)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2, 15))
    truth = np.repeat([0, 1], 5)
    return (*_tasks(centers[truth] + 0.3 * rng.standard_normal((10, 15)), seed=seed + 1),
            truth)


# ----------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("similarity", ["cosine", "correlation"])
def test_matrix_is_the_similarity_of_the_coefficients(similarity):
    Xs, ys = _related_tasks()
    rel = rm.task_relatedness(Xs, ys, similarity=similarity, n_permutations=20, cv=2)
    C = rel.coefficients
    expect = _cosine(C) if similarity == "cosine" else np.corrcoef(C)
    S = rel.matrix.to_numpy()
    np.testing.assert_allclose(S, expect, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(S, S.T)
    np.testing.assert_array_equal(np.diag(S), 1.0)
    assert list(rel.matrix.index) == list(range(8))
    # the statistic is the mean |similarity| off the diagonal
    iu = np.triu_indices(8, 1)
    assert rel.statistic == pytest.approx(np.mean(np.abs(expect[iu])), abs=1e-12)


def test_ridge_coefficients_are_per_task_sklearn_ridge():
    Xs, ys = _related_tasks(T=4)
    # a column constant within every task (a task-level feature) says nothing: it is left out
    Xc = [np.column_stack([X, np.full(len(X), float(t))]) for t, X in enumerate(Xs)]
    rel = rm.task_relatedness(Xc, ys, n_permutations=10, cv=3, tol=1e-12)
    assert rel.features == [f"x{j}" for j in range(15)] and rel.n_features == 16
    Z = _zscore(Xs)
    # design.rst section 4: one task with L2 is Ridge(alpha = n_t * alpha)
    for t, (Zt, yt) in enumerate(zip(Z, ys, strict=True)):
        ref = Ridge(alpha=len(yt) * rel.alpha, tol=1e-12).fit(Zt, yt)
        np.testing.assert_allclose(rel.coefficients[t], ref.coef_, rtol=1e-6, atol=1e-8)
    # and one alpha for all tasks, the one the CV estimator picks on those data
    cv = rm.MultiTaskRegressorCV("l2", alphas=12, cv=3, tol=1e-12, random_state=0).fit(Z, ys)
    assert rel.alpha == pytest.approx(cv.alpha_, rel=1e-12)


def test_binary_tasks_use_logistic_coefficients():
    d = make_multitask_classification(4, 120, 6, n_informative=4, relatedness=0.9,
                                      random_state=0)
    rel = rm.task_relatedness(d, n_permutations=50, cv=3, tol=1e-10)
    assert rel.kind == "binary" and "logistic" in rel.verdict
    Z = _zscore(d.X)
    # (1/n_t) sum log-loss + alpha/2 ||w||^2  <=>  LogisticRegression(C = 1 / (n_t alpha))
    for t, (Zt, yt) in enumerate(zip(Z, d.y, strict=True)):
        ref = LogisticRegression(C=1.0 / (len(yt) * rel.alpha), tol=1e-12, max_iter=10_000)
        ref.fit(Zt, yt)
        np.testing.assert_allclose(rel.coefficients[t], ref.coef_[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rel.matrix.to_numpy(), _cosine(rel.coefficients), atol=1e-12)


# ----------------------------------------------------------------------------- the verdict
def test_related_tasks_give_strong_evidence():
    Xs, ys = _related_tasks()
    rel = rm.task_relatedness(Xs, ys, cv=2)
    assert rel.p_value < 0.01 and rel.related and rel.level == "strong"
    assert rel.verdict.startswith(STRONG)
    assert rel.statistic > rel.null_quantile + 0.3
    assert f"p = {rel.p_value:.3g}" in rel.verdict
    # one group holding every task, and the advice for it
    assert rel.clusters.nunique() == 1 and "share across all tasks" in rel.verdict


def test_unrelated_tasks_give_no_evidence():
    Xs, ys = _unrelated_tasks()
    rel = rm.task_relatedness(Xs, ys, cv=2)
    assert not rel.related and rel.level == "none" and rel.p_value >= 0.05
    assert rel.verdict.startswith(NONE)
    assert "compare against single-task ridge (regmtl compare)" in rel.verdict
    assert abs(rel.statistic - rel.null_mean) < 0.1


def test_two_groups_are_recovered():
    Xs, ys, truth = _two_groups()
    rel = rm.task_relatedness(Xs, ys, cv=2)
    assert rel.level == "strong"
    assert adjusted_rand_score(truth, rel.clusters.to_numpy()) == 1.0
    assert [len(g) for g in rel.groups] == [5, 5]
    assert "clustered" in rel.verdict
    # the dendrogram order keeps each cluster contiguous
    ordered = rel.clusters.to_numpy()[rel.order]
    assert np.count_nonzero(np.diff(ordered)) == 1
    # an asked number of clusters
    three = rm.task_relatedness(Xs, ys, cv=2, n_clusters=3, n_permutations=20)
    assert three.clusters.nunique() == 3
    np.testing.assert_allclose(three.matrix, rel.matrix, atol=1e-12)


# ----------------------------------------------------------------------------- residuals
def _shared_residual_problem(n=120, seed=0):
    """Shared design, noise correlated 0.8 between tasks 0 and 1, task 2 independent."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    W = rng.standard_normal((5, 3))
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    E = rng.standard_normal((n, 3)) @ np.linalg.cholesky(cov).T
    return X, X @ W + E


def test_residual_method_matches_cross_val_predict():
    X, Y = _shared_residual_problem()
    rel = rm.task_relatedness(X, Y, method="residual", similarity="correlation", cv=3,
                              tol=1e-12)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    folds = KFold(3, shuffle=True, random_state=0)  # the documented folds, 80 training rows
    R = np.column_stack([Y[:, t] - cross_val_predict(Ridge(alpha=80 * rel.alpha), Z, Y[:, t],
                                                     cv=folds) for t in range(3)])
    np.testing.assert_allclose(rel.residuals, R, rtol=0, atol=1e-7)
    np.testing.assert_allclose(rel.matrix.to_numpy(), np.corrcoef(R.T), atol=1e-7)
    # the noise correlation 0.8 is recovered (sd of a correlation estimate from 120 rows
    # is about (1 - 0.8^2) / sqrt(120) = 0.033: 3 sd)
    S = rel.matrix.to_numpy()
    assert S[0, 1] == pytest.approx(0.8, abs=0.1)
    assert abs(S[0, 2]) < 0.3 and abs(S[1, 2]) < 0.3
    assert rel.related and rel.level == "strong" and rel.coefficients is None
    assert "do not explain" in rel.verdict


def test_residual_method_skips_missing_labels_pairwise():
    X, Y = _shared_residual_problem()
    Y[:10, 0] = np.nan
    Y[5:20, 2] = np.nan
    rel = rm.task_relatedness(X, pd.DataFrame(Y, columns=["a", "b", "c"]), method="residual",
                              n_permutations=50)
    R = rel.residuals
    assert np.isnan(R[:10, 0]).all() and not np.isnan(R[10:, 0]).any()
    for s, t in [(0, 1), (0, 2), (1, 2)]:
        both = ~np.isnan(R[:, s]) & ~np.isnan(R[:, t])
        u, v = R[both, s], R[both, t]
        cos = u @ v / np.sqrt((u @ u) * (v @ v))
        assert rel.matrix.iloc[s, t] == pytest.approx(cos, abs=1e-12)
    assert list(rel.matrix.index) == ["a", "b", "c"]


# ----------------------------------------------------------------------------- the null
def test_permutation_null_formula_and_determinism():
    Xs, ys = _related_tasks(T=5)
    kw = dict(n_permutations=60, cv=2, similarity="correlation")
    rel = rm.task_relatedness(Xs, ys, random_state=7, **kw)
    null = rel.null_statistics
    assert null.shape == (60,)
    assert rel.p_value == (1 + np.count_nonzero(null >= rel.statistic)) / 61
    assert rel.null_mean == pytest.approx(null.mean(), abs=1e-15)
    assert rel.null_quantile == pytest.approx(np.quantile(null, 0.95), abs=1e-15)
    again = rm.task_relatedness(Xs, ys, random_state=7, **kw)
    np.testing.assert_array_equal(again.null_statistics, null)
    np.testing.assert_array_equal(again.matrix, rel.matrix)
    assert again.verdict == rel.verdict and again.pair_threshold == rel.pair_threshold
    other = rm.task_relatedness(Xs, ys, random_state=8, **kw)
    np.testing.assert_array_equal(other.matrix, rel.matrix)  # only the null depends on it
    assert not np.array_equal(other.null_statistics, null)


def test_null_keeps_magnitudes_and_p_value_floor():
    # two tasks with identical coefficients: the statistic is 1, no null draw reaches it
    w = np.array([[3.0, -1.0, 0.5, 2.0, 0.0, 1.0]] * 2)
    model = SimpleNamespace(coef_=w, penalty="l2")
    rel = rm.task_relatedness(model=model, n_permutations=9)
    assert rel.statistic == pytest.approx(1.0) and rel.p_value == pytest.approx(0.1)
    assert "cannot go below 0.1" in rel.verdict
    assert rel.features == ["x0", "x1", "x2", "x3", "x5"]  # zero in every task: left out
    assert rel.null_statistics.max() < 1.0


# ----------------------------------------------------------------------------- models
def test_model_method_is_the_cosine_of_coef():
    Xs, ys = _related_tasks(T=5)
    m = rm.MultiTaskRegressor("l21", alpha=0.05).fit(Xs, ys)
    rel = rm.task_relatedness(m, n_permutations=30)
    assert rel.method == "model"
    np.testing.assert_allclose(rel.matrix.to_numpy(), _cosine(m.coef_), atol=1e-12)
    assert "Caution" in rel.verdict and "L21" in rel.verdict and "method='ridge'" in rel.verdict
    same = rm.task_relatedness(model=m, n_permutations=30, task_names=list("abcde"))
    np.testing.assert_array_equal(same.matrix.to_numpy(), rel.matrix.to_numpy())
    assert list(same.clusters.index) == list("abcde")
    # a CV estimator: its refitted model; an l2 (independent) fit gets no caution
    cv = rm.MultiTaskRegressorCV("l2", alphas=5, cv=2).fit(Xs, ys)
    rel_cv = rm.task_relatedness(cv, n_permutations=30)
    np.testing.assert_allclose(rel_cv.matrix.to_numpy(),
                               _cosine(cv.best_estimator_.coef_), atol=1e-12)
    assert "Caution" not in rel_cv.verdict and "per-task ridge" in rel_cv.verdict


def test_zero_coefficient_vector_is_similarity_zero():
    W = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [1.0, 1.5, 0.2]])
    rel = rm.task_relatedness(model=SimpleNamespace(coef_=W, penalty="l2"),
                              task_names=["a", "b", "c"], n_permutations=20)
    S = rel.matrix.to_numpy()
    np.testing.assert_array_equal(S[1, [0, 2]], 0.0)
    assert S[1, 1] == 1.0 and S[0, 2] == pytest.approx(_cosine(W[[0, 2]])[0, 1], abs=1e-12)
    assert "1 task(s) have all-zero coefficients (b)" in rel.verdict


# ----------------------------------------------------------------------------- input forms
def test_input_forms_agree():
    d = make_multitask_regression(3, 40, 5, n_informative=3, shared_design=True,
                                  random_state=0)
    kw = dict(n_permutations=10, cv=2)
    ref = rm.task_relatedness(d.X, d.y, **kw).matrix.to_numpy()
    task = np.repeat(["u", "v", "w"], 40)
    long = rm.task_relatedness(np.vstack(d.X), np.concatenate(d.y), task, **kw)
    shared = rm.task_relatedness(d.X_shared, d.Y, **kw)
    bunch = rm.task_relatedness(d, **kw)
    named = rm.task_relatedness({"u": d.X[0], "v": d.X[1], "w": d.X[2]},
                                {"u": d.y[0], "v": d.y[1], "w": d.y[2]}, **kw)
    for rel in (long, shared, bunch, named):
        np.testing.assert_allclose(rel.matrix.to_numpy(), ref, atol=1e-10)
    assert list(long.matrix.index) == ["u", "v", "w"] == list(named.matrix.index)
    assert list(bunch.matrix.index) == list(d.task_names)
    assert bunch.features == list(d.feature_names)
    # the data set's shared design also serves the residual method
    res = rm.task_relatedness(d, method="residual", **kw)
    assert res.residuals.shape == (40, 3)


def test_result_helpers():
    Xs, ys, _ = _two_groups()
    rel = rm.task_relatedness(Xs, ys, cv=2, n_permutations=50)
    pairs = rel.to_frame()
    assert len(pairs) == 45 and list(pairs.columns) == ["task_a", "task_b", "similarity",
                                                        "same_cluster"]
    assert pairs["similarity"].is_monotonic_decreasing
    top = pairs.iloc[0]
    assert rel.matrix.loc[top.task_a, top.task_b] == top.similarity
    text = str(rel)
    assert text.startswith(rel.verdict) and "p = " in text and "clusters: 2" in text
    ax = rel.plot()
    assert ax.images[0].get_array().shape == (10, 10)


# ----------------------------------------------------------------------------- errors
def _lists():
    return _related_tasks(T=3, p=4)


@pytest.mark.parametrize("call, message", [
    (lambda Xs, ys: rm.task_relatedness(Xs[:1], ys[:1]), r"at least two tasks \(got 1\)"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, method="lasso"),
     r"method='lasso' is unknown; choose from ridge, model, residual"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, similarity="euclid"),
     r"similarity='euclid' is unknown"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, n_permutations=0),
     r"n_permutations=0 must be an integer >= 1"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, n_clusters=0), r"n_clusters=0 must be"),
    (lambda Xs, ys: rm.task_relatedness([Xs[0], np.where(Xs[1] > 1, np.nan, Xs[1]), Xs[2]],
                                        ys), r"X: task 1 has NaN or infinite values"),
    (lambda Xs, ys: rm.task_relatedness(Xs, [ys[0], ys[1], np.full_like(ys[2], np.inf)]),
     r"y: task 2 has NaN or infinite targets"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, method="residual"),
     r"needs a shared design: X \(n, p\) with Y \(n, T\)"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, method="model"), r"needs a fitted model"),
    (lambda Xs, ys: rm.task_relatedness(rm.MultiTaskRegressor()),
     r"model: the MultiTaskRegressor is not fitted"),
    (lambda Xs, ys: rm.task_relatedness(rm.MultiTaskRegressorCV("l2")), r"is not fitted"),
    (lambda Xs, ys: rm.task_relatedness(model=rm.MultiTaskRegressor("l2").fit(Xs, ys),
                                        method="residual"),
     r"method='residual' works on data"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, task_names=["a", "b"]),
     r"task_names: 2 names for 3 tasks"),
    (lambda Xs, ys: rm.task_relatedness([np.ones((5, 2))] * 3, ys),
     r"X: no feature varies within any task"),
    (lambda Xs, ys: rm.task_relatedness(Xs, ys, n_clusters=4),
     r"n_clusters=4 is more than the 3 tasks"),
    (lambda Xs, ys: rm.task_relatedness(model=SimpleNamespace(coef_=np.array([[1.0, np.nan]] * 2))),
     r"model: coef_ has NaN"),
])
def test_errors_name_the_argument_and_the_fix(call, message):
    Xs, ys = _lists()
    with pytest.raises(ValueError, match=message):
        call(Xs, ys)


def test_residual_needs_regression_targets():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    Y = (rng.standard_normal((30, 2)) > 0).astype(float)
    with pytest.raises(ValueError, match=r"needs regression targets.*method='ridge'"):
        rm.task_relatedness(X, Y, method="residual")
    with pytest.raises(ValueError, match=r"needs a shared design"):
        rm.task_relatedness(np.vstack([X, X]), np.concatenate([Y[:, 0], Y[:, 1]]),
                            np.repeat([0, 1], 30), method="residual")
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"X: the shared design has NaN or infinite"):
        rm.task_relatedness(X, Y + np.arange(30)[:, None], method="residual")


def test_shuffled_school_targets_are_not_related():
    """Correlated School features make pure-noise ridge estimates alike; the shuffle null
    sees that, so targets shuffled within every school get no verdict of relatedness, while
    the real targets do."""
    from regmtl.datasets import load_school

    b = load_school()
    rng = np.random.default_rng(0)
    shuffled = rm.task_relatedness(b.X, [rng.permutation(y) for y in b.y],
                                   n_permutations=100, cv=2)
    assert not shuffled.related and shuffled.p_value > 0.2
    assert shuffled.verdict.startswith("No evidence")
    real = rm.task_relatedness(b, n_permutations=100, cv=2)
    assert real.related and real.statistic > 3 * shuffled.statistic
