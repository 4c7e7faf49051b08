"""What has no valid standard errors is refused by name, with what to use instead."""

import numpy as np
import pytest

import regmtl as rm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((40, 3)) for _ in range(3)]
    ys = [X @ [1.0, 0.0, -1.0] + rng.standard_normal(40) for X in Xs]
    return Xs, ys


@pytest.fixture(scope="module")
def plain(data):
    return rm.MultiTaskRegressor("l21", alpha=0.0, tol=1e-10).fit(*data)


@pytest.mark.parametrize("penalty", ["l1", "l21"])
def test_the_lasso_and_l21_take_the_debiased_method(data, penalty):
    model = rm.MultiTaskRegressor(penalty, alpha=0.05).fit(*data)
    assert set(model.coef_table(*data)["method"]) == {"debiased"}
    with pytest.raises(ValueError, match="applies to a fit with no active penalty"):
        model.coef_table(*data, method="sandwich")


@pytest.mark.parametrize("penalty", ["trace", "mcp", "scad", "capped_l1", "mean", "l2",
                                     "elasticnet", "dirty"])
def test_penalties_without_intervals_are_refused_by_name(data, penalty):
    model = rm.MultiTaskRegressor(penalty, alpha=0.05, max_iter=50).fit(*data)
    with pytest.raises(ValueError, match="no valid confidence intervals") as err:
        model.coef_table(*data)
    message = str(err.value)
    assert "stability_selection" in message and "alpha=0" in message and "debiased" in message
    assert type(rm.penalties.make_penalty(penalty)).__name__ in message


def test_unpenalized_features_of_a_penalized_fit_are_refused(data):
    """Factor 0 on a feature of a penalized fit: the others are still penalized."""
    model = rm.MultiTaskRegressor("trace", alpha=0.05, penalty_factor=[0.0, 1.0, 1.0]).fit(*data)
    with pytest.raises(ValueError, match="no valid confidence intervals"):
        model.coef_table(*data)


def test_every_factor_zero_is_unpenalized(data):
    model = rm.MultiTaskRegressor("l21", alpha=0.05, penalty_factor=[0.0, 0.0, 0.0],
                                  tol=1e-10).fit(*data)
    table = model.coef_table(*data)
    assert not table["penalized"].any() and (table["method"] == "fisher").all()


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, "0.95", True])
def test_bad_level(plain, data, level):
    with pytest.raises(ValueError, match="level="):
        plain.coef_table(*data, level=level)


def test_bad_methods(plain, data):
    with pytest.raises(ValueError, match="method='wild' is not one of"):
        plain.coef_table(*data, method="wild")
    with pytest.raises(ValueError, match="'kernel' is the pinball loss's"):
        plain.coef_table(*data, method="kernel")
    with pytest.raises(ValueError, match="no active penalty"):
        plain.coef_table(*data, method="debiased")
    with pytest.raises(ValueError, match="n_boot="):
        plain.coef_table(*data, method="bootstrap", n_boot=1)


def test_losses_and_methods_that_do_not_fit(data):
    Xs, ys = data
    pinball = rm.MultiTaskRegressor("l1", alpha=0.0, loss=rm.Quantile(0.5)).fit(Xs, ys)
    with pytest.raises(ValueError, match="no likelihood"):
        pinball.coef_table(Xs, ys, method="fisher")
    with pytest.raises(ValueError, match="no curvature"):
        pinball.coef_table(Xs, ys, method="sandwich")
    with pytest.raises(ValueError, match="no sample weights"):
        pinball.coef_table(Xs, ys, sample_weight=[np.full(40, 2.0)] * 3)


def test_inputs_checked_as_the_estimator_checks_them(plain, data):
    Xs, ys = data
    with pytest.raises(ValueError, match="y is required"):
        plain.coef_table(Xs, None)
    with pytest.raises(ValueError, match="features"):
        plain.coef_table([X[:, :2] for X in Xs], ys)
    with pytest.raises(ValueError):
        plain.coef_table(Xs, [y[:10] for y in ys])


def test_multinomial_and_bounds_are_refused():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 2))
    y = np.repeat(["a", "b", "c"], 30)
    clf = rm.MultiTaskClassifier("l21", alpha=0.0, max_iter=50).fit(X, y)
    with pytest.raises(ValueError, match="multinomial.*not identified.*stability_selection"):
        clf.coef_table(X, y)
    yv = X[:, 0] + rng.standard_normal(90)
    bounded = rm.MultiTaskRegressor("l21", alpha=0.0, lower_bounds=0.0).fit(X, yv)
    with pytest.raises(ValueError, match="lower_bounds"):
        bounded.coef_table(X, yv)


def test_singular_design_is_refused_by_task():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 2))
    X = np.column_stack([X, X[:, 0]])
    y = X[:, 0] + rng.standard_normal(30)
    model = rm.MultiTaskRegressor("l21", alpha=0.0).fit(X, y)
    with pytest.raises(ValueError, match="singular"):
        model.coef_table(X, y)


def test_a_random_state_is_a_seed_or_refused(data, plain):
    Xs, ys = data
    model = plain
    a, b = (model.coef_table(Xs, ys, method="bootstrap", n_boot=20,
                             random_state=np.random.RandomState(0)) for _ in range(2))
    np.testing.assert_array_equal(a["std_error"], b["std_error"])
    with pytest.raises(ValueError, match="random_state='a'"):
        model.coef_table(Xs, ys, method="bootstrap", n_boot=20, random_state="a")


def test_a_task_too_small_for_the_debiased_intervals_is_named():
    rng = np.random.default_rng(5)
    small = [rng.standard_normal((3, 3)) for _ in range(2)]
    ys = [x[:, 0] for x in small]
    model = rm.MultiTaskRegressor("l21", alpha=0.1).fit(small, ys)
    with pytest.raises(ValueError, match="task 0: the debiased intervals cannot be computed.*"
                                         "more rows.*alpha=0"):
        model.coef_table(small, ys, nodewise="universal")
