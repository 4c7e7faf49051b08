"""Synthetic multi-task generators: reproducibility, shapes, the promised structure, noise."""

from __future__ import annotations

import numpy as np
import pytest

from regmtl.datasets import make_multitask_classification, make_multitask_regression

SIZES = [15, 40, 70]


def _mean_cosine(W: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct rows (tasks) of W."""
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    C = U @ U.T
    T = W.shape[0]
    return float((C.sum() - np.trace(C)) / (T * (T - 1)))


# --------------------------------------------------------------------- reproducibility, shapes
@pytest.mark.parametrize("make", [make_multitask_regression, make_multitask_classification])
@pytest.mark.parametrize("structure", ["shared_support", "subspace", "clustered", "independent"])
def test_same_seed_same_problem_other_seed_other_problem(make, structure):
    kw = dict(n_tasks=3, n_samples=SIZES, n_features=6, structure=structure, n_informative=2,
              rank=2, n_clusters=2, relatedness=0.5)
    a, b, c = make(**kw, random_state=0), make(**kw, random_state=0), make(**kw, random_state=1)
    for name in ("coef", "intercept"):
        np.testing.assert_array_equal(a[name], b[name])
    for Xa, Xb, ya, yb in zip(a.X, b.X, a.y, b.y, strict=True):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a.coef, c.coef)
    assert not np.array_equal(a.X[0], c.X[0])
    # a Generator and a RandomState are accepted and give the same problem when reseeded
    g1 = make(**kw, random_state=np.random.default_rng(5))
    g2 = make(**kw, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(g1.coef, g2.coef)
    r1 = make(**kw, random_state=np.random.RandomState(5))
    r2 = make(**kw, random_state=np.random.RandomState(5))
    np.testing.assert_array_equal(r1.y[2], r2.y[2])


def test_shapes_with_different_task_sizes():
    d = make_multitask_regression(3, SIZES, 7, n_informative=3, random_state=0)
    assert [X.shape for X in d.X] == [(n, 7) for n in SIZES]
    assert [y.shape for y in d.y] == [(n,) for n in SIZES]
    assert all(X.dtype == np.float64 for X in d.X) and all(y.dtype == np.float64 for y in d.y)
    assert d.coef.shape == (3, 7) and d.intercept.shape == (3,)
    assert d.task_names == ["task_1", "task_2", "task_3"]
    assert len(d.feature_names) == 7 and d.feature_names[0] == "x_1"
    assert d.kind == "regression" and d.source == "synthetic" and d.structure == "shared_support"
    assert "3 tasks" in d.DESCR and "relatedness=0.8" in d.DESCR


def test_shared_design():
    d = make_multitask_regression(4, 30, 5, n_informative=2, shared_design=True, random_state=0)
    assert d.X_shared.shape == (30, 5) and d.Y.shape == (30, 4)
    assert all(X is d.X_shared for X in d.X)
    for t in range(4):
        np.testing.assert_array_equal(d.Y[:, t], d.y[t])
    c = make_multitask_classification(4, 30, 5, n_informative=2, shared_design=True,
                                      random_state=0)
    assert c.Y.shape == (30, 4) and set(np.unique(c.Y)) == {0, 1}


# --------------------------------------------------------------------- structures
@pytest.mark.parametrize("relatedness", [0.0, 0.5, 1.0])
def test_shared_support_rows_exact(relatedness):
    d = make_multitask_regression(5, 10, 12, n_informative=4, relatedness=relatedness,
                                  random_state=1)
    assert d.support.shape == (4,) and np.all(np.diff(d.support) > 0)
    nonzero_features = np.flatnonzero(np.any(d.coef != 0, axis=0))
    np.testing.assert_array_equal(nonzero_features, d.support)
    assert np.all(d.coef[:, d.support] != 0)  # every task uses every shared feature


def test_subspace_rank():
    d = make_multitask_regression(8, 5, 20, structure="subspace", rank=3, relatedness=0.5,
                                  random_state=0)
    s = np.linalg.svd(d.coef, compute_uv=False)
    assert np.sum(s > 1e-10 * s[0]) == 3
    np.testing.assert_allclose(d.basis @ d.basis.T, np.eye(3), atol=1e-12)
    # the task weights lie in the span of the basis
    np.testing.assert_allclose(d.coef @ d.basis.T @ d.basis, d.coef, atol=1e-12)
    same = make_multitask_regression(8, 5, 20, structure="subspace", rank=3, relatedness=1.0,
                                     random_state=0)
    assert np.linalg.matrix_rank(same.coef) == 1


def test_clustered_groups():
    d = make_multitask_regression(9, 5, 6, structure="clustered", n_clusters=3,
                                  relatedness=1.0, random_state=0)
    assert sorted(np.bincount(d.clusters)) == [3, 3, 3]
    for s in range(9):
        for t in range(9):
            same = np.array_equal(d.coef[s], d.coef[t])
            assert same == (d.clusters[s] == d.clusters[t])
    # relatedness < 1: tasks are nearer their own cluster's mean than another's
    n = make_multitask_regression(30, 5, 40, structure="clustered", n_clusters=3,
                                  relatedness=0.9, random_state=0)
    means = np.stack([n.coef[n.clusters == g].mean(axis=0) for g in range(3)])
    dist = np.linalg.norm(n.coef[:, None, :] - means[None], axis=2)
    np.testing.assert_array_equal(dist.argmin(axis=1), n.clusters)


def test_independent_supports():
    d = make_multitask_regression(6, 5, 30, structure="independent", n_informative=3,
                                  random_state=0)
    assert d.support.shape == (6, 3)
    for t in range(6):
        np.testing.assert_array_equal(np.flatnonzero(d.coef[t]), d.support[t])
    assert len({tuple(s) for s in d.support}) > 1


def test_relatedness_one_gives_identical_tasks():
    d = make_multitask_regression(5, 5, 10, n_informative=4, relatedness=1.0, random_state=0)
    np.testing.assert_array_equal(d.coef, np.broadcast_to(d.coef[0], d.coef.shape))


@pytest.mark.parametrize("structure", ["shared_support", "subspace", "clustered"])
def test_relatedness_sets_task_similarity(structure):
    # E[w_s . w_t] / E||w_t||^2 = rho^2 for tasks sharing c. The mean pairwise cosine of one
    # problem moves with its one shared draw (sd about 0.05, 0.1 for a rank-10 subspace), so
    # average 20 problems of 100 tasks over 50 active features: standard error <= 0.03 around
    # rho^2 = 0.36. With rho = 0 only independent parts are left: ~0 (sd of one mean < 0.003).
    kw = dict(n_tasks=100, n_samples=1, n_features=50, structure=structure, n_informative=50,
              rank=10, n_clusters=1)
    unrelated = make_multitask_regression(**kw, relatedness=0.0, random_state=0)
    assert abs(_mean_cosine(unrelated.coef)) < 0.02
    related = [_mean_cosine(make_multitask_regression(**kw, relatedness=0.6,
                                                      random_state=seed).coef)
               for seed in range(20)]
    assert abs(np.mean(related) - 0.36) < 0.06


# --------------------------------------------------------------------- noise and labels
def test_noise_level_is_the_residual_std():
    bias = [1.0, -2.0, 0.5]
    d = make_multitask_regression(3, [400, 600, 800], 10, n_informative=5, noise=0.7,
                                  bias=bias, random_state=0)
    np.testing.assert_array_equal(d.intercept, bias)
    res = np.concatenate([y - X @ w - b
                          for X, y, w, b in zip(d.X, d.y, d.coef, d.intercept, strict=True)])
    np.testing.assert_allclose(res.std(), 0.7, rtol=0.1)
    exact = make_multitask_regression(2, 20, 4, n_informative=2, noise=0.0, random_state=0)
    for X, y, w in zip(exact.X, exact.y, exact.coef, strict=True):
        np.testing.assert_allclose(y, X @ w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("structure", ["shared_support", "subspace", "clustered", "independent"])
def test_classification_both_classes_and_bayes_rule_beats_chance(structure):
    d = make_multitask_classification(8, 200, 20, structure=structure, n_informative=5,
                                      relatedness=0.5, random_state=0)
    assert d.kind == "binary"
    correct = []
    for X, y, w, b in zip(d.X, d.y, d.coef, d.intercept, strict=True):
        assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
        correct.append((X @ w + b > 0).astype(int) == y)
    # log-odds of sd 3: the Bayes rule is right about 80% of the time (chance: ~50%)
    assert np.mean(np.concatenate(correct)) > 0.72
    log_odds = np.concatenate([X @ w for X, w in zip(d.X, d.coef, strict=True)])
    np.testing.assert_allclose(log_odds.std(), 3.0, rtol=0.25)


def test_classification_keeps_both_classes_in_extreme_tasks():
    d = make_multitask_classification(5, 2, 3, n_informative=2, bias=30.0, flip_y=0.0,
                                      random_state=0)
    for y in d.y:
        np.testing.assert_array_equal(np.sort(y), [0, 1])


# --------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("kwargs, name", [
    (dict(n_tasks=0), "n_tasks"),
    (dict(n_samples=-5), "n_samples"),
    (dict(n_samples=[10, 10]), "n_samples"),
    (dict(n_samples=[10] * 9 + [0]), r"n_samples\[9\]"),
    (dict(n_features=0), "n_features"),
    (dict(n_informative=60), "n_informative"),
    (dict(structure="subspace", rank=11), "rank"),
    (dict(structure="clustered", n_clusters=11), "n_clusters"),
    (dict(relatedness=1.2), "relatedness"),
    (dict(relatedness=-0.1), "relatedness"),
    (dict(noise=-1.0), "noise"),
    (dict(structure="lowrank"), "structure.*shared_support.*subspace.*clustered"),
    (dict(shared_design=True, n_samples=[10] * 10), "n_samples.*shared_design"),
    (dict(bias=[1.0, 2.0]), "bias"),
    (dict(random_state="seed"), "random_state"),
])
def test_invalid_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_multitask_regression(**kwargs)


def test_unused_structure_arguments_are_not_checked():
    # rank is only read by "subspace": a large default does not block few tasks
    make_multitask_regression(2, 5, 4, n_informative=2, rank=3, random_state=0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_samples=1), "n_samples.*both classes"),
    (dict(n_samples=[5, 1]), r"n_samples\[1\]"),
    (dict(flip_y=1.5), "flip_y"),
    (dict(class_sep=-1.0), "class_sep"),
])
def test_invalid_classification_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_multitask_classification(n_tasks=2, n_features=4, n_informative=2, **kwargs)


@pytest.mark.parametrize("make", [make_multitask_regression, make_multitask_classification])
def test_default_sizes_fit_small_problems(make):
    """The structure sizes default to what the problem can hold: ``n_informative =
    min(10, n_features)``, ``rank = min(3, n_tasks, n_features)``, ``n_clusters =
    min(3, n_tasks)``; explicit values are still checked; with room for the old defaults
    (10, 3, 3) the draws are unchanged."""
    d = make(n_tasks=3, n_samples=40, n_features=6, random_state=0)
    assert d.coef.shape == (3, 6) and len(d.support) == 6
    assert np.all(d.coef != 0)
    sub = make(n_tasks=2, n_samples=40, n_features=6, structure="subspace", random_state=0)
    assert sub.basis.shape == (2, 6) and np.linalg.matrix_rank(sub.coef) == 2
    clu = make(n_tasks=2, n_samples=40, n_features=6, structure="clustered", random_state=0)
    assert sorted(clu.clusters.tolist()) == [0, 1]
    ind = make(n_tasks=3, n_samples=40, n_features=4, structure="independent", random_state=0)
    assert ind.support.shape == (3, 4)
    with pytest.raises(ValueError, match="n_informative must be an int in \\[1, 6\\]"):
        make(n_tasks=3, n_samples=40, n_features=6, n_informative=7)
    big = make(n_tasks=4, n_samples=30, n_features=12, random_state=1)
    old = make(n_tasks=4, n_samples=30, n_features=12, n_informative=10, random_state=1)
    np.testing.assert_array_equal(big.coef, old.coef)
    np.testing.assert_array_equal(big.y[2], old.y[2])
    for structure, key in (("subspace", "rank"), ("clustered", "n_clusters")):
        a = make(4, 30, 12, structure=structure, random_state=1)
        b = make(4, 30, 12, structure=structure, random_state=1, **{key: 3})
        np.testing.assert_array_equal(a.coef, b.coef)
