"""Incomplete multi-source feature learning (``MultiSource``; MALSAR's ``Least_iMSF`` /
``Logistic_iMSF``, Yuan et al. 2012):

    alpha sum_j ||(W_jt) over the tasks t observing feature j||_2,  W_jt = 0 otherwise,

with a task's missing sources given as NaN blocks over all its rows.

* Against cvxpy (Clarabel, tightened) on unseen problems with 3 sources and 4 availability
  groups, both losses, intercepts: the objective to 1e-5 relative, the coefficients to 1e-4,
  the duality gap within ``tol`` (relative to the objective at W = 0).
* MALSAR's objective ``1/2 sum_t ||X_t w_t - y_t||^2 + z lambda_max sum_j ||W_j||_2``
  (no intercepts, ``lambda_max = max_j ||(X_t^T y_t)_j||_2``) computed by hand: the mapping
  ``alpha = z * alpha_max`` with ``task_weight="samples"``, ``fit_intercept=False``.
* Unobserved coefficients exactly 0; bad inputs refused with the task and block named.
* The School data with three sources and four groups of schools, each lacking one or none.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import CLARABEL_OPTIONS

import regmtl as rm
from regmtl.datasets import load_school
from regmtl.problem import make_data
from regmtl.scaling import fit_standardized, pooled_scaling
from regmtl.solvers import reference

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}
BLOCKS = (3, 2, 3)
P = sum(BLOCKS)
#: the sources each availability group (task) observes
GROUPS = ((0, 1, 2), (0, 1), (0, 2), (1, 2))
SIZES = (40, 30, 35, 25)
LOSSES = ("squared", "logistic")


def mask(groups=GROUPS, blocks=BLOCKS) -> np.ndarray:
    """observed[j, t]: task t observes feature j's source."""
    edges = np.concatenate(([0], np.cumsum(blocks)))
    M = np.zeros((sum(blocks), len(groups)), dtype=bool)
    for t, g in enumerate(groups):
        for b in g:
            M[edges[b]:edges[b + 1], t] = True
    return M


def problem(loss, seed):
    """Per-task designs with NaN over the missing sources, targets (+-1 for logistic)."""
    rng = np.random.default_rng(seed)
    M = mask()
    W = rng.standard_normal((P, len(GROUPS))) * M
    W[[1, 4, 7]] = 0.0  # features of no task: the selection has work to do
    Xs, ys = [], []
    for t, n in enumerate(SIZES):
        X = rng.standard_normal((n, P)) + 0.5
        f = X @ W[:, t] + 0.3
        if loss == "squared":
            y = f + 0.5 * rng.standard_normal(n)
        else:
            y = np.where(rng.random(n) < 1 / (1 + np.exp(-f)), 1.0, -1.0)
        X[:, ~M[:, t]] = np.nan
        Xs.append(X)
        ys.append(y)
    return Xs, ys


def filled(Xs):
    return [np.nan_to_num(X, nan=0.0) for X in Xs]


