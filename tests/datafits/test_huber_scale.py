"""``Huber()``'s default delta: ``epsilon`` robust scales of the targets (1.4826 times the
weighted median absolute deviation from each task's weighted median), read from the data a fit
sees. The scale against a direct computation (frequency weights as repeated rows), its
fallbacks, the invariance it buys (targets in other units give the same model in those
units), one delta for every fold of a CV and its refit, a loss list's Huber tasks on their own
rows, and the fitted loss kept in a saved model."""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm
from regmtl.datafits.huber import target_scale


def _tasks(seed=0, sizes=(5, 120, 37, 60)):
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n, 4)) for n in sizes]
    ys = [X @ rng.standard_normal(4) + 3.0 + rng.standard_t(2, len(X)) for X in Xs]
    return Xs, ys


def _direct_scale(ys, weights=None):
    """1.4826 median |y - median_t|, frequency weights as repeated rows (the lower median:
    the least value with at least half the weight at or below it)."""
    def lower_median(v):
        v = np.sort(v)
        return v[(len(v) - 1) // 2]
    weights = weights or [np.ones(len(y), dtype=int) for y in ys]
    dev = []
    for y, w in zip(ys, weights, strict=True):
        rep = np.repeat(y, w)
        dev.append(np.abs(rep - lower_median(rep)))
    return 1.4826 * lower_median(np.concatenate(dev))


def test_the_scale_is_the_weighted_median_absolute_deviation():
    """Tasks of 5 to 120 rows with integer weights (some zero): the bisection's scale is the
    one computed here from the repeated rows, to 1e-9 relative. The rows' weights in the loss
    (``c``, each task's weights summed to one over the tasks) weigh the tasks equally; with
    equal task sizes the two agree, here checked on tasks of one size."""
    rng = np.random.default_rng(1)
    Xs, ys = _tasks(1, sizes=(50, 50, 50))
    w = [rng.integers(0, 4, len(y)) for y in ys]
    for ws in w:
        ws[:2] = 1
    data = rm.as_task_data(Xs, ys, sample_weight=[x.astype(float) for x in w])
    assert target_scale(data) == pytest.approx(_direct_scale(ys, w), rel=1e-9)
    data = rm.as_task_data(Xs, ys)
    assert target_scale(data) == pytest.approx(_direct_scale(ys), rel=1e-9)


def test_the_scale_falls_back_where_the_median_deviation_is_zero():
    """More than half of each task's rows at its median: sqrt(pi / 2) times the mean absolute
    deviation; targets constant within each task: 1 (any delta fits them exactly)."""
    X = np.ones((8, 1))
    y = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 6.0, 2.0])
    data = rm.as_task_data(X, y)
    # (to the bisection's precision: each median within the range over 2^40)
    assert target_scale(data) == pytest.approx(np.sqrt(np.pi / 2) * 5.0 / 8.0, rel=1e-9)
    assert target_scale(rm.as_task_data(X, np.full(8, 4.0))) == 1.0


@pytest.mark.parametrize("units", [1e-3, 1e3])
def test_targets_in_other_units_give_the_same_model_in_those_units(units):
    """The point of the default: y in cents or in thousands fits the same model scaled (with
    alpha scaled as the loss is, by units^2 over units), where a delta in target units would
    put every row on the linear pieces or none."""
    Xs, ys = _tasks()
    base = rm.MultiTaskRegressor("l21", alpha=0.05, loss="huber", tol=1e-10).fit(Xs, ys)
    moved = rm.MultiTaskRegressor("l21", alpha=0.05 * units, loss="huber", tol=1e-10).fit(
        Xs, [units * y for y in ys])
    assert moved.loss_.delta == pytest.approx(units * base.loss_.delta, rel=1e-5)
    np.testing.assert_allclose(moved.coef_, units * base.coef_, rtol=1e-5,
                               atol=1e-7 * units * np.abs(base.coef_).max())


def test_the_default_is_the_fit_with_its_delta_given():
    """``Huber()`` fits exactly as ``Huber(delta=loss_.delta)``; ``epsilon`` scales it."""
    Xs, ys = _tasks(2)
    auto = rm.MultiTaskRegressor("l21", alpha=0.05, loss=rm.Huber(), tol=1e-10).fit(Xs, ys)
    given = rm.MultiTaskRegressor("l21", alpha=0.05, loss=rm.Huber(auto.loss_.delta),
                                  tol=1e-10).fit(Xs, ys)
    np.testing.assert_array_equal(auto.coef_, given.coef_)
    wide = rm.MultiTaskRegressor("l21", alpha=0.05, loss=rm.Huber(epsilon=2.7)).fit(Xs, ys)
    assert wide.loss_.delta == pytest.approx(2.0 * auto.loss_.delta, rel=1e-5)


def test_the_cv_reads_one_delta_for_every_fold_and_the_refit():
    Xs, ys = _tasks(3)
    cv = rm.MultiTaskRegressorCV("l21", alphas=5, cv=3, loss="huber").fit(Xs, ys)
    whole = rm.Huber().bind(rm.as_task_data(Xs, ys))
    assert cv.loss_.delta == whole.delta
    assert cv.best_estimator_.loss_.delta == whole.delta


def test_a_loss_list_reads_each_huber_task_on_its_own_rows():
    """Huber tasks beside a squared one with targets 100 times larger: their delta is read
    from their own rows only."""
    Xs, ys = _tasks(4, sizes=(40, 60, 50))
    ys[2] = 100.0 * ys[2]
    model = rm.MultiTaskRegressor("l21", alpha=0.05, loss=["huber", "huber", "squared"]).fit(
        Xs, ys)
    want = rm.Huber().bind(rm.as_task_data(Xs[:2], ys[:2])).delta
    hubers = [loss for loss in model.loss_.losses if isinstance(loss, rm.Huber)]
    assert [h.delta for h in hubers] == [want, want]
    from regmtl.report import loss_name
    assert loss_name(model) == f"per task: Huber(delta={want!r}), Huber(delta={want!r}), squared"


def test_a_saved_model_keeps_its_fitted_loss(tmp_path):
    Xs, ys = _tasks(5)
    model = rm.MultiTaskRegressor("l21", alpha=0.05, loss="huber").fit(Xs, ys)
    model.save(tmp_path / "m.npz")
    again = rm.load(tmp_path / "m.npz")
    assert again.loss_.delta == model.loss_.delta
    for a, b in zip(again.predict(Xs), model.predict(Xs), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.score(Xs, ys) == model.score(Xs, ys)


def test_an_unbound_default_names_the_fix():
    with pytest.raises(ValueError, match=r"bind it to the problem first .* or give delta"):
        rm.Huber().theta(np.zeros(3), np.zeros(3))


def test_the_scale_is_read_again_when_the_targets_are_replaced():
    """The scale is kept with the problem beside the targets it was read from: a problem
    whose targets are replaced (a fold's, by its offsets) reads it again."""
    Xs, ys = _tasks(6)
    data = rm.as_task_data(Xs, ys)
    first = rm.Huber().bind(data).delta
    assert rm.Huber().bind(data).delta == first
    data.y = 10.0 * data.y
    assert rm.Huber().bind(data).delta == pytest.approx(10.0 * first, rel=1e-5)
