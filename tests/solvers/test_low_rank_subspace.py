"""The trace norm with the logistic loss on wide or sparse tasks over a growing subspace of W's
columns (regmtl.solvers.methods.low_rank_subspace, the table's "subspace" row).

* The row runs for wide tasks (p >= 4 T, fewer rows than features) and sparse bag-of-words
  designs, not for long tasks (Gram form); of the lifted penalties for sparse plus low rank
  only (``spans_subspace_and_entries``: Q over the subspace, P over a working set of
  features), with the logistic loss (the squared loss runs ADMM over the parts).
* Sparse plus low rank on wide logistic tasks (both parts nonzero): the same optimum as cvxpy
  (objective to 1e-6 relative, W to 1e-4) and as proximal gradient over the parts (the row
  switched off; objectives to 1e-8 relative, both certified to 1e-9), its duality gap
  evaluated in NumPy at most tol times P0; a sparse design stays sparse, and on spam a fit
  at alpha_max / 10 is certified in the trace norm's memory bound plus its two parts.
* Its optimum is cvxpy's (objective to 1e-6 relative, coefficients and intercepts to 1e-4) and
  its duality gap, evaluated here in NumPy from the binary entropy (the logistic loss's
  conjugate), is at most tol times P0.
* A sparse design is never densified: the fit's peak allocation (tracemalloc) stays below a
  quarter of the dense design's bytes.
* On spam (15 users, 152,543 features; skipped without the data) a fit at alpha_max / 10 is
  certified with its peak allocation within 3 times the data plus 3 dense p x T matrices (W,
  the gradient and one more: each of 2.3M numbers, 18 MB, more than the 10.6 MB of the sparse
  data itself, so that 3 times the data alone cannot hold them).
"""

from __future__ import annotations

import tracemalloc
import warnings

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import CLARABEL_OPTIONS, DATA_HOME, make_lists
from sklearn.exceptions import ConvergenceWarning

import regmtl as rm
from regmtl.datafits import make_loss
from regmtl.solvers import reference
from regmtl.solvers.policy import choose_row

DATA = DATA_HOME


def _wide_logistic(seed=3, p=40, sizes=(20, 26, 30, 24, 18)):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((p, 2))
    Xs = [rng.standard_normal((n, p)) for n in sizes]
    ys = [np.where(X @ (U @ rng.standard_normal(2)) + 2.0 * rng.standard_normal(len(X)) > 0,
                   1.0, -1.0) for X in Xs]
    return Xs, ys


def _bag_of_words(seed=0, p=20_000, sizes=(60, 80, 70), density=0.004):
    rng = np.random.default_rng(seed)
    Xs = [sp.random(n, p, density=density, format="csr", random_state=rng,
                    data_rvs=lambda k: rng.poisson(2.0, k) + 1.0) for n in sizes]
    w = rng.standard_normal(p) * (rng.random(p) < 0.05)
    ys = [np.where(X @ (w * (1 + 0.3 * t)) + 0.5 * rng.standard_normal(X.shape[0]) > 0, 1.0,
                   -1.0) for t, X in enumerate(Xs)]
    return Xs, ys


def _spam():
    """Spam's users (labels +-1) and the bytes of their sparse designs; skipped without it."""
    from regmtl.datasets import load_spam

    try:
        bunch = load_spam(data_home=DATA) if DATA.is_dir() else None
    except (OSError, ValueError, TypeError):
        bunch = None
    if bunch is None:
        pytest.skip(f"spam data absent from {DATA} (set REGMTL_DATA)")
    Xs, ys = bunch["X"], [np.where(y > 0, 1.0, -1.0) for y in bunch["y"]]
    return Xs, ys, sum(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes for x in Xs)


