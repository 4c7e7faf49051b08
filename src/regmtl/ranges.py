r"""The range checks of every entry point: refuse numbers whose squares overflow or underflow.

A column (or target) is refused when its largest magnitude :math:`a_j = \max_r |v_{rj}|` over
``n`` rows gives :math:`a_j \sqrt{n} > 10^{150}` (the loss sums of squares overflow float64) or
:math:`0 < a_j < 10^{-150}` (its squares underflow and the fit would read it as zeros). The
estimators (through :func:`~regmtl.as_task_data`), the CLI, the scaler and the deep data layer
all call these, so every entry point refuses the same inputs with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["SCALE_LIMIT", "TINY_LIMIT", "check_column_scales", "check_numeric_range",
           "column_range", "column_scales", "range_scales"]

#: Largest ``max|v| * sqrt(n_rows)`` accepted: the sums of squares of the loss stay below
#: 1e300, well inside float64's range (about 1.8e308).
SCALE_LIMIT = 1e150
#: Smallest nonzero largest-|value| of a column accepted: below it the squares (and products
#: with row weights) of the column underflow to zero or subnormals (float64's smallest normal
#: number is about 2.2e-308), and the fit would read the column as zeros.
TINY_LIMIT = 1e-150


#: entries of the blocks :func:`column_range` reads at a time (they stay in cache while both
#: reductions read them: one pass over the array's memory)
RANGE_BLOCK = 1 << 15


def column_range(values: np.ndarray, starts: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(hi, lo)``: the largest and smallest entry of each column of a dense 2-D float array,
    NaN ignored (NaN where a column holds no number), in the array's dtype.

    ``starts`` (increasing, the first row of each group of rows; every group nonempty) gives
    them per group, shape (G, p); without it, shape (p,). Without groups the array is read
    once, in blocks of :data:`RANGE_BLOCK` entries along its memory order that both
    reductions read while they are in cache; the maximum and minimum do not depend on the
    order, so the result is exact.
    """
    if starts is not None:
        return np.fmax.reduceat(values, starts, axis=0), np.fmin.reduceat(values, starts, axis=0)
    n, p = values.shape
    if n == 0:
        return np.full(p, np.nan, values.dtype), np.full(p, np.nan, values.dtype)
    if values.flags.f_contiguous and not values.flags.c_contiguous:  # column blocks
        hi, lo = np.empty(p, values.dtype), np.empty(p, values.dtype)
        step = max(1, RANGE_BLOCK // n)
        for j in range(0, p, step):
            block = values[:, j : j + step]
            np.fmax.reduce(block, axis=0, out=hi[j : j + step])
            np.fmin.reduce(block, axis=0, out=lo[j : j + step])
        return hi, lo
    step = max(1, RANGE_BLOCK // max(p, 1))  # row blocks
    hi, lo = np.fmax.reduce(values[:step], axis=0), np.fmin.reduce(values[:step], axis=0)
    for i in range(step, n, step):
        block = values[i : i + step]
        np.fmax(hi, np.fmax.reduce(block, axis=0), out=hi)
        np.fmin(lo, np.fmin.reduce(block, axis=0), out=lo)
    return hi, lo


def range_scales(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The largest ``|value|`` of each column from ``column_range`` (of its groups when
    2-D), float64, 0 where a column holds no number."""
    hi, lo = np.asarray(hi, dtype=np.float64), np.asarray(lo, dtype=np.float64)
    if hi.ndim == 2:
        hi, lo = np.fmax.reduce(hi, axis=0), np.fmin.reduce(lo, axis=0)
    return np.nan_to_num(np.maximum(hi, -lo), nan=0.0)


def column_scales(values: Any) -> np.ndarray:
    """The largest ``|value|`` of each column (of the whole array when 1-D), NaN ignored.

    One pass (``column_range``) and no copy for a dense float array; two (max and min)
    for other dtypes; ``|data|`` for a sparse one.
    """
    if sp.issparse(values):
        A = abs(sp.csc_matrix(values))
        return np.asarray(A.max(axis=0).toarray(), dtype=np.float64).ravel()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        arr = arr.astype(np.float64)
    if arr.size == 0:
        return np.zeros(arr.shape[1] if arr.ndim == 2 else 1)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.dtype.kind == "f":
        return range_scales(*column_range(arr))
    hi, lo = arr.max(axis=0), arr.min(axis=0)
    return np.maximum(np.asarray(hi, dtype=np.float64), -np.asarray(lo, dtype=np.float64))


def check_column_scales(scales: np.ndarray, n_rows: int, name: str,
                        labels: Sequence[Any] | None = None, where: str | None = None) -> None:
    r"""Refuse columns whose squares overflow or underflow float64.

    With :math:`a_j = \max_r |v_{rj}|` (``scales``, e.g. from
    ``column_scales``), refused are :math:`a_j \sqrt{n} > 10^{150}`
    (sums of squares over ``n_rows`` rows overflow) and :math:`0 < a_j < 10^{-150}`
    (squares underflow to zero or subnormals: the column would be read as zeros). The one
    range check of every entry point (estimators, CLI, deep data).

    Parameters
    ----------
    scales : ndarray of shape (n_columns,)
        Largest ``|value|`` of each column.
    n_rows : int
        Rows summed over.
    name : str
        The argument, for the message (``"X"``, ``"y"``, ``"--features"``).
    labels : sequence, optional
        Column names (default: positions); a single column is not named.
    where : str, optional
        Overrides ``name`` in the message's first words (e.g. ``"X[2]"``, a task).

    Raises
    ------
    ValueError
        Naming the argument, the column, its largest magnitude and the fix.
    """
    scales = np.asarray(scales, dtype=np.float64).ravel()
    if scales.size == 0:
        return
    where = where or name

    def col(j: int) -> str:
        return "" if scales.size == 1 else \
            f" (column {labels[j] if labels is not None else j!r})"

    big = np.flatnonzero(scales > SCALE_LIMIT / np.sqrt(max(n_rows, 1)))  # (no overflow)
    if len(big):
        j = int(big[np.argmax(scales[big])])
        raise ValueError(
            f"{where} holds values as large as {scales[j]:.3g} in magnitude{col(j)}: "
            f"over {n_rows} "
            "rows their squares overflow float64 in the loss sums (max|value| * sqrt(n_rows) "
            f"must stay below {SCALE_LIMIT:g}). Rescale {name} first (its largest |value| "
            f"is {scales[j]:.3g}), e.g. standardize it (subtract the mean, divide by the "
            "standard deviation)."
        )
    tiny = np.flatnonzero((scales > 0) & (scales < TINY_LIMIT))
    if len(tiny):
        j = int(tiny[np.argmin(scales[tiny])])
        raise ValueError(
            f"{where} holds only values tiny in magnitude{col(j)}: its largest |value| is "
            f"{scales[j]:.3g}, below {TINY_LIMIT:g}, so its squares underflow float64 and "
            f"the fit would read it as zeros. Rescale {name} first (multiply it by a power "
            "of ten, or standardize it); a coefficient then changes by the same factor."
        )


def check_numeric_range(values: Any, name: str, *, n_rows: int | None = None,
                        labels: Sequence[Any] | None = None) -> None:
    """``check_column_scales`` of an array (dense, sparse; 1-D is one column).

    Parameters
    ----------
    values : array-like or sparse matrix
        The numbers to check (NaN ignored).
    name : str
        The argument, for the message.
    n_rows : int, optional
        Rows summed over (default: ``values.shape[0]``).
    labels : sequence, optional
        Column names.

    Examples
    --------
    >>> import numpy as np
    >>> from regmtl.ranges import check_numeric_range
    >>> check_numeric_range(np.ones((3, 2)), "X")
    >>> try:
    ...     check_numeric_range(np.full(3, 1e-200), "y")
    ... except ValueError as exc:
    ...     print(str(exc)[:50])
    y holds only values tiny in magnitude: its largest
    """
    shape = getattr(values, "shape", None) or np.shape(values)
    n = int(shape[0]) if n_rows is None and len(shape) else int(n_rows or 0)
    check_column_scales(column_scales(values), n, name, labels)
