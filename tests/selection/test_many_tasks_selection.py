"""Many tasks: Clustered's M by its factors, degrees of freedom by a Hutchinson estimate, and
fold building vectorized over the tasks. Each is checked against the exact formula or the
implementation it replaces on small problems."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.model_selection import KFold, StratifiedKFold

import regmtl as rm
from regmtl.inference import criteria
from regmtl.penalties.spectral import (
    MAX_DENSE_CLUSTER_MATRIX,
    cluster_weights,
    dense_cluster_matrix,
)
from regmtl.selection import degrees_of_freedom, task_folds


# ============================================================================ Clustered
def _old_cluster_matrix(pen, W):
    """The dense M as regmtl formed it before the factors: eigh of the T x T W^T W."""
    evals, Q = np.linalg.eigh(W.T @ W)
    m = cluster_weights(np.sqrt(np.maximum(evals, 0.0)), pen.eta, pen.k)
    return (Q * m) @ Q.T


def _old_labels(pen, M):
    evals, Q = np.linalg.eigh(M)
    k = int(pen.k)
    emb = Q[:, -k:] * np.sqrt(np.maximum(evals[-k:], 0.0))
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)


def _same_partition(a, b):
    part = lambda x: {frozenset(np.flatnonzero(x == v)) for v in np.unique(x)}  # noqa: E731
    return part(np.asarray(a)) == part(np.asarray(b))


@pytest.mark.parametrize("p, T, k, eta", [(10, 6, 2, 1.0), (4, 12, 2, 0.5), (20, 30, 3, 0.1),
                                          (3, 3, 3, 1.0), (8, 40, 1, 2.0)])
def test_cluster_factors_give_the_old_matrix(p, T, k, eta):
    """Where the optimal M is unique (more than k nonzero singular values) the factors give
    the M of the old T x T eigendecomposition to 1e-10, and the same clusters."""
    rng = np.random.default_rng(p * T + k)
    W = rng.standard_normal((p, T))
    pen = rm.Clustered(k, eta)
    V, m, m0 = pen.cluster_factors(W)
    assert V.shape == (T, min(p, T)) and m.shape == (min(p, T),)
    np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-12)
    M_old = _old_cluster_matrix(pen, W)
    np.testing.assert_allclose(pen.cluster_matrix(W), M_old, rtol=0, atol=1e-10)
    M = V @ np.diag(m) @ V.T + m0 * (np.eye(T) - V @ V.T)
    np.testing.assert_allclose(M, M_old, rtol=0, atol=1e-10)
    labels = pen.structure(W, 1.0)["task_clusters_"]
    if 1 < k < T:
        assert _same_partition(labels, _old_labels(pen, M_old))


def test_zero_singular_values_share_one_weight():
    """cluster_weights gives every zero singular value the same m (checked on both of its
    branches), so one m0 stands for the complement of V."""
    s = np.array([3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    for k in (1, 2, 3, 5, 6):  # n_pos > k and n_pos <= k
        m = cluster_weights(s, 0.5, k)
        assert np.ptp(m[3:]) == 0.0
        assert m.sum() == pytest.approx(k)


def test_rank_deficient_w_gets_an_optimal_feasible_m():
    """k above the rank: M is not unique; the factors put the rest of the budget evenly on the
    complement (the old T x T form spread it on rounding noise); both are optimal."""
    rng = np.random.default_rng(0)
    W = np.outer(rng.standard_normal(5), rng.standard_normal(8))  # rank 1, T = 8
    pen = rm.Clustered(3, 0.5)
    V, m, m0 = pen.cluster_factors(W)
    assert m0 == pytest.approx(2.0 / 7.0)
    M = pen.cluster_matrix(W)
    ev = np.linalg.eigvalsh(M)
    assert ev.min() >= -1e-12 and ev.max() <= 1 + 1e-12 and np.trace(M) == pytest.approx(3.0)

    def value(Mx):
        return np.trace(W @ np.linalg.solve(0.5 * np.eye(8) + Mx, W.T))

    assert value(M) == pytest.approx(value(_old_cluster_matrix(pen, W)), rel=1e-10)
    assert pen.value(W, 1.0) == pytest.approx(0.5 * 1.5 * value(M), rel=1e-10)


def test_fitted_estimator_keeps_factors_and_forms_m_on_request():
    rng = np.random.default_rng(1)
    Xs = [rng.standard_normal((30, 4)) for _ in range(7)]
    ys = [X @ rng.standard_normal(4) for X in Xs]
    model = rm.MultiTaskRegressor(rm.Clustered(2), alpha=0.1).fit(Xs, ys)
    assert model.cluster_vectors_.shape == (7, 4) and model.cluster_weights_.shape == (4,)
    assert isinstance(model.cluster_rest_, float)
    W = model.coef_matrix_
    np.testing.assert_allclose(model.cluster_matrix_, _old_cluster_matrix(model.penalty, W),
                               atol=1e-10)
    assert not hasattr(rm.MultiTaskRegressor("l21", alpha=0.1).fit(Xs, ys), "cluster_matrix_")


def test_large_t_structure_is_linear_and_dense_m_is_refused():
    T, p = MAX_DENSE_CLUSTER_MATRIX + 1000, 5
    rng = np.random.default_rng(2)
    centers = rng.standard_normal((p, 3)) * 3
    truth = rng.integers(0, 3, T)
    W = centers[:, truth] + 0.05 * rng.standard_normal((p, T))
    pen = rm.Clustered(3, 0.5)
    st = pen.structure(W, 1.0)
    assert st["cluster_vectors_"].shape == (T, p)
    assert _same_partition(st["task_clusters_"], truth)
    with pytest.raises(AttributeError, match="cluster_vectors_"):
        dense_cluster_matrix(st)
    with pytest.raises(ValueError, match="cluster_factors"):
        pen.cluster_matrix(W)
    # the factors apply M in O(T p): M x for a random x against the definition
    x = rng.standard_normal(T)
    V, m, m0 = st["cluster_vectors_"], st["cluster_weights_"], st["cluster_rest_"]
    Mx = V @ (m * (V.T @ x)) + m0 * (x - V @ (V.T @ x))
    assert abs(x @ Mx) <= x @ x + 1e-9 and np.sum(m) + m0 * (T - p) == pytest.approx(3.0)


# ============================================================================ degrees of freedom
def _problem(T, p, seed=0, n_range=(8, 20)):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(*n_range, T)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    W0 = 0.3 * rng.standard_normal((p, T)) + rng.standard_normal((p, 1))
    ys = [X @ W0[:, t] + rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    return Xs, ys, rm.as_task_data(Xs, ys)


def _dense_df(data, pen, alpha, W, b, fit_intercept, K):
    """tr((D + alpha K (x) P)^{-1} D) from the definition, task by task into one matrix."""
    p, T = W.shape
    q = p + int(fit_intercept)
    D = np.zeros((T * q, T * q))
    for t in range(T):
        a, e = data.indptr[t], data.indptr[t + 1]
        Z = data.X[a:e]
        if fit_intercept:
            Z = np.column_stack([Z, np.ones(e - a)])
        D[t * q:(t + 1) * q, t * q:(t + 1) * q] = Z.T @ (Z * data.c[a:e, None])
    P = np.diag(np.r_[np.ones(p), np.zeros(q - p)])
    return np.trace(np.linalg.solve(D + alpha * np.kron(K, P), D))


def _coupled(T):
    return [(rm.MeanRegularized(), None), (rm.MeanRegularized(0.3), None),
            (rm.GraphLaplacian(rm.chain_graph(T)), None), (rm.Clustered(3, 0.5), "M")]


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coupled_exact_df_matches_the_definition(fit_intercept):
    Xs, ys, data = _problem(9, 4)
    for pen, _ in _coupled(9):
        m = rm.MultiTaskRegressor(pen, alpha=0.05, fit_intercept=fit_intercept).fit(Xs, ys)
        W, b = m.coef_matrix_, m.intercept_
        if isinstance(pen, rm.Clustered):
            eta = pen.eta
            K = 2 * eta * (1 + eta) * np.linalg.inv(eta * np.eye(9) + m.cluster_matrix_)
        else:
            K = pen.kernel(9)
        want = _dense_df(data, pen, 0.05, W, b, fit_intercept, K)
        st = {k: getattr(m, k) for k in pen.structure_attrs if hasattr(m, k)}
        got = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b, st, fit_intercept)
        assert got == pytest.approx(want, rel=1e-8)  # the solve's 1e-10 relative jitter
        if isinstance(pen, rm.Clustered):  # a dense cluster_matrix_ (older structures)
            old = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b,
                                     {"cluster_matrix_": m.cluster_matrix_}, fit_intercept)
            assert old == pytest.approx(want, rel=1e-8)


def test_separable_df_is_batched_and_exact():
    """L2 / ElasticNet over the active set: the batched solve equals the per-task definition
    (L21's row curvature: tests/selection/test_degrees_of_freedom.py)."""
    Xs, ys, data = _problem(7, 5, seed=3)
    for pen in (rm.L2(), rm.ElasticNet(0.5)):
        m = rm.MultiTaskRegressor(pen, alpha=0.05).fit(Xs, ys)
        W, b = m.coef_matrix_, m.intercept_
        want = 0.0
        for t in range(7):
            a, e = data.indptr[t], data.indptr[t + 1]
            cols = np.flatnonzero(W[:, t] != 0)
            Z = np.column_stack([data.X[a:e][:, cols], np.ones(e - a)])
            D = Z.T @ (Z * data.c[a:e, None])
            R = np.diag(np.r_[np.full(len(cols), 0.05 * (1 - pen.rho)), 0.0])
            want += np.trace(np.linalg.solve(D + R, D))
        got = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b)
        assert got == pytest.approx(want, rel=1e-8)  # the solve's 1e-10 relative jitter


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hutchinson_matches_the_exact_trace_within_three_standard_errors(fit_intercept):
    T, p = 60, 10  # T (p + 1) = 660: exact is cheap, the estimate is checked against it
    Xs, ys, data = _problem(T, p, seed=5)
    for pen, _ in _coupled(T):
        m = rm.MultiTaskRegressor(pen, alpha=0.05, fit_intercept=fit_intercept,
                                  tol=1e-6).fit(Xs, ys)
        W, b = m.coef_matrix_, m.intercept_
        st = {k: getattr(m, k) for k in pen.structure_attrs if hasattr(m, k)}
        exact = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b, st, fit_intercept,
                                   method="exact")
        est, se = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b, st, fit_intercept,
                                     method="hutchinson", random_state=0, return_std=True)
        assert 0 < se <= 0.01 * est
        assert abs(est - exact) <= 3 * se, (pen, est, exact, se)
        again = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b, st, fit_intercept,
                                   method="hutchinson", random_state=0, return_std=True)
        assert again == (est, se)  # deterministic for a fixed seed
        other = degrees_of_freedom(data, rm.Quadratic(), pen, 0.05, W, b, st, fit_intercept,
                                   method="hutchinson", random_state=1)
        assert other != est


