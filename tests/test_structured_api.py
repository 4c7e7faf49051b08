"""The structured penalties through the public API (design.rst sections 4-5): Trace,
MeanRegularized, GraphLaplacian (with chain_graph / knn_graph), Clustered, Dirty, SparseLowRank.

1. limits that must hold exactly (W = 0 at alpha_max, the pooled model, independent tasks, the
   dirty models reducing to L2,1 / L1 / trace norm, a complete graph equal to mean-regularized);
2. the fitted structure attributes (singular values and rank, P_ + Q_, cluster matrix and task
   clusters) and their removal on a refit with another penalty;
3. bad input: a ValueError that names the offending argument;
4. every input form, warm starts, predict shapes, scikit-learn cloning / parameters / search,
   save and load;
5. scikit-learn's estimator checks on the single-task form.

The reductions in section 1 follow from the dual norms (the penalties are support functions of
their dual balls). Dirty: the ball is {max_j ||G_j||_2 <= alpha} & {max |G_jt| <= alpha g}; since
|G_jt| <= ||G_j||_2 <= sqrt(T) max_t |G_jt|, the second constraint is implied when g >= 1 (the
penalty *is* alpha ||W||_2,1) and implies the first when g <= 1 / sqrt(T) (it *is* alpha g
||W||_1). SparseLowRank: |G_jt| <= ||G||_2 <= sqrt(p T) max |G_jt| gives the trace norm for
g >= 1 and alpha g ||W||_1 for g <= 1 / sqrt(p T). Strictly inside those ranges the other part is
exactly zero at the optimum (its prox threshold is never reached). Complete graph: with
A = a (11^T - I), 2 L = 2 a T (I - 11^T / T), so a = 1 / (2T) gives MeanRegularized's kernel.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import regmtl as rm
from regmtl import MultiTaskClassifier, MultiTaskRegressor

P = 5
SIZES = (44, 67, 55)  # n_t > p (the unregularized limits are well posed), all different
T = len(SIZES)
TIGHT = dict(tol=1e-13, max_iter=50_000)
LOSSES = ["squared", "logistic"]
EST = {"squared": MultiTaskRegressor, "logistic": MultiTaskClassifier}
ALPHA = {"squared": 0.1, "logistic": 0.02}

#: fresh penalty objects (some cache state during a fit); own_weight / sparse_weight strictly
#: between the thresholds of the module docstring, so both parts are used
STRUCTURED = {
    "trace": lambda: rm.Trace(),
    "mean": lambda: rm.MeanRegularized(),
    "mean_ridge": lambda: rm.MeanRegularized(ridge=0.5),
    "graph": lambda: rm.GraphLaplacian(rm.chain_graph(T)),
    "clustered": lambda: rm.Clustered(k=2, eta=0.5),
    "dirty": lambda: rm.Dirty(own_weight=0.7),
    "sparse_lowrank": lambda: rm.SparseLowRank(sparse_weight=0.4),
}
NAMES = {"trace": rm.Trace, "mean": rm.MeanRegularized, "clustered": rm.Clustered,
         "dirty": rm.Dirty, "sparse_lowrank": rm.SparseLowRank}
DUAL_GAP = {"trace", "mean_ridge", "dirty", "sparse_lowrank"}
STRUCTURE_ATTRS = {
    "trace": {"singular_values_", "rank_"},
    "clustered": {"cluster_vectors_", "cluster_weights_", "cluster_rest_", "task_clusters_"},
    "dirty": {"P_", "Q_"},
    "sparse_lowrank": {"P_", "Q_"},
}
ALL_STRUCTURE_ATTRS = {"singular_values_", "rank_", "cluster_vectors_", "cluster_weights_",
                       "cluster_rest_", "task_clusters_", "P_", "Q_"}


# ============================================================================ data
def make_data(loss, seed=1, sizes=SIZES, p=P):
    """Per-task lists, non-centered designs; labels {0, 1} with enough noise that no task is
    separable (seed 1: the unpenalized per-task logistic fits have |coef| < 2)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, len(sizes)))
    Xs = [rng.standard_normal((n, p)) + 0.3 * rng.standard_normal(p) for n in sizes]
    if loss == "squared":
        ys = [X @ W[:, t] + t + 0.5 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    else:
        ys = [(X @ W[:, t] + 0.3 * t + 2.0 * rng.standard_normal(len(X)) > 0).astype(np.int64)
              for t, X in enumerate(Xs)]
    return Xs, ys


def g0_matrix(Xs, ys, loss):
    """``G0 = X^T (c theta0)`` at W = 0 with fitted intercepts, written from design.rst section 4:
    theta0 = y_t - mean(y_t) (squared) or y01_t - mean(y01_t) (logistic), c = 1 / n_t."""
    cols = []
    for X, y in zip(Xs, ys, strict=True):
        y = np.asarray(y, dtype=float)
        cols.append(X.T @ (y - y.mean()) / len(y))
    return np.column_stack(cols)


def with_intercept_design(Xs):
    """Stacked [X | one-hot task] design of a pooled model with per-task intercepts."""
    N = sum(len(X) for X in Xs)
    D = np.zeros((N, Xs[0].shape[1] + len(Xs)))
    o = 0
    for t, X in enumerate(Xs):
        D[o:o + len(X), :X.shape[1]] = X
        D[o:o + len(X), X.shape[1] + t] = 1.0
        o += len(X)
    w = np.concatenate([np.full(len(X), 1.0 / len(X)) for X in Xs])
    return D, w


def pooled_fit(Xs, ys, loss):
    """The pooled model: one w for all tasks, per-task intercepts, each task's loss averaged
    over its rows (the objective's 1/n_t), unpenalized."""
    D, w = with_intercept_design(Xs)
    y = np.concatenate(ys)
    p = Xs[0].shape[1]
    if loss == "squared":
        s = np.sqrt(w)
        sol = np.linalg.lstsq(D * s[:, None], y * s, rcond=None)[0]
    else:
        sol = LogisticRegression(C=np.inf, solver="newton-cholesky", fit_intercept=False,
                                 tol=1e-14, max_iter=1000).fit(D, y, sample_weight=w).coef_[0]
    return sol[:p], sol[p:]


def independent_fits(Xs, ys, loss):
    """Unregularized per-task fits with an intercept: (coef T x p, intercepts T)."""
    coefs, b = [], []
    for X, y in zip(Xs, ys, strict=True):
        if loss == "squared":
            sol = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)[0]
            coefs.append(sol[:-1])
            b.append(sol[-1])
        else:
            lr = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-14,
                                    max_iter=1000).fit(X, y)
            coefs.append(lr.coef_[0])
            b.append(lr.intercept_[0])
    return np.array(coefs), np.array(b)


