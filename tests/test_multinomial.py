"""The multinomial loss: tasks of more than two classes in MultiTaskClassifier, each fit
certified, against scikit-learn and cvxpy."""

from pathlib import Path

import numpy as np
import pytest
from _loss_cases import cvxpy_multinomial_loss
from sklearn.linear_model import LogisticRegression

import regmtl as rm
from regmtl.classes import expand_classes, task_classes
from regmtl.datafits.multinomial import Multinomial


def _tasks(seed=0, sizes=(60, 90, 50), p=4, classes=(3, 2, 4)):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [np.argmax(X[:, :k] + 0.7 * rng.standard_normal((len(X), k)), axis=1)
          for X, k in zip(Xs, classes, strict=True)]
    return Xs, ys


def _objective(Xs, ys, coef, intercept, classes, penalty_value):
    """The mean multinomial loss per task, summed over tasks, plus the penalty."""
    total, col = 0.0, 0
    for X, y, cls in zip(Xs, ys, classes, strict=True):
        K = len(cls)
        F = X @ coef[col:col + K].T + intercept[col:col + K]
        idx = np.searchsorted(cls, y)
        lse = np.logaddexp.reduce(F, axis=1)
        total += np.mean(lse - F[np.arange(len(y)), idx])
        col += K
    return total + penalty_value


def test_one_task_equals_scikit_learn_multinomial_logistic_regression():
    Xs, ys = _tasks(sizes=(300,), classes=(3,))
    X, y = Xs[0], ys[0]
    alpha = 0.01
    ours = rm.MultiTaskClassifier("l2", alpha=alpha, tol=1e-12).fit(X, y)
    # scikit-learn: sum of losses + ||W||^2 / (2 C), i.e. mean loss + alpha / 2 ||W||^2
    sk = LogisticRegression(C=1.0 / (alpha * len(y)), tol=1e-14, max_iter=100000).fit(X, y)
    assert ours.coef_.shape == (3, 4) and ours.intercept_.shape == (3,)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_, sk.coef_, atol=1e-5)
    obj = lambda W, b: _objective([X], [y], W, b, [np.arange(3)], 0.5 * alpha * np.sum(W**2))  # noqa: E731
    assert obj(ours.coef_, ours.intercept_) <= obj(sk.coef_, sk.intercept_) + 1e-10
    assert ours.dual_gap_ <= 1e-12 * 10 * np.log(3)
    assert (ours.predict(X) == sk.predict(X)).mean() >= 0.99


@pytest.mark.parametrize("penalty", ["l21", "l2", "trace", "l1"])
def test_tasks_with_their_own_classes_against_cvxpy(penalty):
    cp = pytest.importorskip("cvxpy")
    Xs, ys = _tasks()
    alpha = 0.02
    clf = rm.MultiTaskClassifier(penalty, alpha=alpha, tol=1e-10).fit(Xs, ys)
    classes = clf.classes_
    assert [len(c) for c in classes] == [3, 2, 4]
    assert clf.coef_.shape == (9, 4)
    W = cp.Variable((4, 9))
    b = cp.Variable(9)
    terms = [cvxpy_multinomial_loss(cp, Xs, ys, classes, W, b)]
    # L1 on the classes: one group per feature and task (tests/test_multinomial_penalties.py)
    l1 = sum(cp.sum(cp.norm(W[:, a:e], 2, axis=1)) for a, e in ((0, 3), (3, 5), (5, 9)))
    reg = {"l21": cp.sum(cp.norm(W, 2, axis=1)), "l2": 0.5 * cp.sum_squares(W),
           "trace": cp.normNuc(W), "l1": l1}[penalty]
    prob = cp.Problem(cp.Minimize(sum(terms) + alpha * reg))
    prob.solve(solver=cp.CLARABEL)
    ours = clf.objective_
    assert abs(ours - prob.value) <= 1e-6 * abs(prob.value)
    assert clf.dual_gap_ <= 1e-8 * abs(prob.value) * 10