def test_hutchinson_stops_at_the_error_target_or_the_probe_budget():
    Xs, ys, data = _problem(40, 6, seed=2)
    pen = rm.GraphLaplacian(rm.chain_graph(40))
    W = rm.MultiTaskRegressor(pen, alpha=0.5).fit(Xs, ys).coef_matrix_
    b = np.zeros(40)
    calls = []
    orig = criteria._pcg

    def counting(*args, **kwargs):
        calls.append(args[2].shape[2])
        return orig(*args, **kwargs)

    criteria._pcg = counting
    try:
        _, se_loose = degrees_of_freedom(data, rm.Quadratic(), pen, 0.5, W, b,
                                         method="hutchinson", return_std=True)
        n_loose = sum(calls)
        calls.clear()
        est, se = degrees_of_freedom(data, rm.Quadratic(), pen, 0.5, W, b, method="hutchinson",
                                     rel_se=1e-9, max_probes=24, return_std=True)
    finally:
        criteria._pcg = orig
    # the target: the first count (in batches, from the fewest) whose error is within 1%
    assert n_loose >= criteria.HUTCHINSON_MIN_PROBES and n_loose % criteria.HUTCHINSON_BATCH == 0
    assert se_loose <= 0.01 * est
    assert sum(calls) == 24 and se > 1e-9 * est  # the budget, not the target, stopped it


