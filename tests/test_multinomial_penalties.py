"""The penalties on the multinomial loss's classes' layout (issue 46): a feature's
coefficients across a task's classes form one group (L1, elastic net), and mean and graph
pull each class towards the same class of the other tasks; against cvxpy/Clarabel."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from _loss_cases import cvxpy_multinomial_loss

import regmtl as rm
from regmtl.classes import class_layout, class_penalty
from regmtl.penalties import GraphLaplacian, MeanRegularized
from regmtl.penalties.class_groups import ClassGroupElastic
from regmtl.penalties.coupling import ClassGraph, ClassMean, class_adjacency
from regmtl.problem import make_data

#: three tasks of 3, 2 and 4 classes; "a" and "b" in every task, "c" in two, "d" in one
LABELS = (np.array(["a", "b", "c"]), np.array(["a", "b"]), np.array(["a", "b", "c", "d"]))
GRAPH = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 2.0], [0.5, 2.0, 0.0]])


def _tasks(seed=0, sizes=(60, 90, 50), p=4, labels=LABELS):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [lab[np.argmax(X[:, :len(lab)] + 0.7 * rng.standard_normal((len(X), len(lab))),
                        axis=1)] for X, lab in zip(Xs, labels, strict=True)]
    return Xs, ys


def _columns(classes):
    """(task, label) of every column of W, in order."""
    return [(t, c) for t, cls in enumerate(classes) for c in cls]


def _reg(name, W, classes, cp):
    """The penalty at alpha = 1 in cvxpy, written from its definition."""
    cols = _columns(classes)
    first = np.cumsum([0] + [len(c) for c in classes])
    groups = [cp.norm(W[j, first[t]:first[t + 1]], 2)
              for t in range(len(classes)) for j in range(W.shape[0])]
    if name == "l1":
        return sum(groups)
    if name == "elasticnet":
        return 0.5 * sum(groups) + 0.25 * cp.sum_squares(W)
    if name.startswith("mean"):
        ridge = 0.5 if name == "mean_ridge" else 0.0
        terms = []
        for label in {c for _, c in cols}:
            idx = [k for k, (_, c) in enumerate(cols) if c == label]
            mean = sum(W[:, k] for k in idx) / len(idx)
            terms += [cp.sum_squares(W[:, k] - mean) for k in idx]
        return 0.5 * (sum(terms) + ridge * cp.sum_squares(W))
    if name == "graph":  # sum over ordered pairs (s, t): A_st ||w_sc - w_tc||^2
        terms = [GRAPH[s, t] * cp.sum_squares(W[:, i] - W[:, k])
                 for i, (s, a) in enumerate(cols) for k, (t, b) in enumerate(cols)
                 if a == b and s != t and GRAPH[s, t] > 0]
        return 0.5 * sum(terms)
    raise AssertionError(name)


def _penalty(name):
    return {"l1": "l1", "elasticnet": rm.ElasticNet(0.5), "mean": MeanRegularized(),
            "mean_ridge": MeanRegularized(0.5), "graph": GraphLaplacian(GRAPH)}[name]


@pytest.mark.parametrize("name", ["l1", "elasticnet", "mean", "mean_ridge", "graph"])
def test_class_penalties_against_cvxpy(name):
    cp = pytest.importorskip("cvxpy")
    Xs, ys = _tasks()
    alpha = 0.02
    clf = rm.MultiTaskClassifier(_penalty(name), alpha=alpha, tol=1e-11).fit(Xs, ys)
    classes = clf.classes_
    assert [len(c) for c in classes] == [3, 2, 4]
    p, n_cols = Xs[0].shape[1], sum(len(c) for c in classes)
    W, b = cp.Variable((p, n_cols)), cp.Variable(n_cols)
    loss = cvxpy_multinomial_loss(cp, Xs, ys, classes, W, b)
    prob = cp.Problem(cp.Minimize(loss + alpha * _reg(name, W, classes, cp)))
    prob.solve(solver=cp.CLARABEL)
    assert abs(clf.objective_ - prob.value) <= 1e-6 * abs(prob.value)
    cert = getattr(clf, "dual_gap_", None)
    if cert is not None:
        assert cert <= 1e-9 * abs(clf.objective_)
    else:  # the singular kernels (mean without ridge, graph) certify by the KKT residual
        assert clf.kkt_residual_ <= 1e-9
    assert hasattr(clf, "dual_gap_") == (name in ("l1", "elasticnet", "mean_ridge"))


@pytest.mark.parametrize("penalty", ["l1", rm.ElasticNet(0.5), rm.L1(positive=True)])
def test_alpha_max_is_the_largest_group_norm_of_the_gradient(penalty):
    Xs, ys = _tasks(seed=1)
    X, y = np.vstack(Xs), np.concatenate(ys)
    task = np.repeat([0, 1, 2], [len(v) for v in ys])
    a_max = rm.alpha_max(X, y, task, penalty=penalty, loss="multinomial")
    # the gradient at W = 0 with the intercepts fitted: the class frequencies' residuals
    norms = []
    for t, lab in enumerate(LABELS):
        Xt, yt = X[task == t], y[task == t]
        R = (yt[:, None] == lab[None, :]) - np.mean(yt[:, None] == lab[None, :], axis=0)
        G = Xt.T @ R / len(yt)
        if isinstance(penalty, rm.L1) and penalty.positive:
            G = np.maximum(G, 0.0)
        norms.append(np.linalg.norm(G, axis=1))
    rho = 0.5 if isinstance(penalty, rm.ElasticNet) else 1.0
    assert a_max == pytest.approx(np.max(norms) / rho, rel=1e-10)
    at = rm.MultiTaskClassifier(penalty, alpha=a_max, tol=1e-10).fit(X, y, task)
    assert np.all(at.coef_ == 0)
    below = rm.MultiTaskClassifier(penalty, alpha=0.99 * a_max, tol=1e-10).fit(X, y, task)
    first = np.cumsum([0, 3, 2])
    blocks = [below.coef_[f:f + len(lab)] for f, lab in zip(first, LABELS, strict=True)]
    nonzero = [np.linalg.norm(B, axis=0) > 0 for B in blocks]  # per (task, feature) group
    assert sum(int(z.sum()) for z in nonzero) >= 1
    for B, z in zip(blocks, nonzero, strict=True):  # a group is zero or nonzero as a whole
        assert np.all(B[:, ~z] == 0) and np.all(np.any(B[:, z] != 0, axis=0))


def test_a_path_of_the_grouped_l1_starts_at_zero_and_certifies():
    Xs, ys = _tasks(seed=2)
    X, y = np.vstack(Xs), np.concatenate(ys)
    task = np.repeat([0, 1, 2], [len(v) for v in ys])
    path = rm.regularization_path(X, y, task, penalty="l1", loss="multinomial", alphas=4)
    assert path.n_active[0] == 0 and path.converged.all()
    assert np.isclose(path.alphas[0], rm.alpha_max(X, y, task, penalty="l1",
                                                   loss="multinomial"))


@pytest.mark.parametrize("name", ["l1", "elasticnet", "mean_ridge", "graph"])
def test_permuting_tasks_permutes_the_fit(name):
    Xs, ys = _tasks(seed=3)
    order = [2, 0, 1]
    pen = _penalty(name)
    if name == "graph":
        permuted = GraphLaplacian(GRAPH[np.ix_(order, order)])
    else:
        permuted = pen
    one = rm.MultiTaskClassifier(pen, alpha=0.02, tol=1e-11).fit(Xs, ys)
    two = rm.MultiTaskClassifier(permuted, alpha=0.02, tol=1e-11).fit(
        [Xs[t] for t in order], [ys[t] for t in order])
    first = np.cumsum([0] + [len(c) for c in one.classes_])
    rows = np.concatenate([np.arange(first[t], first[t + 1]) for t in order])
    np.testing.assert_allclose(two.coef_, one.coef_[rows], atol=1e-6)
    np.testing.assert_allclose(two.intercept_, one.intercept_[rows], atol=1e-6)
    assert two.objective_ == pytest.approx(one.objective_, rel=1e-9)


def test_each_penalty_declares_its_form_on_the_classes():
    Xs, ys = _tasks()
    data = make_data(Xs, ys, loss="multinomial")
    layout = class_layout(data)
    assert layout.sizes.tolist() == [3, 2, 4] and layout.first.tolist() == [0, 3, 5]
    assert [layout.labels[k] for k in layout.label] == [c for lab in LABELS for c in lab]
    assert isinstance(class_penalty(rm.L1(), data), ClassGroupElastic)
    assert isinstance(class_penalty(rm.ElasticNet(0.3), data), ClassGroupElastic)
    for joint in (rm.L21(), rm.L2(), rm.Trace(), rm.ElasticNet(0.0)):
        assert class_penalty(joint, data) is joint
    mean = class_penalty(MeanRegularized(0.1), data)
    assert isinstance(mean, ClassMean) and mean.on_classes(layout) is mean
    graph = class_penalty(GraphLaplacian(sp.csr_matrix(GRAPH)), data)
    assert isinstance(graph, ClassGraph) and graph.on_classes(layout) is graph
    # a problem of tasks keeps its penalty
    plain = make_data(Xs, [np.asarray(y == "a", dtype=int) for y in ys], loss="logistic")
    assert class_layout(plain) is None and class_penalty(rm.L1(), plain) == rm.L1()
    with pytest.raises(ValueError, match="Clustered does not fit the multinomial loss"):
        rm.MultiTaskClassifier(rm.Clustered(), alpha=0.1).fit(Xs, ys)
    for ordered in (rm.TemporalGroupLasso(), rm.FusedGroupLasso(),
                    rm.NonconvexFusedGroupLasso()):
        with pytest.raises(ValueError, match=f"{type(ordered).__name__} does not fit the "
                                             "multinomial loss"):
            rm.MultiTaskClassifier(ordered, alpha=0.1).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        rm.MultiTaskClassifier(GraphLaplacian(np.ones((2, 2))), alpha=0.1).fit(Xs, ys)


def test_the_lifted_graph_joins_only_the_same_class():
    Xs, ys = _tasks()
    layout = class_layout(make_data(Xs, ys, loss="multinomial"))
    L = class_adjacency(sp.csr_matrix(GRAPH), layout)
    assert sp.issparse(L) and L.shape == (9, 9)
    cols = _columns(LABELS)
    dense = np.zeros((9, 9))
    for i, (s, a) in enumerate(cols):
        for k, (t, c) in enumerate(cols):
            if a == c:
                dense[i, k] = GRAPH[s, t]
    np.testing.assert_array_equal(L.toarray(), dense)
    assert L.nnz == np.count_nonzero(dense)


def test_class_mean_kernel_matches_its_operator():
    rng = np.random.default_rng(4)
    layout = class_layout(make_data(*_tasks(), loss="multinomial"))
    pen = ClassMean(0.3, layout.label)
    W = rng.standard_normal((5, 9))
    K = pen.kernel(9)
    np.testing.assert_allclose(pen.apply(W), W @ K, atol=1e-12)
    np.testing.assert_allclose(pen.kernel_diagonal(9), np.diag(K), atol=1e-12)
    assert pen.value(W, 2.0) == pytest.approx(np.sum((W @ K) * W), rel=1e-12)
    step = 0.7
    np.testing.assert_allclose(pen.prox(W, step, 2.0),
                               W @ np.linalg.inv(np.eye(9) + step * 2.0 * K), atol=1e-12)
    G = rng.standard_normal((5, 9))
    assert pen.conjugate(G, 2.0) == pytest.approx(
        np.sum((G @ np.linalg.inv(K)) * G) / 4.0, rel=1e-10)


def test_grouped_prox_and_dual_norm():
    rng = np.random.default_rng(5)
    pen = ClassGroupElastic(0.6, False, [0, 3, 5], [3, 2, 4])
    W = rng.standard_normal((4, 9))
    U = pen.prox(W, 0.5, 1.3)
    thr, shrink = 0.5 * 1.3 * 0.6, 1.0 / (1.0 + 0.5 * 1.3 * 0.4)
    for a, e in ((0, 3), (3, 5), (5, 9)):
        for j in range(4):
            n = np.linalg.norm(W[j, a:e])
            want = W[j, a:e] * max(1.0 - thr / n, 0.0) * shrink
            np.testing.assert_allclose(U[j, a:e], want, atol=1e-14)
    norms = [np.linalg.norm(W[:, a:e], axis=1).max() for a, e in ((0, 3), (3, 5), (5, 9))]
    assert pen.dual_norm(W) == pytest.approx(max(norms))
    assert pen.alpha_max(W) == pytest.approx(max(norms) / 0.6)


OLD = Path(__file__).resolve().parent / "data" / "old_models"


def test_a_multinomial_l1_file_of_the_entrywise_form_still_loads():
    """Written by regmtl at commit e7002b7 (entrywise L1 on the classes), by::

        rng = np.random.default_rng(0)
        X = rng.standard_normal((90, 4))
        task = np.repeat(["a", "b"], 45)
        y = np.where(task == "a", np.argmax(X[:, :3] + 0.5 * rng.standard_normal((90, 3)), 1),
                     np.argmax(X[:, :2] + 0.5 * rng.standard_normal((90, 2)), 1))
        clf = MultiTaskClassifier("l1", alpha=0.02).fit(X, y, task)
        clf.save("multinomial_l1_e7002b7.npz")
        np.save("multinomial_l1_e7002b7_proba.npy", clf.predict_proba(X, task=task))
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4))
    task = np.repeat(["a", "b"], 45)
    clf = rm.load(OLD / "multinomial_l1_e7002b7.npz")
    assert [len(c) for c in clf.classes_] == [3, 2] and clf.coef_.shape == (5, 4)
    want = np.load(OLD / "multinomial_l1_e7002b7_proba.npy")
    np.testing.assert_allclose(clf.predict_proba(X, task=task), want, rtol=1e-12, atol=1e-15)


