"""``alpha_max``: the smallest alpha with W = 0 optimal.

At W = 0 (intercepts fitted) the negative gradient of the data term is
``G0[:, t] = (omega_t / sum_i s_ti) X_t^T (s_t * theta0_t)`` with ``theta0 = -l'(b0_t)``, and W = 0
is optimal iff ``||G0||_* <= alpha * rho`` (max |G0_jt| for L1/elastic net, max_j ||G0_j||_2 for
L2,1). The value is recomputed below from that formula for every input form; then
``alpha >= alpha_max`` must give exactly W = 0 (with the closed-form intercepts) and
``0.99 * alpha_max`` must not.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_lists, make_shared, to_long

import regmtl as rm

PENALTIES = {
    "L1": (rm.L1(), "entry", 1.0),
    "L21": (rm.L21(), "row", 1.0),
    "ElasticNet(0.5)": (rm.ElasticNet(0.5), "entry", 0.5),
}


def independent_alpha_max(loss, Xs, ys, sws, kind, rho, fit_intercept):
    """(alpha_max, b0) from the formula; ys are floats (squared) or +-1 (logistic)."""
    T = len(Xs)
    G0 = np.zeros((Xs[0].shape[1], T))
    b0 = np.zeros(T)
    for t in range(T):
        X, y, s = Xs[t], ys[t], sws[t]
        if fit_intercept:
            if loss == "squared":
                b0[t] = np.sum(s * y) / np.sum(s)
            else:
                q = np.sum(s * (y > 0)) / np.sum(s)
                b0[t] = np.log(q / (1.0 - q))
        theta = y - b0[t] if loss == "squared" else y / (1.0 + np.exp(y * b0[t]))
        G0[:, t] = X.T @ (s * theta) / np.sum(s)
    dual_norm = np.abs(G0).max() if kind == "entry" else np.linalg.norm(G0, axis=1).max()
    return dual_norm / rho, b0


def build_case(form, loss, weighted):
    """Inputs in ``form`` for ``fit``/``alpha_max`` and the same problem as per-task lists.

    Returns (args, kwargs, Xs, ys, sws): ``fit(*args, **kwargs)``; per-task arrays of the
    observed rows only, ys in {-1, +1} for the logistic loss (1 is the positive class).
    """
    rng = np.random.default_rng(3)
    if form == "shared":
        X, Y = make_shared(n=40, p=12, T=3, loss=loss, seed=5)
        Y = Y.astype(float)
        Y[rng.choice(np.arange(2, 40), size=8, replace=False), 0] = np.nan  # missing labels
        Y[rng.choice(np.arange(2, 40), size=3, replace=False), 2] = np.nan
        sw = rng.integers(0, 4, size=40).astype(float) if weighted else None
        if weighted:
            sw[:2] = 1.0
        obs = ~np.isnan(Y)
        Xs = [X[obs[:, t]] for t in range(3)]
        ys = [Y[obs[:, t], t] for t in range(3)]
        sws = [np.ones(len(y)) if sw is None else sw[obs[:, t]] for t, y in enumerate(ys)]
        args, kwargs = (X, Y), {"sample_weight": sw}
    else:
        Xs, ys = make_lists((15, 40, 70), p=12, loss=loss, seed=5)
        sws = [rng.integers(0, 4, size=len(y)).astype(float) for y in ys]
        for s in sws:
            s[:2] = 1.0
            s[-1] = 1.0
        if not weighted:
            sws = [np.ones(len(y)) for y in ys]
        sw_in = sws if weighted else None
        if form == "lists":
            args, kwargs = (Xs, ys), {"sample_weight": sw_in}
        else:
            Xl, yl, task, swl = to_long(Xs, ys, sw_in)
            args, kwargs = (Xl, yl), {"task": task, "sample_weight": swl}
    if loss == "logistic":
        ys = [np.where(y == 1, 1.0, -1.0) for y in ys]
    return args, kwargs, Xs, ys, sws


def model_cls(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


CASES = [
    (pen, loss, form, fi, w)
    for pen in PENALTIES
    for loss in ("squared", "logistic")
    for form in ("lists", "shared", "long")
    for fi in (True, False)
    for w in (False, True)
]


def _id(case):
    pen, loss, form, fi, w = case
    return f"{pen}-{loss}-{form}-{'int' if fi else 'noint'}-{'sw' if w else 'nosw'}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_alpha_max_is_the_threshold(case):
    pen_name, loss, form, fit_intercept, weighted = case
    penalty, kind, rho = PENALTIES[pen_name]
    args, kwargs, Xs, ys, sws = build_case(form, loss, weighted)
    a_max = rm.alpha_max(*args, penalty=penalty, loss=loss, fit_intercept=fit_intercept,
                         **kwargs)
    expected, b0 = independent_alpha_max(loss, Xs, ys, sws, kind, rho, fit_intercept)
    assert a_max == pytest.approx(expected, rel=1e-10)

    cls = model_cls(loss)
    for factor in (1.0, 1.5):
        m = cls(penalty=penalty, alpha=factor * a_max, fit_intercept=fit_intercept,
                tol=1e-10).fit(*args, **kwargs)
        assert np.all(m.coef_ == 0.0), f"W != 0 at alpha = {factor} * alpha_max"
        # W = 0: the intercepts are the closed-form ones and the certificate is ~0
        np.testing.assert_allclose(m.intercept_, b0, rtol=1e-10, atol=1e-12)
        assert m.dual_gap_ <= 1e-10 * m.objective_

    m = cls(penalty=penalty, alpha=0.99 * a_max, fit_intercept=fit_intercept, tol=1e-10,
            max_iter=10_000).fit(*args, **kwargs)
    assert np.any(m.coef_ != 0.0), "W = 0 at alpha = 0.99 * alpha_max"
    assert m.dual_gap_ <= 1e-9 * m.objective_


@pytest.mark.parametrize("penalty", ["l2", rm.L2(), rm.ElasticNet(0.0), rm.L21(0.0)],
                         ids=["l2", "L2()", "ElasticNet(0)", "L21(0)"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_alpha_max_refuses_pure_ridge(penalty, loss):
    Xs, ys = make_lists(p=12, loss=loss, seed=5)
    with pytest.raises(ValueError, match="alpha_max"):
        rm.alpha_max(Xs, ys, penalty=penalty, loss=loss)


@pytest.mark.parametrize("rho", [0.25, 0.5, 0.9])
def test_alpha_max_scales_with_inverse_l1_ratio(rho):
    """alpha_max(rho) = alpha_max(1) / rho for both sparsity patterns."""
    Xs, ys = make_lists(p=12, seed=5)
    for full, part in ((rm.L1(), rm.ElasticNet(rho)), (rm.L21(), rm.L21(rho))):
        assert rm.alpha_max(Xs, ys, penalty=part) == pytest.approx(
            rm.alpha_max(Xs, ys, penalty=full) / rho, rel=1e-12)