def test_auto_uses_the_estimate_beyond_the_exact_size_and_exact_is_bounded():
    T, p = 200, 10  # 2200 rows > EXACT_COUPLED
    Xs, ys, data = _problem(T, p, seed=4)
    pen = rm.MeanRegularized()
    W = rm.MultiTaskRegressor(pen, alpha=0.1, tol=1e-6).fit(Xs, ys).coef_matrix_
    b = np.zeros(T)
    df, se = degrees_of_freedom(data, rm.Quadratic(), pen, 0.1, W, b, return_std=True)
    assert se > 0
    exact = degrees_of_freedom(data, rm.Quadratic(), pen, 0.1, W, b, method="exact")
    assert abs(df - exact) <= 3 * se
    with pytest.raises(ValueError, match="hutchinson"):
        big = np.zeros((p, 800))
        degrees_of_freedom(rm.as_task_data([np.ones((3, p))] * 800, [np.ones(3)] * 800),
                           rm.Quadratic(), pen, 0.1, big, np.zeros(800), method="exact")
    with pytest.raises(ValueError, match="method"):
        degrees_of_freedom(data, rm.Quadratic(), pen, 0.1, W, b, method="bogus")


def test_criterion_estimator_exposes_the_df_standard_error():
    T, p = 200, 10
    Xs, ys, _ = _problem(T, p, seed=6)
    kw = dict(alphas=3, criterion="bic", tol=1e-5)
    cv = rm.MultiTaskRegressorCV(rm.MeanRegularized(), random_state=0, **kw).fit(Xs, ys)
    assert (cv.cv_results_["df_std"] > 0).all()
    assert (cv.cv_results_["df_std"] <= 0.01 * cv.cv_results_["df"]).all()
    assert cv.df_std_ == cv.cv_results_["df_std"].iloc[cv.best_index_]
    again = rm.MultiTaskRegressorCV(rm.MeanRegularized(), random_state=0, **kw).fit(Xs, ys)
    np.testing.assert_array_equal(again.cv_results_["df"], cv.cv_results_["df"])
    small = rm.MultiTaskRegressorCV("l2", **kw).fit(Xs[:5], ys[:5])
    assert small.df_std_ == 0.0