def test_a_grouped_fit_round_trips(tmp_path):
    Xs, ys = _tasks(seed=6)
    for pen in ("l1", MeanRegularized(0.2), GraphLaplacian(GRAPH)):
        clf = rm.MultiTaskClassifier(pen, alpha=0.02).fit(Xs, ys)
        clf.save(tmp_path / "m.npz")
        back = rm.load(tmp_path / "m.npz")
        for P, Q in zip(back.predict_proba(Xs), clf.predict_proba(Xs), strict=True):
            np.testing.assert_array_equal(P, Q)


def test_the_support_table_shows_the_multinomial_with_its_class_penalties():
    from regmtl.support_table import support_entries

    found = {e.penalty: e for e in support_entries() if e.loss == "multinomial"}
    for name in ("l1", "elasticnet", "l21", "trace"):
        assert found[name].certificate == "duality gap" and not found[name].refusal
    assert found["l21"].tall == "softmax_newton" and found["l1"].tall == "fista"
    assert found["mean"].certificate == "KKT residual" and not found["graph"].refusal
    assert "Clustered does not fit the multinomial loss" in found["clustered"].refusal


@pytest.mark.parametrize("inner", [rm.MCP(), rm.SCAD(), rm.CappedL1(cap=0.4)])
def test_nonconvex_groups_are_the_row_rule_on_each_task_block(inner):
    """On one task's block, the class form is the penalty's row form (group=True)."""
    from regmtl.penalties.class_groups import ClassGroupNonconvex

    rng = np.random.default_rng(7)
    pen = ClassGroupNonconvex(inner, [0, 3, 5], [3, 2, 4])
    rows = type(inner)(inner.shape, group=True)
    W = rng.standard_normal((6, 9)) * rng.uniform(0, 1, (6, 1))
    G = rng.standard_normal((6, 9))
    U, D = pen.prox(W, 0.8, 0.5), pen.subdiff_distance(W, G, 0.5)
    total = 0.0
    for t, (a, e) in enumerate(((0, 3), (3, 5), (5, 9))):
        np.testing.assert_allclose(U[:, a:e], rows.prox(W[:, a:e], 0.8, 0.5), atol=1e-14)
        np.testing.assert_allclose(D[:, t], rows.subdiff_distance(W[:, a:e], G[:, a:e], 0.5),
                                   atol=1e-12)
        total += rows.value(W[:, a:e], 0.5)
    assert pen.value(W, 0.5) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("penalty", [rm.MCP(), rm.SCAD(), rm.CappedL1(cap=0.3)])
