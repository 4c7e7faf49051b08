"""Penalty factors, unpenalized and excluded features, bounds and standardization
(:mod:`regmtl.feature_terms`): against cvxpy/Clarabel, glum, skglm and scikit-learn-style
standardization by hand, the limits that must change nothing, the refusals by name, and the
School data with its school-level columns unpenalized.

The objective is ``sum_t mean_i loss + alpha Omega(D W)`` with ``l <= W <= u``; the
references are written from it in ``tests/_feature_cases.py`` (numpy at a point, cvxpy for
the minimum). Every number asserted is stated with its tolerance: 1e-6 relative on objectives
against cvxpy (and never below its optimum by more), 1e-8 on coefficients against the same
problem fitted another way.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _feature_cases import (
    ALPHA,
    FACTORS,
    SIZES,
    P,
    cvx_minimum,
    estimator,
    make_tasks,
    matrix_of,
    np_loss,
    np_objective,
    penalty_object,
)
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm

INF = np.inf
T = len(SIZES)
LOSSES = ["squared", "logistic", "poisson"]
PENALTIES = ["l1", "l21", "elasticnet", "l2", "trace", "mean", "l1inf", "dirty"]
#: objectives against cvxpy's minimum, relative
REL = 1e-6


def _cp():
    return pytest.importorskip("cvxpy")


def _certificate(est) -> tuple[str, float]:
    for name in ("dual_gap_", "kkt_residual_"):
        if hasattr(est, name):
            return name, float(getattr(est, name))
    raise AssertionError("a fit with feature terms reports no certificate")


def _assert_certified(est, bound=1e-8):
    """The duality gap within ``bound`` times the objective (at least 1), or the relative
    KKT residual within ``bound``."""
    name, value = _certificate(est)
    scale = max(1.0, abs(est.objective_)) if name == "dual_gap_" else 1.0
    assert 0.0 <= value <= bound * scale, (name, value)


def _assert_matches_minimum(est, ours_np: float, ref: float):
    """objective_ and our numpy objective at the fit within REL of cvxpy's minimum, and not
    below it by more than REL (a point cannot beat the minimum)."""
    scale = abs(ref)
    assert abs(est.objective_ - ours_np) <= 1e-9 * scale, (est.objective_, ours_np)
    assert abs(est.objective_ - ref) <= REL * scale, (est.objective_, ref)
    assert est.objective_ >= ref - REL * scale
    assert ours_np >= ref - REL * scale


def _box(bound, shape):
    B = np.asarray(bound, dtype=float)
    B = B[:, None] if B.ndim == 1 else B
    return np.broadcast_to(B, shape)


# =========================================================================== 1. factors
@pytest.mark.parametrize("name", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES + ["multinomial"])
def test_factors_against_cvxpy(loss, name):
    """Positive factors with one 0 (unpenalized), not rescaled: the minimum of
    ``loss + alpha Omega(D W)``; under the multinomial loss (three classes per task) the
    entrywise norms group a feature's classes and ``mean`` pulls each class to its own."""
    _cp()
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss]
    est = estimator(loss, penalty_object(name), alpha=alpha, tol=1e-10, max_iter=20000,
                    penalty_factor=FACTORS, rescale_factors=False).fit(Xs, ys)
    W, b = matrix_of(est)
    assert W.shape == (P, 3 * T if loss == "multinomial" else T)
    ref, _, _ = cvx_minimum(loss, name, Xs, ys, FACTORS, alpha)
    _assert_matches_minimum(est, np_objective(loss, name, Xs, ys, W, b, FACTORS, alpha), ref)
    _assert_certified(est)


#: factors per feature and task: one feature unpenalized everywhere, one entry excluded
_DT = np.array([[0.0, 0.0, 0.0], [0.68, 0.81, 1.79], [0.31, 1.7, 1.66], [1.1, 0.82, 0.77],
                [0.73, 1.06, 1.16], [1.24, INF, 1.65]])


