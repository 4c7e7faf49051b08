"""Penalties against their definitions (design.rst section 4 table), and the penalty contract.

``prox`` is checked to be the argmin (optimality condition written here, plus random
perturbations), ``value`` against the table, and the dual pieces (``conjugate``,
``dual_scaling``, ``dual_norm``, ``alpha_max``, ``subdiff_distance``) against formulas and a
numerical supremum computed with scipy. The elastic-net family comes from the shared bank
(``_cases.py``); the contract checks of ``_asserts.py`` (prox optimality, Fenchel-Young) run
over every penalty of the bank.
"""

from __future__ import annotations

import numpy as np
import pytest
from _asserts import assert_fenchel_young, assert_prox_optimal
from _cases import PENALTY_CASES, case_ids, cases
from conftest import subdiff_violation
from scipy.optimize import minimize

import regmtl as rm

# (penalty, sparsity pattern, rho) of the elastic-net family of the bank
PENALTIES = {c.id: (c.penalty, c.kind, c.rho) for c in cases(tag="elastic")}
NAMES = list(PENALTIES)


def omega(kind, rho, W, alpha):
    """The table of design.rst section 4, written with explicit loops."""
    p, T = W.shape
    l1 = 0.0
    if kind == "entry":
        for j in range(p):
            for t in range(T):
                l1 += abs(W[j, t])
    else:
        for j in range(p):
            l1 += np.sqrt(sum(W[j, t] ** 2 for t in range(T)))
    fro2 = sum(W[j, t] ** 2 for j in range(p) for t in range(T))
    return alpha * (rho * l1 + 0.5 * (1.0 - rho) * fro2)


def in_subdifferential(kind, rho, V, U, alpha, atol):
    """(``U in dOmega(V)`` to ``atol``, largest violation)."""
    worst = subdiff_violation(kind, rho, V, U, alpha)
    return worst <= atol, worst


def random_point(rng, p=7, T=4):
    """Random W with a few small entries and small rows, so thresholding happens."""
    W = rng.standard_normal((p, T))
    W[rng.random((p, T)) < 0.3] *= 0.05
    W[rng.choice(p, size=2, replace=False)] *= 0.002
    return W


# --------------------------------------------------------------------------- prox
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_prox_satisfies_optimality_condition(name, seed):
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(seed)
    W = random_point(rng)
    step, alpha = rng.uniform(0.2, 2.0), rng.uniform(0.1, 1.5)
    V = penalty.prox(W, step, alpha)
    assert V.shape == W.shape
    ok, worst = in_subdifferential(kind, rho, V, (W - V) / step, alpha, atol=1e-12)
    assert ok, f"(W - V) / step is {worst:.2e} away from dOmega(V)"
    if rho > 0:  # the random point was built so that some thresholding happens
        zeros = V == 0.0 if kind == "entry" else np.all(V == 0.0, axis=1)
        assert zeros.any()


@pytest.mark.parametrize("name", NAMES)
def test_prox_is_the_minimizer_against_perturbations(name):
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(11)
    W = random_point(rng)
    step, alpha = 0.7, 0.8

    def obj(V):
        return np.sum((V - W) ** 2) / (2.0 * step) + omega(kind, rho, V, alpha)

    V = penalty.prox(W, step, alpha)
    best = obj(V)
    for k in range(200):
        scale = 10.0 ** rng.uniform(-6, -1)
        D = rng.standard_normal(W.shape)
        if k % 2:  # move only the zero entries / rows (the nonsmooth directions)
            D = D * (V == 0.0)
        assert best <= obj(V + scale * D) + 1e-14, f"prox beaten in direction {k}"


@pytest.mark.parametrize("name", NAMES)
def test_prox_against_scipy_minimizer(name):
    """The prox agrees with a generic minimizer of the same objective (smooth reformulation)."""
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(5)
    p, T = 3, 2
    W = random_point(rng, p, T)
    step, alpha = 0.9, 0.6
    V = penalty.prox(W, step, alpha)
    V_num = numeric_argmin(kind, rho, alpha, lin=W / step, quad=1.0 / step)
    np.testing.assert_allclose(V, V_num, atol=1e-8)


