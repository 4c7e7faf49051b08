"""The new losses against scikit-learn's single-task estimators, on every input form, with an
offset, at extreme linear predictors, and refusing bad input by name.

scikit-learn's objectives, and the alpha of regmtl that is the same problem (one task, n rows):

- ``PoissonRegressor``: ``1/(2n) sum dev(y, mu) + alpha/2 ||w||^2``; half the Poisson
  deviance is ``exp(f) - y f`` up to a constant in y, so ``L2`` (``alpha/2 ||w||^2``) takes the
  same alpha; ``GammaRegressor`` the same (half the Gamma deviance is ``y exp(-f) + f`` up to
  a constant);
- ``QuantileRegressor``: ``1/n sum pinball + alpha ||w||_1``: ``L1``, the same alpha;
- ``LogisticRegression``: ``1/2 ||w||^2 + C sum log-loss``: ``alpha = 1 / (n C)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _loss_cases import RUN_PENDING, TAU, loss_object, make_problem, targets
from conftest import refused
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm


def _one_task(loss, n=80, p=5, seed=0):
    Xs, ys = make_problem(loss, sizes=(n,), p=p, seed=seed)
    return Xs[0], ys[0]


# --------------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("loss, peer, regmtl_penalty", [
    ("poisson", "PoissonRegressor", "l2"),
    ("gamma", "GammaRegressor", "l2"),
])
def test_log_link_l2_equals_scikit_learn(loss, peer, regmtl_penalty):
    import sklearn.linear_model as lm

    X, y = _one_task(loss)
    alpha = 0.05
    ref = getattr(lm, peer)(alpha=alpha, tol=1e-12, max_iter=10000,
                            solver="newton-cholesky").fit(X, y)
    model = rm.MultiTaskRegressor(regmtl_penalty, alpha=alpha, loss=loss, tol=1e-13,
                                  max_iter=10000).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    assert abs(model.intercept_ - ref.intercept_) <= 1e-6 * max(1.0, abs(ref.intercept_))
    np.testing.assert_allclose(model.predict(X), ref.predict(X), rtol=1e-6)


def test_quantile_l1_equals_scikit_learn_highs():
    """The pinball loss with L1 is a linear program: HiGHS solves it exactly. Compared on
    the objective (a linear program may have several minimizers) and on the coefficients
    where the minimizer is unique."""
    from sklearn.linear_model import QuantileRegressor

    X, y = _one_task("quantile", n=60)
    alpha = 0.02
    ref = QuantileRegressor(quantile=TAU, alpha=alpha, solver="highs").fit(X, y)
    model = rm.MultiTaskRegressor("l1", alpha=alpha, loss=rm.Quantile(TAU), tol=1e-10,
                                  max_iter=20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)

    def objective(w, b):
        r = y - X @ w - b
        return np.mean(np.maximum(TAU * r, (TAU - 1) * r)) + alpha * np.abs(w).sum()

    best = objective(ref.coef_, ref.intercept_)
    assert objective(model.coef_, model.intercept_) <= best * (1 + 1e-6)


def test_logistic_equals_scikit_learn_unchanged():
    from sklearn.linear_model import LogisticRegression

    X, y = _one_task("logistic", n=80)
    C = 0.5
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(X, y)
    model = rm.MultiTaskClassifier("l2", alpha=1.0 / (len(y) * C), tol=1e-13,
                                   max_iter=10000).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_.ravel(), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- input forms
def _shared_with_missing(loss, n=40, p=5, T=3, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.2
    W = 0.4 * (rng.standard_normal((p, T)) + 1.0)
    Y = np.column_stack([targets(loss, X @ W[:, t] + 0.3, rng) for t in range(T)])
    Y[rng.random((n, T)) < 0.2] = np.nan
    return X, Y


@pytest.mark.parametrize("loss", ["poisson", "gamma", "huber"])
def test_every_input_form_gives_the_same_fit(loss):
    X, Y = _shared_with_missing(loss)
    T = Y.shape[1]
    kept = [~np.isnan(Y[:, t]) for t in range(T)]
    Xs, ys = [X[k] for k in kept], [Y[k, t] for t, k in enumerate(kept)]
    task = np.concatenate([np.full(k.sum(), t) for t, k in enumerate(kept)])
    perm = np.random.default_rng(0).permutation(len(task))
    Xl, yl, tl = np.vstack(Xs)[perm], np.concatenate(ys)[perm], task[perm]

    def fit(*args, **kw):
        return rm.MultiTaskRegressor("l21", alpha=0.02, loss=loss_object(loss), tol=1e-11,
                                     max_iter=10000).fit(*args, **kw)

    ref = fit(Xs, ys)
    others = [fit(Xl, yl, task=tl), fit([sp.csr_matrix(A) for A in Xs], ys)]
    if loss != "gamma":  # the shared design with missing labels: see the test below
        others += [fit(X, Y), fit(sp.csr_matrix(X), Y)]
    for other in others:
        np.testing.assert_allclose(other.coef_, ref.coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(other.intercept_, ref.intercept_, rtol=0, atol=1e-8)


def test_gamma_certificate_with_missing_labels_is_finite():
    X, Y = _shared_with_missing("gamma")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        model = rm.MultiTaskRegressor("l21", alpha=0.02, loss="gamma", tol=1e-8).fit(X, Y)
    assert np.isfinite(model.dual_gap_) and model.dual_gap_ >= 0.0


# --------------------------------------------------------------------------- extremes
def _exact_log_linear(lo, hi, n=60, seed=0):
    """Rates ``y = exp(X w + b)`` exactly (the unpenalized fit recovers w), with linear
    predictors spanning [lo, hi]."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 3))
    f = X @ np.array([3.0, -2.0, 1.0])
    a = (hi - lo) / (f.max() - f.min())
    w, b = a * np.array([3.0, -2.0, 1.0]), lo - a * f.min()
    return X, np.exp(X @ w + b), w, b


