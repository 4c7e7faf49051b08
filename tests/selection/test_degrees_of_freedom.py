"""Degrees of freedom against the divergence of the fit, and the one-standard-error rule.

The degrees of freedom of a fit ``f(y)`` are its divergence ``sum_r d f_r / d y_r`` (Stein's
unbiased risk estimate; Efron 2004). Each declared formula whose value is that divergence is
checked against it on the shape n = 60 rows, p = 8 features, T = 3 tasks (one design): the 180
derivatives by central finite differences in each target, every fit solved from scratch to a
relative duality gap of 1e-13. Measured agreement (seeds 0, 1, 2 at alpha = 0.3, 0.1 and 0.2
alpha_max): within 1e-5 df for L1, L2, the elastic net, L2,1 (l1_ratio = 1 and 0.5, and with
``positive``), MeanRegularized and GraphLaplacian (the largest difference 7e-6, the ridge's);
the assertion allows 1e-3 df (the old count of L2,1 was 4.6 df off).

The formulas the literature gives only as counts are not the divergence, and are left as they
are: on seed 0 ``Trace``'s ``r (p + T - r)`` is 21 where the divergence is 12.1,
``TemporalGroupLasso`` (no curvature of its row norms) 9.8 for 8.2, ``FusedGroupLasso``'s pieces
7 for 6.7, ``Clustered`` and ``SharedStructure`` at their fitted M 19.2 for 19.7 and 14.7 for
16.7 (M moves with y); their solves to 1e-13 take a minute each, too long for a test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl.selection import degrees_of_freedom
from regmtl.solvers import reference, solve

N, P, T = 60, 8, 3
FIT_TOL = 1e-13
STEP = 1e-3  # the finite-difference step in y (the noise is N(0, 1))
AGREE = 1e-3  # df


def _problem(seed):
    rng = np.random.default_rng(seed)
    W = np.zeros((P, T))
    W[:4] = rng.standard_normal((4, T)) + 1.0
    X = rng.standard_normal((N, P)) + 0.3 * rng.standard_normal(P)
    Y = X @ W + np.arange(T) + 1.5 + rng.standard_normal((N, T))
    return X, Y


def _fit(X, Y, pen, alpha):
    data = rm.as_task_data(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ridge's exact solve may stop at 1e-12
        res = solve(data, rm.Quadratic(), pen, alpha, tol=FIT_TOL, max_iter=100_000)
    return data, res


def _divergence(X, Y, pen, alpha, linear):
    """``sum_r d f_r / d y_r`` by finite differences, one target at a time: central, or
    forward where the fit is linear in y near it (``linear``: a fixed support)."""
    f0 = _fit(X, Y, pen, alpha)[1]
    total = 0.0
    for i in range(N):
        for t in range(T):
            up = Y.copy()
            up[i, t] += STEP
            if linear:
                down, h = f0, STEP
            else:
                low = Y.copy()
                low[i, t] -= STEP
                down, h = _fit(X, low, pen, alpha)[1], 2 * STEP
            fu = _fit(X, up, pen, alpha)[1]
            total += (X[i] @ (fu.W[:, t] - down.W[:, t]) + fu.b[t] - down.b[t]) / h
    return total


def _alpha_max(X, Y, pen):
    try:
        return pen.alpha_max(reference(rm.as_task_data(X, Y), rm.Quadratic(), True).G0)
    except ValueError:  # smooth penalties: no alpha gives W = 0
        return 1.0


#: (name, penalty, whether the fit is piecewise linear in y); the L2,1 forms are smooth on a
#: fixed set of rows, the others linear on a fixed support
CASES = {"l1": (rm.L1(), True), "l2": (rm.L2(), True), "elasticnet": (rm.ElasticNet(0.5), True),
         "l21": (rm.L21(), False), "l21_half": (rm.L21(0.5), False),
         "l21_positive": (rm.L21(positive=True), False),
         "mean": (rm.MeanRegularized(), True),
         "graph": (rm.GraphLaplacian(rm.chain_graph(T)), True)}
RUNS = [(name, 0, 0.3) for name in CASES] + [(name, 1, 0.1) for name in ("l21", "l21_half")]


@pytest.mark.parametrize("name,seed,frac", RUNS, ids=[f"{n}-{s}" for n, s, _ in RUNS])
def test_degrees_of_freedom_are_the_divergence_of_the_fit(name, seed, frac):
    pen, linear = CASES[name]
    X, Y = _problem(seed)
    alpha = frac * _alpha_max(X, Y, pen)
    data, res = _fit(X, Y, pen, alpha)
    df = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, res.W, res.b, tol=FIT_TOL)
    div = _divergence(X, Y, pen, alpha, linear)
    assert abs(df - div) <= AGREE, (name, df, div)


def test_l21_is_the_divergence_not_the_count():
    """The issue's shape: the old count of nonzero entries charges 15 where the fit moves by
    10.4; the divergence lies between the selected rows (one per row: the radial direction)
    and the count (Yuan & Lin's shrinkage of the T - 1 other directions)."""
    X, Y = _problem(0)
    pen = rm.L21()
    alpha = 0.3 * _alpha_max(X, Y, pen)
    data, res = _fit(X, Y, pen, alpha)
    df = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, res.W, res.b, tol=FIT_TOL)
    rows = np.count_nonzero(np.any(res.W != 0, axis=1))
    assert rows + T < df < np.count_nonzero(res.W) + T
    assert df == pytest.approx(10.369, abs=0.01)