@pytest.mark.parametrize("name", ["l1", "elasticnet", "l2"])
@pytest.mark.parametrize("loss", LOSSES)
def test_factors_per_task_against_cvxpy(loss, name):
    """(p, T) factors (the penalties separable over tasks): ``sum d_jt |W_jt|`` and the
    ridge of ``d_jt W_jt``; an infinite entry is the coefficient 0 of that task only."""
    _cp()
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss]
    est = estimator(loss, penalty_object(name), alpha=alpha, tol=1e-10,
                    penalty_factor=_DT, rescale_factors=False).fit(Xs, ys)
    W, b = matrix_of(est)
    gone = np.isinf(_DT)
    assert np.all(W[gone] == 0.0)
    D = np.where(gone, 0.0, _DT)
    pin = np.where(gone, 0.0, INF)
    ref, _, _ = cvx_minimum(loss, name, Xs, ys, D, alpha, lower=-pin, upper=pin)
    _assert_matches_minimum(est, np_objective(loss, name, Xs, ys, W, b, D, alpha), ref)
    _assert_certified(est)


# =========================================================================== 2. bounds
_rng = np.random.default_rng(5)
BOXES = {
    "scalar": (-0.25, 0.4),  # (the unpenalized feature 0 bounded too)
    "feature": (np.array([-INF, -0.2, 0.0, -INF, -0.5, -1.0]),
                np.array([INF, INF, 0.3, 0.2, INF, 1.0])),
    "task": (np.where(_rng.random((P, T)) < 0.5, -INF, -0.3 * _rng.random((P, T))),
             np.where(_rng.random((P, T)) < 0.5, INF, 0.3 * _rng.random((P, T)))),
}


@pytest.mark.parametrize("box", list(BOXES))
@pytest.mark.parametrize("name", ["l1", "l21", "elasticnet", "l2"])
@pytest.mark.parametrize("loss", LOSSES)
def test_bounds_against_cvxpy(loss, name, box):
    """A box (scalar, per feature, per feature and task) with the factors of
    :func:`test_factors_against_cvxpy`: the constrained minimum, the box met exactly and at
    least one bound active in the reference."""
    _cp()
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss]
    lo, hi = BOXES[box]
    est = estimator(loss, penalty_object(name), alpha=alpha, tol=1e-9, max_iter=5000,
                    penalty_factor=FACTORS, rescale_factors=False,
                    lower_bounds=lo, upper_bounds=hi).fit(Xs, ys)
    W, b = matrix_of(est)
    L, U = _box(lo, W.shape), _box(hi, W.shape)
    assert np.all(W >= L) and np.all(W <= U)
    ref, Wc, _ = cvx_minimum(loss, name, Xs, ys, FACTORS, alpha, lower=lo, upper=hi)
    assert np.any(np.isclose(Wc, L, atol=1e-7) | np.isclose(Wc, U, atol=1e-7))
    _assert_matches_minimum(est, np_objective(loss, name, Xs, ys, W, b, FACTORS, alpha), ref)
    _assert_certified(est)


@pytest.mark.parametrize("name", ["trace", "mean", "l1inf", "dirty"])
@pytest.mark.parametrize("loss", LOSSES)
def test_bounds_on_unpenalized_features_with_any_penalty(loss, name):
    """A box on the unpenalized feature only is taken by every penalty (its rows see the
    box projection alone); here it is active (the free coefficients sit at 0.2)."""
    _cp()
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss]
    lo, hi = np.full(P, -INF), np.full(P, INF)
    lo[0], hi[0] = -0.1, 0.2
    est = estimator(loss, penalty_object(name), alpha=alpha, tol=1e-10, max_iter=5000,
                    penalty_factor=FACTORS, rescale_factors=False,
                    lower_bounds=lo, upper_bounds=hi).fit(Xs, ys)
    W, b = matrix_of(est)
    assert np.all(W[0] >= -0.1) and np.all(W[0] <= 0.2)
    ref, Wc, _ = cvx_minimum(loss, name, Xs, ys, FACTORS, alpha, lower=lo, upper=hi)
    assert np.isclose(Wc[0], 0.2, atol=1e-7).any()
    _assert_matches_minimum(est, np_objective(loss, name, Xs, ys, W, b, FACTORS, alpha), ref)
    _assert_certified(est)


@pytest.mark.parametrize("name, positive", [("l1", rm.L1(positive=True)),
                                            ("l21", rm.L21(positive=True))])