def test_poisson_at_linear_predictors_of_thirty_is_right_and_quiet():
    """Rates from e^-20 to e^30 (about 1e13): no NaN, no warning, not all zeros (the failure
    of scikit-learn #27016): the fit recovers the log-linear model exactly. (Measured: up to
    e^100 it is right too but takes 268 iterations and about 30 s on 60 x 3.)"""
    X, y, w, b = _exact_log_linear(-20.0, 30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = rm.MultiTaskRegressor("l2", alpha=1e-12, loss="poisson", tol=1e-10,
                                      max_iter=10000).fit(X, y)
        pred = model.predict(X)
    np.testing.assert_allclose(model.coef_, w, rtol=1e-8)
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)


@pytest.mark.xfail(strict=False, run=RUN_PENDING, reason=(
    "measured: rates spanning e^-690..e^20, e^-690..e^100 and e^-20..e^300 (exactly "
    "log-linear, alpha 1e-12) end in a stalled-progress ConvergenceWarning (relative gaps "
    "4e-2, 3e33, 4e58) with coefficients off. An 80-digit Newton (mpmath) gives the optimum: "
    "for e^-690..e^20 it is not the generating w (76% off: three rows have rates above e^-68, "
    "and the ridge outweighs the fourth row's curvature e^-68), so that case asks for the "
    "wrong answer; for the other two it is w (to 2e-10 and 2e-15), but the Hessian "
    "X' diag(e^f) X is numerically singular in float64 (3-4 rows within e^37 of the largest "
    "rate): even the weighted least-squares model at the optimum (IRLS's start, weights y) "
    "is not solved by the squared-loss rows nor by numpy.linalg.lstsq"))