def _fit_with_peak(penalty, alpha, Xs, ys):
    """A classifier fitted at tol 1e-6, and the peak of what the fit allocated
    (tracemalloc)."""
    tracemalloc.start()
    try:
        m = rm.MultiTaskClassifier(penalty, alpha=alpha, tol=1e-6, max_iter=5000).fit(Xs, ys)
        return m, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _entropy(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nan_to_num(a * np.log(a)) - np.nan_to_num((1 - a) * np.log(1 - a))


def numpy_gap(Xs, ys, W, b, alpha):
    """P - D of the trace-norm logistic problem (mean loss per task), written here: the dual
    point theta_t = y_t sigmoid(-y_t f_t) / n_t scaled into the spectral-norm ball, its value
    the mean binary entropy of y_t theta_t n_t (intercepts fitted: theta sums to 0 per task)."""
    primal = alpha * np.linalg.svd(W, compute_uv=False).sum()
    thetas = []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        primal += np.mean(np.logaddexp(0.0, -y * f))
        thetas.append(y / (1.0 + np.exp(y * f)) / len(y))
    G = np.column_stack([X.T @ th for X, th in zip(Xs, thetas, strict=True)])
    scale = min(1.0, alpha / np.linalg.norm(G, 2))
    dual = sum(np.mean(_entropy(scale * th * len(th) * y))
               for th, y in zip(thetas, ys, strict=True))
    return primal - dual


def _cvxpy_logistic_trace(Xs, ys, alpha):
    p, T = Xs[0].shape[1], len(Xs)
    W, b = cp.Variable((p, T)), cp.Variable(T)
    loss = sum(cp.sum(cp.logistic(cp.multiply(-y, X @ W[:, t] + b[t]))) / len(y)
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    prob = cp.Problem(cp.Minimize(loss + alpha * cp.normNuc(W)))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    return W.value, b.value, prob.value


def test_the_row_runs_wide_and_sparse_tasks_only():
    Xs, ys = _wide_logistic()
    logistic = rm.Logistic()
    wide = rm.as_task_data(Xs, ys).encode_binary()
    assert choose_row(wide, logistic, rm.Trace(), 0.01) == "subspace"
    assert choose_row(wide, rm.Quadratic(), rm.Trace(), 0.01) != "subspace"
    assert choose_row(wide, logistic, rm.SparseLowRank(), 0.01) == "subspace"
    assert choose_row(wide, rm.Quadratic(), rm.SparseLowRank(), 0.01) == "parts_admm"
    assert choose_row(wide, logistic, rm.RobustLowRank(), 0.01) != "subspace"
    Xb, yb = _bag_of_words()
    for pen in (rm.Trace(), rm.SparseLowRank()):
        assert choose_row(rm.as_task_data(Xb, yb).encode_binary(), logistic, pen,
                          0.01) == "subspace"
    Xl, yl = make_lists(n_per_task=(40, 60, 90), p=6, loss="logistic")
    for pen in (rm.Trace(), rm.SparseLowRank()):
        assert choose_row(rm.as_task_data(Xl, yl).encode_binary(), logistic, pen,
                          0.01) != "subspace"


def test_only_sparse_plus_low_rank_declares_a_working_set_of_entries():
    """The declaration the row reads: the sparse plus low-rank penalty of entries, not its
    form on the classes' layout (a group per feature and task) nor the other penalties."""
    from regmtl.penalties import PENALTY_CLASSES
    from regmtl.penalties.composite import ClassSparseLowRank

    declared = {cls for cls in PENALTY_CLASSES.values() if cls.spans_subspace_and_entries}
    assert declared == {rm.SparseLowRank}
    assert not ClassSparseLowRank.spans_subspace_and_entries


@pytest.mark.parametrize("ratio", [0.2, 0.02])
def test_wide_logistic_trace_matches_cvxpy(ratio):
    Xs, ys = _wide_logistic()
    alpha = ratio * rm.alpha_max(Xs, ys, penalty="trace", loss="logistic")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = rm.MultiTaskClassifier("trace", alpha=alpha, tol=1e-10, max_iter=5000).fit(Xs, ys)
    W, b = m.coef_.T, m.intercept_
    W_cp, b_cp, obj_cp = _cvxpy_logistic_trace(Xs, ys, alpha)
    assert m.objective_ == pytest.approx(obj_cp, rel=1e-6)
    np.testing.assert_allclose(W, W_cp, atol=1e-4)
    np.testing.assert_allclose(b, b_cp, atol=1e-4)
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert numpy_gap(Xs, ys, W, b, alpha) <= 1e-9 * P0  # (NumPy's own rounding on top)
    assert m.dual_gap_ <= 1e-10 * P0


def test_sparse_design_is_never_densified():
    Xs, ys = _bag_of_words()
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty="trace", loss="logistic")
    dense_bytes = 8 * sum(X.shape[0] for X in Xs) * Xs[0].shape[1]
    rm.MultiTaskClassifier("trace", alpha=alpha, tol=1e-6).fit(Xs, ys)  # (compiled first)
    m, peak = _fit_with_peak("trace", alpha, Xs, ys)
    assert peak < dense_bytes / 4, (peak, dense_bytes)
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert m.dual_gap_ <= 1e-6 * P0
    assert numpy_gap(Xs, ys, m.coef_.T, m.intercept_, alpha) <= 1.1e-6 * P0


def test_spam_trace_fit_is_certified_in_bounded_memory():
    Xs, ys, data_bytes = _spam()
    alpha = rm.alpha_max(Xs, ys, penalty="trace", loss="logistic") / 10
    m, peak = _fit_with_peak("trace", alpha, Xs, ys)
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert m.dual_gap_ <= 1e-6 * P0
    iterate = 8 * Xs[0].shape[1] * len(Xs)
    assert peak <= 3 * data_bytes + 3 * iterate, (peak, data_bytes, iterate)


@pytest.mark.parametrize("loss", ["poisson", "huber"])
def test_other_smooth_losses_agree_with_the_wide_row(loss, monkeypatch):
    """Poisson and Huber, trace norm, wide tasks: the subspace row's optimum is the one the
    wide row (proximal gradient handing over to row-space Newton) reaches, both certified to
    1e-9 (objectives to 1e-8 relative, coefficients to 1e-4)."""

    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 60)) for n in (20, 25, 30, 18, 22)]
    W0 = rng.standard_normal((60, 2)) @ rng.standard_normal((2, 5)) / 4
    f = [X @ W0[:, t] for t, X in enumerate(Xs)]
    ys = ([rng.poisson(np.exp(np.clip(v, -3, 3))).astype(float) for v in f]
          if loss == "poisson" else [v + rng.standard_normal(len(v)) for v in f])
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty="trace", loss=loss)
    data = rm.as_task_data(Xs, ys)
    assert choose_row(data, make_loss(loss), rm.Trace(), alpha) == "subspace"
    fits = _with_and_without_row(monkeypatch, lambda row_on: rm.MultiTaskRegressor(
        "trace", loss=loss, alpha=alpha, tol=1e-9, max_iter=20_000).fit(Xs, ys))
    assert fits[0].objective_ == pytest.approx(fits[1].objective_, rel=1e-8)
    np.testing.assert_allclose(fits[0].coef_, fits[1].coef_, atol=1e-4)