@pytest.mark.parametrize("loss", LOSSES)
def test_lower_bound_zero_is_the_positive_penalty(loss, name, positive):
    """``lower_bounds=0`` is the penalty's ``positive=True``: the same fit to 1e-7."""
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss]
    boxed = estimator(loss, name, alpha=alpha, tol=1e-10, lower_bounds=0.0).fit(Xs, ys)
    signed = estimator(loss, positive, alpha=alpha, tol=1e-10).fit(Xs, ys)
    assert np.all(boxed.coef_ >= 0.0) and np.any(boxed.coef_ == 0.0)
    np.testing.assert_allclose(boxed.coef_, signed.coef_, rtol=0, atol=1e-7)
    np.testing.assert_allclose(boxed.intercept_, signed.intercept_, rtol=0, atol=1e-7)


@pytest.mark.parametrize("penalty, shown", [
    ("trace", "Trace"), ("mean", "MeanRegularized"), (rm.LInf1(), "LInf1"),
    (rm.Dirty(), "Dirty"), ("clustered", "Clustered")])
def test_bounds_on_penalized_rows_are_refused_by_name(penalty, shown):
    Xs, ys = make_tasks("squared")
    with pytest.raises(ValueError, match=rf"{shown}\(.*takes no lower_bounds / upper_bounds"):
        rm.MultiTaskRegressor(penalty, lower_bounds=-1).fit(Xs, ys)
    with pytest.raises(ValueError, match=rf"{shown}\(.*takes no lower_bounds / upper_bounds"):
        rm.MultiTaskRegressor(penalty, upper_bounds={2: 1.0}).fit(Xs, ys)


# =========================================================================== 3. limits
@pytest.mark.parametrize("name", ["l21", "l1", "trace", "dirty"])
@pytest.mark.parametrize("loss", LOSSES + ["multinomial"])
def test_unit_factors_and_open_bounds_change_nothing_bit_for_bit(loss, name):
    Xs, ys = make_tasks(loss)
    kw = dict(alpha=ALPHA[loss], tol=1e-10)
    plain = estimator(loss, penalty_object(name), **kw).fit(Xs, ys)
    for terms in (dict(penalty_factor=np.ones(P)), dict(penalty_factor={}),
                  dict(penalty_factor={2: 1.0}, exclude=[]),
                  dict(lower_bounds=-INF, upper_bounds=INF),
                  dict(penalty_factor=np.ones(P), rescale_factors=False)):
        fit = estimator(loss, penalty_object(name), **kw, **terms).fit(Xs, ys)
        assert np.array_equal(fit.coef_, plain.coef_), terms
        assert np.array_equal(fit.intercept_, plain.intercept_), terms