@pytest.mark.parametrize("lo, hi", [(-690.0, 20.0), (-690.0, 100.0), (-20.0, 300.0)])
def test_poisson_at_linear_predictors_near_700_is_right_and_quiet(lo, hi):
    X, y, w, b = _exact_log_linear(lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = rm.MultiTaskRegressor("l2", alpha=1e-12, loss="poisson", tol=1e-10,
                                      max_iter=10000).fit(X, y)
    np.testing.assert_allclose(model.coef_, w, rtol=1e-6)


def test_poisson_targets_near_the_float_range_are_refused_clearly():
    """Rates up to e^650 (1e282): the loss sums would overflow; a ValueError names y."""
    X, y, _, _ = _exact_log_linear(-50.0, 650.0)
    refused(lambda: rm.MultiTaskRegressor("l2", alpha=1e-6, loss="poisson").fit(X, y),
            "y", "Rescale")


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_log_link_values_stay_finite_at_the_cap(loss):
    """The loss, its dual variable and its deviance are finite for |f| <= 700 and beyond."""
    datafit = rm.Poisson() if loss == "poisson" else rm.Gamma()
    f = np.array([-800.0, -700.0, -50.0, 0.0, 50.0, 700.0, 800.0])
    y = np.full_like(f, 3.0)
    c = np.full_like(f, 1.0 / f.size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(datafit.value(y, f, c))
        assert np.all(np.isfinite(datafit.theta(y, f)))
        assert np.all(np.isfinite(datafit.deviance(y, f)))


# --------------------------------------------------------------------------- offset
@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_offset_equals_weighted_rows(loss):
    """Poisson with offset o: ``e^f e^o - y (f + o)`` = ``e^o (e^f - (y / e^o) f)`` + const, the
    rows weighted by ``e^o`` with targets ``y / e^o``; sample weights are normalized to sum
    to n in the data term, so alpha is scaled by ``n / sum(e^o)``. Gamma: ``y e^-(f+o) + f``
    is the rows with targets ``y / e^o`` at weight 1."""
    X, y = _one_task(loss, n=70)
    o = np.random.default_rng(1).uniform(-1.0, 1.0, len(y))
    alpha = 0.01
    fit = rm.MultiTaskRegressor("l1", alpha=alpha, loss=loss, tol=1e-13,
                                max_iter=10000).fit(X, y, offset=o)
    e = np.exp(o)
    if loss == "poisson":
        ref = rm.MultiTaskRegressor("l1", alpha=alpha * len(y) / e.sum(), loss=loss,
                                    tol=1e-13, max_iter=10000).fit(X, y / e, sample_weight=e)
    else:
        ref = rm.MultiTaskRegressor("l1", alpha=alpha, loss=loss, tol=1e-13,
                                    max_iter=10000).fit(X, y / e)
    np.testing.assert_allclose(fit.coef_, ref.coef_, rtol=0, atol=1e-8)
    assert abs(fit.intercept_ - ref.intercept_) <= 1e-8
    np.testing.assert_allclose(fit.predict(X, offset=o), ref.predict(X) * e, rtol=1e-8)


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_are_refused_by_name():
    X, y = _one_task("poisson", n=30)
    reg = rm.MultiTaskRegressor
    refused(lambda: reg("l2", alpha=0.1, loss="poisson").fit(X, y - 5.0), "y", "negative",
            "poisson")
    refused(lambda: reg("l2", alpha=0.1, loss="gamma").fit(X, y), "y", "gamma")
    refused(lambda: rm.Quantile(1.2), "quantile", "1.2")
    refused(lambda: rm.Huber(delta=0), "delta")
    refused(lambda: rm.datafits.make_loss("poison"), "poison")
    Xl, yl = _one_task("logistic", n=30)
    refused(lambda: rm.MultiTaskRegressor("l2", alpha=0.1, loss="poisson").fit(
        Xl, yl, offset=np.zeros(29)), "offset")
    refused(lambda: rm.MultiTaskClassifier("l2", alpha=0.1).fit(Xl, yl, offset=np.zeros(30)),
            "offset", "logistic")


@pytest.mark.parametrize("losses", [["squared", "poisson"], ["squared"] * 4])
def test_a_loss_list_of_the_wrong_length_is_refused(losses):
    Xs, ys = make_problem("squared", seed=1)
    refused(lambda: rm.MultiTaskRegressor("l21", alpha=0.1, loss=losses).fit(Xs, ys),
            "loss", str(len(losses)), "3")


def test_text_labels_for_a_binary_task_of_a_loss_per_task_get_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = np.column_stack([np.where(X[:, 0] > 0, "yes", "no"), X[:, 1]]).astype(object)
    refused(lambda: rm.MultiTaskRegressor("l2", loss=["logistic", "squared"]).fit(X, Y),
            "not numbers", "'yes'", "0/1")


# --------------------------------------------------------------------------- Gamma, y -> 0
@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("tiny", [False, True], ids=["ordinary", "y=1e-300"])
@pytest.mark.parametrize("penalty", ["l2", "l21", "l1"])
def test_gamma_objective_is_that_of_coef_and_its_gap_is_honest(penalty, tiny):
    """``objective_`` is the documented objective (``y e^{-f} + f`` per row, averaged per task,
    plus the penalty) of ``coef_`` and ``intercept_``, evaluated here with NumPy, and the
    duality gap bounds its distance to cvxpy's minimum. With one target of 1e-300 (its row's
    curvature ``y e^{-f}`` at the floor of the Newton weights) the scores were carried as
    ``z - R`` with ``|z| ~ 1e12``: measured before, ``objective_`` 8.4e-7 below that of
    ``coef_`` with ``dual_gap_`` 0 (L2), and L1 stalled at a relative gap of 2e-5."""
    from _loss_cases import cvx_minimum, data_term

    from regmtl.penalties import make_penalty

    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
    ys = [rng.gamma(2.0, np.exp(0.3 * X[:, 0]) / 2.0) for X in Xs]
    if tiny:
        ys[0][0] = 1e-300
    alpha = 0.02 if penalty == "l1" else 0.05
    model = rm.MultiTaskRegressor(penalty, alpha=alpha, loss="gamma", tol=1e-10,
                                  max_iter=5000).fit(Xs, ys)
    pen = make_penalty(penalty)
    ours = data_term("gamma", Xs, ys, model.coef_, model.intercept_) \
        + pen.value(model.coef_matrix_, alpha)
    assert abs(model.objective_ - ours) <= 1e-13 * abs(ours), (model.objective_, ours)
    import cvxpy as cp

    expr = {"l2": lambda W: 0.5 * alpha * cp.sum_squares(W),
            "l21": lambda W: alpha * cp.sum(cp.norm(W, 2, axis=1)),
            "l1": lambda W: alpha * cp.sum(cp.abs(W))}[penalty]
    best = cvx_minimum("gamma", Xs, ys, expr)
    assert abs(ours - best) <= 1e-10 * abs(best), (ours, best)
    assert ours - best <= model.dual_gap_ + 1e-12 * abs(best)


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("penalty", ["mcp", "scad"])
def test_gamma_tiny_target_with_a_nonconvex_penalty(penalty):
    """The stationary-point solver's Newton steps carried the scores the same way: measured
    before, ``objective_`` 2e-6 below that of ``coef_`` and a stall at max progress (MCP,
    with 'invalid value' warnings); now the objective of ``coef_``, stationary to tol."""
    from _loss_cases import data_term

    from regmtl.penalties import make_penalty

    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 5)) for _ in range(3)]
    ys = [rng.gamma(2.0, np.exp(0.3 * X[:, 0]) / 2.0) for X in Xs]
    ys[0][0] = 1e-300
    model = rm.MultiTaskRegressor(penalty, alpha=0.02, loss="gamma", tol=1e-10,
                                  max_iter=5000).fit(Xs, ys)
    ours = data_term("gamma", Xs, ys, model.coef_, model.intercept_) \
        + make_penalty(penalty).value(model.coef_matrix_, 0.02)
    assert abs(model.objective_ - ours) <= 1e-13 * abs(ours), (model.objective_, ours)
    assert model.kkt_residual_ <= 1e-10