def test_nonconvex_entrywise_penalties_select_a_task_s_classes_together(penalty):
    Xs, ys = _tasks(seed=8, p=6)
    X, y = np.vstack(Xs), np.concatenate(ys)
    task = np.repeat([0, 1, 2], [len(v) for v in ys])
    a_max = rm.alpha_max(X, y, task, penalty=penalty, loss="multinomial")
    assert a_max == pytest.approx(rm.alpha_max(X, y, task, penalty="l1", loss="multinomial"))
    assert np.all(rm.MultiTaskClassifier(penalty, alpha=a_max).fit(X, y, task).coef_ == 0)
    clf = rm.MultiTaskClassifier(penalty, alpha=0.3 * a_max, tol=1e-9).fit(X, y, task)
    assert clf.kkt_residual_ <= 1e-8
    zeros = 0
    for a, e in ((0, 3), (3, 5), (5, 9)):
        B = clf.coef_[a:e]
        z = np.linalg.norm(B, axis=0) == 0
        zeros += int(z.sum())
        assert np.all(np.any(B[:, ~z] != 0, axis=0))
    assert 0 < zeros < 18


@pytest.mark.parametrize("name", ["dirty", "sparse_lowrank", "robust_features",
                                  "robust_lowrank"])
def test_composite_penalties_group_a_task_s_classes_against_cvxpy(name):
    """The exceptions of Dirty and the sparse part of SparseLowRank grouped per feature and
    task; an outlier of the robust models is a task with all its classes."""
    cp = pytest.importorskip("cvxpy")
    Xs, ys = _tasks(seed=9)
    alpha = 0.02
    pen = {"dirty": rm.Dirty(0.6), "sparse_lowrank": rm.SparseLowRank(0.5),
           "robust_features": rm.RobustFeatures(0.8),
           "robust_lowrank": rm.RobustLowRank(0.8)}[name]
    clf = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-10).fit(Xs, ys)
    p, blocks = Xs[0].shape[1], ((0, 3), (3, 5), (5, 9))
    W, b, P, Q = (cp.Variable((p, 9)), cp.Variable(9), cp.Variable((p, 9)),
                  cp.Variable((p, 9)))
    outliers = sum(cp.norm(Q[:, a:e], "fro") for a, e in blocks)

    def grouped(Z):  # sum_t sum_j ||Z_{j B_t}||_2
        return sum(cp.sum(cp.norm(Z[:, a:e], 2, axis=1)) for a, e in blocks)

    reg = {"dirty": cp.sum(cp.norm(P, 2, axis=1)) + 0.6 * grouped(Q),
           "sparse_lowrank": cp.normNuc(Q) + 0.5 * grouped(P),
           "robust_features": cp.sum(cp.norm(P, 2, axis=1)) + 0.8 * outliers,
           "robust_lowrank": cp.normNuc(P) + 0.8 * outliers}[name]
    loss = cvxpy_multinomial_loss(cp, Xs, ys, clf.classes_, W, b)
    prob = cp.Problem(cp.Minimize(loss + alpha * reg), [W == P + Q])
    prob.solve(solver=cp.CLARABEL)
    assert abs(clf.objective_ - prob.value) <= 1e-6 * abs(prob.value)
    assert clf.dual_gap_ <= 1e-9 * abs(clf.objective_)
    if name == "dirty":  # the split (P_, Q_) attains the penalty's value
        Pf, Qf = clf.P_.T, clf.Q_.T
        split = np.linalg.norm(Pf, axis=1).sum() + 0.6 * sum(
            np.linalg.norm(Qf[:, a:e], axis=1).sum() for a, e in blocks)
        assert alpha * split == pytest.approx(alpha * reg.value, rel=1e-5)
        np.testing.assert_allclose(Pf + Qf, clf.coef_.T, atol=1e-12)
    if name.startswith("robust"):  # positions of tasks, not of class columns
        assert set(clf.outlier_tasks_.tolist()) <= {0, 1, 2}


