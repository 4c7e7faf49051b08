"""Cross-validation and AIC/BIC on tiny tasks: nothing silently wrong.

A one-row task trains in every fold and is never scored (named in a warning); a ``cv`` no
task can reach, a bad ``cv``, a splitter a task cannot take, and AIC/BIC without residual
degrees of freedom are refused or left out with a message naming what to change.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import KFold, LeaveOneOut

import regmtl as rm
from regmtl.selection import task_folds
from regmtl.selection.folds import take


def _lists(sizes, p=3, seed=0):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [X @ np.arange(1.0, p + 1) + rng.standard_normal(len(X)) for X in Xs]
    return Xs, ys


TIGHT = dict(tol=1e-10, max_iter=100_000)


def _hand_cv(Xs, ys, alphas, cv, penalty="l21"):
    """Mean over folds of the task-averaged validation MSE, with sklearn's KFold per task; a
    task with fewer rows than 2 is in every training part and never scored."""
    splits = [list(KFold(cv).split(X)) if len(X) >= 2 else None for X in Xs]
    out = []
    for a in alphas:
        fold_scores = []
        for k in range(cv):
            tr = [np.arange(len(X)) if s is None else s[k][0]
                  for X, s in zip(Xs, splits, strict=True)]
            m = rm.MultiTaskRegressor(penalty, alpha=a, **TIGHT).fit(
                [X[i] for X, i in zip(Xs, tr, strict=True)],
                [y[i] for y, i in zip(ys, tr, strict=True)])
            f = m.predict(Xs)  # every row, then each scored task's validation rows
            mse = [np.mean((ys[t][s[k][1]] - f[t][s[k][1]]) ** 2)
                   for t, s in enumerate(splits) if s is not None]
            fold_scores.append(-np.mean(mse))
        out.append(np.mean(fold_scores))
    return np.array(out)


@pytest.mark.parametrize("sizes", [(10, 12, 1), (10, 1, 12)])
def test_one_row_task_trains_in_every_fold_and_is_never_scored(sizes):
    """Was an IndexError in add.reduceat when the one-row task came last (its empty
    validation segment); now its score is NaN, the others' scores and the chosen alpha equal
    a hand loop over sklearn's KFold (1e-6 relative)."""
    Xs, ys = _lists(sizes)
    one = sizes.index(1)
    with pytest.warns(UserWarning, match=rf"cv=5: 1 task\(s\) .*task {one} has 1 sample: "
                                         r"never validated"), \
            pytest.warns(UserWarning, match=rf"undefined on some validation folds of 1 "
                                            rf"task\(s\), {one} "):
        est = rm.MultiTaskRegressorCV("l21", alphas=5, cv=5, random_state=None,
                                         **TIGHT).fit(Xs, ys)
    task_scores = np.stack(est.cv_results_["mean_task_scores"])
    assert np.isnan(task_scores[:, one]).all()
    assert np.isfinite(np.delete(task_scores, one, axis=1)).all()
    hand = _hand_cv(Xs, ys, est.alphas_, 5)
    np.testing.assert_allclose(est.cv_results_["mean_test_score"], hand, rtol=1e-6)
    assert est.alpha_ == pytest.approx(est.alphas_[np.argmax(hand)], rel=1e-12)


def test_cv_larger_than_every_task_is_refused():
    """Was accepted (50 folds repeating each task's 12 parts, n_splits_=50); now refused,
    naming cv, the smallest task and its rows, as KFold refuses n_splits > n_samples."""
    Xs, ys = _lists((12, 14, 13))
    msg = (r"^cv=50 is larger than every task's number of samples: the smallest, task 0, "
           r"has 12 and the largest has 14.*Give cv <= 14")
    with pytest.raises(ValueError, match=msg):
        rm.MultiTaskRegressorCV(alphas=3, cv=50).fit(Xs, ys)
    with pytest.raises(ValueError, match=msg):
        task_folds(rm.as_task_data(Xs, ys), 50)
    with pytest.raises(ValueError, match=r"Cannot have number of splits n_splits=50"):
        KFold(50).split(Xs[0]).__next__()
    # cv = the largest task: that task gets 14 folds, the others the fold rule (warned)
    with pytest.warns(UserWarning, match=r"cv=14: 2 task\(s\)"):
        assert len(task_folds(rm.as_task_data(Xs, ys), 14)) == 14


def test_classifier_cv_larger_than_every_rarest_class_is_refused():
    Xs, ys = _lists((12, 12, 12))
    ys = [(y > np.median(y)).astype(int) for y in ys]  # 6 of each class per task
    with pytest.raises(ValueError, match=r"^cv=7 is larger than every task's number of "
                                         r"samples of its rarest class: the smallest, task 0, "
                                         r"has 6"):
        rm.MultiTaskClassifierCV(alphas=3, cv=7).fit(Xs, ys)
    est = rm.MultiTaskClassifierCV(alphas=3, cv=6).fit(Xs, ys)
    assert est.n_splits_ == 6