@pytest.mark.parametrize("name", ["l21", "l1", "trace"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_zero_factors_everywhere_give_the_unpenalized_fit(loss, name):
    Xs, ys = make_tasks(loss)
    free = estimator(loss, name, alpha=ALPHA[loss], tol=1e-12,
                     penalty_factor=np.zeros(P)).fit(Xs, ys)
    unpen = estimator(loss, name, alpha=0.0, tol=1e-12).fit(Xs, ys)
    np.testing.assert_allclose(free.coef_, unpen.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(free.intercept_, unpen.intercept_, rtol=0, atol=1e-6)
    assert free.objective_ == pytest.approx(unpen.objective_, rel=1e-10)


@pytest.mark.parametrize("how", ["inf", "position", "mask"])
@pytest.mark.parametrize("name", ["l21", "l1", "trace", "mean"])
@pytest.mark.parametrize("loss", LOSSES + ["multinomial"])
def test_an_excluded_feature_is_the_fit_without_its_column(loss, name, how):
    Xs, ys = make_tasks(loss)
    gone = 2
    terms = {"inf": dict(penalty_factor=np.where(np.arange(P) == gone, INF, 1.0)),
             "position": dict(exclude=[gone]),
             "mask": dict(exclude=np.arange(P) == gone)}[how]
    kw = dict(alpha=ALPHA[loss], tol=1e-12, max_iter=5000)
    fit = estimator(loss, penalty_object(name), **kw, **terms).fit(Xs, ys)
    keep = np.arange(P) != gone
    ref = estimator(loss, penalty_object(name), **kw).fit([X[:, keep] for X in Xs], ys)
    coef = np.atleast_2d(fit.coef_)
    assert np.all(coef[:, gone] == 0.0)
    np.testing.assert_allclose(coef[:, keep], np.atleast_2d(ref.coef_), rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.intercept_, ref.intercept_, rtol=0, atol=1e-8)


def test_features_named_in_dicts_and_exclude_on_a_data_frame():
    pd = pytest.importorskip("pandas")
    Xs, ys = make_tasks("squared")
    cols = [f"f{j}" for j in range(P)]
    X = pd.DataFrame(np.vstack(Xs), columns=cols)
    y, task = np.concatenate(ys), np.repeat(np.arange(T), [len(v) for v in ys])
    by_name = rm.MultiTaskRegressor("l21", alpha=0.1, tol=1e-12, rescale_factors=False,
                                    penalty_factor={"f0": 0.0, "f3": 2.0},
                                    lower_bounds={"f1": 0.0}, exclude=["f5"]).fit(X, y, task)
    d = np.array([0.0, 1.0, 1.0, 2.0, 1.0, INF])
    lo = np.array([-INF, 0.0, -INF, -INF, -INF, -INF])
    by_pos = rm.MultiTaskRegressor("l21", alpha=0.1, tol=1e-12, rescale_factors=False,
                                   penalty_factor=d, lower_bounds=lo).fit(Xs, ys)
    assert np.all(by_name.coef_[:, 5] == 0.0) and np.all(by_name.coef_[:, 1] >= 0.0)
    np.testing.assert_allclose(by_name.coef_, by_pos.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(by_name.intercept_, by_pos.intercept_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["l1", "l21", "elasticnet", "l2"])
@pytest.mark.parametrize("loss", LOSSES)
def test_far_bounds_change_nothing(loss, name):
    """Bounds far from the solution: the same coefficients to 1e-8. (With the squared loss the
    plain fit projects the unpenalized column out and certifies by the duality gap, the
    bounded one keeps it in the prox: two paths, whose coefficients agree to ~sqrt(gap), so
    tol=1e-14 there; at tol=1e-12 they differ by 2.7e-8 for the elastic net.)"""
    Xs, ys = make_tasks(loss)
    tol = 1e-14 if loss == "squared" else 1e-10
    kw = dict(alpha=ALPHA[loss], tol=tol, max_iter=5000, penalty_factor=FACTORS)
    plain = estimator(loss, penalty_object(name), **kw).fit(Xs, ys)
    for lo, hi in ((-1e6, 1e6), (np.full(P, -50.0), None), (None, np.full((P, T), 50.0))):
        fit = estimator(loss, penalty_object(name), lower_bounds=lo, upper_bounds=hi,
                        **kw).fit(Xs, ys)
        np.testing.assert_allclose(fit.coef_, plain.coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(fit.intercept_, plain.intercept_, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", ["l21", "l1", "trace"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_rescaled_factors_ignore_a_common_scale(loss, name):
    """With ``rescale_factors=True`` (glmnet's rule: an excluded feature counts as a factor
    of 1 and the factors sum to p) ``d`` fits as ``d p / (sum of the finite d + the
    excluded)`` taken as given; without exclusions ``c d`` fits as ``d``."""
    Xs, ys = make_tasks(loss)
    d = np.array([0.0, 0.5, 1.0, 2.0, INF, 0.7])
    kw = dict(alpha=ALPHA[loss], tol=1e-12 if loss == "squared" else 1e-10)
    fin = np.isfinite(d)
    given = np.where(fin, d * d.size / (d[fin].sum() + (~fin).sum()), INF)
    kept = np.where(fin, d, 1.0)  # (nothing excluded)
    pairs = [(estimator(loss, name, penalty_factor=d, **kw),
              estimator(loss, name, penalty_factor=given, rescale_factors=False, **kw)),
             (estimator(loss, name, penalty_factor=kept, **kw),
              estimator(loss, name, penalty_factor=7.5 * kept, **kw))]
    for one, other in pairs:
        one.fit(Xs, ys)
        other.fit(Xs, ys)
        np.testing.assert_allclose(other.coef_, one.coef_, rtol=0, atol=1e-9)
        assert other.objective_ == pytest.approx(one.objective_, rel=1e-10)
    unscaled = estimator(loss, name, penalty_factor=7.5 * kept, rescale_factors=False,
                         **kw).fit(Xs, ys)
    assert np.abs(unscaled.coef_ - pairs[1][0].coef_).max() > 1e-3  # (the scale matters)


# =========================================================================== 4. standardize
def _scaled_single(seed=3, n=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, P)) * np.array([0.1, 1, 3, 10, 0.5, 2]) \
        + np.array([5, 0, -2, 1, 0, 3])
    f = X @ np.array([3, 0.5, 0.2, 0.05, 0, 0])
    return X, f, rng


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_standardize_is_the_fit_on_standardized_columns(loss):
    """One task: ``standardize=True`` is the plain fit on ``(X - mean) / sd`` (population
    deviation: the rows weigh alike) with the coefficients divided by ``sd``, to 1e-8."""
    X, f, rng = _scaled_single()
    if loss == "squared":
        y, alpha = f + rng.standard_normal(len(f)), 0.2
    else:
        y, alpha = (f - 15 + 2 * rng.standard_normal(len(f)) > 0).astype(int), 0.08
    mu, sd = X.mean(axis=0), X.std(axis=0)
    std = estimator(loss, "l1", alpha=alpha, tol=1e-12, standardize=True).fit(X, y)
    plain = estimator(loss, "l1", alpha=alpha, tol=1e-12).fit((X - mu) / sd, y)
    coef = np.ravel(plain.coef_) / sd
    assert np.count_nonzero(coef) < P  # (the penalty is doing something)
    np.testing.assert_allclose(np.ravel(std.coef_), coef, rtol=0, atol=1e-8)
    b = float(np.ravel(plain.intercept_)[0]) - coef @ mu
    assert float(np.ravel(std.intercept_)[0]) == pytest.approx(b, abs=1e-8)


@pytest.mark.parametrize("name", ["l21", "l1", "trace"])
def test_standardize_over_tasks_weighs_rows_as_the_objective(name):
    """Several tasks: the deviation over all rows weighted by the objective's row weights
    (1 / n_t), about the weighted mean: ``standardize=True`` is the factor ``s`` as given."""
    Xs, ys = make_tasks("squared")
    Xs = [X * np.array([0.1, 1, 3, 10, 0.5, 2]) for X in Xs]
    c = np.concatenate([np.full(len(y), 1.0 / len(y)) for y in ys])
    w, Xa = c / c.sum(), np.vstack(Xs)
    m = w @ Xa
    s = np.sqrt(w @ (Xa - m) ** 2)
    std = rm.MultiTaskRegressor(name, alpha=0.1, tol=1e-12, standardize=True).fit(Xs, ys)
    fac = rm.MultiTaskRegressor(name, alpha=0.1, tol=1e-12, penalty_factor=s,
                                rescale_factors=False).fit(Xs, ys)
    np.testing.assert_allclose(std.coef_, fac.coef_, rtol=0, atol=1e-9)
    assert std.objective_ == pytest.approx(fac.objective_, rel=1e-10)


# =========================================================================== 5. glum
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("loss, family, alpha", [("squared", "normal", 0.05),
                                                 ("poisson", "poisson", 0.02),
                                                 ("gamma", "gamma", 0.02)])
def test_one_task_against_glum(loss, family, alpha, l1_ratio):
    """glum minimizes ``deviance / (2 sum w) + alpha (r ||P1 w||_1 + (1 - r)/2 w' P2 w)``:
    half the unit deviance is our loss up to a constant (normal: (y - f)^2 / 2; Poisson:
    exp(f) - y f; gamma: y exp(-f) + f), so ``P1 = d``, ``P2 = d^2`` is our factor d of the
    lasso / elastic net; with a lower bound active, the same optimum to 1e-7."""
    glum = pytest.importorskip("glum")
    d = np.array([0.0, 0.5, 1.0, 2.0, 1.5, 0.7])
    lo = np.array([-INF, -INF, 0.0, -0.1, -INF, -INF])
    Xs, ys = make_tasks(loss, sizes=(80,), seed=1)
    X, y = Xs[0], ys[0]
    g = glum.GeneralizedLinearRegressor(
        alpha=alpha, l1_ratio=l1_ratio, P1=d, P2=d ** 2, family=family, lower_bounds=lo,
        gradient_tol=1e-13, max_iter=1000).fit(X, y)
    pen, name = ("l1", "l1") if l1_ratio == 1.0 else (rm.ElasticNet(0.5), "elasticnet")
    ours = rm.MultiTaskRegressor(pen, loss=loss, alpha=alpha, tol=1e-12, penalty_factor=d,
                                 rescale_factors=False, lower_bounds=lo).fit(X, y)
    if loss == "squared":
        assert ours.coef_[3] == -0.1  # (the bound is active)
    np.testing.assert_allclose(ours.coef_, g.coef_, rtol=0, atol=1e-7)
    assert ours.intercept_ == pytest.approx(g.intercept_, abs=1e-7)
    mine = np_objective(loss, name, Xs, ys, ours.coef_[:, None], np.array([ours.intercept_]),
                        d, alpha)
    theirs = np_objective(loss, name, Xs, ys, g.coef_[:, None], np.array([g.intercept_]),
                          d, alpha)
    assert mine <= theirs + 1e-12 * abs(theirs)
    assert ours.objective_ == pytest.approx(mine, rel=1e-10)


# =========================================================================== 6. skglm
def test_weighted_lasso_against_skglm():
    """skglm's ``WeightedL1`` (a weight 0 unpenalized) with its ``Quadratic`` datafit
    ``||y - Xw||^2 / (2n)``, no intercept: the same coefficients to 1e-8."""
    pytest.importorskip("skglm")
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import Quadratic
    from skglm.penalties import WeightedL1
    from skglm.solvers import AndersonCD

    d = np.array([0.0, 0.5, 1.0, 2.0, 1.5, 0.7])
    Xs, ys = make_tasks("squared", sizes=(40,), seed=2)
    X, y = Xs[0], ys[0]
    sk = GeneralizedLinearEstimator(Quadratic(), WeightedL1(0.1, d),
                                    AndersonCD(tol=1e-13, fit_intercept=False,
                                               max_iter=1000)).fit(X, y)
    ours = rm.MultiTaskRegressor("l1", alpha=0.1, tol=1e-13, fit_intercept=False,
                                 penalty_factor=d, rescale_factors=False).fit(X, y)
    assert np.any(ours.coef_ == 0.0)
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=0, atol=1e-8)


def test_weighted_rows_against_skglm_group_lasso():
    """skglm 0.5 has no weighted multi-task L2,1; its ``WeightedGroupL2`` on the tasks
    stacked block-diagonally (``QuadraticGroup``: ``||y - Xw||^2 / (2 N)``, N = T n, so its
    alpha is ours / T; group j = feature j in every task) is ours with row factors d."""
    pytest.importorskip("skglm")
    from scipy.linalg import block_diag
    from skglm import GeneralizedLinearEstimator
    from skglm.datafits import QuadraticGroup
    from skglm.penalties import WeightedGroupL2
    from skglm.solvers import GroupBCD

    d = np.array([0.0, 0.5, 1.0, 2.0, 1.5, 0.7])
    n, alpha = 30, 1.2
    Xs, ys = make_tasks("squared", sizes=(n,) * T, seed=4)
    idx = np.array([[t * P + j for t in range(T)] for j in range(P)], dtype=np.int32).ravel()
    ptr = (np.arange(P + 1) * T).astype(np.int32)
    sk = GeneralizedLinearEstimator(
        QuadraticGroup(ptr, idx), WeightedGroupL2(alpha / T, d, ptr, idx),
        GroupBCD(tol=1e-13, fit_intercept=False, max_iter=2000)).fit(
            block_diag(*Xs), np.concatenate(ys))
    ours = rm.MultiTaskRegressor("l21", alpha=alpha, tol=1e-13, fit_intercept=False,
                                 penalty_factor=d, rescale_factors=False).fit(Xs, ys)
    assert np.any(np.all(ours.coef_ == 0.0, axis=0))  # (a row is zero)
    np.testing.assert_allclose(ours.coef_, sk.coef_.reshape(T, P), rtol=0, atol=1e-8)


# =========================================================================== 7. bad input
_p = P
BAD = [
    (dict(penalty_factor=np.array([1, np.nan, 1, 1, 1, 1.0])), "penalty_factor must be >= 0"),
    (dict(penalty_factor=np.array([1, -1, 1, 1, 1, 1.0])), "penalty_factor must be >= 0"),
    (dict(penalty_factor=np.ones(_p - 1)), r"penalty_factor has shape \(5,\)"),
    (dict(penalty_factor=np.ones((_p, T + 1))), r"penalty_factor has shape \(6, 4\)"),
    (dict(penalty_factor=2 * np.ones((_p, T))), r"penalty_factor of shape \(p, T\) needs a "
     r"penalty separable over tasks.*L21"),
    (dict(lower_bounds=np.array([0, 0, 1, 0, 0, 0.0]), upper_bounds=0.5),
     "lower_bounds > upper_bounds at feature 2"),
    (dict(upper_bounds=np.array([1, np.nan, 1, 1, 1, 1.0])), "upper_bounds holds NaN"),
    (dict(lower_bounds=np.nan), "lower_bounds holds NaN"),
    (dict(lower_bounds=np.zeros(_p - 2)), r"lower_bounds has shape \(4,\)"),
    (dict(penalty_factor={"nope": 2.0}), "penalty_factor: unknown feature 'nope'"),
    (dict(upper_bounds={"nope": 2.0}), "upper_bounds: unknown feature 'nope'"),
    (dict(penalty_factor={9: 2.0}), "penalty_factor: feature 9 is out of range"),
    (dict(exclude=["x0"]), "exclude: unknown feature 'x0'"),
    (dict(exclude=np.ones(_p, dtype=bool)), "every feature is excluded"),
    (dict(exclude=list(range(_p))), "every feature is excluded"),
    (dict(penalty_factor=np.full(_p, INF)), "every feature is excluded"),
    (dict(exclude=np.ones(_p - 2, dtype=bool)), r"exclude: a mask of shape \(4,\)"),
]


@pytest.mark.parametrize("terms, message", BAD, ids=[
    "nan-factor", "negative-factor", "short-factor", "factor-columns", "pT-with-l21",
    "lower>upper", "nan-upper", "nan-lower", "bound-shape", "unknown-name",
    "unknown-name-bound", "position-out-of-range", "exclude-unknown", "exclude-mask-all",
    "exclude-all", "inf-all", "mask-shape"])
def test_bad_terms_are_refused_naming_the_argument(terms, message):
    Xs, ys = make_tasks("squared")
    with pytest.raises(ValueError, match=message):
        rm.MultiTaskRegressor("l21", alpha=0.1, **terms).fit(Xs, ys)


def test_an_unknown_column_name_lists_the_columns():
    pd = pytest.importorskip("pandas")
    Xs, ys = make_tasks("squared")
    X = pd.DataFrame(np.vstack(Xs), columns=[f"f{j}" for j in range(P)])
    task = np.repeat(np.arange(T), [len(v) for v in ys])
    with pytest.raises(ValueError, match=r"penalty_factor: unknown feature 'zz' \(the "
                                         r"columns are f0, f1"):
        rm.MultiTaskRegressor("l21", penalty_factor={"zz": 0}).fit(X, np.concatenate(ys), task)


# =========================================================================== 8. School
def _school():
    try:
        return rm.datasets.load_school()
    except (rm.datasets.DataFileError, FileNotFoundError, OSError) as exc:
        pytest.skip(f"School data not available: {exc}")


#: the columns that describe the school, not the pupil (constant within a task)
SCHOOL_LEVEL = ("pct_free_school_meals", "pct_vr1_band", "school_mixed", "school_boys",
                "school_girls", "school_maintained", "school_church_of_england",
                "school_roman_catholic")


def test_school_with_school_level_columns_unpenalized():
    """139 schools; the school-level columns unpenalized (collinear with the intercept
    within each task: the objective, not those coefficients, is unique), the pupil-level
    ones under L2,1: the fit is certified, equals cvxpy's minimum to 1e-6 relative, and
    meets the optimality conditions in numpy: the free columns' and intercepts' gradient
    ~0 per task, the L2,1 subgradient condition on the penalized rows."""
    data = _school()
    Xs, ys, names = data.X, data.y, list(data.feature_names)
    assert len(Xs) == 139 and len(names) == 28
    free = np.array([f in SCHOOL_LEVEL for f in names])
    assert free.sum() == len(SCHOOL_LEVEL)
    for X in Xs:  # (school gender and denomination: one value per school; the two
        # percentages describe the school too, but change with the exam year)
        assert np.all(X[:, 21:27] == X[0, 21:27])
    d = np.where(free, 0.0, 1.0)
    alpha, tol = 2.0, 1e-10
    est = rm.MultiTaskRegressor("l21", alpha=alpha, tol=tol, penalty_factor=d,
                                rescale_factors=False).fit(Xs, ys)
    W, b = matrix_of(est)
    zero_rows = np.all(W == 0.0, axis=1)
    assert zero_rows.any() and not zero_rows[free].any()
    _assert_certified(est, 1e-9)
    mine = np_objective("squared", "l21", Xs, ys, W, b, d, alpha)
    assert est.objective_ == pytest.approx(mine, rel=1e-12)
    _cp()
    ref, _, _ = cvx_minimum("squared", "l21", Xs, ys, d, alpha)
    assert abs(est.objective_ - ref) <= REL * abs(ref)
    assert est.objective_ >= ref - REL * abs(ref)
    # optimality in numpy: G = -grad of the data term, per task's column
    G = np.zeros_like(W)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        r = y - X @ W[:, t] - b[t]
        G[:, t] = X.T @ r / len(y)
        assert abs(r.mean()) <= 1e-8  # intercept
    scale = np.abs(G).max(initial=1.0)
    assert np.abs(G[free]).max() <= 1e-7 * max(scale, 1.0)
    for j in np.flatnonzero(~free):
        nw = np.linalg.norm(W[j])
        if nw > 0:
            assert np.linalg.norm(G[j] - alpha * d[j] * W[j] / nw) <= 1e-6 * alpha
        else:
            assert np.linalg.norm(G[j]) <= alpha * d[j] * (1 + 1e-9)


# ============================================ alpha past the penalized rows' alpha_max


@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson"])
def test_unpenalized_features_at_a_large_alpha(loss):
    """At alpha = 5 every penalized row is 0; the unpenalized feature is still fitted."""
    _cp()
    Xs, ys = make_tasks(loss)
    est = estimator(loss, "l21", alpha=5.0, tol=1e-10, penalty_factor=FACTORS,
                    rescale_factors=False).fit(Xs, ys)
    W, b = matrix_of(est)
    ref, Wc, _ = cvx_minimum(loss, "l21", Xs, ys, FACTORS, 5.0)
    assert np.abs(Wc[0]).max() > 0.1 and np.abs(Wc[1:]).max() < 1e-7
    _assert_matches_minimum(est, np_objective(loss, "l21", Xs, ys, W, b, FACTORS, 5.0), ref)
    _assert_certified(est)




@pytest.mark.parametrize("alpha", [pytest.param(None, id="small-alpha"),
                                   pytest.param(5.0, id="large-alpha")])
@pytest.mark.parametrize("name", ["l1", "l21"])
@pytest.mark.parametrize("loss", LOSSES)
def test_a_box_without_zero(loss, name, alpha):
    _cp()
    Xs, ys = make_tasks(loss)
    alpha = ALPHA[loss] if alpha is None else alpha
    lo = np.full(P, -INF)
    lo[2] = 0.2
    est = estimator(loss, name, alpha=alpha, tol=1e-10, lower_bounds=lo).fit(Xs, ys)
    W, b = matrix_of(est)
    assert np.all(W[2] >= 0.2)
    ones = np.ones(P)
    ref, _, _ = cvx_minimum(loss, name, Xs, ys, ones, alpha, lower=lo)
    _assert_matches_minimum(est, np_objective(loss, name, Xs, ys, W, b, ones, alpha), ref)


def test_poisson_lasso_with_a_box_reaches_a_tight_tol():
    """A box on every feature (the unpenalized one too): the fit reaches tol=1e-10 without a
    ConvergenceWarning (an earlier state stalled at a KKT residual of 6.8e-10)."""
    Xs, ys = make_tasks("poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = estimator("poisson", "l1", alpha=ALPHA["poisson"], tol=1e-10, max_iter=300,
                        penalty_factor=FACTORS, rescale_factors=False, lower_bounds=-0.25,
                        upper_bounds=0.4).fit(Xs, ys)
    assert est.kkt_residual_ <= 1e-10


def test_the_losses_of_the_references_agree():
    """The numpy losses of ``_feature_cases`` at a point against their definitions, so the
    references above rest on a checked base (squared: half the mean square; Poisson
    exp(f) - y f; logistic log(1 + exp(-s f)) with s = 2y - 1)."""
    Xs, ys = make_tasks("poisson")
    W, b = np.full((P, T), 0.1), np.arange(T) * 0.1
    want = sum(np.mean(np.exp(X @ W[:, t] + b[t]) - y * (X @ W[:, t] + b[t]))
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    assert np_loss("poisson", Xs, ys, W, b) == pytest.approx(want, rel=1e-14)
    est = rm.MultiTaskRegressor("l2", loss="poisson", alpha=0.0).fit(Xs, ys)
    Wf, bf = matrix_of(est)
    assert est.objective_ == pytest.approx(np_loss("poisson", Xs, ys, Wf, bf), rel=1e-12)
