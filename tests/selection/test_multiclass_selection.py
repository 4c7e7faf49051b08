"""Model selection with tasks of more than two classes (the multinomial loss)."""

import numpy as np
import pytest
from sklearn.metrics import log_loss

import regmtl as rm


def _problem(seed=0, n=90):
    """Long form: task "a" with 3 integer classes, task "b" with 4 text classes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, 5))
    task = np.repeat(["a", "b"], n)
    y = np.empty(2 * n, dtype=object)
    y[:n] = np.argmax(X[:n, :3] + 0.8 * rng.standard_normal((n, 3)), axis=1)
    y[n:] = np.array(list("pqrs"))[np.argmax(X[n:, :4] + 0.8 * rng.standard_normal((n, 4)),
                                             axis=1)]
    return X, y, task


def _proba(model, X, rows):
    return model.predict_proba(X[rows], task=np.full(len(rows), model.tasks_[0]))


def test_cv_picks_alpha_scored_by_log_loss():
    X, y, task = _problem()
    rng = np.random.default_rng(1)
    val = np.sort(rng.choice(len(y), 60, replace=False))
    train = np.setdiff1d(np.arange(len(y)), val)
    folds = [(train, val), (val, train)]
    search = rm.MultiTaskClassifierCV("l21", alphas=6, cv=folds, tol=1e-10).fit(X, y, task)
    assert search.classes_[0].tolist() == [0, 1, 2]
    assert search.classes_[1].tolist() == ["p", "q", "r", "s"]
    assert search.coef_.shape == (7, 5)
    res = search.cv_results_
    assert res["param_alpha"].iloc[search.best_index_] == search.alpha_
    assert 0 < search.best_index_ < len(res) - 1  # an interior choice on this problem
    # fold 0's score at the chosen alpha: each task's log loss, by hand, averaged
    direct = rm.MultiTaskClassifier("l21", alpha=search.alpha_, tol=1e-10).fit(
        X[train], y[train], task[train])
    proba = direct.predict_proba(X[val], task=task[val])
    per_task = []
    for t, cls in zip(["a", "b"], direct.classes_, strict=True):
        mask = task[val] == t
        yt = np.asarray(y[val][mask].tolist())
        cols = [direct.union_classes_.tolist().index(c) for c in cls.tolist()]
        per_task.append(log_loss(yt, proba[mask][:, cols], labels=cls.tolist()))
    assert np.isclose(res["split0_test_score"].iloc[search.best_index_], -np.mean(per_task),
                      rtol=1e-6)
    # the refit is the direct fit at the chosen alpha
    full = rm.MultiTaskClassifier("l21", alpha=search.alpha_, tol=1e-10).fit(X, y, task)
    np.testing.assert_allclose(search.coef_, full.coef_, atol=1e-12)
    np.testing.assert_allclose(search.intercept_, full.intercept_, atol=1e-12)
    assert search.score(X, y, task) == full.score(X, y, task)


def test_cv_accuracy_and_a_scorer_name():
    X, y, task = _problem(2)
    acc = rm.MultiTaskClassifierCV("l21", alphas=4, cv=3, scoring="accuracy").fit(X, y, task)
    assert 0.3 < acc.best_score_ <= 1.0
    bal = rm.MultiTaskClassifierCV("l1", alphas=3, cv=3, scoring="balanced_accuracy").fit(
        X, y, task)
    assert np.isfinite(bal.cv_results_["mean_test_score"]).all()


def test_cv_class_missing_from_a_training_fold():
    X, y, task = _problem(3)
    a0 = np.flatnonzero((task == "a") & (y == 2))  # every row of class 2 of task "a" ...
    val = np.union1d(a0, np.arange(90, 120))  # ... validated together (absent in training)
    train = np.setdiff1d(np.arange(len(y)), val)
    other = np.arange(0, len(y), 3)
    folds = [(train, val), (np.setdiff1d(np.arange(len(y)), other), other)]
    search = rm.MultiTaskClassifierCV("l21", alphas=3, cv=folds).fit(X, y, task)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.coef_.shape == (7, 5)


def test_alpha_per_task_refused_with_more_than_two_classes():
    X, y, task = _problem()
    with pytest.raises(ValueError, match="alpha_per_task"):
        rm.MultiTaskClassifierCV("l1", alpha_per_task=True).fit(X, y, task)


def _layout(seed=0, n=20):
    """The classes' layout of two tasks (3 and 2 classes, 2 features) with smoothed targets
    (0.8 one-hot + 0.2 / K): a perturbation along a row's classes keeps them on the simplex."""
    from regmtl.classes import expand_classes, task_classes

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, 2))
    task = np.repeat([0, 1], n)
    y = np.r_[np.argmax(X[:n] @ [[1.0, -1.0, 0.0], [0.5, 0.0, -0.5]]
                        + rng.gumbel(size=(n, 3)), axis=1),
              (X[n:, 0] + rng.logistic(size=n) > 0).astype(int)]
    data = rm.as_task_data(X, y, task)
    exp = expand_classes(data, task_classes(data))
    K = np.repeat(exp.class_blocks[:, 1], exp.class_blocks[:, 1])[exp.task_of]
    exp.y = 0.8 * exp.y + 0.2 / K
    return exp


