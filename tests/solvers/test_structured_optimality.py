"""Solutions of the structured formulations reach the optimum of the design.rst section 4 objective

    P(W, b) = sum_t omega_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) + Omega(W)

checked against an independent cvxpy solve of the whole problem, written here from the formula
(per-task mean losses with unpenalized intercepts; the logistic loss as
``cp.logistic(-y * f)``), and, for the squared loss with the two quadratic task-coupling
penalties, against the closed-form solution of the normal equations assembled here.

Nothing below uses regmtl's certificates to decide optimality; they are checked against the
independent optimum instead: ``objective_`` is the objective at the returned point (for
``Dirty`` / ``SparseLowRank`` at the returned ``P_``, ``Q_``), ``dual_gap_`` really bounds the
suboptimality and equals the gap of a dual point built here from the same residuals, and
``kkt_residual_`` of the smooth penalties is the norm of the full gradient written here.

Tolerances and why:

* cvxpy with Clarabel is an interior-point method: its optimum is accurate to about its stopping
  tolerance (set to 1e-10 here, reached to roughly 1e-9 in practice). Hence objective values
  agree to ``1e-6`` relative and coefficients to ``1e-4`` absolute (an objective error e allows
  a coefficient error of order sqrt(e / curvature)). Where regmtl's point is compared with
  cvxpy's *point* evaluated by the same numpy objective the comparison is exact up to rounding:
  regmtl's objective may not exceed it by more than ``1e-12`` relative (plus the reported gap).
* The closed form is a dense linear solve in double precision: coefficients to ``1e-7``.
* ``objective_`` against the objective computed here: ``1e-9`` relative (two summation orders of
  the same numbers, nothing else).
* Sparse and dense designs, shared-design and list inputs run the same iteration on the same
  numbers: the fits agree to ``1e-9`` (both are certified to ``tol = 1e-12``).
"""

from __future__ import annotations

import functools
import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import A4, CLARABEL_OPTIONS, loss_dual_value, make_lists, make_shared
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm

# every fit here must reach its tolerance: a ConvergenceWarning is a failure
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

N_PER_TASK = (12, 20, 35, 28)
P, T = 6, 4
TOL = 1e-12
# A duality gap bounds the objective error, and so the coefficient error only by its square root
# (sqrt(2 gap / curvature): about 1e-6 at tol = 1e-12 here). Gap-certified fits compared with
# the closed form to 1e-7 therefore run to tol = 1e-15, where FISTA's gap reaches its rounding
# floor. A KKT residual (a gradient norm) bounds the coefficient error linearly: 1e-12 is plenty
# there, and its rounding floor (about 1.2e-15) is above 1e-15.
TOL_CF = {True: 1e-15, False: TOL}
MAX_ITER = 200_000
CLARABEL = {"solver": cp.CLARABEL, **CLARABEL_OPTIONS}

# name -> (penalty, {loss: alpha}); an alpha given as ("max", f) is f * alpha_max, chosen so
# that the nonsmooth penalties give a nontrivial structure (checked in the tests)
CASES = {
    "Trace": (rm.Trace(), {"squared": ("max", 0.3), "logistic": ("max", 0.5)}),
    "MeanRegularized(0)": (rm.MeanRegularized(), {"squared": 0.3, "logistic": 0.3}),
    "MeanRegularized(0.5)": (rm.MeanRegularized(0.5), {"squared": 0.3, "logistic": 0.3}),
    "GraphLaplacian": (rm.GraphLaplacian(A4), {"squared": 0.2, "logistic": 0.2}),
    "Clustered(2, 0.5)": (rm.Clustered(2, 0.5), {"squared": 0.5, "logistic": 0.5}),
    "Dirty(0.6)": (rm.Dirty(0.6), {"squared": ("max", 0.2), "logistic": ("max", 0.3)}),
    "SparseLowRank(0.5)": (rm.SparseLowRank(0.5),
                           {"squared": ("max", 0.3), "logistic": ("max", 0.3)}),
}
NAMES = list(CASES)
LOSSES = ["squared", "logistic"]
GAP = {"Trace", "MeanRegularized(0.5)", "Dirty(0.6)", "SparseLowRank(0.5)"}
LIFTED = {"Dirty(0.6)", "SparseLowRank(0.5)"}


