"""The "coming from MALSAR" map (docs/user_guide/coming_from.rst) against MALSAR's objectives
as its code computes them (``funVal_eval`` / ``funcVal``, the gradients and thresholds; not
the help texts).

For each convex least-squares formulation, the regmtl fit at the mapped parameters (no
intercept, ``task_weight="samples"``, tight tolerance) must minimize MALSAR's objective
better than fits at alpha halved and doubled: a mapping off by MALSAR's missing 1/2 fails.
The map's rows must state the mappings checked here.
"""


import numpy as np
import pytest
from conftest import REPO

import regmtl as rm

MAP = REPO / "docs" / "user_guide" / "coming_from.rst"

RNG = np.random.default_rng(1)
T, P = 4, 6
N_T = [20, 30, 25, 35]
XS = [RNG.standard_normal((n, P)) for n in N_T]
_W = RNG.standard_normal((P, T))
_W[3:] *= 0.1
YS = [X @ _W[:, t] + 0.5 * RNG.standard_normal(len(X)) for t, X in enumerate(XS)]
NBAR = sum(N_T) / T
RHO1, RHO2, RHO3 = 4.0, 15.0, 6.0


def _sse(W):
    """MALSAR's sum of squared errors, ``W`` of shape (p, T), no intercept."""
    return sum(float(np.sum((y - X @ W[:, t]) ** 2))
               for t, (X, y) in enumerate(zip(XS, YS, strict=True)))


def _chain():
    """MALSAR's R of the temporal models: columns e_t - e_{t+1}, shape (T, T - 1)."""
    R = np.zeros((T, T - 1))
    R[np.arange(T - 1), np.arange(T - 1)] = 1.0
    R[np.arange(1, T), np.arange(T - 1)] = -1.0
    return R


def _nuclear(A):
    return float(np.linalg.svd(A, compute_uv=False).sum())


def _row_norms(W):
    return float(np.linalg.norm(W, axis=1).sum())


def _col_norms(W):
    return float(np.linalg.norm(W, axis=0).sum())


def _fit(penalty, alpha):
    return rm.MultiTaskRegressor(penalty, alpha=alpha, fit_intercept=False,
                                 task_weight="samples", tol=1e-10,
                                 max_iter=100000).fit(XS, YS)


def _whole(model):
    return np.asarray(model.coef_).T


def _parts(model):
    return np.asarray(model.P_).T, np.asarray(model.Q_).T


R = _chain()

#: name -> (MALSAR's objective of the fitted model, penalty, mapped alpha, the map's text)
CASES = {
    "Least_L21": (lambda m: 0.5 * _sse(_whole(m)) + RHO1 * _row_norms(_whole(m)),
                  rm.L21(), RHO1 / NBAR, None),
    "Least_Trace": (lambda m: 0.5 * _sse(_whole(m)) + RHO1 * _nuclear(_whole(m)),
                    "trace", RHO1 / NBAR, '``"trace"``, ``alpha=rho1 / nbar``'),
    "Least_SRMTL": (lambda m: 0.5 * _sse(_whole(m)) + RHO1 * np.sum((_whole(m) @ R) ** 2),
                    rm.GraphLaplacian(rm.chain_graph(T)), RHO1 / NBAR,
                    "``GraphLaplacian(A)``, ``alpha=rho1 / nbar``"),
    "Least_TGL": (lambda m: (0.5 * _sse(_whole(m)) + RHO1 * np.sum(_whole(m) ** 2)
                             + RHO2 * np.sum((_whole(m) @ R) ** 2)
                             + RHO3 * _row_norms(_whole(m))),
                  rm.TemporalGroupLasso(smooth_weight=2 * RHO2 / RHO3,
                                        ridge_weight=2 * RHO1 / RHO3), RHO3 / NBAR,
                  "``TemporalGroupLasso(smooth_weight=2*rho2 / rho3, ridge_weight=2*rho1 / "
                  "rho3)``,\n       ``alpha=rho3 / nbar``"),
    "Least_CFGLasso": (lambda m: (0.5 * _sse(_whole(m)) + RHO1 * np.abs(_whole(m)).sum()
                                  + RHO2 * np.abs(_whole(m) @ R).sum()
                                  + RHO3 * _row_norms(_whole(m))),
                       rm.FusedGroupLasso(fused_weight=RHO2 / RHO3, l1_weight=RHO1 / RHO3),
                       RHO3 / NBAR, "``alpha=rho3 / nbar`` (tasks in time order)"),
    # no 1/2: the code's gradient is 2 X (X'w - y), its thresholds rho / gamma
    "Least_RMTL": (lambda m: (_sse(sum(_parts(m))) + RHO1 * _nuclear(_parts(m)[0])
                              + RHO2 * _col_norms(_parts(m)[1])),
                   rm.RobustLowRank(outlier_weight=RHO2 / RHO1), RHO1 / (2 * NBAR),
                   "``RobustLowRank(outlier_weight=rho2 / rho1)``, ``alpha=rho1 / (2*nbar)``"),
    "Least_rMTFL": (lambda m: (_sse(sum(_parts(m))) + RHO1 * _row_norms(_parts(m)[0])
                               + RHO2 * _col_norms(_parts(m)[1])),
                    rm.RobustFeatures(outlier_weight=RHO2 / RHO1), RHO1 / (2 * NBAR),
                    "``RobustFeatures(outlier_weight=rho2 / rho1)``, ``alpha=rho1 / (2*nbar)``"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_mapped_fit_minimizes_malsars_objective(name):
    objective, penalty, alpha, _ = CASES[name]
    best = objective(_fit(penalty, alpha))
    for factor in (0.5, 2.0):
        other = objective(_fit(penalty, factor * alpha))
        assert best < other * (1 - 1e-4), (name, factor, best, other)


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[3]])
def test_the_map_states_the_checked_mapping(name):
    text = MAP.read_text(encoding="utf-8")
    text = text[text.index("regmtl (all with ``fit_intercept=False"):]  # the mapping table
    row = text[text.index(f"   * - ``{name}(X, Y, "):]
    row = row[:row.index("   * - ", 10)]
    assert CASES[name][3] in row, row


def test_the_map_names_malsars_preprocessing_and_stopping():
    text = MAP.read_text(encoding="utf-8")
    assert "``Construct_iMSF`` z-scores every source first" in text
    assert "uses :math:`\\eta I + M` where :math:`(\\eta I + M)^{-1}` is meant" in text
    assert "``tol_funcVal = 1e-7``, names its stage" in text