def _with_and_without_row(monkeypatch, fit):
    """``fit(row_on)`` run with the subspace row, then with the table's next choice (the row
    switched off); the two fits, in that order, each without a ConvergenceWarning."""
    import regmtl.solvers.requirements as requirements

    fits = []
    for row_on in (True, False):
        if not row_on:
            monkeypatch.setattr(requirements, "subspace_applies", lambda data: False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            fits.append(fit(row_on))
    return fits


G_SLR = 0.4  # sparse_weight: both parts nonzero at the alphas tested


def numpy_slr_gap(Xs, ys, P, Q, b, alpha, g):
    """P - D of the sparse plus low-rank logistic problem (mean loss per task), written here:
    as :func:`numpy_gap`, the dual point scaled into both balls ``||G||_2 <= alpha`` and
    ``max|G_jt| <= alpha g``."""
    primal = alpha * (np.linalg.svd(Q, compute_uv=False).sum() + g * np.abs(P).sum())
    W, thetas = P + Q, []
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        f = X @ W[:, t] + b[t]
        primal += np.mean(np.logaddexp(0.0, -y * f))
        thetas.append(y / (1.0 + np.exp(y * f)) / len(y))
    G = np.column_stack([X.T @ th for X, th in zip(Xs, thetas, strict=True)])
    scale = min(1.0, alpha / max(np.linalg.norm(G, 2), np.abs(G).max() / g))
    dual = sum(np.mean(_entropy(scale * th * len(th) * y))
               for th, y in zip(thetas, ys, strict=True))
    return primal - dual


def _cvxpy_logistic_slr(Xs, ys, alpha, g):
    p, T = Xs[0].shape[1], len(Xs)
    P, Q, b = cp.Variable((p, T)), cp.Variable((p, T)), cp.Variable(T)
    loss = sum(cp.sum(cp.logistic(cp.multiply(-y, X @ (P[:, t] + Q[:, t]) + b[t]))) / len(y)
               for t, (X, y) in enumerate(zip(Xs, ys, strict=True)))
    prob = cp.Problem(cp.Minimize(loss + alpha * (cp.normNuc(Q) + g * cp.sum(cp.abs(P)))))
    prob.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
    return (P.value + Q.value), b.value, prob.value


def _slr_data():
    Xs, ys = _wide_logistic(seed=5)
    rng = np.random.default_rng(7)
    for t in (0, 3):  # a few entries beside the low-rank signal
        f = 3.0 * Xs[t][:, 7 + t] + 0.5 * rng.standard_normal(len(ys[t]))
        ys[t] = np.where(f > 0, 1.0, -1.0)
    return Xs, ys


@pytest.mark.parametrize("ratio", [0.3, 0.05])
def test_wide_logistic_sparse_lowrank_matches_cvxpy_and_proximal_gradient(ratio,
                                                                         monkeypatch):

    Xs, ys = _slr_data()
    pen = rm.SparseLowRank(G_SLR)
    alpha = ratio * rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")
    data = rm.as_task_data(Xs, ys).encode_binary()
    assert choose_row(data, rm.Logistic(), pen, alpha, tol=1e-9) == "subspace"
    fits = _with_and_without_row(monkeypatch, lambda row_on: rm.MultiTaskClassifier(
        pen, alpha=alpha, tol=1e-9, max_iter=20_000).fit(Xs, ys))
    m = fits[0]
    P, Q = m.P_.T, m.Q_.T
    assert np.count_nonzero(P) > 0 and np.linalg.svd(Q, compute_uv=False)[0] > 1e-3
    np.testing.assert_allclose(m.coef_, P.T + Q.T, atol=1e-12)
    W_cp, b_cp, obj_cp = _cvxpy_logistic_slr(Xs, ys, alpha, G_SLR)
    assert m.objective_ == pytest.approx(obj_cp, rel=1e-6)
    np.testing.assert_allclose(m.coef_.T, W_cp, atol=1e-4)
    np.testing.assert_allclose(m.intercept_, b_cp, atol=1e-4)
    assert m.objective_ == pytest.approx(fits[1].objective_, rel=1e-8)
    P0 = reference(data, rm.Logistic(), True).P0
    assert m.dual_gap_ <= 1e-9 * P0
    assert numpy_slr_gap(Xs, ys, P, Q, m.intercept_, alpha, G_SLR) <= 1e-8 * P0


def test_sparse_lowrank_on_a_sparse_design_is_never_densified():
    Xs, ys = _bag_of_words()
    g = 0.05  # (both parts nonzero on these data)
    pen = rm.SparseLowRank(g)
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")
    dense_bytes = 8 * sum(X.shape[0] for X in Xs) * Xs[0].shape[1]
    rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-6).fit(Xs, ys)  # (compiled first)
    m, peak = _fit_with_peak(pen, alpha, Xs, ys)
    assert peak < dense_bytes / 4, (peak, dense_bytes)
    assert np.count_nonzero(m.P_) > 0
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert m.dual_gap_ <= 1e-6 * P0
    assert numpy_slr_gap(Xs, ys, m.P_.T, m.Q_.T, m.intercept_, alpha, g) <= 1.1e-6 * P0