def test_mean_penalty_cv_on_digits_in_three_tasks_is_certified_along_its_path():
    """Digits split into three 10-class tasks, the mean penalty cross-validated over 12
    alphas: before, a warm start far out on the path (a class's probability underflowing on
    every row of its task) made the intercepts' Newton system singular (LinAlgError); the
    smooth objective now runs L-BFGS, every point of the final path certified."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-12)
    parts = np.array_split(np.random.default_rng(0).permutation(len(y)), 3)
    Xs, ys = [X[p] for p in parts], [y[p] for p in parts]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        cv = rm.MultiTaskClassifierCV("mean", alphas=12, cv=3).fit(Xs, ys)
    best = cv.best_estimator_
    assert best.kkt_residual_ <= best.tol
    # (FISTA took 900-960 iterations at these alphas; the classes are separable and the mean
    # task is not penalized, so the refit runs toward an infimum it never attains: L-BFGS
    # certifies in 200-230 gradients, the count moved by rounding in the linear maps)
    assert best.n_iter_ < 300
    assert np.all(np.isfinite(best.coef_matrix_))


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_trace_on_digits_certifies_at_the_defaults():
    """Digits in 3 tasks (10 classes each, 64 pixel columns) with the trace norm at alpha 1e-3
    and 1e-4: certified by the duality gap at the default tol within the default iterations
    (proximal gradient's steps follow the local curvature: held at the first bound they ran
    out at 1,000 steps, relative gap 3.9e-4); the gap the model reports is the one of its own
    point, recomputed here from the fitted coefficients' objective."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    task = np.arange(len(y)) % 3
    for alpha in (1e-3, 1e-4):
        clf = rm.MultiTaskClassifier("trace", alpha=alpha).fit(X, y, task=task)
        assert clf.n_iter_ <= 1000
        # the objective at W = 0 with the intercepts fitted (each task's class frequencies)
        P0 = 0.0
        for t in range(3):
            freq = np.bincount(y[task == t], minlength=10) / np.sum(task == t)
            P0 += -np.sum(freq[freq > 0] * np.log(freq[freq > 0]))
        assert clf.dual_gap_ <= 1e-4 * P0
        proba = clf.predict_proba(X, task=task)
        loss = sum(-np.mean(np.log(proba[task == t][np.arange(np.sum(task == t)),
                                                     y[task == t]]))
                   for t in range(3))
        nuc = np.linalg.svd(clf.coef_matrix_, compute_uv=False).sum()
        assert clf.objective_ == pytest.approx(loss + alpha * nuc, rel=1e-8)
