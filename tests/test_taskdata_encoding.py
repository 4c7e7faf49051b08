"""Input conversion and label encoding done once over all tasks (``TaskData.encode_binary``,
the lists form's stacked checks, the long form's grouping) give what the task-by-task code
gives: the same -1/+1 targets and classes, and the same errors, naming the same task."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import regmtl as rm
from regmtl.inputs import _group_order, as_task_data
from regmtl.taskdata import _encode_task


def _reference(data):
    """The per-task encoding: each task's two classes and its rows of y."""
    y = np.ones(data.n_obs)
    return y, [_encode_task(data, t, y) for t in range(data.n_tasks)]


def _check_against_reference(data):
    y_ref, cls_ref = _reference(data)
    data.encode_binary()
    np.testing.assert_array_equal(data.y, y_ref)
    assert len(data.classes) == len(cls_ref)
    for got, want in zip(data.classes, cls_ref, strict=True):
        assert got.dtype == want.dtype
        assert got.tolist() == want.tolist()


def _pairs(rng, T, kind):
    """Two labels per task: ints, strings, bools, or int and str labels on alternate tasks."""
    out = []
    for t in range(T):
        if kind == "int":
            a, b = sorted(rng.choice(50, 2, replace=False))
            out.append((int(a), int(b)))
        elif kind == "str":
            a, b = sorted(rng.choice(["ham", "spam", "eggs", "x", "yy"], 2, replace=False))
            out.append((str(a), str(b)))
        elif kind == "bool":
            out.append((False, True))
        else:  # mixed: 'spam'/'ham' and 3/7
            out.append(("ham", "spam") if t % 2 else (3, 7))
    return out


def _task_labels(rng, pair, n, kind):
    pick = rng.random(n) < 0.5
    pick[:2] = [False, True]
    if kind == "bool":
        return pick
    if kind == "mixed":
        lab = np.empty(n, dtype=object)
        lab[:] = [pair[int(k)] for k in pick]
        return lab
    return np.array([pair[int(k)] for k in pick])


@pytest.mark.parametrize("kind", ["int", "str", "bool", "mixed"])
@pytest.mark.parametrize("seed", range(3))
def test_lists_form_encoding_matches_per_task_reference(kind, seed):
    rng = np.random.default_rng(seed)
    T = 12
    sizes = rng.integers(4, 30, T)
    pairs = _pairs(rng, T, kind)
    Xs = [rng.standard_normal((n, 3)) for n in sizes]
    ys = [_task_labels(rng, pairs[t], n, kind) for t, n in enumerate(sizes)]
    sw = []
    for y in ys:  # zero weights, but both classes keep a weighted row
        w = rng.random(len(y)) * (rng.random(len(y)) < 0.7)
        w[:2] = 1.0
        sw.append(w)
    for weights in (None, sw):
        _check_against_reference(
            as_task_data(Xs, ys, sample_weight=weights, numeric_y=False))


@pytest.mark.parametrize("seed", range(3))
def test_zero_weight_third_class_matches_reference(seed):
    """A third label on zero-weight rows only: two classes, its rows get -1."""
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((25, 2)) for _ in range(5)]
    ys = [rng.integers(0, 2, 25) for _ in range(5)]
    sw = [np.ones(25) for _ in range(5)]
    for y in ys:
        y[:2] = [0, 1]
    ys[2][5:9] = 9
    sw[2][5:9] = 0.0
    data = as_task_data(Xs, ys, sample_weight=sw, numeric_y=False)
    _check_against_reference(data)
    assert data.classes[2].tolist() == [0, 1]
    assert np.all(data.y[data.indptr[2] + 5 : data.indptr[2] + 9] == -1.0)


@pytest.mark.parametrize("kind", ["float", "object"])
def test_shared_form_with_missing_labels_matches_reference(kind):
    rng = np.random.default_rng(1)
    n, T = 40, 6
    Y = rng.integers(0, 2, (n, T)).astype(float)
    Y[:2] = [[0.0] * T, [1.0] * T]
    Y[rng.random((n, T)) < 0.2] = np.nan
    Y[:2] = [[0.0] * T, [1.0] * T]
    if kind == "object":  # string labels, None where missing
        Yo = np.where(Y == 1, "yes", "no").astype(object)
        Yo[np.isnan(Y)] = None
        Y = Yo
    sw = np.r_[1.0, 1.0, rng.random(n - 2) * (rng.random(n - 2) < 0.8)]
    data = as_task_data(rng.standard_normal((n, 3)), Y, numeric_y=False, sample_weight=sw)
    assert data.observed is not None
    y_ref, _ = _reference(data)
    _check_against_reference(data)
    assert np.all(data.y[~data.observed] == 1.0)  # unobserved rows keep 1.0
    np.testing.assert_array_equal(data.y, y_ref)


