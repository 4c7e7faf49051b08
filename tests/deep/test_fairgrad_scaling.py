"""FairGrad's update against its scaling law.

Scaling every task gradient by c > 0 scales the Gram matrix A = G G^T by c^2; the weights w
solving A w = w^(-1/alpha) then scale by c^(-2 alpha / (alpha + 1)) and the update
d = G^T w by c^((1 - alpha) / (1 + alpha)): at alpha = 1 the update does not depend on the
gradients' scale (d(10 L) = d(L)), above 1 it grows as they shrink. Measured on the update
``FairGrad.backward`` leaves in the shared parameters' gradient, and on the base weights (a
task's share of the update moves as b_t^((1 - alpha)/(1 + alpha)) for orthogonal gradients).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from regmtl.deep import FairGrad, TaskSpec  # noqa: E402

F64 = torch.float64
RNG = np.random.default_rng(0)
#: three task gradients with no conflict strong enough to make the point Pareto-stationary
J = RNG.standard_normal((3, 6)) + np.array([2.0, 0, 0, 0, 0, 0])


def _update(J, alpha, weights=None):
    """The shared gradient FairGrad leaves for the losses J @ theta (gradient rows J)."""
    tasks = [TaskSpec(f"t{k}", weight=1.0 if weights is None else float(weights[k]))
             for k in range(len(J))]
    weighting = FairGrad(alpha=alpha)
    weighting.setup(tasks)
    theta = torch.nn.Parameter(torch.ones(J.shape[1], dtype=F64))
    weighting.backward(torch.as_tensor(J, dtype=F64) @ theta, [theta], [])
    return theta.grad.numpy().copy()


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("c", [1e-3, 0.1, 10.0, 1e3])
def test_update_scales_as_the_gradients_to_the_power_1_minus_alpha_over_1_plus_alpha(alpha, c):
    d1, dc = _update(J, alpha), _update(c * J, alpha)
    law = c ** ((1.0 - alpha) / (1.0 + alpha))
    np.testing.assert_allclose(dc, law * d1, rtol=1e-8)
    # the old statement, ||d|| ~ ||g||^(1/(alpha+1)), is off by c^(alpha/(alpha+1))
    assert np.linalg.norm(dc) != pytest.approx(c ** (1.0 / (alpha + 1.0))
                                               * np.linalg.norm(d1), rel=1e-3)


def test_alpha_one_update_is_scale_invariant():
    np.testing.assert_allclose(_update(10.0 * J, 1.0), _update(J, 1.0), rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_base_weight_share_of_orthogonal_gradients(alpha):
    G = np.diag([1.0, 2.0, 3.0])
    d1 = _update(G, alpha, weights=[1.0, 1.0, 1.0])
    d10 = _update(G, alpha, weights=[1.0, 10.0, 1.0])
    assert d10[1] / d1[1] == pytest.approx(10.0 ** ((1.0 - alpha) / (1.0 + alpha)), rel=1e-8)
    np.testing.assert_allclose(d10[[0, 2]], d1[[0, 2]], rtol=1e-8)


def test_docstring_states_the_measured_law():
    doc = FairGrad.__doc__
    assert r"\|d\| \propto \|g\|^{(1-\alpha)/(1+\alpha)}" in doc
    assert r"\|g\|^{1/(\alpha+1)}" not in doc
    assert r"b_t^{1/\alpha - 1}" not in doc