def test_predictions_per_task_over_its_own_classes():
    Xs, ys = _tasks()
    ys[1] = np.where(ys[1] == 1, "spam", "ham")
    clf = rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, ys)
    proba = clf.predict_proba(Xs)
    assert [P.shape for P in proba] == [(60, 3), (90, 2), (50, 4)]
    for P in proba:
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
        assert np.all(P >= 0)
    labels = clf.predict(Xs)
    assert set(np.unique(labels[1])) <= {"ham", "spam"}
    for P, lab, cls in zip(proba, labels, clf.classes_, strict=True):
        np.testing.assert_array_equal(lab, cls[np.argmax(P, axis=1)])
    logp = clf.predict_log_proba(Xs)
    for P, L in zip(proba, logp, strict=True):
        np.testing.assert_allclose(np.exp(L), P, atol=1e-12)
    acc = np.mean([np.mean(lab == y) for lab, y in zip(labels, ys, strict=True)])
    assert clf.score(Xs, ys) == pytest.approx(acc)
    assert acc > 0.6


def test_the_long_form_and_the_lists_give_one_fit():
    Xs, ys = _tasks()
    X, y = np.vstack(Xs), np.concatenate(ys)
    task = np.repeat(["a", "b", "c"], [len(v) for v in ys])
    lists = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-10).fit(Xs, ys)
    long = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-10).fit(X, y, task=task)
    np.testing.assert_allclose(long.coef_, lists.coef_, atol=1e-7)
    assert long.tasks_.tolist() == ["a", "b", "c"]
    P = long.predict_proba(X, task=task)
    assert P.shape == (len(y), 4)  # each row over its task's classes, 0 past them
    np.testing.assert_allclose(P[: len(ys[0]), :3], lists.predict_proba(Xs)[0], atol=1e-6)
    assert np.all(P[: len(ys[0]), 3] == 0)


def test_a_shared_design_with_a_label_matrix():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 5))
    Y = np.column_stack([np.argmax(X[:, :3] + rng.standard_normal((120, 3)), 1),
                         np.argmax(X[:, 1:4] + rng.standard_normal((120, 3)), 1)])
    clf = rm.MultiTaskClassifier("l21", alpha=0.01, tol=1e-9).fit(X, Y)
    assert clf.coef_.shape == (6, 5) and clf.n_tasks_ == 2
    P = clf.predict_proba(X)
    assert [Pt.shape for Pt in P] == [(120, 3), (120, 3)]  # one table per task
    assert 0 <= clf.dual_gap_ <= 1e-9 * 2 * np.log(3)
    assert clf.predict(X).shape == (120, 2)


def test_binary_tasks_keep_the_logistic_loss():
    Xs, ys = _tasks(classes=(2, 2, 2))
    clf = rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, ys)
    assert clf.coef_.shape == (3, 4)
    assert [P.shape[1] for P in clf.predict_proba(Xs)] == [2, 2, 2]


def test_a_task_with_one_class_is_refused():
    Xs, ys = _tasks()
    ys[2] = np.zeros_like(ys[2])
    with pytest.raises(ValueError, match="one class"):
        rm.MultiTaskClassifier("l21", alpha=0.01).fit(Xs, ys)


def test_the_dual_point_lies_on_the_simplex():
    Xs, ys = _tasks()
    data = rm.as_task_data(Xs, ys, numeric_y=False)
    exp = expand_classes(data, task_classes(data))
    loss = Multinomial().bind(exp)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(exp.n_obs)
    a = exp.y - loss.feasible(exp.y, theta)
    from regmtl.classes import source_rows

    rows, _ = source_rows(exp)
    sums = np.bincount(rows, weights=a)
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    assert a.min() >= 0
    # the scores' own dual point is already feasible: projecting it changes nothing
    f = rng.standard_normal(exp.n_obs)
    th = loss.theta(exp.y, f)
    np.testing.assert_allclose(loss.feasible(exp.y, th), th, atol=1e-12)


