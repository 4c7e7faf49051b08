"""Properties of the linear estimators: every penalty and loss, on drawn shapes, dtypes, layouts,
scales, non-finite values and task ids, ends in a clear error or a certified result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _strategies import (
    DRAW_KNOWN,
    Drawn,
    assert_certified,
    assert_clear_error,
    coef_by_label,
    examples,
    fit_or_error,
    intercept_by_label,
    objective_at_zero,
    problems,
)
from hypothesis import assume, given
from hypothesis import strategies as st

import regmtl as rm

FIT_NAMES = ("X", "y", "task", "alpha", "penalty")


def penalty_for(name: str, p: int, T: int) -> rm.Penalty:
    """An instance of the penalty ``name`` for p features and T tasks."""
    return {
        "L1": lambda: rm.L1(), "L2": lambda: rm.L2(), "ElasticNet": lambda: rm.ElasticNet(0.5),
        "L21": lambda: rm.L21(), "L21(0.6)": lambda: rm.L21(0.6),
        "MultiSource": lambda: rm.MultiSource((p,) if p < 2 else (p // 2, p - p // 2)),
        "LInf1": lambda: rm.LInf1(), "Trace": lambda: rm.Trace(),
        "MeanRegularized": lambda: rm.MeanRegularized(),
        "MeanRegularized(0.4)": lambda: rm.MeanRegularized(0.4),
        "GraphLaplacian": lambda: rm.GraphLaplacian(rm.chain_graph(T)),
        "Clustered": lambda: rm.Clustered(min(2, T), 0.5),
        "SharedStructure": lambda: rm.SharedStructure(1, 0.5),
        "Dirty": lambda: rm.Dirty(0.6), "SparseLowRank": lambda: rm.SparseLowRank(0.2),
        "RobustLowRank": lambda: rm.RobustLowRank(0.6),
        "RobustFeatures": lambda: rm.RobustFeatures(0.8),
        "TemporalGroupLasso": lambda: rm.TemporalGroupLasso(1.0, 0.5),
        "FusedGroupLasso": lambda: rm.FusedGroupLasso(0.5, 0.3),
        "MCP": lambda: rm.MCP(3.0), "MCP(group)": lambda: rm.MCP(1.5, group=True),
        "SCAD": lambda: rm.SCAD(3.7), "SCAD(group)": lambda: rm.SCAD(2.5, group=True),
        "CappedL1": lambda: rm.CappedL1(2.0),
        "CappedL1(group)": lambda: rm.CappedL1(2.0, group=True),
        "NonconvexFusedGroupLasso": lambda: rm.NonconvexFusedGroupLasso(0.5),
    }[name]()


PENALTIES = ("L1", "L2", "ElasticNet", "L21", "L21(0.6)", "MultiSource", "LInf1", "Trace",
             "MeanRegularized", "MeanRegularized(0.4)", "GraphLaplacian", "Clustered",
             "SharedStructure", "Dirty", "SparseLowRank", "RobustLowRank", "RobustFeatures",
             "TemporalGroupLasso", "FusedGroupLasso", "MCP", "MCP(group)", "SCAD",
             "SCAD(group)", "CappedL1", "CappedL1(group)", "NonconvexFusedGroupLasso")
FRACTIONS = (0.0, 1e-3, 0.05, 0.5, 1.0, 2.0)
MODERATE = (1e-5, 1.0, 1e5)  # scales of the properties that compare fits


def test_every_registered_penalty_is_drawn():
    names = {type(penalty_for(n, 4, 3)).__name__ for n in PENALTIES}
    from regmtl.penalties import PENALTY_CLASSES

    assert names == set(PENALTY_CLASSES)


def _alpha(drawn: Drawn, pen: rm.Penalty, frac: float, loss: str = "squared") -> float:
    """``frac`` times alpha_max where the penalty has one, else times the data's scale."""
    try:
        a = rm.alpha_max(*drawn.args, **drawn.kwargs, penalty=pen, loss=loss)
    except (ValueError, TypeError):
        a = np.inf
    if np.isfinite(a) and a > 0:
        return frac * a
    return frac * min(drawn.scale_x, 1e150) ** 2