def fit(loss, penalty, alpha, Xs, ys, **kw):
    params = {**TIGHT, **kw}
    return EST[loss](penalty=penalty, alpha=alpha, **params).fit(Xs, ys)


# ============================================================================ 1. limits
@pytest.mark.parametrize("loss", LOSSES)
def test_trace_alpha_max_gives_zero_exactly(loss):
    Xs, ys = make_data(loss)
    am = rm.alpha_max(Xs, ys, penalty="trace", loss=loss)
    # the dual norm of the trace norm is the spectral norm
    assert am == pytest.approx(np.linalg.norm(g0_matrix(Xs, ys, loss), 2), rel=1e-10)
    for a in (am, 1.5 * am):
        m = fit(loss, "trace", a, Xs, ys)
        assert np.all(m.coef_ == 0.0)
        assert m.rank_ == 0 and np.all(m.singular_values_ == 0.0)
        assert m.dual_gap_ <= 1e-12
        if loss == "squared":
            assert_allclose(m.intercept_, [y.mean() for y in ys], rtol=1e-12)
        else:
            assert_allclose(m.intercept_, [np.log(y.mean() / (1 - y.mean())) for y in ys],
                            rtol=1e-9)
    m = fit(loss, "trace", 0.99 * am, Xs, ys)
    assert np.any(m.coef_ != 0.0)
    assert m.rank_ == 1  # just below alpha_max only the leading direction enters


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", [rm.Dirty(own_weight=0.7), rm.Dirty(own_weight=3.0),
                                     rm.SparseLowRank(sparse_weight=0.4)])
def test_decomposition_alpha_max(loss, penalty):
    Xs, ys = make_data(loss)
    G0 = g0_matrix(Xs, ys, loss)
    if isinstance(penalty, rm.Dirty):
        expected = max(np.linalg.norm(G0, axis=1).max(), np.abs(G0).max() / penalty.own_weight)
    else:
        expected = max(np.linalg.norm(G0, 2), np.abs(G0).max() / penalty.sparse_weight)
    am = rm.alpha_max(Xs, ys, penalty=penalty, loss=loss)
    assert am == pytest.approx(expected, rel=1e-10)
    m = fit(loss, penalty, am, Xs, ys)
    assert np.all(m.coef_ == 0.0) and np.all(m.P_ == 0.0) and np.all(m.Q_ == 0.0)
    assert np.any(fit(loss, penalty, 0.99 * am, Xs, ys).coef_ != 0.0)


@pytest.mark.parametrize("loss", LOSSES)
def test_mean_regularized_huge_alpha_is_the_pooled_model(loss):
    Xs, ys = make_data(loss)
    w_pool, b_pool = pooled_fit(Xs, ys, loss)
    # squared: the KKT residual cannot go below ~alpha * eps, so tol follows alpha
    alphas = (1e2, 1e4, 1e6, 1e8) if loss == "squared" else (1e2, 1e3, 1e4)
    spread, dist = [], []
    for a in alphas:
        m = fit(loss, "mean", a, Xs, ys, tol=max(1e-13, 1e-15 * a))
        wbar = m.coef_.mean(axis=0)
        spread.append(np.max(np.linalg.norm(m.coef_ - wbar, axis=1)) / np.linalg.norm(wbar))
        dist.append(max(np.abs(m.coef_ - w_pool).max(), np.abs(m.intercept_ - b_pool).max()))
    # the tasks' spread around the mean and the distance to the pooled fit both fall as 1/alpha
    for k in range(len(alphas) - 1):
        ratio = alphas[k + 1] / alphas[k]
        assert spread[k + 1] < 2.0 / ratio * spread[k]
        assert dist[k + 1] < 2.0 / ratio * dist[k]
    assert spread[-1] < (1e-7 if loss == "squared" else 1e-4)
    assert dist[-1] < (1e-6 if loss == "squared" else 1e-4)


@pytest.mark.parametrize("loss, solver", [("squared", "auto"), ("squared", "fista"),
                                          ("logistic", "auto")])
@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_graph_without_edges_gives_independent_tasks(loss, solver, alpha):
    Xs, ys = make_data(loss)
    m = fit(loss, rm.GraphLaplacian(np.zeros((T, T))), alpha, Xs, ys, solver=solver)
    coef, b = independent_fits(Xs, ys, loss)
    assert np.abs(coef).max() < 10  # the unregularized fits exist (no separable task)
    atol = 1e-8 if loss == "squared" else 1e-6
    assert_allclose(m.coef_, coef, rtol=0, atol=atol)
    assert_allclose(m.intercept_, b, rtol=0, atol=atol)
    assert m.kkt_residual_ <= TIGHT["tol"]