@pytest.mark.parametrize("penalty", [rm.L2(), rm.L21(), rm.MeanRegularized()])
def test_multinomial_degrees_of_freedom_are_the_divergence_of_the_probabilities(penalty):
    """df = tr((D + H)^-1 D), D with each row's K x K curvature diag(p) - p p^T, equals
    sum_ik d p_ik / d y_ik along each row's classes (central differences of refits)."""
    import warnings

    from regmtl.classes import source_rows
    from regmtl.selection import degrees_of_freedom
    from regmtl.solvers import solve

    exp = _layout()
    alpha = 0.05
    loss = rm.Multinomial().bind(exp)

    def probs(y):
        exp.y = y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = solve(exp, loss, penalty, alpha, tol=1e-14, max_iter=100_000)
        return loss.mean(exp.linear(res.W, res.b)), res

    y0 = exp.y.copy()
    _, res = probs(y0)
    df = degrees_of_freedom(exp, loss, penalty, alpha, res.W, res.b)
    rows, _ = source_rows(exp)
    eps, div = 1e-5, 0.0
    for r in range(exp.n_obs):
        group = np.flatnonzero(rows == rows[r])  # the row's copies, one per class
        step = -np.full(group.size, 1.0 / group.size)
        step[group == r] += 1.0
        up, down = y0.copy(), y0.copy()
        up[group] += eps * step
        down[group] -= eps * step
        div += (probs(up)[0][r] - probs(down)[0][r]) / (2 * eps)
    exp.y = y0
    assert df == pytest.approx(div, rel=1e-4)
    assert 2.0 < df < 9.0  # the intercepts (2 + 1) up to (K - 1) 3 parameters per task


def test_multinomial_aic_bic_choose_near_cross_validation():
    X, y, task = _problem()
    alphas = np.geomspace(0.3, 1e-3, 8)
    cv = rm.MultiTaskClassifierCV("l21", alphas=alphas, cv=5).fit(X, y, task)
    for crit in ("aic", "bic"):
        search = rm.MultiTaskClassifierCV("l21", alphas=alphas, criterion=crit).fit(X, y, task)
        res = search.cv_results_
        assert np.all(np.diff(res["df"].to_numpy()) > 0)  # weaker penalty, more freedom
        assert res["df"].iloc[0] >= 5.0 - 1e-9  # the 2 + 3 free intercepts at least
        assert res["df"].iloc[-1] <= 2 * 6 + 3 * 6 + 1e-9  # (K - 1)(p + 1) per task
        # the chosen alpha is within one grid step of CV's, or scores as well in CV
        k_cv, k = cv.best_index_, search.best_index_
        cv_scores = cv.cv_results_["mean_test_score"].to_numpy()
        assert abs(k - k_cv) <= 1 or cv_scores[k] >= cv_scores[k_cv] - 0.05, (crit, k, k_cv)
        N = len(y)
        assert res[crit].iloc[k] == pytest.approx(
            res["neg2_log_likelihood"].iloc[k]
            + (2.0 if crit == "aic" else np.log(N)) * res["df"].iloc[k], rel=1e-10)


