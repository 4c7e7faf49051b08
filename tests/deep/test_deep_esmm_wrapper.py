"""DeepESMMClassifier: ESMM from the scikit-learn side, against the Trainer's ESMM on the same
data and seed; its AUCs, refusals, saving and the scikit-learn conventions."""

import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import regmtl  # noqa: E402
from regmtl.datasets import make_recommender_tasks  # noqa: E402
from regmtl.deep import (  # noqa: E402
    ESMM,
    DeepESMMClassifier,
    TaskSpec,
    Trainer,
    esmm_targets,
    set_seed,
    transfer_head,
)
from regmtl.deep.esmm_estimator import ESMM_OUTPUTS, click_purchase  # noqa: E402

FAST = dict(hidden=(16,), tower_hidden=(8,), max_epochs=4, batch_size=128, device="cpu")

#: The scikit-learn checks that fit a 1-D y: ESMM's target is the (click, purchase) pair, so
#: they are refused ("y has shape (n,) ... takes an (n, 2) array"); their invariants are
#: checked below with a pair (pickling, refitting, row order and subsets, NaN, widths).
ONE_D_Y = "fits a 1-D y; DeepESMMClassifier's target is the (n, 2) (click, purchase) pair"
NEEDS_PAIR = {name: ONE_D_Y for name in (
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_complex_data",
    "check_dtype_object", "check_estimators_empty_data_messages", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimator_sparse_tag", "check_estimator_sparse_array",
    "check_estimator_sparse_matrix", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
    "check_classifiers_one_label", "check_classifiers_classes", "check_classifier_multioutput",
    "check_classifiers_train", "check_classifiers_regression_target",
    "check_classifier_not_supporting_multiclass", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
)}


@parametrize_with_checks([DeepESMMClassifier(**FAST)],
                         expected_failed_checks=lambda est: NEEDS_PAIR)
def test_sklearn_conventions(estimator, check):
    """get_params / set_params / clone / repr / tags / init hold as for every estimator."""
    check(estimator)


def _log(n=4000, seed=0):
    d = make_recommender_tasks(n, 40, 30, 4, random_state=seed)
    return d.X, d.Y[:, :2]  # click, purchase (NaN where not clicked)


# ----------------------------------------------------------------------------- vs the Trainer
def test_wrapper_equals_the_trainers_esmm_on_the_same_data_and_seed():
    """Same standardized inputs, seed and options: the same steps in the same order, so the
    same pCTR, pCVR and pCTCVR to 1e-6 (measured: 7e-8 at most, the wrapper taking the
    sigmoids of the same float32 logits in float64)."""
    X, y = _log()
    kw = dict(hidden=(32,), tower_hidden=(16,), lr=3e-3, batch_size=256, max_epochs=5)
    m = DeepESMMClassifier(**kw, early_stopping=False, random_state=0, device="cpu").fit(X, y)
    # the wrapper: inputs standardized with the training rows' mean and deviation, the seed
    # drawn from random_state, the net built after set_seed(seed)
    seed = int(np.random.default_rng(0).integers(2**31))
    Xs = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    set_seed(seed)
    net = ESMM(X.shape[1], [TaskSpec("ctr", kind="binary"), TaskSpec("ctcvr", kind="binary")],
               hidden=(32,), tower_hidden=(16,))
    trainer = Trainer(net, lr=3e-3, batch_size=256, max_epochs=5, device="cpu",
                      distributed=False, seed=seed)
    trainer.fit((Xs, esmm_targets(y[:, 0], y[:, 1])))
    got = m.predict_proba(X)
    pred = trainer.predict(Xs)
    np.testing.assert_allclose(got[:, 0], pred["ctr"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[:, 2], pred["ctcvr"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got[:, 1], net.predict_cvr(Xs), rtol=0, atol=1e-6)
    np.testing.assert_allclose(m.history_["loss"], trainer.history["loss"], rtol=1e-6)


def test_aucs_are_real_numbers_and_the_score_is_their_mean():
    X, y = _log(6000, seed=1)
    k = 4500
    m = DeepESMMClassifier(hidden=(32,), tower_hidden=(16,), lr=3e-3, max_epochs=30,
                           random_state=0).fit(X[:k], y[:k])
    aucs = m.auc_scores(X[k:], y[k:])
    p = m.predict_proba(X[k:])
    click, buy = y[k:, 0], np.nan_to_num(y[k:, 1])
    assert aucs["ctr"] == pytest.approx(roc_auc_score(click, p[:, 0]), abs=1e-12)
    assert aucs["ctcvr"] == pytest.approx(roc_auc_score(click * buy, p[:, 2]), abs=1e-12)
    # measured with this set-up: CTR 0.70, CTCVR 0.75 (held-out impressions)
    assert 0.65 < aucs["ctr"] < 0.8 and 0.65 < aucs["ctcvr"] < 0.85, aucs
    assert m.score(X[k:], y[k:]) == pytest.approx((aucs["ctr"] + aucs["ctcvr"]) / 2)
    np.testing.assert_allclose(p[:, 2], p[:, 0] * p[:, 1], rtol=1e-15)
    assert ((0 < p) & (p < 1)).all() and list(ESMM_OUTPUTS) == ["ctr", "cvr", "ctcvr"]
    labels = m.predict(X[k:])
    assert labels.shape == (len(X) - k, 2) and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels[:, 0], p[:, 0] > 0.5)
    assert (labels[:, 1] <= labels[:, 0]).all()  # a purchase implies a click


def test_a_dataframe_target_and_categorical_inputs():
    X, y = _log(1500)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    frame["region"] = pd.Categorical(np.random.default_rng(0).choice(["n", "s", "e"], len(X)))
    target = pd.DataFrame({"purchase": np.nan_to_num(y[:, 1]), "click": y[:, 0]})  # by name
    m = DeepESMMClassifier(**FAST).fit(frame, target)
    assert m.tasks_.tolist() == ["click", "purchase"] and list(m.categories_) == ["region"]
    assert m.predict_proba(frame).shape == (len(X), 3)
    same = DeepESMMClassifier(**FAST).fit(frame, target[["click", "purchase"]].to_numpy())
    np.testing.assert_array_equal(same.predict_proba(frame), m.predict_proba(frame))


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("y, match", [
    ([[1, 1], [0, 1], [1, 0], [0, 1]], r"y: 2 row\(s\) have a purchase without a click: rows "
                                       r"\[1, 3\]"),
    ([[1, np.nan], [0, 0], [1, 1], [0, 0]], r"y: 1 clicked row\(s\) have no purchase label "
                                            r"\(NaN\): rows \[0\]"),
    ([[2, 0], [0, 0], [1, 1], [0, 0]], r"y: the click column must hold 0 or 1; 1 row\(s\) "
                                       r"do not, e.g. rows \[0\]"),
    ([[1, 0.5], [0, 0], [1, 1], [0, 0]], r"y: the purchase column must hold 0 or 1"),
    ([1, 0, 1, 0], r"y has shape \(4,\); DeepESMMClassifier takes an \(n, 2\) array"),
    ([["a", "b"]] * 4, r"y: ESMM's target is a click and a purchase"),
])
def test_refusals_name_the_argument_and_rows(y, match):
    X = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match=match):
        DeepESMMClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=match):
        click_purchase(y)


