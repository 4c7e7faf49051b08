"""Solver behaviour: agreement, warm starts, convergence warnings and input-form invariances.

Each test compares numbers: two solvers, two layouts of the same problem, a weighted problem and
its expanded twin, or a closed form. Fits use tol=1e-15 where coefficients are compared: the
duality gap bounds the objective, and with a ridge part the coefficient error shrinks only like
the square root of the gap.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _cases import penalties
from conftest import make_lists, make_shared
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

import regmtl as rm

# penalties from the shared bank (tests/_cases.py); loaded here rather than in the import block
# above, which the solver-internals work edits
PENALTIES = penalties("L1", "L2", "ElasticNet(0.5)", "L21(1.0)", "L21(0.6)")
LOSSES = ["squared", "logistic"]
# tol=1e-15 is within a few ulps of P(0); BCD reaches it on these problems, FISTA's last
# iterates sit on the rounding floor of the gap (~2e-15 relative) and cannot, so it gets 1e-14
TIGHT = dict(tol=1e-15, max_iter=50_000)
TIGHT_FISTA = dict(tol=1e-14, max_iter=50_000)


def model(loss, penalty, alpha, **kw):
    cls = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    return cls(penalty=penalty, alpha=alpha, **kw)


def scale(loss, *args, **kwargs):
    """alpha_max of the lasso on this problem: the unit for alphas (L2 has none of its own)."""
    return rm.alpha_max(*args, penalty="l1", loss=loss, **kwargs)


def assert_same_fit(m1, m2, rtol=1e-7):
    c1, c2 = np.atleast_2d(m1.coef_), np.atleast_2d(m2.coef_)
    atol = rtol * max(np.abs(c2).max(), 1e-300)
    np.testing.assert_allclose(c1, c2, rtol=rtol, atol=atol)
    np.testing.assert_allclose(m1.intercept_, m2.intercept_, rtol=rtol, atol=atol)
    assert m1.objective_ == pytest.approx(m2.objective_, rel=1e-12)


# --------------------------------------------------------------------------- BCD vs FISTA
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("pen", list(PENALTIES))
def test_bcd_and_fista_agree(pen, loss, fit_intercept):
    Xs, ys = make_lists(loss=loss, seed=4)
    alpha = scale(loss, Xs, ys, fit_intercept=fit_intercept) / 8
    fits = {
        solver: model(loss, PENALTIES[pen], alpha, solver=solver, fit_intercept=fit_intercept,
                      **(TIGHT if solver == "bcd" else TIGHT_FISTA)).fit(Xs, ys)
        for solver in ("bcd", "fista")
    }
    assert_same_fit(fits["bcd"], fits["fista"], rtol=1e-6)
    assert fits["bcd"].dual_gap_ <= 1e-15 * 50  # absolute; every P(0) here is below 50
    assert fits["fista"].dual_gap_ <= 1e-14 * 50
    # "auto" is BCD for these row-separable penalties: the very same iterates
    auto = model(loss, PENALTIES[pen], alpha, fit_intercept=fit_intercept, **TIGHT).fit(Xs, ys)
    np.testing.assert_array_equal(auto.coef_, fits["bcd"].coef_)
    assert auto.n_iter_ == fits["bcd"].n_iter_


# --------------------------------------------------------------------------- warm start
@pytest.mark.parametrize("solver", ["bcd", "fista"])
@pytest.mark.parametrize("loss", LOSSES)
def test_warm_start(loss, solver):
    Xs, ys = make_lists(loss=loss, seed=6)
    a = scale(loss, Xs, ys)
    pen = rm.L21(0.8)
    tight = TIGHT if solver == "bcd" else TIGHT_FISTA
    m = model(loss, pen, a / 5, solver=solver, warm_start=True, **tight).fit(Xs, ys)
    first = m.coef_.copy(), m.objective_
    # refit at the same alpha: a warm-started solve closes a tenth of its starting certificate
    # (floor 1e-3 tol), which from the optimum takes at most two check intervals
    m.fit(Xs, ys)
    assert m.n_iter_ <= 20
    np.testing.assert_allclose(m.coef_, first[0], rtol=1e-6, atol=1e-7)
    assert m.objective_ == pytest.approx(first[1], rel=1e-13)
    # a nearby alpha: same solution as a cold fit, in fewer iterations
    m.set_params(alpha=a / 6).fit(Xs, ys)
    cold = model(loss, pen, a / 6, solver=solver, **tight).fit(Xs, ys)
    assert_same_fit(m, cold, rtol=1e-6)
    assert m.n_iter_ < cold.n_iter_
    # a problem of another shape: warm_start falls back to a cold start
    Xs2 = [X[:, :10] for X in Xs]
    m.fit(Xs2, ys)
    cold2 = model(loss, pen, a / 6, solver=solver, **tight).fit(Xs2, ys)
    assert m.coef_.shape == (3, 10)
    assert_same_fit(m, cold2, rtol=1e-6)
    # without warm_start the previous fit is ignored: identical iterates to a fresh estimator
    m2 = model(loss, pen, a / 6, solver=solver, **tight).fit(Xs, ys).fit(Xs, ys)
    np.testing.assert_array_equal(m2.coef_, cold.coef_)
    assert m2.n_iter_ == cold.n_iter_


# --------------------------------------------------------------------------- ConvergenceWarning
def objective_at_zero(loss, Xs, ys):
    """P(W = 0) with the intercepts fitted, equal task weights, ys in {0, 1} for logistic."""
    val = 0.0
    for y in ys:
        if loss == "squared":
            val += 0.5 * np.mean((y - y.mean()) ** 2)
        else:
            q = np.mean(y == 1)
            val += -(q * np.log(q) + (1 - q) * np.log(1 - q))
    return val


@pytest.mark.parametrize("solver", ["bcd", "fista"])
@pytest.mark.parametrize("loss", LOSSES)
def test_convergence_warning_reports_the_gap(loss, solver):
    Xs, ys = make_lists(loss=loss, seed=2)
    alpha = scale(loss, Xs, ys) / 20
    m = model(loss, "l21", alpha, solver=solver, tol=1e-14, max_iter=3)
    with pytest.warns(ConvergenceWarning) as record:
        m.fit(Xs, ys)
    msgs = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1
    msg = msgs[0]
    assert solver in msg and "max_iter=3" in msg and "tol=1e-14" in msg
    found = re.search(r"relative duality gap of ([0-9.]+e[+-]\d+)", msg)
    assert found, msg
    reported = float(found.group(1))
    P0 = objective_at_zero(loss, Xs, ys)
    # the message carries the gap that the model exposes, relative to P(0)
    assert reported == pytest.approx(m.dual_gap_ / P0, rel=1e-3)
    assert reported > 1e-14
    assert m.n_iter_ == 3
    # and that gap is a true one: a converged fit is at least that close to the optimum
    ref = model(loss, "l21", alpha, solver="bcd", tol=1e-13, max_iter=50_000).fit(Xs, ys)
    assert 0.0 <= m.objective_ - ref.objective_ <= m.dual_gap_ * (1 + 1e-9)


def test_no_warning_when_converged():
    Xs, ys = make_lists(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskRegressor(alpha=0.1, tol=1e-8).fit(Xs, ys)
    assert m.dual_gap_ <= 1e-8 * objective_at_zero("squared", Xs, ys)


# --------------------------------------------------------------------------- sparse vs dense
def with_zeros(Xs, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for X in Xs:
        X = X.copy()
        X[rng.random(X.shape) < 0.6] = 0.0
        out.append(X)
    return out


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("form", ["lists", "shared"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("pen", ["L1", "ElasticNet(0.5)", "L21(1.0)", "L21(0.6)"])
def test_sparse_and_dense_give_the_same_solution(pen, loss, form, fit_intercept):
    if form == "lists":
        Xs, ys = make_lists(loss=loss, seed=8)
        Xs = with_zeros(Xs)
        dense, sparse = (Xs, ys), ([sp.csr_matrix(X) for X in Xs], ys)
    else:
        X, Y = make_shared(n=60, p=15, loss=loss, seed=8)
        X = with_zeros([X])[0]
        dense, sparse = (X, Y), (sp.csc_matrix(X), Y)
    alpha = scale(loss, *dense, fit_intercept=fit_intercept) / 6
    m_dense = model(loss, PENALTIES[pen], alpha, fit_intercept=fit_intercept,
                    **TIGHT).fit(*dense)
    m_sparse = model(loss, PENALTIES[pen], alpha, fit_intercept=fit_intercept,
                     **TIGHT).fit(*sparse)
    assert np.any(m_dense.coef_ != 0.0)
    assert_same_fit(m_sparse, m_dense, rtol=1e-7)
    # same support exactly
    np.testing.assert_array_equal(m_sparse.coef_ == 0.0, m_dense.coef_ == 0.0)


# --------------------------------------------------------------------------- shared vs lists
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("pen", list(PENALTIES))
def test_shared_design_equals_the_same_problem_as_lists(pen, loss, weighted):
    X, Y = make_shared(n=45, p=10, T=3, loss=loss, seed=9)
    sw = np.random.default_rng(0).integers(1, 4, size=45).astype(float) if weighted else None
    T = Y.shape[1]
    Xs, ys = [X] * T, [Y[:, t] for t in range(T)]
    sws = None if sw is None else [sw] * T
    alpha = scale(loss, X, Y, sample_weight=sw) / 7
    assert 7 * alpha == pytest.approx(scale(loss, Xs, ys, sample_weight=sws), rel=1e-12)
    shared = model(loss, PENALTIES[pen], alpha, **TIGHT).fit(X, Y, sample_weight=sw)
    lists = model(loss, PENALTIES[pen], alpha, **TIGHT).fit(Xs, ys, sample_weight=sws)
    assert shared.coef_.shape == lists.coef_.shape == (T, 10)
    assert_same_fit(shared, lists, rtol=1e-7)
    # predictions come back in the input's form: (n, T) for the shared design
    P = shared.predict(X) if loss == "squared" else shared.decision_function(X)
    assert P.shape == (45, T)
    np.testing.assert_allclose(P, X @ shared.coef_.T + shared.intercept_, rtol=1e-12,
                               atol=1e-12)


# --------------------------------------------------------------------------- missing labels
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("pen", ["L1", "L21(1.0)", "L21(0.6)"])
def test_missing_labels_drop_the_row_for_that_task_only(pen, loss):
    X, Y = make_shared(n=50, p=10, T=3, loss=loss, seed=10)
    Y = Y.astype(float)
    rng = np.random.default_rng(1)
    missing = {0: rng.choice(np.arange(2, 50), 12, replace=False),
               2: rng.choice(np.arange(2, 50), 5, replace=False)}
    for t, rows in missing.items():
        Y[rows, t] = np.nan
    keep = [~np.isnan(Y[:, t]) for t in range(3)]
    Xs = [X[k] for k in keep]
    ys = [Y[k, t] for t, k in enumerate(keep)]
    assert [len(y) for y in ys] == [38, 50, 45]
    alpha = scale(loss, Xs, ys) / 6
    assert rm.alpha_max(X, Y, penalty="l1", loss=loss) == pytest.approx(alpha * 6, rel=1e-12)
    shared = model(loss, PENALTIES[pen], alpha, **TIGHT).fit(X, Y)
    lists = model(loss, PENALTIES[pen], alpha, **TIGHT).fit(Xs, ys)
    assert_same_fit(shared, lists, rtol=1e-7)
    # the missing rows still get predictions (every row of X, every task)
    F = shared.predict(X) if loss == "squared" else shared.decision_function(X)
    assert F.shape == (50, 3) and np.all(np.isfinite(F))


# --------------------------------------------------------------------------- sample weights
def repeated(Xs, ys, sws):
    Xr = [np.repeat(X, w.astype(int), axis=0) for X, w in zip(Xs, sws, strict=True)]
    yr = [np.repeat(y, w.astype(int)) for y, w in zip(ys, sws, strict=True)]
    return Xr, yr


def integer_weights(ys, seed=0):
    rng = np.random.default_rng(seed)
    sws = [rng.integers(0, 4, size=len(y)).astype(float) for y in ys]
    for w in sws:  # keep both classes (rows 0 and 1) and the flipped duplicate (last row)
        w[:2] = 1.0
        w[-1] = 1.0
    return sws


@pytest.mark.parametrize("form", ["lists", "long"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("pen", ["L1", "L2", "L21(0.6)"])
def test_integer_sample_weight_equals_repeated_rows(pen, loss, form):
    Xs, ys = make_lists(loss=loss, seed=11)
    sws = integer_weights(ys)
    assert any(np.any(w == 0) for w in sws) and any(np.any(w == 3) for w in sws)
    Xr, yr = repeated(Xs, ys, sws)
    alpha = scale(loss, Xr, yr) / 6
    if form == "lists":
        args, kw = (Xs, ys), {"sample_weight": sws}
    else:
        task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
        args = (np.vstack(Xs), np.concatenate(ys))
        kw = {"task": task, "sample_weight": np.concatenate(sws)}
    assert scale(loss, *args, **kw) == pytest.approx(alpha * 6, rel=1e-12)
    # the logistic gap bottoms out near 1e-14 relative (rounding), below which tol is unreachable
    tight = TIGHT if loss == "squared" else dict(TIGHT, tol=1e-13)
    weighted = model(loss, PENALTIES[pen], alpha, **tight).fit(*args, **kw)
    expanded = model(loss, PENALTIES[pen], alpha, **tight).fit(Xr, yr)
    assert_same_fit(weighted, expanded, rtol=1e-7)


def test_integer_sample_weight_equals_repeated_rows_with_samples_task_weight():
    # with task_weight="samples", n_t counts weighted samples (a zero-weight row counts 0)
    Xs, ys = make_lists(seed=11)
    sws = integer_weights(ys)
    Xr, yr = repeated(Xs, ys, sws)
    alpha = scale("squared", Xr, yr) / 6
    weighted = rm.MultiTaskRegressor("l21", alpha, task_weight="samples", **TIGHT).fit(
        Xs, ys, sample_weight=sws)
    expanded = rm.MultiTaskRegressor("l21", alpha, task_weight="samples", **TIGHT).fit(Xr, yr)
    assert_same_fit(weighted, expanded, rtol=1e-7)


# --------------------------------------------------------------------------- task_weight
def test_task_weight_samples_is_T_n_t_over_N():
    n = (15, 40, 70)
    Xs, ys = make_lists(n, seed=12)
    T, N = len(n), sum(n)
    omega = T * np.asarray(n, dtype=float) / N
    alpha = scale("squared", Xs, ys) / 6
    by_name = rm.MultiTaskRegressor("l1", alpha, task_weight="samples", **TIGHT).fit(Xs, ys)
    by_array = rm.MultiTaskRegressor("l1", alpha, task_weight=omega, **TIGHT).fit(Xs, ys)
    np.testing.assert_array_equal(by_name.coef_, by_array.coef_)
    # the objective is (T / N) sum over all rows of the loss, plus the penalty
    W, b = by_name.coef_.T, by_name.intercept_
    data = sum(0.5 * np.sum((y - X @ W[:, t] - b[t]) ** 2)
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    P = T / N * data + alpha * np.abs(W).sum()
    assert by_name.objective_ == pytest.approx(P, rel=1e-12)
    # L1 decouples the tasks: task t is a Lasso with alpha_t = alpha / omega_t
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        ref = Lasso(alpha=alpha / omega[t], tol=1e-14, max_iter=200_000).fit(X, y)
        atol = 1e-7 * np.abs(ref.coef_).max()
        np.testing.assert_allclose(by_name.coef_[t], ref.coef_, rtol=1e-5, atol=atol)
        assert by_name.intercept_[t] == pytest.approx(ref.intercept_, rel=1e-5, abs=atol)
    # and differs from equal weights (the sizes differ, so this is not a no-op)
    equal = rm.MultiTaskRegressor("l1", alpha, **TIGHT).fit(Xs, ys)
    assert np.abs(equal.coef_ - by_name.coef_).max() > 1e-3


def test_task_weight_equal_tasks_decouple_into_lassos():
    """Equal weights: each task is its own Lasso(alpha) (the 1/n_t of design.rst section 4)."""
    Xs, ys = make_lists(seed=12)
    alpha = scale("squared", Xs, ys) / 6
    m = rm.MultiTaskRegressor("l1", alpha, **TIGHT).fit(Xs, ys)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        ref = Lasso(alpha=alpha, tol=1e-14, max_iter=200_000).fit(X, y)
        atol = 1e-7 * np.abs(ref.coef_).max()
        np.testing.assert_allclose(m.coef_[t], ref.coef_, rtol=1e-5, atol=atol)


# --------------------------------------------------------------------------- constant features
@pytest.mark.parametrize("solver", ["bcd", "fista"])
def test_feature_constant_within_a_task_converges_and_stays_optimal(solver):
    # A school-level feature is constant inside each task: its centered column is rounding noise.
    # Block updates must give it zero curvature (a tiny one once made the L2,1 step explode and
    # the objective rise), so the fit converges quickly to a KKT point.
    rng = np.random.default_rng(5)
    Xs, ys = make_lists(seed=5)
    for t, X in enumerate(Xs):
        X[:, 0] = 0.1 + 0.37 * t  # constant within each task, different across tasks
        X[:, 1] = 1.0 / 3.0
        ys[t] = ys[t] + rng.standard_normal(len(ys[t]))
    alpha = rm.alpha_max(Xs, ys, penalty="l21") / 20
    objective = []
    for max_iter in (5, 10, 20, 40):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = rm.MultiTaskRegressor("l21", alpha, tol=1e-14, max_iter=max_iter,
                                      solver=solver).fit(Xs, ys)
        objective.append(m.objective_)
    if solver == "bcd":  # coordinate descent decreases the objective at every epoch
        assert all(np.diff(objective) <= 1e-12 * np.abs(objective[:-1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converges well within max_iter
        m = rm.MultiTaskRegressor("l21", alpha, tol=1e-12, max_iter=20000,
                                  solver=solver).fit(Xs, ys)
    assert 0 <= m.dual_gap_ <= 1e-12 * objective[0] * 10
    np.testing.assert_allclose(m.coef_[:, :2], 0.0, atol=1e-10)


# --------------------------------------------------------------------------- FISTA iterates
@pytest.mark.parametrize("loss", LOSSES)
def test_fista_iterates_do_not_depend_on_how_often_it_certifies(loss):
    # Certificates minimize the intercepts on copies: the iterates and the momentum are the same
    # whether the gap is checked every 5 or every 40 iterations (once they were refit in place,
    # which broke the momentum at every check and multiplied the iteration count).
    from regmtl.datafits import Logistic, Quadratic
    from regmtl.inputs import as_task_data
    from regmtl.solvers import fista, reference

    Xs, ys = make_lists(loss=loss, seed=3)
    data = as_task_data(Xs, ys, numeric_y=loss == "squared")
    if loss == "logistic":
        data.encode_binary()
    datafit = Quadratic() if loss == "squared" else Logistic()
    penalty = rm.Trace()
    ref = reference(data, datafit, True)
    alpha = penalty.alpha_max(ref.G0) / 50
    runs = []
    for every in (5, 40):
        W0, b0 = np.zeros((data.n_features, data.n_tasks)), ref.b0.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = fista(data, datafit, penalty, alpha, W0, b0, ref=ref, tol=1e-300,
                        max_iter=40, check_every=every)
        runs.append(res)
    np.testing.assert_allclose(runs[0].W, runs[1].W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(runs[0].b, runs[1].b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 8.0, -40.0])
def test_logistic_intercepts_are_the_one_dimensional_minimizers(offset):
    """Each task's logistic intercept (W fixed): SciPy's root of the derivative, to 1e-10,
    from scores near zero, saturated (offset 8) or far on the wrong side (offset -40, where
    undamped Newton steps overshoot by orders of magnitude); derivative at rounding level."""
    from scipy.optimize import brentq

    from regmtl.solvers.certificates.certify import fit_intercepts

    rng = np.random.default_rng(1)
    sizes = (30, 200, 7)
    ys = [np.where(rng.random(n) < q, 1.0, -1.0) for n, q in zip(sizes, (0.5, 0.1, 0.6),
                                                                  strict=True)]
    for y in ys:
        y[:2] = [1.0, -1.0]  # both classes in every task
    Xs = [rng.standard_normal((n, 3)) for n in sizes]
    sw = [rng.uniform(0.2, 3.0, n) for n in sizes]
    data = rm.as_task_data(Xs, [(y > 0).astype(int) for y in ys], sample_weight=sw)
    data = data.encode_binary()
    datafit = rm.Logistic()
    f = offset + rng.standard_normal(data.n_obs)
    b = np.zeros(data.n_tasks)
    S = datafit.state(data.y, f.copy())
    fit_intercepts(data, datafit, S, b)
    for t in range(data.n_tasks):
        rows = slice(data.indptr[t], data.indptr[t + 1])
        y, c, s0 = data.y[rows], data.c[rows], f[rows]

        def slope(d, y=y, c=c, s0=s0):
            return float(np.sum(c * y / (1.0 + np.exp(y * (s0 + d)))))

        root = brentq(slope, -200.0, 200.0, xtol=1e-14)
        assert abs(b[t] - root) <= 1e-10 * max(1.0, abs(root))
        assert abs(slope(b[t])) <= 1e-12 * c.sum()