def test_long_form_string_labels_match_reference():
    rng = np.random.default_rng(2)
    N, T = 500, 37
    ids = rng.integers(0, T, N)
    y = np.where(rng.random(N) < 0.5, "spam", "ham")
    for t in range(T):  # both classes in every task
        rows = np.flatnonzero(ids == t)
        y[rows[:2]] = ["ham", "spam"]
    data = as_task_data(rng.standard_normal((N, 4)), y, task=ids, numeric_y=False)
    _check_against_reference(data)
    assert all(c.tolist() == ["ham", "spam"] for c in data.classes)


def test_mixed_label_types_per_task_fit():
    rng = np.random.default_rng(3)
    Xs = [rng.standard_normal((30, 3)) for _ in range(2)]
    ys = [np.where(rng.random(30) < 0.5, "spam", "ham"), np.where(rng.random(30) < 0.5, 3, 7)]
    ys[0][:2], ys[1][:2] = ["ham", "spam"], [3, 7]
    model = rm.MultiTaskClassifier(alpha=0.1).fit(Xs, ys)
    assert [c.tolist() for c in model.classes_] == [["ham", "spam"], [3, 7]]


# ------------------------------------------------------------------------------ errors
def _reference_error(data):
    with pytest.raises(ValueError) as info:
        _reference(data)
    return str(info.value)


def _lists(rng, T=10, n=20):
    Xs = [rng.standard_normal((n, 2)) for _ in range(T)]
    ys = [rng.integers(0, 2, n) for _ in range(T)]
    for y in ys:
        y[:2] = [0, 1]
    return Xs, ys


@pytest.mark.parametrize("case", ["one_class", "zero_weight_class", "three", "continuous",
                                  "one_class_before_continuous", "str_one_class"])
def test_errors_name_the_first_offending_task(case):
    rng = np.random.default_rng(4)
    Xs, ys = _lists(rng)
    sw = None
    if case == "one_class":
        ys[7] = np.full(20, 1)
        pattern = r"^y: task 7 has one class \(np.int64\(1\)\)"
    elif case == "zero_weight_class":
        sw = [np.ones(20) for _ in Xs]
        sw[4] = np.where(ys[4] == 0, 0.0, 1.0)
        pattern = r"^y: task 4 has one class"
    elif case == "three":
        ys[6] = np.arange(20) % 3
        pattern = r"^Only binary classification is supported.*multiclass \(task 6 has 3 classes"
    elif case == "continuous":
        ys = [y.astype(float) for y in ys]
        ys[8] = ys[8] + 0.5
        pattern = r"^Unknown label type: continuous"
    elif case == "one_class_before_continuous":
        ys = [y.astype(float) for y in ys]
        ys[2] = np.zeros(20)
        ys[5] = ys[5] + 0.25
        pattern = r"^y: task 2 has one class"
    else:
        ys = [np.where(y == 1, "b", "a") for y in ys]
        ys[3] = np.full(20, "a")
        pattern = r"^y: task 3 has one class \(np.str_\('a'\)\)"
    data = as_task_data(Xs, ys, sample_weight=sw, numeric_y=False)
    want = _reference_error(data)
    with pytest.raises(ValueError) as info:
        data.encode_binary()
    assert str(info.value) == want
    assert re.search(pattern, want)


def test_dict_form_error_names_the_task_key():
    rng = np.random.default_rng(5)
    Xs, ys = _lists(rng, T=3)
    ys[2] = np.zeros(20, dtype=int)
    with pytest.raises(ValueError, match=r"^y: task 'c' has one class"):
        rm.MultiTaskClassifier().fit(dict(zip("abc", Xs, strict=True)),
                                     dict(zip("abc", ys, strict=True)))