def task_kernel(name):
    """K with Omega = alpha/2 tr(W K W^T) for the quadratic coupling penalties."""
    if name.startswith("MeanRegularized"):
        r = CASES[name][0].ridge
        return np.eye(T) - np.ones((T, T)) / T + r * np.eye(T)
    return 2.0 * (np.diag(A4.sum(axis=1)) - A4)


# --------------------------------------------------------------------------- data
@functools.cache
def dataset(loss, form="lists"):
    """Per-task designs with about 30% zeros (so a CSR copy is really sparse), or one shared
    design with a 2-D target. Returned as lists of arrays in both cases."""
    if form == "lists":
        Xs, ys = make_lists(N_PER_TASK, P, loss=loss, seed=4)
        rng = np.random.default_rng(40)
        out = []
        for X in Xs:
            mask = rng.random(X.shape) < 0.3
            mask[-1] = mask[0]  # logistic data repeat the first row with the other label
            X = X.copy()
            X[mask] = 0.0
            out.append(X)
        return out, ys
    X, Y = make_shared(n=40, p=P, T=T, loss=loss, seed=5)
    X = X.copy()
    X[np.random.default_rng(50).random(X.shape) < 0.3] = 0.0
    return X, Y


def as_lists(loss, form):
    if form == "lists":
        return dataset(loss, form)
    X, Y = dataset(loss, form)
    return [X] * T, [Y[:, t] for t in range(T)]


def signed(ys, loss):
    """Targets of the objective: labels {0, 1} as -1 / +1 (classes_[t][1] = 1 is +1)."""
    if loss == "squared":
        return [np.asarray(y, dtype=float) for y in ys]
    for y in ys:
        assert set(np.unique(y)) == {0, 1}
    return [np.where(np.asarray(y) == 1, 1.0, -1.0) for y in ys]


def task_weights(Xs, task_weight):
    ns = np.array([X.shape[0] for X in Xs], dtype=float)
    return np.ones(len(ns)) if task_weight == "equal" else len(ns) * ns / ns.sum()


def alpha_of(name, loss, form="lists"):
    penalty, spec = CASES[name]
    a = spec[loss]
    if isinstance(a, tuple):
        Xs, ys = as_lists(loss, form)
        a = a[1] * rm.alpha_max(Xs, ys, penalty=penalty, loss=loss)
    return float(a)


# --------------------------------------------------------------------------- the objective
def data_term(loss, Xs, ys, W, b, omega):
    val = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        losses = 0.5 * (y - f) ** 2 if loss == "squared" else np.logaddexp(0.0, -y * f)
        val += omega[t] * losses.mean()
    return val


def data_gradient(loss, Xs, ys, W, b, omega):
    """Gradient of the data term in W (p x T) and b (T,)."""
    G, gb = np.zeros_like(W), np.zeros(len(Xs))
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        u = y - f if loss == "squared" else y * expit(-y * f)
        G[:, t] = -(omega[t] / X.shape[0]) * (X.T @ u)
        gb[t] = -(omega[t] / X.shape[0]) * u.sum()
    return G, gb


def optimal_intercepts_at_zero(loss, ys):
    """argmin_b of the data term at W = 0: the mean, or the log-odds of the +1 class."""
    if loss == "squared":
        return np.array([np.mean(y) for y in ys])
    return np.array([np.log(np.mean(y > 0) / np.mean(y < 0)) for y in ys])


def cluster_value(W, k, eta):
    """min_M tr(W (eta I + M)^{-1} W^T) at the M that regmtl reports (checked feasible here;
    its optimality is checked against cvxpy in test_structured_penalties.py)."""
    M = rm.Clustered(k, eta).cluster_matrix(W)
    ev = np.linalg.eigvalsh(M)
    assert ev.min() >= -1e-12 and ev.max() <= 1 + 1e-12
    assert np.trace(M) == pytest.approx(k, abs=1e-10)
    return float(np.trace(W @ np.linalg.solve(eta * np.eye(T) + M, W.T))), M