@pytest.mark.parametrize("cv, err, match", [
    (1, ValueError, r"^cv=1: cross-validation needs at least 2 folds"),
    (0, ValueError, r"^cv=0: cross-validation needs at least 2 folds"),  # was: 0 folds
    (-2, ValueError, r"^cv=-2: cross-validation needs at least 2 folds"),
    (True, TypeError, r"^cv=True: give an integer number of folds"),
    (2.5, TypeError, r"^cv=2.5: give an integer number of folds"),  # was: AttributeError
    ("5", TypeError, r"^cv='5': give an integer number of folds"),  # was: TypeError in split
])
def test_bad_cv_is_refused_by_task_folds(cv, err, match):
    Xs, ys = _lists((10, 12))
    with pytest.raises(err, match=match):
        task_folds(rm.as_task_data(Xs, ys), cv)


def test_cv_none_means_five_folds():
    """cv=None (allowed by the estimators' parameter check) was an AttributeError; now 5
    folds, as scikit-learn's check_cv reads it: the same folds as cv=5."""
    Xs, ys = _lists((10, 12))
    data = rm.as_task_data(Xs, ys)
    a, b = task_folds(data, None), task_folds(data, 5)
    assert len(a) == 5 and all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    est = rm.MultiTaskRegressorCV(alphas=3, cv=None, random_state=None, **TIGHT).fit(Xs, ys)
    np.testing.assert_allclose(est.cv_results_["mean_test_score"],
                               _hand_cv(Xs, ys, est.alphas_, 5), rtol=1e-6)


def test_splitter_a_task_cannot_take_names_the_task():
    Xs, ys = _lists((10, 1, 12))
    with pytest.raises(ValueError, match=r"^cv=KFold\(n_splits=3.*cannot split task 1 \(1 "
                                         r"row\): Cannot have number of splits"):
        rm.MultiTaskRegressorCV(alphas=3, cv=KFold(3)).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"^cv=LeaveOneOut\(\) cannot split task 1 \(1 row\)"):
        task_folds(rm.as_task_data(Xs, ys), LeaveOneOut())
    Xs, ys = _lists((10, 12))  # was: "the splitter gave a different number of folds"
    with pytest.raises(ValueError, match=r"^cv=LeaveOneOut\(\) gave 10 fold\(s\) on task 0 "
                                         r"and 12 on task 1"):
        task_folds(rm.as_task_data(Xs, ys), LeaveOneOut())


def test_information_criteria_refuse_a_one_row_task():
    """Its intercept fits it exactly: RSS = 0 at every alpha, -2 log L set by rounding (the
    choice was noise); now refused, naming the criterion and the task."""
    Xs, ys = _lists((10, 1, 12))
    for crit in ("aic", "bic"):
        with pytest.raises(ValueError, match=rf"^criterion='{crit}': task 1 has 1 observed "
                                             r"row.*criterion='cv'"):
            rm.MultiTaskRegressorCV("l21", alphas=4, criterion=crit).fit(Xs, ys)


def test_information_criteria_leave_out_candidates_without_residual_dof():
    """3 tasks of 3 rows, p = 8, L2: at small alpha df -> N = 9 and -2 log L -> -inf (AIC
    chose the smallest alpha). Candidates with df >= N - 1 get inf; the choice is the
    finite minimum, recomputed here from the table's own df and -2 log L."""
    Xs, ys = _lists((3, 3, 3), p=8, seed=0)
    with pytest.warns(UserWarning, match=r"criterion='aic': 2 of 4 candidates have df >= "
                                         r"N - 1 = 8"):
        est = rm.MultiTaskRegressorCV("l2", alphas=4, criterion="aic").fit(Xs, ys)
    res = est.cv_results_
    df, n2 = res["df"].to_numpy(), res["neg2_log_likelihood"].to_numpy()
    assert (df[2:] >= 8).all() and (df[:2] < 8).all()
    assert np.isinf(res["aic"].to_numpy()[2:]).all()
    np.testing.assert_allclose(res["aic"].to_numpy()[:2], n2[:2] + 2 * df[:2], rtol=1e-12)
    assert est.alpha_ == res["param_alpha"].to_numpy()[np.argmin(n2[:2] + 2 * df[:2])]
    with pytest.raises(ValueError, match=r"criterion='bic': every candidate has df >= N - 1"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rm.MultiTaskRegressorCV("l2", alphas=[1e-6, 1e-8], criterion="bic").fit(Xs, ys)


def test_task_sums_of_tasks_without_rows_are_zero():
    """TaskData.task_sums, the per-task segment sums every solver and score uses: a task
    without rows (a validation part of a one-row task), in the middle or last, sums to 0."""
    from regmtl.inputs import as_task_data

    data = as_task_data([np.ones((2, 1)), np.ones((1, 1)), np.ones((3, 1))],
                        [np.zeros(2), np.zeros(1), np.zeros(3)])
    u = np.arange(6.0)
    np.testing.assert_array_equal(data.task_sums(u), [1.0, 2.0, 12.0])
    for keep in ([0, 1, 3, 4, 5], [0, 1, 2]):  # task 1 left out, then task 2 (the last)
        part = take(data, np.array(keep), fit=False)
        ref = np.bincount(part.task_of, u[: len(keep)], minlength=3)
        np.testing.assert_array_equal(part.task_sums(u[: len(keep)]), ref)