def test_other_refusals():
    X, y = _log(600)
    m = DeepESMMClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"y: every click label is 0, so the ctr AUC"):
        m.auc_scores(X[:5], np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"y has 5 rows but X has 6"):
        m.score(X[:6], y[:5])
    with pytest.raises(ValueError, match="X has 3 features"):
        m.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match=r"tower_hidden\[0\]"):
        DeepESMMClassifier(tower_hidden=(2.5,)).fit(X, y)
    with pytest.raises(TypeError, match="architecture"):
        DeepESMMClassifier(architecture="hard")  # one net: no such parameter
    with pytest.raises(ValueError, match="X: DeepESMMClassifier takes one design"):
        DeepESMMClassifier(**FAST).fit([X[:300], X[300:]], y)


# ----------------------------------------------------------------------------- saving
def test_save_and_load_predict_the_same(tmp_path):
    X, y = _log(800)
    m = DeepESMMClassifier(**FAST, batch_norm=True, dropout=0.1).fit(X, y)
    m.save(tmp_path / "esmm")
    again = regmtl.load(tmp_path / "esmm")
    assert isinstance(again, DeepESMMClassifier) and again.get_params() == m.get_params()
    np.testing.assert_array_equal(again.predict_proba(X), m.predict_proba(X))
    assert again.score(X, y) == m.score(X, y)
    # a folder whose net is not an ESMM is refused
    config = (tmp_path / "esmm" / "config.json").read_text()
    (tmp_path / "esmm" / "config.json").write_text(config.replace('"ESMM"', '"HardSharing"', 1))
    with pytest.raises(ValueError, match="refused.*DeepESMMClassifier builds a ESMM"):
        regmtl.load(tmp_path / "esmm")


# ----------------------------------------------------------------------------- the checks
#     scikit-learn runs with a 1-D y, with the pair
def test_clone_pickle_refit_and_row_invariances():
    X, y = _log(700)
    m = DeepESMMClassifier(**FAST).fit(X, y)
    p = m.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m)).predict_proba(X), p)
    np.testing.assert_array_equal(clone(m).fit(X, y).predict_proba(X), p)  # idempotent
    np.testing.assert_array_equal(m.fit(X, y).predict_proba(X), p)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(m.predict_proba(X[order]), p[order], rtol=1e-6)
    np.testing.assert_allclose(m.predict_proba(X[:7]), p[:7], rtol=1e-6)
    assert m.n_features_in_ == X.shape[1] and m.n_iter_ == len(m.history_) == 4
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DeepESMMClassifier(**FAST).fit(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        m.predict_proba(bad)
    with pytest.raises(ValueError):
        DeepESMMClassifier(**FAST).fit(X[:0], y[:0])
    m2 = DeepESMMClassifier(**FAST).set_params(tower_hidden=(4,), max_epochs=2).fit(X, y)
    assert m2.net_.config()["tower_hidden"] == [4] and m2.n_iter_ == 2


def test_cross_validation_routing_and_transfer():
    """cross_val_score splits the pair as rows (no ``task`` to route); a new head on an ESMM
    net is refused naming the nets that take one."""
    X, y = _log(900)
    entire = np.nan_to_num(y)  # the purchase 0 where not clicked: scikit-learn's splitters
    scores = cross_val_score(DeepESMMClassifier(**FAST), X, entire, cv=3)  # refuse NaN in y
    assert scores.shape == (3,) and ((0 <= scores) & (scores <= 1)).all()
    assert DeepESMMClassifier().get_metadata_routing().fit.requests == {}
    m = DeepESMMClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"model: adding a task to a ESMM net is not supported"
                                         r".*HardSharing or MMoE"):
        transfer_head(m, X[:20], y[:20, 0])