def penalty_value(name, alpha, W, PQ=None):
    """Omega from the table of design.rst section 4; the dirty models take their two parts."""
    if name == "Trace":
        return alpha * np.linalg.svd(W, compute_uv=False).sum()
    if name.startswith(("MeanRegularized", "GraphLaplacian")):
        return 0.5 * alpha * np.sum((W @ task_kernel(name)) * W)
    if name.startswith("Clustered"):
        k, eta = CASES[name][0].k, CASES[name][0].eta
        return alpha * eta * (1 + eta) * cluster_value(W, k, eta)[0]
    Pm, Qm = PQ
    np.testing.assert_allclose(Pm + Qm, W, rtol=0, atol=1e-14 * max(1.0, np.abs(W).max()))
    if name.startswith("Dirty"):
        g = CASES[name][0].own_weight
        return alpha * (np.linalg.norm(Pm, axis=1).sum() + g * np.abs(Qm).sum())
    g = CASES[name][0].sparse_weight
    return alpha * (np.linalg.svd(Qm, compute_uv=False).sum() + g * np.abs(Pm).sum())


def objective(name, loss, Xs, ys, alpha, omega, W, b, PQ=None):
    return data_term(loss, Xs, ys, W, b, omega) + penalty_value(name, alpha, W, PQ)


def penalty_gradient(name, alpha, W):
    """Gradient of a smooth Omega (the clustered one by Danskin at the optimal M)."""
    if name.startswith("Clustered"):
        k, eta = CASES[name][0].k, CASES[name][0].eta
        _, M = cluster_value(W, k, eta)
        return 2 * alpha * eta * (1 + eta) * np.linalg.solve(eta * np.eye(T) + M, W.T).T
    return alpha * W @ task_kernel(name)


def dual_value(name, loss, Xs, ys, W, b, omega, alpha):
    """D(theta) = -sum_t omega_t mean_i l*(-theta_ti) - Omega*(G), G_t = (omega_t / n_t) X_t^T
    theta_t, at the dual point built from the residuals at (W, b): theta = -l'(f), centered per
    task (the dual constraint of the intercepts), scaled into the dual-norm ball where Omega is
    a norm (Omega* is then 0). Weak duality makes it a lower bound on the optimum."""
    thetas = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        theta = y - f if loss == "squared" else y * expit(-y * f)
        theta = theta - theta.mean()
        if loss == "logistic":  # stays in the domain y * theta in [0, 1]
            assert np.all((y * theta >= 0) & (y * theta <= 1))
        thetas.append(theta)
    G = np.column_stack([omega[t] / X.shape[0] * (X.T @ thetas[t]) for t, X in enumerate(Xs)])
    if name.startswith("MeanRegularized"):
        s, conj = 1.0, np.sum(G.T * np.linalg.solve(task_kernel(name), G.T)) / (2 * alpha)
    else:
        spec, absmax = np.linalg.norm(G, 2), np.abs(G).max()
        if name == "Trace":
            dual_norm = spec
        elif name.startswith("Dirty"):
            dual_norm = max(np.linalg.norm(G, axis=1).max(), absmax / CASES[name][0].own_weight)
        else:
            dual_norm = max(spec, absmax / CASES[name][0].sparse_weight)
        s, conj = min(1.0, alpha / dual_norm), 0.0
    return loss_dual_value(loss, ys, thetas, omega, s) - conj