# ============================================================================ folds
def _val_parts(data, folds):
    return [te for _, te in folds]


def _reference_unshuffled(data, cv, stratify):
    """Per task: sklearn's KFold / StratifiedKFold on its rows (what the loop built)."""
    per = []
    for t in range(data.n_tasks):
        a, b = data.indptr[t], data.indptr[t + 1]
        split = StratifiedKFold(cv) if stratify else KFold(cv)
        labels = data.raw_y[a:b] if stratify else None
        per.append([a + te for _, te in split.split(np.zeros((b - a, 1)), labels)])
    return [np.concatenate([f[k] for f in per]) for k in range(cv)]


@pytest.mark.parametrize("stratify", [False, True])
def test_unshuffled_folds_are_sklearns_per_task(stratify):
    rng = np.random.default_rng(0)
    sizes = rng.integers(8, 30, 25)
    Xs = [rng.standard_normal((n, 2)) for n in sizes]
    if stratify:
        ys = [rng.permutation(np.r_[np.zeros(4), np.ones(4), rng.integers(0, 2, n - 8)])
              for n in sizes]
    else:
        ys = [rng.standard_normal(n) for n in sizes]
    data = rm.as_task_data(Xs, ys, numeric_y=not stratify)
    for cv in (2, 3, 4):
        got = _val_parts(data, task_folds(data, cv, stratify=stratify))
        for g, w in zip(got, _reference_unshuffled(data, cv, stratify), strict=True):
            np.testing.assert_array_equal(g, np.sort(w))


