"""Wide tasks (fewer rows than features) under a task kernel (``"mean"``, ``GraphLaplacian``)
with a loss fitted by Newton steps: each model is a linear system in row-space form, whose
preconditioner is the diagonal of ``H_t = X_{c,t}' diag(h_t) X_{c,t}``, never formed.

The fits are compared with cvxpy/Clarabel's minimum of the objective of design.rst section 4
(written out in ``_loss_cases.py``): within ``1e-9`` relative, the certificate below ``tol``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _loss_cases import (
    cvx_graph,
    cvx_mean_regularized,
    cvx_minimum,
    data_term,
    loss_object,
    targets,
)
from conftest import A4
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.solvers.parts.kernel_quadratic import KernelQuadratic, kernel_applies
from regmtl.solvers.parts.quadratic import TaskQuadratic, quadratic_applies

SIZES = (12, 14, 16, 18)  # every task shorter than its 20 features; 60 rows pooled
P = 20
TOL = 1e-10


def wide_problem(names: list[str], seed: int = 0):
    """Per-task lists with the targets of loss ``names[t]`` on task t, every n_t < p."""
    rng = np.random.default_rng(seed)
    W = np.zeros((P, len(SIZES)))
    W[:3] = 0.5 * (rng.standard_normal((3, len(SIZES))) + 1.0)
    Xs, ys = [], []
    for t, n in enumerate(SIZES):
        X = rng.standard_normal((n, P))
        Xs.append(X)
        ys.append(targets(names[t], X @ W[:, t] + 0.2, rng))
    return Xs, ys


def test_the_row_space_diagonal_is_the_gram_diagonal():
    """``KernelQuadratic.diagonal`` equals the diagonal of the per-task Grams formed
    explicitly (``TaskQuadratic.from_data``), with and without centering, any weights."""
    Xs, ys = wide_problem(["squared"] * 4)
    data = rm.as_task_data(Xs, ys)
    assert kernel_applies(data) and not quadratic_applies(data)
    c = np.random.default_rng(1).uniform(0.2, 2.0, data.n_obs)
    for center in (True, False):
        q = KernelQuadratic(data, c, data.y, center)
        ref = TaskQuadratic.from_data(data, c, data.y, center)
        want = np.einsum("tii->it", ref.H)
        np.testing.assert_allclose(q.diagonal(), want, rtol=1e-12, atol=1e-12)


MEAN = (rm.MeanRegularized(), cvx_mean_regularized(0.0), 0.5)
GRAPH = (rm.GraphLaplacian(A4), cvx_graph(A4), 0.3)
CASES = [(names, kernel) for names in (["logistic"] * 4, ["poisson"] * 4, ["gamma"] * 4,
                                       ["huber"] * 4, ["logistic", "poisson", "squared", "gamma"])
         for kernel in ("mean", "graph")]


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("names, kernel", CASES,
                         ids=[f"{'+'.join(dict.fromkeys(n))}-{k}" for n, k in CASES])
def test_wide_tasks_under_a_task_kernel_equal_cvxpy(names, kernel):
    """Crashed before (``einsum('tii->it')`` on the row-space quadratic, which holds no
    Gram): now the minimum of cvxpy, certified."""
    Xs, ys = wide_problem(names)
    pen, expr, alpha = MEAN if kernel == "mean" else GRAPH
    if names == ["logistic"] * 4:
        model = rm.MultiTaskClassifier(pen, alpha=alpha, tol=TOL, max_iter=1000)
    else:
        loss = loss_object(names[0]) if len(set(names)) == 1 else names
        model = rm.MultiTaskRegressor(pen, alpha=alpha, loss=loss, tol=TOL, max_iter=1000)
    model.fit(Xs, ys)
    ours = data_term(names, Xs, ys, model.coef_, model.intercept_) \
        + pen.value(model.coef_matrix_, alpha)
    best = cvx_minimum(names, Xs, ys, lambda W: expr(W, alpha))
    assert abs(ours - best) <= 1e-9 * abs(best), (ours, best)
    assert np.isclose(model.objective_, ours, rtol=1e-12, atol=1e-14)
    assert model.kkt_residual_ <= TOL


def test_the_issue_example_is_refused_by_name_not_by_einsum():
    """The report's example (p = 40, tasks of 12..18 rows, ``"mean"``, tol = 1e-8) raised
    ``ValueError: einstein sum subscripts ...``. Its 60 rows, pooled with the tasks'
    intercepts, are separated by coefficients common to the tasks, which the mean penalty
    leaves free: it has no minimum, and is refused by name (``test_free_directions.py``); with
    a ridge it fits to its KKT tolerance through the same row-space kernel."""
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 40)) for n in (12, 14, 16, 18)]
    ys = [(X[:, 0] - X[:, 1] + rng.standard_normal(len(X)) > 0).astype(int) for X in Xs]
    with pytest.raises(ValueError, match="leaves the coefficients common to tasks"):
        rm.MultiTaskClassifier("mean", alpha=0.01, tol=1e-8).fit(Xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = rm.MultiTaskClassifier(rm.MeanRegularized(0.1), alpha=0.01, tol=1e-8).fit(Xs, ys)
    # (the gap is relative to the objective at W = 0, at most T log 2 for the logistic loss)
    assert np.all(np.isfinite(model.coef_)) and model.dual_gap_ <= 1e-8 * len(Xs) * np.log(2)
