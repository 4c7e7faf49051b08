"""The set-up of a fit reads the design's column ranges once: the input checks' column scales,
the solve's ``max|X|`` (``solvers.parts.balance.problem_scales``) and the spans of
``shift_columns`` come from one pass (``taskdata.design_range``, kept with the problem), with
the numbers each computed before from passes of its own, to the last bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import regmtl as rm
from regmtl import ranges, taskdata
from regmtl.ranges import column_range, column_scales, range_scales
from regmtl.solvers.parts.balance import problem_scales
from regmtl.taskdata import design_range, shift_columns


def _scales_before(arr):
    """``column_scales`` as it was: two reductions ignoring NaN, 0 where there is no number."""
    arr = np.asarray(arr)
    arr = arr[:, None] if arr.ndim == 1 else arr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hi, lo = np.nanmax(arr, axis=0), np.nanmin(arr, axis=0)
    return np.nan_to_num(np.maximum(hi.astype(np.float64), -lo.astype(np.float64)), nan=0.0)


def _arrays():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3000, 23)) * 10.0 ** rng.integers(-5, 5, 23)
    A[rng.random(A.shape) < 0.01] = np.nan
    A[:, 4] = np.nan  # no number at all
    A[:, 5] = -7.0
    A[17, 6] = np.inf
    A[18, 7] = -np.inf
    yield "C", A
    yield "F", np.asfortranarray(A)
    yield "float32", A.astype(np.float32)
    yield "F float32", np.asfortranarray(A.astype(np.float32))
    yield "strided", A[::3, ::2]
    yield "one row", A[:1]
    yield "wide", rng.standard_normal((4, 40000))
    yield "F wide", np.asfortranarray(rng.standard_normal((5, 9000)))
    yield "1-D", A[:, 0].copy()


@pytest.mark.parametrize("name,arr", list(_arrays()), ids=[n for n, _ in _arrays()])
def test_column_scales_in_one_pass_equal_the_two_reductions(name, arr):
    """Blocks along either memory order (several blocks here), NaN, infinities, float32."""
    np.testing.assert_array_equal(column_scales(arr), _scales_before(arr))
    if arr.ndim == 2:
        hi, lo = column_range(arr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(hi, np.nanmax(arr, axis=0))
            np.testing.assert_array_equal(lo, np.nanmin(arr, axis=0))
        assert hi.dtype == arr.dtype


def test_column_scales_of_other_inputs_are_unchanged():
    ints = np.array([[1, -5], [3, 2]])
    np.testing.assert_array_equal(column_scales(ints), [3.0, 5.0])
    np.testing.assert_array_equal(column_scales(np.zeros((0, 3))), np.zeros(3))
    np.testing.assert_array_equal(column_scales(np.array([True, False])), [1.0])


def test_per_task_ranges_give_the_column_scales():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 6))
    X[3, 2] = np.nan
    starts = np.array([0, 10, 11, 30])
    hi, lo = column_range(X, starts)
    assert hi.shape == (4, 6)
    np.testing.assert_array_equal(range_scales(hi, lo), _scales_before(X))


def _problems():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 8))
    X[:, 3] = 1e9 + rng.standard_normal(120)  # far from zero: shifted
    task = rng.integers(0, 4, 120)
    y = X[:, 0] + rng.standard_normal(120)
    yield "per task", rm.as_task_data(X, y, task=task)
    yield "shared", rm.as_task_data(X, np.column_stack([y, -y, 2 * y]))
    yield "lists", rm.as_task_data([X[:40], X[40:]], [y[:40], y[40:]])
    yield "one task", rm.as_task_data(X, y)
    yield "float32", rm.as_task_data(X.astype(np.float32), y, task=task)
    Z = X.copy()
    Z[5, 1] = np.nan  # (a NaN: the spans are taken from X itself)
    data = rm.as_task_data(X, y, task=task)
    yield "NaN", taskdata.dataclasses.replace(data, X=Z[np.argsort(task, kind="stable")],
                                              _cache={})


def _shift_before(data):
    """The spans and means ``shift_columns`` formed from passes of its own."""
    X, starts = data.X, data.indptr[:-1]
    if data.shared:
        return X.mean(axis=0)[None, :], (X.max(axis=0) - X.min(axis=0))[None, :]
    counts = np.diff(data.indptr).astype(np.float64)[:, None]
    return (np.add.reduceat(X, starts, axis=0) / counts,
            np.maximum.reduceat(X, starts, axis=0) - np.minimum.reduceat(X, starts, axis=0))


@pytest.mark.parametrize("name,data", list(_problems()), ids=[n for n, _ in _problems()])
def test_the_fit_set_up_reads_one_range_of_x(name, data):
    """The scales and shifts from the kept range equal those of the separate passes."""
    X = np.asarray(data.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ax_before = float(np.nanmax(np.abs(X)))
    assert problem_scales(data)[0] == ax_before
    assert "design_range" in data._cache
    np.testing.assert_array_equal(range_scales(*design_range(data)), _scales_before(X))
    mean, span = _shift_before(data)
    offset = (np.abs(mean) > 100.0 * span) & (span > 0)
    shifted = shift_columns(data)
    if not offset.any():
        assert shifted is data
        return
    S = np.where(offset, mean, 0.0)
    want = X - (S[0] if data.shared else S[data.task_of])
    np.testing.assert_array_equal(shifted.X, want)


def test_a_fit_reads_the_column_range_once(monkeypatch):
    """Input checks, the solve's scales and the shift of columns far from zero: one
    ``column_range`` of X in a whole fit (before: column scales, max|X| and the spans were
    five passes of their own)."""
    calls = []
    real = ranges.column_range

    def counted(values, starts=None):
        calls.append(values.shape)
        return real(values, starts)

    monkeypatch.setattr(taskdata, "column_range", counted)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 30))
    Y = X[:, :3] @ np.ones((3, 4)) + rng.standard_normal((200, 4))
    rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, Y)
    task = rng.integers(0, 4, 200)
    rm.MultiTaskRegressor("l21", alpha=0.1).fit(X, Y[:, 0], task=task)
    assert calls == [(200, 30), (200, 30)]