def numeric_argmin(kind, rho, alpha, lin, quad):
    """argmin_V quad/2 ||V||^2 - <lin, V> + Omega(V) by L-BFGS-B on a smooth reformulation.

    Entrywise: V = P - N with P, N >= 0 (so |V| = P + N at the optimum). Rows (T = 2 only):
    polar coordinates V_j = r_j (cos phi_j, sin phi_j), r_j >= 0, where ||V_j|| = r_j is smooth.
    Both are the same problem with a smooth objective and simple bounds.
    """
    p, T = lin.shape
    c2 = quad + alpha * (1.0 - rho)  # coefficient of ||V||^2 / 2
    if kind == "entry":
        m = p * T

        def f(z):
            P, N = z[:m], z[m:]
            V = P - N
            val = 0.5 * c2 * V @ V - lin.ravel() @ V + alpha * rho * (P + N).sum()
            g = c2 * V - lin.ravel()
            return val, np.concatenate([g + alpha * rho, -g + alpha * rho])

        z0 = np.concatenate([np.maximum(lin.ravel(), 0), np.maximum(-lin.ravel(), 0)]) / c2
        res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * m),
                       options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 10_000})
        return (res.x[:m] - res.x[m:]).reshape(p, T)
    assert T == 2
    out = np.zeros((p, T))
    for j in range(p):
        def f(z, j=j):
            r, phi = z
            u = np.array([np.cos(phi), np.sin(phi)])
            du = np.array([-np.sin(phi), np.cos(phi)])
            val = 0.5 * c2 * r * r - r * (lin[j] @ u) + alpha * rho * r
            return val, np.array([c2 * r - lin[j] @ u + alpha * rho, -r * (lin[j] @ du)])

        best = None
        for phi0 in np.linspace(0, 2 * np.pi, 5, endpoint=False):
            res = minimize(f, [1.0, phi0], jac=True, method="L-BFGS-B",
                           bounds=[(0, None), (None, None)],
                           options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 10_000})
            if best is None or res.fun < best.fun:
                best = res
        r, phi = best.x
        out[j] = r * np.array([np.cos(phi), np.sin(phi)])
    return out


def test_prox_trivial_cases():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 3))
    for name in NAMES:
        penalty = PENALTIES[name][0]
        np.testing.assert_array_equal(penalty.prox(W, 0.5, 0.0), W)  # alpha = 0: identity
        np.testing.assert_array_equal(penalty.prox(np.zeros((5, 3)), 0.5, 2.0), 0.0)
    # closed forms: soft-thresholding, ridge shrinkage, group soft-thresholding
    s, a = 0.5, 0.8
    np.testing.assert_allclose(rm.L1().prox(W, s, a),
                               np.sign(W) * np.maximum(np.abs(W) - s * a, 0.0), rtol=1e-15)
    np.testing.assert_allclose(rm.L2().prox(W, s, a), W / (1.0 + s * a), rtol=1e-15)
    nrm = np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(rm.L21().prox(W, s, a),
                               W * np.maximum(1.0 - s * a / nrm, 0.0), rtol=1e-14)


# --------------------------------------------------------------------------- value
@pytest.mark.parametrize("name", NAMES)
def test_value_matches_table(name):
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(3)
    for alpha in (0.0, 0.3, 2.5):
        W = random_point(rng, 6, 3)
        assert penalty.value(W, alpha) == pytest.approx(omega(kind, rho, W, alpha), rel=1e-13)
    # explicit small case: W = [[3, -4], [0, 0], [1, 0]]
    W = np.array([[3.0, -4.0], [0.0, 0.0], [1.0, 0.0]])
    l1 = 8.0 if kind == "entry" else 6.0
    assert penalty.value(W, 2.0) == pytest.approx(2.0 * (rho * l1 + 0.5 * (1 - rho) * 26.0))
    l1, l2, group = penalty.bcd_params(2.0)
    assert (l1, l2, group) == (pytest.approx(2.0 * rho), pytest.approx(2.0 * (1 - rho)),
                               kind == "row")