# a decomposition whose weight makes one part useless is the other part's penalty exactly:
# (penalty, reference penalty, alpha factor of the reference, the part that stays zero)
REDUCTIONS = {
    "dirty-1.5=l21": (rm.Dirty(own_weight=1.5), "l21", 1.0, "Q_"),
    "dirty-1e3=l21": (rm.Dirty(own_weight=1e3), "l21", 1.0, "Q_"),
    # own_weight < 1 / sqrt(T) = 0.577: the row norm never beats the entries
    "dirty-0.5=l1": (rm.Dirty(own_weight=0.5), "l1", 0.5, "P_"),
    "dirty-0.2=l1": (rm.Dirty(own_weight=0.2), "l1", 0.2, "P_"),
    "sparse_lowrank-1.5=trace": (rm.SparseLowRank(sparse_weight=1.5), "trace", 1.0, "P_"),
    "sparse_lowrank-1e3=trace": (rm.SparseLowRank(sparse_weight=1e3), "trace", 1.0, "P_"),
}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("case", list(REDUCTIONS))
def test_decomposition_reduces_to_one_part(loss, case):
    penalty, reference, factor, zero_part = REDUCTIONS[case]
    Xs, ys = make_data(loss)
    a = ALPHA[loss]
    d = fit(loss, penalty, a, Xs, ys)
    ref = fit(loss, reference, a * factor, Xs, ys)
    assert_allclose(d.coef_, ref.coef_, rtol=0, atol=1e-6)
    assert_allclose(d.intercept_, ref.intercept_, rtol=0, atol=1e-6)
    other = "Q_" if zero_part == "P_" else "P_"
    assert np.all(getattr(d, zero_part) == 0.0)
    assert_array_equal(getattr(d, other), d.coef_)
    assert d.objective_ == pytest.approx(ref.objective_, rel=1e-9)


@pytest.mark.parametrize("loss", LOSSES)
def test_sparse_lowrank_small_sparse_weight_is_l1(loss):
    Xs, ys = make_data(loss)
    a, g = ALPHA[loss], 0.9 / np.sqrt(P * T)
    d = fit(loss, rm.SparseLowRank(sparse_weight=g), a, Xs, ys)
    ref = fit(loss, "l1", a * g, Xs, ys)
    assert_allclose(d.coef_, ref.coef_, rtol=0, atol=1e-6)
    assert np.all(d.Q_ == 0.0)  # no low-rank part
    assert_array_equal(d.P_, d.coef_)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("alpha", [0.05, 2.0])
def test_complete_graph_equals_mean_regularized(loss, alpha):
    Xs, ys = make_data(loss)
    A = (np.ones((T, T)) - np.eye(T)) / (2 * T)
    g = fit(loss, rm.GraphLaplacian(A), alpha, Xs, ys)
    m = fit(loss, "mean", alpha, Xs, ys)
    assert_allclose(g.coef_, m.coef_, rtol=0, atol=1e-8)
    assert_allclose(g.intercept_, m.intercept_, rtol=0, atol=1e-8)
    assert g.objective_ == pytest.approx(m.objective_, rel=1e-10)
    # the factor matters: twice the weights is a different (stronger) coupling
    g2 = fit(loss, rm.GraphLaplacian(2 * A), alpha, Xs, ys)
    assert np.abs(g2.coef_ - m.coef_).max() > 1e-4


# ============================================================================ 2. structure
@pytest.mark.parametrize("loss", LOSSES)
def test_trace_singular_values_and_rank(loss):
    Xs, ys = make_data(loss)
    m = fit(loss, "trace", ALPHA[loss], Xs, ys)
    s = np.linalg.svd(m.coef_.T, compute_uv=False)
    assert_allclose(m.singular_values_, s, rtol=1e-10, atol=1e-12)
    assert m.rank_ == int(np.sum(s > 1e-8 * s.max()))
    assert 1 <= m.rank_ <= T


