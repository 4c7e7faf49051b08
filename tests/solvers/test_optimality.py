"""Optimality of the returned solutions, checked from the math of design.rst section 4; and the
fitted-model contract of every penalty of the bank on every problem of it (``_asserts.py``).

The checks above the contract section call neither regmtl's own certificates nor
``subdiff_distance``: the gradients, the
subdifferential conditions, the primal objective and a dual point are written out below with plain
numpy loops over tasks, straight from

    P(W, b) = sum_t omega_t (1/n_t) sum_i l(y_ti, x_ti . w_t + b_t) + Omega(W).
"""

from __future__ import annotations

import numpy as np
import pytest
from _asserts import (
    assert_certificate_meets_tol,
    assert_roundtrips,
    assert_zero_at_alpha_max,
    fit,
)
from _cases import PENALTY_CASES, PROBLEMS, case_ids, cases
from conftest import loss_dual_value, make_lists, subdiff_violation
from scipy.special import expit

import regmtl as rm

# every fit here must reach its tolerance: a ConvergenceWarning is a failure
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

N_PER_TASK = (15, 40, 70)
P = 25

# (penalty, sparsity pattern, rho), from the shared bank
PENALTIES = {c.id: (c.penalty, c.kind, c.rho)
             for c in cases("L1", "L2", "ElasticNet(0.5)", "L21(1.0)", "L21(0.6)")}


# --------------------------------------------------------------------------- independent math
def signed_labels(model, ys):
    """Labels as +-1 with ``classes_[t][1]`` as +1 (design.rst section 4)."""
    classes = model.classes_ if isinstance(model.classes_, list) else [model.classes_]
    return [np.where(np.asarray(y) == cls[1], 1.0, -1.0) for y, cls in zip(ys, classes,
                                                                            strict=True)]


def task_weights(ns, task_weight="equal"):
    ns = np.asarray(ns, dtype=float)
    if task_weight == "equal":
        return np.ones(len(ns))
    return len(ns) * ns / ns.sum()


def gradients(loss, Xs, ys, W, b, omega):
    """Gradient of the data term in W (p x T) and in b (T,), one task at a time."""
    G = np.zeros_like(W)
    gb = np.zeros(len(Xs))
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        n_t = X.shape[0]
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            u = y - f
        else:
            u = y * expit(-y * f)
        G[:, t] = -(omega[t] / n_t) * (X.T @ u)
        gb[t] = -(omega[t] / n_t) * u.sum()
    return G, gb


def penalty_value(kind, rho, W, alpha):
    l1 = np.abs(W).sum() if kind == "entry" else np.linalg.norm(W, axis=1).sum()
    return alpha * (rho * l1 + 0.5 * (1.0 - rho) * np.sum(W * W))


def primal(loss, Xs, ys, W, b, omega, kind, rho, alpha):
    val = 0.0
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        if loss == "squared":
            losses = 0.5 * (y - f) ** 2
        else:
            losses = np.logaddexp(0.0, -y * f)
        val += omega[t] * losses.mean()
    return val + penalty_value(kind, rho, W, alpha)


def kkt_violation(kind, rho, W, G, alpha):
    """Largest violation of 0 in grad + dOmega(W) (G is the gradient of the data term)."""
    return subdiff_violation(kind, rho, W, -G, alpha)


def conjugate(kind, rho, G, alpha):
    """Omega*(G); +inf outside the dual ball when rho = 1."""
    norms = np.abs(G).ravel() if kind == "entry" else np.linalg.norm(G, axis=1)
    if rho == 1.0:
        return 0.0 if norms.max() <= alpha * (1.0 + 1e-12) else np.inf
    excess = np.maximum(norms - alpha * rho, 0.0)
    return np.sum(excess**2) / (2.0 * alpha * (1.0 - rho))


def dual_value(loss, Xs, ys, W, b, omega, kind, rho, alpha, fit_intercept):
    """D(theta) at a feasible point built from the residuals at (W, b).

    theta_t = -l'(f_t) (centered per task when intercepts are fitted, the dual constraint
    sum_i theta_ti = 0), then scaled by s <= 1 into the dual ball when rho = 1: one s per task
    for the entrywise norm (its dual ball is a product over tasks), one for all for groups.
    """
    thetas = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        theta = y - f if loss == "squared" else y * expit(-y * f)
        if fit_intercept:
            theta = theta - theta.mean()
            if loss == "logistic":  # stays in the domain y*theta in [0, 1]
                assert np.all((y * theta >= 0) & (y * theta <= 1))
        thetas.append(theta)
    G = np.column_stack([
        (omega[t] / X.shape[0]) * (X.T @ thetas[t]) for t, X in enumerate(Xs)
    ])
    s = 1.0
    if rho == 1.0 and kind == "entry":
        s = np.minimum(1.0, alpha / np.abs(G).max(axis=0))
    elif rho == 1.0:
        s = min(1.0, alpha / np.linalg.norm(G, axis=1).max())
    val = loss_dual_value(loss, ys, thetas, omega, s)
    return val - conjugate(kind, rho, s * G, alpha)