def test_spam_sparse_lowrank_fit_is_certified_in_bounded_memory():
    """As the trace norm's spam fit, at the bench's sparse_weight 0.15: the bound is the trace
    norm's (3 times the data plus 3 dense p x T matrices) plus the 3 p x T matrices the
    model holds beside them (the parts P and Q, as the solve's lifted variable and as the
    fitted ``P_`` and ``Q_``); the solve itself forms none between its passes but the
    gradient."""
    Xs, ys, data_bytes = _spam()
    pen = rm.SparseLowRank(0.15)
    alpha = rm.alpha_max(Xs, ys, penalty=pen, loss="logistic") / 10
    m, peak = _fit_with_peak(pen, alpha, Xs, ys)
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert m.dual_gap_ <= 1e-6 * P0
    assert np.count_nonzero(m.P_) > 0 and np.any(m.Q_)
    iterate = 8 * Xs[0].shape[1] * len(Xs)
    assert peak <= 3 * data_bytes + 6 * iterate, (peak, data_bytes, iterate)


def test_a_sparse_part_past_the_gram_form_hands_over_to_the_parts(monkeypatch, capsys):
    """A small sparse_weight: P's support outgrows the restricted problems' Gram form (more
    features than the tasks' mean rows), and the row goes on over the parts from its point:
    the same certified optimum as proximal gradient over the parts alone."""

    Xs, ys = _slr_data()
    pen = rm.SparseLowRank(0.02)
    alpha = 0.05 * rm.alpha_max(Xs, ys, penalty=pen, loss="logistic")

    def fit(row_on):
        m = rm.MultiTaskClassifier(pen, alpha=alpha, tol=1e-8, max_iter=50_000,
                                   verbose=int(row_on)).fit(Xs, ys)
        if row_on:
            log = capsys.readouterr().out
            assert "[subspace]" in log and "[fista]" in log  # (handed over)
        return m

    fits = _with_and_without_row(monkeypatch, fit)
    rows = sum(len(y) for y in ys) // len(ys)
    assert np.count_nonzero(np.any(fits[0].P_ != 0, axis=0)) > rows // 2
    assert fits[0].objective_ == pytest.approx(fits[1].objective_, rel=1e-7)
    P0 = reference(rm.as_task_data(Xs, ys).encode_binary(), rm.Logistic(), True).P0
    assert fits[0].dual_gap_ <= 1e-8 * P0