def _skip_known(drawn: Drawn, name: str, alpha: float = 1.0, loss: str = "squared") -> None:
    """Leave out the regions of the known failures below (unless REGMTL_FUZZ_KNOWN=1)."""
    if DRAW_KNOWN:
        return
    # keeps the profile's derandomized draws those of the suite as it landed; the Poisson fits
    # at X x 1e5 are themselves checked by test_poisson_quasi_newton_at_a_large_x_warns_nothing
    assume(not (loss == "poisson" and drawn.scale_x >= 1e5))
    # quantile with TemporalGroupLasso at X, y x 1e-5 runs 64,000 iterations (20 s) and stops
    # at a relative gap above 1 (reported, with a ConvergenceWarning): too slow for the profile
    assume(not (loss == "quantile" and (drawn.scale_x, drawn.scale_y) != (1.0, 1.0)))


@examples(60)
@given(drawn=problems(), name=st.sampled_from(PENALTIES), frac=st.sampled_from(FRACTIONS))
def test_regressor_with_every_penalty_errs_clearly_or_is_certified(drawn, name, frac):
    pen = penalty_for(name, drawn.n_features, drawn.n_tasks)
    alpha = _alpha(drawn, pen, frac) if not drawn.bad else 0.1
    _skip_known(drawn, name, alpha)
    model, caught = fit_or_error(lambda: rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6),
                                 drawn, FIT_NAMES)
    if model is None:
        return
    assert_certified(model, objective_at_zero(drawn, rm.Quadratic()), caught)
    pred = model.predict(*drawn.predict_args, **drawn.predict_kwargs)
    parts = pred if isinstance(pred, list) else [pred]
    assert all(np.all(np.isfinite(np.asarray(q, dtype=float))) for q in parts)


# ------------------------------------------------------------------------------- every loss
LOSS_PENALTIES = ("L1", "L2", "L21", "Trace", "MeanRegularized(0.4)", "Dirty", "MCP",
                  "TemporalGroupLasso")


def _datafit(loss: str) -> rm.datafits.Datafit:
    return {"poisson": rm.Poisson(), "gamma": rm.Gamma(), "huber": rm.Huber(),
            "quantile": rm.Quantile(), "logistic": rm.Logistic()}[loss]


@examples(40)
@given(data=st.data(), loss=st.sampled_from(("logistic", "poisson", "gamma", "huber",
                                             "quantile")),
       name=st.sampled_from(LOSS_PENALTIES), frac=st.sampled_from((1e-3, 0.1, 1.0)))
def test_every_loss_errs_clearly_or_is_certified(data, loss, name, frac):
    drawn = data.draw(problems(loss=loss, min_rows=2))
    pen = penalty_for(name, drawn.n_features, drawn.n_tasks)
    alpha = _alpha(drawn, pen, frac, loss) if not drawn.bad else 0.1
    _skip_known(drawn, name, alpha, loss)
    if loss == "logistic":
        def make():
            return rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-6)
    else:
        def make():
            return rm.MultiTaskRegressor(pen, alpha=alpha, loss=loss, tol=1e-6)
    model, caught = fit_or_error(make, drawn, (*FIT_NAMES, "loss"))
    if model is None:
        return
    ys = [np.where(y > 0.5, 1.0, -1.0) for y in drawn.ys] if loss == "logistic" else None
    assert_certified(model, objective_at_zero(drawn, _datafit(loss), ys), caught)