# --------------------------------------------------------------------------- dual pieces
def dual_norm(kind, G):
    return np.abs(G).max() if kind == "entry" else np.linalg.norm(G, axis=1).max()


@pytest.mark.parametrize("name", ["ElasticNet(0.5)", "ElasticNet(0.2)", "L21(0.6)", "L2",
                                  "L21(0.0)"])
def test_conjugate_is_the_supremum(name):
    """Omega*(G) = sup_V <G, V> - Omega(V), numerically (SLSQP) and by Fenchel-Young."""
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(8)
    alpha = 0.7
    for _ in range(3):
        G = 1.5 * rng.standard_normal((3, 2))
        conj = penalty.conjugate(G, alpha)
        V_star = numeric_argmin(kind, rho, alpha, lin=G, quad=0.0)
        sup = np.sum(G * V_star) - omega(kind, rho, V_star, alpha)
        assert conj == pytest.approx(sup, rel=1e-6, abs=1e-9)
        # Fenchel-Young: no V does better than the conjugate
        for _ in range(100):
            V = V_star + 10.0 ** rng.uniform(-4, 0) * rng.standard_normal(G.shape)
            assert np.sum(G * V) - omega(kind, rho, V, alpha) <= conj + 1e-12
    # closed form written out: sum_g (||G_g|| - alpha rho)_+^2 / (2 alpha (1 - rho))
    G = np.array([[3.0, 4.0], [0.1, -0.2], [-2.0, 0.0]])
    norms = np.array([3, 4, 0.1, 0.2, 2, 0]) if kind == "entry" else np.array(
        [5.0, np.sqrt(0.05), 2.0])
    excess = np.maximum(norms - alpha * rho, 0.0)
    assert penalty.conjugate(G, alpha) == pytest.approx(
        np.sum(excess**2) / (2 * alpha * (1 - rho)), rel=1e-13)
    assert penalty.dual_scaling(G, alpha) == 1.0  # the domain is everything when rho < 1


@pytest.mark.parametrize("name", ["L1", "L21(1.0)"])
def test_dual_scaling_for_pure_norms(name):
    """rho = 1: Omega* is the indicator of {dual norm <= alpha}; dual_scaling puts G inside."""
    penalty, kind, _ = PENALTIES[name]
    rng = np.random.default_rng(4)
    alpha = 0.5
    for _ in range(20):
        G = rng.standard_normal((6, 3)) * 10.0 ** rng.uniform(-2, 1)
        dn = dual_norm(kind, G)
        assert penalty.dual_norm(G) == pytest.approx(dn, rel=1e-14)
        s = penalty.dual_scaling(G, alpha)
        assert np.all((0.0 < np.asarray(s)) & (np.asarray(s) <= 1.0))
        assert dual_norm(kind, s * G) <= alpha * (1 + 1e-14)
        if kind == "entry":
            # the entrywise ball is a product over tasks: each column scaled on its own,
            # exactly onto the boundary where it is outside, not at all where it is inside
            assert np.shape(s) == (G.shape[1],)
            for t in range(G.shape[1]):
                m = np.abs(G[:, t]).max()
                if m > alpha:
                    assert np.abs(s[t] * G[:, t]).max() == pytest.approx(alpha, rel=1e-14)
                else:
                    assert s[t] == 1.0
        elif dn > alpha:  # scaled exactly onto the boundary, no more than needed
            assert dual_norm(kind, s * G) == pytest.approx(alpha, rel=1e-14)
        else:
            assert s == 1.0
        assert penalty.conjugate(s * G, alpha) == 0.0
        # inside the ball, <G, V> - Omega(V) <= 0 for every V (so the sup is 0) ...
        for _ in range(20):
            V = rng.standard_normal(G.shape)
            assert np.sum(s * G * V) - penalty.value(V, alpha) <= 1e-12
    # ... and outside it the sup is +inf: it grows without bound along the maximizing direction
    G = np.zeros((4, 2))
    G[1] = [0.6, 0.8]
    V = np.zeros_like(G)
    V[1] = G[1] if kind == "row" else [0.0, 1.0]
    gain = [np.sum(G * (r * V)) - penalty.value(r * V, 0.5) for r in (1.0, 10.0, 100.0)]
    assert gain[0] > 0 and gain[2] > 10 * gain[1] / 2 > 0