def test_no_overflow_at_large_scores():
    Xs, ys = _tasks()
    data = rm.as_task_data(Xs, ys, numeric_y=False)
    exp = expand_classes(data, task_classes(data))
    loss = Multinomial().bind(exp)
    f = np.random.default_rng(1).choice([-700.0, 700.0], exp.n_obs)
    assert np.isfinite(loss.value(exp.y, f, exp.c))
    assert np.all(np.isfinite(loss.theta(exp.y, f)))


def test_a_multinomial_fit_saves_and_loads(tmp_path):
    Xs, ys = _tasks()
    ys[1] = np.where(ys[1] == 1, "spam", "ham")
    clf = rm.MultiTaskClassifier("trace", alpha=0.01).fit(Xs, ys)
    path = tmp_path / "m.npz"
    clf.save(path)
    again = rm.load(path)
    assert [list(c) for c in again.classes_] == [list(c) for c in clf.classes_]
    for a, b in zip(again.predict_proba(Xs), clf.predict_proba(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    single = rm.MultiTaskClassifier("l2", alpha=0.01).fit(Xs[0], ys[0])
    single.save(path)
    np.testing.assert_array_equal(rm.load(path).predict_proba(Xs[0]),
                                  single.predict_proba(Xs[0]))


def test_a_multinomial_file_whose_classes_do_not_fit_its_coefficients_is_refused(tmp_path):
    Xs, ys = _tasks()
    clf = rm.MultiTaskClassifier("l2", alpha=0.01).fit(Xs, ys)
    clf.classes_ = [clf.classes_[0], clf.classes_[1], clf.classes_[2][:3]]  # 3 labels, 4 rows
    path = tmp_path / "m.npz"
    clf.save(path)
    with pytest.raises(ValueError, match=r"refused: attribute 'coef_' has shape \(9, 4\)"):
        rm.load(path)


def test_a_loss_per_task_refuses_the_multinomial_with_a_clear_error():
    Xs, ys = _tasks()
    with pytest.raises(ValueError, match="'multinomial' scores a row once per class"):
        rm.MultiTaskRegressor("l21", alpha=0.01,
                              loss=["multinomial", "squared", "squared"]).fit(Xs, ys)


def test_intercepts_finish_where_the_line_search_meets_rounding():
    """A warm start from scikit-learn's sample-weight check (30 rows, 3 classes) on which a
    step that lowers the loss by less than its rounding was halved 30 times, 100 Newton
    steps running (2,472 loss evaluations) and stopping at a gradient of 1.2e-13 > rtol."""
    case = np.load(Path(__file__).parent / "data" / "multinomial_intercepts_rounding.npz")
    data = rm.as_task_data([np.zeros((30, 1))], [case["labels"]], numeric_y=False)
    exp = expand_classes(data, task_classes(data))
    loss = Multinomial().bind(exp)
    evaluations = []
    softmax = loss._log_softmax
    loss._log_softmax = lambda F: evaluations.append(1) or softmax(F)
    S, b, c = case["scores"].ravel().copy(), case["intercepts"].copy(), np.full(90, 1 / 30)
    loss.fit_intercepts(exp.y, c, S, b, 100, 1e-13)
    assert len(evaluations) <= 5
    _, P = softmax(S.reshape(3, 30)[None])
    g = np.sum(c.reshape(3, 30) * (exp.y.reshape(3, 30) - P[0]), axis=1)
    assert np.max(np.abs(g)) <= 1e-13  # the stopping test itself (tot = 1)
    # the intercepts' optimum: each class's mean probability equals its share of the labels
    np.testing.assert_allclose(P[0].mean(axis=1), np.bincount(case["labels"]) / 30, atol=1e-14)
