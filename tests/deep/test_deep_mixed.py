"""DeepMultiTaskModel: regression, binary and multiclass tasks in one net.

With every task of one kind it is the regressor or the classifier (the same training run, the
same predictions); mixed, each task ends better than its constant predictor; kinds are read or
given, refused with a message naming the task, and saved.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import regmtl  # noqa: E402
from regmtl.datasets import make_recommender_tasks  # noqa: E402
from regmtl.deep import (  # noqa: E402
    DeepMultiTaskClassifier,
    DeepMultiTaskModel,
    DeepMultiTaskRegressor,
)

KW = dict(hidden=(16,), max_epochs=15, batch_size=32, random_state=0)


def _family(seed=0, n=(90, 70, 110), p=4):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((k, p)) for k in n]
    return Xs, rng


def test_one_kind_is_the_regressor_or_the_classifier():
    Xs, rng = _family()
    ys = [X[:, 0] * (10 ** t) + 5.0 * t for t, X in enumerate(Xs)]  # units 1, 10, 100
    mixed = DeepMultiTaskModel(kinds=["regression"] * 3, **KW).fit(Xs, ys)
    reg = DeepMultiTaskRegressor(**KW).fit(Xs, ys)
    for a, b in zip(mixed.predict(Xs), reg.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    assert mixed.score(Xs, ys) == pytest.approx(reg.score(Xs, ys), abs=1e-12)
    labels = [np.where(X[:, 1] > 0, "up", "down") for X in Xs]
    labels[2] = np.digitize(Xs[2][:, 1], [-0.5, 0.5])  # three classes
    mixed = DeepMultiTaskModel(**KW).fit(Xs, labels)  # "auto": all classifications
    clf = DeepMultiTaskClassifier(**KW).fit(Xs, labels)
    assert mixed.kinds_.tolist() == ["binary", "binary", "multiclass"]
    for a, b in zip(mixed.predict_proba(Xs), clf.predict_proba(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(mixed.predict(Xs), clf.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_recommender_mixed_kinds_every_task_beats_its_constant():
    """Click and purchase (binary, purchase missing without a click) beside the rating in its
    1-5 units, on a shared design: each task ends better than predicting its training mean
    or majority class on held-out rows."""
    data = make_recommender_tasks(n_samples=4000, random_state=0)
    X, Y = data.X, data.Y
    tr, te = slice(0, 3200), slice(3200, None)
    m = DeepMultiTaskModel(hidden=(32,), max_epochs=30, batch_size=128, lr=3e-3,
                           random_state=0).fit(X[tr], Y[tr])
    assert m.kinds_.tolist() == ["binary", "binary", "regression"]
    assert [c is None for c in m.classes_] == [False, False, True]
    pred, proba = m.predict(X[te]), m.predict_proba(X[te])
    assert pred.shape == (800, 3) and proba[2] is None
    for j in range(3):
        obs = ~np.isnan(Y[te, j])
        y, f = Y[te][obs, j], pred[obs, j]
        if j == 2:
            const = np.mean((Y[tr, 2][~np.isnan(Y[tr, 2])].mean() - y) ** 2)
            assert np.mean((f - y) ** 2) < 0.9 * const
        else:
            base = np.nanmean(Y[tr, j])
            const = -np.mean(y * np.log(base) + (1 - y) * np.log(1 - base))
            p = np.clip(proba[j][obs, 1], 1e-12, 1 - 1e-12)
            assert -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) < const
    assert np.isfinite(m.score(X[te], Y[te]))


def test_kinds_given_read_and_refused():
    Xs, rng = _family()
    counts = [rng.poisson(3, len(X)).astype(float) for X in Xs]  # integers: classes by "auto"
    auto = DeepMultiTaskModel(max_epochs=2).fit(Xs[:2], counts[:2])
    assert auto.kinds_.tolist() == ["multiclass", "multiclass"]
    named = DeepMultiTaskModel(kinds={0: "regression"}, max_epochs=2).fit(Xs[:2], counts[:2])
    assert named.kinds_.tolist() == ["regression", "multiclass"]
    d = {"sales": (Xs[0], counts[0]), "churn": (Xs[1], Xs[1][:, 0] > 0)}
    m = DeepMultiTaskModel(kinds={"sales": "regression"}, max_epochs=2).fit(
        {k: v[0] for k, v in d.items()}, {k: v[1] for k, v in d.items()})
    assert m.kinds_.tolist() == ["regression", "binary"]
    assert set(m.predict_proba({"churn": Xs[1][:3]})) == {"churn"}
    with pytest.raises(ValueError, match=r"kinds: unknown task\(s\) \['price'\]"):
        DeepMultiTaskModel(kinds={"price": "regression"}).fit(
            {k: v[0] for k, v in d.items()}, {k: v[1] for k, v in d.items()})
    with pytest.raises(ValueError, match="one kind per task"):
        DeepMultiTaskModel(kinds=["regression"]).fit(Xs[:2], counts[:2])
    with pytest.raises(ValueError, match="'ordinal' is not one of"):
        DeepMultiTaskModel(kinds=["ordinal", "regression"]).fit(Xs[:2], counts[:2])
    words = [np.where(Xs[0][:, 0] > 0, "a", "b"), counts[1]]
    with pytest.raises(ValueError, match="task 0 is a regression, but"):
        DeepMultiTaskModel(kinds=["regression", "regression"]).fit(Xs[:2], words)
    with pytest.raises(ValueError, match="task 1 has one class"):
        DeepMultiTaskModel(kinds=["regression", "classification"]).fit(
            Xs[:2], [counts[0], np.zeros(len(Xs[1]))])
    with pytest.raises(ValueError, match="regression tasks"):
        m.predict_proba(np.vstack(Xs[:2]), task=["sales"] * 90 + ["churn"] * 70)


def test_save_and_load_keep_kinds_classes_and_units(tmp_path):
    Xs, rng = _family()
    ys = [1000.0 + 50.0 * Xs[0][:, 0], np.where(Xs[1][:, 1] > 0, "yes", "no"),
          np.digitize(Xs[2][:, 2], [-0.5, 0.5])]
    m = DeepMultiTaskModel(kinds=["regression", "classification", "classification"],
                           **KW).fit(Xs, ys)
    m.save(tmp_path / "m")
    again = regmtl.load(tmp_path / "m")
    assert isinstance(again, DeepMultiTaskModel)
    assert again.kinds_.tolist() == ["regression", "binary", "multiclass"]
    assert again.classes_[0] is None and again.classes_[1].tolist() == ["no", "yes"]
    for a, b in zip(again.predict(Xs), m.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    assert m.predict(Xs)[0].mean() == pytest.approx(1000.0, abs=25.0)  # in the target's units