# --------------------------------------------------------------------------- cvxpy reference
def cvx_solve(name, loss, Xs, ys, alpha, omega):
    """The whole problem in cvxpy: (W, b, (P, Q) or None, optimal value)."""
    b = cp.Variable(T)
    cons = []
    if name in LIFTED:
        Pv, Qv = cp.Variable((P, T)), cp.Variable((P, T))
        W = Pv + Qv
    else:
        W = cp.Variable((P, T))
    data = 0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            data += omega[t] / X.shape[0] * 0.5 * cp.sum_squares(y - f)
        else:
            data += omega[t] / X.shape[0] * cp.sum(cp.logistic(-cp.multiply(y, f)))
    if name == "Trace":
        pen = alpha * cp.normNuc(W)
    elif name.startswith("MeanRegularized"):
        r = CASES[name][0].ridge
        wbar = cp.sum(W, axis=1, keepdims=True) / T
        pen = 0.5 * alpha * (cp.sum_squares(W - wbar @ np.ones((1, T))) + r * cp.sum_squares(W))
    elif name == "GraphLaplacian":
        pen = 0.5 * alpha * sum(A4[s, t] * cp.sum_squares(W[:, s] - W[:, t])
                                for s in range(T) for t in range(T) if s != t and A4[s, t])
    elif name.startswith("Clustered"):
        k, eta = CASES[name][0].k, CASES[name][0].eta
        M = cp.Variable((T, T), symmetric=True)
        cons = [M >> 0, np.eye(T) - M >> 0, cp.trace(M) == k]
        pen = alpha * eta * (1 + eta) * cp.matrix_frac(W.T, eta * np.eye(T) + M)
    elif name.startswith("Dirty"):
        g = CASES[name][0].own_weight
        pen = alpha * (cp.sum(cp.norm(Pv, 2, axis=1)) + g * cp.sum(cp.abs(Qv)))
    else:
        g = CASES[name][0].sparse_weight
        pen = alpha * (cp.normNuc(Qv) + g * cp.sum(cp.abs(Pv)))
    problem = cp.Problem(cp.Minimize(data + pen), cons)
    with warnings.catch_warnings():
        # below its default tolerances Clarabel may stop at "optimal_inaccurate" with a point
        # that is still accurate to ~1e-9; the comparisons in the tests decide, not the status
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(**CLARABEL)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    PQ = (Pv.value, Qv.value) if name in LIFTED else None
    return np.asarray(W.value), np.asarray(b.value), PQ, float(problem.value)


# --------------------------------------------------------------------------- fits (cached)
def model_class(loss):
    return rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier


def fit(name, loss, X, y, alpha, tol=TOL, max_iter=MAX_ITER, **kw):
    penalty = CASES[name][0]
    return model_class(loss)(penalty=penalty, alpha=alpha, tol=tol, max_iter=max_iter,
                             **kw).fit(X, y)


def parts(model):
    W, b = model.coef_.T, np.atleast_1d(model.intercept_)
    PQ = (model.P_.T, model.Q_.T) if hasattr(model, "P_") else None
    return W, b, PQ


@functools.cache
def solved(name, loss, form="lists"):
    """regmtl's fit (on the input form: lists of arrays, or shared X with 2-D Y), cvxpy's
    solution and the independent objective at both points."""
    Xs, ys = as_lists(loss, form)
    alpha = alpha_of(name, loss, form)
    model = fit(name, loss, *dataset(loss, form), alpha)
    yy = signed(ys, loss)
    omega = task_weights(Xs, "equal")
    W, b, PQ = parts(model)
    W_c, b_c, PQ_c, val_c = cvx_solve(name, loss, Xs, yy, alpha, omega)
    return {
        "model": model, "alpha": alpha, "Xs": Xs, "ys": yy, "omega": omega,
        "obj": objective(name, loss, Xs, yy, alpha, omega, W, b, PQ),
        "W_cvx": W_c, "b_cvx": b_c, "cvx_value": val_c,
        "obj_at_cvx": objective(name, loss, Xs, yy, alpha, omega, W_c, b_c, PQ_c),
    }