@pytest.mark.parametrize("stratify", [False, True])
def test_shuffled_folds_are_even_and_deterministic(stratify):
    rng = np.random.default_rng(1)
    sizes = rng.integers(10, 40, 50)
    Xs = [rng.standard_normal((n, 2)) for n in sizes]
    ys = [np.where(rng.random(n) < 0.3, "a", "b") for n in sizes] if stratify else \
        [rng.standard_normal(n) for n in sizes]
    ys = [np.r_[["a"] * 5, ["b"] * 5, y[10:]] for y in ys] if stratify else ys
    data = rm.as_task_data(Xs, ys, numeric_y=not stratify)
    K = 5
    folds = task_folds(data, K, stratify=stratify, random_state=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in
               zip(folds, task_folds(data, K, stratify=stratify, random_state=0), strict=True))
    other = task_folds(data, K, stratify=stratify, random_state=1)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))
    parts = np.full(data.n_obs, -1)
    for k, (tr, te) in enumerate(folds):
        assert np.intersect1d(tr, te).size == 0 and len(tr) + len(te) == data.n_obs
        assert np.all(parts[te] == -1)  # every row validated once
        parts[te] = k
    assert np.all(parts >= 0)
    counts = np.array([np.bincount(data.task_of[te], minlength=data.n_tasks)
                       for _, te in folds])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)
    if stratify:  # every class too: StratifiedKFold's counts per task
        for t in range(data.n_tasks):
            a, b = data.indptr[t], data.indptr[t + 1]
            ref = StratifiedKFold(K).split(np.zeros((b - a, 1)), data.raw_y[a:b])
            want = sorted(sorted(np.unique(data.raw_y[a:b][te], return_counts=True)[1])
                          for _, te in ref)
            got = sorted(sorted(np.unique(data.raw_y[te[(te >= a) & (te < b)]],
                                          return_counts=True)[1]) for _, te in folds)
            assert got == want
        # shuffled: not simply the unshuffled order
        assert not all(np.array_equal(x, y) for x, y in
                       zip(_val_parts(data, folds), _reference_unshuffled(data, K, True),
                           strict=True))


def test_small_tasks_keep_the_fold_rule_and_its_warning():
    rng = np.random.default_rng(2)
    sizes = [12, 3, 1, 10]
    data = rm.as_task_data([rng.standard_normal((n, 2)) for n in sizes],
                           [rng.standard_normal(n) for n in sizes])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        folds = task_folds(data, 5, random_state=0)
    msg = str(w[0].message)
    assert "2 task(s)" in msg and "task 1 has 3 samples: 3 folds" in msg
    assert "task 2 has 1 sample: never validated" in msg
    for tr, te in folds:
        cnt = np.bincount(data.task_of[te], minlength=4)
        assert cnt[2] == 0 and cnt[1] == 1  # task 1: part k mod 3, one row each
        assert 2 in data.task_of[tr]
    t1 = [te[data.task_of[te] == 1][0] for _, te in folds]
    assert t1[0] == t1[3] and t1[1] == t1[4] and len(set(t1[:3])) == 3


def test_labels_of_different_types_per_task_are_stratified():
    rng = np.random.default_rng(3)
    Xs = [rng.standard_normal((12, 2)) for _ in range(3)]
    ys = [np.array(["spam", "ham"] * 6, dtype=object), np.array([7, 3] * 6, dtype=object),
          np.array([0.0, 1.0] * 6)]
    data = rm.as_task_data(Xs, ys, numeric_y=False)
    for _, te in task_folds(data, 3, stratify=True, random_state=0):
        for t in range(3):
            lab = data.raw_y[te[data.task_of[te] == t]]
            assert len(lab) == 4 and len({str(v) for v in lab}) == 2
