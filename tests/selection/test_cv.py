"""MultiTaskRegressorCV / MultiTaskClassifierCV: folds, scores, AIC/BIC, parallel backends.

Every choice and every score is checked against an independent computation: scikit-learn's
``MultiTaskLassoCV`` / ``MultiTaskElasticNetCV`` on a shared design, cold fits of the base
estimators on the training rows of explicit folds scored with ``sklearn.metrics``, and
degrees of freedom from hat matrices built with numpy from the normal equations.
"""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import make_lists, make_shared, to_long
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskElasticNetCV, MultiTaskLassoCV
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

import regmtl as rm
from regmtl.datasets import make_multitask_regression
from regmtl.problem import make_data, make_datafit
from regmtl.selection import alpha_scale, task_folds
from regmtl.selection.folds import flat_groups

TIGHT = dict(tol=1e-10, max_iter=100_000)


def _tests(*args, **kwargs):
    """The validation parts of task_folds."""
    return [te for _, te in task_folds(*args, **kwargs)]


# ---------------------------------------------------------------------------- helpers
def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)]).astype(int)


def _random_folds(sizes, K, seed):
    """Explicit (train, test) pairs of input rows of the lists form (the tasks' rows
    concatenated): each task's rows spread over the K folds at random."""
    rng = np.random.default_rng(seed)
    off = _offsets(sizes)
    assign = [rng.permutation(np.arange(n) % K) for n in sizes]
    out = []
    for k in range(K):
        test = np.concatenate([off[t] + np.flatnonzero(a == k) for t, a in enumerate(assign)])
        out.append((np.setdiff1d(np.arange(off[-1]), test), test))
    return out


def _split_lists(Xs, ys, test):
    """(train Xs, train ys, validation Xs, validation ys) for concatenated test rows."""
    off = _offsets([len(y) for y in ys])
    parts = ([], [], [], [])
    for t, (X, y) in enumerate(zip(Xs, ys, strict=True)):
        val = np.zeros(len(y), dtype=bool)
        val[test[(test >= off[t]) & (test < off[t + 1])] - off[t]] = True
        for lst, v in zip(parts, (X[~val], y[~val], X[val], y[val]), strict=True):
            lst.append(v)
    return parts


def _hand_task_scores(Est, penalty, Xs, ys, tests, alphas, score):
    """(K, n_alphas, T): per-task validation scores of cold fits on each fold's training rows;
    ``score(estimator, X_val_list, y_val_list) -> (T,)``."""
    out = np.empty((len(tests), len(alphas), len(Xs)))
    for k, test in enumerate(tests):
        Xtr, ytr, Xva, yva = _split_lists(Xs, ys, test)
        for i, a in enumerate(alphas):
            m = Est(penalty=penalty, alpha=a, **TIGHT).fit(Xtr, ytr)
            out[k, i] = score(m, Xva, yva)
    return out


def _mse(m, Xva, yva):
    return np.array([np.mean((y - f) ** 2)
                     for y, f in zip(yva, m.predict(Xva), strict=True)])


def _split_scores(res, K):
    return np.column_stack([res[f"split{k}_test_score"].to_numpy() for k in range(K)])