# --------------------------------------------------------------------------- against cvxpy
def check_against_cvxpy(name, loss, form):
    s = solved(name, loss, form)
    model = s["model"]
    W, b, _ = parts(model)
    obj, at_cvx = s["obj"], s["obj_at_cvx"]
    # cvxpy's point is feasible: regmtl's objective cannot be above it (up to rounding) ...
    assert obj <= at_cvx + 1e-12 * abs(at_cvx)
    # ... and cvxpy solved the problem: values and the unique minimizer (W, b) agree
    assert obj == pytest.approx(s["cvx_value"], rel=1e-6)
    assert obj == pytest.approx(at_cvx, rel=1e-6)
    np.testing.assert_allclose(W, s["W_cvx"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(b, s["b_cvx"], rtol=0, atol=1e-4)
    return s


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", NAMES)
def test_solution_matches_cvxpy(name, loss):
    s = check_against_cvxpy(name, loss, "lists")
    model = s["model"]
    W = model.coef_.T
    assert np.all(np.isfinite(W)) and np.abs(W).max() > 1e-3
    # the penalty shaped the solution here (so the test exercised its nonsmooth part)
    if name == "Trace":
        sv = np.linalg.svd(W, compute_uv=False)
        np.testing.assert_allclose(model.singular_values_, sv, rtol=1e-10, atol=1e-12)
        assert 1 <= model.rank_ < T
        assert model.rank_ == int(np.sum(sv > 1e-8 * sv[0]))
        # the solution is unique, so cvxpy's is (nearly) of the same rank
        assert np.linalg.svd(s["W_cvx"], compute_uv=False)[model.rank_] < 1e-4
    elif name in LIFTED:
        np.testing.assert_array_equal(model.P_ + model.Q_, model.coef_)
        assert np.any(model.P_ != 0) and np.any(model.Q_ != 0)  # both parts are used
    elif name.startswith("Clustered"):
        pen = CASES[name][0]
        np.testing.assert_allclose(model.cluster_matrix_, pen.cluster_matrix(W), atol=1e-12)
        assert model.task_clusters_.shape == (T,)


# --------------------------------------------------------------------------- certificates
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", NAMES)
def test_certificate_is_true(name, loss):
    s = solved(name, loss)
    model, Xs, ys, omega, alpha = s["model"], s["Xs"], s["ys"], s["omega"], s["alpha"]
    # objective_ is the objective of design.rst section 4 at the returned point
    assert model.objective_ == pytest.approx(s["obj"], rel=1e-9)
    b0 = optimal_intercepts_at_zero(loss, ys)
    P0 = data_term(loss, Xs, ys, np.zeros((P, T)), b0, omega)
    G0, _ = data_gradient(loss, Xs, ys, np.zeros((P, T)), b0, omega)
    best = min(s["obj"], s["obj_at_cvx"])  # an upper bound on the optimum
    if name in GAP:
        assert not hasattr(model, "kkt_residual_")
        assert 0.0 <= model.dual_gap_ <= TOL * P0
        assert model.objective_ - best <= model.dual_gap_ + 1e-12 * abs(best)
        # an independent dual point at the solution: weak duality, and a gap as small
        W, b, _ = parts(model)
        D = dual_value(name, loss, Xs, ys, W, b, omega, alpha)
        assert D <= best + 1e-12 * abs(best)
        assert s["obj"] - D <= TOL * P0 + 1e-13 * abs(best)
        # a fit stopped early: its gap is well above rounding and still bounds its
        # suboptimality
        with pytest.warns(ConvergenceWarning):
            loose = fit(name, loss, *dataset(loss), alpha, max_iter=1)
        W, b, PQ = parts(loose)
        obj_loose = objective(name, loss, Xs, ys, alpha, omega, W, b, PQ)
        assert loose.objective_ == pytest.approx(obj_loose, rel=1e-9)
        assert loose.dual_gap_ >= 0.0
        assert obj_loose - best > 1e-9 * best  # really suboptimal: the next line has teeth
        assert obj_loose - best <= loose.dual_gap_ + 1e-12 * abs(best)
        # and it is the gap of the dual point built here from the same residuals
        D_loose = dual_value(name, loss, Xs, ys, W, b, omega, alpha)
        assert D_loose <= best + 1e-12 * abs(best)
        assert loose.dual_gap_ == pytest.approx(obj_loose - D_loose, rel=1e-9)
    else:
        assert not hasattr(model, "dual_gap_")
        assert 0.0 <= model.kkt_residual_ <= TOL
        # the smooth penalties: the full gradient, written here, vanishes (relative to the
        # data gradient at W = 0, as the reported residual is)
        W, b, _ = parts(model)
        G, gb = data_gradient(loss, Xs, ys, W, b, omega)
        res = np.sqrt(np.sum((G + penalty_gradient(name, alpha, W)) ** 2) + np.sum(gb**2))
        # the reported residual does not understate this one (beyond rounding)
        assert res / np.linalg.norm(G0) <= 10 * TOL


# --------------------------------------------------------------------------- closed form
def closed_form(name, Xs, ys, alpha, omega, fit_intercept):
    """Squared loss, Omega = alpha/2 tr(W K W^T): the normal equations in (vec W, b).

    Task t: (omega_t/n_t) X_t^T (X_t w_t + b_t - y_t) + alpha (W K)_t = 0 and, with intercepts,
    (omega_t/n_t) 1^T (X_t w_t + b_t - y_t) = 0."""
    K = task_kernel(name)
    nb = T if fit_intercept else 0
    H = np.zeros((P * T + nb, P * T + nb))
    r = np.zeros(P * T + nb)
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        c = omega[t] / X.shape[0]
        rows = slice(t * P, (t + 1) * P)
        H[rows, rows] += c * X.T @ X
        r[rows] = c * X.T @ y
        for u in range(T):
            H[rows, u * P:(u + 1) * P] += alpha * K[u, t] * np.eye(P)
        if fit_intercept:
            H[rows, P * T + t] = c * X.sum(axis=0)
            H[P * T + t, rows] = c * X.sum(axis=0)
            H[P * T + t, P * T + t] = c * X.shape[0]
            r[P * T + t] = c * y.sum()
    z = np.linalg.solve(H, r)
    W = z[:P * T].reshape(T, P).T
    b = z[P * T:] if fit_intercept else np.zeros(T)
    return W, b


@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("task_weight", ["equal", "samples"])
@pytest.mark.parametrize("solver", ["auto", "fista"])
@pytest.mark.parametrize("name", ["MeanRegularized(0)", "MeanRegularized(0.5)",
                                  "GraphLaplacian"])
def test_quadratic_coupling_matches_closed_form(name, solver, task_weight, fit_intercept):
    Xs, ys = dataset("squared")
    alpha = alpha_of(name, "squared")
    omega = task_weights(Xs, task_weight)
    model = fit(name, "squared", Xs, ys, alpha, tol=TOL_CF[name in GAP], solver=solver,
                task_weight=task_weight, fit_intercept=fit_intercept)
    W_cf, b_cf = closed_form(name, Xs, ys, alpha, omega, fit_intercept)
    W, b, _ = parts(model)
    scale = max(1.0, np.abs(W_cf).max())
    np.testing.assert_allclose(W, W_cf, rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(b, b_cf, rtol=0, atol=1e-7 * scale)
    opt = objective(name, "squared", Xs, ys, alpha, omega, W_cf, b_cf)
    assert model.objective_ == pytest.approx(
        objective(name, "squared", Xs, ys, alpha, omega, W, b), rel=1e-9)
    assert model.objective_ >= opt * (1 - 1e-12)
    if name in GAP:
        assert model.dual_gap_ >= 0.0
        assert model.objective_ - opt <= model.dual_gap_ + 1e-12 * opt
    else:
        assert model.objective_ - opt <= 1e-12 * opt


@pytest.mark.parametrize("task_weight", ["equal", "samples"])
@pytest.mark.parametrize("solver", ["auto", "fista"])
@pytest.mark.parametrize("name", ["MeanRegularized(0.5)", "GraphLaplacian"])
def test_quadratic_coupling_with_sample_weights(name, solver, task_weight):
    """Integer sample weights act as repeated rows (n_t counts weighted samples)."""
    Xs, ys = dataset("squared")
    rng = np.random.default_rng(8)
    sw = [rng.integers(1, 4, size=len(y)).astype(float) for y in ys]
    alpha = alpha_of(name, "squared")
    model = model_class("squared")(penalty=CASES[name][0], alpha=alpha, tol=TOL_CF[name in GAP],
                                   max_iter=MAX_ITER, solver=solver,
                                   task_weight=task_weight).fit(Xs, ys, sample_weight=sw)
    Xr = [np.repeat(X, w.astype(int), axis=0) for X, w in zip(Xs, sw, strict=True)]
    yr = [np.repeat(y, w.astype(int)) for y, w in zip(ys, sw, strict=True)]
    W_cf, b_cf = closed_form(name, Xr, yr, alpha, task_weights(Xr, task_weight), True)
    scale = max(1.0, np.abs(W_cf).max())
    np.testing.assert_allclose(model.coef_.T, W_cf, rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(model.intercept_, b_cf, rtol=0, atol=1e-7 * scale)


@pytest.mark.parametrize("early", [True, False], ids=["stopped_early", "converged"])
@pytest.mark.parametrize("solver", ["auto", "fista"])
def test_gap_bounds_the_distance_to_the_closed_form(solver, early):
    """MeanRegularized(ridge = r > 0), squared loss: the objective is quadratic with Hessian
    >= alpha r in the W block (lambda_min(K) = r), so P(W, b) - P* >= alpha r / 2 ||W - W*||_F^2
    and the reported gap must give ||W - W*||_F^2 <= 2 dual_gap_ / (alpha r)."""
    name = "MeanRegularized(0.5)"
    Xs, ys = dataset("squared")
    alpha = alpha_of(name, "squared")
    omega = task_weights(Xs, "equal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if early else "error", ConvergenceWarning)
        model = fit(name, "squared", Xs, ys, alpha, solver=solver,
                    max_iter=3 if early else MAX_ITER)
    W_cf, b_cf = closed_form(name, Xs, ys, alpha, omega, True)
    opt = objective(name, "squared", Xs, ys, alpha, omega, W_cf, b_cf)
    W, _, _ = parts(model)
    mu = alpha * CASES[name][0].ridge
    dist2 = np.sum((W - W_cf) ** 2)
    assert model.objective_ - opt >= 0.5 * mu * dist2 - 1e-13 * opt  # the curvature claim
    assert dist2 <= 2.0 * (model.dual_gap_ + 1e-13 * opt) / mu
    if early:  # not converged, so the bound above was not vacuous
        assert dist2 > 1e-10


# --------------------------------------------------------------------------- input forms
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", ["Trace", "Dirty(0.6)", "SparseLowRank(0.5)",
                                  "Clustered(2, 0.5)"])
def test_sparse_design_gives_the_dense_solution(name, loss):
    s = solved(name, loss)
    dense = s["model"]
    Xs, ys = dataset(loss)
    Xs_sparse = [sp.csr_matrix(X) for X in Xs]
    assert all(X.nnz < 0.8 * np.prod(X.shape) for X in Xs_sparse)
    model = fit(name, loss, Xs_sparse, ys, s["alpha"])
    np.testing.assert_allclose(model.coef_, dense.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.intercept_, dense.intercept_, rtol=0, atol=1e-9)
    assert model.objective_ == pytest.approx(dense.objective_, rel=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", ["Trace", "Dirty(0.6)"])
def test_shared_design_reaches_the_optimum(name, loss):
    """One X with a 2-D Y: against cvxpy on the same problem written per task, and the same
    solution as the list input [X] * T (also with X sparse)."""
    s = check_against_cvxpy(name, loss, "shared")
    model = s["model"]
    assert model.objective_ == pytest.approx(s["obj"], rel=1e-9)
    X, Y = dataset(loss, "shared")
    listed = fit(name, loss, [X] * T, [Y[:, t] for t in range(T)], s["alpha"])
    np.testing.assert_allclose(listed.coef_, model.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(listed.intercept_, model.intercept_, rtol=0, atol=1e-9)
    sparse = fit(name, loss, sp.csr_matrix(X), Y, s["alpha"])
    np.testing.assert_allclose(sparse.coef_, model.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sparse.intercept_, model.intercept_, rtol=0, atol=1e-9)
