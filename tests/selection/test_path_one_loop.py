"""The path through the reduced problem (penalty factors) walks the same loop as the plain
path (``regmtl.selection.path.walk_path``): on the live features, from the previous point's
coefficients and dual point.

Factors are a change of units: the path with ``penalty_factor=d`` (not rescaled) is the plain
path of the design ``X / d``, read back as ``W_j = V_j / d_j``. Both must then take the same
iterations at every point and reach the same coefficients to rounding. An earlier reduced path
started each point without the previous dual point and took other iterations, its points
2.5e-4 away (each within tol of its own optimum).
"""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm

RNG = np.random.default_rng(1)
N, P, T = 60, 12, 3
X = RNG.standard_normal((N, P))
Y = X[:, :3] @ RNG.standard_normal((3, T)) + RNG.standard_normal((N, T))
D = RNG.uniform(0.5, 2.0, P)


@pytest.mark.parametrize("penalty", [rm.Dirty(own_weight=0.6), rm.ElasticNet(0.5), "l21"],
                         ids=repr)
@pytest.mark.parametrize("loss", [rm.Quantile(0.3), "squared"], ids=repr)
def test_the_reduced_path_is_the_plain_path_in_other_units(loss, penalty):
    kw = dict(penalty=penalty, alphas=6, tol=1e-6, loss=loss)
    reduced = rm.regularization_path(X, Y, penalty_factor=D, rescale_factors=False, **kw)
    plain = rm.regularization_path(X / D, Y, **kw)
    np.testing.assert_allclose(reduced.alphas, plain.alphas, rtol=1e-12)
    np.testing.assert_array_equal(reduced.n_iter, plain.n_iter)
    scale = np.abs(plain.coefs).max()
    assert np.abs(reduced.coefs * D - plain.coefs).max() <= 1e-9 * scale
    np.testing.assert_allclose(reduced.intercepts, plain.intercepts, rtol=1e-9, atol=1e-9)


def test_the_reduced_path_on_a_design_with_dead_features():
    """A bag-of-words-like design, half its columns zero: the reduced path solves on the live
    features and writes zeros at the dead ones, equal to the plain path in other units."""
    Xd = np.zeros((N, 2 * P))
    Xd[:, ::2] = X
    d = np.repeat(D, 2)
    kw = dict(penalty="l21", alphas=6, tol=1e-8)
    reduced = rm.regularization_path(Xd, Y, penalty_factor=d, rescale_factors=False, **kw)
    plain = rm.regularization_path(Xd / d, Y, **kw)
    np.testing.assert_array_equal(reduced.n_iter, plain.n_iter)
    assert np.all(reduced.coefs[:, :, 1::2] == 0.0)
    assert np.abs(reduced.coefs * d - plain.coefs).max() <= 1e-9 * np.abs(plain.coefs).max()