# ------------------------------------------------------------------------------- references
def _hand_objective(loss: str, drawn: Drawn, W: np.ndarray, b: np.ndarray, alpha: float,
                    penalty: str) -> float:
    """sum_t (1/n_t) sum_i l(y_ti, x_ti w_t + b_t) + alpha Omega(W), written from the math
    (squared: r^2 / 2; logistic: log(1 + exp(-s f)); Poisson: exp(f) - y f)."""
    total = 0.0
    for t, (X, y) in enumerate(zip(drawn.Xs, drawn.ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            terms = 0.5 * (y - f) ** 2
        elif loss == "logistic":
            terms = np.logaddexp(0.0, -np.where(y > 0.5, 1.0, -1.0) * f)
        else:
            terms = np.exp(f) - y * f
        total += float(np.mean(terms))
    if penalty == "L2":
        return total + 0.5 * alpha * float(np.sum(W * W))
    if penalty == "L1":
        return total + alpha * float(np.abs(W).sum())
    return total + alpha * float(np.linalg.norm(W, axis=1).sum())  # L21


def _reference_fit(loss: str, penalty: str, drawn: Drawn, alpha: float):
    """(W, b) of scikit-learn's estimator of the same problem, task by task (one
    ``MultiTaskLasso`` for L21 on a shared design), or the ridge closed form."""
    from sklearn.linear_model import Lasso, LogisticRegression, MultiTaskLasso, PoissonRegressor

    p, T = drawn.n_features, drawn.n_tasks
    if penalty == "L21":
        ref = MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(
            drawn.Xs[0], np.column_stack(drawn.ys))
        return ref.coef_.T, ref.intercept_
    W, b = np.zeros((p, T)), np.zeros(T)
    for t, (X, y) in enumerate(zip(drawn.Xs, drawn.ys, strict=True)):
        n = len(y)
        if loss == "squared" and penalty == "L2":  # (Xc'Xc + n alpha I) w = Xc'yc
            Xc, yc = X - X.mean(axis=0), y - y.mean()
            W[:, t] = np.linalg.solve(Xc.T @ Xc + n * alpha * np.eye(p), Xc.T @ yc)
            b[t] = y.mean() - X.mean(axis=0) @ W[:, t]
            continue
        if loss == "squared":
            ref = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
        elif loss == "logistic":
            ref = LogisticRegression(C=1.0 / (n * alpha), tol=1e-12, max_iter=10_000).fit(X, y)
        else:
            ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10_000).fit(X, y)
        W[:, t], b[t] = np.ravel(ref.coef_), np.ravel(ref.intercept_)[0]
    return W, b


REFERENCE_CASES = (("squared", "L2"), ("squared", "L1"), ("squared", "L21"),
                   ("logistic", "L2"), ("poisson", "L2"))


@examples(20)
@given(data=st.data(), case=st.sampled_from(REFERENCE_CASES),
       frac=st.sampled_from((1e-3, 0.05, 0.5)))
def test_fits_agree_with_scikit_learn_within_their_certificate(data, case, frac):
    """P(W_regmtl) <= P(W_reference) + dual_gap_ (the gap bounds the distance to the optimum,
    which is at most the reference's objective), and ``objective_`` is P(W_regmtl) for the
    squared loss; for ridge also ||W - W*||_F^2 <= 2 gap / alpha (strong convexity)."""
    loss, penalty = case
    forms = ("shared",) if penalty == "L21" else ("list", "long", "shared", "single")
    drawn = data.draw(problems(loss=loss, forms=forms, min_rows=3, bad_values=False,
                               layouts=("C", "F", "csr"), scales=MODERATE))
    pen = penalty_for(penalty, drawn.n_features, drawn.n_tasks)
    alpha = _alpha(drawn, pen, frac, loss)
    assume(alpha > 0)
    _skip_known(drawn, penalty, alpha, loss)
    est = (rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-8) if loss == "logistic" else
           rm.MultiTaskRegressor(pen, alpha=alpha, loss=loss, tol=1e-8))
    model, caught = fit_or_error(lambda: est, drawn, FIT_NAMES)
    assert model is not None
    W, b = coef_by_label(model, drawn), intercept_by_label(model, drawn)
    with warnings.catch_warnings():  # the reference's own warnings are not under test
        warnings.simplefilter("ignore")
        Wr, br = _reference_fit(loss, penalty, drawn, alpha)
    assume(np.all(np.isfinite(Wr)) and np.all(np.isfinite(br)))
    mine = _hand_objective(loss, drawn, W, b, alpha, penalty)
    theirs = _hand_objective(loss, drawn, Wr, br, alpha, penalty)
    scale = max(abs(mine), abs(theirs), 1e-300)
    assert mine <= theirs + model.dual_gap_ + 1e-9 * scale, (mine, theirs, model.dual_gap_)
    if loss == "squared":
        assert abs(model.objective_ - mine) <= 1e-8 * scale + model.dual_gap_, (
            model.objective_, mine)
    if loss == "squared" and penalty == "L2":
        dist2 = float(np.sum((W - Wr) ** 2))
        assert dist2 <= 2.0 * model.dual_gap_ / alpha * (1 + 1e-6) + 1e-12 * np.sum(Wr**2) + \
            1e-300, (dist2, model.dual_gap_)


# ------------------------------------------------------------------------------- CV estimators
@examples(12)
@given(drawn=problems(max_tasks=2), name=st.sampled_from(("L1", "L21", "L2", "Trace")),
       cv=st.sampled_from((2, 3)))
def test_cv_estimators_err_clearly_or_pick_a_certified_model(drawn, name, cv):
    pen = penalty_for(name, drawn.n_features, drawn.n_tasks)
    model, caught = fit_or_error(
        lambda: rm.MultiTaskRegressorCV(pen, alphas=3, cv=cv, tol=1e-6),
        drawn, (*FIT_NAMES, "cv", "alphas"))
    if model is None:
        return
    best = model.best_estimator_
    assert_certified(best, objective_at_zero(drawn, rm.Quadratic()), caught)
    assert np.all(np.isfinite(np.atleast_1d(model.alpha_)))