def test_trace_recovers_rank_two():
    rng = np.random.default_rng(1)
    p, sizes = 8, (50, 60, 45, 70, 55, 65)
    W = rng.standard_normal((p, 2)) @ rng.standard_normal((2, len(sizes)))
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [X @ W[:, t] + 0.2 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    am = rm.alpha_max(Xs, ys, penalty="trace")
    m = MultiTaskRegressor(penalty="trace", alpha=0.05 * am, **TIGHT).fit(Xs, ys)
    assert m.rank_ == 2
    assert np.linalg.matrix_rank(m.coef_, tol=1e-8 * m.singular_values_[0]) == 2
    assert np.all(m.singular_values_[2:] < 1e-10 * m.singular_values_[0])


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", ["dirty", "sparse_lowrank"])
def test_decomposition_parts_sum_to_coef(loss, name):
    Xs, ys = make_data(loss)
    m = fit(loss, STRUCTURED[name](), ALPHA[loss], Xs, ys)
    assert m.P_.shape == m.Q_.shape == m.coef_.shape == (T, P)
    assert_allclose(m.P_ + m.Q_, m.coef_, rtol=0, atol=1e-14)
    # the weights sit strictly between the thresholds: both parts are used
    assert np.any(m.P_ != 0.0) and np.any(m.Q_ != 0.0)


def _clustered_problem(seed=2):
    """6 tasks in two groups of 3 with near-identical weights, interleaved (0 3 1 4 2 5)."""
    rng = np.random.default_rng(seed)
    p = 6
    c1, c2 = 2.0 * rng.standard_normal(p), 2.0 * rng.standard_normal(p)
    W = np.column_stack([c + 0.05 * rng.standard_normal(p) for c in (c1, c2, c1, c2, c1, c2)])
    Xs = [rng.standard_normal((n, p)) for n in (40, 55, 35, 60, 45, 50)]
    ys = [X @ W[:, t] + 0.3 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    return Xs, ys, [0, 1, 0, 1, 0, 1]


def _partition(labels):
    return {frozenset(np.flatnonzero(np.asarray(labels) == v)) for v in np.unique(labels)}


@pytest.mark.parametrize("alpha", [0.01, 1.0])
@pytest.mark.parametrize("eta", [0.1, 1.0])
def test_clustered_recovers_task_groups(alpha, eta):
    Xs, ys, groups = _clustered_problem()
    pen = rm.Clustered(k=2, eta=eta)
    m = MultiTaskRegressor(penalty=pen, alpha=alpha, **TIGHT).fit(Xs, ys)
    assert _partition(m.task_clusters_) == _partition(groups)
    assert m.task_clusters_.shape == (6,)
    M = m.cluster_matrix_
    assert M.shape == (6, 6)
    assert_allclose(M, M.T, rtol=0, atol=1e-12)
    ev = np.linalg.eigvalsh(M)
    assert ev.min() >= -1e-10 and ev.max() <= 1 + 1e-10
    assert np.trace(M) == pytest.approx(2.0, abs=1e-10)
    # M is the minimizer of tr(W (eta I + M)^-1 W^T): no worse than the true-group projector
    W = m.coef_.T

    def value(Mx):
        return np.trace(W @ np.linalg.solve(eta * np.eye(6) + Mx, W.T))

    E = np.zeros((6, 2))
    E[np.arange(6), groups] = 1.0
    projector = E @ np.diag(1.0 / E.sum(axis=0)) @ E.T
    assert value(M) <= value(projector) * (1 + 1e-12)
    assert value(M) <= value(np.eye(6) * 2 / 6) * (1 + 1e-12)
    pen_value = pen.value(W, alpha)
    assert pen_value == pytest.approx(alpha * eta * (1 + eta) * value(M), rel=1e-8)


def test_clustered_k_three_and_classifier():
    Xs, ys = make_data("logistic")
    m = MultiTaskClassifier(penalty=rm.Clustered(k=3), alpha=0.02, **TIGHT).fit(Xs, ys)
    assert np.trace(m.cluster_matrix_) == pytest.approx(3.0, abs=1e-10)
    assert sorted(m.task_clusters_) == [0, 1, 2]  # k = T: every task is its own cluster
    m = MultiTaskClassifier(penalty=rm.Clustered(k=1), alpha=0.02, **TIGHT).fit(Xs, ys)
    assert np.trace(m.cluster_matrix_) == pytest.approx(1.0, abs=1e-10)
    assert_array_equal(m.task_clusters_, [0, 0, 0])


def _has(m):
    return {a for a in ALL_STRUCTURE_ATTRS | {"dual_gap_", "kkt_residual_"} if hasattr(m, a)}


def test_refit_with_another_penalty_drops_old_structure():
    Xs, ys = make_data("squared")
    m = MultiTaskRegressor(penalty="trace", alpha=0.1)
    steps = [
        ("trace", {"singular_values_", "rank_", "dual_gap_"}),
        ("dirty", {"P_", "Q_", "dual_gap_"}),
        ("clustered", {"cluster_vectors_", "cluster_weights_", "cluster_rest_",
                       "task_clusters_", "kkt_residual_"}),
        ("sparse_lowrank", {"P_", "Q_", "dual_gap_"}),
        ("mean", {"kkt_residual_"}),
        ("l21", {"dual_gap_"}),
        ("trace", {"singular_values_", "rank_", "dual_gap_"}),
        (rm.GraphLaplacian(rm.chain_graph(T)), {"kkt_residual_"}),
    ]
    for pen, expected in steps:
        m.set_params(penalty=pen).fit(Xs, ys)
        assert _has(m) == expected, pen


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_certificate_kind(loss, name):
    Xs, ys = make_data(loss)
    m = EST[loss](penalty=STRUCTURED[name](), alpha=ALPHA[loss], tol=1e-8).fit(Xs, ys)
    if name in DUAL_GAP:
        assert not hasattr(m, "kkt_residual_")
        # tol is relative to the objective at W = 0 with fitted intercepts
        if loss == "squared":
            P0 = sum(0.5 * np.var(y) for y in ys)
        else:
            P0 = sum(-(y.mean() * np.log(y.mean()) + (1 - y.mean()) * np.log(1 - y.mean()))
                     for y in ys)
        assert m.objective_ <= P0
        assert 0.0 <= m.dual_gap_ <= 1e-8 * P0
    else:
        assert not hasattr(m, "dual_gap_")
        assert 0.0 <= m.kkt_residual_ <= 1e-8
    assert set(ALL_STRUCTURE_ATTRS & set(vars(m))) == STRUCTURE_ATTRS.get(name, set())


# ============================================================================ 3. bad input
def _shared():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 4)), rng.standard_normal((30, T))


@pytest.mark.parametrize("A, why", [
    (np.array([[0, 1, 0], [0.5, 0, 1], [0, 1, 0]]), "symmetric"),
    (np.array([[0, -1, 0], [-1, 0, 1], [0, 1, 0]]), "negative"),
    (np.array([[0, np.nan, 0], [np.nan, 0, 1], [0, 1, 0]]), "NaN"),
    (np.array([[0, np.inf, 0], [np.inf, 0, 1], [0, 1, 0]]), "infinite"),
    (rm.chain_graph(T + 1), "shape"),
    (rm.chain_graph(T - 1), "shape"),
    (np.ones((T, T + 1)), "square"),
    (np.ones(T), "square"),
    ([["a", "b", "c"]] * 3, "numeric"),
])
@pytest.mark.parametrize("est", [MultiTaskRegressor, MultiTaskClassifier])
def test_graph_bad_adjacency(A, why, est):
    X, Y = _shared()
    if est is MultiTaskClassifier:
        Y = (Y > 0).astype(float)
    with pytest.raises(ValueError, match=r"\bA\b") as exc:
        est(penalty=rm.GraphLaplacian(A)).fit(X, Y)
    assert why in str(exc.value)
    with pytest.raises(ValueError, match=r"\bA\b"):
        rm.alpha_max(X, Y, penalty=rm.GraphLaplacian(A))