def estimator(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


def data_term(loss, Xs, ys, W, b):
    val = 0.0
    for t, (X, y) in enumerate(zip(filled(Xs), ys, strict=True)):
        f = X @ W[:, t] + b[t]
        val += float(np.mean(0.5 * (y - f) ** 2 if loss == "squared"
                             else np.logaddexp(0.0, -y * f)))
    return val


def omega(W, alpha, M):
    return alpha * float(np.sum(np.linalg.norm(np.where(M, W, 0.0), axis=1)))


def cvx_solve(loss, Xs, ys, alpha, M):
    W, b = cp.Variable((P, len(Xs))), cp.Variable(len(Xs))
    data = 0
    for t, (X, y) in enumerate(zip(filled(Xs), ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            data += 0.5 * cp.sum_squares(y - f) / len(y)
        else:
            data += cp.sum(cp.logistic(-cp.multiply(y, f))) / len(y)
    prob = cp.Problem(cp.Minimize(data + alpha * cp.sum(cp.norm(W, 2, axis=1))),
                      [W[~M] == 0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**CLARABEL)
    assert prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), prob.status
    return W.value, b.value, float(prob.value)


def p0(loss, Xs, ys, pen, **kw):
    data = make_data(Xs, ys, loss=loss, penalty=pen, **kw)
    datafit = rm.Quadratic() if loss == "squared" else rm.Logistic()
    return reference(data, datafit, kw.get("fit_intercept", True)).P0


# --------------------------------------------------------------------------- whole problem
@pytest.mark.parametrize("seed", [21, 22])
@pytest.mark.parametrize("loss", LOSSES)
def test_fit_matches_cvxpy(loss, seed):
    Xs, ys = problem(loss, seed)
    M = mask()
    pen = rm.MultiSource(BLOCKS)
    a_max = rm.alpha_max(Xs, ys, penalty=pen, loss=loss)
    alpha = 0.2 * a_max
    tol = 1e-10
    model = estimator(loss)(pen, alpha=alpha, tol=tol, max_iter=100_000).fit(Xs, ys)
    W = model.coef_.T
    assert np.all(W[~M] == 0.0)  # unobserved: exactly zero
    assert 0 < np.count_nonzero(np.any(W != 0, axis=1)) < P  # a real selection
    obj = data_term(loss, Xs, ys, W, model.intercept_) + omega(W, alpha, M)
    W_cvx, b_cvx, val_cvx = cvx_solve(loss, Xs, ys, alpha, M)
    assert obj == pytest.approx(val_cvx, rel=1e-5)
    np.testing.assert_allclose(W, W_cvx, atol=1e-4)
    np.testing.assert_allclose(model.intercept_, b_cvx, atol=1e-4)
    assert 0.0 <= model.dual_gap_ <= tol * p0(loss, Xs, ys, pen)
    assert model.objective_ == pytest.approx(obj, rel=1e-9)
    # alpha_max: the row norm of G0 over the observed entries; W = 0 there exactly
    zero = estimator(loss)(pen, alpha=a_max * (1 + 1e-9)).fit(Xs, ys)
    assert np.all(zero.coef_ == 0.0)
    # predictions use a task's observed sources only
    f = model.decision_function(Xs) if loss == "logistic" else model.predict(Xs)
    for t, X in enumerate(filled(Xs)):
        np.testing.assert_allclose(f[t], X @ W[:, t] + model.intercept_[t], rtol=1e-12)


def test_malsar_objective_by_hand():
    """Least_iMSF(X_Set, Y, z): 1/2 sum_t ||X_t w_t - y_t||^2 + z lambda_max sum_j ||W_j||."""
    Xs, ys = problem("squared", 5)
    M = mask()
    N, T = sum(SIZES), len(SIZES)
    A = filled(Xs)
    aty = np.column_stack([X.T @ y for X, y in zip(A, ys, strict=True)])
    lam_max = np.max(np.linalg.norm(np.where(M, aty, 0.0), axis=1))  # MALSAR's lambda_max
    pen = rm.MultiSource(BLOCKS)
    kw = dict(task_weight="samples", fit_intercept=False)
    a_max = rm.alpha_max(Xs, ys, penalty=pen, **kw)
    assert a_max == pytest.approx(lam_max * T / N, rel=1e-12)
    z = 0.3
    model = rm.MultiTaskRegressor(pen, alpha=z * a_max, tol=1e-12, **kw).fit(Xs, ys)
    W = model.coef_.T

    def malsar(W):
        fit = sum(0.5 * np.sum((X @ W[:, t] - y) ** 2)
                  for t, (X, y) in enumerate(zip(A, ys, strict=True)))
        return fit + z * lam_max * np.sum(np.linalg.norm(W, axis=1))

    # regmtl's objective is MALSAR's times T / N
    assert model.objective_ == pytest.approx(malsar(W) * T / N, rel=1e-10)
    # and W minimizes MALSAR's objective (cvxpy on it, as written there)
    V = cp.Variable((P, T))
    fit = sum(0.5 * cp.sum_squares(X @ V[:, t] - y)
              for t, (X, y) in enumerate(zip(A, ys, strict=True)))
    prob = cp.Problem(cp.Minimize(fit + z * lam_max * cp.sum(cp.norm(V, 2, axis=1))),
                      [V[~M] == 0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**CLARABEL)
    assert malsar(W) == pytest.approx(prob.value, rel=1e-7)
    assert malsar(W) <= malsar(V.value) + 1e-9 * abs(prob.value)
    np.testing.assert_allclose(W, V.value, atol=1e-5)


def test_malsar_logistic_objective_by_hand():
    """Logistic_iMSF(X_Set, Y, z): sum_t mean_i log(1 + exp(-y (x w_t + c_t)))
    + z lambda_max sum_j ||W_j||, lambda_max from the gradient at the optimal intercepts."""
    Xs, ys = problem("logistic", 6)
    M = mask()
    A = filled(Xs)
    atb = []
    for X, y in zip(A, ys, strict=True):  # MALSAR's b: (m2 or -m1) / m at c = log(m1 / m2)
        m1 = np.mean(y == 1)
        atb.append(X.T @ (np.where(y == 1, 1 - m1, -m1) / len(y)))
    lam_max = np.max(np.linalg.norm(np.where(M, np.column_stack(atb), 0.0), axis=1))
    pen = rm.MultiSource(BLOCKS)
    a_max = rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")
    assert a_max == pytest.approx(lam_max, rel=1e-10)
    z = 0.25
    model = rm.MultiTaskClassifier(pen, alpha=z * a_max, tol=1e-12).fit(Xs, ys)
    W, c = model.coef_.T, model.intercept_
    malsar = sum(float(np.mean(np.logaddexp(0.0, -y * (X @ W[:, t] + c[t]))))
                 for t, (X, y) in enumerate(zip(A, ys, strict=True)))
    malsar += z * lam_max * float(np.sum(np.linalg.norm(W, axis=1)))
    assert model.objective_ == pytest.approx(malsar, rel=1e-12)
    _, _, val_cvx = cvx_solve("logistic", Xs, ys, z * a_max, M)
    assert malsar == pytest.approx(val_cvx, rel=1e-6)


# --------------------------------------------------------------------------- the pieces
def test_paths_cv_and_persistence(tmp_path):
    Xs, ys = problem("squared", 7)
    M = mask()
    pen = rm.MultiSource(list(BLOCKS))  # a list is kept as a tuple (saved as JSON)
    assert pen.blocks == BLOCKS
    path = rm.regularization_path(Xs, ys, penalty=pen, alphas=6)
    assert path.alphas[0] == pytest.approx(rm.alpha_max(Xs, ys, penalty=pen), rel=1e-12)
    assert np.all(path.coefs[0] == 0.0)
    assert np.all(path.coefs[:, ~M.T] == 0.0)
    cv = rm.MultiTaskRegressorCV(pen, alphas=6, cv=3).fit(Xs, ys)
    assert np.all(cv.coef_.T[~M] == 0.0) and cv.alpha_ in path.alphas
    model = rm.MultiTaskRegressor(pen, alpha=0.1 * path.alphas[0]).fit(Xs, ys)
    model.save(tmp_path / "m")
    back = rm.load(tmp_path / "m")
    assert back.penalty == pen
    for a, b in zip(back.predict(Xs), model.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    # long form, task ids per row, gives the same fit
    task = np.concatenate([np.full(n, t) for t, n in enumerate(SIZES)])
    long = rm.MultiTaskRegressor(pen, alpha=model.alpha).fit(np.vstack(Xs),
                                                             np.concatenate(ys), task=task)
    np.testing.assert_allclose(long.coef_, model.coef_, atol=1e-8)


def test_pooled_scaling_uses_observed_rows():
    Xs, ys = problem("squared", 8)
    mean, scale = pooled_scaling(Xs)
    stacked = np.vstack(Xs)
    np.testing.assert_allclose(mean, np.nanmean(stacked, axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, np.nanstd(stacked, axis=0), rtol=1e-12)
    model = fit_standardized(rm.MultiTaskRegressor(rm.MultiSource(BLOCKS), alpha=0.01),
                             Xs, ys)
    assert np.all(model.coef_.T[~mask()] == 0.0)
    for t, X in enumerate(filled(Xs)):
        np.testing.assert_allclose(model.predict(Xs)[t],
                                   X @ model.coef_[t] + model.intercept_[t], rtol=1e-10)


# --------------------------------------------------------------------------- refused input
def fit(Xs, ys, blocks=BLOCKS):
    return rm.MultiTaskRegressor(rm.MultiSource(blocks), alpha=0.1).fit(Xs, ys)


def test_bad_inputs_refused():
    Xs, ys = problem("squared", 9)
    bad = [X.copy() for X in Xs]
    bad[1][3, 0] = np.nan  # inside an observed block
    with pytest.raises(ValueError, match=r"task 1, block 0 .*NaN inside an observed"):
        fit(bad, ys)
    bad = [X.copy() for X in Xs]
    bad[0][:5, 3:5] = np.nan  # block 1 missing for 5 rows of task 0 only
    with pytest.raises(ValueError, match=r"task 0, block 1 .*some rows of the task only"):
        fit(bad, ys)
    with pytest.raises(ValueError, match=r"cover 7 features.* 8 columns"):
        fit(Xs, ys, blocks=(3, 2, 2))
    with pytest.raises(ValueError, match="nonempty tuple of positive ints"):
        fit(Xs, ys, blocks=(3, 0, 5))
    bad = [X.copy() for X in Xs]
    bad[2][:] = np.nan
    with pytest.raises(ValueError, match="task 2 observes no source"):
        fit(bad, ys)
    # NaN without MultiSource stays an input error
    with pytest.raises(ValueError, match="NaN"):
        rm.MultiTaskRegressor("l21", alpha=0.1).fit(Xs, ys)
    # a shared design cannot miss a source for one task
    Xsh = np.vstack(Xs)[:50].copy()
    Xsh[:, :3] = np.nan
    with pytest.raises(ValueError, match="shared design"):
        fit(Xsh, np.ones((50, 2)))
    # predict: a source the task's model uses cannot be missing
    model = fit(Xs, ys)
    new = [X.copy() for X in Xs]
    new[0][:, :3] = np.nan
    with pytest.raises(ValueError, match=r"task 0, block 0 .*fitted model of that task uses"):
        model.predict(new)


# --------------------------------------------------------------------------- real data
def test_school_incomplete_sources_certified():
    """School: sources (exam and pupil: 10 columns, ethnicity: 11, school: 7); four groups
    of schools, observing all three sources, or lacking one."""
    data = load_school()
    blocks = (10, 11, 7)
    edges = np.concatenate(([0], np.cumsum(blocks)))
    groups = ((0, 1, 2), (0, 2), (0, 1), (1, 2))
    Xs, ys, M = [], [], np.zeros((28, len(data.X)), dtype=bool)
    for t, (X, y) in enumerate(zip(data.X, data.y, strict=True)):
        X = np.array(X, dtype=float)
        seen = groups[t % 4]
        for b in range(3):
            if b in seen:
                M[edges[b]:edges[b + 1], t] = True
            else:
                X[:, edges[b]:edges[b + 1]] = np.nan
        Xs.append(X)
        ys.append(np.asarray(y, dtype=float))
    pen = rm.MultiSource(blocks)
    tol = 1e-8
    model = rm.MultiTaskRegressor(pen, alpha=0.05 * rm.alpha_max(Xs, ys, penalty=pen),
                                  tol=tol).fit(Xs, ys)
    W = model.coef_.T
    assert np.all(W[~M] == 0.0)
    assert 0 < np.count_nonzero(np.any(W != 0, axis=1)) < 28
    assert 0.0 <= model.dual_gap_ <= tol * p0("squared", Xs, ys, pen)
    pred = model.predict(Xs)
    for t, X in enumerate(filled(Xs)):
        np.testing.assert_allclose(pred[t], X @ W[:, t] + model.intercept_[t], rtol=1e-10)