# ---------------------------------------------------------------------------- 1. sklearn
@pytest.mark.parametrize("explicit", [False, True])
def test_lasso_cv_matches_sklearn_multitask_lasso_cv(explicit):
    """Shared X, L21, the same folds and grid: the choice and the whole MSE curve of
    MultiTaskLassoCV (whose mse_path_ averages the tasks' MSE, as our task average does)."""
    X, Y = make_shared(n=60, p=10, T=3, seed=0)
    cv = list(KFold(5, shuffle=True, random_state=3).split(X)) if explicit else KFold(5)
    est = rm.MultiTaskRegressorCV("l21", alphas=12, eps=1e-2, cv=cv, **TIGHT).fit(X, Y)
    sk = MultiTaskLassoCV(alphas=est.alphas_, cv=cv, tol=1e-12, max_iter=1_000_000).fit(X, Y)
    np.testing.assert_allclose(sk.alphas_, est.alphas_, rtol=0)
    res = est.cv_results_
    np.testing.assert_allclose(-res["mean_test_score"], sk.mse_path_.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(-_split_scores(res, 5), sk.mse_path_, rtol=1e-6)
    assert est.alpha_ == sk.alpha_
    assert 0 < est.best_index_ < 11  # an interior choice: the curve decides, not the grid ends
    np.testing.assert_allclose(est.coef_, sk.coef_, rtol=1e-6, atol=1e-8)


def test_elastic_net_grid_matches_sklearn_multitask_elastic_net_cv():
    """penalty_grid l1_ratio on L21 = MultiTaskElasticNetCV with the same explicit alphas."""
    X, Y = make_shared(n=60, p=10, T=3, seed=5)
    amax = rm.alpha_max(X, Y, penalty="l21")
    alphas = 2.0 * amax * np.logspace(0, -2.5, 10)  # covers alpha_max / 0.5 of l1_ratio 0.5
    ratios = [0.5, 0.9]
    est = rm.MultiTaskRegressorCV("l21", alphas=alphas, penalty_grid={"l1_ratio": ratios},
                                  cv=KFold(5), **TIGHT).fit(X, Y)
    sk = MultiTaskElasticNetCV(l1_ratio=ratios, alphas=alphas, cv=KFold(5), tol=1e-12,
                               max_iter=1_000_000).fit(X, Y)
    res = est.cv_results_
    assert list(res["param_l1_ratio"]) == [0.5] * 10 + [0.9] * 10
    for row in res["param_alpha"].to_numpy().reshape(2, 10):
        np.testing.assert_allclose(row, np.ravel(sk.alphas_)[-10:], rtol=1e-15)
    np.testing.assert_allclose(-res["mean_test_score"].to_numpy().reshape(2, 10),
                               sk.mse_path_.mean(axis=2), rtol=1e-6)
    assert (est.alpha_, est.best_params_["l1_ratio"]) == (sk.alpha_, sk.l1_ratio_)
    assert est.penalty_.l1_ratio == sk.l1_ratio_
    np.testing.assert_allclose(est.alphas_, alphas, rtol=0)


# ---------------------------------------------------------------------------- 2. by hand
SIZES = (15, 24, 33)


def _small_lists(seed=1):
    return make_lists(n_per_task=SIZES, p=8, seed=seed)


def test_lists_cv_scores_equal_hand_computation():
    """split{k} and mean scores = minus the task-averaged MSE of cold fits on the training rows
    of each explicit fold; mean_task_scores = each task's fold average."""
    Xs, ys = _small_lists()
    folds = _random_folds(SIZES, 3, seed=0)
    est = rm.MultiTaskRegressorCV("l21", alphas=5, eps=1e-2, cv=folds, **TIGHT).fit(Xs, ys)
    hand = _hand_task_scores(rm.MultiTaskRegressor, "l21", Xs, ys, [te for _, te in folds],
                             est.alphas_, _mse)
    res = est.cv_results_
    np.testing.assert_allclose(_split_scores(res, 3), -hand.mean(axis=2).T, rtol=1e-6)
    np.testing.assert_allclose(res["mean_test_score"], -hand.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(np.stack(res["mean_task_scores"]), -hand.mean(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(np.stack(res["std_task_scores"]), hand.std(axis=0),
                               rtol=1e-5)
    assert est.n_splits_ == 3
    assert est.alpha_ == est.alphas_[np.argmax(-hand.mean(axis=(0, 2)))]


def test_long_form_equals_lists_form_with_equivalent_folds():
    """Shuffled long form + the same folds expressed in its row order = the lists form."""
    Xs, ys = _small_lists()
    folds = _random_folds(SIZES, 3, seed=0)
    X, y, task, _ = to_long(Xs, ys)
    perm = np.random.default_rng(123).permutation(len(y))  # to_long: long row r = perm[r]
    np.testing.assert_array_equal(X, np.vstack(Xs)[perm])
    long_folds = [(np.flatnonzero(~np.isin(perm, te)), np.flatnonzero(np.isin(perm, te)))
                  for _, te in folds]
    kw = dict(alphas=5, eps=1e-2, **TIGHT)
    a = rm.MultiTaskRegressorCV("l21", cv=folds, **kw).fit(Xs, ys).cv_results_
    est = rm.MultiTaskRegressorCV("l21", cv=long_folds, **kw).fit(X, y, task=task)
    b = est.cv_results_
    np.testing.assert_allclose(b["param_alpha"], a["param_alpha"], rtol=1e-12)
    np.testing.assert_allclose(_split_scores(b, 3), _split_scores(a, 3), rtol=1e-6)
    np.testing.assert_allclose(np.stack(b["mean_task_scores"]), np.stack(a["mean_task_scores"]),
                               rtol=1e-6)
    # the refit predicts in the long form's row order
    pred = est.predict(X, task=task)
    np.testing.assert_array_equal(pred, est.best_estimator_.predict(X, task=task))
    assert est.score(X, y, task=task) == est.best_estimator_.score(X, y, task=task)
    assert 0.5 < est.score(X, y, task=task) < 1


# ---------------------------------------------------------------------------- 3. classifier
CLF_SIZES = (30, 45, 60)


def _clf_lists():
    Xs, ys = make_lists(n_per_task=CLF_SIZES, p=6, loss="logistic", seed=2)
    return Xs, ys


def test_stratified_folds_keep_each_task_class_ratio():
    Xs, ys = _clf_lists()
    data = make_data(Xs, ys, loss="logistic")
    K = 4
    folds = _tests(data, K, stratify=True, random_state=0)
    off = _offsets(CLF_SIZES)
    y_all = np.concatenate(ys)
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(off[-1]))  # a partition
    ratios = []
    for t in range(3):
        pos = int(ys[t].sum())
        ratios.append(pos / CLF_SIZES[t])
        for te in folds:
            mine = te[(te >= off[t]) & (te < off[t + 1])]
            n_pos = int(y_all[mine].sum())
            # each class as evenly spread over the folds as possible
            n_neg = len(mine) - n_pos
            assert abs(n_pos - pos / K) < 1 and abs(n_neg - (CLF_SIZES[t] - pos) / K) < 1
    assert max(ratios) - min(ratios) > 0.05  # the tasks' ratios differ: per-task strata matter


def _clf_hand_scores(Xs, ys, tests, alphas):
    """Per (fold, alpha, task): log loss, ROC AUC and accuracy of cold fits, from sklearn."""
    def score(m, Xva, yva):
        proba = m.predict_proba(Xva)
        pred = m.predict(Xva)
        return np.array([[log_loss(y, p[:, 1], labels=[0, 1]), roc_auc_score(y, p[:, 1]),
                          accuracy_score(y, q)]
                         for y, p, q in zip(yva, proba, pred, strict=True)]).T

    out = np.empty((len(tests), len(alphas), 3, len(Xs)))
    for k, test in enumerate(tests):
        Xtr, ytr, Xva, yva = _split_lists(Xs, ys, test)
        for i, a in enumerate(alphas):
            m = rm.MultiTaskClassifier(penalty="l21", alpha=a, **TIGHT).fit(Xtr, ytr)
            out[k, i] = score(m, Xva, yva)
    return out


def test_classifier_cv_scores_equal_hand_computation():
    """Default score = minus the task-averaged log loss; roc_auc and accuracy likewise; the
    estimator's folds are _tests(stratify=True) with its random_state."""
    Xs, ys = _clf_lists()
    tests = _tests(make_data(Xs, ys, loss="logistic"), 3, stratify=True, random_state=7)
    kw = dict(alphas=5, eps=0.05, cv=3, random_state=7, **TIGHT)
    est = rm.MultiTaskClassifierCV("l21", **kw).fit(Xs, ys)
    hand = _clf_hand_scores(Xs, ys, tests, est.alphas_)  # (K, n_alphas, metric, T)
    expect = {None: -hand[:, :, 0], "roc_auc": hand[:, :, 1], "accuracy": hand[:, :, 2]}
    for scoring, h in expect.items():
        e = est if scoring is None else rm.MultiTaskClassifierCV("l21", scoring=scoring,
                                                                 **kw).fit(Xs, ys)
        res = e.cv_results_
        np.testing.assert_allclose(_split_scores(res, 3), h.mean(axis=2).T, rtol=1e-6,
                                   err_msg=str(scoring))
        np.testing.assert_allclose(res["mean_test_score"], h.mean(axis=(0, 2)), rtol=1e-6,
                                   err_msg=str(scoring))
        np.testing.assert_allclose(e.best_score_, h.mean(axis=(0, 2)).max(), rtol=1e-6)
    # predictions go through best_estimator_, which is the cold fit at alpha_
    assert est.alpha_ in est.alphas_
    cold = rm.MultiTaskClassifier(penalty="l21", alpha=est.alpha_, **TIGHT).fit(Xs, ys)
    for a, b, c in zip(est.predict_proba(Xs), est.best_estimator_.predict_proba(Xs),
                       cold.predict_proba(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-9)
    for a, b in zip(est.predict(Xs), est.best_estimator_.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(est.decision_function(Xs), cold.decision_function(Xs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    assert est.score(Xs, ys) == est.best_estimator_.score(Xs, ys)
    assert [list(c) for c in est.classes_] == [[0, 1]] * 3


# ---------------------------------------------------------------------------- 4. AIC / BIC
def _neg2_gaussian(ys, preds):
    return sum(len(y) * (np.log(2 * np.pi * np.sum((y - f) ** 2) / len(y)) + 1)
               for y, f in zip(ys, preds, strict=True))


def _omega(sizes, task_weight):
    n = np.asarray(sizes, dtype=float)
    return np.ones_like(n) if task_weight == "equal" else len(n) * n / n.sum()


def _ridge_by_hand(Xs, ys, alpha, omega):
    """Closed-form per-task ridge with an intercept, and its hat-matrix trace."""
    preds, df = [], 0.0
    for X, y, w in zip(Xs, ys, omega, strict=True):
        n, p = X.shape
        xm, ym = X.mean(axis=0), y.mean()
        Xc = X - xm
        M = Xc.T @ Xc + (n * alpha / w) * np.eye(p)
        coef = np.linalg.solve(M, Xc.T @ (y - ym))
        preds.append(X @ coef + ym - xm @ coef)
        df += np.trace(Xc @ np.linalg.solve(M, Xc.T)) + 1.0  # + the intercept's 1/n 11^T
    return preds, df


def _group_lasso_df_by_hand(Xs, W, alpha, omega):
    """The group lasso's divergence: the trace of the hat matrix Z A^-1 B of the penalized
    normal equations linearized at W over its nonzero rows (every task) and the intercepts,
    A = blockdiag(omega_t / n_t Z_t^T Z_t) + alpha (I - u_j u_j^T) / ||W_j|| per row j."""
    T, p = len(Xs), Xs[0].shape[1]
    q = p + 1
    A = np.zeros((T * q, T * q))
    for t, X in enumerate(Xs):
        Z = np.column_stack([X, np.ones(len(X))])
        A[t * q:(t + 1) * q, t * q:(t + 1) * q] = omega[t] / len(X) * Z.T @ Z
    D = A.copy()
    rows = np.flatnonzero(np.any(W != 0, axis=1))
    for j in rows:
        idx = np.arange(T) * q + j
        nrm = np.linalg.norm(W[j])
        A[np.ix_(idx, idx)] += alpha * (np.eye(T) - np.outer(W[j], W[j]) / nrm**2) / nrm
    keep = np.zeros((T, q), dtype=bool)
    keep[:, rows] = keep[:, p] = True
    keep = keep.ravel()
    return float(np.trace(np.linalg.solve(A[np.ix_(keep, keep)], D[np.ix_(keep, keep)])))


def _mean_by_hand(Xs, ys, alpha, omega):
    """sum_t omega_t/(2 n_t) ||y_t - Z_t theta_t||^2 + alpha/2 sum_t ||w_t - wbar||^2 solved
    from its normal equations A theta = B y; df = trace of the N x N hat matrix Z A^-1 B."""
    T, p = len(Xs), Xs[0].shape[1]
    q = p + 1
    Zs = [np.column_stack([X, np.ones(len(X))]) for X in Xs]
    N = sum(len(Z) for Z in Zs)
    Zbd = np.zeros((N, T * q))
    B = np.zeros((T * q, N))
    A = np.zeros((T * q, T * q))
    r = 0
    for t, Z in enumerate(Zs):
        n = len(Z)
        Zbd[r:r + n, t * q:(t + 1) * q] = Z
        B[t * q:(t + 1) * q, r:r + n] = omega[t] / n * Z.T
        A[t * q:(t + 1) * q, t * q:(t + 1) * q] = omega[t] / n * Z.T @ Z
        r += n
    P = np.diag(np.r_[np.ones(p), 0.0])  # the intercepts are not penalized
    A += alpha * np.kron(np.eye(T) - np.full((T, T), 1.0 / T), P)
    H = Zbd @ np.linalg.solve(A, B)
    f = H @ np.concatenate(ys)
    return np.split(f, np.cumsum([len(Z) for Z in Zs])[:-1]), float(np.trace(H))


@pytest.mark.parametrize("penalty,task_weight", [("l21", "equal"), ("l1", "equal"),
                                                 ("l2", "equal"), ("l2", "samples"),
                                                 ("mean", "equal"), ("mean", "samples")])
@pytest.mark.parametrize("criterion", ["aic", "bic"])
def test_information_criteria_equal_direct_computation(penalty, task_weight, criterion):
    Xs, ys = _small_lists(seed=4)
    N, T = sum(SIZES), 3
    omega = _omega(SIZES, task_weight)
    # -2 log L moves to first order with W, the duality gap to second order: the smooth
    # penalties (compared with closed forms) are solved to 1e-13 for a 1e-7 agreement
    tol = 1e-10 if penalty in ("l21", "l1") else 1e-13
    est = rm.MultiTaskRegressorCV(penalty, alphas=7, criterion=criterion, tol=tol,
                                  max_iter=100_000, task_weight=task_weight).fit(Xs, ys)
    res = est.cv_results_
    df_hand, neg2_hand = [], []
    for a in est.alphas_:
        if penalty == "l1":
            m = rm.MultiTaskRegressor(penalty=penalty, alpha=a, task_weight=task_weight,
                                      **TIGHT).fit(Xs, ys)
            preds, df = m.predict(Xs), np.count_nonzero(m.coef_) + T
        elif penalty == "l21":
            m = rm.MultiTaskRegressor(penalty=penalty, alpha=a, task_weight=task_weight,
                                      **TIGHT).fit(Xs, ys)
            preds, df = m.predict(Xs), _group_lasso_df_by_hand(Xs, m.coef_matrix_, a, omega)
        elif penalty == "l2":
            preds, df = _ridge_by_hand(Xs, ys, a, omega)
        else:
            preds, df = _mean_by_hand(Xs, ys, a, omega)
        df_hand.append(df)
        neg2_hand.append(_neg2_gaussian(ys, preds))
    df_hand, neg2_hand = np.array(df_hand), np.array(neg2_hand)
    ic = neg2_hand + (2.0 if criterion == "aic" else np.log(N)) * df_hand
    if penalty == "l1":
        np.testing.assert_array_equal(res["df"], df_hand)
        assert df_hand[0] == T and df_hand[-1] > T  # W = 0 at alpha_max; features enter
    elif penalty == "l21":  # the path's points to tol 1e-10 against the tight fits
        np.testing.assert_allclose(res["df"], df_hand, rtol=1e-6)
        assert res["df"].iloc[0] == T and df_hand[-1] > T
    else:
        np.testing.assert_allclose(res["df"], df_hand, rtol=1e-7)
        # a smooth df from about T (large alpha) to about T (p + 1) (small alpha)
        assert np.all(np.diff(df_hand) > 0) and df_hand[-1] > 0.99 * T * 9
    np.testing.assert_allclose(res["neg2_log_likelihood"], neg2_hand, rtol=1e-7)
    np.testing.assert_allclose(res[criterion], ic, rtol=1e-7)
    assert est.alpha_ == est.alphas_[np.argmin(ic)]
    assert est.best_score_ == pytest.approx(ic.min(), rel=1e-7)
    assert (res[f"rank_{criterion}"].to_numpy() == rankdata(ic, method="min")).all()
    assert est.n_splits_ == 0


def test_logistic_aic_is_deviance_plus_twice_the_nonzeros():
    Xs, ys = _clf_lists()
    est = rm.MultiTaskClassifierCV("l1", alphas=6, eps=0.05, criterion="aic",
                                   **TIGHT).fit(Xs, ys)
    res = est.cv_results_
    aic = []
    for i, a in enumerate(est.alphas_):
        m = rm.MultiTaskClassifier(penalty="l1", alpha=a, **TIGHT).fit(Xs, ys)
        dev = sum(2.0 * len(y) * log_loss(y, p[:, 1], labels=[0, 1])
                  for y, p in zip(ys, m.predict_proba(Xs), strict=True))
        df = np.count_nonzero(m.coef_) + 3
        assert res["df"].iloc[i] == df
        np.testing.assert_allclose(res["neg2_log_likelihood"].iloc[i], dev, rtol=1e-7)
        aic.append(dev + 2 * df)
    np.testing.assert_allclose(res["aic"], aic, rtol=1e-7)
    assert est.alpha_ == est.alphas_[np.argmin(aic)]
    assert res["df"].iloc[0] == 3 and res["df"].iloc[-1] > 3


# ---------------------------------------------------------------------------- 5. parallel
def _tiny():
    return make_lists(n_per_task=(12, 15, 18), p=6, seed=6)


def test_n_jobs_gives_identical_results():
    Xs, ys = _tiny()
    kw = dict(alphas=6, eps=1e-2, cv=3, penalty_grid={"l1_ratio": [0.7, 1.0]})
    a = rm.MultiTaskRegressorCV("l21", n_jobs=1, **kw).fit(Xs, ys)
    b = rm.MultiTaskRegressorCV("l21", n_jobs=2, **kw).fit(Xs, ys)
    cols = ["split0_test_score", "split1_test_score", "split2_test_score", "mean_test_score"]
    np.testing.assert_array_equal(a.cv_results_[cols].to_numpy(), b.cv_results_[cols].to_numpy())
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_dask_backend_gives_the_serial_result():
    distributed = pytest.importorskip("distributed")
    Xs, ys = _tiny()
    kw = dict(alphas=6, eps=1e-2, cv=3)
    serial = rm.MultiTaskRegressorCV("l21", **kw).fit(Xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=":0") as cluster,
              distributed.Client(cluster),
              joblib.parallel_backend("dask")):
            on_dask = rm.MultiTaskRegressorCV("l21", n_jobs=-1, **kw).fit(Xs, ys)
    cols = [c for c in serial.cv_results_ if c.endswith("test_score")]
    np.testing.assert_array_equal(serial.cv_results_[cols].to_numpy(),
                                  on_dask.cv_results_[cols].to_numpy())
    assert serial.alpha_ == on_dask.alpha_


# ---------------------------------------------------------------------------- 6. random_state
def test_random_state_controls_the_folds():
    Xs, ys = _small_lists()
    data = make_data(Xs, ys)
    off = _offsets(SIZES)
    same = [_tests(data, 3, random_state=0) for _ in range(2)]
    other = _tests(data, 3, random_state=1)
    for f, g in zip(*same, strict=True):
        np.testing.assert_array_equal(f, g)
    assert any(not np.array_equal(f, g) for f, g in zip(same[0], other, strict=True))
    # None: contiguous blocks in every task, sklearn's unshuffled KFold
    for k, fold in enumerate(_tests(data, 3, random_state=None)):
        expect = np.concatenate([off[t] + list(KFold(3).split(np.zeros(n)))[k][1]
                                 for t, n in enumerate(SIZES)])
        np.testing.assert_array_equal(fold, expect)
        for t in range(3):
            mine = fold[(fold >= off[t]) & (fold < off[t + 1])]
            assert np.all(np.diff(mine) == 1)
    # the estimator: same state, same scores; another state, other scores; None = KFold(3)
    kw = dict(alphas=5, eps=1e-2, cv=3, tol=1e-8)
    r0 = rm.MultiTaskRegressorCV(random_state=0, **kw).fit(Xs, ys).cv_results_
    r0b = rm.MultiTaskRegressorCV(random_state=0, **kw).fit(Xs, ys).cv_results_
    r1 = rm.MultiTaskRegressorCV(random_state=1, **kw).fit(Xs, ys).cv_results_
    rn = rm.MultiTaskRegressorCV(random_state=None, **kw).fit(Xs, ys).cv_results_
    rk = rm.MultiTaskRegressorCV(cv=KFold(3), **{k: v for k, v in kw.items() if k != "cv"}
                                 ).fit(Xs, ys).cv_results_
    np.testing.assert_array_equal(_split_scores(r0, 3), _split_scores(r0b, 3))
    assert not np.allclose(_split_scores(r0, 3), _split_scores(r1, 3))
    np.testing.assert_array_equal(_split_scores(rn, 3), _split_scores(rk, 3))


# ---------------------------------------------------------------------------- 7. groups
def test_groups_never_straddle_a_fold():
    """No group has rows on both sides of a fold: groups are dealt to folds once for all
    tasks, so a label used in several tasks is on one side in all of them."""
    Xs, ys = _small_lists()
    rng = np.random.default_rng(3)
    groups = [rng.integers(0, 6, n) for n in SIZES]  # 6 groups per task, uneven sizes
    data = make_data(Xs, ys)
    g = flat_groups(data, groups)
    np.testing.assert_array_equal(g, np.concatenate(groups))
    off = _offsets(SIZES)
    folds = _tests(data, 3, groups=g, random_state=0)
    for te in folds:
        val = np.zeros(off[-1], dtype=bool)
        val[te] = True
        for t in range(3):
            rows = slice(off[t], off[t + 1])
            gv, gt = set(g[rows][val[rows]]), set(g[rows][~val[rows]])
            assert gv and gt and not gv & gt
        assert not set(g[val]) & set(g[~val])  # across tasks too
    # the estimator takes groups in the lists and in the long form, with the same folds
    kw = dict(alphas=4, eps=1e-2, cv=3, **TIGHT)
    a = rm.MultiTaskRegressorCV(**kw).fit(Xs, ys, groups=groups)
    X, y, task, _ = to_long(Xs, ys)
    perm = np.random.default_rng(123).permutation(len(y))
    b = rm.MultiTaskRegressorCV(**kw).fit(X, y, task=task, groups=np.concatenate(groups)[perm])
    np.testing.assert_allclose(_split_scores(b.cv_results_, 3), _split_scores(a.cv_results_, 3),
                               rtol=1e-6)
    # and the scores are those of the group folds, given explicitly
    c = rm.MultiTaskRegressorCV(**{**kw, "cv": [(None, te) for te in folds]}).fit(Xs, ys)
    np.testing.assert_array_equal(_split_scores(c.cv_results_, 3),
                                  _split_scores(a.cv_results_, 3))


# ---------------------------------------------------------------------------- 8. one-SE
@pytest.mark.parametrize("grid", [None, {"l1_ratio": [0.5, 1.0]}])
def test_one_standard_error_rule(grid):
    X, Y = make_shared(n=60, p=15, T=3, seed=8)
    kw = dict(alphas=15, eps=1e-3, cv=5, penalty_grid=grid, tol=1e-8)
    best = rm.MultiTaskRegressorCV("l21", **kw).fit(X, Y)
    se1 = rm.MultiTaskRegressorCV("l21", one_se=True, **kw).fit(X, Y)
    res = se1.cv_results_
    pd.testing.assert_frame_equal(res.drop(columns="mean_fit_time"),
                                  best.cv_results_.drop(columns="mean_fit_time"))
    mean = res["mean_test_score"].to_numpy()
    i = int(np.argmax(mean))
    ok = mean >= mean[i] - res["std_test_score"].iloc[i] / np.sqrt(5)
    if grid is not None:  # the best penalty value's curve only
        ok &= res["param_l1_ratio"].to_numpy() == res["param_l1_ratio"].iloc[i]
        assert se1.best_params_["l1_ratio"] == best.best_params_["l1_ratio"]
    j = int(np.flatnonzero(ok)[np.argmax(res["param_alpha"].to_numpy()[ok])])
    assert se1.best_index_ == j and se1.alpha_ == res["param_alpha"].iloc[j]
    assert se1.alpha_ > best.alpha_  # the rule moves to a simpler model on this problem
    assert best.best_index_ == i


# ---------------------------------------------------------------------------- 9. scale grid
@pytest.mark.parametrize("penalty", ["mean", "l2"])
def test_scale_grid_without_alpha_max(penalty):
    """Integer alphas: 100 s down to 1e-4 s, s = the mean within-task variance of a feature."""
    Xs, ys = _small_lists()
    s = np.mean([X.var(axis=0) for X in Xs])
    assert alpha_scale(make_data(Xs, ys), make_datafit("squared")) == pytest.approx(s, rel=1e-12)
    est = rm.MultiTaskRegressorCV(penalty, alphas=7, cv=3, tol=1e-8).fit(Xs, ys)
    np.testing.assert_allclose(est.alphas_, 100 * s * np.logspace(0, -6, 7), rtol=1e-12)


def test_mean_regularization_pools_identical_tasks_not_unrelated_ones():
    """The same designs and noise (6 tasks, 25 rows, 8 features, noise 1); identical tasks
    (relatedness 1) make CV choose an alpha above the scale s (pooling), unrelated ones (0) an
    alpha far below it.

    Numbers on this draw (13-value grid 100 s .. 1e-4 s): alpha_/s = 10^0.5 vs 10^-1.5; CV MSE
    at the top of the grid (near full pooling) 1.245 vs 6.73, at the bottom (independent
    least squares, which do not depend on the true weights) 1.64 for both.
    """
    chosen, mse = {}, {}
    for rel in (1.0, 0.0):
        d = make_multitask_regression(6, 25, 8, structure="shared_support", n_informative=8,
                                      relatedness=rel, noise=1.0, random_state=0)
        s = np.mean([X.var(axis=0) for X in d.X])
        est = rm.MultiTaskRegressorCV("mean", alphas=13, cv=5, tol=1e-8).fit(d.X, d.y)
        np.testing.assert_allclose(est.alphas_[[0, -1]], [100 * s, 1e-4 * s], rtol=1e-12)
        chosen[rel] = est.alpha_ / s
        mse[rel] = -est.cv_results_["mean_test_score"].to_numpy()
    assert chosen[1.0] >= 1.0 and chosen[0.0] <= 0.1 and chosen[1.0] >= 30 * chosen[0.0]
    assert mse[1.0][0] < 0.8 * mse[1.0][-1]  # pooling helps identical tasks ...
    assert mse[0.0][0] > 3.0 * mse[0.0][-1]  # ... and hurts unrelated ones
    np.testing.assert_allclose(mse[1.0][-1], mse[0.0][-1], rtol=1e-2)


# ---------------------------------------------------------------------------- 10. bad input
def test_bad_input_messages():
    Xs, ys = _small_lists()
    Est = rm.MultiTaskRegressorCV
    for bad in ([0.1, -1.0], [0.1, np.nan]):
        with pytest.raises(ValueError, match=r"alphas=.*finite values >= 0"):
            Est(alphas=bad, cv=3).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"'own_weight'.*\['l1_ratio', 'positive'\]"):
        Est(penalty_grid={"own_weight": [1.0]}, cv=3).fit(Xs, ys)
    with pytest.warns(UserWarning, match=r"^cv=20: 1 task\(s\) have fewer samples than folds "
                                         r"\(task 0 has 15 samples: 15 folds\)"):
        assert Est(alphas=3, cv=20).fit(Xs, ys).n_splits_ == 20  # the fold rule, no abort
    with pytest.raises(ValueError, match="one_se=True applies to criterion='cv'"):
        Est(criterion="aic", one_se=True).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"scoring='no_such_score' is not a scikit-learn"):
        Est(scoring="no_such_score", cv=3).fit(Xs, ys)
    with pytest.raises(ValueError, match="groups has 71 entries but the data has 72 rows"):
        Est(cv=3).fit(Xs, ys, groups=[np.zeros(14), np.zeros(24), np.zeros(33)])
    with pytest.raises(ValueError, match=r"groups: give one array per task \(3\)"):
        Est(cv=3).fit(Xs, ys, groups=[np.zeros(15), np.zeros(24)])
    est = Est(alphas=3, cv=3, refit=False).fit(Xs, ys)
    assert not hasattr(est, "best_estimator_") and est.alpha_ in est.alphas_
    with pytest.raises(AttributeError, match="refit=False: no model was fitted"):
        est.predict(Xs)
    with pytest.raises(AttributeError, match="refit=False"):
        est.score(Xs, ys)
    with pytest.raises(AttributeError, match="refit=False"):
        rm.MultiTaskClassifierCV(alphas=3, cv=3, refit=False).fit(*_clf_lists()).predict_proba(
            _clf_lists()[0])


@pytest.mark.parametrize("labels, rare", [(("ham", "spam"), "'spam'"), ((3, 7), "7")])
def test_rare_class_warning_names_the_task_and_the_label(labels, rare):
    """The fold rule, stratified: a task with one sample of a class is never validated (its
    rows train in every fold) and the warning names the task and the label itself (not its
    index among the sorted classes, np.int64(0)); the fit completes."""
    Xs, ys = _clf_lists()
    ys = [np.where(y == 1, labels[1], labels[0]) for y in ys]
    y1 = np.full(len(ys[1]), labels[0], dtype=ys[1].dtype)
    y1[5] = labels[1]  # task 1: one sample of the second label, the first one sorted
    ys[1] = y1
    with pytest.warns(UserWarning, match=rf"^cv=3: 1 task\(s\) have fewer samples than folds "
                                         rf"\(task 1 has 1 sample of class {rare}: never "
                                         r"validated\)"), \
            pytest.warns(UserWarning, match=r"undefined on some validation folds of 1 task\(s\), "
                                            r"1 \(one class only\)"):
        est = rm.MultiTaskClassifierCV(alphas=3, cv=3).fit(Xs, ys)
    task_scores = np.stack(est.cv_results_["mean_task_scores"])
    assert np.isnan(task_scores[:, 1]).all() and np.isfinite(task_scores[:, [0, 2]]).all()
    assert est.predict(Xs)[1].shape == (CLF_SIZES[1],)


def _fold_rule_data(sizes=(10, 3, 1, 12)):
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((n, 3)) for n in sizes]
    ys = [X @ [1.0, 2.0, 3.0] + rng.standard_normal(len(X)) for X in Xs]
    return Xs, ys


def test_tasks_with_fewer_rows_than_folds_get_fewer_folds():
    """The fold rule: with K = 5, a 3-row task gets 3 folds, used in turn (fold k validates
    its part k mod 3), a 1-row task is never validated and always trains; the other tasks'
    folds are a partition of their rows, as without the rule. One warning names both tasks,
    and the CV estimator's fit completes (the 1-row task's CV score is NaN, the others not,
    and a second warning names that task)."""
    Xs, ys = _fold_rule_data()
    data = make_data(Xs, ys)
    with pytest.warns(UserWarning, match=r"^cv=5: 2 task\(s\) have fewer samples than folds "
                                         r"\(task 1 has 3 samples: 3 folds; task 2 has 1 "
                                         r"sample: never validated\)") as caught:
        folds = task_folds(data, 5, random_state=0)
    assert len(caught) == 1 and len(folds) == 5
    off = _offsets((10, 3, 1, 12))
    tiny = [np.intersect1d(te, np.arange(off[1], off[2])) for _, te in folds]
    assert [len(v) for v in tiny] == [1, 1, 1, 1, 1]
    assert np.array_equal(np.sort(np.concatenate(tiny[:3])), np.arange(off[1], off[2]))
    assert np.array_equal(tiny[3], tiny[0]) and np.array_equal(tiny[4], tiny[1])
    for tr, te in folds:
        assert off[2] in tr and off[2] not in te  # the 1-row task: always in training
        assert not np.intersect1d(tr, te).size
    for t in (0, 3):  # the others: every row validated exactly once
        rows = np.concatenate([np.intersect1d(te, np.arange(off[t], off[t + 1]))
                               for _, te in folds])
        assert np.array_equal(np.sort(rows), np.arange(off[t], off[t + 1]))
    with pytest.warns(UserWarning, match=r"task 1 has 3 samples: 3 folds"), \
            pytest.warns(UserWarning, match=r"undefined on some validation folds of 1 task\(s\), "
                                            r"2 \(too few rows for the score\)"):
        est = rm.MultiTaskRegressorCV("l21", alphas=4, cv=5).fit(Xs, ys)
    task_scores = np.stack(est.cv_results_["mean_task_scores"])
    assert np.isnan(task_scores[:, 2]).all() and np.isfinite(task_scores[:, [0, 1, 3]]).all()


def test_fold_rule_stratified_and_shared_and_hopeless():
    """Stratified: a task with 2 samples of its rarest class gets 2 folds, each validating
    one of them. A shared design with fewer rows than folds gets fewer folds for all tasks.
    With no task of 2 samples cross-validation is impossible: a ValueError says so."""
    Xs, ys = _clf_lists()
    ys = [y.copy() for y in ys]
    ys[0][:] = 0
    ys[0][[3, 17]] = 1  # task 0: two samples of class 1
    data = make_data(Xs, ys, loss="logistic")
    with pytest.warns(UserWarning, match=r"task 0 has 2 samples of class 1: 2 folds"):
        folds = task_folds(data, 3, stratify=True, random_state=0)
    first = [np.intersect1d(te, [3, 17]).tolist() for _, te in folds]
    assert sorted(first[:2]) == [[3], [17]] and first[2] == first[0]
    X, Y = make_shared(n=4, p=6, T=2)
    shared = make_data(X, Y)
    with pytest.warns(UserWarning, match=r"cv=5: .*task \(all rows, shared design\) has 4 "
                                         r"samples: 4 folds"):
        assert len(task_folds(shared, 5, random_state=0)) == 4
    Xs, ys = _fold_rule_data((1, 1))
    with pytest.raises(ValueError, match=r"^cv=3: no task has 2 samples to validate on "
                                         r"\(task 0 has 1 sample\)"):
        task_folds(make_data(Xs, ys), 3)


def test_two_dimensional_alphas_are_refused():
    Xs, ys = _small_lists()
    grid = [[1.0, 0.1], [0.01, 0.001]]
    msg = r"alphas has shape \(2, 2\): give a 1-D list of values"
    with pytest.raises(ValueError, match=msg):
        rm.MultiTaskRegressorCV(alphas=grid, cv=3).fit(Xs, ys)
    with pytest.raises(ValueError, match=msg):
        rm.MultiTaskRegressorCV(alphas=np.array(grid), criterion="bic").fit(Xs, ys)
    with pytest.raises(ValueError, match=msg):
        rm.regularization_path(Xs, ys, alphas=grid)
    path = rm.regularization_path(Xs, ys, alphas=[0.01, 1.0, 0.1])  # 1-D: used, sorted
    assert path.alphas.tolist() == [1.0, 0.1, 0.01]


# ---------------------------------------------------------------------------- 11. sklearn
@parametrize_with_checks([rm.MultiTaskRegressorCV(alphas=5, cv=3),
                          rm.MultiTaskClassifierCV(alphas=5, cv=3)])
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():  # short fits on the checks' random data
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------------- 12. results
def test_cv_results_frame():
    Xs, ys = _small_lists()
    est = rm.MultiTaskRegressorCV("l21", alphas=6, eps=1e-2, cv=4,
                                  penalty_grid={"l1_ratio": [0.5, 1.0]}, tol=1e-8).fit(Xs, ys)
    res = est.cv_results_
    assert isinstance(res, pd.DataFrame) and len(res) == 12
    assert list(res.columns) == [
        "param_alpha", "param_l1_ratio", "params",
        *[f"split{k}_test_score" for k in range(4)],
        "mean_test_score", "std_test_score", "mean_task_scores", "std_task_scores",
        "mean_n_active", "mean_fit_time", "rank_test_score"]
    split = _split_scores(res, 4)
    np.testing.assert_allclose(res["mean_test_score"], split.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res["std_test_score"], split.std(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(res["rank_test_score"],
                                  rankdata(-res["mean_test_score"], method="min"))
    assert res["rank_test_score"].iloc[est.best_index_] == 1
    tasks = np.stack(res["mean_task_scores"])
    assert tasks.shape == (12, 3)
    np.testing.assert_allclose(tasks.mean(axis=1), res["mean_test_score"], rtol=1e-12)
    assert res["params"].iloc[7] == {"alpha": res["param_alpha"].iloc[7], "l1_ratio": 1.0}
    assert (res["mean_n_active"] >= 0).all() and (res["mean_n_active"] <= 8).all()
    assert est.best_params_ == res["params"].iloc[est.best_index_]
    assert est.best_score_ == res["mean_test_score"].max()


# ---------------------------------------------------------------------------- 13. progress
def test_progress_bar_on_stderr_only_when_asked(capsys):
    Xs, ys = _tiny()
    rm.MultiTaskRegressorCV(alphas=3, cv=3, progress=False).fit(Xs, ys)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    rm.MultiTaskRegressorCV(alphas=3, cv=3, progress=True).fit(Xs, ys)
    out = capsys.readouterr()
    assert out.out == "" and "cross-validation" in out.err


def test_a_splitter_keeps_its_training_rows():
    """TimeSeriesSplit trains on earlier rows only: the folds keep its train parts."""
    from sklearn.model_selection import TimeSeriesSplit

    Xs, ys = _small_lists()
    data = make_data(Xs, ys)
    off = _offsets(SIZES)
    folds = task_folds(data, TimeSeriesSplit(3))
    assert len(folds) == 3
    for tr, te in folds:
        for t in range(3):
            a, b = off[t], off[t + 1]
            mt, me = tr[(tr >= a) & (tr < b)], te[(te >= a) & (te < b)]
            assert len(mt) and len(me) and mt.max() < me.min()
            assert len(mt) + len(me) < b - a or me.max() == b - 1
    est = rm.MultiTaskRegressorCV(cv=TimeSeriesSplit(3), alphas=4, eps=1e-2,
                                  **TIGHT).fit(Xs, ys)
    # fold 0's score is that of a fit on the first rows of every task only
    tr, te = folds[0]
    a = est.alphas_[0]
    Xtr = [Xs[t][tr[(tr >= off[t]) & (tr < off[t + 1])] - off[t]] for t in range(3)]
    ytr = [ys[t][tr[(tr >= off[t]) & (tr < off[t + 1])] - off[t]] for t in range(3)]
    m = rm.MultiTaskRegressor(alpha=a, **TIGHT).fit(Xtr, ytr)
    Xv = [Xs[t][te[(te >= off[t]) & (te < off[t + 1])] - off[t]] for t in range(3)]
    yv = [ys[t][te[(te >= off[t]) & (te < off[t + 1])] - off[t]] for t in range(3)]
    mse = np.mean([np.mean((y - f) ** 2) for y, f in zip(yv, m.predict(Xv), strict=True)])
    assert est.cv_results_["split0_test_score"].iloc[0] == pytest.approx(-mse, rel=1e-6)