@pytest.mark.parametrize("penalty, name", [
    (rm.Clustered(k=0), "k"),
    (rm.Clustered(k=T + 1), "k"),
    (rm.Clustered(k=1.5), "k"),
    (rm.Clustered(k="2"), "k"),
    (rm.Clustered(k=-1), "k"),
    (rm.Clustered(eta=0), "eta"),
    (rm.Clustered(eta=-1.0), "eta"),
    (rm.Clustered(eta=np.inf), "eta"),
    (rm.Dirty(own_weight=0), "own_weight"),
    (rm.Dirty(own_weight=-0.5), "own_weight"),
    (rm.Dirty(own_weight=np.nan), "own_weight"),
    (rm.SparseLowRank(sparse_weight=0), "sparse_weight"),
    (rm.SparseLowRank(sparse_weight=-2), "sparse_weight"),
    (rm.SparseLowRank(sparse_weight="1"), "sparse_weight"),
    (rm.MeanRegularized(ridge=-0.1), "ridge"),
    (rm.MeanRegularized(ridge=np.nan), "ridge"),
])
@pytest.mark.parametrize("est", [MultiTaskRegressor, MultiTaskClassifier])
def test_bad_penalty_parameters_are_named(penalty, name, est):
    X, Y = _shared()
    if est is MultiTaskClassifier:
        Y = (Y > 0).astype(float)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        est(penalty=penalty).fit(X, Y)


def test_good_boundary_parameters_are_accepted():
    X, Y = _shared()
    for pen in (rm.Clustered(k=1), rm.Clustered(k=T), rm.Clustered(k=np.int64(2)),
                rm.MeanRegularized(ridge=0), rm.Dirty(own_weight=1e-3),
                rm.SparseLowRank(sparse_weight=1e3)):
        MultiTaskRegressor(penalty=pen, alpha=0.1).fit(X, Y)


@pytest.mark.parametrize("name", ["graph", "laplacian"])
def test_graph_by_name_says_the_graph_is_needed(name):
    X, Y = _shared()
    for est in (MultiTaskRegressor, MultiTaskClassifier):
        with pytest.raises(ValueError, match=r"GraphLaplacian\(A\)") as exc:
            est(penalty=name).fit(X, (Y > 0) if est is MultiTaskClassifier else Y)
        assert "graph" in str(exc.value)
    with pytest.raises(ValueError, match=r"GraphLaplacian\(A\)"):
        rm.alpha_max(X, Y, penalty=name)


@pytest.mark.parametrize("loss", LOSSES)
def test_dirty_is_row_separable_and_solved_by_bcd(loss):
    """The dirty model as a function of W is a row-wise infimal convolution: block coordinate
    descent (the default) and FISTA reach the same optimum, split the same way."""
    Xs, ys = make_data(loss)
    pen = rm.Dirty(own_weight=0.7)
    bcd = EST[loss](penalty=pen, alpha=ALPHA[loss], solver="bcd", **TIGHT).fit(Xs, ys)
    auto = EST[loss](penalty=pen, alpha=ALPHA[loss], **TIGHT).fit(Xs, ys)
    fista = EST[loss](penalty=pen, alpha=ALPHA[loss], solver="fista", **TIGHT).fit(Xs, ys)
    np.testing.assert_array_equal(auto.coef_, bcd.coef_)  # "auto" is block coordinate descent
    assert bcd.objective_ == pytest.approx(fista.objective_, rel=1e-9)
    assert_allclose(bcd.coef_, fista.coef_, rtol=0, atol=1e-5)
    assert_allclose(bcd.P_ + bcd.Q_, bcd.coef_, rtol=0, atol=1e-15)
    assert_allclose(bcd.P_, fista.P_, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", [n for n in STRUCTURED if n != "dirty"])
def test_bcd_solver_refuses_structured_penalties(name):
    X, Y = _shared()
    with pytest.raises(ValueError, match=r"solver='bcd'.*(fista|auto)"):
        MultiTaskRegressor(penalty=STRUCTURED[name](), solver="bcd").fit(X, Y)
    with pytest.raises(ValueError, match=r"solver='bcd'"):
        MultiTaskClassifier(penalty=STRUCTURED[name](), solver="bcd").fit(X, Y > 0)


@pytest.mark.parametrize("penalty", ["mean", rm.MeanRegularized(ridge=1.0),
                                     rm.GraphLaplacian(rm.chain_graph(T)), "clustered",
                                     rm.Clustered(k=1)])
@pytest.mark.parametrize("loss", LOSSES)
def test_alpha_max_refused_where_no_alpha_gives_zero(penalty, loss):
    X, Y = _shared()
    if loss == "logistic":
        Y = (Y > 0).astype(float)
    with pytest.raises(ValueError, match="alpha_max"):
        rm.alpha_max(X, Y, penalty=penalty, loss=loss)


def test_graph_helpers():
    A = rm.chain_graph(4, weight=2.0)
    assert sp.issparse(A) and A.format == "csr" and A.nnz == 6
    assert_array_equal(A.toarray(), [[0, 2, 0, 0], [2, 0, 2, 0], [0, 2, 0, 2], [0, 0, 2, 0]])
    assert_array_equal(rm.chain_graph(1).toarray(), [[0.0]])
    Z = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    K = rm.knn_graph(Z, k=1)
    assert sp.issparse(K) and K.format == "csr"
    K = K.toarray()
    assert_array_equal(K, K.T)
    assert np.all(np.diag(K) == 0)
    assert K[0, 1] == K[2, 3] == 1 and K[3, 4] == 1 and K[0, 2] == 0
    H = rm.knn_graph(Z, k=2, weights="heat").toarray()
    assert_allclose(H, H.T)
    assert np.all((H >= 0) & (H <= 1))
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_tasks"):
            rm.chain_graph(bad)
    with pytest.raises(ValueError, match="weight"):
        rm.chain_graph(3, weight=-1)
    for k in (5, 6, 0):  # 5 tasks: k must be in 1..4
        with pytest.raises(ValueError, match=r"\bk\b"):
            rm.knn_graph(Z, k=k)
    with pytest.raises(ValueError, match="weights"):
        rm.knn_graph(Z, k=2, weights="gaussian")
    with pytest.raises(ValueError, match="Z"):
        rm.knn_graph(np.array([[0.0], [np.nan], [1.0]]), k=1)
    # the graphs feed GraphLaplacian directly
    X, Y = _shared()
    B = rm.knn_graph(np.random.default_rng(0).standard_normal((T, 2)), k=1)
    MultiTaskRegressor(penalty=rm.GraphLaplacian(B), alpha=0.1).fit(X, Y)


# ============================================================================ 4. forms and API
def _sparsified(Xs):
    return [np.where(np.abs(X) > 0.4, X, 0.0) for X in Xs]


def _long(Xs, ys, seed=3):
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    perm = np.random.default_rng(seed).permutation(len(task))
    X = np.vstack(Xs)[perm] if not sp.issparse(Xs[0]) else sp.vstack(Xs).tocsr()[perm]
    return X, np.concatenate(ys)[perm], task[perm]


def _shared_with_missing(loss, seed=4, n=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P)) + 0.2
    F = X @ rng.standard_normal((P, T)) + np.arange(T)
    if loss == "squared":
        Y = F + 0.5 * rng.standard_normal((n, T))
    else:
        Y = (F + 1.5 * rng.standard_normal((n, T)) > 0).astype(float)
    Y[[2, 7, 11], 1] = np.nan
    Y[5, 2] = np.nan
    return X, Y