# ------------------------------------------------------------------------------- warm starts
CONVEX = ("L1", "L2", "ElasticNet", "L21", "LInf1", "Trace", "MeanRegularized(0.4)",
          "GraphLaplacian", "Dirty", "SparseLowRank", "RobustLowRank", "TemporalGroupLasso",
          "FusedGroupLasso")


@examples(12)
@given(data=st.data(), name=st.sampled_from(CONVEX), fracs=st.lists(
    st.sampled_from((1e-3, 0.05, 0.5, 1.5)), min_size=2, max_size=3))
def test_warm_starts_on_changed_data_are_certified_for_that_data(data, name, fracs):
    """A sequence of warm-started fits, each on new data of the same shape and a drawn alpha,
    reaches the objective of a cold fit of that data within the certificates."""
    first = data.draw(problems(forms=("list",), bad_values=False, min_rows=2,
                               scales=MODERATE))
    pen = penalty_for(name, first.n_features, first.n_tasks)
    warm = rm.MultiTaskRegressor(pen, alpha=1.0, tol=1e-6, warm_start=True)
    for k, frac in enumerate(fracs):
        drawn = first if k == 0 else changed(first, data.draw(st.integers(0, 2**16)))
        alpha = _alpha(drawn, pen, frac)
        warm.set_params(alpha=alpha)
        cold = rm.MultiTaskRegressor(pen, alpha=alpha, tol=1e-6)
        w_model, w_caught = fit_or_error(lambda w=warm: w, drawn, FIT_NAMES)
        c_model, c_caught = fit_or_error(lambda c=cold: c, drawn, FIT_NAMES)
        P0 = objective_at_zero(drawn, rm.Quadratic())
        assert_certified(w_model, P0, w_caught)
        assert_certified(c_model, P0, c_caught)
        slack = 2 * model_tolerance(P0, w_model, c_model)
        assert abs(w_model.objective_ - c_model.objective_) <= slack, (
            k, w_model.objective_, c_model.objective_)


def changed(drawn: Drawn, seed: int) -> Drawn:
    """New data of the same shapes and scales as ``drawn`` (list form): X moved by half its
    scale, y drawn afresh."""
    rng = np.random.default_rng(seed)
    Xs = [x + 0.5 * drawn.scale_x * rng.standard_normal(x.shape) for x in drawn.Xs]
    ys = [drawn.scale_y * rng.standard_normal(len(y)) + 2.0 * y for y in drawn.ys]
    return Drawn(Xs, ys, drawn.labels, "list", (Xs, ys), predict_args=(Xs,),
                 scale_x=drawn.scale_x, scale_y=drawn.scale_y, desc=f"changed({seed})")


def model_tolerance(P0: float, *models) -> float:
    """What the certificates allow between two fits' objectives."""
    return sum(m.tol * P0 for m in models) + 1e-12 * P0


