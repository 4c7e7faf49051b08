"""The multinomial loss's proximal Newton row (``softmax_newton``): each row's K x K curvature,
against cvxpy and scikit-learn, chosen by ``"auto"``, certified."""

import numpy as np
import pytest
from _loss_cases import cvxpy_multinomial_loss
from sklearn.linear_model import LogisticRegression

import regmtl as rm
from regmtl.classes import class_penalty, expand_classes, task_classes
from regmtl.datafits.multinomial import Multinomial
from regmtl.inputs import as_task_data
from regmtl.penalties import make_penalty
from regmtl.solvers.policy import choose_row


def _tasks(seed=0, sizes=(60, 90, 50), p=5, classes=(3, 2, 4)):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) + 0.3 for n in sizes]
    ys = [np.argmax(X[:, :k] + 0.7 * rng.standard_normal((len(X), k)), axis=1)
          for X, k in zip(Xs, classes, strict=True)]
    return Xs, ys


def _penalty(name):
    return rm.ElasticNet(0.5) if name == "elasticnet" else name


def _cvxpy_objective(cp, Xs, ys, classes, penalty, alpha):
    p, cols = Xs[0].shape[1], sum(len(c) for c in classes)
    W, b = cp.Variable((p, cols)), cp.Variable(cols)
    terms = [cvxpy_multinomial_loss(cp, Xs, ys, classes, W, b)]
    # L1 on the classes: one group per feature and task (tests/test_multinomial_penalties.py)
    first = np.cumsum([0] + [len(c) for c in classes])
    grouped = sum(cp.sum(cp.norm(W[:, a:e], 2, axis=1))
                  for a, e in zip(first[:-1], first[1:], strict=True))
    reg = {"l21": cp.sum(cp.norm(W, 2, axis=1)), "l1": grouped,
           "elasticnet": 0.5 * grouped + 0.25 * cp.sum_squares(W)}[penalty]
    prob = cp.Problem(cp.Minimize(sum(terms) + alpha * reg))
    prob.solve(solver=cp.CLARABEL)
    return prob.value


@pytest.mark.parametrize("penalty", ["l21", "l1", "elasticnet"])
def test_auto_runs_the_softmax_newton_row(penalty):
    Xs, ys = _tasks()
    data = as_task_data(Xs, ys)
    data = expand_classes(data, task_classes(data))
    pen = class_penalty(make_penalty(_penalty(penalty)), data)  # the penalty a fit runs
    row = choose_row(data, Multinomial().bind(data), pen, 0.02)
    # L1 and the elastic net group a feature's classes per task: a step of several groups
    # per row that the row's block step does not take yet (proximal gradient runs them); with
    # one task they are L2,1
    assert row == ("softmax_newton" if penalty == "l21" else "fista")
    one = as_task_data(Xs[0], ys[0])
    one = expand_classes(one, task_classes(one))
    assert choose_row(one, Multinomial().bind(one),
                      class_penalty(make_penalty(_penalty(penalty)), one), 0.02) == (
        "softmax_newton")
    # the pure ridge keeps L-BFGS; a penalty of another kind keeps proximal gradient
    assert choose_row(data, Multinomial().bind(data), make_penalty("l2"), 0.02,
                      tol=1e-6) == "ridge_lbfgs"
    assert choose_row(data, Multinomial().bind(data), make_penalty("trace"), 0.02) == "fista"


@pytest.mark.parametrize("penalty", ["l21", "l1", "elasticnet"])
@pytest.mark.parametrize("alpha", [0.002, 0.05])
def test_tasks_with_their_own_classes_against_cvxpy(penalty, alpha):
    cp = pytest.importorskip("cvxpy")
    Xs, ys = _tasks()
    clf = rm.MultiTaskClassifier(_penalty(penalty), alpha=alpha, tol=1e-10).fit(Xs, ys)
    ref = _cvxpy_objective(cp, Xs, ys, clf.classes_, penalty, alpha)
    assert abs(clf.objective_ - ref) <= 1e-6 * abs(ref)
    assert clf.dual_gap_ <= 1e-9 * abs(ref)


def test_one_task_l21_path_is_certified_at_every_point():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 12))
    y = np.argmax(X[:, :4] + rng.gumbel(size=(400, 4)), axis=1)
    path = rm.regularization_path(X, y, penalty="l21", loss="multinomial", alphas=8, tol=1e-9)
    assert np.all(path.converged)
    assert np.max(path.certificates) <= 1e-9
    assert path.n_active[0] == 0 and path.n_active[-1] == 12
    # a point of the path equals a cold fit
    clf = rm.MultiTaskClassifier("l21", alpha=path.alphas[4], tol=1e-11).fit(X, y)
    np.testing.assert_allclose(path.coefs[4], clf.coef_, atol=1e-5)


def test_a_shared_design_and_the_solver_named_bcd():
    Xs, ys = _tasks(sizes=(80, 80), classes=(3, 4))
    Y = np.column_stack([ys[0], ys[1]])
    a = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-10, solver="bcd").fit(Xs[0], Y)
    b = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-10, solver="fista",
                               max_iter=100000).fit(Xs[0], Y)
    assert a.dual_gap_ <= 1e-9 * abs(a.objective_)
    assert abs(a.objective_ - b.objective_) <= 1e-8 * abs(b.objective_)


def test_l2_equals_scikit_learn_at_the_issue_accuracy():
    Xs, ys = _tasks(sizes=(500,), classes=(5,), p=8)
    X, y = Xs[0], ys[0]
    alpha = 1e-3
    ours = rm.MultiTaskClassifier("l2", alpha=alpha, tol=1e-6).fit(X, y)
    sk = LogisticRegression(C=1.0 / (alpha * len(y)), tol=1e-14, max_iter=100000).fit(X, y)

    def obj(W, b):
        F = X @ W.T + b
        return (np.mean(np.logaddexp.reduce(F, axis=1) - F[np.arange(len(y)), y])
                + 0.5 * alpha * np.sum(W**2))

    best = obj(sk.coef_, sk.intercept_)
    assert obj(ours.coef_, ours.intercept_) - best <= 1e-6 * best
    assert ours.dual_gap_ <= 1e-6 * best
