"""A classifier whose penalty leaves some coefficients free (``MeanRegularized`` without a
ridge: the mean task; ``GraphLaplacian``: the weights common to a connected component) has no
minimum where those coefficients separate the pooled classes: the fit is refused by name
instead of certifying a point the loss keeps falling from (the wide tasks of issue 63's
section 2: 60 rows, 40 features, four tasks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import regmtl as rm


def _wide(seed=0, sizes=(12, 14, 16, 18), p=40):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [(X[:, 0] - X[:, 1] + rng.standard_normal(len(X)) > 0).astype(int) for X in Xs]
    return Xs, ys


def _overlapping(seed=1, sizes=(60, 60, 60, 60), p=3):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [(X[:, 0] + 2.0 * rng.standard_normal(len(X)) > 0).astype(int) for X in Xs]
    return Xs, ys


@pytest.mark.parametrize("penalty", [rm.MeanRegularized(), rm.GraphLaplacian(rm.chain_graph(4))],
                         ids=["mean", "graph"])
def test_separated_pooled_classes_are_refused_by_name(penalty):
    Xs, ys = _wide()
    with pytest.raises(ValueError, match=r"penalty: .* leaves the coefficients common to "
                                         r"tasks 0, 1, 2, 3 free.*no minimum.*ridge=0\.1"):
        rm.MultiTaskClassifier(penalty, alpha=0.01, tol=1e-8).fit(Xs, ys)


def test_a_penalty_that_charges_every_direction_fits_the_same_data():
    """With a ridge (or a norm) the objective is coercive: fitted, certified, finite."""
    Xs, ys = _wide()
    for penalty in (rm.MeanRegularized(0.1), "l21"):
        m = rm.MultiTaskClassifier(penalty, alpha=0.01, tol=1e-8).fit(Xs, ys)
        assert np.all(np.isfinite(m.coef_)) and np.abs(m.coef_).max() < 10.0
        cert = getattr(m, "dual_gap_", getattr(m, "kkt_residual_", None))
        assert cert is not None and cert <= 1e-8 * max(1.0, m.objective_)


def test_overlapping_classes_fit_under_the_free_penalties():
    Xs, ys = _overlapping()
    for penalty in (rm.MeanRegularized(), rm.GraphLaplacian(rm.chain_graph(4))):
        m = rm.MultiTaskClassifier(penalty, alpha=0.01, tol=1e-8).fit(Xs, ys)
        assert m.kkt_residual_ <= 1e-8


def test_a_graph_is_checked_per_component():
    """Two components: {0, 1} overlap, {2, 3} are separated by their first feature (named);
    a task without an edge is unpenalized, checked alone."""
    Xs, ys = _overlapping(sizes=(60, 60))
    rng = np.random.default_rng(5)
    for n in (6, 7):
        X = rng.standard_normal((n, 3))
        Xs.append(X)
        ys.append((X[:, 0] > 0).astype(int))
    assert all(len(set(y)) == 2 for y in ys)
    A = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0.0]]))
    with pytest.raises(ValueError, match="common to tasks 2, 3 free"):
        rm.MultiTaskClassifier(rm.GraphLaplacian(A), alpha=0.01).fit(Xs, ys)
    lone = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.0]]))
    with pytest.raises(ValueError, match="common to tasks 2 free"):
        rm.MultiTaskClassifier(rm.GraphLaplacian(lone), alpha=0.01).fit(Xs, ys)


def test_the_multinomial_is_checked_by_its_class_labels():
    rng = np.random.default_rng(3)
    Xs = [rng.standard_normal((8, 30)) for _ in range(3)]
    ys = [np.arange(8) % 3 for _ in Xs]
    with pytest.raises(ValueError, match="no minimum"):
        rm.MultiTaskClassifier("mean", alpha=0.01).fit(Xs, ys)


def test_the_refusal_is_read_without_solving():
    Xs, ys = _wide()
    msg = rm.MultiTaskClassifier("mean", alpha=0.01)._refusal(Xs, ys)
    assert "leaves the coefficients common to tasks" in msg