def _row_curvature_by_definition(data, W, b, alpha, rho, active):
    """``tr((D + H)^{-1} D)`` with the dense (pT + T)-square matrices, from the definition."""
    p, T = W.shape
    q = p + 1
    D = np.zeros((T * q, T * q))
    H = np.zeros((T * q, T * q))
    for t in range(T):
        a, e = data.indptr[t], data.indptr[t + 1]
        Z = np.column_stack([data.X[a:e], np.ones(e - a)])
        D[t * q:(t + 1) * q, t * q:(t + 1) * q] = Z.T @ (Z * data.c[a:e, None])
    for j in np.flatnonzero(active.any(axis=1)):
        idx = np.arange(T) * q + j
        w = W[j]
        nrm = np.linalg.norm(w)
        block = alpha * rho * (np.eye(T) - np.outer(w, w) / nrm**2) / nrm
        H[np.ix_(idx, idx)] += block + alpha * (1 - rho) * np.eye(T)
    keep = np.concatenate([np.r_[active[:, t], True] for t in range(T)])
    A = (D + H)[np.ix_(keep, keep)]
    return float(np.trace(np.linalg.solve(A, D[np.ix_(keep, keep)])))


@pytest.mark.parametrize("pen", [rm.L21(), rm.L21(0.6), rm.L21(positive=True)],
                         ids=["l21", "l21_elastic", "l21_positive"])
