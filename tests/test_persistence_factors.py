"""Penalty factors, exclusions, bounds and standardization in a model file: written, read
back equal (arrays, dicts keyed by feature, infinite factors), and checked on load as user
input is at a fit: a tampered file (a negative or NaN factor, lower > upper, a wrong shape)
is refused naming the parameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import model_parts as _parts
from conftest import refused
from conftest import write_model as _write

import regmtl as rm


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((90, 4)), columns=list("abcd"))
    task = np.repeat(["x", "y", "z"], 30)
    y = df[list("abc")].sum(axis=1).to_numpy() + rng.standard_normal(90)
    return df, y, task


CASES = [dict(penalty_factor={"a": 0.0, "b": np.inf}),
         dict(penalty_factor=np.array([0.0, 1.0, 2.0, np.inf])),
         dict(penalty_factor=np.abs(np.random.default_rng(1).standard_normal((4, 3)))),
         dict(exclude=["d"]), dict(exclude=np.array([False, False, True, False])),
         dict(lower_bounds={"a": -1.0}, upper_bounds=np.array([1.0, 2.0, np.inf, 3.0])),
         dict(lower_bounds=-0.5, standardize=True),
         dict(standardize=True, rescale_factors=False, penalty_factor=[0.0, 1.0, 1.0, 1.0]),
         dict(penalty_factor=np.array([0.5, 1.0, 2.0, 1.0]), factor_convention="glmnet")]


@pytest.mark.parametrize("terms", CASES)
def test_a_model_with_terms_round_trips(tmp_path, terms):
    df, y, task = _frame()
    penalty = "l1" if np.ndim(terms.get("penalty_factor")) == 2 else "l21"
    model = rm.MultiTaskRegressor(penalty, alpha=0.1, **terms).fit(df, y, task=task)
    model.save(tmp_path / "m.npz")
    back = rm.load(tmp_path / "m.npz")
    for name, value in terms.items():
        got = back.get_params()[name]
        if isinstance(value, dict):
            assert got == value
        else:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(value))
    np.testing.assert_array_equal(back.predict(df, task=task), model.predict(df, task=task))
    np.testing.assert_array_equal(back.coef_, model.coef_)


def _saved(tmp_path, **terms):
    df, y, task = _frame()
    model = rm.MultiTaskRegressor("l21", alpha=0.1, **terms).fit(df, y, task=task)
    path = tmp_path / "m.npz"
    model.save(path)
    return path, *_parts(path)


@pytest.mark.parametrize("value, words", [
    (np.array([0.0, -1.0, 1.0, 1.0]), ("penalty_factor", ">= 0")),
    (np.array([0.0, np.nan, 1.0, 1.0]), ("NaN",)),
    (np.array([1.0, 1.0]), ("penalty_factor", "shape")),
])
def test_a_tampered_factor_is_refused_naming_it(tmp_path, value, words):
    path, header, arrays = _saved(tmp_path, penalty_factor=np.array([0.0, 1.0, 2.0, 1.0]))
    arrays[header["params"]["penalty_factor"]["key"]] = value
    _write(path, header, arrays)
    refused(lambda: rm.load(path), *words)


def test_a_tampered_factor_mapping_is_refused_naming_it(tmp_path):
    path, header, arrays = _saved(tmp_path, penalty_factor={"a": 0.0})
    header["params"]["penalty_factor"]["values"] = [-2.0]
    _write(path, header, arrays)
    refused(lambda: rm.load(path), "penalty_factor", ">= 0")
    header["params"]["penalty_factor"]["keys"] = ["zz"]
    header["params"]["penalty_factor"]["values"] = [1.0]
    _write(path, header, arrays)
    refused(lambda: rm.load(path), "penalty_factor", "unknown feature 'zz'")


def test_bounds_that_cross_are_refused_naming_them(tmp_path):
    path, header, arrays = _saved(tmp_path, lower_bounds=np.array([-1.0, -1.0, -1.0, -1.0]),
                                  upper_bounds=np.array([1.0, 1.0, 1.0, 1.0]))
    arrays[header["params"]["lower_bounds"]["key"]] = np.array([-1.0, 2.0, -1.0, -1.0])
    _write(path, header, arrays)
    refused(lambda: rm.load(path), "lower_bounds > upper_bounds", "feature 1")


def test_an_unknown_entry_kind_for_a_term_is_refused(tmp_path):
    path, header, arrays = _saved(tmp_path, penalty_factor={"a": 0.0})
    header["params"]["penalty_factor"] = {"kind": "mapping", "keys": ["a", "b"],
                                          "values": [1.0]}
    _write(path, header, arrays)
    refused(lambda: rm.load(path), "penalty_factor", "not a mapping entry")


def test_a_classifier_with_terms_round_trips(tmp_path):
    """A classifier's terms (an infinite factor in a dict: JSON's Infinity; a scalar bound;
    standardize) are read back equal and predict the same."""
    df, y, task = _frame()
    terms = dict(penalty_factor={"a": 0.0, "d": np.inf}, lower_bounds=-0.3, standardize=True)
    model = rm.MultiTaskClassifier("l21", alpha=0.01, **terms).fit(df, y > 0, task=task)
    model.save(tmp_path / "m.npz")
    header, _ = _parts(tmp_path / "m.npz")
    assert header["params"]["penalty_factor"] == {"kind": "mapping", "keys": ["a", "d"],
                                                  "values": [0.0, np.inf]}
    back = rm.load(tmp_path / "m.npz")
    assert {k: back.get_params()[k] for k in terms} == terms
    np.testing.assert_array_equal(back.predict_proba(df, task=task),
                                  model.predict_proba(df, task=task))


def test_a_file_without_terms_loads_with_the_defaults(tmp_path):
    """A file written before the terms (no such parameters) loads as a plain model."""
    path, header, arrays = _saved(tmp_path)
    for name in ("penalty_factor", "exclude", "lower_bounds", "upper_bounds",
                 "rescale_factors", "standardize", "factor_convention"):
        header["params"].pop(name)
    _write(path, header, arrays)
    back = rm.load(path)
    assert back.get_params()["penalty_factor"] is None
    assert back.get_params()["rescale_factors"] is True
    assert back.get_params()["factor_convention"] == "unit"


def _tampered(tmp_path, terms, edit):
    """A model file with ``terms`` (factors per task: the l1 penalty), edited by ``edit``."""
    df, y, task = _frame()
    penalty = "l1" if np.ndim(terms.get("penalty_factor")) == 2 else "l21"
    path = tmp_path / "m.npz"
    rm.MultiTaskRegressor(penalty, alpha=0.1, **terms).fit(df, y, task=task).save(path)
    header, arrays = _parts(path)
    edit(header["params"], arrays)
    _write(path, header, arrays)
    return path


def _array(name, value):
    def edit(params, arrays):
        arrays[params[name]["key"]] = value
    return edit


def _json(name, value, field="value"):
    def edit(params, arrays):
        params[name][field] = value
    return edit


@pytest.mark.parametrize("terms, edit, words", [
    (dict(penalty_factor=np.ones((4, 3))), _array("penalty_factor", np.ones((4, 2))),
     ("'penalty_factor' has shape (4, 2)", "(4, 3)")),
    (dict(penalty_factor=np.ones((4, 3))), _array("penalty_factor", -np.ones((4, 3))),
     ("penalty_factor must be >= 0",)),
    (dict(penalty_factor=[0.0, 1.0, 1.0, 1.0]),
     lambda params, _: params["penalty_factor"]["items"][2].update(value=-3.0),
     ("penalty_factor must be >= 0", "-3.0")),
    (dict(penalty_factor={"a": 0.0}), _json("penalty_factor", [np.nan], "values"),
     ("penalty_factor must be >= 0", "nan")),
    (dict(lower_bounds=np.full(4, -1.0)), _array("lower_bounds", np.array([-1, np.nan, -1, -1])),
     ("parameter 'lower_bounds' holds NaN",)),
    (dict(upper_bounds=np.full(4, 1.0)), _array("upper_bounds", np.ones(5)),
     ("'upper_bounds' has shape (5,)", "(4,)")),
    (dict(lower_bounds=-0.5), _json("lower_bounds", np.nan), ("lower_bounds holds NaN",)),
    (dict(lower_bounds=-0.5, upper_bounds=0.5), _json("lower_bounds", 1.0),
     ("lower_bounds > upper_bounds", "1.0 > 0.5")),
    (dict(lower_bounds={"a": -1.0}, upper_bounds={"a": 1.0}),
     _json("upper_bounds", [-2.0], "values"), ("lower_bounds > upper_bounds", "feature 0")),
    (dict(lower_bounds={"a": -1.0}), _json("lower_bounds", [7], "keys"),
     ("lower_bounds: feature 7 is out of range",)),
    (dict(exclude=np.array([3])), _array("exclude", np.array([9])),
     ("exclude: feature 9 is out of range",)),
    (dict(exclude=np.array([False, False, True, False])),
     _array("exclude", np.array([False, True])), ("exclude: a mask of shape (2,)",)),
    (dict(exclude=["d"]), lambda params, _: params["exclude"].update(
        items=[{"kind": "json", "value": c} for c in "abcd"]), ("every feature is excluded",)),
    (dict(standardize=True), _json("standardize", "yes"), ("'standardize' parameter",)),
    (dict(penalty_factor=[0.0, 1.0, 1.0, 1.0]), _json("rescale_factors", 3),
     ("'rescale_factors' parameter",)),
    (dict(penalty_factor=[0.5, 1.0, 1.0, 1.0], factor_convention="glmnet"),
     _json("factor_convention", "glum"), ("'factor_convention' parameter", "'glmnet'")),
])
def test_more_tampered_terms_are_refused_naming_them(tmp_path, terms, edit, words):
    path = _tampered(tmp_path, terms, edit)
    message = refused(lambda: rm.load(path), *words)
    assert "refused" in message


@pytest.mark.parametrize("edit, words", [
    (lambda C: C.__setitem__((1, 3), 0.25), ("excluded feature 3", "task 1", "not 0")),
    (lambda C: C.__setitem__((2, 0), 0.8 + 1e-6), ("feature 0", "task 2", "upper_bounds 0.8")),
    (lambda C: C.__setitem__((0, 1), -0.75), ("feature 1", "task 0", "lower_bounds -0.5")),
])
def test_coefficients_that_break_their_terms_are_refused(tmp_path, edit, words):
    """A file whose coef_ was changed after the fit (an excluded feature's coefficient not 0,
    one outside its bounds) is refused naming the feature, the task and the term; the file
    as written (coefficients on the bound itself) loads."""
    path, header, arrays = _saved(tmp_path, exclude=["d"], lower_bounds=-0.5,
                                  upper_bounds=0.8)
    key = header["attributes"]["coef_"]["key"]
    assert np.isclose(arrays[key], 0.8).sum() >= 3  # (the bound binds: kept, not refused)
    rm.load(path)
    C = arrays[key].copy()
    edit(C)
    arrays[key] = C
    _write(path, header, arrays)
    refused(lambda: rm.load(path), "per-feature terms", *words)