def test_alpha_max_and_path_multinomial():
    X, y, task = _problem()
    a_max = rm.alpha_max(X, y, task, penalty="l21", loss="multinomial")
    at = rm.MultiTaskClassifier("l21", alpha=a_max, tol=1e-8).fit(X, y, task)
    assert np.all(at.coef_ == 0) and at.dual_gap_ <= 1e-8
    below = rm.MultiTaskClassifier("l21", alpha=0.97 * a_max, tol=1e-8).fit(X, y, task)
    assert np.any(below.coef_ != 0)
    path = rm.regularization_path(X, y, task, penalty="l21", loss="multinomial", alphas=4,
                                  tol=1e-8)
    assert path.coefs.shape == (4, 7, 5) and path.n_active[0] == 0
    assert np.isclose(path.alphas[0], a_max) and path.converged.all()
    last = rm.MultiTaskClassifier("l21", alpha=path.alphas[-1], tol=1e-8).fit(X, y, task)
    np.testing.assert_allclose(path.coefs[-1], last.coef_, atol=1e-3)


def test_binary_tasks_with_the_multinomial_loss():
    X, y, task = _problem()
    yb = np.asarray([str(v) in ("0", "p") for v in y], dtype=int)
    a_max = rm.alpha_max(X, yb, task, penalty="l1", loss="multinomial")
    path = rm.regularization_path(X, yb, task, penalty="l1", loss="multinomial", alphas=3)
    assert path.coefs.shape == (3, 4, 5)  # K = 2 columns per task
    assert np.isclose(path.alphas[0], a_max) and path.n_active[0] == 0
    # one class in a task is refused
    with pytest.raises(ValueError, match="one class"):
        rm.alpha_max(X, np.where(task == "a", 1, yb), task, loss="multinomial")


def test_compare_two_digit_tasks_against_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from regmtl.datasets import make_two_digit_tasks

    digits = make_two_digit_tasks(160, 10, random_state=0)
    X = digits.X.reshape(len(digits.X), -1)[:, ::4].astype(np.float64)  # 32 pixels
    mtl = rm.MultiTaskClassifierCV("l21", alphas=2, eps=0.3, cv=2, tol=1e-3)
    res = rm.compare(X, digits.Y, kind="multiclass", splits=1, n_alphas=3, cv=2,
                     standardize=False, models=["independent", ("MTL L2,1", mtl)])
    assert res.kind == "multiclass" and res.metric == "accuracy"
    assert res.summary["model"].tolist() == ["LogisticRegression (independent)", "MTL L2,1"]
    assert {"accuracy", "log_loss"} <= set(res.scores.columns)
    assert res.summary["wins"].iloc[1].endswith("/2")
    base = res.models["LogisticRegression (independent)"]
    Xtr, _, ytr, _ = res.data_first_split
    for t in range(2):  # each task's baseline: scikit-learn's fit at its chosen alpha
        X_t, y_t = np.asarray(Xtr[t]), np.asarray(ytr[t])
        direct = LogisticRegression(C=1.0 / (len(y_t) * base.alpha_[t]), tol=1e-4,
                                    max_iter=1000).fit(X_t, y_t)
        np.testing.assert_allclose(base.coef_[t], direct.coef_, atol=1e-12)
        np.testing.assert_allclose(base.predict_proba(Xtr)[t], direct.predict_proba(X_t),
                                   atol=1e-12)
