"""Newton steps on the support for the multinomial (``solvers/parts/softmax_support.py``): the
Hessian product against finite differences of the gradient, a warm-started path against
cvxpy at every point, and the digits CV's paths (scikit-learn's digits, the USPS set of the
benchmark data) certified with the steps taken."""

import numpy as np
import pytest
from _loss_cases import cvxpy_multinomial_loss
from _loss_cases import multinomial_tasks as _tasks
from conftest import DATA_HOME, needs_data

import regmtl as rm
from regmtl.classes import class_penalty, expand_classes, task_classes
from regmtl.datafits.multinomial import Multinomial
from regmtl.inputs import as_task_data
from regmtl.penalties import make_penalty
from regmtl.penalties.base import ROWS
from regmtl.solvers.parts import softmax_newton as sn
from regmtl.solvers.parts import softmax_support as ss


def _problem(penalty, alpha):
    Xs, ys = _tasks()
    data = as_task_data(Xs, ys)
    data = expand_classes(data, task_classes(data))
    # (L1 as the fit runs it groups a task's classes; here its plain entries, the kind of
    # penalty the step also takes)
    pen = make_penalty(rm.L21(l1_ratio=0.5) if penalty == "l21_ridge" else penalty)
    pen = class_penalty(pen, data) if penalty != "l1" else pen
    fit = Multinomial().bind(data)
    return data, pen, sn._Layout(data, fit), np.asfortranarray(data.X, dtype=np.float64)


def _gradient(lay, X, V, b, support, step, rows):
    """The gradient of f on the support, packed as the system packs it."""
    F = lay.scores(X, V, b)
    _, P = lay.loss(F)
    G, gb = lay.adjoint(X, lay.C[:, None] * np.where(lay.live, lay.Y - P, 0.0), V.shape[1])
    Vs = V[support]
    pen = step.l2 * Vs + step.l1 * (Vs / np.linalg.norm(Vs, axis=1, keepdims=True) if rows
                                    else np.sign(Vs))
    return -G[support] + pen, -gb, P


@pytest.mark.parametrize("penalty", ["l21", "l21_ridge", "l1"])
def test_the_hessian_product_is_the_derivative_of_the_gradient(penalty):
    """``H[D, d]`` of the restricted objective equals the central difference of its
    gradient along ``(D, d)`` to 1e-6 relative (an L2,1 penalty: rows, whose norms add
    curvature; with a ridge part, ``L21(l1_ratio=0.5)``; a penalty of entries, whose support
    is entries)."""
    data, pen, lay, X = _problem(penalty, 0.01)
    step = pen.bcd_params(0.01)
    rows = step.kind == ROWS
    rng = np.random.default_rng(1)
    p, T = X.shape[1], data.n_tasks
    V = rng.standard_normal((p, T))
    V[1] = 0.0  # a feature off the support
    if not rows:
        V[rng.random((p, T)) < 0.3] = 0.0
    b = rng.standard_normal(T)
    support = np.flatnonzero(np.any(V != 0.0, axis=1))
    g, gb, P = _gradient(lay, X, V, b, support, step, rows)
    curv = sn._model_curvatures(X, lay, support, P, rows, T, decompose=False)
    mask = np.ones((support.size, T), dtype=bool) if rows else V[support] != 0.0
    system = ss._System(np.asfortranarray(X[:, support]), lay, P, V[support], mask,
                        float(step.l1), float(step.l2), rows, curv, True)
    D = rng.standard_normal((support.size, T)) * mask
    d = rng.standard_normal(T)
    h = 1e-6
    Vp, Vm = V.copy(), V.copy()
    Vp[support] += h * D
    Vm[support] -= h * D
    gp, gbp, _ = _gradient(lay, X, Vp, b + h * d, support, step, rows)
    gm, gbm, _ = _gradient(lay, X, Vm, b - h * d, support, step, rows)
    numeric = system.pack((gp - gm) / (2 * h), (gbp - gbm) / (2 * h))
    exact = system.hessian(system.pack(D, d))
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
    # the preconditioner inverts each row's block: on a vector of one row, it and the
    # block's product (curvature and penalty) give the vector back
    one = np.zeros_like(D)
    one[0] = D[0]
    back = system.precondition(system.pack(one, np.zeros(T)))
    Bs, _ = system.unpack(back)
    Hs = curv[1][0] if rows else None
    if rows:
        vh = system.vhat[0]
        B0 = Hs + system.scale[0] * (np.eye(T) - np.outer(vh, vh)) + float(step.l2) * np.eye(T)
        np.testing.assert_allclose(B0 @ Bs[0], D[0], rtol=1e-6, atol=1e-8)
    else:
        np.testing.assert_allclose(Bs[0] * (curv[0][0] + float(step.l2)), D[0] * mask[0],
                                   rtol=1e-10)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_a_warm_started_path_equals_cvxpy_at_every_point(monkeypatch, l1_ratio):
    """Tasks with their own classes (3, 2 and 4), an L2,1 path of 6 alphas at tol 1e-10
    (and with a ridge part, ``L21(l1_ratio=0.5)``): every point starts from the last (Newton
    steps from the first, then on the support), is certified and has cvxpy's objective
    (Clarabel) to 1e-7 relative (measured: 2e-11 at most)."""
    cp = pytest.importorskip("cvxpy")

    taken = []
    real = sn.support_step
    monkeypatch.setattr(sn, "support_step", lambda *a: taken.append(1) or real(*a))
    Xs, ys = _tasks()
    path = rm.regularization_path(Xs, ys, penalty=rm.L21(l1_ratio=l1_ratio),
                                  loss="multinomial", alphas=6, eps=1e-2, tol=1e-10)
    assert np.all(path.converged) and np.max(path.certificates) <= 1e-10
    assert len(taken) >= 3
    classes = [np.unique(y) for y in ys]
    p, cols = Xs[0].shape[1], sum(len(c) for c in classes)
    for k, alpha in enumerate(path.alphas[1:], 1):
        W, b = cp.Variable((p, cols)), cp.Variable(cols)
        prob = cp.Problem(cp.Minimize(cvxpy_multinomial_loss(cp, Xs, ys, classes, W, b)
                                      + alpha * (l1_ratio * cp.sum(cp.norm(W, 2, axis=1))
                                                 + (1 - l1_ratio) / 2 * cp.sum_squares(W))))
        prob.solve(solver=cp.CLARABEL)
        Wk, bk = path.coefs[k].T, path.intercepts[k]
        value = (cvxpy_multinomial_loss(cp, Xs, ys, classes, cp.Constant(Wk),
                                        cp.Constant(bk)).value
                 + alpha * (l1_ratio * np.sum(np.linalg.norm(Wk, axis=1))
                            + (1 - l1_ratio) / 2 * np.sum(Wk**2)))
        assert abs(value - prob.value) <= 1e-7 * abs(prob.value), k