def _close(a, b, atol):
    assert_allclose(a.coef_, b.coef_, rtol=0, atol=atol)
    assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=atol)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_every_input_form_gives_the_same_fit(loss, name):
    est, a = EST[loss], ALPHA[loss]

    def model():
        return est(penalty=STRUCTURED[name](), alpha=a, **TIGHT)

    Xs, ys = make_data(loss)
    Xs = _sparsified(Xs)
    ref = model().fit(Xs, ys)
    assert ref.coef_.shape == (T, P) and ref.intercept_.shape == (T,)
    X, y, task = _long(Xs, ys)
    _close(model().fit(X, y, task=task), ref, 1e-6)
    _close(model().fit([sp.csr_matrix(Xt) for Xt in Xs], ys), ref, 1e-6)
    Xsp, ysp, tasksp = _long([sp.csc_matrix(Xt) for Xt in Xs], ys)
    _close(model().fit(Xsp.tocsc(), ysp, task=tasksp), ref, 1e-6)

    # shared design with missing labels == the per-task lists of the observed rows
    Xsh, Y = _shared_with_missing(loss)
    shared = model().fit(Xsh, Y)
    obs = [~np.isnan(Y[:, t]) for t in range(T)]
    lists = model().fit([Xsh[o] for o in obs], [Y[o, t] for t, o in enumerate(obs)])
    _close(shared, lists, 1e-6)
    _close(model().fit(sp.csr_matrix(Xsh), Y), lists, 1e-6)

    # structure attributes agree too (the decompositions and clusters are unique here)
    for attr in STRUCTURE_ATTRS.get(name, ()):
        assert_allclose(np.asarray(getattr(shared, attr), dtype=float),
                        np.asarray(getattr(lists, attr), dtype=float), rtol=0, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_predict_shapes(loss, name):
    est = EST[loss](penalty=STRUCTURED[name](), alpha=ALPHA[loss])
    Xs, ys = make_data(loss)
    m = est.fit(Xs, ys)
    out = m.predict(Xs)
    assert isinstance(out, list) and [len(o) for o in out] == list(SIZES)
    X, y, task = _long(Xs, ys)
    assert m.predict(X, task=task).shape == (len(y),)
    assert m.predict(X).shape == (len(y), T)  # 2-D X alone after a multi-task fit
    if loss == "squared":
        for t, (Xt, o) in enumerate(zip(Xs, out, strict=True)):
            assert_allclose(o, Xt @ m.coef_[t] + m.intercept_[t], rtol=1e-12, atol=1e-12)
    else:
        proba = m.predict_proba(Xs)
        assert [pr.shape for pr in proba] == [(n, 2) for n in SIZES]
        assert_allclose(np.vstack(proba).sum(axis=1), 1.0)
        assert set(np.concatenate(out)) <= {0, 1}
        assert m.decision_function(X, task=task).shape == (len(y),)
    Xsh, Y = _shared_with_missing(loss)
    m.fit(Xsh, Y)
    assert m.predict(Xsh).shape == Y.shape


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_warm_start_reaches_the_cold_solution(loss, name):
    Xs, ys = make_data(loss)
    a = ALPHA[loss]
    kw = dict(tol=1e-14, max_iter=50_000)
    cold = EST[loss](penalty=STRUCTURED[name](), alpha=a, **kw).fit(Xs, ys)
    m = EST[loss](penalty=STRUCTURED[name](), alpha=2 * a, warm_start=True, **kw).fit(Xs, ys)
    m.set_params(alpha=a).fit(Xs, ys)  # from the 2a solution
    _close(m, cold, 1e-6)
    for attr in STRUCTURE_ATTRS.get(name, ()):
        assert_allclose(np.asarray(getattr(m, attr), dtype=float),
                        np.asarray(getattr(cold, attr), dtype=float), rtol=0, atol=1e-6)
    # a shape change falls back to a cold start
    m.fit([X[:, :-1] for X in Xs], ys)
    assert m.coef_.shape == (T, P - 1)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(STRUCTURED))
