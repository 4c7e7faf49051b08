"""The estimators' public API: input forms and their outputs (design.rst section 3), metadata
routing, warm starts, sparse input, determinism, and the errors and warnings for bad input.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import regmtl as rm
from regmtl import MultiTaskClassifier, MultiTaskRegressor

P = 6
SIZES = (20, 31, 26)
TIGHT = dict(tol=1e-12, max_iter=20_000)


def _rng(seed=0):
    return np.random.default_rng(seed)


def make_lists(seed=0, sizes=SIZES, p=P):
    """Per-task designs with different n_t and related targets."""
    rng = _rng(seed)
    W = rng.standard_normal((p, len(sizes))) * (rng.random((p, 1)) < 0.6)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [X @ W[:, t] + 0.5 * t + 0.1 * rng.standard_normal(len(X)) for t, X in enumerate(Xs)]
    return Xs, ys


def make_shared(seed=0, n=40, T=3, p=P):
    rng = _rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, T)) + 0.1 * rng.standard_normal((n, T))
    return X, Y


def make_class_lists(seed=0):
    """Two classification tasks with labels of different types: 'spam'/'ham' and 3/7."""
    rng = _rng(seed)
    Xa, Xb = rng.standard_normal((30, P)), rng.standard_normal((40, P))
    ya = np.where(Xa[:, 0] + 0.5 * rng.standard_normal(30) > 0, "spam", "ham")
    yb = np.where(Xb[:, 1] + 0.5 * rng.standard_normal(40) > 0, 7, 3)
    return [Xa, Xb], [ya, yb]


def object_array(values):
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


# ============================================================================ input forms
def test_list_form_different_sizes():
    Xs, ys = make_lists()
    m = MultiTaskRegressor(alpha=0.05).fit(Xs, ys)
    assert m.coef_.shape == (3, P)
    assert m.intercept_.shape == (3,)
    assert list(m.tasks_) == [0, 1, 2]
    pred = m.predict(Xs)
    assert isinstance(pred, list)
    assert [len(a) for a in pred] == list(SIZES)
    for t, (X, a) in enumerate(zip(Xs, pred, strict=True)):
        assert_allclose(a, X @ m.coef_[t] + m.intercept_[t], rtol=1e-12, atol=1e-12)


def test_dict_form():
    Xs, ys = make_lists()
    keys = ["north", "south", "east"]
    m = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(dict(zip(keys, Xs, strict=True)),
                                                   dict(zip(keys, ys, strict=True)))
    ml = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(Xs, ys)
    tasks = list(m.tasks_)
    assert sorted(tasks) == sorted(keys)
    for k, key in enumerate(keys):
        assert_allclose(m.coef_[tasks.index(key)], ml.coef_[k], atol=1e-10)
    # predict on a subset of the tasks, in any order: a dict back with the same keys
    pred = m.predict({"east": Xs[2], "north": Xs[0][:5]})
    assert isinstance(pred, dict)
    assert set(pred) == {"east", "north"}
    assert pred["east"].shape == (SIZES[2],)
    assert_allclose(pred["north"], ml.predict(Xs)[0][:5], atol=1e-9)


def _long_from_lists(Xs, ys, labels, seed=1):
    X = np.vstack(Xs)
    y = np.concatenate(ys)
    ids = object_array([labels[t] for t, Xt in enumerate(Xs) for _ in range(len(Xt))])
    perm = _rng(seed).permutation(len(y))  # rows NOT sorted by task
    return X[perm], y[perm], ids[perm]


@pytest.mark.parametrize(
    "labels",
    [["b", "a", "c"], [30, 10, 20], [("x", 2), ("x", 1), ("y", 0)]],
    ids=["strings", "ints", "tuples"],
)
def test_long_form_any_hashable_ids_unsorted_rows(labels):
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, labels)
    m = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, y, task=ids)
    ml = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(Xs, ys)
    assert sorted(m.tasks_.tolist()) == sorted(labels)
    tasks = m.tasks_.tolist()
    for t, lab in enumerate(labels):
        k = tasks.index(lab)
        assert_allclose(m.coef_[k], ml.coef_[t], atol=1e-9)
        assert_allclose(m.intercept_[k], ml.intercept_[t], atol=1e-9)
    # predictions come back in the original row order and equal the list-form fit's
    pred = m.predict(X, task=ids)
    assert pred.shape == (len(y),)
    expected = np.empty(len(y))
    for t, lab in enumerate(labels):
        rows = np.array([i for i in range(len(ids)) if ids[i] == lab])
        parts = list(Xs)
        parts[t] = X[rows]
        expected[rows] = ml.predict(parts)[t]
    assert_allclose(pred, expected, atol=1e-9)


def test_long_form_task_ids_as_plain_list_of_tuples():
    # a list of tuple ids is one id per row (not a 2-D array of ids)
    Xs, ys = make_lists()
    labels = [(0, "a"), (1, "b"), (2, "c")]
    X, y, ids = _long_from_lists(Xs, ys, labels)
    ids_list = list(ids)
    m = MultiTaskRegressor(alpha=0.05).fit(X, y, task=ids_list)
    assert sorted(m.tasks_.tolist()) == labels
    assert_allclose(m.predict(X, task=ids_list),
                    MultiTaskRegressor(alpha=0.05).fit(X, y, task=ids).predict(X, task=ids))


def test_long_form_dataframe_with_task_column():
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, ["u", "v", "w"])
    cols = [f"f{j}" for j in range(P)]
    df = pd.DataFrame(X, columns=cols)
    df.insert(2, "grp", ids)
    m = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(df, y, task="grp")
    ref = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, y, task=ids)
    assert m.n_features_in_ == P
    assert list(m.feature_names_in_) == cols
    assert list(m.tasks_) == ["u", "v", "w"]
    assert_allclose(m.coef_, ref.coef_, atol=1e-12)
    assert_allclose(m.predict(df, task="grp"), ref.predict(X, task=ids), atol=1e-12)
    # a Series of ids works too
    assert_allclose(m.predict(df.drop(columns="grp"), task=df["grp"]),
                    ref.predict(X, task=ids), atol=1e-12)


def test_shared_design_2d_y():
    X, Y = make_shared()
    m = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Y)
    assert m.coef_.shape == (3, P)
    pred = m.predict(X)
    assert pred.shape == (40, 3)
    assert_allclose(pred, X @ m.coef_.T + m.intercept_, atol=1e-12)
    # the same problem as lists
    ml = MultiTaskRegressor(alpha=0.05, **TIGHT).fit([X] * 3, list(Y.T))
    assert_allclose(m.coef_, ml.coef_, atol=1e-10)


def test_shared_nan_is_missing_label():
    X, Y = make_shared()
    Yn = Y.copy()
    drop = [1, 5, 7, 20]
    Yn[drop, 1] = np.nan
    keep = np.setdiff1d(np.arange(len(X)), drop)
    m = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(X, Yn)
    ml = MultiTaskRegressor(alpha=0.05, **TIGHT).fit(
        [X, X[keep], X], [Y[:, 0], Y[keep, 1], Y[:, 2]]
    )
    assert_allclose(m.coef_, ml.coef_, atol=1e-10)
    assert_allclose(m.intercept_, ml.intercept_, atol=1e-10)
    # score ignores the missing labels
    expected = np.mean([r2_score(Y[:, 0], m.predict(X)[:, 0]),
                        r2_score(Y[keep, 1], m.predict(X)[keep, 1]),
                        r2_score(Y[:, 2], m.predict(X)[:, 2])])
    assert m.score(X, Yn) == pytest.approx(expected, rel=1e-12)


def test_shared_dataframe_y_names_tasks():
    X, Y = make_shared()
    m = MultiTaskRegressor(alpha=0.05).fit(X, pd.DataFrame(Y, columns=["p", "q", "r"]))
    assert list(m.tasks_) == ["p", "q", "r"]


def test_single_task_1d_y():
    Xs, ys = make_lists()
    m = MultiTaskRegressor(alpha=0.05).fit(Xs[0], ys[0])
    assert m.coef_.shape == (P,)
    assert isinstance(m.intercept_, float)
    pred = m.predict(Xs[0])
    assert pred.shape == (SIZES[0],)
    assert_allclose(pred, Xs[0] @ m.coef_ + m.intercept_, atol=1e-12)


@pytest.mark.parametrize("form", ["list", "long", "shared"])
def test_predict_2d_x_alone_after_multitask_fit(form):
    Xs, ys = make_lists()
    Xnew = _rng(5).standard_normal((9, P))
    if form == "list":
        m = MultiTaskRegressor(alpha=0.05).fit(Xs, ys)
    elif form == "long":
        X, y, ids = _long_from_lists(Xs, ys, ["c", "a", "b"])
        m = MultiTaskRegressor(alpha=0.05).fit(X, y, task=ids)
    else:
        X, Y = make_shared()
        m = MultiTaskRegressor(alpha=0.05).fit(X, Y)
    out = m.predict(Xnew)
    assert out.shape == (9, m.n_tasks_)
    for t, lab in enumerate(m.tasks_):
        ids = object_array([lab] * 9)
        assert_allclose(out[:, t], m.predict(Xnew, task=ids), atol=1e-12)
        assert_allclose(out[:, t], Xnew @ m.coef_[t] + m.intercept_[t], atol=1e-12)


def test_score_is_mean_of_per_task_r2():
    Xs, ys = make_lists()
    m = MultiTaskRegressor(alpha=0.05).fit(Xs, ys)
    pred = m.predict(Xs)
    by_hand = np.mean([r2_score(y, f) for y, f in zip(ys, pred, strict=True)])
    assert m.score(Xs, ys) == pytest.approx(by_hand, rel=1e-12)
    # long form: the same per-task average
    X, y, ids = _long_from_lists(Xs, ys, ["a", "b", "c"])
    ml = MultiTaskRegressor(alpha=0.05).fit(X, y, task=ids)
    f = ml.predict(X, task=ids)
    by_hand = np.mean([r2_score(y[ids == lab], f[ids == lab]) for lab in ["a", "b", "c"]])
    assert ml.score(X, y, task=ids) == pytest.approx(by_hand, rel=1e-12)


# ============================================================================ classifier
def _check_classifier_outputs(c, Xs, ys):
    pred = c.predict(Xs)
    proba = c.predict_proba(Xs)
    dec = c.decision_function(Xs)
    for t in range(len(Xs)):
        classes = c.classes_[t]
        assert set(classes.tolist()) == set(np.unique(ys[t]).tolist())
        assert set(np.unique(pred[t]).tolist()) <= set(classes.tolist())
        assert proba[t].shape == (len(Xs[t]), 2)
        assert_allclose(proba[t].sum(axis=1), 1.0, rtol=1e-12)
        assert np.array_equal(classes[np.argmax(proba[t], axis=1)], pred[t])
        assert np.array_equal(pred[t] == classes[1], dec[t] > 0)
    by_hand = np.mean([accuracy_score(y, f) for y, f in zip(ys, pred, strict=True)])
    assert c.score(Xs, ys) == pytest.approx(by_hand, rel=1e-12)


def test_classifier_list_any_two_labels_per_task():
    Xs, ys = make_class_lists()
    c = MultiTaskClassifier(alpha=0.01).fit(Xs, ys)
    assert len(c.classes_) == 2
    assert c.classes_[0].tolist() == ["ham", "spam"]
    assert c.classes_[1].tolist() == [3, 7]
    pred = c.predict(Xs)
    # original labels, of each task's own type
    assert all(isinstance(v, str) for v in pred[0])
    assert np.issubdtype(pred[1].dtype, np.integer)
    assert c.score(Xs, ys) > 0.7
    _check_classifier_outputs(c, Xs, ys)


def test_classifier_long_form_maps_labels_back():
    Xs, ys = make_class_lists()
    X = np.vstack(Xs)
    y = object_array(list(ys[0]) + [int(v) for v in ys[1]])
    ids = np.repeat(np.array(["mail", "digits"]), [len(Xs[0]), len(Xs[1])])
    perm = _rng(3).permutation(len(y))
    X, y, ids = X[perm], y[perm], ids[perm]
    c = MultiTaskClassifier(alpha=0.01, **TIGHT).fit(X, y, task=ids)
    cl = MultiTaskClassifier(alpha=0.01, **TIGHT).fit(
        [X[ids == "digits"], X[ids == "mail"]],
        [y[ids == "digits"].astype(int), y[ids == "mail"].astype(str)],
    )
    assert list(c.tasks_) == ["digits", "mail"]
    assert c.classes_[0].tolist() == [3, 7]
    assert c.classes_[1].tolist() == ["ham", "spam"]
    pred = c.predict(X, task=ids)
    assert pred.shape == y.shape
    assert set(pred[ids == "mail"].tolist()) <= {"ham", "spam"}
    assert set(pred[ids == "digits"].tolist()) <= {3, 7}
    assert_allclose(c.coef_, cl.coef_, atol=1e-8)
    dec = c.decision_function(X, task=ids)
    proba = c.predict_proba(X, task=ids)
    assert proba.shape == (len(y), 2)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    for t, lab in enumerate(c.tasks_):
        rows = ids == lab
        cls = c.classes_[t]
        assert np.array_equal(cls[np.argmax(proba[rows], axis=1)].astype(object), pred[rows])
        assert np.array_equal(pred[rows] == cls[1], dec[rows] > 0)
    by_hand = np.mean([accuracy_score(list(y[ids == lab]), list(pred[ids == lab]))
                       for lab in c.tasks_])
    assert c.score(X, y, task=ids) == pytest.approx(by_hand, rel=1e-12)


def test_classifier_single_task():
    Xs, ys = make_class_lists()
    c = MultiTaskClassifier(alpha=0.01).fit(Xs[0], ys[0])
    assert c.classes_.tolist() == ["ham", "spam"]
    assert c.coef_.shape == (P,)
    assert isinstance(c.intercept_, float)
    pred = c.predict(Xs[0])
    proba = c.predict_proba(Xs[0])
    assert np.array_equal(c.classes_[proba.argmax(axis=1)], pred)
    assert np.array_equal(pred == "spam", c.decision_function(Xs[0]) > 0)
    assert c.score(Xs[0], ys[0]) == pytest.approx(accuracy_score(ys[0], pred))


def test_classifier_shared_with_missing_labels():
    X, _ = make_shared(n=50)
    rng = _rng(4)
    Y = (X[:, :2] + 0.3 * rng.standard_normal((50, 2)) > 0).astype(float)
    Y[[0, 3, 9], 1] = np.nan
    c = MultiTaskClassifier(alpha=0.01).fit(X, Y)
    pred = c.predict(X)
    assert pred.shape == (50, 2)
    obs = ~np.isnan(Y[:, 1])
    by_hand = np.mean([accuracy_score(Y[:, 0], pred[:, 0]),
                       accuracy_score(Y[obs, 1], pred[obs, 1])])
    assert c.score(X, Y) == pytest.approx(by_hand, rel=1e-12)


# ============================================================================ metadata routing
def _long_problem(seed=0):
    Xs, ys = make_lists(seed)
    return _long_from_lists(Xs, ys, ["a", "b", "c"])


def test_cross_val_score_routes_task():
    X, y, ids = _long_problem()
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(MultiTaskRegressor(alpha=0.05), X, y, params={"task": ids}, cv=cv)
    manual = []
    for train, test in cv.split(X):
        m = MultiTaskRegressor(alpha=0.05).fit(X[train], y[train], task=ids[train])
        manual.append(m.score(X[test], y[test], task=ids[test]))
    assert_allclose(scores, manual, rtol=1e-12)


def test_grid_search_routes_task():
    X, y, ids = _long_problem()
    cv = KFold(3, shuffle=True, random_state=0)
    alphas = [0.001, 0.05, 1.0]
    with sklearn.config_context(enable_metadata_routing=True):
        gs = GridSearchCV(MultiTaskRegressor(), {"alpha": alphas}, cv=cv).fit(X, y, task=ids)
        expected = [cross_val_score(MultiTaskRegressor(alpha=a), X, y, params={"task": ids},
                                    cv=cv).mean() for a in alphas]
        assert gs.score(X, y, task=ids) == pytest.approx(
            gs.best_estimator_.score(X, y, task=ids))
    assert_allclose(gs.cv_results_["mean_test_score"], expected, rtol=1e-12)
    assert gs.best_params_["alpha"] == alphas[int(np.argmax(expected))]
    assert set(gs.best_estimator_.tasks_) == {"a", "b", "c"}


def test_pipeline_routes_task_to_final_step():
    # What is needed: nothing beyond enabling routing. The estimators request ``task`` by
    # default for fit, score and predict (class-level ``__metadata_request__fit/score/predict =
    # {"task": True}``), so no ``.set_fit_request(task=True)`` is required on the step; the
    # scaler does not request ``task`` and never sees it. Calling ``set_fit_request(task=True)``
    # anyway is harmless (checked below).
    X, y, ids = _long_problem()
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("scale", StandardScaler()), ("mtl", MultiTaskRegressor(alpha=0.05))])
        pipe.fit(X, y, task=ids)
        Xs = StandardScaler().fit_transform(X)
        ref = MultiTaskRegressor(alpha=0.05).fit(Xs, y, task=ids)
        assert_allclose(pipe.predict(X, task=ids), ref.predict(Xs, task=ids), atol=1e-12)
        assert pipe.score(X, y, task=ids) == pytest.approx(ref.score(Xs, y, task=ids))
        scores = cross_val_score(pipe, X, y, params={"task": ids}, cv=cv)
        explicit = Pipeline([("scale", StandardScaler()),
                             ("mtl", MultiTaskRegressor(alpha=0.05).set_fit_request(task=True))])
        scores_explicit = cross_val_score(explicit, X, y, params={"task": ids}, cv=cv)
    assert_allclose(scores, scores_explicit, rtol=1e-12)
    assert np.all(scores > 0.5)


# ============================================================================ warm start, sparse
def test_warm_start_refit_fewer_iterations_same_solution():
    Xs, ys = make_lists(sizes=(40, 50, 60), p=30)
    kw = dict(tol=1e-10, max_iter=20_000)
    cold = MultiTaskRegressor(alpha=0.015, **kw).fit(Xs, ys)
    m = MultiTaskRegressor(alpha=0.02, warm_start=True, **kw).fit(Xs, ys)
    m.set_params(alpha=0.015).fit(Xs, ys)  # from the alpha=0.02 solution
    assert m.n_iter_ < cold.n_iter_
    assert_allclose(m.coef_, cold.coef_, atol=1e-7)
    assert_allclose(m.intercept_, cold.intercept_, atol=1e-7)
    # refit on the same problem starts at the solution
    n_before = m.n_iter_
    coef_before = m.coef_.copy()
    m.fit(Xs, ys)
    assert m.n_iter_ < n_before
    assert_allclose(m.coef_, coef_before, atol=1e-7)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("form", ["list", "long", "shared", "single"])
def test_sparse_equals_dense(fmt, form):
    rng = _rng(7)
    p = 12
    Xs = [sp.random(30, p, density=0.4, format="csr", random_state=k) for k in range(3)]
    w = rng.standard_normal(p)
    ys = [X @ w + 0.1 * rng.standard_normal(30) for X in Xs]
    if form == "list":
        args_s = ([X.asformat(fmt) for X in Xs], ys)
        args_d = ([X.toarray() for X in Xs], ys)
        kw = {}
    elif form == "long":
        Xl = sp.vstack(Xs).asformat(fmt)
        perm = rng.permutation(90)
        ids = np.repeat(["a", "b", "c"], 30)[perm]
        args_s = (Xl[perm], np.concatenate(ys)[perm])
        args_d = (Xl[perm].toarray(), np.concatenate(ys)[perm])
        kw = {"task": ids}
    elif form == "shared":
        args_s = (Xs[0].asformat(fmt), np.column_stack([ys[0], ys[0] ** 2, -ys[0]]))
        args_d = (Xs[0].toarray(), args_s[1])
    else:
        args_s = (Xs[0].asformat(fmt), ys[0])
        args_d = (Xs[0].toarray(), ys[0])
    kw = kw if form in ("list", "long") else {}
    ms = MultiTaskRegressor(alpha=0.01, **TIGHT).fit(*args_s, **kw)
    md = MultiTaskRegressor(alpha=0.01, **TIGHT).fit(*args_d, **kw)
    assert_allclose(ms.coef_, md.coef_, rtol=0, atol=1e-8)
    assert_allclose(ms.intercept_, md.intercept_, rtol=0, atol=1e-8)
    ps = ms.predict(args_s[0], **kw)
    pd_ = md.predict(args_d[0], **kw)
    if isinstance(ps, list):
        for a, b in zip(ps, pd_, strict=True):
            assert_allclose(a, b, atol=1e-8)
    else:
        assert_allclose(ps, pd_, atol=1e-8)


@pytest.mark.parametrize("est", [MultiTaskRegressor, MultiTaskClassifier])
@pytest.mark.parametrize("sparse", [False, True])
def test_deterministic(est, sparse):
    if est is MultiTaskClassifier:
        Xs, ys = make_class_lists()
    else:
        Xs, ys = make_lists()
    if sparse:
        Xs = [sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0)) for X in Xs]
    a = est(alpha=0.01).fit(Xs, ys)
    b = est(alpha=0.01).fit(Xs, ys)
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    assert a.n_iter_ == b.n_iter_


# ============================================================================ bad input
def _nan(a, value=np.nan):
    a = np.array(a, dtype=np.float64)
    a.flat[3] = value
    return a


BAD = [np.nan, np.inf, -np.inf]
BAD_IDS = ["nan", "inf", "-inf"]
X_ERR = r"Input X contains (NaN|infinity)"


@pytest.mark.parametrize("bad", BAD, ids=BAD_IDS)
@pytest.mark.parametrize("form", ["list", "dict", "long", "long_df", "shared", "single",
                                  "sparse"])
def test_nonfinite_x_raises(form, bad):
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, ["a", "b", "c"])
    Xsh, Y = make_shared()
    calls = {
        "list": lambda: MultiTaskRegressor().fit([Xs[0], _nan(Xs[1], bad), Xs[2]], ys),
        "dict": lambda: MultiTaskRegressor().fit({"a": _nan(Xs[0], bad)}, {"a": ys[0]}),
        "long": lambda: MultiTaskRegressor().fit(_nan(X, bad), y, task=ids),
        "long_df": lambda: MultiTaskRegressor().fit(pd.DataFrame(_nan(X, bad)), y, task=ids),
        "shared": lambda: MultiTaskRegressor().fit(_nan(Xsh, bad), Y),
        "single": lambda: MultiTaskRegressor().fit(_nan(Xs[0], bad), ys[0]),
        "sparse": lambda: MultiTaskRegressor().fit(sp.csr_matrix(_nan(Xs[0], bad)), ys[0]),
    }
    with pytest.raises(ValueError, match=X_ERR):
        calls[form]()


@pytest.mark.parametrize("form", ["list", "long", "shared", "single"])
def test_nonfinite_x_at_predict_raises(form):
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, ["a", "b", "c"])
    Xsh, Y = make_shared()
    if form == "list":
        m = MultiTaskRegressor().fit(Xs, ys)
        call = lambda: m.predict([Xs[0], Xs[1], _nan(Xs[2])])  # noqa: E731
    elif form == "long":
        m = MultiTaskRegressor().fit(X, y, task=ids)
        call = lambda: m.predict(_nan(X, np.inf), task=ids)  # noqa: E731
    elif form == "shared":
        m = MultiTaskRegressor().fit(Xsh, Y)
        call = lambda: m.predict(_nan(Xsh))  # noqa: E731
    else:
        m = MultiTaskRegressor().fit(Xs[0], ys[0])
        call = lambda: m.predict(_nan(Xs[0]))  # noqa: E731
    with pytest.raises(ValueError, match=X_ERR):
        call()


@pytest.mark.parametrize("bad", BAD, ids=BAD_IDS)
def test_nonfinite_y_raises(bad):
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, ["a", "b", "c"])
    msg = r"Input y(\[1\])? contains (NaN|infinity)"
    with pytest.raises(ValueError, match=msg):
        MultiTaskRegressor().fit(Xs[0], _nan(ys[0], bad))  # 1-D y
    with pytest.raises(ValueError, match=msg):
        MultiTaskRegressor().fit(Xs, [ys[0], _nan(ys[1], bad), ys[2]])  # list y
    with pytest.raises(ValueError, match=msg):
        MultiTaskRegressor().fit(X, _nan(y, bad), task=ids)  # long form
    with pytest.raises(ValueError, match=msg):
        MultiTaskClassifier().fit(Xs[0], _nan(ys[0] > 0, bad))


def test_inf_in_2d_y_raises_nan_does_not():
    X, Y = make_shared()
    MultiTaskRegressor().fit(X, _nan(Y))  # NaN: a missing label
    for bad in (np.inf, -np.inf):
        with pytest.raises(ValueError, match=r"Input y contains infinity"):
            MultiTaskRegressor().fit(X, _nan(Y, bad))


def test_2d_y_column_all_nan_raises():
    X, Y = make_shared()
    Y = Y.copy()
    Y[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"y: task 1 \(column 1\) has no observed label"):
        MultiTaskRegressor().fit(X, Y)


def test_lists_of_different_lengths_raise():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"X has 3 tasks but y has 2"):
        MultiTaskRegressor().fit(Xs, ys[:2])
    with pytest.raises(ValueError, match=r"y\[1\] has 5 entries but X has 31 rows"):
        MultiTaskRegressor().fit(Xs, [ys[0], ys[1][:5], ys[2]])


def test_task_with_zero_rows_raises():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"X\[1\] has no rows"):
        MultiTaskRegressor().fit([Xs[0], np.empty((0, P)), Xs[2]], [ys[0], np.empty(0), ys[2]])
    with pytest.raises(ValueError, match=r"X\['b'\] has no rows"):
        MultiTaskRegressor().fit({"a": Xs[0], "b": np.empty((0, P))},
                                 {"a": ys[0], "b": np.empty(0)})


def test_classification_task_with_one_class_raises():
    Xs, ys = make_class_lists()
    one = np.full(len(Xs[1]), 7)
    with pytest.raises(ValueError, match=r"y: task 1 has one class"):
        MultiTaskClassifier().fit(Xs, [ys[0], one])
    # the other class only has zero sample weight: still one class
    sw = [np.ones(len(Xs[0])), np.where(ys[1] == 3, 0.0, 1.0)]
    with pytest.raises(ValueError, match=r"y: task 1 has one class"):
        MultiTaskClassifier().fit(Xs, ys, sample_weight=sw)
    # single task, long form
    with pytest.raises(ValueError, match=r"y: task .* has one class"):
        MultiTaskClassifier().fit(Xs[1], one)
    X = np.vstack(Xs)
    y = np.r_[np.zeros(30), np.ones(40)]
    with pytest.raises(ValueError, match=r"y: task 'a' has one class"):
        MultiTaskClassifier().fit(X, y, task=np.repeat(["a", "b"], [30, 40]))


def test_classification_task_with_three_classes_fits_the_multinomial_loss():
    Xs, ys = make_class_lists()
    three = np.arange(len(Xs[1])) % 3
    clf = MultiTaskClassifier().fit(Xs, [ys[0], three])
    assert [len(c) for c in clf.classes_] == [2, 3]
    assert [P.shape[1] for P in clf.predict_proba(Xs)] == [2, 3]


def test_unknown_task_at_predict_raises():
    X, y, ids = _long_problem()
    m = MultiTaskRegressor().fit(X, y, task=ids)
    new = ids.copy()
    new[4] = "zzz"
    with pytest.raises(ValueError, match=r"task: unknown task 'zzz'"):
        m.predict(X, task=new)
    md = MultiTaskRegressor().fit({"a": X[:20]}, {"a": y[:20]})
    with pytest.raises(ValueError, match=r"X: unknown task 'q'"):
        md.predict({"q": X})
    ml = MultiTaskRegressor().fit(X, y, task=ids)
    with pytest.raises(ValueError, match=r"X has 2 tasks but the model was fitted on 3"):
        ml.predict([X, X])


@pytest.mark.parametrize("form", ["list", "dict", "long", "long_df", "shared", "single"])
def test_wrong_number_of_features_at_predict_raises(form):
    Xs, ys = make_lists()
    X, y, ids = _long_from_lists(Xs, ys, ["a", "b", "c"])
    Xsh, Y = make_shared()
    msg = rf"X has {P - 1} features, but MultiTaskRegressor is expecting {P} features"
    if form == "list":
        m = MultiTaskRegressor().fit(Xs, ys)
        call = lambda: m.predict([Xs[0], Xs[1][:, 1:], Xs[2]])  # noqa: E731
    elif form == "dict":
        m = MultiTaskRegressor().fit({"a": Xs[0], "b": Xs[1]}, {"a": ys[0], "b": ys[1]})
        call = lambda: m.predict({"b": Xs[1][:, 1:]})  # noqa: E731
    elif form == "long":
        m = MultiTaskRegressor().fit(X, y, task=ids)
        call = lambda: m.predict(X[:, 1:], task=ids)  # noqa: E731
    elif form == "long_df":
        df = pd.DataFrame(X, columns=[f"f{j}" for j in range(P)]).assign(g=ids)
        m = MultiTaskRegressor().fit(df, y, task="g")
        call = lambda: m.predict(df.drop(columns="f0"), task="g")  # noqa: E731
        msg = r"(X has \d+ features|feature names)"
    elif form == "shared":
        m = MultiTaskRegressor().fit(Xsh, Y)
        call = lambda: m.predict(Xsh[:, 1:])  # noqa: E731
    else:
        m = MultiTaskRegressor().fit(Xs[0], ys[0])
        call = lambda: m.predict(Xs[0][:, 1:])  # noqa: E731
    with pytest.raises(ValueError, match=msg):
        call()


def test_different_number_of_features_between_tasks_at_fit_raises():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=rf"X has {P - 2} features.*expecting {P} features"):
        MultiTaskRegressor().fit([Xs[0], Xs[1][:, 2:], Xs[2]], ys)


def test_negative_alpha_raises():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"'alpha' parameter"):
        MultiTaskRegressor(alpha=-0.1).fit(Xs, ys)
    with pytest.raises(sklearn.utils._param_validation.InvalidParameterError):
        MultiTaskClassifier(alpha=-1.0).fit(*make_class_lists())


@pytest.mark.parametrize("penalty", [rm.L21(l1_ratio=1.5), rm.ElasticNet(-0.1)],
                         ids=["l21", "elasticnet"])
def test_l1_ratio_outside_unit_interval_raises(penalty):
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"l1_ratio must be a number in \[0, 1\]"):
        MultiTaskRegressor(penalty=penalty).fit(Xs, ys)


def test_unknown_penalty_name_raises():
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"'penalty' parameter"):
        MultiTaskRegressor(penalty="lasso").fit(Xs, ys)


def test_task_ids_wrong_length_raise():
    X, y, ids = _long_problem()
    with pytest.raises(ValueError, match=r"task has shape \(\d+,\) but X has \d+ rows"):
        MultiTaskRegressor().fit(X, y, task=ids[:-1])
    m = MultiTaskRegressor().fit(X, y, task=ids)
    with pytest.raises(ValueError, match=r"task has shape"):
        m.predict(X, task=ids[:10])


def test_bad_sample_weight_raises():
    X, y, ids = _long_problem()
    Xs, ys = make_lists()
    n = len(y)
    neg = np.ones(n)
    neg[3] = -1.0
    with pytest.raises(ValueError, match=r"sample_weight has negative entries"):
        MultiTaskRegressor().fit(X, y, task=ids, sample_weight=neg)
    with pytest.raises(ValueError, match=r"sample_weight has negative entries"):
        MultiTaskRegressor().fit(Xs, ys, sample_weight=[np.ones(20), -np.ones(31), np.ones(26)])
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(5,\), expected \(\d+,\)"):
        MultiTaskRegressor().fit(X, y, task=ids, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(5,\), expected \(20,\)"):
        MultiTaskRegressor().fit(Xs[0], ys[0], sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(5,\), expected \(31,\)"):
        MultiTaskRegressor().fit(Xs, ys, sample_weight=[np.ones(20), np.ones(5), np.ones(26)])
    with pytest.raises(ValueError, match=r"sample_weight must be a list with one weight array"):
        MultiTaskRegressor().fit(Xs, ys, sample_weight=[np.ones(20)])
    with pytest.raises(ValueError, match=r"sample_weight: task 1 has zero total weight"):
        MultiTaskRegressor().fit(Xs, ys, sample_weight=[np.ones(20), np.zeros(31), np.ones(26)])


@pytest.mark.parametrize("tw", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 1.0],
                                [1.0, -1.0, 1.0], [1.0, np.nan, 1.0]],
                         ids=["short", "long", "zero", "negative", "nan"])
def test_bad_task_weight_raises(tw):
    Xs, ys = make_lists()
    with pytest.raises(ValueError, match=r"task_weight must hold 3 finite positive weights"):
        MultiTaskRegressor(task_weight=tw).fit(Xs, ys)


def test_non_converged_fit_warns_with_gap_reached():
    Xs, ys = make_lists(sizes=(40, 50, 60), p=30)
    with pytest.warns(ConvergenceWarning) as record:
        m = MultiTaskRegressor(alpha=0.001, max_iter=2, tol=1e-12).fit(Xs, ys)
    msgs = [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(msgs) == 1
    found = re.search(r"relative duality gap of ([0-9.]+(?:e[-+]?\d+)?)", msgs[0])
    assert found, msgs[0]
    reached = float(found.group(1))
    assert reached > 1e-12
    assert m.n_iter_ == 2


def test_converged_fit_does_not_warn():
    Xs, ys = make_lists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MultiTaskRegressor(alpha=0.05).fit(Xs, ys)