# --------------------------------------------------------------------------- problems
_PROBLEMS: dict = {}


def problem(loss):
    if loss not in _PROBLEMS:
        Xs, ys = make_lists(N_PER_TASK, P, loss=loss, seed=1)
        a_max = rm.alpha_max(Xs, ys, penalty="l1", loss=loss)
        _PROBLEMS[loss] = (Xs, ys, a_max)
    return _PROBLEMS[loss]


def make_model(loss, penalty, alpha, **kw):
    cls = rm.MultiTaskRegressor if loss == "squared" else rm.MultiTaskClassifier
    return cls(penalty=penalty, alpha=alpha, **kw)


def fitted_targets(model, loss, ys):
    return [np.asarray(y, dtype=float) for y in ys] if loss == "squared" else signed_labels(
        model, ys)


# --------------------------------------------------------------------------- KKT
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("solver", ["bcd", "fista"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("pen_name", list(PENALTIES))
def test_kkt_per_task_designs(pen_name, loss, solver, fit_intercept):
    penalty, kind, rho = PENALTIES[pen_name]
    Xs, ys, a_max = problem(loss)
    alpha = a_max / 5
    # with a ridge part (rho < 1) the gradient error shrinks only like sqrt(gap), hence a tol
    # near machine precision: 1e-15 for BCD; FISTA's gap has a rounding floor near 2e-15
    # relative (its iterates never make primal and dual agree to the last ulps), so 1e-14
    tol = 1e-15 if solver == "bcd" else 1e-14
    model = make_model(loss, penalty, alpha, solver=solver, fit_intercept=fit_intercept,
                       tol=tol, max_iter=50_000).fit(Xs, ys)
    W = model.coef_.T
    b = model.intercept_ if fit_intercept else np.zeros(len(Xs))
    assert W.shape == (P, len(Xs))
    if not fit_intercept:
        assert np.all(model.intercept_ == 0.0)
    yy = fitted_targets(model, loss, ys)
    omega = task_weights(N_PER_TASK)
    G, gb = gradients(loss, Xs, yy, W, b, omega)
    scale = 1e-6 * max(1.0, alpha)
    assert kkt_violation(kind, rho, W, G, alpha) <= scale
    if fit_intercept:
        assert np.abs(gb).max() <= scale
    # the solution is not trivial: the checks above exercised both branches where they exist
    assert np.any(W != 0.0)
    if rho > 0:
        assert np.any(W == 0.0)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("pen_name", ["L1", "L21(0.6)"])
def test_kkt_with_sample_and_task_weights(pen_name, loss):
    """Weighted version: omega_t = T n_t / N with n_t the weighted sample count, and integer
    sample weights (as repeated rows)."""
    penalty, kind, rho = PENALTIES[pen_name]
    Xs, ys, a_max = problem(loss)
    rng = np.random.default_rng(7)
    sw = [rng.integers(1, 4, size=len(y)).astype(float) for y in ys]
    alpha = a_max / 5
    model = make_model(loss, penalty, alpha, task_weight="samples", tol=1e-15,
                       max_iter=50_000).fit(Xs, ys, sample_weight=sw)
    W, b = model.coef_.T, model.intercept_
    # weighted mean over rows == plain mean over the rows repeated sw times
    Xr = [np.repeat(X, w.astype(int), axis=0) for X, w in zip(Xs, sw, strict=True)]
    yr = [np.repeat(y, w.astype(int)) for y, w in zip(fitted_targets(model, loss, ys), sw,
                                                      strict=True)]
    omega = task_weights([len(y) for y in yr], "samples")  # n_t of the repeated rows
    G, gb = gradients(loss, Xr, yr, W, b, omega)
    assert kkt_violation(kind, rho, W, G, alpha) <= 1e-6
    assert np.abs(gb).max() <= 1e-6


# --------------------------------------------------------------------------- duality gap
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("solver", ["bcd", "fista"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("pen_name", ["L1", "ElasticNet(0.5)", "L21(1.0)", "L21(0.6)", "L2"])
def test_duality_gap_is_true(pen_name, loss, solver, fit_intercept):
    penalty, kind, rho = PENALTIES[pen_name]
    Xs, ys, a_max = problem(loss)
    alpha = a_max / 10
    omega = task_weights(N_PER_TASK)
    loose = make_model(loss, penalty, alpha, solver=solver, fit_intercept=fit_intercept,
                       tol=1e-2, max_iter=10_000).fit(Xs, ys)
    ref = make_model(loss, penalty, alpha, fit_intercept=fit_intercept, tol=1e-14,
                     max_iter=50_000).fit(Xs, ys)
    yy = fitted_targets(loose, loss, ys)
    T = len(Xs)

    def wb(m):
        return m.coef_.T, (m.intercept_ if fit_intercept else np.zeros(T))

    W, b = wb(loose)
    W_ref, b_ref = wb(ref)
    P_loose = primal(loss, Xs, yy, W, b, omega, kind, rho, alpha)
    P_ref = primal(loss, Xs, yy, W_ref, b_ref, omega, kind, rho, alpha)
    # objective_ is the objective of design.rst section 4 at the returned (W, b)
    assert loose.objective_ == pytest.approx(P_loose, rel=1e-10)
    assert ref.objective_ == pytest.approx(P_ref, rel=1e-10)
    # an independently built feasible dual point: weak duality, and the reported gap is that one
    D_loose = dual_value(loss, Xs, yy, W, b, omega, kind, rho, alpha, fit_intercept)
    D_ref = dual_value(loss, Xs, yy, W_ref, b_ref, omega, kind, rho, alpha, fit_intercept)
    assert np.isfinite(D_loose) and np.isfinite(D_ref)
    assert D_loose <= P_ref + 1e-12 * abs(P_ref)
    assert D_ref <= P_ref + 1e-12 * abs(P_ref)
    # the reported gap is that of this dual point, or of a better one the solver found; the
    # dual value it reports is a true lower bound (weak duality against the optimum)
    assert loose.dual_gap_ <= (P_loose - D_loose) * (1 + 1e-6) + 1e-14
    assert loose.objective_ - loose.dual_gap_ <= P_ref + 1e-12 * abs(P_ref)
    # the gap is not tiny on the loose fit, is >= 0, and really bounds the suboptimality
    assert loose.dual_gap_ >= 0.0
    assert loose.dual_gap_ > 1e-9
    subopt = P_loose - P_ref
    assert subopt > 1e-10  # the loose fit is really suboptimal, so the next line says something
    assert loose.dual_gap_ >= subopt - 1e-12 * abs(P_ref)
    # and the accurate fit is certified accurate
    assert 0.0 <= ref.dual_gap_ <= 1e-12 * abs(P_ref) + 1e-15
    assert P_ref - D_ref <= 1e-11 * abs(P_ref)


# --------------------------------------------------------------------------- the contract
ZERO_CASES = [c for c in PENALTY_CASES if c.has_alpha_max]


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", ZERO_CASES, ids=case_ids(ZERO_CASES))
def test_contract_zero_at_alpha_max(case, problem):
    assert_zero_at_alpha_max(case, PROBLEMS[problem])


@pytest.fixture(scope="module")
def save_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("contract")


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", PENALTY_CASES, ids=case_ids(PENALTY_CASES))
def test_contract_fitted_model(case, problem, save_dir):
    """The fit's certificate meets tol; clone and save/load give the same predictions."""
    prob = PROBLEMS[problem]
    # a fifth of the lasso's alpha_max: a nontrivial solution for every penalty
    alpha = 0.2 * rm.alpha_max(*prob.fit_args, penalty="l1", loss=prob.loss)
    model = fit(prob, case.penalty, alpha, tol=1e-8, max_iter=20_000)
    assert_certificate_meets_tol(model, case, prob, tol=1e-8)
    assert_roundtrips(model, prob, save_dir / f"{case.id}-{problem}.npz")


CVX_CASES = [c for c in PENALTY_CASES if c.cvx is not None]


@pytest.mark.parametrize("case", CVX_CASES, ids=case_ids(CVX_CASES))
def test_objective_against_cvxpy(case):
    """A case that writes its penalty for cvxpy (``cvx``): the fitted objective on the dense
    problem (squared loss, intercepts, equal task weights) is cvxpy's minimum to 1e-6."""
    import warnings

    import cvxpy as cp
    from conftest import CLARABEL_OPTIONS

    prob = PROBLEMS["dense"]
    Xs, ys = prob.fit_args
    alpha = 0.2 * rm.alpha_max(Xs, ys, penalty="l1")
    model = fit(prob, case.penalty, alpha, tol=1e-10, max_iter=100_000)
    W, b = cp.Variable((Xs[0].shape[1], len(Xs))), cp.Variable(len(Xs))
    data = sum(0.5 * cp.sum_squares(y - X @ W[:, t] - b[t]) / len(y)
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    problem = cp.Problem(cp.Minimize(data + case.cvx(W, alpha)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    assert model.objective_ == pytest.approx(problem.value, rel=1e-6)
    assert model.objective_ <= problem.value * (1 + 1e-9)
