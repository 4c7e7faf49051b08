"""Bad input to the estimators gets a ValueError that names the argument and the fix: data whose
squares overflow float64, no tasks, ``task`` with the lists form, a missing task column, and
unhashable task ids.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl import MultiTaskClassifier, MultiTaskRegressor

P = 5
SIZES = (40, 35, 45)


def make_lists(seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((P, len(SIZES)))
    Xs = [rng.standard_normal((n, P)) for n in SIZES]
    ys = [X @ W[:, t] + 0.1 * rng.standard_normal(n) for t, (X, n) in
          enumerate(zip(Xs, SIZES, strict=True))]
    return Xs, ys


def make_long(seed=0):
    Xs, ys = make_lists(seed)
    task = np.concatenate([np.full(n, t) for t, n in enumerate(SIZES)])
    return np.vstack(Xs), np.concatenate(ys), task


def _fit(est, *args, **kwargs):
    """A fit with warnings turned into errors: a refusal must not come as warnings + NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return est.fit(*args, **kwargs)


# ---------------------------------------------------------------------------- overflow
SCALE_MSG = r"as large as .*e\+300 in magnitude.*overflow.*Rescale {}.*standardize"


def test_targets_whose_squares_overflow_are_refused():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"^y\[\d\] holds values " + SCALE_MSG.format("y")):
        _fit(MultiTaskRegressor(alpha=0.01), Xs, [y * 1e300 for y in ys])
    X, y, task = make_long()
    with pytest.raises(ValueError, match=r"^y holds values " + SCALE_MSG.format("y")):
        _fit(MultiTaskRegressor(alpha=0.01), X, y * 1e300, task=task)


def test_design_whose_squares_overflow_is_refused_and_names_the_task():
    Xs, ys = make_lists()
    big = [X.copy() for X in Xs]
    big[1] *= 1e300  # only task 1 is out of range
    with pytest.raises(ValueError, match=r"^X\[1\] holds values " + SCALE_MSG.format("X")):
        _fit(MultiTaskRegressor(alpha=0.01), big, ys)
    with pytest.raises(ValueError, match=r"^X\['b'\] holds values " + SCALE_MSG.format("X")):
        _fit(MultiTaskRegressor(alpha=0.01), dict(zip("abc", big, strict=True)),
             dict(zip("abc", ys, strict=True)))
    with pytest.raises(ValueError, match=r"^X\[1\] holds values " + SCALE_MSG.format("X")):
        _fit(MultiTaskRegressor(alpha=0.01), [sp.csr_matrix(X) for X in big], ys)
    X, y, task = make_long()
    with pytest.raises(ValueError, match=r"^X holds values " + SCALE_MSG.format("X")):
        _fit(MultiTaskClassifier(alpha=0.01), -X * 1e300, y > 0, task=task)