def test_warm_start_at_the_solution_is_cheap(loss, name):
    # Dirty / SparseLowRank restart from their fitted parts P_, Q_, not from (coef_, 0)
    Xs, ys = make_data(loss)
    kw = dict(tol=1e-12, max_iter=50_000)
    m = EST[loss](penalty=STRUCTURED[name](), alpha=ALPHA[loss], warm_start=True, **kw)
    cold_iter = m.fit(Xs, ys).n_iter_
    coef = m.coef_.copy()
    m.fit(Xs, ys)
    assert_allclose(m.coef_, coef, rtol=0, atol=1e-6)
    assert m.n_iter_ <= max(10, cold_iter // 2)


def test_string_names_are_the_default_objects():
    Xs, ys = make_data("squared")
    for name, cls in NAMES.items():
        by_name = MultiTaskRegressor(penalty=name, alpha=0.1, **TIGHT).fit(Xs, ys)
        by_obj = MultiTaskRegressor(penalty=cls(), alpha=0.1, **TIGHT).fit(Xs, ys)
        assert_array_equal(by_name.coef_, by_obj.coef_)
        assert by_name.penalty == name  # the parameter is kept as given


def test_clone_get_params_set_params():
    est = MultiTaskRegressor(penalty=rm.Clustered(k=2, eta=0.5), alpha=0.1)
    params = est.get_params(deep=True)
    assert params["penalty__k"] == 2 and params["penalty__eta"] == 0.5
    est.set_params(penalty__k=3, penalty__eta=2.0)
    assert est.penalty.k == 3 and est.penalty.eta == 2.0
    c = clone(est)
    assert c.penalty is not est.penalty and c.penalty == est.penalty
    assert c.get_params()["penalty__k"] == 3
    Xs, ys = make_data("squared")
    assert np.trace(c.fit(Xs, ys).cluster_matrix_) == pytest.approx(3.0, abs=1e-10)
    assert not hasattr(est, "coef_")  # the clone's fit left the original alone

    for pen, key, value in [
        (rm.Dirty(own_weight=0.7), "own_weight", 2.0),
        (rm.SparseLowRank(sparse_weight=0.4), "sparse_weight", 0.1),
        (rm.MeanRegularized(ridge=0.0), "ridge", 1.0),
        (rm.GraphLaplacian(rm.chain_graph(T)), "A", np.ones((T, T)) - np.eye(T)),
    ]:
        est = MultiTaskClassifier(penalty=pen)
        assert f"penalty__{key}" in est.get_params()
        c = clone(est)
        assert c.penalty == est.penalty and c.penalty is not est.penalty
        c.set_params(**{f"penalty__{key}": value})
        assert_array_equal(getattr(c.penalty, key), value)
        assert c.penalty != est.penalty  # the original's penalty is untouched
    with pytest.raises(ValueError, match="no parameter"):
        MultiTaskRegressor(penalty=rm.Trace()).set_params(penalty__k=3)


def test_set_params_graph_after_fit_uses_the_new_graph():
    """Regression: the graph's eigendecomposition was cached by repr(), which shows A only by its
    shape, so a refit after ``set_params(penalty__A=...)`` used the old graph in the prox."""
    Xs, ys = make_data("logistic")
    A2 = 5.0 * (np.ones((T, T)) - np.eye(T))
    m = MultiTaskClassifier(penalty=rm.GraphLaplacian(rm.chain_graph(T)), alpha=0.1, **TIGHT)
    m.fit(Xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m.set_params(penalty__A=A2).fit(Xs, ys)
        fresh = MultiTaskClassifier(penalty=rm.GraphLaplacian(A2), alpha=0.1, **TIGHT)
        fresh.fit(Xs, ys)
    _close(m, fresh, 1e-8)
    # editing A in place is seen as well
    m.penalty.A[:] = rm.chain_graph(T).toarray()
    m.fit(Xs, ys)
    ref = MultiTaskClassifier(penalty=rm.GraphLaplacian(rm.chain_graph(T)), alpha=0.1, **TIGHT)
    _close(m, ref.fit(Xs, ys), 1e-8)


def test_grid_search_over_a_penalty_parameter():
    Xs, ys = make_data("squared")
    X, y, task = _long(Xs, ys)
    grid = [0.3, 0.7, 2.0]
    cv = KFold(3, shuffle=True, random_state=0)
    base = MultiTaskRegressor(penalty=rm.Dirty(own_weight=1.0), alpha=0.05)
    with sklearn.config_context(enable_metadata_routing=True):
        gs = GridSearchCV(base, {"penalty__own_weight": grid}, cv=cv).fit(X, y, task=task)
        expected = [cross_val_score(
            MultiTaskRegressor(penalty=rm.Dirty(own_weight=g), alpha=0.05), X, y,
            params={"task": task}, cv=cv).mean() for g in grid]
    assert_allclose(gs.cv_results_["mean_test_score"], expected, rtol=1e-10)
    best = gs.best_params_["penalty__own_weight"]
    assert best == grid[int(np.argmax(expected))]
    assert gs.best_estimator_.penalty.own_weight == best
    assert hasattr(gs.best_estimator_, "P_") and hasattr(gs.best_estimator_, "Q_")
    assert base.penalty.own_weight == 1.0 and not hasattr(base, "coef_")


def _fitted_attrs(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def _equal(a, b):
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a, b))
    return type(a) is type(b) and a == b


ROUND_TRIP = {**STRUCTURED, **{f"str:{n}": (lambda n=n: n) for n in NAMES},
              "knn_graph": lambda: rm.GraphLaplacian(rm.knn_graph(
                  np.arange(T, dtype=float)[:, None], k=1, weights="heat"))}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_save_load_round_trip(tmp_path, loss, name):
    Xs, ys = make_data(loss)
    model = EST[loss](penalty=ROUND_TRIP[name](), alpha=ALPHA[loss]).fit(Xs, ys)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = rm.load(path)
    assert type(loaded) is type(model)
    assert type(loaded.penalty) is type(model.penalty)
    assert loaded.penalty == model.penalty
    if isinstance(model.penalty, rm.GraphLaplacian):  # a sparse graph stays sparse
        assert sp.issparse(loaded.penalty.A) and sp.issparse(model.penalty.A)
        assert_array_equal(loaded.penalty.A.toarray(), model.penalty.A.toarray())
    a, b = _fitted_attrs(model), _fitted_attrs(loaded)
    assert a.keys() == b.keys()
    for k in a:
        assert _equal(a[k], b[k]), k
    key = name.removeprefix("str:")
    assert STRUCTURE_ATTRS.get(key, set()) <= b.keys()
    methods = ["predict"] + (["predict_proba", "decision_function"] if loss == "logistic"
                             else [])
    for meth in methods:
        assert _equal(getattr(model, meth)(Xs), getattr(loaded, meth)(Xs)), meth
    # the loaded model refits to the same solution (its penalty, graph included, is complete)
    refit = loaded.fit(Xs, ys)
    assert_allclose(refit.coef_, model.coef_, rtol=0, atol=1e-12)


# ============================================================================ 5. sklearn checks
@parametrize_with_checks([MultiTaskRegressor(penalty="trace"),
                          MultiTaskClassifier(penalty=rm.Dirty())])
def test_sklearn_compatible_structured(estimator, check):
    check(estimator)


def test_module_names_are_public():
    for name in ("Trace", "MeanRegularized", "GraphLaplacian", "Clustered", "Dirty",
                 "SparseLowRank", "chain_graph", "knn_graph"):
        assert name in rm.__all__ and hasattr(rm, name)
    assert re.search(r"GraphLaplacian\(A=<sparse \(3, 3\)>\)",
                     repr(rm.GraphLaplacian(rm.chain_graph(3))))
    assert re.search(r"GraphLaplacian\(A=<array \(3, 3\)>\)",
                     repr(rm.GraphLaplacian(rm.chain_graph(3).toarray())))


def test_graph_given_as_a_sparse_adjacency_matrix():
    Xs, ys = make_data("squared")
    A = rm.chain_graph(len(Xs))
    dense = fit("squared", rm.GraphLaplacian(A.toarray()), ALPHA["squared"], Xs, ys)
    sparse_fit = fit("squared", rm.GraphLaplacian(A), ALPHA["squared"], Xs, ys)
    assert_array_equal(sparse_fit.coef_, dense.coef_)
    assert rm.GraphLaplacian(A) == rm.GraphLaplacian(A.toarray())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("form", ["shared", "lists", "sparse"])
def test_dirty_screening_is_safe(loss, form):
    """Gap-safe rule of the dirty model: a feature is dropped only when its correlations are
    inside both balls with the safe margin. At early iterates, perturbed optima and the
    optimum, no feature of the optimum's support is dropped; near the optimum most zero
    features are (so the rule is not vacuous)."""
    import scipy.sparse as sp

    from regmtl.problem import make_data, make_datafit
    from regmtl.solvers import reference, solve
    from regmtl.solvers.certificates import certify as gaps
    from regmtl.solvers.certificates.screening import safe_radius, screen
    from regmtl.solvers.parts.moments import feature_moments

    rng = np.random.default_rng(1)
    if form == "shared":
        X, Y = rng.standard_normal((60, 25)), None
        W = np.zeros((25, 3))
        W[:3] = rng.standard_normal((3, 3))
        W[7, 1] = 2.0
        F = X @ W + 0.3 * rng.standard_normal((60, 3))
        Y = F if loss == "squared" else (F > 0).astype(float)
    else:
        X = [rng.standard_normal((n, 25)) for n in (30, 45, 60)]
        if form == "sparse":
            X = [sp.csr_matrix(x * (rng.random(x.shape) < 0.5)) for x in X]
        W = np.zeros((25, 3))
        W[:3] = rng.standard_normal((3, 3))
        W[7, 1] = 2.0
        F = [x @ W[:, t] + 0.3 * rng.standard_normal(x.shape[0]) for t, x in enumerate(X)]
        Y = F if loss == "squared" else [(f > 0).astype(float) for f in F]
    data = make_data(X, Y, loss=loss)
    datafit = make_datafit(loss)
    pen = rm.Dirty(own_weight=0.7)
    ref = reference(data, datafit, True)
    L = feature_moments(data, data.c, True)[1]
    dropped_near = zeros_near = 0
    for frac in (1.5, 4, 20):
        alpha = pen.alpha_max(ref.G0) / frac
        l1, l2, group = pen.bcd_params(alpha)
        opt = solve(data, datafit, pen, alpha, tol=1e-12, max_iter=100_000,
                    options=dict(screening=False))
        support = np.flatnonzero(np.any(opt.W != 0.0, axis=1))
        points = []
        for max_iter in (1, 3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                it = solve(data, datafit, pen, alpha, tol=1e-14, max_iter=max_iter)
            points.append((it.W, it.b))
        for eps in (1e-2, 1e-6):
            points.append((opt.W + eps * rng.standard_normal(opt.W.shape), opt.b))
        points.append((opt.W, opt.b))
        for k, (Wp, b) in enumerate(points):
            S = datafit.state(data.y, data.linear(Wp, b))
            gaps.fit_intercepts(data, datafit, S, b.copy())
            f = datafit.scores(data.y, S)
            gap, _, _, s, G = gaps.duality_gap_terms(data, datafit, pen, alpha, Wp, f,
                                                             True)
            out = screen(s * G, L, safe_radius(gap, datafit.dual_strong_concavity), l1,
                         group, l2)
            assert not out[support].any(), (frac, k)
            if k == len(points) - 1:
                dropped_near += int(out.sum())
                zeros_near += 25 - len(support)
    assert dropped_near >= 0.5 * zeros_near