@pytest.mark.parametrize("name", ["L1", "ElasticNet(0.5)", "L21(1.0)", "L21(0.6)"])
def test_alpha_max_and_subdiff_distance(name):
    penalty, kind, rho = PENALTIES[name]
    rng = np.random.default_rng(9)
    G0 = rng.standard_normal((6, 3))
    assert penalty.alpha_max(G0) == pytest.approx(dual_norm(kind, G0) / rho, rel=1e-14)
    # 0 = argmin 1/2 ||V - G0||^2 + Omega(V) iff G0 in dOmega(0) iff alpha >= alpha_max
    a = penalty.alpha_max(G0)
    assert np.all(penalty.prox(G0, 1.0, a * (1 + 1e-12)) == 0.0)
    assert np.any(penalty.prox(G0, 1.0, 0.99 * a) != 0.0)
    # the distance from G to dOmega(W), computed here by projecting onto the subdifferential
    alpha = 0.4
    W = random_point(rng, 6, 3)
    W[np.abs(W) < 0.2] = 0.0
    W[2] = 0.0
    G = rng.standard_normal(W.shape)
    d = penalty.subdiff_distance(W, G, alpha)
    R = G - alpha * (1.0 - rho) * W
    lam = alpha * rho
    if kind == "entry":
        proj = np.where(W != 0, lam * np.sign(W), np.clip(R, -lam, lam))
        expected = np.abs(R - proj)
    else:
        expected = np.empty(W.shape[0])
        for j in range(W.shape[0]):
            nw = np.linalg.norm(W[j])
            if nw > 0:
                expected[j] = np.linalg.norm(R[j] - lam * W[j] / nw)
            else:
                expected[j] = max(np.linalg.norm(R[j]) - lam, 0.0)
    np.testing.assert_allclose(d, expected, rtol=1e-13, atol=1e-15)


def test_l2_has_no_alpha_max():
    for pen in (rm.L2(), rm.ElasticNet(0.0), rm.L21(0.0)):
        with pytest.raises(ValueError, match="alpha_max"):
            pen.alpha_max(np.ones((3, 2)))


def test_invalid_l1_ratio_is_refused():
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(ValueError, match="l1_ratio"):
            rm.ElasticNet(bad).value(np.ones((2, 2)), 1.0)


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("case", PENALTY_CASES, ids=case_ids(PENALTY_CASES))
def test_contract_prox_is_optimal(case):
    """Every penalty of the bank: the prox point against scipy and its subdifferential."""
    rng = np.random.default_rng(21)
    V = rng.standard_normal(case.variable_shape(2, 4))
    assert_prox_optimal(case, V, step=0.8, alpha=0.6)


DUAL_CASES = [c for c in PENALTY_CASES if c.has_dual]


@pytest.mark.parametrize("case", DUAL_CASES, ids=case_ids(DUAL_CASES))
def test_contract_fenchel_young(case):
    """Every penalty of the bank with a dual: Fenchel-Young, with equality on the
    subdifferential."""
    assert_fenchel_young(case, np.random.default_rng(22), alpha=0.7)


@pytest.mark.parametrize("scale", [1.0, 1e-200, 1e200, 1e-300])
def test_spectral_norm_across_scales_forms_no_copy(scale):
    """``||G||_2`` from the Gram of G itself, or at extreme scales of ``G 2^{-e}`` a block of
    rows at a time: within 1e-13 of LAPACK's SVD of the unscaled matrix, and no copy of G
    (the traced allocations stay under a tenth of G)."""
    import tracemalloc

    from regmtl.penalties.spectral import spectral_norm

    G0 = np.random.default_rng(0).standard_normal((100_000, 6))
    G = G0 * scale
    tracemalloc.start()
    try:
        value = spectral_norm(G)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value == pytest.approx(np.linalg.norm(G0, 2) * scale, rel=1e-13)
    assert peak < G.nbytes / 10