def test_overflow_limit_grows_with_the_rows():
    """max|v| * sqrt(n_rows) <= 1e150: the same values pass in 4 rows, not in 400."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    X[0, 0] = 1e149
    rm.as_task_data(X[:4], np.ones(4))
    with pytest.raises(ValueError, match=r"X holds values as large as 1e\+149.*over 400 rows"):
        rm.as_task_data(X, np.ones(400))


def test_moderately_large_data_still_fits():
    """1e50 is far from the limit: the fit is the unit-scale one, rescaled."""
    Xs, ys = make_lists()
    ref = MultiTaskRegressor(alpha=0.01).fit(Xs, ys)
    assert ref.score(Xs, ys) > 0.99
    # X scaled by 1e50 and alpha alike: the same problem in W * 1e50
    big_x = _fit(MultiTaskRegressor(alpha=0.01 * 1e50), [X * 1e50 for X in Xs], ys)
    np.testing.assert_allclose(big_x.coef_ * 1e50, ref.coef_, rtol=1e-6, atol=1e-9)
    assert big_x.score([X * 1e50 for X in Xs], ys) == pytest.approx(ref.score(Xs, ys), abs=1e-9)
    # y scaled by 1e50 and alpha alike: the same problem in W / 1e50
    big_y = _fit(MultiTaskRegressor(alpha=0.01 * 1e50), Xs, [y * 1e50 for y in ys])
    np.testing.assert_allclose(big_y.coef_ / 1e50, ref.coef_, rtol=1e-6, atol=1e-9)
    # the same alpha on X * 1e50 (almost no penalty left) still explains y as well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same = MultiTaskRegressor(alpha=0.01).fit([X * 1e50 for X in Xs], ys)
    assert same.score([X * 1e50 for X in Xs], ys) == pytest.approx(ref.score(Xs, ys), abs=1e-3)


# ---------------------------------------------------------------------------- no tasks
@pytest.mark.parametrize("X, y", [([], []), ((), ()), ({}, {})])
def test_no_tasks_is_refused(X, y):
    for est in (MultiTaskRegressor(), MultiTaskClassifier()):
        with pytest.raises(ValueError, match=r"^X: no tasks were given \(an empty"):
            est.fit(X, y)


# ---------------------------------------------------------------------------- task= misuse
def test_task_with_the_lists_form_is_refused():
    Xs, ys = make_lists()
    ids = np.repeat([0, 1, 2], SIZES)
    with pytest.raises(ValueError, match=r"^task: .*carries the tasks by position"):
        MultiTaskRegressor().fit(Xs, ys, task=ids)
    with pytest.raises(ValueError, match=r"^task: .*by position \(or by key\)"):
        MultiTaskRegressor().fit(dict(enumerate(Xs)), dict(enumerate(ys)), task=ids)
    model = MultiTaskRegressor().fit(Xs, ys)
    with pytest.raises(ValueError, match=r"^task: .*Drop task"):
        model.predict(Xs, task=ids)


def test_task_column_missing_from_the_dataframe():
    X, y, task = make_long()
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(P)]).assign(store=task)
    with pytest.raises(ValueError, match=r"task='nocol' is not a column of X; its columns are "
                                         r"'x0', 'x1', 'x2', 'x3', 'x4', 'store'"):
        MultiTaskRegressor().fit(frame, y, task="nocol")
    model = MultiTaskRegressor().fit(frame, y, task="store")
    with pytest.raises(ValueError, match=r"task='shop' is not a column of X"):
        model.predict(frame, task="shop")
    with pytest.raises(ValueError, match=r"task='store' names a column, but X is a ndarray, "
                                         r"not a pandas DataFrame"):
        MultiTaskRegressor().fit(X, y, task="store")


@pytest.mark.parametrize("make_id", [lambda t: [t], lambda t: {"store": t}],
                         ids=["list", "dict"])
def test_unhashable_task_ids_are_refused(make_id):
    X, y, task = make_long()
    ids = [make_id(int(t)) for t in task]
    kind = type(ids[0]).__name__
    with pytest.raises(ValueError, match=rf"^task: ids must be hashable .*row 0 holds a {kind}"):
        MultiTaskRegressor().fit(X, y, task=ids)
    with pytest.raises(ValueError, match=r"^task: ids must be hashable"):
        MultiTaskRegressor().fit(X, y, task=pd.Series(ids))
    model = MultiTaskRegressor().fit(X, y, task=[(int(t), "x") for t in task])  # tuples: fine
    assert [tuple(t) for t in model.tasks_] == [(0, "x"), (1, "x"), (2, "x")]
    with pytest.raises(ValueError, match=r"^task: ids must be hashable"):
        model.predict(X, task=ids)


@pytest.mark.parametrize("form", ["lists", "long"])
@pytest.mark.parametrize("labels", [[1, "a"] * 15, [1, "a", "b"] * 10, [1.5, "x"] * 15],
                         ids=["binary", "three", "float-str"])
def test_a_task_mixing_label_types_is_refused(form, labels):
    """A task whose labels mix numbers and strings has no order for its classes: scikit-learn
    raised ``Unknown label type: unknown`` (or ``'<' not supported``); refused by name: the
    task, ``y``, and the fix (one label type)."""
    rng = np.random.default_rng(0)
    X1, X2 = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    y1, y2 = np.array(labels, dtype=object), rng.integers(0, 2, 30)
    clf = MultiTaskClassifier("l21", alpha=0.1)
    if form == "lists":
        fit = lambda: clf.fit([X1, X2], [y1, y2])  # noqa: E731
        name = "0"
    else:
        y = np.concatenate([y1, y2.astype(object)])
        task = np.repeat(["first", "second"], 30)
        fit = lambda: clf.fit(np.vstack([X1, X2]), y, task=task)  # noqa: E731
        name = "'first'"
    msg = str(pytest.raises(ValueError, fit).value)
    for word in ("y: task", name, "mixes label types", "str", "one type"):
        assert word in msg, msg
    # one type per task is fine, and tasks may differ in type
    clf.fit([X1, X2], [np.array(["a", "b"] * 15, dtype=object), y2])
    assert list(clf.classes_[0]) == ["a", "b"]


LOSS_PARAMETERS = [
    (lambda v: rm.Huber(delta=v), "Huber(delta=", "delta"),
    (lambda v: rm.Huber(epsilon=v), "Huber(epsilon=", "epsilon"),
    (lambda v: rm.Quantile(v), "Quantile(quantile=", "quantile"),
    (lambda v: rm.datafits.quantile.SmoothedQuantile(0.5, delta=v), "SmoothedQuantile(delta=",
     "delta"),
]
BAD_NUMBERS = [None, float("nan"), float("inf"), -1.0, 0.0, "1", True, [1.0]]


@pytest.mark.parametrize("make, call, name", LOSS_PARAMETERS,
                         ids=["Huber.delta", "Huber.epsilon", "Quantile.quantile",
                              "SmoothedQuantile.delta"])
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_loss_parameters_are_checked_by_name(make, call, name, value):
    """Every loss constructor's number: None, NaN, inf, a negative, zero, a string, a bool or
    a list is refused with a ValueError that names the call, the parameter, what it must be
    and the value given (``Huber(delta=None)`` raised a raw TypeError from ``float``; it is
    now the default, delta read from the data, and names that where it is used unbound)."""
    if value is None and call == "Huber(delta=":
        loss = make(value)
        assert loss.delta is None
        with pytest.raises(ValueError, match=r"Huber\(delta=None\) takes its delta from the "
                                             r"data .* or give delta in the targets' units"):
            loss.value(np.zeros(2), np.zeros(2), np.ones(2))
        return
    msg = str(pytest.raises(ValueError, make, value).value)
    for word in (call, f"{name} must be a finite number", f"got {value!r}"):
        assert word in msg, msg
    if name == "quantile":
        assert "strictly between 0 and 1" in msg
        assert make(np.float32(0.25)).quantile == 0.25
    else:
        assert "> 0" in msg and getattr(make(2), name) == 2.0


def test_the_task_table_is_built_once_per_fitted_task_list():
    """The label -> position table of a model's tasks is built at its first predict and
    reused (a model of 10^5 tasks spent 18 ms a call rebuilding it); an unknown id is still
    refused by name, and a model's new task list gets a table of its own."""
    from regmtl import inputs

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    task = np.repeat(np.array(["a", "b", "c"], dtype=object), 20)
    model = rm.MultiTaskRegressor("l21", alpha=0.01).fit(X, X[:, 0], task=task)
    first = model.predict(X[:4], task=["c", "a", "b", "c"])
    table = inputs._POSITIONS[id(model.tasks_)][1]
    assert table == {"a": 0, "b": 1, "c": 2}
    np.testing.assert_array_equal(model.predict(X[:4], task=["c", "a", "b", "c"]), first)
    assert inputs._POSITIONS[id(model.tasks_)][1] is table
    with pytest.raises(ValueError, match="unknown task 'zz'"):
        model.predict(X[:1], task=["zz"])
    other = rm.MultiTaskRegressor("l21", alpha=0.01).fit(X, X[:, 1], task=task)
    other.predict(X[:2], task=["a", "b"])
    assert inputs._POSITIONS[id(other.tasks_)][1] is not table