def test_many_classes_warning_matches_reference():
    """scikit-learn's 'more classes than half the samples' warning for a task whose
    zero-weight rows hold many labels, as the per-task check gives it."""
    rng = np.random.default_rng(6)
    Xs, ys = _lists(rng, T=4, n=30)
    ys[1] = np.arange(30)  # 30 labels, two of them on weighted rows
    sw = [np.ones(30) for _ in Xs]
    sw[1][2:] = 0.0
    data = as_task_data(Xs, ys, sample_weight=sw, numeric_y=False)
    with warnings.catch_warnings(record=True) as ref:
        warnings.simplefilter("always")
        _reference(data)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        data.encode_binary()
    assert [str(w.message) for w in got] == [str(w.message) for w in ref]
    assert len(ref) == 1


# ------------------------------------------------------------------- lists form checks
def test_lists_of_frames_are_checked_once_with_feature_names():
    rng = np.random.default_rng(7)
    Xs, ys = _lists(rng, T=3)
    frames = [pd.DataFrame(X, columns=["a", "b"]) for X in Xs]
    model = rm.MultiTaskClassifier(alpha=0.1).fit(frames, ys)
    assert model.feature_names_in_.tolist() == ["a", "b"]
    data = as_task_data(frames, ys, numeric_y=False)
    np.testing.assert_array_equal(data.X, np.vstack(Xs))
    assert data.X.flags.f_contiguous
    # different columns: the per-task check refuses the task
    frames[1] = frames[1].rename(columns={"b": "c"})
    with pytest.raises(ValueError, match="feature names"):
        rm.MultiTaskClassifier(alpha=0.1).fit(frames, ys)


def test_lists_of_sparse_matrices_stack_once():
    rng = np.random.default_rng(8)
    Xs, ys = _lists(rng, T=3)
    mats = [sp.csr_matrix(X * (rng.random(X.shape) < 0.5)) for X in Xs]
    mats[1] = mats[1].tocoo()
    data = as_task_data(mats, ys, numeric_y=False)
    assert sp.issparse(data.X) and data.X.format == "csc"
    np.testing.assert_array_equal(data.X.toarray(), np.vstack([m.toarray() for m in mats]))


def test_lists_form_errors_still_name_the_task():
    rng = np.random.default_rng(9)
    Xs, ys = _lists(rng, T=3)
    bad = [y.astype(float) for y in ys]
    bad[2][4] = np.nan
    with pytest.raises(ValueError, match=r"Input y\[2\] contains NaN"):
        as_task_data(Xs, bad, numeric_y=False)
    frames = [pd.DataFrame(X, columns=["a", "b"]) for X in Xs]
    frames[1] = frames[1].iloc[:0]
    with pytest.raises(ValueError, match=r"X\[1\] has no rows"):
        as_task_data(frames, ys, numeric_y=False)
    sw = [np.ones(20), np.ones(20), np.ones(20)]
    sw[0][3], sw[1][2] = np.inf, np.nan  # the first task's problem is reported
    with pytest.raises(ValueError, match=r"Input sample_weight contains infinity"):
        as_task_data(Xs, ys, sample_weight=sw, numeric_y=False)


# ------------------------------------------------------------------------- long form
@pytest.mark.parametrize("n_groups", [1, 7, 70_000, 200_000])
def test_group_order_is_a_stable_argsort(n_groups):
    rng = np.random.default_rng(10)
    codes = rng.integers(0, n_groups, 300_000)
    np.testing.assert_array_equal(_group_order(codes, n_groups),
                                  np.argsort(codes, kind="stable"))
    codes.sort()
    np.testing.assert_array_equal(_group_order(codes, n_groups), np.arange(len(codes)))


@pytest.mark.parametrize("ids", [np.array([5, 2, 5, 9, 2, 9, 5]),
                                 np.array([0.5, 2.0, 0.5, 1.0, 2.0, 1.0, 0.5]),
                                 np.array(["b", "a", "b", "c", "a", "c", "b"])])
def test_long_form_groups_rows_by_sorted_task(ids):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((7, 3))
    y = rng.standard_normal(7)
    data = as_task_data(X, y, task=ids)
    uniq = sorted(set(ids.tolist()))
    assert data.tasks.tolist() == uniq
    assert all(type(t) is type(uniq[0]) for t in data.tasks)  # Python scalars, as before
    np.testing.assert_array_equal(data.order, np.argsort(ids, kind="stable"))
    np.testing.assert_array_equal(data.X, X[data.order])
    np.testing.assert_array_equal(data.y, y[data.order])
    assert data.indptr.tolist() == [0, *np.cumsum([np.sum(ids == u) for u in uniq])]