def test_the_digits_paths_of_a_cv_are_certified_with_newton_on_the_support(monkeypatch):
    """Digits in 3 tasks (correlated pixels, classes near separable at the small alphas),
    one fold's L2,1 path of 12 alphas down to alpha_max / 1000: every point certified at the
    default tol with Newton steps on the support taken; a fit near alpha_max / 30 (its
    Newton steps) equal to a cold fit by proximal gradient alone at tol 1e-7 (another route
    to the one optimum) to 1e-4 relative in objective."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    task = np.arange(len(y)) % 3
    keep = np.arange(len(y)) % 3 != 0
    X, y, task = X[keep], y[keep], task[keep]
    taken = []
    real = sn.support_step
    monkeypatch.setattr(sn, "support_step", lambda *a: taken.append(1) or real(*a))
    path = rm.regularization_path(X, y, task, penalty="l21", loss="multinomial", alphas=12)
    assert np.all(path.converged) and np.max(path.certificates) <= 1e-4
    assert len(taken) >= 6
    k = int(np.argmin(np.abs(path.alphas - path.alphas[0] / 30)))
    a = float(path.alphas[k])
    cold = rm.MultiTaskClassifier("l21", alpha=a, solver="fista", tol=1e-7,
                                  max_iter=20000).fit(X, y, task=task)
    ours = rm.MultiTaskClassifier("l21", alpha=a).fit(X, y, task=task)
    assert abs(ours.objective_ - cold.objective_) <= 1e-4 * abs(cold.objective_)


@needs_data("usps_digits_kang")
def test_usps_digits_in_three_tasks_against_proximal_gradient():
    """USPS (Kang et al.'s split: 64 PCA components, standardized here) as 3 tasks of 10
    classes, its 1,000 / 500 / 500 rows: an L2,1 path of 8 alphas down to alpha_max / 100,
    every point certified with Newton steps on the support taken; its last point's fit
    equal to proximal gradient's alone at tol 1e-7, to 1e-6 relative in objective
    (measured: 7e-8 at the CV's choice)."""
    from regmtl.datasets import load_usps

    b = load_usps(DATA_HOME)
    X = b.X_shared.astype(np.float64)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y, task = b.digit, np.repeat([0, 1, 2], [1000, 500, 500])
    taken = []
    real = sn.support_step
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sn, "support_step", lambda *a: taken.append(1) or real(*a))
        path = rm.regularization_path(X, y, task, penalty="l21", loss="multinomial", alphas=8,
                                      eps=1e-2)
    assert np.all(path.converged) and np.max(path.certificates) <= 1e-4
    assert len(taken) >= 4
    a = float(path.alphas[-1])
    ours = rm.MultiTaskClassifier("l21", alpha=a).fit(X, y, task=task)
    ref = rm.MultiTaskClassifier("l21", alpha=a, solver="fista", tol=1e-7,
                                 max_iter=50000).fit(X, y, task=task)
    assert abs(ours.objective_ - ref.objective_) <= 1e-6 * abs(ref.objective_)