# ------------------------------------------------------------------------------- known failures
# Each case the properties found that fails today, as its own test with the reproduction; the
# strategies leave these regions out (FAR_SCALES) unless REGMTL_FUZZ_KNOWN=1.
# Flip a test (remove its xfail) when the fix lands.
def _fit_strict(est, *args):
    """A fit with every warning an error (a RuntimeWarning of numpy is a silent failure here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*at or above alpha_max")
        return est.fit(*args)


def _cert_or_clear(make, args, P0):
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = make().fit(*args)
    except Exception as exc:  # noqa: BLE001 - the invariant checks the type
        assert_clear_error(exc, ("X", "y"))
        return
    for w in caught:
        assert not issubclass(w.category, RuntimeWarning), str(w.message)
    assert_certified(model, P0, caught)


RNG = np.random.default_rng(0)
Z55 = RNG.standard_normal((5, 5))
Y51 = Z55 @ RNG.standard_normal((5, 1)) + 0.3 * RNG.standard_normal((5, 1))
Z95 = RNG.standard_normal((9, 5))
Y93 = Z95 @ RNG.standard_normal((5, 3))


@pytest.mark.xfail(strict=True, reason=(
    "the KKT residual of MCP/SCAD/CappedL1 grows as 1/scale of X: at alpha_max with X x 1e-20 "
    "the (right) W = 0 reports kkt_residual_ 5.2e3 > tol=1e-6, no warning. Repro: "
    "a = rm.alpha_max(Z * 1e-20, y, penalty=rm.MCP(3.0)); "
    "rm.MultiTaskRegressor(rm.MCP(3.0), alpha=a, tol=1e-6).fit(Z * 1e-20, y).kkt_residual_"))
@pytest.mark.parametrize("pen", [rm.MCP(3.0), rm.SCAD(3.7), rm.CappedL1(2.0)], ids=str)
def test_known_nonconvex_kkt_residual_depends_on_the_scale_of_x(pen):
    X, y = Z55 * 1e-20, Y51[:, 0]
    a = rm.alpha_max(X, y, penalty=pen)
    with warnings.catch_warnings():  # at alpha_max the fit says W = 0 is stationary
        warnings.filterwarnings("ignore", message=".*at or above alpha_max")
        model = _fit_strict(rm.MultiTaskRegressor(pen, alpha=a, tol=1e-6), X, y)
    assert np.all(model.coef_ == 0.0)
    assert model.kkt_residual_ <= 1e-6


@pytest.mark.parametrize("pen, alpha", [(rm.Clustered(1, 0.5), 0.1),
                                        (rm.SharedStructure(1, 0.5), 0.1),
                                        (rm.Clustered(2, 0.5), 0.1), (rm.Trace(), 0.0),
                                        (rm.TemporalGroupLasso(1.0, 0.5), 0.0),
                                        (rm.FusedGroupLasso(0.5, 0.3), 0.0),
                                        (rm.LInf1(), 0.0)], ids=str)
def test_all_zero_design(pen, alpha):
    Y = RNG.standard_normal((6, 2))
    model = _fit_strict(rm.MultiTaskRegressor(pen, alpha=alpha), np.zeros((6, 2)), Y)
    assert np.all(model.coef_ == 0.0)


@pytest.mark.parametrize("pen", ["trace", rm.SparseLowRank(0.2)], ids=str)
def test_alpha_max_of_spectral_penalties_at_1e100(pen):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = rm.alpha_max(Z95 * 1e100, Y93 * 1e100, penalty=pen)
    assert np.isclose(a, 1e200 * rm.alpha_max(Z95, Y93, penalty=pen), rtol=1e-10)


def test_trace_fit_at_1e100():
    a = 0.05 * 1e200 * rm.alpha_max(Z55, Y51, penalty="trace")
    model = _fit_strict(rm.MultiTaskRegressor("trace", alpha=a, tol=1e-6), Z55 * 1e100,
                        Y51 * 1e100)
    ref = rm.MultiTaskRegressor("trace", alpha=a / 1e200, tol=1e-6).fit(Z55, Y51)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-4, atol=1e-8)


def test_temporal_group_lasso_at_y_1e140():
    rng = np.random.default_rng(1)
    Xs = [np.round(3 * rng.standard_normal((n, 1))) for n in (9, 4)]
    ys = [1e140 * rng.standard_normal(n) for n in (9, 4)]
    pen = rm.TemporalGroupLasso(1.0, 0.5)
    a = 1e-3 * rm.alpha_max(Xs, ys, penalty=pen)
    drawn = Drawn(Xs, ys, [0, 1], "list", (Xs, ys))
    _cert_or_clear(lambda: rm.MultiTaskRegressor(pen, alpha=a, tol=1e-6), (Xs, ys),
                   objective_at_zero(drawn, rm.Quadratic()))


def test_poisson_quasi_newton_at_a_large_x_warns_nothing():
    X = np.array([[-0.244, -1.022, -0.962], [0.164, 0.381, 0.868], [-0.518, -0.058, 1.051],
                  [0.887, 0.452, -2.027], [0.463, 0.866, -0.292]]) * 1e5
    y = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    _fit_strict(rm.MultiTaskRegressor("l2", alpha=5e9, loss="poisson", tol=1e-8), X, y)


@pytest.mark.xfail(strict=True, reason=(
    "a Poisson task whose counts are all zero has no finite intercept (its infimum 0 is not "
    "attained): the fit holds the intercept at -30 and reports dual_gap_ = objective_ = 9.4e-14 "
    "without a warning, above tol * P0 of the drawn problem. Repro: "
    "rm.MultiTaskRegressor('l1', loss='poisson', alpha=1.87e-13).fit([[[1, -4], [3, 1]]], "
    "[[0.0, 0.0]])"))
def test_known_poisson_task_of_zero_counts_is_certified_or_named():
    X, y = [np.array([[1.0, -4.0], [3.0, 1.0]])], [np.array([0.0, 0.0])]
    a = rm.alpha_max(X, y, penalty="l1", loss="poisson")
    model = _fit_strict(rm.MultiTaskRegressor("l1", loss="poisson", alpha=a), X, y)
    assert model.dual_gap_ <= model.tol * 1e-16