def test_row_curvature_trace_is_the_dense_definition_and_linear_in_tasks(pen):
    """The Woodbury solve (linear in T) equals the dense definition on 40 tasks of unequal
    sizes."""
    rng = np.random.default_rng(3)
    n_tasks, p = 40, 6
    Xs = [rng.standard_normal((n, p)) for n in rng.integers(8, 20, n_tasks)]
    W0 = np.zeros((p, n_tasks))
    W0[:3] = rng.standard_normal((3, n_tasks)) + 1.0
    ys = [X @ W0[:, t] + rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    data = rm.as_task_data(Xs, ys)
    alpha = 0.2 * pen.alpha_max(reference(data, rm.Quadratic(), True).G0)
    res = solve(data, rm.Quadratic(), pen, alpha, tol=1e-10, max_iter=100_000)
    W, b = res.W, res.b
    got = degrees_of_freedom(data, rm.Quadratic(), pen, alpha, W, b, tol=1e-10)
    active = (W > 0) if pen.positive else np.repeat(np.any(W != 0, axis=1)[:, None],
                                                     n_tasks, axis=1)
    want = _row_curvature_by_definition(data, W, b, alpha, pen.rho, active)
    assert got == pytest.approx(want, rel=1e-7)


def test_support_is_counted_above_the_tolerance():
    """An entry below ``tol`` times the largest is zero within the fit's accuracy: not
    counted (the old ``W != 0`` counted it)."""
    X, Y = _problem(0)
    data, res = _fit(X, Y, rm.L1(), 0.3)
    W = res.W.copy()
    nnz = np.count_nonzero(W)
    W[np.flatnonzero(W[:, 0] == 0)[0], 0] = 1e-6 * np.abs(W).max()  # rounding-level entry
    df = degrees_of_freedom(data, rm.Quadratic(), rm.L1(), 0.3, W, res.b, tol=1e-4)
    assert df == nnz + T
    assert degrees_of_freedom(data, rm.Quadratic(), rm.L1(), 0.3, W, res.b, tol=1e-8) == \
        nnz + 1 + T
    # the elastic net's and the L2,1's supports alike
    en = degrees_of_freedom(data, rm.Quadratic(), rm.ElasticNet(0.5), 0.3, W, res.b)
    en_exact = degrees_of_freedom(data, rm.Quadratic(), rm.ElasticNet(0.5), 0.3, res.W,
                                  res.b)
    assert en == en_exact


def test_penalty_without_declaration_is_refused_by_the_criteria():
    class Ridge(rm.Penalty):
        name = "my_ridge"
        has_dual = False

        def value(self, V, alpha):
            return 0.5 * alpha * float(np.sum(V**2))

        def prox(self, V, step, alpha):
            return V / (1.0 + step * alpha)

    X, Y = _problem(0)
    data = rm.as_task_data(X, Y)
    assert Ridge().degrees_of_freedom(np.zeros((P, T)), 0.1) is None
    with pytest.raises(ValueError, match="no degrees-of-freedom estimate.*criterion='cv'"):
        degrees_of_freedom(data, rm.Quadratic(), Ridge(), 0.1, np.zeros((P, T)), np.zeros(T))


def test_loss_without_curvature_is_refused_by_the_criteria():
    """A loss that declares no hessian has no degrees of freedom: a clear error, not a
    NotImplementedError from inside the trace."""

    class Absolute(rm.Quadratic):
        name = "absolute"

        def hessian(self, y, f):
            return rm.datafits.Datafit.hessian(self, y, f)

    X, Y = _problem(0)
    data = rm.as_task_data(X, Y)
    W = np.zeros((P, T))
    W[0] = 1.0
    with pytest.raises(ValueError, match="'absolute' declares no curvature.*cross-validation"):
        degrees_of_freedom(data, Absolute(), rm.L21(), 0.1, W, np.zeros(T))


@pytest.mark.parametrize("criterion", ["aic", "bic"])
def test_school_l21_criteria_charge_between_the_rows_and_the_count(criterion):
    """The shipped School data (139 schools): AIC and BIC with L2,1 run, and every candidate's
    df lies between its selected rows and its nonzero entries (plus the intercepts)."""
    from regmtl.datasets import load_school

    school = load_school()
    est = rm.MultiTaskRegressorCV("l21", alphas=4, eps=0.05, criterion=criterion,
                                  refit=False).fit(school.X, school.y)
    res = est.cv_results_
    n_tasks = len(school.X)
    data = rm.as_task_data(school.X, school.y)
    for alpha, df in zip(res["param_alpha"], res["df"], strict=True):
        model = rm.MultiTaskRegressor("l21", alpha=alpha).fit(school.X, school.y)
        W = model.coef_matrix_
        rows = np.count_nonzero(np.any(W != 0, axis=1))
        assert rows + n_tasks - 1e-6 <= df <= np.count_nonzero(W) + n_tasks + 1e-6
        again = degrees_of_freedom(data, rm.Quadratic(), rm.L21(), alpha, W,
                                   model.intercept_)
        assert again == pytest.approx(df, rel=1e-3)  # the path's own point, to its tol


# ---------------------------------------------------------------- the one-standard-error rule
def test_one_standard_error_rule_uses_the_sample_standard_deviation():
    """se = sd(ddof=1) / sqrt(K), as glmnet: by hand from the fold scores, on a problem where
    ddof=0 would choose another alpha. ``std_test_score`` stays scikit-learn's (ddof=0)."""
    from conftest import make_shared

    X, Y = make_shared(n=60, p=15, T=3, seed=6)  # seeds 0-7: the only one where ddof decides
    K = 5
    kw = dict(alphas=40, eps=1e-2, cv=K, tol=1e-8)
    se1 = rm.MultiTaskRegressorCV("l21", one_se=True, **kw).fit(X, Y)
    res = se1.cv_results_
    split = res[[f"split{k}_test_score" for k in range(K)]].to_numpy()
    np.testing.assert_allclose(res["std_test_score"], split.std(axis=1), rtol=1e-12)
    mean = res["mean_test_score"].to_numpy()
    alphas = res["param_alpha"].to_numpy()
    i = int(np.argmax(mean))

    def pick(ddof):
        ok = np.flatnonzero(mean >= mean[i] - split[i].std(ddof=ddof) / np.sqrt(K))
        return int(ok[np.argmax(alphas[ok])])

    assert se1.best_index_ == pick(1) != pick(0)
    assert se1.alpha_ == alphas[pick(1)] > alphas[pick(0)]


def test_one_standard_error_rule_per_task_uses_the_sample_standard_deviation():
    X, Y = _problem(2)
    K = 4
    est = rm.MultiTaskRegressorCV("l1", alphas=12, eps=1e-3, cv=K, one_se=True,
                                  alpha_per_task=True, tol=1e-8).fit(X, Y)
    res = est.cv_results_
    mean = np.stack(res["mean_task_scores"].to_numpy())
    se = np.stack(res["std_task_scores"].to_numpy()) * np.sqrt(K / (K - 1)) / np.sqrt(K)
    alphas = res["param_alpha"].to_numpy()
    for t in range(T):
        i = int(np.argmax(mean[:, t]))
        ok = np.flatnonzero(mean[:, t] >= mean[i, t] - se[i, t])
        assert est.alpha_[t] == alphas[ok[np.argmax(alphas[ok])]]
